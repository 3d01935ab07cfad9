//! The store: a baseline partition plus an incremental log split into snapshot partitions.
//!
//! Invariants:
//! * Partitions form a tree rooted at the baseline (volume 0); every partition but the live head
//!   is sealed, and a sealed partition's segment never changes.
//! * Sequence numbers are global and increase by one per entry; partitions hold disjoint,
//!   increasing ranges of them.
//! * Bytes of the head's segment below `flushed` have been handed to storage; those below
//!   `durable` are covered by a completed durable commit. Records above `flushed` live in
//!   `pending`, and reads serve them from there.
//! * Every record written carries the head's `durable` length at the time, which lets recovery
//!   tell a torn tail from damage below a completed sync.

use std::rc::Rc;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::baseline::{
    BASELINE_IMAGE, BASELINE_OBJECT, BASELINE_SUM_OBJECT, BASELINE_ZERO,
};
use crate::format::commit::{CommitPoint, COMMIT_OBJECT};
use crate::format::footer::{self, decode_footer, decode_index, FOOTER_LEN};
use crate::format::meta::{
    MetaRecord, CREATED_FLAG_HEAD, LABEL_BYTES_MAX, META_HEADER_LEN, META_PAYLOAD_MAX,
    META_PAYLOAD_MAX_V1,
};
use crate::format::record::{
    decode_header, decode_tables, encode_record, verify_data, Payload, RecordHeader, RecordMeta,
    RECORD_BLOCKS_MAX, RECORD_DATA_BYTES_MAX, RECORD_ENTRY_LEN, RECORD_FLAG_SEQ_TABLE,
    RECORD_FLAG_ZERO_ENTRIES, RECORD_HEADER_LEN, RECORD_MAGIC, ZERO_EXTENT_BLOCKS_MAX,
};
use crate::format::{
    self, block_crc, meta_object, parse_meta_object, segment_object, FORMAT_VERSION,
};
use crate::index::{BlockIndex, SlotSet, Version, ZERO_VERSION};
mod branch;
mod checkpoint;
mod copy;
mod create;
mod cursor;
mod documents;
mod open;
mod ops;
mod provenance;
mod read;
mod records;
mod recovery;
mod tree;
mod types;
mod write;
use crate::storage::{Commit, ReadRequest, Storage};
use crate::VolumeId;
pub use branch::{BranchInfo, BRANCHES_MAX, BRANCH_MAIN, BRANCH_NAME_BYTES_MAX};
pub use copy::{CopyReport, SendOptions, StreamReceiver};
pub use create::BaselineImport;
pub use cursor::LogCursor;
pub use documents::{Document, Documents, DOCUMENT_TRAIL_MAX};
pub use ops::{CompactReport, Extent, Progress, SpaceInfo};
pub use provenance::{
    BlockMapBucket, Origin, Provenance, BLOCK_MAP_BUCKETS_MAX, LOCATE_BLOCKS_MAX,
};
use records::{RecordList, RecordRef};
use tree::PartitionTree;
pub use types::{
    BaselineKind, CreateOptions, CursorStart, LogEntry, RecoveryReport, StoreInfo, VolumeInfo,
    VolumeKind,
};
use write::HeadState;

/// Most partitions a store holds at once: snapshots, the head, and deleted snapshots kept for
/// their descendants. Taking a snapshot (or receiving a volume) past it fails with
/// [`Error::LimitExceeded`]. It bounds the journal a checkpoint writes (a few hundred bytes per
/// partition) and the work of opening.
pub const PARTITIONS_MAX: usize = 100_000;
/// Most bytes one [`Store::read`] or [`Store::read_at`] returns (64 MiB): a larger read is
/// refused with [`Error::LimitExceeded`] before anything is allocated. Read larger ranges in
/// pieces, or into a buffer of your own with [`Store::read_into`].
pub const READ_BYTES_MAX: u64 = 64 << 20;
/// Default for [`Store::set_write_buffer_bytes`]: 2 MiB. Measured with the bench's figure 3
/// (1 GiB appended in 256 KiB writes, `--only 1,3`, two runs each, 2026-12-06): 4 MiB gave
/// 55-56% of a raw `write` + `fdatasync` at 0.67 s of CPU per GiB, 2 MiB 85-86% at 0.36-0.38
/// s/GiB, 1 MiB 76-78%, 512 KiB 67-83%, 256 KiB 66-71% (copying a buffer larger than the CPU's
/// cache into the page cache costs more CPU per byte); figure 1 (small random writes) is no
/// slower.
pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 2 << 20;
/// Size of the window used to scan a head segment at open.
const SCAN_WINDOW_BYTES: u64 = 8 << 20;

/// Segment objects created ahead of their partitions at a time, on backends where a new object
/// costs a directory flush ([`crate::storage::Storage::new_objects_cost_a_flush`]): one
/// snapshot in this many also flushes the directory, and every partition's first sync does not.
pub const SPARE_SEGMENTS: u64 = 32;
/// Bytes per chunk when exporting or importing images.
pub const IMAGE_CHUNK_BYTES: usize = 1 << 20;

/// One block volume: a baseline plus a snapshot-partitioned incremental log, over a [`Storage`].
///
/// All methods are `async` because browser storage is; natively the futures complete at once and
/// `pollster::block_on` runs them.
pub struct Store<S: Storage> {
    storage: S,
    clock: Rc<dyn Clock>,
    block_size: u32,
    block_count: u64,
    baseline: BaselineKind,
    /// The format version in the journal's store header (limits what may be written).
    format_version: u32,
    store_id: u64,
    created_ms: u64,
    meta_object: String,
    meta_len: u64,
    partitions: PartitionTree,
    head: u32,
    head_state: HeadState,
    head_ancestry: SlotSet,
    index: BlockIndex,
    write_buffer_bytes: usize,
    baseline_sum_crc: u32,
    /// Bumped whenever records move (compaction, merge, deletion), so cursors re-seek.
    epoch: u64,
    /// The documents of the layers above (the policy executor's), as the journal holds them.
    documents: Documents,
    /// The branch registry (see `branch.rs`).
    branches: branch::Branches,
    /// When the journal is checkpointed by itself.
    checkpoint: checkpoint::CheckpointTrigger,
    /// A merge whose start is journaled but whose finish is not (it failed part-way): the
    /// journal must not be checkpointed until it is finished.
    merging: Option<VolumeId>,
    next_volume: u64,
    /// Volumes from `next_volume` up to this one have an empty segment object already (see
    /// [`Store::add_spare_segments`]).
    spare_until: u64,
    poisoned: bool,
    /// Opened with [`Store::open_read_only`]: nothing is ever written to storage.
    read_only: bool,
    recovery: RecoveryReport,
    /// The commit point recovery found (or the last one this handle wrote): what a close need
    /// not write again.
    commit_point: Option<CommitPoint>,
    /// Set while a mirror's secondary is being opened (see [`Store::open_secondary`]).
    head_loss_vouched_elsewhere: bool,
    /// The journal records of snapshots whose seal only their segments hold so far (see
    /// [`Store::seal_head_and_open_then`]): the next journal append carries them first, and a
    /// checkpoint or a close writes them. At most [`JOURNAL_PENDING_MAX`].
    journal_pending: Vec<MetaRecord>,
}

/// Most journal records left pending by snapshots (two per snapshot): past it, a snapshot
/// appends them to the journal with its own, so that the chain of seals recovery may have to
/// follow from segment to segment stays short.
pub(crate) const JOURNAL_PENDING_MAX: usize = 64;

impl<S: Storage> std::fmt::Debug for Store<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.storage.kind())
            .field("block_size", &self.block_size)
            .field("block_count", &self.block_count)
            .field("head", &self.partitions[self.head as usize].volume)
            .finish_non_exhaustive()
    }
}

/// The length of a read of `blocks` blocks, refused past [`READ_BYTES_MAX`].
pub(crate) fn check_read_len(blocks: u64, block_size: u32) -> Result<usize> {
    let bytes = blocks.saturating_mul(u64::from(block_size));
    if bytes > READ_BYTES_MAX {
        return Err(Error::LimitExceeded(format!(
            "a read returns at most {READ_BYTES_MAX} bytes (64 MiB); {blocks} blocks are {bytes} bytes: read them in pieces, or into a buffer of your own"
        )));
    }
    usize::try_from(bytes)
        .map_err(|_| Error::InvalidArgument("read too large for this platform".into()))
}

/// The index's [`Version::offset`] for the blocks of zero extent `entry` of the record at
/// `record_offset`: the entry's place in the segment, marked as a zero version.
pub(crate) fn zero_entry_offset(record_offset: u64, entry: usize) -> u64 {
    ZERO_VERSION | (record_offset + (RECORD_HEADER_LEN + entry * RECORD_ENTRY_LEN) as u64)
}

fn check_label(label: &str) -> Result<()> {
    if label.len() > LABEL_BYTES_MAX {
        return Err(Error::InvalidLabel(format!(
            "{} bytes long; at most {LABEL_BYTES_MAX} bytes",
            label.len()
        )));
    }
    if label.chars().any(char::is_control) {
        return Err(Error::InvalidLabel("contains a control character".into()));
    }
    Ok(())
}

impl<S: Storage> Store<S> {
    /// Asserts the invariants the module documentation states (debug builds only, so the
    /// model, crash and kill tests check them after every operation they run).
    pub(crate) fn check_invariants(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        self.partitions.debug_check();
        let head = &self.partitions[self.head as usize];
        debug_assert!(!head.dropped && !head.hidden, "the head is not live");
        debug_assert!(
            self.read_only || head.sealed_ms.is_none(),
            "the head is sealed"
        );
        debug_assert!(
            self.partitions
                .iter()
                .enumerate()
                .all(|(slot, p)| p.dropped || slot == self.head as usize || p.sealed_ms.is_some()),
            "a partition other than the head is not sealed"
        );
        // Live partitions hold disjoint, increasing ranges of sequence numbers.
        let mut ranges: Vec<(u64, u64)> = self
            .partitions
            .iter()
            .filter(|p| !p.dropped && p.first_seq < p.next_seq)
            .map(|p| (p.first_seq, p.next_seq))
            .collect();
        ranges.sort_unstable();
        debug_assert!(
            ranges.windows(2).all(|w| w[0].1 <= w[1].0),
            "partitions' sequence ranges overlap"
        );
        let state = &self.head_state;
        debug_assert!(state.durable <= state.flushed, "durable past flushed");
        debug_assert_eq!(
            state.flushed + state.pending.len() as u64,
            head.records_end,
            "pending records do not end where the head's records do"
        );
        debug_assert!(
            self.partitions
                .lineage(Some(self.head))
                .all(|s| self.head_ancestry.contains(s)),
            "the head's ancestry is stale"
        );
    }

    // ----- accessors -------------------------------------------------------------------------

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Number of blocks in the volume.
    pub fn block_count(&self) -> u64 {
        self.block_count
    }

    /// The live head's volume identifier.
    pub fn head(&self) -> VolumeId {
        self.partitions[self.head as usize].volume
    }

    /// The store's clock, read now (ms since the Unix epoch).
    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// A storage commit failed: the handle refuses every change and must be reopened.
    pub(crate) fn is_poisoned(&self) -> bool {
        self.poisoned
    }

    /// What the head has taken since it was opened, cheaply: entries, blocks written and the
    /// bytes of its segment.
    pub(crate) fn head_counters(&self) -> (u64, u64, u64) {
        let head = &self.partitions[self.head as usize];
        (head.entries, head.blocks_written, head.segment_len)
    }

    /// Bytes of log segments outside the head (a sum over the partitions).
    pub(crate) fn sealed_log_bytes(&self) -> u64 {
        let head = self.head as usize;
        self.partitions
            .iter()
            .enumerate()
            .filter(|(slot, _)| *slot != head)
            .map(|(_, p)| p.segment_len)
            .sum()
    }

    /// Live partitions: snapshots (deleted ones kept for their descendants too) and the head.
    pub(crate) fn partition_count(&self) -> usize {
        self.partitions.iter().filter(|p| !p.dropped).count()
    }

    /// The newest snapshot of the live chain, as `send` picks it (the baseline if there is
    /// none): a deleted volume's partition kept for the head is not one.
    pub(crate) fn newest_snapshot(&self) -> VolumeId {
        self.partitions
            .visible_ancestor(self.partitions[self.head as usize].parent)
    }

    /// Fails with [`Error::UnknownVolume`] unless `volume` is a volume of the store (the
    /// baseline, a snapshot or the head; not a deleted one).
    pub(crate) fn check_volume(&self, volume: VolumeId) -> Result<()> {
        self.partitions.slot_of(volume).map(drop)
    }

    /// Sets how many bytes of written records are kept in memory before they are handed to
    /// storage ahead of a sync. Larger means fewer, bigger storage writes; `0` hands every
    /// record over at once (tests use it to expose unsynced writes to simulated crashes).
    /// Durability is unaffected: only [`Store::sync`] makes writes durable.
    pub fn set_write_buffer_bytes(&mut self, bytes: usize) {
        self.write_buffer_bytes = bytes;
    }

    /// What recovery did at open.
    pub fn recovery(&self) -> &RecoveryReport {
        &self.recovery
    }

    /// The storage backend (for inspection).
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Closes the store after a final sync, and gives back the storage.
    pub async fn close(mut self) -> Result<S> {
        if self.read_only {
            return Ok(self.storage);
        }
        self.flush(true).await?;
        // The commit point vouches for the journal's length: the records snapshots left
        // pending go in first.
        self.write_journal_pending().await?;
        self.write_commit_point().await?;
        Ok(self.storage)
    }

    /// What every operation that changes the store does when it has finished: checks the
    /// invariants (debug builds), then checkpoints the journal if it has grown large (see
    /// [`Store::set_journal_checkpoint_bytes`]).
    pub(crate) async fn operation_done(&mut self) -> Result<()> {
        self.check_invariants();
        self.maybe_checkpoint_journal().await
    }

    /// Writes the commit point (see `format::commit`): the journal's length and the head's
    /// synced length, both durable already, into the `commit` object, durably. Skipped when the
    /// last commit point says the same. Called by [`Store::close`] after its final sync.
    async fn write_commit_point(&mut self) -> Result<()> {
        let journal_generation = parse_meta_object(&self.meta_object)
            .ok_or_else(|| Error::corrupt(&self.meta_object, 0, "bad journal name"))?;
        let point = CommitPoint {
            number: self.commit_point.map_or(1, |p| p.number.saturating_add(1)),
            store_id: self.store_id,
            journal_generation,
            journal_len: self.meta_len,
            head_volume: self.head().0,
            head_len: self.head_state.durable,
        };
        let unchanged = self.commit_point.is_some_and(|old| {
            CommitPoint {
                number: point.number,
                ..old
            } == point
        });
        if unchanged {
            return Ok(());
        }
        let mut commit = Commit::new(true);
        commit.write(COMMIT_OBJECT, point.slot_offset(), point.encode());
        self.commit(commit).await?;
        self.commit_point = Some(point);
        Ok(())
    }

    /// Facts about the store.
    pub fn info(&self) -> StoreInfo {
        StoreInfo {
            backend: self.storage.kind().to_string(),
            block_size: self.block_size,
            block_count: self.block_count,
            baseline: self.baseline,
            store_id: self.store_id,
            created_ms: self.created_ms,
            head: self.head(),
            next_seq: self.partitions[self.head as usize].next_seq,
            partitions: self.partitions.iter().filter(|p| !p.dropped).count(),
            log_bytes: self.partitions.iter().map(|p| p.segment_len).sum(),
            mapped_blocks: self.index.mapped_blocks(),
            index_bytes: self.index.heap_bytes(),
            recovery: self.recovery.clone(),
        }
    }

    /// Every volume: the baseline first, then the partitions in creation order.
    pub fn volumes(&self) -> Vec<VolumeInfo> {
        let mut out = vec![VolumeInfo {
            id: VolumeId::BASELINE,
            kind: VolumeKind::Baseline,
            label: String::new(),
            parent: None,
            branch: String::new(),
            created_ms: self.created_ms,
            sealed_ms: Some(self.created_ms),
            entry_count: 0,
            blocks_written: 0,
            bytes: match self.baseline {
                BaselineKind::Zero => 0,
                BaselineKind::Image => self.block_count * (u64::from(self.block_size) + 4),
            },
            first_seq: 1,
            next_seq: 1,
        }];
        // Which slot is which branch's head: found once, not searched per partition.
        let mut branch_of = vec![""; self.partitions.len()];
        branch_of[self.head as usize] = self.active_branch();
        for (name, volume) in self.branch_heads() {
            if let Some(slot) = self.partitions.slot(volume) {
                branch_of[slot as usize] = name;
            }
        }
        for (slot, p) in self.partitions.iter().enumerate() {
            if p.hidden {
                continue;
            }
            out.push(VolumeInfo {
                id: p.volume,
                kind: if slot as u32 == self.head {
                    VolumeKind::Head
                } else {
                    VolumeKind::Snapshot
                },
                label: p.label.clone(),
                parent: Some(self.partitions.visible_ancestor(p.parent)),
                branch: branch_of[slot].to_string(),
                created_ms: p.created_ms,
                sealed_ms: p.sealed_ms,
                entry_count: p.entry_count(),
                blocks_written: p.blocks_written,
                bytes: p.segment_len,
                first_seq: p.first_seq,
                next_seq: p.next_seq,
            });
        }
        out
    }

    /// Information about one volume.
    pub fn volume(&self, id: VolumeId) -> Result<VolumeInfo> {
        self.volumes()
            .into_iter()
            .find(|v| v.id == id)
            .ok_or(Error::UnknownVolume(id))
    }
}
