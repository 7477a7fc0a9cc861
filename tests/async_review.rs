//! After the live review: once the host ends it, each link opens a room
//! of its own over the same record. Playback there moves nobody else,
//! and what anyone adds reaches every room of the session as it is made.

mod common;
#[path = "support/opus.rs"]
mod opus;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::PathBuf;

use common::{request, token, Client, TestServer};
use serde_json::{json, Value};
use syncreel::media::demo_clip::{self, DemoClipSpec};
use viewer::Viewer;

fn media_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("syncreel-async-{}", std::process::id()));
        let spec = DemoClipSpec {
            width: 640,
            height: 360,
            frames: 240,
            ..DemoClipSpec::default()
        };
        demo_clip::ensure(&root.join("shot.mov"), &spec).unwrap();
        root
    })
    .clone()
}

async fn media_server() -> TestServer {
    TestServer::streaming(media_root(), 1000).await
}

/// A media session, with the host in it.
async fn reviewed_session(server: &TestServer) -> (Value, Client) {
    let (status, body) = server
        .request(
            "POST",
            "/api/sessions",
            Some(common::OPERATOR),
            Some(json!({"title": "Shot 010", "media": "shot.mov"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let host = Client::join(server.addr, &token(&body, "host"), "Dana").await;
    (body, host)
}

async fn end(server: &TestServer, body: &Value) {
    let id = body["session"]["id"].as_str().unwrap();
    let (status, answer) = request(
        server.addr,
        "POST",
        &format!("/api/sessions/{id}/end"),
        Some(&token(body, "host")),
        None,
    )
    .await;
    assert_eq!(status, 200, "{answer}");
}

fn seek(frame: i64) -> Value {
    json!({"type": "seek", "frame": frame})
}

/// The first transport this participant is sent from now on.
async fn next_anchor(client: &mut Client) -> i64 {
    client.expect("transport").await["transport"]["anchorFrame"]
        .as_i64()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_review_ends_each_link_opens_a_room_of_its_own_over_the_same_record() {
    let server = media_server().await;
    let (body, mut host) = reviewed_session(&server).await;
    assert_eq!(host.welcome["room"], "shared");
    let mut live = Client::join(server.addr, &token(&body, "reviewer"), "Ravi").await;
    host.send(seek(24)).await;
    assert_eq!(next_anchor(&mut host).await, 24);
    live.send(json!({"type": "note", "key": "n1", "frame": 24, "text": "Flare"}))
        .await;
    let first = live.expect("noteAck").await["note"].clone();

    end(&server, &body).await;
    host.expect("ended").await;
    live.expect("ended").await;

    // The next morning: a reviewer's link opens a room of one, with the
    // record so far and the room's last frame.
    let mut rae = Client::join(server.addr, &token(&body, "reviewer"), "Rae").await;
    assert_eq!(rae.welcome["room"], "personal");
    assert_eq!(rae.welcome["state"]["control"]["driver"], rae.id());
    assert_eq!(rae.welcome["state"]["transport"]["anchorFrame"], 24);
    assert_eq!(rae.welcome["media"]["codec"], "VP8");
    assert_eq!(rae.expect("notes").await["notes"], json!([first]));
    rae.expect("ended").await;

    // A viewer's link too: they drive their own playback, though in the
    // live review they could not.
    let mut vic = Client::join(server.addr, &token(&body, "viewer"), "Vic").await;
    assert_eq!(vic.welcome["room"], "personal");
    assert_eq!(vic.welcome["state"]["control"]["driver"], vic.id());
    vic.send(seek(200)).await;
    assert_eq!(next_anchor(&mut vic).await, 200);

    // Vic's seek moved neither Rae's room nor the live one.
    rae.send(seek(60)).await;
    assert_eq!(next_anchor(&mut rae).await, 60);
    let id = body["session"]["id"].as_str().unwrap();
    let (_, state) = server
        .request(
            "GET",
            &format!("/api/sessions/{id}"),
            Some(&token(&body, "host")),
            None,
        )
        .await;
    assert_eq!(state["state"]["transport"]["anchorFrame"], 24);

    // What Rae adds is the session's: every room sees it as it is made.
    rae.send(json!({"type": "note", "key": "n2", "frame": 60, "text": "Still flaring"}))
        .await;
    let second = rae.expect("noteAck").await["note"].clone();
    assert_eq!(second["frame"], 60);
    assert_eq!(vic.expect("note").await["note"], second);
    let relayed = host
        .expect_where(|m| m["type"] == "note" && m["note"]["id"] == second["id"])
        .await;
    assert_eq!(relayed["note"], second);
    rae.send(json!({"type": "resolve", "key": "r1", "note": first["id"], "resolved": true}))
        .await;
    rae.expect("noteAck").await;
    let resolved = vic.expect("note").await["note"].clone();
    assert_eq!(resolved["id"], first["id"]);
    assert!(resolved["resolvedAt"].is_i64(), "{resolved}");

    // Roles still decide what goes into the record.
    vic.send(json!({"type": "note", "key": "v1", "frame": 200, "text": "Me too"}))
        .await;
    assert_eq!(vic.expect("noteRefused").await["code"], "forbidden");

    // A dropped connection comes back to the same room, where it was.
    let resume = rae.welcome["resume"].as_str().unwrap().to_string();
    let rae_id = rae.id();
    rae.drop_connection();
    let mut again = Client::connect(server.addr).await;
    again
        .hello(&token(&body, "reviewer"), "Rae", Some(&resume))
        .await;
    again.welcome = again.expect("welcome").await;
    assert_eq!(again.welcome["room"], "personal");
    assert_eq!(again.id(), rae_id);
    assert_eq!(again.welcome["state"]["transport"]["anchorFrame"], 60);

    // Someone joining later finds everything the rooms added.
    let late = {
        let mut late = Client::join(server.addr, &token(&body, "reviewer"), "Lee").await;
        late.expect("notes").await["notes"].clone()
    };
    let texts: Vec<&str> = late
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["Flare", "Still flaring"]);
    assert!(late[0]["resolvedAt"].is_i64(), "{late}");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_personal_room_streams_its_own_playback_through_the_same_pipeline() {
    let server = media_server().await;
    let (body, _host) = reviewed_session(&server).await;
    end(&server, &body).await;

    let mut one = Viewer::join(server.addr, &token(&body, "reviewer")).await;
    let mut two = Viewer::join(server.addr, &token(&body, "viewer")).await;
    assert_eq!(one.ws.welcome["room"], "personal");
    assert_eq!(two.ws.welcome["room"], "personal");

    one.ws.send(seek(200)).await;
    let at_200 = one.ws.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    two.ws.send(seek(30)).await;
    let at_30 = two.ws.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();

    // Each stream shows its own room's frame, read from the pixels.
    assert_eq!(one.picture_at_or_after(at_200).await.code, Some(200));
    assert_eq!(two.picture_at_or_after(at_30).await.code, Some(30));
    // And keeps showing it: the other room's seek did not reach it.
    let later = one.picture_at_or_after(at_30).await;
    assert_eq!(later.code, Some(200));
    server.shutdown().await;
}
