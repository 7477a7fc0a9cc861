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
//! - `syncreel.relay.fan.<gateway>`: the owner's frames to the relayed
//!   connections of one gateway node. A frame for several of them (a
//!   broadcast, serialized once) crosses once, naming them all
//!   (`Relay-To`); the gateway copies it into each one's queue. One
//!   subject per gateway keeps each connection's frames in order.
//! - `syncreel.relay.out.<gateway>.<conn>` names a relayed connection
//!   (the reply subject of its frames to the owner); nothing is sent
//!   to it.
//!
//! Text only: this module knows nothing of the wire's messages, only that
//! frames are text, and that either side may say it is alive or closing.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::{HeaderMap, Subject};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch, OnceCell};

use super::{ClusterError, NodeId};

mod asks;
pub use asks::{Ended, Handover, Handovers};

const KIND: &str = "Relay-Kind";
const ADDRESS: &str = "Relay-Address";
/// On a fanned frame: the connections it is for, comma-separated.
const TO: &str = "Relay-To";

/// Frames a gateway holds for one relayed connection. The gateway's loop
/// only moves them on to the page's own bounded queue, so this fills only
/// when that loop is starved; the connection then ends and the page
/// resumes elsewhere, as a page too slow for its queue does.
const LINK_QUEUE: usize = 1024;
/// Frames an owner takes at once to send to one gateway node: a
/// broadcast reaches all its connections there within one batch.
const FAN_BATCH: usize = 1024;
/// Frames waiting for an owner's sender to one gateway node.
const FAN_QUEUE: usize = 4096;

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
    /// Owner to gateway, never to the page: the stream this connection's
    /// `rtcStart` may watch, as a [`super::MediaGrant`]. The gateway runs
    /// the viewer's peer itself (`cluster::media`).
    Media(Bytes),
    /// Gateway to owner: the video its peer sent this connection's viewer
    /// so far, `<bytes> <milliseconds>`, ahead of an approval, whose
    /// receipt says what the approver was sent.
    Sent(Bytes),
}

impl RelayFrame {
    fn kind(&self) -> &'static str {
        match self {
            RelayFrame::Text(_) => "text",
            RelayFrame::Alive => "alive",
            RelayFrame::Close => "close",
            RelayFrame::Media(_) => "media",
            RelayFrame::Sent(_) => "sent",
        }
    }

    fn from_message(message: &async_nats::Message) -> Option<RelayFrame> {
        let kind = message.headers.as_ref()?.get(KIND)?.as_str();
        match kind {
            "text" | "open" => Some(RelayFrame::Text(message.payload.clone())),
            "alive" => Some(RelayFrame::Alive),
            "close" => Some(RelayFrame::Close),
            "media" => Some(RelayFrame::Media(message.payload.clone())),
            "sent" => Some(RelayFrame::Sent(message.payload.clone())),
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
            RelayFrame::Text(bytes) | RelayFrame::Media(bytes) | RelayFrame::Sent(bytes) => bytes,
            RelayFrame::Alive | RelayFrame::Close => Bytes::new(),
        }
    }

    /// The same frame, handed to several connections, has the same
    /// identity: a broadcast is serialized once and its bytes shared.
    fn identity(&self) -> (&'static str, usize, usize) {
        match self {
            RelayFrame::Text(bytes) | RelayFrame::Media(bytes) | RelayFrame::Sent(bytes) => {
                (self.kind(), bytes.as_ptr() as usize, bytes.len())
            }
            other => (other.kind(), 0, 0),
        }
    }
}

/// Frames bound for one gateway node's connections, grouped so that a
/// frame for several crosses once: `(frame, connections)` in the order to
/// send. A connection's frames keep their order: a frame joins an earlier
/// group of the same frame only if none of that connection's frames is in
/// a group after it.
fn group(frames: impl IntoIterator<Item = (u64, RelayFrame)>) -> Vec<(RelayFrame, Vec<u64>)> {
    let mut groups: Vec<(RelayFrame, Vec<u64>)> = Vec::new();
    // The newest group of each frame, and each connection's last group.
    let mut newest: HashMap<(&'static str, usize, usize), usize> = HashMap::new();
    let mut last_of: HashMap<u64, usize> = HashMap::new();
    for (conn, frame) in frames {
        let identity = frame.identity();
        let joinable = newest
            .get(&identity)
            .copied()
            .filter(|&g| last_of.get(&conn).is_none_or(|&last| last < g));
        let g = joinable.unwrap_or_else(|| {
            groups.push((frame, Vec::new()));
            newest.insert(identity, groups.len() - 1);
            groups.len() - 1
        });
        groups[g].1.push(conn);
        last_of.insert(conn, g);
    }
    groups
}

fn list(conns: &[u64]) -> String {
    let mut out = String::with_capacity(conns.len() * 4);
    for (i, conn) in conns.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&conn.to_string());
    }
    out
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
    /// Gateway side: this node's relayed connections, fed from its one
    /// fan subject.
    links: Arc<Links>,
}

/// A gateway's relayed connections by number, and whether the task that
/// feeds them from the fan subject runs.
#[derive(Default)]
struct Links {
    queues: Mutex<HashMap<u64, mpsc::Sender<RelayFrame>>>,
    fed: OnceCell<()>,
}

impl Links {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, mpsc::Sender<RelayFrame>>> {
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn fan_of(node: &str) -> String {
    format!("syncreel.relay.fan.{node}")
}

const BACK_PREFIX: &str = "syncreel.relay.out.";

/// The name of connection `conn` of gateway `node`.
fn back_of(node: &str, conn: u64) -> String {
    format!("{BACK_PREFIX}{node}.{conn}")
}

/// The gateway node and connection number a [`back_of`] name holds (node
/// ids have no dots).
fn parse_back(key: &str) -> Option<(&str, u64)> {
    let (node, conn) = key.strip_prefix(BACK_PREFIX)?.split_once('.')?;
    Some((node, conn.parse().ok()?))
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("node", &self.node).finish()
    }
}

fn inbox_of(node: &str) -> String {
    format!("syncreel.relay.in.{node}")
}

fn nats_error(err: impl std::fmt::Display) -> ClusterError {
    ClusterError::Nats(err.to_string())
}

impl Relay {
    pub(super) fn new(client: async_nats::Client, node: NodeId) -> Relay {
        Relay {
            client,
            node,
            probes: Arc::default(),
            links: Arc::default(),
        }
    }

    /// Starts, once, the task that copies what owners send this node into
    /// its relayed connections' queues.
    async fn feed_links(&self) -> Result<(), ClusterError> {
        self.links
            .fed
            .get_or_try_init(|| async {
                let mut fanned = self
                    .client
                    .subscribe(fan_of(self.node.as_str()))
                    .await
                    .map_err(nats_error)?;
                let links = self.links.clone();
                tokio::spawn(async move {
                    while let Some(message) = fanned.next().await {
                        let (Some(frame), Some(to)) = (
                            RelayFrame::from_message(&message),
                            message.headers.as_ref().and_then(|h| h.get(TO)),
                        ) else {
                            continue;
                        };
                        let mut queues = links.lock();
                        for conn in to.as_str().split(',').filter_map(|c| c.parse().ok()) {
                            let Some(queue) = queues.get(&conn) else {
                                continue;
                            };
                            // Full or gone: the connection ends (its
                            // `next` sees the end) and the page resumes.
                            if queue.try_send(frame.clone()).is_err() {
                                queues.remove(&conn);
                            }
                        }
                    }
                    // NATS closed the subscription: every link ends.
                    links.lock().clear();
                });
                Ok(())
            })
            .await
            .map(|_| ())
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
        let back = back_of(self.node.as_str(), conn);
        self.feed_links().await?;
        // Listening before the owner can send anything.
        let (queue, from_owner) = mpsc::channel(LINK_QUEUE);
        self.links.lock().insert(conn, queue);
        let link = RelayLink {
            client: self.client.clone(),
            to_owner: Subject::from(inbox_of(owner)),
            back: Subject::from(back.clone()),
            conn,
            links: self.links.clone(),
            from_owner,
        };
        let mut headers = HeaderMap::new();
        headers.insert(KIND, "open");
        if let Some(address) = address {
            headers.insert(ADDRESS, address.to_string());
        }
        headers.insert("Relay-Back", back.as_str());
        let request = async_nats::Request::new().headers(headers).payload(hello);
        // A refusal drops the link, which takes it out of `links`.
        self.ask(owner, inbox_of(owner), request, OPEN_TIMEOUT)
            .await?;
        Ok(link)
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
            fans: HashMap::new(),
        })
    }
}

/// A gateway's relayed connection to an owner.
pub struct RelayLink {
    client: async_nats::Client,
    to_owner: Subject,
    /// Names this connection to the owner.
    back: Subject,
    /// Its number among this node's links, and the links, which it
    /// leaves when dropped.
    conn: u64,
    links: Arc<Links>,
    from_owner: mpsc::Receiver<RelayFrame>,
}

impl Drop for RelayLink {
    fn drop(&mut self) {
        self.links.lock().remove(&self.conn);
    }
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
    /// subscription, or the link fell too far behind.
    pub async fn next(&mut self) -> Option<RelayFrame> {
        self.from_owner.recv().await
    }
}

/// What arrives at an owner from gateways.
pub struct Accepted {
    client: async_nats::Client,
    inbox: async_nats::Subscriber,
    /// The sender to each gateway node's fan subject.
    fans: HashMap<String, mpsc::Sender<(u64, RelayFrame)>>,
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
                let header = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
                let address = header(ADDRESS).and_then(|v| v.parse().ok());
                let Some(back) = header("Relay-Back").and_then(|key| self.back_to(key)) else {
                    continue;
                };
                return Some(Arrival::Open {
                    back,
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

    /// The way back to connection `key` (its [`RelayBack::key`]), also
    /// for telling a gateway that a connection it still uses is gone
    /// here; `None` for a name no gateway gives.
    pub fn back_to(&mut self, key: &str) -> Option<RelayBack> {
        let (node, conn) = parse_back(key)?;
        Some(RelayBack {
            key: key.to_string(),
            conn,
            fan: self.fan_to(node),
        })
    }

    /// The sender to gateway `node`'s fan subject, started on the first
    /// connection from there.
    fn fan_to(&mut self, node: &str) -> mpsc::Sender<(u64, RelayFrame)> {
        if let Some(sender) = self.fans.get(node).filter(|s| !s.is_closed()) {
            return sender.clone();
        }
        let (sender, frames) = mpsc::channel(FAN_QUEUE);
        tokio::spawn(fan_out(
            self.client.clone(),
            Subject::from(fan_of(node)),
            frames,
        ));
        self.fans.insert(node.to_string(), sender.clone());
        sender
    }

    /// Tells the gateway that its connection is taken.
    pub async fn acknowledge(&self, ack: Subject) -> Result<(), ClusterError> {
        self.client
            .publish(ack, Bytes::new())
            .await
            .map_err(nats_error)
    }
}

/// Sends what an owner's connections of one gateway node are sent, a
/// batch at a time: each frame once, with the connections it is for.
async fn fan_out(
    client: async_nats::Client,
    subject: Subject,
    mut frames: mpsc::Receiver<(u64, RelayFrame)>,
) {
    let mut batch = Vec::with_capacity(FAN_BATCH);
    while frames.recv_many(&mut batch, FAN_BATCH).await > 0 {
        // A broadcast reaches its connections' writers together, and they
        // hand it here one by one: let the runnable ones run before the
        // batch goes, so that it mostly crosses once. Costs microseconds;
        // stops after two turns in a row bring nothing new. No timer: a
        // frame for one connection (a clock pong) must not wait.
        let mut idle_turns = 0;
        while batch.len() < FAN_BATCH && idle_turns < 2 {
            tokio::task::yield_now().await;
            let before = batch.len();
            while batch.len() < FAN_BATCH {
                match frames.try_recv() {
                    Ok(frame) => batch.push(frame),
                    Err(_) => break,
                }
            }
            idle_turns = if batch.len() == before {
                idle_turns + 1
            } else {
                0
            };
        }
        for (frame, conns) in group(batch.drain(..)) {
            let mut headers = frame.headers();
            headers.insert(TO, list(&conns).as_str());
            if let Err(err) = client
                .publish_with_headers(subject.clone(), headers, frame.payload())
                .await
            {
                // The client reconnects by itself; the gateway's pages
                // notice a gap as any lost frame (a resync).
                tracing::debug!(%err, %subject, "a relayed frame was not sent");
            }
        }
    }
}

/// An owner's way back to one relayed connection.
#[derive(Debug, Clone)]
pub struct RelayBack {
    key: String,
    conn: u64,
    fan: mpsc::Sender<(u64, RelayFrame)>,
}

impl RelayBack {
    /// Names the connection in [`Arrival::Frame`].
    pub fn key(&self) -> &str {
        &self.key
    }

    pub async fn send(&self, frame: RelayFrame) -> Result<(), ClusterError> {
        self.fan
            .send((self.conn, frame))
            .await
            .map_err(|_| ClusterError::Nats("the relay to the gateway has stopped".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> RelayFrame {
        RelayFrame::Text(Bytes::from_static(s.as_bytes()))
    }

    /// Each connection's frames, in the order the groups deliver them.
    fn delivered(groups: &[(RelayFrame, Vec<u64>)]) -> HashMap<u64, Vec<RelayFrame>> {
        let mut out: HashMap<u64, Vec<RelayFrame>> = HashMap::new();
        for (frame, conns) in groups {
            for conn in conns {
                out.entry(*conn).or_default().push(frame.clone());
            }
        }
        out
    }

    #[test]
    fn a_broadcast_crosses_once_for_every_connection_of_a_node() {
        let (x, y) = (text("x"), text("y"));
        // Writers of three connections interleave two broadcasts.
        let frames = vec![
            (1, x.clone()),
            (2, x.clone()),
            (1, y.clone()),
            (3, x.clone()),
            (2, y.clone()),
            (3, y.clone()),
        ];
        let groups = group(frames);
        assert_eq!(groups.len(), 2, "{groups:?}");
        assert_eq!(groups[0], (x.clone(), vec![1, 2, 3]));
        assert_eq!(groups[1], (y.clone(), vec![1, 2, 3]));
    }

    #[test]
    fn a_connections_frames_keep_their_order() {
        let (x, y) = (text("x"), text("y"));
        // Connection 2 was sent y (to it alone) before the broadcast x.
        let frames = vec![
            (1, x.clone()),
            (2, y.clone()),
            (2, x.clone()),
            (1, y.clone()),
            (3, x.clone()),
            (3, x.clone()),
            (1, RelayFrame::Alive),
            (1, RelayFrame::Alive),
        ];
        let groups = group(frames.clone());
        let mut want: HashMap<u64, Vec<RelayFrame>> = HashMap::new();
        for (conn, frame) in frames {
            want.entry(conn).or_default().push(frame);
        }
        assert_eq!(delivered(&groups), want);
        // Equal text that is not the same broadcast is not merged.
        let apart = group(vec![
            (1, text("z")),
            (2, RelayFrame::Text(Bytes::copy_from_slice(b"z"))),
        ]);
        assert_eq!(apart.len(), 2);
    }

    #[test]
    fn a_connection_is_named_by_its_gateway_and_number() {
        let key = back_of("node-b", 42);
        assert_eq!(parse_back(&key), Some(("node-b", 42)));
        assert_eq!(parse_back("syncreel.relay.out.node-b"), None);
        assert_eq!(parse_back("syncreel.relay.in.node-b.4"), None);
        assert_eq!(list(&[3, 10, 7]), "3,10,7");
    }
}
