// The notes list (with replies and resolutions) and the outbox that
// delivers each write exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Approvals } from '../approvals.js';
import { Drawings } from '../drawing.js';
import {
  MAX_NOTE_CHARS, Notes, Outbox, familyOf, noteProblem, refusalHeadline, refusalNotice,
} from '../notes.js';

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

test('replies sit under their note, oldest first; notes list by frame', () => {
  const notes = new Notes();
  notes.replace([
    note(1, 120),
    note(2, 50),
    note(5, 120, { parent: 1 }),
    note(3, 120, { parent: 1 }),
    note(4, 50, { parent: 2 }),
  ]);
  assert.deepEqual(notes.threads().map((t) => [t.note.id, t.replies.map((r) => r.id)]), [[2, [4]], [1, [3, 5]]]);
  notes.replace([note(1, 10)]);
  assert.deepEqual(notes.threads(), [{ note: note(1, 10), replies: [] }]);
});

test('a resolve or reopen replaces the note by id; the same note again changes nothing', () => {
  const notes = new Notes();
  notes.replace([note(1, 10)]);
  assert.equal(notes.put(note(1, 10)), false);
  assert.equal(notes.put(note(1, 10, { resolvedBy: 'Host', resolvedAt: 7 })), true);
  assert.equal(notes.get(1).resolvedBy, 'Host');
  assert.equal(notes.put(note(1, 10, { resolvedBy: 'Host', resolvedAt: 7 })), false);
  // Reopened: the fields are absent again.
  assert.equal(notes.put(note(1, 10)), true);
  assert.equal(notes.get(1).resolvedAt, undefined);
  assert.equal(notes.put(note(2, 5, { parent: 1 })), true);
  assert.equal(notes.size, 2);
  // add() keeps its meaning: only what is new.
  assert.equal(notes.add(note(1, 10, { resolvedBy: 'X', resolvedAt: 9 })), false);
  assert.equal(notes.get(1).resolvedBy, undefined);
});

test('replies and resolves are queued like notes', () => {
  const box = outbox();
  assert.deepEqual(box.reply(7, '  Agreed, warmer  '), { type: 'reply', key: 'key-1', parent: 7, text: 'Agreed, warmer' });
  assert.equal(box.reply(7, '  '), null);
  assert.deepEqual(box.resolve(7, true), { type: 'resolve', key: 'key-2', note: 7, resolved: true });
  assert.deepEqual(box.pending().map((m) => m.type), ['reply', 'resolve']);
});

test('only the last resolve per note stays queued, so a resend never undoes a later one', () => {
  const box = outbox();
  box.resolve(7, true);
  box.resolve(8, true);
  const reopen = box.resolve(7, false);
  assert.deepEqual(box.pending().map((m) => [m.note, m.resolved]), [[8, true], [7, false]]);
  assert.equal(box.pending()[1].key, reopen.key);
});

test('any keyed write can be queued; unknown types cannot', () => {
  const box = outbox();
  const d = box.queue({ type: 'drawing', frame: 3, tool: 'pen', colour: '#ffffff', width: 0.01, points: [[0, 0]] });
  const e = box.queue({ type: 'erase', drawing: 4 });
  const a = box.queue({ type: 'approve', status: 'approved', version: 'v1' });
  assert.equal(box.queue({ type: 'seek', frame: 1 }), null);
  assert.equal(box.queue(null), null);
  assert.deepEqual([d.key, e.key, a.key], ['key-1', 'key-2', 'key-3']);
  assert.equal(box.get('key-2').drawing, 4);
  assert.equal(box.get('nope'), null);
  box.draft(1, null, 'n');
  box.reply(1, 'r');
  assert.deepEqual(box.pending('drawing').map((m) => m.type), ['drawing', 'erase']);
  assert.deepEqual(box.pending('approval').map((m) => m.type), ['approve']);
  assert.deepEqual(box.pending('note').map((m) => m.type), ['note', 'reply']);
  assert.equal(box.pending().length, 5);
  assert.deepEqual(['note', 'reply', 'resolve', 'drawing', 'erase', 'approve', 'hello'].map(familyOf),
    ['note', 'note', 'note', 'drawing', 'drawing', 'approval', undefined]);
});

test('a drawing can go under the key its stroke was announced with', () => {
  const box = outbox();
  const announced = box.newKey();
  box.queue({ type: 'erase', drawing: 4 });
  const d = box.queue({ type: 'drawing', frame: 3, tool: 'pen', colour: '#ffffff', width: 0.01, points: [[0, 0]] }, announced);
  assert.equal(d.key, 'key-1');
  assert.deepEqual(box.pending().map((m) => [m.type, m.key]), [['erase', 'key-2'], ['drawing', 'key-1']]);
  assert.equal(box.queue({ type: 'seek', frame: 1 }, 'key-9'), null);
});

test('every kind of write survives a reload; anything else in storage is ignored', () => {
  const storage = new FakeStorage();
  const first = outbox(storage);
  first.reply(3, 'kept');
  first.queue({ type: 'erase', drawing: 9 });
  first.queue({ type: 'approve', status: 'approved' });
  const stored = JSON.parse(storage.getItem('syncreel.outbox.s1'));
  storage.setItem('syncreel.outbox.s1', JSON.stringify([...stored, { type: 'seek', key: 'x', frame: 1 }, { type: 'note' }]));
  assert.deepEqual(outbox(storage).pending().map((m) => m.type), ['reply', 'erase', 'approve']);
});

test('settle asks each list whether a write is already stored', () => {
  const box = outbox();
  const n = box.draft(1, null, 'stored');
  const r = box.reply(10, 'reply, ack lost');
  const resolved = box.resolve(10, true);
  const reopen = box.resolve(11, false);
  const d = box.queue({ type: 'drawing', frame: 1, tool: 'pen', colour: '#ffffff', width: 0.01, points: [[0, 0]] });
  const gone = box.queue({ type: 'erase', drawing: 40 });
  const still = box.queue({ type: 'erase', drawing: 41 });
  const a = box.queue({ type: 'approve', status: 'approved' });
  const b = box.queue({ type: 'approve', status: 'changesRequested' });

  const notes = new Notes();
  notes.replace([
    note(10, 1, { key: n.key, resolvedBy: 'Host', resolvedAt: 3 }),
    note(11, 1, { resolvedBy: 'Host', resolvedAt: 3 }),
    note(12, 1, { key: r.key, parent: 10 }),
  ]);
  const drawings = new Drawings();
  drawings.replace([{ id: 41, key: d.key, frame: 1, tool: 'pen', colour: '#ffffff', width: 0.01, points: [[0, 0]] }]);
  const approvals = new Approvals();
  approvals.replace([{ id: 1, key: a.key, status: 'approved', author: 'Dana', receipt: { frames: [], frameCount: 0 } }]);

  // One list at a time, as they arrive after a welcome.
  assert.equal(box.settle(notes), 3);
  assert.deepEqual(box.pending('note').map((m) => m.key), [reopen.key]);
  assert.ok(!box.has(resolved.key));
  assert.equal(box.settle(drawings), 2);
  assert.deepEqual(box.pending('drawing').map((m) => m.key), [still.key]);
  assert.ok(!box.has(gone.key));
  assert.equal(box.settle(approvals), 1);
  assert.deepEqual(box.pending('approval').map((m) => m.key), [b.key]);
});

test('a refusal for good is told in the words of what was refused; a lost race to erase is not', () => {
  assert.equal(refusalNotice({ type: 'note' }, 'frame_out_of_range', 'a note\'s frames must lie in 0..100'),
    'Note not saved: a note\'s frames must lie in 0..100');
  assert.equal(refusalNotice({ type: 'drawing' }, 'bad_drawing', 'a colour is written #rrggbb'),
    'Drawing not saved: a colour is written #rrggbb');
  assert.equal(refusalNotice({ type: 'approve' }, 'unknown_version', 'nothing to approve'), 'Decision not recorded: nothing to approve');
  assert.equal(refusalNotice({ type: 'resolve' }, 'unknown_note', 'no note 4'), 'Note not updated: no note 4');
  assert.equal(refusalNotice({ type: 'erase' }, 'forbidden', 'viewers cannot draw'), 'Not erased: viewers cannot draw');
  assert.equal(refusalNotice({ type: 'erase' }, 'unknown_drawing', 'there is no drawing 3 to erase'), null);
  assert.equal(refusalHeadline({ type: 'reply' }, 'bad_note'), 'Reply not saved');
  assert.equal(refusalHeadline({ type: 'erase' }, 'unknown_drawing'), null);
});
