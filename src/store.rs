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
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkRow {
    pub id: String,
    pub session_id: String,
    pub role: String,
    pub token_hash: [u8; 32],
    pub expires_at: Option<i64>,
    pub revoked: bool,
}

/// A note as written by its author, before it has an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNote {
    pub session_id: String,
    /// The author's own key for it: a resend after a lost acknowledgement
    /// finds the first copy instead of making a second.
    pub client_key: String,
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
}

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
    Note(
        NewNote,
        oneshot::Sender<Result<(NoteRow, bool), StoreError>>,
    ),
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

    /// Queues a note. Its outcome is the stored note and whether it is
    /// new; a note whose `client_key` was seen before comes back as first
    /// stored, not stored twice.
    pub fn add_note(
        &self,
        note: NewNote,
    ) -> oneshot::Receiver<Result<(NoteRow, bool), StoreError>> {
        let (tx, rx) = oneshot::channel();
        match self.jobs.try_send(Job::Note(note, tx)) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(Job::Note(_, tx))) => {
                let _ = tx.send(Err(StoreError::Busy));
            }
            Err(mpsc::TrySendError::Disconnected(Job::Note(_, tx))) => {
                let _ = tx.send(Err(StoreError::Closed));
            }
            Err(_) => {}
        }
        rx
    }

    /// Every session, oldest first.
    pub fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions ORDER BY created_at, id"
        ))?;
        let rows = stmt.query_map([], session_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One session, if recorded.
    pub fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        Ok(db
            .query_row(
                &format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"),
                params![id],
                session_row,
            )
            .optional()?)
    }

    /// Every link of every session.
    pub fn links(&self) -> Result<Vec<LinkRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(
            "SELECT id, session_id, role, token_hash, expires_at, revoked FROM links ORDER BY rowid",
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
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A session's notes, in the order they were made.
    pub fn notes(&self, session_id: &str) -> Result<Vec<NoteRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(
            "SELECT id, session_id, client_key, frame, frame_out, text, author, author_role,
                    created_at
             FROM notes WHERE session_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![session_id], note_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A session and its notes, for exports; `None` when no such session.
    pub fn review(&self, session_id: &str) -> Result<Option<crate::export::Review>, StoreError> {
        let Some(session) = self.session(session_id)? else {
            return Ok(None);
        };
        let notes = self.notes(session_id)?;
        Ok(Some(crate::export::Review { session, notes }))
    }

    /// The webhook delivery log, oldest first.
    pub fn deliveries(&self) -> Result<Vec<DeliveryRow>, StoreError> {
        let db = self.reader.lock().expect("reader lock");
        let mut stmt = db.prepare(
            "SELECT delivery, url, event, attempt, status, error, at
             FROM webhook_deliveries ORDER BY id",
        )?;
        let rows = stmt.query_map([], |r| {
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
     duration_frames, media, created_at, last_frame";

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
    })
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
        },
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
    Note(
        oneshot::Sender<Result<(NoteRow, bool), StoreError>>,
        Result<(NoteRow, bool), StoreError>,
    ),
}

fn commit_batch(db: &mut Connection, batch: Vec<Job>) {
    let tx = match db.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(err) => return fail_all(batch, StoreError::from(err)),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in batch {
        match job {
            Job::Plain(write, reply) => {
                let result = in_savepoint(&tx, |db| apply(db, &write));
                outcomes.push(Outcome::Plain(reply, result));
            }
            Job::Note(note, reply) => {
                let result = in_savepoint(&tx, |db| insert_note(db, &note));
                outcomes.push(Outcome::Note(reply, result));
            }
        }
    }
    if let Err(err) = tx.commit() {
        // Nothing in the batch is on disk: say so to everyone waiting.
        let err = StoreError::from(err);
        tracing::error!(%err, "review record commit failed");
        for outcome in outcomes {
            match outcome {
                Outcome::Plain(Some(reply), _) => {
                    let _ = reply.send(Err(err.clone()));
                }
                Outcome::Plain(None, _) => {}
                Outcome::Note(reply, _) => {
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
            Outcome::Note(reply, result) => {
                let _ = reply.send(result);
            }
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
            Job::Note(_, reply) => {
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
            tx.execute_batch("ROLLBACK TO one; RELEASE one")?;
            Err(err)
        }
    }
}

fn apply(db: &Connection, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Session(s, links) => {
            db.execute(
                "INSERT INTO sessions (id, title, fps_num, fps_den, drop_frame, start_timecode,
                                       duration_frames, media, created_at, last_frame)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
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
                    s.last_frame
                ],
            )?;
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
        "INSERT INTO links (id, session_id, role, token_hash, expires_at, revoked)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            link.id,
            link.session_id,
            link.role,
            &link.token_hash[..],
            link.expires_at,
            link.revoked
        ],
    )?;
    Ok(())
}

fn insert_note(db: &Connection, note: &NewNote) -> Result<(NoteRow, bool), StoreError> {
    let existing = db
        .query_row(
            "SELECT id, session_id, client_key, frame, frame_out, text, author, author_role,
                    created_at
             FROM notes WHERE session_id = ?1 AND client_key = ?2",
            params![note.session_id, note.client_key],
            note_row,
        )
        .optional()?;
    if let Some(row) = existing {
        return Ok((row, false));
    }
    db.execute(
        "INSERT INTO notes (session_id, client_key, frame, frame_out, text, author, author_role,
                            created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            note.session_id,
            note.client_key,
            note.frame,
            note.frame_out,
            note.text,
            note.author,
            note.author_role,
            note.created_at
        ],
    )?;
    Ok((
        NoteRow {
            id: db.last_insert_rowid(),
            note: note.clone(),
        },
        true,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    fn note(key: &str, frame: i64) -> NewNote {
        NewNote {
            session_id: "s1".into(),
            client_key: key.into(),
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
        let (a, new_a) = store.add_note(note("a", 10)).await.unwrap().unwrap();
        let (b, new_b) = store.add_note(note("b", 20)).await.unwrap().unwrap();
        let (again, new_again) = store.add_note(note("a", 99)).await.unwrap().unwrap();
        assert!(new_a && new_b && !new_again);
        assert_eq!(again, a, "a resend finds the first copy");
        let notes = store.notes("s1").unwrap();
        assert_eq!(notes, vec![a, b]);
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
        assert!(matches!(orphan.await.unwrap(), Err(StoreError::Sqlite(_))));
        assert!(fine.await.unwrap().is_ok());
        assert_eq!(store.notes("s1").unwrap().len(), 1);
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
            };
            store
                .write_acked(Write::Session(session("s1"), vec![link]))
                .await
                .unwrap()
                .unwrap();
            store.add_note(note("a", 5)).await.unwrap().unwrap();
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
}
