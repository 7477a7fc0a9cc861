// The source's colour description (welcome `media.sourceColour`) as a
// reviewer reads it in the header: a grade is judged against it.

const PRIMARIES = {
  bt709: 'Rec. 709',
  bt2020: 'Rec. 2020',
  bt470bg: 'BT.470 BG',
  bt470m: 'BT.470 M',
  smpte170m: 'SMPTE 170M',
  smpte240m: 'SMPTE 240M',
  'dci-p3': 'DCI-P3',
  'display-p3': 'Display P3',
  adobergb: 'Adobe RGB',
};
const TRANSFER = { pq: 'PQ', hlg: 'HLG', linear: 'linear', srgb: 'sRGB' };

/** `Rec. 709 · limited`, `Rec. 2020 PQ · limited`; '' when the file states nothing. */
export function colourLabel(colour) {
  if (!colour || colour.primaries === 'unknown') return '';
  const primaries = PRIMARIES[colour.primaries] ?? colour.primaries;
  const transfer = TRANSFER[colour.transfer] ? ` ${TRANSFER[colour.transfer]}` : '';
  const range = colour.range === 'unknown' ? '' : ` · ${colour.range}`;
  return `${primaries}${transfer}${range}`;
}

/** The chip's title: every part, and whether the stream comes from a review proxy. */
export function colourTitle(colour, proxy) {
  const parts = colour
    ? `primaries ${colour.primaries}, transfer ${colour.transfer}, matrix ${colour.matrix}, range ${colour.range}`
    : 'not stated';
  return `Source colour: ${parts}${proxy ? '. The stream plays from a review proxy of the source' : ''}`;
}
