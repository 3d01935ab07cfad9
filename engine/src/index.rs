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

/// The current versions of one address changed since the sorted run was built.
#[derive(Debug, Clone)]
enum Versions {
    /// The address is no longer mapped (its versions were removed).
    Gone,
    One(Version),
    /// Boxed slice rather than `Vec`: a block gains versions rarely, and this keeps the enum at
    /// 24 bytes.
    Many(Box<[Version]>),
}

impl Versions {
    fn as_slice(&self) -> &[Version] {
        match self {
            Versions::Gone => &[],
            Versions::One(v) => std::slice::from_ref(v),
            Versions::Many(list) => list,
        }
    }

    fn from_list(list: Vec<Version>) -> Versions {
        match list.len() {
            0 => Versions::Gone,
            1 => Versions::One(list[0]),
            _ => Versions::Many(list.into_boxed_slice()),
        }
    }
}

/// An address and one version of it, collected by [`BlockIndex::load`]; `order` keeps the
/// versions of one address in the order they were loaded through an unstable sort.
#[derive(Debug, Clone, Copy)]
struct Loaded {
    addr: u32,
    order: u32,
    version: Version,
}

/// The fewest changed addresses that trigger a merge into the sorted run.
const RECENT_FLOOR: usize = 4096;

/// Block address to versions.
///
/// Addresses are below 2^32 (a store holds at most [`crate::format::BLOCK_COUNT_MAX`] blocks and
/// open refuses more than 2^32), so they are kept as `u32`. The bulk of the index is a *sorted
/// run*: three arrays (addresses, where each address's versions start, the versions), 8 bytes
/// per address plus 16 per version, with no per-entry allocation or hash-table slack. Addresses
/// changed since the run was built live in a small hash map beside it (`recent`, holding each
/// one's whole current list, `Gone` when no version is left), which is merged into a new run
/// once it holds more than an eighth of the run's addresses (at least [`RECENT_FLOOR`]): each
/// change is copied about eight times before it settles, and the map stays a fraction of the
/// whole. Opening a store collects versions with [`BlockIndex::load`] and sorts them once
/// ([`BlockIndex::finish_load`]), so a freshly opened index is one run with nothing beside it.
#[derive(Debug)]
pub(crate) struct BlockIndex {
    /// Addresses of the sorted run, ascending.
    addrs: Vec<u32>,
    /// `versions[starts[i]..starts[i + 1]]` are the versions of `addrs[i]`, oldest first.
    starts: Vec<u32>,
    versions: Vec<Version>,
    /// Addresses changed since the run was built, with their whole current list.
    recent: FxHashMap<u32, Versions>,
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
            addrs: Vec::new(),
            starts: Vec::new(),
            versions: Vec::new(),
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

/// A sorted run being built, address by address in ascending order.
struct RunBuilder {
    addrs: Vec<u32>,
    starts: Vec<u32>,
    versions: Vec<Version>,
}

impl RunBuilder {
    fn with_capacity(addrs: usize, versions: usize) -> RunBuilder {
        let mut starts = Vec::with_capacity(addrs + 1);
        starts.push(0);
        RunBuilder {
            addrs: Vec::with_capacity(addrs),
            starts,
            versions: Vec::with_capacity(versions),
        }
    }

    /// Appends `version` as the newest of `addr` (at or after the last address pushed); a
    /// version of the same partition as the address's newest replaces it.
    fn push(&mut self, addr: u32, version: Version) {
        if self.addrs.last() == Some(&addr) {
            let last = self.versions.last_mut().expect("an address has a version");
            if last.slot == version.slot {
                *last = version;
                return;
            }
            self.versions.push(version);
            *self.starts.last_mut().expect("starts is never empty") = self.versions.len() as u32;
        } else {
            debug_assert!(self.addrs.last().is_none_or(|&a| a < addr));
            self.addrs.push(addr);
            self.versions.push(version);
            self.starts.push(self.versions.len() as u32);
        }
    }

    /// Appends `addr` with `list` (its whole list; nothing when empty).
    fn extend(&mut self, addr: u32, list: &[Version]) {
        if !list.is_empty() {
            self.addrs.push(addr);
            self.versions.extend_from_slice(list);
            self.starts.push(self.versions.len() as u32);
        }
    }

    /// Makes this the index's run, trimmed to size.
    fn install(mut self, index: &mut BlockIndex) {
        self.addrs.shrink_to_fit();
        self.starts.shrink_to_fit();
        self.versions.shrink_to_fit();
        index.addrs = self.addrs;
        index.starts = self.starts;
        index.versions = self.versions;
    }
}

impl BlockIndex {
    /// The versions of `key` in the sorted run.
    fn in_run(&self, key: u32) -> &[Version] {
        match self.addrs.binary_search(&key) {
            Ok(i) => &self.versions[self.starts[i] as usize..self.starts[i + 1] as usize],
            Err(_) => &[],
        }
    }

    /// The current versions of `addr`, oldest first.
    fn current(&self, addr: u64) -> &[Version] {
        debug_assert!(self.loading.is_empty(), "index read before finish_load");
        let Some(key) = key(addr) else { return &[] };
        match self.recent.get(&key) {
            Some(versions) => versions.as_slice(),
            None => self.in_run(key),
        }
    }

    /// Replaces the versions of `addr` by `list` (in `recent`), keeping the mapped count.
    fn set(&mut self, key: u32, was_mapped: bool, list: Vec<Version>) {
        match (was_mapped, list.is_empty()) {
            (false, false) => self.mapped += 1,
            (true, true) => self.mapped -= 1,
            _ => {}
        }
        self.recent.insert(key, Versions::from_list(list));
        if self.recent.len() > self.recent_floor.max(self.addrs.len() / 8) {
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
                Versions::Gone => {
                    *entry = Versions::One(version);
                    self.mapped += 1;
                    return;
                }
                Versions::One(last) if last.slot == version.slot => {
                    *last = version;
                    return;
                }
                Versions::Many(list) => {
                    if let Some(last) = list.last_mut().filter(|l| l.slot == version.slot) {
                        *last = version;
                        return;
                    }
                }
                Versions::One(_) => {}
            }
        }
        let current = self.current(addr);
        let mut list = Vec::with_capacity(current.len() + 1);
        list.extend_from_slice(current);
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
        self.loading.push(Loaded {
            addr: key,
            order,
            version,
        });
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
        loaded.sort_unstable_by_key(|l| (l.addr, l.order));
        if !self.recent.is_empty() || self.versions.len() + loaded.len() > u32::MAX as usize {
            // Past what the run's positions address: the rest waits in `recent`.
            for l in loaded {
                self.insert(u64::from(l.addr), l.version);
            }
            return;
        }
        let mut run = RunBuilder::with_capacity(
            self.addrs.len() + loaded.len(),
            self.versions.len() + loaded.len(),
        );
        let mut loaded = loaded.iter().peekable();
        for (i, &addr) in self.addrs.iter().enumerate() {
            while let Some(l) = loaded.next_if(|l| l.addr < addr) {
                run.push(l.addr, l.version);
            }
            for &v in &self.versions[self.starts[i] as usize..self.starts[i + 1] as usize] {
                run.push(addr, v);
            }
            while let Some(l) = loaded.next_if(|l| l.addr == addr) {
                run.push(addr, l.version);
            }
        }
        for l in loaded {
            run.push(l.addr, l.version);
        }
        self.mapped = run.addrs.len();
        run.install(self);
    }

    /// Merges `recent` into a new sorted run.
    fn merge_recent(&mut self) {
        if self.recent.is_empty() {
            return;
        }
        let versions_len = self.versions.len()
            + self
                .recent
                .values()
                .map(|v| v.as_slice().len())
                .sum::<usize>();
        if versions_len > u32::MAX as usize {
            // Past what the run's positions address: `recent` keeps growing instead.
            return;
        }
        let mut changes: Vec<(u32, Versions)> =
            std::mem::take(&mut self.recent).into_iter().collect();
        changes.sort_unstable_by_key(|(addr, _)| *addr);
        let mut run = RunBuilder::with_capacity(self.addrs.len() + changes.len(), versions_len);
        let mut changes = changes.iter().peekable();
        for (i, &addr) in self.addrs.iter().enumerate() {
            while let Some((c, list)) = changes.next_if(|(c, _)| *c < addr) {
                run.extend(*c, list.as_slice());
            }
            match changes.next_if(|(c, _)| *c == addr) {
                Some((_, list)) => run.extend(addr, list.as_slice()),
                None => run.extend(
                    addr,
                    &self.versions[self.starts[i] as usize..self.starts[i + 1] as usize],
                ),
            }
        }
        for (c, list) in changes {
            run.extend(*c, list.as_slice());
        }
        run.install(self);
    }

    /// The newest version of `addr` whose partition satisfies `visible`.
    pub fn lookup(&self, addr: u64, visible: impl Fn(u32) -> bool) -> Option<Version> {
        self.current(addr)
            .iter()
            .rev()
            .find(|v| visible(v.slot))
            .copied()
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
            list.windows(2)
                .all(|w| first_seq(w[0].slot) <= first_seq(w[1].slot)),
            "the versions of block {addr} are not in sequence order"
        );
        let end = if list.len() > 1 {
            list.partition_point(|v| first_seq(v.slot) <= limit)
        } else {
            list.len()
        };
        list[..end].iter().rev().find(|v| visible(v.slot)).copied()
    }

    /// Moves the version of `addr` in `slot` to `offset` (compaction rewrote it).
    pub fn relocate(&mut self, addr: u64, slot: u32, offset: u64) {
        self.finish_load();
        let Some(key) = key(addr) else { return };
        if let Some(Versions::One(v)) = self.recent.get_mut(&key) {
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
                    Version { offset, ..*v }
                } else {
                    *v
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
        let list: Vec<Version> = current.iter().copied().filter(|v| v.slot != slot).collect();
        self.set(key, true, list);
    }

    /// Removes every version in `slot`.
    pub fn remove_slot(&mut self, slot: u32) {
        self.finish_load();
        self.merge_recent();
        // Filtered in place: the run keeps its order, and an address left with no version
        // leaves the run.
        let mut kept_addrs = 0;
        let mut kept_versions = 0;
        let mut begin = 0usize;
        for i in 0..self.addrs.len() {
            let end = self.starts[i + 1] as usize;
            let first = kept_versions;
            for v in begin..end {
                if self.versions[v].slot != slot {
                    self.versions[kept_versions] = self.versions[v];
                    kept_versions += 1;
                }
            }
            begin = end;
            if kept_versions > first {
                self.addrs[kept_addrs] = self.addrs[i];
                self.starts[kept_addrs + 1] = kept_versions as u32;
                kept_addrs += 1;
            }
        }
        self.mapped -= self.addrs.len() - kept_addrs;
        self.addrs.truncate(kept_addrs);
        self.starts.truncate(kept_addrs + 1);
        self.versions.truncate(kept_versions);
    }

    /// Calls `f` with every address and its versions (oldest first), in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(u64, &[Version])) {
        debug_assert!(self.loading.is_empty(), "index read before finish_load");
        for (i, &addr) in self.addrs.iter().enumerate() {
            if !self.recent.contains_key(&addr) {
                let list = &self.versions[self.starts[i] as usize..self.starts[i + 1] as usize];
                f(u64::from(addr), list);
            }
        }
        for (&addr, versions) in &self.recent {
            let list = versions.as_slice();
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
        let run = self.addrs.capacity() * 4
            + self.starts.capacity() * 4
            + self.versions.capacity() * std::mem::size_of::<Version>();
        let recent = self.recent.capacity() * (std::mem::size_of::<(u32, Versions)>() + 1);
        let lists: usize = self
            .recent
            .values()
            .map(|v| match v {
                Versions::Many(list) => std::mem::size_of_val(&**list),
                _ => 0,
            })
            .sum();
        run + recent + lists + self.loading.capacity() * std::mem::size_of::<Loaded>()
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
        prop_oneof![
            6 => (addr.clone(), slot.clone(), any::<u32>())
                .prop_map(|(addr, slot, o)| Op::Insert { addr, slot, offset: u64::from(o) }),
            3 => (addr.clone(), slot.clone(), any::<u32>())
                .prop_map(|(addr, slot, o)| Op::Load { addr, slot, offset: u64::from(o) }),
            1 => Just(Op::FinishLoad),
            2 => (addr.clone(), slot.clone(), any::<u32>())
                .prop_map(|(addr, slot, o)| Op::Relocate { addr, slot, offset: u64::from(o) }),
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
    fn a_loaded_index_is_one_run_of_24_bytes_per_single_version_block() {
        let mut index = BlockIndex::default();
        for addr in (0..100_000u64).rev() {
            index.load(addr * 7, version(0, addr));
        }
        index.finish_load();
        assert!(index.recent.is_empty() && index.loading.capacity() == 0);
        assert_eq!(index.mapped_blocks(), 100_000);
        assert_eq!(index.heap_bytes(), 100_000 * 24 + 4);
        assert_eq!(index.lookup(7 * 500, |_| true), Some(version(0, 500)));
        assert_eq!(index.lookup(7 * 500 + 1, |_| true), None);
    }
}
