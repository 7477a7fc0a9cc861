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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_uploaded_on_one_node_joins_the_room_its_owner_runs() {
    let root = common::node::media_root(CLIP_FRAMES);
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let a = Node::streaming(&nats.url, &pg.url, "node-a", &root);
    let b = Node::streaming(&nats.url, &pg.url, "node-b", &root);
    let created = a
        .create_media_session("Upload across nodes", "clip.mov")
        .await;
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
    let root = common::node::media_root(CLIP_FRAMES);
    let nats = NatsServer::start();
    let pg = Postgres::start();
    // Small parts: every keyframe (and most pictures) crosses NATS in
    // several messages and is put together on C.
    let parts = [("SYNCREEL_CLUSTER__MEDIA_PART_BYTES", "4096")];
    let a = Node::streaming_with(&nats.url, &pg.url, "node-a", &root, &parts);
    let b = Node::streaming_with(&nats.url, &pg.url, "node-b", &root, &parts);
    let c = Node::streaming_with(&nats.url, &pg.url, "node-c", &root, &parts);
    let created = a.create_media_session("Across nodes", "clip.mov").await;

    let mut host = Client::join(b.addr, &created.host, "Dana").await;
    let mut on_c = Viewer::join(c.addr, &created.viewer).await;
    let mut on_a = Viewer::join(a.addr, &created.viewer).await;
    // A second viewer on C, a reviewer who will approve: C receives each
    // picture once for both.
    let mut also_on_c = Viewer::join(c.addr, &created.reviewer).await;
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
        "C received {during} pictures and sound packets from A in {pictures} frames of play ({once} expected), for two viewers"
    );
    // Per viewer would be twice as many; the slack is for the decoders'
    // lag, which differs between the window's two ends on a busy machine.
    assert!(
        (once * 3 / 4..=once * 5 / 4).contains(&during),
        "C received {during} pictures and sound packets for {once}: once each, not per viewer"
    );
    assert!(common::metric(a.addr, "syncreel_media_relay_published_total").await >= during);
    assert_eq!(common::metric(b.addr, received).await, 0, "B has no viewer");

    // The reviewer on C approves: the receipt A files says what C's peer
    // sent them, as it would for a viewer of A's own.
    also_on_c
        .ws
        .send(json!({"type": "approve", "key": "a1", "status": "approved"}))
        .await;
    let ack = also_on_c.ws.expect("approvalAck").await;
    let receipt = &ack["approval"]["receipt"];
    assert_eq!(receipt["stream"], "640x360 VP8", "{receipt}");
    assert!(
        receipt["streamBytes"].as_i64().unwrap_or(0) > 10_000,
        "{receipt}"
    );
    let kbps = receipt["streamKbps"].as_i64().unwrap_or(0);
    assert!((50..20_000).contains(&kbps), "{receipt}");
}
