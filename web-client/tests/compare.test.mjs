// Version compare in real Chromium: a session over two versions of the
// demo take (`syncreel demo` renders the second, frame codes from
// 20,000, beside the first's from 10,000). The host compares them side
// by side; the server composes both into the one stream, so the host's
// page and a viewer's show the same picture, and each half reads the
// room's frame in its own version's codes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoPageErrors, joinAs, launchBrowser, postSession, seekTo, startDemoServer, until,
} from './support/harness.mjs';

// A first run renders the clips; the browser then needs a moment for its first picture.
const VIDEO_WAIT_MS = 60_000;
const V1_CODES = 10_000;
const V2_CODES = 20_000;

let server;
let browser;
const pages = [];

before(async () => {
  server = await startDemoServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Polls the picture's halves (read off its pixels) until both show `frame`. */
async function halvesShow(page, frame) {
  const deadline = Date.now() + VIDEO_WAIT_MS;
  let last = null;
  while (Date.now() < deadline) {
    last = await page.evaluate(() => window.syncreel.readCompareHalves());
    if (last?.a === V1_CODES + frame && last?.b === V2_CODES + frame) return;
    await page.waitForTimeout(50);
  }
  throw new Error(`the halves show ${JSON.stringify(last)}, not frame ${frame} of each version`);
}

test('compare shows two versions at the same frame code on every page', async () => {
  const { status, body, text } = await postSession(server.base, {
    title: 'Shot 010 versions',
    playlist: [
      { media: 'demo-shot010.mov', item: 'Shot 010' },
      { media: 'demo-shot010-v2.mov', item: 'Shot 010' },
    ],
  });
  assert.equal(status, 201, text);
  const links = Object.fromEntries(body.links.map((l) => [l.role, l.url]));
  const host = await joinAs(browser, links.host, 'Host C');
  const viewer = await joinAs(browser, links.viewer, 'Viewer C');
  pages.push(host, viewer);
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  }
  // The control is the driver's: the viewer has none.
  assert.equal(await viewer.isVisible('#compare-bar'), false);
  await until(host, () => !document.getElementById('compare-toggle').disabled);
  const v2 = await host.evaluate(() => document.getElementById('compare-version').value);
  assert.ok(v2, 'the other version is offered');

  await host.click('#compare-toggle');
  for (const page of [host, viewer]) {
    const compare = await until(page, () => window.syncreel.compare());
    assert.equal(compare.version, v2);
    assert.equal(compare.mode, 'side');
    await until(page, () => [...document.querySelectorAll('.compare-label')].map((l) => l.textContent).join(' / ') === 'A v1 / B v2');
  }

  // Paused on a frame: both pages, both halves, that frame.
  await seekTo(host, '02:00:04:00', 100, [host, viewer]);
  for (const page of [host, viewer]) await halvesShow(page, 100);
  await seekTo(host, '02:00:01:12', 37, [host, viewer]);
  for (const page of [host, viewer]) await halvesShow(page, 37);

  // Playing: whenever both halves read, they read one frame.
  await host.click('#play');
  const seen = [];
  for (let i = 0; i < 200 && seen.length < 8; i += 1) {
    const halves = await viewer.evaluate(() => window.syncreel.readCompareHalves());
    if (halves?.a != null && halves?.b != null) {
      assert.equal(halves.b - V2_CODES, halves.a - V1_CODES, `the halves parted: ${JSON.stringify(halves)}`);
      if (seen.at(-1) !== halves.a) seen.push(halves.a);
    }
    await viewer.waitForTimeout(40);
  }
  assert.ok(seen.length >= 3, `playback showed too few frames: ${seen}`);
  await host.click('#play');

  // A note written on B's half is B's.
  await host.click('#compare-note-b');
  await host.fill('#note-input', 'B: better grade');
  await host.press('#note-input', 'Enter');
  const note = await until(viewer, () => window.syncreel.notes().find((n) => n.text === 'B: better grade'));
  assert.equal(note.versionId, v2);

  // Stopped: the labels go, on every page.
  await host.click('#compare-toggle');
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.compare() === null);
    await until(page, () => document.querySelector('.compare-layer').hidden);
  }
  assertNoPageErrors(pages);
});
