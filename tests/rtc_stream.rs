//! The stream as a viewer receives it: a WebRTC client written with
//! webrtc-rs joins a media session, decodes the video with GStreamer and
//! reads the frame code burnt into every picture.

mod common;
#[path = "support/opus.rs"]
mod opus;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::PathBuf;

use common::{token, transport_of, Client, TestServer};
use serde_json::{json, Value};
use syncreel::clock::Timeline;
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::timecode::FrameRate;
use viewer::Viewer;

const CLIP_FRAMES: u32 = 480;

/// A media root holding a small demo clip, made once per test binary run.
fn media_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(make_media_root).clone()
}

fn make_media_root() -> PathBuf {
    let root = std::env::temp_dir().join(format!("syncreel-rtc-{}", std::process::id()));
    let spec = DemoClipSpec {
        width: 640,
        height: 360,
        frames: CLIP_FRAMES,
        ..DemoClipSpec::default()
    };
    demo_clip::ensure(&root.join("clip.mov"), &spec).unwrap();
    std::fs::write(root.join("notes.mov"), "not a movie\n".repeat(50)).unwrap();
    root
}

async fn media_server() -> TestServer {
    TestServer::streaming(media_root(), 1500).await
}

async fn media_session(server: &TestServer) -> Value {
    let (status, body) = server
        .request(
            "POST",
            "/api/sessions",
            Some(common::OPERATOR),
            Some(json!({"title": "Stream", "media": "clip.mov"})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    body
}

/// The server instant of a 48 kHz RTP timestamp (no wrap: a test server's
/// clock is hours from it).
fn audio_instant(rtp: u32) -> i64 {
    i64::from(rtp) * 1_000_000 / 48_000
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sound_follows_the_playhead_and_stops_when_the_room_pauses() {
    let server = media_server().await;
    let session = media_session(&server).await;
    let mut host = Client::join(server.addr, &token(&session, "host"), "Dana").await;
    assert_eq!(host.welcome["media"]["hasAudio"], true);
    let mut viewer = Viewer::join(server.addr, &token(&session, "viewer")).await;
    viewer.next_picture().await;

    host.send(json!({"type": "seek", "frame": 100})).await;
    host.expect("transport").await;
    host.send(json!({"type": "play"})).await;
    let play = transport_of(&host.expect("transport").await);
    let start = play.anchor_time.as_micros();
    // The media instant of a server instant while this play lasts.
    let media_micros =
        |server_micros: i64| (100 * 1001 * 1_000_000 / 24_000) + (server_micros - start);

    // The demo clip beeps with the first frame of every timecode second.
    // Listen to about three seconds and find each beep's first loud sample.
    let mut reader = opus::OpusReader::new();
    let mut onsets = Vec::new();
    let mut quiet_since: Option<i64> = None;
    let mut first_packet = None;
    // Bounded: 3.5 s of 20 ms packets, and the wait for each is bounded.
    for _ in 0..175 {
        let heard = viewer.next_audio().await;
        let at = audio_instant(heard.rtp_timestamp);
        if at < start {
            continue;
        }
        first_packet.get_or_insert((at, heard.marker));
        let samples = reader.decode(&heard.payload, at as u64);
        for (i, sample) in samples.iter().enumerate() {
            let t = at + i as i64 * 1_000_000 / 48_000;
            if sample.unsigned_abs() > 3_000 {
                if quiet_since.is_some_and(|q| t - q > 200_000) {
                    onsets.push(media_micros(t));
                }
                quiet_since = None;
            } else {
                quiet_since.get_or_insert(t);
            }
        }
    }
    let (first_at, first_marker) = first_packet.expect("sound while playing");
    assert!(first_marker, "the first packet after a silence is marked");
    assert!(first_at - start < 40_000, "sound starts with play");
    assert!(onsets.len() >= 2, "beeps heard: {onsets:?}");
    // Each beep starts with a frame labelled …:00, to within 3 ms (a frame
    // is 41.7 ms).
    let frame_start = |frame: i64| frame * 1001 * 1_000_000 / 24_000;
    for onset in &onsets {
        let frame = (onset * 24_000 + 500 * 1_000_000) / (1001 * 1_000_000);
        assert_eq!(frame % 24, 0, "a beep near frame {frame}: {onsets:?}");
        assert!(
            (onset - frame_start(frame)).abs() <= 3_000,
            "the beep of frame {frame} is heard {} µs off: {onsets:?}",
            onset - frame_start(frame)
        );
    }
    // Paused, nothing is sent; playing again, sound resumes, marked.
    host.send(json!({"type": "pause"})).await;
    let paused_at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    // The room stays paused until the still is repeated, half a second on.
    viewer.picture_at_or_after(paused_at + 100_000).await;
    host.send(json!({"type": "seek", "frame": 300})).await;
    host.expect("transport").await;
    host.send(json!({"type": "play"})).await;
    let resumed_at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    let resumed = loop {
        let heard = viewer.next_audio().await;
        if audio_instant(heard.rtp_timestamp) >= paused_at {
            break heard;
        }
    };
    assert!(
        audio_instant(resumed.rtp_timestamp) >= resumed_at - 20_000,
        "sound between pause ({paused_at}) and play ({resumed_at}): {}",
        audio_instant(resumed.rtp_timestamp)
    );
    assert!(resumed.marker, "the first packet after a silence is marked");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_the_exact_frame_after_seeks_and_frames_advance_at_the_rate_in_play() {
    let server = media_server().await;
    let session = media_session(&server).await;
    assert_eq!(session["session"]["fps"], "24000/1001");
    assert_eq!(session["session"]["durationFrames"], CLIP_FRAMES);
    assert_eq!(session["session"]["startTimecode"], "01:00:00:00");
    let mut host = Client::join(server.addr, &token(&session, "host"), "Dana").await;
    let mut viewer = Viewer::join(server.addr, &token(&session, "viewer")).await;

    // The room starts paused on the first frame. The player starts for
    // this viewer, and a fresh encoder's first picture may be too coarse
    // to read; the first one that can be read is the room's.
    assert_eq!(viewer.first_readable().await, 0);

    for (seek, frame) in [
        (json!({"type": "seek", "frame": 100}), 100u32),
        (json!({"type": "seek", "timecode": "01:00:10:05"}), 245),
        (json!({"type": "step", "frames": -1}), 244),
    ] {
        host.send(seek).await;
        let t = host.expect("transport").await;
        let execute_at = t["executeAt"].as_i64().unwrap();
        let seen = viewer.picture_at_or_after(execute_at).await;
        assert_eq!(
            seen.code,
            Some(frame),
            "picture after the change at {execute_at}"
        );
        // Paused, it stays exactly there.
        let again = viewer.next_picture().await;
        assert_eq!(again.code, Some(frame));
    }

    host.send(json!({"type": "play"})).await;
    let play = host.expect("transport").await;
    let transport = transport_of(&play);
    let timeline = Timeline {
        rate: FrameRate::FPS_23_976,
        duration: i64::from(CLIP_FRAMES),
    };
    let start = transport.anchor_time.as_micros();
    let mut seen = Vec::new();
    let mut skipped_late = 0;
    while seen.len() < 36 {
        let picture = viewer.picture_at_or_after(start).await;
        let expected = transport.position(&timeline, picture.at);
        match picture.code {
            Some(code) => {
                assert_eq!(
                    i64::from(code),
                    expected,
                    "the picture at {:?} is the transport's frame",
                    picture.at
                );
                seen.push((picture.at, expected));
            }
            None => skipped_late += 1,
        }
    }
    assert!(skipped_late <= 2, "{skipped_late} unreadable pictures");
    let frames: Vec<i64> = seen.iter().map(|(_, f)| *f).collect();
    let advanced = frames.last().unwrap() - frames[0];
    let elapsed = seen.last().unwrap().0.as_micros() - seen[0].0.as_micros();
    // At 23.976 fps, frames advance by elapsed × 24000/1001 (±1 at the ends).
    let expected = elapsed as i128 * 24_000 / (1001 * 1_000_000);
    assert!(
        (advanced as i128 - expected).abs() <= 1,
        "advanced {advanced} in {elapsed} µs"
    );
    assert!(
        frames.windows(2).all(|w| w[1] >= w[0]),
        "frames never go back in play: {frames:?}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_viewers_broken_signalling_affects_nobody_else() {
    let server = media_server().await;
    let session = media_session(&server).await;
    let mut host = Client::join(server.addr, &token(&session, "host"), "Dana").await;
    let mut good = Viewer::join(server.addr, &token(&session, "viewer")).await;
    good.next_picture().await;

    let mut bad = Client::join(server.addr, &token(&session, "viewer"), "Broken").await;
    bad.send(json!({"type": "rtcAnswer", "sdp": "v=0"})).await;
    assert_eq!(bad.expect_error().await["code"], "rtc");
    bad.send(json!({"type": "rtcStart"})).await;
    bad.expect("rtcOffer").await;
    bad.send(json!({"type": "rtcAnswer", "sdp": "this is not SDP"}))
        .await;
    assert_eq!(bad.expect_error().await["code"], "rtc");
    bad.ping(1).await;

    host.send(json!({"type": "seek", "frame": 42})).await;
    let at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    assert_eq!(good.picture_at_or_after(at).await.code, Some(42));
    bad.drop_connection();
    host.send(json!({"type": "seek", "frame": 43})).await;
    let at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    assert_eq!(good.picture_at_or_after(at).await.code, Some(43));
    server.shutdown().await;
}

#[tokio::test]
async fn sessions_refuse_media_that_cannot_be_reviewed_with_a_reason() {
    let server = media_server().await;
    for (media, code) in [
        ("nope.mov", "media_missing"),
        ("notes.mov", "not_media"),
        ("../../etc/passwd", "outside_media_root"),
        ("/etc/hostname", "outside_media_root"),
        ("../no-such-file.mov", "outside_media_root"),
    ] {
        let (status, body) = server
            .request(
                "POST",
                "/api/sessions",
                Some(common::OPERATOR),
                Some(json!({"title": "x", "media": media})),
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some(code)),
            "{media}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(
            !message.contains(media_root().to_str().unwrap()),
            "a refusal names the file as asked, not where it lives: {message}"
        );
    }
    // The file decides the rate and length; a request that also states
    // them is refused rather than half obeyed.
    let (status, body) = server
        .request(
            "POST",
            "/api/sessions",
            Some(common::OPERATOR),
            Some(json!({"title": "x", "media": "clip.mov", "fps": "25"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request")),
        "{body}"
    );
    let (status, body) = server
        .request(
            "POST",
            "/api/sessions",
            Some(common::OPERATOR),
            Some(json!({"title": "x"})),
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("bad_request"))
    );
    // Sessions without media still work, and have no stream.
    let (status, body) = server
        .request(
            "POST",
            "/api/sessions",
            Some(common::OPERATOR),
            Some(json!({"title": "x", "fps": "25", "durationFrames": 10})),
        )
        .await;
    assert_eq!(status, 201);
    let mut c = Client::join(server.addr, &token(&body, "viewer"), "V").await;
    assert!(c.welcome["media"].is_null());
    c.send(json!({"type": "rtcStart"})).await;
    assert_eq!(c.expect_error().await["code"], "rtc");
    server.shutdown().await;
}

#[tokio::test]
async fn the_offer_lists_only_the_codecs_the_server_sends() {
    let server = media_server().await;
    let session = media_session(&server).await;
    let mut viewer = Client::join(server.addr, &token(&session, "viewer"), "Vic").await;
    viewer.send(json!({"type": "rtcStart"})).await;
    let offer = viewer.expect("rtcOffer").await;
    let sdp = offer["sdp"].as_str().unwrap();
    let mut payloads: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .collect();
    payloads.sort_unstable();
    // One video codec and Opus: nothing a receiver could pick that never comes.
    assert_eq!(payloads, ["111 opus/48000/2", "96 VP8/90000"], "{sdp}");
    let video = sdp.lines().find(|l| l.starts_with("m=video")).unwrap();
    assert!(video.ends_with(" 96"), "{video}");
    server.shutdown().await;
}

#[tokio::test]
async fn by_default_the_stream_is_h264_constrained_baseline_and_the_offer_says_so() {
    // The config default, not the VP8 the test viewer decodes.
    let root = media_root();
    let server = TestServer::start_with(move |c| {
        c.media.root = root;
        c.media.stream_width = 640;
        c.media.stream_height = 360;
    })
    .await;
    let session = media_session(&server).await;
    let mut viewer = Client::join(server.addr, &token(&session, "viewer"), "Hal").await;
    assert_eq!(viewer.welcome["media"]["codec"], "H264");
    viewer.send(json!({"type": "rtcStart"})).await;
    let offer = viewer.expect("rtcOffer").await;
    let sdp = offer["sdp"].as_str().unwrap();
    let mut payloads: Vec<&str> = sdp
        .lines()
        .filter_map(|l| l.strip_prefix("a=rtpmap:"))
        .collect();
    payloads.sort_unstable();
    assert_eq!(payloads, ["102 H264/90000", "111 opus/48000/2"], "{sdp}");
    let fmtp = sdp
        .lines()
        .find(|l| l.starts_with("a=fmtp:102 "))
        .unwrap_or_else(|| panic!("no fmtp for H.264: {sdp}"));
    assert!(fmtp.contains("profile-level-id=42e01f"), "{fmtp}");
    assert!(fmtp.contains("packetization-mode=1"), "{fmtp}");
    server.shutdown().await;
}
