//! Announces the record's events to the team's other tools: a signed JSON
//! POST to every configured URL.
//!
//! Sessions hand an announcement over with `try_send` and go on; one
//! worker task turns it into a body (signed once) and starts a delivery
//! per URL. A delivery retries with doubling waits until the receiver
//! answers 2xx or the attempts run out, and every attempt is written to
//! the record's delivery log. Nothing here can hold up a session: a full
//! queue drops the announcement and says so in the server log.
//!
//! Each request carries `X-SyncReel-Event`, `X-SyncReel-Delivery` (the
//! same id on every retry, for receivers to deduplicate) and
//! `X-SyncReel-Signature: sha256=<hex HMAC-SHA256 of the body>`.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use crate::config::WebhooksConfig;
use crate::store::{Store, Write};

/// Announcements waiting for the worker before new ones are dropped.
const QUEUE: usize = 1024;

/// Something worth telling other tools.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// `session.started`, `note.created`, …
    pub event: &'static str,
    pub session_id: String,
    pub data: serde_json::Value,
}

/// The announcer. Without URLs it does nothing at all.
#[derive(Debug, Clone, Default)]
pub struct Webhooks {
    tx: Option<mpsc::Sender<Announcement>>,
}

impl Webhooks {
    /// Starts the worker on the current Tokio runtime.
    pub fn start(config: &WebhooksConfig, store: Store) -> Webhooks {
        if config.urls.is_empty() {
            return Webhooks { tx: None };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(work(config.clone(), store, rx));
        Webhooks { tx: Some(tx) }
    }

    /// Queues an announcement; never waits.
    pub fn announce(&self, announcement: Announcement) {
        if let Some(tx) = &self.tx {
            if tx.try_send(announcement).is_err() {
                tracing::warn!("webhook queue full: an announcement was dropped");
            }
        }
    }
}

async fn work(config: WebhooksConfig, store: Store, mut rx: mpsc::Receiver<Announcement>) {
    while let Some(announcement) = rx.recv().await {
        let delivery = crate::links::random_id();
        let body = serde_json::json!({
            "id": delivery,
            "event": announcement.event,
            "sessionId": announcement.session_id,
            "at": crate::live::unix_millis(),
            "data": announcement.data,
        })
        .to_string();
        let signature = format!("sha256={}", sign(config.secret.as_bytes(), body.as_bytes()));
        for url in &config.urls {
            tokio::spawn(deliver(
                config.clone(),
                store.clone(),
                url.clone(),
                announcement.event,
                delivery.clone(),
                body.clone(),
                signature.clone(),
            ));
        }
    }
}

async fn deliver(
    config: WebhooksConfig,
    store: Store,
    url: String,
    event: &'static str,
    delivery: String,
    body: String,
    signature: String,
) {
    let mut wait = Duration::from_millis(config.backoff_ms);
    for attempt in 1..=config.max_attempts.max(1) {
        let outcome = tokio::time::timeout(
            Duration::from_millis(config.timeout_ms),
            post(&url, event, &delivery, &body, &signature),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        let (status, error) = match &outcome {
            Ok(status) if (200..300).contains(status) => (Some(*status), None),
            Ok(status) => (Some(*status), Some(format!("answered {status}"))),
            Err(err) => (None, Some(err.clone())),
        };
        store.write_later(Write::Delivery {
            delivery: delivery.clone(),
            url: url.clone(),
            event: event.into(),
            attempt,
            status,
            error: error.clone(),
            at: crate::live::unix_millis(),
        });
        if error.is_none() {
            return;
        }
        if attempt < config.max_attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        } else {
            tracing::warn!(%url, event, ?error, "webhook delivery gave up");
        }
    }
}

/// One POST; the receiver's status, or why there was none.
async fn post(
    url: &str,
    event: &str,
    delivery: &str,
    body: &str,
    signature: &str,
) -> Result<u16, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// webhook URLs are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let stream = tokio::net::TcpStream::connect(authority)
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::post(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-syncreel-event", event)
        .header("x-syncreel-delivery", delivery)
        .header("x-syncreel-signature", signature)
        .body(Full::new(Bytes::from(body.to_owned())))
        .map_err(|e| e.to_string())?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    // Drain the answer so the connection closes cleanly.
    let _ = response.into_body().collect().await;
    Ok(status)
}

/// HMAC-SHA256 (RFC 2104) of `message` under `key`, as lowercase hex.
pub fn sign(key: &[u8], message: &[u8]) -> String {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    let outer = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    outer.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test case 2.
        assert_eq!(
            sign(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Test case 6: a key longer than the block is hashed first.
        assert_eq!(
            sign(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            ),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }
}
