//! Review proxies: a source too heavy to decode in real time (UHD, ProRes,
//! DNxHR, HEVC 10-bit…) is transcoded once into H.264 at the stream's
//! size, every frame a short GOP from a keyframe, with the source's
//! frames, rate and start timecode. The live player decodes the proxy;
//! exact-frame stills and exports still come from the source.
//!
//! A proxy is checked before it is kept: probed, it must have the
//! source's frame count, rate and start timecode, or it is thrown away
//! and the transcode reported as failed. Frame N of the proxy is frame N
//! of the source because every decoded frame is encoded, in order, and
//! nothing in between drops or repeats one (no `videorate`).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;

use super::{element, MediaError, MediaInfo};

/// How proxies are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxySpec {
    /// The largest picture: a source is scaled down to fit (never up),
    /// keeping its shape.
    pub max_width: u32,
    pub max_height: u32,
    /// Frames between keyframes: a seek decodes at most this many.
    pub gop: u32,
    pub bitrate_kbps: u32,
}

/// The picture size of `source`'s proxy: within `spec`'s box, the
/// source's shape, even numbers (4:2:0), never larger than the source.
pub fn proxy_size(source: (u32, u32), spec: &ProxySpec) -> (u32, u32) {
    let (w, h) = (u64::from(source.0.max(2)), u64::from(source.1.max(2)));
    let (bw, bh) = (u64::from(spec.max_width), u64::from(spec.max_height));
    // The smaller of the two scale factors, as a fraction: num/den.
    let (num, den) = if w * bh <= h * bw { (bh, h) } else { (bw, w) };
    let (num, den) = if num >= den { (1, 1) } else { (num, den) };
    let even = |x: u64| ((x / 2).max(1) * 2) as u32;
    (even(w * num / den), even(h * num / den))
}

/// Makes `out` from `source`, writing its progress in ‰ of the source's
/// length to `progress` as it goes. Blocking; runs at the speed the
/// machine allows. On any failure no file is left at `out`.
pub fn make(
    source: &MediaInfo,
    out: &Path,
    spec: &ProxySpec,
    progress: &AtomicU32,
) -> Result<MediaInfo, MediaError> {
    super::init()?;
    let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
    if let Some(dir) = out.parent() {
        std::fs::create_dir_all(dir).map_err(|e| fail(&e))?;
    }
    let partial = out.with_extension(format!("{}.partial.mov", std::process::id()));
    let made = transcode(source, &partial, spec, progress).and_then(|()| {
        let proxy = super::probe::probe(&partial)?;
        check(source, &proxy)?;
        Ok(proxy)
    });
    match made {
        Ok(mut proxy) => {
            std::fs::rename(&partial, out).map_err(|e| fail(&e))?;
            proxy.path = out.to_owned();
            progress.store(1000, Relaxed);
            Ok(proxy)
        }
        Err(err) => {
            let _ = std::fs::remove_file(&partial);
            Err(err)
        }
    }
}

/// The proxy must be the source's frames: the same count, rate and first
/// label, and (when the source states one) the same colour description.
fn check(source: &MediaInfo, proxy: &MediaInfo) -> Result<(), MediaError> {
    let (a, b) = (&source.colour, &proxy.colour);
    let same_colour = !a.is_known()
        || (a.primaries, a.transfer, a.matrix, a.range)
            == (b.primaries, b.transfer, b.matrix, b.range);
    if !same_colour {
        return Err(MediaError::Gstreamer(format!(
            "the proxy states colour {} ({}/{}/{}/{}), the source {} ({}/{}/{}/{})",
            b.colorimetry,
            b.primaries,
            b.transfer,
            b.matrix,
            b.range,
            a.colorimetry,
            a.primaries,
            a.transfer,
            a.matrix,
            a.range
        )));
    }
    let same = proxy.duration_frames == source.duration_frames
        && proxy.rate == source.rate
        && proxy.timecode == source.timecode;
    if same {
        return Ok(());
    }
    Err(MediaError::Gstreamer(format!(
        "the proxy came out as {} frames at {} from {}, the source is {} frames at {} from {}",
        proxy.duration_frames,
        proxy.rate,
        proxy.timecode.start(),
        source.duration_frames,
        source.rate,
        source.timecode.start()
    )))
}

fn transcode(
    source: &MediaInfo,
    out: &Path,
    spec: &ProxySpec,
    progress: &AtomicU32,
) -> Result<(), MediaError> {
    let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
    let (width, height) = proxy_size((source.width, source.height), spec);
    let rate = source.rate;
    let fps = gst::Fraction::new(rate.num() as i32, rate.den() as i32);

    let pipeline = gst::Pipeline::new();
    let src = element("filesrc")?;
    src.set_property("location", source.path.to_string_lossy().to_string());
    let decode = element("decodebin")?;
    let convert = element("videoconvert")?;
    let scale = element("videoscale")?;
    let raw = element("capsfilter")?;
    let mut caps = gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::I420)
        .width(width as i32)
        .height(height as i32)
        .pixel_aspect_ratio(gst::Fraction::new(1, 1))
        .build();
    // The source's colour description, unchanged: the converter keeps the
    // pixels in it, and the encoder states it in the stream.
    if source.colour.is_known() {
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.set("colorimetry", source.colour.colorimetry.as_str());
        }
    }
    raw.set_property("caps", caps);
    // Labels counted from the source's first, one per frame: the proxy's
    // timecode track says what the source's does.
    let stamper = super::demo_clip::timecode_stamper(source.timecode.start(), fps)?;
    let encoder = element("x264enc")?;
    encoder.set_property("key-int-max", spec.gop.max(1));
    encoder.set_property("bframes", 0u32);
    encoder.set_property("bitrate", spec.bitrate_kbps.max(100));
    encoder.set_property_from_str("speed-preset", "veryfast");
    let parse = element("h264parse")?;
    let vqueue = element("queue")?;
    let mux = element("qtmux")?;
    let sink = element("filesink")?;
    sink.set_property("location", out.to_string_lossy().to_string());
    pipeline
        .add_many([
            &src, &decode, &convert, &scale, &raw, &stamper, &encoder, &parse, &vqueue, &mux, &sink,
        ])
        .map_err(|e| fail(&e))?;
    src.link(&decode).map_err(|e| fail(&e))?;
    gst::Element::link_many([
        &convert, &scale, &raw, &stamper, &encoder, &parse, &vqueue, &mux, &sink,
    ])
    .map_err(|e| fail(&e))?;

    // The first video stream goes to the encoder, the first sound to the
    // muxer as 48 kHz PCM; anything else is decoded into nothing, since
    // an unlinked stream would stop the pipeline.
    let pipeline_weak = pipeline.downgrade();
    let video_in = convert
        .static_pad("sink")
        .ok_or_else(|| fail(&"videoconvert has no sink"))?;
    let mux_weak = mux.downgrade();
    let sound_taken = std::sync::atomic::AtomicBool::new(false);
    decode.connect_pad_added(move |_, pad| {
        let Some(pipeline) = pipeline_weak.upgrade() else {
            return;
        };
        let kind = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
            .unwrap_or_default();
        if kind.starts_with("video/") && !video_in.is_linked() {
            let _ = pad.link(&video_in);
            return;
        }
        if kind.starts_with("audio/") && !sound_taken.swap(true, Relaxed) {
            if let Some(mux) = mux_weak.upgrade() {
                if link_sound(&pipeline, pad, &mux).is_ok() {
                    return;
                }
            }
        }
        if let Ok(drop) = element("fakesink") {
            drop.set_property("sync", false);
            if pipeline.add(&drop).is_ok() {
                let _ = drop.sync_state_with_parent();
                if let Some(sink) = drop.static_pad("sink") {
                    let _ = pad.link(&sink);
                }
            }
        }
    });

    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| fail(&e))?;
    let bus = pipeline
        .bus()
        .ok_or_else(|| fail(&"pipeline without a bus"))?;
    let length = gst::ClockTime::from_nseconds(
        u64::try_from(source.duration_frames.max(1))
            .unwrap_or(1)
            .saturating_mul(1_000_000_000)
            .saturating_mul(u64::from(rate.den()))
            / u64::from(rate.num().max(1)),
    );
    let mut result = Ok(());
    loop {
        match bus.timed_pop(gst::ClockTime::from_mseconds(250)) {
            Some(msg) => match msg.view() {
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
            },
            None => {
                if let Some(at) = pipeline.query_position::<gst::ClockTime>() {
                    let permille = at.nseconds().saturating_mul(1000) / length.nseconds().max(1);
                    // The last ‰ is the check, after the transcode.
                    progress.store(permille.min(999) as u32, Relaxed);
                }
            }
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    result
}

/// Links a decoded sound stream into the muxer as 48 kHz 16-bit PCM.
fn link_sound(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    mux: &gst::Element,
) -> Result<(), MediaError> {
    let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
    let convert = element("audioconvert")?;
    let resample = element("audioresample")?;
    let caps = element("capsfilter")?;
    caps.set_property(
        "caps",
        gst::Caps::builder("audio/x-raw")
            .field("format", "S16LE")
            .field("rate", 48_000i32)
            .build(),
    );
    let queue = element("queue")?;
    pipeline
        .add_many([&convert, &resample, &caps, &queue])
        .map_err(|e| fail(&e))?;
    gst::Element::link_many([&convert, &resample, &caps, &queue, mux]).map_err(|e| fail(&e))?;
    for e in [&convert, &resample, &caps, &queue] {
        e.sync_state_with_parent().map_err(|e| fail(&e))?;
    }
    let sink = convert
        .static_pad("sink")
        .ok_or_else(|| fail(&"audioconvert has no sink"))?;
    pad.link(&sink).map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const STREAM: ProxySpec = ProxySpec {
        max_width: 1280,
        max_height: 720,
        gop: 12,
        bitrate_kbps: 8000,
    };

    #[test]
    fn a_proxy_fits_the_stream_keeps_the_shape_and_never_grows() {
        assert_eq!(proxy_size((3840, 2160), &STREAM), (1280, 720));
        // Scope: the width decides.
        assert_eq!(proxy_size((4096, 1716), &STREAM), (1280, 536));
        // Portrait: the height decides.
        assert_eq!(proxy_size((2160, 3840), &STREAM), (404, 720));
        assert_eq!(proxy_size((640, 360), &STREAM), (640, 360), "never up");
        assert_eq!(proxy_size((641, 361), &STREAM), (640, 360), "even");
        assert_eq!(proxy_size((0, 0), &STREAM), (2, 2));
    }
}
