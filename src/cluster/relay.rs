//! The gateway's wire: a participant's WebSocket carried over NATS to the
//! node that owns its session.
//!
//! A node that is asked for a session another node owns does not run it:
//! it opens a relayed connection to the owner and passes the
//! participant's text frames there, and the owner's frames back. The owner
//! serves the relayed connection exactly as a local socket (the same
//! hello, roles, limits and clock), so everything a participant sees is
//! the owner's, in the owner's time.
//!
//! Subjects (one NATS connection per node, so each direction is in order):
//! - `syncreel.relay.in.<owner>`: every relayed connection's frames to the
//!   owner. The reply subject names the connection; the first frame is a
//!   request (`open`, carrying the hello), answered once the owner has
//!   taken it, so a dead or absent owner is known at once ("no
//!   responders") rather than after a timeout.
//! - `syncreel.relay.out.<gateway>.<conn>`: the owner's frames to one
//!   relayed connection.
//!
//! Text only: this module knows nothing of the wire's messages, only that
//! frames are text, and that either side may say it is alive or closing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::{ClusterError, NodeId};

const KIND: &str = "Relay-Kind";
const ADDRESS: &str = "Relay-Address";

/// One frame of a relayed connection, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelayFrame {
    /// A WebSocket text frame.
    Text(Bytes),
    /// Nothing to say, but here: answers the other side's `Alive`, and
    /// counts as heard, like a WebSocket pong.
    Alive,
    /// The connection is over (the other side has said its goodbye).
    Close,
}

impl RelayFrame {
    fn kind(&self) -> &'static str {
        match self {
            RelayFrame::Text(_) => "text",
            RelayFrame::Alive => "alive",
            RelayFrame::Close => "close",
        }
    }

    fn from_message(message: &async_nats::Message) -> Option<RelayFrame> {
        let kind = message.headers.as_ref()?.get(KIND)?.as_str();
        match kind {
            "text" | "open" => Some(RelayFrame::Text(message.payload.clone())),
            "alive" => Some(RelayFrame::Alive),
            "close" => Some(RelayFrame::Close),
            _ => None,
        }
    }

    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(KIND, self.kind());
        headers
    }

    fn payload(self) -> Bytes {
        match self {
            RelayFrame::Text(text) => text,
            RelayFrame::Alive | RelayFrame::Close => Bytes::new(),
        }
    }
}

/// Why a relayed connection could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RelayError {
    /// Nobody listens for that node: it is gone (its lease may not have
    /// lapsed yet).
    #[error("node {0} does not answer")]
    Absent(String),
    #[error("node {node} did not take the connection within {after:?}")]
    Timeout { node: String, after: Duration },
    /// The node answered, and would not take the session.
    #[error("node {node} did not take the session: {reason}")]
    Refused { node: String, reason: String },
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// How often a gateway asks each owner it relays to whether it is there.
pub const PROBE_EVERY: Duration = Duration::from_millis(500);

/// How long an owner has to take a relayed connection.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);

/// This node's end of the relay: opening connections to owners, and
/// accepting the ones other nodes open to it.
#[derive(Clone)]
pub struct Relay {
    client: async_nats::Client,
    node: NodeId,
    /// Whether each owner this node relays to still answers: one probe
    /// per owner node, however many connections go there.
    probes: Arc<Mutex<HashMap<String, watch::Receiver<bool>>>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("node", &self.node).finish()
    }
}

fn inbox_of(node: &str) -> String {
    format!("syncreel.relay.in.{node}")
}

fn takes_of(node: &str) -> String {
    format!("syncreel.take.{node}")
}

/// How long a node has to open a session it is handed (its media
/// included).
const TAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn nats_error(err: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats(err.to_string())
}

impl Relay {
    pub(super) fn new(client: async_nats::Client, node: NodeId) -> Relay {
        Relay {
            client,
            node,
            probes: Arc::default(),
        }
    }

    /// Whether `owner` still answers: `true` until a probe finds nobody
    /// listening (a dead node: NATS knows at once that its connection is
    /// gone) or two probes in a row go unanswered; then `false` for good.
    /// Probed every [`PROBE_EVERY`] while anyone holds a receiver.
    pub fn owner_alive(&self, owner: &str) -> watch::Receiver<bool> {
        let mut probes = self.probes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(alive) = probes.get(owner) {
            if *alive.borrow() {
                return alive.clone();
            }
        }
        let (tx, rx) = watch::channel(true);
        probes.insert(owner.to_string(), rx.clone());
        let client = self.client.clone();
        let subject = inbox_of(owner);
        tokio::spawn(async move {
            let mut unanswered = 0;
            loop {
                tokio::select! {
                    () = tokio::time::sleep(PROBE_EVERY) => {}
                    () = tx.closed() => return,
                }
                let mut headers = HeaderMap::new();
                headers.insert(KIND, "probe");
                let request = async_nats::Request::new()
                    .headers(headers)
                    .timeout(Some(PROBE_EVERY * 2));
                use async_nats::RequestErrorKind as Kind;
                match client.send_request(subject.clone(), request).await {
                    Ok(_) => unanswered = 0,
                    Err(err) if err.kind() == Kind::NoResponders => break,
                    Err(_) => {
                        unanswered += 1;
                        if unanswered >= 2 {
                            break;
                        }
                    }
                }
            }
            let _ = tx.send(false);
        });
        rx
    }

    /// Gateway side: opens connection `conn` of this node to `owner`,
    /// with the participant's first frame (its hello). Returns once the
    /// owner has taken it.
    pub async fn open(
        &self,
        owner: &str,
        conn: u64,
        address: Option<std::net::IpAddr>,
        hello: Bytes,
    ) -> Result<RelayLink, RelayError> {
        let back = format!("syncreel.relay.out.{}.{conn}", self.node);
        // Subscribed before the owner can answer on it.
        let from_owner = self
            .client
            .subscribe(back.clone())
            .await
            .map_err(nats_error)?;
        let mut headers = HeaderMap::new();
        headers.insert(KIND, "open");
        if let Some(address) = address {
            headers.insert(ADDRESS, address.to_string());
        }
        headers.insert("Relay-Back", back.as_str());
        let request = async_nats::Request::new().headers(headers).payload(hello);
        self.ask(owner, inbox_of(owner), request, OPEN_TIMEOUT)
            .await?;
        Ok(RelayLink {
            client: self.client.clone(),
            to_owner: Subject::from(inbox_of(owner)),
            back: Subject::from(back),
            from_owner,
        })
    }

    /// A request to `node` on `subject`, its failures named for the node.
    async fn ask(
        &self,
        node: &str,
        subject: String,
        request: async_nats::Request,
        within: Duration,
    ) -> Result<async_nats::Message, RelayError> {
        use async_nats::RequestErrorKind as Kind;
        let request = request.timeout(Some(within));
        self.client
            .send_request(subject, request)
            .await
            .map_err(|err| match err.kind() {
                Kind::NoResponders => RelayError::Absent(node.to_string()),
                Kind::TimedOut => RelayError::Timeout {
                    node: node.to_string(),
                    after: within,
                },
                _ => nats_error(err).into(),
            })
    }

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

    /// Owner side: every connection other nodes open to this one, as they
    /// are opened, and each one's later frames.
    pub async fn accept(&self) -> Result<Accepted, ClusterError> {
        let inbox = self
            .client
            .subscribe(inbox_of(self.node.as_str()))
            .await
            .map_err(nats_error)?;
        Ok(Accepted {
            client: self.client.clone(),
            inbox,
        })
    }
}

/// A gateway's relayed connection to an owner.
pub struct RelayLink {
    client: async_nats::Client,
    to_owner: Subject,
    /// Names this connection to the owner.
    back: Subject,
    from_owner: async_nats::Subscriber,
}

impl RelayLink {
    pub async fn send(&self, frame: RelayFrame) -> Result<(), ClusterError> {
        self.client
            .publish_with_reply_and_headers(
                self.to_owner.clone(),
                self.back.clone(),
                frame.headers(),
                frame.payload(),
            )
            .await
            .map_err(nats_error)
    }

    /// The owner's next frame; `None` once NATS has closed the
    /// subscription.
    pub async fn next(&mut self) -> Option<RelayFrame> {
        loop {
            let message = self.from_owner.next().await?;
            if let Some(frame) = RelayFrame::from_message(&message) {
                return Some(frame);
            }
        }
    }
}

/// What arrives at an owner from gateways.
pub struct Accepted {
    client: async_nats::Client,
    inbox: async_nats::Subscriber,
}

/// One frame from a gateway, and which relayed connection it belongs to.
#[derive(Debug)]
pub enum Arrival {
    /// A new connection: its first frame, the participant's address as
    /// the gateway saw it, and where to answer.
    Open {
        back: RelayBack,
        address: Option<std::net::IpAddr>,
        hello: Bytes,
        /// Answered once the connection is taken.
        ack: Option<Subject>,
    },
    /// A later frame of connection `key` (its [`RelayBack::key`]).
    Frame { key: String, frame: RelayFrame },
}

impl Accepted {
    /// The next arrival; `None` once NATS has closed the subscription.
    pub async fn next(&mut self) -> Option<Arrival> {
        loop {
            let message = self.inbox.next().await?;
            let headers = message.headers.as_ref();
            let kind = headers.and_then(|h| h.get(KIND)).map(|v| v.as_str());
            if kind == Some("probe") {
                if let Some(reply) = message.reply.clone() {
                    let _ = self.client.publish(reply, Bytes::new()).await;
                }
                continue;
            }
            if kind == Some("open") {
                let Some(back) = headers
                    .and_then(|h| h.get("Relay-Back"))
                    .map(|v| v.as_str().to_string())
                else {
                    continue;
                };
                let address = headers
                    .and_then(|h| h.get(ADDRESS))
                    .and_then(|v| v.as_str().parse().ok());
                return Some(Arrival::Open {
                    back: RelayBack {
                        client: self.client.clone(),
                        subject: Subject::from(back),
                    },
                    address,
                    hello: message.payload.clone(),
                    ack: message.reply.clone(),
                });
            }
            let (Some(frame), Some(reply)) =
                (RelayFrame::from_message(&message), message.reply.as_ref())
            else {
                continue;
            };
            return Some(Arrival::Frame {
                key: reply.to_string(),
                frame,
            });
        }
    }

    /// The way back to connection `key`, for telling a gateway that a
    /// connection it still uses is gone here.
    pub fn back_to(&self, key: &str) -> RelayBack {
        RelayBack {
            client: self.client.clone(),
            subject: Subject::from(key),
        }
    }

    /// Tells the gateway that its connection is taken.
    pub async fn acknowledge(&self, ack: Subject) -> Result<(), ClusterError> {
        self.client
            .publish(ack, Bytes::new())
            .await
            .map_err(nats_error)
    }
}

/// An owner's way back to one relayed connection.
#[derive(Debug, Clone)]
pub struct RelayBack {
    client: async_nats::Client,
    subject: Subject,
}

impl RelayBack {
    /// Names the connection in [`Arrival::Frame`].
    pub fn key(&self) -> &str {
        self.subject.as_str()
    }

    pub async fn send(&self, frame: RelayFrame) -> Result<(), ClusterError> {
        self.client
            .publish_with_headers(self.subject.clone(), frame.headers(), frame.payload())
            .await
            .map_err(nats_error)
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
