//! The staging area: one directory per upload under `<data_dir>/uploads`,
//! holding `info` (what the upload is) and `data` (the bytes so far), and
//! once it is finished `done` (the version it became) instead of `data`.
//!
//! The bytes on disk are the truth: an upload's offset is the length of
//! its `data` file, so a server killed mid-write resumes from what it
//! really holds, never from a counter that ran ahead of the disk. An
//! upload's directory appears whole (made under a `.new` name, then
//! renamed), so a crash during creation leaves no half-made upload.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;

/// What an upload is, as written at creation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub length: u64,
    /// The file's name as the client gave it (for the stored name's stem
    /// and extension only; never a path).
    pub filename: String,
    pub item: String,
    /// The session it was made for (by one of its host links).
    pub session: Option<String>,
    /// The whole file's SHA-256 (hex) as the client declared it.
    pub sha256: Option<String>,
    /// Unix seconds.
    pub created: u64,
    pub expires: u64,
}

/// The version a finished upload became.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Done {
    pub version_id: String,
    pub item: String,
    pub number: i64,
    pub checksum: String,
    pub size_bytes: i64,
    /// The file under the media root.
    pub media: String,
    /// The same bytes were already there: nothing new was stored.
    pub duplicate: bool,
}

/// One upload's directory.
#[derive(Debug, Clone)]
pub struct Slot {
    pub dir: PathBuf,
}

impl Slot {
    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn info_path(&self) -> PathBuf {
        self.dir.join("info")
    }

    fn done_path(&self) -> PathBuf {
        self.dir.join("done")
    }

    /// Bytes received so far (the length of `data`); the declared length
    /// once finished.
    pub fn offset(&self, info: &Info) -> std::io::Result<u64> {
        match std::fs::metadata(self.data()) {
            Ok(meta) => Ok(meta.len()),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && self.done()?.is_some() => {
                Ok(info.length)
            }
            Err(err) => Err(err),
        }
    }

    pub fn info(&self) -> std::io::Result<Info> {
        read_info(&std::fs::read_to_string(self.info_path())?)
    }

    pub fn done(&self) -> std::io::Result<Option<Done>> {
        match std::fs::read_to_string(self.done_path()) {
            Ok(text) => read_done(&text).map(Some),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err),
        }
    }

    /// Marks the upload finished: `done` is written whole (through a
    /// temporary name) before `data` goes.
    pub fn finish(&self, done: &Done) -> std::io::Result<()> {
        let tmp = self.dir.join("done.new");
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(write_done(done).as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, self.done_path())?;
        match std::fs::remove_file(self.data()) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    fn unverified_path(&self) -> PathBuf {
        self.dir.join("unverified")
    }

    /// Notes that the bytes from `start` on are a chunk not yet checked
    /// against its checksum.
    pub fn mark_unverified(&self, start: u64) -> std::io::Result<()> {
        std::fs::write(self.unverified_path(), start.to_string())
    }

    /// The chunk from the mark on was settled (kept or cut).
    pub fn clear_unverified(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.unverified_path()) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }

    /// After a crash mid-chunk: cuts a chunk that was never verified off
    /// the data. Call it holding the upload's lock, so no writer is on it.
    pub fn recover(&self) -> std::io::Result<()> {
        let Ok(mark) = std::fs::read_to_string(self.unverified_path()) else {
            return Ok(());
        };
        if let (Ok(start), Ok(file)) = (
            mark.trim().parse::<u64>(),
            std::fs::OpenOptions::new().write(true).open(self.data()),
        ) {
            if file.metadata()?.len() > start {
                file.set_len(start)?;
                file.sync_all()?;
            }
        }
        self.clear_unverified()
    }

    /// Removes the upload and everything it holds.
    pub fn remove(&self) {
        if let Err(err) = std::fs::remove_dir_all(&self.dir) {
            if err.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), %err, "an upload could not be removed");
            }
        }
    }
}

/// The staging area.
#[derive(Debug, Clone)]
pub struct Staging {
    pub root: PathBuf,
}

impl Staging {
    /// Opens (making it if need be) the staging area, dropping what a
    /// crash left half-made.
    pub fn open(root: PathBuf) -> std::io::Result<Staging> {
        std::fs::create_dir_all(&root)?;
        for entry in std::fs::read_dir(&root)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "new") {
                let _ = std::fs::remove_dir_all(&path);
            }
        }
        Ok(Staging { root })
    }

    /// The upload `id`, if there is one. Ids are the server's own random
    /// ids; anything else is no upload (and never a path).
    pub fn slot(&self, id: &str) -> Option<Slot> {
        let plausible = !id.is_empty()
            && id.len() <= 64
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        let dir = self.root.join(id);
        (plausible && dir.join("info").is_file()).then_some(Slot { dir })
    }

    /// Makes a new, empty upload.
    pub fn create(&self, id: &str, info: &Info) -> std::io::Result<Slot> {
        let tmp = self.root.join(format!("{id}.new"));
        std::fs::create_dir(&tmp)?;
        let made = (|| {
            let mut file = std::fs::File::create(tmp.join("info"))?;
            file.write_all(write_info(info).as_bytes())?;
            file.sync_all()?;
            std::fs::File::create(tmp.join("data"))?.sync_all()?;
            std::fs::rename(&tmp, self.root.join(id))
        })();
        if let Err(err) = made {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(err);
        }
        Ok(Slot {
            dir: self.root.join(id),
        })
    }

    /// Every upload: (id, slot, info). Unreadable ones are skipped.
    pub fn all(&self) -> Vec<(String, Slot, Info)> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_string();
                let slot = self.slot(&id)?;
                let info = slot.info().ok()?;
                Some((id, slot, info))
            })
            .collect()
    }
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn unb64(text: &str) -> std::io::Result<String> {
    let raw = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| bad(e.to_string()))?;
    String::from_utf8(raw).map_err(|e| bad(e.to_string()))
}

fn bad(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

/// `key value` lines; text values in base64 so that no name can break a
/// line.
fn write_info(info: &Info) -> String {
    format!(
        "length {}\nfilename {}\nitem {}\nsession {}\nsha256 {}\ncreated {}\nexpires {}\n",
        info.length,
        b64(&info.filename),
        b64(&info.item),
        b64(info.session.as_deref().unwrap_or_default()),
        info.sha256.as_deref().unwrap_or("-"),
        info.created,
        info.expires
    )
}

fn fields(text: &str) -> std::collections::HashMap<&str, &str> {
    text.lines().filter_map(|l| l.split_once(' ')).collect()
}

fn field<'a>(
    fields: &std::collections::HashMap<&str, &'a str>,
    key: &str,
) -> std::io::Result<&'a str> {
    fields
        .get(key)
        .copied()
        .ok_or_else(|| bad(format!("no {key}")))
}

fn number<T: std::str::FromStr>(
    fields: &std::collections::HashMap<&str, &str>,
    key: &str,
) -> std::io::Result<T> {
    field(fields, key)?
        .parse()
        .map_err(|_| bad(format!("{key} is not a number")))
}

fn read_info(text: &str) -> std::io::Result<Info> {
    let f = fields(text);
    let session = unb64(field(&f, "session")?)?;
    let sha256 = field(&f, "sha256")?;
    Ok(Info {
        length: number(&f, "length")?,
        filename: unb64(field(&f, "filename")?)?,
        item: unb64(field(&f, "item")?)?,
        session: (!session.is_empty()).then_some(session),
        sha256: (sha256 != "-").then(|| sha256.to_string()),
        created: number(&f, "created")?,
        expires: number(&f, "expires")?,
    })
}

fn write_done(done: &Done) -> String {
    format!(
        "version {}\nitem {}\nnumber {}\nchecksum {}\nsize {}\nmedia {}\nduplicate {}\n",
        done.version_id,
        b64(&done.item),
        done.number,
        done.checksum,
        done.size_bytes,
        b64(&done.media),
        done.duplicate
    )
}

fn read_done(text: &str) -> std::io::Result<Done> {
    let f = fields(text);
    Ok(Done {
        version_id: field(&f, "version")?.to_string(),
        item: unb64(field(&f, "item")?)?,
        number: number(&f, "number")?,
        checksum: field(&f, "checksum")?.to_string(),
        size_bytes: number(&f, "size")?,
        media: unb64(field(&f, "media")?)?,
        duplicate: field(&f, "duplicate")? == "true",
    })
}

/// The total size of the regular files under `dir` (not following links).
pub fn tree_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => tree_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn info_and_done_read_back_as_written() {
        let info = Info {
            length: 42,
            filename: "a b,\nc.mov".into(),
            item: "Shot 010".into(),
            session: Some("s1".into()),
            sha256: Some("ab".repeat(32)),
            created: 1,
            expires: 2,
        };
        assert_eq!(read_info(&write_info(&info)).unwrap(), info);
        let bare = Info {
            session: None,
            sha256: None,
            ..info
        };
        assert_eq!(read_info(&write_info(&bare)).unwrap(), bare);
        let done = Done {
            version_id: "v".into(),
            item: "Shot 010".into(),
            number: 3,
            checksum: "cd".repeat(32),
            size_bytes: 42,
            media: "uploads/a.mov".into(),
            duplicate: true,
        };
        assert_eq!(read_done(&write_done(&done)).unwrap(), done);
        assert!(read_info("length x\n").is_err());
    }
}
