//! The copy stream: a self-describing, checksummed sequence of frames that carries selected log
//! entries (and, for a full copy, the baseline) from one store to another, or to a file.
//!
//! Layout: a 64-byte stream header, then frames. Every frame is a 16-byte header (magic `"SFRM"`,
//! kind `u16`, reserved `u16`, payload length `u32`, CRC-32C `u32` over header bytes 0..12 and
//! the payload) and its payload. See `engine/docs/format.md`, "Copy streams".

use super::{crc, crc_append, set_u32_at, u32_at, DecodeError, Decoder, Encode};

/// `"SSTM"`: first bytes of a stream.
pub const STREAM_MAGIC: u32 = u32::from_le_bytes(*b"SSTM");
/// Stream format version written. Version 2 adds zero extents (an entry frame with
/// [`ENTRY_FLAG_ZERO`] and no data) and lets baseline frames skip all-zero chunks; version-2
/// readers read version-1 streams, version-1 readers refuse version-2 streams.
pub const STREAM_VERSION: u32 = 2;
/// Oldest stream version read.
pub const STREAM_VERSION_MIN: u32 = 1;
/// Entry frame flag (the `u32` after the block count): the entry is a zero extent, and the frame
/// carries no data.
pub const ENTRY_FLAG_ZERO: u32 = 1;
/// Length of the stream header.
pub const STREAM_HEADER_LEN: usize = 64;
/// Offset of the stream header's CRC (over bytes 0..60).
pub const STREAM_CRC_OFFSET: usize = 60;
/// `"SFRM"`: first bytes of a frame.
pub const FRAME_MAGIC: u32 = u32::from_le_bytes(*b"SFRM");
/// Length of a frame header.
pub const FRAME_HEADER_LEN: usize = 16;
/// Offset of a frame's CRC.
pub const FRAME_CRC_OFFSET: usize = 12;
/// Largest frame payload (a record's worth of data plus its fields).
pub const FRAME_PAYLOAD_MAX: usize = (16 << 20) + 64;

/// Stream flag: the stream carries the baseline image.
pub const STREAM_FLAG_BASELINE: u32 = 1;
/// Stream flag: entries were filtered (by block range or sequence number), so received volumes
/// hold only the selected entries.
pub const STREAM_FLAG_FILTERED: u32 = 2;

/// Frame kind: baseline blocks.
pub const FRAME_BASELINE: u16 = 1;
/// Frame kind: a volume (partition) begins.
pub const FRAME_VOLUME_BEGIN: u16 = 2;
/// Frame kind: one log entry.
pub const FRAME_ENTRY: u16 = 3;
/// Frame kind: the volume ends.
pub const FRAME_VOLUME_END: u16 = 4;
/// Frame kind: the stream ends.
pub const FRAME_END: u16 = 5;
/// Frame kind: the branch registry and the volume the target's head grows from (JSON; a full
/// send of the whole tree, version 2).
pub const FRAME_BRANCHES: u16 = 6;

const _: () = assert!(STREAM_CRC_OFFSET + 4 == STREAM_HEADER_LEN);

/// The stream header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHeader {
    /// The source store's identifier.
    pub store_id: u64,
    /// Block size.
    pub block_size: u32,
    /// [`STREAM_FLAG_BASELINE`], [`STREAM_FLAG_FILTERED`].
    pub flags: u32,
    /// Block count.
    pub block_count: u64,
    /// The volume the target must already have (0: the baseline, i.e. a full copy).
    pub base_volume: u64,
    /// The source's next volume identifier (the target keeps clear of identifiers below it).
    pub source_next_volume: u64,
    /// The source's next sequence number.
    pub source_next_seq: u64,
}

impl StreamHeader {
    /// Encodes the header.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(STREAM_HEADER_LEN);
        out.put_u32(STREAM_MAGIC);
        out.put_u32(STREAM_VERSION);
        out.put_u64(self.store_id);
        out.put_u32(self.block_size);
        out.put_u32(self.flags);
        out.put_u64(self.block_count);
        out.put_u64(self.base_volume);
        out.put_u64(self.source_next_volume);
        out.put_u64(self.source_next_seq);
        out.put_u32(0);
        out.put_u32(0);
        let c = crc(&out[..STREAM_CRC_OFFSET]);
        set_u32_at(&mut out, STREAM_CRC_OFFSET, c);
        out
    }

    /// Decodes and verifies a header.
    pub fn decode(bytes: &[u8]) -> Result<StreamHeader, DecodeError> {
        if bytes.len() < STREAM_HEADER_LEN {
            return Err(DecodeError {
                at: 0,
                what: "stream header truncated",
            });
        }
        let mut d = Decoder::new(bytes);
        if d.u32("stream magic")? != STREAM_MAGIC {
            return Err(DecodeError {
                at: 0,
                what: "not a strata stream (bad magic)",
            });
        }
        if !(STREAM_VERSION_MIN..=STREAM_VERSION).contains(&d.u32("stream version")?) {
            return Err(DecodeError {
                at: 4,
                what: "unsupported stream version",
            });
        }
        if crc(&bytes[..STREAM_CRC_OFFSET]) != u32_at(bytes, STREAM_CRC_OFFSET) {
            return Err(DecodeError {
                at: STREAM_CRC_OFFSET,
                what: "stream header checksum mismatch",
            });
        }
        let header = StreamHeader {
            store_id: d.u64("store id")?,
            block_size: d.u32("block size")?,
            flags: d.u32("flags")?,
            block_count: d.u64("block count")?,
            base_volume: d.u64("base volume")?,
            source_next_volume: d.u64("next volume")?,
            source_next_seq: d.u64("next sequence")?,
        };
        // Every field within what a store can represent, before anything is written.
        let bad = |at, what| Err(DecodeError { at, what });
        if !header.block_size.is_power_of_two()
            || !(super::BLOCK_SIZE_MIN..=super::BLOCK_SIZE_MAX).contains(&header.block_size)
        {
            return bad(16, "stream block size is not a supported block size");
        }
        if header.block_count == 0 || header.block_count > super::BLOCK_COUNT_MAX {
            return bad(24, "stream block count is outside what a store may have");
        }
        if header.source_next_volume == 0 || header.source_next_volume > super::SEQ_MAX {
            return bad(40, "stream's next volume identifier is out of range");
        }
        if header.base_volume >= header.source_next_volume {
            return bad(
                32,
                "stream's base volume is not below its next volume identifier",
            );
        }
        if header.source_next_seq == 0 || header.source_next_seq > super::SEQ_MAX {
            return bad(48, "stream's next sequence number is out of range");
        }
        if header.flags & !(STREAM_FLAG_BASELINE | STREAM_FLAG_FILTERED) != 0 {
            return bad(20, "stream flags has unknown bits");
        }
        Ok(header)
    }
}

/// Appends a frame of `kind` with `payload`.
pub fn encode_frame(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let start = out.len();
    out.put_u32(FRAME_MAGIC);
    out.put_u16(kind);
    out.put_u16(0);
    out.put_u32(payload.len() as u32);
    out.put_u32(0);
    let c = crc_append(crc(&out[start..start + FRAME_CRC_OFFSET]), payload);
    set_u32_at(&mut out[start..], FRAME_CRC_OFFSET, c);
    out.extend_from_slice(payload);
}

/// Decodes the frame at the start of `bytes`: `Ok(None)` if more bytes are needed, else the kind,
/// the payload's range in `bytes` and the frame's total length.
pub fn decode_frame(
    bytes: &[u8],
) -> Result<Option<(u16, std::ops::Range<usize>, usize)>, DecodeError> {
    if bytes.len() < FRAME_HEADER_LEN {
        return Ok(None);
    }
    let mut d = Decoder::new(bytes);
    if d.u32("frame magic")? != FRAME_MAGIC {
        return Err(DecodeError {
            at: 0,
            what: "not a frame (bad magic)",
        });
    }
    let kind = d.u16("frame kind")?;
    if d.u16("frame reserved")? != 0 {
        return Err(DecodeError {
            at: 6,
            what: "frame reserved field not zero",
        });
    }
    let len = d.u32("frame length")? as usize;
    if len > FRAME_PAYLOAD_MAX {
        return Err(DecodeError {
            at: 8,
            what: "frame too long",
        });
    }
    if bytes.len() < FRAME_HEADER_LEN + len {
        return Ok(None);
    }
    let payload = FRAME_HEADER_LEN..FRAME_HEADER_LEN + len;
    let stored = u32_at(bytes, FRAME_CRC_OFFSET);
    if crc_append(crc(&bytes[..FRAME_CRC_OFFSET]), &bytes[payload.clone()]) != stored {
        return Err(DecodeError {
            at: FRAME_CRC_OFFSET,
            what: "frame checksum mismatch",
        });
    }
    Ok(Some((kind, payload, FRAME_HEADER_LEN + len)))
}
