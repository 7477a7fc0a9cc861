//! Optional per-link passcodes, end to end: the hello, REST calls made
//! with a link, the lock after wrong ones, resume, restarts, and what the
//! record keeps.

mod common;

use std::time::{Duration, Instant};

use common::{request_with, Client, CreatedSession, TestServer, WAIT};
use serde_json::{json, Value};

const PASSCODE: &str = "open sesame";

fn hello(token: &str, passcode: Option<&str>, resume: Option<&str>) -> Value {
    let mut hello = json!({"type": "hello", "protocol": 1, "token": token, "name": "Pat"});
    if let Some(passcode) = passcode {
        hello["passcode"] = json!(passcode);
    }
    if let Some(resume) = resume {
        hello["resume"] = json!(resume);
    }
    hello
}

/// The answer to a hello: `welcome`, or the error's code.
async fn answer(client: &mut Client, hello: Value) -> Value {
    client.send(hello).await;
    client
        .expect_where(|m| m["type"] == "welcome" || m["type"] == "error")
        .await
}

async fn session_with_passcode(server: &TestServer) -> CreatedSession {
    server
        .create_session_with(json!({
            "title": "Locked reel", "fps": "24", "durationFrames": 1000, "passcode": PASSCODE,
        }))
        .await
}

/// A REST call with a link and, if given, the passcode header.
async fn call(
    server: &TestServer,
    method: &str,
    path: &str,
    token: &str,
    passcode: Option<&str>,
    body: Option<Value>,
) -> (u16, hyper::HeaderMap, Value) {
    let headers: Vec<(&str, &str)> = passcode
        .map(|p| vec![("x-syncreel-passcode", p)])
        .unwrap_or_default();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, headers, bytes) =
        request_with(server.addr, method, path, Some(token), &headers, payload).await;
    let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, value)
}

fn links_have_passcode(body: &Value) -> Vec<bool> {
    body["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            l["hasPasscode"]
                .as_bool()
                .expect("hasPasscode is always there")
        })
        .collect()
}

#[tokio::test]
async fn a_link_without_a_passcode_joins_as_before() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    assert_eq!(links_have_passcode(&s.body), [false, false, false]);
    // A passcode sent to a link without one is not asked for, and ignored.
    let mut client = Client::connect(server.addr).await;
    let welcome = answer(&mut client, hello(&s.viewer, Some("whatever"), None)).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    Client::join(server.addr, &s.reviewer, "Ravi").await;
    let (status, body) = server
        .request(
            "GET",
            &format!("/api/sessions/{}", s.id),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(links_have_passcode(&body), [false, false, false]);
}

#[tokio::test]
async fn a_passcode_link_asks_for_it_refuses_a_wrong_one_and_admits_the_right_one() {
    let server = TestServer::start().await;
    let s = session_with_passcode(&server).await;
    assert_eq!(links_have_passcode(&s.body), [true, true, true]);
    assert!(!s.body.to_string().contains(PASSCODE));
    assert!(!s.body.to_string().contains("argon2"));

    let mut client = Client::connect(server.addr).await;
    let refused = answer(&mut client, hello(&s.reviewer, None, None)).await;
    assert_eq!(refused["code"], "passcode_required", "{refused}");
    let refused = answer(&mut client, hello(&s.reviewer, Some("open sesame?"), None)).await;
    assert_eq!(refused["code"], "passcode_wrong", "{refused}");
    assert!(refused.get("retryAfterSecs").is_none());
    // Trimmed, as it was when it was set.
    let welcome = answer(
        &mut client,
        hello(&s.reviewer, Some("  open sesame "), None),
    )
    .await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    assert_eq!(welcome["role"], "reviewer");
    let you = welcome["you"].clone();
    let secret = welcome["resume"].as_str().unwrap().to_string();

    // A reconnect resumes without typing it again...
    client.drop_connection();
    let mut again = Client::connect(server.addr).await;
    let resumed = answer(&mut again, hello(&s.reviewer, None, Some(&secret))).await;
    assert_eq!(resumed["type"], "welcome", "{resumed}");
    assert_eq!(resumed["you"], you);
    // ...but a secret that resumes nobody is not a way in.
    let mut stranger = Client::connect(server.addr).await;
    let bogus = "00112233445566778899aabbccddeeff";
    let refused = answer(&mut stranger, hello(&s.reviewer, None, Some(bogus))).await;
    assert_eq!(refused["code"], "passcode_required", "{refused}");
    // Nor is this participant's secret through another link of the session.
    let refused = answer(&mut stranger, hello(&s.viewer, None, Some(&secret))).await;
    assert_eq!(refused["code"], "passcode_required", "{refused}");

    // The host mints a link with its own passcode; the list says which
    // links have one, never what it is.
    let (status, _, minted) = call(
        &server,
        "POST",
        &format!("/api/sessions/{}/links", s.id),
        &s.host,
        Some(PASSCODE),
        Some(json!({"role": "viewer", "passcode": "  4711 "})),
    )
    .await;
    assert_eq!(status, 201, "{minted}");
    assert_eq!(minted["hasPasscode"], true);
    let token = minted["token"].as_str().unwrap();
    let mut viewer = Client::connect(server.addr).await;
    let refused = answer(&mut viewer, hello(token, Some(PASSCODE), None)).await;
    assert_eq!(refused["code"], "passcode_wrong", "{refused}");
    let welcome = answer(&mut viewer, hello(token, Some("4711"), None)).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let (status, _, plain) = call(
        &server,
        "POST",
        &format!("/api/sessions/{}/links", s.id),
        &s.host,
        Some(PASSCODE),
        Some(json!({"role": "viewer"})),
    )
    .await;
    assert_eq!((status, &plain["hasPasscode"]), (201, &json!(false)));
    let (status, _, body) = call(
        &server,
        "GET",
        &format!("/api/sessions/{}", s.id),
        &s.host,
        Some(PASSCODE),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    // Listed by id: the plain link is the one without.
    for link in body["links"].as_array().unwrap() {
        assert_eq!(link["hasPasscode"], link["id"] != plain["id"], "{link}");
    }
    assert_eq!(links_have_passcode(&body).len(), 5);
    let text = body.to_string();
    assert!(!text.contains("4711") && !text.contains(PASSCODE) && !text.contains("argon2"));
}

#[tokio::test]
async fn a_passcode_must_be_4_to_64_printable_characters() {
    let server = TestServer::start().await;
    let s = session_with_passcode(&server).await;
    for bad in ["abc", "   ", &"x".repeat(65), "pass\nword", "café au lait"] {
        let (status, _, body) = call(
            &server,
            "POST",
            &format!("/api/sessions/{}/links", s.id),
            &s.host,
            Some(PASSCODE),
            Some(json!({"role": "viewer", "passcode": bad})),
        )
        .await;
        assert_eq!(status, 400, "{bad:?}: {body}");
        assert_eq!(body["error"]["code"], "bad_passcode", "{bad:?}");
        let (status, body) = server
            .request(
                "POST",
                "/api/sessions",
                Some(common::OPERATOR),
                Some(json!({"title": "x", "fps": "24", "durationFrames": 10, "passcode": bad})),
            )
            .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (400, &json!("bad_passcode")),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn rest_calls_with_a_link_need_its_passcode() {
    let server = TestServer::start().await;
    let s = session_with_passcode(&server).await;
    let checksum = "0".repeat(64);
    let routes = [
        ("GET", format!("/api/sessions/{}", s.id), &s.host),
        ("GET", format!("/api/sessions/{}/events", s.id), &s.host),
        ("GET", format!("/api/sessions/{}/export/csv", s.id), &s.host),
        ("GET", format!("/api/sessions/{}/still/0", s.id), &s.viewer),
        (
            "GET",
            format!("/api/sessions/{}/frames/{checksum}/0", s.id),
            &s.reviewer,
        ),
        ("POST", format!("/api/sessions/{}/end", s.id), &s.host),
    ];
    for (method, path, token) in &routes {
        let (status, _, body) = call(&server, method, path, token, None, None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"]["code"], "passcode_required", "{path}");
        let (status, _, body) = call(&server, method, path, token, Some("nope nope"), None).await;
        assert_eq!(status, 401, "{path}: {body}");
        assert_eq!(body["error"]["code"], "passcode_wrong", "{path}");
    }
    // With it, each gets past the link to its own answer.
    for (method, path, token) in &routes {
        let (status, _, body) = call(&server, method, path, token, Some(PASSCODE), None).await;
        assert!(status != 401 && status != 429, "{path}: {status} {body}");
    }
    // A link of another session learns nothing, passcode or not.
    let other = server.create_session().await;
    let (status, _, _) = call(
        &server,
        "GET",
        &format!("/api/sessions/{}", s.id),
        &other.host,
        None,
        None,
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn wrong_passcodes_lock_the_link_until_the_window_has_passed() {
    // Long enough that the wrong ones and the checks under the lock fit
    // in it on a loaded machine (each check is an Argon2 hash).
    const WINDOW: Duration = Duration::from_secs(4);
    let server = TestServer::start_with(|c| {
        c.links.passcode_attempts = 3;
        c.links.passcode_window_secs = WINDOW.as_secs();
    })
    .await;
    let s = session_with_passcode(&server).await;
    let mut client = Client::connect(server.addr).await;
    let first_wrong = Instant::now();
    for guess in ["guess one", "guess two", "guess three"] {
        let refused = answer(&mut client, hello(&s.reviewer, Some(guess), None)).await;
        assert_eq!(refused["code"], "passcode_wrong", "{refused}");
    }
    // Locked: even the right passcode is not looked at.
    let locked = answer(&mut client, hello(&s.reviewer, Some(PASSCODE), None)).await;
    assert_eq!(locked["code"], "passcode_locked", "{locked}");
    let wait = locked["retryAfterSecs"].as_u64().expect("retryAfterSecs");
    assert!((1..=WINDOW.as_secs()).contains(&wait), "{locked}");
    // On REST too, for this link.
    let path = format!("/api/sessions/{}/still/0", s.id);
    let (status, headers, body) =
        call(&server, "GET", &path, &s.reviewer, Some(PASSCODE), None).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "passcode_locked");
    assert!(body["error"]["retryAfterSecs"].as_u64().is_some());
    assert!(headers.get("retry-after").is_some());
    // Other links of the session are not locked by this one's guesses.
    let mut host = Client::connect(server.addr).await;
    let welcome = answer(&mut host, hello(&s.host, Some(PASSCODE), None)).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");

    // Once the window from the first wrong one has passed, it opens again.
    let deadline = Instant::now() + WAIT;
    let admitted_at = loop {
        let reply = answer(&mut client, hello(&s.reviewer, Some(PASSCODE), None)).await;
        if reply["type"] == "welcome" {
            break Instant::now();
        }
        assert_eq!(reply["code"], "passcode_locked", "{reply}");
        assert!(Instant::now() < deadline, "still locked after {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(admitted_at - first_wrong >= WINDOW);

    // The host's audit trail and the metrics have the wrong ones.
    let deadline = Instant::now() + WAIT;
    loop {
        let (status, _, body) = call(
            &server,
            "GET",
            &format!("/api/sessions/{}/events", s.id),
            &s.host,
            Some(PASSCODE),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let wrong: Vec<&Value> = body["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["kind"] == "passcode_wrong")
            .collect();
        if wrong.len() == 3 {
            assert!(wrong[2]["detail"].as_str().unwrap().contains("locked"));
            assert!(wrong[0]["detail"].as_str().unwrap().contains("127.0.0.1"));
            break;
        }
        assert!(Instant::now() < deadline, "events: {body}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, metrics) = server.request("GET", "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap().to_string();
    assert!(
        metrics.contains("syncreel_passcode_failures_total 3\n"),
        "{metrics}"
    );
    assert!(
        !metrics.contains("syncreel_passcode_locked_total 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_passcode_survives_a_restart_and_only_its_hash_is_recorded() {
    let data = std::env::temp_dir().join(format!(
        "syncreel-passcode-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    ));
    let _ = std::fs::remove_dir_all(&data);
    let config = {
        let data = data.clone();
        move |c: &mut syncreel::config::Config| c.server.data_dir = data
    };
    let server = TestServer::start_with(config.clone()).await;
    let s = session_with_passcode(&server).await;
    Client::join(server.addr, &server.create_session().await.viewer, "Plain").await;
    server.shutdown().await;

    let db = data.join("syncreel.db");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let hashes: Vec<(String, Option<String>)> = conn
        .prepare("SELECT session_id, passcode_hash FROM links ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let ours: Vec<&String> = hashes
        .iter()
        .filter(|(session, _)| *session == s.id)
        .map(|(_, hash)| hash.as_ref().expect("a passcode link keeps a hash"))
        .collect();
    assert_eq!(ours.len(), 3);
    for hash in &ours {
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(!hash.contains(PASSCODE));
    }
    assert_ne!(ours[0], ours[1], "each link has a salt of its own");
    assert!(hashes.iter().any(|(_, hash)| hash.is_none()));
    drop(conn);
    // Nowhere in the record's files is the passcode itself.
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes
                    .windows(PASSCODE.len())
                    .any(|w| w == PASSCODE.as_bytes()),
                "{} holds the passcode",
                path.display()
            );
        }
    }

    let server = TestServer::start_with(config).await;
    let mut client = Client::connect(server.addr).await;
    let refused = answer(&mut client, hello(&s.viewer, None, None)).await;
    assert_eq!(refused["code"], "passcode_required", "{refused}");
    let welcome = answer(&mut client, hello(&s.viewer, Some(PASSCODE), None)).await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&data);
}

/// What a check costs: `cargo test --test passcode -- --nocapture` prints
/// it. Bounded loosely, so that a hash made far too costly (or a debug
/// build of Argon2) shows.
#[test]
fn one_check_takes_tens_of_milliseconds() {
    let phc = syncreel::passcode::hash(PASSCODE);
    let mut times: Vec<Duration> = (0..9)
        .map(|_| {
            let start = Instant::now();
            assert!(syncreel::passcode::verify(&phc, PASSCODE));
            start.elapsed()
        })
        .collect();
    times.sort();
    let median = times[times.len() / 2];
    println!(
        "passcode verify: median {median:?}, min {:?}, max {:?} over {} runs",
        times[0],
        times[times.len() - 1],
        times.len()
    );
    assert!(median < Duration::from_secs(1), "{median:?}");
}
