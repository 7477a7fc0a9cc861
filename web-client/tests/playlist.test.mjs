// A playlist session in real Chromium, from `syncreel demo`'s second
// session: the reel (23.976, 01:00:00:00) then a take (25 fps,
// 02:00:00:00, frame codes from 10,000), then the take's second version
// (codes from 20,000). When the driver cues the take,
// every page switches timeline, labels, version and record together,
// and the picture is the take's.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  VIDEO_WAIT_MS, assertNoPageErrors, joinAs, launchBrowser, pictureShows, seekTo, startDemoServer, until,
} from './support/harness.mjs';

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

async function join(url, name) {
  const page = await joinAs(browser, url, name);
  pages.push(page);
  return page;
}

/** What a page shows of the playlist and the entry on screen. */
const shown = (page) => page.evaluate(() => ({
  entry: window.syncreel.state().entry,
  timecode: document.getElementById('timecode').textContent,
  duration: document.getElementById('duration').textContent,
  fps: document.getElementById('fps').textContent,
  version: document.getElementById('version').textContent,
  count: document.getElementById('playlist-count').textContent,
  current: document.querySelector('#playlist li[aria-current]')?.querySelector('.entry-name')?.textContent ?? null,
  cues: [...document.querySelectorAll('#playlist button[data-entry]')].map((b) => b.disabled),
  notes: [...document.querySelectorAll('#notes > li[data-id]')].map((li) => Number(li.dataset.id)),
  marks: document.querySelectorAll('#note-marks [data-id]').length,
}));

/** Clicks `selector` on `page` and returns the text of the download it starts. */
async function downloaded(page, selector) {
  const [download] = await Promise.all([page.waitForEvent('download'), page.click(selector)]);
  const chunks = [];
  for await (const chunk of await download.createReadStream()) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

test('the driver cues the take: every page switches timeline, version, notes and picture together; a viewer cannot cue', async () => {
  const links = server.playlistLinks;
  const host = await join(links.host, 'Host P1');
  const viewer = await join(links.viewer, 'Viewer P1');
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
    const before = await shown(page);
    assert.equal(before.entry, 0);
    assert.equal(before.count, '1 of 3');
    assert.match(before.current, /Reel 1/);
    assert.equal(before.fps, '23.976');
  }
  // Only the driver's cue buttons work; the one on screen never does.
  assert.deepEqual((await shown(host)).cues, [true, false, false]);
  assert.deepEqual((await shown(viewer)).cues, [true, true, true]);

  // A note on the reel, seen by both.
  await seekTo(host, '01:00:10:05', 245, [host, viewer]);
  await pictureShows(host, 245);
  await host.fill('#note-input', 'Reel: sky too warm');
  await host.press('#note-input', 'Enter');
  const [reelNote] = await until(viewer, () => window.syncreel.notes().length === 1 && window.syncreel.notes());
  for (const page of [host, viewer]) await until(page, () => document.querySelectorAll('#notes > li[data-id]').length === 1);

  await host.click('#playlist button[data-entry="1"]');
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.state().entry === 1);
    const after = await shown(page);
    assert.equal(after.timecode, '02:00:00:00', 'parked on the take\'s first frame, in its labels');
    assert.equal(after.duration, '250');
    assert.equal(after.fps, '25');
    assert.match(after.version, /Shot 010/);
    assert.match(after.current, /Shot 010/);
    assert.equal(after.count, '2 of 3');
    assert.deepEqual(after.notes, [], 'the reel\'s note is not shown over the take');
    assert.equal(after.marks, 0);
    // The picture is the take's first frame (its codes run from 10,000).
    await pictureShows(page, 10_000);
  }
  assert.deepEqual((await shown(host)).cues, [false, true, false]);

  // The viewer cannot cue back: the button is disabled, and the server
  // would refuse it anyway.
  assert.deepEqual((await shown(viewer)).cues, [true, true, true]);

  // On the take, a seek moves in its own frames and labels.
  await seekTo(host, '02:00:04:00', 100, [host, viewer]);
  // A note is pinned to the picture its author sees: wait for the host's too.
  for (const page of [host, viewer]) await pictureShows(page, 10_100);

  // The host's export is the take's review: its note, on its labels.
  await host.fill('#note-input', 'Take: hold longer');
  await host.press('#note-input', 'Enter');
  await until(host, () => document.querySelectorAll('#notes > li[data-id]').length === 1);
  const exported = JSON.parse(await downloaded(host, '#exports button[data-format="json"]'));
  assert.deepEqual(exported.notes.map((n) => [n.text, n.timecode]), [['Take: hold longer', '02:00:04:00']]);

  // The whole playlist: each entry's notes on its own labels. Its EDL is
  // refused with a reason, since the reel and the take differ in rate.
  const wholeJson = await downloaded(host, '#playlist-exports button[data-format="json"]');
  assert.deepEqual(
    JSON.parse(wholeJson).entries.map((e) => e.notes.map((n) => [n.text, n.timecode])),
    // The third entry is the take's second version, with no notes yet.
    [[[reelNote.text, '01:00:10:05']], [['Take: hold longer', '02:00:04:00']], []],
  );
  await host.click('#playlist-exports button[data-format="edl"]');
  const refusal = await until(host, () => document.querySelector('#toasts [data-code="not_exportable"]')?.textContent);
  assert.match(refusal, /23\.976 fps and 25 fps/);

  // Cued back, the reel's note returns, on its own timeline.
  await host.click('#playlist button[data-entry="0"]');
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.state().entry === 0);
    await until(page, (id) => document.querySelector(`#notes > li[data-id="${id}"]`) != null, reelNote.id);
    const back = await shown(page);
    assert.equal(back.timecode, '01:00:00:00');
    assert.equal(back.fps, '23.976');
    await pictureShows(page, 0);
  }
  // The browser logs the refused EDL's 422; nothing else.
  assertNoPageErrors(pages, [/status of 422/]);
});
