// Screenshots of the review page at a laptop's, a desktop's and a phone's
// size, for README.md: `npm run screenshots` (needs SYNCREEL_BIN and the
// demo clip, as the media tests do). They are taken at a reduced device
// scale, so the PNGs stay small; the layout is the one at full size.
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  createMediaSession, joinAs, launchBrowser, startDemoServer, until,
} from '../tests/support/harness.mjs';

const OUT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'docs', 'screenshots');
const SHOTS = [
  { file: 'review-1280x800.png', role: 'host', name: 'Dana (colour)', viewport: { width: 1280, height: 800 }, scale: 0.75 },
  { file: 'review-1920x1080.png', role: 'reviewer', name: 'Ravi (editor)', viewport: { width: 1920, height: 1080 }, scale: 0.5 },
  { file: 'review-390x844.png', role: 'viewer', name: 'Sam (client)', viewport: { width: 390, height: 844 }, scale: 1 },
];

const server = await startDemoServer();
const browser = await launchBrowser();
try {
  mkdirSync(OUT, { recursive: true });
  const { byRole } = await createMediaSession(server.base, 'Reel 3 · grade review');
  const pages = [];
  for (const shot of SHOTS) {
    const page = await joinAs(browser, byRole[shot.role].url, shot.name, { viewport: shot.viewport, deviceScaleFactor: shot.scale });
    await until(page, () => window.syncreel.video().state === 'playing' && document.getElementById('video').videoWidth > 0, null, 30_000);
    pages.push(page);
  }
  const host = pages[0];
  await host.fill('#tc-input', '1005');
  await host.press('#tc-input', 'Enter');
  await until(host, () => window.syncreel.still()?.frame === 245, null, 30_000);
  for (const text of ['Sky is too cyan here; pull it back toward the reference', 'Hold the cut two frames longer']) {
    await host.fill('#note-input', text);
    await host.press('#note-input', 'Enter');
  }
  // A range note (I and O) and a reviewer's note: the timeline's spans and author colours.
  const at = async (typed, frame) => {
    await host.fill('#tc-input', typed);
    await host.press('#tc-input', 'Enter');
    await until(host, (f) => window.syncreel.still()?.frame === f, frame, 30_000);
  };
  await at('1400', 336);
  await host.keyboard.press('i');
  await at('1600', 384);
  await host.keyboard.press('o');
  await host.fill('#note-input', 'The sign flickers through here');
  await host.press('#note-input', 'Enter');
  await at('1005', 245);
  await pages[1].fill('#note-input', 'Agree on the sky; the skin tones look right');
  await pages[1].press('#note-input', 'Enter');
  for (const page of pages) {
    await until(page, () => document.querySelectorAll('#notes > li[data-id]').length === 4
      && window.syncreel.still()?.frame === 245
      && [...document.querySelectorAll('#presence .sync-col')].every((td) => td.dataset.sync === 'in-sync'), null, 30_000);
  }
  for (const [i, shot] of SHOTS.entries()) {
    await pages[i].screenshot({ path: join(OUT, shot.file) });
    console.log(join(OUT, shot.file));
  }
} finally {
  await browser.close();
  await server.stop();
}
