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

  await viewer.reload();
  await viewer.fill('#name', 'Vic');
  await viewer.click('#join');
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
