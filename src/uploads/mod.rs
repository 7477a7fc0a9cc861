//! Resumable uploads into the media root: the staging area, the checks
//! before a byte is accepted (size, quota, free space), the append that
//! keeps the disk the only truth about an upload's offset, and the finish
//! that verifies, probes, moves into the media root and records a version.
//!
//! This module speaks tus 1.0's semantics (offsets, per-chunk checksums,
//! expiry) but no HTTP: `http::uploads` turns requests into these calls
//! and [`UploadError`]s into typed refusals. It is an edge: it never
//! reaches into the live runtime, the wire or HTTP.
//!
//! Nothing reaches the media root before it is whole, verified and
//! probed, and then it arrives by a rename under a name the server makes
//! up, so no client-given name can point anywhere.

mod finish;
pub mod proxies;
pub mod staging;
pub mod tus;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

pub use staging::{Done, Info};
use staging::{Slot, Staging};

use crate::config::UploadsConfig;
use crate::store::Store;
use crate::webhooks::Webhooks;

/// The directory under the media root that uploads are moved into.
pub const MEDIA_DIR: &str = "uploads";
/// How long a PATCH waits for another one on the same upload (a client
/// resuming before the server has noticed its dropped connection).
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// Bytes gathered before each write to disk.
const WRITE_CHUNK: usize = 4 << 20;

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// The operator credential: any upload.
    Operator,
    /// A host link of this session: that session's uploads only.
    Host { session_id: String },
}

/// An upload as a client asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUpload {
    pub length: u64,
    pub filename: String,
    /// The media item; `None`: the file name without its extension.
    pub item: Option<String>,
    pub session: Option<String>,
    /// The whole file's SHA-256, lower-case hex.
    pub sha256: Option<String>,
}

/// Where an upload stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub id: String,
    pub offset: u64,
    pub info: Info,
    /// The version it became, once finished.
    pub done: Option<Done>,
    /// This request finished it (a HEAD after the last byte was in).
    pub finished_now: bool,
}

/// Why an upload request is refused. Each leaves the upload as it was
/// before the request, except where it says it is removed.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// No such upload (never made, removed, or finished and expired).
    #[error("no such upload")]
    NotFound,
    /// The upload expired and is removed.
    #[error("this upload expired and was removed; start again")]
    Expired,
    /// The credential may not touch this upload.
    #[error("{0}")]
    Forbidden(String),
    /// A bad filename, item, session or length.
    #[error("{0}")]
    BadRequest(String),
    /// The file's name could lead out of the media root.
    #[error("{0:?} is not a plain file name (no paths, no leading dot, no control characters)")]
    BadFilename(String),
    /// Longer than `uploads.max_size_bytes`.
    #[error("the file is {length} bytes; this server takes at most {max}")]
    TooLarge { length: u64, max: u64 },
    /// Uploaded media would exceed `uploads.quota_bytes`.
    #[error("uploaded media would take {needed} bytes, over the quota of {quota}")]
    OverQuota { needed: u64, quota: u64 },
    /// Not enough free space (the reserve counted), or the disk filled up
    /// mid-write; in that case the upload is removed.
    #[error("{0}")]
    DiskFull(String),
    /// The request's offset is not the upload's.
    #[error("the upload is at byte {expected}, not {given}")]
    OffsetMismatch { expected: u64, given: u64 },
    /// More bytes than the declared length.
    #[error("the upload is {length} bytes; this chunk goes past its end")]
    PastEnd { length: u64 },
    /// The chunk's `Upload-Checksum` does not match its bytes: the chunk is
    /// discarded.
    #[error("the chunk's sha256 does not match its bytes; it was discarded, send it again")]
    ChunkChecksum,
    /// The whole file's SHA-256 is not the one declared: the upload is removed.
    #[error("the file's sha256 is {actual}, not the {declared} declared; the upload was removed")]
    FileChecksum { declared: String, actual: String },
    /// GStreamer cannot use the file: the upload is removed.
    #[error("{0}; the upload was removed")]
    Media(crate::media::MediaError),
    /// A container `uploads.allowed_containers` does not list: removed.
    #[error(
        "the file is a {0:?} container, which this server does not take; the upload was removed"
    )]
    Container(String),
    /// Another request is writing to this upload.
    #[error("another request is writing to this upload; try again")]
    Locked,
    /// The connection dropped mid-chunk; what arrived is kept (unless the
    /// chunk had a checksum).
    #[error("the request body stopped: {0}")]
    Interrupted(String),
    /// The record refused the version.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("upload storage failed: {0}")]
    Io(String),
}

impl From<std::io::Error> for UploadError {
    fn from(err: std::io::Error) -> UploadError {
        if is_disk_full(&err) {
            return UploadError::DiskFull("the disk is full".into());
        }
        UploadError::Io(err.to_string())
    }
}

fn is_disk_full(err: &std::io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// What one PATCH did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    pub offset: u64,
    pub expires: u64,
    /// The version made, when this request brought the last byte.
    pub done: Option<Done>,
    /// The session the upload was made for, if any.
    pub session: Option<String>,
}

/// The uploads of one server.
#[derive(Debug)]
pub struct Uploads {
    staging: Staging,
    media_root: PathBuf,
    config: UploadsConfig,
    store: Store,
    webhooks: Webhooks,
    /// One writer per upload at a time.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Each upload's whole-file SHA-256 so far and the offset it covers,
    /// kept as the chunks arrive so that the finish need not read a file
    /// of tens of GB again. Lost in a restart: then the finish reads it.
    hashes: Mutex<HashMap<String, (u64, Sha256)>>,
    /// Held while an upload is admitted, so that two creations cannot both
    /// count the same free space.
    admitting: Mutex<()>,
    /// Review proxies of the heavy sources uploaded.
    proxies: Arc<proxies::Proxies>,
}

impl Uploads {
    /// The staging area is `<data_dir>/uploads`; removes what a crash left
    /// half-made and what has expired.
    pub fn open(
        data_dir: &Path,
        media_root: PathBuf,
        config: UploadsConfig,
        store: Store,
        webhooks: Webhooks,
        proxy: crate::media::proxy::ProxySpec,
    ) -> std::io::Result<Uploads> {
        let rule = proxies::ProxyRule {
            codecs: config.proxy_codecs.clone(),
            above_pixels: config.proxy_above_pixels,
        };
        let proxies = Arc::new(proxies::Proxies::new(
            &media_root,
            proxy,
            rule,
            config.proxy_concurrency,
        ));
        let uploads = Uploads {
            proxies,
            staging: Staging::open(data_dir.join("uploads"))?,
            media_root,
            config,
            store,
            webhooks,
            locks: Mutex::new(HashMap::new()),
            hashes: Mutex::new(HashMap::new()),
            admitting: Mutex::new(()),
        };
        uploads.sweep();
        Ok(uploads)
    }

    pub fn config(&self) -> &UploadsConfig {
        &self.config
    }

    /// The review proxies of uploaded media.
    pub fn proxies(&self) -> &proxies::Proxies {
        &self.proxies
    }

    /// At start: requests again the proxies a restart interrupted.
    /// Blocking (probes each source).
    pub fn resume_proxies(&self) {
        for (checksum, source) in self.proxies.interrupted() {
            match crate::media::probe::probe(&source) {
                Ok(info) => self.proxies.request(&checksum, info, |_| {}),
                Err(err) => {
                    tracing::warn!(%checksum, %err, "an interrupted proxy's source is gone")
                }
            }
        }
    }

    /// Admits a new upload: checks its name, size, the quota and free
    /// space, then makes it. Blocking (file system).
    pub fn create(&self, access: &Access, new: NewUpload) -> Result<Status, UploadError> {
        if let Access::Host { session_id } = access {
            if new.session.as_deref() != Some(session_id) {
                return Err(UploadError::Forbidden(
                    "a host link uploads into its own session: send session in Upload-Metadata"
                        .into(),
                ));
            }
        }
        check_filename(&new.filename)?;
        let item = match new.item.as_deref().map(str::trim) {
            Some(item) if item.is_empty() || item.chars().count() > 200 => {
                return Err(UploadError::BadRequest(
                    "item must be 1 to 200 characters".into(),
                ))
            }
            Some(item) => item.to_string(),
            None => Path::new(&new.filename)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| new.filename.clone()),
        };
        if new.length == 0 {
            return Err(UploadError::BadRequest("an empty file is no media".into()));
        }
        if new.length > self.config.max_size_bytes {
            return Err(UploadError::TooLarge {
                length: new.length,
                max: self.config.max_size_bytes,
            });
        }
        self.sweep();
        // A fresh server's media root (`<data_dir>/media`) may not exist
        // yet; its disk's free space is asked for below.
        std::fs::create_dir_all(&self.media_root)?;
        let _admitting = self.admitting.lock().expect("admitting lock");
        // What the uploads under way still need, besides this one.
        let pending: u64 = self
            .staging
            .all()
            .iter()
            .filter(|(_, slot, _)| slot.data().exists())
            .map(|(_, slot, info)| info.length - slot.offset(info).unwrap_or(0).min(info.length))
            .fold(0u64, u64::saturating_add);
        let stored = staging::tree_size(&self.media_root.join(MEDIA_DIR));
        let needed = stored.saturating_add(pending).saturating_add(new.length);
        if needed > self.config.quota_bytes {
            return Err(UploadError::OverQuota {
                needed,
                quota: self.config.quota_bytes,
            });
        }
        let reserve = self.config.reserve_free_bytes;
        let free = free_bytes(&self.staging.root)?;
        let wanted = pending.saturating_add(new.length).saturating_add(reserve);
        if free < wanted {
            return Err(UploadError::DiskFull(format!(
                "the staging disk has {free} bytes free; this upload needs {wanted} (with {pending} \
                 for uploads under way and {reserve} kept in reserve)"
            )));
        }
        if !same_disk(&self.staging.root, &self.media_root) {
            let free = free_bytes(&self.media_root)?;
            let wanted = new.length.saturating_add(reserve);
            if free < wanted {
                return Err(UploadError::DiskFull(format!(
                    "the media disk has {free} bytes free; this upload needs {wanted}"
                )));
            }
        }
        let now = now_secs();
        let info = Info {
            length: new.length,
            filename: new.filename,
            item,
            session: new.session,
            sha256: new.sha256,
            created: now,
            expires: now.saturating_add(self.config.expire_secs),
        };
        let id = tus::hex(&rand::random::<[u8; 16]>());
        let made = self.staging.create(&id, &info);
        made.map_err(|err| match is_disk_full(&err) {
            true => UploadError::DiskFull("the staging disk is full".into()),
            false => UploadError::Io(err.to_string()),
        })?;
        Ok(Status {
            id,
            offset: 0,
            info,
            done: None,
            finished_now: false,
        })
    }

    /// Where the upload stands (HEAD). A request still writing to it is
    /// waited for, so that the offset is what that request left on disk,
    /// not a moment of it.
    pub async fn status(&self, access: &Access, id: &str) -> Result<Status, UploadError> {
        self.find(access, id)?;
        let lock = self.lock_of(id);
        let _writing = tokio::time::timeout(LOCK_WAIT, lock.lock())
            .await
            .map_err(|_| UploadError::Locked)?;
        let (slot, info) = self.find(access, id)?;
        slot.recover()?;
        let offset = slot.offset(&info)?;
        let mut done = slot.done()?;
        // Every byte is here but the server stopped before finishing (a
        // crash, a body cut after its last byte): a client told "all
        // there" would consider it done, so it is finished now.
        let finished_now = done.is_none() && offset == info.length;
        if finished_now {
            done = Some(self.finish(id, &slot, &info).await?);
        }
        Ok(Status {
            id: id.to_string(),
            offset,
            done,
            info,
            finished_now,
        })
    }

    /// Removes an upload (DELETE): its bytes go; a version it already
    /// became stays. Waits for a writer to stop.
    pub async fn terminate(&self, access: &Access, id: &str) -> Result<(), UploadError> {
        self.find(access, id)?;
        let lock = self.lock_of(id);
        let _writing = tokio::time::timeout(LOCK_WAIT, lock.lock())
            .await
            .map_err(|_| UploadError::Locked)?;
        let (slot, _) = self.find(access, id)?;
        slot.remove();
        self.forget(id);
        Ok(())
    }

    /// Appends a request body at `offset` (PATCH). With `checksum`, the
    /// chunk counts only if its SHA-256 matches, else it is discarded. A
    /// body that stops early keeps what arrived (without a checksum).
    /// The request that brings the last byte finishes the upload.
    ///
    /// The work runs in a task of its own that holds the upload's lock:
    /// a request whose connection drops may have its handler dropped, but
    /// the task still settles the disk (keeps or truncates) before anyone
    /// else may write.
    pub async fn append<S, E>(
        self: &Arc<Self>,
        access: &Access,
        id: &str,
        offset: u64,
        checksum: Option<[u8; 32]>,
        body: S,
    ) -> Result<Appended, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        self.find(access, id)?;
        let lock = self.lock_of(id);
        let writing = tokio::time::timeout(LOCK_WAIT, lock.lock_owned())
            .await
            .map_err(|_| UploadError::Locked)?;
        let this = self.clone();
        let (access, id) = (access.clone(), id.to_string());
        tokio::spawn(async move {
            let _writing = writing;
            this.append_locked(&access, &id, offset, checksum, body)
                .await
        })
        .await
        .map_err(|e| UploadError::Io(e.to_string()))?
    }

    async fn append_locked<S, E>(
        &self,
        access: &Access,
        id: &str,
        offset: u64,
        checksum: Option<[u8; 32]>,
        body: S,
    ) -> Result<Appended, UploadError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let (slot, info) = self.find(access, id)?;
        slot.recover()?;
        if let Some(done) = slot.done()? {
            if offset != info.length {
                return Err(UploadError::OffsetMismatch {
                    expected: info.length,
                    given: offset,
                });
            }
            return Ok(Appended {
                offset,
                expires: info.expires,
                done: Some(done),
                session: info.session.clone(),
            });
        }
        let at = slot.offset(&info)?;
        if offset != at {
            return Err(UploadError::OffsetMismatch {
                expected: at,
                given: offset,
            });
        }
        let start_hash = self.hash_at(id, at);
        let (written, hashed) =
            write_body(&slot, at, info.length, checksum, start_hash, body).await;
        self.keep_hash(id, hashed);
        let end = match written {
            Ok(end) => end,
            Err(UploadError::DiskFull(why)) => {
                // A full disk is not a state to resume from: nothing of
                // this upload stays to hold the space.
                slot.remove();
                self.forget(id);
                return Err(UploadError::DiskFull(format!(
                    "{why}; the upload was removed, start again once there is room"
                )));
            }
            Err(err) => return Err(err),
        };
        let done = match end == info.length {
            true => Some(self.finish(id, &slot, &info).await?),
            false => None,
        };
        Ok(Appended {
            offset: end,
            expires: info.expires,
            done,
            session: info.session.clone(),
        })
    }

    /// Removes expired uploads. Blocking.
    pub fn sweep(&self) {
        let now = now_secs();
        for (id, slot, info) in self.staging.all() {
            if info.expires <= now {
                tracing::info!(upload = %id, "an upload expired and was removed");
                slot.remove();
                self.forget(&id);
            }
        }
    }

    /// The upload `id` if `access` may touch it; an expired one is removed.
    fn find(&self, access: &Access, id: &str) -> Result<(Slot, Info), UploadError> {
        let slot = self.staging.slot(id).ok_or(UploadError::NotFound)?;
        let info = slot.info()?;
        if let Access::Host { session_id } = access {
            if info.session.as_deref() != Some(session_id) {
                return Err(UploadError::Forbidden(
                    "this upload belongs to another session".into(),
                ));
            }
        }
        if info.expires <= now_secs() {
            slot.remove();
            self.forget(id);
            return Err(UploadError::Expired);
        }
        Ok((slot, info))
    }

    fn lock_of(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .expect("upload locks")
            .entry(id.to_string())
            .or_default()
            .clone()
    }

    fn forget(&self, id: &str) {
        self.locks.lock().expect("upload locks").remove(id);
        self.hashes.lock().expect("upload hashes").remove(id);
    }

    /// The whole-file hash up to `offset`, if it was kept that far (a
    /// fresh one at 0).
    fn hash_at(&self, id: &str, offset: u64) -> Option<Sha256> {
        if offset == 0 {
            return Some(Sha256::new());
        }
        let mut hashes = self.hashes.lock().expect("upload hashes");
        match hashes.remove(id) {
            Some((at, hasher)) if at == offset => Some(hasher),
            _ => None,
        }
    }

    fn keep_hash(&self, id: &str, hashed: Option<(u64, Sha256)>) {
        let mut hashes = self.hashes.lock().expect("upload hashes");
        match hashed {
            Some(state) => hashes.insert(id.to_string(), state),
            None => hashes.remove(id),
        };
    }

    /// The whole file's SHA-256 (hex) if the chunks' hashing covered all
    /// `length` bytes.
    pub(super) fn take_hash(&self, id: &str, length: u64) -> Option<String> {
        let mut hashes = self.hashes.lock().expect("upload hashes");
        match hashes.remove(id) {
            Some((at, hasher)) if at == length => Some(tus::hex(&hasher.finalize())),
            _ => None,
        }
    }
}

/// Writes `body` to the end of the upload's data (at `start`), at most
/// up to `length`. Returns the new offset. Whatever fails leaves the data
/// at `start`, except a body that stops early without a checksum, whose
/// bytes so far are kept and flushed. `file_hash` (the whole file's
/// hash up to `start`, if known) comes back covering what the data holds
/// once settled, with the offset it covers, or `None` if that is not
/// certain.
async fn write_body<S, E>(
    slot: &Slot,
    start: u64,
    length: u64,
    checksum: Option<[u8; 32]>,
    file_hash: Option<Sha256>,
    body: S,
) -> (Result<u64, UploadError>, Option<(u64, Sha256)>)
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let mut hashed = None;
    let written =
        write_and_settle(slot, start, length, checksum, file_hash, body, &mut hashed).await;
    (written, hashed)
}

async fn write_and_settle<S, E>(
    slot: &Slot,
    start: u64,
    length: u64,
    checksum: Option<[u8; 32]>,
    file_hash: Option<Sha256>,
    mut body: S,
    hashed: &mut Option<(u64, Sha256)>,
) -> Result<u64, UploadError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    if checksum.is_some() {
        // Until this chunk is verified, a crash must not leave its bytes
        // counted: `Slot::recover` cuts the data back to here.
        slot.mark_unverified(start)?;
    }
    let file = std::fs::OpenOptions::new().append(true).open(slot.data())?;
    // If the chunk is cut off, the file's hash goes back to here.
    let hash_at_start = file_hash.clone();
    let mut writer = Some(Writer {
        file,
        hasher: checksum.map(|_| Sha256::new()),
        file_hasher: file_hash,
        written: start,
    });
    let mut pending: Vec<u8> = Vec::with_capacity(WRITE_CHUNK);
    // The bytes taken from the body so far, written or not.
    let mut received = start;
    // One block is written (and hashed) while the next is read from the
    // socket: at most two blocks in memory per request.
    let mut in_flight: Option<tokio::task::JoinHandle<(Writer, std::io::Result<()>)>> = None;
    let mut failure = None;
    loop {
        let next = body.next().await;
        let chunk = match next {
            Some(Ok(chunk)) => chunk,
            Some(Err(err)) => {
                failure = Some(UploadError::Interrupted(err.to_string()));
                break;
            }
            None => break,
        };
        if received + chunk.len() as u64 > length {
            failure = Some(UploadError::PastEnd { length });
            break;
        }
        received += chunk.len() as u64;
        pending.extend_from_slice(&chunk);
        if pending.len() >= WRITE_CHUNK {
            if let Some(writing) = in_flight.take() {
                let (w, result) = writing.await.map_err(|e| UploadError::Io(e.to_string()))?;
                writer = Some(w);
                if let Err(err) = result {
                    failure = Some(err.into());
                    break;
                }
            }
            let full = std::mem::replace(&mut pending, Vec::with_capacity(WRITE_CHUNK));
            let w = writer.take().expect("writer is back");
            in_flight = Some(tokio::task::spawn_blocking(move || w.write(full)));
        }
    }
    if let Some(writing) = in_flight.take() {
        let (w, result) = writing.await.map_err(|e| UploadError::Io(e.to_string()))?;
        writer = Some(w);
        if let Err(err) = result {
            // The disk's refusal outranks the body's: it is what to report.
            failure = Some(err.into());
        }
    }
    let w = writer.take().expect("writer is back");
    let keep_partial = checksum.is_none() && matches!(failure, Some(UploadError::Interrupted(_)));
    let (end, result, settled_hash) = tokio::task::spawn_blocking(move || {
        let (w, written) = match (&failure, keep_partial) {
            (None, _) | (_, true) => w.write(pending),
            (Some(_), false) => (w, Ok(())),
        };
        let outcome = match (failure, written) {
            (_, Err(err)) => Err(UploadError::from(err)),
            (Some(failure), Ok(())) => Err(failure),
            (None, Ok(())) => match (checksum, w.hasher.clone().map(Sha256::finalize)) {
                (Some(want), Some(got)) if got.as_slice() != want => {
                    Err(UploadError::ChunkChecksum)
                }
                _ => Ok(()),
            },
        };
        let keep = outcome.is_ok() || keep_partial;
        let settled = match keep {
            // Acknowledged bytes are on the disk, not just in its cache.
            true => w.file.sync_data(),
            false => w.file.set_len(start).and_then(|()| w.file.sync_data()),
        };
        let end = if keep { w.written } else { start };
        let settled_hash = match (&settled, keep) {
            (Ok(()), true) => w.file_hasher.map(|h| (end, h)),
            (Ok(()), false) => hash_at_start.map(|h| (start, h)),
            (Err(_), _) => None,
        };
        let (end, result) = match (outcome, settled) {
            (Err(err), _) => (end, Err(err)),
            (Ok(()), Err(err)) => (start, Err(UploadError::from(err))),
            (Ok(()), Ok(())) => (end, Ok(())),
        };
        (end, result, settled_hash)
    })
    .await
    .map_err(|e| UploadError::Io(e.to_string()))?;
    *hashed = settled_hash;
    if checksum.is_some() {
        slot.clear_unverified()?;
    }
    result.map(|()| end)
}

/// The open data file of one PATCH, moved in and out of blocking tasks.
struct Writer {
    file: std::fs::File,
    /// This chunk's, when it came with a checksum.
    hasher: Option<Sha256>,
    /// The whole file's, when it is known up to where this chunk began.
    file_hasher: Option<Sha256>,
    /// The data's length once this writer's bytes are in.
    written: u64,
}

impl Writer {
    fn write(mut self, bytes: Vec<u8>) -> (Writer, std::io::Result<()>) {
        use std::io::Write;
        let result = self.file.write_all(&bytes);
        match &result {
            Ok(()) => {
                self.written += bytes.len() as u64;
                if let Some(hasher) = &mut self.hasher {
                    hasher.update(&bytes);
                }
                if let Some(hasher) = &mut self.file_hasher {
                    hasher.update(&bytes);
                }
            }
            // A short write leaves part of it on disk: the length says
            // where the data really ends, and no hash covers it.
            Err(_) => {
                self.file_hasher = None;
                if let Ok(meta) = self.file.metadata() {
                    self.written = meta.len();
                }
            }
        }
        (self, result)
    }
}

/// A client's file name is only ever a stem and an extension: no
/// separators, no `..`, no leading dot, no control characters.
fn check_filename(name: &str) -> Result<(), UploadError> {
    let bad = name.is_empty()
        || name.chars().count() > 255
        || name.starts_with('.')
        || name.contains(['/', '\\', '\0'])
        || name.chars().any(char::is_control)
        || name == "..";
    match bad {
        true => Err(UploadError::BadFilename(name.to_string())),
        false => Ok(()),
    }
}

fn now_secs() -> u64 {
    (crate::server_clock::unix_millis() / 1000).max(0) as u64
}

/// Bytes free to an unprivileged writer on the disk holding `path`.
fn free_bytes(path: &Path) -> std::io::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid NUL-terminated path and a zeroed struct statvfs
    // fills in; nothing is kept past the call.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // The fields are u32 on some targets, u64 on others.
    #[allow(clippy::useless_conversion)]
    let (blocks, size) = (u64::from(stat.f_bavail), u64::from(stat.f_frsize));
    Ok(blocks.saturating_mul(size))
}

/// Whether two existing directories are on the same file system (a
/// rename between them is atomic).
fn same_disk(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_be_paths() {
        for ok in ["shot.mov", "Shot 010 v2.mxf", "a..b.mov", "été.mp4"] {
            assert!(check_filename(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "../x.mov",
            "a/b.mov",
            "a\\b.mov",
            ".hidden.mov",
            "..",
            "a\nb.mov",
            "a\0b",
        ] {
            assert!(check_filename(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn free_space_is_read_from_the_disk() {
        assert!(free_bytes(&std::env::temp_dir()).unwrap() > 0);
        assert!(free_bytes(Path::new("/no/such/dir")).is_err());
        assert!(same_disk(&std::env::temp_dir(), &std::env::temp_dir()));
    }
}
