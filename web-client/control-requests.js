// A control request as the person who answers it meets it: a short tone
// (made with WebAudio, no sound file), a card that flashes with Grant and
// Deny at hand wherever the page is scrolled, and, while the tab is in
// the background, the tab's title. Plain DOM, no state of the room's own:
// `onControl` is told each `control` message after the room applied it.

const FLASH_MS = 2400;

/**
 * Plays a two-note chime of about 0.35 s on `ctx`. Quiet enough to sit
 * under the session's own sound.
 */
export function chime(ctx) {
  const t = ctx.currentTime;
  const osc = ctx.createOscillator();
  const gain = ctx.createGain();
  osc.type = 'sine';
  osc.frequency.setValueAtTime(880, t);
  osc.frequency.setValueAtTime(1320, t + 0.12);
  gain.gain.setValueAtTime(0.0001, t);
  gain.gain.exponentialRampToValueAtTime(0.2, t + 0.02);
  gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.35);
  osc.connect(gain);
  gain.connect(ctx.destination);
  osc.start(t);
  osc.stop(t + 0.4);
}

/** The tab title while a request waits unseen. */
export function alertTitle(names, title) {
  const who = names.length === 1 ? `${names[0]} asks` : `${names.join(', ')} ask`;
  return `✋ ${who} for control — ${title}`;
}

export class RequestAlert {
  /**
   * `muted()`: whether the person turned the page's sound off (then no
   * tone). `answer(type, participant)`: sends `grantControl` /
   * `denyControl`.
   */
  constructor({ doc = document, muted = () => false, answer, panel = null }) {
    this.doc = doc;
    this.muted = muted;
    this.answer = answer;
    this.panel = panel;
    this.known = new Set();
    this.ctx = null;
    this.savedTitle = null;
    this.card = null;
    this.flashTimer = null;
    doc.addEventListener('visibilitychange', () => {
      if (!doc.hidden) this.restoreTitle();
    });
  }

  /**
   * After a `control` message (or a welcome, snapshot or presence, with
   * `reason` null: nothing new is asked then, so nothing sounds; a name
   * that arrived since is shown).
   * `canAnswer`: this page is the driver or a host of the shared room.
   */
  onControl({ reason, requests, canAnswer, nameOf, you }) {
    const fresh = requests.filter((id) => !this.known.has(id) && id !== you);
    this.known = new Set(requests);
    const waiting = canAnswer ? requests.filter((id) => id !== you) : [];
    this.renderCard(waiting, nameOf);
    if (waiting.length === 0) {
      this.restoreTitle();
      return;
    }
    const asked = reason === 'requested' && fresh.length > 0;
    if (asked) {
      if (!this.muted()) this.sound();
      this.flash();
      if (this.doc.hidden) this.savedTitle ??= this.doc.title;
    }
    if (this.savedTitle != null) this.doc.title = alertTitle(waiting.map(nameOf), this.savedTitle);
  }

  sound() {
    const Ctx = globalThis.AudioContext ?? globalThis.webkitAudioContext;
    if (!Ctx) return;
    try {
      this.ctx ??= new Ctx();
      // Suspended until the page has had a gesture; a host has clicked by now.
      this.ctx.resume?.().catch(() => {});
      chime(this.ctx);
    } catch {
      // No audio device: the card and the title still tell.
    }
  }

  flash() {
    for (const node of [this.card, this.panel]) {
      if (!node) continue;
      node.classList.remove('request-flash');
      // Restarts the animation for a second request during the first.
      void node.offsetWidth;
      node.classList.add('request-flash');
    }
    clearTimeout(this.flashTimer);
    this.flashTimer = setTimeout(() => {
      for (const node of [this.card, this.panel]) node?.classList.remove('request-flash');
    }, FLASH_MS);
  }

  restoreTitle() {
    if (this.savedTitle == null) return;
    this.doc.title = this.savedTitle;
    this.savedTitle = null;
  }

  renderCard(waiting, nameOf) {
    if (waiting.length === 0) {
      this.card?.remove();
      this.card = null;
      return;
    }
    if (!this.card) {
      this.card = this.doc.createElement('div');
      this.card.id = 'request-alert';
      this.card.className = 'request-alert';
      this.card.setAttribute('role', 'alert');
      this.card.addEventListener('click', (ev) => {
        const button = ev.target.closest('button');
        if (!button) return;
        this.answer(button.dataset.answer, Number(button.dataset.id));
      });
      this.doc.body.append(this.card);
    }
    const rows = waiting.map((id) => {
      const row = this.doc.createElement('div');
      row.className = 'request-alert-row';
      const text = this.doc.createElement('span');
      text.textContent = `✋ ${nameOf(id)} asks for control`;
      row.append(text);
      for (const [answer, label, cls] of [['grantControl', 'Grant', 'grant'], ['denyControl', 'Deny', 'deny']]) {
        const button = this.doc.createElement('button');
        button.type = 'button';
        button.className = `btn ${cls}`;
        button.textContent = label;
        button.dataset.answer = answer;
        button.dataset.id = String(id);
        button.setAttribute('aria-label', `${label} control to ${nameOf(id)}`);
        row.append(button);
      }
      return row;
    });
    this.card.replaceChildren(...rows);
  }
}
