// The review record end to end in real Chromium against the real server:
// drawings made with the mouse on a paused frame (seen by others while
// they are drawn), the eraser, replies and resolutions in the notes
// panel, and approvals with their receipts.
//
// One `syncreel demo` server serves both kinds of session: plain ones
// (POST /api/sessions without media) for drawings and notes, and media
// sessions of the demo clip for drawing over video and for approvals,
// whose receipts need a stream and a version.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import {
  assertNoPageErrors, createSession, joinAs, launchBrowser, postSession, seekTo, startDemoServer, startRelay, state,
  until,
} from './support/harness.mjs';

// Connecting and the first keyframe take a second or two on a busy
// two-core machine.
const VIDEO_WAIT_MS = 20_000;
const YELLOW = '#ffd60a';

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

async function join(url, name) {
  const page = await joinAs(browser, url, name);
  pages.push(page);
  return page;
}



/**
 * Where the picture is on the page, worked out here rather than asked of
 * the client: the canvas covers the monitor, and the picture is the
 * video's size (or 16:9 without media) fitted inside it, centred.
 */
async function pictureOnPage(page) {
  const { box, source } = await page.evaluate(() => {
    const b = document.getElementById('draw-canvas').getBoundingClientRect();
    const v = document.getElementById('video');
    const withVideo = !v.hidden && v.videoWidth > 0;
    return {
      box: { x: b.x, y: b.y, width: b.width, height: b.height },
      source: withVideo ? [v.videoWidth, v.videoHeight] : [16, 9],
    };
  });
  const scale = Math.min(box.width / source[0], box.height / source[1]);
  const [width, height] = [source[0] * scale, source[1] * scale];
  return { x: box.x + (box.width - width) / 2, y: box.y + (box.height - height) / 2, width, height, box };
}

/** Presses the mouse at the first of picture points [[nx, ny], ...] and moves through the rest, holding it down. */
async function press(page, points) {
  const pic = await pictureOnPage(page);
  const at = ([nx, ny]) => [pic.x + nx * pic.width, pic.y + ny * pic.height];
  await page.mouse.move(...at(points[0]));
  await page.mouse.down();
  for (const p of points.slice(1)) await page.mouse.move(...at(p), { steps: 4 });
  return pic;
}

/** Drags the mouse through picture points [[nx, ny], ...] (press at the first, release at the last). */
async function drag(page, points) {
  const pic = await press(page, points);
  await page.mouse.up();
  return pic;
}

/** A line of `n` + 1 points from a to b. */
const line = (a, b, n = 10) => Array.from({ length: n + 1 }, (_, i) => [a[0] + ((b[0] - a[0]) * i) / n, a[1] + ((b[1] - a[1]) * i) / n]);

/**
 * The most opaque pixel of the overlay canvas within `r` CSS px of picture
 * point [nx, ny], as [r, g, b, a] (a = 0: nothing drawn there).
 */
function inkAt(page, point, r = 3) {
  return page.evaluate(([[nx, ny], radius]) => {
    const canvas = document.getElementById('draw-canvas');
    const o = window.syncreel.overlay();
    const dpr = canvas.width / o.canvas.cssWidth;
    const x = Math.round((o.picture.x + nx * o.picture.width) * dpr);
    const y = Math.round((o.picture.y + ny * o.picture.height) * dpr);
    const d = Math.ceil(radius * dpr);
    const px = canvas.getContext('2d').getImageData(x - d, y - d, 2 * d + 1, 2 * d + 1).data;
    let best = [0, 0, 0, 0];
    for (let i = 0; i < px.length; i += 4) if (px[i + 3] > best[3]) best = [px[i], px[i + 1], px[i + 2], px[i + 3]];
    return best;
  }, [point, r]);
}

/** Waits until the page's overlay shows exactly the drawings `ids` on `frame`, all stored. */
function showsDrawings(page, frame, ids) {
  return until(page, ([f, want]) => {
    const o = window.syncreel.overlay();
    const shown = o.shown.filter((s) => !s.pending).map((s) => s.id).sort((a, b) => a - b);
    return o.frame === f && o.shown.length === want.length && JSON.stringify(shown) === JSON.stringify(want) && o;
  }, [frame, ids]);
}

const near = (a, b, eps) => Math.abs(a - b) <= eps;

/** Host and reviewer on a plain session, paused on 01:00:10:05; the host draws a yellow pen line. */
async function roomWithALine(names) {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, names[0]);
  const reviewer = await join(byRole.reviewer.url, names[1]);
  await seekTo(host, '01:00:10:05', 245, [host, reviewer]);

  await host.click('#tool-pen');
  await host.click(`#swatches [data-colour="${YELLOW}"]`);
  await until(host, () => {
    const o = window.syncreel.overlay();
    return o.enabled && o.tool === 'pen' && o.frame === 245;
  });
  const stroke = line([0.25, 0.3], [0.55, 0.45]);
  await drag(host, stroke);
  const [drawing] = await until(host, () => {
    const d = window.syncreel.drawings();
    return d.length === 1 && window.syncreel.outbox().length === 0 && d;
  });
  return { byRole, host, reviewer, drawing, stroke };
}

test('a line drawn with the mouse on a paused frame shows on the other page over the same frame, and only there', async () => {
  const { host, reviewer, drawing, stroke } = await roomWithALine(['Host R1', 'Reviewer R1']);
  assert.equal(drawing.frame, 245);
  assert.equal(drawing.tool, 'pen');
  assert.equal(drawing.colour, YELLOW);
  assert.equal(drawing.author, 'Host R1');
  assert.ok(drawing.width >= 0.001 && drawing.width <= 0.05, `width ${drawing.width}`);
  // The points are picture points: the 16:9 picture is fitted into the
  // monitor with bars on two sides, and the ends of the stroke are where
  // the mouse went.
  const [first, last] = [drawing.points[0], drawing.points[drawing.points.length - 1]];
  assert.ok(near(first[0], 0.25, 0.004) && near(first[1], 0.3, 0.004), `starts at ${first}`);
  assert.ok(near(last[0], 0.55, 0.004) && near(last[1], 0.45, 0.004), `ends at ${last}`);
  const pic = await pictureOnPage(host);
  const bars = { x: pic.x - pic.box.x, y: pic.y - pic.box.y };
  assert.ok(Math.max(bars.x, bars.y) > 4, `the test page should letterbox or pillarbox the picture: ${JSON.stringify(bars)}`);
  const seen = (await host.evaluate(() => window.syncreel.overlay())).picture;
  assert.ok(near(seen.x, bars.x, 0.5) && near(seen.y, bars.y, 0.5) && near(seen.width, pic.width, 0.5), JSON.stringify(seen));

  await showsDrawings(reviewer, 245, [drawing.id]);
  assert.deepEqual(await reviewer.evaluate(() => window.syncreel.drawings()), [drawing]);
  // Ink on the other page where the stroke runs, in its colour; none elsewhere.
  for (const p of [stroke[2], stroke[5], stroke[8]]) {
    const [r, g, b, a] = await inkAt(reviewer, p);
    assert.ok(a > 200 && r > 200 && g > 170 && b < 90, `at ${p}: rgba ${[r, g, b, a]}`);
  }
  assert.deepEqual(await inkAt(reviewer, [0.8, 0.8], 6), [0, 0, 0, 0]);
  assert.deepEqual(await inkAt(reviewer, [0.25, 0.6], 6), [0, 0, 0, 0]);

  // One frame on, the drawing is not on screen; back on its frame it is.
  await host.keyboard.press('ArrowRight');
  await showsDrawings(reviewer, 246, []);
  assert.equal((await inkAt(reviewer, stroke[5]))[3], 0);
  await host.keyboard.press('ArrowLeft');
  await showsDrawings(reviewer, 245, [drawing.id]);
  assert.ok((await inkAt(reviewer, stroke[5]))[3] > 200);

  // In play nothing is drawn and the tools say why.
  await host.keyboard.press('Space');
  await until(reviewer, () => {
    const o = window.syncreel.overlay();
    return o.frame === null && !o.enabled && /Pause to draw/.test(document.getElementById('draw-status').textContent)
      && document.getElementById('tool-pen').disabled;
  });
  assert.equal((await inkAt(reviewer, stroke[5], 6))[3], 0);
  assertNoPageErrors(pages);
});

test('a page that joins later gets the drawings; a viewer sees them but cannot draw', async () => {
  const { byRole, host, drawing, stroke } = await roomWithALine(['Host R2', 'Reviewer R2']);
  const late = await join(byRole.viewer.url, 'Viewer R2');
  await until(late, () => window.syncreel.displayed()?.frame === 245);
  await showsDrawings(late, 245, [drawing.id]);
  assert.deepEqual(await late.evaluate(() => window.syncreel.drawings()), [drawing]);
  assert.ok((await inkAt(late, stroke[5]))[3] > 200);

  for (const id of ['#tool-pen', '#tool-arrow', '#tool-rect', '#tool-eraser', `#swatches [data-colour="${YELLOW}"]`, '#colour-custom']) {
    assert.ok(await late.isDisabled(id), `${id} should be disabled for a viewer`);
  }
  assert.match(await late.textContent('#draw-status'), /Viewers watch along/);
  // The canvas does not take the pointer: a drag draws nothing and sends nothing.
  await drag(late, line([0.6, 0.6], [0.8, 0.7], 3));
  assert.equal((await late.evaluate(() => window.syncreel.sent())).drawing, undefined);
  assert.equal((await host.evaluate(() => window.syncreel.drawings())).length, 1);
  assertNoPageErrors(pages);
});

test('the eraser on one page removes the drawing for everyone', async () => {
  const { host, reviewer, drawing, stroke } = await roomWithALine(['Host R3', 'Reviewer R3']);
  await showsDrawings(reviewer, 245, [drawing.id]);
  // A second shape the eraser does not pass over stays.
  await host.click('#tool-rect');
  await drag(host, [[0.7, 0.6], [0.9, 0.9]]);
  const box = await until(host, () => {
    const d = window.syncreel.drawings().find((x) => x.tool === 'rect');
    return window.syncreel.outbox().length === 0 && d;
  });
  await showsDrawings(reviewer, 245, [drawing.id, box.id].sort((a, b) => a - b));

  await reviewer.click('#tool-eraser');
  await until(reviewer, () => window.syncreel.overlay().tool === 'eraser' && window.syncreel.overlay().enabled);
  // A swipe across the line (it crosses x = 0.4 at y = 0.375).
  await drag(reviewer, [[0.4, 0.2], [0.4, 0.55]]);
  for (const page of [host, reviewer]) {
    await showsDrawings(page, 245, [box.id]);
    assert.deepEqual((await page.evaluate(() => window.syncreel.drawings())).map((d) => d.id), [box.id]);
    assert.equal((await inkAt(page, stroke[5], 4))[3], 0, 'the line is gone from the canvas');
    assert.ok((await inkAt(page, [0.7, 0.75]))[3] > 200, 'the box is still drawn');
  }
  assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).erase, 1);
  await until(reviewer, () => window.syncreel.outbox().length === 0);
  assertNoPageErrors(pages);
});

/** Host and reviewer on a plain session, paused on frame 245; the reviewer has the yellow pen. */
async function reviewerWithAPen(names) {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, names[0]);
  const reviewer = await join(byRole.reviewer.url, names[1]);
  await seekTo(host, '01:00:10:05', 245, [host, reviewer]);
  await reviewer.click('#tool-pen');
  await reviewer.click(`#swatches [data-colour="${YELLOW}"]`);
  await until(reviewer, () => {
    const o = window.syncreel.overlay();
    return o.enabled && o.tool === 'pen' && o.frame === 245;
  });
  const you = (await state(reviewer)).you;
  return { host, reviewer, you };
}

/** Waits until the page shows one live stroke by `by` with at least `min` points, on screen; returns it. */
async function showsLiveStroke(page, by, min) {
  return until(page, ([who, least]) => {
    const [s, ...more] = window.syncreel.liveStrokes();
    const shown = window.syncreel.overlay().shown.filter((x) => x.live);
    return s && !more.length && s.by === who && s.pointCount >= least && shown.length === 1 && shown[0].key === s.key && s;
  }, [by, min]);
}

test('a stroke shows on the other page while it is drawn, then gives way to the drawing it becomes', async () => {
  const { host, reviewer, you } = await reviewerWithAPen(['Host R9', 'Reviewer R9']);
  const stroke = line([0.25, 0.3], [0.55, 0.45]);
  const pressedAt = Date.now();
  await press(reviewer, stroke);
  // Still held down: the host sees what there is of it so far.
  const live = await showsLiveStroke(host, you, 20);
  assert.equal(live.frame, 245);
  assert.equal(live.tool, 'pen');
  assert.equal(live.colour, YELLOW);
  assert.deepEqual(await host.evaluate(() => window.syncreel.drawings()), [], 'nothing is stored yet');
  assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).drawing, undefined);
  for (const p of [stroke[1], stroke[4]]) {
    const [r, g, b, a] = await inkAt(host, p);
    assert.ok(a > 200 && r > 200 && g > 170 && b < 90, `at ${p}: rgba ${[r, g, b, a]}`);
  }
  assert.deepEqual(await inkAt(host, [0.8, 0.8], 6), [0, 0, 0, 0]);
  // About ten parts a second, far inside the server's rate limit.
  const parts = (await reviewer.evaluate(() => window.syncreel.sent())).stroke;
  const heldMs = Date.now() - pressedAt;
  assert.ok(parts >= 1 && parts <= Math.ceil(heldMs / 100) + 1, `${parts} parts in ${heldMs} ms`);

  await reviewer.mouse.up();
  const [drawing] = await until(host, () => {
    const d = window.syncreel.drawings();
    return d.length === 1 && window.syncreel.liveStrokes().length === 0 && d;
  });
  assert.equal(drawing.key, live.key, 'the drawing carries the key its stroke was shown under');
  assert.ok(drawing.points.length >= live.pointCount, `${drawing.points.length} points stored, ${live.pointCount} seen`);
  await showsDrawings(host, 245, [drawing.id]);
  assert.ok((await inkAt(host, stroke[8]))[3] > 200, 'the whole line is drawn');
  await until(reviewer, () => window.syncreel.outbox().length === 0);
  assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).strokeEnd, undefined);
  assertNoPageErrors(pages);
});

test('a stroke given up while drawn leaves the other page at once, not when it would expire', async () => {
  const { host, reviewer, you } = await reviewerWithAPen(['Host R10', 'Reviewer R10']);
  const stroke = line([0.3, 0.6], [0.6, 0.7], 6);
  await press(reviewer, stroke);
  await showsLiveStroke(host, you, 5);
  assert.ok((await inkAt(host, stroke[2]))[3] > 200, 'shown while drawn');

  const cancelledAt = Date.now();
  // What the browser sends when it takes the pointer away (a touch turned scroll, a lost window).
  await reviewer.evaluate(() => document.getElementById('draw-canvas').dispatchEvent(
    new PointerEvent('pointercancel', { pointerId: 1, pointerType: 'mouse', bubbles: true }),
  ));
  // Well before the 5 s a silent stroke is kept: the strokeEnd took it down.
  await until(host, () => !window.syncreel.liveStrokes().length && !window.syncreel.overlay().shown.length, null, 3_000);
  const goneMs = Date.now() - cancelledAt;
  assert.ok(goneMs < 3_000, `gone after ${goneMs} ms`);
  assert.equal((await inkAt(host, stroke[2], 6))[3], 0, 'no ink left');
  await reviewer.mouse.up();
  const sent = await reviewer.evaluate(() => window.syncreel.sent());
  assert.equal(sent.strokeEnd, 1);
  assert.equal(sent.drawing, undefined);
  assert.deepEqual(await reviewer.evaluate(() => window.syncreel.outbox()), []);
  assert.deepEqual(await host.evaluate(() => window.syncreel.drawings()), []);
  assertNoPageErrors(pages);
});

/** The notes panel as a page draws it: per note, [text, classes, state line, replies' texts]. */
const noteThreads = (page) => page.$$eval('#notes > li[data-id]', (rows) => rows.map((r) => [
  r.querySelector('.note-text').textContent,
  r.classList.contains('resolved'),
  r.querySelector('.note-state')?.textContent ?? null,
  [...r.querySelectorAll('.replies .reply-text')].map((x) => x.textContent),
]));

test('a reply and a resolve made on one page show on the other; a reopen too', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host R4');
  const reviewer = await join(byRole.reviewer.url, 'Reviewer R4');
  await seekTo(host, '01:00:10:05', 245, [host, reviewer]);
  await reviewer.fill('#note-input', 'Sky is too warm');
  await reviewer.press('#note-input', 'Enter');
  const [note] = await until(host, () => window.syncreel.notes().length === 1 && window.syncreel.notes());
  await until(host, (id) => document.querySelector(`#notes li[data-id="${id}"] button[data-action="reply"]`), note.id);

  await host.click(`#notes li[data-id="${note.id}"] button[data-action="reply"]`);
  // The box takes the keyboard at once; typed into it, Space and "l" are
  // text, not transport keys.
  await until(host, () => document.activeElement?.id === 'reply-input');
  await host.keyboard.type('Agreed, pull');
  // A note arriving meanwhile redraws the list; the half-typed reply stays, with the keyboard.
  await reviewer.fill('#note-input', 'Boom at top of frame');
  await reviewer.press('#note-input', 'Enter');
  await until(host, () => document.querySelectorAll('#notes > li[data-id]').length === 2);
  assert.equal(await host.inputValue('#reply-input'), 'Agreed, pull');
  assert.equal(await host.evaluate(() => document.activeElement?.id), 'reply-input');
  await host.keyboard.type(' it back');
  await host.keyboard.press('Enter');
  for (const page of [host, reviewer]) {
    const reply = await until(page, () => window.syncreel.notes().find((n) => n.parent != null));
    assert.equal(reply.parent, note.id);
    assert.equal(reply.frame, 245);
    assert.equal(reply.author, 'Host R4');
    assert.equal(reply.text, 'Agreed, pull it back');
    await until(page, () => document.querySelectorAll('#notes .replies .reply[data-reply-id]').length === 1);
    assert.deepEqual(await noteThreads(page), [
      ['Sky is too warm', false, null, ['Agreed, pull it back']],
      ['Boom at top of frame', false, null, []],
    ]);
    // A reply is not a note of its own: no row, no tick of its own.
    assert.equal(await page.$$eval('#notes li[data-id]', (r) => r.length), 2);
    assert.equal(await page.$$eval('#note-marks .note-mark', (m) => m.length), 2);
  }
  assert.equal(await host.$('#reply-input'), null, 'the reply box closes once sent');
  assert.equal((await host.evaluate(() => window.syncreel.sent())).play, undefined);

  await host.click(`#notes li[data-id="${note.id}"] button[data-action="resolve"]`);
  for (const page of [host, reviewer]) {
    await until(page, (id) => window.syncreel.notes().find((n) => n.id === id)?.resolvedBy === 'Host R4', note.id);
    await until(page, () => document.querySelector('#notes li.resolved .note-state')?.textContent === 'resolved by Host R4');
    assert.deepEqual(await noteThreads(page), [
      ['Sky is too warm', true, 'resolved by Host R4', ['Agreed, pull it back']],
      ['Boom at top of frame', false, null, []],
    ]);
    assert.equal(await page.textContent('#notes-count'), '· 1 open of 2');
  }
  // The room did not move: notes and replies are not driving.
  assert.equal((await host.evaluate(() => window.syncreel.displayed())).frame, 245);

  await reviewer.click(`#notes li[data-id="${note.id}"] button[data-action="reopen"]`);
  for (const page of [host, reviewer]) {
    await until(page, (id) => {
      const n = window.syncreel.notes().find((x) => x.id === id);
      return n.resolvedBy == null && n.resolvedAt == null && !document.querySelector('#notes li.resolved');
    }, note.id);
  }
  assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).resolve, 1);
  assertNoPageErrors(pages);
});

test('a reply and a resolve written while disconnected are delivered once after the reconnect', async () => {
  const { byRole } = await createSession(server.base);
  const relay = await startRelay(server.base);
  try {
    const host = await join(byRole.host.url, 'Host R6');
    const reviewer = await join(byRole.reviewer.url.replace(server.base, relay.base), 'Reviewer R6');
    await host.fill('#note-input', 'Boom in shot');
    await host.press('#note-input', 'Enter');
    const [note] = await until(reviewer, () => window.syncreel.notes().length === 1 && window.syncreel.notes());

    relay.refusing = true;
    relay.cut();
    await until(reviewer, () => window.syncreel.state().connection === 'reconnecting');
    await reviewer.click(`#notes li[data-id="${note.id}"] button[data-action="reply"]`);
    await reviewer.fill('#reply-input', 'Paint it out?');
    await reviewer.press('#reply-input', 'Enter');
    await reviewer.click(`#notes li[data-id="${note.id}"] button[data-action="resolve"]`);
    const keys = await until(reviewer, () => window.syncreel.outbox().length === 2 && window.syncreel.outbox());
    // Shown at once as on their way.
    await reviewer.waitForSelector(`#notes .reply.pending[data-key="${keys[0]}"]`);
    await until(reviewer, () => document.querySelector('#notes li.resolved .note-state')?.textContent === 'resolving…');
    assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).reply, undefined);

    relay.refusing = false;
    await until(reviewer, () => window.syncreel.state().connection === 'live', null, 15_000);
    for (const page of [host, reviewer]) {
      await until(page, () => {
        const n = window.syncreel.notes();
        return n.length === 2 && n.some((x) => x.parent != null && x.text === 'Paint it out?') && n[0].resolvedBy === 'Reviewer R6';
      });
    }
    await until(reviewer, () => window.syncreel.outbox().length === 0 && !document.querySelector('#notes .pending'));
    assert.equal((await reviewer.evaluate(() => window.syncreel.notes())).find((n) => n.parent != null).key, keys[0]);
    assertNoPageErrors(pages, [/WebSocket connection to .* failed/]);
  } finally {
    await relay.stop();
  }
});

async function mediaSession() {
  const { status, body, text } = await postSession(server.base, { title: 'Review test', media: 'demo.mov' });
  assert.equal(status, 201, text);
  body.byRole = Object.fromEntries(body.links.map((l) => [l.role, l]));
  return body;
}

async function joinWatching(url, name) {
  const page = await join(url, name);
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  return page;
}

test('over video, a stroke lands on the picture (not the letterbox) of the frame the video shows', async () => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host R7');
  const reviewer = await joinWatching(byRole.reviewer.url, 'Reviewer R7');
  await seekTo(host, '01:00:10:05', 245, [host, reviewer]);
  for (const page of [host, reviewer]) {
    await until(page, () => window.syncreel.video().shown?.frame === 245 && window.syncreel.overlay().frame === 245, null, VIDEO_WAIT_MS);
  }
  await reviewer.click('#tool-arrow');
  const pic = await drag(reviewer, [[0.2, 0.7], [0.45, 0.5]]);
  // The 640×360 stream fills the monitor one way and leaves bars the other.
  const fills = near(pic.height, pic.box.height, 1) || near(pic.width, pic.box.width, 1);
  assert.ok(fills && Math.max(pic.x - pic.box.x, pic.y - pic.box.y) > 4, JSON.stringify(pic));
  const [arrow] = await until(host, () => window.syncreel.drawings().length === 1 && window.syncreel.drawings());
  assert.equal(arrow.tool, 'arrow');
  assert.equal(arrow.frame, 245);
  assert.ok(near(arrow.points[0][0], 0.2, 0.004) && near(arrow.points[0][1], 0.7, 0.004), `tail ${arrow.points[0]}`);
  assert.ok(near(arrow.points[1][0], 0.45, 0.004) && near(arrow.points[1][1], 0.5, 0.004), `tip ${arrow.points[1]}`);
  await showsDrawings(host, 245, [arrow.id]);
  assert.ok((await inkAt(host, [0.325, 0.6]))[3] > 200, 'the shaft');
  assertNoPageErrors(pages);
});

test('over video, someone not driving clicks a note and sees its exact frame on their own while the room plays on', async () => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host R8');
  const reviewer = await joinWatching(byRole.reviewer.url, 'Reviewer R8');
  await seekTo(host, '01:00:10:05', 245, [host, reviewer]);
  await until(host, () => window.syncreel.video().shown?.frame === 245 && window.syncreel.overlay().frame === 245, null, VIDEO_WAIT_MS);
  await host.click('#tool-rect');
  await drag(host, [[0.3, 0.3], [0.6, 0.6]]);
  await host.fill('#note-input', 'Hold on the sky');
  await host.press('#note-input', 'Enter');
  await until(reviewer, () => window.syncreel.notes().length === 1 && window.syncreel.drawings().length === 1);

  // The room plays on elsewhere; the reviewer goes back to the note alone.
  await host.keyboard.press('Space');
  await until(reviewer, () => window.syncreel.state().transport.playing);
  await reviewer.click('#notes li[data-id]');
  await until(reviewer, () => window.syncreel.state().peek?.still === true, null, VIDEO_WAIT_MS);
  assert.equal(await until(reviewer, () => window.syncreel.readPeekFrameCode()), 245, 'the still is the noted frame');
  await until(reviewer, () => window.syncreel.overlay().frame === 245);
  assert.equal((await reviewer.evaluate(() => window.syncreel.overlay())).shown.length, 1, 'with its drawing');
  assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).seek, undefined);
  assert.ok((await state(host)).transport.playing, 'the room still plays');

  // What the reviewer adds now is pinned to the frame they look at.
  await reviewer.fill('#note-input', 'Agreed, and the horizon');
  await reviewer.press('#note-input', 'Enter');
  const added = await until(host, () => window.syncreel.notes().find((n) => n.text === 'Agreed, and the horizon'));
  assert.equal(added.frame, 245);

  await reviewer.keyboard.press('Escape');
  await until(reviewer, () => window.syncreel.state().peek === null && window.syncreel.overlay().frame === null);
  assert.ok(await reviewer.isHidden('#peek-still'));
  assertNoPageErrors(pages);
});

test('an approval shows on the other page with a receipt of what its author was shown', async (t) => {
  const { byRole } = await mediaSession();
  const host = await joinWatching(byRole.host.url, 'Host R5');
  const reviewer = await joinWatching(byRole.reviewer.url, 'Reviewer R5');
  const { version } = (await host.evaluate(() => window.syncreel.video())).media;
  assert.ok(version?.id && /^[0-9a-f]{64}$/.test(version.checksum), JSON.stringify(version));
  for (const page of [host, reviewer]) {
    assert.equal(await page.textContent('#version'), `${version.item} v${version.number}`);
    assert.ok(await page.isVisible('#approve'));
    assert.ok(await page.isVisible('#request-changes'));
  }

  // Play a bit, so that the host's frame reports cover a stretch of frames.
  await host.keyboard.press('Space');
  await until(host, () => window.syncreel.video().shown?.frame >= 60, null, VIDEO_WAIT_MS);
  await host.keyboard.press('Space');
  await until(host, () => !window.syncreel.state().transport.playing);

  await host.click('#approve');
  const [decision] = await until(reviewer, () => window.syncreel.decisions().length === 1 && window.syncreel.decisions());
  t.diagnostic(`receipt: ${JSON.stringify(decision.receipt)}`);
  assert.equal(decision.status, 'approved');
  assert.equal(decision.author, 'Host R5');
  assert.equal(decision.versionId, version.id);
  assert.ok(decision.receipt.frameCount > 0, `frameCount ${decision.receipt.frameCount}`);
  assert.ok(decision.receipt.frames.length > 0);
  assert.equal(decision.receipt.checksum, version.checksum);
  assert.match(decision.receipt.stream ?? '', /^640x360 /);
  assert.ok(decision.receipt.streamKbps > 0, `kbps ${decision.receipt.streamKbps}`);

  // The reviewer's panel shows it, with the receipt in short.
  const row = `#decisions li[data-id="${decision.id}"]`;
  await reviewer.waitForSelector(row);
  assert.equal(await reviewer.textContent(`${row} .decision-status`), 'Approved');
  assert.equal(await reviewer.textContent(`${row} .decision-who`), 'Host R5 · host');
  assert.equal(await reviewer.textContent(`${row} .receipt-seen`), `${decision.receipt.frameCount} frames seen`);
  assert.match(await reviewer.textContent(`${row} .receipt-ranges`), /^01:00:\d\d:\d\d/);
  assert.match(await reviewer.textContent(`${row} .receipt-stream`), /^640x360 \S+ · \d+ kbps$/);
  assert.equal(await reviewer.textContent(`${row} .receipt-checksum`), `sha256 ${version.checksum.slice(0, 12)}`);
  await until(host, () => document.getElementById('approve').getAttribute('aria-pressed') === 'true'
    && window.syncreel.outbox().length === 0);

  // The reviewer disagrees; both decisions stand, the newest first.
  await reviewer.click('#request-changes');
  for (const page of [host, reviewer]) {
    const decisions = await until(page, () => window.syncreel.decisions().length === 2 && window.syncreel.decisions());
    assert.deepEqual(decisions.map((d) => [d.author, d.status]), [['Reviewer R5', 'changesRequested'], ['Host R5', 'approved']]);
    await until(page, () => document.querySelectorAll('#decisions li').length === 2);
  }
  // The host changes their mind: still one standing decision each.
  await host.click('#request-changes');
  await until(reviewer, () => {
    const d = window.syncreel.decisions();
    return d.length === 2 && d.every((x) => x.status === 'changesRequested') && window.syncreel.approvals().length === 3;
  });

  // A viewer sees where the room stands but is not asked.
  const viewer = await join(byRole.viewer.url, 'Viewer R5');
  await until(viewer, () => window.syncreel.decisions().length === 2 && document.querySelectorAll('#decisions li').length === 2);
  assert.ok(await viewer.isHidden('#approve'));
  assert.ok(await viewer.isHidden('#request-changes'));
  assert.equal(await viewer.textContent('#version'), `${version.item} v${version.number}`);
  assertNoPageErrors(pages);
});

test('a session without media shows no version and offers no approval', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host R8');
  assert.ok(await host.isHidden('#version'));
  assert.ok(await host.isHidden('#approval-panel'));
  assert.deepEqual(await host.evaluate(() => window.syncreel.approvals()), []);
  assertNoPageErrors(pages);
});
