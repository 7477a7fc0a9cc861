// What sits on the picture. Readouts live in the bar under the monitor;
// the picture keeps only a small timecode badge and, when the stream
// fails, the media error. H (or the Overlay button) takes both off, for
// a clean look at the frame; the choice is this browser's and survives
// a reload. Drawings are review content, not readouts: they stay.

const OVERLAY_KEY = 'syncreel.overlay';

export class PictureOverlay {
  /** `monitor` gets the `clean` class while the overlay is off; `button` shows and flips it. */
  constructor(monitor, button, storage = globalThis.localStorage) {
    this.monitor = monitor;
    this.button = button;
    this.storage = storage;
    this.set(storage?.getItem(OVERLAY_KEY) !== 'off');
    button.addEventListener('click', () => this.toggle());
  }

  get on() {
    return !this.monitor.classList.contains('clean');
  }

  set(on) {
    this.monitor.classList.toggle('clean', !on);
    this.button.setAttribute('aria-pressed', String(on));
    this.button.title = `${on ? 'Hide' : 'Show'} what sits on the picture (H)`;
    try {
      this.storage?.setItem(OVERLAY_KEY, on ? 'on' : 'off');
    } catch {
      // Storage can be full or refused (private windows); the toggle still works.
    }
  }

  toggle() {
    this.set(!this.on);
  }
}
