//! What a node tells the others about itself, and the pure choice of where
//! a new session goes.
//!
//! The entry is a line of `key=value` words rather than JSON: only
//! `protocol` and `http` know JSON, and this stays readable with
//! `nats kv get`. Unknown words are skipped, so a newer node can add one.

use super::NodeId;

/// One node's load, as it last published it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NodeLoad {
    /// Live sessions this node owns.
    pub sessions: u32,
    /// Participants connected to this node.
    pub participants: u32,
    /// The process's CPU use over the last interval, in thousandths of one
    /// core (1000 = one core busy; several cores can exceed it).
    pub cpu_permille: u32,
    /// A drained node takes no new sessions.
    pub drained: bool,
    /// Pictures its players sent more than a frame late over the last
    /// interval: above zero, the node is short of CPU for the streams it
    /// has, and takes another session only if every node is.
    pub late_pictures: u32,
}

/// Why a load entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad node load entry: {0}")]
pub struct LoadParseError(String);

impl NodeLoad {
    pub fn encode(&self) -> String {
        format!(
            "sessions={} participants={} cpu_permille={} drained={} late_pictures={}",
            self.sessions, self.participants, self.cpu_permille, self.drained, self.late_pictures
        )
    }

    pub fn decode(text: &str) -> Result<NodeLoad, LoadParseError> {
        let mut load = NodeLoad::default();
        let mut seen_sessions = false;
        for word in text.split_ascii_whitespace() {
            let (key, value) = word
                .split_once('=')
                .ok_or_else(|| LoadParseError(format!("{word:?} is not key=value")))?;
            let number = || {
                value
                    .parse::<u32>()
                    .map_err(|_| LoadParseError(format!("{key}={value:?} is not a count")))
            };
            match key {
                "sessions" => {
                    load.sessions = number()?;
                    seen_sessions = true;
                }
                "participants" => load.participants = number()?,
                "cpu_permille" => load.cpu_permille = number()?,
                "late_pictures" => load.late_pictures = number()?,
                "drained" => {
                    load.drained = value
                        .parse()
                        .map_err(|_| LoadParseError(format!("drained={value:?}")))?
                }
                _ => {}
            }
        }
        if !seen_sessions {
            return Err(LoadParseError("no sessions= word".into()));
        }
        Ok(load)
    }
}

/// The node a new session should go to: among the undrained nodes, one
/// whose players keep up (no late pictures) if there is one, then the
/// fewest sessions, then the fewest participants, then the least CPU, then
/// the smallest id (so every node that asks picks the same one). `None`
/// when every node is drained or there is none.
///
/// Sessions come first because each playing session costs an encoder
/// (about half a core at 720p), far more than a participant. But sessions
/// differ (a UHD source, a compare, one nobody watches), so a node that
/// already sends pictures late is passed over whatever its count: another
/// session there would make every one of its rooms worse.
pub fn least_loaded<'a>(
    nodes: impl IntoIterator<Item = (&'a NodeId, &'a NodeLoad)>,
) -> Option<&'a NodeId> {
    nodes
        .into_iter()
        .filter(|(_, load)| !load.drained)
        .min_by_key(|(id, load)| {
            (
                load.late_pictures > 0,
                load.sessions,
                load.participants,
                load.cpu_permille,
                *id,
            )
        })
        .map(|(id, _)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let load = NodeLoad {
            sessions: 3,
            participants: 120,
            cpu_permille: 1500,
            drained: true,
            late_pictures: 7,
        };
        assert_eq!(NodeLoad::decode(&load.encode()), Ok(load));
        // A newer node's extra word is skipped.
        assert_eq!(
            NodeLoad::decode("sessions=1 gpu=7").unwrap(),
            NodeLoad {
                sessions: 1,
                ..Default::default()
            }
        );
        for bad in [
            "",
            "participants=3",
            "sessions=-1",
            "sessions",
            "sessions=1 drained=maybe",
        ] {
            assert!(NodeLoad::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn placement_prefers_fewer_sessions_then_participants_then_cpu() {
        let (a, b, c) = (node("a"), node("b"), node("c"));
        let load = |sessions, participants, cpu_permille| NodeLoad {
            sessions,
            participants,
            cpu_permille,
            ..Default::default()
        };
        let pick = |nodes: &[(&NodeId, NodeLoad)]| {
            least_loaded(nodes.iter().map(|(id, l)| (*id, l))).cloned()
        };
        assert_eq!(
            pick(&[(&a, load(2, 0, 0)), (&b, load(1, 500, 900))]),
            Some(b.clone())
        );
        assert_eq!(
            pick(&[(&a, load(1, 10, 0)), (&b, load(1, 5, 900))]),
            Some(b.clone())
        );
        assert_eq!(
            pick(&[(&a, load(1, 5, 300)), (&b, load(1, 5, 200))]),
            Some(b.clone())
        );
        // A tie goes to the smallest id, whoever asks and in whatever order.
        assert_eq!(
            pick(&[(&c, load(1, 5, 200)), (&b, load(1, 5, 200))]),
            Some(b.clone())
        );
        assert_eq!(pick(&[]), None);
    }

    #[test]
    fn a_node_sending_pictures_late_is_passed_over_while_another_keeps_up() {
        let (a, b, c) = (node("a"), node("b"), node("c"));
        // A has one heavy session and falls behind; B has three that it
        // carries.
        let behind = NodeLoad {
            sessions: 1,
            late_pictures: 12,
            ..Default::default()
        };
        let keeping_up = NodeLoad {
            sessions: 3,
            ..Default::default()
        };
        assert_eq!(least_loaded([(&a, &behind), (&b, &keeping_up)]), Some(&b));
        // Every node behind: the usual order decides.
        let further_behind = NodeLoad {
            sessions: 2,
            late_pictures: 1,
            ..Default::default()
        };
        assert_eq!(
            least_loaded([(&c, &further_behind), (&a, &behind)]),
            Some(&a)
        );
    }

    #[test]
    fn a_drained_node_is_never_picked() {
        let (a, b) = (node("a"), node("b"));
        let idle_but_drained = NodeLoad {
            drained: true,
            ..Default::default()
        };
        let busy = NodeLoad {
            sessions: 50,
            ..Default::default()
        };
        let nodes = [(&a, &idle_but_drained), (&b, &busy)];
        assert_eq!(least_loaded(nodes), Some(&b));
        assert_eq!(least_loaded([(&a, &idle_but_drained)]), None);
    }
}
