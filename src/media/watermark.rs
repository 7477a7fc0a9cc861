//! A session's watermark: one line of text (`CONFIDENTIAL – Shot 060`)
//! burned into every picture the session serves, the stream and the
//! stills alike, so that a recording or a saved still carries it.
//!
//! It is drawn by GStreamer's `textoverlay` (pango) in the decoder chain,
//! right after scaling: one overlay per decoder, so once per session for
//! the stream however many watch, and the same element with the same
//! settings for the exact-frame PNGs and the report's stills, so a paused
//! still looks like the stream it stands in for. The text sits in the
//! middle of the picture, away from the top (where the demo clip burns
//! its timecode) and from the bottom sixteenth (the frame code the tests
//! and the browser read), and its size follows the picture's width, so a
//! thumbnail and a full-size still show it alike.
//!
//! Text comes from clients, and `textoverlay` reads its `text` as pango
//! markup: it is escaped, so that markup cannot shrink, hide or recolour
//! the mark (`<span alpha="1">`), and refused when it holds control
//! characters or is too long to read.

use std::sync::Arc;

use gstreamer as gst;
use gstreamer::prelude::*;

use super::MediaError;

/// The longest watermark, in characters: two lines across a 1280-wide
/// picture at most, still clear of the frame code.
pub const MAX_CHARS: usize = 120;

/// What `{title}` in a watermark template becomes.
pub const TITLE_PLACEHOLDER: &str = "{title}";

/// Why a watermark was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatermarkError {
    /// Longer than [`MAX_CHARS`] once `{title}` is filled in.
    #[error("a watermark has at most {MAX_CHARS} characters (this one has {0})")]
    TooLong(usize),
    /// Holds a control character (a newline, a tab, a bidi override…),
    /// which would break the line or reorder the text.
    #[error("a watermark must not contain control characters (found U+{0:04X})")]
    ControlCharacter(u32),
}

/// Text checked to be burnable: trimmed, not empty, at most
/// [`MAX_CHARS`] characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Watermark(Arc<str>);

impl Watermark {
    /// `template` with `{title}` filled in, checked. `Ok(None)` when it
    /// comes out empty: no watermark.
    pub fn from_template(template: &str, title: &str) -> Result<Option<Watermark>, WatermarkError> {
        Watermark::new(&template.replace(TITLE_PLACEHOLDER, title))
    }

    /// Like [`Watermark::from_template`], for the server's configured
    /// default: a long title is cut (with `…`) and its control characters
    /// become spaces instead of refusing the session, since whoever typed
    /// the title did not choose the watermark.
    pub fn from_default(template: &str, title: &str) -> Result<Option<Watermark>, WatermarkError> {
        let title: String = title
            .chars()
            .map(|c| if is_control(c) { ' ' } else { c })
            .collect();
        let expanded = template.replace(TITLE_PLACEHOLDER, &title);
        let expanded = expanded.trim();
        if expanded.chars().count() <= MAX_CHARS {
            return Watermark::new(expanded);
        }
        let cut: String = expanded.chars().take(MAX_CHARS - 1).collect();
        Watermark::new(&format!("{}…", cut.trim_end()))
    }

    /// `text` trimmed and checked; `Ok(None)` when it is empty.
    pub fn new(text: &str) -> Result<Option<Watermark>, WatermarkError> {
        // Before trimming: a stray newline at the end is refused too,
        // rather than quietly dropped.
        if let Some(c) = text.chars().find(|&c| is_control(c)) {
            return Err(WatermarkError::ControlCharacter(c as u32));
        }
        let text = text.trim();
        let chars = text.chars().count();
        if chars > MAX_CHARS {
            return Err(WatermarkError::TooLong(chars));
        }
        Ok((!text.is_empty()).then(|| Watermark(text.into())))
    }

    pub fn text(&self) -> &str {
        &self.0
    }

    /// A short tag for this text, for cache keys and ETags: the first 64
    /// bits of its SHA-256, in hex.
    pub fn tag(&self) -> String {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(self.0.as_bytes());
        digest[..8].iter().map(|b| format!("{b:02x}")).collect()
    }

    /// A `textoverlay` that burns this watermark in.
    pub fn overlay(&self) -> Result<gst::Element, MediaError> {
        let element = super::element("textoverlay")?;
        self.configure(&element);
        Ok(element)
    }

    /// Sets a `textoverlay`'s properties to draw this watermark: public so
    /// that tests can build the same rendering into a pipeline of their
    /// own and compare pictures exactly.
    pub fn configure(&self, element: &gst::Element) {
        element.set_property("text", gst::glib::markup_escape_text(&self.0).as_str());
        // Sizes are relative to a 640-wide picture (`auto-resize`): capitals
        // about a sixteenth of the height at 16:9, readable in a thumbnail
        // and not a banner at full size.
        element.set_property("font-desc", "Sans Bold 18");
        element.set_property("auto-resize", true);
        element.set_property_from_str("halignment", "center");
        element.set_property_from_str("valignment", "center");
        element.set_property_from_str("line-alignment", "center");
        element.set_property_from_str("wrap-mode", "wordchar");
        // White at 40 % with a dark outline at 40 %: readable on bright
        // and dark pictures alike, and the picture shows through. No
        // shadow: it would only cost time.
        element.set_property("color", 0x66ff_ffffu32);
        element.set_property("outline-color", 0x6600_0000u32);
        element.set_property("draw-outline", true);
        element.set_property("draw-shadow", false);
        element.set_property("shaded-background", false);
    }
}

/// A session's recorded watermark text, ready to burn. It was checked
/// when the session was made, so this fails only on a record edited by
/// hand, and then refuses pictures rather than serve them unmarked.
pub fn burnable(text: Option<&str>) -> Result<Option<Watermark>, MediaError> {
    match text {
        Some(text) => Ok(Watermark::new(text)?),
        None => Ok(None),
    }
}

impl std::fmt::Display for Watermark {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Control characters, and the invisible format characters that reorder
/// or hide text (bidi embeddings, overrides and isolates, zero-width
/// joiners aside), which a mark must not carry.
fn is_control(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_in_the_title_and_empty_means_none() {
        let w = Watermark::from_template("CONFIDENTIAL – {title}", "Shot 060").unwrap();
        assert_eq!(w.unwrap().text(), "CONFIDENTIAL – Shot 060");
        assert_eq!(Watermark::from_template("", "Shot 060"), Ok(None));
        assert_eq!(Watermark::new("   "), Ok(None));
        assert_eq!(Watermark::new("  Mine  ").unwrap().unwrap().text(), "Mine");
    }

    #[test]
    fn control_characters_and_overlong_text_are_refused() {
        for (text, code) in [
            ("two\nlines", 0x0a),
            ("tab\there", 0x09),
            ("bell\u{7}", 0x07),
            ("c1\u{85}", 0x85),
            ("trailing newline\n", 0x0a),
            ("abc\u{202e}cba", 0x202e),
            ("\u{2066}isolate", 0x2066),
        ] {
            assert_eq!(
                Watermark::new(text),
                Err(WatermarkError::ControlCharacter(code)),
                "{text:?}"
            );
        }
        let long = "é".repeat(MAX_CHARS + 1);
        assert_eq!(
            Watermark::new(&long),
            Err(WatermarkError::TooLong(MAX_CHARS + 1))
        );
        assert!(Watermark::new(&"é".repeat(MAX_CHARS)).unwrap().is_some());
    }

    #[test]
    fn the_configured_default_cuts_a_long_title_instead_of_refusing_it() {
        let title = "x".repeat(200);
        let w = Watermark::from_default("CONFIDENTIAL – {title}", &title)
            .unwrap()
            .unwrap();
        assert_eq!(w.text().chars().count(), MAX_CHARS);
        assert!(w.text().starts_with("CONFIDENTIAL – xxx") && w.text().ends_with('…'));
        let w = Watermark::from_default("CONFIDENTIAL – {title}", "Shot\u{7}060")
            .unwrap()
            .unwrap();
        assert_eq!(w.text(), "CONFIDENTIAL – Shot 060");
        // A request's own text is refused instead.
        assert_eq!(
            Watermark::from_template("CONFIDENTIAL – {title}", &title),
            Err(WatermarkError::TooLong(215))
        );
    }

    #[test]
    fn tags_tell_texts_apart_and_stay_the_same_for_one() {
        let a = Watermark::new("A").unwrap().unwrap();
        let b = Watermark::new("B").unwrap().unwrap();
        assert_eq!(a.tag(), Watermark::new("A").unwrap().unwrap().tag());
        assert_ne!(a.tag(), b.tag());
        assert_eq!(a.tag().len(), 16);
    }
}
