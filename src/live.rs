//! The runtime around the pure [`Session`]: one tokio task per live
//! session owns it, and everything else reaches it through a
//! [`SessionHandle`].
//!
//! The task is the only place that reads the clock for a session, so the
//! order of events and the instants stamped on them are decided in one
//! place. It never waits for a participant: each connection has a bounded
//! queue, a broadcast is serialized once and shared, and a connection whose
//! queue is full stops receiving events and gets a snapshot as soon as it
//! has room again.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::{mpsc, oneshot, watch};

use crate::clock::{ServerTime, VIDEO_CLOCK_RATE};
use crate::media::audio::AudioEvent;
use crate::media::pipelines::{MediaHealth, PipelineSpec, Pipelines, RestartPolicy, Sinks};
use crate::media::player::{self, StreamSettings, VideoCodec};
use crate::media::{MediaError, MediaInfo};
use crate::metrics::Metrics;
use crate::protocol::{
    self, ErrorCode, ServerMessage, WireIceServer, WireMedia, WireSnapshot, WireStroke, WireVersion,
};
use crate::rtc::{RtcError, RtcHub, RtcSettings};
use crate::session::{
    Audience, Command, JoinError, JoinRequest, ParticipantId, Role, Session, SessionInfo,
    SessionLimits, Snapshot, SyncReport, TransportCause,
};
use crate::store::{
    Moving, PersonalRoomRow, Receipt, RecordResult, Recorded, Store, StoreError, Write,
};

pub use crate::server_clock::{unix_millis, ServerClock};

mod compare;
mod fanout;
mod playlist;
mod record;
mod rooms;
use crate::drawing::StrokePart;
pub use compare::CompareRequest;
pub use fanout::Stamp;
use fanout::{FanoutEstimate, FanoutMeter};
pub use playlist::{PlaylistEntry, MAX_PLAYLIST};
pub use record::{
    wire_approval, wire_drawing, wire_note, Draft, Kind, SessionReview, MAX_NOTE_CHARS,
};
use record::{Context, Happened};
pub use rooms::Registry;
use rooms::{open_room, room_digest, Belonging, PersonalRoom, Place, RoomParts};

/// What a connection's writer task sends.
#[derive(Debug)]
pub enum Outbound {
    /// Serialized once, shared by every recipient.
    Text {
        text: Utf8Bytes,
        /// A broadcast's timing, for the lead and the fan-out metrics.
        stamp: Option<Arc<Stamp>>,
    },
    /// A clock-sync reply. The writer stamps `t2` at the last moment so that
    /// queueing time is not mistaken for network time.
    Pong { id: u32, t0: i64, t1: ServerTime },
    /// The record's catch-up lists, in pages: one queue slot however long
    /// the record, so that a newcomer is never refused for it, and shared
    /// by everyone caught up from the same record.
    CatchUp(Arc<[Utf8Bytes]>),
    /// Say goodbye and close the socket.
    Close { code: ErrorCode, message: String },
    /// A protocol ping frame: a live peer answers with a pong by itself.
    KeepAlive,
}

impl Outbound {
    pub fn message(message: &ServerMessage) -> Outbound {
        Outbound::Text {
            text: protocol::to_json(message).into(),
            stamp: None,
        }
    }
}

/// What a connection asks of its session.
#[derive(Debug)]
pub enum SessionMsg {
    Join {
        name: String,
        role: Role,
        link_id: String,
        resume: Option<[u8; 16]>,
        /// Only a resume will do (a passcode link's hello without the
        /// passcode): no fresh join, no room of one; `NothingToResume`
        /// instead.
        resume_only: bool,
        fresh_secret: [u8; 16],
        conn_id: u64,
        tx: mpsc::Sender<Outbound>,
        reply: oneshot::Sender<Result<Admitted, JoinError>>,
    },
    Command {
        from: ParticipantId,
        conn_id: u64,
        command: Command,
        /// The frame on the sender's screen (see `Session::handle_seen`).
        shown: Option<i64>,
        reference: Option<u32>,
    },
    /// Start, adjust or stop (`None`) comparing versions.
    Compare {
        from: ParticipantId,
        conn_id: u64,
        request: Option<Box<CompareRequest>>,
        reference: Option<u32>,
    },
    Sync {
        from: ParticipantId,
        report: SyncReport,
    },
    Frame {
        from: ParticipantId,
        frame: i64,
        at: ServerTime,
        latency_micros: Option<i64>,
    },
    Disconnect {
        from: ParticipantId,
        conn_id: u64,
    },
    Leave {
        from: ParticipantId,
        conn_id: u64,
    },
    /// Close the connections that joined through a revoked link.
    RevokeLink {
        link_id: String,
    },
    /// The operator deleted the session, or this node no longer owns it
    /// (cluster mode): everyone (its rooms' people too) is told why
    /// (`code`, `message`) and disconnected, and the task stops.
    Close {
        reply: oneshot::Sender<()>,
        code: ErrorCode,
        message: String,
    },
    /// A version was uploaded to this session: it joins the playlist
    /// (`App::add_uploaded_version`). `own_media` is the session's own
    /// file as recorded, which becomes entry 0 of a session of one file.
    AddVersion {
        entry: Box<PlaylistEntry>,
        own_media: Option<String>,
    },
    /// The review proxy of the source whose SHA-256 is `checksum` was
    /// made: what the room plays of that source, it plays from `path`.
    ProxyReady {
        checksum: String,
        path: std::path::PathBuf,
    },
    State {
        reply: oneshot::Sender<WireSnapshot>,
    },
    /// A participant adds to the record: a note, drawing, approval…
    Record {
        from: ParticipantId,
        conn_id: u64,
        draft: Draft,
    },
    /// A shape still being drawn, for the rest of the room.
    Stroking {
        from: ParticipantId,
        conn_id: u64,
        stroking: Stroking,
    },
    /// The record answered about a draft.
    Stored {
        from: ParticipantId,
        key: String,
        kind: Kind,
        result: RecordResult,
    },
    /// The host ends the live review; answered once it is recorded.
    End {
        reply: oneshot::Sender<Result<i64, StoreError>>,
    },
    /// The session's media failed; tell the room.
    MediaFailed {
        message: String,
    },
    /// Pictures flow again after `MediaFailed`; tell the room.
    MediaRestored,
    /// Another room of the same session committed this to the record:
    /// a personal room telling its session, or the session passing it on
    /// to its other rooms (`from_room` is then `None`).
    Relay {
        recorded: Recorded,
        from_room: Option<String>,
    },
    /// A personal room has nobody left in it and nobody to come back.
    RoomEmpty {
        key: String,
    },
}

/// A stroke in progress: passed around the room as it grows, never
/// recorded (its finished shape is a [`Draft::Drawing`] with the same key).
#[derive(Debug)]
pub enum Stroking {
    Part(WireStroke),
    End { key: String },
}

/// Where a join lands.
#[derive(Debug)]
pub enum Admitted {
    /// In this room, as this participant.
    Here(ParticipantId),
    /// The live review has ended: in a room of their own. Send the same
    /// join there.
    Elsewhere(SessionHandle),
}

/// How many personal rooms one ended session keeps open at once: each
/// decodes and encodes its own stream.
pub const MAX_PERSONAL_ROOMS: usize = 16;

/// How the rest of the server reaches a live session.
/// What a session starts from: its media, where it is recorded, and what
/// the record already holds.
#[derive(Debug, Clone)]
pub struct SessionStart {
    pub media: Option<MediaSetup>,
    pub store: Store,
    pub webhooks: crate::webhooks::Webhooks,
    /// The frame to open on: 0 for a new session, the last recorded
    /// frame for one brought back after a restart.
    pub start_frame: i64,
    /// Set when the room is to carry on playing: at this speed, since this
    /// long ago (a cluster node taking a playing session over).
    pub start_moving: Option<(crate::clock::Speed, Duration)>,
    /// What the record already holds: notes, drawings, approvals.
    pub review: SessionReview,
    /// The version under review, for sessions made from a media file.
    pub version: Option<WireVersion>,
    /// Why the media cannot be played, when it could not be restored.
    pub media_error: Option<String>,
    /// When the host ended the live review, if they have.
    pub ended_at: Option<i64>,
    /// A playlist session's entries (empty for a session of one file);
    /// `media` and `version` are then those of entry `entry`.
    pub playlist: Vec<PlaylistEntry>,
    pub entry: usize,
    /// Where an ended session's personal rooms stood, for a restart to
    /// reopen each one there when its participant comes back.
    pub personal_rooms: Vec<PersonalRoomRow>,
    /// A live review nobody has been in for this long ends by itself
    /// (`session.expire_idle_secs`), giving its slot back.
    pub idle_expiry: Duration,
    /// Cluster mode: a transport change is committed to the record before
    /// it is broadcast, waiting at most this long
    /// (`cluster.transport_commit_wait_ms`), so that a node taking the
    /// session over never opens it where the room was before a change
    /// everyone saw. `None` on a single node.
    pub transport_commit_wait: Option<Duration>,
}

#[derive(Debug, Clone)]
pub struct SessionHandle {
    pub info: Arc<SessionInfo>,
    pub tx: mpsc::Sender<SessionMsg>,
    /// The stream, for sessions made from a media file.
    pub media: Option<Arc<SessionMedia>>,
    /// Set once the live review has ended: an ended session no longer
    /// counts against `limits.max_sessions`.
    pub ended: Arc<std::sync::atomic::AtomicBool>,
}

/// A session's stream: the players that make it (started by the first
/// viewer, stopped when nobody has watched for a while) and the hub that
/// sends it.
#[derive(Debug)]
pub struct SessionMedia {
    pub hub: Arc<RtcHub>,
    pub wire: WireMedia,
    pub pipelines: Pipelines,
    /// The same pictures for viewers on other nodes (cluster mode).
    pub relay: Option<Arc<crate::cluster::MediaSource>>,
}

impl SessionMedia {
    /// Moves the players to another file from the transport's instant.
    fn cue(&self, media: &MediaInfo, transport: crate::clock::Transport) {
        self.pipelines.cue(media, transport);
    }

    fn follow(&self, transport: crate::clock::Transport) {
        self.pipelines.follow(transport);
    }
}

/// What a session is made of, besides its timeline.
#[derive(Debug, Clone)]
pub struct MediaSetup {
    /// The source, as probed: its frames, timeline and size are the
    /// session's, and stills and exports come from it.
    pub info: MediaInfo,
    /// Its review proxy, when it has one ready: the players decode that
    /// instead (the same frames, rate and timecode, at the stream's size).
    pub proxy: Option<std::path::PathBuf>,
    pub stream: StreamSettings,
    pub rtc: RtcSettings,
    /// SHA-256 (hex) and size of the file, read when it was prepared.
    pub checksum: (String, u64),
    /// Nobody watching this long, the players stop (`media.idle_teardown_ms`).
    pub idle_teardown: Duration,
    /// How players that fail are started again (`media.restart_*`).
    pub restarts: RestartPolicy,
    /// Where pictures for viewers on other nodes go (cluster mode).
    pub relay: Option<Arc<crate::cluster::MediaRelay>>,
}

impl MediaSetup {
    /// What the players open: the proxy when there is one, else the source.
    pub fn playable(&self) -> MediaInfo {
        match &self.proxy {
            Some(path) => MediaInfo {
                path: path.clone(),
                ..self.info.clone()
            },
            None => self.info.clone(),
        }
    }
}

/// Why a session could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The player could not open or decode the media.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// The WebRTC stack could not be set up.
    #[error(transparent)]
    Rtc(#[from] RtcError),
}

/// One participant's live connection, as the session task sees it.
struct Conn {
    /// Tells a replaced connection's late disconnect apart from the
    /// current one's.
    conn_id: u64,
    tx: mpsc::Sender<Outbound>,
    role: Role,
    link_id: String,
    resume_hex: String,
    /// Its queue overflowed: it gets no events until a snapshot fits.
    lagged: bool,
}

struct SessionTask {
    session: Session,
    conns: HashMap<ParticipantId, Conn>,
    clock: ServerClock,
    metrics: Arc<Metrics>,
    media: Option<Arc<SessionMedia>>,
    /// Why the media stopped, for participants who join afterwards.
    media_error: Option<String>,
    /// For answers from the record; weak, so that the task still ends
    /// when every handle is gone.
    me: mpsc::WeakSender<SessionMsg>,
    store: Store,
    webhooks: crate::webhooks::Webhooks,
    /// The notes, drawings and approvals late joiners get.
    review: SessionReview,
    version: Option<WireVersion>,
    /// Version B while the room compares: its record and its file.
    compared: Option<CompareRequest>,
    ended_at: Option<i64>,
    /// The anchor frame last written to the record.
    recorded_frame: i64,
    /// Whether the room was playing, and how fast, at that write.
    recorded_motion: (bool, crate::clock::Speed),
    parts: RoomParts,
    /// Set for a personal room: the session it belongs to.
    belonging: Option<Belonging>,
    /// A session's personal rooms, by their key (hex).
    rooms: HashMap<String, PersonalRoom>,
    /// Personal rooms the record kept over a restart and nobody has come
    /// back to yet, by [`room_digest`].
    saved_rooms: HashMap<String, PersonalRoomRow>,
    /// Shared with the handle: whether the live review has ended.
    ended: Arc<std::sync::atomic::AtomicBool>,
    /// The operator deleted the session: say goodbye and stop.
    closing: bool,
    /// Since when nobody has been connected (or the task's start).
    idle_since: Instant,
    /// A personal room is born empty; it closes once it is empty again.
    anyone_joined: bool,
    /// What the writers say about how long broadcasts take to reach
    /// everyone, and what the lead makes of it.
    fanout_meter: Arc<FanoutMeter>,
    fanout: FanoutEstimate,
    /// Transport changes recorded and not yet known committed (cluster
    /// mode): the broadcast waits for them.
    committing: Vec<oneshot::Receiver<Result<(), StoreError>>>,
}

/// How often a lagged connection is offered a snapshot.
const RESYNC_RETRY: Duration = Duration::from_millis(100);

impl SessionTask {
    async fn run(
        mut self,
        mut rx: mpsc::Receiver<SessionMsg>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let wake = self.session.poll_timeout().map(|t| self.clock.instant(t));
            let resync = self
                .conns
                .values()
                .any(|c| c.lagged)
                .then(|| Instant::now() + RESYNC_RETRY);
            // An open live review that nobody is in ends by itself after
            // `idle_expiry`.
            let expiry =
                (self.conns.is_empty() && self.ended_at.is_none() && self.belonging.is_none())
                    .then(|| self.idle_since + self.parts.idle_expiry);
            let deadline = [wake, resync, expiry].into_iter().flatten().min();
            let was_empty = self.conns.is_empty();
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(msg) => self.handle(msg),
                    None => break,
                },
                () = sleep_until(deadline) => {
                    self.session.handle_timeout(self.clock.now());
                    if expiry.is_some_and(|at| Instant::now() >= at) {
                        let (reply, _) = oneshot::channel();
                        let idle = self.parts.idle_expiry.as_secs();
                        self.end(reply, &format!("after {idle} s with nobody in it"));
                    }
                }
                _ = shutdown.changed() => break,
            }
            self.flush().await;
            if self.closing {
                break;
            }
            if !was_empty && self.conns.is_empty() {
                self.idle_since = Instant::now();
            }
            if self.anyone_joined && self.session.is_empty() {
                if let Some(belonging) = &self.belonging {
                    if let Some(parent) = belonging.parent.upgrade() {
                        let key = hex(&belonging.key);
                        let _ = parent.try_send(SessionMsg::RoomEmpty { key });
                    }
                    break;
                }
            }
        }
    }

    fn handle(&mut self, msg: SessionMsg) {
        let now = self.clock.now();
        match msg {
            SessionMsg::Join {
                name,
                role,
                link_id,
                resume,
                resume_only,
                fresh_secret,
                conn_id,
                tx,
                reply,
            } => {
                // A personal room is found again only through the link
                // that opened it: the token decides the role, never a
                // secret borrowed from someone else's link.
                let room = resume
                    .and_then(|secret| self.rooms.get(&hex(&secret)))
                    .filter(|room| room.link_id == link_id);
                if let Some(room) = room {
                    let _ = reply.send(Ok(Admitted::Elsewhere(room.handle.clone())));
                    return;
                }
                let resumed = resume.and_then(|secret| {
                    let id = self.session.resume(now, &secret, &link_id).ok()?;
                    Some((id, secret))
                });
                // Back after a restart: the room reopens where its own
                // playback stood, under the same key.
                let saved = resume
                    .filter(|_| resumed.is_none() && self.ended_at.is_some())
                    .and_then(|secret| {
                        let digest = room_digest(&secret);
                        self.saved_rooms
                            .get(&digest)
                            .filter(|room| room.link_id == link_id)?;
                        let room = self.saved_rooms.remove(&digest)?;
                        Some((secret, room))
                    });
                if let Some((secret, room)) = saved {
                    let at = (room.entry, room.frame);
                    let _ = reply.send(self.open_personal_room(secret, link_id, Some(at)));
                    return;
                }
                if resumed.is_none() && resume_only {
                    let _ = reply.send(Err(JoinError::NothingToResume));
                    return;
                }
                if resumed.is_none() && self.ended_at.is_some() && self.belonging.is_none() {
                    let _ = reply.send(self.open_personal_room(fresh_secret, link_id, None));
                    return;
                }
                // A personal room's participant always holds the room's
                // key, so that its session finds the room on a reconnect.
                let fresh_secret = self.belonging.as_ref().map_or(fresh_secret, |b| b.key);
                // A stale resume secret is not an error: the client simply
                // becomes a new participant.
                let joined = match resumed {
                    Some(ok) => Ok(ok),
                    None => self
                        .session
                        .join(
                            now,
                            JoinRequest {
                                name,
                                role,
                                link: link_id.clone(),
                                resume_secret: fresh_secret,
                            },
                        )
                        .map(|id| (id, fresh_secret)),
                };
                let result = joined.map(|(id, secret)| {
                    let role = self.session.presence(id).map_or(role, |p| p.role);
                    let old = self.conns.insert(
                        id,
                        Conn {
                            conn_id,
                            tx,
                            role,
                            link_id,
                            resume_hex: hex(&secret),
                            lagged: false,
                        },
                    );
                    if let Some(old) = old {
                        let _ = old.tx.try_send(Outbound::Close {
                            code: ErrorCode::Replaced,
                            message: "replaced by a newer connection".into(),
                        });
                    }
                    id
                });
                if let Ok(id) = &result {
                    self.anyone_joined = true;
                    let name = self.session.presence(*id).map(|p| p.name.clone());
                    let place = if self.belonging.is_some() {
                        " in a room of their own"
                    } else {
                        ""
                    };
                    self.log_event("joined", format!("participant {} {name:?}{place}", id.0));
                }
                let _ = reply.send(result.map(Admitted::Here));
            }
            SessionMsg::Command {
                from,
                conn_id,
                command,
                shown,
                reference,
            } => {
                if !self.is_current(from, conn_id) {
                    return;
                }
                let fanout = self.fanout.update(&self.fanout_meter, Instant::now());
                let fanout = i64::try_from(fanout.as_micros()).unwrap_or(i64::MAX);
                self.session.set_fanout_micros(fanout);
                if let Err(err) = self.session.handle_seen(now, from, command, shown) {
                    self.send_error(
                        from,
                        ErrorCode::of_command(&err),
                        err.to_string(),
                        reference,
                    );
                }
            }
            SessionMsg::Compare {
                from,
                conn_id,
                request,
                reference,
            } => {
                if self.is_current(from, conn_id) {
                    self.compare(from, request.map(|r| *r), reference);
                }
            }
            SessionMsg::Sync { from, report } => self.session.report_sync(now, from, report),
            SessionMsg::Frame {
                from,
                frame,
                at,
                latency_micros,
            } => self
                .session
                .report_frame(now, from, frame, at, latency_micros),
            SessionMsg::Disconnect { from, conn_id } => {
                if self.is_current(from, conn_id) {
                    self.conns.remove(&from);
                    self.session.disconnect(now, from);
                }
            }
            SessionMsg::Leave { from, conn_id } => {
                if self.is_current(from, conn_id) {
                    self.conns.remove(&from);
                    self.session.leave(now, from);
                }
            }
            SessionMsg::Record {
                from,
                conn_id,
                draft,
            } => {
                if self.is_current(from, conn_id) {
                    self.write_record(from, draft);
                }
            }
            SessionMsg::Stroking {
                from,
                conn_id,
                stroking,
            } => {
                if self.is_current(from, conn_id) {
                    self.pass_stroke_around(from, stroking);
                }
            }
            SessionMsg::Stored {
                from,
                key,
                kind,
                result,
            } => self.stored(from, key, kind, result),
            SessionMsg::AddVersion { entry, own_media } => self.add_version(*entry, own_media),
            SessionMsg::ProxyReady { checksum, path } => {
                for room in self.rooms.values() {
                    let _ = room.handle.tx.try_send(SessionMsg::ProxyReady {
                        checksum: checksum.clone(),
                        path: path.clone(),
                    });
                }
                self.proxy_ready(&checksum, &path);
            }
            SessionMsg::Close {
                reply,
                code,
                message,
            } => {
                for room in self.rooms.values() {
                    let (tx, _) = oneshot::channel();
                    let _ = room.handle.tx.try_send(SessionMsg::Close {
                        reply: tx,
                        code,
                        message: message.clone(),
                    });
                }
                for conn in self.conns.values() {
                    let _ = conn.tx.try_send(Outbound::Close {
                        code,
                        message: message.clone(),
                    });
                }
                self.closing = true;
                let _ = reply.send(());
            }
            SessionMsg::RevokeLink { link_id } => {
                for room in self.rooms.values() {
                    let _ = room.handle.tx.try_send(SessionMsg::RevokeLink {
                        link_id: link_id.clone(),
                    });
                }
                let revoked: Vec<ParticipantId> = self
                    .conns
                    .iter()
                    .filter(|(_, c)| c.link_id == link_id)
                    .map(|(id, _)| *id)
                    .collect();
                for id in revoked {
                    if let Some(conn) = self.conns.remove(&id) {
                        let _ = conn.tx.try_send(Outbound::Close {
                            code: ErrorCode::LinkRevoked,
                            message: "the host revoked this link".into(),
                        });
                    }
                    self.session.leave(now, id);
                }
            }
            SessionMsg::State { reply } => {
                let _ = reply.send((&self.session.snapshot(false)).into());
            }
            SessionMsg::End { reply } => self.end(reply, "by the host"),
            SessionMsg::MediaFailed { message } => {
                let text: Utf8Bytes = protocol::to_json(&ServerMessage::MediaError {
                    message: message.clone(),
                })
                .into();
                for conn in self.conns.values() {
                    let _ = conn.tx.try_send(Outbound::Text {
                        text: text.clone(),
                        stamp: None,
                    });
                }
                self.media_error = Some(message);
            }
            SessionMsg::MediaRestored => {
                if self.media_error.take().is_some() {
                    self.broadcast(&ServerMessage::MediaRestored {});
                }
            }
            SessionMsg::Relay {
                recorded,
                from_room,
            } => {
                let (_, news) = self.review.apply(String::new(), &recorded);
                if let Some((_, news)) = news {
                    self.broadcast(&news);
                    self.pass_on(&recorded, from_room.as_deref());
                }
            }
            SessionMsg::RoomEmpty { key } => {
                self.rooms.remove(&key);
                if let Some(key) = unhex16(&key) {
                    self.store.write_later(Write::RoomClosed {
                        session_id: self.session.info().id.clone(),
                        room: room_digest(&key),
                    });
                }
            }
        }
    }

    /// Opens a room of one for someone joining after the live review
    /// ended, so that their playback moves nobody else's. It shares the
    /// session's record: what they add is the session's.
    /// `at`: the (entry, frame) a room stood at before a restart; a new
    /// room opens where the live review stood.
    fn open_personal_room(
        &mut self,
        key: [u8; 16],
        link_id: String,
        at: Option<(i64, i64)>,
    ) -> Result<Admitted, JoinError> {
        if self.rooms.len() >= MAX_PERSONAL_ROOMS {
            return Err(JoinError::TooManyRooms(MAX_PERSONAL_ROOMS));
        }
        let now = self.clock.now();
        let entries = self.parts.playlist.len().max(1);
        let (entry, frame) = at
            .and_then(|(entry, frame)| Some((usize::try_from(entry).ok()?, frame)))
            .filter(|(entry, _)| *entry < entries)
            .unwrap_or((self.session.entry(), self.session.position(now)));
        let cuts = self.parts.playlist.iter().map(PlaylistEntry::cut).collect();
        let session = Session::new((*self.parts.info).clone(), self.parts.limits, now)
            .personal()
            .with_playlist(cuts, entry)
            .opening_at(frame, now);
        let mut parts = self.parts.clone();
        parts.media_error = self.media_error.clone();
        if let Some(entry) = self.parts.playlist.get(entry) {
            parts.setup = Some(entry.setup.clone());
            parts.version = Some(entry.version.clone());
        }
        let belonging = Belonging {
            parent: self.me.clone(),
            key,
            link_id: link_id.clone(),
        };
        match open_room(
            session,
            parts,
            self.review.clone(),
            self.ended_at,
            Place::Personal(belonging),
        ) {
            Ok(room) => {
                let handle = room.clone();
                self.rooms
                    .insert(hex(&key), PersonalRoom { handle, link_id });
                Ok(Admitted::Elsewhere(room))
            }
            Err(err) => {
                tracing::warn!(%err, "could not open a personal review room");
                Err(JoinError::RoomUnavailable(err.to_string()))
            }
        }
    }

    /// Tells the session's other rooms of a record one of them committed.
    fn pass_on(&self, recorded: &Recorded, from_room: Option<&str>) {
        match &self.belonging {
            Some(belonging) => {
                if let Some(parent) = belonging.parent.upgrade() {
                    let relay = SessionMsg::Relay {
                        recorded: recorded.clone(),
                        from_room: Some(hex(&belonging.key)),
                    };
                    if parent.try_send(relay).is_err() {
                        tracing::warn!("a session's queue is full; a record was not passed on");
                    }
                }
            }
            None => {
                for (key, room) in &self.rooms {
                    if Some(key.as_str()) == from_room {
                        continue;
                    }
                    let relay = SessionMsg::Relay {
                        recorded: recorded.clone(),
                        from_room: None,
                    };
                    if room.handle.tx.try_send(relay).is_err() {
                        tracing::warn!("a room's queue is full; a record was not passed on");
                    }
                }
            }
        }
    }

    /// Checks a draft and hands it to the record; the author hears back
    /// once it is on disk, and the room sees it then too.
    fn write_record(&mut self, from: ParticipantId, draft: Draft) {
        let Some((role, link)) = self
            .conns
            .get(&from)
            .map(|conn| (conn.role, conn.link_id.clone()))
        else {
            return;
        };
        let (key, kind) = (draft.key().to_string(), draft.kind());
        let author = self
            .session
            .presence(from)
            .map(|p| p.name.clone())
            .unwrap_or_default();
        let version = match self.pointed_version(draft.pointed()) {
            Ok(version) => version,
            Err(message) => {
                self.metrics.rejected_in.fetch_add(1, Relaxed);
                let refused = kind.refused(key, ErrorCode::UnknownVersion, message);
                return self.reply(from, &refused);
            }
        };
        let info = self.session.info();
        let ctx = Context {
            session_id: &info.id,
            version,
            timeline: info.timeline(),
            role,
            author,
            link: &link,
        };
        if role != Role::Viewer {
            if let Some(ack) = self.review.already_done(&draft) {
                self.reply(from, &ack);
                return;
            }
        }
        let receipt = || self.receipt(from);
        let record = match self.review.check(draft, &ctx, receipt) {
            Ok(record) => record,
            Err((code, message)) => {
                self.metrics.rejected_in.fetch_add(1, Relaxed);
                self.reply(from, &kind.refused(key, code, message));
                return;
            }
        };
        let pending = self.store.record(record);
        let me = self.me.clone();
        tokio::spawn(async move {
            let result = pending.await.unwrap_or(Err(StoreError::Closed));
            if let Some(me) = me.upgrade() {
                let _ = me
                    .send(SessionMsg::Stored {
                        from,
                        key,
                        kind,
                        result,
                    })
                    .await;
            }
        });
    }

    /// Ends the live review: the room is told, the record and the team's
    /// other tools learn of it, and the room stays open for the record.
    /// Ending again changes nothing.
    fn end(&mut self, reply: oneshot::Sender<Result<i64, StoreError>>, why: &str) {
        if let Some(at) = self.ended_at {
            let _ = reply.send(Ok(at));
            return;
        }
        let at = unix_millis();
        self.ended_at = Some(at);
        self.ended.store(true, Relaxed);
        let info = self.session.info();
        let decisions: Vec<_> = self
            .review
            .approvals
            .iter()
            .map(|a| serde_json::json!({"author": a.author, "status": a.status.name()}))
            .collect();
        self.webhooks.announce(crate::webhooks::Announcement {
            event: "session.ended",
            session_id: info.id.clone(),
            data: serde_json::json!({
                "title": info.title,
                "version": self.version,
                "notes": self.review.notes.iter().filter(|n| n.parent.is_none()).count(),
                "openNotes": self.review.notes.iter().filter(|n| n.parent.is_none() && n.resolved_at.is_none()).count(),
                "drawings": self.review.drawings.len(),
                "approvals": decisions,
            }),
        });
        let done = self.store.write_acked(Write::End {
            session_id: info.id.clone(),
            at,
        });
        self.log_event("ended", why.into());
        self.broadcast(&ServerMessage::Ended { at });
        tokio::spawn(async move {
            let result = done.await.unwrap_or(Err(StoreError::Closed));
            let _ = reply.send(result.map(|()| at));
        });
    }

    /// What `who` was shown, for an approval's receipt.
    fn receipt(&self, who: ParticipantId) -> Receipt {
        let seen = self.session.seen(who).cloned().unwrap_or_default();
        let sent = self.media.as_ref().and_then(|m| m.hub.sent_to(who));
        let (stream, stream_bytes, stream_kbps) = match (&self.media, sent) {
            (Some(media), Some((bytes, span))) => (
                Some(format!(
                    "{}x{} {}",
                    media.wire.stream_width, media.wire.stream_height, media.wire.codec
                )),
                Some(bytes as i64),
                (span.as_millis() > 0).then(|| (bytes as u128 * 8 / span.as_millis()) as i64),
            ),
            _ => (None, None, None),
        };
        Receipt {
            frames: seen.ranges().to_vec(),
            frame_count: seen.frame_count(),
            stream,
            stream_bytes,
            stream_kbps,
            checksum: self.version.as_ref().map(|v| v.checksum.clone()),
        }
    }

    fn stored(&mut self, from: ParticipantId, key: String, kind: Kind, result: RecordResult) {
        let reply = match result {
            Ok((recorded, _)) => {
                let (ack, news) = self.review.apply(key, &recorded);
                if let Some((happened, news)) = news {
                    self.announce(happened, &news);
                    self.broadcast(&news);
                    self.pass_on(&recorded, None);
                }
                ack
            }
            Err(err) => {
                let code = match err {
                    StoreError::KeyConflict(..) => ErrorCode::KeyConflict,
                    _ => ErrorCode::Store,
                };
                kind.refused(key, code, err.to_string())
            }
        };
        self.reply(from, &reply);
    }

    /// An answer to one participant's draft. If its queue is full the
    /// answer is not lost: the participant is resynced, and the catch-up
    /// lists settle its outbox (what is stored is acknowledged by being
    /// listed; the rest is sent again under the same keys).
    fn reply(&mut self, to: ParticipantId, message: &ServerMessage) {
        if let Some(conn) = self.conns.get_mut(&to) {
            if !conn.lagged && conn.tx.try_send(Outbound::message(message)).is_err() {
                conn.lagged = true;
                self.metrics.slow_consumer_resyncs.fetch_add(1, Relaxed);
            }
        }
    }

    /// Logs a change to the record and tells the team's other tools.
    fn announce(&self, happened: Happened, news: &ServerMessage) {
        let info = self.session.info();
        let (detail, hook) = match news {
            ServerMessage::Note { note } => {
                let event = match happened {
                    Happened::NoteResolved => "note.resolved",
                    Happened::NoteReopened => "note.reopened",
                    _ => "note.created",
                };
                let data = serde_json::json!({
                    "note": note,
                    "timecode": info.timecode.label(note.frame).to_string(),
                    "version": self.version,
                });
                (
                    format!("{} at {}", note.id, note.frame),
                    Some((event, data)),
                )
            }
            ServerMessage::Drawing { drawing } => (
                format!("{} {} at {}", drawing.id, drawing.tool, drawing.frame),
                None,
            ),
            ServerMessage::Approval { approval } => {
                let data = serde_json::json!({ "approval": approval, "version": self.version });
                (
                    format!(
                        "{} {} by {}",
                        approval.id,
                        approval.status.name(),
                        approval.author
                    ),
                    Some(("approval.changed", data)),
                )
            }
            _ => return,
        };
        let kind = match happened {
            Happened::NoteCreated => "note",
            Happened::NoteResolved => "resolve",
            Happened::NoteReopened => "reopen",
            Happened::Drawn => "drawing",
            Happened::Erased => "erase",
            Happened::Decided => "approval",
        };
        self.log_event(kind, detail);
        if let Some((event, data)) = hook {
            self.webhooks.announce(crate::webhooks::Announcement {
                event,
                session_id: info.id.clone(),
                data,
            });
        }
    }

    /// Checks a part of a stroke in progress by a drawing's rules and
    /// passes it to everyone but its author. It is a preview, so a
    /// participant whose queue is full just misses it: the finished
    /// drawing is what counts, and it comes through the record.
    fn pass_stroke_around(&mut self, from: ParticipantId, stroking: Stroking) {
        let Some(role) = self.conns.get(&from).map(|conn| conn.role) else {
            return;
        };
        if role == Role::Viewer {
            let message = "viewers cannot draw; ask the host for a reviewer link".into();
            self.send_error(from, ErrorCode::Forbidden, message, None);
            return;
        }
        let message = match stroking {
            Stroking::End { key } => ServerMessage::StrokeEnd { by: from.0, key },
            Stroking::Part(draft) => match self.check_stroke(from, draft) {
                Ok(part) => part,
                Err((code, message)) => {
                    self.send_error(from, code, message, None);
                    return;
                }
            },
        };
        let text: Utf8Bytes = protocol::to_json(&message).into();
        for (_, conn) in self
            .conns
            .iter()
            .filter(|(id, c)| **id != from && !c.lagged)
        {
            let item = Outbound::Text {
                text: text.clone(),
                stamp: None,
            };
            if conn.tx.try_send(item).is_err() {
                self.metrics.stroke_parts_missed.fetch_add(1, Relaxed);
            }
        }
    }

    /// The part as the room sees it, or why it is refused.
    fn check_stroke(
        &self,
        from: ParticipantId,
        draft: WireStroke,
    ) -> Result<ServerMessage, (ErrorCode, String)> {
        if draft.key.is_empty() || draft.key.len() > record::MAX_KEY {
            let message = format!("a key is 1 to {} bytes", record::MAX_KEY);
            return Err((ErrorCode::BadDrawing, message));
        }
        let timeline = self.session.info().timeline();
        if !timeline.contains(draft.frame) {
            let message = format!("a drawing's frame must lie in 0..{}", timeline.duration);
            return Err((ErrorCode::FrameOutOfRange, message));
        }
        let part = StrokePart::new(
            &draft.tool,
            &draft.colour,
            draft.width,
            draft.from,
            draft.points,
        )
        .map_err(|e| (ErrorCode::BadDrawing, e.to_string()))?;
        Ok(ServerMessage::Stroke {
            by: from.0,
            version_id: self.version.as_ref().map(|v| v.id.clone()),
            stroke: WireStroke {
                key: draft.key,
                frame: draft.frame,
                tool: part.shape.tool.name().into(),
                colour: part.shape.colour.to_string(),
                width: part.shape.width,
                from: part.from,
                points: part.shape.points,
            },
        })
    }

    /// Serializes once and queues for every connection that keeps up.
    fn broadcast(&mut self, message: &ServerMessage) {
        let text: Utf8Bytes = protocol::to_json(message).into();
        for conn in self.conns.values_mut().filter(|c| !c.lagged) {
            let item = Outbound::Text {
                text: text.clone(),
                stamp: None,
            };
            if conn.tx.try_send(item).is_err() {
                conn.lagged = true;
                self.metrics.slow_consumer_resyncs.fetch_add(1, Relaxed);
            }
        }
    }

    /// Writes what the record keeps of an event: the log entry, and where
    /// the room stands so that a restart reopens there.
    fn record(&mut self, event: &crate::session::Event) {
        use crate::session::Event;
        // One person's own playback is neither the room's position nor
        // part of the review's story; their joins, leaves and what they
        // add to the record are. Where it stands is kept apart, for a
        // restart to reopen the room there.
        if let Some(belonging) = &self.belonging {
            if let Event::Transport {
                transport, cause, ..
            } = event
            {
                let cued = matches!(cause, TransportCause::Command(Command::Cue(..)));
                if cued || transport.anchor_frame != self.recorded_frame {
                    self.recorded_frame = transport.anchor_frame;
                    self.store.write_later(Write::RoomFrame(PersonalRoomRow {
                        session_id: self.session.info().id.clone(),
                        room: room_digest(&belonging.key),
                        link_id: belonging.link_id.clone(),
                        entry: self.session.entry() as i64,
                        frame: transport.anchor_frame,
                    }));
                }
            }
            if !matches!(event, Event::Presence { .. }) {
                return;
            }
        }
        match event {
            Event::Transport {
                transport,
                cause,
                by,
                ..
            } => {
                self.log_event(
                    "transport",
                    format!(
                        "{cause:?} by {:?}: {} at frame {} speed {}/{}",
                        by.map(|p| p.0),
                        if transport.playing { "play" } else { "pause" },
                        transport.anchor_frame,
                        transport.speed.num(),
                        transport.speed.den()
                    ),
                );
                // A cue is recorded whole (entry, timeline, version and
                // frame in one write), so the room never reopens on one
                // entry at another's frame.
                if let TransportCause::Command(Command::Cue(entry, _)) = cause {
                    let info = self.session.info();
                    let rate = info.timecode.rate();
                    let write = Write::Cue {
                        session_id: info.id.clone(),
                        entry: *entry as i64,
                        frame: transport.anchor_frame,
                        version_id: self
                            .parts
                            .playlist
                            .get(*entry)
                            .map(|c| c.version.id.clone()),
                        fps_num: rate.num(),
                        fps_den: rate.den(),
                        drop_frame: info.timecode.drop_frame(),
                        start_timecode: info.timecode.start().to_string(),
                        duration_frames: info.duration_frames,
                    };
                    self.recorded_frame = transport.anchor_frame;
                    self.write_transport(write);
                }
                let motion = motion_of(transport);
                if transport.anchor_frame != self.recorded_frame || motion != self.recorded_motion {
                    self.recorded_frame = transport.anchor_frame;
                    self.recorded_motion = motion;
                    // In wall-clock time: another node, with a server clock
                    // of its own, may be the one to read it.
                    let since_unix_ms = unix_millis().saturating_add(
                        transport
                            .anchor_time
                            .as_micros()
                            .saturating_sub(self.clock.now().as_micros())
                            / 1000,
                    );
                    let write = Write::LastFrame {
                        session_id: self.session.info().id.clone(),
                        frame: transport.anchor_frame,
                        moving: transport.playing.then(|| Moving {
                            since_unix_ms,
                            speed_num: i64::from(transport.speed.num()),
                            speed_den: i64::from(transport.speed.den()),
                        }),
                    };
                    self.write_transport(write);
                }
            }
            Event::Control {
                control, reason, ..
            } => self.log_event(
                "control",
                format!("{reason:?}: driver {:?}", control.driver.map(|p| p.0)),
            ),
            Event::Presence { left, .. } => {
                for id in left {
                    self.log_event("left", format!("participant {}", id.0));
                }
            }
            Event::Compare { compare, by, .. } => self.log_event(
                "compare",
                match compare {
                    Some(c) => format!(
                        "{:?} with version {} (wipe {}‰) by {:?}",
                        c.mode,
                        c.version,
                        c.wipe_permille,
                        by.map(|p| p.0)
                    ),
                    None => format!("stopped by {:?}", by.map(|p| p.0)),
                },
            ),
            Event::Welcome { .. } => {}
        }
    }

    /// Appends to the session's event log without waiting for it.
    fn log_event(&self, kind: &str, detail: String) {
        self.store.write_later(Write::Event {
            session_id: self.session.info().id.clone(),
            at: unix_millis(),
            kind: kind.into(),
            detail,
        });
    }

    fn is_current(&self, id: ParticipantId, conn_id: u64) -> bool {
        self.conns.get(&id).is_some_and(|c| c.conn_id == conn_id)
    }

    fn send_error(
        &mut self,
        to: ParticipantId,
        code: ErrorCode,
        message: String,
        reference: Option<u32>,
    ) {
        if let Some(conn) = self.conns.get(&to) {
            self.metrics.rejected_in.fetch_add(1, Relaxed);
            let _ = conn.tx.try_send(Outbound::message(&ServerMessage::Error {
                code,
                message,
                reference,
                retry_after_secs: None,
            }));
        }
    }

    /// Sends every pending output, then offers snapshots to lagged
    /// connections.
    async fn flush(&mut self) {
        loop {
            let outputs: Vec<_> = std::iter::from_fn(|| self.session.poll_output()).collect();
            if outputs.is_empty() {
                self.resync_lagged();
                return;
            }
            for output in &outputs {
                self.record(&output.event);
            }
            // The fan-out stamp starts before the commit wait, so the lead
            // the session measures grows with a slow record's commits.
            let queued_at = Instant::now();
            self.await_commits().await;
            for output in outputs {
                self.send_output(output, queued_at);
            }
        }
    }

    /// Records where the room stands. In cluster mode the broadcast of
    /// the change waits for its commit ([`Self::await_commits`]).
    fn write_transport(&mut self, write: Write) {
        if self.parts.transport_commit_wait.is_some() {
            self.committing.push(self.store.write_acked(write));
        } else {
            self.store.write_later(write);
        }
    }

    /// Waits (at most `transport_commit_wait`) for the transport changes
    /// just recorded to be committed: a change is broadcast only once a
    /// node taking the session over would find it.
    async fn await_commits(&mut self) {
        if self.committing.is_empty() {
            return;
        }
        let pending = std::mem::take(&mut self.committing);
        let wait = self.parts.transport_commit_wait.unwrap_or_default();
        let committed = tokio::time::timeout(wait, futures_util::future::join_all(pending)).await;
        if committed.is_err() {
            self.metrics.transport_commit_late.fetch_add(1, Relaxed);
            tracing::warn!(
                session = %self.session.info().id,
                "a transport change was broadcast before the record committed it"
            );
        }
    }

    fn send_output(&mut self, output: crate::session::Output, queued_at: Instant) {
        {
            if let crate::session::Event::Welcome { you, snapshot } = &output.event {
                self.welcome(*you, snapshot);
                return;
            }
            let message = match &output.event {
                crate::session::Event::Transport {
                    version,
                    transport,
                    cause: TransportCause::Command(Command::Cue(entry, _)),
                    by,
                } => self.cue(*entry, *version, transport, *by),
                event @ crate::session::Event::Compare { .. } => match self.compare_news(event) {
                    Some(message) => message,
                    None => return,
                },
                event => match protocol::event_message(event) {
                    Some(message) => message,
                    None => return,
                },
            };
            let mut texts: Vec<Utf8Bytes> = vec![protocol::to_json(&message).into()];
            if let (
                Some(media),
                crate::session::Event::Transport {
                    version,
                    transport,
                    cause,
                    ..
                },
            ) = (&self.media, &output.event)
            {
                if !matches!(cause, TransportCause::Command(Command::Cue(..))) {
                    media.follow(*transport);
                }
                let map =
                    protocol::frame_map(*version, transport, self.session.info().timecode.rate());
                texts.push(protocol::to_json(&map).into());
            }
            // Only a command's transport change is due at a chosen instant;
            // one that reached the end took effect when it says.
            let due = match &output.event {
                crate::session::Event::Transport {
                    transport,
                    cause: TransportCause::Command(_),
                    ..
                } => Some(self.clock.instant(transport.anchor_time)),
                _ => None,
            };
            let stamp = Some(Arc::new(Stamp {
                queued_at,
                due,
                meter: self.fanout_meter.clone(),
            }));
            for (id, conn) in self.conns.iter_mut() {
                let wanted = match output.to {
                    Audience::All => true,
                    Audience::One(to) => to == *id,
                    Audience::Staff => conn.role != Role::Viewer,
                    Audience::Viewers => conn.role == Role::Viewer,
                };
                if !wanted || conn.lagged {
                    continue;
                }
                for text in &texts {
                    let item = Outbound::Text {
                        text: text.clone(),
                        stamp: stamp.clone(),
                    };
                    if let Err(mpsc::error::TrySendError::Full(_)) = conn.tx.try_send(item) {
                        conn.lagged = true;
                        self.metrics.slow_consumer_resyncs.fetch_add(1, Relaxed);
                        break;
                    }
                }
            }
        }
    }

    fn welcome(&mut self, you: ParticipantId, snapshot: &Snapshot) {
        let compare = self.wire_compare();
        let proxy = self.current_setup().map(|setup| setup.proxy.is_some());
        let Some(conn) = self.conns.get_mut(&you) else {
            return;
        };
        let mut message = protocol::welcome_message(
            self.session.info(),
            protocol::Newcomer {
                you,
                role: conn.role,
                resume: conn.resume_hex.clone(),
            },
            snapshot,
            self.clock.now(),
            self.media.as_ref().map(|m| WireMedia {
                version: self.version.clone(),
                // What the players open now: the entry on screen's file,
                // its proxy once one is made.
                proxy: proxy.unwrap_or(m.wire.proxy),
                ..m.wire.clone()
            }),
            if self.belonging.is_some() {
                protocol::WireRoom::Personal
            } else {
                protocol::WireRoom::Shared
            },
            self.parts
                .playlist
                .iter()
                .map(PlaylistEntry::wire)
                .collect(),
        );
        if let ServerMessage::Welcome { state, .. } = &mut message {
            state.compare = compare;
        }
        conn.lagged = conn.tx.try_send(Outbound::message(&message)).is_err();
        if self.media.is_some() {
            let map = protocol::frame_map(
                snapshot.version,
                &snapshot.transport,
                self.session.info().timecode.rate(),
            );
            let _ = conn.tx.try_send(Outbound::message(&map));
        }
        if let Some(message) = &self.media_error {
            let _ = conn
                .tx
                .try_send(Outbound::message(&ServerMessage::MediaError {
                    message: message.clone(),
                }));
        }
        if conn
            .tx
            .try_send(Outbound::CatchUp(self.review.catch_up_texts()))
            .is_err()
        {
            conn.lagged = true;
        }
        if let Some(at) = self.ended_at {
            let _ = conn
                .tx
                .try_send(Outbound::message(&ServerMessage::Ended { at }));
        }
    }

    fn resync_lagged(&mut self) {
        let mut cached: [Option<Utf8Bytes>; 2] = [None, None];
        let compare = self.wire_compare();
        for conn in self.conns.values_mut().filter(|c| c.lagged) {
            if conn.tx.capacity() < 2 {
                continue;
            }
            let for_viewer = conn.role == Role::Viewer;
            let text = cached[usize::from(for_viewer)]
                .get_or_insert_with(|| {
                    let mut state: WireSnapshot = (&self.session.snapshot(for_viewer)).into();
                    state.compare = compare.clone();
                    let message = ServerMessage::Snapshot {
                        state,
                        server_time: self.clock.now().as_micros(),
                    };
                    protocol::to_json(&message).into()
                })
                .clone();
            let item = Outbound::Text { text, stamp: None };
            // Notes and drawings made while it lagged are not in the
            // snapshot; two free slots take both.
            conn.lagged = conn.tx.try_send(item).is_err()
                || conn
                    .tx
                    .try_send(Outbound::CatchUp(self.review.catch_up_texts()))
                    .is_err();
        }
    }
}

fn motion_of(transport: &crate::clock::Transport) -> (bool, crate::clock::Speed) {
    (transport.playing, transport.speed)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// How a role is written in the record.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Host => "host",
        Role::Reviewer => "reviewer",
        Role::Viewer => "viewer",
    }
}

/// The role a recorded name stands for; anything unknown gets the least
/// power.
pub fn role_from_name(name: &str) -> Role {
    match name {
        "host" => Role::Host,
        "reviewer" => Role::Reviewer,
        _ => Role::Viewer,
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn unhex16(text: &str) -> Option<[u8; 16]> {
    if text.len() != 32 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}
