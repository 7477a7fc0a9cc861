//! WebRTC fan-out: what one more receive-only viewer of a playing 720p
//! session costs the server, in CPU and memory, and whether packets get
//! lost, from 1 to 100 viewers; and the same measured on Janus 1.1.2's
//! streaming plugin fed the very same RTP stream, in the same run, so that
//! the two can be compared side by side.
//!
//! One run:
//!
//! 1. starts the real `syncreel` binary as a child process (so that its CPU
//!    and RSS are the server's alone) with a 720p clip in its media root,
//!    creates a session from it, and has the host loop the whole clip and
//!    play, so the stream never stops;
//! 2. joins one *feeder* viewer, a webrtc-rs peer in this process that
//!    forwards every RTP packet it receives (decrypted, NACK-repaired) over
//!    UDP on 127.0.0.1 to a Janus mountpoint. It stays for the whole run,
//!    so the SyncReel encoder and the Janus ingest work all the time, in
//!    both halves;
//! 3. starts Janus as a child process with a generated configuration
//!    (HTTP API on 127.0.0.1, only the streaming plugin), and creates an
//!    RTP mountpoint with one stream per m-line of SyncReel's offer;
//! 4. for each side in turn, SyncReel then Janus, climbs a ladder of
//!    viewer counts (0, then `RTC_FANOUT_N`): it adds receive-only
//!    webrtc-rs viewers until N are connected, lets them settle, and over
//!    a fixed window reads the side's process CPU (utime + stime from
//!    `/proc/<pid>/stat`), its RSS, this tool's CPU, the machine's, and
//!    every viewer's packet counters. The viewers of one side are closed
//!    before the other side's ladder starts.
//!
//! The N = 0 rung is each side's baseline: SyncReel encoding and feeding
//! one peer, Janus receiving the plain RTP feed. The marginal cost of a
//! viewer is (CPU(N) − CPU(0)) / N, and the SyncReel/Janus ratio is taken
//! on that marginal cost, because SyncReel's process also decodes and
//! encodes the video while Janus only relays it.
//!
//! Viewers do not decode. Each reads RTP from every remote track (whatever
//! m-lines the offer has: video, and audio once the server sends it),
//! counts packets per track, and finds loss from sequence-number gaps: a
//! packet below the highest sequence number seen that was not seen before
//! is late (reordered or a NACK retransmission) and fills its gap, one
//! seen before is a duplicate. Loss over a window is the growth of the
//! expected count (highest − first + 1) minus the growth of the distinct
//! packets received. Viewers use webrtc-rs's default interceptors (NACK,
//! receiver reports, TWCC feedback), as a browser would send them, and no
//! RTX, which webrtc-rs 0.17 does not hand to the application.
//!
//! Janus 1.1.2 never gathers candidates on a loopback interface
//! (`janus_ice_setup_local` skips `IFF_LOOPBACK`), so Janus's peers use
//! the machine's own address (`RTC_FANOUT_JANUS_IP`, by default the source
//! address of the default route). Linux delivers traffic to a local
//! address through `lo` as well, so both sides' media take the same kernel
//! path and never leave the machine. SyncReel's peers use 127.0.0.1.
//!
//! Build the server first: `cargo build --release && cargo bench --bench
//! rtc_fanout`, or `make bench-rtc-fanout`. Environment:
//! - `SYNCREEL_BIN`: the server binary (default `target/release/syncreel`).
//! - `RTC_FANOUT_N`: viewer counts after the N = 0 baseline (default
//!   `1,10,50,100`).
//! - `RTC_FANOUT_SECS`: the measurement window of each rung (default 15).
//! - `RTC_FANOUT_SETTLE_SECS`: wait between the last join and the window
//!   (default 3), so that join-time keyframes and handshakes are over.
//! - `RTC_FANOUT_JANUS`: the Janus binary (default `janus`), or `off`.
//! - `RTC_FANOUT_JANUS_LIB`: Janus's plugin directory root, holding
//!   `plugins/` and `transports/` (default: found under `/usr/lib`).
//! - `RTC_FANOUT_JANUS_IP`: the local IPv4 address Janus's ICE uses.
//! - `RTC_FANOUT_FIRST`: `syncreel` (default) or `janus`, the ladder
//!   climbed first; swapping it shows how much drift in the machine's load
//!   over the run favours one side.
//! - `RTC_FANOUT_CLIENT_THREADS`: this tool's tokio workers (default 2).
//! - `RTC_FANOUT_JOIN_CONCURRENCY`: viewers joining at once (default 8).
//!
//! Every wait is bounded: a viewer that does not receive media within its
//! timeout is counted as failed and the ladder goes on with the rest.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use serde_json::{json, Value};
use syncreel::media::demo_clip::{self, DemoClipSpec};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use webrtc::api::interceptor_registry::register_default_interceptors;
use webrtc::api::media_engine::{MediaEngine, MIME_TYPE_H264, MIME_TYPE_OPUS, MIME_TYPE_VP8};
use webrtc::api::setting_engine::SettingEngine;
use webrtc::api::{APIBuilder, API};
use webrtc::ice::mdns::MulticastDnsMode;
use webrtc::ice::network_type::NetworkType;
use webrtc::ice_transport::ice_candidate::RTCIceCandidateInit;
use webrtc::interceptor::registry::Registry;
use webrtc::peer_connection::configuration::RTCConfiguration;
use webrtc::peer_connection::sdp::session_description::RTCSessionDescription;
use webrtc::peer_connection::RTCPeerConnection;
use webrtc::rtp::packet::Packet;
use webrtc::rtp_transceiver::rtp_codec::{
    RTCRtpCodecCapability, RTCRtpCodecParameters, RTPCodecType,
};
use webrtc::rtp_transceiver::RTCPFeedback;
use webrtc::track::track_remote::TrackRemote;
use webrtc::util::Marshal;

/// How long the server gets to start and print its address.
const SERVER_START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long Janus gets to answer its HTTP API after being started.
const JANUS_START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one viewer may take from its first request to its first
/// video packet.
const JOIN_TIMEOUT: Duration = Duration::from_secs(30);
/// One HTTP request, long polls aside.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
/// Janus holds a long poll for up to 30 s when it has nothing to say.
const LONG_POLL_TIMEOUT: Duration = Duration::from_secs(45);
/// How long a server may take to hand over the playing transport.
const PLAY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long closing one viewer may take before it is abandoned.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// RSS readings after a window; their median is reported.
const RSS_SAMPLES: usize = 5;
const RSS_SAMPLE_GAP: Duration = Duration::from_millis(200);
/// Sequence numbers remembered per track, to tell a retransmission that
/// fills a gap from a duplicate. NACKs are useless after about a second;
/// at 720p that is a few hundred packets.
const SEQ_MEMORY: usize = 2048;
/// The clip: 1280×720 at 23.976 fps, one minute, looped by the host.
const CLIP_WIDTH: u32 = 1280;
const CLIP_HEIGHT: u32 = 720;
const CLIP_FRAMES: u32 = 1440;
/// How tokio names its threads (`tokio-rt-worker`, or `tokio-runtime-w`
/// as older versions' name is cut to 15 bytes).
const TOKIO_THREADS: &str = "tokio-r";
/// The Janus mountpoint this tool creates.
const MOUNTPOINT: u64 = 4242;

fn main() -> ExitCode {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, and a minutes-long load test is no unit test.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("rtc_fanout: skipped outside `cargo bench --bench rtc_fanout`");
        return ExitCode::SUCCESS;
    }
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("rtc_fanout: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(settings.client_threads)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rtc_fanout: cannot start the tokio runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = run(&settings) => outcome,
            // Returning drops the process guards, which kill the children.
            _ = tokio::signal::ctrl_c() => Err("interrupted".to_string()),
        }
    });
    // Peer connections left behind hold tasks; do not wait for them.
    runtime.shutdown_timeout(Duration::from_secs(2));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rtc_fanout: {err}");
            ExitCode::FAILURE
        }
    }
}

struct Settings {
    bin: PathBuf,
    sizes: Vec<usize>,
    window: Duration,
    settle: Duration,
    /// The Janus binary; `None`: SyncReel only.
    janus: Option<String>,
    janus_lib: Option<PathBuf>,
    janus_ip: Option<Ipv4Addr>,
    janus_first: bool,
    client_threads: usize,
    join_concurrency: usize,
}

impl Settings {
    fn from_env() -> Result<Settings, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let number = |name: &str, default: usize| -> Result<usize, String> {
            match var(name) {
                None => Ok(default),
                Some(text) => text
                    .trim()
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| format!("{name}={text} is not a positive integer")),
            }
        };
        let sizes = match var("RTC_FANOUT_N") {
            None => vec![1, 10, 50, 100],
            Some(text) => {
                let mut sizes = text
                    .split(',')
                    .map(|n| {
                        n.trim()
                            .parse::<usize>()
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| format!("RTC_FANOUT_N: {n:?} is not a positive integer"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                // The ladder only ever adds viewers.
                sizes.sort_unstable();
                sizes.dedup();
                sizes
            }
        };
        let bin = var("SYNCREEL_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/syncreel"),
            PathBuf::from,
        );
        if !bin.is_file() {
            return Err(format!(
                "no server binary at {}; run `cargo build --release` first or set SYNCREEL_BIN",
                bin.display()
            ));
        }
        let janus = match var("RTC_FANOUT_JANUS") {
            Some(off) if off == "off" || off == "0" => None,
            Some(bin) => Some(bin),
            None => Some("janus".to_string()),
        };
        let janus_ip = match var("RTC_FANOUT_JANUS_IP") {
            None => None,
            Some(text) => Some(
                text.trim()
                    .parse::<Ipv4Addr>()
                    .map_err(|e| format!("RTC_FANOUT_JANUS_IP={text}: {e}"))?,
            ),
        };
        Ok(Settings {
            bin,
            sizes,
            window: Duration::from_secs(number("RTC_FANOUT_SECS", 15)? as u64),
            settle: Duration::from_secs(number("RTC_FANOUT_SETTLE_SECS", 3)? as u64),
            janus,
            janus_lib: var("RTC_FANOUT_JANUS_LIB").map(PathBuf::from),
            janus_ip,
            janus_first: match var("RTC_FANOUT_FIRST").as_deref().map(str::trim) {
                None | Some("syncreel") => false,
                Some("janus") => true,
                Some(other) => {
                    return Err(format!("RTC_FANOUT_FIRST={other}: say syncreel or janus"))
                }
            },
            client_threads: number("RTC_FANOUT_CLIENT_THREADS", 2)?,
            join_concurrency: number("RTC_FANOUT_JOIN_CONCURRENCY", 8)?,
        })
    }
}

/// Which server a ladder measures.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    SyncReel,
    Janus,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::SyncReel => "SyncReel",
            Side::Janus => "Janus",
        }
    }
}

/// Everything a viewer needs to join either side.
struct Ctx {
    server: SocketAddr,
    server_pid: u32,
    viewer_token: String,
    /// webrtc-rs set up for 127.0.0.1 (SyncReel) and for Janus's address.
    syncreel_api: API,
    janus: Option<JanusSide>,
}

async fn run(settings: &Settings) -> Result<(), String> {
    print_preamble(settings);

    let clip = ensure_clip().await?;
    let media_root = clip
        .parent()
        .ok_or("the clip has no directory")?
        .to_path_buf();
    let server = ServerProcess::start(&settings.bin, &media_root)?;
    println!("server: pid {} on {}", server.pid, server.addr);
    let session = create_session(server.addr).await?;
    let _host = Host::start_playing(server.addr, &session).await?;

    let syncreel_api = client_api(IpAddr::V4(Ipv4Addr::LOCALHOST), true)?;
    let forwarder = Arc::new(Forwarder::new().await?);
    let feeder = tokio::time::timeout(
        JOIN_TIMEOUT,
        join_syncreel(
            &syncreel_api,
            server.addr,
            &session.viewer,
            "janus feed",
            Some(forwarder.clone()),
        ),
    )
    .await
    .map_err(|_| "the feeder viewer did not receive media in time".to_string())??;
    println!(
        "SyncReel offers: {}",
        feeder
            .kinds
            .iter()
            .map(|k| k.name())
            .collect::<Vec<_>>()
            .join(", ")
    );

    let mut janus_blocked = None;
    let janus = match &settings.janus {
        None => {
            janus_blocked = Some("RTC_FANOUT_JANUS=off".to_string());
            None
        }
        Some(bin) => match JanusSide::start(settings, bin, &feeder.kinds, &forwarder).await {
            Ok(janus) => Some(janus),
            Err(err) => {
                eprintln!("rtc_fanout: Janus half skipped: {err}");
                janus_blocked = Some(err);
                None
            }
        },
    };
    let ctx = Arc::new(Ctx {
        server: server.addr,
        server_pid: server.pid,
        viewer_token: session.viewer.clone(),
        syncreel_api,
        janus,
    });

    let mut sides = vec![Side::SyncReel];
    if ctx.janus.is_some() {
        if settings.janus_first {
            sides.insert(0, Side::Janus);
        } else {
            sides.push(Side::Janus);
        }
    }
    let mut results = Vec::new();
    for side in sides {
        results.push((side, ladder(&ctx, settings, side, &feeder).await?));
    }
    print_comparison(&results, janus_blocked.as_deref());
    println!(
        "feeder: {} packets forwarded to Janus, {} not sent",
        forwarder.sent.load(Relaxed),
        forwarder.failed.load(Relaxed)
    );
    feeder.close().await;
    Ok(())
}

fn print_preamble(settings: &Settings) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("# SyncReel WebRTC fan-out, and Janus fed the same stream");
    println!();
    println!(
        "server: {}; viewer counts 0 (baseline), {:?}; window {} s after {} s settling; \
         {} tool threads; {} joins at once",
        settings.bin.display(),
        settings.sizes,
        settings.window.as_secs(),
        settings.settle.as_secs(),
        settings.client_threads,
        settings.join_concurrency,
    );
    println!(
        "machine: {cores} cores; loadavg {}; open files limit {}",
        loadavg(),
        open_files_limit()
    );
    println!(
        "NOTE: the viewers run in this process on the same cores as the servers; its CPU is \
         reported as `tool CPU`, and other processes' as `others`."
    );
    println!();
}

/// The test clip, rendered once into the temporary directory.
async fn ensure_clip() -> Result<PathBuf, String> {
    let path = std::env::temp_dir()
        .join("syncreel-bench-rtc-fanout")
        .join("clip.mov");
    if !path.is_file() {
        println!("rendering the 720p test clip at {} (once)…", path.display());
    }
    let spec = DemoClipSpec {
        width: CLIP_WIDTH,
        height: CLIP_HEIGHT,
        frames: CLIP_FRAMES,
        ..DemoClipSpec::default()
    };
    let target = path.clone();
    tokio::task::spawn_blocking(move || demo_clip::ensure(&target, &spec))
        .await
        .map_err(|e| format!("clip task: {e}"))?
        .map_err(|e| format!("cannot render the clip: {e}"))?;
    Ok(path)
}

// ---------------------------------------------------------------------------
// The ladder and its measurements

/// One rung of a ladder: a side with N viewers over one window.
#[derive(Clone)]
struct Rung {
    target: usize,
    joined: usize,
    failed: usize,
    join_secs: f64,
    window_secs: f64,
    /// CPU of the measured side's process, in cores (1.0 = one core busy).
    cpu: f64,
    /// SyncReel only: the CPU of its tokio threads, which carry signalling
    /// and every per-viewer RTP write, and not the decoder and encoder
    /// (GStreamer's threads and the player's).
    async_cpu: Option<f64>,
    /// CPU of the other server, which keeps running idle meanwhile.
    other_side_cpu: Option<f64>,
    tool_cpu: f64,
    /// Every other process on the machine, and the hypervisor's steal.
    others_cpu: f64,
    steal_cpu: f64,
    machine_cores: f64,
    rss: u64,
    traffic: Traffic,
    /// Viewers that received no new video packet in the window.
    stalled: usize,
    /// The feeder's own counters over the window (upstream of Janus).
    feeder: Traffic,
    loadavg: String,
}

/// Packet counters summed over viewers and differenced over a window.
#[derive(Clone, Copy, Default, Debug)]
struct Traffic {
    video: Counts,
    audio: Counts,
}

#[derive(Clone, Copy, Default, Debug)]
struct Counts {
    packets: u64,
    bytes: u64,
    unique: u64,
    expected: u64,
    late: u64,
    duplicates: u64,
}

impl Counts {
    fn since(&self, earlier: &Counts) -> Counts {
        Counts {
            packets: self.packets.saturating_sub(earlier.packets),
            bytes: self.bytes.saturating_sub(earlier.bytes),
            unique: self.unique.saturating_sub(earlier.unique),
            expected: self.expected.saturating_sub(earlier.expected),
            late: self.late.saturating_sub(earlier.late),
            duplicates: self.duplicates.saturating_sub(earlier.duplicates),
        }
    }

    fn add(&mut self, other: &Counts) {
        self.packets += other.packets;
        self.bytes += other.bytes;
        self.unique += other.unique;
        self.expected += other.expected;
        self.late += other.late;
        self.duplicates += other.duplicates;
    }

    fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.unique)
    }

    fn loss_pct(&self) -> f64 {
        if self.expected == 0 {
            f64::NAN
        } else {
            self.lost() as f64 * 100.0 / self.expected as f64
        }
    }
}

impl Traffic {
    fn since(&self, earlier: &Traffic) -> Traffic {
        Traffic {
            video: self.video.since(&earlier.video),
            audio: self.audio.since(&earlier.audio),
        }
    }

    fn add(&mut self, other: &Traffic) {
        self.video.add(&other.video);
        self.audio.add(&other.audio);
    }
}

async fn ladder(
    ctx: &Arc<Ctx>,
    settings: &Settings,
    side: Side,
    feeder: &Viewer,
) -> Result<Vec<Rung>, String> {
    println!();
    println!("## {} ladder", side.name());
    println!();
    println!("{}", RUNG_HEADER);
    println!("{}", RUNG_RULE);
    let mut viewers: Vec<Viewer> = Vec::new();
    let mut failed = 0;
    let mut rungs: Vec<Rung> = Vec::new();
    let mut next_id = 0usize;
    for target in std::iter::once(0).chain(settings.sizes.iter().copied()) {
        let started = Instant::now();
        let need = target.saturating_sub(viewers.len());
        let (mut joined, errors) = join_many(ctx, side, need, &mut next_id, settings).await;
        failed += errors.len();
        if let Some(first) = errors.first() {
            eprintln!(
                "{} N={target}: {} of {need} viewers failed to join; first error: {first}",
                side.name(),
                errors.len()
            );
        }
        viewers.append(&mut joined);
        let join_secs = started.elapsed().as_secs_f64();
        tokio::time::sleep(settings.settle).await;
        let rung = measure(ctx, side, &viewers, feeder, settings.window, target).await?;
        let rung = Rung {
            failed,
            join_secs,
            ..rung
        };
        println!("{}", rung_row(&rung, rungs.first()));
        rungs.push(rung);
    }
    // Close this side's viewers before the other side is measured.
    let mut closing = JoinSet::new();
    for viewer in viewers {
        closing.spawn(viewer.close());
    }
    let drained = tokio::time::timeout(CLOSE_TIMEOUT * 2, async {
        while closing.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        closing.abort_all();
    }
    // Let the server forget them (DTLS close, task teardown) before the
    // other side's baseline is read.
    tokio::time::sleep(settings.settle).await;
    Ok(rungs)
}

/// Joins `need` viewers on `side`, at most `join_concurrency` at once.
async fn join_many(
    ctx: &Arc<Ctx>,
    side: Side,
    need: usize,
    next_id: &mut usize,
    settings: &Settings,
) -> (Vec<Viewer>, Vec<String>) {
    let permits = Arc::new(Semaphore::new(settings.join_concurrency));
    let mut joins = JoinSet::new();
    for _ in 0..need {
        *next_id += 1;
        let id = *next_id;
        let ctx = ctx.clone();
        let permits = permits.clone();
        joins.spawn(async move {
            let _permit = permits.acquire_owned().await.map_err(|e| e.to_string())?;
            let name = format!("rtc-fanout {id}");
            let joining = async {
                match side {
                    Side::SyncReel => {
                        join_syncreel(
                            &ctx.syncreel_api,
                            ctx.server,
                            &ctx.viewer_token,
                            &name,
                            None,
                        )
                        .await
                    }
                    Side::Janus => match &ctx.janus {
                        Some(janus) => janus.join().await,
                        None => Err("Janus is not running".to_string()),
                    },
                }
            };
            tokio::time::timeout(JOIN_TIMEOUT, joining)
                .await
                .map_err(|_| format!("no media within {JOIN_TIMEOUT:?}"))?
        });
    }
    let mut viewers = Vec::new();
    let mut errors = Vec::new();
    while let Some(joined) = joins.join_next().await {
        match joined {
            Ok(Ok(viewer)) => viewers.push(viewer),
            Ok(Err(err)) => errors.push(err),
            Err(err) => errors.push(format!("join task: {err}")),
        }
    }
    (viewers, errors)
}

/// One window: CPU of every process involved, the side's RSS, and every
/// viewer's counters, before and after.
async fn measure(
    ctx: &Ctx,
    side: Side,
    viewers: &[Viewer],
    feeder: &Viewer,
    window: Duration,
    target: usize,
) -> Result<Rung, String> {
    let janus_pid = ctx.janus.as_ref().map(|j| j.process.pid);
    let (pid, other_pid) = match side {
        Side::SyncReel => (ctx.server_pid, janus_pid),
        Side::Janus => (
            janus_pid.ok_or("Janus is not running")?,
            Some(ctx.server_pid),
        ),
    };
    let me = std::process::id();
    let async_threads = |side: Side| match side {
        Side::SyncReel => Some(threads_cpu(ctx.server_pid, TOKIO_THREADS)),
        Side::Janus => None,
    };
    let counters = |viewers: &[Viewer]| -> (Traffic, Vec<u64>) {
        let mut total = Traffic::default();
        let mut video = Vec::with_capacity(viewers.len());
        for viewer in viewers {
            let traffic = viewer.stats.traffic();
            video.push(traffic.video.unique);
            total.add(&traffic);
        }
        (total, video)
    };

    let started = Instant::now();
    let machine_before = MachineTicks::read()?;
    let cpu_before = (
        process_cpu(pid)?,
        other_pid.map(process_cpu).transpose()?,
        process_cpu(me)?,
    );
    let async_before = async_threads(side);
    let (traffic_before, video_before) = counters(viewers);
    let feeder_before = feeder.stats.traffic();

    tokio::time::sleep(window).await;

    let (traffic_after, video_after) = counters(viewers);
    let feeder_after = feeder.stats.traffic();
    let cpu_after = (
        process_cpu(pid)?,
        other_pid.map(process_cpu).transpose()?,
        process_cpu(me)?,
    );
    let async_after = async_threads(side);
    let machine = MachineTicks::read()?.since(&machine_before);
    let window_secs = started.elapsed().as_secs_f64();
    let rss = settled_rss(pid).await?;

    let cores = |d: Duration| d.as_secs_f64() / window_secs;
    let cpu = cpu_after.0.saturating_sub(cpu_before.0);
    let other_side = match (cpu_after.1, cpu_before.1) {
        (Some(after), Some(before)) => Some(after.saturating_sub(before)),
        _ => None,
    };
    let tool = cpu_after.2.saturating_sub(cpu_before.2);
    let ours = cpu + other_side.unwrap_or_default() + tool;
    let stalled = video_before
        .iter()
        .zip(&video_after)
        .filter(|(before, after)| after <= before)
        .count();
    Ok(Rung {
        target,
        joined: viewers.len(),
        failed: 0,
        join_secs: 0.0,
        window_secs,
        cpu: cores(cpu),
        async_cpu: match (async_after, async_before) {
            (Some(after), Some(before)) => Some(cores(after?.saturating_sub(before?))),
            _ => None,
        },
        other_side_cpu: other_side.map(cores),
        tool_cpu: cores(tool),
        others_cpu: cores(machine.busy.saturating_sub(ours)),
        steal_cpu: cores(machine.steal),
        machine_cores: cores(machine.total()),
        rss,
        traffic: traffic_after.since(&traffic_before),
        stalled,
        feeder: feeder_after.since(&feeder_before),
        loadavg: loadavg(),
    })
}

const RUNG_HEADER: &str = "| N | joined (failed) | join s | server CPU % | marginal CPU %/viewer \
    | tokio threads CPU % | marginal tokio %/viewer | RSS MB | marginal RSS/viewer KB | video pkt/s/viewer | audio pkt/s/viewer \
    | kbit/s/viewer | video loss % | audio loss % | late / dup pkts | stalled \
    | other server CPU % | tool CPU % | others CPU % | steal % | feed loss % | loadavg |";
const RUNG_RULE: &str =
    "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|";

/// A rung as a table row; `baseline` is the N = 0 rung of the same side.
fn rung_row(rung: &Rung, baseline: Option<&Rung>) -> String {
    let per_viewer = |value: f64| {
        if rung.joined == 0 {
            f64::NAN
        } else {
            value / rung.joined as f64
        }
    };
    let rate = |count: u64| per_viewer(count as f64 / rung.window_secs);
    let marginal_cpu = baseline.map_or(f64::NAN, |b| per_viewer((rung.cpu - b.cpu) * 100.0));
    let marginal_async = match (rung.async_cpu, baseline.and_then(|b| b.async_cpu)) {
        (Some(now), Some(base)) => per_viewer((now - base) * 100.0),
        _ => f64::NAN,
    };
    let marginal_rss = baseline.map_or(f64::NAN, |b| {
        per_viewer((rung.rss as f64 - b.rss as f64) / 1024.0)
    });
    let t = &rung.traffic;
    let kbits = rate((t.video.bytes + t.audio.bytes) * 8) / 1000.0;
    let mut feed = rung.feeder.video;
    feed.add(&rung.feeder.audio);
    format!(
        "| {} | {} ({}) | {:.1} | {:.1} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} \
         | {} / {} | {} | {} | {:.1} | {:.1} | {:.1} | {} | {} |",
        rung.target,
        rung.joined,
        rung.failed,
        rung.join_secs,
        rung.cpu * 100.0,
        num(marginal_cpu, 2),
        num(rung.async_cpu.map_or(f64::NAN, |c| c * 100.0), 1),
        num(marginal_async, 2),
        rung.rss as f64 / 1e6,
        num(marginal_rss, 0),
        num(rate(t.video.packets), 0),
        num(rate(t.audio.packets), 0),
        num(kbits, 0),
        pct(t.video.loss_pct()),
        pct(t.audio.loss_pct()),
        t.video.late + t.audio.late,
        t.video.duplicates + t.audio.duplicates,
        rung.stalled,
        rung.other_side_cpu
            .map_or("–".to_string(), |c| format!("{:.1}", c * 100.0)),
        rung.tool_cpu * 100.0,
        rung.others_cpu * 100.0,
        rung.steal_cpu * 100.0,
        pct(feed.loss_pct()),
        rung.loadavg,
    )
}

/// A figure, or a dash when there is none (no viewers, no baseline).
fn num(value: f64, digits: usize) -> String {
    if value.is_finite() {
        format!("{value:.digits$}")
    } else {
        "–".to_string()
    }
}

/// A percentage, or a dash when there was nothing to count.
fn pct(value: f64) -> String {
    if value.is_nan() {
        "–".to_string()
    } else {
        format!("{value:.3}")
    }
}

fn print_comparison(results: &[(Side, Vec<Rung>)], janus_blocked: Option<&str>) {
    println!();
    println!("## Side by side: server CPU per viewer");
    println!();
    let find = |side: Side| {
        results
            .iter()
            .find(|(s, _)| *s == side)
            .map(|(_, rungs)| rungs.as_slice())
    };
    let Some(syncreel) = find(Side::SyncReel) else {
        return;
    };
    let janus = find(Side::Janus);
    if let Some(reason) = janus_blocked {
        println!("Janus was not measured: {reason}");
        println!();
    }
    println!(
        "| N | SyncReel CPU % | Janus CPU % | SyncReel marginal %/viewer | Janus marginal %/viewer \
         | ratio SyncReel/Janus (marginal) | SyncReel tokio marginal %/viewer | ratio (tokio) \
         | SyncReel marginal µs/pkt | Janus marginal µs/pkt | ratio (µs/pkt) \
         | SyncReel raw %/viewer | Janus raw %/viewer \
         | SyncReel RSS KB/viewer | Janus RSS KB/viewer | SyncReel video loss % | Janus video loss % \
         | machine busy % |"
    );
    println!("|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    let marginal = |rungs: &[Rung], rung: &Rung| {
        let base = &rungs[0];
        if rung.joined == 0 {
            f64::NAN
        } else {
            (rung.cpu - base.cpu) * 100.0 / rung.joined as f64
        }
    };
    let marginal_rss = |rungs: &[Rung], rung: &Rung| {
        let base = &rungs[0];
        if rung.joined == 0 {
            f64::NAN
        } else {
            (rung.rss as f64 - base.rss as f64) / 1024.0 / rung.joined as f64
        }
    };
    let marginal_tokio = |rung: &Rung| match (rung.async_cpu, syncreel[0].async_cpu) {
        (Some(now), Some(base)) if rung.joined > 0 => (now - base) * 100.0 / rung.joined as f64,
        _ => f64::NAN,
    };
    // Per packet delivered to the viewers: fair where one side delivered
    // fewer packets than the other (a saturated machine, dropped frames).
    let per_packet = |rungs: &[Rung], rung: &Rung| {
        let t = &rung.traffic;
        let packets = t.video.packets + t.audio.packets;
        if packets == 0 {
            f64::NAN
        } else {
            (rung.cpu - rungs[0].cpu) * rung.window_secs * 1e6 / packets as f64
        }
    };
    let raw = |rung: &Rung| {
        if rung.joined == 0 {
            f64::NAN
        } else {
            rung.cpu * 100.0 / rung.joined as f64
        }
    };
    let cell = |v: Option<f64>, digits: usize| match v {
        Some(v) if v.is_finite() => format!("{v:.digits$}"),
        _ => "–".to_string(),
    };
    for rung in syncreel {
        let j = janus.and_then(|rungs| {
            rungs
                .iter()
                .find(|r| r.target == rung.target)
                .map(|r| (rungs, r))
        });
        let s_marginal = marginal(syncreel, rung);
        let j_marginal = j.map(|(rungs, r)| marginal(rungs, r));
        let ratio = j_marginal.map(|jm| s_marginal / jm);
        let s_tokio = marginal_tokio(rung);
        let s_packet = per_packet(syncreel, rung);
        let j_packet = j.map(|(rungs, r)| per_packet(rungs, r));
        let busy = |r: &Rung| {
            (r.cpu + r.other_side_cpu.unwrap_or(0.0) + r.tool_cpu + r.others_cpu) * 100.0
                / r.machine_cores.max(f64::EPSILON)
        };
        println!(
            "| {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} \
             | {} | {:.0} / {} |",
            rung.target,
            rung.cpu * 100.0,
            cell(j.map(|(_, r)| r.cpu * 100.0), 1),
            cell(Some(s_marginal), 2),
            cell(j_marginal, 2),
            cell(ratio, 2),
            cell(Some(s_tokio), 2),
            cell(j_marginal.map(|jm| s_tokio / jm), 2),
            cell(Some(s_packet), 1),
            cell(j_packet, 1),
            cell(j_packet.map(|jp| s_packet / jp), 2),
            cell(Some(raw(rung)), 2),
            cell(j.map(|(_, r)| raw(r)), 2),
            cell(Some(marginal_rss(syncreel, rung)), 0),
            cell(j.map(|(rungs, r)| marginal_rss(rungs, r)), 0),
            pct(rung.traffic.video.loss_pct()),
            j.map_or("–".to_string(), |(_, r)| pct(r.traffic.video.loss_pct())),
            busy(rung),
            cell(j.map(|(_, r)| busy(r)), 0),
        );
    }
    println!();
    println!(
        "CPU %: of one core, utime + stime from /proc/<pid>/stat over the window. Marginal: \
         (CPU(N) − CPU(0)) / N, where N = 0 is the same server with no viewers of its own \
         (SyncReel still decodes, encodes and feeds one peer; Janus still ingests the RTP \
         feed). Raw: CPU(N) / N, which for SyncReel includes the encoder. The ratio is taken \
         on the marginal cost. Tokio: the same from SyncReel's tokio threads only (no decoder \
         or encoder, so less noise). µs/pkt: the marginal CPU over the RTP packets the viewers \
         received in the window. RSS per viewer: (RSS(N) − RSS(0)) / N. Machine busy: the \
         SyncReel rung's / the Janus rung's share of all cores."
    );
}

// ---------------------------------------------------------------------------
// Viewers

/// What kind of media a track or m-line carries.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Video,
    Audio,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Audio => "audio",
        }
    }

    fn of(track: &TrackRemote) -> Option<Kind> {
        match track.kind() {
            RTPCodecType::Video => Some(Kind::Video),
            RTPCodecType::Audio => Some(Kind::Audio),
            _ => None,
        }
    }
}

/// The media m-lines of an SDP, in order.
fn sdp_kinds(sdp: &str) -> Vec<Kind> {
    sdp.lines()
        .filter_map(|line| {
            if line.starts_with("m=video") {
                Some(Kind::Video)
            } else if line.starts_with("m=audio") {
                Some(Kind::Audio)
            } else {
                None
            }
        })
        .collect()
}

/// One viewer on either side: a receive-only peer and its counters.
struct Viewer {
    pc: Arc<RTCPeerConnection>,
    stats: Arc<PeerStats>,
    /// The m-lines it was offered.
    kinds: Vec<Kind>,
    /// Tells the signalling task to hang up.
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    /// Janus keeps a handle per viewer, detached on close.
    janus_handle: Option<(Arc<JanusApi>, u64)>,
}

impl Viewer {
    async fn close(self) {
        let _ = self.stop.send(true);
        if let Some((api, handle)) = &self.janus_handle {
            let _ = api.detach(*handle).await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.pc.close()).await;
        // The signalling task hangs up on its own and the track readers end
        // with the peer; whatever is still running after a moment is cut.
        for task in self.tasks {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }
}

/// Per-track counters of one viewer, written by its track readers.
#[derive(Default)]
struct PeerStats {
    tracks: Mutex<Vec<Arc<TrackStats>>>,
    /// Signalled when the first video packet arrives.
    first_video: tokio::sync::Notify,
}

impl PeerStats {
    fn add_track(&self, kind: Kind) -> Arc<TrackStats> {
        let stats = Arc::new(TrackStats {
            kind,
            ..TrackStats::default()
        });
        self.tracks.lock().expect("stats lock").push(stats.clone());
        stats
    }

    fn traffic(&self) -> Traffic {
        let mut traffic = Traffic::default();
        for track in self.tracks.lock().expect("stats lock").iter() {
            let counts = track.counts();
            match track.kind {
                Kind::Video => traffic.video.add(&counts),
                Kind::Audio => traffic.audio.add(&counts),
            }
        }
        traffic
    }

    fn has_video(&self) -> bool {
        self.traffic().video.packets > 0
    }
}

/// One remote track's counters, published with relaxed stores: a reader
/// that sees a slightly stale mix of them is off by a packet or two over a
/// window of thousands.
struct TrackStats {
    kind: Kind,
    packets: AtomicU64,
    bytes: AtomicU64,
    unique: AtomicU64,
    expected: AtomicU64,
    late: AtomicU64,
    duplicates: AtomicU64,
}

impl Default for TrackStats {
    fn default() -> Self {
        TrackStats {
            kind: Kind::Video,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            unique: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            late: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
        }
    }
}

impl TrackStats {
    fn counts(&self) -> Counts {
        Counts {
            packets: self.packets.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
            unique: self.unique.load(Relaxed),
            expected: self.expected.load(Relaxed),
            late: self.late.load(Relaxed),
            duplicates: self.duplicates.load(Relaxed),
        }
    }
}

/// Sequence-number bookkeeping for one track.
struct SeqTracker {
    first: Option<i64>,
    highest: i64,
    /// The unwrapped sequence number last stored in each slot.
    seen: Vec<i64>,
    unique: u64,
    late: u64,
    duplicates: u64,
}

impl SeqTracker {
    fn new() -> SeqTracker {
        SeqTracker {
            first: None,
            highest: 0,
            seen: vec![-1; SEQ_MEMORY],
            unique: 0,
            late: 0,
            duplicates: 0,
        }
    }

    fn slot(seq: i64) -> usize {
        (seq.rem_euclid(SEQ_MEMORY as i64)) as usize
    }

    /// The 16-bit number placed next to the highest seen: RTP numbers wrap
    /// every 65,536 packets, four minutes of 720p.
    fn unwrap(&self, seq: u16) -> i64 {
        let h = self.highest;
        let base = h - h.rem_euclid(0x1_0000);
        [base - 0x1_0000, base, base + 0x1_0000]
            .into_iter()
            .map(|b| b + i64::from(seq))
            .min_by_key(|c| (c - h).abs())
            .expect("three candidates")
    }

    fn push(&mut self, seq: u16) {
        let Some(first) = self.first else {
            let seq = i64::from(seq);
            self.first = Some(seq);
            self.highest = seq;
            self.seen[Self::slot(seq)] = seq;
            self.unique = 1;
            return;
        };
        let seq = self.unwrap(seq);
        if seq > self.highest {
            self.highest = seq;
            self.seen[Self::slot(seq)] = seq;
            self.unique += 1;
        } else if seq >= first && self.highest - seq < SEQ_MEMORY as i64 {
            if self.seen[Self::slot(seq)] == seq {
                self.duplicates += 1;
            } else {
                self.seen[Self::slot(seq)] = seq;
                self.unique += 1;
                self.late += 1;
            }
        } else {
            // Older than anything remembered: it cannot fill a gap that is
            // still counted, so it counts as a duplicate.
            self.duplicates += 1;
        }
    }

    fn expected(&self) -> u64 {
        self.first
            .map_or(0, |first| (self.highest - first + 1) as u64)
    }
}

/// Reads one remote track until its peer closes, counting, and forwarding
/// to Janus when this is the feeder.
async fn read_track(
    track: Arc<TrackRemote>,
    stats: Arc<TrackStats>,
    peer: Arc<PeerStats>,
    forward: Option<Arc<Forwarder>>,
) {
    let mut seq = SeqTracker::new();
    let kind = stats.kind;
    while let Ok((mut packet, _)) = track.read_rtp().await {
        seq.push(packet.header.sequence_number);
        let packets = stats.packets.fetch_add(1, Relaxed);
        stats.bytes.fetch_add(packet.payload.len() as u64, Relaxed);
        stats.unique.store(seq.unique, Relaxed);
        stats.expected.store(seq.expected(), Relaxed);
        stats.late.store(seq.late, Relaxed);
        stats.duplicates.store(seq.duplicates, Relaxed);
        if packets == 0 && kind == Kind::Video {
            peer.first_video.notify_one();
        }
        if let Some(forward) = &forward {
            forward.send(kind, &mut packet);
        }
    }
}

/// A webrtc-rs API for receive-only viewers whose ICE uses `ip` alone.
/// Codecs are registered by hand so that no RTX is negotiated: webrtc-rs
/// 0.17 keeps repair packets from the application, and a sender that
/// retransmits over RTX would then look lossy.
fn client_api(ip: IpAddr, loopback: bool) -> Result<API, String> {
    let fail = |e: webrtc::Error| e.to_string();
    let mut media = MediaEngine::default();
    let feedback = |typ: &str, parameter: &str| RTCPFeedback {
        typ: typ.to_owned(),
        parameter: parameter.to_owned(),
    };
    let video_feedback = vec![
        feedback("goog-remb", ""),
        feedback("ccm", "fir"),
        feedback("nack", ""),
        feedback("nack", "pli"),
    ];
    let codecs = [
        (MIME_TYPE_VP8, 90_000, 0, "", 96, RTPCodecType::Video),
        (
            MIME_TYPE_H264,
            90_000,
            0,
            "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
            102,
            RTPCodecType::Video,
        ),
        (
            MIME_TYPE_OPUS,
            48_000,
            2,
            "minptime=10;useinbandfec=1",
            111,
            RTPCodecType::Audio,
        ),
    ];
    for (mime, clock_rate, channels, fmtp, payload_type, kind) in codecs {
        media
            .register_codec(
                RTCRtpCodecParameters {
                    capability: RTCRtpCodecCapability {
                        mime_type: mime.to_owned(),
                        clock_rate,
                        channels,
                        sdp_fmtp_line: fmtp.to_owned(),
                        rtcp_feedback: if kind == RTPCodecType::Video {
                            video_feedback.clone()
                        } else {
                            vec![]
                        },
                    },
                    payload_type,
                    ..Default::default()
                },
                kind,
            )
            .map_err(fail)?;
    }
    let interceptors = register_default_interceptors(Registry::new(), &mut media).map_err(fail)?;
    let mut settings = SettingEngine::default();
    settings.set_include_loopback_candidate(loopback);
    settings.set_ip_filter(Box::new(move |candidate| candidate == ip));
    settings.set_network_types(vec![NetworkType::Udp4]);
    // No multicast DNS: one socket fewer per peer, and nothing leaves
    // the machine.
    settings.set_ice_multicast_dns_mode(MulticastDnsMode::Disabled);
    Ok(APIBuilder::new()
        .with_media_engine(media)
        .with_interceptor_registry(interceptors)
        .with_setting_engine(settings)
        .build())
}

/// A new receive-only peer whose tracks are read into `stats`.
async fn new_peer(
    api: &API,
    stats: &Arc<PeerStats>,
    forward: Option<Arc<Forwarder>>,
) -> Result<(Arc<RTCPeerConnection>, Arc<Mutex<Vec<JoinHandle<()>>>>), String> {
    let pc = Arc::new(
        api.new_peer_connection(RTCConfiguration::default())
            .await
            .map_err(|e| format!("new peer: {e}"))?,
    );
    let readers: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    let on_track_stats = stats.clone();
    let on_track_readers = readers.clone();
    pc.on_track(Box::new(move |track, _, _| {
        let stats = on_track_stats.clone();
        let readers = on_track_readers.clone();
        let forward = forward.clone();
        Box::pin(async move {
            let Some(kind) = Kind::of(&track) else {
                return;
            };
            let track_stats = stats.add_track(kind);
            let reader = tokio::spawn(read_track(track, track_stats, stats, forward));
            readers.lock().expect("readers lock").push(reader);
        })
    }));
    Ok((pc, readers))
}

/// Waits for this viewer's first video packet.
async fn first_video(stats: &PeerStats) {
    // `notify_one` leaves a permit when nobody waits yet, so the first
    // packet is never missed; the check covers a second video track.
    while !stats.has_video() {
        let _ =
            tokio::time::timeout(Duration::from_millis(200), stats.first_video.notified()).await;
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A SyncReel viewer: the WebSocket participant, `rtcStart`, the server's
/// offer, our answer, candidates both ways (ours trickled after the
/// answer, the server's filtered to 127.0.0.1), then the first packet.
async fn join_syncreel(
    api: &API,
    addr: SocketAddr,
    token: &str,
    name: &str,
    forward: Option<Arc<Forwarder>>,
) -> Result<Viewer, String> {
    let (socket, _welcome) = ws_join(addr, token, name).await?;
    let (mut sink, mut stream) = socket.split();
    let stats = Arc::new(PeerStats::default());
    let (pc, readers) = new_peer(api, &stats, forward).await?;
    let (ours_tx, ours_rx) = mpsc::unbounded_channel();
    pc.on_ice_candidate(Box::new(move |candidate| {
        if let Some(init) = candidate.and_then(|c| c.to_json().ok()) {
            let _ = ours_tx.send(init);
        }
        Box::pin(async {})
    }));

    send_json(&mut sink, &json!({"type": "rtcStart"})).await?;
    let mut early = Vec::new();
    let offer = loop {
        let message = next_json(&mut stream).await?;
        match message["type"].as_str() {
            Some("rtcOffer") => break message,
            Some("rtcCandidate") => early.push(message),
            Some("error") => return Err(format!("rtcStart refused: {message}")),
            _ => {}
        }
    };
    let offer_sdp = offer["sdp"]
        .as_str()
        .ok_or("offer without sdp")?
        .to_string();
    let kinds = sdp_kinds(&offer_sdp);
    pc.set_remote_description(
        RTCSessionDescription::offer(offer_sdp).map_err(|e| format!("offer: {e}"))?,
    )
    .await
    .map_err(|e| format!("set offer: {e}"))?;
    let answer = pc
        .create_answer(None)
        .await
        .map_err(|e| format!("answer: {e}"))?;
    pc.set_local_description(answer.clone())
        .await
        .map_err(|e| format!("set answer: {e}"))?;
    send_json(&mut sink, &json!({"type": "rtcAnswer", "sdp": answer.sdp})).await?;
    for message in early {
        add_server_candidate(&pc, &message).await;
    }
    let (stop, stopped) = watch::channel(false);
    let signalling = tokio::spawn(syncreel_signalling(
        pc.clone(),
        sink,
        stream,
        ours_rx,
        stopped,
    ));
    let mut tasks = vec![signalling];
    first_video(&stats).await;
    tasks.extend(readers.lock().expect("readers lock").drain(..));
    Ok(Viewer {
        pc,
        stats,
        kinds,
        stop,
        tasks,
        janus_handle: None,
    })
}

/// Keeps a SyncReel viewer's socket drained for the rest of its life,
/// trickling candidates both ways, until told to stop.
async fn syncreel_signalling(
    pc: Arc<RTCPeerConnection>,
    mut sink: SplitSink<Socket, Message>,
    mut stream: SplitStream<Socket>,
    mut ours: mpsc::UnboundedReceiver<RTCIceCandidateInit>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            Some(init) = ours.recv() => {
                let candidate = json!({
                    "type": "rtcCandidate",
                    "candidate": {
                        "candidate": init.candidate,
                        "sdpMid": init.sdp_mid,
                        "sdpMLineIndex": init.sdp_mline_index,
                    }
                });
                if send_json(&mut sink, &candidate).await.is_err() {
                    break;
                }
            }
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if text.contains("\"rtcCandidate\"") {
                        if let Ok(message) = serde_json::from_str::<Value>(&text) {
                            add_server_candidate(&pc, &message).await;
                        }
                    }
                }
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(1), sink.close()).await;
}

/// Applies one of the server's trickled candidates if it is on 127.0.0.1:
/// its other addresses would only add failing checks.
async fn add_server_candidate(pc: &RTCPeerConnection, message: &Value) {
    let c = &message["candidate"];
    let Some(candidate) = c["candidate"].as_str() else {
        return;
    };
    if candidate.split_whitespace().nth(4) != Some("127.0.0.1") {
        return;
    }
    let _ = pc
        .add_ice_candidate(RTCIceCandidateInit {
            candidate: candidate.to_string(),
            sdp_mid: c["sdpMid"].as_str().map(str::to_string),
            sdp_mline_index: c["sdpMLineIndex"].as_u64().map(|i| i as u16),
            username_fragment: None,
        })
        .await;
}

// ---------------------------------------------------------------------------
// SyncReel: the server process, the session and the host

/// The server as a child process. Dropping it kills the process and
/// removes its data directory.
struct ServerProcess {
    child: Child,
    pid: u32,
    addr: SocketAddr,
    data_dir: PathBuf,
}

impl ServerProcess {
    fn start(bin: &Path, media_root: &Path) -> Result<ServerProcess, String> {
        let data_dir =
            std::env::temp_dir().join(format!("syncreel-rtc-fanout-{}", std::process::id()));
        let mut command = Command::new(bin);
        command
            .arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .env("SYNCREEL_MEDIA__ROOT", media_root)
            .env("SYNCREEL_LIMITS__MAX_CONNECTIONS_PER_IP", "30000")
            .env("SYNCREEL_LIMITS__HELLO_TIMEOUT_MS", "600000")
            .env("SYNCREEL_SERVER__ADMIN_TOKEN", BENCH_OPERATOR)
            .env("SYNCREEL_MEDIA__STREAM_WIDTH", CLIP_WIDTH.to_string())
            .env("SYNCREEL_MEDIA__STREAM_HEIGHT", CLIP_HEIGHT.to_string())
            .env("SYNCREEL_MEDIA__CODEC", "vp8")
            .env("SYNCREEL_RTC__INCLUDE_LOOPBACK", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if std::env::var_os("RUST_LOG").is_none() {
            command.env("RUST_LOG", "syncreel=warn");
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let pid = child.id();
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut server = ServerProcess {
            child,
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir,
        };
        // Read the address, then keep draining so the server never blocks
        // on a full pipe.
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut addr_tx = Some(addr_tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.trim().strip_prefix("listening on http://") {
                    if let Some(tx) = addr_tx.take() {
                        let _ = tx.send(rest.to_string());
                    }
                }
            }
        });
        let shown = addr_rx
            .recv_timeout(SERVER_START_TIMEOUT)
            .map_err(|_| "the server did not print `listening on http://…`".to_string())?;
        server.addr = shown
            .parse()
            .map_err(|e| format!("bad listening address {shown:?}: {e}"))?;
        Ok(server)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

struct Session {
    host: String,
    viewer: String,
    duration_frames: i64,
}

/// The operator token the bench's server is started with.
const BENCH_OPERATOR: &str = "bench-operator-token";

async fn create_session(addr: SocketAddr) -> Result<Session, String> {
    let body = json!({"title": "rtc fan-out", "media": "clip.mov"});
    // Probing the media can take a while on a busy machine.
    let (status, created) = http_json(
        addr,
        "POST",
        "/api/sessions",
        Some(&body),
        Duration::from_secs(60),
    )
    .await?;
    if status != 201 {
        return Err(format!("POST /api/sessions answered {status}: {created}"));
    }
    let token = |role: &str| {
        created["links"]
            .as_array()
            .and_then(|links| links.iter().find(|l| l["role"] == role))
            .and_then(|l| l["token"].as_str())
            .map(str::to_string)
            .ok_or_else(|| format!("no {role} link in {created}"))
    };
    Ok(Session {
        host: token("host")?,
        viewer: token("viewer")?,
        duration_frames: created["session"]["durationFrames"]
            .as_i64()
            .ok_or("no durationFrames")?,
    })
}

/// The driving host, kept connected (and its socket drained) for the run.
struct Host {
    drain: JoinHandle<()>,
}

impl Host {
    /// Loops the whole clip and plays it, so the stream never reaches an
    /// end while it is measured.
    async fn start_playing(addr: SocketAddr, session: &Session) -> Result<Host, String> {
        let (socket, welcome) = ws_join(addr, &session.host, "rtc-fanout host").await?;
        println!("stream: {}", welcome["media"]);
        let (mut sink, mut stream) = socket.split();
        let last = session.duration_frames - 1;
        for command in [
            json!({"type": "loopIn", "frame": 0}),
            json!({"type": "loopOut", "frame": last}),
            json!({"type": "seek", "frame": 0}),
            json!({"type": "play"}),
        ] {
            send_json(&mut sink, &command).await?;
        }
        tokio::time::timeout(PLAY_TIMEOUT, async {
            loop {
                let message = next_json(&mut stream).await?;
                if message["type"] == "transport" && message["cause"] == "play" {
                    return Ok(());
                }
                if message["type"] == "error" {
                    return Err(format!("the host was refused: {message}"));
                }
            }
        })
        .await
        .map_err(|_| "the play command was not confirmed".to_string())??;
        let drain = tokio::spawn(async move {
            // The sink is held here so that the socket stays open.
            let _sink = sink;
            while let Some(Ok(_)) = stream.next().await {}
        });
        Ok(Host { drain })
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

/// Connects, says hello and waits for the welcome.
async fn ws_join(addr: SocketAddr, token: &str, name: &str) -> Result<(Socket, Value), String> {
    let config = WebSocketConfig::default()
        .read_buffer_size(16 * 1024)
        .write_buffer_size(0);
    let (socket, _) = tokio::time::timeout(
        HTTP_TIMEOUT,
        tokio_tungstenite::connect_async_with_config(format!("ws://{addr}/ws"), Some(config), true),
    )
    .await
    .map_err(|_| "WebSocket connect timed out".to_string())?
    .map_err(|e| format!("WebSocket connect: {e}"))?;
    let (mut sink, mut stream) = socket.split();
    let hello = json!({"type": "hello", "protocol": 1, "token": token, "name": name});
    send_json(&mut sink, &hello).await?;
    let welcome = loop {
        let message = next_json(&mut stream).await?;
        match message["type"].as_str() {
            Some("welcome") => break message,
            Some("error") => return Err(format!("hello refused: {message}")),
            _ => {}
        }
    };
    let socket = sink.reunite(stream).map_err(|e| format!("reunite: {e}"))?;
    Ok((socket, welcome))
}

async fn send_json(sink: &mut SplitSink<Socket, Message>, value: &Value) -> Result<(), String> {
    tokio::time::timeout(HTTP_TIMEOUT, sink.send(Message::text(value.to_string())))
        .await
        .map_err(|_| "WebSocket send timed out".to_string())?
        .map_err(|e| format!("WebSocket send: {e}"))
}

/// The next JSON text message, within [`JOIN_TIMEOUT`].
async fn next_json(stream: &mut SplitStream<Socket>) -> Result<Value, String> {
    let deadline = tokio::time::Instant::now() + JOIN_TIMEOUT;
    loop {
        let frame = tokio::time::timeout_at(deadline, stream.next())
            .await
            .map_err(|_| "timed out waiting for the server".to_string())?;
        match frame {
            Some(Ok(Message::Text(text))) => {
                return serde_json::from_str(&text).map_err(|e| format!("bad JSON: {e}"))
            }
            Some(Ok(Message::Close(frame))) => return Err(format!("closed: {frame:?}")),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => return Err("closed".into()),
        }
    }
}

// ---------------------------------------------------------------------------
// Janus

/// Janus running with a mountpoint fed by the forwarder, and the API
/// viewers attach through.
struct JanusSide {
    process: JanusProcess,
    api: Arc<JanusApi>,
    peers: API,
    poller: JoinHandle<()>,
}

impl Drop for JanusSide {
    fn drop(&mut self) {
        self.poller.abort();
    }
}

impl JanusSide {
    async fn start(
        settings: &Settings,
        bin: &str,
        kinds: &[Kind],
        forwarder: &Forwarder,
    ) -> Result<JanusSide, String> {
        let ip = match settings.janus_ip {
            Some(ip) => ip,
            None => default_route_ip()?,
        };
        let lib = match &settings.janus_lib {
            Some(lib) => lib.clone(),
            None => find_janus_lib()?,
        };
        let process = JanusProcess::start(bin, &lib, ip).await?;
        println!(
            "janus: pid {} ({}), HTTP API on {}, ICE on {ip}",
            process.pid,
            janus_version(bin),
            process.http
        );
        let api = Arc::new(JanusApi::connect(process.http).await?);
        let poller = tokio::spawn(api.clone().poll_events());

        // The mountpoint mirrors SyncReel's m-lines, one RTP port each.
        let admin = api.attach().await?;
        let media: Vec<Value> = kinds
            .iter()
            .enumerate()
            .map(|(i, kind)| match kind {
                Kind::Video => json!({
                    "type": "video", "mid": format!("v{i}"), "port": 0, "pt": 96,
                    "codec": "vp8", "iface": "127.0.0.1",
                }),
                Kind::Audio => json!({
                    "type": "audio", "mid": format!("a{i}"), "port": 0, "pt": 111,
                    "codec": "opus", "iface": "127.0.0.1",
                }),
            })
            .collect();
        let created = api
            .request(
                admin,
                json!({"request": "create", "type": "rtp", "id": MOUNTPOINT, "media": media}),
                None,
            )
            .await?;
        let ports = created["plugindata"]["data"]["stream"]["ports"]
            .as_array()
            .ok_or_else(|| format!("no ports in Janus's create answer: {created}"))?;
        let mut targets = HashMap::new();
        for port in ports {
            let kind = match port["type"].as_str() {
                Some("video") => Kind::Video,
                Some("audio") => Kind::Audio,
                _ => continue,
            };
            let number = port["port"]
                .as_u64()
                .and_then(|p| u16::try_from(p).ok())
                .ok_or_else(|| format!("bad port in {port}"))?;
            let pt = if kind == Kind::Video { 96 } else { 111 };
            // One stream per kind: SyncReel sends at most one of each.
            targets
                .entry(kind)
                .or_insert((SocketAddr::from(([127, 0, 0, 1], number)), pt));
        }
        println!(
            "janus mountpoint {MOUNTPOINT}: {}",
            targets
                .iter()
                .map(|(k, (a, _))| format!("{} ← {a}", k.name()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        forwarder.set_targets(targets);
        let peers = client_api(IpAddr::V4(ip), false)?;
        Ok(JanusSide {
            process,
            api,
            peers,
            poller,
        })
    }

    /// A Janus viewer: attach, `watch` the mountpoint, take Janus's offer
    /// (its candidates are in it), answer with ours gathered in full, and
    /// `start`.
    async fn join(&self) -> Result<Viewer, String> {
        let handle = self.api.attach().await?;
        let joined = self.watch_on(handle).await;
        if joined.is_err() {
            let _ = self.api.detach(handle).await;
        }
        joined
    }

    async fn watch_on(&self, handle: u64) -> Result<Viewer, String> {
        let mut events = self.api.subscribe(handle);
        self.api
            .request(handle, json!({"request": "watch", "id": MOUNTPOINT}), None)
            .await?;
        let offer = loop {
            let event = tokio::time::timeout(JOIN_TIMEOUT, events.recv())
                .await
                .map_err(|_| "no offer from Janus".to_string())?
                .ok_or("Janus's event stream ended")?;
            if let Some(sdp) = event["jsep"]["sdp"].as_str() {
                break sdp.to_string();
            }
            if let Some(error) = event["plugindata"]["data"].get("error") {
                return Err(format!("watch refused: {error}"));
            }
        };
        let kinds = sdp_kinds(&offer);
        let stats = Arc::new(PeerStats::default());
        let (pc, readers) = new_peer(&self.peers, &stats, None).await?;
        pc.set_remote_description(
            RTCSessionDescription::offer(offer).map_err(|e| format!("offer: {e}"))?,
        )
        .await
        .map_err(|e| format!("set offer: {e}"))?;
        let answer = pc
            .create_answer(None)
            .await
            .map_err(|e| format!("answer: {e}"))?;
        let mut gathered = pc.gathering_complete_promise().await;
        pc.set_local_description(answer)
            .await
            .map_err(|e| format!("set answer: {e}"))?;
        tokio::time::timeout(Duration::from_secs(10), gathered.recv())
            .await
            .map_err(|_| "ICE gathering did not complete".to_string())?;
        let local = pc.local_description().await.ok_or("no local description")?;
        self.api
            .request(
                handle,
                json!({"request": "start"}),
                Some(json!({"type": "answer", "sdp": local.sdp, "trickle": false})),
            )
            .await?;
        // Janus's later events (webrtcup, media) are not needed.
        let (stop, mut stopped) = watch::channel(false);
        let drain = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    event = events.recv() => {
                        if event.is_none() {
                            break;
                        }
                    }
                }
            }
        });
        first_video(&stats).await;
        let mut tasks = vec![drain];
        tasks.extend(readers.lock().expect("readers lock").drain(..));
        Ok(Viewer {
            pc,
            stats,
            kinds,
            stop,
            tasks,
            janus_handle: Some((self.api.clone(), handle)),
        })
    }
}

/// Janus as a child process with a configuration of our own in a
/// temporary directory. Dropping it kills the process and removes it.
struct JanusProcess {
    child: Child,
    pid: u32,
    http: SocketAddr,
    dir: PathBuf,
}

impl JanusProcess {
    async fn start(bin: &str, lib: &Path, ip: Ipv4Addr) -> Result<JanusProcess, String> {
        let dir =
            std::env::temp_dir().join(format!("syncreel-rtc-fanout-janus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let io = |e: std::io::Error| format!("Janus config in {}: {e}", dir.display());
        for sub in ["plugins", "transports", "events", "loggers"] {
            std::fs::create_dir_all(dir.join(sub)).map_err(io)?;
        }
        // Only the streaming plugin and the HTTP transport are loaded:
        // Janus loads every library in its folders.
        for (sub, file) in [
            ("plugins", "libjanus_streaming.so"),
            ("transports", "libjanus_http.so"),
        ] {
            let source = lib.join(sub).join(file);
            if !source.is_file() {
                return Err(format!(
                    "no {} (install Janus with scripts/bench-setup.sh or set RTC_FANOUT_JANUS_LIB)",
                    source.display()
                ));
            }
            std::os::unix::fs::symlink(&source, dir.join(sub).join(file)).map_err(io)?;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("no free TCP port: {e}"))?
            .port();
        let d = dir.display();
        // Janus never gathers on loopback interfaces, so its ICE is pinned
        // to one local address; the kernel routes that through `lo` too.
        // Sessions never time out: viewers attach once and stay.
        let janus = format!(
            "general: {{\n  configs_folder = \"{d}\"\n  plugins_folder = \"{d}/plugins\"\n  \
             transports_folder = \"{d}/transports\"\n  events_folder = \"{d}/events\"\n  \
             loggers_folder = \"{d}/loggers\"\n  debug_level = 4\n  session_timeout = 0\n}}\n\
             certificates: {{\n}}\nmedia: {{\n}}\nnat: {{\n  ice_enforce_list = \"{ip}\"\n}}\n\
             plugins: {{\n}}\ntransports: {{\n}}\nloggers: {{\n}}\nevents: {{\n}}\n"
        );
        let http = format!(
            "general: {{\n  json = \"plain\"\n  base_path = \"/janus\"\n  http = true\n  \
             port = {port}\n  ip = \"127.0.0.1\"\n  https = false\n}}\n\
             admin: {{\n  admin_http = false\n  admin_https = false\n}}\ncors: {{\n}}\n"
        );
        std::fs::write(dir.join("janus.jcfg"), janus).map_err(io)?;
        std::fs::write(dir.join("janus.transport.http.jcfg"), http).map_err(io)?;
        std::fs::write(dir.join("janus.plugin.streaming.jcfg"), "general: {\n}\n").map_err(io)?;
        let log = dir.join("janus.log");
        let child = Command::new(bin)
            .arg("--config")
            .arg(dir.join("janus.jcfg"))
            .arg("--configs-folder")
            .arg(&dir)
            .arg("--log-file")
            .arg(&log)
            .arg("--disable-stdout")
            .arg("--disable-colors")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {bin}: {e}"))?;
        let mut janus = JanusProcess {
            pid: child.id(),
            child,
            http: SocketAddr::from(([127, 0, 0, 1], port)),
            dir,
        };
        let deadline = Instant::now() + JANUS_START_TIMEOUT;
        loop {
            if let Ok(Some(status)) = janus.child.try_wait() {
                return Err(format!("Janus exited with {status}: {}", janus.log_tail()));
            }
            if let Ok((200, _)) = http_json(
                janus.http,
                "GET",
                "/janus/info",
                None,
                Duration::from_secs(1),
            )
            .await
            {
                return Ok(janus);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "Janus did not answer on {} within {JANUS_START_TIMEOUT:?}: {}",
                    janus.http,
                    janus.log_tail()
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("janus.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(8)..].join(" / ")
    }
}

impl Drop for JanusProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One Janus session over the HTTP API, shared by every viewer's handle;
/// one long poll for all of them hands each event to its handle.
struct JanusApi {
    addr: SocketAddr,
    session: u64,
    handles: Mutex<HashMap<u64, mpsc::UnboundedSender<Value>>>,
    transactions: AtomicU64,
}

impl JanusApi {
    async fn connect(addr: SocketAddr) -> Result<JanusApi, String> {
        let mut api = JanusApi {
            addr,
            session: 0,
            handles: Mutex::default(),
            transactions: AtomicU64::new(0),
        };
        let created = api.post("/janus", json!({"janus": "create"})).await?;
        api.session = created["data"]["id"]
            .as_u64()
            .ok_or_else(|| format!("no session id in {created}"))?;
        Ok(api)
    }

    async fn post(&self, path: &str, mut body: Value) -> Result<Value, String> {
        let transaction = self.transactions.fetch_add(1, Relaxed).to_string();
        body["transaction"] = json!(transaction);
        let (status, answer) =
            http_json(self.addr, "POST", path, Some(&body), HTTP_TIMEOUT).await?;
        match answer["janus"].as_str() {
            Some("success") | Some("ack") if status == 200 => Ok(answer),
            _ => Err(format!("Janus answered {status}: {answer}")),
        }
    }

    async fn attach(&self) -> Result<u64, String> {
        let attached = self
            .post(
                &format!("/janus/{}", self.session),
                json!({"janus": "attach", "plugin": "janus.plugin.streaming"}),
            )
            .await?;
        attached["data"]["id"]
            .as_u64()
            .ok_or_else(|| format!("no handle id in {attached}"))
    }

    async fn detach(&self, handle: u64) -> Result<(), String> {
        self.handles.lock().expect("handles lock").remove(&handle);
        self.post(
            &format!("/janus/{}/{handle}", self.session),
            json!({"janus": "detach"}),
        )
        .await
        .map(|_| ())
    }

    /// A plugin message; synchronous requests answer in the response,
    /// asynchronous ones with an ack and a later event.
    async fn request(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> Result<Value, String> {
        let mut message = json!({"janus": "message", "body": body});
        if let Some(jsep) = jsep {
            message["jsep"] = jsep;
        }
        let answer = self
            .post(&format!("/janus/{}/{handle}", self.session), message)
            .await?;
        if let Some(error) = answer["plugindata"]["data"].get("error") {
            return Err(format!("Janus refused {}: {error}", body["request"]));
        }
        Ok(answer)
    }

    fn subscribe(&self, handle: u64) -> mpsc::UnboundedReceiver<Value> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.handles
            .lock()
            .expect("handles lock")
            .insert(handle, tx);
        rx
    }

    /// The session's long poll, for as long as the run lasts (the task is
    /// aborted with the Janus side). Each request is bounded; a failed one
    /// is retried after a pause.
    async fn poll_events(self: Arc<Self>) {
        let path = format!("/janus/{}?maxev=20", self.session);
        loop {
            match http_json(self.addr, "GET", &path, None, LONG_POLL_TIMEOUT).await {
                Ok((200, events)) => {
                    let events = match events {
                        Value::Array(events) => events,
                        event => vec![event],
                    };
                    for event in events {
                        let Some(sender) = event["sender"].as_u64() else {
                            continue;
                        };
                        if let Some(tx) = self.handles.lock().expect("handles lock").get(&sender) {
                            let _ = tx.send(event);
                        }
                    }
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
    }
}

/// Sends the feeder's RTP to Janus's mountpoint as plain RTP on 127.0.0.1.
struct Forwarder {
    socket: UdpSocket,
    /// Per kind, the mountpoint port and the payload type it expects.
    targets: RwLock<HashMap<Kind, (SocketAddr, u8)>>,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl Forwarder {
    async fn new() -> Result<Forwarder, String> {
        Ok(Forwarder {
            socket: UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(|e| format!("forwarder socket: {e}"))?,
            targets: RwLock::default(),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    fn set_targets(&self, targets: HashMap<Kind, (SocketAddr, u8)>) {
        *self.targets.write().expect("targets lock") = targets;
    }

    /// Header extensions are dropped: their ids were negotiated with
    /// SyncReel, and the mountpoint negotiates its own with its viewers.
    fn send(&self, kind: Kind, packet: &mut Packet) {
        let Some((addr, pt)) = self
            .targets
            .read()
            .expect("targets lock")
            .get(&kind)
            .copied()
        else {
            return;
        };
        packet.header.payload_type = pt;
        packet.header.extension = false;
        packet.header.extension_profile = 0;
        packet.header.extensions.clear();
        let sent = packet
            .marshal()
            .ok()
            .and_then(|bytes| self.socket.try_send_to(&bytes, addr).ok());
        match sent {
            Some(_) => self.sent.fetch_add(1, Relaxed),
            None => self.failed.fetch_add(1, Relaxed),
        };
    }
}

/// The source address of the default route: a connected UDP socket sends
/// nothing, but the kernel picks the address it would send from.
fn default_route_ip() -> Result<Ipv4Addr, String> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|e| e.to_string())?;
    socket
        .connect("198.51.100.1:9")
        .or_else(|_| socket.connect("203.0.113.1:9"))
        .map_err(|e| {
            format!("no default route to pick Janus's address from ({e}); set RTC_FANOUT_JANUS_IP")
        })?;
    match socket.local_addr().map_err(|e| e.to_string())?.ip() {
        IpAddr::V4(ip) if !ip.is_loopback() && !ip.is_unspecified() => Ok(ip),
        other => Err(format!(
            "the default route's address {other} cannot carry Janus's ICE; set RTC_FANOUT_JANUS_IP"
        )),
    }
}

/// Where the packaged Janus keeps `plugins/` and `transports/`.
fn find_janus_lib() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib")
        .map(|dir| {
            dir.flatten()
                .map(|entry| entry.path().join("janus"))
                .collect()
        })
        .unwrap_or_default();
    candidates.extend(
        [
            "/usr/lib/janus",
            "/usr/local/lib/janus",
            "/opt/janus/lib/janus",
        ]
        .map(PathBuf::from),
    );
    candidates
        .into_iter()
        .find(|dir| dir.join("plugins/libjanus_streaming.so").is_file())
        .ok_or_else(|| {
            "Janus's streaming plugin was not found under /usr/lib; run scripts/bench-setup.sh \
             or set RTC_FANOUT_JANUS_LIB"
                .to_string()
        })
}

fn janus_version(bin: &str) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find_map(|line| line.strip_prefix("Janus version: ").map(str::to_string))
        })
        .unwrap_or_else(|| "version unknown".to_string())
}

// ---------------------------------------------------------------------------
// HTTP and /proc

/// One HTTP/1.1 request with a JSON body and answer, on a fresh connection.
async fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<(u16, Value), String> {
    let exchange = async {
        let stream = TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot reach {addr}: {e}"))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| format!("HTTP handshake: {e}"))?;
        tokio::spawn(conn);
        let request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", addr.to_string())
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {BENCH_OPERATOR}"))
            .body(Full::new(Bytes::from(
                body.map(Value::to_string).unwrap_or_default(),
            )))
            .map_err(|e| format!("request: {e}"))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| format!("{method} {path} body: {e}"))?
            .to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Ok((status, value))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("{method} {path} timed out"))?
}

/// CPU time a process has had, user plus system, from `/proc/<pid>/stat`.
/// Unlike per-thread accounts, this keeps the time of threads that have
/// exited.
fn process_cpu(pid: u32) -> Result<Duration, String> {
    stat_cpu(Path::new(&format!("/proc/{pid}/stat")))
}

/// utime + stime from a process's or a thread's `stat` file.
fn stat_cpu(path: &Path) -> Result<Duration, String> {
    let stat = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    // The command name may hold spaces and parentheses; fields after its
    // closing parenthesis are plain.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest)
        .ok_or("unexpected /proc/<pid>/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime field 14, stime field 15.
    let ticks = |i: usize| fields.get(i - 3).and_then(|f| f.parse::<u64>().ok());
    match (ticks(14), ticks(15)) {
        (Some(utime), Some(stime)) => Ok(MachineTicks::ticks(utime + stime)),
        _ => Err("no utime/stime in /proc/<pid>/stat".into()),
    }
}

/// CPU time of a process's live threads whose name starts with `prefix`.
/// A thread that exits during a window takes its time with it; the tokio
/// workers this is used for live as long as the runtime.
fn threads_cpu(pid: u32, prefix: &str) -> Result<Duration, String> {
    let dir = format!("/proc/{pid}/task");
    let tasks = std::fs::read_dir(&dir).map_err(|e| format!("cannot read {dir}: {e}"))?;
    let mut total = Duration::ZERO;
    for task in tasks.flatten() {
        let named = std::fs::read_to_string(task.path().join("comm"))
            .is_ok_and(|comm| comm.starts_with(prefix));
        if named {
            // A thread may exit between listing and reading; skip it.
            if let Ok(cpu) = stat_cpu(&task.path().join("stat")) {
                total += cpu;
            }
        }
    }
    Ok(total)
}

/// The machine-wide CPU account from the first line of `/proc/stat`.
struct MachineTicks {
    busy: Duration,
    idle: Duration,
    steal: Duration,
}

impl MachineTicks {
    /// `/proc` counts in USER_HZ, which Linux fixes at 100 per second.
    fn ticks(n: u64) -> Duration {
        Duration::from_millis(n * 10)
    }

    fn read() -> Result<MachineTicks, String> {
        let stat = std::fs::read_to_string("/proc/stat")
            .map_err(|e| format!("cannot read /proc/stat: {e}"))?;
        let ticks: Vec<u64> = stat
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("cpu "))
            .map(|rest| {
                rest.split_whitespace()
                    .filter_map(|n| n.parse().ok())
                    .collect()
            })
            .unwrap_or_default();
        // user nice system idle iowait irq softirq steal ...
        let [user, nice, system, idle, iowait, irq, softirq, steal, ..] = ticks[..] else {
            return Err("unexpected first line in /proc/stat".into());
        };
        Ok(MachineTicks {
            busy: Self::ticks(user + nice + system + irq + softirq),
            idle: Self::ticks(idle + iowait),
            steal: Self::ticks(steal),
        })
    }

    fn since(&self, earlier: &MachineTicks) -> MachineTicks {
        MachineTicks {
            busy: self.busy.saturating_sub(earlier.busy),
            idle: self.idle.saturating_sub(earlier.idle),
            steal: self.steal.saturating_sub(earlier.steal),
        }
    }

    fn total(&self) -> Duration {
        self.busy + self.idle + self.steal
    }
}

/// A process's resident set, in bytes.
fn rss_bytes(pid: u32) -> Result<u64, String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .map_err(|e| format!("cannot read /proc/{pid}/status: {e}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().strip_suffix("kB"))
        .and_then(|kb| kb.trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| "no VmRSS line in /proc/<pid>/status".into())
}

/// The median of a few RSS readings a little apart.
async fn settled_rss(pid: u32) -> Result<u64, String> {
    let mut samples = Vec::with_capacity(RSS_SAMPLES);
    for i in 0..RSS_SAMPLES {
        if i > 0 {
            tokio::time::sleep(RSS_SAMPLE_GAP).await;
        }
        samples.push(rss_bytes(pid)?);
    }
    samples.sort_unstable();
    Ok(samples[samples.len() / 2])
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|_| "?".to_string())
}

fn open_files_limit() -> String {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("Max open files"))
                .map(|line| {
                    line.split_whitespace()
                        .skip(3)
                        .take(2)
                        .collect::<Vec<_>>()
                        .join("/")
                })
        })
        .unwrap_or_else(|| "?".to_string())
}
