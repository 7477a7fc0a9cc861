// The timeline's pure parts: ruler spacing and labels, author colours,
// in/out marks, chapters, and the hover throttle.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { TimecodeFormat } from '../timecode.js';
import {
  AUTHOR_COLOURS, Throttle, authorColour, chapters, dragMarks, frameToPos, noteSpan, posToFrame, rulerSteps, rulerTicks,
  setMark,
} from '../timeline.js';

const WIDTHS = [320, 390, 800, 1200, 1880];
const FORMATS = [
  ['23.976 from 01:00:00:00', new TimecodeFormat(24000, 1001, false, '01:00:00:00')],
  ['25 from 00:00:00:00', new TimecodeFormat(25, 1)],
  ['29.97 DF from 00:59:58;00', new TimecodeFormat(30000, 1001, true, '00:59:58;00')],
  ['59.94 DF from 00:00:00;00', new TimecodeFormat(60000, 1001, true, '00:00:00;00')],
  ['30 from 23:59:50:00 (wraps at midnight)', new TimecodeFormat(30, 1, false, '23:59:50:00')],
];
const DURATIONS = [2, 48, 240, 1000, 14400, 107892, 600000];

test('labels are never closer than the minimum, are the timecodes of their frames, and fit the width', () => {
  for (const [name, format] of FORMATS) {
    for (const duration of DURATIONS) {
      for (const width of WIDTHS) {
        const { labels, ticks } = rulerTicks({ duration, format, width, minLabelPx: 96, labelPx: 76 });
        const what = `${name}, ${duration} frames, ${width} px`;
        for (let i = 1; i < labels.length; i++) {
          const gap = (labels[i].pos - labels[i - 1].pos) * width;
          assert.ok(gap >= 96 - 1e-6, `${what}: labels ${gap.toFixed(1)} px apart`);
        }
        for (const l of labels) {
          assert.equal(l.label, format.label(l.frame), what);
          assert.ok(l.frame >= 0 && l.frame < duration, what);
          assert.ok(l.pos * width + 76 <= width + 1e-6, `${what}: ${l.label} runs off the end`);
        }
        for (let i = 1; i < ticks.length; i++) {
          assert.ok((ticks[i].pos - ticks[i - 1].pos) * width >= 8 - 1e-6 || ticks[i].frame - ticks[i - 1].frame <= 2,
            `${what}: ticks crowd`);
          assert.ok(ticks[i].frame > ticks[i - 1].frame, `${what}: ticks out of order`);
        }
        assert.ok(ticks.length <= width, `${what}: ${ticks.length} ticks`);
        if (duration >= 1000 && width >= 390) assert.ok(labels.length >= 2, `${what}: only ${labels.length} labels`);
      }
    }
  }
});

test('a 10-minute 23.976 reel on 1200 px is labelled on round timecodes, densest that fits', () => {
  const format = new TimecodeFormat(24000, 1001, false, '01:00:00:00');
  const { labels, step, minor } = rulerTicks({ duration: 14400, format, width: 1200 });
  // 1200 px over 14399 frames: 30 s is 60 px, a minute 120 px; 5 s is 10 px.
  assert.deepEqual(step, { seconds: 60, size: 1440 });
  assert.deepEqual(minor, { seconds: 5, size: 120 });
  assert.deepEqual(labels.slice(0, 3).map((l) => l.label), ['01:00:00:00', '01:01:00:00', '01:02:00:00']);
  assert.deepEqual(labels.slice(0, 3).map((l) => l.frame), [0, 1440, 2880]);
});

test('short clips get frame steps that divide the second', () => {
  const format = new TimecodeFormat(25, 1);
  const { labels, step } = rulerTicks({ duration: 50, format, width: 1200 });
  assert.equal(step.frames, 5);
  assert.deepEqual(labels.slice(0, 4).map((l) => l.label), ['00:00:00:00', '00:00:00:05', '00:00:00:10', '00:00:00:15']);
  assert.deepEqual(rulerSteps(24).filter((s) => s.frames).map((s) => s.frames), [1, 2, 3, 4, 6, 8, 12]);
});

test('drop-frame ticks sit on round labels, a minute\'s skipped :00 moving to ;02', () => {
  const format = new TimecodeFormat(30000, 1001, true, '00:59:58;00');
  const { labels } = rulerTicks({ duration: 30 * 60 * 12, format, width: 1880, minLabelPx: 96 });
  for (const l of labels) assert.match(l.label, /^\d\d:\d\d:\d\d;0[02]$/);
  // Every minute but each tenth starts at ;02.
  const minuteLabels = labels.filter((l) => l.label.slice(6, 8) === '00').map((l) => l.label);
  assert.ok(minuteLabels.includes('01:01:00;02'), minuteLabels.join(' '));
  assert.ok(minuteLabels.includes('01:00:00;00'), minuteLabels.join(' '));
});

test('the ruler of nothing is empty', () => {
  const format = new TimecodeFormat(24, 1);
  assert.deepEqual(rulerTicks({ duration: 0, format, width: 800 }).labels, []);
  assert.deepEqual(rulerTicks({ duration: 100, format, width: 0 }).ticks, []);
});

test('positions and frames map back and forth, clamped', () => {
  assert.equal(frameToPos(0, 101), 0);
  assert.equal(frameToPos(100, 101), 1);
  assert.equal(frameToPos(150, 101), 1);
  assert.equal(posToFrame(0.5, 101), 50);
  assert.equal(posToFrame(-0.2, 101), 0);
  assert.equal(posToFrame(1.3, 101), 100);
  for (let f = 0; f < 101; f++) assert.equal(posToFrame(frameToPos(f, 101), 101), f);
});

test('an author always gets the same colour from the palette, and names spread over it', () => {
  assert.equal(authorColour('Rita Reviewer'), authorColour('Rita Reviewer'));
  assert.ok(AUTHOR_COLOURS.includes(authorColour('Hal Host')));
  assert.ok(AUTHOR_COLOURS.includes(authorColour('')));
  const used = new Set(['Ana', 'Ben', 'Cleo', 'Dev', 'Eli', 'Fay', 'Gus', 'Hal', 'Ivy', 'Jo'].map(authorColour));
  assert.ok(used.size >= 5, `ten names share ${used.size} colours`);
});

test('marks follow the server\'s loop rules; a drag marks either way round', () => {
  let m = setMark(null, 'in', 100);
  assert.deepEqual(m, { in: 100, out: null });
  m = setMark(m, 'out', 150);
  assert.deepEqual(m, { in: 100, out: 150 });
  assert.deepEqual(setMark(m, 'in', 200), { in: 200, out: null });
  assert.deepEqual(setMark(m, 'out', 50), { in: null, out: 50 });
  assert.deepEqual(dragMarks(90, 30), { in: 30, out: 90 });
});

test('the next note takes both marks, else the frame on screen', () => {
  assert.deepEqual(noteSpan({ in: 10, out: 40 }, 99), { frame: 10, frameOut: 40 });
  assert.deepEqual(noteSpan({ in: 10, out: 10 }, 99), { frame: 10, frameOut: null });
  assert.deepEqual(noteSpan({ in: 10, out: null }, 99), { frame: 99, frameOut: null });
  assert.deepEqual(noteSpan(null, 7), { frame: 7, frameOut: null });
});

test('chapters share the reel by running time, whatever each entry\'s rate', () => {
  const list = chapters([
    { fps: '24000/1001', durationFrames: 2400 },
    { fps: '25/1', durationFrames: 250 },
  ], 1, (e, i) => `E${i}`);
  assert.equal(list.length, 2);
  const first = (2400 * 1001) / 24000;
  assert.ok(Math.abs(list[0].width - first / (first + 10)) < 1e-9);
  assert.ok(Math.abs(list[1].start - list[0].width) < 1e-12);
  assert.deepEqual(list.map((c) => [c.label, c.current]), [['E0', false], ['E1', true]]);
  assert.deepEqual(chapters([], 0), []);
});

test('the hover throttle runs the first call at once and only the newest of a burst after the window', () => {
  let now = 0;
  const timers = [];
  const ran = [];
  const t = new Throttle(100, (f) => ran.push(f), {
    now: () => now, setTimer: (fn, ms) => { timers.push({ fn, at: now + ms }); return timers.length; }, clearTimer: () => {},
  });
  t.call(1);
  assert.deepEqual(ran, [1]);
  now = 10; t.call(2);
  now = 20; t.call(3);
  now = 30; t.call(4);
  assert.deepEqual(ran, [1]);
  assert.equal(timers.length, 1);
  assert.equal(timers[0].at, 100);
  now = 100; timers[0].fn();
  assert.deepEqual(ran, [1, 4]);
  now = 150; t.call(5);
  assert.deepEqual(ran, [1, 4], 'within the window after the trailing run');
  t.cancel();
  assert.equal(timers.length, 2);
});
