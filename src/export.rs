//! A session's notes in the forms other tools read: CSV and JSON for
//! spreadsheets and scripts, a CMX3600 EDL with locators for an NLE
//! (the `* LOC:` form that Avid and DaVinci Resolve import, and that
//! OpenTimelineIO's CMX3600 adapter reads), and OTIO JSON with markers.
//!
//! Pure: a [`Review`] in, text out. The timeline is one event spanning the
//! whole session from its start timecode, with one locator per note at the
//! note's frame. A [`Reel`] is a whole playlist: one event per entry, back
//! to back on a record timeline from 01:00:00:00, each with its own
//! source timecode and its notes as locators on it.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;
use std::str::FromStr;

// The record's rows, as the record reads them; this module only writes
// them out (the record never needs an export to be read).
use crate::store::{NoteRow, SessionRow};
pub use crate::store::{Reel, Review};
use crate::timecode::{FrameRate, Timecode, TimecodeError, TimecodeFormat};

impl Review {
    /// Notes that are not replies: what becomes a marker.
    pub fn top_level_notes(&self) -> impl Iterator<Item = &NoteRow> {
        self.notes.iter().filter(|n| n.note.parent_id.is_none())
    }

    pub fn replies_to(&self, id: i64) -> impl Iterator<Item = &NoteRow> {
        self.notes
            .iter()
            .filter(move |n| n.note.parent_id == Some(id))
    }
}

/// The formats [`export`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Json,
    Edl,
    Otio,
    Html,
}

impl FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "edl" => Ok(Format::Edl),
            "otio" => Ok(Format::Otio),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "no export format {other:?}: use csv, json, edl, otio or html"
            )),
        }
    }
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Json | Format::Otio => "application/json",
            Format::Edl => "text/plain; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Edl => "edl",
            Format::Otio => "otio",
            Format::Html => "html",
        }
    }
}

/// Writes `review` as `format`. An HTML report written this way has no
/// stills; see [`html`].
pub fn export(review: &Review, format: Format) -> Result<String, TimecodeError> {
    let labels = labels(&review.session)?;
    Ok(match format {
        Format::Csv => csv(review, &labels),
        Format::Json => json(review, &labels),
        Format::Edl => edl(review, &labels),
        Format::Otio => otio(review, &labels),
        Format::Html => report(review, &labels, &HashMap::new()),
    })
}

/// The frames the HTML report shows a still of: every noted frame and
/// every frame with a drawing still on it.
pub fn still_frames(review: &Review) -> Vec<i64> {
    let frames: BTreeSet<i64> = review
        .top_level_notes()
        .map(|n| n.note.frame)
        .chain(
            review
                .drawings
                .iter()
                .filter(|d| d.erased.is_none())
                .map(|d| d.drawing.frame),
        )
        .collect();
    frames.into_iter().collect()
}

/// The HTML report: one self-contained page (stills inline as JPEG data
/// URIs) that can be mailed or archived. `stills` maps a frame to its
/// JPEG, drawings already painted on.
pub fn html(review: &Review, stills: &HashMap<i64, Vec<u8>>) -> Result<String, TimecodeError> {
    Ok(report(review, &labels(&review.session)?, stills))
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn report(review: &Review, labels: &TimecodeFormat, stills: &HashMap<i64, Vec<u8>>) -> String {
    use base64::Engine as _;
    let s = &review.session;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>{title}: review notes</title>\n<style>\
body{{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:980px;color:#1d1d1f;padding:0 1rem}}\
h1{{margin-bottom:.2rem}}.meta{{color:#666}}table{{border-collapse:collapse;margin:1rem 0}}\
td,th{{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;vertical-align:top}}\
section.frame{{border-top:2px solid #222;margin-top:2rem;padding-top:.6rem}}\
section.frame img{{max-width:100%;display:block;margin:.4rem 0}}.tc{{font:600 1.1rem ui-monospace,monospace}}\
.note{{margin:.4rem 0}}.reply{{margin-left:1.6rem;color:#333}}.resolved{{color:#888}}\
.approved{{color:#0a7d32}}.changes_requested{{color:#b3261e}}code{{font-size:.85em}}\
</style></head><body>\n<h1>{title}</h1>\n",
        title = escape(&s.title)
    );
    let version = review.version.as_ref().map_or(String::new(), |v| {
        format!(
            "{} v{} · <code>{}</code> · ",
            escape(&v.item),
            v.number,
            escape(&v.checksum)
        )
    });
    let _ = writeln!(
        out,
        "<p class=\"meta\">{version}{} fps{} · starts {} · {} frames · session <code>{}</code></p>",
        escape(&format!("{}/{}", s.fps_num, s.fps_den)),
        if s.drop_frame { " drop-frame" } else { "" },
        escape(&s.start_timecode),
        s.duration_frames,
        escape(&s.id)
    );
    if !review.approvals.is_empty() {
        out.push_str("<h2>Decisions</h2>\n<table><tr><th>Decision</th><th>By</th><th>Frames seen</th><th>Stream</th><th>Checksum</th></tr>\n");
        for row in &review.approvals {
            let a = &row.approval;
            let r = &a.receipt;
            let seen: Vec<String> = r
                .frames
                .iter()
                .map(|&(x, y)| format!("{}–{}", labels.label(x), labels.label(y)))
                .collect();
            let stream = match (&r.stream, r.stream_kbps) {
                (Some(stream), Some(kbps)) => format!("{stream}, {kbps} kb/s"),
                (Some(stream), None) => stream.clone(),
                _ => "none".into(),
            };
            let _ = writeln!(
                out,
                "<tr><td class=\"{status}\">{status_text}</td><td>{author} ({role})</td><td>{count} frames<br><small>{seen}</small></td><td>{stream}</td><td><code>{checksum}</code></td></tr>",
                status = escape(&a.status),
                status_text = escape(&a.status.replace('_', " ")),
                author = escape(&a.author),
                role = escape(&a.author_role),
                count = r.frame_count,
                seen = escape(&seen.join(", ")),
                stream = escape(&stream),
                checksum = escape(r.checksum.as_deref().unwrap_or("")),
            );
        }
        out.push_str("</table>\n");
    }
    let frames = still_frames(review);
    if frames.is_empty() {
        out.push_str("<p>No notes or drawings.</p>\n");
    }
    for frame in frames {
        let _ = writeln!(
            out,
            "<section class=\"frame\" id=\"f{frame}\"><div class=\"tc\">{} <small>frame {frame}</small></div>",
            labels.label(frame)
        );
        if let Some(jpeg) = stills.get(&frame) {
            let _ = writeln!(
                out,
                "<img alt=\"frame {frame}\" src=\"data:image/jpeg;base64,{}\">",
                base64::engine::general_purpose::STANDARD.encode(jpeg)
            );
        }
        for row in review.top_level_notes().filter(|n| n.note.frame == frame) {
            let n = &row.note;
            let range = n
                .frame_out
                .map(|f| format!(" (to {})", labels.label(f)))
                .unwrap_or_default();
            let resolved = row.resolved.as_ref().map_or(String::new(), |m| {
                format!(" · resolved by {}", escape(&m.by))
            });
            let _ = writeln!(
                out,
                "<div class=\"note{}\"><b>{}</b> <small>{}{}{}</small><br>{}</div>",
                if row.resolved.is_some() {
                    " resolved"
                } else {
                    ""
                },
                escape(&n.author),
                escape(&n.author_role),
                range,
                resolved,
                escape(&n.text).replace('\n', "<br>")
            );
            for reply in review.replies_to(row.id) {
                let _ = writeln!(
                    out,
                    "<div class=\"reply\"><b>{}</b>: {}</div>",
                    escape(&reply.note.author),
                    escape(&reply.note.text).replace('\n', "<br>")
                );
            }
        }
        let drawn: Vec<&str> = review
            .drawings
            .iter()
            .filter(|d| d.erased.is_none() && d.drawing.frame == frame)
            .map(|d| d.drawing.author.as_str())
            .collect();
        if !drawn.is_empty() {
            let mut authors = drawn.clone();
            authors.sort_unstable();
            authors.dedup();
            let _ = writeln!(
                out,
                "<p class=\"meta\">{} drawing{} by {}</p>",
                drawn.len(),
                if drawn.len() == 1 { "" } else { "s" },
                escape(&authors.join(", "))
            );
        }
        out.push_str("</section>\n");
    }
    out.push_str("</body></html>\n");
    out
}

fn labels(session: &SessionRow) -> Result<TimecodeFormat, TimecodeError> {
    let rate = FrameRate::new(session.fps_num, session.fps_den)?;
    let start: Timecode = session.start_timecode.parse()?;
    TimecodeFormat::new(rate, session.drop_frame)?.with_start(start)
}

fn csv(review: &Review, labels: &TimecodeFormat) -> String {
    let mut out = String::from(
        "id,frame,timecode,frame_out,timecode_out,author,role,created_at_ms,text,reply_to,resolved_by\r\n",
    );
    for row in &review.notes {
        let n = &row.note;
        let _ = write!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}\r\n",
            row.id,
            n.frame,
            labels.label(n.frame),
            n.frame_out.map(|f| f.to_string()).unwrap_or_default(),
            n.frame_out
                .map(|f| labels.label(f).to_string())
                .unwrap_or_default(),
            csv_field(&n.author),
            n.author_role,
            n.created_at,
            csv_field(&n.text),
            n.parent_id.map(|p| p.to_string()).unwrap_or_default(),
            row.resolved
                .as_ref()
                .map(|m| csv_field(&m.by))
                .unwrap_or_default()
        );
    }
    out
}

/// RFC 4180 quoting, and a leading quote mark for text a spreadsheet
/// would otherwise run as a formula.
fn csv_field(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_string()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn json(review: &Review, labels: &TimecodeFormat) -> String {
    serde_json::to_string_pretty(&json_value(review, labels)).unwrap_or_default() + "\n"
}

fn json_value(review: &Review, labels: &TimecodeFormat) -> serde_json::Value {
    let s = &review.session;
    let notes: Vec<serde_json::Value> = review
        .notes
        .iter()
        .map(|row| {
            let n = &row.note;
            serde_json::json!({
                "id": row.id,
                "frame": n.frame,
                "timecode": labels.label(n.frame).to_string(),
                "frameOut": n.frame_out,
                "timecodeOut": n.frame_out.map(|f| labels.label(f).to_string()),
                "author": n.author,
                "authorRole": n.author_role,
                "createdAt": n.created_at,
                "text": n.text,
                "replyTo": n.parent_id,
                "resolvedBy": row.resolved.as_ref().map(|m| &m.by),
                "resolvedAt": row.resolved.as_ref().map(|m| m.at),
                // Which version it is about: a compare puts notes on either.
                "versionId": n.version_id,
            })
        })
        .collect();
    let drawings: Vec<serde_json::Value> = review
        .drawings
        .iter()
        .map(|row| {
            let d = &row.drawing;
            serde_json::json!({
                "id": row.id,
                "frame": d.frame,
                "timecode": labels.label(d.frame).to_string(),
                "tool": d.shape.tool.name(),
                "colour": d.shape.colour.to_string(),
                "width": d.shape.width,
                "points": d.shape.points,
                "author": d.author,
                "createdAt": d.created_at,
                "erasedBy": row.erased.as_ref().map(|m| &m.by),
                "versionId": d.version_id,
            })
        })
        .collect();
    let approvals: Vec<serde_json::Value> = review
        .approvals
        .iter()
        .map(|row| {
            let a = &row.approval;
            serde_json::json!({
                "id": row.id,
                "status": a.status,
                "author": a.author,
                "authorRole": a.author_role,
                "createdAt": a.created_at,
                "versionId": a.version_id,
                "receipt": {
                    "frames": a.receipt.frames,
                    "frameCount": a.receipt.frame_count,
                    "stream": a.receipt.stream,
                    "streamBytes": a.receipt.stream_bytes,
                    "streamKbps": a.receipt.stream_kbps,
                    "checksum": a.receipt.checksum,
                },
            })
        })
        .collect();
    let version = review.version.as_ref().map(|v| {
        serde_json::json!({
            "id": v.id,
            "item": v.item,
            "number": v.number,
            "checksum": v.checksum,
            "sizeBytes": v.size_bytes,
        })
    });
    serde_json::json!({
        "session": {
            "id": s.id,
            "title": s.title,
            "fps": format!("{}/{}", s.fps_num, s.fps_den),
            "dropFrame": s.drop_frame,
            "startTimecode": s.start_timecode,
            "durationFrames": s.duration_frames,
            "media": s.media,
        },
        "version": version,
        "notes": notes,
        "drawings": drawings,
        "approvals": approvals,
    })
}

/// One line of EDL text: no line breaks, no control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .trim()
        .to_string()
}

fn edl(review: &Review, labels: &TimecodeFormat) -> String {
    // A single version's record timeline is its own.
    edl_of(&review.session, &[(review, *labels)], labels)
}

/// The EDL of `entries` (each with its own source labels), back to back
/// on the record timeline `record`, all at one rate.
fn edl_of(
    session: &SessionRow,
    entries: &[(&Review, TimecodeFormat)],
    record: &TimecodeFormat,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "TITLE: {}", one_line(&session.title));
    let _ = writeln!(
        out,
        "FCM: {}",
        if session.drop_frame {
            "DROP FRAME"
        } else {
            "NON-DROP FRAME"
        }
    );
    out.push('\n');
    let mut at = 0;
    for (number, (review, labels)) in entries.iter().enumerate() {
        let length = review.session.duration_frames.max(1);
        // Outs are exclusive: the label one past the last frame.
        let _ = writeln!(
            out,
            "{:03}  AX       V     C        {} {} {} {}",
            number + 1,
            labels.label(0),
            labels.label(length),
            record.label(at),
            record.label(at + length)
        );
        let _ = writeln!(out, "* FROM CLIP NAME: {}", one_line(&clip_name(review)));
        // Locators sit in the clip's source time, where OpenTimelineIO's
        // CMX3600 reader puts them, and read as the review labelled them.
        for row in review.top_level_notes() {
            let n = &row.note;
            let _ = writeln!(
                out,
                "* LOC: {} {:<7} {}: {}",
                labels.label(n.frame),
                marker_colour(&n.author_role),
                one_line(&n.author),
                one_line(&n.text)
            );
            // A locator is a point: a range note's span follows on a
            // comment line NLEs pass over (and OpenTimelineIO's reader
            // keeps as an unhandled comment), source in and out, the
            // out exclusive as an event's is.
            if let Some(end) = n.frame_out.filter(|&end| end > n.frame) {
                let _ = writeln!(
                    out,
                    "* NOTE RANGE: {} {}",
                    labels.label(n.frame),
                    labels.label(end + 1)
                );
            }
        }
        at += length;
    }
    out
}

/// What an entry is called in an EDL or OTIO: its version, else its file,
/// else the session.
fn clip_name(review: &Review) -> String {
    match (&review.version, &review.session.media) {
        (Some(v), _) => format!("{} v{}", v.item, v.number),
        (None, Some(media)) => media.clone(),
        (None, None) => review.session.title.clone(),
    }
}

/// Locator colours by role, from the set Avid and Resolve both know.
fn marker_colour(role: &str) -> &'static str {
    match role {
        "host" => "RED",
        "reviewer" => "YELLOW",
        _ => "BLUE",
    }
}

fn otio(review: &Review, labels: &TimecodeFormat) -> String {
    let s = &review.session;
    let start = otio_time(s, labels.start_frame_count());
    otio_timeline(s, start, vec![otio_clip(review, labels)])
}

/// `frames` at the session's rate, as OTIO writes time.
fn otio_time(s: &SessionRow, frames: i64) -> serde_json::Value {
    let rate = f64::from(s.fps_num) / f64::from(s.fps_den);
    serde_json::json!({"OTIO_SCHEMA": "RationalTime.1", "rate": rate, "value": frames as f64})
}

/// One version as a clip over its own source range (at its own rate),
/// its notes as markers in that media time.
fn otio_clip(review: &Review, labels: &TimecodeFormat) -> serde_json::Value {
    let s = &review.session;
    let start = labels.start_frame_count();
    let range = |from: i64, length: i64| {
        serde_json::json!({
            "OTIO_SCHEMA": "TimeRange.1",
            "start_time": otio_time(s, from),
            "duration": otio_time(s, length),
        })
    };
    let markers: Vec<serde_json::Value> = review
        .top_level_notes()
        .map(|row| {
            let n = &row.note;
            let length = n.frame_out.map_or(0, |out| out - n.frame + 1);
            serde_json::json!({
                "OTIO_SCHEMA": "Marker.2",
                "name": format!("{}: {}", n.author, one_line(&n.text)),
                "color": marker_colour(&n.author_role),
                "comment": n.text,
                "marked_range": range(start + n.frame, length),
                "metadata": {"syncreel": {
                    "id": row.id,
                    "frame": n.frame,
                    "author": n.author,
                    "authorRole": n.author_role,
                    "createdAt": n.created_at,
                    "resolvedBy": row.resolved.as_ref().map(|m| &m.by),
                    "replies": review.replies_to(row.id).map(|r| serde_json::json!({
                        "author": r.note.author,
                        "text": r.note.text,
                    })).collect::<Vec<_>>(),
                }},
            })
        })
        .collect();
    serde_json::json!({
        "OTIO_SCHEMA": "Clip.2",
        "name": clip_name(review),
        "source_range": range(start, s.duration_frames),
        "media_references": {"DEFAULT_MEDIA": {
            "OTIO_SCHEMA": "MissingReference.1",
            "name": s.media.clone().unwrap_or_default(),
            "available_range": null,
            "metadata": {},
        }},
        "active_media_reference_key": "DEFAULT_MEDIA",
        "markers": markers,
        "effects": [],
        "enabled": true,
        "metadata": {"syncreel": {"versionId": review.version.as_ref().map(|v| &v.id)}},
    })
}

fn otio_timeline(
    s: &SessionRow,
    start: serde_json::Value,
    clips: Vec<serde_json::Value>,
) -> String {
    let timeline = serde_json::json!({
        "OTIO_SCHEMA": "Timeline.1",
        "name": s.title,
        "global_start_time": start,
        "metadata": {"syncreel": {"session": s.id}},
        "tracks": {
            "OTIO_SCHEMA": "Stack.1",
            "name": "tracks",
            "source_range": null,
            "effects": [],
            "markers": [],
            "enabled": true,
            "metadata": {},
            "children": [{
                "OTIO_SCHEMA": "Track.1",
                "name": "V1",
                "kind": "Video",
                "source_range": null,
                "effects": [],
                "markers": [],
                "enabled": true,
                "metadata": {},
                "children": clips,
            }],
        },
    });
    serde_json::to_string_pretty(&timeline).unwrap_or_default() + "\n"
}

/// Why a reel cannot be written in a format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReelError {
    #[error("a CMX3600 EDL has one frame rate and this playlist mixes {0}: export OTIO, or each entry's EDL with its version")]
    MixedRates(String),
    #[error("{0} is written one version at a time: name the version, or export the whole playlist as edl, otio or json")]
    OneVersionAtATime(&'static str),
    #[error("the session has nothing to export")]
    Empty,
    #[error(transparent)]
    Timecode(#[from] TimecodeError),
}

/// Where a reel's record timeline starts, as an editor's reel does.
const RECORD_START: &str = "01:00:00:00";

/// Writes the whole playlist: an EDL or OTIO timeline with one clip per
/// entry back to back, or JSON with each entry's review.
pub fn export_reel(reel: &Reel, format: Format) -> Result<String, ReelError> {
    let first = &reel.entries.first().ok_or(ReelError::Empty)?.session;
    let entries = reel
        .entries
        .iter()
        .map(|review| Ok((review, labels(&review.session)?)))
        .collect::<Result<Vec<_>, TimecodeError>>()?;
    let rate = FrameRate::new(first.fps_num, first.fps_den)?;
    let record = TimecodeFormat::new(rate, first.drop_frame)?.with_start(RECORD_START.parse()?)?;
    match format {
        Format::Edl => {
            let rates: BTreeSet<String> =
                reel.entries.iter().map(|r| rate_name(&r.session)).collect();
            if rates.len() > 1 {
                let rates: Vec<String> = rates.into_iter().collect();
                return Err(ReelError::MixedRates(rates.join(" and ")));
            }
            Ok(edl_of(first, &entries, &record))
        }
        Format::Otio => {
            let clips = entries
                .iter()
                .map(|(review, labels)| otio_clip(review, labels))
                .collect();
            Ok(otio_timeline(
                first,
                otio_time(first, record.start_frame_count()),
                clips,
            ))
        }
        Format::Json => {
            let entries: Vec<serde_json::Value> = entries
                .iter()
                .map(|(review, labels)| json_value(review, labels))
                .collect();
            let value = serde_json::json!({
                "session": {"id": first.id, "title": first.title},
                "entries": entries,
            });
            Ok(serde_json::to_string_pretty(&value).unwrap_or_default() + "\n")
        }
        Format::Csv => Err(ReelError::OneVersionAtATime("csv")),
        Format::Html => Err(ReelError::OneVersionAtATime("the html report")),
    }
}

/// "24 fps", "23.976 fps", "29.97 fps DF".
fn rate_name(s: &SessionRow) -> String {
    let fps = f64::from(s.fps_num) / f64::from(s.fps_den);
    let mut name = format!("{} fps", (fps * 1000.0).round() / 1000.0);
    if s.drop_frame {
        name.push_str(" DF");
    }
    name
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewNote;

    fn review(text: &str) -> Review {
        Review {
            session: SessionRow {
                id: "s1".into(),
                title: "Reel 2, v5".into(),
                fps_num: 24,
                fps_den: 1,
                drop_frame: false,
                start_timecode: "01:00:00:00".into(),
                duration_frames: 2400,
                media: None,
                created_at: 0,
                last_frame: 0,
                moving: None,
                version_id: None,
                ended_at: None,
                playlist: Vec::new(),
                entry: 0,
                watermark: None,
            },
            version: None,
            drawings: vec![],
            approvals: vec![],
            notes: vec![NoteRow {
                id: 3,
                resolved: None,
                note: NewNote {
                    session_id: "s1".into(),
                    version_id: None,
                    parent_id: None,
                    client_key: "k".into(),
                    author_link: "l1".into(),
                    frame: 245,
                    frame_out: Some(250),
                    text: text.into(),
                    author: "Ravi".into(),
                    author_role: "reviewer".into(),
                    created_at: 9,
                },
            }],
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_defuses_formulas() {
        let out = export(&review("=HYPERLINK(\"x\"), then\nmore"), Format::Csv).unwrap();
        let line = out.lines().nth(1).unwrap();
        assert!(line.starts_with("3,245,01:00:10:05,250,01:00:10:10,Ravi,reviewer,9,"));
        assert!(
            out.contains("\"'=HYPERLINK(\"\"x\"\"), then\nmore\""),
            "{out}"
        );
    }

    #[test]
    fn the_edl_has_one_event_and_a_locator_per_note_on_one_line() {
        let out = export(&review("Sky\ntoo warm"), Format::Edl).unwrap();
        assert!(out.contains("FCM: NON-DROP FRAME"));
        assert!(out.contains(
            "001  AX       V     C        01:00:00:00 01:01:40:00 01:00:00:00 01:01:40:00"
        ));
        assert!(
            out.contains("* LOC: 01:00:10:05 YELLOW  Ravi: Sky too warm\n"),
            "{out}"
        );
    }

    #[test]
    fn a_range_note_s_locator_is_followed_by_its_source_in_and_exclusive_out() {
        let out = export(&review("Flicker"), Format::Edl).unwrap();
        assert!(
            out.contains(
                "* LOC: 01:00:10:05 YELLOW  Ravi: Flicker\n* NOTE RANGE: 01:00:10:05 01:00:10:11\n"
            ),
            "{out}"
        );
        let mut point = review("Flicker");
        point.notes[0].note.frame_out = None;
        let out = export(&point, Format::Edl).unwrap();
        assert!(!out.contains("NOTE RANGE"), "{out}");
        point.notes[0].note.frame_out = Some(245);
        let out = export(&point, Format::Edl).unwrap();
        assert!(
            !out.contains("NOTE RANGE"),
            "a one-frame range is a point: {out}"
        );
    }

    #[test]
    fn a_reel_is_one_event_per_entry_back_to_back_and_one_rate_for_an_edl() {
        let mut pickup = review("Boom");
        pickup.session.start_timecode = "05:00:00:00".into();
        pickup.session.duration_frames = 48;
        let reel = Reel {
            entries: vec![review("Sky"), pickup.clone()],
        };
        let edl = export_reel(&reel, Format::Edl).unwrap();
        assert!(
            edl.contains(
                "002  AX       V     C        05:00:00:00 05:00:02:00 01:01:40:00 01:01:42:00"
            ),
            "{edl}"
        );
        assert!(
            edl.contains("* LOC: 05:00:10:05 YELLOW  Ravi: Boom\n"),
            "{edl}"
        );

        pickup.session.fps_num = 30000;
        pickup.session.fps_den = 1001;
        pickup.session.drop_frame = true;
        let mixed = Reel {
            entries: vec![review("Sky"), pickup],
        };
        assert_eq!(
            export_reel(&mixed, Format::Edl),
            Err(ReelError::MixedRates("24 fps and 29.97 fps DF".into()))
        );
        assert!(export_reel(&mixed, Format::Otio).is_ok());
        assert_eq!(
            export_reel(&mixed, Format::Csv),
            Err(ReelError::OneVersionAtATime("csv"))
        );
        assert_eq!(
            export_reel(&Reel { entries: vec![] }, Format::Otio),
            Err(ReelError::Empty)
        );
    }
}
