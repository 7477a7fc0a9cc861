//! The record as the API serves it, beside the live room: exports of a
//! session's notes (CSV, JSON, EDL, OTIO, the HTML report), its audit
//! trail, the webhook delivery log, and a JPEG still of one frame for
//! someone looking on their own.

use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use super::*;

#[derive(Debug, Deserialize)]
pub(super) struct ExportQuery {
    /// Another version than the one on screen: in a playlist, any entry's;
    /// `all` for the whole playlist.
    version: Option<String>,
}

/// The session's notes as CSV, JSON, a CMX3600 EDL or OTIO (host token).
pub(super) async fn export_session(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath((id, format)): UrlPath<(String, String)>,
    query: Result<Query<ExportQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    require_host_anywhere(&app, &headers, peer, &id).await?;
    let format: crate::export::Format = format
        .parse()
        .map_err(|e: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e))?;
    let store = app.store.clone();
    let root = app.config.media_root();
    let scope = crate::exporter::Scope::from_version(query.version.as_deref());
    let session_id = id.clone();
    // Stills mean decoding: the whole export runs off the runtime.
    let exported = tokio::task::spawn_blocking(move || {
        crate::exporter::export(&store, &session_id, &scope, format, &root, |_, _| {})
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
    .map_err(export_error)?;
    if let Some(why) = exported.warning {
        tracing::warn!(session = %id, "report without stills: {why}");
    }
    let name = match &query.version {
        Some(version) => format!("syncreel-{id}-{version}.{}", format.extension()),
        None => format!("syncreel-{id}.{}", format.extension()),
    };
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        exported.text,
    )
        .into_response())
}

fn export_error(err: crate::exporter::ExportError) -> ApiError {
    use crate::exporter::ExportError;
    match err {
        ExportError::NoSession => ApiError::not_found("session"),
        ExportError::NoVersion(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_version",
            "this session has no such version",
        ),
        ExportError::Reel(reel) => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_exportable",
            reel.to_string(),
        ),
        ExportError::Store(err) => store_error(err),
        ExportError::Timecode(err) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        ),
    }
}

/// The session's audit trail (host): every join and leave, driver change,
/// transport command, note, drawing and decision, oldest first.
pub(super) async fn session_events(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_host_anywhere(&app, &headers, peer, &id).await?;
    let store = app.store.clone();
    let events = tokio::task::spawn_blocking(move || store.events(&id))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(store_error)?;
    let events: Vec<serde_json::Value> = events
        .into_iter()
        .map(|(at, kind, detail)| serde_json::json!({"at": at, "kind": kind, "detail": detail}))
        .collect();
    Ok(Json(serde_json::json!({ "events": events })))
}

/// The most webhook attempts `GET /api/webhooks/deliveries` lists.
const DELIVERIES_LISTED: usize = 1000;

/// The webhook delivery log (admin): every attempt, newest last.
pub(super) async fn webhook_deliveries(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&app, &headers, "reading the delivery log")?;
    let store = app.store.clone();
    let log = tokio::task::spawn_blocking(move || store.deliveries(DELIVERIES_LISTED))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(store_error)?;
    let deliveries: Vec<serde_json::Value> = log
        .into_iter()
        .map(|d| {
            serde_json::json!({
                "delivery": d.delivery,
                "url": d.url,
                "event": d.event,
                "attempt": d.attempt,
                "status": d.status,
                "error": d.error,
                "at": d.at,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "deliveries": deliveries })))
}

#[derive(Debug, Deserialize)]
pub(super) struct StillQuery {
    /// Another version than the one on screen (in a playlist, any entry's).
    version: Option<String>,
    /// Pixels wide; the height keeps the picture's shape.
    width: Option<u32>,
}

/// One frame of the session's media as a JPEG, for a participant who looks
/// at a noted frame on their own while the room plays on (any link of the
/// session). Decoded exactly, by the player's own decoder; no drawings (the
/// page paints those over it, as over the video).
pub(super) async fn session_still(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath((id, frame)): UrlPath<(String, String)>,
    query: Result<Query<StillQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let frame: i64 = frame.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("{frame:?} is not a frame number"),
        )
    })?;
    // Any node of a cluster answers: the file is in the shared media
    // root, the entry in the shared store.
    let watermark = require_link_anywhere(&app, &headers, peer, &id).await?;
    let watermark = crate::media::watermark::burnable(watermark.as_deref()).map_err(media_error)?;
    // A few people clicking at once wait their turn (a still takes about
    // 90 ms); a queue that long means the machine is swamped.
    let Ok(Ok(_permit)) = tokio::time::timeout(STILL_WAIT, app.stills.acquire()).await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "other stills are being decoded; try again in a moment",
        ));
    };
    let width = query
        .width
        .unwrap_or(crate::media::still::REPORT_STILL_WIDTH)
        .clamp(160, 1920);
    let store = app.store.clone();
    let root = app.config.media_root();
    let jpeg = tokio::task::spawn_blocking(move || {
        // The entry alone: a still needs its file and length, not its notes.
        let s = match store
            .entry_of(&id, query.version.as_deref())
            .map_err(store_error)?
        {
            EntryLookup::Found(session) => session,
            EntryLookup::NoSession => return Err(ApiError::not_found("session")),
            EntryLookup::NoVersion => {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_version",
                    "this session has no such version",
                ))
            }
        };
        if !(0..s.duration_frames).contains(&frame) {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "frame_out_of_range",
                format!("a frame of this version lies in 0..{}", s.duration_frames),
            ));
        }
        let requested = s.media.clone().ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no_media",
                "this session has no media to show",
            )
        })?;
        let path =
            crate::media::resolve_in_root(&root, Path::new(&requested)).map_err(media_error)?;
        let info = crate::media::probe::probe(&path)
            .map_err(|e| media_error(e.naming(Path::new(&requested))))?;
        let stills = crate::media::still::grab(
            &info,
            &[frame],
            width,
            watermark.as_ref(),
            |_| Vec::new(),
            |_, _| {},
        )
        .map_err(|e| media_error(e.naming(Path::new(&requested))))?;
        stills
            .into_iter()
            .next()
            .map(|still| still.jpeg)
            .ok_or_else(|| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "no picture")
            })
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    Ok((
        [
            (header::CONTENT_TYPE, "image/jpeg"),
            // A frame of a version never changes.
            (header::CACHE_CONTROL, "private, max-age=3600"),
        ],
        jpeg,
    )
        .into_response())
}
