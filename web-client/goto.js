// "Go to": what an editor types into a timecode field, read the way an
// NLE reads it, and turned into a media frame before anything is sent,
// so that a value that cannot be placed is explained where it was typed
// rather than by a toast from the server. Pure: it reads the session's
// TimecodeFormat and the frame on screen, and touches nothing.
//
// Forms (the field's placeholder and hint name them):
//   01:00:10:05   a whole timecode; `;` (or `.` `,`) before the frames in
//                 drop-frame sessions, which the session decides anyway
//   1000, 10:00   digits filled from the right as HH MM SS FF; fields not
//                 typed come from the start timecode, so with a 01:00:00:00
//                 start `1000` is 01:00:10:00 and `01001000` the same
//   f1234, #1234  a frame number, 0 being the first frame (as the counter)
//   +24, -24      frames from the frame on screen; `+1:00` is one second
//                 (digits with a colon fill from the right, as above)

import { formatLabel, timebase } from './timecode.js';

/** The line under the field: every form, briefly. */
export const GOTO_HINT = 'Timecode 01:00:10:05 · digits 1000 = 10 s in · frame f1234 · step +24 / −24';

const SEPARATORS = /[:;.,]/;

/**
 * Reads `text` in a session labelled by `format` (a TimecodeFormat) with
 * `duration` frames, `current` being the frame on screen. Returns
 * `{frame, label}` for a place in the media, `{error}` (a sentence) for
 * anything else, or null for an empty field.
 */
export function parseGoto(text, { format, duration, current }) {
  const s = String(text ?? '').trim().replace(/\s+/g, '');
  if (!s) return null;
  const last = duration - 1;
  const at = (frame) => ({ frame, label: format.label(frame) });

  const relative = s.match(/^([+\-−])([\d:;.,]+)$/);
  if (relative) {
    const sign = relative[1] === '+' ? 1 : -1;
    const amount = SEPARATORS.test(relative[2]) ? durationFrames(relative[2], format) : Number(relative[2]);
    if (amount == null) return { error: `“${s}” is not a step: write +24 for 24 frames, or +1:00 for one second.` };
    if (current == null) return { error: 'There is no frame on screen yet to step from.' };
    // A step past either end stops there, as a jog does.
    return at(Math.min(last, Math.max(0, current + sign * amount)));
  }

  const numbered = s.match(/^[fF#](\d+)$/);
  if (numbered) {
    const frame = Number(numbered[1]);
    if (frame > last) return { error: `Frame ${frame} is past the last frame, ${last} (${format.label(last)}).` };
    return at(frame);
  }

  if (!/^[\d:;.,]+$/.test(s)) {
    return { error: `“${s}” is not a time. ${GOTO_HINT}.` };
  }
  const tc = labelOf(s, format);
  if (tc.error) return tc;
  const problem = fieldProblem(tc, format);
  if (problem) return { error: problem };
  let frame;
  try {
    frame = format.frameOf(tc);
  } catch (err) {
    return { error: `${formatLabel(tc)} cannot be placed: ${err.message}.` };
  }
  if (frame < 0) return { error: `${formatLabel(tc)} is before the first frame (${format.label(0)}).` };
  if (frame > last) return { error: `${formatLabel(tc)} is after the last frame (${format.label(last)}).` };
  return at(frame);
}

/**
 * The label typed, NLE style: each group of digits between separators is
 * one field (a lone digit is padded), and the digits fill HH MM SS FF from
 * the right, the fields not typed taken from the start timecode.
 */
function labelOf(s, format) {
  const groups = s.split(SEPARATORS);
  if (groups.length > 4 || (groups.length > 1 && groups.some((g) => g.length === 0 || g.length > 2))) {
    return { error: `“${s}” is not a timecode: write HH:MM:SS:FF, with one or two digits in each field.` };
  }
  const digits = groups.length > 1 ? groups.map((g) => g.padStart(2, '0')).join('') : s;
  if (digits.length > 8) return { error: `“${s}” has more than eight digits; a timecode has HH MM SS FF.` };
  const start = format.label(0).replace(/\D/g, '');
  const full = start.slice(0, 8 - digits.length) + digits;
  const field = (i) => Number(full.slice(i, i + 2));
  return { hours: field(0), minutes: field(2), seconds: field(4), frames: field(6), dropFrame: format.dropFrame };
}

/** The sentence for a field out of range, or null. */
function fieldProblem(tc, format) {
  const base = timebase(format.fpsNum, format.fpsDen);
  const label = formatLabel(tc);
  if (tc.hours > 23) return `${label}: hours run 00 to 23.`;
  if (tc.minutes > 59) return `${label}: minutes run 00 to 59.`;
  if (tc.seconds > 59) return `${label}: seconds run 00 to 59.`;
  if (tc.frames >= base) return `${label}: frames run 00 to ${base - 1} at this rate.`;
  if (format.dropFrame && tc.seconds === 0 && tc.minutes % 10 !== 0 && tc.frames < format.drop) {
    const next = formatLabel({ ...tc, frames: format.drop });
    return `${label} does not exist in drop-frame timecode (it is skipped); the next label is ${next}.`;
  }
  return null;
}

/** A step written with separators (`1:00`, one second), in frames; null if it cannot be read. */
function durationFrames(text, format) {
  const groups = text.split(SEPARATORS);
  if (groups.length > 4 || groups.some((g) => g.length === 0 || g.length > 2)) return null;
  const [ff = 0, ss = 0, mm = 0, hh = 0] = groups.map(Number).reverse();
  const base = timebase(format.fpsNum, format.fpsDen);
  if (ff >= base || ss > 59 || mm > 59) return null;
  // A nominal duration: drop-frame drops labels, not frames.
  return ((hh * 60 + mm) * 60 + ss) * base + ff;
}
