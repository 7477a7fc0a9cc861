//! Decodes Opus packets back to samples, the way a viewer would hear them.

#![allow(dead_code)]

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

pub struct OpusReader {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
}

impl OpusReader {
    pub fn new() -> OpusReader {
        syncreel::media::init().unwrap();
        // What rtpopusdepay would announce: no stream header, so the
        // decoder takes the layout from the caps.
        let pipeline = gst::parse::launch(
            "appsrc name=in format=time caps=audio/x-opus,channel-mapping-family=0,channels=2,rate=48000 \
             ! opusdec ! audioconvert ! audio/x-raw,format=S16LE,channels=1,rate=48000 \
             ! appsink name=out sync=false",
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
        OpusReader {
            pipeline,
            src,
            sink,
        }
    }

    /// Decodes one packet to mono samples.
    pub fn decode(&mut self, packet: &[u8], pts_micros: u64) -> Vec<i16> {
        let mut buffer = gst::Buffer::from_slice(packet.to_vec());
        buffer
            .get_mut()
            .unwrap()
            .set_pts(gst::ClockTime::from_useconds(pts_micros));
        self.src.push_buffer(buffer).unwrap();
        let sample = self
            .sink
            .try_pull_sample(gst::ClockTime::from_seconds(5))
            .expect("opusdec gives one buffer per packet");
        let map = sample.buffer().unwrap().map_readable().unwrap();
        map.as_slice()
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect()
    }
}

impl Drop for OpusReader {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}
