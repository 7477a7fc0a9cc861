// Maps this browser's monotonic clock onto the server's with the NTP
// four-timestamp exchange over the WebSocket. Both ends use monotonic
// clocks (performance.now() here, Instant there), so the offset only moves
// when a better sample arrives, never because someone set a wall clock.
//
// Path asymmetry cannot be observed, so the offset is only known to within
// ±RTT/2: the lowest-RTT sample is the best one, and its half-RTT is the
// uncertainty we report.

/** This client's clock in integer µs. */
export const clientNowUs = () => Math.round(performance.now() * 1000);

const WINDOW = 16;
const BURST = 8;
const ROUND = 3;
const REPING_MS = 10_000;
// A ping whose pong never comes (lost across a reconnect) must not stall
// the rounds forever.
const PONG_TIMEOUT_MS = 3_000;

/**
 * The estimator alone: feed it samples, read the offset. No timers, no
 * sockets, so the selection rule is unit-tested in node.
 */
export class ClockEstimator {
  constructor() {
    this.samples = [];
    this.seedOffsetUs = null;
  }

  clear() {
    this.samples = [];
  }

  /**
   * A first guess from a welcome's `serverTime`, good to one network delay,
   * used only until a real sample arrives. The true offset is at least the
   * seed (the message spent time in flight), which is what `agreesWithSeed`
   * relies on.
   */
  seed(serverTimeUs, receivedAtUs) {
    this.seedOffsetUs = serverTimeUs - receivedAtUs;
  }

  /** Records one exchange; returns the sample. */
  add(t0, t1, t2, t3) {
    const sample = { rttUs: (t3 - t0) - (t2 - t1), offsetUs: Math.round(((t1 - t0) + (t2 - t3)) / 2) };
    this.samples.push(sample);
    if (this.samples.length > WINDOW) this.samples.shift();
    return sample;
  }

  /**
   * The samples worth believing: within 1.5 × the best RTT + 2 ms. The old
   * ones age out of the window, so a path that got slower for good is
   * relearned within 16 samples instead of being rejected forever.
   */
  accepted() {
    if (!this.samples.length) return [];
    const min = Math.min(...this.samples.map((s) => s.rttUs));
    return this.samples.filter((s) => s.rttUs <= 1.5 * min + 2000);
  }

  /** The lowest-RTT sample, or null before the first pong. */
  best() {
    let best = null;
    for (const s of this.accepted()) if (!best || s.rttUs < best.rttUs) best = s;
    return best;
  }

  offsetUs() {
    const best = this.best();
    if (best) return best.offsetUs;
    return this.seedOffsetUs;
  }

  uncertaintyUs() {
    const best = this.best();
    return best ? Math.round(Math.max(0, best.rttUs) / 2) : null;
  }

  /** Whether kept samples still describe the server a welcome came from. */
  agreesWithSeed() {
    const best = this.best();
    if (!best || this.seedOffsetUs == null) return false;
    // seed ≤ true offset ≤ seed + one-way delay (+ however long the welcome
    // queued). A false "no" costs only a few ms on the seed; a false "yes"
    // after a server restart would keep a wrong clock, so the bound is tight.
    const slack = Math.max(best.rttUs, 0) + 50_000;
    return best.offsetUs >= this.seedOffsetUs - 5000 && best.offsetUs <= this.seedOffsetUs + slack;
  }
}

/**
 * Runs the exchange on a connection: a burst of pings on join (each sent
 * when the previous pong arrives, so they never queue behind each other),
 * then a short round every ten seconds, and a syncReport after each round.
 */
export class ClockSync {
  /** `send(obj)` puts a message on the socket and returns whether it could. */
  constructor(send) {
    this.send = send;
    this.estimator = new ClockEstimator();
    this.nextId = 1;
    this.inFlight = null;
    this.left = 0;
    this.timer = null;
    this.pongTimer = null;
    this.rounds = 0;
  }

  /** The server's clock now, in µs, or null before any estimate. */
  serverNowUs() {
    const offset = this.estimator.offsetUs();
    return offset == null ? null : clientNowUs() + offset;
  }

  /** Called on every welcome; the connection is fresh and may be to a restarted server. */
  onWelcome(serverTimeUs) {
    this.estimator.seed(serverTimeUs, clientNowUs());
    if (!this.estimator.agreesWithSeed()) this.estimator.clear();
    this.stop();
    this.startRound(BURST);
  }

  stop() {
    clearTimeout(this.timer);
    clearTimeout(this.pongTimer);
    this.timer = null;
    this.inFlight = null;
    this.left = 0;
  }

  startRound(count) {
    this.left = count;
    this.pingOnce();
  }

  pingOnce() {
    const id = this.nextId++;
    const t0 = clientNowUs();
    if (!this.send({ type: 'ping', id, t0 })) return;
    this.inFlight = { id, t0 };
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => this.finishPing(), PONG_TIMEOUT_MS);
  }

  onPong(msg) {
    const t3 = clientNowUs();
    if (!this.inFlight || msg.id !== this.inFlight.id) return;
    this.estimator.add(msg.t0, msg.t1, msg.t2, t3);
    this.finishPing();
  }

  finishPing() {
    clearTimeout(this.pongTimer);
    this.inFlight = null;
    this.left -= 1;
    if (this.left > 0) {
      this.pingOnce();
      return;
    }
    this.rounds += 1;
    this.report();
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.startRound(ROUND), REPING_MS);
  }

  report() {
    const best = this.estimator.best();
    if (!best) return;
    this.send({
      type: 'syncReport',
      rttUs: Math.max(0, best.rttUs),
      offsetUs: best.offsetUs,
      uncertaintyUs: this.estimator.uncertaintyUs(),
    });
  }

  /** What the presence panel and tests show about our own sync. */
  status() {
    const best = this.estimator.best();
    return {
      rttUs: best ? best.rttUs : null,
      offsetUs: this.estimator.offsetUs(),
      uncertaintyUs: this.estimator.uncertaintyUs(),
      samples: this.estimator.samples.length,
      rounds: this.rounds,
    };
  }
}
