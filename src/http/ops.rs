//! What operators and browsers fetch that is not the API: health, the
//! Prometheus metrics, and the web client's files.

use super::*;

/// 200 while this node can serve; 503 while a cluster node is cut off
/// from NATS, so that a load balancer checking it sends participants to
/// the other nodes.
pub(super) async fn healthz(State(app): State<Arc<App>>) -> (StatusCode, Json<serde_json::Value>) {
    let cut_off = app.cut_off();
    let mut body = serde_json::json!({
        "status": if cut_off.is_some() { "cut_off" } else { "ok" },
        "sessions": app.registry.len(),
        "connections": app.metrics.connections_open.load(Relaxed),
    });
    if let Some(cluster) = &app.cluster {
        body["cluster"] = serde_json::json!({
            "node": cluster.node.as_str(),
            "connected": cut_off.is_none(),
        });
    }
    let status = if cut_off.is_some() {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body))
}

pub(super) async fn metrics(State(app): State<Arc<App>>) -> impl IntoResponse {
    let mut text = app.metrics.render();
    let f = app.frames.stats();
    for (name, kind, help, value) in [
        (
            "syncreel_frame_cache_bytes",
            "gauge",
            "Bytes of exact frames cached",
            f.cached_bytes as u64,
        ),
        (
            "syncreel_frame_cache_frames",
            "gauge",
            "Exact frames cached",
            f.cached_frames as u64,
        ),
        (
            "syncreel_frame_decoders",
            "gauge",
            "Warm exact-frame decoders",
            f.warm_decoders as u64,
        ),
        (
            "syncreel_frame_cache_hits_total",
            "counter",
            "Exact frames answered from the cache",
            f.hits,
        ),
        (
            "syncreel_frame_cache_misses_total",
            "counter",
            "Exact frames decoded",
            f.misses,
        ),
    ]
    .into_iter()
    .chain(media_relay_metrics(&app))
    {
        text.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        ));
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// The media relay's counts (cluster mode only).
pub(super) fn media_relay_metrics(
    app: &App,
) -> Vec<(&'static str, &'static str, &'static str, u64)> {
    let Some(media) = app.cluster.as_ref().and_then(|c| c.media.as_ref()) else {
        return vec![];
    };
    let counts = media.counts();
    vec![
        (
            "syncreel_media_relay_published_total",
            "counter",
            "Pictures and sound packets published once for other nodes' viewers (as an owner)",
            counts.published.load(Relaxed),
        ),
        (
            "syncreel_media_relay_received_total",
            "counter",
            "Pictures and sound packets received from owners for this node's viewers (as a gateway)",
            counts.received.load(Relaxed),
        ),
        (
            "syncreel_media_relay_dropped_total",
            "counter",
            "Pictures and sound packets an owner could not queue or publish",
            counts.dropped.load(Relaxed),
        ),
    ]
}

pub(super) async fn index(State(app): State<Arc<App>>) -> Result<Response, ApiError> {
    serve_file(&app.config.server.web_root, Path::new("index.html")).await
}

pub(super) async fn asset(
    State(app): State<Arc<App>>,
    UrlPath(path): UrlPath<String>,
) -> Result<Response, ApiError> {
    serve_file(&app.config.server.web_root, Path::new(&path)).await
}

/// Serves a file of the web client from under `root`. Only the kinds of
/// file a page loads are served, and nothing under `node_modules/`,
/// `tests/` or `bench/`, so the client's tooling stays private; no path can
/// climb out.
pub(super) async fn serve_file(root: &Path, relative: &Path) -> Result<Response, ApiError> {
    let mut components = relative.components();
    let safe = relative
        .components()
        .all(|c| matches!(c, Component::Normal(name) if !name.to_string_lossy().starts_with('.')));
    let private = matches!(
        components.next(),
        Some(Component::Normal(first)) if first == "node_modules" || first == "tests" || first == "bench"
    );
    let mime = match relative.extension().and_then(|e| e.to_str()) {
        Some("html") => "text/html; charset=utf-8",
        Some("js" | "mjs") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("ico") => "image/x-icon",
        Some("woff2") => "font/woff2",
        _ => return Err(ApiError::not_found("file")),
    };
    if !safe || private {
        return Err(ApiError::not_found("file"));
    }
    let path: PathBuf = root.join(relative);
    let bytes = tokio::fs::read(&path)
        .await
        .map_err(|_| ApiError::not_found("file"))?;
    Ok((
        [
            (header::CONTENT_TYPE, mime),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        bytes,
    )
        .into_response())
}
