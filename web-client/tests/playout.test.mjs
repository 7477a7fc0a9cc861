// playout.js: RTP timestamps back to server instants and frames, the
// transport history, and the equalisation rule (including that it does
// not ratchet itself up, and comes back down).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  EQUALISE, HOLD, HoldWatch, SampleWindow, TransportHistory, delayForTargetMs, displayedFrame, displayedTransport,
  latencySpreadUs, offsetLabel, reportedOffset, roomTargetMs, rtpToServerUs,
} from '../playout.js';
import { position } from '../transport.js';

/** The server's `rtc::rtp_timestamp`: ceil(µs × 90 000 / 1e6) mod 2^32. */
const rtpOf = (us) => Number(((BigInt(us) * 90_000n + 999_999n) / 1_000_000n) % 2n ** 32n);
const WRAP_US = (2 ** 32 * 1e6) / 90_000; // ≈ 47.7 s

const timeline = { fpsNum: 24000, fpsDen: 1001, duration: 2878 };
const paused = (frame, at) => ({ playing: false, speed: 1, anchorFrame: frame, anchorTime: at, loopIn: null, loopOut: null });
const playing = (frame, at, speed = 1) => ({ ...paused(frame, at), playing: true, speed });

test('an RTP timestamp maps back to its own instant, across wraps', () => {
  const cases = [0, 41_708, 41_709, 1_000_000_001, 47_721_858_844, Math.floor(WRAP_US) - 3, Math.ceil(WRAP_US) + 5,
    3 * 3_600_000_000 + 17];
  for (const us of cases) {
    // Seen anywhere from at once to seconds later, or a little "before"
    // (the clock estimate may be slightly behind).
    for (const lateUs of [0, 35_000, 400_000, 9_000_000, -20_000]) {
      const back = rtpToServerUs(rtpOf(us), us + lateUs);
      assert.ok(back >= us && back - us < 12, `${us} seen ${lateUs} late: ${back}`);
    }
  }
});

test('a picture maps into the frame it shows, on every frame boundary of a play', () => {
  const t = playing(240, 5_000_000);
  // Frame n of a 1× play starts at ceil(n × 1001 × 1e6 / 24000) µs after the anchor.
  for (let n = 0; n < 200; n++) {
    const at = 5_000_000 + Math.ceil((n * 1001 * 1e6) / 24000);
    const back = rtpToServerUs(rtpOf(at), at + 60_000);
    assert.equal(position(t, timeline, back), 240 + n);
  }
});

test('the transport in effect at an instant is the newest one anchored by then', () => {
  const h = new TransportHistory();
  assert.equal(h.at(0), null);
  h.add(1, paused(0, 100));
  h.add(2, playing(0, 1_000_000));
  h.add(3, paused(245, 3_000_000));
  h.add(3, paused(999, 3_000_000)); // a repeat of a version changes nothing
  assert.equal(h.frameAt(timeline, 50), 0); // before everything: the oldest
  assert.equal(h.frameAt(timeline, 999_999), 0);
  assert.equal(h.frameAt(timeline, 2_000_000), 23);
  assert.equal(h.frameAt(timeline, 3_000_000), 245);
  // A later command that executes sooner wins from its instant on.
  h.add(4, paused(10, 2_500_000));
  assert.equal(h.frameAt(timeline, 2_400_000), 33);
  assert.equal(h.frameAt(timeline, 2_600_000), 10);
  assert.equal(h.frameAt(timeline, 3_100_000), 10);
  h.reset();
  assert.equal(h.at(1), null);
});

/** The frame a 1× play from `frame` at `at` has reached at `t`. */
const playedTo = (frame, at, t, speed = 1) => position(playing(frame, at, speed), timeline, t);

test('playing, the frame on screen is the one the picture shows: the latency behind the playhead', () => {
  const h = new TransportHistory();
  const play = playing(1000, 2_000_000);
  h.add(1, paused(1000, 0));
  h.add(2, play);
  const L = 150_000;
  for (const now of [2_500_000, 3_000_000, 7_777_777]) {
    const shown = displayedFrame(h, timeline, now, L, play);
    assert.equal(shown, playedTo(1000, 2_000_000, now - L));
    // 150 ms is three or four frames at 23.976: what the old readout ran ahead by.
    const ahead = position(play, timeline, now) - shown;
    assert.ok(ahead >= 3 && ahead <= 4, `${ahead}`);
  }
  // At 2× twice as many frames behind, and in reverse the other way.
  const only = (t) => {
    const one = new TransportHistory();
    one.add(1, t);
    return one;
  };
  const fast = playing(1000, 2_000_000, 2);
  const back = playing(1000, 2_000_000, -1);
  assert.equal(displayedFrame(only(fast), timeline, 3_000_000, L, fast), 1040);
  assert.equal(position(fast, timeline, 3_000_000) - displayedFrame(only(fast), timeline, 3_000_000, L, fast), 7);
  assert.equal(displayedFrame(only(back), timeline, 3_000_000, L, back), 1000 - 20);
});

test('a play that began less than the latency ago still shows the frame it starts from', () => {
  const h = new TransportHistory();
  h.add(1, paused(480, 0));
  const play = playing(480, 5_000_000);
  h.add(2, play);
  const L = 200_000;
  assert.equal(displayedFrame(h, timeline, 5_100_000, L, play), 480);
  assert.equal(displayedFrame(h, timeline, 5_199_999, L, play), 480);
  assert.equal(displayedFrame(h, timeline, 5_200_000 + 41_709, L, play), 481);
  // What is on screen is the paused transport the picture was made under.
  assert.deepEqual(displayedTransport(h, 5_100_000, L, play), { transport: paused(480, 0), atUs: 4_900_000 });
});

test('a seek in play shows the old frames until the picture reaches the seek', () => {
  const h = new TransportHistory();
  h.add(1, playing(0, 0));
  const seek = playing(2000, 10_000_000);
  h.add(2, seek);
  const L = 120_000;
  assert.equal(displayedFrame(h, timeline, 10_050_000, L, seek), playedTo(0, 0, 9_930_000));
  assert.equal(displayedFrame(h, timeline, 10_120_000, L, seek), 2000);
  assert.equal(displayedFrame(h, timeline, 11_120_000, L, seek), 2023);
});

test('a pause shows the paused frame at once, whatever the latency', () => {
  const h = new TransportHistory();
  h.add(1, playing(100, 0));
  // The driver saw frame 140 and paused there; the playhead was further on.
  const pause = paused(140, 2_000_000);
  h.add(2, pause);
  for (const L of [0, 120_000, 400_000, null]) assert.equal(displayedFrame(h, timeline, 2_000_000, L, pause), 140);
  assert.equal(displayedTransport(h, 2_000_000, 400_000, pause).transport, pause);
});

test('without video (no latency) the frame shown is the playhead', () => {
  const h = new TransportHistory();
  const play = playing(0, 0);
  h.add(1, play);
  assert.equal(displayedFrame(h, timeline, 1_000_000, null, play), 23);
  assert.equal(displayedFrame(h, timeline, 1_000_000, 0, play), 23);
  assert.equal(displayedFrame(h, timeline, 1_000_000, null, null), null);
  assert.equal(displayedFrame(h, null, 1_000_000, null, play), null);
});

test('after a cue, frames of the previous entry are not shown on the new timeline', () => {
  const h = new TransportHistory();
  h.add(1, playing(900, 0));
  h.add(2, paused(0, 3_000_000)); // the cue: entry 2 parked on its frame 0
  const play = playing(0, 3_050_000);
  h.add(3, play);
  // 100 ms after the play the picture is still one made before the cue.
  assert.equal(displayedFrame(h, timeline, 3_150_000, 300_000, play, 2), 0);
  assert.equal(displayedFrame(h, timeline, 3_150_000, 300_000, play, 0), playedTo(900, 0, 2_850_000));
  assert.equal(displayedFrame(h, timeline, 4_350_000, 300_000, play, 2), playedTo(0, 3_050_000, 4_050_000));
});

test('the history keeps only its most recent versions', () => {
  const h = new TransportHistory(4);
  for (let v = 1; v <= 10; v++) h.add(v, paused(v, v * 1000));
  assert.deepEqual(h.entries.map((e) => e.version), [7, 8, 9, 10]);
});

test('medians of a sample window', () => {
  const w = new SampleWindow(3);
  assert.equal(w.median(), null);
  for (const v of [50, 10, 30, 20]) w.push(v);
  assert.equal(w.length, 3);
  assert.equal(w.median(), 20);
  w.push(40);
  assert.equal(w.median(), 30);
  w.clear();
  w.push(1);
  w.push(2);
  assert.equal(w.median(), 2); // rounded half up
});

const person = (id, latencyMs, extra = {}) => ({
  id, connected: true, latencyUs: latencyMs == null ? null : latencyMs * 1000, lastFrame: 0, lastFrameAt: 10_000_000, ...extra,
});

const FLOOR = EQUALISE.minTargetMs;
const decayOf = (ms) => Math.max(EQUALISE.decayMs, EQUALISE.decayFraction * ms);

test('the room target: the floor, or the slowest other participant less the decay, capped', () => {
  const now = 10_500_000;
  assert.equal(roomTargetMs([], 1, now), FLOOR, 'nobody else');
  assert.equal(roomTargetMs([person(1, 300)], 1, now), FLOOR, 'alone: our own latency never sets our target');
  assert.equal(roomTargetMs([person(1, 30), person(2, 80), person(3, 60)], 1, now), FLOOR);
  assert.equal(roomTargetMs([person(1, 30), person(2, 200), person(3, 160)], 1, now), 200 - decayOf(200));
  assert.equal(roomTargetMs([person(1, 300), person(2, 200)], 1, now), 200 - decayOf(200));
  // Gone, away, silent, stale and video-less participants do not count.
  assert.equal(roomTargetMs([
    person(1, 30), person(2, 900, { connected: false }), person(3, null), person(4, 950, { lastFrameAt: now - 4_000_000 }),
    person(5, 250),
  ], 1, now), 250 - decayOf(250));
  assert.equal(roomTargetMs([person(1, 30), person(2, 2000)], 1, now), EQUALISE.maxTargetMs);
  const noFloor = { ...EQUALISE, minTargetMs: 0 };
  assert.equal(roomTargetMs([person(1, 80)], 2, now, noFloor), 80 - EQUALISE.decayMs);
});

test('the delay puts pictures at the target: target − transit − render, bounded, without small changes', () => {
  assert.equal(delayForTargetMs(120, 25, 0), 120 - 25 - EQUALISE.renderMs);
  assert.equal(delayForTargetMs(120, 27, 85), 85, 'a change under changeMs is not worth making');
  assert.equal(delayForTargetMs(120, 35, 85), 75);
  assert.equal(delayForTargetMs(20, 25, 40), 0);
  assert.equal(delayForTargetMs(2000, 25, 0), EQUALISE.maxDelayMs);
  assert.equal(delayForTargetMs(120, null, 33), 33, 'no transit yet: keep what we have');
  assert.equal(delayForTargetMs(null, 20, 33), 33);
});

/**
 * A room of simulated browsers. Each shows a picture `transit` after its
 * instant plus max(what its jitter buffer needs, the delay we set), plus
 * `render` (how a browser's playout-delay hint acts); each reports that,
 * and runs the rule on everyone else's reports.
 */
function simulate(needs, rounds, { transit = 25, render = EQUALISE.renderMs, delays = needs.map(() => 0) } = {}) {
  const ds = [...delays];
  const shown = () => needs.map((need, i) => transit + Math.max(need, ds[i]) + render);
  for (let r = 0; r < rounds; r++) {
    const ls = shown();
    const people = ls.map((l, i) => person(i, l));
    for (let i = 0; i < needs.length; i++) {
      ds[i] = delayForTargetMs(roomTargetMs(people, i, 10_500_000), transit, ds[i]);
    }
  }
  return { latencies: shown(), delays: ds };
}

test('a room whose jitter buffers need little shows every picture at the floor', () => {
  const { latencies } = simulate([20, 35, 60], 5);
  assert.deepEqual(latencies, [FLOOR, FLOOR, FLOOR]);
});

test('everyone waits for a participant whose jitter buffer needs more, and no one ratchets up', () => {
  const slow = 25 + 200 + EQUALISE.renderMs; // its natural latency: 235 ms
  for (const rounds of [10, 400]) {
    const { latencies } = simulate([20, 200, 60], rounds);
    assert.equal(latencies[1], slow);
    for (const l of latencies) assert.ok(l <= slow && l >= slow - decayOf(slow) - EQUALISE.changeMs, `${latencies}`);
  }
  // A render time a little off (by less than the decay) does not make it creep either.
  const off = simulate([20, 200, 60], 400, { render: EQUALISE.renderMs + 4 });
  assert.ok(Math.max(...off.latencies) <= slow + 4, `${off.latencies}`);
});

test('when the slow participant recovers, the room comes back down to the floor', () => {
  const before = simulate([20, 200, 60], 20);
  const { latencies } = simulate([20, 30, 60], 60, { delays: before.delays });
  assert.deepEqual(latencies, [FLOOR, FLOOR, FLOOR]);
});

test('the latency spread and the offset label', () => {
  const now = 10_500_000;
  assert.equal(latencySpreadUs([person(1, 40)], now), null);
  assert.deepEqual(latencySpreadUs([person(1, 40), person(2, 52), person(3, null)], now), { spreadUs: 12_000, count: 2 });
  assert.equal(offsetLabel(1, 38.4), '+1 f / 38 ms');
  assert.equal(offsetLabel(-2, 5), '−2 f / 5 ms');
  assert.equal(offsetLabel(0, null), '±0 f / —');
  const h = new TransportHistory();
  h.add(1, playing(0, 0));
  // At 1 s the room shows frame 23; a picture of frame 22 then trails by one.
  assert.deepEqual(reportedOffset({ lastFrame: 22, lastFrameAt: 1_000_000, latencyUs: 41_000 }, h, timeline),
    { frames: 1, latencyMs: 41 });
  assert.equal(reportedOffset({ lastFrame: null, lastFrameAt: null, latencyUs: null }, h, timeline), null);
});

test('a page that holds pictures far longer than it accounts for is restarted, once per cooldown', () => {
  const watch = new HoldWatch();
  // 900 ms shown against 40 ms transit + 300 ms delay + render: 550 ms unexplained.
  const held = { playing: true, latencyMs: 900, transitMs: 40, delayMs: 300 };
  assert.equal(HoldWatch.excessMs(held), 900 - 40 - 300 - EQUALISE.renderMs);
  assert.equal(watch.update(0, held), false, 'not at once');
  assert.equal(watch.update(HOLD.sustainMs - 1, held), false);
  assert.equal(watch.update(HOLD.sustainMs, held), true, 'after it lasted');
  assert.equal(watch.restarts, 1);
  // Still held (the new receiver has not settled): not again until the cooldown.
  for (let t = HOLD.sustainMs; t < HOLD.cooldownMs; t += 500) assert.equal(watch.update(t + 1, held), false);
  assert.equal(watch.update(HOLD.sustainMs + HOLD.cooldownMs + 10, held), true);
});

test('a slow path, a short stall, a pause or an unknown transit restarts nothing', () => {
  const watch = new HoldWatch();
  // 600 ms of transit (a satellite hop) explains a 700 ms latency.
  for (let t = 0; t < 10_000; t += 250) {
    assert.equal(watch.update(t, { playing: true, latencyMs: 700, transitMs: 600, delayMs: 60 }), false);
  }
  // Unexplained hold, but it clears before it lasts.
  const held = { playing: true, latencyMs: 700, transitMs: 40, delayMs: 100 };
  const fine = { ...held, latencyMs: 160 };
  assert.equal(watch.update(20_000, held), false);
  assert.equal(watch.update(20_000 + HOLD.sustainMs - 100, fine), false);
  assert.equal(watch.update(20_000 + HOLD.sustainMs + 100, held), false, 'the clock started again');
  // Paused pictures and a missing transit say nothing.
  const pausedWatch = new HoldWatch();
  for (let t = 0; t < 10_000; t += 250) {
    assert.equal(pausedWatch.update(t, { ...held, playing: false }), false);
    assert.equal(pausedWatch.update(t, { ...held, transitMs: null }), false);
  }
});
