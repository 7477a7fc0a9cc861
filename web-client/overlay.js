// The canvas over the picture. It paints the shapes pinned to the frame
// on screen and turns the pointer into new shapes or erasures, mapping
// through the picture's rectangle inside the element (the video is
// letterboxed by object-fit: contain), so that points are picture points.
// It never sends anything and never decides who may draw: main.js arms a
// tool (or none), enables it, and gets each stroke as it starts (to show
// the room while it grows), then its shape or its end without one, and
// erasures.

import {
  DEFAULT_WIDTH, Stroke, erased, onPicture, pictureRect, segments, toPicture,
} from './drawing.js';

// Shown until the server has the shape.
const PENDING_ALPHA = 0.5;

export class Overlay {
  /**
   * `onStrokeStart(stroke, frame)` gets each Stroke as the pointer goes
   * down, on the frame it is drawn on; then either `onStroke(shape,
   * frame)` its finished shape, or `onStrokeAbandoned()` when it leaves
   * none (a click with the arrow, a cancelled pointer, the frame moved).
   * `onErase(ids)` gets the drawings the eraser passed over.
   */
  constructor(canvas, {
    onStrokeStart, onStroke, onStrokeAbandoned, onErase,
  }) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.onStrokeStart = onStrokeStart;
    this.onStroke = onStroke;
    this.onStrokeAbandoned = onStrokeAbandoned;
    this.onErase = onErase;
    this.tool = null;
    this.colour = null;
    this.enabled = false;
    this.outline = false;
    this.source = { width: 16, height: 9 };
    this.frame = null;
    // [{drawing, pending, live}] on `frame`, in painting order (`live`:
    // someone else's stroke still being drawn).
    this.shapes = [];
    this.stroke = null;
    this.eraser = null;
    this.cssWidth = 0;
    this.cssHeight = 0;
    this.view = null;
    new ResizeObserver(() => this.resize()).observe(canvas);
    canvas.addEventListener('pointerdown', (ev) => this.down(ev));
    canvas.addEventListener('pointermove', (ev) => this.move(ev));
    canvas.addEventListener('pointerup', (ev) => this.up(ev));
    canvas.addEventListener('pointercancel', () => this.cancel());
    this.resize();
  }

  /** The picture's size in its own pixels (the video's, or 16:9 without media). */
  setSource(width, height, outline) {
    if (this.source.width === width && this.source.height === height && this.outline === outline) return;
    this.source = { width, height };
    this.outline = outline;
    this.render();
  }

  /** Arms `tool` ('pen', 'arrow', 'rect', 'eraser' or null) in `colour`. */
  arm(tool, colour) {
    this.tool = tool;
    this.colour = colour;
    this.sync();
  }

  /** Whether the pointer may draw now (a paused frame, a role that may). */
  setEnabled(enabled) {
    if (this.enabled === enabled) return;
    this.enabled = enabled;
    if (!enabled) this.cancel();
    this.sync();
  }

  sync() {
    const live = this.enabled && this.tool != null;
    this.canvas.classList.toggle('armed', live);
    this.canvas.dataset.tool = live ? this.tool : '';
    this.render();
  }

  /**
   * The shapes to show: those on `frame` (null when nothing should show,
   * as in play). A stroke under way is dropped when the frame changes
   * beneath it, since it was drawn over another picture.
   */
  show(frame, shapes) {
    if (frame !== this.frame) this.cancel();
    this.frame = frame;
    this.shapes = frame == null ? [] : shapes;
    this.render();
  }

  /**
   * Where the picture is, as `view(fit)` says (this viewer's zoom and pan,
   * zoom.js) rather than fitted: drawings stay on their picture point.
   */
  setView(view) {
    this.view = view;
    this.render();
  }

  /** The picture's rectangle in the canvas, CSS pixels. */
  picture() {
    const fit = pictureRect(this.cssWidth, this.cssHeight, this.source.width, this.source.height);
    return this.view ? this.view(fit) : fit;
  }

  resize() {
    const box = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.cssWidth = box.width;
    this.cssHeight = box.height;
    const [w, h] = [Math.round(box.width * dpr), Math.round(box.height * dpr)];
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
    }
    this.render();
  }

  /** The picture point under a pointer event, and whether it is on the picture. */
  point(ev) {
    const box = this.canvas.getBoundingClientRect();
    const [x, y] = [ev.clientX - box.left, ev.clientY - box.top];
    const rect = this.picture();
    return { at: toPicture(x, y, rect), on: onPicture(x, y, rect), aspect: rect.width / rect.height };
  }

  down(ev) {
    if (ev.button !== 0 || !this.enabled || this.tool == null || this.frame == null) return;
    const { at, on, aspect } = this.point(ev);
    if (!on) return;
    ev.preventDefault();
    this.canvas.setPointerCapture(ev.pointerId);
    if (this.tool === 'eraser') {
      this.eraser = { last: at, taken: new Set() };
      this.erase(at, at, aspect);
      return;
    }
    this.stroke = new Stroke(this.tool, at, { colour: this.colour, width: DEFAULT_WIDTH, aspect });
    this.onStrokeStart(this.stroke, this.frame);
    this.render();
  }

  move(ev) {
    if (!this.stroke && !this.eraser) return;
    // Every sample the browser merged into this event: a quick flick of
    // the pen keeps its curve.
    const events = ev.getCoalescedEvents?.() ?? [];
    for (const e of events.length ? events : [ev]) {
      const { at, aspect } = this.point(e);
      if (this.stroke) this.stroke.add(at);
      else {
        this.erase(this.eraser.last, at, aspect);
        this.eraser.last = at;
      }
    }
    if (this.stroke) this.render();
  }

  up(ev) {
    if (this.eraser) {
      this.eraser = null;
      return;
    }
    if (!this.stroke) return;
    this.stroke.add(this.point(ev).at);
    const shape = this.stroke.finish();
    this.stroke = null;
    this.render();
    if (shape) this.onStroke(shape, this.frame);
    else this.onStrokeAbandoned();
  }

  cancel() {
    if (!this.stroke && !this.eraser) return;
    const abandoned = this.stroke != null;
    this.stroke = null;
    this.eraser = null;
    this.render();
    if (abandoned) this.onStrokeAbandoned();
  }

  /** Erases what the eraser's move from `from` to `to` passes over, each shape once per drag. */
  erase(from, to, aspect) {
    const stored = this.shapes.filter((s) => !s.pending && !s.live && !this.eraser.taken.has(s.drawing.id))
      .map((s) => s.drawing);
    const ids = erased(stored, from, to, aspect);
    for (const id of ids) this.eraser.taken.add(id);
    if (ids.length) this.onErase(ids);
  }

  render() {
    const { ctx, canvas } = this;
    const dpr = canvas.width / Math.max(1, this.cssWidth);
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const rect = this.picture();
    if (!(rect.width > 0 && rect.height > 0)) return;
    if (this.outline && this.enabled && this.tool != null) {
      // Without video there is no picture to see: show where it would be.
      ctx.save();
      ctx.strokeStyle = 'rgba(240, 165, 58, .35)';
      ctx.setLineDash([6, 6]);
      ctx.lineWidth = 1;
      ctx.strokeRect(rect.x + 0.5, rect.y + 0.5, rect.width - 1, rect.height - 1);
      ctx.restore();
    }
    // Someone else's stroke in progress is in full ink, as its author sees
    // it under the pointer: the stored drawing then takes its place
    // without a flicker. Faded is this author's own word for "not saved yet".
    for (const { drawing, pending } of this.shapes) paint(ctx, drawing, rect, pending ? PENDING_ALPHA : 1);
    if (this.stroke) paint(ctx, this.stroke.shape(), rect, 1);
  }
}

/** Strokes one shape in picture rect `rect` (CSS pixels). */
function paint(ctx, shape, rect, alpha) {
  const at = ([x, y]) => [rect.x + x * rect.width, rect.y + y * rect.height];
  const width = Math.max(1, shape.width * rect.height);
  ctx.save();
  ctx.globalAlpha = alpha;
  ctx.strokeStyle = shape.colour;
  ctx.fillStyle = shape.colour;
  ctx.lineWidth = width;
  ctx.lineCap = 'round';
  ctx.lineJoin = 'round';
  // A soft dark edge keeps a white or yellow line legible on a bright sky.
  ctx.shadowColor = 'rgba(0, 0, 0, .55)';
  ctx.shadowBlur = 2;
  ctx.beginPath();
  if (shape.tool === 'pen' && shape.points.length === 1) {
    const [x, y] = at(shape.points[0]);
    ctx.arc(x, y, width / 2, 0, Math.PI * 2);
    ctx.fill();
  } else if (shape.tool === 'pen') {
    // One path, so that joins are round rather than overlapping caps.
    shape.points.forEach((p, i) => (i ? ctx.lineTo(...at(p)) : ctx.moveTo(...at(p))));
    ctx.stroke();
  } else {
    for (const [a, b] of segments(shape, rect.width / rect.height)) {
      ctx.moveTo(...at(a));
      ctx.lineTo(...at(b));
    }
    ctx.stroke();
  }
  ctx.restore();
}
