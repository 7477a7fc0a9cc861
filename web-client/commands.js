// Outgoing driving commands, paced. The server allows about 30 messages a
// second and answers excess with `rate_limited`; a held arrow key or a
// dragged scrubber would blow through that. So driving commands leave at
// most one per MIN_GAP_MS, and while one waits, further steps add into it
// and further seeks replace it: the room lands where the hand stopped,
// with fewer messages.

const MIN_GAP_MS = 50;
const MAX_QUEUED = 8;

export class Commands {
  /** `send(msg)` → bool; `canDrive()` → bool; `refuse()` explains locally. */
  constructor({ send, canDrive, refuse }) {
    this.send = send;
    this.canDrive = canDrive;
    this.refuse = refuse;
    this.queue = [];
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
    const last = this.queue[this.queue.length - 1];
    if (last && last.type === 'step' && msg.type === 'step') {
      last.frames += msg.frames;
    } else if (last && last.type === 'seek' && msg.type === 'seek') {
      this.queue[this.queue.length - 1] = { ...msg };
    } else if (this.queue.length < MAX_QUEUED) {
      this.queue.push({ ...msg });
    }
    this.pump();
    return true;
  }

  /** Seat requests and answers are rare and go out at once. */
  control(msg) {
    return this.send(msg);
  }

  /** Forgets queued commands, e.g. when the seat moves to someone else. */
  clear() {
    this.queue = [];
    clearTimeout(this.timer);
    this.timer = null;
  }

  pump() {
    if (this.timer || !this.queue.length) return;
    const wait = this.lastSentAt + MIN_GAP_MS - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
      return;
    }
    const msg = this.queue.shift();
    // Steps that cancel out are not worth a message.
    if (!(msg.type === 'step' && msg.frames === 0)) {
      if (this.canDrive()) this.send(msg);
      this.lastSentAt = performance.now();
    }
    this.pump();
  }
}
