//! Passcodes where HTTP and the WebSocket meet them: the caller's
//! address, the `X-SyncReel-Passcode` header, the check with its audit
//! trail and counters, and the refusals as the API reports them.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering::Relaxed;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};

use super::{ApiError, App};
use crate::links::Link;
use crate::live::{role_name, unix_millis};
use crate::passcode::{BadPasscode, Checked, Refusal};
use crate::store::Write;

/// The header a REST call with a link of a passcode-protected session
/// carries the passcode in, as typed (printable ASCII, so as it is).
pub const PASSCODE_HEADER: &str = "x-syncreel-passcode";

/// The client's address, when the listener knows it (a router driven
/// in-process has none).
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Peer, Infallible> {
        Ok(Peer(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// The passcode a request carries, if any. A value that is not text is
/// passed on as is (lossily): it is then simply wrong, and counted so.
pub fn header_passcode(headers: &HeaderMap) -> Option<String> {
    headers
        .get(PASSCODE_HEADER)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

impl App {
    /// Checks `given` against `link`'s passcode (a link without one needs
    /// none). A wrong one is counted, leaves an event in the session's
    /// audit trail and `syncreel_passcode_failures_total`; a refusal under
    /// lock counts in `syncreel_passcode_locked_total`.
    pub async fn check_passcode(
        &self,
        link: &Link,
        given: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<(), Refusal> {
        let Some(phc) = &link.passcode else {
            return Ok(());
        };
        let outcome = self.passcodes.check(&link.id, phc, given, address).await;
        let locked = match outcome {
            Ok(Checked::Right) => return Ok(()),
            Ok(Checked::Wrong { locked }) => locked,
            Err(refusal) => {
                if matches!(refusal, Refusal::Locked { .. }) {
                    self.metrics.passcode_locked.fetch_add(1, Relaxed);
                }
                return Err(refusal);
            }
        };
        self.metrics.passcode_failures.fetch_add(1, Relaxed);
        let from = address.map_or_else(|| "an unknown address".to_string(), |a| a.to_string());
        let detail = format!(
            "link {} ({}) from {from}{}",
            link.id,
            role_name(link.role),
            if locked {
                "; locked for the rest of the window"
            } else {
                ""
            }
        );
        tracing::info!(session = %link.session_id, %detail, "wrong passcode");
        // At most `links.passcode_link_attempts` a window per link reach
        // here, so the trail cannot be flooded.
        self.store.write_later(Write::Event {
            session_id: link.session_id.clone(),
            at: unix_millis(),
            kind: "passcode_wrong".into(),
            detail,
        });
        Err(Refusal::Wrong)
    }
}

/// A passcode refusal as the REST API reports it.
pub fn refusal_error(refusal: Refusal) -> ApiError {
    let message = refusal.to_string();
    match refusal {
        Refusal::Required => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "passcode_required",
            format!("{message}: send it as X-SyncReel-Passcode"),
        ),
        Refusal::Wrong => ApiError::new(StatusCode::UNAUTHORIZED, "passcode_wrong", message),
        Refusal::Locked { retry_after_secs } => {
            let mut err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "passcode_locked", message);
            err.retry_after_secs = Some(retry_after_secs);
            err
        }
        Refusal::Busy => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "busy", message),
    }
}

/// The hash to keep for a passcode asked for at minting, or 400
/// `bad_passcode`. Hashing takes a core for ~20 ms, so it runs off the
/// runtime.
pub async fn passcode_hash(requested: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(raw) = requested else {
        return Ok(None);
    };
    let passcode = checked_passcode(raw)?.to_string();
    let hash = tokio::task::spawn_blocking(move || crate::passcode::hash(&passcode))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?;
    Ok(Some(hash))
}

/// A passcode asked for at minting, trimmed, or 400 `bad_passcode`.
pub fn checked_passcode(raw: &str) -> Result<&str, ApiError> {
    crate::passcode::checked(raw).map_err(|err: BadPasscode| {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_passcode", err.to_string())
    })
}
