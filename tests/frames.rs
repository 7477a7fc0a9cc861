//! Exact frames for a paused room, a step or a scrub: the frame itself,
//! lossless, at an address that never names another picture.

mod common;

use std::path::PathBuf;

use common::{request_with, CreatedSession, TestServer};
use gstreamer as gst;
use gstreamer::prelude::*;
use serde_json::{json, Value};
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::media::watermark::Watermark;

const FRAMES: i64 = 96;

/// A 1280×720 demo clip of four seconds, made once per test process.
fn media_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        let root = std::env::temp_dir().join(format!("syncreel-frames-{}", std::process::id()));
        let spec = DemoClipSpec {
            width: 1280,
            height: 720,
            frames: FRAMES as u32,
            ..DemoClipSpec::default()
        };
        demo_clip::ensure(&root.join("shot.mov"), &spec).unwrap();
        root
    })
    .clone()
}

async fn session(server: &TestServer) -> (CreatedSession, String) {
    let s = server
        .create_session_with(json!({"title": "Shot 060", "media": "shot.mov"}))
        .await;
    let checksum = s.body["version"]["checksum"].as_str().unwrap().to_string();
    (s, checksum)
}

struct Got {
    status: u16,
    headers: hyper::HeaderMap,
    body: bytes::Bytes,
}

async fn get(
    server: &TestServer,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
) -> Got {
    let (status, headers, body) =
        request_with(server.addr, "GET", path, token, headers, String::new()).await;
    Got {
        status,
        headers,
        body,
    }
}

fn error_code(got: &Got) -> String {
    let body: Value = serde_json::from_slice(&got.body).unwrap_or(Value::Null);
    body["error"]["code"].as_str().unwrap_or("").to_string()
}

/// Frame `frame` of `path` at `w`×`h` in RGB, decoded by a GStreamer
/// pipeline of the test's own (an accurate seek to the middle of the
/// frame, prerolled), with `watermark` drawn by a `textoverlay` set up as
/// the server sets up its own, as the reference a still is judged against.
fn reference_frame(
    path: &std::path::Path,
    frame: i64,
    w: usize,
    h: usize,
    watermark: Option<&Watermark>,
) -> Vec<u8> {
    gst::init().unwrap();
    let overlay = if watermark.is_some() {
        "textoverlay name=mark ! "
    } else {
        ""
    };
    let pipeline = gst::parse::launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,format=RGB,width={w},height={h},pixel-aspect-ratio=1/1 ! {overlay}appsink name=sink",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    if let Some(watermark) = watermark {
        watermark.configure(&pipeline.by_name("mark").unwrap());
    }
    let sink = pipeline
        .by_name("sink")
        .unwrap()
        .downcast::<gstreamer_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    let (ok, _, _) = pipeline.state(gst::ClockTime::from_seconds(10));
    ok.unwrap();
    // 24000/1001 fps: the middle of frame n is (2n + 1) × 1001 / 48000 s.
    let ns = (2 * frame as u64 + 1) * 1_000_000_000 * 1001 / 48_000;
    pipeline
        .seek_simple(
            gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE,
            gst::ClockTime::from_nseconds(ns),
        )
        .unwrap();
    let sample = sink
        .try_pull_preroll(gst::ClockTime::from_seconds(10))
        .expect("the reference frame prerolls");
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let stride = map.len() / h;
    let mut rgb = Vec::with_capacity(w * h * 3);
    for row in 0..h {
        rgb.extend_from_slice(&map[row * stride..row * stride + w * 3]);
    }
    drop(map);
    pipeline.set_state(gst::State::Null).unwrap();
    rgb
}

/// Peak signal-to-noise ratio in dB; `None` for identical pictures.
fn psnr(a: &[u8], b: &[u8]) -> Option<f64> {
    assert_eq!(a.len(), b.len());
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(x, y)| (i64::from(*x) - i64::from(*y)).pow(2) as u64)
        .sum();
    (sum > 0).then(|| {
        let mse = sum as f64 / a.len() as f64;
        10.0 * (255.0f64 * 255.0 / mse).log10()
    })
}

#[tokio::test]
async fn a_frame_is_the_exact_source_frame_lossless_at_the_stream_size_and_the_source_size() {
    let root = media_root();
    let server = TestServer::with_media(&root).await;
    let (s, checksum) = session(&server).await;
    for (width, height, frame) in [(640usize, 360usize, 41i64), (1280, 720, 77)] {
        let path = format!(
            "/api/sessions/{}/frames/{checksum}/{frame}?width={width}",
            s.id
        );
        let got = get(&server, &path, Some(&s.viewer), &[]).await;
        assert_eq!(got.status, 200, "{}", error_code(&got));
        assert_eq!(got.headers["content-type"], "image/png");
        assert_eq!(got.headers["x-frame"], frame.to_string().as_str());
        let (rgb, w, h) = common::decode_png(&got.body);
        assert_eq!((w, h), (width, height));
        assert_eq!(common::frame_code_rgb(&rgb, w, h), Some(frame as u32));
        let reference = reference_frame(&root.join("shot.mov"), frame, w, h, None);
        // Lossless: identical to GStreamer's own decode at that size
        // (the target is PSNR ≥ 48 dB; identical is better).
        let db = psnr(&rgb, &reference);
        assert!(db.is_none_or(|db| db >= 48.0), "PSNR {db:?} dB at {w}x{h}");
    }
    // Without a width: the source's own size.
    let path = format!("/api/sessions/{}/frames/{checksum}/5", s.id);
    let got = get(&server, &path, Some(&s.reviewer), &[]).await;
    let (rgb, w, h) = common::decode_png(&got.body);
    assert_eq!((w, h), (1280, 720));
    assert_eq!(common::frame_code_rgb(&rgb, w, h), Some(5));
    server.shutdown().await;
}

#[tokio::test]
async fn a_frame_is_an_immutable_address_and_a_second_ask_is_answered_from_memory() {
    let root = media_root();
    let server = TestServer::with_media(&root).await;
    let (s, checksum) = session(&server).await;
    let path = format!("/api/sessions/{}/frames/{checksum}/12?width=640", s.id);
    let first = get(&server, &path, Some(&s.viewer), &[]).await;
    assert_eq!(first.status, 200);
    let etag = first.headers["etag"].to_str().unwrap().to_string();
    assert_eq!(etag, format!("\"{checksum}-12-640\""));
    let cache = first.headers["cache-control"].to_str().unwrap();
    assert!(
        cache.contains("immutable") && cache.contains("max-age=31536000"),
        "{cache}"
    );
    assert!(
        cache.contains("private"),
        "a bearer decides who sees it: {cache}"
    );

    // The browser asks again with the tag: nothing to send.
    let again = get(&server, &path, Some(&s.viewer), &[("if-none-match", &etag)]).await;
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    // Still behind the link: a tag is no credential.
    let stranger = get(&server, &path, None, &[("if-none-match", &etag)]).await;
    assert_eq!(stranger.status, 401);

    // Asked again without the tag (another page): from the cache.
    let before = server.metric("syncreel_frame_cache_hits_total").await;
    let second = get(&server, &path, Some(&s.host), &[]).await;
    assert_eq!(second.body, first.body);
    assert_eq!(
        server.metric("syncreel_frame_cache_hits_total").await,
        before + 1
    );
    // A width that makes the same picture has the same address.
    let near = format!("/api/sessions/{}/frames/{checksum}/12?width=642", s.id);
    let got = get(&server, &near, Some(&s.viewer), &[]).await;
    assert_eq!(got.headers["etag"].to_str().unwrap(), etag);
    server.shutdown().await;
}

#[tokio::test]
async fn the_cache_keeps_its_byte_bound_under_a_burst_of_different_frames() {
    let root = media_root();
    let server = TestServer::start_with(move |c| {
        c.media.root = root;
        c.media.frame_cache_mib = 2;
    })
    .await;
    let (s, checksum) = session(&server).await;
    let mut served = 0usize;
    for frame in (0..FRAMES).step_by(7) {
        let path = format!(
            "/api/sessions/{}/frames/{checksum}/{frame}?width=1280",
            s.id
        );
        let got = get(&server, &path, Some(&s.viewer), &[]).await;
        assert_eq!(got.status, 200);
        let (rgb, w, h) = common::decode_png(&got.body);
        assert_eq!(common::frame_code_rgb(&rgb, w, h), Some(frame as u32));
        served += got.body.len();
        assert!(server.metric("syncreel_frame_cache_bytes").await <= 2 << 20);
    }
    assert!(
        served > 4 << 20,
        "the burst ({served} bytes) outgrew the bound"
    );
    let cached = server.metric("syncreel_frame_cache_frames").await;
    assert!((1..14).contains(&cached), "{cached} frames cached");
    assert_eq!(server.metric("syncreel_frame_cache_misses_total").await, 14);
    // One warm decoder served the whole burst.
    assert_eq!(server.metric("syncreel_frame_decoders").await, 1);
    server.shutdown().await;
}

#[tokio::test]
async fn an_idle_decoder_is_closed() {
    let root = media_root();
    let server = TestServer::start_with(move |c| {
        c.media.root = root;
        c.media.frame_decoder_idle_secs = 1;
    })
    .await;
    let (s, checksum) = session(&server).await;
    let path = format!("/api/sessions/{}/frames/{checksum}/3?width=640", s.id);
    assert_eq!(get(&server, &path, Some(&s.viewer), &[]).await.status, 200);
    assert_eq!(server.metric("syncreel_frame_decoders").await, 1);
    // The sweep runs every half idle period: bounded polling for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while server.metric("syncreel_frame_decoders").await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the idle decoder was never closed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // And the next ask opens one again.
    assert_eq!(get(&server, &path, Some(&s.viewer), &[]).await.status, 200);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_asks_for_frames_are_refused_with_typed_codes() {
    let root = media_root();
    let server = TestServer::with_media(&root).await;
    let (s, checksum) = session(&server).await;
    let base = format!("/api/sessions/{}/frames", s.id);
    let cases = [
        (
            format!("{base}/{checksum}/{FRAMES}"),
            Some(&s.viewer),
            400,
            "frame_out_of_range",
        ),
        (
            format!("{base}/{checksum}/-1"),
            Some(&s.viewer),
            400,
            "frame_out_of_range",
        ),
        (
            format!("{base}/{checksum}/forty"),
            Some(&s.viewer),
            400,
            "bad_request",
        ),
        (
            format!("{base}/{checksum}/1?width=10"),
            Some(&s.viewer),
            400,
            "bad_request",
        ),
        (
            format!("{base}/{checksum}/1?width=4000"),
            Some(&s.viewer),
            400,
            "bad_request",
        ),
        (
            format!("{base}/{checksum}/1?height=4"),
            Some(&s.viewer),
            400,
            "bad_request",
        ),
        (format!("{base}/abc/1"), Some(&s.viewer), 400, "bad_request"),
        (
            format!("{base}/{}/1", "0".repeat(64)),
            Some(&s.viewer),
            404,
            "unknown_version",
        ),
        (format!("{base}/{checksum}/1"), None, 401, "unauthorized"),
    ];
    for (path, token, status, code) in cases {
        let got = get(&server, &path, token.map(String::as_str), &[]).await;
        assert_eq!(
            (got.status, error_code(&got).as_str()),
            (status, code),
            "{path}"
        );
    }
    // Another session's link, and a session without media.
    let other = server.create_session().await;
    let got = get(
        &server,
        &format!("{base}/{checksum}/1"),
        Some(&other.viewer),
        &[],
    )
    .await;
    assert_eq!((got.status, error_code(&got).as_str()), (403, "forbidden"));
    let path = format!("/api/sessions/{}/frames/{checksum}/1", other.id);
    let got = get(&server, &path, Some(&other.viewer), &[]).await;
    assert_eq!(
        (got.status, error_code(&got).as_str()),
        (404, "unknown_version")
    );
    server.shutdown().await;
}

/// The share of pixels in rows `rows` of two RGB pictures that differ
/// clearly (by more than 32 in some channel): where a mark is drawn.
fn changed_share(a: &[u8], b: &[u8], w: usize, rows: std::ops::Range<usize>) -> f64 {
    let span = rows.start * w * 3..rows.end * w * 3;
    let (a, b) = (&a[span.clone()], &b[span]);
    let changed = a
        .chunks_exact(3)
        .zip(b.chunks_exact(3))
        .filter(|(p, q)| p.iter().zip(q.iter()).any(|(x, y)| x.abs_diff(*y) > 32))
        .count();
    changed as f64 / (a.len() / 3) as f64
}

#[tokio::test]
async fn a_watermarked_sessions_frame_carries_its_mark_under_its_own_tag_and_keeps_its_frame_code()
{
    let root = media_root();
    let server = TestServer::with_media(&root).await;
    let (plain, checksum) = session(&server).await;
    let marked = server
        .create_session_with(json!({
            "title": "Shot 060", "media": "shot.mov", "watermark": "CONFIDENTIAL – {title}"
        }))
        .await;
    let text = "CONFIDENTIAL – Shot 060";
    assert_eq!(marked.body["session"]["watermark"], text);
    assert!(plain.body["session"].get("watermark").is_none());
    let watermark = Watermark::new(text).unwrap().unwrap();

    let (frame, width, height) = (12i64, 640usize, 360usize);
    let path = |id: &str| format!("/api/sessions/{id}/frames/{checksum}/{frame}?width={width}");
    // The unmarked session first, so that its still sits in the cache
    // when the marked one asks for the same frame of the same version.
    let unmarked = get(&server, &path(&plain.id), Some(&plain.viewer), &[]).await;
    let got = get(&server, &path(&marked.id), Some(&marked.viewer), &[]).await;
    assert_eq!((unmarked.status, got.status), (200, 200));
    let plain_tag = unmarked.headers["etag"].to_str().unwrap();
    assert_eq!(plain_tag, format!("\"{checksum}-{frame}-{width}\""));
    let tag = got.headers["etag"].to_str().unwrap();
    assert_eq!(
        tag,
        format!("\"{checksum}-{frame}-{width}-w{}\"", watermark.tag())
    );
    // The unmarked tag is no way to the unmarked picture through the
    // marked session: it is not that session's tag, so the picture comes.
    let revalidated = get(
        &server,
        &path(&marked.id),
        Some(&marked.viewer),
        &[("if-none-match", plain_tag)],
    )
    .await;
    assert_eq!(revalidated.status, 200);
    assert_eq!(revalidated.body, got.body);

    let (rgb, w, h) = common::decode_png(&got.body);
    let (bare, _, _) = common::decode_png(&unmarked.body);
    assert_eq!((w, h), (width, height));
    // The mark is in the middle of the picture...
    let middle = changed_share(&rgb, &bare, w, h * 2 / 5..h * 3 / 5);
    assert!(
        middle > 0.05,
        "{:.1} % of the middle changed",
        middle * 100.0
    );
    // ...and clear of the frame code along the bottom, which reads right.
    assert_eq!(
        changed_share(&rgb, &bare, w, h - h / 16..h),
        0.0,
        "the frame code strip is untouched"
    );
    assert_eq!(common::frame_code_rgb(&rgb, w, h), Some(frame as u32));
    // The same rendering as a plain GStreamer decode with the same
    // overlay, and the unmarked session's still stays byte for byte the
    // source frame.
    let reference = reference_frame(&root.join("shot.mov"), frame, w, h, Some(&watermark));
    let db = psnr(&rgb, &reference);
    assert!(
        db.is_none_or(|db| db >= 48.0),
        "PSNR {db:?} dB against the marked reference"
    );
    let reference = reference_frame(&root.join("shot.mov"), frame, w, h, None);
    assert_eq!(psnr(&bare, &reference), None, "unmarked stills stay exact");
    server.shutdown().await;
}

/// A 10-bit ProRes 422 clip of a grey ramp across 1024 columns, 64 code
/// values at a time fewer than 10 bits can tell apart from 8: every
/// column's luma is its own 10-bit code, 64 (black) to 940 (white).
/// Made with `appsrc`, since GStreamer's own test patterns are drawn at
/// 8 bits.
fn ten_bit_ramp(path: &std::path::Path) {
    const W: usize = 1024;
    const H: usize = 64;
    gst::init().unwrap();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=I422_10LE,width={W},height={H},\
         framerate=24/1,colorimetry=bt709,pixel-aspect-ratio=1/1 ! \
         avenc_prores ! qtmux ! filesink location=\"{}\"",
        path.display()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gstreamer_app::AppSrc>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    // I422_10LE: a full-size luma plane, then two half-width chroma planes.
    let luma: Vec<u16> = (0..W).map(|x| 64 + (x * 876 / (W - 1)) as u16).collect();
    for n in 0..4u64 {
        let mut picture = Vec::with_capacity(W * H * 4);
        for _ in 0..H {
            picture.extend(luma.iter().flat_map(|v| v.to_le_bytes()));
        }
        picture.extend(std::iter::repeat_n(512u16.to_le_bytes(), W * H).flatten());
        let mut buffer = gst::Buffer::from_mut_slice(picture);
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_nseconds(n * 1_000_000_000 / 24));
        b.set_duration(gst::ClockTime::from_nseconds(1_000_000_000 / 24));
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    let bus = pipeline.bus().unwrap();
    let done = bus
        .timed_pop_filtered(
            gst::ClockTime::from_seconds(30),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        )
        .expect("the ramp is written within 30 s");
    assert!(matches!(done.view(), gst::MessageView::Eos(_)), "{done:?}");
    pipeline.set_state(gst::State::Null).unwrap();
}

#[tokio::test]
async fn a_ten_bit_sources_frame_keeps_its_ten_bits_and_an_eight_bit_sources_stays_eight() {
    let root = std::env::temp_dir().join(format!("syncreel-frames-deep-{}", std::process::id()));
    ten_bit_ramp(&root.join("ramp.mov"));
    let server = TestServer::with_media(&root).await;
    let s = server
        .create_session_with(json!({"title": "Grade 010", "media": "ramp.mov"}))
        .await;
    let checksum = s.body["version"]["checksum"].as_str().unwrap();
    let path = format!("/api/sessions/{}/frames/{checksum}/2", s.id);
    let got = get(&server, &path, Some(&s.viewer), &[]).await;
    assert_eq!(got.status, 200, "{}", error_code(&got));
    assert_eq!(common::png_depth(&got.body), png::BitDepth::Sixteen);
    let (values, w, h) = common::decode_png16(&got.body);
    assert_eq!((w, h), (1024, 64));
    // Along a row, the red of each column in 10-bit codes: grey from
    // limited-range luma, (Y − 64) × 1023 / 876.
    let row = h / 2;
    let red: Vec<i64> = (0..w)
        .map(|x| i64::from(values[(row * w + x) * 3] >> 6))
        .collect();
    let levels: std::collections::BTreeSet<_> = red.iter().copied().collect();
    // An 8-bit still holds at most 256 levels; the ramp has 877.
    assert!(
        levels.len() >= 600,
        "{} levels along the ramp: the still lost its bits",
        levels.len()
    );
    let error: i64 = red
        .iter()
        .enumerate()
        .map(|(x, &r)| (r - (x as i64 * 876 / 1023) * 1023 / 876).abs())
        .sum();
    let mean = error as f64 / w as f64;
    assert!(mean <= 3.0, "off the ramp by {mean:.2} codes on average");
    server.shutdown().await;

    // An 8-bit source's stills stay 8-bit: twice the bytes would hold
    // nothing more.
    let server = TestServer::with_media(&media_root()).await;
    let (s, checksum) = session(&server).await;
    let path = format!("/api/sessions/{}/frames/{checksum}/3", s.id);
    let got = get(&server, &path, Some(&s.viewer), &[]).await;
    assert_eq!(got.status, 200, "{}", error_code(&got));
    assert_eq!(common::png_depth(&got.body), png::BitDepth::Eight);
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}
