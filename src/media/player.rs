//! One session's picture: decode the media, follow the shared transport
//! frame by frame, encode once.
//!
//! Two GStreamer pipelines with a scheduler thread between them:
//!
//! ```text
//! filesrc ! decodebin ! videoconvert ! videoscale ! I420 W×H
//!         [! textoverlay (the session's watermark)] ! appsink             (decoder)
//!                                    │ scheduler: which frame, and when
//! appsrc ! x264enc (zerolatency) | vp8enc (realtime) ! appsink          (encoder)
//! ```
//!
//! The scheduler owns time. At each output instant `t` (a frame boundary
//! of the transport in effect at `t`, on the server clock) it asks the
//! decoder for `position(t)`. The decoder pulls forward when that frame
//! is a little ahead, and seeks accurately otherwise. The frame goes to
//! the encoder stamped with `t`, and the encoded frame goes out stamped
//! `t` too, so the RTP timestamp of every frame is the server instant it
//! belongs to. A seek, a pause, or a keyframe request forces a keyframe.
//! Paused, the still frame is re-sent one frame interval after it first
//! went out (so that a receiver which finishes a picture only when the
//! next timestamp arrives shows it at once), then twice a second, so that
//! late joiners and lossy links recover.
//!
//! Neither pipeline runs on a GStreamer clock (`sync=false` everywhere):
//! the scheduler paces, which is what lets one session follow the room
//! clock exactly instead of a pipeline clock that drifts from it.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::compare::{self, CompareSpec, Layout};
use super::watermark::Watermark;
use super::{MediaError, MediaInfo};
use crate::clock::{ServerTime, Timeline, Transport};
use crate::server_clock::ServerClock;

/// The codec a session streams in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
    /// Constrained baseline, x264 `zerolatency`: the default, at about a
    /// third of VP8's CPU per session (docs/benchmarks.md, "Encoder CPU
    /// per session").
    H264,
}

/// How a session's stream is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    pub width: u32,
    pub height: u32,
    pub codec: VideoCodec,
    pub bitrate_kbps: u32,
    /// Longest time between keyframes, in frames.
    pub keyframe_interval: u32,
}

impl Default for StreamSettings {
    fn default() -> Self {
        StreamSettings {
            width: 1280,
            height: 720,
            codec: VideoCodec::H264,
            bitrate_kbps: 2500,
            keyframe_interval: 48,
        }
    }
}

/// One encoded picture, ready to packetize.
#[derive(Debug, Clone)]
pub struct EncodedFrame {
    pub data: bytes::Bytes,
    /// The server instant this picture belongs to: its RTP timestamp.
    pub at: ServerTime,
    /// The media frame it shows.
    pub frame: i64,
    pub keyframe: bool,
    /// It came out more than a frame after its instant: the player is not
    /// keeping up (a machine out of CPU), and the node should take no
    /// more sessions while that lasts.
    pub late: bool,
}

/// What the session tells its player.
#[derive(Debug)]
pub enum PlayerCommand {
    /// A new transport. It applies from its `anchor_time` on, so it may be
    /// sent ahead of time.
    Transport(Transport),
    /// A viewer joined or lost a picture: send a keyframe next.
    Keyframe,
    /// A playlist session moves to another file. Pictures from this file
    /// begin with the transport's `anchor_time`; the file is opened at
    /// once, so that the switch itself costs no time.
    Cue(Box<MediaInfo>, Transport),
    /// Compare another version beside the one on screen, or stop (`None`).
    Compare(Option<Box<CompareSpec>>),
    Stop,
}

/// What the player reports besides frames.
#[derive(Debug)]
pub enum PlayerEvent {
    Frame(EncodedFrame),
    /// The media failed mid-session; the player has stopped.
    Failed(MediaError),
}

/// How late a playing tick may be before the scheduler skips ahead.
const FRAME_SLACK: Duration = Duration::from_millis(100);
/// How often a paused picture is re-sent.
const STILL_REPEAT: Duration = Duration::from_millis(500);
/// How far ahead of the decoder a requested frame may be before seeking
/// beats decoding through.
const MAX_DECODE_AHEAD: i64 = 48;

/// Whether anyone receives the stream. Nobody watching, a player keeps
/// time but decodes and encodes nothing: a room left open overnight
/// costs no CPU.
pub type Watched = std::sync::Arc<dyn Fn() -> bool + Send + Sync>;

/// How a player ends by itself: once nobody has watched for `after`, it
/// asks `ask` at each tick, and a yes stops it, which tears its pipelines
/// down with it (see `media::pipelines`).
pub struct Retire {
    pub after: Duration,
    pub ask: Box<dyn Fn() -> bool + Send>,
}

/// Starts a player thread. Frames and failures arrive through `events`,
/// which is called on the player's own thread and must not block. The
/// pipelines are opened on that thread, so this returns at once; a file
/// that will not open arrives as `PlayerEvent::Failed`. Every picture
/// carries `watermark`, burned in once here for every viewer.
pub fn spawn(
    media: MediaInfo,
    settings: StreamSettings,
    watermark: Option<Watermark>,
    clock: ServerClock,
    initial: Transport,
    watched: Watched,
    events: impl Fn(PlayerEvent) + Send + 'static,
) -> Result<mpsc::Sender<PlayerCommand>, MediaError> {
    spawn_retiring(
        media, settings, watermark, clock, initial, watched, events, None,
    )
}

/// [`spawn`], for a player that may end by itself when nobody watches.
#[allow(clippy::too_many_arguments)]
pub fn spawn_retiring(
    media: MediaInfo,
    settings: StreamSettings,
    watermark: Option<Watermark>,
    clock: ServerClock,
    initial: Transport,
    watched: Watched,
    events: impl Fn(PlayerEvent) + Send + 'static,
    retire: Option<Retire>,
) -> Result<mpsc::Sender<PlayerCommand>, MediaError> {
    super::init()?;
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("syncreel-player".into())
        .spawn(move || {
            let opened = Decoder::open(&media, settings, watermark.as_ref())
                .and_then(|decoder| Ok((decoder, Encoder::open(settings, &media)?)));
            let (decoder, encoder) = match opened {
                Ok(pipelines) => pipelines,
                Err(err) => return events(PlayerEvent::Failed(err)),
            };
            let timeline = Timeline {
                rate: media.rate,
                duration: media.duration_frames,
            };
            let mut scheduler = Scheduler {
                decoder,
                encoder,
                timeline,
                settings,
                watermark,
                next_cut: None,
                clock,
                transports: Transports::new(initial),
                keyframe_due: true,
                asked: false,
                follow_still: false,
                last_output: None,
                compare: None,
            };
            if let Err(err) = scheduler.run(&rx, &*watched, retire.as_ref(), &events) {
                events(PlayerEvent::Failed(err));
            }
            scheduler.decoder.close();
            scheduler.encoder.close();
            if let Some(cut) = scheduler.next_cut.take() {
                cut.decoder.close();
                cut.encoder.close();
            }
            if let Some(other) = scheduler.compare.take() {
                other.decoder.close();
            }
        })
        .map_err(|e| MediaError::Gstreamer(e.to_string()))?;
    Ok(tx)
}

/// The transport in effect and any that take effect later, in order of
/// `anchor_time`: what a player follows.
pub(super) struct Transports(Vec<Transport>);

impl Transports {
    pub(super) fn new(initial: Transport) -> Transports {
        Transports(vec![initial])
    }

    pub(super) fn accept(&mut self, transport: Transport) {
        // A newer command replaces anything scheduled at or after its own
        // instant, exactly as clients apply it.
        self.0.retain(|t| t.anchor_time < transport.anchor_time);
        self.0.push(transport);
    }

    /// The transport in effect at `t`, dropping those it supersedes.
    pub(super) fn at(&mut self, t: ServerTime) -> Transport {
        let current = self
            .0
            .iter()
            .rposition(|tr| tr.anchor_time <= t)
            .unwrap_or(0);
        self.0.drain(..current);
        self.0[0]
    }

    /// The next transport after the one in effect, if one is scheduled.
    pub(super) fn upcoming(&self) -> Option<&Transport> {
        self.0.get(1)
    }

    /// Every transport scheduled after the one in effect, in order.
    pub(super) fn upcoming_all(&self) -> &[Transport] {
        &self.0[1..]
    }
}

struct Scheduler {
    decoder: Decoder,
    encoder: Encoder,
    timeline: Timeline,
    settings: StreamSettings,
    /// Burned into every file of a playlist alike.
    watermark: Option<Watermark>,
    /// A file to switch to at an instant: the next playlist entry.
    next_cut: Option<Cut>,
    clock: ServerClock,
    transports: Transports,
    keyframe_due: bool,
    /// A viewer asked for a picture: send one now rather than at the next
    /// tick, which when paused is up to half a second away.
    asked: bool,
    /// The last picture was the first of a paused transport: repeat it one
    /// frame interval later, not half a second. A receiver whose jitter
    /// buffer finishes a picture only once the next timestamp arrives
    /// would otherwise show every seek and step half a second late.
    follow_still: bool,
    /// When the last picture went out, and the transport it followed.
    last_output: Option<(ServerTime, Transport)>,
    /// The version shown beside this one, when the room compares.
    compare: Option<Comparing>,
}

/// The other version of a compare: its own decoder, asked for the same
/// frame as the main one at every tick.
struct Comparing {
    media: MediaInfo,
    decoder: Decoder,
    timeline: Timeline,
    layout: Layout,
}

/// Another file, opened and waiting for its instant.
struct Cut {
    at: ServerTime,
    decoder: Decoder,
    encoder: Encoder,
    timeline: Timeline,
}

impl Scheduler {
    fn run(
        &mut self,
        rx: &mpsc::Receiver<PlayerCommand>,
        watched: &dyn Fn() -> bool,
        retire: Option<&Retire>,
        events: &impl Fn(PlayerEvent),
    ) -> Result<(), MediaError> {
        let mut unwatched_since: Option<Instant> = None;
        loop {
            let due = self.next_output_time();
            let wait = self
                .clock
                .instant(due)
                .saturating_duration_since(Instant::now());
            match rx.recv_timeout(wait) {
                Ok(PlayerCommand::Transport(t)) => self.accept(t),
                Ok(PlayerCommand::Cue(media, transport)) => self.cue(&media, transport)?,
                Ok(PlayerCommand::Compare(spec)) => self.compare(spec.map(|s| *s))?,
                Ok(PlayerCommand::Keyframe) => {
                    self.keyframe_due = true;
                    self.asked = true;
                }
                Ok(PlayerCommand::Stop) | Err(RecvTimeoutError::Disconnected) => return Ok(()),
                Err(RecvTimeoutError::Timeout) if !watched() => {
                    let transport = self.transport_at(due);
                    self.last_output = Some((due, transport));
                    // Whoever comes next starts from a whole picture.
                    self.keyframe_due = true;
                    let since = *unwatched_since.get_or_insert_with(Instant::now);
                    if retire.is_some_and(|r| since.elapsed() >= r.after && (r.ask)()) {
                        return Ok(());
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    unwatched_since = None;
                    let frame = self.output(due)?;
                    events(PlayerEvent::Frame(frame));
                }
            }
        }
    }

    fn accept(&mut self, transport: Transport) {
        self.transports.accept(transport);
    }

    fn cue(&mut self, media: &MediaInfo, transport: Transport) -> Result<(), MediaError> {
        let cut = Cut {
            at: transport.anchor_time,
            decoder: Decoder::open(media, self.settings, self.watermark.as_ref())?,
            encoder: Encoder::open(self.settings, media)?,
            timeline: Timeline {
                rate: media.rate,
                duration: media.duration_frames,
            },
        };
        if let Some(superseded) = self.next_cut.replace(cut) {
            superseded.decoder.close();
            superseded.encoder.close();
        }
        self.accept(transport);
        Ok(())
    }

    /// Starts, adjusts or stops comparing. A new picture goes out at once,
    /// whole, so that a paused room sees the change without waiting.
    fn compare(&mut self, spec: Option<CompareSpec>) -> Result<(), MediaError> {
        self.keyframe_due = true;
        self.asked = true;
        let Some(spec) = spec else {
            if let Some(old) = self.compare.take() {
                old.decoder.close();
            }
            return Ok(());
        };
        if let Some(current) = self.compare.as_mut().filter(|c| c.media == spec.media) {
            // A wipe dragged, or the mode switched: the decoder stays.
            current.layout = spec.layout;
            return Ok(());
        }
        let decoder = Decoder::open(&spec.media, self.settings, self.watermark.as_ref())?;
        let timeline = Timeline {
            rate: spec.media.rate,
            duration: spec.media.duration_frames,
        };
        if let Some(old) = self.compare.replace(Comparing {
            media: spec.media,
            decoder,
            timeline,
            layout: spec.layout,
        }) {
            old.decoder.close();
        }
        Ok(())
    }

    fn transport_at(&mut self, t: ServerTime) -> Transport {
        if self.next_cut.as_ref().is_some_and(|cut| cut.at <= t) {
            let cut = self.next_cut.take().expect("checked above");
            std::mem::replace(&mut self.decoder, cut.decoder).close();
            std::mem::replace(&mut self.encoder, cut.encoder).close();
            self.timeline = cut.timeline;
            self.keyframe_due = true;
        }
        self.transports.at(t)
    }

    /// The next instant a picture is due: the next tick of the transport
    /// in effect, or the instant a newer transport takes effect, whichever
    /// is first.
    fn next_output_time(&mut self) -> ServerTime {
        let now = self.clock.now();
        let Some((last_at, _)) = self.last_output else {
            return now;
        };
        let current = self.transport_at(last_at);
        if self.asked {
            return now.max(last_at.saturating_add_micros(1));
        }
        let tick = if current.playing {
            let tick = next_frame_boundary(&current, &self.timeline, last_at);
            // Behind by more than a frame (a slow decode, say reverse play
            // seeking every frame): skip to the present rather than fall
            // further behind. The skipped pictures were due in the past;
            // nobody could have shown them in time anyway.
            if self.clock.instant(tick) + FRAME_SLACK < self.clock.instant(now) {
                next_frame_boundary(&current, &self.timeline, now)
            } else {
                tick
            }
        } else if self.follow_still {
            last_at.saturating_add_micros(frame_interval_micros(&self.timeline))
        } else {
            last_at.saturating_add_micros(STILL_REPEAT.as_micros() as i64)
        };
        match self.transports.upcoming() {
            Some(next) if next.anchor_time < tick => {
                next.anchor_time.max(last_at.saturating_add_micros(1))
            }
            _ => tick,
        }
    }

    fn output(&mut self, at: ServerTime) -> Result<EncodedFrame, MediaError> {
        let transport = self.transport_at(at);
        let frame = transport.position(&self.timeline, at);
        let changed = self.last_output.is_none_or(|(_, t)| t != transport);
        let (mut picture, mut sought) = self.decoder.frame(frame, &self.timeline)?;
        if let Some(other) = &mut self.compare {
            // Past the shorter version's end its last frame holds.
            let theirs = frame.clamp(0, other.timeline.last_frame());
            let (beside, moved) = other.decoder.frame(theirs, &other.timeline)?;
            let (w, h) = (self.settings.width, self.settings.height);
            picture = Picture {
                buffer: compare::compose(&picture.buffer, &beside.buffer, w, h, other.layout)?,
            };
            sought |= moved;
        }
        // The quick repeat of a still is whole too: a viewer that joined
        // between the two (or lost the first) needs nothing before it.
        let keyframe =
            self.keyframe_due || sought || self.follow_still || (changed && !transport.playing);
        self.keyframe_due = false;
        self.asked = false;
        self.follow_still = changed && !transport.playing;
        let encoded = self.encoder.encode(&picture, at, keyframe)?;
        self.last_output = Some((at, transport));
        // Only a playing picture read straight on counts: a seek's decode
        // is slow by nature, not for want of CPU.
        let steady = transport.playing && !sought;
        let frame_time = Duration::from_micros(frame_interval_micros(&self.timeline) as u64);
        Ok(EncodedFrame {
            data: encoded.0,
            at,
            frame,
            keyframe: encoded.1,
            late: steady && self.clock.instant(at) + frame_time < Instant::now(),
        })
    }
}

/// The first instant after `after` at which a playing transport shows a
/// new picture, capped at the media's frame rate: faster shuttles skip
/// frames rather than send more of them.
/// One frame's duration at the timeline's rate, rounded up.
fn frame_interval_micros(timeline: &Timeline) -> i64 {
    let (num, den) = (
        i64::from(timeline.rate.num()),
        i64::from(timeline.rate.den()),
    );
    (1_000_000 * den + num - 1) / num.max(1)
}

fn next_frame_boundary(t: &Transport, timeline: &Timeline, after: ServerTime) -> ServerTime {
    let rate = timeline.rate;
    // Output ticks every frame period, or every 1/speed periods when slower.
    let (slow_num, slow_den) = if t.speed.num().unsigned_abs() < t.speed.den() {
        (t.speed.den() as i128, t.speed.num().unsigned_abs() as i128)
    } else {
        (1, 1)
    };
    let period_num = 1_000_000i128 * i128::from(rate.den()) * slow_num;
    let period_den = i128::from(rate.num()) * slow_den;
    let since = i128::from(after.as_micros() - t.anchor_time.as_micros()).max(-1);
    // The smallest n with ceil(n × period) > since.
    let mut n = if since < 0 {
        0
    } else {
        since * period_den / period_num
    };
    loop {
        let tick = (n * period_num + period_den - 1) / period_den;
        if tick > since {
            return t.anchor_time.saturating_add_micros(tick as i64);
        }
        n += 1;
    }
}

/// A decoded picture at the decoder's output size.
pub(super) struct Picture {
    pub(super) buffer: gst::Buffer,
}

/// Decodes exact frames of a file, scaled to one size and pixel format.
pub(super) struct Decoder {
    pipeline: gst::Pipeline,
    sink: gst_app::AppSink,
    /// The frame the next pulled sample will be, when known.
    next: Option<i64>,
    /// The last picture handed out, for stills and repeats.
    last: Option<(i64, Picture)>,
    rate_num: u64,
    rate_den: u64,
    /// Negotiated once the first picture comes out.
    format: gst_video::VideoFormat,
}

impl Decoder {
    fn open(
        media: &MediaInfo,
        settings: StreamSettings,
        watermark: Option<&Watermark>,
    ) -> Result<Decoder, MediaError> {
        Decoder::open_as(
            media,
            settings.width,
            settings.height,
            &[gst_video::VideoFormat::I420],
            watermark,
        )
    }

    /// A decoder of `media` to `width`×`height` in one of `formats`, with
    /// `watermark` drawn on each picture at that size (after scaling, so
    /// that it is as sharp and as placed in a thumbnail as in the stream).
    /// Given several formats, the converter takes the one that loses least
    /// of the source (a 10-bit source picks a 16-bit format over an 8-bit
    /// one); [`Decoder::format`] says which it took.
    pub(super) fn open_as(
        media: &MediaInfo,
        width: u32,
        height: u32,
        formats: &[gst_video::VideoFormat],
        watermark: Option<&Watermark>,
    ) -> Result<Decoder, MediaError> {
        let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
        if !media.path.is_file() {
            // Named by its file name: where the media root is is none of
            // the room's business. A file away may come back (see
            // `pipelines`), which GStreamer's own refusal would not say.
            let name = media.path.file_name().unwrap_or_default();
            return Err(MediaError::Missing(name.into()));
        }
        let pipeline = gst::Pipeline::new();
        let make = super::element;
        let src = make("filesrc")?;
        src.set_property("location", media.path.to_string_lossy().to_string());
        let decode = make("decodebin")?;
        let convert = make("videoconvert")?;
        let scale = make("videoscale")?;
        let first = *formats
            .first()
            .ok_or_else(|| fail(&"a decoder needs an output format"))?;
        let caps = gst_video::VideoCapsBuilder::new()
            .format_list(formats.iter().copied())
            .width(width as i32)
            .height(height as i32)
            .pixel_aspect_ratio(gst::Fraction::new(1, 1))
            .build();
        let sink = gst_app::AppSink::builder()
            .caps(&caps)
            .sync(false)
            .max_buffers(2)
            .drop(false)
            .build();
        // Without a watermark the chain is as it always was, so that an
        // unwatermarked picture stays byte for byte what it was.
        let mut chain = vec![convert.clone(), scale];
        if let Some(watermark) = watermark {
            let sized = make("capsfilter")?;
            sized.set_property("caps", &caps);
            chain.push(sized);
            chain.push(watermark.overlay()?);
        }
        chain.push(sink.clone().upcast());
        pipeline.add(&src).map_err(|e| fail(&e))?;
        pipeline.add(&decode).map_err(|e| fail(&e))?;
        pipeline.add_many(&chain).map_err(|e| fail(&e))?;
        src.link(&decode).map_err(|e| fail(&e))?;
        gst::Element::link_many(&chain).map_err(|e| fail(&e))?;
        let convert_sink = convert
            .static_pad("sink")
            .ok_or_else(|| fail(&"no sink pad"))?;
        decode.connect_pad_added(move |_, pad| {
            let is_video = pad
                .current_caps()
                .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
                .unwrap_or(false);
            if is_video && !convert_sink.is_linked() {
                let _ = pad.link(&convert_sink);
            }
        });
        pipeline
            .set_state(gst::State::Paused)
            .map_err(|e| fail(&e))?;
        let (result, _, _) = pipeline.state(gst::ClockTime::from_seconds(10));
        result.map_err(|_| MediaError::NotMedia {
            path: media.path.clone(),
            reason: bus_error(&pipeline).unwrap_or_else(|| "the decoder did not start".into()),
        })?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail(&e))?;
        Ok(Decoder {
            pipeline,
            sink,
            next: Some(0),
            last: None,
            rate_num: u64::from(media.rate.num()),
            rate_den: u64::from(media.rate.den()),
            format: first,
        })
    }

    /// The pixel format of the pictures handed out.
    pub(super) fn format(&self) -> gst_video::VideoFormat {
        self.format
    }

    /// The picture of `frame`, and whether getting it took a seek.
    pub(super) fn frame(
        &mut self,
        frame: i64,
        timeline: &Timeline,
    ) -> Result<(Picture, bool), MediaError> {
        if let Some((last, picture)) = &self.last {
            if *last == frame {
                return Ok((
                    Picture {
                        buffer: picture.buffer.clone(),
                    },
                    false,
                ));
            }
        }
        let ahead = self.next.map(|next| frame - next);
        let sought = !matches!(ahead, Some(0..=MAX_DECODE_AHEAD));
        if sought {
            self.seek(frame)?;
        }
        // Bounded: at most the decode-ahead window plus a little slack
        // for decoders that emit a frame or two before the target.
        for _ in 0..MAX_DECODE_AHEAD + 8 {
            let Some(sample) = self.sink.try_pull_sample(gst::ClockTime::from_seconds(5)) else {
                if self.sink.is_eos() {
                    // Past the decodable end: hold the last picture.
                    if let Some((_, picture)) = &self.last {
                        return Ok((
                            Picture {
                                buffer: picture.buffer.clone(),
                            },
                            sought,
                        ));
                    }
                }
                return Err(MediaError::Gstreamer(
                    bus_error(&self.pipeline)
                        .unwrap_or_else(|| format!("no picture for frame {frame}")),
                ));
            };
            if let Some(info) = sample
                .caps()
                .and_then(|caps| gst_video::VideoInfo::from_caps(caps).ok())
            {
                self.format = info.format();
            }
            let buffer = sample
                .buffer_owned()
                .ok_or_else(|| MediaError::Gstreamer("empty sample".into()))?;
            let got = buffer
                .pts()
                .map(|pts| self.frame_of(pts))
                .unwrap_or_else(|| self.next.unwrap_or(frame));
            self.next = Some(got + 1);
            if got >= frame || got >= timeline.last_frame() {
                self.last = Some((
                    got,
                    Picture {
                        buffer: buffer.clone(),
                    },
                ));
                return Ok((Picture { buffer }, sought));
            }
        }
        Err(MediaError::Gstreamer(format!(
            "the decoder did not reach frame {frame}"
        )))
    }

    fn seek(&mut self, frame: i64) -> Result<(), MediaError> {
        // The middle of the frame's interval, so that rounding in the
        // container's timescale cannot land on the frame before.
        let ns =
            (2 * frame.max(0) as u64 + 1) * 1_000_000_000 * self.rate_den / (2 * self.rate_num);
        self.pipeline
            .seek_simple(
                gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
                gst::ClockTime::from_nseconds(ns),
            )
            .map_err(|e| MediaError::Gstreamer(format!("seek to frame {frame} failed: {e}")))?;
        self.next = None;
        self.last = None;
        Ok(())
    }

    /// The frame a decoded picture's timestamp belongs to. Container
    /// timescales put a frame's PTS a little either side of its exact
    /// instant, and after an accurate seek the decoder clips the first
    /// picture's PTS to the seek position, the middle of the frame (see
    /// `seek`). Adding a quarter frame and rounding down is right in both
    /// cases, where rounding to nearest would call the clipped picture the
    /// next frame.
    fn frame_of(&self, pts: gst::ClockTime) -> i64 {
        let ns = u128::from(pts.nseconds());
        let num =
            4 * ns * u128::from(self.rate_num) + 1_000_000_000u128 * u128::from(self.rate_den);
        let den = 4 * 1_000_000_000u128 * u128::from(self.rate_den);
        (num / den) as i64
    }

    pub(super) fn close(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

struct Encoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
}

impl Encoder {
    fn open(settings: StreamSettings, media: &MediaInfo) -> Result<Encoder, MediaError> {
        let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
        let caps = gst_video::VideoCapsBuilder::new()
            .format(gst_video::VideoFormat::I420)
            .width(settings.width as i32)
            .height(settings.height as i32)
            .pixel_aspect_ratio(gst::Fraction::new(1, 1))
            .framerate(gst::Fraction::new(
                media.rate.num() as i32,
                media.rate.den() as i32,
            ))
            .build();
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Time)
            .is_live(false)
            .build();
        let encoder = match settings.codec {
            VideoCodec::Vp8 => {
                let e = super::element("vp8enc")?;
                // vp8enc's defaults are for files, not realtime: set them.
                e.set_property("deadline", 1i64);
                e.set_property("cpu-used", 8i32);
                e.set_property_from_str("end-usage", "cbr");
                e.set_property("target-bitrate", (settings.bitrate_kbps * 1000) as i32);
                e.set_property("keyframe-max-dist", settings.keyframe_interval as i32);
                e.set_property("lag-in-frames", 0i32);
                e.set_property("threads", 2i32);
                e.set_property_from_str("error-resilient", "default");
                e
            }
            VideoCodec::H264 => {
                let e = super::element("x264enc")?;
                e.set_property_from_str("tune", "zerolatency");
                e.set_property_from_str("speed-preset", "ultrafast");
                e.set_property("bitrate", settings.bitrate_kbps);
                e.set_property("key-int-max", settings.keyframe_interval);
                e.set_property("bframes", 0u32);
                e
            }
        };
        let out_caps = match settings.codec {
            VideoCodec::Vp8 => gst::Caps::builder("video/x-vp8").build(),
            VideoCodec::H264 => gst::Caps::builder("video/x-h264")
                .field("profile", "constrained-baseline")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
        };
        let sink = gst_app::AppSink::builder()
            .caps(&out_caps)
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
        Ok(Encoder {
            pipeline,
            src,
            sink,
        })
    }

    /// Encodes one picture stamped with its server instant; returns the
    /// bytes and whether they are a keyframe.
    fn encode(
        &mut self,
        picture: &Picture,
        at: ServerTime,
        keyframe: bool,
    ) -> Result<(bytes::Bytes, bool), MediaError> {
        let fail = |m: String| MediaError::Gstreamer(m);
        if keyframe {
            let event = gst_video::DownstreamForceKeyUnitEvent::builder()
                .all_headers(true)
                .build();
            self.src.send_event(event);
        }
        let mut buffer = picture.buffer.copy();
        {
            let b = buffer.make_mut();
            let pts = gst::ClockTime::from_useconds(at.as_micros().max(0) as u64);
            b.set_pts(pts);
            b.set_dts(pts);
            b.set_duration(gst::ClockTime::NONE);
        }
        self.src
            .push_buffer(buffer)
            .map_err(|e| fail(format!("encoder refused a picture: {e:?}")))?;
        let sample = self
            .sink
            .try_pull_sample(gst::ClockTime::from_seconds(5))
            .ok_or_else(|| {
                fail(
                    bus_error(&self.pipeline)
                        .unwrap_or_else(|| "the encoder produced nothing".into()),
                )
            })?;
        let out = sample
            .buffer()
            .ok_or_else(|| fail("empty encoded sample".into()))?;
        let key = !out.flags().contains(gst::BufferFlags::DELTA_UNIT);
        let map = out.map_readable().map_err(|e| fail(e.to_string()))?;
        Ok((bytes::Bytes::copy_from_slice(map.as_slice()), key))
    }

    fn close(&self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// The first error message on a pipeline's bus, if any.
pub(super) fn bus_error(pipeline: &gst::Pipeline) -> Option<String> {
    let bus = pipeline.bus()?;
    while let Some(msg) = bus.pop() {
        if let gst::MessageView::Error(err) = msg.view() {
            return Some(err.error().to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Speed;
    use crate::timecode::FrameRate;

    fn playing(speed: Speed) -> Transport {
        Transport {
            playing: true,
            speed,
            ..Transport::paused_at(0, ServerTime::from_micros(1_000_000))
        }
    }

    #[test]
    fn ticks_fall_on_frame_boundaries_and_show_successive_frames() {
        let timeline = Timeline {
            rate: FrameRate::FPS_23_976,
            duration: 100_000,
        };
        let t = playing(Speed::NORMAL);
        let mut at = t.anchor_time;
        let mut frames = vec![t.position(&timeline, at)];
        for _ in 0..48 {
            at = next_frame_boundary(&t, &timeline, at);
            frames.push(t.position(&timeline, at));
            // One microsecond earlier still shows the frame before.
            assert_eq!(
                t.position(&timeline, at.saturating_add_micros(-1)),
                frames[frames.len() - 2]
            );
        }
        assert_eq!(frames, (0..=48).collect::<Vec<i64>>());
    }

    #[test]
    fn fast_shuttles_skip_frames_and_slow_ones_hold_them() {
        let timeline = Timeline {
            rate: FrameRate::FPS_24,
            duration: 100_000,
        };
        let fast = playing(Speed::new(4, 1).unwrap());
        let at = next_frame_boundary(&fast, &timeline, fast.anchor_time);
        assert_eq!(at.as_micros() - fast.anchor_time.as_micros(), 41_667);
        assert_eq!(fast.position(&timeline, at), 4);
        let slow = playing(Speed::HALF);
        let at = next_frame_boundary(&slow, &timeline, slow.anchor_time);
        assert_eq!(at.as_micros() - slow.anchor_time.as_micros(), 83_334);
        assert_eq!(slow.position(&timeline, at), 1);
    }
}
