//! Announces the record's events to the team's other tools: a signed JSON
//! POST to every configured URL, over http or https.
//!
//! An announcement becomes one row per URL in the record's outbox (a
//! session hands it over and goes on; nothing here can hold a session
//! up). Workers claim rows that are due, one attempt at a time: the node
//! that announced is woken at once, and every node also looks every
//! `poll_ms` for rows nobody holds, so that what a crash left pending is
//! sent after a restart, and on a record shared by a cluster each attempt
//! is claimed by exactly one node. A failed attempt makes its row due
//! again after a doubling wait, until the receiver answers 2xx or the
//! attempts run out; every attempt is written to the delivery log.
//!
//! A claim lasts one attempt's timeout and a margin. A node that dies
//! mid-attempt leaves its claim to lapse, and another attempt follows: a
//! receiver may then see one delivery twice, under the same
//! `X-SyncReel-Delivery`, which is what that header is for.
//!
//! Each request carries `X-SyncReel-Event`, `X-SyncReel-Delivery` (the
//! same id on every retry, for receivers to deduplicate) and
//! `X-SyncReel-Signature: sha256=<hex HMAC-SHA256 of the body>`.
//!
//! https receivers are verified against the Mozilla roots that
//! `webpki-roots` ships plus any in `webhooks.ca_file`, so an internal CA
//! works without touching the system's trust store.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::config::{ConfigError, WebhooksConfig};
use crate::server_clock::unix_millis;
use crate::store::{DeliveryRow, OutboxRow, Store, Write};

/// The most rows one claim takes; a node with more due claims again.
const CLAIM_BATCH: u32 = 32;
/// How far past an attempt's timeout its claim lasts, so that a slow
/// attempt's own outcome is recorded before anyone else may try.
const CLAIM_MARGIN_MS: u64 = 2_000;

/// Something worth telling other tools.
#[derive(Debug, Clone)]
pub struct Announcement {
    /// `session.started`, `note.created`, …
    pub event: &'static str,
    pub session_id: String,
    pub data: serde_json::Value,
}

/// The announcer. Without URLs it does nothing at all.
#[derive(Clone, Default)]
pub struct Webhooks {
    shared: Option<Arc<Shared>>,
}

impl std::fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhooks")
            .field(
                "urls",
                &self.shared.as_ref().map(|s| s.targets.len()).unwrap_or(0),
            )
            .finish_non_exhaustive()
    }
}

impl Webhooks {
    /// Checks the configuration and starts the worker on the current Tokio
    /// runtime.
    pub fn start(config: &WebhooksConfig, store: Store) -> Result<Webhooks, ConfigError> {
        config.validate()?;
        if config.urls.is_empty() {
            return Ok(Webhooks { shared: None });
        }
        let targets = config
            .urls
            .iter()
            .map(|url| {
                Target::parse(url).map_err(|reason| ConfigError::WebhookUrl {
                    url: url.clone(),
                    reason,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Loading the roots is the costly part of TLS setup; once per
        // server rather than per attempt.
        let tls = if targets.iter().any(|t| t.tls.is_some()) {
            Some(TlsConnector::from(tls_config(&config.ca_file)?))
        } else {
            None
        };
        let due = Arc::new(Notify::new());
        let shared = Arc::new(Shared {
            config: config.clone(),
            targets,
            tls,
            store,
            node: crate::links::random_id(),
            due: due.clone(),
        });
        tokio::spawn(work(Arc::downgrade(&shared), due));
        Ok(Webhooks {
            shared: Some(shared),
        })
    }

    /// Puts an announcement in the outbox and wakes the worker once it is
    /// there; never waits.
    pub fn announce(&self, announcement: Announcement) {
        let Some(shared) = &self.shared else {
            return;
        };
        let delivery = crate::links::random_id();
        let now = unix_millis();
        let body = serde_json::json!({
            "id": delivery,
            "event": announcement.event,
            "sessionId": announcement.session_id,
            "at": now,
            "data": announcement.data,
        })
        .to_string();
        let queued = shared.store.write_acked(Write::Outbox {
            delivery,
            event: announcement.event.into(),
            body,
            urls: shared.targets.iter().map(|t| t.url.clone()).collect(),
            due_at: now,
        });
        let shared = shared.clone();
        tokio::spawn(async move {
            match queued.await {
                Ok(Ok(())) => shared.due.notify_one(),
                Ok(Err(err)) => {
                    tracing::warn!(%err, event = announcement.event, "webhook announcement dropped")
                }
                Err(_) => {}
            }
        });
    }
}

/// Why a webhook URL cannot be delivered to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("is not a URL ({0})")]
    Unparsable(String),
    #[error("must start with http:// or https://")]
    Scheme,
    #[error("has no host")]
    NoHost,
    /// They would be dropped silently otherwise: receivers authenticate
    /// the signature, not the URL.
    #[error("must not carry user:password@; receivers check the signature")]
    Credentials,
    #[error("has a host that is not a valid TLS server name")]
    ServerName,
}

/// One webhook URL taken apart once, at startup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// The URL as configured, for the delivery log.
    url: String,
    /// The name or address to connect to; an IPv6 address without brackets.
    host: String,
    port: u16,
    /// As the receiver expects it: the port only when the URL named one.
    host_header: String,
    /// Path and query.
    path: String,
    /// The name the certificate must match, for https.
    tls: Option<ServerName<'static>>,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, UrlError> {
        // Judged before parsing so that "hooks.example.com/in" is told
        // what it lacks rather than "invalid format".
        let https = match url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()) {
            Some(s) if s == "http" => false,
            Some(s) if s == "https" => true,
            _ => return Err(UrlError::Scheme),
        };
        let uri: hyper::Uri = url
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| UrlError::Unparsable(e.to_string()))?;
        let authority = uri.authority().ok_or(UrlError::NoHost)?;
        if authority.as_str().contains('@') {
            return Err(UrlError::Credentials);
        }
        let bracketed = authority.host();
        let host = bracketed.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(UrlError::NoHost);
        }
        let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
        let host_header = match authority.port_u16() {
            Some(port) => format!("{bracketed}:{port}"),
            None => bracketed.to_string(),
        };
        let path = match uri.query() {
            Some(query) => format!("{}?{query}", uri.path()),
            None => uri.path().to_string(),
        };
        let tls = if https {
            Some(ServerName::try_from(host.to_string()).map_err(|_| UrlError::ServerName)?)
        } else {
            None
        };
        Ok(Target {
            url: url.to_string(),
            host: host.to_string(),
            port,
            host_header,
            path,
            tls,
        })
    }
}

/// The roots https receivers are checked against: the bundled Mozilla set
/// plus the certificates in `ca_file`, when it is set.
pub(crate) fn root_store(ca_file: &Path) -> Result<RootCertStore, ConfigError> {
    let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if ca_file.as_os_str().is_empty() {
        return Ok(roots);
    }
    let fail = |reason: String| ConfigError::WebhookCaFile {
        path: ca_file.to_owned(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(ca_file)
        .map_err(|e| fail(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("holds no PEM certificate".into()));
    }
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| fail(format!("a certificate was refused: {e}")))?;
    }
    Ok(roots)
}

fn tls_config(ca_file: &Path) -> Result<Arc<ClientConfig>, ConfigError> {
    // Named explicitly so that no process-wide default provider is needed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError::Invalid(format!("webhooks: TLS setup failed: {e}")))?
        .with_root_certificates(root_store(ca_file)?)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// What every delivery needs, shared by the worker and its deliveries.
struct Shared {
    config: WebhooksConfig,
    targets: Vec<Target>,
    tls: Option<TlsConnector>,
    store: Store,
    /// Who this worker claims as: one per process.
    node: String,
    /// Rows may be due now (an announcement, or a retry's wait is over).
    due: Arc<Notify>,
}

/// The worker: lives as long as the server's announcer (it holds only a
/// weak reference between passes), so a stopped server stops claiming.
async fn work(weak: std::sync::Weak<Shared>, due: Arc<Notify>) {
    let poll_ms = match weak.upgrade() {
        Some(shared) => shared.config.poll_ms.max(1),
        None => return,
    };
    let mut poll = tokio::time::interval(Duration::from_millis(poll_ms));
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = due.notified() => {}
            _ = poll.tick() => {}
        }
        let Some(shared) = weak.upgrade() else {
            return;
        };
        // Bounded: each pass claims at most the rows due now, and a row
        // claimed here is not due again until its attempt is recorded.
        loop {
            let now = unix_millis();
            let until = now.saturating_add(
                i64::try_from(shared.config.timeout_ms.saturating_add(CLAIM_MARGIN_MS))
                    .unwrap_or(i64::MAX),
            );
            let claimed = match shared
                .store
                .claim_deliveries(&shared.node, now, until, CLAIM_BATCH)
                .await
            {
                Ok(rows) => rows,
                Err(err) => {
                    tracing::warn!(%err, "webhook outbox unavailable");
                    break;
                }
            };
            let full = claimed.len() == CLAIM_BATCH as usize;
            // One task per URL, its rows in the order announced: a
            // receiver hears a note before the reply to it (retries can
            // still reorder; the body's `at` says when each happened).
            let mut by_url: Vec<(String, Vec<OutboxRow>)> = Vec::new();
            for row in claimed {
                match by_url.iter_mut().find(|(url, _)| *url == row.url) {
                    Some((_, rows)) => rows.push(row),
                    None => by_url.push((row.url.clone(), vec![row])),
                }
            }
            for (_, rows) in by_url {
                let shared = shared.clone();
                tokio::spawn(async move {
                    for row in rows {
                        attempt(shared.clone(), row).await;
                    }
                });
            }
            if !full {
                break;
            }
        }
    }
}

/// One attempt to send one outbox row; its outcome goes to the record,
/// and a retry wakes the worker when it is due.
async fn attempt(shared: Arc<Shared>, row: OutboxRow) {
    let config = &shared.config;
    let number = row.attempts.saturating_add(1);
    let outcome = match shared.targets.iter().find(|t| t.url == row.url) {
        // A URL taken out of the configuration since: nothing to send to.
        None => Err("no longer in webhooks.urls".to_string()),
        Some(target) => {
            let signature = format!(
                "sha256={}",
                sign(config.secret.as_bytes(), row.body.as_bytes())
            );
            let message = Message {
                event: &row.event,
                delivery: &row.delivery,
                body: Bytes::from(row.body.clone()),
                signature,
            };
            tokio::time::timeout(
                Duration::from_millis(config.timeout_ms),
                post(target, shared.tls.as_ref(), &message),
            )
            .await
            .unwrap_or_else(|_| Err("timed out".into()))
        }
    };
    let (status, error) = match &outcome {
        Ok(status) if (200..300).contains(status) => (Some(*status), None),
        Ok(status) => (Some(*status), Some(format!("answered {status}"))),
        Err(err) => (None, Some(err.clone())),
    };
    let at = unix_millis();
    let retry = error.is_some()
        && number < config.max_attempts
        && shared.targets.iter().any(|t| t.url == row.url);
    let wait = retry.then(|| {
        let doublings = number.saturating_sub(1).min(30);
        config.backoff_ms.saturating_mul(1u64 << doublings)
    });
    let next_due_at = wait.map(|w| at.saturating_add(i64::try_from(w).unwrap_or(i64::MAX)));
    if error.is_some() && wait.is_none() {
        tracing::warn!(url = %row.url, event = %row.event, ?error, "webhook delivery gave up");
    }
    let recorded = shared
        .store
        .write_acked(Write::Attempt {
            outbox_id: row.id,
            attempt: DeliveryRow {
                delivery: row.delivery,
                url: row.url,
                event: row.event,
                attempt: number,
                status,
                error,
                at,
            },
            next_due_at,
        })
        .await;
    if !matches!(recorded, Ok(Ok(()))) {
        // The claim lapses and the row is tried again: at worst a second
        // send under the same delivery id.
        tracing::warn!("a webhook attempt could not be recorded");
        return;
    }
    if let Some(wait) = wait {
        // Not holding the server's announcer while it waits: a server
        // stopped meanwhile stops here too.
        let due = shared.due.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(wait)).await;
            due.notify_one();
        });
    }
}

/// One outbox row, ready to send.
struct Message<'a> {
    event: &'a str,
    delivery: &'a str,
    body: Bytes,
    signature: String,
}

/// One POST; the receiver's status, or why there was none.
async fn post(
    target: &Target,
    tls: Option<&TlsConnector>,
    message: &Message<'_>,
) -> Result<u16, String> {
    // A (name, port) pair rather than a socket address string, so that
    // names resolve and every address they resolve to is tried.
    let tcp = tokio::net::TcpStream::connect((target.host.as_str(), target.port))
        .await
        .map_err(|e| format!("cannot connect: {e}"))?;
    match (&target.tls, tls) {
        (None, _) => exchange(tcp, target, message).await,
        (Some(name), Some(connector)) => {
            let stream = connector
                .connect(name.clone(), tcp)
                .await
                .map_err(|e| format!("TLS handshake failed: {e}"))?;
            exchange(stream, target, message).await
        }
        (Some(_), None) => Err("no TLS configuration".into()),
    }
}

async fn exchange<S>(stream: S, target: &Target, message: &Message<'_>) -> Result<u16, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let request = hyper::Request::post(target.path.as_str())
        .header(hyper::header::HOST, target.host_header.as_str())
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .header("x-syncreel-event", message.event)
        .header("x-syncreel-delivery", message.delivery)
        .header("x-syncreel-signature", message.signature.as_str())
        .body(Full::new(message.body.clone()))
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
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

    fn parts(url: &str) -> (bool, String, u16, String, String) {
        let t = Target::parse(url).unwrap();
        (t.tls.is_some(), t.host, t.port, t.host_header, t.path)
    }

    #[test]
    fn urls_without_a_port_take_the_schemes_default() {
        let owned = |tls, host: &str, port, header: &str, path: &str| {
            (
                tls,
                host.to_string(),
                port,
                header.to_string(),
                path.to_string(),
            )
        };
        assert_eq!(
            parts("http://hooks.example.com/in"),
            owned(false, "hooks.example.com", 80, "hooks.example.com", "/in")
        );
        assert_eq!(
            parts("https://hooks.example.com/a/b?team=7&x=1"),
            owned(
                true,
                "hooks.example.com",
                443,
                "hooks.example.com",
                "/a/b?team=7&x=1"
            )
        );
        // An explicit port is kept in the Host header, even the default one.
        assert_eq!(
            parts("http://hooks.example.com:80/in"),
            owned(
                false,
                "hooks.example.com",
                80,
                "hooks.example.com:80",
                "/in"
            )
        );
        assert_eq!(
            parts("https://10.1.2.3:8443"),
            owned(true, "10.1.2.3", 8443, "10.1.2.3:8443", "/")
        );
        assert_eq!(
            parts("http://[::1]/x?y"),
            owned(false, "::1", 80, "[::1]", "/x?y")
        );
        assert_eq!(
            parts("https://[::1]:9443/"),
            owned(true, "::1", 9443, "[::1]:9443", "/")
        );
    }

    #[test]
    fn unusable_urls_are_refused_with_the_reason() {
        assert_eq!(Target::parse("ftp://example.com/"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("example.com/hooks"), Err(UrlError::Scheme));
        assert_eq!(Target::parse("/hooks"), Err(UrlError::Scheme));
        assert_eq!(
            Target::parse("https://user:pw@example.com/"),
            Err(UrlError::Credentials)
        );
        for no_host in ["http:///hooks", "http://:8080/hooks"] {
            assert!(
                matches!(
                    Target::parse(no_host),
                    Err(UrlError::NoHost | UrlError::Unparsable(_))
                ),
                "{no_host}: {:?}",
                Target::parse(no_host)
            );
        }
        assert!(matches!(
            Target::parse("http://exa mple.com/"),
            Err(UrlError::Unparsable(_))
        ));
    }
}
