//! The shared playhead: where the room is, as a pure function of server time.
//!
//! A [`Transport`] is an anchor (a frame at a server instant) plus a mode
//! and speed. Every participant evaluates the same function with the same
//! inputs, so nobody streams positions: only anchors change, and only when
//! someone drives. This module never reads the system clock; `now` is
//! always an argument. It uses no floats: positions are `i64` frames and the
//! arithmetic is exact in `i128`.

use crate::timecode::FrameRate;

/// Microseconds on the server's monotonic clock, counted from an epoch the
/// server picks at start-up. Clients map their own clock onto it through the
/// clock-sync exchange.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServerTime(i64);

impl ServerTime {
    pub const fn from_micros(us: i64) -> ServerTime {
        ServerTime(us)
    }

    pub const fn from_millis(ms: i64) -> ServerTime {
        ServerTime(ms * 1000)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub fn saturating_add_micros(self, us: i64) -> ServerTime {
        ServerTime(self.0.saturating_add(us))
    }
}

/// A playback speed from the shuttle set: −4, −3, −2, −1, ½, 1, 2, 3, 4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Speed {
    /// Signed numerator; negative plays in reverse.
    num: i8,
    /// 1, or 2 for half speed.
    den: u8,
}

impl Speed {
    pub const NORMAL: Speed = Speed { num: 1, den: 1 };
    pub const HALF: Speed = Speed { num: 1, den: 2 };

    /// Speeds a shuttle control can reach, slowest reverse to fastest forward.
    pub const ALL: [Speed; 9] = [
        Speed { num: -4, den: 1 },
        Speed { num: -3, den: 1 },
        Speed { num: -2, den: 1 },
        Speed { num: -1, den: 1 },
        Speed::HALF,
        Speed::NORMAL,
        Speed { num: 2, den: 1 },
        Speed { num: 3, den: 1 },
        Speed { num: 4, den: 1 },
    ];

    /// A speed as a fraction; `None` when it is not in the shuttle set.
    pub fn new(num: i32, den: u32) -> Option<Speed> {
        Self::ALL
            .into_iter()
            .find(|s| i64::from(s.num) * i64::from(den) == i64::from(num) * i64::from(s.den))
    }

    pub fn num(self) -> i32 {
        i32::from(self.num)
    }

    pub fn den(self) -> u32 {
        u32::from(self.den)
    }

    pub fn is_reverse(self) -> bool {
        self.num < 0
    }
}

/// What the room's media looks like to the clock: its rate and length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeline {
    pub rate: FrameRate,
    /// At least 1; the last frame is `duration - 1`.
    pub duration: i64,
}

impl Timeline {
    pub fn last_frame(&self) -> i64 {
        self.duration - 1
    }

    pub fn clamp(&self, frame: i64) -> i64 {
        frame.clamp(0, self.last_frame())
    }

    pub fn contains(&self, frame: i64) -> bool {
        (0..self.duration).contains(&frame)
    }
}

/// An inclusive range of frames that playback wraps around, `first ≤ last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopRange {
    pub first: i64,
    pub last: i64,
}

impl LoopRange {
    fn len(&self) -> i64 {
        self.last - self.first + 1
    }
}

/// Loop marks as the driver set them. A loop is active only when both are
/// set, which is why the marks live apart from [`LoopRange`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoopMarks {
    pub mark_in: Option<i64>,
    pub mark_out: Option<i64>,
}

impl LoopMarks {
    pub fn range(&self) -> Option<LoopRange> {
        match (self.mark_in, self.mark_out) {
            (Some(first), Some(last)) if first <= last => Some(LoopRange { first, last }),
            _ => None,
        }
    }
}

/// The shared transport state: evaluate [`Transport::position`] at any
/// server instant to get the frame the room shows then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transport {
    pub playing: bool,
    /// Kept while paused so that "play" resumes the last shuttle direction
    /// only when asked; `play` itself resets it to 1×.
    pub speed: Speed,
    /// The frame shown at `anchor_time`.
    pub anchor_frame: i64,
    /// When this state takes effect. Before it, the previous state applies;
    /// [`Transport::position`] treats earlier instants as the anchor frame.
    pub anchor_time: ServerTime,
    pub loop_marks: LoopMarks,
}

impl Transport {
    pub fn paused_at(frame: i64, at: ServerTime) -> Transport {
        Transport {
            playing: false,
            speed: Speed::NORMAL,
            anchor_frame: frame,
            anchor_time: at,
            loop_marks: LoopMarks::default(),
        }
    }

    /// The frame on screen at `now`.
    pub fn position(&self, timeline: &Timeline, now: ServerTime) -> i64 {
        if !self.playing {
            return timeline.clamp(self.anchor_frame);
        }
        let advanced = frames_elapsed(timeline.rate, self.speed, self.anchor_time, now);
        let raw = if self.speed.is_reverse() {
            self.anchor_frame.saturating_sub(advanced)
        } else {
            self.anchor_frame.saturating_add(advanced)
        };
        timeline.clamp(self.wrap(raw))
    }

    /// When a playing transport will reach the first or last frame and
    /// stop moving, or `None` when it never will (paused, or looping).
    pub fn reaches_bound_at(&self, timeline: &Timeline) -> Option<ServerTime> {
        if !self.playing || self.engaged_loop().is_some() {
            return None;
        }
        let distance = if self.speed.is_reverse() {
            self.anchor_frame
        } else {
            timeline.last_frame() - self.anchor_frame
        };
        if distance <= 0 {
            return Some(self.anchor_time);
        }
        // The first instant at which `frames_elapsed` reaches `distance`:
        // ceil(distance × 1e6 × den × sden / (num × |snum|)).
        let rate = timeline.rate;
        let numer = i128::from(distance)
            * 1_000_000
            * i128::from(rate.den())
            * i128::from(self.speed.den());
        let denom = i128::from(rate.num()) * i128::from(self.speed.num().unsigned_abs());
        let micros = (numer + denom - 1) / denom;
        Some(
            self.anchor_time
                .saturating_add_micros(i64::try_from(micros).unwrap_or(i64::MAX)),
        )
    }

    /// The loop range, if one is set and this playback runs into it: a
    /// forward play that starts after the loop, or a reverse play that
    /// starts before it, ignores it and runs to the end of the media.
    fn engaged_loop(&self) -> Option<LoopRange> {
        let range = self.loop_marks.range()?;
        let engaged = if self.speed.is_reverse() {
            self.anchor_frame >= range.first
        } else {
            self.anchor_frame <= range.last
        };
        engaged.then_some(range)
    }

    fn wrap(&self, raw: i64) -> i64 {
        let Some(range) = self.engaged_loop() else {
            return raw;
        };
        if self.speed.is_reverse() && raw < range.first {
            range.last - (range.last - raw).rem_euclid(range.len())
        } else if !self.speed.is_reverse() && raw > range.last {
            range.first + (raw - range.first).rem_euclid(range.len())
        } else {
            raw
        }
    }
}

/// Whole frames played between `from` and `to` at `speed`, never negative.
fn frames_elapsed(rate: FrameRate, speed: Speed, from: ServerTime, to: ServerTime) -> i64 {
    let elapsed = i128::from(to.as_micros()) - i128::from(from.as_micros());
    if elapsed <= 0 {
        return 0;
    }
    let numer = elapsed * i128::from(rate.num()) * i128::from(speed.num().unsigned_abs());
    let denom = 1_000_000 * i128::from(rate.den()) * i128::from(speed.den());
    i64::try_from(numer / denom).unwrap_or(i64::MAX)
}

/// The RTP clock of video: 90 kHz, counted from the server epoch.
pub const VIDEO_CLOCK_RATE: i64 = 90_000;

/// The 90 kHz RTP timestamp of a server instant, rounded up so that the
/// instant it maps back to is never before the picture's own. The stream
/// (`rtc`) stamps pictures with it and the wire (`frameMap`) tells clients
/// how to map it back, so it lives with the clock both read.
pub fn rtp_timestamp(at: ServerTime) -> u32 {
    let micros = i128::from(at.as_micros().max(0));
    let ticks = (micros * i128::from(VIDEO_CLOCK_RATE) + 999_999) / 1_000_000;
    (ticks % (1i128 << 32)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rtp_timestamps_map_back_to_the_same_frame() {
        // 23.976: frame boundaries fall between 90 kHz ticks; rounding up
        // keeps the mapped instant inside the frame.
        for micros in [0i64, 41_708, 41_709, 1_000_000_001, 47_721_858_844] {
            let rtp = rtp_timestamp(ServerTime::from_micros(micros));
            let back = (i128::from(rtp) * 1_000_000 / 90_000) as i64;
            let expected = micros % ((1i64 << 32) * 1_000_000 / 90_000);
            assert!(
                back >= expected - 1 && back - expected < 12,
                "{micros}: {back} vs {expected}"
            );
        }
    }
    use proptest::prelude::*;

    const T0: ServerTime = ServerTime::from_millis(1_000);

    fn timeline(rate: FrameRate, duration: i64) -> Timeline {
        Timeline { rate, duration }
    }

    fn playing(frame: i64, speed: Speed) -> Transport {
        Transport {
            playing: true,
            speed,
            ..Transport::paused_at(frame, T0)
        }
    }

    fn at_ms(ms: i64) -> ServerTime {
        T0.saturating_add_micros(ms * 1000)
    }

    fn check(t: &Transport, tl: &Timeline, cases: &[(i64, i64)]) {
        for &(micros_after, expected) in cases {
            let now = T0.saturating_add_micros(micros_after);
            assert_eq!(t.position(tl, now), expected, "at +{micros_after} µs");
        }
    }

    #[test]
    fn paused_stays_put_and_is_clamped() {
        let tl = timeline(FrameRate::FPS_24, 100);
        check(
            &Transport::paused_at(10, T0),
            &tl,
            &[(0, 10), (10_000_000, 10)],
        );
        check(&Transport::paused_at(500, T0), &tl, &[(0, 99)]);
    }

    #[test]
    fn play_advances_exactly_on_frame_boundaries_at_23_976() {
        let tl = timeline(FrameRate::FPS_23_976, 1_000_000);
        // One frame lasts 1001/24000 s = 41 708.33 µs.
        check(
            &playing(0, Speed::NORMAL),
            &tl,
            &[
                (-5, 0),
                (0, 0),
                (41_708, 0),
                (41_709, 1),
                (83_416, 1),
                (83_417, 2),
            ],
        );
        // After an hour of wall time, 23.976 has shown 86 313.686 frames.
        check(&playing(0, Speed::NORMAL), &tl, &[(3_600_000_000, 86_313)]);
    }

    #[test]
    fn shuttle_speeds_scale_the_rate() {
        let tl = timeline(FrameRate::FPS_25, 10_000);
        check(&playing(100, Speed::HALF), &tl, &[(1_000_000, 112)]);
        check(
            &playing(100, Speed::new(4, 1).unwrap()),
            &tl,
            &[(1_000_000, 200)],
        );
        check(
            &playing(100, Speed::new(-2, 1).unwrap()),
            &tl,
            &[(1_000_000, 50)],
        );
        check(
            &playing(100, Speed::new(-1, 1).unwrap()),
            &tl,
            &[(39_999, 100), (40_000, 99)],
        );
    }

    #[test]
    fn playback_clamps_at_both_ends_and_says_when() {
        let tl = timeline(FrameRate::FPS_24, 48);
        let t = playing(0, Speed::NORMAL);
        check(
            &t,
            &tl,
            &[(1_958_333, 46), (1_958_334, 47), (60_000_000, 47)],
        );
        assert_eq!(
            t.reaches_bound_at(&tl),
            Some(at_ms(0).saturating_add_micros(1_958_334))
        );
        let back = playing(24, Speed::new(-1, 1).unwrap());
        check(&back, &tl, &[(2_000_000, 0)]);
        assert_eq!(back.reaches_bound_at(&tl), Some(at_ms(1_000)));
        assert_eq!(Transport::paused_at(3, T0).reaches_bound_at(&tl), None);
    }

    #[test]
    fn loops_wrap_in_both_directions() {
        let tl = timeline(FrameRate::FPS_24, 1000);
        let marks = LoopMarks {
            mark_in: Some(10),
            mark_out: Some(19),
        };
        let fwd = Transport {
            loop_marks: marks,
            ..playing(15, Speed::NORMAL)
        };
        // 24 frames per second: +5 frames reaches 20, which wraps to 10, and
        // +15 reaches 30, which wraps to 10 again.
        check(&fwd, &tl, &[(166_667, 19), (208_334, 10), (625_000, 10)]);
        assert_eq!(fwd.reaches_bound_at(&tl), None);

        let before = Transport {
            loop_marks: marks,
            ..playing(0, Speed::NORMAL)
        };
        check(&before, &tl, &[(1_000_000, 14)]);

        let after = Transport {
            loop_marks: marks,
            ..playing(500, Speed::NORMAL)
        };
        check(&after, &tl, &[(1_000_000, 524)]);

        let rev = Transport {
            loop_marks: marks,
            ..playing(12, Speed::new(-1, 1).unwrap())
        };
        check(&rev, &tl, &[(125_000, 19), (166_667, 18)]);
    }

    #[test]
    fn loop_needs_both_marks_in_order() {
        assert_eq!(
            LoopMarks {
                mark_in: Some(5),
                mark_out: None
            }
            .range(),
            None
        );
        assert_eq!(
            LoopMarks {
                mark_in: Some(5),
                mark_out: Some(4)
            }
            .range(),
            None
        );
        assert_eq!(
            LoopMarks {
                mark_in: Some(5),
                mark_out: Some(5)
            }
            .range(),
            Some(LoopRange { first: 5, last: 5 })
        );
    }

    #[test]
    fn speeds_outside_the_shuttle_set_are_refused() {
        assert_eq!(Speed::new(2, 4), Some(Speed::HALF));
        assert_eq!(Speed::new(-8, 2).map(Speed::num), Some(-4));
        for (n, d) in [(0, 1), (5, 1), (-1, 2), (3, 2), (1, 0)] {
            assert_eq!(Speed::new(n, d), None, "{n}/{d}");
        }
    }

    fn any_rate() -> impl Strategy<Value = FrameRate> {
        (0..FrameRate::ALL.len()).prop_map(|i| FrameRate::ALL[i])
    }

    fn any_speed() -> impl Strategy<Value = Speed> {
        (0..Speed::ALL.len()).prop_map(|i| Speed::ALL[i])
    }

    proptest! {
        #[test]
        fn position_is_monotonic_in_the_play_direction(
            rate in any_rate(), speed in any_speed(),
            anchor in 0i64..100_000, a in 0i64..10_000_000_000, b in 0i64..10_000_000_000,
        ) {
            let tl = timeline(rate, 100_000);
            let t = playing(anchor, speed);
            let (early, late) = (a.min(b), a.max(b));
            let p_early = t.position(&tl, T0.saturating_add_micros(early));
            let p_late = t.position(&tl, T0.saturating_add_micros(late));
            if speed.is_reverse() {
                prop_assert!(p_late <= p_early);
            } else {
                prop_assert!(p_late >= p_early);
            }
            prop_assert!(tl.contains(p_early) && tl.contains(p_late));
        }

        #[test]
        fn position_matches_exact_rational_time(
            rate in any_rate(), frames in 0i64..500_000,
        ) {
            // The instant frame n starts is ceil(n × den × 1e6 / num) µs.
            let tl = timeline(rate, 1_000_000);
            let t = playing(0, Speed::NORMAL);
            let numer = i128::from(frames) * i128::from(rate.den()) * 1_000_000;
            let num = i128::from(rate.num());
            let start = ((numer + num - 1) / num) as i64;
            prop_assert_eq!(t.position(&tl, T0.saturating_add_micros(start)), frames);
            if frames > 0 {
                prop_assert_eq!(t.position(&tl, T0.saturating_add_micros(start - 1)), frames - 1);
            }
        }

        #[test]
        fn looping_never_leaves_the_loop_once_inside(
            rate in any_rate(), speed in any_speed(),
            first in 0i64..5_000, len in 1i64..500, offset in 0i64..500, elapsed in 0i64..100_000_000,
        ) {
            let tl = timeline(rate, 10_000);
            let last = first + len - 1;
            let anchor = first + offset % len;
            let t = Transport {
                loop_marks: LoopMarks { mark_in: Some(first), mark_out: Some(last) },
                ..playing(anchor, speed)
            };
            let p = t.position(&tl, T0.saturating_add_micros(elapsed));
            prop_assert!((first..=last).contains(&p), "{p} outside {first}..={last}");
        }

        #[test]
        fn bound_time_is_the_first_instant_at_the_bound(
            rate in any_rate(), speed in any_speed(), anchor in 0i64..2_000, duration in 1i64..2_000,
        ) {
            let tl = timeline(rate, duration);
            let t = playing(anchor.min(duration - 1), speed);
            let at = t.reaches_bound_at(&tl).unwrap();
            let bound = if speed.is_reverse() { 0 } else { tl.last_frame() };
            prop_assert_eq!(t.position(&tl, at), bound);
            if at > t.anchor_time {
                prop_assert_ne!(t.position(&tl, at.saturating_add_micros(-1)), bound);
            }
        }
    }
}
