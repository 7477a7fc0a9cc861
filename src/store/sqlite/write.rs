//! The writes, each inside its batch's savepoint.

use rusqlite::{params, Connection, OptionalExtension};

use super::rows::*;
use crate::drawing::encode_points;
use crate::store::{
    ranges_text, same_approval, same_drawing, same_note, ApprovalRow, DrawingRow, EntryRow, Fence,
    LinkRow, NewNote, NewVersion, NoteRow, OutboxRow, Record, RecordResult, Recorded, StoreError,
    VersionRow, Write,
};

/// Raises the session's fence to this write's token, or refuses the
/// write if a newer owner's token is already there.
pub(super) fn check_fence(db: &Connection, fence: Option<&Fence>) -> Result<(), StoreError> {
    let Some(fence) = fence else { return Ok(()) };
    let token = fence.stored_token()?;
    let highest: i64 = db.query_row(
        "INSERT INTO session_fences (session_id, token) VALUES (?1, ?2)
         ON CONFLICT (session_id) DO UPDATE SET token = MAX(token, excluded.token)
         RETURNING token",
        params![fence.session_id, token],
        |row| row.get(0),
    )?;
    if highest > token {
        return Err(StoreError::Fenced(fence.session_id.clone()));
    }
    Ok(())
}

pub(super) fn apply(db: &Connection, write: &Write) -> Result<(), StoreError> {
    match write {
        Write::Fence => {}
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
            insert_entries(db, &s.id, &s.playlist)?;
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
        Write::LastFrame {
            session_id,
            frame,
            moving,
        } => {
            db.execute(
                "UPDATE sessions SET last_frame = ?1, moving_since = ?2, moving_speed_num = ?3,
                 moving_speed_den = ?4 WHERE id = ?5",
                params![
                    frame,
                    moving.map(|m| m.since_unix_ms),
                    moving.map(|m| m.speed_num),
                    moving.map(|m| m.speed_den),
                    session_id
                ],
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
            frame,
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
                        last_frame = ?9
                 WHERE id = ?8",
                params![
                    entry,
                    version_id,
                    fps_num,
                    fps_den,
                    drop_frame,
                    start_timecode,
                    duration_frames,
                    session_id,
                    frame
                ],
            )?;
        }
        Write::Playlist {
            session_id,
            entries,
        } => {
            db.execute(
                "DELETE FROM session_entries WHERE session_id = ?1",
                params![session_id],
            )?;
            insert_entries(db, session_id, entries)?;
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
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (delivery, url) DO NOTHING",
                    params![delivery, url, event, body, due_at],
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
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![a.delivery, a.url, a.event, a.attempt, a.status, a.error, a.at],
            )?;
            db.execute(
                "UPDATE webhook_outbox SET attempts = ?1, claimed_by = NULL, claimed_until = NULL,
                        due_at = COALESCE(?2, due_at),
                        finished_at = CASE WHEN ?2 IS NULL THEN ?3 ELSE NULL END
                 WHERE id = ?4",
                params![a.attempt, next_due_at, a.at, outbox_id],
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

pub(super) fn apply_record(db: &Connection, record: &Record) -> RecordResult {
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
                if !same_drawing(&row.drawing, drawing) {
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
                if !same_approval(&row.approval, approval) {
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
        Record::ClaimDeliveries {
            node,
            now,
            until,
            limit,
        } => {
            // One writer: the select and the update cannot interleave with
            // another claim on this file.
            let mut stmt = db.prepare(
                "UPDATE webhook_outbox SET claimed_by = ?1, claimed_until = ?2
                 WHERE id IN (SELECT id FROM webhook_outbox
                              WHERE finished_at IS NULL AND due_at <= ?3
                                AND (claimed_until IS NULL OR claimed_until <= ?3)
                              ORDER BY due_at, id LIMIT ?4)
                 RETURNING id, delivery, url, event, body, attempts",
            )?;
            let rows = stmt.query_map(params![node, until, now, limit], |r| {
                Ok(OutboxRow {
                    id: r.get(0)?,
                    delivery: r.get(1)?,
                    url: r.get(2)?,
                    event: r.get(3)?,
                    body: r.get(4)?,
                    attempts: r.get(5)?,
                })
            })?;
            let mut claimed: Vec<OutboxRow> = rows.collect::<Result<_, _>>()?;
            claimed.sort_by_key(|r| r.id);
            Ok((Recorded::Claimed(claimed), true))
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
        if !same_note(&row.note, note) {
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

/// A session's playlist entries, in order.
fn insert_entries(
    db: &Connection,
    session_id: &str,
    entries: &[EntryRow],
) -> Result<(), StoreError> {
    for (position, entry) in entries.iter().enumerate() {
        let t = entry.timeline.as_ref();
        db.execute(
            "INSERT INTO session_entries (session_id, position, media, version_id,
                                          fps_num, fps_den, drop_frame, start_timecode,
                                          duration_frames)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                session_id,
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
    Ok(())
}
