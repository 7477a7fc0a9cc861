//! `/api/uploads`: tus 1.0 (core, creation, termination, checksum,
//! expiration) over `crate::uploads`. This file reads and writes the
//! headers and decides who is asking; the uploads module does the rest.
//! Every refusal is the API's JSON error with a code, and every answer
//! carries `Tus-Resumable`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::{bearer, public_base, unix_now, ApiError, App, Peer, Unavailable};
use crate::links::LinkError;
use crate::session::Role;
use crate::uploads::proxies::ProxyState;
use crate::uploads::{tus, Access, Done, NewUpload, Status, UploadError};

const TUS_RESUMABLE: HeaderName = HeaderName::from_static("tus-resumable");
const UPLOAD_OFFSET: HeaderName = HeaderName::from_static("upload-offset");
const UPLOAD_LENGTH: HeaderName = HeaderName::from_static("upload-length");
const UPLOAD_EXPIRES: HeaderName = HeaderName::from_static("upload-expires");

/// `OPTIONS`: what this server speaks. Needs no credential.
pub(super) async fn options(State(app): State<Arc<App>>) -> Response {
    let max = app.uploads.config().max_size_bytes.to_string();
    let mut response = StatusCode::NO_CONTENT.into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        ("tus-version", tus::VERSION),
        ("tus-extension", tus::EXTENSIONS),
        ("tus-checksum-algorithm", tus::CHECKSUM_ALGORITHMS),
        ("tus-max-size", max.as_str()),
    ] {
        headers.insert(name, HeaderValue::from_str(value).expect("ASCII"));
    }
    tus_headers(Ok(response))
}

/// `POST`: makes an upload. `Upload-Length` is required; `Upload-Metadata`
/// carries `filename` (required), `item`, `session` and `sha256`.
pub(super) async fn create(
    State(app): State<Arc<App>>,
    peer: Peer,
    headers: HeaderMap,
) -> Response {
    tus_headers(create_inner(&app, peer, &headers).await)
}

async fn create_inner(
    app: &Arc<App>,
    peer: Peer,
    headers: &HeaderMap,
) -> Result<Response, ApiError> {
    resumable(headers)?;
    let access = access(app, headers, peer).await?;
    if headers.contains_key("upload-defer-length") {
        return Err(bad(
            "a deferred length is not supported: send Upload-Length",
        ));
    }
    let length = number_header(headers, &UPLOAD_LENGTH)?
        .ok_or_else(|| bad("send Upload-Length: the file's size in bytes"))?;
    let metadata = match headers.get("upload-metadata") {
        Some(value) => tus::parse_metadata(
            value
                .to_str()
                .map_err(|_| bad("Upload-Metadata is not ASCII"))?,
        )
        .map_err(|e| bad(&e.to_string()))?,
        None => Default::default(),
    };
    let filename = metadata
        .get("filename")
        .cloned()
        .ok_or_else(|| bad("Upload-Metadata needs filename"))?;
    let sha256 = match metadata.get("sha256") {
        Some(text) => Some(tus::parse_hex_sha256(text).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_checksum",
                "the sha256 metadata is the whole file's SHA-256 in 64 hex digits",
            )
        })?),
        None => None,
    };
    let session = metadata.get("session").filter(|s| !s.is_empty()).cloned();
    if let Some(id) = &session {
        // The operator may name any session, but it must be one.
        session_somewhere(app, id).await?;
    }
    let new = NewUpload {
        length,
        filename,
        item: metadata.get("item").cloned(),
        session,
        sha256,
    };
    let uploads = app.clone();
    let status = tokio::task::spawn_blocking(move || uploads.uploads.create(&access, new))
        .await
        .map_err(internal)?
        .map_err(upload_error)?;
    let location = format!("{}/api/uploads/{}", public_base(app, headers), status.id);
    let mut response = StatusCode::CREATED.into_response();
    let h = response.headers_mut();
    h.insert(header::LOCATION, value(&location));
    h.insert(UPLOAD_OFFSET, value("0"));
    h.insert(UPLOAD_EXPIRES, value(&tus::http_date(status.info.expires)));
    Ok(response)
}

/// `HEAD`: the offset to resume from.
pub(super) async fn head(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        resumable(&headers)?;
        let status = status_of(&app, peer, &headers, id).await?;
        let mut response = StatusCode::OK.into_response();
        let h = response.headers_mut();
        h.insert(UPLOAD_OFFSET, value(&status.offset.to_string()));
        h.insert(UPLOAD_LENGTH, value(&status.info.length.to_string()));
        h.insert(header::CACHE_CONTROL, value("no-store"));
        if status.done.is_none() {
            h.insert(UPLOAD_EXPIRES, value(&tus::http_date(status.info.expires)));
        }
        Ok(response)
    };
    tus_headers(answer.await)
}

/// `GET` (not tus): the upload as JSON, with the version it became once
/// finished, for the CLI and the web client.
pub(super) async fn get(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    let status = status_of(&app, peer, &headers, id).await?;
    Ok(Json(status_json(&app, &status)))
}

/// `PATCH`: bytes at `Upload-Offset`, optionally with the chunk's
/// `Upload-Checksum`.
pub(super) async fn patch(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let answer = async {
        resumable(&headers)?;
        let access = access(&app, &headers, peer).await?;
        let content_type = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        if content_type != tus::OFFSET_OCTET_STREAM {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "bad_content_type",
                format!("a PATCH body is Content-Type: {}", tus::OFFSET_OCTET_STREAM),
            ));
        }
        let offset =
            number_header(&headers, &UPLOAD_OFFSET)?.ok_or_else(|| bad("send Upload-Offset"))?;
        let checksum =
            match headers.get("upload-checksum") {
                Some(v) => Some(tus::parse_checksum(v.to_str().unwrap_or_default()).map_err(
                    |e| ApiError::new(StatusCode::BAD_REQUEST, "bad_checksum", e.to_string()),
                )?),
                None => None,
            };
        let appended = app
            .uploads
            .append(&access, &id, offset, checksum, body.into_data_stream())
            .await
            .map_err(upload_error)?;
        if let (Some(done), Some(session)) = (&appended.done, &appended.session) {
            app.add_uploaded_version(session, done).await;
        }
        let mut response = StatusCode::NO_CONTENT.into_response();
        let h = response.headers_mut();
        h.insert(UPLOAD_OFFSET, value(&appended.offset.to_string()));
        match &appended.done {
            Some(done) => {
                h.insert("syncreel-version", value(&done.version_id));
                h.insert("syncreel-version-number", value(&done.number.to_string()));
            }
            None => {
                h.insert(UPLOAD_EXPIRES, value(&tus::http_date(appended.expires)));
            }
        }
        Ok(response)
    };
    tus_headers(answer.await)
}

/// `DELETE`: the upload and its bytes go.
pub(super) async fn delete(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Response {
    let answer = async {
        resumable(&headers)?;
        let access = access(&app, &headers, peer).await?;
        app.uploads
            .terminate(&access, &id)
            .await
            .map_err(upload_error)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    };
    tus_headers(answer.await)
}

async fn status_of(
    app: &Arc<App>,
    peer: Peer,
    headers: &HeaderMap,
    id: String,
) -> Result<Status, ApiError> {
    let access = access(app, headers, peer).await?;
    let status = app
        .uploads
        .status(&access, &id)
        .await
        .map_err(upload_error)?;
    if let (true, Some(done), Some(session)) =
        (status.finished_now, &status.done, &status.info.session)
    {
        app.add_uploaded_version(session, done).await;
    }
    Ok(status)
}

impl App {
    /// Puts a version uploaded for `session_id` into its live room's
    /// playlist, where the driver can cue the room to it at the same
    /// timecode. In a cluster, a session another node runs is added there
    /// (its owner is told over NATS); a session that runs nowhere has the
    /// version from the record when it next opens. Nothing if its file
    /// cannot be prepared; the version is recorded either way.
    pub(crate) async fn add_uploaded_version(self: &Arc<Self>, session_id: &str, done: &Done) {
        if self.registry.get(session_id).is_none() {
            // In a cluster the session may run on another node: its owner
            // adds the version, before the upload's last answer as here.
            self.tell_owner_of_version(session_id, &done.version_id)
                .await;
            return;
        }
        self.add_version_here(session_id, &done.version_id).await;
    }

    /// Adds recorded version `version_id` to session `session_id`'s room,
    /// if the session runs on this node.
    pub(crate) async fn add_version_here(self: &Arc<Self>, session_id: &str, version_id: &str) {
        let Some(handle) = self.registry.get(session_id) else {
            return;
        };
        let (app, version_id, id) = (self.clone(), version_id.to_string(), session_id.to_string());
        let prepared = tokio::task::spawn_blocking(move || {
            let version = app
                .store
                .version(&version_id)
                .map_err(|e| e.to_string())?
                .ok_or("the version is not in the record")?;
            let media = version.path.clone();
            let setup = app.prepare_media(&media).map_err(|e| e.message)?;
            let own_media = app
                .store
                .session(&id)
                .map_err(|e| e.to_string())?
                .and_then(|row| row.media);
            Ok::<_, String>((setup, version, own_media, media))
        })
        .await;
        let (setup, version, own_media, media) = match prepared {
            Ok(Ok(prepared)) => prepared,
            Ok(Err(why)) => {
                tracing::warn!(session = %session_id, %why, "an uploaded version cannot join the room");
                return;
            }
            Err(err) => {
                tracing::warn!(session = %session_id, %err, "an uploaded version cannot join the room");
                return;
            }
        };
        let entry = crate::live::PlaylistEntry {
            media,
            setup,
            version: super::wire_version(&version),
        };
        let _ = handle
            .tx
            .send(crate::live::SessionMsg::AddVersion {
                entry: Box::new(entry),
                own_media,
            })
            .await;
    }
}

fn status_json(app: &App, status: &Status) -> serde_json::Value {
    let version = status.done.as_ref().map(|d| {
        serde_json::json!({
            "id": d.version_id,
            "item": d.item,
            "number": d.number,
            "checksum": d.checksum,
            "sizeBytes": d.size_bytes,
            "media": d.media,
        })
    });
    serde_json::json!({
        "id": status.id,
        "offset": status.offset,
        "length": status.info.length,
        "filename": status.info.filename,
        "item": status.info.item,
        "session": status.info.session,
        "expiresAt": status.info.expires,
        "state": if status.done.is_some() { "done" } else { "receiving" },
        "version": version,
        "duplicate": status.done.as_ref().map(|d| d.duplicate),
        "proxy": status
            .done
            .as_ref()
            .and_then(|d| app.uploads.proxies().state(&d.checksum))
            .map(|state| proxy_json(&state)),
    })
}

/// A review proxy's state as the API shows it: `state` (`pending`,
/// `making`, `ready`, `failed`), `progress` (0 to 1) and, on failure,
/// `error`.
pub(super) fn proxy_json(state: &ProxyState) -> serde_json::Value {
    let progress = match state {
        ProxyState::Pending => 0.0,
        ProxyState::Making(permille) => f64::from(*permille) / 1000.0,
        ProxyState::Ready(_) => 1.0,
        ProxyState::Failed(_) => 0.0,
    };
    let mut json = serde_json::json!({"state": state.name(), "progress": progress});
    if let ProxyState::Failed(why) = state {
        json["error"] = why.as_str().into();
    }
    json
}

/// Who is asking: the operator, or a host link (with its passcode, if it
/// has one) of a session that exists.
async fn access(app: &Arc<App>, headers: &HeaderMap, peer: Peer) -> Result<Access, ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "uploading needs Authorization: Bearer <operator token or a host link's token>",
        )
    })?;
    if app.operator.accepts(token) {
        return Ok(Access::Operator);
    }
    // Through the shared record in a cluster: a host link minted on
    // another node is as good here.
    let link = app.check_link(token, unix_now()).await.map_err(|err| {
        let code = match err {
            LinkError::Invalid => "invalid_token",
            LinkError::Expired => "link_expired",
            LinkError::Revoked => "link_revoked",
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, err.to_string())
    })?;
    if link.role != Role::Host {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only the operator and host links may upload",
        ));
    }
    let given = super::passcode::header_passcode(headers);
    app.check_passcode(&link, given.as_deref(), peer.0)
        .await
        .map_err(super::passcode::refusal_error)?;
    session_somewhere(app, &link.session_id).await?;
    Ok(Access::Host {
        session_id: link.session_id,
    })
}

/// That session `id` runs here (opened from the record if it ran
/// nowhere) or on another node of the cluster, which a finished upload
/// into it tells.
async fn session_somewhere(app: &Arc<App>, id: &str) -> Result<(), ApiError> {
    match app.session(id).await {
        Ok(_) | Err(Unavailable::Elsewhere(_)) => Ok(()),
        Err(Unavailable::NotFound) => Err(ApiError::not_found("session")),
        Err(Unavailable::CutOff(why)) => Err(super::cluster::unavailable(why)),
    }
}

/// Every tus request but `OPTIONS` names the protocol version.
fn resumable(headers: &HeaderMap) -> Result<(), ApiError> {
    match headers.get(TUS_RESUMABLE).and_then(|v| v.to_str().ok()) {
        Some(tus::VERSION) => Ok(()),
        other => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            "tus_version",
            format!(
                "send Tus-Resumable: {} (got {other:?}); this server speaks tus {}",
                tus::VERSION,
                tus::VERSION
            ),
        )),
    }
}

fn number_header(headers: &HeaderMap, name: &HeaderName) -> Result<Option<u64>, ApiError> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|t| t.trim().parse::<u64>().ok())
                .ok_or_else(|| bad(&format!("{name} must be a whole number of bytes")))
        })
        .transpose()
}

fn tus_headers(answer: Result<Response, ApiError>) -> Response {
    let mut response = answer.unwrap_or_else(IntoResponse::into_response);
    let headers = response.headers_mut();
    headers.insert(TUS_RESUMABLE, value(tus::VERSION));
    if response.status() == StatusCode::PRECONDITION_FAILED {
        response
            .headers_mut()
            .insert("tus-version", value(tus::VERSION));
    }
    response
}

fn value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn bad(message: &str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
}

fn internal(err: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        err.to_string(),
    )
}

/// An upload refusal as the API reports it.
fn upload_error(err: UploadError) -> ApiError {
    let checksum_mismatch = StatusCode::from_u16(460).expect("a valid status");
    let (status, code) = match &err {
        UploadError::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        UploadError::Expired => (StatusCode::GONE, "upload_expired"),
        UploadError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
        UploadError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
        UploadError::BadFilename(_) => (StatusCode::BAD_REQUEST, "bad_filename"),
        UploadError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "too_large"),
        UploadError::OverQuota { .. } => (StatusCode::INSUFFICIENT_STORAGE, "over_quota"),
        UploadError::DiskFull(_) => (StatusCode::INSUFFICIENT_STORAGE, "disk_full"),
        UploadError::OffsetMismatch { .. } => (StatusCode::CONFLICT, "offset_mismatch"),
        UploadError::PastEnd { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "past_end"),
        UploadError::ChunkChecksum => (checksum_mismatch, "checksum_mismatch"),
        UploadError::FileChecksum { .. } => (checksum_mismatch, "file_checksum_mismatch"),
        UploadError::Media(media) => {
            let e = super::media_error(media.clone());
            let code = match e.code {
                // The file is what it is: unprocessable, not a bad request.
                "media_failed" => return e,
                code => code,
            };
            (StatusCode::UNPROCESSABLE_ENTITY, code)
        }
        UploadError::Container(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "container_not_allowed"),
        UploadError::Locked => (StatusCode::LOCKED, "upload_locked"),
        UploadError::Interrupted(_) => (StatusCode::BAD_REQUEST, "interrupted"),
        UploadError::Store(store) => return super::store_error(store.clone()),
        UploadError::Io(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
    };
    ApiError::new(status, code, err.to_string())
}
