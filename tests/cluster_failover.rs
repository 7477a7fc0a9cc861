//! Failover across real nodes: three `syncreel serve` processes on one
//! NATS and one PostgreSQL (both from scripts/cluster/). Participants
//! reach the owner through the other two (gateways). When the owner is
//! killed with SIGKILL, the gateways tell their participants
//! `session_moved`; they reconnect to the node they were on, and once the
//! dead owner's lease lapses one of those nodes takes the session over
//! from the shared record: the room at its frame, every acknowledged note
//! once, the links, and a host who can drive again; and what the old owner
//! would still write is fenced off.

mod common;

use std::time::Instant;

use common::nats::NatsServer;
use common::node::{rejoin, Node};
use common::postgres::Postgres;
use common::Client;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_node_is_killed_is_taken_over_and_its_participants_stay_on_their_nodes() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let mut a = Node::in_cluster(&nats.url, &pg.url, "node-a");
    let b = Node::in_cluster(&nats.url, &pg.url, "node-b");
    let c = Node::in_cluster(&nats.url, &pg.url, "node-c");

    let created = a.create_session("Failover").await;
    // The host reaches A through B, a viewer through C.
    let mut host = Client::join(b.addr, &created.host, "Dana").await;
    let mut viewer = Client::join(c.addr, &created.viewer, "Vic").await;
    host.send(json!({"type": "seek", "frame": 240})).await;
    host.expect("transport").await;
    viewer.expect("transport").await;
    // The room plays when A dies. A ping just before says what A's clock
    // read at which instant here, to tell where the room should be later.
    host.send(json!({"type": "play"})).await;
    let play = host.expect("transport").await["transport"].clone();
    // The record writes in order: once this note is acked, the play
    // before it is recorded too.
    host.send(json!({"type": "note", "key": "k1", "frame": 240, "text": "Grain too heavy"}))
        .await;
    let acked = host.expect("noteAck").await["note"].clone();
    host.send(json!({"type": "ping", "id": 77, "t0": 0})).await;
    let pong = host
        .expect_where(|m| m["type"] == "pong" && m["id"] == 77)
        .await;
    let pinged = Instant::now();
    let starts_in_micros = play["anchorTime"].as_i64().unwrap() - pong["t1"].as_i64().unwrap();
    let frame_at = |at: Instant| {
        let since = at.duration_since(pinged).as_micros() as i64 - starts_in_micros;
        240 + since.max(0) * 24 / 1_000_000
    };

    a.kill();
    let killed = Instant::now();
    // Each gateway notices that the owner is gone and says so.
    for (who, client) in [("host", &mut host), ("viewer", &mut viewer)] {
        let goodbye = client.expect("goodbye").await;
        assert_eq!(goodbye["code"], "session_moved", "{who}: {goodbye}");
        eprintln!("{who}: session_moved {:?} after the kill", killed.elapsed());
    }

    // Both reconnect to the node they were on.
    let (mut host, welcome) = rejoin(b.addr, &created.host, killed).await;
    eprintln!(
        "takeover: kill -9 of the owner → welcome on the host's node in {:?}",
        killed.elapsed()
    );
    let welcomed = Instant::now();
    assert_eq!(welcome["role"], "host");
    // Still playing, where the room has got to since A died.
    let transport = &welcome["state"]["transport"];
    assert_eq!(transport["playing"], true, "{welcome}");
    let since_anchor =
        welcome["serverTime"].as_i64().unwrap() - transport["anchorTime"].as_i64().unwrap();
    let shown = transport["anchorFrame"].as_i64().unwrap() + since_anchor.max(0) * 24 / 1_000_000;
    let expected = frame_at(welcomed);
    eprintln!("takeover: the room plays on at frame {shown}; by the test's clock it should be at {expected}");
    assert!(
        (shown - expected).abs() <= 6,
        "the room is at frame {shown} after the takeover, it should be at {expected}: {welcome}"
    );
    let notes = host.expect("notes").await;
    assert_eq!(notes["notes"], json!([acked]), "every acked note, once");
    let (mut viewer, _) = rejoin(c.addr, &created.viewer, killed).await;

    // The host drives again, and the viewer on the third node follows.
    host.send(json!({"type": "pause"})).await;
    host.expect("transport").await;
    host.send(json!({"type": "seek", "frame": 480})).await;
    let moved = host.expect("transport").await;
    assert_eq!(moved["transport"]["anchorFrame"], 480);
    let seen = viewer
        .expect_where(|m| m["type"] == "transport" && m["transport"]["anchorFrame"] == 480)
        .await;
    assert_eq!(
        seen["transport"], moved["transport"],
        "one room, one transport"
    );

    // Had A only stalled rather than died, whatever it wrote now would
    // carry its lease's token, which is at most A's revision and below
    // B's: the new owner raised the session's fence before it read the
    // record, so such a write is refused and nothing of it lands.
    let record = syncreel::store::Store::connect(&pg.url).unwrap();
    let stale = record.fenced(syncreel::store::Fence {
        session_id: created.id.clone(),
        token: 1,
    });
    let zombie = syncreel::store::NewNote {
        session_id: created.id.clone(),
        version_id: None,
        parent_id: None,
        client_key: "zombie".into(),
        author_link: "zombie".into(),
        frame: 1,
        frame_out: None,
        text: "written by a node that lost the session".into(),
        author: "A".into(),
        author_role: "host".into(),
        created_at: 0,
    };
    let refused = stale
        .record(syncreel::store::Record::Note(zombie))
        .await
        .unwrap();
    assert!(
        matches!(refused, Err(syncreel::store::StoreError::Fenced(_))),
        "an old owner's write after the takeover: {refused:?}"
    );
    assert_eq!(
        record.notes(&created.id).unwrap().len(),
        1,
        "only the acked note"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_taking_a_session_over_at_once_run_it_once() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let mut a = Node::in_cluster(&nats.url, &pg.url, "node-a");
    let b = Node::in_cluster(&nats.url, &pg.url, "node-b");
    let c = Node::in_cluster(&nats.url, &pg.url, "node-c");
    let created = a.create_session("Race").await;
    a.kill();
    let killed = Instant::now();
    // Both nodes are asked at the same moments, every 100 ms, so the
    // round after the lease lapses has both opening the session at once.
    let (on_b, on_c) = tokio::join!(
        rejoin(b.addr, &created.host, killed),
        rejoin(c.addr, &created.reviewer, killed)
    );
    let (mut on_b, mut on_c) = (on_b.0, on_c.0);
    let held = common::metric(b.addr, "syncreel_cluster_leases").await
        + common::metric(c.addr, "syncreel_cluster_leases").await;
    let lost = common::metric(b.addr, "syncreel_cluster_lease_losses_total").await
        + common::metric(c.addr, "syncreel_cluster_lease_losses_total").await;
    assert_eq!(held, 1, "one node runs the session");
    assert_eq!(lost, 0, "the other never started it only to stop it");
    // One room: the host's seek reaches the reviewer on the other node.
    on_b.send(json!({"type": "seek", "frame": 48})).await;
    let moved = on_b.expect("transport").await;
    on_c.expect_where(|m| m["type"] == "transport" && m["transport"] == moved["transport"])
        .await;
}

/// A transport change is broadcast only once the shared record has it
/// (`cluster.transport_commit_wait_ms`): an owner killed the moment its
/// room saw a seek leaves the seek for the node taking over, which opens
/// the room on the sought frame, not where it stood before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seek_the_room_saw_survives_its_owner_killed_at_once() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    // The longest wait allowed: a busy test machine's commits are slow.
    let wait = [("SYNCREEL_CLUSTER__TRANSPORT_COMMIT_WAIT_MS", "250")];
    let mut a = Node::in_cluster_env(&nats.url, &pg.url, "node-a", &wait);
    let b = Node::in_cluster_env(&nats.url, &pg.url, "node-b", &wait);
    let created = a.create_session("Seek then die").await;
    let mut host = Client::join(b.addr, &created.host, "Dana").await;
    for frame in [100, 333] {
        host.send(json!({"type": "seek", "frame": frame})).await;
        let seen = host.expect("transport").await;
        assert_eq!(seen["transport"]["anchorFrame"], frame);
    }
    a.kill();
    let killed = Instant::now();
    let (mut host, welcome) = rejoin(b.addr, &created.host, killed).await;
    let transport = &welcome["state"]["transport"];
    assert_eq!(transport["anchorFrame"], 333, "{welcome}");
    assert_eq!(transport["playing"], false, "{welcome}");
    // On the new owner too, every change is committed within the wait.
    host.send(json!({"type": "seek", "frame": 48})).await;
    host.expect("transport").await;
    assert_eq!(
        common::metric(b.addr, "syncreel_transport_commit_late_total").await,
        0
    );
}
