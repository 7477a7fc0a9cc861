// Aspect masks and safe areas: the window each mask leaves, and the bars
// that cover the rest.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ASPECTS, aspectWindow, maskBars, safeRect } from '../masks.js';

const near = (a, b, eps = 1e-9) => Math.abs(a - b) <= eps;
const HD = 16 / 9;

test('every mask leaves a window of its own aspect on a 16:9 picture', () => {
  for (const { id, ratio } of ASPECTS) {
    const w = aspectWindow(HD, ratio);
    assert.ok(near((w.width * HD) / w.height, ratio), `${id}: ${(w.width * HD) / w.height}`);
    // Centred, and as large as fits.
    assert.ok(near(w.x * 2 + w.width, 1) && near(w.y * 2 + w.height, 1));
    assert.ok(near(w.width, 1) || near(w.height, 1));
  }
});

test('wider masks letterbox, narrower ones pillarbox', () => {
  assert.deepEqual(aspectWindow(HD, 2.39).width, 1);
  assert.ok(aspectWindow(HD, 2.39).height < 1);
  assert.deepEqual(aspectWindow(HD, 4 / 3).height, 1);
  assert.ok(aspectWindow(HD, 4 / 3).width < 1);
  assert.deepEqual(aspectWindow(HD, HD), { x: 0, y: 0, width: 1, height: 1 });
});

test('the bars cover exactly what the window does not', () => {
  for (const { ratio } of ASPECTS) {
    const w = aspectWindow(HD, ratio);
    const bars = maskBars(w);
    const covered = bars.reduce((sum, b) => sum + b.width * b.height, 0);
    assert.ok(near(covered, 1 - w.width * w.height), `${ratio}: ${covered}`);
  }
  assert.deepEqual(maskBars({ x: 0, y: 0, width: 1, height: 1 }), []);
});

test('safe areas are centred 90% and 80% of the picture or of a mask\'s window', () => {
  assert.deepEqual(safeRect(0.9), { x: 0.04999999999999999, y: 0.04999999999999999, width: 0.9, height: 0.9 });
  const w = aspectWindow(HD, 2.39);
  const s = safeRect(0.8, w);
  assert.ok(near(s.width, 0.8) && near(s.height, w.height * 0.8));
  assert.ok(near(s.y + s.height / 2, 0.5));
});
