//! The baseline image and its checksums.
//!
//! `baseline` holds the raw image, block `i` at byte `i * block_size`. `baseline.sum` holds one
//! little-endian `u32` per block, the block's CRC (see [`super::block_crc`]), or zero for a zero
//! block (a merge into an empty baseline leaves the blocks it never wrote as holes); the CRC-32C
//! of the whole of `baseline.sum` is kept in the store header. A store created empty has neither
//! object: its baseline reads as zeros.

/// Object holding the baseline image.
pub const BASELINE_OBJECT: &str = "baseline";
/// Object holding the baseline's block CRCs.
pub const BASELINE_SUM_OBJECT: &str = "baseline.sum";
/// Baseline kind: all zeros, no objects.
pub const BASELINE_ZERO: u32 = 0;
/// Baseline kind: an image in `baseline` with CRCs in `baseline.sum`.
pub const BASELINE_IMAGE: u32 = 1;
