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
/// `[{name, color, start_tc, rate}]`.
fn otio_markers(path: &std::path::Path) -> Value {
    let script = r#"
import json, sys
import opentimelineio as otio
tl = otio.adapters.read_from_file(sys.argv[1])
out = []
for clip in tl.find_clips():
    start = clip.source_range.start_time if clip.source_range else otio.opentime.RationalTime(0, 24)
    for m in clip.markers:
        t = m.marked_range.start_time
        # EDL locators are placed relative to the clip's source range;
        # OTIO files keep absolute media time. Report both.
        out.append({"name": m.name, "color": str(m.color),
                    "tc": otio.opentime.to_timecode(t, t.rate),
                    "rate": t.rate})
print(json.dumps({"markers": out, "name": tl.name}))
"#;
    let out = Command::new(otio_python())
        .args(["-c", script])
        .arg(path)
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

#[tokio::test]
async fn notes_export_to_an_edl_and_otio_that_opentimelineio_reads_with_markers_at_their_timecodes()
{
    let server = TestServer::start().await;
    let s = server.create_session().await; // 24 fps from 01:00:00:00
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    for (key, frame, text) in [
        ("a", 245, "Sky too warm"),
        ("b", 2400, "Boom in shot,\nupper left"),
    ] {
        reviewer
            .send(json!({"type": "note", "key": key, "frame": frame, "text": text}))
            .await;
        reviewer.expect("noteAck").await;
    }

    let dir = std::env::temp_dir().join(format!("syncreel-export-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (format, expected_tcs) in [
        ("edl", ["01:00:10:05", "01:01:40:00"]),
        ("otio", ["01:00:10:05", "01:01:40:00"]),
    ] {
        let (status, body) = server
            .request(
                "GET",
                &format!("/api/sessions/{}/export/{format}", s.id),
                Some(&s.host),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let text = match &body {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
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
        rows[1].contains(",245,01:00:10:05,") && rows[1].ends_with("Sky too warm"),
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
