//! Reads the start timecode from a QuickTime/MP4 `tmcd` track.
//!
//! GStreamer 1.22's qtdemux writes such tracks (qtmux) but does not read
//! them back ("unknown subtype tmcd"), so this walks the atoms itself. It
//! needs only the track's sample description (for drop-frame and the
//! timebase) and its first sample, a 32-bit frame counter.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
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
pub fn read(path: &Path) -> io::Result<Option<TmcdStart>> {
    let mut file = File::open(path)?;
    let len = file.metadata()?.len();
    read_from(&mut file, len)
}

/// [`read`] on any seekable source of `len` bytes (a file, or a
/// `Cursor` over bytes in memory, as the fuzzer feeds it).
pub fn read_from<R: Read + Seek>(file: &mut R, len: u64) -> io::Result<Option<TmcdStart>> {
    let Some((moov_start, moov_len)) = find_top_level(file, len, b"moov")? else {
        return Ok(None);
    };
    // A moov box is metadata only; refuse absurd sizes rather than read them.
    if moov_len > 256 * 1024 * 1024 {
        return Ok(None);
    }
    // One that claims more than the file holds is truncated: say so before
    // allocating what it claims.
    if moov_len > len.saturating_sub(moov_start) {
        return Err(io::ErrorKind::UnexpectedEof.into());
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
fn find_top_level<R: Read + Seek>(
    file: &mut R,
    len: u64,
    kind: &[u8; 4],
) -> io::Result<Option<(u64, u64)>> {
    let mut pos = 0u64;
    // Bounded: a real file has a handful of top-level boxes.
    for _ in 0..4096 {
        if len.saturating_sub(pos) < 8 {
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
        // A 64-bit size can point past any file (and past `u64`).
        let Some(next) = pos.checked_add(size) else {
            return Ok(None);
        };
        pos = next;
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn read_bytes(bytes: &[u8]) -> io::Result<Option<TmcdStart>> {
        read_from(&mut Cursor::new(bytes), bytes.len() as u64)
    }

    fn boxed(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let size = u32::try_from(8 + body.len()).unwrap();
        [&size.to_be_bytes()[..], kind, body].concat()
    }

    /// A file with one `tmcd` track: ftyp, moov (the track), mdat (its
    /// one sample, the frame counter).
    fn tmcd_file(frame_count: u32, drop_frame: bool, timebase: u8) -> Vec<u8> {
        let hdlr = boxed(b"hdlr", &[&[0; 4][..], b"mhlr", b"tmcd", &[0; 13]].concat());
        let entry = [
            &[0, 0, 0, 34][..],
            b"tmcd",
            &[0; 12],
            &u32::from(drop_frame).to_be_bytes(),
            &[0; 8],
            &[timebase, 0],
        ]
        .concat();
        let stsd = boxed(b"stsd", &[&[0, 0, 0, 0, 0, 0, 0, 1][..], &entry].concat());
        let ftyp = boxed(b"ftyp", b"qt  \0\0\0\0");
        let moov = |offset: u32| {
            let stco = boxed(
                b"stco",
                &[&[0, 0, 0, 0, 0, 0, 0, 1][..], &offset.to_be_bytes()].concat(),
            );
            let stbl = boxed(b"stbl", &[stsd.clone(), stco].concat());
            let mdia = boxed(b"mdia", &[hdlr.clone(), boxed(b"minf", &stbl)].concat());
            boxed(b"moov", &boxed(b"trak", &mdia))
        };
        let offset = (ftyp.len() + moov(0).len() + 8) as u32;
        let mdat = boxed(b"mdat", &frame_count.to_be_bytes());
        [ftyp, moov(offset), mdat].concat()
    }

    #[test]
    fn reads_the_start_of_a_tmcd_track_from_memory() {
        assert_eq!(
            read_bytes(&tmcd_file(107_890, true, 30)).unwrap(),
            Some(TmcdStart {
                frame_count: 107_890,
                drop_frame: true,
                timebase: 30
            })
        );
        assert_eq!(read_bytes(b"").unwrap(), None);
    }

    /// Found by the `mov_timecode` fuzz target
    /// (`fuzz/regressions/mov_timecode/largesize-past-u64`): a top-level
    /// box whose 64-bit size is `u64::MAX` overflowed the next box's
    /// position (a panic in debug builds).
    #[test]
    fn a_box_sized_past_u64_ends_the_search() {
        let mut file = vec![0, 0, 0, 1];
        file.extend_from_slice(&[0xff; 12]);
        assert_eq!(read_bytes(&file).unwrap(), None);
        let mut file = tmcd_file(1, false, 24);
        file.splice(0..4, [0, 0, 0, 1]);
        file.splice(8..8, [0xff; 8]);
        assert_eq!(read_bytes(&file).unwrap(), None);
    }

    /// A moov that claims more than the file holds is truncated, refused
    /// before what it claims is allocated.
    #[test]
    fn a_moov_longer_than_the_file_is_an_error() {
        let file = boxed(b"moov", &[0; 8]);
        let mut claims_more = file.clone();
        claims_more[..4].copy_from_slice(&(200u32 << 20).to_be_bytes());
        let err = read_bytes(&claims_more).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(read_bytes(&file).unwrap(), None);
    }
}
