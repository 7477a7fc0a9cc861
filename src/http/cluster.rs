//! The runtime's side of cluster mode: this node holds the lease of each
//! live session it starts and publishes its load. Everything NATS is in
//! `crate::cluster`; this only says when, and what happens on a loss: a
//! session whose lease is lost here (or taken first by another node) stops
//! here, and everyone in it is told `session_moved`, so that they reach it
//! where it runs next. Sessions are created where asked, not redirected to
//! `Nodes::least_loaded`.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::cluster::{CpuMeter, Ended, Lease, LeaseError, NodeLoad};
use crate::live::{SessionHandle, SessionMsg};

use super::{ApiError, App, Unavailable};
use axum::http::StatusCode;

impl App {
    /// The lease to run session `id` here, taken before it starts (`None`
    /// without `--cluster`): held by another node, it is `Elsewhere`
    /// (that node runs it; this one relays); held by this node's previous
    /// life (restarted with the same `cluster.node_id` after a crash), it
    /// is waited out, for at most a TTL and two renewals; NATS not
    /// answering is `CutOff`.
    pub(crate) async fn lease_to_run(&self, id: &str) -> Result<Option<Lease>, Unavailable> {
        let Some(cluster) = &self.cluster else {
            return Ok(None);
        };
        let refused = |err: LeaseError| match err {
            LeaseError::Held { by } => Unavailable::Elsewhere(by.to_string()),
            other => Unavailable::CutOff(format!("{CUT_OFF} ({other})")),
        };
        match cluster.leases.acquire(id).await {
            Ok(lease) => Ok(Some(lease)),
            Err(LeaseError::Held { by }) if by == *cluster.leases.node() => {
                let mut shutdown = self.shutdown.clone();
                take(cluster, id, &mut shutdown)
                    .await
                    .map(Some)
                    .map_err(refused)
            }
            Err(err) => Err(refused(err)),
        }
    }

    /// The record as a session this node runs writes it: in a cluster,
    /// fenced by the session's lease, so that once another node has taken
    /// the session over nothing this node still writes for it lands.
    pub(crate) fn session_store(&self, id: &str, lease: Option<&Lease>) -> crate::store::Store {
        match lease {
            Some(lease) => self.store.fenced(crate::store::Fence {
                session_id: id.to_string(),
                token: lease.revision,
            }),
            None => self.store.clone(),
        }
    }

    /// Gives back a lease taken for a session that then did not start.
    pub(crate) async fn let_go(&self, lease: Option<Lease>) {
        if let (Some(cluster), Some(lease)) = (&self.cluster, lease) {
            let _ = cluster.leases.release(lease).await;
        }
    }

    /// Keeps the lease of a live session this node just started (taken
    /// by [`App::lease_to_run`]), and gives it up when the session's live
    /// review ends, its task stops or the server shuts down. Nothing
    /// without `--cluster`.
    pub(crate) fn own_session(&self, handle: &SessionHandle, lease: Option<Lease>) {
        let (Some(cluster), Some(lease)) = (self.cluster.clone(), lease) else {
            return;
        };
        if handle.ended.load(Relaxed) {
            let cluster = cluster.clone();
            tokio::spawn(async move {
                let _ = cluster.leases.release(lease).await;
            });
            return;
        }
        // Weak: a session's task ends when its last sender goes, and
        // holding its lease must not keep it alive.
        let session = handle.tx.downgrade();
        let ended = handle.ended.clone();
        let id = handle.info.id.clone();
        let mut shutdown = self.shutdown.clone();
        let metrics = self.metrics.clone();
        let registry = self.registry.clone();
        tokio::spawn(async move {
            tracing::debug!(session = %id, revision = lease.revision, "session lease taken");
            metrics.cluster_leases_held.fetch_add(1, Relaxed);
            let mut holding = cluster.leases.hold(lease);
            // Neither the end of the live review nor the task's stop has a
            // signal to wait on without holding the session: look at each
            // renewal interval.
            let mut check = tokio::time::interval(cluster.leases.timing().renew_every);
            let gone = || ended.load(Relaxed) || session.upgrade().is_none_or(|tx| tx.is_closed());
            let lost = loop {
                tokio::select! {
                    _ = check.tick() => if gone() { break None },
                    why = holding.lost() => break Some(why),
                    _ = shutdown.wait_for(|stop| *stop) => break None,
                }
            };
            match lost {
                Some(why) => {
                    // Another node may own it from now on: it must not
                    // run here too. Everyone reconnects, and reaches it
                    // where it runs next (here again if nobody else
                    // takes it).
                    tracing::error!(session = %id, ?why, "session lease lost; stopping the session here");
                    metrics.cluster_lease_losses.fetch_add(1, Relaxed);
                    metrics.cluster_leases_held.fetch_sub(1, Relaxed);
                    give_up(
                        &registry,
                        &id,
                        &session,
                        "this node lost the session's lease; reconnecting".into(),
                    )
                    .await;
                    return;
                }
                None => match holding.release().await {
                    Ok(()) => tracing::debug!(session = %id, "session lease released"),
                    Err(err) => {
                        tracing::warn!(session = %id, %err, "session lease not released; it lapses")
                    }
                },
            }
            // After the release, so that a stopping server can wait for it.
            metrics.cluster_leases_held.fetch_sub(1, Relaxed);
        });
    }

    /// How a recorded playing room carries on when this node opens it:
    /// only in a cluster (a takeover, moments after the owner died), and
    /// only within `session.resume_window_secs` of the record. A single
    /// node restarted later opens the room paused where it was recorded.
    pub(crate) fn still_moving(
        &self,
        moving: Option<crate::store::Moving>,
    ) -> Option<(crate::clock::Speed, std::time::Duration)> {
        self.cluster.as_ref()?;
        let moving = moving?;
        let speed = crate::clock::Speed::new(
            i32::try_from(moving.speed_num).ok()?,
            u32::try_from(moving.speed_den).ok()?,
        )?;
        let elapsed_ms = crate::live::unix_millis()
            .saturating_sub(moving.since_unix_ms)
            .max(0);
        let elapsed = std::time::Duration::from_millis(u64::try_from(elapsed_ms).ok()?);
        (elapsed.as_secs() <= self.config.session.resume_window_secs).then_some((speed, elapsed))
    }

    /// The node that holds session `id`'s lease, when that is not this
    /// one (`Ok(None)` without `--cluster`). An error when NATS cannot
    /// say: a node cut off from the cluster must not open a session that
    /// another node may be running.
    pub(crate) async fn owned_elsewhere(&self, id: &str) -> Result<Option<String>, String> {
        let Some(cluster) = self.cluster.as_ref() else {
            return Ok(None);
        };
        if !cluster.connected() {
            return Err(CUT_OFF.into());
        }
        match cluster.leases.holder(id).await {
            Ok(Some((owner, _))) if owner != *cluster.leases.node() => Ok(Some(owner.to_string())),
            Ok(_) => Ok(None),
            Err(err) => {
                tracing::warn!(session = %id, %err, "could not ask who owns a session");
                Err(format!("{CUT_OFF} ({err})"))
            }
        }
    }

    /// Why this node takes no new participant or session now: in a
    /// cluster, while its NATS connection is down. `None` otherwise.
    pub(crate) fn cut_off(&self) -> Option<&'static str> {
        let cluster = self.cluster.as_ref()?;
        (!cluster.connected()).then_some(CUT_OFF)
    }

    /// The node a new session should run on, when that is not this one:
    /// the least loaded by the loads nodes last published (`None` without
    /// `--cluster`, when this node is the pick, or when NATS cannot say).
    /// Loads are published every `cluster.load_interval_ms`, so sessions
    /// created faster than that may go to the same node.
    pub(crate) async fn placed_elsewhere(&self) -> Option<String> {
        let cluster = self.cluster.as_ref()?;
        if !self.config.cluster.place_sessions && !self.draining.load(Relaxed) {
            return None;
        }
        let mut loads = match cluster.nodes.loads().await {
            Ok(loads) => loads,
            Err(err) => {
                tracing::warn!(%err, "no node loads; the session runs here");
                return None;
            }
        };
        // This node's own entry may be a load interval old.
        if let Some(mine) = loads.get_mut(cluster.leases.node()) {
            mine.drained |= self.draining.load(Relaxed);
        }
        let pick = crate::cluster::least_loaded(loads.iter())?;
        (pick != cluster.leases.node()).then(|| pick.to_string())
    }

    /// Serves other nodes' requests to take a session over (placement and
    /// drain): it is opened from the shared record, its lease taken, and
    /// the asker told once it runs here. Nothing without `--cluster`.
    pub fn accept_handovers(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let cluster = self.cluster.clone()?;
        let app = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let mut handovers = match cluster.relay.handovers().await {
                Ok(handovers) => handovers,
                Err(err) => {
                    tracing::error!(%err, "sessions cannot be handed to this node");
                    return;
                }
            };
            while let Some(handover) = handovers.next().await {
                let Some(app) = app.upgrade() else { return };
                tokio::spawn(async move {
                    let id = handover.session.clone();
                    let result = match app.session(&id).await {
                        Ok(_) => Ok(()),
                        Err(Unavailable::NotFound) => Err(format!("no session {id} in the record")),
                        Err(Unavailable::Elsewhere(owner)) => {
                            Err(format!("node {owner} still holds the session's lease"))
                        }
                        Err(Unavailable::CutOff(why)) => Err(why),
                    };
                    tracing::info!(session = %id, ?result, "session handed to this node");
                    handover.answer(result).await;
                });
            }
        }))
    }

    /// Tells the node that runs session `id`, if another does, that
    /// version `version` was uploaded into it, and waits (bounded) for it
    /// to have passed it to the session.
    pub(crate) async fn tell_owner_of_version(&self, id: &str, version: &str) {
        let (Some(cluster), Ok(Some(owner))) = (&self.cluster, self.owned_elsewhere(id).await)
        else {
            return;
        };
        if let Err(err) = cluster.relay.tell_version(&owner, id, version).await {
            tracing::warn!(session = %id, %owner, %err, "an uploaded version did not reach the session's node; it joins at the session's next start");
        }
    }

    /// Adds to the sessions this node runs the versions other nodes'
    /// uploads bring them ([`App::tell_owner_of_version`]).
    pub fn accept_versions(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let cluster = self.cluster.clone()?;
        let app = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let versions = match cluster.relay.versions().await {
                Ok(versions) => versions,
                Err(err) => {
                    tracing::error!(%err, "uploads on other nodes cannot reach this node's sessions");
                    return;
                }
            };
            futures_util::pin_mut!(versions);
            while let Some((session, version, reply)) =
                futures_util::StreamExt::next(&mut versions).await
            {
                let Some(app) = app.upgrade() else { return };
                let relay = cluster.relay.clone();
                tokio::spawn(async move {
                    app.add_version_here(&session, &version).await;
                    if let Some(reply) = reply {
                        relay.answer(reply).await;
                    }
                });
            }
        }))
    }

    /// Asks `owner`, which runs session `id`, to end its live review: when
    /// it ended, or the error to answer the host with.
    pub(crate) async fn end_elsewhere(&self, owner: &str, id: &str) -> Result<i64, ApiError> {
        let Some(cluster) = &self.cluster else {
            return Err(ApiError::not_found("session"));
        };
        match cluster.relay.end_at(owner, id).await {
            Ok(Ended::At(at)) => Ok(at),
            Ok(Ended::Gone) => Err(ApiError::new(
                StatusCode::GONE,
                "session_ended",
                "the session is gone",
            )),
            Ok(Ended::Failed(why)) => {
                Err(ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store", why))
            }
            Err(err) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "session_elsewhere",
                format!("{err}; it runs this session until its lease lapses: try again"),
            )),
        }
    }

    /// Ends, for hosts whose request reached another node, the live
    /// reviews this node runs ([`App::end_elsewhere`]).
    pub fn accept_ends(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let cluster = self.cluster.clone()?;
        let app = Arc::downgrade(self);
        Some(tokio::spawn(async move {
            let ends = match cluster.relay.ends().await {
                Ok(ends) => ends,
                Err(err) => {
                    tracing::error!(%err, "hosts on other nodes cannot end this node's sessions");
                    return;
                }
            };
            futures_util::pin_mut!(ends);
            while let Some((session, reply)) = futures_util::StreamExt::next(&mut ends).await {
                let Some(app) = app.upgrade() else { return };
                let relay = cluster.relay.clone();
                tokio::spawn(async move {
                    let ended = match app.registry.get(&session) {
                        None => Ended::Gone,
                        Some(handle) => match super::sessions::end_here(&handle).await {
                            None => Ended::Gone,
                            Some(Ok(at)) => Ended::At(at),
                            Some(Err(err)) => Ended::Failed(err.to_string()),
                        },
                    };
                    if let Some(reply) = reply {
                        relay.answer_end(reply, &ended).await;
                    }
                });
            }
        }))
    }

    /// Moves live session `id` from this node to node `to`: stops it here
    /// (everyone in it is told `session_moved` and reconnects), waits
    /// (bounded) for its lease to be released, and asks `to` to open it
    /// from the record. If `to` will not, it opens here again.
    pub(crate) async fn hand_over(self: &Arc<Self>, id: &str, to: &str) -> Result<(), String> {
        let cluster = self.cluster.clone().ok_or("not in a cluster")?;
        let handle = self
            .registry
            .get(id)
            .ok_or("the session does not run here")?;
        give_up(
            &self.registry,
            id,
            &handle.tx.downgrade(),
            format!("the review moves to node {to}; reconnecting"),
        )
        .await;
        drop(handle);
        // The lease goes at the holder's next check (a renewal interval).
        let deadline = tokio::time::Instant::now() + cluster.leases.timing().ttl * 2;
        loop {
            match cluster.leases.holder(id).await {
                Ok(Some((owner, _))) if owner == *cluster.leases.node() => {}
                _ => break,
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        match cluster.relay.hand_to(to, id).await {
            Ok(()) => Ok(()),
            Err(err) => {
                tracing::warn!(session = %id, node = %to, %err, "handover refused; the session runs here again");
                let _ = self.session(id).await;
                Err(err.to_string())
            }
        }
    }

    /// Drains this node: it stops taking new sessions (its published load
    /// says drained) and hands each live session to the least loaded other
    /// node. Returns, per session, where it went or why it stayed.
    pub(crate) async fn drain(self: &Arc<Self>) -> Vec<(String, Result<String, String>)> {
        self.draining.store(true, Relaxed);
        let mut moved = Vec::new();
        for id in self.registry.live_ids() {
            let result = match self.placed_elsewhere().await {
                Some(to) => self.hand_over(&id, &to).await.map(|()| to),
                None => Err("no other node takes sessions".to_string()),
            };
            moved.push((id, result));
        }
        moved
    }

    /// Publishes this node's load every `cluster.load_interval_ms` until
    /// shutdown, then withdraws it. Nothing without `--cluster`.
    pub fn publish_load(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        let cluster = self.cluster.clone()?;
        let app = Arc::downgrade(self);
        let drained = self.config.cluster.drained;
        let mut cpu = CpuMeter::new();
        // Late pictures since the last publication.
        let late = self.metrics.media_late_pictures.clone();
        let mut late_before = late.load(Relaxed);
        Some(cluster.nodes.publish_every(
            self.config.cluster.load_interval(),
            move || {
                let (sessions, participants, draining) =
                    app.upgrade().map_or((0, 0, false), |app| {
                        (
                            app.registry.live_count(),
                            app.metrics.connections_open.load(Relaxed).max(0) as usize,
                            app.draining.load(Relaxed),
                        )
                    });
                let late_now = late.load(Relaxed);
                let late_pictures = late_now.saturating_sub(late_before);
                late_before = late_now;
                NodeLoad {
                    sessions: u32::try_from(sessions).unwrap_or(u32::MAX),
                    participants: u32::try_from(participants).unwrap_or(u32::MAX),
                    cpu_permille: cpu.permille(),
                    drained: drained || draining,
                    late_pictures: u32::try_from(late_pictures).unwrap_or(u32::MAX),
                }
            },
            self.shutdown.clone(),
        ))
    }

    /// At shutdown, after the connections: waits (bounded) for this node's
    /// leases to be released and its load withdrawn, then closes the NATS
    /// connection, so that other nodes need not wait out the TTLs.
    pub async fn leave_cluster(&self, publisher: Option<tokio::task::JoinHandle<()>>) {
        let Some(cluster) = &self.cluster else {
            return;
        };
        let deadline = tokio::time::Instant::now() + LEAVE_WAIT;
        while self.metrics.cluster_leases_held.load(Relaxed) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        if let Some(publisher) = publisher {
            let _ = tokio::time::timeout_at(deadline, publisher).await;
        }
        cluster.leave().await;
    }
}

/// Takes the session's lease, waiting out a live one for at most one TTL
/// and a renewal: a node restarted right after a crash (same
/// `cluster.node_id`, sessions restored from its record) finds its previous
/// life's leases still there until they lapse.
async fn take(
    cluster: &crate::cluster::Cluster,
    session: &str,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> Result<crate::cluster::Lease, LeaseError> {
    let timing = cluster.leases.timing();
    let deadline = tokio::time::Instant::now() + timing.ttl + timing.renew_every * 2;
    loop {
        match cluster.leases.acquire(session).await {
            Err(LeaseError::Held { by }) if tokio::time::Instant::now() < deadline => {
                tracing::info!(session, owner = %by, "session lease held; waiting for it to lapse");
            }
            other => return other,
        }
        tokio::select! {
            () = tokio::time::sleep(timing.renew_every) => {}
            _ = shutdown.wait_for(|stop| *stop) => return Err(LeaseError::Timeout(timing.renew_every)),
        }
    }
}

/// What a node cut off from NATS says to whoever asks it for a session.
const CUT_OFF: &str = "this node has lost touch with the cluster (NATS) and cannot tell who runs the session; reconnect";

/// The most a stopping node waits for its releases; what is not released
/// by then lapses after its TTL.
const LEAVE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Stops running session `id` on this node: out of the registry (so the
/// next participant asking finds its owner), and everyone in it told
/// `session_moved`, which clients answer by reconnecting.
async fn give_up(
    registry: &crate::live::Registry,
    id: &str,
    session: &tokio::sync::mpsc::WeakSender<SessionMsg>,
    message: String,
) {
    let Some(tx) = session.upgrade() else {
        return;
    };
    registry.remove_if_same(id, &tx);
    let (reply, closed) = tokio::sync::oneshot::channel();
    let close = SessionMsg::Close {
        reply,
        code: crate::protocol::ErrorCode::SessionMoved,
        message,
    };
    if tx.send(close).await.is_ok() {
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), closed).await;
    }
}

/// `GET /api/cluster` (operator): this node's name and every node's last
/// published load. 409 `not_clustered` on a single node.
pub(super) async fn nodes(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<serde_json::Value>, super::ApiError> {
    super::require_admin(&app, &headers, "reading the cluster's nodes")?;
    let cluster = clustered(&app)?;
    let loads = cluster
        .nodes
        .loads()
        .await
        .map_err(|e| unavailable(e.to_string()))?;
    let nodes: Vec<serde_json::Value> = loads
        .iter()
        .map(|(id, load)| {
            serde_json::json!({
                "node": id.as_str(),
                "sessions": load.sessions,
                "participants": load.participants,
                "cpuPermille": load.cpu_permille,
                "drained": load.drained,
            })
        })
        .collect();
    Ok(axum::Json(serde_json::json!({
        "node": cluster.leases.node().as_str(),
        "draining": app.draining.load(Relaxed),
        "nodes": nodes,
    })))
}

/// `POST /api/cluster/drain` (operator): this node takes no new sessions
/// and hands each live one to the least loaded other node. Answers with
/// where each went, or why it stayed.
pub(super) async fn drain(
    axum::extract::State(app): axum::extract::State<Arc<App>>,
    headers: axum::http::HeaderMap,
) -> Result<axum::Json<serde_json::Value>, super::ApiError> {
    super::require_admin(&app, &headers, "draining the node")?;
    clustered(&app)?;
    let moved: Vec<serde_json::Value> = app
        .drain()
        .await
        .into_iter()
        .map(|(session, result)| match result {
            Ok(to) => serde_json::json!({"session": session, "to": to}),
            Err(error) => serde_json::json!({"session": session, "error": error}),
        })
        .collect();
    Ok(axum::Json(serde_json::json!({ "sessions": moved })))
}

/// 503 `cluster_unavailable`: this node cannot reach NATS now.
pub(super) fn unavailable(why: String) -> super::ApiError {
    super::ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "cluster_unavailable",
        why,
    )
}

fn clustered(app: &App) -> Result<&crate::cluster::Cluster, super::ApiError> {
    app.cluster.as_ref().ok_or_else(|| {
        super::ApiError::new(
            axum::http::StatusCode::CONFLICT,
            "not_clustered",
            "this server is a single node (no --cluster)",
        )
    })
}
