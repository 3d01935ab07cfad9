//! The index and footer that seal a segment.
//!
//! When a partition is sealed, the engine appends to its segment an *index section* (a copy of
//! every record's header and tables, each preceded by the record's offset) and a 64-byte *footer*
//! pointing at it. Opening the store reads footers and index sections only, never the data of a
//! sealed partition.
//!
//! A snapshot taken with unsynced writes also puts a *seal block* between the index section and
//! the footer (format version 4): the seal itself (time, label, the new head's volume), so that
//! one flush of the segment makes the snapshot durable and recovery can redo a seal the journal
//! has not recorded yet.

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
/// Offset of the seal block's length (`0`: the segment has none).
pub const FOOTER_SEAL_LEN_OFFSET: usize = 52;
/// Offset of the seal block's CRC (`0` when there is none).
pub const FOOTER_SEAL_CRC_OFFSET: usize = 56;
/// Offset of the footer's own CRC (over bytes 0..60).
pub const FOOTER_CRC_OFFSET: usize = 60;

const _: () = assert!(FOOTER_CRC_OFFSET + 4 == FOOTER_LEN);

/// `"SSEL"`: first bytes of a seal block.
pub const SEAL_MAGIC: u32 = u32::from_le_bytes(*b"SSEL");
/// Offset of the seal block's magic.
pub const SEAL_MAGIC_OFFSET: usize = 0;
/// Offset of the seal block's flags (reserved, zero).
pub const SEAL_FLAGS_OFFSET: usize = 4;
/// Offset of the seal time.
pub const SEAL_SEALED_MS_OFFSET: usize = 8;
/// Offset of the new head's volume identifier.
pub const SEAL_SUCCESSOR_OFFSET: usize = 16;
/// Offset of the label's length in bytes.
pub const SEAL_LABEL_LEN_OFFSET: usize = 24;
/// Offset of the label (UTF-8).
pub const SEAL_LABEL_OFFSET: usize = 28;

/// The seal of a partition as its own segment records it: what the journal's "partition
/// sealed" and the new head's "partition created" say, for a snapshot whose journal append was
/// left for later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seal {
    /// Seal time (ms since the Unix epoch); also the new head's creation time.
    pub sealed_ms: u64,
    /// Volume identifier of the new head, whose parent is the sealed partition and whose first
    /// sequence number is the footer's next sequence number.
    pub successor: u64,
    /// The snapshot's label.
    pub label: String,
}

impl Seal {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(SEAL_MAGIC);
        out.put_u32(0);
        out.put_u64(self.sealed_ms);
        out.put_u64(self.successor);
        out.put_u32(self.label.len() as u32);
        out.extend_from_slice(self.label.as_bytes());
    }
}

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
    /// Length of the seal block between the index section and the footer (`0`: none).
    pub seal_len: u32,
    /// CRC-32C of the seal block.
    pub seal_crc: u32,
}

impl Footer {
    /// Where the footer starts: after the records, the index section and the seal block.
    pub fn footer_at(&self) -> Option<u64> {
        self.records_end
            .checked_add(self.index_len)?
            .checked_add(u64::from(self.seal_len))
    }
}

/// Starts an index section body (the caller appends one entry per record: the record's offset
/// as `u64`, then its header and tables) .
pub fn begin_index(out: &mut Vec<u8>) {
    out.put_u32(INDEX_MAGIC);
    out.put_u32(0);
    out.put_u64(0);
}

/// Finishes an index section started by [`begin_index`], appends `seal`'s block if there is
/// one, then the footer. Returns the whole tail to write after the records.
pub fn finish_index_and_footer(
    volume: u64,
    records_end: u64,
    next_seq: u64,
    record_count: u64,
    index: &[u8],
    seal: Option<&Seal>,
) -> Vec<u8> {
    let seal_room = seal.map_or(0, |s| SEAL_LABEL_OFFSET + s.label.len());
    let mut out = Vec::with_capacity(index.len() + seal_room + FOOTER_LEN);
    out.extend_from_slice(index);
    set_u64_at(&mut out, 8, record_count);
    let index_len = out.len() as u64;
    let index_crc = crc(&out);
    let (mut seal_len, mut seal_crc) = (0, 0);
    if let Some(seal) = seal {
        seal.encode(&mut out);
        seal_len = (out.len() - index.len()) as u32;
        seal_crc = crc(&out[index.len()..]);
    }
    let footer_start = out.len();
    out.put_u32(FOOTER_MAGIC);
    out.put_u32(FOOTER_VERSION);
    out.put_u64(volume);
    out.put_u64(records_end);
    out.put_u64(index_len);
    out.put_u64(record_count);
    out.put_u64(next_seq);
    out.put_u32(index_crc);
    out.put_u32(seal_len);
    out.put_u32(seal_crc);
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
        seal_len: d.u32("seal length")?,
        seal_crc: d.u32("seal crc")?,
    };
    if footer.seal_len == 0 && footer.seal_crc != 0 {
        return Err(DecodeError {
            at: FOOTER_SEAL_CRC_OFFSET,
            what: "footer has a seal checksum but no seal block",
        });
    }
    Ok(footer)
}

/// Decodes and verifies the seal block `bytes` that `footer` describes.
pub fn decode_seal(footer: &Footer, bytes: &[u8]) -> Result<Seal, DecodeError> {
    if footer.seal_len == 0 || bytes.len() != footer.seal_len as usize {
        return Err(DecodeError {
            at: 0,
            what: "seal block truncated",
        });
    }
    if crc(bytes) != footer.seal_crc {
        return Err(DecodeError {
            at: 0,
            what: "seal block checksum mismatch",
        });
    }
    let mut d = Decoder::new(bytes);
    if d.u32("seal magic")? != SEAL_MAGIC || d.u32("seal flags")? != 0 {
        return Err(DecodeError {
            at: 0,
            what: "not a seal block",
        });
    }
    let sealed_ms = d.u64("seal time")?;
    let successor = d.u64("successor volume")?;
    let label_len = d.u32("label length")? as usize;
    if SEAL_LABEL_OFFSET.checked_add(label_len) != Some(bytes.len()) {
        return Err(DecodeError {
            at: SEAL_LABEL_LEN_OFFSET,
            what: "seal label length disagrees with the block",
        });
    }
    let label = std::str::from_utf8(&bytes[SEAL_LABEL_OFFSET..])
        .map_err(|_| DecodeError {
            at: SEAL_LABEL_OFFSET,
            what: "seal label is not UTF-8",
        })?
        .to_string();
    Ok(Seal {
        sealed_ms,
        successor,
        label,
    })
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
