//! Stills of noted frames, for the HTML report: the exact frame, decoded
//! by the same decoder the player uses (with the session's watermark, if
//! it has one, drawn as the stream draws it), with that frame's drawings
//! painted on, encoded as JPEG.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::player::{bus_error, Decoder};
use super::watermark::Watermark;
use super::{MediaError, MediaInfo};
use crate::drawing::Shape;

/// One frame as a JPEG.
#[derive(Debug, Clone)]
pub struct Still {
    pub frame: i64,
    pub width: u32,
    pub height: u32,
    pub jpeg: Vec<u8>,
}

/// The size stills are made at for a source of `source` (w, h): `width`
/// wide (rounded to a multiple of 4, which keeps RGB rows unpadded) and
/// the height that keeps the picture's shape, even.
pub fn still_size(source: (u32, u32), width: u32) -> (u32, u32) {
    let width = (width.max(16) / 4) * 4;
    let height =
        (u64::from(width) * u64::from(source.1.max(1)) / u64::from(source.0.max(1))) as u32;
    (width, (height.max(2) / 2) * 2)
}

/// Grabs each of `frames` (any order; each once) at `width` wide with
/// `watermark` burned in, paints `shapes_on(frame)` over it, and encodes
/// it. `progress(done, total)` is called after each still. Blocking: run
/// it off the async runtime.
pub fn grab(
    media: &MediaInfo,
    frames: &[i64],
    width: u32,
    watermark: Option<&Watermark>,
    shapes_on: impl Fn(i64) -> Vec<Shape>,
    mut progress: impl FnMut(usize, usize),
) -> Result<Vec<Still>, MediaError> {
    gst::init().map_err(|e| MediaError::Gstreamer(e.to_string()))?;
    let (width, height) = still_size((media.width, media.height), width);
    let mut wanted: Vec<i64> = frames.to_vec();
    // In order, so that the decoder mostly reads forward.
    wanted.sort_unstable();
    wanted.dedup();
    let timeline = crate::clock::Timeline {
        rate: media.rate,
        duration: media.duration_frames,
    };
    let mut decoder = Decoder::open_as(
        media,
        width,
        height,
        &[gst_video::VideoFormat::Rgb],
        watermark,
    )?;
    let encoder = JpegEncoder::open(width, height)?;
    let mut stills = Vec::with_capacity(wanted.len());
    let result = (|| {
        for (done, &frame) in wanted.iter().enumerate() {
            let frame = frame.clamp(0, timeline.last_frame());
            let (picture, _) = decoder.frame(frame, &timeline)?;
            let map = picture
                .buffer
                .map_readable()
                .map_err(|e| MediaError::Gstreamer(e.to_string()))?;
            let mut rgb = map.as_slice().to_vec();
            drop(map);
            rgb.truncate((width * height * 3) as usize);
            for shape in shapes_on(frame) {
                shape.paint(&mut rgb, width as usize, height as usize);
            }
            stills.push(Still {
                frame,
                width,
                height,
                jpeg: encoder.encode(rgb)?,
            });
            progress(done + 1, wanted.len());
        }
        Ok(())
    })();
    decoder.close();
    encoder.close();
    result.map(|()| stills)
}

/// The width stills are made at in reports.
pub const REPORT_STILL_WIDTH: u32 = 960;

/// The HTML report of `review`, with a still of each noted frame grabbed
/// from its media under `media_root`. When the media cannot be read the
/// report is written without stills, and the second value says why.
pub fn html_report(
    review: &crate::export::Review,
    media_root: &std::path::Path,
    progress: impl FnMut(usize, usize),
) -> Result<(String, Option<String>), crate::timecode::TimecodeError> {
    let stills = match stills_for(review, media_root, progress) {
        Ok(stills) => stills,
        Err(why) => return Ok((crate::export::html(review, &Default::default())?, Some(why))),
    };
    let by_frame = stills.into_iter().map(|s| (s.frame, s.jpeg)).collect();
    Ok((crate::export::html(review, &by_frame)?, None))
}

fn stills_for(
    review: &crate::export::Review,
    media_root: &std::path::Path,
    progress: impl FnMut(usize, usize),
) -> Result<Vec<Still>, String> {
    let Some(requested) = &review.session.media else {
        return Err("the session has no media".into());
    };
    let path = super::resolve_in_root(media_root, std::path::Path::new(requested))
        .map_err(|e| e.naming(std::path::Path::new(requested)).to_string())?;
    if let Some(version) = &review.version {
        let (checksum, _) = super::checksum(&path).map_err(|e| e.to_string())?;
        if checksum != version.checksum {
            return Err(format!(
                "{requested} has changed since it was recorded as {} v{}",
                version.item, version.number
            ));
        }
    }
    let info = super::probe::probe(&path)
        .map_err(|e| e.naming(std::path::Path::new(requested)).to_string())?;
    let frames = crate::export::still_frames(review);
    let shapes_on = |frame: i64| {
        review
            .drawings
            .iter()
            .filter(|d| d.erased.is_none() && d.drawing.frame == frame)
            .map(|d| d.drawing.shape.clone())
            .collect()
    };
    // Checked when the session was made; a record edited by hand into
    // something unburnable gets no stills rather than unmarked ones.
    let watermark = super::watermark::burnable(review.session.watermark.as_deref())
        .map_err(|e| e.to_string())?;
    grab(
        &info,
        &frames,
        REPORT_STILL_WIDTH,
        watermark.as_ref(),
        shapes_on,
        progress,
    )
    .map_err(|e| e.to_string())
}

/// `appsrc ! jpegenc ! appsink`, one picture in, one JPEG out.
struct JpegEncoder {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
}

impl JpegEncoder {
    fn open(width: u32, height: u32) -> Result<JpegEncoder, MediaError> {
        let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
        let caps = gst_video::VideoCapsBuilder::new()
            .format(gst_video::VideoFormat::Rgb)
            .width(width as i32)
            .height(height as i32)
            .framerate(gst::Fraction::new(0, 1))
            .build();
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Time)
            .build();
        let convert = super::element("videoconvert")?;
        let encode = super::element("jpegenc")?;
        encode.set_property("quality", 88i32);
        let sink = gst_app::AppSink::builder().sync(false).build();
        let pipeline = gst::Pipeline::new();
        pipeline
            .add_many([src.upcast_ref(), &convert, &encode, sink.upcast_ref()])
            .map_err(|e| fail(&e))?;
        gst::Element::link_many([src.upcast_ref(), &convert, &encode, sink.upcast_ref()])
            .map_err(|e| fail(&e))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| fail(&e))?;
        Ok(JpegEncoder {
            pipeline,
            src,
            sink,
        })
    }

    fn encode(&self, rgb: Vec<u8>) -> Result<Vec<u8>, MediaError> {
        self.src
            .push_buffer(gst::Buffer::from_mut_slice(rgb))
            .map_err(|e| {
                MediaError::Gstreamer(format!("the JPEG encoder refused a picture: {e}"))
            })?;
        let sample = self
            .sink
            .try_pull_sample(gst::ClockTime::from_seconds(10))
            .ok_or_else(|| {
                MediaError::Gstreamer(
                    bus_error(&self.pipeline).unwrap_or_else(|| "no JPEG came out".into()),
                )
            })?;
        let buffer = sample
            .buffer()
            .ok_or_else(|| MediaError::Gstreamer("empty JPEG sample".into()))?;
        let map = buffer
            .map_readable()
            .map_err(|e| MediaError::Gstreamer(e.to_string()))?;
        Ok(map.as_slice().to_vec())
    }

    fn close(&self) {
        let _ = self.src.end_of_stream();
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stills_keep_the_pictures_shape_with_unpadded_rows() {
        assert_eq!(still_size((1920, 1080), 640), (640, 360));
        assert_eq!(still_size((1920, 1080), 642), (640, 360));
        assert_eq!(still_size((720, 576), 640), (640, 512));
        let (w, h) = still_size((2048, 858), 1000);
        assert_eq!((w % 4, h % 2), (0, 0));
    }
}
