// framecode.js against the cases of src/framecode.rs: blank and noisy
// pictures have no code, check bits catch any single flipped bit, and a
// painted code reads back after scaling and noise. The property test's
// random cases come from a fixed-seed generator here.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_FRAME, checkBits, paint, read, readRgba, stripRect, stripRows } from '../framecode.js';

function plane(width, height, fill) {
  const stride = width + 16;
  return { luma: new Uint8Array(stride * height).fill(fill), layout: { width, height, stride } };
}

/** xorshift32, as the Rust test's noise. */
function rng(seed) {
  let state = (Math.imul(seed, 2654435761) >>> 0) || 1;
  return () => {
    state ^= state << 13;
    state >>>= 0;
    state ^= state >>> 17;
    state ^= state << 5;
    state >>>= 0;
    return state;
  };
}

/** Box-downscales by an integer factor and adds ±20 of noise, like `degrade` in the Rust. */
function degrade(luma, layout, factor, seed) {
  const out = { width: Math.floor(layout.width / factor), height: Math.floor(layout.height / factor) };
  out.stride = out.width;
  const data = new Uint8Array(out.stride * out.height);
  const next = rng(seed);
  for (let y = 0; y < out.height; y++) {
    for (let x = 0; x < out.width; x++) {
      let sum = 0;
      for (let dy = 0; dy < factor; dy++) {
        for (let dx = 0; dx < factor; dx++) sum += luma[(y * factor + dy) * layout.stride + x * factor + dx];
      }
      const noise = (next() % 41) - 20;
      data[y * out.stride + x] = Math.min(255, Math.max(0, Math.floor(sum / (factor * factor)) + noise));
    }
  }
  return { luma: data, layout: out };
}

test('a blank or noisy picture has no code', () => {
  const blank = plane(1280, 720, 128);
  assert.equal(read(blank.luma, blank.layout), null);
  const noisy = plane(1280, 720, 0);
  for (let i = 0; i < noisy.luma.length; i++) noisy.luma[i] = (i * 7919) % 251;
  assert.equal(read(noisy.luma, noisy.layout), null);
});

test('check bits catch any single flipped bit', () => {
  for (const frame of [0, 1, 245, 86_400, MAX_FRAME]) {
    for (let bit = 0; bit < 24; bit++) {
      assert.notEqual(checkBits(frame ^ (1 << bit)), checkBits(frame), `${frame} bit ${bit}`);
    }
  }
});

test('reads back what it painted, after scaling and noise', () => {
  const next = rng(20240607);
  for (let i = 0; i < 64; i++) {
    const frame = next() & MAX_FRAME;
    const background = next() & 0xff;
    const factor = 1 + (next() % 3);
    const { luma, layout } = plane(960, 540, background);
    paint(frame, luma, layout);
    assert.equal(read(luma, layout), frame);
    const small = degrade(luma, layout, factor, next());
    assert.equal(read(small.luma, small.layout), frame, `frame ${frame} at 1/${factor}`);
  }
});

/** A luma plane as the browser's RGBA: full range, grey. */
function toRgba(luma, layout, rows = [0, layout.height]) {
  const height = rows[1] - rows[0];
  const rgba = new Uint8ClampedArray(layout.width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < layout.width; x++) {
      const v = Math.round(((luma[(y + rows[0]) * layout.stride + x] - 16) * 255) / 219);
      rgba.set([v, v, v, 255], (y * layout.width + x) * 4);
    }
  }
  return rgba;
}

test('reads RGBA pixels, the whole picture or its strip alone', () => {
  for (const frame of [0, 245, 480, 2877, MAX_FRAME]) {
    const { luma, layout } = plane(1280, 720, 90);
    paint(frame, luma, layout);
    assert.equal(readRgba(toRgba(luma, layout), 1280, 720), frame);
    const r = stripRect(1280, 720);
    assert.deepEqual(r, { x: 0, y: 675, width: 1280, height: 45 });
    const strip = toRgba(luma, layout, [r.y, r.y + r.height]);
    assert.equal(readRgba(strip, r.width, r.height, { strip: true }), frame);
  }
});

test('a plane holding only the rows from the strip on reads the same', () => {
  const { luma, layout } = plane(1280, 720, 30);
  paint(245, luma, layout);
  const [r0] = stripRows(720);
  const top = r0 - (r0 % 2);
  const tail = luma.subarray(top * layout.stride);
  assert.equal(read(tail, { ...layout, firstRow: top }), 245);
  assert.throws(() => read(tail, { ...layout, firstRow: r0 + 2 }), RangeError);
});
