//! Damage that used to lose acknowledged data silently (issue #12): a journal cut short (inside
//! a record or exactly at a record boundary), a head segment truncated or deleted, a missing
//! journal, a segment of a partition the journal lost. Each must now fail to open with an error
//! naming the damaged object, and delete nothing; read-only views refuse the same way.

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::format::commit::COMMIT_OBJECT;
use strata_engine::policy::{Assignment, VolumeAssignments};
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::{CreateOptions, Error, Store, VolumeId};

const BS: usize = 512;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

fn open(storage: &MemoryStorage) -> Result<Store<MemoryStorage>, Error> {
    block_on(Store::open(storage.clone(), clock()))
}

fn open_read_only(storage: &MemoryStorage) -> Result<Store<MemoryStorage>, Error> {
    block_on(Store::open_read_only(storage.clone(), clock()))
}

fn journal_name(storage: &MemoryStorage) -> String {
    storage.with_objects(|o| {
        o.keys()
            .find(|k| k.starts_with("meta-"))
            .cloned()
            .expect("a journal")
    })
}

fn len_of(storage: &MemoryStorage, name: &str) -> usize {
    storage.with_objects(|o| o.get(name).map_or(0, Vec::len))
}

fn truncate(storage: &MemoryStorage, name: &str, len: usize) {
    storage.with_objects(|o| o.get_mut(name).expect("object").truncate(len));
}

fn remove(storage: &MemoryStorage, name: &str) {
    storage.with_objects(|o| o.remove(name).expect("object"));
}

/// Asserts the open failed as corruption naming `object`, and that nothing was deleted.
fn assert_refused(storage: &MemoryStorage, object: &str, what: &str) {
    let before: Vec<String> = storage.with_objects(|o| o.keys().cloned().collect());
    for (mode, result) in [
        ("writable", open(storage)),
        ("read-only", open_read_only(storage)),
    ] {
        match result {
            Err(e @ Error::Corrupt { .. }) => assert!(
                e.to_string().contains(object),
                "{what} ({mode}): the error does not name {object}: {e}"
            ),
            Err(e) => panic!("{what} ({mode}): expected corruption naming {object}, got {e}"),
            Ok(_) => panic!("{what} ({mode}): opened; acknowledged data would be lost silently"),
        }
    }
    let after: Vec<String> = storage.with_objects(|o| o.keys().cloned().collect());
    assert_eq!(before, after, "{what}: recovery deleted objects");
}

/// The history: snapshots "one" and "two", then synced writes, closed cleanly.
fn history() -> MemoryStorage {
    let storage = MemoryStorage::new();
    let mut store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(16).block_size(BS as u32),
        clock(),
    ))
    .expect("create");
    block_on(store.write(1, &[1; BS])).expect("write");
    block_on(store.snapshot(Some("one"))).expect("one");
    block_on(store.write(2, &[2; BS])).expect("write");
    block_on(store.snapshot(Some("two"))).expect("two");
    for (addr, fill) in [(3u64, 3u8), (4, 4), (5, 5), (6, 6)] {
        block_on(store.write(addr, &[fill; BS])).expect("write");
        block_on(store.sync()).expect("sync");
    }
    block_on(store.close()).expect("close");
    storage
}

fn head_segment(storage: &MemoryStorage) -> String {
    let store = open(storage).expect("the undamaged history opens");
    let head = store.head();
    drop(store);
    format!("seg-{:016x}-00000000", head.0)
}

#[test]
fn the_undamaged_history_opens_and_reads_back() {
    let storage = history();
    let store = open(&storage).expect("open");
    let labels: Vec<String> = store.volumes().into_iter().map(|v| v.label).collect();
    assert!(labels.contains(&"two".to_string()), "{labels:?}");
    assert_eq!(block_on(store.read(6, 1)).expect("read"), vec![6; BS]);
    assert!(storage.with_objects(|o| o.contains_key(COMMIT_OBJECT)));
}

#[test]
fn a_journal_cut_by_100_bytes_is_reported_not_rolled_back() {
    let storage = history();
    let journal = journal_name(&storage);
    let len = len_of(&storage, &journal);
    truncate(&storage, &journal, len - 100);
    assert_refused(&storage, &journal, "journal cut by 100 bytes");
}

#[test]
fn a_journal_cut_at_a_record_boundary_is_reported() {
    // The last record is a hold (an assignments document): cut exactly before it.
    let storage = history();
    let journal = journal_name(&storage);
    let before = len_of(&storage, &journal);
    let mut store = strata_engine::Managed::new(open(&storage).expect("open")).expect("managed");
    let mut holds = VolumeAssignments::new();
    holds.set(
        VolumeId(1),
        Assignment {
            hold: true,
            ttl_ms: None,
        },
    );
    block_on(store.set_assignments(holds)).expect("hold");
    block_on(store.close()).expect("close");
    assert!(len_of(&storage, &journal) > before);
    truncate(&storage, &journal, before);
    assert_refused(
        &storage,
        &journal,
        "journal cut at the hold's record boundary",
    );
}

#[test]
fn a_head_segment_cut_across_synced_records_is_reported() {
    let storage = history();
    let head = head_segment(&storage);
    let record = 64 + 16 + 4 + BS; // one one-block record
    let len = len_of(&storage, &head);
    assert_eq!(len, 4 * record);
    // Records 1 and 2 and part of record 3 stay (the issue's `truncate -s 8560`).
    truncate(&storage, &head, 2 * record + 200);
    assert_refused(&storage, &head, "head cut inside its third synced record");
    let storage = history();
    truncate(&storage, &head, 3 * record);
    assert_refused(&storage, &head, "head cut at a record boundary");
}

#[test]
fn a_deleted_head_segment_is_reported() {
    let storage = history();
    let head = head_segment(&storage);
    remove(&storage, &head);
    assert_refused(&storage, &head, "head segment deleted");
}

#[test]
fn a_missing_journal_is_named() {
    let storage = history();
    let journal = journal_name(&storage);
    remove(&storage, &journal);
    assert_refused(&storage, &journal, "journal deleted");
    // Without a commit point either, the segments still say a store was here.
    remove(&storage, COMMIT_OBJECT);
    assert_refused(&storage, "meta-", "journal and commit point deleted");
}

#[test]
fn a_segment_the_journal_never_created_is_kept_and_reported() {
    // No commit point (the writer crashed after the snapshot and the writes), and the journal
    // lost the snapshot's record: the new head's segment is evidence, not an orphan.
    let storage = MemoryStorage::new();
    let mut store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(16).block_size(BS as u32),
        clock(),
    ))
    .expect("create");
    block_on(store.write(1, &[1; BS])).expect("write");
    block_on(store.sync()).expect("sync");
    let journal = journal_name(&storage);
    let before_snapshot = len_of(&storage, &journal);
    block_on(store.snapshot(Some("two"))).expect("snapshot");
    block_on(store.write(2, &[2; BS])).expect("write");
    block_on(store.sync()).expect("sync");
    drop(store); // a crash: no close, no commit point
    assert!(!storage.with_objects(|o| o.contains_key(COMMIT_OBJECT)));
    truncate(&storage, &journal, before_snapshot);
    let error = open(&storage).expect_err("refused");
    assert!(
        error.to_string().contains("seg-0000000000000002"),
        "{error}"
    );
    assert!(
        storage.with_objects(|o| o.contains_key("seg-0000000000000002-00000000")),
        "the segment was deleted"
    );
}

#[test]
fn a_commit_point_never_refuses_what_a_crash_can_leave() {
    // Writes after the last close that never synced may be lost by a crash: the commit point
    // vouches only for what was durable when it was written.
    let storage = history();
    let mut store = open(&storage).expect("open");
    block_on(store.write(9, &[9; BS])).expect("unsynced write");
    let head = format!("seg-{:016x}-00000000", store.head().0);
    let synced = len_of(&storage, &head);
    drop(store);
    truncate(&storage, &head, synced); // the unsynced record never reached the medium
    let store = open(&storage).expect("a crash state opens");
    assert_eq!(block_on(store.read(6, 1)).expect("read"), vec![6; BS]);
    assert_eq!(block_on(store.read(9, 1)).expect("read"), vec![0; BS]);
}
