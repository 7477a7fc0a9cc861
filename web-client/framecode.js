// The machine-readable frame code burnt into test media: a port of
// `src/framecode.rs`, which is the reference. A strip along the bottom
// 1/16 of the picture holds 32 cells, each 1/32 of the width: a white
// marker, a black marker, the frame number in 24 bits (most significant
// first) and 6 check bits (the 24 bits XOR-folded). The reader samples
// the middle half of each cell in both directions and thresholds halfway
// between the two markers, so it survives scaling, compression and the
// browser's YUV → RGB conversion.
//
// Pure: planes in, numbers out. `readVideoFrameCode` in main.js does the
// canvas part (it draws only the strip, see `stripRect`).

/** Cells across the strip. */
export const CELLS = 32;
const BITS = 24;
const FIRST_BIT = 2;
const FIRST_CHECK = FIRST_BIT + BITS;
const HEIGHT_DIVISOR = 16;
const WHITE = 235;
const BLACK = 16;

/** The largest frame number the code can carry. */
export const MAX_FRAME = (1 << BITS) - 1;

/** The strip's rows of a picture `height` tall: [start, end). */
export function stripRows(height) {
  const h = Math.max(1, Math.floor(height / HEIGHT_DIVISOR));
  return [height - h, height];
}

/** The columns of cell `i` of a picture `width` wide: [start, end). */
function cellColumns(width, i) {
  return [Math.floor((i * width) / CELLS), Math.floor(((i + 1) * width) / CELLS)];
}

export function checkBits(frame) {
  return (frame ^ (frame >>> 6) ^ (frame >>> 12) ^ (frame >>> 18)) & 0x3f;
}

/** The value of each cell for a frame number, white as `true`. */
function cells(frame) {
  const out = new Array(CELLS).fill(false);
  out[0] = true;
  for (let bit = 0; bit < BITS; bit++) out[FIRST_BIT + bit] = ((frame >>> (BITS - 1 - bit)) & 1) === 1;
  const check = checkBits(frame);
  for (let bit = 0; bit < CELLS - FIRST_CHECK; bit++) {
    out[FIRST_CHECK + bit] = ((check >>> (CELLS - FIRST_CHECK - 1 - bit)) & 1) === 1;
  }
  return out;
}

/** Paints the code for `frame` onto an 8-bit plane `{width, height, stride}` (for tests). */
export function paint(frame, luma, layout) {
  const f = frame & MAX_FRAME;
  const [r0, r1] = stripRows(layout.height);
  cells(f).forEach((white, i) => {
    const [c0, c1] = cellColumns(layout.width, i);
    for (let row = r0; row < r1; row++) luma.fill(white ? WHITE : BLACK, row * layout.stride + c0, row * layout.stride + c1);
  });
}

/**
 * The reader, over any sample source: `sample(x, y)` returns the luma at
 * column x of strip row y, where strip rows run over [r0, r1). Returns the
 * frame number or null, exactly as `framecode::read`.
 */
function readWith(width, r0, r1, sample) {
  const span = r1 - r0;
  const s0 = r0 + Math.floor(span / 4);
  const s1 = r1 - Math.floor(span / 4);
  const mean = (i) => {
    const [c0, c1] = cellColumns(width, i);
    const w = c1 - c0;
    const a = c0 + Math.floor(w / 4);
    const b = c1 - Math.floor(w / 4);
    let sum = 0;
    let n = 0;
    for (let y = s0; y < s1; y++) {
      for (let x = a; x < b; x++) {
        sum += sample(x, y);
        n += 1;
      }
    }
    return Math.floor(sum / Math.max(n, 1));
  };
  const white = mean(0);
  const black = mean(1);
  if (white < black + 64) return null;
  const threshold = Math.floor((white + black) / 2);
  const bit = (i) => (mean(i) > threshold ? 1 : 0);
  let frame = 0;
  for (let b = 0; b < BITS; b++) frame = (frame << 1) | bit(FIRST_BIT + b);
  let check = 0;
  for (let i = FIRST_CHECK; i < CELLS; i++) check = (check << 1) | bit(i);
  return check === checkBits(frame) ? frame : null;
}

/**
 * `framecode::read` on an 8-bit luma plane `{width, height, stride}` of a
 * picture `height` rows tall. With `firstRow`, the plane holds only the
 * picture's rows from `firstRow` on (enough when it covers the strip).
 */
export function read(luma, { width, height, stride, firstRow = 0 }) {
  const [r0, r1] = stripRows(height);
  if (r0 < firstRow) throw new RangeError(`the plane starts at row ${firstRow}, after the strip's first row ${r0}`);
  return readWith(width, r0, r1, (x, y) => luma[(y - firstRow) * stride + x]);
}

/**
 * BT.601 luma of an sRGB pixel in integers (0.299 R + 0.587 G + 0.114 B).
 * The browser expands video-range Y to full range, so markers read about
 * 255 and 0 instead of 235 and 16; the threshold adapts either way.
 */
const luma601 = (r, g, b) => (77 * r + 150 * g + 29 * b + 128) >> 8;

/**
 * Reads RGBA pixels (an ImageData's `data`, `width` × `height`). With
 * `strip: true` the pixels are the strip alone (see `stripRect`), every
 * row of them; otherwise they are the whole picture.
 */
export function readRgba(data, width, height, { strip = false } = {}) {
  const [r0, r1] = strip ? [0, height] : stripRows(height);
  return readWith(width, r0, r1, (x, y) => {
    const i = (y * width + x) * 4;
    return luma601(data[i], data[i + 1], data[i + 2]);
  });
}

/** The source rectangle of a picture's strip: what to draw onto a canvas. */
export function stripRect(width, height) {
  const [r0, r1] = stripRows(height);
  return { x: 0, y: r0, width, height: r1 - r0 };
}
