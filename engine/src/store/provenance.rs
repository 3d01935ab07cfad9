//! Provenance: which partition serves each block of a volume, for people (the dashboard's block
//! map, "why did this read return that?") rather than for reads.
//!
//! Invariants:
//! * [`Store::locate`] answers exactly what [`Store::read_at`] would read for the same volume and
//!   blocks: the newest version in the volume's ancestry, else the baseline;
//! * [`Store::block_map`] looks only at the block index (never at storage), so it costs one pass
//!   over the written addresses plus one pass over the buckets, whatever the volume's size;
//! * both are bounded: at most [`LOCATE_BLOCKS_MAX`] blocks per `locate`, at most
//!   [`BLOCK_MAP_BUCKETS_MAX`] buckets per map.

use super::*;

/// The most blocks one [`Store::locate`] call describes.
pub const LOCATE_BLOCKS_MAX: u64 = 65_536;
/// The most buckets one [`Store::block_map`] call returns.
pub const BLOCK_MAP_BUCKETS_MAX: u64 = 1 << 20;

/// Where the current data of a block lives, as seen from one volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    /// The baseline of a store created without an image: the block was never written and reads
    /// as zeros.
    Zero,
    /// The baseline image (an imported image, or partitions merged into it).
    Baseline,
    /// A log partition. `deleted` is true when its volume identifier was released by a delete
    /// while descendants still read this block through it.
    Partition {
        /// The partition's volume identifier.
        volume: VolumeId,
        /// The volume was deleted; the partition stays for its descendants.
        deleted: bool,
    },
}

/// The provenance of one block of one volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Provenance {
    /// The block's address.
    pub addr: u64,
    /// Where its data lives.
    pub origin: Origin,
    /// For a partition: the first sequence number of the record that wrote the block (the
    /// entry's own sequence number unless it was written in a batch).
    pub record_seq: Option<u64>,
    /// For a partition: when the partition was created (ms since the Unix epoch).
    pub created_ms: Option<u64>,
    /// For a sealed partition: when it was sealed.
    pub sealed_ms: Option<u64>,
    /// The block reads as zeros without data stored for it: a zero baseline's block, or one of
    /// a zero extent (trimmed or zeroed) in a partition.
    pub zero: bool,
}

/// One region of the block map: blocks `[first_addr, first_addr + blocks)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockMapBucket {
    /// First block of the region.
    pub first_addr: u64,
    /// Blocks in the region.
    pub blocks: u64,
    /// The origin serving the most blocks of the region (ties go to the newest partition).
    pub origin: Origin,
    /// Blocks of the region served by a log partition rather than the baseline.
    pub log_blocks: u64,
    /// How many distinct origins serve the region.
    pub origins: u32,
}

impl<S: Storage> Store<S> {
    fn partition_origin(&self, slot: u32) -> Origin {
        let p = &self.partitions[slot as usize];
        Origin::Partition {
            volume: p.volume,
            deleted: p.hidden,
        }
    }

    fn baseline_origin(&self) -> Origin {
        match self.baseline {
            BaselineKind::Zero => Origin::Zero,
            BaselineKind::Image => Origin::Baseline,
        }
    }

    /// The ancestry of visible volume `volume` (its slot and all older slots it reads through).
    fn ancestry_of(&self, volume: VolumeId) -> Result<SlotSet> {
        let slot = self.partitions.slot_of(volume)?;
        Ok(if slot == Some(self.head) {
            self.head_ancestry.clone()
        } else {
            self.partitions.ancestry(slot)
        })
    }

    /// Which partition serves each of `blocks` blocks from `addr` when volume `volume` is read
    /// (at most [`LOCATE_BLOCKS_MAX`] blocks).
    pub fn locate(&self, volume: VolumeId, addr: u64, blocks: u64) -> Result<Vec<Provenance>> {
        self.check_range(addr, blocks)?;
        if blocks > LOCATE_BLOCKS_MAX {
            return Err(Error::InvalidArgument(format!(
                "locate describes at most {LOCATE_BLOCKS_MAX} blocks at once, not {blocks}"
            )));
        }
        let slot = self.partitions.slot_of(volume)?;
        let ancestry = self.ancestry_of(volume)?;
        let mut out = Vec::with_capacity(blocks as usize);
        for a in addr..addr + blocks {
            let provenance = match self.visible_version(a, slot, &ancestry) {
                Some(version) => {
                    let p = &self.partitions[version.slot as usize];
                    // The record holding the block is the last one starting at or before it.
                    let record = p
                        .records
                        .partition_point(|r| r.offset <= version.offset & !ZERO_VERSION)
                        .checked_sub(1)
                        .and_then(|i| p.records.get(i));
                    Provenance {
                        addr: a,
                        origin: self.partition_origin(version.slot),
                        record_seq: record.map(|r| r.first_seq),
                        created_ms: Some(p.created_ms),
                        sealed_ms: p.sealed_ms,
                        zero: version.is_zero(),
                    }
                }
                None => Provenance {
                    addr: a,
                    origin: self.baseline_origin(),
                    record_seq: None,
                    created_ms: None,
                    sealed_ms: None,
                    zero: self.baseline == BaselineKind::Zero,
                },
            };
            out.push(provenance);
        }
        Ok(out)
    }

    /// Volume `volume` summarised as `buckets` consecutive regions of (nearly) equal size, each
    /// with the origin that serves most of its blocks. `buckets` is clamped to the block count
    /// and to [`BLOCK_MAP_BUCKETS_MAX`]; with one bucket per block the map is exact.
    pub fn block_map(&self, volume: VolumeId, buckets: u64) -> Result<Vec<BlockMapBucket>> {
        if buckets == 0 {
            return Err(Error::InvalidArgument(
                "a block map has at least one bucket".into(),
            ));
        }
        let ancestry = self.ancestry_of(volume)?;
        let block_count = self.block_count;
        if block_count == 0 {
            return Ok(Vec::new());
        }
        let n = buckets.min(block_count).clamp(1, BLOCK_MAP_BUCKETS_MAX);
        // Bucket i covers [i * block_count / n, (i + 1) * block_count / n).
        let first_of = |i: u64| ((u128::from(i) * u128::from(block_count)) / u128::from(n)) as u64;
        let bucket_of = |addr: u64| {
            // The largest i with first_of(i) <= addr.
            let guess = ((u128::from(addr) * u128::from(n)) / u128::from(block_count)) as u64;
            let mut i = guess.min(n - 1);
            while i + 1 < n && first_of(i + 1) <= addr {
                i += 1;
            }
            while i > 0 && first_of(i) > addr {
                i -= 1;
            }
            i
        };
        // Per bucket: (slot, blocks) pairs, usually zero or one of them.
        let mut counts: Vec<Vec<(u32, u64)>> = vec![Vec::new(); n as usize];
        self.index.for_each(|addr, versions| {
            if addr >= block_count {
                return;
            }
            let Some(version) = versions.iter().rev().find(|v| ancestry.contains(v.slot)) else {
                return;
            };
            if let Some(bucket) = counts.get_mut(bucket_of(addr) as usize) {
                match bucket.iter_mut().find(|(slot, _)| *slot == version.slot) {
                    Some((_, count)) => *count += 1,
                    None => bucket.push((version.slot, 1)),
                }
            }
        });
        let baseline = self.baseline_origin();
        let mut out = Vec::with_capacity(n as usize);
        for (i, bucket) in counts.iter().enumerate() {
            let i = i as u64;
            let first_addr = first_of(i);
            let blocks = first_of(i + 1) - first_addr;
            let log_blocks: u64 = bucket.iter().map(|(_, count)| count).sum();
            let baseline_blocks = blocks.saturating_sub(log_blocks);
            // Newest partition wins ties: slots grow with creation order.
            let best = bucket
                .iter()
                .max_by_key(|(slot, count)| (*count, *slot))
                .copied();
            let origin = match best {
                Some((slot, count)) if count >= baseline_blocks => self.partition_origin(slot),
                _ => baseline,
            };
            let origins = bucket.len() as u32 + u32::from(baseline_blocks > 0);
            out.push(BlockMapBucket {
                first_addr,
                blocks,
                origin,
                log_blocks,
                origins,
            });
        }
        Ok(out)
    }
}
