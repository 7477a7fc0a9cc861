//! Node load in a JetStream KV bucket: each node writes its own entry
//! every `load_interval`, and the bucket's `max_age` (`node_ttl`) removes
//! the entry of a node that stopped writing (dead), so placement only ever
//! sees live nodes.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::kv;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{least_loaded, ClusterError, NodeId, NodeLoad};

/// The bucket every node's load lives in.
pub const NODE_BUCKET: &str = "syncreel_nodes";

/// Most node entries read at once: far above any cluster we plan for, and
/// a bound on a listing that an odd bucket could make long.
const MAX_NODES: usize = 1_024;

/// The node bucket, as one node sees it.
#[derive(Clone)]
pub struct Nodes {
    kv: kv::Store,
    node: NodeId,
    /// Bounds each call.
    timeout: Duration,
}

impl Nodes {
    pub async fn open(
        js: &async_nats::jetstream::Context,
        node: NodeId,
        ttl: Duration,
        timeout: Duration,
    ) -> Result<Nodes, ClusterError> {
        let kv = super::bucket(js, NODE_BUCKET, ttl, "cluster.node_ttl_ms").await?;
        Ok(Nodes { kv, node, timeout })
    }

    /// Writes this node's load.
    pub async fn publish(&self, load: &NodeLoad) -> Result<(), ClusterError> {
        let put = self.kv.put(self.node.as_str(), load.encode().into());
        tokio::time::timeout(self.timeout, put)
            .await
            .map_err(|_| ClusterError::Timeout(self.timeout))?
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        Ok(())
    }

    /// Removes this node's entry (a clean stop), so placement forgets it
    /// now rather than after its TTL.
    pub async fn withdraw(&self) -> Result<(), ClusterError> {
        let delete = self.kv.delete(self.node.as_str());
        tokio::time::timeout(self.timeout, delete)
            .await
            .map_err(|_| ClusterError::Timeout(self.timeout))?
            .map_err(|e| ClusterError::Nats(e.to_string()))
    }

    /// Every live node's last published load. An entry that cannot be read
    /// (a newer or broken node) is skipped, with a warning.
    pub async fn loads(&self) -> Result<BTreeMap<NodeId, NodeLoad>, ClusterError> {
        let listing = async {
            let mut keys = self
                .kv
                .keys()
                .await
                .map_err(|e| ClusterError::Nats(e.to_string()))?;
            let mut names = Vec::new();
            while let Some(key) = keys.next().await {
                names.push(key.map_err(|e| ClusterError::Nats(e.to_string()))?);
                if names.len() >= MAX_NODES {
                    break;
                }
            }
            let mut loads = BTreeMap::new();
            for name in names {
                let Some(value) = self
                    .kv
                    .get(name.as_str())
                    .await
                    .map_err(|e| ClusterError::Nats(e.to_string()))?
                else {
                    continue; // gone since the listing
                };
                let parsed = NodeId::new(&name)
                    .map_err(|e| e.to_string())
                    .and_then(|id| {
                        let text = std::str::from_utf8(&value).map_err(|e| e.to_string())?;
                        Ok((id, NodeLoad::decode(text).map_err(|e| e.to_string())?))
                    });
                match parsed {
                    Ok((id, load)) => {
                        loads.insert(id, load);
                    }
                    Err(err) => tracing::warn!(node = %name, %err, "unreadable node load entry"),
                }
            }
            Ok(loads)
        };
        tokio::time::timeout(self.timeout, listing)
            .await
            .map_err(|_| ClusterError::Timeout(self.timeout))?
    }

    /// Where a new session should go now (see [`least_loaded`]).
    pub async fn least_loaded(&self) -> Result<Option<NodeId>, ClusterError> {
        let loads = self.loads().await?;
        Ok(least_loaded(loads.iter()).cloned())
    }

    /// Publishes `load()` every `every` until `stop` turns true, then
    /// withdraws this node's entry. A failed publication is logged and
    /// retried at the next tick; the entry lapses if NATS stays away.
    pub fn publish_every(
        &self,
        every: Duration,
        mut load: impl FnMut() -> NodeLoad + Send + 'static,
        mut stop: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let nodes = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // Until shutdown: one publication per tick.
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    _ = stop.wait_for(|s| *s) => break,
                }
                if let Err(err) = nodes.publish(&load()).await {
                    tracing::warn!(%err, "node load not published");
                }
            }
            if let Err(err) = nodes.withdraw().await {
                tracing::debug!(%err, "node load entry not withdrawn; it lapses");
            }
        })
    }
}

/// The process's CPU use between two readings, from `getrusage`: cheap
/// enough to take every load interval.
#[derive(Debug)]
pub struct CpuMeter {
    last: Option<(std::time::Instant, Duration)>,
}

impl Default for CpuMeter {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuMeter {
    pub fn new() -> CpuMeter {
        CpuMeter { last: None }
    }

    /// Thousandths of one core used since the previous reading (0 at the
    /// first).
    pub fn permille(&mut self) -> u32 {
        let now = std::time::Instant::now();
        let used = process_cpu();
        let permille = match self.last {
            Some((then, before)) => {
                let wall = now.duration_since(then).as_micros().max(1);
                let cpu = used.saturating_sub(before).as_micros();
                u32::try_from(cpu * 1000 / wall).unwrap_or(u32::MAX)
            }
            None => 0,
        };
        self.last = Some((now, used));
        permille
    }
}

fn process_cpu() -> Duration {
    // SAFETY: getrusage writes into the struct we hand it and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut usage) != 0 {
            return Duration::ZERO;
        }
        usage
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    tv(usage.ru_utime) + tv(usage.ru_stime)
}
