//! The operator credential: what everything that is not a join link needs
//! (making sessions, listing media, reading the webhook delivery log).
//!
//! Safe by default means there is always one. When `server.admin_token`
//! is not set, the server keeps a generated token in
//! `<data_dir>/operator-token` (made on first start, readable by its owner
//! only) and says where it is; it is only ever compared by its SHA-256.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// The file a generated token is kept in, under the data dir.
pub const TOKEN_FILE: &str = "operator-token";

/// Where the server's operator token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `server.admin_token` (or `SYNCREEL_SERVER__ADMIN_TOKEN`).
    Config,
    /// The token file, made by an earlier start.
    File(PathBuf),
    /// The token file, made just now.
    Generated(PathBuf),
}

/// The credential, kept as its hash.
#[derive(Debug, Clone)]
pub struct Operator {
    hash: [u8; 32],
    pub source: Source,
}

impl Operator {
    /// The configured token, else the data dir's token file, else a new
    /// one written there.
    pub fn resolve(configured: &str, data_dir: &Path) -> std::io::Result<Operator> {
        if !configured.trim().is_empty() {
            return Ok(Operator {
                hash: hash(configured.trim()),
                source: Source::Config,
            });
        }
        let path = data_dir.join(TOKEN_FILE);
        match std::fs::read_to_string(&path) {
            Ok(token) if !token.trim().is_empty() => {
                return Ok(Operator {
                    hash: hash(token.trim()),
                    source: Source::File(path),
                })
            }
            Ok(_) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        std::fs::create_dir_all(data_dir)?;
        let token = crate::links::new_token();
        write_private(&path, &token)?;
        Ok(Operator {
            hash: hash(&token),
            source: Source::Generated(path),
        })
    }

    /// Whether `token` is the operator's.
    pub fn accepts(&self, token: &str) -> bool {
        // Equal hashes, not equal strings: how long the comparison takes
        // says nothing about the token.
        hash(token.trim()) == self.hash
    }

    /// What to tell whoever started the server.
    pub fn announcement(&self) -> String {
        match &self.source {
            Source::Config => "operator token: from server.admin_token".into(),
            Source::File(path) => format!("operator token: in {}", path.display()),
            Source::Generated(path) => format!(
                "operator token: generated in {} (send it as \"Authorization: Bearer <token>\" \
                 to create sessions; set server.admin_token or SYNCREEL_SERVER__ADMIN_TOKEN to \
                 choose your own)",
                path.display()
            ),
        }
    }
}

fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// Writes a file only its owner can read; a new file is never left
/// readable, even for a moment.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir() -> PathBuf {
        std::env::temp_dir().join(format!("syncreel-operator-{}", rand::random::<u64>()))
    }

    #[test]
    fn a_token_is_made_once_kept_private_and_found_again() {
        let dir = temp_dir();
        let first = Operator::resolve("", &dir).unwrap();
        let path = dir.join(TOKEN_FILE);
        assert_eq!(first.source, Source::Generated(path.clone()));
        let token = std::fs::read_to_string(&path).unwrap();
        assert!(first.accepts(&token), "the file holds the token");
        assert!(!first.accepts("guess"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "readable by its owner only: {mode:o}");
        }
        let again = Operator::resolve("", &dir).unwrap();
        assert_eq!(again.source, Source::File(path));
        assert!(again.accepts(&token));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_configured_token_wins_and_writes_nothing() {
        let dir = temp_dir();
        let op = Operator::resolve("  chosen-by-the-operator ", &dir).unwrap();
        assert_eq!(op.source, Source::Config);
        assert!(op.accepts("chosen-by-the-operator"));
        assert!(!dir.join(TOKEN_FILE).exists());
    }
}
