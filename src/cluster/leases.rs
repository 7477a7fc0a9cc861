//! Session ownership leases in a JetStream KV bucket: the thin NATS edge
//! around [`Ownership`](super::Ownership).
//!
//! One bucket, `history: 1`, whose `max_age` is the lease TTL: each entry
//! (key: session id, value: the owner's node id) vanishes that long after
//! its last write. Debian's nats-server 2.9 has no per-key TTL, so the
//! bucket-wide age is the TTL, and an expired key leaves no delete event.
//! `acquire` is a KV create (refused while a live entry exists), `renew` an
//! update against the revision the owner last wrote, `release` a delete
//! against it.

use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use tokio::sync::{oneshot, watch};

use super::{ClusterError, LeaseTiming, LossReason, NodeId, Ownership, Step};

/// The bucket every node's leases live in.
pub const LEASE_BUCKET: &str = "syncreel_leases";

/// Why a lease call did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LeaseError {
    /// Another node holds the session's lease.
    #[error("the session is owned by node {by}")]
    Held { by: NodeId },
    /// The lease's revision moved (another node wrote it, or it expired
    /// and was taken): this node no longer owns the session.
    #[error("the lease was lost: its revision moved")]
    Lost,
    /// A session id that cannot be a KV key.
    #[error("{0:?} cannot be a lease key")]
    BadKey(String),
    /// NATS did not answer in time.
    #[error("NATS did not answer within {0:?}")]
    Timeout(Duration),
    /// NATS answered with an error.
    #[error("NATS: {0}")]
    Nats(String),
}

/// A lease this node holds: the session and the revision it last wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub session: String,
    /// The fencing token: the KV revision of this node's last write.
    pub revision: u64,
    /// When the write of `revision` was sent.
    pub written_at: Instant,
}

/// The lease bucket, as one node sees it.
#[derive(Clone)]
pub struct Leases {
    kv: kv::Store,
    node: NodeId,
    timing: LeaseTiming,
}

impl Leases {
    /// Opens the bucket, creating it (or setting its TTL to ours) first.
    /// Every node of a cluster must use the same TTL.
    pub async fn open(
        js: &async_nats::jetstream::Context,
        node: NodeId,
        timing: LeaseTiming,
    ) -> Result<Leases, ClusterError> {
        let kv = super::bucket(js, LEASE_BUCKET, timing.ttl, "cluster.lease_ttl_ms").await?;
        Ok(Leases { kv, node, timing })
    }

    pub fn node(&self) -> &NodeId {
        &self.node
    }

    pub fn timing(&self) -> LeaseTiming {
        self.timing
    }

    /// Takes the session's lease, unless a live one exists.
    pub async fn acquire(&self, session: &str) -> Result<Lease, LeaseError> {
        check_key(session)?;
        // The holder may vanish between the refusal and the read; then
        // the next create can succeed. Two rounds settle a race.
        for _ in 0..3 {
            let sent = Instant::now();
            let created = self.call(self.kv.create(session, self.value())).await?;
            match created {
                Ok(revision) => {
                    return Ok(Lease {
                        session: session.to_string(),
                        revision,
                        written_at: sent,
                    })
                }
                Err(err) if err.kind() == CreateErrorKind::AlreadyExists => {
                    if let Some((by, _)) = self.holder(session).await? {
                        return Err(LeaseError::Held { by });
                    }
                }
                Err(err) => return Err(LeaseError::Nats(err.to_string())),
            }
        }
        Err(LeaseError::Nats(
            "the lease kept changing hands while being taken".into(),
        ))
    }

    /// Writes the lease again against the revision this node last wrote.
    /// `Lost` if anyone else wrote it since (or it lapsed and was taken).
    pub async fn renew(&self, lease: &mut Lease) -> Result<(), LeaseError> {
        let sent = Instant::now();
        let updated = self
            .call(self.kv.update(&lease.session, self.value(), lease.revision))
            .await?;
        match updated {
            Ok(revision) => {
                lease.revision = revision;
                lease.written_at = sent;
                Ok(())
            }
            Err(err) if err.kind() == UpdateErrorKind::WrongLastRevision => Err(LeaseError::Lost),
            Err(err) => Err(LeaseError::Nats(err.to_string())),
        }
    }

    /// Gives the lease up at once (rather than letting it lapse), so that
    /// another node can take the session without waiting for the TTL.
    /// `Lost` if it was no longer ours; nothing is deleted then.
    pub async fn release(&self, lease: Lease) -> Result<(), LeaseError> {
        let deleted = self
            .call(
                self.kv
                    .delete_expect_revision(&lease.session, Some(lease.revision)),
            )
            .await?;
        deleted.map_err(|err| {
            // The server's "wrong last sequence" surfaces as a publish
            // error here; the revision check is the only one we ask for.
            if err.to_string().contains("wrong last sequence") {
                LeaseError::Lost
            } else {
                LeaseError::Nats(err.to_string())
            }
        })
    }

    /// Who holds the session's lease now, and at which revision.
    pub async fn holder(&self, session: &str) -> Result<Option<(NodeId, u64)>, LeaseError> {
        check_key(session)?;
        let entry = self
            .call(self.kv.entry(session))
            .await?
            .map_err(|e| LeaseError::Nats(e.to_string()))?;
        Ok(entry.and_then(|e| {
            if e.operation != Operation::Put {
                return None;
            }
            let name = std::str::from_utf8(&e.value).ok()?;
            Some((NodeId::new(name).ok()?, e.revision))
        }))
    }

    /// Keeps `lease` renewed on a task of its own until it is released,
    /// abandoned or lost. The caller owns the returned handle and must stop
    /// acting as the owner the moment [`Holding::lost`] resolves.
    pub fn hold(&self, lease: Lease) -> Holding {
        let own = Ownership::acquired(self.timing, lease.revision, lease.written_at);
        let (state_tx, state) = watch::channel(HoldState::Owner {
            revision: lease.revision,
        });
        let (stop_tx, stop) = oneshot::channel();
        tokio::spawn(renew_loop(self.clone(), lease, own, state_tx, stop));
        Holding {
            state,
            stop: Some(stop_tx),
        }
    }

    fn value(&self) -> bytes::Bytes {
        bytes::Bytes::from(self.node.as_str().to_string())
    }

    /// Every NATS call is bounded by the renewal interval: an answer later
    /// than that is as good as none for a lease.
    async fn call<T>(&self, fut: impl std::future::Future<Output = T>) -> Result<T, LeaseError> {
        let limit = self.timing.renew_every;
        tokio::time::timeout(limit, fut)
            .await
            .map_err(|_| LeaseError::Timeout(limit))
    }
}

fn check_key(session: &str) -> Result<(), LeaseError> {
    let ok = !session.is_empty()
        && session.len() <= 128
        && !session.starts_with('.')
        && !session.ends_with('.')
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_=/.".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(LeaseError::BadKey(session.to_string()))
    }
}

/// What the owner of a held lease sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HoldState {
    /// Still the owner; `revision` is the fencing token for its writes.
    Owner { revision: u64 },
    /// No longer the owner.
    Lost(LossReason),
}

/// How a held lease ends when its holder lets go.
enum Stop {
    /// Delete the entry at once.
    Release(oneshot::Sender<Result<(), LeaseError>>),
    /// Stop renewing and leave the entry to lapse, as a dead node would.
    Abandon,
}

/// A lease kept renewed by a task; dropping it abandons the lease (it
/// lapses after the TTL).
pub struct Holding {
    state: watch::Receiver<HoldState>,
    stop: Option<oneshot::Sender<Stop>>,
}

impl Holding {
    /// The owner's state, to watch.
    pub fn state(&self) -> watch::Receiver<HoldState> {
        self.state.clone()
    }

    /// The fencing token, while this node is the owner.
    pub fn revision(&self) -> Option<u64> {
        match *self.state.borrow() {
            HoldState::Owner { revision } => Some(revision),
            HoldState::Lost(_) => None,
        }
    }

    /// Resolves when the lease is lost, with why.
    pub async fn lost(&mut self) -> LossReason {
        loop {
            if let HoldState::Lost(why) = *self.state.borrow_and_update() {
                return why;
            }
            if self.state.changed().await.is_err() {
                // The task is gone without saying: it cannot renew.
                return LossReason::Expired;
            }
        }
    }

    /// Stops renewing and deletes the entry, so another node can take the
    /// session at once. `Lost` if it was not ours any more.
    pub async fn release(mut self) -> Result<(), LeaseError> {
        let (done_tx, done) = oneshot::channel();
        let Some(stop) = self.stop.take() else {
            return Err(LeaseError::Lost);
        };
        if stop.send(Stop::Release(done_tx)).is_err() {
            return Err(LeaseError::Lost);
        }
        done.await.unwrap_or(Err(LeaseError::Lost))
    }

    /// Stops renewing without deleting: the lease lapses after its TTL, as
    /// it does when the node dies.
    pub fn abandon(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::Abandon);
        }
    }
}

impl Drop for Holding {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(Stop::Abandon);
        }
    }
}

async fn renew_loop(
    leases: Leases,
    mut lease: Lease,
    mut own: Ownership,
    state: watch::Sender<HoldState>,
    mut stop: oneshot::Receiver<Stop>,
) {
    // Bounded by the lease's life: it ends on loss, release or abandon,
    // and loss comes at most one TTL after the last confirmed renewal.
    loop {
        let step = own.poll(Instant::now());
        match step {
            Step::Lost(why) => {
                tracing::warn!(session = %lease.session, ?why, "session lease lost");
                let _ = state.send(HoldState::Lost(why));
                return;
            }
            Step::WaitUntil(until) => {
                tokio::select! {
                    () = tokio::time::sleep_until(until.into()) => {}
                    how = &mut stop => {
                        finish(&leases, lease, &mut own, &state, how.unwrap_or(Stop::Abandon)).await;
                        return;
                    }
                }
            }
            Step::Renew => {
                own.renewing(Instant::now());
                // The answer must come before the lease runs out: past
                // that, this node stops owning whatever the answer says.
                let deadline = own.valid_until();
                let renewed = tokio::select! {
                    r = leases.renew(&mut lease) => r,
                    () = tokio::time::sleep_until(deadline.into()) => Err(LeaseError::Timeout(leases.timing.renew_every)),
                    how = &mut stop => {
                        finish(&leases, lease, &mut own, &state, how.unwrap_or(Stop::Abandon)).await;
                        return;
                    }
                };
                match renewed {
                    Ok(()) => {
                        own.renewed(lease.revision);
                        let _ = state.send(HoldState::Owner {
                            revision: own.revision(),
                        });
                    }
                    Err(LeaseError::Lost) => own.refused(),
                    Err(err) => {
                        tracing::debug!(session = %lease.session, %err, "lease renewal failed; retrying");
                        own.failed();
                    }
                }
            }
        }
    }
}

async fn finish(
    leases: &Leases,
    lease: Lease,
    own: &mut Ownership,
    state: &watch::Sender<HoldState>,
    how: Stop,
) {
    own.released();
    let _ = state.send(HoldState::Lost(LossReason::Released));
    if let Stop::Release(done) = how {
        // The revision we hold may be older than the server's if a renewal
        // was cut short; then the delete is refused and the entry lapses.
        let _ = done.send(leases.release(lease).await);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids_that_are_not_kv_keys_are_refused() {
        assert!(check_key("a1b2-c3_d4").is_ok());
        for bad in ["", ".a", "a.", "a b", "a*", "a>", "é"] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"a".repeat(129)).is_err());
    }
}
