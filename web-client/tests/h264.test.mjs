// H.264 end to end: the server streams the demo clip as H.264 (constrained
// baseline, x264 zerolatency) and this machine's Chromium decodes it. The
// frame each page shows is checked as in video.test.mjs: the frame code
// read off the picture's pixels and the frame its RTP timestamp names,
// after seeks and while playing.
//
// The codec is forced here (SYNCREEL_MEDIA__CODEC=h264) whatever the
// config default is, so that this check holds if the default changes.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import {
  assertNoPageErrors, joinAs, launchBrowser, postSession, startDemoServer, until,
} from './support/harness.mjs';

const VIDEO_WAIT_MS = 20_000;

let server;
let browser;
const pages = [];

before(async () => {
  server = await startDemoServer({ env: { SYNCREEL_MEDIA__CODEC: 'h264' } });
  browser = await launchBrowser();
});

afterEach(async () => {
  for (const page of pages.splice(0)) await page.context().close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function joinWatching(url, name) {
  const page = await joinAs(browser, url, name);
  pages.push(page);
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  return page;
}

/** Polls `fn(arg)` in the page (it may be async) until it returns `{ok: true, …}`; returns it. */
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

/** Waits until the video shows `frame`, by the code in its pixels and by its RTP timestamp. */
function videoShows(page, frame) {
  return eventually(page, `video frame ${frame}`, async (want) => {
    const code = await window.syncreel.readVideoFrameCode({ via: 'canvas' });
    const shown = window.syncreel.video().shown;
    return { ok: code === want && shown?.frame === want, code, rtpFrame: shown?.frame };
  }, frame);
}

test('Chromium decodes the H.264 stream: exact frames after seeks, and play', async (t) => {
  const { status, body, text } = await postSession(server.base, { title: 'H.264 test', media: 'demo.mov' });
  assert.equal(status, 201, text);
  const byRole = Object.fromEntries(body.links.map((l) => [l.role, l]));
  const host = await joinWatching(byRole.host.url, 'Host H1');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer H1');

  for (const page of [host, viewer]) {
    assert.equal((await page.evaluate(() => window.syncreel.video())).media.codec, 'H264');
  }

  for (const [timecode, frame] of [['01:00:10:05', 245], ['01:00:20:00', 480], ['01:00:03:17', 89]]) {
    await host.fill('#tc-input', timecode);
    await host.press('#tc-input', 'Enter');
    for (const page of [host, viewer]) {
      const seen = await videoShows(page, frame);
      t.diagnostic(`${timecode}: code ${seen.code}, rtp ${seen.rtpFrame}`);
    }
  }
  // Paused: the same exact picture however often it is read, both ways.
  const codes = [];
  for (const page of [host, viewer]) {
    codes.push(await page.evaluate(() => window.syncreel.readVideoFrameCode({ via: 'canvas' })));
    codes.push(await page.evaluate(() => window.syncreel.readVideoFrameCode()));
  }
  assert.deepEqual(codes, Array(4).fill(89));

  // Play two seconds: the pictures keep coming and each is the frame its
  // timestamp names.
  await host.keyboard.press('Space');
  try {
    await eventually(viewer, 'two seconds of play', () => {
      const f = window.syncreel.video().shown?.frame ?? 0;
      return { ok: f >= 89 + 48, frame: f };
    }, null, 30_000);
  } finally {
    await host.keyboard.press('Space');
  }

  for (const page of [host, viewer]) {
    const v = await page.evaluate(() => window.syncreel.video());
    const stats = await page.evaluate(() => window.syncreel.videoStats());
    t.diagnostic(`${stats.framesDecoded} pictures decoded, `
      + `${stats.frameWidth}x${stats.frameHeight}; ${v.codeStats.reads} codes read, ${v.codeStats.mismatches} mismatched`);
    assert.ok(stats.framesDecoded > 24, `only ${stats.framesDecoded} pictures decoded`);
    assert.equal(v.codeStats.mismatches, 0, 'a picture showed another frame than its RTP timestamp names');
  }
  assertNoPageErrors(pages);
});
