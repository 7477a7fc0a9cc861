//! The WebSocket wire format: serde types only, and the conversions from
//! the core's events into them.
//!
//! Every message is a JSON object tagged by `type` in camelCase. The hello
//! carries [`PROTOCOL_VERSION`]; a change of shape becomes a new version or
//! a new variant, never a silent change. This module and `http` are the
//! only places that know JSON. `docs/protocol.md` documents every message
//! and must change with this file.

use serde::{Deserialize, Serialize};

use crate::clock::{ServerTime, Speed, Transport};
use crate::session::{
    CommandError, Control, ControlReason, Event, JoinError, ParticipantId, Presence, Role,
    RoleCounts, SessionInfo, Snapshot, TransportCause,
};

/// Bumped whenever a message changes shape.
pub const PROTOCOL_VERSION: u32 = 1;

/// A client message plus the optional `ref` that the server echoes in any
/// error it causes, so that a client can match errors to requests.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Envelope {
    #[serde(rename = "ref", default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<u32>,
    /// On a transport command: the frame on the sender's screen when they
    /// acted. A pause, a step or a mark lands there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shown: Option<i64>,
    #[serde(flatten)]
    pub message: ClientMessage,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// The first message on a connection: which link, and who you are.
    Hello {
        protocol: u32,
        token: String,
        name: String,
        /// The `resume` secret from an earlier welcome, to reclaim the
        /// same identity (and the driver's seat) after a reconnect.
        #[serde(default)]
        resume: Option<String>,
        /// The link's passcode, when it has one. A hello with `resume`
        /// may leave it out: a resume reclaims an identity that already
        /// got in through the same link.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        passcode: Option<String>,
    },
    /// Clock sync: `t0` is the client's clock in microseconds.
    Ping {
        id: u32,
        t0: i64,
    },
    Play,
    Pause,
    /// Exactly one of `frame` or `timecode`.
    Seek {
        #[serde(default)]
        frame: Option<i64>,
        #[serde(default)]
        timecode: Option<String>,
    },
    Step {
        frames: i64,
    },
    /// One of −4, −3, −2, −1, 0.5, 1, 2, 3, 4.
    Shuttle {
        speed: f64,
    },
    LoopIn {
        #[serde(default)]
        frame: Option<i64>,
    },
    LoopOut {
        #[serde(default)]
        frame: Option<i64>,
    },
    ClearLoop,
    /// Moves the room to entry `entry` (0-based) of its playlist, paused
    /// on its first frame, or with `sameTimecode` on the frame with the
    /// timecode the room stands on (when the entry has it). Driver only.
    Cue {
        entry: usize,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        same_timecode: bool,
    },
    RequestControl,
    GrantControl {
        participant: u64,
    },
    DenyControl {
        participant: u64,
    },
    TakeControl,
    ReleaseControl,
    /// Takes back this participant's pending control request.
    WithdrawControl,
    /// Driver only: compare the version on screen (A) with `version` (B),
    /// side by side or as a wipe at `wipe` (0..1 of the width, A left of
    /// it); `version: null` stops comparing.
    Compare {
        version: Option<String>,
        #[serde(default)]
        mode: Option<String>,
        #[serde(default)]
        wipe: Option<f64>,
    },
    /// The client's clock-sync result, for presence and for the lead.
    SyncReport {
        rtt_us: i64,
        offset_us: i64,
        uncertainty_us: i64,
    },
    /// The frame the client showed at `at_us` (server clock), and, when it
    /// plays video, how far behind that frame's own instant it was shown.
    FrameReport {
        frame: i64,
        at_us: i64,
        #[serde(default)]
        latency_us: Option<i64>,
    },
    /// Leaving for good: the participant is removed at once.
    Leave,
    /// A note pinned to a frame (or an in/out range). `key` is the
    /// client's own id for it: sending the same key again (after a lost
    /// acknowledgement, say) never makes a second note.
    Note {
        key: String,
        frame: i64,
        #[serde(default)]
        frame_out: Option<i64>,
        text: String,
        /// While the room compares: the version the note is about (the
        /// half it was written on). Defaults to the version on screen.
        #[serde(default)]
        version: Option<String>,
    },
    /// A reply to note `parent`; it sits on the parent's frame. Answered
    /// like a note.
    Reply {
        key: String,
        parent: i64,
        text: String,
    },
    /// Resolves (or, with `resolved: false`, reopens) a note. Answered
    /// like a note, with the note as it now stands.
    Resolve {
        key: String,
        note: i64,
        resolved: bool,
    },
    /// A shape drawn on a paused frame, in picture-normalised coordinates
    /// (0..1 on each axis, origin top left). `width` is a fraction of the
    /// picture height. Answered with `drawingAck` or `drawingRefused`.
    Drawing {
        key: String,
        frame: i64,
        tool: String,
        colour: String,
        width: f32,
        points: Vec<[f32; 2]>,
        /// As a note's: the version drawn on while the room compares.
        /// Boxed: every message is the size of the largest.
        #[serde(default)]
        version: Option<Box<str>>,
    },
    /// The eraser: removes drawing `drawing` for everyone.
    Erase {
        key: String,
        drawing: i64,
    },
    /// A shape still being drawn, so that the room sees it grow; not
    /// recorded.
    Stroke(WireStroke),
    /// The stroke `key` was abandoned: no drawing will follow.
    StrokeEnd {
        key: String,
    },
    /// The approver's decision on the version under review. `version`,
    /// when given, must be the one the session reviews.
    Approve {
        key: String,
        status: WireApprovalStatus,
        #[serde(default)]
        version: Option<String>,
    },
    /// Asks for the session's video stream; the server answers `rtcOffer`.
    RtcStart,
    /// The browser's answer to `rtcOffer`.
    RtcAnswer {
        sdp: String,
    },
    /// One of the browser's ICE candidates.
    RtcCandidate {
        candidate: WireCandidate,
    },
    /// Stops the stream to this participant.
    RtcStop,
}

/// An ICE candidate as browsers serialize `RTCIceCandidate.toJSON()`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireCandidate {
    pub candidate: String,
    #[serde(default)]
    pub sdp_mid: Option<String>,
    #[serde(rename = "sdpMLineIndex", default)]
    pub sdp_m_line_index: Option<u16>,
}

/// The session's stream, when it has media.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireMedia {
    pub codec: String,
    pub stream_width: u32,
    pub stream_height: u32,
    pub source_width: u32,
    pub source_height: u32,
    pub source_codec: String,
    /// The stream is made from a review proxy of the source (docs/uploads.md):
    /// the same frames; stills still come from the source.
    pub proxy: bool,
    /// The colour description the source file states.
    pub source_colour: WireColour,
    pub has_audio: bool,
    /// RTP timestamps are the server clock at this rate, from the server
    /// epoch, modulo 2^32: `serverTimeUs = rtp × 1e6 / rate` (unwrapped).
    pub rtp_clock_rate: u32,
    /// STUN/TURN servers for the browser's RTCPeerConnection, shaped as
    /// `RTCIceServer` so that a client can pass them straight through.
    pub ice_servers: Vec<WireIceServer>,
    /// The version of the media item under review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<WireVersion>,
}

/// One version in a media item's stack.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireVersion {
    pub id: String,
    /// The media item's name.
    pub item: String,
    /// 1, 2, 3… within the item.
    pub number: i64,
    /// SHA-256 of the file, hex.
    pub checksum: String,
    pub size_bytes: i64,
}

/// A colour description: each part a short name (`bt709`, `bt2020`, `pq`,
/// `hlg`, `limited`, `full`…), `unknown` where the file does not say.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireColour {
    pub primaries: String,
    pub transfer: String,
    pub matrix: String,
    pub range: String,
}

/// One `RTCIceServer`: TURN needs the credentials, STUN does not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireIceServer {
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    Welcome {
        protocol: u32,
        you: u64,
        role: WireRole,
        /// Keep this to resume after a reconnect.
        resume: String,
        session: WireSession,
        state: WireSnapshot,
        server_time: i64,
        /// The stream, or null for a session without media.
        media: Option<Box<WireMedia>>,
        /// `shared` for the live review; `personal` for the room of one
        /// that a link opens once the host has ended it.
        room: WireRoom,
        /// The entries a playlist session can be cued to; empty for a
        /// session of one file.
        playlist: Vec<WireEntry>,
    },
    /// The playlist grew: a version arrived while the review runs (an
    /// upload to this session). `entries` is the whole playlist now,
    /// `entry` the one on screen (unchanged).
    Playlist {
        entries: Vec<WireEntry>,
        entry: usize,
    },
    /// The room moves to another playlist entry at `execute_at`: from
    /// then on `session` (its rate, start and length) and `version` are
    /// those of entry `entry`, and `transport` (paused on its first
    /// frame, or on the timecode the room stood on) is in effect.
    Cue {
        version: u64,
        execute_at: i64,
        entry: usize,
        session: WireSession,
        media_version: Option<WireVersion>,
        transport: WireTransport,
        by: Option<u64>,
    },
    /// The transport changes at `execute_at` (server clock, µs).
    Transport {
        version: u64,
        execute_at: i64,
        transport: WireTransport,
        cause: String,
        by: Option<u64>,
    },
    Control {
        version: u64,
        #[serde(flatten)]
        control: WireControl,
        reason: WireControlReason,
    },
    /// The room starts, adjusts or stops (`compare: null`) comparing.
    Compare {
        version: u64,
        compare: Option<WireCompare>,
        by: Option<u64>,
    },
    Presence {
        participants: Vec<WirePresence>,
        left: Vec<u64>,
        counts: WireCounts,
    },
    /// Sent instead of the events a slow client missed: replace all state.
    Snapshot {
        state: WireSnapshot,
        server_time: i64,
    },
    /// `t1` is when the ping arrived and `t2` when this left, server µs.
    Pong {
        id: u32,
        t0: i64,
        t1: i64,
        t2: i64,
    },
    Error {
        code: ErrorCode,
        message: String,
        #[serde(rename = "ref", skip_serializing_if = "Option::is_none")]
        reference: Option<u32>,
        /// With `passcode_locked`: whole seconds until a passcode is
        /// checked again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_secs: Option<u64>,
    },
    /// The server is closing this connection and says why.
    Goodbye {
        code: ErrorCode,
        message: String,
    },
    RtcOffer {
        sdp: String,
    },
    RtcCandidate {
        candidate: WireCandidate,
    },
    /// How to turn a displayed frame's RTP timestamp into a media frame,
    /// sent with every transport change: `frame = frame0 + floor((t − t0) ×
    /// fpsNum × speed / (1e6 × fpsDen))` for `t` the RTP timestamp's server
    /// instant (the transport's own rule, clamped and looped likewise).
    FrameMap {
        version: u64,
        rtp0: u32,
        server_time0: i64,
        frame0: i64,
        fps_num: u32,
        fps_den: u32,
        /// 0 when paused.
        speed: f64,
    },
    /// The session's media failed; the room carries on without video.
    MediaError {
        message: String,
    },
    /// Pictures flow again after a `MediaError`: start the stream again.
    MediaRestored {},
    /// Every note so far, in pages; follows each welcome and snapshot resync.
    Notes {
        notes: Vec<WireNote>,
        /// More pages of this list follow (a long record goes in pages of
        /// about `CATCH_UP_PAGE_BYTES`); the list is whole with the page
        /// that lacks `more`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// A new note, to everyone, once it is stored.
    Note {
        note: WireNote,
    },
    /// To the author: the note with this key is stored (durably) as `note`.
    NoteAck {
        key: String,
        note: WireNote,
    },
    /// To the author: the note with this key was not stored. `store` is
    /// worth retrying; the others will fail again.
    NoteRefused {
        key: String,
        code: ErrorCode,
        message: String,
    },
    /// The host ended the live review at `at` (Unix ms). The room stays
    /// open for reviewing the record; sent to everyone then, and after the
    /// welcome to anyone who joins later.
    Ended {
        at: i64,
    },
    /// Every drawing not erased; follows each welcome and resync.
    Drawings {
        drawings: Vec<WireDrawing>,
        /// More pages of this list follow (a long record goes in pages of
        /// about `CATCH_UP_PAGE_BYTES`); the list is whole with the page
        /// that lacks `more`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// A new drawing, or one just erased (`erasedBy` set), to everyone.
    Drawing {
        drawing: WireDrawing,
    },
    DrawingAck {
        key: String,
        drawing: WireDrawing,
    },
    DrawingRefused {
        key: String,
        code: ErrorCode,
        message: String,
    },
    /// Part of participant `by`'s stroke in progress, to everyone else,
    /// with the version on screen.
    Stroke {
        by: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version_id: Option<String>,
        #[serde(flatten)]
        stroke: WireStroke,
    },
    /// Participant `by` abandoned stroke `key`.
    StrokeEnd {
        by: u64,
        key: String,
    },
    /// Every decision so far, oldest first; follows each welcome and resync.
    Approvals {
        approvals: Vec<WireApproval>,
        /// More pages of this list follow (a long record goes in pages of
        /// about `CATCH_UP_PAGE_BYTES`); the list is whole with the page
        /// that lacks `more`.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        more: bool,
    },
    /// A new decision, to everyone, once stored.
    Approval {
        approval: WireApproval,
    },
    ApprovalAck {
        key: String,
        approval: WireApproval,
    },
    ApprovalRefused {
        key: String,
        code: ErrorCode,
        message: String,
    },
}

/// Part of a stroke still being drawn. `key` is the key its `drawing`
/// will carry. A pen sends the points added since its last part, `from`
/// being the index of the first of them in the whole stroke; an arrow or
/// rectangle sends both points each time, from 0.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WireStroke {
    pub key: String,
    pub frame: i64,
    pub tool: String,
    pub colour: String,
    pub width: f32,
    pub from: usize,
    pub points: Vec<[f32; 2]>,
}

/// A shape on a frame as the wire carries it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireDrawing {
    pub id: i64,
    /// As for notes: the version it was drawn on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub key: String,
    pub frame: i64,
    /// `pen`, `arrow` or `rect`.
    pub tool: String,
    /// `#rrggbb`.
    pub colour: String,
    pub width: f32,
    pub points: Vec<[f32; 2]>,
    pub author: String,
    pub author_role: WireRole,
    pub created_at: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub erased_at: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WireApprovalStatus {
    Approved,
    ChangesRequested,
    Pending,
}

impl WireApprovalStatus {
    /// The name the record and webhooks use.
    pub fn name(self) -> &'static str {
        match self {
            WireApprovalStatus::Approved => "approved",
            WireApprovalStatus::ChangesRequested => "changes_requested",
            WireApprovalStatus::Pending => "pending",
        }
    }

    pub fn from_name(name: &str) -> Option<WireApprovalStatus> {
        match name {
            "approved" => Some(WireApprovalStatus::Approved),
            "changes_requested" => Some(WireApprovalStatus::ChangesRequested),
            "pending" => Some(WireApprovalStatus::Pending),
            _ => None,
        }
    }
}

/// A decision on a version, with the receipt of what its author saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireApproval {
    pub id: i64,
    pub key: String,
    pub status: WireApprovalStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    pub author: String,
    pub author_role: WireRole,
    pub created_at: i64,
    pub receipt: WireReceipt,
}

/// What the approver was shown: the frames their playback reports cover,
/// the stream the server sent them, and the checksum of the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireReceipt {
    /// Inclusive `[first, last]` frame ranges.
    pub frames: Vec<[i64; 2]>,
    pub frame_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_bytes: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream_kbps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// A note as the wire carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireNote {
    pub id: i64,
    /// The version it is about (in a playlist, the entry it was made on);
    /// absent in sessions without media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    /// The author's key for it, so that an author's outbox can tell which
    /// of its notes made it.
    pub key: String,
    pub frame: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame_out: Option<i64>,
    pub text: String,
    pub author: String,
    pub author_role: WireRole,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Set on a reply: the note it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<i64>,
}

/// Every reason a message can be refused. Stable strings: clients switch
/// on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Malformed,
    MessageTooLarge,
    RateLimited,
    UnsupportedProtocol,
    NotJoined,
    AlreadyJoined,
    InvalidToken,
    LinkExpired,
    LinkRevoked,
    /// The link has a passcode and the hello (or request) gave none.
    PasscodeRequired,
    /// The passcode given is not the link's.
    PasscodeWrong,
    /// Too many wrong passcodes for this link lately: none is checked,
    /// the right one included, for `retryAfterSecs`.
    PasscodeLocked,
    SessionNotFound,
    /// Another node of the cluster runs the session (it holds its lease).
    SessionElsewhere,
    /// Goodbye: the node this connection reached no longer runs (or
    /// reaches) the session: its owner went away, or it lost the
    /// session's lease. Reconnect: the session is taken over elsewhere.
    SessionMoved,
    /// A cluster node cut off from NATS cannot tell who runs the session,
    /// so it serves none it does not already run. Reconnect: a load
    /// balancer (which sees the node's `/healthz` at 503) sends you to
    /// another node.
    ClusterUnavailable,
    SessionFull,
    ResumeFailed,
    Forbidden,
    NotDriver,
    FrameOutOfRange,
    BadTimecode,
    BadSpeed,
    StepTooLarge,
    CannotTakeControl,
    /// A `withdrawControl` from someone with no pending request.
    NoPendingRequest,
    UnknownParticipant,
    /// A WebRTC signalling step failed (bad SDP, no stream, not started).
    Rtc,
    /// Goodbye only: another connection resumed this participant.
    Replaced,
    /// Goodbye only: the participant sent `leave`.
    Left,
    /// Goodbye only: no `hello` came within `limits.hello_timeout_ms`.
    HelloTimeout,
    /// Goodbye only: nothing was heard from the connection (not even a
    /// pong) within `limits.dead_peer_timeout_ms`.
    PeerTimeout,
    /// A note with no text, too much text, or a bad key.
    BadNote,
    /// A reply or resolve names a note this session does not have.
    UnknownNote,
    /// A shape with too many points, points off the picture, or a bad
    /// tool, colour, width or key.
    BadDrawing,
    /// An erase names a drawing this session does not have.
    UnknownDrawing,
    /// An approval names a version this session does not review, or the
    /// session has no version (no media).
    UnknownVersion,
    /// The review record could not store it (disk full, locked): retry.
    Store,
    /// The sender's link already used this key for a different note,
    /// drawing or decision; it is not stored (send it under a new key).
    KeyConflict,
    /// A `cue` to an entry the playlist does not have.
    UnknownEntry,
    /// A compare the server cannot show: the session has no media, the
    /// version is of another item, or runs at another frame rate.
    CannotCompare,
    /// The review has ended and a room of one could not be opened for
    /// this participant (its media failed to start).
    RoomUnavailable,
    ShuttingDown,
}

/// One entry of a playlist: a version of an item, and its timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireEntry {
    pub version: WireVersion,
    pub fps: String,
    pub drop_frame: bool,
    pub start_timecode: String,
    pub duration_frames: i64,
    /// The source's picture size: stills of this entry can be asked for
    /// up to its width.
    pub source_width: u32,
    pub source_height: u32,
}

/// Whose playback a room is: everyone's, or its one participant's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WireRoom {
    Shared,
    Personal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WireRole {
    Host,
    Reviewer,
    Viewer,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WireControlReason {
    Joined,
    Requested,
    Granted,
    Denied,
    Taken,
    Released,
    DriverLeft,
    Withdrawn,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireSession {
    pub id: String,
    pub title: String,
    /// `24000/1001` or `24`.
    pub fps: String,
    pub fps_num: u32,
    pub fps_den: u32,
    /// Labels count at this integer rate (24 for 23.976).
    pub timebase: u32,
    pub drop_frame: bool,
    pub duration_frames: i64,
    pub start_timecode: String,
    /// The text burned into the session's pictures; absent when none. A
    /// page shows its viewer's own name over the picture when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireTransport {
    pub playing: bool,
    pub speed: f64,
    pub anchor_frame: i64,
    pub anchor_time: i64,
    pub loop_in: Option<i64>,
    pub loop_out: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireControl {
    pub driver: Option<u64>,
    pub requests: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WirePresence {
    pub id: u64,
    pub name: String,
    pub role: WireRole,
    pub connected: bool,
    pub rtt_us: Option<i64>,
    pub offset_us: Option<i64>,
    pub uncertainty_us: Option<i64>,
    pub last_frame: Option<i64>,
    pub last_frame_at: Option<i64>,
    pub latency_us: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireCounts {
    pub hosts: usize,
    pub reviewers: usize,
    pub viewers: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireSnapshot {
    pub version: u64,
    /// The playlist entry on screen (0 for a single file).
    pub entry: usize,
    pub transport: WireTransport,
    pub control: WireControl,
    pub participants: Vec<WirePresence>,
    pub counts: WireCounts,
    /// The version compared beside the one on screen, if any.
    pub compare: Option<WireCompare>,
}

/// What the room compares: the version on screen (A) with `version` (B).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WireCompare {
    /// B's id.
    pub version: String,
    /// `side` or `wipe`.
    pub mode: String,
    /// The wipe line, 0..1 of the picture's width (A left of it).
    pub wipe: f64,
    /// B as the record knows it, for labels; filled in by the session.
    pub other: Option<WireVersion>,
}

impl From<&crate::session::Compare> for WireCompare {
    fn from(c: &crate::session::Compare) -> WireCompare {
        WireCompare {
            version: c.version.clone(),
            mode: match c.mode {
                crate::session::CompareMode::Side => "side",
                crate::session::CompareMode::Wipe => "wipe",
            }
            .into(),
            wipe: f64::from(c.wipe_permille) / f64::from(crate::session::WIPE_FULL),
            other: None,
        }
    }
}

/// Why a text frame could not be turned into an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// Over the configured message size.
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    /// Not JSON, or not a known message. `reference` is the frame's `ref`
    /// when it had a readable one, so the error can still be matched.
    #[error("malformed message: {reason}")]
    Malformed {
        reason: String,
        reference: Option<u32>,
    },
}

/// Parses one client frame, checking the size before touching the JSON.
pub fn parse_client(text: &str, limit: usize) -> Result<Envelope, ParseError> {
    if text.len() > limit {
        return Err(ParseError::TooLarge {
            size: text.len(),
            limit,
        });
    }
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| ParseError::Malformed {
            reason: e.to_string(),
            reference: None,
        })?;
    let reference = value
        .get("ref")
        .and_then(serde_json::Value::as_u64)
        .and_then(|r| u32::try_from(r).ok());
    let malformed = |reason: String| ParseError::Malformed { reason, reference };
    // serde reads an internally tagged enum's tag as a variant *index* when
    // it is a number, so `{"type":3}` would be the fourth message. Only the
    // documented names are messages.
    if let Some(kind) = value.get("type") {
        if !kind.is_string() {
            return Err(malformed("`type` must be a message name".into()));
        }
    }
    let envelope = Envelope::deserialize(value).map_err(|e| malformed(e.to_string()))?;
    // serde turns a number too large for an `f32` into infinity, which
    // JSON cannot carry: a number out of its field's range, so malformed.
    if !envelope.message.numbers_are_finite() {
        return Err(malformed("a number is out of range for its field".into()));
    }
    Ok(envelope)
}

impl ClientMessage {
    /// Whether every floating-point field is finite.
    fn numbers_are_finite(&self) -> bool {
        let finite = |width: f32, points: &[[f32; 2]]| {
            width.is_finite() && points.iter().flatten().all(|v| v.is_finite())
        };
        match self {
            ClientMessage::Shuttle { speed } => speed.is_finite(),
            ClientMessage::Drawing { width, points, .. } => finite(*width, points),
            ClientMessage::Stroke(stroke) => finite(stroke.width, &stroke.points),
            _ => true,
        }
    }
}

/// Serializes a server message. The types here cannot fail to serialize.
pub fn to_json(message: &ServerMessage) -> String {
    serde_json::to_string(message).expect("server messages always serialize")
}

/// Turns a wire speed into one from the shuttle set. Halves are exact in
/// binary floating point, so comparing doubled values is exact too.
pub fn speed_from_wire(speed: f64) -> Option<Speed> {
    let doubled = speed * 2.0;
    if !doubled.is_finite() || doubled.fract() != 0.0 || doubled.abs() > 8.0 {
        return None;
    }
    Speed::new(doubled as i32, 2)
}

pub fn speed_to_wire(speed: Speed) -> f64 {
    f64::from(speed.num()) / f64::from(speed.den())
}

impl ErrorCode {
    pub fn of_command(err: &CommandError) -> ErrorCode {
        match err {
            CommandError::UnknownParticipant => ErrorCode::UnknownParticipant,
            CommandError::Forbidden(_) => ErrorCode::Forbidden,
            CommandError::NotDriver => ErrorCode::NotDriver,
            CommandError::FrameOutOfRange { .. } => ErrorCode::FrameOutOfRange,
            CommandError::BadTimecode(_) => ErrorCode::BadTimecode,
            CommandError::StepTooLarge(_) => ErrorCode::StepTooLarge,
            CommandError::CannotTakeControl(_) => ErrorCode::CannotTakeControl,
            CommandError::UnknownEntry { .. } => ErrorCode::UnknownEntry,
            CommandError::NoPendingRequest => ErrorCode::NoPendingRequest,
            CommandError::BadCompare => ErrorCode::Malformed,
        }
    }

    pub fn of_join(err: &JoinError) -> ErrorCode {
        match err {
            JoinError::Full(_) => ErrorCode::SessionFull,
            JoinError::NothingToResume => ErrorCode::ResumeFailed,
            JoinError::TooManyRooms(_) => ErrorCode::SessionFull,
            JoinError::RoomUnavailable(_) => ErrorCode::RoomUnavailable,
        }
    }
}

impl From<Role> for WireRole {
    fn from(role: Role) -> WireRole {
        match role {
            Role::Host => WireRole::Host,
            Role::Reviewer => WireRole::Reviewer,
            Role::Viewer => WireRole::Viewer,
        }
    }
}

impl From<WireRole> for Role {
    fn from(role: WireRole) -> Role {
        match role {
            WireRole::Host => Role::Host,
            WireRole::Reviewer => Role::Reviewer,
            WireRole::Viewer => Role::Viewer,
        }
    }
}

impl From<ControlReason> for WireControlReason {
    fn from(reason: ControlReason) -> WireControlReason {
        match reason {
            ControlReason::Joined => WireControlReason::Joined,
            ControlReason::Requested => WireControlReason::Requested,
            ControlReason::Granted => WireControlReason::Granted,
            ControlReason::Denied => WireControlReason::Denied,
            ControlReason::Taken => WireControlReason::Taken,
            ControlReason::Released => WireControlReason::Released,
            ControlReason::DriverLeft => WireControlReason::DriverLeft,
            ControlReason::Withdrawn => WireControlReason::Withdrawn,
        }
    }
}

impl From<&SessionInfo> for WireSession {
    fn from(info: &SessionInfo) -> WireSession {
        let rate = info.timecode.rate();
        WireSession {
            id: info.id.clone(),
            title: info.title.clone(),
            fps: rate.to_string(),
            fps_num: rate.num(),
            fps_den: rate.den(),
            timebase: rate.timebase(),
            drop_frame: info.timecode.drop_frame(),
            duration_frames: info.duration_frames,
            start_timecode: info.timecode.start().to_string(),
            watermark: info.watermark.clone(),
        }
    }
}

impl From<&Transport> for WireTransport {
    fn from(t: &Transport) -> WireTransport {
        WireTransport {
            playing: t.playing,
            speed: speed_to_wire(t.speed),
            anchor_frame: t.anchor_frame,
            anchor_time: t.anchor_time.as_micros(),
            loop_in: t.loop_marks.mark_in,
            loop_out: t.loop_marks.mark_out,
        }
    }
}

impl From<&Control> for WireControl {
    fn from(c: &Control) -> WireControl {
        WireControl {
            driver: c.driver.map(|p| p.0),
            requests: c.requests.iter().map(|p| p.0).collect(),
        }
    }
}

impl From<&Presence> for WirePresence {
    fn from(p: &Presence) -> WirePresence {
        WirePresence {
            id: p.id.0,
            name: p.name.clone(),
            role: p.role.into(),
            connected: p.connected,
            rtt_us: p.rtt_micros,
            offset_us: p.offset_micros,
            uncertainty_us: p.uncertainty_micros,
            last_frame: p.last_frame.map(|(f, _)| f),
            last_frame_at: p.last_frame.map(|(_, at)| at.as_micros()),
            latency_us: p.video_latency_micros,
        }
    }
}

impl From<RoleCounts> for WireCounts {
    fn from(c: RoleCounts) -> WireCounts {
        WireCounts {
            hosts: c.hosts,
            reviewers: c.reviewers,
            viewers: c.viewers,
        }
    }
}

impl From<&Snapshot> for WireSnapshot {
    fn from(s: &Snapshot) -> WireSnapshot {
        WireSnapshot {
            version: s.version,
            entry: s.entry,
            transport: (&s.transport).into(),
            control: (&s.control).into(),
            participants: s.participants.iter().map(Into::into).collect(),
            counts: s.counts.into(),
            compare: s.compare.as_ref().map(Into::into),
        }
    }
}

/// The wire name of what caused a transport change.
fn cause_name(cause: &TransportCause) -> &'static str {
    use crate::session::Command::*;
    match cause {
        TransportCause::ReachedEnd => "reachedEnd",
        TransportCause::Command(c) => match c {
            Play => "play",
            Pause => "pause",
            Seek(_) => "seek",
            Step(_) => "step",
            Shuttle(_) => "shuttle",
            LoopIn(_) => "loopIn",
            LoopOut(_) => "loopOut",
            ClearLoop => "clearLoop",
            Cue(..) => "cue",
            RequestControl | GrantControl(_) | DenyControl(_) | TakeControl | ReleaseControl
            | WithdrawControl => "control",
        },
    }
}

/// The wire form of a broadcast event. Welcomes are built by the caller,
/// which alone knows the resume secret.
pub fn event_message(event: &Event) -> Option<ServerMessage> {
    Some(match event {
        Event::Welcome { .. } => return None,
        Event::Transport {
            version,
            transport,
            cause,
            by,
        } => ServerMessage::Transport {
            version: *version,
            execute_at: transport.anchor_time.as_micros(),
            transport: transport.into(),
            cause: cause_name(cause).to_string(),
            by: by.map(|p| p.0),
        },
        Event::Control {
            version,
            control,
            reason,
        } => ServerMessage::Control {
            version: *version,
            control: control.into(),
            reason: (*reason).into(),
        },
        Event::Compare {
            version,
            compare,
            by,
        } => ServerMessage::Compare {
            version: *version,
            compare: compare.as_ref().map(Into::into),
            by: by.map(|p| p.0),
        },
        Event::Presence {
            changed,
            left,
            counts,
        } => ServerMessage::Presence {
            participants: changed.iter().map(Into::into).collect(),
            left: left.iter().map(|p| p.0).collect(),
            counts: (*counts).into(),
        },
    })
}

/// Who a welcome is for.
pub struct Newcomer {
    pub you: ParticipantId,
    pub role: Role,
    /// The secret (hex) that resumes them after a reconnect.
    pub resume: String,
}

pub fn welcome_message(
    info: &SessionInfo,
    newcomer: Newcomer,
    snapshot: &Snapshot,
    now: ServerTime,
    media: Option<WireMedia>,
    room: WireRoom,
    playlist: Vec<WireEntry>,
) -> ServerMessage {
    ServerMessage::Welcome {
        protocol: PROTOCOL_VERSION,
        you: newcomer.you.0,
        role: newcomer.role.into(),
        resume: newcomer.resume,
        session: info.into(),
        state: snapshot.into(),
        server_time: now.as_micros(),
        media: media.map(Box::new),
        room,
        playlist,
    }
}

/// The frame map of a transport: where its anchor falls on the RTP clock.
pub fn frame_map(
    version: u64,
    transport: &Transport,
    rate: crate::timecode::FrameRate,
) -> ServerMessage {
    ServerMessage::FrameMap {
        version,
        rtp0: crate::clock::rtp_timestamp(transport.anchor_time),
        server_time0: transport.anchor_time.as_micros(),
        frame0: transport.anchor_frame,
        fps_num: rate.num(),
        fps_den: rate.den(),
        speed: if transport.playing {
            speed_to_wire(transport.speed)
        } else {
            0.0
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Envelope, ParseError> {
        parse_client(text, 1024)
    }

    #[test]
    fn parses_every_client_message() {
        let cases = [
            (
                r#"{"type":"hello","protocol":1,"token":"abc","name":"Dana"}"#,
                ClientMessage::Hello {
                    protocol: 1,
                    token: "abc".into(),
                    name: "Dana".into(),
                    resume: None,
                    passcode: None,
                },
            ),
            (
                r#"{"type":"hello","protocol":1,"token":"abc","name":"Dana","passcode":"1234"}"#,
                ClientMessage::Hello {
                    protocol: 1,
                    token: "abc".into(),
                    name: "Dana".into(),
                    resume: None,
                    passcode: Some("1234".into()),
                },
            ),
            (
                r#"{"type":"ping","id":3,"t0":1234}"#,
                ClientMessage::Ping { id: 3, t0: 1234 },
            ),
            (r#"{"type":"play"}"#, ClientMessage::Play),
            (
                r#"{"type":"seek","timecode":"01:00:10:05"}"#,
                ClientMessage::Seek {
                    frame: None,
                    timecode: Some("01:00:10:05".into()),
                },
            ),
            (
                r#"{"type":"step","frames":-10}"#,
                ClientMessage::Step { frames: -10 },
            ),
            (
                r#"{"type":"shuttle","speed":0.5}"#,
                ClientMessage::Shuttle { speed: 0.5 },
            ),
            (
                r#"{"type":"loopIn"}"#,
                ClientMessage::LoopIn { frame: None },
            ),
            (
                r#"{"type":"grantControl","participant":4}"#,
                ClientMessage::GrantControl { participant: 4 },
            ),
            (
                r#"{"type":"syncReport","rttUs":900,"offsetUs":-12,"uncertaintyUs":450}"#,
                ClientMessage::SyncReport {
                    rtt_us: 900,
                    offset_us: -12,
                    uncertainty_us: 450,
                },
            ),
            (
                r#"{"type":"frameReport","frame":7,"atUs":99}"#,
                ClientMessage::FrameReport {
                    frame: 7,
                    at_us: 99,
                    latency_us: None,
                },
            ),
            (
                r#"{"type":"frameReport","frame":7,"atUs":99,"latencyUs":38000}"#,
                ClientMessage::FrameReport {
                    frame: 7,
                    at_us: 99,
                    latency_us: Some(38_000),
                },
            ),
            (r#"{"type":"rtcStart"}"#, ClientMessage::RtcStart),
            (
                r#"{"type":"rtcCandidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host","sdpMid":"0","sdpMLineIndex":0}}"#,
                ClientMessage::RtcCandidate {
                    candidate: WireCandidate {
                        candidate: "candidate:1 1 udp 1 127.0.0.1 5000 typ host".into(),
                        sdp_mid: Some("0".into()),
                        sdp_m_line_index: Some(0),
                    },
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text).unwrap().message, expected, "{text}");
        }
        assert_eq!(
            parse(r#"{"type":"pause","ref":42}"#).unwrap().reference,
            Some(42)
        );
    }

    #[test]
    fn a_message_is_picked_by_its_name_never_by_a_number() {
        for bad in [
            r#"{"type":1,"t1":5}"#,
            r#"{"type":2}"#,
            r#"{"type":3}"#,
            r#"{"type":0,"protocol":1,"token":"a","name":"b"}"#,
            r#"{"type":true}"#,
            r#"{"type":["play"]}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::Malformed { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_malformed_message_keeps_its_ref() {
        assert_eq!(
            parse(r#"{"type":"step","frames":"x","ref":7}"#),
            Err(ParseError::Malformed {
                reason: "invalid type: string \"x\", expected i64".into(),
                reference: Some(7)
            })
        );
        let Err(ParseError::Malformed { reference, .. }) = parse(r#"{"type":9,"ref":8}"#) else {
            panic!("a numeric type parsed");
        };
        assert_eq!(reference, Some(8));
        // A ref that is not a u32 is no ref at all.
        let Err(ParseError::Malformed { reference, .. }) = parse(r#"{"type":"fly","ref":-1}"#)
        else {
            panic!("an unknown type parsed");
        };
        assert_eq!(reference, None);
    }

    #[test]
    fn refuses_malformed_and_oversized_frames() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"type":"fly"}"#,
            r#"{"type":"step"}"#,
            r#"{"type":"step","frames":"x"}"#,
        ] {
            assert!(
                matches!(parse(bad), Err(ParseError::Malformed { .. })),
                "{bad}"
            );
        }
        let big = format!(
            r#"{{"type":"hello","protocol":1,"token":"{}","name":"x"}}"#,
            "a".repeat(2000)
        );
        assert_eq!(
            parse(&big),
            Err(ParseError::TooLarge {
                size: big.len(),
                limit: 1024
            })
        );
    }

    /// Found by the `client_message` fuzz target
    /// (`fuzz/regressions/client_message/f32-overflow-point`): a point
    /// beyond `f32` was read as infinity and accepted, and the message
    /// then serialized with `null` in its place, which does not parse.
    #[test]
    fn a_number_beyond_f32_is_malformed() {
        let big = "3".repeat(40);
        for text in [
            format!(
                r#"{{"type":"stroke","key":"e","frame":34,"tool":"pe","colour":"0","width":6,"from":2,"points":[[{big},0.3]],"ref":5}}"#
            ),
            format!(
                r##"{{"type":"drawing","key":"e","frame":3,"tool":"pen","colour":"#ffffff","width":-{big},"points":[[0.1,0.3]],"ref":5}}"##
            ),
        ] {
            assert_eq!(
                parse(&text),
                Err(ParseError::Malformed {
                    reason: "a number is out of range for its field".into(),
                    reference: Some(5)
                }),
                "{text}"
            );
        }
        // The largest f32 still parses, and comes back as itself.
        let text = format!(
            r##"{{"type":"drawing","key":"e","frame":3,"tool":"pen","colour":"#ffffff","width":{},"points":[[0.1,0.3]]}}"##,
            f32::MAX
        );
        let envelope = parse(&text).unwrap();
        let again = serde_json::to_string(&envelope).unwrap();
        assert_eq!(parse_client(&again, usize::MAX).unwrap(), envelope);
    }

    /// Found by the `client_message` fuzz target
    /// (`fuzz/regressions/client_message/float-read-inexactly`): serde_json's
    /// fast float parsing read `1e-88` one unit off, so the message did not
    /// survive serializing and parsing again. The `float_roundtrip`
    /// feature reads every number exactly.
    #[test]
    fn numbers_are_read_exactly() {
        let envelope = parse(r#"{"type":"shuttle","speed":1e-88}"#).unwrap();
        assert_eq!(envelope.message, ClientMessage::Shuttle { speed: 1e-88 });
        let again = serde_json::to_string(&envelope).unwrap();
        assert_eq!(again, r#"{"type":"shuttle","speed":1e-88}"#);
        let drawing = r##"{"type":"drawing","key":"k","frame":1,"tool":"pen","colour":"#ffffff","width":0.006,"points":[[0.21,0.35],[1e-40,0.9999999]]}"##;
        let envelope = parse(drawing).unwrap();
        let ClientMessage::Drawing { width, points, .. } = &envelope.message else {
            panic!("not a drawing");
        };
        assert_eq!(*width, 0.006f32);
        assert_eq!(points, &[[0.21f32, 0.35], [1e-40, 0.9999999]]);
        let again = serde_json::to_string(&envelope).unwrap();
        assert_eq!(parse_client(&again, usize::MAX).unwrap(), envelope);
    }

    #[test]
    fn speeds_map_exactly_onto_the_shuttle_set() {
        for s in Speed::ALL {
            assert_eq!(speed_from_wire(speed_to_wire(s)), Some(s));
        }
        for bad in [0.0, 0.25, 1.5, 5.0, -0.5, f64::NAN, f64::INFINITY] {
            assert_eq!(speed_from_wire(bad), None, "{bad}");
        }
    }

    #[test]
    fn server_messages_carry_their_tag_and_camel_case_fields() {
        let msg = ServerMessage::Pong {
            id: 1,
            t0: 2,
            t1: 3,
            t2: 4,
        };
        assert_eq!(
            to_json(&msg),
            r#"{"type":"pong","id":1,"t0":2,"t1":3,"t2":4}"#
        );
        let err = ServerMessage::Error {
            code: ErrorCode::NotDriver,
            message: "m".into(),
            reference: Some(9),
            retry_after_secs: None,
        };
        assert_eq!(
            to_json(&err),
            r#"{"type":"error","code":"not_driver","message":"m","ref":9}"#
        );
        let control = ServerMessage::Control {
            version: 3,
            control: WireControl {
                driver: Some(1),
                requests: vec![2],
            },
            reason: WireControlReason::DriverLeft,
        };
        assert_eq!(
            to_json(&control),
            r#"{"type":"control","version":3,"driver":1,"requests":[2],"reason":"driverLeft"}"#
        );
    }
}
