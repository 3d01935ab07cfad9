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
mod legs;
mod open;
mod read;
mod resilver;
mod scrub;
mod sums;
mod types;

pub use types::{
    FaultEvent, FaultKind, FoundBy, LegOpen, LegOpenOutcome, LegScrubReport, LegState, LegStatus,
    MirrorOptions, MirrorStatus, ResilverReport, ScrubOptions, ScrubReport, SnapshotCompaction,
    SnapshotReport,
};

use crate::order::runs;
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
            .enumerate()
            .map(|(i, l)| LegStatus {
                leg: i,
                open: match self.open_report.get(i) {
                    Some(LegOpenOutcome::Reconciled(_)) => LegOpen::CaughtUp,
                    Some(LegOpenOutcome::Resilvered(_)) => LegOpen::Resilvered,
                    Some(LegOpenOutcome::Failed(_)) => LegOpen::Failed,
                    Some(LegOpenOutcome::InSync) | None => LegOpen::InSync,
                },
                open_blocks_written: match self.open_report.get(i) {
                    Some(LegOpenOutcome::Reconciled(r) | LegOpenOutcome::Resilvered(r)) => {
                        r.blocks_written
                    }
                    _ => 0,
                },
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
        let healthy_legs = legs.iter().filter(|l| l.state == LegState::Healthy).count();
        MirrorStatus {
            healthy_legs,
            degraded: healthy_legs < legs.len(),
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

    /// Makes `blocks` blocks from `addr` read as zeros: recorded in the secondary as zero
    /// extents (see [`Store::write_zeroes`]), and the blocks that did not read as zeros already
    /// are zeroed on the primary at the next sync. Returns how many those were.
    pub async fn write_zeroes(&mut self, addr: u64, blocks: u64) -> Result<u64> {
        let runs = self.secondary.write_zeroes_runs(addr, blocks).await?;
        let bs = self.block_size() as usize;
        for &(first, n) in &runs {
            for a in first..first + n {
                self.pending.insert(a, vec![0u8; bs]);
            }
        }
        if self.pending.len().saturating_mul(bs) >= self.options.primary_buffer_bytes {
            self.sync().await?;
        }
        Ok(runs.iter().map(|&(_, n)| n).sum())
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

    // ----- closing ---------------------------------------------------------------------------

    /// Syncs and gives back the secondary's storage and the leg devices.
    pub async fn close(mut self) -> Result<(S, Vec<Option<P>>)> {
        self.sync().await?;
        let devices = self.legs.into_iter().map(|l| l.device).collect();
        let secondary = self.secondary.close().await?;
        Ok((secondary, devices))
    }
}
