//! A participant that stops reading must not hold anyone else up: the
//! room keeps going, and the laggard is resynced with a snapshot.

mod common;

use common::{Client, TestServer, WAIT};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

// Fewer than the 14,400 frames of the test session, so every seek is valid.
const COMMANDS: i64 = 14_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stalls_is_resynced_and_holds_nobody_up() {
    let server = TestServer::start_with(|c| {
        c.limits.messages_per_second = 1_000_000;
        c.limits.message_burst = 1_000_000;
        c.limits.outbound_queue = 16;
    })
    .await;
    let s = server.create_session().await;
    // The host reads and writes on separate halves, so that it keeps up
    // with its own flood. (A client that stops reading eventually cannot
    // send either: the server reads and writes one socket.)
    let (host, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    let (mut host_tx, mut host_rx) = host.split();
    host_tx
        .send(Message::text(
            json!({"type": "hello", "protocol": 1, "token": s.host, "name": "Dana"}).to_string(),
        ))
        .await
        .unwrap();
    let host_drain = tokio::spawn(async move { while let Some(Ok(_)) = host_rx.next().await {} });

    // The slow participant reads nothing until the flood is over. Its
    // socket keeps the kernel's default buffers: the flood (megabytes)
    // outgrows them anyway, and a receive buffer shrunk to a few KiB
    // makes loopback TCP prune and retransmit with a backed-off timer,
    // which stalled this test for 30 s now and then with no fault in the
    // server.
    let (mut slow, _) = tokio_tungstenite::connect_async(format!("ws://{}/ws", server.addr))
        .await
        .unwrap();
    slow.send(Message::text(
        json!({"type": "hello", "protocol": 1, "token": s.viewer, "name": "Slow"}).to_string(),
    ))
    .await
    .unwrap();

    // A fast participant follows along. With a queue of 16 and a flood of
    // 14,000 events even it may fall behind for a moment; then it too is
    // resynced, and either way it reaches the final state while the slow
    // one has still read nothing.
    let mut fast = Client::join(server.addr, &s.viewer, "Fast").await;
    let follower = tokio::spawn(async move {
        let mut events = 0;
        loop {
            let msg = fast.next().await;
            let frame = match msg["type"].as_str() {
                Some("transport") => {
                    events += 1;
                    msg["transport"]["anchorFrame"].as_i64()
                }
                Some("snapshot") => msg["state"]["transport"]["anchorFrame"].as_i64(),
                _ => None,
            };
            if frame == Some(COMMANDS - 1) {
                return events;
            }
        }
    });

    for frame in 0..COMMANDS {
        let seek = json!({"type": "seek", "frame": frame}).to_string();
        host_tx.send(Message::text(seek)).await.unwrap();
    }
    let events = tokio::time::timeout(WAIT * 3, follower)
        .await
        .expect("the fast participant reaches the final state")
        .unwrap();
    assert!(events > 0);

    // Now the slow one reads: somewhere in its stream is a snapshot that
    // replaced the events it missed, and it ends on the latest state.
    let mut snapshots = 0;
    let mut final_frame = None;
    let deadline = tokio::time::Instant::now() + WAIT * 3;
    while final_frame != Some(COMMANDS - 1) {
        let frame = tokio::time::timeout_at(deadline, slow.next())
            .await
            .expect("the slow reader catches up")
            .expect("open")
            .expect("ok");
        let Message::Text(text) = frame else { continue };
        let msg: Value = serde_json::from_str(&text).unwrap();
        match msg["type"].as_str() {
            Some("snapshot") => {
                snapshots += 1;
                final_frame = msg["state"]["transport"]["anchorFrame"].as_i64();
            }
            Some("transport") => final_frame = msg["transport"]["anchorFrame"].as_i64(),
            _ => {}
        }
    }
    assert!(
        snapshots >= 1,
        "the slow reader was resynced with a snapshot"
    );

    let (_, metrics) = server.request("GET", "/metrics", None, None).await;
    let resyncs: u64 = metrics
        .as_str()
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("syncreel_slow_consumer_resyncs_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(resyncs >= 1);
    server.shutdown().await;
    host_drain.abort();
}
