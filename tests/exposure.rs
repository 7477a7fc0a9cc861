//! What a public address exposes: which hosts and origins are answered,
//! and the headers every answer carries.

mod common;

use common::{request_with, TestServer};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

fn code_of(body: &[u8]) -> String {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_host_the_server_does_not_answer_to_is_refused_and_mints_no_link() {
    let server =
        TestServer::start_with(|c| c.server.allowed_hosts = vec!["review.example".into()]).await;
    let s = server.create_session().await;
    let mint = json!({"role": "viewer"}).to_string();
    let path = format!("/api/sessions/{}/links", s.id);
    for host in ["evil.example", "review.example.evil", "evil.example:80"] {
        let (status, _, body) = request_with(
            server.addr,
            "GET",
            "/healthz",
            None,
            &[("host", host)],
            String::new(),
        )
        .await;
        assert_eq!(
            (status, code_of(&body).as_str()),
            (400, "bad_host"),
            "{host}"
        );
        let (status, _, body) = request_with(
            server.addr,
            "POST",
            &path,
            Some(&s.host),
            &[("host", host)],
            mint.clone(),
        )
        .await;
        assert_eq!(
            (status, code_of(&body).as_str()),
            (400, "bad_host"),
            "{host}"
        );
    }
    // A listed name, an IP literal and localhost are answered; the link
    // is built on the name asked for.
    for host in ["review.example", "127.0.0.1:9", "localhost:8080"] {
        let (status, _, body) = request_with(
            server.addr,
            "POST",
            &path,
            Some(&s.host),
            &[("host", host)],
            mint.clone(),
        )
        .await;
        assert_eq!(status, 201, "{host}: {}", String::from_utf8_lossy(&body));
        let link: Value = serde_json::from_slice(&body).unwrap();
        assert!(
            link["url"]
                .as_str()
                .unwrap()
                .starts_with(&format!("http://{host}/s/")),
            "{link}"
        );
    }
    server.shutdown().await;
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_open_a_websocket() {
    let server = TestServer::start().await;
    let url = format!("ws://{}/ws", server.addr);
    let with_origin = |origin: &str| {
        let mut request = url.as_str().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        request
    };
    let refused = tokio_tungstenite::connect_async(with_origin("http://evil.example")).await;
    match refused {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
            let body = response.body().clone().unwrap_or_default();
            assert_eq!(code_of(&body), "bad_origin");
        }
        other => panic!("a foreign origin was let in: {:?}", other.map(|_| ())),
    }
    // The server's own origin, and a client with none (not a browser).
    let own = format!("http://{}", server.addr);
    assert!(tokio_tungstenite::connect_async(with_origin(&own))
        .await
        .is_ok());
    assert!(tokio_tungstenite::connect_async(url.as_str()).await.is_ok());
    server.shutdown().await;
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let server = TestServer::start().await;
    for path in ["/", "/app/main.js", "/healthz", "/api/sessions/nope"] {
        let (_, headers, _) =
            request_with(server.addr, "GET", path, None, &[], String::new()).await;
        let header = |name: &str| {
            headers
                .get(name)
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_else(|| panic!("{path} has no {name}"))
        };
        let csp = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "frame-ancestors 'none'",
            "object-src 'none'",
            &format!("connect-src 'self' ws://{0} wss://{0}", server.addr),
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(header("x-content-type-options"), "nosniff");
        assert_eq!(header("referrer-policy"), "no-referrer");
        assert_eq!(header("x-frame-options"), "DENY");
    }
    server.shutdown().await;
}
