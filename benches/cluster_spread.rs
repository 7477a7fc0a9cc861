//! Cross-node picture spread: how far apart in time viewers on different
//! nodes show the same picture, against viewers on the same node, in one
//! run under one load.
//!
//! Three real `syncreel serve` nodes (release build) on a throwaway
//! nats-server and PostgreSQL, loopback only. A owns a media session of a
//! 640×360 demo clip streamed in VP8 (as `tests/cluster_media.rs`); the
//! host drives it from B (relayed to A). Four WebRTC viewers (webrtc-rs,
//! decoding with GStreamer, `tests/support/viewer.rs`) watch the room: A1
//! and A2 on A, the owner's own peers, and C1 and C2 on C, C's peers fed
//! with the pictures A publishes once over NATS (the media relay). Each
//! run seeks to frame 0, plays, and keeps every picture decoded in a
//! window of `SPREAD_PICTURES` frames after the play's `executeAt`, keyed
//! by its instant (its RTP timestamp: the owner's server instant, the same
//! on every node). For each picture decoded by both viewers of a pair, the
//! spread is the gap between their decode instants: same node A1–A2, cross
//! node A1–C1 and A2–C2 (two pairs, so both sides have as many samples).
//! It prints, per run and over all runs: median, p95, p99 and max of each,
//! the ratio cross/same of the medians and of the p95s, and the frame-code
//! check: every readable picture's burnt-in code must be the play's frame
//! at its instant (mismatches counted; unreadable codes counted apart),
//! with each viewer's picture count against the window's. The machine's
//! /proc/loadavg is printed before, after each run, and at the end.
//!
//! Run: `cargo bench --bench cluster_spread`. Environment (defaults in
//! brackets): `SPREAD_RUNS` [3], `SPREAD_PICTURES` [240: 10 s at
//! 23.976 fps].

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/support/viewer.rs"]
mod viewer;
#[path = "../tests/support/vp8.rs"]
mod vp8;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::nats::NatsServer;
use common::node::Node;
use common::postgres::Postgres;
use common::{transport_of, Client};
use serde_json::json;
use syncreel::clock::{ServerTime, Timeline, Transport};
use syncreel::timecode::FrameRate;
use viewer::Viewer;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// One picture as a viewer decoded it. The luma plane is dropped at once:
/// four viewers' windows of full pictures would hold hundreds of MB.
struct Shown {
    code: Option<u32>,
    decoded: Instant,
}

/// A viewer's pictures whose instants fall in `[from, to)` (µs), by
/// instant. Bounded by `limit` pictures, each wait by the viewer's own.
async fn window(viewer: &mut Viewer, from: i64, to: i64, limit: usize) -> BTreeMap<i64, Shown> {
    let mut shown = BTreeMap::new();
    for _ in 0..limit {
        let seen = viewer.next_picture().await;
        let at = seen.at.as_micros();
        if at >= to {
            break;
        }
        if at >= from {
            shown.insert(
                at,
                Shown {
                    code: seen.code,
                    decoded: seen.decoded,
                },
            );
        }
    }
    shown
}

/// Gaps (ms) between two viewers' decodes of each picture both read.
fn spreads(one: &BTreeMap<i64, Shown>, other: &BTreeMap<i64, Shown>) -> Vec<f64> {
    one.iter()
        .filter(|(_, s)| s.code.is_some())
        .filter_map(|(at, s)| {
            let o = other.get(at).filter(|o| o.code.is_some())?;
            let gap = if s.decoded > o.decoded {
                s.decoded - o.decoded
            } else {
                o.decoded - s.decoded
            };
            Some(gap.as_secs_f64() * 1e3)
        })
        .collect()
}

/// (mismatches, unreadable): pictures whose code is not the transport's
/// frame at their instant, and pictures whose code could not be read.
fn check(
    shown: &BTreeMap<i64, Shown>,
    transport: &Transport,
    timeline: &Timeline,
) -> (usize, usize) {
    let mut mismatches = 0;
    let mut unreadable = 0;
    for (&at, s) in shown {
        let expected = transport.position(timeline, ServerTime::from_micros(at));
        match s.code {
            Some(code) if i64::from(code) == expected => {}
            Some(_) => mismatches += 1,
            None => unreadable += 1,
        }
    }
    (mismatches, unreadable)
}

struct Stats {
    n: usize,
    median: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

fn stats(mut ms: Vec<f64>) -> Stats {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |p: f64| {
        if ms.is_empty() {
            return f64::NAN;
        }
        let i = ((ms.len() - 1) as f64 * p).round() as usize;
        ms[i.min(ms.len() - 1)]
    };
    Stats {
        n: ms.len(),
        median: at(0.5),
        p95: at(0.95),
        p99: at(0.99),
        max: ms.last().copied().unwrap_or(f64::NAN),
    }
}

fn row(label: &str, same: Vec<f64>, cross: Vec<f64>, tail: &str) -> String {
    let (s, c) = (stats(same), stats(cross));
    format!(
        "| {label} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2}× | {:.2}× | {tail} |",
        s.n,
        s.median,
        s.p95,
        s.p99,
        s.max,
        c.n,
        c.median,
        c.p95,
        c.p99,
        c.max,
        c.median / s.median,
        c.p95 / s.p95,
    )
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("cluster spread benchmark: run with `cargo bench --bench cluster_spread`");
        return;
    }
    let runs = env_or("SPREAD_RUNS", 3);
    let pictures = env_or("SPREAD_PICTURES", 240);
    // Every run starts at frame 0; the rest covers the play's lead and
    // keeps the window clear of the clip's end.
    let frames = u32::try_from(pictures + 240).expect("SPREAD_PICTURES fits a clip");
    let timeline = Timeline {
        rate: FrameRate::FPS_23_976,
        duration: i64::from(frames),
    };
    let span_micros = pictures as i64 * 1_001_000 / 24;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    println!("cluster spread: load average before: {}", loadavg());
    let root = common::node::media_root(frames);
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let a = Node::streaming(&nats.url, &pg.url, "spread-a", &root);
    let b = Node::streaming(&nats.url, &pg.url, "spread-b", &root);
    let c = Node::streaming(&nats.url, &pg.url, "spread-c", &root);
    println!(
        "{runs} runs of {pictures} pictures; same node: A1–A2, cross node: A1–C1 and A2–C2 (ms)"
    );
    println!(
        "| run | same n | median | p95 | p99 | max | cross n | median | p95 | p99 | max | median × | p95 × | load after · pictures A1/A2/C1/C2 · mismatches · unreadable |"
    );
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    runtime.block_on(async {
        let created = a.create_media_session("Spread", "clip.mov").await;
        let mut host = Client::join(b.addr, &created.host, "Dana").await;
        let mut a1 = Viewer::join(a.addr, &created.viewer).await;
        let mut a2 = Viewer::join(a.addr, &created.viewer).await;
        let mut c1 = Viewer::join(c.addr, &created.viewer).await;
        let mut c2 = Viewer::join(c.addr, &created.viewer).await;
        for viewer in [&mut a1, &mut a2, &mut c1, &mut c2] {
            viewer.first_readable().await;
        }
        let (mut all_same, mut all_cross) = (Vec::new(), Vec::new());
        let (mut all_mismatches, mut all_unreadable) = (0, 0);
        // Whatever precedes the window (the paused frame repeated, the
        // play's lead) is skipped; a viewer that stalls still ends its wait.
        let limit = 2 * pictures + 240;
        let run_limit = Duration::from_micros(span_micros as u64) + Duration::from_secs(30);
        for run in 1..=runs {
            host.send(json!({"type": "seek", "frame": 0})).await;
            host.expect("transport").await;
            host.send(json!({"type": "play"})).await;
            let play = transport_of(&host.expect("transport").await);
            let from = play.anchor_time.as_micros();
            let to = from + span_micros;
            let (w_a1, w_a2, w_c1, w_c2) = tokio::time::timeout(run_limit, async {
                tokio::join!(
                    window(&mut a1, from, to, limit),
                    window(&mut a2, from, to, limit),
                    window(&mut c1, from, to, limit),
                    window(&mut c2, from, to, limit),
                )
            })
            .await
            .expect("every viewer's window within its length and 30 s");
            host.send(json!({"type": "pause"})).await;
            host.expect("transport").await;

            let same = spreads(&w_a1, &w_a2);
            let mut cross = spreads(&w_a1, &w_c1);
            cross.extend(spreads(&w_a2, &w_c2));
            let (mut mismatches, mut unreadable) = (0, 0);
            for w in [&w_a1, &w_a2, &w_c1, &w_c2] {
                let (m, u) = check(w, &play, &timeline);
                mismatches += m;
                unreadable += u;
            }
            let tail = format!(
                "{} · {}/{}/{}/{} of {pictures} · {mismatches} · {unreadable}",
                loadavg(),
                w_a1.len(),
                w_a2.len(),
                w_c1.len(),
                w_c2.len()
            );
            println!(
                "{}",
                row(&run.to_string(), same.clone(), cross.clone(), &tail)
            );
            all_same.extend(same);
            all_cross.extend(cross);
            all_mismatches += mismatches;
            all_unreadable += unreadable;
        }
        let tail = format!("{} · · {all_mismatches} · {all_unreadable}", loadavg());
        println!("{}", row("all", all_same, all_cross, &tail));
        for viewer in [a1, a2, c1, c2] {
            viewer.leave().await;
        }
    });
    println!("cluster spread: load average after: {}", loadavg());
    drop((a, b, c));
    let _ = std::fs::remove_dir_all(&root);
}
