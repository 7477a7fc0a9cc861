//! Review proxies: an uploaded Apple ProRes source (what an editor sends,
//! and too heavy to decode in real time at UHD) is transcoded in the
//! background into H.264 at the stream's size, with the source's frames,
//! rate and start timecode. The room plays the proxy; exact-frame stills
//! come from the source.

mod common;
#[path = "support/tus.rs"]
mod tus;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::{Client, TestServer};
use serde_json::{json, Value};
use syncreel::media::demo_clip::{self, ClipCodec, DemoClipSpec};
use syncreel::media::frames::{FrameKey, FrameLimits, FrameServer};
use syncreel::timecode::FrameRate;
use viewer::Viewer;

const FRAMES: u32 = 12;
const SOURCE: (u32, u32) = (3840, 2160);

/// A UHD ProRes 422 clip, 23.976, from 01:00:00:00, its frame code
/// burnt into every picture; made once per run (ProRes encoding takes
/// a few seconds).
fn prores_clip() -> PathBuf {
    static CLIP: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    CLIP.get_or_init(|| {
        let path = std::env::temp_dir()
            .join(format!("syncreel-prores-{}", std::process::id()))
            .join("Shot 020 v1.mov");
        let spec = DemoClipSpec {
            width: SOURCE.0,
            height: SOURCE.1,
            frames: FRAMES,
            codec: ClipCodec::ProRes,
            ..DemoClipSpec::default()
        };
        demo_clip::ensure(&path, &spec).unwrap();
        path
    })
    .clone()
}

/// Polls the upload's status until its proxy is `ready` or `failed`
/// (no event says so), for at most two minutes: the transcode runs at
/// the machine's speed.
async fn proxy_outcome(tus: &tus::Tus, upload: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut last_progress = 0.0;
    loop {
        let status = tus.get(upload).await;
        assert_eq!(status.status, 200, "{}", status.body);
        let proxy = status.body["proxy"].clone();
        let state = proxy["state"]
            .as_str()
            .expect("a ProRes source wants a proxy");
        if state == "ready" || state == "failed" {
            return proxy;
        }
        let progress = proxy["progress"].as_f64().unwrap();
        assert!(progress >= last_progress, "progress goes forward: {proxy}");
        last_progress = progress;
        assert!(
            Instant::now() < deadline,
            "no proxy within 2 minutes: {proxy}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prores_upload_gets_a_proxy_frame_for_frame_and_the_room_plays_it() {
    let root = std::env::temp_dir().join(format!("syncreel-proxy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    let source = std::fs::read(prores_clip()).unwrap();
    let server = TestServer::streaming_with(root.clone(), 1500, |c| {
        c.uploads.reserve_free_bytes = 0;
    })
    .await;

    let tus = tus::Tus::new(server.addr, Some(common::OPERATOR));
    let upload = tus
        .created(
            source.len() as u64,
            &[("filename", "Shot 020 v1.mov"), ("item", "Shot 020")],
        )
        .await;
    let done = tus.patch(&upload, 0, source.clone().into(), None).await;
    assert_eq!(done.status, 204, "{}", done.body);
    let proxy = proxy_outcome(&tus, &upload).await;
    assert_eq!(proxy["state"], "ready", "{proxy}");
    assert_eq!(proxy["progress"], 1.0);
    let status = tus.get(&upload).await.body;
    let version = &status["version"];
    let checksum = version["checksum"].as_str().unwrap();

    // The proxy: the stream's size, the source's frames, rate and label.
    let source_info =
        syncreel::media::probe::probe(&root.join(version["media"].as_str().unwrap())).unwrap();
    assert!(
        source_info.video_codec.to_lowercase().contains("prores"),
        "{}",
        source_info.video_codec
    );
    let proxy_path = root.join("proxies").join(format!("{checksum}.mov"));
    let proxy_info = syncreel::media::probe::probe(&proxy_path).unwrap();
    assert_eq!((proxy_info.width, proxy_info.height), (640, 360));
    assert_eq!(proxy_info.duration_frames, i64::from(FRAMES));
    assert_eq!(proxy_info.rate, FrameRate::FPS_23_976);
    assert_eq!(proxy_info.timecode, source_info.timecode);
    assert_eq!(proxy_info.timecode.start().to_string(), "01:00:00:00");
    // The colour description the source states, the proxy states too.
    assert_eq!(
        (
            source_info.colour.primaries,
            source_info.colour.transfer,
            source_info.colour.matrix,
            source_info.colour.range
        ),
        // GStreamer's default for an HD picture and larger.
        ("bt709", "bt709", "bt709", "limited")
    );
    assert_eq!(
        (
            proxy_info.colour.primaries,
            proxy_info.colour.transfer,
            proxy_info.colour.matrix,
            proxy_info.colour.range
        ),
        (
            source_info.colour.primaries,
            source_info.colour.transfer,
            source_info.colour.matrix,
            source_info.colour.range
        ),
    );
    // Frame N of the proxy is frame N: its burnt-in code says so.
    let frames = FrameServer::new(FrameLimits {
        cache_bytes: 1 << 20,
        decoders: 1,
        idle: Duration::from_secs(5),
    });
    for n in [0i64, 1, 5, 6, 11] {
        let key = FrameKey {
            checksum: "proxy".into(),
            frame: n,
            width: 640,
            watermark: None,
        };
        let png = frames.png(&proxy_info, &key).unwrap();
        let (rgb, w, h) = common::decode_png(&png);
        assert_eq!(
            common::frame_code_rgb(&rgb, w, h),
            Some(n as u32),
            "proxy frame {n}"
        );
    }

    // And carries what it states: decoded by what each file says, the
    // proxy's colour bars are the source's (a wrong matrix or range would
    // move the saturated bars by ten levels and more; coding noise and
    // scaling stay within a few).
    let still = |info: &syncreel::media::MediaInfo, name: &str| {
        let key = FrameKey {
            checksum: name.into(),
            frame: 0,
            width: 640,
            watermark: None,
        };
        common::decode_png(&frames.png(info, &key).unwrap())
    };
    let (from_source, w, h) = still(&source_info, "source");
    let (from_proxy, ..) = still(&proxy_info, "proxy");
    // The bars fill the top two thirds of a SMPTE pattern; the frame
    // code strip and labels are elsewhere.
    let band = |rgb: &[u8], x: usize| {
        let (y0, y1) = (h / 2 - 20, h / 2 + 20);
        let (x0, x1) = (x.saturating_sub(10), x + 10);
        let mut sum = [0u64; 3];
        for y in y0..y1 {
            for x in x0..x1 {
                for c in 0..3 {
                    sum[c] += u64::from(rgb[(y * w + x) * 3 + c]);
                }
            }
        }
        sum.map(|v| v as f64 / ((y1 - y0) * (x1 - x0)) as f64)
    };
    for bar in 0..7 {
        let x = w * (2 * bar + 1) / 14;
        let (a, b) = (band(&from_source, x), band(&from_proxy, x));
        for c in 0..3 {
            assert!(
                (a[c] - b[c]).abs() < 6.0,
                "bar {bar}, channel {c}: the source decodes to {a:?}, the proxy to {b:?}"
            );
        }
    }

    // A session of the version plays the proxy, and says so.
    let created = server
        .create_session_with(json!({"title": "Shot 020", "media": version["media"]}))
        .await;
    let mut host = Client::join(server.addr, &created.host, "Dana").await;
    assert_eq!(
        host.welcome["media"]["proxy"], true,
        "{}",
        host.welcome["media"]
    );
    assert_eq!(host.welcome["media"]["sourceWidth"], SOURCE.0);
    assert_eq!(
        host.welcome["media"]["sourceColour"],
        json!({"primaries": "bt709", "transfer": "bt709", "matrix": "bt709", "range": "limited"})
    );
    let mut viewer = Viewer::join(server.addr, &created.viewer).await;
    assert_eq!(viewer.first_readable().await, 0);
    host.send(json!({"type": "seek", "frame": 10})).await;
    let execute_at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    assert_eq!(viewer.picture_at_or_after(execute_at).await.code, Some(10));
    // A still is the source's: decoded from the 10-bit source at 16 bits
    // a channel (the proxy is 8-bit), at any width up to the source's.
    let id = &created.id;
    let (status, _, png) = common::request_bytes(
        server.addr,
        "GET",
        &format!("/api/sessions/{id}/frames/{checksum}/10?width=960"),
        Some(&created.host),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(common::png_depth(&png), png::BitDepth::Sixteen);
    let (rgb, w, h) = common::decode_png(&png);
    assert_eq!((w, h), (960, 540), "the size asked for");
    assert_eq!(common::frame_code_rgb(&rgb, w, h), Some(10));

    // The media list says which versions have a proxy.
    let (_, media) = common::request(
        server.addr,
        "GET",
        "/api/media",
        Some(common::OPERATOR),
        None,
    )
    .await;
    let listed = &media["items"][0]["versions"][0];
    assert_eq!(listed["proxy"]["state"], "ready", "{media}");
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_that_cannot_be_made_is_reported_and_the_source_plays() {
    let source = std::fs::read(prores_clip()).unwrap();
    // A media disk with room for the source and little more: the upload
    // lands, its proxy (about a megabyte) does not fit.
    let disk = common::SmallDisk::mount(&format!("{}k", source.len() / 1024 + 256));
    let server = TestServer::streaming_with(disk.path.clone(), 1500, |c| {
        c.uploads.reserve_free_bytes = 0;
    })
    .await;
    let tus = tus::Tus::new(server.addr, Some(common::OPERATOR));
    let upload = tus
        .created(source.len() as u64, &[("filename", "Shot 030.mov")])
        .await;
    let done = tus.patch(&upload, 0, source.into(), None).await;
    assert_eq!(done.status, 204, "{}", done.body);
    let proxy = proxy_outcome(&tus, &upload).await;
    assert_eq!(proxy["state"], "failed", "{proxy}");
    let why = proxy["error"].as_str().unwrap();
    assert!(
        why.to_lowercase().contains("space") || why.to_lowercase().contains("write"),
        "{why}"
    );
    // Nothing half-made is left, and the failure is not retried: the
    // version plays from its source.
    let leftovers: Vec<_> = std::fs::read_dir(disk.path.join("proxies"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        leftovers
            .iter()
            .all(|n| n.to_string_lossy().ends_with(".failed")),
        "{leftovers:?}"
    );
    let status = tus.get(&upload).await.body;
    let created = server
        .create_session_with(json!({"title": "Shot 030", "media": status["version"]["media"]}))
        .await;
    let host = Client::join(server.addr, &created.host, "Dana").await;
    assert_eq!(
        host.welcome["media"]["proxy"], false,
        "{}",
        host.welcome["media"]
    );
    assert_eq!(
        tus.get(&upload).await.body["proxy"]["state"],
        "failed",
        "reported, not tried again"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxy_made_while_its_source_plays_takes_over_the_stream() {
    let root = std::env::temp_dir().join(format!("syncreel-proxy-live-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).unwrap();
    // Placed by hand, so the session opens on the source with no proxy
    // under way.
    std::fs::copy(prores_clip(), root.join("Shot 040.mov")).unwrap();
    let server = TestServer::streaming_with(root.clone(), 1500, |c| {
        c.uploads.reserve_free_bytes = 0;
    })
    .await;
    let created = server
        .create_session_with(json!({"title": "Shot 040", "media": "Shot 040.mov"}))
        .await;
    let mut host = Client::join(server.addr, &created.host, "Dana").await;
    assert_eq!(host.welcome["media"]["proxy"], false);
    let mut viewer = Viewer::join(server.addr, &created.viewer).await;
    assert_eq!(viewer.first_readable().await, 0);

    // The same bytes uploaded: the server wants a proxy of them.
    let source = std::fs::read(prores_clip()).unwrap();
    let tus = tus::Tus::new(server.addr, Some(common::OPERATOR));
    let upload = tus
        .created(
            source.len() as u64,
            &[("filename", "Shot 040.mov"), ("item", "Shot 040")],
        )
        .await;
    let done = tus.patch(&upload, 0, source.into(), None).await;
    assert_eq!(done.status, 204, "{}", done.body);
    let proxy = proxy_outcome(&tus, &upload).await;
    assert_eq!(proxy["state"], "ready", "{proxy}");

    // The room moves to it without anyone reopening anything: a newcomer
    // is told the stream is the proxy (the session hears of the proxy
    // just after the API does, hence the few tries).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let newcomer = Client::join(server.addr, &created.reviewer, "Newcomer").await;
        if newcomer.welcome["media"]["proxy"] == true {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the room still plays the source: {}",
            newcomer.welcome["media"]
        );
        drop(newcomer);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And the viewer who watched through the move sees exact frames.
    host.send(json!({"type": "seek", "frame": 10})).await;
    let execute_at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    assert_eq!(viewer.picture_at_or_after(execute_at).await.code, Some(10));
    host.send(json!({"type": "play"})).await;
    let execute_at = host.expect("transport").await["executeAt"]
        .as_i64()
        .unwrap();
    let playing = viewer.picture_at_or_after(execute_at).await.code;
    assert!(
        playing.is_some_and(|code| code >= 10),
        "playing from 10: {playing:?}"
    );
    server.shutdown().await;
    let _ = std::fs::remove_dir_all(&root);
}
