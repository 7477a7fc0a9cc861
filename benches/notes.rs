//! Sustained notes: many authors write notes into one session as fast as
//! the server acknowledges them, each keeping a few in flight. Every note
//! is committed to SQLite (synchronous = FULL) before its `noteAck`, and
//! broadcast to every participant, so this measures the record's batching
//! writer and the room's fan-out together.
//!
//! Run: `cargo bench --bench notes` (env `NOTES_CLIENTS` 50, `NOTES_WINDOW`
//! 4 in flight per author, `NOTES_SECS` 5 per run, `NOTES_RUNS` 3). The
//! server runs in this process, on the same two cores as the authors. Its
//! per-connection rate limit (30 messages/s by default) is lifted, because
//! it would otherwise cap 50 authors at 1,500 notes/s before the record
//! is even reached.

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Client, TestServer};
use serde_json::json;

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

/// One author's run: (acknowledgement latencies in ms, notes acknowledged).
async fn author(
    mut client: Client,
    id: usize,
    run: usize,
    window: usize,
    until: Instant,
) -> Vec<f64> {
    let mut sent: HashMap<String, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut next = 0usize;
    // Bounded by the deadline: each turn sends or reads one message.
    while Instant::now() < until {
        if sent.len() < window {
            let key = format!("r{run}-a{id}-{next}");
            next += 1;
            sent.insert(key.clone(), Instant::now());
            client
                .send(json!({"type": "note", "key": key, "frame": (next % 1000) as i64, "text": "bench note"}))
                .await;
            continue;
        }
        let msg = client.next().await;
        if msg["type"] == "noteAck" {
            if let Some(at) = msg["key"].as_str().and_then(|k| sent.remove(k)) {
                latencies.push(at.elapsed().as_secs_f64() * 1000.0);
            }
        } else if msg["type"] == "noteRefused" || msg["type"] == "error" {
            panic!("refused: {msg}");
        }
    }
    latencies
}

async fn bench() {
    let clients = env_usize("NOTES_CLIENTS", 50);
    let window = env_usize("NOTES_WINDOW", 4);
    let secs = env_usize("NOTES_SECS", 5) as u64;
    let runs = env_usize("NOTES_RUNS", 3);
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_second = 1_000_000;
        c.limits.message_burst = 1_000_000;
        c.limits.outbound_queue = c.limits.outbound_queue.max(4096);
    })
    .await;
    println!("notes: {clients} authors, {window} in flight each, {secs} s per run, {runs} runs; server in process, 2 worker threads");
    println!("| run | notes acked | notes/s | ack p50 ms | p95 ms | p99 ms | max ms |");
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    let mut rates = Vec::new();
    let mut p99s = Vec::new();
    for run in 0..runs {
        // A room per run: the last run's authors linger as disconnected
        // participants (they may resume), which is not what is measured.
        let session = server.create_session().await;
        let mut joined = Vec::new();
        for i in 0..clients {
            joined.push(Client::join(server.addr, &session.reviewer, &format!("Author {i}")).await);
        }
        let started = Instant::now();
        let until = started + Duration::from_secs(secs);
        let tasks: Vec<_> = joined
            .into_iter()
            .enumerate()
            .map(|(i, c)| tokio::spawn(author(c, i, run, window, until)))
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("author task"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let rate = all.len() as f64 / elapsed;
        let p99 = percentile(&all, 99.0);
        println!(
            "| {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |",
            run + 1,
            all.len(),
            rate,
            percentile(&all, 50.0),
            percentile(&all, 95.0),
            p99,
            all.last().copied().unwrap_or(f64::NAN)
        );
        rates.push(rate);
        p99s.push(p99);
    }
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap());
    p99s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    println!(
        "median of runs: {:.0} notes/s, ack p99 {:.1} ms (target ≥ 2,000 notes/s at p99 ≤ 20 ms)",
        rates[rates.len() / 2],
        p99s[p99s.len() / 2]
    );
    server.shutdown().await;
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("notes benchmark: run with `cargo bench --bench notes`");
        return;
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench());
}
