// One WebSocket to /ws, kept alive: hello on every open, exponential
// backoff between attempts, and a clear line between failures worth
// retrying (network, server restart) and refusals that retrying cannot fix
// (a revoked link). It knows the shape of hello, welcome, error and goodbye
// and nothing else; everything else goes to `onMessage` untouched.

/** Refusals of the hello itself: retrying with the same link cannot help. */
const FATAL_HELLO = new Set([
  'invalid_token', 'link_expired', 'link_revoked', 'session_not_found',
  'session_full', 'unsupported_protocol', 'forbidden',
]);

/**
 * Refusals of the hello that a person can answer: the link has a
 * passcode. The connection stops (no retry with the same hello) until
 * `start()` is called again with one.
 */
const PASSCODE_HELLO = new Set(['passcode_required', 'passcode_wrong', 'passcode_locked']);

/**
 * Goodbyes that end this tab's membership. `replaced` means another
 * connection resumed our identity (a duplicated tab, say); coming back
 * would just take it from that one again, and so on forever. `left`
 * follows our own leave.
 */
const FATAL_GOODBYE = new Set([
  'invalid_token', 'link_expired', 'link_revoked', 'session_not_found',
  'replaced', 'left',
]);

const BACKOFF_START_MS = 250;
const BACKOFF_CAP_MS = 5000;

export class Connection {
  /**
   * `hello()` builds the hello for each attempt (the resume secret may have
   * changed); `onMessage(msg)` gets every parsed server message;
   * `onState(state, detail, code)` gets connecting | live | reconnecting |
   * passcode | error (`code`: the typed refusal that ended it);
   * `onPasscode(error)` gets a hello refused for its passcode (the
   * connection has stopped: `start()` again to retry).
   */
  constructor({ url, hello, onMessage, onState, onResumeFailed, onPasscode }) {
    this.url = url;
    this.hello = hello;
    this.onMessage = onMessage;
    this.onState = onState;
    this.onResumeFailed = onResumeFailed;
    this.onPasscode = onPasscode;
    this.ws = null;
    this.attempt = 0;
    this.timer = null;
    this.welcomed = false;
    this.stopped = false;
    this.state = 'idle';
    // The last attempt could not even open a socket: the server is down or
    // out of reach, rather than a live connection having dropped.
    this.unreachable = false;
    // Messages sent, by type: lets tests prove what a client did not send.
    this.sentCounts = {};
  }

  start() {
    this.stopped = false;
    this.attempt = 0;
    clearTimeout(this.timer);
    this.open();
  }

  /** Closes for good: no reconnect. */
  stop(state = 'idle', detail = '', code = null) {
    this.stopped = true;
    clearTimeout(this.timer);
    const ws = this.ws;
    this.ws = null;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000);
    this.setState(state, detail, code);
  }

  /** Sends a message if the socket is open and joined (or it is the hello). */
  send(msg) {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    if (!this.welcomed && msg.type !== 'hello') return false;
    this.transmit(ws, msg);
    return true;
  }

  transmit(ws, msg) {
    ws.send(JSON.stringify(msg));
    this.sentCounts[msg.type] = (this.sentCounts[msg.type] ?? 0) + 1;
  }

  get live() {
    return this.welcomed && this.ws?.readyState === WebSocket.OPEN;
  }

  open() {
    this.welcomed = false;
    this.setState(this.attempt === 0 ? 'connecting' : 'reconnecting');
    const ws = new WebSocket(this.url);
    this.ws = ws;
    let opened = false;
    ws.onopen = () => {
      opened = true;
      if (this.ws === ws) this.transmit(ws, this.hello());
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      let msg;
      try {
        msg = JSON.parse(ev.data);
      } catch {
        return;
      }
      this.route(ws, msg);
    };
    ws.onclose = (ev) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.welcomed = false;
      if (this.stopped) return;
      this.unreachable = !opened;
      this.retry(ev.reason || (opened ? `closed (${ev.code})` : 'the server cannot be reached'));
    };
    // An error is always followed by close, which does the retrying.
    ws.onerror = () => {};
  }

  route(ws, msg) {
    if (msg.type === 'welcome') {
      this.welcomed = true;
      this.attempt = 0;
      this.unreachable = false;
      this.setState('live');
    } else if (msg.type === 'error' && !this.welcomed) {
      // Before the welcome, an error answers the hello.
      if (msg.code === 'resume_failed') {
        // The identity expired; join afresh at once rather than backing off.
        this.onResumeFailed?.();
        if (ws.readyState === WebSocket.OPEN) this.transmit(ws, this.hello());
        return;
      }
      if (PASSCODE_HELLO.has(msg.code)) {
        // Closed rather than held open: a person may take longer to type
        // than the server waits for a hello.
        this.stop('passcode', msg.message || msg.code);
        this.onPasscode?.(msg);
        return;
      }
      if (FATAL_HELLO.has(msg.code)) {
        this.onMessage(msg);
        this.stop('error', msg.message || msg.code, msg.code);
        return;
      }
    } else if (msg.type === 'goodbye') {
      this.onMessage(msg);
      if (FATAL_GOODBYE.has(msg.code)) this.stop('error', msg.message || msg.code, msg.code);
      // Otherwise (shutting_down) the close that follows retries.
      return;
    }
    this.onMessage(msg);
  }

  retry(reason) {
    const base = Math.min(BACKOFF_CAP_MS, BACKOFF_START_MS * 2 ** this.attempt);
    // Jitter keeps a room of clients from reconnecting in lockstep after a restart.
    const delay = Math.min(BACKOFF_CAP_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
    this.attempt += 1;
    this.setState('reconnecting', reason);
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.open(), delay);
  }

  setState(state, detail = '', code = null) {
    this.state = state;
    this.onState?.(state, detail, code);
  }
}
