//! Gateways: any node takes any participant. Three real `syncreel serve`
//! processes on one NATS and one PostgreSQL; a session owned by A, with
//! participants connected to A, B and C. Those on B and C are relayed to
//! A: they meet A's room, A's record and A's clock.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::nats::NatsServer;
use common::node::Node;
use common::postgres::Postgres;
use common::Client;
use serde_json::json;

/// One NTP-style estimate of the server's clock against the test's
/// (`epoch`), from the ping with the shortest round trip of `rounds`:
/// (offset µs, round trip µs). The true offset is within half that
/// round trip of the estimate.
async fn clock_offset(client: &mut Client, epoch: Instant, rounds: u32) -> (i64, i64) {
    let mut best: Option<(i64, i64)> = None;
    for id in 0..rounds {
        let t0 = epoch.elapsed().as_micros() as i64;
        client
            .send(json!({"type": "ping", "id": 1000 + id, "t0": t0}))
            .await;
        let pong = client
            .expect_where(|m| m["type"] == "pong" && m["id"] == 1000 + id)
            .await;
        let t3 = epoch.elapsed().as_micros() as i64;
        let (t1, t2) = (pong["t1"].as_i64().unwrap(), pong["t2"].as_i64().unwrap());
        let rtt = (t3 - t0) - (t2 - t1);
        let offset = ((t1 - t0) + (t2 - t3)) / 2;
        if best.is_none_or(|(_, r)| rtt < r) {
            best = Some((offset, rtt));
        }
    }
    best.unwrap()
}

async fn relayed(addr: SocketAddr) -> i64 {
    common::metric(addr, "syncreel_relayed_connections_total").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn participants_on_three_nodes_share_one_room_one_record_and_one_clock() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let a = Node::in_cluster(&nats.url, &pg.url, "node-a");
    let b = Node::in_cluster(&nats.url, &pg.url, "node-b");
    let c = Node::in_cluster(&nats.url, &pg.url, "node-c");
    let created = a.create_session("Gateways").await;

    // The driver is on B; a viewer on A (the owner), a reviewer on C.
    let mut driver = Client::join(b.addr, &created.host, "Dana").await;
    let mut on_a = Client::join(a.addr, &created.viewer, "Abe").await;
    let mut on_c = Client::join(c.addr, &created.reviewer, "Cleo").await;
    assert_eq!(driver.welcome["role"], "host", "the token decides the role");
    assert_eq!(on_c.welcome["role"], "reviewer");
    assert_eq!(
        (
            relayed(a.addr).await,
            relayed(b.addr).await,
            relayed(c.addr).await
        ),
        (0, 1, 1),
        "B and C relay their participants; A serves its own"
    );
    // One room: everyone sees everyone, whichever node they are on.
    let roster = on_c
        .expect_where(|m| {
            m["type"] == "presence" && m["participants"].as_array().is_some_and(|p| p.len() == 3)
        })
        .await;
    assert_eq!(roster["participants"].as_array().unwrap().len(), 3);

    // A seek by the driver on B reaches A, B and C with one transport.
    driver
        .send(json!({"type": "seek", "frame": 240, "ref": 7}))
        .await;
    let sent = driver.expect("transport").await;
    assert_eq!(sent["transport"]["anchorFrame"], 240);
    for client in [&mut on_a, &mut on_c] {
        let seen = client.expect("transport").await;
        assert_eq!(
            seen["transport"], sent["transport"],
            "same executeAt and frame"
        );
    }
    driver.send(json!({"type": "play", "ref": 8})).await;
    let playing = driver.expect("transport").await;
    for client in [&mut on_a, &mut on_c] {
        let seen = client.expect("transport").await;
        assert_eq!(seen["transport"], playing["transport"]);
    }

    // A reviewer may not drive, through a gateway as anywhere.
    on_c.send(json!({"type": "pause", "ref": 9})).await;
    let refused = on_c.expect_error().await;
    assert_eq!(refused["code"], "not_driver", "{refused}");
    assert_eq!(refused["ref"], 9);

    // The record is the owner's: a note written on C is acked once and
    // reaches the others.
    on_c.send(json!({"type": "note", "key": "c1", "frame": 240, "text": "Flare on the left"}))
        .await;
    let ack = on_c.expect("noteAck").await;
    for client in [&mut driver, &mut on_a] {
        let note = client.expect("note").await;
        assert_eq!(note["note"], ack["note"]);
    }
    // What reads the record is answered by any node: the host exports the
    // notes and reads the audit trail through C, which does not run the
    // session; a reviewer's link still may not.
    let export = format!("/api/sessions/{}/export/json", created.id);
    let (status, body) = common::request(c.addr, "GET", &export, Some(&created.host), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["notes"][0]["text"], "Flare on the left", "{body}");
    let events = format!("/api/sessions/{}/events", created.id);
    let (status, body) = common::request(c.addr, "GET", &events, Some(&created.host), None).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = common::request(c.addr, "GET", &export, Some(&created.reviewer), None).await;
    assert_eq!(status, 403);

    // One clock: a participant on a gateway is answered in the owner's
    // time. The estimate through each node is compared with the one made
    // directly on A; each is within half its round trip of the truth, so
    // they differ by at most the two half round trips.
    let epoch = Instant::now();
    let mut errors = Vec::new();
    for _ in 0..5 {
        let (direct, direct_rtt) = clock_offset(&mut on_a, epoch, 10).await;
        for (node, client) in [("B", &mut driver), ("C", &mut on_c)] {
            let (via, via_rtt) = clock_offset(client, epoch, 10).await;
            let error = via - direct;
            let bound = (via_rtt + direct_rtt) / 2 + 1;
            assert!(
                error.abs() <= bound,
                "through {node} the clock is {error} µs off A's (bound {bound} µs)"
            );
            errors.push(error.abs());
        }
    }
    errors.sort_unstable();
    eprintln!(
        "gateway clock offset error vs the owner: median {} µs, p95 {} µs, max {} µs ({} estimates)",
        errors[errors.len() / 2],
        errors[errors.len() * 95 / 100],
        errors[errors.len() - 1],
        errors.len()
    );

    // Leaving through a gateway leaves the room on the owner.
    let cleo = on_c.id();
    on_c.send(json!({"type": "leave"})).await;
    on_c.expect("goodbye").await;
    on_a.expect_where(|m| m["type"] == "presence" && m["left"] == json!([cleo]))
        .await;

    // The host's page ends the review with a REST call, which may land on
    // any node: C asks A, which ends it, and the room hears it.
    let end = format!("/api/sessions/{}/end", created.id);
    let (status, body) = common::request(c.addr, "POST", &end, Some(&created.host), None).await;
    assert_eq!(status, 200, "{body}");
    let ended = on_a.expect("ended").await;
    assert_eq!(ended["at"], body["endedAt"], "{ended}");
    driver.expect("ended").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_with_no_owner_to_reach_says_so_and_a_dead_owners_participants_are_told() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let mut a = Node::in_cluster(&nats.url, &pg.url, "node-a");
    let b = Node::in_cluster(&nats.url, &pg.url, "node-b");
    let created = a.create_session("Gateways").await;
    let mut on_b = Client::join(b.addr, &created.viewer, "Bea").await;

    a.kill();
    let killed = Instant::now();
    let goodbye = on_b.expect("goodbye").await;
    assert_eq!(goodbye["code"], "session_moved", "{goodbye}");
    let told = killed.elapsed();
    eprintln!("a relayed participant heard session_moved {told:?} after its owner died");
    assert!(
        told < Duration::from_secs(3),
        "probes every 0.5 s: {told:?}"
    );

    // Until A's lease lapses B cannot run the session nor reach A: a
    // typed refusal, not a hang.
    let mut early = Client::connect(b.addr).await;
    early.hello(&created.viewer, "Bea", None).await;
    let answer = early
        .expect_where(|m| m["type"] == "welcome" || m["type"] == "error")
        .await;
    if killed.elapsed() < Duration::from_millis(1200) {
        assert_eq!(answer["code"], "session_elsewhere", "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("node-a"),
            "{answer}"
        );
    }
}

/// How many messages crossed to gateway B's fan subject carrying the
/// `transport` at each of `frames`, and how many connections they named
/// in all, read until the last frame's has crossed to every connection
/// (at most 10 s). Other frames (presence, keep-alives) are skipped.
async fn transport_crossings(
    crossing: &mut async_nats::Subscriber,
    frames: &[i64],
    connections: usize,
) -> (usize, usize) {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (mut messages, mut named) = (0, 0);
    let mut last_named = 0;
    while last_named < connections {
        let message = tokio::time::timeout_at(deadline, crossing.next())
            .await
            .expect("every transport crossed within 10 s")
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&message.payload).unwrap_or_default();
        let frame = body["transport"]["anchorFrame"].as_i64();
        if body["type"] != "transport" || !frame.is_some_and(|f| frames.contains(&f)) {
            continue;
        }
        let to = message.headers.as_ref().unwrap().get("Relay-To").unwrap();
        let count = to.as_str().split(',').count();
        messages += 1;
        named += count;
        if frame == frames.last().copied() {
            last_named += count;
        }
    }
    (messages, named)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_crosses_to_a_gateway_node_once_for_all_its_participants() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let a = Node::in_cluster(&nats.url, &pg.url, "node-a");
    let b = Node::in_cluster(&nats.url, &pg.url, "node-b");
    let created = a.create_session("Fan-out").await;
    let mut driver = Client::join(a.addr, &created.host, "Dana").await;
    const ON_B: usize = 5;
    let mut on_b = Vec::new();
    for i in 0..ON_B {
        on_b.push(Client::join(b.addr, &created.viewer, &format!("Viewer {i}")).await);
    }
    assert_eq!(relayed(b.addr).await, ON_B as i64);
    // What crosses from the owner to B, seen from outside both.
    let watcher = async_nats::connect(&nats.url).await.unwrap();
    let mut crossing = watcher
        .subscribe("syncreel.relay.fan.node-b")
        .await
        .unwrap();
    watcher.flush().await.unwrap();

    let frames = [240, 250, 260, 270, 280];
    for (i, frame) in frames.iter().enumerate() {
        driver
            .send(json!({"type": "seek", "frame": frame, "ref": 20 + i}))
            .await;
        let sent = driver.expect("transport").await;
        for viewer in &mut on_b {
            assert_eq!(
                viewer.expect("transport").await["transport"],
                sent["transport"]
            );
        }
    }
    let (messages, named) = transport_crossings(&mut crossing, &frames, ON_B).await;
    eprintln!("{messages} NATS messages carried {named} copies of 5 seeks to B");
    // Every viewer's copy crossed, each named once...
    assert_eq!(named, frames.len() * ON_B);
    // ...in far fewer messages than one per viewer (25). A broadcast is
    // handed to the relay by each viewer's writer as it runs, and a batch
    // goes when they have all had their turn: on a busy machine one may
    // miss it and cross alone, so the bound is not the ideal 5.
    assert!(
        messages <= 2 * frames.len(),
        "{messages} messages carried {named} copies"
    );
}
