//! One live review room as a pure state machine: participants, roles, the
//! driver's seat, presence, and transport commands turned into events.
//!
//! The shape follows quinn-proto: the caller feeds in joins, commands and
//! reports with the current [`ServerTime`], asks [`Session::poll_timeout`]
//! when it next needs to be woken, calls [`Session::handle_timeout`] then,
//! and drains [`Session::poll_output`]. This module never reads a clock,
//! never touches a socket and knows nothing of JSON; that is what lets the
//! tests below run on exact, simulated time.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::clock::{LoopMarks, ServerTime, Speed, Timeline, Transport};
use crate::ranges::{FrameRanges, SeenFrames};
use crate::timecode::{Timecode, TimecodeError, TimecodeFormat};

/// Identifies a participant within one session. Stable across reconnects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParticipantId(pub u64);

/// What a link lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Runs the review: can always take control, grant it, and manage links.
    Host,
    /// Can drive playback once the driver grants control.
    Reviewer,
    /// Watches only.
    Viewer,
}

impl Role {
    pub fn can_drive(self) -> bool {
        matches!(self, Role::Host | Role::Reviewer)
    }
}

/// Tunables that shape a session's behaviour, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    pub max_participants: usize,
    /// The least time between a command's arrival and its `execute_at`.
    pub lead_min_micros: i64,
    /// The most; a participant slower than this applies commands late.
    pub lead_max_micros: i64,
    /// Added to the slowest participant's RTT to get the lead.
    pub lead_margin_micros: i64,
    /// The most the room's measured fan-out time may add to the lead. A
    /// room that takes longer to reach everyone applies commands late on
    /// its last pages rather than making every driver wait longer.
    pub lead_fanout_max_micros: i64,
    /// How long a disconnected driver keeps the seat before it returns to
    /// a host. Long enough to ride out a reconnect, short enough that the
    /// room is never without a driver for more than a few seconds.
    pub driver_grace_micros: i64,
    /// How long a disconnected participant can resume its identity.
    pub resume_window_micros: i64,
    /// Presence changes are batched and flushed at this interval, so that a
    /// room of thousands does not broadcast on every report.
    pub presence_interval_micros: i64,
    /// In rooms larger than this, viewers are not told about each other.
    pub presence_detail_limit: usize,
    /// The largest step a single command may take.
    pub max_step: i64,
}

impl Default for SessionLimits {
    fn default() -> Self {
        SessionLimits {
            max_participants: 5_000,
            lead_min_micros: 50_000,
            lead_max_micros: 500_000,
            lead_margin_micros: 20_000,
            lead_fanout_max_micros: 1_000_000,
            driver_grace_micros: 3_000_000,
            resume_window_micros: 60_000_000,
            presence_interval_micros: 500_000,
            presence_detail_limit: 100,
            max_step: 100_000,
        }
    }
}

/// One entry of a playlist as the room's clock sees it: a version or a
/// shot, with its own rate, start label and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cut {
    pub timecode: TimecodeFormat,
    pub duration_frames: i64,
}

/// Where a cue lands in the entry it moves to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CueAt {
    /// Its first frame: another shot of a playlist.
    #[default]
    Start,
    /// The frame with the timecode the room stands on, when the entry has
    /// it (else its first frame): another version of the same shot, as
    /// an editor's "v6" replaces "v5" under the same notes.
    SameTimecode,
}

/// The facts of a session. `timecode` and `duration_frames` are those of
/// the playlist entry on screen; they change only with a cue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub id: String,
    pub title: String,
    pub timecode: TimecodeFormat,
    pub duration_frames: i64,
    /// Text burned into every picture of the session, and the sign for
    /// pages to lay each viewer's own name over it; fixed at creation.
    pub watermark: Option<String>,
}

impl SessionInfo {
    pub fn timeline(&self) -> Timeline {
        Timeline {
            rate: self.timecode.rate(),
            duration: self.duration_frames,
        }
    }
}

/// Where a seek goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeekTarget {
    Frame(i64),
    Timecode(Timecode),
}

/// Something a participant asks the room to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Play,
    Pause,
    Seek(SeekTarget),
    /// Pauses and moves by this many frames (negative steps back).
    Step(i64),
    /// Plays at this speed.
    Shuttle(Speed),
    /// Sets the loop-in mark, at the given frame or the room's position.
    LoopIn(Option<i64>),
    LoopOut(Option<i64>),
    ClearLoop,
    RequestControl,
    /// Moves the room to another entry of its playlist, paused where
    /// [`CueAt`] says.
    Cue(usize, CueAt),
    /// The driver (or a host) hands the seat to someone.
    GrantControl(ParticipantId),
    /// The driver (or a host) turns down a request.
    DenyControl(ParticipantId),
    /// A host takes the seat, whoever has it.
    TakeControl,
    /// The driver gives the seat back to the host.
    ReleaseControl,
    /// A requester takes back their pending request.
    WithdrawControl,
}

impl Command {
    fn is_transport(&self) -> bool {
        matches!(
            self,
            Command::Play
                | Command::Pause
                | Command::Seek(_)
                | Command::Step(_)
                | Command::Shuttle(_)
                | Command::LoopIn(_)
                | Command::LoopOut(_)
                | Command::ClearLoop
                | Command::Cue(..)
        )
    }
}

/// The longest round trip or uncertainty a sync report may claim; more is
/// a broken or hostile client, and is read as this.
const MAX_REPORTED_MICROS: i64 = 60_000_000;

/// Why a join was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JoinError {
    /// The room already holds `max_participants`.
    #[error("the session is full ({0} participants)")]
    Full(usize),
    /// The resume secret matches nobody of this link still within the
    /// resume window.
    #[error("nothing to resume; join afresh")]
    NothingToResume,
    /// The review has ended and as many people as the server allows are
    /// reviewing it on their own (raised by the runtime, not the core).
    #[error("{0} people are reviewing this session on their own already; try again shortly")]
    TooManyRooms(usize),
    /// A room of one could not be opened (raised by the runtime).
    #[error("a review room could not be opened: {0}")]
    RoomUnavailable(String),
}

/// Why a command was refused. The sender gets this back; nobody else
/// hears about it and the session's state is untouched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The participant is not in the session (or has been removed).
    #[error("not a participant of this session")]
    UnknownParticipant,
    /// The role does not allow this, e.g. a viewer asking to drive.
    #[error("a {0:?} may not do this")]
    Forbidden(Role),
    /// Transport commands come only from the driver.
    #[error("only the driver can control playback; request control first")]
    NotDriver,
    /// A seek or loop mark outside the media.
    #[error("frame {frame} is outside the media (0..={last})")]
    FrameOutOfRange { frame: i64, last: i64 },
    /// A timecode that does not exist at this session's rate.
    #[error("{0}")]
    BadTimecode(#[from] TimecodeError),
    /// A step larger than `max_step`.
    #[error("a step may move at most {0} frames")]
    StepTooLarge(i64),
    /// Grant or deny named someone who is not waiting or cannot drive.
    #[error("participant {0} cannot take control")]
    CannotTakeControl(u64),
    /// A cue to an entry the playlist does not have.
    #[error("the playlist has no entry {entry} (it has {entries})")]
    UnknownEntry { entry: usize, entries: usize },
    /// A withdraw from someone with no pending request (never asked,
    /// already granted or denied).
    #[error("you have no pending control request to withdraw")]
    NoPendingRequest,
    /// A compare whose wipe lies off the picture.
    #[error("a compare's wipe lies in 0..=1")]
    BadCompare,
}

/// A participant as the room sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Presence {
    pub id: ParticipantId,
    pub name: String,
    pub role: Role,
    pub connected: bool,
    pub rtt_micros: Option<i64>,
    pub offset_micros: Option<i64>,
    pub uncertainty_micros: Option<i64>,
    /// The frame the participant last said it was showing, and when.
    pub last_frame: Option<(i64, ServerTime)>,
    /// How long after its own instant the participant's video shows a
    /// frame: encode, network, jitter buffer, decode and paint.
    pub video_latency_micros: Option<i64>,
}

/// What a client measured with the clock-sync exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncReport {
    pub rtt_micros: i64,
    pub offset_micros: i64,
    pub uncertainty_micros: i64,
}

/// Who holds the driver's seat and who is asking for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    pub driver: Option<ParticipantId>,
    pub requests: Vec<ParticipantId>,
}

/// Everything a newcomer needs to show the room exactly as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub version: u64,
    /// The playlist entry on screen (0 for a single file).
    pub entry: usize,
    pub transport: Transport,
    pub control: Control,
    pub participants: Vec<Presence>,
    pub counts: RoleCounts,
    /// The version compared beside the one on screen, if any.
    pub compare: Option<Compare>,
}

/// How many connected participants hold each role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleCounts {
    pub hosts: usize,
    pub reviewers: usize,
    pub viewers: usize,
}

/// Why the driver's seat changed hands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlReason {
    Joined,
    Requested,
    Granted,
    Denied,
    Taken,
    Released,
    DriverLeft,
    /// A participant with a pending request left or dropped.
    Withdrawn,
}

/// Why the transport changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportCause {
    Command(Command),
    /// Playback reached the first or last frame and stopped there.
    ReachedEnd,
}

/// Something the room must be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// To a participant who just joined or resumed.
    Welcome {
        you: ParticipantId,
        snapshot: Box<Snapshot>,
    },
    /// The shared transport changed. Apply `transport` at
    /// `transport.anchor_time`, which is the event's execute-at instant.
    Transport {
        version: u64,
        transport: Transport,
        cause: TransportCause,
        by: Option<ParticipantId>,
    },
    Control {
        version: u64,
        control: Control,
        reason: ControlReason,
    },
    /// The room started, adjusted or stopped (`None`) comparing versions.
    Compare {
        version: u64,
        compare: Option<Compare>,
        by: Option<ParticipantId>,
    },
    /// Batched presence: entries that changed, and who left for good.
    Presence {
        changed: Vec<Presence>,
        left: Vec<ParticipantId>,
        counts: RoleCounts,
    },
}

/// Who an [`Event`] goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    All,
    One(ParticipantId),
    /// Hosts and reviewers.
    Staff,
    Viewers,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub to: Audience,
    pub event: Event,
}

/// What a caller asks to join with. The link decides the role; the edge
/// makes up the resume secret so that this module needs no randomness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    pub name: String,
    pub role: Role,
    /// The link it came through (its id). A resume must come through the
    /// same link: the secret names a participant, but only the link vouches
    /// for the role, so another link's secret must not lend its role.
    pub link: String,
    pub resume_secret: [u8; 16],
}

#[derive(Debug)]
struct Participant {
    presence: Presence,
    link: String,
    resume_secret: [u8; 16],
    /// When the connection dropped; `None` while connected.
    away_since: Option<ServerTime>,
    joined_seq: u64,
    /// What their frame reports show they watched, for approval receipts.
    seen: SeenFrames,
}

/// A live review room.
#[derive(Debug)]
pub struct Session {
    info: SessionInfo,
    limits: SessionLimits,
    version: u64,
    transport: Transport,
    driver: Option<ParticipantId>,
    requests: BTreeSet<ParticipantId>,
    participants: BTreeMap<ParticipantId, Participant>,
    next_id: u64,
    presence_changed: BTreeSet<ParticipantId>,
    presence_left: Vec<ParticipantId>,
    next_presence_flush: Option<ServerTime>,
    outputs: VecDeque<Output>,
    /// A room of one, where whoever is in it drives: the async review of
    /// an ended session.
    personal: bool,
    /// What the room can be cued to; one entry unless it reviews a
    /// playlist.
    playlist: Vec<Cut>,
    entry: usize,
    /// How long the runtime last measured a broadcast to take to reach
    /// every connection; part of the lead.
    fanout_micros: i64,
    /// The version shown beside the one on screen.
    compare: Option<Compare>,
}

impl Session {
    pub fn new(info: SessionInfo, limits: SessionLimits, now: ServerTime) -> Session {
        Session {
            limits,
            version: 1,
            transport: Transport::paused_at(0, now),
            driver: None,
            requests: BTreeSet::new(),
            participants: BTreeMap::new(),
            next_id: 1,
            presence_changed: BTreeSet::new(),
            presence_left: Vec::new(),
            next_presence_flush: None,
            outputs: VecDeque::new(),
            personal: false,
            playlist: vec![Cut {
                timecode: info.timecode,
                duration_frames: info.duration_frames,
            }],
            entry: 0,
            fanout_micros: 0,
            compare: None,
            info,
        }
    }

    /// The same session over a playlist, showing `entry` (clamped to the
    /// playlist). An empty playlist leaves the session's own cut.
    pub fn with_playlist(mut self, playlist: Vec<Cut>, entry: usize) -> Session {
        if playlist.is_empty() {
            return self;
        }
        self.entry = entry.min(playlist.len() - 1);
        let cut = playlist[self.entry];
        self.info.timecode = cut.timecode;
        self.info.duration_frames = cut.duration_frames;
        self.playlist = playlist;
        self.transport = Transport::paused_at(0, self.transport.anchor_time);
        self
    }

    /// Adds an entry at the end of the playlist (a version that arrived
    /// while the review runs) and returns its index; the room stays where
    /// it is. A session of one file is a playlist of one.
    pub fn add_entry(&mut self, cut: Cut) -> usize {
        self.playlist.push(cut);
        self.playlist.len() - 1
    }

    /// The playlist entry on screen.
    pub fn entry(&self) -> usize {
        self.entry
    }

    /// The same session as a room of one: its participant drives whatever
    /// their role, because nobody else is watching. What they may add to
    /// the record still follows their role.
    pub fn personal(mut self) -> Session {
        self.personal = true;
        self.limits.max_participants = 1;
        self
    }

    pub fn is_personal(&self) -> bool {
        self.personal
    }

    /// Nobody is in the room, and nobody can come back to it.
    pub fn is_empty(&self) -> bool {
        self.participants.is_empty()
    }

    /// The same session, opening paused on `frame` (clamped to the
    /// media): how a session comes back after a restart.
    pub fn opening_at(mut self, frame: i64, now: ServerTime) -> Session {
        self.transport = Transport::paused_at(self.info.timeline().clamp(frame), now);
        self
    }

    /// The same session, playing at `speed` from `frame` since `elapsed`
    /// before `now`: where a playing room has got to when the node that
    /// takes it over (cluster) opens it, still playing.
    pub fn opening_moving(
        self,
        frame: i64,
        speed: Speed,
        elapsed: std::time::Duration,
        now: ServerTime,
    ) -> Session {
        let timeline = self.info.timeline();
        let since = Transport {
            playing: true,
            speed,
            ..Transport::paused_at(timeline.clamp(frame), ServerTime::from_micros(0))
        };
        let elapsed = i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX);
        let reached = since.position(&timeline, ServerTime::from_micros(elapsed));
        let mut session = self.opening_at(reached, now);
        session.transport.playing = true;
        session.transport.speed = speed;
        session
    }

    pub fn info(&self) -> &SessionInfo {
        &self.info
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn driver(&self) -> Option<ParticipantId> {
        self.driver
    }

    pub fn position(&self, now: ServerTime) -> i64 {
        self.transport.position(&self.info.timeline(), now)
    }

    pub fn connected_count(&self) -> usize {
        self.participants
            .values()
            .filter(|p| p.away_since.is_none())
            .count()
    }

    pub fn presence(&self, id: ParticipantId) -> Option<&Presence> {
        self.participants.get(&id).map(|p| &p.presence)
    }

    /// Admits a newcomer and queues its welcome.
    pub fn join(&mut self, now: ServerTime, req: JoinRequest) -> Result<ParticipantId, JoinError> {
        if self.connected_count() >= self.limits.max_participants {
            return Err(JoinError::Full(self.limits.max_participants));
        }
        let id = ParticipantId(self.next_id);
        self.next_id += 1;
        self.participants.insert(
            id,
            Participant {
                presence: Presence {
                    id,
                    name: req.name,
                    role: req.role,
                    connected: true,
                    rtt_micros: None,
                    offset_micros: None,
                    uncertainty_micros: None,
                    last_frame: None,
                    video_latency_micros: None,
                },
                link: req.link,
                resume_secret: req.resume_secret,
                away_since: None,
                joined_seq: id.0,
                seen: SeenFrames::default(),
            },
        );
        self.presence_touched(now, id);
        self.welcome_and_seat(now, id);
        Ok(id)
    }

    /// Restores a participant who reconnected with its resume secret
    /// through the link it first joined by. A connection the edge has not
    /// yet noticed is dead is simply replaced.
    pub fn resume(
        &mut self,
        now: ServerTime,
        secret: &[u8; 16],
        link: &str,
    ) -> Result<ParticipantId, JoinError> {
        let id = self
            .participants
            .iter()
            .find(|(_, p)| &p.resume_secret == secret && p.link == link)
            .map(|(id, _)| *id)
            .ok_or(JoinError::NothingToResume)?;
        let p = self.participants.get_mut(&id).expect("found above");
        p.away_since = None;
        p.presence.connected = true;
        self.presence_touched(now, id);
        self.welcome_and_seat(now, id);
        Ok(id)
    }

    /// The connection dropped. The participant may come back with
    /// [`Session::resume`]; if it was driving, the seat waits for it for
    /// `driver_grace` and the room keeps playing meanwhile.
    pub fn disconnect(&mut self, now: ServerTime, id: ParticipantId) {
        let Some(p) = self.participants.get_mut(&id) else {
            return;
        };
        if p.away_since.is_some() {
            return;
        }
        p.away_since = Some(now);
        p.presence.connected = false;
        if self.requests.remove(&id) {
            self.bump_control(ControlReason::Withdrawn);
        }
        self.presence_touched(now, id);
    }

    /// The participant left on purpose: it is gone at once, and so is its
    /// hold on the driver's seat.
    pub fn leave(&mut self, now: ServerTime, id: ParticipantId) {
        if self.participants.remove(&id).is_none() {
            return;
        }
        self.presence_changed.remove(&id);
        self.presence_left.push(id);
        self.schedule_presence_flush(now);
        let had_request = self.requests.remove(&id);
        if self.driver == Some(id) {
            self.return_seat_to_host(ControlReason::DriverLeft);
        } else if had_request {
            self.bump_control(ControlReason::Withdrawn);
        }
    }

    /// Applies a command from `from`. On error nothing changes.
    pub fn handle(
        &mut self,
        now: ServerTime,
        from: ParticipantId,
        command: Command,
    ) -> Result<(), CommandError> {
        self.handle_seen(now, from, command, None)
    }

    /// As [`Session::handle`], from a driver whose screen showed frame
    /// `shown` when they acted. The picture trails the playhead by the
    /// room's playout delay, so a pause, a step or a mark lands on that
    /// frame, not on wherever the playhead has run to by `execute_at`.
    /// A frame outside the media is ignored.
    pub fn handle_seen(
        &mut self,
        now: ServerTime,
        from: ParticipantId,
        command: Command,
        shown: Option<i64>,
    ) -> Result<(), CommandError> {
        let role = self
            .participants
            .get(&from)
            .filter(|p| p.away_since.is_none())
            .map(|p| p.presence.role)
            .ok_or(CommandError::UnknownParticipant)?;
        if command.is_transport() {
            if !role.can_drive() && !self.personal {
                return Err(CommandError::Forbidden(role));
            }
            if self.driver != Some(from) {
                return Err(CommandError::NotDriver);
            }
            return self.transport_command(now, from, command, shown);
        }
        self.control_command(from, role, command)
    }

    pub fn report_sync(&mut self, now: ServerTime, id: ParticipantId, report: SyncReport) {
        if let Some(p) = self.participants.get_mut(&id) {
            // Reports come off the wire: keep them within what a real
            // path could measure, so the sums below cannot overflow.
            p.presence.rtt_micros = Some(report.rtt_micros.clamp(0, MAX_REPORTED_MICROS));
            p.presence.offset_micros = Some(report.offset_micros);
            p.presence.uncertainty_micros =
                Some(report.uncertainty_micros.clamp(0, MAX_REPORTED_MICROS));
            self.presence_touched(now, id);
        }
    }

    pub fn report_frame(
        &mut self,
        now: ServerTime,
        id: ParticipantId,
        frame: i64,
        at: ServerTime,
        video_latency_micros: Option<i64>,
    ) {
        // A report of a frame outside the media, or of an instant further
        // off than any real clock error, is a broken client: ignored, so
        // that receipts and presence never hold what no screen showed.
        let timeline = self.info.timeline();
        let plausible = at.as_micros().abs_diff(now.as_micros()) <= MAX_REPORTED_MICROS as u64;
        if !timeline.contains(frame) || !plausible {
            return;
        }
        let rate = self.info.timecode.rate();
        if let Some(p) = self.participants.get_mut(&id) {
            // Only those who may approve need a receipt; viewers in a big
            // room would otherwise each keep a range per seek.
            if p.presence.role != Role::Viewer {
                p.seen
                    .report(frame, at.as_micros(), (rate.num(), rate.den()));
            }
            p.presence.last_frame = Some((frame, at));
            p.presence.video_latency_micros = video_latency_micros;
            self.presence_touched(now, id);
        }
    }

    /// The frames this participant's reports show they watched.
    pub fn seen(&self, id: ParticipantId) -> Option<&FrameRanges> {
        self.participants.get(&id).map(|p| p.seen.ranges())
    }

    /// The state a newcomer (or a participant that fell behind) needs.
    /// `for_viewer` hides other viewers in large rooms, as presence does.
    pub fn snapshot(&self, for_viewer: bool) -> Snapshot {
        let hide_viewers = for_viewer && self.large_room();
        Snapshot {
            version: self.version,
            entry: self.entry,
            transport: self.transport,
            control: self.control(),
            participants: self
                .participants
                .values()
                .filter(|p| !(hide_viewers && p.presence.role == Role::Viewer))
                .map(|p| p.presence.clone())
                .collect(),
            counts: self.counts(),
            compare: self.compare.clone(),
        }
    }

    /// The earliest instant at which [`Session::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<ServerTime> {
        let driver_return = self
            .driver
            .and_then(|d| self.participants.get(&d))
            .and_then(|p| p.away_since)
            .map(|t| t.saturating_add_micros(self.limits.driver_grace_micros));
        let expiry = self
            .participants
            .values()
            .filter_map(|p| p.away_since)
            .min()
            .map(|t| t.saturating_add_micros(self.limits.resume_window_micros));
        let end = self.transport.reaches_bound_at(&self.info.timeline());
        [driver_return, expiry, end, self.next_presence_flush]
            .into_iter()
            .flatten()
            .min()
    }

    pub fn handle_timeout(&mut self, now: ServerTime) {
        if let Some(end) = self.transport.reaches_bound_at(&self.info.timeline()) {
            if end <= now {
                // Every client already shows the clamped frame; this makes
                // the stop explicit so that "play" afterwards starts fresh.
                let frame = self.position(end);
                self.transport.playing = false;
                self.transport.anchor_frame = frame;
                self.transport.anchor_time = end;
                self.version += 1;
                self.push(
                    Audience::All,
                    Event::Transport {
                        version: self.version,
                        transport: self.transport,
                        cause: TransportCause::ReachedEnd,
                        by: None,
                    },
                );
            }
        }
        if let Some(driver) = self.driver {
            let gone_for = self
                .participants
                .get(&driver)
                .and_then(|p| p.away_since)
                .map(|t| now.as_micros() - t.as_micros());
            if gone_for.is_some_and(|d| d >= self.limits.driver_grace_micros) {
                self.return_seat_to_host(ControlReason::DriverLeft);
            }
        }
        let expired: Vec<ParticipantId> = self
            .participants
            .iter()
            .filter(|(_, p)| {
                p.away_since.is_some_and(|t| {
                    now.as_micros() - t.as_micros() >= self.limits.resume_window_micros
                })
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.leave(now, id);
        }
        if self.next_presence_flush.is_some_and(|t| t <= now) {
            self.flush_presence();
        }
    }

    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// How far ahead of `now` commands are scheduled: the slowest
    /// connected participant's RTT plus a margin, within the configured
    /// bounds, plus the time the room takes to write a broadcast to every
    /// connection. A full RTT rather than half covers an asymmetric path;
    /// the fan-out time is added outside the bounds because it grows with
    /// the room, and a lead that ignores it has the last pages of a large
    /// room hear of a change after it was due.
    pub fn lead_micros(&self) -> i64 {
        let slowest = self
            .participants
            .values()
            .filter(|p| p.away_since.is_none())
            .filter_map(|p| p.presence.rtt_micros)
            .max()
            .unwrap_or(0);
        slowest
            .saturating_add(self.limits.lead_margin_micros)
            .clamp(self.limits.lead_min_micros, self.limits.lead_max_micros)
            .saturating_add(self.fanout_micros)
    }

    /// The runtime's measure of how long this room's broadcasts take to
    /// reach every connection, kept within `lead_fanout_max_micros`.
    pub fn set_fanout_micros(&mut self, micros: i64) {
        self.fanout_micros = micros.clamp(0, self.limits.lead_fanout_max_micros.max(0));
    }

    fn transport_command(
        &mut self,
        now: ServerTime,
        from: ParticipantId,
        command: Command,
        shown: Option<i64>,
    ) -> Result<(), CommandError> {
        let execute_at = now.saturating_add_micros(self.lead_micros());
        if let Command::Cue(entry, at) = command {
            return self.cue(execute_at, from, entry, at);
        }
        let timeline = self.info.timeline();
        let here = self.transport.position(&timeline, execute_at);
        // What the driver saw. A speed change while playing does not use
        // it: playback goes on from where it is rather than jumping back.
        let seen = shown.filter(|&f| timeline.contains(f)).unwrap_or(here);
        let in_media = |frame: i64| {
            if timeline.contains(frame) {
                Ok(frame)
            } else {
                Err(CommandError::FrameOutOfRange {
                    frame,
                    last: timeline.last_frame(),
                })
            }
        };
        let mut next = Transport {
            anchor_frame: here,
            anchor_time: execute_at,
            ..self.transport
        };
        match command {
            Command::Play => {
                next.playing = true;
                next.speed = Speed::NORMAL;
                // Play from the last frame would stop at once; start over,
                // as every NLE does.
                if here == timeline.last_frame() && next.loop_marks.range().is_none() {
                    next.anchor_frame = 0;
                }
            }
            Command::Pause => {
                next.playing = false;
                next.anchor_frame = seen;
            }
            Command::Seek(target) => {
                next.anchor_frame = in_media(match target {
                    SeekTarget::Frame(frame) => frame,
                    SeekTarget::Timecode(tc) => self.info.timecode.frame_of(tc)?,
                })?;
            }
            Command::Step(n) => {
                if n.unsigned_abs() > self.limits.max_step.unsigned_abs() {
                    return Err(CommandError::StepTooLarge(self.limits.max_step));
                }
                next.playing = false;
                next.anchor_frame = timeline.clamp(seen + n);
            }
            Command::Shuttle(speed) => {
                next.playing = true;
                next.speed = speed;
            }
            Command::LoopIn(frame) => {
                let mark = in_media(frame.unwrap_or(seen))?;
                next.loop_marks.mark_in = Some(mark);
                // Marking in after out starts a new range, as in an NLE.
                if next.loop_marks.mark_out.is_some_and(|out| out < mark) {
                    next.loop_marks.mark_out = None;
                }
            }
            Command::LoopOut(frame) => {
                let mark = in_media(frame.unwrap_or(seen))?;
                next.loop_marks.mark_out = Some(mark);
                if next
                    .loop_marks
                    .mark_in
                    .is_some_and(|mark_in| mark_in > mark)
                {
                    next.loop_marks.mark_in = None;
                }
            }
            Command::ClearLoop => next.loop_marks = LoopMarks::default(),
            _ => unreachable!("control commands are routed to control_command"),
        }
        self.transport = next;
        self.version += 1;
        self.push(
            Audience::All,
            Event::Transport {
                version: self.version,
                transport: next,
                cause: TransportCause::Command(command),
                by: Some(from),
            },
        );
        Ok(())
    }

    /// Moves the room to another entry, paused on its first frame or on
    /// the timecode it stands on (`at`). What anyone watched of the last
    /// entry says nothing about this one, so the receipts start over.
    fn cue(
        &mut self,
        execute_at: ServerTime,
        from: ParticipantId,
        entry: usize,
        at: CueAt,
    ) -> Result<(), CommandError> {
        let cut = *self.playlist.get(entry).ok_or(CommandError::UnknownEntry {
            entry,
            entries: self.playlist.len(),
        })?;
        let here = self.transport.position(&self.info.timeline(), execute_at);
        let label = self.info.timecode.label(here);
        let landing = match at {
            CueAt::Start => 0,
            // A label the entry's rate cannot show, or one outside it,
            // lands on its first frame: a switch never fails.
            CueAt::SameTimecode => cut
                .timecode
                .frame_of(label)
                .ok()
                .filter(|f| (0..cut.duration_frames).contains(f))
                .unwrap_or(0),
        };
        self.end_compare(Some(from));
        self.entry = entry;
        self.info.timecode = cut.timecode;
        self.info.duration_frames = cut.duration_frames;
        for p in self.participants.values_mut() {
            p.seen = SeenFrames::default();
        }
        let next = Transport::paused_at(landing, execute_at);
        self.transport = next;
        self.version += 1;
        self.push(
            Audience::All,
            Event::Transport {
                version: self.version,
                transport: next,
                cause: TransportCause::Command(Command::Cue(entry, at)),
                by: Some(from),
            },
        );
        Ok(())
    }

    fn control_command(
        &mut self,
        from: ParticipantId,
        role: Role,
        command: Command,
    ) -> Result<(), CommandError> {
        let is_driver = self.driver == Some(from);
        match command {
            Command::RequestControl => {
                // In a room of one, whoever is there may always drive again.
                if !role.can_drive() && !self.personal {
                    return Err(CommandError::Forbidden(role));
                }
                if is_driver {
                    return Ok(());
                }
                if self.driver.is_none() {
                    // Nobody to ask: the seat is free.
                    self.set_driver(Some(from), ControlReason::Granted);
                } else if self.requests.insert(from) {
                    self.bump_control(ControlReason::Requested);
                }
            }
            Command::GrantControl(to) => {
                if !(is_driver || role == Role::Host) {
                    return Err(CommandError::NotDriver);
                }
                let can = self
                    .participants
                    .get(&to)
                    .is_some_and(|p| p.away_since.is_none() && p.presence.role.can_drive());
                if !can {
                    return Err(CommandError::CannotTakeControl(to.0));
                }
                self.set_driver(Some(to), ControlReason::Granted);
            }
            Command::DenyControl(to) => {
                if !(is_driver || role == Role::Host) {
                    return Err(CommandError::NotDriver);
                }
                if !self.requests.remove(&to) {
                    return Err(CommandError::CannotTakeControl(to.0));
                }
                self.bump_control(ControlReason::Denied);
            }
            Command::TakeControl => {
                if role != Role::Host {
                    return Err(CommandError::Forbidden(role));
                }
                if !is_driver {
                    self.set_driver(Some(from), ControlReason::Taken);
                }
            }
            Command::ReleaseControl => {
                if !is_driver {
                    return Err(CommandError::NotDriver);
                }
                self.return_seat_to_host(ControlReason::Released);
            }
            Command::WithdrawControl => {
                if !self.requests.remove(&from) {
                    return Err(CommandError::NoPendingRequest);
                }
                self.bump_control(ControlReason::Withdrawn);
            }
            _ => unreachable!("transport commands are routed to transport_command"),
        }
        Ok(())
    }

    /// Gives the seat to the longest-present connected host, or leaves it
    /// empty for the next host (or requester) to fill.
    fn return_seat_to_host(&mut self, reason: ControlReason) {
        let host = self
            .participants
            .values()
            .filter(|p| p.presence.role == Role::Host && p.away_since.is_none())
            .filter(|p| Some(p.presence.id) != self.driver)
            .min_by_key(|p| p.joined_seq)
            .map(|p| p.presence.id);
        self.set_driver(host, reason);
    }

    fn set_driver(&mut self, driver: Option<ParticipantId>, reason: ControlReason) {
        if let Some(d) = driver {
            self.requests.remove(&d);
        }
        self.driver = driver;
        self.bump_control(reason);
    }

    fn bump_control(&mut self, reason: ControlReason) {
        self.version += 1;
        self.push(
            Audience::All,
            Event::Control {
                version: self.version,
                control: self.control(),
                reason,
            },
        );
    }

    fn control(&self) -> Control {
        Control {
            driver: self.driver,
            requests: self.requests.iter().copied().collect(),
        }
    }

    fn counts(&self) -> RoleCounts {
        let mut counts = RoleCounts::default();
        for p in self
            .participants
            .values()
            .filter(|p| p.away_since.is_none())
        {
            match p.presence.role {
                Role::Host => counts.hosts += 1,
                Role::Reviewer => counts.reviewers += 1,
                Role::Viewer => counts.viewers += 1,
            }
        }
        counts
    }

    fn large_room(&self) -> bool {
        self.participants.len() > self.limits.presence_detail_limit
    }

    /// Welcomes a (re)joined participant. A host arriving at an empty seat
    /// takes it first, so that its own welcome already shows it driving;
    /// the control event that tells everyone else carries the same
    /// version, which the newcomer then ignores as already applied.
    fn welcome_and_seat(&mut self, _now: ServerTime, id: ParticipantId) {
        let role = self.participants.get(&id).map(|p| p.presence.role);
        let takes_seat =
            (role == Some(Role::Host) || self.personal && role.is_some()) && self.driver.is_none();
        if takes_seat {
            self.driver = Some(id);
            self.requests.remove(&id);
            self.version += 1;
        }
        let snapshot = Box::new(self.snapshot(role == Some(Role::Viewer)));
        self.push(Audience::One(id), Event::Welcome { you: id, snapshot });
        if takes_seat {
            self.push(
                Audience::All,
                Event::Control {
                    version: self.version,
                    control: self.control(),
                    reason: ControlReason::Joined,
                },
            );
        }
    }

    fn presence_touched(&mut self, now: ServerTime, id: ParticipantId) {
        self.presence_changed.insert(id);
        self.schedule_presence_flush(now);
    }

    fn schedule_presence_flush(&mut self, now: ServerTime) {
        if self.next_presence_flush.is_none() {
            self.next_presence_flush =
                Some(now.saturating_add_micros(self.limits.presence_interval_micros));
        }
    }

    fn flush_presence(&mut self) {
        self.next_presence_flush = None;
        let changed: Vec<Presence> = std::mem::take(&mut self.presence_changed)
            .into_iter()
            .filter_map(|id| self.participants.get(&id))
            .map(|p| p.presence.clone())
            .collect();
        let left = std::mem::take(&mut self.presence_left);
        let counts = self.counts();
        if self.large_room() {
            let for_viewers: Vec<Presence> = changed
                .iter()
                .filter(|p| p.role != Role::Viewer)
                .cloned()
                .collect();
            self.push(
                Audience::Viewers,
                Event::Presence {
                    changed: for_viewers,
                    left: left.clone(),
                    counts,
                },
            );
            self.push(
                Audience::Staff,
                Event::Presence {
                    changed,
                    left,
                    counts,
                },
            );
        } else {
            self.push(
                Audience::All,
                Event::Presence {
                    changed,
                    left,
                    counts,
                },
            );
        }
    }

    fn push(&mut self, to: Audience, event: Event) {
        self.outputs.push_back(Output { to, event });
    }
}

mod compare;
pub use compare::{Compare, CompareMode, WIPE_FULL};

#[cfg(test)]
mod tests;
