//! Version compare: two versions of an item in one picture.
//!
//! The session's player decodes the second version with a decoder of its
//! own that is asked for the same frame as the first at every tick, so
//! both follow the one playhead (a seek, a step and play reach both), and
//! the two pictures are composed here into one before the one encoder:
//! the stream is still encoded and packetized once per session, and every
//! viewer sees the same composed picture.
//!
//! Both decoders decode at the stream's size. `Side` halves each picture
//! (a 2×2 average, which keeps the picture's shape) and letterboxes the
//! halves left (A) and right (B); `Wipe` shows A left of the wipe line and
//! B right of it. Composing in memory rather than with a `compositor`
//! element keeps the exact-frame decoders as they are: each is asked for
//! a frame and answers with that frame, which an aggregating element fed
//! by two sources cannot promise after a seek.
//!
//! Past the shorter version's end its last frame is held.

use gstreamer as gst;
use gstreamer_video as gst_video;
use gstreamer_video::VideoFrameExt;

use super::{MediaError, MediaInfo};

/// What a player compares against the version on screen.
#[derive(Debug, Clone, PartialEq)]
pub struct CompareSpec {
    /// The other version's file (B).
    pub media: MediaInfo,
    pub layout: Layout,
}

/// How the two versions share the picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Layout {
    /// A on the left half, B on the right, each scaled to half size.
    Side,
    /// A left of the line at this fraction of the width (0..=1), B right.
    Wipe(f32),
}

/// Composes `a` and `b` (I420 pictures of `width`×`height`) into a new one.
pub fn compose(
    a: &gst::Buffer,
    b: &gst::Buffer,
    width: u32,
    height: u32,
    layout: Layout,
) -> Result<gst::Buffer, MediaError> {
    let fail = |e: &dyn std::fmt::Display| MediaError::Gstreamer(e.to_string());
    let info = gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, width, height)
        .build()
        .map_err(|e| fail(&e))?;
    let a = gst_video::VideoFrameRef::from_buffer_ref_readable(a.as_ref(), &info)
        .map_err(|e| fail(&e))?;
    let b = gst_video::VideoFrameRef::from_buffer_ref_readable(b.as_ref(), &info)
        .map_err(|e| fail(&e))?;
    let mut out = gst::Buffer::with_size(info.size()).map_err(|e| fail(&e))?;
    {
        let out = out.get_mut().expect("a new buffer is writable");
        let mut frame =
            gst_video::VideoFrameRef::from_buffer_ref_writable(out, &info).map_err(|e| fail(&e))?;
        for plane in 0..3u32 {
            let (pw, ph) = if plane == 0 {
                (width as usize, height as usize)
            } else {
                (width.div_ceil(2) as usize, height.div_ceil(2) as usize)
            };
            let blank = if plane == 0 { 16 } else { 128 };
            let shape = Plane {
                width: pw,
                height: ph,
                stride: frame.plane_stride()[plane as usize] as usize,
            };
            let a_stride = a.plane_stride()[plane as usize] as usize;
            let b_stride = b.plane_stride()[plane as usize] as usize;
            let src_a = (a.plane_data(plane).map_err(|e| fail(&e))?, a_stride);
            let src_b = (b.plane_data(plane).map_err(|e| fail(&e))?, b_stride);
            let dst = frame.plane_data_mut(plane).map_err(|e| fail(&e))?;
            match layout {
                Layout::Side => side(dst, shape, src_a, src_b, blank),
                Layout::Wipe(at) => wipe(dst, shape, src_a, src_b, at),
            }
        }
    }
    Ok(out)
}

#[derive(Clone, Copy)]
struct Plane {
    width: usize,
    height: usize,
    stride: usize,
}

/// Each source halved into its half of the plane, centred vertically.
fn side(dst: &mut [u8], p: Plane, a: (&[u8], usize), b: (&[u8], usize), blank: u8) {
    for row in dst.chunks_mut(p.stride).take(p.height) {
        row[..p.width].fill(blank);
    }
    let (half_w, half_h) = (p.width / 2, p.height / 2);
    let top = (p.height - half_h) / 2;
    for (x0, (src, stride)) in [(0, a), (p.width - half_w, b)] {
        for y in 0..half_h {
            let (r0, r1) = (2 * y, (2 * y + 1).min(p.height - 1));
            let d = (top + y) * p.stride + x0;
            for x in 0..half_w {
                let (c0, c1) = (2 * x, (2 * x + 1).min(p.width - 1));
                let sum = u16::from(src[r0 * stride + c0])
                    + u16::from(src[r0 * stride + c1])
                    + u16::from(src[r1 * stride + c0])
                    + u16::from(src[r1 * stride + c1]);
                dst[d + x] = ((sum + 2) / 4) as u8;
            }
        }
    }
}

/// A left of the line, B from it on.
fn wipe(dst: &mut [u8], p: Plane, a: (&[u8], usize), b: (&[u8], usize), at: f32) {
    let cut = ((at.clamp(0.0, 1.0) * p.width as f32).round() as usize).min(p.width);
    for y in 0..p.height {
        let d = y * p.stride;
        dst[d..d + cut].copy_from_slice(&a.0[y * a.1..y * a.1 + cut]);
        dst[d + cut..d + p.width].copy_from_slice(&b.0[y * b.1 + cut..y * b.1 + p.width]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(w: usize, h: usize, value: u8) -> Vec<u8> {
        vec![value; w * h]
    }

    #[test]
    fn side_puts_a_left_and_b_right_at_half_size_letterboxed() {
        let p = Plane {
            width: 8,
            height: 8,
            stride: 8,
        };
        let (a, b) = (plane(8, 8, 100), plane(8, 8, 200));
        let mut dst = vec![0; 64];
        side(&mut dst, p, (&a, 8), (&b, 8), 16);
        // Rows 0..2 and 6..8 are the letterbox; 2..6 hold the halves.
        assert_eq!(&dst[0..8], &[16; 8]);
        assert_eq!(
            &dst[2 * 8..3 * 8],
            &[100, 100, 100, 100, 200, 200, 200, 200]
        );
        assert_eq!(&dst[7 * 8..], &[16; 8]);
    }

    #[test]
    fn wipe_cuts_at_its_fraction_of_the_width() {
        let p = Plane {
            width: 8,
            height: 2,
            stride: 8,
        };
        let (a, b) = (plane(8, 2, 1), plane(8, 2, 2));
        let mut dst = vec![0; 16];
        wipe(&mut dst, p, (&a, 8), (&b, 8), 0.25);
        assert_eq!(&dst[..8], &[1, 1, 2, 2, 2, 2, 2, 2]);
        wipe(&mut dst, p, (&a, 8), (&b, 8), 1.0);
        assert_eq!(&dst[8..], &[1; 8]);
        wipe(&mut dst, p, (&a, 8), (&b, 8), 0.0);
        assert_eq!(&dst[..8], &[2; 8]);
    }
}
