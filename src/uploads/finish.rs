//! The end of an upload: the whole file verified against its declared
//! SHA-256, probed, its container checked, moved into the media root
//! under a name made here, and recorded as the item's next version. A
//! file that fails any step is removed with its upload; the media root
//! never sees it.

use std::path::{Path, PathBuf};

use super::staging::{Done, Info, Slot};
use super::{UploadError, Uploads, MEDIA_DIR};
use crate::store::{NewVersion, Record, Recorded, Write};
use crate::webhooks::Announcement;

impl Uploads {
    /// Finishes the upload whose last byte just arrived. Blocking steps run
    /// off the runtime.
    pub(super) async fn finish(
        &self,
        id: &str,
        slot: &Slot,
        info: &Info,
    ) -> Result<Done, UploadError> {
        let data = slot.data();
        let shown = PathBuf::from(&info.filename);
        let declared = info.sha256.clone();
        let config = self.config.clone();
        let store = self.store.clone();
        // Hashed as the chunks came, unless the server restarted since.
        let hashed = self.take_hash(id, info.length);
        let length = info.length;
        let checked = tokio::task::spawn_blocking(move || {
            let (checksum, size) = match hashed {
                Some(checksum) => (checksum, length),
                None => crate::media::checksum(&data).map_err(UploadError::Media)?,
            };
            if let Some(declared) = declared.filter(|d| *d != checksum) {
                return Err(UploadError::FileChecksum {
                    declared,
                    actual: checksum,
                });
            }
            let media = crate::media::probe::probe(&data)
                .map_err(|e| UploadError::Media(e.naming(&shown)))?;
            if !config.allowed_containers.contains(&media.container) {
                return Err(UploadError::Container(media.container));
            }
            let existing = store.version_with_checksum(&checksum)?;
            Ok((checksum, size, media, existing))
        })
        .await
        .map_err(|e| UploadError::Io(e.to_string()))?;
        let (checksum, size, media, existing) = match checked {
            Ok(checked) => checked,
            // What the file is does not change on a retry: it goes.
            Err(
                err @ (UploadError::FileChecksum { .. }
                | UploadError::Media(_)
                | UploadError::Container(_)),
            ) => {
                tracing::info!(upload = %id, %err, "an upload was refused at its end");
                slot.remove();
                self.forget(id);
                return Err(err);
            }
            Err(err) => return Err(err),
        };
        self.announce(
            "version.uploaded",
            info,
            serde_json::json!({
                "upload": id,
                "item": info.item,
                "filename": info.filename,
                "checksum": checksum,
                "sizeBytes": size,
            }),
        );
        // The same bytes already in the media root are not stored twice.
        let reuse = existing.filter(|v| {
            crate::media::resolve_in_root(&self.media_root, Path::new(&v.path)).is_ok()
        });
        let (relative, moved) = match reuse {
            Some(v) => (v.path, None),
            None => {
                let root = self.media_root.clone();
                let name = stored_name(&info.filename, &checksum, &media.container);
                let data = slot.data();
                let placed = tokio::task::spawn_blocking(move || place(&root, &data, &name))
                    .await
                    .map_err(|e| UploadError::Io(e.to_string()))??;
                (placed.0, Some(placed.1))
            }
        };
        let recorded = self
            .store
            .record(Record::Version(NewVersion {
                item: info.item.clone(),
                path: relative.clone(),
                checksum: checksum.clone(),
                size_bytes: size as i64,
                created_at: crate::server_clock::unix_millis(),
            }))
            .await
            .unwrap_or(Err(crate::store::StoreError::Closed));
        let (row, new) = match recorded {
            Ok((Recorded::Version(row), new)) => (row, new),
            other => {
                // Put the bytes back, so that the client's retry (a PATCH
                // at the full length) finishes it again.
                if let Some(placed) = &moved {
                    let _ = std::fs::rename(placed, slot.data());
                }
                return Err(match other {
                    Err(err) => err.into(),
                    Ok(_) => UploadError::Io("a version came back as another record".into()),
                });
            }
        };
        if let Some(placed) = &moved {
            // The item already had these bytes, under a file we did not
            // know (recorded before uploads): keep one copy.
            if !new && row.path != relative {
                let _ = std::fs::remove_file(placed);
            }
        }
        if let Some(placed) = moved.as_ref().filter(|_| new) {
            self.remember_checksum(placed, &checksum).await;
        }
        let done = Done {
            version_id: row.id.clone(),
            item: row.item.clone(),
            number: row.number,
            checksum: row.checksum.clone(),
            size_bytes: row.size_bytes,
            media: row.path.clone(),
            duplicate: moved.is_none() || !new,
        };
        slot.finish(&done)?;
        if self.proxies.wants(&media) {
            // Where the bytes now are (or already were).
            let source = crate::media::MediaInfo {
                path: self.media_root.join(&row.path),
                ..media.clone()
            };
            let (item, number) = (row.item.clone(), row.number);
            self.proxies
                .request(&row.checksum, source, move |made| match made {
                    Ok(_) => {
                        tracing::info!(%item, number, "the version plays from its review proxy")
                    }
                    Err(why) => {
                        tracing::warn!(%item, number, %why, "the version plays from its source")
                    }
                });
        }
        if let Some(session_id) = &info.session {
            // In the session's audit trail by the time the client hears
            // of the version; the version itself is already recorded.
            let logged = self
                .store
                .write_acked(Write::Event {
                    session_id: session_id.clone(),
                    at: crate::server_clock::unix_millis(),
                    kind: "version_uploaded".into(),
                    detail: format!("{} v{} ({})", row.item, row.number, row.path),
                })
                .await;
            if !matches!(logged, Ok(Ok(()))) {
                tracing::warn!(upload = %id, "the session's audit trail missed an upload");
            }
        }
        self.announce(
            "version.ready",
            info,
            serde_json::json!({
                "upload": id,
                "version": {
                    "id": row.id,
                    "item": row.item,
                    "number": row.number,
                    "checksum": row.checksum,
                    "sizeBytes": row.size_bytes,
                    "media": row.path,
                },
                "duplicate": done.duplicate,
                "durationFrames": media.duration_frames,
                "width": media.width,
                "height": media.height,
                "container": media.container,
                "videoCodec": media.video_codec,
            }),
        );
        tracing::info!(upload = %id, item = %row.item, number = row.number, duplicate = done.duplicate, "upload finished");
        Ok(done)
    }

    /// Files the checksum as `App::checksum_of` looks it up (canonical
    /// path, size, mtime), so a session made from a file of tens of GB
    /// does not hash it all again.
    async fn remember_checksum(&self, placed: &Path, checksum: &str) {
        let Ok(path) = placed.canonicalize() else {
            return;
        };
        // The same stamp as `checksum_of` takes, or it would never match.
        let stamp = std::fs::metadata(&path).ok().and_then(|m| {
            let mtime = m
                .modified()
                .ok()?
                .duration_since(std::time::UNIX_EPOCH)
                .ok()?;
            Some((
                i64::try_from(m.len()).ok()?,
                i64::try_from(mtime.as_nanos()).ok()?,
            ))
        });
        let Some((size_bytes, mtime_ns)) = stamp else {
            return;
        };
        // Acked, so that a session made right after finds it; a miss only
        // costs a hash later.
        let _ = self
            .store
            .write_acked(Write::Checksum {
                path: path.to_string_lossy().to_string(),
                size_bytes,
                mtime_ns,
                checksum: checksum.to_string(),
            })
            .await;
    }

    fn announce(&self, event: &'static str, info: &Info, data: serde_json::Value) {
        self.webhooks.announce(Announcement {
            event,
            session_id: info.session.clone().unwrap_or_default(),
            data,
        });
    }
}

/// The name a finished upload gets under the media root: the client's
/// stem cut down to safe characters, the checksum's head (so that two
/// uploads of the same name differ), and an extension.
fn stored_name(filename: &str, checksum: &str, container: &str) -> String {
    let path = Path::new(filename);
    let stem: String = path
        .file_stem()
        .map(|s| s.to_string_lossy())
        .unwrap_or_default()
        .chars()
        .map(|c| match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' => c,
            _ => '_',
        })
        .take(80)
        .collect();
    let stem = stem.trim_matches('_');
    let stem = if stem.is_empty() { "upload" } else { stem };
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .filter(|e| (1..=8).contains(&e.len()) && e.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| match container {
            "mov" | "mp4" | "mxf" | "mkv" | "webm" | "avi" => container.to_string(),
            "mpegts" => "ts".into(),
            _ => "bin".into(),
        });
    format!("{stem}-{}.{ext}", &checksum[..16.min(checksum.len())])
}

/// Moves `data` into `<root>/uploads/` as `name` (another name if that
/// one is taken) and returns (the path relative to the root, the path).
/// Staging and media root on one disk: a rename, atomic. On two: a copy
/// to a dot-name beside it, synced, then the rename.
fn place(root: &Path, data: &Path, name: &str) -> Result<(String, PathBuf), UploadError> {
    let dir = root.join(MEDIA_DIR);
    std::fs::create_dir_all(&dir)?;
    let (stem, ext) = name.rsplit_once('.').unwrap_or((name, "bin"));
    let mut chosen = name.to_string();
    // Bounded: a random id makes a taken name vanishingly unlikely.
    for _ in 0..16 {
        if !dir.join(&chosen).exists() {
            break;
        }
        chosen = format!("{stem}-{}.{ext}", crate::links::random_id());
    }
    let target = dir.join(&chosen);
    match std::fs::rename(data, &target) {
        Ok(()) => {}
        Err(err) if err.raw_os_error() == Some(libc::EXDEV) => {
            let partial = dir.join(format!(".{chosen}.partial"));
            let copied = std::fs::copy(data, &partial)
                .and_then(|_| std::fs::File::open(&partial)?.sync_all())
                .and_then(|()| std::fs::rename(&partial, &target));
            if let Err(err) = copied {
                let _ = std::fs::remove_file(&partial);
                return Err(err.into());
            }
            std::fs::remove_file(data)?;
        }
        Err(err) => return Err(err.into()),
    }
    Ok((format!("{MEDIA_DIR}/{chosen}"), target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_plain_and_keep_a_safe_extension() {
        let sum = "0123456789abcdef".repeat(4);
        assert_eq!(
            stored_name("Shot 010 v2.MOV", &sum, "mov"),
            "Shot_010_v2-0123456789abcdef.mov"
        );
        assert_eq!(
            stored_name("clip.m o v", &sum, "mkv"),
            "clip-0123456789abcdef.mkv"
        );
        assert_eq!(
            stored_name("ë", &sum, "mpegts"),
            "upload-0123456789abcdef.ts"
        );
    }
}
