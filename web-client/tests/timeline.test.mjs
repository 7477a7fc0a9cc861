// The timeline in real Chromium over `syncreel demo` (the reel: 23.976,
// 01:00:00:00, each picture's frame code its frame number): the ruler's
// labels are the timecodes of the frames they stand on, a note's marker
// is in its author's colour, range notes made with I/O and by dragging
// reach the EDL and OTIO exports with the marked in and out, hovering
// shows the exact frame's still, and a playlist shows its entries as
// chapters. No sideways scroll at the three sizes the layout tests use.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { TimecodeFormat } from '../timecode.js';
import { authorColour } from '../timeline.js';
import {
  assertNoPageErrors, axeViolations, joinAs, launchBrowser, seekTo, startDemoServer, until,
} from './support/harness.mjs';

const VIDEO_WAIT_MS = 60_000;
const SIZES = [{ width: 1280, height: 800 }, { width: 1920, height: 1080 }, { width: 390, height: 844 }];

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

async function join(url, name, viewport) {
  const page = await joinAs(browser, url, name, viewport ? { viewport } : undefined);
  pages.push(page);
  return page;
}

/** The session id and bearer token of a link. */
function linkParts(url) {
  const u = new URL(url);
  return { id: decodeURIComponent(u.pathname.split('/')[2]), token: new URLSearchParams(u.hash.slice(1)).get('token') };
}

async function exported(hostUrl, format) {
  const { id, token } = linkParts(hostUrl);
  const res = await fetch(`${server.base}/api/sessions/${encodeURIComponent(id)}/export/${format}`, {
    headers: { authorization: `Bearer ${token}` },
  });
  assert.equal(res.status, 200, `export ${format}`);
  return res.text();
}

const formatOf = (session) => TimecodeFormat.fromSession(session);

/** `#rrggbb` as the computed style writes it. */
const rgb = (hex) => `rgb(${[1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)).join(', ')})`;

/** Makes `page` the driver (the host takes the seat) and pauses the room. */
async function driveAndPause(page) {
  const s = await page.evaluate(() => window.syncreel.state());
  if (s.driver !== s.you) {
    await page.click('#take-control');
    await until(page, () => { const t = window.syncreel.state(); return t.driver === t.you; });
  }
  await page.keyboard.press('k');
  await until(page, () => window.syncreel.state().transport?.playing === false && window.syncreel.state().pending === 0);
}

/** Writes a note through the note box and waits for the server to store it; returns it as exported in JSON. */
async function addNote(page, text, hostUrl) {
  await page.fill('#note-input', text);
  await page.press('#note-input', 'Enter');
  await until(page, (t) => [...document.querySelectorAll('#notes li[data-id] .note-text')].some((n) => n.textContent === t), text);
  const json = JSON.parse(await exported(hostUrl, 'json'));
  const note = json.notes.find((n) => n.text === text);
  assert.ok(note, `${text} is in the JSON export`);
  return note;
}

/** Checks that the note `text` spans `from`..`to` (inclusive) in the EDL and OTIO exports. */
async function assertExportedRange(hostUrl, text, from, to, format) {
  const otio = JSON.parse(await exported(hostUrl, 'otio'));
  const clip = otio.tracks.children[0].children.find((c) => c.OTIO_SCHEMA.startsWith('Clip'));
  const marker = clip.markers.find((m) => m.comment === text);
  assert.ok(marker, `${text} is an OTIO marker`);
  assert.equal(marker.marked_range.start_time.value, format.start + from, 'OTIO marker starts at the in');
  assert.equal(marker.marked_range.duration.value, to - from + 1, 'OTIO marker lasts in..out inclusive');
  // The marker's first frame and last frame, in the clip's source range.
  const first = marker.marked_range.start_time.value - clip.source_range.start_time.value;
  assert.equal(first, from);
  assert.equal(first + marker.marked_range.duration.value - 1, to);

  const edl = await exported(hostUrl, 'edl');
  const loc = edl.split('\n').find((l) => l.startsWith('* LOC:') && l.endsWith(text));
  assert.ok(loc, `${text} is an EDL locator:\n${edl}`);
  assert.equal(loc.split(/\s+/)[2], format.label(from), 'EDL locator at the in');
  const range = edl.split('\n')[edl.split('\n').indexOf(loc) + 1];
  assert.equal(range, `* NOTE RANGE: ${format.label(from)} ${format.label(to + 1)}`, 'EDL source in and (exclusive) out');
}

test('the ruler labels the frames it stands on, at least 96 px apart, with no sideways scroll', async () => {
  for (const viewport of SIZES) {
    const page = await join(server.links.viewer, `Viewer ${viewport.width}`, viewport);
    await until(page, () => document.querySelectorAll('#ruler .tl-label').length >= 2);
    const session = (await page.evaluate(() => window.syncreel.state())).session;
    const format = formatOf(session);
    const labels = await page.$$eval('#ruler .tl-label', (ls) => ls.map((l) => ({
      text: l.textContent, frame: Number(l.dataset.frame), x: l.getBoundingClientRect().left,
    })));
    for (const l of labels) assert.equal(l.text, format.label(l.frame));
    assert.equal(labels[0].text, session.startTimecode);
    for (let i = 1; i < labels.length; i++) assert.ok(labels[i].x - labels[i - 1].x >= 95, `${viewport.width}: labels crowd`);
    const scroll = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
    assert.equal(scroll, 0, `${viewport.width}×${viewport.height} scrolls sideways`);
    // A phone viewer still has the markers' lane.
    assert.ok(await page.isVisible('#note-marks'));
    await page.context().close();
    pages.splice(pages.indexOf(page), 1);
  }
});

test('range notes made with I/O and by dragging reach the EDL and OTIO exports; markers in the author\'s colour', async () => {
  const host = await join(server.links.host, 'Hana Host');
  const reviewer = await join(server.links.reviewer, 'Rémi Reviewer');
  await until(host, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  await driveAndPause(host);
  const format = formatOf((await host.evaluate(() => window.syncreel.state())).session);

  // I at 120, O at 167: the room's loop and the next note's range.
  await seekTo(host, format.label(120), 120, [host]);
  await host.keyboard.press('i');
  await seekTo(host, format.label(167), 167, [host]);
  await host.keyboard.press('o');
  await until(host, () => !document.getElementById('note-range').hidden);
  assert.match(await host.textContent('#note-range-text'), new RegExp(`${format.label(120)} → ${format.label(167)}`));
  const band = await host.$eval('#mark-band', (b) => ({ in: b.dataset.in, out: b.dataset.out, hidden: b.hidden }));
  assert.deepEqual(band, { in: '120', out: '167', hidden: false });
  const ioNote = await addNote(host, 'Range by I and O', server.links.host);
  assert.equal(ioNote.frame, 120);
  assert.equal(ioNote.frameOut, 167);
  // A range is for one note: the marks are gone, the room's loop stays.
  assert.ok(await host.isHidden('#note-range'));
  await assertExportedRange(server.links.host, 'Range by I and O', 120, 167, format);

  // The span on every page, in the author's colour.
  for (const page of [host, reviewer]) {
    const mark = await until(page, () => {
      const m = document.querySelector('#note-marks .note-mark.range');
      return m && { colour: getComputedStyle(m).borderLeftColor, in: m.dataset.frame, out: m.dataset.frameOut, w: m.getBoundingClientRect().width };
    });
    assert.equal(mark.colour, rgb(authorColour('Hana Host')));
    assert.deepEqual([mark.in, mark.out], ['120', '167']);
    assert.ok(mark.w >= 4);
  }

  // The reviewer (not driving) drags across the markers' lane.
  const lane = await reviewer.$eval('#note-marks', (l) => { const b = l.getBoundingClientRect(); return { x: b.left, y: b.top + b.height / 2, w: b.width }; });
  await reviewer.mouse.move(lane.x + lane.w * 0.6, lane.y);
  await reviewer.mouse.down();
  await reviewer.mouse.move(lane.x + lane.w * 0.7, lane.y, { steps: 5 });
  await reviewer.mouse.move(lane.x + lane.w * 0.75, lane.y, { steps: 5 });
  await reviewer.mouse.up();
  const dragged = await reviewer.$eval('#mark-band', (b) => ({ in: Number(b.dataset.in), out: Number(b.dataset.out) }));
  assert.ok(dragged.out - dragged.in > 10, JSON.stringify(dragged));
  const dragNote = await addNote(reviewer, 'Range by dragging', server.links.host);
  assert.deepEqual([dragNote.frame, dragNote.frameOut], [dragged.in, dragged.out]);
  await assertExportedRange(server.links.host, 'Range by dragging', dragged.in, dragged.out, format);

  // A point note: a readable marker in the reviewer's colour.
  await reviewer.keyboard.press('g');
  await addNote(reviewer, 'Point note', server.links.host);
  const point = await until(host, () => {
    const m = [...document.querySelectorAll('#note-marks .note-mark:not(.range)')][0];
    if (!m) return null;
    const b = m.getBoundingClientRect();
    return { colour: getComputedStyle(m).backgroundColor, w: b.width, h: b.height };
  });
  assert.equal(point.colour, rgb(authorColour('Rémi Reviewer')));
  assert.ok(point.w >= 8 && point.h >= 12, `marker ${point.w}×${point.h}`);
  // Stills answered busy (503) under load are retried.
  assertNoPageErrors([host, reviewer], [/status of 503/]);
});

test('hovering the ruler shows the exact frame\'s still', async () => {
  const viewer = await join(server.links.viewer, 'Vera Viewer');
  await until(viewer, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  const ruler = await viewer.$eval('#ruler', (r) => { const b = r.getBoundingClientRect(); return { x: b.left, y: b.top + b.height / 2, w: b.width }; });
  // Across the ruler and back: only the frame finally under the pointer counts.
  for (const share of [0.1, 0.2, 0.3, 0.4]) await viewer.mouse.move(ruler.x + ruler.w * share, ruler.y, { steps: 3 });
  const hovered = await until(viewer, () => {
    const h = document.getElementById('tl-hover');
    return !h.hidden && h.dataset.still && h.dataset.still === h.dataset.frame && {
      frame: Number(h.dataset.frame), tc: h.querySelector('.tl-hover-tc').textContent,
    };
  }, null, VIDEO_WAIT_MS).catch(async (err) => {
    const seen = await viewer.evaluate(() => ({
      hover: { ...document.getElementById('tl-hover').dataset, hidden: document.getElementById('tl-hover').hidden },
      stills: window.syncreel.timelineStills(),
    }));
    throw new Error(`${err.message}: ${JSON.stringify(seen)}`);
  });
  // Requests were throttled: one load per frame asked, far fewer than frames passed over.
  const { stats } = await viewer.evaluate(() => window.syncreel.timelineStills());
  assert.ok(stats.loads + stats.aborted + stats.failed <= 8, JSON.stringify(stats));
  const format = formatOf((await viewer.evaluate(() => window.syncreel.state())).session);
  assert.equal(hovered.tc, format.label(hovered.frame));
  const code = await viewer.evaluate(async () => {
    const { readRgba } = await import('/app/framecode.js');
    const c = document.querySelector('#tl-hover canvas');
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    return readRgba(data, c.width, c.height);
  });
  assert.equal(code, hovered.frame, 'the still is the hovered frame');
  await viewer.mouse.move(ruler.x + ruler.w * 0.5, ruler.y + 200);
  await until(viewer, () => document.getElementById('tl-hover').hidden);
  // A busy answer (503) while other pages fetch stills is retried, as the player's are.
  assertNoPageErrors([viewer], [/status of 503/]);
});

test('a playlist shows its entries as chapters; the driver cues one from the timeline', async () => {
  const host = await join(server.playlistLinks.host, 'Host Chapters');
  const chapters = await until(host, () => {
    const cs = [...document.querySelectorAll('#chapters .tl-chapter')];
    return !document.getElementById('chapters').hidden && cs.length === 3 && cs.map((c) => ({
      text: c.textContent, current: c.getAttribute('aria-current') === 'true', w: c.getBoundingClientRect().width,
    }));
  });
  assert.deepEqual(chapters.map((c) => c.current), [true, false, false]);
  assert.match(chapters[0].text, /Reel 1/);
  assert.ok(chapters.every((c) => c.w > 20));
  await driveAndPause(host);
  // The driver's chapters are buttons that must read (axe: nothing serious on the page).
  assert.deepEqual(await axeViolations(host), []);
  await host.click('#chapters .tl-chapter[data-entry="1"]');
  await until(host, () => window.syncreel.state().entry === 1
    && document.querySelector('#chapters .tl-chapter[aria-current]')?.dataset.entry === '1');
  // The ruler follows the entry's own timeline (25 fps from 02:00:00:00).
  await until(host, () => document.querySelector('#ruler .tl-label')?.textContent === '02:00:00:00');
  assertNoPageErrors([host], [/status of 503/]);
});
