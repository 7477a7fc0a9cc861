//! One WebSocket connection: a reader loop and a writer task.
//!
//! The reader checks size and rate, parses, answers clock-sync pings
//! itself (routing them through the session task would add its queueing
//! delay to one direction only, which clock sync would misread as offset),
//! and forwards everything else to the session. The writer drains the
//! connection's bounded queue. Nothing a client sends can close the
//! connection except a close frame or a frame beyond the transport's hard
//! size cap; everything else is answered with a typed error.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use axum::extract::{State, WebSocketUpgrade};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use futures_util::{SinkExt, StreamExt};
use rand::RngCore;
use tokio::sync::{mpsc, oneshot, watch};

use crate::cluster::RelayFrame;
use crate::http::{ApiError, App, Peer, Unavailable};
use crate::links::LinkError;
use crate::live::{unhex16, Admitted, Draft, Outbound, SessionHandle, SessionMsg, Stamp, Stroking};
use crate::passcode::Refusal;
use crate::protocol::{
    self, speed_from_wire, ClientMessage, ErrorCode, ParseError, ServerMessage, WireCandidate,
    PROTOCOL_VERSION,
};
use crate::rtc::{IceCandidate, Signal, Signals};
use crate::session::{Command, CueAt, ParticipantId, SeekTarget, SyncReport};
use crate::timecode::Timecode;

mod compare;
mod relay;

pub use relay::accept_relayed;

/// A refusal to send back to this connection.
struct Reject {
    code: ErrorCode,
    message: String,
    /// With `passcode_locked`: seconds until a passcode is checked again.
    retry_after_secs: Option<u64>,
}

impl Reject {
    fn new(code: ErrorCode, message: impl Into<String>) -> Reject {
        Reject {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    fn passcode(refusal: Refusal) -> Reject {
        let message = refusal.to_string();
        match refusal {
            Refusal::Required => Reject::new(ErrorCode::PasscodeRequired, message),
            Refusal::Wrong => Reject::new(ErrorCode::PasscodeWrong, message),
            Refusal::Locked { retry_after_secs } => Reject {
                retry_after_secs: Some(retry_after_secs),
                ..Reject::new(ErrorCode::PasscodeLocked, message)
            },
            Refusal::Busy => Reject::new(ErrorCode::RateLimited, message),
        }
    }
}

/// The membership a successful hello establishes.
struct Joined {
    session: SessionHandle,
    id: ParticipantId,
}

/// The live wire's routes, for `http::router`.
pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/ws", get(upgrade))
}

/// The `/ws` upgrade: refused with a typed error at the connection limit.
async fn upgrade(
    State(app): State<Arc<App>>,
    peer: Peer,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let limits = &app.config.limits;
    let open = app.metrics.connections_open.load(Relaxed);
    if open >= 0 && open as usize >= limits.max_connections {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_connections",
            "this server is at its connection limit",
        ));
    }
    // Frames up to the hard cap are read and refused with a typed error;
    // only beyond it does the transport itself close the connection.
    let hard_cap = (limits.max_message_bytes * 4).max(64 * 1024);
    let conn_id = app.next_conn_id();
    let shutdown = app.shutdown.clone();
    Ok(ws
        .read_buffer_size(4 * 1024)
        // Frames are buffered until the writer flushes: it flushes once per
        // batch of whatever was already queued (`ws::write_loop`), so a lone
        // message still goes out at once and a burst in one `send`.
        .write_buffer_size(64 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .max_message_size(hard_cap)
        .max_frame_size(hard_cap)
        .on_upgrade(move |socket| serve(socket, app, conn_id, peer.0, shutdown)))
}

pub async fn serve(
    socket: WebSocket,
    app: Arc<App>,
    conn_id: u64,
    address: Option<std::net::IpAddr>,
    shutdown: watch::Receiver<bool>,
) {
    let (sink, stream) = socket.split();
    let reach = Reach {
        conn_id,
        address,
        may_relay: true,
        via: None,
    };
    run(stream, sink, app, reach, shutdown).await;
}

/// Where a connection comes from.
struct Reach {
    conn_id: u64,
    /// The client's address, for the count of wrong passcodes.
    address: Option<std::net::IpAddr>,
    /// Whether a hello for a session another node owns is relayed there
    /// (a socket of this node's own) rather than refused (a connection
    /// another node relays here: one hop at most).
    may_relay: bool,
    /// A connection a gateway relays here: the way back to that gateway,
    /// for what is said to the gateway rather than to the page.
    via: Option<crate::cluster::RelayBack>,
}

/// Serves one connection, a socket of this node's or one relayed from a
/// gateway: the same reader loop over any stream of frames, the same
/// writer over any sink.
async fn run<St, E, Si>(
    mut stream: St,
    sink: Si,
    app: Arc<App>,
    reach: Reach,
    mut shutdown: watch::Receiver<bool>,
) where
    St: futures_util::Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
    Si: futures_util::Sink<Message> + Unpin + Send + 'static,
    Si::Error: Send,
{
    let Reach {
        conn_id,
        address,
        may_relay,
        via,
    } = reach;
    let metrics = app.metrics.clone();
    let _open = OpenConnection::count(metrics.clone());

    let (tx, rx) = mpsc::channel(app.config.limits.outbound_queue);
    let mut writer = tokio::spawn(write_loop(sink, rx, app.clone()));

    let mut conn = Connection {
        app: app.clone(),
        conn_id,
        address,
        tx: tx.clone(),
        joined: None,
        bucket: TokenBucket::new(
            app.config.limits.messages_per_second,
            app.config.limits.message_burst,
        ),
        last_rate_warning: None,
        compared: None,
        may_relay,
        via,
    };
    let mut writer_done = false;
    let limits = &app.config.limits;
    let hello_deadline =
        tokio::time::Instant::now() + Duration::from_millis(limits.hello_timeout_ms);
    let dead_after = Duration::from_millis(limits.dead_peer_timeout_ms);
    let mut pings = tokio::time::interval(Duration::from_millis(limits.ping_interval_ms.max(1)));
    pings.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_heard = Instant::now();
    loop {
        let frame = tokio::select! {
            frame = stream.next() => frame,
            () = tokio::time::sleep_until(hello_deadline), if conn.joined.is_none() => {
                let _ = tx.try_send(Outbound::Close {
                    code: ErrorCode::HelloTimeout,
                    message: "no hello came in time; open a new connection".into(),
                });
                break;
            }
            _ = pings.tick() => {
                if last_heard.elapsed() >= dead_after {
                    // Dropped like any lost connection: the session keeps
                    // the participant for a resume, and a driver's seat
                    // waits its grace and then goes back to a host.
                    let _ = tx.try_send(Outbound::Close {
                        code: ErrorCode::PeerTimeout,
                        message: "nothing heard from this connection; reconnect".into(),
                    });
                    break;
                }
                let _ = tx.try_send(Outbound::KeepAlive);
                continue;
            }
            _ = shutdown.changed() => {
                let _ = tx.try_send(Outbound::Close {
                    code: ErrorCode::ShuttingDown,
                    message: "the server is shutting down".into(),
                });
                break;
            }
            _ = &mut writer => {
                writer_done = true;
                break;
            }
        };
        let arrived = Instant::now();
        last_heard = arrived;
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Binary(report))) if conn.via.is_some() => {
                conn.sent_elsewhere(&report);
                continue;
            }
            Some(Ok(Message::Binary(_))) => {
                conn.reject(
                    Reject::new(ErrorCode::Malformed, "send JSON in text frames"),
                    None,
                );
                continue;
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None => break,
            Some(Err(err)) => {
                tracing::debug!(conn_id, %err, "websocket read failed");
                break;
            }
        };
        metrics.messages_in.fetch_add(1, Relaxed);
        match conn.handle_text(&text, arrived).await {
            Flow::Continue => {}
            Flow::Stop => break,
            Flow::Relay(owner) => {
                let ends = relay::Ends {
                    stream: &mut stream,
                    tx: &tx,
                    writer: &mut writer,
                    shutdown: &mut shutdown,
                };
                writer_done =
                    relay::gateway(&app, &owner, text.into(), &reach_of(&conn), ends).await;
                break;
            }
        }
    }

    if let Some(joined) = conn.joined.take() {
        if let Some(media) = &joined.session.media {
            // Boxed: webrtc-rs futures are large, and inlining them would
            // grow every idle connection's future by kilobytes.
            Box::pin(media.hub.stop(joined.id)).await;
        }
        let _ = joined
            .session
            .tx
            .send(SessionMsg::Disconnect {
                from: joined.id,
                conn_id,
            })
            .await;
    }
    drop(conn);
    drop(tx);
    // The writer ends once the session drops its sender too; a peer that
    // stopped reading must not hold the task forever.
    if !writer_done
        && tokio::time::timeout(Duration::from_secs(2), &mut writer)
            .await
            .is_err()
    {
        writer.abort();
    }
}

/// Counts a connection as open for exactly as long as it lives, even if
/// its task unwinds.
struct OpenConnection(Arc<crate::metrics::Metrics>);

impl OpenConnection {
    fn count(metrics: Arc<crate::metrics::Metrics>) -> OpenConnection {
        metrics.connections_open.fetch_add(1, Relaxed);
        metrics.connections_total.fetch_add(1, Relaxed);
        OpenConnection(metrics)
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.connections_open.fetch_sub(1, Relaxed);
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Stop,
    /// Another node owns the session this hello asks for: relay the
    /// connection there (the hello included).
    Relay(String),
}

fn reach_of(conn: &Connection) -> Reach {
    Reach {
        conn_id: conn.conn_id,
        address: conn.address,
        may_relay: false,
        via: None,
    }
}

struct Connection {
    app: Arc<App>,
    conn_id: u64,
    /// The client's address, for the count of wrong passcodes.
    address: Option<std::net::IpAddr>,
    tx: mpsc::Sender<Outbound>,
    joined: Option<Joined>,
    bucket: TokenBucket,
    last_rate_warning: Option<Instant>,
    /// The version this connection last asked to compare, resolved.
    compared: compare::Resolved,
    may_relay: bool,
    via: Option<crate::cluster::RelayBack>,
}

impl Connection {
    async fn handle_text(&mut self, text: &str, arrived: Instant) -> Flow {
        if !self.bucket.take(arrived) {
            // One warning a second is enough; answering every message of a
            // flood would let the flooder amplify it.
            if self
                .last_rate_warning
                .is_none_or(|t| arrived.duration_since(t) >= Duration::from_secs(1))
            {
                self.last_rate_warning = Some(arrived);
                self.reject(
                    Reject::new(
                        ErrorCode::RateLimited,
                        format!(
                            "more than {} messages per second; messages are being dropped",
                            self.app.config.limits.messages_per_second
                        ),
                    ),
                    None,
                );
            } else {
                self.app.metrics.rejected_in.fetch_add(1, Relaxed);
            }
            return Flow::Continue;
        }
        let envelope = match protocol::parse_client(text, self.app.config.limits.max_message_bytes)
        {
            Ok(envelope) => envelope,
            Err(err) => {
                let (code, reference) = match err {
                    ParseError::TooLarge { .. } => (ErrorCode::MessageTooLarge, None),
                    ParseError::Malformed { reference, .. } => (ErrorCode::Malformed, reference),
                };
                self.reject(Reject::new(code, err.to_string()), reference);
                return Flow::Continue;
            }
        };
        let reference = envelope.reference;
        match self
            .dispatch(envelope.message, arrived, reference, envelope.shown)
            .await
        {
            Ok(flow) => flow,
            Err(reject) => {
                self.reject(reject, reference);
                Flow::Continue
            }
        }
    }

    async fn dispatch(
        &mut self,
        message: ClientMessage,
        arrived: Instant,
        reference: Option<u32>,
        shown: Option<i64>,
    ) -> Result<Flow, Reject> {
        if let ClientMessage::Ping { id, t0 } = message {
            let t1 = self.app.clock.at(arrived);
            let _ = self.tx.try_send(Outbound::Pong { id, t0, t1 });
            return Ok(Flow::Continue);
        }
        if let ClientMessage::Hello {
            protocol,
            token,
            name,
            resume,
            passcode,
        } = message
        {
            return self
                .hello(
                    protocol,
                    &token,
                    &name,
                    resume.as_deref(),
                    passcode.as_deref(),
                )
                .await;
        }
        let Some(joined) = &self.joined else {
            return Err(Reject::new(ErrorCode::NotJoined, "send hello first"));
        };
        let from = joined.id;
        let conn_id = self.conn_id;
        let message = match rtc_signal(message) {
            Ok(signal) => {
                // Boxed for the same reason as the hub's stop above.
                Box::pin(self.rtc(from, signal)).await?;
                return Ok(Flow::Continue);
            }
            Err(other) => other,
        };
        let msg = match message {
            ClientMessage::Compare {
                version,
                mode,
                wipe,
            } => {
                let request =
                    compare::resolve(&self.app, &mut self.compared, version, mode, wipe).await?;
                SessionMsg::Compare {
                    from,
                    conn_id,
                    request: request.map(Box::new),
                    reference,
                }
            }
            ClientMessage::SyncReport {
                rtt_us,
                offset_us,
                uncertainty_us,
            } => SessionMsg::Sync {
                from,
                report: SyncReport {
                    rtt_micros: rtt_us,
                    offset_micros: offset_us,
                    uncertainty_micros: uncertainty_us,
                },
            },
            ClientMessage::FrameReport {
                frame,
                at_us,
                latency_us,
            } => SessionMsg::Frame {
                from,
                frame,
                at: crate::clock::ServerTime::from_micros(at_us),
                latency_micros: latency_us,
            },
            ClientMessage::Leave => SessionMsg::Leave { from, conn_id },
            ClientMessage::Stroke(part) => SessionMsg::Stroking {
                from,
                conn_id,
                stroking: Stroking::Part(part),
            },
            ClientMessage::StrokeEnd { key } => SessionMsg::Stroking {
                from,
                conn_id,
                stroking: Stroking::End { key },
            },
            other => match draft_of(other) {
                Ok(draft) => SessionMsg::Record {
                    from,
                    conn_id,
                    draft,
                },
                Err(other) => SessionMsg::Command {
                    from,
                    conn_id,
                    command: command_of(other)?,
                    shown,
                    reference,
                },
            },
        };
        let leaving = matches!(msg, SessionMsg::Leave { .. });
        if joined.session.tx.send(msg).await.is_err() {
            return Err(Reject::new(
                ErrorCode::SessionNotFound,
                "the session has ended",
            ));
        }
        if leaving {
            self.joined = None;
            let _ = self.tx.try_send(Outbound::Close {
                code: ErrorCode::Left,
                message: "you left the session".into(),
            });
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }

    async fn hello(
        &mut self,
        version: u32,
        token: &str,
        name: &str,
        resume: Option<&str>,
        passcode: Option<&str>,
    ) -> Result<Flow, Reject> {
        if self.joined.is_some() {
            return Err(Reject::new(
                ErrorCode::AlreadyJoined,
                "this connection has already joined",
            ));
        }
        if version != PROTOCOL_VERSION {
            return Err(Reject::new(
                ErrorCode::UnsupportedProtocol,
                format!("this server speaks protocol {PROTOCOL_VERSION}"),
            ));
        }
        let now_unix = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let link = self.app.check_link(token, now_unix).await.map_err(|err| {
            let code = match err {
                LinkError::Invalid => ErrorCode::InvalidToken,
                LinkError::Expired => ErrorCode::LinkExpired,
                LinkError::Revoked => ErrorCode::LinkRevoked,
            };
            Reject::new(code, err.to_string())
        })?;
        // A resume without the passcode may only reclaim an identity that
        // got in through this link (with the passcode) and is still
        // resumable; it never becomes a fresh join.
        let resume_only = link.passcode.is_some() && passcode.is_none() && resume.is_some();
        if !resume_only {
            self.app
                .check_passcode(&link, passcode, self.address)
                .await
                .map_err(Reject::passcode)?;
        }
        let session = match self.app.session(&link.session_id).await {
            Ok(session) => session,
            Err(Unavailable::NotFound) => {
                return Err(Reject::new(
                    ErrorCode::SessionNotFound,
                    "there is no such session",
                ))
            }
            Err(Unavailable::Elsewhere(owner)) if self.may_relay => return Ok(Flow::Relay(owner)),
            Err(Unavailable::Elsewhere(owner)) => {
                return Err(Reject::new(
                    ErrorCode::SessionElsewhere,
                    format!("node {owner} runs this session; reconnect"),
                ))
            }
            Err(Unavailable::CutOff(why)) => {
                return Err(Reject::new(ErrorCode::ClusterUnavailable, why))
            }
        };
        let mut fresh_secret = [0u8; 16];
        rand::rng().fill_bytes(&mut fresh_secret);
        let ended = || Reject::new(ErrorCode::SessionNotFound, "the session has ended");
        let mut session = session;
        // At most one hop: a session that has ended sends a newcomer to a
        // room of their own, and that room admits them.
        let mut hops = 0;
        let id = loop {
            let (reply, answer) = oneshot::channel();
            let join = SessionMsg::Join {
                name: clean_name(name, self.app.config.limits.max_name_chars),
                role: link.role,
                link_id: link.id.clone(),
                resume: resume.and_then(unhex16),
                resume_only,
                fresh_secret,
                conn_id: self.conn_id,
                tx: self.tx.clone(),
                reply,
            };
            session.tx.send(join).await.map_err(|_| ended())?;
            match answer
                .await
                .map_err(|_| ended())?
                .map_err(|err| match err {
                    crate::session::JoinError::NothingToResume if resume_only => {
                        Reject::passcode(Refusal::Required)
                    }
                    err => Reject::new(ErrorCode::of_join(&err), err.to_string()),
                })? {
                Admitted::Here(id) => break id,
                Admitted::Elsewhere(room) if hops == 0 => {
                    hops += 1;
                    session = room;
                }
                Admitted::Elsewhere(_) => return Err(ended()),
            }
        };
        self.joined = Some(Joined { session, id });
        Ok(Flow::Continue)
    }

    /// Runs one step of WebRTC signalling for this participant.
    async fn rtc(&self, who: ParticipantId, signal: RtcSignal) -> Result<(), Reject> {
        let media = self
            .joined
            .as_ref()
            .and_then(|j| j.session.media.clone())
            .ok_or_else(|| Reject::new(ErrorCode::Rtc, "this session has no video stream"))?;
        let hub = &media.hub;
        let result = match signal {
            RtcSignal::Start => {
                if let (Some(back), Some(relay)) = (&self.via, &media.relay) {
                    // A relayed viewer's peer is its own node's: the
                    // gateway hears which stream to run it on.
                    let grant = relay.grant().encode();
                    return back
                        .send(RelayFrame::Media(grant))
                        .await
                        .map_err(|e| Reject::new(ErrorCode::Rtc, e.to_string()));
                }
                // The players start (if nobody was watching) while the
                // peer is negotiated, and stay up until it is counted.
                let _arriving = media.pipelines.want();
                hub.start(who, page_signals(self.tx.clone())).await
            }
            RtcSignal::Answer(sdp) => hub.answer(who, sdp).await,
            RtcSignal::Candidate(c) => {
                let candidate = IceCandidate {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_m_line_index: c.sdp_m_line_index,
                };
                hub.candidate(who, candidate).await
            }
            RtcSignal::Stop => {
                hub.stop(who).await;
                Ok(())
            }
        };
        result.map_err(|e| Reject::new(ErrorCode::Rtc, e.to_string()))
    }

    /// A gateway's report of the video its peer sent this participant
    /// (`<bytes> <milliseconds>`), filed where approval receipts look.
    fn sent_elsewhere(&self, report: &[u8]) {
        let Some(joined) = &self.joined else { return };
        let Some(media) = &joined.session.media else {
            return;
        };
        let parsed = std::str::from_utf8(report).ok().and_then(|text| {
            let (bytes, millis) = text.split_once(' ')?;
            Some((bytes.parse::<u64>().ok()?, millis.parse::<u64>().ok()?))
        });
        if let Some((bytes, millis)) = parsed {
            media
                .hub
                .sent_elsewhere(joined.id, bytes, Duration::from_millis(millis));
        }
    }

    fn reject(&self, reject: Reject, reference: Option<u32>) {
        self.app.metrics.rejected_in.fetch_add(1, Relaxed);
        let _ = self.tx.try_send(Outbound::message(&ServerMessage::Error {
            code: reject.code,
            message: reject.message,
            reference,
            retry_after_secs: reject.retry_after_secs,
        }));
    }
}

/// Where a viewer's peer sends its signals: to the page, as messages.
fn page_signals(out: mpsc::Sender<Outbound>) -> Signals {
    Arc::new(move |signal| {
        let _ = out.try_send(Outbound::message(&match signal {
            Signal::Offer { sdp } => ServerMessage::RtcOffer { sdp },
            Signal::Candidate(c) => ServerMessage::RtcCandidate {
                candidate: WireCandidate {
                    candidate: c.candidate,
                    sdp_mid: c.sdp_mid,
                    sdp_m_line_index: c.sdp_m_line_index,
                },
            },
        }));
    })
}

enum RtcSignal {
    Start,
    Answer(String),
    Candidate(WireCandidate),
    Stop,
}

/// Splits signalling off from everything else.
fn rtc_signal(message: ClientMessage) -> Result<RtcSignal, ClientMessage> {
    Ok(match message {
        ClientMessage::RtcStart => RtcSignal::Start,
        ClientMessage::RtcAnswer { sdp } => RtcSignal::Answer(sdp),
        ClientMessage::RtcCandidate { candidate } => RtcSignal::Candidate(candidate),
        ClientMessage::RtcStop => RtcSignal::Stop,
        other => return Err(other),
    })
}

/// The messages that add to the review record.
fn draft_of(message: ClientMessage) -> Result<Draft, ClientMessage> {
    Ok(match message {
        ClientMessage::Note {
            key,
            frame,
            frame_out,
            text,
            version,
        } => Draft::Note {
            key,
            frame,
            frame_out,
            text,
            version,
        },
        ClientMessage::Reply { key, parent, text } => Draft::Reply { key, parent, text },
        ClientMessage::Resolve {
            key,
            note,
            resolved,
        } => Draft::Resolve {
            key,
            note,
            resolved,
        },
        ClientMessage::Drawing {
            key,
            frame,
            tool,
            colour,
            width,
            points,
            version,
        } => Draft::Drawing {
            key,
            frame,
            tool,
            colour,
            width,
            points,
            version: version.map(String::from),
        },
        ClientMessage::Erase { key, drawing } => Draft::Erase { key, drawing },
        ClientMessage::Approve {
            key,
            status,
            version,
        } => Draft::Approve {
            key,
            status,
            version,
        },
        other => return Err(other),
    })
}

/// Turns a driving message into a core command, checking what the core
/// cannot: the wire's own shape.
fn command_of(message: ClientMessage) -> Result<Command, Reject> {
    Ok(match message {
        ClientMessage::Play => Command::Play,
        ClientMessage::Pause => Command::Pause,
        ClientMessage::Seek { frame, timecode } => match (frame, timecode) {
            (Some(frame), None) => Command::Seek(SeekTarget::Frame(frame)),
            (None, Some(text)) => {
                let tc: Timecode = text.parse().map_err(|e: crate::timecode::TimecodeError| {
                    Reject::new(ErrorCode::BadTimecode, e.to_string())
                })?;
                Command::Seek(SeekTarget::Timecode(tc))
            }
            _ => {
                return Err(Reject::new(
                    ErrorCode::Malformed,
                    "seek needs exactly one of frame or timecode",
                ))
            }
        },
        ClientMessage::Step { frames } => Command::Step(frames),
        ClientMessage::Shuttle { speed } => {
            Command::Shuttle(speed_from_wire(speed).ok_or_else(|| {
                Reject::new(
                    ErrorCode::BadSpeed,
                    "speed must be one of -4, -3, -2, -1, 0.5, 1, 2, 3, 4",
                )
            })?)
        }
        ClientMessage::LoopIn { frame } => Command::LoopIn(frame),
        ClientMessage::LoopOut { frame } => Command::LoopOut(frame),
        ClientMessage::ClearLoop => Command::ClearLoop,
        ClientMessage::Cue {
            entry,
            same_timecode,
        } => Command::Cue(
            entry,
            if same_timecode {
                CueAt::SameTimecode
            } else {
                CueAt::Start
            },
        ),
        ClientMessage::RequestControl => Command::RequestControl,
        ClientMessage::GrantControl { participant } => {
            Command::GrantControl(ParticipantId(participant))
        }
        ClientMessage::DenyControl { participant } => {
            Command::DenyControl(ParticipantId(participant))
        }
        ClientMessage::TakeControl => Command::TakeControl,
        ClientMessage::ReleaseControl => Command::ReleaseControl,
        ClientMessage::WithdrawControl => Command::WithdrawControl,
        ClientMessage::Hello { .. }
        | ClientMessage::Ping { .. }
        | ClientMessage::SyncReport { .. }
        | ClientMessage::FrameReport { .. }
        | ClientMessage::Leave
        | ClientMessage::Note { .. }
        | ClientMessage::Reply { .. }
        | ClientMessage::Resolve { .. }
        | ClientMessage::Drawing { .. }
        | ClientMessage::Erase { .. }
        | ClientMessage::Stroke(_)
        | ClientMessage::StrokeEnd { .. }
        | ClientMessage::Approve { .. }
        | ClientMessage::Compare { .. }
        | ClientMessage::RtcStart
        | ClientMessage::RtcAnswer { .. }
        | ClientMessage::RtcCandidate { .. }
        | ClientMessage::RtcStop => unreachable!("handled before commands"),
    })
}

fn clean_name(name: &str, max_chars: usize) -> String {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .take(max_chars)
        .collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() {
        "Guest".to_string()
    } else {
        cleaned.to_string()
    }
}

/// Messages written before one flush, at most: whatever is already queued
/// when the writer wakes goes out together, in one `send` where it fits
/// the transport's write buffer, instead of one syscall per message.
const WRITE_BATCH: usize = 64;

async fn write_loop<Si>(mut sink: Si, mut rx: mpsc::Receiver<Outbound>, app: Arc<App>)
where
    Si: futures_util::Sink<Message> + Unpin,
{
    let mut queued: Vec<Arc<Stamp>> = Vec::new();
    'batches: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut written = 0;
        while let Some(item) = next.take() {
            // A pong ends its batch: its `t2` is stamped just before the
            // flush, as late as it can be.
            let mut last = false;
            let result = match item {
                Outbound::Text { text, stamp } => {
                    queued.extend(stamp);
                    sink.feed(Message::Text(text)).await
                }
                Outbound::CatchUp(pages) => {
                    let mut fed = Ok(());
                    for page in pages.iter() {
                        // Each page its own send: the write buffer holds
                        // one page at a time, never the whole record.
                        fed = sink.send(Message::Text(page.clone())).await;
                        if fed.is_err() {
                            break;
                        }
                    }
                    fed
                }
                Outbound::Pong { id, t0, t1 } => {
                    last = true;
                    let t2 = app.clock.now().as_micros();
                    let pong = ServerMessage::Pong {
                        id,
                        t0,
                        t1: t1.as_micros(),
                        t2,
                    };
                    sink.feed(Message::Text(protocol::to_json(&pong).into()))
                        .await
                }
                Outbound::KeepAlive => sink.feed(Message::Ping(Default::default())).await,
                Outbound::Close { code, message } => {
                    let goodbye = ServerMessage::Goodbye {
                        code,
                        message: message.clone(),
                    };
                    let _ = sink
                        .feed(Message::Text(protocol::to_json(&goodbye).into()))
                        .await;
                    let close_code = if code == ErrorCode::ShuttingDown {
                        1001
                    } else {
                        1000
                    };
                    let _ = sink
                        .send(Message::Close(Some(CloseFrame {
                            code: close_code,
                            reason: message.chars().take(100).collect::<String>().into(),
                        })))
                        .await;
                    break 'batches;
                }
            };
            if result.is_err() {
                break 'batches;
            }
            app.metrics.messages_out.fetch_add(1, Relaxed);
            written += 1;
            if !last && written < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        if sink.flush().await.is_err() {
            break;
        }
        let now = Instant::now();
        for stamp in queued.drain(..) {
            let written = stamp.written(now);
            app.metrics.observe_fanout(written.waited, written.on_time);
        }
    }
    let _ = sink.close().await;
}

/// A classic token bucket: `rate` tokens a second, at most `burst` saved.
struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    fn new(rate: u32, burst: u32) -> TokenBucket {
        TokenBucket {
            rate: f64::from(rate),
            burst: f64::from(burst),
            tokens: f64::from(burst),
            last: None,
        }
    }

    fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.saturating_duration_since(last).as_secs_f64() * self.rate;
            self.tokens = (self.tokens + refill).min(self.burst);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_the_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10, 5);
        assert_eq!((0..8).filter(|_| bucket.take(start)).count(), 5);
        assert!(bucket.take(start + Duration::from_millis(100)));
        assert!(!bucket.take(start + Duration::from_millis(100)));
        assert_eq!(
            (0..20)
                .filter(|_| bucket.take(start + Duration::from_secs(60)))
                .count(),
            5
        );
    }

    #[test]
    fn names_are_trimmed_bounded_and_never_empty() {
        assert_eq!(clean_name("  Dana \n", 64), "Dana");
        assert_eq!(clean_name("\u{7}", 64), "Guest");
        assert_eq!(clean_name(&"x".repeat(100), 64).len(), 64);
    }
}
