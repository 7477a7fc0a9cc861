//! Decodes VP8 frames back to pictures and reads their frame codes, the
//! way a viewer would see them.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use syncreel::framecode::{self, PlaneLayout};

pub struct Vp8Reader {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
}

impl Vp8Reader {
    pub fn new() -> Vp8Reader {
        syncreel::media::init().unwrap();
        let pipeline = gst::parse::launch(
            "appsrc name=in format=time caps=video/x-vp8 ! vp8dec ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false",
        )
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let src = pipeline
            .by_name("in")
            .unwrap()
            .downcast::<gst_app::AppSrc>()
            .unwrap();
        let sink = pipeline
            .by_name("out")
            .unwrap()
            .downcast::<gst_app::AppSink>()
            .unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        Vp8Reader {
            pipeline,
            src,
            sink,
        }
    }

    /// Decodes one encoded frame and reads its frame code.
    #[allow(dead_code)] // Tests that go through `viewer.rs` read `Seen` instead.
    pub fn read(&mut self, data: &[u8], pts_micros: u64) -> Option<u32> {
        let luma = self.picture(data, pts_micros)?;
        framecode::read(&luma.plane, luma.layout)
    }

    /// Decodes one encoded frame to its luma plane, as a viewer sees it.
    pub fn picture(&mut self, data: &[u8], pts_micros: u64) -> Option<Luma> {
        let mut buffer = gst::Buffer::from_slice(data.to_vec());
        buffer
            .get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_useconds(pts_micros));
        self.src.push_buffer(buffer).unwrap();
        let sample = self.sink.try_pull_sample(gst::ClockTime::from_seconds(5))?;
        let info = gst_video::VideoInfo::from_caps(sample.caps()?).ok()?;
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer()?, &info).ok()?;
        let layout = PlaneLayout {
            width: info.width() as usize,
            height: info.height() as usize,
            stride: info.stride()[0] as usize,
        };
        Some(Luma {
            plane: frame.plane_data(0).ok()?.to_vec(),
            layout,
        })
    }
}

/// A decoded picture's luma plane.
pub struct Luma {
    pub plane: Vec<u8>,
    pub layout: PlaneLayout,
}

impl Luma {
    /// The mean absolute difference from `other` over rows `rows`, the
    /// whole width: where two pictures of one frame part.
    #[allow(dead_code)] // Not every test that decodes compares pictures.
    pub fn difference(&self, other: &Luma, rows: std::ops::Range<usize>) -> f64 {
        let (w, count) = (self.layout.width, rows.len() * self.layout.width);
        let row = |l: &'_ Luma, r: usize| {
            let start = r * l.layout.stride;
            l.plane[start..start + w].to_vec()
        };
        let sum: u64 = rows
            .flat_map(|r| {
                row(self, r)
                    .into_iter()
                    .zip(row(other, r))
                    .map(|(a, b)| u64::from(a.abs_diff(b)))
            })
            .sum();
        sum as f64 / count.max(1) as f64
    }

    /// The share of pixels in rows `rows` that are brighter than in
    /// `other` by more than `by`: where something light was drawn over
    /// one of two pictures of a frame. Coding noise moves a pixel by a
    /// few levels either way; a light mark lifts its strokes by far more.
    #[allow(dead_code)] // Not every test that decodes compares pictures.
    pub fn share_brighter(&self, other: &Luma, rows: std::ops::Range<usize>, by: u8) -> f64 {
        let w = self.layout.width;
        let count = rows.len() * w;
        let lifted = rows
            .flat_map(|r| {
                let (a, b) = (r * self.layout.stride, r * other.layout.stride);
                self.plane[a..a + w].iter().zip(&other.plane[b..b + w])
            })
            .filter(|(a, b)| a.saturating_sub(**b) > by)
            .count();
        lifted as f64 / count.max(1) as f64
    }
}

impl Drop for Vp8Reader {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
