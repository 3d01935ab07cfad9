//! The index and footer that seal a segment.
//!
//! When a partition is sealed, the engine appends to its segment an *index section* (a copy of
//! every record's header and tables, each preceded by the record's offset) and a 64-byte *footer*
//! pointing at it. Opening the store reads footers and index sections only, never the data of a
//! sealed partition.

use super::record::{decode_tables_into, RecordMeta, RECORD_HEADER_LEN};
use super::{crc, set_u32_at, u32_at, DecodeError, Decoder, Encode};

/// `"SIDX"`: first bytes of an index section.
pub const INDEX_MAGIC: u32 = u32::from_le_bytes(*b"SIDX");
/// Length of the index section's header (magic, reserved, record count).
pub const INDEX_HEADER_LEN: usize = 16;
/// `"SFTR"`: first bytes of a footer.
pub const FOOTER_MAGIC: u32 = u32::from_le_bytes(*b"SFTR");
/// Length of the footer.
pub const FOOTER_LEN: usize = 64;
/// Footer version.
pub const FOOTER_VERSION: u32 = 1;

/// Offset of the magic.
pub const FOOTER_MAGIC_OFFSET: usize = 0;
/// Offset of the version.
pub const FOOTER_VERSION_OFFSET: usize = 4;
/// Offset of the volume identifier.
pub const FOOTER_VOLUME_OFFSET: usize = 8;
/// Offset of the end of the records (= start of the index section).
pub const FOOTER_RECORDS_END_OFFSET: usize = 16;
/// Offset of the index section's length.
pub const FOOTER_INDEX_LEN_OFFSET: usize = 24;
/// Offset of the record count.
pub const FOOTER_RECORD_COUNT_OFFSET: usize = 32;
/// Offset of the next sequence number after the partition's last entry.
pub const FOOTER_NEXT_SEQ_OFFSET: usize = 40;
/// Offset of the index section's CRC.
pub const FOOTER_INDEX_CRC_OFFSET: usize = 48;
/// Offset of two reserved `u32`s (zero).
pub const FOOTER_RESERVED_OFFSET: usize = 52;
/// Offset of the footer's own CRC (over bytes 0..60).
pub const FOOTER_CRC_OFFSET: usize = 60;

const _: () = assert!(FOOTER_CRC_OFFSET + 4 == FOOTER_LEN);

/// A decoded footer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Footer {
    /// Volume identifier of the partition.
    pub volume: u64,
    /// End of the records; the index section starts here.
    pub records_end: u64,
    /// Length of the index section.
    pub index_len: u64,
    /// Number of records.
    pub record_count: u64,
    /// Sequence number following the partition's last entry.
    pub next_seq: u64,
    /// CRC-32C of the index section.
    pub index_crc: u32,
}

/// Starts an index section body (the caller appends one entry per record: the record's offset
/// as `u64`, then its header and tables) .
pub fn begin_index(out: &mut Vec<u8>) {
    out.put_u32(INDEX_MAGIC);
    out.put_u32(0);
    out.put_u64(0);
}

/// Finishes an index section started by [`begin_index`] and appends the footer. Returns the
/// whole tail to write after the records.
pub fn finish_index_and_footer(
    volume: u64,
    records_end: u64,
    next_seq: u64,
    record_count: u64,
    index: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(index.len() + FOOTER_LEN);
    out.extend_from_slice(index);
    set_u64_at(&mut out, 8, record_count);
    let index_len = out.len() as u64;
    let index_crc = crc(&out);
    let footer_start = out.len();
    out.put_u32(FOOTER_MAGIC);
    out.put_u32(FOOTER_VERSION);
    out.put_u64(volume);
    out.put_u64(records_end);
    out.put_u64(index_len);
    out.put_u64(record_count);
    out.put_u64(next_seq);
    out.put_u32(index_crc);
    out.put_u32(0);
    out.put_u32(0);
    out.put_u32(0);
    let footer_crc = crc(&out[footer_start..footer_start + FOOTER_CRC_OFFSET]);
    set_u32_at(&mut out[footer_start..], FOOTER_CRC_OFFSET, footer_crc);
    out
}

fn set_u64_at(bytes: &mut [u8], offset: usize, v: u64) {
    if let Some(dst) = bytes.get_mut(offset..offset + 8) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}

/// Decodes and verifies a footer.
pub fn decode_footer(bytes: &[u8]) -> Result<Footer, DecodeError> {
    if bytes.len() != FOOTER_LEN {
        return Err(DecodeError {
            at: 0,
            what: "footer truncated",
        });
    }
    if crc(&bytes[..FOOTER_CRC_OFFSET]) != u32_at(bytes, FOOTER_CRC_OFFSET) {
        return Err(DecodeError {
            at: FOOTER_CRC_OFFSET,
            what: "footer checksum mismatch",
        });
    }
    let mut d = Decoder::new(bytes);
    if d.u32("footer magic")? != FOOTER_MAGIC {
        return Err(DecodeError {
            at: 0,
            what: "not a footer (bad magic)",
        });
    }
    if d.u32("footer version")? != FOOTER_VERSION {
        return Err(DecodeError {
            at: FOOTER_VERSION_OFFSET,
            what: "unknown footer version",
        });
    }
    let footer = Footer {
        volume: d.u64("volume")?,
        records_end: d.u64("records end")?,
        index_len: d.u64("index length")?,
        record_count: d.u64("record count")?,
        next_seq: d.u64("next sequence")?,
        index_crc: d.u32("index crc")?,
    };
    Ok(footer)
}

/// Verifies and decodes an index section into (record offset, record meta) pairs.
pub fn decode_index(footer: &Footer, index: &[u8]) -> Result<Vec<(u64, RecordMeta)>, DecodeError> {
    let mut reader = IndexReader::new(footer, index)?;
    let mut records = Vec::with_capacity(reader.capacity());
    let mut meta = RecordMeta::default();
    while let Some(offset) = reader.next_into(&mut meta)? {
        records.push((offset, meta.clone()));
    }
    Ok(records)
}

/// Walks a verified index section record by record, decoding each into one reused
/// [`RecordMeta`] (no allocation per record).
pub struct IndexReader<'a> {
    d: Decoder<'a>,
    left: u64,
}

impl<'a> IndexReader<'a> {
    /// Checks the section's length, checksum, magic and record count against `footer`.
    pub fn new(footer: &Footer, index: &'a [u8]) -> Result<Self, DecodeError> {
        if index.len() as u64 != footer.index_len {
            return Err(DecodeError {
                at: 0,
                what: "index section truncated",
            });
        }
        if crc(index) != footer.index_crc {
            return Err(DecodeError {
                at: 0,
                what: "index section checksum mismatch",
            });
        }
        let mut d = Decoder::new(index);
        if d.u32("index magic")? != INDEX_MAGIC || d.u32("index reserved")? != 0 {
            return Err(DecodeError {
                at: 0,
                what: "not an index section",
            });
        }
        let count = d.u64("record count")?;
        if count != footer.record_count {
            return Err(DecodeError {
                at: 8,
                what: "index record count disagrees with the footer",
            });
        }
        Ok(IndexReader { d, left: count })
    }

    /// How many records a caller may reserve room for: the count, bounded by what the section
    /// can hold (each record takes at least a header), so a hostile count allocates nothing.
    pub fn capacity(&self) -> usize {
        (self.d.remaining() / RECORD_HEADER_LEN).min(self.left as usize)
    }

    /// Decodes the next record into `meta` and returns its offset; `None` after the last one
    /// (the section must end there).
    pub fn next_into(&mut self, meta: &mut RecordMeta) -> Result<Option<u64>, DecodeError> {
        if self.left == 0 {
            if self.d.remaining() != 0 {
                return Err(DecodeError {
                    at: self.d.position(),
                    what: "trailing bytes in index section",
                });
            }
            return Ok(None);
        }
        self.left -= 1;
        let offset = self.d.u64("record offset")?;
        let header_bytes = self.d.bytes(RECORD_HEADER_LEN, "record header")?;
        let header = super::record::decode_header(header_bytes)?;
        let tables = self.d.bytes(header.tables_len(), "record tables")?;
        decode_tables_into(header_bytes, tables, meta)?;
        Ok(Some(offset))
    }
}
