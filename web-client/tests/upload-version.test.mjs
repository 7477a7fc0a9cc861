// A version sent into a running review: while the room stands on
// 01:00:00:20 of "demo" v1 (the demo clip as a session made from it
// names it), the host uploads v2 (a clip rendered by
// `syncreel clip`, the same start timecode, frame codes from 30,000).
// The room's playlist grows on every page without the room moving; the
// host's "Show it in the room" cues v2 at the same timecode, and every
// page shows v2's picture of that timecode.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  SERVER_BIN, VIDEO_WAIT_MS, assertNoPageErrors, createMediaSession, joinAs, launchBrowser, pictureShows, seekTo,
  startDemoServer, until,
} from './support/harness.mjs';

let server;
let browser;
let scratch;

before(async () => {
  server = await startDemoServer({ env: { SYNCREEL_UPLOADS__RESERVE_FREE_BYTES: '0' } });
  browser = await launchBrowser();
  scratch = mkdtempSync(join(tmpdir(), 'syncreel-upload-version-'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

test('an uploaded version joins the room and the driver shows it at the same timecode', async () => {
  const session = await createMediaSession(server.base, 'Version up');
  const host = await joinAs(browser, session.byRole.host.url, 'Dana');
  const viewer = await joinAs(browser, session.byRole.viewer.url, 'Vic');
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  }
  assert.match(await host.textContent('#version'), /demo v1/);
  assert.equal(await host.isVisible('#playlist-panel'), false, 'one file: no playlist yet');
  await seekTo(host, '01:00:00:20', 20, [viewer]);

  const v2 = join(scratch, 'demo v2.mov');
  const made = spawnSync(SERVER_BIN, ['clip', v2, '--frames', '48', '--code-offset', '30000'], { encoding: 'utf8' });
  assert.equal(made.status, 0, `syncreel clip renders v2: ${made.stderr}`);
  await host.fill('#upload-item', 'demo');
  await host.setInputFiles('#upload-input', v2);
  await until(host, () => document.getElementById('upload-status').dataset.state === 'done', null, 30_000);
  assert.match(await host.textContent('#upload-status'), /^demo v2 is in/);

  // Every page has the new playlist; nobody was moved.
  for (const page of [host, viewer]) {
    await until(page, () => document.querySelectorAll('#playlist li').length === 2);
    assert.equal(await page.evaluate(() => window.syncreel.state().entry), 0);
    assert.equal(await page.textContent('#timecode'), '01:00:00:20');
  }
  assert.equal(await viewer.isVisible('#upload-show'), false, 'only the driver is offered it');
  await host.waitForSelector('#upload-show:not([hidden])');
  assert.equal(await host.textContent('#upload-show'), 'Show demo v2 in the room');

  await host.click('#upload-show');
  for (const page of [host, viewer]) {
    await until(page, () => window.syncreel.state().entry === 1, null, VIDEO_WAIT_MS);
    assert.match(await page.textContent('#version'), /demo v2/);
    await until(page, () => document.getElementById('timecode').textContent === '01:00:00:20');
    await pictureShows(page, 30_020);
  }
  assert.equal(await host.isVisible('#upload-show'), false, 'on screen: nothing left to offer');
  assertNoPageErrors([host, viewer]);
});
