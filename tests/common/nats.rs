//! A throwaway JetStream nats-server for the cluster tests, started and
//! stopped through `scripts/cluster/nats.sh` (loopback, a free port, all
//! state in one temp directory that `stop` removes), so the tests run the
//! server exactly as `make cluster-check` and the demo do.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub struct NatsServer {
    /// `nats://127.0.0.1:PORT`.
    pub url: String,
    dir: PathBuf,
    running: bool,
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/cluster/nats.sh")
}

impl NatsServer {
    /// Starts one; panics with the script's messages if it cannot.
    pub fn start() -> NatsServer {
        let dir = std::env::temp_dir().join(format!(
            "syncreel-nats-{}-{}",
            std::process::id(),
            super::rand_suffix()
        ));
        let out = Command::new("bash")
            .arg(script())
            .arg("start")
            .arg(&dir)
            .output()
            .expect("run scripts/cluster/nats.sh (needs bash)");
        assert!(
            out.status.success(),
            "nats.sh start failed (is nats-server installed? scripts/setup.sh):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let url = String::from_utf8(out.stdout)
            .expect("utf-8 url")
            .trim()
            .to_string();
        assert!(url.starts_with("nats://127.0.0.1:"), "{url}");
        NatsServer {
            url,
            dir,
            running: true,
        }
    }

    /// Stops it and removes its directory.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if !std::mem::take(&mut self.running) {
            return;
        }
        let out = Command::new("bash")
            .arg(script())
            .arg("stop")
            .arg(&self.dir)
            .output();
        match out {
            Ok(out) if out.status.success() => {}
            Ok(out) => eprintln!(
                "nats.sh stop failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(err) => eprintln!("nats.sh stop did not run: {err}"),
        }
    }
}

impl Drop for NatsServer {
    /// A failing test still stops its server.
    fn drop(&mut self) {
        self.stop_now();
    }
}

/// Polls `check` every `every` until it gives `Some`, for at most
/// `limit`; panics with `what` after that. For states that NATS gives no
/// event for (on 2.9 an entry that ages out of a bucket announces nothing).
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + limit;
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        tokio::time::sleep(every).await;
    }
}
