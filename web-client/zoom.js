// Zoom and pan of the picture, local to this viewer (the room never
// hears of it). The view is a zoom relative to the fitted picture (1 =
// fit, as object-fit: contain places it) and the picture point at the
// middle of the monitor. Every layer of the picture (video, still, a
// look's still) gets one CSS transform; the drawing and mask canvases
// stay the monitor's size and paint through the zoomed rectangle
// instead, so that drawings stay on their picture point and lines stay
// sharp at any zoom. The math is pure; `PictureZoom` is the DOM side.

import { pictureRect } from './drawing.js';

/** Smaller than 1:1 on a large monitor is useful; past 32× there is nothing more to see. */
export const MIN_ZOOM = 0.1;
export const MAX_ZOOM = 32;
/** One +/- step: two steps double the size. */
export const ZOOM_STEP = Math.SQRT2;

export const FIT_VIEW = Object.freeze({ zoom: 1, cx: 0.5, cy: 0.5 });

const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

/** One axis: where the picture's near edge goes for `size` px of picture in `box` px, centred on `centre`. */
function place(box, size, centre) {
  // A picture smaller than the monitor is centred; a larger one cannot
  // be dragged so far that the monitor shows past its edge.
  if (size <= box) return (box - size) / 2;
  return clamp(box / 2 - centre * size, box - size, 0);
}

/**
 * The picture's rectangle in the monitor (CSS px) under `view`, given the
 * fitted rectangle `fit` and the monitor's size `box` ({width, height}).
 */
export function zoomedRect(fit, box, view = FIT_VIEW) {
  const width = fit.width * view.zoom;
  const height = fit.height * view.zoom;
  return { x: place(box.width, width, view.cx), y: place(box.height, height, view.cy), width, height };
}

/** The view whose centre is where `zoomedRect` actually put the picture (after clamping). */
export function settle(fit, box, view) {
  const zoom = clamp(view.zoom, MIN_ZOOM, MAX_ZOOM);
  const r = zoomedRect(fit, box, { ...view, zoom });
  if (!(r.width > 0 && r.height > 0)) return { zoom, cx: 0.5, cy: 0.5 };
  return { zoom, cx: (box.width / 2 - r.x) / r.width, cy: (box.height / 2 - r.y) / r.height };
}

/** The zoom at which one source pixel covers one device pixel. */
export function pixelZoom(fit, sourceWidth, dpr = 1) {
  if (!(fit.width > 0 && sourceWidth > 0)) return 1;
  return sourceWidth / (fit.width * dpr);
}

/**
 * `view` zoomed to `zoom`, keeping the picture point under monitor point
 * (px, py) where it is (the wheel, or the monitor's middle for keys).
 */
export function zoomAt(fit, box, view, zoom, px = box.width / 2, py = box.height / 2) {
  const before = zoomedRect(fit, box, view);
  const z = clamp(zoom, MIN_ZOOM, MAX_ZOOM);
  if (!(before.width > 0 && before.height > 0)) return { zoom: z, cx: 0.5, cy: 0.5 };
  const nx = (px - before.x) / before.width;
  const ny = (py - before.y) / before.height;
  const width = fit.width * z;
  const height = fit.height * z;
  const x = px - nx * width;
  const y = py - ny * height;
  return settle(fit, box, { zoom: z, cx: (box.width / 2 - x) / width, cy: (box.height / 2 - y) / height });
}

/** `view` dragged by (dx, dy) CSS px. */
export function panBy(fit, box, view, dx, dy) {
  const r = zoomedRect(fit, box, view);
  if (!(r.width > 0 && r.height > 0)) return view;
  return settle(fit, box, {
    zoom: view.zoom, cx: (box.width / 2 - (r.x + dx)) / r.width, cy: (box.height / 2 - (r.y + dy)) / r.height,
  });
}

/**
 * `view` after two fingers moved from `from` to `to` (each a pair of
 * monitor points, [[x, y], [x, y]]): zoomed by how far apart they went,
 * about where they were, then dragged with their midpoint, so that the
 * picture point between the fingers stays between them.
 */
export function pinch(fit, box, view, from, to) {
  const gap = ([a, b]) => Math.hypot(b[0] - a[0], b[1] - a[1]);
  const mid = ([a, b]) => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
  const before = gap(from);
  const ratio = before > 0 ? gap(to) / before : 1;
  const [x0, y0] = mid(from);
  const [x1, y1] = mid(to);
  const zoomed = zoomAt(fit, box, view, view.zoom * ratio, x0, y0);
  return panBy(fit, box, zoomed, x1 - x0, y1 - y0);
}

/**
 * The CSS transform (origin at the top left) that takes a layer fitted at
 * `fit` in its box to `rect`.
 */
export function layerTransform(fit, rect) {
  if (!(fit.width > 0)) return '';
  const s = rect.width / fit.width;
  const tx = rect.x - s * fit.x;
  const ty = rect.y - s * fit.y;
  return `translate(${tx}px, ${ty}px) scale(${s})`;
}

/** How a zoom reads on its button: Fit, 1:1 or a percentage of the fitted size. */
export function zoomLabel(zoom, pixel) {
  if (Math.abs(zoom - 1) < 1e-3) return 'Fit';
  if (Math.abs(zoom - pixel) < 1e-3) return '1:1';
  return `${Math.round(zoom * 100)}%`;
}

/**
 * The DOM side: applies the view to the picture's layers, and turns the
 * wheel (with Ctrl or Cmd), a drag and a two-finger pinch into zoom and
 * pan. `monitor` is the
 * element the layers fill; `source()` the picture's own size; `onChange()`
 * repaints what paints through `rect()` (drawings, masks).
 */
export class PictureZoom {
  constructor(monitor, layers, { source, onChange = () => {}, canPan = () => true }) {
    this.monitor = monitor;
    this.layers = layers;
    this.source = source;
    this.onChange = onChange;
    this.canPan = canPan;
    this.view = { ...FIT_VIEW };
    this.drag = null;
    // Touch points down on the monitor, by pointer id: two make a pinch.
    this.touches = new Map();
    this.key = '';
    for (const layer of layers) layer.style.transformOrigin = '0 0';
    monitor.addEventListener('wheel', (ev) => this.wheel(ev), { passive: false });
    monitor.addEventListener('pointerdown', (ev) => this.down(ev));
    monitor.addEventListener('pointermove', (ev) => this.move(ev));
    monitor.addEventListener('pointerup', (ev) => this.up(ev));
    monitor.addEventListener('pointercancel', (ev) => this.up(ev));
    new ResizeObserver(() => this.apply()).observe(monitor);
  }

  box() {
    return { width: this.monitor.clientWidth, height: this.monitor.clientHeight };
  }

  fit(box = this.box()) {
    const s = this.source();
    return pictureRect(box.width, box.height, s.width, s.height);
  }

  /** The picture's rectangle in the monitor now (CSS px). */
  rect(box = this.box()) {
    return zoomedRect(this.fit(box), box, this.view);
  }

  get zoomed() {
    return Math.abs(this.view.zoom - 1) > 1e-3 || Math.abs(this.view.cx - 0.5) > 1e-6 || Math.abs(this.view.cy - 0.5) > 1e-6;
  }

  pixel() {
    return pixelZoom(this.fit(), this.source().width, window.devicePixelRatio || 1);
  }

  set(view) {
    const box = this.box();
    this.view = settle(this.fit(box), box, view);
    this.apply(true);
  }

  zoomTo(zoom, px, py) {
    const box = this.box();
    this.view = zoomAt(this.fit(box), box, this.view, zoom, px, py);
    this.apply(true);
  }

  zoomIn() { this.zoomTo(this.view.zoom * ZOOM_STEP); }

  zoomOut() { this.zoomTo(this.view.zoom / ZOOM_STEP); }

  /** One source pixel to one device pixel, about the monitor's middle. */
  actualPixels() { this.zoomTo(this.pixel()); }

  fitView() { this.set({ ...FIT_VIEW }); }

  /**
   * Per animation frame: re-applies only when the picture's own size
   * changed (the monitor's is watched by a ResizeObserver). No layout is
   * read here, so that a busy page pays nothing for an idle zoom.
   */
  follow() {
    const s = this.source();
    if (s.width === this.lastSource?.width && s.height === this.lastSource?.height) return;
    this.lastSource = { width: s.width, height: s.height };
    this.apply();
  }

  /** Puts the view on the layers; `force` even when nothing seems to have changed. */
  apply(force = false) {
    const box = this.box();
    const s = this.source();
    const key = `${box.width}x${box.height}|${s.width}x${s.height}|${this.view.zoom},${this.view.cx},${this.view.cy}`;
    if (!force && key === this.key) return;
    this.key = key;
    const fit = this.fit(box);
    this.view = settle(fit, box, this.view);
    const rect = zoomedRect(fit, box, this.view);
    const transform = this.zoomed ? layerTransform(fit, rect) : '';
    // Past 1:1, pixels should look like pixels, not a blur.
    const pixelated = this.view.zoom >= this.pixel() - 1e-3 && this.zoomed;
    for (const layer of this.layers) {
      layer.style.transform = transform;
      layer.style.imageRendering = pixelated ? 'pixelated' : '';
    }
    this.monitor.classList.toggle('zoomed', this.zoomed);
    this.monitor.classList.toggle('pannable', rect.width > box.width + 0.5 || rect.height > box.height + 0.5);
    this.onChange();
  }

  wheel(ev) {
    if (!(ev.ctrlKey || ev.metaKey)) return;
    ev.preventDefault();
    const b = this.monitor.getBoundingClientRect();
    // A notch (100) is about one key step; a trackpad pinch sends many small ones.
    const factor = ZOOM_STEP ** (-ev.deltaY / 100);
    this.zoomTo(this.view.zoom * factor, ev.clientX - b.left - this.monitor.clientLeft, ev.clientY - b.top - this.monitor.clientTop);
  }

  /** A pointer's place in the monitor (CSS px). */
  local(ev) {
    const b = this.monitor.getBoundingClientRect();
    return [ev.clientX - b.left - this.monitor.clientLeft, ev.clientY - b.top - this.monitor.clientTop];
  }

  down(ev) {
    if (ev.pointerType === 'touch' && this.canPan(ev)) {
      this.touches.set(ev.pointerId, this.local(ev));
      this.monitor.setPointerCapture?.(ev.pointerId);
      if (this.touches.size === 2) {
        // The second finger turns a one-finger pan into a pinch.
        this.drag = null;
        this.monitor.classList.remove('panning');
        ev.preventDefault();
        return;
      }
    }
    if (this.touches.size > 1) return;
    if (ev.button !== 0 || !this.monitor.classList.contains('pannable') || !this.canPan(ev)) return;
    ev.preventDefault();
    this.monitor.setPointerCapture?.(ev.pointerId);
    this.drag = { id: ev.pointerId, x: ev.clientX, y: ev.clientY };
    this.monitor.classList.add('panning');
  }

  move(ev) {
    if (this.touches.size === 2 && this.touches.has(ev.pointerId)) {
      const from = [...this.touches.values()];
      this.touches.set(ev.pointerId, this.local(ev));
      const to = [...this.touches.values()];
      const box = this.box();
      this.view = pinch(this.fit(box), box, this.view, from, to);
      this.apply(true);
      return;
    }
    if (this.touches.has(ev.pointerId)) this.touches.set(ev.pointerId, this.local(ev));
    if (!this.drag || ev.pointerId !== this.drag.id) return;
    const box = this.box();
    this.view = panBy(this.fit(box), box, this.view, ev.clientX - this.drag.x, ev.clientY - this.drag.y);
    this.drag.x = ev.clientX;
    this.drag.y = ev.clientY;
    this.apply(true);
  }

  up(ev) {
    this.touches.delete(ev.pointerId);
    if (!this.drag || ev.pointerId !== this.drag.id) return;
    this.drag = null;
    this.monitor.classList.remove('panning');
  }
}
