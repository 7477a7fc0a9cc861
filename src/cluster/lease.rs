//! When an owner renews its lease and when it must stop believing it owns
//! the session: a sans-IO state machine in the manner of quinn-proto, with
//! `now` always passed in, so its tests step simulated time. The NATS calls
//! around it are in `leases`.
//!
//! Why two nodes never both believe they own a session: a lease entry
//! lives `ttl` after the server stored it, and the server stored it after
//! the owner sent the write. So the owner counts its lease from the send
//! instant of the last write the server confirmed, minus a margin for its
//! own timers firing late: it stops believing before the entry can expire,
//! and nobody else can create the entry before it expires. A renewal is an
//! update against the revision the owner last wrote, so once anyone else
//! has written the key (after expiry) the old owner's renewal is refused:
//! the revision is the fencing token.

use std::time::{Duration, Instant};

/// A lease's time to live and how often its owner renews it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// The lease bucket's `max_age`: how long an entry outlives its last write.
    pub ttl: Duration,
    /// How often the owner renews; at most half of `ttl` (config checks).
    pub renew_every: Duration,
}

impl LeaseTiming {
    /// The part of the TTL an owner does not count on: its timers may fire
    /// late on a loaded machine, and a scheduler stall must not let it
    /// believe past the entry's expiry.
    pub fn margin(&self) -> Duration {
        self.ttl / 10
    }
}

/// What the owner's loop does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Send a renewal now (then call [`Ownership::renewing`]).
    Renew,
    /// Nothing before this instant (unless a renewal's outcome arrives).
    WaitUntil(Instant),
    /// The lease is gone: stop acting as the session's owner.
    Lost(LossReason),
}

/// Why an owner stopped owning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LossReason {
    /// No renewal was confirmed within the TTL: the entry may have
    /// expired, and another node may hold the session by now.
    Expired,
    /// A renewal was refused because the key's revision moved: another
    /// node wrote it (or it was deleted).
    Superseded,
    /// The owner gave it up itself.
    Released,
}

/// One owner's view of one lease.
#[derive(Debug, Clone)]
pub struct Ownership {
    timing: LeaseTiming,
    /// The revision the owner last wrote: its fencing token.
    revision: u64,
    /// When the write of `revision` was sent; the entry lives at least
    /// `ttl` from here.
    written_at: Instant,
    /// When the last renewal was sent, confirmed or not.
    last_try: Instant,
    /// The send instant of a renewal whose answer has not come.
    in_flight: Option<Instant>,
    lost: Option<LossReason>,
}

impl Ownership {
    /// A lease just created at `revision` by a write sent at `sent_at`.
    pub fn acquired(timing: LeaseTiming, revision: u64, sent_at: Instant) -> Ownership {
        Ownership {
            timing,
            revision,
            written_at: sent_at,
            last_try: sent_at,
            in_flight: None,
            lost: None,
        }
    }

    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The last instant at which this owner may still act as the owner.
    pub fn valid_until(&self) -> Instant {
        self.written_at + self.timing.ttl.saturating_sub(self.timing.margin())
    }

    /// Whether this node may act as the session's owner at `now`.
    pub fn is_owner(&self, now: Instant) -> bool {
        self.lost.is_none() && now < self.valid_until()
    }

    pub fn lost(&self) -> Option<LossReason> {
        self.lost
    }

    pub fn poll(&mut self, now: Instant) -> Step {
        if let Some(reason) = self.lost {
            return Step::Lost(reason);
        }
        let until = self.valid_until();
        if now >= until {
            self.lost = Some(LossReason::Expired);
            return Step::Lost(LossReason::Expired);
        }
        if self.in_flight.is_some() {
            // Its answer decides; only expiry can come first.
            return Step::WaitUntil(until);
        }
        let due = self.last_try + self.timing.renew_every;
        if now >= due {
            Step::Renew
        } else {
            Step::WaitUntil(due.min(until))
        }
    }

    /// A renewal was sent at `now`.
    pub fn renewing(&mut self, now: Instant) {
        self.in_flight = Some(now);
        self.last_try = now;
    }

    /// The server stored the renewal as `revision`.
    pub fn renewed(&mut self, revision: u64) {
        if let Some(sent) = self.in_flight.take() {
            if self.lost.is_none() {
                self.written_at = self.written_at.max(sent);
                self.revision = revision;
            }
        }
    }

    /// The server refused the renewal: the key's revision is no longer ours.
    pub fn refused(&mut self) {
        self.in_flight = None;
        self.lost.get_or_insert(LossReason::Superseded);
    }

    /// The renewal got no answer (timeout, connection down): the next one
    /// goes at the next renewal tick, while the lease lasts.
    ///
    /// A renewal that timed out may still have landed; the next renewal
    /// then meets a moved revision and the lease counts as lost. That is
    /// the safe side: a spurious loss, never a second owner.
    pub fn failed(&mut self) {
        self.in_flight = None;
    }

    /// The owner gave the lease up.
    pub fn released(&mut self) {
        self.in_flight = None;
        self.lost.get_or_insert(LossReason::Released);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn timing() -> LeaseTiming {
        LeaseTiming {
            ttl: 3_000 * MS,
            renew_every: 1_000 * MS,
        }
    }

    /// Runs the owner's loop in simulated time: `answer(sent_at)` says
    /// what the server does with a renewal sent then (`Some(Ok(rev))`
    /// stored, `Some(Err(()))` refused, `None` no answer), answered after
    /// `rtt`. Returns the instant the owner stopped owning and why.
    fn run(
        own: &mut Ownership,
        start: Instant,
        end: Instant,
        rtt: Duration,
        mut answer: impl FnMut(Instant) -> Option<Result<u64, ()>>,
    ) -> Option<(Instant, LossReason)> {
        let mut now = start;
        for _ in 0..10_000 {
            if now >= end {
                return None;
            }
            match own.poll(now) {
                Step::Renew => {
                    own.renewing(now);
                    let outcome = answer(now);
                    now += rtt;
                    // The answer may come after the lease ran out.
                    if let Step::Lost(why) = own.poll(now) {
                        return Some((now, why));
                    }
                    match outcome {
                        Some(Ok(rev)) => own.renewed(rev),
                        Some(Err(())) => own.refused(),
                        None => own.failed(),
                    }
                }
                Step::WaitUntil(t) => {
                    assert!(t > now, "a wait must move time on");
                    now = t.min(end);
                }
                Step::Lost(why) => return Some((now, why)),
            }
        }
        panic!("the loop did not settle");
    }

    #[test]
    fn an_owner_that_is_answered_keeps_its_lease_for_ever() {
        let t0 = Instant::now();
        let mut own = Ownership::acquired(timing(), 7, t0);
        let mut rev = 7;
        let lost = run(&mut own, t0, t0 + 60_000 * MS, 5 * MS, |_| {
            rev += 1;
            Some(Ok(rev))
        });
        assert_eq!(lost, None);
        assert!(own.is_owner(t0 + 60_000 * MS));
        assert!(own.revision() > 7, "each renewal moves the fencing token");
    }

    #[test]
    fn renewals_go_every_interval_not_more_often() {
        let t0 = Instant::now();
        let mut own = Ownership::acquired(timing(), 1, t0);
        assert_eq!(own.poll(t0), Step::WaitUntil(t0 + 1_000 * MS));
        assert_eq!(own.poll(t0 + 999 * MS), Step::WaitUntil(t0 + 1_000 * MS));
        assert_eq!(own.poll(t0 + 1_000 * MS), Step::Renew);
        own.renewing(t0 + 1_000 * MS);
        // While it is in flight, only expiry can come first.
        assert_eq!(own.poll(t0 + 1_001 * MS), Step::WaitUntil(t0 + 2_700 * MS));
        own.renewed(2);
        assert_eq!(own.revision(), 2);
        assert_eq!(own.valid_until(), t0 + 3_700 * MS);
        assert_eq!(own.poll(t0 + 1_010 * MS), Step::WaitUntil(t0 + 2_000 * MS));
    }

    #[test]
    fn an_owner_cut_off_stops_owning_before_its_entry_can_expire() {
        let t0 = Instant::now();
        let mut own = Ownership::acquired(timing(), 1, t0);
        // Renewals go out and vanish (NATS unreachable).
        let (at, why) = run(&mut own, t0, t0 + 60_000 * MS, 5 * MS, |_| None).unwrap();
        assert_eq!(why, LossReason::Expired);
        // The server expires the entry no sooner than ttl after it stored
        // it, which was no sooner than t0: the owner gave up before.
        assert!(at < t0 + timing().ttl, "lost at {:?}", at - t0);
        assert!(!own.is_owner(at));
        // And it does not come back by itself.
        own.renewing(at);
        own.renewed(99);
        assert_eq!(own.revision(), 1);
        assert!(!own.is_owner(at));
    }

    #[test]
    fn one_missed_renewal_does_not_lose_the_lease() {
        let t0 = Instant::now();
        let mut own = Ownership::acquired(timing(), 1, t0);
        let mut n = 0;
        let mut rev = 1;
        let lost = run(&mut own, t0, t0 + 30_000 * MS, 5 * MS, |_| {
            n += 1;
            rev += 1;
            // Every other renewal is lost on the way.
            (n % 2 == 0).then_some(Ok(rev))
        });
        assert_eq!(lost, None);
    }

    #[test]
    fn a_refused_renewal_is_lost_at_once() {
        let t0 = Instant::now();
        let mut own = Ownership::acquired(timing(), 1, t0);
        let (at, why) = run(&mut own, t0, t0 + 60_000 * MS, 5 * MS, |_| Some(Err(()))).unwrap();
        assert_eq!(why, LossReason::Superseded);
        assert_eq!(at, t0 + 1_005 * MS);
        assert!(!own.is_owner(at));
        assert_eq!(
            own.poll(at + 10_000 * MS),
            Step::Lost(LossReason::Superseded)
        );
    }

    #[test]
    fn a_slow_answer_counts_from_when_the_renewal_was_sent() {
        let t0 = Instant::now();
        let mut own = Ownership::acquired(timing(), 1, t0);
        own.renewing(t0 + 1_000 * MS);
        // Stored, but the answer takes 1.5 s to come back.
        own.renewed(2);
        assert_eq!(own.valid_until(), t0 + 3_700 * MS);
        // An answer that comes after the lease ran out changes nothing.
        let mut late = Ownership::acquired(timing(), 1, t0);
        late.renewing(t0 + 1_000 * MS);
        assert!(matches!(
            late.poll(t0 + 2_700 * MS),
            Step::Lost(LossReason::Expired)
        ));
        late.renewed(2);
        assert_eq!(late.revision(), 1);
        assert!(!late.is_owner(t0 + 2_701 * MS));
    }

    #[test]
    fn a_released_lease_stays_released() {
        let t0 = Instant::now();
        let mut own = Ownership::acquired(timing(), 1, t0);
        own.released();
        assert!(!own.is_owner(t0));
        assert_eq!(own.poll(t0), Step::Lost(LossReason::Released));
        own.refused();
        assert_eq!(own.lost(), Some(LossReason::Released));
    }
}
