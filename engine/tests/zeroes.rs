//! Zero extents: trim / write-zeroes, all-zero writes, sparse imports and sparse streams. A zero
//! block is metadata (16 bytes per extent), never a block of data: in the log, in compaction, in
//! merges, in copy streams and on disk.

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::storage::dir::DirStorage;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::Storage;
use strata_engine::{
    CreateOptions, CursorStart, SendOptions, Store, StreamReceiver, VolumeId, VolumeKind,
};

mod common;

const BS: usize = 4096;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

fn fill(byte: u8, blocks: usize) -> Vec<u8> {
    vec![byte; blocks * BS]
}

fn new_store(blocks: u64) -> (MemoryStorage, Store<MemoryStorage>) {
    let storage = MemoryStorage::new();
    let store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(blocks),
        clock(),
    ))
    .expect("create");
    (storage, store)
}

/// A new store on `storage` whose baseline is `image`.
fn import<S: Storage>(storage: S, image: &[u8]) -> Store<S> {
    let mut import = block_on(Store::import_baseline(
        storage,
        BS as u32,
        Some(image.len() as u64),
        None,
        clock(),
    ))
    .unwrap();
    block_on(import.push(image)).unwrap();
    block_on(import.finish()).unwrap()
}

fn head_bytes<S: Storage>(store: &Store<S>) -> u64 {
    let head = store.head();
    store
        .volumes()
        .into_iter()
        .find(|v| v.id == head)
        .map(|v| v.bytes)
        .expect("head")
}

#[test]
fn a_trim_reads_as_zeros_costs_metadata_only_and_leaves_snapshots_alone() {
    let (storage, mut store) = new_store(4096);
    block_on(store.write(0, &fill(7, 1000))).unwrap();
    let snap = block_on(store.snapshot(Some("before"))).unwrap();
    let before = head_bytes(&store);
    // 1,000 written blocks and 3,000 never written: only the written ones are recorded.
    let recorded = block_on(store.write_zeroes(0, 4000)).unwrap();
    assert_eq!(recorded, 1000);
    let grew = head_bytes(&store) - before;
    assert!(
        grew <= 128,
        "a trim of 1,000 blocks took {grew} bytes of log"
    );
    assert_eq!(block_on(store.read(0, 1000)).unwrap(), fill(0, 1000));
    assert_eq!(
        block_on(store.read_at(snap, 0, 1000)).unwrap(),
        fill(7, 1000)
    );
    // A second trim of the same range has nothing left to record.
    assert_eq!(block_on(store.write_zeroes(0, 4096)).unwrap(), 0);
    assert_eq!(head_bytes(&store) - before, grew);
    // The provenance says the head serves those blocks as zeros.
    let located = store.locate(store.head(), 0, 2).unwrap();
    assert!(located.iter().all(|p| p.zero), "{located:?}");
    block_on(store.sync()).unwrap();
    drop(store);
    let store = block_on(Store::open(storage, clock())).expect("reopen");
    assert_eq!(block_on(store.read(0, 1000)).unwrap(), fill(0, 1000));
    assert_eq!(
        block_on(store.read_at(snap, 0, 1000)).unwrap(),
        fill(7, 1000)
    );
    assert_eq!(block_on(store.diff(snap, store.head())).unwrap().len(), 1);
}

#[test]
fn an_all_zero_write_is_a_zero_extent_and_the_cursor_says_so() {
    let (_, mut store) = new_store(64);
    let before = head_bytes(&store);
    let seq = block_on(store.write(3, &fill(0, 16))).unwrap();
    assert!(
        head_bytes(&store) - before < BS as u64,
        "16 zero blocks stored as data"
    );
    block_on(store.write(20, &fill(1, 1))).unwrap();
    let mut cursor = store.cursor(CursorStart::Seq(seq)).unwrap();
    let zero = block_on(store.next_entry(&mut cursor, true))
        .unwrap()
        .unwrap();
    assert!(zero.zero && zero.data.is_none() && zero.addr == 3 && zero.blocks == 16);
    let data = block_on(store.next_entry(&mut cursor, true))
        .unwrap()
        .unwrap();
    assert!(!data.zero && data.data.as_deref() == Some(&fill(1, 1)[..]));
    // A mixed batch keeps the zero entry as an extent and the other as data, in one record.
    block_on(store.write(5, &fill(9, 1))).unwrap();
    block_on(store.write_batch(&[(5, &fill(0, 1)), (6, &fill(2, 1))])).unwrap();
    assert_eq!(
        block_on(store.read(5, 2)).unwrap(),
        [fill(0, 1), fill(2, 1)].concat()
    );
}

#[test]
fn compaction_and_delete_free_the_data_a_trim_hides() {
    let (storage, mut store) = new_store(4096);
    block_on(store.write(0, &fill(5, 2048))).unwrap();
    let old = block_on(store.snapshot(None)).unwrap();
    block_on(store.write_zeroes(0, 2048)).unwrap();
    let trimmed = block_on(store.snapshot(None)).unwrap();
    let before: u64 = store.volumes().iter().map(|v| v.bytes).sum();
    assert!(before > 8 << 20, "{before}");
    // With the old snapshot deleted, nothing reads its data: it goes.
    block_on(store.delete_volume(old)).unwrap();
    let after: u64 = store.volumes().iter().map(|v| v.bytes).sum();
    let space: u64 = store.space().iter().map(|s| s.total_bytes).sum();
    assert!(
        space < 64 << 10,
        "{space} bytes left after the trimmed data was freed"
    );
    assert!(after < before);
    // Compacting the trimmed snapshot twice keeps its extent and finds nothing more to do.
    let first = block_on(store.compact(trimmed, &mut |_| true)).unwrap();
    let second = block_on(store.compact(trimmed, &mut |_| true)).unwrap();
    assert_eq!(second.blocks_dropped, 0, "{first:?} then {second:?}");
    assert_eq!(block_on(store.read(0, 2048)).unwrap(), fill(0, 2048));
    drop(store);
    let mut store = block_on(Store::open(storage, clock())).unwrap();
    assert_eq!(
        block_on(store.read_at(trimmed, 0, 2048)).unwrap(),
        fill(0, 2048)
    );
    // A merge folds the extent into the baseline: zeros there too.
    block_on(store.merge(trimmed, &mut |_| true)).unwrap();
    assert_eq!(block_on(store.read(0, 2048)).unwrap(), fill(0, 2048));
    assert_eq!(
        block_on(store.read_at(VolumeId::BASELINE, 0, 2048)).unwrap(),
        fill(0, 2048)
    );
}

#[test]
fn a_trim_over_an_image_baseline_records_only_its_nonzero_blocks() {
    let storage = MemoryStorage::new();
    // 256 blocks: the first 16 hold data, the rest are zeros.
    let mut image = fill(0, 256);
    image[..16 * BS].fill(3);
    let mut store = import(storage, &image);
    assert_eq!(block_on(store.read(0, 256)).unwrap(), image);
    assert_eq!(block_on(store.write_zeroes(8, 100)).unwrap(), 8);
    let mut expected = image.clone();
    expected[8 * BS..108 * BS].fill(0);
    assert_eq!(block_on(store.read(0, 256)).unwrap(), expected);
    assert_eq!(
        block_on(store.read_at(VolumeId::BASELINE, 0, 256)).unwrap(),
        image
    );
}

/// Bytes a file takes on disk (`st_blocks` is in 512-byte units).
#[cfg(unix)]
fn allocated(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().blocks() * 512
}

#[cfg(unix)]
#[test]
fn importing_a_sparse_image_allocates_only_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let storage = DirStorage::open(dir.path()).unwrap();
    let blocks = 16 * 1024; // 64 MiB
    let mut import = block_on(Store::import_baseline(
        storage,
        BS as u32,
        Some(blocks * BS as u64),
        None,
        clock(),
    ))
    .unwrap();
    let chunk = fill(0, 256);
    let mut data_chunk = chunk.clone();
    data_chunk[..3 * BS].fill(0xab);
    for i in 0..blocks / 256 {
        block_on(import.push(if i == 10 { &data_chunk } else { &chunk })).unwrap();
    }
    let store = block_on(import.finish()).unwrap();
    assert_eq!(
        block_on(store.read(2560, 4)).unwrap(),
        [fill(0xab, 3), fill(0, 1)].concat()
    );
    assert_eq!(block_on(store.read(0, 8)).unwrap(), fill(0, 8));
    let baseline = allocated(&dir.path().join("baseline"));
    assert!(
        baseline < 1 << 20,
        "a 64 MiB image holding 12 KiB of data allocates {baseline} bytes"
    );
}

#[test]
fn streams_carry_zero_extents_and_skip_zero_baseline_chunks() {
    let storage = MemoryStorage::new();
    let blocks: u64 = 4096; // 16 MiB, of which one chunk holds data
    let mut image = fill(0, blocks as usize);
    image[1000 * BS..1001 * BS].fill(1);
    let mut store = import(storage, &image);
    block_on(store.write(0, &fill(4, 64))).unwrap();
    block_on(store.write_zeroes(0, blocks)).unwrap();
    block_on(store.write(10, &fill(6, 1))).unwrap();
    let snap = block_on(store.snapshot(None)).unwrap();
    let mut stream = Vec::new();
    let options = SendOptions {
        upto: Some(snap),
        ..SendOptions::default()
    };
    block_on(store.send(&options, &mut |bytes: &[u8]| {
        stream.extend_from_slice(bytes);
        Ok(())
    }))
    .unwrap();
    // One data chunk of the baseline (1 MiB), the 64 blocks written, the extents, one block.
    let data_max = (1 << 20) + 66 * BS;
    assert!(
        stream.len() < data_max,
        "the stream of a 16 MiB, mostly zero volume is {} bytes",
        stream.len()
    );
    let mut receiver = StreamReceiver::new_store(MemoryStorage::new(), clock());
    block_on(receiver.push(&stream)).unwrap();
    let (copy, _) = block_on(receiver.finish()).unwrap();
    for volume in [VolumeId::BASELINE, snap] {
        assert_eq!(
            block_on(copy.read_at(volume, 0, blocks)).unwrap(),
            block_on(store.read_at(volume, 0, blocks)).unwrap(),
            "volume {volume}"
        );
    }
    let kinds: Vec<VolumeKind> = copy.volumes().iter().map(|v| v.kind).collect();
    assert!(kinds.contains(&VolumeKind::Snapshot));
}

#[test]
fn a_version_2_store_writes_zeros_as_data_until_a_checkpoint_upgrades_it() {
    let (storage, store) = new_store(256);
    drop(store);
    common::set_header_version(&storage, 2);
    let mut store = block_on(Store::open(storage.clone(), clock())).expect("open v2");
    block_on(store.write(0, &fill(1, 8))).unwrap();
    let before = head_bytes(&store);
    assert_eq!(block_on(store.write_zeroes(0, 8)).unwrap(), 8);
    block_on(store.write(20, &fill(0, 1))).unwrap();
    assert!(
        head_bytes(&store) - before >= 9 * BS as u64,
        "a version-2 store must not write zero extents its readers refuse"
    );
    assert_eq!(block_on(store.read(0, 8)).unwrap(), fill(0, 8));
    block_on(store.sync()).unwrap();
    drop(store);
    let mut store = block_on(Store::open(storage.clone(), clock())).expect("reopen v2");
    block_on(store.checkpoint_journal()).unwrap();
    block_on(store.write(0, &fill(1, 8))).unwrap();
    let before = head_bytes(&store);
    block_on(store.write_zeroes(0, 8)).unwrap();
    assert!(
        head_bytes(&store) - before < 128,
        "version 3 writes an extent"
    );
    block_on(store.sync()).unwrap();
    drop(store);
    let store = block_on(Store::open(storage, clock())).expect("reopen v3");
    assert_eq!(block_on(store.read(0, 8)).unwrap(), fill(0, 8));
}

#[test]
fn a_trimmed_store_closed_and_reopened_keeps_its_snapshot() {
    let (storage, mut store) = new_store(256);
    block_on(store.write(10, &fill(5, 64))).unwrap();
    let snap = block_on(store.snapshot(Some("before-trim"))).unwrap();
    assert_eq!(block_on(store.write_zeroes(0, 100)).unwrap(), 64);
    assert_eq!(block_on(store.write_zeroes(0, 100)).unwrap(), 0);
    block_on(store.sync()).unwrap();
    assert!(block_on(store.write_zeroes(200, 100)).is_err());
    block_on(store.close()).unwrap();
    let store = block_on(Store::open(storage, clock())).unwrap();
    assert_eq!(block_on(store.read(0, 100)).unwrap(), fill(0, 100));
    assert_eq!(block_on(store.read_at(snap, 10, 64)).unwrap(), fill(5, 64));
}
