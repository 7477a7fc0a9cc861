//! How sockets are taken and served: the accept loop under the router.
//!
//! We run our own loop rather than `axum::serve` for what a public
//! address needs and `axum::serve` does not offer:
//! - a header-read timeout, which also closes keep-alive connections left
//!   idle, so half-open requests and idle sockets cannot pile up;
//! - a cap on connections per client address, answered with a typed 429;
//! - a count of every open socket (`/metrics`), and an accept loop that
//!   backs off instead of spinning when the process is out of descriptors;
//! - the client's address on every request (`ConnectInfo`), for limits
//!   that are per client.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::metrics::Metrics;

/// What the loop enforces; from `[limits]`.
#[derive(Debug, Clone, Copy)]
pub struct ListenLimits {
    pub header_read_timeout: Duration,
    pub max_connections_per_ip: usize,
}

/// Whether sockets speak TLS first (HTTPS and WSS).
pub type Tls = Option<tokio_rustls::TlsAcceptor>;

/// Open sockets per client address.
#[derive(Debug, Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

/// One socket counted against its address for as long as it lives.
struct Slot {
    per_ip: Arc<PerIp>,
    ip: IpAddr,
    metrics: Arc<Metrics>,
}

impl PerIp {
    fn take(self: &Arc<Self>, ip: IpAddr, cap: usize, metrics: &Arc<Metrics>) -> Option<Slot> {
        let mut open = self.0.lock().expect("per-ip lock");
        let n = open.entry(ip).or_insert(0);
        if *n >= cap {
            return None;
        }
        *n += 1;
        metrics.sockets_open.fetch_add(1, Relaxed);
        Some(Slot {
            per_ip: self.clone(),
            ip,
            metrics: metrics.clone(),
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.sockets_open.fetch_sub(1, Relaxed);
        let mut open = self.per_ip.0.lock().expect("per-ip lock");
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Serves `router` on `listener` until `stopping` turns true; then stops
/// accepting and lets each open connection finish its request.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ListenLimits,
    tls: Tls,
    metrics: Arc<Metrics>,
    stopping: watch::Receiver<bool>,
) {
    let per_ip = Arc::new(PerIp::default());
    let mut accept_stop = stopping.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = accept_stop.wait_for(|stop| *stop) => return,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors (EMFILE) or a connection reset before
                // it was taken: wait a moment rather than spin on it.
                tracing::warn!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small messages must leave at once: Nagle would hold a transport
        // event behind an unacknowledged one for up to 40 ms.
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(%err, "could not set TCP_NODELAY");
        }
        let Some(slot) = per_ip.take(peer.ip(), limits.max_connections_per_ip, &metrics) else {
            metrics.sockets_refused.fetch_add(1, Relaxed);
            tokio::spawn(refuse(stream, limits.max_connections_per_ip));
            continue;
        };
        let (router, stopping, tls) = (router.clone(), stopping.clone(), tls.clone());
        tokio::spawn(async move {
            let Some(tls) = tls else {
                connection(stream, peer, router, limits, stopping, slot).await;
                return;
            };
            // The handshake is held to the same deadline as headers, so a
            // socket that never finishes it cannot hold its slot.
            match tokio::time::timeout(limits.header_read_timeout, tls.accept(stream)).await {
                Ok(Ok(stream)) => connection(stream, peer, router, limits, stopping, slot).await,
                Ok(Err(err)) => tracing::debug!(%peer, %err, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

async fn connection<S>(
    stream: S,
    peer: SocketAddr,
    router: Router,
    limits: ListenLimits,
    mut stopping: watch::Receiver<bool>,
    slot: Slot,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        let router = router.clone();
        async move {
            let response = tower::ServiceExt::oneshot(router, request).await;
            Ok::<_, Infallible>(infallible(response))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let conn = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(conn);
    let stopped = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, %err, "connection ended with an error");
    }
    drop(slot);
}

/// The typed answer to a connection over the per-address cap, written
/// without reading the request (it may never come).
async fn refuse(mut stream: TcpStream, cap: usize) {
    let body = format!(
        "{{\"error\":{{\"code\":\"too_many_connections\",\"message\":\"more than {cap} connections from your address; close some and retry\"}}}}"
    );
    let response = format!(
        "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// Raises this process's open-file soft limit to its hard limit: every
/// participant is a socket, and the usual soft limit of 1,024 stops a
/// server long before its memory does. Returns the limit in effect.
pub fn raise_fd_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => Some(limit),
        Err(err) => {
            tracing::warn!(%err, "could not raise the open-file limit");
            None
        }
    }
}

fn infallible<T>(result: Result<T, Infallible>) -> T {
    match result {
        Ok(value) => value,
        Err(never) => match never {},
    }
}
