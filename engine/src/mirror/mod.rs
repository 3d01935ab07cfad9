//! The redundant system: a **primary** copy of the live volume on several mirrored devices beside
//! the **secondary** store (baseline + incremental log), under one controller.
//!
//! * The **secondary** is an ordinary [`Store`]: the full history (baseline, snapshot partitions,
//!   the live head) and the source of truth. Snapshots, compaction, merges and reads of old
//!   volumes go to it.
//! * The **primary** holds only the live head volume, as a plain image plus a per-block checksum
//!   table, on `N >= 1` *legs* (each a [`Storage`]). Reading the head from it costs one image read
//!   and a compare with the checksums the controller keeps in memory (see *Checksums in memory* below), whatever
//!   the history looks like.
//!
//! In the terms of the claims: the legs are the *primary storage device* made of *a plurality of
//! redundantly arranged storage devices* (claim 25); the secondary's storage holds the *baseline
//! volume and the incremental log* of snapshot partitions (claim 22); [`Mirror`] is the
//! *controller*, and [`Mirror::snapshot`] the *snapshot management module* (claim 22),
//! which can also merge the oldest snapshots into the baseline (claim 23) or compact the new
//! snapshot in place (claim 24) on each snapshot, per [`MirrorOptions::compact_on_snapshot`].
//!
//! # Writes and durability
//!
//! [`Mirror::write`] appends to the secondary's log and keeps the blocks in memory (reads
//! serve them from there). [`Mirror::sync`] first makes the secondary durable (the
//! acknowledgement point), then, on every leg, writes the buffered blocks and their checksums as
//! one durable commit, then the leg's header (naming the head volume and the secondary's next
//! sequence number the image now reflects) as a second durable commit. The legs are written
//! concurrently (their futures are polled together), each in that order: a leg's header is
//! written only once its own data is durable.
//!
//! A crash between the two steps leaves legs whose header *lags* the secondary. The primary only
//! ever receives blocks the secondary already holds durably, so a lagging leg holds the head as
//! of its header's sequence number plus some of the later writes: at open, the controller walks
//! the secondary's log from that sequence number and rewrites every block written since (the
//! log is the write-intent record), or, when the log no longer tells (the header names a volume
//! that is not an ancestor of the head, or its `CONSISTENT` flag is clear), compares and rewrites
//! the whole leg. Legs are brought back from in-sync legs when there are any, from the
//! secondary's head otherwise.
//!
//! The invariant behind this: a leg whose header says `CONSISTENT` at `(head, next_seq)` holds
//! the head as of `next_seq` plus, at most, writes of log entries numbered `next_seq` or later.
//! Every rewrite that would break it (resilvering a device, a rollback moving the head to another
//! branch) clears the flag first and sets it again when done. Compaction, merges and deletions
//! in the secondary run after a sync (see [`Mirror::compact`]).
//!
//! # Reads, faults and repair
//!
//! A head read takes the blocks from one leg (legs are used in turn), checks each block against
//! its checksum (the leg's checksum table, read from the device once per 4 KiB page and then
//! kept in memory and updated with every commit to the leg), takes any block that fails from the next leg, and failing that from the
//! secondary's head (which is checksummed too); every bad copy found is rewritten from the good
//! one. If no copy verifies, the read returns a corruption error: never wrong data. A leg whose
//! device fails an I/O is taken out of service (*degraded*); the store keeps serving from the
//! other legs and the secondary, and says so in [`Mirror::status`].
//! [`Mirror::scrub`] checks every block of every leg against its checksum (both the
//! device's table and the copy in memory, so damage to a table entry a read no longer looks at
//! is found there), against the other legs and against the secondary's head, and repairs what
//! it can.
//! If the secondary comes back from a crash or damage *behind* the primary (recovery cut the
//! last record of its head, which damage makes look like a torn write, and a consistent leg
//! header names a later sequence number), the blocks it lost are written back to it from the
//! legs before anything else ([`MirrorStatus::secondary_blocks_restored`]): the legs then
//! vouch for writes the secondary alone could not.
//! [`Mirror::replace`] resilvers a new (or returning) device;
//! [`Mirror::rebuild_primary`] rebuilds every leg from the secondary after all were lost.
//!
//! # Checksums in memory
//!
//! The controller keeps what it knows of each leg's checksum table (`primary.sum`) in memory,
//! in pages of 1024 entries (4 KiB, covering 1024 blocks): a page is read from the device the
//! first time a read needs it, then kept, and every commit the controller makes to the leg
//! (sync, read repair, scrub repair, resilver) patches the pages it touches. A leg that fails an
//! I/O, or is resilvered, replaced, rebuilt or detached, loses its pages; they are read again
//! later. A loaded entry is trusted no more than the device was: a block whose data does not
//! match it is taken from another copy and repaired on the leg, as described above.
//!
//! * **Memory**: 4 bytes per block per leg, for the pages read so far — 256 KiB per leg for a
//!   256 MiB volume in 4 KiB blocks, 256 MiB per leg for 256 GiB; at most 16384 pages (64 MiB)
//!   per leg are kept, past which a page is dropped and read from the device again when needed.
//! * **Detection**: damage to an entry of the device's table after its page was loaded is not
//!   seen by reads (they use the correct copy in memory and keep working); scrub reads the
//!   device's table and reports and repairs it. Damage to a leg's data is found by the next read
//!   of the block, as before.
//! * **No layout change**: the table on the device is the same; only when it is read changes.
//!
//! # On-device layout (one leg; layout version 1)
//!
//! All integers are little-endian. Checksums are CRC-32C; the block checksum is
//! [`block_crc`]`(addr, data)` = `crc32c(addr as u64 LE ‖ data)`, as in the secondary.
//!
//! | object | contents |
//! |---|---|
//! | `primary.hdr` | two 64-byte header slots, at bytes 0 and 64 |
//! | `primary.img` | the head volume: block `i` at byte `i * block_size`; may be shorter than `block_count * block_size` (the rest reads as zeros) |
//! | `primary.sum` | `block_count` entries of 4 bytes: the block checksum of block `i` at byte `4 * i` (every entry is written, zero blocks included) |
//!
//! Header slot (64 bytes). Generation `g` is written to slot `g % 2`; the valid slot (magic,
//! version and CRC correct) with the highest generation is current, so a torn header write leaves
//! the previous one:
//!
//! | offset | size | field | constant (in [`layout`]) |
//! |---|---|---|---|
//! | 0 | 4 | magic `"SPRM"` (`53 50 52 4D`) | PRIMARY_MAGIC_OFFSET |
//! | 4 | 4 | layout version (`1`) | PRIMARY_VERSION_OFFSET |
//! | 8 | 8 | store identifier (the secondary's) | PRIMARY_STORE_ID_OFFSET |
//! | 16 | 4 | block size | PRIMARY_BLOCK_SIZE_OFFSET |
//! | 20 | 4 | flags: bit 0 `CONSISTENT` (the image reflects `head`/`next_seq` below); other bits zero | PRIMARY_FLAGS_OFFSET |
//! | 24 | 8 | block count | PRIMARY_BLOCK_COUNT_OFFSET |
//! | 32 | 8 | generation (bumped by each header write) | PRIMARY_GENERATION_OFFSET |
//! | 40 | 8 | head volume the image reflects | PRIMARY_HEAD_OFFSET |
//! | 48 | 8 | the secondary's next sequence number the image reflects | PRIMARY_NEXT_SEQ_OFFSET |
//! | 56 | 2 | leg index when written (informational) | PRIMARY_LEG_INDEX_OFFSET |
//! | 58 | 2 | number of legs when written (informational) | PRIMARY_LEG_COUNT_OFFSET |
//! | 60 | 4 | CRC-32C of bytes 0..60 | PRIMARY_CRC_OFFSET |
//!
//! A device is recognized by a valid header with the store's identifier; a device holding another
//! store's primary is refused rather than overwritten. Objects other than these three are left
//! alone, so a leg may share a device with other data.

pub mod layout;
mod sums;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::{block_crc, crc};
use crate::storage::{Commit, ReadRequest, Storage, StorageError};
use crate::{
    CompactReport, CreateOptions, CursorStart, Progress, Store, Volume, VolumeId, VolumeKind,
};
use layout::{
    current_header, sum_entries, zero_block_crc, HeaderState, PrimaryHeader, FLAG_CONSISTENT,
    HEADER_OBJECT, IMAGE_OBJECT, PRIMARY_HEADER_LEN, PRIMARY_LAYOUT_VERSION, SUM_ENTRY_LEN,
    SUM_OBJECT,
};
use sums::{join_all, SumCache, SUM_PAGE_BYTES};

/// Default for [`MirrorOptions::primary_buffer_bytes`].
pub const DEFAULT_PRIMARY_BUFFER_BYTES: usize = 4 << 20;
/// Bytes of image handled per step by scrub and resilver.
const CHUNK_BYTES: u64 = 1 << 20;
/// Most fault events kept for [`Mirror::take_events`].
const EVENTS_MAX: usize = 65536;

/// What the snapshot operation does to the secondary after sealing the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotCompaction {
    /// Compact the snapshot just taken in place ([`Store::compact`]).
    InPlace,
    /// Merge the oldest snapshots into the baseline ([`Store::merge`]) so that at most `keep`
    /// snapshot volumes remain.
    MergeOldest {
        /// Snapshots to keep (the newest ones).
        keep: usize,
    },
}

/// How a [`Mirror`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorOptions {
    /// Compaction done by every [`Mirror::snapshot`] (`None`: none).
    pub compact_on_snapshot: Option<SnapshotCompaction>,
    /// Bytes of written blocks kept in memory before a write triggers a [`Mirror::sync`]
    /// (the primary only receives blocks the secondary holds durably).
    pub primary_buffer_bytes: usize,
}

impl Default for MirrorOptions {
    fn default() -> Self {
        MirrorOptions {
            compact_on_snapshot: None,
            primary_buffer_bytes: DEFAULT_PRIMARY_BUFFER_BYTES,
        }
    }
}

impl MirrorOptions {
    /// The defaults: no compaction on snapshot, a 4 MiB buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets [`MirrorOptions::compact_on_snapshot`].
    pub fn compact_on_snapshot(mut self, compaction: SnapshotCompaction) -> Self {
        self.compact_on_snapshot = Some(compaction);
        self
    }

    /// Sets [`MirrorOptions::primary_buffer_bytes`].
    pub fn primary_buffer_bytes(mut self, bytes: usize) -> Self {
        self.primary_buffer_bytes = bytes;
        self
    }
}

/// What [`Mirror::snapshot`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotReport {
    /// The snapshot's volume identifier.
    pub volume: VolumeId,
    /// The in-place compaction of the snapshot, if configured and done.
    pub compacted: Option<CompactReport>,
    /// Partitions merged into the baseline, if configured.
    pub merged_partitions: u32,
    /// Why the configured compaction was not done (the secondary refused it), if it was not.
    pub compaction_skipped: Option<String>,
}

/// The state of one primary leg.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegState {
    /// In service: written on every sync, read from, scrubbed.
    Healthy,
    /// Out of service after an I/O failure (or an interrupted resilver); replace it.
    Degraded,
    /// No device (detached).
    Missing,
}

/// Status of one leg.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegStatus {
    /// Healthy, degraded or missing.
    pub state: LegState,
    /// Why it is degraded.
    pub reason: Option<String>,
    /// Damaged (failed checksum) or stale copies found on it by reads and scrubs, and damaged
    /// copies found while resilvering it.
    pub errors_detected: u64,
    /// Of those, how many were rewritten from a good copy.
    pub errors_repaired: u64,
    /// I/O failures of its device.
    pub io_errors: u64,
    /// Blocks rewritten while resilvering it.
    pub blocks_resilvered: u64,
    /// Times a device was put in this position by [`Mirror::replace`] or
    /// [`Mirror::rebuild_primary`].
    pub replacements: u64,
    /// Generation of its current header.
    pub generation: u64,
    /// The head volume and next sequence number its image reflects, if known to be consistent.
    pub synced: Option<(VolumeId, u64)>,
}

/// Status of the whole system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorStatus {
    /// One entry per leg.
    pub legs: Vec<LegStatus>,
    /// Legs in service.
    pub healthy_legs: usize,
    /// Written blocks not yet on the primary (they reach it at the next sync).
    pub pending_blocks: usize,
    /// Blocks head reads took from the secondary because no leg had a good copy (or none was in
    /// service).
    pub blocks_served_by_secondary: u64,
    /// Blocks head reads could not get from anywhere (no good copy).
    pub unrecoverable_reads: u64,
    /// Blocks written back into the secondary at open because it had lost acknowledged writes
    /// that the primary still held (see [`Mirror::open`]).
    pub secondary_blocks_restored: u64,
    /// Blocks the secondary may have lost that could not be restored at open: while it was
    /// behind the primary, no leg had a copy of them that passed its checksum. Their lost
    /// writes (if any) cannot be recovered; the legs are reconciled with the secondary's older
    /// data.
    pub secondary_blocks_lost: u64,
    /// The secondary's head volume.
    pub head: VolumeId,
}

impl MirrorStatus {
    /// True if some leg is not in service.
    pub fn is_degraded(&self) -> bool {
        self.healthy_legs < self.legs.len()
    }
}

/// What kind of fault an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A copy failed its checksum (data or checksum entry damaged).
    Checksum,
    /// A copy passed its checksum but differs from the truth (a lost write).
    Stale,
    /// The device failed an I/O; the leg was taken out of service.
    Io,
}

/// Which operation found a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundBy {
    /// A head read.
    Read,
    /// A scrub.
    Scrub,
    /// A resilver (open, replace, rebuild, rollback).
    Resilver,
    /// A sync or another write to the leg.
    Write,
}

/// One fault found on a leg (see [`Mirror::take_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultEvent {
    /// The leg.
    pub leg: usize,
    /// The block, for checksum and stale faults.
    pub addr: Option<u64>,
    /// What was wrong.
    pub kind: FaultKind,
    /// What found it.
    pub found_by: FoundBy,
    /// Whether the copy was rewritten from a good one.
    pub repaired: bool,
}

/// How a leg was brought in line when the store was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LegOpenOutcome {
    /// Its header matched the secondary: nothing to do.
    InSync,
    /// Its header lagged: the blocks written since were rewritten.
    Reconciled(ResilverReport),
    /// It was blank, unrecognized or inconsistent: every block was checked and rewritten as needed.
    Resilvered(ResilverReport),
    /// Its device failed; it is degraded.
    Failed(String),
}

/// What a resilver did to one leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResilverReport {
    /// The leg.
    pub leg: usize,
    /// Blocks looked at.
    pub blocks_checked: u64,
    /// Blocks written.
    pub blocks_written: u64,
    /// Copies on the leg that failed their checksum, when the device held a trusted copy (a
    /// returning leg); such blocks are counted as errors detected and repaired.
    pub damaged_found: u64,
    /// Blocks for which no good copy existed anywhere; they are marked bad on the leg (their
    /// checksum entry cannot match), so reading them reports corruption.
    pub unrecoverable: Vec<u64>,
}

/// Options of [`Mirror::scrub_with`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrubOptions {
    /// Also read every block from the secondary's head and compare (finds stale copies that pass
    /// their checksum, even with one leg, and damage in the secondary). When false, the secondary
    /// is read only where the legs disagree or none has a good copy.
    pub compare_with_secondary: bool,
}

impl Default for ScrubOptions {
    fn default() -> Self {
        ScrubOptions {
            compare_with_secondary: true,
        }
    }
}

/// What a scrub found on one leg.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LegScrubReport {
    /// Copies checked.
    pub checked: u64,
    /// Copies that failed their checksum or differed from the truth.
    pub mismatches: u64,
    /// Of those, rewritten.
    pub repaired: u64,
    /// The I/O failure that took the leg out of service during the scrub.
    pub io_error: Option<String>,
}

/// What [`Mirror::scrub`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScrubReport {
    /// Block addresses checked.
    pub blocks_checked: u64,
    /// Leg copies checked (blocks times legs in service).
    pub copies_checked: u64,
    /// Copies found damaged or stale.
    pub mismatches: u64,
    /// Copies rewritten from a good copy.
    pub repaired: u64,
    /// Blocks with a bad copy and no good copy anywhere (left marked bad; reads report them).
    pub unrecoverable: Vec<u64>,
    /// Blocks whose secondary copy could not be read or failed its checksum (the secondary is
    /// not rewritten by a scrub; the primary still serves these blocks if its copies are good).
    pub secondary_damaged: Vec<u64>,
    /// Per leg.
    pub legs: Vec<LegScrubReport>,
}

/// How a leg's content is brought up to date by a resilver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The device holds nothing of ours: write every checksum entry and every non-zero block.
    Blank,
    /// Read the leg and rewrite the blocks that differ (the device held no trusted copy: blocks
    /// failing their checksum are not counted as errors).
    Compare,
    /// Like `Compare`, for a device that held a trusted copy: blocks failing their checksum are
    /// counted (and reported) as errors found and repaired.
    Verify,
    /// Rewrite the given blocks without reading them.
    Overwrite,
    /// Rewrite the given blocks without reading them, keeping the header's `CONSISTENT` flag:
    /// only for blocks named by log entries newer than the header (the leg then still holds the
    /// header's state plus some later writes, whatever point the rewrite reaches).
    CatchUp,
}

#[derive(Debug)]
struct Leg<P> {
    device: Option<P>,
    state: LegState,
    /// Being brought up to date: not read from, not a source.
    resilvering: bool,
    reason: Option<String>,
    generation: u64,
    synced: Option<(VolumeId, u64)>,
    detected: u64,
    repaired: u64,
    io_errors: u64,
    resilvered: u64,
    replacements: u64,
    /// What the controller knows of the device's checksum table (see [`sums`]).
    sums: SumCache,
}

impl<P> Leg<P> {
    fn new(device: P) -> Self {
        Leg {
            device: Some(device),
            state: LegState::Healthy,
            resilvering: false,
            reason: None,
            generation: 0,
            synced: None,
            detected: 0,
            repaired: 0,
            io_errors: 0,
            resilvered: 0,
            replacements: 0,
            sums: SumCache::default(),
        }
    }
}

/// What the header of a device calls for.
enum Plan {
    InSync(PrimaryHeader),
    Incremental(PrimaryHeader, Vec<(u64, u64)>),
    Full(Mode, u64),
    Failed(StorageError),
}

/// The controller of the redundant system (see the [module documentation](self)).
pub struct Mirror<P: Storage, S: Storage> {
    secondary: Store<S>,
    legs: Vec<Leg<P>>,
    options: MirrorOptions,
    /// Written blocks not yet on the primary.
    pending: BTreeMap<u64, Vec<u8>>,
    next_leg: usize,
    served_by_secondary: u64,
    unrecoverable_reads: u64,
    secondary_blocks_restored: u64,
    secondary_blocks_lost: u64,
    events: VecDeque<FaultEvent>,
    open_report: Vec<LegOpenOutcome>,
    zero_crc: u32,
    /// The secondary's store identifier (named in every leg header).
    store_id: u64,
}

impl<P: Storage, S: Storage> std::fmt::Debug for Mirror<P, S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mirror")
            .field("secondary", &self.secondary)
            .field("legs", &self.legs.len())
            .field("pending_blocks", &self.pending.len())
            .finish_non_exhaustive()
    }
}

/// Contiguous runs `(first, count)` of sorted block addresses.
fn runs(addrs: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for a in addrs {
        match out.last_mut() {
            Some((first, n)) if *first + *n == a => *n += 1,
            _ => out.push((a, 1)),
        }
    }
    out
}

/// Reads blocks `addr..addr + blocks` of a leg: the image and the checksum entries, in one call.
async fn read_leg<P: Storage>(
    device: &P,
    addr: u64,
    blocks: u64,
    block_size: u32,
) -> Result<(Vec<u8>, Vec<u32>), StorageError> {
    let bs = u64::from(block_size);
    let mut image = vec![0u8; (blocks * bs) as usize];
    let mut sums = vec![0u8; (blocks * SUM_ENTRY_LEN) as usize];
    {
        let mut requests = [
            ReadRequest {
                object: IMAGE_OBJECT,
                offset: addr * bs,
                buf: &mut image,
                filled: 0,
            },
            ReadRequest {
                object: SUM_OBJECT,
                offset: addr * SUM_ENTRY_LEN,
                buf: &mut sums,
                filled: 0,
            },
        ];
        device.read_many(&mut requests).await?;
    }
    let sums = sums
        .chunks_exact(4)
        .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    Ok((image, sums))
}

/// The durable commit that writes `header` to its slot.
fn header_commit(header: &PrimaryHeader) -> Commit {
    let mut commit = Commit::new(true);
    commit.write(
        HEADER_OBJECT,
        header.slot_offset(),
        header.encode().to_vec(),
    );
    commit
}

/// Reads blocks from `addr` of a leg's image into `image` (a whole number of blocks, at least
/// one) and returns their checksum entries from the leg's in-memory table (see [`sums`]): the
/// table's pages not loaded yet are read in the same call and kept, so a read of loaded pages
/// is one image read.
async fn read_leg_cached<P: Storage>(
    device: &P,
    cache: &mut SumCache,
    addr: u64,
    image: &mut [u8],
    block_size: u32,
) -> Result<Vec<u32>, StorageError> {
    let bs = u64::from(block_size);
    let blocks = image.len() as u64 / bs.max(1);
    let first_page = SumCache::page_of(addr);
    let last_page = SumCache::page_of(addr + blocks.max(1) - 1);
    let missing: Vec<u64> = (first_page..=last_page)
        .filter(|&p| !cache.has_page(p))
        .collect();
    if missing.is_empty() {
        // The usual case once the pages are loaded: one image read, entries from memory.
        device.read_at(IMAGE_OBJECT, addr * bs, image).await?;
        return Ok((addr..addr + blocks)
            .map(|a| cache.get(a).unwrap_or(0))
            .collect());
    }
    let mut pages = vec![0u8; missing.len() * SUM_PAGE_BYTES];
    {
        let mut requests = Vec::with_capacity(1 + missing.len());
        requests.push(ReadRequest {
            object: IMAGE_OBJECT,
            offset: addr * bs,
            buf: image,
            filled: 0,
        });
        for (&page, buf) in missing.iter().zip(pages.chunks_exact_mut(SUM_PAGE_BYTES)) {
            requests.push(ReadRequest {
                object: SUM_OBJECT,
                offset: page * SUM_PAGE_BYTES as u64,
                buf,
                filled: 0,
            });
        }
        device.read_many(&mut requests).await?;
    }
    // The entries are taken before the new pages go into the cache (which may evict some).
    let sums = (addr..addr + blocks)
        .map(|a| {
            let page = SumCache::page_of(a);
            match missing.binary_search(&page) {
                Ok(j) => {
                    let at = j * SUM_PAGE_BYTES
                        + ((a - page * sums::SUM_PAGE_ENTRIES) * SUM_ENTRY_LEN) as usize;
                    u32::from_le_bytes([pages[at], pages[at + 1], pages[at + 2], pages[at + 3]])
                }
                // The page was loaded before this call, so the entry is there. (Were it not, 0
                // is checked like any entry: a mismatch is treated as a damaged copy.)
                Err(_) => cache.get(a).unwrap_or(0),
            }
        })
        .collect();
    for (&page, bytes) in missing.iter().zip(pages.chunks_exact(SUM_PAGE_BYTES)) {
        cache.insert_page(page, bytes);
    }
    Ok(sums)
}

impl<P: Storage, S: Storage> Mirror<P, S> {
    // ----- construction ----------------------------------------------------------------------

    /// Creates a new system: an empty secondary store on `secondary` and a primary on `legs`
    /// (at least one device; each must hold no primary of another store).
    pub async fn create(
        secondary: S,
        legs: Vec<P>,
        create: CreateOptions,
        options: MirrorOptions,
        clock: Rc<dyn Clock>,
    ) -> Result<Self> {
        Self::check_leg_count(legs.len())?;
        for (i, leg) in legs.iter().enumerate() {
            let mut bytes = [0u8; 2 * PRIMARY_HEADER_LEN];
            leg.read_at(HEADER_OBJECT, 0, &mut bytes).await?;
            if let HeaderState::Valid(h) = current_header(&bytes) {
                return Err(Error::InvalidArgument(format!(
                    "device {i} already holds the primary copy of store {:#018x}; open that store, \
                     or remove its primary.* objects first",
                    h.store_id
                )));
            }
        }
        let store = Store::create(secondary, create, clock).await?;
        Self::attach(store, legs, options).await
    }

    /// Opens the system: recovers the secondary, recognizes each leg by its header and brings
    /// lagging, blank or inconsistent legs up to date (see [`Mirror::open_report`]).
    pub async fn open(
        secondary: S,
        legs: Vec<P>,
        options: MirrorOptions,
        clock: Rc<dyn Clock>,
    ) -> Result<Self> {
        Self::check_leg_count(legs.len())?;
        let store = Store::open_secondary(secondary, clock).await?;
        Self::attach(store, legs, options).await
    }

    /// Puts a primary on `legs` beside an open store (for instance one created by importing a
    /// baseline image). Legs that hold this store's primary are reconciled, blank ones are filled;
    /// a device holding another store's primary is refused.
    pub async fn attach(secondary: Store<S>, legs: Vec<P>, options: MirrorOptions) -> Result<Self> {
        Self::check_leg_count(legs.len())?;
        // A store acts on no policy by itself (a `Managed` mirror does, through the controller),
        // so every change of the secondary's head goes through here and the primary keeps step.
        let zero_crc = crc(&vec![0u8; secondary.block_size() as usize]);
        let store_id = secondary.info().store_id;
        let mut this = Mirror {
            secondary,
            legs: legs.into_iter().map(Leg::new).collect(),
            options,
            pending: BTreeMap::new(),
            next_leg: 0,
            served_by_secondary: 0,
            unrecoverable_reads: 0,
            secondary_blocks_restored: 0,
            secondary_blocks_lost: 0,
            events: VecDeque::new(),
            open_report: Vec::new(),
            zero_crc,
            store_id,
        };
        let restored = this.restore_secondary_tail().await?;
        let mut plans = Vec::with_capacity(this.legs.len());
        for i in 0..this.legs.len() {
            let plan = match this.plan(i).await? {
                // The legs were the source of what the secondary got back; they may differ from
                // one another and from it in any block, whatever their headers say.
                Plan::InSync(h) | Plan::Incremental(h, _) if restored => {
                    Plan::Full(Mode::Verify, h.generation)
                }
                plan => plan,
            };
            plans.push(plan);
        }
        // In-sync legs go into service first, so the others can be rebuilt from them.
        for (i, plan) in plans.iter().enumerate() {
            let leg = &mut this.legs[i];
            match plan {
                Plan::InSync(h) => {
                    leg.generation = h.generation;
                    leg.synced = Some((VolumeId(h.head), h.next_seq));
                }
                Plan::Incremental(h, _) => {
                    leg.generation = h.generation;
                    leg.resilvering = true;
                }
                Plan::Full(_, generation) => {
                    leg.generation = *generation;
                    leg.resilvering = true;
                }
                Plan::Failed(_) => {}
            }
        }
        let mut report = Vec::with_capacity(plans.len());
        for (i, plan) in plans.into_iter().enumerate() {
            let outcome = match plan {
                Plan::InSync(_) => LegOpenOutcome::InSync,
                Plan::Failed(e) => {
                    this.degrade(i, &e, FoundBy::Resilver);
                    LegOpenOutcome::Failed(e.to_string())
                }
                Plan::Incremental(_, dirty) => {
                    match this.resilver(i, &dirty, Mode::CatchUp).await {
                        Ok(r) => LegOpenOutcome::Reconciled(r),
                        Err(e) => LegOpenOutcome::Failed(e.to_string()),
                    }
                }
                Plan::Full(mode, _) => {
                    let all = [(0, this.block_count())];
                    match this.resilver(i, &all, mode).await {
                        Ok(r) => LegOpenOutcome::Resilvered(r),
                        Err(e) => LegOpenOutcome::Failed(e.to_string()),
                    }
                }
            };
            report.push(outcome);
        }
        this.open_report = report;
        Ok(this)
    }

    /// Gives the secondary back the acknowledged writes it lost, from the primary. Returns
    /// whether it wrote anything.
    ///
    /// Recovery cannot tell damage to the last record of the head's segment from a write torn
    /// by a crash (no later record vouches that a sync covered it), so it cuts that record. The
    /// legs can vouch: the primary only ever receives blocks the secondary held durably, so a
    /// consistent leg header naming the secondary's head with a *later* sequence number than
    /// the secondary now has means the secondary lost entries it had acknowledged. Each block
    /// where the best such leg (the latest header; a copy failing its checksum is taken from the
    /// next) differs from the secondary's head is written back to the secondary as a new entry,
    /// and the secondary is synced, before the legs are reconciled with it.
    async fn restore_secondary_tail(&mut self) -> Result<bool> {
        let (head, next_seq) = self.position();
        let mut sources: Vec<(u64, usize)> = Vec::new();
        for (i, leg) in self.legs.iter().enumerate() {
            let Some(device) = leg.device.as_ref() else {
                continue;
            };
            let mut bytes = [0u8; 2 * PRIMARY_HEADER_LEN];
            if device.read_at(HEADER_OBJECT, 0, &mut bytes).await.is_err() {
                continue;
            }
            if let HeaderState::Valid(h) = current_header(&bytes) {
                if h.store_id == self.store_id
                    && h.consistent()
                    && h.block_size == self.block_size()
                    && h.block_count == self.block_count()
                    && h.head == head.0
                    && h.next_seq > next_seq
                {
                    sources.push((h.next_seq, i));
                }
            }
        }
        if sources.is_empty() {
            return Ok(false);
        }
        // The latest header first; ties by leg order.
        sources.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
        let bs = self.block_size() as usize;
        let block_count = self.block_count();
        let chunk = self.chunk_blocks();
        let mut restored = 0u64;
        let mut lost = 0u64;
        let mut at = 0;
        // Bounded: each round moves `at` forward by at least one block.
        while at < block_count {
            let n = chunk.min(block_count - at);
            let mut copies = Vec::with_capacity(sources.len());
            for &(_, i) in &sources {
                if let Some(device) = self.legs[i].device.as_ref() {
                    if let Ok(copy) = read_leg(device, at, n, self.block_size()).await {
                        copies.push(copy);
                    }
                }
            }
            let mut writes: Vec<(u64, Vec<u8>)> = Vec::new();
            for k in 0..n {
                let addr = at + k;
                let j = k as usize;
                let good = copies.iter().find_map(|(image, sums)| {
                    let block = image.get(j * bs..(j + 1) * bs)?;
                    (sums.get(j) == Some(&block_crc(addr, block))).then_some(block)
                });
                let Some(good) = good else {
                    // No leg vouches for this block: whatever the secondary lost of it is gone.
                    lost += 1;
                    continue;
                };
                let mut current = vec![0u8; bs];
                let same = self
                    .secondary
                    .read_into(head, addr, &mut current)
                    .await
                    .is_ok_and(|()| current == good);
                if !same {
                    writes.push((addr, good.to_vec()));
                }
            }
            for (addr, data) in &writes {
                self.secondary.write(*addr, data).await?;
                restored += 1;
            }
            at += n;
        }
        self.secondary_blocks_lost += lost;
        if restored == 0 {
            return Ok(false);
        }
        self.secondary.sync().await?;
        self.secondary_blocks_restored += restored;
        Ok(true)
    }

    fn check_leg_count(n: usize) -> Result<()> {
        if n == 0 || n > usize::from(u16::MAX) {
            return Err(Error::InvalidArgument(format!(
                "a primary needs between 1 and 65535 devices, not {n}"
            )));
        }
        Ok(())
    }

    /// Reads a device's header and decides how to bring it up to date.
    async fn plan(&self, i: usize) -> Result<Plan> {
        let Some(device) = self.legs[i].device.as_ref() else {
            return Ok(Plan::Full(Mode::Blank, 0));
        };
        self.plan_device(i, device).await
    }

    async fn plan_device(&self, i: usize, device: &P) -> Result<Plan> {
        let mut bytes = [0u8; 2 * PRIMARY_HEADER_LEN];
        if let Err(e) = device.read_at(HEADER_OBJECT, 0, &mut bytes).await {
            return Ok(Plan::Failed(e));
        }
        let header = match current_header(&bytes) {
            HeaderState::Blank => {
                // A device with no header but with our objects (say, a header lost to damage)
                // is compared rather than assumed empty.
                let has_objects =
                    match (device.len(IMAGE_OBJECT).await, device.len(SUM_OBJECT).await) {
                        (Ok(a), Ok(b)) => a.is_some() || b.is_some(),
                        (Err(e), _) | (_, Err(e)) => return Ok(Plan::Failed(e)),
                    };
                let mode = if has_objects {
                    Mode::Compare
                } else {
                    Mode::Blank
                };
                return Ok(Plan::Full(mode, 0));
            }
            HeaderState::Damaged => return Ok(Plan::Full(Mode::Compare, 0)),
            HeaderState::Unsupported(found) => {
                return Err(Error::UnsupportedVersion {
                    found,
                    supported: PRIMARY_LAYOUT_VERSION,
                })
            }
            HeaderState::Valid(h) => h,
        };
        if header.store_id != self.store_id {
            return Err(Error::InvalidArgument(format!(
                "device {i} holds the primary copy of store {:#018x}, not of this store ({:#018x})",
                header.store_id, self.store_id
            )));
        }
        if header.block_size != self.block_size()
            || header.block_count != self.block_count()
            || !header.consistent()
        {
            return Ok(Plan::Full(Mode::Compare, header.generation));
        }
        let (head, next_seq) = self.position();
        if header.head == head.0 && header.next_seq == next_seq {
            return Ok(Plan::InSync(header));
        }
        // If the log cannot be walked (say, a damaged record), compare everything instead.
        Ok(match self.written_since(&header).await.ok().flatten() {
            Some(dirty) => Plan::Incremental(header, dirty),
            None => Plan::Full(Mode::Verify, header.generation),
        })
    }

    /// The blocks that may differ between a leg and the head, as runs, if the log still tells:
    /// the header's volume must be the head or one of its visible ancestors, with the header's
    /// sequence number inside that partition. Then the leg holds the head as of that sequence
    /// number plus some later writes, and every block the head changed since is named by a log
    /// entry with a later sequence number (compaction and deletion keep the last write of each
    /// block some volume reads). Entries of every partition are taken, not only the head's
    /// ancestors (deleted ancestors are not listed as volumes): a superset is merely more work.
    async fn written_since(&self, header: &PrimaryHeader) -> Result<Option<Vec<(u64, u64)>>> {
        let volumes = self.secondary.volumes();
        let find = |id: VolumeId| volumes.iter().find(|v| v.id == id);
        let mut at = Some(self.secondary.head());
        let mut found = None;
        for _ in 0..=volumes.len() {
            let Some(v) = at.and_then(find) else { break };
            if v.kind == VolumeKind::Baseline {
                break;
            }
            if v.id.0 == header.head {
                found = Some(v);
                break;
            }
            at = v.parent;
        }
        let Some(origin) = found else { return Ok(None) };
        if header.next_seq < origin.first_seq || header.next_seq > origin.next_seq {
            return Ok(None);
        }
        let limit = self.block_count() / 2;
        let mut dirty = BTreeSet::new();
        let mut cursor = self.secondary.cursor(CursorStart::Seq(header.next_seq))?;
        while let Some(entry) = self.secondary.next_entry(&mut cursor, false).await? {
            for a in entry.addr..entry.addr + u64::from(entry.blocks) {
                dirty.insert(a);
            }
            if dirty.len() as u64 > limit {
                return Ok(None); // comparing everything costs no more
            }
        }
        Ok(Some(runs(dirty)))
    }

    // ----- accessors -------------------------------------------------------------------------

    /// The secondary store (read-only access: log cursor, diff, space, export...).
    pub fn secondary(&self) -> &Store<S> {
        &self.secondary
    }

    /// Appends documents of the layers above (a `Managed` mirror's policy executor) to the
    /// secondary's journal: they touch no block, so the primary has nothing to follow.
    pub async fn append_documents(&mut self, documents: &[crate::Document]) -> Result<()> {
        self.secondary.append_documents(documents).await
    }

    /// The device of leg `i`, if it has one.
    pub fn leg_device(&self, i: usize) -> Option<&P> {
        self.legs.get(i).and_then(|l| l.device.as_ref())
    }

    /// Number of leg positions.
    pub fn leg_count(&self) -> usize {
        self.legs.len()
    }

    /// The options in force.
    pub fn options(&self) -> &MirrorOptions {
        &self.options
    }

    /// How each leg was brought in line when the store was opened (or attached).
    pub fn open_report(&self) -> &[LegOpenOutcome] {
        &self.open_report
    }

    /// The state of every leg and what the controller has found and fixed.
    pub fn status(&self) -> MirrorStatus {
        let legs: Vec<LegStatus> = self
            .legs
            .iter()
            .map(|l| LegStatus {
                state: if l.device.is_none() {
                    LegState::Missing
                } else if l.resilvering {
                    LegState::Degraded
                } else {
                    l.state
                },
                reason: l.reason.clone(),
                errors_detected: l.detected,
                errors_repaired: l.repaired,
                io_errors: l.io_errors,
                blocks_resilvered: l.resilvered,
                replacements: l.replacements,
                generation: l.generation,
                synced: l.synced,
            })
            .collect();
        MirrorStatus {
            healthy_legs: legs.iter().filter(|l| l.state == LegState::Healthy).count(),
            legs,
            pending_blocks: self.pending.len(),
            blocks_served_by_secondary: self.served_by_secondary,
            unrecoverable_reads: self.unrecoverable_reads,
            secondary_blocks_restored: self.secondary_blocks_restored,
            secondary_blocks_lost: self.secondary_blocks_lost,
            head: self.secondary.head(),
        }
    }

    /// Takes the fault events recorded since the last call (at most 65536 are kept).
    pub fn take_events(&mut self) -> Vec<FaultEvent> {
        self.events.drain(..).collect()
    }

    fn position(&self) -> (VolumeId, u64) {
        let head = self.secondary.head();
        let next_seq = self.secondary.volume(head).map_or(0, |v| v.next_seq);
        (head, next_seq)
    }

    fn in_service(&self, i: usize) -> bool {
        let l = &self.legs[i];
        l.device.is_some() && l.state == LegState::Healthy && !l.resilvering
    }

    fn event(
        &mut self,
        leg: usize,
        addr: Option<u64>,
        kind: FaultKind,
        found_by: FoundBy,
        repaired: bool,
    ) {
        if self.events.len() >= EVENTS_MAX {
            self.events.pop_front();
        }
        self.events.push_back(FaultEvent {
            leg,
            addr,
            kind,
            found_by,
            repaired,
        });
    }

    /// Takes a leg out of service after an I/O failure.
    fn degrade(&mut self, i: usize, error: &StorageError, found_by: FoundBy) {
        let leg = &mut self.legs[i];
        leg.io_errors += 1;
        leg.state = LegState::Degraded;
        leg.resilvering = false;
        leg.synced = None;
        leg.sums.clear();
        leg.reason = Some(format!("device failed: {error}"));
        self.event(i, None, FaultKind::Io, found_by, false);
    }

    /// Commits to a leg; a failure degrades it. Returns whether it succeeded. The leg's
    /// in-memory checksum table follows every checksum entry the commit writes (it is dropped
    /// if the commit fails).
    async fn commit_leg(&mut self, i: usize, commit: Commit, found_by: FoundBy) -> bool {
        let Leg {
            device: Some(device),
            sums,
            ..
        } = &mut self.legs[i]
        else {
            return false;
        };
        // Patched before the commit, which takes it: on failure `degrade` drops the table.
        sums.apply(&commit);
        match device.commit(commit).await {
            Ok(()) => true,
            Err(e) => {
                self.degrade(i, &e, found_by);
                false
            }
        }
    }

    /// Writes a new header generation to leg `i` (durably). `consistent`: the image reflects
    /// the secondary's current head and next sequence number.
    async fn write_header(&mut self, i: usize, consistent: bool, found_by: FoundBy) -> bool {
        let header = self.next_header(i, consistent);
        if !self.commit_leg(i, header_commit(&header), found_by).await {
            return false;
        }
        self.header_written(i, &header);
        true
    }

    /// The next header generation of leg `i`, naming the secondary's current head and next
    /// sequence number. `consistent`: the image reflects them.
    fn next_header(&self, i: usize, consistent: bool) -> PrimaryHeader {
        let (head, next_seq) = self.position();
        PrimaryHeader {
            store_id: self.store_id,
            block_size: self.block_size(),
            flags: if consistent { FLAG_CONSISTENT } else { 0 },
            block_count: self.block_count(),
            generation: self.legs[i].generation.saturating_add(1),
            head: head.0,
            next_seq,
            leg_index: i as u16,
            leg_count: self.legs.len() as u16,
        }
    }

    /// Records that `header` is now leg `i`'s current header.
    fn header_written(&mut self, i: usize, header: &PrimaryHeader) {
        let leg = &mut self.legs[i];
        leg.generation = header.generation;
        leg.synced = header
            .consistent()
            .then_some((VolumeId(header.head), header.next_seq));
    }

    /// Makes `data` (if any) durable on each of `legs` and then, on each leg whose data commit
    /// succeeded, a new consistent header naming the secondary's current position.
    ///
    /// The legs are handled concurrently ([`join_all`]): each leg's future commits its data and
    /// then its header, in that order (the header vouches for the data, so it is written only
    /// once the data is durable on that leg), while the other legs' I/O proceeds alongside. A
    /// leg whose device fails is degraded, as [`Mirror::commit_leg`] does.
    async fn commit_legs(&mut self, legs: &[usize], data: Option<&Commit>, found_by: FoundBy) {
        let headers: Vec<PrimaryHeader> = legs.iter().map(|&i| self.next_header(i, true)).collect();
        if let Some(data) = data {
            // Patched before the commits; a leg whose commit fails is degraded, which drops it.
            for &i in legs {
                if let Some(leg) = self.legs.get_mut(i) {
                    leg.sums.apply(data);
                }
            }
        }
        let results = {
            let mut devices: Vec<Option<&mut P>> =
                self.legs.iter_mut().map(|l| l.device.as_mut()).collect();
            let futures: Vec<_> = legs
                .iter()
                .zip(&headers)
                .map(|(&i, header)| {
                    // Each device is lent to one future at most.
                    let device = devices.get_mut(i).and_then(Option::take);
                    async move {
                        let Some(device) = device else {
                            return Err(None);
                        };
                        if let Some(data) = data {
                            device.commit(data.clone()).await.map_err(Some)?;
                        }
                        device.commit(header_commit(header)).await.map_err(Some)
                    }
                })
                .collect();
            join_all(futures).await
        };
        for ((&i, header), result) in legs.iter().zip(&headers).zip(results) {
            match result {
                Ok(()) => self.header_written(i, header),
                Err(Some(e)) => self.degrade(i, &e, found_by),
                Err(None) => {}
            }
        }
    }

    fn chunk_blocks(&self) -> u64 {
        (CHUNK_BYTES / u64::from(self.block_size())).max(1)
    }

    fn check_range(&self, addr: u64, blocks: u64) -> Result<()> {
        let block_count = self.block_count();
        if blocks == 0 || addr >= block_count || blocks > block_count - addr {
            return Err(Error::BlockOutOfRange {
                addr,
                blocks,
                block_count,
            });
        }
        Ok(())
    }

    // ----- writes ----------------------------------------------------------------------------

    /// Writes `data` (whole blocks) from block `addr`: appended to the secondary's log, and to
    /// the primary at the next sync. Returns the entry's sequence number.
    pub async fn write(&mut self, addr: u64, data: &[u8]) -> Result<u64> {
        self.write_batch(&[(addr, data)]).await
    }

    /// Writes several extents as one atomic log record (see [`Store::write_batch`]).
    pub async fn write_batch(&mut self, writes: &[(u64, &[u8])]) -> Result<u64> {
        let seq = self.secondary.write_batch(writes).await?;
        let bs = self.block_size() as usize;
        for (addr, data) in writes {
            for (i, block) in data.chunks_exact(bs).enumerate() {
                self.pending.insert(addr + i as u64, block.to_vec());
            }
        }
        if self.pending.len().saturating_mul(bs) >= self.options.primary_buffer_bytes {
            self.sync().await?;
        }
        Ok(seq)
    }

    /// The durability point: the secondary first (when this returns `Ok`, every write so far
    /// survives a crash), then every leg in service (data and checksums, then its header). A leg
    /// that fails is degraded; that is reported by [`Mirror::status`], not as an error,
    /// because the data is safe in the secondary.
    pub async fn sync(&mut self) -> Result<()> {
        self.secondary.sync().await?;
        let pending = std::mem::take(&mut self.pending);
        let bs = self.block_size() as usize;
        let mut data = Commit::new(true);
        let addrs: Vec<u64> = pending.keys().copied().collect();
        for (first, n) in runs(addrs) {
            let mut bytes = Vec::with_capacity(n as usize * bs);
            for a in first..first + n {
                bytes.extend_from_slice(&pending[&a]);
            }
            data.write(
                SUM_OBJECT,
                first * SUM_ENTRY_LEN,
                sum_entries(first, &bytes, bs),
            );
            data.write(IMAGE_OBJECT, first * bs as u64, bytes);
        }
        let position = self.position();
        let has_data = !data.changes.is_empty();
        let targets: Vec<usize> = (0..self.legs.len())
            .filter(|&i| self.in_service(i))
            .filter(|&i| has_data || self.legs[i].synced != Some(position))
            .collect();
        self.commit_legs(&targets, has_data.then_some(&data), FoundBy::Write)
            .await;
        Ok(())
    }

    // ----- reads -----------------------------------------------------------------------------

    /// The most recent data of `blocks` blocks from `addr`, from the primary (verified, with
    /// fallback and repair; see the module documentation).
    pub async fn read(&mut self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.check_range(addr, blocks)?;
        let len = crate::store::check_read_len(blocks, self.block_size())?;
        let mut buf = vec![0u8; len];
        self.read_into(addr, &mut buf).await?;
        Ok(buf)
    }

    /// Like [`Mirror::read`], into a caller's buffer (a whole number of blocks).
    pub async fn read_into(&mut self, addr: u64, buf: &mut [u8]) -> Result<()> {
        let bs = self.block_size() as usize;
        if buf.is_empty() || !buf.len().is_multiple_of(bs) {
            return Err(Error::NotWholeBlocks {
                len: buf.len(),
                block_size: self.block_size(),
            });
        }
        let blocks = (buf.len() / bs) as u64;
        self.check_range(addr, blocks)?;
        let mut need = Vec::new();
        for i in 0..blocks {
            match self.pending.get(&(addr + i)) {
                Some(data) => buf[i as usize * bs..][..bs].copy_from_slice(data),
                None => need.push(i),
            }
        }
        if need.is_empty() {
            return Ok(());
        }
        let failures = self.fetch(addr, buf, need, FoundBy::Read).await;
        if let Some((a, error, leg_copies_bad)) = failures.into_iter().next() {
            if !leg_copies_bad {
                return Err(error);
            }
            return Err(Error::Corrupt {
                object: IMAGE_OBJECT.to_string(),
                offset: a * bs as u64,
                what: format!(
                    "block {a}: no leg of the primary holds a copy that passes its checksum, and \
                     the secondary's copy failed too ({error})"
                ),
            });
        }
        Ok(())
    }

    /// Reads the head straight from the secondary (baseline + log), bypassing the primary (for
    /// comparisons and benchmarks).
    pub async fn read_secondary(&self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.secondary.read(addr, blocks).await
    }

    /// Fills the blocks `need` (indices from `addr`) of `buf` with verified synced data: from the
    /// legs in service in turn, then from the secondary's head; rewrites every bad leg copy found
    /// from the good one. Returns the blocks no source could supply: (address, the secondary's
    /// error, whether some leg copy was tried and found bad).
    async fn fetch(
        &mut self,
        addr: u64,
        buf: &mut [u8],
        mut need: Vec<u64>,
        found_by: FoundBy,
    ) -> Vec<(u64, Error, bool)> {
        let bs = self.block_size() as usize;
        let n = self.legs.len();
        let start = self.next_leg % n;
        self.next_leg = self.next_leg.wrapping_add(1);
        let order: Vec<usize> = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| self.in_service(i))
            .collect();
        let mut bad: Vec<(usize, u64)> = Vec::new();
        for i in order {
            let (Some(&lo), Some(&hi)) = (need.first(), need.last()) else {
                break;
            };
            let block_size = self.block_size();
            let Leg {
                device: Some(device),
                sums: cache,
                ..
            } = &mut self.legs[i]
            else {
                continue;
            };
            // When the blocks still needed are one run (the usual case), the leg's image is read
            // straight into `buf`; otherwise into a scratch buffer, and the good blocks copied.
            let span = (hi - lo + 1) as usize;
            let direct = need.len() == span;
            let mut scratch = Vec::new();
            let result = if direct {
                let target = &mut buf[lo as usize * bs..][..span * bs];
                read_leg_cached(device, cache, addr + lo, target, block_size).await
            } else {
                scratch = vec![0u8; span * bs];
                read_leg_cached(device, cache, addr + lo, &mut scratch, block_size).await
            };
            let sums = match result {
                Ok(sums) => sums,
                Err(e) => {
                    self.degrade(i, &e, found_by);
                    continue;
                }
            };
            let mut still = Vec::new();
            for &k in &need {
                let j = (k - lo) as usize;
                let at = k as usize * bs;
                let good = if direct {
                    block_crc(addr + k, &buf[at..][..bs]) == sums[j]
                } else {
                    let block = &scratch[j * bs..][..bs];
                    let good = block_crc(addr + k, block) == sums[j];
                    if good {
                        buf[at..][..bs].copy_from_slice(block);
                    }
                    good
                };
                if !good {
                    // A bad copy never stays in the caller's buffer.
                    if direct {
                        buf[at..][..bs].fill(0);
                    }
                    still.push(k);
                    bad.push((i, k));
                    self.legs[i].detected += 1;
                }
            }
            need = still;
        }
        let mut failures = Vec::new();
        for (first, count) in runs(need) {
            let span = &mut buf[first as usize * bs..][..count as usize * bs];
            match self
                .secondary
                .read_into(self.secondary.head(), addr + first, span)
                .await
            {
                Ok(()) if found_by == FoundBy::Read => self.served_by_secondary += count,
                Ok(()) => {}
                Err(_) => {
                    for k in first..first + count {
                        let block = &mut buf[k as usize * bs..][..bs];
                        match self
                            .secondary
                            .read_into(self.secondary.head(), addr + k, block)
                            .await
                        {
                            Ok(()) if found_by == FoundBy::Read => self.served_by_secondary += 1,
                            Ok(()) => {}
                            Err(e) => {
                                block.fill(0);
                                let tried = bad.iter().any(|&(_, b)| b == k);
                                failures.push((addr + k, e, tried));
                            }
                        }
                    }
                }
            }
        }
        if found_by == FoundBy::Read {
            self.unrecoverable_reads += failures.len() as u64;
        }
        // Rewrite the bad copies that now have a good one, one commit per leg.
        let mut by_leg: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        for (i, k) in bad {
            by_leg.entry(i).or_default().push(k);
        }
        for (i, mut ks) in by_leg {
            ks.sort_unstable();
            let (fixable, broken): (Vec<u64>, Vec<u64>) = ks
                .into_iter()
                .partition(|&k| !failures.iter().any(|(a, _, _)| *a == addr + k));
            let mut commit = Commit::new(true);
            for (first, count) in runs(fixable.iter().copied()) {
                let bytes = buf[first as usize * bs..][..count as usize * bs].to_vec();
                commit.write(
                    SUM_OBJECT,
                    (addr + first) * SUM_ENTRY_LEN,
                    sum_entries(addr + first, &bytes, bs),
                );
                commit.write(IMAGE_OBJECT, (addr + first) * bs as u64, bytes);
            }
            let repaired = !commit.changes.is_empty() && self.commit_leg(i, commit, found_by).await;
            if repaired {
                self.legs[i].repaired += fixable.len() as u64;
            }
            for k in fixable {
                self.event(i, Some(addr + k), FaultKind::Checksum, found_by, repaired);
            }
            for k in broken {
                self.event(i, Some(addr + k), FaultKind::Checksum, found_by, false);
            }
        }
        failures
    }

    // ----- snapshots and history (the secondary) ---------------------------------------------

    /// Takes a snapshot of the secondary (claim 22: the log is partitioned and the new partition
    /// gets a volume identifier), after a sync, then does the configured compaction (claims 23
    /// and 24). Durable on return.
    pub async fn snapshot(&mut self, label: Option<&str>) -> Result<SnapshotReport> {
        self.sync().await?;
        let volume = self.secondary.snapshot(label).await?;
        // The head changed name: record it before anything is merged away, so that a later open
        // finds the volume a header names in the head's ancestry.
        let targets: Vec<usize> = (0..self.legs.len())
            .filter(|&i| self.in_service(i))
            .collect();
        self.commit_legs(&targets, None, FoundBy::Write).await;
        let mut report = SnapshotReport {
            volume,
            compacted: None,
            merged_partitions: 0,
            compaction_skipped: None,
        };
        let outcome = match self.options.compact_on_snapshot {
            None => Ok(()),
            Some(SnapshotCompaction::InPlace) => self
                .secondary
                .compact(volume, &mut |_| true)
                .await
                .map(|r| report.compacted = Some(r)),
            Some(SnapshotCompaction::MergeOldest { keep }) => {
                let snapshots: Vec<VolumeId> = self
                    .secondary
                    .volumes()
                    .into_iter()
                    .filter(|v| v.kind == VolumeKind::Snapshot)
                    .map(|v| v.id)
                    .collect();
                if snapshots.len() > keep {
                    let target = snapshots[snapshots.len() - keep - 1];
                    self.secondary
                        .merge(target, &mut |_| true)
                        .await
                        .map(|n| report.merged_partitions = n)
                } else {
                    Ok(())
                }
            }
        };
        match outcome {
            Ok(()) => {}
            Err(Error::InvalidArgument(why)) => report.compaction_skipped = Some(why),
            Err(e) => return Err(e),
        }
        Ok(report)
    }

    /// In-place compaction of snapshot `volume` of the secondary (claim 24). Syncs first.
    ///
    /// Compaction, merge and deletion run only on a synced store: the secondary decides which
    /// blocks of a partition are still needed from what its descendants override, including
    /// the head's unsynced writes; if a crash then drops those writes, a block the head should
    /// fall back to would be gone (seen with [`Store::delete_volume`]). Syncing first closes that.
    pub async fn compact(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<CompactReport> {
        self.sync().await?;
        self.secondary.compact(volume, progress).await
    }

    /// Merges the oldest partitions, up to snapshot `volume`, into the secondary's baseline.
    /// Syncs first (see [`Mirror::compact`]).
    pub async fn merge(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<u32> {
        self.sync().await?;
        self.secondary.merge(volume, progress).await
    }

    /// Deletes snapshot `volume` of the secondary. Syncs first (see [`Mirror::compact`]).
    pub async fn delete_volume(&mut self, volume: VolumeId) -> Result<CompactReport> {
        self.sync().await?;
        self.secondary.delete_volume(volume).await
    }

    /// Rolls the live volume back to `to` (see [`Store::rollback`]) and rewrites the blocks that
    /// changed on every leg, from the secondary. Returns the new head's identifier.
    pub async fn rollback(&mut self, to: VolumeId, label: Option<&str>) -> Result<VolumeId> {
        self.sync().await?;
        // The primary holds the head as it is; after the rollback the head reads as `to` does.
        let old_head = self.secondary.head();
        let changed = self.secondary.diff(old_head, to).await.ok();
        let new_head = self.secondary.rollback(to, label).await?;
        let targets: Vec<usize> = (0..self.legs.len())
            .filter(|&i| self.in_service(i))
            .collect();
        // Every leg holds the old image: none may serve as a source.
        for &i in &targets {
            self.legs[i].resilvering = true;
        }
        for i in targets {
            let outcome = match &changed {
                Some(extents) => {
                    let r: Vec<(u64, u64)> = extents.iter().map(|e| (e.addr, e.blocks)).collect();
                    self.resilver(i, &r, Mode::Overwrite).await
                }
                None => {
                    self.resilver(i, &[(0, self.block_count())], Mode::Verify)
                        .await
                }
            };
            // A leg that fails is degraded (and reported by status); the rollback itself stands.
            let _ = outcome;
        }
        Ok(new_head)
    }

    // ----- resilvering -----------------------------------------------------------------------

    /// Brings leg `i` (marked resilvering, so that it is no source) up to date over `spans`,
    /// from the legs in service or the secondary, then marks it consistent and puts it in
    /// service. On a device failure the leg is degraded and the error returned.
    async fn resilver(
        &mut self,
        i: usize,
        spans: &[(u64, u64)],
        mode: Mode,
    ) -> Result<ResilverReport> {
        self.legs[i].resilvering = true;
        // The leg is rewritten from what its device holds: its table is read again afterwards.
        self.legs[i].sums.clear();
        let mut report = ResilverReport {
            leg: i,
            ..ResilverReport::default()
        };
        let failed = |this: &Self| {
            Error::Storage(StorageError::Io {
                object: IMAGE_OBJECT.to_string(),
                message: this.legs[i]
                    .reason
                    .clone()
                    .unwrap_or_else(|| "the device failed".into()),
            })
        };
        // Any rewrite but a catch-up clears the CONSISTENT flag first: until it ends, the header
        // names no state of the image (a rollback's rewrite, for one, moves the image to a state
        // no later log entry describes).
        if mode != Mode::CatchUp && !self.write_header(i, false, FoundBy::Resilver).await {
            return Err(failed(self));
        }
        let bs = self.block_size() as usize;
        let chunk = self.chunk_blocks();
        for &(first, count) in spans {
            let mut at = first;
            while at < first + count {
                let n = chunk.min(first + count - at);
                let mut truth = vec![0u8; n as usize * bs];
                let failures = self
                    .fetch(at, &mut truth, (0..n).collect(), FoundBy::Resilver)
                    .await;
                let lost: BTreeSet<u64> = failures.iter().map(|(a, _, _)| *a).collect();
                report.unrecoverable.extend(lost.iter().copied());
                let current = if matches!(mode, Mode::Compare | Mode::Verify) {
                    let Some(device) = self.legs[i].device.as_ref() else {
                        return Err(failed(self));
                    };
                    match read_leg(device, at, n, self.block_size()).await {
                        Ok(r) => Some(r),
                        Err(e) => {
                            self.degrade(i, &e, FoundBy::Resilver);
                            return Err(failed(self));
                        }
                    }
                } else {
                    None
                };
                let mut rewrite = Vec::new();
                let mut damaged = Vec::new();
                for k in 0..n {
                    let addr = at + k;
                    if lost.contains(&addr) {
                        continue;
                    }
                    let block = &truth[k as usize * bs..][..bs];
                    let write = match (&current, mode) {
                        (Some((image, sums)), _) => {
                            let theirs = &image[k as usize * bs..][..bs];
                            let valid = block_crc(addr, theirs) == sums[k as usize];
                            if !valid && mode == Mode::Verify {
                                damaged.push(addr);
                            }
                            !valid || theirs != block
                        }
                        (None, Mode::Blank) => block.iter().any(|&b| b != 0),
                        (None, _) => true,
                    };
                    if write {
                        rewrite.push(k);
                    }
                }
                report.blocks_checked += n;
                let mut commit = Commit::new(false);
                if mode == Mode::Blank {
                    // Every checksum entry, zero blocks included; image bytes only where non-zero.
                    let mut sums = Vec::with_capacity(n as usize * 4);
                    for k in 0..n {
                        let addr = at + k;
                        let block = &truth[k as usize * bs..][..bs];
                        let c = if lost.contains(&addr) {
                            !zero_block_crc(addr, self.zero_crc, self.block_size())
                        } else if block.iter().all(|&b| b == 0) {
                            zero_block_crc(addr, self.zero_crc, self.block_size())
                        } else {
                            block_crc(addr, block)
                        };
                        sums.extend_from_slice(&c.to_le_bytes());
                    }
                    commit.write(SUM_OBJECT, at * SUM_ENTRY_LEN, sums);
                    for (f, c) in runs(rewrite.iter().copied()) {
                        let bytes = truth[f as usize * bs..][..c as usize * bs].to_vec();
                        commit.write(IMAGE_OBJECT, (at + f) * bs as u64, bytes);
                    }
                } else {
                    for (f, c) in runs(rewrite.iter().copied()) {
                        let bytes = truth[f as usize * bs..][..c as usize * bs].to_vec();
                        commit.write(
                            SUM_OBJECT,
                            (at + f) * SUM_ENTRY_LEN,
                            sum_entries(at + f, &bytes, bs),
                        );
                        commit.write(IMAGE_OBJECT, (at + f) * bs as u64, bytes);
                    }
                    // No good copy anywhere: make sure the leg cannot serve what it holds.
                    for &addr in &lost {
                        let poison = !zero_block_crc(addr, self.zero_crc, self.block_size());
                        commit.write(IMAGE_OBJECT, addr * bs as u64, vec![0u8; bs]);
                        commit.write(
                            SUM_OBJECT,
                            addr * SUM_ENTRY_LEN,
                            poison.to_le_bytes().to_vec(),
                        );
                    }
                }
                if !commit.changes.is_empty()
                    && !self.commit_leg(i, commit, FoundBy::Resilver).await
                {
                    return Err(failed(self));
                }
                report.blocks_written += rewrite.len() as u64;
                report.damaged_found += damaged.len() as u64;
                let leg = &mut self.legs[i];
                leg.resilvered += rewrite.len() as u64;
                leg.detected += damaged.len() as u64;
                leg.repaired += damaged.len() as u64;
                for addr in damaged {
                    self.event(i, Some(addr), FaultKind::Checksum, FoundBy::Resilver, true);
                }
                at += n;
            }
        }
        // Data durable first, then the header that vouches for it.
        if !self
            .commit_leg(i, Commit::new(true), FoundBy::Resilver)
            .await
            || !self.write_header(i, true, FoundBy::Resilver).await
        {
            return Err(failed(self));
        }
        let leg = &mut self.legs[i];
        leg.resilvering = false;
        leg.state = LegState::Healthy;
        leg.reason = None;
        Ok(report)
    }

    /// Puts `device` in leg position `i` (replacing a degraded, missing or healthy leg) and
    /// resilvers it from the other legs in service, or from the secondary. Every block is
    /// compared (a device that held this leg before keeps what is still right). Refuses a device
    /// holding another store's primary.
    pub async fn replace(&mut self, i: usize, device: P) -> Result<ResilverReport> {
        if i >= self.legs.len() {
            return Err(Error::InvalidArgument(format!(
                "there is no leg {i}: the primary has {} legs",
                self.legs.len()
            )));
        }
        self.sync().await?;
        let mode = self.device_mode(i, &device).await?;
        let leg = &mut self.legs[i];
        leg.device = Some(device);
        leg.sums.clear();
        leg.state = LegState::Healthy;
        leg.reason = None;
        leg.resilvering = true;
        leg.synced = None;
        leg.replacements += 1;
        self.resilver(i, &[(0, self.block_count())], mode.0).await
    }

    /// Resilver mode and header generation for a device about to be filled.
    async fn device_mode(&mut self, i: usize, device: &P) -> Result<(Mode, u64)> {
        match self.plan_device(i, device).await? {
            Plan::Failed(e) => Err(Error::Storage(e)),
            Plan::Full(Mode::Blank, g) => {
                self.legs[i].generation = g;
                Ok((Mode::Blank, g))
            }
            Plan::InSync(h) | Plan::Incremental(h, _) => {
                self.legs[i].generation = h.generation;
                Ok((Mode::Verify, h.generation))
            }
            Plan::Full(mode, g) => {
                self.legs[i].generation = g;
                Ok((mode, g))
            }
        }
    }

    /// Replaces every leg with `devices` and rebuilds them, the first from the secondary's head
    /// and the next ones from the legs already rebuilt. For use after all legs were lost.
    pub async fn rebuild_primary(&mut self, devices: Vec<P>) -> Result<Vec<ResilverReport>> {
        Self::check_leg_count(devices.len())?;
        self.sync().await?;
        let old: Vec<u64> = self.legs.iter().map(|l| l.replacements).collect();
        let mut legs: Vec<Leg<P>> = Vec::with_capacity(devices.len());
        let mut modes = Vec::with_capacity(devices.len());
        for (i, device) in devices.into_iter().enumerate() {
            let mode = match self.plan_device(i, &device).await? {
                Plan::Failed(e) => return Err(Error::Storage(e)),
                Plan::Full(Mode::Blank, g) => (Mode::Blank, g),
                Plan::InSync(h) | Plan::Incremental(h, _) => (Mode::Verify, h.generation),
                Plan::Full(mode, g) => (mode, g),
            };
            let mut leg = Leg::new(device);
            leg.resilvering = true;
            leg.generation = mode.1;
            leg.replacements = old.get(i).copied().unwrap_or(0) + 1;
            legs.push(leg);
            modes.push(mode.0);
        }
        self.legs = legs;
        let mut reports = Vec::with_capacity(modes.len());
        for (i, mode) in modes.into_iter().enumerate() {
            reports.push(self.resilver(i, &[(0, self.block_count())], mode).await?);
        }
        Ok(reports)
    }

    /// Takes the device out of leg position `i` (the leg becomes missing) and gives it back.
    pub fn detach(&mut self, i: usize) -> Result<P> {
        let leg = self
            .legs
            .get_mut(i)
            .ok_or_else(|| Error::InvalidArgument(format!("there is no leg {i}")))?;
        let device = leg
            .device
            .take()
            .ok_or_else(|| Error::InvalidArgument(format!("leg {i} has no device")))?;
        leg.state = LegState::Missing;
        leg.synced = None;
        leg.resilvering = false;
        leg.sums.clear();
        Ok(device)
    }

    // ----- scrub -----------------------------------------------------------------------------

    /// Verifies every block of every leg in service against its checksum, against the other legs
    /// and against the secondary's head, and rewrites every bad copy it can (see
    /// [`ScrubOptions`]; this is the thorough default). Syncs first.
    pub async fn scrub(&mut self) -> Result<ScrubReport> {
        self.scrub_with(ScrubOptions::default()).await
    }

    /// [`Mirror::scrub`] with options.
    pub async fn scrub_with(&mut self, options: ScrubOptions) -> Result<ScrubReport> {
        self.sync().await?;
        let bs = self.block_size() as usize;
        let block_count = self.block_count();
        let chunk = self.chunk_blocks();
        let mut report = ScrubReport {
            legs: vec![LegScrubReport::default(); self.legs.len()],
            ..ScrubReport::default()
        };
        let mut at = 0;
        while at < block_count {
            let n = chunk.min(block_count - at);
            // Every copy of the chunk.
            let mut copies: Vec<(usize, Vec<u8>, Vec<u32>)> = Vec::new();
            for i in 0..self.legs.len() {
                if !self.in_service(i) {
                    continue;
                }
                let Some(device) = self.legs[i].device.as_ref() else {
                    continue;
                };
                match read_leg(device, at, n, self.block_size()).await {
                    Ok((image, sums)) => copies.push((i, image, sums)),
                    Err(e) => {
                        report.legs[i].io_error = Some(e.to_string());
                        self.degrade(i, &e, FoundBy::Scrub);
                    }
                }
            }
            if copies.is_empty() && !options.compare_with_secondary {
                at += n;
                continue;
            }
            let secondary_chunk = if options.compare_with_secondary {
                self.secondary.read(at, n).await.ok()
            } else {
                None
            };
            // Per leg: the blocks to rewrite, with the good data.
            let mut repairs: BTreeMap<usize, Vec<(u64, Vec<u8>, FaultKind)>> = BTreeMap::new();
            for k in 0..n as usize {
                let addr = at + k as u64;
                report.blocks_checked += 1;
                // A copy is good if its data matches the device's checksum entry and the one the
                // controller holds in memory (if loaded): damage to either entry is found here.
                let crcs: Vec<(u32, bool)> = copies
                    .iter()
                    .map(|(i, image, sums)| {
                        let c = block_crc(addr, &image[k * bs..][..bs]);
                        let cached = self.legs[*i].sums.get(addr);
                        (c, c == sums[k] && cached.is_none_or(|s| s == c))
                    })
                    .collect();
                let valid: BTreeSet<u32> =
                    crcs.iter().filter(|(_, ok)| *ok).map(|(c, _)| *c).collect();
                let need_secondary = options.compare_with_secondary || valid.len() != 1;
                let mut from_secondary: Option<Vec<u8>> = None;
                if need_secondary {
                    from_secondary = match &secondary_chunk {
                        Some(data) => Some(data[k * bs..][..bs].to_vec()),
                        None => match self.secondary.read(addr, 1).await {
                            Ok(data) => Some(data),
                            Err(_) => {
                                report.secondary_damaged.push(addr);
                                None
                            }
                        },
                    };
                }
                // The truth: the secondary when it answered, else the copies' agreement.
                let truth: Option<(u32, Vec<u8>)> = match from_secondary {
                    Some(data) => Some((block_crc(addr, &data), data)),
                    None if valid.len() == 1 => {
                        let c = *valid.iter().next().unwrap_or(&0);
                        let j = crcs.iter().position(|&(x, ok)| ok && x == c).unwrap_or(0);
                        Some((c, copies[j].1[k * bs..][..bs].to_vec()))
                    }
                    None => None,
                };
                let mut lost = false;
                for (j, &(c, ok)) in crcs.iter().enumerate() {
                    let i = copies[j].0;
                    report.copies_checked += 1;
                    report.legs[i].checked += 1;
                    let kind = match &truth {
                        _ if !ok => FaultKind::Checksum,
                        Some((t, data)) if *t != c || copies[j].1[k * bs..][..bs] != data[..] => {
                            FaultKind::Stale
                        }
                        Some(_) => continue,
                        // Valid copies that disagree, and no secondary to decide.
                        None => FaultKind::Stale,
                    };
                    report.mismatches += 1;
                    report.legs[i].mismatches += 1;
                    self.legs[i].detected += 1;
                    match &truth {
                        Some((_, data)) => {
                            repairs
                                .entry(i)
                                .or_default()
                                .push((addr, data.clone(), kind))
                        }
                        None => {
                            lost = true;
                            self.event(i, Some(addr), kind, FoundBy::Scrub, false);
                        }
                    }
                }
                if lost {
                    report.unrecoverable.push(addr);
                }
            }
            for (i, blocks) in repairs {
                let mut commit = Commit::new(true);
                for (addr, data, _) in &blocks {
                    commit.write(
                        SUM_OBJECT,
                        addr * SUM_ENTRY_LEN,
                        block_crc(*addr, data).to_le_bytes().to_vec(),
                    );
                    commit.write(IMAGE_OBJECT, addr * bs as u64, data.clone());
                }
                let ok = self.commit_leg(i, commit, FoundBy::Scrub).await;
                if ok {
                    report.repaired += blocks.len() as u64;
                    report.legs[i].repaired += blocks.len() as u64;
                    self.legs[i].repaired += blocks.len() as u64;
                } else if let Some(reason) = &self.legs[i].reason {
                    report.legs[i].io_error = Some(reason.clone());
                }
                for (addr, _, kind) in blocks {
                    self.event(i, Some(addr), kind, FoundBy::Scrub, ok);
                }
            }
            at += n;
        }
        Ok(report)
    }

    // ----- closing ---------------------------------------------------------------------------

    /// Syncs and gives back the secondary's storage and the leg devices.
    pub async fn close(mut self) -> Result<(S, Vec<Option<P>>)> {
        self.sync().await?;
        let devices = self.legs.into_iter().map(|l| l.device).collect();
        let secondary = self.secondary.close().await?;
        Ok((secondary, devices))
    }
}
