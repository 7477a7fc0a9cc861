//! The machine-readable frame code burnt into test media: a strip of
//! blocks along the bottom of the picture that spells the frame number.
//!
//! It is built to survive lossy compression and scaling. Each block is
//! 1/32 of the width and 1/16 of the height, every bit is a whole block, and
//! a reader samples only the middle of each block and picks its threshold
//! from two marker blocks (one white, one black). The layout, left to right:
//!
//! | cells | meaning |
//! |---|---|
//! | 0 | white marker |
//! | 1 | black marker |
//! | 2..26 | the frame number, 24 bits, most significant first |
//! | 26..32 | check bits: the 24 bits XOR-folded into 6 |
//!
//! Pure: it reads and writes 8-bit luma planes and nothing else. The web
//! client's canvas reader (`web-client/framecode.js`) must follow it.

/// Cells across the strip.
pub const CELLS: usize = 32;
const BITS: usize = 24;
const FIRST_BIT: usize = 2;
const FIRST_CHECK: usize = FIRST_BIT + BITS;
/// The strip's height is this fraction of the picture's.
const HEIGHT_DIVISOR: usize = 16;
/// Video-range white and black, so that the code survives range squeezing.
const WHITE: u8 = 235;
const BLACK: u8 = 16;

/// The largest frame number the code can carry.
pub const MAX_FRAME: u32 = (1 << BITS) - 1;

/// An 8-bit plane of `width × height` samples, `stride` bytes per row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlaneLayout {
    pub width: usize,
    pub height: usize,
    pub stride: usize,
}

impl PlaneLayout {
    /// The strip's rows: the bottom `height / 16` of the picture.
    fn strip_rows(&self) -> std::ops::Range<usize> {
        let h = (self.height / HEIGHT_DIVISOR).max(1);
        self.height - h..self.height
    }

    /// The columns of cell `i`.
    fn cell_columns(&self, i: usize) -> std::ops::Range<usize> {
        i * self.width / CELLS..(i + 1) * self.width / CELLS
    }
}

fn check_bits(frame: u32) -> u32 {
    (frame ^ (frame >> 6) ^ (frame >> 12) ^ (frame >> 18)) & 0x3f
}

/// The value of each cell for a frame number, white as `true`.
fn cells(frame: u32) -> [bool; CELLS] {
    let mut out = [false; CELLS];
    out[0] = true;
    for bit in 0..BITS {
        out[FIRST_BIT + bit] = frame >> (BITS - 1 - bit) & 1 == 1;
    }
    let check = check_bits(frame);
    for bit in 0..CELLS - FIRST_CHECK {
        out[FIRST_CHECK + bit] = check >> (CELLS - FIRST_CHECK - 1 - bit) & 1 == 1;
    }
    out
}

/// Paints the code for `frame` onto a luma plane. Frames beyond
/// [`MAX_FRAME`] wrap.
pub fn paint(frame: u32, luma: &mut [u8], layout: PlaneLayout) {
    let frame = frame & MAX_FRAME;
    for (i, white) in cells(frame).into_iter().enumerate() {
        let value = if white { WHITE } else { BLACK };
        for row in layout.strip_rows() {
            let start = row * layout.stride;
            let cols = layout.cell_columns(i);
            luma[start + cols.start..start + cols.end].fill(value);
        }
    }
}

/// Makes the strip's chroma neutral in a subsampled chroma plane, so that
/// the blocks are grey whatever the picture under them was.
pub fn neutralize_chroma(chroma: &mut [u8], layout: PlaneLayout) {
    for row in layout.strip_rows() {
        let start = row * layout.stride;
        chroma[start..start + layout.width].fill(128);
    }
}

/// Reads the frame number from a luma plane, or `None` when there is no
/// readable code (no markers, or the check bits disagree).
pub fn read(luma: &[u8], layout: PlaneLayout) -> Option<u32> {
    let rows = layout.strip_rows();
    // Sample the middle half of each cell in both directions: block edges
    // are where compression and scaling smear.
    let row_span = rows.len();
    let sample_rows = rows.start + row_span / 4..rows.end - row_span / 4;
    let mean = |i: usize| -> u32 {
        let cols = layout.cell_columns(i);
        let span = cols.len();
        let cols = cols.start + span / 4..cols.end - span / 4;
        let (mut sum, mut n) = (0u32, 0u32);
        for row in sample_rows.clone() {
            let line = &luma[row * layout.stride..];
            for c in cols.clone() {
                sum += u32::from(line[c]);
                n += 1;
            }
        }
        sum / n.max(1)
    };
    let (white, black) = (mean(0), mean(1));
    if white < black + 64 {
        return None;
    }
    let threshold = (white + black) / 2;
    let bit = |i: usize| u32::from(mean(i) > threshold);
    let frame = (0..BITS).fold(0, |acc, b| acc << 1 | bit(FIRST_BIT + b));
    let check = (FIRST_CHECK..CELLS).fold(0, |acc, i| acc << 1 | bit(i));
    (check == check_bits(frame)).then_some(frame)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn plane(width: usize, height: usize, fill: u8) -> (Vec<u8>, PlaneLayout) {
        let stride = width + 16;
        (
            vec![fill; stride * height],
            PlaneLayout {
                width,
                height,
                stride,
            },
        )
    }

    #[test]
    fn a_blank_or_noisy_picture_has_no_code() {
        let (luma, layout) = plane(1280, 720, 128);
        assert_eq!(read(&luma, layout), None);
        let (mut luma, layout) = plane(1280, 720, 0);
        for (i, px) in luma.iter_mut().enumerate() {
            *px = (i * 7919 % 251) as u8;
        }
        assert_eq!(read(&luma, layout), None);
    }

    #[test]
    fn check_bits_catch_any_single_flipped_bit() {
        for frame in [0u32, 1, 245, 86_400, MAX_FRAME] {
            for bit in 0..BITS {
                let flipped = frame ^ (1 << bit);
                assert_ne!(check_bits(flipped), check_bits(frame), "{frame} bit {bit}");
            }
        }
    }

    /// Box-downscales a plane by an integer factor, as a crude stand-in
    /// for the scaler, and adds deterministic noise as a stand-in for
    /// compression.
    fn degrade(
        luma: &[u8],
        layout: PlaneLayout,
        factor: usize,
        seed: u32,
    ) -> (Vec<u8>, PlaneLayout) {
        let out_layout = PlaneLayout {
            width: layout.width / factor,
            height: layout.height / factor,
            stride: layout.width / factor,
        };
        let mut out = vec![0u8; out_layout.stride * out_layout.height];
        let mut state = seed.wrapping_mul(2_654_435_761).max(1);
        for y in 0..out_layout.height {
            for x in 0..out_layout.width {
                let mut sum = 0u32;
                for dy in 0..factor {
                    for dx in 0..factor {
                        sum += u32::from(luma[(y * factor + dy) * layout.stride + x * factor + dx]);
                    }
                }
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let noise = (state % 41) as i32 - 20;
                let v = (sum / (factor * factor) as u32) as i32 + noise;
                out[y * out_layout.stride + x] = v.clamp(0, 255) as u8;
            }
        }
        (out, out_layout)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn reads_back_what_it_painted_after_scaling_and_noise(
            frame in 0u32..=MAX_FRAME, background in any::<u8>(), factor in 1usize..4, seed in any::<u32>(),
        ) {
            let (mut luma, layout) = plane(960, 540, background);
            paint(frame, &mut luma, layout);
            prop_assert_eq!(read(&luma, layout), Some(frame));
            let (small, small_layout) = degrade(&luma, layout, factor, seed);
            prop_assert_eq!(read(&small, small_layout), Some(frame));
        }
    }
}
