//! One session's sound: decode the media's audio, follow the shared
//! transport in 20 ms packets, encode once to Opus.
//!
//! ```text
//! filesrc ! decodebin ! audioconvert ! audioresample ! S16LE 48 kHz stereo ! appsink
//!                                    │ scheduler: which samples, and when
//! appsrc ! opusenc (20 ms frames) ! appsink
//! ```
//!
//! Like the picture, the sound is paced by a scheduler on the server
//! clock, not by a pipeline clock. Packets fall on 20 ms boundaries of
//! server time and carry that instant as their RTP timestamp at 48 kHz,
//! so a browser lines sound up with pictures through the same clock.
//! The packet for instant `t` holds the media's samples at the transport
//! position of `t`, shifted by the encoder's lookahead so that what comes
//! out of the decoder at `t` is the sound of the frame shown at `t`.
//!
//! Sound plays only forward at 1×. Paused, shuttling, stepping or past
//! the end, no packets are sent: a receiver hears silence, and the first
//! packet after a gap carries the RTP marker bit.

use std::collections::VecDeque;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Instant;

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::player::{bus_error, PlayerCommand, Transports, Watched};
use super::{MediaError, MediaInfo};
use crate::clock::{ServerTime, Speed, Timeline, Transport};
use crate::server_clock::ServerClock;

/// The RTP clock of Opus, and the rate everything is resampled to.
pub const AUDIO_CLOCK_RATE: i64 = 48_000;
/// One Opus frame; also the scheduler's tick.
pub const PACKET_MICROS: i64 = 20_000;
const PACKET_SAMPLES: usize = (AUDIO_CLOCK_RATE * PACKET_MICROS / 1_000_000) as usize;
const CHANNELS: usize = 2;
/// Within this many samples, the decoder's next sample counts as the one
/// asked for: integer rounding of the playhead wobbles by a sample.
const CONTINUITY_SAMPLES: i64 = 2;
/// A target further ahead than this is sought rather than decoded to.
const MAX_DECODE_AHEAD: i64 = AUDIO_CLOCK_RATE / 2;
/// How late a tick may be before the scheduler skips to the present.
const TICK_SLACK_MICROS: i64 = 100_000;

/// One Opus packet, ready to send.
#[derive(Debug, Clone)]
pub struct EncodedAudio {
    pub data: bytes::Bytes,
    /// The server instant its first sample is heard: its RTP timestamp.
    pub at: ServerTime,
    /// The first packet after a silence.
    pub resumed: bool,
}

/// What the sound player reports.
#[derive(Debug)]
pub enum AudioEvent {
    Packet(EncodedAudio),
    /// The sound failed; pictures carry on without it.
    Failed(MediaError),
}

/// The media sample heard at `at`, or `None` when the transport makes no
/// sound then: paused, any speed but 1× forward, or past the end.
pub fn sample_at(transport: &Transport, timeline: &Timeline, at: ServerTime) -> Option<i64> {
    if !transport.playing || transport.speed != Speed::NORMAL {
        return None;
    }
    let rate = timeline.rate;
    let (num, den) = (i128::from(rate.num()), i128::from(rate.den()));
    // The last frame sounds for its whole duration, then silence.
    if let Some(last_shown) = transport.reaches_bound_at(timeline) {
        let frame_micros = (1_000_000 * den / num) as i64;
        if at.as_micros() - last_shown.as_micros() >= frame_micros {
            return None;
        }
    }
    let frame = transport.position(timeline, at);
    // How far into its frame `at` is: the remainder of the frame count,
    // in units of 1 / (1e6 × den) frames. A loop wraps by whole frames, so
    // this phase is the same before and after a wrap.
    let elapsed = i128::from((at.as_micros() - transport.anchor_time.as_micros()).max(0));
    let phase = (elapsed * num) % (1_000_000 * den);
    let rate_hz = i128::from(AUDIO_CLOCK_RATE);
    let frame_start = i128::from(frame) * rate_hz * den / num;
    let into_frame = phase * rate_hz / (1_000_000 * num);
    i64::try_from(frame_start + into_frame).ok()
}

/// Starts the sound player for media that has audio.
pub fn spawn(
    media: &MediaInfo,
    clock: ServerClock,
    initial: Transport,
    watched: Watched,
    events: impl Fn(AudioEvent) + Send + 'static,
) -> Result<mpsc::Sender<PlayerCommand>, MediaError> {
    super::init()?;
    let media = media.clone();
    let timeline = Timeline {
        rate: media.rate,
        duration: media.duration_frames,
    };
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("syncreel-audio".into())
        .spawn(move || {
            // Opened here, as the picture's are: the caller may be on the
            // async runtime. A playlist entry without sound may open a
            // session whose later entries have it.
            let opened = media
                .has_audio
                .then(|| AudioDecoder::open(&media))
                .transpose()
                .and_then(|decoder| Ok((decoder, OpusEncoder::open()?)));
            let (decoder, encoder) = match opened {
                Ok(pipelines) => pipelines,
                Err(err) => return events(AudioEvent::Failed(err)),
            };
            let mut scheduler = AudioScheduler {
                decoder,
                encoder,
                timeline,
                next_cut: None,
                clock,
                transports: Transports::new(initial),
                sounding: false,
            };
            if let Err(err) = scheduler.run(&rx, &*watched, &events) {
                events(AudioEvent::Failed(err));
            }
            for decoder in [
                scheduler.decoder.take(),
                scheduler.next_cut.and_then(|c| c.decoder),
            ]
            .into_iter()
            .flatten()
            {
                decoder.close();
            }
            scheduler.encoder.close();
        })
        .map_err(|e| MediaError::Gstreamer(e.to_string()))?;
    Ok(tx)
}

struct AudioScheduler {
    /// `None` while a playlist entry without sound is on.
    decoder: Option<AudioDecoder>,
    encoder: OpusEncoder,
    timeline: Timeline,
    /// The next playlist entry's sound, waiting for its instant.
    next_cut: Option<AudioCut>,
    clock: ServerClock,
    transports: Transports,
    /// The last tick sent a packet.
    sounding: bool,
}

struct AudioCut {
    at: ServerTime,
    decoder: Option<AudioDecoder>,
    timeline: Timeline,
}

impl AudioScheduler {
    fn run(
        &mut self,
        rx: &mpsc::Receiver<PlayerCommand>,
        watched: &dyn Fn() -> bool,
        events: &impl Fn(AudioEvent),
    ) -> Result<(), MediaError> {
        let mut tick = next_tick(self.clock.now());
        loop {
            let wait = self
                .clock
                .instant(tick)
                .saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(PlayerCommand::Transport(t)) => self.transports.accept(t),
                Ok(PlayerCommand::Keyframe | PlayerCommand::Compare(_)) => {}
                Ok(PlayerCommand::Cue(media, transport)) => {
                    let cut = AudioCut {
                        at: transport.anchor_time,
                        decoder: media
                            .has_audio
                            .then(|| AudioDecoder::open(&media))
                            .transpose()?,
                        timeline: Timeline {
                            rate: media.rate,
                            duration: media.duration_frames,
                        },
                    };
                    if let Some(decoder) = self.next_cut.replace(cut).and_then(|c| c.decoder) {
                        decoder.close();
                    }
                    self.transports.accept(transport);
                }
                Ok(PlayerCommand::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) => {
                    if !watched() {
                        self.transport_at(tick);
                        self.sounding = false;
                    } else if let Some(packet) = self.output(tick)? {
                        events(AudioEvent::Packet(packet));
                    }
                    tick = tick.saturating_add_micros(PACKET_MICROS);
                    let now = self.clock.now();
                    if now.as_micros() - tick.as_micros() > TICK_SLACK_MICROS {
                        // Fell behind (a slow seek): what was due is past
                        // hearing; carry on from the present.
                        tick = next_tick(now);
                        self.sounding = false;
                    }
                }
            }
        }
    }

    fn transport_at(&mut self, t: ServerTime) -> Transport {
        if self.next_cut.as_ref().is_some_and(|cut| cut.at <= t) {
            let cut = self.next_cut.take().expect("checked above");
            if let Some(old) = std::mem::replace(&mut self.decoder, cut.decoder) {
                old.close();
            }
            self.timeline = cut.timeline;
            self.sounding = false;
        }
        self.transports.at(t)
    }

    fn output(&mut self, at: ServerTime) -> Result<Option<EncodedAudio>, MediaError> {
        let transport = self.transport_at(at);
        let heard_at = at.saturating_add_micros(self.encoder.lookahead_micros());
        let (Some(first), Some(decoder)) = (
            sample_at(&transport, &self.timeline, heard_at),
            self.decoder.as_mut(),
        ) else {
            self.sounding = false;
            return Ok(None);
        };
        let pcm = decoder.samples(first, PACKET_SAMPLES)?;
        let data = self.encoder.encode(&pcm, at)?;
        let resumed = !self.sounding;
        self.sounding = true;
        Ok(Some(EncodedAudio { data, at, resumed }))
    }
}

/// The first packet boundary of server time at or after `t`.
fn next_tick(t: ServerTime) -> ServerTime {
    let micros = t.as_micros();
    let rounded = (micros + PACKET_MICROS - 1).div_euclid(PACKET_MICROS) * PACKET_MICROS;
    ServerTime::from_micros(rounded)
}

fn pcm_caps() -> gst::Caps {
    gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("rate", AUDIO_CLOCK_RATE as i32)
        .field("channels", CHANNELS as i32)
        .field("layout", "interleaved")
        .build()
}

struct AudioDecoder {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    /// Decoded, interleaved samples not yet used.
    pending: VecDeque<i16>,
    /// The media sample index of `pending`'s first frame of samples.
    pending_start: Option<i64>,
    ended: bool,
}

impl AudioDecoder {
    fn open(media: &MediaInfo) -> Result<AudioDecoder, MediaError> {
        let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
        let pipeline = gst::Pipeline::new();
        let src = super::element("filesrc")?;
        src.set_property("location", media.path.to_string_lossy().to_string());
        let decode = super::element("decodebin")?;
        let convert = super::element("audioconvert")?;
        let resample = super::element("audioresample")?;
        let sink = gst_app::AppSink::builder()
            .caps(&pcm_caps())
            .sync(false)
            .max_buffers(4)
            .drop(false)
            .build();
        pipeline
            .add_many([&src, &decode, &convert, &resample, sink.upcast_ref()])
            .map_err(|e| fail(&e))?;
        src.link(&decode).map_err(|e| fail(&e))?;
        gst::Element::link_many([&convert, &resample, sink.upcast_ref()]).map_err(|e| fail(&e))?;
        // Pictures are the other player's business: expose video before
        // its decoder is plugged, rather than decode every picture twice.
        // The encoded video then drains into a fakesink so the demuxer
        // never sees an unlinked stream.
        let select_result = glib::Type::from_name("GstAutoplugSelectResult")
            .ok_or_else(|| fail(&"decodebin's GstAutoplugSelectResult is missing"))?;
        decode.connect("autoplug-select", false, move |args| {
            let factory = args[3].get::<gst::ElementFactory>().ok()?;
            let video_decoder = factory.has_type(gst::ElementFactoryType::DECODER)
                && factory.has_type(gst::ElementFactoryType::MEDIA_VIDEO);
            // GST_AUTOPLUG_SELECT_TRY = 0, GST_AUTOPLUG_SELECT_EXPOSE = 1.
            glib::EnumClass::with_type(select_result)?.to_value(i32::from(video_decoder))
        });
        let convert_sink = convert
            .static_pad("sink")
            .ok_or_else(|| fail(&"no sink pad"))?;
        let weak_pipeline = pipeline.downgrade();
        decode.connect_pad_added(move |_, pad| {
            let is_audio = pad
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("audio/")))
                .unwrap_or(false);
            if is_audio && !convert_sink.is_linked() {
                let _ = pad.link(&convert_sink);
                return;
            }
            let Some(pipeline) = weak_pipeline.upgrade() else {
                return;
            };
            if let Ok(drain) = gst::ElementFactory::make("fakesink")
                .property("sync", false)
                .property("async", false)
                .build()
            {
                if pipeline.add(&drain).is_ok() {
                    let _ = drain.sync_state_with_parent();
                    if let Some(sink) = drain.static_pad("sink") {
                        let _ = pad.link(&sink);
                    }
                }
            }
        });
        pipeline
            .set_state(gst::State::Paused)
            .map_err(|e| fail(&e))?;
        let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(10));
        result.map_err(|_| MediaError::NotMedia {
            path: media.path.clone(),
            reason: bus_error(&pipeline).unwrap_or_else(|| "the audio did not start".into()),
        })?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail(&e))?;
        Ok(AudioDecoder {
            pipeline,
            sink,
            pending: VecDeque::new(),
            pending_start: Some(0),
            ended: false,
        })
    }

    /// `count` frames of samples from media sample `first` on, seeking
    /// when `first` is not where decoding stands; silence past the end.
    fn samples(&mut self, first: i64, count: usize) -> Result<Vec<i16>, MediaError> {
        let continuous = self
            .pending_start
            .is_some_and(|start| (first - start).abs() <= CONTINUITY_SAMPLES);
        if !continuous {
            let ahead = self.pending_start.map(|start| first - start);
            if matches!(ahead, Some(1..=MAX_DECODE_AHEAD)) {
                self.skip_to(first)?;
            } else {
                self.seek(first)?;
            }
        }
        self.fill(count)?;
        let take = (count * CHANNELS).min(self.pending.len());
        let mut out: Vec<i16> = self.pending.drain(..take).collect();
        out.resize(count * CHANNELS, 0);
        self.pending_start = self.pending_start.map(|s| s + count as i64);
        Ok(out)
    }

    fn skip_to(&mut self, first: i64) -> Result<(), MediaError> {
        let start = self.pending_start.unwrap_or(first);
        self.fill((first - start) as usize)?;
        let drop = (((first - start) as usize) * CHANNELS).min(self.pending.len());
        self.pending.drain(..drop);
        self.pending_start = Some(first);
        Ok(())
    }

    fn seek(&mut self, first: i64) -> Result<(), MediaError> {
        let ns = (first.max(0) as u64) * 1_000_000_000 / AUDIO_CLOCK_RATE as u64;
        self.pipeline
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::ClockTime::from_nseconds(ns),
            )
            .map_err(|e| MediaError::Gstreamer(format!("audio seek failed: {e}")))?;
        self.pending.clear();
        self.pending_start = None;
        self.ended = false;
        // The first buffer after the seek says where decoding stands; the
        // decoder clips to the seek position, but trust the timestamp.
        self.pull()?;
        match self.pending_start {
            Some(start) if start < first => self.skip_to(first)?,
            Some(start) if start > first => {
                // A gap in the media: pad it with silence.
                let gap = ((start - first) as usize) * CHANNELS;
                for _ in 0..gap {
                    self.pending.push_front(0);
                }
                self.pending_start = Some(first);
            }
            Some(_) => {}
            None => self.pending_start = Some(first),
        }
        Ok(())
    }

    /// Decodes until at least `count` frames of samples are pending, or
    /// the media ends.
    fn fill(&mut self, count: usize) -> Result<(), MediaError> {
        // Bounded: each pull adds at least one sample or ends the stream.
        for _ in 0..count + 1 {
            if self.ended || self.pending.len() >= count * CHANNELS {
                return Ok(());
            }
            self.pull()?;
        }
        Ok(())
    }

    fn pull(&mut self) -> Result<(), MediaError> {
        let Some(sample) = self.sink.try_pull_sample(gst::ClockTime::from_seconds(5)) else {
            if self.sink.is_eos() {
                self.ended = true;
                return Ok(());
            }
            return Err(MediaError::Gstreamer(
                bus_error(&self.pipeline).unwrap_or_else(|| "the audio decoder stalled".into()),
            ));
        };
        let buffer = sample
            .buffer()
            .ok_or_else(|| MediaError::Gstreamer("empty audio sample".into()))?;
        if self.pending_start.is_none() {
            let pts = buffer.pts().map(|p| p.nseconds()).unwrap_or(0);
            let start = (u128::from(pts) * AUDIO_CLOCK_RATE as u128 + 500_000_000) / 1_000_000_000;
            self.pending_start = Some(start as i64);
        }
        let map = buffer
            .map_readable()
            .map_err(|e| MediaError::Gstreamer(e.to_string()))?;
        self.pending.extend(
            map.as_slice()
                .chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
        Ok(())
    }

    fn close(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

struct OpusEncoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    /// Samples the encoder holds back (Opus "pre-skip").
    lookahead: i64,
}

impl OpusEncoder {
    fn open() -> Result<OpusEncoder, MediaError> {
        let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
        let src = gst_app::AppSrc::builder()
            .caps(&pcm_caps())
            .format(gst::Format::Time)
            .is_live(false)
            .build();
        let encoder = super::element("opusenc")?;
        encoder.set_property_from_str("frame-size", "20");
        encoder.set_property("bitrate", 96_000i32);
        let sink = gst_app::AppSink::builder()
            .caps(&gst::Caps::builder("audio/x-opus").build())
            .sync(false)
            .build();
        let pipeline = gst::Pipeline::new();
        pipeline
            .add_many([src.upcast_ref(), &encoder, sink.upcast_ref()])
            .map_err(|e| fail(&e))?;
        gst::Element::link_many([src.upcast_ref(), &encoder, sink.upcast_ref()])
            .map_err(|e| fail(&e))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail(&e))?;
        let mut encoder = OpusEncoder {
            pipeline,
            src,
            sink,
            lookahead: 312,
        };
        // One silent frame primes the encoder and tells its lookahead.
        encoder.encode(&[0; PACKET_SAMPLES * CHANNELS], ServerTime::from_micros(0))?;
        Ok(encoder)
    }

    fn lookahead_micros(&self) -> i64 {
        self.lookahead * 1_000_000 / AUDIO_CLOCK_RATE
    }

    fn encode(&mut self, pcm: &[i16], at: ServerTime) -> Result<bytes::Bytes, MediaError> {
        let fail = |m: String| MediaError::Gstreamer(m);
        let bytes: Vec<u8> = pcm.iter().flat_map(|s| s.to_le_bytes()).collect();
        let mut buffer = gst::Buffer::from_mut_slice(bytes);
        {
            let b = buffer.make_mut();
            let pts = gst::ClockTime::from_useconds(at.as_micros().max(0) as u64);
            b.set_pts(pts);
            b.set_duration(gst::ClockTime::from_useconds(PACKET_MICROS as u64));
        }
        self.src
            .push_buffer(buffer)
            .map_err(|e| fail(format!("the Opus encoder refused samples: {e:?}")))?;
        let sample = self
            .sink
            .try_pull_sample(gst::ClockTime::from_seconds(5))
            .ok_or_else(|| {
                fail(
                    bus_error(&self.pipeline)
                        .unwrap_or_else(|| "the Opus encoder produced nothing".into()),
                )
            })?;
        if let Some(skip) = sample.caps().and_then(pre_skip) {
            self.lookahead = i64::from(skip);
        }
        let out = sample
            .buffer()
            .ok_or_else(|| fail("empty Opus sample".into()))?;
        let map = out.map_readable().map_err(|e| fail(e.to_string()))?;
        Ok(bytes::Bytes::copy_from_slice(map.as_slice()))
    }

    fn close(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The pre-skip of an Opus stream, from the `OpusHead` in its caps'
/// stream header (RFC 7845 §5.1: a little-endian u16 at byte 10).
fn pre_skip(caps: &gst::CapsRef) -> Option<u16> {
    let headers = caps.structure(0)?.get::<gst::Array>("streamheader").ok()?;
    let head = headers.first()?.get::<gst::Buffer>().ok()?;
    let map = head.map_readable().ok()?;
    let bytes = map.as_slice();
    (bytes.len() >= 12 && bytes.starts_with(b"OpusHead"))
        .then(|| u16::from_le_bytes([bytes[10], bytes[11]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::LoopMarks;
    use crate::timecode::FrameRate;

    fn playing_from(frame: i64, speed: Speed) -> Transport {
        Transport {
            playing: true,
            speed,
            ..Transport::paused_at(frame, ServerTime::from_micros(5_000_000))
        }
    }

    #[test]
    fn consecutive_packets_carry_consecutive_samples_at_every_rate() {
        for rate in [
            FrameRate::FPS_23_976,
            FrameRate::FPS_24,
            FrameRate::FPS_25,
            FrameRate::FPS_29_97,
            FrameRate::FPS_59_94,
        ] {
            let timeline = Timeline {
                rate,
                duration: 1_000_000,
            };
            let t = playing_from(1234, Speed::NORMAL);
            let start = sample_at(&t, &timeline, t.anchor_time).unwrap();
            assert_eq!(
                start,
                1234 * 48_000 * i64::from(rate.den()) / i64::from(rate.num())
            );
            let mut previous = start;
            for n in 1..3_000 {
                let at = t.anchor_time.saturating_add_micros(n * PACKET_MICROS);
                let s = sample_at(&t, &timeline, at).unwrap();
                let step = s - previous;
                assert!(
                    (step - PACKET_SAMPLES as i64).abs() <= 1,
                    "{rate:?} packet {n}: {step} samples"
                );
                // No drift: always within a sample of the exact position.
                assert!((s - start - n * PACKET_SAMPLES as i64).abs() <= 1);
                previous = s;
            }
        }
    }

    #[test]
    fn sound_only_at_normal_forward_speed_inside_the_media() {
        let timeline = Timeline {
            rate: FrameRate::FPS_24,
            duration: 48,
        };
        let at = ServerTime::from_micros(5_500_000);
        assert!(sample_at(&Transport::paused_at(10, at), &timeline, at).is_none());
        for speed in [
            Speed::HALF,
            Speed::new(2, 1).unwrap(),
            Speed::new(-1, 1).unwrap(),
        ] {
            assert!(sample_at(&playing_from(10, speed), &timeline, at).is_none());
        }
        let t = playing_from(10, Speed::NORMAL);
        assert_eq!(sample_at(&t, &timeline, at), Some(10 * 2000 + 24_000));
        // 38 frames to the end, the last one heard in full: silence from
        // 38/24 s on.
        let end = t.anchor_time.saturating_add_micros(1_583_334);
        assert!(sample_at(&t, &timeline, end).is_none());
        assert!(sample_at(&t, &timeline, end.saturating_add_micros(-40)).is_some());
    }

    #[test]
    fn a_loop_wrap_jumps_back_by_whole_frames() {
        let timeline = Timeline {
            rate: FrameRate::FPS_24,
            duration: 1000,
        };
        let t = Transport {
            loop_marks: LoopMarks {
                mark_in: Some(100),
                mark_out: Some(123),
            },
            ..playing_from(100, Speed::NORMAL)
        };
        // One second in (24 frames), the loop has wrapped exactly once.
        let at = t.anchor_time.saturating_add_micros(1_010_000);
        assert_eq!(sample_at(&t, &timeline, at), Some(100 * 2000 + 480));
    }

    #[test]
    fn ticks_fall_on_packet_boundaries() {
        assert_eq!(next_tick(ServerTime::from_micros(0)).as_micros(), 0);
        assert_eq!(next_tick(ServerTime::from_micros(1)).as_micros(), 20_000);
        assert_eq!(
            next_tick(ServerTime::from_micros(40_000)).as_micros(),
            40_000
        );
    }
}
