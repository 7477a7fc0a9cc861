//! Review proxy transcode speed: how fast a ProRes 422 source becomes its
//! review proxy (H.264 at the stream's size, the source's frames), in
//! multiples of real time and in CPU seconds per second of source, for a
//! 1080p and a UHD source on this machine.
//!
//! Run: `cargo bench --bench proxy` (release). Environment (defaults in
//! brackets): `PROXY_RUNS` [3] transcodes per size, `PROXY_FRAMES_1080`
//! [96] and `PROXY_FRAMES_UHD` [48] source frames (23.976 fps),
//! `PROXY_WIDTH`×`PROXY_HEIGHT` [1280×720] the proxy's box (the default
//! stream size). The sources are made first (ProRes encoding is slow and
//! not measured), in a temp dir removed at the end.
//!
//! Prints each run and the median: wall time, × real time (source
//! seconds over wall seconds), and this process's CPU seconds (user +
//! system, all threads: GStreamer's decoders and x264's) per second of
//! source.

use std::sync::atomic::AtomicU32;
use std::time::{Duration, Instant};

use syncreel::media::demo_clip::{self, ClipCodec, DemoClipSpec};
use syncreel::media::proxy::{self, ProxySpec};

fn env_or(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// This process's CPU time so far (user + system).
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is valid.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("proxy benchmark: run with `cargo bench --bench proxy`");
        return;
    }
    let runs = env_or("PROXY_RUNS", 3) as usize;
    let spec = ProxySpec {
        max_width: env_or("PROXY_WIDTH", 1280),
        max_height: env_or("PROXY_HEIGHT", 720),
        gop: 12,
        bitrate_kbps: 7500,
    };
    let dir = std::env::temp_dir().join(format!("syncreel-proxy-bench-{}", std::process::id()));
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "proxy bench: {runs} runs per source, proxy box {}×{}, {cores} cores",
        spec.max_width, spec.max_height
    );
    println!("| source | frames | run | wall s | × real time | CPU s per source s |");
    println!("|---|--:|--:|--:|--:|--:|");
    let mut summary = Vec::new();
    for (name, width, height, frames) in [
        (
            "1080p ProRes 422",
            1920,
            1080,
            env_or("PROXY_FRAMES_1080", 96),
        ),
        ("UHD ProRes 422", 3840, 2160, env_or("PROXY_FRAMES_UHD", 48)),
    ] {
        let source_path = dir.join(format!("{width}x{height}.mov"));
        let made = Instant::now();
        demo_clip::ensure(
            &source_path,
            &DemoClipSpec {
                width,
                height,
                frames,
                codec: ClipCodec::ProRes,
                ..DemoClipSpec::default()
            },
        )
        .expect("the ProRes source is made");
        eprintln!("{name}: source made in {:?}", made.elapsed());
        let source = syncreel::media::probe::probe(&source_path).expect("the source probes");
        let seconds = source.duration_frames as f64 * f64::from(source.rate.den())
            / f64::from(source.rate.num());
        let mut speeds = Vec::new();
        let mut cpus = Vec::new();
        for run in 1..=runs {
            let out = dir.join(format!("{width}x{height}-proxy-{run}.mov"));
            let progress = AtomicU32::new(0);
            let (wall0, cpu0) = (Instant::now(), cpu_time());
            let proxy = proxy::make(&source, &out, &spec, &progress).expect("the proxy is made");
            let (wall, cpu) = (wall0.elapsed(), cpu_time() - cpu0);
            assert_eq!(proxy.duration_frames, source.duration_frames);
            let speed = seconds / wall.as_secs_f64();
            let cpu_per = cpu.as_secs_f64() / seconds;
            println!(
                "| {name} | {frames} | {run} | {:.2} | {speed:.2} | {cpu_per:.2} |",
                wall.as_secs_f64()
            );
            speeds.push(speed);
            cpus.push(cpu_per);
            let _ = std::fs::remove_file(&out);
        }
        speeds.sort_by(f64::total_cmp);
        cpus.sort_by(f64::total_cmp);
        summary.push((name, speeds[speeds.len() / 2], cpus[cpus.len() / 2]));
    }
    println!();
    println!("| source | median × real time | median CPU s per source s |");
    println!("|---|--:|--:|");
    for (name, speed, cpu) in summary {
        println!("| {name} | {speed:.2} | {cpu:.2} |");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
