// Outgoing driving commands, paced. The server allows about 30 messages a
// second and answers excess with `rate_limited`; a held arrow key or a
// dragged scrubber would blow through that. So driving commands leave at
// most one per MIN_GAP_MS, and while one waits, further steps add into it
// and further seeks replace it: the room lands where the hand stopped,
// with fewer messages.
//
// Each command carries `shown`, the frame on this page's screen when the
// user acted, so that a pause or a step lands on the picture they saw and
// not on the playhead, which runs the room's display latency ahead of it.
// It is taken at the keypress, not when the paced message leaves: a step
// that waits 50 ms still counts from the frame seen. It is sent only
// while the room will still be playing when the server handles it. Once
// it is paused (or a pause, step or cue of ours is on its way) the
// server's own position is the paused frame, which is what every screen
// shows a moment later; a `shown` taken from a picture or a counter that
// has not caught up yet would undo the commands still in flight (a held
// arrow key would lose every other step).

const MIN_GAP_MS = 50;
const MAX_QUEUED = 8;
// A command whose broadcast has not come back by then was refused (or its
// answer lost): it no longer says where the room is going.
const IN_FLIGHT_MS = 1000;
// Whether the room plays after each command; commands not listed keep it.
const PLAYS_AFTER = { play: true, shuttle: true, pause: false, step: false, cue: false };

export class Commands {
  /**
   * `send(msg)` → bool; `canDrive()` → bool; `refuse()` explains locally;
   * `seen()` → the frame on screen now, or null; `playing()` → whether the
   * newest transport this page knows of plays; `now()` → ms.
   */
  constructor({
    send, canDrive, refuse, seen = () => null, playing = () => false, now = () => performance.now(),
  }) {
    this.send = send;
    this.canDrive = canDrive;
    this.refuse = refuse;
    this.seen = seen;
    this.playing = playing;
    this.now = now;
    this.queue = [];
    // Types and send times of our commands whose broadcast has not come back.
    this.inFlight = [];
    this.lastSentAt = -Infinity;
    this.timer = null;
  }

  /**
   * Queues a transport command. Refused locally when we do not hold the
   * seat: the server would refuse it too, and saying so here spends none
   * of the rate budget.
   */
  drive(msg) {
    if (!this.canDrive()) {
      this.refuse();
      return false;
    }
    const cmd = { msg: { ...msg }, shown: this.willPlay() ? this.seen() : null };
    const last = this.queue[this.queue.length - 1];
    if (last && last.msg.type === 'step' && msg.type === 'step') {
      // Steps count from the frame seen when the first was pressed.
      last.msg.frames += msg.frames;
    } else if (last && last.msg.type === 'seek' && msg.type === 'seek') {
      this.queue[this.queue.length - 1] = cmd;
    } else if (this.queue.length < MAX_QUEUED) {
      this.queue.push(cmd);
    }
    this.pump();
    return true;
  }

  /** Seat requests and answers are rare and go out at once. */
  control(msg) {
    return this.send(msg);
  }

  /** The server broadcast a transport change we asked for: the oldest of ours on its way has landed. */
  confirm() {
    this.inFlight.shift();
  }

  /**
   * Whether the room will be playing when the server handles the next
   * command: the newest transport known here, changed by ours still on
   * their way or queued.
   */
  willPlay() {
    const now = this.now();
    while (this.inFlight.length && now - this.inFlight[0].atMs > IN_FLIGHT_MS) this.inFlight.shift();
    let plays = Boolean(this.playing());
    for (const { type } of [...this.inFlight, ...this.queue.map((c) => c.msg)]) plays = PLAYS_AFTER[type] ?? plays;
    return plays;
  }

  /** Forgets queued commands, e.g. when the seat moves to someone else. */
  clear() {
    this.queue = [];
    this.inFlight = [];
    clearTimeout(this.timer);
    this.timer = null;
  }

  pump() {
    if (this.timer || !this.queue.length) return;
    const wait = this.lastSentAt + MIN_GAP_MS - this.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
      return;
    }
    const { msg: fields, shown } = this.queue.shift();
    const msg = shown == null ? fields : { ...fields, shown };
    // Steps that cancel out are not worth a message, unless the room
    // plays: then they still stop it on the frame seen.
    if (!(msg.type === 'step' && msg.frames === 0 && shown == null)) {
      if (this.canDrive() && this.send(msg) !== false) this.inFlight.push({ type: msg.type, atMs: this.now() });
      this.lastSentAt = this.now();
    }
    this.pump();
  }
}
