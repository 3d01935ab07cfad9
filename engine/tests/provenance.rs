//! Provenance queries (`Store::locate`, `Store::block_map`): one scenario per test, each checking
//! that what the query says serves a block is what a read of that volume returns.

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::{CreateOptions, Error, Origin, Store, VolumeId};

const BS: usize = 512;
const BLOCKS: u64 = 32;

fn block(fill: u8) -> Vec<u8> {
    vec![fill; BS]
}

fn new_store(blocks: u64) -> Store<MemoryStorage> {
    block_on(Store::create(
        MemoryStorage::new(),
        CreateOptions::new(blocks).block_size(BS as u32),
        Rc::new(ManualClock::new(1_000)),
    ))
    .unwrap()
}

fn partition(volume: u64) -> Origin {
    Origin::Partition {
        volume: VolumeId(volume),
        deleted: false,
    }
}

fn origins(store: &Store<MemoryStorage>, volume: VolumeId) -> Vec<Origin> {
    store
        .locate(volume, 0, BLOCKS)
        .unwrap()
        .iter()
        .map(|p| p.origin)
        .collect()
}

#[test]
fn a_fresh_store_is_all_zero_baseline() {
    let store = new_store(BLOCKS);
    let head = store.head();
    assert!(origins(&store, head).iter().all(|o| *o == Origin::Zero));
    let map = store.block_map(head, 4).unwrap();
    assert_eq!(map.len(), 4);
    assert!(map
        .iter()
        .all(|b| b.origin == Origin::Zero && b.log_blocks == 0));
    assert_eq!(map.iter().map(|b| b.blocks).sum::<u64>(), BLOCKS);
}

#[test]
fn each_volume_sees_the_partition_that_last_wrote_a_block_in_its_ancestry() {
    let mut store = block_on(async {
        let mut store = new_store(BLOCKS);
        store.write(3, &block(1)).await.unwrap();
        store
    });
    let first = block_on(store.snapshot(Some("first"))).unwrap();
    let seq = block_on(store.write(3, &block(2))).unwrap();
    block_on(store.write(5, &block(3))).unwrap();
    let head = store.head();

    let at_first = store.locate(first, 3, 3).unwrap();
    assert_eq!(at_first[0].origin, partition(first.0));
    assert_eq!(at_first[1].origin, Origin::Zero);
    assert_eq!(at_first[2].origin, Origin::Zero);
    assert_eq!(at_first[0].created_ms, Some(1_000));
    assert!(at_first[0].sealed_ms.is_some());

    let at_head = store.locate(head, 3, 3).unwrap();
    assert_eq!(at_head[0].origin, partition(head.0));
    assert_eq!(at_head[0].record_seq, Some(seq));
    assert_eq!(at_head[2].origin, partition(head.0));
    assert_eq!(at_head[0].sealed_ms, None);
    // The baseline volume reads only the baseline.
    assert!(origins(&store, VolumeId::BASELINE)
        .iter()
        .all(|o| *o == Origin::Zero));
    // What locate says matches what a read returns.
    assert_eq!(block_on(store.read_at(first, 3, 1)).unwrap(), block(1));
    assert_eq!(block_on(store.read_at(head, 3, 1)).unwrap(), block(2));
}

#[test]
fn one_bucket_per_block_is_the_exact_map() {
    let mut store = new_store(BLOCKS);
    block_on(store.write(0, &[block(7), block(7)].concat())).unwrap();
    let snap = block_on(store.snapshot(None)).unwrap();
    block_on(store.write(1, &block(8))).unwrap();
    let head = store.head();
    let map = store.block_map(head, BLOCKS).unwrap();
    assert_eq!(map.len(), BLOCKS as usize);
    let exact = origins(&store, head);
    for (bucket, origin) in map.iter().zip(&exact) {
        assert_eq!(bucket.blocks, 1);
        assert_eq!(bucket.origin, *origin);
    }
    assert_eq!(map[0].origin, partition(snap.0));
    assert_eq!(map[1].origin, partition(head.0));
}

#[test]
fn buckets_report_the_majority_origin_and_how_many_blocks_come_from_the_log() {
    let mut store = new_store(BLOCKS);
    // Bucket 0 (blocks 0..8): 5 blocks written; bucket 1 (8..16): 1 block.
    block_on(store.write(0, &vec![9; BS * 5])).unwrap();
    block_on(store.write(8, &block(9))).unwrap();
    let head = store.head();
    let map = store.block_map(head, 4).unwrap();
    assert_eq!((map[0].first_addr, map[0].blocks), (0, 8));
    assert_eq!(map[0].origin, partition(head.0));
    assert_eq!(map[0].log_blocks, 5);
    assert_eq!(map[0].origins, 2);
    assert_eq!(map[1].origin, Origin::Zero);
    assert_eq!(map[1].log_blocks, 1);
    assert_eq!(map[3].origins, 1);
}

#[test]
fn a_million_blocks_map_into_a_bounded_number_of_buckets() {
    let mut store = new_store(1_000_000);
    block_on(store.write(999_999, &block(1))).unwrap();
    let map = store.block_map(store.head(), 1_000).unwrap();
    assert_eq!(map.len(), 1_000);
    assert_eq!(map.iter().map(|b| b.blocks).sum::<u64>(), 1_000_000);
    assert_eq!(map[999].log_blocks, 1);
    assert_eq!(map[999].first_addr + map[999].blocks, 1_000_000);
    // More buckets than blocks: one per block.
    let small = new_store(10);
    assert_eq!(small.block_map(small.head(), 1_000).unwrap().len(), 10);
}

#[test]
fn merged_blocks_come_from_the_baseline_image() {
    let mut store = new_store(BLOCKS);
    block_on(store.write(4, &block(4))).unwrap();
    let snap = block_on(store.snapshot(None)).unwrap();
    block_on(store.merge(snap, &mut |_| true)).unwrap();
    let located = store.locate(store.head(), 4, 1).unwrap();
    assert_eq!(located[0].origin, Origin::Baseline);
    assert_eq!(block_on(store.read(4, 1)).unwrap(), block(4));
}

#[test]
fn a_deleted_volume_still_serving_a_descendant_is_marked_deleted() {
    let mut store = new_store(BLOCKS);
    block_on(store.write(2, &block(2))).unwrap();
    let snap = block_on(store.snapshot(None)).unwrap();
    block_on(store.write(9, &block(9))).unwrap();
    block_on(store.delete_volume(snap)).unwrap();
    let located = store.locate(store.head(), 2, 1).unwrap();
    assert!(matches!(
        located[0].origin,
        Origin::Partition { volume, deleted: true } if volume == snap
    ));
    assert_eq!(block_on(store.read(2, 1)).unwrap(), block(2));
}

#[test]
fn bad_arguments_are_typed_errors() {
    let store = new_store(BLOCKS);
    assert!(matches!(
        store.locate(store.head(), BLOCKS, 1),
        Err(Error::BlockOutOfRange { .. })
    ));
    assert!(matches!(
        store.locate(VolumeId(77), 0, 1),
        Err(Error::UnknownVolume(VolumeId(77)))
    ));
    assert!(matches!(
        store.block_map(store.head(), 0),
        Err(Error::InvalidArgument(_))
    ));
    assert!(matches!(
        store.block_map(VolumeId(77), 4),
        Err(Error::UnknownVolume(_))
    ));
}
