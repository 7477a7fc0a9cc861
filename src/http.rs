//! The HTTP face of the server: the REST API, the web client's files, the
//! WebSocket upgrade, `/healthz` and `/metrics`.
//!
//! [`router`] is separate from serving so that tests can drive it directly.
//! Handlers return `Result<_, ApiError>`; every error is JSON with a code.

use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::SystemTime;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tokio::sync::{oneshot, watch};

mod cluster;
mod frames;
mod guard;
mod ops;
mod passcode;
mod record;
mod restore;
mod sessions;
mod uploads;

pub use passcode::{Peer, PASSCODE_HEADER};

use crate::cluster::Lease;
use crate::config::Config;
use crate::links::{random_id, token_hash, Link, LinkError, LinkStore, MintedLink};
use crate::live::{
    role_from_name, role_name, unix_millis, MediaSetup, PlaylistEntry, Registry, ServerClock,
    SessionHandle, SessionMsg, SessionReview, SessionStart,
};
use crate::media::watermark::Watermark;
use crate::media::MediaError;
use crate::metrics::Metrics;
use crate::protocol::{WireRole, WireSession, WireSnapshot, WireVersion};
use crate::session::{Role, SessionInfo};
use crate::store::{
    EntryLookup, EntryRow, LinkRow, NewVersion, PersonalRoomRow, Record, Recorded, SessionRow,
    Store, StoreError, TimelineRow, VersionRow, Write,
};
use crate::timecode::{FrameRate, Timecode, TimecodeFormat};

/// Everything the handlers share.
#[derive(Debug)]
pub struct App {
    pub config: Config,
    pub clock: ServerClock,
    pub registry: Registry,
    pub links: LinkStore,
    /// Links' passcodes: the lock on wrong ones, and Argon2 a few at once.
    pub passcodes: crate::passcode::Gate,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Receiver<bool>,
    /// The review record: sessions, links, notes, the event log.
    pub store: Store,
    pub webhooks: crate::webhooks::Webhooks,
    /// Resumable uploads into the media root (`/api/uploads`).
    pub uploads: Arc<crate::uploads::Uploads>,
    /// Stills being decoded for participants' own looks at a frame: each
    /// opens a decoder, so only a few at once.
    stills: tokio::sync::Semaphore,
    /// Exact frames for paused rooms, steps and scrubs: warm decoders and
    /// a byte-bounded cache (`media::frames`).
    pub frames: crate::media::frames::FrameServer,
    /// The probed file behind each (session, version checksum) asked for.
    frame_media: dashmap::DashMap<(String, String), Arc<crate::media::MediaInfo>>,
    /// The names this server answers to (see `guard`).
    allowed_hosts: Vec<String>,
    /// What making sessions, listing media and reading the delivery log
    /// need (see `operator`).
    pub operator: crate::operator::Operator,
    /// Held while an archived session is brought back.
    restoring: tokio::sync::Mutex<()>,
    /// The certificate pair when the server speaks HTTPS itself.
    pub tls: Option<Arc<crate::tls::Certificates>>,
    /// This node's membership when it runs in a cluster (`--cluster`);
    /// `None` for a single node, which then runs no NATS code.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Set by a drain (`POST /api/cluster/drain`): published with the
    /// node's load, so that placement passes it by.
    pub draining: std::sync::atomic::AtomicBool,
    next_conn_id: AtomicU64,
}

/// Why the shared state could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    #[error("cannot keep the operator token in the data dir: {0}")]
    Operator(std::io::Error),
    #[error(transparent)]
    Tls(crate::tls::TlsError),
    #[error("cannot open the upload staging area in the data dir: {0}")]
    Uploads(std::io::Error),
}

/// Stills decoded at once for `GET /api/sessions/{id}/still/{frame}`.
const STILLS_AT_ONCE: usize = 2;
/// How long a request for a still waits for its turn before `busy`.
const STILL_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl App {
    /// Opens the record in the data dir (`syncreel.db`) and starts the
    /// webhooks.
    pub fn new(config: Config, shutdown: watch::Receiver<bool>) -> Result<App, StartError> {
        let store = Store::open_or_connect(
            Some(config.server.store.as_str()).filter(|url| !url.is_empty()),
            &config.server.data_dir.join("syncreel.db"),
        )?;
        let webhooks = crate::webhooks::Webhooks::start(&config.webhooks, store.clone())?;
        let frames = crate::media::frames::FrameServer::new(config.media.frame_limits());
        let allowed_hosts = guard::allowed_names(&config.server);
        let tls = if config.server.tls_cert.as_os_str().is_empty() {
            None
        } else {
            Some(
                crate::tls::Certificates::load(&config.server.tls_cert, &config.server.tls_key)
                    .map_err(StartError::Tls)?,
            )
        };
        let operator =
            crate::operator::Operator::resolve(&config.server.admin_token, &config.server.data_dir)
                .map_err(StartError::Operator)?;
        let passcodes = crate::passcode::Gate::new(config.links.passcode_limits());
        let uploads = Arc::new(
            crate::uploads::Uploads::open(
                &config.server.data_dir,
                config.media_root(),
                config.uploads.clone(),
                store.clone(),
                webhooks.clone(),
                config.proxy_spec(),
            )
            .map_err(StartError::Uploads)?,
        );
        Ok(App {
            uploads,
            webhooks,
            config,
            clock: ServerClock::start(),
            registry: Registry::default(),
            links: LinkStore::default(),
            passcodes,
            metrics: Arc::new(Metrics::default()),
            shutdown,
            store,
            stills: tokio::sync::Semaphore::new(STILLS_AT_ONCE),
            frames,
            frame_media: dashmap::DashMap::new(),
            allowed_hosts,
            operator,
            restoring: tokio::sync::Mutex::new(()),
            tls,
            cluster: None,
            draining: std::sync::atomic::AtomicBool::new(false),
            next_conn_id: AtomicU64::new(1),
        })
    }

    /// Resolves and probes the media a session asks for. Blocking: call it
    /// from `spawn_blocking`.
    pub fn prepare_media(&self, requested: &str) -> Result<MediaSetup, ApiError> {
        let path = crate::media::resolve_in_root(&self.config.media_root(), Path::new(requested))
            .map_err(media_error)?;
        // Refusals name the file as the user did: the server's own layout
        // is none of a remote client's business.
        let info = crate::media::probe::probe(&path)
            .map_err(|e| media_error(e.naming(Path::new(requested))))?;
        let checksum = self
            .checksum_of(&path)
            .map_err(|e| media_error(e.naming(Path::new(requested))))?;
        let proxy = self.uploads.proxies().ready(&checksum.0);
        Ok(MediaSetup {
            proxy,
            info,
            stream: self.config.stream_settings(),
            rtc: self.config.rtc_settings(),
            checksum,
            idle_teardown: self.config.media.idle_teardown(),
            restarts: self.config.media.restarts(),
            relay: self.cluster.as_ref().and_then(|c| c.media.clone()),
        })
    }

    /// A file's SHA-256 and size, from the record when the file has the
    /// size and modification time it had when last hashed (hashing a
    /// 47 MiB file takes ~176 ms, and a restart used to hash them all).
    /// A file rewritten in place keeps neither, so it is hashed again.
    fn checksum_of(&self, path: &Path) -> Result<(String, u64), MediaError> {
        let stamp = std::fs::metadata(path).ok().and_then(|m| {
            let mtime = m
                .modified()
                .ok()?
                .duration_since(SystemTime::UNIX_EPOCH)
                .ok()?;
            Some((
                i64::try_from(m.len()).ok()?,
                i64::try_from(mtime.as_nanos()).ok()?,
            ))
        });
        let key = path.to_string_lossy().to_string();
        if let Some((size, mtime)) = stamp {
            if let Ok(Some(known)) = self.store.known_checksum(&key, size, mtime) {
                return Ok((known, size as u64));
            }
        }
        let (checksum, size) = crate::media::checksum(path)?;
        if let Some((size_bytes, mtime_ns)) = stamp {
            self.store.write_later(Write::Checksum {
                path: key,
                size_bytes,
                mtime_ns,
                checksum: checksum.clone(),
            });
        }
        Ok((checksum, size))
    }

    /// Creates a live session and one link per role. With media, the
    /// media decides the rate, length and start timecode.
    pub async fn create_session(
        self: &Arc<Self>,
        req: CreateSession,
        prepared: Vec<MediaSetup>,
    ) -> Result<CreatedSession, ApiError> {
        if self.registry.live_count() >= self.config.limits.max_sessions {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_sessions",
                "this server is at its session limit",
            ));
        }
        let title = checked_title(&req.title)?;
        // One hash per link, each with a salt of its own; made before the
        // session starts, so a refusal leaves nothing behind.
        let mut hashes = Vec::new();
        for _ in 0..3 {
            hashes.push(passcode::passcode_hash(req.passcode.as_deref()).await?);
        }
        let watermark = session_watermark(&req, title, &self.config.session.watermark)?;
        let mut playlist = Vec::new();
        if let Some(items) = &req.playlist {
            for (item, setup) in items.iter().zip(&prepared) {
                let version = self
                    .record_version(item.item.as_deref(), &item.media, setup)
                    .await?;
                playlist.push((item.media.clone(), version, setup.clone()));
            }
        }
        let media = prepared.into_iter().next();
        let (timecode, duration_frames) = match &media {
            Some(setup) => {
                timeline_left_to_media(&req)?;
                (setup.info.timecode, setup.info.duration_frames)
            }
            None => session_timeline(&req)?,
        };
        let version = match (&media, &req.media, playlist.first()) {
            (_, _, Some((_, first, _))) => Some(first.clone()),
            (Some(setup), Some(requested), None) => Some(
                self.record_version(req.item.as_deref(), requested, setup)
                    .await?,
            ),
            _ => None,
        };
        let info = SessionInfo {
            id: random_id(),
            title: title.to_string(),
            timecode,
            duration_frames,
            watermark: watermark.map(|w| w.text().to_string()),
        };
        let row = SessionRow {
            id: info.id.clone(),
            title: info.title.clone(),
            fps_num: info.timecode.rate().num(),
            fps_den: info.timecode.rate().den(),
            drop_frame: info.timecode.drop_frame(),
            start_timecode: info.timecode.start().to_string(),
            duration_frames: info.duration_frames,
            media: req
                .media
                .clone()
                .or_else(|| playlist.first().map(|(m, _, _)| m.clone())),
            created_at: unix_millis(),
            last_frame: 0,
            moving: None,
            version_id: version.as_ref().map(|v| v.id.clone()),
            ended_at: None,
            playlist: playlist
                .iter()
                .map(|(media, v, setup)| EntryRow {
                    media: media.clone(),
                    version_id: Some(v.id.clone()),
                    timeline: Some(TimelineRow {
                        fps_num: setup.info.timecode.rate().num(),
                        fps_den: setup.info.timecode.rate().den(),
                        drop_frame: setup.info.timecode.drop_frame(),
                        start_timecode: setup.info.timecode.start().to_string(),
                        duration_frames: setup.info.duration_frames,
                    }),
                })
                .collect(),
            entry: 0,
            watermark: info.watermark.clone(),
        };
        // In a cluster the session runs on the least loaded node; this one
        // only records it and hands it over.
        let placed = self.placed_elsewhere().await;
        let info = Arc::new(info);
        if placed.is_none() {
            let lease = self.lease_to_run(&info.id).await.map_err(|why| match why {
                Unavailable::CutOff(why) => cluster::unavailable(why),
                other => ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    format!("a new session's lease is taken: {other:?}"),
                ),
            })?;
            let handle = self
                .registry
                .spawn(
                    (*info).clone(),
                    self.config.session_limits(),
                    self.clock,
                    self.metrics.clone(),
                    self.shutdown.clone(),
                    SessionStart {
                        media,
                        store: self.session_store(&info.id, lease.as_ref()),
                        webhooks: self.webhooks.clone(),
                        start_frame: 0,
                        start_moving: None,
                        review: SessionReview::default(),
                        version: version.as_ref().map(wire_version),
                        media_error: None,
                        ended_at: None,
                        playlist: playlist
                            .iter()
                            .map(|(media, v, setup)| PlaylistEntry {
                                media: media.clone(),
                                setup: setup.clone(),
                                version: wire_version(v),
                            })
                            .collect(),
                        entry: 0,
                        personal_rooms: Vec::new(),
                        idle_expiry: self.config.session.idle_expiry(),
                        transport_commit_wait: self.config.cluster.transport_commit_wait(),
                    },
                )
                .map_err(|e| {
                    ApiError::new(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "media_failed",
                        e.to_string(),
                    )
                });
            let handle = match handle {
                Ok(handle) => handle,
                Err(err) => {
                    self.let_go(lease).await;
                    return Err(err);
                }
            };
            self.own_session(&handle, lease);
        }
        let links: Vec<MintedLink> = [Role::Host, Role::Reviewer, Role::Viewer]
            .into_iter()
            .zip(hashes)
            .map(|(role, hash)| self.links.mint(&info.id, role, None, hash))
            .collect();
        // The links work only once they would survive a restart.
        let rows = links.iter().map(link_row).collect();
        self.store
            .write_acked(Write::Session(row, rows))
            .await
            .unwrap_or(Err(StoreError::Closed))
            .map_err(store_error)?;
        if let (Some(to), Some(cluster)) = (placed, &self.cluster) {
            if let Err(err) = cluster.relay.hand_to(&to, &info.id).await {
                // Wherever it runs, it runs: here, then.
                tracing::warn!(session = %info.id, node = %to, %err, "placement refused; the session runs here");
                let _ = self.session(&info.id).await;
            }
        }
        self.webhooks.announce(crate::webhooks::Announcement {
            event: "session.started",
            session_id: info.id.clone(),
            data: serde_json::json!({
                "title": info.title,
                "startTimecode": info.timecode.start().to_string(),
                "durationFrames": info.duration_frames,
            }),
        });
        Ok(CreatedSession {
            info,
            links,
            version: version.as_ref().map(wire_version),
        })
    }

    /// Fresh links, one per role, into the newest session titled `title`
    /// that came back from the record and has not ended; `None` if there
    /// is none. The demo uses it so that a restart (after a crash, say)
    /// prints the same review rather than an empty new one. Tokens are
    /// kept only as hashes, so the earlier links cannot be printed again;
    /// they still work.
    pub async fn relink_latest(&self, title: &str) -> Result<Option<CreatedSession>, ApiError> {
        let store = self.store.clone();
        let rows = tokio::task::spawn_blocking(move || store.sessions())
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
            })?
            .map_err(store_error)?;
        let latest = rows
            .into_iter()
            .filter(|row| row.title == title && row.ended_at.is_none())
            .filter_map(|row| Some((row.created_at, self.registry.get(&row.id)?, row)))
            .max_by_key(|(created_at, _, _)| *created_at);
        let Some((_, handle, row)) = latest else {
            return Ok(None);
        };
        let links: Vec<MintedLink> = [Role::Host, Role::Reviewer, Role::Viewer]
            .into_iter()
            .map(|role| self.links.mint(&handle.info.id, role, None, None))
            .collect();
        for link in &links {
            self.store
                .write_acked(Write::Link(link_row(link)))
                .await
                .unwrap_or(Err(StoreError::Closed))
                .map_err(store_error)?;
        }
        let store = self.store.clone();
        let version = match row.version_id {
            Some(id) => tokio::task::spawn_blocking(move || store.version(&id))
                .await
                .ok()
                .and_then(Result::ok)
                .flatten(),
            None => None,
        };
        Ok(Some(CreatedSession {
            info: handle.info.clone(),
            links,
            version: version.as_ref().map(wire_version),
        }))
    }

    /// Records the file as a version of its media item: the item named in
    /// the request, else the file's stem. The same bytes are the same
    /// version; new bytes are the next number in the stack.
    async fn record_version(
        &self,
        item: Option<&str>,
        requested: &str,
        setup: &MediaSetup,
    ) -> Result<VersionRow, ApiError> {
        let item = match item.map(str::trim) {
            Some(item) if item.is_empty() || item.chars().count() > 200 => {
                return Err(ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    "item must be 1 to 200 characters",
                ))
            }
            Some(item) => item.to_string(),
            None => Path::new(requested)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| requested.to_string()),
        };
        let recorded = self
            .store
            .record(Record::Version(NewVersion {
                item,
                path: requested.to_string(),
                checksum: setup.checksum.0.clone(),
                size_bytes: setup.checksum.1 as i64,
                created_at: unix_millis(),
            }))
            .await
            .unwrap_or(Err(StoreError::Closed))
            .map_err(store_error)?;
        match recorded {
            (Recorded::Version(v), _) => Ok(v),
            _ => Err(store_error(StoreError::Database(
                "a version came back as another record".into(),
            ))),
        }
    }

    pub(crate) fn next_conn_id(&self) -> u64 {
        self.next_conn_id.fetch_add(1, Relaxed)
    }
}

/// A session's title, trimmed: 1 to 200 characters.
fn checked_title(title: &str) -> Result<&str, ApiError> {
    let title = title.trim();
    if title.is_empty() || title.chars().count() > 200 {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "title must be 1 to 200 characters",
        ));
    }
    Ok(title)
}

/// The watermark a new session gets: the request's own (`""` for none),
/// else the server's `session.watermark` template; `{title}` is the
/// session's title in either.
fn session_watermark(
    req: &CreateSession,
    title: &str,
    default: &str,
) -> Result<Option<Watermark>, ApiError> {
    match &req.watermark {
        Some(asked) => Watermark::from_template(asked, title),
        None => Watermark::from_default(default, title),
    }
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_watermark", e.to_string()))
}

/// With media, the file decides the timeline: the request must not.
fn timeline_left_to_media(req: &CreateSession) -> Result<(), ApiError> {
    if req.fps.is_some()
        || req.duration_frames.is_some()
        || req.start_timecode.is_some()
        || req.drop_frame.is_some()
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "with media, the rate, length and start timecode come from the file: leave out fps, durationFrames, startTimecode and dropFrame",
        ));
    }
    Ok(())
}

/// The files a create-session request names: its `media`, or its
/// playlist's (1 to [`MAX_PLAYLIST`]), or none.
fn media_files(req: &CreateSession) -> Result<Vec<String>, ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m);
    match (&req.media, &req.playlist) {
        (Some(_), Some(_)) => Err(bad("give media or playlist, not both")),
        (Some(media), None) => Ok(vec![media.clone()]),
        (None, Some(items)) if items.is_empty() || items.len() > MAX_PLAYLIST => {
            Err(bad("a playlist has 1 to 100 entries"))
        }
        (None, Some(items)) => Ok(items.iter().map(|i| i.media.clone()).collect()),
        (None, None) => Ok(vec![]),
    }
}

/// When a minted link expires, from the request (`None`: never).
fn link_expiry(req: &MintLink, now_unix: u64) -> Result<Option<u64>, ApiError> {
    req.expires_in_secs
        .map(|secs| {
            crate::links::expiry(now_unix, secs).ok_or_else(|| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "bad_request",
                    format!(
                        "expiresInSecs must be between 0 and {} (ten years)",
                        crate::links::MAX_LIFETIME_SECS
                    ),
                )
            })
        })
        .transpose()
}

/// A REST request body that [`parse_rest_body`] checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestBody {
    /// `POST /api/sessions`.
    CreateSession,
    /// `POST /api/sessions/{id}/links`.
    MintLink,
}

/// For fuzzing and its replay test (`syncreel::fuzzing`, `tests/fuzz_corpus.rs`):
/// runs the deserialization and the checks that need no server (no media
/// probe, no store) that the handler of `kind` runs on `body`, and gives
/// back the accepted request serialized again, or the refusal as
/// `code: message`.
#[doc(hidden)]
pub fn parse_rest_body(kind: RestBody, body: &[u8]) -> Result<serde_json::Value, String> {
    let refused = |e: ApiError| format!("{}: {}", e.code, e.message);
    match kind {
        RestBody::CreateSession => {
            let req: CreateSession = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            // In the handler's order: the files, the title, the watermark
            // (under an empty default), the timeline.
            let files = media_files(&req).map_err(refused)?;
            let title = checked_title(&req.title).map_err(refused)?;
            if let Some(raw) = &req.passcode {
                passcode::checked_passcode(raw).map_err(refused)?;
            }
            session_watermark(&req, title, "").map_err(refused)?;
            if files.is_empty() {
                session_timeline(&req).map_err(refused)?;
            } else {
                timeline_left_to_media(&req).map_err(refused)?;
            }
            serde_json::to_value(&req).map_err(|e| e.to_string())
        }
        RestBody::MintLink => {
            let req: MintLink = serde_json::from_slice(body).map_err(|e| e.to_string())?;
            link_expiry(&req, unix_now()).map_err(refused)?;
            if let Some(raw) = &req.passcode {
                passcode::checked_passcode(raw).map_err(refused)?;
            }
            serde_json::to_value(&req).map_err(|e| e.to_string())
        }
    }
}

/// The timeline of a session without media, from the request.
fn session_timeline(req: &CreateSession) -> Result<(TimecodeFormat, i64), ApiError> {
    let bad = |m: &str| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", m);
    let fps = req
        .fps
        .as_deref()
        .ok_or_else(|| bad("fps is required for a session without media"))?;
    let rate: FrameRate = fps.parse().map_err(|e: crate::timecode::TimecodeError| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_fps", e.to_string())
    })?;
    let duration = req
        .duration_frames
        .ok_or_else(|| bad("durationFrames is required for a session without media"))?;
    if !(1..=1_000_000_000).contains(&duration) {
        return Err(bad("durationFrames must be between 1 and 1e9"));
    }
    let bad_tc = |e: crate::timecode::TimecodeError| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_timecode", e.to_string())
    };
    let start: Timecode = req
        .start_timecode
        .as_deref()
        .unwrap_or("00:00:00:00")
        .parse()
        .map_err(bad_tc)?;
    // A `;` before the frames means drop-frame unless said otherwise.
    let drop_frame = req
        .drop_frame
        .unwrap_or(start.drop_frame && rate.allows_drop_frame());
    let timecode = TimecodeFormat::new(rate, drop_frame)
        .and_then(|f| f.with_start(start))
        .map_err(bad_tc)?;
    Ok((timecode, duration))
}

pub struct CreatedSession {
    pub info: Arc<SessionInfo>,
    pub links: Vec<MintedLink>,
    pub version: Option<WireVersion>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateSession {
    pub title: String,
    /// A media file under the media root. When given, it decides the
    /// rate, length and start timecode, and the session streams it.
    #[serde(default)]
    pub media: Option<String>,
    /// The media item the file is a version of (a shot, a cut). Defaults
    /// to the file's name without its extension.
    #[serde(default)]
    pub item: Option<String>,
    /// Instead of `media`: several files (versions or shots) the room can
    /// be cued between, in order. The session opens on the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playlist: Option<Vec<PlaylistItem>>,
    /// `24000/1001`, `24`, `29.97`, … (sessions without media).
    #[serde(default)]
    pub fps: Option<String>,
    #[serde(default)]
    pub duration_frames: Option<i64>,
    #[serde(default)]
    pub start_timecode: Option<String>,
    #[serde(default)]
    pub drop_frame: Option<bool>,
    /// A passcode every link made with the session will need too (4 to 64
    /// printable ASCII characters, trimmed); kept only as its hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub passcode: Option<String>,
    /// Text burned into the session's pictures (`{title}` becomes the
    /// title); `""` for none. Absent: the server's `session.watermark`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<String>,
}

/// One file of a playlist session.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaylistItem {
    pub media: String,
    #[serde(default)]
    pub item: Option<String>,
}

pub use crate::live::MAX_PLAYLIST;

fn link_row(minted: &MintedLink) -> LinkRow {
    LinkRow {
        id: minted.link.id.clone(),
        session_id: minted.link.session_id.clone(),
        role: role_name(minted.link.role).into(),
        token_hash: token_hash(&minted.token),
        // `expiry` keeps every expiry far inside i64.
        expires_at: minted
            .link
            .expires_at
            .map(|t| i64::try_from(t).unwrap_or(i64::MAX)),
        revoked: minted.link.revoked,
        passcode_hash: minted.link.passcode.as_deref().map(str::to_string),
    }
}

fn store_error(err: StoreError) -> ApiError {
    ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store", err.to_string())
}

/// A media refusal as the API reports it.
fn media_error(err: MediaError) -> ApiError {
    let (status, code) = match &err {
        MediaError::OutsideRoot(_) => (StatusCode::BAD_REQUEST, "outside_media_root"),
        MediaError::Missing(_) => (StatusCode::BAD_REQUEST, "media_missing"),
        MediaError::NotMedia { .. } => (StatusCode::BAD_REQUEST, "not_media"),
        MediaError::NoVideo(_) => (StatusCode::BAD_REQUEST, "no_video"),
        MediaError::UnsupportedRate { .. } => (StatusCode::BAD_REQUEST, "unsupported_rate"),
        MediaError::Gstreamer(_) | MediaError::Watermark(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "media_failed")
        }
    };
    ApiError::new(status, code, err.to_string())
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedSessionBody {
    pub session: WireSession,
    pub links: Vec<LinkBody>,
    /// The version under review, for a session made from a media file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<WireVersion>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LinkBody {
    pub id: String,
    pub role: WireRole,
    /// Only present when the link was just minted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    pub expires_at: Option<u64>,
    pub revoked: bool,
    /// Whether joining through it needs a passcode too (never the
    /// passcode or its hash).
    #[serde(default)]
    pub has_passcode: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MintLink {
    role: WireRole,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_in_secs: Option<u64>,
    /// 4 to 64 printable ASCII characters (trimmed) that joining through
    /// the link will need besides its token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passcode: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct SessionBody {
    session: WireSession,
    state: WireSnapshot,
    links: Vec<LinkBody>,
}

/// An error as the API reports it: a status, a stable code and a sentence.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Sent as `Retry-After` and `retryAfterSecs` (a passcode lock).
    retry_after_secs: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    fn not_found(what: &str) -> ApiError {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }
}

impl std::error::Error for ApiError {}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut error = serde_json::json!({"code": self.code, "message": self.message});
        let Some(secs) = self.retry_after_secs else {
            return (self.status, Json(serde_json::json!({ "error": error }))).into_response();
        };
        error["retryAfterSecs"] = secs.into();
        let body = Json(serde_json::json!({ "error": error }));
        (self.status, [(header::RETRY_AFTER, secs.to_string())], body).into_response()
    }
}

/// Every route: the REST API and the page's files here, and `live`, the
/// routes of the live wire (`ws::routes`), which the caller hands in so
/// that HTTP does not reach into the WebSocket runtime that builds on it.
/// All of them pass the same guard and limits.
pub fn router(app: Arc<App>, live: Router<Arc<App>>) -> Router {
    Router::new()
        .route("/", get(ops::index))
        .route("/s/{id}", get(ops::index))
        .route("/app/{*path}", get(ops::asset))
        .merge(live)
        .route("/api/sessions", post(sessions::create_session))
        .route(
            "/api/sessions/{id}",
            get(sessions::get_session).delete(sessions::delete_session),
        )
        .route("/api/media", get(sessions::list_media))
        .route(
            "/api/uploads",
            post(uploads::create).options(uploads::options),
        )
        .route(
            "/api/uploads/{id}",
            axum::routing::head(uploads::head)
                .get(uploads::get)
                .patch(uploads::patch)
                .delete(uploads::delete)
                .options(uploads::options),
        )
        .route("/api/sessions/{id}/links", post(sessions::mint_link))
        .route("/api/sessions/{id}/end", post(sessions::end_session))
        .route(
            "/api/sessions/{id}/export/{format}",
            get(record::export_session),
        )
        .route(
            "/api/sessions/{id}/still/{frame}",
            get(record::session_still),
        )
        .route(
            "/api/sessions/{id}/frames/{checksum}/{frame}",
            get(frames::frame_png),
        )
        .route("/api/sessions/{id}/events", get(record::session_events))
        .route("/api/webhooks/deliveries", get(record::webhook_deliveries))
        .route("/api/cluster", get(cluster::nodes))
        .route("/api/cluster/drain", post(cluster::drain))
        .route(
            "/api/sessions/{id}/links/{link}",
            delete(sessions::revoke_link),
        )
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .fallback(|| async { ApiError::not_found("route") })
        // Without this axum answers a wrong method with an empty 405; every
        // error of ours has the JSON shape clients parse.
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this route does not take that method",
            )
        })
        // A body trickled in slower than this is cut off, so a slow sender
        // cannot hold a request (and its socket) open.
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            std::time::Duration::from_millis(app.config.limits.body_timeout_ms.max(1)),
        ))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            guard::check,
        ))
        .with_state(app)
}

/// The base of links: the configured public URL, else the Host header.
fn public_base(app: &App, headers: &HeaderMap) -> String {
    if !app.config.server.public_url.is_empty() {
        return app
            .config
            .server
            .public_url
            .trim_end_matches('/')
            .to_string();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .unwrap_or_else(|| app.config.server.bind.to_string());
    let scheme = if app.tls.is_some() { "https" } else { "http" };
    format!("{scheme}://{host}")
}

pub fn link_url(base: &str, session_id: &str, token: &str) -> String {
    format!("{base}/s/{session_id}#token={token}")
}

fn link_body(link: &Link, minted: Option<(&str, &str)>) -> LinkBody {
    LinkBody {
        id: link.id.clone(),
        role: link.role.into(),
        token: minted.map(|(token, _)| token.to_string()),
        url: minted.map(|(_, url)| url.to_string()),
        expires_at: link.expires_at,
        revoked: link.revoked,
        has_passcode: link.passcode.is_some(),
    }
}

pub fn created_body(created: &CreatedSession, base: &str) -> CreatedSessionBody {
    let id = &created.info.id;
    CreatedSessionBody {
        session: (&*created.info).into(),
        links: created
            .links
            .iter()
            .map(|m| {
                let url = link_url(base, id, &m.token);
                link_body(&m.link, Some((&m.token, &url)))
            })
            .collect(),
        version: created.version.clone(),
    }
}

/// A recorded version as the wire shows it.
pub fn wire_version(v: &VersionRow) -> WireVersion {
    WireVersion {
        id: v.id.clone(),
        item: v.item.clone(),
        number: v.number,
        checksum: v.checksum.clone(),
        size_bytes: v.size_bytes,
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// For what any node answers from the shared record (exports, the audit
/// trail): the caller holds a host link of this session, which may run
/// here or on another node of the cluster.
async fn require_host_anywhere(
    app: &Arc<App>,
    headers: &HeaderMap,
    peer: Peer,
    session_id: &str,
) -> Result<(), ApiError> {
    check_link_for(app, headers, peer, session_id, Some(Role::Host)).await?;
    match app.session(session_id).await {
        Ok(_) | Err(Unavailable::Elsewhere(_)) => Ok(()),
        Err(why) => Err(unavailable_error(why)),
    }
}

/// Checks that the caller holds a host link of this session.
async fn require_host(
    app: &Arc<App>,
    headers: &HeaderMap,
    peer: Peer,
    session_id: &str,
) -> Result<SessionHandle, ApiError> {
    require_link(app, headers, peer, session_id, Some(Role::Host)).await
}

/// The session, if the bearer token is a live link of it (of `role`, when
/// one is named) and the request carries the link's passcode, if it has
/// one.
async fn require_link(
    app: &Arc<App>,
    headers: &HeaderMap,
    peer: Peer,
    session_id: &str,
    role: Option<Role>,
) -> Result<SessionHandle, ApiError> {
    check_link_for(app, headers, peer, session_id, role).await?;
    // Checked after the link, so that an archived session is brought back
    // only for someone entitled to it.
    app.session(session_id).await.map_err(unavailable_error)
}

/// For what any node can answer from the shared record and media root
/// (stills): a link of session `session_id`, and the watermark its
/// pictures carry, from the session where it runs here or from the record
/// where another node of the cluster runs it.
async fn require_link_anywhere(
    app: &Arc<App>,
    headers: &HeaderMap,
    peer: Peer,
    session_id: &str,
) -> Result<Option<String>, ApiError> {
    check_link_for(app, headers, peer, session_id, None).await?;
    match app.session(session_id).await {
        Ok(session) => Ok(session.info.watermark.clone()),
        Err(Unavailable::Elsewhere(_)) => {
            let store = app.store.clone();
            let id = session_id.to_string();
            let row = tokio::task::spawn_blocking(move || store.session(&id))
                .await
                .map_err(|e| {
                    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
                })?
                .map_err(store_error)?
                .ok_or_else(|| ApiError::not_found("session"))?;
            Ok(row.watermark)
        }
        Err(why) => Err(unavailable_error(why)),
    }
}

fn unavailable_error(why: Unavailable) -> ApiError {
    match why {
        Unavailable::NotFound => ApiError::not_found("session"),
        Unavailable::Elsewhere(owner) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "session_elsewhere",
            format!("node {owner} runs this session; ask again through the cluster's address"),
        ),
        Unavailable::CutOff(why) => cluster::unavailable(why),
    }
}

/// The bearer is a live link of session `session_id` (of `role`, when
/// given) and its passcode, if it has one, was given.
async fn check_link_for(
    app: &Arc<App>,
    headers: &HeaderMap,
    peer: Peer,
    session_id: &str,
    role: Option<Role>,
) -> Result<(), ApiError> {
    let token = bearer(headers).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send Authorization: Bearer <link token>",
        )
    })?;
    let link = app.check_link(token, unix_now()).await.map_err(|err| {
        let code = match err {
            LinkError::Invalid => "invalid_token",
            LinkError::Expired => "link_expired",
            LinkError::Revoked => "link_revoked",
        };
        ApiError::new(StatusCode::UNAUTHORIZED, code, err.to_string())
    })?;
    if link.session_id != session_id {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this link is for another session",
        ));
    }
    if role.is_some_and(|role| link.role != role) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a host link of this session may do this",
        ));
    }
    let given = passcode::header_passcode(headers);
    app.check_passcode(&link, given.as_deref(), peer.0)
        .await
        .map_err(passcode::refusal_error)
}

/// Server-wide actions need the operator token; there always is one.
fn require_admin(app: &App, headers: &HeaderMap, what: &str) -> Result<(), ApiError> {
    if !bearer(headers).is_some_and(|token| app.operator.accepts(token)) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            format!(
                "{what} needs Authorization: Bearer <operator token> (server.admin_token, \
                 or the operator-token file in the server's data dir)"
            ),
        ));
    }
    Ok(())
}

/// What a recorded session streams once it is back.
struct Restored {
    media: Option<MediaSetup>,
    version: Option<WireVersion>,
    /// Why it comes back without its stream, to tell the room.
    media_error: Option<String>,
    playlist: Vec<PlaylistEntry>,
    entry: usize,
    /// Where its personal rooms stood, to reopen them there.
    rooms: Vec<PersonalRoomRow>,
}

/// A session's notes, drawings and decisions as the record holds them.
/// Blocking.
fn recorded_review(store: &Store, session_id: &str) -> Result<SessionReview, StoreError> {
    Ok(SessionReview::from_rows(
        &store.notes(session_id)?,
        &store.drawings(session_id)?,
        &store.approvals(session_id)?,
    ))
}

/// A session not opened because another node holds (or may hold) its
/// lease: `App::session` answers with the reason inside.
#[derive(Debug)]
struct NotOwner(Unavailable);

impl std::fmt::Display for NotOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "not opened here: {:?}", self.0)
    }
}

impl std::error::Error for NotOwner {}

/// Why a session cannot be served from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unavailable {
    /// No such session in the record.
    NotFound,
    /// Another node of the cluster (named) holds its lease.
    Elsewhere(String),
    /// This node cannot reach the cluster to ask who runs it (why).
    CutOff(String),
}

/// A recorded link as the link index keeps it.
fn link_of(row: crate::store::LinkRow) -> Link {
    Link {
        id: row.id,
        session_id: row.session_id,
        role: role_from_name(&row.role),
        expires_at: row.expires_at.map(|t| t.max(0) as u64),
        revoked: row.revoked,
        passcode: row.passcode_hash.map(Into::into),
    }
}
