//! The on-disk format in code: one constant per field, little-endian fixed-width integers only.
//! `engine/docs/format.md` is the same thing in prose; `tests/format_doc.rs` ties the two together.
//!
//! Objects in a store:
//! * `meta-<generation:016x>`: the metadata journal ([`meta`]).
//! * `baseline`, `baseline.sum`: the baseline image and one CRC per block ([`baseline`]).
//! * `seg-<volume:016x>-<generation:08x>`: one log segment per partition ([`record`], [`footer`]).
//! * `commit`: the commit point written at close ([`commit`]).

pub mod baseline;
pub mod commit;
pub mod footer;
pub mod meta;
pub mod record;
pub mod stream;

/// The format version this build writes and the highest it reads. Version 4 (this build) adds
/// the seal block of a segment's tail ([`footer::Seal`]: a snapshot with unsynced writes is
/// durable once its segment is, and recovery redoes a seal the journal has not recorded yet)
/// and the magic of records inside a journal group ([`meta::META_NESTED_MAGIC`]). Version 3
/// adds zero extents to log records ([`record::RECORD_FLAG_ZERO_ENTRIES`]); version 2 journal
/// records of up to [`meta::META_PAYLOAD_MAX`] bytes (version 1: 64 KiB) and a `commit`
/// object. An older store is read as it is and keeps its version's limits and encodings (no
/// seal blocks; no zero extents before version 3; version 1: the 64 KiB record limit) until its
/// journal is checkpointed, which writes a current header.
pub const FORMAT_VERSION: u32 = 4;

/// Smallest and largest block sizes.
pub const BLOCK_SIZE_MIN: u32 = 512;
/// Largest block size.
pub const BLOCK_SIZE_MAX: u32 = 65536;
/// Largest volume, in bytes (2^62, so that every byte offset fits an i64 as well).
pub const VOLUME_BYTES_MAX: u64 = 1 << 62;

/// Most blocks a store may have: 2^28 (1 TiB of 4 KiB blocks, 16 TiB of 64 KiB blocks), refused
/// above by `create`, `import` and `receive`. What bounds it is the baseline's checksum object
/// (4 bytes per block: at most 1 GiB), which opening a store with an image baseline and merging
/// into the baseline read whole, a window at a time (memory stays fixed; time grows with it).
pub const BLOCK_COUNT_MAX: u64 = 1 << 28;

/// Most blocks a store may have to be opened: 2^32. The in-memory block index keeps addresses
/// as `u32`; a store with more blocks (which no version of this engine creates past
/// [`BLOCK_COUNT_MAX`]) is refused at open with `LIMIT_EXCEEDED`.
pub const OPEN_BLOCK_COUNT_MAX: u64 = 1 << 32;

/// Largest sequence number (and volume identifier) a store uses: 2^62, far beyond any real
/// store, so that arithmetic on them never overflows. Anything larger on disk is corruption.
pub const SEQ_MAX: u64 = 1 << 62;

/// CRC-32C of `data`.
///
/// Natively the `crc32c` crate (the CPU's CRC instructions where there are some); in
/// WebAssembly, which has none, the `crc` crate's slice-by-16 implementation with its tables
/// built at first use (`small_crc`): `crc32c`'s software fallback has its 8 KiB of tables in
/// the module, 8 KiB of the npm package's gzipped `.wasm` (random-looking words do not
/// compress). Measured in the browser bench: as fast as before or faster (memory backend,
/// 4 KiB writes 17.5 -> 9.8 µs, reads 21.8 -> 13.6 µs, a noisy machine), and 8 KiB smaller.
pub fn crc(data: &[u8]) -> u32 {
    #[cfg(not(target_arch = "wasm32"))]
    return crc32c::crc32c(data);
    #[cfg(target_arch = "wasm32")]
    return small_crc::crc(data);
}

/// CRC-32C continuing from `crc` (the value [`crc()`] returned for the data before `data`).
pub fn crc_append(crc: u32, data: &[u8]) -> u32 {
    #[cfg(not(target_arch = "wasm32"))]
    return crc32c::crc32c_append(crc, data);
    #[cfg(target_arch = "wasm32")]
    return small_crc::crc_append(crc, data);
}

/// CRC-32C from the `crc` crate, tables built at first use (the WebAssembly build's; tested
/// against `crc32c` natively).
#[cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]
mod small_crc {
    use crc::{Algorithm, Crc, Table, CRC_32_ISCSI};

    thread_local! {
        /// Built at first use, not at compile time, so that its 16 KiB of tables are memory
        /// rather than bytes of the module. (`black_box` keeps the optimiser from evaluating
        /// the constructor, a `const fn`, at compile time; a `const` initialiser would do just
        /// that.)
        #[allow(clippy::missing_const_for_thread_local)]
        static CASTAGNOLI: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(
            std::hint::black_box::<&'static Algorithm<u32>>(&CRC_32_ISCSI),
        );
    }

    pub(super) fn crc(data: &[u8]) -> u32 {
        CASTAGNOLI.with(|c| c.checksum(data))
    }

    pub(super) fn crc_append(crc: u32, data: &[u8]) -> u32 {
        // A finished CRC-32C is the register inverted; the crate takes the initial register
        // bit-reversed for a reflected algorithm such as this one.
        CASTAGNOLI.with(|c| {
            let mut digest = c.digest_with_initial((!crc).reverse_bits());
            digest.update(data);
            digest.finalize()
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn agrees_with_the_crc32c_crate() {
            let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 + i / 251) as u8).collect();
            for cut in [0, 1, 7, 8, 9, 4096, 9_999, 10_000] {
                let (a, b) = data.split_at(cut);
                assert_eq!(super::crc(a), crc32c::crc32c(a), "{cut}");
                let whole = super::crc_append(super::crc(a), b);
                assert_eq!(whole, crc32c::crc32c(&data), "{cut}");
                assert_eq!(super::crc_append(crc32c::crc32c(a), b), whole, "{cut}");
            }
        }
    }
}

/// The checksum of one block: CRC-32C over the block's address (8 bytes, little-endian) followed
/// by its data, so that a block written to the wrong place is detected as well as a damaged one.
pub fn block_crc(addr: u64, data: &[u8]) -> u32 {
    crc_append(crc(&addr.to_le_bytes()), data)
}

/// Name of the metadata journal of a generation.
pub fn meta_object(generation: u64) -> String {
    format!("meta-{generation:016x}")
}

/// Parses a metadata journal name.
pub fn parse_meta_object(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("meta-")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Name of a partition's log segment.
pub fn segment_object(volume: u64, generation: u32) -> String {
    format!("seg-{volume:016x}-{generation:08x}")
}

/// Parses a segment name into (volume, generation).
pub fn parse_segment_object(name: &str) -> Option<(u64, u32)> {
    let rest = name.strip_prefix("seg-")?;
    let (volume, generation) = rest.split_once('-')?;
    if volume.len() != 16 || generation.len() != 8 {
        return None;
    }
    Some((
        u64::from_str_radix(volume, 16).ok()?,
        u32::from_str_radix(generation, 16).ok()?,
    ))
}

/// Bounds-checked little-endian reader over a byte slice: decoders never index or panic.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
    position: usize,
}

/// A decode failure: what was being read and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    /// Offset within the decoded slice.
    pub at: usize,
    /// What went wrong.
    pub what: &'static str,
}

impl<'a> Decoder<'a> {
    /// Starts at the beginning of `bytes`.
    pub fn new(bytes: &'a [u8]) -> Self {
        Decoder { bytes, position: 0 }
    }

    /// Current offset.
    pub fn position(&self) -> usize {
        self.position
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    /// Takes `n` bytes.
    pub fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self
            .position
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len());
        match end {
            Some(end) => {
                let out = &self.bytes[self.position..end];
                self.position = end;
                Ok(out)
            }
            None => Err(DecodeError {
                at: self.position,
                what,
            }),
        }
    }

    /// Reads a `u8`.
    pub fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.bytes(1, what)?[0])
    }

    /// Reads a little-endian `u16`.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.bytes(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    /// Reads a little-endian `u32`.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.bytes(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a little-endian `u64`.
    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.bytes(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

/// Little-endian writer helpers on a `Vec<u8>`.
pub trait Encode {
    /// Appends a `u16`.
    fn put_u16(&mut self, v: u16);
    /// Appends a `u32`.
    fn put_u32(&mut self, v: u32);
    /// Appends a `u64`.
    fn put_u64(&mut self, v: u64);
}

impl Encode for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_le_bytes());
    }
}

/// Reads a `u32` at a fixed offset of a slice known to be long enough (callers check lengths).
pub(crate) fn u32_at(bytes: &[u8], offset: usize) -> u32 {
    let mut a = [0u8; 4];
    if let Some(src) = bytes.get(offset..offset + 4) {
        a.copy_from_slice(src);
    }
    u32::from_le_bytes(a)
}

/// Writes a `u32` at a fixed offset (no-op if out of range).
pub(crate) fn set_u32_at(bytes: &mut [u8], offset: usize, v: u32) {
    if let Some(dst) = bytes.get_mut(offset..offset + 4) {
        dst.copy_from_slice(&v.to_le_bytes());
    }
}
