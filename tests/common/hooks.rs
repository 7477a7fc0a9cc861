//! A webhook receiver for tests: a bare HTTP/1.1 (or HTTPS) server on
//! loopback that reports every request it gets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

/// A request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST /path?query HTTP/1.1`
    pub request_line: String,
    pub headers: HashMap<String, String>,
    pub body: String,
}

/// A bare HTTP/1.1 receiver on `127.0.0.1:0` that fails the first
/// `fail_first` attempts of each delivery with a 500, then answers 200.
/// Reports every request.
pub async fn receiver(fail_first: usize) -> (String, mpsc::UnboundedReceiver<Received>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks/syncreel", listener.local_addr().unwrap());
    (url, serve(listener, None, fail_first))
}

/// Answers every connection to `listener`, over TLS when `tls` is given.
pub fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    fail_first: usize,
) -> mpsc::UnboundedReceiver<Received> {
    let (tx, rx) = mpsc::unbounded_channel();
    let attempts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let tx = tx.clone();
            let attempts = attempts.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    // A failed handshake is the client's to report.
                    Some(tls) => {
                        if let Ok(socket) = tls.accept(socket).await {
                            answer(socket, tx, attempts, fail_first).await;
                        }
                    }
                    None => answer(socket, tx, attempts, fail_first).await,
                }
            });
        }
    });
    rx
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut socket: S,
    tx: mpsc::UnboundedSender<Received>,
    attempts: Arc<Mutex<HashMap<String, usize>>>,
    fail_first: usize,
) {
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
    let request_line = head.lines().next().unwrap_or_default().to_string();
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
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await;
    let _ = socket.shutdown().await;
    let _ = tx.send(Received {
        request_line,
        headers,
        body,
    });
}

pub async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(super::WAIT, rx.recv())
        .await
        .expect("a webhook request within the wait")
        .expect("receiver running")
}
