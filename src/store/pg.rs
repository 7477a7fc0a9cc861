//! The review record in PostgreSQL: the shared record of a cluster
//! (issue #14), the same record as the SQLite file behind the same
//! [`Store`](super::Store), checked by the same behavioural suite
//! (`tests/store_behaviour.rs`).
//!
//! It keeps the SQLite backend's shape: one writer thread owns the write
//! connection, takes every write that is waiting, applies each inside its
//! own savepoint and commits them together, so one round trip and one WAL
//! flush acknowledge a whole batch. Reads go to a second connection on a
//! thread of its own: the `postgres` client drives a runtime of its own,
//! which must never run on a thread that drives our tasks, so callers
//! hand it a closure and wait for the answer instead.
//!
//! A lost connection is not fatal: the next batch or read connects again,
//! and the writes of the batch it broke are reported as failed (nothing of
//! them is committed, so a resend stores them once).
//!
//! The schema is versioned by a one-row `schema_version` table;
//! [`MIGRATIONS`] only grows, each step runs once in a transaction, and an
//! advisory lock keeps nodes starting together from running it twice.
//! Step 1 is the SQLite schema as its eleven steps left it.

use std::sync::mpsc;

use postgres::{Client, GenericClient, NoTls, Row};

use super::{
    mark, parse_ranges, ranges_text, report, same_approval, same_drawing, same_note, shape_of,
    write_loop, ApprovalRow, DeliveryRow, DrawingRow, EntryRow, Job, LinkRow, NewApproval,
    NewDrawing, NewNote, NewVersion, NoteRow, OutboxRow, Outcome, PersonalRoomRow, Receipt, Record,
    RecordResult, Recorded, SessionRow, StoreError, TimelineRow, VersionRow, Write,
};
use crate::drawing::encode_points;

const MIGRATIONS: &[&str] = &[
    // 1: the whole record, as SQLite's steps 1 to 11 left it.
    "CREATE TABLE media_items (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        created_at BIGINT NOT NULL
    );
    CREATE TABLE versions (
        id TEXT PRIMARY KEY,
        media_item_id TEXT NOT NULL REFERENCES media_items(id),
        number BIGINT NOT NULL,
        path TEXT NOT NULL,
        checksum TEXT NOT NULL,
        size_bytes BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE (media_item_id, number),
        UNIQUE (media_item_id, checksum)
    );
    CREATE TABLE sessions (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL,
        fps_num BIGINT NOT NULL,
        fps_den BIGINT NOT NULL,
        drop_frame BOOLEAN NOT NULL,
        start_timecode TEXT NOT NULL,
        duration_frames BIGINT NOT NULL,
        media TEXT,
        created_at BIGINT NOT NULL,
        last_frame BIGINT NOT NULL DEFAULT 0,
        version_id TEXT REFERENCES versions(id),
        ended_at BIGINT,
        entry BIGINT NOT NULL DEFAULT 0,
        deleted_at BIGINT,
        watermark TEXT
    );
    CREATE TABLE links (
        seq BIGSERIAL NOT NULL,
        id TEXT PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        role TEXT NOT NULL,
        token_hash BYTEA NOT NULL UNIQUE,
        expires_at BIGINT,
        revoked BOOLEAN NOT NULL DEFAULT FALSE,
        passcode_hash TEXT
    );
    CREATE TABLE notes (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        client_key TEXT NOT NULL,
        frame BIGINT NOT NULL,
        frame_out BIGINT,
        text TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        version_id TEXT REFERENCES versions(id),
        parent_id BIGINT REFERENCES notes(id),
        resolved_by TEXT,
        resolved_at BIGINT,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    CREATE TABLE events (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL,
        at BIGINT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE INDEX events_by_session ON events (session_id, id);
    CREATE TABLE webhook_deliveries (
        id BIGSERIAL PRIMARY KEY,
        delivery TEXT NOT NULL,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        attempt BIGINT NOT NULL,
        status INTEGER,
        error TEXT,
        at BIGINT NOT NULL
    );
    CREATE INDEX deliveries_by_delivery ON webhook_deliveries (delivery, attempt);
    CREATE TABLE drawings (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        frame BIGINT NOT NULL,
        tool TEXT NOT NULL,
        colour TEXT NOT NULL,
        width DOUBLE PRECISION NOT NULL,
        points BYTEA NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        erased_by TEXT,
        erased_at BIGINT,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    CREATE TABLE approvals (
        id BIGSERIAL PRIMARY KEY,
        session_id TEXT NOT NULL REFERENCES sessions(id),
        version_id TEXT REFERENCES versions(id),
        client_key TEXT NOT NULL,
        status TEXT NOT NULL,
        author TEXT NOT NULL,
        author_role TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        frames_seen TEXT NOT NULL,
        frame_count BIGINT NOT NULL,
        stream TEXT,
        stream_bytes BIGINT,
        stream_kbps BIGINT,
        checksum TEXT,
        author_link TEXT NOT NULL DEFAULT '',
        UNIQUE (session_id, author_link, client_key)
    );
    CREATE TABLE session_entries (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        position BIGINT NOT NULL,
        media TEXT NOT NULL,
        version_id TEXT REFERENCES versions(id),
        fps_num BIGINT,
        fps_den BIGINT,
        drop_frame BOOLEAN,
        start_timecode TEXT,
        duration_frames BIGINT,
        PRIMARY KEY (session_id, position)
    );
    CREATE TABLE media_checksums (
        path TEXT PRIMARY KEY,
        size_bytes BIGINT NOT NULL,
        mtime_ns BIGINT NOT NULL,
        checksum TEXT NOT NULL
    );
    CREATE TABLE personal_rooms (
        session_id TEXT NOT NULL REFERENCES sessions(id),
        room TEXT NOT NULL,
        link_id TEXT NOT NULL,
        entry BIGINT NOT NULL,
        frame BIGINT NOT NULL,
        PRIMARY KEY (session_id, room)
    );",
    // 2: the webhook outbox, as SQLite's step 12.
    "CREATE TABLE webhook_outbox (
        id BIGSERIAL PRIMARY KEY,
        delivery TEXT NOT NULL,
        url TEXT NOT NULL,
        event TEXT NOT NULL,
        body TEXT NOT NULL,
        attempts BIGINT NOT NULL DEFAULT 0,
        due_at BIGINT NOT NULL,
        claimed_by TEXT,
        claimed_until BIGINT,
        finished_at BIGINT,
        UNIQUE (delivery, url)
    );
    CREATE INDEX outbox_due ON webhook_outbox (finished_at, due_at);",
];

/// Any number, so long as every node uses the same one: the advisory lock
/// that serializes migrations across nodes starting at once.
const MIGRATION_LOCK: i64 = 0x5359_4e43_5245_454c; // "SYNCREEL"

impl From<postgres::Error> for StoreError {
    fn from(err: postgres::Error) -> StoreError {
        // The server's own message (a constraint, a full disk) says more
        // than the client's summary of it.
        match err.as_db_error() {
            Some(db) => StoreError::Database(db.message().to_string()),
            None => StoreError::Database(err.to_string()),
        }
    }
}

/// A connection that comes back: connected on first use and again after
/// it was lost.
struct Connection {
    url: String,
    client: Option<Client>,
}

impl Connection {
    fn get(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.client = Some(Client::connect(&self.url, NoTls)?);
        }
        Ok(self.client.as_mut().expect("connected just now"))
    }
}

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// The read side: a thread with its own connection, asked with closures.
#[derive(Clone)]
pub(super) struct Reader {
    requests: mpsc::Sender<ReadJob>,
}

/// Connects, migrates, and starts the writer and reader threads.
pub(super) fn start(
    url: &str,
    queue: usize,
) -> Result<(mpsc::SyncSender<Job>, Reader), StoreError> {
    let connect = || -> Result<(Connection, Connection), StoreError> {
        let mut writer = Connection {
            url: url.to_string(),
            client: None,
        };
        migrate(writer.get()?)?;
        let mut reader = Connection {
            url: url.to_string(),
            client: None,
        };
        reader.get()?;
        Ok((writer, reader))
    };
    // The client starts a runtime of its own, which panics on a thread
    // that is driving tasks, as the caller's may be.
    let (mut writer, mut reader) = std::thread::scope(|s| s.spawn(connect).join())
        .map_err(|_| StoreError::Database("connecting to PostgreSQL panicked".into()))??;
    let (jobs, waiting) = mpsc::sync_channel(queue);
    spawn("syncreel-store-pg-writer", move || {
        write_loop(waiting, |batch| commit_batch(&mut writer, batch))
    })?;
    let (requests, asked) = mpsc::channel::<ReadJob>();
    spawn("syncreel-store-pg-reader", move || {
        while let Ok(job) = asked.recv() {
            job(&mut reader);
        }
    })?;
    Ok((jobs, Reader { requests }))
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(f)
        .map(drop)
        .map_err(|e| StoreError::Database(e.to_string()))
}

fn migrate(db: &mut Client) -> Result<(), StoreError> {
    let mut tx = db.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")?;
    let version: Option<i64> = tx
        .query_opt("SELECT version FROM schema_version", &[])?
        .map(|r| r.get(0));
    if version.is_none() {
        tx.execute("INSERT INTO schema_version (version) VALUES (0)", &[])?;
    }
    let version = usize::try_from(version.unwrap_or(0)).unwrap_or(0);
    if version > MIGRATIONS.len() {
        return Err(StoreError::Database(format!(
            "the record is at schema {version}, newer than this server ({}); upgrade the server",
            MIGRATIONS.len()
        )));
    }
    for (step, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        tx.batch_execute(sql)?;
        tx.execute(
            "UPDATE schema_version SET version = $1",
            &[&((step + 1) as i64)],
        )?;
    }
    tx.commit()?;
    Ok(())
}

fn commit_batch(db: &mut Connection, batch: Vec<Job>) {
    let client = match db.get() {
        Ok(client) => client,
        Err(err) => return super::fail_all(batch, err),
    };
    let mut tx = match client.transaction() {
        Ok(tx) => tx,
        Err(err) => return super::fail_all(batch, err.into()),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    // A lost connection fails every statement after it; what was tried
    // before is lost with the transaction, so the commit reports it.
    for job in batch {
        let outcome = match job {
            Job::Plain(write, reply) => {
                Outcome::Plain(reply, in_savepoint(&mut tx, |db| apply(db, &write)))
            }
            Job::Record(record, reply) => Outcome::Record(
                reply,
                Box::new(in_savepoint(&mut tx, |db| apply_record(db, &record))),
            ),
        };
        outcomes.push(outcome);
    }
    report(outcomes, tx.commit().map_err(StoreError::from));
}

fn in_savepoint<T>(
    tx: &mut postgres::Transaction<'_>,
    f: impl FnOnce(&mut postgres::Transaction<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // A failed statement spoils the whole transaction in PostgreSQL; the
    // savepoint's rollback (on drop) takes the batch back to before it.
    let mut one = tx.savepoint("one")?;
    let value = f(&mut one)?;
    one.commit()?;
    Ok(value)
}

fn u32_of(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Database(format!("{value} is out of range")))
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

fn session_row(r: &Row) -> Result<SessionRow, StoreError> {
    Ok(SessionRow {
        id: r.try_get(0)?,
        title: r.try_get(1)?,
        fps_num: u32_of(r.try_get(2)?)?,
        fps_den: u32_of(r.try_get(3)?)?,
        drop_frame: r.try_get(4)?,
        start_timecode: r.try_get(5)?,
        duration_frames: r.try_get(6)?,
        media: r.try_get(7)?,
        created_at: r.try_get(8)?,
        last_frame: r.try_get(9)?,
        version_id: r.try_get(10)?,
        ended_at: r.try_get(11)?,
        playlist: Vec::new(),
        entry: r.try_get(12)?,
        watermark: r.try_get(13)?,
    })
}

fn note_row(r: &Row) -> Result<NoteRow, StoreError> {
    Ok(NoteRow {
        id: r.try_get(0)?,
        note: NewNote {
            session_id: r.try_get(1)?,
            client_key: r.try_get(2)?,
            frame: r.try_get(3)?,
            frame_out: r.try_get(4)?,
            text: r.try_get(5)?,
            author: r.try_get(6)?,
            author_role: r.try_get(7)?,
            created_at: r.try_get(8)?,
            version_id: r.try_get(9)?,
            parent_id: r.try_get(10)?,
            author_link: r.try_get(13)?,
        },
        resolved: mark(r.try_get(11)?, r.try_get(12)?),
    })
}

fn drawing_row(r: &Row) -> Result<DrawingRow, StoreError> {
    let tool: String = r.try_get(5)?;
    let colour: String = r.try_get(6)?;
    let points: Vec<u8> = r.try_get(8)?;
    Ok(DrawingRow {
        id: r.try_get(0)?,
        drawing: NewDrawing {
            session_id: r.try_get(1)?,
            version_id: r.try_get(2)?,
            client_key: r.try_get(3)?,
            frame: r.try_get(4)?,
            shape: shape_of(&tool, &colour, r.try_get(7)?, &points),
            author: r.try_get(9)?,
            author_role: r.try_get(10)?,
            created_at: r.try_get(11)?,
            author_link: r.try_get(14)?,
        },
        erased: mark(r.try_get(12)?, r.try_get(13)?),
    })
}

fn approval_row(r: &Row) -> Result<ApprovalRow, StoreError> {
    let frames: String = r.try_get(8)?;
    Ok(ApprovalRow {
        id: r.try_get(0)?,
        approval: NewApproval {
            session_id: r.try_get(1)?,
            version_id: r.try_get(2)?,
            client_key: r.try_get(3)?,
            author_link: r.try_get(14)?,
            status: r.try_get(4)?,
            author: r.try_get(5)?,
            author_role: r.try_get(6)?,
            created_at: r.try_get(7)?,
            receipt: Receipt {
                frames: parse_ranges(&frames),
                frame_count: r.try_get(9)?,
                stream: r.try_get(10)?,
                stream_bytes: r.try_get(11)?,
                stream_kbps: r.try_get(12)?,
                checksum: r.try_get(13)?,
            },
        },
    })
}

fn version_row(r: &Row) -> Result<VersionRow, StoreError> {
    Ok(VersionRow {
        id: r.try_get(0)?,
        item_id: r.try_get(1)?,
        item: r.try_get(2)?,
        number: r.try_get(3)?,
        path: r.try_get(4)?,
        checksum: r.try_get(5)?,
        size_bytes: r.try_get(6)?,
        created_at: r.try_get(7)?,
    })
}

fn link_row(r: &Row) -> Result<LinkRow, StoreError> {
    let hash: Vec<u8> = r.try_get(3)?;
    Ok(LinkRow {
        id: r.try_get(0)?,
        session_id: r.try_get(1)?,
        role: r.try_get(2)?,
        token_hash: hash.try_into().unwrap_or([0; 32]),
        expires_at: r.try_get(4)?,
        revoked: r.try_get(5)?,
        passcode_hash: r.try_get(6)?,
    })
}

fn all<T>(rows: Vec<Row>, row: fn(&Row) -> Result<T, StoreError>) -> Result<Vec<T>, StoreError> {
    rows.iter().map(row).collect()
}

fn entries(db: &mut impl GenericClient, session_id: &str) -> Result<Vec<EntryRow>, StoreError> {
    let rows = db.query(
        "SELECT media, version_id, fps_num, fps_den, drop_frame, start_timecode, duration_frames
         FROM session_entries WHERE session_id = $1 ORDER BY position",
        &[&session_id],
    )?;
    rows.iter()
        .map(|r| {
            let timeline = match (
                r.try_get::<_, Option<i64>>(2)?,
                r.try_get::<_, Option<i64>>(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
            ) {
                (
                    Some(fps_num),
                    Some(fps_den),
                    Some(drop_frame),
                    Some(start_timecode),
                    Some(duration_frames),
                ) => Some(TimelineRow {
                    fps_num: u32_of(fps_num)?,
                    fps_den: u32_of(fps_den)?,
                    drop_frame,
                    start_timecode,
                    duration_frames,
                }),
                _ => None,
            };
            Ok(EntryRow {
                media: r.try_get(0)?,
                version_id: r.try_get(1)?,
                timeline,
            })
        })
        .collect()
}

impl Reader {
    /// Runs `read` on the reader thread's connection and waits for it.
    fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (answer, answered) = mpsc::sync_channel(1);
        self.requests
            .send(Box::new(move |db: &mut Connection| {
                let _ = answer.send(db.get().and_then(read));
            }))
            .map_err(|_| StoreError::Closed)?;
        answered.recv().map_err(|_| StoreError::Closed)?
    }

    pub(super) fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        self.read(|db| {
            let rows = db.query(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE deleted_at IS NULL
                     ORDER BY created_at, id"
                ),
                &[],
            )?;
            let mut sessions = all(rows, session_row)?;
            for session in &mut sessions {
                session.playlist = entries(db, &session.id)?;
            }
            Ok(sessions)
        })
    }

    pub(super) fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let id = id.to_string();
        self.read(move |db| {
            db.query_opt(
                &format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = $1 AND deleted_at IS NULL"
                ),
                &[&id],
            )?
            .as_ref()
            .map(session_row)
            .transpose()
        })
    }

    pub(super) fn media_of_version(
        &self,
        session_id: &str,
        checksum: &str,
    ) -> Result<Option<String>, StoreError> {
        let (session_id, checksum) = (session_id.to_string(), checksum.to_string());
        self.read(move |db| {
            Ok(db
                .query_opt(
                    "SELECT e.media FROM session_entries e JOIN versions v ON v.id = e.version_id
                     WHERE e.session_id = $1 AND v.checksum = $2
                     UNION ALL
                     SELECT s.media FROM sessions s JOIN versions v ON v.id = s.version_id
                     WHERE s.id = $1 AND v.checksum = $2 AND s.media IS NOT NULL
                     LIMIT 1",
                    &[&session_id, &checksum],
                )?
                .map(|r| r.get(0)))
        })
    }

    pub(super) fn known_checksum(
        &self,
        path: &str,
        size_bytes: i64,
        mtime_ns: i64,
    ) -> Result<Option<String>, StoreError> {
        let path = path.to_string();
        self.read(move |db| {
            Ok(db
                .query_opt(
                    "SELECT checksum FROM media_checksums
                     WHERE path = $1 AND size_bytes = $2 AND mtime_ns = $3",
                    &[&path, &size_bytes, &mtime_ns],
                )?
                .map(|r| r.get(0)))
        })
    }

    pub(super) fn entries_of(&self, session_id: &str) -> Result<Vec<EntryRow>, StoreError> {
        let session_id = session_id.to_string();
        self.read(move |db| entries(db, &session_id))
    }

    pub(super) fn links(&self) -> Result<Vec<LinkRow>, StoreError> {
        self.read(|db| {
            let rows = db.query(
                "SELECT id, session_id, role, token_hash, expires_at, revoked, passcode_hash
                 FROM links ORDER BY seq",
                &[],
            )?;
            all(rows, link_row)
        })
    }

    pub(super) fn personal_rooms(
        &self,
        session_id: &str,
    ) -> Result<Vec<PersonalRoomRow>, StoreError> {
        let session_id = session_id.to_string();
        self.read(move |db| {
            let rows = db.query(
                "SELECT session_id, room, link_id, entry, frame FROM personal_rooms
                 WHERE session_id = $1 ORDER BY room",
                &[&session_id],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(PersonalRoomRow {
                        session_id: r.try_get(0)?,
                        room: r.try_get(1)?,
                        link_id: r.try_get(2)?,
                        entry: r.try_get(3)?,
                        frame: r.try_get(4)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn notes(&self, session_id: &str) -> Result<Vec<NoteRow>, StoreError> {
        self.list(session_id, NOTE_COLUMNS, "notes", note_row)
    }

    pub(super) fn drawings(&self, session_id: &str) -> Result<Vec<DrawingRow>, StoreError> {
        self.list(session_id, DRAWING_COLUMNS, "drawings", drawing_row)
    }

    pub(super) fn approvals(&self, session_id: &str) -> Result<Vec<ApprovalRow>, StoreError> {
        self.list(session_id, APPROVAL_COLUMNS, "approvals", approval_row)
    }

    /// A session's rows of `table`, in the order made.
    fn list<T: Send + 'static>(
        &self,
        session_id: &str,
        columns: &'static str,
        table: &'static str,
        row: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let session_id = session_id.to_string();
        self.read(move |db| {
            let rows = db.query(
                &format!("SELECT {columns} FROM {table} WHERE session_id = $1 ORDER BY id"),
                &[&session_id],
            )?;
            all(rows, row)
        })
    }

    pub(super) fn version(&self, id: &str) -> Result<Option<VersionRow>, StoreError> {
        let id = id.to_string();
        self.read(move |db| {
            db.query_opt(&format!("{VERSION_SELECT} WHERE v.id = $1"), &[&id])?
                .as_ref()
                .map(version_row)
                .transpose()
        })
    }

    pub(super) fn versions(&self) -> Result<Vec<VersionRow>, StoreError> {
        self.read(|db| {
            let rows = db.query(&format!("{VERSION_SELECT} ORDER BY m.name, v.number"), &[])?;
            all(rows, version_row)
        })
    }

    pub(super) fn deliveries(&self, limit: usize) -> Result<Vec<DeliveryRow>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |db| {
            let rows = db.query(
                "SELECT delivery, url, event, attempt, status, error, at FROM
                 (SELECT * FROM webhook_deliveries ORDER BY id DESC LIMIT $1) newest ORDER BY id",
                &[&limit],
            )?;
            rows.iter()
                .map(|r| {
                    Ok(DeliveryRow {
                        delivery: r.try_get(0)?,
                        url: r.try_get(1)?,
                        event: r.try_get(2)?,
                        attempt: u32_of(r.try_get(3)?)?,
                        status: r
                            .try_get::<_, Option<i32>>(4)?
                            .and_then(|s| u16::try_from(s).ok()),
                        error: r.try_get(5)?,
                        at: r.try_get(6)?,
                    })
                })
                .collect()
        })
    }

    pub(super) fn events(
        &self,
        session_id: &str,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let session_id = session_id.to_string();
        self.read(move |db| {
            let rows = db.query(
                "SELECT at, kind, detail FROM events WHERE session_id = $1 ORDER BY id",
                &[&session_id],
            )?;
            rows.iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
                .collect()
        })
    }
}

fn apply(db: &mut impl GenericClient, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Session(s, links) => {
            db.execute(
                "INSERT INTO sessions (id, title, fps_num, fps_den, drop_frame, start_timecode,
                                       duration_frames, media, created_at, last_frame,
                                       version_id, ended_at, entry, watermark)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                &[
                    &s.id,
                    &s.title,
                    &i64::from(s.fps_num),
                    &i64::from(s.fps_den),
                    &s.drop_frame,
                    &s.start_timecode,
                    &s.duration_frames,
                    &s.media,
                    &s.created_at,
                    &s.last_frame,
                    &s.version_id,
                    &s.ended_at,
                    &s.entry,
                    &s.watermark,
                ],
            )?;
            for (position, entry) in s.playlist.iter().enumerate() {
                let t = entry.timeline.as_ref();
                db.execute(
                    "INSERT INTO session_entries (session_id, position, media, version_id,
                                                  fps_num, fps_den, drop_frame, start_timecode,
                                                  duration_frames)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    &[
                        &s.id,
                        &(position as i64),
                        &entry.media,
                        &entry.version_id,
                        &t.map(|t| i64::from(t.fps_num)),
                        &t.map(|t| i64::from(t.fps_den)),
                        &t.map(|t| t.drop_frame),
                        &t.map(|t| t.start_timecode.as_str()),
                        &t.map(|t| t.duration_frames),
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
                "UPDATE links SET revoked = TRUE WHERE id = $1 AND session_id = $2",
                &[link_id, session_id],
            )?;
        }
        Write::LastFrame { session_id, frame } => {
            db.execute(
                "UPDATE sessions SET last_frame = $1 WHERE id = $2",
                &[frame, session_id],
            )?;
        }
        Write::RoomFrame(row) => {
            db.execute(
                "INSERT INTO personal_rooms (session_id, room, link_id, entry, frame)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (session_id, room)
                 DO UPDATE SET link_id = excluded.link_id, entry = excluded.entry,
                               frame = excluded.frame",
                &[
                    &row.session_id,
                    &row.room,
                    &row.link_id,
                    &row.entry,
                    &row.frame,
                ],
            )?;
        }
        Write::RoomClosed { session_id, room } => {
            db.execute(
                "DELETE FROM personal_rooms WHERE session_id = $1 AND room = $2",
                &[session_id, room],
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
                "UPDATE sessions SET entry = $1, version_id = $2, fps_num = $3, fps_den = $4,
                        drop_frame = $5, start_timecode = $6, duration_frames = $7,
                        last_frame = 0
                 WHERE id = $8",
                &[
                    entry,
                    version_id,
                    &i64::from(*fps_num),
                    &i64::from(*fps_den),
                    drop_frame,
                    start_timecode,
                    duration_frames,
                    session_id,
                ],
            )?;
        }
        Write::End { session_id, at } => {
            db.execute(
                "UPDATE sessions SET ended_at = $1 WHERE id = $2 AND ended_at IS NULL",
                &[at, session_id],
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
                 VALUES ($1, $2, $3, $4)
                 ON CONFLICT (path) DO UPDATE SET size_bytes = $2, mtime_ns = $3, checksum = $4",
                &[path, size_bytes, mtime_ns, checksum],
            )?;
        }
        Write::Delete {
            session_id,
            at,
            purge,
        } => {
            db.execute(
                "UPDATE sessions SET deleted_at = $1, ended_at = COALESCE(ended_at, $1)
                 WHERE id = $2",
                &[at, session_id],
            )?;
            db.execute(
                "UPDATE links SET revoked = TRUE WHERE session_id = $1",
                &[session_id],
            )?;
            if *purge {
                // Replies before the notes they answer; nothing else points
                // at these rows.
                for sql in [
                    "DELETE FROM notes WHERE session_id = $1 AND parent_id IS NOT NULL",
                    "DELETE FROM notes WHERE session_id = $1",
                    "DELETE FROM drawings WHERE session_id = $1",
                    "DELETE FROM approvals WHERE session_id = $1",
                    "DELETE FROM session_entries WHERE session_id = $1",
                    "DELETE FROM links WHERE session_id = $1",
                    "DELETE FROM events WHERE session_id = $1",
                    "DELETE FROM personal_rooms WHERE session_id = $1",
                ] {
                    db.execute(sql, &[session_id])?;
                }
                db.execute(
                    "UPDATE sessions SET title = '', media = NULL, version_id = NULL WHERE id = $1",
                    &[session_id],
                )?;
            }
            let detail = if *purge {
                "by the operator; its record was purged"
            } else {
                "by the operator; its record is kept"
            };
            db.execute(
                "INSERT INTO events (session_id, at, kind, detail) VALUES ($1, $2, 'deleted', $3)",
                &[session_id, at, &detail],
            )?;
        }
        Write::Event {
            session_id,
            at,
            kind,
            detail,
        } => {
            db.execute(
                "INSERT INTO events (session_id, at, kind, detail) VALUES ($1, $2, $3, $4)",
                &[session_id, at, kind, detail],
            )?;
        }
        Write::Outbox {
            delivery,
            event,
            body,
            urls,
            due_at,
        } => {
            for url in urls {
                db.execute(
                    "INSERT INTO webhook_outbox (delivery, url, event, body, due_at)
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT (delivery, url) DO NOTHING",
                    &[delivery, url, event, body, due_at],
                )?;
            }
        }
        Write::Attempt {
            outbox_id,
            attempt: a,
            next_due_at,
        } => {
            db.execute(
                "INSERT INTO webhook_deliveries (delivery, url, event, attempt, status, error, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &a.delivery,
                    &a.url,
                    &a.event,
                    &i64::from(a.attempt),
                    &a.status.map(i32::from),
                    &a.error,
                    &a.at,
                ],
            )?;
            db.execute(
                "UPDATE webhook_outbox SET attempts = $1, claimed_by = NULL, claimed_until = NULL,
                        due_at = COALESCE($2, due_at),
                        finished_at = CASE WHEN $2::BIGINT IS NULL THEN $3::BIGINT ELSE NULL END
                 WHERE id = $4",
                &[&i64::from(a.attempt), next_due_at, &a.at, outbox_id],
            )?;
        }
    }
    Ok(())
}

fn insert_link(db: &mut impl GenericClient, link: &LinkRow) -> Result<(), StoreError> {
    db.execute(
        "INSERT INTO links (id, session_id, role, token_hash, expires_at, revoked, passcode_hash)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &link.id,
            &link.session_id,
            &link.role,
            &&link.token_hash[..],
            &link.expires_at,
            &link.revoked,
            &link.passcode_hash,
        ],
    )?;
    Ok(())
}

fn apply_record(db: &mut impl GenericClient, record: &Record) -> RecordResult {
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
                "UPDATE notes SET resolved_by = $1, resolved_at = $2 WHERE id = $3 AND session_id = $4",
                &[
                    &resolved.as_ref().map(|m| &m.by),
                    &resolved.as_ref().map(|m| m.at),
                    note_id,
                    session_id,
                ],
            )?;
            let row = db.query_one(
                &format!("SELECT {NOTE_COLUMNS} FROM notes WHERE id = $1"),
                &[note_id],
            )?;
            Ok((Recorded::Note(note_row(&row)?), true))
        }
        Record::Drawing(drawing) => {
            let existing = db.query_opt(
                &format!(
                    "SELECT {DRAWING_COLUMNS} FROM drawings
                     WHERE session_id = $1 AND author_link = $2 AND client_key = $3"
                ),
                &[
                    &drawing.session_id,
                    &drawing.author_link,
                    &drawing.client_key,
                ],
            )?;
            if let Some(row) = existing {
                let row = drawing_row(&row)?;
                if !same_drawing(&row.drawing, drawing) {
                    return Err(StoreError::KeyConflict(
                        drawing.client_key.clone(),
                        "drawing",
                    ));
                }
                return Ok((Recorded::Drawing(row), false));
            }
            let id: i64 = db
                .query_one(
                    "INSERT INTO drawings (session_id, version_id, client_key, frame, tool, colour,
                                           width, points, author, author_role, created_at,
                                           author_link)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
                    &[
                        &drawing.session_id,
                        &drawing.version_id,
                        &drawing.client_key,
                        &drawing.frame,
                        &drawing.shape.tool.name(),
                        &drawing.shape.colour.to_string(),
                        &f64::from(drawing.shape.width),
                        &encode_points(&drawing.shape.points),
                        &drawing.author,
                        &drawing.author_role,
                        &drawing.created_at,
                        &drawing.author_link,
                    ],
                )?
                .try_get(0)?;
            let row = DrawingRow {
                id,
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
                "UPDATE drawings SET erased_by = $1, erased_at = $2
                 WHERE id = $3 AND session_id = $4 AND erased_at IS NULL",
                &[&mark.by, &mark.at, drawing_id, session_id],
            )?;
            let row = db.query_one(
                &format!("SELECT {DRAWING_COLUMNS} FROM drawings WHERE id = $1"),
                &[drawing_id],
            )?;
            Ok((Recorded::Drawing(drawing_row(&row)?), changed > 0))
        }
        Record::Approval(approval) => {
            let existing = db.query_opt(
                &format!(
                    "SELECT {APPROVAL_COLUMNS} FROM approvals
                     WHERE session_id = $1 AND author_link = $2 AND client_key = $3"
                ),
                &[
                    &approval.session_id,
                    &approval.author_link,
                    &approval.client_key,
                ],
            )?;
            if let Some(row) = existing {
                let row = approval_row(&row)?;
                if !same_approval(&row.approval, approval) {
                    return Err(StoreError::KeyConflict(
                        approval.client_key.clone(),
                        "decision",
                    ));
                }
                return Ok((Recorded::Approval(row), false));
            }
            let receipt = &approval.receipt;
            let id: i64 = db
                .query_one(
                    "INSERT INTO approvals (session_id, version_id, client_key, status, author,
                                            author_role, created_at, frames_seen, frame_count,
                                            stream, stream_bytes, stream_kbps, checksum,
                                            author_link)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
                     RETURNING id",
                    &[
                        &approval.session_id,
                        &approval.version_id,
                        &approval.client_key,
                        &approval.status,
                        &approval.author,
                        &approval.author_role,
                        &approval.created_at,
                        &ranges_text(&receipt.frames),
                        &receipt.frame_count,
                        &receipt.stream,
                        &receipt.stream_bytes,
                        &receipt.stream_kbps,
                        &receipt.checksum,
                        &approval.author_link,
                    ],
                )?
                .try_get(0)?;
            let row = ApprovalRow {
                id,
                approval: approval.clone(),
            };
            Ok((Recorded::Approval(row), true))
        }
        Record::Version(version) => {
            let (row, new) = insert_version(db, version)?;
            Ok((Recorded::Version(row), new))
        }
        Record::ClaimDeliveries {
            node,
            now,
            until,
            limit,
        } => {
            // Row locks, skipped when another node's claim holds them:
            // two claims at once get disjoint rows, neither waits.
            let rows = db.query(
                "UPDATE webhook_outbox SET claimed_by = $1, claimed_until = $2
                 WHERE id IN (SELECT id FROM webhook_outbox
                              WHERE finished_at IS NULL AND due_at <= $3
                                AND (claimed_until IS NULL OR claimed_until <= $3)
                              ORDER BY due_at, id LIMIT $4
                              FOR UPDATE SKIP LOCKED)
                 RETURNING id, delivery, url, event, body, attempts",
                &[node, until, now, &i64::from(*limit)],
            )?;
            let mut claimed = rows
                .iter()
                .map(|r| {
                    Ok(OutboxRow {
                        id: r.try_get(0)?,
                        delivery: r.try_get(1)?,
                        url: r.try_get(2)?,
                        event: r.try_get(3)?,
                        body: r.try_get(4)?,
                        attempts: u32_of(r.try_get(5)?)?,
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            claimed.sort_by_key(|r| r.id);
            Ok((Recorded::Claimed(claimed), true))
        }
    }
}

fn insert_version(
    db: &mut impl GenericClient,
    version: &NewVersion,
) -> Result<(VersionRow, bool), StoreError> {
    let item_id: String = match db.query_opt(
        "SELECT id FROM media_items WHERE name = $1",
        &[&version.item],
    )? {
        Some(row) => row.try_get(0)?,
        None => {
            let id = crate::links::random_id();
            db.execute(
                "INSERT INTO media_items (id, name, created_at) VALUES ($1, $2, $3)",
                &[&id, &version.item, &version.created_at],
            )?;
            id
        }
    };
    let same = db.query_opt(
        &format!("{VERSION_SELECT} WHERE v.media_item_id = $1 AND v.checksum = $2"),
        &[&item_id, &version.checksum],
    )?;
    if let Some(row) = same {
        return Ok((version_row(&row)?, false));
    }
    let number: i64 = db
        .query_one(
            "SELECT COALESCE(MAX(number), 0) + 1 FROM versions WHERE media_item_id = $1",
            &[&item_id],
        )?
        .try_get(0)?;
    let id = crate::links::random_id();
    db.execute(
        "INSERT INTO versions (id, media_item_id, number, path, checksum, size_bytes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        &[
            &id,
            &item_id,
            &number,
            &version.path,
            &version.checksum,
            &version.size_bytes,
            &version.created_at,
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

fn insert_note(db: &mut impl GenericClient, note: &NewNote) -> Result<(NoteRow, bool), StoreError> {
    let existing = db.query_opt(
        &format!(
            "SELECT {NOTE_COLUMNS} FROM notes
             WHERE session_id = $1 AND author_link = $2 AND client_key = $3"
        ),
        &[&note.session_id, &note.author_link, &note.client_key],
    )?;
    if let Some(row) = existing {
        let row = note_row(&row)?;
        if !same_note(&row.note, note) {
            return Err(StoreError::KeyConflict(note.client_key.clone(), "note"));
        }
        return Ok((row, false));
    }
    let id: i64 = db
        .query_one(
            "INSERT INTO notes (session_id, client_key, frame, frame_out, text, author,
                                author_role, created_at, version_id, parent_id, author_link)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id",
            &[
                &note.session_id,
                &note.client_key,
                &note.frame,
                &note.frame_out,
                &note.text,
                &note.author,
                &note.author_role,
                &note.created_at,
                &note.version_id,
                &note.parent_id,
                &note.author_link,
            ],
        )?
        .try_get(0)?;
    Ok((
        NoteRow {
            id,
            note: note.clone(),
            resolved: None,
        },
        true,
    ))
}
