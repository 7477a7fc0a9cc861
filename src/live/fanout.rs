//! How long a room takes to write one broadcast to every connection, so
//! that the lead covers it.
//!
//! A broadcast is serialized once and queued to every connection by the
//! session task; each connection's writer task puts it on its socket when
//! the runtime gets round to it. In a room of thousands on two cores the
//! last writer runs a good fraction of a second after the first, and a
//! transport change it carries must still be on the wire before its
//! `execute_at`. The writers report how long each copy waited; the session
//! task keeps the worst of the recent broadcasts and adds it to the lead.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Shared by a session task and the writers of its connections.
#[derive(Debug, Default)]
pub struct FanoutMeter {
    /// The longest queued-to-written time reported since the session task
    /// last looked, in microseconds; 0 when nothing was.
    worst_micros: AtomicU64,
}

impl FanoutMeter {
    fn observe(&self, waited: Duration) {
        let micros = u64::try_from(waited.as_micros()).unwrap_or(u64::MAX).max(1);
        self.worst_micros.fetch_max(micros, Relaxed);
    }

    fn take(&self) -> Option<Duration> {
        match self.worst_micros.swap(0, Relaxed) {
            0 => None,
            micros => Some(Duration::from_micros(micros)),
        }
    }
}

/// One broadcast's timing, shared by all of its copies.
#[derive(Debug)]
pub struct Stamp {
    pub queued_at: Instant,
    /// A transport change's `execute_at`: a copy written after it is late.
    pub due: Option<Instant>,
    pub meter: Arc<FanoutMeter>,
}

/// What a writer found when its copy of a broadcast reached the socket.
pub struct Written {
    pub waited: Duration,
    /// `None` when the broadcast had no deadline.
    pub on_time: Option<bool>,
}

impl Stamp {
    /// Called by a writer once its copy is flushed to the socket.
    pub fn written(&self, now: Instant) -> Written {
        let waited = now.saturating_duration_since(self.queued_at);
        self.meter.observe(waited);
        Written {
            waited,
            on_time: self.due.map(|due| now <= due),
        }
    }
}

/// The session task's estimate: the worst fan-out of the current and the
/// previous window, held when the room has been quiet, since a quiet room
/// of 5,000 takes as long to reach as a busy one.
#[derive(Debug)]
pub struct FanoutEstimate {
    window: Duration,
    window_start: Instant,
    current: Duration,
    previous: Duration,
}

/// Long enough to span a few presence flushes, short enough that a room
/// that has emptied stops paying for the crowd it had within seconds.
const WINDOW: Duration = Duration::from_secs(5);

impl FanoutEstimate {
    pub fn new(now: Instant) -> FanoutEstimate {
        FanoutEstimate {
            window: WINDOW,
            window_start: now,
            current: Duration::ZERO,
            previous: Duration::ZERO,
        }
    }

    /// Folds in what the writers reported and returns the estimate.
    pub fn update(&mut self, meter: &FanoutMeter, now: Instant) -> Duration {
        if now.saturating_duration_since(self.window_start) >= self.window {
            // An empty window keeps the last measure rather than forget it.
            if !self.current.is_zero() {
                self.previous = self.current;
            }
            self.current = Duration::ZERO;
            self.window_start = now;
        }
        if let Some(worst) = meter.take() {
            self.current = self.current.max(worst);
        }
        self.current.max(self.previous)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(meter: &Arc<FanoutMeter>, at: Instant, due: Option<Instant>) -> Stamp {
        Stamp {
            queued_at: at,
            due,
            meter: meter.clone(),
        }
    }

    #[test]
    fn the_slowest_copy_of_a_broadcast_sets_the_estimate() {
        let t0 = Instant::now();
        let meter = Arc::new(FanoutMeter::default());
        let mut estimate = FanoutEstimate::new(t0);
        assert_eq!(estimate.update(&meter, t0), Duration::ZERO);
        let s = stamp(&meter, t0, Some(t0 + Duration::from_millis(100)));
        let fast = s.written(t0 + Duration::from_millis(3));
        let slow = s.written(t0 + Duration::from_millis(140));
        assert_eq!(fast.on_time, Some(true));
        assert_eq!(slow.on_time, Some(false));
        assert_eq!(slow.waited, Duration::from_millis(140));
        let now = t0 + Duration::from_millis(150);
        assert_eq!(estimate.update(&meter, now), Duration::from_millis(140));
        // Read once: a later, faster broadcast does not lower the window's
        // worst.
        stamp(&meter, now, None).written(now + Duration::from_millis(20));
        assert_eq!(estimate.update(&meter, now), Duration::from_millis(140));
    }

    #[test]
    fn a_quiet_room_keeps_its_last_measure_and_a_smaller_room_lets_it_go() {
        let t0 = Instant::now();
        let meter = Arc::new(FanoutMeter::default());
        let mut estimate = FanoutEstimate::new(t0);
        stamp(&meter, t0, None).written(t0 + Duration::from_millis(200));
        assert_eq!(estimate.update(&meter, t0), Duration::from_millis(200));
        // Nothing broadcast for a long while: the measure is held.
        let later = t0 + WINDOW * 10;
        assert_eq!(estimate.update(&meter, later), Duration::from_millis(200));
        // The room shrank: two windows of quick broadcasts replace it.
        for k in 1..=2 {
            let t = later + WINDOW * k;
            stamp(&meter, t, None).written(t + Duration::from_millis(5));
            estimate.update(&meter, t);
        }
        let t = later + WINDOW * 3;
        stamp(&meter, t, None).written(t + Duration::from_millis(5));
        assert_eq!(estimate.update(&meter, t), Duration::from_millis(5));
    }
}
