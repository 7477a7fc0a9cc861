//! Exact frames for everything that is not playing: a paused room, a
//! step, a jog, a scrub. The live stream is lossy and trails the
//! playhead; a still here is the frame itself, decoded by the player's
//! decoder and sent as a lossless PNG (16 bits a channel for a source of
//! more than 8, so that a 10-bit grade's still keeps its 10 bits),
//! addressed by (version checksum, frame, width, watermark) so that it
//! never changes and any cache may keep it. A watermarked session's
//! stills carry its watermark, drawn by the same overlay as its stream
//! (`media::watermark`): a still is never a way around the mark, and the
//! cache never hands one session's unmarked picture to another's marked
//! one.
//!
//! Two things make nearby frames cheap. A decoder per (version, width)
//! stays warm between requests, so the next frame is a forward decode, not
//! a seek from the keyframe before it; it is closed after `idle` without
//! use, and at most `decoders` are kept. And encoded frames are kept in a
//! cache bounded by bytes, so a page stepping back and forth over a few
//! frames costs memory reads.
//!
//! Blocking throughout (GStreamer and PNG): callers use `spawn_blocking`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer_video as gst_video;
use lru::LruCache;

use super::player::Decoder;
use super::watermark::Watermark;
use super::{MediaError, MediaInfo};
use crate::clock::Timeline;

/// How many frames and decoders, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameLimits {
    /// Encoded frames kept, in bytes.
    pub cache_bytes: usize,
    /// Warm decoders kept at once (each holds a GStreamer pipeline).
    pub decoders: usize,
    /// A decoder unused this long is closed.
    pub idle: Duration,
}

/// One encoded frame's address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FrameKey {
    pub checksum: String,
    pub frame: i64,
    pub width: u32,
    /// Burned into the picture: part of what it is.
    pub watermark: Option<Watermark>,
}

/// The widths a still may be asked at for a source `source_width` wide:
/// from a thumbnail to the source itself (scaling up shows nothing new).
pub fn width_range(source_width: u32) -> std::ops::RangeInclusive<u32> {
    let max = source_width.max(MIN_WIDTH);
    MIN_WIDTH..=max
}

const MIN_WIDTH: u32 = 64;

/// Counters for `/metrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct FrameStats {
    pub cached_bytes: usize,
    pub cached_frames: usize,
    pub warm_decoders: usize,
    pub hits: u64,
    pub misses: u64,
}

pub struct FrameServer {
    limits: FrameLimits,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for FrameServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameServer")
            .field("limits", &self.limits)
            .field("stats", &self.stats())
            .finish()
    }
}

struct Inner {
    cache: LruCache<FrameKey, Bytes>,
    cached_bytes: usize,
    decoders: HashMap<(String, u32, Option<Watermark>), Arc<Mutex<Warm>>>,
    hits: u64,
    misses: u64,
}

/// A decoder at one size, with when it was last used.
struct Warm {
    decoder: Option<Decoder>,
    timeline: Timeline,
    width: u32,
    height: u32,
    watermark: Option<Watermark>,
    used: Instant,
}

impl Drop for Warm {
    fn drop(&mut self) {
        if let Some(decoder) = self.decoder.take() {
            decoder.close();
        }
    }
}

impl FrameServer {
    pub fn new(limits: FrameLimits) -> FrameServer {
        FrameServer {
            limits,
            inner: Mutex::new(Inner {
                cache: LruCache::unbounded(),
                cached_bytes: 0,
                decoders: HashMap::new(),
                hits: 0,
                misses: 0,
            }),
        }
    }

    /// The frame if it is cached; cheap, never blocks on a decode.
    pub fn cached(&self, key: &FrameKey) -> Option<Bytes> {
        let mut inner = self.inner.lock().expect("frame cache lock");
        let hit = inner.cache.get(key).cloned();
        if hit.is_some() {
            inner.hits += 1;
        }
        hit
    }

    /// The PNG of `key.frame` of `media` (whose checksum is
    /// `key.checksum`) at `key.width` wide: from the cache, else decoded.
    pub fn png(&self, media: &MediaInfo, key: &FrameKey) -> Result<Bytes, MediaError> {
        if let Some(hit) = self.cached(key) {
            return Ok(hit);
        }
        let warm = self.decoder_for(media, key)?;
        let mut warm = warm.lock().expect("decoder lock");
        warm.used = Instant::now();
        // Another request may have made it while this one waited.
        if let Some(hit) = self.cached(key) {
            return Ok(hit);
        }
        let png = warm.png(media, key.frame)?;
        // Cached before the decoder is let go, so that a request waiting
        // for this decoder finds it instead of encoding it again.
        let mut inner = self.inner.lock().expect("frame cache lock");
        inner.misses += 1;
        if png.len() <= self.limits.cache_bytes {
            if let Some(old) = inner.cache.put(key.clone(), png.clone()) {
                inner.cached_bytes -= old.len();
            }
            inner.cached_bytes += png.len();
            while inner.cached_bytes > self.limits.cache_bytes {
                let Some((_, evicted)) = inner.cache.pop_lru() else {
                    break;
                };
                inner.cached_bytes -= evicted.len();
            }
        }
        Ok(png)
    }

    /// Closes decoders unused for `limits.idle`. Returns how many are left.
    pub fn sweep(&self) -> usize {
        let mut inner = self.inner.lock().expect("frame cache lock");
        let idle = self.limits.idle;
        // A decoder in use (its lock held) is not idle.
        inner.decoders.retain(|_, warm| {
            warm.try_lock()
                .map(|w| w.used.elapsed() < idle)
                .unwrap_or(true)
        });
        inner.decoders.len()
    }

    pub fn stats(&self) -> FrameStats {
        let inner = self.inner.lock().expect("frame cache lock");
        FrameStats {
            cached_bytes: inner.cached_bytes,
            cached_frames: inner.cache.len(),
            warm_decoders: inner.decoders.len(),
            hits: inner.hits,
            misses: inner.misses,
        }
    }

    fn decoder_for(
        &self,
        media: &MediaInfo,
        key: &FrameKey,
    ) -> Result<Arc<Mutex<Warm>>, MediaError> {
        let id = (key.checksum.clone(), key.width, key.watermark.clone());
        let mut inner = self.inner.lock().expect("frame cache lock");
        if let Some(warm) = inner.decoders.get(&id) {
            return Ok(warm.clone());
        }
        // Room for one more: the least recently used goes (it closes once
        // whoever holds it is done).
        while inner.decoders.len() >= self.limits.decoders.max(1) {
            let oldest = inner
                .decoders
                .iter()
                .min_by_key(|(_, w)| w.try_lock().map_or(Instant::now(), |w| w.used))
                .map(|(id, _)| id.clone());
            match oldest {
                Some(oldest) => inner.decoders.remove(&oldest),
                None => break,
            };
        }
        let (width, height) = super::still::still_size((media.width, media.height), key.width);
        let warm = Arc::new(Mutex::new(Warm {
            decoder: None,
            timeline: Timeline {
                rate: media.rate,
                duration: media.duration_frames,
            },
            width,
            height,
            watermark: key.watermark.clone(),
            used: Instant::now(),
        }));
        inner.decoders.insert(id, warm.clone());
        Ok(warm)
    }
}

impl Warm {
    fn png(&mut self, media: &MediaInfo, frame: i64) -> Result<Bytes, MediaError> {
        if self.decoder.is_none() {
            self.decoder = Some(Decoder::open_as(
                media,
                self.width,
                self.height,
                // 8 bits a channel for an 8-bit source, 16 for a deeper
                // one: a 10-bit grade's still keeps its 10 bits.
                &[
                    gst_video::VideoFormat::Rgb,
                    gst_video::VideoFormat::Rgba64Be,
                ],
                self.watermark.as_ref(),
            )?);
        }
        let decoder = self.decoder.as_mut().expect("opened above");
        let frame = frame.clamp(0, self.timeline.last_frame());
        let picture = match decoder.frame(frame, &self.timeline) {
            Ok((picture, _)) => picture,
            Err(err) => {
                // A decoder that failed once is not trusted again.
                if let Some(broken) = self.decoder.take() {
                    broken.close();
                }
                return Err(err);
            }
        };
        let deep = decoder.format() == gst_video::VideoFormat::Rgba64Be;
        let map = picture
            .buffer
            .map_readable()
            .map_err(|e| MediaError::Gstreamer(e.to_string()))?;
        let pixels = (self.width as usize) * (self.height as usize);
        let len = pixels * if deep { 8 } else { 3 };
        let data = map.as_slice().get(..len).ok_or_else(|| {
            MediaError::Gstreamer(format!(
                "a decoded picture was shorter than {}x{}",
                self.width, self.height
            ))
        })?;
        if deep {
            encode_png16(&rgb16_from_rgba64(data), self.width, self.height)
        } else {
            encode_png(data, self.width, self.height)
        }
        .map(Bytes::from)
    }
}

/// RGB, 8 bits a channel, to PNG. Fast compression: a 1280×720 frame in
/// ~10 ms here, and lossless, which is the point; smaller files cost more
/// time than the loopback or LAN they travel over.
pub fn encode_png(rgb: &[u8], width: u32, height: u32) -> Result<Vec<u8>, MediaError> {
    encode(rgb, width, height, png::BitDepth::Eight)
}

/// RGB, 16 bits a channel, big-endian (PNG's own order), to PNG.
pub fn encode_png16(rgb16: &[u8], width: u32, height: u32) -> Result<Vec<u8>, MediaError> {
    encode(rgb16, width, height, png::BitDepth::Sixteen)
}

fn encode(
    data: &[u8],
    width: u32,
    height: u32,
    depth: png::BitDepth,
) -> Result<Vec<u8>, MediaError> {
    let fail = |e: png::EncodingError| MediaError::Gstreamer(format!("PNG encoding failed: {e}"));
    let mut out = Vec::with_capacity(data.len() / 2);
    let mut encoder = png::Encoder::new(&mut out, width, height);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(depth);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().map_err(fail)?;
    writer.write_image_data(data).map_err(fail)?;
    writer.finish().map_err(fail)?;
    Ok(out)
}

/// Drops the alpha of big-endian RGBA64 (always opaque from a decoder):
/// a quarter less to compress and send.
fn rgb16_from_rgba64(rgba: &[u8]) -> Vec<u8> {
    let mut rgb = Vec::with_capacity(rgba.len() / 8 * 6);
    for pixel in rgba.chunks_exact(8) {
        rgb.extend_from_slice(&pixel[..6]);
    }
    rgb
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_exactly() {
        let (w, h) = (8u32, 4u32);
        let rgb: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let png = encode_png(&rgb, w, h).unwrap();
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let mut reader = decoder.read_info().unwrap();
        let mut out = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut out).unwrap();
        assert_eq!((info.width, info.height), (w, h));
        assert_eq!(&out[..info.buffer_size()], &rgb[..]);
    }

    #[test]
    fn a_deep_picture_keeps_its_sixteen_bits_and_loses_its_alpha() {
        let (w, h) = (3u32, 2u32);
        // 1,000 apart: values an 8-bit still could not hold.
        let rgba: Vec<u8> = (0..w * h * 4)
            .flat_map(|i| {
                let v = if i % 4 == 3 {
                    0xffff
                } else {
                    (i * 1000 + 7) as u16
                };
                v.to_be_bytes()
            })
            .collect();
        let png = encode_png16(&rgb16_from_rgba64(&rgba), w, h).unwrap();
        let mut reader = png::Decoder::new(std::io::Cursor::new(png))
            .read_info()
            .unwrap();
        let mut out = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut out).unwrap();
        assert_eq!(info.bit_depth, png::BitDepth::Sixteen);
        assert_eq!(info.color_type, png::ColorType::Rgb);
        let values: Vec<u16> = out[..info.buffer_size()]
            .chunks_exact(2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .collect();
        let want: Vec<u16> = (0..w * h * 4)
            .filter(|i| i % 4 != 3)
            .map(|i| (i * 1000 + 7) as u16)
            .collect();
        assert_eq!(values, want);
    }

    #[test]
    fn widths_run_from_a_thumbnail_to_the_source() {
        assert_eq!(width_range(1920), 64..=1920);
        assert_eq!(width_range(10), 64..=64);
    }
}
