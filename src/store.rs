//! The review record, in SQLite: the only module that knows SQL.
//!
//! One writer thread owns the write connection. Callers hand it a
//! [`Write`] through a bounded queue and get the outcome on a oneshot, so
//! an async task never waits on the disk: it sends, carries on, and learns
//! the outcome later. The writer takes every write that is waiting, applies
//! each inside its own savepoint (one bad write cannot undo another), and
//! commits them together: one `fsync` acknowledges a whole batch, which is
//! what lets thousands of notes a second be durable before they are
//! acknowledged. Reads use a separate connection; WAL lets them run beside
//! the writer.
//!
//! `synchronous = FULL`: a write is on disk before its outcome is sent, so
//! an acknowledged note survives `kill -9` and power loss alike.
//!
//! The schema is versioned by `PRAGMA user_version`; [`MIGRATIONS`] only
//! grows, and each step runs once, in a transaction.

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};

use rusqlite::{params, Connection, OptionalExtension};

use crate::drawing::{decode_points, encode_points, Colour, Shape, Tool};
use tokio::sync::oneshot;

/// Schema steps, applied in order; entry `i` takes `user_version` from
/// `i` to `i + 1`. Never edit a step that has shipped: add one.
const MIGRATIONS: &[&str] = &[
    // 1: sessions, their links, notes and the event log.
    "CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        fps_num INTEGER NOT NULL,
        fps_den INTEGER NOT NULL,
        drop_frame INTEGER NOT NULL,
        start_timecode TEXT NOT NULL,
        duration_frames INTEGER NOT NULL,
        media TEXT,
        created_at INTEGER NOT NULL,
        last_frame INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE links (
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        role TEXT NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        expires_at INTEGER,
        revoked INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        client_key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        frame_out INTEGER,
        text TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (session_id, client_key)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_by_session ON events (session_id, id);",
    // 2: the webhook delivery log, one row per attempt.
    "CREATE TABLE webhook_deliveries (
        id INTEGER PRIMARY KEY,
        delivery TEXT NOT NULL,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        status INTEGER,
        error TEXT,
        at INTEGER NOT NULL
    );
    CREATE INDEX deliveries_by_delivery ON webhook_deliveries (delivery, attempt);",
    // 3: media items and their version stacks; drawings; approvals with
    // receipts; replies and resolution on notes; the version under review.
    "CREATE TABLE media_items (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
    );
    CREATE TABLE versions (
        id TEXT PRIMARY KEY,
        media_item_id TEXT NOT NULL REFERENCES media_items(id),
        number INTEGER NOT NULL,
        path TEXT NOT NULL,
        checksum TEXT NOT NULL,
        size_bytes INTEGER NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (media_item_id, number),
        UNIQUE (media_item_id, checksum)
    );
    ALTER TABLE sessions ADD COLUMN version_id TEXT REFERENCES versions(id);
    ALTER TABLE sessions ADD COLUMN ended_at INTEGER;
    ALTER TABLE notes ADD COLUMN version_id TEXT REFERENCES versions(id);
    ALTER TABLE notes ADD COLUMN parent_id INTEGER REFERENCES notes(id);
    ALTER TABLE notes ADD COLUMN resolved_by TEXT;
    ALTER TABLE notes ADD COLUMN resolved_at INTEGER;
    CREATE TABLE drawings (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        tool TEXT NOT NULL,
        colour TEXT NOT NULL,
        width REAL NOT NULL,
        points BLOB NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        erased_by TEXT,
        erased_at INTEGER,
        UNIQUE (session_id, client_key)
    );
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        status TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        frames_seen TEXT NOT NULL,
        frame_count INTEGER NOT NULL,
        stream TEXT,
        stream_bytes INTEGER,
        stream_kbps INTEGER,
        checksum TEXT,
        UNIQUE (session_id, client_key)
    );",
    // 4: playlist sessions: the entries a session can be cued to, and the
    // one on screen. `sessions.version_id` and its timeline columns follow
    // the entry on screen.
    "CREATE TABLE session_entries (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        position INTEGER NOT NULL,
        media TEXT NOT NULL,
        version_id TEXT REFERENCES versions(id),
        PRIMARY KEY (session_id, position)
    );
    ALTER TABLE sessions ADD COLUMN entry INTEGER NOT NULL DEFAULT 0;",
    // 5: each playlist entry's own timeline, so that the review of an
    // entry not on screen can be labelled (and exported) without its
    // file. NULL for entries recorded before.
    "ALTER TABLE session_entries ADD COLUMN fps_num INTEGER;
    ALTER TABLE session_entries ADD COLUMN fps_den INTEGER;
    ALTER TABLE session_entries ADD COLUMN drop_frame INTEGER;
    ALTER TABLE session_entries ADD COLUMN start_timecode TEXT;
    ALTER TABLE session_entries ADD COLUMN duration_frames INTEGER;",
    // 6: a client key belongs to its author's link, not the whole session:
    // two links may use the same key, and neither sees the other's record
    // as its own. SQLite cannot drop a UNIQUE constraint, so the three
    // tables are rebuilt (renaming first keeps every foreign key pointing
    // at the table of its name). Rows from before carry the link ''.
    "ALTER TABLE notes RENAME TO notes_v5;
    CREATE TABLE notes (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        client_key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        frame_out INTEGER,
        text TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        version_id TEXT REFERENCES versions(id),
        parent_id INTEGER REFERENCES notes(id),
        resolved_by TEXT,
        resolved_at INTEGER,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    INSERT INTO notes (id, session_id, client_key, frame, frame_out, text, author, author_role,
                       created_at, version_id, parent_id, resolved_by, resolved_at)
        SELECT id, session_id, client_key, frame, frame_out, text, author, author_role,
               created_at, version_id, parent_id, resolved_by, resolved_at
        FROM notes_v5 ORDER BY id;
    DROP TABLE notes_v5;
    ALTER TABLE drawings RENAME TO drawings_v5;
    CREATE TABLE drawings (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        frame INTEGER NOT NULL,
        tool TEXT NOT NULL,
        colour TEXT NOT NULL,
        width REAL NOT NULL,
        points BLOB NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        erased_by TEXT,
        erased_at INTEGER,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    INSERT INTO drawings (id, session_id, version_id, client_key, frame, tool, colour, width,
                          points, author, author_role, created_at, erased_by, erased_at)
        SELECT id, session_id, version_id, client_key, frame, tool, colour, width,
               points, author, author_role, created_at, erased_by, erased_at
        FROM drawings_v5 ORDER BY id;
    DROP TABLE drawings_v5;
    ALTER TABLE approvals RENAME TO approvals_v5;
    CREATE TABLE approvals (
        id INTEGER PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        status TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        frames_seen TEXT NOT NULL,
        frame_count INTEGER NOT NULL,
        stream TEXT,
        stream_bytes INTEGER,
        stream_kbps INTEGER,
        checksum TEXT,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    INSERT INTO approvals (id, session_id, version_id, client_key, status, author, author_role,
                           created_at, frames_seen, frame_count, stream, stream_bytes,
                           stream_kbps, checksum)
        SELECT id, session_id, version_id, client_key, status, author, author_role,
               created_at, frames_seen, frame_count, stream, stream_bytes,
               stream_kbps, checksum
        FROM approvals_v5 ORDER BY id;
    DROP TABLE approvals_v5;",
    // 7: sessions the operator deleted: gone from every listing, never
    // restored; their record is kept unless it was purged.
    "ALTER TABLE sessions ADD COLUMN deleted_at INTEGER;",
    // 8: media checksums by (path, size, mtime), so a restart does not
    // hash every file again.
    "CREATE TABLE media_checksums (
        path TEXT PRIMARY KEY,
        size_bytes INTEGER NOT NULL,
        mtime_ns INTEGER NOT NULL,
        checksum TEXT NOT NULL
    );",
    // 9: an optional passcode per link, as the PHC string of its Argon2id
    // hash (salt and parameters included). NULL: no passcode, which is
    // what every link made before has.
    "ALTER TABLE links ADD COLUMN passcode_hash TEXT;",
    // 10: the text burned into a session's pictures (issue #11); NULL for
    // none, which is every session made before it.
    "ALTER TABLE sessions ADD COLUMN watermark TEXT;",
    // 11: where each personal room of an ended session stands (issue #13),
    // so that a restart reopens it there rather than at the live room's
    // frame. `room` is the SHA-256 of the room's resume secret: the record
    // never holds a secret someone could resume with.
    "CREATE TABLE personal_rooms (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        room TEXT NOT NULL,
        link_id TEXT NOT NULL,
        entry INTEGER NOT NULL,
        frame INTEGER NOT NULL,
        PRIMARY KEY (session_id, room)
    );",
];

/// How many writes may wait for the writer before callers are told the
/// store is busy instead of queueing without bound.
const QUEUE: usize = 8192;
/// The most writes committed together.
const BATCH: usize = 512;

/// Why the record could not be read or written. The session carries on
/// either way; only the caller hears of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused: disk full, database locked, corrupt file…
    #[error("the review record could not be written: {0}")]
    Sqlite(String),
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
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(err.to_string())
    }
}

/// A session as recorded: enough to bring it back after a restart.
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
}

/// What the record holds once a [`Record`] is committed.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    Note(NoteRow),
    Drawing(DrawingRow),
    Approval(ApprovalRow),
    Version(VersionRow),
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
    Session(SessionRow, Vec<LinkRow>),
    Link(LinkRow),
    RevokeLink {
        session_id: String,
        link_id: String,
    },
    LastFrame {
        session_id: String,
        frame: i64,
    },
    /// Where a personal room stands now.
    RoomFrame(PersonalRoomRow),
    /// A personal room closed for good: nobody can come back to it.
    RoomClosed {
        session_id: String,
        room: String,
    },
    /// A playlist session moved to another entry: its timeline and
    /// version are now that entry's, and it stands on its first frame.
    Cue {
        session_id: String,
        entry: i64,
        version_id: Option<String>,
        fps_num: u32,
        fps_den: u32,
        drop_frame: bool,
        start_timecode: String,
        duration_frames: i64,
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
    /// One webhook attempt, for the delivery log.
    Delivery {
        delivery: String,
        url: String,
        event: String,
        attempt: u32,
        status: Option<u16>,
        error: Option<String>,
        at: i64,
    },
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
    Plain(Write, Option<oneshot::Sender<Result<(), StoreError>>>),
    Record(Record, oneshot::Sender<RecordResult>),
}

/// The record. Cheap to clone; every clone feeds the same writer.
#[derive(Clone)]
pub struct Store {
    jobs: mpsc::SyncSender<Job>,
    reader: Arc<Mutex<Connection>>,
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
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Sqlite(e.to_string()))?;
        }
        let mut writer = Connection::open(path)?;
        configure(&writer)?;
        migrate(&mut writer)?;
        let reader = Connection::open(path)?;
        configure(&reader)?;
        let (jobs, queue) = mpsc::sync_channel(QUEUE);
        std::thread::Builder::new()
            .name("syncreel-store".into())
            .spawn(move || write_loop(writer, queue))
            .map_err(|e| StoreError::Sqlite(e.to_string()))?;
        Ok(Store {
            jobs,
            reader: Arc::new(Mutex::new(reader)),
        })
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

    /// Queues a write whose outcome nobody waits for (the event log, the
    /// last frame). A failure is logged.
    pub fn write_later(&self, write: Write) {
        if let Err(err) = self.jobs.try_send(Job::Plain(write, None)) {
            tracing::warn!(error = %queue_error(&err), "review record write dropped");
        }
    }

    /// Queues a write and returns its outcome once committed.
    pub fn write_acked(&self, write: Write) -> oneshot::Receiver<Result<(), StoreError>> {
        let (tx, rx) = oneshot::channel();
        match self.jobs.try_send(Job::Plain(write, Some(tx))) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(Job::Plain(_, Some(tx)))) => {
                let _ = tx.send(Err(StoreError::Busy));
            }
            Err(mpsc::TrySendError::Disconnected(Job::Plain(_, Some(tx)))) => {
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
        match self.jobs.try_send(Job::Record(record, tx)) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(Job::Record(_, tx))) => {
                let _ = tx.send(Err(StoreError::Busy));
            }
            Err(mpsc::TrySendError::Disconnected(Job::Record(_, tx))) => {
                let _ = tx.send(Err(StoreError::Closed));
            }
            Err(_) => {}
        }
        rx
    }

    /// Queues a note; see [`Store::record`].
    #[cfg(test)]
    pub async fn add_note(&self, note: NewNote) -> Result<(NoteRow, bool), StoreError> {
        match self.record(Record::Note(note)).await {
            Ok(Ok((Recorded::Note(row), new))) => Ok((row, new)),
            Ok(Ok(_)) => Err(StoreError::Sqlite(
                "a note came back as another record".into(),
            )),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(StoreError::Closed),
        }
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE deleted_at IS NULL ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([], session_row)?;
        let mut sessions: Vec<SessionRow> = rows.collect::<Result<_, _>>()?;
        for session in &mut sessions {
            session.playlist = entries(&db, &session.id)?;
        }
        Ok(sessions)
    }

    /// One session, if recorded.
    pub fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        Ok(db
            .query_row(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1 AND deleted_at IS NULL"
                ),
                params![id],
                session_row,
            )
            .optional()?)
    }

    /// The file (as the session asked for it) of the session's version
    /// whose checksum is `checksum`: its own version or any playlist
    /// entry's. `None` when the session reviews no such version.
    pub fn media_of_version(
        &self,
        session_id: &str,
        checksum: &str,
    ) -> Result<Option<String>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        Ok(db
            .query_row(
                "SELECT e.media FROM session_entries e JOIN versions v ON v.id = e.version_id
                 WHERE e.session_id = ?1 AND v.checksum = ?2
                 UNION ALL
                 SELECT s.media FROM sessions s JOIN versions v ON v.id = s.version_id
                 WHERE s.id = ?1 AND v.checksum = ?2 AND s.media IS NOT NULL
                 LIMIT 1",
                params![session_id, checksum],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// The checksum recorded for `path` when it had this size and mtime.
    pub fn known_checksum(
        &self,
        path: &str,
        size_bytes: i64,
        mtime_ns: i64,
    ) -> Result<Option<String>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        Ok(db
            .query_row(
                "SELECT checksum FROM media_checksums
                 WHERE path = ?1 AND size_bytes = ?2 AND mtime_ns = ?3",
                params![path, size_bytes, mtime_ns],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// A session's playlist entries, in order (none for one version).
    pub fn entries_of(&self, session_id: &str) -> Result<Vec<EntryRow>, StoreError> {
        entries(&self.reader.lock().expect("reader lock"), session_id)
    }

    /// Every link of every session.
    pub fn links(&self) -> Result<Vec<LinkRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(
            "SELECT id, session_id, role, token_hash, expires_at, revoked, passcode_hash
             FROM links ORDER BY rowid",
        )?;
        let rows = stmt.query_map([], |r| {
            let hash: Vec<u8> = r.get(3)?;
            Ok(LinkRow {
                id: r.get(0)?,
                session_id: r.get(1)?,
                role: r.get(2)?,
                token_hash: hash.try_into().unwrap_or([0; 32]),
                expires_at: r.get(4)?,
                revoked: r.get(5)?,
                passcode_hash: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Where each personal room of a session stood when last recorded.
    pub fn personal_rooms(&self, session_id: &str) -> Result<Vec<PersonalRoomRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(
            "SELECT session_id, room, link_id, entry, frame FROM personal_rooms
             WHERE session_id = ?1 ORDER BY room",
        )?;
        let rows = stmt.query_map(params![session_id], |r| {
            Ok(PersonalRoomRow {
                session_id: r.get(0)?,
                room: r.get(1)?,
                link_id: r.get(2)?,
                entry: r.get(3)?,
                frame: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A session's notes, in the order they were made.
    pub fn notes(&self, session_id: &str) -> Result<Vec<NoteRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(&format!(
            "SELECT {NOTE_COLUMNS} FROM notes WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![session_id], note_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
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
        session.playlist = entries(&self.reader.lock().expect("reader lock"), session_id)?;
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
        let playlist = entries(&self.reader.lock().expect("reader lock"), session_id)?;
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
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(&format!(
            "SELECT {DRAWING_COLUMNS} FROM drawings WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![session_id], drawing_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A session's approvals, oldest first: the newest per author stands.
    pub fn approvals(&self, session_id: &str) -> Result<Vec<ApprovalRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![session_id], approval_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn version(&self, id: &str) -> Result<Option<VersionRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        Ok(db
            .query_row(
                &format!("{VERSION_SELECT} WHERE v.id = ?1"),
                params![id],
                version_row,
            )
            .optional()?)
    }

    /// A version (of any item) whose file has this SHA-256, the oldest
    /// first: an upload of the same bytes reuses its file.
    pub fn version_with_checksum(&self, checksum: &str) -> Result<Option<VersionRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        Ok(db
            .query_row(
                &format!("{VERSION_SELECT} WHERE v.checksum = ?1 ORDER BY v.created_at LIMIT 1"),
                params![checksum],
                version_row,
            )
            .optional()?)
    }

    /// Every version of every media item: by item name, then number.
    pub fn versions(&self) -> Result<Vec<VersionRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(&format!("{VERSION_SELECT} ORDER BY m.name, v.number"))?;
        let rows = stmt.query_map([], version_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest `limit` attempts of the webhook delivery log, oldest first.
    pub fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(
            "SELECT delivery, url, event, attempt, status, error, at FROM
             (SELECT * FROM webhook_deliveries ORDER BY id DESC LIMIT ?1) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![limit as i64], |r| {
            Ok(DeliveryRow {
                delivery: r.get(0)?,
                url: r.get(1)?,
                event: r.get(2)?,
                attempt: r.get(3)?,
                status: r.get(4)?,
                error: r.get(5)?,
                at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A session's event log, oldest first: (at, kind, detail).
    pub fn events(&self, session_id: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt =
            db.prepare("SELECT at, kind, detail FROM events WHERE session_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![session_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn queue_error<T>(err: &mpsc::TrySendError<T>) -> StoreError {
    match err {
        mpsc::TrySendError::Full(_) => StoreError::Busy,
        mpsc::TrySendError::Disconnected(_) => StoreError::Closed,
    }
}

fn configure(db: &Connection) -> Result<(), StoreError> {
    db.pragma_update(None, "journal_mode", "WAL")?;
    db.pragma_update(None, "synchronous", "FULL")?;
    db.pragma_update(None, "foreign_keys", true)?;
    // Another process (a backup, say) holding a lock briefly is waited
    // for; longer than this is reported as an error, never a hang.
    db.busy_timeout(std::time::Duration::from_millis(2_000))?;
    Ok(())
}

fn migrate(db: &mut Connection) -> Result<(), StoreError> {
    let version: i64 = db.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let version = usize::try_from(version).unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Sqlite(format!(
            "the record is at schema {version}, newer than this server ({}); upgrade the server",
            MIGRATIONS.len()
        )));
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = db.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (step + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

const SESSION_COLUMNS: &str = "id, title, fps_num, fps_den, drop_frame, start_timecode, \
     duration_frames, media, created_at, last_frame, version_id, ended_at, entry, watermark";
const NOTE_COLUMNS: &str = "id, session_id, client_key, frame, frame_out, text, author, \
     author_role, created_at, version_id, parent_id, resolved_by, resolved_at, author_link";
const DRAWING_COLUMNS: &str = "id, session_id, version_id, client_key, frame, tool, colour, \
     width, points, author, author_role, created_at, erased_by, erased_at, author_link";
const APPROVAL_COLUMNS: &str = "id, session_id, version_id, client_key, status, author, \
     author_role, created_at, frames_seen, frame_count, stream, stream_bytes, stream_kbps, \
     checksum, author_link";
const VERSION_SELECT: &str = "SELECT v.id, v.media_item_id, m.name, v.number, v.path, \
     v.checksum, v.size_bytes, v.created_at FROM versions v JOIN media_items m ON m.id = v.media_item_id";

fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
    Ok(SessionRow {
        id: r.get(0)?,
        title: r.get(1)?,
        fps_num: r.get(2)?,
        fps_den: r.get(3)?,
        drop_frame: r.get(4)?,
        start_timecode: r.get(5)?,
        duration_frames: r.get(6)?,
        media: r.get(7)?,
        created_at: r.get(8)?,
        last_frame: r.get(9)?,
        version_id: r.get(10)?,
        ended_at: r.get(11)?,
        playlist: Vec::new(),
        entry: r.get(12)?,
        watermark: r.get(13)?,
    })
}

fn mark(by: Option<String>, at: Option<i64>) -> Option<Mark> {
    Some(Mark { by: by?, at: at? })
}

fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NoteRow> {
    Ok(NoteRow {
        id: r.get(0)?,
        note: NewNote {
            session_id: r.get(1)?,
            client_key: r.get(2)?,
            frame: r.get(3)?,
            frame_out: r.get(4)?,
            text: r.get(5)?,
            author: r.get(6)?,
            author_role: r.get(7)?,
            created_at: r.get(8)?,
            version_id: r.get(9)?,
            parent_id: r.get(10)?,
            author_link: r.get(13)?,
        },
        resolved: mark(r.get(11)?, r.get(12)?),
    })
}

fn drawing_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DrawingRow> {
    let tool: String = r.get(5)?;
    let colour: String = r.get(6)?;
    let points: Vec<u8> = r.get(8)?;
    // Only checked shapes are ever written, so these parse; a row edited by
    // hand into nonsense reads as a dot rather than failing the whole list.
    let shape = Shape {
        tool: Tool::from_name(&tool).unwrap_or(Tool::Pen),
        colour: Colour::parse(&colour).unwrap_or(Colour([255, 0, 0])),
        width: r.get::<_, f64>(7)? as f32,
        points: decode_points(&points),
    };
    Ok(DrawingRow {
        id: r.get(0)?,
        drawing: NewDrawing {
            session_id: r.get(1)?,
            version_id: r.get(2)?,
            client_key: r.get(3)?,
            frame: r.get(4)?,
            shape,
            author: r.get(9)?,
            author_role: r.get(10)?,
            created_at: r.get(11)?,
            author_link: r.get(14)?,
        },
        erased: mark(r.get(12)?, r.get(13)?),
    })
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

fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
    let frames: String = r.get(8)?;
    Ok(ApprovalRow {
        id: r.get(0)?,
        approval: NewApproval {
            session_id: r.get(1)?,
            version_id: r.get(2)?,
            client_key: r.get(3)?,
            author_link: r.get(14)?,
            status: r.get(4)?,
            author: r.get(5)?,
            author_role: r.get(6)?,
            created_at: r.get(7)?,
            receipt: Receipt {
                frames: parse_ranges(&frames),
                frame_count: r.get(9)?,
                stream: r.get(10)?,
                stream_bytes: r.get(11)?,
                stream_kbps: r.get(12)?,
                checksum: r.get(13)?,
            },
        },
    })
}

fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        id: r.get(0)?,
        item_id: r.get(1)?,
        item: r.get(2)?,
        number: r.get(3)?,
        path: r.get(4)?,
        checksum: r.get(5)?,
        size_bytes: r.get(6)?,
        created_at: r.get(7)?,
    })
}

/// The writer: batch whatever is waiting, commit once, then report.
fn write_loop(mut db: Connection, queue: mpsc::Receiver<Job>) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_batch(&mut db, batch);
    }
}

enum Outcome {
    Plain(
        Option<oneshot::Sender<Result<(), StoreError>>>,
        Result<(), StoreError>,
    ),
    Record(oneshot::Sender<RecordResult>, Box<RecordResult>),
}

fn commit_batch(db: &mut Connection, batch: Vec<Job>) {
    let tx = match db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => return fail_all(batch, StoreError::from(err)),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    // On some errors (disk full, I/O) SQLite rolls back the whole
    // transaction, not just the savepoint: everything before in the batch
    // is gone too, and a SAVEPOINT now would begin (and its RELEASE commit)
    // a transaction of its own behind the batch's back.
    let mut rolled_back: Option<StoreError> = None;
    for job in batch {
        if let Some(err) = &rolled_back {
            outcomes.push(Outcome::failed(job, err));
            continue;
        }
        let outcome = match job {
            Job::Plain(write, reply) => {
                Outcome::Plain(reply, in_savepoint(&tx, |db| apply(db, &write)))
            }
            Job::Record(record, reply) => Outcome::Record(
                reply,
                Box::new(in_savepoint(&tx, |db| apply_record(db, &record))),
            ),
        };
        if tx.is_autocommit() {
            rolled_back = Some(
                outcome
                    .error()
                    .unwrap_or_else(|| StoreError::Sqlite("the batch was rolled back".into())),
            );
        }
        outcomes.push(outcome);
    }
    let committed = match rolled_back {
        Some(err) => Err(err),
        None => tx.commit().map_err(StoreError::from),
    };
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
            Job::Plain(_, reply) => Outcome::Plain(reply, Err(err.clone())),
            Job::Record(_, reply) => Outcome::Record(reply, Box::new(Err(err.clone()))),
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
            Job::Plain(_, Some(reply)) => {
                let _ = reply.send(Err(err.clone()));
            }
            Job::Plain(_, None) => {}
            Job::Record(_, reply) => {
                let _ = reply.send(Err(err.clone()));
            }
        }
    }
}

fn in_savepoint<T>(
    tx: &rusqlite::Transaction<'_>,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    tx.execute_batch("SAVEPOINT one")?;
    match f(tx) {
        Ok(value) => {
            tx.execute_batch("RELEASE one")?;
            Ok(value)
        }
        Err(err) => {
            // If SQLite already rolled the transaction back there is no
            // savepoint left to undo; the write's own error says why.
            let _ = tx.execute_batch("ROLLBACK TO one; RELEASE one");
            Err(err)
        }
    }
}

/// A session's playlist entries, in order.
fn entries(db: &Connection, session_id: &str) -> Result<Vec<EntryRow>, StoreError> {
    let mut stmt = db.prepare_cached(
        "SELECT media, version_id, fps_num, fps_den, drop_frame, start_timecode, duration_frames
         FROM session_entries WHERE session_id = ?1 ORDER BY position",
    )?;
    let rows = stmt.query_map(params![session_id], |r| {
        let timeline = match (r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?) {
            (
                Some(fps_num),
                Some(fps_den),
                Some(drop_frame),
                Some(start_timecode),
                Some(duration_frames),
            ) => Some(TimelineRow {
                fps_num,
                fps_den,
                drop_frame,
                start_timecode,
                duration_frames,
            }),
            _ => None,
        };
        Ok(EntryRow {
            media: r.get(0)?,
            version_id: r.get(1)?,
            timeline,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

fn apply(db: &Connection, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Session(s, links) => {
            db.execute(
                "INSERT INTO sessions (id, title, fps_num, fps_den, drop_frame, start_timecode,
                                       duration_frames, media, created_at, last_frame,
                                       version_id, ended_at, entry, watermark)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    s.id,
                    s.title,
                    s.fps_num,
                    s.fps_den,
                    s.drop_frame,
                    s.start_timecode,
                    s.duration_frames,
                    s.media,
                    s.created_at,
                    s.last_frame,
                    s.version_id,
                    s.ended_at,
                    s.entry,
                    s.watermark
                ],
            )?;
            for (position, entry) in s.playlist.iter().enumerate() {
                let t = entry.timeline.as_ref();
                db.execute(
                    "INSERT INTO session_entries (session_id, position, media, version_id,
                                                  fps_num, fps_den, drop_frame, start_timecode,
                                                  duration_frames)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    params![
                        s.id,
                        position as i64,
                        entry.media,
                        entry.version_id,
                        t.map(|t| t.fps_num),
                        t.map(|t| t.fps_den),
                        t.map(|t| t.drop_frame),
                        t.map(|t| t.start_timecode.as_str()),
                        t.map(|t| t.duration_frames)
                    ],
                )?;
            }
            for link in links {
                insert_link(db, link)?;
            }
        }
        Write::Link(link) => insert_link(db, link)?,
        Write::RevokeLink {
            session_id,
            link_id,
        } => {
            db.execute(
                "UPDATE links SET revoked = 1 WHERE id = ?1 AND session_id = ?2",
                params![link_id, session_id],
            )?;
        }
        Write::LastFrame { session_id, frame } => {
            db.execute(
                "UPDATE sessions SET last_frame = ?1 WHERE id = ?2",
                params![frame, session_id],
            )?;
        }
        Write::RoomFrame(row) => {
            db.execute(
                "INSERT INTO personal_rooms (session_id, room, link_id, entry, frame)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (session_id, room)
                 DO UPDATE SET link_id = excluded.link_id, entry = excluded.entry,
                               frame = excluded.frame",
                params![row.session_id, row.room, row.link_id, row.entry, row.frame],
            )?;
        }
        Write::RoomClosed { session_id, room } => {
            db.execute(
                "DELETE FROM personal_rooms WHERE session_id = ?1 AND room = ?2",
                params![session_id, room],
            )?;
        }
        Write::Cue {
            session_id,
            entry,
            version_id,
            fps_num,
            fps_den,
            drop_frame,
            start_timecode,
            duration_frames,
        } => {
            db.execute(
                "UPDATE sessions SET entry = ?1, version_id = ?2, fps_num = ?3, fps_den = ?4,
                        drop_frame = ?5, start_timecode = ?6, duration_frames = ?7,
                        last_frame = 0
                 WHERE id = ?8",
                params![
                    entry,
                    version_id,
                    fps_num,
                    fps_den,
                    drop_frame,
                    start_timecode,
                    duration_frames,
                    session_id
                ],
            )?;
        }
        Write::End { session_id, at } => {
            db.execute(
                "UPDATE sessions SET ended_at = ?1 WHERE id = ?2 AND ended_at IS NULL",
                params![at, session_id],
            )?;
        }
        Write::Checksum {
            path,
            size_bytes,
            mtime_ns,
            checksum,
        } => {
            db.execute(
                "INSERT INTO media_checksums (path, size_bytes, mtime_ns, checksum)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (path) DO UPDATE SET size_bytes = ?2, mtime_ns = ?3, checksum = ?4",
                params![path, size_bytes, mtime_ns, checksum],
            )?;
        }
        Write::Delete {
            session_id,
            at,
            purge,
        } => {
            db.execute(
                "UPDATE sessions SET deleted_at = ?1, ended_at = COALESCE(ended_at, ?1)
                 WHERE id = ?2",
                params![at, session_id],
            )?;
            db.execute(
                "UPDATE links SET revoked = 1 WHERE session_id = ?1",
                params![session_id],
            )?;
            if *purge {
                // Replies before the notes they answer; nothing else points
                // at these rows.
                for sql in [
                    "DELETE FROM notes WHERE session_id = ?1 AND parent_id IS NOT NULL",
                    "DELETE FROM notes WHERE session_id = ?1",
                    "DELETE FROM drawings WHERE session_id = ?1",
                    "DELETE FROM approvals WHERE session_id = ?1",
                    "DELETE FROM session_entries WHERE session_id = ?1",
                    "DELETE FROM links WHERE session_id = ?1",
                    "DELETE FROM events WHERE session_id = ?1",
                    "DELETE FROM personal_rooms WHERE session_id = ?1",
                ] {
                    db.execute(sql, params![session_id])?;
                }
                db.execute(
                    "UPDATE sessions SET title = '', media = NULL, version_id = NULL WHERE id = ?1",
                    params![session_id],
                )?;
            }
            let detail = if *purge {
                "by the operator; its record was purged"
            } else {
                "by the operator; its record is kept"
            };
            db.execute(
                "INSERT INTO events (session_id, at, kind, detail) VALUES (?1, ?2, 'deleted', ?3)",
                params![session_id, at, detail],
            )?;
        }
        Write::Event {
            session_id,
            at,
            kind,
            detail,
        } => {
            db.execute(
                "INSERT INTO events (session_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
                params![session_id, at, kind, detail],
            )?;
        }
        Write::Delivery {
            delivery,
            url,
            event,
            attempt,
            status,
            error,
            at,
        } => {
            db.execute(
                "INSERT INTO webhook_deliveries (delivery, url, event, attempt, status, error, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![delivery, url, event, attempt, status, error, at],
            )?;
        }
    }
    Ok(())
}

fn insert_link(db: &Connection, link: &LinkRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO links (id, session_id, role, token_hash, expires_at, revoked, passcode_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            link.id,
            link.session_id,
            link.role,
            &link.token_hash[..],
            link.expires_at,
            link.revoked,
            link.passcode_hash
        ],
    )?;
    Ok(())
}

fn apply_record(db: &Connection, record: &Record) -> RecordResult {
    match record {
        Record::Note(note) => {
            let (row, new) = insert_note(db, note)?;
            Ok((Recorded::Note(row), new))
        }
        Record::Resolve {
            session_id,
            note_id,
            resolved,
        } => {
            db.execute(
                "UPDATE notes SET resolved_by = ?1, resolved_at = ?2 WHERE id = ?3 AND session_id = ?4",
                params![
                    resolved.as_ref().map(|m| &m.by),
                    resolved.as_ref().map(|m| m.at),
                    note_id,
                    session_id
                ],
            )?;
            let row = db.query_row(
                &format!("SELECT {NOTE_COLUMNS} FROM notes WHERE id = ?1"),
                params![note_id],
                note_row,
            )?;
            Ok((Recorded::Note(row), true))
        }
        Record::Drawing(drawing) => {
            let existing = db
                .query_row(
                    &format!(
                        "SELECT {DRAWING_COLUMNS} FROM drawings
                         WHERE session_id = ?1 AND author_link = ?2 AND client_key = ?3"
                    ),
                    params![drawing.session_id, drawing.author_link, drawing.client_key],
                    drawing_row,
                )
                .optional()?;
            if let Some(row) = existing {
                let same = row.drawing.frame == drawing.frame && row.drawing.shape == drawing.shape;
                if !same {
                    return Err(StoreError::KeyConflict(
                        drawing.client_key.clone(),
                        "drawing",
                    ));
                }
                return Ok((Recorded::Drawing(row), false));
            }
            db.execute(
                "INSERT INTO drawings (session_id, version_id, client_key, frame, tool, colour,
                                       width, points, author, author_role, created_at, author_link)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    drawing.session_id,
                    drawing.version_id,
                    drawing.client_key,
                    drawing.frame,
                    drawing.shape.tool.name(),
                    drawing.shape.colour.to_string(),
                    f64::from(drawing.shape.width),
                    encode_points(&drawing.shape.points),
                    drawing.author,
                    drawing.author_role,
                    drawing.created_at,
                    drawing.author_link
                ],
            )?;
            let row = DrawingRow {
                id: db.last_insert_rowid(),
                drawing: drawing.clone(),
                erased: None,
            };
            Ok((Recorded::Drawing(row), true))
        }
        Record::Erase {
            session_id,
            drawing_id,
            mark,
        } => {
            // The first eraser wins; erasing again changes nothing.
            let changed = db.execute(
                "UPDATE drawings SET erased_by = ?1, erased_at = ?2
                 WHERE id = ?3 AND session_id = ?4 AND erased_at IS NULL",
                params![mark.by, mark.at, drawing_id, session_id],
            )?;
            let row = db.query_row(
                &format!("SELECT {DRAWING_COLUMNS} FROM drawings WHERE id = ?1"),
                params![drawing_id],
                drawing_row,
            )?;
            Ok((Recorded::Drawing(row), changed > 0))
        }
        Record::Approval(approval) => {
            let existing = db
                .query_row(
                    &format!(
                        "SELECT {APPROVAL_COLUMNS} FROM approvals
                         WHERE session_id = ?1 AND author_link = ?2 AND client_key = ?3"
                    ),
                    params![
                        approval.session_id,
                        approval.author_link,
                        approval.client_key
                    ],
                    approval_row,
                )
                .optional()?;
            if let Some(row) = existing {
                // The receipt is the server's, taken at each send; the
                // decision and its version are what the author sent.
                let same = row.approval.status == approval.status
                    && row.approval.version_id == approval.version_id;
                if !same {
                    return Err(StoreError::KeyConflict(
                        approval.client_key.clone(),
                        "decision",
                    ));
                }
                return Ok((Recorded::Approval(row), false));
            }
            let receipt = &approval.receipt;
            db.execute(
                "INSERT INTO approvals (session_id, version_id, client_key, status, author,
                                        author_role, created_at, frames_seen, frame_count,
                                        stream, stream_bytes, stream_kbps, checksum, author_link)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                params![
                    approval.session_id,
                    approval.version_id,
                    approval.client_key,
                    approval.status,
                    approval.author,
                    approval.author_role,
                    approval.created_at,
                    ranges_text(&receipt.frames),
                    receipt.frame_count,
                    receipt.stream,
                    receipt.stream_bytes,
                    receipt.stream_kbps,
                    receipt.checksum,
                    approval.author_link
                ],
            )?;
            let row = ApprovalRow {
                id: db.last_insert_rowid(),
                approval: approval.clone(),
            };
            Ok((Recorded::Approval(row), true))
        }
        Record::Version(version) => {
            let (row, new) = insert_version(db, version)?;
            Ok((Recorded::Version(row), new))
        }
    }
}

fn insert_version(db: &Connection, version: &NewVersion) -> Result<(VersionRow, bool), StoreError> {
    let item_id: String = match db
        .query_row(
            "SELECT id FROM media_items WHERE name = ?1",
            params![version.item],
            |r| r.get(0),
        )
        .optional()?
    {
        Some(id) => id,
        None => {
            let id = crate::links::random_id();
            db.execute(
                "INSERT INTO media_items (id, name, created_at) VALUES (?1, ?2, ?3)",
                params![id, version.item, version.created_at],
            )?;
            id
        }
    };
    let same = db
        .query_row(
            &format!("{VERSION_SELECT} WHERE v.media_item_id = ?1 AND v.checksum = ?2"),
            params![item_id, version.checksum],
            version_row,
        )
        .optional()?;
    if let Some(row) = same {
        return Ok((row, false));
    }
    let number: i64 = db.query_row(
        "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE media_item_id = ?1",
        params![item_id],
        |r| r.get(0),
    )?;
    let id = crate::links::random_id();
    db.execute(
        "INSERT INTO versions (id, media_item_id, number, path, checksum, size_bytes, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![
            id,
            item_id,
            number,
            version.path,
            version.checksum,
            version.size_bytes,
            version.created_at
        ],
    )?;
    Ok((
        VersionRow {
            id,
            item_id,
            item: version.item.clone(),
            number,
            path: version.path.clone(),
            checksum: version.checksum.clone(),
            size_bytes: version.size_bytes,
            created_at: version.created_at,
        },
        true,
    ))
}

fn insert_note(db: &Connection, note: &NewNote) -> Result<(NoteRow, bool), StoreError> {
    let existing = db
        .query_row(
            &format!(
                "SELECT {NOTE_COLUMNS} FROM notes
                 WHERE session_id = ?1 AND author_link = ?2 AND client_key = ?3"
            ),
            params![note.session_id, note.author_link, note.client_key],
            note_row,
        )
        .optional()?;
    if let Some(row) = existing {
        let first = &row.note;
        let same = first.text == note.text
            && first.frame == note.frame
            && first.frame_out == note.frame_out
            && first.parent_id == note.parent_id;
        if !same {
            return Err(StoreError::KeyConflict(note.client_key.clone(), "note"));
        }
        return Ok((row, false));
    }
    db.execute(
        "INSERT INTO notes (session_id, client_key, frame, frame_out, text, author, author_role,
                            created_at, version_id, parent_id, author_link)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            note.session_id,
            note.client_key,
            note.frame,
            note.frame_out,
            note.text,
            note.author,
            note.author_role,
            note.created_at,
            note.version_id,
            note.parent_id,
            note.author_link
        ],
    )?;
    Ok((
        NoteRow {
            id: db.last_insert_rowid(),
            note: note.clone(),
            resolved: None,
        },
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn session(id: &str) -> SessionRow {
        SessionRow {
            id: id.into(),
            title: "Reel".into(),
            fps_num: 24000,
            fps_den: 1001,
            drop_frame: false,
            start_timecode: "01:00:00:00".into(),
            duration_frames: 1000,
            media: Some("demo.mov".into()),
            created_at: 1,
            last_frame: 0,
            version_id: None,
            ended_at: None,
            playlist: Vec::new(),
            entry: 0,
            watermark: None,
        }
    }

    fn note(key: &str, frame: i64) -> NewNote {
        NewNote {
            session_id: "s1".into(),
            version_id: None,
            parent_id: None,
            client_key: key.into(),
            author_link: "l1".into(),
            frame,
            frame_out: None,
            text: format!("note {key}"),
            author: "Dana".into(),
            author_role: "host".into(),
            created_at: 7,
        }
    }

    #[tokio::test]
    async fn notes_are_stored_once_per_client_key_and_read_back_in_order() {
        let store = Store::temporary().unwrap();
        store
            .write_acked(Write::Session(session("s1"), vec![]))
            .await
            .unwrap()
            .unwrap();
        let (a, new_a) = store.add_note(note("a", 10)).await.unwrap();
        let (b, new_b) = store.add_note(note("b", 20)).await.unwrap();
        let (again, new_again) = store.add_note(note("a", 10)).await.unwrap();
        assert!(new_a && new_b && !new_again);
        assert_eq!(again, a, "a resend finds the first copy");
        let notes = store.notes("s1").unwrap();
        assert_eq!(notes, vec![a, b]);
    }

    #[tokio::test]
    async fn a_key_belongs_to_its_link_and_a_reused_key_is_refused() {
        let store = Store::temporary().unwrap();
        store
            .write_acked(Write::Session(session("s1"), vec![]))
            .await
            .unwrap()
            .unwrap();
        let (mine, _) = store.add_note(note("k", 10)).await.unwrap();
        // Another link's note under the same key is its own note.
        let theirs = NewNote {
            author_link: "l2".into(),
            text: "theirs".into(),
            ..note("k", 10)
        };
        let (stored, new) = store.add_note(theirs.clone()).await.unwrap();
        assert!(new);
        assert_ne!(stored.id, mine.id);
        assert_eq!(stored.note, theirs);
        // The same link reusing the key for other words is refused, and
        // the first note stands.
        let reused = NewNote {
            text: "other words".into(),
            ..note("k", 10)
        };
        assert!(matches!(
            store.add_note(reused).await,
            Err(StoreError::KeyConflict(..))
        ));
        let texts: Vec<String> = store
            .notes("s1")
            .unwrap()
            .into_iter()
            .map(|n| n.note.text)
            .collect();
        assert_eq!(texts, ["note k", "theirs"]);
    }

    #[tokio::test]
    async fn a_failing_write_does_not_undo_the_others_in_its_batch() {
        let store = Store::temporary().unwrap();
        store.write_later(Write::Session(session("s1"), vec![]));
        // No such session: the foreign key refuses this note alone.
        let orphan = store.add_note(NewNote {
            session_id: "nope".into(),
            ..note("x", 1)
        });
        let fine = store.add_note(note("y", 2));
        let (orphan, fine) = tokio::join!(orphan, fine);
        assert!(matches!(orphan, Err(StoreError::Sqlite(_))));
        assert!(fine.is_ok());
        assert_eq!(store.notes("s1").unwrap().len(), 1);
    }

    /// A full disk may make SQLite roll back a whole batch, not just the
    /// write that found no room: whatever is acknowledged must be exactly
    /// what is on disk. `max_page_count` makes the database full on cue.
    #[test]
    fn when_the_record_is_full_exactly_the_acknowledged_writes_are_on_disk() {
        let path = std::env::temp_dir().join(format!("syncreel-full-{}.db", rand::random::<u64>()));
        let mut db = Connection::open(&path).unwrap();
        configure(&db).unwrap();
        migrate(&mut db).unwrap();
        commit_batch(
            &mut db,
            vec![Job::Plain(Write::Session(session("s1"), vec![]), None)],
        );
        let pages: i64 = db
            .pragma_query_value(None, "page_count", |r| r.get(0))
            .unwrap();
        db.pragma_update(None, "max_page_count", pages + 12)
            .unwrap();

        let mut answers = Vec::new();
        let mut batch = Vec::new();
        for i in 0..40 {
            let (tx, rx) = oneshot::channel();
            let key = format!("k{i}");
            let text = format!("{key} {}", "x".repeat(3000));
            batch.push(Job::Record(
                Record::Note(NewNote {
                    text,
                    ..note(&key, i)
                }),
                tx,
            ));
            answers.push((key, rx));
        }
        commit_batch(&mut db, batch);
        let acked: BTreeSet<String> = answers
            .into_iter()
            .filter_map(|(key, mut rx)| rx.try_recv().expect("answered").ok().map(|_| key))
            .collect();
        assert!(acked.len() < 40, "the page limit was reached");

        db.pragma_update(None, "max_page_count", 1_000_000).unwrap();
        let reader = Connection::open(&path).unwrap();
        let stored: BTreeSet<String> = reader
            .prepare("SELECT client_key FROM notes")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(stored, acked);
        // And the writer still works once there is room.
        let (tx, mut rx) = oneshot::channel();
        commit_batch(
            &mut db,
            vec![Job::Record(Record::Note(note("after", 1)), tx)],
        );
        assert!(rx.try_recv().unwrap().is_ok());
    }

    #[tokio::test]
    async fn a_reopened_record_keeps_everything_and_migrates_once() {
        let path =
            std::env::temp_dir().join(format!("syncreel-reopen-{}.db", rand::random::<u64>()));
        {
            let store = Store::open(&path).unwrap();
            let link = LinkRow {
                id: "l1".into(),
                session_id: "s1".into(),
                role: "host".into(),
                token_hash: [7; 32],
                expires_at: Some(99),
                revoked: false,
                passcode_hash: None,
            };
            store
                .write_acked(Write::Session(session("s1"), vec![link]))
                .await
                .unwrap()
                .unwrap();
            store.add_note(note("a", 5)).await.unwrap();
            store
                .write_acked(Write::LastFrame {
                    session_id: "s1".into(),
                    frame: 321,
                })
                .await
                .unwrap()
                .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let sessions = store.sessions().unwrap();
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].last_frame, 321);
        assert_eq!(store.links().unwrap()[0].token_hash, [7; 32]);
        assert_eq!(store.notes("s1").unwrap().len(), 1);
        let _ = std::fs::remove_file(&path);
    }

    #[tokio::test]
    async fn a_personal_room_keeps_one_row_that_moves_with_it_and_goes_when_it_closes() {
        let store = Store::temporary().unwrap();
        store
            .write_acked(Write::Session(session("s1"), vec![]))
            .await
            .unwrap()
            .unwrap();
        let row = |frame| PersonalRoomRow {
            session_id: "s1".into(),
            room: "ab".into(),
            link_id: "l2".into(),
            entry: 0,
            frame,
        };
        for frame in [60, 1360] {
            store
                .write_acked(Write::RoomFrame(row(frame)))
                .await
                .unwrap()
                .unwrap();
        }
        assert_eq!(store.personal_rooms("s1").unwrap(), vec![row(1360)]);
        assert_eq!(store.personal_rooms("s2").unwrap(), vec![]);
        store
            .write_acked(Write::RoomClosed {
                session_id: "s1".into(),
                room: "ab".into(),
            })
            .await
            .unwrap()
            .unwrap();
        assert_eq!(store.personal_rooms("s1").unwrap(), vec![]);
    }

    /// Step 9 adds the passcode column: a link recorded under schema 8
    /// comes back without a passcode, and a new one keeps its hash.
    #[tokio::test]
    async fn migration_9_keeps_old_links_open_and_stores_passcode_hashes() {
        let path = std::env::temp_dir().join(format!("syncreel-m9-{}.db", rand::random::<u64>()));
        {
            let mut db = Connection::open(&path).unwrap();
            configure(&db).unwrap();
            for (step, sql) in MIGRATIONS.iter().enumerate().take(8) {
                let tx = db.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.pragma_update(None, "user_version", (step + 1) as i64)
                    .unwrap();
                tx.commit().unwrap();
            }
            // By hand: today's session row has columns schema 8 lacks.
            db.execute(
                "INSERT INTO sessions (id, title, fps_num, fps_den, drop_frame, start_timecode,
                                       duration_frames, created_at)
                 VALUES ('s1', 'Old', 24, 1, 0, '00:00:00:00', 100, 0)",
                [],
            )
            .unwrap();
            db.execute(
                "INSERT INTO links (id, session_id, role, token_hash, expires_at, revoked)
                 VALUES ('old', 's1', 'viewer', ?1, NULL, 0)",
                params![&[1u8; 32][..]],
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let version: i64 = store
            .reader
            .lock()
            .unwrap()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(version, MIGRATIONS.len() as i64);
        let links = store.links().unwrap();
        assert_eq!(
            (links[0].id.as_str(), &links[0].passcode_hash),
            ("old", &None)
        );

        let phc = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo".to_string();
        let link = LinkRow {
            id: "new".into(),
            session_id: "s1".into(),
            role: "reviewer".into(),
            token_hash: [2; 32],
            expires_at: None,
            revoked: false,
            passcode_hash: Some(phc.clone()),
        };
        store.write_acked(Write::Link(link)).await.unwrap().unwrap();
        drop(store);
        let links = Store::open(&path).unwrap().links().unwrap();
        assert_eq!(links.len(), 2);
        assert_eq!(links[1].passcode_hash.as_deref(), Some(phc.as_str()));
        let _ = std::fs::remove_file(&path);
    }
}
