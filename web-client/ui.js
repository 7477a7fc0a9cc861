// The DOM: builds nothing the page did not declare except list rows, and
// never decides anything. main.js tells it what the room looks like; it
// tells main.js what the user clicked. Names come from other people, so
// they only ever reach the page through textContent.

import { colourLabel, colourTitle } from './colour.js';
import { STATUS_LABEL, receiptParts, versionLabel } from './approvals.js';
import { describe } from './messages.js';
import { personSync, syncDetails } from './states.js';

const $ = (id) => document.getElementById(id);

const ROLE_ORDER = { host: 0, reviewer: 1, viewer: 2 };
// A host in a huge room sees every viewer; drawing thousands of rows every
// presence flush would cost more than the list is worth.
const MAX_PRESENCE_ROWS = 200;
const TOAST_MS = 6000;
const MAX_TOASTS = 4;
// Copies of the viewer's name over the picture: enough that no crop of a
// capture leaves it out, few enough to read past (3 across, 4 down).
const VIEWER_MARK_TILES = 12;

const ms = (us) => (us == null ? '—' : (us / 1000).toFixed(us < 10_000 ? 1 : 0));

/**
 * 23.976 rather than 24000/1001: people read rates in decimals. This is a
 * label only; media time never goes through it.
 */
export function fpsLabel(session) {
  const decimal = (session.fpsNum / session.fpsDen).toFixed(3).replace(/\.?0+$/, '');
  return decimal + (session.dropFrame ? ' DF' : '');
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

export class Ui {
  constructor() {
    this.scrubbing = false;
    this.shownFrame = null;
    this.shownLabel = null;
    this.drivingEnabled = null;
    this.frameEl = $('frame');
    this.timecodeEl = $('timecode');
    this.badgeEl = $('picture-badge');
    this.scrubber = $('scrubber');
  }

  showNoLink() {
    $('no-link').hidden = false;
  }

  /** Asks for a name; `onJoin(name)` fires on submit (the latest caller's, once per asking). */
  showJoin(defaultName, onJoin) {
    const form = $('join-form');
    const input = $('name');
    input.value = defaultName ?? '';
    this.onJoin = onJoin;
    $('join-panel').hidden = false;
    input.focus();
    input.select();
    if (this.joinBound) return;
    this.joinBound = true;
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      const name = input.value.trim();
      if (!name || !this.onJoin) return;
      $('join-panel').hidden = true;
      const answer = this.onJoin;
      this.onJoin = null;
      answer(name);
    });
  }

  /**
   * Asks for the link's passcode, saying why (`error`: the refusal of the
   * last one, or null the first time); `onSubmit(passcode)` fires once,
   * on the next submit.
   */
  showPasscode(error, onSubmit) {
    const input = $('passcode');
    const problem = $('passcode-error');
    problem.hidden = !error;
    problem.textContent = error ?? '';
    input.setAttribute('aria-invalid', error ? 'true' : 'false');
    input.value = '';
    $('passcode-panel').hidden = false;
    input.focus();
    $('passcode-form').onsubmit = (ev) => {
      ev.preventDefault();
      const passcode = input.value.trim();
      if (!passcode) return;
      $('passcode-form').onsubmit = (e) => e.preventDefault();
      $('passcode-panel').hidden = true;
      onSubmit(passcode);
    };
  }

  /** The name this page joined under, in the top bar: a click offers to change it. */
  showYou(name) {
    const you = $('you');
    you.hidden = false;
    you.textContent = name;
  }

  showApp() {
    $('app').hidden = false;
    $('leave').hidden = false;
  }

  /** `code` is the refusal's typed code when `state` is error. */
  setConnection(state, detail, code) {
    const conn = $('conn');
    conn.dataset.state = state;
    conn.textContent = state;
    conn.title = detail || '';
    $('retry').hidden = state !== 'error';
    // Errors here are refusals that retrying alone will not fix (a revoked
    // link, a full room), so they get the whole screen rather than a pill.
    $('fatal').hidden = state !== 'error';
    const fatal = $('fatal-message');
    if (state !== 'error') return;
    const said = code ? describe(code, detail) : { text: detail || 'The server refused this connection.', next: '' };
    fatal.textContent = said.next ? `${said.text} ${said.next}` : said.text;
    fatal.dataset.code = code ?? '';
    fatal.title = code ? `${code}: ${detail}` : '';
  }

  renderSession(room) {
    const s = room.session;
    $('title').textContent = s.title;
    document.title = `${s.title} · SyncReel`;
    $('fps').textContent = fpsLabel(s);
    $('fps').parentElement.title = `${s.fps} frames per second${s.dropFrame ? ', drop-frame timecode' : ''}`;
    $('role').textContent = room.role;
    // The layout drops what this seat cannot use (style.css, narrow screens).
    document.body.dataset.role = room.role;
    $('duration').textContent = String(s.durationFrames);
    this.scrubber.max = String(s.durationFrames - 1);
    this.renderViewerMark(room);
  }

  /**
   * A watermarked session's page lays its own participant's name (as the
   * welcome has it) over the picture, faint and repeated, so that a
   * screen capture says whose screen it was; the server burns the
   * session's watermark into the picture itself. Decoration only: it
   * takes no pointer and no selection (style.css).
   */
  renderViewerMark(room) {
    const mark = $('viewer-mark');
    const name = room.session?.watermark ? room.nameOf(room.you) : null;
    mark.hidden = !name;
    if (mark.dataset.name === (name ?? '')) return;
    mark.dataset.name = name ?? '';
    const tiles = name ? Array.from({ length: VIEWER_MARK_TILES }, () => el('span', { textContent: name })) : [];
    mark.replaceChildren(...tiles);
  }

  /**
   * A playlist session's entries, the one on screen marked; the driver
   * cues another with its button. Hidden for a session of one file.
   */
  renderPlaylist(room) {
    const entries = room.playlist ?? [];
    $('playlist-panel').hidden = entries.length < 2;
    if (entries.length < 2) return;
    $('playlist-count').textContent = `${room.entry + 1} of ${entries.length}`;
    const driving = room.isDriver();
    $('playlist').replaceChildren(...entries.map((e, i) => {
      const [num, den = 1] = e.fps.split('/').map(Number);
      const rate = fpsLabel({ fpsNum: num, fpsDen: den, dropFrame: e.dropFrame });
      const current = i === room.entry;
      const cue = el('button', {
        className: 'btn cue', type: 'button', disabled: current || !driving, textContent: current ? 'On screen' : 'Cue',
        title: driving
          ? 'Move the whole room to this entry, paused: another version of this shot at the same timecode, another shot at its first frame'
          : 'Only the driver cues the room',
      });
      cue.dataset.entry = String(i);
      const li = el('li', { className: current ? 'current' : '' },
        el('span', { className: 'entry-name' }, versionLabel(e.version)),
        el('span', { className: 'dim entry-detail' }, `${e.startTimecode} · ${e.durationFrames} f · ${rate} fps`),
        cue);
      if (current) li.setAttribute('aria-current', 'true');
      return li;
    }));
    $('playlist-hint').textContent = driving ? '' : 'The driver moves the room between entries.';
  }

  /** Hosts keep the record: exports, and ending the live review. */
  renderRecordPanel(room, endedAt) {
    $('record-panel').hidden = room.role !== 'host';
    $('playlist-exports').hidden = room.playlist.length < 2;
    $('end-review').hidden = endedAt != null;
  }

  /** Says, until the page goes, that the live review is over and what that means here. */
  showEnded(endedAt, roomKind, role) {
    const banner = $('ended-banner');
    banner.hidden = endedAt == null;
    if (endedAt == null) return;
    const at = new Date(endedAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    banner.dataset.room = roomKind;
    // A viewer adds nothing to the record, so is not told that it would.
    const adds = role === 'viewer'
      ? 'you see every note, drawing and decision as it is made.'
      : 'your notes, drawings and approvals still reach the record.';
    banner.textContent = roomKind === 'personal'
      ? `The live review ended at ${at}. You are reviewing on your own: playback here moves nobody else; ${adds}`
      : `The live review ended at ${at}. Reload to carry on reviewing on your own: your playback will then move nobody else.`;
  }

  /** The host's end button: a first click arms it, a second within a few seconds ends the review. */
  armEndReview(armed) {
    const button = $('end-review');
    button.dataset.armed = armed ? 'true' : '';
    button.textContent = armed ? 'Click again to end it for everyone' : 'End the live review';
  }

  /**
   * A look of one's own at `frame` (labelled `timecode`) while the room
   * plays on, over `stillUrl` when there is a picture; `frame` null ends it.
   */
  showPeek(frame, timecode, stillUrl) {
    const still = $('peek-still');
    $('peek-bar').hidden = frame == null;
    still.hidden = frame == null || !stillUrl;
    if (frame == null) {
      still.removeAttribute('src');
      return;
    }
    if (stillUrl && still.getAttribute('src') !== stillUrl) still.src = stillUrl;
    $('peek-label').textContent = `Your own look: ${timecode} (frame ${frame}); the room plays on`;
  }

  setRecordStatus(text) {
    $('record-status').textContent = text;
  }

  renderControl(room) {
    const { driver, requests } = room.control;
    const status = $('control-status');
    status.replaceChildren();
    if (driver == null) {
      status.append('Nobody is driving');
    } else if (driver === room.you) {
      status.append(el('strong', { id: 'driver' }, 'You'), ' are driving');
    } else {
      status.append('Driving: ', el('strong', { id: 'driver' }, room.nameOf(driver)));
    }
    status.dataset.driver = driver == null ? '' : String(driver);

    const isDriver = room.isDriver();
    const request = $('request-control');
    request.hidden = !(room.role === 'reviewer' && !isDriver) || room.hasRequested();
    $('withdraw-control').hidden = !room.hasRequested();
    $('take-control').hidden = !(room.role === 'host' && !isDriver);
    $('release-control').hidden = !isDriver;

    const list = $('requests');
    list.replaceChildren();
    const canAnswer = isDriver || room.role === 'host';
    for (const id of requests) {
      const who = el('span', {}, room.nameOf(id), el('span', { className: 'dim' }, ' asks for control'));
      const row = el('li', {}, who);
      row.dataset.id = String(id);
      if (canAnswer) {
        row.append(
          el('button', { id: `grant-${id}`, className: 'btn small grant', textContent: 'Grant' }),
          el('button', { id: `deny-${id}`, className: 'btn small deny', textContent: 'Deny' }),
        );
      }
      list.append(row);
    }
    this.setDriving(isDriver);
  }

  /** Greys out what only the driver may use; the display keeps running. */
  setDriving(enabled) {
    if (this.drivingEnabled === enabled) return;
    this.drivingEnabled = enabled;
    document.body.dataset.driving = String(enabled);
    for (const node of document.querySelectorAll('.driving')) node.disabled = !enabled;
    this.scrubber.disabled = !enabled;
  }

  /** Shows the video area when the session has media (`media` non-null). */
  setMedia(media) {
    const on = media != null;
    $('monitor').classList.toggle('has-video', on);
    $('video').hidden = !on;
    $('video-readout').hidden = !on;
    $('sound').hidden = !(on && media.hasAudio);
    if (!on) this.showMediaError(null);
  }

  /** Shows whether the session's sound is heard. */
  setSound(on) {
    const node = $('sound');
    node.setAttribute('aria-pressed', String(on));
    node.textContent = on ? 'Sound on' : 'Sound off';
  }

  setVideoState(state, detail) {
    const node = $('play-state');
    node.dataset.video = state;
    node.title = detail ? `Video ${state}: ${detail}` : `Video ${state}`;
  }

  showMediaError(message) {
    const node = $('media-error');
    node.hidden = message == null;
    node.textContent = message ?? '';
  }

  /** The frame the video shows; called per video frame, touches the DOM on change. */
  showVideoFrame(frame, label, offset) {
    const text = `${label}|${frame}|${offset}`;
    if (text === this.shownVideo) return;
    this.shownVideo = text;
    $('video-timecode').textContent = label;
    $('video-frame').textContent = `#${frame}`;
    $('video-offset').textContent = offset;
  }

  /**
   * `offset(p)` gives a participant's video offset ({frames, label}, e.g.
   * {frames: 1, label: "+1 f / 38 ms"}) or null; `spread` is the room's
   * latency spread ({spreadUs, count}) for hosts. Each row says in a
   * word whether that person sees what the room sees; the figures are
   * in its title.
   */
  renderPresence(room, sync, offset = () => null, spread = undefined) {
    const rows = [...room.participants.values()].sort(
      (a, b) => ROLE_ORDER[a.role] - ROLE_ORDER[b.role] || a.name.localeCompare(b.name) || a.id - b.id,
    );
    const body = $('presence');
    body.replaceChildren();
    for (const p of rows.slice(0, MAX_PRESENCE_ROWS)) {
      const name = el('td', { title: p.connected ? 'connected' : 'disconnected' }, p.name);
      if (p.id === room.control.driver) name.append(el('span', { className: 'driver-mark', title: 'driving' }, '●'));
      const o = offset(p);
      const { status, word } = personSync(p, o?.frames ?? null);
      const cell = el('td', { className: 'sync-col', title: syncDetails(p, o?.label) },
        el('span', { className: 'sync-dot', ariaHidden: 'true' }), word);
      cell.dataset.sync = status;
      cell.dataset.video = o?.label ?? '';
      const tr = el('tr', {}, name, el('td', {}, p.role), cell);
      tr.dataset.id = String(p.id);
      tr.dataset.connected = String(p.connected);
      if (!p.connected) tr.className = 'away';
      if (p.id === room.you) tr.classList.add('me');
      body.append(tr);
    }
    if (rows.length > MAX_PRESENCE_ROWS) {
      body.append(el('tr', {}, el('td', { colSpan: 3, className: 'dim' }, `and ${rows.length - MAX_PRESENCE_ROWS} more`)));
    }
    const c = room.counts;
    $('counts').textContent = `· ${c.hosts} host${c.hosts === 1 ? '' : 's'}, ${c.reviewers} reviewer${c.reviewers === 1 ? '' : 's'}, ${c.viewers} viewer${c.viewers === 1 ? '' : 's'}`;
    this.renderSync(sync);
    const spreadEl = $('sync-spread');
    spreadEl.hidden = spread === undefined;
    if (spread !== undefined) {
      spreadEl.textContent = spread == null
        ? 'Sync spread: — (needs two people watching video)'
        : `Sync spread: ${ms(spread.spreadUs)} ms across ${spread.count} watching`;
      spreadEl.dataset.spreadUs = spread == null ? '' : String(spread.spreadUs);
    }
  }

  renderSync(sync) {
    $('sync').textContent = sync.uncertaintyUs == null
      ? 'Clock: syncing…'
      : `Clock: rtt ${ms(sync.rttUs)} ms · ±${ms(sync.uncertaintyUs)} ms`;
  }

  /**
   * The picture's one state (states.js), in the readout bar, and on the
   * monitor's frame so that a dropped connection is seen at a glance.
   * Called every animation frame; touches the DOM on change.
   */
  showPictureState({ state, label }) {
    if (state === this.pictureState && label === this.pictureLabel) return;
    this.pictureState = state;
    this.pictureLabel = label;
    const node = $('play-state');
    node.dataset.state = state;
    node.textContent = label;
    $('monitor').dataset.state = state;
  }

  /** The mode line's loop marks, the play glyph and the loop band. */
  renderTransport(t, room) {
    $('play').textContent = t.playing ? '❚❚' : '▶';
    const hasIn = t.loopIn != null;
    const hasOut = t.loopOut != null;
    const fmt = (f) => room.format.label(f);
    $('loop-info').textContent = hasIn || hasOut
      ? `LOOP ${hasIn ? fmt(t.loopIn) : '—'} → ${hasOut ? fmt(t.loopOut) : '—'}`
      : '';
    const band = $('loop-band');
    const last = Math.max(1, room.session.durationFrames - 1);
    if (hasIn && hasOut && t.loopIn <= t.loopOut) {
      band.hidden = false;
      band.style.left = `${(t.loopIn / last) * 100}%`;
      band.style.width = `${Math.max(0.2, ((t.loopOut - t.loopIn) / last) * 100)}%`;
    } else {
      band.hidden = true;
    }
  }

  /** Called every animation frame; touches the DOM only on change. */
  showFrame(frame, label) {
    if (frame !== this.shownFrame) {
      this.shownFrame = frame;
      this.frameEl.textContent = String(frame);
      if (!this.scrubbing) this.scrubber.value = String(frame);
    }
    if (label !== this.shownLabel) {
      this.shownLabel = label;
      this.timecodeEl.textContent = label;
      this.badgeEl.textContent = label;
    }
  }

  /**
   * "Go to" refused: the reason under the field, which keeps the keyboard
   * with the bad value selected, ready to be typed over. null clears it.
   */
  refuseGoto(reason) {
    const input = $('tc-input');
    const error = $('tc-error');
    error.hidden = reason == null;
    error.textContent = reason ?? '';
    if (reason == null) {
      input.removeAttribute('aria-invalid');
      return;
    }
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    input.select();
  }

  /** The range the next note will span (both marks), or what is marked so far, in the note box. */
  showNoteRange(marks, label) {
    const chip = $('note-range');
    const both = marks.in != null && marks.out != null;
    chip.hidden = marks.in == null && marks.out == null;
    $('note-range-text').textContent = chip.hidden ? '' : `${both ? 'Range' : 'Marked'} ${marks.in != null ? label(marks.in) : '—'} → ${marks.out != null ? label(marks.out) : '—'}`;
    $('note-input').placeholder = both ? 'Note on the marked range…' : 'Note at the frame you see…';
  }

  /** The note box is for hosts and reviewers; everyone sees the list. */
  setNoteAuthoring(canWrite) {
    $('note-form').hidden = !canWrite;
  }

  /**
   * The notes list, with replies under their note (the timeline draws
   * their markers). `threads` are the room's notes ([{note, replies}],
   * by frame), `pending` this author's unacknowledged notes, replies and
   * resolves, `label(frame)` the session's timecode, `selected` a note id
   * or null, `canWrite` whether to offer Reply and Resolve, `replyingTo`
   * the note whose reply box is open (or null).
   */
  renderNotes({ threads, pending, label, selected, canWrite, replyingTo }) {
    const list = $('notes');
    // A reply being typed survives the list being redrawn under it.
    const typing = $('reply-input');
    const draft = typing && Number(typing.dataset.note) === replyingTo && {
      value: typing.value, focused: document.activeElement === typing,
      start: typing.selectionStart, end: typing.selectionEnd,
    };
    list.replaceChildren();
    const span = (n) => label(n.frame) + (n.frameOut != null && n.frameOut !== n.frame ? ` → ${label(n.frameOut)}` : '');
    const queuedReplies = new Map();
    const queuedResolves = new Map();
    for (const m of pending) {
      if (m.type === 'reply') {
        if (!queuedReplies.has(m.parent)) queuedReplies.set(m.parent, []);
        queuedReplies.get(m.parent).push(m);
      } else if (m.type === 'resolve') {
        queuedResolves.set(m.note, m.resolved);
      }
    }
    const rows = [
      ...threads.map((t) => ({ n: t.note, replies: t.replies, pending: false })),
      ...pending.filter((m) => m.type === 'note').map((n) => ({ n, replies: [], pending: true })),
    ].sort((a, b) => a.n.frame - b.n.frame || Number(a.pending) - Number(b.pending));
    let open = 0;
    let replyInput = null;
    for (const { n, replies, pending: queued } of rows) {
      const row = el('li', { title: queued ? 'Not stored yet: sent again once connected' : `Frame ${n.frame}` },
        el('span', { className: 'note-tc' }, span(n)),
        el('span', { className: 'note-author' }, queued ? 'sending…' : `${n.author} · ${n.authorRole}`),
        el('span', { className: 'note-text' }, n.text),
      );
      row.dataset.frame = String(n.frame);
      if (queued) {
        row.className = 'pending';
        row.dataset.key = n.key;
        list.append(row);
        continue;
      }
      row.dataset.id = String(n.id);
      const wish = queuedResolves.get(n.id);
      const resolved = wish ?? n.resolvedAt != null;
      if (!resolved) open += 1;
      if (n.id === selected) row.classList.add('selected');
      if (resolved) row.classList.add('resolved');
      if (wish !== undefined) {
        row.append(el('span', { className: 'note-state' }, wish ? 'resolving…' : 'reopening…'));
      } else if (n.resolvedAt != null) {
        row.append(el('span', { className: 'note-state', title: new Date(n.resolvedAt).toLocaleString() },
          `resolved by ${n.resolvedBy ?? 'someone'}`));
      }
      const answers = [
        ...replies.map((r) => ({ r, queued: false })),
        ...(queuedReplies.get(n.id) ?? []).map((r) => ({ r, queued: true })),
      ];
      if (answers.length) {
        const thread = el('ul', { className: 'replies' });
        for (const { r, queued: q } of answers) {
          const item = el('li', { className: q ? 'reply pending' : 'reply' },
            el('span', { className: 'reply-author' }, q ? 'sending…' : `${r.author} · ${r.authorRole}`),
            el('span', { className: 'reply-text' }, r.text),
          );
          if (q) item.dataset.key = r.key;
          else item.dataset.replyId = String(r.id);
          thread.append(item);
        }
        row.append(thread);
      }
      if (canWrite) {
        row.append(el('div', { className: 'note-actions' },
          this.action('reply', 'Reply', 'Answer this note'),
          resolved
            ? this.action('reopen', 'Reopen', 'Mark this note as not yet done')
            : this.action('resolve', 'Resolve', 'Mark this note as done'),
        ));
        if (replyingTo === n.id) {
          const input = el('input', {
            id: 'reply-input', className: 'reply-input', maxLength: 4000, autocomplete: 'off', spellcheck: true,
            placeholder: `Reply to ${n.author}…`,
          });
          input.setAttribute('aria-label', 'Reply text');
          input.dataset.note = String(n.id);
          row.append(el('form', { id: 'reply-form', className: 'reply-form' }, input,
            el('button', { className: 'btn small', type: 'submit', textContent: 'Send' })));
          if (draft) input.value = draft.value;
          replyInput = input;
        }
      }
      list.append(row);
    }
    // Focus only takes once the box is in the document. A box just opened
    // takes the keyboard; one redrawn keeps it only if it had it.
    if (replyInput && (!draft || draft.focused)) {
      replyInput.focus({ preventScroll: Boolean(draft) });
      if (draft) replyInput.setSelectionRange(draft.start, draft.end);
    }
    const total = threads.length;
    $('notes-count').textContent = !total ? '' : open === total ? `· ${total}` : `· ${open} open of ${total}`;
    $('notes-empty').hidden = rows.length > 0;
  }

  action(name, text, title) {
    const button = el('button', { className: 'btn small ghost', type: 'button', textContent: text, title });
    button.dataset.action = name;
    return button;
  }

  /** The source's colour description in the header (hidden when the file states none). */
  setColour(colour, proxy) {
    const chip = $('colour');
    chip.textContent = colourLabel(colour);
    chip.title = colourTitle(colour, proxy);
    chip.hidden = chip.textContent === '';
  }

  /** The version under review in the header and the approval panel (null: none). */
  setVersion(version) {
    const chip = $('version');
    chip.hidden = version == null;
    chip.textContent = versionLabel(version);
    chip.title = version ? `The version under review · sha256 ${version.checksum}` : '';
    $('approval-panel').hidden = version == null;
    $('approval-version').textContent = version ? `· ${versionLabel(version)}` : '';
  }

  /**
   * Where the room stands on the version: each author's standing decision
   * (newest first) with its receipt. `mine` is this person's standing
   * status, `sending` the status of their decision still in the outbox.
   */
  renderApprovals({ decisions, canApprove, mine, sending, label }) {
    $('approval-actions').hidden = !canApprove;
    for (const id of ['approve', 'request-changes']) {
      const button = $(id);
      const status = button.dataset.status;
      button.setAttribute('aria-pressed', String((sending ?? mine) === status));
      button.classList.toggle('sending', sending === status);
    }
    const list = $('decisions');
    list.replaceChildren();
    for (const a of decisions) {
      const r = receiptParts(a.receipt, label);
      const receipt = el('div', { className: 'receipt' }, el('span', { className: 'receipt-seen' }, r.seen));
      if (r.ranges) receipt.append(el('span', { className: 'receipt-ranges' }, r.ranges));
      if (r.stream) receipt.append(el('span', { className: 'receipt-stream' }, r.stream));
      if (r.checksum) {
        receipt.append(el('span', { className: 'receipt-checksum', title: `sha256 ${a.receipt.checksum}` }, `sha256 ${r.checksum}`));
      }
      const when = new Date(a.createdAt);
      const row = el('li', { className: 'decision' },
        el('div', { className: 'decision-head' },
          el('span', { className: 'decision-status' }, STATUS_LABEL[a.status] ?? a.status),
          el('span', { className: 'decision-who' }, `${a.author} · ${a.authorRole}`),
          el('time', {
            className: 'decision-when', dateTime: when.toISOString(), title: when.toLocaleString(),
          }, when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }))),
        receipt,
      );
      row.dataset.id = String(a.id);
      row.dataset.status = a.status;
      row.dataset.author = a.author;
      list.append(row);
    }
    $('decisions-empty').hidden = decisions.length > 0;
  }

  /**
   * The drawing tools: which is armed, the colour, and whether they work
   * now; `reason` says why not (or what to do). Touches the DOM on change.
   */
  setDrawTools({ tool, colour, enabled, reason }) {
    const key = `${tool}|${colour}|${enabled}|${reason}`;
    if (key === this.drawKey) return;
    this.drawKey = key;
    for (const button of document.querySelectorAll('#draw-bar .tool')) {
      button.disabled = !enabled;
      button.setAttribute('aria-pressed', String(button.dataset.tool === tool));
    }
    let custom = true;
    for (const swatch of document.querySelectorAll('#swatches .swatch')) {
      const on = swatch.dataset.colour === colour;
      if (on) custom = false;
      swatch.setAttribute('aria-checked', String(on));
      swatch.disabled = !enabled;
    }
    const picker = $('colour-custom');
    picker.disabled = !enabled;
    picker.classList.toggle('on', custom);
    if (custom && picker.value !== colour) picker.value = colour;
    const status = $('draw-status');
    status.textContent = reason;
    status.dataset.enabled = String(enabled);
    $('monitor').classList.toggle('drawing', enabled && tool != null);
  }

  /**
   * A typed error (or notice) in words: the sentence for `code` and what
   * to do next (messages.js), headed by `about` when it says what it
   * concerns ("Note not saved"). The code and the server's `message`
   * stay on the toast for support: in `data-code`, the title, and a
   * folded "Details" line.
   */
  toast(kind, code, message, { about } = {}) {
    const { text, next } = describe(code, message);
    this.notify(kind, about ? `${about}. ${text}` : text, { code, next, detail: message });
  }

  /** A notice the page wrote itself (`text` is already a sentence); `code` kept for tests and support. */
  notify(kind, text, { code = null, next = '', detail = '' } = {}) {
    const box = $('toasts');
    const node = el('div', { className: `toast ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
      el('p', { className: 'toast-text' }, text));
    if (next) node.append(el('p', { className: 'toast-next' }, next));
    if (code) {
      node.dataset.code = code;
      node.title = detail ? `${code}: ${detail}` : code;
      const details = el('details', { className: 'toast-details' }, el('summary', {}, 'Details'));
      details.append(el('code', {}, code));
      if (detail) details.append(' ', detail);
      node.append(details);
    }
    box.append(node);
    while (box.children.length > MAX_TOASTS) box.firstElementChild.remove();
    setTimeout(() => node.remove(), TOAST_MS);
  }
}
