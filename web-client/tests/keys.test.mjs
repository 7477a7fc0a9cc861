// J/K/L shuttle steps and which key targets count as typing.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { bindKeys, isTyping, nextShuttleSpeed } from '../keys.js';

const t = (playing, speed) => ({ playing, speed });

test('L plays forward and each further L goes faster, up to 4x', () => {
  assert.equal(nextShuttleSpeed(t(false, 1), 1), 1);
  assert.equal(nextShuttleSpeed(t(true, 1), 1), 2);
  assert.equal(nextShuttleSpeed(t(true, 2), 1), 3);
  assert.equal(nextShuttleSpeed(t(true, 3), 1), 4);
  assert.equal(nextShuttleSpeed(t(true, 4), 1), 4);
  assert.equal(nextShuttleSpeed(t(true, 0.5), 1), 1);
  assert.equal(nextShuttleSpeed(t(true, -3), 1), 1);
  assert.equal(nextShuttleSpeed(null, 1), 1);
});

test('J plays reverse and each further J goes faster, down to -4x', () => {
  assert.equal(nextShuttleSpeed(t(false, -2), -1), -1);
  assert.equal(nextShuttleSpeed(t(true, 2), -1), -1);
  assert.equal(nextShuttleSpeed(t(true, -1), -1), -2);
  assert.equal(nextShuttleSpeed(t(true, -4), -1), -4);
});

test('text fields swallow keys; the scrubber and buttons do not', () => {
  assert.ok(isTyping({ tagName: 'INPUT', type: 'text' }));
  assert.ok(isTyping({ tagName: 'TEXTAREA' }));
  assert.ok(isTyping({ tagName: 'DIV', isContentEditable: true }));
  assert.ok(!isTyping({ tagName: 'INPUT', type: 'range' }));
  assert.ok(!isTyping({ tagName: 'BUTTON' }));
  assert.ok(!isTyping(null));
});

test('F, + / -, 1 and 0 reach the viewer\'s own actions; Ctrl+wheel-style chords do not', () => {
  const calls = [];
  let handler = null;
  const target = { addEventListener: (_type, fn) => { handler = fn; }, removeEventListener() {} };
  const rec = (name) => () => calls.push(name);
  bindKeys(target, {
    toggleFullscreen: rec('fullscreen'), zoomIn: rec('in'), zoomOut: rec('out'), zoomPixel: rec('pixel'), zoomFit: rec('fit'),
  });
  const press = (code, extra = {}) => {
    handler({
      code, target: null, repeat: false, shiftKey: false, ctrlKey: false, metaKey: false, altKey: false,
      defaultPrevented: false, preventDefault() {}, ...extra,
    });
  };
  press('KeyF');
  press('Equal', { shiftKey: true });
  press('NumpadAdd');
  press('Minus');
  press('Digit1');
  press('Digit0');
  press('Equal', { ctrlKey: true });
  press('KeyF', { repeat: true });
  assert.deepEqual(calls, ['fullscreen', 'in', 'in', 'out', 'pixel', 'fit']);
});

test('I and O mark, G clears the marks; held-down G clears once; a page without clearMarks ignores G', () => {
  let handler = null;
  const target = { addEventListener: (type, fn) => { handler = fn; }, removeEventListener: () => {} };
  const calls = [];
  bindKeys(target, { loopIn: () => calls.push('in'), loopOut: () => calls.push('out'), clearMarks: () => calls.push('clear') });
  const press = (code, extra = {}) => {
    const ev = { code, target: { tagName: 'BODY' }, preventDefault() { this.defaultPrevented = true; }, ...extra };
    handler(ev);
    return ev;
  };
  press('KeyI');
  press('KeyO');
  assert.ok(press('KeyG').defaultPrevented);
  press('KeyG', { repeat: true });
  assert.deepEqual(calls, ['in', 'out', 'clear']);
  bindKeys(target, { loopIn: () => {} });
  assert.equal(press('KeyG').defaultPrevented, undefined);
});
