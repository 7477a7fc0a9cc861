// compare.js's rules without a page: which versions compare, which half a
// point is on, the message a driver sends, and where a fitted picture sits.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  compareMessage, comparableVersions, fitted, labels, sideAt,
} from '../compare.js';

const version = (id, item, number) => ({ id, item, number, checksum: id, sizeBytes: 1 });
const entry = (v, fps = '25') => ({ version: v, fps, dropFrame: false, startTimecode: '00:00:00:00', durationFrames: 10 });

test('only other versions of the item on screen at its rate compare', () => {
  const v1 = version('a', 'Shot 010', 1);
  const v2 = version('b', 'Shot 010', 2);
  const v3 = version('c', 'Shot 010', 3);
  const other = version('d', 'Reel 1', 1);
  const playlist = [entry(v1), entry(v2), entry(v3, '24'), entry(other)];
  assert.deepEqual(comparableVersions(playlist, v1), [v2]);
  assert.deepEqual(comparableVersions(playlist, null), []);
  assert.deepEqual(comparableVersions([], v1), []);
});

test('a point is on A left of the line: the middle side by side, the wipe in a wipe', () => {
  assert.equal(sideAt(null, 0.9), 'a');
  assert.equal(sideAt({ mode: 'side', wipe: 0.1 }, 0.4), 'a');
  assert.equal(sideAt({ mode: 'side', wipe: 0.1 }, 0.6), 'b');
  assert.equal(sideAt({ mode: 'wipe', wipe: 0.3 }, 0.4), 'b');
  assert.equal(sideAt({ mode: 'wipe', wipe: 0.3 }, 0.2), 'a');
});

test('the message keeps the wipe on the picture; null stops', () => {
  assert.deepEqual(compareMessage('b', 'wipe', 1.7), { type: 'compare', version: 'b', mode: 'wipe', wipe: 1 });
  assert.deepEqual(compareMessage('b', 'side', -0.2), { type: 'compare', version: 'b', mode: 'side', wipe: 0 });
  assert.deepEqual(compareMessage(null), { type: 'compare', version: null });
});

test('labels name each half by its version number', () => {
  assert.deepEqual(labels({ other: { number: 3 } }, { number: 1 }), { a: 'A v1', b: 'B v3' });
  assert.equal(labels(null, { number: 1 }), null);
});

test('a picture fitted into a box is letterboxed or pillarboxed, centred', () => {
  assert.deepEqual(fitted(1280, 720, 1280, 800), { x: 0, y: 40, width: 1280, height: 720 });
  assert.deepEqual(fitted(640, 360, 320, 360), { x: 0, y: 90, width: 320, height: 180 });
  assert.deepEqual(fitted(0, 0, 100, 50), { x: 0, y: 0, width: 100, height: 50 });
});
