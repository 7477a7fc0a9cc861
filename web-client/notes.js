// The review record on this side: the room's notes as the server stored
// them, and this author's notes that the server has not yet acknowledged.
// No DOM, no socket: main.js feeds in server messages and sends what the
// outbox hands it, so node tests it with a fake storage.
//
// A note leaves with a key the client makes up. The server stores a key
// once per session, so resending the same key after a lost connection or
// a lost acknowledgement never makes a second note: the outbox keeps every
// note until the server says it is stored (or refuses it for good), and
// survives a reload through the storage it is given.

/** The server's limit, in characters (code points), after trimming. */
export const MAX_NOTE_CHARS = 4000;

/** Refusals worth retrying later; any other code will fail again. */
const RETRYABLE = new Set(['store']);

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

/** The room's stored notes, by id; listed by frame, then id. */
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

  all() {
    return this.sorted;
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
 * Unacknowledged notes, in the order they were written, written through
 * to `storage` (localStorage in the page) under `storageKey`.
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
      return Array.isArray(items) ? items.filter((m) => m && m.type === 'note' && typeof m.key === 'string') : [];
    } catch {
      return [];
    }
  }

  save() {
    try {
      if (this.items.length) this.storage?.setItem(this.storageKey, JSON.stringify(this.items));
      else this.storage?.removeItem(this.storageKey);
    } catch {
      // Storage full or denied: the note still goes out from memory.
    }
  }

  /**
   * Queues a note at `frame` (through `frameOut`, or null) and returns the
   * message to send, or null when the text cannot be a note.
   */
  draft(frame, frameOut, text) {
    if (noteProblem(text)) return null;
    const msg = { type: 'note', key: this.newKey(), frame, text: String(text).trim() };
    if (frameOut != null) msg.frameOut = frameOut;
    this.items.push(msg);
    this.save();
    return { ...msg };
  }

  /** Every note still to be acknowledged, oldest first: send them again as they are. */
  pending() {
    return this.items.map((m) => ({ ...m }));
  }

  has(key) {
    return this.items.some((m) => m.key === key);
  }

  /** The server stored the note with `key`; returns whether it was pending. */
  ack(key) {
    const before = this.items.length;
    this.items = this.items.filter((m) => m.key !== key);
    if (this.items.length === before) return false;
    this.save();
    return true;
  }

  /**
   * The server refused `key` with `code`. Returns 'retry' when the note is
   * kept (to send again later), 'dropped' when it is gone for good, null
   * when it was not pending.
   */
  refused(key, code) {
    if (!this.has(key)) return null;
    if (RETRYABLE.has(code)) return 'retry';
    this.ack(key);
    return 'dropped';
  }

  /** Drops the pending notes the server already has (their ack was lost); returns how many. */
  settle(notes) {
    let settled = 0;
    for (const m of [...this.items]) {
      if (notes.hasKey(m.key) && this.ack(m.key)) settled += 1;
    }
    return settled;
  }
}
