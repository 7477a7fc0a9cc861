//! A node's name in the cluster. It is a KV key (node load) and a KV value
//! (who holds a lease), so it keeps to the characters a NATS subject token
//! allows everywhere.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(String);

/// Why a name cannot be a node's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NodeIdError {
    #[error("a node id must be 1 to {max} characters", max = NodeId::MAX_LEN)]
    Length,
    #[error("a node id may hold only ASCII letters, digits, '-' and '_'")]
    Character,
}

impl NodeId {
    pub const MAX_LEN: usize = 64;

    pub fn new(name: &str) -> Result<NodeId, NodeIdError> {
        if name.is_empty() || name.len() > Self::MAX_LEN {
            return Err(NodeIdError::Length);
        }
        if !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(NodeIdError::Character);
        }
        Ok(NodeId(name.to_string()))
    }

    /// A fresh random name (`node-` and 12 hex digits), for a node that was
    /// given none: unique enough that two nodes never share one.
    pub fn random() -> NodeId {
        let n: u64 = rand::random();
        NodeId(format!("node-{:012x}", n & 0xffff_ffff_ffff))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        assert!(NodeId::new("node-a_1").is_ok());
        assert_eq!(NodeId::new(""), Err(NodeIdError::Length));
        assert_eq!(NodeId::new(&"a".repeat(65)), Err(NodeIdError::Length));
        for bad in ["a.b", "a b", "a*", "a>", "é"] {
            assert_eq!(NodeId::new(bad), Err(NodeIdError::Character), "{bad}");
        }
        let random = NodeId::random();
        assert_eq!(NodeId::new(random.as_str()), Ok(random));
    }
}
