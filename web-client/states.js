// One word for the picture, and one for each person's sync. Before, the
// page showed the transport ("PAUSED"), the stream ("VIDEO PLAYING") and
// the socket (a small pill) side by side, and they could disagree: a
// frozen picture under "VIDEO PLAYING" while the server was gone. Here
// they are folded into a single state with a fixed order of precedence:
// the connection first (nothing else is true without it), then the
// stream, then the transport. Pure: main.js gathers the facts, ui.js
// shows the answer.

/**
 * The picture's state from:
 * - `connection`: connecting | live | reconnecting | error | idle (connection.js)
 * - `unreachable`: the last attempt could not even open a socket
 * - `transport`: the transport on screen ({playing, speed}) or null
 * - `frame`, `lastFrame`: the frame on screen and the media's last
 * - `video`: null without media, else the stream's state (connecting | playing | failed)
 * - `stalled`: playing, but no new picture for a while
 * Returns `{state, label}`; `state` is one of connecting, reconnecting,
 * unreachable, disconnected, buffering, failed, playing, reverse, paused, ended.
 */
export function pictureState({ connection, unreachable = false, transport, frame, lastFrame, video = null, stalled = false }) {
  switch (connection) {
    case 'error': return { state: 'disconnected', label: 'Disconnected' };
    case 'idle': return { state: 'disconnected', label: 'Not connected' };
    case 'connecting': return { state: 'connecting', label: 'Connecting…' };
    case 'reconnecting':
      return unreachable
        ? { state: 'unreachable', label: 'Server unreachable · retrying' }
        : { state: 'reconnecting', label: 'Reconnecting…' };
    default: break;
  }
  if (!transport) return { state: 'connecting', label: 'Connecting…' };
  const atEnd = frame != null && lastFrame != null && frame >= lastFrame;
  if (!transport.playing) return atEnd ? { state: 'ended', label: 'End of clip' } : { state: 'paused', label: 'Paused' };
  if (video === 'failed') return { state: 'failed', label: 'Video unavailable' };
  if (atEnd && transport.speed > 0) return { state: 'ended', label: 'End of clip' };
  if (video != null && (video !== 'playing' || stalled)) return { state: 'buffering', label: 'Buffering…' };
  const speed = Math.abs(transport.speed);
  const rate = speed === 1 ? '' : ` ${speed}×`;
  return transport.speed < 0 ? { state: 'reverse', label: `Reverse${rate}` } : { state: 'playing', label: `Playing${rate}` };
}

/** How many frames either way still count as in sync: a frame report is a moment old when it lands. */
export const IN_SYNC_FRAMES = 1;

/**
 * A person's sync in a word, from their presence `p` and `offsetFrames`
 * (how many frames their picture trails the room's, from their last
 * report; null when unknown). `{status, word}`; status is one of away,
 * syncing, in-sync, behind, ahead.
 */
export function personSync(p, offsetFrames) {
  if (!p.connected) return { status: 'away', word: 'away' };
  if (offsetFrames == null) {
    return p.uncertaintyUs == null ? { status: 'syncing', word: 'syncing…' } : { status: 'in-sync', word: 'in sync' };
  }
  if (Math.abs(offsetFrames) <= IN_SYNC_FRAMES) return { status: 'in-sync', word: 'in sync' };
  return offsetFrames > 0
    ? { status: 'behind', word: `behind ${offsetFrames} f` }
    : { status: 'ahead', word: `ahead ${-offsetFrames} f` };
}

/** The figures behind the word, for its title: round trip, clock uncertainty, frame, video offset. */
export function syncDetails(p, videoLabel) {
  const ms = (us) => `${(us / 1000).toFixed(us < 10_000 ? 1 : 0)} ms`;
  const parts = [
    p.rttUs == null ? 'round trip —' : `round trip ${ms(p.rttUs)}`,
    p.uncertaintyUs == null ? 'clock not synced yet' : `clock ±${ms(p.uncertaintyUs)}`,
  ];
  if (p.lastFrame != null) parts.push(`frame ${p.lastFrame}`);
  if (videoLabel) parts.push(`video ${videoLabel} (frames behind the room / how late shown)`);
  return parts.join(' · ');
}
