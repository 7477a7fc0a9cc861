// Issue #12, a stills path for everything that is not playing: while the
// room is paused, each page shows the exact frame from the server
// (GET /api/sessions/{id}/frames/{checksum}/{frame}) on a canvas over
// the video, drawn at the transport's execute-at, and a play hands back
// to the stream without a step back. What a page shows is read off its
// pixels (the frame code burnt into the demo clip), never taken from its
// own bookkeeping alone.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import {
  assertNoPageErrors, joinAs, launchBrowser, postSession, startDemoServer, until,
} from './support/harness.mjs';
import { decodePng, psnr } from './support/png.mjs';

// Connecting, the first keyframe, and the first stills take a second or
// two on a busy two-core machine; the deadlines leave room for that.
const VIDEO_WAIT_MS = 20_000;
// A still drawn this long after its execute-at fails (the benchmark has
// the real figures; on this shared two-core machine a page's animation
// frame can come late).
const DRAW_BOUND_US = 250_000;

let server;
let browser;
const pages = [];

before(async () => {
  server = await startDemoServer();
  browser = await launchBrowser();
});

// Pages of finished tests would keep painting and compete for two cores.
afterEach(async () => {
  for (const page of pages.splice(0)) await page.context().close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function mediaSession() {
  const { status, body, text } = await postSession(server.base, { title: 'Stills', media: 'demo.mov' });
  assert.equal(status, 201, text);
  return { links: Object.fromEntries(body.links.map((l) => [l.role, l])), body };
}

async function join(url, name) {
  const page = await joinAs(browser, url, name);
  pages.push(page);
  return page;
}

async function joinWatching(url, name) {
  const page = await join(url, name);
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  return page;
}

/** Polls `fn(arg)` in the page until it returns `{ok: true, …}`; returns it. */
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

/** Waits until the page's still layer shows `frame`, read off its own pixels, and the counter agrees. */
function stillShows(page, frame) {
  return eventually(page, `the still of frame ${frame}`, (want) => {
    const still = window.syncreel.still();
    const code = window.syncreel.readStillFrameCode();
    const counter = Number(document.getElementById('frame').textContent);
    return {
      ok: still?.frame === want && still.visible && code === want && counter === want, still, code, counter,
    };
  }, frame);
}

/** Waits until `frame`'s still is decoded and held in the page's cache. */
function stillReady(page, frame) {
  return until(page, (f) => window.syncreel.stillCache().entries.some((e) => e.frame === f && e.state === 'ready'), frame,
    VIDEO_WAIT_MS);
}

async function seekTo(driver, timecode, frame, everyone) {
  await driver.fill('#tc-input', timecode);
  await driver.press('#tc-input', 'Enter');
  for (const page of everyone) await stillShows(page, frame);
}

test('a step on the driver\'s page shows the new frame on both pages from the stills path, at its execute-at', async (t) => {
  const { links } = await mediaSession();
  const host = await joinWatching(links.host.url, 'Host ST1');
  const viewer = await joinWatching(links.viewer.url, 'Viewer ST1');
  await seekTo(host, '01:00:20:00', 480, [host, viewer]);
  const delays = [];
  let frame = 480;
  for (const key of ['ArrowRight', 'ArrowRight', 'ArrowLeft', 'ArrowRight']) {
    const target = frame + (key === 'ArrowRight' ? 1 : -1);
    // The neighbours are fetched ahead on every page: the step's frame is here before the step.
    for (const page of [host, viewer]) await stillReady(page, target);
    const before = (await host.evaluate(() => window.syncreel.state())).transportVersion;
    const pressedUs = await host.evaluate(() => window.syncreel.serverNowUs());
    await host.keyboard.press(key);
    for (const [name, page] of [['host', host], ['viewer', viewer]]) {
      const { still, code } = await stillShows(page, target);
      const version = (await page.evaluate(() => window.syncreel.state())).transportVersion;
      const delayUs = still.drawnAtUs - still.executeAtUs;
      delays.push(delayUs);
      t.diagnostic(`${key} to ${target}, ${name}: frame code ${code}; drawn ${(delayUs / 1000).toFixed(1)} ms after execute-at, `
        + `${((still.drawnAtUs - pressedUs) / 1000).toFixed(1)} ms after the key press; ${still.width}×${still.height} `
        + `${still.visible && still.dest.exact ? '1:1' : 'scaled'}`);
      assert.ok(still.version > before && still.version === version, `${name}: the still is not the step's (version ${still.version})`);
      assert.ok(delayUs >= 0, `${name}: the still of ${target} was drawn ${-delayUs} µs before its execute-at`);
      assert.ok(delayUs <= DRAW_BOUND_US, `${name}: the still of ${target} was drawn ${delayUs} µs after its execute-at`);
    }
    frame = target;
  }
  const sorted = [...delays].sort((a, b) => a - b);
  t.diagnostic(`execute-at → drawn: median ${(sorted[sorted.length >> 1] / 1000).toFixed(1)} ms, max ${(sorted.at(-1) / 1000).toFixed(1)} ms`);
  assertNoPageErrors(pages);
});

test('a paused joiner sees the exact still before its WebRTC connection is up', async (t) => {
  const { links } = await mediaSession();
  const host = await join(links.host.url, 'Host ST2');
  await seekTo(host, '01:00:29:04', 700, [host]);
  // The joiner's stream is held back, so only the stills path can show it anything.
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const joiner = await context.newPage();
  joiner.problems = [];
  joiner.on('pageerror', (err) => joiner.problems.push(`pageerror: ${err.message}`));
  joiner.on('console', (msg) => {
    if (msg.type() === 'error') joiner.problems.push(`console: ${msg.text()}`);
  });
  pages.push(joiner);
  await joiner.goto(links.viewer.url);
  await joiner.evaluate(() => {
    window.syncreel.holdStream(true);
    document.getElementById('join').addEventListener('click', () => { window.joinClickedMs = performance.now(); });
  });
  await joiner.fill('#name', 'Joiner ST2');
  await joiner.click('#join');
  const { still, code } = await stillShows(joiner, 700);
  const joinToStillMs = await joiner.evaluate((drawnAtUs) => {
    const offsetUs = window.syncreel.serverNowUs() - performance.now() * 1000;
    return (drawnAtUs - (window.joinClickedMs * 1000 + offsetUs)) / 1000;
  }, still.drawnAtUs);
  const video = await joiner.evaluate(() => window.syncreel.video());
  t.diagnostic(`join → still of 700 drawn in ${joinToStillMs.toFixed(0)} ms; frame code ${code}; stream when drawn: `
    + `${still.videoState}, peer ${still.rtcState}, ${still.videoPictures} pictures`);
  assert.equal(still.videoState, 'none', 'the stream had started');
  assert.equal(still.rtcState, null, 'a peer connection existed');
  assert.equal(still.videoPictures, 0);
  assert.equal(video.state, 'none');
  assert.equal((await joiner.evaluate(() => window.syncreel.videoLog)).length, 0);
  // The stream comes up under the still, which stays: the room is paused.
  await joiner.evaluate(() => window.syncreel.holdStream(false));
  await until(joiner, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  await eventually(joiner, 'the stream under the still on 700', async () => {
    const code = await window.syncreel.readVideoFrameCode({ via: 'canvas' });
    return { ok: code === 700, code };
  });
  const after = await stillShows(joiner, 700);
  assert.equal(after.still.drawnAtUs, still.drawnAtUs, 'the still was drawn again');
  assertNoPageErrors(pages);
});

test('paused, the picture is the exact frame: the pixels shown are the server\'s PNG', async (t) => {
  const { links, body } = await mediaSession();
  const host = await joinWatching(links.host.url, 'Host ST3');
  await seekTo(host, '01:00:41:16', 1000, [host]);
  const still = await host.evaluate(() => window.syncreel.still());
  const res = await fetch(`${server.base}/api/sessions/${body.session.id}/frames/${still.checksum}/1000?width=${still.width}`, {
    headers: { authorization: `Bearer ${links.host.token}` },
  });
  assert.equal(res.status, 200);
  const png = decodePng(Buffer.from(await res.arrayBuffer()));
  assert.deepEqual([png.width, png.height], [still.width, still.height]);
  const layout = await host.evaluate(() => window.syncreel.still().dest);
  t.diagnostic(`PNG ${png.width}×${png.height} (chunks ${[...new Set(png.chunks)].join(' ')}); drawn at `
    + `${layout.x},${layout.y} ${layout.width}×${layout.height}${layout.exact ? ' 1:1' : ' scaled'}`);
  for (const from of ['bitmap', 'layer']) {
    const px = await host.evaluate((f) => window.syncreel.readStillPixels({ from: f }), from);
    assert.deepEqual([px.width, px.height], [png.width, png.height], `${from}: another size`);
    const q = psnr(Buffer.from(px.rgb, 'base64'), png.rgb);
    t.diagnostic(`${from === 'bitmap' ? 'the still at its natural size' : 'the layer as shown'} against the PNG: `
      + `PSNR ${q.db === Infinity ? '∞ (identical)' : `${q.db.toFixed(2)} dB`}, max difference ${q.maxDiff}, ${q.differing} values differ`);
    assert.ok(q.db >= 48, `${from}: PSNR ${q.db} dB`);
  }
  // For comparison, what the stream showed for the same frame (640×360,
  // lossy): against the server's exact frame at that size.
  const streamPng = decodePng(Buffer.from(await (await fetch(
    `${server.base}/api/sessions/${body.session.id}/frames/${still.checksum}/1000?width=640`,
    { headers: { authorization: `Bearer ${links.host.token}` } },
  )).arrayBuffer()));
  const streamPx = await eventually(host, 'the stream on 1000', async () => {
    const code = await window.syncreel.readVideoFrameCode({ via: 'canvas' });
    const v = document.getElementById('video');
    if (code !== 1000) return { ok: false, code };
    const c = document.createElement('canvas');
    [c.width, c.height] = [v.videoWidth, v.videoHeight];
    const ctx = c.getContext('2d', { willReadFrequently: true });
    ctx.drawImage(v, 0, 0);
    const d = ctx.getImageData(0, 0, c.width, c.height).data;
    const rgb = new Uint8Array(c.width * c.height * 3);
    for (let i = 0, j = 0; i < d.length; i += 4, j += 3) [rgb[j], rgb[j + 1], rgb[j + 2]] = [d[i], d[i + 1], d[i + 2]];
    let bin = '';
    for (let i = 0; i < rgb.length; i += 0x8000) bin += String.fromCharCode(...rgb.subarray(i, i + 0x8000));
    return { ok: true, width: c.width, height: c.height, rgb: btoa(bin) };
  });
  if (streamPx.width === streamPng.width && streamPx.height === streamPng.height) {
    const q = psnr(Buffer.from(streamPx.rgb, 'base64'), streamPng.rgb);
    t.diagnostic(`the stream's picture of the same frame, for comparison: PSNR ${q.db.toFixed(2)} dB, max difference ${q.maxDiff}`);
  }
  assertNoPageErrors(pages);
});

/**
 * Samples, on every animation frame, what the page shows on top: the
 * still layer's frame code while it is up, else the video element's.
 */
function startSampling(page) {
  return page.evaluate(() => {
    window.samples = [];
    window.sampling = true;
    const tick = () => {
      if (!window.sampling) return;
      requestAnimationFrame(tick);
      const atUs = window.syncreel.serverNowUs();
      if (window.syncreel.still()?.visible) {
        window.samples.push({ atUs, src: 'still', code: window.syncreel.readStillFrameCode() });
        return;
      }
      const sample = { atUs, src: 'video', code: undefined };
      window.samples.push(sample);
      // The canvas path reads the element's picture synchronously.
      window.syncreel.readVideoFrameCode({ via: 'canvas' }).then((code) => { sample.code = code; });
    };
    requestAnimationFrame(tick);
  });
}

test('play after a paused still: the still goes once the stream shows a picture of the play, and the frame never steps back', async (t) => {
  const { links } = await mediaSession();
  const host = await joinWatching(links.host.url, 'Host ST4');
  const viewer = await joinWatching(links.viewer.url, 'Viewer ST4');
  await seekTo(host, '01:00:40:00', 960, [host, viewer]);
  for (const page of [host, viewer]) await stillReady(page, 961);
  for (const page of [host, viewer]) await startSampling(page);
  // A step, then play at once: the stream still shows 960 for its
  // latency after the step's still of 961 went up, so a still taken down
  // at the play's execute-at would show the picture stepping back.
  await host.keyboard.press('ArrowRight');
  await until(host, () => window.syncreel.still()?.frame === 961);
  await host.keyboard.press('Space');
  const play = await until(host, () => {
    const s = window.syncreel.state();
    return s.transport.playing && s.pending === 0 && s.transport;
  });
  try {
    for (const page of [host, viewer]) {
      await until(page, () => window.syncreel.still() == null, null, VIDEO_WAIT_MS);
      await until(page, (from) => window.syncreel.videoLog.filter((r) => r[4] >= from).length >= 24, play.anchorTime, 30_000);
    }
  } finally {
    // Sampling ends before the pause: the paused frame's still (and the
    // stream's last pictures before it) belong to the pause, not the play.
    for (const page of [host, viewer]) await page.evaluate(() => { window.sampling = false; });
    await host.keyboard.press('k');
  }
  for (const [name, page] of [['host', host], ['viewer', viewer]]) {
    const samples = await page.evaluate(() => {
      window.sampling = false;
      return window.samples;
    });
    const log = await page.evaluate(() => window.syncreel.videoLog);
    const hidden = (await page.evaluate(() => window.syncreel.stillLog)).filter((r) => r[0] === 1).at(-1);
    const read = samples.filter((s) => s.code != null);
    const backwards = read.filter((s, i) => i > 0 && s.code < read[i - 1].code);
    const firstVideo = read.find((s) => s.src === 'video');
    const lastStill = read.filter((s) => s.src === 'still').at(-1);
    const picture = log.find((r) => r[0] === hidden?.[3]);
    t.diagnostic(`${name}: ${samples.length} samples (${read.length} read); last still ${lastStill?.code}, first stream picture `
      + `${firstVideo?.code}; the still went ${hidden ? ((hidden[2] - play.anchorTime) / 1000).toFixed(0) : '—'} ms after the play's `
      + `anchor, on a picture made ${picture ? ((picture[4] - play.anchorTime) / 1000).toFixed(0) : '—'} ms after it and shown `
      + `${picture ? ((picture[0] - picture[4]) / 1000).toFixed(0) : '—'} ms later`);
    assert.ok(hidden, `${name}: the still never went`);
    assert.ok(hidden[3] != null, `${name}: the still went without a picture of the play (gave up)`);
    assert.ok(hidden[2] >= hidden[3], `${name}: the still went before the stream's picture was lit`);
    assert.ok(picture, `${name}: the handover picture is not in the video log`);
    assert.ok(picture[4] >= play.anchorTime, `${name}: the handover picture was made ${play.anchorTime - picture[4]} µs before the play`);
    assert.equal(lastStill?.code, 961, `${name}: the still before the play showed ${lastStill?.code}`);
    // The stream's first picture of the play is the paused frame or a
    // later one (a starved encoder skips); what is seen after the still
    // is that picture or one of the next few (a sample can come late on
    // a busy page), never an earlier one.
    assert.ok(firstVideo && firstVideo.code >= 961 && firstVideo.code <= picture[1] + 4,
      `${name}: the stream took over on ${firstVideo?.code}, the handover picture was ${picture[1]}`);
    assert.deepEqual(backwards.slice(0, 3), [], `${name}: the picture stepped back`);
  }
  assertNoPageErrors(pages);
});

test('the still cache holds the paused frame\'s neighbours, within its bounds', async () => {
  const { links } = await mediaSession();
  const host = await join(links.host.url, 'Host ST5');
  await seekTo(host, '01:00:10:00', 240, [host]);
  // The neighbours of 240 come one at a time after it.
  const want = Array.from({ length: 17 }, (_, i) => 232 + i);
  await until(host, (frames) => {
    const ready = new Set(window.syncreel.stillCache().entries.filter((e) => e.state === 'ready').map((e) => e.frame));
    return frames.every((f) => ready.has(f));
  }, want, 30_000);
  const cache = await host.evaluate(() => window.syncreel.stillCache());
  assert.deepEqual(cache.wanted.map((k) => Number(k.split('/')[1])).sort((a, b) => a - b), want);
  assert.ok(cache.count <= cache.limits.maxCount && cache.bytes <= cache.limits.maxBytes, JSON.stringify(cache.limits));
  assert.equal(cache.inFlight, 0, 'loads on their way with everything wanted here');
  assertNoPageErrors(pages);
});
