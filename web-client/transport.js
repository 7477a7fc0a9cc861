// The shared playhead as a pure function of server time: a mirror of
// `Transport::position` in src/clock.rs. Every participant evaluates the
// same function on the same anchor, so the room agrees without streaming
// positions. The Rust does this in exact i128 arithmetic; here the products
// go through BigInt, because elapsed µs × 60000 × 4 passes 2^53 after a few
// hours. No float ever touches media time.

const I64_MAX = (1n << 63n) - 1n;
const I64_MIN = -(1n << 63n);

const saturate = (v) => (v > I64_MAX ? I64_MAX : v < I64_MIN ? I64_MIN : v);

// Rust's rem_euclid on BigInt: never negative for a positive divisor.
function remEuclid(a, b) {
  const r = a % b;
  return r < 0n ? r + b : r;
}

/** The shuttle speeds the server accepts, in wire form. */
export const SPEEDS = Object.freeze([-4, -3, -2, -1, 0.5, 1, 2, 3, 4]);

/**
 * A wire speed as an exact fraction {num, den}. Halves are the only
 * non-integers in the shuttle set and are exact in binary, so this is exact.
 */
export function speedFraction(speed) {
  if (!SPEEDS.includes(speed)) throw new RangeError(`speed ${speed} is not in the shuttle set`);
  return Number.isInteger(speed) ? { num: speed, den: 1 } : { num: speed * 2, den: 2 };
}

/**
 * The frame on screen at `nowUs` (server µs) for a wire transport
 * `{playing, speed, anchorFrame, anchorTime, loopIn, loopOut}` on a timeline
 * `{fpsNum, fpsDen, duration}`.
 */
export function position(transport, timeline, nowUs) {
  const last = BigInt(timeline.duration - 1);
  const clamp = (f) => (f < 0n ? 0n : f > last ? last : f);
  const anchor = BigInt(transport.anchorFrame);
  if (!transport.playing) return Number(clamp(anchor));
  const speed = speedFraction(transport.speed);
  const reverse = speed.num < 0;
  const advanced = framesElapsed(timeline, speed, transport.anchorTime, nowUs);
  const raw = saturate(reverse ? anchor - advanced : anchor + advanced);
  return Number(clamp(wrap(transport, reverse, raw)));
}

/** Whole frames played between two server instants, never negative. */
function framesElapsed(timeline, speed, fromUs, toUs) {
  const elapsed = BigInt(Math.round(toUs)) - BigInt(Math.round(fromUs));
  if (elapsed <= 0n) return 0n;
  const numer = elapsed * BigInt(timeline.fpsNum) * BigInt(Math.abs(speed.num));
  const denom = 1000000n * BigInt(timeline.fpsDen) * BigInt(speed.den);
  const frames = numer / denom;
  return frames > I64_MAX ? I64_MAX : frames;
}

/**
 * The loop range the playback runs into, or null. A forward play that
 * starts after the loop (or a reverse play that starts before it) ignores
 * it and runs to the end of the media, as in the Rust.
 */
export function engagedLoop(transport, reverse) {
  const { loopIn, loopOut } = transport;
  if (loopIn == null || loopOut == null || loopIn > loopOut) return null;
  const engaged = reverse ? transport.anchorFrame >= loopIn : transport.anchorFrame <= loopOut;
  return engaged ? { first: BigInt(loopIn), last: BigInt(loopOut) } : null;
}

function wrap(transport, reverse, raw) {
  const range = engagedLoop(transport, reverse);
  if (!range) return raw;
  const len = range.last - range.first + 1n;
  if (reverse && raw < range.first) return range.last - remEuclid(range.last - raw, len);
  if (!reverse && raw > range.last) return range.first + remEuclid(raw - range.first, len);
  return raw;
}

/**
 * Transport changes waiting for their execute-at instant. The server stamps
 * each change a little in the future so that every client switches at the
 * same server instant; until then the previous transport stays on screen.
 * Entries are kept in version order, and the newest one that is due wins,
 * because a later command can be scheduled sooner than an earlier one when
 * the server's lead shrinks.
 */
export class TransportSchedule {
  constructor() {
    this.reset(null, 0);
  }

  /** Replaces everything, as a welcome or snapshot does. */
  reset(transport, version) {
    this.current = transport;
    this.currentVersion = version;
    this.pending = [];
  }

  /** Queues a change; the caller has already dropped stale versions. */
  push(version, executeAt, transport) {
    this.pending.push({ version, executeAt, transport });
    this.pending.sort((a, b) => a.version - b.version);
  }

  /** Promotes whatever is due at `nowUs` and returns the transport in effect. */
  at(nowUs) {
    let due = -1;
    for (let i = 0; i < this.pending.length; i++) {
      if (this.pending[i].executeAt <= nowUs) due = i;
    }
    if (due >= 0) {
      const entry = this.pending[due];
      this.current = entry.transport;
      this.currentVersion = entry.version;
      this.pending = this.pending.slice(due + 1);
    }
    return this.current;
  }

  /** The latest known transport, due or not: what the next command builds on. */
  newest() {
    return this.pending.length ? this.pending[this.pending.length - 1].transport : this.current;
  }
}
