//! The index's sorted run: every indexed address in ascending order with its versions, in
//! three flat arrays (no per-address allocation, no hash-table slack).
//!
//! A version is kept in 12 bytes when it fits ([`Packed`]: the CRC, then the slot in 24 bits,
//! the zero flag and the segment offset in 39 bits), which every version of a store with fewer
//! than 2^24 partitions created since open and segments under 512 GiB does. A run holding a
//! version that does not fit keeps all its versions whole (16 bytes) instead: nothing is
//! refused, only the memory grows.

use super::{Version, ZERO_VERSION};

/// Bits of the packed slot.
const SLOT_BITS: u32 = 24;
/// Bits of the packed offset (the zero flag sits just above them).
const OFFSET_BITS: u32 = 39;
const OFFSET_MASK: u64 = (1 << OFFSET_BITS) - 1;

/// A version in 12 bytes (alignment 4, so that an array of them has no padding).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Packed([u32; 3]);

impl Packed {
    fn new(v: Version) -> Option<Packed> {
        let offset = v.offset & !ZERO_VERSION;
        if v.slot >= 1 << SLOT_BITS || offset > OFFSET_MASK {
            return None;
        }
        let word = (u64::from(v.slot) << (OFFSET_BITS + 1))
            | (u64::from(v.is_zero()) << OFFSET_BITS)
            | offset;
        Some(Packed([v.crc, word as u32, (word >> 32) as u32]))
    }

    fn version(self) -> Version {
        let word = u64::from(self.0[1]) | (u64::from(self.0[2]) << 32);
        let zero = if word >> OFFSET_BITS & 1 == 1 {
            ZERO_VERSION
        } else {
            0
        };
        Version {
            slot: (word >> (OFFSET_BITS + 1)) as u32,
            crc: self.0[0],
            offset: (word & OFFSET_MASK) | zero,
        }
    }
}

/// The versions of a run, packed while every one fits.
#[derive(Debug)]
enum Versions {
    Packed(Vec<Packed>),
    Whole(Vec<Version>),
}

impl Default for Versions {
    fn default() -> Self {
        Versions::Packed(Vec::new())
    }
}

impl Versions {
    fn len(&self) -> usize {
        match self {
            Versions::Packed(list) => list.len(),
            Versions::Whole(list) => list.len(),
        }
    }

    fn get(&self, i: usize) -> Version {
        match self {
            Versions::Packed(list) => list[i].version(),
            Versions::Whole(list) => list[i],
        }
    }

    /// Switches to whole versions (one did not fit).
    fn widen(&mut self) {
        if let Versions::Packed(list) = self {
            let mut whole = Vec::with_capacity(list.capacity());
            whole.extend(list.iter().map(|p| p.version()));
            *self = Versions::Whole(whole);
        }
    }

    fn push(&mut self, v: Version) {
        match self {
            Versions::Packed(list) => match Packed::new(v) {
                Some(p) => list.push(p),
                None => {
                    self.widen();
                    self.push(v);
                }
            },
            Versions::Whole(list) => list.push(v),
        }
    }

    fn set(&mut self, i: usize, v: Version) {
        match self {
            Versions::Packed(list) => match Packed::new(v) {
                Some(p) => list[i] = p,
                None => {
                    self.widen();
                    self.set(i, v);
                }
            },
            Versions::Whole(list) => list[i] = v,
        }
    }

    fn truncate(&mut self, len: usize) {
        match self {
            Versions::Packed(list) => list.truncate(len),
            Versions::Whole(list) => list.truncate(len),
        }
    }

    fn shrink_to_fit(&mut self) {
        match self {
            Versions::Packed(list) => list.shrink_to_fit(),
            Versions::Whole(list) => list.shrink_to_fit(),
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Versions::Packed(list) => list.capacity() * std::mem::size_of::<Packed>(),
            Versions::Whole(list) => list.capacity() * std::mem::size_of::<Version>(),
        }
    }
}

/// The versions of one address, wherever they are kept.
#[derive(Debug, Clone, Copy)]
pub(super) enum List<'a> {
    Slice(&'a [Version]),
    Run(&'a Run, usize, usize),
}

impl<'a> List<'a> {
    pub const EMPTY: List<'static> = List::Slice(&[]);

    pub fn len(&self) -> usize {
        match self {
            List::Slice(list) => list.len(),
            List::Run(_, begin, end) => end - begin,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Version `i` (oldest first); `i < len()`.
    pub fn get(&self, i: usize) -> Version {
        match self {
            List::Slice(list) => list[i],
            List::Run(run, begin, _) => run.versions.get(begin + i),
        }
    }

    /// The versions, oldest first.
    pub fn iter(self) -> impl DoubleEndedIterator<Item = Version> + ExactSizeIterator + 'a {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// How many versions come before the first for which `before` is false (binary search,
    /// as `slice::partition_point`).
    pub fn partition_point(&self, before: impl Fn(Version) -> bool) -> usize {
        let (mut lo, mut hi) = (0, self.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if before(self.get(mid)) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    #[cfg(test)]
    pub fn to_vec(self) -> Vec<Version> {
        match self {
            List::Slice(list) => list.to_vec(),
            List::Run(..) => self.iter().collect(),
        }
    }
}

/// The sorted run.
#[derive(Debug, Default)]
pub(super) struct Run {
    /// Addresses, ascending.
    addrs: Vec<u32>,
    /// The versions of `addrs[i]` are `versions[starts[i]..starts[i + 1]]`, oldest first.
    starts: Vec<u32>,
    versions: Versions,
}

impl Run {
    /// Number of addresses.
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    /// Number of versions.
    pub fn versions_len(&self) -> usize {
        self.versions.len()
    }

    /// The largest address, if any.
    pub fn last_addr(&self) -> Option<u32> {
        self.addrs.last().copied()
    }

    /// The versions of `addr`.
    pub fn find(&self, addr: u32) -> List<'_> {
        if self.last_addr().is_none_or(|last| addr > last) {
            // Past the end: what a volume being filled in order asks for every block.
            return List::EMPTY;
        }
        match self.addrs.binary_search(&addr) {
            Ok(i) => self.entry(i).1,
            Err(_) => List::EMPTY,
        }
    }

    /// Address `i` and its versions.
    pub fn entry(&self, i: usize) -> (u32, List<'_>) {
        (
            self.addrs[i],
            List::Run(self, self.starts[i] as usize, self.starts[i + 1] as usize),
        )
    }

    /// Every address and its versions, ascending.
    pub fn entries(&self) -> impl Iterator<Item = (u32, List<'_>)> {
        (0..self.len()).map(|i| self.entry(i))
    }

    /// Appends `addr`, above every address of the run, with `list` (nothing when it is empty),
    /// in place: the arrays grow by doubling, so a volume filled in order is indexed in
    /// amortized constant time per block, not by rebuilding the run.
    pub fn append(&mut self, addr: u32, list: List<'_>) {
        debug_assert!(self.last_addr().is_none_or(|last| addr > last));
        if list.is_empty() {
            return;
        }
        if self.starts.is_empty() {
            self.starts.push(0);
        }
        self.addrs.push(addr);
        for v in list.iter() {
            self.versions.push(v);
        }
        self.starts.push(self.versions.len() as u32);
    }

    /// Removes every version in `slot`, in place; returns how many addresses were left with
    /// none (and so left the run).
    pub fn remove_slot(&mut self, slot: u32) -> usize {
        let (mut kept_addrs, mut kept_versions, mut begin) = (0, 0, 0);
        for i in 0..self.addrs.len() {
            let end = self.starts[i + 1] as usize;
            let first = kept_versions;
            for j in begin..end {
                let v = self.versions.get(j);
                if v.slot != slot {
                    self.versions.set(kept_versions, v);
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
        let gone = self.addrs.len() - kept_addrs;
        self.addrs.truncate(kept_addrs);
        self.starts.truncate(kept_addrs + 1);
        self.versions.truncate(kept_versions);
        gone
    }

    pub fn heap_bytes(&self) -> usize {
        (self.addrs.capacity() + self.starts.capacity()) * 4 + self.versions.heap_bytes()
    }

    /// True when every version is kept in 12 bytes.
    #[cfg(test)]
    pub fn is_packed(&self) -> bool {
        matches!(self.versions, Versions::Packed(_))
    }
}

/// A run being built, address by address in ascending order.
pub(super) struct RunBuilder {
    run: Run,
}

impl RunBuilder {
    pub fn with_capacity(addrs: usize, versions: usize) -> RunBuilder {
        let mut starts = Vec::with_capacity(addrs + 1);
        starts.push(0);
        RunBuilder {
            run: Run {
                addrs: Vec::with_capacity(addrs),
                starts,
                versions: Versions::Packed(Vec::with_capacity(versions)),
            },
        }
    }

    /// Appends `version` as the newest of `addr` (at or after the last address pushed); a
    /// version of the same partition as the address's newest replaces it.
    pub fn push(&mut self, addr: u32, version: Version) {
        let run = &mut self.run;
        let len = run.versions.len();
        if run.addrs.last() == Some(&addr) {
            if run.versions.get(len - 1).slot == version.slot {
                run.versions.set(len - 1, version);
                return;
            }
            run.versions.push(version);
            if let Some(last) = run.starts.last_mut() {
                *last = len as u32 + 1;
            }
        } else {
            debug_assert!(run.addrs.last().is_none_or(|&a| a < addr));
            run.addrs.push(addr);
            run.versions.push(version);
            run.starts.push(len as u32 + 1);
        }
    }

    /// Appends `addr` with `list`, its whole list (nothing when it is empty).
    pub fn extend(&mut self, addr: u32, list: List<'_>) {
        if !list.is_empty() {
            let run = &mut self.run;
            run.addrs.push(addr);
            for v in list.iter() {
                run.versions.push(v);
            }
            run.starts.push(run.versions.len() as u32);
        }
    }

    /// Addresses pushed so far.
    pub fn len(&self) -> usize {
        self.run.addrs.len()
    }

    /// The run, trimmed to size.
    pub fn finish(mut self) -> Run {
        self.run.addrs.shrink_to_fit();
        self.run.starts.shrink_to_fit();
        self.run.versions.shrink_to_fit();
        self.run
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Packing keeps every field of a version that fits, and refuses one that does not.
        #[test]
        fn packing_round_trips_or_refuses(slot in any::<u32>(), crc in any::<u32>(), offset in any::<u64>()) {
            let v = Version { slot, crc, offset };
            let fits = slot < 1 << SLOT_BITS && offset & !ZERO_VERSION <= OFFSET_MASK;
            match Packed::new(v) {
                Some(p) => {
                    prop_assert!(fits);
                    prop_assert_eq!(p.version(), v);
                }
                None => prop_assert!(!fits),
            }
        }
    }

    #[test]
    fn a_version_that_does_not_fit_widens_the_run_and_keeps_the_others() {
        let small = |slot| Version {
            slot,
            crc: 7,
            offset: 4096 * u64::from(slot),
        };
        let big = Version {
            slot: 1 << SLOT_BITS,
            crc: 9,
            offset: 1 << 45,
        };
        let mut b = RunBuilder::with_capacity(3, 3);
        b.push(1, small(1));
        b.push(1, small(2));
        b.push(5, big);
        b.push(
            9,
            Version {
                offset: ZERO_VERSION | 77,
                ..small(3)
            },
        );
        let run = b.finish();
        assert!(!run.is_packed());
        assert_eq!(run.find(1).to_vec(), vec![small(1), small(2)]);
        assert_eq!(run.find(5).to_vec(), vec![big]);
        assert!(run.find(9).get(0).is_zero());
        assert!(run.find(4).is_empty());
    }
}
