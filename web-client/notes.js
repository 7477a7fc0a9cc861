// The review record on this side: the room's notes as the server stored
// them (replies and resolutions included), and this author's outbox of
// writes the server has not yet acknowledged. No DOM, no socket: main.js
// feeds in server messages and sends what the outbox hands it, so node
// tests it with a fake storage.
//
// Every write (a note, a reply, a resolve, a drawing, an erasure, a
// decision) leaves with a key the client makes up. The server stores a
// key once per session, so resending the same key after a lost connection
// or a lost acknowledgement never makes a second record: the outbox keeps
// every write until the server says it is stored (or refuses it for
// good), and survives a reload through the storage it is given.

/** The server's limit, in characters (code points), after trimming. */
export const MAX_NOTE_CHARS = 4000;

/** Refusals worth retrying later; any other code will fail again. */
const RETRYABLE = new Set(['store']);

/**
 * Which acknowledgement answers each kind of write (noteAck, drawingAck,
 * approvalAck), and so which catch-up list (`notes`, `drawings`,
 * `approvals`) tells whether it is already stored.
 */
const FAMILY = Object.freeze({
  note: 'note', reply: 'note', resolve: 'note', drawing: 'drawing', erase: 'drawing', approve: 'approval',
});

/** 'note', 'drawing' or 'approval' for a write's type; undefined for anything else. */
export const familyOf = (type) => FAMILY[type];

const REFUSED = Object.freeze({
  note: 'Note not saved', reply: 'Reply not saved', resolve: 'Note not updated',
  drawing: 'Drawing not saved', erase: 'Not erased', approve: 'Decision not recorded',
});

/**
 * What to tell the author of `write` that the server refused for good
 * (with `code` and `message`), or null when there is nothing to tell.
 */
export function refusalNotice(write, code, message) {
  const headline = refusalHeadline(write, code);
  return headline && `${headline}: ${message}`;
}

/** What was refused ("Note not saved"), to head the sentence for `code`; null when there is nothing to tell. */
export function refusalHeadline(write, code) {
  // Someone else's eraser got there first: the shape is gone, as wished.
  if (write.type === 'erase' && code === 'unknown_drawing') return null;
  return REFUSED[write.type] ?? 'Not saved';
}

/**
 * A fresh key. randomUUID exists only in secure contexts (https,
 * localhost); a review server on a LAN over plain http has
 * getRandomValues alone.
 */
export function freshKey() {
  const c = globalThis.crypto;
  if (typeof c.randomUUID === 'function') return c.randomUUID();
  return Array.from(c.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}

const byFrameThenId = (a, b) => a.frame - b.frame || a.id - b.id;

/** The room's stored notes and replies, by id; listed by frame, then id. */
export class Notes {
  constructor() {
    this.byId = new Map();
    this.sorted = [];
  }

  /** Replaces every note (the server's `notes` list). */
  replace(list) {
    this.byId = new Map(list.map((n) => [n.id, n]));
    this.sorted = [...this.byId.values()].sort(byFrameThenId);
  }

  /** Adds one note; returns false when it was already known. */
  add(note) {
    if (this.byId.has(note.id)) return false;
    this.put(note);
    return true;
  }

  /**
   * Takes a note as the server now has it: new, or an update of one we
   * know (resolved or reopened). Returns whether anything changed.
   */
  put(note) {
    const old = this.byId.get(note.id);
    if (old && old.resolvedAt === note.resolvedAt && old.resolvedBy === note.resolvedBy && old.text === note.text) {
      return false;
    }
    this.byId.set(note.id, note);
    this.sorted = [...this.byId.values()].sort(byFrameThenId);
    return true;
  }

  get(id) {
    return this.byId.get(id) ?? null;
  }

  hasKey(key) {
    for (const n of this.byId.values()) if (n.key === key) return true;
    return false;
  }

  /** Every note and reply, by frame then id. */
  all() {
    return this.sorted;
  }

  /**
   * The notes people wrote on frames, by frame then id, each with its
   * replies oldest first: `[{note, replies}]`. A reply sits on its
   * note's frame, so it is never listed on its own.
   */
  threads() {
    const replies = new Map();
    for (const n of this.sorted) {
      if (n.parent == null) continue;
      if (!replies.has(n.parent)) replies.set(n.parent, []);
      replies.get(n.parent).push(n);
    }
    for (const list of replies.values()) list.sort((a, b) => a.id - b.id);
    return this.sorted.filter((n) => n.parent == null).map((note) => ({ note, replies: replies.get(note.id) ?? [] }));
  }

  /**
   * Whether a queued write needs no resend given this list: the note or
   * reply is stored, or the note already stands as the resolve asks.
   */
  settles(msg) {
    if (msg.type === 'note' || msg.type === 'reply') return this.hasKey(msg.key);
    if (msg.type === 'resolve') {
      const note = this.get(msg.note);
      return note != null && (note.resolvedAt != null) === msg.resolved;
    }
    return false;
  }

  get size() {
    return this.byId.size;
  }
}

/**
 * Why a note cannot be sent as typed, or null when it can. Checked here
 * so that the user hears at once; the server checks again.
 */
export function noteProblem(text) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) return 'empty';
  if ([...trimmed].length > MAX_NOTE_CHARS) return 'too_long';
  return null;
}

/**
 * Unacknowledged writes, in the order they were made, written through to
 * `storage` (localStorage in the page) under `storageKey`.
 */
export class Outbox {
  constructor({ storage, storageKey, newKey = freshKey }) {
    this.storage = storage;
    this.storageKey = storageKey;
    this.newKey = newKey;
    this.items = this.load();
  }

  load() {
    try {
      const raw = this.storage?.getItem(this.storageKey);
      const items = raw ? JSON.parse(raw) : [];
      return Array.isArray(items) ? items.filter((m) => m && familyOf(m.type) && typeof m.key === 'string') : [];
    } catch {
      return [];
    }
  }

  save() {
    try {
      if (this.items.length) this.storage?.setItem(this.storageKey, JSON.stringify(this.items));
      else this.storage?.removeItem(this.storageKey);
    } catch {
      // Storage full or denied: the write still goes out from memory.
    }
  }

  /**
   * Queues a write (any message of a known type, without its key) under a
   * fresh key, or under `key` when it was made earlier with `newKey()` (a
   * drawing whose stroke the room already saw under that key), and
   * returns the message to send, or null for an unknown type.
   */
  queue(fields, key = null) {
    if (!familyOf(fields?.type)) return null;
    const msg = { ...fields, key: key ?? this.newKey() };
    this.items.push(msg);
    this.save();
    return { ...msg };
  }

  /**
   * Queues a note at `frame` (through `frameOut`, or null) and returns the
   * message to send, or null when the text cannot be a note.
   */
  draft(frame, frameOut, text) {
    if (noteProblem(text)) return null;
    const msg = { type: 'note', frame, text: String(text).trim() };
    if (frameOut != null) msg.frameOut = frameOut;
    return this.queue(msg);
  }

  /** Queues a reply to note `parent`; null when the text cannot be a note. */
  reply(parent, text) {
    if (noteProblem(text)) return null;
    return this.queue({ type: 'reply', parent, text: String(text).trim() });
  }

  /**
   * Queues resolving (or reopening) note `note`. Only the last wish per
   * note is kept: an earlier one still queued would, resent after a
   * reconnect, undo it.
   */
  resolve(note, resolved) {
    const before = this.items.length;
    this.items = this.items.filter((m) => !(m.type === 'resolve' && m.note === note));
    if (this.items.length !== before) this.save();
    return this.queue({ type: 'resolve', note, resolved: Boolean(resolved) });
  }

  /** Every write still to be acknowledged (of one family, when given), oldest first: send them again as they are. */
  pending(family = null) {
    return this.items.filter((m) => family == null || familyOf(m.type) === family).map((m) => ({ ...m }));
  }

  /** The queued write with `key`, or null. */
  get(key) {
    const m = this.items.find((x) => x.key === key);
    return m ? { ...m } : null;
  }

  has(key) {
    return this.items.some((m) => m.key === key);
  }

  /** The server stored the write with `key`; returns whether it was pending. */
  ack(key) {
    const before = this.items.length;
    this.items = this.items.filter((m) => m.key !== key);
    if (this.items.length === before) return false;
    this.save();
    return true;
  }

  /**
   * The server refused `key` with `code`. Returns 'retry' when the write
   * is kept (to send again later), 'dropped' when it is gone for good,
   * null when it was not pending.
   */
  refused(key, code) {
    if (!this.has(key)) return null;
    if (RETRYABLE.has(code)) return 'retry';
    this.ack(key);
    return 'dropped';
  }

  /**
   * Drops the pending writes the server already has (their ack was lost),
   * as told by each record's `settles(msg)` (Notes, Drawings, Approvals);
   * returns how many.
   */
  settle(...records) {
    let settled = 0;
    for (const m of [...this.items]) {
      if (records.some((r) => r.settles(m)) && this.ack(m.key)) settled += 1;
    }
    return settled;
  }
}
