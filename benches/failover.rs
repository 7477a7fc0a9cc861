//! Failover time: the owner of a session is killed with SIGKILL while its
//! host is relayed to it through another node (a gateway), and the clock
//! runs until the gateway tells the host `session_moved`, the host,
//! reconnecting to the node it was on, is welcomed into the room (at its
//! frame), and its first command is scheduled there; and until video
//! flows again on the surviving node: a WebRTC viewer (webrtc-rs,
//! decoding with GStreamer) watching there through the media relay before
//! the kill, told `session_moved`, joins again and decodes a picture
//! whose burnt-in frame code is the room's transport's frame at that
//! picture's instant. The session plays a 640×360 demo clip in VP8 (as
//! `tests/cluster_media.rs`). Two real `syncreel serve` nodes per round
//! on one throwaway NATS and one throwaway PostgreSQL (scripts/cluster/),
//! with the cluster's default lease timing unless `FAILOVER_TTL_MS` /
//! `FAILOVER_RENEW_MS` say otherwise.
//!
//! Run: `cargo bench --bench failover`. Environment (defaults in
//! brackets): `FAILOVER_ROUNDS` [10], `FAILOVER_TTL_MS` [3000],
//! `FAILOVER_RENEW_MS` [1000], `FAILOVER_RETRY_MS` [100]: how often the
//! host tries again after `session_elsewhere`.
//!
//! Prints each round, then the median, p95 and max of: kill → the host
//! told, kill → welcome on the other node, and kill → that node's
//! `transport` for a seek sent right after the welcome (the room driven
//! again), kill → the viewer's first picture of the room's frame on the
//! surviving node (video flowing), and the later of the last two. The
//! host and the viewer reconnect at once, as their pages would; the
//! viewer tries again every 100 ms (`common::node::rejoin`). The target
//! (issue #14) is ≤ 5 s p95, kill → room driven and video flowing on every
//! node.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/viewer.rs"]
mod viewer;
#[path = "../tests/support/vp8.rs"]
mod vp8;

use std::time::{Duration, Instant};

use common::nats::NatsServer;
use common::node::Node;
use common::postgres::Postgres;
use common::Client;
use serde_json::json;
use syncreel::clock::Timeline;
use syncreel::timecode::FrameRate;
use viewer::Viewer;

/// Long enough for the bench's seeks (240, then 480).
const CLIP_FRAMES: u32 = 720;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("failover benchmark: run with `cargo bench --bench failover`");
        return;
    }
    let rounds = env_or("FAILOVER_ROUNDS", 10) as usize;
    let ttl = env_or("FAILOVER_TTL_MS", 3000).to_string();
    let renew = env_or("FAILOVER_RENEW_MS", 1000).to_string();
    let retry = Duration::from_millis(env_or("FAILOVER_RETRY_MS", 100));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let root = common::node::media_root(CLIP_FRAMES);
    let timeline = Timeline {
        rate: FrameRate::FPS_23_976,
        duration: i64::from(CLIP_FRAMES),
    };
    let nats = NatsServer::start();
    let pg = Postgres::start();
    println!(
        "failover: {rounds} rounds, lease TTL {ttl} ms, renew {renew} ms, retry every {retry:?}"
    );
    println!(
        "| round | kill → told | kill → welcome | kill → driven | kill → video | kill → driven and video |"
    );
    println!("|--:|--:|--:|--:|--:|--:|");
    let (mut told, mut welcomed, mut driven) = (Vec::new(), Vec::new(), Vec::new());
    let (mut video, mut both) = (Vec::new(), Vec::new());
    let lease = [
        ("SYNCREEL_CLUSTER__LEASE_TTL_MS", ttl.as_str()),
        ("SYNCREEL_CLUSTER__LEASE_RENEW_MS", renew.as_str()),
    ];
    for round in 0..rounds {
        let mut a = Node::streaming_with(&nats.url, &pg.url, &format!("a{round}"), &root, &lease);
        let b = Node::streaming_with(&nats.url, &pg.url, &format!("b{round}"), &root, &lease);
        let (t, w, d, v) = runtime.block_on(async {
            let created = a.create_media_session("Failover", "clip.mov").await;
            // Through B: the owner is A.
            let mut host = Client::join(b.addr, &created.host, "Dana").await;
            // B's own peer, fed with A's pictures over NATS: video flows on
            // the surviving node before the kill, as after it.
            let mut watching = Viewer::join(b.addr, &created.viewer).await;
            watching.first_readable().await;
            host.send(json!({"type": "seek", "frame": 240})).await;
            host.expect("transport").await;
            // The record writes in order: once this note is acked, the
            // seek before it is recorded too (a seek is a queued write, and
            // an owner killed before it commits reopens where it was).
            host.send(json!({"type": "note", "key": "k", "frame": 240, "text": "before the kill"}))
                .await;
            host.expect("noteAck").await;
            a.kill();
            let killed = Instant::now();
            let driving = async {
                let goodbye = host.expect("goodbye").await;
                assert_eq!(goodbye["code"], "session_moved", "{goodbye}");
                let told = killed.elapsed();
                // Bounded: a lease lapses after its TTL.
                let deadline = killed + Duration::from_secs(30);
                let mut host = loop {
                    assert!(Instant::now() < deadline, "no takeover within 30 s");
                    let mut client = Client::connect(b.addr).await;
                    client.hello(&created.host, "Dana", None).await;
                    let answer = client
                        .expect_where(|m| m["type"] == "welcome" || m["type"] == "error")
                        .await;
                    if answer["type"] == "welcome" {
                        assert_eq!(answer["state"]["transport"]["anchorFrame"], 240);
                        break client;
                    }
                    assert_eq!(answer["code"], "session_elsewhere", "{answer}");
                    tokio::time::sleep(retry).await;
                };
                let welcomed = killed.elapsed();
                host.send(json!({"type": "seek", "frame": 480})).await;
                host.expect("transport").await;
                (told, welcomed, killed.elapsed())
            };
            let flowing = async {
                let goodbye = watching.ws.expect("goodbye").await;
                assert_eq!(goodbye["code"], "session_moved", "{goodbye}");
                let mut viewer = Viewer::rejoin(b.addr, &created.viewer, killed).await;
                // Bounded: 240 pictures are 10 s of the room's rate, and
                // each wait for one is bounded too.
                for _ in 0..240 {
                    let seen = viewer.next_picture().await;
                    let room = viewer.transport_at(seen.at).position(&timeline, seen.at);
                    if seen.code.map(i64::from) == Some(room) {
                        let flowing = seen.decoded.duration_since(killed);
                        viewer.leave().await;
                        return flowing;
                    }
                }
                panic!("no picture of the room's frame in 240 on the surviving node");
            };
            let ((told, welcomed, driven), flowing) = tokio::join!(driving, flowing);
            watching.leave().await;
            (told, welcomed, driven, flowing)
        });
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
            round + 1,
            t.as_secs_f64() * 1e3,
            w.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e3,
            v.as_secs_f64() * 1e3,
            d.max(v).as_secs_f64() * 1e3
        );
        told.push(t);
        welcomed.push(w);
        driven.push(d);
        video.push(v);
        both.push(d.max(v));
    }
    let _ = std::fs::remove_dir_all(&root);
    for (name, mut times) in [
        ("kill → told", told),
        ("kill → welcome", welcomed),
        ("kill → driven", driven),
        ("kill → video flowing", video),
        ("kill → driven and video flowing", both),
    ] {
        times.sort();
        println!(
            "{name}: median {:.0} ms, p95 {:.0} ms, max {:.0} ms",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.95).as_secs_f64() * 1e3,
            times.last().unwrap().as_secs_f64() * 1e3,
        );
    }
}
