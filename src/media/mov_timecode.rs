//! Reads the start timecode from a QuickTime/MP4 `tmcd` track.
//!
//! GStreamer 1.22's qtdemux writes such tracks (qtmux) but does not read
//! them back ("unknown subtype tmcd"), so this walks the atoms itself. It
//! needs only the track's sample description (for drop-frame and the
//! timebase) and its first sample, a 32-bit frame counter.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// The first frame's count from `00:00:00:00`, and whether the track
/// counts drop-frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TmcdStart {
    pub frame_count: u32,
    pub drop_frame: bool,
    /// Frames per timecode second as the track states it (24, 25, 30…).
    pub timebase: u8,
}

/// Reads the first `tmcd` track's start, or `None` when the file is not a
/// QuickTime-family file or has no timecode track.
pub fn read(path: &Path) -> std::io::Result<Option<TmcdStart>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    let Some((moov_start, moov_len)) = find_top_level(&mut file, len, b"moov")? else {
        return Ok(None);
    };
    // A moov box is metadata only; refuse absurd sizes rather than read them.
    if moov_len > 256 * 1024 * 1024 {
        return Ok(None);
    }
    let mut moov = vec![0u8; moov_len as usize];
    file.seek(SeekFrom::Start(moov_start))?;
    file.read_exact(&mut moov)?;
    for trak in children(&moov, b"trak") {
        let Some(mdia) = children(trak, b"mdia").next() else {
            continue;
        };
        let is_tmcd = children(mdia, b"hdlr")
            .next()
            .is_some_and(|hdlr| hdlr.get(8..12) == Some(b"tmcd"));
        if !is_tmcd {
            continue;
        }
        let Some(stbl) = children(mdia, b"minf")
            .next()
            .and_then(|m| children(m, b"stbl").next())
        else {
            continue;
        };
        let Some((drop_frame, timebase)) =
            children(stbl, b"stsd").next().and_then(sample_description)
        else {
            continue;
        };
        let Some(offset) = first_chunk_offset(stbl) else {
            continue;
        };
        let mut counter = [0u8; 4];
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(&mut counter)?;
        return Ok(Some(TmcdStart {
            frame_count: u32::from_be_bytes(counter),
            drop_frame,
            timebase,
        }));
    }
    Ok(None)
}

/// Finds a top-level box by seeking from header to header.
fn find_top_level(
    file: &mut File,
    len: u64,
    kind: &[u8; 4],
) -> std::io::Result<Option<(u64, u64)>> {
    let mut pos = 0u64;
    // Bounded: a real file has a handful of top-level boxes.
    for _ in 0..4096 {
        if pos + 8 > len {
            return Ok(None);
        }
        let mut header = [0u8; 16];
        file.seek(SeekFrom::Start(pos))?;
        let n = file.read(&mut header)?;
        if n < 8 {
            return Ok(None);
        }
        let mut size = u64::from(u32::from_be_bytes(header[0..4].try_into().unwrap()));
        let mut body = 8u64;
        if size == 1 && n >= 16 {
            size = u64::from_be_bytes(header[8..16].try_into().unwrap());
            body = 16;
        } else if size == 0 {
            size = len - pos;
        }
        if size < body {
            return Ok(None);
        }
        if &header[4..8] == kind {
            return Ok(Some((pos + body, size - body)));
        }
        pos += size;
    }
    Ok(None)
}

/// The bodies of the child boxes of `kind` directly inside `parent`.
fn children<'a>(parent: &'a [u8], kind: &'a [u8; 4]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        while pos + 8 <= parent.len() {
            let size = u32::from_be_bytes(parent[pos..pos + 4].try_into().unwrap()) as usize;
            let this = &parent[pos..];
            if size < 8 || size > this.len() {
                return None;
            }
            pos += size;
            if &this[4..8] == kind {
                return Some(&this[8..size]);
            }
        }
        None
    })
}

/// (drop-frame, timebase) from a `tmcd` sample description.
fn sample_description(stsd: &[u8]) -> Option<(bool, u8)> {
    // version+flags (4), entry count (4), then the entry: size (4),
    // format (4), reserved (6), data reference (2), reserved (4),
    // flags (4), timescale (4), frame duration (4), frames per second (1).
    let entry = stsd.get(8..)?;
    if entry.get(4..8)? != b"tmcd" {
        return None;
    }
    let flags = u32::from_be_bytes(entry.get(20..24)?.try_into().ok()?);
    let timebase = *entry.get(32)?;
    Some((flags & 1 == 1, timebase))
}

fn first_chunk_offset(stbl: &[u8]) -> Option<u64> {
    if let Some(stco) = children(stbl, b"stco").next() {
        return Some(u64::from(u32::from_be_bytes(
            stco.get(8..12)?.try_into().ok()?,
        )));
    }
    let co64 = children(stbl, b"co64").next()?;
    Some(u64::from_be_bytes(co64.get(8..16)?.try_into().ok()?))
}
