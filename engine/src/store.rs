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

use rustc_hash::FxHashMap;

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
    decode_header, decode_tables, encode_record, verify_data, RecordHeader, RecordMeta,
    RECORD_BLOCKS_MAX, RECORD_DATA_BYTES_MAX, RECORD_FLAG_SEQ_TABLE, RECORD_HEADER_LEN,
    RECORD_MAGIC,
};
use crate::format::{
    self, block_crc, meta_object, parse_meta_object, segment_object, FORMAT_VERSION,
};
use crate::index::{BlockIndex, SlotSet, Version};
use crate::policy::{BuiltinEvent, Operation};

mod automation;
mod checkpoint;
mod copy;
mod ops;
mod provenance;
use crate::storage::{Commit, ReadRequest, Storage};
use crate::VolumeId;
pub use copy::{CopyReport, SendOptions, StreamReceiver};
pub use ops::{CompactReport, Extent, Progress, SpaceInfo};
pub use provenance::{
    BlockMapBucket, Origin, Provenance, BLOCK_MAP_BUCKETS_MAX, LOCATE_BLOCKS_MAX,
};

/// Most partitions a store holds at once: snapshots, the head, and deleted snapshots kept for
/// their descendants. Taking a snapshot (or receiving a volume) past it fails with
/// [`Error::LimitExceeded`]. It bounds the journal a checkpoint writes (a few hundred bytes per
/// partition) and the work of opening.
pub const PARTITIONS_MAX: usize = 100_000;
/// Most bytes one [`Store::read`] or [`Store::read_at`] returns (64 MiB): a larger read is
/// refused with [`Error::LimitExceeded`] before anything is allocated. Read larger ranges in
/// pieces, or into a buffer of your own with [`Store::read_into`].
pub const READ_BYTES_MAX: u64 = 64 << 20;
/// Default for [`Store::set_write_buffer_bytes`].
pub const DEFAULT_WRITE_BUFFER_BYTES: usize = 4 << 20;
/// Size of the window used to scan a head segment at open.
const SCAN_WINDOW_BYTES: u64 = 8 << 20;
/// Bytes per chunk when exporting or importing images.
pub const IMAGE_CHUNK_BYTES: usize = 1 << 20;

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

fn check_geometry(block_size: u32, block_count: u64) -> Result<()> {
    if !block_size.is_power_of_two()
        || !(format::BLOCK_SIZE_MIN..=format::BLOCK_SIZE_MAX).contains(&block_size)
    {
        return Err(Error::InvalidBlockSize(block_size));
    }
    if block_count == 0 || block_count > format::BLOCK_COUNT_MAX {
        return Err(Error::InvalidBlockCount(block_count));
    }
    Ok(())
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

/// A position in the log (see [`Store::cursor`] and [`Store::next_entry`]).
#[derive(Debug, Clone)]
pub struct LogCursor {
    /// The first sequence number not yet returned; used to find the place again after the store
    /// moved records (compaction, merge, deletion).
    seek_seq: u64,
    /// The record being walked: store epoch, slot, record index, next entry index, and the
    /// record's decoded tables.
    current: Option<(u64, u32, usize, usize, RecordMeta)>,
}

impl LogCursor {
    /// The lowest sequence number the cursor may still return.
    pub fn next_seq(&self) -> u64 {
        self.seek_seq
    }
}

#[derive(Debug, Clone, Copy)]
struct RecordRef {
    offset: u64,
    first_seq: u64,
}

#[derive(Debug)]
struct Partition {
    volume: VolumeId,
    /// Generation of the segment object (bumped by each rewrite).
    generation: u32,
    /// The segment was rewritten by compaction: sequence numbers may have gaps.
    compacted: bool,
    /// The volume identifier was released (deleted); the partition stays for its descendants.
    hidden: bool,
    /// The partition is gone (merged or dropped); its slot stays so that slots keep their meaning.
    dropped: bool,
    /// Entries in the segment.
    entries: u64,
    parent: Option<u32>,
    label: String,
    created_ms: u64,
    sealed_ms: Option<u64>,
    segment: String,
    first_seq: u64,
    next_seq: u64,
    /// End of the records (the index section starts here once sealed).
    records_end: u64,
    /// Whole segment length (records, index and footer once sealed).
    segment_len: u64,
    records: Vec<RecordRef>,
    blocks_written: u64,
}

impl Partition {
    fn entry_count(&self) -> u64 {
        self.entries
    }
}

/// State only the live head has.
#[derive(Debug, Default)]
struct HeadState {
    /// Records not yet handed to storage, starting at `flushed`.
    pending: Vec<u8>,
    flushed: u64,
    durable: u64,
    /// The index section body being built for sealing (see `format::footer::begin_index`).
    index: Vec<u8>,
}

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
    partitions: Vec<Partition>,
    by_volume: FxHashMap<VolumeId, u32>,
    head: u32,
    head_state: HeadState,
    head_ancestry: SlotSet,
    index: BlockIndex,
    write_buffer_bytes: usize,
    baseline_sum_crc: u32,
    /// Bumped whenever records move (compaction, merge, deletion), so cursors re-seek.
    epoch: u64,
    automation: automation::Automation,
    /// When the journal is checkpointed by itself.
    checkpoint: checkpoint::CheckpointTrigger,
    /// A merge whose start is journaled but whose finish is not (it failed part-way): the
    /// journal must not be checkpointed until it is finished.
    merging: Option<VolumeId>,
    next_volume: u64,
    poisoned: bool,
    /// Opened with [`Store::open_read_only`]: nothing is ever written to storage.
    read_only: bool,
    recovery: RecoveryReport,
    /// The commit point recovery found (or the last one this handle wrote): what a close need
    /// not write again.
    commit_point: Option<CommitPoint>,
    /// Set while a mirror's secondary is being opened (see [`Store::open_secondary`]).
    head_loss_vouched_elsewhere: bool,
}

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

async fn has_store<S: Storage>(storage: &S) -> Result<bool> {
    Ok(storage
        .list()
        .await?
        .iter()
        .any(|n| parse_meta_object(n).is_some()))
}

fn derive_store_id(created_ms: u64, block_count: u64) -> u64 {
    // Tells stores apart in copy streams. `RandomState` is seeded from the operating system's
    // randomness where there is one; the counter and the time keep two stores made in one
    // process (or on a platform without randomness) apart. Callers that have a better source
    // (the browser's `crypto`) pass `CreateOptions::store_id`.
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(created_ms);
    hasher.write_u64(block_count);
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

/// Streams a raw image into a new store's baseline; see [`Store::import_baseline`].
pub struct BaselineImport<S: Storage> {
    storage: S,
    clock: Rc<dyn Clock>,
    block_size: u32,
    expected_bytes: Option<u64>,
    store_id: Option<u64>,
    written: u64,
    partial: Vec<u8>,
    /// CRC-32C of the `baseline.sum` bytes written so far (the sums go out with the blocks, so
    /// an import's memory does not grow with the image).
    sum_crc: u32,
}

impl<S: Storage> BaselineImport<S> {
    /// Bytes accepted so far.
    pub fn bytes_imported(&self) -> u64 {
        self.written + self.partial.len() as u64
    }

    /// Adds the next bytes of the image.
    pub async fn push(&mut self, bytes: &[u8]) -> Result<()> {
        let total = self.bytes_imported() + bytes.len() as u64;
        let limit = self
            .expected_bytes
            .unwrap_or(format::BLOCK_COUNT_MAX * u64::from(self.block_size));
        if total > limit {
            return Err(Error::ImageSize {
                expected: limit,
                actual: total,
            });
        }
        self.partial.extend_from_slice(bytes);
        if self.partial.len() >= IMAGE_CHUNK_BYTES {
            self.write_whole_blocks().await?;
        }
        Ok(())
    }

    async fn write_whole_blocks(&mut self) -> Result<()> {
        let block_size = self.block_size as usize;
        let whole = self.partial.len() / block_size * block_size;
        if whole == 0 {
            return Ok(());
        }
        let rest = self.partial.split_off(whole);
        let chunk = std::mem::replace(&mut self.partial, rest);
        let first_block = self.written / u64::from(self.block_size);
        let mut sums = Vec::with_capacity(whole / block_size * 4);
        for (i, block) in chunk.chunks_exact(block_size).enumerate() {
            sums.extend_from_slice(&block_crc(first_block + i as u64, block).to_le_bytes());
        }
        self.sum_crc = format::crc_append(self.sum_crc, &sums);
        let mut commit = Commit::new(false);
        commit.write(BASELINE_OBJECT, self.written, chunk).write(
            BASELINE_SUM_OBJECT,
            first_block * 4,
            sums,
        );
        self.written += whole as u64;
        self.storage.commit(commit).await?;
        Ok(())
    }

    /// Completes the import: checks the size, makes the baseline durable, writes the store's
    /// metadata and opens the store.
    pub async fn finish(mut self) -> Result<Store<S>> {
        self.write_whole_blocks().await?;
        let actual = self.bytes_imported();
        let block_size = u64::from(self.block_size);
        let expected = self
            .expected_bytes
            .unwrap_or(actual.div_ceil(block_size) * block_size);
        if !self.partial.is_empty() || actual != expected || actual == 0 {
            return Err(Error::ImageSize { expected, actual });
        }
        let block_count = actual / block_size;
        check_geometry(self.block_size, block_count)?;
        let sum_crc = self.sum_crc;
        let mut commit = Commit::new(true);
        commit
            .truncate(BASELINE_OBJECT, actual)
            .truncate(BASELINE_SUM_OBJECT, block_count * 4);
        self.storage.commit(commit).await?;
        write_initial_journal(
            &mut self.storage,
            self.clock.as_ref(),
            self.block_size,
            block_count,
            BASELINE_IMAGE,
            sum_crc,
            self.store_id,
        )
        .await?;
        Store::open(self.storage, self.clock).await
    }
}

async fn write_initial_journal<S: Storage>(
    storage: &mut S,
    clock: &dyn Clock,
    block_size: u32,
    block_count: u64,
    baseline_kind: u32,
    baseline_sum_crc: u32,
    store_id: Option<u64>,
) -> Result<()> {
    let created_ms = clock.now_ms();
    let mut bytes = Vec::new();
    MetaRecord::Store {
        format_version: FORMAT_VERSION,
        block_size,
        block_count,
        created_ms,
        baseline_kind,
        baseline_sum_crc,
        store_id: store_id.unwrap_or_else(|| derive_store_id(created_ms, block_count)),
        generation: 1,
    }
    .encode(&mut bytes);
    MetaRecord::PartitionCreated {
        volume: 1,
        parent: 0,
        created_ms,
        first_seq: 1,
        segment_generation: 0,
        flags: CREATED_FLAG_HEAD,
    }
    .encode(&mut bytes);
    let mut commit = Commit::new(true);
    // A commit point left by an earlier store in this place would vouch for objects this store
    // never had.
    commit
        .delete(COMMIT_OBJECT)
        .write(&meta_object(1), 0, bytes);
    storage.commit(commit).await?;
    Ok(())
}

/// One contiguous piece of a read: blocks that come from the same place.
#[derive(Debug, Clone, Copy)]
enum Source {
    Zero,
    Baseline,
    Segment(u32, u64),
    Pending(u64),
}

impl<S: Storage> Store<S> {
    /// Creates an empty store (baseline of zeros) on `storage`, which must hold no store.
    pub async fn create(
        mut storage: S,
        options: CreateOptions,
        clock: Rc<dyn Clock>,
    ) -> Result<Self> {
        check_geometry(options.block_size, options.block_count)?;
        if has_store(&storage).await? {
            return Err(Error::AlreadyExists);
        }
        write_initial_journal(
            &mut storage,
            clock.as_ref(),
            options.block_size,
            options.block_count,
            BASELINE_ZERO,
            0,
            options.store_id,
        )
        .await?;
        Store::open(storage, clock).await
    }

    /// Starts creating a store whose baseline is a raw image, streamed in with
    /// [`BaselineImport::push`]. `expected_bytes`, when known, is checked as the bytes arrive.
    pub async fn import_baseline(
        storage: S,
        block_size: u32,
        expected_bytes: Option<u64>,
        store_id: Option<u64>,
        clock: Rc<dyn Clock>,
    ) -> Result<BaselineImport<S>> {
        check_geometry(block_size, 1)?;
        if let Some(expected) = expected_bytes {
            if expected == 0 || expected % u64::from(block_size) != 0 {
                return Err(Error::ImageSize {
                    expected: expected
                        .div_ceil(u64::from(block_size))
                        .saturating_mul(u64::from(block_size)),
                    actual: expected,
                });
            }
            check_geometry(block_size, expected / u64::from(block_size))?;
        }
        if has_store(&storage).await? {
            return Err(Error::AlreadyExists);
        }
        Ok(BaselineImport {
            storage,
            clock,
            block_size,
            expected_bytes,
            store_id,
            written: 0,
            partial: Vec::new(),
            sum_crc: 0,
        })
    }

    /// Opens the store on `storage`, recovering from a crash if needed (see `format.md`), and
    /// signals the built-in `open` event to its policy (automatic policies are on): the event
    /// rules for `open` are carried out before it returns. Their failure does not fail the
    /// open, unless it poisoned the store. Creating a store or importing a baseline signals
    /// nothing (a new store has no policy yet).
    pub async fn open(storage: S, clock: Rc<dyn Clock>) -> Result<Self> {
        Self::open_with_automatic_policies(storage, clock, true).await
    }

    /// Opens the secondary of a mirror: as [`Store::open`] with automatic policies off, except
    /// that synced records of the head that the commit point vouches for but that are missing or
    /// damaged at the end of the head's segment are cut as a torn tail would be (and counted in
    /// [`RecoveryReport::head_bytes_lost`]) instead of failing the open: the mirror's legs hold
    /// those writes and give them back.
    pub(crate) async fn open_secondary(storage: S, clock: Rc<dyn Clock>) -> Result<Self> {
        let mut store = crate::recovery::open(storage, clock, false, true).await?;
        store.set_automatic_policies(false);
        store.maybe_checkpoint_journal().await?;
        Ok(store)
    }

    /// [`Store::open`], with automatic policies on or off from the start (see
    /// [`Store::set_automatic_policies`]): with them off, `open` is not signalled either.
    pub async fn open_with_automatic_policies(
        storage: S,
        clock: Rc<dyn Clock>,
        automatic_policies: bool,
    ) -> Result<Self> {
        let mut store = crate::recovery::open(storage, clock, false, false).await?;
        store.set_automatic_policies(automatic_policies);
        store.signal_event(BuiltinEvent::Open).await?;
        store.maybe_checkpoint_journal().await?;
        Ok(store)
    }

    /// Opens the store on `storage` as a read-only view that writes nothing at all, so that it
    /// may sit beside a writer that is mid-compaction, mid-merge or mid-receive.
    ///
    /// Unlike [`Store::open`], recovery changes nothing: a torn journal or head-segment tail is
    /// ignored in memory only (not truncated), segments no partition refers to are left alone
    /// (they may be a writer's work in progress), and an unfinished merge is not redone: the
    /// partitions are read as they are, since the merged partitions stay intact until the merge
    /// finishes (see `format.md`); the older snapshots that merge folds in are hidden, and the
    /// baseline itself may show blocks already merged. Every change (writes, sync, snapshots,
    /// compaction, merges, policies, receiving copies) fails with [`Error::ReadOnly`], automatic
    /// policies are off, and [`Store::close`] just gives the storage back.
    pub async fn open_read_only(storage: S, clock: Rc<dyn Clock>) -> Result<Self> {
        crate::recovery::open(storage, clock, true, false).await
    }

    /// True if the store was opened with [`Store::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
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

    /// Closes the store after a final sync, and gives back the storage. First signals the
    /// built-in `close` event (with automatic policies on): the event rules for `close` are
    /// carried out before the final sync, and their failure does not fail the close, unless it
    /// poisoned the store. No threshold rule is evaluated.
    pub async fn close(mut self) -> Result<S> {
        if self.read_only {
            return Ok(self.storage);
        }
        let signalled = self.signal_event(BuiltinEvent::Close).await;
        self.flush(true).await?;
        self.write_commit_point().await?;
        signalled?;
        Ok(self.storage)
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
            backend: self.storage.kind(),
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
        }
    }

    /// Every volume: the baseline first, then the partitions in creation order.
    pub fn volumes(&self) -> Vec<VolumeInfo> {
        let mut out = vec![VolumeInfo {
            id: VolumeId::BASELINE,
            kind: VolumeKind::Baseline,
            label: String::new(),
            parent: None,
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
                parent: Some(self.visible_ancestor(p.parent)),
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

    /// The nearest visible volume at or above `slot` (deleted volumes are skipped).
    fn visible_ancestor(&self, slot: Option<u32>) -> VolumeId {
        let mut at = slot;
        // Bounded: each step moves to an older partition.
        for _ in 0..=self.partitions.len() {
            match at {
                None => return VolumeId::BASELINE,
                Some(s) if !self.partitions[s as usize].hidden => {
                    return self.partitions[s as usize].volume
                }
                Some(s) => at = self.partitions[s as usize].parent,
            }
        }
        VolumeId::BASELINE
    }

    /// Information about one volume.
    pub fn volume(&self, id: VolumeId) -> Result<VolumeInfo> {
        self.volumes()
            .into_iter()
            .find(|v| v.id == id)
            .ok_or(Error::UnknownVolume(id))
    }

    // ----- writes ----------------------------------------------------------------------------

    fn check_range(&self, addr: u64, blocks: u64) -> Result<()> {
        if blocks == 0 || addr >= self.block_count || blocks > self.block_count - addr {
            return Err(Error::BlockOutOfRange {
                addr,
                blocks,
                block_count: self.block_count,
            });
        }
        Ok(())
    }

    fn check_writable(&self) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        if self.poisoned {
            return Err(Error::Poisoned);
        }
        Ok(())
    }

    /// Appends one entry: `data` (whole blocks) written from block `addr`. Returns its sequence
    /// number. Durable once a later [`Store::sync`] returns.
    ///
    /// A threshold rule this write makes due is carried out before it returns (see
    /// [`Store::set_automatic_policies`]). Such an automatic action never turns the write into an
    /// error, unless it poisoned the store: then the error is returned (the write itself was
    /// done, but the handle is unusable and must be reopened).
    pub async fn write(&mut self, addr: u64, data: &[u8]) -> Result<u64> {
        self.write_batch(&[(addr, data)]).await
    }

    /// Appends several entries as one atomic record: after a crash either all of them or none is
    /// there. Returns the first entry's sequence number; the others follow in order.
    pub async fn write_batch(&mut self, writes: &[(u64, &[u8])]) -> Result<u64> {
        self.check_writable()?;
        if writes.is_empty() {
            return Err(Error::InvalidArgument(
                "a batch needs at least one write".into(),
            ));
        }
        let block_size = self.block_size as usize;
        let mut total_blocks: u64 = 0;
        for (addr, data) in writes {
            if data.is_empty() || data.len() % block_size != 0 {
                return Err(Error::NotWholeBlocks {
                    len: data.len(),
                    block_size: self.block_size,
                });
            }
            let blocks = (data.len() / block_size) as u64;
            self.check_range(*addr, blocks)?;
            total_blocks += blocks;
        }
        let max_blocks =
            u64::from(RECORD_BLOCKS_MAX).min(RECORD_DATA_BYTES_MAX / u64::from(self.block_size));
        if total_blocks > max_blocks || writes.len() as u64 > max_blocks {
            return Err(Error::BatchTooLarge {
                blocks: total_blocks,
                max: max_blocks,
            });
        }
        let head_slot = self.head;
        let head = &mut self.partitions[head_slot as usize];
        if head.next_seq + writes.len() as u64 > format::SEQ_MAX {
            return Err(Error::InvalidArgument(
                "the store has used up its sequence numbers".into(),
            ));
        }
        let header = RecordHeader {
            flags: 0,
            volume: head.volume.0,
            first_seq: head.next_seq,
            timestamp_ms: self.clock.now_ms(),
            entry_count: writes.len() as u32,
            block_count: total_blocks as u32,
            durable_offset: self.head_state.durable,
            block_size: self.block_size,
        };
        let offset = head.records_end;
        let start = self.head_state.pending.len();
        let crcs = encode_record(&mut self.head_state.pending, &header, writes, &[]);
        let meta_end = start + header.data_offset() as usize;
        self.head_state
            .index
            .extend_from_slice(&offset.to_le_bytes());
        self.head_state
            .index
            .extend_from_slice(&self.head_state.pending[start..meta_end]);
        let mut data_offset = offset + header.data_offset();
        let mut crc_iter = crcs.into_iter();
        for (addr, data) in writes {
            for i in 0..(data.len() / block_size) as u64 {
                let crc = crc_iter.next().unwrap_or_default();
                self.index.insert(
                    addr + i,
                    Version {
                        slot: head_slot,
                        crc,
                        offset: data_offset,
                    },
                );
                data_offset += block_size as u64;
            }
        }
        head.records.push(RecordRef {
            offset,
            first_seq: header.first_seq,
        });
        head.records_end += header.record_len();
        head.segment_len = head.records_end;
        head.next_seq += u64::from(header.entry_count);
        head.entries += u64::from(header.entry_count);
        head.blocks_written += total_blocks;
        if self.head_state.pending.len() >= self.write_buffer_bytes {
            self.flush(false).await?;
        }
        self.after_operation(Operation::Write).await?;
        Ok(header.first_seq)
    }

    /// Hands pending records to storage; with `durable`, makes everything written so far durable.
    async fn flush(&mut self, durable: bool) -> Result<()> {
        self.check_writable()?;
        let head = &self.partitions[self.head as usize];
        if self.head_state.pending.is_empty()
            && (!durable || self.head_state.durable == head.records_end)
        {
            return Ok(());
        }
        let mut commit = Commit::new(durable);
        let end = head.records_end;
        if !self.head_state.pending.is_empty() {
            // The buffer goes to storage; its successor starts at full size, so that filling it
            // again never regrows (and re-copies) it.
            let capacity = self.write_buffer_bytes.clamp(64 << 10, 64 << 20) + (64 << 10);
            let bytes =
                std::mem::replace(&mut self.head_state.pending, Vec::with_capacity(capacity));
            commit.write(&head.segment, self.head_state.flushed, bytes);
        }
        self.commit(commit).await?;
        self.head_state.flushed = end;
        if durable {
            self.head_state.durable = end;
        }
        Ok(())
    }

    /// Commits to storage; a failure poisons the handle (a failed flush is never retried).
    async fn commit(&mut self, commit: Commit) -> Result<()> {
        if self.read_only {
            return Err(Error::ReadOnly);
        }
        match self.storage.commit(commit).await {
            Ok(()) => Ok(()),
            Err(e) => {
                self.poisoned = true;
                Err(e.into())
            }
        }
    }

    /// The durability point: when this returns `Ok`, every write so far survives a crash.
    ///
    /// A threshold rule that is due is then carried out (see
    /// [`Store::set_automatic_policies`]). Its failure does not fail the sync, unless it poisoned
    /// the store: then the error is returned, although the writes were made durable first.
    pub async fn sync(&mut self) -> Result<()> {
        self.flush(true).await?;
        self.after_operation(Operation::Sync).await
    }

    /// The largest journal record payload this store may write: what its format version's
    /// readers accept.
    fn journal_payload_max(&self) -> usize {
        if self.format_version >= 2 {
            META_PAYLOAD_MAX
        } else {
            META_PAYLOAD_MAX_V1
        }
    }

    async fn append_journal(&mut self, records: &[MetaRecord]) -> Result<()> {
        // Several records go in one group so that a torn append keeps all of them or none.
        let mut bytes = Vec::new();
        match records {
            [one] => one.encode(&mut bytes),
            many => MetaRecord::Group(many.to_vec()).encode(&mut bytes),
        }
        // Nothing is written that a reader would refuse: the limits are checked here, before
        // the operation changes anything.
        let payload = bytes.len() - META_HEADER_LEN;
        if payload > self.journal_payload_max() {
            return Err(Error::LimitExceeded(format!(
                "the operation needs a journal record of {payload} bytes; a store of format version {} takes records of at most {} bytes",
                self.format_version,
                self.journal_payload_max()
            )));
        }
        let len = bytes.len() as u64;
        // The journal is checkpointed by itself after operations long before this (see
        // `maybe_checkpoint_journal`); past it, open could not read it.
        if self.meta_len + len > crate::recovery::JOURNAL_BYTES_MAX {
            return Err(Error::LimitExceeded(format!(
                "the metadata journal would pass {} bytes; checkpoint it (Store::checkpoint_journal)",
                crate::recovery::JOURNAL_BYTES_MAX
            )));
        }
        let mut commit = Commit::new(true);
        commit.write(&self.meta_object, self.meta_len, bytes);
        self.commit(commit).await?;
        self.meta_len += len;
        Ok(())
    }

    /// Takes a snapshot: seals the head partition (it becomes a read-only snapshot volume with
    /// `label`), opens a new head partition whose parent it is, and assigns the new partition a
    /// volume identifier. Returns the snapshot's volume identifier. Durable on return.
    ///
    /// Costs two durable commits and writes the sealed partition's index (a few dozen bytes per
    /// record); it copies no data.
    pub async fn snapshot(&mut self, label: Option<&str>) -> Result<VolumeId> {
        let sealed = self.head();
        self.seal_head_and_open(label.unwrap_or(""), None).await?;
        self.after_operation(Operation::Snapshot).await?;
        Ok(sealed)
    }

    /// Seals the head (it becomes a snapshot volume labelled `label`) and opens a new head whose
    /// parent is `new_parent` (`None`: the sealed head; `Some(None)`: the baseline;
    /// `Some(Some(slot))`: that partition). With `drop_if_empty`, an empty head is removed
    /// instead of sealed. Returns the new head's identifier.
    async fn seal_head_and_open_with(
        &mut self,
        label: &str,
        new_parent: Option<Option<u32>>,
        drop_if_empty: bool,
    ) -> Result<VolumeId> {
        self.check_writable()?;
        check_label(label)?;
        let now = self.clock.now_ms();
        let head_slot = self.head;
        let head = &self.partitions[head_slot as usize];
        let drop_head = drop_if_empty && head.records.is_empty();
        if !drop_head {
            self.check_partition_room(1)?;
        }
        let head = &self.partitions[head_slot as usize];
        let sealed_volume = head.volume;
        let next_seq = head.next_seq;
        let mut segment_len = 0;
        if !drop_head {
            // 1. Records, index and footer reach the segment, durably.
            let tail = footer::finish_index_and_footer(
                head.volume.0,
                head.records_end,
                head.next_seq,
                head.records.len() as u64,
                &self.head_state.index,
            );
            segment_len = head.records_end + tail.len() as u64;
            let mut commit = Commit::new(true);
            if !self.head_state.pending.is_empty() {
                let bytes = std::mem::take(&mut self.head_state.pending);
                commit.write(&head.segment, self.head_state.flushed, bytes);
            }
            commit.write(&head.segment, head.records_end, tail);
            self.commit(commit).await?;
        }
        // 2. The journal records the seal (or removal) and the new head in one durable append.
        let new_volume = VolumeId(self.next_volume);
        let parent_slot = new_parent.unwrap_or(Some(head_slot));
        let first = if drop_head {
            MetaRecord::PartitionDropped {
                volume: sealed_volume.0,
            }
        } else {
            MetaRecord::PartitionSealed {
                volume: sealed_volume.0,
                sealed_ms: now,
                segment_len,
                next_seq,
                label: label.to_string(),
            }
        };
        self.append_journal(&[
            first,
            MetaRecord::PartitionCreated {
                volume: new_volume.0,
                parent: parent_slot.map_or(0, |s| self.partitions[s as usize].volume.0),
                created_ms: now,
                first_seq: next_seq,
                segment_generation: 0,
                flags: CREATED_FLAG_HEAD,
            },
        ])
        .await?;
        // 3. Memory follows what is now durable.
        if drop_head {
            self.drop_slot(head_slot);
        } else {
            let head = &mut self.partitions[head_slot as usize];
            head.sealed_ms = Some(now);
            head.segment_len = segment_len;
            head.label = label.to_string();
        }
        self.next_volume += 1;
        self.add_partition(new_volume, parent_slot, now, next_seq, 0);
        self.set_head(self.partitions.len() as u32 - 1);
        Ok(new_volume)
    }

    async fn seal_head_and_open(
        &mut self,
        label: &str,
        new_parent: Option<Option<u32>>,
    ) -> Result<VolumeId> {
        self.seal_head_and_open_with(label, new_parent, false).await
    }

    /// Refuses an operation that would leave more than [`PARTITIONS_MAX`] partitions.
    pub(crate) fn check_partition_room(&self, more: usize) -> Result<()> {
        let now = self.partitions.iter().filter(|p| !p.dropped).count();
        if now + more > PARTITIONS_MAX {
            return Err(Error::LimitExceeded(format!(
                "a store holds at most {PARTITIONS_MAX} partitions (snapshots, the head and deleted snapshots kept for their descendants); it has {now}: merge or delete snapshots first"
            )));
        }
        Ok(())
    }

    /// Forgets a partition in memory (the journal already says it is gone): its children move up
    /// to its parent and its versions leave the index.
    fn drop_slot(&mut self, slot: u32) {
        let parent = self.partitions[slot as usize].parent;
        for p in self.partitions.iter_mut() {
            if p.parent == Some(slot) {
                p.parent = parent;
            }
        }
        self.index.remove_slot(slot);
        let p = &mut self.partitions[slot as usize];
        p.dropped = true;
        p.hidden = true;
        p.records.clear();
        p.records_end = 0;
        p.segment_len = 0;
        p.entries = 0;
        p.blocks_written = 0;
        let volume = p.volume;
        self.by_volume.remove(&volume);
        self.epoch += 1;
        if self.head != slot {
            self.head_ancestry = self.ancestry(Some(self.head));
        }
    }

    fn add_partition(
        &mut self,
        volume: VolumeId,
        parent: Option<u32>,
        created_ms: u64,
        first_seq: u64,
        generation: u32,
    ) {
        let slot = self.partitions.len() as u32;
        self.partitions.push(Partition {
            volume,
            parent,
            label: String::new(),
            created_ms,
            sealed_ms: None,
            segment: segment_object(volume.0, generation),
            generation,
            compacted: false,
            hidden: false,
            dropped: false,
            entries: 0,
            first_seq,
            next_seq: first_seq,
            records_end: 0,
            segment_len: 0,
            records: Vec::new(),
            blocks_written: 0,
        });
        self.by_volume.insert(volume, slot);
    }

    fn set_head(&mut self, slot: u32) {
        self.head = slot;
        self.head_state = HeadState::default();
        footer::begin_index(&mut self.head_state.index);
        self.head_ancestry = self.ancestry(Some(slot));
    }

    fn ancestry(&self, slot: Option<u32>) -> SlotSet {
        let mut set = SlotSet::default();
        let mut at = slot;
        // Bounded: each step moves to an older partition, and there are finitely many.
        let mut steps = 0;
        while let Some(s) = at {
            if steps > self.partitions.len() {
                break;
            }
            set.insert(s);
            at = self.partitions[s as usize].parent;
            steps += 1;
        }
        set
    }

    /// The slot of a visible volume (`None` for the baseline).
    fn slot_of(&self, volume: VolumeId) -> Result<Option<u32>> {
        if volume == VolumeId::BASELINE {
            return Ok(None);
        }
        self.by_volume
            .get(&volume)
            .copied()
            .filter(|&slot| !self.partitions[slot as usize].hidden)
            .map(Some)
            .ok_or(Error::UnknownVolume(volume))
    }

    // ----- reads -----------------------------------------------------------------------------

    /// The most recent data of `blocks` blocks from `addr`.
    pub async fn read(&self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.read_at(self.head(), addr, blocks).await
    }

    /// The data of `blocks` blocks from `addr` exactly as volume `volume` holds them (for a
    /// snapshot: as they were when it was taken; for the baseline: the baseline image).
    pub async fn read_at(&self, volume: VolumeId, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.check_range(addr, blocks)?;
        let len = check_read_len(blocks, self.block_size)?;
        let mut buf = vec![0u8; len];
        self.read_into(volume, addr, &mut buf).await?;
        Ok(buf)
    }

    /// Like [`Store::read_at`], into a caller's buffer (a whole number of blocks).
    pub async fn read_into(&self, volume: VolumeId, addr: u64, buf: &mut [u8]) -> Result<()> {
        let block_size = self.block_size as usize;
        if buf.is_empty() || !buf.len().is_multiple_of(block_size) {
            return Err(Error::NotWholeBlocks {
                len: buf.len(),
                block_size: self.block_size,
            });
        }
        let blocks = (buf.len() / block_size) as u64;
        self.check_range(addr, blocks)?;
        let slot = self.slot_of(volume)?;
        let computed;
        let ancestry = if slot == Some(self.head) {
            &self.head_ancestry
        } else {
            computed = self.ancestry(slot);
            &computed
        };
        // Plan: one source per block, merged into runs of adjacent blocks.
        let mut runs: Vec<(Source, u64, u64, Vec<u32>)> = Vec::new(); // source, first addr, blocks, crcs
        for i in 0..blocks {
            let a = addr + i;
            // Baseline checksums are read from `baseline.sum` with the blocks (below).
            let (source, crc) = match self.index.lookup(a, |s| ancestry.contains(s)) {
                Some(v) if v.slot == self.head && v.offset >= self.head_state.flushed => {
                    (Source::Pending(v.offset - self.head_state.flushed), v.crc)
                }
                Some(v) => (Source::Segment(v.slot, v.offset), v.crc),
                None if self.baseline == BaselineKind::Zero => (Source::Zero, 0),
                None => (Source::Baseline, 0),
            };
            if let Some((last, _, n, crcs)) = runs.last_mut() {
                let bs = block_size as u64;
                let extends = match (*last, source) {
                    (Source::Zero, Source::Zero) | (Source::Baseline, Source::Baseline) => true,
                    (Source::Segment(s1, o1), Source::Segment(s2, o2)) => {
                        s1 == s2 && o1 + *n * bs == o2
                    }
                    (Source::Pending(o1), Source::Pending(o2)) => o1 + *n * bs == o2,
                    _ => false,
                };
                if extends {
                    *n += 1;
                    crcs.push(crc);
                    continue;
                }
            }
            runs.push((source, a, 1, vec![crc]));
        }
        // The baseline runs' checksums: one read of `baseline.sum` per run, with the data.
        let mut sum_bufs: Vec<Vec<u8>> = runs
            .iter()
            .filter(|r| matches!(r.0, Source::Baseline))
            .map(|r| vec![0u8; r.2 as usize * 4])
            .collect();
        // Carve the buffer into one slice per run and fill what needs no I/O.
        let mut requests: Vec<ReadRequest<'_>> = Vec::new();
        let mut sum_requests: Vec<ReadRequest<'_>> = runs
            .iter()
            .filter(|r| matches!(r.0, Source::Baseline))
            .zip(sum_bufs.iter_mut())
            .map(|(r, buf)| ReadRequest {
                object: BASELINE_SUM_OBJECT,
                offset: r.1 * 4,
                buf,
                filled: 0,
            })
            .collect();
        let mut checks: Vec<(String, u64, u64, &[u32])> = Vec::new(); // object, offset, first addr, crcs
        let mut rest: &mut [u8] = buf;
        for (source, first, n, crcs) in &runs {
            let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(*n as usize * block_size);
            rest = tail;
            match *source {
                Source::Zero => chunk.fill(0),
                Source::Pending(offset) => {
                    let start = offset as usize;
                    let src = self
                        .head_state
                        .pending
                        .get(start..start + chunk.len())
                        .ok_or_else(|| {
                            Error::corrupt(
                                "pending",
                                offset,
                                "pending buffer shorter than its index",
                            )
                        })?;
                    chunk.copy_from_slice(src);
                    checks.push(("pending".into(), offset, *first, crcs));
                }
                Source::Baseline => {
                    let offset = first * block_size as u64;
                    checks.push((BASELINE_OBJECT.into(), offset, *first, crcs));
                    requests.push(ReadRequest {
                        object: BASELINE_OBJECT,
                        offset,
                        buf: chunk,
                        filled: 0,
                    });
                }
                Source::Segment(slot, offset) => {
                    let object = &self.partitions[slot as usize].segment;
                    checks.push((object.clone(), offset, *first, crcs));
                    requests.push(ReadRequest {
                        object,
                        offset,
                        buf: chunk,
                        filled: 0,
                    });
                }
            }
        }
        requests.append(&mut sum_requests);
        self.storage.read_many(&mut requests).await?;
        for r in &requests {
            if r.filled < r.buf.len() {
                return Err(Error::corrupt(
                    r.object,
                    r.offset + r.filled as u64,
                    "object ends before data its index points to",
                ));
            }
        }
        drop(requests);
        let mut baseline_sums = sum_bufs.iter();
        // Verify every block against its checksum: damage is reported, never returned.
        let mut at = 0usize;
        for (source, first, n, _) in &runs {
            let run_len = *n as usize * block_size;
            if !matches!(source, Source::Zero) {
                let (object, offset, _, crcs) = checks.remove(0);
                let sums = match source {
                    Source::Baseline => baseline_sums.next().map(|b| b.as_slice()),
                    _ => None,
                };
                for (i, block) in buf[at..at + run_len].chunks_exact(block_size).enumerate() {
                    let actual = block_crc(first + i as u64, block);
                    let expected = match sums {
                        Some(sums) => format::u32_at(sums, i * 4),
                        None => crcs.get(i).copied().unwrap_or_default(),
                    };
                    // A zero entry in `baseline.sum` stands for a zero block (a merge into an
                    // empty baseline leaves the entries of blocks it never wrote as holes).
                    let zero_block =
                        sums.is_some() && expected == 0 && block.iter().all(|&b| b == 0);
                    if actual != expected && !zero_block {
                        return Err(Error::ChecksumMismatch {
                            object: if sums.is_some() {
                                format!("{object} (checked against {BASELINE_SUM_OBJECT})")
                            } else {
                                object
                            },
                            offset: offset + (i * block_size) as u64,
                            expected,
                            actual,
                        });
                    }
                }
            }
            at += run_len;
        }
        Ok(())
    }

    /// Streams volume `volume` as a raw image: `sink` receives consecutive chunks (at most
    /// [`IMAGE_CHUNK_BYTES`] each) and `progress` (bytes done, bytes total) after each.
    pub async fn export(
        &self,
        volume: VolumeId,
        mut sink: impl FnMut(&[u8]) -> Result<()>,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<()> {
        self.slot_of(volume)?;
        let block_size = u64::from(self.block_size);
        let chunk_blocks = (IMAGE_CHUNK_BYTES as u64 / block_size).max(1);
        let total = self.block_count * block_size;
        let mut buf = vec![0u8; (chunk_blocks * block_size) as usize];
        let mut addr = 0;
        while addr < self.block_count {
            let n = chunk_blocks.min(self.block_count - addr);
            let slice = &mut buf[..(n * block_size) as usize];
            self.read_into(volume, addr, slice).await?;
            sink(slice)?;
            addr += n;
            progress(addr * block_size, total);
        }
        Ok(())
    }

    // ----- the log cursor --------------------------------------------------------------------

    /// A cursor over the log in sequence order, crossing partition boundaries.
    pub fn cursor(&self, start: CursorStart) -> Result<LogCursor> {
        let seek_seq = match start {
            CursorStart::Beginning => 0,
            CursorStart::Seq(seq) => seq,
            CursorStart::Volume(v) => match self.slot_of(v)? {
                None => 0,
                Some(slot) => self.partitions[slot as usize].first_seq,
            },
        };
        Ok(LogCursor {
            seek_seq,
            current: None,
        })
    }

    /// The partition with records that holds `seq` or, failing that, the first one after it.
    fn partition_at_or_after(&self, seq: u64) -> Option<u32> {
        self.partitions
            .iter()
            .enumerate()
            .filter(|(_, p)| p.next_seq > seq && !p.records.is_empty())
            .min_by_key(|(_, p)| p.first_seq)
            .map(|(slot, _)| slot as u32)
    }

    /// Finds the first entry with sequence number `>= seq`: (slot, record index, entry index).
    async fn seek(&self, seq: u64) -> Result<Option<(u32, usize, usize, RecordMeta)>> {
        let mut seq = seq;
        // Bounded: each round moves to a later partition.
        for _ in 0..=self.partitions.len() {
            let Some(slot) = self.partition_at_or_after(seq) else {
                return Ok(None);
            };
            let partition = &self.partitions[slot as usize];
            // Records' first sequence numbers increase strictly; take the last one at or
            // before `seq` (or the first record).
            let record_index = partition
                .records
                .partition_point(|r| r.first_seq <= seq)
                .saturating_sub(1);
            for (index, record) in partition.records.iter().enumerate().skip(record_index) {
                let meta = self.read_record_meta(slot, record.offset).await?;
                if let Some(entry) = (0..meta.entries.len()).find(|&i| meta.entry_seq(i) >= seq) {
                    return Ok(Some((slot, index, entry, meta)));
                }
            }
            seq = seq.max(partition.next_seq);
        }
        Ok(None)
    }

    /// Read-next-entry: the entry at the cursor, advancing it; `None` at the end of the log.
    /// With `with_data`, the entry's blocks are read and verified.
    ///
    /// After compaction the cursor shows the compacted entries: the last write of each block in
    /// the partition, with its original sequence number (so sequence numbers may have gaps, and
    /// an entry partly overwritten in its partition shows only its surviving blocks).
    pub async fn next_entry(
        &self,
        cursor: &mut LogCursor,
        with_data: bool,
    ) -> Result<Option<LogEntry>> {
        let stale = match &cursor.current {
            Some((epoch, slot, record_index, entry_index, meta)) => {
                *epoch != self.epoch
                    || *entry_index >= meta.entries.len()
                        && *record_index + 1 >= self.partitions[*slot as usize].records.len()
            }
            None => true,
        };
        if stale {
            cursor.current = self
                .seek(cursor.seek_seq)
                .await?
                .map(|(slot, record, entry, meta)| (self.epoch, slot, record, entry, meta));
        } else if let Some((_, slot, record_index, entry_index, meta)) = &mut cursor.current {
            if *entry_index >= meta.entries.len() {
                *record_index += 1;
                *entry_index = 0;
                let offset = self.partitions[*slot as usize].records[*record_index].offset;
                *meta = self.read_record_meta(*slot, offset).await?;
            }
        }
        let Some((_, slot, record_index, entry_index, meta)) = &mut cursor.current else {
            return Ok(None);
        };
        let i = *entry_index;
        let entry = meta.entries[i];
        let seq = meta.entry_seq(i);
        let partition = &self.partitions[*slot as usize];
        let data = if with_data {
            let record = partition.records[*record_index];
            let blocks_before: u64 = meta.entries[..i].iter().map(|e| u64::from(e.blocks)).sum();
            let offset = record.offset
                + meta.header.data_offset()
                + blocks_before * u64::from(self.block_size);
            let mut data = vec![0u8; entry.blocks as usize * self.block_size as usize];
            self.read_segment(*slot, offset, &mut data).await?;
            for (k, block) in data.chunks_exact(self.block_size as usize).enumerate() {
                let expected = meta.block_crcs[blocks_before as usize + k];
                let actual = block_crc(entry.addr + k as u64, block);
                if actual != expected {
                    return Err(Error::ChecksumMismatch {
                        object: partition.segment.clone(),
                        offset: offset + (k * self.block_size as usize) as u64,
                        expected,
                        actual,
                    });
                }
            }
            Some(data)
        } else {
            None
        };
        *entry_index += 1;
        cursor.seek_seq = seq.saturating_add(1);
        // At the end of a partition, continue with the next one in sequence order.
        if *entry_index >= meta.entries.len() && *record_index + 1 >= partition.records.len() {
            cursor.seek_seq = cursor.seek_seq.max(partition.next_seq);
        }
        Ok(Some(LogEntry {
            seq,
            volume: partition.volume,
            addr: entry.addr,
            blocks: entry.blocks,
            timestamp_ms: meta.header.timestamp_ms,
            data,
        }))
    }

    /// Reads bytes of a partition's segment, from storage or from the pending buffer.
    async fn read_segment(&self, slot: u32, offset: u64, buf: &mut [u8]) -> Result<()> {
        let partition = &self.partitions[slot as usize];
        if slot == self.head && offset >= self.head_state.flushed {
            let start = (offset - self.head_state.flushed) as usize;
            let src = self
                .head_state
                .pending
                .get(start..start + buf.len())
                .ok_or_else(|| {
                    Error::corrupt(&partition.segment, offset, "read past the pending records")
                })?;
            buf.copy_from_slice(src);
            return Ok(());
        }
        let filled = self
            .storage
            .read_at(&partition.segment, offset, buf)
            .await?;
        if filled < buf.len() {
            return Err(Error::corrupt(
                &partition.segment,
                offset + filled as u64,
                "segment ends early",
            ));
        }
        Ok(())
    }

    async fn read_record_meta(&self, slot: u32, offset: u64) -> Result<RecordMeta> {
        let object = self.partitions[slot as usize].segment.clone();
        let mut header_bytes = [0u8; RECORD_HEADER_LEN];
        self.read_segment(slot, offset, &mut header_bytes).await?;
        let header =
            decode_header(&header_bytes).map_err(|e| Error::corrupt(&object, offset, e.what))?;
        // The record must be the one the index (loaded and verified at open) says is here: a
        // damaged copy in the segment must not steer the cursor or its allocations.
        let p = &self.partitions[slot as usize];
        let expected = p.records.iter().find(|r| r.offset == offset);
        let in_place = header.volume == p.volume.0
            && header.block_size == self.block_size
            && expected.is_some_and(|r| r.first_seq == header.first_seq)
            && offset.saturating_add(header.record_len()) <= p.records_end;
        if !in_place {
            return Err(Error::corrupt(
                &object,
                offset,
                "record does not match the partition's index",
            ));
        }
        let mut tables = vec![0u8; header.tables_len()];
        self.read_segment(slot, offset + RECORD_HEADER_LEN as u64, &mut tables)
            .await?;
        let meta = decode_tables(&header_bytes, &tables)
            .map_err(|e| Error::corrupt(&object, offset, e.what))?;
        self.check_entries_in_range(&meta)
            .map_err(|what| Error::corrupt(&object, offset, what))?;
        Ok(meta)
    }
}

// ----- recovery needs to build a Store from parts -------------------------------------------

/// The pieces recovery assembles a store from.
pub(crate) struct Parts<S: Storage> {
    pub storage: S,
    pub clock: Rc<dyn Clock>,
    pub block_size: u32,
    pub block_count: u64,
    pub baseline: BaselineKind,
    pub format_version: u32,
    pub baseline_sum_crc: u32,
    pub store_id: u64,
    pub created_ms: u64,
    pub meta_object: String,
    pub meta_len: u64,
    pub recovery: RecoveryReport,
    pub read_only: bool,
    pub commit_point: Option<CommitPoint>,
    pub head_loss_vouched_elsewhere: bool,
}

/// A partition as the journal describes it.
pub(crate) struct JournalPartition {
    pub volume: u64,
    pub parent: u64,
    pub created_ms: u64,
    pub first_seq: u64,
    pub segment_generation: u32,
    /// sealed_ms, segment_len, next_seq, label
    pub sealed: Option<(u64, u64, u64, String)>,
    pub compacted: bool,
    pub hidden: bool,
}

impl<S: Storage> Store<S> {
    /// Builds a store from the journal's partitions (in creation order; dropped ones already
    /// removed), loading each sealed partition's index and scanning the head's segment.
    pub(crate) async fn assemble(
        parts: Parts<S>,
        journal: Vec<JournalPartition>,
        head_volume: u64,
    ) -> Result<Self> {
        let mut store = Store {
            storage: parts.storage,
            clock: parts.clock,
            block_size: parts.block_size,
            block_count: parts.block_count,
            baseline: parts.baseline,
            format_version: parts.format_version,
            store_id: parts.store_id,
            created_ms: parts.created_ms,
            meta_object: parts.meta_object,
            meta_len: parts.meta_len,
            partitions: Vec::new(),
            by_volume: FxHashMap::default(),
            head: 0,
            head_state: HeadState::default(),
            head_ancestry: SlotSet::default(),
            index: BlockIndex::default(),
            write_buffer_bytes: DEFAULT_WRITE_BUFFER_BYTES,
            baseline_sum_crc: parts.baseline_sum_crc,
            epoch: 0,
            automation: automation::Automation::default(),
            checkpoint: checkpoint::CheckpointTrigger::default(),
            merging: None,
            next_volume: 1,
            poisoned: false,
            read_only: parts.read_only,
            recovery: parts.recovery,
            commit_point: parts.commit_point,
            head_loss_vouched_elsewhere: parts.head_loss_vouched_elsewhere,
        };
        let mut head_slot = None;
        for jp in &journal {
            let parent = if jp.parent == 0 {
                None
            } else {
                let slot = store.by_volume.get(&VolumeId(jp.parent)).copied();
                Some(slot.ok_or_else(|| {
                    Error::corrupt(
                        &store.meta_object,
                        0,
                        format!("partition {} has unknown parent {}", jp.volume, jp.parent),
                    )
                })?)
            };
            store.add_partition(
                VolumeId(jp.volume),
                parent,
                jp.created_ms,
                jp.first_seq,
                jp.segment_generation,
            );
            let p = store.partitions.last_mut().expect("just pushed");
            p.compacted = jp.compacted;
            p.hidden = jp.hidden;
            store.next_volume = store.next_volume.max(jp.volume.saturating_add(1));
            if jp.volume == head_volume {
                head_slot = Some(store.partitions.len() as u32 - 1);
            }
        }
        let head_slot = head_slot
            .ok_or_else(|| Error::corrupt(&store.meta_object, 0, "no live head partition"))?;
        // Load partitions in sequence order so that every block's versions end up oldest first.
        let order = crate::order::order_by(store.partitions.len(), |s| {
            (store.partitions[s].first_seq, 0)
        });
        for slot in order.into_iter().map(|s| s as u32) {
            let jp = &journal[slot as usize];
            match &jp.sealed {
                Some((sealed_ms, segment_len, next_seq, label)) => {
                    store.load_sealed(slot, *segment_len, *next_seq).await?;
                    let p = &mut store.partitions[slot as usize];
                    p.sealed_ms = Some(*sealed_ms);
                    p.label = label.clone();
                }
                None if slot == head_slot => {}
                None => {
                    return Err(Error::corrupt(
                        &store.meta_object,
                        0,
                        format!("partition {} is neither sealed nor the head", jp.volume),
                    ))
                }
            }
        }
        store.set_head(head_slot);
        store.scan_head().await?;
        Ok(store)
    }

    fn apply_record_to_index(&mut self, slot: u32, offset: u64, meta: &RecordMeta) {
        let mut data_offset = offset + meta.header.data_offset();
        let mut block = 0usize;
        for entry in &meta.entries {
            for i in 0..u64::from(entry.blocks) {
                self.index.insert(
                    entry.addr + i,
                    Version {
                        slot,
                        crc: meta.block_crcs.get(block).copied().unwrap_or_default(),
                        offset: data_offset,
                    },
                );
                block += 1;
                data_offset += u64::from(self.block_size);
            }
        }
        let p = &mut self.partitions[slot as usize];
        p.entries += u64::from(meta.header.entry_count);
        p.records.push(RecordRef {
            offset,
            first_seq: meta.header.first_seq,
        });
        p.records_end = offset + meta.header.record_len();
        p.next_seq = meta.next_seq();
        p.blocks_written += u64::from(meta.header.block_count);
    }

    /// Checks that a record belongs where it was found.
    fn check_record_place(
        &self,
        slot: u32,
        offset: u64,
        header: &RecordHeader,
    ) -> Result<(), &'static str> {
        let p = &self.partitions[slot as usize];
        if header.volume != p.volume.0 {
            return Err("record belongs to another partition");
        }
        if header.block_size != self.block_size {
            return Err("record block size differs from the store's");
        }
        // Compaction leaves gaps in the sequence numbers; otherwise they are contiguous.
        let in_order = if p.compacted {
            header.first_seq >= p.next_seq
        } else {
            header.first_seq == p.next_seq && header.flags & RECORD_FLAG_SEQ_TABLE == 0
        };
        if !in_order {
            return Err("record sequence number out of order");
        }
        if offset != p.records_end {
            return Err("record not contiguous with the previous one");
        }
        Ok(())
    }

    fn check_entries_in_range(&self, meta: &RecordMeta) -> Result<(), &'static str> {
        for e in &meta.entries {
            if e.addr >= self.block_count || u64::from(e.blocks) > self.block_count - e.addr {
                return Err("entry addresses blocks outside the volume");
            }
        }
        Ok(())
    }

    /// Reads and verifies a sealed segment's footer and index section.
    async fn read_sealed_index(
        &self,
        slot: u32,
        segment_len: u64,
    ) -> Result<(footer::Footer, Vec<(u64, RecordMeta)>)> {
        let object = &self.partitions[slot as usize].segment;
        let actual_len = self.storage.len(object).await?.unwrap_or(0);
        if actual_len < segment_len || segment_len < FOOTER_LEN as u64 {
            return Err(Error::corrupt(
                object,
                actual_len,
                format!("sealed segment is {actual_len} bytes, the journal says {segment_len}"),
            ));
        }
        let mut footer_bytes = [0u8; FOOTER_LEN];
        let footer_at = segment_len - FOOTER_LEN as u64;
        self.storage
            .read_at(object, footer_at, &mut footer_bytes)
            .await?;
        let f =
            decode_footer(&footer_bytes).map_err(|e| Error::corrupt(object, footer_at, e.what))?;
        if f.volume != self.partitions[slot as usize].volume.0
            || f.records_end.checked_add(f.index_len) != Some(footer_at)
        {
            return Err(Error::corrupt(
                object,
                footer_at,
                "footer disagrees with the journal",
            ));
        }
        // Bounded by the object's real length (checked just above).
        let mut index = vec![0u8; f.index_len as usize];
        self.storage
            .read_at(object, f.records_end, &mut index)
            .await?;
        let records =
            decode_index(&f, &index).map_err(|e| Error::corrupt(object, f.records_end, e.what))?;
        Ok((f, records))
    }

    async fn load_sealed(&mut self, slot: u32, segment_len: u64, next_seq: u64) -> Result<()> {
        let object = self.partitions[slot as usize].segment.clone();
        let (f, records) = self.read_sealed_index(slot, segment_len).await?;
        if f.next_seq != next_seq {
            return Err(Error::corrupt(
                &object,
                segment_len - FOOTER_LEN as u64,
                "footer disagrees with the journal",
            ));
        }
        for (offset, meta) in records {
            self.check_record_place(slot, offset, &meta.header)
                .and_then(|()| self.check_entries_in_range(&meta))
                .map_err(|what| Error::corrupt(&object, offset, what))?;
            self.apply_record_to_index(slot, offset, &meta);
        }
        let p = &mut self.partitions[slot as usize];
        let seq_ok = p.next_seq == next_seq || (p.compacted && p.next_seq <= next_seq);
        if p.records_end != f.records_end || !seq_ok {
            return Err(Error::corrupt(
                &object,
                f.records_end,
                "index does not cover the records",
            ));
        }
        p.next_seq = next_seq;
        p.segment_len = segment_len;
        Ok(())
    }

    /// Reads and fully verifies the record at `offset` of a segment ending at `end`.
    async fn verify_record_at(
        &self,
        object: &str,
        offset: u64,
        end: u64,
    ) -> Option<(RecordMeta, u64)> {
        if end.saturating_sub(offset) < RECORD_HEADER_LEN as u64 {
            return None;
        }
        let mut header_bytes = [0u8; RECORD_HEADER_LEN];
        self.storage
            .read_at(object, offset, &mut header_bytes)
            .await
            .ok()?;
        let header = decode_header(&header_bytes).ok()?;
        let len = header.record_len();
        if offset.checked_add(len)? > end {
            return None;
        }
        // Checksum of header and tables first: only then is the data worth reading.
        let mut tables = vec![0u8; header.tables_len()];
        self.storage
            .read_at(object, offset + RECORD_HEADER_LEN as u64, &mut tables)
            .await
            .ok()?;
        let meta = decode_tables(&header_bytes, &tables).ok()?;
        let mut data = vec![0u8; (len - header.data_offset()) as usize];
        self.storage
            .read_at(object, offset + header.data_offset(), &mut data)
            .await
            .ok()?;
        verify_data(&meta, &data).ok()?;
        Some((meta, len))
    }

    /// Replays the head's segment, verifying every record; cuts a torn tail and reports damage
    /// below a completed sync.
    async fn scan_head(&mut self) -> Result<()> {
        let slot = self.head;
        let object = self.partitions[slot as usize].segment.clone();
        let len = self.storage.len(&object).await?;
        let exists = len.is_some();
        let end = len.unwrap_or(0);
        let mut window: Vec<u8> = Vec::new();
        let mut window_start = 0u64;
        let mut offset = 0u64;
        let mut durable_claim = 0u64;
        loop {
            if offset >= end {
                break;
            }
            // Make sure the window holds the header, then the whole record.
            let mut need = RECORD_HEADER_LEN as u64;
            let mut parsed = None;
            for _ in 0..2 {
                let have = (window_start + window.len() as u64).saturating_sub(offset);
                if offset < window_start || have < need {
                    let len = need.max(SCAN_WINDOW_BYTES).min(end - offset);
                    window = vec![0u8; len as usize];
                    self.storage.read_at(&object, offset, &mut window).await?;
                    window_start = offset;
                }
                let at = (offset - window_start) as usize;
                let Some(header_bytes) = window.get(at..at + RECORD_HEADER_LEN) else {
                    break;
                };
                let Ok(header) = decode_header(header_bytes) else {
                    break;
                };
                let len = header.record_len();
                if offset + len > end {
                    break;
                }
                if (window_start + window.len() as u64) < offset + len {
                    need = len;
                    continue;
                }
                let record = &window[at..at + len as usize];
                let (head_bytes, rest) = record.split_at(RECORD_HEADER_LEN);
                let (tables, data) = rest.split_at(header.tables_len());
                if let Ok(meta) = decode_tables(head_bytes, tables) {
                    if verify_data(&meta, data).is_ok()
                        && self.check_record_place(slot, offset, &meta.header).is_ok()
                        && self.check_entries_in_range(&meta).is_ok()
                    {
                        parsed = Some((meta, len, head_bytes.to_vec(), tables.to_vec()));
                    }
                }
                break;
            }
            let Some((meta, len, head_bytes, tables)) = parsed else {
                break;
            };
            durable_claim = durable_claim.max(meta.header.durable_offset);
            self.head_state
                .index
                .extend_from_slice(&offset.to_le_bytes());
            self.head_state.index.extend_from_slice(&head_bytes);
            self.head_state.index.extend_from_slice(&tables);
            self.apply_record_to_index(slot, offset, &meta);
            offset += len;
        }
        // The commit point vouches for the synced length it saw (if this volume is still the head).
        if let Some(point) = self
            .commit_point
            .filter(|p| p.head_volume == self.partitions[slot as usize].volume.0)
        {
            if offset < point.head_len && self.head_loss_vouched_elsewhere {
                self.recovery.head_bytes_lost = point.head_len - offset;
            } else if offset < point.head_len {
                let what = if exists {
                    format!(
                        "the head's records end at byte {offset}, but syncs up to byte {} were acknowledged (commit point): acknowledged writes are missing or damaged",
                        point.head_len
                    )
                } else {
                    format!(
                        "the head's segment is missing, but syncs up to byte {} of it were acknowledged (commit point)",
                        point.head_len
                    )
                };
                return Err(Error::corrupt(&object, offset, what));
            }
        }
        if offset < end {
            // Something after `offset` does not verify. A torn tail if nothing later claims that
            // a sync covered it; damage otherwise.
            let mut candidate = offset + 1;
            let mut probe = vec![0u8; SCAN_WINDOW_BYTES as usize];
            while candidate + RECORD_HEADER_LEN as u64 <= end {
                let n = self.storage.read_at(&object, candidate, &mut probe).await?;
                let magic = RECORD_MAGIC.to_le_bytes();
                let mut found = None;
                for (i, w) in probe[..n].windows(4).enumerate() {
                    if w != magic {
                        continue;
                    }
                    // Only a record claiming that a sync covered `offset` changes the verdict;
                    // look at its header before reading anything more.
                    let Some(Ok(header)) = probe.get(i..i + RECORD_HEADER_LEN).map(decode_header)
                    else {
                        continue;
                    };
                    if header.volume != self.partitions[slot as usize].volume.0
                        || header.durable_offset <= offset
                    {
                        continue;
                    }
                    let at = candidate + i as u64;
                    if let Some((meta, _)) = self.verify_record_at(&object, at, end).await {
                        found = Some(meta.header.durable_offset);
                        durable_claim = durable_claim.max(meta.header.durable_offset);
                        break;
                    }
                }
                if found.is_some() || n < probe.len() {
                    break;
                }
                candidate += (n - 3) as u64;
            }
            if durable_claim > offset {
                return Err(Error::corrupt(
                    &object,
                    offset,
                    format!("a damaged record lies below the synced length {durable_claim}"),
                ));
            }
            self.recovery.head_bytes_truncated = end - offset;
            // A read-only view leaves the tail to the writer; it reads only up to `offset`.
            if !self.read_only {
                let mut commit = Commit::new(true);
                commit.truncate(&object, offset);
                self.commit(commit).await?;
            }
        }
        let p = &mut self.partitions[slot as usize];
        p.segment_len = p.records_end;
        self.head_state.flushed = p.records_end;
        self.head_state.durable = p.records_end;
        Ok(())
    }
}
