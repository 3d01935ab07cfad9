//! Sorting by integer keys through a single instantiation of the standard library's sort.
//!
//! Every `sort_unstable_by_key` with its own element type or key is its own copy of the sort
//! (about 4 KiB of WebAssembly, 1 KiB gzipped, which compresses poorly); the engine sorted in
//! seven places. They all go through [`order_by`] instead, which sorts one type, `(u64, u64, u64)`.

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

/// `values` in ascending order.
pub(crate) fn sort_u64s(values: &mut Vec<u64>) {
    let order = order_by(values.len(), |i| (values[i], 0));
    *values = order.into_iter().map(|i| values[i]).collect();
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

        let mut values = vec![5, u64::MAX, 0, 5, 2];
        sort_u64s(&mut values);
        assert_eq!(values, [0, 2, 5, 5, u64::MAX]);
    }
}
