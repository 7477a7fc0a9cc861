//! What an independent client found when it probed the server as an
//! attacker would: each test here failed before its fix.

mod common;

use common::{Client, TestServer};
use serde_json::{json, Value};

/// Everything that arrives before the pong to a ping sent now: the
/// server answers in order, so what is not here was not sent before it.
async fn before_pong(client: &mut Client, id: u32) -> Vec<Value> {
    client
        .send(json!({"type": "ping", "id": id, "t0": 0}))
        .await;
    let mut seen = Vec::new();
    loop {
        let msg = client.next().await;
        if msg["type"] == "pong" && msg["id"] == id {
            return seen;
        }
        seen.push(msg);
    }
}

fn none_of(kind: &str, messages: &[Value]) {
    assert!(
        messages.iter().all(|m| m["type"] != kind),
        "a {kind} was sent: {messages:?}"
    );
}

#[tokio::test]
async fn another_links_resume_secret_lends_neither_its_role_nor_its_seat() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let host = Client::join(server.addr, &s.host, "Dana").await;
    let host_id = host.id();
    let secret = host.welcome["resume"].as_str().unwrap().to_string();
    assert_eq!(host.welcome["role"], "host");
    host.drop_connection();

    let mut eve = Client::connect(server.addr).await;
    eve.hello(&s.viewer, "Eve", Some(&secret)).await;
    let welcome = eve.expect("welcome").await;
    assert_eq!(welcome["role"], "viewer", "{welcome}");
    assert_ne!(welcome["you"], host_id);
    eve.send(json!({"type": "play", "ref": 4})).await;
    let refused = eve.expect_error().await;
    assert_eq!(refused["code"], "forbidden", "{refused}");
    assert_eq!(refused["ref"], 4);

    // The secret still brings the host back through the host's own link.
    let mut back = Client::connect(server.addr).await;
    back.hello(&s.host, "Dana", Some(&secret)).await;
    let welcome = back.expect("welcome").await;
    assert_eq!(welcome["you"], host_id);
    assert_eq!(welcome["role"], "host");
    server.shutdown().await;
}

#[tokio::test]
async fn after_the_review_ends_another_links_secret_does_not_open_someone_elses_room() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let (status, _) = server
        .request(
            "POST",
            &format!("/api/sessions/{}/end", s.id),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(status, 200);
    // The host reviews on their own; their room is found by their secret.
    let host = Client::join(server.addr, &s.host, "Dana").await;
    assert_eq!(host.welcome["role"], "host");
    let secret = host.welcome["resume"].as_str().unwrap().to_string();
    host.drop_connection();

    let mut eve = Client::connect(server.addr).await;
    eve.hello(&s.viewer, "Eve", Some(&secret)).await;
    let welcome = eve.expect("welcome").await;
    assert_eq!(welcome["role"], "viewer", "{welcome}");
    assert_ne!(
        welcome["resume"], secret,
        "a room of her own, not the host's"
    );
    server.shutdown().await;
}

fn note(key: &str, frame: i64, text: &str) -> Value {
    json!({"type": "note", "key": key, "frame": frame, "text": text})
}

#[tokio::test]
async fn a_note_key_belongs_to_its_authors_link_and_a_reused_key_is_refused_not_acked() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut ravi = Client::join(server.addr, &s.reviewer, "Ravi").await;

    ravi.send(note("k1", 10, "Sky too warm")).await;
    let first = ravi.expect("noteAck").await["note"].clone();
    assert_eq!(first["text"], "Sky too warm");
    // Another author's note under the same key is stored as theirs.
    host.send(note("k1", 20, "Boom in shot")).await;
    let ack = host.expect("noteAck").await;
    assert_eq!(ack["note"]["text"], "Boom in shot", "{ack}");
    assert_eq!(ack["note"]["author"], "Dana");
    assert_ne!(ack["note"]["id"], first["id"]);

    // A second person on the same reviewer link reusing the key for other
    // words is refused with a typed code; a true resend is acknowledged.
    let mut rae = Client::join(server.addr, &s.reviewer, "Rae").await;
    rae.send(note("k1", 30, "Grain too heavy")).await;
    let refused = rae.expect("noteRefused").await;
    assert_eq!(refused["key"], "k1");
    assert_eq!(refused["code"], "key_conflict", "{refused}");
    ravi.send(note("k1", 10, "Sky too warm")).await;
    assert_eq!(ravi.expect("noteAck").await["note"], first);

    let mut late = Client::join(server.addr, &s.viewer, "Vic").await;
    let texts: Vec<Value> = late.expect("notes").await["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].clone())
        .collect();
    assert_eq!(texts, [json!("Sky too warm"), json!("Boom in shot")]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_message_is_named_never_numbered_and_a_malformed_one_keeps_its_ref() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    host.send(json!({"type": "play"})).await;
    host.expect("transport").await;
    viewer.expect("transport").await;

    // By position in the server's enum these were pause, play and ping.
    for (i, numbered) in [
        json!({"type": 3}),
        json!({"type": 2}),
        json!({"type": 1, "t1": 5}),
    ]
    .into_iter()
    .enumerate()
    {
        let mut numbered = numbered;
        numbered["ref"] = json!(i + 10);
        host.send(numbered).await;
        let refused = host.expect_error().await;
        assert_eq!(refused["code"], "malformed", "{refused}");
        assert_eq!(refused["ref"], i + 10);
    }
    none_of("transport", &before_pong(&mut viewer, 1).await);
    none_of("pong", &before_pong(&mut host, 2).await);
    server.shutdown().await;
}

#[tokio::test]
async fn wire_numbers_at_the_ends_of_i64_are_refused_or_bounded_never_wrapped() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;

    for frames in [i64::MIN, i64::MAX, i64::MIN + 1] {
        host.send(json!({"type": "step", "frames": frames, "ref": 1}))
            .await;
        let refused = host.expect_error().await;
        assert_eq!(refused["code"], "step_too_large", "{frames}: {refused}");
    }
    none_of("transport", &before_pong(&mut viewer, 1).await);

    // A round trip near 2^63 used to wrap the lead round to its floor.
    viewer
        .send(json!({"type": "syncReport", "rttUs": i64::MAX - 5, "offsetUs": 0, "uncertaintyUs": i64::MAX}))
        .await;
    // The report is applied in order with the viewer's other messages; a
    // ping after it proves it reached the session.
    viewer.ping(2).await;
    let pong = host.ping(3).await;
    host.send(json!({"type": "seek", "frame": 10})).await;
    let transport = host.expect("transport").await;
    let lead = transport["executeAt"].as_i64().unwrap() - pong["t2"].as_i64().unwrap();
    assert!(lead >= 400_000, "the lead is at its ceiling, not {lead} µs");

    // Frame reports off the media or far from now are not kept.
    viewer
        .send(json!({"type": "frameReport", "frame": i64::MAX, "atUs": i64::MIN}))
        .await;
    viewer.ping(4).await;
    host.ping(5).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_link_lifetime_beyond_ten_years_is_refused_and_ten_years_survives() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mint = |secs: Value| {
        let server = &server;
        let path = format!("/api/sessions/{}/links", s.id);
        let host = s.host.clone();
        async move {
            server
                .request(
                    "POST",
                    &path,
                    Some(&host),
                    Some(json!({"role": "viewer", "expiresInSecs": secs})),
                )
                .await
        }
    };
    for too_long in [json!(u64::MAX), json!(315_360_001u64)] {
        let (status, body) = mint(too_long).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "bad_request");
    }
    let (status, body) = mint(json!(315_360_000u64)).await;
    assert_eq!(status, 201, "{body}");
    let expires = body["expiresAt"].as_u64().unwrap();
    assert!(expires > 315_360_000, "{body}");
    let joined = Client::join(server.addr, body["token"].as_str().unwrap(), "Vic").await;
    assert_eq!(joined.welcome["role"], "viewer");
    server.shutdown().await;
}

#[tokio::test]
async fn a_wrong_method_gets_the_json_error_not_an_empty_body() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    for (method, path) in [
        ("DELETE", "/api/sessions".to_string()),
        ("PUT", format!("/api/sessions/{}", s.id)),
        ("GET", format!("/api/sessions/{}/end", s.id)),
    ] {
        let (status, body) = server.request(method, &path, Some(&s.host), None).await;
        assert_eq!(status, 405, "{method} {path}");
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
    }
    server.shutdown().await;
}
