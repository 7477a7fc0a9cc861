// The review page at a laptop's, a desktop's and a phone's size: nothing
// scrolls sideways, the picture and the notes are in view, the readouts
// sit beside the picture rather than on it (H clears what is left), and
// a phone viewer gets the picture and the notes without controls it
// cannot use. Errors read as sentences, not codes.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { describe } from '../messages.js';
import {
  assertNoPageErrors, axeViolations, createMediaSession, createSession, joinAs, launchBrowser, startDemoServer, startRelay, until,
} from './support/harness.mjs';

const VIDEO_WAIT_MS = 20_000;
const LAPTOP = { width: 1280, height: 800 };
const DESKTOP = { width: 1920, height: 1080 };
const PHONE = { width: 390, height: 844 };

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

async function joinWatching(url, name, viewport) {
  const page = await joinAs(browser, url, name, { viewport });
  pages.push(page);
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  // The picture's own size is known once a frame has been decoded.
  await until(page, () => document.getElementById('video').videoWidth > 0, null, VIDEO_WAIT_MS);
  return page;
}

/**
 * Where things are, measured in the page: the picture's rectangle (the
 * video fitted into the monitor), how much of it anything of the page's
 * covers, and the boxes of the parts the tests name.
 */
function measure(page) {
  return page.evaluate(() => {
    const box = (node) => {
      if (!node) return null;
      const r = node.getBoundingClientRect();
      const style = getComputedStyle(node);
      const shown = r.width > 0 && r.height > 0 && style.visibility !== 'hidden' && style.display !== 'none';
      return { x: r.x, y: r.y, width: r.width, height: r.height, bottom: r.bottom, right: r.right, shown };
    };
    const video = document.getElementById('video');
    const m = video.getBoundingClientRect();
    const scale = Math.min(m.width / video.videoWidth, m.height / video.videoHeight);
    const w = video.videoWidth * scale;
    const h = video.videoHeight * scale;
    const picture = { x: m.x + (m.width - w) / 2, y: m.y + (m.height - h) / 2, width: w, height: h };
    const overlap = (r) => Math.max(0, Math.min(r.right, picture.x + picture.width) - Math.max(r.x, picture.x))
      * Math.max(0, Math.min(r.bottom, picture.y + picture.height) - Math.max(r.y, picture.y));
    // Everything the page could put over the picture: any element but the
    // picture's own layers (the video, the still, a look's still) and the
    // drawings, which are review content.
    const layers = new Set(['video', 'still-layer', 'peek-still', 'draw-canvas']);
    const covering = [];
    for (const node of document.querySelectorAll('body *')) {
      if (layers.has(node.id) || node.closest('#toasts') || node.contains(video)) continue;
      const b = box(node);
      if (!b?.shown) continue;
      const area = overlap(b);
      if (area > 0) covering.push({ what: node.id || node.className || node.tagName, fraction: area / (w * h) });
    }
    // Nested boxes count each: an overestimate, never an underestimate.
    const covered = covering.reduce((sum, c) => sum + c.fraction, 0);
    return {
      innerWidth,
      innerHeight,
      scrollWidth: document.scrollingElement.scrollWidth,
      picture,
      covering,
      covered,
      monitor: box(document.getElementById('monitor')),
      timecode: box(document.getElementById('timecode')),
      playState: box(document.getElementById('play-state')),
      frame: box(document.getElementById('frame')),
      notes: box(document.getElementById('notes')),
      notesPanel: box(document.querySelector('.notes-panel')),
      transport: box(document.querySelector('.transport')),
      drawBar: box(document.getElementById('draw-bar')),
      hint: box(document.querySelector('.keys-hint')),
      badge: box(document.getElementById('picture-badge')),
    };
  });
}

const inView = (b, m) => b.shown && b.x >= 0 && b.y >= 0 && b.right <= m.innerWidth + 0.5 && b.bottom <= m.innerHeight + 0.5;
const startsInView = (b, m) => b.shown && b.y >= 0 && b.y < m.innerHeight - 40 && b.right <= m.innerWidth + 0.5;
const disjoint = (a, b) => a.right <= b.x || b.x + b.width <= a.x || a.bottom <= b.y || b.y + b.height <= a.y;

/** Writes a note, so that the list has a row to be seen. */
async function addNote(page, text) {
  await page.fill('#note-input', text);
  await page.press('#note-input', 'Enter');
  await until(page, (t) => [...document.querySelectorAll('#notes > li[data-id]')].some((li) => li.textContent.includes(t)), text);
}

for (const [label, viewport] of [['1280×800', LAPTOP], ['1920×1080', DESKTOP]]) {
  test(`at ${label} the picture and the notes are in view, nothing scrolls sideways, and the readouts leave the picture alone`, async () => {
    const { byRole } = await createMediaSession(server.base, `Layout ${label}`);
    const host = await joinWatching(byRole.host.url, `Host ${label}`, viewport);
    await addNote(host, `Grade note at ${label}`);

    const m = await measure(host);
    assert.ok(m.scrollWidth <= m.innerWidth, `the page scrolls sideways: ${m.scrollWidth} > ${m.innerWidth}`);
    assert.ok(inView(m.monitor, m), `the picture is not all in view: ${JSON.stringify(m.monitor)}`);
    assert.ok(startsInView(m.notes, m), `the notes list is below the fold: ${JSON.stringify(m.notes)}`);
    assert.ok(await host.isVisible('#notes > li[data-id]'));
    // The readouts: in view, and none of them on the picture.
    for (const what of ['timecode', 'playState', 'frame']) {
      assert.ok(inView(m[what], m), `${what} is not in view`);
      assert.ok(disjoint(m[what], m.picture), `${what} sits on the picture`);
    }
    assert.ok(m.picture.width > viewport.width * 0.45, `the picture is small: ${m.picture.width} px wide`);
    assert.ok(m.badge.shown, 'the timecode badge is on the picture');
    assert.ok(m.covered <= 0.02, `the page covers ${(m.covered * 100).toFixed(2)} % of the picture: ${JSON.stringify(m.covering)}`);

    // Typing a note leaves the picture where it was.
    await host.click('#note-input');
    await host.keyboard.type('the sky is too cyan');
    const typing = await measure(host);
    assert.deepEqual([typing.monitor.x, typing.monitor.y], [m.monitor.x, m.monitor.y], 'typing a note moved the picture');
    await host.fill('#note-input', '');

    // H takes everything off the picture, and brings it back.
    await host.locator('#monitor').click({ position: { x: 5, y: 5 } });
    await host.keyboard.press('KeyH');
    await until(host, () => document.getElementById('monitor').classList.contains('clean'));
    const clean = await measure(host);
    assert.equal(clean.covered, 0, `with the overlay off the page still covers the picture: ${JSON.stringify(clean.covering)}`);
    assert.equal(clean.badge.shown, false);
    assert.equal(await host.getAttribute('#overlay-toggle', 'aria-pressed'), 'false');
    await host.keyboard.press('KeyH');
    await until(host, () => !document.getElementById('monitor').classList.contains('clean'));
    assert.equal((await measure(host)).badge.shown, true);
    assertNoPageErrors([host]);
  });
}

test('on a phone a viewer gets the picture first, then the notes, and no controls they cannot use', async () => {
  const { byRole } = await createMediaSession(server.base, 'Layout phone');
  const host = await joinWatching(byRole.host.url, 'Host phone', LAPTOP);
  await addNote(host, 'Phone note');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer phone', PHONE);
  await until(viewer, () => document.querySelectorAll('#notes > li[data-id]').length === 1);

  const m = await measure(viewer);
  assert.ok(m.scrollWidth <= m.innerWidth, `the page scrolls sideways: ${m.scrollWidth} > ${m.innerWidth}`);
  assert.ok(inView(m.monitor, m), `the picture is not in view: ${JSON.stringify(m.monitor)}`);
  assert.ok(m.monitor.y < m.notesPanel.y, 'the notes come before the picture');
  assert.ok(startsInView(m.notesPanel, m), `the notes are far down: ${JSON.stringify(m.notesPanel)}`);
  for (const what of ['transport', 'drawBar', 'hint']) assert.equal(m[what].shown, false, `a viewer on a phone sees the ${what}`);
  for (const what of ['timecode', 'playState']) {
    assert.ok(inView(m[what], m), `${what} is not in view`);
    assert.ok(disjoint(m[what], m.picture), `${what} sits on the picture`);
  }
  assert.ok(m.covered <= 0.02, `the page covers ${(m.covered * 100).toFixed(2)} % of the picture: ${JSON.stringify(m.covering)}`);

  // Scrolled down to the notes, the picture stays pinned at the top.
  await viewer.evaluate(() => window.scrollTo(0, document.scrollingElement.scrollHeight));
  await until(viewer, () => window.scrollY > 0 || document.scrollingElement.scrollHeight <= innerHeight);
  const scrolled = await measure(viewer);
  assert.ok(inView(scrolled.monitor, scrolled), `scrolling took the picture away: ${JSON.stringify(scrolled.monitor)}`);

  // The same pages at every width from 360 px up, the host's with every
  // control and panel: never wider than the window.
  for (const [who, page] of [['viewer', viewer], ['host', host]]) {
    for (const width of [360, 414, 600, 768, 960, 1024, 1440]) {
      await page.setViewportSize({ width, height: 800 });
      const wide = await page.evaluate(() => ({
        scroll: document.scrollingElement.scrollWidth,
        inner: innerWidth,
        // What sticks out, for the message.
        out: [...document.querySelectorAll('body *')].filter((n) => n.getBoundingClientRect().right > innerWidth + 0.5)
          .slice(0, 5).map((n) => `${n.tagName}#${n.id}.${n.className} → ${Math.round(n.getBoundingClientRect().right)}`),
      }));
      assert.equal(wide.inner, width);
      assert.ok(wide.scroll <= wide.inner, `${who} at ${width} px: the page scrolls sideways (${wide.scroll}): ${wide.out}`);
    }
  }
  assertNoPageErrors([host, viewer]);
});

test('typed errors read as sentences with what to do next; the code stays under Details', async () => {
  const { byRole, session } = await createMediaSession(server.base, 'Layout errors');
  const host = await joinAs(browser, byRole.host.url, 'Host errors');
  const viewer = await joinAs(browser, byRole.viewer.url, 'Viewer errors', { viewport: PHONE });
  pages.push(host, viewer);

  // The server's refusal of a label it cannot place.
  await host.evaluate(() => window.syncreel.drive({ type: 'seek', timecode: '01:00:00:99' }));
  await toastReads(host, 'bad_timecode');

  // The page's own refusal: a viewer cannot drive.
  await viewer.keyboard.press('Space');
  const refused = await until(viewer, () => document.querySelector('#toasts [data-code="not_driver"]')?.innerText);
  assert.match(refused, /Viewers watch along/);
  assert.doesNotMatch(refused, /not_driver/);

  // A refusal of the hello takes the whole screen, in words.
  const context = await browser.newContext({ viewport: LAPTOP });
  const stranger = await context.newPage();
  try {
    await stranger.goto(`${server.base}/s/${session.id}#token=not-a-real-token`);
    await stranger.fill('#name', 'Stranger');
    await stranger.click('#join');
    await until(stranger, () => window.syncreel.state().connection === 'error');
    const fatal = await stranger.innerText('#fatal-message');
    const want = describe('invalid_token');
    assert.equal(fatal, `${want.text} ${want.next}`);
    assert.equal(await stranger.getAttribute('#fatal-message', 'data-code'), 'invalid_token');
    await toastReads(stranger, 'invalid_token');
  } finally {
    await context.close();
  }
  assertNoPageErrors([host, viewer]);
});

test('Go to takes every form an editor types, and explains in place what it cannot place', async () => {
  // 23.976 fps, 14 400 frames from 01:00:00:00.
  const { byRole } = await createSession(server.base, { title: 'Layout go to' });
  const host = await joinAs(browser, byRole.host.url, 'Host go to');
  pages.push(host);
  const go = async (text, frame) => {
    await host.fill('#tc-input', text);
    await host.press('#tc-input', 'Enter');
    await until(host, (f) => window.syncreel.displayed()?.frame === f && window.syncreel.state().pending === 0, frame);
    assert.equal(await host.isHidden('#tc-error'), true, `${text} was refused`);
  };
  // The forms are named under the field while it has the keyboard; neither
  // they nor a refusal move the picture.
  const monitorAt = () => host.evaluate(() => {
    const r = document.getElementById('monitor').getBoundingClientRect();
    return [r.x, r.y, r.width, r.height];
  });
  const before = await monitorAt();
  await host.focus('#tc-input');
  assert.match(await host.innerText('#tc-hint'), /01:00:10:05.*1000.*f1234.*\+24/);
  await go('01:00:10:05', 245);
  await go('1000', 240);
  await go('01001100', 264);
  await go('+24', 288);
  await go('-48', 240);
  await go('+1:00', 264);
  await go('f1234', 1234);
  await go('#12', 12);

  for (const [text, why] of [['soon', /not a time/], ['01:00:00:99', /frames run 00 to 23/], ['f99999', /past the last frame/]]) {
    await host.fill('#tc-input', text);
    await host.press('#tc-input', 'Enter');
    await host.waitForSelector('#tc-error', { state: 'visible' });
    assert.match(await host.textContent('#tc-error'), why);
    const field = await host.evaluate(() => {
      const input = document.getElementById('tc-input');
      return { focused: document.activeElement === input, selected: input.value.slice(input.selectionStart, input.selectionEnd) };
    });
    assert.deepEqual(field, { focused: true, selected: text }, `${text}: the field lets go or the value is not selected`);
    assert.equal(await host.isHidden('#tc-hint'), true, 'the hint shows beside the refusal');
    assert.deepEqual(await monitorAt(), before, `the refusal of ${text} moved the picture`);
    assert.equal((await host.evaluate(() => window.syncreel.displayed().frame)), 12, `${text} moved the room`);
    // Typing over it takes the refusal away.
    await host.keyboard.type('1');
    await until(host, () => document.getElementById('tc-error').hidden);
  }
  assert.deepEqual(await host.evaluate(() => window.syncreel.errors()), [], 'the server refused something');
  assertNoPageErrors([host]);
});

test('the picture has one state: playing, then reconnecting and unreachable within a second of the server going, then back', async () => {
  const { byRole } = await createMediaSession(server.base, 'Layout states');
  const relay = await startRelay(server.base);
  try {
    const host = await joinWatching(byRole.host.url.replace(server.base, relay.base), 'Host states', LAPTOP);
    const viewer = await joinWatching(byRole.viewer.url, 'Viewer states', LAPTOP);
    const stateOf = (page) => page.evaluate(() => {
      const node = document.getElementById('play-state');
      return { state: node.dataset.state, label: node.textContent, readout: document.getElementById('readout').innerText };
    });
    // Paused on a still: one word, and nothing else in the bar says otherwise.
    await until(host, () => document.getElementById('play-state').dataset.state === 'paused');
    let s = await stateOf(host);
    assert.equal(s.label, 'Paused');
    assert.doesNotMatch(s.readout, /playing/i, 'the bar says paused and playing at once');

    // Each person in a word, the figures on hover.
    const viewerId = (await viewer.evaluate(() => window.syncreel.state().you));
    const cell = await until(host, (id) => {
      const td = document.querySelector(`#presence tr[data-id="${id}"] .sync-col`);
      return td?.dataset.sync === 'in-sync' && { text: td.textContent, title: td.title };
    }, viewerId);
    assert.equal(cell.text, 'in sync');
    assert.match(cell.title, /^round trip [\d.]+ ms · clock ±[\d.]+ ms · frame \d+/);

    await host.keyboard.press('Space');
    await until(host, () => document.getElementById('play-state').dataset.state === 'playing', null, VIDEO_WAIT_MS);
    s = await stateOf(host);
    assert.equal(s.label, 'Playing');
    assert.doesNotMatch(s.readout, /paused/i, 'the bar says playing and paused at once');

    // The server goes away: said within a second, by the connection's own
    // events. The page notes the instant its state word changed (on this
    // machine's clock, as the cut's is), so that the figure is the page's
    // and not the test's polling through a busy browser.
    await host.evaluate(() => {
      const node = document.getElementById('play-state');
      window.stateLeftAtMs = null;
      new MutationObserver((_, observer) => {
        if (!['reconnecting', 'unreachable'].includes(node.dataset.state)) return;
        window.stateLeftAtMs = performance.timeOrigin + performance.now();
        observer.disconnect();
      }).observe(node, { attributes: true, attributeFilter: ['data-state'] });
    });
    const cutAt = Date.now();
    relay.refusing = true;
    relay.cut();
    const leftAt = await until(host, () => window.stateLeftAtMs, null, 5000);
    const saidMs = Math.round(leftAt - cutAt);
    await until(host, () => document.getElementById('play-state').dataset.state === 'unreachable', null, 5000);
    s = await stateOf(host);
    assert.equal(s.label, 'Server unreachable · retrying');
    assert.doesNotMatch(s.readout, /playing/i, 'the bar still says playing with the server gone');
    assert.equal(await host.getAttribute('#monitor', 'data-state'), 'unreachable');
    assert.ok(saidMs <= 1000, `the state changed ${saidMs} ms after the cut`);

    // Back: live again, and playing.
    relay.refusing = false;
    await until(host, () => window.syncreel.state().connection === 'live', null, 15_000);
    await until(host, () => ['playing', 'buffering'].includes(document.getElementById('play-state').dataset.state));
    assertNoPageErrors([host, viewer], [/WebSocket/, /ERR_CONNECTION/, /Failed to load resource/]);
  } finally {
    await relay.stop();
  }
});

test('axe finds nothing serious on a host\'s page or on a phone viewer\'s', async () => {
  const { byRole } = await createMediaSession(server.base, 'Layout a11y');
  const host = await joinWatching(byRole.host.url, 'Host a11y', LAPTOP);
  await addNote(host, 'Accessible note');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer a11y', PHONE);
  for (const [who, page] of [['host', host], ['viewer', viewer]]) {
    assert.deepEqual(await axeViolations(page), [], `${who}: serious or critical violations`);
  }
  assertNoPageErrors([host, viewer]);
});

/** The toast for `code` shows its sentence and next step, not the code, which is under Details. */
async function toastReads(page, code) {
  const selector = `#toasts [data-code="${code}"]`;
  await page.waitForSelector(selector);
  const shown = await page.innerText(selector);
  const want = describe(code);
  assert.ok(shown.includes(want.text), `"${shown}" lacks "${want.text}"`);
  if (want.next) assert.ok(shown.includes(want.next), `"${shown}" lacks "${want.next}"`);
  assert.ok(!shown.includes(code), `the raw code shows: "${shown}"`);
  await page.click(`${selector} summary`);
  assert.ok((await page.innerText(selector)).includes(code), 'the code is under Details');
}
