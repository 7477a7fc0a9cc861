//! Version compare: the room's driver shows another version of the item
//! beside the one on screen (side by side, or as a wipe). The server
//! composes both into the one stream, so every viewer sees the same
//! picture; both halves follow the one playhead; notes and drawings
//! belong to the half they are about.

mod common;
#[path = "support/opus.rs"]
mod opus;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::{Path, PathBuf};

use common::{Client, TestServer};
use serde_json::{json, Value};
use syncreel::framecode::{self, PlaneLayout};
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::timecode::FrameRate;
use viewer::{Seen, Viewer};

/// Take 2's frame codes start here, so that its half cannot pass for
/// take 1's.
const TAKE2_CODES: u32 = 10_000;
/// Take 2 is shorter: past its end its last frame holds.
const TAKE2_FRAMES: u32 = 200;
const WIDTH: u32 = 640;
const HEIGHT: u32 = 360;
/// Pictures looked at before a test gives up on one it waits for.
const PICTURES: usize = 40;

fn media_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("syncreel-compare-{}", std::process::id()));
        make_takes(&root);
        root
    })
    .clone()
}

/// Three versions of one shot: take 2 at take 1's rate (comparable), take
/// 3 at another rate (not).
fn make_takes(root: &Path) {
    let take1 = DemoClipSpec {
        width: WIDTH,
        height: HEIGHT,
        frames: 240,
        ..DemoClipSpec::default()
    };
    let take2 = DemoClipSpec {
        frames: TAKE2_FRAMES,
        code_offset: TAKE2_CODES,
        ..take1
    };
    let take3 = DemoClipSpec {
        rate: FrameRate::FPS_25,
        frames: 48,
        ..take1
    };
    demo_clip::ensure(&root.join("take1.mov"), &take1).unwrap();
    demo_clip::ensure(&root.join("take2.mov"), &take2).unwrap();
    demo_clip::ensure(&root.join("take3.mov"), &take3).unwrap();
}

async fn server() -> TestServer {
    let root = media_root();
    TestServer::start_with(move |c| {
        c.media.root = root;
        // The test viewer decodes VP8.
        c.media.codec = "vp8".into();
        c.media.stream_width = WIDTH;
        c.media.stream_height = HEIGHT;
        c.media.bitrate_kbps = 2000;
    })
    .await
}

async fn session(server: &TestServer) -> common::CreatedSession {
    server
        .create_session_with(json!({"title": "Shot 010 takes", "playlist": [
            {"media": "take1.mov", "item": "Shot 010"},
            {"media": "take2.mov", "item": "Shot 010"},
            {"media": "take3.mov", "item": "Shot 010"},
        ]}))
        .await
}

/// The ids of the playlist's versions, in order.
fn version_ids(welcome: &Value) -> Vec<String> {
    welcome["playlist"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["version"]["id"].as_str().unwrap().to_string())
        .collect()
}

/// The frame code read from a rectangle of a picture.
fn code_in(seen: &Seen, x: usize, y: usize, w: usize, h: usize) -> Option<u32> {
    let luma = seen.luma.as_ref()?;
    let stride = luma.layout.stride;
    let layout = PlaneLayout {
        width: w,
        height: h,
        stride,
    };
    framecode::read(&luma.plane[y * stride + x..], layout)
}

/// The frame codes of the left (A) and right (B) halves of a side by side
/// picture: each version at half size, letterboxed.
fn halves(seen: &Seen) -> (Option<u32>, Option<u32>) {
    let (w, h) = (WIDTH as usize / 2, HEIGHT as usize / 2);
    let top = (HEIGHT as usize - h) / 2;
    (code_in(seen, 0, top, w, h), code_in(seen, w, top, w, h))
}

/// The first picture from `at` on whose halves both read, checking that
/// every readable pair on the way shows one frame in both.
async fn both_halves_from(viewer: &mut Viewer, at: i64) -> (u32, u32) {
    let mut seen = viewer.picture_at_or_after(at).await;
    for _ in 0..PICTURES {
        if let (Some(a), Some(b)) = halves(&seen) {
            assert_eq!(b, a + TAKE2_CODES, "the halves show different frames");
            return (a, b);
        }
        seen = viewer.next_picture().await;
    }
    panic!("no picture with both halves readable in {PICTURES}");
}

/// Waits for a picture whose whole width reads `code`.
async fn whole_picture_reads(viewer: &mut Viewer, code: u32) {
    let mut last = None;
    for _ in 0..PICTURES {
        let seen = viewer.next_picture().await;
        last = code_in(&seen, 0, 0, WIDTH as usize, HEIGHT as usize);
        if last == Some(code) {
            return;
        }
    }
    panic!("the picture never read {code}; last read {last:?}");
}

async fn seek(host: &mut Client, frame: i64) -> i64 {
    host.send(json!({"type": "seek", "frame": frame})).await;
    host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn side_by_side_both_halves_show_the_rooms_frame_through_seeks_and_play() {
    let server = server().await;
    let created = session(&server).await;
    let mut host = Client::join(server.addr, &created.host, "Dana").await;
    let ids = version_ids(&host.welcome);
    assert!(host.welcome["state"]["compare"].is_null());
    let mut viewer = Viewer::join(server.addr, &created.viewer).await;
    viewer.next_picture().await;

    host.send(json!({"type": "compare", "version": ids[1], "mode": "side"}))
        .await;
    let started = host.expect("compare").await;
    assert_eq!(started["compare"]["version"], ids[1]);
    assert_eq!(started["compare"]["mode"], "side");
    assert_eq!(started["compare"]["other"]["number"], 2);
    assert_eq!(started["by"], host.id());
    assert_eq!(viewer.ws.expect("compare").await, started);

    // Seeks: both halves land on the room's frame.
    for frame in [100, 180, 12] {
        let at = seek(&mut host, frame).await;
        let (a, _) = both_halves_from(&mut viewer, at).await;
        assert_eq!(a, frame as u32);
    }

    // Play (from 12, well before take 2 ends): every picture shows one
    // frame in both halves, and it moves.
    host.send(json!({"type": "play"})).await;
    let at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    let mut seen = viewer.picture_at_or_after(at).await;
    let mut pairs = Vec::new();
    for _ in 0..PICTURES {
        if let (Some(a), Some(b)) = halves(&seen) {
            assert_eq!(b, a + TAKE2_CODES, "the halves parted while playing");
            pairs.push(a);
        }
        if pairs.len() >= 12 {
            break;
        }
        seen = viewer.next_picture().await;
    }
    assert!(pairs.len() >= 12, "only {} readable pictures", pairs.len());
    assert!(pairs.windows(2).all(|w| w[0] <= w[1]), "{pairs:?}");
    assert!(
        pairs.last() > pairs.first(),
        "playback did not move: {pairs:?}"
    );
    host.send(json!({"type": "pause"})).await;
    host.expect("transport").await;

    // Past take 2's end its last frame holds beside take 1's.
    let at = seek(&mut host, 230).await;
    let mut seen = viewer.picture_at_or_after(at).await;
    let mut found = None;
    for _ in 0..PICTURES {
        if let (Some(a), Some(b)) = halves(&seen) {
            found = Some((a, b));
            break;
        }
        seen = viewer.next_picture().await;
    }
    assert_eq!(found, Some((230, TAKE2_CODES + TAKE2_FRAMES - 1)));

    // A late joiner is told the room compares, with the label to show.
    let late = Client::join(server.addr, &created.reviewer, "Lee").await;
    assert_eq!(late.welcome["state"]["compare"], started["compare"]);
    late.close().await;
    viewer.leave().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wipe_moves_where_the_driver_puts_it_and_stopping_shows_one_version() {
    let server = server().await;
    let created = session(&server).await;
    let mut host = Client::join(server.addr, &created.host, "Dana").await;
    let ids = version_ids(&host.welcome);
    let mut viewer = Viewer::join(server.addr, &created.viewer).await;
    viewer.next_picture().await;
    seek(&mut host, 60).await;

    // The wipe all the way right: all of A. All the way left: all of B.
    host.send(json!({"type": "compare", "version": ids[1], "mode": "wipe", "wipe": 1.0}))
        .await;
    assert_eq!(host.expect("compare").await["compare"]["wipe"], 1.0);
    whole_picture_reads(&mut viewer, 60).await;
    host.send(json!({"type": "compare", "version": ids[1], "mode": "wipe", "wipe": 0.0}))
        .await;
    let moved = host.expect("compare").await;
    assert_eq!(moved["compare"]["mode"], "wipe");
    assert_eq!(moved["compare"]["wipe"], 0.0);
    whole_picture_reads(&mut viewer, TAKE2_CODES + 60).await;

    // Stopping leaves the version on screen alone in the picture.
    host.send(json!({"type": "compare", "version": null})).await;
    assert!(host.expect("compare").await["compare"].is_null());
    whole_picture_reads(&mut viewer, 60).await;
    viewer.leave().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_belong_to_the_version_they_are_about_and_bad_compares_are_refused() {
    let server = server().await;
    let created = session(&server).await;
    let mut host = Client::join(server.addr, &created.host, "Dana").await;
    let ids = version_ids(&host.welcome);
    let mut reviewer = Client::join(server.addr, &created.reviewer, "Rey").await;

    // Typed refusals, and nothing changes for anyone.
    let refusals = [
        (
            json!({"type": "compare", "version": "nope"}),
            "unknown_version",
        ),
        (
            json!({"type": "compare", "version": ids[1], "mode": "diagonal"}),
            "malformed",
        ),
        (
            json!({"type": "compare", "version": ids[1], "mode": "wipe", "wipe": 1.5}),
            "malformed",
        ),
        (
            json!({"type": "compare", "version": ids[2]}),
            "cannot_compare",
        ),
    ];
    for (message, code) in refusals {
        host.send(message.clone()).await;
        assert_eq!(host.expect_error().await["code"], code, "{message}");
    }
    reviewer
        .send(json!({"type": "compare", "version": ids[1]}))
        .await;
    assert_eq!(reviewer.expect_error().await["code"], "not_driver");

    // Before a compare, a note about take 2 has nowhere to go.
    host.send(json!({"type": "note", "key": "n0", "frame": 10, "text": "B?", "version": ids[1]}))
        .await;
    assert_eq!(host.expect("noteRefused").await["code"], "unknown_version");

    host.send(json!({"type": "compare", "version": ids[1]}))
        .await;
    host.expect("compare").await;
    host.send(json!({"type": "note", "key": "n1", "frame": 10, "text": "A flares"}))
        .await;
    assert_eq!(host.expect("noteAck").await["note"]["versionId"], ids[0]);
    host.send(
        json!({"type": "note", "key": "n2", "frame": 10, "text": "B is better", "version": ids[1]}),
    )
    .await;
    let b_note = host.expect("noteAck").await["note"].clone();
    assert_eq!(b_note["versionId"], ids[1]);
    host.send(json!({"type": "reply", "key": "r1", "parent": b_note["id"], "text": "Agreed"}))
        .await;
    assert_eq!(host.expect("noteAck").await["note"]["versionId"], ids[1]);
    host.send(
        json!({"type": "drawing", "key": "d1", "frame": 10, "tool": "pen",
        "colour": "#ff3b30", "width": 0.01, "points": [[0.6, 0.5], [0.7, 0.6]], "version": ids[1]}),
    )
    .await;
    assert_eq!(
        host.expect("drawingAck").await["drawing"]["versionId"],
        ids[1]
    );
    // Take 3 is not on screen.
    host.send(json!({"type": "note", "key": "n3", "frame": 10, "text": "C", "version": ids[2]}))
        .await;
    assert_eq!(host.expect("noteRefused").await["code"], "unknown_version");

    // The export of take 2 carries the note made on its half.
    let (status, export) = server
        .request(
            "GET",
            &format!(
                "/api/sessions/{}/export/json?version={}",
                created.id, ids[1]
            ),
            Some(&created.host),
            None,
        )
        .await;
    assert_eq!(status, 200, "{export}");
    let texts: Vec<&str> = export["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert!(texts.contains(&"B is better"), "{export}");
    assert!(!texts.contains(&"A flares"), "{export}");

    // A cue leaves the item's compare behind: the room is told.
    host.send(json!({"type": "cue", "entry": 1})).await;
    let ended = reviewer
        .expect_where(|m| m["type"] == "compare" && m["compare"].is_null())
        .await;
    assert_eq!(ended["by"], host.id());
    reviewer.expect("cue").await;
    server.shutdown().await;
}
