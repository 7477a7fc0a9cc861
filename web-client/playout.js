// Which frame the video shows, how late, and how much to delay it so that
// the room sees each frame at the same server instant. Pure: no DOM, no
// clock reads, no WebRTC; main.js feeds it numbers and node tests it.
//
// The server stamps every picture with its own server instant: the RTP
// timestamp is `ceil(serverUs × 90 000 / 1e6) mod 2^32`, and the picture
// shows `position(transport in effect at that instant, that instant)`. So
// a displayed picture's RTP timestamp, unwrapped near "now", names both
// the frame on screen and how long ago it was made.

import { position } from './transport.js';

export const RTP_CLOCK_RATE = 90_000;
const WRAP = 2n ** 32n;

/**
 * The server instant (µs) of an RTP timestamp, unwrapped to the one
 * nearest `nearUs` (server µs; a picture is never more than ~24 s old).
 * Integer math throughout: the inverse of the server's rounding up, so a
 * picture maps back into its own frame (0…11 µs after its instant).
 */
export function rtpToServerUs(rtp, nearUs, clockRate = RTP_CLOCK_RATE) {
  const rate = BigInt(clockRate);
  const nearTicks = (BigInt(Math.round(nearUs)) * rate) / 1_000_000n;
  // Walk back from "now" to the nearest tick congruent to rtp mod 2^32.
  let back = (nearTicks - BigInt(rtp >>> 0)) % WRAP;
  if (back < 0n) back += WRAP;
  let ticks = nearTicks - back;
  if (back > WRAP / 2n) ticks += WRAP;
  // floor(ticks × 1e6 / rate), floor also for negative values.
  const num = ticks * 1_000_000n;
  let us = num / rate;
  if (num < 0n && us * rate !== num) us -= 1n;
  return Number(us);
}

/**
 * Every transport the room has had recently, by version, so that a picture
 * made a few hundred ms ago maps through the transport that was in effect
 * when it was made (the room's current one may already differ). The one in
 * effect at `t` is the highest version whose `anchorTime ≤ t`: the same
 * rule as the execute-at queue, and as the server's player.
 */
export class TransportHistory {
  constructor(limit = 64) {
    this.limit = limit;
    this.entries = [];
  }

  reset() {
    this.entries = [];
  }

  add(version, transport) {
    if (!transport || this.entries.some((e) => e.version === version)) return;
    this.entries.push({ version, transport });
    this.entries.sort((a, b) => a.version - b.version);
    if (this.entries.length > this.limit) this.entries.splice(0, this.entries.length - this.limit);
  }

  /** The transport in effect at server instant `t`, or null if none is known. */
  at(t) {
    return this.entryAt(t)?.transport ?? null;
  }

  /** As `at`, with the version that set it: `{version, transport}`. */
  entryAt(t) {
    let best = null;
    for (const e of this.entries) {
      if (e.transport.anchorTime <= t && (!best || e.version > best.version)) best = e;
    }
    // Before every known anchor: the oldest we have is the best guess.
    return best ?? this.entries[0] ?? null;
  }

  /** The frame the room shows at `t`, or null. */
  frameAt(timeline, t) {
    const transport = this.at(t);
    return transport && timeline ? position(transport, timeline, t) : null;
  }
}

/**
 * What a page with video shows at server instant `nowUs`: the transport
 * and instant its picture belongs to. Pictures are shown `latencyUs`
 * after the server made them, so while the room plays the picture on
 * screen is the one made at `nowUs − latencyUs`, under the transport in
 * effect then. Every readout (timecode, counter, scrubber, loop marks,
 * where a note is pinned) follows that one timeline, so that none of
 * them runs ahead of the picture. A room that is paused now shows its
 * paused frame at once: the transport says exactly which frame that is,
 * and the picture follows within its latency (a driver who steps sees
 * the count move at once). `current` is the transport in effect at
 * `nowUs`; a null latency (no video) is the playhead itself. Transports
 * older than `sinceVersion` belong to another playlist entry's timeline:
 * until the picture has caught up with the entry, it shows where the
 * entry started.
 */
export function displayedTransport(history, nowUs, latencyUs, current, sinceVersion = 0) {
  if (!current) return null;
  if (!current.playing || latencyUs == null) return { transport: current, atUs: nowUs };
  const atUs = nowUs - latencyUs;
  const made = history.entryAt(atUs);
  if (!made || made.version < sinceVersion) return { transport: current, atUs: Math.min(nowUs, current.anchorTime) };
  return { transport: made.transport, atUs };
}

/** The frame on screen at `nowUs` (see displayedTransport), or null. */
export function displayedFrame(history, timeline, nowUs, latencyUs, current, sinceVersion = 0) {
  const shown = timeline ? displayedTransport(history, nowUs, latencyUs, current, sinceVersion) : null;
  return shown && position(shown.transport, timeline, shown.atUs);
}

/** A small window of recent samples with a median. */
export class SampleWindow {
  constructor(size = 48) {
    this.size = size;
    this.values = [];
  }

  push(v) {
    this.values.push(v);
    if (this.values.length > this.size) this.values.shift();
  }

  clear() {
    this.values = [];
  }

  get length() {
    return this.values.length;
  }

  median() {
    if (!this.values.length) return null;
    const s = [...this.values].sort((a, b) => a - b);
    const m = s.length >> 1;
    return s.length % 2 ? s[m] : Math.round((s[m - 1] + s[m]) / 2);
  }
}

/**
 * Playout equalisation. Every client reports the latency it displays at
 * (median, in `frameReport.latencyUs`); each one then sets its playout
 * delay (`receiver.jitterBufferTarget`) so that it shows each picture at
 * the room's target latency.
 *
 * The delay: a browser shows a picture at about its arrival + max(the
 * delay we set, what its jitter buffer needs) + decode and render time.
 * So with `transit` (picture instant → arrival, measured per picture) the
 * delay for a target T is `T − transit − renderMs`, and when it exceeds
 * what the jitter buffer needs, every client shows every picture at T:
 * same instant everywhere, whatever each one's jitter estimate does.
 *
 * The target: at least `minTargetMs`, so that the delay usually does
 * dominate; else the largest latency the *others* report, less a small
 * decay (`decayMs`, or `decayFraction` of it if more), so that everyone
 * waits for a participant whose own jitter buffer needs more. Why not
 * "largest + margin": the reports are displayed latencies, which already
 * include everyone's delay, so a margin would feed back into itself and
 * ratchet the room up to the cap. With the decay, a room whose slowest
 * member leaves or speeds up drifts back down to the floor, a few percent
 * per report; the slowest member's own target is below its latency, so
 * its delay does nothing.
 */
export const EQUALISE = Object.freeze({
  /** Reports older than this (server µs) are ignored. */
  staleUs: 3_000_000,
  /** Bounds of the room target, ms. */
  minTargetMs: 120,
  maxTargetMs: 400,
  /** How far below the slowest other participant to aim (see above). */
  decayMs: 6,
  decayFraction: 0.03,
  /** Decode and render time after the playout delay, ms (Chromium: 8–10). */
  renderMs: 10,
  /** Smaller changes of the delay are not worth a glitch, ms. */
  changeMs: 4,
  /** The largest delay we set, ms (jitterBufferTarget accepts 0…4000). */
  maxDelayMs: 400,
});

/**
 * The room's target display latency in ms, from presence entries
 * (`{id, connected, latencyUs, lastFrameAt}`), excluding `you`.
 */
export function roomTargetMs(participants, you, nowUs, cfg = EQUALISE) {
  let max = null;
  for (const p of participants) {
    if (p.id === you || !p.connected || p.latencyUs == null || p.lastFrameAt == null) continue;
    if (nowUs - p.lastFrameAt > cfg.staleUs) continue;
    max = max == null ? p.latencyUs : Math.max(max, p.latencyUs);
  }
  let target = cfg.minTargetMs;
  if (max != null) {
    const maxMs = max / 1000;
    target = Math.max(target, maxMs - Math.max(cfg.decayMs, cfg.decayFraction * maxMs));
  }
  return Math.min(cfg.maxTargetMs, target);
}

/**
 * The playout delay (ms) that shows pictures at `targetMs` when they take
 * `transitMs` to arrive; `currentMs` is kept when the change would be
 * smaller than `changeMs`.
 */
export function delayForTargetMs(targetMs, transitMs, currentMs = 0, cfg = EQUALISE) {
  if (targetMs == null || transitMs == null) return currentMs;
  const next = Math.round(Math.min(cfg.maxDelayMs, Math.max(0, targetMs - transitMs - cfg.renderMs)));
  return Math.abs(next - currentMs) < cfg.changeMs ? currentMs : next;
}

/**
 * How far a participant's reported picture trails the room playhead:
 * frames (room frame − its frame at the report's instant; positive is
 * behind) and ms (its reported latency).
 */
export function reportedOffset(p, history, timeline) {
  if (p.lastFrame == null || p.lastFrameAt == null) return null;
  const room = history.frameAt(timeline, p.lastFrameAt);
  return {
    frames: room == null ? null : room - p.lastFrame,
    latencyMs: p.latencyUs == null ? null : p.latencyUs / 1000,
  };
}

/**
 * The spread of the room's displayed latencies (max − min, µs) over fresh
 * reports, or null with fewer than two. Two clients whose latencies differ
 * by d show the same frame d apart in time.
 */
export function latencySpreadUs(participants, nowUs, cfg = EQUALISE) {
  const ls = participants
    .filter((p) => p.connected && p.latencyUs != null && p.lastFrameAt != null && nowUs - p.lastFrameAt <= cfg.staleUs)
    .map((p) => p.latencyUs);
  if (ls.length < 2) return null;
  return { spreadUs: Math.max(...ls) - Math.min(...ls), count: ls.length };
}

/** "+1 f / 38 ms", the offset label used on the stage and in presence. */
export function offsetLabel(frames, latencyMs) {
  const f = frames == null ? '—' : `${frames > 0 ? '+' : frames < 0 ? '−' : '±'}${Math.abs(frames)} f`;
  const l = latencyMs == null ? '—' : `${Math.round(latencyMs)} ms`;
  return `${f} / ${l}`;
}

/**
 * A browser that holds pictures much longer than asked. After stalls (a
 * starved renderer, say) Chromium's receiver can raise its own playout
 * delay far above the one set, and a raised delay decays slowly: seen
 * at ~900 ms against a room at its 400 ms cap, one page then lags the
 * room by half a second. The equaliser cannot pull it back (the delay it
 * sets is only a floor), but a fresh receiver starts from nothing. So
 * when the page's own latency exceeds what it accounts for (transit +
 * the delay set + render) by more than `excessMs` for `sustainMs` of
 * play, it is told to restart its stream, at most once per `cooldownMs`.
 * A slow path is not excess: its transit accounts for it.
 */
export const HOLD = Object.freeze({ excessMs: 150, sustainMs: 3000, cooldownMs: 30_000 });

export class HoldWatch {
  constructor(cfg = HOLD) {
    this.cfg = cfg;
    this.since = null;
    this.restartedAt = -Infinity;
    this.restarts = 0;
  }

  /** How much longer than accounted for pictures are shown, ms, or null when unknown. */
  static excessMs({ latencyMs, transitMs, delayMs }, cfg = EQUALISE) {
    if (latencyMs == null || transitMs == null) return null;
    return latencyMs - transitMs - delayMs - cfg.renderMs;
  }

  /**
   * Takes the page's state at `nowMs` (`playing`, and the medians of
   * `latencyMs` and `transitMs` with the `delayMs` set); returns true
   * when the stream should be restarted now.
   */
  update(nowMs, state) {
    const excess = state.playing ? HoldWatch.excessMs(state) : null;
    if (excess == null || excess <= this.cfg.excessMs) {
      this.since = null;
      return false;
    }
    this.since ??= nowMs;
    if (nowMs - this.since < this.cfg.sustainMs || nowMs - this.restartedAt < this.cfg.cooldownMs) return false;
    this.since = null;
    this.restartedAt = nowMs;
    this.restarts += 1;
    return true;
  }
}
