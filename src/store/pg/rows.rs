//! Rows as PostgreSQL returns them, into the record's types.

use postgres::{GenericClient, Row};

use super::u32_of;
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

pub(super) fn session_row(r: &Row) -> Result<SessionRow, StoreError> {
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
        moving: moving(r.try_get(14)?, r.try_get(15)?, r.try_get(16)?),
    })
}

pub(super) fn note_row(r: &Row) -> Result<NoteRow, StoreError> {
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

pub(super) fn drawing_row(r: &Row) -> Result<DrawingRow, StoreError> {
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

pub(super) fn approval_row(r: &Row) -> Result<ApprovalRow, StoreError> {
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

pub(super) fn version_row(r: &Row) -> Result<VersionRow, StoreError> {
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

pub(super) fn link_row(r: &Row) -> Result<LinkRow, StoreError> {
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

pub(super) fn all<T>(
    rows: Vec<Row>,
    row: fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    rows.iter().map(row).collect()
}

pub(super) fn entries(
    db: &mut impl GenericClient,
    session_id: &str,
) -> Result<Vec<EntryRow>, StoreError> {
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
