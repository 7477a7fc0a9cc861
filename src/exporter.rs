//! Reads a session's record and writes one of its exports: the path that
//! `GET /api/sessions/{id}/export/{format}` and `syncreel export` share.
//! Blocking (SQLite reads, and GStreamer decodes for the report's stills):
//! async callers run it on a blocking thread.

use std::path::Path;

use crate::export::{Format, ReelError};
use crate::store::{ReviewLookup, Store, StoreError};
use crate::timecode::TimecodeError;

/// What part of a session to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// The version on screen (the session's only one, or the playlist
    /// entry the room is on).
    OnScreen,
    /// One version: in a playlist, any entry's.
    Version(String),
    /// Every entry of the playlist, in order.
    WholePlaylist,
}

impl Scope {
    /// The word that asks for the whole playlist where a version id would go.
    pub const WHOLE: &'static str = "all";

    pub fn from_version(version: Option<&str>) -> Scope {
        match version {
            None => Scope::OnScreen,
            Some(Scope::WHOLE) => Scope::WholePlaylist,
            Some(id) => Scope::Version(id.to_string()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("no such session")]
    NoSession,
    #[error("this session has no version {0}")]
    NoVersion(String),
    #[error(transparent)]
    Reel(ReelError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the record holds a timeline it cannot label: {0}")]
    Timecode(#[from] TimecodeError),
}

impl From<ReelError> for ExportError {
    fn from(err: ReelError) -> ExportError {
        match err {
            ReelError::Timecode(err) => ExportError::Timecode(err),
            other => ExportError::Reel(other),
        }
    }
}

pub struct Exported {
    pub text: String,
    /// Notes and replies written.
    pub notes: usize,
    /// Why a report has no stills (its media could not be decoded).
    pub warning: Option<String>,
}

/// Writes `scope` of session `session_id` as `format`. The report's stills
/// are decoded from files under `media_root`; `progress(done, total)`
/// follows them.
pub fn export(
    store: &Store,
    session_id: &str,
    scope: &Scope,
    format: Format,
    media_root: &Path,
    progress: impl FnMut(usize, usize),
) -> Result<Exported, ExportError> {
    let version = match scope {
        Scope::WholePlaylist => {
            let reel = store.reel_of(session_id)?.ok_or(ExportError::NoSession)?;
            return Ok(Exported {
                text: crate::export::export_reel(&reel, format)?,
                notes: reel.entries.iter().map(|r| r.notes.len()).sum(),
                warning: None,
            });
        }
        Scope::OnScreen => None,
        Scope::Version(id) => Some(id.as_str()),
    };
    let review = match store.review_of(session_id, version)? {
        ReviewLookup::Found(review) => *review,
        ReviewLookup::NoSession => return Err(ExportError::NoSession),
        ReviewLookup::NoVersion => {
            return Err(ExportError::NoVersion(version.unwrap_or_default().into()))
        }
    };
    let (text, warning) = if format == Format::Html {
        crate::media::still::html_report(&review, media_root, progress)?
    } else {
        (crate::export::export(&review, format)?, None)
    };
    Ok(Exported {
        text,
        notes: review.notes.len(),
        warning,
    })
}
