//! A viewer as a program: a WebSocket participant plus a receive-only
//! webrtc-rs peer whose video is decoded with GStreamer and read for its
//! frame code. Shared by the stream tests and the video benchmark.

#![allow(dead_code)]

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use syncreel::clock::{ServerTime, Transport};
use tokio::sync::mpsc;
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::MediaEngine;
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::APIBuilder;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use webrtc::rtp::codecs::vp8::Vp8Packet;
use webrtc::rtp::packet::Packet;
use webrtc::rtp::packetizer::Depacketizer;
use webrtc::rtp_transceiver::rtp_codec::RTPCodecType;

use super::common::{transport_of, Client, WAIT};
use super::vp8;

/// One decoded picture: the server instant its RTP timestamp names, and
/// the frame code read from its pixels.
#[derive(Clone)]
pub struct Seen {
    pub at: ServerTime,
    pub code: Option<u32>,
    /// When this process finished decoding it.
    pub decoded: Instant,
    /// Its luma plane, for tests that look at more than the frame code.
    pub luma: Option<Arc<vp8::Luma>>,
}

impl std::fmt::Debug for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Seen")
            .field("at", &self.at)
            .field("code", &self.code)
            .finish()
    }
}

/// One Opus packet as received.
#[derive(Debug, Clone)]
pub struct Heard {
    pub rtp_timestamp: u32,
    pub marker: bool,
    pub payload: bytes::Bytes,
}

enum Received {
    Picture(Seen),
    Audio(Heard),
}

/// A viewer: a WebSocket participant plus a receive-only peer connection.
pub struct Viewer {
    pub ws: Client,
    pc: Arc<RTCPeerConnection>,
    received: mpsc::UnboundedReceiver<Received>,
    /// What arrived while the caller waited for the other kind.
    pictures: VecDeque<Seen>,
    audio: VecDeque<Heard>,
    candidates: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    /// The room's transports as this viewer heard them (its welcome's,
    /// then each `transport`), to tell what a picture should show.
    transports: Vec<Transport>,
}

impl Viewer {
    pub async fn join(addr: SocketAddr, token: &str) -> Viewer {
        Viewer::watching(Client::join(addr, token, "Viewer").await).await
    }

    /// Joins again as a page told `session_moved` does: hellos on `addr`
    /// until one is welcomed (`session_elsewhere` while the dead owner's
    /// lease lasts, within 15 s of `since`), then a new peer.
    pub async fn rejoin(addr: SocketAddr, token: &str, since: Instant) -> Viewer {
        let (mut ws, welcome) = super::common::node::rejoin(addr, token, since).await;
        ws.welcome = welcome;
        Viewer::watching(ws).await
    }

    /// Starts the video of a participant just welcomed.
    async fn watching(mut ws: Client) -> Viewer {
        assert_eq!(ws.welcome["media"]["codec"], "VP8");
        assert_eq!(ws.welcome["media"]["rtpClockRate"], 90_000);

        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        let interceptors = register_default_interceptors(Registry::new(), &mut media).unwrap();
        let mut settings = SettingEngine::default();
        settings.set_include_loopback_candidate(true);
        let api = APIBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(interceptors)
            .with_setting_engine(settings)
            .build();
        let pc = Arc::new(
            api.new_peer_connection(RTCConfiguration::default())
                .await
                .unwrap(),
        );

        let (pictures_tx, received) = mpsc::unbounded_channel();
        let pli_pc = Arc::downgrade(&pc);
        pc.on_track(Box::new(move |track, _, _| {
            let pictures_tx = pictures_tx.clone();
            let pli_pc = pli_pc.clone();
            Box::pin(async move {
                if track.kind() == RTPCodecType::Audio {
                    tokio::spawn(async move {
                        while let Ok((packet, _)) = track.read_rtp().await {
                            let heard = Heard {
                                rtp_timestamp: packet.header.timestamp,
                                marker: packet.header.marker,
                                payload: packet.payload,
                            };
                            if pictures_tx.send(Received::Audio(heard)).is_err() {
                                return;
                            }
                        }
                    });
                    return;
                }
                // Decoding blocks; keep it off the runtime's workers.
                let (samples_tx, mut samples_rx) = mpsc::unbounded_channel::<(bytes::Bytes, u32)>();
                std::thread::spawn(move || {
                    let mut reader = vp8::Vp8Reader::new();
                    while let Some((data, rtp)) = samples_rx.blocking_recv() {
                        let at = ServerTime::from_micros(i64::from(rtp) * 1_000_000 / 90_000);
                        let luma = reader.picture(&data, at.as_micros() as u64).map(Arc::new);
                        let code = luma
                            .as_ref()
                            .and_then(|l| syncreel::framecode::read(&l.plane, l.layout));
                        let decoded = Instant::now();
                        let seen = Seen {
                            at,
                            code,
                            decoded,
                            luma,
                        };
                        if pictures_tx.send(Received::Picture(seen)).is_err() {
                            return;
                        }
                    }
                });
                tokio::spawn(async move {
                    let mut assembler = Assembler::default();
                    let mut last_pli: Option<Instant> = None;
                    while let Ok((packet, _)) = track.read_rtp().await {
                        let (complete, lost) = assembler.push(packet);
                        if let Some(picture) = complete {
                            let _ = samples_tx.send(picture);
                        }
                        // A picture given up for lost leaves the decoder
                        // without its reference: ask for a keyframe, as a
                        // browser does, at most every 200 ms.
                        if lost && last_pli.is_none_or(|t| t.elapsed() > Duration::from_millis(200))
                        {
                            last_pli = Some(Instant::now());
                            if let Some(pc) = pli_pc.upgrade() {
                                let pli = PictureLossIndication {
                                    sender_ssrc: 0,
                                    media_ssrc: track.ssrc(),
                                };
                                let _ = pc.write_rtcp(&[Box::new(pli)]).await;
                            }
                        }
                    }
                });
            })
        }));

        ws.send(json!({"type": "rtcStart"})).await;
        let offer = ws.expect("rtcOffer").await;
        pc.set_remote_description(
            RTCSessionDescription::offer(offer["sdp"].as_str().unwrap().into()).unwrap(),
        )
        .await
        .unwrap();
        let answer = pc.create_answer(None).await.unwrap();
        // Trickle our candidates as a browser does, after the answer.
        let (candidates_tx, candidates) = mpsc::unbounded_channel();
        pc.on_ice_candidate(Box::new(move |candidate| {
            if let Some(init) = candidate.and_then(|c| c.to_json().ok()) {
                let _ = candidates_tx.send(init);
            }
            Box::pin(async {})
        }));
        ws.send(json!({"type": "rtcAnswer", "sdp": answer.sdp}))
            .await;
        pc.set_local_description(answer).await.unwrap();
        let transports = vec![transport_of(&ws.welcome["state"])];
        Viewer {
            ws,
            pc,
            received,
            pictures: VecDeque::new(),
            audio: VecDeque::new(),
            candidates,
            transports,
        }
    }

    pub async fn next_picture(&mut self) -> Seen {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(seen) = self.pictures.pop_front() {
                return seen;
            }
            self.receive(deadline, "picture").await;
        }
    }

    pub async fn next_audio(&mut self) -> Heard {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(heard) = self.audio.pop_front() {
                return heard;
            }
            self.receive(deadline, "sound").await;
        }
    }

    /// Waits for the next picture or packet of sound, feeding trickled
    /// candidates to the peer meanwhile.
    async fn receive(&mut self, deadline: tokio::time::Instant, wanted: &str) {
        loop {
            tokio::select! {
                received = self.received.recv() => {
                    match received.expect("media stream open") {
                        Received::Picture(seen) => self.pictures.push_back(seen),
                        Received::Audio(heard) => self.audio.push_back(heard),
                    }
                    return;
                }
                Some(ours) = self.candidates.recv() => {
                    let candidate = json!({
                        "candidate": ours.candidate,
                        "sdpMid": ours.sdp_mid,
                        "sdpMLineIndex": ours.sdp_mline_index,
                    });
                    self.ws.send(json!({"type": "rtcCandidate", "candidate": candidate})).await;
                }
                msg = self.ws.next() => {
                    if msg["type"] == "transport" {
                        self.transports.push(transport_of(&msg));
                    }
                    if msg["type"] == "rtcCandidate" {
                        let c = &msg["candidate"];
                        let init = RTCIceCandidateInit {
                            candidate: c["candidate"].as_str().unwrap().into(),
                            sdp_mid: c["sdpMid"].as_str().map(Into::into),
                            sdp_mline_index: c["sdpMLineIndex"].as_u64().map(|i| i as u16),
                            username_fragment: None,
                        };
                        self.pc.add_ice_candidate(init).await.unwrap();
                    }
                }
                () = tokio::time::sleep_until(deadline) => panic!("no {wanted} within {WAIT:?}"),
            }
        }
    }

    /// The frame code of the first picture this viewer can read. One that
    /// joins while its peer connects may get the start of a picture cut
    /// off (unreadable; it asks for a keyframe); what matters is that the
    /// first frame it can show is the room's.
    pub async fn first_readable(&mut self) -> u32 {
        // Bounded: a keyframe follows the peer's connection at once.
        for _ in 0..5 {
            if let Some(code) = self.next_picture().await.code {
                return code;
            }
        }
        panic!("no readable picture in 5");
    }

    /// The room's transport in effect at `at`, as far as this viewer has
    /// heard: a transport takes effect at its anchor time, and one that
    /// arrives late is only known once it has been read.
    pub fn transport_at(&self, at: ServerTime) -> Transport {
        self.transports
            .iter()
            .filter(|t| t.anchor_time <= at)
            .max_by_key(|t| t.anchor_time)
            .copied()
            .unwrap_or(self.transports[0])
    }

    /// Leaves: closes the peer, then the WebSocket, as a closed tab does.
    pub async fn leave(self) {
        let _ = self.pc.close().await;
        self.ws.close().await;
    }

    /// Skips pictures until one that belongs to `at` or later.
    pub async fn picture_at_or_after(&mut self, at: i64) -> Seen {
        loop {
            let seen = self.next_picture().await;
            if seen.at.as_micros() >= at {
                return seen;
            }
        }
    }
}

/// Puts pictures back together from RTP packets, tolerating reordering and
/// NACK retransmissions: a picture is complete once every sequence number
/// from the one after the previous picture's marker up to its own marker
/// has arrived. A picture still incomplete when a later one completes is
/// given up for lost.
#[derive(Default)]
struct Assembler {
    /// Packets by RTP timestamp, then sequence number (unwrapped).
    pending: BTreeMap<u32, BTreeMap<i64, Packet>>,
    /// The sequence number (unwrapped) of the last complete picture's
    /// marker packet.
    last_marker: Option<i64>,
    highest: Option<i64>,
}

impl Assembler {
    /// Returns a completed picture (data, RTP timestamp), if any, and
    /// whether a picture was given up for lost.
    fn push(&mut self, packet: Packet) -> (Option<(bytes::Bytes, u32)>, bool) {
        let seq = self.unwrap(packet.header.sequence_number);
        let ts = packet.header.timestamp;
        if self.last_marker.is_some_and(|m| seq <= m) {
            return (None, false);
        }
        self.pending.entry(ts).or_default().insert(seq, packet);
        let Some(packets) = self.pending.get(&ts) else {
            return (None, false);
        };
        let Some((&marker, _)) = packets.iter().find(|(_, p)| p.header.marker) else {
            return (None, false);
        };
        let first = *packets.keys().next().expect("not empty");
        let contiguous = packets.len() as i64 == marker - first + 1;
        let starts_after_last = self.last_marker.is_none_or(|m| first == m + 1);
        if !contiguous || !starts_after_last {
            return (None, false);
        }
        let packets = self.pending.remove(&ts).expect("present");
        let mut data = Vec::new();
        for p in packets.values() {
            let mut vp8 = Vp8Packet::default();
            match vp8.depacketize(&p.payload) {
                Ok(bytes) => data.extend_from_slice(&bytes),
                Err(_) => return (None, true),
            }
        }
        self.last_marker = Some(marker);
        // Anything older than this picture will never be shown.
        let before = self.pending.len();
        self.pending
            .retain(|_, ps| ps.keys().next().is_some_and(|&s| s > marker));
        let lost = self.pending.len() < before;
        (Some((bytes::Bytes::from(data), ts)), lost)
    }

    fn unwrap(&mut self, seq: u16) -> i64 {
        let value = match self.highest {
            None => i64::from(seq),
            Some(h) => {
                let base = h - (h & 0xffff);
                let candidates = [
                    base - 0x10000 + i64::from(seq),
                    base + i64::from(seq),
                    base + 0x10000 + i64::from(seq),
                ];
                *candidates
                    .iter()
                    .min_by_key(|c| (*c - h).abs())
                    .expect("three")
            }
        };
        self.highest = Some(self.highest.map_or(value, |h| h.max(value)));
        value
    }
}
