// Interop: tus-js-client (the reference tus client, in Node) uploads to the
// real server binary through a relay that cuts the connection mid-chunk,
// and resumes; and a new client given only the upload's URL (a page that
// reloaded) resumes from where the first stopped. The stored version is
// the file, byte for byte.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import * as tus from 'tus-js-client';

import {
  OPERATOR_AUTH, WAIT_MS, paddedClip as clipIn, startRelay, startServer, waitFor,
} from './support/harness.mjs';

const MB = 1 << 20;
let server;
let relay;
let scratch;

before(async () => {
  server = await startServer({ env: { SYNCREEL_UPLOADS__RESERVE_FREE_BYTES: '0' } });
  relay = await startRelay(server.base);
  scratch = mkdtempSync(join(tmpdir(), 'syncreel-tus-'));
});

after(async () => {
  await relay?.stop();
  await server?.stop();
  if (scratch) rmSync(scratch, { recursive: true, force: true });
});

const paddedClip = (name, size) => clipIn(scratch, name, size);

function sha256(bytes) {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Runs a tus-js-client upload to its end (or abort); resolves with it. */
function upload(bytes, options) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('upload did not finish in time')), 4 * WAIT_MS);
    const u = new tus.Upload(bytes, {
      chunkSize: MB,
      retryDelays: [0, 100, 200, 500, 1000],
      headers: OPERATOR_AUTH,
      ...options,
      onSuccess: () => {
        clearTimeout(timer);
        resolve(u);
      },
      onError: (err) => {
        clearTimeout(timer);
        reject(err);
      },
    });
    options.onCreated?.(u, () => {
      clearTimeout(timer);
      resolve(u);
    });
    u.start();
  });
}

async function uploadStatus(url) {
  const res = await fetch(url, { headers: OPERATOR_AUTH });
  assert.equal(res.status, 200);
  return res.json();
}

test('tus-js-client uploads through a connection cut mid-chunk and resumes from the server offset', async () => {
  const bytes = paddedClip('cut', 12 * MB);
  const heads = [];
  let cut = false;
  const done = await upload(bytes, {
    endpoint: `${relay.base}/api/uploads`,
    metadata: { filename: 'Shot 050.mov', item: 'Shot 050' },
    onProgress: (sent) => {
      if (!cut && sent >= 4 * MB + MB / 2) {
        cut = true;
        relay.cut();
      }
    },
    onAfterResponse: (req, res) => {
      if (req.getMethod() === 'HEAD') heads.push(Number(res.getHeader('Upload-Offset')));
    },
  });
  assert.ok(cut, 'the connection was cut mid-upload');
  assert.ok(heads.length >= 1, 'the client asked the server where to resume');
  assert.ok(heads[0] >= 4 * MB && heads[0] < 12 * MB, `resumed from ${heads[0]}, not from zero`);
  const status = await uploadStatus(done.url);
  assert.equal(status.state, 'done');
  assert.equal(status.version.item, 'Shot 050');
  assert.equal(status.version.number, 1);
  assert.equal(status.version.checksum, sha256(bytes));
});

test('a new client given the upload URL (a reloaded page) resumes where the first stopped', async () => {
  const bytes = paddedClip('reload', 8 * MB);
  let url = null;
  await upload(bytes, {
    endpoint: `${server.base}/api/uploads`,
    metadata: { filename: 'Shot 050 v2.mov', item: 'Shot 050' },
    onCreated: (u, stopped) => {
      u.options.onProgress = (sent) => {
        if (sent >= 3 * MB && !url) {
          url = u.url;
          u.abort().then(stopped);
        }
      };
    },
  });
  await waitFor('the first client to stop', () => url !== null);
  const head = await fetch(url, { method: 'HEAD', headers: { ...OPERATOR_AUTH, 'tus-resumable': '1.0.0' } });
  const offset = Number(head.headers.get('upload-offset'));
  assert.ok(offset >= 2 * MB && offset < 8 * MB, `the server kept ${offset} bytes`);
  let firstPatchAt = null;
  await upload(bytes, {
    uploadUrl: url,
    metadata: { filename: 'Shot 050 v2.mov', item: 'Shot 050' },
    onBeforeRequest: (req) => {
      if (req.getMethod() === 'PATCH' && firstPatchAt === null) firstPatchAt = Number(req.getHeader('Upload-Offset'));
    },
  });
  assert.equal(firstPatchAt, offset, 'the second client went on from the server offset');
  const status = await uploadStatus(url);
  assert.equal(status.version.number, 2, 'the next version of the item');
  assert.equal(status.version.checksum, sha256(bytes));
});
