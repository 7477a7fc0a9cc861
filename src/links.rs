//! Role-scoped join links: minting, checking, revoking.
//!
//! A link's token is 256 random bits shown once, at minting. The server
//! keeps only its SHA-256, so a leaked store does not leak working links.
//! Tokens are high-entropy, so a plain hash (no salt, no stretching) is
//! enough: there is nothing to brute-force. A link may also carry a
//! passcode, which people choose and so is brute-forceable: that is kept
//! as Argon2id and checked through `passcode::Gate`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use dashmap::DashMap;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::session::Role;

/// A link as the server keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub id: String,
    pub session_id: String,
    pub role: Role,
    /// Unix seconds after which the link no longer admits anyone.
    pub expires_at: Option<u64>,
    pub revoked: bool,
    /// The PHC string (Argon2id, salted) of the link's passcode, if it has
    /// one. Never sent anywhere: the host sees only that there is one.
    pub passcode: Option<std::sync::Arc<str>>,
}

/// A freshly minted link: the only time the token is known in clear.
#[derive(Debug, Clone)]
pub struct MintedLink {
    pub link: Link,
    pub token: String,
}

/// Why a token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// No link has this token.
    #[error("this link is not valid")]
    Invalid,
    /// The link's expiry has passed.
    #[error("this link has expired; ask the host for a new one")]
    Expired,
    /// The host revoked the link.
    #[error("this link was revoked by the host")]
    Revoked,
}

/// The longest a link may be minted to live: ten years. A longer one is
/// refused rather than clamped, so the caller learns its number was wrong.
pub const MAX_LIFETIME_SECS: u64 = 10 * 365 * 24 * 60 * 60;

/// When a link minted at `now_unix` to live `lifetime_secs` expires, or
/// `None` when the lifetime is over `MAX_LIFETIME_SECS`. A lifetime of 0
/// is a link that has expired already.
pub fn expiry(now_unix: u64, lifetime_secs: u64) -> Option<u64> {
    (0..=MAX_LIFETIME_SECS)
        .contains(&lifetime_secs)
        .then(|| now_unix.saturating_add(lifetime_secs))
}

#[derive(Debug, Default)]
pub struct LinkStore {
    by_hash: DashMap<[u8; 32], Link>,
}

impl LinkStore {
    /// A new link; `passcode` is the hash (`passcode::hash`) to keep, if any.
    pub fn mint(
        &self,
        session_id: &str,
        role: Role,
        expires_at: Option<u64>,
        passcode: Option<String>,
    ) -> MintedLink {
        let token = new_token();
        let link = Link {
            id: random_id(),
            session_id: session_id.to_string(),
            role,
            expires_at,
            revoked: false,
            passcode: passcode.map(Into::into),
        };
        self.by_hash.insert(hash(&token), link.clone());
        MintedLink { link, token }
    }

    /// Puts back a link read from the record after a restart.
    pub fn restore(&self, token_hash: [u8; 32], link: Link) {
        self.by_hash.insert(token_hash, link);
    }

    /// The link a token belongs to, if it may still be used at `now_unix`.
    pub fn check(&self, token: &str, now_unix: u64) -> Result<Link, LinkError> {
        let link = self
            .by_hash
            .get(&hash(token))
            .map(|l| l.clone())
            .ok_or(LinkError::Invalid)?;
        if link.revoked {
            return Err(LinkError::Revoked);
        }
        if link.expires_at.is_some_and(|t| now_unix >= t) {
            return Err(LinkError::Expired);
        }
        Ok(link)
    }

    /// Revokes a link of a session; false when there is no such link.
    /// Revokes every link of a session (it was deleted).
    pub fn revoke_session(&self, session_id: &str) {
        for mut entry in self.by_hash.iter_mut() {
            if entry.session_id == session_id {
                entry.revoked = true;
            }
        }
    }

    pub fn revoke(&self, session_id: &str, link_id: &str) -> bool {
        let mut found = false;
        for mut entry in self.by_hash.iter_mut() {
            if entry.session_id == session_id && entry.id == link_id {
                entry.revoked = true;
                found = true;
            }
        }
        found
    }

    pub fn for_session(&self, session_id: &str) -> Vec<Link> {
        let mut links: Vec<Link> = self
            .by_hash
            .iter()
            .filter(|l| l.session_id == session_id)
            .map(|l| l.clone())
            .collect();
        links.sort_by(|a, b| a.id.cmp(&b.id));
        links
    }
}

/// A fresh bearer token: 256 random bits, URL-safe base64.
pub fn new_token() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    URL_SAFE_NO_PAD.encode(secret)
}

/// A short random identifier for sessions and links: 64 bits, hex.
pub fn random_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the server keeps of a token.
pub fn token_hash(token: &str) -> [u8; 32] {
    hash(token)
}

pub(crate) fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_and_stored_hashed() {
        let store = LinkStore::default();
        let a = store.mint("s", Role::Host, None, None);
        let b = store.mint("s", Role::Host, None, None);
        assert_ne!(a.token, b.token);
        assert!(URL_SAFE_NO_PAD.decode(&a.token).unwrap().len() * 8 >= 128);
        assert!(store.by_hash.contains_key(&hash(&a.token)));
        assert!(store.by_hash.iter().all(|e| e.key() != a.token.as_bytes()));
        assert_eq!(store.check(&a.token, 0).unwrap().role, Role::Host);
    }

    #[test]
    fn refuses_unknown_expired_and_revoked_tokens() {
        let store = LinkStore::default();
        let timed = store.mint("s", Role::Viewer, Some(100), None);
        assert_eq!(store.check("nope", 0), Err(LinkError::Invalid));
        assert!(store.check(&timed.token, 99).is_ok());
        assert_eq!(store.check(&timed.token, 100), Err(LinkError::Expired));

        let other = store.mint("s", Role::Reviewer, None, None);
        assert!(!store.revoke("other-session", &other.link.id));
        assert!(store.revoke("s", &other.link.id));
        assert_eq!(store.check(&other.token, 0), Err(LinkError::Revoked));
        assert_eq!(store.for_session("s").len(), 2);
    }
}
