// The timeline under the picture: a timecode ruler, the notes as markers
// in their authors' colours (ranges as spans), the in/out marks the next
// note takes, a playlist's entries as chapters, and a still of the frame
// under the pointer. The functions at the top are pure (node tests them);
// the Timeline class below does the DOM and owns no room state: main.js
// hands it what to draw and is told of clicks, drags and hovers.

import { StillCache, stillKey, stillWidth } from './stills.js';

/** Label frame steps within a second, then whole-second steps, smallest first. */
const SECOND_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600];

/**
 * The steps a ruler can take at timebase `base` (label frames per
 * second), smallest first: `{frames}` that divide a second evenly, so
 * that every second starts on a tick, then `{seconds}`.
 */
export function rulerSteps(base) {
  const steps = [];
  for (let k = 1; k < base; k++) if (base % k === 0) steps.push({ frames: k, size: k });
  for (const s of SECOND_STEPS) steps.push({ seconds: s, size: s * base });
  return steps;
}

/** Whether step `small` puts a tick on every tick of `big`. */
function divides(small, big) {
  if (small.frames != null) return big.frames == null || big.frames % small.frames === 0;
  return big.seconds != null && big.seconds % small.seconds === 0;
}

/**
 * The label counts (frames since 00:00:00:00) of `format` on step `step`
 * from `first` to `last`, ascending, at most `limit` of them. Ticks sit
 * on round labels (a whole second's `:00`, a whole minute's `00:00`), so
 * drop-frame ticks land where the labels are round, not every 30 counts:
 * a skipped label moves to the first one that exists.
 */
export function stepCounts(format, first, last, step, limit = 2000) {
  const out = [];
  const day = format.framesPerDay();
  const secondOf = (count) => {
    const tc = format.countToLabel(count);
    const days = Math.floor(count / day);
    return days * 86400 + (tc.hours * 60 + tc.minutes) * 60 + tc.seconds;
  };
  const countOf = (second, frames) => {
    const days = Math.floor(second / 86400);
    const s = second - days * 86400;
    const tc = {
      hours: Math.floor(s / 3600), minutes: Math.floor(s / 60) % 60, seconds: s % 60, frames, dropFrame: format.dropFrame,
    };
    if (format.dropFrame && tc.seconds === 0 && tc.minutes % 10 !== 0 && frames < format.drop) return null;
    return days * day + format.labelToCount(tc);
  };
  const firstSecond = secondOf(first);
  const lastSecond = secondOf(last);
  if (step.seconds != null) {
    const from = Math.ceil(firstSecond / step.seconds) * step.seconds;
    for (let t = from; t <= lastSecond && out.length < limit; t += step.seconds) {
      // A minute's first labels may be skipped: its first label stands in.
      let count = countOf(t, 0);
      if (count == null) count = countOf(t, format.drop);
      if (count >= first && count <= last) out.push(count);
    }
    return out;
  }
  for (let t = firstSecond; t <= lastSecond && out.length < limit; t++) {
    for (let f = 0; f < format.base && out.length < limit; f += step.frames) {
      const count = countOf(t, f);
      if (count != null && count >= first && count <= last) out.push(count);
    }
  }
  return out;
}

/**
 * The ruler of a timeline `duration` frames long labelled by `format`
 * (a TimecodeFormat) drawn `width` px wide: `labels` ([{frame, pos,
 * label}], `pos` 0…1 along the width) on the smallest step that keeps
 * labels at least `minLabelPx` apart, and `ticks` ([{frame, pos, major}])
 * on the smallest step under it that keeps ticks `minTickPx` apart. A
 * label is written to the right of its tick and is about `labelPx` wide:
 * one that would run off the right end is left out.
 */
export function rulerTicks({
  duration, format, width, minLabelPx = 96, minTickPx = 8, labelPx = 76,
}) {
  const empty = { labels: [], ticks: [], step: null, minor: null };
  if (!(duration >= 1) || !(width > 0)) return empty;
  const last = Math.max(1, duration - 1);
  const pxPerFrame = width / last;
  const steps = rulerSteps(format.base);
  const step = steps.find((s) => s.size * pxPerFrame >= minLabelPx) ?? steps.at(-1);
  const minor = steps.filter((s) => s.size < step.size && divides(s, step) && s.size * pxPerFrame >= minTickPx)[0] ?? null;
  const first = format.start;
  const end = format.start + duration - 1;
  const pos = (count) => (count - first) / last;
  const labels = [];
  for (const count of stepCounts(format, first, end, step)) {
    const p = pos(count);
    if (p * width + labelPx > width) continue;
    labels.push({ frame: count - first, pos: p, label: format.label(count - first) });
  }
  const majors = new Set(stepCounts(format, first, end, step));
  const ticks = (minor ? stepCounts(format, first, end, minor) : [...majors])
    .map((count) => ({ frame: count - first, pos: pos(count), major: majors.has(count) }));
  return {
    labels, ticks, step, minor,
  };
}

/** Where frame `frame` sits along a timeline `duration` frames long, 0…1. */
export function frameToPos(frame, duration) {
  const last = Math.max(1, duration - 1);
  return Math.min(1, Math.max(0, frame / last));
}

/** The frame at `pos` (0…1) along a timeline `duration` frames long. */
export function posToFrame(pos, duration) {
  const last = Math.max(0, duration - 1);
  return Math.min(last, Math.max(0, Math.round(pos * last)));
}

/**
 * Author colours: readable on the dark page and distinct from one
 * another; a name always gets the same one, on every page.
 */
export const AUTHOR_COLOURS = Object.freeze([
  '#ff9f0a', '#64d2ff', '#ff6482', '#30d158', '#bf5af2', '#ffd60a', '#5e8bff', '#ff7a45', '#40e0c0', '#e07be0',
]);

/** The colour of author `name` (FNV-1a of its UTF-16 units, so stable across pages and reloads). */
export function authorColour(name) {
  let h = 0x811c9dc5;
  const s = String(name ?? '');
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return AUTHOR_COLOURS[h % AUTHOR_COLOURS.length];
}

/**
 * The in/out marks after marking `which` ('in' or 'out') at `frame`, as
 * the server treats loop marks: an in after the out clears the out, an
 * out before the in clears the in.
 */
export function setMark(marks, which, frame) {
  const next = { in: marks?.in ?? null, out: marks?.out ?? null };
  next[which] = frame;
  if (which === 'in' && next.out != null && next.out < frame) next.out = null;
  if (which === 'out' && next.in != null && next.in > frame) next.in = null;
  return next;
}

/** The marks a drag from frame `a` to frame `b` makes (either way round). */
export function dragMarks(a, b) {
  return { in: Math.min(a, b), out: Math.max(a, b) };
}

/**
 * Where the next note goes: the marked range when both marks are set
 * (`frameOut` null when it is a single frame), else the frame on screen.
 */
export function noteSpan(marks, shown) {
  if (marks?.in != null && marks?.out != null && marks.in <= marks.out) {
    return { frame: marks.in, frameOut: marks.out > marks.in ? marks.out : null };
  }
  return { frame: shown, frameOut: null };
}

/**
 * A playlist's entries as chapters along the reel: `[{index, start,
 * width, label, current}]`, `start` and `width` shares (0…1) of the
 * whole running time (entries may differ in rate, so by seconds).
 */
export function chapters(playlist, current, nameOf = (e, i) => `Entry ${i + 1}`) {
  const seconds = (playlist ?? []).map((e) => {
    const [num, den = 1] = String(e.fps).split('/').map(Number);
    return num > 0 && den > 0 ? (Math.max(1, e.durationFrames) * den) / num : 0;
  });
  const total = seconds.reduce((a, b) => a + b, 0);
  if (!(total > 0)) return [];
  let at = 0;
  return seconds.map((s, i) => {
    const chapter = {
      index: i, start: at / total, width: s / total, label: nameOf(playlist[i], i), current: i === current,
    };
    at += s;
    return chapter;
  });
}

/**
 * At most one call per `ms`, the last one winning: the first goes at
 * once, later ones within the window wait for its end, and only the
 * newest of those runs. Timers are injected so node can drive it.
 */
export class Throttle {
  constructor(ms, fn, {
    // Wrapped: a browser's setTimeout called as a method of this object throws.
    now = () => performance.now(), setTimer = (f, t) => setTimeout(f, t), clearTimer = (id) => clearTimeout(id),
  } = {}) {
    this.ms = ms;
    this.fn = fn;
    this.now = now;
    this.setTimer = setTimer;
    this.clearTimer = clearTimer;
    this.lastAt = -Infinity;
    this.timer = null;
    this.args = null;
  }

  call(...args) {
    this.args = args;
    const wait = this.lastAt + this.ms - this.now();
    if (wait <= 0 && this.timer == null) {
      this.run();
      return;
    }
    if (this.timer == null) this.timer = this.setTimer(() => this.run(), Math.max(0, wait));
  }

  run() {
    this.timer = null;
    this.lastAt = this.now();
    const args = this.args;
    this.args = null;
    if (args) this.fn(...args);
  }

  cancel() {
    if (this.timer != null) this.clearTimer(this.timer);
    this.timer = null;
    this.args = null;
  }
}

/** How often a hover may ask for a new still. */
export const HOVER_STILL_MS = 120;
/** The hover still's width on the page, in CSS px. */
const HOVER_CSS_WIDTH = 160;
/** A drag shorter than this is a click. */
const DRAG_PX = 4;

const make = (tag, className, text) => {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
};

/**
 * The timeline's DOM inside `root` (the `.scrub` box holding the
 * scrubber, the loop band and `#note-marks`). `hooks`: `seek(frame)`
 * (a click on the ruler), `marks(in, out)` (a drag on the ruler or the
 * markers), `cue(entry)` (a chapter), `still(frame)` → `{checksum,
 * sourceWidth}` or null, and `load(item, signal)` (main.js's still
 * loader, shared with the player's cache).
 */
export class Timeline {
  constructor(root, hooks) {
    this.root = root;
    this.hooks = hooks;
    this.duration = 0;
    this.format = null;
    this.marks = { in: null, out: null };
    this.canMark = false;
    this.canSeek = false;

    this.chapterLane = make('div', 'tl-chapters');
    this.chapterLane.id = 'chapters';
    this.chapterLane.hidden = true;
    this.ruler = make('div', 'tl-ruler');
    this.ruler.id = 'ruler';
    this.ruler.title = 'Drag to mark a range for the next note';
    this.markLane = root.querySelector('#note-marks');
    this.markLane.title = 'Drag to mark a range for the next note';
    this.markBand = make('div', 'tl-markband');
    this.markBand.id = 'mark-band';
    this.markBand.hidden = true;
    this.hover = make('div', 'tl-hover');
    this.hover.id = 'tl-hover';
    this.hover.hidden = true;
    this.hoverCanvas = make('canvas', 'tl-hover-still');
    this.hoverLabel = make('span', 'tl-hover-tc');
    this.hover.append(this.hoverCanvas, this.hoverLabel);
    this.playhead = make('div', 'tl-playhead');
    root.prepend(this.chapterLane, this.ruler);
    this.ruler.after(this.markLane);
    root.append(this.hover);
    this.ruler.append(this.markBand, this.playhead);

    this.hoverFrame = null;
    this.hoverKey = null;
    this.stills = new StillCache({
      load: hooks.load,
      // Only the frame under the pointer is wanted, so only it is kept
      // (plus what is drawn) and a load no longer wanted is abandoned.
      cfg: {
        neighbours: 0, loopMax: 0, maxCount: 4, maxBytes: 4 * 1024 * 1024, maxInFlight: 1, backgroundInFlight: 1,
        failedRetryMs: 1000, busyRetryMs: 500,
      },
      onReady: (key) => { if (key === this.hoverKey) this.drawHover(); },
    });
    this.fetchThrottle = new Throttle(HOVER_STILL_MS, (frame) => this.wantStill(frame));

    new ResizeObserver(() => this.renderRuler()).observe(root);
    this.bindPointer();
    this.chapterLane.addEventListener('click', (ev) => {
      const c = ev.target.closest('[data-entry]');
      if (c && !c.disabled) hooks.cue?.(Number(c.dataset.entry));
    });
  }

  /** A new timeline (a welcome, a cue): `duration` frames labelled by `format`. */
  setSession(duration, format) {
    // A reconnect's welcome rebuilds an equal format: the marks stay.
    const key = `${duration}|${format.fpsNum}/${format.fpsDen}|${format.dropFrame}|${format.start}`;
    const changed = key !== this.sessionKey;
    this.sessionKey = key;
    this.duration = duration;
    this.format = format;
    if (changed) {
      this.setMarks({ in: null, out: null });
      this.renderRuler();
    }
  }

  /** Who may mark ranges (note authors) and seek (the driver). */
  setAbilities({ canMark, canSeek }) {
    this.canMark = canMark;
    this.canSeek = canSeek;
    this.root.dataset.canMark = String(canMark);
  }

  renderRuler() {
    if (!this.format || !this.duration) return;
    const width = this.ruler.clientWidth;
    const { labels, ticks } = rulerTicks({ duration: this.duration, format: this.format, width });
    const key = `${width}|${this.duration}|${labels.length}|${ticks.length}|${labels[0]?.label}`;
    if (key === this.rulerKey) return;
    this.rulerKey = key;
    const nodes = ticks.map((t) => {
      const tick = make('span', t.major ? 'tl-tick major' : 'tl-tick');
      tick.style.left = `${t.pos * 100}%`;
      return tick;
    });
    for (const l of labels) {
      const label = make('span', 'tl-label', l.label);
      label.style.left = `${l.pos * 100}%`;
      label.dataset.frame = String(l.frame);
      nodes.push(label);
    }
    this.ruler.replaceChildren(...nodes, this.markBand, this.playhead);
  }

  /** The playhead on the ruler (the scrubber's thumb shows it below). */
  showFrame(frame) {
    if (frame === this.playheadFrame || !this.duration) return;
    this.playheadFrame = frame;
    this.playhead.style.left = `${frameToPos(frame, this.duration) * 100}%`;
  }

  /**
   * The notes as markers: `notes` are [{id, frame, frameOut, author,
   * text, resolved}], `selected` a note id or null, `label(frame)` the
   * timecode. One `.note-mark` per note (`data-id`), a span for a range.
   */
  renderNotes(notes, selected, label) {
    // Notes on one frame fan out a few px each, so that every author's pin shows.
    const onFrame = new Map();
    const nodes = notes.map((n) => {
      const range = n.frameOut != null && n.frameOut > n.frame;
      const mark = make('div', range ? 'note-mark range' : 'note-mark');
      const at = frameToPos(n.frame, this.duration);
      mark.style.left = `${at * 100}%`;
      if (range) mark.style.width = `${(frameToPos(n.frameOut, this.duration) - at) * 100}%`;
      const colour = authorColour(n.author);
      mark.style.setProperty('--author', colour);
      if (!range) {
        const nth = onFrame.get(n.frame) ?? 0;
        onFrame.set(n.frame, nth + 1);
        if (nth) mark.style.setProperty('--fan', `${Math.min(nth, 4) * 5}px`);
      }
      mark.dataset.id = String(n.id);
      mark.dataset.colour = colour;
      mark.dataset.frame = String(n.frame);
      if (range) mark.dataset.frameOut = String(n.frameOut);
      mark.title = `${label(n.frame)}${range ? ` → ${label(n.frameOut)}` : ''} · ${n.author}: ${n.text}`;
      mark.setAttribute('role', 'button');
      mark.setAttribute('aria-label', `Note by ${n.author} at ${label(n.frame)}`);
      if (n.id === selected) mark.classList.add('selected');
      if (n.resolved) mark.classList.add('resolved');
      return mark;
    });
    // Ranges under points, so that a point inside a span stays clickable.
    nodes.sort((a, b) => Number(b.classList.contains('range')) - Number(a.classList.contains('range')));
    this.markLane.replaceChildren(...nodes);
  }

  /** The in/out marks the next note takes, drawn as a band on the ruler. */
  setMarks(marks) {
    this.marks = { in: marks.in ?? null, out: marks.out ?? null };
    const { in: a, out: b } = this.marks;
    const band = this.markBand;
    band.hidden = a == null && b == null;
    if (band.hidden || !this.duration) return;
    const from = frameToPos(a ?? b, this.duration);
    const to = frameToPos(b ?? a, this.duration);
    band.style.left = `${from * 100}%`;
    band.style.width = a != null && b != null ? `${Math.max(0, to - from) * 100}%` : '0';
    band.classList.toggle('open', a == null || b == null);
    band.dataset.in = a == null ? '' : String(a);
    band.dataset.out = b == null ? '' : String(b);
  }

  /** A playlist's entries as chapters; `canCue` when this page drives. */
  renderChapters(playlist, current, canCue, nameOf) {
    const list = chapters(playlist, current, nameOf);
    this.chapterLane.hidden = list.length < 2;
    if (list.length < 2) {
      this.chapterLane.replaceChildren();
      return;
    }
    this.chapterLane.replaceChildren(...list.map((c) => {
      const chip = make('button', c.current ? 'tl-chapter current' : 'tl-chapter', c.label);
      chip.type = 'button';
      chip.style.left = `${c.start * 100}%`;
      chip.style.width = `${c.width * 100}%`;
      chip.dataset.entry = String(c.index);
      chip.disabled = c.current || !canCue;
      chip.title = c.current ? `${c.label}: on screen` : `${c.label}${canCue ? ': cue the room here' : ''}`;
      if (c.current) chip.setAttribute('aria-current', 'true');
      return chip;
    }));
  }

  /** The frame under client x `clientX`, over the ruler's width. */
  frameAt(clientX) {
    const box = this.ruler.getBoundingClientRect();
    if (!(box.width > 0)) return null;
    return posToFrame((clientX - box.left) / box.width, this.duration);
  }

  bindPointer() {
    let drag = null;
    const lanes = [this.ruler, this.markLane];
    const down = (ev) => {
      if (ev.button !== 0 || !this.duration) return;
      // A marker is a click on its note (main.js listens on the lane).
      if (ev.target.closest('.note-mark')) return;
      drag = { x: ev.clientX, from: this.frameAt(ev.clientX), lane: ev.currentTarget, moved: false };
      ev.currentTarget.setPointerCapture?.(ev.pointerId);
    };
    const move = (ev) => {
      // A finger has no hover: no card, no stills fetched.
      if (ev.pointerType !== 'touch') this.hoverAt(ev.clientX);
      if (!drag) return;
      if (!drag.moved && Math.abs(ev.clientX - drag.x) < DRAG_PX) return;
      if (!this.canMark) return;
      drag.moved = true;
      const m = dragMarks(drag.from, this.frameAt(ev.clientX));
      this.setMarks(m);
    };
    const up = (ev) => {
      if (!drag) return;
      const done = drag;
      drag = null;
      if (done.moved) {
        this.hooks.marks?.(this.marks.in, this.marks.out);
      } else if (done.lane === this.ruler && this.canSeek) {
        this.hooks.seek?.(this.frameAt(ev.clientX));
      }
    };
    for (const lane of lanes) {
      lane.addEventListener('pointerdown', down);
      lane.addEventListener('pointerup', up);
      lane.addEventListener('pointercancel', () => { drag = null; });
    }
    this.root.addEventListener('pointermove', move);
    this.root.addEventListener('pointerleave', () => { if (!drag) this.hoverAt(null); });
  }

  /** The hover card at client x `clientX` (null hides it). Touch has no hover: only a mouse or pen shows it. */
  hoverAt(clientX) {
    if (clientX == null || !this.duration || !this.format) {
      this.hover.hidden = true;
      this.hoverFrame = null;
      this.hoverKey = null;
      this.fetchThrottle.cancel();
      this.stills.want([]);
      return;
    }
    const frame = this.frameAt(clientX);
    if (frame == null) return;
    const box = this.root.getBoundingClientRect();
    const half = HOVER_CSS_WIDTH / 2;
    const x = Math.min(Math.max(clientX - box.left, half), Math.max(half, box.width - half));
    this.hover.style.left = `${x}px`;
    this.hover.hidden = false;
    if (frame === this.hoverFrame) return;
    this.hoverFrame = frame;
    this.hover.dataset.frame = String(frame);
    this.hoverLabel.textContent = this.format.label(frame);
    this.fetchThrottle.call(frame);
  }

  wantStill(frame) {
    if (frame !== this.hoverFrame) return;
    const about = this.hooks.still?.(frame);
    if (!about?.checksum) {
      this.hover.dataset.still = '';
      return;
    }
    const width = stillWidth(HOVER_CSS_WIDTH, window.devicePixelRatio || 1, about.sourceWidth);
    const item = { key: stillKey(about.checksum, frame, width), checksum: about.checksum, frame, width };
    this.hoverKey = item.key;
    this.stills.want([item]);
    if (this.stills.has(item.key)) this.drawHover();
  }

  drawHover() {
    const bitmap = this.stills.get(this.hoverKey);
    if (!bitmap) return;
    const c = this.hoverCanvas;
    c.width = bitmap.width;
    c.height = bitmap.height;
    c.getContext('2d').drawImage(bitmap, 0, 0);
    this.stills.pin(this.hoverKey);
    this.hover.dataset.still = this.hoverKey.split('/')[1];
  }
}
