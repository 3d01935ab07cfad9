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
    /// Byte offset of the block's data in the partition's segment.
    pub offset: u64,
}

#[derive(Debug, Clone)]
enum Versions {
    One(Version),
    /// Boxed slice rather than `Vec`: a block gains versions rarely, and this keeps the enum at
    /// 24 bytes.
    Many(Box<[Version]>),
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
