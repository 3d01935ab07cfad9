//! The store's public value types: how a store is created, what it reports, where a cursor starts.

use crate::VolumeId;

/// How a store is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// Block size in bytes: a power of two in `512..=65536`.
    pub block_size: u32,
    /// Number of blocks in the volume.
    pub block_count: u64,
    /// An identifier for the store; derived from the clock when `None`.
    pub store_id: Option<u64>,
}

impl CreateOptions {
    /// `block_count` blocks of the default size, 4096 bytes.
    pub fn new(block_count: u64) -> Self {
        CreateOptions {
            block_size: 4096,
            block_count,
            store_id: None,
        }
    }

    /// Sets the block size.
    pub fn block_size(mut self, block_size: u32) -> Self {
        self.block_size = block_size;
        self
    }
}

/// What the baseline holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaselineKind {
    /// All zeros (the store was created empty).
    Zero,
    /// An imported image.
    Image,
}

/// Where a volume sits in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VolumeKind {
    /// The baseline partition (volume 0).
    Baseline,
    /// A sealed snapshot partition.
    Snapshot,
    /// The live, writable head.
    Head,
}

/// A description of one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeInfo {
    /// Its identifier.
    pub id: VolumeId,
    /// Baseline, snapshot or head.
    pub kind: VolumeKind,
    /// The label given at snapshot time (empty if none).
    pub label: String,
    /// Parent volume (`None` for the baseline).
    pub parent: Option<VolumeId>,
    /// When the partition was created (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it was sealed, for snapshots.
    pub sealed_ms: Option<u64>,
    /// Log entries in the partition.
    pub entry_count: u64,
    /// Blocks written in the partition (over all its entries).
    pub blocks_written: u64,
    /// Bytes the partition occupies on storage.
    pub bytes: u64,
    /// Sequence number of the partition's first entry.
    pub first_seq: u64,
    /// Sequence number after its last entry.
    pub next_seq: u64,
}

/// Facts about a store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreInfo {
    /// The storage backend's kind.
    pub backend: &'static str,
    /// Block size.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u64,
    /// What the baseline holds.
    pub baseline: BaselineKind,
    /// Store identifier.
    pub store_id: u64,
    /// Creation time.
    pub created_ms: u64,
    /// The live head volume.
    pub head: VolumeId,
    /// Next sequence number to be assigned.
    pub next_seq: u64,
    /// Number of log partitions (snapshots plus the head).
    pub partitions: usize,
    /// Bytes of log segments.
    pub log_bytes: u64,
    /// Distinct block addresses written in the log.
    pub mapped_blocks: usize,
    /// Approximate heap bytes of the block index.
    pub index_bytes: usize,
}

/// What recovery did when the store was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Bytes cut from the metadata journal's torn tail.
    pub journal_bytes_truncated: u64,
    /// Bytes cut from the head segment's torn tail.
    pub head_bytes_truncated: u64,
    /// Bytes of the head segment that the commit point says were synced but that were cut (only
    /// a mirror's secondary opens like this: its legs give those writes back).
    pub head_bytes_lost: u64,
}

/// Where a log cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorStart {
    /// The first entry of the log.
    Beginning,
    /// The first entry with this sequence number or a later one.
    Seq(u64),
    /// The first entry of this volume's partition.
    Volume(VolumeId),
}

/// One entry of the log, as returned by [`Store::next_entry`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Sequence number.
    pub seq: u64,
    /// Volume (partition) it belongs to.
    pub volume: VolumeId,
    /// First block address.
    pub addr: u64,
    /// Number of blocks.
    pub blocks: u32,
    /// Commit time (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// The data, when asked for.
    pub data: Option<Vec<u8>>,
}
