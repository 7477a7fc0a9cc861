//! A throwaway PostgreSQL for a test binary, from the project's own
//! `scripts/cluster/postgres.sh` (Debian's server, initdb in a temporary
//! directory, loopback only). Stopped and removed when dropped.

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Postgres {
    top: PathBuf,
    pub url: String,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster/postgres.sh")
}

impl Postgres {
    /// Starts one; panics (failing the test) when it cannot, with the
    /// script's own words: a test that needs PostgreSQL never passes
    /// without it.
    pub fn start() -> Postgres {
        let top = std::env::temp_dir().join(format!(
            "syncreel-pg-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&top).expect("temporary directory");
        // The server runs as the postgres user, which must reach it.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&top, std::fs::Permissions::from_mode(0o755))
            .expect("chmod the temporary directory");
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(top.join("pg"))
            .output()
            .expect("run scripts/cluster/postgres.sh");
        assert!(
            out.status.success(),
            "PostgreSQL did not start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)
            .expect("a URL")
            .trim()
            .to_string();
        Postgres { top, url }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(self.top.join("pg"))
            .output();
        let _ = std::fs::remove_dir_all(&self.top);
    }
}
