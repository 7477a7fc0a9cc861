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

use std::collections::HashMap;
use std::sync::mpsc;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use super::{fail_all, report, write_loop, Job, Outcome, StoreError};

mod read;
mod rows;
mod schema;
mod write;

use schema::MIGRATIONS;

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
    /// The writer's statements, prepared once per connection.
    statements: HashMap<String, Statement>,
}

impl Connection {
    fn new(url: &str) -> Connection {
        Connection {
            url: url.to_string(),
            client: None,
            statements: HashMap::new(),
        }
    }

    fn get(&mut self) -> Result<&mut Client, StoreError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.statements.clear();
            self.client = Some(Client::connect(&self.url, NoTls)?);
        }
        Ok(self.client.as_mut().expect("connected just now"))
    }
}

/// A transaction that prepares each statement once per connection: the
/// writer's statements are few and hot, and one sent as text is parsed
/// and described in a round trip of its own every time (a note would
/// cost six round trips instead of four).
pub(super) struct Cached<'a, 't> {
    tx: &'a mut postgres::Transaction<'t>,
    statements: &'a mut HashMap<String, Statement>,
}

type Params<'p> = &'p [&'p (dyn ToSql + Sync)];

impl Cached<'_, '_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_string(), statement.clone());
        Ok(statement)
    }

    pub(super) fn execute(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<u64, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.execute(&statement, params)
    }

    pub(super) fn query(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query(&statement, params)
    }

    pub(super) fn query_opt(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<Row>, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_opt(&statement, params)
    }

    pub(super) fn query_one(
        &mut self,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Row, postgres::Error> {
        let statement = self.statement(sql)?;
        self.tx.query_one(&statement, params)
    }
}

type ReadJob = Box<dyn FnOnce(&mut Connection) + Send>;

/// The read side: a thread with its own connection, asked with closures.
#[derive(Clone)]
pub(in crate::store) struct Reader {
    requests: mpsc::Sender<ReadJob>,
}

/// Connects, migrates, and starts the writer and reader threads.
pub(in crate::store) fn start(
    url: &str,
    queue: usize,
) -> Result<(mpsc::SyncSender<Job>, Reader), StoreError> {
    let connect = || -> Result<(Connection, Connection), StoreError> {
        let mut writer = Connection::new(url);
        migrate(writer.get()?)?;
        let mut reader = Connection::new(url);
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
    if let Err(err) = db.get() {
        return fail_all(batch, err);
    }
    let statements = &mut db.statements;
    let client = db.client.as_mut().expect("connected just now");
    let mut tx = match client.transaction() {
        Ok(tx) => tx,
        Err(err) => return fail_all(batch, err.into()),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    // A lost connection fails every statement after it; what was tried
    // before is lost with the transaction, so the commit reports it.
    for job in batch {
        let outcome = match job {
            Job::Plain(write, fence, reply) => Outcome::Plain(
                reply,
                in_savepoint(&mut tx, statements, |db| {
                    write::check_fence(db, fence.as_ref())?;
                    write::apply(db, &write)
                }),
            ),
            Job::Record(record, fence, reply) => Outcome::Record(
                reply,
                Box::new(in_savepoint(&mut tx, statements, |db| {
                    write::check_fence(db, fence.as_ref())?;
                    write::apply_record(db, &record)
                })),
            ),
        };
        outcomes.push(outcome);
    }
    report(outcomes, tx.commit().map_err(StoreError::from));
}

fn in_savepoint<T>(
    tx: &mut postgres::Transaction<'_>,
    statements: &mut HashMap<String, Statement>,
    f: impl FnOnce(&mut Cached<'_, '_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // A failed statement spoils the whole transaction in PostgreSQL; the
    // savepoint's rollback (on drop) takes the batch back to before it.
    // (Prepared statements are not transactional: a rollback keeps them.)
    let mut one = tx.savepoint("one")?;
    let value = f(&mut Cached {
        tx: &mut one,
        statements,
    })?;
    one.commit()?;
    Ok(value)
}

pub(super) fn u32_of(value: i64) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| StoreError::Database(format!("{value} is out of range")))
}
