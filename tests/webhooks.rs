//! Webhooks as a receiver sees them: signed JSON for each event, retried
//! with backoff after failures, every attempt in the delivery log.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::{Client, TestServer};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A request as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    headers: HashMap<String, String>,
    body: String,
}

/// A bare HTTP/1.1 receiver that fails the first `fail_first` attempts of
/// each delivery with a 500, then answers 200. Reports every request.
async fn receiver(fail_first: usize) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/syncreel", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    let attempts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let tx = tx.clone();
            let attempts = attempts.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                // Bounded by the request's own length.
                let (head_end, length) = loop {
                    let n = socket.read(&mut buf).await.unwrap();
                    assert!(n > 0, "request cut short");
                    data.extend_from_slice(&buf[..n]);
                    if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..i]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map(|v| v.trim().parse::<usize>().unwrap())
                            .unwrap_or(0);
                        break (i + 4, length);
                    }
                };
                while data.len() < head_end + length {
                    let n = socket.read(&mut buf).await.unwrap();
                    assert!(n > 0, "body cut short");
                    data.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&data[..head_end]).to_string();
                let headers: HashMap<String, String> = head
                    .lines()
                    .skip(1)
                    .filter_map(|l| l.split_once(':'))
                    .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
                    .collect();
                let body = String::from_utf8_lossy(&data[head_end..head_end + length]).to_string();
                let delivery = headers
                    .get("x-syncreel-delivery")
                    .cloned()
                    .unwrap_or_default();
                let seen = {
                    let mut attempts = attempts.lock().unwrap();
                    let n = attempts.entry(delivery).or_insert(0);
                    *n += 1;
                    *n
                };
                let status = if seen <= fail_first {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let _ = socket
                    .write_all(
                        format!(
                            "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        )
                        .as_bytes(),
                    )
                    .await;
                let _ = tx.send(Received { headers, body });
            });
        }
    });
    (url, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(common::WAIT, rx.recv())
        .await
        .expect("a webhook request within the wait")
        .expect("receiver running")
}

#[tokio::test]
async fn events_arrive_signed_and_are_retried_with_backoff_and_logged() {
    let (url, mut requests) = receiver(2).await;
    let hook_url = url.clone();
    let server = TestServer::start_with(move |c| {
        c.webhooks.urls = vec![hook_url];
        c.webhooks.secret = "s3cret".into();
        c.webhooks.backoff_ms = 20;
        c.webhooks.max_attempts = 4;
    })
    .await;
    let s = server.create_session().await;

    // session.started: failed twice, delivered the third time, same body
    // and delivery id each time, correctly signed.
    let mut attempts = Vec::new();
    for _ in 0..3 {
        attempts.push(next(&mut requests).await);
    }
    for got in &attempts {
        assert_eq!(got.headers["x-syncreel-event"], "session.started");
        assert_eq!(
            got.headers["x-syncreel-delivery"],
            attempts[0].headers["x-syncreel-delivery"]
        );
        assert_eq!(got.body, attempts[0].body);
        let expected = format!(
            "sha256={}",
            syncreel::webhooks::sign(b"s3cret", got.body.as_bytes())
        );
        assert_eq!(got.headers["x-syncreel-signature"], expected);
        assert_ne!(
            got.headers["x-syncreel-signature"],
            format!(
                "sha256={}",
                syncreel::webhooks::sign(b"wrong", got.body.as_bytes())
            )
        );
    }
    let started: Value = serde_json::from_str(&attempts[0].body).unwrap();
    assert_eq!(started["event"], "session.started");
    assert_eq!(started["sessionId"], s.id);
    assert_eq!(started["data"]["startTimecode"], "01:00:00:00");

    // note.created, with the note and its timecode.
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    reviewer
        .send(json!({"type": "note", "key": "n1", "frame": 245, "text": "Sky too warm"}))
        .await;
    reviewer.expect("noteAck").await;
    let note = loop {
        let got = next(&mut requests).await;
        if got.headers["x-syncreel-event"] == "note.created" {
            break got;
        }
    };
    let body: Value = serde_json::from_str(&note.body).unwrap();
    assert_eq!(body["data"]["note"]["text"], "Sky too warm");
    assert_eq!(body["data"]["timecode"], "01:00:10:05");

    // The delivery log has every attempt of session.started: two failures
    // with the receiver's status, then success.
    // The operator reads it over REST.
    let delivery = attempts[0].headers["x-syncreel-delivery"].clone();
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let log = loop {
        // The log is written after each attempt, just after the receiver
        // answers; poll for the third, within the wait.
        assert!(
            tokio::time::Instant::now() < deadline,
            "delivery log incomplete"
        );
        let (status, body) = server
            .request("GET", "/api/webhooks/deliveries", None, None)
            .await;
        assert_eq!(status, 200, "{body}");
        let log: Vec<Value> = body["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["delivery"] == delivery.as_str())
            .cloned()
            .collect();
        if log.len() >= 3 {
            break log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    let summary: Vec<(&Value, &Value, bool)> = log
        .iter()
        .map(|d| (&d["attempt"], &d["status"], d["error"].is_null()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (&json!(1), &json!(500), false),
            (&json!(2), &json!(500), false),
            (&json!(3), &json!(200), true)
        ]
    );
    assert!(log
        .iter()
        .all(|d| d["url"] == url.as_str() && d["event"] == "session.started"));
    // Backoff: the second retry waited about twice as long as the first.
    let at = |i: usize| log[i]["at"].as_i64().unwrap();
    let gaps = [at(1) - at(0), at(2) - at(1)];
    assert!(gaps[0] >= 20 && gaps[1] >= 40, "waits {gaps:?} ms");
    server.shutdown().await;
}

/// The next request announcing `event`, skipping others (bounded).
async fn next_event(rx: &mut mpsc::UnboundedReceiver<Received>, event: &str) -> Value {
    for _ in 0..20 {
        let got = next(rx).await;
        if got.headers["x-syncreel-event"] == event {
            return serde_json::from_str(&got.body).unwrap();
        }
    }
    panic!("no {event} among the next 20 requests");
}

#[tokio::test]
async fn resolving_and_reopening_a_note_are_announced() {
    let (url, mut requests) = receiver(0).await;
    let server = TestServer::start_with(move |c| {
        c.webhooks.urls = vec![url];
        c.webhooks.secret = "s3cret".into();
    })
    .await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    host.send(json!({"type": "note", "key": "n1", "frame": 24, "text": "Flicker"}))
        .await;
    let id = host.expect("noteAck").await["note"]["id"].clone();
    host.send(json!({"type": "reply", "key": "r1", "parent": id, "text": "Fixed in v2"}))
        .await;
    host.expect("noteAck").await;
    let reply = next_event(&mut requests, "note.created").await;
    assert_eq!(reply["data"]["note"]["text"], "Flicker");
    let reply = next_event(&mut requests, "note.created").await;
    assert_eq!(reply["data"]["note"]["parent"], id, "{reply}");

    host.send(json!({"type": "resolve", "key": "x1", "note": id, "resolved": true}))
        .await;
    host.expect("noteAck").await;
    let resolved = next_event(&mut requests, "note.resolved").await;
    assert_eq!(resolved["data"]["note"]["id"], id);
    assert_eq!(resolved["data"]["note"]["resolvedBy"], "Dana");
    assert_eq!(resolved["data"]["timecode"], "01:00:01:00");
    host.send(json!({"type": "resolve", "key": "x2", "note": id, "resolved": false}))
        .await;
    host.expect("noteAck").await;
    let reopened = next_event(&mut requests, "note.reopened").await;
    assert!(reopened["data"]["note"].get("resolvedBy").is_none());

    // Ending the review: only the host may; everyone is told; the team's
    // tools get a summary; ending twice is the same end.
    let path = format!("/api/sessions/{}/end", s.id);
    let (status, _) = server.request("POST", &path, Some(&s.reviewer), None).await;
    assert_eq!(status, 403);
    let (status, body) = server.request("POST", &path, Some(&s.host), None).await;
    assert_eq!(status, 200, "{body}");
    let at = body["endedAt"].as_i64().unwrap();
    assert_eq!(host.expect("ended").await["at"], at);
    let ended = next_event(&mut requests, "session.ended").await;
    assert_eq!(ended["data"]["notes"], 1);
    assert_eq!(ended["data"]["openNotes"], 1);
    let (_, again) = server.request("POST", &path, Some(&s.host), None).await;
    assert_eq!(again["endedAt"], at);
    // The room stays open for the record, and says it has ended.
    let mut late = Client::join(server.addr, &s.reviewer, "Ravi").await;
    assert_eq!(late.expect("ended").await["at"], at);
    server.shutdown().await;
}
