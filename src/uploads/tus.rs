//! The text of tus 1.0 headers: `Upload-Metadata`, `Upload-Checksum`,
//! `Upload-Expires`. Pure functions, so that every malformed header is a
//! unit test rather than a request.

use std::collections::BTreeMap;

use base64::Engine;

/// The protocol version this server speaks (`Tus-Resumable`, `Tus-Version`).
pub const VERSION: &str = "1.0.0";
/// The extensions it implements (`Tus-Extension`).
pub const EXTENSIONS: &str = "creation,termination,checksum,expiration";
/// The one checksum algorithm it takes (`Tus-Checksum-Algorithm`).
pub const CHECKSUM_ALGORITHMS: &str = "sha256";
/// The content type of a PATCH body.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";

/// Why a tus header could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("Upload-Metadata: {0}")]
    Metadata(String),
    #[error("Upload-Checksum: {0}")]
    Checksum(String),
}

/// `Upload-Metadata`: comma-separated `key base64value` pairs (a key alone
/// has an empty value). Keys are ASCII without spaces or commas and unique.
pub fn parse_metadata(header: &str) -> Result<BTreeMap<String, String>, HeaderError> {
    let bad = |m: String| HeaderError::Metadata(m);
    let mut pairs = BTreeMap::new();
    for pair in header.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let mut parts = pair.split(' ').filter(|p| !p.is_empty());
        let key = parts.next().unwrap_or_default();
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(bad(format!("{key:?} is not a key")));
        }
        let value = match parts.next() {
            Some(encoded) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|_| bad(format!("the value of {key} is not base64")))?;
                String::from_utf8(raw)
                    .map_err(|_| bad(format!("the value of {key} is not UTF-8")))?
            }
            None => String::new(),
        };
        if parts.next().is_some() {
            return Err(bad(format!("{key} has more than one value")));
        }
        if pairs.insert(key.to_string(), value).is_some() {
            return Err(bad(format!("{key} is given twice")));
        }
    }
    Ok(pairs)
}

/// `Upload-Checksum: sha256 <base64 digest>`.
pub fn parse_checksum(header: &str) -> Result<[u8; 32], HeaderError> {
    let bad = |m: &str| HeaderError::Checksum(m.to_string());
    let (algorithm, digest) = header
        .trim()
        .split_once(' ')
        .ok_or_else(|| bad("expected \"sha256 <base64 digest>\""))?;
    if !algorithm.eq_ignore_ascii_case("sha256") {
        return Err(bad("only sha256 is supported"));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(digest.trim())
        .map_err(|_| bad("the digest is not base64"))?;
    raw.try_into()
        .map_err(|_| bad("a sha256 digest is 32 bytes"))
}

/// A whole-file SHA-256 as the `sha256` metadata value gives it: 64 hex
/// digits, any case. Kept lower-case, as the record keeps checksums.
pub fn parse_hex_sha256(text: &str) -> Option<String> {
    let text = text.trim();
    (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| text.to_ascii_lowercase())
}

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A Unix time as an HTTP date (RFC 9110 IMF-fixdate), e.g.
/// `Thu, 03 Dec 2026 17:11:08 GMT`.
pub fn http_date(unix_secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Howard Hinnant's days-to-civil: (year, month 1..=12, day 1..=31).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_pairs_decode_and_malformed_ones_are_refused() {
        let parsed = parse_metadata("filename c2hvdC5tb3Y=, item U2hvdCAwMTA=,flag").unwrap();
        assert_eq!(parsed["filename"], "shot.mov");
        assert_eq!(parsed["item"], "Shot 010");
        assert_eq!(parsed["flag"], "");
        assert!(parse_metadata("").unwrap().is_empty());
        for bad in [
            "filename !!!",
            "filename c2hvdA== c2hvdA==",
            "a YQ==,a Yg==",
            "filename /w==",
        ] {
            assert!(parse_metadata(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn checksums_are_sha256_in_base64() {
        let digest = [7u8; 32];
        let header = format!(
            "sha256 {}",
            base64::engine::general_purpose::STANDARD.encode(digest)
        );
        assert_eq!(parse_checksum(&header).unwrap(), digest);
        for bad in ["md5 AAAA", "sha256", "sha256 !!", "sha256 AAAA"] {
            assert!(parse_checksum(bad).is_err(), "{bad}");
        }
        assert_eq!(
            parse_hex_sha256(&"AB".repeat(32)).as_deref(),
            Some("ab".repeat(32).as_str())
        );
        assert_eq!(parse_hex_sha256("abc"), None);
        assert_eq!(parse_hex_sha256(&"zz".repeat(32)), None);
    }

    #[test]
    fn http_dates_match_known_instants() {
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(http_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(http_date(1_796_317_868), "Thu, 03 Dec 2026 17:11:08 GMT");
    }
}
