// Video end to end: the real server streams the demo clip over WebRTC to
// real Chromium pages, and the frame each page shows is checked two
// independent ways: from the picture's RTP timestamp (the frame the
// server says it is) and from the frame code burnt into its pixels (the
// frame it actually is).
//
// The demo clip (2 min of 720p23.976 from 01:00:00:00) is rendered once
// into a persistent directory (MEDIA_DATA_DIR) and reused.
import assert from 'node:assert/strict';
import { copyFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join as joinPath } from 'node:path';
import { after, afterEach, before, test } from 'node:test';

import {
  assertNoPageErrors, createSession, joinAs, launchBrowser, postSession, startDemoServer, startRelay, state,
  until,
} from './support/harness.mjs';

// Connecting, the first keyframe, and a seek's keyframe take a second or
// two on a busy two-core machine; the deadlines leave room for that.
const VIDEO_WAIT_MS = 20_000;

let server;
let browser;
const pages = [];
const scratch = [];

before(async () => {
  server = await startDemoServer();
  browser = await launchBrowser();
});

afterEach(async () => {
  for (const page of pages.splice(0)) await page.context().close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  for (const path of scratch) rmSync(path, { force: true });
});

async function mediaSession(media = 'demo.mov') {
  const { status, body, text } = await postSession(server.base, { title: 'Video test', media });
  assert.equal(status, 201, text);
  body.byRole = Object.fromEntries(body.links.map((l) => [l.role, l]));
  return body;
}

async function join(url, name) {
  const page = await joinAs(browser, url, name);
  pages.push(page);
  return page;
}

/** Joins and waits for the first picture. */
async function joinWatching(url, name) {
  const page = await join(url, name);
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  return page;
}

/** Polls `fn(arg)` in the page (it may be async) until it returns a truthy value; returns it. */
async function eventually(page, what, fn, arg, timeout = VIDEO_WAIT_MS) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await page.evaluate(fn, arg);
    if (last?.ok) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; last: ${JSON.stringify(last)}`);
    await page.waitForTimeout(25);
  }
}

/**
 * Waits until the page's video shows `frame`: read off the pixels through
 * a canvas, and named by the RTP timestamp of the last picture presented.
 */
function videoShows(page, frame) {
  return eventually(page, `video frame ${frame}`, async (want) => {
    const code = await window.syncreel.readVideoFrameCode({ via: 'canvas' });
    const shown = window.syncreel.video().shown;
    return { ok: code === want && shown?.frame === want, code, rtpFrame: shown?.frame };
  }, frame);
}

/** The frame of a log row at server instant `t`: the last row shown at or before it. */
function rowAt(log, t) {
  let lo = 0;
  let hi = log.length - 1;
  if (!log.length || log[0][0] > t) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (log[mid][0] <= t) lo = mid;
    else hi = mid - 1;
  }
  return log[lo];
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[s.length >> 1] : null;
};


test('a typed timecode seek shows the exact frame in both videos, paused; so does a second seek', async (t) => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host V1');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer V1');
  for (const page of [host, viewer]) assert.equal(await page.isVisible('#video'), true);

  await host.fill('#tc-input', '01:00:10:05');
  await host.press('#tc-input', 'Enter');
  for (const page of [host, viewer]) {
    const seen = await videoShows(page, 245);
    t.diagnostic(`frame 245: code ${seen.code}, rtp ${seen.rtpFrame}`);
    // The stage labels the video's frame beside the room's.
    await until(page, () => document.getElementById('video-timecode').textContent === '01:00:10:05'
      && document.getElementById('video-frame').textContent === '#245'
      && document.getElementById('timecode').textContent === '01:00:10:05');
  }
  assert.match(await viewer.textContent('#video-offset'), /^±0 f \/ \d+ ms$/);

  await host.fill('#tc-input', '01:00:20:00');
  await host.press('#tc-input', 'Enter');
  for (const page of [host, viewer]) await videoShows(page, 480);
  // Paused: one exact picture, the same on both pages, however often it is read.
  const codes = [];
  for (const page of [host, viewer]) {
    for (let i = 0; i < 3; i++) {
      codes.push(await page.evaluate(() => window.syncreel.readVideoFrameCode({ via: 'canvas' })));
      codes.push(await page.evaluate(() => window.syncreel.readVideoFrameCode()));
    }
  }
  assert.deepEqual(codes, Array(12).fill(480));
  for (const page of [host, viewer]) {
    const v = await page.evaluate(() => window.syncreel.video());
    t.diagnostic(`${v.shown.frame} shown ${(v.latencyMedianUs / 1000).toFixed(1)} ms late; code reads ${v.codeStats.via}, `
      + `${(v.codeStats.totalMs / Math.max(1, v.codeStats.reads)).toFixed(2)} ms mean, ${v.codeStats.maxMs.toFixed(1)} ms max`);
    assert.equal(v.codeStats.mismatches, 0, 'a picture showed another frame than its RTP timestamp names');
  }
  assertNoPageErrors(pages);
});

/** Polls an async condition in this process until it holds or the deadline passes. */
async function waitForAsync(what, condition, timeout) {
  const deadline = Date.now() + timeout;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** One frame at 23.976, in µs. */
const FRAME_US = 1001e6 / 24000;

/** The lowest and highest frame a log shows over [t0, t1] (col: 1 by RTP, 2 by code). */
function framesDuring(log, t0, t1, col) {
  const first = rowAt(log, t0);
  let lo = first?.[col] ?? Infinity;
  let hi = first?.[col] ?? -Infinity;
  for (const r of log) {
    if (r[0] > t0 && r[0] <= t1 && r[col] != null) {
      lo = Math.min(lo, r[col]);
      hi = Math.max(hi, r[col]);
    }
  }
  return [lo, hi];
}

/**
 * Compares what two video logs show at instants every `stepUs` where both
 * cover, by RTP frame (col 1) or frame code (col 2). `strict`: instants
 * where the frames differ by more than one. `late`: instants where even
 * a skew of one frame period does not explain the difference (page A's
 * frame is not within one of anything B shows within ±1 frame of that
 * instant, or vice versa). When the stream itself skips frames (a busy
 * server drops output ticks), pages a few ms apart differ by the size of
 * the skip for those few ms: that is strict but not late.
 *
 * `transient`: instants where a page shows a picture whose own latency
 * (shown − made, column 3) is more than a frame period off that page's
 * median: its jitter buffer or renderer fell behind (a shared two-core
 * machine running two headless pages and the server does that; Chromium
 * then raises its own delay step by step). Strict and late count only
 * the other instants; the caller bounds transients on their own. A
 * systematic fault (an offset, a wrong mapping, no equalisation) moves a
 * page's median, not single pictures, so it stays in strict and late.
 */
function compareVideo(a, b, col, stepUs) {
  const from = Math.max(a[0][0], b[0][0]);
  const to = Math.min(a[a.length - 1][0], b[b.length - 1][0]);
  const [medA, medB] = [a, b].map((log) => median(log.map((r) => r[3])));
  const out = { instants: 0, strict: 0, late: 0, transient: 0, worst: 0, examples: [], from, to };
  for (let at = from; at <= to; at += stepUs) {
    const [ra, rb] = [rowAt(a, at), rowAt(b, at)];
    const [fa, fb] = [ra?.[col], rb?.[col]];
    if (fa == null || fb == null) continue;
    out.instants += 1;
    const transient = Math.abs(ra[3] - medA) > FRAME_US || Math.abs(rb[3] - medB) > FRAME_US;
    if (transient) out.transient += 1;
    const diff = Math.abs(fa - fb);
    out.worst = Math.max(out.worst, diff);
    if (diff <= 1 || transient) continue;
    out.strict += 1;
    const [bLo, bHi] = framesDuring(b, at - FRAME_US, at + FRAME_US, col);
    const [aLo, aHi] = framesDuring(a, at - FRAME_US, at + FRAME_US, col);
    if (fa < bLo - 1 || fa > bHi + 1 || fb < aLo - 1 || fb > aHi + 1) {
      out.late += 1;
      if (out.examples.length < 5) out.examples.push({ at, fa, fb });
    }
  }
  return out;
}

/** When each page first showed each frame both showed: B − A skews, µs. */
function samePictureSkews(a, b) {
  const firstShown = (log) => {
    const m = new Map();
    for (const r of log) if (!m.has(r[1])) m.set(r[1], r[0]);
    return m;
  };
  const [ma, mb] = [firstShown(a), firstShown(b)];
  return [...ma].filter(([f]) => mb.has(f)).map(([f, t]) => mb.get(f) - t);
}

// The bounds a window of play sync is held to (see the assertions below).
const LATE_SHARE = 0.02;
const STRICT_SHARE = 0.1;
const TRANSIENT_SHARE = 0.5;
const withinBounds = (r) => r.late <= r.instants * LATE_SHARE && r.strict <= r.instants * STRICT_SHARE
  && r.transient <= r.instants * TRANSIENT_SHARE;

const quantile = (xs, q) => {
  const s = [...xs].sort((x, y) => x - y);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : null;
};

test('playing, both videos show the same frame at the same server instant, within one frame', async (t) => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host V2');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer V2');
  await host.fill('#tc-input', '01:00:30:00');
  await host.press('#tc-input', 'Enter');
  for (const page of [host, viewer]) await videoShows(page, 720);

  await host.keyboard.press('Space');
  const started = await until(host, () => {
    const s = window.syncreel.state();
    return s.transport.playing && s.pending === 0 && s.transport.anchorTime;
  });
  // Playout equalisation converges over a few presence rounds (reports
  // go out twice a second); until both pages work to the same room target
  // they are meant to differ, so wait for that, not for a fixed time. Then
  // a second for the delays to reach the target (jitter buffers also leave
  // the paused stills' pace), then a window of about three seconds (72
  // pictures on each page) to sample. A starved stream (a busy machine)
  // delivers fewer pictures per second: the window then lasts longer,
  // within a deadline.
  const FRAME_MS = 1000 / 24;
  await waitForAsync('both pages working to one playout target', async () => {
    const [a, b] = await Promise.all([host, viewer].map((p) => p.evaluate(() => window.syncreel.video().equaliser.targetMs)));
    return a != null && b != null && Math.abs(a - b) <= FRAME_MS;
  }, 20_000);
  // A window of 72 pictures (about three seconds) on each page. On this
  // two-core machine, shared by the server and two headless pages, a
  // window can measure the machine rather than sync: a stream the server
  // could not feed skips and stalls whatever the clients do, and a
  // starved renderer drifts behind its own steady latency for a while
  // (seen on an idle run: one page 106 → 300 ms over one window at 19
  // pictures/s, with its delay set at 129 ms). So up to three windows
  // are sampled, and the first that meets every bound below passes; the
  // last one sampled is judged either way. What this test is for, a
  // systematic error (a wrong mapping, an offset, no equalisation), fails
  // every window.
  const WINDOW = 72;
  const STARVED_FPS = 18;
  let logs = [];
  let fps = [];
  try {
    for (let attempt = 1; attempt <= 3; attempt += 1) {
      const shown = await Promise.all([host, viewer].map((p) => p.evaluate(() => window.syncreel.displayed()?.frame ?? 0)));
      const from = Math.max(720, ...shown) + 24;
      const sampled = (page, first) => page.evaluate((f) => window.syncreel.videoLog.filter((r) => r[1] >= f).length, first);
      await waitForAsync('72 playing pictures on each page', async () => (await sampled(host, from)) >= WINDOW
        && (await sampled(viewer, from)) >= WINDOW, 30_000);
      logs = [];
      for (const page of [host, viewer]) {
        const log = await page.evaluate(() => window.syncreel.videoLog);
        // Pictures made while playing, after the warm-up, in the window.
        logs.push(log.filter((r) => r[4] >= started && r[1] >= from && r[1] < from + WINDOW));
      }
      fps = logs.map((log) => (log.length < 2 ? 0 : log.length / ((log[log.length - 1][0] - log[0][0]) / 1e6)).toFixed(1));
      const fed = Math.min(...fps.map(Number)) >= STARVED_FPS;
      const sample = logs.every((log) => log.length >= 2) ? compareVideo(logs[0], logs[1], 1, 5_000) : null;
      const inSync = sample != null && withinBounds(sample);
      if (fed && inSync) break;
      t.diagnostic(`window ${attempt} from frame ${from}: ${fps.join(' / ')} pictures/s; by RTP `
        + `${sample?.transient ?? '—'} of ${sample?.instants ?? '—'} instants in a latency transient, `
        + `${sample?.strict ?? '—'} > 1 frame apart, ${sample?.late ?? '—'} beyond a one-frame skew`);
    }
  } finally {
    await host.keyboard.press('Space');
  }
  const [a, b] = logs;
  assert.ok(a.length >= WINDOW / 2 && b.length >= WINDOW / 2, `too few pictures: ${a.length} and ${b.length}`);
  const byRtp = compareVideo(a, b, 1, 5_000);
  const byCode = compareVideo(a.filter((r) => r[2] != null), b.filter((r) => r[2] != null), 2, 5_000);
  const logFile = joinPath(process.env.SYNCREEL_VIDEO_LOG_DIR ?? tmpdir(), 'syncreel-video-logs.json');
  const equalisers = await Promise.all([host, viewer].map((p) => p.evaluate(() => window.syncreel.video().equaliser)));
  writeFileSync(logFile, JSON.stringify({ started, logs, equalisers }));
  t.diagnostic(`video logs: ${logFile}`);
  const skews = samePictureSkews(a, b);
  const ms = (us) => (us / 1000).toFixed(1);
  const lat = logs.map((log) => median(log.map((r) => r[3])));
  const mismatched = logs.flat().filter((r) => r[2] != null && r[2] !== r[1]);
  for (const [what, r] of [['RTP', byRtp], ['frame code', byCode]]) {
    t.diagnostic(`by ${what}: ${r.instants} instants over ${((r.to - r.from) / 1e6).toFixed(2)} s, worst ${r.worst} frame(s); `
      + `${r.transient} instants in a latency transient; of the others, ${r.strict} > 1 frame apart, `
      + `${r.late} of them not explained by a skew under one frame period`);
  }
  t.diagnostic(`same picture shown B − A: median ${ms(quantile(skews, 0.5))} ms, p5 ${ms(quantile(skews, 0.05))}, `
    + `p95 ${ms(quantile(skews, 0.95))} ms over ${skews.length} pictures; median latency ${lat.map(ms).join(' / ')} ms; `
    + `pictures/s ${fps.join(' / ')}; ${logs.flat().filter((r) => r[2] != null).length} codes read, ${mismatched.length} mismatched`);
  for (const page of [host, viewer]) {
    const v = await page.evaluate(() => window.syncreel.video());
    t.diagnostic(`delay ${v.equaliser.delayMs} ms (target ${v.equaliser.targetMs?.toFixed(0) ?? '—'} ms); `
      + `code reads ${v.codeStats.via} ${(v.codeStats.totalMs / Math.max(1, v.codeStats.reads)).toFixed(2)} ms mean`);
  }
  // Say so rather than report a starved stream as a sync failure.
  const rate = Math.min(...fps.map(Number));
  assert.ok(rate >= STARVED_FPS, `the stream ran at ${rate} pictures/s (23.976 expected): the machine is too busy to measure sync`);
  assert.ok(byRtp.to - byRtp.from >= 2_000_000, `only ${(byRtp.to - byRtp.from) / 1e6} s of overlapping video`);
  assert.ok(a[a.length - 1][1] - a[0][1] >= 48, 'the video did not play');
  // A page whose renderer stalls for a moment (two headless pages share
  // two cores with the server) lags for a few instants: seen up to 1.1 %
  // of them, from one or two stalls of ~80 ms. Anything systematic (a
  // wrong mapping, an offset, no equalisation) is late at most instants.
  for (const [what, r] of [['by RTP', byRtp], ['by frame code', byCode]]) {
    assert.ok(r.late <= r.instants * LATE_SHARE, `${what}: ${r.late} of ${r.instants} instants more than a frame apart beyond `
      + `a one-frame skew, e.g. ${JSON.stringify(r.examples)}`);
    assert.ok(r.strict <= r.instants * STRICT_SHARE, `${what}: ${r.strict} of ${r.instants} instants were more than a frame apart`);
    assert.ok(r.transient <= r.instants * TRANSIENT_SHARE, `${what}: ${r.transient} of ${r.instants} instants in a latency transient: `
      + 'a page kept falling behind its own steady latency');
  }
  assert.ok(byCode.instants >= byRtp.instants / 2, `only ${byCode.instants} of ${byRtp.instants} instants had frame codes on both pages`);
  assert.ok(Math.abs(quantile(skews, 0.5)) <= FRAME_US / 2, 'one page shows pictures systematically later than the other');
  assert.deepEqual(mismatched.slice(0, 5), [], 'pictures whose frame code is not the frame their RTP timestamp names');
  assertNoPageErrors(pages);
});

test('equalisation: a viewer whose pictures come late pulls the host\'s playout along', async (t) => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host V7');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer V7');
  // The viewer stands for someone on a slow path: its playout delay is
  // pinned at 250 ms (about 285 ms of latency, where the room's floor
  // would be 120), and it does not equalise.
  await viewer.evaluate(() => window.syncreel.setPlayoutDelayMs(250));
  await host.keyboard.press('Space');
  try {
    // The host's delay follows the viewer's reported latency, and the spread it sees closes.
    const settled = await eventually(host, 'the host to catch up with the viewer', () => {
      const v = window.syncreel.video();
      const spread = document.getElementById('sync-spread').dataset.spreadUs;
      return { ok: v.equaliser.delayMs >= 180 && spread !== '' && Number(spread) <= 25_000, delay: v.equaliser.delayMs, spread };
    }, null, 30_000);
    t.diagnostic(`host delay ${settled.delay} ms, spread ${(settled.spread / 1000).toFixed(1)} ms`);
    const since = await host.evaluate(() => window.syncreel.serverNowUs());
    await waitForAsync('two more seconds of pictures', async () => (await viewer.evaluate(
      (from) => window.syncreel.videoLog.filter((r) => r[0] >= from).length,
      since,
    )) >= 48, 15_000);
    const logs = [];
    for (const page of [host, viewer]) {
      logs.push((await page.evaluate(() => window.syncreel.videoLog)).filter((r) => r[0] >= since));
    }
    const skews = samePictureSkews(logs[0], logs[1]);
    const byRtp = compareVideo(logs[0], logs[1], 1, 5_000);
    const lat = logs.map((log) => median(log.map((r) => r[3])) / 1000);
    t.diagnostic(`latency host ${lat[0].toFixed(0)} / viewer ${lat[1].toFixed(0)} ms; same picture viewer − host: median `
      + `${(quantile(skews, 0.5) / 1000).toFixed(1)} ms; ${byRtp.strict} of ${byRtp.instants} instants > 1 frame apart, `
      + `${byRtp.late} beyond a one-frame skew`);
    // Unequalised, the host would show each picture ~160 ms (four frames)
    // before the viewer. A browser whose jitter buffer was knocked up by a
    // late picture comes back down at its own pace, so allow a frame.
    assert.ok(Math.abs(quantile(skews, 0.5)) <= FRAME_US, 'the host does not show pictures when the viewer does');
    assert.ok(byRtp.late <= byRtp.instants * 0.05, `pages more than a frame apart, e.g. ${JSON.stringify(byRtp.examples)}`);
  } finally {
    await host.keyboard.press('Space');
  }
  assertNoPageErrors(pages);
});

test('a page whose browser holds pictures far longer than asked restarts its stream and comes back to the room', async (t) => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host V9');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer V9');
  await host.keyboard.press('Space');
  try {
    const steady = await eventually(viewer, 'a steady playing latency', () => {
      const v = window.syncreel.video();
      return { ok: v.playLatencyMedianUs != null && v.equaliser.transitMs != null, starts: v.starts, us: v.playLatencyMedianUs };
    }, null, 30_000);
    // As Chromium may do on its own after render stalls: pictures held a
    // second longer than the delay the page set.
    await viewer.evaluate(() => window.syncreel.holdPicturesLonger(1000));
    const held = await eventually(viewer, 'the page to restart its held stream', () => {
      const v = window.syncreel.video();
      return { ok: v.equaliser.holdRestarts === 1, starts: v.starts };
    }, null, 30_000);
    assert.ok(held.starts > steady.starts, 'a fresh receiver');
    const back = await eventually(viewer, 'the latency back near the room\'s', () => {
      const v = window.syncreel.video();
      return { ok: v.state === 'playing' && v.playLatencyMedianUs != null && v.playLatencyMedianUs < 600_000, us: v.playLatencyMedianUs };
    }, null, 30_000);
    t.diagnostic(`latency ${(steady.us / 1000).toFixed(0)} ms, held a second longer, restarted, back at ${(back.us / 1000).toFixed(0)} ms`);
    assert.equal(await viewer.evaluate(() => window.syncreel.video().equaliser.holdRestarts), 1, 'once');
  } finally {
    await host.keyboard.press('Space');
  }
  assertNoPageErrors(pages);
});

test('presence shows each viewer\'s video offset and latency, and the host the sync spread', async () => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host V3');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer V3');
  const viewerId = (await state(viewer)).you;
  // Frame reports with latency reach the server, and its presence reaches everyone.
  await until(host, (id) => {
    const p = window.syncreel.state().participants.find((x) => x.id === id);
    return p?.latencyUs > 0 && p.latencyUs < 2_000_000;
  }, viewerId);
  await until(host, (id) => /^[+−±]\d+ f \/ \d+ ms$/.test(
    document.querySelector(`#presence tr[data-id="${id}"] .sync-col`)?.dataset.video ?? '',
  ), viewerId);
  // In a word, with the figures on hover.
  const cell = await host.evaluate((id) => {
    const td = document.querySelector(`#presence tr[data-id="${id}"] .sync-col`);
    return { sync: td.dataset.sync, text: td.textContent, title: td.title };
  }, viewerId);
  assert.match(cell.text, /^(in sync|behind \d+ f|ahead \d+ f)$/);
  assert.match(cell.title, /round trip .* · clock ±.* · video [+−±]\d+ f/);
  await until(host, () => /^Sync spread: [\d.]+ ms across 2 watching$/.test(document.getElementById('sync-spread').textContent));
  assert.equal(await viewer.isHidden('#sync-spread'), true, 'the spread is for hosts');
  assertNoPageErrors(pages);
});

test('the session\'s sound comes with the picture: muted until asked, held back as much as the picture', async () => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host V6');
  assert.equal((await host.evaluate(() => window.syncreel.video())).media.hasAudio, true);
  assert.equal(await host.textContent('#sound'), 'Sound off');
  assert.equal((await host.evaluate(() => window.syncreel.video())).muted, true);
  await host.click('#sound');
  assert.equal(await host.textContent('#sound'), 'Sound on');
  assert.equal(await host.getAttribute('#sound', 'aria-pressed'), 'true');
  assert.equal((await host.evaluate(() => window.syncreel.video())).muted, false);
  // Sound flows only in play; in play, Opus packets arrive and are decoded.
  await host.keyboard.press('Space');
  const heard = await eventually(host, 'audio packets', async () => {
    const s = await window.syncreel.audioStats();
    return { ok: s?.packetsReceived > 25 && s?.totalSamplesReceived > 0, s };
  });
  assert.equal(heard.s.kind, 'audio');
  // Whatever delay equalisation gives the picture, the sound gets too.
  await host.evaluate(() => window.syncreel.setPlayoutDelayMs(150));
  const v = await host.evaluate(() => window.syncreel.video());
  assert.equal(v.appliedDelayMs, 150);
  assert.equal(v.appliedAudioDelayMs, 150);
  assertNoPageErrors(pages);
});

test('after a dropped connection the stream restarts with the next welcome', async () => {
  const { byRole } = await mediaSession();
  const relay = await startRelay(server.base);
  try {
    const host = await joinWatching(byRole.host.url.replace(server.base, relay.base), 'Host V4');
    relay.cut();
    await until(host, () => window.syncreel.state().connection === 'reconnecting');
    await until(host, () => window.syncreel.state().connection === 'live', null, 15_000);
    await until(host, () => window.syncreel.video().starts >= 2 && window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
    await host.keyboard.press('ArrowRight');
    await videoShows(host, 1);
    assertNoPageErrors(pages, [/WebSocket connection to .* failed/]);
  } finally {
    await relay.stop();
  }
});

test('a session without media shows no video and asks for none', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host V5');
  assert.equal(await host.isHidden('#video'), true);
  assert.equal(await host.isHidden('#video-readout'), true);
  const v = await host.evaluate(() => window.syncreel.video());
  assert.equal(v.media, null);
  assert.equal(v.state, 'none');
  assert.equal((await host.evaluate(() => window.syncreel.sent())).rtcStart, undefined);
  assertNoPageErrors(pages);
});

test('media that fails mid-session is reported on the page; the room carries on', async () => {
  const name = `failing-${process.pid}.mov`;
  const path = joinPath(server.mediaRoot, name);
  scratch.push(path);
  copyFileSync(joinPath(server.mediaRoot, 'demo.mov'), path);
  const { byRole } = await mediaSession(name);
  const host = await joinWatching(byRole.host.url, 'Host V6');
  truncateSync(path, 0);
  // The player holds its first pictures; a seek far away makes it read the file.
  await host.fill('#tc-input', '01:01:30:00');
  await host.press('#tc-input', 'Enter');
  await host.waitForSelector('#media-error', { state: 'visible', timeout: VIDEO_WAIT_MS });
  assert.match(await host.textContent('#media-error'), /\S/);
  assert.equal((await host.evaluate(() => window.syncreel.video())).state, 'failed');
  await host.waitForSelector('#toasts [data-code="media_error"]');
  // The room itself still works.
  await host.keyboard.press('ArrowRight');
  await until(host, () => window.syncreel.displayed()?.frame === 2161);
  // The file comes back. Someone joining now tries the stream afresh
  // (shown the standing failure, not stopped by it); their pictures tell
  // the room, and the host's page starts its stream again.
  copyFileSync(joinPath(server.mediaRoot, 'demo.mov'), path);
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer V6');
  await videoShows(viewer, 2161);
  await host.waitForSelector('#media-error', { state: 'hidden', timeout: VIDEO_WAIT_MS });
  await until(host, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  await videoShows(host, 2161);
  // While the file was broken, its exact-frame stills could not be made.
  assertNoPageErrors(pages, [/media_error/, /Failed to load resource: .* status of (400|500)/]);
});

test('sessions from bad media are refused with typed codes', async () => {
  const refused = async (media, status, code) => {
    const res = await postSession(server.base, { title: 'Bad media', media });
    assert.equal(res.status, status, `${media}: ${res.text}`);
    assert.equal(res.body?.error?.code, code, `${media}: ${res.text}`);
    // A refusal names the file as asked, never the server's own layout.
    assert.ok(!res.text.includes(server.mediaRoot), `${media}: ${res.text}`);
  };
  await refused('nope.mov', 400, 'media_missing');
  const text = joinPath(server.mediaRoot, `notes-${process.pid}.txt`);
  scratch.push(text);
  writeFileSync(text, 'not a movie\n');
  await refused(`notes-${process.pid}.txt`, 400, 'not_media');
  // Escapes from the media root, to files that exist.
  const outside = joinPath(server.dataDir, `outside-${process.pid}.mov`);
  scratch.push(outside);
  copyFileSync(joinPath(server.mediaRoot, `notes-${process.pid}.txt`), outside);
  await refused(`../outside-${process.pid}.mov`, 400, 'outside_media_root');
  await refused(outside, 400, 'outside_media_root');
  await refused('/etc/hostname', 400, 'outside_media_root');
});

test('an escape from the media root to a file that does not exist is refused as outside_media_root', async () => {
  const res = await postSession(server.base, { title: 'Bad media', media: '../x' });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.body?.error?.code, 'outside_media_root', res.text);
});
