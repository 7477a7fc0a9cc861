//! Micro-benchmarks of the pure core: the playhead function every
//! participant evaluates, and timecode labels both ways.
//!
//! Run with `cargo bench --bench clock`; `docs/benchmarks.md` records the
//! figures. Inputs go through `black_box` so that the compiler cannot fold
//! a constant position or label at build time.

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use syncreel::clock::{LoopMarks, ServerTime, Speed, Timeline, Transport};
use syncreel::timecode::{FrameRate, Timecode, TimecodeFormat};

/// Where every transport is anchored.
const ANCHOR: ServerTime = ServerTime::from_millis(1_000);
/// When it is evaluated: 83.5 s later, far enough to run through a loop
/// many times.
const NOW: ServerTime = ServerTime::from_micros(84_500_000);

fn transport_position(c: &mut Criterion) {
    let mut group = c.benchmark_group("transport_position");
    for (rate_name, rate) in [
        ("23.976", FrameRate::FPS_23_976),
        ("29.97", FrameRate::FPS_29_97),
    ] {
        let timeline = Timeline {
            rate,
            duration: 100_000,
        };
        let anchored = Transport::paused_at(50_000, ANCHOR);
        let playing = |speed: Speed| Transport {
            playing: true,
            speed,
            ..anchored
        };
        let cases = [
            ("paused", anchored),
            ("play_1x", playing(Speed::NORMAL)),
            (
                "play_1x_loop",
                Transport {
                    loop_marks: LoopMarks {
                        mark_in: Some(50_000),
                        mark_out: Some(50_100),
                    },
                    ..playing(Speed::NORMAL)
                },
            ),
            (
                "reverse_4x",
                playing(Speed::new(-4, 1).expect("-4 is a shuttle speed")),
            ),
        ];
        for (case, transport) in cases {
            group.bench_with_input(
                BenchmarkId::new(case, rate_name),
                &transport,
                |b, transport| {
                    b.iter(|| black_box(transport).position(black_box(&timeline), black_box(NOW)))
                },
            );
        }
    }
    group.finish();
}

fn timecode(c: &mut Criterion) {
    let ndf_24 = TimecodeFormat::new(FrameRate::FPS_24, false)
        .and_then(|f| f.with_start("01:00:00:00".parse::<Timecode>()?))
        .expect("24 fps NDF starting at 01:00:00:00");
    let df_2997 = TimecodeFormat::new(FrameRate::FPS_29_97, true)
        .and_then(|f| f.with_start("01:00:00;00".parse::<Timecode>()?))
        .expect("29.97 DF starting at 01:00:00;00");
    // A frame some minutes in, so that drop-frame has labels to skip.
    let frame = 123_456;

    let mut group = c.benchmark_group("timecode_label");
    for (name, format) in [("ndf_24", ndf_24), ("df_29.97", df_2997)] {
        group.bench_with_input(BenchmarkId::from_parameter(name), &format, |b, format| {
            b.iter(|| black_box(format).label(black_box(frame)).to_string())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("timecode_parse");
    for (name, format, text) in [
        ("ndf_24", ndf_24, "01:23:45:12"),
        ("df_29.97", df_2997, "01:23:45;12"),
    ] {
        // The label must be valid, or this would time the error path.
        assert!(format.parse(text).is_ok(), "{text} parses");
        group.bench_with_input(BenchmarkId::from_parameter(name), &text, |b, text| {
            b.iter(|| black_box(format).parse(black_box(text)))
        });
    }
    group.finish();
}

fn config() -> Criterion {
    // Short windows keep the whole run near a minute; these functions take
    // nanoseconds, so a few seconds is plenty of samples.
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

criterion_group! {
    name = benches;
    config = config();
    targets = transport_position, timecode
}
criterion_main!(benches);
