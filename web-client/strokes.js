// Drawings while they are drawn (`stroke` and `strokeEnd` in
// docs/protocol.md), both ways. The author's side decides what part of
// the stroke under the pointer to send and when: about ten a second, a
// pen only its new points. The room's side keeps everyone else's strokes
// until the finished drawing replaces them or they are given up. Parts
// are disposable previews: nothing here is queued or retried, since the
// finished drawing travels through the outbox on its own. No DOM, no
// socket, no clock reads: callers pass the time in (milliseconds, any
// monotonic origin), so node tests it.

import { MAX_POINTS } from './drawing.js';

/**
 * Between two parts of the author's stroke. With frame reports at up to
 * four a second, ten parts stay well inside the server's 30 messages a
 * second per connection, and ten updates a second read as motion.
 */
export const PART_EVERY_MS = 100;
/**
 * An author who holds still sends nothing new; after this long the whole
 * stroke goes again, so that it outlives the room's expiry (a pen part
 * cannot just repeat its last point: that would extend the copies).
 */
export const RESEND_IDLE_MS = 2000;
/**
 * A stroke nobody has sent a part of for this long is dropped: its
 * author's connection may be gone, and the finished shape, if any, will
 * come through the outbox.
 */
export const LIVE_STROKE_TTL_MS = 5000;

const ROUND = 1e4;
const round = (v) => Math.round(v * ROUND) / ROUND;
const samePoint = (a, b) => a[0] === b[0] && a[1] === b[1];

/**
 * What of one stroke, drawn by this author on `frame` under `key` (the
 * key its `drawing` will carry), to send as it grows.
 */
export class StrokeParts {
  constructor(key, frame, { tool, colour, width }) {
    this.key = key;
    this.fields = { frame, tool, colour: colour.toLowerCase(), width };
    this.sentAt = -Infinity;
    // Whether the room may hold a copy, which an abandoned stroke must take down.
    this.started = false;
    // A pen's points the room has, and the path's thinnings at the time
    // (after a thinning, those indices hold other points).
    this.sentCount = 0;
    this.thinnings = 0;
    // An arrow's or box's ends as last sent.
    this.sentEnds = null;
  }

  /**
   * The `stroke` message to send at `now` for the stroke's `points` so
   * far (Stroke.progress()) after `thinnings` thinnings, or null when
   * nothing is due: too soon after the last part, or nothing changed.
   * `final` (just before the drawing goes) ignores the pace, so the
   * room's copy is whole while the drawing is being stored.
   */
  next(points, thinnings, now, { final = false } = {}) {
    if (!final && now - this.sentAt < PART_EVERY_MS) return null;
    const idle = now - this.sentAt >= RESEND_IDLE_MS;
    let from;
    let part;
    if (this.fields.tool === 'pen') {
      const again = thinnings !== this.thinnings || points.length < this.sentCount || (idle && this.started);
      from = again ? 0 : this.sentCount;
      part = points.slice(from, MAX_POINTS);
      if (!part.length) return null;
      this.sentCount = from + part.length;
      this.thinnings = thinnings;
    } else {
      const [start, end] = points;
      // Until the pointer moves off the press there is no shape to show.
      if (samePoint(start, end)) return null;
      const moved = !this.sentEnds || !samePoint(this.sentEnds[0], start) || !samePoint(this.sentEnds[1], end);
      if (!moved && !idle) return null;
      from = 0;
      part = [start, end];
      this.sentEnds = part;
    }
    this.sentAt = now;
    this.started = true;
    return {
      type: 'stroke', key: this.key, ...this.fields, from, points: part.map(([x, y]) => [round(x), round(y)]),
    };
  }

  /** The next part starts the stroke afresh: a new connection, whose room may hold none of it. */
  restart() {
    this.sentCount = 0;
    this.sentEnds = null;
    this.sentAt = -Infinity;
  }

  /** The `strokeEnd` that takes the room's copies down, or null when none were sent. */
  end() {
    return this.started ? { type: 'strokeEnd', key: this.key } : null;
  }
}

const idOf = (by, key) => `${by}|${key}`;

/**
 * Everyone else's strokes in progress, per (author, key), each with the
 * time its last part came. Listed in the order they started, so that
 * the newest paints on top.
 */
export class LiveStrokes {
  constructor() {
    this.byId = new Map();
  }

  /**
   * Takes a `stroke` part that came at `now`. A pen part from 0 starts
   * the stroke afresh and one from the points held extends it; any other
   * (a part went missing) leaves it as it is until its drawing comes. An
   * arrow or box is replaced whole. Returns whether what shows changed.
   */
  apply(msg, now) {
    if (!Array.isArray(msg.points) || !Number.isInteger(msg.from)) return false;
    const id = idOf(msg.by, msg.key);
    const held = this.byId.get(id);
    // A missed part: still, its author is drawing, so it is not stale.
    if (held) held.heardAt = now;
    let points;
    if (msg.tool !== 'pen' || msg.from === 0) points = msg.points;
    else if (held && held.tool === 'pen' && msg.from === held.points.length) points = held.points.concat(msg.points);
    else return false;
    const stroke = {
      by: msg.by, key: msg.key, frame: msg.frame, versionId: msg.versionId ?? null,
      tool: msg.tool, colour: msg.colour, width: msg.width, points, heardAt: now,
    };
    this.byId.set(id, stroke);
    return true;
  }

  /** `strokeEnd`: author `by` gave stroke `key` up. Returns whether one went. */
  end(by, key) {
    return this.byId.delete(idOf(by, key));
  }

  /** The drawing with `key` arrived: it replaces the stroke. Returns whether one went. */
  finished(key) {
    let gone = false;
    for (const [id, s] of this.byId) {
      if (s.key === key) gone = this.byId.delete(id) || gone;
    }
    return gone;
  }

  /** Drops the strokes of authors no longer in the room (`present(by)` false). Returns whether any went. */
  keepAuthors(present) {
    let gone = false;
    for (const [id, s] of this.byId) {
      if (!present(s.by)) gone = this.byId.delete(id) || gone;
    }
    return gone;
  }

  /** Drops the strokes with no part for LIVE_STROKE_TTL_MS by `now`. Returns whether any went. */
  expire(now) {
    let gone = false;
    for (const [id, s] of this.byId) {
      if (now - s.heardAt >= LIVE_STROKE_TTL_MS) gone = this.byId.delete(id) || gone;
    }
    return gone;
  }

  /** Drops them all (a new room state). Returns whether there were any. */
  clear() {
    const had = this.byId.size > 0;
    this.byId.clear();
    return had;
  }

  /** The strokes drawn over `frame`, oldest first. */
  onFrame(frame) {
    return this.all().filter((s) => s.frame === frame);
  }

  all() {
    return [...this.byId.values()];
  }

  get size() {
    return this.byId.size;
  }
}
