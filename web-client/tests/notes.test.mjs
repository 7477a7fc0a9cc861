// The notes list and the outbox that delivers a note exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { MAX_NOTE_CHARS, Notes, Outbox, noteProblem } from '../notes.js';

/** localStorage's surface, in memory. */
class FakeStorage {
  constructor() {
    this.map = new Map();
  }

  getItem(k) {
    return this.map.has(k) ? this.map.get(k) : null;
  }

  setItem(k, v) {
    this.map.set(k, String(v));
  }

  removeItem(k) {
    this.map.delete(k);
  }
}

const note = (id, frame, extra = {}) => ({
  id, key: `k${id}`, frame, text: `n${id}`, author: 'Ravi', authorRole: 'reviewer', createdAt: 1, ...extra,
});

function outbox(storage = new FakeStorage(), storageKey = 'syncreel.outbox.s1') {
  let n = 0;
  return new Outbox({ storage, storageKey, newKey: () => `key-${(n += 1)}` });
}

test('notes list by frame, then id, and a note is added once', () => {
  const notes = new Notes();
  notes.replace([note(3, 50), note(1, 120), note(2, 50)]);
  assert.deepEqual(notes.all().map((n) => n.id), [2, 3, 1]);
  assert.equal(notes.add(note(4, 0)), true);
  assert.equal(notes.add(note(4, 0)), false);
  assert.deepEqual(notes.all().map((n) => n.id), [4, 2, 3, 1]);
  assert.equal(notes.size, 4);
  assert.equal(notes.get(3).frame, 50);
  assert.equal(notes.get(99), null);
  assert.ok(notes.hasKey('k2'));
  assert.ok(!notes.hasKey('k9'));
});

test('a replace drops notes the server no longer lists', () => {
  const notes = new Notes();
  notes.add(note(1, 10));
  notes.add(note(2, 20));
  notes.replace([note(2, 20)]);
  assert.deepEqual(notes.all().map((n) => n.id), [2]);
  notes.replace([]);
  assert.deepEqual(notes.all(), []);
});

test('a draft gets a fresh key, trimmed text, frameOut only when given, and is pending', () => {
  const box = outbox();
  const a = box.draft(120, null, '  Sky is too warm  ');
  const b = box.draft(5, 9, 'Boom');
  assert.deepEqual(a, { type: 'note', key: 'key-1', frame: 120, text: 'Sky is too warm' });
  assert.deepEqual(b, { type: 'note', key: 'key-2', frame: 5, frameOut: 9, text: 'Boom' });
  assert.deepEqual(box.pending(), [a, b]);
});

test('blank or overlong text is not a note', () => {
  const box = outbox();
  assert.equal(box.draft(1, null, '   '), null);
  assert.equal(box.draft(1, null, 'x'.repeat(MAX_NOTE_CHARS + 1)), null);
  assert.deepEqual(box.pending(), []);
  assert.equal(noteProblem(''), 'empty');
  assert.equal(noteProblem('y'.repeat(MAX_NOTE_CHARS)), null);
  // Characters, as the server counts them, not UTF-16 units.
  assert.equal(noteProblem('😀'.repeat(MAX_NOTE_CHARS)), null);
});

test('an ack removes the note; a second ack of the same key changes nothing', () => {
  const box = outbox();
  const a = box.draft(1, null, 'one');
  const b = box.draft(2, null, 'two');
  assert.equal(box.ack(a.key), true);
  assert.equal(box.ack(a.key), false);
  assert.deepEqual(box.pending().map((m) => m.key), [b.key]);
});

test('a store refusal keeps the note to retry; final refusals drop it', () => {
  const box = outbox();
  const a = box.draft(1, null, 'one');
  const b = box.draft(2, null, 'two');
  const c = box.draft(3, null, 'three');
  assert.equal(box.refused(a.key, 'store'), 'retry');
  assert.equal(box.refused(b.key, 'frame_out_of_range'), 'dropped');
  assert.equal(box.refused(c.key, 'forbidden'), 'dropped');
  assert.equal(box.refused('never-sent', 'bad_note'), null);
  assert.deepEqual(box.pending().map((m) => m.key), [a.key]);
});

test('pending notes survive a reload through storage, per session', () => {
  const storage = new FakeStorage();
  const first = outbox(storage);
  const a = first.draft(7, null, 'kept');
  first.draft(8, null, 'acked');
  first.ack('key-2');
  const other = outbox(storage, 'syncreel.outbox.s2');
  other.draft(1, null, 'elsewhere');

  const again = outbox(storage);
  assert.deepEqual(again.pending(), [a]);
  // The same key goes out again: the server stores a key once.
  assert.equal(again.pending()[0].key, a.key);
  again.ack(a.key);
  assert.equal(storage.getItem('syncreel.outbox.s1'), null);
  assert.equal(outbox(storage, 'syncreel.outbox.s2').pending().length, 1);
});

test('broken or missing storage never loses a note in memory', () => {
  const storage = new FakeStorage();
  storage.setItem('syncreel.outbox.s1', '{not json');
  assert.deepEqual(outbox(storage).pending(), []);
  const throwing = {
    getItem: () => { throw new Error('denied'); },
    setItem: () => { throw new Error('full'); },
    removeItem: () => {},
  };
  const box = new Outbox({ storage: throwing, storageKey: 'x', newKey: () => 'k' });
  box.draft(1, null, 'still here');
  assert.deepEqual(box.pending().map((m) => m.key), ['k']);
});

test('settle drops pending notes the server already lists (their ack was lost)', () => {
  const box = outbox();
  const a = box.draft(1, null, 'stored, ack lost');
  const b = box.draft(2, null, 'not stored');
  const notes = new Notes();
  notes.replace([note(10, 1, { key: a.key })]);
  assert.equal(box.settle(notes), 1);
  assert.deepEqual(box.pending().map((m) => m.key), [b.key]);
});

test('without an injected key maker the keys are fresh UUIDs', () => {
  const box = new Outbox({ storage: new FakeStorage(), storageKey: 'x' });
  const a = box.draft(1, null, 'a');
  const b = box.draft(1, null, 'a');
  assert.match(a.key, /^[0-9a-f-]{36}$/);
  assert.notEqual(a.key, b.key);
});
