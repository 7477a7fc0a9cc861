//! A picture's colour description as its file states it: primaries,
//! transfer function, matrix and range (GStreamer's "colorimetry"), read
//! at probe, carried into review proxies, and shown to reviewers. A grade
//! judged under the wrong description is judged wrong, so a proxy that
//! would claim another description than its source is refused.

use std::str::FromStr;

use gstreamer_video::{
    VideoColorMatrix as Matrix, VideoColorPrimaries as Primaries, VideoColorRange as Range,
    VideoColorimetry, VideoTransferFunction as Transfer,
};

/// A colour description. Each part is a short lower-case name
/// (`bt709`, `bt2020`, `pq`, `hlg`, `limited`…), `unknown` where the file
/// does not say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colour {
    /// GStreamer's colorimetry string (`bt709`, `bt2020-10`, `1:4:7:1`…),
    /// empty when the file states none: what a proxy's encoder is told.
    pub colorimetry: String,
    pub primaries: &'static str,
    pub transfer: &'static str,
    pub matrix: &'static str,
    pub range: &'static str,
}

impl Default for Colour {
    fn default() -> Self {
        Colour {
            colorimetry: String::new(),
            primaries: "unknown",
            transfer: "unknown",
            matrix: "unknown",
            range: "unknown",
        }
    }
}

impl Colour {
    /// The description a caps structure's `colorimetry` field states.
    pub fn from_caps(caps: Option<&gstreamer::CapsRef>) -> Colour {
        caps.and_then(|c| c.structure(0))
            .and_then(|s| s.get::<&str>("colorimetry").ok())
            .map_or_else(Colour::default, Colour::parse)
    }

    /// The description a colorimetry string states; anything GStreamer
    /// cannot read is unknown.
    pub fn parse(colorimetry: &str) -> Colour {
        let Ok(c) = VideoColorimetry::from_str(colorimetry) else {
            return Colour::default();
        };
        Colour {
            colorimetry: colorimetry.to_string(),
            primaries: match c.primaries() {
                Primaries::Bt709 => "bt709",
                Primaries::Bt470m => "bt470m",
                Primaries::Bt470bg => "bt470bg",
                Primaries::Smpte170m => "smpte170m",
                Primaries::Smpte240m => "smpte240m",
                Primaries::Film => "film",
                Primaries::Bt2020 => "bt2020",
                Primaries::Adobergb => "adobergb",
                Primaries::Smptest428 => "smpte428",
                Primaries::Smpterp431 => "dci-p3",
                Primaries::Smpteeg432 => "display-p3",
                Primaries::Ebu3213 => "ebu3213",
                _ => "unknown",
            },
            transfer: match c.transfer() {
                Transfer::Gamma10 => "linear",
                Transfer::Gamma18 => "gamma18",
                Transfer::Gamma20 => "gamma20",
                Transfer::Gamma22 => "gamma22",
                Transfer::Gamma28 => "gamma28",
                Transfer::Bt709 => "bt709",
                Transfer::Bt601 => "bt601",
                Transfer::Smpte240m => "smpte240m",
                Transfer::Srgb => "srgb",
                Transfer::Log100 => "log100",
                Transfer::Log316 => "log316",
                Transfer::Bt202010 => "bt2020-10",
                Transfer::Bt202012 => "bt2020-12",
                Transfer::Adobergb => "adobergb",
                Transfer::Smpte2084 => "pq",
                Transfer::AribStdB67 => "hlg",
                _ => "unknown",
            },
            matrix: match c.matrix() {
                Matrix::Rgb => "rgb",
                Matrix::Fcc => "fcc",
                Matrix::Bt709 => "bt709",
                Matrix::Bt601 => "bt601",
                Matrix::Smpte240m => "smpte240m",
                Matrix::Bt2020 => "bt2020",
                _ => "unknown",
            },
            range: match c.range() {
                Range::Range0_255 => "full",
                Range::Range16_235 => "limited",
                _ => "unknown",
            },
        }
    }

    /// Whether the file states a description at all.
    pub fn is_known(&self) -> bool {
        !self.colorimetry.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_colorimetry_string_reads_as_its_four_parts() {
        crate::media::init().unwrap();
        let hd = Colour::parse("bt709");
        assert_eq!(
            (hd.primaries, hd.transfer, hd.matrix, hd.range),
            ("bt709", "bt709", "bt709", "limited")
        );
        let hdr = Colour::parse("bt2100-pq");
        assert_eq!(
            (hdr.primaries, hdr.transfer, hdr.matrix, hdr.range),
            ("bt2020", "pq", "bt2020", "limited")
        );
        let sd = Colour::parse("bt601");
        assert_eq!((sd.matrix, sd.primaries), ("bt601", "smpte170m"));
        // range:matrix:transfer:primaries, as GStreamer writes it.
        let full = Colour::parse("1:4:7:1");
        assert_eq!(full.range, "full");
        assert_eq!(Colour::parse("nonsense"), Colour::default());
        assert!(!Colour::default().is_known());
    }
}
