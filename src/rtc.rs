//! WebRTC delivery of a session's stream: one peer per viewer, fed copies
//! of packets that were made once.
//!
//! The session's player encodes each picture once; [`RtcHub::broadcast`]
//! packetizes it once into RTP packets whose timestamp is the picture's
//! server instant at 90 kHz, and hands an `Arc` of them to every viewer's
//! small drop-oldest queue. Each viewer has its own task that writes its
//! queue to its own track, so a slow or broken viewer loses frames (and
//! asks for a keyframe) without ever holding up the player or anyone else.
//!
//! Signalling rides the session's WebSocket: the server offers, ICE
//! candidates trickle both ways. NACKs are answered by webrtc-rs's default
//! interceptors from their send buffer; PLI and FIR become keyframe
//! requests to the player.
//!
//! We use webrtc-rs 0.17 (pinned): its Tokio-callback API matches the rest
//! of this Tokio server, and the line is stable, taking bug fixes only. The
//! sans-IO 0.2x line is recommended upstream but still breaking its API;
//! the browser tests are our interop check whichever line we are on.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use webrtc::api::interceptor_registry::{configure_rtcp_reports, configure_twcc_receiver_only};
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::ice::udp_network::{EphemeralUDP, UDPNetwork};
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::ice_transport::ice_server::RTCIceServer;
use webrtc::interceptor::nack::responder::Responder;
use webrtc::interceptor::registry::Registry as InterceptorRegistry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::peer_connection_state::RTCPeerConnectionState;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::codecs::h264::H264Payloader;
use webrtc::rtp::codecs::vp8::Vp8Payloader;
use webrtc::rtp::packet::Packet;
use webrtc::rtp::packetizer::Payloader;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::track::track_local::track_local_static_rtp::TrackLocalStaticRTP;
use webrtc::track::track_local::TrackLocalWriter;

pub use crate::clock::{rtp_timestamp, ServerTime, VIDEO_CLOCK_RATE};
use crate::media::audio::{EncodedAudio, AUDIO_CLOCK_RATE};
use crate::media::player::{EncodedFrame, VideoCodec};
use crate::session::ParticipantId;
/// Payload size per packet, safely under a 1500-byte path MTU once the
/// RTP, SRTP, UDP and IP headers are added.
const MTU: usize = 1200;
/// Frames a viewer may fall behind before its oldest are dropped.
const VIEWER_QUEUE_FRAMES: usize = 8;
/// Opus packets (20 ms each) a viewer may fall behind: 200 ms of sound.
const VIEWER_QUEUE_AUDIO: usize = 10;
/// Both tracks share one stream id, which is what makes a browser keep
/// sound and picture in sync with each other.
const STREAM_ID: &str = "syncreel";

/// Network settings for every peer, from configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RtcSettings {
    /// STUN/TURN URLs handed to clients and used by the server.
    pub ice_servers: Vec<String>,
    pub turn_username: String,
    pub turn_credential: String,
    /// UDP ports for ICE; 0 and 0 means any ephemeral port.
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// Offer loopback candidates. Needed when viewers run on the server
    /// machine itself (demo, tests); harmless elsewhere.
    pub include_loopback: bool,
}

/// An ICE candidate as signalling carries it, either way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceCandidate {
    pub candidate: String,
    pub sdp_mid: Option<String>,
    pub sdp_m_line_index: Option<u16>,
}

/// What the server's side of a peer says to the viewer's page. The caller
/// puts it on whatever wire it has; this module knows none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    Offer { sdp: String },
    Candidate(IceCandidate),
}

/// Where a viewer's signals go. Called from webrtc-rs's tasks: must not
/// block (queue it).
pub type Signals = Arc<dyn Fn(Signal) + Send + Sync>;

/// Why a signalling step failed. Only the viewer that asked is affected.
#[derive(Debug, thiserror::Error)]
pub enum RtcError {
    /// This session has no stream to offer.
    #[error("this session has no video stream")]
    NoStream,
    /// An answer or candidate came for a viewer that never started.
    #[error("start the stream with rtcStart first")]
    NotStarted,
    /// webrtc-rs refused the step (bad SDP, bad candidate, closed peer).
    #[error("{0}")]
    Webrtc(#[from] webrtc::Error),
}

/// A session's viewers and the one packetizer that feeds them.
pub struct RtcHub {
    api: API,
    config: RTCConfiguration,
    codec: RTCRtpCodecCapability,
    /// Opus, when the media has sound.
    audio_codec: Option<RTCRtpCodecCapability>,
    viewers: Mutex<HashMap<ParticipantId, Arc<Viewer>>>,
    packetizer: Mutex<Packetizer>,
    audio_sequence: Mutex<u16>,
    /// Where keyframe requests go.
    keyframes: Mutex<Option<KeyframeRequest>>,
    /// Video sent to each participant, kept across reconnects: approval
    /// receipts say what the approver was sent.
    sent: Mutex<HashMap<ParticipantId, Arc<SentVideo>>>,
}

/// What one participant has been sent: payload bytes, first and last write.
#[derive(Debug, Default)]
pub struct SentVideo {
    bytes: std::sync::atomic::AtomicU64,
    span: Mutex<Option<(std::time::Instant, std::time::Instant)>>,
}

impl SentVideo {
    fn add(&self, bytes: usize) {
        self.bytes
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
        let now = std::time::Instant::now();
        let mut span = self.span.lock().expect("span lock");
        *span = Some(span.map_or((now, now), |(first, _)| (first, now)));
    }

    /// What another node's peer sent (cluster mode): replaces the totals.
    fn replace(&self, bytes: u64, span: std::time::Duration) {
        self.bytes
            .store(bytes, std::sync::atomic::Ordering::Relaxed);
        let now = std::time::Instant::now();
        let first = now.checked_sub(span).unwrap_or(now);
        *self.span.lock().expect("span lock") = Some((first, now));
    }

    /// Payload bytes, and the time between the first and the last write.
    pub fn totals(&self) -> (u64, std::time::Duration) {
        let bytes = self.bytes.load(std::sync::atomic::Ordering::Relaxed);
        let span = self
            .span
            .lock()
            .expect("span lock")
            .map_or(std::time::Duration::ZERO, |(a, b)| b - a);
        (bytes, span)
    }
}

impl std::fmt::Debug for RtcHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RtcHub")
            .field("codec", &self.codec.mime_type)
            .finish()
    }
}

struct Viewer {
    pc: Arc<RTCPeerConnection>,
    queue: Arc<FrameQueue>,
    audio: Arc<FrameQueue>,
}

/// Asks the player for a keyframe (which may be down: then nothing).
pub type KeyframeRequest = Box<dyn Fn() + Send + Sync>;

/// RTP packets of one picture, shared by every viewer.
type Packets = Arc<Vec<Packet>>;

impl RtcHub {
    pub fn new(
        settings: &RtcSettings,
        codec: VideoCodec,
        with_audio: bool,
    ) -> Result<RtcHub, RtcError> {
        let mut media = MediaEngine::default();
        let mut engine = SettingEngine::default();
        engine.set_include_loopback_candidate(settings.include_loopback);
        if settings.udp_port_min != 0 || settings.udp_port_max != 0 {
            let ports = EphemeralUDP::new(settings.udp_port_min, settings.udp_port_max)
                .map_err(|e| RtcError::Webrtc(webrtc::Error::new(e.to_string())))?;
            engine.set_udp_network(UDPNetwork::Ephemeral(ports));
        }
        let ice_servers = if settings.ice_servers.is_empty() {
            vec![]
        } else {
            vec![RTCIceServer {
                urls: settings.ice_servers.clone(),
                username: settings.turn_username.clone(),
                credential: settings.turn_credential.clone(),
            }]
        };
        // Picture-loss and NACK feedback are what a viewer needs to recover.
        let feedback = [
            ("goog-remb", ""),
            ("ccm", "fir"),
            ("nack", ""),
            ("nack", "pli"),
        ]
        .map(|(typ, parameter)| RTCPFeedback {
            typ: typ.to_owned(),
            parameter: parameter.to_owned(),
        })
        .to_vec();
        let (codec, payload_type) = match codec {
            VideoCodec::Vp8 => (
                RTCRtpCodecCapability {
                    mime_type: MIME_TYPE_VP8.to_owned(),
                    clock_rate: VIDEO_CLOCK_RATE as u32,
                    rtcp_feedback: feedback,
                    ..Default::default()
                },
                96,
            ),
            VideoCodec::H264 => (
                RTCRtpCodecCapability {
                    mime_type: MIME_TYPE_H264.to_owned(),
                    clock_rate: VIDEO_CLOCK_RATE as u32,
                    // Must match the encoder: constrained baseline, packetized
                    // as non-interleaved NAL units.
                    sdp_fmtp_line:
                        "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                            .to_owned(),
                    rtcp_feedback: feedback,
                    ..Default::default()
                },
                102,
            ),
        };
        let audio_codec = with_audio.then(|| RTCRtpCodecCapability {
            mime_type: MIME_TYPE_OPUS.to_owned(),
            clock_rate: AUDIO_CLOCK_RATE as u32,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".to_owned(),
            ..Default::default()
        });
        // Only what is sent is offered: the default set lists some twenty
        // payload types (VP9, AV1, H.265, eight H.264 profiles, G.722, …)
        // that this server never sends.
        media.register_codec(
            RTCRtpCodecParameters {
                capability: codec.clone(),
                payload_type,
                ..Default::default()
            },
            RTPCodecType::Video,
        )?;
        if let Some(audio) = &audio_codec {
            media.register_codec(
                RTCRtpCodecParameters {
                    capability: audio.clone(),
                    payload_type: 111,
                    ..Default::default()
                },
                RTPCodecType::Audio,
            )?;
        }
        let interceptors = sender_interceptors(&mut media)?;
        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(interceptors)
            .with_setting_engine(engine)
            .build();
        let payloader: Box<dyn Payloader + Send + Sync> = match codec.mime_type.as_str() {
            MIME_TYPE_H264 => Box::<H264Payloader>::default(),
            _ => {
                let mut vp8 = Vp8Payloader::default();
                // Picture ids let the receiver tell a lost frame from a late one.
                vp8.enable_picture_id = true;
                Box::new(vp8)
            }
        };
        Ok(RtcHub {
            api,
            config: RTCConfiguration {
                ice_servers,
                ..Default::default()
            },
            codec,
            audio_codec,
            audio_sequence: Mutex::new(rand::random()),
            viewers: Mutex::new(HashMap::new()),
            packetizer: Mutex::new(Packetizer {
                payloader,
                sequence: rand::random(),
            }),
            keyframes: Mutex::new(None),
            sent: Mutex::new(HashMap::new()),
        })
    }

    /// The video sent to `who` so far, if any was.
    pub fn sent_to(&self, who: ParticipantId) -> Option<(u64, std::time::Duration)> {
        let sent = self.sent.lock().expect("sent lock");
        sent.get(&who).map(|s| s.totals())
    }

    /// Video another node sent `who` (a viewer whose peer runs on its
    /// gateway, cluster mode), for its approval receipts.
    pub fn sent_elsewhere(&self, who: ParticipantId, bytes: u64, span: std::time::Duration) {
        self.sent_record(who).replace(bytes, span);
    }

    /// What `who` has been sent, kept across its reconnects.
    fn sent_record(&self, who: ParticipantId) -> Arc<SentVideo> {
        self.sent
            .lock()
            .expect("sent lock")
            .entry(who)
            .or_default()
            .clone()
    }

    /// Connects the hub to the player whose frames it sends.
    pub fn attach_keyframes(&self, request: KeyframeRequest) {
        *self.keyframes.lock().expect("keyframes lock") = Some(request);
    }

    fn request_keyframe(&self) {
        if let Some(request) = self.keyframes.lock().expect("keyframes lock").as_ref() {
            request();
        }
    }

    pub fn viewer_count(&self) -> usize {
        self.viewers.lock().expect("viewers lock").len()
    }

    /// Packetizes one picture and queues it for every viewer. Called on the
    /// player's thread; never blocks on a viewer.
    pub fn broadcast(&self, frame: &EncodedFrame) {
        let packets: Packets = Arc::new(
            self.packetizer
                .lock()
                .expect("packetizer lock")
                .packetize(frame),
        );
        for viewer in self.viewer_list() {
            viewer.queue.push(packets.clone());
        }
    }

    /// Queues one Opus packet for every viewer; like [`Self::broadcast`],
    /// never blocks.
    pub fn broadcast_audio(&self, audio: &EncodedAudio) {
        let mut packet = Packet::default();
        packet.header.version = 2;
        packet.header.sequence_number = {
            let mut sequence = self.audio_sequence.lock().expect("sequence lock");
            *sequence = sequence.wrapping_add(1);
            *sequence
        };
        packet.header.timestamp = audio_rtp_timestamp(audio.at);
        // RFC 3551: the marker flags the first packet after a silence.
        packet.header.marker = audio.resumed;
        packet.payload = audio.data.clone();
        let packets: Packets = Arc::new(vec![packet]);
        for viewer in self.viewer_list() {
            viewer.audio.push(packets.clone());
        }
    }

    fn viewer_list(&self) -> Vec<Arc<Viewer>> {
        self.viewers
            .lock()
            .expect("viewers lock")
            .values()
            .cloned()
            .collect()
    }

    /// Creates this participant's peer, sends it an offer through
    /// `signals`, and trickles the server's candidates after it.
    pub async fn start(
        self: &Arc<Self>,
        who: ParticipantId,
        signals: Signals,
    ) -> Result<(), RtcError> {
        self.stop(who).await;
        let pc = Arc::new(self.api.new_peer_connection(self.config.clone()).await?);
        let track = Arc::new(TrackLocalStaticRTP::new(
            self.codec.clone(),
            "video".to_owned(),
            STREAM_ID.to_owned(),
        ));
        let sender = pc.add_track(track.clone()).await?;
        let queue = Arc::new(FrameQueue::new(VIEWER_QUEUE_FRAMES));
        spawn_writer(queue.clone(), track, Some(self.sent_record(who)));
        let audio = Arc::new(FrameQueue::new(VIEWER_QUEUE_AUDIO));
        if let Some(codec) = &self.audio_codec {
            let track = Arc::new(TrackLocalStaticRTP::new(
                codec.clone(),
                "audio".to_owned(),
                STREAM_ID.to_owned(),
            ));
            let audio_sender = pc.add_track(track.clone()).await?;
            // Reading RTCP is what runs the interceptors (NACK, reports).
            tokio::spawn(async move { while audio_sender.read_rtcp().await.is_ok() {} });
            spawn_writer(audio.clone(), track, None);
        }

        // RTCP from this viewer: picture loss means it needs a keyframe.
        let hub = Arc::downgrade(self);
        tokio::spawn(async move {
            while let Ok((packets, _)) = sender.read_rtcp().await {
                let lost = packets.iter().any(|p| {
                    p.as_any().is::<PictureLossIndication>() || p.as_any().is::<FullIntraRequest>()
                });
                if lost {
                    if let Some(hub) = hub.upgrade() {
                        hub.request_keyframe();
                    }
                }
            }
        });

        // Candidates are gathered as soon as the local description is set,
        // which is before the offer has been queued; holding them until the
        // offer is out means a client never sees a candidate for an offer
        // it has not received.
        let (offer_sent, offer_sent_rx) = tokio::sync::watch::channel(false);
        let trickle = signals.clone();
        pc.on_ice_candidate(Box::new(move |candidate| {
            let trickle = trickle.clone();
            let mut offer_sent = offer_sent_rx.clone();
            Box::pin(async move {
                let Some(candidate) = candidate else { return };
                if offer_sent.wait_for(|sent| *sent).await.is_err() {
                    return;
                }
                if let Ok(init) = candidate.to_json() {
                    trickle(Signal::Candidate(IceCandidate {
                        candidate: init.candidate,
                        sdp_mid: init.sdp_mid,
                        sdp_m_line_index: init.sdp_mline_index,
                    }));
                }
            })
        }));
        let hub = Arc::downgrade(self);
        pc.on_peer_connection_state_change(Box::new(move |state| {
            let hub = hub.clone();
            Box::pin(async move {
                match state {
                    RTCPeerConnectionState::Connected => {
                        if let Some(hub) = hub.upgrade() {
                            hub.request_keyframe();
                        }
                    }
                    RTCPeerConnectionState::Failed => {
                        tracing::info!(participant = who.0, "viewer's peer connection failed");
                        if let Some(hub) = hub.upgrade() {
                            hub.stop(who).await;
                        }
                    }
                    _ => {}
                }
            })
        }));

        let offer = pc.create_offer(None).await?;
        pc.set_local_description(offer.clone()).await?;
        self.viewers
            .lock()
            .expect("viewers lock")
            .insert(who, Arc::new(Viewer { pc, queue, audio }));
        signals(Signal::Offer { sdp: offer.sdp });
        let _ = offer_sent.send(true);
        Ok(())
    }

    pub async fn answer(&self, who: ParticipantId, sdp: String) -> Result<(), RtcError> {
        let pc = self.peer(who)?;
        pc.set_remote_description(RTCSessionDescription::answer(sdp)?)
            .await?;
        Ok(())
    }

    pub async fn candidate(
        &self,
        who: ParticipantId,
        candidate: IceCandidate,
    ) -> Result<(), RtcError> {
        let pc = self.peer(who)?;
        pc.add_ice_candidate(RTCIceCandidateInit {
            candidate: candidate.candidate,
            sdp_mid: candidate.sdp_mid,
            sdp_mline_index: candidate.sdp_m_line_index,
            username_fragment: None,
        })
        .await?;
        Ok(())
    }

    /// Closes this participant's peer, if any.
    pub async fn stop(&self, who: ParticipantId) {
        let viewer = self.viewers.lock().expect("viewers lock").remove(&who);
        if let Some(viewer) = viewer {
            viewer.queue.close();
            viewer.audio.close();
            let _ = viewer.pc.close().await;
        }
    }

    fn peer(&self, who: ParticipantId) -> Result<Arc<RTCPeerConnection>, RtcError> {
        self.viewers
            .lock()
            .expect("viewers lock")
            .get(&who)
            .map(|v| v.pc.clone())
            .ok_or(RtcError::NotStarted)
    }
}

/// What `register_default_interceptors` sets up, sized for a sender. The
/// default NACK responder keeps 8,192 packets per stream (about 0.9 MB per
/// viewer, 30 s of video); a retransmission older than a second or two is
/// useless to a live viewer, so 512 packets do. No NACK generator: the
/// server receives no media.
fn sender_interceptors(media: &mut MediaEngine) -> Result<InterceptorRegistry, RtcError> {
    for parameter in ["", "pli"] {
        media.register_feedback(
            RTCPFeedback {
                typ: "nack".to_owned(),
                parameter: parameter.to_owned(),
            },
            RTPCodecType::Video,
        );
    }
    let mut registry = InterceptorRegistry::new();
    registry.add(Box::new(Responder::builder().with_log2_size(9)));
    registry = configure_rtcp_reports(registry);
    Ok(configure_twcc_receiver_only(registry, media)?)
}

/// The 48 kHz RTP timestamp of a server instant. Sound goes out on 20 ms
/// boundaries, where this is exact.
pub fn audio_rtp_timestamp(at: ServerTime) -> u32 {
    let micros = i128::from(at.as_micros().max(0));
    let ticks = micros * i128::from(AUDIO_CLOCK_RATE) / 1_000_000;
    (ticks % (1i128 << 32)) as u32
}

/// One viewer's writer for one track: its own pace, its own failures.
fn spawn_writer(
    queue: Arc<FrameQueue>,
    track: Arc<TrackLocalStaticRTP>,
    sent: Option<Arc<SentVideo>>,
) {
    tokio::spawn(async move {
        while let Some(packets) = queue.pop().await {
            for packet in packets.iter() {
                match track.write_rtp(packet).await {
                    // No bound peer yet (0 bytes) counts as nothing sent.
                    Ok(n) if n > 0 => {
                        if let Some(sent) = &sent {
                            sent.add(packet.payload.len());
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
    });
}

struct Packetizer {
    payloader: Box<dyn Payloader + Send + Sync>,
    sequence: u16,
}

impl Packetizer {
    fn packetize(&mut self, frame: &EncodedFrame) -> Vec<Packet> {
        let payloads = self.payloader.payload(MTU, &frame.data).unwrap_or_default();
        let last = payloads.len().saturating_sub(1);
        let timestamp = rtp_timestamp(frame.at);
        payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                self.sequence = self.sequence.wrapping_add(1);
                let mut packet = Packet::default();
                packet.header.version = 2;
                packet.header.sequence_number = self.sequence;
                packet.header.timestamp = timestamp;
                packet.header.marker = i == last;
                packet.payload = payload;
                packet
            })
            .collect()
    }
}

/// A bounded queue that drops its oldest frame when full: a viewer that
/// cannot keep up sees a gap (and asks for a keyframe), never a stall.
struct FrameQueue {
    inner: std::sync::Mutex<(VecDeque<Packets>, bool)>,
    ready: Notify,
    capacity: usize,
}

impl FrameQueue {
    fn new(capacity: usize) -> FrameQueue {
        FrameQueue {
            inner: std::sync::Mutex::new((VecDeque::with_capacity(capacity), false)),
            ready: Notify::new(),
            capacity,
        }
    }

    fn push(&self, packets: Packets) {
        {
            let mut inner = self.inner.lock().expect("queue lock");
            if inner.1 {
                return;
            }
            if inner.0.len() == self.capacity {
                inner.0.pop_front();
            }
            inner.0.push_back(packets);
        }
        self.ready.notify_one();
    }

    fn close(&self) {
        self.inner.lock().expect("queue lock").1 = true;
        self.ready.notify_one();
    }

    async fn pop(&self) -> Option<Packets> {
        loop {
            {
                let mut inner = self.inner.lock().expect("queue lock");
                if let Some(p) = inner.0.pop_front() {
                    return Some(p);
                }
                if inner.1 {
                    return None;
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_queue_drops_its_oldest_frame() {
        let q = FrameQueue::new(2);
        let frame = |n: u16| {
            let mut p = Packet::default();
            p.header.sequence_number = n;
            Arc::new(vec![p])
        };
        q.push(frame(1));
        q.push(frame(2));
        q.push(frame(3));
        assert_eq!(q.pop().await.unwrap()[0].header.sequence_number, 2);
        assert_eq!(q.pop().await.unwrap()[0].header.sequence_number, 3);
        q.close();
        assert!(q.pop().await.is_none());
    }
}
