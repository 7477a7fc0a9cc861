// The host's alert for a control request, without a browser: which
// messages sound, that the page's mute silences the tone but not the
// card, and that the tab title comes back.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { RequestAlert, alertTitle } from '../control-requests.js';

function fakeNode() {
  const classes = new Set();
  return {
    dataset: {},
    children: [],
    classList: { add: (c) => classes.add(c), remove: (c) => classes.delete(c), contains: (c) => classes.has(c) },
    setAttribute() {},
    addEventListener() {},
    append(...nodes) { this.children.push(...nodes); },
    replaceChildren(...nodes) { this.children = nodes; },
    remove() { this.removed = true; },
  };
}

function fakeDoc() {
  const body = fakeNode();
  return { hidden: false, title: 'Reel 1 · SyncReel', body, createElement: fakeNode, addEventListener() {} };
}

let tones = 0;
globalThis.AudioContext = class {
  currentTime = 0;
  destination = {};
  resume() { return Promise.resolve(); }
  createOscillator() {
    tones += 1;
    return { frequency: { setValueAtTime() {} }, connect() {}, start() {}, stop() {} };
  }
  createGain() {
    return { gain: { setValueAtTime() {}, exponentialRampToValueAtTime() {} }, connect() {} };
  }
};

const names = { 2: 'Sam', 3: 'Ed' };
const nameOf = (id) => names[id] ?? `#${id}`;
const host = { canAnswer: true, nameOf, you: 1 };

test('a new request sounds, flashes and names itself in a hidden tab; a withdrawal clears it all', () => {
  tones = 0;
  const doc = fakeDoc();
  const alert = new RequestAlert({ doc, answer() {} });
  doc.hidden = true;
  alert.onControl({ ...host, reason: 'requested', requests: [2] });
  assert.equal(tones, 1);
  const card = doc.body.children[0];
  assert.ok(card.classList.contains('request-flash'));
  assert.equal(doc.title, '✋ Sam asks for control — Reel 1 · SyncReel');
  // Presence or a resync: nothing new is asked, nothing sounds.
  alert.onControl({ ...host, reason: null, requests: [2] });
  assert.equal(tones, 1);
  alert.onControl({ ...host, reason: 'withdrawn', requests: [] });
  assert.ok(card.removed);
  assert.equal(doc.title, 'Reel 1 · SyncReel');
  assert.equal(tones, 1);
});

test('the page\'s mute silences the tone, not the card; a page that cannot answer is not alerted', () => {
  tones = 0;
  const doc = fakeDoc();
  const alert = new RequestAlert({ doc, muted: () => true, answer() {} });
  alert.onControl({ ...host, reason: 'requested', requests: [2] });
  assert.equal(tones, 0);
  assert.equal(doc.body.children.length, 1);

  const reviewerDoc = fakeDoc();
  const other = new RequestAlert({ doc: reviewerDoc, answer() {} });
  other.onControl({ canAnswer: false, nameOf, you: 3, reason: 'requested', requests: [2] });
  assert.equal(tones, 0);
  assert.equal(reviewerDoc.body.children.length, 0);
  // One's own request never alerts oneself.
  const driver = new RequestAlert({ doc: fakeDoc(), answer() {} });
  driver.onControl({ canAnswer: true, nameOf, you: 2, reason: 'requested', requests: [2] });
  assert.equal(tones, 0);
});

test('the title names everyone waiting', () => {
  assert.equal(alertTitle(['Sam', 'Ed'], 'T'), '✋ Sam, Ed ask for control — T');
});
