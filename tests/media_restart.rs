//! A session's players that fail are started again, and a room told its
//! video failed hears when it is back: the real server, real GStreamer
//! players and a WebRTC viewer, with the media file taken away and put
//! back while the players are down.

mod common;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Client, TestServer};
use serde_json::{json, Value};
use syncreel::media::demo_clip::{self, DemoClipSpec};
use viewer::Viewer;

/// Restarts before the room is told (`media.restart_attempts`).
const ATTEMPTS: i64 = 2;
/// Polls of `/metrics` end within this.
const SETTLE: Duration = Duration::from_secs(30);

fn media_root() -> PathBuf {
    let root = std::env::temp_dir().join(format!("syncreel-restart-{}", std::process::id()));
    let spec = DemoClipSpec {
        width: 640,
        height: 360,
        frames: 240,
        ..DemoClipSpec::default()
    };
    demo_clip::ensure(&root.join("clip.mov"), &spec).unwrap();
    root
}

/// Polls `/metrics` until `name` reads `want`.
async fn wait_for_metric(server: &TestServer, name: &str, want: i64) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let now = server.metric(name).await;
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stayed at {now}, not {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn rename(from: &Path, to: &Path) {
    std::fs::rename(from, to).expect("the test moves its own media file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_that_fail_are_restarted_and_the_room_hears_when_the_video_is_back() {
    let root = media_root();
    let server = TestServer::streaming_with(root.clone(), 1500, |c| {
        // Down soon after the last viewer, so the next one opens the file.
        c.media.idle_teardown_ms = 300;
        c.media.restart_attempts = ATTEMPTS as u32;
        c.media.restart_backoff_ms = 50;
    })
    .await;
    let session = server
        .create_session_with(json!({"title": "Restart", "media": "clip.mov"}))
        .await;
    let mut host = Client::join(server.addr, &session.host, "Dana").await;

    // Watched, then left: the players stop.
    let mut first = Viewer::join(server.addr, &session.viewer).await;
    assert_eq!(first.first_readable().await, 0);
    first.leave().await;
    wait_for_metric(&server, "syncreel_media_pipelines", 0).await;

    // The file goes away. The next viewer's stream fails to start, is
    // started again ATTEMPTS times, and only then does the room hear.
    let clip = root.join("clip.mov");
    let away = root.join("clip.mov.away");
    rename(&clip, &away);
    let second = Viewer::join(server.addr, &session.viewer).await;
    let failed = host.expect("mediaError").await;
    let message = failed["message"].as_str().unwrap();
    assert!(message.contains("clip.mov"), "{message}");
    assert!(
        !message.contains(root.to_str().unwrap()),
        "the room is not told where the media root is: {message}"
    );
    assert_eq!(
        server.metric("syncreel_media_restarts_total").await,
        ATTEMPTS
    );
    wait_for_metric(&server, "syncreel_media_pipelines", 0).await;

    // Someone joining now hears of the failure after the welcome.
    let mut late = Client::join(server.addr, &session.viewer, "Late").await;
    let told: Value = late.expect("mediaError").await;
    assert_eq!(told["message"], failed["message"]);

    // Back in place: the next viewer who asks for the stream tries again,
    // sees the room's frame, and the room hears that the video is back.
    rename(&away, &clip);
    let mut third = Viewer::join(server.addr, &session.viewer).await;
    assert_eq!(third.first_readable().await, 0);
    host.expect("mediaRestored").await;
    late.expect("mediaRestored").await;
    assert_eq!(server.metric("syncreel_media_pipelines").await, 1);

    // Nobody who joins after that is told of the old failure.
    let mut later = Client::join(server.addr, &session.viewer, "Later").await;
    later.send(json!({"type": "ping", "id": 7, "t0": 0})).await;
    let next = later
        .expect_where(|m| m["type"] == "mediaError" || m["type"] == "pong")
        .await;
    assert_eq!(next["type"], "pong", "{next}");

    second.leave().await;
    third.leave().await;
    server.shutdown().await;
}
