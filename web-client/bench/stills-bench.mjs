// The stills path (issue #12): how soon does every page show the exact
// frame after a step, a seek or a join? Real server (`syncreel demo`),
// real Chromium pages (a driver and a viewer, as in the browser tests).
//
//   cd web-client && SYNCREEL_BIN=../target/release/syncreel node bench/stills-bench.mjs
//
// - step, near: → or ← on the driver once the target is among the
//   prefetched neighbours on every page; key press (a capturing keydown
//   listener reads the server clock in the key's own task) → the still
//   drawn on each page (its animation frame; it is lit at the next
//   display refresh). Also execute-at → drawn.
// - step, far: steps of ±30..±300 frames, sent as a key would send them
//   (`window.syncreel.drive`, the same path: paced, its still fetched at
//   once on the driver); the viewer fetches when the transport arrives.
// - seek: a typed timecode (Enter) → every page's still of it.
// - join, paused: a third page joins the paused room: the Join click →
//   its still drawn. Join, playing: the Join click → its first stream
//   picture lit whose frame code is the frame its timestamp names.
// - PSNR of the paused picture: the still as decoded and as the layer
//   shows it, against the server's PNG (decoded here, not by the
//   browser); and the stream's picture of the same frame for comparison.
// Every still drawn is checked by its frame code, read off the layer.
// Before each step or seek the pages' prefetches have finished (nothing
// on its way), so each figure is of one command on a settled room.
//
// Settings: BENCH_STEPS (near steps, default 40), BENCH_FAR (20),
// BENCH_SEEKS (20), BENCH_JOINS (10 per kind), BENCH_OUT (JSON results),
// BENCH_SEED. The stream is the browser tests' (640×360, 1.2 Mb/s), with
// their persistent media directory. Every wait is on a condition with a
// deadline.
import { execSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { decodePng, psnr } from '../tests/support/png.mjs';
import {
  joinAs, launchBrowser, postSession, startDemoServer, until,
} from '../tests/support/harness.mjs';
import { cpuBusy, cpuSnapshot } from './cpu.mjs';

const env = process.env;
const num = (k, d) => (env[k] == null || env[k] === '' ? d : Number(env[k]));
const CONFIG = {
  bin: env.SYNCREEL_BIN ?? '../target/debug/syncreel',
  steps: num('BENCH_STEPS', 40),
  far: num('BENCH_FAR', 20),
  seeks: num('BENCH_SEEKS', 20),
  joins: num('BENCH_JOINS', 10),
  out: env.BENCH_OUT ?? join(tmpdir(), `syncreel-stills-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
  seed: num('BENCH_SEED', 1),
};
const WAIT_MS = 30_000;
const started = Date.now();
const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s]`, ...a);

let seed = CONFIG.seed >>> 0 || 1;
function random() {
  // xorshift32: reproducible targets.
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
}
const randInt = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));

function quantile(xs, q) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}
const ms = (us) => (us == null ? null : Math.round(us / 100) / 10);
function stats(xs) {
  return {
    n: xs.length, p50: quantile(xs, 0.5), p95: quantile(xs, 0.95), p99: quantile(xs, 0.99), max: xs.length ? Math.max(...xs) : null,
  };
}
const fmt = (s) => `p50 ${s.p50} / p95 ${s.p95} / p99 ${s.p99} / max ${s.max} ms (n ${s.n})`;

/** SMPTE label of a frame of the demo clip (23.976 NDF from 01:00:00:00). */
function label(frame) {
  const f = frame % 24;
  const s = Math.floor(frame / 24);
  const p = (v) => String(v).padStart(2, '0');
  return `${p(1 + Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}:${p(f)}`;
}

async function joinWatching(browser, url, name) {
  const page = await joinAs(browser, url, name);
  await until(page, () => window.syncreel.video().state === 'playing', null, WAIT_MS);
  return page;
}

/** Nothing on its way in the page's still cache (its prefetches are done). */
const settled = (page) => until(page, () => window.syncreel.stillCache().inFlight === 0, null, WAIT_MS);

/**
 * Waits until the page's still is of a transport newer than `version`
 * and shows `frame`; checks its frame code; resolves the still.
 */
async function stillAfter(page, version, frame) {
  await until(page, ([v, f]) => {
    const s = window.syncreel.still();
    return s && s.version > v && s.frame === f;
  }, [version, frame], WAIT_MS);
  return page.evaluate(() => ({ ...window.syncreel.still(), code: window.syncreel.readStillFrameCode() }));
}

/** Arms a capture of the server clock at the driver's next keydown. */
const armKey = (page) => page.evaluate(() => {
  window.keyAtUs = null;
  window.addEventListener('keydown', () => { window.keyAtUs = window.syncreel.serverNowUs(); }, { capture: true, once: true });
});

const version = async (page) => (await page.evaluate(() => window.syncreel.state())).transportVersion;

async function measure(kind, pages, names, target, before, t0Us, rows) {
  const row = { kind, target, pages: {} };
  for (const [i, page] of pages.entries()) {
    const s = await stillAfter(page, before, target);
    row.pages[names[i]] = {
      drawnUs: s.drawnAtUs - t0Us, execToDrawnUs: s.drawnAtUs - s.executeAtUs, code: s.code, exact: s.dest?.exact ?? null,
    };
  }
  row.everyUs = Math.max(...Object.values(row.pages).map((p) => p.drawnUs));
  row.keyToExecUs = (await pages[0].evaluate(() => window.syncreel.still().executeAtUs)) - t0Us;
  row.wrongCodes = Object.values(row.pages).filter((p) => p.code !== target).length;
  rows.push(row);
  return row;
}

async function main() {
  const uptimeBefore = execSync('uptime').toString().trim();
  log(`stills bench: server ${CONFIG.bin}; ${uptimeBefore}`);
  const server = await startDemoServer();
  const browser = await launchBrowser();
  const results = { config: CONFIG, uptimeBefore, rows: [], joins: [], psnr: [] };
  try {
    const { status, body, text } = await postSession(server.base, { title: 'Stills bench', media: 'demo.mov' });
    if (status !== 201) throw new Error(`POST /api/sessions: ${status} ${text}`);
    const links = Object.fromEntries(body.links.map((l) => [l.role, l]));
    const duration = body.session.durationFrames;
    const driver = await joinWatching(browser, links.host.url, 'Bench driver');
    const viewer = await joinWatching(browser, links.viewer.url, 'Bench viewer');
    const pages = [driver, viewer];
    const names = ['driver', 'viewer'];
    const cpu0 = cpuSnapshot();

    // Seeks (a typed timecode, as a user would).
    for (let i = 0; i < CONFIG.seeks; i++) {
      for (const page of pages) await settled(page);
      const target = randInt(24, duration - 48);
      const before = await version(driver);
      await driver.fill('#tc-input', label(target));
      await armKey(driver);
      await driver.press('#tc-input', 'Enter');
      const t0 = await until(driver, () => window.keyAtUs, null, WAIT_MS);
      const r = await measure('seek', pages, names, target, before, t0, results.rows);
      log(`seek ${i + 1} to ${target}: every page ${ms(r.everyUs)} ms (${names.map((n) => `${n} ${ms(r.pages[n].drawnUs)}`).join(', ')})`);
    }

    // Steps among the prefetched neighbours.
    let frame = results.rows.at(-1)?.target ?? 0;
    for (let i = 0; i < CONFIG.steps; i++) {
      const dir = random() < 0.5 ? -1 : 1;
      const target = frame + dir;
      for (const page of pages) {
        await until(page, (f) => window.syncreel.stillCache().entries.some((e) => e.frame === f && e.state === 'ready'), target, WAIT_MS);
      }
      const before = await version(driver);
      await armKey(driver);
      await driver.keyboard.press(dir > 0 ? 'ArrowRight' : 'ArrowLeft');
      const t0 = await until(driver, () => window.keyAtUs, null, WAIT_MS);
      const r = await measure('step-near', pages, names, target, before, t0, results.rows);
      log(`step ${i + 1} (${dir > 0 ? '+' : '−'}1) to ${target}: every page ${ms(r.everyUs)} ms; execute-at → drawn `
        + `${names.map((n) => ms(r.pages[n].execToDrawnUs)).join(' / ')} ms`);
      frame = target;
    }

    // Far steps (±30..±300), as a key would send them.
    for (let i = 0; i < CONFIG.far; i++) {
      for (const page of pages) await settled(page);
      let size = randInt(30, 300) * (random() < 0.5 ? -1 : 1);
      if (frame + size < 0 || frame + size >= duration) size = -size;
      const target = frame + size;
      const before = await version(driver);
      const t0 = await driver.evaluate((frames) => {
        const at = window.syncreel.serverNowUs();
        window.syncreel.drive({ type: 'step', frames });
        return at;
      }, size);
      const r = await measure('step-far', pages, names, target, before, t0, results.rows);
      log(`far step ${i + 1} (${size > 0 ? '+' : ''}${size}) to ${target}: every page ${ms(r.everyUs)} ms `
        + `(${names.map((n) => `${n} ${ms(r.pages[n].drawnUs)}`).join(', ')})`);
      frame = target;
    }
    const loads = await driver.evaluate(() => window.syncreel.stillCache());
    results.driverLoadTimesMs = loads.loadTimes;

    // PSNR of the paused picture, at a few frames.
    for (const target of [240, 1000, 2000]) {
      for (const page of pages) await settled(page);
      const before = await version(driver);
      await driver.fill('#tc-input', label(target));
      await driver.press('#tc-input', 'Enter');
      const s = await stillAfter(driver, before, target);
      const get = async (width) => decodePng(Buffer.from(await (await fetch(
        `${server.base}/api/sessions/${body.session.id}/frames/${s.checksum}/${target}?width=${width}`,
        { headers: { authorization: `Bearer ${links.host.token}` } },
      )).arrayBuffer()));
      const png = await get(s.width);
      const row = { frame: target, width: s.width, height: s.height };
      for (const from of ['bitmap', 'layer']) {
        const px = await driver.evaluate((f) => window.syncreel.readStillPixels({ from: f }), from);
        row[from] = px.width === png.width && px.height === png.height ? psnr(Buffer.from(px.rgb, 'base64'), png.rgb) : null;
      }
      // The stream's picture of the frame, against the exact frame at its size.
      const streamPx = await until(driver, async (want) => {
        const code = await window.syncreel.readVideoFrameCode({ via: 'canvas' });
        if (code !== want) return false;
        const v = document.getElementById('video');
        const c = document.createElement('canvas');
        [c.width, c.height] = [v.videoWidth, v.videoHeight];
        const ctx = c.getContext('2d', { willReadFrequently: true });
        ctx.drawImage(v, 0, 0);
        const d = ctx.getImageData(0, 0, c.width, c.height).data;
        const rgb = new Uint8Array(c.width * c.height * 3);
        for (let i = 0, j = 0; i < d.length; i += 4, j += 3) [rgb[j], rgb[j + 1], rgb[j + 2]] = [d[i], d[i + 1], d[i + 2]];
        let bin = '';
        for (let i = 0; i < rgb.length; i += 0x8000) bin += String.fromCharCode(...rgb.subarray(i, i + 0x8000));
        return { width: c.width, height: c.height, rgb: btoa(bin) };
      }, target, WAIT_MS);
      const streamPng = await get(streamPx.width);
      row.stream = streamPng.height === streamPx.height ? psnr(Buffer.from(streamPx.rgb, 'base64'), streamPng.rgb) : null;
      results.psnr.push(row);
      const db = (q) => (q == null ? '—' : q.db === Infinity ? '∞' : q.db.toFixed(2));
      log(`PSNR at ${target}: still ${db(row.bitmap)} dB, layer ${db(row.layer)} dB; the stream's picture ${db(row.stream)} dB`);
    }

    // Joins: paused, then playing.
    for (const playing of [false, true]) {
      if (playing) {
        const before = await version(driver);
        await driver.fill('#tc-input', label(200));
        await driver.press('#tc-input', 'Enter');
        await stillAfter(driver, before, 200);
        await driver.keyboard.press('Space');
        await until(driver, () => window.syncreel.state().transport.playing && window.syncreel.state().pending === 0, null, WAIT_MS);
      }
      for (let i = 0; i < CONFIG.joins; i++) {
        if (!playing) {
          for (const page of pages) await settled(page);
          const target = randInt(24, duration - 48);
          const before = await version(driver);
          await driver.fill('#tc-input', label(target));
          await driver.press('#tc-input', 'Enter');
          await stillAfter(driver, before, target);
        }
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        try {
          const page = await context.newPage();
          await page.goto(links.reviewer.url);
          // Milestones of the join (performance.now() ms): the welcome, the
          // peer made, its connection up, its first track.
          await page.evaluate(() => {
            window.joinAt = {};
            document.getElementById('join').addEventListener('click', () => { window.joinClickedMs = performance.now(); });
            new MutationObserver(() => {
              if (document.getElementById('conn').dataset.state === 'live') window.joinAt.welcome ??= performance.now();
            }).observe(document.getElementById('conn'), { attributes: true });
            const Peer = window.RTCPeerConnection;
            window.RTCPeerConnection = class extends Peer {
              constructor(...args) {
                super(...args);
                window.joinAt.peer ??= performance.now();
                this.addEventListener('connectionstatechange', () => {
                  if (this.connectionState === 'connected') window.joinAt.connected ??= performance.now();
                });
                this.addEventListener('track', () => { window.joinAt.track ??= performance.now(); });
              }
            };
          });
          await page.fill('#name', `Joiner ${i + 1}`);
          await page.click('#join');
          let row;
          if (!playing) {
            const room = (await driver.evaluate(() => window.syncreel.state())).transport.anchorFrame;
            await until(page, (f) => window.syncreel.still()?.frame === f, room, WAIT_MS);
            row = await page.evaluate(() => {
              const s = window.syncreel.still();
              const offsetUs = window.syncreel.serverNowUs() - performance.now() * 1000;
              return {
                firstUs: s.drawnAtUs - (window.joinClickedMs * 1000 + offsetUs), code: window.syncreel.readStillFrameCode(), frame: s.frame,
                rtcState: s.rtcState, videoState: s.videoState,
              };
            });
          } else {
            // The first picture lit whose frame code (read off it) is the frame its timestamp names.
            row = await until(page, () => {
              const first = window.syncreel.videoLog.find((r) => r[2] != null && r[2] === r[1]);
              if (!first) return null;
              const offsetUs = window.syncreel.serverNowUs() - performance.now() * 1000;
              return { firstUs: first[0] - (window.joinClickedMs * 1000 + offsetUs), code: first[2], frame: first[1] };
            }, null, WAIT_MS);
          }
          row.kind = playing ? 'playing' : 'paused';
          row.milestonesMs = await page.evaluate(() => Object.fromEntries(Object.entries(window.joinAt)
            .map(([k, v]) => [k, Math.round(v - window.joinClickedMs)])));
          // The joiner's first still: how long its fetch and decode took, at what width.
          Object.assign(row, await page.evaluate(() => {
            const c = window.syncreel.stillCache();
            return { stillLoadMs: c.loadTimes[0] ?? null, stillWidth: c.entries[0]?.width ?? null };
          }));
          results.joins.push(row);
          log(`join ${i + 1}, ${row.kind}: first right frame (${row.code}) ${ms(row.firstUs)} ms after the click; `
            + `milestones ${JSON.stringify(row.milestonesMs)}${playing ? '' : `; its still's fetch + decode ${row.stillLoadMs} ms at ${row.stillWidth} px`}`
            + `${playing ? '' : ` (stream then: ${row.videoState}, peer ${row.rtcState})`}`);
        } finally {
          await context.close();
        }
      }
    }
    await driver.keyboard.press('k');
    results.cpu = cpuBusy(cpu0, cpuSnapshot());
  } finally {
    await browser.close();
    await server.stop();
  }
  results.uptimeAfter = execSync('uptime').toString().trim();
  const pick = (kind, f) => results.rows.filter((r) => r.kind === kind).map(f).map(ms);
  results.summary = {
    stepNear: stats(pick('step-near', (r) => r.everyUs)),
    stepNearExecToDrawn: stats(results.rows.filter((r) => r.kind === 'step-near').flatMap((r) => Object.values(r.pages).map((p) => ms(p.execToDrawnUs)))),
    stepNearKeyToExec: stats(pick('step-near', (r) => r.keyToExecUs)),
    stepFar: stats(pick('step-far', (r) => r.everyUs)),
    seek: stats(pick('seek', (r) => r.everyUs)),
    seekKeyToExec: stats(pick('seek', (r) => r.keyToExecUs)),
    joinPaused: stats(results.joins.filter((j) => j.kind === 'paused').map((j) => ms(j.firstUs))),
    joinPlaying: stats(results.joins.filter((j) => j.kind === 'playing').map((j) => ms(j.firstUs))),
    joinMilestones: Object.fromEntries(['paused', 'playing'].map((kind) => [kind, Object.fromEntries(
      ['welcome', 'peer', 'connected', 'track'].map((m) => [m, quantile(results.joins
        .filter((j) => j.kind === kind && j.milestonesMs?.[m] != null).map((j) => j.milestonesMs[m]), 0.5)]),
    )])),
    stillLoadMs: stats(results.driverLoadTimesMs ?? []),
    joinPausedStillLoadMs: stats(results.joins.filter((j) => j.kind === 'paused' && j.stillLoadMs != null).map((j) => j.stillLoadMs)),
    wrongCodes: results.rows.reduce((n, r) => n + r.wrongCodes, 0) + results.joins.filter((j) => j.code !== j.frame).length,
    notOneToOne: results.rows.flatMap((r) => Object.values(r.pages)).filter((p) => p.exact === false).length,
  };
  writeFileSync(CONFIG.out, JSON.stringify(results, null, 1));
  const s = results.summary;
  const db = (q) => (q == null ? '—' : q.db === Infinity ? '∞ (identical)' : `${q.db.toFixed(2)} dB`);
  console.log('stills bench (times on the server clock; "drawn" is the animation frame that drew the still, lit at the next refresh)');
  console.log(`step within the prefetched neighbours, key press → new still on every page: ${fmt(s.stepNear)}`);
  console.log(`  of which key press → execute-at: ${fmt(s.stepNearKeyToExec)}; execute-at → drawn (each page): ${fmt(s.stepNearExecToDrawn)}`);
  console.log(`step of ±30..±300 frames, send → every page: ${fmt(s.stepFar)}`);
  console.log(`seek (typed timecode), Enter → every page: ${fmt(s.seek)}; Enter → execute-at ${fmt(s.seekKeyToExec)}`);
  console.log(`a still's fetch + decode on the driver (ms): ${fmt(s.stillLoadMs)}`);
  console.log(`join → first right frame, paused: ${fmt(s.joinPaused)}; playing: ${fmt(s.joinPlaying)}`);
  console.log(`  join milestones after the click, medians (ms): ${JSON.stringify(s.joinMilestones)}; a paused joiner's `
    + `still fetch + decode: ${fmt(s.joinPausedStillLoadMs)}`);
  for (const r of results.psnr) {
    console.log(`PSNR at frame ${r.frame} (${r.width}×${r.height}): still ${db(r.bitmap)}, layer as shown ${db(r.layer)}; `
      + `the stream's picture of it ${db(r.stream)}`);
  }
  console.log(`frame codes that were not the target: ${s.wrongCodes}; stills not drawn 1:1: ${s.notOneToOne}`);
  const c = results.cpu;
  console.log(`CPU: machine ${c.machinePct} % busy (this bench ${c.oursPct} %, others ${c.othersPct} %); loadavg ${c.loadavgBefore} → ${c.loadavgAfter}`);
  console.log(`uptime before: ${results.uptimeBefore}`);
  console.log(`uptime after:  ${results.uptimeAfter}`);
  console.log(`results: ${CONFIG.out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
