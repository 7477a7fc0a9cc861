// Drawing geometry: where the picture sits in its element, pointer ↔
// picture points, the arrow's head (as src/drawing.rs draws it), the
// eraser's hit test, strokes in progress, and the room's drawing list.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  DEFAULT_WIDTH, Drawings, MAX_POINTS, NO_MEDIA_PICTURE, Stroke, drawingMessage, erased, fromPicture, hits,
  onPicture, pictureRect, pointToSegment, segmentToSegment, segments, shapeProblem, toPicture,
} from '../drawing.js';

const near = (actual, expected, eps = 1e-9, what = '') => {
  assert.ok(Math.abs(actual - expected) <= eps, `${what} ${actual} is not within ${eps} of ${expected}`);
};

const nearPoint = (actual, expected, eps = 1e-9) => {
  near(actual[0], expected[0], eps, 'x');
  near(actual[1], expected[1], eps, 'y');
};

const pen = (points, extra = {}) => ({ tool: 'pen', colour: '#ff3300', width: 0.01, points, ...extra });
const shape = (tool, points, extra = {}) => ({ tool, colour: '#ffffff', width: 0.01, points, ...extra });
const drawing = (id, frame, extra = {}) => ({
  id, key: `k${id}`, frame, ...pen([[0.1, 0.1], [0.2, 0.2]]), author: 'Dana', authorRole: 'reviewer', createdAt: 1, ...extra,
});

test('the picture rect follows object-fit: contain', () => {
  const check = (box, source, expected) => {
    const r = pictureRect(box[0], box[1], source[0], source[1]);
    for (const k of ['x', 'y', 'width', 'height']) near(r[k], expected[k], 1e-9, `${k} of ${box} ⊃ ${source}:`);
  };
  // The monitor at 1280×800: wider than 16:9, so the picture is pillarboxed.
  check([858, 448], [640, 360], { x: (858 - 448 * 16 / 9) / 2, y: 0, width: 448 * 16 / 9, height: 448 });
  // A 4:3 box: letterboxed top and bottom.
  check([800, 600], [1280, 720], { x: 0, y: 75, width: 800, height: 450 });
  // An exact fit, and a tall 9:16 source in a wide box.
  check([1280, 720], [640, 360], { x: 0, y: 0, width: 1280, height: 720 });
  check([1000, 500], [9, 16], { x: 500 - 500 * 9 / 32, y: 0, width: 500 * 9 / 16, height: 500 });
  // Without a source size (no picture yet) the picture is the box; without a box, nothing.
  check([858, 448], [0, 0], { x: 0, y: 0, width: 858, height: 448 });
  check([0, 448], [640, 360], { x: 0, y: 0, width: 0, height: 0 });
  assert.deepEqual(NO_MEDIA_PICTURE, { width: 16, height: 9 });
});

test('element points map to picture points and back; off the picture they clamp to its edge', () => {
  const rect = pictureRect(858, 448, 16, 9);
  for (const p of [[0, 0], [1, 1], [0.25, 0.75], [0.5, 0.5], [0.1234, 0.9876]]) {
    const [x, y] = fromPicture(p, rect);
    nearPoint(toPicture(x, y, rect), p, 1e-4);
  }
  // The left pillar is not picture: a stroke that runs into it follows the edge.
  assert.deepEqual(toPicture(5, 224, rect), [0, 0.5]);
  assert.deepEqual(toPicture(900, -20, rect), [1, 0]);
  assert.ok(!onPicture(5, 224, rect));
  assert.ok(onPicture(rect.x + 1, 224, rect));
  assert.ok(onPicture(rect.x + rect.width, rect.y + rect.height, rect));
  // Four decimals: a tenth of a pixel at 4K, and short on the wire.
  const [nx] = toPicture(rect.x + rect.width / 3, 0, rect);
  assert.equal(nx, 0.3333);
  assert.deepEqual(toPicture(10, 10, { x: 0, y: 0, width: 0, height: 0 }), [0, 0]);
});

test('shapes break into the segments they are drawn with', () => {
  assert.deepEqual(segments(pen([[0.5, 0.5]]), 1), [[[0.5, 0.5], [0.5, 0.5]]]);
  assert.deepEqual(segments(pen([[0, 0], [0.1, 0], [0.1, 0.1]]), 1), [[[0, 0], [0.1, 0]], [[0.1, 0], [0.1, 0.1]]]);
  const rect = segments(shape('rect', [[0.2, 0.2], [0.8, 0.6]]), 1);
  assert.equal(rect.length, 4);
  // A closed outline: each side starts where the last ended.
  rect.forEach(([, end], i) => assert.deepEqual(end, rect[(i + 1) % 4][0]));
  assert.deepEqual(rect.map(([a]) => a), [[0.2, 0.2], [0.8, 0.2], [0.8, 0.6], [0.2, 0.6]]);
  assert.deepEqual(segments(shape('lasso', [[0, 0]]), 1), []);
});

test('an arrow has two barbs running back from its tip, as the server paints it', () => {
  // src/drawing.rs's test arrow: 0.1 → 0.9 across the middle of a 2:1 picture.
  const arrow = shape('arrow', [[0.1, 0.5], [0.9, 0.5]]);
  const segs = segments(arrow, 2);
  assert.equal(segs.length, 3);
  assert.deepEqual(segs[0], [[0.1, 0.5], [0.9, 0.5]]);
  // The head is capped at 0.08 picture heights; 30° either side.
  const ends = segs.slice(1).map(([from, to]) => {
    assert.deepEqual(from, [0.9, 0.5]);
    return to;
  }).sort((a, b) => a[1] - b[1]);
  nearPoint(ends[0], [0.9 - (0.866 * 0.08) / 2, 0.46], 1e-9);
  nearPoint(ends[1], [0.9 - (0.866 * 0.08) / 2, 0.54], 1e-9);
  // A short arrow's head is a quarter of it, but never under 3 widths.
  const short = segments(shape('arrow', [[0.5, 0.5], [0.5, 0.6]], { width: 0.01 }), 1);
  // (cos 30° is taken as 0.866, as the server does.)
  near(Math.hypot(short[1][1][0] - 0.5, short[1][1][1] - 0.6), 0.03, 1e-4, 'head');
  // The head keeps its angle on a wide picture: barbs mirror about the shaft.
  const wide = segments(shape('arrow', [[0.2, 0.2], [0.6, 0.7]]), 16 / 9);
  const [b1, b2] = [wide[1][1], wide[2][1]];
  const shaft = [0.4 * 16 / 9, 0.5];
  const angle = (b) => {
    const v = [(b[0] - 0.6) * 16 / 9, b[1] - 0.7];
    return Math.acos(-(v[0] * shaft[0] + v[1] * shaft[1]) / (Math.hypot(...v) * Math.hypot(...shaft))) * 180 / Math.PI;
  };
  near(angle(b1), 30, 0.01, 'barb angle');
  near(angle(b2), 30, 0.01, 'barb angle');
  // A zero-length arrow is only its shaft.
  assert.equal(segments(shape('arrow', [[0.3, 0.3], [0.3, 0.3]]), 1).length, 1);
});

test('distances to segments, and between segments', () => {
  near(pointToSegment([0.5, 1], [0, 0], [1, 0]), 1);
  near(pointToSegment([2, 0], [0, 0], [1, 0]), 1, 1e-12, 'past the end');
  near(pointToSegment([3, 4], [0, 0], [0, 0]), 5, 1e-12, 'degenerate');
  assert.equal(segmentToSegment([0, -1], [0, 1], [-1, 0], [1, 0]), 0, 'crossing');
  near(segmentToSegment([0, 1], [1, 1], [0, 0], [1, 0]), 1, 1e-12, 'parallel');
  near(segmentToSegment([2, 0], [3, 0], [0, 0], [1, 0]), 1, 1e-12, 'collinear, apart');
  near(segmentToSegment([0.5, 0.2], [0.5, 5], [0, 0], [1, 0]), 0.2, 1e-12, 'T short of touching');
});

test('the eraser hits a shape it passes within tolerance of, and only then', () => {
  const line = pen([[0.2, 0.5], [0.8, 0.5]], { width: 0.01 });
  const tol = 0.015;
  assert.ok(hits(line, [0.5, 0.51], [0.5, 0.51], tol, 1), 'on the line');
  assert.ok(hits(line, [0.5, 0.519], [0.5, 0.519], tol, 1), 'within tolerance + half the width');
  assert.ok(!hits(line, [0.5, 0.53], [0.5, 0.53], tol, 1), 'beyond it');
  assert.ok(!hits(line, [0.9, 0.5], [0.9, 0.5], tol, 1), 'past the end');
  // A fast swipe whose samples land either side of the line still takes it.
  assert.ok(hits(line, [0.5, 0.3], [0.5, 0.7], tol, 1), 'swiped across');
  assert.ok(!hits(line, [0.5, 0.3], [0.5, 0.45], tol, 1), 'swiped short of it');
  // A thick stroke is hit further out.
  assert.ok(hits({ ...line, width: 0.05 }, [0.5, 0.535], [0.5, 0.535], tol, 1));

  // Distances are in picture heights: on a wide picture, 0.01 of the width is further.
  const vertical = pen([[0.5, 0.2], [0.5, 0.8]], { width: 0.002 });
  assert.ok(hits(vertical, [0.51, 0.5], [0.51, 0.5], tol, 1));
  assert.ok(!hits(vertical, [0.51, 0.5], [0.51, 0.5], tol, 4));

  // A box is its outline: the middle of it is not ink.
  const box = shape('rect', [[0.2, 0.2], [0.8, 0.8]]);
  assert.ok(!hits(box, [0.5, 0.5], [0.5, 0.5], tol, 1));
  assert.ok(hits(box, [0.5, 0.205], [0.5, 0.205], tol, 1));
  // An arrow's barbs are ink too.
  const arrow = shape('arrow', [[0.1, 0.5], [0.9, 0.5]]);
  const onBarb = [0.9 - (0.866 * 0.08) / 4, 0.48];
  assert.ok(hits(arrow, onBarb, onBarb, 0.005, 2));
  assert.ok(!hits({ ...arrow, tool: 'pen' }, onBarb, onBarb, 0.005, 2), 'the same two points as a line have no head');
  // A dot is hit near its centre.
  assert.ok(hits(pen([[0.3, 0.3]]), [0.31, 0.3], [0.31, 0.3], tol, 1));
});

test('erased() names exactly the shapes hit', () => {
  const shapes = [
    { id: 1, ...pen([[0.1, 0.1], [0.3, 0.1]]) },
    { id: 2, ...shape('rect', [[0.4, 0.4], [0.6, 0.6]]) },
    { id: 3, ...pen([[0.1, 0.9], [0.3, 0.9]]) },
  ];
  assert.deepEqual(erased(shapes, [0.2, 0.05], [0.5, 0.41], 1), [1, 2]);
  assert.deepEqual(erased(shapes, [0.9, 0.9], [0.9, 0.9], 1), []);
  assert.deepEqual(erased(shapes, [0.2, 0.9], [0.2, 0.9], 16 / 9), [3]);
});

test('shapes are checked as the server checks them', () => {
  assert.equal(shapeProblem(pen([[0, 0], [1, 1]])), null);
  assert.equal(shapeProblem(pen([])), 'points');
  assert.equal(shapeProblem(pen(Array(MAX_POINTS + 1).fill([0.5, 0.5]))), 'points');
  assert.equal(shapeProblem(pen(Array(MAX_POINTS).fill([0.5, 0.5]))), null);
  assert.equal(shapeProblem(pen([[1.01, 0.5]])), 'points');
  assert.equal(shapeProblem(pen([[Number.NaN, 0.5]])), 'points');
  assert.equal(shapeProblem(shape('arrow', [[0.1, 0.1]])), 'points');
  assert.equal(shapeProblem(shape('rect', [[0.1, 0.1], [0.2, 0.2]], { colour: '#fff' })), 'colour');
  assert.equal(shapeProblem(shape('rect', [[0.1, 0.1], [0.2, 0.2]], { width: 0.5 })), 'width');
  assert.equal(shapeProblem(shape('rect', [[0.1, 0.1], [0.2, 0.2]], { width: 0.0005 })), 'width');
  assert.equal(shapeProblem(shape('lasso', [])), 'tool');
  assert.equal(shapeProblem(null), 'tool');
});

test('a pen stroke keeps its path, thinned, and always its last point', () => {
  const s = new Stroke('pen', [0.1, 0.1], { colour: '#ff0000', aspect: 1 });
  s.add([0.1005, 0.1]); // too close to add anything
  s.add([0.2, 0.1]);
  s.add([0.2, 0.1005]);
  // The room is shown the points that stay; where the pointer is now is
  // replaced by the next move.
  assert.deepEqual(s.progress(), [[0.1, 0.1], [0.2, 0.1]]);
  const shape = s.finish();
  assert.deepEqual(shape.points, [[0.1, 0.1], [0.2, 0.1], [0.2, 0.1005]]);
  assert.equal(shape.width, DEFAULT_WIDTH);
  assert.equal(shape.colour, '#ff0000');
  // A click with the pen is a dot.
  assert.deepEqual(new Stroke('pen', [0.4, 0.4], { colour: '#ff0000' }).finish().points, [[0.4, 0.4]]);
});

test('a very long pen stroke halves its detail instead of passing the server\'s limit', () => {
  const s = new Stroke('pen', [0, 0], { colour: '#ffffff', aspect: 1 });
  for (let i = 1; i <= 5000; i++) s.add([(i % 100) / 100, Math.floor(i / 100) / 50]);
  assert.ok(s.thinnings >= 1, 'thinned, so copies by index start again');
  const shape = s.finish();
  assert.ok(shape.points.length <= MAX_POINTS, `${shape.points.length} points`);
  assert.ok(shape.points.length > MAX_POINTS / 4, `${shape.points.length} points`);
  assert.deepEqual(shape.points[shape.points.length - 1], [0, 1]);
  assert.equal(shapeProblem(shape), null);
});

test('arrows and boxes span from the press to the release; a click is not a shape', () => {
  const arrow = new Stroke('arrow', [0.2, 0.2], { colour: '#00ff00' });
  arrow.add([0.3, 0.25]);
  arrow.add([0.6, 0.7]);
  assert.deepEqual(arrow.progress(), [[0.2, 0.2], [0.6, 0.7]]);
  assert.deepEqual(arrow.finish().points, [[0.2, 0.2], [0.6, 0.7]]);
  const box = new Stroke('rect', [0.6, 0.7], { colour: '#00ff00' });
  box.add([0.2, 0.1]);
  assert.deepEqual(box.shape().points, [[0.6, 0.7], [0.2, 0.1]]);
  const click = new Stroke('rect', [0.5, 0.5], { colour: '#00ff00' });
  click.add([0.502, 0.501]);
  assert.equal(click.finish(), null);
});

test('the room\'s drawings: erased ones go, lookups by frame, and what a resend needs', () => {
  const d = new Drawings();
  d.replace([drawing(3, 245), drawing(1, 245), drawing(2, 10), drawing(9, 245, { erasedBy: 'Host', erasedAt: 2 })]);
  assert.deepEqual(d.onFrame(245).map((x) => x.id), [1, 3]);
  assert.deepEqual(d.all().map((x) => x.id), [2, 1, 3]);
  assert.equal(d.put(drawing(4, 245)), true);
  assert.equal(d.put(drawing(4, 245)), false);
  assert.equal(d.put(drawing(1, 245, { erasedBy: 'Ravi', erasedAt: 5 })), true);
  assert.equal(d.put(drawing(1, 245, { erasedBy: 'Ravi', erasedAt: 5 })), false);
  assert.deepEqual(d.onFrame(245).map((x) => x.id), [3, 4]);
  assert.deepEqual(d.onFrame(11), []);
  assert.equal(d.size, 3);

  assert.ok(d.settles({ type: 'drawing', key: 'k3' }));
  assert.ok(!d.settles({ type: 'drawing', key: 'k1' }));
  assert.ok(d.settles({ type: 'erase', key: 'e', drawing: 1 }), 'already gone');
  assert.ok(!d.settles({ type: 'erase', key: 'e', drawing: 3 }));
  assert.ok(!d.settles({ type: 'note', key: 'k3' }));
});

test('a drawing message carries the shape rounded, for the frame given', () => {
  const msg = drawingMessage(245, pen([[0.123456, 0.5], [1, 0.99999]], { colour: '#FF3300' }));
  assert.deepEqual(msg, {
    type: 'drawing', frame: 245, tool: 'pen', colour: '#ff3300', width: 0.01, points: [[0.1235, 0.5], [1, 1]],
  });
  assert.equal(drawingMessage(-1, pen([[0, 0]])), null);
  assert.equal(drawingMessage(null, pen([[0, 0]])), null);
  assert.equal(drawingMessage(3, pen([])), null);
});
