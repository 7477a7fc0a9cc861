// The picture's one state, and each person's sync in a word.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { personSync, pictureState, syncDetails } from '../states.js';

const playing = { playing: true, speed: 1 };
const paused = { playing: false, speed: 1 };
const live = { connection: 'live', transport: playing, frame: 100, lastFrame: 2000, video: 'playing' };
const state = (over) => pictureState({ ...live, ...over }).state;

test('the connection comes first: nothing on screen is live without it', () => {
  assert.equal(state({ connection: 'reconnecting' }), 'reconnecting');
  assert.equal(state({ connection: 'reconnecting', unreachable: true }), 'unreachable');
  assert.equal(pictureState({ ...live, connection: 'reconnecting', unreachable: true }).label, 'Server unreachable · retrying');
  assert.equal(state({ connection: 'error' }), 'disconnected');
  assert.equal(state({ connection: 'idle' }), 'disconnected');
  assert.equal(state({ connection: 'connecting' }), 'connecting');
  // Even over a stream that still says it plays, or a paused room.
  assert.equal(state({ connection: 'reconnecting', transport: paused }), 'reconnecting');
});

test('then the stream: playing without pictures is buffering, a failed stream says so', () => {
  assert.equal(state({ video: 'connecting' }), 'buffering');
  assert.equal(state({ stalled: true }), 'buffering');
  assert.equal(state({ video: 'failed' }), 'failed');
  assert.equal(state({}), 'playing');
  // Without media there is no stream to wait for.
  assert.equal(state({ video: null, stalled: false }), 'playing');
});

test('then the transport: paused, playing at a speed, reverse, and the end', () => {
  assert.equal(state({ transport: paused }), 'paused');
  // Paused, the still is the picture: the stream's state does not matter.
  assert.equal(state({ transport: paused, video: 'connecting' }), 'paused');
  assert.equal(pictureState({ ...live, transport: { playing: true, speed: 2 } }).label, 'Playing 2×');
  assert.equal(pictureState({ ...live, transport: { playing: true, speed: -1 } }).label, 'Reverse');
  assert.equal(pictureState({ ...live, transport: { playing: true, speed: 0.5 } }).label, 'Playing 0.5×');
  assert.equal(state({ transport: paused, frame: 2000 }), 'ended');
  assert.equal(state({ frame: 2000 }), 'ended');
  assert.equal(state({ frame: 2000, transport: { playing: true, speed: -1 } }), 'reverse');
  assert.equal(state({ transport: null }), 'connecting');
});

const person = (over = {}) => ({ connected: true, rttUs: 3100, uncertaintyUs: 450, lastFrame: 245, ...over });

test('a person is in sync within a frame either way, else behind or ahead by so many frames', () => {
  assert.deepEqual(personSync(person(), 0), { status: 'in-sync', word: 'in sync' });
  assert.equal(personSync(person(), 1).status, 'in-sync');
  assert.equal(personSync(person(), -1).status, 'in-sync');
  assert.deepEqual(personSync(person(), 5), { status: 'behind', word: 'behind 5 f' });
  assert.deepEqual(personSync(person(), -3), { status: 'ahead', word: 'ahead 3 f' });
  assert.equal(personSync(person({ connected: false }), 0).status, 'away');
  // No report yet: the clock decides.
  assert.equal(personSync(person(), null).status, 'in-sync');
  assert.equal(personSync(person({ uncertaintyUs: null }), null).status, 'syncing');
});

test('the figures behind the word are in its title', () => {
  assert.equal(syncDetails(person(), '+1 f / 38 ms'),
    'round trip 3.1 ms · clock ±0.5 ms · frame 245 · video +1 f / 38 ms (frames behind the room / how late shown)');
  assert.equal(syncDetails(person({ rttUs: null, uncertaintyUs: null, lastFrame: null }), null), 'round trip — · clock not synced yet');
});
