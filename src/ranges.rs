//! Which frames a participant actually saw, from their frame reports.
//!
//! An approval is only worth what the approver watched. Clients report the
//! frame on their screen twice a second; two reports in a row that moved
//! forward by no more than real-time playback could have covered mean
//! every frame between them was shown. Anything else (a seek, a shuttle,
//! a gap in reports) counts only the reported frames themselves. The
//! result is a receipt that never claims more than was seen.

/// Disjoint, sorted, inclusive ranges of frames. Adjacent ranges merge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameRanges {
    ranges: Vec<(i64, i64)>,
}

/// The most separate ranges kept per participant: beyond this, stepping
/// through single frames stops being recorded rather than growing without
/// bound.
pub const MAX_RANGES: usize = 4096;

impl FrameRanges {
    pub fn ranges(&self) -> &[(i64, i64)] {
        &self.ranges
    }

    /// How many distinct frames are covered.
    pub fn frame_count(&self) -> i64 {
        self.ranges
            .iter()
            .map(|(a, b)| b.saturating_sub(*a).saturating_add(1))
            .fold(0, i64::saturating_add)
    }

    /// Adds `first..=last` (in either order).
    pub fn add(&mut self, first: i64, last: i64) {
        let (lo, hi) = (first.min(last), first.max(last));
        // Every range that touches or overlaps [lo, hi] merges with it.
        let start = self
            .ranges
            .partition_point(|&(_, b)| b < lo.saturating_sub(1));
        let end = self
            .ranges
            .partition_point(|&(a, _)| a <= hi.saturating_add(1));
        if start == end && self.ranges.len() >= MAX_RANGES {
            return;
        }
        let (mut new_lo, mut new_hi) = (lo, hi);
        if start < end {
            new_lo = new_lo.min(self.ranges[start].0);
            new_hi = new_hi.max(self.ranges[end - 1].1);
        }
        self.ranges.splice(start..end, [(new_lo, new_hi)]);
    }
}

/// Turns a participant's successive frame reports into [`FrameRanges`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeenFrames {
    seen: FrameRanges,
    last: Option<(i64, i64)>,
}

impl SeenFrames {
    /// One report: `frame` was on screen at `at_micros`. `frames_per_second`
    /// is the media rate as num/den; the slack allows for reports that land
    /// a frame either side of the true instant.
    pub fn report(&mut self, frame: i64, at_micros: i64, rate: (u32, u32)) {
        const SLACK_FRAMES: i64 = 2;
        match self.last {
            Some((last_frame, last_at)) if at_micros > last_at && frame >= last_frame => {
                // In i128: reports come off the wire, and no difference of
                // two i64 overflows there.
                let elapsed = i128::from(at_micros) - i128::from(last_at);
                let possible =
                    elapsed * i128::from(rate.0) / (1_000_000 * i128::from(rate.1.max(1)));
                let moved = i128::from(frame) - i128::from(last_frame);
                if moved <= possible + i128::from(SLACK_FRAMES) {
                    self.seen.add(last_frame, frame);
                } else {
                    self.seen.add(frame, frame);
                }
            }
            _ => self.seen.add(frame, frame),
        }
        self.last = Some((frame, at_micros));
    }

    pub fn ranges(&self) -> &FrameRanges {
        &self.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ranges_merge_when_they_touch() {
        let mut r = FrameRanges::default();
        r.add(10, 20);
        r.add(30, 40);
        assert_eq!(r.ranges(), &[(10, 20), (30, 40)]);
        r.add(21, 29);
        assert_eq!(r.ranges(), &[(10, 40)]);
        r.add(5, 5);
        r.add(45, 41);
        assert_eq!(r.ranges(), &[(5, 5), (10, 45)]);
        assert_eq!(r.frame_count(), 1 + 36);
    }

    #[test]
    fn playing_through_covers_every_frame_and_a_seek_does_not() {
        let mut seen = SeenFrames::default();
        // 24 fps, reports every 500 ms while playing from frame 0.
        for i in 0..5 {
            seen.report(i * 12, i * 500_000, (24, 1));
        }
        assert_eq!(seen.ranges().ranges(), &[(0, 48)]);
        // A seek to 1000: the jump is not playback.
        seen.report(1000, 2_500_000, (24, 1));
        assert_eq!(seen.ranges().ranges(), &[(0, 48), (1000, 1000)]);
        // Shuttling at 4× skips frames, so only the reported ones count.
        seen.report(1048, 3_000_000, (24, 1));
        assert_eq!(seen.ranges().frame_count(), 49 + 2);
        // A late duplicate report (same instant) adds nothing new.
        seen.report(1048, 3_000_000, (24, 1));
        assert_eq!(seen.ranges().frame_count(), 51);
    }

    proptest! {
        #[test]
        fn ranges_equal_the_set_of_added_frames(adds in prop::collection::vec((0i64..200, 0i64..8), 0..60)) {
            let mut r = FrameRanges::default();
            let mut set = std::collections::BTreeSet::new();
            for (start, len) in adds {
                r.add(start, start + len);
                set.extend(start..=start + len);
            }
            prop_assert_eq!(r.frame_count(), set.len() as i64);
            for w in r.ranges().windows(2) {
                prop_assert!(w[0].1 + 1 < w[1].0, "disjoint, sorted, not adjacent");
            }
            for &(a, b) in r.ranges() {
                prop_assert!((a..=b).all(|f| set.contains(&f)));
            }
        }
    }
}
