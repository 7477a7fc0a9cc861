//! HTTPS and WSS served by the server itself, with a certificate made by
//! the test (rcgen), end to end: REST, the WebSocket, WebRTC signalling
//! over it, and a renewed certificate picked up on SIGHUP.

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::Message;

use common::{TestServer, OPERATOR};

/// A self-signed certificate for localhost and 127.0.0.1, written as PEM.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
    der: CertificateDer<'static>,
}

fn make_pair(dir: &Path, name: &str) -> Pair {
    std::fs::create_dir_all(dir).unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.key_pair.serialize_pem()).unwrap();
    Pair {
        cert,
        key,
        der: made.cert.der().clone(),
    }
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("syncreel-tls-{name}-{}", std::process::id()))
}

/// A TLS connection trusting only `root`; returns it with the
/// certificate the server presented.
async fn connect(
    addr: std::net::SocketAddr,
    root: &CertificateDer<'static>,
) -> (
    tokio_rustls::client::TlsStream<TcpStream>,
    CertificateDer<'static>,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root.clone()).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect("the handshake verifies against the test's certificate");
    let presented = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
    (tls, presented)
}

async fn https(
    addr: std::net::SocketAddr,
    root: &CertificateDer<'static>,
    method: &str,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> (u16, hyper::HeaderMap, Value) {
    let (tls, _) = connect(addr, root).await;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut request = hyper::Request::builder()
        .method(method)
        .uri(path)
        .header("host", format!("localhost:{}", addr.port()))
        .header("content-type", "application/json");
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let response = sender
        .send_request(request.body(Full::new(Bytes::from(payload))).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        headers,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn https_and_wss_carry_the_api_the_websocket_and_webrtc_signalling() {
    let dir = temp("e2e");
    let pair = make_pair(&dir, "server");
    let media = dir.join("media");
    let spec = syncreel::media::demo_clip::DemoClipSpec {
        width: 320,
        height: 180,
        frames: 48,
        ..Default::default()
    };
    syncreel::media::demo_clip::ensure(&media.join("shot.mov"), &spec).unwrap();
    let (cert, key) = (pair.cert.clone(), pair.key.clone());
    let server = TestServer::start_with(move |c| {
        c.server.tls_cert = cert;
        c.server.tls_key = key;
        c.media.root = media;
    })
    .await;

    let (status, headers, health) =
        https(server.addr, &pair.der, "GET", "/healthz", None, None).await;
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
    assert_eq!(headers["strict-transport-security"], "max-age=31536000");
    let (status, _, created) = https(
        server.addr,
        &pair.der,
        "POST",
        "/api/sessions",
        Some(OPERATOR),
        Some(json!({"title": "Over TLS", "media": "shot.mov"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let host_link = created["links"][0]["url"].as_str().unwrap();
    assert!(
        host_link.starts_with(&format!("https://localhost:{}/s/", server.addr.port())),
        "{host_link}"
    );
    let token = created["links"][0]["token"].as_str().unwrap();

    // WSS: join, and run WebRTC signalling over it.
    let (tls, _) = connect(server.addr, &pair.der).await;
    let url = format!("wss://localhost:{}/ws", server.addr.port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    ws.send(Message::text(
        json!({"type": "hello", "protocol": 1, "token": token, "name": "Dana"}).to_string(),
    ))
    .await
    .unwrap();
    assert_eq!(next_of(&mut ws, "welcome").await["role"], "host");
    ws.send(Message::text(json!({"type": "rtcStart"}).to_string()))
        .await
        .unwrap();
    let offer = next_of(&mut ws, "rtcOffer").await;
    assert!(
        offer["sdp"].as_str().unwrap().contains("m=video"),
        "{offer}"
    );

    // Plain HTTP to the TLS port gets no answer it could read.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(common::WAIT, plain.read_to_end(&mut answer)).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

type Wss = tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<TcpStream>>;

async fn next_of(ws: &mut Wss, kind: &str) -> Value {
    loop {
        let frame = tokio::time::timeout(common::WAIT, ws.next())
            .await
            .expect("a message within the wait")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let msg: Value = serde_json::from_str(&text).unwrap();
            if msg["type"] == kind {
                return msg;
            }
        }
    }
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_sighup_and_a_bad_one_is_not() {
    let dir = temp("reload");
    let first = make_pair(&dir, "first");
    let second = make_pair(&dir, "second");
    let (cert, key) = (dir.join("live.crt"), dir.join("live.key"));
    std::fs::copy(&first.cert, &cert).unwrap();
    std::fs::copy(&first.key, &key).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_syncreel"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(dir.join("data"))
        .env("SYNCREEL_SERVER__TLS_CERT", &cert)
        .env("SYNCREEL_SERVER__TLS_KEY", &key)
        .env("RUST_LOG", "syncreel=warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr: std::net::SocketAddr = line
        .trim()
        .strip_prefix("listening on https://")
        .unwrap_or_else(|| panic!("{line:?}"))
        .parse()
        .unwrap();
    let hangup = |pid: u32| {
        assert!(Command::new("kill")
            .args(["-HUP", &pid.to_string()])
            .status()
            .unwrap()
            .success());
    };
    assert_eq!(connect(addr, &first.der).await.1, first.der);

    std::fs::copy(&second.cert, &cert).unwrap();
    std::fs::copy(&second.key, &key).unwrap();
    hangup(child.id());
    // The reload happens on the server's own time: bounded polling.
    let deadline = std::time::Instant::now() + common::WAIT;
    loop {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(second.der.clone()).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        let tcp = TcpStream::connect(addr).await.unwrap();
        let handshake = TlsConnector::from(Arc::new(config))
            .connect(ServerName::try_from("localhost").unwrap(), tcp)
            .await;
        if handshake.is_ok() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the renewed certificate was never served"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A broken pair is refused; the server keeps the one it has.
    std::fs::write(&cert, "not a certificate").unwrap();
    hangup(child.id());
    for _ in 0..5 {
        assert_eq!(connect(addr, &second.der).await.1, second.der);
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the server is still running"
    );
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_certificate_with_someone_elses_key_is_refused_at_start_by_name() {
    let dir = temp("mismatch");
    let one = make_pair(&dir, "one");
    let other = make_pair(&dir, "other");
    let mut config = syncreel::config::Config::default();
    config.server.bind = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = dir.join("data");
    config.server.tls_cert = one.cert.clone();
    config.server.tls_key = other.key.clone();
    let err = syncreel::server::Server::bind(config)
        .await
        .err()
        .expect("a mismatched key is refused");
    let text = err.to_string();
    assert!(
        text.contains("tls_key") && text.contains("other.key"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
