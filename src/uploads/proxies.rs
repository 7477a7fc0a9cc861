//! The proxy queue: which uploads get a review proxy, the transcodes in
//! the background (at most `uploads.proxy_concurrency` at once), and what
//! became of each.
//!
//! A proxy is a cache of its source's bytes, so it is filed under the
//! source's SHA-256 in `<media root>/proxies/`: `<checksum>.mov` once it
//! is made and checked, `<checksum>.pending` (the source's path) while it
//! is wanted, `<checksum>.failed` (why) when the transcode failed. The
//! disk is the truth, so a restart goes on with what was pending and a
//! failure is reported, never retried by itself (remove the `.failed`
//! file to try again). Progress lives in memory only.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::media::proxy::ProxySpec;
use crate::media::MediaInfo;

/// The directory under the media root that proxies live in.
pub const PROXY_DIR: &str = "proxies";

/// What became of a source's proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyState {
    /// Wanted, waiting for a transcode slot.
    Pending,
    /// Being made: ‰ of the source done.
    Making(u32),
    Ready(PathBuf),
    /// The transcode failed; the source plays as it is.
    Failed(String),
}

impl ProxyState {
    /// The word the REST API uses.
    pub fn name(&self) -> &'static str {
        match self {
            ProxyState::Pending => "pending",
            ProxyState::Making(_) => "making",
            ProxyState::Ready(_) => "ready",
            ProxyState::Failed(_) => "failed",
        }
    }
}

/// Which sources are too heavy to play as they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyRule {
    /// Lower-case pieces of the probe's codec name (`prores`, `dnxhd`…).
    pub codecs: Vec<String>,
    /// Sources with more pixels than this get one whatever their codec.
    pub above_pixels: u64,
}

impl ProxyRule {
    pub fn wants(&self, info: &MediaInfo) -> bool {
        let codec = info.video_codec.to_lowercase();
        let heavy_codec = self
            .codecs
            .iter()
            .any(|c| !c.is_empty() && codec.contains(&c.to_lowercase()));
        let pixels = u64::from(info.width) * u64::from(info.height);
        heavy_codec || pixels > self.above_pixels
    }
}

/// A proxy made: sessions running its source move their players to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyMade {
    /// The source's SHA-256 (hex).
    pub checksum: String,
    pub path: PathBuf,
}

/// The proxies of one media root.
#[derive(Debug)]
pub struct Proxies {
    dir: PathBuf,
    spec: ProxySpec,
    rule: ProxyRule,
    slots: Arc<tokio::sync::Semaphore>,
    /// Progress of the transcodes under way, by source checksum.
    making: Mutex<std::collections::HashMap<String, Arc<AtomicU32>>>,
    /// Failures whose `.failed` note could not be written (a full disk):
    /// still reported until a restart.
    failed: Mutex<std::collections::HashMap<String, String>>,
    /// Told of each proxy made; whoever runs sessions listens.
    made: tokio::sync::broadcast::Sender<ProxyMade>,
}

impl Proxies {
    pub fn new(media_root: &Path, spec: ProxySpec, rule: ProxyRule, concurrency: usize) -> Proxies {
        Proxies {
            dir: media_root.join(PROXY_DIR),
            spec,
            rule,
            slots: Arc::new(tokio::sync::Semaphore::new(concurrency.max(1))),
            making: Mutex::new(Default::default()),
            failed: Mutex::new(Default::default()),
            // Proxies are made one or two at a time; a listener that falls
            // this far behind misses some and is told it lagged.
            made: tokio::sync::broadcast::channel(16).0,
        }
    }

    /// Each proxy as it is made, from now on.
    pub fn made(&self) -> tokio::sync::broadcast::Receiver<ProxyMade> {
        self.made.subscribe()
    }

    pub fn wants(&self, info: &MediaInfo) -> bool {
        self.rule.wants(info)
    }

    fn file(&self, checksum: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{checksum}.{ext}"))
    }

    /// The proxy to play for the source with this SHA-256, once it is made.
    pub fn ready(&self, checksum: &str) -> Option<PathBuf> {
        is_hex(checksum)
            .then(|| self.file(checksum, "mov"))
            .filter(|p| p.is_file())
    }

    /// What became of the proxy of this source; `None` if none was wanted.
    pub fn state(&self, checksum: &str) -> Option<ProxyState> {
        if !is_hex(checksum) {
            return None;
        }
        if let Some(path) = self.ready(checksum) {
            return Some(ProxyState::Ready(path));
        }
        if let Some(progress) = self.lock().get(checksum) {
            return Some(ProxyState::Making(progress.load(Relaxed)));
        }
        if let Ok(why) = std::fs::read_to_string(self.file(checksum, "failed")) {
            return Some(ProxyState::Failed(why.trim().to_string()));
        }
        if let Some(why) = self
            .failed
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(checksum)
        {
            return Some(ProxyState::Failed(why.clone()));
        }
        self.file(checksum, "pending")
            .is_file()
            .then_some(ProxyState::Pending)
    }

    /// Wants a proxy of `source` (whose SHA-256 is `checksum`) and makes
    /// it in the background. Nothing if it is made, failed, or on its way.
    /// `done` is told the outcome.
    pub fn request(
        self: &Arc<Self>,
        checksum: &str,
        source: MediaInfo,
        done: impl FnOnce(Result<MediaInfo, String>) + Send + 'static,
    ) {
        if !is_hex(checksum)
            || self
                .state(checksum)
                .is_some_and(|s| s != ProxyState::Pending)
        {
            return;
        }
        let progress = Arc::new(AtomicU32::new(0));
        {
            let mut making = self.lock();
            if making.contains_key(checksum) {
                return;
            }
            making.insert(checksum.to_string(), progress.clone());
        }
        let pending = self.file(checksum, "pending");
        let noted = std::fs::create_dir_all(&self.dir)
            .and_then(|()| std::fs::write(&pending, source.path.to_string_lossy().as_bytes()));
        if let Err(err) = noted {
            tracing::warn!(%checksum, %err, "the proxy's pending note is not written; a restart forgets it");
        }
        let proxies = self.clone();
        let checksum = checksum.to_string();
        tokio::spawn(async move {
            let Ok(_slot) = proxies.slots.clone().acquire_owned().await else {
                return;
            };
            let out = proxies.file(&checksum, "mov");
            let spec = proxies.spec;
            let meter = progress.clone();
            let started = std::time::Instant::now();
            let made = tokio::task::spawn_blocking(move || {
                crate::media::proxy::make(&source, &out, &spec, &meter)
            })
            .await
            .map_err(|e| e.to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
            match &made {
                Ok(proxy) => {
                    tracing::info!(%checksum, frames = proxy.duration_frames, took = ?started.elapsed(), "review proxy made");
                    // Nobody listening (no session runs) is fine.
                    let _ = proxies.made.send(ProxyMade {
                        checksum: checksum.clone(),
                        path: proxy.path.clone(),
                    });
                }
                Err(why) => {
                    tracing::warn!(%checksum, %why, "review proxy failed");
                    if std::fs::write(proxies.file(&checksum, "failed"), why.as_bytes()).is_err() {
                        proxies
                            .failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(checksum.clone(), why.clone());
                    }
                }
            }
            let _ = std::fs::remove_file(proxies.file(&checksum, "pending"));
            proxies.lock().remove(&checksum);
            done(made);
        });
    }

    /// At start: the proxies a restart interrupted, as (checksum, source
    /// path), to be requested again.
    pub fn interrupted(&self) -> Vec<(String, PathBuf)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            // A transcode cut off mid-file leaves its partial output.
            if path.to_string_lossy().ends_with(".partial.mov") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            if path.extension().is_some_and(|e| e == "pending") {
                let stem = path.file_stem().map(|s| s.to_string_lossy().to_string());
                if let (Some(checksum), Ok(source)) = (stem, std::fs::read_to_string(&path)) {
                    found.push((checksum, PathBuf::from(source)));
                }
            }
        }
        found
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Arc<AtomicU32>>> {
        self.making.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn is_hex(checksum: &str) -> bool {
    checksum.len() == 64 && checksum.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timecode::{FrameRate, TimecodeFormat};

    fn info(codec: &str, width: u32, height: u32) -> MediaInfo {
        MediaInfo {
            path: PathBuf::from("/media/x.mov"),
            rate: FrameRate::FPS_24,
            duration_frames: 48,
            width,
            height,
            has_audio: false,
            timecode: TimecodeFormat::new(FrameRate::FPS_24, false).unwrap(),
            video_codec: codec.into(),
            container: "mov".into(),
            colour: Default::default(),
        }
    }

    #[test]
    fn heavy_codecs_and_big_pictures_get_a_proxy_and_the_rest_plays_as_it_is() {
        let rule = ProxyRule {
            codecs: vec!["prores".into(), "dnxhd".into(), "h265".into()],
            above_pixels: 1920 * 1080,
        };
        assert!(rule.wants(&info("video/x-prores", 1920, 1080)));
        assert!(rule.wants(&info("video/x-dnxhd", 1280, 720)));
        assert!(rule.wants(&info("video/x-h265", 1920, 1080)));
        assert!(rule.wants(&info("video/x-h264", 3840, 2160)), "UHD");
        assert!(!rule.wants(&info("video/x-h264", 1920, 1080)));
        assert!(!rule.wants(&info("video/x-vp8", 1280, 720)));
    }
}
