// Strokes while they are drawn: what the author sends when, and how the
// room's copies grow, give way and expire. Time is passed in, so every
// case runs on made-up instants.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_POINTS, Stroke } from '../drawing.js';
import {
  LIVE_STROKE_TTL_MS, LiveStrokes, PART_EVERY_MS, RESEND_IDLE_MS, StrokeParts,
} from '../strokes.js';

const style = (tool, extra = {}) => ({ tool, colour: '#FF3300', width: 0.006, ...extra });
const parts = (tool, extra) => new StrokeParts('k1', 245, style(tool, extra));

/** A part as the server passes it on: from author `by`, with the version on screen. */
const relayed = (msg, by = 3, versionId = 'v1') => ({ ...msg, by, versionId });

test('a pen sends its new points at most every 100 ms, each part saying where it starts', () => {
  const p = parts('pen');
  const path = [[0.1, 0.1]];
  assert.deepEqual(p.next(path, 0, 1000), {
    type: 'stroke', key: 'k1', frame: 245, tool: 'pen', colour: '#ff3300', width: 0.006, from: 0, points: [[0.1, 0.1]],
  });
  path.push([0.2, 0.1]);
  assert.equal(p.next(path, 0, 1000 + PART_EVERY_MS - 1), null, 'too soon');
  path.push([0.3, 0.123456]);
  const second = p.next(path, 0, 1000 + PART_EVERY_MS);
  assert.equal(second.from, 1);
  assert.deepEqual(second.points, [[0.2, 0.1], [0.3, 0.1235]], 'rounded as a drawing is');
  assert.equal(p.next(path, 0, 1300), null, 'nothing new');
  // Just before the drawing, the rest goes whatever the pace.
  path.push([0.4, 0.1]);
  assert.deepEqual(p.next(path, 0, 1310, { final: true }), { ...second, from: 3, points: [[0.4, 0.1]] });
  assert.equal(p.next(path, 0, 1320, { final: true }), null, 'nothing left to send');
});

test('a pen stroke goes again from 0 after a thinning, a reconnection, or a long stillness', () => {
  const p = parts('pen');
  const path = [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]];
  assert.equal(p.next(path, 0, 0).from, 0);
  // Thinned: the old indices hold other points now.
  const thinned = [[0.1, 0.1], [0.3, 0.3], [0.35, 0.3]];
  const whole = p.next(thinned, 1, 200);
  assert.deepEqual([whole.from, whole.points], [0, thinned]);
  assert.equal(p.next([...thinned, [0.4, 0.3]], 1, 300).from, 3);
  // A new connection: the room may hold nothing of it.
  p.restart();
  const again = p.next([...thinned, [0.4, 0.3]], 1, 310);
  assert.equal(again.from, 0);
  assert.equal(again.points.length, 4);
  // Held still: nothing new to send, but the room's copy must not expire.
  assert.equal(p.next([...thinned, [0.4, 0.3]], 1, 310 + RESEND_IDLE_MS - 1), null);
  const kept = p.next([...thinned, [0.4, 0.3]], 1, 310 + RESEND_IDLE_MS);
  assert.equal(kept.from, 0);
  assert.equal(kept.points.length, 4);
  assert.ok(RESEND_IDLE_MS < LIVE_STROKE_TTL_MS / 2, 'one lost resend is survived');
});

test('an arrow or a box sends both ends, from 0, only once it is a shape and only when they move', () => {
  for (const tool of ['arrow', 'rect']) {
    const p = parts(tool);
    assert.equal(p.next([[0.2, 0.2], [0.2, 0.2]], 0, 0), null, `${tool}: a press is no shape yet`);
    assert.equal(p.end(), null, `${tool}: nothing to take down`);
    const first = p.next([[0.2, 0.2], [0.3, 0.25]], 0, 10);
    assert.deepEqual([first.tool, first.from, first.points], [tool, 0, [[0.2, 0.2], [0.3, 0.25]]]);
    assert.equal(p.next([[0.2, 0.2], [0.3, 0.25]], 0, 200), null, `${tool}: unmoved`);
    assert.equal(p.next([[0.2, 0.2], [0.5, 0.6]], 0, 50), null, `${tool}: too soon`);
    assert.deepEqual(p.next([[0.2, 0.2], [0.5, 0.6]], 0, 210).points, [[0.2, 0.2], [0.5, 0.6]]);
    const kept = p.next([[0.2, 0.2], [0.5, 0.6]], 0, 210 + RESEND_IDLE_MS);
    assert.deepEqual(kept.points, [[0.2, 0.2], [0.5, 0.6]], `${tool}: kept alive`);
    assert.deepEqual(p.end(), { type: 'strokeEnd', key: 'k1' });
  }
});

test('a pen abandoned before any part went needs no strokeEnd', () => {
  const p = parts('pen');
  assert.equal(p.end(), null);
  p.next([[0.5, 0.5]], 0, 0);
  assert.deepEqual(p.end(), { type: 'strokeEnd', key: 'k1' });
});

/**
 * Draws a pen stroke through `path` at 60 samples a second, polling the
 * sender on every sample as the page's animation loop does, and hands
 * every part to a room's copy. Returns the stroke, the parts and the copy.
 */
function drawAndRelay(path, { tool = 'pen', hz = 60 } = {}) {
  const stroke = new Stroke(tool, path[0], { colour: '#ffd60a', aspect: 16 / 9 });
  const sender = new StrokeParts('k9', 10, stroke);
  const room = new LiveStrokes();
  const sent = [];
  let now = 0;
  const relay = (msg) => {
    if (!msg) return;
    sent.push(msg);
    room.apply(relayed(msg), now);
  };
  relay(sender.next(stroke.progress(), stroke.thinnings, now));
  for (const p of path.slice(1)) {
    now += 1000 / hz;
    stroke.add(p);
    relay(sender.next(stroke.progress(), stroke.thinnings, now));
  }
  const shape = stroke.finish();
  relay(sender.next(shape.points, stroke.thinnings, now, { final: true }));
  return { stroke, shape, sent, room, ms: now };
}

test('parts relayed in order rebuild the whole stroke, at no more than ten a second', () => {
  // Rounded, as toPicture hands pointer positions over.
  const r = (v) => Math.round(v * 1e4) / 1e4;
  const wave = Array.from({ length: 180 }, (_, i) => [r(0.1 + i * 0.004), r(0.5 + 0.2 * Math.sin(i / 10))]);
  const { shape, sent, room, ms } = drawAndRelay(wave);
  assert.deepEqual(room.all().map((s) => s.points), [shape.points]);
  const [copy] = room.all();
  assert.deepEqual([copy.by, copy.key, copy.frame, copy.colour, copy.tool], [3, 'k9', 10, '#ffd60a', 'pen']);
  // The first part at the press, then one per 100 ms, then the final one.
  assert.ok(sent.length <= Math.floor(ms / PART_EVERY_MS) + 2, `${sent.length} parts in ${ms} ms`);
  assert.ok(sent.length >= Math.floor(ms / PART_EVERY_MS), `${sent.length} parts in ${ms} ms`);
  sent.slice(1).forEach((m, i) => assert.equal(m.from, sent[i].from + sent[i].points.length, 'each part follows the last'));
});

test('a scribble long enough to be thinned still ends whole in the room, within the server\'s limit', () => {
  const scribble = Array.from({ length: 5000 }, (_, i) => [(i % 100) / 100, Math.floor(i / 100) / 50]);
  const { stroke, shape, sent, room } = drawAndRelay(scribble, { hz: 1000 });
  assert.ok(stroke.thinnings > 0);
  assert.deepEqual(room.all()[0].points, shape.points);
  for (const m of sent) assert.ok(m.from + m.points.length <= MAX_POINTS, `part from ${m.from} of ${m.points.length}`);
});

test('a pen copy starts at from 0, grows by the part that follows it, and waits out a missing part', () => {
  const room = new LiveStrokes();
  const part = (from, points, by = 3) => relayed({
    type: 'stroke', key: 'k1', frame: 245, ...style('pen'), colour: '#ff3300', from, points,
  }, by);
  assert.equal(room.apply(part(2, [[0.3, 0.3]]), 0), false, 'joined midway: nothing to extend');
  assert.equal(room.size, 0);
  assert.equal(room.apply(part(0, [[0.1, 0.1], [0.2, 0.2]]), 0), true);
  assert.equal(room.apply(part(2, [[0.3, 0.3]]), 100), true);
  assert.deepEqual(room.all()[0].points, [[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]);
  // Part 3.. went missing: 4.. cannot follow on.
  assert.equal(room.apply(part(4, [[0.5, 0.5]]), 300), false);
  assert.equal(room.apply(part(1, [[0.9, 0.9]]), 350), false, 'nor can an old one');
  assert.equal(room.all()[0].points.length, 3);
  // From 0 starts it afresh.
  assert.equal(room.apply(part(0, [[0.6, 0.6]]), 400), true);
  assert.deepEqual(room.all()[0].points, [[0.6, 0.6]]);
  // Another author's stroke under the same key is another stroke.
  room.apply(part(0, [[0.1, 0.9]], 4), 400);
  assert.deepEqual(room.all().map((s) => [s.by, s.points.length]), [[3, 1], [4, 1]]);
  assert.equal(room.apply(part(0, null), 400), false, 'malformed');
});

test('an arrow or a box copy is replaced by each part', () => {
  const room = new LiveStrokes();
  const part = (points) => relayed({ type: 'stroke', key: 'a1', frame: 7, ...style('arrow'), from: 0, points });
  assert.ok(room.apply(part([[0.1, 0.1], [0.2, 0.2]]), 0));
  assert.ok(room.apply(part([[0.1, 0.1], [0.5, 0.4]]), 100));
  assert.deepEqual(room.all().map((s) => s.points), [[[0.1, 0.1], [0.5, 0.4]]]);
});

test('a copy goes on strokeEnd, when its drawing comes, when its author leaves, or after 5 s unheard', () => {
  const room = new LiveStrokes();
  const start = (by, key, at, frame = 245, versionId = 'v1') => room.apply(relayed({
    type: 'stroke', key, frame, ...style('pen'), from: 0, points: [[0.5, 0.5]],
  }, by, versionId), at);
  start(3, 'a', 0);
  start(3, 'b', 0);
  start(4, 'c', 0, 246);
  start(5, 'd', 0);
  assert.deepEqual(room.onFrame(245).map((s) => s.key), ['a', 'b', 'd']);
  assert.deepEqual(room.onFrame(246).map((s) => [s.key, s.versionId]), [['c', 'v1']]);

  assert.equal(room.end(4, 'a'), false, 'another author\'s key');
  assert.equal(room.end(3, 'a'), true);
  assert.equal(room.finished('b'), true);
  assert.equal(room.finished('b'), false);
  assert.equal(room.keepAuthors((by) => by !== 4), true);
  assert.equal(room.keepAuthors((by) => by !== 4), false);
  assert.deepEqual(room.all().map((s) => s.key), ['d']);

  // A part that could not be used still says its author is drawing.
  room.apply(relayed({ type: 'stroke', key: 'd', frame: 245, ...style('pen'), from: 9, points: [[0.1, 0.1]] }, 5), 3000);
  assert.equal(room.expire(3000 + LIVE_STROKE_TTL_MS - 1), false);
  assert.equal(room.expire(3000 + LIVE_STROKE_TTL_MS), true);
  assert.equal(room.size, 0);

  start(6, 'e', 0);
  assert.equal(room.clear(), true);
  assert.equal(room.clear(), false);
});
