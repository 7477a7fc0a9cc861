//! The review record in SQLite (`rusqlite`, bundled): the embedded
//! default, one file in the data directory.
//!
//! `synchronous = FULL`: a write is on disk before its outcome is sent, so
//! an acknowledged note survives `kill -9` and power loss alike. WAL lets
//! the read connection run beside the writer.
//!
//! The schema is versioned by `PRAGMA user_version`; [`MIGRATIONS`] only
//! grows, and each step runs once, in a transaction.

use std::path::Path;
use std::sync::{mpsc, Arc, Mutex, MutexGuard};

use rusqlite::Connection;

use super::{fail_all, report, write_loop, Job, Outcome, StoreError};

mod read;
mod rows;
mod schema;
mod write;

use schema::MIGRATIONS;

/// The read side: a second connection beside the writer.
#[derive(Clone)]
pub(in crate::store) struct Reader(Arc<Mutex<Connection>>);

impl Reader {
    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.0.lock().expect("reader lock")
    }
}

/// Opens (creating and migrating as needed) the record at `path` and
/// starts its writer thread.
pub(in crate::store) fn open(
    path: &Path,
    queue: usize,
) -> Result<(mpsc::SyncSender<Job>, Reader), StoreError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Database(e.to_string()))?;
    }
    let mut writer = Connection::open(path)?;
    configure(&writer)?;
    migrate(&mut writer)?;
    let reader = Connection::open(path)?;
    configure(&reader)?;
    let (jobs, waiting) = mpsc::sync_channel(queue);
    std::thread::Builder::new()
        .name("syncreel-store".into())
        .spawn(move || write_loop(waiting, |batch| commit_batch(&mut writer, batch)))
        .map_err(|e| StoreError::Database(e.to_string()))?;
    Ok((jobs, Reader(Arc::new(Mutex::new(reader)))))
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> StoreError {
        StoreError::Database(err.to_string())
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
        return Err(StoreError::Database(format!(
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
            Job::Plain(write, fence, reply) => Outcome::Plain(
                reply,
                in_savepoint(&tx, |db| {
                    write::check_fence(db, fence.as_ref())?;
                    write::apply(db, &write)
                }),
            ),
            Job::Record(record, fence, reply) => Outcome::Record(
                reply,
                Box::new(in_savepoint(&tx, |db| {
                    write::check_fence(db, fence.as_ref())?;
                    write::apply_record(db, &record)
                })),
            ),
        };
        if tx.is_autocommit() {
            rolled_back = Some(
                outcome
                    .error()
                    .unwrap_or_else(|| StoreError::Database("the batch was rolled back".into())),
            );
        }
        outcomes.push(outcome);
    }
    let committed = match rolled_back {
        Some(err) => Err(err),
        None => tx.commit().map_err(StoreError::from),
    };
    report(outcomes, committed);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{LinkRow, NewNote, PersonalRoomRow, Record, SessionRow, Store, Write};
    use rusqlite::params;
    use std::collections::BTreeSet;
    use tokio::sync::oneshot;

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
            moving: None,
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

    #[test]
    fn when_the_record_is_full_exactly_the_acknowledged_writes_are_on_disk() {
        let path = std::env::temp_dir().join(format!("syncreel-full-{}.db", rand::random::<u64>()));
        let mut db = Connection::open(&path).unwrap();
        configure(&db).unwrap();
        migrate(&mut db).unwrap();
        commit_batch(
            &mut db,
            vec![Job::Plain(
                Write::Session(session("s1"), vec![]),
                None,
                None,
            )],
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
                None,
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
            vec![Job::Record(Record::Note(note("after", 1)), None, tx)],
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
                    moving: None,
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
        let crate::store::Reader::Sqlite(reader) = &store.reader else {
            panic!("a file opens as SQLite")
        };
        let version: i64 = reader
            .lock()
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
