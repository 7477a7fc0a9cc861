//! The review record: notes pinned to frames, stored before they are
//! acknowledged, shown to the room and to late joiners, and kept across a
//! `kill -9` of the server.

mod common;
#[path = "support/process.rs"]
mod process;

use std::collections::{HashMap, HashSet};

use common::{token, Client, SmallDisk, TestServer};
use process::Process;
use serde_json::{json, Value};

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
    reviewer
        .send(json!({"type": "note", "key": "k1", "frame": 120, "frameOut": 130, "text": "Sky is too warm"}))
        .await;
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

/// A record longer than a connection may buffer in one message (1 MiB)
/// reaches a late joiner in pages, and an author who sends faster than it
/// reads loses no acknowledgement: each note is acknowledged, or shown
/// stored by the whole list of the resync its full queue earned.
#[tokio::test]
async fn a_long_record_comes_in_pages_and_a_full_queue_loses_no_acknowledgement() {
    const NOTES: usize = 3_000;
    let server = TestServer::start_with(|config| {
        config.limits.messages_per_second = 10_000;
        config.limits.message_burst = 10_000;
        config.limits.outbound_queue = 32;
    })
    .await;
    let s = server.create_session().await;
    // 12 MB of acknowledgements must outgrow what the sockets hold, or
    // the queue never fills: the author's receive buffer is fixed.
    let mut author = Client::connect_with_receive_buffer(server.addr, 256 * 1024).await;
    author.hello(&s.reviewer, "Ravi", None).await;
    author.welcome = author.expect("welcome").await;
    author.expect("approvals").await;
    let text = "n".repeat(3_900);
    // Sent without reading: acknowledgements pile up in this connection's
    // queue (32 here) until it is full.
    for i in 0..NOTES {
        author.send(note(&format!("k{i}"), i as i64, &text)).await;
    }
    let mut unsettled: HashSet<String> = (0..NOTES).map(|i| format!("k{i}")).collect();
    let (mut gathered, mut resyncs) = (Vec::new(), 0);
    while !unsettled.is_empty() {
        let msg = author.next().await;
        match msg["type"].as_str() {
            Some("noteAck") => {
                unsettled.remove(msg["key"].as_str().unwrap());
            }
            Some("noteRefused") => panic!("refused: {msg}"),
            Some("notes") => {
                gathered.extend(msg["notes"].as_array().unwrap().iter().cloned());
                if msg.get("more").is_none() {
                    resyncs += 1;
                    for stored in gathered.drain(..) {
                        unsettled.remove(stored["key"].as_str().unwrap());
                    }
                }
            }
            _ => {}
        }
    }

    let mut late = Client::join(server.addr, &s.viewer, "Vic").await;
    let mut pages = Vec::new();
    loop {
        let page = late.expect("notes").await;
        let more = page.get("more").cloned();
        pages.push(page);
        if more.is_none() {
            break;
        }
        assert_eq!(more, Some(json!(true)));
    }
    let notes: Vec<&Value> = pages
        .iter()
        .flat_map(|p| p["notes"].as_array().unwrap())
        .collect();
    // Every note once (in the order acknowledged, not quite the order sent).
    let mut frames: Vec<i64> = notes.iter().map(|n| n["frame"].as_i64().unwrap()).collect();
    frames.sort_unstable();
    assert_eq!(
        frames,
        (0..NOTES as i64).collect::<Vec<_>>(),
        "every note once"
    );
    assert!(pages.len() >= 40, "{} pages for ~12 MB", pages.len());
    for page in &pages {
        assert!(
            page.to_string().len() < 512 * 1024,
            "a page of {} bytes",
            page.to_string().len()
        );
    }
    // The lists after it are whole, and the connection is fine.
    assert_eq!(late.expect("drawings").await["drawings"], json!([]));
    late.ping(3).await;
    assert!(resyncs >= 1, "the author's queue never filled");
    server.shutdown().await;
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
    // Every third thing an author sends is a drawing: both kinds take the
    // same path to the disk and must both survive.
    let draft = |key: &str, round: usize| {
        if round % 3 == 2 {
            drawing(
                key,
                (round % 1000) as i64,
                "pen",
                json!([[0.1, 0.1], [0.2, 0.25]]),
            )
        } else {
            note(key, (round % 1000) as i64, key)
        }
    };
    let mut sent: Vec<Vec<(String, usize)>> = vec![Vec::new(); CLIENTS];
    let mut acked: HashSet<String> = HashSet::new();
    let mut in_flight = [0usize; CLIENTS];
    // Bounded: each round sends at most one note per author and reads one
    // message per author.
    'stream: for round in 0..10_000 {
        for (i, author) in authors.iter_mut().enumerate() {
            if in_flight[i] < 4 {
                let key = format!("a{i}-{round}");
                if author.try_send(draft(&key, round)).await {
                    sent[i].push((key, round));
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
                if msg["type"] == "noteAck" || msg["type"] == "drawingAck" {
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
            if msg["type"] == "noteAck" || msg["type"] == "drawingAck" {
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
    let drawings = host.expect("drawings").await["drawings"].clone();
    assert!(
        !drawings.as_array().unwrap().is_empty(),
        "drawings were among what was stored"
    );
    let keys: Vec<String> = [notes, drawings]
        .iter()
        .flat_map(|list| list.as_array().unwrap().iter())
        .map(|n| n["key"].as_str().unwrap().to_string())
        .collect();
    let unique: HashSet<&String> = keys.iter().collect();
    assert_eq!(unique.len(), keys.len(), "nothing is stored twice");
    let missing: Vec<&String> = acked.iter().filter(|k| !unique.contains(k)).collect();
    assert!(missing.is_empty(), "acknowledged but lost: {missing:?}");

    // The authors' outboxes resend what was never acknowledged, with the
    // same keys, each through its own link (a key belongs to its author's
    // link): each note ends up stored exactly once.
    let mut reacked = HashMap::new();
    let mut unacked_count = 0;
    for (i, token) in [(0, &host_token), (1, &reviewer_token)] {
        let unacked: Vec<(String, usize)> = sent
            .iter()
            .enumerate()
            .filter(|(author, _)| (*author == 0) == (i == 0))
            .flat_map(|(_, drafts)| drafts.iter())
            .filter(|(k, _)| !acked.contains(k))
            .cloned()
            .collect();
        unacked_count += unacked.len();
        let mut author = Client::join(server.addr, token, "Outbox").await;
        for (key, round) in &unacked {
            author.send(draft(key, *round)).await;
        }
        let wanted = reacked.len() + unacked.len();
        for _ in 0..unacked.len() * 4 + 100 {
            if reacked.len() >= wanted {
                break;
            }
            let msg = author.next().await;
            if msg["type"] == "noteAck" || msg["type"] == "drawingAck" {
                reacked.insert(msg["key"].as_str().unwrap().to_string(), ());
            }
        }
    }
    assert_eq!(reacked.len(), unacked_count, "every resend is acknowledged");
    let mut late = Client::join(server.addr, &host_token, "Late").await;
    let all_notes = late.expect("notes").await["notes"].clone();
    let all_drawings = late.expect("drawings").await["drawings"].clone();
    let all_keys: Vec<&str> = [&all_notes, &all_drawings]
        .into_iter()
        .flat_map(|list| list.as_array().unwrap().iter())
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

fn drawing(key: &str, frame: i64, tool: &str, points: Value) -> Value {
    json!({"type": "drawing", "key": key, "frame": frame, "tool": tool,
           "colour": "#ff3300", "width": 0.01, "points": points})
}

#[tokio::test]
async fn drawings_reach_the_room_and_late_joiners_and_the_eraser_removes_them_for_everyone() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    assert_eq!(reviewer.expect("drawings").await["drawings"], json!([]));

    let arrow = drawing("d1", 48, "arrow", json!([[0.1, 0.2], [0.5, 0.6]]));
    reviewer.send(arrow.clone()).await;
    let ack = reviewer.expect("drawingAck").await;
    assert_eq!(ack["key"], "d1");
    let stored = ack["drawing"].clone();
    assert_eq!(stored["frame"], 48);
    assert_eq!(stored["tool"], "arrow");
    assert_eq!(stored["colour"], "#ff3300");
    assert_eq!(stored["points"], json!([[0.1, 0.2], [0.5, 0.6]]));
    assert_eq!(stored["author"], "Ravi");
    assert_eq!(host.expect("drawing").await["drawing"], stored);

    // A resend is the same drawing, shown to nobody again.
    reviewer.send(arrow).await;
    assert_eq!(reviewer.expect("drawingAck").await["drawing"], stored);
    let pen = drawing(
        "d2",
        48,
        "pen",
        json!([[0.3, 0.3], [0.31, 0.32], [0.33, 0.35]]),
    );
    host.send(pen).await;
    let second = host.expect("drawingAck").await["drawing"].clone();
    assert_eq!(
        reviewer.expect("drawing").await["drawing"],
        second,
        "d1 was not broadcast twice"
    );

    let mut late = Client::join(server.addr, &s.viewer, "Vic").await;
    assert_eq!(
        late.expect("drawings").await["drawings"],
        json!([stored, second])
    );

    // The eraser removes a drawing for everyone, late joiners included.
    host.send(json!({"type": "erase", "key": "e1", "drawing": stored["id"]}))
        .await;
    let erased = host.expect("drawingAck").await["drawing"].clone();
    assert_eq!(erased["erasedBy"], "Dana");
    assert_eq!(reviewer.expect("drawing").await["drawing"], erased);
    assert_eq!(late.expect("drawing").await["drawing"], erased);
    // Erasing again (a resend, or a second eraser) changes nothing and
    // is acknowledged with the drawing as erased the first time.
    reviewer
        .send(json!({"type": "erase", "key": "e2", "drawing": stored["id"]}))
        .await;
    assert_eq!(reviewer.expect("drawingAck").await["drawing"], erased);
    let mut later = Client::join(server.addr, &s.viewer, "Vee").await;
    assert_eq!(later.expect("drawings").await["drawings"], json!([second]));
    server.shutdown().await;
}

fn stroke(key: &str, frame: i64, tool: &str, from: usize, points: Value) -> Value {
    json!({"type": "stroke", "key": key, "frame": frame, "tool": tool,
           "colour": "#FF3300", "width": 0.01, "from": from, "points": points})
}

/// Reads up to a pong, failing on any stroke on the way: nothing of a
/// stroke comes back to its own author.
async fn no_stroke_before_pong(client: &mut Client, id: u32) {
    client
        .send(json!({"type": "ping", "id": id, "t0": 0}))
        .await;
    loop {
        let msg = client.next().await;
        assert!(
            msg["type"] != "stroke" && msg["type"] != "strokeEnd",
            "{msg}"
        );
        if msg["type"] == "pong" && msg["id"] == id {
            return;
        }
    }
}

#[tokio::test]
async fn a_stroke_reaches_the_room_as_it_is_drawn_and_only_its_drawing_is_recorded() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    let ravi = reviewer.id();

    // A pen stroke grows in parts: the first two points, then one more.
    reviewer
        .send(stroke("s1", 48, "pen", 0, json!([[0.1, 0.1], [0.2, 0.2]])))
        .await;
    reviewer
        .send(stroke("s1", 48, "pen", 2, json!([[0.3, 0.25]])))
        .await;
    for watcher in [&mut host, &mut viewer] {
        let first = watcher.expect("stroke").await;
        assert_eq!(first["by"], ravi);
        assert_eq!(first["key"], "s1");
        assert_eq!(first["frame"], 48);
        assert_eq!(first["tool"], "pen");
        assert_eq!(
            first["colour"], "#ff3300",
            "the colour as drawings carry it"
        );
        assert_eq!(first["from"], 0);
        assert_eq!(first["points"], json!([[0.1, 0.1], [0.2, 0.2]]));
        let second = watcher.expect("stroke").await;
        assert_eq!(second["from"], 2);
        assert_eq!(second["points"], json!([[0.3, 0.25]]));
    }
    no_stroke_before_pong(&mut reviewer, 1).await;

    // An abandoned stroke is ended for everyone else.
    host.send(stroke("s2", 48, "rect", 0, json!([[0.5, 0.5], [0.6, 0.7]])))
        .await;
    host.send(json!({"type": "strokeEnd", "key": "s2"})).await;
    assert_eq!(reviewer.expect("stroke").await["key"], "s2");
    let ended = reviewer.expect("strokeEnd").await;
    assert_eq!(
        (ended["by"].clone(), ended["key"].clone()),
        (json!(host.id()), json!("s2"))
    );
    no_stroke_before_pong(&mut host, 2).await;

    // Let go: the finished shape is recorded under the stroke's key.
    reviewer
        .send(drawing(
            "s1",
            48,
            "pen",
            json!([[0.1, 0.1], [0.2, 0.2], [0.3, 0.25]]),
        ))
        .await;
    let stored = reviewer.expect("drawingAck").await["drawing"].clone();
    assert_eq!(stored["key"], "s1");
    assert_eq!(host.expect("drawing").await["drawing"], stored);

    // Nothing of the strokes in progress is in the record.
    let mut late = Client::join(server.addr, &s.viewer, "Late").await;
    assert_eq!(late.expect("drawings").await["drawings"], json!([stored]));
    server.shutdown().await;
}

#[tokio::test]
async fn bad_strokes_are_refused_with_typed_errors_and_the_room_carries_on() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;

    viewer
        .send(stroke("v1", 10, "pen", 0, json!([[0.1, 0.1]])))
        .await;
    assert_eq!(viewer.expect_error().await["code"], "forbidden");
    let refusals = [
        (
            stroke("b1", 10, "pen", 1999, json!([[0.1, 0.1], [0.2, 0.2]])),
            "bad_drawing",
        ),
        (
            stroke("b2", 10, "arrow", 0, json!([[0.1, 0.1]])),
            "bad_drawing",
        ),
        (
            stroke("b3", 10, "rect", 2, json!([[0.1, 0.1], [0.2, 0.2]])),
            "bad_drawing",
        ),
        (
            stroke("b4", 10, "pen", 0, json!([[1.5, 0.1]])),
            "bad_drawing",
        ),
        (stroke("", 10, "pen", 0, json!([[0.1, 0.1]])), "bad_drawing"),
        (
            stroke("b5", 14_400, "pen", 0, json!([[0.1, 0.1]])),
            "frame_out_of_range",
        ),
        (
            json!({"type": "stroke", "key": "b6", "frame": 1}),
            "malformed",
        ),
    ];
    for (bad, code) in refusals {
        reviewer.send(bad.clone()).await;
        assert_eq!(reviewer.expect_error().await["code"], code, "{bad}");
    }
    // None of that reached anyone; a good part still does.
    reviewer
        .send(stroke("ok", 10, "pen", 0, json!([[0.4, 0.4]])))
        .await;
    let passed = host.expect("stroke").await;
    assert_eq!(passed["key"], "ok", "{passed}");
    server.shutdown().await;
}

#[tokio::test]
async fn bad_drawings_are_refused_with_typed_codes_and_the_connection_carries_on() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    let duration = s.body["session"]["durationFrames"].as_i64().unwrap();
    let line = json!([[0.1, 0.1], [0.2, 0.2]]);

    viewer.send(drawing("v1", 1, "pen", line.clone())).await;
    assert_eq!(viewer.expect("drawingRefused").await["code"], "forbidden");
    viewer
        .send(json!({"type": "erase", "key": "v2", "drawing": 1}))
        .await;
    assert_eq!(viewer.expect("drawingRefused").await["code"], "forbidden");

    let too_many: Vec<[f64; 2]> = (0..2001).map(|i| [0.5, f64::from(i) / 2001.0]).collect();
    let cases = [
        (drawing("b1", 1, "pen", json!(too_many)), "bad_drawing"),
        (drawing("b2", 1, "pen", json!([])), "bad_drawing"),
        (
            drawing("b3", 1, "pen", json!([[0.1, 1.5], [0.2, 0.2]])),
            "bad_drawing",
        ),
        (drawing("b4", 1, "lasso", line.clone()), "bad_drawing"),
        (
            drawing(
                "b5",
                1,
                "arrow",
                json!([[0.1, 0.1], [0.2, 0.2], [0.3, 0.3]]),
            ),
            "bad_drawing",
        ),
        (
            json!({"type": "drawing", "key": "b6", "frame": 1, "tool": "pen",
                   "colour": "red", "width": 0.01, "points": line}),
            "bad_drawing",
        ),
        (
            json!({"type": "drawing", "key": "b7", "frame": 1, "tool": "pen",
                   "colour": "#ff0000", "width": 0.9, "points": line}),
            "bad_drawing",
        ),
        (drawing("", 1, "pen", line.clone()), "bad_drawing"),
        (drawing("b8", -1, "pen", line.clone()), "frame_out_of_range"),
        (
            drawing("b9", duration, "pen", line.clone()),
            "frame_out_of_range",
        ),
        (
            json!({"type": "erase", "key": "b10", "drawing": 424242}),
            "unknown_drawing",
        ),
    ];
    for (bad, code) in cases {
        let key = bad["key"].clone();
        reviewer.send(bad).await;
        let refused = reviewer.expect("drawingRefused").await;
        assert_eq!(refused["key"], key);
        assert_eq!(refused["code"], code, "{refused}");
    }
    // The most points a stroke may have is fine, and the connection works.
    let most: Vec<[f64; 2]> = (0..2000).map(|i| [0.5, f64::from(i) / 2000.0]).collect();
    reviewer.send(drawing("ok", 1, "pen", json!(most))).await;
    let ack = reviewer.expect("drawingAck").await;
    assert_eq!(ack["drawing"]["points"].as_array().unwrap().len(), 2000);
    reviewer.ping(7).await;
    server.shutdown().await;
}

#[tokio::test]
async fn replies_sit_under_their_note_and_resolving_is_shown_to_everyone() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;

    reviewer.send(note("n1", 120, "Sky too warm")).await;
    let parent = reviewer.expect("noteAck").await["note"].clone();
    host.expect("note").await;

    host.send(
        json!({"type": "reply", "key": "r1", "parent": parent["id"], "text": "Cooler in v4"}),
    )
    .await;
    let reply = host.expect("noteAck").await["note"].clone();
    assert_eq!(reply["parent"], parent["id"]);
    assert_eq!(reply["frame"], 120, "a reply sits on its note's frame");
    assert_eq!(reviewer.expect("note").await["note"], reply);

    // Replies to replies and unknown notes are refused.
    for (bad, code) in [
        (
            json!({"type": "reply", "key": "r2", "parent": reply["id"], "text": "deeper"}),
            "unknown_note",
        ),
        (
            json!({"type": "reply", "key": "r3", "parent": 9999, "text": "nobody"}),
            "unknown_note",
        ),
        (
            json!({"type": "resolve", "key": "x1", "note": 9999, "resolved": true}),
            "unknown_note",
        ),
        (
            json!({"type": "reply", "key": "r4", "parent": parent["id"], "text": " "}),
            "bad_note",
        ),
    ] {
        host.send(bad).await;
        assert_eq!(host.expect("noteRefused").await["code"], code);
    }

    host.send(json!({"type": "resolve", "key": "x2", "note": parent["id"], "resolved": true}))
        .await;
    let resolved = host.expect("noteAck").await["note"].clone();
    assert_eq!(resolved["id"], parent["id"]);
    assert_eq!(resolved["resolvedBy"], "Dana");
    assert!(resolved["resolvedAt"].as_i64().unwrap() > 0);
    assert_eq!(reviewer.expect("note").await["note"], resolved);
    // A resend of the resolve is acknowledged as it stands: no new time,
    // no second broadcast.
    host.send(json!({"type": "resolve", "key": "x2", "note": parent["id"], "resolved": true}))
        .await;
    assert_eq!(host.expect("noteAck").await["note"], resolved);

    let mut late = Client::join(server.addr, &s.viewer, "Vic").await;
    assert_eq!(
        late.expect("notes").await["notes"],
        json!([resolved, reply])
    );

    reviewer
        .send(json!({"type": "resolve", "key": "x3", "note": parent["id"], "resolved": false}))
        .await;
    let reopened = reviewer.expect("noteAck").await["note"].clone();
    assert!(reopened.get("resolvedBy").is_none(), "{reopened}");
    assert_eq!(late.expect("note").await["note"], reopened);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviews_notes_drawings_and_approval_survive_kill_9_with_its_version() {
    let data = std::env::temp_dir().join(format!("syncreel-crash-v-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    let media = data.join("media");
    let spec = syncreel::media::demo_clip::DemoClipSpec {
        width: 320,
        height: 180,
        frames: 48,
        ..Default::default()
    };
    syncreel::media::demo_clip::ensure(&media.join("shot.mov"), &spec).unwrap();
    let mut server = Process::start(&data);
    let created = server
        .post(
            "/api/sessions",
            json!({"title": "Shot 030", "media": "shot.mov", "item": "Shot 030"}),
        )
        .await;
    let version = created["version"].clone();
    let host_token = token(&created, "host");
    let mut host = Client::join(server.addr, &host_token, "Dana").await;
    host.send(note("n", 12, "Lose the boom")).await;
    let note_row = host.expect("noteAck").await["note"].clone();
    host.send(drawing("d", 12, "rect", json!([[0.2, 0.2], [0.6, 0.5]])))
        .await;
    let drawing_row = host.expect("drawingAck").await["drawing"].clone();
    host.send(json!({"type": "approve", "key": "a", "status": "changesRequested"}))
        .await;
    let approval = host.expect("approvalAck").await["approval"].clone();
    assert_eq!(approval["receipt"]["checksum"], version["checksum"]);
    let (status, ended) = common::request(
        server.addr,
        "POST",
        &format!(
            "/api/sessions/{}/end",
            created["session"]["id"].as_str().unwrap()
        ),
        Some(&host_token),
        None,
    )
    .await;
    assert_eq!(status, 200, "{ended}");
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    drop(host);

    let server = Process::start(&data);
    let mut host = Client::join(server.addr, &host_token, "Dana").await;
    assert_eq!(host.welcome["media"]["version"], version);
    assert_eq!(host.expect("notes").await["notes"], json!([note_row]));
    assert_eq!(
        host.expect("drawings").await["drawings"],
        json!([drawing_row])
    );
    assert_eq!(
        host.expect("approvals").await["approvals"],
        json!([approval])
    );
    drop(host);
    drop(server);

    // Other bytes under the same name are not the version the record is
    // about: the session comes back without a stream and says why.
    std::fs::remove_file(media.join("shot.mov")).unwrap();
    let other = syncreel::media::demo_clip::DemoClipSpec { frames: 24, ..spec };
    syncreel::media::demo_clip::ensure(&media.join("shot.mov"), &other).unwrap();
    let server = Process::start(&data);
    let mut host = Client::join(server.addr, &host_token, "Dana").await;
    assert_eq!(host.welcome["media"], Value::Null);
    let error = host.expect("mediaError").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("has changed since it was recorded as Shot 030 v1"),
        "{error}"
    );
    assert_eq!(host.expect("notes").await["notes"], json!([note_row]));
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

/// While the record refuses writes, the room still works: the host's seek
/// reaches the refused author, whose connection still answers.
async fn the_room_carries_on(host: &mut Client, author: &mut Client) {
    host.send(json!({"type": "seek", "frame": 100})).await;
    assert_eq!(
        author.expect("transport").await["transport"]["anchorFrame"],
        100
    );
    assert_eq!(author.ping(7).await["id"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_record_refuses_the_note_as_retryable_and_the_session_carries_on() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;

    // Another process (a backup tool, say) holds the write lock for longer
    // than the server waits for it.
    let db = rusqlite::Connection::open(server.data_dir.join("syncreel.db")).unwrap();
    db.execute_batch("BEGIN EXCLUSIVE").unwrap();
    reviewer.send(note("k1", 10, "Locked out")).await;
    let refused = reviewer.expect("noteRefused").await;
    assert_eq!(refused["code"], "store", "{refused}");
    assert!(
        refused["message"].as_str().unwrap().contains("locked"),
        "{refused}"
    );
    the_room_carries_on(&mut host, &mut reviewer).await;
    db.execute_batch("COMMIT").unwrap();
    drop(db);

    // Once the lock is gone the outbox's resend goes through, once.
    reviewer.send(note("k1", 10, "Locked out")).await;
    let ack = reviewer.expect("noteAck").await;
    assert_eq!(ack["note"]["text"], "Locked out");
    assert_eq!(host.expect("note").await["note"], ack["note"]);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_notes_as_retryable_the_session_carries_on_and_nothing_acked_is_lost() {
    let disk = SmallDisk::mount("4m");
    let data_dir = disk.path.join("record");
    let server = {
        let data_dir = data_dir.clone();
        TestServer::start_with(move |config| config.server.data_dir = data_dir).await
    };
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    // Full but for a little room, so that some notes are acknowledged
    // before the disk runs out.
    let filler = disk.fill();
    let size = std::fs::metadata(&filler).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap()
        .set_len(size.saturating_sub(192 * 1024))
        .unwrap();

    // Long notes, one at a time, until the record has no room for one. The
    // write-ahead log may have room left from earlier writes, so it takes a
    // few; 4 MiB of disk cannot hold 1,200 notes of 4,000 characters.
    let text = "x".repeat(4000); // the longest note the server takes
    let mut acked = Vec::new();
    let mut refused = None;
    for i in 0..1200 {
        let key = format!("full-{i}");
        reviewer.send(note(&key, i, &text)).await;
        let reply = reviewer
            .expect_where(|m| m["type"] == "noteAck" || m["type"] == "noteRefused")
            .await;
        assert_eq!(reply["key"], key.as_str(), "{reply}");
        if reply["type"] == "noteRefused" {
            refused = Some((key, reply));
            break;
        }
        acked.push(reply["note"]["id"].clone());
    }
    let (refused_key, refusal) = refused.expect("a full disk refuses a note");
    assert!(!acked.is_empty(), "the room left on disk took some notes");
    assert_eq!(refusal["code"], "store", "{refusal}");
    assert!(
        refusal["message"].as_str().unwrap().contains("full"),
        "{refusal}"
    );

    the_room_carries_on(&mut host, &mut reviewer).await;

    // Once there is room again, the outbox's resend lands, once.
    std::fs::remove_file(&filler).unwrap();
    let refused_frame: i64 = refused_key["full-".len()..].parse().unwrap();
    reviewer
        .send(note(
            &refused_key,
            refused_frame,
            "after the disk was freed",
        ))
        .await;
    let ack = reviewer.expect("noteAck").await;
    assert_eq!(ack["key"], refused_key.as_str(), "{ack}");
    let shown = host
        .expect_where(|m| m["type"] == "note" && m["note"]["key"] == ack["key"])
        .await;
    assert_eq!(shown["note"], ack["note"]);

    // What the record kept, read back from disk by a restarted server.
    server.shutdown().await;
    let server = {
        let data_dir = data_dir.clone();
        TestServer::start_with(move |config| config.server.data_dir = data_dir).await
    };
    let mut late = Client::join(server.addr, &s.viewer, "Late").await;
    let mut kept = Vec::new();
    // The list may come in pages; bounded by the record's size.
    for _ in 0..100 {
        let page = late.expect("notes").await;
        kept.extend(page["notes"].as_array().unwrap().iter().cloned());
        if page["more"] != true {
            break;
        }
    }
    let ids: Vec<&Value> = kept.iter().map(|n| &n["id"]).collect();
    let unique: HashSet<String> = ids.iter().map(|id| id.to_string()).collect();
    assert_eq!(unique.len(), ids.len(), "no note twice");
    assert_eq!(
        ids.len(),
        acked.len() + 1,
        "every acknowledged note is kept"
    );
    assert!(ids.contains(&&ack["note"]["id"]), "the resent note is kept");
    for id in &acked {
        assert!(ids.contains(&id), "acknowledged note {id} kept");
    }
    server.shutdown().await;
    drop(disk);
}

/// `syncreel demo` as `make demo` runs it, on a data dir of our own: the
/// printed sessions, each as (id, [(role, token)]), and whether it said
/// it carried on an earlier run's review.
struct Demo {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    sessions: Vec<(String, Vec<(String, String)>)>,
    carried_on: bool,
}

impl Demo {
    fn start(data: &std::path::Path) -> Demo {
        use std::io::{BufRead, BufReader};
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_syncreel"))
            .args(["demo", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("RUST_LOG", "syncreel=warn")
            .env("SYNCREEL_MEDIA__ROOT", data.join("media"))
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("demo starts");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (mut addr, mut sessions, mut carried_on) = (None, Vec::new(), false);
        // Bounded: the demo prints two sessions of three links each, then
        // nothing until it stops.
        for line in stdout.lines().take(20) {
            let line = line.unwrap();
            if let Some(at) = line.strip_prefix("listening on http://") {
                addr = Some(at.parse().unwrap());
            } else if line.starts_with("carrying on") {
                carried_on = true;
            } else if let Some(rest) = line.strip_prefix("session ") {
                let id = rest.split_whitespace().next().unwrap().to_string();
                sessions.push((id, Vec::new()));
            } else if let Some((role, url)) = line.split_once(' ') {
                if let Some((_, token)) = url.trim().split_once("#token=") {
                    let printed = sessions.len();
                    let links = &mut sessions.last_mut().expect("links follow a session").1;
                    links.push((role.to_string(), token.to_string()));
                    if printed == 2 && links.len() == 3 {
                        break;
                    }
                }
            }
        }
        assert_eq!(sessions.len(), 2, "the demo prints its two sessions");
        Demo {
            child,
            addr: addr.expect("the demo says where it listens"),
            sessions,
            carried_on,
        }
    }

    fn token(&self, session: usize, role: &str) -> &str {
        &self.sessions[session]
            .1
            .iter()
            .find(|(r, _)| r == role)
            .unwrap()
            .1
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        // SIGKILL: what a crash or `kill -9` does.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_review_held_in_the_demo_survives_kill_9_and_the_restarted_demo_carries_it_on() {
    use syncreel::media::demo_clip::{ensure, DemoClipSpec};
    let data = std::env::temp_dir().join(format!("syncreel-demo-crash-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    // Small stand-ins for the demo's clips (it makes its own only where
    // there are none), so that the test does not render two minutes of HD.
    let small = DemoClipSpec {
        width: 320,
        height: 180,
        frames: 96,
        ..DemoClipSpec::default()
    };
    ensure(&data.join("media/demo.mov"), &small).unwrap();
    ensure(&data.join("media/demo-shot010.mov"), &small).unwrap();

    let demo = Demo::start(&data);
    assert!(!demo.carried_on);
    let (review_id, playlist_id) = (demo.sessions[0].0.clone(), demo.sessions[1].0.clone());
    let old_reviewer = demo.token(0, "reviewer").to_string();
    let mut reviewer = Client::join(demo.addr, &old_reviewer, "Ravi").await;
    reviewer.send(note("n1", 40, "Sky too warm")).await;
    let note_row = reviewer.expect("noteAck").await["note"].clone();
    reviewer
        .send(drawing("d1", 40, "rect", json!([[0.2, 0.2], [0.6, 0.5]])))
        .await;
    let drawing_row = reviewer.expect("drawingAck").await["drawing"].clone();
    reviewer
        .send(json!({"type": "approve", "key": "a1", "status": "changesRequested"}))
        .await;
    let approval_row = reviewer.expect("approvalAck").await["approval"].clone();
    drop(reviewer);
    drop(demo);

    // Restarted, the demo prints the same two sessions, with new links.
    let demo = Demo::start(&data);
    assert!(demo.carried_on);
    assert_eq!(
        (demo.sessions[0].0.as_str(), demo.sessions[1].0.as_str()),
        (review_id.as_str(), playlist_id.as_str())
    );
    assert_ne!(demo.token(0, "reviewer"), old_reviewer);
    for token in [demo.token(0, "reviewer"), old_reviewer.as_str()] {
        let mut back = Client::join(demo.addr, token, "Ravi").await;
        assert_eq!(back.welcome["session"]["id"], review_id.as_str());
        assert_eq!(back.expect("notes").await["notes"], json!([note_row]));
        assert_eq!(
            back.expect("drawings").await["drawings"],
            json!([drawing_row])
        );
        assert_eq!(
            back.expect("approvals").await["approvals"],
            json!([approval_row])
        );
    }
    drop(demo);
    let _ = std::fs::remove_dir_all(&data);
}

#[tokio::test]
async fn the_session_keeps_an_audit_trail_of_who_did_what_in_order_and_the_host_reads_it() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut reviewer = Client::join(server.addr, &s.reviewer, "Ravi").await;
    host.send(json!({"type": "seek", "frame": 245})).await;
    reviewer.expect("transport").await;
    reviewer.send(json!({"type": "requestControl"})).await;
    host.expect_where(|m| {
        m["type"] == "control" && m["requests"].as_array().is_some_and(|r| !r.is_empty())
    })
    .await;
    let ravi = reviewer.id();
    host.send(json!({"type": "grantControl", "participant": ravi}))
        .await;
    reviewer
        .expect_where(|m| m["type"] == "control" && m["driver"] == ravi)
        .await;
    reviewer.send(note("n1", 245, "Sky too warm")).await;
    reviewer.expect("noteAck").await;
    reviewer
        .send(drawing("d1", 245, "arrow", json!([[0.1, 0.1], [0.4, 0.4]])))
        .await;
    reviewer.expect("drawingAck").await;
    reviewer.send(json!({"type": "leave"})).await;

    // The trail is written beside the session, never in its way: poll
    // (bounded by the wait) until the last of it is there.
    let deadline = tokio::time::Instant::now() + common::WAIT;
    let path = format!("/api/sessions/{}/events", s.id);
    let kinds = loop {
        let (status, body) = server.request("GET", &path, Some(&s.host), None).await;
        assert_eq!(status, 200, "{body}");
        let kinds: Vec<String> = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["kind"].as_str().unwrap().to_string())
            .collect();
        if kinds.contains(&"left".to_string()) {
            break kinds;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "trail so far {kinds:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    let order = [
        "joined",
        "joined",
        "transport",
        "control",
        "note",
        "drawing",
        "left",
    ];
    let mut at = 0;
    for kind in &kinds {
        if at < order.len() && kind == order[at] {
            at += 1;
        }
    }
    assert_eq!(at, order.len(), "{order:?} in order within {kinds:?}");
    // Only the host reads it.
    let (status, _) = server.request("GET", &path, Some(&s.reviewer), None).await;
    assert_eq!(status, 403);
    server.shutdown().await;
}
