// Every typed error the server can send has a sentence a person
// understands. The codes come from docs/protocol.md itself, so a code
// added there without a sentence here fails this test.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

import { describe, knows, sentence } from '../messages.js';

const PROTOCOL = new URL('../../docs/protocol.md', import.meta.url);

/** The codes of the "Error codes" table: every `code` in its first column. */
function protocolErrorCodes() {
  const doc = readFileSync(PROTOCOL, 'utf8');
  const section = doc.split(/^## Error codes$/m)[1]?.split(/^#{2,3} /m)[0];
  assert.ok(section, 'docs/protocol.md has an "## Error codes" section');
  const codes = [];
  for (const line of section.split('\n')) {
    const first = line.match(/^\|([^|]*)\|/)?.[1];
    if (!first) continue;
    codes.push(...[...first.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]));
  }
  return codes;
}

test('the error table is read: it names the codes the client switches on', () => {
  const codes = protocolErrorCodes();
  for (const code of ['malformed', 'invalid_token', 'not_driver', 'bad_timecode', 'replaced', 'rtc']) {
    assert.ok(codes.includes(code), `${code} is in the table`);
  }
  assert.ok(codes.length >= 35, `only ${codes.length} codes read`);
});

test('every error code in docs/protocol.md has a sentence of its own', () => {
  const missing = protocolErrorCodes().filter((code) => !knows(code));
  assert.deepEqual(missing, [], 'codes without a sentence in messages.js');
});

test('a sentence is a sentence, never the code, and says what to do where there is something to do', () => {
  for (const code of protocolErrorCodes()) {
    const { text, next } = describe(code, 'lowercase server words');
    assert.match(text, /^[A-Z].*[.!]$/, `${code}: "${text}"`);
    // (A one-word code such as `left` may be a plain word in its sentence.)
    assert.doesNotMatch(text + next, /[a-z]+_[a-z]+/, `${code}: a snake_case word reads like a code`);
    if (next) assert.match(next, /^[A-Z].*[.!]$/, `${code}: "${next}"`);
  }
  for (const code of ['invalid_token', 'link_expired', 'not_driver', 'bad_timecode', 'session_full']) {
    assert.ok(describe(code).next, `${code} says what to do next`);
  }
});

test('an unknown code falls back to the server\'s message, made a sentence', () => {
  assert.deepEqual(describe('brand_new_code', 'the moon is in the way'), { text: 'The moon is in the way.', next: '' });
  assert.equal(describe('brand_new_code', '').text, 'Something went wrong.');
  assert.equal(sentence('already done!'), 'Already done!');
  assert.equal(sentence('  '), '');
});

test('where the server names the specifics, they are shown with the sentence', () => {
  const { text, next } = describe('not_exportable', 'the entries run at 23.976 fps and 25 fps');
  assert.equal(text, 'This record cannot be exported in that format.');
  assert.equal(next, 'The entries run at 23.976 fps and 25 fps. Choose another format.');
  // Elsewhere the server's words stay in the details.
  assert.doesNotMatch(describe('bad_timecode', 'timecode "x" is not HH:MM:SS:FF').next, /HH:MM/);
});
