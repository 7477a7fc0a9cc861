//! Live sessions by id (`Registry`), and how a room starts: its task,
//! and its players and WebRTC hub when it has media. A session's
//! personal rooms (after the review has ended) start the same way.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::sync::{mpsc, watch};

use super::*;

/// Live sessions by id.
#[derive(Debug, Default, Clone)]
pub struct Registry {
    sessions: Arc<DashMap<String, SessionHandle>>,
}

impl Registry {
    pub fn get(&self, id: &str) -> Option<SessionHandle> {
        self.sessions.get(id).map(|h| h.clone())
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Every session's handle, ended or not.
    pub fn handles(&self) -> Vec<SessionHandle> {
        self.sessions.iter().map(|h| h.clone()).collect()
    }

    /// Sessions whose live review has not ended: what `max_sessions`
    /// bounds. An ended one is kept for its record, not its room.
    /// The ids of the sessions whose live review has not ended.
    pub fn live_ids(&self) -> Vec<String> {
        self.sessions
            .iter()
            .filter(|h| !h.ended.load(Relaxed))
            .map(|h| h.key().clone())
            .collect()
    }

    pub fn live_count(&self) -> usize {
        self.sessions
            .iter()
            .filter(|h| !h.ended.load(Relaxed))
            .count()
    }

    /// Takes a session out; its task stops once told (`SessionMsg::Close`).
    /// Removes session `id` if it is still the one `tx` reaches (not one
    /// started since under the same id).
    pub fn remove_if_same(&self, id: &str, tx: &mpsc::Sender<SessionMsg>) -> Option<SessionHandle> {
        self.sessions
            .remove_if(id, |_, handle| handle.tx.same_channel(tx))
            .map(|(_, handle)| handle)
    }

    pub fn remove(&self, id: &str) -> Option<SessionHandle> {
        self.sessions.remove(id).map(|(_, h)| h)
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Starts the session's task (and its player, when it has media) and
    /// registers it.
    pub fn spawn(
        &self,
        info: SessionInfo,
        limits: SessionLimits,
        clock: ServerClock,
        metrics: Arc<Metrics>,
        shutdown: watch::Receiver<bool>,
        start: SessionStart,
    ) -> Result<SessionHandle, StartError> {
        let SessionStart {
            media,
            store,
            webhooks,
            start_frame,
            start_moving,
            review,
            version,
            media_error,
            ended_at,
            playlist,
            entry,
            personal_rooms,
            idle_expiry,
            transport_commit_wait,
        } = start;
        let cuts = playlist.iter().map(PlaylistEntry::cut).collect();
        let session = Session::new(info.clone(), limits, clock.now()).with_playlist(cuts, entry);
        let session = match start_moving {
            Some((speed, elapsed)) => {
                session.opening_moving(start_frame, speed, elapsed, clock.now())
            }
            None => session.opening_at(start_frame, clock.now()),
        };
        let parts = RoomParts {
            info: Arc::new(info),
            limits,
            clock,
            metrics,
            shutdown,
            store,
            webhooks,
            setup: media,
            version,
            media_error,
            playlist: Arc::new(playlist),
            idle_expiry,
            transport_commit_wait,
        };
        let handle = open_room(
            session,
            parts,
            review,
            ended_at,
            Place::Session(personal_rooms),
        )?;
        self.sessions.insert(handle.info.id.clone(), handle.clone());
        Ok(handle)
    }
}

/// What every room of a session is made from. A session keeps its own
/// to open personal rooms once the live review has ended.
#[derive(Clone)]
pub(super) struct RoomParts {
    pub(super) info: Arc<SessionInfo>,
    pub(super) limits: SessionLimits,
    pub(super) clock: ServerClock,
    pub(super) metrics: Arc<Metrics>,
    pub(super) shutdown: watch::Receiver<bool>,
    pub(super) store: Store,
    pub(super) webhooks: crate::webhooks::Webhooks,
    pub(super) setup: Option<MediaSetup>,
    pub(super) version: Option<WireVersion>,
    pub(super) media_error: Option<String>,
    pub(super) playlist: Arc<Vec<PlaylistEntry>>,
    pub(super) idle_expiry: Duration,
    pub(super) transport_commit_wait: Option<Duration>,
}

/// A personal room's place in its session.
pub(super) struct Belonging {
    pub(super) parent: mpsc::WeakSender<SessionMsg>,
    /// The resume secret its one participant holds, which is also how the
    /// session finds the room again on a reconnect.
    pub(super) key: [u8; 16],
    /// The link its participant came through.
    pub(super) link_id: String,
}

/// What a room is: a session (with where its personal rooms stood when
/// it was last running), or one of a session's personal rooms.
pub(super) enum Place {
    Session(Vec<PersonalRoomRow>),
    Personal(Belonging),
}

/// How the record names a personal room: the SHA-256 of its key, so the
/// record holds nothing anyone could resume with.
pub(super) fn room_digest(key: &[u8; 16]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(key))
}

/// A personal room as its session keeps it.
pub(super) struct PersonalRoom {
    pub(super) handle: SessionHandle,
    /// The link its participant came through; only that link finds it.
    pub(super) link_id: String,
}

/// Starts a room's task (and its players) and returns its handle.
pub(super) fn open_room(
    session: Session,
    parts: RoomParts,
    review: SessionReview,
    ended_at: Option<i64>,
    place: Place,
) -> Result<SessionHandle, StartError> {
    let (belonging, saved_rooms): (_, HashMap<String, PersonalRoomRow>) = match place {
        Place::Session(rows) => (
            None,
            rows.into_iter().map(|r| (r.room.clone(), r)).collect(),
        ),
        Place::Personal(belonging) => (Some(belonging), HashMap::new()),
    };
    let (tx, rx) = mpsc::channel(1024);
    let me = tx.downgrade();
    let media = match &parts.setup {
        // An ended session's own room streams nothing: everyone who joins
        // it now is sent to a room of their own, which has its player.
        Some(_) if ended_at.is_some() && belonging.is_none() => None,
        Some(setup) if parts.media_error.is_none() => Some(start_media(
            setup.clone(),
            &parts,
            *session.transport(),
            tx.clone(),
        )?),
        _ => None,
    };
    let ended = Arc::new(std::sync::atomic::AtomicBool::new(ended_at.is_some()));
    let handle = SessionHandle {
        info: parts.info.clone(),
        tx,
        media: media.clone(),
        ended: ended.clone(),
    };
    let recorded_frame = session.transport().anchor_frame;
    let recorded_motion = motion_of(session.transport());
    let metrics = parts.metrics.clone();
    let shutdown = parts.shutdown.clone();
    let task = SessionTask {
        session,
        conns: HashMap::new(),
        clock: parts.clock,
        metrics: parts.metrics.clone(),
        media,
        media_error: parts.media_error.clone(),
        me,
        store: parts.store.clone(),
        webhooks: parts.webhooks.clone(),
        review,
        version: parts.version.clone(),
        compared: None,
        ended_at,
        recorded_frame,
        recorded_motion,
        parts,
        belonging,
        rooms: HashMap::new(),
        saved_rooms,
        anyone_joined: false,
        ended,
        closing: false,
        idle_since: Instant::now(),
        fanout_meter: Arc::default(),
        fanout: FanoutEstimate::new(Instant::now()),
        committing: Vec::new(),
    };
    metrics.sessions_live.fetch_add(1, Relaxed);
    tokio::spawn(async move {
        task.run(rx, shutdown).await;
        metrics.sessions_live.fetch_sub(1, Relaxed);
    });
    Ok(handle)
}

pub(super) fn start_media(
    setup: MediaSetup,
    parts: &RoomParts,
    initial: crate::clock::Transport,
    session: mpsc::Sender<SessionMsg>,
) -> Result<Arc<SessionMedia>, StartError> {
    // Every room of the session burns it in: a personal room is no way
    // around it.
    let watermark = parts.info.watermark.as_deref();
    let version = parts.version.clone();
    let clock = parts.clock;
    // A playlist has a sound track if any of its entries has sound.
    let any_audio = parts.playlist.iter().any(|e| e.setup.info.has_audio);
    let running = parts.metrics.media_pipelines.clone();
    let has_audio = setup.info.has_audio || any_audio;
    let watermark = crate::media::watermark::burnable(watermark)?;
    let hub = Arc::new(RtcHub::new(&setup.rtc, setup.stream.codec, has_audio)?);
    let wire = WireMedia {
        codec: match setup.stream.codec {
            VideoCodec::Vp8 => "VP8".into(),
            VideoCodec::H264 => "H264".into(),
        },
        stream_width: setup.stream.width,
        stream_height: setup.stream.height,
        source_width: setup.info.width,
        source_height: setup.info.height,
        source_codec: setup.info.video_codec.clone(),
        proxy: setup.proxy.is_some(),
        source_colour: protocol::WireColour {
            primaries: setup.info.colour.primaries.into(),
            transfer: setup.info.colour.transfer.into(),
            matrix: setup.info.colour.matrix.into(),
            range: setup.info.colour.range.into(),
        },
        has_audio,
        rtp_clock_rate: VIDEO_CLOCK_RATE as u32,
        ice_servers: wire_ice_servers(&setup.rtc),
        version,
    };
    let relay = setup
        .relay
        .as_ref()
        .map(|relay| relay.source(setup.stream.codec, has_audio));
    let watched: player::Watched = {
        let hub = Arc::downgrade(&hub);
        let relay = relay.as_ref().map(Arc::downgrade);
        Arc::new(move || {
            hub.upgrade().is_some_and(|h| h.viewer_count() > 0)
                || relay
                    .as_ref()
                    .and_then(|r| r.upgrade())
                    .is_some_and(|r| r.watched())
        })
    };
    let frames = hub.clone();
    let packets = hub.clone();
    let relay_frames = relay.clone();
    let relay_packets = relay.clone();
    // Weak: the sinks live as long as the session's media, which the
    // session's own task owns.
    let session = session.downgrade();
    let sinks = Sinks {
        frames: Box::new(move |frame| {
            frames.broadcast(&frame);
            if let Some(relay) = &relay_frames {
                relay.picture(&frame);
            }
        }),
        sound: Box::new(move |event| match event {
            AudioEvent::Packet(packet) => {
                packets.broadcast_audio(&packet);
                if let Some(relay) = &relay_packets {
                    relay.sound(&packet);
                }
            }
            // Sound is worth less than the review: pictures go on.
            AudioEvent::Failed(err) => tracing::warn!(%err, "session audio failed"),
        }),
        health: Box::new(move |health| {
            let Some(session) = session.upgrade() else {
                return;
            };
            let _ = session.try_send(match health {
                MediaHealth::Failed(err) => SessionMsg::MediaFailed {
                    message: err.to_string(),
                },
                MediaHealth::Restored => SessionMsg::MediaRestored,
            });
        }),
    };
    let spec = PipelineSpec {
        stream: setup.stream,
        watermark,
        clock,
        has_audio,
        idle_teardown: setup.idle_teardown,
        running,
        restarts: setup.restarts,
        restarted: parts.metrics.media_restarts.clone(),
        late: parts.metrics.media_late_pictures.clone(),
    };
    // Nothing runs yet: the first viewer's `rtcStart` starts the players.
    let pipelines = Pipelines::new(spec, setup.playable(), initial, watched, sinks);
    hub.attach_keyframes(Box::new(pipelines.keyframes()));
    if let Some(relay) = &relay {
        relay.attach(
            Box::new(pipelines.starter()),
            Box::new(pipelines.keyframes()),
        );
    }
    Ok(Arc::new(SessionMedia {
        hub,
        wire,
        pipelines,
        relay,
    }))
}

/// The ICE servers as a browser is given them.
pub(super) fn wire_ice_servers(rtc: &RtcSettings) -> Vec<WireIceServer> {
    if rtc.ice_servers.is_empty() {
        return vec![];
    }
    let given = |s: &String| (!s.is_empty()).then(|| s.clone());
    vec![WireIceServer {
        urls: rtc.ice_servers.clone(),
        username: given(&rtc.turn_username),
        credential: given(&rtc.turn_credential),
    }]
}
