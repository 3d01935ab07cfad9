//! Sorting by integer keys through a single instantiation of the standard library's sort.
//!
//! Every `sort_unstable_by_key` with its own element type or key is its own copy of the sort
//! (about 4 KiB of WebAssembly, 1 KiB gzipped, which compresses poorly); the engine sorted in
//! seven places. They all go through this module instead, which sorts one type,
//! `(u64, u64, u64)`: [`order_by`] for a permutation, [`sort_triples`] in place where the data
//! fits three words (the merge's block list: no second copy of a list that can hold millions).

/// The positions `0..len` in the order of `key(position)`, equal keys in position order: the
/// order a stable sort by `key` gives.
pub(crate) fn order_by(len: usize, key: impl Fn(usize) -> (u64, u64)) -> Vec<usize> {
    let mut keyed: Vec<(u64, u64, u64)> = (0..len)
        .map(|i| {
            let (a, b) = key(i);
            (a, b, i as u64)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, i)| i as usize).collect()
}

/// Sorts `triples` in place, ascending.
pub(crate) fn sort_triples(triples: &mut [(u64, u64, u64)]) {
    triples.sort_unstable();
}

/// Contiguous runs `(first, count)` of sorted block addresses.
pub(crate) fn runs(addrs: impl IntoIterator<Item = u64>) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for a in addrs {
        match out.last_mut() {
            Some((first, n)) if *first + *n == a => *n += 1,
            _ => out.push((a, 1)),
        }
    }
    out
}

/// `values` in ascending order (a temporary copy of three words per value).
pub(crate) fn sort_u64s(values: &mut [u64]) {
    let mut keyed: Vec<(u64, u64, u64)> = values.iter().map(|&v| (v, 0, 0)).collect();
    sort_triples(&mut keyed);
    for (slot, (v, _, _)) in values.iter_mut().zip(keyed) {
        *slot = v;
    }
}

/// A set of volume identifiers as a sorted vector: membership by binary search, and no
/// `BTreeSet` instantiation (some 8 KiB of WebAssembly each).
#[derive(Debug, Clone, Default)]
pub(crate) struct IdSet(Vec<u64>);

impl IdSet {
    /// The set of `ids` (in any order, repeats allowed).
    pub(crate) fn from_ids(ids: impl IntoIterator<Item = crate::VolumeId>) -> Self {
        let mut values: Vec<u64> = ids.into_iter().map(|id| id.0).collect();
        sort_u64s(&mut values);
        values.dedup();
        IdSet(values)
    }

    /// Whether `id` is in the set.
    pub(crate) fn contains(&self, id: crate::VolumeId) -> bool {
        self.0.binary_search(&id.0).is_ok()
    }

    /// Adds `id`; false if it was there already.
    pub(crate) fn insert(&mut self, id: crate::VolumeId) -> bool {
        match self.0.binary_search(&id.0) {
            Ok(_) => false,
            Err(at) => {
                self.0.insert(at, id.0);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_like_a_stable_sort_by_key() {
        let items: Vec<(u64, u64, char)> = vec![
            (3, 1, 'a'),
            (1, 9, 'b'),
            (3, 0, 'c'),
            (1, 9, 'd'),
            (0, u64::MAX, 'e'),
            (3, 1, 'f'),
        ];
        let order = order_by(items.len(), |i| (items[i].0, items[i].1));
        let got: String = order.iter().map(|&i| items[i].2).collect();
        let mut stable = items.clone();
        stable.sort_by_key(|&(a, b, _)| (a, b));
        let want: String = stable.iter().map(|x| x.2).collect();
        assert_eq!(got, want);
        assert_eq!(got, "ebdcaf");
        assert!(order_by(0, |_| (0, 0)).is_empty());

        let set = IdSet::from_ids([9, 2, 9, 5].map(crate::VolumeId));
        assert!(set.contains(crate::VolumeId(9)) && set.contains(crate::VolumeId(2)));
        assert!(!set.contains(crate::VolumeId(3)));
        let mut set = set;
        assert!(set.insert(crate::VolumeId(3)) && !set.insert(crate::VolumeId(5)));
        assert_eq!(set.0, vec![2, 3, 5, 9]);

        let mut values = vec![5, u64::MAX, 0, 5, 2];
        sort_u64s(&mut values);
        assert_eq!(values, [0, 2, 5, 5, u64::MAX]);
        let mut triples = vec![(2, 0, 9), (1, 5, 0), (1, 4, 7)];
        sort_triples(&mut triples);
        assert_eq!(triples, [(1, 4, 7), (1, 5, 0), (2, 0, 9)]);
    }
}
