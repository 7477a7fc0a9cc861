// A link with a passcode, in real Chromium against the real server: the
// page asks for it, says when it is wrong or locked, joins with the right
// one, carries it on its REST calls, and does not ask again on a reload.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import {
  WAIT_MS, assertNoPageErrors, createSession, launchBrowser, startServer, state, until,
} from './support/harness.mjs';

const PASSCODE = 'open sesame';

let server;
let browser;
const contexts = [];

before(async () => {
  // Two wrong ones lock a link (per address) for a minute.
  server = await startServer({ env: { SYNCREEL_LINKS__PASSCODE_ATTEMPTS: '2' } });
  browser = await launchBrowser();
});

afterEach(async () => {
  for (const context of contexts.splice(0)) await context.close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens `url` in a context of its own and gives a name; the page then asks for the passcode. */
async function openAsking(url, name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  contexts.push(context);
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console: ${msg.text()}`);
  });
  page.problems = problems;
  await page.goto(url);
  await page.fill('#name', name);
  await page.click('#join');
  await page.waitForSelector('#passcode-panel', { state: 'visible', timeout: WAIT_MS });
  return page;
}

async function submitPasscode(page, passcode) {
  await page.fill('#passcode', passcode);
  await page.click('#passcode-join');
}

/** The prompt is back, saying `pattern`. */
async function refusedWith(page, pattern) {
  await page.waitForSelector('#passcode-error', { state: 'visible', timeout: WAIT_MS });
  await page.waitForSelector('#passcode-panel', { state: 'visible', timeout: WAIT_MS });
  assert.match(await page.textContent('#passcode-error'), pattern);
  assert.equal(await page.getAttribute('#passcode', 'aria-invalid'), 'true');
  assert.equal(await page.inputValue('#passcode'), '', 'the refused passcode is cleared');
}

async function live(page) {
  await until(page, () => window.syncreel.state().connection === 'live');
  await page.waitForSelector('#passcode-panel', { state: 'hidden', timeout: WAIT_MS });
}

test('a passcode link asks for it, refuses a wrong one and joins with the right one', async () => {
  const { byRole } = await createSession(server.base, { passcode: PASSCODE });
  assert.equal(byRole.host.hasPasscode, true);

  const host = await openAsking(byRole.host.url, 'Host P');
  // The first time it only asks: no error yet, nothing joined.
  assert.equal(await host.isVisible('#passcode-error'), false);
  assert.equal(await host.isVisible('#app'), false);
  assert.equal((await state(host)).connection, 'passcode');
  assert.equal(await host.evaluate(() => document.activeElement?.id), 'passcode');
  assert.equal(await host.getAttribute('#passcode', 'type'), 'password');

  await submitPasscode(host, 'open sesame?');
  await refusedWith(host, /not right/);

  await submitPasscode(host, PASSCODE);
  await live(host);
  const joined = await state(host);
  assert.equal(joined.role, 'host');
  assert.equal(joined.session.title, 'Browser test');
  assert.equal(await host.isVisible('#app'), true);

  // The page's own REST calls carry it: an export downloads, and ending
  // the review reaches everyone.
  const [download] = await Promise.all([
    host.waitForEvent('download'),
    host.click('#exports button[data-format="csv"]'),
  ]);
  assert.match(download.suggestedFilename(), /\.csv$/);
  await host.click('#end-review');
  await host.click('#end-review');
  await until(host, () => window.syncreel.state().endedAt != null);

  // Reloaded, the tab joins again (a room of its own now, which needs the
  // passcode: the resume was dropped when the review ended) without asking
  // for the passcode, nor for the name, which the browser remembers.
  await host.reload();
  await until(host, () => window.syncreel.state().connection === 'live' && window.syncreel.state().room === 'personal');
  assert.equal(await host.isVisible('#passcode-panel'), false);
  assertNoPageErrors([host], [/401|429/]);
});

test('after too many wrong passcodes the page says how long the link is locked', async () => {
  const { byRole } = await createSession(server.base, { passcode: PASSCODE });
  const reviewer = await openAsking(byRole.reviewer.url, 'Rev P');
  for (const guess of ['guess one', 'guess two']) {
    await submitPasscode(reviewer, guess);
    await refusedWith(reviewer, /not right/);
  }
  // Locked: the right one is refused too, with the time to wait.
  await submitPasscode(reviewer, PASSCODE);
  await refusedWith(reviewer, /Too many wrong passcodes for this link\. Try again in \d+ s\./);
  const seconds = Number((await reviewer.textContent('#passcode-error')).match(/in (\d+) s/)[1]);
  assert.ok(seconds >= 1 && seconds <= 60, `${seconds} s`);
  assert.notEqual((await state(reviewer)).connection, 'live');

  // Another link of the session is not locked by this one's guesses.
  const viewer = await openAsking(byRole.viewer.url, 'View P');
  await submitPasscode(viewer, PASSCODE);
  await live(viewer);
  assert.equal((await state(viewer)).role, 'viewer');
  assertNoPageErrors([reviewer, viewer]);
});
