//! The partition tree: what the store knows of each partition, and every walk over parents.
//!
//! Partitions live in slots, in creation order; a slot keeps its meaning for the store's life
//! (a merged or dropped partition stays as a `dropped` slot). Each partition's `parent` is an
//! older slot or `None` (the baseline), so every walk up the tree ends; the walks below are
//! still bounded by the number of slots, so a damaged tree cannot make one loop.

use std::ops::{Index, IndexMut};

use rustc_hash::FxHashMap;

use super::records::RecordList;
use crate::error::{Error, Result};
use crate::format::segment_object;
use crate::index::SlotSet;
use crate::VolumeId;

/// One partition of the log: a snapshot (sealed), the live head, or a dropped slot.
#[derive(Debug)]
pub(super) struct Partition {
    pub volume: VolumeId,
    /// Generation of the segment object (bumped by each rewrite).
    pub generation: u32,
    /// The segment was rewritten by compaction: sequence numbers may have gaps.
    pub compacted: bool,
    /// The volume identifier was released (deleted); the partition stays for its descendants.
    pub hidden: bool,
    /// The partition is gone (merged or dropped); its slot stays so that slots keep their meaning.
    pub dropped: bool,
    /// Entries in the segment.
    pub entries: u64,
    pub parent: Option<u32>,
    pub label: String,
    pub created_ms: u64,
    pub sealed_ms: Option<u64>,
    pub segment: String,
    pub first_seq: u64,
    pub next_seq: u64,
    /// End of the records (the index section starts here once sealed).
    pub records_end: u64,
    /// Whole segment length (records, index and footer once sealed).
    pub segment_len: u64,
    pub records: RecordList,
    pub blocks_written: u64,
}

impl Partition {
    pub fn entry_count(&self) -> u64 {
        self.entries
    }
}

/// Every partition by slot, and the slot of every volume identifier still known.
#[derive(Debug, Default)]
pub(super) struct PartitionTree {
    slots: Vec<Partition>,
    by_volume: FxHashMap<VolumeId, u32>,
}

impl PartitionTree {
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Partition> {
        self.slots.iter()
    }

    /// Adds an empty, unsealed partition as the newest slot; returns the slot.
    pub fn push(
        &mut self,
        volume: VolumeId,
        parent: Option<u32>,
        created_ms: u64,
        first_seq: u64,
        generation: u32,
    ) -> u32 {
        debug_assert!(parent.is_none_or(|p| (p as usize) < self.slots.len()));
        let slot = self.slots.len() as u32;
        self.slots.push(Partition {
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
            records: RecordList::default(),
            blocks_written: 0,
        });
        self.by_volume.insert(volume, slot);
        slot
    }

    /// The slot of `volume`, hidden (deleted) or not; `None` if no partition has it.
    pub fn slot(&self, volume: VolumeId) -> Option<u32> {
        self.by_volume.get(&volume).copied()
    }

    /// The slot of a visible volume (`None` for the baseline).
    pub fn slot_of(&self, volume: VolumeId) -> Result<Option<u32>> {
        if volume == VolumeId::BASELINE {
            return Ok(None);
        }
        self.slot(volume)
            .filter(|&slot| !self[slot as usize].hidden)
            .map(Some)
            .ok_or(Error::UnknownVolume(volume))
    }

    /// `slot` and its ancestors, newest first, up to (not including) the baseline. Bounded by
    /// the number of slots, so a damaged tree cannot make it loop.
    pub fn lineage(&self, slot: Option<u32>) -> impl Iterator<Item = u32> + '_ {
        std::iter::successors(slot, |&s| self[s as usize].parent).take(self.slots.len())
    }

    /// The set of `slot` and its ancestors (what a read at `slot` may see).
    pub fn ancestry(&self, slot: Option<u32>) -> SlotSet {
        let mut set = SlotSet::default();
        for s in self.lineage(slot) {
            set.insert(s);
        }
        set
    }

    /// The nearest visible volume at or above `slot` (deleted volumes are skipped).
    pub fn visible_ancestor(&self, slot: Option<u32>) -> VolumeId {
        self.lineage(slot)
            .map(|s| &self[s as usize])
            .find(|p| !p.hidden)
            .map_or(VolumeId::BASELINE, |p| p.volume)
    }

    /// Forgets a partition (the journal already says it is gone): its children move up to its
    /// parent, its volume identifier is released, its slot stays, empty and `dropped`.
    pub fn drop_slot(&mut self, slot: u32) {
        let parent = self[slot as usize].parent;
        for p in self.slots.iter_mut() {
            if p.parent == Some(slot) {
                p.parent = parent;
            }
        }
        let p = &mut self.slots[slot as usize];
        p.dropped = true;
        p.hidden = true;
        p.records.clear();
        p.records_end = 0;
        p.segment_len = 0;
        p.entries = 0;
        p.blocks_written = 0;
        let volume = p.volume;
        self.by_volume.remove(&volume);
    }

    /// The partition with records that holds `seq` or, failing that, the first one after it.
    pub fn at_or_after(&self, seq: u64) -> Option<u32> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, p)| p.next_seq > seq && !p.records.is_empty())
            .min_by_key(|(_, p)| p.first_seq)
            .map(|(slot, _)| slot as u32)
    }

    /// Checks what the module documentation promises of the tree (debug builds only): parents
    /// are older slots, dropped slots hold nothing and no visible volume, sequence ranges of
    /// live partitions are well formed.
    pub fn debug_check(&self) {
        if !cfg!(debug_assertions) {
            return;
        }
        for (slot, p) in self.slots.iter().enumerate() {
            debug_assert!(
                p.parent.is_none_or(|parent| (parent as usize) < slot),
                "partition {slot}'s parent is not older"
            );
            debug_assert!(
                p.first_seq <= p.next_seq,
                "partition {slot}'s range is reversed"
            );
            if p.dropped {
                debug_assert!(
                    p.hidden && p.records.is_empty(),
                    "dropped slot {slot} holds data"
                );
                debug_assert!(self.slot(p.volume) != Some(slot as u32));
            }
            debug_assert!(
                p.records
                    .iter()
                    .zip(p.records.iter().skip(1))
                    .all(|(a, b)| a.first_seq < b.first_seq && a.offset < b.offset),
                "partition {slot}'s records are out of order"
            );
        }
    }
}

impl Index<usize> for PartitionTree {
    type Output = Partition;
    fn index(&self, slot: usize) -> &Partition {
        &self.slots[slot]
    }
}

impl IndexMut<usize> for PartitionTree {
    fn index_mut(&mut self, slot: usize) -> &mut Partition {
        &mut self.slots[slot]
    }
}
