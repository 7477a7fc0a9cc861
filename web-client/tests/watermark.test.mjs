// Issue #11, the per-viewer overlay: in a session with a watermark (which
// the server burns into the picture), each page lays its own
// participant's name over the picture, faint and repeated, so that a
// screen capture says whose screen it was. It is decoration only: it
// takes no click and no selection. Without a watermark there is none.
import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import {
  assertNoPageErrors, createSession, joinAs, launchBrowser, startServer,
} from './support/harness.mjs';

let server;
let browser;
const pages = [];

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

afterEach(async () => {
  assertNoPageErrors(pages);
  for (const page of pages.splice(0)) await page.context().close();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function join(url, name) {
  const page = await joinAs(browser, url, name);
  pages.push(page);
  return page;
}

/** What the page's overlay looks like, and what a click in its middle lands on. */
const markOf = (page) => page.evaluate(() => {
  const mark = document.getElementById('viewer-mark');
  const style = getComputedStyle(mark);
  const box = mark.getBoundingClientRect();
  // Its padding box: the mark fills the monitor inside its border.
  const monitorEl = document.getElementById('monitor');
  const outer = monitorEl.getBoundingClientRect();
  const monitor = {
    left: outer.left + monitorEl.clientLeft,
    top: outer.top + monitorEl.clientTop,
    width: monitorEl.clientWidth,
    height: monitorEl.clientHeight,
  };
  const hit = document.elementFromPoint(box.left + box.width / 2, box.top + box.height / 2);
  return {
    shown: !mark.hidden && style.display !== 'none' && box.width > 0,
    tiles: [...mark.children].map((c) => c.textContent),
    markup: mark.querySelectorAll('*:not(span)').length,
    pointerEvents: style.pointerEvents,
    userSelect: style.userSelect,
    opacity: Number(style.color.match(/rgba\(.*,\s*([\d.]+)\)/)?.[1] ?? 1),
    overMonitor: Math.abs(box.left - monitor.left) < 1 && Math.abs(box.top - monitor.top) < 1
      && Math.abs(box.width - monitor.width) < 1 && Math.abs(box.height - monitor.height) < 1,
    clickLandsOnMark: mark.contains(hit),
  };
});

test("a watermarked session's page shows its own viewer's name over the picture, out of the way", async () => {
  const created = await createSession(server.base, { title: 'Shot 060', watermark: 'CONFIDENTIAL – {title}' });
  const viewer = await join(created.byRole.viewer.url, 'Vic Viewer');
  // A name is text, never markup.
  const host = await join(created.byRole.host.url, '<i>Hana</i>');
  for (const [page, name] of [[viewer, 'Vic Viewer'], [host, '<i>Hana</i>']]) {
    const session = await page.evaluate(() => window.syncreel.state().session);
    assert.equal(session.watermark, 'CONFIDENTIAL – Shot 060');
    const mark = await markOf(page);
    assert.equal(mark.shown, true, name);
    assert.ok(mark.tiles.length >= 9, `${mark.tiles.length} copies`);
    assert.ok(mark.tiles.every((t) => t === name), `${name}: ${mark.tiles}`);
    assert.equal(mark.markup, 0, 'no element but the copies');
    assert.equal(mark.overMonitor, true, 'it covers the picture');
    assert.ok(mark.opacity > 0 && mark.opacity <= 0.25, `subtle: alpha ${mark.opacity}`);
    // Not interactive: clicks go through to what is under it, and its
    // text is not selectable.
    assert.equal(mark.pointerEvents, 'none');
    assert.equal(mark.userSelect, 'none');
    assert.equal(mark.clickLandsOnMark, false);
  }
  // Each page shows only its own participant's name.
  assert.ok(!(await markOf(viewer)).tiles.includes('<i>Hana</i>'));
});

test('a session without a watermark shows no name over the picture', async () => {
  const created = await createSession(server.base, { title: 'Shot 061' });
  const viewer = await join(created.byRole.viewer.url, 'Vic Viewer');
  const session = await viewer.evaluate(() => window.syncreel.state().session);
  assert.equal(session.watermark, undefined);
  const mark = await markOf(viewer);
  assert.equal(mark.shown, false);
  assert.deepEqual(mark.tiles, []);
});
