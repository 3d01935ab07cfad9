//! The commit point: the object `commit`, written when a store is closed, that vouches for how
//! much of the journal and of the head's segment was acknowledged.
//!
//! Recovery may cut a torn tail (an append that was never acknowledged), but from the journal or
//! a segment alone it cannot tell that tail from acknowledged records that were lost (a file
//! truncated at a record boundary, or replaced by an older copy). The commit point, in another
//! object, says: "journal generation `g` held at least `journal_len` bytes of records, and head
//! volume `h` at least `head_len` bytes of synced records". Every claim is about state that was
//! already durable when the commit point was written, so no crash can make it false; a store
//! whose journal or head falls short of it has lost acknowledged data, and open reports that
//! with the file named instead of rolling back.
//!
//! Two 64-byte slots, at bytes 0 and 512 (separate sectors); commit point `n` is written to slot
//! `n % 2`, so a torn write leaves the other slot, and the valid slot with the highest number is
//! current. Slot layout: magic `"SCPT"` (4), slot version `1` (4), number `n` (8), store id (8),
//! journal generation (8), journal length (8), head volume (8), head segment length (8),
//! reserved zero (4), CRC-32C of bytes 0..60 (4).

use super::{crc, set_u32_at, u32_at, Encode};

/// Name of the commit point object.
pub const COMMIT_OBJECT: &str = "commit";
/// `"SCPT"`.
pub const COMMIT_MAGIC: u32 = u32::from_le_bytes(*b"SCPT");
/// Slot layout version.
pub const COMMIT_VERSION: u32 = 1;
/// Length of one slot.
pub const COMMIT_SLOT_LEN: usize = 64;
/// Distance between the two slots (each in its own sector).
pub const COMMIT_SLOT_STRIDE: u64 = 512;
/// Offset of the magic.
pub const COMMIT_MAGIC_OFFSET: usize = 0;
/// Offset of the slot version.
pub const COMMIT_VERSION_OFFSET: usize = 4;
/// Offset of the commit point's number.
pub const COMMIT_NUMBER_OFFSET: usize = 8;
/// Offset of the store identifier.
pub const COMMIT_STORE_ID_OFFSET: usize = 16;
/// Offset of the journal generation.
pub const COMMIT_JOURNAL_GENERATION_OFFSET: usize = 24;
/// Offset of the journal length.
pub const COMMIT_JOURNAL_LEN_OFFSET: usize = 32;
/// Offset of the head volume.
pub const COMMIT_HEAD_VOLUME_OFFSET: usize = 40;
/// Offset of the head segment length.
pub const COMMIT_HEAD_LEN_OFFSET: usize = 48;
/// Offset of the reserved field.
pub const COMMIT_RESERVED_OFFSET: usize = 56;
/// Offset of the CRC (over bytes 0..60).
pub const COMMIT_CRC_OFFSET: usize = 60;

const _: () = assert!(COMMIT_CRC_OFFSET + 4 == COMMIT_SLOT_LEN);

/// One commit point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitPoint {
    /// Its number: it is written to slot `number % 2`.
    pub number: u64,
    /// The store it belongs to.
    pub store_id: u64,
    /// The journal generation in use.
    pub journal_generation: u64,
    /// Bytes of records in that generation, all durable.
    pub journal_len: u64,
    /// The live head's volume.
    pub head_volume: u64,
    /// Bytes of the head's segment covered by a completed sync.
    pub head_len: u64,
}

impl CommitPoint {
    /// The slot's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(COMMIT_SLOT_LEN);
        out.put_u32(COMMIT_MAGIC);
        out.put_u32(COMMIT_VERSION);
        out.put_u64(self.number);
        out.put_u64(self.store_id);
        out.put_u64(self.journal_generation);
        out.put_u64(self.journal_len);
        out.put_u64(self.head_volume);
        out.put_u64(self.head_len);
        out.put_u32(0);
        out.put_u32(0);
        let c = crc(&out[..COMMIT_CRC_OFFSET]);
        set_u32_at(&mut out, COMMIT_CRC_OFFSET, c);
        out
    }

    /// Decodes a slot; `None` if it does not verify (never written, torn or damaged).
    pub fn decode(bytes: &[u8]) -> Option<CommitPoint> {
        let slot = bytes.get(..COMMIT_SLOT_LEN)?;
        let valid = crc(&slot[..COMMIT_CRC_OFFSET]) == u32_at(slot, COMMIT_CRC_OFFSET)
            && u32_at(slot, COMMIT_MAGIC_OFFSET) == COMMIT_MAGIC
            && u32_at(slot, COMMIT_VERSION_OFFSET) == COMMIT_VERSION
            && u32_at(slot, COMMIT_RESERVED_OFFSET) == 0;
        let u64_at =
            |at: usize| u64::from(u32_at(slot, at)) | u64::from(u32_at(slot, at + 4)) << 32;
        valid.then(|| CommitPoint {
            number: u64_at(COMMIT_NUMBER_OFFSET),
            store_id: u64_at(COMMIT_STORE_ID_OFFSET),
            journal_generation: u64_at(COMMIT_JOURNAL_GENERATION_OFFSET),
            journal_len: u64_at(COMMIT_JOURNAL_LEN_OFFSET),
            head_volume: u64_at(COMMIT_HEAD_VOLUME_OFFSET),
            head_len: u64_at(COMMIT_HEAD_LEN_OFFSET),
        })
    }

    /// The byte offset of this commit point's slot.
    pub fn slot_offset(&self) -> u64 {
        (self.number % 2) * COMMIT_SLOT_STRIDE
    }

    /// The current commit point among the slots of a `commit` object's bytes: the valid slot
    /// with the highest number.
    pub fn current(object: &[u8]) -> Option<CommitPoint> {
        (0..2u64)
            .filter_map(|i| {
                let at = (i * COMMIT_SLOT_STRIDE) as usize;
                CommitPoint::decode(object.get(at..)?)
            })
            .max_by_key(|p| p.number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(number: u64) -> CommitPoint {
        CommitPoint {
            number,
            store_id: 7,
            journal_generation: 2,
            journal_len: 300,
            head_volume: 4,
            head_len: 9000,
        }
    }

    #[test]
    fn round_trips_and_the_newest_valid_slot_wins() {
        let mut object = vec![0u8; 1024];
        assert_eq!(CommitPoint::current(&object), None);
        for n in [1u64, 2, 3] {
            let p = point(n);
            let at = p.slot_offset() as usize;
            object[at..at + COMMIT_SLOT_LEN].copy_from_slice(&p.encode());
            assert_eq!(CommitPoint::current(&object), Some(p));
        }
        // A torn write of slot 0 (commit point 4) leaves commit point 3 in slot 1.
        object[10] ^= 0xFF;
        assert_eq!(CommitPoint::current(&object).map(|p| p.number), Some(3));
        // An object cut short reads what it still holds.
        assert_eq!(
            CommitPoint::current(&object[..600]).map(|p| p.number),
            Some(3)
        );
        assert_eq!(CommitPoint::current(&object[..500]), None);
    }
}
