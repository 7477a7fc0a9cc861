// The client's version and replacement rules, fed with wire messages
// shaped exactly as src/protocol.rs serializes them.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Room } from '../room.js';
import { position } from '../transport.js';

const transport = (frame, extra = {}) => ({
  playing: false, speed: 1, anchorFrame: frame, anchorTime: 1_000, loopIn: null, loopOut: null, ...extra,
});
const presence = (id, name, role, extra = {}) => ({
  id, name, role, connected: true, rttUs: null, offsetUs: null, uncertaintyUs: null,
  lastFrame: null, lastFrameAt: null, ...extra,
});

function welcome(version = 3) {
  return {
    type: 'welcome', protocol: 1, you: 2, role: 'reviewer', resume: 'secret',
    session: {
      id: 's1', title: 'T', fps: '24000/1001', fpsNum: 24000, fpsDen: 1001, timebase: 24,
      dropFrame: false, durationFrames: 14400, startTimecode: '01:00:00:00',
    },
    state: {
      version,
      transport: transport(245),
      control: { driver: 1, requests: [] },
      participants: [presence(1, 'Host', 'host'), presence(2, 'Rev', 'reviewer')],
      counts: { hosts: 1, reviewers: 1, viewers: 0 },
    },
    serverTime: 1_000,
  };
}

test('a welcome sets everything, and the label of the anchor', () => {
  const room = new Room();
  assert.equal(room.apply(welcome()), 'all');
  assert.equal(room.version, 3);
  assert.equal(room.format.label(position(room.schedule.at(2_000), room.timeline, 2_000)), '01:00:10:05');
  assert.ok(!room.isDriver());
  assert.ok(room.canDrive());
});

test('stale versions are ignored; control and transport share the counter', () => {
  const room = new Room();
  room.apply(welcome(3));
  const move = (version, frame) => ({
    type: 'transport', version, executeAt: 5_000, transport: transport(frame, { anchorTime: 5_000 }),
    cause: 'seek', by: 1,
  });
  assert.equal(room.apply(move(3, 10)), null);
  assert.equal(room.apply(move(4, 10)), 'transport');
  assert.equal(room.apply({ type: 'control', version: 4, driver: 2, requests: [], reason: 'granted' }), null);
  assert.equal(room.apply({ type: 'control', version: 5, driver: 2, requests: [], reason: 'granted' }), 'control');
  assert.ok(room.isDriver());
  assert.equal(room.apply(move(5, 99)), null);
  // The accepted move is pending until its execute-at.
  assert.equal(room.schedule.at(4_999).anchorFrame, 245);
  assert.equal(room.schedule.at(5_000).anchorFrame, 10);
});

test('presence is a diff: upsert changed entries, drop the left', () => {
  const room = new Room();
  room.apply(welcome());
  room.apply({
    type: 'presence',
    participants: [presence(2, 'Rev', 'reviewer', { rttUs: 900 }), presence(3, 'View', 'viewer')],
    left: [1],
    counts: { hosts: 0, reviewers: 1, viewers: 1 },
  });
  assert.deepEqual([...room.participants.keys()].sort(), [2, 3]);
  assert.equal(room.participants.get(2).rttUs, 900);
  assert.equal(room.counts.viewers, 1);
});

test('a snapshot replaces everything, even with a lower version', () => {
  const room = new Room();
  room.apply(welcome(9));
  room.apply({
    type: 'transport', version: 10, executeAt: 9e9, transport: transport(7), cause: 'seek', by: 1,
  });
  const state = { ...welcome(4).state, participants: [presence(1, 'Host', 'host')] };
  assert.equal(room.apply({ type: 'snapshot', state, serverTime: 2_000 }), 'all');
  assert.equal(room.version, 4);
  assert.equal(room.schedule.pending.length, 0);
  assert.equal(room.participants.size, 1);
});

function playlistWelcome() {
  const msg = welcome(3);
  const v1 = { id: 'v-a', item: 'Reel 1', number: 1, checksum: 'aa', sizeBytes: 10 };
  const v2 = { id: 'v-b', item: 'Shot 010', number: 1, checksum: 'bb', sizeBytes: 20 };
  msg.media = { version: v1 };
  msg.state.entry = 0;
  msg.playlist = [
    { version: v1, fps: '24000/1001', dropFrame: false, startTimecode: '01:00:00:00', durationFrames: 14400 },
    { version: v2, fps: '25', dropFrame: false, startTimecode: '02:00:00:00', durationFrames: 250 },
  ];
  return { msg, v1, v2 };
}

const take2 = {
  id: 's1', title: 'T', fps: '25', fpsNum: 25, fpsDen: 1, timebase: 25,
  dropFrame: false, durationFrames: 250, startTimecode: '02:00:00:00',
};

test('a cue switches timeline, labels and version at its instant, not on arrival', () => {
  const { msg, v1, v2 } = playlistWelcome();
  const room = new Room();
  room.apply(msg);
  assert.equal(room.mediaVersion, v1);
  const cue = {
    type: 'cue', version: 4, executeAt: 5_000, entry: 1, session: take2, mediaVersion: v2,
    transport: transport(0, { anchorTime: 5_000 }), by: 1,
  };
  assert.equal(room.apply(cue), 'transport');
  // Before its instant: still the reel, its frame and its labels.
  assert.equal(room.advance(4_999), false);
  assert.equal(room.entry, 0);
  assert.equal(room.format.label(position(room.schedule.at(4_999), room.timeline, 4_999)), '01:00:10:05');
  assert.ok(room.showsVersion('v-a') && !room.showsVersion('v-b'));
  // At it: everything together.
  assert.equal(room.advance(5_000), true);
  assert.equal(room.advance(6_000), false, 'applied once');
  assert.deepEqual([room.entry, room.entryVersion, room.mediaVersion], [1, 4, v2]);
  assert.equal(room.timeline.duration, 250);
  assert.equal(room.format.label(position(room.schedule.at(5_000), room.timeline, 5_000)), '02:00:00:00');
  assert.ok(room.showsVersion('v-b') && !room.showsVersion('v-a'));
  assert.ok(room.showsVersion(undefined), 'a record without a version shows everywhere');
  // A stale cue (its version already applied) changes nothing.
  assert.equal(room.apply({ ...cue, version: 4, entry: 0, executeAt: 7_000 }), null);
  assert.equal(room.advance(8_000), false);
});

test('a resync onto another entry takes its timeline from the playlist; a pending cue is dropped', () => {
  const { msg, v2 } = playlistWelcome();
  const room = new Room();
  room.apply(msg);
  room.apply({
    type: 'cue', version: 4, executeAt: 5_000, entry: 1, session: take2, mediaVersion: v2,
    transport: transport(0, { anchorTime: 5_000 }), by: 1,
  });
  const state = { ...msg.state, version: 9, entry: 1, transport: transport(100, { anchorTime: 6_000 }) };
  assert.equal(room.apply({ type: 'snapshot', state, serverTime: 6_000 }), 'all');
  assert.deepEqual([room.entry, room.entryVersion, room.mediaVersion, room.cues.length], [1, 9, v2, 0]);
  assert.deepEqual([room.timeline.fpsNum, room.timeline.fpsDen, room.timeline.duration], [25, 1, 250]);
  assert.equal(room.format.label(100), '02:00:04:00');
  assert.equal(room.session.title, 'T', 'the rest of the session is kept');
});
