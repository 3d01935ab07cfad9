//! Text formatting: timestamps, hex dumps, hex previews and aligned tables.

use std::io::{self, Write};

/// `ms` since the Unix epoch as RFC 3339 UTC with milliseconds: `2023-11-14T22:13:20.000Z`.
pub fn rfc3339(ms: u64) -> String {
    strata_units::DateTime::from_unix_ms(ms).rfc3339()
}

/// The first `max` bytes of `data` as lowercase hex, with `...` when there is more.
pub fn hex_preview(data: &[u8], max: usize) -> String {
    let mut out = String::with_capacity(max * 2 + 3);
    for b in data.iter().take(max) {
        out.push_str(&format!("{b:02x}"));
    }
    if data.len() > max {
        out.push_str("...");
    }
    out
}

/// A streaming `hexdump -C`-style formatter: 16 bytes a line with their offset, hex and ASCII;
/// a run of lines equal to the one before is shown as a single `*`.
pub struct HexDump {
    offset: u64,
    previous: Option<Vec<u8>>,
    squeezing: bool,
}

impl HexDump {
    /// A dump whose first byte is at `offset`.
    pub fn new(offset: u64) -> Self {
        HexDump {
            offset,
            previous: None,
            squeezing: false,
        }
    }

    /// Formats the next bytes. Lines are cut every 16 bytes of each call.
    pub fn write(&mut self, out: &mut impl Write, data: &[u8]) -> io::Result<()> {
        for line in data.chunks(16) {
            if line.len() == 16 && self.previous.as_deref() == Some(line) {
                if !self.squeezing {
                    writeln!(out, "*")?;
                    self.squeezing = true;
                }
            } else {
                self.squeezing = false;
                write!(out, "{:08x}  ", self.offset)?;
                for i in 0..16 {
                    match line.get(i) {
                        Some(b) => write!(out, "{b:02x} ")?,
                        None => write!(out, "   ")?,
                    }
                    if i == 7 {
                        write!(out, " ")?;
                    }
                }
                let ascii: String = line
                    .iter()
                    .map(|&b| {
                        if b.is_ascii_graphic() || b == b' ' {
                            b as char
                        } else {
                            '.'
                        }
                    })
                    .collect();
                writeln!(out, " |{ascii}|")?;
                self.previous = Some(line.to_vec());
            }
            self.offset += line.len() as u64;
        }
        Ok(())
    }

    /// Ends the dump with the offset just past the last byte.
    pub fn finish(self, out: &mut impl Write) -> io::Result<()> {
        writeln!(out, "{:08x}", self.offset)
    }
}

/// Writes `rows` as columns separated by two spaces, under `header`. Columns listed in
/// `right_aligned` (numbers) are aligned right.
pub fn table(
    out: &mut impl Write,
    header: &[&str],
    rows: &[Vec<String>],
    right_aligned: &[usize],
) -> io::Result<()> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(cell.chars().count());
            }
        }
    }
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let width = widths.get(i).copied().unwrap_or(0);
            let pad = " ".repeat(width.saturating_sub(cell.chars().count()));
            if i > 0 {
                line.push_str("  ");
            }
            if right_aligned.contains(&i) {
                line.push_str(&pad);
                line.push_str(cell);
            } else {
                line.push_str(cell);
                line.push_str(&pad);
            }
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(4_107_542_399_999), "2100-02-28T23:59:59.999Z");
        assert_eq!(rfc3339(4_107_542_400_000), "2100-03-01T00:00:00.000Z");
        // Does not panic at the extreme.
        assert!(rfc3339(u64::MAX).ends_with('Z'));
    }

    #[test]
    fn hex_dump_squeezes_repeated_lines_and_ends_with_the_offset() {
        let mut data = vec![0u8; 64];
        data[..4].copy_from_slice(b"AB\x00\xff");
        let mut out = Vec::new();
        let mut dump = HexDump::new(0x200);
        dump.write(&mut out, &data).unwrap();
        dump.finish(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "00000200  41 42 00 ff 00 00 00 00  00 00 00 00 00 00 00 00  |AB..............|",
                "00000210  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
                "*",
                "00000240",
            ]
        );
    }

    #[test]
    fn hex_preview_truncates() {
        assert_eq!(hex_preview(&[0xab, 0x01], 4), "ab01");
        assert_eq!(hex_preview(&[0xab; 5], 4), "abababab...");
        assert_eq!(hex_preview(&[], 4), "");
    }

    #[test]
    fn table_aligns_columns() {
        let mut out = Vec::new();
        let rows = vec![
            vec!["1".to_string(), "snapshot".to_string()],
            vec!["10".to_string(), "head".to_string()],
        ];
        table(&mut out, &["ID", "KIND"], &rows, &[0]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "ID  KIND\n 1  snapshot\n10  head\n"
        );
    }
}
