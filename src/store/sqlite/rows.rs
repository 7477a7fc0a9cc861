//! Rows as SQLite returns them, into the record's types.

use rusqlite::{params, Connection};

use crate::store::{
    mark, moving, parse_ranges, shape_of, ApprovalRow, DrawingRow, EntryRow, LinkRow, NewApproval,
    NewDrawing, NewNote, NoteRow, Receipt, SessionRow, StoreError, TimelineRow, VersionRow,
};

pub(super) const SESSION_COLUMNS: &str =
    "id, title, fps_num, fps_den, drop_frame, start_timecode, \
     duration_frames, media, created_at, last_frame, version_id, ended_at, entry, watermark, \
     moving_since, moving_speed_num, moving_speed_den";

pub(super) const NOTE_COLUMNS: &str =
    "id, session_id, client_key, frame, frame_out, text, author, \
     author_role, created_at, version_id, parent_id, resolved_by, resolved_at, author_link";

pub(super) const DRAWING_COLUMNS: &str =
    "id, session_id, version_id, client_key, frame, tool, colour, \
     width, points, author, author_role, created_at, erased_by, erased_at, author_link";

pub(super) const APPROVAL_COLUMNS: &str =
    "id, session_id, version_id, client_key, status, author, \
     author_role, created_at, frames_seen, frame_count, stream, stream_bytes, stream_kbps, \
     checksum, author_link";

pub(super) const VERSION_SELECT: &str = "SELECT v.id, v.media_item_id, m.name, v.number, v.path, \
     v.checksum, v.size_bytes, v.created_at FROM versions v JOIN media_items m ON m.id = v.media_item_id";

pub(super) fn session_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SessionRow> {
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
        moving: moving(r.get(14)?, r.get(15)?, r.get(16)?),
    })
}

pub(super) fn note_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<NoteRow> {
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

pub(super) fn drawing_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DrawingRow> {
    let tool: String = r.get(5)?;
    let colour: String = r.get(6)?;
    let points: Vec<u8> = r.get(8)?;
    let shape = shape_of(&tool, &colour, r.get(7)?, &points);
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

pub(super) fn approval_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ApprovalRow> {
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

pub(super) fn version_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
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

/// A session's playlist entries, in order.
pub(super) fn entries(db: &Connection, session_id: &str) -> Result<Vec<EntryRow>, StoreError> {
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

pub(super) fn link_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<LinkRow> {
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
}
