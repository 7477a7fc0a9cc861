//! The fuzz targets' entry points, shared by `fuzz/` (cargo-fuzz) and by
//! `tests/fuzz_corpus.rs`, which replays every corpus file through them in
//! an ordinary `cargo test`. Each takes the fuzzer's bytes, must never
//! panic, and asserts the invariants of what it exercises. See
//! `docs/fuzzing.md`.

use std::io::Cursor;

use crate::drawing::{self, Colour, Shape, StrokePart, Tool, MAX_POINTS, MAX_WIDTH, MIN_WIDTH};
use crate::http::{parse_rest_body, RestBody};
use crate::media::mov_timecode;
use crate::protocol::{self, ClientMessage, Envelope};
use crate::timecode::{FrameRate, Timecode, TimecodeFormat};

/// A target's entry point.
pub type Entry = fn(&[u8]);

/// Every target: its name (the directory under `fuzz/corpus/`) and entry.
pub const TARGETS: [(&str, Entry); 5] = [
    ("client_message", client_message),
    ("timecode", timecode),
    ("mov_timecode", mov_timecode),
    ("rest_body", rest_body),
    ("drawing", drawing),
];

/// The WebSocket size limit the server runs with by default.
const MESSAGE_LIMIT: usize = 64 * 1024;

/// `protocol::parse_client` on a text frame. Whatever it accepts
/// serializes, and parses back to the same message; the size limit holds.
pub fn client_message(data: &[u8]) {
    // A WebSocket text frame is UTF-8 by the time the parser sees it.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(envelope) = protocol::parse_client(text, MESSAGE_LIMIT) else {
        return;
    };
    assert!(text.len() <= MESSAGE_LIMIT, "over the limit yet accepted");
    let again = serde_json::to_string(&envelope).expect("an accepted message serializes");
    let back = protocol::parse_client(&again, usize::MAX)
        .unwrap_or_else(|e| panic!("{again} does not parse back: {e}"));
    assert_eq!(back, envelope, "{again} parses back differently");
    follow_on_checks(&envelope);
}

/// What the server does next with some messages, that needs no session.
fn follow_on_checks(envelope: &Envelope) {
    match &envelope.message {
        ClientMessage::Shuttle { speed } => {
            if let Some(s) = protocol::speed_from_wire(*speed) {
                assert_eq!(protocol::speed_to_wire(s), *speed);
            }
        }
        ClientMessage::Drawing {
            tool,
            colour,
            width,
            points,
            ..
        } => {
            if let Ok(shape) = Shape::new(tool, colour, *width, points.clone()) {
                check_shape(&shape, 0, points.len());
            }
        }
        ClientMessage::Stroke(stroke) => {
            if let Ok(part) = StrokePart::new(
                &stroke.tool,
                &stroke.colour,
                stroke.width,
                stroke.from,
                stroke.points.clone(),
            ) {
                check_shape(&part.shape, part.from, stroke.points.len());
            }
        }
        _ => {}
    }
}

/// Frame rates, timecode labels and a format's parse/label pair. The input
/// is `rate|start|label…` (text); the first byte, when no rate parses,
/// picks one. What parses prints back to itself; a label a format accepts
/// is the label of the frame it parses to.
pub fn timecode(data: &[u8]) {
    let Some((&pick, _)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('|');
    let rate_text = fields.next().unwrap_or_default();
    let rate = match rate_text.parse::<FrameRate>() {
        Ok(rate) => {
            assert!(FrameRate::ALL.contains(&rate), "{rate_text:?} gave {rate}");
            assert_eq!(rate.to_string().parse::<FrameRate>(), Ok(rate));
            rate
        }
        Err(_) => FrameRate::ALL[usize::from(pick) % FrameRate::ALL.len()],
    };
    let drop_frame = pick & 0x80 != 0 && rate.allows_drop_frame();
    let mut format = TimecodeFormat::new(rate, drop_frame).expect("an allowed format");
    if let Some(start) = fields.next().and_then(|t| t.parse::<Timecode>().ok()) {
        if let Ok(with_start) = format.with_start(start) {
            assert_same_label(with_start.start(), start);
            assert_eq!(with_start.label(0), with_start.start());
            format = with_start;
        }
    }
    for label_text in fields {
        let Ok(label) = label_text.parse::<Timecode>() else {
            continue;
        };
        let printed = label.to_string();
        assert_eq!(printed.parse::<Timecode>(), Ok(label), "{printed}");
        let Ok(frame) = format.parse(label_text) else {
            continue;
        };
        let labelled = format.label(frame);
        assert_same_label(labelled, label);
        assert_eq!(format.frame_of(labelled), Ok(frame), "{labelled}");
    }
}

/// The same label, whatever separator it was written with.
fn assert_same_label(a: Timecode, b: Timecode) {
    assert_eq!(
        (a.hours, a.minutes, a.seconds, a.frames),
        (b.hours, b.minutes, b.seconds, b.frames),
        "{a} is not {b}"
    );
}

/// `mov_timecode::read_from` on a file's bytes: no panic, and a start it
/// finds labels as the probe labels it.
pub fn mov_timecode(data: &[u8]) {
    let len = data.len() as u64;
    let Ok(Some(start)) = mov_timecode::read_from(&mut Cursor::new(data), len) else {
        return;
    };
    // As `media::probe` does with a start whose timebase matches the rate.
    for rate in FrameRate::ALL {
        if u32::from(start.timebase) != rate.timebase() {
            continue;
        }
        let drop_frame = start.drop_frame && rate.allows_drop_frame();
        let format = TimecodeFormat::new(rate, drop_frame).expect("an allowed format");
        let label = format.label(i64::from(start.frame_count));
        let with_start = format.with_start(label).expect("a label it made");
        assert_eq!(with_start.start(), label);
    }
}

/// The REST bodies, `c` + a create-session body or `m` + a mint-link body
/// (anything else: create-session). An accepted body serializes again and
/// that is accepted as the same request; an accepted passcode is 4 to 64
/// characters once trimmed.
pub fn rest_body(data: &[u8]) {
    let (kind, body) = match data.split_first() {
        Some((b'm', body)) => (RestBody::MintLink, body),
        Some((b'c', body)) => (RestBody::CreateSession, body),
        _ => (RestBody::CreateSession, data),
    };
    let Ok(accepted) = parse_rest_body(kind, body) else {
        return;
    };
    let again = serde_json::to_vec(&accepted).expect("a value serializes");
    let back = parse_rest_body(kind, &again).unwrap_or_else(|e| {
        panic!(
            "{} is refused once serialized again: {e}",
            String::from_utf8_lossy(&again)
        )
    });
    assert_eq!(back, accepted);
    if let Some(passcode) = accepted.get("passcode").and_then(|p| p.as_str()) {
        let kept = crate::passcode::checked(passcode).expect("an accepted passcode");
        assert!(
            (4..=64).contains(&kept.len()),
            "passcode of {} bytes",
            kept.len()
        );
    }
    if kind == RestBody::CreateSession {
        let title = accepted["title"].as_str().expect("a title");
        let chars = title.trim().chars().count();
        assert!((1..=200).contains(&chars), "title of {chars} characters");
    }
}

/// The drawing validator, `Shape::new` and `StrokePart::new`, and what is
/// done with an accepted shape (recorded, segmented, painted). The input:
///
/// - byte 0: the tool, `pen`, `arrow`, `rect` by its low two bits, or with
///   3 a name read from the input; bit 7: `from` counts back from
///   `usize::MAX`;
/// - byte 1: the colour, from the next three bytes unless bit 7 is set,
///   then a name read from the input; its low bits size the picture painted;
/// - a little-endian `f32` width, a `u16` `from`;
/// - the rest: points, little-endian `f32` pairs.
///
/// A name read from the input is a length byte and that many bytes.
///
/// An accepted shape keeps the documented bounds: a known tool, a
/// `#rrggbb` colour, a width of `MIN_WIDTH..=MAX_WIDTH`, points in `0..=1`,
/// a pen reaching at most `MAX_POINTS`, an arrow or rectangle of 2.
pub fn drawing(data: &[u8]) {
    let mut input = Bytes(data);
    let (Some(tool_byte), Some(colour_byte)) = (input.byte(), input.byte()) else {
        return;
    };
    let tool = match tool_byte & 3 {
        0 => "pen".to_string(),
        1 => "arrow".to_string(),
        2 => "rect".to_string(),
        _ => input.name(),
    };
    let colour = if colour_byte & 0x80 == 0 {
        let rgb = input.take(3);
        rgb.iter()
            .fold("#".to_string(), |s, b| format!("{s}{b:02x}"))
    } else {
        input.name()
    };
    let width = input.take(4);
    let width = f32::from_le_bytes(width.try_into().unwrap_or([0; 4]));
    let from = input.take(2);
    let from = usize::from(u16::from_le_bytes(from.try_into().unwrap_or([0; 2])));
    let from = if tool_byte & 0x80 != 0 {
        usize::MAX - from
    } else {
        from
    };
    let points = drawing::decode_points(input.0);

    let whole = Shape::new(&tool, &colour, width, points.clone());
    let part = StrokePart::new(&tool, &colour, width, from, points.clone());
    if from == 0 {
        assert_eq!(
            whole,
            part.clone().map(|p| p.shape),
            "a part from 0 is a whole"
        );
    }
    if let Ok(shape) = &whole {
        check_shape(shape, 0, points.len());
        paint(shape, colour_byte);
    }
    if let Ok(part) = &part {
        assert_eq!(part.from, from);
        check_shape(&part.shape, from, points.len());
        paint(&part.shape, colour_byte);
    }
}

/// The documented bounds of an accepted shape (or part from `from`).
fn check_shape(shape: &Shape, from: usize, sent: usize) {
    assert_eq!(shape.points.len(), sent);
    assert_eq!(Tool::from_name(shape.tool.name()), Some(shape.tool));
    let printed = shape.colour.to_string();
    assert!(printed.len() == 7 && printed.starts_with('#'), "{printed}");
    assert_eq!(Colour::parse(&printed), Some(shape.colour));
    assert!(
        (MIN_WIDTH..=MAX_WIDTH).contains(&shape.width),
        "width {}",
        shape.width
    );
    for [x, y] in &shape.points {
        assert!(
            (0.0..=1.0).contains(x) && (0.0..=1.0).contains(y),
            "{x},{y}"
        );
    }
    match shape.tool {
        Tool::Pen => assert!(
            sent >= 1 && from.saturating_add(sent) <= MAX_POINTS,
            "{from}+{sent}"
        ),
        Tool::Arrow | Tool::Rect => assert!(from == 0 && sent == 2, "{from}+{sent}"),
    }
    // As the record keeps them, bit for bit.
    let kept = drawing::decode_points(&drawing::encode_points(&shape.points));
    let bits = |p: &[[f32; 2]]| -> Vec<u64> {
        p.iter()
            .map(|[x, y]| u64::from(x.to_bits()) << 32 | u64::from(y.to_bits()))
            .collect()
    };
    assert_eq!(bits(&kept), bits(&shape.points));
}

/// Segments and paints a shape onto a small picture; nothing may fall
/// outside it.
fn paint(shape: &Shape, size: u8) {
    let width = 1 + usize::from(size & 0x0f) * 3;
    let height = 1 + usize::from((size >> 4) & 0x07) * 5;
    for (a, b) in shape.segments(width as f32 / height as f32) {
        assert!(
            a.iter().chain(&b).all(|v| v.is_finite()),
            "segment {a:?}–{b:?}"
        );
    }
    let mut rgb = vec![0u8; width * height * 3];
    shape.paint(&mut rgb, width, height);
    assert!(
        rgb.chunks_exact(3)
            .all(|px| px == [0, 0, 0] || px == shape.colour.0),
        "only the shape's colour is painted"
    );
}

/// A cursor over the fuzzer's bytes.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// Up to `n` bytes.
    fn take(&mut self, n: usize) -> Vec<u8> {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken.to_vec()
    }

    /// A length byte and that many bytes, as text.
    fn name(&mut self) -> String {
        let n = self.byte().unwrap_or(0);
        String::from_utf8_lossy(&self.take(usize::from(n))).into_owned()
    }
}
