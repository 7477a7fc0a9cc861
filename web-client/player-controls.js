// The player's own controls, beside the readouts: speed (the room's
// shuttle, so for the driver only), then what is this viewer's alone:
// zoom and pan, guides and masks, full screen, volume. Full screen takes
// the whole review (#app: picture, drawings, transport, notes), not the
// <video>, so that nothing a reviewer works with goes out of reach.

import { ASPECTS, MaskLayer, SAFE_AREAS } from './masks.js';
import { PictureZoom, zoomLabel } from './zoom.js';

/** The server's shuttle set (docs/protocol.md, `shuttle`), reverse first. */
export const SHUTTLE_SPEEDS = Object.freeze([-4, -3, -2, -1, 0.5, 1, 2, 3, 4]);

const VOLUME_KEY = 'syncreel.volume';

/** How a speed reads in the menu. */
export function speedLabel(speed) {
  const mag = Math.abs(speed) === 0.5 ? '½' : String(Math.abs(speed));
  return `${speed < 0 ? '−' : ''}${mag}×`;
}

/** The remembered volume (0..1), or 1 when there is none or it is not a volume. */
export function loadVolume(storage) {
  const raw = storage?.getItem(VOLUME_KEY);
  const v = raw == null ? NaN : Number(raw);
  return Number.isFinite(v) && v >= 0 && v <= 1 ? v : 1;
}

const el = (tag, props = {}, ...children) => {
  const node = Object.assign(document.createElement(tag), props);
  for (const [k, v] of Object.entries(props.attrs ?? {})) node.setAttribute(k, v);
  node.append(...children);
  return node;
};

export class PlayerControls {
  /**
   * `app` is what full screen shows; `monitor` the picture's box with its
   * `layers` (moved by zoom); `overlay` the drawing canvas's painter (it
   * paints through the zoomed rectangle); `drive(msg)` sends a driving
   * command; `transport()` the room's newest transport; `onUnmute()` tells
   * the page the sound is on; `notify(kind, text)` a toast.
   */
  constructor({
    app, monitor, layers, video, overlay, maskCanvas, container, sound, drive, transport, onUnmute = () => {},
    notify = () => {}, storage = globalThis.localStorage,
  }) {
    this.app = app;
    this.video = video;
    this.overlay = overlay;
    this.drive = drive;
    this.transport = transport;
    this.notify = notify;
    this.storage = storage;
    const source = () => overlay.source;
    this.zoom = new PictureZoom(monitor, layers, {
      source,
      onChange: () => this.repaint(),
      // A drag with a drawing tool armed is a stroke, not a pan.
      canPan: (ev) => !ev.target.closest?.('.draw-canvas.armed'),
    });
    overlay.setView(() => this.zoom.rect({ width: overlay.cssWidth, height: overlay.cssHeight }));
    this.masks = new MaskLayer(maskCanvas, () => this.zoom.rect(), source);

    this.speed = el('select', { id: 'speed', className: 'speed driving', title: 'Playback speed for the room (J / L step through it)' });
    this.speed.setAttribute('aria-label', 'Speed');
    this.speed.append(el('option', { value: '', disabled: true, textContent: 'Speed' }));
    for (const s of SHUTTLE_SPEEDS) this.speed.append(el('option', { value: String(s), textContent: speedLabel(s) }));
    this.speed.value = '';
    this.speed.addEventListener('change', () => {
      const speed = Number(this.speed.value);
      // The same command as the driver's J/L: the server checks the set.
      if (SHUTTLE_SPEEDS.includes(speed)) this.drive({ type: 'shuttle', speed });
      // Hand the keyboard back to the shortcuts (a select keeps Space).
      this.speed.blur();
    });
    // ui.js enables .driving controls on a change of seat; start as it stands.
    this.speed.disabled = document.body.dataset.driving !== 'true';

    const button = (id, text, title, onClick) => {
      const b = el('button', { id, type: 'button', className: 'btn small ghost', textContent: text, title });
      b.addEventListener('click', onClick);
      return b;
    };
    this.zoomOutButton = button('zoom-out', '−', 'Zoom out (-)', () => this.zoom.zoomOut());
    this.zoomOutButton.setAttribute('aria-label', 'Zoom out');
    this.zoomInButton = button('zoom-in', '+', 'Zoom in (+); Ctrl or ⌘ with the wheel zooms at the pointer, two fingers pinch on a touchscreen; drag to pan', () => this.zoom.zoomIn());
    this.zoomInButton.setAttribute('aria-label', 'Zoom in');
    this.zoomLevel = button('zoom-level', 'Fit', 'Fit the picture (0); click again for one picture pixel per screen pixel (1)', () => {
      if (this.zoom.zoomed) this.zoom.fitView();
      else this.zoom.actualPixels();
    });
    const zoomGroup = el('span', { className: 'player-group zoom-group', attrs: { role: 'group', 'aria-label': 'Zoom' } },
      this.zoomOutButton, this.zoomLevel, this.zoomInButton);

    const guides = el('details', { className: 'player-menu guides-menu' });
    const summary = el('summary', { className: 'btn small ghost', textContent: 'Guides', title: 'Safe areas and aspect masks, for your eyes only' });
    const panel = el('div', { className: 'player-menu-panel' });
    for (const area of SAFE_AREAS) {
      const box = el('input', { type: 'checkbox', id: `safe-${area.id}` });
      box.addEventListener('change', () => this.masks.setSafe(area.id, box.checked));
      panel.append(el('label', { className: 'check' }, box, ` ${area.label}`));
    }
    this.aspect = el('select', { id: 'aspect-mask' });
    this.aspect.append(el('option', { value: '', textContent: 'No mask' }));
    for (const a of ASPECTS) this.aspect.append(el('option', { value: a.id, textContent: a.label }));
    this.aspect.addEventListener('change', () => this.masks.setAspect(this.aspect.value || null));
    panel.append(el('label', { htmlFor: 'aspect-mask', textContent: 'Aspect mask' }), this.aspect);
    guides.append(summary, panel);
    guides.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Escape' || !guides.open) return;
      guides.open = false;
      summary.focus();
      ev.stopPropagation();
    });

    this.fullscreenButton = button('fullscreen', 'Full screen', 'Full screen: picture, drawings, transport and notes (F; Esc leaves)', () => this.toggleFullscreen());
    this.fullscreenButton.setAttribute('aria-label', 'Full screen');
    this.fullscreenButton.setAttribute('aria-pressed', 'false');
    this.fullscreenButton.hidden = !document.fullscreenEnabled;

    container.append(this.speed, zoomGroup, guides, this.fullscreenButton);

    this.volume = el('input', {
      id: 'volume', type: 'range', min: '0', max: '100', step: '5', className: 'volume',
      title: 'Volume (this browser remembers it)',
    });
    this.volume.setAttribute('aria-label', 'Volume');
    this.setVolume(loadVolume(storage), false);
    this.volume.addEventListener('input', () => {
      this.setVolume(Number(this.volume.value) / 100, true);
      // Raising the volume means wanting to hear it; the drag is the gesture browsers ask for.
      if (video.muted && video.volume > 0) {
        video.muted = false;
        video.play?.().catch(() => {});
        onUnmute();
      }
    });
    // The slider's own keys move the volume, not the playhead.
    this.volume.addEventListener('keydown', (ev) => {
      if (['ArrowLeft', 'ArrowRight', 'ArrowUp', 'ArrowDown', 'Home', 'End', 'PageUp', 'PageDown'].includes(ev.key)) ev.stopPropagation();
    });
    const volumeLabel = el('label', { htmlFor: 'volume', className: 'volume-label', textContent: 'Vol' });
    this.volumeGroup = el('span', { className: 'player-group volume-group' }, volumeLabel, this.volume);
    sound.after(this.volumeGroup);
    // The slider goes with the sound button (shown only when there is sound).
    const follow = () => { this.volumeGroup.hidden = sound.hidden; };
    new MutationObserver(follow).observe(sound, { attributes: true, attributeFilter: ['hidden'] });
    follow();

    this.toastsHome = null;
    document.addEventListener('fullscreenchange', () => this.fullscreenChanged());
    // Browsers take Esc for themselves in full screen; where one passes it on
    // (a headless one), it still leaves.
    document.addEventListener('keydown', (ev) => {
      if (ev.key === 'Escape' && document.fullscreenElement === this.app) document.exitFullscreen().catch(() => {});
    });
    this.tick = this.tick.bind(this);
    requestAnimationFrame(this.tick);
  }

  /** Key actions for keys.js. */
  get actions() {
    return {
      toggleFullscreen: () => this.toggleFullscreen(),
      zoomIn: () => this.zoom.zoomIn(),
      zoomOut: () => this.zoom.zoomOut(),
      zoomPixel: () => this.zoom.actualPixels(),
      zoomFit: () => this.zoom.fitView(),
    };
  }

  setVolume(v, remember) {
    this.video.volume = v;
    this.volume.value = String(Math.round(v * 100));
    this.volume.setAttribute('aria-valuetext', `${Math.round(v * 100)}%`);
    if (!remember) return;
    try {
      this.storage?.setItem(VOLUME_KEY, String(v));
    } catch {
      // Storage can be refused (private windows): the slider still works.
    }
  }

  toggleFullscreen() {
    if (document.fullscreenElement) {
      document.exitFullscreen().catch(() => {});
      return;
    }
    this.app.requestFullscreen({ navigationUI: 'hide' }).catch((err) => {
      this.notify('info', `This browser refused full screen (${err.message}).`);
    });
  }

  fullscreenChanged() {
    const on = document.fullscreenElement === this.app;
    this.fullscreenButton.setAttribute('aria-pressed', String(on));
    // Only the full-screen element is painted: the toasts go with it.
    const toasts = document.getElementById('toasts');
    if (toasts && on && toasts.parentNode !== this.app) {
      this.toastsHome = [toasts.parentNode, toasts.nextSibling];
      this.app.append(toasts);
    } else if (toasts && !on && this.toastsHome) {
      const [parent, next] = this.toastsHome;
      parent.insertBefore(toasts, next);
      this.toastsHome = null;
    }
  }

  repaint() {
    this.overlay.render();
    this.masks.render();
    const pixel = this.zoom.pixel();
    this.zoomLevel.textContent = zoomLabel(this.zoom.view.zoom, pixel);
    this.zoomLevel.setAttribute('aria-label', `Zoom ${this.zoomLevel.textContent}`);
  }

  /** Per animation frame: the speed menu follows the room; the view follows the monitor and the source. */
  tick() {
    const t = this.transport();
    const value = t?.playing && SHUTTLE_SPEEDS.includes(t.speed) ? String(t.speed) : '';
    if (this.speed.value !== value && document.activeElement !== this.speed) this.speed.value = value;
    this.zoom.follow();
    requestAnimationFrame(this.tick);
  }

  /** For tests: the view, the picture's rectangle, masks and volume. */
  snapshot() {
    return {
      view: { ...this.zoom.view },
      pixel: this.zoom.pixel(),
      rect: this.zoom.rect(),
      aspect: this.masks.aspect?.id ?? null,
      window: this.masks.window(),
      safe: [...this.masks.safe],
      volume: this.video.volume,
      fullscreen: document.fullscreenElement?.id ?? null,
    };
  }
}
