//! Playlist sessions: one room over several versions or shots. The driver
//! cues the room from one to another; everyone switches timeline, version
//! and picture together, what is added is pinned to the version on screen,
//! and a restart comes back on the same entry.

mod common;
#[path = "support/opus.rs"]
mod opus;
#[path = "support/process.rs"]
mod process;
#[path = "support/tus.rs"]
mod tus;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::Path;

use common::{token, Client, TestServer};
use process::Process;
use serde_json::{json, Value};
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::timecode::{FrameRate, Timecode};
use viewer::Viewer;

/// Take 2's frame codes start here, so its pictures cannot pass for
/// take 1's.
const TAKE2_CODES: u32 = 10_000;

/// Two takes of one shot that differ in every way a timeline can: length,
/// rate and start label.
fn make_takes(root: &Path) {
    let take1 = DemoClipSpec {
        width: 320,
        height: 180,
        frames: 240,
        ..DemoClipSpec::default()
    };
    let take2 = DemoClipSpec {
        rate: FrameRate::FPS_25,
        frames: 96,
        start: "02:00:00:00".parse::<Timecode>().unwrap(),
        code_offset: TAKE2_CODES,
        ..take1
    };
    demo_clip::ensure(&root.join("take1.mov"), &take1).unwrap();
    demo_clip::ensure(&root.join("take2.mov"), &take2).unwrap();
}

fn playlist_request() -> Value {
    json!({"title": "Shot 010 takes", "playlist": [
        {"media": "take1.mov", "item": "Shot 010"},
        {"media": "take2.mov", "item": "Shot 010"},
    ]})
}

fn cue(entry: usize) -> Value {
    json!({"type": "cue", "entry": entry})
}

fn seek(frame: i64) -> Value {
    json!({"type": "seek", "frame": frame})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_driver_cues_the_room_between_versions_and_timeline_version_and_picture_follow() {
    let root = std::env::temp_dir().join(format!("syncreel-playlist-{}", std::process::id()));
    make_takes(&root);
    let server = TestServer::start_with(move |c| {
        c.media.root = root;
        // The test viewer decodes VP8.
        c.media.codec = "vp8".into();
        c.media.stream_width = 320;
        c.media.stream_height = 180;
    })
    .await;
    let created = server.create_session_with(playlist_request()).await;
    let mut host = Client::join(server.addr, &created.host, "Dana").await;
    let mut viewer = Viewer::join(server.addr, &created.reviewer).await;

    let playlist = host.welcome["playlist"].as_array().unwrap().clone();
    assert_eq!(playlist.len(), 2);
    let (v1, v2) = (&playlist[0]["version"], &playlist[1]["version"]);
    assert_eq!(
        (v1["item"].as_str(), v1["number"].as_i64()),
        (Some("Shot 010"), Some(1))
    );
    assert_eq!(
        (v2["item"].as_str(), v2["number"].as_i64()),
        (Some("Shot 010"), Some(2))
    );
    assert_eq!(playlist[1]["fps"], "25");
    assert_eq!(playlist[1]["durationFrames"], 96);
    assert_eq!(playlist[1]["startTimecode"], "02:00:00:00");
    assert_eq!(host.welcome["state"]["entry"], 0);
    assert_eq!(host.welcome["media"]["version"], *v1);
    assert_eq!(created.body["version"], *v1);

    // Only the driver moves the room, and only to an entry that exists.
    viewer.ws.send(cue(1)).await;
    assert_eq!(viewer.ws.expect_error().await["code"], "not_driver");
    host.send(cue(2)).await;
    assert_eq!(host.expect_error().await["code"], "unknown_entry");

    host.send(seek(200)).await;
    host.expect("transport").await;
    host.send(json!({"type": "note", "key": "n1", "frame": 200, "text": "Take 1 flares"}))
        .await;
    assert_eq!(host.expect("noteAck").await["note"]["versionId"], v1["id"]);

    host.send(cue(1)).await;
    let moved = host.expect("cue").await;
    assert_eq!(moved["entry"], 1);
    assert_eq!(moved["by"], host.id());
    assert_eq!(moved["session"]["fps"], "25");
    assert_eq!(moved["session"]["durationFrames"], 96);
    assert_eq!(moved["session"]["startTimecode"], "02:00:00:00");
    assert_eq!(moved["mediaVersion"], *v2);
    assert_eq!(moved["transport"]["anchorFrame"], 0);
    assert!(!moved["transport"]["playing"].as_bool().unwrap());
    assert_eq!(viewer.ws.expect("cue").await, moved);

    // The picture is take 2's first frame from the cue's instant on.
    let at = moved["executeAt"].as_i64().unwrap();
    assert_eq!(viewer.picture_at_or_after(at).await.code, Some(TAKE2_CODES));

    // Take 2's timeline: frame 200 is past its end; frame 90 is take 2's.
    host.send(seek(200)).await;
    assert_eq!(host.expect_error().await["code"], "frame_out_of_range");
    host.send(seek(90)).await;
    let at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    assert_eq!(
        viewer.picture_at_or_after(at).await.code,
        Some(TAKE2_CODES + 90)
    );

    // What is added now is about take 2, and so is an approval.
    host.send(json!({"type": "note", "key": "n2", "frame": 90, "text": "Better"}))
        .await;
    assert_eq!(host.expect("noteAck").await["note"]["versionId"], v2["id"]);
    host.send(json!({"type": "approve", "key": "a1", "status": "approved", "version": v2["id"]}))
        .await;
    assert_eq!(
        host.expect("approvalAck").await["approval"]["versionId"],
        v2["id"]
    );
    host.send(json!({"type": "approve", "key": "a2", "status": "approved", "version": v1["id"]}))
        .await;
    assert_eq!(
        host.expect("approvalRefused").await["code"],
        "unknown_version"
    );

    // A late joiner lands on take 2 with every note, each with its version.
    let mut late = Client::join(server.addr, &created.viewer, "Vic").await;
    assert_eq!(late.welcome["state"]["entry"], 1);
    assert_eq!(late.welcome["session"]["durationFrames"], 96);
    assert_eq!(late.welcome["media"]["version"], *v2);
    let notes = late.expect("notes").await["notes"].clone();
    let versions: Vec<&Value> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| &n["versionId"])
        .collect();
    assert_eq!(versions, [&v1["id"], &v2["id"]]);

    // The export is the review of the version on screen, on its timeline.
    let (status, export) = server
        .request(
            "GET",
            &format!("/api/sessions/{}/export/json", created.id),
            Some(&created.host),
            None,
        )
        .await;
    assert_eq!(status, 200, "{export}");
    let exported: Vec<&str> = export["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(exported, ["Better"], "{export}");
    assert_eq!(export["notes"][0]["timecode"], "02:00:03:15");

    // Any entry's review can be exported, labelled on its own timeline.
    let of_version =
        |version: &str| format!("/api/sessions/{}/export/json?version={version}", created.id);
    let (status, take1) = server
        .request(
            "GET",
            &of_version(v1["id"].as_str().unwrap()),
            Some(&created.host),
            None,
        )
        .await;
    assert_eq!(status, 200, "{take1}");
    let notes: Vec<(&str, &str)> = take1["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["text"].as_str().unwrap(), n["timecode"].as_str().unwrap()))
        .collect();
    assert_eq!(notes, [("Take 1 flares", "01:00:08:08")], "{take1}");
    let (status, refused) = server
        .request("GET", &of_version("v-nope"), Some(&created.host), None)
        .await;
    assert_eq!(
        (status, refused["error"]["code"].as_str()),
        (404, Some("unknown_version"))
    );

    // And back: take 1 again, at its first frame.
    host.send(cue(0)).await;
    let back = host.expect("cue").await;
    assert_eq!(back["session"]["durationFrames"], 240);
    let at = back["executeAt"].as_i64().unwrap();
    assert_eq!(viewer.picture_at_or_after(at).await.code, Some(0));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cue_while_nobody_watches_brings_the_next_viewer_the_new_entrys_picture() {
    let root = std::env::temp_dir().join(format!("syncreel-playlist-{}", std::process::id()));
    make_takes(&root);
    let server = TestServer::start_with(move |c| {
        c.media.root = root;
        c.media.codec = "vp8".into();
        c.media.stream_width = 320;
        c.media.stream_height = 180;
        c.media.idle_teardown_ms = 200;
    })
    .await;
    let created = server.create_session_with(playlist_request()).await;
    let mut host = Client::join(server.addr, &created.host, "Dana").await;
    let mut viewer = Viewer::join(server.addr, &created.reviewer).await;
    assert_eq!(viewer.first_readable().await, 0);
    viewer.leave().await;
    let running = || common::metric(server.addr, "syncreel_media_pipelines");
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while running().await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "the players stop");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // The players are down: the room moves to take 2 without them, and
    // they come back on take 2's frame.
    host.send(cue(1)).await;
    host.expect("cue").await;
    host.send(seek(90)).await;
    let seek_at = host.expect("transport").await["transport"]["anchorTime"]
        .as_i64()
        .unwrap();
    let mut viewer = Viewer::join(server.addr, &created.reviewer).await;
    // A viewer that joins before the seek's instant first sees what the
    // room shows until then; from that instant on, take 2's frame 90.
    let mut code = None;
    for _ in 0..5 {
        code = viewer.picture_at_or_after(seek_at).await.code;
        if code.is_some() {
            break;
        }
    }
    assert_eq!(code, Some(TAKE2_CODES + 90));
    assert_eq!(running().await, 1);
    viewer.leave().await;
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_playlist_session_comes_back_on_its_entry_after_kill_9() {
    let data = std::env::temp_dir().join(format!("syncreel-playlist-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    make_takes(&data.join("media"));
    let mut server = Process::start(&data);
    let created = server.post("/api/sessions", playlist_request()).await;
    let mut host = Client::join(server.addr, &token(&created, "host"), "Dana").await;
    host.send(cue(1)).await;
    let moved = host.expect("cue").await;
    host.send(seek(40)).await;
    host.expect("transport").await;
    // Acknowledged after the commit that also holds the cue and the seek,
    // which were queued before it.
    host.send(json!({"type": "note", "key": "n", "frame": 40, "text": "Hold here"}))
        .await;
    let note = host.expect("noteAck").await["note"].clone();
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    let server = Process::start(&data);
    let mut back = Client::join(server.addr, &token(&created, "host"), "Dana").await;
    assert_eq!(back.welcome["state"]["entry"], 1);
    assert_eq!(back.welcome["state"]["transport"]["anchorFrame"], 40);
    assert_eq!(back.welcome["session"]["durationFrames"], 96);
    assert_eq!(back.welcome["session"]["fps"], "25");
    assert_eq!(back.welcome["media"]["version"], moved["mediaVersion"]);
    assert_eq!(back.welcome["playlist"].as_array().unwrap().len(), 2);
    assert_eq!(back.expect("notes").await["notes"], json!([note]));
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_uploaded_into_a_running_session_is_cued_at_the_same_timecode_and_kept() {
    let data =
        std::env::temp_dir().join(format!("syncreel-playlist-upload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    make_takes(&data.join("media"));
    // v2 of take 1: the same start timecode, its own frame codes.
    let v2_path = data.join("take1 v2.mov");
    let v2_spec = DemoClipSpec {
        width: 320,
        height: 180,
        frames: 120,
        code_offset: 30_000,
        ..DemoClipSpec::default()
    };
    demo_clip::ensure(&v2_path, &v2_spec).unwrap();
    let v2 = std::fs::read(&v2_path).unwrap();
    // VP8, which the test viewer decodes.
    let env = [
        ("SYNCREEL_UPLOADS__RESERVE_FREE_BYTES", "0"),
        ("SYNCREEL_MEDIA__CODEC", "vp8"),
        ("SYNCREEL_MEDIA__STREAM_WIDTH", "320"),
        ("SYNCREEL_MEDIA__STREAM_HEIGHT", "180"),
    ];
    let mut server = Process::start_with(&data, &env);
    let created = server
        .post(
            "/api/sessions",
            json!({"title": "Take 1", "media": "take1.mov"}),
        )
        .await;
    let id = created["session"]["id"].as_str().unwrap().to_string();
    let host_token = token(&created, "host");
    let mut host = Client::join(server.addr, &host_token, "Dana").await;
    let mut reviewer = Client::join(server.addr, &token(&created, "reviewer"), "Rey").await;
    assert_eq!(host.welcome["playlist"], json!([]), "one file");
    host.send(seek(100)).await;
    host.expect("transport").await;

    // The host's link uploads v2 into the session.
    let tus = tus::Tus::new(server.addr, Some(&host_token));
    let upload = tus
        .created(
            v2.len() as u64,
            &[
                ("filename", "take1 v2.mov"),
                ("item", "take1"),
                ("session", &id),
            ],
        )
        .await;
    let done = tus.patch(&upload, 0, v2.clone().into(), None).await;
    assert_eq!(done.status, 204, "{}", done.body);
    assert_eq!(done.header("syncreel-version-number").as_deref(), Some("2"));

    // Everyone hears of the new playlist; the room has not moved.
    for client in [&mut host, &mut reviewer] {
        let playlist = client.expect("playlist").await;
        assert_eq!(playlist["entry"], 0, "{playlist}");
        let entries = playlist["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 2, "{playlist}");
        assert_eq!(entries[0]["version"]["number"], 1);
        assert_eq!(entries[1]["version"]["item"], "take1");
        assert_eq!(entries[1]["version"]["number"], 2);
        assert_eq!(entries[1]["startTimecode"], "01:00:00:00");
        assert_eq!(
            (
                entries[1]["sourceWidth"].as_u64(),
                entries[1]["durationFrames"].as_i64()
            ),
            (Some(320), Some(120))
        );
    }
    // Switched at the same timecode: v2's frame 100, its picture's code.
    let mut viewer = Viewer::join(server.addr, &token(&created, "viewer")).await;
    host.send(json!({"type": "cue", "entry": 1, "sameTimecode": true}))
        .await;
    let cued = host.expect("cue").await;
    assert_eq!(cued["entry"], 1);
    assert_eq!(cued["transport"]["anchorFrame"], 100, "{cued}");
    assert_eq!(cued["mediaVersion"]["number"], 2);
    // The first picture after a switch may come from a decoder still
    // without its keyframe (unreadable); the first readable one counts.
    let mut seen = viewer
        .picture_at_or_after(cued["executeAt"].as_i64().unwrap())
        .await;
    for _ in 0..5 {
        if seen.code.is_some() {
            break;
        }
        seen = viewer.next_picture().await;
    }
    assert_eq!(seen.code, Some(30_100), "v2's picture of 01:00:04:04");
    host.send(json!({"type": "note", "key": "n", "frame": 100, "text": "Better"}))
        .await;
    host.expect("noteAck").await;
    server.child.kill().unwrap();
    server.child.wait().unwrap();

    // The record has the playlist and where the room stood in it.
    let server = Process::start_with(&data, &env);
    let back = Client::join(server.addr, &host_token, "Dana").await;
    assert_eq!(back.welcome["state"]["entry"], 1);
    assert_eq!(back.welcome["state"]["transport"]["anchorFrame"], 100);
    assert_eq!(back.welcome["playlist"].as_array().unwrap().len(), 2);
    assert_eq!(back.welcome["media"]["version"]["number"], 2);
    let _ = std::fs::remove_dir_all(&data);
}
