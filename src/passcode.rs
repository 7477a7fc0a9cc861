//! Optional per-link passcodes: what a passcode may be, its hash, and the
//! gate every check goes through (the table of wrong attempts, the lock,
//! and a short memory of passcodes that verified).
//!
//! A passcode is something a person types, so unlike a link's token it
//! has little entropy: it is stored only as an Argon2id hash with a salt
//! of its own (a leaked record costs an attacker a memory-hard search per
//! link), and guesses are limited by the gate, not by the hash. The gate
//! decides before it compares anything, so a link under lock answers the
//! right passcode as it answers a wrong one: the lock gives nothing away.
//!
//! This module knows nothing of the wire or of HTTP: callers turn
//! [`Refusal`] into their own error codes, and record the audit trail.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The fewest characters a passcode may have, after trimming.
pub const MIN_CHARS: usize = 4;
/// The most characters a passcode may have, after trimming.
pub const MAX_CHARS: usize = 64;

/// Argon2id memory in KiB, passes and lanes: the OWASP minimum (19 MiB,
/// two passes). One check takes about 20 ms of an idle core, 40 ms on a
/// 2-core machine at load 10 (`tests/passcode.rs` prints it); at most
/// [`CHECKS_AT_ONCE`] run together, so their memory is bounded too.
const ARGON2_MEMORY_KIB: u32 = 19 * 1024;
const ARGON2_PASSES: u32 = 2;
const ARGON2_LANES: u32 = 1;

/// Argon2 checks running at once: each holds 19 MiB and a core.
pub const CHECKS_AT_ONCE: usize = 2;
/// How long a check waits for its turn before it is refused as busy.
const CHECK_WAIT: Duration = Duration::from_secs(5);
/// A passcode that verified is remembered (as a keyed hash, in memory)
/// this long, so that the exact frames a scrub asks for do not each pay
/// for Argon2. It still waits behind the lock like any check.
pub const REMEMBERED_FOR: Duration = Duration::from_secs(10 * 60);

/// Why a passcode was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The link has a passcode and none was given.
    #[error("this link needs its passcode")]
    Required,
    /// The passcode given is not the link's.
    #[error("that passcode is not this link's")]
    Wrong,
    /// Too many wrong passcodes for this link lately; nothing is checked
    /// until the window has passed.
    #[error("too many wrong passcodes for this link; try again in {retry_after_secs} s")]
    Locked { retry_after_secs: u64 },
    /// Too many checks are waiting for their turn; nothing was counted.
    #[error("too many passcode checks at once; try again in a moment")]
    Busy,
}

/// Why a passcode cannot be set on a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BadPasscode {
    /// Shorter than [`MIN_CHARS`] or longer than [`MAX_CHARS`], trimmed.
    #[error("a passcode has {MIN_CHARS} to {MAX_CHARS} characters (it has {0})")]
    Length(usize),
    /// Only printable ASCII, so that the same keys give the same bytes on
    /// every keyboard and system (no Unicode normalisation to get wrong),
    /// and the passcode fits an HTTP header as it is.
    #[error("a passcode is letters, digits, spaces and ASCII punctuation only")]
    Characters,
}

/// A passcode as it will be hashed: trimmed, 4 to 64 printable ASCII
/// characters.
pub fn checked(raw: &str) -> Result<&str, BadPasscode> {
    let trimmed = raw.trim();
    if !trimmed.chars().all(|c| c == ' ' || c.is_ascii_graphic()) {
        return Err(BadPasscode::Characters);
    }
    let len = trimmed.chars().count();
    if !(MIN_CHARS..=MAX_CHARS).contains(&len) {
        return Err(BadPasscode::Length(len));
    }
    Ok(trimmed)
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, None)
        .expect("the Argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`) kept for a
/// passcode that [`checked`] accepted: a fresh 128-bit salt per call, so
/// two links with one passcode have unrelated hashes. Blocking (~20 ms).
pub fn hash(passcode: &str) -> String {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    argon2()
        .hash_password(passcode.as_bytes(), &salt)
        .expect("hashing with valid parameters cannot fail")
        .to_string()
}

/// Whether `given` is the passcode `phc` was made from. The parameters
/// come from the PHC string, so hashes made with other costs still
/// verify; the comparison of the outputs is constant-time (password-hash's
/// `Output` compares with `subtle`). Blocking (~20 ms).
pub fn verify(phc: &str, given: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    argon2().verify_password(given.as_bytes(), &parsed).is_ok()
}

/// How many wrong passcodes are allowed before a lock, and for how long
/// they count (from `config`'s `[links]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wrong passcodes for one link from one client address.
    pub per_address: u32,
    /// Wrong passcodes for one link from every address together.
    pub per_link: u32,
    /// A count starts at its first wrong passcode and is forgotten this
    /// long after it; while it is at its limit, the link (or the address,
    /// for that link) is locked.
    pub window: Duration,
    /// Entries the table of wrong attempts (and the memory of passcodes
    /// that verified) may hold.
    pub tracked: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            per_address: 5,
            per_link: 20,
            window: Duration::from_secs(60),
            tracked: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Link(String),
    Address(String, IpAddr),
}

#[derive(Debug, Clone, Copy)]
struct Count {
    since: Instant,
    wrong: u32,
}

/// Wrong passcodes by link and by (link, address), each counted over a
/// window from its first. Bounded: entries go when their window has
/// passed (or a right passcode leaves them at nothing), and when [`Limits::tracked`] are live at once, a check that
/// would need a new entry is refused as locked until one expires (failing
/// closed: evicting instead would let a flood of addresses wipe a link's
/// count).
#[derive(Debug)]
pub struct Attempts {
    limits: Limits,
    counts: Mutex<HashMap<Key, Count>>,
}

/// A check let through by [`Attempts::begin`]: counted as wrong until
/// [`Attempts::settle`] says otherwise, so checks in flight at once cannot
/// get past the limit together.
#[derive(Debug)]
#[must_use = "settle the attempt once the passcode is checked"]
pub struct Attempt {
    keys: [Key; 2],
}

impl Attempts {
    pub fn new(limits: Limits) -> Attempts {
        Attempts {
            limits,
            counts: Mutex::new(HashMap::new()),
        }
    }

    /// Lets a check of a passcode for `link_id` from `address` go ahead
    /// at `now`, counting it as wrong until settled, or says how long the
    /// lock has to run.
    pub fn begin(
        &self,
        link_id: &str,
        address: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt, Refusal> {
        // Without an address (a router driven in-process) every caller
        // is one: the link's own limit still holds.
        let address = address.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let keys = [
            Key::Link(link_id.to_string()),
            Key::Address(link_id.to_string(), address),
        ];
        let limits = [self.limits.per_link, self.limits.per_address];
        let window = self.limits.window;
        let mut counts = self.counts.lock().expect("attempts lock");
        let live = |c: &Count| now.saturating_duration_since(c.since) < window;
        let locked_for = |c: &Count| window.saturating_sub(now.saturating_duration_since(c.since));
        let mut wait = Duration::ZERO;
        for (key, limit) in keys.iter().zip(limits) {
            if let Some(count) = counts.get(key).filter(|c| live(c)) {
                if count.wrong >= limit.max(1) {
                    wait = wait.max(locked_for(count));
                }
            }
        }
        let missing = keys
            .iter()
            .filter(|k| !counts.get(*k).is_some_and(live))
            .count();
        if wait.is_zero() && counts.len() + missing > self.limits.tracked {
            counts.retain(|_, c| live(c));
            if counts.len() + missing > self.limits.tracked {
                let soonest = counts.values().map(locked_for).min().unwrap_or(window);
                wait = soonest;
            }
        }
        if !wait.is_zero() {
            return Err(Refusal::Locked {
                // Whole seconds, rounded up: "in 0 s" would be a lie.
                retry_after_secs: wait.as_millis().div_ceil(1000).max(1) as u64,
            });
        }
        for key in &keys {
            let count = counts.entry(key.clone()).or_insert(Count {
                since: now,
                wrong: 0,
            });
            if !live(count) {
                *count = Count {
                    since: now,
                    wrong: 0,
                };
            }
            count.wrong += 1;
        }
        Ok(Attempt { keys })
    }

    /// The outcome of a check [`begin`](Attempts::begin) let through: a
    /// right passcode takes back its count; a wrong one keeps it.
    /// Returns whether this wrong passcode is the one that locked the link
    /// or the address.
    pub fn settle(&self, attempt: Attempt, right: bool) -> bool {
        let mut counts = self.counts.lock().expect("attempts lock");
        if right {
            for key in &attempt.keys {
                if let Some(count) = counts.get_mut(key) {
                    count.wrong = count.wrong.saturating_sub(1);
                    // Nothing left to remember: a room of people getting
                    // in right must not fill the table.
                    if count.wrong == 0 {
                        counts.remove(key);
                    }
                }
            }
            return false;
        }
        let limits = [self.limits.per_link, self.limits.per_address];
        attempt
            .keys
            .iter()
            .zip(limits)
            .any(|(key, limit)| counts.get(key).is_some_and(|c| c.wrong == limit.max(1)))
    }

    /// Entries held, expired or not (for tests of the bound).
    pub fn len(&self) -> usize {
        self.counts.lock().expect("attempts lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The outcome of a check that got as far as a comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// Right: go ahead.
    Right,
    /// Wrong, and counted; `locked` when this one reached a limit.
    Wrong { locked: bool },
}

/// Every passcode check goes through here: the lock, then the memory of
/// passcodes that verified, then Argon2 off the runtime, a few at once.
#[derive(Debug)]
pub struct Gate {
    attempts: Attempts,
    checks: tokio::sync::Semaphore,
    /// HMAC(process key, link id ‖ passcode) → when it stops counting.
    /// The key is random per process, so the entries are worthless on
    /// their own and nothing of them outlives the server.
    remembered: Mutex<HashMap<[u8; 32], Instant>>,
    key: [u8; 32],
    tracked: usize,
}

impl Gate {
    pub fn new(limits: Limits) -> Gate {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Gate {
            attempts: Attempts::new(limits),
            checks: tokio::sync::Semaphore::new(CHECKS_AT_ONCE),
            remembered: Mutex::new(HashMap::new()),
            key,
            tracked: limits.tracked,
        }
    }

    /// Checks `given` against a link's hash (`phc`). `Ok(Right)` and
    /// `Ok(Wrong)` are the outcomes of a comparison; `Err` means none was
    /// made (nothing given, locked, busy).
    pub async fn check(
        &self,
        link_id: &str,
        phc: &str,
        given: Option<&str>,
        address: Option<IpAddr>,
    ) -> Result<Checked, Refusal> {
        let given = given.ok_or(Refusal::Required)?;
        let attempt = self.attempts.begin(link_id, address, Instant::now())?;
        // Trimmed like the passcode that was set; anything that could not
        // have been set is wrong without costing a hash.
        let Ok(given) = checked(given) else {
            let locked = self.attempts.settle(attempt, false);
            return Ok(Checked::Wrong { locked });
        };
        let memo = self.memo(link_id, given);
        if self.remembered(&memo) {
            self.attempts.settle(attempt, true);
            return Ok(Checked::Right);
        }
        let Ok(Ok(_turn)) = tokio::time::timeout(CHECK_WAIT, self.checks.acquire()).await else {
            self.attempts.settle(attempt, true);
            return Err(Refusal::Busy);
        };
        let (phc, typed) = (phc.to_string(), given.to_string());
        let right = tokio::task::spawn_blocking(move || verify(&phc, &typed))
            .await
            .unwrap_or(false);
        let locked = self.attempts.settle(attempt, right);
        if !right {
            return Ok(Checked::Wrong { locked });
        }
        self.remember(memo);
        Ok(Checked::Right)
    }

    fn memo(&self, link_id: &str, passcode: &str) -> [u8; 32] {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("any key length");
        mac.update(link_id.as_bytes());
        mac.update(&[0]);
        mac.update(passcode.as_bytes());
        mac.finalize().into_bytes().into()
    }

    fn remembered(&self, memo: &[u8; 32]) -> bool {
        let now = Instant::now();
        let remembered = self.remembered.lock().expect("remembered lock");
        // A map lookup hashes the key, not the passcode: what is compared
        // is a MAC under a key nobody else has, so its timing tells nothing.
        remembered.get(memo).is_some_and(|until| now < *until)
    }

    fn remember(&self, memo: [u8; 32]) {
        let now = Instant::now();
        let mut remembered = self.remembered.lock().expect("remembered lock");
        if remembered.len() >= self.tracked {
            remembered.retain(|_, until| now < *until);
        }
        // Full of live entries: this one is simply checked again next time.
        if remembered.len() < self.tracked {
            remembered.insert(memo, now + REMEMBERED_FOR);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_address: u32, per_link: u32, tracked: usize) -> Limits {
        Limits {
            per_address,
            per_link,
            window: Duration::from_secs(60),
            tracked,
        }
    }

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([10, 0, 0, last]))
    }

    #[test]
    fn passcodes_are_trimmed_printable_ascii_of_4_to_64_characters() {
        assert_eq!(checked("  1234 "), Ok("1234"));
        assert_eq!(checked("open sesame!"), Ok("open sesame!"));
        assert_eq!(checked(&"x".repeat(64)).map(str::len), Ok(64));
        assert_eq!(checked("123"), Err(BadPasscode::Length(3)));
        assert_eq!(checked("      "), Err(BadPasscode::Length(0)));
        assert_eq!(checked(&"x".repeat(65)), Err(BadPasscode::Length(65)));
        assert_eq!(checked("café1"), Err(BadPasscode::Characters));
        assert_eq!(checked("12\n34"), Err(BadPasscode::Characters));
        assert_eq!(checked("12\t34"), Err(BadPasscode::Characters));
    }

    #[test]
    fn a_hash_verifies_its_passcode_only_and_is_salted() {
        let a = hash("open sesame");
        let b = hash("open sesame");
        assert!(a.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{a}");
        assert_ne!(a, b, "each hash has its own salt");
        assert!(!a.contains("open sesame"));
        assert!(verify(&a, "open sesame"));
        assert!(verify(&b, "open sesame"));
        assert!(!verify(&a, "open sesamE"));
        assert!(!verify("not a hash", "open sesame"));
    }

    #[test]
    fn wrong_attempts_lock_an_address_then_the_link_until_the_window_passes() {
        let attempts = Attempts::new(limits(2, 3, 100));
        let t0 = Instant::now();
        for _ in 0..2 {
            let a = attempts.begin("l", ip(1), t0).unwrap();
            attempts.settle(a, false);
        }
        // The address is locked for this link, from the first wrong one.
        let later = t0 + Duration::from_secs(15);
        assert_eq!(
            attempts.begin("l", ip(1), later).unwrap_err(),
            Refusal::Locked {
                retry_after_secs: 45
            }
        );
        // Not for another link, nor (yet) for another address.
        attempts.settle(attempts.begin("other", ip(1), later).unwrap(), true);
        let third = attempts.begin("l", ip(2), later).unwrap();
        assert!(attempts.settle(third, false), "the link's third locks it");
        assert!(matches!(
            attempts.begin("l", ip(3), later),
            Err(Refusal::Locked { .. })
        ));
        // Once the window from the first wrong one has passed, all open.
        let after = t0 + Duration::from_secs(60);
        attempts.settle(attempts.begin("l", ip(1), after).unwrap(), true);
        attempts.settle(attempts.begin("l", ip(3), after).unwrap(), true);
    }

    #[test]
    fn a_right_passcode_takes_back_its_count_and_checks_in_flight_count() {
        let attempts = Attempts::new(limits(2, 10, 100));
        let t0 = Instant::now();
        for last in 0..5 {
            attempts.settle(attempts.begin("l", ip(last), t0).unwrap(), true);
        }
        assert!(attempts.is_empty(), "right passcodes leave nothing behind");
        for _ in 0..5 {
            attempts.settle(attempts.begin("l", ip(1), t0).unwrap(), true);
        }
        // Two checks in flight at once use up the limit before either ends.
        let a = attempts.begin("l", ip(1), t0).unwrap();
        let b = attempts.begin("l", ip(1), t0).unwrap();
        assert!(attempts.begin("l", ip(1), t0).is_err());
        attempts.settle(a, true);
        attempts.settle(b, false);
        attempts.settle(attempts.begin("l", ip(1), t0).unwrap(), false);
        assert!(attempts.begin("l", ip(1), t0).is_err());
    }

    #[test]
    fn the_table_is_bounded_and_fails_closed_when_full() {
        // Each new (link, address) needs two entries: the link's and its own.
        let attempts = Attempts::new(limits(5, 50, 6));
        let t0 = Instant::now();
        for last in 1..=3 {
            attempts.settle(
                attempts.begin(&format!("l{last}"), ip(last), t0).unwrap(),
                false,
            );
        }
        assert_eq!(attempts.len(), 6);
        let full = attempts.begin("l9", ip(9), t0 + Duration::from_secs(10));
        assert_eq!(
            full.unwrap_err(),
            Refusal::Locked {
                retry_after_secs: 50
            }
        );
        // An address already counted can still be checked...
        attempts.settle(attempts.begin("l1", ip(1), t0).unwrap(), true);
        // ...and once the window has passed, the expired entries make room.
        let after = t0 + Duration::from_secs(60);
        attempts.settle(attempts.begin("l9", ip(9), after).unwrap(), false);
        assert!(attempts.len() <= 6);
    }

    #[tokio::test]
    async fn the_gate_locks_before_it_compares_and_remembers_what_verified() {
        let gate = Gate::new(limits(2, 10, 100));
        let phc = hash("right one");
        let check = |given: Option<&'static str>| gate.check("l", &phc, given, ip(1));
        assert_eq!(check(None).await, Err(Refusal::Required));
        assert_eq!(check(Some(" right one ")).await, Ok(Checked::Right));
        assert_eq!(
            check(Some("wrong one")).await,
            Ok(Checked::Wrong { locked: false })
        );
        // Too short to have been set: wrong, counted, no hash computed.
        assert_eq!(check(Some("no")).await, Ok(Checked::Wrong { locked: true }));
        // Remembered or not, the right passcode waits out the lock.
        assert!(matches!(
            check(Some("right one")).await,
            Err(Refusal::Locked { .. })
        ));
    }
}
