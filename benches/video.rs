//! Video benchmarks with a real WebRTC viewer (webrtc-rs, decoding with
//! GStreamer and reading the frame code): join to first frame, seek to the
//! exact frame shown, and encoder-to-decoded latency, at 720p and 1080p.
//!
//! Run: `cargo bench --bench video` (env `VIDEO_SIZES=1280x720,1920x1080`,
//! `VIDEO_JOINS`, `VIDEO_SEEKS`, `VIDEO_PLAY_SECS`). The server runs in this
//! process (release build), so the viewer and the server share the two
//! cores, as a browser on the same machine would.

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/viewer.rs"]
mod viewer;
#[path = "../tests/support/vp8.rs"]
mod vp8;

use std::time::{Duration, Instant};

use common::{Client, TestServer};
use serde_json::{json, Value};
use syncreel::media::demo_clip::{self, DemoClipSpec};
use viewer::Viewer;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn summary(name: &str, mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "| {name} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
        ms.len(),
        percentile(&ms, 50.0),
        percentile(&ms, 95.0),
        percentile(&ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN)
    )
}

fn token(body: &Value, role: &str) -> String {
    body["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == role)
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Maps this process's `Instant`s onto the server clock with the same
/// four-timestamp exchange the browser uses; keeps the lowest-RTT sample.
async fn server_offset(client: &mut Client, epoch: Instant) -> (f64, f64) {
    let mut best: Option<(f64, f64)> = None;
    for id in 0..16u32 {
        let t0 = epoch.elapsed().as_micros() as f64;
        let pong = client.ping(1000 + id).await;
        let t3 = epoch.elapsed().as_micros() as f64;
        let (t1, t2) = (pong["t1"].as_f64().unwrap(), pong["t2"].as_f64().unwrap());
        let rtt = (t3 - t0) - (t2 - t1);
        let offset = ((t1 - t0) + (t2 - t3)) / 2.0;
        if best.is_none_or(|(r, _)| rtt < r) {
            best = Some((rtt, offset));
        }
    }
    best.unwrap()
}

async fn run_size(width: u32, height: u32) -> Vec<String> {
    let root = std::env::temp_dir().join(format!("syncreel-bench-video-{width}x{height}"));
    let spec = DemoClipSpec {
        width,
        height,
        frames: 1440,
        ..DemoClipSpec::default()
    };
    let clip = root.join("clip.mov");
    tokio::task::spawn_blocking(move || demo_clip::ensure(&clip, &spec).unwrap())
        .await
        .unwrap();
    let server = TestServer::start_with(move |c| {
        c.media.root = root;
        // The Rust viewer decodes VP8.
        c.media.codec = "vp8".into();
        c.media.stream_width = width;
        c.media.stream_height = height;
        c.media.bitrate_kbps = if height > 720 { 4000 } else { 2500 };
    })
    .await;
    let (status, session) = server
        .request(
            "POST",
            "/api/sessions",
            Some(common::OPERATOR),
            Some(json!({"title": "bench", "media": "clip.mov"})),
        )
        .await;
    assert_eq!(status, 201, "{session}");
    let mut host = Client::join(server.addr, &token(&session, "host"), "Host").await;
    let viewer_token = token(&session, "viewer");
    let label = format!("{width}x{height}");
    let mut rows = Vec::new();

    // Join to first decoded frame, each join a new connection and peer.
    let mut joins = Vec::new();
    for _ in 0..env_usize("VIDEO_JOINS", 10) {
        let started = Instant::now();
        let mut v = Viewer::join(server.addr, &viewer_token).await;
        let first = v.next_picture().await;
        joins.push(first.decoded.duration_since(started).as_secs_f64() * 1000.0);
        v.ws.close().await;
    }
    rows.push(summary(&format!("{label} join → first frame (ms)"), joins));

    // Seek while paused to a random frame; time until the viewer has
    // decoded a picture whose frame code is that frame.
    let mut v = Viewer::join(server.addr, &viewer_token).await;
    v.next_picture().await;
    let mut seeks = Vec::new();
    let mut state = 0x2545_f491u32;
    for _ in 0..env_usize("VIDEO_SEEKS", 30) {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        let target = state % 1440;
        let started = Instant::now();
        host.send(json!({"type": "seek", "frame": target})).await;
        let execute_at = host.expect("transport").await["executeAt"]
            .as_i64()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let seen = v.picture_at_or_after(execute_at).await;
            if seen.code == Some(target) {
                seeks.push(seen.decoded.duration_since(started).as_secs_f64() * 1000.0);
                break;
            }
            assert!(Instant::now() < deadline, "seek to {target} never shown");
        }
    }
    rows.push(summary(
        &format!("{label} seek → exact frame decoded (ms)"),
        seeks,
    ));

    // Play: how long after its own server instant each picture is decoded.
    let epoch = Instant::now();
    let (rtt, offset) = server_offset(&mut host, epoch).await;
    host.send(json!({"type": "seek", "frame": 0})).await;
    host.send(json!({"type": "play"})).await;
    let start = loop {
        let msg = host.next().await;
        if msg["type"] == "transport" && msg["cause"] == "play" {
            break msg["executeAt"].as_i64().unwrap();
        }
    };
    let play_for = Duration::from_secs(env_usize("VIDEO_PLAY_SECS", 10) as u64);
    let until = Instant::now() + play_for;
    let mut latencies = Vec::new();
    let mut unreadable = 0;
    while Instant::now() < until {
        let seen = v.picture_at_or_after(start).await;
        if seen.code.is_none() {
            unreadable += 1;
        }
        let decoded_server = seen.decoded.duration_since(epoch).as_micros() as f64 + offset;
        latencies.push((decoded_server - seen.at.as_micros() as f64) / 1000.0);
    }
    let frames = latencies.len();
    rows.push(summary(
        &format!("{label} encoder → decoded, playing (ms)"),
        latencies,
    ));
    rows.push(format!(
        "| {label} pictures in {}s of play: {frames} ({unreadable} unreadable); clock-sync RTT {:.0} µs | | | | | |",
        play_for.as_secs(),
        rtt
    ));
    v.ws.close().await;
    server.shutdown().await;
    rows
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sizes = std::env::var("VIDEO_SIZES").unwrap_or_else(|_| "1280x720,1920x1080".into());
    println!("| measurement | n | p50 | p95 | p99 | max |");
    println!("|---|---|---|---|---|---|");
    for size in sizes.split(',') {
        let (w, h) = size.split_once('x').expect("WIDTHxHEIGHT");
        let rows = runtime.block_on(run_size(w.parse().unwrap(), h.parse().unwrap()));
        for row in rows {
            println!("{row}");
        }
    }
}
