//! In a large room a driver's change still reaches every socket before it
//! is due: the lead includes the time the room takes to write a broadcast
//! to everyone, as the session measured it on its recent broadcasts.

mod common;

use common::{Client, TestServer, WAIT};
use serde_json::json;
use tokio::sync::mpsc;

const VIEWERS: usize = 300;
const SEEKS: i64 = 12;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_copy_of_a_seek_is_written_before_it_is_due_even_with_a_tiny_lead() {
    // A lead of 1 ms and no margin: unless the lead covers the fan-out,
    // nearly every copy to a room of 300 is written after it was due.
    let server = TestServer::start_with(|c| {
        c.session.lead_min_ms = 1;
        c.session.lead_max_ms = 1;
        c.session.lead_margin_ms = 0;
    })
    .await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel::<i64>();
    let mut readers = Vec::new();
    for i in 0..VIEWERS {
        let mut viewer = Client::join(server.addr, &s.viewer, &format!("Viewer {i}")).await;
        let seen = seen_tx.clone();
        readers.push(tokio::spawn(async move {
            // Ends when the test drops the server or the frames run out.
            while let Some(msg) = viewer.try_next().await {
                if msg["type"] == "transport" {
                    let frame = msg["transport"]["anchorFrame"].as_i64().unwrap();
                    if seen.send(frame).is_err() || frame == SEEKS {
                        return;
                    }
                }
            }
        }));
    }
    drop(seen_tx);

    let mut seek_and_wait = async |frame: i64| {
        host.send(json!({"type": "seek", "frame": frame})).await;
        let mut reached = 0;
        while reached < VIEWERS {
            let got = tokio::time::timeout(WAIT, seen_rx.recv())
                .await
                .unwrap_or_else(|_| panic!("seek {frame} reached {reached} of {VIEWERS}"))
                .expect("viewers keep reading");
            reached += usize::from(got == frame);
        }
    };
    // The first broadcasts (the joins' presence, this seek) teach the
    // session how long its room takes; what is measured is what follows.
    seek_and_wait(0).await;
    let on_time_before = server.metric("syncreel_transport_on_time_total").await;
    let late_before = server.metric("syncreel_transport_late_total").await;
    for frame in 1..=SEEKS {
        seek_and_wait(frame).await;
    }
    // The host's copies count too. A writer counts its copy just after the
    // write that the viewer may already have read, so poll for the tally.
    let copies = SEEKS * (VIEWERS as i64 + 1);
    let deadline = tokio::time::Instant::now() + WAIT;
    let (on_time, late) = loop {
        let on_time = server.metric("syncreel_transport_on_time_total").await - on_time_before;
        let late = server.metric("syncreel_transport_late_total").await - late_before;
        if on_time + late >= copies || tokio::time::Instant::now() > deadline {
            break (on_time, late);
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(on_time + late, copies);
    // Not 100%: a broadcast slower than any the window has seen makes its
    // own tail late. Without the fan-out in the lead this is a few percent.
    assert!(
        on_time * 100 >= copies * 90,
        "{on_time} of {copies} copies on time, {late} late"
    );
    for reader in readers {
        reader.await.unwrap();
    }
    server.shutdown().await;
}
