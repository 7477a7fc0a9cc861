//! Webhooks as a receiver sees them: signed JSON for each event, retried
//! with backoff after failures, every attempt in the delivery log.

mod common;
#[path = "support/tus.rs"]
mod tus;

use std::ffi::OsString;
use std::sync::Arc;

use common::hooks::{next, receiver, serve, Received};
use common::node::Node;
use common::{Client, TestServer};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::rustls;
use tokio_rustls::TlsAcceptor;

/// The signing key the tests configure: long enough for the server's
/// minimum.
const SECRET: &str = "s3cret-s3cret-s3cret";

#[tokio::test]
async fn events_arrive_signed_and_are_retried_with_backoff_and_logged() {
    let (url, mut requests) = receiver(2).await;
    let hook_url = url.clone();
    let server = TestServer::start_with(move |c| {
        c.webhooks.urls = vec![hook_url];
        c.webhooks.secret = SECRET.into();
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
            syncreel::webhooks::sign(SECRET.as_bytes(), got.body.as_bytes())
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
            .request(
                "GET",
                "/api/webhooks/deliveries",
                Some(common::OPERATOR),
                None,
            )
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
        c.webhooks.secret = SECRET.into();
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

/// The delivery log's attempts to `url`, once there are at least `n`
/// (polled within the wait: the log is written just after each attempt).
async fn attempts_to(server: &TestServer, url: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let (status, body) = server
            .request(
                "GET",
                "/api/webhooks/deliveries",
                Some(common::OPERATOR),
                None,
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let log: Vec<Value> = body["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["url"] == url)
            .cloned()
            .collect();
        if log.len() >= n {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {n} attempts to {url} logged: {log:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Checks that `got` is a `session.started` signed with [`SECRET`].
fn assert_signed_start(got: &Received, session_id: &str) {
    assert_eq!(got.headers["x-syncreel-event"], "session.started");
    assert_eq!(
        got.headers["x-syncreel-signature"],
        format!(
            "sha256={}",
            syncreel::webhooks::sign(SECRET.as_bytes(), got.body.as_bytes())
        )
    );
    let body: Value = serde_json::from_str(&got.body).unwrap();
    assert_eq!(body["sessionId"], session_id);
}

#[tokio::test]
async fn a_url_without_a_port_is_delivered_to_port_80_by_name() {
    // Port 80 needs root and may be taken; the URL parsing itself is also
    // covered by the unit tests in src/webhooks.rs.
    let listener = match TcpListener::bind("127.0.0.1:80").await {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("skipped: cannot listen on 127.0.0.1:80 ({err})");
            return;
        }
    };
    let mut requests = serve(listener, None, 0);
    // A name, not an address: it has to be resolved, and the port implied.
    let url = "http://localhost/hooks/syncreel?team=7&kind=review";
    let server = TestServer::start_with(move |c| {
        c.webhooks.urls = vec![url.into()];
        c.webhooks.secret = SECRET.into();
        c.webhooks.max_attempts = 1;
    })
    .await;
    let s = server.create_session().await;
    let got = next(&mut requests).await;
    assert_eq!(
        got.request_line,
        "POST /hooks/syncreel?team=7&kind=review HTTP/1.1"
    );
    assert_eq!(got.headers["host"], "localhost");
    assert_signed_start(&got, &s.id);
    let log = attempts_to(&server, url, 1).await;
    assert_eq!(log[0]["status"], 200, "{log:?}");
    server.shutdown().await;
}

/// A CA, a certificate it issued for `localhost` and 127.0.0.1, and a TLS
/// acceptor serving that certificate; the CA as PEM.
fn tls_receiver_identity() -> (TlsAcceptor, String) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair, KeyUsagePurpose};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "SyncReel test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone(), ca.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
        )
        .unwrap();
    (TlsAcceptor::from(Arc::new(config)), ca.pem())
}

#[tokio::test]
async fn https_receivers_are_verified_against_the_configured_ca() {
    let (acceptor, ca_pem) = tls_receiver_identity();
    let dir = std::env::temp_dir().join(format!("syncreel-webhook-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, &ca_pem).unwrap();

    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let mut requests = serve(listener, Some(acceptor), 0);
    let url = format!("https://localhost:{port}/hooks/secure?v=1");

    // Trusting the CA: delivered, signed, to the path and Host of the URL.
    let (hook_url, trusted) = (url.clone(), ca_file.clone());
    let server = TestServer::start_with(move |c| {
        c.webhooks.urls = vec![hook_url];
        c.webhooks.secret = SECRET.into();
        c.webhooks.ca_file = trusted;
        c.webhooks.max_attempts = 1;
    })
    .await;
    let s = server.create_session().await;
    let got = next(&mut requests).await;
    assert_eq!(got.request_line, "POST /hooks/secure?v=1 HTTP/1.1");
    assert_eq!(got.headers["host"], format!("localhost:{port}"));
    assert_signed_start(&got, &s.id);
    let log = attempts_to(&server, &url, 1).await;
    assert_eq!(log[0]["status"], 200, "{log:?}");
    server.shutdown().await;

    // Without it the receiver's certificate is not trusted: the attempt
    // fails in the handshake and is logged as such, nothing arrives.
    let hook_url = url.clone();
    let server = TestServer::start_with(move |c| {
        c.webhooks.urls = vec![hook_url];
        c.webhooks.secret = SECRET.into();
        c.webhooks.max_attempts = 1;
    })
    .await;
    server.create_session().await;
    let log = attempts_to(&server, &url, 1).await;
    assert!(log[0]["status"].is_null(), "{log:?}");
    let error = log[0]["error"].as_str().unwrap();
    assert!(
        error.contains("TLS") && error.to_lowercase().contains("certificate"),
        "{error}"
    );
    assert!(
        requests.try_recv().is_err(),
        "an untrusted receiver got a request"
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[tokio::test]
async fn webhook_config_that_cannot_deliver_is_refused_naming_the_key() {
    use syncreel::config::Config;
    let good_secret = ("SYNCREEL_WEBHOOKS__SECRET", SECRET);
    let refused = |pairs: &[(&str, &str)]| match Config::load(None, env(pairs)) {
        Ok(_) => panic!("accepted {pairs:?}"),
        Err(err) => err.to_string(),
    };

    // The same settings with a long enough secret and a usable URL pass.
    let ok = Config::load(
        None,
        env(&[
            (
                "SYNCREEL_WEBHOOKS__URLS",
                r#"["https://hooks.example.com/in"]"#,
            ),
            good_secret,
        ]),
    )
    .unwrap();
    assert_eq!(ok.webhooks.urls, ["https://hooks.example.com/in"]);

    for secret in ["", "short"] {
        let err = refused(&[
            (
                "SYNCREEL_WEBHOOKS__URLS",
                r#"["http://hooks.example.com/in"]"#,
            ),
            ("SYNCREEL_WEBHOOKS__SECRET", secret),
        ]);
        assert!(
            err.contains("webhooks.secret") && err.contains("16 bytes"),
            "{err}"
        );
    }
    let err = refused(&[
        (
            "SYNCREEL_WEBHOOKS__URLS",
            r#"["ftp://hooks.example.com/in"]"#,
        ),
        good_secret,
    ]);
    assert!(
        err.contains("webhooks.urls")
            && err.contains("ftp://hooks.example.com/in")
            && err.contains("http:// or https://"),
        "{err}"
    );
    for no_host in ["http:///in", "http://:8080/in"] {
        let urls = format!(r#"["{no_host}"]"#);
        let err = refused(&[("SYNCREEL_WEBHOOKS__URLS", urls.as_str()), good_secret]);
        assert!(
            err.contains("webhooks.urls") && err.contains(no_host),
            "{err}"
        );
    }
    let err = refused(&[
        (
            "SYNCREEL_WEBHOOKS__URLS",
            r#"["https://hooks.example.com/in"]"#,
        ),
        good_secret,
        ("SYNCREEL_WEBHOOKS__CA_FILE", "/nonexistent/ca.pem"),
    ]);
    assert!(
        err.contains("webhooks.ca_file") && err.contains("/nonexistent/ca.pem"),
        "{err}"
    );

    // A config built in code is held to the same rules when it is served.
    let mut config = Config::default();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.webhooks.urls = vec!["http://hooks.example.com/in".into()];
    match syncreel::server::Server::bind(config).await {
        Ok(_) => panic!("served webhooks without a secret"),
        Err(err) => assert!(err.to_string().contains("webhooks.secret"), "{err}"),
    }
}

#[test]
fn serve_exits_with_the_webhook_key_it_refuses() {
    let data = std::env::temp_dir().join(format!("syncreel-webhook-cli-{}", std::process::id()));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_syncreel"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .env(
            "SYNCREEL_WEBHOOKS__URLS",
            r#"["http://hooks.example.com/in"]"#,
        )
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("syncreel starts");
    let deadline = std::time::Instant::now() + common::WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("syncreel serve kept running with an empty webhook secret");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!status.success());
    assert!(stderr.contains("webhooks.secret"), "{stderr}");
    let _ = std::fs::remove_dir_all(&data);
}

/// The delivery log's attempts to `url` as the server at `addr` has it,
/// once there are at least `n` (polled within the wait).
async fn logged(addr: std::net::SocketAddr, url: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let (status, body) = common::request(
            addr,
            "GET",
            "/api/webhooks/deliveries",
            Some(common::OPERATOR),
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let log: Vec<Value> = body["deliveries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["url"] == url)
            .cloned()
            .collect();
        if log.len() >= n {
            return log;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "fewer than {n} attempts to {url} logged: {log:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_delivery_pending_when_the_server_is_killed_is_sent_after_the_restart_under_the_same_id()
{
    // The first attempt fails; the retry is due 1.5 s later, after the
    // server has been killed.
    let (url, mut requests) = receiver(1).await;
    let dir = std::env::temp_dir().join(format!("syncreel-outbox-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("syncreel.toml"),
        format!(
            "[server]\nadmin_token = \"{}\"\n[webhooks]\nurls = [\"{url}\"]\nsecret = \"{SECRET}\"\nbackoff_ms = 1500\npoll_ms = 50\n",
            common::OPERATOR
        ),
    )
    .unwrap();
    let args = [
        OsString::from("--config"),
        dir.join("syncreel.toml").into(),
        "--data-dir".into(),
        dir.join("data").into(),
    ];
    let mut node = Node::serve(&args, &[]);
    let (status, created) = common::request(
        node.addr,
        "POST",
        "/api/sessions",
        Some(common::OPERATOR),
        Some(json!({"title": "Outbox", "fps": "24", "durationFrames": 240})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let first = next(&mut requests).await;
    assert_eq!(first.headers["x-syncreel-event"], "session.started");
    logged(node.addr, &url, 1).await;
    node.kill();

    let node = Node::serve(&args, &[]);
    let retried = next(&mut requests).await;
    assert_eq!(
        retried.headers["x-syncreel-delivery"], first.headers["x-syncreel-delivery"],
        "the same delivery, resumed by the restarted server"
    );
    assert_eq!(retried.body, first.body);
    let log = logged(node.addr, &url, 2).await;
    let summary: Vec<(&Value, &Value)> =
        log.iter().map(|d| (&d["attempt"], &d["status"])).collect();
    assert_eq!(
        summary,
        [(&json!(1), &json!(500)), (&json!(2), &json!(200))]
    );
    drop(node);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn an_upload_announces_version_uploaded_then_version_ready() {
    let (url, mut rx) = receiver(0).await;
    let media = std::env::temp_dir().join(format!("syncreel-hook-upload-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&media);
    std::fs::create_dir_all(&media).unwrap();
    let root = media.clone();
    let server = TestServer::start_with(move |c| {
        c.webhooks.urls = vec![url];
        c.webhooks.secret = SECRET.into();
        c.media.root = root.join("media");
        c.uploads.reserve_free_bytes = 0;
    })
    .await;
    let file = tus::padded_clip(&media, "take.mov", 1 << 20, 7);
    let client = tus::Tus::new(server.addr, Some(common::OPERATOR));
    let upload = client
        .created(1 << 20, &[("filename", "take.mov"), ("item", "Shot 070")])
        .await;
    client.send_file(&upload, &file, 0, 1 << 19).await;
    let uploaded = next_event(&mut rx, "version.uploaded").await;
    assert_eq!(uploaded["data"]["item"], "Shot 070");
    assert_eq!(
        uploaded["data"]["checksum"],
        tus::sha256_file(&file).as_str()
    );
    let ready = next_event(&mut rx, "version.ready").await;
    assert_eq!(ready["data"]["version"]["item"], "Shot 070");
    assert_eq!(ready["data"]["version"]["number"], 1);
    assert_eq!(ready["data"]["container"], "mov");
    assert_eq!(ready["data"]["durationFrames"], 24);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&media);
}
