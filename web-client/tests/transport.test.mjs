// The cases of src/clock.rs, run against the JS mirror of
// Transport::position, plus the execute-at schedule.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { SPEEDS, TransportSchedule, position, speedFraction } from '../transport.js';

const T0 = 1_000_000; // 1 000 ms, as in the Rust tests
const RATE = {
  '23.976': [24000, 1001], '24': [24, 1], '25': [25, 1], '29.97': [30000, 1001],
  '59.94': [60000, 1001], '60': [60, 1],
};

const timeline = (rate, duration) => ({ fpsNum: RATE[rate][0], fpsDen: RATE[rate][1], duration });
const paused = (frame) => ({ playing: false, speed: 1, anchorFrame: frame, anchorTime: T0, loopIn: null, loopOut: null });
const playing = (frame, speed, loop = {}) => ({ ...paused(frame), playing: true, speed, ...loop });

function check(t, tl, cases) {
  for (const [after, expected] of cases) {
    assert.equal(position(t, tl, T0 + after), expected, `at +${after} µs`);
  }
}

test('paused stays put and is clamped', () => {
  const tl = timeline('24', 100);
  check(paused(10), tl, [[0, 10], [10_000_000, 10]]);
  check(paused(500), tl, [[0, 99]]);
});

test('play advances exactly on frame boundaries at 23.976', () => {
  const tl = timeline('23.976', 1_000_000);
  check(playing(0, 1), tl, [[-5, 0], [0, 0], [41_708, 0], [41_709, 1], [83_416, 1], [83_417, 2]]);
  // One hour of wall time at 23.976 shows 86 313.686 frames.
  check(playing(0, 1), tl, [[3_600_000_000, 86_313]]);
});

test('shuttle speeds scale the rate', () => {
  const tl = timeline('25', 10_000);
  check(playing(100, 0.5), tl, [[1_000_000, 112]]);
  check(playing(100, 4), tl, [[1_000_000, 200]]);
  check(playing(100, -2), tl, [[1_000_000, 50]]);
  check(playing(100, -1), tl, [[39_999, 100], [40_000, 99]]);
});

test('playback clamps at both ends', () => {
  const tl = timeline('24', 48);
  check(playing(0, 1), tl, [[1_958_333, 46], [1_958_334, 47], [60_000_000, 47]]);
  check(playing(24, -1), tl, [[2_000_000, 0]]);
});

test('loops wrap in both directions', () => {
  const tl = timeline('24', 1000);
  const marks = { loopIn: 10, loopOut: 19 };
  check(playing(15, 1, marks), tl, [[166_667, 19], [208_334, 10], [625_000, 10 + (30 - 10) % 10]]);
  // Starting before the loop runs into it; starting after it ignores it.
  check(playing(0, 1, marks), tl, [[1_000_000, 14]]);
  check(playing(500, 1, marks), tl, [[1_000_000, 524]]);
  check(playing(12, -1, marks), tl, [[125_000, 19], [166_667, 18]]);
});

test('a loop needs both marks in order', () => {
  const tl = timeline('24', 1000);
  check(playing(0, 1, { loopIn: 5, loopOut: null }), tl, [[1_000_000, 24]]);
  check(playing(0, 1, { loopIn: 5, loopOut: 4 }), tl, [[1_000_000, 24]]);
  check(playing(5, 1, { loopIn: 5, loopOut: 5 }), tl, [[1_000_000, 5]]);
});

test('stays exact where doubles would not: 60000/1001 at 4x after 20 days', () => {
  const tl = timeline('59.94', Number.MAX_SAFE_INTEGER);
  const elapsed = 20 * 86_400 * 1_000_000;
  // elapsed × 60000 × 4 ≈ 4.1e17 > 2^53; the exact quotient, by BigInt:
  const exact = Number((BigInt(elapsed) * 60000n * 4n) / (1_000_000n * 1001n));
  check(playing(0, 4), tl, [[elapsed, exact]]);
  assert.equal(exact, 414_305_694);
});

test('matches exact rational time at every frame start', () => {
  // The instant frame n starts is ceil(n × den × 1e6 / num) µs.
  for (const rate of Object.keys(RATE)) {
    const tl = timeline(rate, 1_000_000);
    const [num, den] = RATE[rate];
    for (let n = 0; n < 500_000; n += 9973) {
      const start = Number((BigInt(n) * BigInt(den) * 1_000_000n + BigInt(num) - 1n) / BigInt(num));
      assert.equal(position(playing(0, 1), tl, T0 + start), n, `${rate} frame ${n}`);
      if (n > 0) assert.equal(position(playing(0, 1), tl, T0 + start - 1), n - 1);
    }
  }
});

test('speeds map exactly onto fractions', () => {
  assert.deepEqual(speedFraction(0.5), { num: 1, den: 2 });
  assert.deepEqual(speedFraction(-3), { num: -3, den: 1 });
  assert.equal(SPEEDS.length, 9);
  for (const bad of [0, 0.25, 1.5, 5, -0.5]) assert.throws(() => speedFraction(bad));
});

test('the schedule keeps the old transport until execute-at, newest due version wins', () => {
  const s = new TransportSchedule();
  s.reset(paused(0), 5);
  s.push(6, 2_000, paused(10));
  assert.equal(s.at(1_999).anchorFrame, 0);
  assert.equal(s.currentVersion, 5);
  assert.equal(s.newest().anchorFrame, 10);
  assert.equal(s.at(2_000).anchorFrame, 10);
  assert.equal(s.currentVersion, 6);

  // A later command scheduled sooner (the lead shrank) supersedes the earlier one.
  s.push(7, 9_000, paused(20));
  s.push(8, 3_000, paused(30));
  assert.equal(s.at(3_000).anchorFrame, 30);
  assert.equal(s.currentVersion, 8);
  assert.equal(s.pending.length, 0);
  assert.equal(s.at(9_000).anchorFrame, 30);

  // An earlier command due first still shows until the later one is due.
  s.push(9, 10_000, paused(40));
  s.push(10, 11_000, paused(50));
  assert.equal(s.at(10_500).anchorFrame, 40);
  assert.equal(s.at(11_000).anchorFrame, 50);
});
