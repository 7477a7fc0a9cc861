//! Placement and drain on two real nodes (one NATS, one PostgreSQL): a
//! new session runs on the least loaded node wherever it is created, and a
//! drained node hands its sessions to the other, whose participants meet
//! them there after a `session_moved`.

mod common;

use std::net::SocketAddr;

use common::nats::NatsServer;
use common::node::{until, Node};
use common::postgres::Postgres;
use common::Client;
use serde_json::{json, Value};

fn placing(nats: &NatsServer, pg: &Postgres, name: &str) -> Node {
    Node::in_cluster_env(
        &nats.url,
        &pg.url,
        name,
        &[
            ("SYNCREEL_CLUSTER__PLACE_SESSIONS", "true"),
            ("SYNCREEL_CLUSTER__LOAD_INTERVAL_MS", "100"),
        ],
    )
}

async fn leases(addr: SocketAddr) -> i64 {
    common::metric(addr, "syncreel_cluster_leases").await
}

/// Each node's sessions as the cluster's published loads say.
async fn loads(addr: SocketAddr) -> Value {
    let (status, body) =
        common::request(addr, "GET", "/api/cluster", Some(common::OPERATOR), None).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn sessions_of(cluster: &Value, node: &str) -> Option<u64> {
    cluster["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["node"] == node)?["sessions"]
        .as_u64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_go_to_the_least_loaded_node_and_a_drained_node_hands_them_over() {
    let nats = NatsServer::start();
    let pg = Postgres::start();
    let a = placing(&nats, &pg, "node-a");
    let b = placing(&nats, &pg, "node-b");

    // The first session goes to either (both idle); find where.
    let first = a.create_session("First").await;
    until("the first session is owned", || async {
        leases(a.addr).await + leases(b.addr).await == 1
    })
    .await;
    let (busy, idle) = if leases(a.addr).await == 1 {
        (&a, &b)
    } else {
        (&b, &a)
    };
    let (busy_name, idle_name) = if busy.addr == a.addr {
        ("node-a", "node-b")
    } else {
        ("node-b", "node-a")
    };
    until("both loads are published", || async {
        let cluster = loads(a.addr).await;
        sessions_of(&cluster, busy_name) == Some(1) && sessions_of(&cluster, idle_name) == Some(0)
    })
    .await;

    // Created on the busy node, the second session runs on the idle one;
    // a participant who asked the busy node is relayed there.
    let second = busy.create_session("Second").await;
    until("placed on the idle node", || async {
        leases(idle.addr).await == 1
    })
    .await;
    assert_eq!(leases(busy.addr).await, 1);
    let host = Client::join(busy.addr, &second.host, "Dana").await;
    assert_eq!(host.welcome["role"], "host");
    assert_eq!(
        common::metric(busy.addr, "syncreel_relayed_connections_total").await,
        1
    );

    // Drain the busy node: its session moves to the other, and a
    // participant relayed to it through the other node follows.
    let mut viewer = Client::join(idle.addr, &first.viewer, "Vic").await;
    let mut driver = Client::join(busy.addr, &first.host, "Dana").await;
    driver.send(json!({"type": "seek", "frame": 300})).await;
    driver.expect("transport").await;
    viewer.expect("transport").await;
    let (status, drained) = common::request(
        busy.addr,
        "POST",
        "/api/cluster/drain",
        Some(common::OPERATOR),
        None,
    )
    .await;
    assert_eq!(status, 200, "{drained}");
    assert_eq!(
        drained["sessions"],
        json!([{"session": first.id, "to": idle_name}]),
        "{drained}"
    );
    until("nothing runs on the drained node", || async {
        leases(busy.addr).await == 0 && leases(idle.addr).await == 2
    })
    .await;
    let goodbye = viewer.expect("goodbye").await;
    assert_eq!(goodbye["code"], "session_moved", "{goodbye}");
    let viewer = Client::join(idle.addr, &first.viewer, "Vic").await;
    assert_eq!(
        viewer.welcome["state"]["transport"]["anchorFrame"], 300,
        "the room where it stood"
    );
    let cluster = loads(busy.addr).await;
    assert_eq!(cluster["draining"], true, "{cluster}");

    // A drained node places even what it is asked to create elsewhere.
    busy.create_session("Third").await;
    until("the third session runs on the other node", || async {
        leases(idle.addr).await == 3
    })
    .await;
    assert_eq!(leases(busy.addr).await, 0);
}
