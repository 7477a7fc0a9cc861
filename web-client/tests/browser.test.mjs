// End to end in real Chromium against the real server: several people in
// one room, each in their own browser context, driving and watching.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import {
  assertNoPageErrors, createSession, displayed, frameLog, joinAs, launchBrowser, seekTo, settledAt,
  startRelay, startServer, state, until, waitFor,
} from './support/harness.mjs';

let server;
let browser;
const pages = [];

before(async () => {
  server = await startServer();
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


/** The sample of a frame log shown at instant `t` (column `col`): the last one at or before it. */
function shownAt(log, t, col) {
  let lo = 0;
  let hi = log.length - 1;
  if (log[0][col] > t) return null;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (log[mid][col] <= t) lo = mid;
    else hi = mid - 1;
  }
  return log[lo];
}

/** Compares what two pages showed at instants every `stepUs` where both logs cover. */
function compareLogs(a, b, col, stepUs) {
  const from = Math.max(a[0][col], b[0][col]);
  const to = Math.min(a[a.length - 1][col], b[b.length - 1][col]);
  let worst = 0;
  let count = 0;
  let firstFrame = null;
  let lastFrame = null;
  const bad = [];
  for (let t = from; t <= to; t += stepUs) {
    const fa = shownAt(a, t, col)[1];
    const fb = shownAt(b, t, col)[1];
    const diff = Math.abs(fa - fb);
    worst = Math.max(worst, diff);
    if (diff > 1 && bad.length < 5) bad.push({ t, fa, fb });
    firstFrame ??= fa;
    lastFrame = fa;
    count += 1;
  }
  return { worst, count, bad, advanced: lastFrame - firstFrame, spanUs: to - from };
}

test('a typed timecode seek shows the same frame everywhere, and pause lands on one frame', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host A');
  const viewer = await join(byRole.viewer.url, 'Viewer A');

  await host.fill('#tc-input', '01:00:10:05');
  await host.press('#tc-input', 'Enter');
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.displayed()?.frame === 245
      && document.getElementById('frame').textContent === '245'
      && document.getElementById('timecode').textContent === '01:00:10:05');
  }

  await host.keyboard.press('Space');
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.state().transport.playing && window.syncreel.displayed().frame > 260);
  }
  await host.keyboard.press('Space');

  const paused = await until(host, () => {
    const s = window.syncreel.state();
    return !s.transport.playing && s.pending === 0 && s.transportVersion;
  });
  await settledAt(viewer, paused);
  const [h, v] = [await displayed(host), await displayed(viewer)];
  assert.deepEqual(v, h);
  assert.ok(h.frame > 260, `paused at ${h.frame}`);
  for (const page of [host, viewer]) {
    assert.equal(await page.textContent('#frame'), String(h.frame));
    assert.equal(await page.textContent('#timecode'), h.timecode);
  }
  assertNoPageErrors(pages);
});

test('two pages display the same frame at the same instant while playing', async (t) => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host B');
  const viewer = await join(byRole.viewer.url, 'Viewer B');

  await host.keyboard.press('Space');
  const playing = await until(host, () => {
    const s = window.syncreel.state();
    return s.transport.playing && s.pending === 0 && s.transportVersion;
  });
  await settledAt(viewer, playing);
  // About two and a half seconds of play at 23.976.
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.displayed().frame >= 60, null, 15_000);
  }
  // Compared from half a second into play: a headless page's first
  // animation frames after the start can come late on a busy machine
  // (seen: one page still painting the paused frame 0 when the other
  // painted frame 2), which says nothing of the shared clock.
  const playingFrom = (log) => log.filter((r) => r[1] >= 12);
  const [a, b] = [playingFrom(await frameLog(host)), playingFrom(await frameLog(viewer))];

  // Sampled at the same instant of each page's own server clock...
  const byServer = compareLogs(a, b, 0, 5_000);
  // ...and at the same real instant, which also catches a wrong clock
  // offset (that would shift a page's frames and its timestamps together).
  const byWall = compareLogs(a, b, 2, 5_000);
  for (const [what, r] of [['server clock', byServer], ['wall clock', byWall]]) {
    t.diagnostic(`${what}: ${r.count} instants over ${(r.spanUs / 1e6).toFixed(2)} s, worst difference ${r.worst} frame(s)`);
    assert.ok(r.count >= 300, `${what}: only ${r.count} instants compared`);
    assert.ok(r.advanced >= 40, `${what}: frames only advanced by ${r.advanced}`);
    assert.ok(r.worst <= 1, `${what}: pages differed by ${r.worst} frames, e.g. ${JSON.stringify(r.bad)}`);
  }
  assertNoPageErrors(pages);
});

test('a viewer cannot drive; a reviewer drives once the host grants control', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host C');
  const reviewer = await join(byRole.reviewer.url, 'Reviewer C');
  const viewer = await join(byRole.viewer.url, 'Viewer C');

  for (const id of ['#play', '#step-fwd', '#home', '#loop-in', '#tc-input', '#scrubber']) {
    assert.ok(await viewer.isDisabled(id), `${id} should be disabled for a viewer`);
  }
  assert.ok(await viewer.isHidden('#request-control'));
  assert.ok(await viewer.isHidden('#take-control'));

  const before = await state(host);
  for (const key of ['Space', 'l', 'j', 'ArrowRight', 'Shift+ArrowLeft', 'End', 'i']) {
    await viewer.keyboard.press(key);
  }
  await viewer.waitForSelector('#toasts [data-code="not_driver"]');
  const sent = await viewer.evaluate(() => window.syncreel.sent());
  for (const type of ['play', 'pause', 'shuttle', 'step', 'seek', 'loopIn']) {
    assert.equal(sent[type], undefined, `the viewer sent ${type}`);
  }

  // A barrier: the host's own step is the next and only change to the room.
  await host.keyboard.press('ArrowRight');
  const after = await until(host, (v) => {
    const s = window.syncreel.state();
    return s.transportVersion > v && s.pending === 0 && s.transportVersion;
  }, before.version);
  assert.equal(after, before.version + 1);
  await settledAt(viewer, after);
  assert.equal((await displayed(viewer)).frame, 1);
  assert.equal((await state(viewer)).transport.playing, false);

  // The reviewer asks; the host sees the request and grants it.
  assert.ok(await reviewer.isDisabled('#play'));
  await reviewer.click('#request-control');
  const reviewerId = (await state(reviewer)).you;
  await host.click(`#grant-${reviewerId}`);
  for (const page of [host, reviewer, viewer]) {
    await until(page, (id) => window.syncreel.state().driver === id, reviewerId);
  }
  await until(reviewer, () => !document.getElementById('play').disabled);
  assert.ok(await reviewer.isVisible('#release-control'));
  assert.ok(await host.isVisible('#take-control'));
  assert.ok(await host.isDisabled('#play'));

  await reviewer.keyboard.press('Space');
  for (const page of [host, reviewer, viewer]) {
    await until(page, () => window.syncreel.state().transport.playing && window.syncreel.displayed().frame > 5);
  }
  assertNoPageErrors(pages);
});

test('typed server errors appear in the toast area; Go to refuses what it cannot place where it was typed', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host D');
  const before = await state(host);

  // Go to reads the field itself, so a bad label reaches the server only this way.
  await host.evaluate(() => window.syncreel.drive({ type: 'seek', timecode: '01:00:00:99' }));
  await host.waitForSelector('#toasts [data-code="bad_timecode"]');
  await host.fill('#tc-input', 'soon');
  await host.press('#tc-input', 'Enter');
  await host.waitForSelector('#tc-error', { state: 'visible' });
  assert.match(await host.textContent('#tc-error'), /not a time/);
  // The keyboard stays in the field, the bad value selected to be typed over.
  const field = await host.evaluate(() => {
    const input = document.getElementById('tc-input');
    return { focused: document.activeElement === input, start: input.selectionStart, end: input.selectionEnd, value: input.value };
  });
  assert.deepEqual(field, { focused: true, start: 0, end: 4, value: 'soon' });
  assert.equal(await host.getAttribute('#tc-input', 'aria-invalid'), 'true');
  assert.equal((await host.evaluate(() => window.syncreel.sent())).seek, 1, 'only the hook\'s seek was sent');
  assert.equal((await state(host)).version, before.version);
  assertNoPageErrors(pages);
});

test('a reload resumes the same identity and keeps the driver seat, without asking the name again', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host E');
  const first = await state(host);
  assert.equal(first.driver, first.you);

  await host.reload();
  // The name is remembered: no prompt, the page joins under it at once.
  await until(host, () => window.syncreel?.state().connection === 'live');
  assert.equal(await host.isHidden('#join-panel'), true);
  assert.equal(await host.evaluate(() => localStorage.getItem('syncreel.name')), 'Host E');
  assert.equal(await host.textContent('#you'), 'Host E');
  const again = await state(host);
  assert.equal(again.you, first.you);
  assert.equal(again.driver, first.you);

  // The name can still be changed: the page joins again under the new one.
  await host.click('#you');
  assert.equal(await host.inputValue('#name'), 'Host E');
  await host.fill('#name', 'Host E (grade)');
  await host.click('#join');
  await until(host, () => {
    const s = window.syncreel?.state();
    return s?.connection === 'live' && s.participants.find((p) => p.id === s.you)?.name === 'Host E (grade)';
  });
  assert.equal(await host.textContent('#you'), 'Host E (grade)');
  assert.equal(await host.isHidden('#join-panel'), true);
  assertNoPageErrors(pages);
});

test('a cut connection reconnects with backoff, resumes, and keeps the seat; the picture never stops', async () => {
  const { byRole } = await createSession(server.base);
  const relay = await startRelay(server.base);
  try {
    const host = await join(byRole.host.url.replace(server.base, relay.base), 'Host F');
    const viewer = await join(byRole.viewer.url, 'Viewer F');
    const first = await state(host);

    await host.keyboard.press('Space');
    await until(host, () => window.syncreel.state().transport.playing);
    relay.refusing = true;
    relay.cut();
    await until(host, () => window.syncreel.state().connection === 'reconnecting');
    const cutAt = (await displayed(host)).frame;
    // Refused attempts, spaced by the backoff, while the display plays on.
    await waitFor('two refused reconnects', () => relay.refused >= 2);
    await until(host, (f) => window.syncreel.displayed().frame > f + 10, cutAt);
    assert.equal((await state(host)).connection, 'reconnecting');

    relay.refusing = false;
    await until(host, () => window.syncreel.state().connection === 'live', null, 15_000);
    const again = await state(host);
    assert.equal(again.you, first.you);
    assert.equal(again.driver, first.you);
    assert.ok(again.transport.playing);

    await host.keyboard.press('Space');
    const paused = await until(host, () => {
      const s = window.syncreel.state();
      return !s.transport.playing && s.pending === 0 && s.transportVersion;
    });
    await settledAt(viewer, paused);
    assert.deepEqual(await displayed(viewer), await displayed(host));
    // Chromium logs each refused attempt; that is the point of this test.
    assertNoPageErrors(pages, [/WebSocket connection to .* failed/]);
  } finally {
    await relay.stop();
  }
});

test('a refused or revoked link ends in a clear error, not a reconnect loop', async () => {
  const { byRole, session } = await createSession(server.base);
  const viewer = await join(byRole.viewer.url, 'Viewer G');

  const res = await fetch(`${server.base}/api/sessions/${session.id}/links/${byRole.viewer.id}`, {
    method: 'DELETE',
    headers: { authorization: `Bearer ${byRole.host.token}` },
  });
  assert.equal(res.status, 204);
  await until(viewer, () => window.syncreel.state().connection === 'error');
  assert.ok(await viewer.isVisible('#fatal'));
  assert.match(await viewer.textContent('#fatal-message'), /revoked/);
  await viewer.waitForSelector('#toasts [data-code="link_revoked"]');

  // A token the server never issued is refused at the hello.
  const context = await browser.newContext();
  const stranger = await context.newPage();
  try {
    await stranger.goto(`${server.base}/s/${session.id}#token=not-a-real-token`);
    await stranger.fill('#name', 'Stranger');
    await stranger.click('#join');
    await until(stranger, () => window.syncreel.state().connection === 'error');
    assert.match(await stranger.textContent('#fatal-message'), /not valid/);
    assert.equal((await stranger.evaluate(() => window.syncreel.sent())).hello, 1);
  } finally {
    await context.close();
  }
  assertNoPageErrors(pages);
});

/** The notes list as the page draws it: [timecode, author line, text] per stored row. */
const noteRows = (page) => page.$$eval('#notes li[data-id]', (rows) => rows.map((r) => [
  r.querySelector('.note-tc').textContent, r.querySelector('.note-author').textContent, r.querySelector('.note-text').textContent,
]));


test('a reviewer pins a note to the shown frame; everyone sees it; the driver clicks it to take the room back, others to look on their own', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host N');
  const reviewer = await join(byRole.reviewer.url, 'Reviewer N');
  const viewer = await join(byRole.viewer.url, 'Viewer N');

  assert.ok(await host.isVisible('#note-input'));
  assert.ok(await reviewer.isVisible('#note-input'));
  assert.ok(await viewer.isHidden('#note-input'));
  assert.ok(await viewer.isHidden('#note-add'));

  await seekTo(host, '01:00:10:05', 245, [host, reviewer, viewer]);
  await reviewer.fill('#note-input', '  Sky is too warm');
  // Typing into the box is not driving: space and "l" stay in the text
  // (were they shortcuts, the reviewer would be told it cannot drive).
  await reviewer.press('#note-input', 'Space');
  await reviewer.press('#note-input', 'l');
  await reviewer.press('#note-input', 'Enter');

  for (const page of [host, reviewer, viewer]) {
    const notes = await until(page, () => {
      const n = window.syncreel.notes();
      return n.length === 1 && n;
    });
    assert.equal(notes[0].frame, 245);
    assert.equal(notes[0].text, 'Sky is too warm l');
    assert.equal(notes[0].author, 'Reviewer N');
    assert.equal(notes[0].authorRole, 'reviewer');
    await until(page, () => document.querySelectorAll('#notes li[data-id]').length === 1);
    assert.deepEqual(await noteRows(page), [['01:00:10:05', 'Reviewer N · reviewer', 'Sky is too warm l']]);
    assert.equal(await page.$$eval('#note-marks .note-mark', (m) => m.length), 1);
  }
  await until(reviewer, () => window.syncreel.outbox().length === 0);
  assert.equal(await reviewer.inputValue('#note-input'), '');
  // The room did not move while the reviewer typed.
  assert.equal((await displayed(host)).frame, 245);
  assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).note, 1);
  assert.equal(await reviewer.$('#toasts [data-code="not_driver"]'), null);

  await seekTo(host, '01:00:20:00', 480, [host, reviewer, viewer]);
  // Someone not driving goes to the note on their own: the room stays put.
  await reviewer.click('#notes li[data-id]');
  await reviewer.waitForSelector('#notes li.selected');
  await until(reviewer, () => window.syncreel.state().peek?.frame === 245);
  assert.match(await reviewer.textContent('#peek-label'), /01:00:10:05/);
  assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).seek, undefined);
  assert.equal((await displayed(host)).frame, 480);
  await reviewer.click('#peek-back');
  await until(reviewer, () => window.syncreel.state().peek === null);
  assert.ok(await reviewer.isHidden('#peek-bar'));

  const before = (await state(host)).version;
  await host.click('#notes li[data-id]');
  const v = await until(host, (was) => {
    const s = window.syncreel.state();
    return s.transportVersion > was && s.pending === 0 && window.syncreel.displayed()?.frame === 245 && s.transportVersion;
  }, before);
  for (const page of [reviewer, viewer]) {
    await settledAt(page, v);
    await until(page, () => window.syncreel.displayed()?.frame === 245);
    assert.equal(await page.textContent('#timecode'), '01:00:10:05');
  }

  // The tick on the scrubber does the same.
  await seekTo(host, '01:00:20:00', 480, [host, reviewer]);
  await host.click('#note-marks .note-mark');
  await until(reviewer, () => window.syncreel.displayed()?.frame === 245);
  assertNoPageErrors(pages);
});

test('a note written while disconnected is queued and delivered once after the reconnect', async () => {
  const { byRole } = await createSession(server.base);
  const relay = await startRelay(server.base);
  try {
    const host = await join(byRole.host.url, 'Host O');
    const reviewer = await join(byRole.reviewer.url.replace(server.base, relay.base), 'Reviewer O');
    await seekTo(host, '01:00:01:00', 24, [host, reviewer]);

    relay.refusing = true;
    relay.cut();
    await until(reviewer, () => window.syncreel.state().connection === 'reconnecting');
    await reviewer.fill('#note-input', 'Written offline');
    await reviewer.press('#note-input', 'Enter');
    const keys = await until(reviewer, () => window.syncreel.outbox().length === 1 && window.syncreel.outbox());
    await reviewer.waitForSelector(`#notes li.pending[data-key="${keys[0]}"]`);
    assert.deepEqual(await reviewer.evaluate(() => window.syncreel.notes()), []);
    assert.equal((await reviewer.evaluate(() => window.syncreel.sent())).note, undefined);

    relay.refusing = false;
    await until(reviewer, () => window.syncreel.state().connection === 'live', null, 15_000);
    for (const page of [host, reviewer]) {
      const notes = await until(page, () => {
        const n = window.syncreel.notes();
        return n.length === 1 && n;
      });
      assert.equal(notes[0].key, keys[0]);
      assert.equal(notes[0].frame, 24);
      assert.equal(notes[0].text, 'Written offline');
    }
    await until(reviewer, () => window.syncreel.outbox().length === 0 && !document.querySelector('#notes li.pending'));

    // Exactly once: a later note is the second, not the third.
    await host.fill('#note-input', 'After');
    await host.press('#note-input', 'Enter');
    await until(reviewer, () => window.syncreel.notes().length === 2);
    assert.deepEqual((await reviewer.evaluate(() => window.syncreel.notes())).map((n) => n.text), ['Written offline', 'After']);
    assertNoPageErrors(pages, [/WebSocket connection to .* failed/]);
  } finally {
    await relay.stop();
  }
});
