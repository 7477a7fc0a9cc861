//! Media on disk: the demo clip that `make demo` generates, probing, and
//! refusing what cannot be reviewed.

use std::path::{Path, PathBuf};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use syncreel::framecode::{self, PlaneLayout};
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::media::probe::probe;
use syncreel::media::MediaError;
use syncreel::timecode::FrameRate;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("syncreel-media-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn small_clip(dir: &Path) -> (PathBuf, DemoClipSpec) {
    let spec = DemoClipSpec {
        width: 640,
        height: 360,
        frames: 60,
        ..DemoClipSpec::default()
    };
    let path = dir.join("demo.mov");
    demo_clip::ensure(&path, &spec).expect("the demo clip is generated");
    (path, spec)
}

/// Decodes every frame of a file and reads its frame code.
fn decoded_frame_codes(path: &Path) -> Vec<Option<u32>> {
    syncreel::media::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 ! appsink name=out sync=false",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let mut codes = Vec::new();
    while let Ok(sample) = sink.pull_sample() {
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(sample.buffer().unwrap(), &info)
                .unwrap();
        let layout = PlaneLayout {
            width: info.width() as usize,
            height: info.height() as usize,
            stride: info.stride()[0] as usize,
        };
        codes.push(framecode::read(frame.plane_data(0).unwrap(), layout));
    }
    pipeline.set_state(gst::State::Null).unwrap();
    codes
}

#[test]
fn the_demo_clip_carries_its_frame_numbers_timecode_and_audio() {
    let dir = scratch("demo");
    let (path, spec) = small_clip(&dir);

    let info = probe(&path).unwrap();
    assert_eq!(info.rate, FrameRate::FPS_23_976);
    assert_eq!(info.duration_frames, i64::from(spec.frames));
    assert_eq!((info.width, info.height), (640, 360));
    assert!(info.has_audio);
    assert_eq!(info.video_codec, "video/x-h264");
    assert_eq!(info.timecode.start().to_string(), "01:00:00:00");

    let codes = decoded_frame_codes(&path);
    let expected: Vec<Option<u32>> = (0..spec.frames).map(Some).collect();
    assert_eq!(
        codes, expected,
        "every decoded frame reads back its own number"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_drop_frame_clip_reports_its_drop_frame_start() {
    let dir = scratch("df");
    let spec = DemoClipSpec {
        width: 320,
        height: 180,
        frames: 12,
        rate: FrameRate::FPS_29_97,
        start: "00:59:59;28".parse().unwrap(),
        ..DemoClipSpec::default()
    };
    let path = dir.join("df.mov");
    demo_clip::generate(&path, &spec).unwrap();
    let info = probe(&path).unwrap();
    assert_eq!(info.rate, FrameRate::FPS_29_97);
    assert!(info.timecode.drop_frame());
    assert_eq!(info.timecode.start().to_string(), "00:59:59;28");
    // Two frames later the label crosses the hour, where no label is dropped.
    assert_eq!(info.timecode.label(2).to_string(), "01:00:00;00");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ensure_keeps_an_existing_clip() {
    let dir = scratch("ensure");
    let (path, spec) = small_clip(&dir);
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    demo_clip::ensure(&path, &spec).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_non_media_and_corrupt_files_are_refused_with_the_reason() {
    let dir = scratch("bad");
    assert!(matches!(
        probe(&dir.join("nope.mov")),
        Err(MediaError::Missing(_))
    ));

    let text = dir.join("notes.mov");
    std::fs::write(&text, "these are notes, not a movie\n".repeat(100)).unwrap();
    let err = probe(&text).unwrap_err();
    assert!(matches!(err, MediaError::NotMedia { .. }), "{err:?}");
    assert!(err.to_string().contains("not a media file"), "{err}");

    let (good, _) = small_clip(&dir);
    let bytes = std::fs::read(&good).unwrap();
    let corrupt = dir.join("corrupt.mov");
    std::fs::write(&corrupt, &bytes[..bytes.len() / 50]).unwrap();
    let err = probe(&corrupt).unwrap_err();
    assert!(
        matches!(err, MediaError::NotMedia { .. } | MediaError::NoVideo(_)),
        "a truncated file is refused, got {err:?}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
