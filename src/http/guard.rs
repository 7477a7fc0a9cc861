//! What every request passes before a route sees it, and what every answer
//! carries: the `Host` it names must be one this server answers to, a
//! WebSocket's `Origin` must be this server's own, and responses carry the
//! headers that keep the web client from being framed, sniffed or leaking
//! its URL.
//!
//! Why the host check: links are built from `Host` when `public_url` is not
//! set, and a page on an attacker's name that resolves to this server (DNS
//! rebinding) would otherwise reach the API from the victim's browser.
//! Rebinding needs a *name*, so an IP literal is always accepted, as is
//! `localhost`; any other name must be `public_url`'s or listed in
//! `server.allowed_hosts`.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, App};

/// The names (host, or host:port) this server answers to besides IP
/// literals and `localhost`.
pub(super) fn allowed_names(config: &crate::config::ServerConfig) -> Vec<String> {
    let mut names: Vec<String> = config
        .allowed_hosts
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect();
    if let Some(authority) = authority_of(&config.public_url) {
        names.push(authority.to_ascii_lowercase());
    }
    names
}

/// `host[:port]` of a URL such as `https://review.example.com:8443/x`.
fn authority_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then_some(authority)
}

/// The host part of `host[:port]`, IPv6 brackets kept.
fn host_part(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority
        .rsplit_once(':')
        .map_or(authority, |(host, _)| host)
}

/// Whether this server answers to `Host: authority`.
pub(super) fn host_allowed(authority: &str, names: &[String]) -> bool {
    let authority = authority.trim().to_ascii_lowercase();
    let host = host_part(&authority);
    let literal = host.trim_start_matches('[').trim_end_matches(']');
    if literal.parse::<std::net::IpAddr>().is_ok() || host == "localhost" {
        return true;
    }
    names
        .iter()
        .any(|name| *name == authority || (!name.contains(':') && name == host))
}

pub(super) async fn check(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) else {
        return refuse("bad_host", "send a Host header".into());
    };
    let names = &app.allowed_hosts;
    if !host_allowed(host, names) {
        return refuse(
            "bad_host",
            format!(
                "this server does not answer to {host:?}; its operator can add it to \
                 server.public_url or server.allowed_hosts"
            ),
        );
    }
    let host = host.to_string();
    if request.uri().path() == "/ws" {
        if let Some(refused) = foreign_origin(headers, &host) {
            return refused;
        }
    }
    let mut response = next.run(request).await;
    secure(response.headers_mut(), &host);
    if app.tls.is_some() {
        // Browsers that once reached this server over TLS keep to it.
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// A browser's WebSocket handshake says which page opened it. A page of
/// another origin holding a leaked token must not join; a client that is
/// not a browser sends no `Origin`, and its token is all it has.
fn foreign_origin(headers: &HeaderMap, host: &str) -> Option<Response> {
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or_default();
    let same = authority_of(origin).is_some_and(|a| a.eq_ignore_ascii_case(host));
    (!same).then(|| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "bad_origin",
            format!("a page from {origin:?} may not open this server's sessions"),
        )
        .into_response()
    })
}

fn refuse(code: &'static str, message: String) -> Response {
    ApiError::new(StatusCode::BAD_REQUEST, code, message).into_response()
}

/// The headers every answer carries. The policy allows exactly what the
/// web client uses: its own scripts and styles (style attributes inline),
/// pictures from itself and from blobs (stills), WebSocket and fetch to
/// this host, no frames, no plugins.
fn secure(headers: &mut HeaderMap, host: &str) {
    let csp = format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; style-src-attr 'unsafe-inline'; \
         img-src 'self' data: blob:; media-src 'self' blob:; font-src 'self'; \
         connect-src 'self' ws://{host} wss://{host}; manifest-src 'self'; \
         frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    headers.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_literals_and_localhost_pass_other_names_only_when_listed() {
        let names = vec!["review.example.com".to_string(), "alt.example:8443".into()];
        for ok in [
            "127.0.0.1:8080",
            "10.0.0.5",
            "[::1]:8080",
            "localhost:8080",
            "review.example.com",
            "Review.Example.com:443",
            "alt.example:8443",
        ] {
            assert!(host_allowed(ok, &names), "{ok}");
        }
        for bad in [
            "evil.example",
            "alt.example:9999",
            "review.example.com.evil",
            "",
        ] {
            assert!(!host_allowed(bad, &names), "{bad}");
        }
    }

    #[test]
    fn public_url_names_its_authority() {
        assert_eq!(
            authority_of("https://review.example.com:8443/app"),
            Some("review.example.com:8443")
        );
        assert_eq!(authority_of("http://x.example"), Some("x.example"));
        assert_eq!(authority_of("nonsense"), None);
    }
}
