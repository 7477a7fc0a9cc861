// Decisions on the version under review, and how their receipts read.
// The server keeps every decision (oldest first); a later one by the same
// author supersedes the earlier, so "where the room stands" is the newest
// per author. A receipt says what that author was actually shown: the
// frames their playback reports cover, the stream the server sent them,
// and the file's checksum. No DOM, no socket.

export const STATUSES = Object.freeze(['approved', 'changesRequested', 'pending']);

export const STATUS_LABEL = Object.freeze({
  approved: 'Approved',
  changesRequested: 'Changes requested',
  pending: 'Pending',
});

/** Enough of a SHA-256 to tell two files apart at a glance, short enough to read out on a call. */
export const CHECKSUM_CHARS = 12;
/** Ranges beyond this many are counted, not listed. */
export const MAX_RANGES_SHOWN = 3;

/** The room's decisions, by id. */
export class Approvals {
  constructor() {
    this.byId = new Map();
  }

  /** Replaces every decision (the server's `approvals` list). */
  replace(list) {
    this.byId = new Map(list.map((a) => [a.id, a]));
  }

  /** Adds one decision; returns false when it was already known. */
  add(approval) {
    if (this.byId.has(approval.id)) return false;
    this.byId.set(approval.id, approval);
    return true;
  }

  /** Every decision, oldest first. */
  all() {
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  /** The decision that stands for each author (their newest), newest first. */
  current(versionId = null) {
    const byAuthor = new Map();
    // In a playlist each version has its own decisions.
    for (const a of this.all()) if (versionId == null || a.versionId == null || a.versionId === versionId) byAuthor.set(a.author, a);
    return [...byAuthor.values()].sort((a, b) => b.id - a.id);
  }

  /** The decision that stands for `author`, or null. */
  of(author, versionId = null) {
    return this.current(versionId).find((a) => a.author === author) ?? null;
  }

  hasKey(key) {
    for (const a of this.byId.values()) if (a.key === key) return true;
    return false;
  }

  /** Whether a queued `approve` is already stored (its acknowledgement was lost). */
  settles(msg) {
    return msg.type === 'approve' && this.hasKey(msg.key);
  }

  get size() {
    return this.byId.size;
  }
}

/** The `approve` message for `status` on version `versionId` (null: whatever the session reviews). */
export function approveMessage(status, versionId) {
  if (!STATUSES.includes(status)) return null;
  const msg = { type: 'approve', status };
  if (versionId != null) msg.version = versionId;
  return msg;
}

/**
 * Frame ranges as timecodes: `label(frame)` names a frame. A single frame
 * is one label; more than `max` ranges end in "+N more".
 */
export function rangesLabel(frames, label, max = MAX_RANGES_SHOWN) {
  const shown = frames.slice(0, max).map(([a, b]) => (a === b ? label(a) : `${label(a)}–${label(b)}`));
  if (frames.length > max) shown.push(`+${frames.length - max} more`);
  return shown.join(', ');
}

/**
 * A receipt in short readable parts (null where the receipt does not
 * say): how many frames were seen and which, the stream and its rate,
 * and the start of the checksum.
 */
export function receiptParts(receipt, label) {
  const count = receipt?.frameCount ?? 0;
  const frames = receipt?.frames ?? [];
  let stream = receipt?.stream ?? null;
  if (stream && receipt.streamKbps != null) stream += ` · ${receipt.streamKbps} kbps`;
  return {
    seen: `${count} frame${count === 1 ? '' : 's'} seen`,
    ranges: frames.length ? rangesLabel(frames, label) : null,
    stream,
    checksum: receipt?.checksum ? receipt.checksum.slice(0, CHECKSUM_CHARS) : null,
  };
}

/** "shot_010 v2" for a version. */
export function versionLabel(version) {
  return version ? `${version.item} v${version.number}` : '';
}
