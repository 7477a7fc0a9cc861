//! Makes the demo clip: a test picture that proves synchronization by eye
//! and by machine.
//!
//! Every frame carries its timecode and, below it, its number burnt in at
//! the top, and the [`crate::framecode`] strip at the bottom. The sound is a one-frame 1 kHz beep
//! on the first frame of every timecode second, which makes lip-sync errors
//! audible (and measurable: see `tests/rtc_stream.rs`). The
//! GOP is short (half a second) so that an accurate seek decodes little.
//! The file is a MOV with H.264 video, PCM audio and a timecode track.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::MediaError;
use crate::framecode::{self, PlaneLayout};
use crate::timecode::{FrameRate, Timecode, TimecodeFormat};

/// What to make.
#[derive(Debug, Clone)]
pub struct DemoClipSpec {
    pub width: u32,
    pub height: u32,
    pub rate: FrameRate,
    pub frames: u32,
    pub start: Timecode,
    /// Frames between keyframes.
    pub gop: u32,
    /// Added to each frame's code: several clips (the shots of a
    /// playlist) can then be told apart by their pixels alone.
    pub code_offset: u32,
    pub codec: ClipCodec,
}

/// How the clip's pictures are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClipCodec {
    /// H.264, a keyframe every `gop` frames: plays as it is.
    #[default]
    H264,
    /// Apple ProRes 422 (every frame a keyframe, 10-bit 4:2:2): what an
    /// editor sends, and what gets a review proxy.
    ProRes,
}

impl Default for DemoClipSpec {
    fn default() -> Self {
        DemoClipSpec {
            width: 1280,
            height: 720,
            rate: FrameRate::FPS_23_976,
            // Two minutes at 23.976.
            frames: 2878,
            start: Timecode {
                hours: 1,
                minutes: 0,
                seconds: 0,
                frames: 0,
                drop_frame: false,
            },
            gop: 12,
            code_offset: 0,
            codec: ClipCodec::H264,
        }
    }
}

/// Writes the clip to `out` (through a temporary file, so that a clip
/// that exists is always whole) unless `out` already exists. Callers
/// racing on the same path each render it; the last rename wins and every
/// one of them leaves a whole clip behind.
pub fn ensure(out: &Path, spec: &DemoClipSpec) -> Result<PathBuf, MediaError> {
    if out.is_file() {
        return Ok(out.to_owned());
    }
    generate(out, spec)?;
    Ok(out.to_owned())
}

/// Writes the clip to `out`, replacing it.
pub fn generate(out: &Path, spec: &DemoClipSpec) -> Result<(), MediaError> {
    super::init()?;
    let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    // A name of its own, so that two processes making the same clip at
    // once do not write into each other's file; the rename is atomic.
    let partial = out.with_extension(format!(
        "{}-{}.partial.mov",
        std::process::id(),
        rand::random::<u32>()
    ));
    let labels = TimecodeFormat::new(spec.rate, spec.start.drop_frame)
        .and_then(|f| f.with_start(spec.start))
        .map_err(|e| fail(&e))?;
    let fps = gst::Fraction::new(spec.rate.num() as i32, spec.rate.den() as i32);

    let make = super::element;
    let pipeline = gst::Pipeline::new();
    let src = make("videotestsrc")?;
    src.set_property_from_str("pattern", "smpte");
    src.set_property("horizontal-speed", 4i32);
    src.set_property("num-buffers", spec.frames as i32);
    let raw = make("capsfilter")?;
    raw.set_property(
        "caps",
        gst_video::VideoCapsBuilder::new()
            .format(gst_video::VideoFormat::I420)
            .width(spec.width as i32)
            .height(spec.height as i32)
            .framerate(fps)
            .build(),
    );
    let burn = make("textoverlay")?;
    // textoverlay scales a font by width / 640 (`auto-resize`), so a
    // size from the height alone grows twice over with the picture; past
    // 1280 wide it would fill a UHD frame and cover the frame code. It
    // stops at the 720p clip's look.
    let points = (spec.height / 18).min(spec.height * 640 / (9 * spec.width.max(1)));
    burn.set_property("font-desc", format!("Monospace Bold {points}"));
    burn.set_property_from_str("valignment", "top");
    burn.set_property_from_str("halignment", "center");
    burn.set_property("shaded-background", true);
    burn.set_property_from_str("line-alignment", "center");
    let stamper = timecode_stamper(spec.start, fps)?;
    let (encoder, parse) = match spec.codec {
        ClipCodec::H264 => {
            let encoder = make("x264enc")?;
            encoder.set_property("key-int-max", spec.gop);
            encoder.set_property("bframes", 0u32);
            encoder.set_property("bitrate", 2500u32);
            encoder.set_property_from_str("speed-preset", "veryfast");
            (encoder, make("h264parse")?)
        }
        // The encoder takes 4:2:2 10-bit; the converter gets it there.
        // FFmpeg's `prores_aw` encoder: ten times the speed of `prores_ks`
        // here (a UHD frame in 0.2 s, not 2.2 s), the same bitstream.
        ClipCodec::ProRes => (make("avenc_prores")?, make("videoconvert")?),
    };
    // ProRes: the converter goes before the encoder.
    let (first, second) = match spec.codec {
        ClipCodec::H264 => (&encoder, &parse),
        ClipCodec::ProRes => (&parse, &encoder),
    };
    let vqueue = make("queue")?;
    let mux = make("qtmux")?;
    let sink = make("filesink")?;
    sink.set_property("location", partial.to_string_lossy().to_string());

    let tone = beeps(spec, labels)?;
    let pcm = make("identity")?;
    let aconvert = make("audioconvert")?;
    let aqueue = make("queue")?;

    pipeline
        .add_many([
            &src,
            &raw,
            &burn,
            &stamper,
            &encoder,
            &parse,
            &vqueue,
            &mux,
            &sink,
            tone.upcast_ref(),
            &aconvert,
            &pcm,
            &aqueue,
        ])
        .map_err(|e| fail(&e))?;
    gst::Element::link_many([
        &src, &raw, &burn, &stamper, first, second, &vqueue, &mux, &sink,
    ])
    .map_err(|e| fail(&e))?;
    gst::Element::link_many([tone.upcast_ref(), &aconvert, &pcm, &aqueue, &mux])
        .map_err(|e| fail(&e))?;

    // Burn the labels and the frame code into each frame before it is
    // overlaid and encoded. videotestsrc numbers its buffers from 0 in
    // `offset`, which is the media frame.
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, spec.width, spec.height)
        .fps(fps)
        .build()
        .map_err(|e| fail(&e))?;
    let burn_weak = burn.downgrade();
    let code_offset = spec.code_offset;
    let pad = burn
        .static_pad("video_sink")
        .ok_or_else(|| fail(&"textoverlay has no video_sink"))?;
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, probe| {
        let Some(gst::PadProbeData::Buffer(buffer)) = probe.data.as_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let frame = buffer.offset();
        if let Some(burn) = burn_weak.upgrade() {
            let label = labels.label(frame as i64);
            burn.set_property("text", format!("{label}\n#{frame:06}"));
        }
        let buffer = buffer.make_mut();
        if let Ok(mut video) = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer, &info) {
            paint_frame_code(&mut video, frame as u32 + code_offset);
        }
        gst::PadProbeReturn::Ok
    });

    run_to_eos(&pipeline)?;
    std::fs::rename(&partial, out).map_err(|e| fail(&e))?;
    Ok(())
}

/// The sound: silence, except a 1 kHz beep for the whole of the first
/// frame of every timecode second, so that the beep and the picture
/// labelled `…:00` are heard and seen together. Samples are counted from
/// frame boundaries on the 48 kHz grid, so sound and picture never drift
/// apart, even where a frame is not a whole number of samples (29.97).
fn beeps(spec: &DemoClipSpec, labels: TimecodeFormat) -> Result<gst_app::AppSrc, MediaError> {
    const RATE: u64 = 48_000;
    let caps = gst::Caps::builder("audio/x-raw")
        .field("format", "S16LE")
        .field("rate", RATE as i32)
        .field("channels", 1i32)
        .field("layout", "interleaved")
        .build();
    let src = gst_app::AppSrc::builder()
        .caps(&caps)
        .format(gst::Format::Time)
        .build();
    let (num, den) = (u64::from(spec.rate.num()), u64::from(spec.rate.den()));
    let frames = u64::from(spec.frames);
    let sample_of = move |frame: u64| frame * RATE * den / num;
    let mut next = 0u64;
    src.set_callbacks(
        gst_app::AppSrcCallbacks::builder()
            .need_data(move |src, _| {
                if next == frames {
                    let _ = src.end_of_stream();
                    return;
                }
                let frame = next;
                next += 1;
                let label = labels.label(frame as i64);
                let beep = if frame == 0 {
                    label.frames == 0
                } else {
                    label.seconds != labels.label(frame as i64 - 1).seconds
                };
                let (first, end) = (sample_of(frame), sample_of(frame + 1));
                let samples: Vec<u8> = (0..end - first)
                    .flat_map(|n| {
                        let value = if beep {
                            let phase =
                                2.0 * std::f64::consts::PI * 1000.0 * n as f64 / RATE as f64;
                            (phase.sin() * 0.5 * f64::from(i16::MAX)) as i16
                        } else {
                            0
                        };
                        value.to_le_bytes()
                    })
                    .collect();
                let mut buffer = gst::Buffer::from_mut_slice(samples);
                if let Some(b) = buffer.get_mut() {
                    b.set_pts(gst::ClockTime::from_nseconds(first * 1_000_000_000 / RATE));
                    b.set_duration(gst::ClockTime::from_nseconds(
                        (end - first) * 1_000_000_000 / RATE,
                    ));
                }
                let _ = src.push_buffer(buffer);
            })
            .build(),
    );
    Ok(src)
}

fn paint_frame_code(video: &mut gst_video::VideoFrameRef<&mut gst::BufferRef>, frame: u32) {
    let (width, height) = (video.width() as usize, video.height() as usize);
    let strides = video.plane_stride().to_vec();
    if let Ok(luma) = video.plane_data_mut(0) {
        let layout = PlaneLayout {
            width,
            height,
            stride: strides[0] as usize,
        };
        framecode::paint(frame, luma, layout);
    }
    for plane in 1..3 {
        if let Ok(chroma) = video.plane_data_mut(plane) {
            let layout = PlaneLayout {
                width: width / 2,
                height: height / 2,
                stride: strides[plane as usize] as usize,
            };
            framecode::neutralize_chroma(chroma, layout);
        }
    }
}

/// Plays a pipeline until end of stream, turning a bus error into an error.
/// A `timecodestamper` that labels frames from `start`, one per frame,
/// whatever the buffers carried: `qtmux` writes the labels as the file's
/// timecode track.
pub(crate) fn timecode_stamper(
    start: Timecode,
    fps: gst::Fraction,
) -> Result<gst::Element, MediaError> {
    let stamper = super::element("timecodestamper")?;
    stamper.set_property_from_str("set", "always");
    stamper.set_property_from_str("source", "internal");
    stamper.set_property("drop-frame", start.drop_frame);
    let first = gst_video::VideoTimeCode::new(
        fps,
        None,
        if start.drop_frame {
            gst_video::VideoTimeCodeFlags::DROP_FRAME
        } else {
            gst_video::VideoTimeCodeFlags::empty()
        },
        u32::from(start.hours),
        u32::from(start.minutes),
        u32::from(start.seconds),
        u32::from(start.frames),
        0,
    );
    stamper.set_property("set-internal-timecode", &first);
    Ok(stamper)
}

pub(crate) fn run_to_eos(pipeline: &gst::Pipeline) -> Result<(), MediaError> {
    let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| fail(&e))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| fail(&"pipeline without a bus"))?;
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(err) => {
                result = Err(MediaError::Gstreamer(format!(
                    "{} ({})",
                    err.error(),
                    err.debug().map(|d| d.to_string()).unwrap_or_default()
                )));
                break;
            }
            _ => {}
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    result
}
