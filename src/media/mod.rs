//! Media files: finding them safely, probing them, and making the demo
//! clip. The live pipeline that follows a session's transport will live
//! here too (issue #3).
//!
//! GStreamer calls block, so callers on the async runtime go through
//! `spawn_blocking`; nothing here is async.

pub mod audio;
pub mod colour;
pub mod compare;
pub mod demo_clip;
pub mod frames;
pub mod mov_timecode;
pub mod pipelines;
pub mod player;
pub mod probe;
pub mod proxy;
pub mod still;
pub mod watermark;

use std::path::{Path, PathBuf};

use crate::timecode::{FrameRate, TimecodeFormat};

/// What a probe learned about a media file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    pub path: PathBuf,
    pub rate: FrameRate,
    pub duration_frames: i64,
    pub width: u32,
    pub height: u32,
    pub has_audio: bool,
    /// The label of the first frame, from a timecode track when the file
    /// has one, else `00:00:00:00`.
    pub timecode: TimecodeFormat,
    pub video_codec: String,
    /// The container as a short name (`mov`, `mp4`, `mxf`, `mkv`, …), or
    /// the demuxer's caps name when it is none of those; empty when the
    /// file has no container (an elementary stream).
    pub container: String,
    /// The colour description the file states for its pictures.
    pub colour: colour::Colour,
}

/// Why a media file cannot be used. Each says what a user can fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MediaError {
    /// The path resolves outside `media_root`.
    #[error("{0} is outside the media root; only files under it can be reviewed")]
    OutsideRoot(PathBuf),
    /// Nothing at that path.
    #[error("no media file at {0}")]
    Missing(PathBuf),
    /// GStreamer recognised no media in it.
    #[error("{path} is not a media file GStreamer can read: {reason}")]
    NotMedia { path: PathBuf, reason: String },
    /// Media, but without a video stream.
    #[error("{0} has no video stream")]
    NoVideo(PathBuf),
    /// Video at a rate SyncReel does not review at.
    #[error("{path} runs at {rate}, which is not a supported review rate")]
    UnsupportedRate { path: PathBuf, rate: String },
    /// GStreamer itself could not start (plugins missing, say).
    #[error("GStreamer failed: {0}")]
    Gstreamer(String),
    /// The session's recorded watermark no longer passes its checks (a
    /// record edited by hand): its pictures are refused, not sent unmarked.
    #[error("the session's watermark cannot be drawn: {0}")]
    Watermark(#[from] watermark::WatermarkError),
}

impl MediaError {
    /// Whether trying again may succeed: a file that is briefly away (being
    /// copied back into place) or GStreamer failing at run time (an encoder
    /// starved of CPU misses its first-picture deadline). Anything about
    /// what the file is stays as it is.
    pub fn may_pass(&self) -> bool {
        matches!(self, MediaError::Missing(_) | MediaError::Gstreamer(_))
    }

    /// The same refusal, naming the file as `shown` instead.
    pub fn naming(self, shown: &Path) -> MediaError {
        let shown = shown.to_owned();
        match self {
            MediaError::OutsideRoot(_) => MediaError::OutsideRoot(shown),
            MediaError::Missing(_) => MediaError::Missing(shown),
            MediaError::NotMedia { reason, .. } => MediaError::NotMedia {
                path: shown,
                reason,
            },
            MediaError::NoVideo(_) => MediaError::NoVideo(shown),
            MediaError::UnsupportedRate { rate, .. } => {
                MediaError::UnsupportedRate { path: shown, rate }
            }
            MediaError::Gstreamer(reason) => MediaError::Gstreamer(reason),
            MediaError::Watermark(e) => MediaError::Watermark(e),
        }
    }
}

/// The SHA-256 (hex) and size of a file: a version's identity. Reads the
/// whole file; call it off the async runtime.
pub fn checksum(path: &Path) -> Result<(String, u64), MediaError> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path).map_err(|_| MediaError::Missing(path.to_owned()))?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| MediaError::NotMedia {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if n == 0 {
            break;
        }
        size += n as u64;
        hasher.update(&buf[..n]);
    }
    let digest = hasher.finalize();
    Ok((digest.iter().map(|b| format!("{b:02x}")).collect(), size))
}

/// A GStreamer element by factory name; a missing plugin is named in the
/// error, since that is what an operator has to install.
pub(crate) fn element(factory: &str) -> Result<gstreamer::Element, MediaError> {
    gstreamer::ElementFactory::make(factory)
        .build()
        .map_err(|_| MediaError::Gstreamer(format!("the GStreamer element {factory} is missing")))
}

/// Initializes GStreamer once per process.
pub fn init() -> Result<(), MediaError> {
    gstreamer::init().map_err(|e| MediaError::Gstreamer(e.to_string()))
}

/// Resolves `requested` (relative to `root`, or absolute) to a file that
/// really is inside `root` once symlinks and `..` are resolved.
pub fn resolve_in_root(root: &Path, requested: &Path) -> Result<PathBuf, MediaError> {
    let root = root
        .canonicalize()
        .map_err(|_| MediaError::Missing(root.to_owned()))?;
    let joined = if requested.is_absolute() {
        requested.to_owned()
    } else {
        root.join(requested)
    };
    // Judge the path as written first, so that a request for something
    // outside the root is refused as such whether or not it exists; the
    // check after canonicalizing catches symlinks that lead out.
    if !lexically_normal(&joined).starts_with(&root) {
        return Err(MediaError::OutsideRoot(requested.to_owned()));
    }
    let resolved = joined
        .canonicalize()
        .map_err(|_| MediaError::Missing(requested.to_owned()))?;
    if !resolved.starts_with(&root) {
        return Err(MediaError::OutsideRoot(requested.to_owned()));
    }
    if !resolved.is_file() {
        return Err(MediaError::Missing(requested.to_owned()));
    }
    Ok(resolved)
}

/// `path` with `.` and `..` resolved by name alone, touching no file.
fn lexically_normal(path: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_files_inside_the_root_resolve() {
        let base = std::env::temp_dir().join(format!("syncreel-root-{}", std::process::id()));
        let root = base.join("media");
        std::fs::create_dir_all(root.join("shots")).unwrap();
        std::fs::write(root.join("shots/a.mov"), b"x").unwrap();
        std::fs::write(base.join("secret.mov"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(base.join("secret.mov"), root.join("link.mov")).unwrap();

        assert!(resolve_in_root(&root, Path::new("shots/a.mov")).is_ok());
        assert!(resolve_in_root(&root, &root.join("shots/a.mov")).is_ok());
        for escape in [
            "../secret.mov",
            "shots/../../secret.mov",
            "link.mov",
            "../does-not-exist.mov",
            "shots/../../../etc/nowhere",
        ] {
            assert_eq!(
                resolve_in_root(&root, Path::new(escape)),
                Err(MediaError::OutsideRoot(escape.into())),
                "{escape}"
            );
        }
        assert_eq!(
            resolve_in_root(&root, &base.join("secret.mov")),
            Err(MediaError::OutsideRoot(base.join("secret.mov")))
        );
        assert!(matches!(
            resolve_in_root(&root, Path::new("nope.mov")),
            Err(MediaError::Missing(_))
        ));
        assert!(matches!(
            resolve_in_root(&root, Path::new("shots")),
            Err(MediaError::Missing(_))
        ));
        let _ = std::fs::remove_dir_all(&base);
    }
}
