//! Video across a cluster: three real nodes on one NATS and one
//! PostgreSQL, a media session owned by A, its host driving through B and
//! WebRTC viewers (webrtc-rs, decoding with GStreamer and reading the
//! frame code burnt into every picture) on C and on A. The viewers on C
//! are C's own WebRTC peers, fed with the pictures of the owner's one
//! encoder, which A publishes once for C over NATS (the media relay); so
//! a seek shows the exact frame at `execute_at` and play advances at the
//! rate on every node, and the viewers of two nodes see the same picture
//! at the same moment.

mod common;
#[path = "support/tus.rs"]
mod tus;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::PathBuf;
use std::time::Duration;

use common::nats::NatsServer;
use common::node::Node;
use common::postgres::Postgres;
use common::{transport_of, Client};
use serde_json::json;
use syncreel::clock::Timeline;
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::timecode::FrameRate;
use viewer::Viewer;

const CLIP_FRAMES: u32 = 480;

fn media_root() -> PathBuf {
    let root = std::env::temp_dir().join(format!("syncreel-cluster-media-{}", std::process::id()));
    let spec = DemoClipSpec {
        width: 640,
        height: 360,
        frames: CLIP_FRAMES,
        ..DemoClipSpec::default()
    };
    demo_clip::ensure(&root.join("clip.mov"), &spec).unwrap();
    root
}

/// A cluster node streaming `root`'s media as the single-node tests'
/// servers do (VP8 at 640×360, which the test viewer decodes).
fn streaming_node(nats: &str, pg: &str, name: &str, root: &std::path::Path) -> Node {
    let root = root.to_str().unwrap();
    Node::in_cluster_env(
        nats,
        pg,
        name,
        &[
            ("SYNCREEL_MEDIA__ROOT", root),
            ("SYNCREEL_MEDIA__CODEC", "vp8"),
            ("SYNCREEL_MEDIA__STREAM_WIDTH", "640"),
            ("SYNCREEL_MEDIA__STREAM_HEIGHT", "360"),
            ("SYNCREEL_MEDIA__BITRATE_KBPS", "1500"),
            // The test machine's disk may be short of the default reserve.
            ("SYNCREEL_UPLOADS__RESERVE_FREE_BYTES", "0"),
        ],
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_uploaded_on_one_node_joins_the_room_its_owner_runs() {
    let root = media_root();
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let a = streaming_node(&nats.url, &pg.url, "node-a", &root);
    let b = streaming_node(&nats.url, &pg.url, "node-b", &root);
    let (status, created) = common::request(
        a.addr,
        "POST",
        "/api/sessions",
        Some(common::OPERATOR),
        Some(json!({"title": "Upload across nodes", "media": "clip.mov"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let created = common::CreatedSession::from_body(created);
    let mut host = Client::join(a.addr, &created.host, "Dana").await;
    assert_eq!(host.welcome["playlist"], json!([]), "one file");

    // v2, uploaded by the host's link to B, which does not run the session.
    let v2_path = std::env::temp_dir()
        .join(format!("syncreel-cluster-upload-{}", std::process::id()))
        .join("clip v2.mov");
    let spec = DemoClipSpec {
        width: 320,
        height: 180,
        frames: 48,
        code_offset: 30_000,
        ..DemoClipSpec::default()
    };
    demo_clip::ensure(&v2_path, &spec).unwrap();
    let v2 = std::fs::read(&v2_path).unwrap();
    let tus = tus::Tus::new(b.addr, Some(&created.host));
    let upload = tus
        .created(
            v2.len() as u64,
            &[
                ("filename", "clip v2.mov"),
                ("item", "clip"),
                ("session", &created.id),
            ],
        )
        .await;
    let done = tus.patch(&upload, 0, v2.into(), None).await;
    assert_eq!(done.status, 204, "{}", done.body);

    // The room on A hears of it, as if the upload had come to A.
    let playlist = host.expect("playlist").await;
    let entries = playlist["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{playlist}");
    assert_eq!(entries[1]["version"]["item"], "clip");
    assert_eq!(entries[1]["sourceWidth"], 320);
    let _ = std::fs::remove_dir_all(v2_path.parent().unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_on_other_nodes_see_the_owners_exact_frame_after_seeks_and_in_play() {
    let root = media_root();
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let a = streaming_node(&nats.url, &pg.url, "node-a", &root);
    let b = streaming_node(&nats.url, &pg.url, "node-b", &root);
    let c = streaming_node(&nats.url, &pg.url, "node-c", &root);
    let (status, created) = common::request(
        a.addr,
        "POST",
        "/api/sessions",
        Some(common::OPERATOR),
        Some(json!({"title": "Across nodes", "media": "clip.mov"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let created = common::CreatedSession::from_body(created);

    let mut host = Client::join(b.addr, &created.host, "Dana").await;
    let mut on_c = Viewer::join(c.addr, &created.viewer).await;
    let mut on_a = Viewer::join(a.addr, &created.viewer).await;
    // A second viewer on C: C receives each picture once for both.
    let mut also_on_c = Viewer::join(c.addr, &created.viewer).await;
    assert_eq!(on_c.first_readable().await, 0, "the room's first frame");
    assert_eq!(on_a.first_readable().await, 0);
    assert_eq!(also_on_c.first_readable().await, 0);

    for (seek, frame) in [
        (json!({"type": "seek", "frame": 100}), 100u32),
        (json!({"type": "seek", "timecode": "01:00:10:05"}), 245),
        (json!({"type": "step", "frames": -1}), 244),
    ] {
        host.send(seek).await;
        let execute_at = host.expect("transport").await["executeAt"]
            .as_i64()
            .unwrap();
        for (node, viewer) in [("C", &mut on_c), ("A", &mut on_a)] {
            let seen = viewer.picture_at_or_after(execute_at).await;
            assert_eq!(
                seen.code,
                Some(frame),
                "the picture on {node} after the change at {execute_at}"
            );
        }
    }

    host.send(json!({"type": "play"})).await;
    let transport = transport_of(&host.expect("transport").await);
    let timeline = Timeline {
        rate: FrameRate::FPS_23_976,
        duration: i64::from(CLIP_FRAMES),
    };
    let start = transport.anchor_time.as_micros();
    // The same pictures on both nodes, each the transport's frame; how
    // far apart in time the two viewers decoded each one.
    let mut shown_c = std::collections::HashMap::new();
    let mut unreadable = 0;
    while shown_c.len() < 36 {
        let picture = on_c.picture_at_or_after(start).await;
        match picture.code {
            Some(code) => {
                let expected = transport.position(&timeline, picture.at);
                assert_eq!(i64::from(code), expected, "C at {:?}", picture.at);
                shown_c.insert(picture.at.as_micros(), (code, picture.decoded));
            }
            None => unreadable += 1,
        }
    }
    assert!(unreadable <= 2, "{unreadable} unreadable pictures on C");
    let mut spreads = Vec::new();
    for _ in 0..120 {
        let picture = on_a.picture_at_or_after(start).await;
        if let (Some(code), Some((on_c_code, on_c_decoded))) =
            (picture.code, shown_c.get(&picture.at.as_micros()))
        {
            assert_eq!(code, *on_c_code, "one picture, one frame, on every node");
            let spread = if picture.decoded > *on_c_decoded {
                picture.decoded - *on_c_decoded
            } else {
                *on_c_decoded - picture.decoded
            };
            spreads.push(spread);
        }
        if spreads.len() >= 24 {
            break;
        }
    }
    assert!(
        spreads.len() >= 24,
        "only {} pictures seen on both nodes",
        spreads.len()
    );
    spreads.sort();
    let median = spreads[spreads.len() / 2];
    let worst = *spreads.last().unwrap();
    eprintln!(
        "the same picture decoded on a viewer of A and one of C: median {median:?} apart, at most {worst:?} ({} pictures)",
        spreads.len()
    );
    // One frame at 23.976 fps is 41.7 ms: both come from one encoder.
    assert!(
        median < Duration::from_millis(42),
        "viewers of two nodes a frame apart: median {median:?}"
    );

    // C's two viewers are C's own peers, fed from what A publishes once
    // for C: over two seconds of play C receives one message per picture,
    // not one per viewer; B, which has no viewer, receives nothing.
    let second = also_on_c.picture_at_or_after(start).await;
    assert_eq!(
        second.code.map(i64::from),
        Some(transport.position(&timeline, second.at)),
        "the second viewer on C plays the transport's frame"
    );
    let received = "syncreel_media_relay_received_total";
    let before = common::metric(c.addr, received).await;
    let from = on_c.picture_at_or_after(0).await.at.as_micros();
    let to = on_c
        .picture_at_or_after(from + 2_000_000)
        .await
        .at
        .as_micros();
    let during = common::metric(c.addr, received).await - before;
    // Pictures at the rate, and 20 ms Opus packets if the clip has sound.
    let pictures = (to - from) * 24_000 / 1001 / 1_000_000;
    let sound = if host.welcome["media"]["hasAudio"] == true {
        (to - from) / 20_000
    } else {
        0
    };
    let once = pictures + sound;
    eprintln!(
        "C received {during} messages from A in {pictures} frames of play ({once} pictures and sound packets), for two viewers"
    );
    assert!(
        (once - 10..=once + 10).contains(&during),
        "C received {during} messages for {once} pictures and sound packets: once each, not per viewer"
    );
    assert!(common::metric(a.addr, "syncreel_media_relay_published_total").await >= during);
    assert_eq!(common::metric(b.addr, received).await, 0, "B has no viewer");
}
