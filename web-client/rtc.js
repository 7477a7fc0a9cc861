// The session's video: one RTCPeerConnection, signalled over the session
// WebSocket. The server offers (so every viewer gets the same payload
// types); we answer. Candidates trickle both ways, and either side's may
// arrive before the description they belong to, so both directions are
// held until they can be used.
//
// Lifecycle: `start(media)` after every welcome of a session with media
// (the server forgets our peer when the socket drops, so a new welcome
// always means a new peer); `stop()` when the session has no media, or its
// media failed. A peer that fails while the socket is fine is restarted
// with backoff. It knows nothing of frames or clocks: main.js reads the
// picture with requestVideoFrameCallback.

const RETRY_START_MS = 1000;
const RETRY_CAP_MS = 10_000;
// A peer stuck in "disconnected" this long is treated as failed.
const DISCONNECTED_GRACE_MS = 5000;
// No picture this long after a start (no offer came, ICE never
// connected, no keyframe): start again.
const SETUP_TIMEOUT_MS = 20_000;

export class VideoLink {
  /**
   * `send(msg)` puts a message on the session socket (false if it cannot);
   * `video` is the <video> element; `onState(state, detail)` gets
   * none | connecting | playing | failed.
   */
  constructor({ send, video, onState }) {
    this.send = send;
    this.video = video;
    this.onState = onState;
    this.pc = null;
    this.receiver = null;
    this.audioReceiver = null;
    this.media = null;
    this.generation = 0;
    this.remoteCandidates = [];
    this.localCandidates = [];
    this.answered = false;
    this.retryTimer = null;
    this.graceTimer = null;
    this.setupTimer = null;
    this.attempt = 0;
    this.delayMs = 0;
    this.held = null;
    this.state = 'none';
    this.detail = '';
    this.starts = 0;
    // rtcStarts on the wire that have not been answered (by an offer, or
    // by an error naming their ref), oldest first. Each start is answered
    // by exactly one offer, in order, so an offer belongs to the oldest
    // outstanding start, and only the newest start's offer is ours.
    this.outstanding = [];
    this.nextRef = 0x7000_0000;
    this.startRef = null;
  }

  /** (Re)starts the stream of a session whose welcome carried `media`. */
  start(media) {
    this.teardown();
    this.media = media;
    this.attempt = 0;
    this.open();
  }

  /** Ends the stream for good (no media, media failed, leaving). */
  stop(detail = '', state = 'none') {
    const had = this.pc !== null;
    this.teardown();
    this.media = null;
    if (had) this.send({ type: 'rtcStop' });
    this.setState(state, detail);
  }

  open() {
    const generation = ++this.generation;
    this.starts += 1;
    if (typeof RTCPeerConnection !== 'function') {
      this.setState('failed', 'this browser cannot receive WebRTC video');
      return;
    }
    const iceServers = this.media.iceServers ?? [];
    const pc = new RTCPeerConnection({ iceServers, bundlePolicy: 'max-bundle' });
    this.pc = pc;
    this.answered = false;
    this.remoteCandidates = [];
    this.localCandidates = [];
    const current = () => this.generation === generation && this.pc === pc;

    pc.ontrack = (ev) => {
      if (!current()) return;
      // Sound and picture share one stream; the browser keeps them in
      // sync with each other, so both must be held back alike.
      if (ev.track.kind === 'audio') this.audioReceiver = ev.receiver;
      else this.receiver = ev.receiver;
      this.applyDelay();
      const stream = ev.streams[0] ?? new MediaStream([ev.track]);
      if (this.video.srcObject !== stream) this.video.srcObject = stream;
      // Muted autoplay is allowed; a refusal still leaves the element
      // ready to play on the next gesture.
      this.video.play?.().catch(() => {});
    };
    pc.onicecandidate = (ev) => {
      if (!current() || !ev.candidate || !ev.candidate.candidate) return;
      const candidate = ev.candidate.toJSON();
      if (this.answered) this.send({ type: 'rtcCandidate', candidate, ref: this.startRef });
      else this.localCandidates.push(candidate);
    };
    pc.onconnectionstatechange = () => {
      if (!current()) return;
      const s = pc.connectionState;
      clearTimeout(this.graceTimer);
      if (s === 'failed') this.fail('the video connection failed');
      else if (s === 'disconnected') {
        this.graceTimer = setTimeout(() => current() && this.fail('the video connection was lost'), DISCONNECTED_GRACE_MS);
      } else if (s === 'connected' && this.state === 'failed') this.setState('connecting');
    };
    this.setState('connecting');
    this.setupTimer = setTimeout(() => current() && this.fail('no picture arrived'), SETUP_TIMEOUT_MS);
    const ref = this.nextRef++;
    // Every step of this peer's signalling carries the start's ref, so
    // a refusal names the peer it was about.
    if (this.send({ type: 'rtcStart', ref })) {
      this.outstanding.push(ref);
      this.startRef = ref;
    } else {
      // Not joined right now: the next welcome starts us again.
      this.setState('connecting', 'waiting for the session connection');
    }
  }

  /** A new socket: starts sent on the old one will never be answered. */
  resetSignalling() {
    this.outstanding = [];
  }

  /** Handles rtcOffer / rtcCandidate; returns whether the message was ours. */
  handle(msg) {
    if (msg.type === 'rtcOffer') {
      const ref = this.outstanding.shift();
      if (ref === this.startRef && this.outstanding.length === 0) this.onOffer(msg.sdp);
      return true;
    }
    if (msg.type === 'rtcCandidate') {
      this.onRemoteCandidate(msg.candidate);
      return true;
    }
    return false;
  }

  async onOffer(sdp) {
    const pc = this.pc;
    const generation = this.generation;
    if (!pc) return;
    const current = () => this.generation === generation && this.pc === pc;
    try {
      await pc.setRemoteDescription({ type: 'offer', sdp });
      if (!current()) return;
      for (const c of this.remoteCandidates.splice(0)) await pc.addIceCandidate(c);
      const answer = await pc.createAnswer();
      if (!current()) return;
      await pc.setLocalDescription(answer);
      if (!current()) return;
      this.send({ type: 'rtcAnswer', sdp: pc.localDescription.sdp, ref: this.startRef });
      this.answered = true;
      for (const candidate of this.localCandidates.splice(0)) this.send({ type: 'rtcCandidate', candidate, ref: this.startRef });
    } catch (err) {
      if (current()) this.fail(`cannot use the server's offer: ${err.message}`);
    }
  }

  async onRemoteCandidate(candidate) {
    const pc = this.pc;
    if (!pc || !candidate) return;
    if (!pc.remoteDescription) {
      this.remoteCandidates.push(candidate);
      return;
    }
    try {
      await pc.addIceCandidate(candidate);
    } catch {
      // One unusable candidate (an address family we lack, say) is normal.
    }
  }

  /** An `error` with code `rtc` from the server: a signalling step failed. */
  onError(msg) {
    if (msg.ref != null) {
      const i = this.outstanding.indexOf(msg.ref);
      if (i >= 0) this.outstanding.splice(i, 1);
      // About a start we have since replaced: no news.
      if (msg.ref !== this.startRef) return;
    }
    if (this.pc) this.fail(msg.message || 'the server refused the video signalling');
  }

  /** The first picture arrived: the stream is up. */
  noteFrame() {
    if (this.state !== 'playing' && this.pc) {
      clearTimeout(this.setupTimer);
      this.attempt = 0;
      this.setState('playing');
    }
  }

  fail(detail) {
    this.teardown();
    this.setState('failed', detail);
    if (!this.media) return;
    const delay = Math.min(RETRY_CAP_MS, RETRY_START_MS * 2 ** this.attempt);
    this.attempt += 1;
    this.retryTimer = setTimeout(() => {
      if (this.media) this.open();
    }, delay);
  }

  teardown() {
    this.generation += 1;
    clearTimeout(this.retryTimer);
    clearTimeout(this.graceTimer);
    clearTimeout(this.setupTimer);
    if (this.pc) {
      this.pc.ontrack = null;
      this.pc.onicecandidate = null;
      this.pc.onconnectionstatechange = null;
      this.pc.close();
    }
    this.pc = null;
    this.receiver = null;
    this.audioReceiver = null;
    this.answered = false;
    this.remoteCandidates = [];
    this.localCandidates = [];
  }

  /**
   * How long the browser should hold pictures before showing them, ms
   * (playout equalisation). A hint: the browser plays at the larger of
   * this and what its jitter buffer needs.
   */
  setDelayMs(ms) {
    this.delayMs = Math.max(0, Math.round(ms));
    this.applyDelay();
  }

  applyDelay() {
    for (const r of [this.receiver, this.audioReceiver]) {
      if (!r) continue;
      const ms = this.delayMs + (this.held?.receiver === this.receiver ? this.held.ms : 0);
      if ('jitterBufferTarget' in r) r.jitterBufferTarget = ms;
      else if ('playoutDelayHint' in r) r.playoutDelayHint = ms / 1000;
    }
  }

  /**
   * For tests: makes this peer's receivers hold pictures `ms` longer than
   * the delay set, as a browser does on its own after stalls. It lives
   * and dies with these receivers, as that state does.
   */
  holdLonger(ms) {
    this.held = { receiver: this.receiver, ms };
    this.applyDelay();
  }

  /** The inbound stats the browser keeps for `kind` ('video' or 'audio'), or null. */
  async inboundStats(kind = 'video') {
    const r = kind === 'audio' ? this.audioReceiver : this.receiver;
    if (!r) return null;
    const report = await r.getStats();
    for (const s of report.values()) {
      if (s.type === 'inbound-rtp' && s.kind === kind) return s;
    }
    return null;
  }

  setState(state, detail = '') {
    if (state === this.state && detail === this.detail) return;
    this.state = state;
    this.detail = detail;
    this.onState?.(state, detail);
  }
}
