//! `GET /api/sessions/{id}/frames/{checksum}/{frame}`: the exact frame of
//! one of the session's versions as a lossless PNG (see `media::frames`).
//! A frame of a version never changes, so the answer carries an ETag and
//! `immutable`: a page that steps back and forth asks once per frame. In
//! a watermarked session the picture carries the watermark, and its tag
//! and cache key say so.

use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{media_error, require_link_anywhere, store_error, ApiError, App, Peer, STILL_WAIT};
use crate::media::frames::{width_range, FrameKey};
use crate::media::MediaInfo;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FrameQuery {
    /// Pixels wide; the height keeps the picture's shape. Default: the
    /// source's width, up to 1920.
    width: Option<u32>,
}

/// The default width: the source, or 1920 for anything wider.
const DEFAULT_MAX_WIDTH: u32 = 1920;

pub(super) async fn frame_png(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath((id, checksum, frame)): UrlPath<(String, String, String)>,
    query: Result<Query<FrameQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let bad = |message: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message);
    let Query(query) = query.map_err(|e| bad(e.body_text()))?;
    let frame: i64 = frame
        .parse()
        .map_err(|_| bad(format!("{frame:?} is not a frame number")))?;
    if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad(
            "a version is named by its SHA-256, 64 hex digits".into()
        ));
    }
    // Any node of a cluster answers: the version's file is in the shared
    // media root, its record in the shared store.
    let watermark = require_link_anywhere(&app, &headers, peer, &id).await?;
    let watermark = crate::media::watermark::burnable(watermark.as_deref()).map_err(media_error)?;
    let media = media_of(&app, &id, &checksum).await?;
    if !(0..media.duration_frames).contains(&frame) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "frame_out_of_range",
            format!(
                "a frame of this version lies in 0..{}",
                media.duration_frames
            ),
        ));
    }
    let widths = width_range(media.width);
    let asked = query
        .width
        .unwrap_or_else(|| media.width.min(DEFAULT_MAX_WIDTH));
    if !widths.contains(&asked) {
        return Err(bad(format!(
            "width must lie in {}..={} for this version",
            widths.start(),
            widths.end()
        )));
    }
    // Widths that make the same picture share one address.
    let (width, _) = crate::media::still::still_size((media.width, media.height), asked);
    // A watermarked picture is another picture: its tag says so, so that
    // no cache (ours or the browser's) answers for one with the other.
    let etag = match &watermark {
        None => format!("\"{checksum}-{frame}-{width}\""),
        Some(w) => format!("\"{checksum}-{frame}-{width}-w{}\"", w.tag()),
    };
    let key = FrameKey {
        checksum,
        frame,
        width,
        watermark,
    };
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
    if unchanged {
        return Ok(answer(StatusCode::NOT_MODIFIED, &etag, frame, Vec::new()));
    }
    if let Some(png) = app.frames.cached(&key) {
        return Ok(answer(StatusCode::OK, &etag, frame, png));
    }
    let Ok(Ok(_permit)) = tokio::time::timeout(STILL_WAIT, app.stills.acquire()).await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "other frames are being decoded; try again in a moment",
        ));
    };
    let frames = app.clone();
    let png = tokio::task::spawn_blocking(move || frames.frames.png(&media, &key))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(media_error)?;
    Ok(answer(StatusCode::OK, &etag, frame, png))
}

fn answer(
    status: StatusCode,
    etag: &str,
    frame: i64,
    body: impl Into<axum::body::Body>,
) -> Response {
    let mut response = (status, body.into()).into_response();
    let h = response.headers_mut();
    if status == StatusCode::OK {
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/png"));
    }
    // Private: the bearer decides who may see it, so a shared cache may
    // not answer for it; immutable: this address never names another
    // picture.
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=31536000, immutable"),
    );
    if let Ok(etag) = HeaderValue::from_str(etag) {
        h.insert(header::ETAG, etag);
    }
    h.insert("x-frame", HeaderValue::from(frame));
    response
}

/// The probed file of the session's version `checksum`, probed once per
/// (session, version) while the server runs.
async fn media_of(app: &Arc<App>, id: &str, checksum: &str) -> Result<Arc<MediaInfo>, ApiError> {
    let key = (id.to_string(), checksum.to_string());
    if let Some(known) = app.frame_media.get(&key) {
        return Ok(known.clone());
    }
    let store = app.store.clone();
    let root = app.config.media_root();
    let (id, checksum) = key.clone();
    let info = tokio::task::spawn_blocking(move || {
        let requested = store
            .media_of_version(&id, &checksum)
            .map_err(store_error)?
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "unknown_version",
                    "this session reviews no version with that checksum",
                )
            })?;
        let path =
            crate::media::resolve_in_root(&root, Path::new(&requested)).map_err(media_error)?;
        crate::media::probe::probe(&path).map_err(|e| media_error(e.naming(Path::new(&requested))))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    let info = Arc::new(info);
    app.frame_media.insert(key, info.clone());
    Ok(info)
}
