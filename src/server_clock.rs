//! The server's monotonic clock: where [`ServerTime`] comes from.
//!
//! Not in the pure `clock` module, which never reads the system clock, and
//! not in `live`, which owns it: the media players pace themselves by it
//! too, and an edge must not import `live`.

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
