//! Announces the record's events to the team's other tools: a signed JSON
//! POST to every configured URL, over http or https.
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
use tokio::sync::mpsc;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use crate::config::{ConfigError, WebhooksConfig};
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
    /// Checks the configuration and starts the worker on the current Tokio
    /// runtime.
    pub fn start(config: &WebhooksConfig, store: Store) -> Result<Webhooks, ConfigError> {
        config.validate()?;
        if config.urls.is_empty() {
            return Ok(Webhooks { tx: None });
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
        let (tx, rx) = mpsc::channel(QUEUE);
        let shared = Arc::new(Shared {
            config: config.clone(),
            targets,
            tls,
            store,
        });
        tokio::spawn(work(shared, rx));
        Ok(Webhooks { tx: Some(tx) })
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
}

async fn work(shared: Arc<Shared>, mut rx: mpsc::Receiver<Announcement>) {
    while let Some(announcement) = rx.recv().await {
        let delivery = crate::links::random_id();
        let body = serde_json::json!({
            "id": delivery,
            "event": announcement.event,
            "sessionId": announcement.session_id,
            "at": crate::server_clock::unix_millis(),
            "data": announcement.data,
        })
        .to_string();
        let signature = format!(
            "sha256={}",
            sign(shared.config.secret.as_bytes(), body.as_bytes())
        );
        let message = Arc::new(Message {
            event: announcement.event,
            delivery,
            body: Bytes::from(body),
            signature,
        });
        for index in 0..shared.targets.len() {
            tokio::spawn(deliver(shared.clone(), index, message.clone()));
        }
    }
}

/// One announcement, ready to send to every URL.
struct Message {
    event: &'static str,
    delivery: String,
    body: Bytes,
    signature: String,
}

async fn deliver(shared: Arc<Shared>, index: usize, message: Arc<Message>) {
    let config = &shared.config;
    let target = &shared.targets[index];
    let mut wait = Duration::from_millis(config.backoff_ms);
    for attempt in 1..=config.max_attempts.max(1) {
        let outcome = tokio::time::timeout(
            Duration::from_millis(config.timeout_ms),
            post(target, shared.tls.as_ref(), &message),
        )
        .await
        .unwrap_or_else(|_| Err("timed out".into()));
        let (status, error) = match &outcome {
            Ok(status) if (200..300).contains(status) => (Some(*status), None),
            Ok(status) => (Some(*status), Some(format!("answered {status}"))),
            Err(err) => (None, Some(err.clone())),
        };
        shared.store.write_later(Write::Delivery {
            delivery: message.delivery.clone(),
            url: target.url.clone(),
            event: message.event.into(),
            attempt,
            status,
            error: error.clone(),
            at: crate::server_clock::unix_millis(),
        });
        if error.is_none() {
            return;
        }
        if attempt < config.max_attempts {
            tokio::time::sleep(wait).await;
            wait = wait.saturating_mul(2);
        } else {
            tracing::warn!(url = %target.url, event = message.event, ?error, "webhook delivery gave up");
        }
    }
}

/// One POST; the receiver's status, or why there was none.
async fn post(
    target: &Target,
    tls: Option<&TlsConnector>,
    message: &Message,
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

async fn exchange<S>(stream: S, target: &Target, message: &Message) -> Result<u16, String>
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
        .header("x-syncreel-delivery", message.delivery.as_str())
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
