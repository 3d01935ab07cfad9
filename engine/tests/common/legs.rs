//! Helpers of the redundant-store tests (`redundant.rs`, `redundant_sums.rs`): a leg device's
//! blocks and checksum entries read straight from its storage.

use pollster::block_on;
use strata_engine::format::block_crc;
use strata_engine::mirror::layout::{IMAGE_OBJECT, SUM_OBJECT};
use strata_engine::storage::sim::SimDisk;
use strata_engine::storage::Storage;

/// The block size of the redundant-store tests.
pub const BS: usize = 512;

/// Block `addr` of a whole image.
pub fn block_of(image: &[u8], addr: u64) -> &[u8] {
    &image[addr as usize * BS..][..BS]
}

/// Reads one block and its checksum entry straight from a leg device.
pub fn leg_block(disk: &SimDisk, addr: u64) -> (Vec<u8>, u32) {
    let mut data = vec![0u8; BS];
    let mut sum = [0u8; 4];
    block_on(disk.read_at(IMAGE_OBJECT, addr * BS as u64, &mut data)).expect("read leg image");
    block_on(disk.read_at(SUM_OBJECT, addr * 4, &mut sum)).expect("read leg sums");
    (data, u32::from_le_bytes(sum))
}

/// True if the leg holds a good copy of `expected` at `addr`, checksum entry included.
pub fn leg_block_is(disk: &SimDisk, addr: u64, expected: &[u8]) -> bool {
    let (data, sum) = leg_block(disk, addr);
    data == expected && sum == block_crc(addr, &data)
}
