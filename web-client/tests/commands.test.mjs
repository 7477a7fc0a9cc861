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
