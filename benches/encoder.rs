//! Encoder CPU per session (#12): what one session's player costs, VP8
//! against H.264, at 720p and 1080p, 23.976 fps, and what picture it gives
//! for that.
//!
//! Run: `make bench-encoder` (or `cargo bench --bench encoder`). Settings
//! (environment): `ENCODER_SECS` (measured window, default 10),
//! `ENCODER_RUNS` (3), `ENCODER_WARMUP_SECS` (2), `ENCODER_SIZES`
//! (`1280x720,1920x1080`), `ENCODER_CODECS` (`vp8,h264`; `h264@3000` is
//! H.264 at its own rate, to compare at the same picture; a `+wm` suffix
//! burns a session watermark in, as a watermarked session's player
//! does, to price it: `h264,h264+wm`), `ENCODER_KBPS`
//! (2500, the config default, for every size), `ENCODER_CLIP` (a media
//! file to use instead of the demo clip; it is scaled to each size, as a
//! session's would be), `ENCODER_QUALITY` (1; 0 skips the PSNR check).
//!
//! Each measurement runs one session's real player
//! (`syncreel::media::player::spawn`, watched, playing from frame 0 at
//! 1×) in this process, with the settings the server would use, and
//! counts over the window after the warm-up:
//!
//! - **cores**: this process's CPU time (user + system, from
//!   `/proc/self/stat`) over wall time. It is the whole player: the source
//!   decode and scale as well as the encode. The row `decode only` runs
//!   the player's decode pipeline alone (the same elements and caps,
//!   pulled at the frame rate), so the encoder's own share is the
//!   difference.
//! - **pictures/s** and **skipped**: pictures out, against 23.976/s, and
//!   frames the scheduler skipped because it fell behind (a source drop).
//! - **kbit/s**: encoded bytes out.
//! - **PSNR**: after the window (not timed), the encoded stream is decoded
//!   (vp8dec, avdec_h264) and compared with the source decoded at the
//!   same size: the picture the bytes buy. Luma, and all three planes.
//! - **others**: CPU that other processes used meanwhile (`/proc/stat`
//!   busy time minus this process's), in cores, to read the load by.
//!
//! Codecs run alternately within each run (the order rotates from run to
//! run) so that they see the same load.
//!
//! **Sessions per node** (issue #14): with `ENCODER_SESSIONS` (say
//! `1,2,3,4`), each run instead plays that many sessions at once, each
//! its own player (the first size and codec), and reports the whole
//! process's cores, each session's pictures/s and the frames they
//! skipped: the most sessions with none skipped is what a node of this
//! machine carries before it drops frames.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;
use syncreel::clock::{Speed, Transport};
use syncreel::live::ServerClock;
use syncreel::media::demo_clip::{self, DemoClipSpec};
use syncreel::media::player::{self, EncodedFrame, PlayerEvent, StreamSettings, VideoCodec};
use syncreel::media::probe::probe;
use syncreel::media::watermark::Watermark;
use syncreel::media::MediaInfo;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Clock ticks per second in `/proc` (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

/// This process's user + system CPU time, in seconds.
fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')').expect("comm") + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 here.
    let utime: f64 = fields[11].parse().unwrap();
    let stime: f64 = fields[12].parse().unwrap();
    (utime + stime) / TICKS
}

/// The machine's busy CPU time (all cores, everything but idle and
/// iowait), in seconds.
fn machine_busy() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let line = stat.lines().next().expect("cpu line");
    let v: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|x| x.parse().unwrap())
        .collect();
    let total: f64 = v.iter().sum();
    (total - v[3] - v[4]) / TICKS
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

struct Snapshot {
    wall: Instant,
    cpu: f64,
    busy: f64,
}

impl Snapshot {
    fn now() -> Snapshot {
        Snapshot {
            wall: Instant::now(),
            cpu: process_cpu(),
            busy: machine_busy(),
        }
    }

    /// (our cores, other processes' cores) from `self` to `end`.
    fn cores_until(&self, end: &Snapshot) -> (f64, f64) {
        let wall = end.wall.duration_since(self.wall).as_secs_f64();
        let ours = end.cpu - self.cpu;
        let others = (end.busy - self.busy - ours).max(0.0);
        (ours / wall, others / wall)
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Item {
    DecodeOnly,
    /// A codec, at its own bit rate if given (else `ENCODER_KBPS`), and
    /// whether a watermark is burned in.
    Codec(VideoCodec, Option<u32>, bool),
}

impl Item {
    fn label(self) -> String {
        let name = |c| match c {
            VideoCodec::Vp8 => "VP8",
            VideoCodec::H264 => "H.264",
        };
        match self {
            Item::DecodeOnly => "decode only".into(),
            Item::Codec(c, rate, wm) => format!(
                "{}{}{}",
                name(c),
                rate.map_or(String::new(), |kbps| format!(" @{kbps}")),
                if wm { " + watermark" } else { "" }
            ),
        }
    }
}

#[derive(Debug, Default, Clone)]
struct Sample {
    cores: f64,
    others: f64,
    pictures_per_sec: f64,
    skipped: i64,
    /// Pictures the player itself counted as more than a frame late
    /// (what a node publishes to placement).
    late: usize,
    pictures: usize,
    expected: f64,
    kbps: f64,
    psnr_y: Option<f64>,
    psnr_yuv: Option<f64>,
}

/// One session's player, playing from frame 0, for the warm-up and the window.
fn measure_player(
    info: &MediaInfo,
    settings: StreamSettings,
    watermark: Option<Watermark>,
    warmup: f64,
    secs: f64,
    quality: bool,
) -> Sample {
    let clock = ServerClock::start();
    let start = clock.now();
    let play = Transport {
        playing: true,
        speed: Speed::NORMAL,
        ..Transport::paused_at(0, start)
    };
    let (tx, rx) = mpsc::channel();
    let player = player::spawn(
        info.clone(),
        settings,
        watermark,
        clock,
        play,
        Arc::new(|| true),
        move |e| {
            let _ = tx.send(e);
        },
    )
    .expect("player");
    std::thread::sleep(Duration::from_secs_f64(warmup));
    let (from, a) = (clock.now(), Snapshot::now());
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (to, b) = (clock.now(), Snapshot::now());
    let _ = player.send(player::PlayerCommand::Stop);
    drop(player);
    let mut frames: Vec<EncodedFrame> = Vec::new();
    while let Ok(event) = rx.recv_timeout(Duration::from_secs(5)) {
        match event {
            PlayerEvent::Frame(f) => frames.push(f),
            PlayerEvent::Failed(e) => panic!("player failed: {e}"),
        }
    }
    let (cores, others) = a.cores_until(&b);
    let window: Vec<&EncodedFrame> = frames
        .iter()
        .filter(|f| f.at >= from && f.at < to)
        .collect();
    let wall = (to.as_micros() - from.as_micros()) as f64 / 1e6;
    let skipped = window
        .windows(2)
        .map(|w| (w[1].frame - w[0].frame - 1).max(0))
        .sum();
    let bytes: usize = window.iter().map(|f| f.data.len()).sum();
    let rate = f64::from(info.rate.num()) / f64::from(info.rate.den());
    let mut sample = Sample {
        cores,
        others,
        pictures_per_sec: window.len() as f64 / wall,
        skipped,
        late: window.iter().filter(|f| f.late).count(),
        pictures: window.len(),
        expected: wall * rate,
        kbps: bytes as f64 * 8.0 / wall / 1000.0,
        ..Sample::default()
    };
    if quality {
        let counted: std::collections::HashSet<i64> = window.iter().map(|f| f.frame).collect();
        let (y, yuv) = psnr(info, settings, &frames, &counted);
        sample.psnr_y = Some(y);
        sample.psnr_yuv = Some(yuv);
    }
    sample
}

/// The player's decode pipeline alone (as `Decoder::open_as`: decodebin,
/// videoconvert, videoscale to I420 at the stream size), a picture pulled
/// and copied (as the encoder's input is) at each frame boundary.
fn measure_decode_only(
    info: &MediaInfo,
    settings: StreamSettings,
    warmup: f64,
    secs: f64,
) -> Sample {
    let (pipeline, sink) = decode_pipeline(&info.path, settings.width, settings.height);
    let rate = f64::from(info.rate.num()) / f64::from(info.rate.den());
    let started = Instant::now();
    let mut a = None;
    let mut pulled = 0usize;
    let mut n = 0u32;
    loop {
        let due = started + Duration::from_secs_f64(f64::from(n) / rate);
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
        let elapsed = started.elapsed().as_secs_f64();
        if a.is_none() && elapsed >= warmup {
            a = Some(Snapshot::now());
        }
        if elapsed >= warmup + secs {
            break;
        }
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(5))
            .expect("a decoded picture");
        let copy = sample.buffer().expect("buffer").copy();
        drop(copy);
        if a.is_some() {
            pulled += 1;
        }
        n += 1;
    }
    let b = Snapshot::now();
    let a = a.expect("window started");
    let wall = b.wall.duration_since(a.wall).as_secs_f64();
    let _ = pipeline.set_state(gst::State::Null);
    let (cores, others) = a.cores_until(&b);
    Sample {
        cores,
        others,
        pictures_per_sec: pulled as f64 / wall,
        pictures: pulled,
        expected: wall * rate,
        ..Sample::default()
    }
}

fn decode_pipeline(path: &Path, width: u32, height: u32) -> (gst::Pipeline, gst_app::AppSink) {
    let pipeline = gst::Pipeline::new();
    let make = |name: &str| gst::ElementFactory::make(name).build().expect(name);
    let src = make("filesrc");
    src.set_property("location", path.to_string_lossy().to_string());
    let decode = make("decodebin");
    let convert = make("videoconvert");
    let scale = make("videoscale");
    let caps = gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::I420)
        .width(width as i32)
        .height(height as i32)
        .pixel_aspect_ratio(gst::Fraction::new(1, 1))
        .build();
    let sink = gst_app::AppSink::builder()
        .caps(&caps)
        .sync(false)
        .max_buffers(2)
        .drop(false)
        .build();
    pipeline
        .add_many([&src, &decode, &convert, &scale, sink.upcast_ref()])
        .unwrap();
    src.link(&decode).unwrap();
    gst::Element::link_many([&convert, &scale, sink.upcast_ref()]).unwrap();
    let convert_sink = convert.static_pad("sink").unwrap();
    decode.connect_pad_added(move |_, pad| {
        let is_video = pad
            .current_caps()
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if is_video && !convert_sink.is_linked() {
            let _ = pad.link(&convert_sink);
        }
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    (pipeline, sink)
}

/// Sum of squared differences and sample count, per plane, of two I420
/// pictures of the same size.
fn plane_errors(a: &gst::Sample, b: &gst::Sample) -> [(f64, f64); 3] {
    let frame = |s: &gst::Sample| {
        let info = gst_video::VideoInfo::from_caps(s.caps().expect("caps")).expect("video caps");
        gst_video::VideoFrame::from_buffer_readable(s.buffer_owned().expect("buffer"), &info)
            .expect("readable")
    };
    let (fa, fb) = (frame(a), frame(b));
    assert_eq!(
        (fa.width(), fa.height()),
        (fb.width(), fb.height()),
        "same size"
    );
    let mut out = [(0.0, 0.0); 3];
    for (plane, slot) in out.iter_mut().enumerate() {
        let w = fa.comp_width(plane as u32) as usize;
        let h = fa.comp_height(plane as u32) as usize;
        let (sa, sb) = (
            fa.plane_stride()[plane] as usize,
            fb.plane_stride()[plane] as usize,
        );
        let (da, db) = (
            fa.plane_data(plane as u32).unwrap(),
            fb.plane_data(plane as u32).unwrap(),
        );
        let mut sse = 0u64;
        for row in 0..h {
            let ra = &da[row * sa..row * sa + w];
            let rb = &db[row * sb..row * sb + w];
            for (x, y) in ra.iter().zip(rb) {
                let d = i64::from(*x) - i64::from(*y);
                sse += (d * d) as u64;
            }
        }
        *slot = (sse as f64, (w * h) as f64);
    }
    out
}

fn to_db(sse: f64, n: f64) -> f64 {
    if sse == 0.0 {
        return 99.0;
    }
    10.0 * (255.0f64 * 255.0 / (sse / n)).log10()
}

/// Decodes `frames` (the whole stream, from its first keyframe) and
/// compares each picture whose frame is in `counted` with the source
/// decoded at the same size. Returns (luma PSNR, all-planes PSNR) in dB,
/// from the summed squared error over all those pictures.
fn psnr(
    info: &MediaInfo,
    settings: StreamSettings,
    frames: &[EncodedFrame],
    counted: &std::collections::HashSet<i64>,
) -> (f64, f64) {
    let (w, h) = (settings.width as i32, settings.height as i32);
    let fps = gst::Fraction::new(info.rate.num() as i32, info.rate.den() as i32);
    let make = |name: &str| gst::ElementFactory::make(name).build().expect(name);
    let (in_caps, chain): (gst::Caps, Vec<gst::Element>) = match settings.codec {
        VideoCodec::Vp8 => (
            gst::Caps::builder("video/x-vp8")
                .field("width", w)
                .field("height", h)
                .field("framerate", fps)
                .build(),
            vec![make("vp8dec")],
        ),
        VideoCodec::H264 => (
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "byte-stream")
                .field("alignment", "au")
                .build(),
            vec![make("h264parse"), make("avdec_h264")],
        ),
    };
    let src = gst_app::AppSrc::builder()
        .caps(&in_caps)
        .format(gst::Format::Time)
        .build();
    let convert = make("videoconvert");
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::I420)
                .build(),
        )
        .sync(false)
        .max_buffers(2)
        .drop(false)
        .build();
    let pipeline = gst::Pipeline::new();
    let mut elements: Vec<&gst::Element> = vec![src.upcast_ref()];
    elements.extend(chain.iter());
    elements.push(&convert);
    elements.push(sink.upcast_ref());
    pipeline.add_many(elements.iter().copied()).unwrap();
    gst::Element::link_many(elements.iter().copied()).unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    // Frames by timestamp: a decoder that drops a broken picture must
    // not shift the pairing.
    let mut frame_at: HashMap<u64, i64> = HashMap::new();
    for f in frames {
        let pts = f.at.as_micros().max(0) as u64;
        frame_at.insert(pts, f.frame);
        let mut buffer = gst::Buffer::from_slice(f.data.clone());
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_useconds(pts));
            if !f.keyframe {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        src.push_buffer(buffer).expect("push");
    }
    src.end_of_stream().expect("eos");

    let (ref_pipeline, ref_sink) = decode_pipeline(&info.path, settings.width, settings.height);
    let mut ref_next = 0i64;
    let mut ref_last: Option<(i64, gst::Sample)> = None;
    let mut sums = [(0.0, 0.0); 3];
    let mut compared = 0usize;
    while let Some(decoded) = sink.try_pull_sample(gst::ClockTime::from_seconds(10)) {
        let pts = decoded.buffer().and_then(|b| b.pts()).expect("pts");
        let Some(&frame) = frame_at.get(&(pts.nseconds() / 1000)) else {
            panic!("a decoded picture at {pts} that was never sent");
        };
        if !counted.contains(&frame) {
            continue;
        }
        while ref_last.as_ref().is_none_or(|(f, _)| *f < frame) {
            let s = ref_sink
                .try_pull_sample(gst::ClockTime::from_seconds(10))
                .expect("a source picture");
            ref_last = Some((ref_next, s));
            ref_next += 1;
        }
        let (_, reference) = ref_last.as_ref().unwrap();
        for (sum, (sse, n)) in sums.iter_mut().zip(plane_errors(reference, &decoded)) {
            sum.0 += sse;
            sum.1 += n;
        }
        compared += 1;
    }
    let _ = pipeline.set_state(gst::State::Null);
    let _ = ref_pipeline.set_state(gst::State::Null);
    assert!(
        compared * 10 >= counted.len() * 9,
        "only {compared} of {} pictures decoded back",
        counted.len()
    );
    let y = to_db(sums[0].0, sums[0].1);
    let all = to_db(
        sums.iter().map(|s| s.0).sum(),
        sums.iter().map(|s| s.1).sum(),
    );
    (y, all)
}

fn clip_for(width: u32, height: u32, frames: u32) -> PathBuf {
    if let Ok(path) = std::env::var("ENCODER_CLIP") {
        return PathBuf::from(path);
    }
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("encoder-bench");
    let path = root.join(format!("demo-{width}x{height}-{frames}.mov"));
    let spec = DemoClipSpec {
        width,
        height,
        frames,
        ..DemoClipSpec::default()
    };
    if !path.is_file() {
        eprintln!("making the {width}x{height} demo clip (once)…");
    }
    demo_clip::ensure(&path, &spec).unwrap();
    path
}

fn median_and_range(xs: &[f64]) -> (f64, f64, f64) {
    let mut s = xs.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = s.len();
    let median = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (median, s[0], s[n - 1])
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    gst::init().expect("GStreamer");
    let secs: f64 = env_or("ENCODER_SECS", 10.0);
    let runs: usize = env_or("ENCODER_RUNS", 3);
    let warmup: f64 = env_or("ENCODER_WARMUP_SECS", 2.0);
    let kbps: u32 = env_or("ENCODER_KBPS", 2500);
    let sizes: Vec<(u32, u32)> = std::env::var("ENCODER_SIZES")
        .unwrap_or_else(|_| "1280x720,1920x1080".into())
        .split(',')
        .map(|s| {
            let (w, h) = s.split_once('x').expect("WIDTHxHEIGHT");
            (w.parse().unwrap(), h.parse().unwrap())
        })
        .collect();
    let mut items = vec![Item::DecodeOnly];
    for c in std::env::var("ENCODER_CODECS")
        .unwrap_or_else(|_| "vp8,h264".into())
        .split(',')
    {
        // `codec` or `codec@kbps`, either with `+wm`.
        let (c, wm) = match c.strip_suffix("+wm") {
            Some(c) => (c, true),
            None => (c, false),
        };
        let (name, rate) = match c.split_once('@') {
            Some((name, rate)) => (name, Some(rate.parse().expect("codec@kbps"))),
            None => (c, None),
        };
        let codec = match name {
            "vp8" => VideoCodec::Vp8,
            "h264" => VideoCodec::H264,
            other => panic!("unknown codec {other}"),
        };
        items.push(Item::Codec(codec, rate, wm));
    }
    // Enough frames that play never reaches the end.
    let frames = (((warmup + secs + 5.0) * 24.0) as u32).max(1440);
    let clips: Vec<MediaInfo> = sizes
        .iter()
        .map(|&(w, h)| probe(&clip_for(w, h, frames)).expect("probe"))
        .collect();

    if let Ok(counts) = std::env::var("ENCODER_SESSIONS") {
        let counts: Vec<usize> = counts
            .split(',')
            .map(|n| {
                n.parse()
                    .expect("ENCODER_SESSIONS: counts, comma-separated")
            })
            .collect();
        let codec = match items.get(1) {
            Some(Item::Codec(codec, _, _)) => *codec,
            _ => VideoCodec::Vp8,
        };
        let settings = StreamSettings {
            width: sizes[0].0,
            height: sizes[0].1,
            bitrate_kbps: kbps,
            codec,
            ..StreamSettings::default()
        };
        sessions_per_node(&clips[0], settings, &counts, runs, warmup, secs);
        return;
    }

    let load_before = loadavg();
    let started = std::time::SystemTime::now();
    eprintln!(
        "{runs} runs × {} sizes × {} items, {warmup}+{secs} s each; loadavg {load_before}",
        sizes.len(),
        items.len()
    );
    println!("| run | size | what | cores | others' cores | pictures/s | skipped | kbit/s | PSNR Y dB | PSNR YUV dB |");
    println!("|---|---|---|--:|--:|--:|--:|--:|--:|--:|");
    // By (size, item) index.
    let mut results: HashMap<(usize, usize), Vec<Sample>> = HashMap::new();
    for run in 0..runs {
        for (si, &(w, h)) in sizes.iter().enumerate() {
            // Rotate the order from run to run.
            let mut order: Vec<usize> = (0..items.len()).collect();
            order.rotate_left(run % items.len());
            for ii in order {
                let item = items[ii];
                let mut settings = StreamSettings {
                    width: w,
                    height: h,
                    bitrate_kbps: kbps,
                    ..StreamSettings::default()
                };
                let s = match item {
                    Item::DecodeOnly => measure_decode_only(&clips[si], settings, warmup, secs),
                    Item::Codec(codec, rate, wm) => {
                        settings.codec = codec;
                        settings.bitrate_kbps = rate.unwrap_or(kbps);
                        let watermark = wm.then(|| {
                            Watermark::new("CONFIDENTIAL – Shot 060 v3")
                                .expect("a valid watermark")
                                .expect("not empty")
                        });
                        let quality = env_or("ENCODER_QUALITY", 1) != 0;
                        measure_player(&clips[si], settings, watermark, warmup, secs, quality)
                    }
                };
                let db = |v: Option<f64>| v.map_or("—".into(), |v| format!("{v:.2}"));
                println!(
                    "| {} | {w}x{h} | {} | {:.3} | {:.3} | {:.2} | {} | {} | {} | {} |",
                    run + 1,
                    item.label(),
                    s.cores,
                    s.others,
                    s.pictures_per_sec,
                    if item == Item::DecodeOnly {
                        "—".into()
                    } else {
                        format!("{} ({} of {:.0} out)", s.skipped, s.pictures, s.expected)
                    },
                    if item == Item::DecodeOnly {
                        "—".into()
                    } else {
                        format!("{:.0}", s.kbps)
                    },
                    db(s.psnr_y),
                    db(s.psnr_yuv),
                );
                results.entry((si, ii)).or_default().push(s);
            }
        }
    }
    let load_after = loadavg();
    let took = started.elapsed().unwrap_or_default().as_secs();

    println!(
        "\nSummary: median over {runs} runs (min–max); {secs} s windows after {warmup} s of warm-up; \
         {kbps} kbit/s; loadavg before {load_before}, after {load_after}; {took} s in all.\n"
    );
    println!("| size | what | cores (whole player) | encoder alone (minus decode) | pictures/s | skipped frames | kbit/s | PSNR Y dB | PSNR YUV dB | others' cores |");
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
    for (si, &(w, h)) in sizes.iter().enumerate() {
        let base = results
            .get(&(si, 0))
            .map(|v| median_and_range(&v.iter().map(|s| s.cores).collect::<Vec<_>>()).0);
        for (ii, item) in items.iter().enumerate() {
            let v = &results[&(si, ii)];
            let m =
                |f: &dyn Fn(&Sample) -> f64| median_and_range(&v.iter().map(f).collect::<Vec<_>>());
            let (c, c_lo, c_hi) = m(&|s| s.cores);
            let (o, o_lo, o_hi) = m(&|s| s.others);
            let (p, p_lo, p_hi) = m(&|s| s.pictures_per_sec);
            let (k, _, _) = m(&|s| s.kbps);
            let (sk, sk_lo, sk_hi) = m(&|s| s.skipped as f64);
            let psnr = |f: &dyn Fn(&Sample) -> Option<f64>| {
                let xs: Vec<f64> = v.iter().filter_map(f).collect();
                if xs.is_empty() {
                    "—".to_string()
                } else {
                    let (md, lo, hi) = median_and_range(&xs);
                    format!("{md:.2} ({lo:.2}–{hi:.2})")
                }
            };
            let is_codec = *item != Item::DecodeOnly;
            println!(
                "| {w}x{h} | {} | {c:.3} ({c_lo:.3}–{c_hi:.3}) | {} | {p:.2} ({p_lo:.2}–{p_hi:.2}) | {} | {} | {} | {} | {o:.2} ({o_lo:.2}–{o_hi:.2}) |",
                item.label(),
                match (is_codec, base) {
                    (true, Some(b)) => format!("{:.3}", c - b),
                    _ => "—".into(),
                },
                if is_codec { format!("{sk:.0} ({sk_lo:.0}–{sk_hi:.0})") } else { "—".into() },
                if is_codec { format!("{k:.0}") } else { "—".into() },
                psnr(&|s| s.psnr_y),
                psnr(&|s| s.psnr_yuv),
            );
        }
    }
}

/// One run of several sessions at once.
struct Crowd {
    /// The process's, over the window.
    cores: f64,
    others: f64,
    /// The slowest session's pictures/s.
    slowest: f64,
    /// Frames skipped, all sessions.
    skipped: i64,
    /// Pictures counted late, all sessions.
    late: usize,
}

/// `counts` sessions at once, `runs` times each: the process's cores,
/// the slowest session's pictures/s, and the frames all of them skipped.
fn sessions_per_node(
    info: &MediaInfo,
    settings: StreamSettings,
    counts: &[usize],
    runs: usize,
    warmup: f64,
    secs: f64,
) {
    let load_before = loadavg();
    eprintln!(
        "sessions per node: {counts:?} at once, {}x{} {:?} {} kbit/s, {runs} runs, {warmup}+{secs} s each; loadavg {load_before}",
        settings.width, settings.height, settings.codec, settings.bitrate_kbps
    );
    println!("| run | sessions | cores (process) | others' cores | pictures/s, slowest session | skipped, all sessions | late, all sessions |");
    println!("|---|--:|--:|--:|--:|--:|--:|");
    let mut results: HashMap<usize, Vec<Crowd>> = HashMap::new();
    for run in 0..runs {
        for &n in counts {
            let samples: Vec<Sample> = std::thread::scope(|scope| {
                let players: Vec<_> = (0..n)
                    .map(|_| {
                        scope.spawn(|| measure_player(info, settings, None, warmup, secs, false))
                    })
                    .collect();
                players
                    .into_iter()
                    .map(|p| p.join().expect("player"))
                    .collect()
            });
            // Each sample's cores are the whole process's over its window;
            // the windows overlap, so their median is the process's.
            let cores = median_and_range(&samples.iter().map(|s| s.cores).collect::<Vec<_>>()).0;
            let others = median_and_range(&samples.iter().map(|s| s.others).collect::<Vec<_>>()).0;
            let slowest = samples
                .iter()
                .map(|s| s.pictures_per_sec)
                .fold(f64::INFINITY, f64::min);
            let skipped: i64 = samples.iter().map(|s| s.skipped).sum();
            let late: usize = samples.iter().map(|s| s.late).sum();
            println!(
                "| {} | {n} | {cores:.3} | {others:.3} | {slowest:.2} | {skipped} | {late} |",
                run + 1
            );
            results.entry(n).or_default().push(Crowd {
                cores,
                others,
                slowest,
                skipped,
                late,
            });
        }
    }
    println!(
        "\nSummary: median over {runs} runs (min–max); loadavg before {load_before}, after {}.\n",
        loadavg()
    );
    println!("| sessions | cores (process) | per session | pictures/s, slowest session | skipped, all sessions | late, all sessions | others' cores |");
    println!("|--:|--:|--:|--:|--:|--:|--:|");
    let mut carried = 0;
    for &n in counts {
        let v = &results[&n];
        let m = |f: &dyn Fn(&Crowd) -> f64| median_and_range(&v.iter().map(f).collect::<Vec<_>>());
        let (c, c_lo, c_hi) = m(&|r| r.cores);
        let (o, _, _) = m(&|r| r.others);
        let (p, p_lo, p_hi) = m(&|r| r.slowest);
        let (sk, sk_lo, sk_hi) = m(&|r| r.skipped as f64);
        let (lt, lt_lo, lt_hi) = m(&|r| r.late as f64);
        if sk == 0.0 {
            carried = carried.max(n);
        }
        println!(
            "| {n} | {c:.3} ({c_lo:.3}–{c_hi:.3}) | {:.3} | {p:.2} ({p_lo:.2}–{p_hi:.2}) | {sk:.0} ({sk_lo:.0}–{sk_hi:.0}) | {lt:.0} ({lt_lo:.0}–{lt_hi:.0}) | {o:.2} |",
            c / n as f64
        );
    }
    println!("\nA node of this machine carries {carried} such sessions (median run) before it drops frames.");
}
