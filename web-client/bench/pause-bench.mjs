// Pause error (issue #12): how far from the picture the driver saw does a
// pause land? Real server (`syncreel demo`), two real Chromium pages.
//
//   cd web-client && SYNCREEL_BIN=../target/release/syncreel node bench/pause-bench.mjs
//
// For each pause: seek to a random frame, shuttle to the speed (L, L L,
// or J, as a user would), let a random 12–48 pictures of that play go by,
// then press K on the driver's page. A capturing keydown listener reads,
// in the same task as the key's handler, the frame code off the video
// element's picture (a canvas read is synchronous): that is the frame the
// driver saw. The error is the room's paused anchor frame minus that
// frame (0: the pause landed on the picture seen). The element takes the
// next picture up to a refresh before it is lit, while the page counts a
// picture as on screen from its display time, so in that window the
// error is −1 picture by construction; the page's own view (what its
// command carried) is reported beside it. Also: where a pause on the
// playhead at execute_at lands (what the client did before `shown`), and
// how long until both pages' pictures showed the paused frame.
//
// Settings: BENCH_PAUSES (per speed, default 30), BENCH_SPEEDS (default
// 1,2,-1), BENCH_OUT (JSON results), BENCH_SEED. The stream is the browser
// tests' (640×360, 1.2 Mb/s; SYNCREEL_MEDIA__STREAM_* override it), with
// their persistent media directory (the clip is rendered once).
// Every wait is on a condition with a deadline.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { joinAs, launchBrowser, postSession, startDemoServer, until } from '../tests/support/harness.mjs';
import { cpuBusy, cpuSnapshot } from './cpu.mjs';
import { position } from '../transport.js';

const env = process.env;
const num = (k, d) => (env[k] == null || env[k] === '' ? d : Number(env[k]));
const CONFIG = {
  bin: env.SYNCREEL_BIN ?? '../target/debug/syncreel',
  pauses: Math.min(500, num('BENCH_PAUSES', 30)),
  speeds: (env.BENCH_SPEEDS ?? '1,2,-1').split(',').map(Number),
  out: env.BENCH_OUT ?? join(tmpdir(), `syncreel-pause-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
  seed: num('BENCH_SEED', 1),
};
const VIDEO_WAIT_MS = 30_000;
const STEP_WAIT_MS = 15_000;
const RATE = { fpsNum: 24000, fpsDen: 1001 };
const started = Date.now();
const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s]`, ...a);

let seed = CONFIG.seed >>> 0 || 1;
function random() {
  // xorshift32: reproducible seek targets and play lengths.
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
}

function quantile(xs, q) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** SMPTE label of a frame of the demo clip (23.976 NDF from 01:00:00:00). */
function label(frame) {
  const f = frame % 24;
  const s = Math.floor(frame / 24);
  const p = (v) => String(v).padStart(2, '0');
  return `${p(1 + Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}:${p(f)}`;
}

async function joinWatching(browser, url, name) {
  const page = await joinAs(browser, url, name);
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  return page;
}

/** Polls an async page condition until `{ok}`; returns it. */
async function eventually(page, what, fn, arg, timeout = STEP_WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last?.ok) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await page.waitForTimeout(25);
  }
}

/** The page's picture shows `frame` (frame code off the pixels). Resolves the ms it took. */
async function pictureShows(page, frame) {
  const t0 = Date.now();
  await eventually(page, `picture ${frame}`, async (want) => {
    const code = await window.syncreel.readVideoFrameCode({ via: 'canvas' });
    return { ok: code === want, code };
  }, frame);
  return Date.now() - t0;
}

async function seekTo(driver, pagesToWait, frame) {
  await driver.fill('#tc-input', label(frame));
  await driver.press('#tc-input', 'Enter');
  for (const page of pagesToWait) await pictureShows(page, frame);
}

/** L, L L or J from paused: resolves the playing transport. */
async function shuttleTo(driver, speed) {
  const key = speed < 0 ? 'j' : 'l';
  for (let s = 1; s <= Math.abs(speed); s++) {
    await driver.keyboard.press(key);
    await until(driver, (want) => {
      const st = window.syncreel.state();
      return st.pending === 0 && st.transport.playing && st.transport.speed === want;
    }, Math.sign(speed) * s, STEP_WAIT_MS);
  }
  return (await driver.evaluate(() => window.syncreel.state())).transport;
}

/** One pause at `speed`: what the driver saw at the keypress and where the room paused. */
async function onePause(driver, viewer, speed, duration) {
  const start = speed < 0 ? 1400 + Math.floor(random() * 1200) : 200 + Math.floor(random() * 1200);
  await seekTo(driver, [driver, viewer], start);
  const play = await shuttleTo(driver, speed);
  const pictures = 12 + Math.floor(random() * 37);
  await until(driver, ([from, n]) => window.syncreel.videoLog.filter((r) => r[4] >= from).length >= n,
    [play.anchorTime, pictures], VIDEO_WAIT_MS);
  const before = (await driver.evaluate(() => window.syncreel.state())).transportVersion;
  await driver.evaluate(() => {
    window.atKey = null;
    window.addEventListener('keydown', () => {
      const v = window.syncreel.video();
      const look = {
        seen: window.syncreel.seen(), shown: v.shown?.frame ?? null, counter: Number(document.getElementById('frame').textContent),
        latencyUs: v.playLatencyMedianUs, transport: window.syncreel.state().transport, code: undefined,
      };
      window.syncreel.readVideoFrameCode({ via: 'canvas' }).then((code) => { look.code = code; });
      window.atKey = look;
    }, { capture: true, once: true });
  });
  await driver.keyboard.press('k');
  const paused = await until(driver, (v) => {
    const s = window.syncreel.state();
    return s.transportVersion > v && s.pending === 0 && !s.transport.playing && s.transport;
  }, before, STEP_WAIT_MS);
  const look = await until(driver, () => window.atKey?.code !== undefined && window.atKey, null, STEP_WAIT_MS);
  // The element's picture at the keypress, by its frame code; the page's
  // own view of what was lit (which its command carried) when unreadable.
  const seen = look.code ?? look.seen;
  const playhead = position(look.transport, { ...RATE, duration }, paused.anchorTime);
  const settleMs = [];
  for (const page of [driver, viewer]) settleMs.push(await pictureShows(page, paused.anchorFrame));
  return {
    speed, start, pictures, seen, code: look.code, named: look.shown, pageSeen: look.seen, counter: look.counter,
    anchor: paused.anchorFrame, error: paused.anchorFrame - seen, playheadError: playhead - seen,
    pageError: paused.anchorFrame - look.seen,
    latencyMs: look.latencyUs == null ? null : Math.round(look.latencyUs / 1000), settleMs,
  };
}

function summary(rows) {
  const s = (xs) => ({
    n: xs.length, median: quantile(xs, 0.5), p95: quantile(xs, 0.95), max: xs.length ? Math.max(...xs) : null,
    min: xs.length ? Math.min(...xs) : null,
  });
  const histogram = {};
  for (const r of rows) histogram[r.error] = (histogram[r.error] ?? 0) + 1;
  return {
    error: s(rows.map((r) => r.error)),
    absError: s(rows.map((r) => Math.abs(r.error))),
    histogram,
    playheadError: s(rows.map((r) => r.playheadError)),
    counterMinusSeen: s(rows.map((r) => r.counter - r.seen)),
    unreadCodes: rows.filter((r) => r.code == null).length,
    codeNotNamed: rows.filter((r) => r.code != null && r.code !== r.named).length,
    latencyMs: s(rows.filter((r) => r.latencyMs != null).map((r) => r.latencyMs)),
    pageError: s(rows.map((r) => r.pageError)),
  };
}

async function main() {
  log(`pause bench: ${CONFIG.pauses} pauses at each of ${CONFIG.speeds.join(', ')}×, server ${CONFIG.bin}`);
  const server = await startDemoServer();
  const browser = await launchBrowser();
  const results = { config: CONFIG, rows: [], bySpeed: {} };
  try {
    const { status, body, text } = await postSession(server.base, { title: 'Pause bench', media: 'demo.mov' });
    if (status !== 201) throw new Error(`POST /api/sessions: ${status} ${text}`);
    const links = Object.fromEntries(body.links.map((l) => [l.role, l.url]));
    const driver = await joinWatching(browser, links.host, 'Bench driver');
    const viewer = await joinWatching(browser, links.viewer, 'Bench viewer');
    const duration = body.session?.durationFrames
      ?? (await driver.evaluate(() => window.syncreel.state().session.durationFrames));
    const cpu0 = cpuSnapshot();
    for (const speed of CONFIG.speeds) {
      const rows = [];
      for (let i = 0; i < CONFIG.pauses; i++) {
        const row = await onePause(driver, viewer, speed, duration);
        rows.push(row);
        log(`${speed}× #${i + 1}: seen ${row.seen}, paused ${row.anchor} (error ${row.error}); `
          + `page saw ${row.pageSeen}; playhead ${row.playheadError} on; latency ${row.latencyMs} ms`);
      }
      results.rows.push(...rows);
      results.bySpeed[speed] = summary(rows);
    }
    results.cpu = cpuBusy(cpu0, cpuSnapshot());
  } finally {
    await browser.close();
    await server.stop();
  }
  writeFileSync(CONFIG.out, JSON.stringify(results, null, 1));
  console.log(`pause error = room's paused frame − frame on the driver's screen at the keypress (frames); N per speed ${CONFIG.pauses}`);
  for (const [speed, s] of Object.entries(results.bySpeed)) {
    console.log(`${speed}×: error median ${s.error.median} / p95 ${s.error.p95} / min ${s.error.min} / max ${s.error.max}; `
      + `|error| p95 ${s.absError.p95}; histogram ${JSON.stringify(s.histogram)}; `
      + `on the playhead instead: median ${s.playheadError.median} / p95 ${s.playheadError.p95} / max ${s.playheadError.max}; `
      + `counter − seen median ${s.counterMinusSeen.median} (min ${s.counterMinusSeen.min}, max ${s.counterMinusSeen.max}); `
      + `latency median ${s.latencyMs.median} ms; codes unread ${s.unreadCodes}; the element's picture ≠ the last `
      + `one named ${s.codeNotNamed}; paused − the page's own seen: median ${s.pageError.median}, min ${s.pageError.min}, `
      + `max ${s.pageError.max}`);
  }
  const c = results.cpu;
  console.log(`CPU: machine ${c.machinePct} % busy (this bench ${c.oursPct} %, others ${c.othersPct} %); `
    + `loadavg ${c.loadavgBefore} → ${c.loadavgAfter}`);
  console.log(`results: ${CONFIG.out}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
