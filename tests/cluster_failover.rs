//! Failover across real nodes: two `syncreel serve` processes on one NATS
//! and one PostgreSQL (both from scripts/cluster/). While its owner lives,
//! another node refuses the session with `session_elsewhere`; after the
//! owner is killed with SIGKILL and its lease lapses, the node a
//! participant reconnects to takes the session over from the shared
//! record: the room at its frame, every acknowledged note once, the links,
//! and a host who can drive again.

mod common;

use std::time::{Duration, Instant};

use common::nats::NatsServer;
use common::node::Node;
use common::postgres::Postgres;
use common::Client;
use serde_json::{json, Value};

/// Short leases, so that the takeover waits about 1.5 s, not 3.
const LEASE_TTL_MS: &str = "1500";
const LEASE_RENEW_MS: &str = "500";

fn node(nats: &NatsServer, pg: &Postgres, name: &str) -> Node {
    let data = std::env::temp_dir().join(format!(
        "syncreel-failover-{}-{name}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    Node::serve(
        &[
            "--data-dir".as_ref(),
            data.as_os_str(),
            "--cluster".as_ref(),
            nats.url.as_ref(),
            "--store".as_ref(),
            pg.url.as_ref(),
        ],
        &[
            ("SYNCREEL_SERVER__ADMIN_TOKEN", common::OPERATOR),
            ("SYNCREEL_CLUSTER__NODE_ID", name),
            ("SYNCREEL_CLUSTER__LEASE_TTL_MS", LEASE_TTL_MS),
            ("SYNCREEL_CLUSTER__LEASE_RENEW_MS", LEASE_RENEW_MS),
        ],
    )
}

/// A hello on `addr`: the welcome, or the error it got instead.
async fn hello(addr: std::net::SocketAddr, token: &str) -> (Client, Result<Value, Value>) {
    let mut client = Client::connect(addr).await;
    client.hello(token, "Dana", None).await;
    let answer = client
        .expect_where(|m| m["type"] == "welcome" || m["type"] == "error")
        .await;
    let result = if answer["type"] == "welcome" {
        Ok(answer)
    } else {
        Err(answer)
    };
    (client, result)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_node_is_killed_is_taken_over_by_the_node_its_participants_reach() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let mut a = node(&nats, &pg, "node-a");
    let b = node(&nats, &pg, "node-b");

    let (status, created) = common::request(
        a.addr,
        "POST",
        "/api/sessions",
        Some(common::OPERATOR),
        Some(json!({"title": "Failover", "fps": "24", "durationFrames": 2400})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let created = common::CreatedSession::from_body(created);
    let mut host = Client::join(a.addr, &created.host, "Dana").await;
    host.send(json!({"type": "seek", "frame": 240})).await;
    host.expect("transport").await;
    host.send(json!({"type": "note", "key": "k1", "frame": 240, "text": "Grain too heavy"}))
        .await;
    let acked = host.expect("noteAck").await["note"].clone();

    // While A lives, B knows the link (from the shared record) but not
    // the room: A runs it.
    let (_, refused) = hello(b.addr, &created.host).await;
    let refused = refused.expect_err("B must not run A's session");
    assert_eq!(refused["code"], "session_elsewhere", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("node-a"),
        "{refused}"
    );

    a.kill();
    let killed = Instant::now();
    // The participant reconnects to the node it can reach; until A's
    // lease lapses it hears `session_elsewhere` and tries again (bounded).
    let (mut host, welcome) = loop {
        let (client, answer) = hello(b.addr, &created.host).await;
        match answer {
            Ok(welcome) => break (client, welcome),
            Err(e) if e["code"] == "session_elsewhere" => {
                assert!(
                    killed.elapsed() < Duration::from_secs(15),
                    "B never took the session over: {e}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("unexpected refusal: {e}"),
        }
    };
    eprintln!(
        "takeover: kill -9 of the owner → welcome on the other node in {:?}",
        killed.elapsed()
    );
    assert_eq!(welcome["role"], "host");
    let transport = &welcome["state"]["transport"];
    assert_eq!(transport["anchorFrame"], 240, "{welcome}");
    assert_eq!(transport["playing"], false);
    let notes = host.expect("notes").await;
    assert_eq!(notes["notes"], json!([acked]), "every acked note, once");

    // The host drives again, on B.
    host.send(json!({"type": "seek", "frame": 480})).await;
    let moved = host.expect("transport").await;
    assert_eq!(moved["transport"]["anchorFrame"], 480);
    // A viewer link minted on A works on B.
    let viewer = Client::join(b.addr, &created.viewer, "Vic").await;
    assert_eq!(viewer.welcome["state"]["transport"]["anchorFrame"], 480);
}
