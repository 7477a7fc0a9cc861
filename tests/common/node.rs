//! The real server binary as a child process, for tests that kill it with
//! SIGKILL or run several nodes: `syncreel serve --bind 127.0.0.1:0` plus
//! the test's own arguments and environment. Killed when dropped.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct Node {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Node {
    pub fn serve<A: AsRef<OsStr>>(args: &[A], env: &[(&str, &str)]) -> Node {
        let mut command = Command::new(env!("CARGO_BIN_EXE_syncreel"));
        command
            .args(["serve", "--bind", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "syncreel=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("the server starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        // Bounded: it says where it listens among its first lines.
        let addr = stdout
            .lines()
            .take(20)
            .find_map(|l| {
                l.ok()?
                    .strip_prefix("listening on http://")
                    .map(|a| a.parse().unwrap())
            })
            .expect("the server says where it listens");
        Node { child, addr }
    }

    /// SIGKILL, and waits for it to be gone.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Node {
    /// A node of a test cluster: `--cluster` on `nats`, `--store` on
    /// `pg`, its own empty data directory, the operator credential, and
    /// short leases (1.5 s, renewed every 0.5 s) so that a takeover waits
    /// about 1.5 s, not 3.
    pub fn in_cluster(nats: &str, pg: &str, name: &str) -> Node {
        Node::in_cluster_with(nats, pg, name, "1500", "500")
    }

    /// As [`Node::in_cluster`], with the lease's TTL and renewal interval
    /// (milliseconds) given.
    pub fn in_cluster_with(nats: &str, pg: &str, name: &str, ttl_ms: &str, renew_ms: &str) -> Node {
        Node::in_cluster_env(
            nats,
            pg,
            name,
            &[
                ("SYNCREEL_CLUSTER__LEASE_TTL_MS", ttl_ms),
                ("SYNCREEL_CLUSTER__LEASE_RENEW_MS", renew_ms),
            ],
        )
    }

    /// As [`Node::in_cluster`], with more environment (later entries win).
    pub fn in_cluster_env(nats: &str, pg: &str, name: &str, env: &[(&str, &str)]) -> Node {
        let data = std::env::temp_dir().join(format!(
            "syncreel-cluster-{}-{name}-{}",
            std::process::id(),
            super::rand_suffix()
        ));
        Node::serve(
            &[
                "--data-dir".as_ref(),
                data.as_os_str(),
                "--cluster".as_ref(),
                OsStr::new(nats),
                "--store".as_ref(),
                OsStr::new(pg),
            ],
            &[
                &[
                    ("SYNCREEL_SERVER__ADMIN_TOKEN", super::OPERATOR),
                    ("SYNCREEL_CLUSTER__NODE_ID", name),
                    ("SYNCREEL_CLUSTER__LEASE_TTL_MS", "1500"),
                    ("SYNCREEL_CLUSTER__LEASE_RENEW_MS", "500"),
                    // Sessions run where the test creates them; placement
                    // has a test of its own.
                    ("SYNCREEL_CLUSTER__PLACE_SESSIONS", "false"),
                ],
                env,
            ]
            .concat(),
        )
    }
}

/// A media root holding `clip.mov`, a 640×360 demo clip of `frames`
/// frames, one per process and length (`demo_clip::ensure` keeps a file
/// that is there, whatever its length).
pub fn media_root(frames: u32) -> std::path::PathBuf {
    let root = std::env::temp_dir().join(format!(
        "syncreel-cluster-media-{}-{frames}",
        std::process::id()
    ));
    let spec = syncreel::media::demo_clip::DemoClipSpec {
        width: 640,
        height: 360,
        frames,
        ..Default::default()
    };
    syncreel::media::demo_clip::ensure(&root.join("clip.mov"), &spec).unwrap();
    root
}

impl Node {
    /// A cluster node streaming `root`'s media as the single-node tests'
    /// servers do (VP8 at 640×360, which the test viewer decodes).
    pub fn streaming(nats: &str, pg: &str, name: &str, root: &std::path::Path) -> Node {
        Node::streaming_with(nats, pg, name, root, &[])
    }

    /// As [`Node::streaming`], with more environment (later entries win).
    pub fn streaming_with(
        nats: &str,
        pg: &str,
        name: &str,
        root: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Node {
        let root = root.to_str().unwrap();
        Node::in_cluster_env(
            nats,
            pg,
            name,
            &[
                &[
                    ("SYNCREEL_MEDIA__ROOT", root),
                    ("SYNCREEL_MEDIA__CODEC", "vp8"),
                    ("SYNCREEL_MEDIA__STREAM_WIDTH", "640"),
                    ("SYNCREEL_MEDIA__STREAM_HEIGHT", "360"),
                    ("SYNCREEL_MEDIA__BITRATE_KBPS", "1500"),
                    // The test machine's disk may be short of the default
                    // reserve.
                    ("SYNCREEL_UPLOADS__RESERVE_FREE_BYTES", "0"),
                ],
                env,
            ]
            .concat(),
        )
    }
}

impl Node {
    /// A session made on this node by the operator: 24 fps, 100 s, no
    /// media.
    pub async fn create_session(&self, title: &str) -> super::CreatedSession {
        let (status, created) = super::request(
            self.addr,
            "POST",
            "/api/sessions",
            Some(super::OPERATOR),
            Some(serde_json::json!({"title": title, "fps": "24", "durationFrames": 2400})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        super::CreatedSession::from_body(created)
    }

    /// A session made on this node by the operator from `media`, a file
    /// of its media root.
    pub async fn create_media_session(&self, title: &str, media: &str) -> super::CreatedSession {
        let (status, created) = super::request(
            self.addr,
            "POST",
            "/api/sessions",
            Some(super::OPERATOR),
            Some(serde_json::json!({"title": title, "media": media})),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        super::CreatedSession::from_body(created)
    }
}

/// A hello on `addr`: the welcome, or the error it got instead.
pub async fn hello(
    addr: std::net::SocketAddr,
    token: &str,
) -> (super::Client, Result<Value, Value>) {
    let mut client = super::Client::connect(addr).await;
    client.hello(token, "Dana", None).await;
    let answer = client
        .expect_where(|m| m["type"] == "welcome" || m["type"] == "error")
        .await;
    let result = if answer["type"] == "welcome" {
        Ok(answer)
    } else {
        Err(answer)
    };
    (client, result)
}

/// Hellos on `addr` until one is welcomed; `session_elsewhere` (the dead
/// owner's lease has not lapsed yet) means try again, within 15 s of
/// `since`.
pub async fn rejoin(
    addr: std::net::SocketAddr,
    token: &str,
    since: Instant,
) -> (super::Client, Value) {
    loop {
        let (client, answer) = hello(addr, token).await;
        match answer {
            Ok(welcome) => return (client, welcome),
            Err(e) if e["code"] == "session_elsewhere" => {
                assert!(
                    since.elapsed() < Duration::from_secs(15),
                    "nobody took the session over: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    }
}

/// Polls `what` (no event says it) until it holds, for at most 10 s.
pub async fn until<F: std::future::Future<Output = bool>>(why: &str, mut what: impl FnMut() -> F) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !what().await {
        assert!(Instant::now() < deadline, "{why}: not within 10 s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
