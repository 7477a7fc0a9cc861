// Words, not codes. The server's errors carry a code to switch on and a
// terse message for developers; a person reviewing a cut needs to know
// what happened and what to do about it. This maps every code of
// docs/protocol.md's error table (tests/messages.test.mjs reads the doc,
// so a new code without a sentence fails there), the codes of the REST
// API the page calls, and the client's own, to a sentence and, where
// there is one, the next step. It touches nothing; ui.js shows it, and
// keeps the code and the server's message for support.

/**
 * code → [what happened, what to do next (or ''), and whether the
 * server's own message names the specifics a person needs (which rates
 * clash, say), so that it is shown too].
 */
const MESSAGES = {
  // The protocol's error table.
  malformed: ['The server could not read a message from this page.', 'Reload the page; if it happens again, tell whoever runs the server.'],
  message_too_large: ['That was too much to send in one go.', 'Shorten the note or drawing and try again.'],
  rate_limited: ['Too many actions at once; the server skipped some.', 'Wait a moment, then carry on.'],
  unsupported_protocol: ['This page is older or newer than the server.', 'Reload the page to get the matching version.'],
  not_joined: ['The page acted before it had joined the room.', 'Wait for LIVE in the top bar, then try again.'],
  already_joined: ['This page tried to join the room twice.', 'Reload the page if anything looks wrong.'],
  invalid_token: ['This link is not valid: the server has no such link.', 'Check the address, or ask the host for a new link.'],
  link_expired: ['This link has expired.', 'Ask the host for a new link.'],
  link_revoked: ['The host revoked this link.', 'Ask the host for a new link if you should still be here.'],
  session_not_found: ['This review no longer exists on the server.', 'Ask the host whether it moved.'],
  session_elsewhere: ['The server running this review is not answering.', 'Reconnecting by itself; another server takes the review over within seconds.'],
  session_moved: ['The review moved to another server of this cluster.', 'Reconnecting by itself; you stay in the room.'],
  cluster_unavailable: ['This server has lost touch with the rest of the cluster.', 'Reconnecting by itself; another server takes you in.'],
  session_full: ['This review is full.', 'Try again later, or ask the host to make room.'],
  room_unavailable: ['A room of your own could not be opened for this review.', 'Try again in a minute; if it persists, tell whoever runs the server.'],
  passcode_required: ['This link needs a passcode too.', 'Ask whoever sent you the link for it.'],
  passcode_wrong: ['That passcode is not right.', 'Check it with whoever sent you the link, and type it again.'],
  passcode_locked: ['Too many wrong passcodes for this link.', 'Wait the time shown, then try again.'],
  resume_failed: ['Your previous place in the room had expired, so you joined afresh.', ''],
  shutting_down: ['The server is restarting.', 'The page reconnects by itself when it is back.'],
  replaced: ['You opened this review in another tab or window, which took over.', 'Carry on there, or reload here to take it back.'],
  left: ['You left the review.', 'Reload the page to join again.'],
  hello_timeout: ['Joining took too long and the server gave up.', 'Check your connection and reload the page.'],
  peer_timeout: ['The server stopped hearing from this page.', 'The page reconnects by itself; check your connection if it keeps happening.'],
  forbidden: ['Your role cannot do that.', 'Viewers watch along; ask the host for a reviewer link to drive or annotate.'],
  not_driver: ['Only the person driving can control playback.', 'Request control first.'],
  frame_out_of_range: ['That frame is outside the clip.', 'Pick a time between the first and the last frame.'],
  bad_timecode: ['That timecode does not exist at this frame rate.', 'Check the frames field (it must be below the frame rate) and the drop-frame labels.'],
  bad_speed: ['That playback speed is not available.', 'Use J, K and L to change speed.'],
  step_too_large: ['That step is too far to take at once.', 'Use Go to for long jumps.'],
  cannot_take_control: ['Control cannot be handed over to that person.', 'They may have left, or be a viewer who cannot drive.'],
  no_pending_request: ['You have no request for control waiting.', 'It may have been answered already.'],
  unknown_participant: ['The server no longer counts you as in the room.', 'The page reconnects by itself; reload if it does not.'],
  bad_note: ['That note could not be stored: it is empty or too long.', 'Write between 1 and 4000 characters.'],
  unknown_note: ['That note is no longer there to answer or resolve.', ''],
  bad_drawing: ['That drawing could not be stored.', 'Draw it again, a little simpler.'],
  unknown_drawing: ['That drawing is no longer there to erase.', ''],
  unknown_version: ['That version is not on screen here (to approve, compare or note), or it changed.', 'Reload to see the version under review.'],
  unknown_entry: ['That playlist entry does not exist.', 'Reload to see the current playlist.'],
  cannot_compare: ['Those two versions cannot be compared here: they are of different shots, run at different frame rates, or a file is missing.', 'Pick another version of this shot at the same frame rate.'],
  store: ['The review record could not save that just now.', 'It is sent again by itself; nothing is lost.'],
  key_conflict: ['That change clashes with one already stored from this link.', 'Reload the page to see what was kept.'],
  rtc: ['The video stream could not be set up.', 'The page retries by itself; reload if the picture does not come.'],

  // The REST API this page calls (exports, stills, ending the review).
  not_found: ['The server does not have that.', 'Reload the page; the review may have changed.'],
  bad_passcode: ['A passcode must be 4 to 64 letters, digits or signs.', 'Choose another and try again.'],
  bad_watermark: ['That watermark cannot be drawn: it is too long or has control characters.', 'Use up to 120 plain characters.'],
  bad_request: ['The server could not use that request.', 'Reload the page and try again.'],
  unauthorized: ['The server did not accept this link for that.', 'Ask the host for a new link.'],
  method_not_allowed: ['The server does not offer that here.', ''],
  not_exportable: ['This record cannot be exported in that format.', 'Choose another format.', true],
  busy: ['The server is busy.', 'Try again in a moment.'],
  // Uploads (docs/uploads.md).
  too_large: ['That file is larger than this server takes.', 'Ask whoever runs the server to raise uploads.max_size_bytes, or send a smaller file.', true],
  over_quota: ['The server’s space for uploads is used up.', 'Ask whoever runs the server to make room or raise the quota.', true],
  disk_full: ['The server’s disk is too full for that file.', 'Ask whoever runs the server to free some space, then send it again.', true],
  bad_filename: ['That file name cannot be used.', 'Rename the file (no slashes, no leading dot) and send it again.'],
  checksum_mismatch: ['Part of the file was damaged on the way.', 'It is sent again by itself.'],
  file_checksum_mismatch: ['The file the server received is not the one that was sent.', 'Send it again.', true],
  not_media: ['The server cannot decode that file.', 'Send a video file (MOV, MP4, MXF, MKV…).', true],
  no_video: ['That file has no picture.', 'Send a file with a video stream.'],
  unsupported_rate: ['That file runs at a frame rate SyncReel does not review at.', '', true],
  container_not_allowed: ['This server does not take that kind of file.', 'Send MOV, MP4, MXF or MKV, or ask whoever runs the server.', true],
  upload_expired: ['That upload waited too long and was removed.', 'Send the file again.'],
  upload_locked: ['That upload is busy.', 'It is tried again by itself.'],
  offset_mismatch: ['The upload and the server disagreed on where it stood.', 'It goes on from where the server is.'],
  too_many_connections: ['The server has too many people connected right now.', 'Try again in a minute.'],
  too_many_sessions: ['The server holds as many reviews as it can.', 'Ask whoever runs it to end an old one.'],
  session_ended: ['The live review has ended.', 'Reload to carry on reviewing on your own.'],

  // The page's own.
  offline: ['The server could not be reached.', 'Check your connection; the page keeps trying.'],
  media_error: ['The video stopped.', 'The room carries on; ask the host to check the media.'],
};

/**
 * What to tell a person about `code`: `{text, next}`. A code this page
 * does not know falls back to the server's `message`, made a sentence.
 */
export function describe(code, message = '') {
  const known = MESSAGES[code];
  const said = String(message ?? '').trim();
  if (known) {
    const next = known[2] && said ? [sentence(said), known[1]].filter(Boolean).join(' ') : known[1];
    return { text: known[0], next };
  }
  if (!said) return { text: 'Something went wrong.', next: 'Try again; if it persists, tell whoever runs the server.' };
  return { text: sentence(said), next: '' };
}

/** Whether `code` has its own sentence (tests check every protocol code does). */
export function knows(code) {
  return Object.hasOwn(MESSAGES, code);
}

/** The server's lowercase fragment as a sentence: a capital and a full stop. */
export function sentence(text) {
  const t = text.trim();
  if (!t) return t;
  const capital = t[0].toUpperCase() + t.slice(1);
  return /[.!?…]$/.test(capital) ? capital : `${capital}.`;
}
