// Zoom and pan math: where the picture goes, that a zoom about a point
// keeps that point still, that a pan cannot show past the picture's
// edge, and what 1:1 means.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { pictureRect } from '../drawing.js';
import {
  FIT_VIEW, MAX_ZOOM, layerTransform, panBy, pinch, pixelZoom, settle, zoomAt, zoomLabel, zoomedRect,
} from '../zoom.js';

const box = { width: 1000, height: 500 };
// A 640×360 picture fitted into 1000×500: 888.9 × 500, pillarboxed.
const fit = pictureRect(box.width, box.height, 640, 360);
const near = (a, b, eps = 1e-6) => Math.abs(a - b) <= eps;

test('the fit view is the fitted picture', () => {
  assert.deepEqual(zoomedRect(fit, box, FIT_VIEW), fit);
});

test('zooming about a point keeps the picture point under it', () => {
  const at = [300, 200];
  const before = zoomedRect(fit, box, FIT_VIEW);
  const nx = (at[0] - before.x) / before.width;
  const ny = (at[1] - before.y) / before.height;
  const view = zoomAt(fit, box, FIT_VIEW, 3, ...at);
  const r = zoomedRect(fit, box, view);
  assert.ok(near(r.width, fit.width * 3));
  assert.ok(near(r.x + nx * r.width, at[0]), `x moved to ${r.x + nx * r.width}`);
  assert.ok(near(r.y + ny * r.height, at[1]), `y moved to ${r.y + ny * r.height}`);
});

test('a pan stops at the picture\'s edge, and a picture smaller than the monitor stays centred', () => {
  const view = zoomAt(fit, box, FIT_VIEW, 4);
  const far = panBy(fit, box, view, 1e6, 1e6);
  const r = zoomedRect(fit, box, far);
  assert.deepEqual([r.x, r.y], [0, 0]);
  const other = zoomedRect(fit, box, panBy(fit, box, view, -1e6, -1e6));
  assert.ok(near(other.x + other.width, box.width) && near(other.y + other.height, box.height));
  // Below fit the picture cannot be dragged at all.
  const small = zoomAt(fit, box, FIT_VIEW, 0.5);
  const moved = zoomedRect(fit, box, panBy(fit, box, small, 80, 80));
  assert.ok(near(moved.x, (box.width - fit.width * 0.5) / 2) && near(moved.y, (box.height - fit.height * 0.5) / 2));
});

test('a settled view is stable and the zoom is bounded', () => {
  const v = settle(fit, box, { zoom: 100, cx: -3, cy: 9 });
  assert.equal(v.zoom, MAX_ZOOM);
  assert.deepEqual(settle(fit, box, v), v);
});

test('1:1 is one source pixel to one device pixel', () => {
  const z = pixelZoom(fit, 640, 1);
  assert.ok(near(fit.width * z, 640));
  assert.ok(near(fit.width * pixelZoom(fit, 640, 2) * 2, 640));
  assert.equal(zoomLabel(1, z), 'Fit');
  assert.equal(zoomLabel(z, z), '1:1');
  assert.equal(zoomLabel(2, z), '200%');
});

test('the layers\' transform takes the fitted picture onto the zoomed rectangle', () => {
  const r = zoomedRect(fit, box, zoomAt(fit, box, FIT_VIEW, 2, 100, 100));
  const m = layerTransform(fit, r).match(/translate\(([-\d.e]+)px, ([-\d.e]+)px\) scale\(([-\d.e]+)\)/);
  const [tx, ty, s] = m.slice(1).map(Number);
  // Both corners of the fitted picture land on the zoomed one's.
  assert.ok(near(tx + s * fit.x, r.x) && near(ty + s * fit.y, r.y));
  assert.ok(near(tx + s * (fit.x + fit.width), r.x + r.width) && near(ty + s * (fit.y + fit.height), r.y + r.height));
});

test('a pinch zooms by the fingers\' spread and keeps the picture point between them under them', () => {
  // Already zoomed, so that the fingers' move has room to pan.
  const start = zoomAt(fit, box, FIT_VIEW, 2, 500, 250);
  const from = [[400, 200], [500, 300]];
  // Twice as far apart, and their midpoint 20 px left and 10 px down.
  const to = [[330, 160], [530, 360]];
  const before = zoomedRect(fit, box, start);
  const [mx, my] = [450, 250];
  const nx = (mx - before.x) / before.width;
  const ny = (my - before.y) / before.height;
  const view = pinch(fit, box, start, from, to);
  assert.ok(near(view.zoom, 4), `zoom ${view.zoom}`);
  const r = zoomedRect(fit, box, view);
  assert.ok(near(r.x + nx * r.width, 430), `the point between the fingers went to x ${r.x + nx * r.width}`);
  assert.ok(near(r.y + ny * r.height, 260), `the point between the fingers went to y ${r.y + ny * r.height}`);
  // Fingers that do not move leave the view as it is; fingers on one
  // point (no spread to measure) do not zoom.
  assert.deepEqual(pinch(fit, box, start, from, from), settle(fit, box, start));
  assert.ok(near(pinch(fit, box, start, [[5, 5], [5, 5]], [[5, 5], [5, 5]]).zoom, start.zoom));
});
