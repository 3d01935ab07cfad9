//! How numbers, times and bytes are shown.

/// A byte count with binary units and one decimal, e.g. `1.5 MiB`.
pub use strata_units::format_bytes;

/// A time in ms since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_time(ms: u64) -> String {
    strata_units::DateTime::from_unix_ms(ms).short()
}

/// One line of a hex dump: offset, 16 bytes in hex, and the printable ones as text.
pub fn hex_line(offset: usize, bytes: &[u8]) -> String {
    let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = bytes.iter().map(|&b| printable(b)).collect();
    format!("{offset:08x}  {:<47}  {text}", hex.join(" "))
}

/// A byte as a character for the text column: printable ASCII as is, anything else as `.`.
pub fn printable(byte: u8) -> char {
    if (0x20..0x7f).contains(&byte) {
        byte as char
    } else {
        '.'
    }
}

/// A block's bytes as text: UTF-8 (lossy), trailing zeros dropped, control characters but
/// newlines and tabs shown as `.`.
pub fn block_text(bytes: &[u8]) -> String {
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    String::from_utf8_lossy(&bytes[..end])
        .chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                '.'
            } else {
                c
            }
        })
        .collect()
}

/// Parses hex bytes, ignoring whitespace: `"de ad be ef"` or `"deadbeef"`.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("hex needs an even number of digits".into());
    }
    digits
        .chunks(2)
        .map(|pair| {
            let s = std::str::from_utf8(pair).map_err(|_| "not hex".to_string())?;
            u8::from_str_radix(s, 16).map_err(|_| format!("{s:?} is not a hex byte"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_counts_stay_in_bytes_and_larger_use_binary_units() {
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(format_bytes(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn times_are_utc_civil_dates() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00");
        assert_eq!(format_time(1_704_067_200_000), "2024-01-01 00:00:00");
        assert_eq!(format_time(951_827_696_000), "2000-02-29 12:34:56");
    }

    #[test]
    fn hex_lines_show_offset_bytes_and_text() {
        let line = hex_line(16, b"Hi\x00");
        assert!(line.starts_with("00000010  48 69 00"));
        assert!(line.ends_with("Hi."));
    }

    #[test]
    fn block_text_drops_trailing_zeros_and_masks_controls() {
        assert_eq!(block_text(b"<b>x</b>\x07\n\x00\x00"), "<b>x</b>.\n");
    }

    #[test]
    fn hex_parses_with_spaces_and_rejects_odd_digits() {
        assert_eq!(
            parse_hex("de ad\nBE ef").unwrap(),
            vec![0xde, 0xad, 0xbe, 0xef]
        );
        assert!(parse_hex("abc").is_err());
        assert!(parse_hex("zz").is_err());
    }
}
