//! `Store::open_read_only`: a view beside a writer whose files look like an interrupted state
//! (a merge journalled but not finished, a compaction's or a receive's unreferenced segment,
//! torn tails) opens, reads what the writer's volumes read, and writes nothing at all.

use std::collections::BTreeMap;
use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::format::meta::MetaRecord;
use strata_engine::format::{parse_meta_object, segment_object};
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::{
    CreateOptions, Error, Managed, SendOptions, Store, StreamReceiver, VolumeId, VolumeKind,
};

const BS: usize = 512;
const BLOCKS: u64 = 32;

use strata_engine::storage::Objects;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_000))
}

fn block(fill: u8) -> Vec<u8> {
    vec![fill; BS]
}

fn objects(storage: &MemoryStorage) -> Objects {
    storage.with_objects(|o| o.clone())
}

fn storage_with(objects: &Objects) -> MemoryStorage {
    let storage = MemoryStorage::new();
    storage.with_objects(|o| *o = objects.clone());
    storage
}

fn journal_name(objects: &Objects) -> String {
    objects
        .keys()
        .filter(|n| parse_meta_object(n).is_some())
        .max_by_key(|n| parse_meta_object(n))
        .unwrap()
        .clone()
}

/// Every visible volume's full image, by identifier.
fn images(store: &Store<MemoryStorage>) -> BTreeMap<u64, Vec<u8>> {
    store
        .volumes()
        .iter()
        .filter(|v| v.kind != VolumeKind::Baseline)
        .map(|v| (v.id.0, block_on(store.read_at(v.id, 0, BLOCKS)).unwrap()))
        .collect()
}

fn is_read_only<T>(result: Result<T, Error>) -> bool {
    matches!(result, Err(ref e @ Error::ReadOnly) if e.code() == "READ_ONLY")
}

/// A writer with a merged baseline image, snapshots `s1` <- `s2` on it and synced head writes.
fn writer() -> (MemoryStorage, Store<MemoryStorage>, VolumeId, VolumeId) {
    let storage = MemoryStorage::new();
    let mut store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock(),
    ))
    .unwrap();
    store.set_write_buffer_bytes(0);
    block_on(store.write(0, &[block(1), block(1)].concat())).unwrap();
    let base = block_on(store.snapshot(Some("base"))).unwrap();
    block_on(store.merge(base, &mut |_| true)).unwrap();
    block_on(store.write(2, &block(2))).unwrap();
    // Synced before each snapshot, so that the journal records each one at once (a snapshot
    // with unsynced writes leaves that to the next journal append): the tests below append to
    // the journal what this writer would append next.
    block_on(store.sync()).unwrap();
    let s1 = block_on(store.snapshot(Some("s1"))).unwrap();
    block_on(store.write(0, &block(3))).unwrap();
    block_on(store.write(5, &[block(3), block(3)].concat())).unwrap();
    block_on(store.sync()).unwrap();
    let s2 = block_on(store.snapshot(Some("s2"))).unwrap();
    block_on(store.write(1, &block(4))).unwrap();
    block_on(store.sync()).unwrap();
    (storage, store, s1, s2)
}

/// Every change is refused with `Error::ReadOnly`, and nothing reaches storage.
fn check_changes_refused(view: Store<MemoryStorage>, storage: &MemoryStorage) {
    let before = objects(storage);
    let snapshot = view.volumes().last().unwrap().id;
    let head = view.head();
    assert!(view.is_read_only());
    // Under storage management too: no policy acts on a view, and no change goes through.
    let mut view = block_on(Managed::open(view, true)).unwrap();
    assert!(!view.automatic_policies());
    assert!(is_read_only(block_on(view.write(0, &block(9)))));
    assert!(is_read_only(block_on(
        view.write_batch(&[(0, &block(9)[..]), (3, &block(9)[..])])
    )));
    assert!(is_read_only(block_on(view.sync())));
    assert!(is_read_only(block_on(view.snapshot(None))));
    assert!(is_read_only(block_on(view.compact(head, &mut |_| true))));
    let sealed = view
        .volumes()
        .iter()
        .find(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| v.id)
        .unwrap_or(snapshot);
    assert!(is_read_only(block_on(view.compact(sealed, &mut |_| true))));
    assert!(is_read_only(block_on(view.delete_volume(sealed))));
    assert!(is_read_only(block_on(view.rollback(sealed, None))));
    assert!(is_read_only(block_on(view.merge(sealed, &mut |_| true))));
    assert!(is_read_only(block_on(view.set_policy(None))));
    assert!(is_read_only(block_on(
        view.event("close", &mut |_, _| Ok(()))
    )));
    let view = view.into_volume();

    // Receiving a copy stream is a change too.
    let source_storage = MemoryStorage::new();
    let mut source = block_on(Store::create(
        source_storage,
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock(),
    ))
    .unwrap();
    block_on(source.write(0, &block(7))).unwrap();
    block_on(source.snapshot(None)).unwrap();
    let mut stream = Vec::new();
    block_on(source.send(&SendOptions::default(), &mut |chunk| {
        stream.extend_from_slice(chunk);
        Ok(())
    }))
    .unwrap();
    let mut receiver = StreamReceiver::into_store(view);
    let received = match block_on(receiver.push(&stream)) {
        Ok(()) => block_on(receiver.finish()).map(drop),
        Err(e) => Err(e),
    };
    assert!(matches!(received, Err(Error::ReadOnly)), "{received:?}");
    assert_eq!(
        objects(storage),
        before,
        "a refused change wrote to storage"
    );
}

#[test]
fn interrupted_merge_orphans_and_torn_tails_are_read_as_they_are_and_left_alone() {
    let (storage, writer, s1, s2) = writer();
    let head = writer.head();
    let expected = images(&writer);
    let expected_baseline = block_on(writer.read_at(VolumeId::BASELINE, 0, BLOCKS)).unwrap();
    let synced = objects(&storage);

    // What a finished merge of `s2` leaves in `baseline` and `baseline.sum`.
    let merged_storage = storage_with(&synced);
    let mut merged = block_on(Store::open(merged_storage.clone(), clock())).unwrap();
    block_on(merged.merge(s2, &mut |_| true)).unwrap();
    let merged_objects = objects(&merged_storage);

    // The writer crashed (or is still working) between "merge started" and "merge finished",
    // with the new baseline already written; a compaction's or receive's segment lies around,
    // and both the journal and the head's segment end in a torn append.
    let journal = journal_name(&synced);
    let head_segment = synced
        .keys()
        .find(|n| (0..4).any(|g| **n == segment_object(head.0, g)))
        .unwrap()
        .clone();
    let orphan = segment_object(s1.0, 7);
    storage.with_objects(|o| {
        let j = o.get_mut(&journal).unwrap();
        MetaRecord::MergeStarted { volume: s2.0 }.encode(j);
        j.extend_from_slice(&[0x5a; 11]);
        o.get_mut(&head_segment)
            .unwrap()
            .extend_from_slice(&[0xa5; 300]);
        for name in ["baseline", "baseline.sum"] {
            o.insert(
                name.into(),
                merged_objects.get(name).expect("object").clone(),
            );
        }
        o.insert(orphan.clone(), vec![0x11; 700]);
    });
    let before = objects(&storage);

    let view = block_on(Store::open_read_only(storage.clone(), clock())).unwrap();
    assert_eq!(view.recovery().journal_bytes_truncated, 11);
    assert_eq!(view.recovery().head_bytes_truncated, 300);
    assert_eq!(
        objects(&storage),
        before,
        "opening read-only wrote to storage"
    );
    // The merged-to volume and the head read what the writer's did; the older snapshot the
    // merge folds in is hidden (the baseline blocks it would read may already be rewritten).
    assert_eq!(view.head(), head);
    let seen = images(&view);
    assert_eq!(seen.keys().copied().collect::<Vec<_>>(), vec![s2.0, head.0]);
    for (id, image) in &seen {
        assert_eq!(image, &expected[id], "volume {id}");
    }
    assert!(matches!(
        block_on(view.read_at(s1, 0, 1)),
        Err(Error::UnknownVolume(_))
    ));
    assert_ne!(
        block_on(view.read_at(s2, 0, BLOCKS)).unwrap(),
        expected_baseline
    );
    check_changes_refused(view, &storage);
    // Closing a view gives the storage back without a sync.
    let view = block_on(Store::open_read_only(storage.clone(), clock())).unwrap();
    block_on(view.close()).unwrap();
    assert_eq!(objects(&storage), before);

    // A writer's open still recovers the state: the merge finishes, the orphan and tails go.
    let recovered = block_on(Store::open(storage.clone(), clock())).unwrap();
    assert!(!objects(&storage).contains_key(&orphan));
    assert!(recovered.volume(s2).is_err());
    assert_eq!(
        block_on(recovered.read_at(head, 0, BLOCKS)).unwrap(),
        expected[&head.0]
    );
    assert_eq!(
        block_on(recovered.read_at(VolumeId::BASELINE, 0, BLOCKS)).unwrap(),
        expected[&s2.0]
    );
    drop(writer);
}

#[test]
fn a_view_beside_a_live_writer_leaves_its_work_in_progress_alone() {
    let (storage, mut writer, s1, _) = writer();
    // The writer is mid-compaction of `s1`: its next generation is written but not journalled.
    let in_progress = segment_object(s1.0, 9);
    storage.with_objects(|o| {
        o.insert(in_progress.clone(), vec![0x22; 1500]);
    });
    let before = objects(&storage);
    let view = block_on(Store::open_read_only(storage.clone(), clock())).unwrap();
    assert_eq!(objects(&storage), before);
    assert_eq!(images(&view), images(&writer));
    assert_eq!(view.recovery().journal_bytes_truncated, 0);
    assert_eq!(view.recovery().head_bytes_truncated, 0);

    // The writer carries on; the view's reads of what it saw are unchanged.
    let head_image = block_on(view.read(0, BLOCKS)).unwrap();
    block_on(writer.write(9, &block(8))).unwrap();
    block_on(writer.sync()).unwrap();
    assert_eq!(block_on(view.read(0, BLOCKS)).unwrap(), head_image);
    assert!(objects(&storage).contains_key(&in_progress));
    check_changes_refused(view, &storage);
}
