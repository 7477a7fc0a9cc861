//! Process-wide counters, rendered as Prometheus text at `/metrics`.
//!
//! Plain atomics rather than a metrics crate: the set is small and fixed,
//! and updating a relaxed atomic on the fan-out path costs next to nothing.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Upper bounds of the fan-out latency buckets, in microseconds.
const FANOUT_BUCKETS_MICROS: [u64; 12] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

#[derive(Debug, Default)]
pub struct Metrics {
    pub connections_open: AtomicI64,
    /// Every open TCP socket, WebSocket or not.
    pub sockets_open: AtomicI64,
    /// Sockets refused for going over the per-address cap.
    pub sockets_refused: AtomicU64,
    pub connections_total: AtomicU64,
    pub sessions_live: AtomicI64,
    /// Sessions whose players (and their pipelines) are running.
    pub media_pipelines: std::sync::Arc<AtomicI64>,
    /// Session players started again after a failure.
    pub media_restarts: std::sync::Arc<AtomicU64>,
    /// Pictures players sent more than a frame after their instant.
    pub media_late_pictures: std::sync::Arc<AtomicU64>,
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub rejected_in: AtomicU64,
    pub slow_consumer_resyncs: AtomicU64,
    /// Parts of strokes in progress not queued for a full connection.
    pub stroke_parts_missed: AtomicU64,
    /// Copies of a driver's transport change written before its
    /// `execute_at`, and after it.
    pub transport_on_time: AtomicU64,
    pub transport_late: AtomicU64,
    /// Transport changes broadcast before the record committed them
    /// (cluster mode, past `cluster.transport_commit_wait_ms`).
    pub transport_commit_late: AtomicU64,
    /// Wrong passcodes given for links (hellos and REST calls).
    pub passcode_failures: AtomicU64,
    /// Passcodes not checked because the link or address was locked.
    pub passcode_locked: AtomicU64,
    /// Session leases this node holds (cluster mode).
    pub cluster_leases_held: AtomicI64,
    /// Session leases lost, or not taken because another node held them.
    pub cluster_lease_losses: AtomicU64,
    /// Connections this node has relayed to the owner of their session
    /// (cluster mode, as a gateway).
    pub relayed_connections: AtomicU64,
    fanout: Histogram,
}

#[derive(Debug, Default)]
struct Histogram {
    buckets: [AtomicU64; FANOUT_BUCKETS_MICROS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Metrics {
    /// Records how long a broadcast took from leaving the session task to
    /// being written to one participant's socket, and whether it was on
    /// time when it had a deadline.
    pub fn observe_fanout(&self, latency: Duration, on_time: Option<bool>) {
        match on_time {
            Some(true) => self.transport_on_time.fetch_add(1, Relaxed),
            Some(false) => self.transport_late.fetch_add(1, Relaxed),
            None => 0,
        };
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        let h = &self.fanout;
        if let Some(i) = FANOUT_BUCKETS_MICROS.iter().position(|b| micros <= *b) {
            h.buckets[i].fetch_add(1, Relaxed);
        }
        h.count.fetch_add(1, Relaxed);
        h.sum_micros.fetch_add(micros, Relaxed);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(2048);
        let gauge = |out: &mut String, name: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        let counter = |out: &mut String, name: &str, help: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
            );
        };
        gauge(
            &mut out,
            "syncreel_connections",
            "Open WebSocket connections.",
            self.connections_open.load(Relaxed),
        );
        gauge(
            &mut out,
            "syncreel_sockets",
            "Open TCP sockets, HTTP and WebSocket.",
            self.sockets_open.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_sockets_refused_total",
            "Sockets refused for going over limits.max_connections_per_ip.",
            self.sockets_refused.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_connections_total",
            "WebSocket connections accepted.",
            self.connections_total.load(Relaxed),
        );
        gauge(
            &mut out,
            "syncreel_sessions",
            "Live sessions.",
            self.sessions_live.load(Relaxed),
        );
        gauge(
            &mut out,
            "syncreel_media_pipelines",
            "Sessions whose media players and pipelines are running (someone watches, or did within media.idle_teardown_ms).",
            self.media_pipelines.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_media_restarts_total",
            "Session media players started again after a failure (media.restart_attempts).",
            self.media_restarts.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_media_late_pictures_total",
            "Pictures session players sent more than a frame after their instant: the node is short of CPU for its streams.",
            self.media_late_pictures.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_messages_in_total",
            "WebSocket messages received.",
            self.messages_in.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_messages_out_total",
            "WebSocket messages sent.",
            self.messages_out.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_messages_rejected_total",
            "Messages answered with a typed error.",
            self.rejected_in.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_slow_consumer_resyncs_total",
            "Times a slow connection was resynced with a snapshot.",
            self.slow_consumer_resyncs.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_stroke_parts_missed_total",
            "Parts of strokes in progress skipped for a connection whose queue was full.",
            self.stroke_parts_missed.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_transport_on_time_total",
            "Copies of a driver's transport change written to their socket before its execute_at.",
            self.transport_on_time.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_transport_late_total",
            "Copies of a driver's transport change written after its execute_at.",
            self.transport_late.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_transport_commit_late_total",
            "Transport changes broadcast before the record had committed them (cluster mode).",
            self.transport_commit_late.load(Relaxed),
        );
        gauge(
            &mut out,
            "syncreel_cluster_leases",
            "Session ownership leases this node holds (cluster mode).",
            self.cluster_leases_held.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_cluster_lease_losses_total",
            "Session leases lost, or not taken because another node held them (cluster mode).",
            self.cluster_lease_losses.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_relayed_connections_total",
            "Connections relayed to the node that owns their session (cluster mode, as a gateway).",
            self.relayed_connections.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_passcode_failures_total",
            "Wrong passcodes given for links.",
            self.passcode_failures.load(Relaxed),
        );
        counter(
            &mut out,
            "syncreel_passcode_locked_total",
            "Passcodes refused unchecked because the link or address was locked.",
            self.passcode_locked.load(Relaxed),
        );

        let name = "syncreel_fanout_latency_seconds";
        let _ = writeln!(out, "# HELP {name} Time from a broadcast leaving the session task to its write on each socket.\n# TYPE {name} histogram");
        let mut cumulative = 0;
        for (bound, bucket) in FANOUT_BUCKETS_MICROS.iter().zip(&self.fanout.buckets) {
            cumulative += bucket.load(Relaxed);
            let le = *bound as f64 / 1e6;
            let _ = writeln!(out, "{name}_bucket{{le=\"{le}\"}} {cumulative}");
        }
        let count = self.fanout.count.load(Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.fanout.sum_micros.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}\n{name}_count {count}");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe_fanout(Duration::from_micros(90), None);
        m.observe_fanout(Duration::from_micros(3_000), Some(true));
        m.observe_fanout(Duration::from_secs(5), Some(false));
        let text = m.render();
        assert!(text.contains("syncreel_fanout_latency_seconds_bucket{le=\"0.0001\"} 1\n"));
        assert!(text.contains("syncreel_fanout_latency_seconds_bucket{le=\"0.005\"} 2\n"));
        assert!(text.contains("syncreel_fanout_latency_seconds_bucket{le=\"1\"} 2\n"));
        assert!(text.contains("syncreel_fanout_latency_seconds_bucket{le=\"+Inf\"} 3\n"));
        assert!(text.contains("syncreel_fanout_latency_seconds_count 3\n"));
        assert!(text.contains("syncreel_transport_on_time_total 1\n"));
        assert!(text.contains("syncreel_transport_late_total 1\n"));
    }
}
