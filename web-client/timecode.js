// SMPTE timecode labels, drop-frame included: a line-for-line port of
// src/timecode.rs. The display must print exactly the label the server
// would parse back to the same frame, so this mirrors the Rust integer
// arithmetic rather than anything clever; counts stay far below 2^53, so
// plain Numbers are exact here.

/** Why a timecode string or format was refused; `kind` matches the Rust variant. */
export class TimecodeError extends Error {
  constructor(kind, message) {
    super(message);
    this.name = 'TimecodeError';
    this.kind = kind;
  }
}

/** The rates SyncReel accepts, as reduced fractions. */
export const RATES = Object.freeze([
  [24000, 1001], [24, 1], [25, 1], [30000, 1001], [30, 1],
  [48, 1], [50, 1], [60000, 1001], [60, 1],
]);

/** Integer frames of one timecode second: 24 for 23.976, 30 for 29.97. */
export function timebase(num, den) {
  return Math.floor((num + den - 1) / den);
}

export function allowsDropFrame(num, den) {
  return den === 1001 && (num === 30000 || num === 60000);
}

function droppedPerMinute(num, den) {
  return num === 60000 && den === 1001 ? 4 : 2;
}

// Rust's rem_euclid: the result is never negative.
function remEuclid(a, b) {
  const r = a % b;
  return r < 0 ? r + Math.abs(b) : r;
}

const pad2 = (n) => String(n).padStart(2, '0');

/** A label: {hours, minutes, seconds, frames, dropFrame}. */
export function formatLabel(tc) {
  const sep = tc.dropFrame ? ';' : ':';
  return `${pad2(tc.hours)}:${pad2(tc.minutes)}:${pad2(tc.seconds)}${sep}${pad2(tc.frames)}`;
}

const isDigit = (c) => c >= 48 && c <= 57;

/** Parses `HH:MM:SS:FF` (any of `:;.,` before the frames) into a label. */
export function parseLabel(text) {
  const syntax = () =>
    new TimecodeError('Syntax', `timecode ${JSON.stringify(text)} is not of the form HH:MM:SS:FF`);
  const s = String(text).trim();
  if (s.length < 11 || s.length > 12) throw syntax();
  const code = (i) => s.charCodeAt(i);
  const two = (i) => {
    if (!isDigit(code(i)) || !isDigit(code(i + 1))) throw syntax();
    return (code(i) - 48) * 10 + (code(i + 1) - 48);
  };
  if (s[2] !== ':' || s[5] !== ':') throw syntax();
  let dropFrame;
  if (s[8] === ':') dropFrame = false;
  else if (s[8] === ';' || s[8] === '.' || s[8] === ',') dropFrame = true;
  else throw syntax();
  let frames = 0;
  for (let i = 9; i < s.length; i++) {
    if (!isDigit(code(i))) throw syntax();
    frames = frames * 10 + (code(i) - 48);
  }
  return { hours: two(0), minutes: two(3), seconds: two(6), frames, dropFrame };
}

/**
 * How a session's frames are labelled: rate, drop-frame, and the label of
 * media frame 0. Build it from a welcome's session with `fromSession`.
 */
export class TimecodeFormat {
  constructor(fpsNum, fpsDen, dropFrame = false, startLabel = '00:00:00:00') {
    if (!RATES.some(([n, d]) => n === fpsNum && d === fpsDen)) {
      throw new TimecodeError('UnsupportedRate', `unsupported frame rate ${fpsNum}/${fpsDen}`);
    }
    if (dropFrame && !allowsDropFrame(fpsNum, fpsDen)) {
      throw new TimecodeError('DropFrameNotAllowed',
        'drop-frame timecode exists only at 30000/1001 and 60000/1001');
    }
    this.fpsNum = fpsNum;
    this.fpsDen = fpsDen;
    this.dropFrame = dropFrame;
    this.base = timebase(fpsNum, fpsDen);
    this.drop = droppedPerMinute(fpsNum, fpsDen);
    this.start = 0;
    this.start = this.labelToCount(parseLabel(startLabel));
  }

  static fromSession(session) {
    return new TimecodeFormat(session.fpsNum, session.fpsDen, session.dropFrame,
      session.startTimecode);
  }

  /** The label of a media frame, as text. */
  label(frame) {
    return formatLabel(this.countToLabel(this.start + frame));
  }

  /**
   * The media frame that carries this label. Labels wrap at 24 hours, so
   * whichever reading lies nearer the start wins, as in the Rust.
   */
  frameOf(tc) {
    const count = this.labelToCount(tc);
    const day = this.framesPerDay();
    const offset = count - this.start;
    // Rust's `-day / 2` truncates toward zero; day is even at every rate,
    // so the plain division below is the same number.
    if (offset < -day / 2) return offset + day;
    if (offset > day / 2) return offset - day;
    return offset;
  }

  parse(text) {
    return this.frameOf(parseLabel(text));
  }

  framesPerDay() {
    const nominal = this.base * 86400;
    return this.dropFrame ? nominal - 144 * 9 * this.drop : nominal;
  }

  labelToCount(tc) {
    const base = this.base;
    const shown = () => formatLabel(tc);
    if (tc.minutes > 59 || tc.seconds > 59 || tc.frames >= base || tc.hours > 23) {
      throw new TimecodeError('FieldOutOfRange',
        `timecode ${JSON.stringify(shown())} has a field out of range for this rate`);
    }
    const { hours: h, minutes: m, seconds: s, frames: f } = tc;
    const nominal = ((h * 60 + m) * 60 + s) * base + f;
    if (!this.dropFrame) return nominal;
    const drop = this.drop;
    if (s === 0 && m % 10 !== 0 && f < drop) {
      throw new TimecodeError('DroppedLabel',
        `timecode ${JSON.stringify(shown())} is a label that drop-frame counting skips`);
    }
    const totalMinutes = h * 60 + m;
    return nominal - drop * (totalMinutes - Math.floor(totalMinutes / 10));
  }

  countToLabel(count) {
    const base = this.base;
    let n = remEuclid(count, this.framesPerDay());
    if (this.dropFrame) {
      const drop = this.drop;
      const perMinute = base * 60 - drop;
      const perTen = base * 600 - 9 * drop;
      const tens = Math.floor(n / perTen);
      const rest = n % perTen;
      // The first minute of each ten keeps all its labels; every later
      // minute skips `drop` labels at its start.
      const skippedInBlock = rest < drop ? 0 : drop * Math.floor((rest - drop) / perMinute);
      n += 9 * drop * tens + skippedInBlock;
    }
    return {
      hours: Math.floor(n / (base * 3600)),
      minutes: Math.floor(n / (base * 60)) % 60,
      seconds: Math.floor(n / base) % 60,
      frames: n % base,
      dropFrame: this.dropFrame,
    };
  }
}
