//! The `[cluster]` section of the configuration. It lives here rather than
//! in `config` so that the cluster never imports `config` (which imports
//! it): the settings flow one way.

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterConfig {
    /// `nats://host:port` of a JetStream-enabled nats-server. Empty: this
    /// is a single node and no NATS code runs.
    pub nats_url: String,
    /// This node's name in the cluster (letters, digits, `-`, `_`; at most
    /// 64). Empty: a random one at each start.
    pub node_id: String,
    /// How long a session's lease outlives its owner's last renewal: the
    /// lease bucket's `max_age`, so the time a dead owner blocks a takeover.
    pub lease_ttl_ms: u64,
    /// How often an owner renews each lease; at most half the TTL, so that
    /// one lost renewal does not lose the lease.
    pub lease_renew_ms: u64,
    /// How often this node publishes its load.
    pub load_interval_ms: u64,
    /// How long a node's load entry outlives its last publication: a node
    /// that stops publishing (dead) leaves placement after this.
    pub node_ttl_ms: u64,
    /// A drained node is never picked for new sessions.
    pub drained: bool,
    /// New sessions run on the least loaded node (by the loads nodes
    /// publish), wherever they are created; `false`: on the node asked.
    pub place_sessions: bool,
    /// A relayed viewer's WebRTC peer is its own node's: the owner
    /// publishes each picture once on NATS for every node with viewers.
    /// `false`: the peer is the owner's (its ICE candidates must then be
    /// reachable from the browser).
    pub relay_media: bool,
    /// A transport change is broadcast once the record has committed it,
    /// waiting at most this long: an owner killed just after a seek
    /// leaves the seek in the record for the node taking over.
    pub transport_commit_wait_ms: u64,
    /// The largest NATS message a relayed picture is sent in; a larger
    /// picture (a keyframe of a big stream) goes in parts. Also never
    /// more than the server's `max_payload`.
    pub media_part_bytes: usize,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            nats_url: String::new(),
            node_id: String::new(),
            lease_ttl_ms: 3_000,
            lease_renew_ms: 1_000,
            load_interval_ms: 1_000,
            node_ttl_ms: 5_000,
            drained: false,
            place_sessions: true,
            relay_media: true,
            transport_commit_wait_ms: 100,
            media_part_bytes: 256 * 1024,
        }
    }
}

impl ClusterConfig {
    /// Whether this server joins a cluster at all.
    pub fn enabled(&self) -> bool {
        !self.nats_url.is_empty()
    }

    pub fn lease_timing(&self) -> super::LeaseTiming {
        super::LeaseTiming {
            ttl: Duration::from_millis(self.lease_ttl_ms),
            renew_every: Duration::from_millis(self.lease_renew_ms),
        }
    }

    pub fn load_interval(&self) -> Duration {
        Duration::from_millis(self.load_interval_ms)
    }

    /// How long a transport change waits for its commit; `None` on a
    /// single node, whose record nobody else reads while it runs.
    pub fn transport_commit_wait(&self) -> Option<Duration> {
        self.enabled()
            .then(|| Duration::from_millis(self.transport_commit_wait_ms))
    }

    pub fn node_ttl(&self) -> Duration {
        Duration::from_millis(self.node_ttl_ms)
    }

    /// What the schema cannot check. The error is the sentence to show.
    pub fn validate(&self) -> Result<(), String> {
        if !self.nats_url.is_empty() && !self.nats_url.starts_with("nats://") {
            return Err(format!(
                "cluster.nats_url must be a nats:// URL (got {:?})",
                self.nats_url
            ));
        }
        if !self.node_id.is_empty() {
            super::NodeId::new(&self.node_id).map_err(|e| format!("cluster.node_id: {e}"))?;
        }
        // nats-server expires by max_age on a timer of its own; below half
        // a second the lease would be mostly expiry jitter.
        if self.lease_ttl_ms < 500 {
            return Err("cluster.lease_ttl_ms must be at least 500".into());
        }
        if self.lease_renew_ms == 0 || self.lease_renew_ms * 2 > self.lease_ttl_ms {
            return Err(
                "cluster.lease_renew_ms must be positive and at most half of cluster.lease_ttl_ms"
                    .into(),
            );
        }
        if self.node_ttl_ms < 500 {
            return Err("cluster.node_ttl_ms must be at least 500".into());
        }
        if self.load_interval_ms == 0 || self.load_interval_ms * 2 > self.node_ttl_ms {
            return Err(
                "cluster.load_interval_ms must be positive and at most half of cluster.node_ttl_ms"
                    .into(),
            );
        }
        // A change is scheduled at most 500 ms ahead (the lead's ceiling):
        // waiting longer would always broadcast it late.
        if self.media_part_bytes < 1024 {
            return Err("cluster.media_part_bytes must be at least 1024".into());
        }
        if self.transport_commit_wait_ms > 250 {
            return Err("cluster.transport_commit_wait_ms must be at most 250".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_single_node() {
        let c = ClusterConfig::default();
        assert_eq!(c.validate(), Ok(()));
        assert!(!c.enabled());
    }

    #[test]
    fn a_renewal_that_cannot_fit_twice_in_the_ttl_is_refused() {
        let bad = [
            ClusterConfig {
                lease_renew_ms: 2_000,
                ..Default::default()
            },
            ClusterConfig {
                lease_ttl_ms: 100,
                lease_renew_ms: 50,
                ..Default::default()
            },
            ClusterConfig {
                load_interval_ms: 0,
                ..Default::default()
            },
            ClusterConfig {
                nats_url: "http://127.0.0.1:4222".into(),
                ..Default::default()
            },
            ClusterConfig {
                node_id: "a.b".into(),
                ..Default::default()
            },
            ClusterConfig {
                transport_commit_wait_ms: 251,
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
    }
}
