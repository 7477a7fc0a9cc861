//! The REST API, health, metrics, static files and shutdown, over real HTTP.

mod common;

use common::{Client, TestServer};
use serde_json::json;

#[tokio::test]
async fn creating_a_session_validates_its_input_with_coded_errors() {
    let server = TestServer::start().await;
    for (body, code) in [
        (
            json!({"title": "x", "fps": "23", "durationFrames": 10}),
            "bad_fps",
        ),
        (
            json!({"title": "x", "fps": "25", "durationFrames": 0}),
            "bad_request",
        ),
        (
            json!({"title": "", "fps": "25", "durationFrames": 10}),
            "bad_request",
        ),
        (
            json!({"title": "x", "fps": "25", "durationFrames": 10, "startTimecode": "01:00:00:25"}),
            "bad_timecode",
        ),
        (
            json!({"title": "x", "fps": "25", "durationFrames": 10, "dropFrame": true}),
            "bad_timecode",
        ),
        (
            json!({"title": "x", "fps": "25", "durationFrames": 10, "colour": "red"}),
            "bad_request",
        ),
        (json!({"fps": "25"}), "bad_request"),
    ] {
        let (status, reply) = server
            .request(
                "POST",
                "/api/sessions",
                Some(common::OPERATOR),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(reply["error"]["code"], code, "{body} → {reply}");
        assert!(reply["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    let (status, reply) = server
        .request(
            "POST",
            "/api/sessions",
            Some(common::OPERATOR),
            Some(json!({"title": "Spot", "fps": "29.97", "durationFrames": 900, "startTimecode": "00:59:59;28"})),
        )
        .await;
    assert_eq!(status, 201);
    assert_eq!(reply["session"]["dropFrame"], true);
    assert_eq!(reply["session"]["fps"], "30000/1001");
    assert_eq!(reply["session"]["startTimecode"], "00:59:59;28");
    let links = reply["links"].as_array().unwrap();
    assert_eq!(links.len(), 3);
    for link in links {
        let url = link["url"].as_str().unwrap();
        assert!(url.starts_with(&server.url("/s/")), "{url}");
        assert!(url.ends_with(&format!("#token={}", link["token"].as_str().unwrap())));
    }
    server.shutdown().await;
}

#[tokio::test]
async fn session_management_needs_a_host_link_of_that_session() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let other = server.create_session().await;
    let path = format!("/api/sessions/{}", s.id);

    for (bearer, status, code) in [
        (None, 401, "unauthorized"),
        (Some("garbage"), 401, "invalid_token"),
        (Some(s.viewer.as_str()), 403, "forbidden"),
        (Some(s.reviewer.as_str()), 403, "forbidden"),
        (Some(other.host.as_str()), 403, "forbidden"),
    ] {
        let (got, reply) = server.request("GET", &path, bearer, None).await;
        assert_eq!(
            (got, reply["error"]["code"].as_str()),
            (status, Some(code)),
            "{bearer:?}"
        );
        let (got, _) = server
            .request(
                "POST",
                &format!("{path}/links"),
                bearer,
                Some(json!({"role": "viewer"})),
            )
            .await;
        assert_eq!(got, status);
    }

    let (status, reply) = server.request("GET", &path, Some(&s.host), None).await;
    assert_eq!(status, 200);
    assert_eq!(reply["session"]["id"], s.id.as_str());
    assert_eq!(reply["state"]["version"], 1);
    let links = reply["links"].as_array().unwrap();
    assert_eq!(links.len(), 3);
    assert!(
        links.iter().all(|l| l.get("token").is_none()),
        "tokens are never shown again"
    );

    // The link is checked before the session is looked up, so whether a
    // session exists is not told to a link of another.
    let (status, _) = server
        .request("GET", "/api/sessions/nope", Some(&s.host), None)
        .await;
    assert_eq!(status, 403);
    let (status, reply) = server
        .request(
            "DELETE",
            &format!("{path}/links/unknown"),
            Some(&s.host),
            None,
        )
        .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, reply) = server
        .request(
            "POST",
            &format!("{path}/links"),
            Some(&s.host),
            Some(json!({"role": "overlord"})),
        )
        .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    server.shutdown().await;
}

#[tokio::test]
async fn an_admin_token_guards_session_creation_when_configured() {
    let server = TestServer::start_with(|c| c.server.admin_token = "let-me-in".into()).await;
    let body = json!({"title": "x", "fps": "24", "durationFrames": 10});
    let (status, reply) = server
        .request("POST", "/api/sessions", None, Some(body.clone()))
        .await;
    assert_eq!(
        (status, reply["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let (status, _) = server
        .request("POST", "/api/sessions", Some("let-me-in"), Some(body))
        .await;
    assert_eq!(status, 201);
    server.shutdown().await;
}

#[tokio::test]
async fn with_no_token_configured_the_server_makes_one_and_nothing_but_a_link_works_without_it() {
    let server = TestServer::start_with(|c| c.server.admin_token = String::new()).await;
    let body = json!({"title": "x", "fps": "24", "durationFrames": 10});
    for (method, path, body) in [
        ("POST", "/api/sessions", Some(body.clone())),
        ("GET", "/api/media", None),
        ("GET", "/api/webhooks/deliveries", None),
    ] {
        for bearer in [None, Some("guess"), Some(common::OPERATOR)] {
            let (status, reply) = server.request(method, path, bearer, body.clone()).await;
            assert_eq!(
                (status, reply["error"]["code"].as_str()),
                (401, Some("unauthorized")),
                "{method} {path} with {bearer:?}"
            );
        }
    }
    // The token it made is in its data dir, for its owner's eyes only.
    let file = server.data_dir.join(syncreel::operator::TOKEN_FILE);
    let token = std::fs::read_to_string(&file).unwrap().trim().to_string();
    assert!(token.len() >= 43, "256 bits: {token}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "{mode:o}");
    let (status, created) = server
        .request("POST", "/api/sessions", Some(&token), Some(body))
        .await;
    assert_eq!(status, 201, "{created}");
    for path in ["/api/media", "/api/webhooks/deliveries"] {
        assert_eq!(
            server.request("GET", path, Some(&token), None).await.0,
            200,
            "{path}"
        );
    }
    // A join link still needs nothing else.
    let s = common::CreatedSession::from_body(created);
    Client::join(server.addr, &s.viewer, "Vic").await;
    server.shutdown().await;
}

#[tokio::test]
async fn health_and_metrics_report_live_state() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    host.send(json!({"type": "seek", "frame": 3})).await;
    viewer.expect("transport").await;
    host.expect("transport").await;

    let (status, health) = server.request("GET", "/healthz", None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            health["status"].as_str(),
            health["sessions"].as_u64(),
            health["connections"].as_i64()
        ),
        (Some("ok"), Some(1), Some(2))
    );

    let (status, text) = server.request("GET", "/metrics", None, None).await;
    assert_eq!(status, 200);
    let text = text.as_str().unwrap().to_string();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .unwrap_or_else(|| panic!("{name} missing from\n{text}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("syncreel_connections"), 2.0);
    assert_eq!(value("syncreel_sessions"), 1.0);
    assert!(value("syncreel_messages_in_total") >= 3.0);
    assert!(value("syncreel_messages_out_total") >= 4.0);
    // The seek was written to two sockets, so two fan-out observations.
    assert!(value("syncreel_fanout_latency_seconds_count") >= 2.0);
    server.shutdown().await;
}

#[tokio::test]
async fn the_web_client_is_served_and_nothing_else_is() {
    let server = TestServer::start().await;
    for path in ["/", "/s/anything"] {
        let (status, body) = server.request("GET", path, None, None).await;
        assert_eq!(status, 200, "{path}");
        assert!(body.as_str().unwrap().contains("/app/main.js"), "{path}");
    }
    let (status, body) = server.request("GET", "/app/transport.js", None, None).await;
    assert_eq!(status, 200);
    assert!(body.as_str().unwrap().contains("export"));
    for path in [
        "/app/../Cargo.toml",
        "/app/%2e%2e/Cargo.toml",
        "/app//etc/passwd",
        "/app/missing.js",
        "/app/package.json",
        "/app/node_modules/playwright-core/package.json",
        "/app/tests/browser.test.mjs",
        "/app/bench/video-bench.mjs",
        "/app/.hidden.js",
    ] {
        let (status, body) = server.request("GET", path, None, None).await;
        assert_eq!(status, 404, "{path}");
        assert_eq!(body["error"]["code"], "not_found", "{path}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_says_goodbye_to_every_connection() {
    let server = TestServer::start().await;
    let s = server.create_session().await;
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut viewer = Client::join(server.addr, &s.viewer, "Vic").await;
    server.shutdown().await;
    for client in [&mut host, &mut viewer] {
        let bye = client.expect("goodbye").await;
        assert_eq!(bye["code"], "shutting_down");
        client.expect_closed().await;
    }
}
