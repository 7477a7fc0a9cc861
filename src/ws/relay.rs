//! Gateways: any node takes any participant.
//!
//! A hello for a session another node owns is not refused: this node
//! opens a relayed connection to the owner (`cluster::Relay`) and passes
//! frames both ways until either side ends. The owner serves it with the
//! same reader and writer as its own sockets ([`accept_relayed`]), so the
//! participant meets the owner's roles, limits, record and clock: a clock
//! ping is answered by the owner in the owner's time, and the gateway's
//! hop is part of the round trip that clock sync already measures and
//! halves. Its error is the hop's asymmetry (docs/cluster.md).
//!
//! The gateway keeps its own socket's duties: pings and the dead-peer
//! timeout towards the page, a bounded queue (a page too slow for it is
//! dropped, and resumes with a fresh snapshot), and it watches the owner:
//! when the owner stops answering, the page is told `session_moved` and
//! reconnects; the node it reaches then relays to the new owner or takes
//! the session over.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{Message, Utf8Bytes};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::cluster::{Arrival, MediaGrant, RelayBack, RelayError, RelayFrame};
use crate::http::App;
use crate::live::Outbound;
use crate::protocol::{ClientMessage, ErrorCode, ServerMessage};
use crate::rtc::{IceCandidate, RtcHub};
use crate::session::ParticipantId;

use super::{run, Reach};

/// Frames from a gateway waiting for a relayed connection's reader: as
/// many as a burst the rate limit lets through.
const RELAYED_QUEUE: usize = 64;

/// The parts of a local connection the gateway takes over.
pub(super) struct Ends<'a, St> {
    pub stream: &'a mut St,
    pub tx: &'a mpsc::Sender<Outbound>,
    pub writer: &'a mut JoinHandle<()>,
    pub shutdown: &'a mut watch::Receiver<bool>,
}

/// Relays a connection whose hello asks for a session `owner` runs, until
/// either side ends. Returns whether the writer has finished.
pub(super) async fn gateway<St, E>(
    app: &Arc<App>,
    owner: &str,
    hello: Bytes,
    reach: &Reach,
    ends: Ends<'_, St>,
) -> bool
where
    St: futures_util::Stream<Item = Result<Message, E>> + Unpin,
{
    let Ends {
        stream,
        tx,
        writer,
        shutdown,
    } = ends;
    let Some(cluster) = &app.cluster else {
        return false;
    };
    let say = |code: ErrorCode, message: String| {
        let _ = tx.try_send(Outbound::Close { code, message });
    };
    let mut link = match cluster
        .relay
        .open(owner, reach.conn_id, reach.address, hello)
        .await
    {
        Ok(link) => link,
        Err(err) => {
            // Until its lease lapses, a dead owner is still the owner:
            // the page tries again, and a later try takes the session.
            let (code, message) = match err {
                RelayError::Absent(_) | RelayError::Timeout { .. } | RelayError::Refused { .. } => {
                    (
                        ErrorCode::SessionElsewhere,
                        format!("{err}; it runs this session until its lease lapses: reconnecting"),
                    )
                }
                RelayError::Cluster(_) => (ErrorCode::SessionMoved, err.to_string()),
            };
            let _ = tx.try_send(Outbound::message(&ServerMessage::Error {
                code,
                message: message.clone(),
                reference: None,
                retry_after_secs: None,
            }));
            say(ErrorCode::SessionMoved, message);
            return false;
        }
    };
    app.metrics
        .relayed_connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut owner_alive = cluster.relay.owner_alive(owner);
    let limits = &app.config.limits;
    let dead_after = Duration::from_millis(limits.dead_peer_timeout_ms);
    let mut pings = tokio::time::interval(Duration::from_millis(limits.ping_interval_ms.max(1)));
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    let mut writer_done = false;
    let mut viewer = LocalViewer {
        app,
        who: ParticipantId(reach.conn_id),
        tx,
        hub: None,
        sent_on: None,
    };
    loop {
        tokio::select! {
            frame = stream.next() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(Message::Text(text))) => {
                        if viewer.takes(text.as_str()).await {
                            continue;
                        }
                        if let Some(sent) = viewer.report_before(text.as_str()) {
                            let _ = link.send(sent).await;
                        }
                        if link.send(RelayFrame::Text(text.into())).await.is_err() {
                            say(ErrorCode::SessionMoved, "this node lost the cluster; reconnecting".into());
                            break;
                        }
                    }
                    Some(Ok(Message::Binary(_))) => {
                        let _ = tx.try_send(Outbound::message(&ServerMessage::Error {
                            code: ErrorCode::Malformed,
                            message: "send JSON in text frames".into(),
                            reference: None,
                            retry_after_secs: None,
                        }));
                    }
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                    Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                }
            }
            frame = link.next() => match frame {
                Some(RelayFrame::Text(bytes)) => {
                    let Ok(text) = Utf8Bytes::try_from(bytes) else { continue };
                    if tx.try_send(Outbound::Text { text, stamp: None }).is_err() {
                        // Too slow for its queue: dropped, as a local
                        // lagging page is not; it resumes with a snapshot.
                        tracing::debug!(conn_id = reach.conn_id, "relayed page too slow; dropped");
                        break;
                    }
                }
                Some(RelayFrame::Alive) => {
                    let _ = link.send(RelayFrame::Alive).await;
                }
                Some(RelayFrame::Media(grant)) => viewer.start(&grant).await,
                // Only a gateway reports what it sent.
                Some(RelayFrame::Sent(_)) => {}
                // The owner's goodbye came as text before this.
                Some(RelayFrame::Close) => break,
                None => {
                    say(ErrorCode::SessionMoved, "this node lost the cluster; reconnecting".into());
                    break;
                }
            },
            // A guard must not live across the select's awaits.
            () = async { let _ = owner_alive.wait_for(|alive| !alive).await; } => {
                say(
                    ErrorCode::SessionMoved,
                    format!("node {owner}, which ran this session, stopped answering; reconnecting"),
                );
                break;
            }
            _ = pings.tick() => {
                if last_heard.elapsed() >= dead_after {
                    say(ErrorCode::PeerTimeout, "nothing heard from this connection; reconnect".into());
                    break;
                }
                let _ = tx.try_send(Outbound::KeepAlive);
            }
            _ = shutdown.changed() => {
                say(ErrorCode::ShuttingDown, "the server is shutting down".into());
                break;
            }
            _ = &mut *writer => {
                writer_done = true;
                break;
            }
        }
    }
    let _ = link.send(RelayFrame::Close).await;
    viewer.stop().await;
    writer_done
}

/// A relayed participant's WebRTC peer, run on its gateway from the
/// owner's relayed stream (`cluster::media`): the browser meets this
/// node's ICE candidates, and the owner encodes once for every node.
struct LocalViewer<'a> {
    app: &'a Arc<App>,
    who: ParticipantId,
    tx: &'a mpsc::Sender<Outbound>,
    /// The hub its peer is on, once the owner granted a stream.
    hub: Option<Arc<RtcHub>>,
    /// The last hub it had a peer on: what it was sent stays there.
    sent_on: Option<Arc<RtcHub>>,
}

impl LocalViewer<'_> {
    /// Takes the page's signalling for a peer run here; anything else
    /// (and a new `rtcStart`, which the owner decides) goes to the owner.
    async fn takes(&mut self, text: &str) -> bool {
        // Cheap for the frames that are not signalling: most of them.
        if !text.contains("\"rtc") {
            return false;
        }
        let Ok(message) = serde_json::from_str::<ClientMessage>(text) else {
            return false;
        };
        let Some(hub) = self.hub.clone() else {
            return false;
        };
        let result = match message {
            ClientMessage::RtcAnswer { sdp } => hub.answer(self.who, sdp).await,
            ClientMessage::RtcCandidate { candidate } => {
                let candidate = IceCandidate {
                    candidate: candidate.candidate,
                    sdp_mid: candidate.sdp_mid,
                    sdp_m_line_index: candidate.sdp_m_line_index,
                };
                hub.candidate(self.who, candidate).await
            }
            ClientMessage::RtcStop => {
                self.stop().await;
                Ok(())
            }
            ClientMessage::RtcStart => {
                // Asked again: the owner grants again (the room may have
                // moved to another stream), and the old peer goes.
                self.stop().await;
                return false;
            }
            _ => return false,
        };
        if let Err(err) = result {
            self.refuse(err.to_string());
        }
        true
    }

    /// Before an approval goes to the owner: what this node's peer sent
    /// the approver, for the receipt the owner files with it.
    fn report_before(&self, text: &str) -> Option<RelayFrame> {
        if !text.contains("\"approve\"") {
            return None;
        }
        let Ok(ClientMessage::Approve { .. }) = serde_json::from_str::<ClientMessage>(text) else {
            return None;
        };
        let (bytes, span) = self.sent_on.as_ref()?.sent_to(self.who)?;
        Some(RelayFrame::Sent(Bytes::from(format!(
            "{bytes} {}",
            span.as_millis()
        ))))
    }

    /// The owner granted a stream: this node's peer for the page.
    async fn start(&mut self, grant: &[u8]) {
        let Some(media) = self.app.cluster.as_ref().and_then(|c| c.media.clone()) else {
            self.refuse("this node does not relay video (cluster.relay_media = false)".into());
            return;
        };
        let Some(grant) = MediaGrant::parse(grant) else {
            tracing::warn!("a media grant that does not parse");
            return;
        };
        let settings = self.app.config.rtc_settings();
        let hub = match media.watch(&grant, &settings).await {
            Ok(hub) => hub,
            Err(err) => return self.refuse(err.to_string()),
        };
        self.stop().await;
        match hub
            .start(self.who, super::page_signals(self.tx.clone()))
            .await
        {
            Ok(()) => {
                self.sent_on = Some(hub.clone());
                self.hub = Some(hub);
            }
            Err(err) => self.refuse(err.to_string()),
        }
    }

    async fn stop(&mut self) {
        if let Some(hub) = self.hub.take() {
            hub.stop(self.who).await;
        }
    }

    fn refuse(&self, message: String) {
        let _ = self.tx.try_send(Outbound::message(&ServerMessage::Error {
            code: ErrorCode::Rtc,
            message,
            reference: None,
            retry_after_secs: None,
        }));
    }
}

/// The owner's side: serves every connection gateways relay to this node,
/// until NATS closes the subscription. Nothing without `--cluster`.
pub fn accept_relayed(app: &Arc<App>) -> Option<JoinHandle<()>> {
    let cluster = app.cluster.clone()?;
    let app = app.clone();
    Some(tokio::spawn(async move {
        let mut accepted = match cluster.relay.accept().await {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::error!(%err, "relayed connections cannot be taken");
                return;
            }
        };
        let mut readers: HashMap<String, mpsc::Sender<Message>> = HashMap::new();
        while let Some(arrival) = accepted.next().await {
            match arrival {
                Arrival::Open {
                    back,
                    address,
                    hello,
                    ack,
                } => {
                    let Ok(hello) = Utf8Bytes::try_from(hello) else {
                        continue;
                    };
                    let (frames, rx) = mpsc::channel(RELAYED_QUEUE);
                    let _ = frames.try_send(Message::Text(hello));
                    readers.retain(|_, reader| !reader.is_closed());
                    readers.insert(back.key().to_string(), frames);
                    let reach = Reach {
                        conn_id: app.next_conn_id(),
                        address,
                        may_relay: false,
                        via: Some(back.clone()),
                    };
                    tokio::spawn(serve_relayed(app.clone(), back, rx, reach));
                    if let Some(ack) = ack {
                        let _ = accepted.acknowledge(ack).await;
                    }
                }
                Arrival::Frame { key, frame } => {
                    let message = match frame {
                        RelayFrame::Text(bytes) => match Utf8Bytes::try_from(bytes) {
                            Ok(text) => Message::Text(text),
                            Err(_) => continue,
                        },
                        RelayFrame::Alive => Message::Pong(Bytes::new()),
                        // Only an owner grants media.
                        RelayFrame::Media(_) => continue,
                        // Only a gateway speaks binary to an owner: a
                        // page's binary frames end at its gateway.
                        RelayFrame::Sent(report) => Message::Binary(report),
                        RelayFrame::Close => {
                            // Its reader sees the end of its frames.
                            readers.remove(&key);
                            continue;
                        }
                    };
                    let gone = match readers.get(&key) {
                        Some(reader) => matches!(
                            reader.try_send(message),
                            Err(mpsc::error::TrySendError::Closed(_))
                        ),
                        None => true,
                    };
                    if gone {
                        readers.remove(&key);
                        if let Some(back) = accepted.back_to(&key) {
                            let _ = back.send(RelayFrame::Close).await;
                        }
                    }
                }
            }
        }
    }))
}

/// One relayed connection on the owner: the local reader loop and writer
/// over NATS.
async fn serve_relayed(
    app: Arc<App>,
    back: RelayBack,
    frames: mpsc::Receiver<Message>,
    reach: Reach,
) {
    let stream = Box::pin(futures_util::stream::unfold(frames, |mut frames| async {
        let frame = frames.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(frame), frames))
    }));
    let sink = Box::pin(futures_util::sink::unfold(
        back.clone(),
        |back, message: Message| async move {
            let frame = match message {
                Message::Text(text) => RelayFrame::Text(text.into()),
                Message::Ping(_) => RelayFrame::Alive,
                Message::Close(_) => RelayFrame::Close,
                Message::Binary(_) | Message::Pong(_) => return Ok(back),
            };
            back.send(frame).await.map(|()| back)
        },
    ));
    let shutdown = app.shutdown.clone();
    run(stream, sink, app, reach, shutdown).await;
    // However it ended, the gateway hears that it has.
    let _ = back.send(RelayFrame::Close).await;
}
