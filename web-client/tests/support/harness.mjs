// Starts the real server binary and real Chromium for the browser tests.
// Every wait here is on an event (a line on stdout, a page condition) with
// a deadline; nothing sleeps in the hope that something has happened.

import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const WEB_CLIENT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const REPO_ROOT = resolve(WEB_CLIENT, '..');
const START_TIMEOUT_MS = 20_000;
/** The server binary the tests run (`SYNCREEL_BIN`, else the debug build). */
export const SERVER_BIN = resolve(WEB_CLIENT, process.env.SYNCREEL_BIN ?? '../target/debug/syncreel');

export const WAIT_MS = 10_000;

/** The operator token every test server is started with (server.admin_token). */
export const OPERATOR = 'browser-test-operator';
/** The header that makes sessions on a test server. */
export const OPERATOR_AUTH = { authorization: `Bearer ${OPERATOR}` };

/**
 * Runs `syncreel serve` on a free port; resolves once it says where it
 * listens. `env` adds to the server's environment, e.g.
 * `{ SYNCREEL_LINKS__PASSCODE_ATTEMPTS: '2' }`; `args` go at the end of
 * its command line, e.g. `['--cluster', nats, '--store', pg]`.
 */
export async function startServer({ env = {}, args = [] } = {}) {
  const bin = SERVER_BIN;
  const dataDir = mkdtempSync(join(tmpdir(), 'syncreel-browser-'));
  const child = spawn(bin, ['serve', '--bind', '127.0.0.1:0', '--data-dir', dataDir, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'syncreel=warn', SYNCREEL_SERVER__ADMIN_TOKEN: OPERATOR, ...env,
    },
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-8000);
  });
  const base = await new Promise((resolveBase, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      // Nobody holds a handle to stop it: it must not outlive the test.
      child.kill('SIGKILL');
      reject(new Error(`server did not start within ${START_TIMEOUT_MS} ms:\n${stderr}`));
    }, START_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin} (build it with cargo build, or set SYNCREEL_BIN): ${err.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code} before listening:\n${stderr}`));
    });
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/listening on (http:\/\/\S+)/);
      if (m) {
        clearTimeout(timer);
        resolveBase(m[1]);
      }
    });
  });
  const exited = new Promise((r) => child.once('exit', r));
  return {
    base,
    pid: child.pid,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const forced = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(forced);
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/**
 * The directory the media tests keep between runs: `syncreel demo`
 * renders its clip (2 min of 720p23.976, about 30 s of work) into
 * `<dir>/media/demo.mov` once and reuses it afterwards.
 */
export const MEDIA_DATA_DIR = process.env.SYNCREEL_MEDIA_DIR ?? join(tmpdir(), 'syncreel-browser-media');
// Long enough for the first run, which renders the clip.
const DEMO_START_TIMEOUT_MS = 240_000;

/**
 * The stream `startDemoServer` gives its server, as environment; another
 * node serving the same media (a cluster test's gateway) takes the same.
 * Half-size pictures: what the tests check (frame identity, sync) does
 * not depend on size, and two pages decoding 720p beside the server's
 * encoder leave a 2-core CI machine too little headroom.
 */
export const DEMO_STREAM_ENV = Object.freeze({
  SYNCREEL_MEDIA__STREAM_WIDTH: process.env.SYNCREEL_MEDIA__STREAM_WIDTH ?? '640',
  SYNCREEL_MEDIA__STREAM_HEIGHT: process.env.SYNCREEL_MEDIA__STREAM_HEIGHT ?? '360',
  SYNCREEL_MEDIA__BITRATE_KBPS: process.env.SYNCREEL_MEDIA__BITRATE_KBPS ?? '1200',
});

/**
 * Runs `syncreel demo` on a free port with the persistent media dir;
 * resolves once it has printed its session's links (so the clip exists
 * and a media session was made from it). Returns the base URL, the media
 * root, and the demo session's links by role. `env` adds to the server's
 * environment, e.g. `{ SYNCREEL_MEDIA__CODEC: 'h264' }`; `args` go at the
 * end of its command line, e.g. `['--cluster', nats, '--store', pg]`.
 */
export async function startDemoServer({ env = {}, args = [] } = {}) {
  const bin = SERVER_BIN;
  mkdirSync(MEDIA_DATA_DIR, { recursive: true });
  // The clip is kept between runs (it takes a while to render); the
  // review record is fresh each time, so old demo sessions do not pile up.
  const recordDir = mkdtempSync(join(tmpdir(), 'syncreel-browser-record-'));
  const child = spawn(bin, ['demo', '--bind', '127.0.0.1:0', '--data-dir', recordDir, ...args], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      ...process.env,
      RUST_LOG: process.env.RUST_LOG ?? 'syncreel=warn',
      SYNCREEL_SERVER__ADMIN_TOKEN: OPERATOR,
      SYNCREEL_MEDIA__ROOT: join(MEDIA_DATA_DIR, 'media'),
      ...DEMO_STREAM_ENV,
      ...env,
    },
  });
  let stderr = '';
  child.stderr.on('data', (d) => {
    stderr = (stderr + d).slice(-8000);
  });
  const started = await new Promise((resolveStarted, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      // Nobody holds a handle to stop it: it must not outlive the test.
      child.kill('SIGKILL');
      reject(new Error(`demo server printed no links within ${DEMO_START_TIMEOUT_MS} ms:\n${out}\n${stderr}`));
    }, DEMO_START_TIMEOUT_MS);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(new Error(`cannot run ${bin} (build it with cargo build, or set SYNCREEL_BIN): ${err.message}`));
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`demo server exited with ${code}:\n${out}\n${stderr}`));
    });
    child.stdout.on('data', (d) => {
      out += d;
      const base = out.match(/listening on (http:\/\/\S+)/)?.[1];
      // The demo prints two sessions, each a `session` line then its
      // links: the reel, then a playlist.
      const sessions = out.split(/^session /m).slice(1).map((block) => Object.fromEntries(
        [...block.matchAll(/^(host|reviewer|viewer)\s+(http:\/\/\S+)$/gm)].map((m) => [m[1], m[2]]),
      ));
      const whole = sessions.filter((l) => l.host && l.reviewer && l.viewer);
      if (base && whole.length === 2) {
        clearTimeout(timer);
        resolveStarted({ base, links: whole[0], playlistLinks: whole[1] });
      }
    });
  });
  child.removeAllListeners('exit');
  const exited = new Promise((r) => child.once('exit', r));
  return {
    ...started,
    pid: child.pid,
    mediaRoot: join(MEDIA_DATA_DIR, 'media'),
    dataDir: MEDIA_DATA_DIR,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const forced = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(forced);
      }
      rmSync(recordDir, { recursive: true, force: true });
    },
  };
}

const CLUSTER_SCRIPTS = join(REPO_ROOT, 'scripts', 'cluster');
// Each script gives its server 20 s to be ready (CLUSTER_READY_TENTHS);
// this bounds the script as a whole (initdb included).
const CLUSTER_SCRIPT_TIMEOUT_MS = 60_000;

/** Runs `scripts/cluster/<script> <command> <dir>`; resolves with what it printed on stdout. */
function clusterScript(script, command, dir) {
  return new Promise((resolveOut, reject) => {
    execFile('bash', [join(CLUSTER_SCRIPTS, script), command, dir], { timeout: CLUSTER_SCRIPT_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err) reject(new Error(`scripts/cluster/${script} ${command} ${dir} failed (${err.message}):\n${stderr}`));
      else resolveOut(stdout.trim());
    });
  });
}

/**
 * A throwaway JetStream NATS and PostgreSQL on loopback for a cluster
 * test, by the project's scripts/cluster/{nats,postgres}.sh, in one temp
 * dir. Resolves with their URLs (`nats`, `store`) and `stop()`, which
 * stops both and removes the dir. A start that fails stops what it began.
 */
export async function startClusterBackends() {
  const dir = mkdtempSync(join(tmpdir(), 'syncreel-browser-cluster-'));
  // As root the script runs PostgreSQL as the postgres user, which must
  // reach its directory.
  chmodSync(dir, 0o755);
  const parts = [['nats.sh', join(dir, 'nats')], ['postgres.sh', join(dir, 'pg')]];
  const stop = async () => {
    const stopped = await Promise.allSettled(parts.map(([script, sub]) => clusterScript(script, 'stop', sub)));
    rmSync(dir, { recursive: true, force: true });
    const failed = stopped.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
    if (failed.length) throw new Error(failed.join('\n'));
  };
  const started = await Promise.allSettled(parts.map(([script, sub]) => clusterScript(script, 'start', sub)));
  const failed = started.filter((r) => r.status === 'rejected').map((r) => r.reason.message);
  if (failed.length) {
    await stop().catch(() => {});
    throw new Error(failed.join('\n'));
  }
  const [nats, store] = started.map((r) => r.value);
  return { nats, store, dir, stop };
}

/**
 * A server's /metrics (asked with the operator's token): a Map from each
 * series (its name, with labels if it has any) to its value.
 */
export async function metrics(base) {
  const res = await fetch(`${base}/metrics`, { headers: OPERATOR_AUTH });
  const text = await res.text();
  if (!res.ok) throw new Error(`GET /metrics answered ${res.status}: ${text}`);
  const series = new Map();
  for (const line of text.split('\n')) {
    const m = line.match(/^([A-Za-z_:][\w:]*(?:\{[^}]*\})?)\s+(\S+)$/);
    if (m) series.set(m[1], Number(m[2]));
  }
  return series;
}

/** POSTs a session body as is; returns {status, body}. */
export async function postSession(base, body) {
  const res = await fetch(`${base}/api/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...OPERATOR_AUTH },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Left null: the assertion shows the text.
  }
  return { status: res.status, body: json, text };
}

/** A session over the demo clip (a `startDemoServer` server); returns the body with links by role. */
export async function createMediaSession(base, title = 'Media test') {
  const { status, body, text } = await postSession(base, { title, media: 'demo.mov' });
  if (status !== 201) throw new Error(`POST /api/sessions answered ${status}: ${text}`);
  body.byRole = Object.fromEntries(body.links.map((l) => [l.role, l]));
  return body;
}

/** Creates the standard test session; returns the body with links by role. */
export async function createSession(base, body = {}) {
  const res = await fetch(`${base}/api/sessions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...OPERATOR_AUTH },
    body: JSON.stringify({
      title: 'Browser test', fps: '24000/1001', durationFrames: 14400, startTimecode: '01:00:00:00', ...body,
    }),
  });
  if (res.status !== 201) throw new Error(`POST /api/sessions answered ${res.status}: ${await res.text()}`);
  const created = await res.json();
  created.byRole = Object.fromEntries(created.links.map((l) => [l.role, l]));
  return created;
}

export async function launchBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Video: play muted video without a gesture, and keep painting
      // pages that are not in front (every test page is a background
      // context of the same headless browser).
      '--autoplay-policy=no-user-gesture-required',
      '--disable-background-timer-throttling', '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
    ],
  });
}

/**
 * Opens a link in its own browser context (its own storage, as a separate
 * person would have), joins under `name` and waits for the welcome.
 * `viewport` is the window's size (a laptop's 1280×800 unless told);
 * `deviceScaleFactor` below 1 takes smaller screenshots of the same layout;
 * `init`, a function, runs in the page before its own scripts.
 */
export async function joinAs(browser, url, name, {
  viewport = { width: 1280, height: 800 }, deviceScaleFactor = 1, init = null, hasTouch = false,
} = {}) {
  const context = await browser.newContext({ viewport, deviceScaleFactor, hasTouch });
  // Runs before the page's own scripts, e.g. to spy on a browser API.
  if (init) await context.addInitScript(init);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.problems = problems;
  await page.goto(url);
  await page.fill('#name', name);
  await page.click('#join');
  await page.waitForFunction(() => window.syncreel?.state().connection === 'live', null, { timeout: WAIT_MS });
  // Clock sync's join burst has finished once a report went out.
  await page.waitForFunction(() => window.syncreel.state().sync.rounds >= 1, null, { timeout: WAIT_MS });
  return page;
}

/** Waits until `fn(arg)` is truthy in the page; returns its value. */
export async function until(page, fn, arg, timeout = WAIT_MS) {
  const handle = await page.waitForFunction(fn, arg, { timeout, polling: 'raf' });
  return handle.jsonValue();
}

export const state = (page) => page.evaluate(() => window.syncreel.state());
export const displayed = (page) => page.evaluate(() => window.syncreel.displayed());
export const frameLog = (page) => page.evaluate(() => window.syncreel.frameLog);

/** Resolves once the page shows the transport version `v` with nothing queued. */
export function settledAt(page, v) {
  return until(page, (want) => {
    const s = window.syncreel.state();
    return s.transportVersion === want && s.pending === 0;
  }, v);
}

/**
 * A TCP relay in front of the server, so a test can cut a browser's
 * connection (every socket at once) and refuse new ones for a while:
 * the browser sees a real network failure, not a polite close.
 */
export async function startRelay(targetBase) {
  const target = new URL(targetBase);
  const sockets = new Set();
  const relay = { refusing: false, refused: 0, accepted: 0 };
  const server = createServer((inbound) => {
    if (relay.refusing) {
      relay.refused += 1;
      inbound.destroy();
      return;
    }
    relay.accepted += 1;
    const outbound = connect(Number(target.port), target.hostname);
    for (const [a, b] of [[inbound, outbound], [outbound, inbound]]) {
      sockets.add(a);
      a.on('close', () => {
        sockets.delete(a);
        b.destroy();
      });
      a.on('error', () => a.destroy());
      a.pipe(b);
    }
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  relay.base = `http://127.0.0.1:${server.address().port}`;
  relay.cut = () => {
    for (const socket of sockets) socket.destroy();
  };
  relay.stop = async () => {
    relay.cut();
    await new Promise((r) => server.close(r));
  };
  return relay;
}

/** Polls a condition in this process until it holds or the deadline passes. */
export async function waitFor(what, condition, timeout = WAIT_MS) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** No page threw or logged an error, apart from the `expected` kinds. */
export function assertNoPageErrors(pages, expected = []) {
  for (const page of pages) {
    const unexpected = page.problems.filter((p) => !expected.some((re) => re.test(p)));
    assert.deepEqual(unexpected, [], 'page reported errors');
  }
}

/** A first run renders the demo's clips; a page then needs a moment for its first picture. */
export const VIDEO_WAIT_MS = 60_000;

/** Polls the picture's frame code (read off its pixels) until it is `code`. */
export async function pictureShows(page, code, timeout = VIDEO_WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last = null;
  while (Date.now() < deadline) {
    last = await page.evaluate(() => window.syncreel.readVideoFrameCode({ via: 'canvas' }));
    if (last === code) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`the picture shows frame code ${last}, not ${code}`);
}

/** Seeks through the typed-timecode box and waits for every page to show `frame`. */
export async function seekTo(driver, timecode, frame, everyone) {
  await driver.fill('#tc-input', timecode);
  await driver.press('#tc-input', 'Enter');
  const v = await until(driver, (f) => {
    const s = window.syncreel.state();
    return window.syncreel.displayed()?.frame === f && s.pending === 0 && s.transportVersion;
  }, frame);
  for (const page of everyone) {
    await settledAt(page, v);
    await until(page, (f) => window.syncreel.displayed()?.frame === f, frame);
  }
}

/**
 * The page's serious and critical accessibility violations, by axe-core
 * (a devDependency, injected into the page): [{id, impact, help, targets}].
 */
export async function axeViolations(page) {
  // Evaluated rather than added as a script tag: the page's CSP (script-src 'self') refuses inline scripts.
  await page.evaluate(readFileSync(join(WEB_CLIENT, 'node_modules', 'axe-core', 'axe.min.js'), 'utf8'));
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id, impact: v.impact, help: v.help, targets: v.nodes.slice(0, 5).map((n) => n.target.join(' ')),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

/**
 * A short H.264 MOV made by GStreamer's `gst-launch-1.0` (what the server
 * decodes) in `dir`, padded to `size` bytes with a top-level `free` atom
 * of random bytes that QuickTime readers skip: an upload of any size that
 * probes like a camera file. Returns the bytes.
 */
export function paddedClip(dir, name, size) {
  const base = join(dir, `${name}.base.mov`);
  const made = spawnSync('gst-launch-1.0', [
    '-q', 'videotestsrc', 'num-buffers=24', '!', 'video/x-raw,width=160,height=90,framerate=24/1',
    '!', 'x264enc', '!', 'qtmux', '!', 'filesink', `location=${base}`,
  ], { encoding: 'utf8' });
  assert.equal(made.status, 0, `gst-launch-1.0 (GStreamer's tools) makes the clip: ${made.error ?? made.stderr}`);
  const clip = readFileSync(base);
  const pad = size - clip.length;
  const header = Buffer.alloc(8);
  header.writeUInt32BE(pad, 0);
  header.write('free', 4, 'latin1');
  return Buffer.concat([clip, header, randomBytes(pad - 8)]);
}
