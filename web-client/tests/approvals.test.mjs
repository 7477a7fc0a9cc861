// Decisions: where the room stands (newest per author), and how a receipt reads.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  Approvals, CHECKSUM_CHARS, STATUS_LABEL, approveMessage, rangesLabel, receiptParts, versionLabel,
} from '../approvals.js';
import { TimecodeFormat } from '../timecode.js';

const CHECKSUM = '3f2a9c1b7d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8';

const approval = (id, author, status, extra = {}) => ({
  id, key: `k${id}`, status, versionId: 'v1', author, authorRole: 'reviewer', createdAt: id,
  receipt: { frames: [[0, 47]], frameCount: 48, checksum: CHECKSUM }, ...extra,
});

const format = TimecodeFormat.fromSession({
  fps: '24000/1001', fpsNum: 24000, fpsDen: 1001, timebase: 24, dropFrame: false, startTimecode: '01:00:00:00',
});
const label = (f) => format.label(f);

test('the newest decision per author stands; newest first', () => {
  const a = new Approvals();
  a.replace([
    approval(1, 'Dana', 'changesRequested'),
    approval(2, 'Ravi', 'approved'),
    approval(3, 'Dana', 'approved'),
  ]);
  assert.deepEqual(a.current().map((x) => [x.author, x.status]), [['Dana', 'approved'], ['Ravi', 'approved']]);
  assert.equal(a.add(approval(4, 'Ravi', 'changesRequested')), true);
  assert.equal(a.add(approval(4, 'Ravi', 'changesRequested')), false);
  assert.deepEqual(a.current().map((x) => [x.author, x.status]), [['Ravi', 'changesRequested'], ['Dana', 'approved']]);
  assert.equal(a.of('Dana').id, 3);
  assert.equal(a.of('Nobody'), null);
  // The whole history stays, oldest first.
  assert.deepEqual(a.all().map((x) => x.id), [1, 2, 3, 4]);
  assert.equal(a.size, 4);
  a.replace([]);
  assert.deepEqual(a.current(), []);
});

test('a queued approve is settled once the list carries its key', () => {
  const a = new Approvals();
  a.replace([approval(1, 'Dana', 'approved')]);
  assert.ok(a.settles({ type: 'approve', key: 'k1', status: 'approved' }));
  assert.ok(!a.settles({ type: 'approve', key: 'k2', status: 'approved' }));
  assert.ok(!a.settles({ type: 'note', key: 'k1' }));
});

test('approve messages name a known status and the version when given', () => {
  assert.deepEqual(approveMessage('approved', 'v1'), { type: 'approve', status: 'approved', version: 'v1' });
  assert.deepEqual(approveMessage('changesRequested', null), { type: 'approve', status: 'changesRequested' });
  assert.equal(approveMessage('changes_requested', 'v1'), null, 'the wire spells it in camelCase');
  assert.equal(STATUS_LABEL.changesRequested, 'Changes requested');
});

test('frame ranges read as timecodes, and many are counted rather than listed', () => {
  assert.equal(rangesLabel([[0, 47]], label), '01:00:00:00–01:00:01:23');
  assert.equal(rangesLabel([[245, 245]], label), '01:00:10:05');
  assert.equal(
    rangesLabel([[0, 1], [24, 24], [48, 49], [96, 97], [120, 121]], label),
    '01:00:00:00–01:00:00:01, 01:00:01:00, 01:00:02:00–01:00:02:01, +2 more',
  );
  assert.equal(rangesLabel([], label), '');
});

test('a receipt reads as frames seen, which, the stream and the checksum\'s start', () => {
  const full = receiptParts({
    frames: [[245, 300]], frameCount: 56, stream: '640x360 VP8', streamBytes: 123456, streamKbps: 1180, checksum: CHECKSUM,
  }, label);
  assert.deepEqual(full, {
    seen: '56 frames seen',
    ranges: '01:00:10:05–01:00:12:12',
    stream: '640x360 VP8 · 1180 kbps',
    checksum: CHECKSUM.slice(0, CHECKSUM_CHARS),
  });
  assert.equal(full.checksum, '3f2a9c1b7d4e');
  // A session without media, or a viewer who saw nothing: only what is known.
  assert.deepEqual(receiptParts({ frames: [[7, 7]], frameCount: 1 }, label), {
    seen: '1 frame seen', ranges: '01:00:00:07', stream: null, checksum: null,
  });
  assert.deepEqual(receiptParts({ frames: [], frameCount: 0, stream: '640x360 VP8' }, label), {
    seen: '0 frames seen', ranges: null, stream: '640x360 VP8', checksum: null,
  });
});

test('a version reads as its item and number', () => {
  assert.equal(versionLabel({ id: 'v1', item: 'shot_010', number: 2, checksum: CHECKSUM, sizeBytes: 1 }), 'shot_010 v2');
  assert.equal(versionLabel(null), '');
});
