// The picture of everything that is not playing. The live stream is lossy
// and trails the playhead by the room's display latency; a paused room,
// a step or a seek instead shows the exact frame, decoded by the server
// (`GET /api/sessions/{id}/frames/{checksum}/{frame}?width=`, a lossless
// PNG that never changes), drawn on a canvas over the video at the
// transport's execute-at instant, so that every page switches together.
//
// Three parts: which frames to have ready around a paused one
// (`prefetchPlan`), a bounded cache of decoded pictures that loads the
// most wanted first (`StillCache`, node-tested with a fake loader), and
// the canvas layer that draws one letterboxed like the video
// (`StillLayer`, the only part that touches the DOM). main.js decides
// which still is due when, and when the stream takes over again.

import { pictureRect } from './drawing.js';

export const STILLS = Object.freeze({
  /** Frames either side of a paused one kept ready, so that a step shows at its execute-at. */
  neighbours: 8,
  /** A loop this short (frames) is kept ready whole. */
  loopMax: 24,
  /** Decoded pictures kept (the one on screen is never dropped). */
  maxCount: 48,
  /** …and their decoded size (width × height × 4). */
  maxBytes: 160 * 1024 * 1024,
  /** Prefetches on their way at once: the server decodes one version serially, so more would only delay the frame wanted now. */
  backgroundInFlight: 1,
  /** Frames wanted now (the head of the list) on their way at once, whatever the prefetches do. */
  maxInFlight: 4,
  /** After a `busy` answer, and after any other failure. */
  busyRetryMs: 300,
  failedRetryMs: 5000,
});

/** The server's widths: 64 up to the source's, in steps of 4 (widths between share a picture). */
export const MIN_STILL_WIDTH = 64;

/** A still's cache key. */
export const stillKey = (checksum, frame, width) => `${checksum}/${frame}/${width}`;

/**
 * The width to ask for so that the still lands 1:1 on the screen: the
 * picture's width in device pixels (`cssWidth × dpr`), down to the
 * server's step of 4, at most the source's width (scaling up shows
 * nothing new), at least the smallest the server makes.
 */
export function stillWidth(cssWidth, dpr, sourceWidth) {
  const device = Math.floor(cssWidth * (dpr || 1));
  const cap = sourceWidth > 0 ? sourceWidth : 1920;
  return Math.max(MIN_STILL_WIDTH, Math.floor(Math.min(device, cap) / 4) * 4);
}

/**
 * The frames to have ready around paused `frame` of a version `duration`
 * frames long, most wanted first: the frame, then its neighbours nearest
 * first (+1, −1, +2, −2, …), then the rest of the loop when the
 * transport's loop is short enough to keep whole.
 */
export function prefetchPlan(frame, duration, transport = null, cfg = STILLS) {
  const last = duration - 1;
  if (!(frame >= 0 && frame <= last)) return [];
  const out = [frame];
  for (let d = 1; d <= cfg.neighbours; d++) {
    if (frame + d <= last) out.push(frame + d);
    if (frame - d >= 0) out.push(frame - d);
  }
  const loopIn = transport?.loopIn;
  const loopOut = transport?.loopOut;
  if (loopIn != null && loopOut != null && loopIn <= loopOut && loopOut - loopIn + 1 <= cfg.loopMax) {
    const seen = new Set(out);
    for (let f = Math.max(0, loopIn); f <= Math.min(last, loopOut); f++) if (!seen.has(f)) out.push(f);
  }
  return out;
}

/**
 * Decoded stills by key, loaded in the order they are wanted and bounded
 * in count and bytes. `load(item, signal)` resolves `{value, bytes}`
 * (`value.close()` is called when it is dropped) or rejects; a rejection
 * with `retryMs` is tried again after that long. `onReady(key)` is told
 * of each still that arrives.
 */
export class StillCache {
  constructor({
    load, onReady = () => {}, cfg = STILLS, now = () => performance.now(), setTimer = (fn, ms) => setTimeout(fn, ms),
  }) {
    this.load = load;
    this.onReady = onReady;
    this.cfg = cfg;
    this.now = now;
    this.setTimer = setTimer;
    // key → {item, state: loading | ready | failed, value, bytes, usedAt, controller, retryAt, startedAt}
    this.entries = new Map();
    this.wanted = [];
    this.pinned = null;
    this.retryTimer = null;
    // Load times (ms) of the last stills that came, for the benches.
    this.loadTimes = [];
    this.stats = {
      loads: 0, aborted: 0, failed: 0, evicted: 0,
    };
  }

  /**
   * The stills wanted now, most wanted first (`[{key, …}]`, the rest of
   * each item is what `load` needs). Loads of stills no longer wanted are
   * abandoned; the rest start in order.
   */
  want(items) {
    const seen = new Set();
    this.wanted = items.filter((it) => !seen.has(it.key) && seen.add(it.key));
    this.pump();
  }

  /** The decoded still under `key`, or null if it is not ready. */
  get(key) {
    const e = this.entries.get(key);
    if (!e || e.state !== 'ready') return null;
    e.usedAt = this.now();
    return e.value;
  }

  has(key) {
    return this.entries.get(key)?.state === 'ready';
  }

  /** The still on screen (or null): never dropped while it is. */
  pin(key) {
    this.pinned = key;
    this.evict();
  }

  get readyBytes() {
    let bytes = 0;
    for (const e of this.entries.values()) if (e.state === 'ready') bytes += e.bytes;
    return bytes;
  }

  get readyCount() {
    let n = 0;
    for (const e of this.entries.values()) if (e.state === 'ready') n += 1;
    return n;
  }

  get inFlight() {
    let n = 0;
    for (const e of this.entries.values()) if (e.state === 'loading') n += 1;
    return n;
  }

  pump() {
    const wanted = new Set(this.wanted.map((it) => it.key));
    for (const [key, e] of this.entries) {
      if (e.state === 'loading' && !wanted.has(key)) {
        e.controller.abort();
        this.entries.delete(key);
        this.stats.aborted += 1;
      }
    }
    this.evict();
    let inFlight = this.inFlight;
    const now = this.now();
    let nextRetry = Infinity;
    for (let i = 0; i < this.wanted.length; i++) {
      const item = this.wanted[i];
      const e = this.entries.get(item.key);
      if (e && e.state !== 'failed') continue;
      if (e && e.retryAt > now) {
        nextRetry = Math.min(nextRetry, e.retryAt);
        continue;
      }
      const head = i === 0;
      if (!head) {
        if (inFlight >= this.cfg.backgroundInFlight) break;
        // Room for it: stills no longer wanted make way, anything wanted stays.
        if (!this.makeRoom(inFlight)) break;
      } else if (inFlight >= this.cfg.maxInFlight) {
        continue;
      }
      this.start(item);
      inFlight += 1;
    }
    if (nextRetry < Infinity && !this.retryTimer) {
      this.retryTimer = this.setTimer(() => {
        this.retryTimer = null;
        this.pump();
      }, Math.max(0, nextRetry - now));
    }
  }

  start(item) {
    const controller = new AbortController();
    const entry = {
      item, state: 'loading', value: null, bytes: 0, usedAt: this.now(), controller, retryAt: 0, startedAt: this.now(),
    };
    this.entries.set(item.key, entry);
    let loading;
    try {
      loading = Promise.resolve(this.load(item, controller.signal));
    } catch (err) {
      loading = Promise.reject(err);
    }
    loading.then(({ value, bytes }) => {
      if (this.entries.get(item.key) !== entry) {
        // Abandoned meanwhile.
        value?.close?.();
        return;
      }
      entry.state = 'ready';
      entry.value = value;
      entry.bytes = bytes ?? 0;
      entry.usedAt = this.now();
      this.stats.loads += 1;
      this.loadTimes.push(Math.round((this.now() - entry.startedAt) * 10) / 10);
      if (this.loadTimes.length > 200) this.loadTimes.shift();
      this.onReady(item.key);
      this.pump();
    }, (err) => {
      if (this.entries.get(item.key) !== entry) return;
      entry.state = 'failed';
      entry.error = err?.message ?? String(err);
      entry.retryAt = this.now() + (err?.retryMs ?? this.cfg.failedRetryMs);
      this.stats.failed += 1;
      this.pump();
    });
  }

  /**
   * Drops stills beyond the bounds: the least recently used of those not
   * wanted now, never the one on screen. Wanted ones are not loaded
   * beyond the bounds in the first place (see `pump`).
   */
  evict() {
    this.shrink(this.cfg.maxCount, this.cfg.maxBytes);
  }

  /**
   * Whether one more still fits beside the `inFlight` on their way,
   * after dropping stills not wanted (least recently used first): a
   * typical still's bytes are the largest held.
   */
  makeRoom(inFlight) {
    let typical = 0;
    for (const e of this.entries.values()) if (e.state === 'ready') typical = Math.max(typical, e.bytes);
    const count = this.cfg.maxCount - inFlight - 1;
    const bytes = this.cfg.maxBytes - (inFlight + 1) * typical;
    this.shrink(count, bytes);
    return this.readyCount <= count && this.readyBytes <= bytes;
  }

  /** Drops stills not wanted and not on screen, least recently used first, until within `count` and `bytes`. */
  shrink(maxCount, maxBytes) {
    const wanted = new Set(this.wanted.map((it) => it.key));
    let count = this.readyCount;
    let bytes = this.readyBytes;
    if (count <= maxCount && bytes <= maxBytes) return;
    const victims = [...this.entries.entries()]
      .filter(([key, e]) => e.state === 'ready' && key !== this.pinned && !wanted.has(key))
      .sort((a, b) => a[1].usedAt - b[1].usedAt);
    for (const [key, e] of victims) {
      if (count <= maxCount && bytes <= maxBytes) break;
      this.entries.delete(key);
      e.value?.close?.();
      count -= 1;
      bytes -= e.bytes;
      this.stats.evicted += 1;
    }
  }

  /** What the cache holds, for tests and benches. */
  snapshot() {
    return {
      entries: [...this.entries.values()].map((e) => ({
        key: e.item.key, frame: e.item.frame, width: e.item.width, state: e.state, bytes: e.bytes, error: e.error ?? null,
      })),
      wanted: this.wanted.map((it) => it.key),
      pinned: this.pinned,
      count: this.readyCount,
      bytes: this.readyBytes,
      inFlight: this.inFlight,
      limits: { maxCount: this.cfg.maxCount, maxBytes: this.cfg.maxBytes },
      stats: { ...this.stats },
      loadTimes: [...this.loadTimes],
    };
  }
}

/**
 * The canvas over the video that shows a still: opaque, the picture
 * letterboxed as the video is (object-fit: contain, `pictureRect`). A
 * still asked at the picture's device-pixel width lands 1:1 (the server's
 * widths step by 4 and its heights by 2, so it may sit up to two pixels
 * inside the video's rectangle); any other size is scaled into the
 * rectangle. It never decides what to show.
 */
export class StillLayer {
  constructor(canvas, onResize = () => {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d', { alpha: false });
    this.onResize = onResize;
    this.bitmap = null;
    this.shown = false;
    // Where the picture was drawn, in canvas (device) pixels, and whether 1:1.
    this.dest = null;
    this.cssWidth = 0;
    this.cssHeight = 0;
    this.dpr = 1;
    new ResizeObserver(() => this.resize()).observe(canvas);
    this.setShown(false);
  }

  /** The box's size now (layout is forced if it changed). */
  measure() {
    const box = this.canvas.getBoundingClientRect();
    this.cssWidth = box.width;
    this.cssHeight = box.height;
    this.dpr = window.devicePixelRatio || 1;
    return box;
  }

  /** The width to ask for a picture of `sourceWidth` × `sourceHeight` (see `stillWidth`), or null before layout. */
  requestWidth(sourceWidth, sourceHeight) {
    if (!this.cssWidth) this.measure();
    const rect = pictureRect(this.cssWidth, this.cssHeight, sourceWidth, sourceHeight);
    if (!(rect.width > 0)) return null;
    return stillWidth(rect.width, this.dpr, sourceWidth);
  }

  resize() {
    const before = `${this.cssWidth}x${this.cssHeight}@${this.dpr}`;
    this.measure();
    const w = Math.round(this.cssWidth * this.dpr);
    const h = Math.round(this.cssHeight * this.dpr);
    if (this.canvas.width !== w || this.canvas.height !== h) {
      this.canvas.width = w;
      this.canvas.height = h;
      this.render();
    }
    if (before !== `${this.cssWidth}x${this.cssHeight}@${this.dpr}`) this.onResize();
  }

  /** Shows `bitmap` (an ImageBitmap or any canvas image source with width and height). */
  draw(bitmap) {
    this.bitmap = bitmap;
    this.render();
    this.setShown(true);
  }

  hide() {
    this.bitmap = null;
    this.dest = null;
    this.setShown(false);
  }

  setShown(shown) {
    this.shown = shown;
    this.canvas.dataset.shown = String(shown);
  }

  render() {
    const { width: cw, height: ch } = this.canvas;
    const ctx = this.ctx;
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, cw, ch);
    const b = this.bitmap;
    if (!b || !cw || !ch) return;
    const rect = pictureRect(cw, ch, b.width, b.height);
    if (Math.abs(rect.width - b.width) < 4 && Math.abs(rect.height - b.height) < 4) {
      // Asked at this size: pixel for pixel.
      this.dest = {
        x: Math.round((cw - b.width) / 2), y: Math.round((ch - b.height) / 2), width: b.width, height: b.height, exact: true,
      };
    } else {
      this.dest = {
        x: rect.x, y: rect.y, width: rect.width, height: rect.height, exact: false,
      };
      ctx.imageSmoothingEnabled = true;
      ctx.imageSmoothingQuality = 'high';
    }
    const d = this.dest;
    ctx.drawImage(b, d.x, d.y, d.width, d.height);
  }

  /**
   * The pixels the layer shows of the picture (RGBA ImageData over the
   * drawn rectangle, or the strip alone with `strip`), or null.
   */
  pixels({ strip = null } = {}) {
    if (!this.shown || !this.dest) return null;
    const d = this.dest;
    const [x, y] = [Math.round(d.x), Math.round(d.y)];
    const [w, h] = [Math.round(d.width), Math.round(d.height)];
    if (strip) {
      const s = strip(w, h);
      return { data: this.ctx.getImageData(x + s.x, y + s.y, s.width, s.height), width: s.width, height: s.height, full: { w, h } };
    }
    return { data: this.ctx.getImageData(x, y, w, h), width: w, height: h };
  }
}
