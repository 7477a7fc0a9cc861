//! Exports read back by the tools they are for: OpenTimelineIO (from
//! PyPI, installed by scripts/setup.sh into .venv-otio) reads the EDL with
//! its CMX3600 adapter and the OTIO JSON natively, and finds every note as
//! a marker at its timecode.

mod common;

use std::process::Command;

use common::{Client, TestServer};
use serde_json::{json, Value};

/// The Python that has OpenTimelineIO; `SYNCREEL_OTIO_PYTHON` overrides.
fn otio_python() -> String {
    std::env::var("SYNCREEL_OTIO_PYTHON")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/.venv-otio/bin/python").into())
}

/// Reads `path` with OpenTimelineIO and returns its markers as
/// `[{name, color, start_tc, rate}]`. An EDL does not say its rate, so
/// it is read at `edl_rate`, as an editor tells their NLE on import.
fn otio_markers_at(path: &std::path::Path, edl_rate: f64) -> Value {
    let script = r#"
import json, sys
import opentimelineio as otio
rate = float(sys.argv[2])
if sys.argv[1].endswith(".edl"):
    tl = otio.adapters.read_from_file(sys.argv[1], rate=rate)
else:
    tl = otio.adapters.read_from_file(sys.argv[1])
out = []
clips = []
for clip in tl.find_clips():
    start = clip.source_range.start_time if clip.source_range else otio.opentime.RationalTime(0, 24)
    clips.append({"tc": otio.opentime.to_timecode(start, start.rate),
                  "frames": clip.source_range.duration.value if clip.source_range else None})
    for m in clip.markers:
        t = m.marked_range.start_time
        # EDL locators are placed relative to the clip's source range;
        # OTIO files keep absolute media time. Report both.
        out.append({"name": m.name, "color": str(m.color),
                    "tc": otio.opentime.to_timecode(t, t.rate),
                    "rate": t.rate})
print(json.dumps({"markers": out, "clips": clips, "name": tl.name}))
"#;
    let out = Command::new(otio_python())
        .args(["-c", script])
        .arg(path)
        .arg(edl_rate.to_string())
        .output()
        .expect("OpenTimelineIO's Python runs (scripts/setup.sh installs it)");
    assert!(
        out.status.success(),
        "OpenTimelineIO could not read {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A session's export over REST, as text.
async fn exported(server: &TestServer, s: &common::CreatedSession, format: &str) -> String {
    let (status, body) = server
        .request(
            "GET",
            &format!("/api/sessions/{}/export/{format}", s.id),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    match body {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

fn otio_markers(path: &std::path::Path) -> Value {
    otio_markers_at(path, 24.0)
}

#[tokio::test]
async fn notes_export_to_an_edl_and_otio_that_opentimelineio_reads_with_markers_at_their_timecodes()
{
    let server = TestServer::start().await;
    let s = server.create_session().await; // 24 fps from 01:00:00:00
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    // The first is a range note: OpenTimelineIO must pass over the EDL's
    // NOTE RANGE line after its locator.
    for (key, frame, frame_out, text) in [
        ("a", 245, Some(250), "Sky too warm"),
        ("b", 2400, None, "Boom in shot,\nupper left"),
    ] {
        reviewer
            .send(json!({"type": "note", "key": key, "frame": frame, "frameOut": frame_out, "text": text}))
            .await;
        reviewer.expect("noteAck").await;
    }

    let dir = std::env::temp_dir().join(format!("syncreel-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (format, expected_tcs) in [
        ("edl", ["01:00:10:05", "01:01:40:00"]),
        ("otio", ["01:00:10:05", "01:01:40:00"]),
    ] {
        let text = exported(&server, &s, format).await;
        if format == "edl" {
            assert!(
                text.contains("* NOTE RANGE: 01:00:10:05 01:00:10:11\n"),
                "{text}"
            );
        }
        let path = dir.join(format!("notes.{format}"));
        std::fs::write(&path, text).unwrap();
        let read = otio_markers(&path);
        let markers = read["markers"].as_array().unwrap();
        assert_eq!(markers.len(), 2, "{format}: {read}");
        let tcs: Vec<&str> = markers.iter().map(|m| m["tc"].as_str().unwrap()).collect();
        assert_eq!(tcs, expected_tcs, "{format}: {read}");
        assert_eq!(markers[0]["rate"], 24.0);
        assert!(
            markers[0]["name"]
                .as_str()
                .unwrap()
                .contains("Sky too warm"),
            "{format}: {read}"
        );
        assert!(
            markers[1]["name"]
                .as_str()
                .unwrap()
                .contains("Boom in shot, upper left"),
            "{format}: {read}"
        );
    }

    // CSV and JSON come from the same record; only the host may export.
    let (status, body) = server
        .request(
            "GET",
            &format!("/api/sessions/{}/export/json", s.id),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["notes"][0]["timecode"], "01:00:10:05");
    let (status, _) = server
        .request(
            "GET",
            &format!("/api/sessions/{}/export/csv", s.id),
            Some(&s.reviewer),
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, body) = server
        .request(
            "GET",
            &format!("/api/sessions/{}/export/pdf", s.id),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );

    // The CLI reads the same record straight from the data dir, beside
    // the running server.
    let csv = dir.join("notes.csv");
    let out = Command::new(env!("CARGO_BIN_EXE_syncreel"))
        .args(["export", "--session", &s.id, "--format", "csv", "--out"])
        .arg(&csv)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&csv).unwrap();
    let rows: Vec<&str> = text.lines().collect();
    assert!(rows[0].starts_with("id,frame,timecode"));
    assert!(
        rows[1].contains(",245,01:00:10:05,") && rows[1].ends_with("Sky too warm,,"),
        "{text}"
    );
    assert!(text.contains("\"Boom in shot,\nupper left\""), "{text}");
    let missing = Command::new(env!("CARGO_BIN_EXE_syncreel"))
        .args([
            "export",
            "--session",
            "nope",
            "--format",
            "csv",
            "--out",
            "-",
            "--data-dir",
        ])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no session nope"));
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await;
}

/// A small clip with the frame code in every picture.
fn media_root() -> std::path::PathBuf {
    static ROOT: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("syncreel-report-{}", std::process::id()));
        let spec = syncreel::media::demo_clip::DemoClipSpec {
            width: 640,
            height: 360,
            frames: 72,
            ..Default::default()
        };
        syncreel::media::demo_clip::ensure(&root.join("shot.mov"), &spec).unwrap();
        root
    })
    .clone()
}

/// Decodes a JPEG to packed RGB with GStreamer.
fn decode_jpeg(jpeg: &[u8]) -> (Vec<u8>, usize, usize) {
    use gstreamer as gst;
    use gstreamer::prelude::*;
    gst::init().unwrap();
    let pipeline = gst::parse::launch(
        "appsrc name=src caps=image/jpeg ! jpegdec ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink",
    )
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gstreamer_app::AppSrc>()
        .unwrap();
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(gst::Buffer::from_slice(jpeg.to_vec()))
        .unwrap();
    src.end_of_stream().unwrap();
    let sample = sink
        .try_pull_sample(gst::ClockTime::from_seconds(10))
        .expect("the JPEG decodes");
    let caps = sample.caps().unwrap().structure(0).unwrap();
    let (w, h) = (
        caps.get::<i32>("width").unwrap() as usize,
        caps.get::<i32>("height").unwrap() as usize,
    );
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let stride = map.len() / h;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        rgb.extend_from_slice(&map[row * stride..row * stride + w * 3]);
    }
    drop(map);
    pipeline.set_state(gst::State::Null).unwrap();
    (rgb, w, h)
}

#[tokio::test]
async fn any_participant_gets_a_still_of_any_frame_for_a_look_of_their_own() {
    let root = media_root();
    let server = TestServer::with_media(&root).await;
    let s = server
        .create_session_with(json!({"title": "Shot 050", "media": "shot.mov"}))
        .await;
    let still = |frame: i64, token: Option<String>| {
        let path = format!("/api/sessions/{}/still/{frame}?width=640", s.id);
        let addr = server.addr;
        async move { common::request_bytes(addr, "GET", &path, token.as_deref(), None).await }
    };
    // A viewer may look: the exact frame, decoded.
    let (status, content_type, jpeg) = still(41, Some(s.viewer.clone())).await;
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    let (rgb, w, h) = decode_jpeg(&jpeg);
    assert_eq!((w, h), (640, 360));
    assert_eq!(common::frame_code_rgb(&rgb, w, h), Some(41));

    let refused = |status: u16, body: &[u8]| {
        let body: Value = serde_json::from_slice(body).unwrap();
        (status, body["error"]["code"].as_str().unwrap().to_string())
    };
    let (status, _, body) = still(72, Some(s.viewer.clone())).await;
    assert_eq!(refused(status, &body), (400, "frame_out_of_range".into()));
    let (status, _, body) = still(1, None).await;
    assert_eq!(refused(status, &body), (401, "unauthorized".into()));
    let path = format!("/api/sessions/{}/still/forty?width=640", s.id);
    let (status, _, body) =
        common::request_bytes(server.addr, "GET", &path, Some(&s.viewer), None).await;
    assert_eq!(refused(status, &body), (400, "bad_request".into()));
    let other = server.create_session().await;
    let (status, _, body) = still(1, Some(other.viewer.clone())).await;
    assert_eq!(refused(status, &body), (403, "forbidden".into()));
    // A session without media has no picture to show.
    let path = format!("/api/sessions/{}/still/1", other.id);
    let (status, _, body) =
        common::request_bytes(server.addr, "GET", &path, Some(&other.viewer), None).await;
    assert_eq!(refused(status, &body), (404, "no_media".into()));
    server.shutdown().await;
}

#[tokio::test]
async fn the_html_report_shows_each_noted_frame_exactly_with_its_drawings_on_it() {
    use base64::Engine as _;
    let root = media_root();
    let server = TestServer::with_media(&root).await;
    let s = server
        .create_session_with(json!({"title": "Shot <040>", "media": "shot.mov"}))
        .await;
    let id = s.id.clone();
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    host.send(json!({"type": "note", "key": "n", "frame": 30, "text": "Fix <script>alert(1)</script> & this"}))
        .await;
    let note = host.expect("noteAck").await["note"].clone();
    host.send(json!({"type": "reply", "key": "r", "parent": note["id"], "text": "On it"}))
        .await;
    host.expect("noteAck").await;
    // A bold red box across the middle of frame 30.
    host.send(
        json!({"type": "drawing", "key": "d", "frame": 30, "tool": "rect",
                     "colour": "#ff0000", "width": 0.03, "points": [[0.25, 0.25], [0.75, 0.6]]}),
    )
    .await;
    host.expect("drawingAck").await;
    host.send(
        json!({"type": "drawing", "key": "e", "frame": 50, "tool": "pen",
                     "colour": "#00ff00", "width": 0.02, "points": [[0.1, 0.1], [0.9, 0.1]]}),
    )
    .await;
    let gone = host.expect("drawingAck").await["drawing"]["id"].clone();
    host.send(json!({"type": "erase", "key": "x", "drawing": gone}))
        .await;
    host.expect("drawingAck").await;

    let (status, page) = server
        .request(
            "GET",
            &format!("/api/sessions/{id}/export/html"),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap().to_string();
    assert!(page.contains("Shot &lt;040&gt;"), "titles are escaped");
    assert!(page.contains("Fix &lt;script&gt;alert(1)&lt;/script&gt; &amp; this"));
    assert!(!page.contains("<script>"));
    assert!(page.contains("On it"), "replies are in the report");
    assert!(
        !page.contains("id=\"f50\""),
        "an erased drawing's frame gets no still"
    );
    let section = page
        .split("id=\"f30\"")
        .nth(1)
        .expect("a section for frame 30");
    let data = section
        .split("data:image/jpeg;base64,")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let (rgb, w, h) = decode_jpeg(&jpeg);
    assert_eq!((w, h), (960, 540));
    // The still is frame 30 exactly: its frame code says so.
    assert_eq!(common::frame_code_rgb(&rgb, w, h), Some(30));
    // The box is painted on: its left edge is red, its inside is not.
    let px = |x: usize, y: usize| &rgb[(y * w + x) * 3..(y * w + x) * 3 + 3];
    let edge = px(w / 4, h * 2 / 5);
    assert!(
        edge[0] > 200 && edge[1] < 60 && edge[2] < 60,
        "edge {edge:?}"
    );
    let inside = px(w / 2, h * 2 / 5);
    assert!(
        !(inside[0] > 200 && inside[1] < 60 && inside[2] < 60),
        "inside {inside:?}"
    );

    // The CLI writes the same report from the data dir, with a progress bar.
    let out_path = server.data_dir.join("report.html");
    let out = Command::new(env!("CARGO_BIN_EXE_syncreel"))
        .args(["export", "--session", &id, "--format", "html", "--out"])
        .arg(&out_path)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .arg("--media-root")
        .arg(&root)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("stills [") && stderr.contains("1/1"),
        "{stderr}"
    );
    let written = std::fs::read_to_string(&out_path).unwrap();
    assert!(written.contains("data:image/jpeg;base64,"));
    server.shutdown().await;
}

#[tokio::test]
async fn drop_frame_notes_land_on_their_drop_frame_timecodes_in_opentimelineio() {
    let server = TestServer::start().await;
    let s = server
        .create_session_with(
            json!({"title": "DF reel", "fps": "29.97", "dropFrame": true,
                                    "startTimecode": "01:00:00;00", "durationFrames": 36000}),
        )
        .await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    // 1800 frames is one minute and two labels in (;00 and ;01 of minute
    // one are skipped); 17982 frames is exactly ten minutes.
    for (key, frame) in [("a", 1800), ("b", 17982)] {
        host.send(json!({"type": "note", "key": key, "frame": frame, "text": key}))
            .await;
        host.expect("noteAck").await;
    }
    let dir = std::env::temp_dir().join(format!("syncreel-export-df-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for format in ["edl", "otio"] {
        let text = exported(&server, &s, format).await;
        let path = dir.join(format!("df.{format}"));
        std::fs::write(&path, &text).unwrap();
        let read = otio_markers_at(&path, 30000.0 / 1001.0);
        assert_eq!(
            read["clips"],
            json!([{"tc": "01:00:00;00", "frames": 36000.0}]),
            "{format}: the session's span, counted in drop-frame"
        );
        if format == "edl" {
            // The locators carry drop-frame labels, as NLEs and OTIO's own
            // EDL writer put them. The adapter's reader (otio-cmx3600-adapter
            // 1.x) matches only `hh:mm:ss:ff` in a LOC line, so it skips
            // these; the labels themselves are checked here.
            assert!(
                text.contains("* LOC: 01:01:00;02 RED     Dana: a"),
                "{text}"
            );
            assert!(
                text.contains("* LOC: 01:10:00;00 RED     Dana: b"),
                "{text}"
            );
            continue;
        }
        let tcs: Vec<&str> = read["markers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["tc"].as_str().unwrap())
            .collect();
        assert_eq!(tcs, ["01:01:00;02", "01:10:00;00"], "{format}: {read}");
        let rate = read["markers"][0]["rate"].as_f64().unwrap();
        assert!((rate - 29.97).abs() < 0.01, "{format}: {read}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await;
}

/// Three short clips for playlists: two at 24 fps with their own start
/// labels, and one at 25.
fn reel_media_root() -> std::path::PathBuf {
    use syncreel::media::demo_clip::{ensure, DemoClipSpec};
    use syncreel::timecode::{FrameRate, Timecode};
    let root = std::env::temp_dir().join(format!("syncreel-reel-{}", std::process::id()));
    let shot = DemoClipSpec {
        width: 320,
        height: 180,
        frames: 72,
        ..Default::default()
    };
    let pickup = DemoClipSpec {
        frames: 48,
        start: "05:00:00:00".parse::<Timecode>().unwrap(),
        ..shot
    };
    let pal = DemoClipSpec {
        rate: FrameRate::FPS_25,
        frames: 50,
        start: "02:00:00:00".parse::<Timecode>().unwrap(),
        ..shot
    };
    ensure(&root.join("shot.mov"), &shot).unwrap();
    ensure(&root.join("pickup.mov"), &pickup).unwrap();
    ensure(&root.join("pal.mov"), &pal).unwrap();
    root
}

/// A REST export of `query` (`?version=…`), as (status, text or JSON).
async fn exported_as(
    server: &TestServer,
    s: &common::CreatedSession,
    format: &str,
    query: &str,
) -> (u16, Value) {
    server
        .request(
            "GET",
            &format!("/api/sessions/{}/export/{format}{query}", s.id),
            Some(&s.host),
            None,
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_playlist_exports_as_one_timeline_with_each_entrys_notes_on_its_own_timecode() {
    let root = reel_media_root();
    let server = TestServer::with_media(&root).await;
    let reel = server
        .create_session_with(json!({"title": "Reel 3", "playlist": [
            {"media": "shot.mov", "item": "Shot 010"},
            {"media": "pickup.mov", "item": "Shot 020"},
        ]}))
        .await;
    let mut host = Client::join(server.addr, &reel.host, "Dana").await;
    host.send(json!({"type": "note", "key": "a", "frame": 60, "text": "Flare"}))
        .await;
    host.expect("noteAck").await;
    host.send(json!({"type": "cue", "entry": 1})).await;
    host.expect("cue").await;
    host.send(json!({"type": "note", "key": "b", "frame": 10, "text": "Boom in frame"}))
        .await;
    host.expect("noteAck").await;

    // The EDL: one event per entry, back to back from 01:00:00:00, each
    // over its own source timecode, its notes as locators there.
    let (status, edl) = exported_as(&server, &reel, "edl", "?version=all").await;
    assert_eq!(status, 200, "{edl}");
    let edl = edl.as_str().unwrap().to_string();
    assert!(
        edl.contains(
            "001  AX       V     C        01:00:00:00 01:00:03:00 01:00:00:00 01:00:03:00\n\
         * FROM CLIP NAME: Shot 010 v1\n\
         * LOC: 01:00:02:12 RED     Dana: Flare\n\
         002  AX       V     C        05:00:00:00 05:00:02:00 01:00:03:00 01:00:05:00\n\
         * FROM CLIP NAME: Shot 020 v1\n\
         * LOC: 05:00:00:10 RED     Dana: Boom in frame\n"
        ),
        "{edl}"
    );
    let dir = std::env::temp_dir().join(format!("syncreel-reel-out-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("reel.edl");
    std::fs::write(&path, &edl).unwrap();
    let read = otio_markers(&path);
    assert_eq!(
        read["clips"],
        json!([{"tc": "01:00:00:00", "frames": 72.0}, {"tc": "05:00:00:00", "frames": 48.0}]),
        "{read}"
    );
    let markers: Vec<(&str, &str)> = read["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["name"].as_str().unwrap(), m["tc"].as_str().unwrap()))
        .collect();
    assert_eq!(
        markers,
        [
            ("Dana: Flare", "01:00:02:12"),
            ("Dana: Boom in frame", "05:00:00:10")
        ]
    );

    // OTIO and JSON hold the same, entry by entry.
    let (status, otio) = exported_as(&server, &reel, "otio", "?version=all").await;
    assert_eq!(status, 200, "{otio}");
    let path = dir.join("reel.otio");
    std::fs::write(&path, otio.to_string()).unwrap();
    let read = otio_markers(&path);
    assert_eq!(read["clips"].as_array().unwrap().len(), 2, "{read}");
    let tcs: Vec<&Value> = read["markers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| &m["tc"])
        .collect();
    assert_eq!(tcs, [&json!("01:00:02:12"), &json!("05:00:00:10")]);
    let (status, whole) = exported_as(&server, &reel, "json", "?version=all").await;
    assert_eq!(status, 200, "{whole}");
    let texts: Vec<Vec<&Value>> = whole["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["notes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| &n["timecode"])
                .collect()
        })
        .collect();
    assert_eq!(
        texts,
        [vec![&json!("01:00:02:12")], vec![&json!("05:00:00:10")]]
    );
    // A report of one entry has the stills of that entry's own file.
    let pickup = host.welcome["playlist"][1]["version"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, report) = exported_as(&server, &reel, "html", &format!("?version={pickup}")).await;
    assert_eq!(status, 200);
    assert!(
        report.as_str().unwrap().contains("data:image/jpeg;base64,"),
        "the pickup's report has its stills"
    );
    // A spreadsheet or a report is one version at a time.
    let (status, refused) = exported_as(&server, &reel, "csv", "?version=all").await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (422, &json!("not_exportable"))
    );

    // A playlist that mixes rates has no single-rate EDL; its OTIO keeps
    // each clip at its own rate.
    let mixed = server
        .create_session_with(json!({"title": "Mixed", "playlist": [
            {"media": "shot.mov"}, {"media": "pal.mov"},
        ]}))
        .await;
    let (status, refused) = exported_as(&server, &mixed, "edl", "?version=all").await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (422, &json!("not_exportable"))
    );
    let why = refused["error"]["message"].as_str().unwrap();
    assert!(why.contains("23.976 fps and 25 fps"), "{why}");
    let (status, otio) = exported_as(&server, &mixed, "otio", "?version=all").await;
    assert_eq!(status, 200, "{otio}");
    let path = dir.join("mixed.otio");
    std::fs::write(&path, otio.to_string()).unwrap();
    let read = otio_markers(&path);
    assert_eq!(
        read["clips"],
        json!([{"tc": "01:00:00:00", "frames": 72.0}, {"tc": "02:00:00:00", "frames": 50.0}]),
        "{read}"
    );

    // The CLI writes the same EDL from the record.
    let out = dir.join("cli.edl");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_syncreel"))
        .args([
            "export",
            "--session",
            &reel.id,
            "--format",
            "edl",
            "--media-version",
            "all",
        ])
        .arg("--data-dir")
        .arg(&server.data_dir)
        .arg("--out")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&out).unwrap(), edl);
    let _ = std::fs::remove_dir_all(&dir);
    server.shutdown().await;
}

/// The share of pixels in rows `rows` of two RGB pictures that differ
/// clearly (by more than 32 in some channel).
fn changed_share(a: &[u8], b: &[u8], w: usize, rows: std::ops::Range<usize>) -> f64 {
    let span = rows.start * w * 3..rows.end * w * 3;
    let changed = a[span.clone()]
        .chunks_exact(3)
        .zip(b[span.clone()].chunks_exact(3))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 32))
        .count();
    changed as f64 / (span.len() / 3) as f64
}

#[tokio::test]
async fn a_watermarked_sessions_peek_and_report_stills_carry_its_mark() {
    use base64::Engine as _;
    let root = media_root();
    let server = TestServer::with_media(&root).await;
    let plain = server
        .create_session_with(json!({"title": "Shot 050", "media": "shot.mov"}))
        .await;
    let marked = server
        .create_session_with(
            json!({"title": "Shot 050", "media": "shot.mov", "watermark": "CONFIDENTIAL – {title}"}),
        )
        .await;
    let peek = |s: &common::CreatedSession| {
        let path = format!("/api/sessions/{}/still/30?width=960", s.id);
        let (addr, token) = (server.addr, s.viewer.clone());
        async move {
            let (status, _, jpeg) =
                common::request_bytes(addr, "GET", &path, Some(&token), None).await;
            assert_eq!(status, 200);
            decode_jpeg(&jpeg)
        }
    };
    let (bare, w, h) = peek(&plain).await;
    let (mark, _, _) = peek(&marked).await;
    // In the middle of the picture, and nowhere near the top or the
    // frame code, which still reads.
    let middle = changed_share(&mark, &bare, w, h * 2 / 5..h * 3 / 5);
    assert!(
        middle > 0.02,
        "{:.2} % of the middle changed",
        middle * 100.0
    );
    assert_eq!(changed_share(&mark, &bare, w, 0..h / 5), 0.0);
    assert_eq!(common::frame_code_rgb(&mark, w, h), Some(30));

    // The report's still of a noted frame is marked alike.
    let mut host = Client::join(server.addr, &marked.host, "Dana").await;
    host.send(json!({"type": "note", "key": "n", "frame": 30, "text": "Sky"}))
        .await;
    host.expect("noteAck").await;
    let path = format!("/api/sessions/{}/export/html", marked.id);
    let (status, page) = server.request("GET", &path, Some(&marked.host), None).await;
    assert_eq!(status, 200);
    let page = page.as_str().unwrap().to_string();
    let data = page
        .split("id=\"f30\"")
        .nth(1)
        .and_then(|s| s.split("data:image/jpeg;base64,").nth(1))
        .and_then(|s| s.split('"').next())
        .expect("a still of frame 30");
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let (report, rw, rh) = decode_jpeg(&jpeg);
    assert_eq!((rw, rh), (w, h));
    // The same picture as the marked peek: one decoder chain draws both.
    assert_eq!(changed_share(&report, &mark, w, 0..h), 0.0);
    assert!(changed_share(&report, &bare, w, h * 2 / 5..h * 3 / 5) > 0.02);
    server.shutdown().await;
}
