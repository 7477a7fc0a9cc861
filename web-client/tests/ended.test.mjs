// After the live review, in real Chromium: once the host ends it, a page
// that reloads lands in a room of its own, drives its own playback, and
// moves nobody else.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoPageErrors, createSession, joinAs, launchBrowser, seekTo, startServer, until,
} from './support/harness.mjs';

let server;
let browser;
const pages = [];

before(async () => {
  server = await startServer();
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

const displayedFrame = (page) => page.evaluate(() => window.syncreel.displayed()?.frame);

test('after the host ends the review, a reloaded page reviews on its own and moves nobody else', async () => {
  const created = await createSession(server.base);
  const { byRole } = created;
  const host = await join(byRole.host.url, 'Host');
  const viewer = await join(byRole.viewer.url, 'Vic');
  assert.equal((await viewer.evaluate(() => window.syncreel.state())).room, 'shared');
  await seekTo(host, '01:00:10:00', 240, [viewer]);

  const res = await fetch(`${server.base}/api/sessions/${created.session.id}/end`, {
    method: 'POST',
    headers: { authorization: `Bearer ${byRole.host.token}` },
  });
  assert.equal(res.status, 200, await res.text());
  // The page lets go of its place in the shared room: a reload joins afresh.
  await until(viewer, () => !Object.keys(sessionStorage).some((k) => k.startsWith('syncreel.resume.')));

  // The page remembers the name, so the reload joins without asking.
  await viewer.reload();
  const mine = await until(viewer, () => {
    const s = window.syncreel.state();
    return s.connection === 'live' && s.room === 'personal' && s.driver === s.you && s;
  });
  assert.equal(mine.role, 'viewer', 'still a viewer, yet driving their own room');
  await until(viewer, () => window.syncreel.displayed()?.frame === 240);

  // A viewer drives here; the host's room stays where it was.
  await seekTo(viewer, '01:00:20:00', 480, []);
  assert.equal(await displayedFrame(host), 240);
  const hostState = await host.evaluate(() => window.syncreel.state());
  assert.equal(hostState.room, 'shared');
  assert.equal(hostState.transport.anchorFrame, 240);
  assertNoPageErrors(pages);
});

test('the host exports the record and ends the review from the page; everyone sees a banner that stays', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host E2');
  const reviewer = await join(byRole.reviewer.url, 'Rev E2');
  // Only a host keeps the record.
  assert.equal(await host.isVisible('#record-panel'), true);
  assert.equal(await reviewer.isVisible('#record-panel'), false);
  assert.equal(await host.isVisible('#ended-banner'), false);

  await seekTo(host, '01:00:10:05', 245, [reviewer]);
  await reviewer.fill('#note-input', 'Grade the sky down');
  await reviewer.press('#note-input', 'Enter');
  await until(host, () => window.syncreel.notes().length === 1);

  // Each export is a file download of the record, made with the page's own link.
  for (const [format, check] of [
    ['json', (text) => assert.equal(JSON.parse(text).notes[0].text, 'Grade the sky down')],
    ['edl', (text) => assert.match(text, /Grade the sky down/)],
  ]) {
    const [download] = await Promise.all([host.waitForEvent('download'), host.click(`#exports button[data-format="${format}"]`)]);
    assert.match(download.suggestedFilename(), new RegExp(`\\.${format}$`));
    const chunks = [];
    for await (const chunk of await download.createReadStream()) chunks.push(chunk);
    check(Buffer.concat(chunks).toString('utf8'));
  }
  assert.match(await host.textContent('#record-status'), /^Saved /);

  // One click only arms the button; nobody is sent away by a slip.
  await host.click('#end-review');
  assert.equal(await host.getAttribute('#end-review', 'data-armed'), 'true');
  assert.equal(await reviewer.evaluate(() => window.syncreel.state().endedAt), null);
  await host.click('#end-review');
  for (const page of [host, reviewer]) {
    await until(page, () => window.syncreel.state().endedAt != null);
    await page.waitForSelector('#ended-banner', { state: 'visible' });
    assert.match(await page.textContent('#ended-banner'), /The live review ended at .*Reload to carry on/);
  }
  assert.equal(await host.isVisible('#end-review'), false);

  // Reloaded, the reviewer is in a room of their own, and the banner says so.
  await reviewer.reload();
  await until(reviewer, () => window.syncreel.state().room === 'personal' && window.syncreel.state().endedAt != null);
  assert.match(await reviewer.textContent('#ended-banner'), /You are reviewing on your own/);
  assert.equal((await reviewer.evaluate(() => window.syncreel.notes())).length, 1);
  assertNoPageErrors(pages);
});
