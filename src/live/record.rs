//! What participants add to the review record from a live session: notes,
//! replies, resolutions, drawings, erasures and approvals.
//!
//! Each arrives as a [`Draft`] with the author's own key, is checked here
//! against what the session knows, becomes a [`Record`] for the store,
//! and is shown to the room only once committed ([`SessionReview::apply`]).

use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;

use crate::clock::Timeline;
use crate::drawing::Shape;
use crate::protocol::{
    ErrorCode, ServerMessage, WireApproval, WireApprovalStatus, WireDrawing, WireNote, WireReceipt,
    WireVersion,
};
use crate::session::Role;
use crate::store::{
    ApprovalRow, DrawingRow, Mark, NewApproval, NewDrawing, NewNote, NoteRow, Receipt, Record,
    Recorded,
};

use super::{role_from_name, role_name, unix_millis};

/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 4000;
/// The longest client key.
pub(super) const MAX_KEY: usize = 64;

/// A change as its author sent it.
#[derive(Debug, Clone, PartialEq)]
pub enum Draft {
    Note {
        key: String,
        frame: i64,
        frame_out: Option<i64>,
        text: String,
        /// The version it is about, while the room compares.
        version: Option<String>,
    },
    Reply {
        key: String,
        parent: i64,
        text: String,
    },
    Resolve {
        key: String,
        note: i64,
        resolved: bool,
    },
    Drawing {
        key: String,
        frame: i64,
        tool: String,
        colour: String,
        width: f32,
        points: Vec<[f32; 2]>,
        /// The version drawn on, while the room compares.
        version: Option<String>,
    },
    Erase {
        key: String,
        drawing: i64,
    },
    Approve {
        key: String,
        status: WireApprovalStatus,
        version: Option<String>,
    },
}

/// Which acknowledgement and refusal messages a draft is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Note,
    Drawing,
    Approval,
}

impl Kind {
    pub fn refused(self, key: String, code: ErrorCode, message: String) -> ServerMessage {
        match self {
            Kind::Note => ServerMessage::NoteRefused { key, code, message },
            Kind::Drawing => ServerMessage::DrawingRefused { key, code, message },
            Kind::Approval => ServerMessage::ApprovalRefused { key, code, message },
        }
    }
}

impl Draft {
    pub fn key(&self) -> &str {
        match self {
            Draft::Note { key, .. }
            | Draft::Reply { key, .. }
            | Draft::Resolve { key, .. }
            | Draft::Drawing { key, .. }
            | Draft::Erase { key, .. }
            | Draft::Approve { key, .. } => key,
        }
    }

    /// The version a note or drawing names (the half of a compare it was
    /// made on); `None` for the version on screen.
    pub fn pointed(&self) -> Option<&str> {
        match self {
            Draft::Note { version, .. } | Draft::Drawing { version, .. } => version.as_deref(),
            _ => None,
        }
    }

    pub fn kind(&self) -> Kind {
        match self {
            Draft::Note { .. } | Draft::Reply { .. } | Draft::Resolve { .. } => Kind::Note,
            Draft::Drawing { .. } | Draft::Erase { .. } => Kind::Drawing,
            Draft::Approve { .. } => Kind::Approval,
        }
    }
}

/// What a committed record did to the session's review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happened {
    NoteCreated,
    NoteResolved,
    NoteReopened,
    Drawn,
    Erased,
    Decided,
}

/// Who is writing, and what the session knows that a check needs.
pub struct Context<'a> {
    pub session_id: &'a str,
    pub version: Option<&'a WireVersion>,
    pub timeline: Timeline,
    pub role: Role,
    pub author: String,
    /// The link the author came through, which scopes their keys.
    pub link: &'a str,
}

/// Why a draft was refused.
pub type Refusal = (ErrorCode, String);

/// The session's view of its record: what late joiners are sent.
#[derive(Debug, Clone, Default)]
pub struct SessionReview {
    /// Notes and replies, in the order made.
    pub notes: Vec<WireNote>,
    /// Drawings not erased, in the order drawn.
    pub drawings: Vec<WireDrawing>,
    /// Erased drawings, so that a repeated erase is acknowledged rather
    /// than refused. Never sent in a catch-up.
    pub erased: Vec<WireDrawing>,
    /// Every decision, oldest first.
    pub approvals: Vec<WireApproval>,
    /// The catch-up serialized, once per change of the record rather than
    /// once per newcomer or resync.
    catch_up_texts: std::sync::OnceLock<Arc<[Utf8Bytes]>>,
}

impl SessionReview {
    pub fn from_rows(
        notes: &[NoteRow],
        drawings: &[DrawingRow],
        approvals: &[ApprovalRow],
    ) -> SessionReview {
        SessionReview {
            notes: notes.iter().map(wire_note).collect(),
            drawings: drawings
                .iter()
                .filter(|d| d.erased.is_none())
                .map(wire_drawing)
                .collect(),
            erased: drawings
                .iter()
                .filter(|d| d.erased.is_some())
                .map(wire_drawing)
                .collect(),
            approvals: approvals.iter().map(wire_approval).collect(),
            catch_up_texts: std::sync::OnceLock::new(),
        }
    }

    /// [`SessionReview::catch_up`] as JSON texts, shared.
    pub fn catch_up_texts(&self) -> Arc<[Utf8Bytes]> {
        self.catch_up_texts
            .get_or_init(|| {
                self.catch_up()
                    .iter()
                    .map(|m| crate::protocol::to_json(m).into())
                    .collect()
            })
            .clone()
    }

    /// Everything a newcomer or a resynced participant needs, in order:
    /// notes, drawings, approvals, each in pages of about
    /// [`CATCH_UP_PAGE_BYTES`] so that no message outgrows what a
    /// connection may buffer, however long the record.
    pub fn catch_up(&self) -> Vec<ServerMessage> {
        let mut out = Vec::new();
        for (page, more) in pages(&self.notes) {
            out.push(ServerMessage::Notes { notes: page, more });
        }
        for (page, more) in pages(&self.drawings) {
            out.push(ServerMessage::Drawings {
                drawings: page,
                more,
            });
        }
        for (page, more) in pages(&self.approvals) {
            out.push(ServerMessage::Approvals {
                approvals: page,
                more,
            });
        }
        out
    }

    /// The acknowledgement for a draft whose effect already stands (a
    /// resolve of a resolved note, an erase of an erased drawing): a
    /// resend after a lost acknowledgement changes nothing and is told so.
    pub fn already_done(&self, draft: &Draft) -> Option<ServerMessage> {
        match draft {
            Draft::Resolve {
                key,
                note,
                resolved,
            } => {
                let current = self.notes.iter().find(|n| n.id == *note)?;
                (current.resolved_at.is_some() == *resolved).then(|| ServerMessage::NoteAck {
                    key: key.clone(),
                    note: current.clone(),
                })
            }
            Draft::Erase { key, drawing } => {
                let erased = self.erased.iter().find(|d| d.id == *drawing)?;
                Some(ServerMessage::DrawingAck {
                    key: key.clone(),
                    drawing: erased.clone(),
                })
            }
            _ => None,
        }
    }

    /// Checks a draft. `receipt` is asked for only when an approval passes
    /// every other check, since it reads the stream's counters.
    pub fn check(
        &self,
        draft: Draft,
        ctx: &Context<'_>,
        receipt: impl FnOnce() -> Receipt,
    ) -> Result<Record, Refusal> {
        let kind = draft.kind();
        if ctx.role == Role::Viewer {
            let what = match kind {
                Kind::Note => "write notes",
                Kind::Drawing => "draw",
                Kind::Approval => "approve",
            };
            return Err((
                ErrorCode::Forbidden,
                format!("viewers cannot {what}; ask the host for a reviewer link"),
            ));
        }
        if draft.key().is_empty() || draft.key().len() > MAX_KEY {
            let code = match kind {
                Kind::Note => ErrorCode::BadNote,
                Kind::Drawing => ErrorCode::BadDrawing,
                Kind::Approval => ErrorCode::Malformed,
            };
            return Err((code, format!("a key is 1 to {MAX_KEY} bytes")));
        }
        let now = unix_millis();
        let note = |key: String, frame, frame_out, text: &str, parent, version_id| {
            Record::Note(NewNote {
                session_id: ctx.session_id.into(),
                version_id,
                parent_id: parent,
                client_key: key,
                author_link: ctx.link.into(),
                frame,
                frame_out,
                text: text.into(),
                author: ctx.author.clone(),
                author_role: role_name(ctx.role).into(),
                created_at: now,
            })
        };
        match draft {
            Draft::Note {
                key,
                frame,
                frame_out,
                text,
                ..
            } => {
                let text = checked_text(&text)?;
                let timeline = ctx.timeline;
                if !timeline.contains(frame)
                    || frame_out.is_some_and(|out| out < frame || !timeline.contains(out))
                {
                    return Err((
                        ErrorCode::FrameOutOfRange,
                        format!(
                            "a note's frames must lie in 0..{} with frameOut not before frame",
                            timeline.duration
                        ),
                    ));
                }
                let version_id = ctx.version.map(|v| v.id.clone());
                Ok(note(key, frame, frame_out, text, None, version_id))
            }
            Draft::Reply { key, parent, text } => {
                let text = checked_text(&text)?;
                let parent = self.top_level_note(parent)?;
                Ok(note(
                    key,
                    parent.frame,
                    parent.frame_out,
                    text,
                    Some(parent.id),
                    // A reply is about what its note is about.
                    parent.version_id.clone(),
                ))
            }
            Draft::Resolve { note, resolved, .. } => {
                let target = self.top_level_note(note)?;
                Ok(Record::Resolve {
                    session_id: ctx.session_id.into(),
                    note_id: target.id,
                    resolved: resolved.then(|| Mark {
                        by: ctx.author.clone(),
                        at: now,
                    }),
                })
            }
            Draft::Drawing {
                key,
                frame,
                tool,
                colour,
                width,
                points,
                ..
            } => {
                if !ctx.timeline.contains(frame) {
                    return Err((
                        ErrorCode::FrameOutOfRange,
                        format!("a drawing's frame must lie in 0..{}", ctx.timeline.duration),
                    ));
                }
                let shape = Shape::new(&tool, &colour, width, points)
                    .map_err(|e| (ErrorCode::BadDrawing, e.to_string()))?;
                Ok(Record::Drawing(NewDrawing {
                    session_id: ctx.session_id.into(),
                    version_id: ctx.version.map(|v| v.id.clone()),
                    client_key: key,
                    author_link: ctx.link.into(),
                    frame,
                    shape,
                    author: ctx.author.clone(),
                    author_role: role_name(ctx.role).into(),
                    created_at: now,
                }))
            }
            Draft::Erase { drawing, .. } => {
                if !self.drawings.iter().any(|d| d.id == drawing) {
                    return Err((
                        ErrorCode::UnknownDrawing,
                        format!("there is no drawing {drawing} to erase"),
                    ));
                }
                Ok(Record::Erase {
                    session_id: ctx.session_id.into(),
                    drawing_id: drawing,
                    mark: Mark {
                        by: ctx.author.clone(),
                        at: now,
                    },
                })
            }
            Draft::Approve {
                key,
                status,
                version,
            } => {
                let Some(current) = ctx.version else {
                    return Err((
                        ErrorCode::UnknownVersion,
                        "this session reviews no media version; there is nothing to approve".into(),
                    ));
                };
                if version.as_deref().is_some_and(|v| v != current.id) {
                    return Err((
                        ErrorCode::UnknownVersion,
                        format!(
                            "this session reviews {} v{}, not the version named",
                            current.item, current.number
                        ),
                    ));
                }
                Ok(Record::Approval(NewApproval {
                    session_id: ctx.session_id.into(),
                    version_id: Some(current.id.clone()),
                    client_key: key,
                    author_link: ctx.link.into(),
                    status: status.name().into(),
                    author: ctx.author.clone(),
                    author_role: role_name(ctx.role).into(),
                    created_at: now,
                    receipt: receipt(),
                }))
            }
        }
    }

    fn top_level_note(&self, id: i64) -> Result<&WireNote, Refusal> {
        match self.notes.iter().find(|n| n.id == id) {
            Some(n) if n.parent.is_none() => Ok(n),
            Some(_) => Err((
                ErrorCode::UnknownNote,
                format!("note {id} is a reply; reply to or resolve the note it answers"),
            )),
            None => Err((
                ErrorCode::UnknownNote,
                format!("this session has no note {id}"),
            )),
        }
    }

    /// Folds a committed record in. Returns the acknowledgement for its
    /// author and, when the room's view changed, what happened and the
    /// message for everyone. A resend of a stored draft changes nothing.
    pub fn apply(
        &mut self,
        key: String,
        recorded: &Recorded,
    ) -> (ServerMessage, Option<(Happened, ServerMessage)>) {
        self.catch_up_texts = std::sync::OnceLock::new();
        match recorded {
            Recorded::Note(row) => {
                let note = wire_note(row);
                let happened = match self.notes.iter_mut().find(|n| n.id == note.id) {
                    Some(existing) if *existing == note => None,
                    Some(existing) => {
                        *existing = note.clone();
                        Some(if note.resolved_at.is_some() {
                            Happened::NoteResolved
                        } else {
                            Happened::NoteReopened
                        })
                    }
                    None => {
                        self.notes.push(note.clone());
                        Some(Happened::NoteCreated)
                    }
                };
                (
                    ServerMessage::NoteAck {
                        key,
                        note: note.clone(),
                    },
                    happened.map(|h| (h, ServerMessage::Note { note })),
                )
            }
            Recorded::Drawing(row) => {
                let drawing = wire_drawing(row);
                let position = self.drawings.iter().position(|d| d.id == drawing.id);
                let happened = match (position, row.erased.is_some()) {
                    (Some(at), true) => {
                        self.drawings.remove(at);
                        self.erased.push(drawing.clone());
                        Some(Happened::Erased)
                    }
                    (None, false) => {
                        self.drawings.push(drawing.clone());
                        Some(Happened::Drawn)
                    }
                    _ => None,
                };
                (
                    ServerMessage::DrawingAck {
                        key,
                        drawing: drawing.clone(),
                    },
                    happened.map(|h| (h, ServerMessage::Drawing { drawing })),
                )
            }
            Recorded::Approval(row) => {
                let approval = wire_approval(row);
                let changed = !self.approvals.iter().any(|a| a.id == approval.id);
                if changed {
                    self.approvals.push(approval.clone());
                }
                (
                    ServerMessage::ApprovalAck {
                        key,
                        approval: approval.clone(),
                    },
                    changed.then_some((Happened::Decided, ServerMessage::Approval { approval })),
                )
            }
            // Sessions never ask for a version; should the record answer
            // with one, the author hears of it rather than the room ending.
            Recorded::Version(_) | Recorded::Claimed(_) => (
                ServerMessage::Error {
                    code: ErrorCode::Store,
                    message: format!("the record answered {key} with another kind of record"),
                    reference: None,
                    retry_after_secs: None,
                },
                None,
            ),
        }
    }
}

fn checked_text(text: &str) -> Result<&str, Refusal> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err((
            ErrorCode::BadNote,
            format!("a note is 1 to {MAX_NOTE_CHARS} characters"),
        ));
    }
    Ok(text)
}

pub fn wire_note(row: &NoteRow) -> WireNote {
    WireNote {
        id: row.id,
        version_id: row.note.version_id.clone(),
        key: row.note.client_key.clone(),
        frame: row.note.frame,
        frame_out: row.note.frame_out,
        text: row.note.text.clone(),
        author: row.note.author.clone(),
        author_role: role_from_name(&row.note.author_role).into(),
        created_at: row.note.created_at,
        parent: row.note.parent_id,
        resolved_by: row.resolved.as_ref().map(|m| m.by.clone()),
        resolved_at: row.resolved.as_ref().map(|m| m.at),
    }
}

pub fn wire_drawing(row: &DrawingRow) -> WireDrawing {
    let d = &row.drawing;
    WireDrawing {
        id: row.id,
        version_id: d.version_id.clone(),
        key: d.client_key.clone(),
        frame: d.frame,
        tool: d.shape.tool.name().into(),
        colour: d.shape.colour.to_string(),
        width: d.shape.width,
        points: d.shape.points.clone(),
        author: d.author.clone(),
        author_role: role_from_name(&d.author_role).into(),
        created_at: d.created_at,
        erased_by: row.erased.as_ref().map(|m| m.by.clone()),
        erased_at: row.erased.as_ref().map(|m| m.at),
    }
}

pub fn wire_approval(row: &ApprovalRow) -> WireApproval {
    let a = &row.approval;
    WireApproval {
        id: row.id,
        key: a.client_key.clone(),
        status: WireApprovalStatus::from_name(&a.status).unwrap_or(WireApprovalStatus::Pending),
        version_id: a.version_id.clone(),
        author: a.author.clone(),
        author_role: role_from_name(&a.author_role).into(),
        created_at: a.created_at,
        receipt: WireReceipt {
            frames: a.receipt.frames.iter().map(|&(x, y)| [x, y]).collect(),
            frame_count: a.receipt.frame_count,
            stream: a.receipt.stream.clone(),
            stream_bytes: a.receipt.stream_bytes,
            stream_kbps: a.receipt.stream_kbps,
            checksum: a.receipt.checksum.clone(),
        },
    }
}

/// A catch-up page's JSON stays near this size: well under the
/// connection's write-buffer cap (1 MiB), small enough that a browser
/// parses it without a visible stall.
pub const CATCH_UP_PAGE_BYTES: usize = 256 * 1024;

/// Splits a list into pages of about `CATCH_UP_PAGE_BYTES` of JSON, each
/// with whether more follow. An empty list is one empty page: the
/// receiver must still learn that the list is empty.
fn pages<T: Clone + serde::Serialize>(items: &[T]) -> Vec<(Vec<T>, bool)> {
    let mut pages = vec![(Vec::new(), false)];
    let mut bytes = 0;
    for item in items {
        let size = serde_json::to_vec(item).map_or(0, |json| json.len() + 1);
        let current = pages.last_mut().expect("one page at least");
        if bytes + size > CATCH_UP_PAGE_BYTES && !current.0.is_empty() {
            current.1 = true;
            pages.push((Vec::new(), false));
            bytes = 0;
        }
        pages
            .last_mut()
            .expect("one page at least")
            .0
            .push(item.clone());
        bytes += size;
    }
    pages
}
