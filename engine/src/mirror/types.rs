//! The mirror's options and what it reports: status, snapshots, faults, resilvers and scrubs.

//!
//! What it reports crosses to the CLI's JSON and to JavaScript as these types, serialized with
//! serde (camelCase), as the store's boundary types are (see `store/types.rs`).

use serde::{Serialize, Serializer};

use super::DEFAULT_PRIMARY_BUFFER_BYTES;
use crate::{CompactReport, VolumeId};

/// What the snapshot operation does to the secondary after sealing the snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotCompaction {
    /// Compact the snapshot just taken in place ([`crate::Store::compact`]).
    InPlace,
    /// Merge the oldest snapshots into the baseline ([`crate::Store::merge`]) so that at most `keep`
    /// snapshot volumes remain.
    MergeOldest {
        /// Snapshots to keep (the newest ones).
        keep: usize,
    },
}

/// How a [`super::Mirror`] behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MirrorOptions {
    /// Compaction done by every [`super::Mirror::snapshot`] (`None`: none).
    pub compact_on_snapshot: Option<SnapshotCompaction>,
    /// Bytes of written blocks kept in memory before a write triggers a [`super::Mirror::sync`]
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

/// What [`super::Mirror::snapshot`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LegState {
    /// In service: written on every sync, read from, scrubbed.
    Healthy,
    /// Out of service after an I/O failure (or an interrupted resilver); replace it.
    Degraded,
    /// No device (detached).
    Missing,
}

/// How opening the mirror brought a leg in line (see [`LegOpenOutcome`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum LegOpen {
    /// Nothing to do (or the leg was put in later, by `replace` or `rebuild_primary`).
    InSync,
    /// The blocks written since it was last updated were rewritten.
    CaughtUp,
    /// Every block was compared and rewritten as needed.
    Resilvered,
    /// Its device could not be used.
    Failed,
}

/// Status of one leg.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegStatus {
    /// Its position in the primary.
    pub leg: usize,
    /// Healthy, degraded or missing.
    pub state: LegState,
    /// Why it is degraded.
    pub reason: Option<String>,
    /// How opening the mirror brought it in line.
    pub open: LegOpen,
    /// Blocks that opening wrote to it.
    pub open_blocks_written: u64,
    /// Damaged (failed checksum) or stale copies found on it by reads and scrubs, and damaged
    /// copies found while resilvering it.
    pub errors_detected: u64,
    /// Of those, how many were rewritten from a good copy.
    pub errors_repaired: u64,
    /// I/O failures of its device.
    pub io_errors: u64,
    /// Blocks rewritten while resilvering it.
    pub blocks_resilvered: u64,
    /// Times a device was put in this position by [`super::Mirror::replace`] or
    /// [`super::Mirror::rebuild_primary`].
    pub replacements: u64,
    /// Generation of its current header.
    pub generation: u64,
    /// The head volume and next sequence number its image reflects, if known to be consistent
    /// (`{ head, nextSeq }` across the boundary).
    #[serde(serialize_with = "synced_object")]
    pub synced: Option<(VolumeId, u64)>,
}

/// A leg's synced position as `{ head, nextSeq }` (or `null`).
fn synced_object<S: Serializer>(
    synced: &Option<(VolumeId, u64)>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Synced {
        head: VolumeId,
        next_seq: u64,
    }
    synced
        .map(|(head, next_seq)| Synced { head, next_seq })
        .serialize(serializer)
}

/// Status of the whole system.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorStatus {
    /// The secondary's head volume.
    pub head: VolumeId,
    /// Legs in service.
    pub healthy_legs: usize,
    /// Some leg is not in service (see [`MirrorStatus::is_degraded`]).
    pub degraded: bool,
    /// Written blocks not yet on the primary (they reach it at the next sync).
    pub pending_blocks: usize,
    /// Blocks head reads took from the secondary because no leg had a good copy (or none was in
    /// service).
    pub blocks_served_by_secondary: u64,
    /// Blocks head reads could not get from anywhere (no good copy).
    pub unrecoverable_reads: u64,
    /// Blocks written back into the secondary at open because it had lost acknowledged writes
    /// that the primary still held (see [`super::Mirror::open`]).
    pub secondary_blocks_restored: u64,
    /// Blocks the secondary may have lost that could not be restored at open: while it was
    /// behind the primary, no leg had a copy of them that passed its checksum. Their lost
    /// writes (if any) cannot be recovered; the legs are reconciled with the secondary's older
    /// data.
    pub secondary_blocks_lost: u64,
    /// One entry per leg.
    pub legs: Vec<LegStatus>,
}

impl MirrorStatus {
    /// True if some leg is not in service.
    pub fn is_degraded(&self) -> bool {
        self.degraded
    }
}

/// What kind of fault an event reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FaultKind {
    /// A copy failed its checksum (data or checksum entry damaged).
    Checksum,
    /// A copy passed its checksum but differs from the truth (a lost write).
    Stale,
    /// The device failed an I/O; the leg was taken out of service.
    Io,
}

/// Which operation found a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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

/// One fault found on a leg (see [`super::Mirror::take_events`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
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

/// Options of [`super::Mirror::scrub_with`].
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LegScrubReport {
    /// Its position in the primary.
    pub leg: usize,
    /// Copies checked.
    pub checked: u64,
    /// Copies that failed their checksum or differed from the truth (`detected` across the
    /// boundary).
    #[serde(rename = "detected")]
    pub mismatches: u64,
    /// Of those, rewritten.
    pub repaired: u64,
    /// The I/O failure that took the leg out of service during the scrub.
    pub io_error: Option<String>,
}

/// What [`super::Mirror::scrub`] found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScrubReport {
    /// Block addresses checked.
    pub blocks_checked: u64,
    /// Leg copies checked (blocks times legs in service).
    pub copies_checked: u64,
    /// Copies found damaged or stale (`detected` across the boundary).
    #[serde(rename = "detected")]
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
