//! An idle media session's memory (RSS) and thread count after its
//! viewers leave: the real server process, WebRTC viewers that join and
//! leave, and `/proc/<pid>` read before and after. Then the stream comes
//! back for the next viewer, on the room's frame.

mod common;
#[path = "support/process.rs"]
mod process;
#[path = "support/viewer.rs"]
mod viewer;
#[path = "support/vp8.rs"]
mod vp8;

use std::net::SocketAddr;
use std::time::Duration;

use common::{token, transport_of, Client};
use serde_json::{json, Value};
use syncreel::clock::Timeline;
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::timecode::FrameRate;
use viewer::Viewer;

const CLIP_FRAMES: u32 = 480;
/// Sessions watched at once and then left: enough that the per-session
/// figure is not lost in the noise of a shared machine.
const SESSIONS: usize = 8;
/// What an idle media session may cost, in KiB: the 2 MiB, and
/// 512 KiB for the noise of a shared machine (measured: 1.3-1.6 MiB).
const IDLE_KIB_PER_SESSION: u64 = 2 * 1024 + 512;
/// Teardown is waited for by polling, within this.
const SETTLE: Duration = Duration::from_secs(45);

/// Resident memory and thread count of a process.
#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    threads: usize,
}

fn usage(pid: u32) -> Usage {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("server alive");
    let rss_kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    Usage {
        rss_kib,
        threads: std::fs::read_dir(format!("/proc/{pid}/task"))
            .expect("server alive")
            .count(),
    }
}

/// The names of the process's threads that belong to a session's players.
fn player_threads(pid: u32) -> Vec<String> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("server alive")
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim().to_string())
        .filter(|name| name.starts_with("syncreel-player") || name.starts_with("syncreel-audio"))
        .collect()
}

async fn pipelines(addr: SocketAddr) -> u64 {
    u64::try_from(common::metric(addr, "syncreel_media_pipelines").await).expect("a count")
}

/// Polls until `/metrics` counts `n` running players.
async fn wait_for_pipelines(addr: SocketAddr, n: u64) {
    let deadline = tokio::time::Instant::now() + SETTLE;
    while pipelines(addr).await != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "running players stayed at {}, not {n}",
            pipelines(addr).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls until the process has no more threads than `most` and none of a
/// player; GLib and Tokio let their idle pool threads go after 10-15 s.
async fn wait_for_threads(pid: u32, most: usize) -> Usage {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let now = usage(pid);
        let players = player_threads(pid);
        if now.threads <= most && players.is_empty() {
            return now;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} threads, baseline {most}; players: {players:?}",
            now.threads
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn media_session(addr: SocketAddr) -> Value {
    let (status, body) = common::request(
        addr,
        "POST",
        "/api/sessions",
        Some(common::OPERATOR),
        Some(json!({"title": "Idle", "media": "clip.mov"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_media_session_keeps_no_pipeline_thread_or_memory_and_its_next_viewer_sees_the_rooms_frame(
) {
    let data = std::env::temp_dir().join(format!("syncreel-idle-{}", std::process::id()));
    let spec = DemoClipSpec {
        width: 640,
        height: 360,
        frames: CLIP_FRAMES,
        ..DemoClipSpec::default()
    };
    demo_clip::ensure(&data.join("media/clip.mov"), &spec).unwrap();
    let server = process::Process::start_with(
        &data,
        &[
            // What the test viewer decodes.
            ("SYNCREEL_MEDIA__CODEC", "vp8"),
            ("SYNCREEL_MEDIA__STREAM_WIDTH", "640"),
            ("SYNCREEL_MEDIA__STREAM_HEIGHT", "360"),
            ("SYNCREEL_MEDIA__BITRATE_KBPS", "1500"),
            // Long enough for webrtc-rs to finish closing a departed
            // viewer's peer first, as it has by the default 30 s.
            ("SYNCREEL_MEDIA__IDLE_TEARDOWN_MS", "2000"),
            // The viewers watching at once do not read their WebSockets
            // (nor answer pings) while the others join.
            ("SYNCREEL_LIMITS__DEAD_PEER_TIMEOUT_MS", "600000"),
        ],
    );
    let (addr, pid) = (server.addr, server.child.id());

    // Nobody has asked for a picture: nothing runs.
    let first = media_session(addr).await;
    assert_eq!(pipelines(addr).await, 0, "a new session starts no player");

    // Warm up: the first stream loads GStreamer's plugins and webrtc-rs's
    // statics once for the whole process; that is not a session's cost.
    let mut viewer = Viewer::join(addr, &token(&first, "viewer")).await;
    assert_eq!(viewer.first_readable().await, 0);
    assert_eq!(pipelines(addr).await, 1);
    viewer.leave().await;
    wait_for_pipelines(addr, 0).await;
    let baseline = usage(pid);
    let baseline = wait_for_threads(pid, baseline.threads).await;

    // Sessions watched at once, then left.
    let mut sessions = Vec::new();
    let mut viewers = Vec::new();
    for _ in 0..SESSIONS {
        let session = media_session(addr).await;
        let mut viewer = Viewer::join(addr, &token(&session, "viewer")).await;
        assert_eq!(viewer.first_readable().await, 0);
        viewers.push(viewer);
        sessions.push(session);
    }
    // Each of them started its players. On a loaded machine a viewer's
    // peer may have failed already (ICE consent), and its players stopped
    // as they should, so this counts those still up.
    let running = pipelines(addr).await;
    let watched = usage(pid);
    assert!(running >= 1, "players run for the viewers");
    assert!(
        player_threads(pid).len() as u64 >= running,
        "each watched session has its players"
    );
    for viewer in viewers {
        viewer.leave().await;
    }
    wait_for_pipelines(addr, 0).await;
    let idle = wait_for_threads(pid, baseline.threads).await;
    let per_session = |u: Usage| {
        (
            u.rss_kib.saturating_sub(baseline.rss_kib) / SESSIONS as u64,
            u.threads as f64 - baseline.threads as f64,
        )
    };
    let (watched_kib, watched_threads) = per_session(watched);
    let (idle_kib, _) = per_session(idle);
    println!(
        "baseline {} KiB, {} threads; {SESSIONS} sessions watched ({running} still): {} KiB, \
         {} threads ({watched_kib} KiB and {:.1} threads each); left: {} KiB, {} threads \
         ({idle_kib} KiB each)",
        baseline.rss_kib,
        baseline.threads,
        watched.rss_kib,
        watched.threads,
        watched_threads / SESSIONS as f64,
        idle.rss_kib,
        idle.threads,
    );
    assert!(
        idle_kib <= IDLE_KIB_PER_SESSION,
        "an idle media session keeps {idle_kib} KiB (watched: {watched_kib} KiB)"
    );

    // The room goes on without a player: the host seeks, and the next
    // viewer's first picture is that frame.
    let room = &sessions[0];
    let mut host = Client::join(addr, &token(room, "host"), "Dana").await;
    host.send(json!({"type": "seek", "frame": 100})).await;
    let seek = transport_of(&host.expect("transport").await);
    assert_eq!(pipelines(addr).await, 0, "control needs no player");
    let mut viewer = Viewer::join(addr, &token(room, "viewer")).await;
    // A viewer quick enough to arrive before the seek is due rightly sees
    // the frame before it first; from the seek's instant on, it is 100.
    // Bounded: five pictures, each wait bounded by the viewer.
    let mut first = None;
    for _ in 0..5 {
        let picture = viewer
            .picture_at_or_after(seek.anchor_time.as_micros())
            .await;
        if picture.code.is_some() {
            first = picture.code;
            break;
        }
    }
    assert_eq!(first, Some(100));
    viewer.leave().await;
    wait_for_pipelines(addr, 0).await;

    // Playing while nobody watches: a new viewer sees the frame the
    // transport shows at each picture's instant.
    host.send(json!({"type": "play"})).await;
    let transport = transport_of(&host.expect("transport").await);
    let mut viewer = Viewer::join(addr, &token(room, "viewer")).await;
    let timeline = Timeline {
        rate: FrameRate::FPS_23_976,
        duration: i64::from(CLIP_FRAMES),
    };
    let mut checked = 0;
    // Bounded: 48 pictures, each wait bounded by the viewer.
    for _ in 0..48 {
        let picture = viewer
            .picture_at_or_after(transport.anchor_time.as_micros())
            .await;
        if let Some(code) = picture.code {
            assert_eq!(
                i64::from(code),
                transport.position(&timeline, picture.at),
                "the picture at {:?} after a rebuild",
                picture.at
            );
            checked += 1;
        }
    }
    assert!(checked >= 40, "{checked} readable pictures of 48");
    viewer.leave().await;
    host.close().await;
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}
