//! The server on a PostgreSQL record (`server.store`), the shipped path a
//! cluster uses: what one node acknowledged, another node with nothing of
//! its own on disk brings back from the shared record.

mod common;

use common::postgres::Postgres;
use common::{Client, TestServer};
use serde_json::json;
use syncreel::config::Config;
use syncreel::server::Server;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_acknowledged_on_one_node_is_brought_back_by_another_from_postgres() {
    let pg = Postgres::start();
    let url = pg.url.clone();
    let first = TestServer::start_with(|c| c.server.store = url.clone()).await;
    let s = first.create_session().await;
    let mut host = Client::join(first.addr, &s.host, "Dana").await;
    host.send(json!({"type": "seek", "frame": 240})).await;
    host.expect("transport").await;
    host.send(json!({"type": "note", "key": "k1", "frame": 240, "text": "Sky too warm"}))
        .await;
    let acked = host.expect("noteAck").await["note"].clone();
    host.close().await;
    first.shutdown().await;

    // Another node: its own (empty) data directory, the same record.
    let url = pg.url.clone();
    let second = TestServer::start_with(|c| c.server.store = url.clone()).await;
    assert!(
        !second.data_dir.join("syncreel.db").exists(),
        "nothing of the record is on this node's disk"
    );
    let mut host = Client::join(second.addr, &s.host, "Dana").await;
    assert_eq!(
        host.welcome["state"]["transport"]["anchorFrame"], 240,
        "the room stands where it was left: {}",
        host.welcome
    );
    let notes = host.expect("notes").await;
    assert_eq!(
        notes["notes"],
        json!([acked]),
        "the acknowledged note, once"
    );
    // The links are the record's too: a viewer link made on the first
    // node works here.
    let viewer = Client::join(second.addr, &s.viewer, "Vic").await;
    assert_eq!(viewer.welcome["role"], "viewer");
    second.shutdown().await;
}

#[tokio::test]
async fn a_server_whose_record_cannot_be_reached_refuses_to_start_and_says_why() {
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir =
        std::env::temp_dir().join(format!("syncreel-pg-none-{}", std::process::id()));
    // A loopback port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    config.server.store = format!("postgres://syncreel@127.0.0.1:{port}/syncreel");
    let err = Server::bind(config)
        .await
        .err()
        .expect("no server without its record");
    let message = format!("{err:#}");
    assert!(message.contains("review record"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_on_one_record_send_each_webhook_once() {
    let pg = Postgres::start();
    let (url, mut requests) = common::hooks::receiver(0).await;
    let node = |url: String, store: String| {
        TestServer::start_with(move |c| {
            c.server.store = store;
            c.webhooks.urls = vec![url];
            c.webhooks.secret = "s3cret-s3cret-s3cret".into();
            // Both nodes look often, so that both race for every row.
            c.webhooks.poll_ms = 5;
        })
    };
    let a = node(url.clone(), pg.url.clone()).await;
    let b = node(url.clone(), pg.url.clone()).await;
    const SESSIONS: usize = 12;
    let mut ids = std::collections::BTreeSet::new();
    for i in 0..SESSIONS {
        let on = if i % 2 == 0 { &a } else { &b };
        ids.insert(on.create_session().await.id);
    }
    let mut deliveries = std::collections::BTreeSet::new();
    let mut started = std::collections::BTreeSet::new();
    for _ in 0..SESSIONS {
        let got = common::hooks::next(&mut requests).await;
        assert_eq!(got.headers["x-syncreel-event"], "session.started");
        assert!(
            deliveries.insert(got.headers["x-syncreel-delivery"].clone()),
            "delivery {} sent twice",
            got.headers["x-syncreel-delivery"]
        );
        let body: serde_json::Value = serde_json::from_str(&got.body).unwrap();
        started.insert(body["sessionId"].as_str().unwrap().to_string());
    }
    assert_eq!(started, ids, "every session announced");
    // Nothing more comes: quiet for 100 of either node's polls.
    let extra = tokio::time::timeout(std::time::Duration::from_millis(500), requests.recv()).await;
    assert!(extra.is_err(), "a delivery was sent again: {extra:?}");
    // The shared log has one attempt per delivery.
    let (_, log) = a
        .request(
            "GET",
            "/api/webhooks/deliveries",
            Some(common::OPERATOR),
            None,
        )
        .await;
    assert_eq!(
        log["deliveries"].as_array().unwrap().len(),
        SESSIONS,
        "{log}"
    );
    a.shutdown().await;
    b.shutdown().await;
}
