//! Failover time: the owner of a session is killed with SIGKILL while its
//! host is relayed to it through another node (a gateway), and the clock
//! runs until the gateway tells the host `session_moved`, the host,
//! reconnecting to the node it was on, is welcomed into the room (at its
//! frame), and its first command is scheduled there. Two real
//! `syncreel serve` nodes per round on one
//! throwaway NATS and one throwaway PostgreSQL (scripts/cluster/), with
//! the cluster's default lease timing unless `FAILOVER_TTL_MS` /
//! `FAILOVER_RENEW_MS` say otherwise.
//!
//! Run: `cargo bench --bench failover`. Environment (defaults in
//! brackets): `FAILOVER_ROUNDS` [10], `FAILOVER_TTL_MS` [3000],
//! `FAILOVER_RENEW_MS` [1000], `FAILOVER_RETRY_MS` [100]: how often the
//! participant tries again after `session_elsewhere`.
//!
//! Prints each round, then the median, p95 and max of: kill → the host
//! told, kill → welcome on the other node, and kill → that node's
//! `transport` for a seek sent right after the welcome (the room driven
//! again). The target (issue
//! #14) is ≤ 5 s p95.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::nats::NatsServer;
use common::node::Node;
use common::postgres::Postgres;
use common::Client;
use serde_json::json;

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
    let nats = NatsServer::start();
    let pg = Postgres::start();
    println!(
        "failover: {rounds} rounds, lease TTL {ttl} ms, renew {renew} ms, retry every {retry:?}"
    );
    println!("| round | kill → told | kill → welcome | kill → driven |");
    println!("|--:|--:|--:|--:|");
    let (mut told, mut welcomed, mut driven) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut a = Node::in_cluster_with(&nats.url, &pg.url, &format!("a{round}"), &ttl, &renew);
        let b = Node::in_cluster_with(&nats.url, &pg.url, &format!("b{round}"), &ttl, &renew);
        let (t, w, d) = runtime.block_on(async {
            let created = a.create_session("Failover").await;
            // Through B: the owner is A.
            let mut host = Client::join(b.addr, &created.host, "Dana").await;
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
        });
        println!(
            "| {} | {:.0} ms | {:.0} ms | {:.0} ms |",
            round + 1,
            t.as_secs_f64() * 1e3,
            w.as_secs_f64() * 1e3,
            d.as_secs_f64() * 1e3
        );
        told.push(t);
        welcomed.push(w);
        driven.push(d);
    }
    for (name, mut times) in [
        ("kill → told", told),
        ("kill → welcome", welcomed),
        ("kill → driven", driven),
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
