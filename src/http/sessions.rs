//! The sessions' REST API: create, list media, read, end, delete, and
//! mint and revoke links.

use super::*;

pub(super) async fn create_session(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: Result<Json<CreateSession>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<CreatedSessionBody>), ApiError> {
    require_admin(&app, &headers, "creating sessions")?;
    if let Some(why) = app.cut_off() {
        // It could neither place the session nor hold its lease.
        return Err(cluster::unavailable(why.to_string()));
    }
    let Json(req) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let files = media_files(&req)?;
    let prepare = app.clone();
    let media = tokio::task::spawn_blocking(move || {
        files
            .iter()
            .map(|f| prepare.prepare_media(f))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))??;
    let created = app.create_session(req, media).await?;
    tracing::info!(session = %created.info.id, title = %created.info.title, "session created");
    let base = public_base(&app, &headers);
    Ok((StatusCode::CREATED, Json(created_body(&created, &base))))
}

/// Every media item with its stack of versions, newest last.
pub(super) async fn list_media(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    require_admin(&app, &headers, "listing media")?;
    let store = app.store.clone();
    let versions = tokio::task::spawn_blocking(move || store.versions())
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(store_error)?;
    let mut items: Vec<serde_json::Value> = Vec::new();
    for chunk in versions.chunk_by(|a, b| a.item_id == b.item_id) {
        let stack: Vec<serde_json::Value> = chunk
            .iter()
            .map(|v| {
                let proxy = app.uploads.proxies().state(&v.checksum);
                serde_json::json!({
                    "id": v.id,
                    "number": v.number,
                    "media": v.path,
                    "checksum": v.checksum,
                    "sizeBytes": v.size_bytes,
                    "createdAt": v.created_at,
                    "proxy": proxy.as_ref().map(uploads::proxy_json),
                })
            })
            .collect();
        items.push(serde_json::json!({"name": chunk[0].item, "versions": stack}));
    }
    Ok(Json(serde_json::json!({ "items": items })))
}

pub(super) async fn get_session(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<SessionBody>, ApiError> {
    let handle = require_host(&app, &headers, peer, &id).await?;
    let (reply, answer) = oneshot::channel();
    let gone = || ApiError::new(StatusCode::GONE, "session_ended", "the session has ended");
    handle
        .tx
        .send(SessionMsg::State { reply })
        .await
        .map_err(|_| gone())?;
    let state = answer.await.map_err(|_| gone())?;
    Ok(Json(SessionBody {
        session: (&*handle.info).into(),
        state,
        links: app
            .links
            .for_session(&id)
            .iter()
            .map(|l| link_body(l, None))
            .collect(),
    }))
}

pub(super) async fn mint_link(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Result<Json<MintLink>, axum::extract::rejection::JsonRejection>,
) -> Result<(StatusCode, Json<LinkBody>), ApiError> {
    require_host(&app, &headers, peer, &id).await?;
    let Json(req) =
        body.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let expires_at = link_expiry(&req, unix_now())?;
    let hash = passcode::passcode_hash(req.passcode.as_deref()).await?;
    let minted = app.links.mint(&id, req.role.into(), expires_at, hash);
    app.store
        .write_acked(Write::Link(link_row(&minted)))
        .await
        .unwrap_or(Err(StoreError::Closed))
        .map_err(store_error)?;
    let url = link_url(&public_base(&app, &headers), &id, &minted.token);
    Ok((
        StatusCode::CREATED,
        Json(link_body(&minted.link, Some((&minted.token, &url)))),
    ))
}

/// Ends the live review (host bearer). The links keep working, for the
/// record; idempotent.
pub(super) async fn end_session(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
) -> Result<Json<serde_json::Value>, ApiError> {
    check_link_for(&app, &headers, peer, &id, Some(Role::Host)).await?;
    let gone = || ApiError::new(StatusCode::GONE, "session_ended", "the session is gone");
    let at = match app.session(&id).await {
        Ok(handle) => end_here(&handle)
            .await
            .ok_or_else(gone)?
            .map_err(store_error)?,
        // A host whose request reached another node of the cluster: that
        // node asks the owner.
        Err(Unavailable::Elsewhere(owner)) => app.end_elsewhere(&owner, &id).await?,
        Err(why) => return Err(unavailable_error(why)),
    };
    Ok(Json(serde_json::json!({ "endedAt": at })))
}

/// Ends the live review of a session this node runs: when it ended, or
/// `None` if its task has gone.
pub(crate) async fn end_here(handle: &SessionHandle) -> Option<Result<i64, StoreError>> {
    let (reply, ended) = tokio::sync::oneshot::channel();
    handle.tx.send(SessionMsg::End { reply }).await.ok()?;
    ended.await.ok()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DeleteQuery {
    /// Also remove the session's notes, drawings, approvals and links
    /// from the record (an event row still says it was deleted).
    #[serde(default)]
    purge: bool,
}

/// Deletes a session (operator bearer): everyone in it is told and
/// disconnected, its links stop working, its slot and pipelines are
/// freed, and it is never restored; its record is kept unless `purge`.
pub(super) async fn delete_session(
    State(app): State<Arc<App>>,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<DeleteQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    require_admin(&app, &headers, "deleting sessions")?;
    let Query(query) =
        query.map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text()))?;
    let store = app.store.clone();
    let wanted = id.clone();
    let known = tokio::task::spawn_blocking(move || store.session(&wanted))
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string()))?
        .map_err(store_error)?;
    if known.is_none() {
        return Err(ApiError::not_found("session"));
    }
    app.links.revoke_session(&id);
    if let Some(handle) = app.registry.remove(&id) {
        let (reply, closed) = oneshot::channel();
        let close = SessionMsg::Close {
            reply,
            code: crate::protocol::ErrorCode::SessionNotFound,
            message: "the operator deleted this session".into(),
        };
        if handle.tx.send(close).await.is_ok() {
            let _ = tokio::time::timeout(std::time::Duration::from_secs(5), closed).await;
        }
    }
    app.frame_media.retain(|(session, _), _| *session != id);
    app.store
        .write_acked(Write::Delete {
            session_id: id.clone(),
            at: crate::live::unix_millis(),
            purge: query.purge,
        })
        .await
        .unwrap_or(Err(StoreError::Closed))
        .map_err(store_error)?;
    tracing::info!(session = %id, purge = query.purge, "session deleted by the operator");
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn revoke_link(
    State(app): State<Arc<App>>,
    peer: Peer,
    UrlPath((id, link)): UrlPath<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let handle = require_host(&app, &headers, peer, &id).await?;
    if !app.links.revoke(&id, &link) {
        return Err(ApiError::not_found("link"));
    }
    app.store
        .write_acked(Write::RevokeLink {
            session_id: id.clone(),
            link_id: link.clone(),
        })
        .await
        .unwrap_or(Err(StoreError::Closed))
        .map_err(store_error)?;
    let _ = handle
        .tx
        .send(SessionMsg::RevokeLink { link_id: link })
        .await;
    Ok(StatusCode::NO_CONTENT)
}
