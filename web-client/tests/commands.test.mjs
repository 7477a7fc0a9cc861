// Pacing and merging of driving commands, against the server's rate limit.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Commands } from '../commands.js';

function harness(driving = true) {
  const sent = [];
  let refusals = 0;
  const commands = new Commands({
    send: (msg) => sent.push(msg),
    canDrive: () => driving,
    refuse: () => { refusals += 1; },
  });
  return { commands, sent, refusals: () => refusals };
}

const drained = (commands) => new Promise((resolve) => {
  const check = () => (commands.queue.length === 0 && !commands.timer ? resolve() : setTimeout(check, 10));
  check();
});

test('the first command leaves at once; a burst of steps merges into one', async () => {
  const { commands, sent } = harness();
  commands.drive({ type: 'play' });
  assert.deepEqual(sent, [{ type: 'play' }]);
  for (let i = 0; i < 30; i++) commands.drive({ type: 'step', frames: 1 });
  commands.drive({ type: 'step', frames: -10 });
  await drained(commands);
  assert.deepEqual(sent, [{ type: 'play' }, { type: 'step', frames: 20 }]);
});

test('scrubber seeks collapse to the last one, other commands keep their order', async () => {
  const { commands, sent } = harness();
  commands.drive({ type: 'pause' });
  for (let f = 0; f < 50; f++) commands.drive({ type: 'seek', frame: f });
  commands.drive({ type: 'loopIn', frame: 49 });
  await drained(commands);
  assert.deepEqual(sent, [{ type: 'pause' }, { type: 'seek', frame: 49 }, { type: 'loopIn', frame: 49 }]);
});

test('steps that cancel out send nothing', async () => {
  const { commands, sent } = harness();
  commands.drive({ type: 'pause' });
  commands.drive({ type: 'step', frames: 1 });
  commands.drive({ type: 'step', frames: -1 });
  await drained(commands);
  assert.deepEqual(sent, [{ type: 'pause' }]);
});

test('without the seat nothing is sent and the user is told', () => {
  const { commands, sent, refusals } = harness(false);
  commands.drive({ type: 'play' });
  assert.deepEqual(sent, []);
  assert.equal(refusals(), 1);
});

/** A driver's page: the frame on its screen and whether the room plays, both set by the test. */
function screen({ playing = true, frame = 100 } = {}) {
  const sent = [];
  const view = { playing, frame, skewMs: 0 };
  const commands = new Commands({
    send: (msg) => sent.push(msg),
    canDrive: () => true,
    refuse: () => {},
    seen: () => view.frame,
    playing: () => view.playing,
    now: () => performance.now() + view.skewMs,
  });
  return { commands, sent, view };
}

test('in play, a command carries the frame on screen at its keypress, also when it leaves later', async () => {
  const { commands, sent, view } = screen({ frame: 100 });
  commands.drive({ type: 'shuttle', speed: 2 });
  // Queued behind the shuttle: it leaves ~50 ms later, when the picture is further on.
  view.frame = 104;
  commands.drive({ type: 'loopIn' });
  view.frame = 109;
  await drained(commands);
  assert.deepEqual(sent, [{ type: 'shuttle', speed: 2, shown: 100 }, { type: 'loopIn', shown: 104 }]);
});

test('merged steps count from the frame seen at the first of them', async () => {
  const { commands, sent, view } = screen({ frame: 500 });
  commands.drive({ type: 'shuttle', speed: 1 });
  view.frame = 502;
  commands.drive({ type: 'step', frames: 1 });
  view.frame = 503;
  commands.drive({ type: 'step', frames: 1 });
  view.frame = 505;
  commands.drive({ type: 'step', frames: 10 });
  await drained(commands);
  assert.deepEqual(sent, [{ type: 'shuttle', speed: 1, shown: 500 }, { type: 'step', frames: 12, shown: 502 }]);
});

test('in play, steps that cancel out still stop the room on the frame seen', async () => {
  const { commands, sent } = screen({ frame: 40 });
  commands.drive({ type: 'seek', frame: 40 });
  commands.drive({ type: 'step', frames: 1 });
  commands.drive({ type: 'step', frames: -1 });
  await drained(commands);
  assert.deepEqual(sent, [{ type: 'seek', frame: 40, shown: 40 }, { type: 'step', frames: 0, shown: 40 }]);
});

test('once a pause or step of ours is on its way, later commands leave the frame to the server', async () => {
  const { commands, sent, view } = screen({ frame: 300 });
  commands.drive({ type: 'pause' });
  // The picture still moves until the pause reaches it; a shown of 303
  // would undo the pause's frame.
  view.frame = 303;
  commands.drive({ type: 'step', frames: 1 });
  await drained(commands);
  // The pause's broadcast comes back: the room is paused; the picture has not caught up yet.
  commands.confirm();
  commands.confirm();
  view.playing = false;
  view.frame = 306;
  commands.drive({ type: 'step', frames: 1 });
  commands.drive({ type: 'loopOut' });
  // Play is on its way: the next pause is about the moving picture again.
  commands.drive({ type: 'play' });
  commands.drive({ type: 'pause' });
  await drained(commands);
  assert.deepEqual(sent, [
    { type: 'pause', shown: 300 }, { type: 'step', frames: 1 },
    { type: 'step', frames: 1 }, { type: 'loopOut' }, { type: 'play' }, { type: 'pause', shown: 306 },
  ]);
});

test('a command whose broadcast never comes stops counting after a second', () => {
  const { commands, sent, view } = screen({ frame: 10 });
  commands.drive({ type: 'pause' });
  assert.equal(commands.willPlay(), false);
  view.skewMs = 1_001;
  assert.equal(commands.willPlay(), true);
  view.frame = 12;
  commands.drive({ type: 'loopIn' });
  assert.deepEqual(sent.at(-1), { type: 'loopIn', shown: 12 });
  commands.clear();
});

test('without a frame on screen a command goes without one', async () => {
  const { commands, sent, view } = screen();
  view.frame = null;
  commands.drive({ type: 'pause' });
  await drained(commands);
  assert.deepEqual(sent, [{ type: 'pause' }]);
});
