// The upload panel's pure parts: tus metadata, the progress line, and the
// key a file's upload is remembered under across reloads.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  metadataHeader, progressText, proxyText, uploadKey,
} from '../uploads.js';

test('metadata values are UTF-8 in base64 and empty ones are left out', () => {
  const header = metadataHeader({ filename: 'Été 010.mov', item: 'Shot 010', session: null, sha256: '' });
  const pairs = Object.fromEntries(header.split(',').map((p) => p.split(' ')));
  assert.deepEqual(Object.keys(pairs), ['filename', 'item']);
  assert.equal(Buffer.from(pairs.filename, 'base64').toString('utf8'), 'Été 010.mov');
  assert.equal(Buffer.from(pairs.item, 'base64').toString('utf8'), 'Shot 010');
});

test('progress says how much, how fast and how long is left', () => {
  assert.equal(progressText(12.5e6, 200e6, 50e6), '12.5 of 200.0 MB · 50.0 MB/s · 4 s left');
  assert.equal(progressText(0, 6e9, 10e6), '0.0 of 6000.0 MB · 10.0 MB/s · 10 min left');
  assert.equal(progressText(200e6, 200e6, 50e6), '200.0 of 200.0 MB');
  assert.equal(progressText(1e6, 2e6, 0), '1.0 of 2.0 MB');
});

test('an upload is remembered per session and per file (name, size, modification time)', () => {
  const file = { name: 'a.mov', size: 10, lastModified: 5 };
  assert.equal(uploadKey('s1', file), 'syncreel.upload.s1:a.mov:10:5');
  assert.notEqual(uploadKey('s1', file), uploadKey('s2', file));
  assert.notEqual(uploadKey('s1', file), uploadKey('s1', { ...file, lastModified: 6 }));
});

test('the panel says how a review proxy is getting on', () => {
  assert.equal(proxyText(null), '');
  assert.equal(proxyText({ state: 'pending', progress: 0 }), 'Review proxy: waiting to start');
  assert.equal(proxyText({ state: 'making', progress: 0.456 }), 'Review proxy: 45 %');
  assert.equal(proxyText({ state: 'ready', progress: 1 }), 'Review proxy ready: the room plays it');
  assert.equal(
    proxyText({ state: 'failed', progress: 0, error: 'No space left on device' }),
    'Review proxy failed (No space left on device): the room plays the source',
  );
});
