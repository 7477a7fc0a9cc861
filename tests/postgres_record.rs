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
