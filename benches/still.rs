//! A look of one's own: how long from clicking a note (not driving) to
//! having the exact frame's still, `GET /api/sessions/{id}/still/{frame}`,
//! on the demo clip (720p23.976, a keyframe every 12 frames).
//!
//! Run: `cargo bench --bench still` (env `STILL_REQUESTS` per run,
//! `STILL_RUNS`, `STILL_WIDTH`). The server runs in this process (release
//! build) on the machine's two cores. Sequential requests of frames spread
//! over the clip give the time a participant waits; a burst of eight at
//! once shows what the two-decode limit does to the rest (they queue).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::Instant;

use common::TestServer;
use serde_json::json;
use syncreel::media::demo_clip::{self, DemoClipSpec};

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

/// A small deterministic spread of frames over the clip (no RNG crate).
fn frames(count: usize, duration: i64, seed: u64) -> Vec<i64> {
    let mut x = seed | 1;
    (0..count)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % duration as u64) as i64
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let requests = env_usize("STILL_REQUESTS", 40);
    let runs = env_usize("STILL_RUNS", 3);
    let width = env_usize("STILL_WIDTH", 960);
    let root = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("still-bench");
    let spec = DemoClipSpec::default();
    eprintln!("preparing the demo clip (once)…");
    demo_clip::ensure(&root.join("demo.mov"), &spec).unwrap();
    let server = TestServer::with_media(&root).await;
    let session = server
        .create_session_with(json!({"title": "Still bench", "media": "demo.mov"}))
        .await;
    let duration = i64::from(spec.frames);
    let get = |frame: i64| {
        let path = format!("/api/sessions/{}/still/{frame}?width={width}", session.id);
        let (addr, token) = (server.addr, session.viewer.clone());
        async move {
            let t0 = Instant::now();
            let (status, _, body) =
                common::request_bytes(addr, "GET", &path, Some(&token), None).await;
            (status, body.len(), t0.elapsed().as_secs_f64() * 1000.0)
        }
    };

    println!("| run | requests | p50 ms | p95 ms | p99 ms | max ms | mean KB |");
    println!("|---|---|---|---|---|---|---|");
    let mut medians = Vec::new();
    for run in 0..runs {
        let mut ms = Vec::new();
        let mut bytes = 0usize;
        for frame in frames(requests, duration, 0x5eed + run as u64) {
            let (status, len, took) = get(frame).await;
            assert_eq!(status, 200, "frame {frame}");
            bytes += len;
            ms.push(took);
        }
        ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        medians.push(percentile(&ms, 50.0));
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} |",
            run + 1,
            ms.len(),
            percentile(&ms, 50.0),
            percentile(&ms, 95.0),
            percentile(&ms, 99.0),
            ms.last().copied().unwrap_or(f64::NAN),
            bytes as f64 / ms.len() as f64 / 1024.0
        );
    }
    medians.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "\nmedian of run medians: {:.1} ms",
        percentile(&medians, 50.0)
    );

    // Eight people click at once: two decode at a time, the rest wait
    // their turn (up to 2 s, then `busy`).
    let burst =
        futures_util::future::join_all(frames(8, duration, 0xb0b).into_iter().map(get)).await;
    let served = burst.iter().filter(|(status, _, _)| *status == 200).count();
    let busy = burst.iter().filter(|(status, _, _)| *status == 503).count();
    let slowest = burst.iter().map(|(_, _, ms)| *ms).fold(0.0, f64::max);
    println!("burst of 8 at once: {served} served, {busy} busy, the last after {slowest:.0} ms");
    server.shutdown().await;
}
