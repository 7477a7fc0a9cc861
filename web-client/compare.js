// Version compare: two versions of an item in the one picture, side by
// side or as a wipe. The server composes both into the room's stream
// (ARCHITECTURE.md, "Compare"), so every page shows the same picture at
// the same frame; this module is the driver's control, the "A v1 / B v3"
// labels on the halves, the wipe handle, and which version a note or a
// drawing is about.

import { readRgba } from './framecode.js';

/** The least time between two wipe positions sent while dragging. */
export const WIPE_SEND_MS = 60;

/** The `compare` message: start or adjust (`version` B), or stop (`null`). */
export function compareMessage(version, mode = 'side', wipe = 0.5) {
  if (version == null) return { type: 'compare', version: null };
  return { type: 'compare', version, mode, wipe: Math.min(1, Math.max(0, Math.round(wipe * 1000) / 1000)) };
}

/**
 * The versions the room can show beside the one on screen: the
 * playlist's other versions of the same item at the same rate.
 */
export function comparableVersions(playlist, current) {
  if (!current) return [];
  const here = playlist.find((e) => e.version.id === current.id);
  return playlist
    .filter((e) => e.version.item === current.item && e.version.id !== current.id)
    .filter((e) => !here || e.fps === here.fps)
    .map((e) => e.version);
}

/** Which side of the picture (x from 0 to 1) a point is on: 'a' or 'b'. */
export function sideAt(compare, x) {
  if (!compare) return 'a';
  const line = compare.mode === 'wipe' ? compare.wipe : 0.5;
  return x < line ? 'a' : 'b';
}

/** The labels of the two halves, e.g. { a: 'A v1', b: 'B v3' }. */
export function labels(compare, current) {
  if (!compare) return null;
  const b = compare.other?.number;
  return { a: `A v${current?.number ?? '?'}`, b: `B v${b ?? '?'}` };
}

/** Where a `contain`-fitted picture of `w`×`h` sits in a box of `bw`×`bh`. */
export function fitted(w, h, bw, bh) {
  if (!w || !h || !bw || !bh) return { x: 0, y: 0, width: bw, height: bh };
  const scale = Math.min(bw / w, bh / h);
  const width = w * scale;
  const height = h * scale;
  return { x: (bw - width) / 2, y: (bh - height) / 2, width, height };
}

/**
 * Reads the frame code of each half of a side-by-side picture from
 * `source` (a video element, `w`×`h`): each version sits at half size in
 * its half, letterboxed, with its own strip.
 */
export function readHalves(source, w, h, canvas) {
  const half = { width: Math.floor(w / 2), height: Math.floor(h / 2) };
  const top = Math.floor((h - half.height) / 2);
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext('2d', { willReadFrequently: true, alpha: false });
  // One draw: both halves come from the same picture even while playing.
  ctx.drawImage(source, 0, 0, w, h);
  const read = (x) => readRgba(ctx.getImageData(x, top, half.width, half.height).data, half.width, half.height);
  return { a: read(0), b: read(w - half.width) };
}

/** The compare control, the labels and the wipe handle of one page. */
export class CompareView {
  /**
   * `send` sends a message; `room` is the page's room state; `monitor`
   * holds the picture; `after` is the element the control goes after.
   */
  constructor({ send, room, monitor, video, after, doc = document }) {
    this.send = send;
    this.room = room;
    this.monitor = monitor;
    this.video = video;
    /** Which half the next note is about ('a' or 'b'), while comparing. */
    this.noteSide = 'a';
    this.lastSent = 0;
    this.dragging = null;
    this.bar = doc.createElement('div');
    this.bar.id = 'compare-bar';
    this.bar.className = 'compare-bar';
    this.bar.setAttribute('role', 'group');
    this.bar.setAttribute('aria-label', 'Compare versions');
    this.bar.hidden = true;
    this.bar.innerHTML = `
      <span class="compare-title">Compare</span>
      <label class="compare-field">with <select id="compare-version" aria-label="Version to compare with"></select></label>
      <label class="compare-field">as <select id="compare-mode" aria-label="Compare as">
        <option value="side">side by side</option><option value="wipe">wipe</option></select></label>
      <button id="compare-toggle" class="btn small" type="button">Compare</button>
      <span id="compare-notes" class="compare-notes" role="radiogroup" aria-label="Notes are about" hidden>
        notes on
        <button id="compare-note-a" class="btn small" type="button" aria-pressed="true">A</button>
        <button id="compare-note-b" class="btn small" type="button" aria-pressed="false">B</button>
      </span>`;
    after.after(this.bar);
    this.versionSelect = this.bar.querySelector('#compare-version');
    this.modeSelect = this.bar.querySelector('#compare-mode');
    this.toggle = this.bar.querySelector('#compare-toggle');
    this.notesPick = this.bar.querySelector('#compare-notes');
    this.layer = doc.createElement('div');
    this.layer.className = 'compare-layer';
    this.layer.setAttribute('aria-hidden', 'true');
    this.layer.hidden = true;
    this.layer.innerHTML = '<span class="compare-label a"></span><span class="compare-label b"></span><div class="compare-wipe"></div>';
    monitor.append(this.layer);
    this.labelA = this.layer.querySelector('.compare-label.a');
    this.labelB = this.layer.querySelector('.compare-label.b');
    this.handle = this.layer.querySelector('.compare-wipe');
    this.bind();
  }

  bind() {
    this.toggle.addEventListener('click', () => {
      if (!this.room.isDriver()) return;
      if (this.room.compare) this.send(compareMessage(null));
      else if (this.versionSelect.value) this.send(compareMessage(this.versionSelect.value, this.modeSelect.value, 0.5));
    });
    const adjust = () => {
      const c = this.room.compare;
      if (!c || !this.room.isDriver()) return;
      this.send(compareMessage(this.versionSelect.value || c.version, this.modeSelect.value, c.wipe));
    };
    this.versionSelect.addEventListener('change', adjust);
    this.modeSelect.addEventListener('change', adjust);
    for (const side of ['a', 'b']) {
      this.bar.querySelector(`#compare-note-${side}`).addEventListener('click', () => this.pickNoteSide(side));
    }
    // In side by side, a click on a half says what the next note is about.
    this.monitor.addEventListener('pointerdown', (e) => {
      const c = this.room.compare;
      if (!c || e.target === this.handle) return;
      const x = this.pictureX(e.clientX);
      if (x != null) this.pickNoteSide(sideAt(c, x));
    });
    this.handle.addEventListener('pointerdown', (e) => {
      if (!this.room.isDriver() || this.room.compare?.mode !== 'wipe') return;
      e.preventDefault();
      e.stopPropagation();
      this.handle.setPointerCapture(e.pointerId);
      this.dragging = { wipe: this.room.compare.wipe };
    });
    this.handle.addEventListener('pointermove', (e) => {
      if (!this.dragging) return;
      const x = this.pictureX(e.clientX, true);
      if (x == null) return;
      this.dragging.wipe = x;
      this.place();
      const now = performance.now();
      if (now - this.lastSent >= WIPE_SEND_MS) this.sendWipe(now);
    });
    const drop = () => {
      if (!this.dragging) return;
      this.sendWipe(performance.now());
      this.dragging = null;
    };
    this.handle.addEventListener('pointerup', drop);
    this.handle.addEventListener('pointercancel', drop);
    this.video.addEventListener('resize', () => this.place());
    globalThis.addEventListener?.('resize', () => this.place());
  }

  sendWipe(now) {
    const c = this.room.compare;
    if (!c || !this.dragging) return;
    this.lastSent = now;
    this.send(compareMessage(c.version, 'wipe', this.dragging.wipe));
  }

  pickNoteSide(side) {
    this.noteSide = side;
    for (const s of ['a', 'b']) {
      this.bar.querySelector(`#compare-note-${s}`).setAttribute('aria-pressed', String(s === side));
    }
  }

  /** The picture's rectangle in the monitor's coordinates. */
  pictureRect() {
    return fitted(this.video.videoWidth, this.video.videoHeight, this.monitor.clientWidth, this.monitor.clientHeight);
  }

  /** A client x as a fraction of the picture's width, or null off it. */
  pictureX(clientX, clamp = false) {
    const box = this.monitor.getBoundingClientRect();
    const r = this.pictureRect();
    const x = (clientX - box.left - r.x) / r.width;
    if (clamp) return Math.min(1, Math.max(0, x));
    return x >= 0 && x <= 1 ? x : null;
  }

  /** Redraws the control and the picture's labels from the room. */
  render() {
    const room = this.room;
    const c = room.compare;
    const versions = comparableVersions(room.playlist ?? [], room.mediaVersion);
    const options = versions.map((v) => `${v.id}\u0000${v.item} v${v.number}`).join('\u0001');
    if (this.versionSelect.dataset.options !== options) {
      this.versionSelect.dataset.options = options;
      this.versionSelect.replaceChildren(...versions.map((v) => {
        const o = document.createElement('option');
        o.value = v.id;
        o.textContent = `${v.item} v${v.number}`;
        return o;
      }));
    }
    if (c) {
      if (versions.some((v) => v.id === c.version)) this.versionSelect.value = c.version;
      this.modeSelect.value = c.mode;
    }
    this.bar.hidden = !c && (versions.length === 0 || !room.canDrive());
    const driving = room.isDriver();
    this.versionSelect.disabled = !driving || versions.length === 0;
    this.modeSelect.disabled = !driving;
    this.toggle.disabled = !driving || (!c && versions.length === 0);
    this.toggle.textContent = c ? 'Stop compare' : 'Compare';
    this.toggle.setAttribute('aria-pressed', String(Boolean(c)));
    this.notesPick.hidden = !c || !room.canDrive();
    if (!c) this.pickNoteSide('a');
    this.layer.hidden = !c;
    this.monitor.classList.toggle('comparing', Boolean(c));
    const text = labels(c, room.mediaVersion);
    if (text) {
      this.labelA.textContent = text.a;
      this.labelB.textContent = text.b;
    }
    this.layer.dataset.mode = c?.mode ?? '';
    this.handle.classList.toggle('draggable', Boolean(c) && c.mode === 'wipe' && driving);
    this.place();
  }

  /** Puts the labels and the wipe handle on the picture. */
  place() {
    const c = this.room.compare;
    if (!c) return;
    const r = this.pictureRect();
    Object.assign(this.layer.style, {
      left: `${r.x}px`, top: `${r.y}px`, width: `${r.width}px`, height: `${r.height}px`,
    });
    const wipe = this.dragging?.wipe ?? c.wipe;
    this.handle.hidden = c.mode !== 'wipe';
    this.handle.style.left = `${wipe * 100}%`;
    // Side by side, each label sits on its half; a wipe, either side of the line.
    this.labelB.style.left = c.mode === 'wipe' ? `calc(${wipe * 100}% + 6px)` : 'calc(50% + 6px)';
  }

  /** The version a note or drawing is about, as its message names it. */
  tag(msg, side = this.noteSide) {
    const c = this.room.compare;
    if (c && side === 'b') msg.version = c.version;
    return msg;
  }

  /** A drawing is about the half its first point is on. */
  tagDrawing(msg, points) {
    const c = this.room.compare;
    if (!c || !points?.length) return msg;
    return this.tag(msg, sideAt(c, points[0][0]));
  }

  /** The frame codes of the halves of the picture on screen (side by side). */
  readHalves(canvas) {
    const w = this.video.videoWidth;
    const h = this.video.videoHeight;
    if (!w || !h || this.video.readyState < 2) return null;
    return readHalves(this.video, w, h, canvas);
  }
}
