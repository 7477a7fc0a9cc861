// Browser video benchmarks (issue #3, item 9): glass-to-glass latency,
// seek to the exact frame at every participant, join to first frame, and
// sync spread across browsers, on loopback and across network namespaces
// with added delay. Real server (`syncreel demo`), real Chromium.
//
//   cd web-client && SYNCREEL_BIN=../target/release/syncreel node bench/video-bench.mjs
//   (or `make bench-browser` from the repository root)
//
// Every figure is computed from the pages' own `window.syncreel.videoLog`:
// one row per picture the <video> element presented (requestVideoFrameCallback),
// [shownServerUs, frame, frameCode, latencyUs, madeServerUs, receivedServerUs].
// `shownServerUs` is rVFC's expectedDisplayTime mapped to the server clock
// through the page's clock sync; `madeServerUs` is the picture's RTP
// timestamp turned back into the server instant the server stamped it with.
// Nothing here edits the client; it only reads what the page exposes.
//
// The netem part needs root (scripts/netns.sh). Settings are environment
// variables; see CONFIG below. Every wait has a deadline, every loop a bound.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

import { MEDIA_DATA_DIR, OPERATOR, joinAs, postSession, until } from '../tests/support/harness.mjs';

const WEB_CLIENT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_ROOT = resolve(WEB_CLIENT, '..');
const NETNS = join(REPO_ROOT, 'scripts', 'netns.sh');

const env = process.env;
const num = (k, d) => (env[k] == null || env[k] === '' ? d : Number(env[k]));
const list = (k, d) => (env[k] ?? d).split(',').map((s) => s.trim()).filter(Boolean);

const CONFIG = {
  bin: resolve(WEB_CLIENT, env.SYNCREEL_BIN ?? '../target/release/syncreel'),
  chromium: env.CHROMIUM_PATH ?? '/usr/bin/chromium',
  // Which parts to run, and at which stream heights (720 → 1280×720, 1080 → 1920×1080).
  parts: list('BENCH_PARTS', 'latency,seek,join,spread,netem'),
  sizes: list('BENCH_SIZES', '720,1080').map(Number),
  // Parts other than latency run at these heights only (latency runs at every size).
  otherSizes: list('BENCH_OTHER_SIZES', '720').map(Number),
  codec: env.BENCH_CODEC ?? '',
  // Latency: pages watching, pictures per page per mode (raw, equalised), warm-up.
  latencyPages: num('BENCH_LATENCY_PAGES', 2),
  pictures: Math.min(1200, num('BENCH_PICTURES', 240)),
  warmupMs: Math.min(20_000, num('BENCH_WARMUP_MS', 4000)),
  // Seeks: how many, on how many pages, spacing.
  seeks: Math.min(500, num('BENCH_SEEKS', 20)),
  seekPages: num('BENCH_SEEK_PAGES', 2),
  seekGapMs: Math.min(10_000, num('BENCH_SEEK_GAP_MS', 800)),
  // Joins per mode (paused, playing).
  joins: Math.min(200, num('BENCH_JOINS', 8)),
  joinModes: list('BENCH_JOIN_MODES', 'paused,playing'),
  // Spread: room sizes (pages) on loopback.
  spreadPages: list('BENCH_SPREAD_PAGES', '2,4').map(Number),
  // Netem: one-way delays (ms, each direction), pages on loopback and in the namespace.
  netemDelays: list('BENCH_NETEM_DELAYS', '10,50,150').map(Number),
  netemLocal: num('BENCH_NETEM_LOCAL', 1),
  netemRemote: num('BENCH_NETEM_REMOTE', 1),
  netemSeeks: Math.min(100, num('BENCH_NETEM_SEEKS', 6)),
  netemSize: num('BENCH_NETEM_SIZE', 720),
  out: env.BENCH_OUT ?? join(tmpdir(), `syncreel-video-bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`),
  // The whole run gives up (and reports what it has) after this long.
  deadlineS: num('BENCH_DEADLINE_S', 3600),
  seed: num('BENCH_SEED', 1),
};

const VIDEO_WAIT_MS = 30_000;
const STEP_WAIT_MS = 15_000;
const started = Date.now();
const results = { config: { ...CONFIG }, machine: {}, runs: [], notes: [] };

// ---------------------------------------------------------------- helpers

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s]`, ...a);

function overDeadline() {
  return Date.now() - started > CONFIG.deadlineS * 1000;
}

let seed = CONFIG.seed >>> 0 || 1;
function random() {
  // xorshift32: reproducible seek targets.
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
}

/** Nearest-rank quantile. */
function quantile(xs, q) {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

/** {n, p50, p95, p99, max, mean} of µs samples, in ms. */
function stats(us) {
  const xs = us.filter((v) => Number.isFinite(v));
  const ms = (v) => (v == null ? null : Math.round(v / 10) / 100);
  return {
    n: xs.length,
    p50: ms(quantile(xs, 0.5)),
    p95: ms(quantile(xs, 0.95)),
    p99: ms(quantile(xs, 0.99)),
    max: ms(xs.length ? Math.max(...xs) : null),
    min: ms(xs.length ? Math.min(...xs) : null),
    mean: ms(xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : null),
  };
}

const fmt = (s) => (s?.n ? `p50 ${s.p50} / p95 ${s.p95} / p99 ${s.p99} / max ${s.max} ms (N=${s.n})` : 'no samples');

/**
 * CPU use between two snapshots: the whole machine (/proc/stat) and the
 * part of it that was this benchmark (this process and its descendants:
 * the server, the browsers; plus the delay wires), so that what other
 * processes took is known. Processes that start and end between two
 * snapshots are missed, which slightly understates "ours".
 */
function cpuSnapshot() {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  const idle = line[3] + (line[4] ?? 0);
  const total = line.slice(0, 8).reduce((a, b) => a + b, 0);
  const procs = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      procs.set(Number(name), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) });
    } catch {
      // Gone meanwhile.
    }
  }
  const wires = new Set();
  try {
    for (const f of readdirSync('/run/syncreel-netns')) {
      if (f.endsWith('.pid')) wires.add(Number(readFileSync(`/run/syncreel-netns/${f}`, 'utf8')));
    }
  } catch {
    // No wires.
  }
  const ours = new Map();
  for (const [pid, p] of procs) {
    let q = pid;
    for (let hops = 0; hops < 64 && q > 1; hops++) {
      if (q === process.pid || wires.has(q)) {
        ours.set(pid, p.ticks);
        break;
      }
      q = procs.get(q)?.ppid ?? 0;
    }
  }
  return { idle, total, ours, loadavg: readFileSync('/proc/loadavg', 'utf8').trim(), at: new Date().toISOString() };
}
function cpuBusy(a, b) {
  const total = b.total - a.total;
  if (total <= 0) return null;
  let ours = 0;
  for (const [pid, t] of b.ours) ours += t - (a.ours.get(pid) ?? 0);
  const busy = total - (b.idle - a.idle);
  return { machinePct: Math.round((busy / total) * 100), oursPct: Math.round((ours / total) * 100), othersPct: Math.max(0, Math.round(((busy - ours) / total) * 100)) };
}

/** SMPTE label of a frame of the demo clip (23.976 NDF from 01:00:00:00). */
function label(frame) {
  const f = frame % 24;
  const s = Math.floor(frame / 24);
  const p = (v) => String(v).padStart(2, '0');
  return `${p(1 + Math.floor(s / 3600))}:${p(Math.floor(s / 60) % 60)}:${p(s % 60)}:${p(f)}`;
}

// ---------------------------------------------------------------- server and browsers

/**
 * `syncreel demo` with the browser tests' persistent media dir (the clip
 * is rendered once and shared), bound as asked, stream size from env.
 */
async function startServer({ height, bind }) {
  const width = height === 1080 ? 1920 : height === 720 ? 1280 : Math.round((height * 16) / 9 / 2) * 2;
  mkdirSync(MEDIA_DATA_DIR, { recursive: true });
  const childEnv = {
    ...env,
    RUST_LOG: env.RUST_LOG ?? 'syncreel=warn',
    SYNCREEL_SERVER__ADMIN_TOKEN: OPERATOR,
    SYNCREEL_MEDIA__STREAM_WIDTH: String(width),
    SYNCREEL_MEDIA__STREAM_HEIGHT: String(height),
  };
  if (CONFIG.codec) childEnv.SYNCREEL_MEDIA__CODEC = CONFIG.codec;
  // `demo` renders the clip the first time; afterwards `serve`, so that the
  // server has no session but the one being measured (every media session
  // keeps its player's threads busy, watched or not).
  const hasClip = existsSync(join(MEDIA_DATA_DIR, 'media', 'demo.mov'));
  const child = spawn(CONFIG.bin, [hasClip ? 'serve' : 'demo', '--bind', bind, '--data-dir', MEDIA_DATA_DIR], {
    cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: childEnv,
  });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr = (stderr + d).slice(-8000); });
  const port = await new Promise((res, rej) => {
    let out = '';
    const timer = setTimeout(() => rej(new Error(`server printed no links within 240 s:\n${out}\n${stderr}`)), 240_000);
    child.on('error', (e) => { clearTimeout(timer); rej(new Error(`cannot run ${CONFIG.bin}: ${e.message}`)); });
    child.on('exit', (code) => { clearTimeout(timer); rej(new Error(`server exited with ${code}:\n${out}\n${stderr}`)); });
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/\S+:(\d+)/);
      if (m && (hasClip || /^viewer\s+http/m.test(out))) {
        clearTimeout(timer);
        res(Number(m[1]));
      }
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.once('exit', r));
  return {
    port, width, height, pid: child.pid,
    base: `http://127.0.0.1:${port}`,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const forced = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(forced);
      }
    },
  };
}

/** Chromium with the browser tests' flags (see harness.mjs launchBrowser), from any executable. */
function launch(executablePath = CONFIG.chromium) {
  return chromium.launch({
    executablePath,
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
    ],
  });
}

const cleanups = [];
async function cleanupAll() {
  for (const fn of cleanups.splice(0).reverse()) {
    try {
      await fn();
    } catch (err) {
      log(`cleanup: ${err.message}`);
    }
  }
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    log(`${sig}: cleaning up`);
    cleanupAll().finally(() => process.exit(130));
  });
}

async function mediaSession(server) {
  const { status, body, text } = await postSession(server.base, { title: 'Video bench', media: 'demo.mov' });
  if (status !== 201) throw new Error(`POST /api/sessions: ${status} ${text}`);
  return Object.fromEntries(body.links.map((l) => [l.role, l.url]));
}

/** The link with another origin (pages in a namespace reach the server at its veth address). */
const via = (url, origin) => url.replace(/^http:\/\/[^/]+/, origin);

async function joinWatching(browser, url, name) {
  const page = await joinAs(browser, url, name);
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  return page;
}

async function closePages(pages) {
  for (const p of pages) await p.context().close().catch(() => {});
}

/** Seeks the room to `frame` by typing its timecode on the host page; resolves when the host has it. */
async function seekTo(host, frame) {
  await host.fill('#tc-input', label(frame));
  await host.press('#tc-input', 'Enter');
  await until(host, (f) => {
    const s = window.syncreel.state();
    return s.pending === 0 && s.transport?.anchorFrame === f && !s.transport.playing;
  }, frame, STEP_WAIT_MS);
}

async function setPlaying(host, playing) {
  const now = await host.evaluate(() => window.syncreel.state().transport.playing);
  if (now !== playing) await host.keyboard.press('Space');
  return until(host, (want) => {
    const s = window.syncreel.state();
    return s.pending === 0 && s.transport.playing === want && s.transport.anchorTime;
  }, playing, STEP_WAIT_MS);
}

/** [offsetUs (server − page clock), timeOrigin ms] of a page. */
const clockOf = (page) => page.evaluate(() => ({
  offsetUs: window.syncreel.serverNowUs() - Math.round(performance.now() * 1000),
  timeOrigin: performance.timeOrigin,
  sync: window.syncreel.state().sync,
}));

// ---------------------------------------------------------------- playing windows

/**
 * Plays from `startFrame`, lets `warmupMs` pass, then samples until each
 * page has `pictures` pictures made after the warm-up (or the deadline).
 * Returns each page's rows of pictures made while playing after the
 * warm-up, and each page's clock and equaliser state.
 */
async function playWindow(host, pages, { startFrame, pictures = CONFIG.pictures, warmupMs = CONFIG.warmupMs }) {
  await seekTo(host, startFrame);
  const cpu0 = cpuSnapshot();
  const playAt = await setPlaying(host, true);
  await sleep(warmupMs);
  const fromUs = await host.evaluate(() => window.syncreel.serverNowUs());
  const deadline = Date.now() + Math.max(20_000, (pictures / 24) * 1000 * 3);
  const count = (p) => p.evaluate((from) => window.syncreel.videoLog.filter((r) => r[4] >= from).length, fromUs);
  for (;;) {
    const counts = [];
    for (const p of pages) counts.push(await count(p));
    if (counts.every((c) => c >= pictures)) break;
    if (Date.now() > deadline) {
      log(`  window deadline: pictures per page ${counts.join(', ')} of ${pictures}`);
      break;
    }
    await sleep(250);
  }
  const pauseAt = await setPlaying(host, false);
  const cpu1 = cpuSnapshot();
  const out = [];
  for (const p of pages) {
    const rows = (await p.evaluate(() => window.syncreel.videoLog)).filter((r) => r[4] >= fromUs && r[4] < pauseAt);
    const v = await p.evaluate(() => window.syncreel.video());
    out.push({
      rows,
      clock: await clockOf(p),
      delayMs: v.equaliser.delayMs,
      targetMs: v.equaliser.targetMs,
      appliedDelayMs: v.appliedDelayMs,
      codeStats: v.codeStats,
      stats: await p.evaluate(() => window.syncreel.videoStats()).catch(() => null),
    });
  }
  return { playAt, fromUs, pauseAt, pages: out, cpu: cpuBusy(cpu0, cpu1), loadavg: cpu1.loadavg };
}

/** Per-page picture rate, frame-code checks, dropped frames. */
function windowHealth(win) {
  return win.pages.map((pg) => {
    const r = pg.rows;
    const span = r.length > 1 ? (r[r.length - 1][0] - r[0][0]) / 1e6 : 0;
    const coded = r.filter((x) => x[2] != null);
    const frames = r.map((x) => x[1]);
    let skipped = 0;
    for (let i = 1; i < frames.length; i++) if (frames[i] - frames[i - 1] > 1) skipped += frames[i] - frames[i - 1] - 1;
    return {
      pictures: r.length,
      fps: span ? Math.round((r.length / span) * 10) / 10 : null,
      skippedFrames: skipped,
      codesRead: coded.length,
      codeMismatches: coded.filter((x) => x[2] !== x[1]).length,
      delayMs: pg.delayMs,
      targetMs: pg.targetMs == null ? null : Math.round(pg.targetMs),
      jitterBufferDelayMs: pg.stats?.jitterBufferEmittedCount
        ? Math.round((pg.stats.jitterBufferDelay / pg.stats.jitterBufferEmittedCount) * 1000) : null,
      framesDropped: pg.stats?.framesDropped ?? null,
      clockRttMs: pg.clock.sync?.rttUs != null ? pg.clock.sync.rttUs / 1000 : null,
    };
  });
}

/**
 * Sync spread: for every frame that every page showed, max − min over the
 * pages of the instant it was shown (server clock, as the room sees it),
 * and the same by each machine's wall clock (performance.timeOrigin +
 * page clock: the truth on one machine, without clock sync's error).
 */
function spreadOf(win) {
  const firstShown = (pg) => {
    const m = new Map();
    for (const r of pg.rows) if (!m.has(r[1])) m.set(r[1], r[0]);
    return m;
  };
  const maps = win.pages.map(firstShown);
  const wall = (i, serverUs) => serverUs - win.pages[i].clock.offsetUs + win.pages[i].clock.timeOrigin * 1000;
  const spread = [];
  const spreadWall = [];
  const pairs = win.pages.slice(1).map(() => []);
  for (const [frame, t0] of maps[0]) {
    if (!maps.every((m) => m.has(frame))) continue;
    const ts = maps.map((m) => m.get(frame));
    spread.push(Math.max(...ts) - Math.min(...ts));
    const ws = ts.map((t, i) => wall(i, t));
    spreadWall.push(Math.max(...ws) - Math.min(...ws));
    ts.slice(1).forEach((t, i) => pairs[i].push(t - t0));
  }
  return {
    // Share of frames every page showed within 8 ms of each other (at one vsync, at 60 Hz).
    sameVsyncPct: spread.length ? Math.round((spread.filter((d) => d < 8000).length / spread.length) * 100) : null,
    byServerClock: stats(spread),
    byWallClock: stats(spreadWall),
    // Signed skew of each other page against the first (median, ms): a systematic offset shows here.
    skewVsFirstMedianMs: pairs.map((p) => (p.length ? quantile(p, 0.5) / 1000 : null)),
  };
}

const latencyOf = (win, which = null) => stats(win.pages.filter((_, i) => !which || which(i)).flatMap((pg) => pg.rows.map((r) => r[3])));

// ---------------------------------------------------------------- parts

async function partLatency(browser, box) {
  const links = await mediaSession(await box.fresh());
  const pages = [await joinWatching(browser, links.host, 'Bench host')];
  for (let i = 1; i < CONFIG.latencyPages; i++) pages.push(await joinWatching(browser, links.viewer, `Bench viewer ${i}`));
  const host = pages[0];
  try {
    const out = {};
    // Raw: playout delay pinned at 0 on every page (jitterBufferTarget 0):
    // the browser plays as early as its own jitter buffer lets it.
    for (const p of pages) await p.evaluate(() => window.syncreel.setPlayoutDelayMs(0));
    log(`  latency raw (${pages.length} pages, ${CONFIG.pictures} pictures each)`);
    const raw = await playWindow(host, pages, { startFrame: 240 });
    out.raw = { latency: latencyOf(raw), perPage: pages.map((_, i) => latencyOf(raw, (j) => j === i)), spread: spreadOf(raw), health: windowHealth(raw), cpu: raw.cpu, loadavg: raw.loadavg };
    log(`    raw: ${fmt(out.raw.latency)}; spread ${fmt(out.raw.spread.byServerClock)}`);
    // Equalised: the client's own playout equalisation (room target ≥ 120 ms).
    for (const p of pages) await p.evaluate(() => window.syncreel.setPlayoutDelayMs(null));
    log('  latency equalised');
    const eq = await playWindow(host, pages, { startFrame: 960 });
    out.equalised = { latency: latencyOf(eq), perPage: pages.map((_, i) => latencyOf(eq, (j) => j === i)), spread: spreadOf(eq), health: windowHealth(eq), cpu: eq.cpu, loadavg: eq.loadavg };
    log(`    equalised: ${fmt(out.equalised.latency)}; spread ${fmt(out.equalised.spread.byServerClock)}`);
    return out;
  } finally {
    await closePages(pages);
  }
}

/**
 * Seeks by typed timecode on the host page. Per seek: from the moment the
 * form is submitted (server clock, captured on the page) and from the
 * seek's execute_at (the new transport's anchor) to the moment the last
 * page presents a picture of the target frame, named by its RTP timestamp
 * and, where the page read it, by the frame code in its pixels.
 */
async function runSeeks(host, pages, n, gapMs) {
  for (const p of pages) {
    await p.evaluate(() => {
      window.syncreel.setFrameCodeEvery(1);
      if (!window.__benchSubmit) {
        window.__benchSubmit = true;
        window.addEventListener('submit', (ev) => {
          if (ev.target.id === 'tc-form') window.__benchSubmitUs = window.syncreel.serverNowUs();
        }, true);
      }
    });
  }
  const duration = (await host.evaluate(() => window.syncreel.state().session.durationFrames)) ?? 2877;
  let current = (await host.evaluate(() => window.syncreel.state().transport.anchorFrame)) ?? 0;
  const sendToAll = [];
  const execToAll = [];
  const sendToAllCode = [];
  const execToAllCode = [];
  const perPage = pages.map(() => []);
  const lead = [];
  const failures = [];
  // Of the first picture of the target on each page: made how long after
  // execute_at (0 for the still made at execute_at, ~500 ms for the next
  // paused still), and shown how long after its last packet arrived.
  const madeAfterExec = [];
  const receivedToShown = [];
  for (let i = 0; i < n && !overDeadline(); i++) {
    let target;
    for (let k = 0; k < 100; k++) {
      target = Math.floor(random() * duration);
      if (Math.abs(target - current) >= 48) break;
    }
    await host.fill('#tc-input', label(target));
    await host.press('#tc-input', 'Enter');
    const { sentUs, execUs } = await until(host, (f) => {
      const s = window.syncreel.state();
      return s.transport?.anchorFrame === f && !s.transport.playing && window.__benchSubmitUs != null
        && { sentUs: window.__benchSubmitUs, execUs: s.transport.anchorTime };
    }, target, STEP_WAIT_MS);
    lead.push(execUs - sentUs);
    const firsts = [];
    const codes = [];
    let ok = true;
    for (const p of pages) {
      try {
        const first = await until(p, ([f, exec]) => window.syncreel.videoLog.find((r) => r[1] === f && r[4] >= exec - 1000) ?? false, [target, execUs], STEP_WAIT_MS);
        firsts.push(first[0]);
        madeAfterExec.push(first[4] - execUs);
        if (first[5] != null) receivedToShown.push(first[0] - first[5]);
        // The frame code of that picture (read asynchronously; give it a moment).
        const coded = await until(p, ([f, shownUs]) => {
          const r = window.syncreel.videoLog.find((x) => x[2] === f && x[0] >= shownUs);
          return r ? r[0] : (window.syncreel.serverNowUs() - shownUs > 2_000_000 ? -1 : false);
        }, [target, first[0]], STEP_WAIT_MS);
        codes.push(coded >= 0 ? coded : null);
      } catch (err) {
        ok = false;
        failures.push({ target, error: err.message.split('\n')[0] });
      }
    }
    current = target;
    if (ok) {
      const last = Math.max(...firsts);
      sendToAll.push(last - sentUs);
      execToAll.push(last - execUs);
      firsts.forEach((t, j) => perPage[j].push(t - sentUs));
      if (codes.every((c) => c != null)) {
        const lastCode = Math.max(...codes);
        sendToAllCode.push(lastCode - sentUs);
        execToAllCode.push(lastCode - execUs);
      }
    }
    await sleep(gapMs);
  }
  return {
    sendToAllPages: stats(sendToAll),
    executeAtToAllPages: stats(execToAll),
    sendToAllPagesByFrameCode: stats(sendToAllCode),
    executeAtToAllPagesByFrameCode: stats(execToAllCode),
    perPageSendTo: perPage.map(stats),
    leadSendToExecuteAt: stats(lead),
    firstTargetPictureMadeAfterExecuteAt: stats(madeAfterExec),
    firstTargetPictureReceivedToShown: stats(receivedToShown),
    failures,
  };
}

async function partSeek(browser, box) {
  const links = await mediaSession(await box.fresh());
  const pages = [await joinWatching(browser, links.host, 'Bench host')];
  for (let i = 1; i < CONFIG.seekPages; i++) pages.push(await joinWatching(browser, links.viewer, `Bench viewer ${i}`));
  try {
    log(`  seeks (${CONFIG.seeks} on ${pages.length} pages, paused)`);
    const cpu0 = cpuSnapshot();
    const out = await runSeeks(pages[0], pages, CONFIG.seeks, CONFIG.seekGapMs);
    const cpu1 = cpuSnapshot();
    out.cpu = cpuBusy(cpu0, cpu1);
    out.loadavg = cpu1.loadavg;
    log(`    send → every page shows it: ${fmt(out.sendToAllPages)}`);
    log(`    execute_at → every page: ${fmt(out.executeAtToAllPages)}`);
    log(`    by frame code, send → every page: ${fmt(out.sendToAllPagesByFrameCode)}`);
    return out;
  } finally {
    await closePages(pages);
  }
}

/**
 * Joins a fresh browser context (its own storage: a new person) to a room
 * whose host is paused at a frame, or playing. Timed on the page's own
 * clock: from navigation start, and from the join form's submit (the
 * moment the client opens its socket and says hello), to the presentation
 * of the first picture of the right frame (paused: the room's frame;
 * playing: a picture whose frame code matches the frame its RTP timestamp
 * names, i.e. any correct picture) and of the first picture at all.
 */
async function partJoin(browser, box) {
  const links = await mediaSession(await box.fresh());
  const host = await joinWatching(browser, links.host, 'Bench host');
  const out = {};
  try {
    for (const mode of CONFIG.joinModes) {
      const fromSubmit = [];
      const fromNav = [];
      const firstAny = [];
      const toLive = [];
      const failures = [];
      const frame = mode === 'paused' ? 1234 : 300;
      await seekTo(host, frame);
      if (mode === 'playing') await setPlaying(host, true);
      const cpu0 = cpuSnapshot();
      log(`  joins (${CONFIG.joins}, ${mode})`);
      for (let i = 0; i < CONFIG.joins && !overDeadline(); i++) {
        const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
        try {
          const page = await context.newPage();
          await page.addInitScript(() => {
            window.addEventListener('submit', (ev) => {
              if (ev.target.id === 'join-form') window.__benchJoinAt = performance.now();
            }, true);
          });
          await page.goto(links.viewer);
          await page.fill('#name', `Joiner ${mode} ${i}`);
          await page.click('#join');
          const got = await until(page, ([m, f]) => {
            const s = window.syncreel;
            if (!s || s.state().connection !== 'live') return false;
            if (window.__benchLiveAt == null) window.__benchLiveAt = performance.now();
            const rows = s.videoLog;
            const right = rows.find((r) => (m === 'paused' ? r[1] === f : r[2] != null && r[2] === r[1]));
            if (!right) return false;
            const offsetUs = s.serverNowUs() - Math.round(performance.now() * 1000);
            const toPage = (us) => (us - offsetUs) / 1000;
            return {
              rightMs: toPage(right[0]), firstMs: toPage(rows[0][0]), submitMs: window.__benchJoinAt, liveMs: window.__benchLiveAt,
              code: right[2], frame: right[1],
            };
          }, [mode, frame], VIDEO_WAIT_MS);
          fromSubmit.push((got.rightMs - got.submitMs) * 1000);
          fromNav.push(got.rightMs * 1000);
          firstAny.push((got.firstMs - got.submitMs) * 1000);
          toLive.push((got.liveMs - got.submitMs) * 1000);
        } catch (err) {
          failures.push(err.message.split('\n')[0]);
        } finally {
          await context.close().catch(() => {});
        }
        // Let the server forget the peer before the next one.
        await sleep(500);
      }
      const cpu1 = cpuSnapshot();
      if (mode === 'playing') await setPlaying(host, false);
      out[mode] = {
        submitToRightFrame: stats(fromSubmit),
        navigationToRightFrame: stats(fromNav),
        submitToFirstPicture: stats(firstAny),
        submitToLiveObservedUpperBound: stats(toLive),
        failures,
        cpu: cpuBusy(cpu0, cpu1),
        loadavg: cpu1.loadavg,
      };
      log(`    ${mode}: hello → right frame ${fmt(out[mode].submitToRightFrame)}`);
      log(`    ${mode}: navigation → right frame ${fmt(out[mode].navigationToRightFrame)}`);
    }
    return out;
  } finally {
    await closePages([host]);
  }
}

async function partSpread(browser, box) {
  const out = {};
  for (const n of CONFIG.spreadPages) {
    if (overDeadline()) break;
    const links = await mediaSession(await box.fresh());
    const pages = [await joinWatching(browser, links.host, 'Bench host')];
    try {
      for (let i = 1; i < n; i++) pages.push(await joinWatching(browser, links.viewer, `Bench viewer ${i}`));
      log(`  spread, ${n} pages on loopback, equalised`);
      const win = await playWindow(pages[0], pages, { startFrame: 480 });
      out[`${n}pages`] = { spread: spreadOf(win), latency: latencyOf(win), health: windowHealth(win), cpu: win.cpu, loadavg: win.loadavg };
      log(`    ${n} pages: spread ${fmt(out[`${n}pages`].spread.byServerClock)}; wall ${fmt(out[`${n}pages`].spread.byWallClock)}`);
    } finally {
      await closePages(pages);
    }
  }
  return out;
}

/**
 * Pages on loopback and pages in a network namespace whose link has the
 * delay added both ways (scripts/netns.sh). The host is on loopback. The
 * server listens on 0.0.0.0, and the namespace reaches it at 10.77.1.1.
 */
async function partNetem(browser, box) {
  const out = {};
  const scratch = mkdtempSync(join(tmpdir(), 'syncreel-bench-'));
  const wrapper = join(scratch, 'chromium-in-netns');
  cleanups.push(() => rmSync(scratch, { recursive: true, force: true }));
  cleanups.push(() => execFileSync(NETNS, ['down-all'], { stdio: 'ignore' }));
  for (const delay of CONFIG.netemDelays) {
    if (overDeadline()) break;
    const up = execFileSync(NETNS, ['up', '1', String(delay)], { encoding: 'utf8' }).trim();
    execFileSync(NETNS, ['wrapper', '1', wrapper, CONFIG.chromium]);
    log(`  ${up}`);
    const remote = await launch(wrapper);
    const pages = [];
    try {
      const server = await box.fresh();
      const links = await mediaSession(server);
      const origin = `http://10.77.1.1:${server.port}`;
      pages.push(await joinWatching(browser, links.host, 'Bench host (loopback)'));
      for (let i = 1; i < CONFIG.netemLocal; i++) pages.push(await joinWatching(browser, links.viewer, `Loopback ${i}`));
      const local = pages.length;
      for (let i = 0; i < CONFIG.netemRemote; i++) pages.push(await joinWatching(remote, via(links.viewer, origin), `Netns ${i}`));
      log(`    ${local} page(s) on loopback, ${pages.length - local} in the namespace; equalised window`);
      const win = await playWindow(pages[0], pages, { startFrame: 720 });
      const r = {
        spread: spreadOf(win),
        latencyLoopback: latencyOf(win, (i) => i < local),
        latencyNetns: latencyOf(win, (i) => i >= local),
        health: windowHealth(win),
        cpu: win.cpu,
        loadavg: win.loadavg,
      };
      log(`    spread ${fmt(r.spread.byServerClock)}; wall ${fmt(r.spread.byWallClock)}`);
      log(`    latency loopback ${fmt(r.latencyLoopback)}; netns ${fmt(r.latencyNetns)}`);
      if (CONFIG.netemSeeks > 0) {
        r.seek = await runSeeks(pages[0], pages, CONFIG.netemSeeks, CONFIG.seekGapMs);
        log(`    seeks: send → every page ${fmt(r.seek.sendToAllPages)}; lead ${fmt(r.seek.leadSendToExecuteAt)}`);
      }
      out[`${delay}ms`] = r;
    } finally {
      await closePages(pages);
      await remote.close().catch(() => {});
      execFileSync(NETNS, ['down', '1'], { stdio: 'ignore' });
    }
  }
  return out;
}

// ---------------------------------------------------------------- main

/** The figures, one line each, for the docs. */
function summary(res) {
  const lines = [];
  const cpu = (c) => (c ? `machine ${c.machinePct}% busy (bench ${c.oursPct}%, others ${c.othersPct}%)` : '');
  const row = (what, s, extra = '') => lines.push(`${what.padEnd(58)} ${s?.n ? `p50 ${s.p50}  p95 ${s.p95}  p99 ${s.p99}  max ${s.max} ms  N=${s.n}` : 'no samples'}${extra ? `  | ${extra}` : ''}`);
  for (const run of res.runs) {
    lines.push(`== ${run.width}x${run.height} ${run.codec}`);
    const L = run.latency;
    if (L?.raw) {
      const fps = (h) => h.map((x) => x.fps).join('/');
      row('glass-to-glass, raw (playout delay 0)', L.raw.latency, `${fps(L.raw.health)} pictures/s; ${cpu(L.raw.cpu)}`);
      row('glass-to-glass, equalised', L.equalised.latency, `${fps(L.equalised.health)} pictures/s; ${cpu(L.equalised.cpu)}`);
      row('  spread in those windows, raw', L.raw.spread.byServerClock, `same vsync ${L.raw.spread.sameVsyncPct}%`);
      row('  spread in those windows, equalised', L.equalised.spread.byServerClock, `same vsync ${L.equalised.spread.sameVsyncPct}%`);
    } else if (L?.error) lines.push(`latency: ${L.error}`);
    const S = run.seek;
    if (S?.sendToAllPages) {
      row('seek: send → every page shows the frame (RTP)', S.sendToAllPages, cpu(S.cpu));
      row('seek: send → every page shows the frame (frame code)', S.sendToAllPagesByFrameCode);
      row('seek: execute_at → every page (RTP)', S.executeAtToAllPages);
      row('seek: lead (send → execute_at)', S.leadSendToExecuteAt);
      row('seek: first target picture made after execute_at', S.firstTargetPictureMadeAfterExecuteAt);
      if (S.failures.length) lines.push(`  seek failures: ${S.failures.length}`);
    } else if (S?.error) lines.push(`seek: ${S.error}`);
    for (const [mode, J] of Object.entries(run.join ?? {})) {
      if (!J?.submitToRightFrame) continue;
      row(`join (${mode}): hello → first right frame`, J.submitToRightFrame, cpu(J.cpu));
      row(`join (${mode}): navigation → first right frame`, J.navigationToRightFrame);
      row(`join (${mode}): hello → first picture`, J.submitToFirstPicture);
      if (J.failures.length) lines.push(`  join failures: ${J.failures.length}`);
    }
    for (const [k, P] of Object.entries(run.spread ?? {})) {
      if (!P?.spread) continue;
      row(`spread, ${k} loopback (server clock)`, P.spread.byServerClock, `same vsync ${P.spread.sameVsyncPct}%; ${P.health.map((x) => x.fps).join('/')} pictures/s; ${cpu(P.cpu)}`);
      row(`spread, ${k} loopback (wall clock)`, P.spread.byWallClock);
    }
    for (const [k, N] of Object.entries(run.netem ?? {})) {
      if (!N?.spread) continue;
      row(`netem ${k}: spread (server clock)`, N.spread.byServerClock, `same vsync ${N.spread.sameVsyncPct}%; skew ${N.spread.skewVsFirstMedianMs.map((x) => x?.toFixed(1)).join('/')} ms; ${N.health.map((x) => x.fps).join('/')} pictures/s; ${cpu(N.cpu)}`);
      row(`netem ${k}: spread (wall clock)`, N.spread.byWallClock);
      row(`netem ${k}: latency loopback page(s)`, N.latencyLoopback);
      row(`netem ${k}: latency namespace page(s)`, N.latencyNetns);
      if (N.seek) row(`netem ${k}: seek send → every page`, N.seek.sendToAllPages, `lead p50 ${N.seek.leadSendToExecuteAt.p50} ms`);
    }
  }
  return lines.join('\n');
}

async function main() {
  results.machine = {
    date: new Date().toISOString(),
    nproc: Number(execFileSync('nproc', { encoding: 'utf8' }).trim()),
    kernel: readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim(),
    chromium: execFileSync(CONFIG.chromium, ['--version'], { encoding: 'utf8' }).trim(),
    loadavgAtStart: readFileSync('/proc/loadavg', 'utf8').trim(),
  };
  log(`machine: ${JSON.stringify(results.machine)}`);
  const wants = (p) => CONFIG.parts.includes(p);
  const browser = await launch();
  cleanups.push(() => browser.close());
  try {
    for (const height of CONFIG.sizes) {
      const runOther = CONFIG.otherSizes.includes(height);
      const netem = wants('netem') && height === CONFIG.netemSize;
      if (!wants('latency') && !runOther && !netem) continue;
      if (overDeadline()) break;
      // Pages in a namespace need the server on an address they can reach.
      // Every part (and every room size, every delay) gets a fresh server
      // process with one session: sessions outlive their pages, and each
      // one's player keeps running.
      const bind = netem ? '0.0.0.0:0' : '127.0.0.1:0';
      let server = null;
      const box = {
        async fresh() {
          await server?.stop();
          server = await startServer({ height, bind });
          log(`  server ${server.width}×${server.height} on ${server.base} (pid ${server.pid})`);
          return server;
        },
      };
      cleanups.push(() => server?.stop());
      const run = { width: height === 1080 ? 1920 : 1280, height, codec: CONFIG.codec || 'h264 (config default)' };
      results.runs.push(run);
      try {
        const step = async (name, fn) => {
          if (overDeadline()) return;
          const t = Date.now();
          try {
            run[name] = await fn(browser, box);
          } catch (err) {
            run[name] = { error: err.message.split('\n').slice(0, 3).join(' | ') };
            log(`  ${name} failed: ${run[name].error}`);
          }
          run[name].seconds = Math.round((Date.now() - t) / 1000);
          writeFileSync(CONFIG.out, JSON.stringify(results, null, 1));
        };
        if (wants('latency')) await step('latency', partLatency);
        if (runOther && wants('seek')) await step('seek', partSeek);
        if (runOther && wants('join')) await step('join', partJoin);
        if (runOther && wants('spread')) await step('spread', partSpread);
        if (netem) await step('netem', partNetem);
      } finally {
        await server?.stop();
      }
    }
  } finally {
    await cleanupAll();
  }
  results.machine.loadavgAtEnd = readFileSync('/proc/loadavg', 'utf8').trim();
  results.machine.seconds = Math.round((Date.now() - started) / 1000);
  writeFileSync(CONFIG.out, JSON.stringify(results, null, 1));
  log(`results: ${CONFIG.out}`);
  console.log(summary(results));
}

main().catch(async (err) => {
  console.error(err);
  await cleanupAll();
  process.exit(1);
});
