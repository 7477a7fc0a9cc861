// stills.js without a browser: which frames are kept ready around a
// paused one, the width asked for, and the cache's order, bounds,
// abandonment and retries (with a fake loader whose loads the test
// resolves by hand).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  STILLS, StillCache, prefetchPlan, stillKey, stillWidth,
} from '../stills.js';

test('the plan: the frame, its neighbours nearest first, clamped to the media', () => {
  const cfg = { ...STILLS, neighbours: 3 };
  assert.deepEqual(prefetchPlan(100, 2878, null, cfg), [100, 101, 99, 102, 98, 103, 97]);
  assert.deepEqual(prefetchPlan(0, 2878, null, cfg), [0, 1, 2, 3]);
  assert.deepEqual(prefetchPlan(2877, 2878, null, cfg), [2877, 2876, 2875, 2874]);
  assert.deepEqual(prefetchPlan(5000, 2878, null, cfg), []);
  assert.equal(prefetchPlan(500, 2878).length, 2 * STILLS.neighbours + 1);
});

test('the plan: a short loop is kept whole after the neighbours, a long one is not', () => {
  const cfg = { ...STILLS, neighbours: 2, loopMax: 10 };
  const loop = (loopIn, loopOut) => ({ loopIn, loopOut });
  assert.deepEqual(prefetchPlan(100, 2878, loop(95, 104), cfg), [100, 101, 99, 102, 98, 95, 96, 97, 103, 104]);
  assert.deepEqual(prefetchPlan(100, 2878, loop(95, 105), cfg), [100, 101, 99, 102, 98]);
  // Marks the wrong way round are no loop.
  assert.deepEqual(prefetchPlan(100, 2878, loop(104, 95), cfg), [100, 101, 99, 102, 98]);
});

test('the width: the picture in device pixels, down to a step of 4, within the server range', () => {
  assert.equal(stillWidth(796, 1, 1280), 796);
  assert.equal(stillWidth(797.5, 1, 1280), 796);
  assert.equal(stillWidth(796, 2, 1280), 1280);
  assert.equal(stillWidth(700, 1.5, 1280), 1048);
  assert.equal(stillWidth(10, 1, 1280), 64);
  assert.equal(stillWidth(2000, 1, 1918), 1916);
});

/** A loader whose loads wait until the test settles them. */
function fakeLoader() {
  const calls = [];
  const load = (item, signal) => new Promise((resolve, reject) => {
    const call = {
      item, signal, closed: false,
      ok(bytes = 100) {
        resolve({ value: { close: () => { call.closed = true; } }, bytes });
      },
      fail(retryMs) {
        reject(Object.assign(new Error('busy'), { retryMs }));
      },
    };
    signal.addEventListener('abort', () => reject(new Error('aborted')));
    calls.push(call);
  });
  return { load, calls };
}

const items = (frames, width = 800) => frames.map((frame) => ({ key: stillKey('c', frame, width), checksum: 'c', frame, width }));
const tick = () => new Promise((r) => setImmediate(r));
const framesOf = (calls) => calls.map((c) => c.item.frame);

test('the wanted frame loads first, prefetches one at a time after it', async () => {
  const { load, calls } = fakeLoader();
  const ready = [];
  const cache = new StillCache({ load, onReady: (k) => ready.push(k) });
  cache.want(items([10, 11, 9, 12]));
  assert.deepEqual(framesOf(calls), [10], 'nothing else while the frame wanted now loads');
  calls[0].ok();
  await tick();
  assert.deepEqual(ready, [stillKey('c', 10, 800)]);
  assert.ok(cache.get(stillKey('c', 10, 800)));
  assert.deepEqual(framesOf(calls), [10, 11]);
  // A new frame wanted now goes at once, beside the prefetch on its way.
  cache.want(items([50, 11, 51, 49]));
  assert.deepEqual(framesOf(calls), [10, 11, 50]);
  calls[1].ok();
  await tick();
  // 11 came; 51 waits for 50 (one thing on its way is enough for prefetches).
  assert.deepEqual(framesOf(calls), [10, 11, 50]);
  calls[2].ok();
  await tick();
  assert.deepEqual(framesOf(calls), [10, 11, 50, 51]);
});

test('loads no longer wanted are abandoned; what came is kept', async () => {
  const { load, calls } = fakeLoader();
  const cache = new StillCache({ load });
  cache.want(items([1]));
  cache.want(items([2]));
  cache.want(items([3]));
  assert.deepEqual(framesOf(calls), [1, 2, 3]);
  assert.deepEqual(calls.map((c) => c.signal.aborted), [true, true, false]);
  assert.equal(cache.inFlight, 1);
  calls[2].ok();
  await tick();
  cache.want(items([4]));
  assert.ok(cache.has(stillKey('c', 3, 800)), 'a still that came stays, wanted or not');
  assert.equal(cache.snapshot().stats.aborted, 2);
});

test('a busy answer is tried again after its delay', async () => {
  const { load, calls } = fakeLoader();
  const timers = [];
  let now = 0;
  const cache = new StillCache({ load, now: () => now, setTimer: (fn, ms) => timers.push({ fn, ms }) });
  cache.want(items([7]));
  calls[0].fail(300);
  await tick();
  assert.equal(calls.length, 1);
  assert.deepEqual(timers.map((t) => t.ms), [300]);
  now = 300;
  timers[0].fn();
  assert.deepEqual(framesOf(calls), [7, 7]);
  calls[1].ok();
  await tick();
  assert.ok(cache.has(stillKey('c', 7, 800)));
});

test('bounded: the least recently used of those not wanted go and are closed, never the one on screen', async () => {
  const { load, calls } = fakeLoader();
  const cfg = { ...STILLS, maxCount: 3, maxBytes: 1e9 };
  let now = 0;
  const cache = new StillCache({ load, cfg, now: () => now });
  const settle = async (frames) => {
    for (const frame of frames) {
      cache.want(items([frame]));
      calls.at(-1).ok();
      now += 1;
      await tick();
    }
  };
  await settle([1, 2, 3]);
  cache.pin(stillKey('c', 1, 800));
  await settle([4]);
  // 2 was the least recently used not on screen and not wanted.
  assert.deepEqual(cache.snapshot().entries.map((e) => e.frame).sort(), [1, 3, 4]);
  assert.equal(calls.find((c) => c.item.frame === 2).closed, true);
  assert.equal(calls.find((c) => c.item.frame === 1).closed, false);
  // A still no longer wanted makes way for a prefetch; one wanted or on
  // screen never does, so the prefetches stop at the bound.
  cache.want(items([4, 5, 6, 7]));
  assert.deepEqual(framesOf(calls).slice(4), [5]);
  assert.equal(calls.find((c) => c.item.frame === 3).closed, true);
  calls[4].ok();
  await tick();
  assert.deepEqual(framesOf(calls).slice(4), [5], 'three kept, all wanted or on screen: no room for 6');
  assert.deepEqual(cache.snapshot().entries.map((e) => e.frame).sort(), [1, 4, 5]);
});

test('a cache full of stills no longer wanted still prefetches the new frame\'s neighbours', async () => {
  const { load, calls } = fakeLoader();
  const cfg = { ...STILLS, maxCount: 4, maxBytes: 1e9 };
  const cache = new StillCache({ load, cfg });
  const settleAll = async (frames) => {
    cache.want(items(frames));
    while (calls.some((c) => !c.done)) {
      const c = calls.find((x) => !x.done);
      c.done = true;
      c.ok();
      await tick();
    }
  };
  await settleAll([10, 11, 9, 12]);
  assert.equal(cache.readyCount, 4);
  await settleAll([500, 501, 499]);
  for (const f of [499, 500, 501]) assert.ok(cache.has(stillKey('c', f, 800)), `${f} was not prefetched`);
  assert.ok(cache.readyCount <= 4);
});

test('bounded in bytes too', async () => {
  const { load, calls } = fakeLoader();
  const cfg = { ...STILLS, maxCount: 100, maxBytes: 250 };
  const cache = new StillCache({ load, cfg });
  for (const frame of [1, 2, 3]) {
    cache.want(items([frame]));
    calls.at(-1).ok(100);
    await tick();
  }
  assert.equal(cache.readyCount, 2);
  assert.ok(cache.readyBytes <= 250);
});
