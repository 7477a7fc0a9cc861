//! A node cut off from NATS (the network between it and NATS fails; the
//! node itself lives on) degrades cleanly: the sessions it ran stop there
//! when their leases can no longer be renewed, everyone in them is told
//! `session_moved`, it turns away new hellos with `cluster_unavailable`
//! and its `/healthz` says 503 (so a load balancer sends participants
//! elsewhere), another node takes the sessions over from the shared
//! record, and once NATS is back the node serves again, as a gateway.
//! Real nats-server, PostgreSQL and `syncreel serve` processes; node A
//! reaches NATS through a line the test cuts.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::line::Line;
use common::nats::NatsServer;
use common::node::{hello, rejoin, until, Node};
use common::postgres::Postgres;
use common::Client;
use serde_json::{json, Value};

async fn health(addr: SocketAddr) -> (u16, Value) {
    common::request(addr, "GET", "/healthz", None, None).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_nats_gives_its_sessions_up_and_sends_its_participants_elsewhere() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let nats_addr: SocketAddr = nats.url.trim_start_matches("nats://").parse().unwrap();
    let line = Line::open(nats_addr).await;
    let a = Node::in_cluster(&format!("nats://{}", line.addr), &pg.url, "node-a");
    let b = Node::in_cluster(&nats.url, &pg.url, "node-b");

    let created = a.create_session("Cut off").await;
    // The host is on A, the owner; a viewer reaches A through B.
    let mut host = Client::join(a.addr, &created.host, "Dana").await;
    let mut viewer = Client::join(b.addr, &created.viewer, "Vic").await;
    host.send(json!({"type": "seek", "frame": 240})).await;
    host.expect("transport").await;
    viewer
        .expect_where(|m| m["type"] == "transport" && m["transport"]["anchorFrame"] == 240)
        .await;
    // Written in order after the seek: once acked, the seek is recorded.
    host.send(json!({"type": "note", "key": "k1", "frame": 240, "text": "Hold the cut"}))
        .await;
    let acked = host.expect("noteAck").await["note"].clone();
    let (status, body) = health(a.addr).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["cluster"]["connected"], true, "{body}");

    line.cut();
    let cut = Instant::now();
    // B's probes find nobody behind A's subject: the relayed viewer is
    // told first. A's own host is told when A's unrenewed lease would
    // lapse (the TTL is 1.5 s), never later: after that B may run it.
    let goodbye = viewer.expect("goodbye").await;
    assert_eq!(goodbye["code"], "session_moved", "{goodbye}");
    let goodbye = host.expect("goodbye").await;
    assert_eq!(goodbye["code"], "session_moved", "{goodbye}");
    let told = cut.elapsed();
    eprintln!("the owner cut off from NATS stopped its session {told:?} after the cut");
    // The lease's state machine stops A inside the TTL (its unit tests
    // step that in simulated time); a busy machine's timers may add a
    // little here, never a whole TTL.
    assert!(
        told <= Duration::from_millis(3000),
        "A ran the session long past its lease's TTL: {told:?}"
    );

    // A turns everyone away, with a reason, and says so to a balancer.
    let (status, body) = health(a.addr).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "cut_off", "{body}");
    assert_eq!(body["cluster"]["connected"], false, "{body}");
    let (_, answer) = hello(a.addr, &created.host).await;
    let refusal = answer.expect_err("no welcome on a node cut off from the cluster");
    assert_eq!(refusal["code"], "cluster_unavailable", "{refusal}");
    let (status, body) = common::request(
        a.addr,
        "POST",
        "/api/sessions",
        Some(common::OPERATOR),
        Some(json!({"title": "Nowhere", "fps": "24", "durationFrames": 240})),
    )
    .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], "cluster_unavailable", "{body}");

    // The host goes where the balancer sends it: B takes the room over
    // at its frame, with the note once, and the host drives.
    let (mut host, welcome) = rejoin(b.addr, &created.host, cut).await;
    eprintln!("B took the session over {:?} after the cut", cut.elapsed());
    assert_eq!(welcome["role"], "host");
    assert_eq!(
        welcome["state"]["transport"]["anchorFrame"], 240,
        "{welcome}"
    );
    let notes = host.expect("notes").await;
    assert_eq!(notes["notes"], json!([acked]), "every acked note, once");
    let (mut viewer, _) = rejoin(b.addr, &created.viewer, cut).await;
    host.send(json!({"type": "seek", "frame": 480})).await;
    let moved = host.expect("transport").await;
    viewer
        .expect_where(|m| m["type"] == "transport" && m["transport"] == moved["transport"])
        .await;

    // NATS back: A is healthy again and relays to B, which runs it now.
    line.mend();
    until("A reconnects to NATS", || async {
        health(a.addr).await.0 == 200
    })
    .await;
    let mut on_a = Client::join(a.addr, &created.reviewer, "Rey").await;
    assert_eq!(
        on_a.welcome["state"]["transport"], moved["transport"],
        "one room, one transport"
    );
    assert!(
        common::metric(a.addr, "syncreel_relayed_connections_total").await >= 1,
        "A relays to B instead of running the session a second time"
    );
    host.send(json!({"type": "seek", "frame": 720})).await;
    let moved = host.expect("transport").await;
    on_a.expect_where(|m| m["type"] == "transport" && m["transport"] == moved["transport"])
        .await;
}
