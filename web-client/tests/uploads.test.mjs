// The host page sends media: a file dropped on the upload panel shows its
// progress, pauses, and after a reload (the network dropped, the tab was
// closed) dropping the same file again goes on from where the server
// stopped; the server records it as the item's next version. A file the
// server cannot decode gets a refusal that says so.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  OPERATOR_AUTH, SERVER_BIN, assertNoPageErrors, createSession, joinAs, launchBrowser, paddedClip, startServer, until,
  waitFor,
} from './support/harness.mjs';

const MB = 1 << 20;
const LAST_MODIFIED = 1_790_000_000_000;
let server;
let browser;
let scratch;

before(async () => {
  server = await startServer({ env: { SYNCREEL_UPLOADS__RESERVE_FREE_BYTES: '0' } });
  browser = await launchBrowser();
  scratch = mkdtempSync(join(tmpdir(), 'syncreel-upload-page-'));
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

/** Drops a file (these bytes, this name) on the page's upload panel, as a drag from the desktop does. */
async function dropFile(page, name, bytes) {
  await page.evaluate(({ name, b64, lastModified }) => {
    const raw = atob(b64);
    const data = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) data[i] = raw.charCodeAt(i);
    const transfer = new DataTransfer();
    transfer.items.add(new File([data], name, { type: 'video/quicktime', lastModified }));
    const zone = document.getElementById('upload-drop');
    zone.dispatchEvent(new DragEvent('dragover', { dataTransfer: transfer, bubbles: true, cancelable: true }));
    zone.dispatchEvent(new DragEvent('drop', { dataTransfer: transfer, bubbles: true, cancelable: true }));
  }, { name, b64: bytes.toString('base64'), lastModified: LAST_MODIFIED });
}

const uploadState = (page) => page.getAttribute('#upload-status', 'data-state');

test('a dropped file shows progress, pauses, survives a reload and resumes into the next version', async () => {
  const session = await createSession(server.base);
  const host = await joinAs(browser, session.byRole.host.url, 'Dana');
  assert.equal(await host.isVisible('#upload-panel'), true, 'hosts see the upload panel');
  await host.fill('#upload-item', 'Shot 060');
  const bytes = paddedClip(scratch, 'shot060', 12 * MB);

  // The second chunk is held on the way until the host has paused.
  let patches = 0;
  let release;
  const held = new Promise((r) => { release = r; });
  await host.route('**/api/uploads/*', async (route) => {
    if (route.request().method() === 'PATCH') {
      patches += 1;
      if (patches === 2) await held;
    }
    await route.continue().catch(() => {});
  });
  await dropFile(host, 'Shot 060.mov', bytes);
  await waitFor('the second chunk to be on its way', () => patches === 2);
  const midway = await host.textContent('#upload-status');
  assert.match(midway, /Shot 060\.mov: \d+\.\d of 12\.6 MB/, midway);
  assert.ok(await host.getAttribute('#upload-progress', 'value') > 0, 'the bar moved');
  await host.click('#upload-pause');
  await until(host, () => document.getElementById('upload-status').dataset.state === 'paused');
  assert.equal(await host.textContent('#upload-pause'), 'Resume');
  release();
  await host.unroute('**/api/uploads/*');

  await host.reload();
  await until(host, () => window.syncreel?.state().connection === 'live');
  await host.fill('#upload-item', 'Shot 060');
  const offsets = [];
  host.on('request', (req) => {
    if (req.method() === 'PATCH') offsets.push(Number(req.headers()['upload-offset']));
  });
  await dropFile(host, 'Shot 060.mov', bytes);
  await until(host, () => document.getElementById('upload-status').dataset.state === 'done');
  assert.equal(offsets[0], 8 * MB, 'the page went on from the server offset, not from zero');
  const done = await host.textContent('#upload-status');
  assert.match(done, /^Shot 060 v1 is in: uploads\/Shot_060-[0-9a-f]{16}\.mov$/, done);

  const listed = await (await fetch(`${server.base}/api/media`, { headers: OPERATOR_AUTH })).json();
  const item = listed.items.find((i) => i.name === 'Shot 060');
  assert.equal(item.versions.length, 1);
  assert.equal(item.versions[0].checksum, createHash('sha256').update(bytes).digest('hex'));
  assertNoPageErrors([host]);
});

test('a file the server cannot decode is refused with a message that says so', async () => {
  const session = await createSession(server.base);
  const host = await joinAs(browser, session.byRole.host.url, 'Dana');
  await dropFile(host, 'notes.mov', Buffer.alloc(64 * 1024, 0x5a));
  await until(host, () => document.getElementById('upload-status').dataset.state === 'failed');
  const toast = await host.waitForSelector('.toast[data-code="not_media"]');
  assert.match(await toast.textContent(), /cannot decode that file/);
  assert.equal(await uploadState(host), 'failed');
  // A reviewer's page has no upload panel (and the server would refuse).
  const reviewer = await joinAs(browser, session.byRole.reviewer.url, 'Ravi');
  assert.equal(await reviewer.isVisible('#upload-panel'), false);
});

test('a ProRes file gets a review proxy, and the panel follows it until it is ready', async () => {
  const session = await createSession(server.base);
  const host = await joinAs(browser, session.byRole.host.url, 'Dana');
  const file = join(scratch, 'Shot 070.mov');
  const made = spawnSync(SERVER_BIN, ['clip', file, '--prores', '--frames', '24', '--width', '960', '--height', '540'], {
    encoding: 'utf8',
  });
  assert.equal(made.status, 0, `syncreel clip renders ProRes: ${made.stderr}`);
  await host.setInputFiles('#upload-input', file);
  await until(host, () => document.getElementById('upload-status').dataset.state === 'done', null, 30_000);
  await until(host, () => document.getElementById('upload-proxy').dataset.state === 'ready', null, 60_000);
  assert.equal(await host.textContent('#upload-proxy'), 'Review proxy ready: the room plays it');
  assertNoPageErrors([host]);
});
