//! A partition's list of records, kept small: the store holds one entry per record of every
//! partition for its whole life (the cursor, `locate` and copy streams walk them), and a log of
//! single-block writes has more records than mapped blocks.
//!
//! Records are stored in groups of [`GROUP`]: the first whole (16 bytes), the others as the
//! differences from their predecessor (offset: the previous record's length; first sequence
//! number: its entry count), each a LEB128 variable-length integer, usually 3 bytes a record
//! in all. Reading record `i` decodes at most `GROUP - 1` differences; a walk decodes each once.

/// Where one record starts in its partition's segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct RecordRef {
    pub offset: u64,
    pub first_seq: u64,
}

/// Records per group: one whole record and the differences of the rest.
const GROUP: usize = 32;

/// One group's first record and where the differences of its other records start.
#[derive(Debug, Clone, Copy)]
struct Group {
    first: RecordRef,
    deltas_at: usize,
}

/// The records of one partition, in segment order (offsets and first sequence numbers
/// increasing).
#[derive(Debug, Default, Clone)]
pub(super) struct RecordList {
    groups: Vec<Group>,
    deltas: Vec<u8>,
    len: usize,
    last: Option<RecordRef>,
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// Decodes the variable-length integer at `*at`, moving `*at` past it. Only this module writes
/// `deltas`, so every integer is whole; a short one would decode as its bytes so far.
fn take_varint(bytes: &[u8], at: &mut usize) -> u64 {
    let mut value = 0u64;
    let mut shift = 0;
    while let Some(&byte) = bytes.get(*at) {
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 || shift >= 63 {
            break;
        }
        shift += 7;
    }
    value
}

impl RecordList {
    /// Appends the record after the last one. Differences are taken with wrapping arithmetic,
    /// so that even out-of-order records (which the store's checks refuse before) round-trip.
    pub fn push(&mut self, record: RecordRef) {
        match self.last {
            Some(last) if !self.len.is_multiple_of(GROUP) => {
                put_varint(&mut self.deltas, record.offset.wrapping_sub(last.offset));
                put_varint(
                    &mut self.deltas,
                    record.first_seq.wrapping_sub(last.first_seq),
                );
            }
            _ => self.groups.push(Group {
                first: record,
                deltas_at: self.deltas.len(),
            }),
        }
        self.len += 1;
        self.last = Some(record);
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every record.
    pub fn clear(&mut self) {
        *self = RecordList::default();
    }

    /// Makes room for `more` records (about three bytes each).
    pub fn reserve(&mut self, more: usize) {
        self.groups.reserve(more.div_ceil(GROUP));
        self.deltas.reserve(more * 3);
    }

    /// Frees what the list does not use.
    pub fn shrink_to_fit(&mut self) {
        self.groups.shrink_to_fit();
        self.deltas.shrink_to_fit();
    }

    /// Record `i`.
    pub fn get(&self, i: usize) -> Option<RecordRef> {
        if i >= self.len {
            return None;
        }
        self.group_iter(i / GROUP).nth(i % GROUP)
    }

    /// Every record, in order.
    pub fn iter(&self) -> impl Iterator<Item = RecordRef> + '_ {
        self.iter_from(0).map(|(_, r)| r)
    }

    /// The records from number `first` on, with their numbers (decoding starts at `first`'s
    /// group, not at the beginning).
    pub fn iter_from(&self, first: usize) -> impl Iterator<Item = (usize, RecordRef)> + '_ {
        let group = first / GROUP;
        (group..self.groups.len())
            .flat_map(move |g| self.group_iter(g))
            .enumerate()
            .map(move |(i, r)| (group * GROUP + i, r))
            .skip(first % GROUP)
    }

    /// The records of group `g`.
    fn group_iter(&self, g: usize) -> impl Iterator<Item = RecordRef> + '_ {
        let group = self.groups[g];
        let count = (self.len - g * GROUP).min(GROUP);
        let mut at = group.deltas_at;
        let mut current = group.first;
        (0..count).map(move |k| {
            if k > 0 {
                current.offset = current
                    .offset
                    .wrapping_add(take_varint(&self.deltas, &mut at));
                current.first_seq = current
                    .first_seq
                    .wrapping_add(take_varint(&self.deltas, &mut at));
            }
            current
        })
    }

    /// How many records come before the first one for which `before` is false (the list is
    /// partitioned by it, as by `slice::partition_point`).
    pub fn partition_point(&self, before: impl Fn(&RecordRef) -> bool) -> usize {
        // The groups whose first record satisfies `before`, then within the last of them.
        let g = self.groups.partition_point(|group| before(&group.first));
        if g == 0 {
            return 0;
        }
        let within = self.group_iter(g - 1).take_while(|r| before(r)).count();
        (g - 1) * GROUP + within
    }

    /// The record that starts at `offset`, if one does.
    pub fn at_offset(&self, offset: u64) -> Option<RecordRef> {
        let i = self.partition_point(|r| r.offset < offset);
        self.get(i).filter(|r| r.offset == offset)
    }

    /// Heap bytes held.
    #[cfg(test)]
    fn heap_bytes(&self) -> usize {
        self.groups.capacity() * std::mem::size_of::<Group>() + self.deltas.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The list gives back what was pushed: by index, by walk, by search.
        #[test]
        fn the_list_returns_what_was_pushed(
            steps in proptest::collection::vec((1..20_000_000u64, 1..70_000u64), 0..200),
            start in (0..1u64 << 40, 0..1u64 << 61),
        ) {
            let mut records = Vec::new();
            let (mut offset, mut seq) = start;
            for (len, entries) in steps {
                records.push(RecordRef { offset, first_seq: seq });
                offset += len;
                seq += entries;
            }
            let mut list = RecordList::default();
            for &r in &records {
                list.push(r);
            }
            prop_assert_eq!(list.len(), records.len());
            prop_assert_eq!(list.iter().collect::<Vec<_>>(), records.clone());
            for first in [0, 1, 31, 32, 33, records.len() / 2, records.len()] {
                let tail: Vec<(usize, RecordRef)> = records.iter().copied().enumerate().skip(first).collect();
                prop_assert_eq!(list.iter_from(first).collect::<Vec<_>>(), tail);
            }
            for (i, &r) in records.iter().enumerate() {
                prop_assert_eq!(list.get(i), Some(r));
                prop_assert_eq!(list.at_offset(r.offset), Some(r));
                prop_assert_eq!(list.at_offset(r.offset + 1), None);
                let by_seq = list.partition_point(|x| x.first_seq <= r.first_seq);
                prop_assert_eq!(by_seq, i + 1);
                let by_offset = list.partition_point(|x| x.offset < r.offset);
                prop_assert_eq!(by_offset, i);
            }
            prop_assert_eq!(list.get(records.len()), None);
        }
    }

    #[test]
    fn out_of_order_and_extreme_values_round_trip() {
        let records = [
            RecordRef {
                offset: u64::MAX,
                first_seq: 0,
            },
            RecordRef {
                offset: 0,
                first_seq: u64::MAX,
            },
            RecordRef {
                offset: 5,
                first_seq: 1 << 62,
            },
        ];
        let mut list = RecordList::default();
        for r in records {
            list.push(r);
        }
        assert_eq!(list.iter().collect::<Vec<_>>(), records);
    }

    #[test]
    fn single_block_records_take_about_four_bytes_each() {
        let mut list = RecordList::default();
        for i in 0..100_000u64 {
            list.push(RecordRef {
                offset: i * 4_200,
                first_seq: 1_000 + i,
            });
        }
        list.shrink_to_fit();
        let per_record = list.heap_bytes() as f64 / 100_000.0;
        assert!(per_record < 4.0, "{per_record} bytes a record");
    }
}
