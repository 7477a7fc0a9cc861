//! The system's clocks, read at the edges: the monotonic server clock that
//! [`ServerTime`] counts on, and wall-clock milliseconds for the record.
//! The pure core (`clock`, `session`) never reads either; it is handed
//! `now`. Media, RTC and the record take a [`ServerClock`] from here
//! rather than from the live runtime.

use std::time::{Duration, Instant};

use crate::clock::ServerTime;

/// The server's monotonic clock. [`ServerTime`] is measured from `epoch`.
#[derive(Debug, Clone, Copy)]
pub struct ServerClock {
    epoch: Instant,
}

impl ServerClock {
    pub fn start() -> ServerClock {
        ServerClock {
            epoch: Instant::now(),
        }
    }

    pub fn now(&self) -> ServerTime {
        self.at(Instant::now())
    }

    pub fn at(&self, instant: Instant) -> ServerTime {
        let micros = instant.saturating_duration_since(self.epoch).as_micros();
        ServerTime::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
    }

    pub fn instant(&self, t: ServerTime) -> Instant {
        self.epoch + Duration::from_micros(t.as_micros().max(0) as u64)
    }
}

/// Milliseconds since the Unix epoch, for records people read.
pub fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
