// Safe-area guides and aspect masks over the picture, local to this
// viewer and off until asked for. They are framing aids, not readouts:
// H (what sits on the picture) leaves them alone, and they follow the
// picture when it is zoomed. Rectangles are in picture coordinates
// (0..1 from the top left), like drawings.

/** The masks a delivery is framed for, widest first. */
export const ASPECTS = Object.freeze([
  { id: '2.39', ratio: 2.39, label: '2.39:1' },
  { id: '1.85', ratio: 1.85, label: '1.85:1' },
  { id: '16:9', ratio: 16 / 9, label: '16:9' },
  { id: '4:3', ratio: 4 / 3, label: '4:3' },
]);

/** Action safe and title safe, as fractions of the picture (SMPTE RP 2046-1's 90% and 80%). */
export const SAFE_AREAS = Object.freeze([
  { id: 'action', fraction: 0.9, label: 'Action safe 90%' },
  { id: 'title', fraction: 0.8, label: 'Title safe 80%' },
]);

/**
 * The window an aspect mask leaves open on a picture of `pictureAspect`
 * (width / height, square pixels): the whole width with bars above and
 * below for a wider ratio, the whole height with bars at the sides for a
 * narrower one.
 */
export function aspectWindow(pictureAspect, ratio) {
  if (!(pictureAspect > 0 && ratio > 0)) return { x: 0, y: 0, width: 1, height: 1 };
  if (ratio >= pictureAspect) {
    const height = pictureAspect / ratio;
    return { x: 0, y: (1 - height) / 2, width: 1, height };
  }
  const width = ratio / pictureAspect;
  return { x: (1 - width) / 2, y: 0, width, height: 1 };
}

/** A centred safe area covering `fraction` of each side of `within` (the picture, or a mask's window). */
export function safeRect(fraction, within = { x: 0, y: 0, width: 1, height: 1 }) {
  const width = within.width * fraction;
  const height = within.height * fraction;
  return { x: within.x + (within.width - width) / 2, y: within.y + (within.height - height) / 2, width, height };
}

/**
 * The bars a mask draws, in picture coordinates: the parts of the picture
 * outside `window` (none when the window is the whole picture).
 */
export function maskBars(window) {
  const bars = [];
  const eps = 1e-9;
  if (window.y > eps) bars.push({ x: 0, y: 0, width: 1, height: window.y });
  const bottom = window.y + window.height;
  if (bottom < 1 - eps) bars.push({ x: 0, y: bottom, width: 1, height: 1 - bottom });
  if (window.x > eps) bars.push({ x: 0, y: window.y, width: window.x, height: window.height });
  const right = window.x + window.width;
  if (right < 1 - eps) bars.push({ x: right, y: window.y, width: 1 - right, height: window.height });
  return bars;
}

const MASK_FILL = 'rgba(0, 0, 0, .85)';
const GUIDE_STROKE = 'rgba(255, 255, 255, .7)';

/**
 * The canvas that paints them, the monitor's size, through the picture's
 * rectangle `picture()` (CSS px, zoom included). Hidden while there is
 * nothing to paint, so that it is never counted as covering the picture.
 */
export class MaskLayer {
  constructor(canvas, picture, source) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.picture = picture;
    this.source = source;
    this.aspect = null;
    this.safe = new Set();
    new ResizeObserver(() => this.render()).observe(canvas);
    this.render();
  }

  get active() {
    return this.aspect != null || this.safe.size > 0;
  }

  /** `id` one of ASPECTS' ids, or null for none. */
  setAspect(id) {
    this.aspect = ASPECTS.find((a) => a.id === id) ?? null;
    this.render();
  }

  setSafe(id, on) {
    if (on) this.safe.add(id);
    else this.safe.delete(id);
    this.render();
  }

  /** The open window in picture coordinates (the whole picture without a mask). */
  window() {
    const s = this.source();
    return this.aspect ? aspectWindow(s.width / s.height, this.aspect.ratio) : { x: 0, y: 0, width: 1, height: 1 };
  }

  render() {
    const { canvas, ctx } = this;
    canvas.hidden = !this.active;
    if (!this.active) return;
    const box = canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const [w, h] = [Math.round(box.width * dpr), Math.round(box.height * dpr)];
    if (canvas.width !== w || canvas.height !== h) {
      canvas.width = w;
      canvas.height = h;
    }
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.clearRect(0, 0, w, h);
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    const p = this.picture();
    if (!(p.width > 0 && p.height > 0)) return;
    const at = (r) => [p.x + r.x * p.width, p.y + r.y * p.height, r.width * p.width, r.height * p.height];
    const win = this.window();
    ctx.fillStyle = MASK_FILL;
    for (const bar of maskBars(win)) ctx.fillRect(...at(bar));
    ctx.strokeStyle = GUIDE_STROKE;
    ctx.lineWidth = 1;
    ctx.setLineDash([6, 4]);
    // Safe areas of what will be delivered: the mask's window when there is one.
    for (const area of SAFE_AREAS) {
      if (!this.safe.has(area.id)) continue;
      const [x, y, rw, rh] = at(safeRect(area.fraction, win));
      ctx.strokeRect(Math.round(x) + 0.5, Math.round(y) + 0.5, Math.round(rw) - 1, Math.round(rh) - 1);
    }
  }
}
