//! Media relay: each encoded picture and sound packet crosses NATS once
//! per node that has viewers of it, and each node packetizes it for its
//! own WebRTC peers.
//!
//! A relayed viewer's signalling starts at the owner like any frame: its
//! `rtcStart` reaches the owner, which has the roles and the media, and
//! which answers the gateway (not the page) with a [`MediaGrant`]: which
//! stream, in which codec, with sound or not. The gateway then runs the
//! peer itself, on a hub of its own ([`MediaRelay::watch`]) fed from the
//! owner's stream subject. So the browser meets only its own node's ICE
//! candidates, and the owner encodes once however many nodes watch.
//!
//! Subjects:
//! - `syncreel.media.<owner>.<key>`: the pictures and sound of one stream
//!   (a session's media on its owner; `key` is the owner's number for it).
//!   Headers carry the kind, the server instant and the picture's frame
//!   and keyframe flag; the payload is the encoded bytes.
//! - `syncreel.media.ask.<owner>`: what gateways ask of a stream: `want`
//!   (a node has viewers: keep encoding and publishing for a while) and
//!   `keyframe` (a viewer there lost a picture or just connected).
//!
//! Timing is the owner's: every picture keeps the owner's server instant,
//! which is its RTP timestamp on every node, and the page's clock is the
//! owner's (clock sync is relayed). The gateway adds its hop to the
//! latency, never to the timing.
//!
//! An owner publishes only while some node has asked `want` within
//! [`WATCH_TTL`]; a gateway asks every [`WANT_EVERY`] while it has
//! viewers, so a gateway that dies stops costing the owner within a TTL.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::{ClusterError, NodeId};
use crate::clock::ServerTime;
use crate::media::audio::EncodedAudio;
use crate::media::player::{EncodedFrame, VideoCodec};
use crate::rtc::{RtcError, RtcHub, RtcSettings};

/// How long one `want` keeps an owner publishing.
pub const WATCH_TTL: Duration = Duration::from_secs(3);
/// How often a gateway with viewers says it still wants a stream.
pub const WANT_EVERY: Duration = Duration::from_secs(1);
/// How long a gateway keeps a stream with no viewers: a page that
/// reconnects, or a viewer still negotiating, finds it there.
const LINGER: Duration = Duration::from_secs(10);
/// Pictures and sound packets waiting for an owner's publisher: about a
/// second. A fuller queue drops (the viewers ask for a keyframe).
const PUBLISH_QUEUE: usize = 64;

const KIND: &str = "Media-Kind";
const AT: &str = "Media-At";
const FRAME: &str = "Media-Frame";
const KEYFRAME: &str = "Media-Keyframe";
const RESUMED: &str = "Media-Resumed";
const STREAM: &str = "Media-Stream";
const ASK: &str = "Media-Ask";
/// On a picture sent in parts: `<index>/<count>`.
const PART: &str = "Media-Part";

fn stream_subject(owner: &str, key: u64) -> String {
    format!("syncreel.media.{owner}.{key}")
}

fn ask_subject(owner: &str) -> String {
    format!("syncreel.media.ask.{owner}")
}

/// What an owner tells a gateway about a stream its participant asked
/// for: enough to build a hub and find the pictures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaGrant {
    pub owner: String,
    pub key: u64,
    pub codec: VideoCodec,
    pub audio: bool,
}

impl MediaGrant {
    /// `owner key codec audio`, e.g. `node-a 3 H264 1`: it crosses inside
    /// a relayed connection's frame, where only bytes go.
    pub fn encode(&self) -> Bytes {
        let codec = match self.codec {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::H264 => "H264",
        };
        Bytes::from(format!(
            "{} {} {codec} {}",
            self.owner,
            self.key,
            u8::from(self.audio)
        ))
    }

    pub fn parse(bytes: &[u8]) -> Option<MediaGrant> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut parts = text.split(' ');
        let owner = NodeId::new(parts.next()?).ok()?.to_string();
        let key = parts.next()?.parse().ok()?;
        let codec = match parts.next()? {
            "VP8" => VideoCodec::Vp8,
            "H264" => VideoCodec::H264,
            _ => return None,
        };
        let audio = match parts.next()? {
            "0" => false,
            "1" => true,
            _ => return None,
        };
        parts.next().is_none().then_some(MediaGrant {
            owner,
            key,
            codec,
            audio,
        })
    }
}

/// Counts for `/metrics`.
#[derive(Debug, Default)]
pub struct MediaCounts {
    /// Pictures and sound packets this node published as an owner.
    pub published: AtomicU64,
    /// Pictures and sound packets this node received as a gateway.
    pub received: AtomicU64,
    /// Packets an owner could not queue or send (a gap for remote viewers).
    pub dropped: AtomicU64,
}

/// A node's side of the media relay: the streams it owns and publishes,
/// and the streams of other owners it receives for its own viewers.
pub struct MediaRelay {
    client: async_nats::Client,
    node: NodeId,
    sources: Arc<Mutex<HashMap<u64, Weak<MediaSource>>>>,
    next_key: AtomicU64,
    streams: Arc<Streams>,
    counts: Arc<MediaCounts>,
    /// The largest message a picture is sent in (`cluster.media_part_bytes`).
    part_bytes: usize,
}

impl std::fmt::Debug for MediaRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRelay")
            .field("node", &self.node)
            .finish()
    }
}

impl MediaRelay {
    /// Starts answering what gateways ask of this node's streams.
    pub(super) async fn start(
        client: async_nats::Client,
        node: NodeId,
        part_bytes: usize,
    ) -> Result<Arc<MediaRelay>, ClusterError> {
        let asks = client
            .subscribe(ask_subject(node.as_str()))
            .await
            .map_err(|e| ClusterError::Nats(e.to_string()))?;
        let relay = Arc::new(MediaRelay {
            client,
            node,
            sources: Arc::default(),
            next_key: AtomicU64::new(1),
            streams: Arc::default(),
            counts: Arc::default(),
            part_bytes,
        });
        tokio::spawn(answer_asks(asks, Arc::downgrade(&relay.sources)));
        Ok(relay)
    }

    pub fn counts(&self) -> &MediaCounts {
        &self.counts
    }

    /// An owner's stream for one session's media: what its players make
    /// is handed to [`MediaSource::picture`] and [`MediaSource::sound`],
    /// and published while another node wants it. Must be called within
    /// the Tokio runtime.
    pub fn source(&self, codec: VideoCodec, audio: bool) -> Arc<MediaSource> {
        let key = self.next_key.fetch_add(1, Relaxed);
        let (out, rx) = mpsc::channel(PUBLISH_QUEUE);
        let source = Arc::new(MediaSource {
            grant: MediaGrant {
                owner: self.node.to_string(),
                key,
                codec,
                audio,
            },
            watched_until: Mutex::new(None),
            out,
            hooks: OnceLock::new(),
            counts: self.counts.clone(),
        });
        {
            let mut sources = self.sources.lock().expect("sources lock");
            sources.retain(|_, s| s.strong_count() > 0);
            sources.insert(key, Arc::downgrade(&source));
        }
        tokio::spawn(publish(
            self.client.clone(),
            stream_subject(self.node.as_str(), key),
            rx,
            self.counts.clone(),
            self.part_bytes,
        ));
        source
    }

    /// A gateway's hub for a stream another node owns: the one this node
    /// already receives, or a new one subscribed to it. Each call says
    /// `want` to the owner, so its players run (or start) for the viewer
    /// about to connect.
    pub async fn watch(
        &self,
        grant: &MediaGrant,
        settings: &RtcSettings,
    ) -> Result<Arc<RtcHub>, MediaRelayError> {
        let id = (grant.owner.clone(), grant.key);
        let mut streams = self.streams.lock().await;
        let stream = match streams.get(&id) {
            Some(stream) => stream.clone(),
            None => {
                let hub = Arc::new(RtcHub::new(settings, grant.codec, grant.audio)?);
                let pictures = self
                    .client
                    .subscribe(stream_subject(&grant.owner, grant.key))
                    .await
                    .map_err(|e| ClusterError::Nats(e.to_string()))?;
                let (keyframes, keyframe_asks) = mpsc::channel(4);
                hub.attach_keyframes(Box::new(move || {
                    let _ = keyframes.try_send(());
                }));
                let stream = Arc::new(RemoteStream {
                    hub,
                    wanted_at: Mutex::new(Instant::now()),
                });
                streams.insert(id.clone(), stream.clone());
                tokio::spawn(receive(
                    Receiving {
                        client: self.client.clone(),
                        grant: grant.clone(),
                        stream: stream.clone(),
                        streams: Arc::downgrade(&self.streams),
                        counts: self.counts.clone(),
                    },
                    pictures,
                    keyframe_asks,
                ));
                stream
            }
        };
        *stream.wanted_at.lock().expect("wanted lock") = Instant::now();
        drop(streams);
        ask(&self.client, grant, "want").await;
        Ok(stream.hub.clone())
    }

    /// How many other owners' streams this node receives now.
    pub async fn receiving(&self) -> usize {
        self.streams.lock().await.len()
    }
}

/// Why a gateway could not give its viewer a relayed stream.
#[derive(Debug, thiserror::Error)]
pub enum MediaRelayError {
    #[error(transparent)]
    Rtc(#[from] RtcError),
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

/// What an owner's stream calls on its session's players.
struct Hooks {
    want: Box<dyn Fn() + Send + Sync>,
    keyframe: Box<dyn Fn() + Send + Sync>,
}

/// One stream an owner publishes.
pub struct MediaSource {
    grant: MediaGrant,
    watched_until: Mutex<Option<Instant>>,
    out: mpsc::Sender<Outgoing>,
    hooks: OnceLock<Hooks>,
    counts: Arc<MediaCounts>,
}

impl std::fmt::Debug for MediaSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaSource")
            .field("grant", &self.grant)
            .finish()
    }
}

enum Outgoing {
    Picture(EncodedFrame),
    Sound(EncodedAudio),
}

impl MediaSource {
    /// Connects the stream to its players: `want` starts them (or keeps
    /// them up), `keyframe` asks for one.
    pub fn attach(&self, want: Box<dyn Fn() + Send + Sync>, keyframe: Box<dyn Fn() + Send + Sync>) {
        let _ = self.hooks.set(Hooks { want, keyframe });
    }

    /// The grant for a relayed viewer's gateway. The stream counts as
    /// watched from now, so its players start while the gateway sets up.
    pub fn grant(&self) -> MediaGrant {
        self.wanted(true);
        self.grant.clone()
    }

    /// Whether another node has wanted this stream within [`WATCH_TTL`].
    pub fn watched(&self) -> bool {
        self.watched_until
            .lock()
            .expect("watched lock")
            .is_some_and(|until| Instant::now() < until)
    }

    /// Publishes a picture, if another node watches. Never blocks: called
    /// on the player's thread.
    pub fn picture(&self, frame: &EncodedFrame) {
        if self.watched() {
            self.queue(Outgoing::Picture(frame.clone()));
        }
    }

    /// Publishes a sound packet, if another node watches; never blocks.
    pub fn sound(&self, audio: &EncodedAudio) {
        if self.watched() {
            self.queue(Outgoing::Sound(audio.clone()));
        }
    }

    fn queue(&self, item: Outgoing) {
        if self.out.try_send(item).is_err() {
            self.counts.dropped.fetch_add(1, Relaxed);
        }
    }

    /// A node wants the stream. The players are started for a new viewer
    /// (a fresh try, as a local viewer's `rtcStart` is) or when nobody
    /// watched; a gateway's heartbeat only keeps them up.
    fn wanted(&self, new_viewer: bool) {
        let was_watched = self.watched();
        *self.watched_until.lock().expect("watched lock") = Some(Instant::now() + WATCH_TTL);
        if new_viewer || !was_watched {
            if let Some(hooks) = self.hooks.get() {
                (hooks.want)();
            }
        }
    }

    fn keyframe(&self) {
        if let Some(hooks) = self.hooks.get() {
            (hooks.keyframe)();
        }
    }
}

/// An owner's publisher for one stream, until the stream is dropped.
async fn publish(
    client: async_nats::Client,
    subject: String,
    mut rx: mpsc::Receiver<Outgoing>,
    counts: Arc<MediaCounts>,
    part_bytes: usize,
) {
    // What the server takes in one message, less room for the headers.
    let server_most = client.server_info().max_payload.saturating_sub(HEADER_ROOM);
    let most = part_bytes.min(server_most).max(MIN_PART);
    while let Some(item) = rx.recv().await {
        let mut headers = HeaderMap::new();
        let data = match item {
            Outgoing::Picture(frame) => {
                headers.insert(KIND, "picture");
                headers.insert(AT, frame.at.as_micros().to_string().as_str());
                headers.insert(FRAME, frame.frame.to_string().as_str());
                if frame.keyframe {
                    headers.insert(KEYFRAME, "1");
                }
                frame.data
            }
            Outgoing::Sound(audio) => {
                headers.insert(KIND, "sound");
                headers.insert(AT, audio.at.as_micros().to_string().as_str());
                if audio.resumed {
                    headers.insert(RESUMED, "1");
                }
                audio.data
            }
        };
        let parts = split(&data, most);
        let count = parts.len();
        let mut sent = true;
        for (i, part) in parts.into_iter().enumerate() {
            let mut headers = headers.clone();
            if count > 1 {
                headers.insert(PART, format!("{i}/{count}").as_str());
            }
            if let Err(err) = client
                .publish_with_headers(subject.clone(), headers, part)
                .await
            {
                // NATS is gone: a gap for remote viewers, who ask for a
                // keyframe once it is back.
                tracing::debug!(%err, %subject, "a relayed picture was not sent");
                sent = false;
                break;
            }
        }
        let counter = if sent {
            &counts.published
        } else {
            &counts.dropped
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// Room left in a message for the headers, under the server's
/// `max_payload` (which counts them).
const HEADER_ROOM: usize = 1024;
/// No part smaller than this, whatever a configuration says.
const MIN_PART: usize = 1024;

/// A picture in parts of at most `most` bytes (one part when it fits),
/// sharing its bytes.
fn split(data: &Bytes, most: usize) -> Vec<Bytes> {
    let most = most.max(1);
    if data.len() <= most {
        return vec![data.clone()];
    }
    (0..data.len())
        .step_by(most)
        .map(|from| data.slice(from..(from + most).min(data.len())))
        .collect()
}

/// Puts a picture sent in parts together again. Parts of one picture
/// arrive in order (one publisher, one subject); a part that does not
/// follow the one before (a gap, a new picture) drops what was gathered.
#[derive(Debug, Default)]
struct Reassembly {
    /// The picture being gathered: its instant, how many parts, the parts.
    gathering: Option<(i64, usize, Vec<Bytes>)>,
}

impl Reassembly {
    /// Takes part `index` of `count` of the picture at `at`; the whole
    /// picture once its last part is in.
    fn take(&mut self, at: i64, index: usize, count: usize, part: Bytes) -> Option<Bytes> {
        if count == 0 || index >= count || count > MAX_PARTS {
            self.gathering = None;
            return None;
        }
        let follows = match &self.gathering {
            Some((at_was, count_was, parts)) => {
                *at_was == at && *count_was == count && parts.len() == index
            }
            None => index == 0,
        };
        if !follows {
            self.gathering = None;
            if index != 0 {
                return None;
            }
        }
        let (_, _, parts) = self
            .gathering
            .get_or_insert_with(|| (at, count, Vec::with_capacity(count)));
        parts.push(part);
        if parts.len() < count {
            return None;
        }
        let (_, _, parts) = self.gathering.take()?;
        let mut whole = bytes::BytesMut::with_capacity(parts.iter().map(Bytes::len).sum());
        for part in parts {
            whole.extend_from_slice(&part);
        }
        Some(whole.freeze())
    }
}

/// More parts than any picture needs (a 64 MiB picture in 1 KiB parts):
/// a header claiming more is not believed.
const MAX_PARTS: usize = 65_536;

/// An owner's answers to gateways' `want` and `keyframe`.
async fn answer_asks(
    mut asks: async_nats::Subscriber,
    sources: Weak<Mutex<HashMap<u64, Weak<MediaSource>>>>,
) {
    while let Some(message) = asks.next().await {
        let Some(sources) = sources.upgrade() else {
            return;
        };
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let Some(key) = header(STREAM).and_then(|k| k.parse::<u64>().ok()) else {
            continue;
        };
        let source = sources
            .lock()
            .expect("sources lock")
            .get(&key)
            .and_then(Weak::upgrade);
        let Some(source) = source else { continue };
        match header(ASK).as_deref() {
            Some("want") => source.wanted(false),
            Some("keyframe") => source.keyframe(),
            _ => {}
        }
    }
}

async fn ask(client: &async_nats::Client, grant: &MediaGrant, what: &str) {
    let mut headers = HeaderMap::new();
    headers.insert(STREAM, grant.key.to_string().as_str());
    headers.insert(ASK, what);
    let _ = client
        .publish_with_headers(ask_subject(&grant.owner), headers, Bytes::new())
        .await;
}

/// The streams a gateway receives, by owner and the owner's key.
type Streams = tokio::sync::Mutex<HashMap<(String, u64), Arc<RemoteStream>>>;

/// A stream a gateway receives for its viewers.
struct RemoteStream {
    hub: Arc<RtcHub>,
    /// The last viewer's start: the stream lingers [`LINGER`] after it
    /// even with no viewer, which covers a peer still negotiating.
    wanted_at: Mutex<Instant>,
}

struct Receiving {
    client: async_nats::Client,
    grant: MediaGrant,
    stream: Arc<RemoteStream>,
    streams: Weak<Streams>,
    counts: Arc<MediaCounts>,
}

/// A gateway's receiver for one stream: hands each picture and packet to
/// the local hub, keeps the owner publishing while there are viewers,
/// and ends once there have been none for [`LINGER`].
async fn receive(
    receiving: Receiving,
    mut pictures: async_nats::Subscriber,
    mut keyframe_asks: mpsc::Receiver<()>,
) {
    let Receiving {
        client,
        grant,
        stream,
        streams,
        counts,
    } = receiving;
    let mut parts = Reassembly::default();
    let mut wants = tokio::time::interval(WANT_EVERY);
    wants.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = pictures.next() => {
                let Some(message) = message else { break };
                let Some(incoming) = Incoming::of(&message, &mut parts) else { continue };
                counts.received.fetch_add(1, Relaxed);
                match incoming {
                    Incoming::Picture(frame) => stream.hub.broadcast(&frame),
                    Incoming::Sound(audio) => stream.hub.broadcast_audio(&audio),
                }
            }
            Some(()) = keyframe_asks.recv() => ask(&client, &grant, "keyframe").await,
            _ = wants.tick() => {
                let idle = stream.hub.viewer_count() == 0
                    && stream.wanted_at.lock().expect("wanted lock").elapsed() >= LINGER;
                if !idle {
                    ask(&client, &grant, "want").await;
                    continue;
                }
                // Checked again under the map's lock, which `watch` takes
                // to hand the stream to a new viewer.
                let Some(streams) = streams.upgrade() else { break };
                let mut streams = streams.lock().await;
                if stream.hub.viewer_count() == 0
                    && stream.wanted_at.lock().expect("wanted lock").elapsed() >= LINGER
                {
                    streams.remove(&(grant.owner.clone(), grant.key));
                    break;
                }
            }
        }
    }
    let _ = pictures.unsubscribe().await;
}

enum Incoming {
    Picture(EncodedFrame),
    Sound(EncodedAudio),
}

impl Incoming {
    /// The picture or sound packet a message carries, or completes (a
    /// picture in parts); `None` while parts are missing, or for a
    /// message that does not parse.
    fn of(message: &async_nats::Message, parts: &mut Reassembly) -> Option<Incoming> {
        let headers = message.headers.as_ref()?;
        let header = |name: &str| headers.get(name).map(|v| v.as_str());
        let micros: i64 = header(AT)?.parse().ok()?;
        let at = ServerTime::from_micros(micros);
        let data = match header(PART) {
            None => message.payload.clone(),
            Some(part) => {
                let (index, count) = part.split_once('/')?;
                parts.take(
                    micros,
                    index.parse().ok()?,
                    count.parse().ok()?,
                    message.payload.clone(),
                )?
            }
        };
        match header(KIND)? {
            "picture" => Some(Incoming::Picture(EncodedFrame {
                data,
                at,
                frame: header(FRAME)?.parse().ok()?,
                keyframe: header(KEYFRAME) == Some("1"),
                late: false,
            })),
            "sound" => Some(Incoming::Sound(EncodedAudio {
                data,
                at,
                resumed: header(RESUMED) == Some("1"),
            })),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_picture_in_parts_comes_back_whole_and_a_broken_one_not_at_all() {
        let picture = Bytes::from((0..10_000u32).map(|i| i as u8).collect::<Vec<_>>());
        let parts = split(&picture, 3_000);
        assert_eq!(
            parts.iter().map(Bytes::len).collect::<Vec<_>>(),
            [3_000, 3_000, 3_000, 1_000]
        );
        assert_eq!(split(&picture, 10_000), vec![picture.clone()]);
        let mut gather = Reassembly::default();
        let n = parts.len();
        for (i, part) in parts.iter().enumerate() {
            let whole = gather.take(7, i, n, part.clone());
            assert_eq!(whole.is_some(), i == n - 1);
            if let Some(whole) = whole {
                assert_eq!(whole, picture);
            }
        }
        // A part missing: that picture is dropped, the next one is whole.
        assert_eq!(gather.take(8, 0, n, parts[0].clone()), None);
        assert_eq!(gather.take(8, 2, n, parts[2].clone()), None);
        assert_eq!(gather.take(8, 3, n, parts[3].clone()), None);
        let mut last = None;
        for (i, part) in parts.iter().enumerate() {
            last = gather.take(9, i, n, part.clone());
        }
        assert_eq!(last, Some(picture.clone()));
        // A new picture's first part drops an unfinished one.
        assert_eq!(gather.take(10, 0, n, parts[0].clone()), None);
        assert_eq!(gather.take(11, 0, 2, parts[0].clone()), None);
        assert_eq!(
            gather.take(11, 1, 2, parts[1].clone()).map(|b| b.len()),
            Some(6_000)
        );
        // Headers that cannot be right are not believed.
        assert_eq!(gather.take(12, 0, 0, parts[0].clone()), None);
        assert_eq!(gather.take(12, 2, 2, parts[0].clone()), None);
        assert_eq!(gather.take(12, 0, MAX_PARTS + 1, parts[0].clone()), None);
    }

    #[test]
    fn a_grant_reads_back_as_written_and_nothing_else_reads() {
        let grant = MediaGrant {
            owner: "node-a".into(),
            key: 42,
            codec: VideoCodec::H264,
            audio: true,
        };
        assert_eq!(MediaGrant::parse(&grant.encode()), Some(grant));
        let vp8 = MediaGrant {
            owner: "b".into(),
            key: 1,
            codec: VideoCodec::Vp8,
            audio: false,
        };
        assert_eq!(MediaGrant::parse(&vp8.encode()), Some(vp8));
        for bad in [
            "",
            "node-a",
            "node-a 42 H264",
            "node-a 42 H265 1",
            "node-a -1 H264 1",
            "node-a 42 H264 2",
            "node-a 42 H264 1 extra",
            "no.dots 42 H264 1",
        ] {
            assert_eq!(MediaGrant::parse(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
