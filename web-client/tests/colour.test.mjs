// The header's colour chip: what a source's colour description reads as.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { colourLabel, colourTitle } from '../colour.js';

const hd = { primaries: 'bt709', transfer: 'bt709', matrix: 'bt709', range: 'limited' };

test('a colour description reads as its primaries, an HDR transfer, and its range', () => {
  assert.equal(colourLabel(hd), 'Rec. 709 · limited');
  assert.equal(
    colourLabel({ primaries: 'bt2020', transfer: 'pq', matrix: 'bt2020', range: 'limited' }),
    'Rec. 2020 PQ · limited',
  );
  assert.equal(colourLabel({ ...hd, range: 'full' }), 'Rec. 709 · full');
  assert.equal(colourLabel({ ...hd, primaries: 'ebu3213' }), 'ebu3213 · limited');
  assert.equal(colourLabel({ ...hd, primaries: 'unknown' }), '');
  assert.equal(colourLabel(null), '');
  assert.equal(
    colourTitle(hd, true),
    'Source colour: primaries bt709, transfer bt709, matrix bt709, range limited. The stream plays from a review proxy of the source',
  );
});
