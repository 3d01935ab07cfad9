//! The in-memory block index: for every block address ever written, the versions of it, one per
//! partition that wrote it, oldest first.
//!
//! Invariants:
//! * a block's versions are ordered by sequence number (partitions are loaded and written in
//!   sequence order), and no two versions share a partition: a later write in the same partition
//!   replaces the earlier one;
//! * reading block `a` of volume `v` returns the newest version whose partition is `v` or an
//!   ancestor of `v`, else the baseline.

use rustc_hash::FxHashMap;

/// Where one version of a block lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version {
    /// Partition slot.
    pub slot: u32,
    /// The block's CRC (see `format::block_crc`).
    pub crc: u32,
    /// Byte offset of the block's data in the partition's segment; for a block of a zero
    /// extent, [`ZERO_VERSION`] plus the byte offset of the extent's entry in the segment
    /// (unique per entry, so that compaction can tell which entry a version came from).
    pub offset: u64,
}

/// High bit of [`Version::offset`]: the block is part of a zero extent and reads as zeros.
pub(crate) const ZERO_VERSION: u64 = 1 << 63;

impl Version {
    /// The block reads as zeros (it belongs to a zero extent: no data is stored for it).
    pub fn is_zero(&self) -> bool {
        self.offset & ZERO_VERSION != 0
    }
}

mod run;

use run::{List, Run, RunBuilder};

/// The current versions of one address changed since the sorted run was built.
#[derive(Debug)]
enum Recent {
    /// The address is no longer mapped (its versions were removed).
    Gone,
    One(Version),
    /// Boxed slice rather than `Vec`: a block gains versions rarely, and this keeps the enum at
    /// 24 bytes.
    Many(Box<[Version]>),
}

impl Recent {
    fn as_slice(&self) -> &[Version] {
        match self {
            Recent::Gone => &[],
            Recent::One(v) => std::slice::from_ref(v),
            Recent::Many(list) => list,
        }
    }

    fn from_list(list: Vec<Version>) -> Recent {
        match list.len() {
            0 => Recent::Gone,
            1 => Recent::One(list[0]),
            _ => Recent::Many(list.into_boxed_slice()),
        }
    }
}

/// An address and one version of it, collected by [`BlockIndex::load`], as the three words
/// [`crate::order::sort_triples`] sorts (one sort instantiation for the whole engine): the
/// address and the load order (which keeps one address's versions in the order they were
/// loaded), the slot and CRC, the offset.
type Loaded = (u64, u64, u64);

fn loaded(addr: u32, order: u32, v: Version) -> Loaded {
    (
        (u64::from(addr) << 32) | u64::from(order),
        (u64::from(v.slot) << 32) | u64::from(v.crc),
        v.offset,
    )
}

/// The address and version of a [`Loaded`] triple.
fn unload((key, slot_crc, offset): Loaded) -> (u32, Version) {
    let version = Version {
        slot: (slot_crc >> 32) as u32,
        crc: slot_crc as u32,
        offset,
    };
    ((key >> 32) as u32, version)
}

/// The fewest changed addresses that trigger a merge into the sorted run.
const RECENT_FLOOR: usize = 4096;

/// Block address to versions.
///
/// Addresses are below 2^32 (a store holds at most [`crate::format::BLOCK_COUNT_MAX`] blocks and
/// open refuses more than [`crate::format::OPEN_BLOCK_COUNT_MAX`]), so they are kept as `u32`.
/// The bulk of the index is a sorted [`Run`]: addresses, where each one's versions start, and
/// the versions, 8 bytes per address and 12 per version (see `run.rs`), with no per-entry
/// allocation or hash-table slack. Addresses changed since the run was built live in a small
/// hash map beside it (`recent`, holding each one's whole current list, `Gone` when no version
/// is left), merged into a new run once it holds more than an eighth of the run's addresses
/// (at least [`RECENT_FLOOR`]): each change is copied about eight times before it settles, and
/// the map stays a fraction of the whole. Opening a store collects versions with
/// [`BlockIndex::load`] and sorts them once ([`BlockIndex::finish_load`]), so a freshly opened
/// index is one run with nothing beside it.
#[derive(Debug)]
pub(crate) struct BlockIndex {
    run: Run,
    /// Addresses changed since the run was built, with their whole current list.
    recent: FxHashMap<u32, Recent>,
    /// Versions collected by `load`, not yet sorted into the run.
    loading: Vec<Loaded>,
    /// Addresses with at least one version.
    mapped: usize,
    /// The fewest changed addresses that trigger a merge ([`RECENT_FLOOR`]; tests lower it).
    recent_floor: usize,
}

impl Default for BlockIndex {
    fn default() -> Self {
        BlockIndex {
            run: Run::default(),
            recent: FxHashMap::default(),
            loading: Vec::new(),
            mapped: 0,
            recent_floor: RECENT_FLOOR,
        }
    }
}

/// The index key of a block address. Every address the engine indexes is below its store's
/// block count, which open and create keep at or below 2^32; a larger one (a bug) can match
/// nothing and is never stored.
fn key(addr: u64) -> Option<u32> {
    u32::try_from(addr).ok()
}

impl BlockIndex {
    /// The current versions of `addr`, oldest first.
    fn current(&self, addr: u64) -> List<'_> {
        debug_assert!(self.loading.is_empty(), "index read before finish_load");
        let Some(key) = key(addr) else {
            return List::EMPTY;
        };
        match self.recent.get(&key) {
            Some(recent) => List::Slice(recent.as_slice()),
            None => self.run.find(key),
        }
    }

    /// Replaces the versions of `key` by `list` (in `recent`), keeping the mapped count.
    fn set(&mut self, key: u32, was_mapped: bool, list: Vec<Version>) {
        match (was_mapped, list.is_empty()) {
            (false, false) => self.mapped += 1,
            (true, true) => self.mapped -= 1,
            _ => {}
        }
        self.recent.insert(key, Recent::from_list(list));
        if self.recent.len() > self.recent_floor.max(self.run.len() / 8) {
            self.merge_recent();
        }
    }

    /// Records that `version` is the newest write of `addr`.
    pub fn insert(&mut self, addr: u64, version: Version) {
        self.finish_load();
        let Some(key) = key(addr) else {
            debug_assert!(false, "block address {addr} above 2^32 indexed");
            return;
        };
        if let Some(entry) = self.recent.get_mut(&key) {
            match entry {
                Recent::Gone => {
                    *entry = Recent::One(version);
                    self.mapped += 1;
                    return;
                }
                Recent::One(last) if last.slot == version.slot => {
                    *last = version;
                    return;
                }
                Recent::Many(list) => {
                    if let Some(last) = list.last_mut().filter(|l| l.slot == version.slot) {
                        *last = version;
                        return;
                    }
                }
                Recent::One(_) => {}
            }
        }
        let current = self.current(addr);
        let mut list = Vec::with_capacity(current.len() + 1);
        list.extend(current.iter());
        match list.last_mut() {
            Some(last) if last.slot == version.slot => *last = version,
            _ => list.push(version),
        }
        let was_mapped = !current.is_empty();
        self.set(key, was_mapped, list);
    }

    /// Collects `version` as the newest of `addr` without indexing it yet: the bulk path of
    /// open, which loads every partition in sequence order. [`BlockIndex::finish_load`] (or
    /// the next change) sorts what was collected into the run; nothing may read the index
    /// before that.
    pub fn load(&mut self, addr: u64, version: Version) {
        let Some(key) = key(addr) else {
            debug_assert!(false, "block address {addr} above 2^32 indexed");
            return;
        };
        if self.loading.len() >= u32::MAX as usize {
            self.finish_load();
        }
        let order = self.loading.len() as u32;
        self.loading.push(loaded(key, order, version));
    }

    /// Sorts the versions collected by [`BlockIndex::load`] into the run, each after the
    /// versions the address already had (a later version in the same partition replaces the
    /// earlier one).
    pub fn finish_load(&mut self) {
        if self.loading.is_empty() {
            return;
        }
        self.merge_recent();
        let mut loaded = std::mem::take(&mut self.loading);
        crate::order::sort_triples(&mut loaded);
        if !self.recent.is_empty() || self.run.versions_len() + loaded.len() > u32::MAX as usize {
            // Past what the run's positions address: the rest waits in `recent`.
            for (addr, version) in loaded.into_iter().map(unload) {
                self.insert(u64::from(addr), version);
            }
            return;
        }
        let mut run = RunBuilder::with_capacity(
            self.run.len() + loaded.len(),
            self.run.versions_len() + loaded.len(),
        );
        let mut loaded = loaded.iter().copied().map(unload).peekable();
        for (addr, list) in self.run.entries() {
            while let Some((a, v)) = loaded.next_if(|(a, _)| *a < addr) {
                run.push(a, v);
            }
            for v in list.iter() {
                run.push(addr, v);
            }
            while let Some((_, v)) = loaded.next_if(|(a, _)| *a == addr) {
                run.push(addr, v);
            }
        }
        for (a, v) in loaded {
            run.push(a, v);
        }
        self.mapped = run.len();
        self.run = run.finish();
    }

    /// Merges `recent` into a new sorted run.
    fn merge_recent(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let versions_len = self.run.versions_len()
            + self
                .recent
                .values()
                .map(|v| v.as_slice().len())
                .sum::<usize>();
        if versions_len > u32::MAX as usize {
            // Past what the run's positions address: `recent` keeps growing instead.
            return;
        }
        let recent = std::mem::take(&mut self.recent);
        let mut keys: Vec<u64> = recent.keys().map(|&k| u64::from(k)).collect();
        crate::order::sort_u64s(&mut keys);
        let list_of = |key: u32| List::Slice(recent.get(&key).map_or(&[], Recent::as_slice));
        let past_the_run = |key: u64| {
            self.run
                .last_addr()
                .is_none_or(|last| key > u64::from(last))
        };
        if keys.first().is_none_or(|&first| past_the_run(first)) {
            // Every change lies past the run (a volume filled in order): appended in place.
            for key in keys {
                self.run.append(key as u32, list_of(key as u32));
            }
            return;
        }
        let mut run = RunBuilder::with_capacity(self.run.len() + keys.len(), versions_len);
        let mut keys = keys.into_iter().map(|k| k as u32).peekable();
        for (addr, list) in self.run.entries() {
            while let Some(c) = keys.next_if(|c| *c < addr) {
                run.extend(c, list_of(c));
            }
            match keys.next_if(|c| *c == addr) {
                Some(c) => run.extend(addr, list_of(c)),
                None => run.extend(addr, list),
            }
        }
        for c in keys {
            run.extend(c, list_of(c));
        }
        self.run = run.finish();
    }

    /// The newest version of `addr` whose partition satisfies `visible`.
    pub fn lookup(&self, addr: u64, visible: impl Fn(u32) -> bool) -> Option<Version> {
        self.current(addr).iter().rev().find(|v| visible(v.slot))
    }

    /// Like [`BlockIndex::lookup`], for a read at a volume whose partition starts at sequence
    /// number `limit`: no version of a partition that starts later can be visible (a volume's
    /// ancestors all start before it), and versions are in sequence order, so a binary search
    /// on `first_seq(slot)` skips every newer version before the newest-first walk. A hot block
    /// read at an old snapshot costs O(log versions), not O(versions newer than the snapshot).
    pub fn lookup_at(
        &self,
        addr: u64,
        limit: u64,
        first_seq: impl Fn(u32) -> u64,
        visible: impl Fn(u32) -> bool,
    ) -> Option<Version> {
        let list = self.current(addr);
        debug_assert!(
            list.iter()
                .zip(list.iter().skip(1))
                .all(|(a, b)| first_seq(a.slot) <= first_seq(b.slot)),
            "the versions of block {addr} are not in sequence order"
        );
        let end = if list.len() > 1 {
            list.partition_point(|v| first_seq(v.slot) <= limit)
        } else {
            list.len()
        };
        (0..end)
            .rev()
            .map(|i| list.get(i))
            .find(|v| visible(v.slot))
    }

    /// Moves the version of `addr` in `slot` to `offset` (compaction rewrote it).
    pub fn relocate(&mut self, addr: u64, slot: u32, offset: u64) {
        self.finish_load();
        let Some(key) = key(addr) else { return };
        if let Some(Recent::One(v)) = self.recent.get_mut(&key) {
            if v.slot == slot {
                v.offset = offset;
            }
            return;
        }
        let current = self.current(addr);
        if !current.iter().any(|v| v.slot == slot) {
            return;
        }
        let list: Vec<Version> = current
            .iter()
            .map(|v| {
                if v.slot == slot {
                    Version { offset, ..v }
                } else {
                    v
                }
            })
            .collect();
        self.set(key, true, list);
    }

    /// Removes the version of `addr` in `slot`, if any.
    pub fn remove(&mut self, addr: u64, slot: u32) {
        self.finish_load();
        let Some(key) = key(addr) else { return };
        let current = self.current(addr);
        if !current.iter().any(|v| v.slot == slot) {
            return;
        }
        let list: Vec<Version> = current.iter().filter(|v| v.slot != slot).collect();
        self.set(key, true, list);
    }

    /// Removes every version in `slot`.
    pub fn remove_slot(&mut self, slot: u32) {
        self.finish_load();
        self.merge_recent();
        if self.recent.is_empty() {
            self.mapped -= self.run.remove_slot(slot);
            return;
        }
        // The run could not take `recent` (past 2^32 versions): one address at a time.
        let mut addrs = Vec::new();
        self.for_each(|addr, list| {
            if list.iter().any(|v| v.slot == slot) {
                addrs.push(addr);
            }
        });
        for addr in addrs {
            self.remove(addr, slot);
        }
    }

    /// Calls `f` with every address and its versions (oldest first), in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(u64, &[Version])) {
        debug_assert!(self.loading.is_empty(), "index read before finish_load");
        let mut buf = Vec::new();
        for (addr, list) in self.run.entries() {
            if !self.recent.contains_key(&addr) {
                buf.clear();
                buf.extend(list.iter());
                f(u64::from(addr), &buf);
            }
        }
        for (&addr, recent) in &self.recent {
            let list = recent.as_slice();
            if !list.is_empty() {
                f(u64::from(addr), list);
            }
        }
    }

    /// Number of addresses with at least one version.
    pub fn mapped_blocks(&self) -> usize {
        self.mapped
    }

    /// Approximate heap bytes used by the index.
    pub fn heap_bytes(&self) -> usize {
        let recent = self.recent.capacity() * (std::mem::size_of::<(u32, Recent)>() + 1);
        let lists: usize = self
            .recent
            .values()
            .map(|v| match v {
                Recent::Many(list) => std::mem::size_of_val(&**list),
                _ => 0,
            })
            .sum();
        self.run.heap_bytes()
            + recent
            + lists
            + self.loading.capacity() * std::mem::size_of::<Loaded>()
    }
}

/// A set of partition slots, as a bitset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SlotSet {
    words: Vec<u64>,
}

impl SlotSet {
    /// Adds a slot.
    pub fn insert(&mut self, slot: u32) {
        let word = slot as usize / 64;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (slot % 64);
    }

    /// Tests a slot.
    pub fn contains(&self, slot: u32) -> bool {
        self.words
            .get(slot as usize / 64)
            .is_some_and(|w| w & (1 << (slot % 64)) != 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// One change to the index, applied to it and to a model (a map of plain version lists).
    #[derive(Debug, Clone)]
    enum Op {
        Insert { addr: u64, slot: u32, offset: u64 },
        Load { addr: u64, slot: u32, offset: u64 },
        FinishLoad,
        Relocate { addr: u64, slot: u32, offset: u64 },
        Remove { addr: u64, slot: u32 },
        RemoveSlot { slot: u32 },
    }

    fn op() -> impl Strategy<Value = Op> {
        let addr = 0..64u64;
        let slot = 0..6u32;
        // Now and then an offset past what a packed version holds (the run widens).
        let offset = prop_oneof![
            20 => any::<u32>().prop_map(u64::from),
            1 => (1u64 << 39)..(1u64 << 45),
        ];
        prop_oneof![
            6 => (addr.clone(), slot.clone(), offset.clone())
                .prop_map(|(addr, slot, offset)| Op::Insert { addr, slot, offset }),
            3 => (addr.clone(), slot.clone(), offset.clone())
                .prop_map(|(addr, slot, offset)| Op::Load { addr, slot, offset }),
            1 => Just(Op::FinishLoad),
            2 => (addr.clone(), slot.clone(), offset)
                .prop_map(|(addr, slot, offset)| Op::Relocate { addr, slot, offset }),
            2 => (addr, slot.clone()).prop_map(|(addr, slot)| Op::Remove { addr, slot }),
            1 => slot.prop_map(|slot| Op::RemoveSlot { slot }),
        ]
    }

    fn version(slot: u32, offset: u64) -> Version {
        Version {
            slot,
            crc: slot ^ offset as u32,
            offset,
        }
    }

    fn model_insert(model: &mut BTreeMap<u64, Vec<Version>>, addr: u64, v: Version) {
        let list = model.entry(addr).or_default();
        match list.last_mut() {
            Some(last) if last.slot == v.slot => *last = v,
            _ => list.push(v),
        }
    }

    /// Checks every address of the index against the model: versions, lookups and the count.
    fn check(index: &BlockIndex, model: &BTreeMap<u64, Vec<Version>>) {
        let mut seen = BTreeMap::new();
        index.for_each(|addr, list| {
            assert!(seen.insert(addr, list.to_vec()).is_none(), "{addr} twice");
        });
        assert_eq!(&seen, model);
        assert_eq!(index.mapped_blocks(), model.len());
        for addr in 0..64 {
            let list = model.get(&addr).map(Vec::as_slice).unwrap_or_default();
            for slot in 0..6 {
                let want = list.iter().rev().find(|v| v.slot <= slot).copied();
                assert_eq!(
                    index.lookup(addr, |s| s <= slot),
                    want,
                    "addr {addr} slot {slot}"
                );
                // Slots stand for their own first sequence numbers here.
                let got = index.lookup_at(addr, u64::from(slot), u64::from, |s| s <= slot);
                assert_eq!(got, want, "lookup_at addr {addr} slot {slot}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// The run, the recent map and the load path together behave like one map of version
        /// lists, whatever the merges in between (the floor is lowered so that they happen).
        #[test]
        fn the_index_is_a_map_of_version_lists(
            ops in proptest::collection::vec(op(), 1..300),
            floor in 0..8usize,
        ) {
            let mut index = BlockIndex { recent_floor: floor, ..BlockIndex::default() };
            let mut model: BTreeMap<u64, Vec<Version>> = BTreeMap::new();
            // Inserts and loads keep each address's versions in slot order, as the engine
            // keeps them in sequence order: a version older than the newest is skipped.
            let newest = |model: &BTreeMap<u64, Vec<Version>>, addr: u64| {
                model.get(&addr).and_then(|l| l.last()).map_or(0, |v| v.slot)
            };
            for op in ops {
                match op {
                    Op::Insert { addr, slot, offset } => {
                        if slot >= newest(&model, addr) {
                            index.insert(addr, version(slot, offset));
                            model_insert(&mut model, addr, version(slot, offset));
                        }
                    }
                    Op::Load { addr, slot, offset } => {
                        if slot >= newest(&model, addr) {
                            index.load(addr, version(slot, offset));
                            model_insert(&mut model, addr, version(slot, offset));
                        }
                    }
                    Op::FinishLoad => index.finish_load(),
                    Op::Relocate { addr, slot, offset } => {
                        index.relocate(addr, slot, offset);
                        for v in model.get_mut(&addr).into_iter().flatten() {
                            if v.slot == slot {
                                v.offset = offset;
                            }
                        }
                    }
                    Op::Remove { addr, slot } => {
                        index.remove(addr, slot);
                        if let Some(list) = model.get_mut(&addr) {
                            list.retain(|v| v.slot != slot);
                            if list.is_empty() {
                                model.remove(&addr);
                            }
                        }
                    }
                    Op::RemoveSlot { slot } => {
                        index.remove_slot(slot);
                        model.retain(|_, list| {
                            list.retain(|v| v.slot != slot);
                            !list.is_empty()
                        });
                    }
                }
            }
            index.finish_load();
            check(&index, &model);
            index.merge_recent();
            check(&index, &model);
            prop_assert!(index.recent.is_empty());
        }
    }

    #[test]
    fn a_loaded_index_is_one_run_of_20_bytes_per_single_version_block() {
        let mut index = BlockIndex::default();
        for addr in (0..100_000u64).rev() {
            index.load(addr * 7, version(0, addr));
        }
        index.finish_load();
        assert!(index.recent.is_empty() && index.loading.capacity() == 0);
        assert!(index.run.is_packed());
        assert_eq!(index.mapped_blocks(), 100_000);
        assert_eq!(index.heap_bytes(), 100_000 * 20 + 4);
        assert_eq!(index.lookup(7 * 500, |_| true), Some(version(0, 500)));
        assert_eq!(index.lookup(7 * 500 + 1, |_| true), None);
    }
}
