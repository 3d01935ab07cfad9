//! The on-device layout of one primary leg, in code: one constant per field, little-endian
//! fixed-width integers only (see the [module documentation](super) for the same in prose).

use crate::format::{block_crc, crc};

/// Object holding the leg's header (two 64-byte slots).
pub const HEADER_OBJECT: &str = "primary.hdr";
/// Object holding the head volume as a plain image: block `i` at byte `i * block_size`.
pub const IMAGE_OBJECT: &str = "primary.img";
/// Object holding one little-endian `u32` block checksum per block: block `i` at byte `4 * i`.
pub const SUM_OBJECT: &str = "primary.sum";

/// Magic number of a header slot.
pub const PRIMARY_MAGIC: [u8; 4] = *b"SPRM";
/// The layout version this build writes and the highest it reads.
pub const PRIMARY_LAYOUT_VERSION: u32 = 1;
/// Length of one header slot.
pub const PRIMARY_HEADER_LEN: usize = 64;
/// Number of header slots; generation `g` is written to slot `g % 2`, at byte `64 * (g % 2)`.
pub const PRIMARY_HEADER_SLOTS: u64 = 2;
/// Bytes per checksum entry in `primary.sum`.
pub const SUM_ENTRY_LEN: u64 = 4;

/// Offset of the magic (`"SPRM"`).
pub const PRIMARY_MAGIC_OFFSET: usize = 0;
/// Offset of the layout version (`u32`).
pub const PRIMARY_VERSION_OFFSET: usize = 4;
/// Offset of the store identifier (`u64`).
pub const PRIMARY_STORE_ID_OFFSET: usize = 8;
/// Offset of the block size (`u32`).
pub const PRIMARY_BLOCK_SIZE_OFFSET: usize = 16;
/// Offset of the flags (`u32`, see [`FLAG_CONSISTENT`]).
pub const PRIMARY_FLAGS_OFFSET: usize = 20;
/// Offset of the block count (`u64`).
pub const PRIMARY_BLOCK_COUNT_OFFSET: usize = 24;
/// Offset of the header generation (`u64`).
pub const PRIMARY_GENERATION_OFFSET: usize = 32;
/// Offset of the head volume the image reflects (`u64`).
pub const PRIMARY_HEAD_OFFSET: usize = 40;
/// Offset of the secondary's next sequence number the image reflects (`u64`).
pub const PRIMARY_NEXT_SEQ_OFFSET: usize = 48;
/// Offset of the leg's index (`u16`).
pub const PRIMARY_LEG_INDEX_OFFSET: usize = 56;
/// Offset of the number of legs (`u16`).
pub const PRIMARY_LEG_COUNT_OFFSET: usize = 58;
/// Offset of the CRC-32C of bytes `0..60` (`u32`).
pub const PRIMARY_CRC_OFFSET: usize = 60;

/// Flag: the image and checksum table hold exactly the head volume `head` as of sequence number
/// `next_seq` of the secondary (set only after the data is durable). Clear while a leg is being
/// resilvered from scratch.
pub const FLAG_CONSISTENT: u32 = 1;

/// One header slot, decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryHeader {
    /// The secondary store's identifier.
    pub store_id: u64,
    /// Block size in bytes.
    pub block_size: u32,
    /// Flags ([`FLAG_CONSISTENT`]).
    pub flags: u32,
    /// Number of blocks.
    pub block_count: u64,
    /// Bumped by every header write; the valid slot with the highest generation is current.
    pub generation: u64,
    /// The head volume (of the secondary) the image reflects.
    pub head: u64,
    /// The secondary's next sequence number when the image was last made consistent.
    pub next_seq: u64,
    /// This leg's position when the header was written (informational).
    pub leg_index: u16,
    /// Number of legs when the header was written (informational).
    pub leg_count: u16,
}

/// Why a header slot was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotError {
    /// The slot is all zeros or shorter than a header: never written.
    Empty,
    /// The magic or the CRC is wrong: damaged or torn.
    Damaged,
    /// A later layout version.
    Unsupported(u32),
}

impl PrimaryHeader {
    /// The 64 bytes of this header.
    pub fn encode(&self) -> [u8; PRIMARY_HEADER_LEN] {
        let mut b = [0u8; PRIMARY_HEADER_LEN];
        b[PRIMARY_MAGIC_OFFSET..PRIMARY_MAGIC_OFFSET + 4].copy_from_slice(&PRIMARY_MAGIC);
        put(
            &mut b,
            PRIMARY_VERSION_OFFSET,
            &PRIMARY_LAYOUT_VERSION.to_le_bytes(),
        );
        put(
            &mut b,
            PRIMARY_STORE_ID_OFFSET,
            &self.store_id.to_le_bytes(),
        );
        put(
            &mut b,
            PRIMARY_BLOCK_SIZE_OFFSET,
            &self.block_size.to_le_bytes(),
        );
        put(&mut b, PRIMARY_FLAGS_OFFSET, &self.flags.to_le_bytes());
        put(
            &mut b,
            PRIMARY_BLOCK_COUNT_OFFSET,
            &self.block_count.to_le_bytes(),
        );
        put(
            &mut b,
            PRIMARY_GENERATION_OFFSET,
            &self.generation.to_le_bytes(),
        );
        put(&mut b, PRIMARY_HEAD_OFFSET, &self.head.to_le_bytes());
        put(
            &mut b,
            PRIMARY_NEXT_SEQ_OFFSET,
            &self.next_seq.to_le_bytes(),
        );
        put(
            &mut b,
            PRIMARY_LEG_INDEX_OFFSET,
            &self.leg_index.to_le_bytes(),
        );
        put(
            &mut b,
            PRIMARY_LEG_COUNT_OFFSET,
            &self.leg_count.to_le_bytes(),
        );
        let c = crc(&b[..PRIMARY_CRC_OFFSET]);
        put(&mut b, PRIMARY_CRC_OFFSET, &c.to_le_bytes());
        b
    }

    /// Decodes one slot.
    pub fn decode(bytes: &[u8]) -> Result<Self, SlotError> {
        let Some(b) = bytes.get(..PRIMARY_HEADER_LEN) else {
            return Err(SlotError::Empty);
        };
        if b.iter().all(|&x| x == 0) {
            return Err(SlotError::Empty);
        }
        if b[PRIMARY_MAGIC_OFFSET..PRIMARY_MAGIC_OFFSET + 4] != PRIMARY_MAGIC
            || crc(&b[..PRIMARY_CRC_OFFSET]) != u32_at(b, PRIMARY_CRC_OFFSET)
        {
            return Err(SlotError::Damaged);
        }
        let version = u32_at(b, PRIMARY_VERSION_OFFSET);
        if version != PRIMARY_LAYOUT_VERSION {
            return Err(SlotError::Unsupported(version));
        }
        Ok(PrimaryHeader {
            store_id: u64_at(b, PRIMARY_STORE_ID_OFFSET),
            block_size: u32_at(b, PRIMARY_BLOCK_SIZE_OFFSET),
            flags: u32_at(b, PRIMARY_FLAGS_OFFSET),
            block_count: u64_at(b, PRIMARY_BLOCK_COUNT_OFFSET),
            generation: u64_at(b, PRIMARY_GENERATION_OFFSET),
            head: u64_at(b, PRIMARY_HEAD_OFFSET),
            next_seq: u64_at(b, PRIMARY_NEXT_SEQ_OFFSET),
            leg_index: u16_at(b, PRIMARY_LEG_INDEX_OFFSET),
            leg_count: u16_at(b, PRIMARY_LEG_COUNT_OFFSET),
        })
    }

    /// Whether the image is known to match `(head, next_seq)`.
    pub fn consistent(&self) -> bool {
        self.flags & FLAG_CONSISTENT != 0
    }

    /// Byte offset of the slot this header's generation is written to.
    pub fn slot_offset(&self) -> u64 {
        (self.generation % PRIMARY_HEADER_SLOTS) * PRIMARY_HEADER_LEN as u64
    }
}

/// What the header object of a device says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderState {
    /// No slot was ever written.
    Blank,
    /// Slots exist but none is valid.
    Damaged,
    /// A slot of a later layout version (and no valid one of ours).
    Unsupported(u32),
    /// The valid slot with the highest generation.
    Valid(PrimaryHeader),
}

/// Picks the current header out of the two slots (`bytes` is the start of the header object).
pub fn current_header(bytes: &[u8]) -> HeaderState {
    let mut best: Option<PrimaryHeader> = None;
    let mut damaged = false;
    let mut unsupported = None;
    for slot in 0..PRIMARY_HEADER_SLOTS as usize {
        let start = slot * PRIMARY_HEADER_LEN;
        match PrimaryHeader::decode(bytes.get(start..).unwrap_or(&[])) {
            Ok(h) => {
                if best.is_none_or(|b| h.generation > b.generation) {
                    best = Some(h);
                }
            }
            Err(SlotError::Empty) => {}
            Err(SlotError::Damaged) => damaged = true,
            Err(SlotError::Unsupported(v)) => unsupported = Some(v),
        }
    }
    match (best, unsupported, damaged) {
        (Some(h), _, _) => HeaderState::Valid(h),
        (None, Some(v), _) => HeaderState::Unsupported(v),
        (None, None, true) => HeaderState::Damaged,
        (None, None, false) => HeaderState::Blank,
    }
}

/// The checksum entry of an all-zero block at `addr`, given the CRC-32C of one all-zero block
/// (`zero_crc`): `crc32c(addr LE ‖ zeros)` without hashing the zeros again.
pub fn zero_block_crc(addr: u64, zero_crc: u32, block_size: u32) -> u32 {
    crc32c::crc32c_combine(crc(&addr.to_le_bytes()), zero_crc, block_size as usize)
}

/// Checksum entries for `blocks` at `first` (each `block_size` bytes), as stored in `primary.sum`.
pub fn sum_entries(first: u64, data: &[u8], block_size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / block_size * SUM_ENTRY_LEN as usize);
    for (i, block) in data.chunks_exact(block_size).enumerate() {
        out.extend_from_slice(&block_crc(first + i as u64, block).to_le_bytes());
    }
    out
}

fn put(b: &mut [u8], at: usize, v: &[u8]) {
    b[at..at + v.len()].copy_from_slice(v);
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(generation: u64) -> PrimaryHeader {
        PrimaryHeader {
            store_id: 0x1122_3344_5566_7788,
            block_size: 4096,
            flags: FLAG_CONSISTENT,
            block_count: 1000,
            generation,
            head: 3,
            next_seq: 77,
            leg_index: 1,
            leg_count: 2,
        }
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let h = header(5);
        let bytes = h.encode();
        assert_eq!(&bytes[..4], b"SPRM");
        assert_eq!(PrimaryHeader::decode(&bytes), Ok(h));
        for i in 0..PRIMARY_HEADER_LEN {
            let mut damaged = bytes;
            damaged[i] ^= 0x10;
            assert!(PrimaryHeader::decode(&damaged).is_err(), "byte {i}");
        }
        assert_eq!(PrimaryHeader::decode(&[0u8; 64]), Err(SlotError::Empty));
        assert_eq!(PrimaryHeader::decode(&bytes[..10]), Err(SlotError::Empty));
    }

    #[test]
    fn the_newest_valid_slot_wins() {
        let mut object = vec![0u8; 128];
        assert_eq!(current_header(&object), HeaderState::Blank);
        let (a, b) = (header(6), header(7));
        object[a.slot_offset() as usize..][..64].copy_from_slice(&a.encode());
        object[b.slot_offset() as usize..][..64].copy_from_slice(&b.encode());
        assert_eq!(current_header(&object), HeaderState::Valid(b));
        object[b.slot_offset() as usize + 9] ^= 1;
        assert_eq!(current_header(&object), HeaderState::Valid(a));
        object[a.slot_offset() as usize + 9] ^= 1;
        assert_eq!(current_header(&object), HeaderState::Damaged);
    }

    #[test]
    fn zero_block_crc_matches_hashing_the_zeros() {
        let zeros = vec![0u8; 512];
        let zero_crc = crc(&zeros);
        for addr in [0u64, 1, 77, u64::MAX] {
            assert_eq!(zero_block_crc(addr, zero_crc, 512), block_crc(addr, &zeros));
        }
    }
}
