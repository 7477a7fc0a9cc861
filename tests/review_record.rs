//! The review record: notes pinned to frames, stored before they are
//! acknowledged, shown to the room and to late joiners, and kept across a
//! `kill -9` of the server.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use common::{Client, TestServer};
use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_syncreel");

fn token(created: &Value, role: &str) -> String {
    created["links"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["role"] == role)
        .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string()
}

fn note(key: &str, frame: i64, text: &str) -> Value {
    json!({"type": "note", "key": key, "frame": frame, "text": text})
}

#[tokio::test]
async fn a_note_is_acknowledged_to_its_author_shown_to_the_room_and_given_to_late_joiners() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    assert_eq!(reviewer.expect("notes").await["notes"], json!([]));

    reviewer
        .send(json!({"type": "note", "key": "k1", "frame": 120, "frameOut": 130, "text": "  Sky is too warm  "}))
        .await;
    let ack = reviewer.expect("noteAck").await;
    assert_eq!(ack["key"], "k1");
    let stored = &ack["note"];
    assert_eq!(stored["frame"], 120);
    assert_eq!(stored["frameOut"], 130);
    assert_eq!(stored["text"], "Sky is too warm");
    assert_eq!(stored["author"], "Ravi");
    assert_eq!(stored["authorRole"], "reviewer");
    assert_eq!(host.expect("note").await["note"], *stored);

    // A resend (its acknowledgement was lost, say) is acknowledged with the
    // same note and shown to nobody again.
    reviewer.send(note("k1", 999, "again")).await;
    assert_eq!(reviewer.expect("noteAck").await["note"], *stored);
    host.send(note("k2", 5, "Boom in shot")).await;
    let second = host.expect("noteAck").await["note"].clone();
    let next_note = reviewer.expect("note").await;
    assert_eq!(next_note["note"], second, "k1 was not broadcast twice");

    // Someone joining later gets every note, in order.
    let mut late = Client::join(server.addr, &s.viewer, "Vic").await;
    let notes = late.expect("notes").await;
    assert_eq!(notes["notes"], json!([stored, second]));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_notes_are_refused_with_typed_codes_and_the_connection_carries_on() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    let duration = s.body["session"]["durationFrames"].as_i64().unwrap();

    viewer.send(note("v1", 1, "I watch")).await;
    let refused = viewer.expect("noteRefused").await;
    assert_eq!(
        (refused["key"].as_str(), refused["code"].as_str()),
        (Some("v1"), Some("forbidden"))
    );

    let long = "x".repeat(4001);
    let cases = [
        (note("e1", 1, "   "), "bad_note"),
        (note("e2", 1, &long), "bad_note"),
        (note("", 1, "no key"), "bad_note"),
        (note(&"k".repeat(65), 1, "long key"), "bad_note"),
        (note("e3", -1, "before the start"), "frame_out_of_range"),
        (note("e4", duration, "past the end"), "frame_out_of_range"),
        (
            json!({"type": "note", "key": "e5", "frame": 10, "frameOut": 9, "text": "backwards"}),
            "frame_out_of_range",
        ),
    ];
    for (bad, code) in cases {
        let key = bad["key"].clone();
        reviewer.send(bad).await;
        let refused = reviewer.expect("noteRefused").await;
        assert_eq!(refused["key"], key);
        assert_eq!(refused["code"], code, "{refused}");
    }
    // A note of exactly the limit is fine, and the connection still works.
    reviewer
        .send(note("ok", duration - 1, &"y".repeat(4000)))
        .await;
    assert_eq!(reviewer.expect("noteAck").await["key"], "ok");
    reviewer.ping(7).await;
    server.shutdown().await;
}

/// The real server process on a data dir of our choosing.
struct Process {
    child: Child,
    addr: SocketAddr,
}

impl Process {
    fn start(data: &std::path::Path) -> Process {
        let mut child = Command::new(BIN)
            .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "syncreel=warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("server starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .parse()
            .unwrap();
        Process { child, addr }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let (status, body) = common::request(self.addr, "POST", path, None, Some(body)).await;
        assert_eq!(status, 201, "{body}");
        body
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_loses_no_acknowledged_note_and_duplicates_none() {
    const CLIENTS: usize = 4;
    const ACKED_BEFORE_KILL: usize = 120;
    let data = std::env::temp_dir().join(format!("syncreel-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let mut server = Process::start(&data);
    let created = server
        .post(
            "/api/sessions",
            json!({"title": "Crash", "fps": "24", "durationFrames": 100000}),
        )
        .await;
    let host_token = token(&created, "host");
    let reviewer_token = token(&created, "reviewer");

    // Park the room somewhere, and wait until that is certain.
    let mut host = Client::join(server.addr, &host_token, "Dana").await;
    host.send(json!({"type": "seek", "frame": 1234})).await;
    host.expect("transport").await;

    // Several authors stream notes, a few in flight each, until enough are
    // acknowledged; then the server dies mid-stream.
    let mut authors = Vec::new();
    for i in 0..CLIENTS {
        let token = if i == 0 { &host_token } else { &reviewer_token };
        authors.push(Client::join(server.addr, token, &format!("Author {i}")).await);
    }
    let mut sent: Vec<Vec<String>> = vec![Vec::new(); CLIENTS];
    let mut acked: HashSet<String> = HashSet::new();
    let mut in_flight = [0usize; CLIENTS];
    // Bounded: each round sends at most one note per author and reads one
    // message per author.
    'stream: for round in 0..10_000 {
        for (i, author) in authors.iter_mut().enumerate() {
            if in_flight[i] < 4 {
                let key = format!("a{i}-{round}");
                if author
                    .try_send(note(&key, (round % 1000) as i64, &key))
                    .await
                {
                    sent[i].push(key);
                    in_flight[i] += 1;
                }
            }
            if acked.len() >= ACKED_BEFORE_KILL {
                break 'stream;
            }
            loop {
                let Some(msg) = author.try_next().await else {
                    break;
                };
                if msg["type"] == "noteAck" {
                    acked.insert(msg["key"].as_str().unwrap().to_string());
                    in_flight[i] -= 1;
                    break;
                }
            }
        }
    }
    assert!(acked.len() >= ACKED_BEFORE_KILL);
    server.child.kill().unwrap(); // SIGKILL: no shutdown, no flush.
    server.child.wait().unwrap();
    // Whatever else arrives before the socket closes is acknowledged too.
    for author in authors.iter_mut() {
        while let Some(msg) = author.try_next().await {
            if msg["type"] == "noteAck" {
                acked.insert(msg["key"].as_str().unwrap().to_string());
            }
        }
    }
    drop(authors);
    drop(host);

    let server = Process::start(&data);
    let mut host = Client::join(server.addr, &host_token, "Dana").await;
    let transport = &host.welcome["state"]["transport"];
    assert_eq!(transport["playing"], false, "{transport}");
    assert_eq!(
        transport["anchorFrame"], 1234,
        "the room reopens where it was"
    );
    let notes = host.expect("notes").await["notes"].clone();
    let keys: Vec<String> = notes
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "no note is stored twice");
    let missing: Vec<&String> = acked.iter().filter(|k| !unique.contains(k)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");

    // The authors' outboxes resend what was never acknowledged, with the
    // same keys: each note ends up stored exactly once.
    let mut author = Client::join(server.addr, &reviewer_token, "Outbox").await;
    let unacked: Vec<String> = sent
        .iter()
        .flatten()
        .filter(|k| !acked.contains(*k))
        .cloned()
        .collect();
    for key in &unacked {
        author.send(note(key, 1, key)).await;
    }
    let mut reacked = HashMap::new();
    while reacked.len() < unacked.len() {
        let msg = author.expect("noteAck").await;
        reacked.insert(
            msg["key"].as_str().unwrap().to_string(),
            msg["note"]["id"].clone(),
        );
    }
    let mut late = Client::join(server.addr, &host_token, "Late").await;
    let all = late.expect("notes").await["notes"].clone();
    let all_keys: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["key"].as_str().unwrap())
        .collect();
    let distinct: HashSet<&str> = all_keys.iter().copied().collect();
    let total_sent: usize = sent.iter().map(Vec::len).sum();
    assert_eq!(
        distinct.len(),
        all_keys.len(),
        "no duplicates after resends"
    );
    assert_eq!(all_keys.len(), total_sent, "every note sent is stored once");
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}
