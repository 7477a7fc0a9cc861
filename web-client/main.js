// Wires the page together: the link in the URL, the name prompt, one
// connection, the clock, the room state and the display loop. The display
// is a function of (transport, server clock) evaluated on every animation
// frame, so playback moves smoothly without any message from the server;
// messages only ever change the anchor.
//
// With media, the video is a second display: each picture carries its own
// server instant (its RTP timestamp), which names the frame it shows and
// how late it is; the room's clients delay their pictures to match (see
// playout.js). Then every readout follows the picture, not the playhead
// (displayedTransport in playout.js): one timeline for what is seen, and
// the driver's commands say which frame that was (`shown`, commands.js).
// While the room is not playing, the picture is not the stream's: it is
// the exact frame, decoded by the server and drawn over the video at the
// transport's execute-at instant (stills.js), with the frames around it
// fetched ahead so that a step shows at once; a play hands back to the
// stream when its first picture of the play is lit.
//
// The review record (notes and replies, drawings, decisions) arrives as
// whole lists after each welcome and as single items after that; what
// this author writes goes through one outbox (notes.js), so that it is
// stored exactly once however the connection behaves. A stroke being
// drawn is shown to the room as it grows (strokes.js), outside the
// outbox: those parts are previews, and the drawing that ends them goes
// through the outbox under the key they announced.

import { Approvals, approveMessage, versionLabel } from './approvals.js';
import { ClockSync, clientNowUs } from './clock-sync.js';
import { Commands } from './commands.js';
import { CompareView } from './compare.js';
import { Connection } from './connection.js';
import { Drawings, NO_MEDIA_PICTURE, drawingMessage } from './drawing.js';
import { read as readLuma, readRgba, stripRect } from './framecode.js';
import { GOTO_HINT, parseGoto } from './goto.js';
import { bindKeys, nextShuttleSpeed } from './keys.js';
import {
  Notes, Outbox, noteProblem, refusalHeadline,
} from './notes.js';
import { PictureOverlay } from './layout.js';
import { Overlay } from './overlay.js';
import { PlayerControls } from './player-controls.js';
import {
  EQUALISE, HoldWatch, SampleWindow, TransportHistory, delayForTargetMs, displayedTransport, latencySpreadUs, offsetLabel,
  reportedOffset, roomTargetMs, rtpToServerUs,
} from './playout.js';
import { RecordActions, apiError } from './record.js';
import { Room } from './room.js';
import { pictureState } from './states.js';
import { VideoLink } from './rtc.js';
import {
  STILLS, StillCache, StillLayer, prefetchPlan, stillKey,
} from './stills.js';
import { LiveStrokes, StrokeParts } from './strokes.js';
import { position } from './transport.js';
import { Timeline, noteSpan, setMark } from './timeline.js';
import { Ui } from './ui.js';
import { UploadPanel } from './uploads.js';
import { RequestAlert } from './control-requests.js';

const PROTOCOL = 1;
const NAME_KEY = 'syncreel.name';
const RESUME_PREFIX = 'syncreel.resume.';
const PASSCODE_PREFIX = 'syncreel.passcode.';
const OUTBOX_PREFIX = 'syncreel.outbox.';
// A write the server could not store (code `store`) goes again after this.
const WRITE_RETRY_MS = 3000;
// What the drawing bar says when the tools work, by the tool armed.
const TOOL_HINT = {
  none: 'Pick a tool to mark up this frame.',
  pen: 'Drag on the picture to draw; everyone sees it on this frame.',
  arrow: 'Drag from the tail to the tip.',
  rect: 'Drag from corner to corner.',
  eraser: 'Drag over a drawing to remove it for everyone.',
};
const FRAME_LOG_SIZE = 2000;
const VIDEO_LOG_SIZE = 4000;
// Frame reports go out twice a second with video (they carry the latency
// that playout equalisation works from), once a second without.
const REPORT_TICK_MS = 500;
// A frame report about a display the tab stopped painting would mislead.
const STALE_DISPLAY_US = 2_000_000;
// Paused stills are re-sent twice a second, so a live stream is never
// quieter than this.
const STALE_VIDEO_US = 1_500_000;
const REFUSAL_TOAST_GAP_MS = 2000;
// Reports use a median of at least this many playing pictures (half a
// second), and the playout delay one of this many transits.
const REPORT_MIN_SAMPLES = 12;
const TRANSIT_MIN_SAMPLES = 4;
// A play hands the picture back to the stream once a picture made in the
// play is lit; if none comes this long after the play's anchor (a stalled
// stream), the still goes anyway.
const HANDOVER_GIVE_UP_US = 3_000_000;
// Reading the frame code costs a copy of the strip's rows per picture
// (about 0.5 ms), or without WebCodecs a canvas draw (about 7 ms in
// software); beyond this mean it is read on every 4th picture only.
const CODE_READ_BUDGET_MS = 4;

/** A ring of the last N rows of `cols` numbers (NaN stands for null). */
class RingLog {
  constructor(size, cols) {
    this.size = size;
    this.cols = cols;
    this.data = new Float64Array(size * cols);
    this.count = 0;
  }

  /** Appends a row; returns its sequence number (for `set`). */
  push(...row) {
    const i = (this.count % this.size) * this.cols;
    for (let c = 0; c < this.cols; c++) this.data[i + c] = row[c] ?? NaN;
    this.count += 1;
    return this.count - 1;
  }

  /** Fills in a column of row `seq`, if it is still in the ring. */
  set(seq, col, value) {
    if (seq < this.count - this.size || seq >= this.count) return;
    this.data[(seq % this.size) * this.cols + col] = value ?? NaN;
  }

  toArray() {
    const n = Math.min(this.count, this.size);
    const out = new Array(n);
    for (let k = 0; k < n; k++) {
      const i = ((this.count - n + k) % this.size) * this.cols;
      const row = new Array(this.cols);
      for (let c = 0; c < this.cols; c++) {
        const v = this.data[i + c];
        row[c] = Number.isNaN(v) ? null : v;
      }
      out[k] = row;
    }
    return out;
  }
}

function parseLink(loc) {
  const match = loc.pathname.match(/^\/s\/([^/]+)\/?$/);
  const params = new URLSearchParams(loc.hash.replace(/^#/, ''));
  return { sessionId: match ? decodeURIComponent(match[1]) : null, token: params.get('token') };
}

const link = parseLink(location);
const ui = new Ui();
const room = new Room();
/** The last N painted frames as [serverTimeUs, frame, wallClockUs]. */
const frameLog = new RingLog(FRAME_LOG_SIZE, 3);
/**
 * The last N video pictures as [shownServerUs, frame, frameCode,
 * latencyUs, madeServerUs, receivedServerUs]: when it was (expected to
 * be) on screen, the frame its RTP timestamp names, the frame code read
 * off its pixels (null when not read or unreadable), how late it was
 * shown, when the server made it, and when its last packet arrived (null
 * if the browser does not say).
 */
const videoLog = new RingLog(VIDEO_LOG_SIZE, 6);
const history = new TransportHistory();
// Latency of every picture (for the stage), and of the last second of
// pictures made while the room played (for reports: paused stills come
// twice a second, and browsers time them differently).
const latencies = new SampleWindow(48);
const playLatencies = new SampleWindow(24);
const holdWatch = new HoldWatch();
// How long pictures take to arrive (server instant → last packet here):
// the part of the latency a playout delay cannot change.
const transits = new SampleWindow(48);
const frameMaps = [];
const notes = new Notes();
// Per session, in localStorage: a note written before a reload or a
// crash still goes out (with its key, so at most once) next time.
const outboxFor = (sessionId) => new Outbox({ storage: localStorage, storageKey: OUTBOX_PREFIX + (sessionId ?? 'default') });
let outbox = outboxFor(link.sessionId);
let selectedNote = null;
// The note whose reply box is open.
let replyingTo = null;
// A non-driver's own look at a noted frame ({frame, versionId, still}),
// or null while the page follows the room.
let peek = null;
const drawings = new Drawings();
// Everyone else's strokes while they are drawn.
const liveStrokes = new LiveStrokes();
// This author's stroke under the pointer ({stroke, parts}), shown to the
// room as it grows; null between strokes.
let authoring = null;
// Keys of drawings sent after parts of their stroke: the room holds
// those parts until the drawing comes, so a refusal must take them down.
const announced = new Set();
const approvals = new Approvals();
let drawTool = null;
let drawColour = '#ff453a';
let drawState = { enabled: false, reason: '' };
// Bumped on every change to what the overlay could show (drawings, the
// outbox's drawings and erasures, others' strokes in progress), so the
// animation loop repaints it only then.
let drawRevision = 0;
let overlayKey = null;
// Keys refused with `store`, to send again after WRITE_RETRY_MS.
const retryKeys = new Set();
let retryTimer = null;
const errors = [];
let name = null;
let connState = 'idle';
let displayed = null;
// The transport whose frame is on screen, as last drawn on the mode line and loop band.
let drawnTransport = null;
let lastRefusalToast = -Infinity;
let media = null;
let videoShown = null;
let reportTicks = 0;
let equaliseConfig = EQUALISE;
/** `shared` in the live review; `personal` in a room of one after it ended. */
let roomKind = 'shared';
// When the host ended the live review (Unix ms), or null while it runs.
let endedAt = null;
const equaliser = {
  delayMs: 0, targetMs: null, ownMs: null, transitMs: null, changedAt: -Infinity, reportedUs: null, fixed: false,
  // Streams restarted because the browser held pictures far too long.
  holdRestarts: 0,
  // The last changes, as [serverMs, transitMs, targetMs, newDelayMs]: for diagnosis.
  steps: [],
};
const codeStats = {
  pictures: 0, reads: 0, readable: 0, mismatches: 0, movedOn: 0, totalMs: 0, maxMs: 0, every: 1, auto: true,
};

// The resume secret lives per tab (sessionStorage) so that a reload keeps
// the identity and the driver's seat, but a second tab is a second person.
const resumeKey = () => RESUME_PREFIX + (link.sessionId ?? room.session?.id ?? 'default');
const loadResume = () => sessionStorage.getItem(resumeKey());
const saveResume = (secret) => sessionStorage.setItem(resumeKey(), secret);
const dropResume = () => sessionStorage.removeItem(resumeKey());
// A link's passcode, once typed, stays with the tab (sessionStorage, never
// localStorage), so that a reconnect or a reload does not ask again and
// the REST calls the page makes can carry it.
const passcodeKey = () => PASSCODE_PREFIX + (link.sessionId ?? 'default');
const loadPasscode = () => sessionStorage.getItem(passcodeKey());
const savePasscode = (passcode) => sessionStorage.setItem(passcodeKey(), passcode);
const dropPasscode = () => sessionStorage.removeItem(passcodeKey());

const send = (msg) => connection.send(msg);

const clock = new ClockSync(send);

const video = document.getElementById('video');
const compareView = new CompareView({
  send: (msg) => send(msg),
  room,
  monitor: document.getElementById('monitor'),
  video,
  after: document.getElementById('draw-bar'),
});
const halvesCanvas = document.createElement('canvas');
const stream = new VideoLink({
  send,
  video,
  onState(state, detail) {
    ui.setVideoState(state, detail);
  },
});

// The stills path: while the room is not playing, the exact frame from
// the server covers the video (see updateStills).
const stillLayer = new StillLayer(document.getElementById('still-layer'), () => refreshStills());
const stillCache = new StillCache({ load: loadStill });
// The timeline under the picture; its hover stills come through loadStill too.
const timeline = new Timeline(document.getElementById('timeline'), {
  seek: (frame) => room.isDriver() && drive({ type: 'seek', frame }),
  marks: (a, b) => markRange({ in: a, out: b }, true),
  cue: (entry) => room.isDriver() && cueEntry(entry),
  still: () => {
    if (!media || !room.joined) return null;
    const { checksum } = newestEntry();
    return { checksum, sourceWidth: sourceWidths.get(checksum) ?? media.sourceWidth };
  },
  load: (item, signal) => loadStill(item, signal),
});
// The in/out marks the next note spans (this page's own; the driver's
// I/O keys also set the room's loop, see actions.mark).
let noteMarks = { in: null, out: null };
// The still on screen ({key, frame, checksum, width, height, version,
// executeAtUs, drawnAtUs, and the stream's state when it was drawn}), or
// null while the stream's picture shows.
let stillShown = null;
// When the stream's first picture of the play that follows the still is
// lit (server µs): the still goes then.
let handoverAtUs = null;
// The frame the driver's own command will put the room on, foreseen at
// the key press ({checksum, frame, duration, sinceVersion}): fetched at once.
let foreseen = null;
// [event (0 drawn, 1 hidden), frame, atUs, executeAtUs (drawn) or the
// handover picture's display instant (hidden), transport version].
const stillLog = new RingLog(512, 5);
// Source widths by version checksum (a playlist entry's is learnt from
// its first still: the welcome gives only the entry on screen's).
const sourceWidths = new Map();
// Tests: the stream's start held back (see holdStream).
let streamHeld = false;
let heldMedia = null;
// A failure the room heard of before we joined: our own rtcStart, sent
// with the welcome, is a fresh try, so it is shown but not obeyed.
let mediaErrorBeforeUs = false;
// While the media stands failed, our stream tries again now and then: the
// file may be back, the load gone (the server says `mediaRestored` when
// anyone's try succeeds).
const MEDIA_RETRY_MS = 30_000;
let mediaRetry = null;

// Drawings over the picture; strokes (as they start, then finished or
// abandoned) and erasures come back here.
const overlay = new Overlay(document.getElementById('draw-canvas'), {
  onStrokeStart: startStroke, onStroke: addDrawing, onStrokeAbandoned: abandonStroke, onErase: eraseDrawings,
});

const connection = new Connection({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  hello() {
    const msg = { type: 'hello', protocol: PROTOCOL, token: link.token, name };
    const resume = loadResume();
    if (resume) msg.resume = resume;
    // A resume reclaims an identity that already got in, so it needs no
    // passcode; leaving it out keeps a lock set by someone else's guesses
    // from refusing this tab's reconnect.
    const passcode = loadPasscode();
    if (passcode && !resume) msg.passcode = passcode;
    return msg;
  },
  onResumeFailed: dropResume,
  onPasscode: askPasscode,
  onMessage,
  onState(state, detail, code) {
    connState = state;
    ui.setConnection(state, detail, code);
    if (state !== 'live') clock.stop();
    // At once, not at the next painted frame: a page in the background paints rarely.
    renderPictureState();
  },
});

/** The hello was refused for its passcode: ask for one, saying why. */
function askPasscode(msg) {
  errors.push({ code: msg.code, message: msg.message, ref: null, type: msg.type });
  if (errors.length > 50) errors.shift();
  if (msg.code === 'passcode_required' && loadResume() && loadPasscode()) {
    // The identity to resume is gone: join afresh, with the passcode this
    // tab already has.
    dropResume();
    connection.start();
    return;
  }
  if (msg.code === 'passcode_wrong') dropPasscode();
  const why = {
    passcode_required: null,
    passcode_wrong: 'That passcode is not right. Check it and try again.',
    passcode_locked: `Too many wrong passcodes for this link. Try again in ${msg.retryAfterSecs ?? 60} s.`,
  }[msg.code];
  ui.showPasscode(why, (typed) => {
    savePasscode(typed);
    connection.start();
  });
}

const commands = new Commands({
  send,
  canDrive: () => connection.live && room.isDriver(),
  // Taken at the keypress or click, before the command is paced.
  seen: () => shownFrame(),
  playing: () => Boolean(room.schedule.newest()?.playing),
  refuse() {
    const now = performance.now();
    if (now - lastRefusalToast < REFUSAL_TOAST_GAP_MS) return;
    lastRefusalToast = now;
    const why = !connection.live
      ? 'Not connected: commands resume once the connection is back.'
      : room.canDrive()
        ? 'Only the driver controls playback. Request control first.'
        : 'Viewers watch along; they cannot drive playback.';
    ui.notify('info', why, { code: 'not_driver' });
  },
});

// Whether the person turned the page's sound off (the video starts muted
// for autoplay; that is no choice of theirs, so it does not silence the
// request tone).
let soundOff = false;
const requestAlert = new RequestAlert({
  muted: () => soundOff,
  answer: (type, participant) => commands.control({ type, participant }),
  panel: document.querySelector('.control-panel'),
});

function onMessage(msg) {
  // The server sends a standing failure right after the welcome (and its
  // frame map), before anything else.
  if (msg.type !== 'mediaError' && msg.type !== 'welcome' && msg.type !== 'frameMap') mediaErrorBeforeUs = false;
  switch (msg.type) {
    case 'pong':
      clock.onPong(msg);
      return;
    case 'error':
    case 'goodbye':
      errors.push({ code: msg.code, message: msg.message, ref: msg.ref ?? null, type: msg.type });
      if (errors.length > 50) errors.shift();
      if (msg.code === 'rtc') stream.onError(msg);
      ui.toast('error', msg.code, msg.message);
      return;
    case 'rtcOffer':
    case 'rtcCandidate':
      stream.handle(msg);
      return;
    case 'frameMap':
      frameMaps.push(msg);
      if (frameMaps.length > 32) frameMaps.shift();
      return;
    case 'ended':
      // A fresh join from now on opens a room of one; a resume would put
      // this tab back in the shared room.
      if (roomKind === 'shared') dropResume();
      endedAt = msg.at;
      ui.showEnded(endedAt, roomKind, room.role);
      ui.renderRecordPanel(room, endedAt);
      return;
    case 'notes':
      // Follows every welcome and snapshot (then `drawings`, then
      // `approvals`): the whole list, then whatever of ours it lacks goes
      // again under the same keys.
      if (!wholeList('notes', msg)) return;
      notes.replace(msg.notes);
      catchUp('note', notes);
      renderNotes();
      return;
    case 'note':
      // New, a reply, or a resolve or reopen of one we have.
      if (notes.put(msg.note)) renderNotes();
      return;
    case 'noteAck':
      notes.put(msg.note);
      outbox.ack(msg.key);
      renderNotes();
      return;
    case 'drawings':
      if (!wholeList('drawings', msg)) return;
      drawings.replace(msg.drawings);
      catchUp('drawing', drawings);
      // Those it shows stored had their acknowledgement lost.
      for (const key of announced) if (!outbox.has(key)) announced.delete(key);
      drawRevision += 1;
      return;
    case 'drawing':
      // New (it takes the place of its stroke in progress), or erased (then it goes).
      if (liveStrokes.finished(msg.drawing.key)) drawRevision += 1;
      if (drawings.put(msg.drawing)) drawRevision += 1;
      return;
    case 'drawingAck':
      drawings.put(msg.drawing);
      outbox.ack(msg.key);
      announced.delete(msg.key);
      liveStrokes.finished(msg.key);
      drawRevision += 1;
      return;
    case 'stroke':
      // Someone else's stroke as it grows (the server never sends us our own).
      if (liveStrokes.apply(msg, performance.now())) drawRevision += 1;
      return;
    case 'strokeEnd':
      if (liveStrokes.end(msg.by, msg.key)) drawRevision += 1;
      return;
    case 'approvals':
      if (!wholeList('approvals', msg)) return;
      approvals.replace(msg.approvals);
      catchUp('approval', approvals);
      renderApprovals();
      return;
    case 'approval':
      if (approvals.add(msg.approval)) renderApprovals();
      return;
    case 'approvalAck':
      approvals.add(msg.approval);
      outbox.ack(msg.key);
      renderApprovals();
      return;
    case 'noteRefused':
    case 'drawingRefused':
    case 'approvalRefused':
      onRefused(msg);
      return;
    case 'mediaError':
      errors.push({ code: 'media_error', message: msg.message, ref: null, type: msg.type });
      ui.showMediaError(msg.message);
      if (mediaErrorBeforeUs) {
        mediaErrorBeforeUs = false;
        return;
      }
      stream.stop(msg.message, 'failed');
      ui.toast('error', 'media_error', msg.message);
      clearTimeout(mediaRetry);
      mediaRetry = setTimeout(() => {
        if (media && !streamHeld && stream.state === 'failed') stream.start(media);
      }, MEDIA_RETRY_MS);
      return;
    case 'mediaRestored':
      // Someone's stream started the players again: ours starts too.
      clearTimeout(mediaRetry);
      ui.showMediaError(null);
      ui.notify('info', 'The video is back.');
      if (media && stream.state === 'failed') {
        if (streamHeld) heldMedia = media;
        else stream.start(media);
      }
      return;
    default:
      break;
  }
  const changed = room.apply(msg);
  // Our own command came back (even if a resync made it stale): it is no
  // longer on its way.
  if ((msg.type === 'transport' || msg.type === 'cue') && msg.by != null && msg.by === room.you) commands.confirm();
  // A resync starts the catch-up lists again: pages of a series its full
  // queue cut short are stale.
  if (msg.type === 'snapshot') listPages.clear();
  if (msg.type === 'welcome') {
    // After apply: at `/` the storage key comes from the welcome's session.
    saveResume(msg.resume);
    // A new socket: pages of a list cut off by the old one are stale.
    listPages.clear();
    roomKind = msg.room ?? 'shared';
    document.body.dataset.room = roomKind;
    // An `ended` follows the welcome if the review is over.
    endedAt = null;
    ui.showEnded(null, roomKind, room.role);
    ui.renderRecordPanel(room, endedAt);
    if (!link.sessionId && outbox.storageKey !== OUTBOX_PREFIX + msg.session.id) outbox = outboxFor(msg.session.id);
    clock.onWelcome(msg.serverTime);
    onWelcomeMedia(msg);
  } else if (msg.type === 'snapshot') {
    history.add(msg.state.version, msg.state.transport);
  } else if (changed === 'transport') {
    history.add(msg.version, msg.transport);
  }
  if (!changed) return;
  if (changed === 'all') {
    // A new room state: strokes under way may have ended unheard, and
    // the room may hold none of this author's.
    liveStrokes.clear();
    authoring?.parts.restart();
    drawRevision += 1;
    ui.showApp();
    ui.renderSession(room);
    uploads.showFor(room.role);
    ui.setNoteAuthoring(room.canDrive());
    renderApprovals();
    drawnTransport = null;
    commands.clear();
  }
  if (changed === 'all' || changed === 'control' || changed === 'presence') {
    ui.renderControl(room);
    renderPresence();
  }
  if (changed === 'presence' && liveStrokes.keepAuthors((by) => room.participants.has(by))) drawRevision += 1;
  if (changed === 'all' || changed === 'control' || changed === 'playlist') {
    ui.renderPlaylist(room);
    renderTimeline();
    uploads.offer();
  }
  if (changed === 'all' || changed === 'playlist') {
    for (const e of room.playlist) if (e.version && e.sourceWidth) sourceWidths.set(e.version.checksum, e.sourceWidth);
  }
  if (changed === 'playlist') {
    ui.renderRecordPanel(room, endedAt);
    compareView.render();
  }
  if (changed === 'control' && !room.isDriver()) commands.clear();
  // Whoever drives sees what the room sees.
  if ((changed === 'all' || changed === 'control') && room.isDriver()) endPeek();
  if (changed === 'all' || changed === 'control' || changed === 'presence') {
    requestAlert.onControl({
      reason: msg.type === 'control' ? msg.reason : null,
      requests: room.control.requests,
      canAnswer: roomKind === 'shared' && (room.isDriver() || room.role === 'host'),
      nameOf: (id) => room.nameOf(id),
      you: room.you,
    });
  }
  // A new transport on its way: its still (and its neighbours') now, ahead of its execute-at.
  if (changed === 'all' || changed === 'transport') refreshStills();
  if (changed === 'all' || changed === 'control' || changed === 'compare') compareView.render();
  // The still is one version's: a compare shows the stream instead.
  if (changed === 'compare') renderNotes();
}

/** Catch-up pages gathered so far, by list name. */
const listPages = new Map();

/**
 * A long record's catch-up list comes in pages (`more` on all but the
 * last): gathers them, and says whether `msg[name]` now holds the whole
 * list. Nothing acts on a part, or the outbox would resend what a later
 * page shows is stored.
 */
function wholeList(name, msg) {
  const gathered = listPages.get(name) ?? [];
  if (msg.more) {
    listPages.set(name, gathered.concat(msg[name]));
    return false;
  }
  listPages.delete(name);
  if (gathered.length) msg[name] = gathered.concat(msg[name]);
  return true;
}

/** After a catch-up list: drop what it shows is stored, send the rest of that kind again. */
function catchUp(family, record) {
  outbox.settle(record);
  for (const m of outbox.pending(family)) send(m);
}

const label = (f) => room.format.label(f);

function renderNotes() {
  if (!room.joined) return;
  if (replyingTo != null && !notes.get(replyingTo)) replyingTo = null;
  ui.renderNotes({
    threads: notes.threads().filter((t) => room.showsVersion(t.note.versionId)),
    pending: outbox.pending('note'),
    label,
    durationFrames: room.session.durationFrames,
    selected: selectedNote,
    canWrite: room.canDrive(),
    replyingTo,
  });
  const shown = notes.threads().filter((t) => room.showsVersion(t.note.versionId)).map((t) => t.note);
  const queued = new Map(outbox.pending('note').filter((m) => m.type === 'resolve').map((m) => [m.note, m.resolved]));
  timeline.renderNotes(shown.map((n) => ({ ...n, resolved: queued.get(n.id) ?? n.resolvedAt != null })), selectedNote, label);
}

/** New in/out marks for the next note: the timeline and the note box show them. */
function markRange(marks, fromDrag = false) {
  noteMarks = { in: marks.in ?? null, out: marks.out ?? null };
  timeline.setMarks(noteMarks);
  ui.showNoteRange(noteMarks, label);
  // A drag by the driver moves the room's loop as the I/O keys do.
  if (fromDrag && room.isDriver() && noteMarks.in != null && noteMarks.out != null) {
    drive({ type: 'loopIn', frame: noteMarks.in });
    drive({ type: 'loopOut', frame: noteMarks.out });
  }
}

/** The timeline's session, abilities and chapters, after a welcome, a cue or a change of driver. */
function renderTimeline() {
  if (!room.joined) return;
  timeline.setSession(room.session.durationFrames, room.format);
  timeline.setAbilities({ canMark: room.canDrive(), canSeek: room.isDriver() });
  timeline.renderChapters(room.playlist, room.entry, room.isDriver(), (e) => versionLabel(e.version));
  if (timeline.marks.in !== noteMarks.in || timeline.marks.out !== noteMarks.out) markRange(timeline.marks);
}

function renderApprovals() {
  if (!room.joined) return;
  const versionId = room.mediaVersion?.id ?? null;
  const mine = approvals.of(room.nameOf(room.you), versionId);
  ui.renderApprovals({
    decisions: approvals.current(versionId),
    canApprove: room.canDrive() && room.mediaVersion != null,
    mine: mine?.status ?? null,
    sending: outbox.pending('approval').at(-1)?.status ?? null,
    label,
  });
}

/** A refused write: kept to retry when the store was busy, else dropped with a word to its author. */
function onRefused(msg) {
  const queued = outbox.get(msg.key);
  const outcome = outbox.refused(msg.key, msg.code);
  if (outcome === null) return;
  // No drawing will follow the stroke the room saw.
  if (outcome === 'dropped' && announced.delete(msg.key)) send({ type: 'strokeEnd', key: msg.key });
  errors.push({ code: msg.code, message: msg.message, ref: msg.key, type: msg.type });
  if (errors.length > 50) errors.shift();
  if (outcome === 'retry') {
    // The server could not write it down; it stays queued.
    retryKeys.add(msg.key);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(() => {
      for (const key of retryKeys) {
        const again = outbox.get(key);
        if (again) send(again);
      }
      retryKeys.clear();
    }, WRITE_RETRY_MS);
    return;
  }
  const about = refusalHeadline(queued, msg.code);
  if (about) ui.toast('error', msg.code, msg.message, { about });
  renderNotes();
  renderApprovals();
  drawRevision += 1;
}

/**
 * The frame the author is looking at: the video's picture when there is
 * one, else the frame the counter shows. The picture is the last one
 * presented whose display time has come: a video-frame callback runs a
 * little before its picture is lit (its expectedDisplayTime), and until
 * then the one before is on screen.
 */
function shownFrame() {
  if (peek) return peek.frame;
  if (media && stillShown) return stillShown.frame;
  const now = clock.serverNowUs();
  if (media && videoShown && now != null && now - videoShown.atUs <= STALE_VIDEO_US) {
    return videoShown.atUs > now && videoShown.before ? videoShown.before.frame : videoShown.frame;
  }
  return displayed?.frame ?? null;
}

function addNote(text) {
  const problem = noteProblem(text);
  if (problem) {
    if (problem === 'too_long') ui.notify('error', 'A note is at most 4000 characters.', { code: 'bad_note' });
    return false;
  }
  const frame = shownFrame();
  if (frame == null || !room.joined) return false;
  const clamped = Math.min(Math.max(0, frame), room.session.durationFrames - 1);
  const span = noteSpan(noteMarks, clamped);
  const msg = outbox.draft(span.frame, span.frameOut, text);
  if (!msg) return false;
  // A range is for one note, as in Frame.io; the room's loop stays.
  if (span.frameOut != null) markRange({});
  compareView.tag(msg);
  // Offline, it waits in the outbox for the next welcome's `notes`.
  send(msg);
  renderNotes();
  return true;
}

function addReply(text) {
  const problem = noteProblem(text);
  if (problem) {
    if (problem === 'too_long') ui.notify('error', 'A reply is at most 4000 characters.', { code: 'bad_note' });
    return false;
  }
  if (replyingTo == null || !notes.get(replyingTo)) return false;
  const msg = outbox.reply(replyingTo, text);
  if (!msg) return false;
  send(msg);
  replyingTo = null;
  renderNotes();
  return true;
}

/** Reply, Resolve or Reopen on note `id`. */
function noteAction(action, id) {
  if (!notes.get(id) || !room.canDrive()) return;
  if (action === 'reply') {
    replyingTo = replyingTo === id ? null : id;
  } else {
    send(outbox.resolve(id, action === 'resolve'));
  }
  renderNotes();
}

/** Approve or request changes on the version under review. */
function decide(status) {
  if (!room.joined || !room.canDrive() || !media?.version) return;
  const msg = outbox.queue(approveMessage(status, media.version.id));
  if (!msg) return;
  send(msg);
  renderApprovals();
}

/**
 * Why the drawing tools cannot be used now, or null when they can. Only
 * a still frame can be drawn on: in play, a shape would belong to a frame
 * already gone.
 */
function drawBlocked(transport) {
  if (!room.canDrive()) return 'Viewers watch along; drawing is for hosts and reviewers.';
  if (transport.playing && !peek) return 'Pause to draw: drawings sit on a still frame.';
  return null;
}

/**
 * What the overlay shows on `frame`: the stored drawings not being
 * erased, ours on their way, then others' strokes still being drawn.
 */
function shapesOn(frame) {
  const queued = outbox.pending('drawing');
  const erasing = new Set(queued.filter((m) => m.type === 'erase').map((m) => m.drawing));
  return [
    ...drawings.onFrame(frame).filter((d) => !erasing.has(d.id) && room.showsVersion(d.versionId))
      .map((d) => ({ drawing: d, pending: false })),
    ...queued.filter((m) => m.type === 'drawing' && m.frame === frame).map((m) => ({ drawing: m, pending: true })),
    ...liveStrokes.onFrame(frame).filter((s) => room.showsVersion(s.versionId))
      .map((s) => ({ drawing: s, pending: false, live: true })),
  ];
}

/** Per animation frame: the tools' state, the picture's shape, and the drawings of the frame on screen. */
function updateOverlay(transport) {
  const blocked = drawBlocked(transport);
  drawState = { enabled: blocked == null, reason: blocked ?? TOOL_HINT[drawTool ?? 'none'] };
  ui.setDrawTools({ tool: drawTool, colour: drawColour, ...drawState });
  overlay.setEnabled(drawState.enabled);
  if (media) overlay.setSource(video.videoWidth || media.streamWidth, video.videoHeight || media.streamHeight, false);
  else overlay.setSource(NO_MEDIA_PICTURE.width, NO_MEDIA_PICTURE.height, true);
  // Drawings show on a still frame: the picture on screen when there is
  // video (it can trail the room's playhead just after a seek).
  const frame = transport.playing && !peek ? null : shownFrame();
  const key = `${frame}|${drawRevision}`;
  if (key === overlayKey) return;
  overlayKey = key;
  overlay.show(frame, frame == null ? [] : shapesOn(frame));
}

const clampFrame = (frame) => Math.min(Math.max(0, frame), room.session.durationFrames - 1);

/**
 * This author's stroke begins. Its key is made now, so that the room's
 * copy of it gives way to the drawing that will carry the same key.
 */
function startStroke(stroke, frame) {
  // A second pointer pressed before the first let go takes over the overlay.
  if (authoring) abandonStroke();
  if (!drawState.enabled || !room.joined || frame == null) return;
  authoring = { stroke, parts: new StrokeParts(outbox.newKey(), clampFrame(frame), stroke) };
  sendStrokePart(performance.now(), stroke.progress());
}

/**
 * The part of this author's stroke due at `nowMs`, if any, given its
 * `points` so far. Only over a live connection: parts are never queued,
 * and what is not sent now goes in the next part.
 */
function sendStrokePart(nowMs, points, final = false) {
  if (!authoring || !connection.live) return;
  const part = authoring.parts.next(points, authoring.stroke.thinnings, nowMs, { final });
  if (part) send(part);
}

/** This author's stroke left no drawing: the room's copy goes too. */
function abandonStroke() {
  const end = authoring?.parts.end();
  authoring = null;
  if (end) send(end);
}

function addDrawing(shape, frame) {
  const drawn = drawState.enabled && room.joined && frame != null ? drawingMessage(clampFrame(frame), shape) : null;
  const fields = drawn && compareView.tagDrawing(drawn, drawn.points);
  if (!fields) {
    abandonStroke();
    return;
  }
  // The rest of the stroke, so that the room's copy is whole while the
  // drawing is being stored.
  sendStrokePart(performance.now(), shape.points, true);
  const key = authoring?.parts.key;
  if (authoring?.parts.started) announced.add(key);
  authoring = null;
  // Offline, it waits in the outbox for the next welcome's `drawings`.
  send(outbox.queue(fields, key));
  drawRevision += 1;
}

function eraseDrawings(ids) {
  if (!drawState.enabled) return;
  for (const id of ids) send(outbox.queue({ type: 'erase', drawing: id }));
  drawRevision += 1;
}

/**
 * Clicking a note: the driver takes the room there; anyone else only
 * marks it, since there is no private view to move.
 */
function openNote(id) {
  const note = notes.get(id);
  if (!note) return;
  selectedNote = id;
  renderNotes();
  document.querySelector(`#notes li[data-id="${id}"]`)?.scrollIntoView({ block: 'nearest' });
  if (room.isDriver()) {
    endPeek();
    drive({ type: 'seek', frame: note.frame });
  } else {
    startPeek(note.frame);
  }
}

/**
 * A look of one's own at `frame`, for someone who does not drive: the
 * room plays on, this page shows that frame's still (decoded by the
 * server) with its drawings, and notes and drawings made now pin to it.
 * "Back to the room" (or Escape, a cue, a new room state, taking the
 * driver's seat) ends it.
 */
function startPeek(frame) {
  endPeek();
  peek = { frame, versionId: room.mediaVersion?.id ?? null, still: null };
  ui.showPeek(frame, room.format.label(frame), null);
  overlayKey = null;
  if (media) loadPeekStill(peek);
}

async function loadPeekStill(look) {
  const version = look.versionId ? `?version=${encodeURIComponent(look.versionId)}` : '';
  try {
    const res = await linkFetch(`/still/${look.frame}${version}`);
    if (!res.ok) {
      const { code, message } = await apiError(res);
      if (peek === look) ui.toast('error', code, message, { about: 'No still of that frame' });
      return;
    }
    const url = URL.createObjectURL(await res.blob());
    if (peek !== look) {
      URL.revokeObjectURL(url);
      return;
    }
    look.still = url;
    ui.showPeek(look.frame, room.format.label(look.frame), url);
  } catch (err) {
    if (peek === look) ui.toast('error', 'offline', err.message, { about: 'The still did not come' });
  }
}

function endPeek() {
  if (!peek) return;
  if (peek.still) URL.revokeObjectURL(peek.still);
  peek = null;
  ui.showPeek(null);
  overlayKey = null;
}

function renderPresence() {
  const now = clock.serverNowUs();
  const offsetOf = (p) => {
    const o = reportedOffset(p, history, room.timeline);
    if (!o) return null;
    return { frames: o.frames, label: p.latencyUs == null ? null : offsetLabel(o.frames, o.latencyMs) };
  };
  // The spread is for whoever runs the room.
  const spread = room.role === 'host' && media
    ? latencySpreadUs([...room.participants.values()], now ?? 0)
    : undefined;
  ui.renderPresence(room, clock.status(), offsetOf, spread);
}

// The record's buttons: exports, and ending the live review.
const record = new RecordActions({ linkFetch, room, ui, endedAt: () => endedAt });

// Media sent into the session (hosts), with this page's link and passcode.
const uploads = new UploadPanel({
  ui,
  sessionId: () => room.session?.id,
  headers: () => {
    const headers = { authorization: `Bearer ${link.token}` };
    const passcode = loadPasscode();
    if (passcode) headers['x-syncreel-passcode'] = passcode;
    return headers;
  },
  show: showVersion,
  canShow: (versionId) => room.isDriver()
    && room.playlist.some((e, i) => e.version?.id === versionId && i !== room.entry),
});

/**
 * Moves the room to playlist entry `i`: another version of the shot on
 * screen opens at the same timecode (a "v6" replacing "v5" under the
 * notes), another shot at its first frame.
 */
function cueEntry(i) {
  const target = room.playlist[i]?.version;
  const sameShot = target != null && room.mediaVersion != null && target.item === room.mediaVersion.item;
  drive({ type: 'cue', entry: i, ...(sameShot ? { sameTimecode: true } : {}) });
}

/** The uploaded version `versionId` on screen, if the room has it (the driver only). */
function showVersion(versionId) {
  const i = room.playlist.findIndex((e) => e.version?.id === versionId);
  if (i >= 0 && i !== room.entry && room.isDriver()) cueEntry(i);
}

/** A REST call about this session with this page's link token (the server checks what its role may do). */
function linkFetch(path, method = 'GET', signal = undefined) {
  const headers = { authorization: `Bearer ${link.token}` };
  const passcode = loadPasscode();
  if (passcode) headers['x-syncreel-passcode'] = passcode;
  return fetch(`/api/sessions/${encodeURIComponent(room.session.id)}${path}`, { method, headers, signal });
}

/**
 * A cue's instant (or a resync onto another entry): the timeline, the
 * version and what is shown of the record all switch together, as the
 * picture does on the server.
 */
function onEntryChanged() {
  endPeek();
  // The still of the entry before: the new entry's shows once it is here.
  if (stillShown) hideStill(clock.serverNowUs());
  if (media) media.version = room.mediaVersion;
  videoShown = null;
  selectedNote = null;
  ui.setVersion(room.mediaVersion);
  ui.renderSession(room);
  ui.renderPlaylist(room);
  renderTimeline();
  uploads.offer();
  compareView.render();
  renderNotes();
  renderApprovals();
  drawRevision += 1;
  drawnTransport = null;
  refreshStills();
}

/** Every welcome is a new socket, so a new peer (the server dropped the old one). */
function onWelcomeMedia(msg) {
  history.reset();
  history.add(msg.state.version, msg.state.transport);
  latencies.clear();
  playLatencies.clear();
  transits.clear();
  videoShown = null;
  equaliser.delayMs = 0;
  equaliser.targetMs = null;
  stream.setDelayMs(0);
  stream.resetSignalling();
  media = msg.media ?? null;
  ui.setMedia(media);
  ui.setVersion(media?.version ?? null);
  ui.setColour(media?.sourceColour ?? null, media?.proxy === true);
  if (media?.version) sourceWidths.set(media.version.checksum, media.sourceWidth);
  // A still of another version (or of no media) is not this room's picture.
  if (stillShown && stillShown.checksum !== media?.version?.checksum) hideStill(clock.serverNowUs());
  heldMedia = null;
  clearTimeout(mediaRetry);
  mediaErrorBeforeUs = false;
  if (media) {
    ui.showMediaError(null);
    if (streamHeld) heldMedia = media;
    else {
      stream.start(media);
      mediaErrorBeforeUs = true;
    }
  } else {
    stream.stop();
  }
}

/** The version (checksum) and length of the newest transport's entry: a cue on its way names its own. */
function newestEntry() {
  const cue = room.cues.at(-1);
  if (cue) return { checksum: cue.mediaVersion?.checksum ?? null, duration: cue.session.durationFrames };
  return { checksum: room.mediaVersion?.checksum ?? null, duration: room.session.durationFrames };
}

/** The version of the newest transport this page knows of, due or not. */
const newestVersion = () => room.schedule.pending.at(-1)?.version ?? room.schedule.currentVersion;

/** The width to ask stills of version `checksum` at: the picture's width in device pixels, at most the source's. */
function stillWidthFor(checksum) {
  if (!media) return null;
  const source = sourceWidths.get(checksum) ?? 1920;
  return stillLayer.requestWidth(source, (source * media.sourceHeight) / media.sourceWidth);
}

/**
 * Tells the still cache what to have ready, most wanted first: the frame
 * the driver's own command will land on (foreseen at the key press), the
 * newest transport's paused frame (it arrives a lead ahead of its
 * execute-at), then that frame's neighbours and a short loop.
 */
function refreshStills() {
  if (!media || !room.joined) {
    stillCache.want([]);
    return;
  }
  const { checksum, duration } = newestEntry();
  const items = [];
  const add = (frame, version = checksum, length = duration) => {
    const width = version && stillWidthFor(version);
    if (!width || !(frame >= 0 && frame < length)) return;
    items.push({ key: stillKey(version, frame, width), checksum: version, frame, width });
  };
  if (foreseen && foreseen.sinceVersion === newestVersion()) add(foreseen.frame, foreseen.checksum, foreseen.duration);
  const newest = room.schedule.newest();
  if (newest && !newest.playing) for (const f of prefetchPlan(newest.anchorFrame, duration, newest)) add(f);
  stillCache.want(items);
}

/** The frame the driver's paused room will be on after the newest transport and the commands foreseen since. */
function foreseenBase() {
  if (foreseen && foreseen.sinceVersion === newestVersion() && foreseen.checksum === newestEntry().checksum) return foreseen.frame;
  const newest = room.schedule.newest();
  return newest && !newest.playing ? newest.anchorFrame : null;
}

/**
 * Where the driver's command will put the room, when this page can tell
 * (a pause or step lands on the frame on screen, or steps from the paused
 * frame; a seek while paused goes where it says; a cue opens its entry
 * paused on its first frame): that still is asked for now, a round trip
 * and a lead before its transport takes effect.
 */
function foreseeCommand(msg) {
  if (!media || !room.joined || !connection.live || !room.isDriver()) return;
  if (msg.type === 'cue') {
    const entry = room.playlist[msg.entry];
    // Where a same-timecode cue lands is the server's to say.
    if (!entry?.version || msg.sameTimecode) return;
    foreseen = {
      checksum: entry.version.checksum, frame: 0, duration: entry.durationFrames, sinceVersion: newestVersion(),
    };
    refreshStills();
    return;
  }
  const plays = commands.willPlay();
  let frame = null;
  if (msg.type === 'pause' && plays) {
    frame = shownFrame();
  } else if (msg.type === 'step') {
    const base = plays ? shownFrame() : foreseenBase();
    frame = base == null ? null : base + msg.frames;
  } else if (msg.type === 'seek' && !plays) {
    if (msg.frame != null) frame = msg.frame;
    else {
      try {
        frame = room.format.parse(msg.timecode);
      } catch {
        // The server says what is wrong with it.
      }
    }
  }
  if (frame == null) return;
  const { checksum, duration } = newestEntry();
  foreseen = {
    checksum, frame: Math.min(Math.max(0, frame), duration - 1), duration, sinceVersion: newestVersion(),
  };
  refreshStills();
}

/** Fetches and decodes one still (`item` as in refreshStills). */
async function loadStill({ checksum, frame, width }, signal) {
  const path = `/frames/${checksum}/${frame}`;
  let res = await linkFetch(`${path}?width=${width}`, 'GET', signal);
  if (res.status === 400) {
    const { code, message } = await apiError(res);
    if (code !== 'bad_request') throw Object.assign(new Error(message), { code });
    // Wider than this version's source (a playlist entry's size is not
    // announced): its own width, learnt from what comes.
    res = await linkFetch(path, 'GET', signal);
  }
  if (res.status === 503) throw Object.assign(new Error('busy'), { retryMs: STILLS.busyRetryMs });
  if (!res.ok) throw Object.assign(new Error((await apiError(res)).message), { code: `http_${res.status}` });
  const blob = await res.blob();
  // As decoded: no colour management, no premultiplying (the PNG is opaque RGB).
  const bitmap = await createImageBitmap(blob, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  if (bitmap.width + 3 < width) sourceWidths.set(checksum, bitmap.width);
  return { value: bitmap, bytes: bitmap.width * bitmap.height * 4 };
}

/**
 * Per animation frame: the still due now. Paused, the still of the
 * paused frame is drawn at the first animation frame at or after its
 * transport's execute-at (it was fetched when the transport arrived, or
 * at the driver's key press); one not here yet is drawn as soon as it
 * comes, and the last still stays up until then. Playing, the still stays
 * until the stream's first picture of the play is lit (`handoverAtUs`,
 * set in onVideoFrame), so the picture never steps back.
 */
function updateStills(now, transport) {
  if (!media || !room.joined) {
    if (stillShown) hideStill(now);
    return;
  }
  if (room.compare) {
    // A still is one version's picture; the compared one is the stream's.
    if (stillShown) hideStill(now);
    return;
  }
  if (!transport.playing) {
    handoverAtUs = null;
    const checksum = room.mediaVersion?.checksum;
    const width = checksum && stillWidthFor(checksum);
    if (!width) return;
    const key = stillKey(checksum, transport.anchorFrame, width);
    if (stillShown?.key === key) return;
    const bitmap = stillCache.get(key);
    if (bitmap) drawStill(now, key, checksum, bitmap, transport);
    // Without a stream no picture is coming either: an old frame's still
    // would stand for the room's frame (the readouts name the room's).
    else if (stillShown && (stream.state === 'none' || stream.state === 'failed')) hideStill(now);
    return;
  }
  if (!stillShown) return;
  const noStream = stream.state === 'none' || stream.state === 'failed';
  if (noStream || (handoverAtUs != null && now >= handoverAtUs) || now - transport.anchorTime > HANDOVER_GIVE_UP_US) {
    hideStill(now);
  }
}

function drawStill(now, key, checksum, bitmap, transport) {
  stillLayer.draw(bitmap);
  stillCache.pin(key);
  const version = room.schedule.currentVersion;
  stillShown = {
    key,
    frame: transport.anchorFrame,
    checksum,
    width: bitmap.width,
    height: bitmap.height,
    version,
    // A paused transport's execute-at is its anchor time.
    executeAtUs: transport.anchorTime,
    drawnAtUs: now,
    // The stream when the still went up: whether it came before WebRTC did.
    videoState: stream.state,
    rtcState: stream.pc?.connectionState ?? null,
    videoPictures: codeStats.pictures,
  };
  stillLog.push(0, stillShown.frame, now, transport.anchorTime, version);
}

function hideStill(now) {
  if (!stillShown) return;
  stillLog.push(1, stillShown.frame, now, handoverAtUs, stillShown.version);
  stillLayer.hide();
  stillCache.pin(null);
  stillShown = null;
  handoverAtUs = null;
}

const codeCanvas = document.createElement('canvas');
let codeCtx = null;
// Whether WebCodecs can hand us the decoder's own planes; false once it
// could not, and the canvas does the work from then on.
let planesUsable = typeof VideoFrame === 'function';
const LUMA_FIRST = new Set(['I420', 'I420A', 'I422', 'I444', 'NV12']);

/** The reading was of another picture than the one asked about. */
const MOVED_ON = Symbol('moved on');

/**
 * The code from the decoded picture itself: a VideoFrame of the element's
 * current picture, of which only the strip's rows are copied (no colour
 * conversion, no full-picture draw). The frame is taken synchronously, so
 * it is the picture on screen at the call even though the copy resolves
 * later. Resolves undefined when this picture's format is not planar YUV,
 * and MOVED_ON when `mediaTimeUs` is given and the element's picture is
 * no longer that one (a busy main thread can run a video-frame callback
 * after the next picture has arrived).
 */
function readCodeFromPlanes(w, h, mediaTimeUs) {
  const frame = new VideoFrame(video);
  try {
    if (!LUMA_FIRST.has(frame.format) || frame.visibleRect.width !== w || frame.visibleRect.height !== h) {
      frame.close();
      return Promise.resolve(undefined);
    }
    if (mediaTimeUs != null && Math.abs(frame.timestamp - mediaTimeUs) > 1000) {
      frame.close();
      codeStats.movedOn += 1;
      return Promise.resolve(MOVED_ON);
    }
    // Chroma is subsampled by two, so the copied rect starts on an even row.
    const { y } = stripRect(w, h);
    const top = y - (y % 2);
    const rect = { x: frame.visibleRect.x, y: frame.visibleRect.y + top, width: w, height: h - top };
    const buffer = new Uint8Array(frame.allocationSize({ rect }));
    return frame.copyTo(buffer, { rect })
      .then((planes) => readLuma(buffer.subarray(planes[0].offset), {
        width: w, height: h, stride: planes[0].stride, firstRow: top,
      }))
      .finally(() => frame.close());
  } catch (err) {
    frame.close();
    return Promise.reject(err);
  }
}

/** The code by drawing the strip (or, with `whole`, the picture) onto a canvas. */
function readCodeFromCanvas(w, h, whole, source = video) {
  const r = whole ? { x: 0, y: 0, width: w, height: h } : stripRect(w, h);
  if (codeCanvas.width !== r.width || codeCanvas.height !== r.height) {
    codeCanvas.width = r.width;
    codeCanvas.height = r.height;
  }
  codeCtx ??= codeCanvas.getContext('2d', { willReadFrequently: true, alpha: false });
  codeCtx.drawImage(source, r.x, r.y, r.width, r.height, 0, 0, r.width, r.height);
  const pixels = codeCtx.getImageData(0, 0, r.width, r.height);
  return readRgba(pixels.data, r.width, r.height, { strip: !whole });
}

/**
 * Reads the frame code off the picture the video element shows now.
 * Resolves the frame number, or null when there is no picture or no
 * readable code. `via`: 'auto' (planes when the browser can, else canvas),
 * 'planes', or 'canvas'; `whole` draws the whole picture on the canvas
 * path (video.videoWidth × videoHeight) instead of the strip alone.
 */
async function readVideoFrameCode({ via = 'auto', whole = false } = {}, mediaTimeUs = null) {
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (!w || !h || video.readyState < 2) return null;
  if (via === 'planes' || (via === 'auto' && planesUsable && !whole)) {
    try {
      const code = await readCodeFromPlanes(w, h, mediaTimeUs);
      if (code === MOVED_ON) return null;
      if (code !== undefined) return code;
    } catch {
      // Fall through to the canvas.
    }
    if (via === 'planes') return null;
    planesUsable = false;
  }
  return readCodeFromCanvas(w, h, whole);
}

/** Called for every picture the video element presents. */
function onVideoFrame(nowMs, meta) {
  video.requestVideoFrameCallback(onVideoFrame);
  if (!media) return;
  stream.noteFrame();
  const offsetUs = clock.estimator.offsetUs();
  if (offsetUs == null || !room.joined || meta.rtpTimestamp == null) return;
  const serverNow = clientNowUs() + offsetUs;
  const madeUs = rtpToServerUs(meta.rtpTimestamp, serverNow, media.rtpClockRate);
  const shownMs = meta.expectedDisplayTime ?? meta.presentationTime ?? nowMs;
  const shownUs = Math.round(shownMs * 1000) + offsetUs;
  const madeUnder = history.entryAt(madeUs);
  // A picture of the entry before a cue, shown after it: its frame is on
  // another timeline, so it is neither labelled nor reported.
  if (!madeUnder || madeUnder.version < room.entryVersion) return;
  const made = madeUnder.transport;
  const frame = position(made, room.timeline, madeUs);
  const latencyUs = shownUs - madeUs;
  // The first picture of a play after the still: the stream takes over
  // when it is lit (it shows the paused frame or the one after it).
  if (stillShown && handoverAtUs == null && made.playing && madeUnder.version > stillShown.version) handoverAtUs = shownUs;

  const receivedUs = meta.receiveTime == null ? null : Math.round(meta.receiveTime * 1000) + offsetUs;
  const row = videoLog.push(shownUs, frame, null, latencyUs, madeUs, receivedUs);
  latencies.push(latencyUs);
  if (made.playing) playLatencies.push(latencyUs);
  if (receivedUs != null) transits.push(receivedUs - madeUs);
  const mediaTimeUs = meta.mediaTime == null ? null : Math.round(meta.mediaTime * 1e6);
  // The picture before stays on screen until this one's display time.
  const before = videoShown && { frame: videoShown.frame, atUs: videoShown.atUs };
  const shown = { frame, atUs: shownUs, latencyUs, code: null, before };
  videoShown = shown;
  const roomFrame = history.frameAt(room.timeline, shownUs);
  const typical = latencies.median() ?? latencyUs;
  ui.showVideoFrame(frame, room.format.label(frame), offsetLabel(roomFrame == null ? null : roomFrame - frame, typical / 1000));

  codeStats.pictures += 1;
  if (codeStats.every > 0 && codeStats.pictures % codeStats.every === 0) {
    const t0 = performance.now();
    // Only the planes path can tell whether the picture is still this one;
    // the canvas path is kept for browsers without WebCodecs.
    readVideoFrameCode({}, mediaTimeUs).then((code) => {
      const spent = performance.now() - t0;
      codeStats.reads += 1;
      codeStats.totalMs += spent;
      codeStats.maxMs = Math.max(codeStats.maxMs, spent);
      codeStats.via = planesUsable ? 'planes' : 'canvas';
      if (codeStats.auto && codeStats.reads >= 24 && codeStats.totalMs / codeStats.reads > CODE_READ_BUDGET_MS) {
        codeStats.every = 4;
      }
      if (code == null) return;
      codeStats.readable += 1;
      if (code !== frame) codeStats.mismatches += 1;
      videoLog.set(row, 2, code);
      shown.code = code;
    }, () => {});
  }
}

/**
 * Playout equalisation, once per report tick: show pictures at the room's
 * target latency (see playout.js), by the browser's playout delay.
 */
function equalise(now) {
  if (!media || stream.state !== 'playing' || equaliser.fixed) return;
  if (playLatencies.length) equaliser.ownMs = playLatencies.median() / 1000;
  equaliser.targetMs = roomTargetMs([...room.participants.values()], room.you, now, equaliseConfig);
  const transit = transits.median();
  if (transit == null || transits.length < TRANSIT_MIN_SAMPLES) return;
  equaliser.transitMs = transit / 1000;
  if (restartIfHeld(now)) return;
  const next = delayForTargetMs(equaliser.targetMs, equaliser.transitMs, equaliser.delayMs, equaliseConfig);
  if (next === equaliser.delayMs) return;
  equaliser.delayMs = next;
  equaliser.changedAt = performance.now();
  equaliser.steps.push([Math.round(now / 1000), Math.round(equaliser.transitMs), Math.round(equaliser.targetMs), next]);
  if (equaliser.steps.length > 40) equaliser.steps.shift();
  stream.setDelayMs(next);
}

/**
 * Restarts the stream when this browser holds pictures far longer than
 * the delay set and the transit explain (see HoldWatch): a fresh receiver
 * comes back to the room's latency, a held one would lag it for long.
 */
function restartIfHeld(now) {
  if (playLatencies.length < REPORT_MIN_SAMPLES) return false;
  const restart = holdWatch.update(performance.now(), {
    playing: Boolean(room.schedule.at(now)?.playing),
    latencyMs: equaliser.ownMs,
    transitMs: equaliser.transitMs,
    delayMs: equaliser.delayMs,
  });
  if (!restart) return false;
  equaliser.holdRestarts = holdWatch.restarts;
  latencies.clear();
  playLatencies.clear();
  transits.clear();
  equaliser.ownMs = null;
  stream.start(media);
  return true;
}

/**
 * How late this page shows pictures (µs), for what the readouts show: the
 * median of its playing pictures (paused stills are timed differently),
 * else the room's target, which the playout delay aims at. Null without
 * a picture (no media, or the stream failed): then the page shows the
 * playhead.
 */
function displayLatencyUs() {
  if (!media || stream.state === 'failed' || stream.state === 'none') return null;
  if (playLatencies.length >= REPORT_MIN_SAMPLES) return playLatencies.median();
  return (equaliser.targetMs ?? equaliseConfig.minTargetMs) * 1000;
}

/** The latency to report: of playing pictures when we have them (that is what equalisation compares). */
function typicalLatencyUs() {
  if (playLatencies.length >= REPORT_MIN_SAMPLES) return playLatencies.median();
  if (equaliser.ownMs != null) return equaliser.ownMs * 1000;
  return latencies.median();
}

/** The picture's one state (states.js): the connection's, else the stream's, else the transport's. */
function renderPictureState() {
  const now = clock.serverNowUs();
  const transport = drawnTransport ?? room.schedule?.current ?? null;
  ui.showPictureState(pictureState({
    connection: connState,
    unreachable: connection.unreachable,
    transport,
    frame: displayed?.frame,
    lastFrame: room.session ? room.session.durationFrames - 1 : null,
    video: media ? stream.state : null,
    // Playing, yet no new picture: the stream has stalled under the still-running clock.
    stalled: Boolean(media && transport?.playing && !stillShown && videoShown && now != null
      && now - videoShown.atUs > STALE_VIDEO_US),
  }));
}

function paint() {
  requestAnimationFrame(paint);
  renderPictureState();
  const now = clock.serverNowUs();
  if (now == null || !room.joined) return;
  const nowMs = performance.now();
  if (authoring) sendStrokePart(nowMs, authoring.stroke.progress());
  if (liveStrokes.expire(nowMs)) drawRevision += 1;
  if (room.advance(now)) onEntryChanged();
  const transport = room.schedule.at(now);
  if (!transport) return;
  // The still due now, before the readouts, so that they name it.
  updateStills(now, transport);
  // What the picture shows now, and every readout with it: the still's
  // frame while one is up (it may wait for its still a moment after a
  // far seek), else the rule of displayedTransport.
  const shown = displayedTransport(history, now, displayLatencyUs(), transport, room.entryVersion);
  const frame = stillShown ? stillShown.frame : position(shown.transport, room.timeline, shown.atUs);
  const timecode = room.format.label(frame);
  ui.showFrame(frame, timecode);
  timeline.showFrame(frame);
  displayed = { frame, timecode, atUs: now };
  frameLog.push(now, frame, Math.round((performance.timeOrigin + performance.now()) * 1000));
  if (shown.transport !== drawnTransport) {
    drawnTransport = shown.transport;
    ui.renderTransport(shown.transport, room);
  }
  updateOverlay(transport);
}

function reportFrame() {
  const now = clock.serverNowUs();
  reportTicks += 1;
  if (!connection.live || now == null) return;
  equalise(now);
  if (media && stillShown) {
    // The still on screen now, with the latency this page plays at (for equalisation).
    const latency = typicalLatencyUs() ?? videoShown?.latencyUs;
    const msg = { type: 'frameReport', frame: stillShown.frame, atUs: Math.round(now) };
    if (latency != null) msg.latencyUs = Math.round(latency);
    equaliser.reportedUs = msg.latencyUs ?? null;
    send(msg);
    return;
  }
  if (media && videoShown && now - videoShown.atUs <= STALE_VIDEO_US) {
    // The picture on screen, when it was shown, and how late we typically are.
    const latency = typicalLatencyUs() ?? videoShown.latencyUs;
    equaliser.reportedUs = Math.round(latency);
    send({
      type: 'frameReport', frame: videoShown.frame, atUs: Math.round(videoShown.atUs), latencyUs: Math.round(latency),
    });
    return;
  }
  if (reportTicks % 2 !== 0) return;
  if (!displayed || now - displayed.atUs > STALE_DISPLAY_US) return;
  send({ type: 'frameReport', frame: displayed.frame, atUs: Math.round(displayed.atUs) });
}

/** A driving command, with its still fetched at the key press when the frame it lands on is known here. */
function drive(msg) {
  foreseeCommand(msg);
  return commands.drive(msg);
}

const pictureOverlay = new PictureOverlay(document.getElementById('monitor'), document.getElementById('overlay-toggle'));
// Speed, and this viewer's own zoom, guides, full screen and volume.
const player = new PlayerControls({
  app: document.getElementById('app'),
  monitor: document.getElementById('monitor'),
  layers: ['video', 'still-layer', 'peek-still'].map((id) => document.getElementById(id)),
  video,
  overlay,
  maskCanvas: document.getElementById('mask-layer'),
  container: document.getElementById('player-controls'),
  sound: document.getElementById('sound'),
  drive,
  transport: () => room.schedule.newest(),
  onUnmute: () => ui.setSound(true),
  notify: (kind, text) => ui.notify(kind, text),
});

const actions = {
  backToRoom() {
    endPeek();
  },
  toggleOverlay: () => pictureOverlay.toggle(),
  ...player.actions,
  playPause() {
    const t = room.schedule.newest();
    drive({ type: t?.playing ? 'pause' : 'play' });
  },
  pause: () => drive({ type: 'pause' }),
  shuttle(dir, half) {
    const speed = half && dir > 0 ? 0.5 : nextShuttleSpeed(room.schedule.newest(), dir);
    drive({ type: 'shuttle', speed });
  },
  step: (frames) => drive({ type: 'step', frames }),
  // Marks go where the user sees the picture (`shown`), not where the
  // server's playhead will be by the time the message lands.
  loopIn: () => actions.mark('in'),
  loopOut: () => actions.mark('out'),
  // I/O mark the next note's range for whoever writes notes, and the
  // room's loop for the driver; G (Avid's) or Clear drops both.
  mark(which) {
    const frame = shownFrame();
    if (room.canDrive() && frame != null) markRange(setMark(noteMarks, which, frame));
    if (room.isDriver() || !room.canDrive()) drive({ type: which === 'in' ? 'loopIn' : 'loopOut' });
  },
  clearLoop() {
    markRange({});
    if (room.isDriver() || !room.canDrive()) drive({ type: 'clearLoop' });
  },
  clearMarks: () => actions.clearLoop(),
  home: () => drive({ type: 'seek', frame: 0 }),
  end: () => room.session && drive({ type: 'seek', frame: room.session.durationFrames - 1 }),
};

function bindControls() {
  const on = (id, fn) => document.getElementById(id).addEventListener('click', fn);
  on('home', actions.home);
  on('step-back', () => actions.step(-1));
  on('reverse', () => actions.shuttle(-1, false));
  on('play', actions.playPause);
  on('forward', () => actions.shuttle(1, false));
  on('step-fwd', () => actions.step(1));
  on('end', actions.end);
  on('loop-in', actions.loopIn);
  on('loop-out', actions.loopOut);
  on('loop-clear', actions.clearLoop);
  on('note-range-clear', actions.clearLoop);
  on('request-control', () => commands.control({ type: 'requestControl' }));
  on('take-control', () => commands.control({ type: 'takeControl' }));
  on('release-control', () => commands.control({ type: 'releaseControl' }));
  on('withdraw-control', () => commands.control({ type: 'withdrawControl' }));
  on('sound', () => {
    // A click is the gesture browsers want before they play sound.
    video.muted = !video.muted;
    soundOff = video.muted;
    if (!video.muted) video.play?.().catch(() => {});
    ui.setSound(!video.muted);
  });
  on('retry', () => connection.start());
  on('you', () => ui.showJoin(name, (chosen) => {
    if (chosen === name) return;
    // A name is given in the hello only: the page joins again under the
    // new one, as a new participant (the old one leaves at once rather
    // than lingering as away).
    localStorage.setItem(NAME_KEY, chosen);
    send({ type: 'leave' });
    dropResume();
    connection.stop('idle', 'renamed');
    location.reload();
  }));
  on('fatal-retry', () => connection.start());
  on('leave', () => {
    stream.stop();
    send({ type: 'leave' });
    dropResume();
    connection.stop('idle', 'left the session');
    ui.notify('info', 'You left the session. Reload the page to join again.');
  });
  document.getElementById('requests').addEventListener('click', (ev) => {
    const button = ev.target.closest('button');
    const row = ev.target.closest('li');
    if (!button || !row) return;
    const participant = Number(row.dataset.id);
    const type = button.classList.contains('grant') ? 'grantControl' : 'denyControl';
    commands.control({ type, participant });
  });

  const tcForm = document.getElementById('tc-form');
  const tcInput = document.getElementById('tc-input');
  document.getElementById('tc-hint').textContent = GOTO_HINT;
  tcForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!room.session) return;
    const place = parseGoto(tcInput.value, {
      format: room.format, duration: room.session.durationFrames, current: shownFrame(),
    });
    if (!place) return;
    ui.refuseGoto(place.error ?? null);
    if (place.error) return;
    drive({ type: 'seek', frame: place.frame });
    // Hand the keyboard back to the shortcuts.
    tcInput.blur();
  });
  tcInput.addEventListener('input', () => ui.refuseGoto(null));

  const scrubber = ui.scrubber;
  const endScrub = () => { ui.scrubbing = false; };
  scrubber.addEventListener('pointerdown', () => { ui.scrubbing = true; });
  scrubber.addEventListener('pointerup', endScrub);
  scrubber.addEventListener('pointercancel', endScrub);
  scrubber.addEventListener('input', () => drive({ type: 'seek', frame: Number(scrubber.value) }));
  scrubber.addEventListener('change', () => {
    drive({ type: 'seek', frame: Number(scrubber.value) });
    endScrub();
  });

  const noteForm = document.getElementById('note-form');
  const noteInput = document.getElementById('note-input');
  noteForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (!addNote(noteInput.value)) return;
    noteInput.value = '';
    // Hand the keyboard back to the shortcuts.
    noteInput.blur();
  });
  const onNoteClick = (ev) => {
    const action = ev.target.closest('button[data-action]');
    if (action) {
      noteAction(action.dataset.action, Number(action.closest('li[data-id]').dataset.id));
      return;
    }
    // Typing a reply is not asking to go to the note.
    if (ev.target.closest('form')) return;
    const target = ev.target.closest('[data-id]');
    if (target) openNote(Number(target.dataset.id));
  };
  document.getElementById('exports').addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-format]');
    if (button) record.export(button.dataset.format);
  });
  document.getElementById('playlist-exports').addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-format]');
    if (button) record.export(button.dataset.format, true);
  });
  document.getElementById('end-review').addEventListener('click', () => record.end());
  on('peek-back', endPeek);
  document.getElementById('playlist').addEventListener('click', (ev) => {
    const cue = ev.target.closest('button[data-entry]');
    if (cue) cueEntry(Number(cue.dataset.entry));
  });
  const notesList = document.getElementById('notes');
  notesList.addEventListener('click', onNoteClick);
  document.getElementById('note-marks').addEventListener('click', onNoteClick);
  notesList.addEventListener('submit', (ev) => {
    if (ev.target.id !== 'reply-form') return;
    ev.preventDefault();
    addReply(document.getElementById('reply-input').value);
  });
  notesList.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Escape' || ev.target.id !== 'reply-input') return;
    replyingTo = null;
    renderNotes();
  });

  on('approve', () => decide('approved'));
  on('request-changes', () => decide('changesRequested'));

  const arm = (tool) => {
    drawTool = tool;
    overlay.arm(drawTool, drawColour);
  };
  document.getElementById('draw-bar').addEventListener('click', (ev) => {
    const tool = ev.target.closest('.tool');
    if (tool) {
      // The armed tool's button puts it down again.
      arm(drawTool === tool.dataset.tool ? null : tool.dataset.tool);
      return;
    }
    const swatch = ev.target.closest('.swatch');
    if (!swatch) return;
    drawColour = swatch.dataset.colour;
    // Picking a colour means drawing with it.
    arm(drawTool == null || drawTool === 'eraser' ? 'pen' : drawTool);
  });
  document.getElementById('colour-custom').addEventListener('input', (ev) => {
    drawColour = ev.target.value;
    arm(drawTool == null || drawTool === 'eraser' ? 'pen' : drawTool);
  });

  bindKeys(document, actions);
}

function join(chosen) {
  name = chosen;
  localStorage.setItem(NAME_KEY, name);
  ui.showYou(name);
  connection.start();
  requestAnimationFrame(paint);
  if ('requestVideoFrameCallback' in video) video.requestVideoFrameCallback(onVideoFrame);
  setInterval(reportFrame, REPORT_TICK_MS);
}

// Views for tests and for poking at a live room from devtools (plus two
// knobs for experiments: frame-code reading and a pinned playout delay).
const copy = (v) => (v == null ? v : JSON.parse(JSON.stringify(v)));
window.syncreel = Object.freeze({
  serverNowUs: () => clock.serverNowUs(),
  state: () => copy({
    session: room.session,
    transport: room.schedule.current,
    transportVersion: room.schedule.currentVersion,
    pending: room.schedule.pending.length,
    version: room.version,
    you: room.you,
    role: room.role,
    driver: room.control.driver,
    requests: room.control.requests,
    participants: [...room.participants.values()],
    counts: room.counts,
    connection: connState,
    room: roomKind,
    endedAt,
    entry: room.entry,
    mediaVersion: room.mediaVersion,
    sync: clock.status(),
    peek: peek && { frame: peek.frame, still: peek.still != null },
  }),
  displayed: () => (displayed ? { frame: displayed.frame, timecode: displayed.timecode } : null),
  /** The server instant the readouts were last painted at, or null. */
  displayedAtUs: () => displayed?.atUs ?? null,
  get frameLog() {
    return frameLog.toArray();
  },
  /** [shownServerUs, frame, frameCode|null, latencyUs, madeServerUs, receivedServerUs|null] per video picture. */
  get videoLog() {
    return videoLog.toArray();
  },
  readVideoFrameCode,
  compare: () => copy(room.compare),
  /** The frame codes of a side-by-side picture's halves: { a, b }, or null. */
  readCompareHalves: () => compareView.readHalves(halvesCanvas),
  /** The frame the author is looking at (the picture on screen, or a look of their own): what notes pin to and commands carry. */
  seen: () => shownFrame(),
  /** This viewer's view of the picture: zoom ({zoom, cx, cy}), the zoomed picture's rectangle, masks, volume, full screen. */
  player: () => copy(player.snapshot()),
  /** The frame code on the still of this page's own look at a frame, or null without one. */
  readPeekFrameCode() {
    const still = document.getElementById('peek-still');
    if (!peek?.still || !still.complete || !still.naturalWidth) return null;
    return readCodeFromCanvas(still.naturalWidth, still.naturalHeight, false, still);
  },
  /**
   * The still on screen (null while the stream's picture shows): its
   * frame, version checksum, size, the transport version and execute-at
   * it belongs to, when it was drawn (server µs), the stream's state then
   * (`videoState`, `rtcState`, `videoPictures` presented so far), and where
   * the layer drew it (`dest`, canvas pixels; `exact`: 1:1).
   */
  still: () => stillShown && copy({ ...stillShown, visible: stillLayer.shown, dest: stillLayer.dest }),
  /** [event (0 drawn, 1 hidden), frame, atUs, executeAtUs or the handover picture's instant, transport version] per change of the still layer. */
  get stillLog() {
    return stillLog.toArray();
  },
  /** The still cache: entries ({key, frame, width, state, bytes}), what is wanted in order, bounds, load times (ms). */
  stillCache: () => copy(stillCache.snapshot()),
  timelineStills: () => copy(timeline.stills.snapshot()),
  /** The frame code read off the still layer's own pixels, or null with no still up. */
  readStillFrameCode() {
    const px = stillLayer.pixels({ strip: stripRect });
    return px && readRgba(px.data.data, px.width, px.height, { strip: true });
  },
  /**
   * The still's pixels as RGB, base64: `from: 'bitmap'` the decoded still
   * at its natural size (drawn on a canvas of that size), `'layer'` what
   * the layer shows of it (its drawn rectangle). Null without a still.
   */
  readStillPixels({ from = 'bitmap' } = {}) {
    let img;
    if (from === 'layer') {
      img = stillLayer.pixels()?.data;
    } else if (stillLayer.bitmap) {
      const b = stillLayer.bitmap;
      const c = document.createElement('canvas');
      c.width = b.width;
      c.height = b.height;
      const ctx = c.getContext('2d', { willReadFrequently: true });
      ctx.drawImage(b, 0, 0);
      img = ctx.getImageData(0, 0, b.width, b.height);
    }
    if (!img) return null;
    const rgb = new Uint8Array(img.width * img.height * 3);
    for (let i = 0, j = 0; i < img.data.length; i += 4, j += 3) {
      rgb[j] = img.data[i];
      rgb[j + 1] = img.data[i + 1];
      rgb[j + 2] = img.data[i + 2];
    }
    let bin = '';
    for (let i = 0; i < rgb.length; i += 0x8000) bin += String.fromCharCode(...rgb.subarray(i, i + 0x8000));
    return { width: img.width, height: img.height, rgb: btoa(bin) };
  },
  /** Drives as a key or a click does (paced, carrying `shown`, its still foreseen); for benches. */
  drive: (msg) => drive(msg),
  /** Holds this page's WebRTC start back (tests: a joiner whose stream is not up yet); false starts it. */
  holdStream(on) {
    streamHeld = Boolean(on);
    if (!streamHeld && heldMedia) {
      const held = heldMedia;
      heldMedia = null;
      if (media === held) stream.start(held);
    }
  },
  /** Makes this page's receiver hold pictures `ms` longer than asked, as a browser may after stalls (tests). */
  holdPicturesLonger(ms) {
    stream.holdLonger(ms);
  },
  /** Read the frame code on every `n`th picture (0: never); stops the automatic throttle. */
  setFrameCodeEvery(n) {
    codeStats.every = Math.max(0, Math.floor(n));
    codeStats.auto = false;
  },
  video: () => copy({
    media,
    state: stream.state,
    detail: stream.detail,
    starts: stream.starts,
    width: video.videoWidth,
    height: video.videoHeight,
    shown: videoShown,
    latencyMedianUs: latencies.median(),
    playLatencyMedianUs: playLatencies.median(),
    equaliser,
    appliedDelayMs: stream.receiver?.jitterBufferTarget ?? null,
    appliedAudioDelayMs: stream.audioReceiver?.jitterBufferTarget ?? null,
    muted: video.muted,
    codeStats,
    frameMaps: frameMaps.length,
  }),
  frameMaps: () => copy(frameMaps),
  /** Overrides equalisation constants (see EQUALISE in playout.js). For experiments. */
  setEqualiser(overrides) {
    equaliseConfig = Object.freeze({ ...EQUALISE, ...overrides });
  },
  /** Pins the playout delay (ms) and stops equalising; null resumes. For experiments and tests. */
  setPlayoutDelayMs(ms) {
    equaliser.fixed = ms != null;
    equaliser.delayMs = ms ?? 0;
    stream.setDelayMs(equaliser.delayMs);
  },
  videoStats: () => stream.inboundStats().then(copy),
  audioStats: () => stream.inboundStats('audio').then(copy),
  sent: () => ({ ...connection.sentCounts }),
  errors: () => errors.map((e) => ({ ...e })),
  /** The room's notes, by frame then id. */
  notes: () => copy(notes.all()),
  /** Keys of this author's writes not yet acknowledged (notes, replies, drawings, decisions…), oldest first. */
  outbox: () => outbox.pending().map((m) => m.key),
  /** The room's drawings that are not erased, by frame then id. */
  drawings: () => copy(drawings.all()),
  /** Others' strokes still being drawn, oldest first: who, its key, where, and how many points have come. */
  liveStrokes: () => liveStrokes.all().map((s) => ({
    by: s.by, key: s.key, frame: s.frame, versionId: s.versionId, tool: s.tool, colour: s.colour,
    pointCount: s.points.length,
  })),
  /**
   * What the drawing overlay shows: the frame (null in play), the shapes
   * on it ({id, key, pending, live}: `live` for another's stroke still
   * being drawn), the tool, whether drawing is possible now
   * and why not, and the picture's rectangle in the canvas (CSS px).
   */
  overlay: () => copy({
    frame: overlay.frame,
    shown: overlay.shapes.map((s) => ({
      id: s.drawing.id ?? null, key: s.drawing.key, pending: s.pending, live: Boolean(s.live),
    })),
    tool: drawTool,
    colour: drawColour,
    enabled: drawState.enabled,
    reason: drawState.reason,
    picture: overlay.picture(),
    canvas: { width: overlay.canvas.width, height: overlay.canvas.height, cssWidth: overlay.cssWidth, cssHeight: overlay.cssHeight },
  }),
  /** Every decision on the version, oldest first. */
  approvals: () => copy(approvals.all()),
  /** The decision standing for each author, newest first. */
  decisions: () => copy(approvals.current()),
});

bindControls();
if (!link.token) {
  ui.showNoLink();
} else {
  // The name is this browser's: asked once, then used on every link and reload.
  const remembered = localStorage.getItem(NAME_KEY)?.trim();
  if (remembered) join(remembered);
  else ui.showJoin('', join);
}
