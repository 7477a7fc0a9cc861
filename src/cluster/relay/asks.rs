//! What nodes ask of each other beyond relayed connections, each a NATS
//! request answered by the node that runs the session: take a session
//! over (placement, drain), add an uploaded version, end a live review.

use std::time::Duration;

use async_nats::Subject;
use bytes::Bytes;
use futures_util::StreamExt;

use super::{nats_error, Relay, RelayError, OPEN_TIMEOUT};
use crate::cluster::ClusterError;

fn takes_of(node: &str) -> String {
    format!("syncreel.take.{node}")
}

fn versions_of(node: &str) -> String {
    format!("syncreel.version.{node}")
}

fn ends_of(node: &str) -> String {
    format!("syncreel.end.{node}")
}

/// How the owner answers [`Relay::end_at`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The live review ended at this Unix time (ms): now, or earlier.
    At(i64),
    /// The session does not run there (any more).
    Gone,
    /// The record refused: why.
    Failed(String),
}

impl Ended {
    fn encode(&self) -> Bytes {
        Bytes::from(match self {
            Ended::At(at) => format!("at {at}"),
            Ended::Gone => "gone".to_string(),
            Ended::Failed(why) => format!("failed {why}"),
        })
    }

    fn parse(bytes: &[u8]) -> Ended {
        let text = String::from_utf8_lossy(bytes);
        match text.split_once(' ') {
            Some(("at", at)) => at.parse().map_or(Ended::Gone, Ended::At),
            Some(("failed", why)) => Ended::Failed(why.to_string()),
            _ => Ended::Gone,
        }
    }
}

/// How long a node has to open a session it is handed (its media
/// included).
const TAKE_TIMEOUT: Duration = Duration::from_secs(10);

impl Relay {
    /// Asks `node` to take session `session` over from the shared record
    /// (placement, drain): returns once it runs there.
    pub async fn hand_to(&self, node: &str, session: &str) -> Result<(), RelayError> {
        let request =
            async_nats::Request::new().payload(Bytes::copy_from_slice(session.as_bytes()));
        let answer = self
            .ask(node, takes_of(node), request, TAKE_TIMEOUT)
            .await?;
        if answer.payload.is_empty() {
            Ok(())
        } else {
            Err(RelayError::Refused {
                node: node.to_string(),
                reason: String::from_utf8_lossy(&answer.payload).into_owned(),
            })
        }
    }

    /// Tells `node`, which runs session `session`, that version
    /// `version` (recorded in the shared record) was uploaded into it:
    /// returns once the owner has passed it to the session.
    pub async fn tell_version(
        &self,
        node: &str,
        session: &str,
        version: &str,
    ) -> Result<(), RelayError> {
        // Both are ids of the record, which hold no spaces.
        let request =
            async_nats::Request::new().payload(Bytes::from(format!("{session} {version}")));
        self.ask(node, versions_of(node), request, OPEN_TIMEOUT)
            .await
            .map(|_| ())
    }

    /// Asks `node`, which runs session `session`, to end its live review
    /// (a host's `POST …/end` that reached another node).
    pub async fn end_at(&self, node: &str, session: &str) -> Result<Ended, RelayError> {
        let request =
            async_nats::Request::new().payload(Bytes::copy_from_slice(session.as_bytes()));
        let answer = self.ask(node, ends_of(node), request, OPEN_TIMEOUT).await?;
        Ok(Ended::parse(&answer.payload))
    }

    /// Sessions other nodes ask this one to end ([`Relay::end_at`]), as
    /// (session, where to answer).
    pub async fn ends(
        &self,
    ) -> Result<impl futures_util::Stream<Item = (String, Option<Subject>)>, ClusterError> {
        let requests = self
            .client
            .subscribe(ends_of(self.node.as_str()))
            .await
            .map_err(nats_error)?;
        Ok(requests.filter_map(|message| async move {
            let session = std::str::from_utf8(&message.payload).ok()?;
            Some((session.to_string(), message.reply))
        }))
    }

    /// Answers a [`Relay::end_at`].
    pub async fn answer_end(&self, reply: Subject, ended: &Ended) {
        let _ = self.client.publish(reply, ended.encode()).await;
    }

    /// Versions other nodes' uploads add to sessions this one runs
    /// ([`Relay::tell_version`]), as (session, version, where to answer).
    pub async fn versions(
        &self,
    ) -> Result<impl futures_util::Stream<Item = (String, String, Option<Subject>)>, ClusterError>
    {
        let requests = self
            .client
            .subscribe(versions_of(self.node.as_str()))
            .await
            .map_err(nats_error)?;
        Ok(requests.filter_map(|message| async move {
            let text = std::str::from_utf8(&message.payload).ok()?;
            let (session, version) = text.split_once(' ')?;
            Some((session.to_string(), version.to_string(), message.reply))
        }))
    }

    /// Answers a [`Relay::tell_version`].
    pub async fn answer(&self, reply: Subject) {
        let _ = self.client.publish(reply, Bytes::new()).await;
    }

    /// Sessions other nodes hand to this one ([`Relay::hand_to`]).
    pub async fn handovers(&self) -> Result<Handovers, ClusterError> {
        let requests = self
            .client
            .subscribe(takes_of(self.node.as_str()))
            .await
            .map_err(nats_error)?;
        Ok(Handovers {
            client: self.client.clone(),
            requests,
        })
    }
}

/// Sessions handed to this node.
pub struct Handovers {
    client: async_nats::Client,
    requests: async_nats::Subscriber,
}

/// One session handed over: answer it with [`Handover::answer`].
#[derive(Debug)]
pub struct Handover {
    pub session: String,
    client: async_nats::Client,
    reply: Option<Subject>,
}

impl Handovers {
    /// The next session handed over; `None` once NATS has closed the
    /// subscription.
    pub async fn next(&mut self) -> Option<Handover> {
        loop {
            let message = self.requests.next().await?;
            let Ok(session) = std::str::from_utf8(&message.payload) else {
                continue;
            };
            return Some(Handover {
                session: session.to_string(),
                client: self.client.clone(),
                reply: message.reply,
            });
        }
    }
}

impl Handover {
    /// Tells the node that handed the session over whether it runs here.
    pub async fn answer(self, result: Result<(), String>) {
        if let Some(reply) = self.reply {
            let payload = match result {
                Ok(()) => Bytes::new(),
                // Never empty: empty means taken.
                Err(reason) if reason.is_empty() => Bytes::from_static(b"refused"),
                Err(reason) => Bytes::from(reason),
            };
            let _ = self.client.publish(reply, payload).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_end_answer_reads_back_as_written() {
        for ended in [
            Ended::At(1_733_300_000_123),
            Ended::Gone,
            Ended::Failed("the review record is busy; try again".into()),
        ] {
            assert_eq!(Ended::parse(&ended.encode()), ended);
        }
        assert_eq!(Ended::parse(b"at soon"), Ended::Gone);
        assert_eq!(Ended::parse(b""), Ended::Gone);
    }
}
