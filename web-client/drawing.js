// Shapes drawn on a paused frame, in the picture's own coordinates: 0..1
// on each axis from the top left of the picture, so that a stroke made
// over a 640×360 stream in a pillarboxed monitor lands on the same detail
// for someone watching full screen. Widths are fractions of the picture
// height for the same reason. This mirrors `src/drawing.rs` (its checks
// and the arrow's head), and adds what only a client needs: where the
// picture sits inside an element (object-fit: contain), turning pointer
// positions into picture points, and the eraser's hit test. No DOM.

/** The server's limits (src/drawing.rs). */
export const MAX_POINTS = 2000;
export const MIN_WIDTH = 0.001;
export const MAX_WIDTH = 0.05;
export const TOOLS = Object.freeze(['pen', 'arrow', 'rect']);

/** About 2 px on a 360p stream, 4 px on 720p: reads on any size of monitor. */
export const DEFAULT_WIDTH = 0.006;
/** How near (in picture heights) the eraser has to pass a line to take its shape. */
export const ERASER_TOLERANCE = 0.015;
/** The picture of a session without media: the 16:9 area of the monitor. */
export const NO_MEDIA_PICTURE = Object.freeze({ width: 16, height: 9 });

// A pen point nearer than this (in picture heights) to the last one adds
// nothing anyone could see, only bytes: a second of scribbling at 120 Hz
// stays far below the server's point limit.
const MIN_PEN_STEP = 0.002;
// An arrow or a box shorter than this is a click, not a shape.
const MIN_DRAG = 0.01;
// Four decimals is a tenth of a pixel at 4K: enough, and a full pen
// stroke stays well under the server's message size limit.
const ROUND = 1e4;

const COLOUR = /^#[0-9a-fA-F]{6}$/;

/**
 * Where a `sourceWidth`×`sourceHeight` picture sits in a `boxWidth`×
 * `boxHeight` element under object-fit: contain (centred, letterboxed or
 * pillarboxed). Without a source size the picture is the whole box.
 */
export function pictureRect(boxWidth, boxHeight, sourceWidth, sourceHeight) {
  if (!(boxWidth > 0 && boxHeight > 0)) return { x: 0, y: 0, width: 0, height: 0 };
  if (!(sourceWidth > 0 && sourceHeight > 0)) return { x: 0, y: 0, width: boxWidth, height: boxHeight };
  const scale = Math.min(boxWidth / sourceWidth, boxHeight / sourceHeight);
  const width = sourceWidth * scale;
  const height = sourceHeight * scale;
  return { x: (boxWidth - width) / 2, y: (boxHeight - height) / 2, width, height };
}

/** Whether an element point (px, py) falls on the picture. */
export function onPicture(px, py, rect) {
  return px >= rect.x && px <= rect.x + rect.width && py >= rect.y && py <= rect.y + rect.height;
}

const clamp01 = (v) => Math.min(1, Math.max(0, v));
const round = (v) => Math.round(v * ROUND) / ROUND;

/**
 * The picture point under element point (px, py), clamped onto the
 * picture (a stroke that runs off the edge follows the edge) and rounded.
 */
export function toPicture(px, py, rect) {
  if (!(rect.width > 0 && rect.height > 0)) return [0, 0];
  return [round(clamp01((px - rect.x) / rect.width)), round(clamp01((py - rect.y) / rect.height))];
}

/** The element point of picture point [nx, ny]. */
export function fromPicture([nx, ny], rect) {
  return [rect.x + nx * rect.width, rect.y + ny * rect.height];
}

/**
 * The straight segments a shape is drawn with, in picture coordinates; a
 * port of `Shape::segments`. `aspect` is the picture's width / height,
 * so that an arrow's head keeps its angle on any frame.
 */
export function segments(shape, aspect) {
  const p = shape.points;
  switch (shape.tool) {
    case 'pen':
      if (p.length === 1) return [[p[0], p[0]]];
      return p.slice(1).map((q, i) => [p[i], q]);
    case 'rect': {
      const [[x0, y0], [x1, y1]] = p;
      return [[[x0, y0], [x1, y0]], [[x1, y0], [x1, y1]], [[x1, y1], [x0, y1]], [[x0, y1], [x0, y0]]];
    }
    case 'arrow': {
      const [tail, tip] = p;
      // In height units, so that the head is not sheared.
      const dx = (tip[0] - tail[0]) * aspect;
      const dy = tip[1] - tail[1];
      const length = Math.hypot(dx, dy);
      const out = [[tail, tip]];
      if (length > 0) {
        const head = Math.min(0.08, Math.max(shape.width * 3, length * 0.25));
        const [ux, uy] = [dx / length, dy / length];
        for (const side of [-1, 1]) {
          // 30° either side of the shaft, pointing back.
          const [c, s] = [0.866, 0.5 * side];
          const bx = -(ux * c - uy * s) * head;
          const by = -(ux * s + uy * c) * head;
          out.push([tip, [tip[0] + bx / aspect, tip[1] + by]]);
        }
      }
      return out;
    }
    default:
      return [];
  }
}

/** Distance from point p to segment ab (plain 2-D points). */
export function pointToSegment(p, a, b) {
  const dx = b[0] - a[0];
  const dy = b[1] - a[1];
  const len2 = dx * dx + dy * dy;
  const t = len2 === 0 ? 0 : clamp01(((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / len2);
  return Math.hypot(p[0] - (a[0] + t * dx), p[1] - (a[1] + t * dy));
}

const cross = (o, a, b) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);

/** Distance between segments ab and cd: 0 where they cross. */
export function segmentToSegment(a, b, c, d) {
  const [d1, d2, d3, d4] = [cross(c, d, a), cross(c, d, b), cross(a, b, c), cross(a, b, d)];
  if (((d1 > 0 && d2 < 0) || (d1 < 0 && d2 > 0)) && ((d3 > 0 && d4 < 0) || (d3 < 0 && d4 > 0))) return 0;
  return Math.min(pointToSegment(a, c, d), pointToSegment(b, c, d), pointToSegment(c, a, b), pointToSegment(d, a, b));
}

/**
 * Whether the eraser, moving from picture point `from` to `to`, passes
 * within `tolerance` (picture heights) of the shape's ink. Distances are
 * taken in height units (x scaled by `aspect`), so the tolerance is the
 * same circle on a wide picture as on a tall one. Testing the eraser's
 * path, not just where it is, means a fast swipe cannot jump a line.
 */
export function hits(shape, from, to, tolerance, aspect) {
  const h = ([x, y]) => [x * aspect, y];
  const [a, b] = [h(from), h(to)];
  const reach = tolerance + shape.width / 2;
  return segments(shape, aspect).some(([p, q]) => segmentToSegment(a, b, h(p), h(q)) <= reach);
}

/** The ids of the shapes the eraser's move from `from` to `to` takes. */
export function erased(shapes, from, to, aspect, tolerance = ERASER_TOLERANCE) {
  return shapes.filter((s) => hits(s, from, to, tolerance, aspect)).map((s) => s.id);
}

/** Why a shape would be refused (the server's checks), or null. */
export function shapeProblem(shape) {
  if (!TOOLS.includes(shape?.tool)) return 'tool';
  if (typeof shape.colour !== 'string' || !COLOUR.test(shape.colour)) return 'colour';
  if (!(shape.width >= MIN_WIDTH && shape.width <= MAX_WIDTH)) return 'width';
  const p = shape.points;
  if (!Array.isArray(p)) return 'points';
  if (shape.tool === 'pen' ? p.length < 1 || p.length > MAX_POINTS : p.length !== 2) return 'points';
  if (!p.every((q) => Array.isArray(q) && q.length === 2 && q.every((v) => v >= 0 && v <= 1))) return 'points';
  return null;
}

/**
 * One stroke in progress, fed picture points as the pointer moves. A pen
 * keeps its path (thinned); an arrow runs from where it started to where
 * the pointer is (tail to tip); a box spans the same two corners.
 */
export class Stroke {
  constructor(tool, start, { colour, width = DEFAULT_WIDTH, aspect = 16 / 9 }) {
    this.tool = tool;
    this.colour = colour;
    this.width = width;
    this.aspect = aspect;
    this.points = [start];
    this.end = start;
    this.step = MIN_PEN_STEP;
    // How many times the path was thinned: each time, the points before
    // the end move to other indices, so whoever copies the path by index
    // has to start again.
    this.thinnings = 0;
  }

  /** The pointer is now at picture point `p`. */
  add(p) {
    this.end = p;
    if (this.tool !== 'pen') return;
    if (this.distance(this.points[this.points.length - 1], p) < this.step) return;
    this.points.push(p);
    if (this.points.length >= MAX_POINTS) {
      // Very long scribbles keep their shape at half the detail rather
      // than being cut off or refused.
      this.points = this.points.filter((_, i) => i % 2 === 0 || i === this.points.length - 1);
      this.step *= 2;
      this.thinnings += 1;
    }
  }

  distance(a, b) {
    return Math.hypot((a[0] - b[0]) * this.aspect, a[1] - b[1]);
  }

  /** The shape as it stands, for drawing while the pointer is down. */
  shape() {
    const points = this.tool === 'pen' ? this.penPoints() : [this.points[0], this.end];
    return { tool: this.tool, colour: this.colour, width: this.width, points };
  }

  /**
   * The stroke as the room is shown it while it is drawn. A pen's path
   * leaves out where the pointer is now: the next move replaces that
   * point, and others extend their copy by index, so they get only
   * points that stay.
   */
  progress() {
    return this.tool === 'pen' ? this.points : [this.points[0], this.end];
  }

  penPoints() {
    const last = this.points[this.points.length - 1];
    const end = this.end;
    return last[0] === end[0] && last[1] === end[1] ? this.points : [...this.points, end];
  }

  /** The finished shape, or null when it is not one (a click with the arrow or box tool). */
  finish() {
    const shape = this.shape();
    if (this.tool !== 'pen' && this.distance(shape.points[0], shape.points[1]) < MIN_DRAG) return null;
    if (shape.tool === 'pen' && shape.points.length > MAX_POINTS) shape.points = shape.points.slice(0, MAX_POINTS);
    return shapeProblem(shape) ? null : shape;
  }
}

const byFrameThenId = (a, b) => a.frame - b.frame || a.id - b.id;

/** The room's drawings that are not erased, by id. */
export class Drawings {
  constructor() {
    this.byId = new Map();
  }

  /** Replaces every drawing (the server's `drawings` list). */
  replace(list) {
    this.byId = new Map(list.filter((d) => d.erasedBy == null).map((d) => [d.id, d]));
  }

  /**
   * Takes one drawing as the server now has it: a new one is added, an
   * erased one (`erasedBy` set) goes. Returns whether anything changed.
   */
  put(drawing) {
    if (drawing.erasedBy != null) return this.byId.delete(drawing.id);
    if (this.byId.has(drawing.id)) return false;
    this.byId.set(drawing.id, drawing);
    return true;
  }

  /** The drawings pinned to `frame`, oldest first (so the newest paints on top). */
  onFrame(frame) {
    return [...this.byId.values()].filter((d) => d.frame === frame).sort((a, b) => a.id - b.id);
  }

  all() {
    return [...this.byId.values()].sort(byFrameThenId);
  }

  hasKey(key) {
    for (const d of this.byId.values()) if (d.key === key) return true;
    return false;
  }

  /**
   * Whether a queued message needs no resend given this list: the drawing
   * is already stored, or the shape to erase is already gone.
   */
  settles(msg) {
    if (msg.type === 'drawing') return this.hasKey(msg.key);
    if (msg.type === 'erase') return !this.byId.has(msg.drawing);
    return false;
  }

  get size() {
    return this.byId.size;
  }
}

/** The `drawing` message for a finished shape on `frame`, or null when the server would refuse it. */
export function drawingMessage(frame, shape) {
  if (!Number.isInteger(frame) || frame < 0 || shapeProblem(shape)) return null;
  return {
    type: 'drawing', frame, tool: shape.tool, colour: shape.colour.toLowerCase(), width: shape.width,
    points: shape.points.map(([x, y]) => [round(x), round(y)]),
  };
}
