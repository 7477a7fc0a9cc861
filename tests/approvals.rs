//! Versions and approvals: a media file becomes a numbered version of its
//! item, identified by its checksum, and an approval carries a receipt of
//! what its author was actually shown.

mod common;
#[path = "support/opus.rs"]
mod opus;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::PathBuf;

use common::{token, Client, TestServer};
use serde_json::{json, Value};
use sha2::Digest;
use syncreel::media::demo_clip::{self, DemoClipSpec};
use viewer::Viewer;

/// Two takes of one shot, made once per test binary run.
fn media_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("syncreel-approvals-{}", std::process::id()));
        for (name, frames) in [("take1.mov", 240), ("take2.mov", 96)] {
            let spec = DemoClipSpec {
                width: 640,
                height: 360,
                frames,
                ..DemoClipSpec::default()
            };
            demo_clip::ensure(&root.join(name), &spec).unwrap();
        }
        root
    })
    .clone()
}

async fn media_server() -> TestServer {
    TestServer::streaming(media_root(), 1000).await
}

async fn create(server: &TestServer, media: &str, item: &str) -> Value {
    let (status, body) = server
        .request(
            "POST",
            "/api/sessions",
            Some(common::OPERATOR),
            Some(json!({"title": "Shot 010", "media": media, "item": item})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

fn sha256_hex(path: &std::path::Path) -> String {
    let digest = sha2::Sha256::digest(std::fs::read(path).unwrap());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn a_file_is_a_numbered_version_of_its_item_identified_by_its_checksum() {
    let server = media_server().await;
    let first = create(&server, "take1.mov", "Shot 010").await;
    let v1 = first["version"].clone();
    assert_eq!(v1["item"], "Shot 010");
    assert_eq!(v1["number"], 1);
    assert_eq!(v1["checksum"], sha256_hex(&media_root().join("take1.mov")));
    assert_eq!(
        v1["sizeBytes"],
        std::fs::metadata(media_root().join("take1.mov"))
            .unwrap()
            .len()
    );

    let second = create(&server, "take2.mov", "Shot 010").await;
    assert_eq!(second["version"]["number"], 2, "new bytes, next version");
    assert_ne!(second["version"]["id"], v1["id"]);
    let again = create(&server, "take1.mov", "Shot 010").await;
    assert_eq!(again["version"], v1, "the same bytes are the same version");
    let other = create(&server, "take2.mov", "Shot 020").await;
    assert_eq!(other["version"]["number"], 1, "stacks are per item");

    // Participants learn which version they review.
    let mut reviewer = Client::join(server.addr, &token(&second, "reviewer"), "Ravi").await;
    assert_eq!(reviewer.welcome["media"]["version"], second["version"]);
    reviewer.ping(1).await;

    let (status, media) = server
        .request("GET", "/api/media", Some(common::OPERATOR), None)
        .await;
    assert_eq!(status, 200, "{media}");
    let stacks: Vec<(String, Vec<i64>)> = media["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let numbers = item["versions"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["number"].as_i64().unwrap())
                .collect();
            (item["name"].as_str().unwrap().to_string(), numbers)
        })
        .collect();
    assert_eq!(
        stacks,
        vec![
            ("Shot 010".to_string(), vec![1, 2]),
            ("Shot 020".to_string(), vec![1])
        ]
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_carries_a_receipt_of_the_frames_stream_and_checksum_its_author_saw() {
    let server = media_server().await;
    let body = create(&server, "take1.mov", "Shot 010").await;
    let version = body["version"].clone();
    let mut host = Client::join(server.addr, &token(&body, "host"), "Dana").await;
    let mut approver = Viewer::join(server.addr, &token(&body, "reviewer")).await;
    assert_eq!(approver.ws.welcome["media"]["version"], version);

    host.send(json!({"type": "play"})).await;
    host.expect("transport").await;
    // The approver reports what it shows, as a browser does: the frame
    // code in the picture is the media frame.
    let mut reported: Vec<i64> = Vec::new();
    for _ in 0..400 {
        if reported.len() >= 16 {
            break;
        }
        let seen = approver.next_picture().await;
        let Some(code) = seen.code else { continue };
        if reported
            .last()
            .is_some_and(|&last| i64::from(code) < last + 3)
        {
            continue;
        }
        reported.push(i64::from(code));
        approver
            .ws
            .send(json!({"type": "frameReport", "frame": code, "atUs": seen.at.as_micros()}))
            .await;
    }
    assert_eq!(reported.len(), 16, "the stream played");
    host.send(json!({"type": "pause"})).await;
    host.expect("transport").await;

    approver
        .ws
        .send(
            json!({"type": "approve", "key": "a1", "status": "approved", "version": version["id"]}),
        )
        .await;
    let ack = approver.ws.expect("approvalAck").await;
    assert_eq!(ack["key"], "a1");
    let approval = ack["approval"].clone();
    assert_eq!(approval["status"], "approved");
    assert_eq!(approval["versionId"], version["id"]);
    assert_eq!(approval["authorRole"], "reviewer");
    let receipt = &approval["receipt"];
    let (first, last) = (reported[0], *reported.last().unwrap());
    assert_eq!(
        receipt["frames"],
        json!([[first, last]]),
        "reports {reported:?} played through"
    );
    assert_eq!(receipt["frameCount"], last - first + 1);
    assert_eq!(receipt["stream"], "640x360 VP8");
    assert!(
        receipt["streamBytes"].as_i64().unwrap() > 10_000,
        "{receipt}"
    );
    let kbps = receipt["streamKbps"].as_i64().unwrap();
    assert!((50..20_000).contains(&kbps), "{receipt}");
    assert_eq!(receipt["checksum"], version["checksum"]);
    assert_eq!(host.expect("approval").await["approval"], approval);

    // A change of mind is a new decision; the record keeps both.
    host.send(json!({"type": "approve", "key": "a2", "status": "changesRequested"}))
        .await;
    let change = host.expect("approvalAck").await["approval"].clone();
    assert_eq!(change["status"], "changesRequested");
    assert_eq!(
        change["receipt"]["frames"],
        json!([]),
        "the host watched nothing"
    );
    let mut late = Client::join(server.addr, &token(&body, "viewer"), "Vic").await;
    assert_eq!(
        late.expect("approvals").await["approvals"],
        json!([approval, change])
    );
    server.shutdown().await;
}

#[tokio::test]
async fn approvals_of_unknown_versions_or_by_viewers_are_refused() {
    let server = media_server().await;
    let one = create(&server, "take1.mov", "Shot 010").await;
    let two = create(&server, "take2.mov", "Shot 010").await;
    let mut host = Client::join(server.addr, &token(&one, "host"), "Dana").await;
    let mut viewer = Client::join(server.addr, &token(&one, "viewer"), "Vic").await;

    host.send(json!({"type": "approve", "key": "x", "status": "approved", "version": two["version"]["id"]}))
        .await;
    let refused = host.expect("approvalRefused").await;
    assert_eq!(refused["code"], "unknown_version", "{refused}");
    viewer
        .send(json!({"type": "approve", "key": "y", "status": "approved"}))
        .await;
    assert_eq!(viewer.expect("approvalRefused").await["code"], "forbidden");
    host.send(json!({"type": "approve", "key": "z", "status": "maybe"}))
        .await;
    assert_eq!(host.expect_error().await["code"], "malformed");

    // A session without media reviews no version.
    let plain = server.create_session().await;
    let mut host2 = Client::join(server.addr, &plain.host, "Dana").await;
    host2
        .send(json!({"type": "approve", "key": "w", "status": "approved"}))
        .await;
    assert_eq!(
        host2.expect("approvalRefused").await["code"],
        "unknown_version"
    );
    host.ping(3).await;
    server.shutdown().await;
}
