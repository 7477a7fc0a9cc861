//! The read side: every read is a closure run on the reader thread.

use std::sync::mpsc;

use postgres::{Client, Row};

use super::rows::*;
use super::{u32_of, Connection, Reader};
use crate::store::{
    ApprovalRow, DeliveryRow, DrawingRow, EntryRow, LinkRow, NoteRow, PersonalRoomRow, SessionRow,
    StoreError, VersionRow,
};

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

    pub(in crate::store) fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
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

    pub(in crate::store) fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
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

    pub(in crate::store) fn media_of_version(
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

    pub(in crate::store) fn known_checksum(
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

    pub(in crate::store) fn entries_of(
        &self,
        session_id: &str,
    ) -> Result<Vec<EntryRow>, StoreError> {
        let session_id = session_id.to_string();
        self.read(move |db| entries(db, &session_id))
    }

    pub(in crate::store) fn link_by_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<LinkRow>, StoreError> {
        let token_hash = *token_hash;
        self.read(move |db| {
            db.query_opt(
                "SELECT id, session_id, role, token_hash, expires_at, revoked, passcode_hash
                 FROM links WHERE token_hash = $1",
                &[&&token_hash[..]],
            )?
            .as_ref()
            .map(link_row)
            .transpose()
        })
    }

    pub(in crate::store) fn links(&self) -> Result<Vec<LinkRow>, StoreError> {
        self.read(|db| {
            let rows = db.query(
                "SELECT id, session_id, role, token_hash, expires_at, revoked, passcode_hash
                 FROM links ORDER BY seq",
                &[],
            )?;
            all(rows, link_row)
        })
    }

    pub(in crate::store) fn personal_rooms(
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

    pub(in crate::store) fn notes(&self, session_id: &str) -> Result<Vec<NoteRow>, StoreError> {
        self.list(session_id, NOTE_COLUMNS, "notes", note_row)
    }

    pub(in crate::store) fn drawings(
        &self,
        session_id: &str,
    ) -> Result<Vec<DrawingRow>, StoreError> {
        self.list(session_id, DRAWING_COLUMNS, "drawings", drawing_row)
    }

    pub(in crate::store) fn approvals(
        &self,
        session_id: &str,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
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

    pub(in crate::store) fn version(&self, id: &str) -> Result<Option<VersionRow>, StoreError> {
        let id = id.to_string();
        self.read(move |db| {
            db.query_opt(&format!("{VERSION_SELECT} WHERE v.id = $1"), &[&id])?
                .as_ref()
                .map(version_row)
                .transpose()
        })
    }

    pub(in crate::store) fn version_with_checksum(
        &self,
        checksum: &str,
    ) -> Result<Option<VersionRow>, StoreError> {
        let checksum = checksum.to_string();
        self.read(move |db| {
            db.query_opt(
                &format!(
                    "{VERSION_SELECT} WHERE v.checksum = $1 ORDER BY v.created_at, v.id LIMIT 1"
                ),
                &[&checksum],
            )?
            .as_ref()
            .map(version_row)
            .transpose()
        })
    }

    pub(in crate::store) fn versions(&self) -> Result<Vec<VersionRow>, StoreError> {
        self.read(|db| {
            let rows = db.query(&format!("{VERSION_SELECT} ORDER BY m.name, v.number"), &[])?;
            all(rows, version_row)
        })
    }

    pub(in crate::store) fn deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
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

    pub(in crate::store) fn events(
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
