// Wires the page together: the link in the URL, the name prompt, one
// connection, the clock, the room state and the display loop. The display
// is a function of (transport, server clock) evaluated on every animation
// frame, so playback moves smoothly without any message from the server;
// messages only ever change the anchor.

import { ClockSync } from './clock-sync.js';
import { Commands } from './commands.js';
import { Connection } from './connection.js';
import { bindKeys, nextShuttleSpeed } from './keys.js';
import { Room } from './room.js';
import { position } from './transport.js';
import { Ui } from './ui.js';

const PROTOCOL = 1;
const NAME_KEY = 'syncreel.name';
const RESUME_PREFIX = 'syncreel.resume.';
const FRAME_LOG_SIZE = 2000;
const FRAME_REPORT_MS = 1000;
// A frame report about a display the tab stopped painting would mislead.
const STALE_DISPLAY_US = 2_000_000;
const REFUSAL_TOAST_GAP_MS = 2000;

/** The last N painted frames as [serverTimeUs, frame, wallClockUs]. */
class FrameLog {
  constructor(size) {
    this.size = size;
    this.data = new Float64Array(size * 3);
    this.count = 0;
  }

  push(serverUs, frame, wallUs) {
    const i = (this.count % this.size) * 3;
    this.data[i] = serverUs;
    this.data[i + 1] = frame;
    this.data[i + 2] = wallUs;
    this.count += 1;
  }

  toArray() {
    const n = Math.min(this.count, this.size);
    const out = new Array(n);
    for (let k = 0; k < n; k++) {
      const i = ((this.count - n + k) % this.size) * 3;
      out[k] = [this.data[i], this.data[i + 1], this.data[i + 2]];
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
const frameLog = new FrameLog(FRAME_LOG_SIZE);
const errors = [];
let name = null;
let connState = 'idle';
let displayed = null;
let drawnTransportVersion = null;
let lastRefusalToast = -Infinity;

// The resume secret lives per tab (sessionStorage) so that a reload keeps
// the identity and the driver's seat, but a second tab is a second person.
const resumeKey = () => RESUME_PREFIX + (link.sessionId ?? room.session?.id ?? 'default');
const loadResume = () => sessionStorage.getItem(resumeKey());
const saveResume = (secret) => sessionStorage.setItem(resumeKey(), secret);
const dropResume = () => sessionStorage.removeItem(resumeKey());

const send = (msg) => connection.send(msg);

const clock = new ClockSync(send);

const connection = new Connection({
  url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`,
  hello() {
    const msg = { type: 'hello', protocol: PROTOCOL, token: link.token, name };
    const resume = loadResume();
    if (resume) msg.resume = resume;
    return msg;
  },
  onResumeFailed: dropResume,
  onMessage,
  onState(state, detail) {
    connState = state;
    ui.setConnection(state, detail);
    if (state !== 'live') clock.stop();
  },
});

const commands = new Commands({
  send,
  canDrive: () => connection.live && room.isDriver(),
  refuse() {
    const now = performance.now();
    if (now - lastRefusalToast < REFUSAL_TOAST_GAP_MS) return;
    lastRefusalToast = now;
    const why = !connection.live
      ? 'Not connected: commands resume once the connection is back.'
      : room.canDrive()
        ? 'Only the driver controls playback. Request control first.'
        : 'Viewers watch along; they cannot drive playback.';
    ui.toast('info', 'not_driver', why);
  },
});

function onMessage(msg) {
  switch (msg.type) {
    case 'pong':
      clock.onPong(msg);
      return;
    case 'error':
    case 'goodbye':
      errors.push({ code: msg.code, message: msg.message, ref: msg.ref ?? null, type: msg.type });
      if (errors.length > 50) errors.shift();
      ui.toast('error', msg.code, msg.message);
      return;
    default:
      break;
  }
  const changed = room.apply(msg);
  if (msg.type === 'welcome') {
    // After apply: at `/` the storage key comes from the welcome's session.
    saveResume(msg.resume);
    clock.onWelcome(msg.serverTime);
  }
  if (!changed) return;
  if (changed === 'all') {
    ui.showApp();
    ui.renderSession(room);
    drawnTransportVersion = null;
    commands.clear();
  }
  if (changed === 'all' || changed === 'control' || changed === 'presence') {
    ui.renderControl(room);
    ui.renderPresence(room, clock.status());
  }
  if (changed === 'control' && !room.isDriver()) commands.clear();
}

function paint() {
  requestAnimationFrame(paint);
  const now = clock.serverNowUs();
  if (now == null || !room.joined) return;
  const transport = room.schedule.at(now);
  if (!transport) return;
  const frame = position(transport, room.timeline, now);
  const timecode = room.format.label(frame);
  ui.showFrame(frame, timecode);
  displayed = { frame, timecode, atUs: now };
  frameLog.push(now, frame, Math.round((performance.timeOrigin + performance.now()) * 1000));
  if (room.schedule.currentVersion !== drawnTransportVersion) {
    drawnTransportVersion = room.schedule.currentVersion;
    ui.renderTransport(transport, room);
  }
}

function reportFrame() {
  const now = clock.serverNowUs();
  if (!connection.live || !displayed || now == null) return;
  if (now - displayed.atUs > STALE_DISPLAY_US) return;
  send({ type: 'frameReport', frame: displayed.frame, atUs: Math.round(displayed.atUs) });
}

const actions = {
  playPause() {
    const t = room.schedule.newest();
    commands.drive({ type: t?.playing ? 'pause' : 'play' });
  },
  pause: () => commands.drive({ type: 'pause' }),
  shuttle(dir, half) {
    const speed = half && dir > 0 ? 0.5 : nextShuttleSpeed(room.schedule.newest(), dir);
    commands.drive({ type: 'shuttle', speed });
  },
  step: (frames) => commands.drive({ type: 'step', frames }),
  // Marks go where the user sees the picture, not where the server's
  // playhead will be by the time the message lands.
  loopIn: () => displayed && commands.drive({ type: 'loopIn', frame: displayed.frame }),
  loopOut: () => displayed && commands.drive({ type: 'loopOut', frame: displayed.frame }),
  clearLoop: () => commands.drive({ type: 'clearLoop' }),
  home: () => commands.drive({ type: 'seek', frame: 0 }),
  end: () => room.session && commands.drive({ type: 'seek', frame: room.session.durationFrames - 1 }),
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
  on('request-control', () => commands.control({ type: 'requestControl' }));
  on('take-control', () => commands.control({ type: 'takeControl' }));
  on('release-control', () => commands.control({ type: 'releaseControl' }));
  on('retry', () => connection.start());
  on('fatal-retry', () => connection.start());
  on('leave', () => {
    send({ type: 'leave' });
    dropResume();
    connection.stop('idle', 'left the session');
    ui.toast('info', null, 'You left the session. Reload the page to join again.');
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
  tcForm.addEventListener('submit', (ev) => {
    ev.preventDefault();
    const text = tcInput.value.trim();
    if (!text) return;
    // The server parses it, so a bad label comes back as a typed error
    // that names the problem exactly as the server sees it.
    commands.drive({ type: 'seek', timecode: text });
    // Hand the keyboard back to the shortcuts.
    tcInput.blur();
  });

  const scrubber = ui.scrubber;
  const endScrub = () => { ui.scrubbing = false; };
  scrubber.addEventListener('pointerdown', () => { ui.scrubbing = true; });
  scrubber.addEventListener('pointerup', endScrub);
  scrubber.addEventListener('pointercancel', endScrub);
  scrubber.addEventListener('input', () => commands.drive({ type: 'seek', frame: Number(scrubber.value) }));
  scrubber.addEventListener('change', () => {
    commands.drive({ type: 'seek', frame: Number(scrubber.value) });
    endScrub();
  });

  bindKeys(document, actions);
}

function join(chosen) {
  name = chosen;
  localStorage.setItem(NAME_KEY, name);
  connection.start();
  requestAnimationFrame(paint);
  setInterval(reportFrame, FRAME_REPORT_MS);
}

// Read-only views for tests and for poking at a live room from devtools.
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
    sync: clock.status(),
  }),
  displayed: () => (displayed ? { frame: displayed.frame, timecode: displayed.timecode } : null),
  get frameLog() {
    return frameLog.toArray();
  },
  sent: () => ({ ...connection.sentCounts }),
  errors: () => errors.map((e) => ({ ...e })),
});

bindControls();
if (!link.token) {
  ui.showNoLink();
} else {
  ui.showJoin(localStorage.getItem(NAME_KEY), join);
}
