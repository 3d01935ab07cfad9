//! Log records: the entries of a segment.
//!
//! A record holds one committed batch of writes: a 64-byte header, a table of entries
//! (address, block count), one CRC per block, then the blocks' data. The header CRC covers the
//! header and both tables; each block's CRC covers its address and data (see
//! [`super::block_crc`]). A record is valid only if all of these verify, which makes a batch
//! all-or-nothing through a crash.

use super::{crc, crc_append, set_u32_at, u32_at, DecodeError, Decoder, Encode};

/// `"SREC"` read as a little-endian `u32`.
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"SREC");
/// Record kind: a batch of block writes.
pub const RECORD_KIND_WRITE: u16 = 1;
/// Length of the fixed header.
pub const RECORD_HEADER_LEN: usize = 64;
/// Length of one entry in the entry table.
pub const RECORD_ENTRY_LEN: usize = 16;
/// Length of one block CRC.
pub const RECORD_BLOCK_CRC_LEN: usize = 4;
/// Most blocks one record may hold.
pub const RECORD_BLOCKS_MAX: u32 = 65536;
/// Most data bytes one record may hold (16 MiB).
pub const RECORD_DATA_BYTES_MAX: u64 = 16 << 20;

/// Offset of the magic.
pub const RECORD_MAGIC_OFFSET: usize = 0;
/// Offset of the kind.
pub const RECORD_KIND_OFFSET: usize = 4;
/// Offset of the flags.
pub const RECORD_FLAGS_OFFSET: usize = 6;
/// Record flag: each entry's sequence number is `first_seq` plus the entry's `seq offset` field
/// (written by compaction, which keeps only some entries, or parts of entries, of a record).
/// Without it, entry `i` has sequence number `first_seq + i` and the field is zero.
pub const RECORD_FLAG_SEQ_TABLE: u16 = 1;
/// Record flag: some entries are zero extents (their `blocks` field has [`ENTRY_ZERO`] set):
/// those blocks read as zeros and have no CRC and no data in the record, so a trimmed or zeroed
/// range costs 16 bytes however long it is. Written only by stores of format version 3 or later.
pub const RECORD_FLAG_ZERO_ENTRIES: u16 = 2;
/// Bit of an entry's `blocks` field: the entry is a zero extent (see
/// [`RECORD_FLAG_ZERO_ENTRIES`]); the low 31 bits are its block count.
pub const ENTRY_ZERO: u32 = 1 << 31;
/// Most blocks one zero extent covers (as many as a record's data may hold): it bounds the
/// index entries one 16-byte entry can make.
pub const ZERO_EXTENT_BLOCKS_MAX: u32 = RECORD_BLOCKS_MAX;
/// Offset of the partition's volume identifier.
pub const RECORD_VOLUME_OFFSET: usize = 8;
/// Offset of the first entry's sequence number.
pub const RECORD_FIRST_SEQ_OFFSET: usize = 16;
/// Offset of the timestamp (milliseconds since the Unix epoch).
pub const RECORD_TIMESTAMP_OFFSET: usize = 24;
/// Offset of the entry count.
pub const RECORD_ENTRY_COUNT_OFFSET: usize = 32;
/// Offset of the block count.
pub const RECORD_BLOCK_COUNT_OFFSET: usize = 36;
/// Offset of the durable offset: the segment length covered by the last completed sync when this
/// record was written. A damaged record below a later record's durable offset is corruption, not a
/// torn tail.
pub const RECORD_DURABLE_OFFSET: usize = 40;
/// Offset of the length of the tables that follow the header.
pub const RECORD_TABLES_LEN_OFFSET: usize = 48;
/// Offset of the block size (a guard against mixing stores).
pub const RECORD_BLOCK_SIZE_OFFSET: usize = 52;
/// Offset of a reserved field (zero).
pub const RECORD_RESERVED_OFFSET: usize = 56;
/// Offset of the header CRC (over bytes 0..60 and the tables).
pub const RECORD_CRC_OFFSET: usize = 60;

const _: () = assert!(RECORD_CRC_OFFSET + 4 == RECORD_HEADER_LEN);

/// The fixed header of a record, decoded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordHeader {
    /// [`RECORD_FLAG_SEQ_TABLE`], [`RECORD_FLAG_ZERO_ENTRIES`], both or neither.
    pub flags: u16,
    /// Volume identifier of the partition the record belongs to.
    pub volume: u64,
    /// Sequence number of the first entry; entry `i` has `first_seq + i`.
    pub first_seq: u64,
    /// Commit time, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Number of entries.
    pub entry_count: u32,
    /// Number of data blocks over all entries (zero extents not counted: they have no data).
    pub block_count: u32,
    /// See [`RECORD_DURABLE_OFFSET`].
    pub durable_offset: u64,
    /// Block size of the store.
    pub block_size: u32,
}

impl RecordHeader {
    /// Length of the entry and CRC tables.
    pub fn tables_len(&self) -> usize {
        self.entry_count as usize * RECORD_ENTRY_LEN
            + self.block_count as usize * RECORD_BLOCK_CRC_LEN
    }

    /// Offset of the data from the start of the record.
    pub fn data_offset(&self) -> u64 {
        (RECORD_HEADER_LEN + self.tables_len()) as u64
    }

    /// Total length of the record.
    pub fn record_len(&self) -> u64 {
        self.data_offset() + u64::from(self.block_count) * u64::from(self.block_size)
    }
}

/// One entry of a record: `blocks` blocks written from `addr`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryDesc {
    /// First block address.
    pub addr: u64,
    /// Number of blocks.
    pub blocks: u32,
    /// Sequence number minus the record's `first_seq`.
    pub seq_offset: u32,
    /// A zero extent: the blocks read as zeros, and the record holds no CRC or data for them.
    pub zero: bool,
}

/// What one entry of a record writes: whole blocks of data, or a zero extent of `n` blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Payload<'a> {
    /// Whole blocks of data.
    Data(&'a [u8]),
    /// `n` blocks of zeros, recorded as metadata only (at most [`ZERO_EXTENT_BLOCKS_MAX`]).
    Zero(u32),
}

impl Payload<'_> {
    /// The number of data blocks (zero for a zero extent).
    pub fn data_blocks(&self, block_size: usize) -> u64 {
        match self {
            Payload::Data(data) => (data.len() / block_size) as u64,
            Payload::Zero(_) => 0,
        }
    }
}

/// A record's header and tables (everything but the data).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordMeta {
    /// The header.
    pub header: RecordHeader,
    /// The entries, in sequence order.
    pub entries: Vec<EntryDesc>,
    /// One CRC per block, in entry order.
    pub block_crcs: Vec<u32>,
}

impl RecordMeta {
    /// Sequence number of entry `i`.
    pub fn entry_seq(&self, i: usize) -> u64 {
        self.header.first_seq
            + self
                .entries
                .get(i)
                .map_or(i as u64, |e| u64::from(e.seq_offset))
    }

    /// Sequence number after the record's last entry.
    pub fn next_seq(&self) -> u64 {
        // Cannot overflow: `decode_tables` refuses records whose sequence numbers would.
        self.entries.last().map_or(self.header.first_seq, |e| {
            self.header
                .first_seq
                .saturating_add(u64::from(e.seq_offset) + 1)
        })
    }
}

/// Appends a record holding `writes` (address, whole blocks of data or a zero extent) to `out`.
/// `seq_offsets` gives each entry's sequence offset when `header.flags` has
/// [`RECORD_FLAG_SEQ_TABLE`] (it is ignored otherwise); `header.flags` must have
/// [`RECORD_FLAG_ZERO_ENTRIES`] if any entry is a zero extent, and `header.block_count` counts
/// the data blocks. Returns the data blocks' CRCs. The caller has validated addresses and sizes.
pub fn encode_record(
    out: &mut Vec<u8>,
    header: &RecordHeader,
    writes: &[(u64, Payload<'_>)],
    seq_offsets: &[u32],
) -> Vec<u32> {
    debug_assert!(
        header.flags & RECORD_FLAG_ZERO_ENTRIES != 0
            || writes.iter().all(|(_, p)| matches!(p, Payload::Data(_)))
    );
    let block_size = header.block_size as usize;
    let start = out.len();
    out.put_u32(RECORD_MAGIC);
    out.put_u16(RECORD_KIND_WRITE);
    out.put_u16(header.flags);
    out.put_u64(header.volume);
    out.put_u64(header.first_seq);
    out.put_u64(header.timestamp_ms);
    out.put_u32(header.entry_count);
    out.put_u32(header.block_count);
    out.put_u64(header.durable_offset);
    out.put_u32(header.tables_len() as u32);
    out.put_u32(header.block_size);
    out.put_u32(0);
    out.put_u32(0);
    debug_assert_eq!(out.len() - start, RECORD_HEADER_LEN);
    let mut crcs = Vec::with_capacity(header.block_count as usize);
    let with_table = header.flags & RECORD_FLAG_SEQ_TABLE != 0;
    for (i, (addr, payload)) in writes.iter().enumerate() {
        out.put_u64(*addr);
        out.put_u32(match payload {
            Payload::Data(data) => (data.len() / block_size) as u32,
            Payload::Zero(n) => ENTRY_ZERO | n,
        });
        out.put_u32(if with_table {
            seq_offsets.get(i).copied().unwrap_or(0)
        } else {
            0
        });
    }
    for (addr, payload) in writes {
        let Payload::Data(data) = payload else {
            continue;
        };
        for (i, block) in data.chunks_exact(block_size).enumerate() {
            let c = super::block_crc(addr + i as u64, block);
            crcs.push(c);
            out.put_u32(c);
        }
    }
    let header_crc = crc_append(
        crc(&out[start..start + RECORD_CRC_OFFSET]),
        &out[start + RECORD_HEADER_LEN..],
    );
    set_u32_at(&mut out[start..], RECORD_CRC_OFFSET, header_crc);
    for (_, payload) in writes {
        if let Payload::Data(data) = payload {
            out.extend_from_slice(data);
        }
    }
    debug_assert_eq!((out.len() - start) as u64, header.record_len());
    crcs
}

/// Decodes and sanity-checks a fixed header (its CRC is checked by [`decode_tables`]).
pub fn decode_header(bytes: &[u8]) -> Result<RecordHeader, DecodeError> {
    let mut d = Decoder::new(bytes);
    if d.u32("record magic")? != RECORD_MAGIC {
        return Err(DecodeError {
            at: 0,
            what: "not a record (bad magic)",
        });
    }
    if d.u16("record kind")? != RECORD_KIND_WRITE {
        return Err(DecodeError {
            at: RECORD_KIND_OFFSET,
            what: "unknown record kind",
        });
    }
    let flags = d.u16("record flags")?;
    if flags & !(RECORD_FLAG_SEQ_TABLE | RECORD_FLAG_ZERO_ENTRIES) != 0 {
        return Err(DecodeError {
            at: RECORD_FLAGS_OFFSET,
            what: "unknown record flags",
        });
    }
    let volume = d.u64("volume")?;
    let first_seq = d.u64("first sequence")?;
    let timestamp_ms = d.u64("timestamp")?;
    let entry_count = d.u32("entry count")?;
    let block_count = d.u32("block count")?;
    let durable_offset = d.u64("durable offset")?;
    let tables_len = d.u32("tables length")?;
    let block_size = d.u32("block size")?;
    let header = RecordHeader {
        flags,
        volume,
        first_seq,
        timestamp_ms,
        entry_count,
        block_count,
        durable_offset,
        block_size,
    };
    // Zero extents have no data blocks, so a record of them may have more entries than blocks;
    // it still has at most `RECORD_BLOCKS_MAX` entries.
    let zero_entries = flags & RECORD_FLAG_ZERO_ENTRIES != 0;
    if entry_count == 0
        || (entry_count > block_count && !zero_entries)
        || entry_count > RECORD_BLOCKS_MAX
        || block_count > RECORD_BLOCKS_MAX
    {
        return Err(DecodeError {
            at: RECORD_ENTRY_COUNT_OFFSET,
            what: "entry or block count out of bounds",
        });
    }
    if !(super::BLOCK_SIZE_MIN..=super::BLOCK_SIZE_MAX).contains(&block_size)
        || u64::from(block_count) * u64::from(block_size) > RECORD_DATA_BYTES_MAX
    {
        return Err(DecodeError {
            at: RECORD_BLOCK_SIZE_OFFSET,
            what: "record data size out of bounds",
        });
    }
    if tables_len as usize != header.tables_len() {
        return Err(DecodeError {
            at: RECORD_TABLES_LEN_OFFSET,
            what: "tables length inconsistent",
        });
    }
    if u32_at(bytes, RECORD_RESERVED_OFFSET) != 0 {
        return Err(DecodeError {
            at: RECORD_RESERVED_OFFSET,
            what: "reserved field not zero",
        });
    }
    Ok(header)
}

/// Verifies the header CRC over `header_bytes` (64 bytes) and `tables`, and decodes the tables.
pub fn decode_tables(header_bytes: &[u8], tables: &[u8]) -> Result<RecordMeta, DecodeError> {
    let mut meta = RecordMeta::default();
    decode_tables_into(header_bytes, tables, &mut meta)?;
    Ok(meta)
}

/// [`decode_tables`] into `meta`, reusing its lists (the open path decodes every record of
/// every sealed partition; one `RecordMeta` serves them all). On an error `meta` holds
/// whatever was decoded so far.
pub fn decode_tables_into(
    header_bytes: &[u8],
    tables: &[u8],
    meta: &mut RecordMeta,
) -> Result<(), DecodeError> {
    let header = decode_header(header_bytes)?;
    meta.header = header;
    meta.entries.clear();
    meta.block_crcs.clear();
    if tables.len() != header.tables_len() || header_bytes.len() < RECORD_HEADER_LEN {
        return Err(DecodeError {
            at: RECORD_HEADER_LEN,
            what: "tables truncated",
        });
    }
    let computed = crc_append(crc(&header_bytes[..RECORD_CRC_OFFSET]), tables);
    if computed != u32_at(header_bytes, RECORD_CRC_OFFSET) {
        return Err(DecodeError {
            at: RECORD_CRC_OFFSET,
            what: "record header checksum mismatch",
        });
    }
    let mut d = Decoder::new(tables);
    let entries = &mut meta.entries;
    entries.reserve(header.entry_count as usize);
    let mut blocks_total: u64 = 0;
    let with_table = header.flags & RECORD_FLAG_SEQ_TABLE != 0;
    let zero_entries = header.flags & RECORD_FLAG_ZERO_ENTRIES != 0;
    let mut previous_offset = 0u32;
    for i in 0..header.entry_count {
        let addr = d.u64("entry address")?;
        let field = d.u32("entry blocks")?;
        let zero = zero_entries && field & ENTRY_ZERO != 0;
        let blocks = if zero { field & !ENTRY_ZERO } else { field };
        let seq_offset = d.u32("entry sequence offset")?;
        // Without a table the field is zero; with one, offsets never go backwards.
        let seq_offset_ok = if with_table {
            seq_offset >= previous_offset
        } else {
            seq_offset == 0
        };
        if !seq_offset_ok || blocks == 0 || (zero && blocks > ZERO_EXTENT_BLOCKS_MAX) {
            return Err(DecodeError {
                at: d.position(),
                what: "bad entry",
            });
        }
        previous_offset = seq_offset;
        if !zero {
            blocks_total += u64::from(blocks);
        }
        entries.push(EntryDesc {
            addr,
            blocks,
            seq_offset: if with_table { seq_offset } else { i },
            zero,
        });
    }
    if header
        .first_seq
        .checked_add(u64::from(previous_offset.max(header.entry_count)) + 1)
        .is_none_or(|end| end > super::SEQ_MAX)
    {
        return Err(DecodeError {
            at: RECORD_FIRST_SEQ_OFFSET,
            what: "sequence numbers overflow",
        });
    }
    if blocks_total != u64::from(header.block_count) {
        return Err(DecodeError {
            at: RECORD_HEADER_LEN,
            what: "entry blocks do not add up to the block count",
        });
    }
    let block_crcs = &mut meta.block_crcs;
    block_crcs.reserve(header.block_count as usize);
    for _ in 0..header.block_count {
        block_crcs.push(d.u32("block crc")?);
    }
    Ok(())
}

/// Checks each block of a record's data against its CRC. Returns the index of the first bad block.
pub fn verify_data(meta: &RecordMeta, data: &[u8]) -> Result<(), usize> {
    let block_size = meta.header.block_size as usize;
    let mut block = 0usize;
    for entry in meta.entries.iter().filter(|e| !e.zero) {
        for i in 0..entry.blocks as usize {
            let bytes = data
                .get(block * block_size..(block + 1) * block_size)
                .ok_or(block)?;
            let expected = meta.block_crcs.get(block).copied().ok_or(block)?;
            if super::block_crc(entry.addr.wrapping_add(i as u64), bytes) != expected {
                return Err(block);
            }
            block += 1;
        }
    }
    Ok(())
}
