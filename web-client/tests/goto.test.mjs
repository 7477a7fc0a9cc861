// "Go to" reads what editors type: whole timecodes, NLE digit entry
// filled from the right against the start timecode, frame numbers and
// relative steps; anything else is refused with a sentence that says why.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { parseGoto } from '../goto.js';
import { TimecodeFormat } from '../timecode.js';

// The browser tests' session: 23.976 fps, 14 400 frames from 01:00:00:00.
const REEL = { format: new TimecodeFormat(24000, 1001, false, '01:00:00:00'), duration: 14400, current: 245 };
const DF = { format: new TimecodeFormat(30000, 1001, true, '00:59:59;00'), duration: 100_000, current: 0 };

const frame = (text, ctx = REEL) => {
  const got = parseGoto(text, ctx);
  assert.ok(got && got.frame !== undefined, `${text}: ${JSON.stringify(got)}`);
  return got.frame;
};
const refusal = (text, ctx = REEL) => {
  const got = parseGoto(text, ctx);
  assert.ok(got?.error, `${text} was not refused: ${JSON.stringify(got)}`);
  assert.match(got.error, /^[“A-Z0-9].*[.)]$/, `${text}: "${got.error}" is not a sentence`);
  return got.error;
};

test('a whole timecode is the frame it labels', () => {
  assert.equal(frame('01:00:00:00'), 0);
  assert.equal(frame('01:00:10:05'), 245);
  assert.equal(frame(' 01:00:10:05 '), 245);
  assert.equal(parseGoto('01:00:10:05', REEL).label, '01:00:10:05');
  assert.equal(frame('01:09:59:23'), 14399);
});

test('digits fill HH MM SS FF from the right, the fields not typed taken from the start', () => {
  assert.equal(frame('1000'), 240, '1000 is ten seconds in: 01:00:10:00');
  assert.equal(parseGoto('1000', REEL).label, '01:00:10:00');
  assert.equal(frame('01001000'), 240);
  assert.equal(frame('1005'), 245);
  assert.equal(frame('5'), 5);
  assert.equal(frame('112'), 36, '01:00:01:12');
  assert.equal(frame('10:05'), 245, 'separators mark fields');
  assert.equal(frame('1:0:0'), 24 * 60, 'a lone digit is a field');
  assert.equal(frame('10000'), 24 * 60, '01:01:00:00');
  // From a start of zero, 1000 is 00:00:10:00.
  const zero = { format: new TimecodeFormat(25, 1, false, '00:00:00:00'), duration: 1000, current: 0 };
  assert.equal(parseGoto('1000', zero).label, '00:00:10:00');
  assert.equal(frame('1000', zero), 250);
});

test('a frame number is written f1234 or #1234', () => {
  assert.equal(frame('f1234'), 1234);
  assert.equal(frame('F0'), 0);
  assert.equal(frame('#245'), 245);
  assert.equal(parseGoto('f245', REEL).label, '01:00:10:05');
  assert.match(refusal('f14400'), /past the last frame, 14399 \(01:09:59:23\)/);
});

test('+N and -N step from the frame on screen, and stop at either end', () => {
  assert.equal(frame('+24'), 269);
  assert.equal(frame('-24'), 221);
  assert.equal(frame('−5'), 240, 'a typographic minus');
  assert.equal(frame('+1:00'), 245 + 24, 'one second');
  assert.equal(frame('-1:00:00'), 0, 'a minute back from 245 stops at the first frame');
  assert.equal(frame('+99999'), 14399);
  assert.match(refusal('+24', { ...REEL, current: null }), /no frame on screen/);
  assert.match(refusal('+1:99'), /not a step/);
});

test('drop-frame labels: the session decides, a skipped label is explained', () => {
  // 00:59:59;00 is frame 0; a minute later comes 01:00:59;00 … 01:01:00;02.
  assert.equal(frame('00:59:59;00', DF), 0);
  assert.equal(frame('01:00:00;00', DF), 30);
  assert.equal(frame('01:00:00:00', DF), 30, 'either separator');
  assert.match(refusal('01:01:00;00', DF), /does not exist in drop-frame.*01:01:00;02/);
  assert.equal(frame('01:01:00;02', DF), 30 + 60 * 30);
});

test('anything else is refused with the reason', () => {
  assert.match(refusal('01:00:00:99'), /frames run 00 to 23/);
  assert.match(refusal('01:00:60:00'), /seconds run 00 to 59/);
  assert.match(refusal('01:60:00:00'), /minutes run 00 to 59/);
  assert.match(refusal('24:00:00:00'), /hours run 00 to 23/);
  assert.match(refusal('soon'), /not a time/);
  assert.match(refusal('123456789'), /more than eight digits/);
  assert.match(refusal('1:2:3:4:5'), /not a timecode/);
  assert.match(refusal('01::00'), /not a timecode/);
  assert.match(refusal('00:59:00:00'), /before the first frame \(01:00:00:00\)/);
  assert.match(refusal('01:10:00:00'), /after the last frame \(01:09:59:23\)/);
  assert.equal(parseGoto('   ', REEL), null);
});
