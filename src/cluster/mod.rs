//! Cluster mode (issue 14; docs/cluster.md): nodes of one SyncReel cluster
//! meet in NATS JetStream. Built so far: who owns each live session
//! (`leases`, a KV bucket with a lease per session) and how loaded each
//! node is (`nodes`, a KV bucket with an entry per node), with the pure
//! decisions (`lease`: when to renew, when a lease counts as lost; `load`:
//! where a new session goes) apart from the NATS calls; and the gateway's
//! wire (`relay`), which carries a participant's connection to the node
//! that owns its session, and the media relay (`media`), which carries
//! its pictures and sound once to each node with viewers.
//!
//! An edge: it imports none of `live`, `protocol`, `http`, `ws` (nor
//! `config`, which imports it). The runtime tells it what to publish and
//! reacts to what it reports (a lost lease) through channels it owns.

mod lease;
mod leases;
mod load;
mod media;
mod node_id;
mod nodes;
mod relay;
mod settings;

use std::time::Duration;

pub use lease::{LeaseTiming, LossReason, Ownership, Step};
pub use leases::{HoldState, Holding, Lease, LeaseError, Leases, LEASE_BUCKET};
pub use load::{least_loaded, LoadParseError, NodeLoad};
pub use media::{MediaCounts, MediaGrant, MediaRelay, MediaRelayError, MediaSource};
pub use node_id::{NodeId, NodeIdError};
pub use nodes::{CpuMeter, Nodes, NODE_BUCKET};
pub use relay::{
    Accepted, Arrival, Ended, Handover, Handovers, Relay, RelayBack, RelayError, RelayFrame,
    RelayLink,
};
pub use settings::ClusterConfig;

/// Why the cluster could not be joined or a cluster call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterError {
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("JetStream bucket {bucket}: {reason}")]
    Bucket { bucket: String, reason: String },
    #[error("NATS did not answer within {0:?}")]
    Timeout(Duration),
    #[error("NATS: {0}")]
    Nats(String),
}

/// This node's membership: its name, its NATS connection and the two
/// buckets.
#[derive(Clone)]
pub struct Cluster {
    pub node: NodeId,
    pub leases: Leases,
    pub nodes: Nodes,
    /// Participants' connections carried to the owner of their session.
    pub relay: Relay,
    /// Pictures and sound across nodes; `None` with `relay_media = false`
    /// (a relayed viewer's peer is then the owner's).
    pub media: Option<std::sync::Arc<MediaRelay>>,
    client: async_nats::Client,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.node).finish()
    }
}

/// How long joining may take before the server refuses to start.
const JOIN_TIMEOUT: Duration = Duration::from_secs(10);

impl Cluster {
    /// Connects to `settings.nats_url` and opens (or creates) the buckets.
    pub async fn join(settings: &ClusterConfig) -> Result<Cluster, ClusterError> {
        let node = if settings.node_id.is_empty() {
            NodeId::random()
        } else {
            NodeId::new(&settings.node_id).map_err(|e| ClusterError::Connect {
                url: settings.nats_url.clone(),
                reason: e.to_string(),
            })?
        };
        let joining = async {
            let client = async_nats::ConnectOptions::new()
                .name(format!("syncreel {node}"))
                .connection_timeout(JOIN_TIMEOUT)
                .connect(settings.nats_url.as_str())
                .await
                .map_err(|e| ClusterError::Connect {
                    url: settings.nats_url.clone(),
                    reason: e.to_string(),
                })?;
            let js = async_nats::jetstream::new(client.clone());
            let timing = settings.lease_timing();
            let leases = Leases::open(&js, node.clone(), timing).await?;
            let nodes =
                Nodes::open(&js, node.clone(), settings.node_ttl(), timing.renew_every).await?;
            let media = if settings.relay_media {
                Some(
                    MediaRelay::start(client.clone(), node.clone(), settings.media_part_bytes)
                        .await?,
                )
            } else {
                None
            };
            Ok(Cluster {
                node: node.clone(),
                leases,
                nodes,
                relay: Relay::new(client.clone(), node.clone()),
                media,
                client,
            })
        };
        tokio::time::timeout(JOIN_TIMEOUT, joining)
            .await
            .map_err(|_| ClusterError::Connect {
                url: settings.nats_url.clone(),
                reason: format!("no answer within {JOIN_TIMEOUT:?}"),
            })?
    }

    /// Whether this node's NATS connection is up now. While it is not,
    /// the node can neither renew leases nor ask who holds one, so it
    /// serves no session it does not already run (docs/cluster.md, "NATS
    /// loss"); async-nats reconnects by itself.
    pub fn connected(&self) -> bool {
        self.client.connection_state() == async_nats::connection::State::Connected
    }

    /// Closes the NATS connection after what was sent has gone out. The
    /// node's leases are not released by this: release them first, or
    /// they lapse after their TTL.
    pub async fn leave(&self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.client.drain()).await;
    }
}

/// Opens bucket `name` with entries living `max_age` after their last
/// write, creating it or bringing its age to ours.
///
/// async-nats's own `create_key_value` first reads the account's JetStream
/// info into a struct that wants fields nats-server 2.9 does not send
/// (`reserved_memory`), so it fails against Debian's server. The bucket is
/// a stream by the KV conventions, so we make that stream ourselves, with
/// the settings `kv_to_stream_config` (async-nats 0.46) gives a bucket,
/// and open it as a bucket.
///
/// Every node must give a bucket the same age (`setting` names it): the
/// age is the bucket's, not each node's, and a node that changed it would
/// shorten or stretch every other node's leases. So a node whose age
/// differs is refused while the bucket holds live entries (other nodes
/// use it); an empty bucket takes the age of the node that opens it.
async fn bucket(
    js: &async_nats::jetstream::Context,
    name: &str,
    max_age: Duration,
    setting: &str,
) -> Result<async_nats::jetstream::kv::Store, ClusterError> {
    use async_nats::jetstream::stream::{Config, DiscardPolicy, StorageType};
    let failed = |reason: String| ClusterError::Bucket {
        bucket: name.to_string(),
        reason,
    };
    if let Ok(existing) = js.get_stream(format!("KV_{name}")).await {
        let info = existing.cached_info();
        if info.config.max_age != max_age && info.state.messages > 0 {
            return Err(failed(format!(
                "the cluster's nodes use {setting} = {}, this node {}: every node must use \
                 the same (set it to theirs, or stop them all to change it)",
                info.config.max_age.as_millis(),
                max_age.as_millis()
            )));
        }
    }
    let stream = Config {
        name: format!("KV_{name}"),
        description: Some(format!("SyncReel {name}")),
        subjects: vec![format!("$KV.{name}.>")],
        // One value per key: the lease or load now, no history.
        max_messages_per_subject: 1,
        max_age,
        storage: StorageType::File,
        allow_rollup: true,
        deny_delete: true,
        deny_purge: false,
        allow_direct: true,
        num_replicas: 1,
        discard: DiscardPolicy::New,
        ..Default::default()
    };
    js.create_or_update_stream(stream)
        .await
        .map_err(|e| failed(e.to_string()))?;
    js.get_key_value(name)
        .await
        .map_err(|e| failed(e.to_string()))
}
