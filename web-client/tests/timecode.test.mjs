// The same cases as the unit tests in src/timecode.rs: the browser must
// print exactly the label the server parses back to the same frame.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TimecodeFormat, parseLabel, timebase } from '../timecode.js';

const FPS = {
  '23.976': [24000, 1001], '24': [24, 1], '25': [25, 1], '29.97': [30000, 1001],
  '30': [30, 1], '48': [48, 1], '50': [50, 1], '59.94': [60000, 1001], '60': [60, 1],
};

function fmt(rate, df, start) {
  const [num, den] = FPS[rate];
  return new TimecodeFormat(num, den, df, start);
}

function checkLabel(rate, df, count, expected) {
  const f = fmt(rate, df);
  assert.equal(f.label(count), expected, `label of ${count} at ${rate}${df ? ' DF' : ''}`);
  assert.equal(f.parse(expected), count, `frame of ${expected}`);
}

test('labels at every rate', () => {
  checkLabel('24', false, 86_400, '01:00:00:00');
  checkLabel('23.976', false, 86_400, '01:00:00:00');
  checkLabel('25', false, 25 * 61 + 3, '00:01:01:03');
  checkLabel('30', false, 29, '00:00:00:29');
  checkLabel('48', false, 47, '00:00:00:47');
  checkLabel('50', false, 50, '00:00:01:00');
  checkLabel('60', false, 60 * 60, '00:01:00:00');
  checkLabel('29.97', false, 1800, '00:01:00:00');
  assert.equal(timebase(24000, 1001), 24);
  assert.equal(timebase(60000, 1001), 60);
});

test('drop-frame skips labels except every tenth minute', () => {
  checkLabel('29.97', true, 1799, '00:00:59;29');
  checkLabel('29.97', true, 1800, '00:01:00;02');
  checkLabel('29.97', true, 17_981, '00:09:59;29');
  checkLabel('29.97', true, 17_982, '00:10:00;00');
  checkLabel('29.97', true, 107_892, '01:00:00;00');
  checkLabel('59.94', true, 3599, '00:00:59;59');
  checkLabel('59.94', true, 3600, '00:01:00;04');
  checkLabel('59.94', true, 215_784, '01:00:00;00');
});

test('refuses labels that drop-frame skips', () => {
  const f = fmt('29.97', true);
  assert.throws(() => f.parse('00:01:00;01'), { kind: 'DroppedLabel' });
  assert.equal(f.parse('00:10:00;01'), 17_983);
});

test('refuses bad text and fields', () => {
  const f = fmt('24', false);
  for (const bad of ['', '1:00:00:00', '01:00:00', '01-00-00-00', '01:00:00:0x', 'aa:bb:cc:dd']) {
    assert.throws(() => f.parse(bad), { kind: 'Syntax' }, bad);
  }
  for (const bad of ['00:00:00:24', '00:60:00:00', '24:00:00:00', '00:00:60:00']) {
    assert.throws(() => f.parse(bad), { kind: 'FieldOutOfRange' }, bad);
  }
  assert.throws(() => fmt('25', true), { kind: 'DropFrameNotAllowed' });
  assert.throws(() => new TimecodeFormat(120, 1), { kind: 'UnsupportedRate' });
});

test('start offset and midnight rollover', () => {
  const f = fmt('24', false, '01:00:00:00');
  assert.equal(f.label(0), '01:00:00:00');
  assert.equal(f.parse('01:00:10:05'), 245);
  assert.equal(f.parse('00:59:59:23'), -1);

  const late = fmt('24', false, '23:59:59:00');
  assert.equal(late.label(48), '00:00:01:00');
  assert.equal(late.parse('00:00:01:00'), 48);
});

test('the browser-test session labels frame 245 as 01:00:10:05 at 23.976', () => {
  const f = TimecodeFormat.fromSession({
    fpsNum: 24000, fpsDen: 1001, dropFrame: false, startTimecode: '01:00:00:00',
  });
  assert.equal(f.parse('01:00:10:05'), 245);
  assert.equal(f.label(245), '01:00:10:05');
});

test('separators: any of ;., marks drop-frame text, three-digit frames parse', () => {
  assert.deepEqual(parseLabel(' 00:01:00.02 '), { hours: 0, minutes: 1, seconds: 0, frames: 2, dropFrame: true });
  assert.equal(parseLabel('00:00:00,05').dropFrame, true);
  assert.equal(parseLabel('00:00:00:005').frames, 5);
  assert.equal(fmt('29.97', true).parse('00:01:00,02'), 1800);
});

test('labels round-trip with any start at every drop-frame rate', () => {
  // A deterministic sweep standing in for the Rust property test.
  for (const rate of ['29.97', '59.94']) {
    const base = fmt(rate, true);
    for (let start = 0; start < 300_000; start += 7919) {
      const f = fmt(rate, true, base.label(start));
      for (let frame = 0; frame < 200_000; frame += 4999) {
        assert.equal(f.frameOf(parseLabel(f.label(frame))), frame, `${rate} start ${start} frame ${frame}`);
      }
    }
  }
});

test('every label across a drop-frame day is distinct and ascending', () => {
  const f = fmt('29.97', true);
  const day = f.framesPerDay();
  let prev = '';
  for (let n = 0; n < day; n += 1) {
    const label = f.label(n);
    assert.ok(label > prev || n === 0, `${n}: ${label} after ${prev}`);
    prev = label;
    if (n > 20_000) n += 97; // sample the rest of the day
  }
});
