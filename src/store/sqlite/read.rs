//! The read side, on the read connection.

use rusqlite::{params, OptionalExtension};

use super::rows::*;
use super::Reader;
use crate::store::{
    ApprovalRow, DeliveryRow, DrawingRow, EntryRow, LinkRow, NoteRow, PersonalRoomRow, SessionRow,
    StoreError, VersionRow,
};

impl Reader {
    pub(in crate::store) fn sessions(&self) -> Result<Vec<SessionRow>, StoreError> {
        let db = self.lock();
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

    pub(in crate::store) fn session(&self, id: &str) -> Result<Option<SessionRow>, StoreError> {
        let db = self.lock();
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

    pub(in crate::store) fn media_of_version(
        &self,
        session_id: &str,
        checksum: &str,
    ) -> Result<Option<String>, StoreError> {
        let db = self.lock();
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

    pub(in crate::store) fn known_checksum(
        &self,
        path: &str,
        size_bytes: i64,
        mtime_ns: i64,
    ) -> Result<Option<String>, StoreError> {
        let db = self.lock();
        Ok(db
            .query_row(
                "SELECT checksum FROM media_checksums
                 WHERE path = ?1 AND size_bytes = ?2 AND mtime_ns = ?3",
                params![path, size_bytes, mtime_ns],
                |r| r.get(0),
            )
            .optional()?)
    }

    pub(in crate::store) fn link_by_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> Result<Option<LinkRow>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                "SELECT id, session_id, role, token_hash, expires_at, revoked, passcode_hash
                 FROM links WHERE token_hash = ?1",
                params![&token_hash[..]],
                link_row,
            )
            .optional()?)
    }

    pub(in crate::store) fn links(&self) -> Result<Vec<LinkRow>, StoreError> {
        let db = self.lock();
        let mut stmt = db.prepare(
            "SELECT id, session_id, role, token_hash, expires_at, revoked, passcode_hash
             FROM links ORDER BY rowid",
        )?;
        let rows = stmt.query_map([], link_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(in crate::store) fn personal_rooms(
        &self,
        session_id: &str,
    ) -> Result<Vec<PersonalRoomRow>, StoreError> {
        let db = self.lock();
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

    pub(in crate::store) fn notes(&self, session_id: &str) -> Result<Vec<NoteRow>, StoreError> {
        let db = self.lock();
        let mut stmt = db.prepare(&format!(
            "SELECT {NOTE_COLUMNS} FROM notes WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![session_id], note_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(in crate::store) fn drawings(
        &self,
        session_id: &str,
    ) -> Result<Vec<DrawingRow>, StoreError> {
        let db = self.lock();
        let mut stmt = db.prepare(&format!(
            "SELECT {DRAWING_COLUMNS} FROM drawings WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![session_id], drawing_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(in crate::store) fn approvals(
        &self,
        session_id: &str,
    ) -> Result<Vec<ApprovalRow>, StoreError> {
        let db = self.lock();
        let mut stmt = db.prepare(&format!(
            "SELECT {APPROVAL_COLUMNS} FROM approvals WHERE session_id = ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![session_id], approval_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(in crate::store) fn version(&self, id: &str) -> Result<Option<VersionRow>, StoreError> {
        let db = self.lock();
        Ok(db
            .query_row(
                &format!("{VERSION_SELECT} WHERE v.id = ?1"),
                params![id],
                version_row,
            )
            .optional()?)
    }

    pub(in crate::store) fn version_with_checksum(
        &self,
        checksum: &str,
    ) -> Result<Option<VersionRow>, StoreError> {
        Ok(self
            .lock()
            .query_row(
                &format!(
                    "{VERSION_SELECT} WHERE v.checksum = ?1 ORDER BY v.created_at, v.id LIMIT 1"
                ),
                params![checksum],
                version_row,
            )
            .optional()?)
    }

    pub(in crate::store) fn versions(&self) -> Result<Vec<VersionRow>, StoreError> {
        let db = self.lock();
        let mut stmt = db.prepare(&format!("{VERSION_SELECT} ORDER BY m.name, v.number"))?;
        let rows = stmt.query_map([], version_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(in crate::store) fn deliveries(
        &self,
        limit: usize,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let db = self.lock();
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

    pub(in crate::store) fn events(
        &self,
        session_id: &str,
    ) -> Result<Vec<(i64, String, String)>, StoreError> {
        let db = self.lock();
        let mut stmt =
            db.prepare("SELECT at, kind, detail FROM events WHERE session_id = ?1 ORDER BY id")?;
        let rows = stmt.query_map(params![session_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub(in crate::store) fn entries_of(
        &self,
        session_id: &str,
    ) -> Result<Vec<EntryRow>, StoreError> {
        entries(&self.lock(), session_id)
    }
}
