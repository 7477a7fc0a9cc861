//! Learns what a media file holds: rate, length, size, audio and start
//! timecode. A file GStreamer cannot read is refused with the reason.

use std::path::Path;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_pbutils as gst_pbutils;
use gstreamer_pbutils::prelude::*;
use gstreamer_video as gst_video;

use super::{MediaError, MediaInfo};
use crate::timecode::{FrameRate, Timecode, TimecodeFormat};

/// Probes a file that [`super::resolve_in_root`] has already vetted.
pub fn probe(path: &Path) -> Result<MediaInfo, MediaError> {
    super::init()?;
    if !path.is_file() {
        return Err(MediaError::Missing(path.to_owned()));
    }
    let not_media = |reason: String| MediaError::NotMedia {
        path: path.to_owned(),
        reason,
    };
    let uri = gst::glib::filename_to_uri(path, None).map_err(|e| not_media(e.to_string()))?;
    let discoverer = gst_pbutils::Discoverer::new(gst::ClockTime::from_seconds(15))
        .map_err(|e| MediaError::Gstreamer(e.to_string()))?;
    let info = discoverer
        .discover_uri(&uri)
        .map_err(|e| not_media(e.to_string()))?;
    let video = info
        .video_streams()
        .into_iter()
        .next()
        .ok_or_else(|| MediaError::NoVideo(path.to_owned()))?;
    let fps = video.framerate();
    let rate = u32::try_from(fps.numer())
        .ok()
        .zip(u32::try_from(fps.denom()).ok())
        .and_then(|(n, d)| FrameRate::new(n, d).ok())
        .ok_or_else(|| MediaError::UnsupportedRate {
            path: path.to_owned(),
            rate: format!("{}/{}", fps.numer(), fps.denom()),
        })?;
    let duration_ns = info
        .duration()
        .map(|d| d.nseconds())
        .ok_or_else(|| not_media("its duration is unknown".into()))?;
    // Round to the nearest frame: containers state durations in their own
    // timescale, which rarely divides a 1001-based frame exactly.
    let frames_num = u128::from(duration_ns) * u128::from(rate.num());
    let frames_den = 1_000_000_000u128 * u128::from(rate.den());
    let duration_frames = ((frames_num + frames_den / 2) / frames_den) as i64;
    if duration_frames < 1 {
        return Err(not_media("it has no video frames".into()));
    }
    let video_codec = video
        .caps()
        .and_then(|caps| caps.structure(0).map(|s| s.name().to_string()))
        .unwrap_or_default();
    let start = match super::mov_timecode::read(path) {
        Ok(Some(tmcd)) if u32::from(tmcd.timebase) == rate.timebase() => {
            let counting = TimecodeFormat::new(rate, tmcd.drop_frame && rate.allows_drop_frame())
                .map_err(|e| not_media(e.to_string()))?;
            Some(counting.label(i64::from(tmcd.frame_count)))
        }
        _ => first_timecode(path)?,
    };
    let drop_frame = start.is_some_and(|tc| tc.drop_frame) && rate.allows_drop_frame();
    let mut timecode =
        TimecodeFormat::new(rate, drop_frame).map_err(|e| not_media(e.to_string()))?;
    if let Some(start) = start {
        timecode = timecode
            .with_start(start)
            .map_err(|e| not_media(e.to_string()))?;
    }
    Ok(MediaInfo {
        path: path.to_owned(),
        rate,
        duration_frames,
        width: video.width(),
        height: video.height(),
        has_audio: !info.audio_streams().is_empty(),
        timecode,
        video_codec,
        container: container_name(&info),
        colour: super::colour::Colour::from_caps(video.caps().as_deref()),
    })
}

/// The short name of the file's outermost container.
fn container_name(info: &gst_pbutils::DiscovererInfo) -> String {
    // The top of the stream topology is the outermost container, if any.
    let Some(caps) = info
        .stream_info()
        .and_then(|s| s.downcast::<gst_pbutils::DiscovererContainerInfo>().ok())
        .and_then(|c| c.caps())
    else {
        return String::new();
    };
    let Some(s) = caps.structure(0) else {
        return String::new();
    };
    let variant = s.get::<&str>("variant").unwrap_or_default();
    match s.name().as_str() {
        "video/quicktime" if variant == "iso" || variant == "iso-fragmented" => "mp4".into(),
        "video/quicktime" => "mov".into(),
        "application/mxf" => "mxf".into(),
        "video/x-matroska" => "mkv".into(),
        "video/webm" => "webm".into(),
        "video/x-msvideo" => "avi".into(),
        "video/mpegts" => "mpegts".into(),
        other => other.to_string(),
    }
}

/// The timecode a demuxer attaches to the first video buffer (MXF, and
/// containers whose demuxer reads timecode tracks). Parsing without
/// decoding keeps this cheap.
fn first_timecode(path: &Path) -> Result<Option<Timecode>, MediaError> {
    let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
    let pipeline = gst::Pipeline::new();
    let src = gst::ElementFactory::make("filesrc")
        .property("location", path.to_string_lossy().to_string())
        .build()
        .map_err(|e| fail(&e))?;
    let parse = gst::ElementFactory::make("parsebin")
        .build()
        .map_err(|e| fail(&e))?;
    let sink = gst_app::AppSink::builder()
        .sync(false)
        .max_buffers(1)
        .build();
    pipeline
        .add_many([&src, &parse, sink.upcast_ref()])
        .map_err(|e| fail(&e))?;
    src.link(&parse).map_err(|e| fail(&e))?;
    let sink_pad = sink
        .static_pad("sink")
        .ok_or_else(|| fail(&"appsink without a pad"))?;
    parse.connect_pad_added(move |_, pad| {
        let is_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if is_video && !sink_pad.is_linked() {
            let _ = pad.link(&sink_pad);
        }
    });
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| fail(&e))?;
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(10));
    let _ = pipeline.set_state(gst::State::Null);
    let Some(buffer) = sample.as_ref().and_then(|s| s.buffer()) else {
        return Ok(None);
    };
    Ok(buffer.meta::<gst_video::VideoTimeCodeMeta>().map(|meta| {
        let tc = meta.tc();
        Timecode {
            hours: tc.hours() as u8,
            minutes: tc.minutes() as u8,
            seconds: tc.seconds() as u8,
            frames: tc.frames() as u16,
            drop_frame: tc
                .flags()
                .contains(gst_video::VideoTimeCodeFlags::DROP_FRAME),
        }
    }))
}
