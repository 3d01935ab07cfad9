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

#[derive(Debug, Clone)]
enum Versions {
    One(Version),
    /// Boxed slice rather than `Vec`: a block gains versions rarely, and this keeps the enum at
    /// 24 bytes.
    Many(Box<[Version]>),
}

impl Versions {
    fn slots(&self) -> impl Iterator<Item = u32> + '_ {
        let list: &[Version] = match self {
            Versions::One(v) => std::slice::from_ref(v),
            Versions::Many(list) => list,
        };
        list.iter().map(|v| v.slot)
    }
}

/// Block address to versions.
#[derive(Debug, Default)]
pub(crate) struct BlockIndex {
    map: FxHashMap<u64, Versions>,
}

impl BlockIndex {
    /// Records that `version` is the newest write of `addr`.
    pub fn insert(&mut self, addr: u64, version: Version) {
        match self.map.get_mut(&addr) {
            None => {
                self.map.insert(addr, Versions::One(version));
            }
            Some(Versions::One(existing)) => {
                if existing.slot == version.slot {
                    *existing = version;
                } else {
                    let previous = *existing;
                    self.map
                        .insert(addr, Versions::Many(Box::new([previous, version])));
                }
            }
            Some(Versions::Many(list)) => match list.last_mut() {
                Some(last) if last.slot == version.slot => *last = version,
                _ => {
                    let mut grown = Vec::with_capacity(list.len() + 1);
                    grown.extend_from_slice(list);
                    grown.push(version);
                    *list = grown.into_boxed_slice();
                }
            },
        }
    }

    /// The newest version of `addr` whose partition satisfies `visible`.
    pub fn lookup(&self, addr: u64, visible: impl Fn(u32) -> bool) -> Option<Version> {
        match self.map.get(&addr)? {
            Versions::One(v) => visible(v.slot).then_some(*v),
            Versions::Many(list) => list.iter().rev().find(|v| visible(v.slot)).copied(),
        }
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
        match self.map.get(&addr)? {
            Versions::One(v) => visible(v.slot).then_some(*v),
            Versions::Many(list) => {
                debug_assert!(
                    list.windows(2)
                        .all(|w| first_seq(w[0].slot) <= first_seq(w[1].slot)),
                    "the versions of block {addr} are not in sequence order"
                );
                let end = list.partition_point(|v| first_seq(v.slot) <= limit);
                list[..end].iter().rev().find(|v| visible(v.slot)).copied()
            }
        }
    }

    /// Moves the version of `addr` in `slot` to `offset` (compaction rewrote it).
    pub fn relocate(&mut self, addr: u64, slot: u32, offset: u64) {
        let list: &mut [Version] = match self.map.get_mut(&addr) {
            Some(Versions::One(v)) => std::slice::from_mut(v),
            Some(Versions::Many(list)) => list,
            None => return,
        };
        for v in list.iter_mut().filter(|v| v.slot == slot) {
            v.offset = offset;
        }
    }

    /// Removes the version of `addr` in `slot`, if any.
    pub fn remove(&mut self, addr: u64, slot: u32) {
        let keep: Vec<Version> = match self.map.get(&addr) {
            Some(Versions::One(v)) if v.slot == slot => Vec::new(),
            Some(Versions::Many(list)) => list.iter().copied().filter(|v| v.slot != slot).collect(),
            _ => return,
        };
        match keep.len() {
            0 => {
                self.map.remove(&addr);
            }
            1 => {
                self.map.insert(addr, Versions::One(keep[0]));
            }
            _ => {
                self.map
                    .insert(addr, Versions::Many(keep.into_boxed_slice()));
            }
        }
    }

    /// Removes every version in `slot`.
    pub fn remove_slot(&mut self, slot: u32) {
        let addrs: Vec<u64> = self
            .map
            .iter()
            .filter(|(_, v)| v.slots().any(|s| s == slot))
            .map(|(a, _)| *a)
            .collect();
        for addr in addrs {
            self.remove(addr, slot);
        }
    }

    /// Calls `f` with every address and its versions (oldest first), in no particular order.
    pub fn for_each(&self, mut f: impl FnMut(u64, &[Version])) {
        for (addr, versions) in &self.map {
            match versions {
                Versions::One(v) => f(*addr, std::slice::from_ref(v)),
                Versions::Many(list) => f(*addr, list),
            }
        }
    }

    /// Number of addresses with at least one version.
    pub fn mapped_blocks(&self) -> usize {
        self.map.len()
    }

    /// Approximate heap bytes used by the index.
    pub fn heap_bytes(&self) -> usize {
        let entry = std::mem::size_of::<(u64, Versions)>() + 1;
        let table = self.map.capacity() * entry;
        let lists: usize = self
            .map
            .values()
            .map(|v| match v {
                Versions::One(_) => 0,
                Versions::Many(list) => std::mem::size_of_val(&**list),
            })
            .sum();
        table + lists
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
