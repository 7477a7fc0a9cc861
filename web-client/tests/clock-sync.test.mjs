// The sample-selection rule of the NTP exchange, without a socket.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ClockEstimator, ClockSync } from '../clock-sync.js';

// A server whose clock runs `offset` µs ahead, reached over a path whose
// legs take `up` and `down` µs; the server holds the ping for `hold` µs.
function exchange(est, t0, { offset, up, down, hold = 10 }) {
  const t1 = t0 + up + offset;
  const t2 = t1 + hold;
  const t3 = t2 - offset + down;
  return est.add(t0, t1, t2, t3);
}

test('a symmetric path gives the exact offset and the RTT without the hold', () => {
  const est = new ClockEstimator();
  const s = exchange(est, 1_000, { offset: 5_000_000, up: 400, down: 400, hold: 30 });
  assert.deepEqual(s, { rttUs: 800, offsetUs: 5_000_000 });
  assert.equal(est.offsetUs(), 5_000_000);
  assert.equal(est.uncertaintyUs(), 400);
});

test('the lowest-RTT sample wins and asymmetry stays within ±RTT/2', () => {
  const est = new ClockEstimator();
  exchange(est, 0, { offset: -7_000, up: 9_000, down: 1_000 });
  exchange(est, 100_000, { offset: -7_000, up: 600, down: 400 });
  exchange(est, 200_000, { offset: -7_000, up: 3_000, down: 3_000 });
  assert.equal(est.best().rttUs, 1_000);
  assert.ok(Math.abs(est.offsetUs() - -7_000) <= est.uncertaintyUs());
  assert.equal(est.uncertaintyUs(), 500);
});

test('outliers beyond 1.5 × min + 2 ms are rejected', () => {
  const est = new ClockEstimator();
  exchange(est, 0, { offset: 0, up: 1_000, down: 1_000 }); // rtt 2 ms
  exchange(est, 10, { offset: 0, up: 2_400, down: 2_400 }); // rtt 4.8 ms: kept (≤ 5 ms)
  exchange(est, 20, { offset: 0, up: 2_600, down: 2_600 }); // rtt 5.2 ms: rejected
  assert.deepEqual(est.accepted().map((s) => s.rttUs), [2_000, 4_800]);
});

test('the window keeps the last 16 samples, so a slower path is relearned', () => {
  const est = new ClockEstimator();
  exchange(est, 0, { offset: 100, up: 100, down: 100 });
  for (let i = 1; i <= 16; i++) exchange(est, i * 1000, { offset: 900, up: 5_000, down: 5_000 });
  assert.equal(est.samples.length, 16);
  assert.equal(est.offsetUs(), 900);
});

test('the seed stands in until the first sample and detects a restarted server', () => {
  const est = new ClockEstimator();
  assert.equal(est.offsetUs(), null);
  est.seed(50_000, 10_000);
  assert.equal(est.offsetUs(), 40_000);
  exchange(est, 20_000, { offset: 40_300, up: 300, down: 300 });
  assert.equal(est.offsetUs(), 40_300);
  assert.ok(est.agreesWithSeed());
  est.seed(1_000, 30_000); // a fresh server epoch
  assert.ok(!est.agreesWithSeed());
});

test('a join runs a burst of 8 pings, one per pong, then reports once', () => {
  const sent = [];
  const sync = new ClockSync((msg) => {
    sent.push(msg);
    return true;
  });
  sync.onWelcome(1_000_000);
  for (let i = 0; i < 8; i++) {
    const ping = sent.at(-1);
    assert.equal(ping.type, 'ping');
    sync.onPong({ id: ping.id, t0: ping.t0, t1: ping.t0 + 50, t2: ping.t0 + 60 });
  }
  sync.stop();
  assert.equal(sent.filter((m) => m.type === 'ping').length, 8);
  const reports = sent.filter((m) => m.type === 'syncReport');
  assert.equal(reports.length, 1);
  for (const key of ['rttUs', 'offsetUs', 'uncertaintyUs']) assert.ok(Number.isInteger(reports[0][key]), key);
  // A pong for a ping not in flight is ignored.
  sync.onPong({ id: 999, t0: 0, t1: 0, t2: 0 });
  assert.equal(sync.estimator.samples.length, 8);
});
