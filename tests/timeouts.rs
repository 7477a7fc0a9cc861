//! Connections that hold a slot and do nothing: a socket that never says
//! hello, and a peer that went silent while its socket stayed open (a
//! driver on a dead laptop must not keep the seat forever).

mod common;

use common::{Client, TestServer};
use serde_json::json;

#[tokio::test]
async fn a_socket_that_never_says_hello_is_closed_and_frees_its_slot() {
    let server = TestServer::start_with(|c| c.limits.hello_timeout_ms = 300).await;
    let s = server.create_session().await;
    // A participant that says hello in time stays past the deadline.
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut idle = Client::connect(server.addr).await;
    let bye = idle.expect("goodbye").await;
    assert_eq!(bye["code"], "hello_timeout", "{bye}");
    idle.expect_closed().await;
    // The idle socket opened after the host's, so the host's deadline has
    // passed too: it is still served, and it is the only connection left.
    host.ping(1).await;
    server.wait_for_connections(1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_driver_gone_silent_is_dropped_and_the_seat_returns_to_a_host() {
    let server = TestServer::start_with(|c| {
        c.limits.ping_interval_ms = 100;
        c.limits.dead_peer_timeout_ms = 500;
        c.session.driver_grace_ms = 200;
    })
    .await;
    let s = server.create_session().await;
    let driver = Client::join(server.addr, &s.host, "Dana").await;
    let driver_id = driver.id();
    assert_eq!(driver.welcome["state"]["control"]["driver"], driver_id);
    let mut other = Client::join(server.addr, &s.host, "Hana").await;
    let other_id = other.id();
    // The driver's socket stays open but nobody reads it: no pong, nothing.
    // Hana's client reads (and so answers pings) all along.
    let control = other
        .expect_where(|m| m["type"] == "control" && m["driver"] == other_id)
        .await;
    assert_eq!(control["driver"], other_id);
    other.send(json!({"type": "seek", "frame": 12})).await;
    assert_eq!(other.expect("transport").await["by"], other_id);
    drop(driver);
    server.shutdown().await;
}
