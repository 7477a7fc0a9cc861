// The review's workflow in real Chromium (issue #13): the host hears and
// sees a control request, the reviewer can take it back, and a room of
// one after the live review shows only what makes sense for one person.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoPageErrors, createSession, joinAs, launchBrowser, startServer, state, until,
} from './support/harness.mjs';

let server;
let browser;
const pages = [];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  assertNoPageErrors(pages);
  await browser?.close();
  await server?.stop();
});

async function join(url, name, options) {
  const page = await joinAs(browser, url, name, options);
  pages.push(page);
  return page;
}

// Counts the tones the page makes, and lets the test say whether the tab
// is in the background.
function spyOnTonesAndVisibility() {
  window.tones = 0;
  window.tabHidden = false;
  Object.defineProperty(Document.prototype, 'hidden', { configurable: true, get: () => window.tabHidden });
  const Real = window.AudioContext;
  window.AudioContext = class extends Real {
    createOscillator() {
      window.tones += 1;
      return super.createOscillator();
    }
  };
}

test('the host hears and sees a request; the reviewer withdraws it and the host\'s list empties', async () => {
  const { byRole } = await createSession(server.base);
  const host = await join(byRole.host.url, 'Host W', { init: spyOnTonesAndVisibility });
  const reviewer = await join(byRole.reviewer.url, 'Sam');
  const title = await host.title();
  // The host has clicked in the page, as a host has by the time anyone asks.
  await host.click('#control-status');
  await host.evaluate(() => {
    window.tabHidden = true;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  assert.equal(await host.evaluate(() => window.tones), 0);
  assert.ok(await reviewer.isHidden('#withdraw-control'));

  await reviewer.click('#request-control');
  const samId = (await state(reviewer)).you;
  await host.waitForSelector('#request-alert.request-flash');
  // Named as soon as the room's presence has them (it may follow the request).
  await until(host, () => /Sam asks for control/.test(document.getElementById('request-alert').textContent));
  assert.ok(await host.isVisible(`#request-alert button[data-answer="grantControl"][data-id="${samId}"]`));
  assert.ok(await host.isVisible(`#request-alert button[data-answer="denyControl"][data-id="${samId}"]`));
  assert.ok(await host.isVisible(`#grant-${samId}`));
  await until(host, () => window.tones >= 1);
  await until(host, (want) => document.title === want, `✋ Sam asks for control — ${title}`);

  // Sam sees the request pending and takes it back.
  await reviewer.waitForSelector('#withdraw-control', { state: 'visible' });
  assert.ok(await reviewer.isHidden('#request-control'));
  await reviewer.click('#withdraw-control');
  await until(host, () => window.syncreel.state().requests.length === 0);
  await host.waitForSelector('#request-alert', { state: 'detached' });
  assert.equal(await host.$$eval('#requests li', (rows) => rows.length), 0);
  assert.equal(await host.title(), title);
  await reviewer.waitForSelector('#request-control', { state: 'visible' });
  assert.ok(await reviewer.isHidden('#withdraw-control'));
  assert.equal(await host.evaluate(() => window.tones), 1, 'a withdrawal makes no sound');

  // Asked again, the host grants from the card itself; back in front,
  // the title is the session's again.
  await reviewer.click('#request-control');
  await host.waitForSelector(`#request-alert button[data-answer="grantControl"][data-id="${samId}"]`);
  await until(host, () => window.tones >= 2);
  await host.evaluate(() => {
    window.tabHidden = false;
    document.dispatchEvent(new Event('visibilitychange'));
  });
  assert.equal(await host.title(), title);
  await host.click(`#request-alert button[data-answer="grantControl"][data-id="${samId}"]`);
  await until(reviewer, (id) => window.syncreel.state().driver === id, samId);
  await host.waitForSelector('#request-alert', { state: 'detached' });
});

test('a room of one offers no seat to hand over, no room list and no request; the banner words it by role', async () => {
  const created = await createSession(server.base);
  const { byRole } = created;
  const res = await fetch(`${server.base}/api/sessions/${created.session.id}/end`, {
    method: 'POST',
    headers: { authorization: `Bearer ${byRole.host.token}` },
  });
  assert.equal(res.status, 200, await res.text());

  const reviewer = await join(byRole.reviewer.url, 'Rae');
  const viewer = await join(byRole.viewer.url, 'Vic');
  for (const page of [reviewer, viewer]) {
    const s = await until(page, () => {
      const now = window.syncreel.state();
      return now.room === 'personal' && now.driver === now.you && now;
    });
    assert.equal(s.room, 'personal');
    await page.waitForSelector('#ended-banner', { state: 'visible' });
    for (const id of ['#release-control', '#request-control', '#take-control', '#withdraw-control', '#presence-panel']) {
      assert.ok(await page.isHidden(id), `${id} is shown in a room of one`);
    }
    // Driving is theirs all the same.
    assert.ok(!(await page.isDisabled('#play')));
  }
  assert.match(await reviewer.textContent('#ended-banner'), /your notes, drawings and approvals still reach the record/);
  const told = await viewer.textContent('#ended-banner');
  assert.doesNotMatch(told, /reach the record/);
  assert.match(told, /moves nobody else/);
  // Which is so: a viewer has no note box to add with.
  assert.ok(await viewer.isHidden('#note-form'));
  assert.ok(await reviewer.isVisible('#note-form'));
});
