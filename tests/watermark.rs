//! A session's watermark from the outside: how it is asked for and
//! refused, where it shows (session info, the welcome, every picture
//! served), and that it outlives a restart.

mod common;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::PathBuf;

use common::{request, request_with, Client, TestServer, OPERATOR};
use serde_json::{json, Value};
use syncreel::media::demo_clip::{self, DemoClipSpec};

/// A 640×360 demo clip of two seconds, made once per test process.
fn media_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("syncreel-watermark-{}", std::process::id()));
        let spec = DemoClipSpec {
            width: 640,
            height: 360,
            frames: 48,
            ..DemoClipSpec::default()
        };
        demo_clip::ensure(&root.join("shot.mov"), &spec).unwrap();
        root
    })
    .clone()
}

async fn create(server: &TestServer, body: Value) -> (u16, Value) {
    request(
        server.addr,
        "POST",
        "/api/sessions",
        Some(OPERATOR),
        Some(body),
    )
    .await
}

#[tokio::test]
async fn bad_watermarks_are_refused_with_a_typed_code_and_nothing_is_made() {
    let server = TestServer::start().await;
    let base = json!({"title": "Reel 1", "fps": "24", "durationFrames": 240});
    for watermark in [
        json!("two\nlines"),
        json!("tab\there"),
        json!("right-to-left \u{202e}override"),
        json!("x".repeat(121)),
        // Within the limit as written, over it once the title is in.
        json!(format!("{} {{title}}", "x".repeat(115))),
    ] {
        let mut body = base.clone();
        body["watermark"] = watermark.clone();
        let (status, answer) = create(&server, body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("bad_watermark")),
            "{watermark}: {answer}"
        );
    }
    let mut body = base.clone();
    body["watermark"] = json!(12);
    let (status, answer) = create(&server, body).await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    // Nothing was made by any of them.
    let (_, metrics) = request(server.addr, "GET", "/metrics", None, None).await;
    let text = metrics.as_str().unwrap_or_default();
    assert!(text.lines().any(|l| l == "syncreel_sessions 0"), "{text}");
    // At the limit, and with markup-looking text (drawn as written).
    let mut body = base.clone();
    body["watermark"] = json!(format!("<b>{}</b>", "é".repeat(113)));
    let (status, answer) = create(&server, body).await;
    assert_eq!(status, 201, "{answer}");
    server.shutdown().await;
}

#[tokio::test]
async fn the_configured_template_is_the_default_a_request_may_replace_or_turn_off() {
    let server =
        TestServer::start_with(|c| c.session.watermark = "CONFIDENTIAL – {title}".into()).await;
    let base = json!({"title": "Shot 060", "fps": "24", "durationFrames": 240});
    let made = server.create_session_with(base.clone()).await;
    assert_eq!(made.body["session"]["watermark"], "CONFIDENTIAL – Shot 060");

    let mut own = base.clone();
    own["watermark"] = json!("  For {title} eyes only ");
    let made = server.create_session_with(own).await;
    assert_eq!(made.body["session"]["watermark"], "For Shot 060 eyes only");

    let mut none = base.clone();
    none["watermark"] = json!("");
    let made = server.create_session_with(none).await;
    assert!(
        made.body["session"].get("watermark").is_none(),
        "{}",
        made.body
    );

    // A title too long for the template is cut, not refused: whoever
    // named the shot did not choose the watermark.
    let mut long = base.clone();
    long["title"] = json!("t".repeat(200));
    let made = server.create_session_with(long).await;
    let text = made.body["session"]["watermark"].as_str().unwrap();
    assert_eq!(text.chars().count(), 120);
    assert!(
        text.starts_with("CONFIDENTIAL – ttt") && text.ends_with('…'),
        "{text}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_watermark_shows_in_session_info_and_the_welcome_and_survives_a_restart() {
    let data_dir =
        std::env::temp_dir().join(format!("syncreel-watermark-restart-{}", std::process::id()));
    let root = media_root();
    let start = || {
        let (data_dir, root) = (data_dir.clone(), root.clone());
        TestServer::start_with(move |c| {
            c.server.data_dir = data_dir;
            c.media.root = root;
        })
    };
    let server = start().await;
    let s = server
        .create_session_with(json!({
            "title": "Shot 060", "media": "shot.mov", "watermark": "CONFIDENTIAL – {title}"
        }))
        .await;
    let checksum = s.body["version"]["checksum"].as_str().unwrap().to_string();
    let text = "CONFIDENTIAL – Shot 060";
    let still_tag = |server: &TestServer| {
        let path = format!("/api/sessions/{}/frames/{checksum}/7?width=320", s.id);
        let (addr, viewer) = (server.addr, s.viewer.clone());
        async move {
            let (status, headers, _) =
                request_with(addr, "GET", &path, Some(&viewer), &[], String::new()).await;
            assert_eq!(status, 200);
            headers["etag"].to_str().unwrap().to_string()
        }
    };
    let before = still_tag(&server).await;
    assert!(before.contains("-320-w"), "{before}");
    server.shutdown().await;

    let server = start().await;
    let path = format!("/api/sessions/{}", s.id);
    let (status, info) = request(server.addr, "GET", &path, Some(&s.host), None).await;
    assert_eq!(status, 200, "{info}");
    assert_eq!(info["session"]["watermark"], text);
    let viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    assert_eq!(viewer.welcome["session"]["watermark"], text);
    // The restarted player and the stills still burn it in.
    assert_eq!(still_tag(&server).await, before);
    viewer.close().await;
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// The third whole picture a WebRTC viewer of a new session on
/// `shot.mov` decodes: frame 0, as the room opens paused there (repeated
/// twice a second, so a picture lost on a busy machine comes again).
async fn first_streamed_picture(server: &TestServer, watermark: &str) -> std::sync::Arc<vp8::Luma> {
    let s = server
        .create_session_with(
            json!({"title": "Shot 060", "media": "shot.mov", "watermark": watermark}),
        )
        .await;
    let mut viewer = viewer::Viewer::join(server.addr, &s.viewer).await;
    // The third whole picture: a fresh encoder's first ones are coarse
    // (rate control has not settled), and coarse pictures differ all over.
    let mut whole = 0;
    for _ in 0..12 {
        let seen = viewer.next_picture().await;
        if let (Some(code), Some(luma)) = (seen.code, seen.luma) {
            assert_eq!(code, 0, "the frame code reads through the mark");
            whole += 1;
            if whole == 3 {
                return luma;
            }
        }
    }
    panic!("twelve pictures and not three whole with a frame code");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_watermarked_sessions_stream_carries_the_mark_to_its_viewers() {
    let server = TestServer::streaming(media_root(), 1500).await;
    let bare = first_streamed_picture(&server, "").await;
    let marked = first_streamed_picture(&server, "CONFIDENTIAL – {title}").await;
    let h = marked.layout.height;
    // Two lossy encodes of one frame differ a little all over (a fresh
    // encoder's first pictures more so, on a busy machine); the mark lifts
    // its strokes in the middle far above that noise.
    let middle = marked.share_brighter(&bare, h * 2 / 5..h * 3 / 5, 40);
    let top = marked.share_brighter(&bare, 0..h / 5, 40);
    println!(
        "lifted: middle {:.2}%, top {:.2}%",
        middle * 100.0,
        top * 100.0
    );
    assert!(
        middle > 0.005 && middle > 4.0 * top,
        "{:.2}% of the middle is lifted by the mark, {:.2}% of the top",
        middle * 100.0,
        top * 100.0
    );
    server.shutdown().await;
}
