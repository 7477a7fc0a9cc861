//! The review record: the only module that knows SQL. In SQLite
//! (`store/sqlite/`, the embedded default) or in PostgreSQL (`store/pg/`,
//! the record a cluster's nodes share), behind one [`Store`] whose
//! behaviour does not depend on which (`tests/store_behaviour.rs` runs one
//! suite on both).
//!
//! One writer thread owns the write connection. Callers hand it a
//! [`Write`] through a bounded queue and get the outcome on a oneshot, so
//! an async task never waits on the disk: it sends, carries on, and learns
//! the outcome later. The writer takes every write that is waiting, applies
//! each inside its own savepoint (one bad write cannot undo another), and
//! commits them together: one flush acknowledges a whole batch, which is
//! what lets thousands of notes a second be durable before they are
//! acknowledged. Reads use a separate connection beside the writer.

use std::path::Path;
use std::sync::mpsc;

use crate::drawing::{decode_points, Colour, Shape, Tool};
use tokio::sync::oneshot;

mod pg;
mod sqlite;

/// How many writes may wait for the writer before callers are told the
/// store is busy instead of queueing without bound.
const QUEUE: usize = 8192;
/// The most writes committed together.
const BATCH: usize = 512;

/// Why the record could not be read or written. The session carries on
/// either way; only the caller hears of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// The database refused: disk full, database locked, corrupt file,
    /// connection to PostgreSQL lost…
    #[error("the review record could not be written: {0}")]
    Database(String),
    /// More writes are waiting than the writer will queue.
    #[error("the review record is busy; try again")]
    Busy,
    /// The writer has stopped (the server is shutting down).
    #[error("the review record is closed")]
    Closed,
    /// The author's link already used this key for something else. A
    /// resend carries what the first send did; this is a client reusing
    /// keys, and acknowledging it would drop its new text silently.
    #[error("key {0:?} was already used for a different {1}; send it under a new key")]
    KeyConflict(String, &'static str),
    /// A write for a session from a node that no longer owns it: another
    /// node has since written under a newer lease (a cluster's fencing).
    #[error("session {0} now runs on another node; this node may no longer write for it")]
    Fenced(String),
}

/// A cluster owner's authority over one session's record: the revision
/// of its lease when taken. Each owner's lease is created after the last
/// one lapsed, at a higher revision, so the highest token written for a
/// session is its latest owner's; a write carrying a lower one (an old
/// owner that has not yet noticed it lost the lease) is refused with
/// [`StoreError::Fenced`] and changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub session_id: String,
    pub token: u64,
}

impl Fence {
    /// The token as the databases keep it (a signed 64-bit integer).
    pub(crate) fn stored_token(&self) -> Result<i64, StoreError> {
        i64::try_from(self.token).map_err(|_| {
            StoreError::Database(format!("fence token {} is out of range", self.token))
        })
    }
}

/// A session as recorded: enough to bring it back after a restart.
/// The three moving columns, as one value: all set or none.
pub(crate) fn moving(
    since_unix_ms: Option<i64>,
    speed_num: Option<i64>,
    speed_den: Option<i64>,
) -> Option<Moving> {
    Some(Moving {
        since_unix_ms: since_unix_ms?,
        speed_num: speed_num?,
        speed_den: speed_den.filter(|d| *d != 0)?,
    })
}

/// A playing room, as the record keeps it: `SessionRow::last_frame` was on
/// screen at `since_unix_ms` (wall-clock milliseconds: each node's server
/// clock has its own epoch), and the room moves at `speed_num/speed_den`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moving {
    pub since_unix_ms: i64,
    pub speed_num: i64,
    pub speed_den: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRow {
    pub id: String,
    pub title: String,
    pub fps_num: u32,
    pub fps_den: u32,
    pub drop_frame: bool,
    pub start_timecode: String,
    pub duration_frames: i64,
    /// The media file as it was asked for, relative to the media root.
    pub media: Option<String>,
    pub created_at: i64,
    /// Where the room was when last recorded; a restart resumes here.
    pub last_frame: i64,
    /// Set when the room was playing at that record: a node taking the
    /// session over (cluster) carries on playing from where the room has
    /// got to since.
    pub moving: Option<Moving>,
    /// The version under review, for sessions made from a media file.
    pub version_id: Option<String>,
    /// When the host ended the live review; its links then open the
    /// review page.
    pub ended_at: Option<i64>,
    /// A playlist session's entries in order; empty for a session of
    /// one file.
    pub playlist: Vec<EntryRow>,
    /// The playlist entry on screen.
    pub entry: i64,
    /// The text burned into the session's pictures, if any.
    pub watermark: Option<String>,
}

/// One entry of a playlist session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRow {
    /// The media file as it was asked for.
    pub media: String,
    pub version_id: Option<String>,
    /// Its timeline; `None` for entries recorded before it was kept.
    pub timeline: Option<TimelineRow>,
}

/// A timeline as the record keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineRow {
    pub fps_num: u32,
    pub fps_den: u32,
    pub drop_frame: bool,
    pub start_timecode: String,
    pub duration_frames: i64,
}

/// What [`Store::entry_of`] found.
#[derive(Debug)]
pub enum EntryLookup {
    NoSession,
    /// The session has no such version (or none it can label).
    NoVersion,
    Found(Box<SessionRow>),
}

/// What an export holds.
#[derive(Debug, Clone)]
pub struct Review {
    pub session: SessionRow,
    /// The version reviewed, for sessions made from a media file.
    pub version: Option<VersionRow>,
    /// Notes and replies, in the order made.
    pub notes: Vec<NoteRow>,
    /// Every drawing, erased ones included (marked so).
    pub drawings: Vec<DrawingRow>,
    pub approvals: Vec<ApprovalRow>,
}

/// A whole session: every playlist entry's review, in playlist order (a
/// session of one version is a reel of one). Each entry's `session` row
/// carries that entry's own timeline.
#[derive(Debug, Clone)]
pub struct Reel {
    pub entries: Vec<Review>,
}

/// What [`Store::review_of`] found.
#[derive(Debug)]
pub enum ReviewLookup {
    NoSession,
    /// The session has no such version (or none it can label).
    NoVersion,
    Found(Box<Review>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub id: String,
    pub session_id: String,
    pub role: String,
    pub token_hash: [u8; 32],
    pub expires_at: Option<i64>,
    pub revoked: bool,
    /// The PHC string of the link's passcode hash, if it has a passcode.
    pub passcode_hash: Option<String>,
}

/// A note as written by its author, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    pub session_id: String,
    pub version_id: Option<String>,
    /// Set for a reply: the note it answers.
    pub parent_id: Option<i64>,
    /// The author's own key for it: a resend after a lost acknowledgement
    /// finds the first copy instead of making a second.
    pub client_key: String,
    /// The link the author came through; a key is unique per link.
    pub author_link: String,
    pub frame: i64,
    pub frame_out: Option<i64>,
    pub text: String,
    pub author: String,
    pub author_role: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteRow {
    pub id: i64,
    pub note: NewNote,
    pub resolved: Option<Mark>,
}

/// Who did something to a record, and when (Unix milliseconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub by: String,
    pub at: i64,
}

/// A shape drawn on a frame, before it has an id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDrawing {
    pub session_id: String,
    pub version_id: Option<String>,
    pub client_key: String,
    pub author_link: String,
    pub frame: i64,
    pub shape: Shape,
    pub author: String,
    pub author_role: String,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct DrawingRow {
    pub id: i64,
    pub drawing: NewDrawing,
    /// Set once someone erased it; erased shapes stay in the record.
    pub erased: Option<Mark>,
}

/// What an approver saw when they decided.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Inclusive frame ranges their playback reports cover.
    pub frames: Vec<(i64, i64)>,
    pub frame_count: i64,
    /// The stream they were sent, e.g. `1280x720 VP8`, if they watched one.
    pub stream: Option<String>,
    pub stream_bytes: Option<i64>,
    pub stream_kbps: Option<i64>,
    /// SHA-256 of the version's file.
    pub checksum: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    pub session_id: String,
    pub version_id: Option<String>,
    pub client_key: String,
    pub author_link: String,
    /// `approved`, `changes_requested` or `pending`.
    pub status: String,
    pub author: String,
    pub author_role: String,
    pub created_at: i64,
    pub receipt: Receipt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalRow {
    pub id: i64,
    pub approval: NewApproval,
}

/// A file offered as the next version of a media item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewVersion {
    /// The media item's name (a shot, a cut); made on first use.
    pub item: String,
    pub path: String,
    pub checksum: String,
    pub size_bytes: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionRow {
    pub id: String,
    pub item_id: String,
    pub item: String,
    /// 1 for the first version of the item, then 2, 3…
    pub number: i64,
    pub path: String,
    pub checksum: String,
    pub size_bytes: i64,
    pub created_at: i64,
}

/// Something a participant adds to the record and waits to hear about.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// A note or a reply; idempotent by its client key.
    Note(NewNote),
    /// Resolves (`Some`) or reopens (`None`) a note.
    Resolve {
        session_id: String,
        note_id: i64,
        resolved: Option<Mark>,
    },
    /// Idempotent by its client key.
    Drawing(NewDrawing),
    Erase {
        session_id: String,
        drawing_id: i64,
        mark: Mark,
    },
    /// Idempotent by its client key.
    Approval(NewApproval),
    /// A file with the same checksum as an existing version of the item
    /// is that version, not a new one.
    Version(NewVersion),
    /// Up to `limit` outbox rows due at `now` (Unix ms) and claimed by
    /// nobody (or by a claim that lapsed), now claimed by `node` until
    /// `until`. Two nodes never get the same row while a claim stands.
    ClaimDeliveries {
        node: String,
        now: i64,
        until: i64,
        limit: u32,
    },
}

/// What the record holds once a [`Record`] is committed.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Note(NoteRow),
    Drawing(DrawingRow),
    Approval(ApprovalRow),
    Version(VersionRow),
    Claimed(Vec<OutboxRow>),
}

/// Where one personal room (a room of one, after the live review)
/// stands, so that a restart reopens it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonalRoomRow {
    pub session_id: String,
    /// The SHA-256 (hex) of the room's resume secret.
    pub room: String,
    /// The link that opened it: only that link finds it again.
    pub link_id: String,
    pub entry: i64,
    pub frame: i64,
}

/// A record's outcome: what is stored, and whether this call stored it
/// (`false` for a resend that found the first copy).
pub type RecordResult = Result<(Recorded, bool), StoreError>;

/// One write the writer thread performs.
#[derive(Debug)]
pub enum Write {
    /// Nothing but the fence the handle carries: a new owner raises it
    /// before it reads the record (see [`Fence`]).
    Fence,
    Session(SessionRow, Vec<LinkRow>),
    Link(LinkRow),
    RevokeLink {
        session_id: String,
        link_id: String,
    },
    LastFrame {
        session_id: String,
        frame: i64,
        moving: Option<Moving>,
    },
    /// Where a personal room stands now.
    RoomFrame(PersonalRoomRow),
    /// A personal room closed for good: nobody can come back to it.
    RoomClosed {
        session_id: String,
        room: String,
    },
    /// A playlist session moved to another entry: its timeline and
    /// version are now that entry's, and it stands on `frame`.
    Cue {
        session_id: String,
        entry: i64,
        frame: i64,
        version_id: Option<String>,
        fps_num: u32,
        fps_den: u32,
        drop_frame: bool,
        start_timecode: String,
        duration_frames: i64,
    },
    /// A session's playlist is now `entries` (a version was added while
    /// it runs); which entry is on screen is unchanged.
    Playlist {
        session_id: String,
        entries: Vec<EntryRow>,
    },
    /// The host ended the live review (first end wins).
    End {
        session_id: String,
        at: i64,
    },
    /// A file's SHA-256 as it was at (size, mtime).
    Checksum {
        path: String,
        size_bytes: i64,
        mtime_ns: i64,
        checksum: String,
    },
    /// The operator deleted a session: its links stop working, it is
    /// never restored, and with `purge` its notes, drawings, approvals,
    /// entries and links are removed too. An event row says so either way.
    Delete {
        session_id: String,
        at: i64,
        purge: bool,
    },
    Event {
        session_id: String,
        at: i64,
        kind: String,
        detail: String,
    },
    /// An announcement to send to each of `urls`: pending in the outbox
    /// from `due_at` (Unix ms) on.
    Outbox {
        delivery: String,
        event: String,
        body: String,
        urls: Vec<String>,
        due_at: i64,
    },
    /// One attempt of outbox row `outbox_id`, for the delivery log; the
    /// row is due again at `next_due_at`, or finished when `None`
    /// (delivered, or out of attempts). Releases the claim either way.
    Attempt {
        outbox_id: i64,
        attempt: DeliveryRow,
        next_due_at: Option<i64>,
    },
}

/// A pending webhook delivery as a node claimed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: i64,
    pub delivery: String,
    pub url: String,
    pub event: String,
    pub body: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// One attempt in the webhook delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRow {
    pub delivery: String,
    pub url: String,
    pub event: String,
    pub attempt: u32,
    pub status: Option<u16>,
    pub error: Option<String>,
    pub at: i64,
}

enum Job {
    Plain(
        Write,
        Option<Fence>,
        Option<oneshot::Sender<Result<(), StoreError>>>,
    ),
    Record(Record, Option<Fence>, oneshot::Sender<RecordResult>),
}

/// The record. Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::SyncSender<Job>,
    reader: Reader,
    /// Every write through this handle carries it (a cluster owner's
    /// session task); `None` writes unconditionally.
    fence: Option<Fence>,
}

/// Where reads go: SQLite's read connection, or the thread that holds
/// PostgreSQL's.
#[derive(Clone)]
enum Reader {
    Sqlite(sqlite::Reader),
    Postgres(pg::Reader),
}

/// Asks whichever backend holds the record.
macro_rules! read {
    ($store:ident . $method:ident ( $($arg:expr),* )) => {
        match &$store.reader {
            Reader::Sqlite(db) => db.$method($($arg),*),
            Reader::Postgres(db) => db.$method($($arg),*),
        }
    };
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// Opens (creating and migrating as needed) the record at `path` and
    /// starts its writer thread.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let (jobs, reader) = sqlite::open(path, QUEUE)?;
        Ok(Store {
            jobs,
            reader: Reader::Sqlite(reader),
            fence: None,
        })
    }

    /// Connects to (and migrates as needed) the record in PostgreSQL at
    /// `url` (`postgres://user@host:port/db`), the shared record of a
    /// cluster, and starts its writer thread.
    pub fn connect(url: &str) -> Result<Store, StoreError> {
        let (jobs, reader) = pg::start(url, QUEUE)?;
        Ok(Store {
            jobs,
            reader: Reader::Postgres(reader),
            fence: None,
        })
    }

    /// Opens the record a configuration names: a `postgres://` URL, else
    /// the SQLite file at `path`.
    pub fn open_or_connect(url: Option<&str>, path: &Path) -> Result<Store, StoreError> {
        match url {
            Some(url) => Store::connect(url),
            None => Store::open(path),
        }
    }

    /// A store in a fresh temporary file, for tests.
    #[cfg(test)]
    pub fn temporary() -> Result<Store, StoreError> {
        let path = std::env::temp_dir().join(format!(
            "syncreel-store-{}-{}.db",
            std::process::id(),
            rand::random::<u64>()
        ));
        Store::open(&path)
    }

    /// The same record, every write through it fenced by `fence`.
    pub fn fenced(&self, fence: Fence) -> Store {
        Store {
            fence: Some(fence),
            ..self.clone()
        }
    }

    /// Queues a write whose outcome nobody waits for (the event log, the
    /// last frame). A failure is logged.
    pub fn write_later(&self, write: Write) {
        if let Err(err) = self
            .jobs
            .try_send(Job::Plain(write, self.fence.clone(), None))
        {
            tracing::warn!(error = %queue_error(&err), "review record write dropped");
        }
    }

    /// Queues a write and returns its outcome once committed.
    pub fn write_acked(&self, write: Write) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        match self
            .jobs
            .try_send(Job::Plain(write, self.fence.clone(), Some(tx)))
        {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(Job::Plain(_, _, Some(tx)))) => {
                let _ = tx.send(Err(StoreError::Busy));
            }
            Err(mpsc::TrySendError::Disconnected(Job::Plain(_, _, Some(tx)))) => {
                let _ = tx.send(Err(StoreError::Closed));
            }
            Err(_) => {}
        }
        rx
    }

    /// Queues a record. Its outcome is what is stored and whether it is
    /// new; a record whose `client_key` was seen before comes back as first
    /// stored, not stored twice.
    pub fn record(&self, record: Record) -> oneshot::Receiver<RecordResult> {
        let (tx, rx) = oneshot::channel();
        match self
            .jobs
            .try_send(Job::Record(record, self.fence.clone(), tx))
        {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(Job::Record(_, _, tx))) => {
                let _ = tx.send(Err(StoreError::Busy));
            }
            Err(mpsc::TrySendError::Disconnected(Job::Record(_, _, tx))) => {
                let _ = tx.send(Err(StoreError::Closed));
            }
            Err(_) => {}
        }
        rx
    }

    /// Claims the webhook deliveries due now for `node`; see
    /// [`Record::ClaimDeliveries`].
    pub async fn claim_deliveries(
        &self,
        node: &str,
        now: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let claim = Record::ClaimDeliveries {
            node: node.to_string(),
            now,
            until,
            limit,
        };
        match self.record(claim).await {
            Ok(Ok((Recorded::Claimed(rows), _))) => Ok(rows),
            Ok(Ok(_)) => Err(StoreError::Database(
                "a claim came back as another record".into(),
            )),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Queues a note; see [`Store::record`].
    #[cfg(test)]
    pub async fn add_note(&self, note: NewNote) -> Result<(NoteRow, bool), StoreError> {
        match self.record(Record::Note(note)).await {
            Ok(Ok((Recorded::Note(row), new))) => Ok((row, new)),
            Ok(Ok(_)) => Err(StoreError::Database(
                "a note came back as another record".into(),
            )),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        read!(self.sessions())
    }

    /// One session, if recorded.
    pub fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        read!(self.session(id))
    }

    /// The file (as the session asked for it) of the session's version
    /// whose checksum is `checksum`: its own version or any playlist
    /// entry's. `None` when the session reviews no such version.
    pub fn media_of_version(
        &self,
        session_id: &str,
        checksum: &str,
    ) -> Result<Option<String>, StoreError> {
        read!(self.media_of_version(session_id, checksum))
    }

    /// The checksum recorded for `path` when it had this size and mtime.
    pub fn known_checksum(
        &self,
        path: &str,
        size_bytes: i64,
        mtime_ns: i64,
    ) -> Result<Option<String>, StoreError> {
        read!(self.known_checksum(path, size_bytes, mtime_ns))
    }

    /// A session's playlist entries, in order (none for one version).
    pub fn entries_of(&self, session_id: &str) -> Result<Vec<EntryRow>, StoreError> {
        read!(self.entries_of(session_id))
    }

    /// Every link of every session.
    pub fn links(&self) -> Result<Vec<LinkRow>, StoreError> {
        read!(self.links())
    }

    /// The link whose token hashes to `token_hash`, if recorded: on a
    /// shared record, a link another node minted.
    pub fn link_by_hash(&self, token_hash: &[u8; 32]) -> Result<Option<LinkRow>, StoreError> {
        read!(self.link_by_hash(token_hash))
    }

    /// Where each personal room of a session stood when last recorded.
    pub fn personal_rooms(&self, session_id: &str) -> Result<Vec<PersonalRoomRow>, StoreError> {
        read!(self.personal_rooms(session_id))
    }

    /// A session's notes, in the order they were made.
    pub fn notes(&self, session_id: &str) -> Result<Vec<NoteRow>, StoreError> {
        read!(self.notes(session_id))
    }

    /// A session and its notes, for exports; `None` when no such session.
    pub fn review(&self, session_id: &str) -> Result<Option<Review>, StoreError> {
        Ok(match self.review_of(session_id, None)? {
            ReviewLookup::Found(review) => Some(*review),
            ReviewLookup::NoSession | ReviewLookup::NoVersion => None,
        })
    }

    /// The review of one version of a session, on that version's
    /// timeline (`session` in the result carries it): by default the
    /// version on screen. A playlist's review holds only what was made on
    /// that version.
    pub fn review_of(
        &self,
        session_id: &str,
        version_id: Option<&str>,
    ) -> Result<ReviewLookup, StoreError> {
        let session = match self.entry_of(session_id, version_id)? {
            EntryLookup::Found(session) => *session,
            EntryLookup::NoSession => return Ok(ReviewLookup::NoSession),
            EntryLookup::NoVersion => return Ok(ReviewLookup::NoVersion),
        };
        let mut notes = self.notes(session_id)?;
        let mut drawings = self.drawings(session_id)?;
        let mut approvals = self.approvals(session_id)?;
        let version = match &session.version_id {
            Some(id) => self.version(id)?,
            None => None,
        };
        if !session.playlist.is_empty() {
            let shown = &session.version_id;
            notes.retain(|n| &n.note.version_id == shown);
            drawings.retain(|d| &d.drawing.version_id == shown);
            approvals.retain(|a| &a.approval.version_id == shown);
        }
        Ok(ReviewLookup::Found(Box::new(Review {
            session,
            version,
            notes,
            drawings,
            approvals,
        })))
    }

    /// The session as one of its versions sees it: the version on screen,
    /// or `version_id` (in a playlist, any entry's), with that entry's
    /// timeline and its own file.
    pub fn entry_of(
        &self,
        session_id: &str,
        version_id: Option<&str>,
    ) -> Result<EntryLookup, StoreError> {
        let Some(mut session) = self.session(session_id)? else {
            return Ok(EntryLookup::NoSession);
        };
        session.playlist = self.entries_of(session_id)?;
        if let Some(wanted) = version_id {
            if session.version_id.as_deref() != Some(wanted) {
                let entry = session
                    .playlist
                    .iter()
                    .find(|e| e.version_id.as_deref() == Some(wanted));
                let Some(timeline) = entry.and_then(|e| e.timeline.clone()) else {
                    return Ok(EntryLookup::NoVersion);
                };
                session.fps_num = timeline.fps_num;
                session.fps_den = timeline.fps_den;
                session.drop_frame = timeline.drop_frame;
                session.start_timecode = timeline.start_timecode;
                session.duration_frames = timeline.duration_frames;
                session.version_id = Some(wanted.to_string());
            }
        }
        if !session.playlist.is_empty() {
            // The entry's own file: what its stills are decoded from.
            session.media = session
                .playlist
                .iter()
                .find(|e| e.version_id == session.version_id)
                .map(|e| e.media.clone());
        }
        Ok(EntryLookup::Found(Box::new(session)))
    }

    /// Every entry's review of a session, in playlist order (one for a
    /// session of one version), or `None` for no such session.
    pub fn reel_of(&self, session_id: &str) -> Result<Option<Reel>, StoreError> {
        let Some(session) = self.session(session_id)? else {
            return Ok(None);
        };
        let playlist = self.entries_of(session_id)?;
        let wanted: Vec<Option<&str>> = if playlist.is_empty() {
            vec![None]
        } else {
            playlist.iter().map(|e| e.version_id.as_deref()).collect()
        };
        let mut reel = Vec::with_capacity(wanted.len());
        for version in wanted {
            // An entry recorded before entries kept their timelines has
            // none of its own; it is left out rather than mislabelled.
            if let ReviewLookup::Found(review) = self.review_of(&session.id, version)? {
                reel.push(*review);
            }
        }
        Ok(Some(Reel { entries: reel }))
    }

    /// A session's drawings, erased ones included, in the order drawn.
    pub fn drawings(&self, session_id: &str) -> Result<Vec<DrawingRow>, StoreError> {
        read!(self.drawings(session_id))
    }

    /// A session's approvals, oldest first: the newest per author stands.
    pub fn approvals(&self, session_id: &str) -> Result<Vec<ApprovalRow>, StoreError> {
        read!(self.approvals(session_id))
    }

    pub fn version(&self, id: &str) -> Result<Option<VersionRow>, StoreError> {
        read!(self.version(id))
    }

    /// A version (of any item) whose file has this SHA-256, the oldest
    /// first: an upload of the same bytes reuses its file.
    pub fn version_with_checksum(&self, checksum: &str) -> Result<Option<VersionRow>, StoreError> {
        read!(self.version_with_checksum(checksum))
    }

    /// Every version of every media item: by item name, then number.
    pub fn versions(&self) -> Result<Vec<VersionRow>, StoreError> {
        read!(self.versions())
    }

    /// The newest `limit` attempts of the webhook delivery log, oldest first.
    pub fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRow>, StoreError> {
        read!(self.deliveries(limit))
    }

    /// A session's event log, oldest first: (at, kind, detail).
    pub fn events(&self, session_id: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        read!(self.events(session_id))
    }
}

fn queue_error<T>(err: &mpsc::TrySendError<T>) -> StoreError {
    match err {
        mpsc::TrySendError::Full(_) => StoreError::Busy,
        mpsc::TrySendError::Disconnected(_) => StoreError::Closed,
    }
}

fn mark(by: Option<String>, at: Option<i64>) -> Option<Mark> {
    Some(Mark { by: by?, at: at? })
}

/// A shape from its columns. Only checked shapes are ever written, so
/// these parse; a row edited by hand into nonsense reads as a dot rather
/// than failing the whole list.
fn shape_of(tool: &str, colour: &str, width: f64, points: &[u8]) -> Shape {
    Shape {
        tool: Tool::from_name(tool).unwrap_or(Tool::Pen),
        colour: Colour::parse(colour).unwrap_or(Colour([255, 0, 0])),
        width: width as f32,
        points: decode_points(points),
    }
}

/// Whether a resend under a key already stored is the same note (and so
/// acknowledged as the first copy) or a different one (a key conflict).
fn same_note(first: &NewNote, again: &NewNote) -> bool {
    first.text == again.text
        && first.frame == again.frame
        && first.frame_out == again.frame_out
        && first.parent_id == again.parent_id
}

fn same_drawing(first: &NewDrawing, again: &NewDrawing) -> bool {
    first.frame == again.frame && first.shape == again.shape
}

/// The receipt is the server's, taken at each send; the decision and its
/// version are what the author sent.
fn same_approval(first: &NewApproval, again: &NewApproval) -> bool {
    first.status == again.status && first.version_id == again.version_id
}

/// Frame ranges as the record keeps them: `10-20,31-31`.
fn ranges_text(ranges: &[(i64, i64)]) -> String {
    ranges
        .iter()
        .map(|(a, b)| format!("{a}-{b}"))
        .collect::<Vec<_>>()
        .join(",")
}

fn parse_ranges(text: &str) -> Vec<(i64, i64)> {
    text.split(',')
        .filter_map(|part| {
            let (a, b) = part.split_once('-')?;
            Some((a.parse().ok()?, b.parse().ok()?))
        })
        .collect()
}

/// The writer: batch whatever is waiting, commit once, then report.
fn write_loop(queue: mpsc::Receiver<Job>, mut commit: impl FnMut(Vec<Job>)) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(batch);
    }
}

enum Outcome {
    Plain(
        Option<oneshot::Sender<Result<(), StoreError>>>,
        Result<(), StoreError>,
    ),
    Record(oneshot::Sender<RecordResult>, Box<RecordResult>),
}

/// Tells everyone waiting on a batch how it went: each its own outcome
/// once the batch is committed, else the commit's error.
fn report(outcomes: Vec<Outcome>, committed: Result<(), StoreError>) {
    if let Err(err) = committed {
        // Nothing in the batch is on disk: say so to everyone waiting.
        tracing::error!(%err, "review record commit failed");
        for outcome in outcomes {
            match outcome {
                Outcome::Plain(Some(reply), _) => {
                    let _ = reply.send(Err(err.clone()));
                }
                Outcome::Plain(None, _) => {}
                Outcome::Record(reply, _) => {
                    let _ = reply.send(Err(err.clone()));
                }
            }
        }
        return;
    }
    for outcome in outcomes {
        match outcome {
            Outcome::Plain(Some(reply), result) => {
                let _ = reply.send(result);
            }
            Outcome::Plain(None, Err(err)) => {
                tracing::warn!(%err, "review record write failed");
            }
            Outcome::Plain(None, Ok(())) => {}
            Outcome::Record(reply, result) => {
                let _ = reply.send(*result);
            }
        }
    }
}

impl Outcome {
    /// A job never tried because its batch was already lost.
    fn failed(job: Job, err: &StoreError) -> Outcome {
        match job {
            Job::Plain(_, _, reply) => Outcome::Plain(reply, Err(err.clone())),
            Job::Record(_, _, reply) => Outcome::Record(reply, Box::new(Err(err.clone()))),
        }
    }

    fn error(&self) -> Option<StoreError> {
        match self {
            Outcome::Plain(_, Err(err)) => Some(err.clone()),
            Outcome::Record(_, result) => result.as_ref().as_ref().err().cloned(),
            Outcome::Plain(_, Ok(())) => None,
        }
    }
}

fn fail_all(batch: Vec<Job>, err: StoreError) {
    tracing::error!(%err, "review record unavailable");
    for job in batch {
        match job {
            Job::Plain(_, _, Some(reply)) => {
                let _ = reply.send(Err(err.clone()));
            }
            Job::Plain(_, _, None) => {}
            Job::Record(_, _, reply) => {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}
