//! Connections that hold a slot and do nothing: a socket that never says
//! hello, and a peer that went silent while its socket stayed open (a
//! driver on a dead laptop must not keep the seat forever).

mod common;

use common::{Client, TestServer};
use serde_json::json;

#[tokio::test]
async fn a_socket_that_never_says_hello_is_closed_and_frees_its_slot() {
    let server = TestServer::start_with(|c| c.limits.hello_timeout_ms = 300).await;
    let s = server.create_session().await;
    // A participant that says hello in time stays past the deadline.
    let mut host = Client::join(server.addr, &s.host, "Dana").await;
    let mut idle = Client::connect(server.addr).await;
    let bye = idle.expect("goodbye").await;
    assert_eq!(bye["code"], "hello_timeout", "{bye}");
    idle.expect_closed().await;
    // The idle socket opened after the host's, so the host's deadline has
    // passed too: it is still served, and it is the only connection left.
    host.ping(1).await;
    server.wait_for_connections(1).await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_driver_gone_silent_is_dropped_and_the_seat_returns_to_a_host() {
    let server = TestServer::start_with(|c| {
        c.limits.ping_interval_ms = 100;
        c.limits.dead_peer_timeout_ms = 500;
        c.session.driver_grace_ms = 200;
    })
    .await;
    let s = server.create_session().await;
    let driver = Client::join(server.addr, &s.host, "Dana").await;
    let driver_id = driver.id();
    assert_eq!(driver.welcome["state"]["control"]["driver"], driver_id);
    let mut other = Client::join(server.addr, &s.host, "Hana").await;
    let other_id = other.id();
    // The driver's socket stays open but nobody reads it: no pong, nothing.
    // Hana's client reads (and so answers pings) all along.
    let control = other
        .expect_where(|m| m["type"] == "control" && m["driver"] == other_id)
        .await;
    assert_eq!(control["driver"], other_id);
    other.send(json!({"type": "seek", "frame": 12})).await;
    assert_eq!(other.expect("transport").await["by"], other_id);
    drop(driver);
    server.shutdown().await;
}

mod sockets {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpSocket, TcpStream};

    /// Reads until the server closes the socket; what it said before.
    async fn until_closed(stream: &mut TcpStream) -> String {
        let mut got = Vec::new();
        let read = tokio::time::timeout(common::WAIT, stream.read_to_end(&mut got)).await;
        assert!(read.is_ok(), "the server kept the socket open");
        String::from_utf8_lossy(&got).into_owned()
    }

    async fn from(addr: std::net::SocketAddr, local: &str) -> TcpStream {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
        socket.connect(addr).await.unwrap()
    }

    #[tokio::test]
    async fn half_sent_headers_and_idle_sockets_are_closed() {
        let server = TestServer::start_with(|c| c.limits.header_read_timeout_ms = 300).await;
        // Headers that never finish.
        let mut half = TcpStream::connect(server.addr).await.unwrap();
        half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        // A socket that never sends anything.
        let mut silent = TcpStream::connect(server.addr).await.unwrap();
        // A keep-alive connection left idle after its request.
        let mut kept = TcpStream::connect(server.addr).await.unwrap();
        kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .unwrap();
        let answered = until_closed(&mut kept).await;
        assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");
        until_closed(&mut half).await;
        until_closed(&mut silent).await;
        assert_eq!(
            server.metric("syncreel_sockets").await,
            1,
            "only /metrics' own"
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn a_body_trickled_too_slowly_is_cut_off() {
        let server = TestServer::start_with(|c| c.limits.body_timeout_ms = 300).await;
        let mut slow = TcpStream::connect(server.addr).await.unwrap();
        slow.write_all(
            b"POST /api/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"title\"",
        )
        .await
        .unwrap();
        let answered = until_closed(&mut slow).await;
        assert!(
            answered.is_empty() || answered.starts_with("HTTP/1.1 4"),
            "{answered}"
        );
        server.shutdown().await;
    }

    #[tokio::test]
    async fn one_address_over_its_cap_gets_a_typed_429_and_others_are_served() {
        let server = TestServer::start_with(|c| c.limits.max_connections_per_ip = 3).await;
        let mut held = Vec::new();
        for _ in 0..3 {
            held.push(from(server.addr, "127.0.0.2").await);
        }
        let mut over = from(server.addr, "127.0.0.2").await;
        let answer = until_closed(&mut over).await;
        assert!(answer.starts_with("HTTP/1.1 429"), "{answer}");
        assert!(answer.contains("\"too_many_connections\""), "{answer}");
        // Another address is not held to this one's count.
        let (status, _) = server.request("GET", "/healthz", None, None).await;
        assert_eq!(status, 200);
        assert_eq!(server.metric("syncreel_sockets_refused_total").await, 1);
        // A slot freed is a slot to use.
        drop(held.pop());
        let deadline = tokio::time::Instant::now() + common::WAIT;
        loop {
            let mut again = from(server.addr, "127.0.0.2").await;
            again
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                .await
                .unwrap();
            let answer = until_closed(&mut again).await;
            if answer.starts_with("HTTP/1.1 200") {
                break;
            }
            // The server notices the dropped socket when it reads its end.
            assert!(tokio::time::Instant::now() < deadline, "{answer}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        server.shutdown().await;
    }

    #[tokio::test]
    async fn the_server_raises_its_open_file_limit_to_the_hard_limit() {
        let server = TestServer::start().await;
        let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
        assert_eq!(soft, hard);
        server.shutdown().await;
    }
}
