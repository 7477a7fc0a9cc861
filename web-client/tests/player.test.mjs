// The player's basics in a real browser over the demo clip: full screen
// keeps the transport and the notes, volume is remembered, 1:1 is pixel
// for pixel and drawings stay on their picture point when zoomed, masks
// leave the right window, and the speed menu drives the room's shuttle.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
  assertNoPageErrors, createMediaSession, joinAs, launchBrowser, startDemoServer, until,
} from './support/harness.mjs';

const VIDEO_WAIT_MS = 20_000;
const LAPTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

let server;
let browser;

before(async () => {
  server = await startDemoServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function joinWatching(url, name, viewport = LAPTOP, hasTouch = false) {
  const page = await joinAs(browser, url, name, { viewport, hasTouch });
  await until(page, () => window.syncreel.video().state === 'playing', null, VIDEO_WAIT_MS);
  await until(page, () => document.getElementById('video').videoWidth > 0, null, VIDEO_WAIT_MS);
  return page;
}

/**
 * Where the browser shows the picture, measured from the video element
 * itself (its layout box, the transform zoom put on it, object-fit:
 * contain), not from the page's own idea of the view: page CSS px.
 */
function shownPicture(page) {
  return page.evaluate(() => {
    const v = document.getElementById('video');
    const r = v.getBoundingClientRect();
    const scale = r.width / v.offsetWidth;
    const fitScale = Math.min(v.offsetWidth / v.videoWidth, v.offsetHeight / v.videoHeight);
    const [fw, fh] = [v.videoWidth * fitScale, v.videoHeight * fitScale];
    return {
      x: r.x + ((v.offsetWidth - fw) / 2) * scale,
      y: r.y + ((v.offsetHeight - fh) / 2) * scale,
      width: fw * scale,
      height: fh * scale,
      videoWidth: v.videoWidth,
      videoHeight: v.videoHeight,
    };
  });
}

/** The most opaque pixel of canvas `id` within `r` CSS px of page point (x, y): its alpha. */
function alphaAt(page, id, [x, y], r = 2) {
  return page.evaluate(([canvasId, px, py, radius]) => {
    const canvas = document.getElementById(canvasId);
    const b = canvas.getBoundingClientRect();
    const dpr = canvas.width / b.width;
    const cx = Math.round((px - b.x) * dpr);
    const cy = Math.round((py - b.y) * dpr);
    const d = Math.ceil(radius * dpr);
    const data = canvas.getContext('2d').getImageData(cx - d, cy - d, 2 * d + 1, 2 * d + 1).data;
    let best = 0;
    for (let i = 3; i < data.length; i += 4) best = Math.max(best, data[i]);
    return best;
  }, [id, x, y, r]);
}

const at = (pic, [nx, ny]) => [pic.x + nx * pic.width, pic.y + ny * pic.height];

test('full screen is the whole review: the picture, the transport and the notes, usable; Esc leaves', async () => {
  const { byRole } = await createMediaSession(server.base, 'Player fullscreen');
  const host = await joinWatching(byRole.host.url, 'Host fullscreen');
  assert.equal(await host.evaluate(() => document.fullscreenElement), null);

  await host.keyboard.press('KeyF');
  await until(host, () => document.fullscreenElement?.id === 'app');
  const inside = await host.evaluate(() => {
    const fs = document.fullscreenElement;
    const seen = (id) => {
      const n = document.getElementById(id);
      const r = n.getBoundingClientRect();
      return fs.contains(n) && r.width > 0 && r.height > 0 && r.x >= 0 && r.y >= 0
        && r.right <= innerWidth + 0.5 && r.bottom <= innerHeight + 0.5;
    };
    return Object.fromEntries(['monitor', 'draw-canvas', 'play', 'step-fwd', 'scrubber', 'tc-input', 'note-input', 'tool-pen']
      .map((id) => [id, seen(id)]));
  });
  for (const [id, ok] of Object.entries(inside)) assert.ok(ok, `${id} is not in view inside the full-screen element`);
  assert.equal(await host.getAttribute('#fullscreen', 'aria-pressed'), 'true');

  // Usable, not only visible: the transport drives and a note goes in.
  await host.click('#play');
  await until(host, () => window.syncreel.state().transport.playing);
  await host.click('#play');
  await until(host, () => !window.syncreel.state().transport.playing);
  await host.fill('#note-input', 'Noted in full screen');
  await host.press('#note-input', 'Enter');
  await until(host, () => [...document.querySelectorAll('#notes > li[data-id]')].some((li) => li.textContent.includes('Noted in full screen')));
  assert.ok(await host.evaluate(() => document.fullscreenElement?.contains(document.getElementById('toasts'))), 'toasts would be hidden');
  const list = await host.evaluate(() => {
    const li = document.querySelector('#notes > li[data-id]');
    const r = li.getBoundingClientRect();
    return document.fullscreenElement.contains(li) && r.height > 0 && r.y >= 0 && r.bottom <= innerHeight;
  });
  assert.ok(list, 'the note list is not in view in full screen');

  await host.keyboard.press('Escape');
  await until(host, () => document.fullscreenElement == null);
  assert.equal(await host.getAttribute('#fullscreen', 'aria-pressed'), 'false');
  // The button does the same.
  await host.click('#fullscreen');
  await until(host, () => document.fullscreenElement?.id === 'app');
  await host.click('#fullscreen');
  await until(host, () => document.fullscreenElement == null);
  assertNoPageErrors([host]);
});

test('volume sets the video\'s volume, takes the keyboard without moving the playhead, and survives a reload', async () => {
  const { byRole } = await createMediaSession(server.base, 'Player volume');
  const host = await joinWatching(byRole.host.url, 'Host volume');
  assert.equal(await host.getAttribute('#volume', 'aria-label'), 'Volume');
  assert.equal(await host.evaluate(() => document.getElementById('video').volume), 1);
  await host.fill('#volume', '40');
  await until(host, () => Math.abs(document.getElementById('video').volume - 0.4) < 1e-6);
  // Raising the volume from the slider is asking to hear it.
  assert.equal(await host.evaluate(() => document.getElementById('video').muted), false);

  const frame = await host.evaluate(() => window.syncreel.displayed().frame);
  await host.focus('#volume');
  await host.keyboard.press('ArrowLeft');
  await until(host, () => Math.abs(document.getElementById('video').volume - 0.35) < 1e-6);
  assert.equal(await host.evaluate(() => window.syncreel.displayed().frame), frame, 'the arrow key stepped the room');

  await host.reload();
  if (await host.isVisible('#join-panel')) {
    await host.fill('#name', 'Host volume');
    await host.click('#join');
  }
  await until(host, () => window.syncreel?.state().connection === 'live');
  await until(host, () => document.getElementById('volume').value === '35');
  assert.ok(Math.abs(await host.evaluate(() => document.getElementById('video').volume) - 0.35) < 1e-6);
  assertNoPageErrors([host]);
});

test('1 is pixel for pixel, 0 fits, and a drawing stays on its picture point through zoom and pan', async () => {
  const { byRole } = await createMediaSession(server.base, 'Player zoom');
  const host = await joinWatching(byRole.host.url, 'Host zoom');
  await until(host, () => !window.syncreel.state().transport.playing && window.syncreel.overlay().frame != null);
  const fit = await shownPicture(host);

  // 1:1: one video pixel is one CSS px at devicePixelRatio 1.
  await host.locator('#monitor').click({ position: { x: 5, y: 5 } });
  await host.keyboard.press('Digit1');
  await until(host, () => document.getElementById('zoom-level').textContent === '1:1');
  const one = await shownPicture(host);
  assert.ok(Math.abs(one.width - one.videoWidth) < 0.5, `1:1 shows ${one.videoWidth} px as ${one.width}`);
  assert.ok(Math.abs(one.height - one.videoHeight) < 0.5, `1:1 shows ${one.videoHeight} px as ${one.height}`);
  await host.keyboard.press('Digit0');
  await until(host, () => document.getElementById('zoom-level').textContent === 'Fit');
  assert.deepEqual(await shownPicture(host), fit);

  // A short pen line at picture y 0.3, x 0.25 → 0.35.
  await host.click('#tool-pen');
  await until(host, () => window.syncreel.overlay().enabled);
  await host.mouse.move(...at(fit, [0.25, 0.3]));
  await host.mouse.down();
  for (let i = 1; i <= 10; i += 1) await host.mouse.move(...at(fit, [0.25 + i * 0.01, 0.3]));
  await host.mouse.up();
  await until(host, () => window.syncreel.overlay().shown.filter((s) => !s.pending).length === 1);
  const mark = [0.3, 0.3];
  assert.ok(await alphaAt(host, 'draw-canvas', at(fit, mark)) > 0, 'the line is not where it was drawn');
  // Put the pen down: a drag now pans.
  await host.click('#tool-pen');

  // Two steps in (2×) about the middle of the monitor.
  await host.keyboard.press('Equal');
  await host.keyboard.press('Equal');
  await until(host, () => document.getElementById('zoom-level').textContent === '200%');
  const zoomed = await shownPicture(host);
  assert.ok(Math.abs(zoomed.width - 2 * fit.width) < 0.5);
  assert.ok(await alphaAt(host, 'draw-canvas', at(zoomed, mark)) > 0, 'the line left its picture point when zoomed');
  // Where the mark was before, the zoomed picture shows another point: no ink.
  assert.equal(await alphaAt(host, 'draw-canvas', at(fit, mark)), 0, 'the line stayed put on the screen');

  // Drag to pan: the picture moves with the pointer, and the line with it.
  const from = at(zoomed, [0.5, 0.5]);
  await host.mouse.move(...from);
  await host.mouse.down();
  await host.mouse.move(from[0] + 60, from[1] + 40, { steps: 4 });
  await host.mouse.up();
  const panned = await shownPicture(host);
  assert.ok(Math.abs(panned.x - zoomed.x - 60) < 0.5 && Math.abs(panned.y - zoomed.y - 40) < 0.5,
    `the pan moved the picture by ${panned.x - zoomed.x}, ${panned.y - zoomed.y}`);
  assert.ok(await alphaAt(host, 'draw-canvas', at(panned, mark)) > 0, 'the line left its picture point when panned');

  // Ctrl + wheel zooms about the pointer: the picture point under it stays.
  const pointer = at(panned, [0.4, 0.45]);
  await host.mouse.move(...pointer);
  const zoomBefore = await host.evaluate(() => window.syncreel.player().view.zoom);
  await host.keyboard.down('Control');
  await host.mouse.wheel(0, -100);
  await host.keyboard.up('Control');
  await until(host, (w) => window.syncreel.player().view.zoom > w + 0.1, zoomBefore);
  const wheeled = await shownPicture(host);
  const [px, py] = at(wheeled, [0.4, 0.45]);
  assert.ok(Math.abs(px - pointer[0]) < 0.5 && Math.abs(py - pointer[1]) < 0.5, `the point under the pointer moved to ${px}, ${py}`);
  assert.ok(await alphaAt(host, 'draw-canvas', at(wheeled, mark)) > 0, 'the line left its picture point on a wheel zoom');

  // Local to this viewer: the room is where it was, and nobody else zoomed.
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer zoom');
  assert.deepEqual((await viewer.evaluate(() => window.syncreel.player().view)), { zoom: 1, cx: 0.5, cy: 0.5 });
  assert.deepEqual(await host.evaluate(() => window.syncreel.errors()), []);
  assertNoPageErrors([host, viewer]);
});

/** Two fingers from `from` to `to` (pairs of page points) in `steps`, as the touchscreen sends them. */
async function pinchGesture(page, from, to, steps = 8) {
  const cdp = await page.context().newCDPSession(page);
  const points = (t) => from.map(([x, y], i) => ({
    x: x + (to[i][0] - x) * t, y: y + (to[i][1] - y) * t, id: i, radiusX: 1, radiusY: 1, force: 1,
  }));
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: points(0) });
  for (let i = 1; i <= steps; i += 1) {
    await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: points(i / steps) });
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
}

test('on a touchscreen, two fingers spread zoom the picture about them and carry it with them; the room is untouched', async () => {
  const { byRole } = await createMediaSession(server.base, 'Player pinch');
  const phone = await joinWatching(byRole.reviewer.url, 'Reviewer pinch', PHONE, true);
  const before = await phone.evaluate(() => window.syncreel.state().transport);
  const fit = await shownPicture(phone);
  // Fingers 40 px either side of the picture's middle, spread to 80 px
  // and moved 10 px down together: twice the size, the middle under
  // their midpoint.
  const [cx, cy] = at(fit, [0.5, 0.5]);
  await pinchGesture(phone, [[cx - 40, cy], [cx + 40, cy]], [[cx - 80, cy + 10], [cx + 80, cy + 10]]);
  await until(phone, () => document.getElementById('zoom-level').textContent === '200%');
  const pinched = await shownPicture(phone);
  assert.ok(Math.abs(pinched.width - 2 * fit.width) < 1, `the pinch made the picture ${pinched.width} px wide`);
  const [mx, my] = at(pinched, [0.5, 0.5]);
  assert.ok(Math.abs(mx - cx) < 1 && Math.abs(my - (cy + 10)) < 1, `the picture's middle went to ${mx}, ${my}`);
  assert.deepEqual(await phone.evaluate(() => window.syncreel.state().transport), before, 'a pinch is this viewer\'s alone');
  assertNoPageErrors([phone]);
});

/** The open window the mask canvas leaves on the picture, measured across its middle row and column (CSS px). */
function maskWindow(page, pic) {
  return page.evaluate((p) => {
    const canvas = document.getElementById('mask-layer');
    const b = canvas.getBoundingClientRect();
    const dpr = canvas.width / b.width;
    const ctx = canvas.getContext('2d');
    const run = (x0, y0, dx, dy, n) => {
      // The longest stretch of clear pixels along the line, in device px.
      const data = ctx.getImageData(Math.round(x0), Math.round(y0), dx ? n : 1, dy ? n : 1).data;
      let best = 0;
      let cur = 0;
      for (let i = 0; i < n; i += 1) {
        cur = data[i * 4 + 3] === 0 ? cur + 1 : 0;
        best = Math.max(best, cur);
      }
      return best;
    };
    const left = (p.x - b.x) * dpr;
    const top = (p.y - b.y) * dpr;
    const [w, h] = [Math.floor(p.width * dpr), Math.floor(p.height * dpr)];
    return {
      width: run(left, top + h / 2, 1, 0, w) / dpr,
      height: run(left + w / 2, top, 0, 1, h) / dpr,
    };
  }, pic);
}

test('aspect masks leave a window of their aspect; guides and masks are off until asked for and only for this viewer', async () => {
  const { byRole } = await createMediaSession(server.base, 'Player masks');
  const host = await joinWatching(byRole.host.url, 'Host masks');
  assert.equal(await host.isHidden('#mask-layer'), true, 'a mask shows by default');
  const pic = await shownPicture(host);

  await host.click('.guides-menu > summary');
  for (const [id, ratio] of [['2.39', 2.39], ['1.85', 1.85], ['4:3', 4 / 3]]) {
    await host.selectOption('#aspect-mask', id);
    await until(host, () => !document.getElementById('mask-layer').hidden);
    const win = await maskWindow(host, pic);
    const got = win.width / win.height;
    assert.ok(Math.abs(got - ratio) / ratio < 0.01, `${id}: the window is ${win.width}×${win.height} (${got.toFixed(3)})`);
  }
  // Safe areas: a guide line at 80% of the window's width from the left edge of the title-safe box.
  await host.selectOption('#aspect-mask', '');
  await host.check('#safe-title');
  await until(host, () => !document.getElementById('mask-layer').hidden);
  const titleLeft = pic.x + pic.width * 0.1;
  assert.ok(await alphaAt(host, 'mask-layer', [titleLeft, pic.y + pic.height / 2 + 3], 2) > 0, 'no title-safe line at 10%');
  assert.equal(await alphaAt(host, 'mask-layer', [pic.x + pic.width * 0.3, pic.y + pic.height / 2], 2), 0, 'a guide covers the picture');
  await host.uncheck('#safe-title');
  await until(host, () => document.getElementById('mask-layer').hidden);

  const viewer = await joinWatching(byRole.viewer.url, 'Viewer masks');
  assert.equal(await viewer.isHidden('#mask-layer'), true, 'a mask reached another viewer');
  assertNoPageErrors([host, viewer]);
});

test('the speed menu sends the shuttle the driver\'s J / L would, the room plays at that rate, and viewers cannot use it', async () => {
  const { byRole } = await createMediaSession(server.base, 'Player speed');
  const host = await joinWatching(byRole.host.url, 'Host speed');
  const viewer = await joinWatching(byRole.viewer.url, 'Viewer speed');
  const phone = await joinWatching(byRole.viewer.url, 'Phone speed', PHONE);
  const options = await host.evaluate(() => [...document.querySelectorAll('#speed option')].filter((o) => !o.disabled).map((o) => Number(o.value)));
  assert.deepEqual(options, [-4, -3, -2, -1, 0.5, 1, 2, 3, 4]);

  // From the middle of the clip, so that no rate runs into an end while it is checked.
  await host.evaluate(() => window.syncreel.drive({ type: 'seek', frame: 1400 }));
  await until(host, () => window.syncreel.displayed()?.frame === 1400);
  for (const speed of [2, -1, 0.5]) {
    await host.selectOption('#speed', String(speed));
    for (const page of [host, viewer]) {
      await until(page, (s) => {
        const t = window.syncreel.state().transport;
        return t.playing && t.speed === s;
      }, speed);
    }
    // Handed back to the shortcuts, and showing the room's rate.
    assert.notEqual(await host.evaluate(() => document.activeElement?.id), 'speed', 'the menu keeps the keyboard');
    await until(host, (s) => document.getElementById('speed').value === String(s), speed);
  }
  await host.keyboard.press('KeyK');
  await until(host, () => !window.syncreel.state().transport.playing);
  await until(host, () => document.getElementById('speed').value === '');

  assert.equal(await viewer.isDisabled('#speed'), true, 'a viewer can use the speed menu');
  assert.equal(await phone.isVisible('#speed'), false, 'a phone viewer sees the speed menu');
  const wide = await phone.evaluate(() => document.scrollingElement.scrollWidth <= innerWidth);
  assert.ok(wide, 'the phone page scrolls sideways');
  assert.deepEqual(await host.evaluate(() => window.syncreel.errors()), []);
  assertNoPageErrors([host, viewer, phone]);
});
