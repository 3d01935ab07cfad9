//! Journal checkpoints: a store with a long history (snapshots, deletions, compactions, a merge, a
//! rollback, a policy with its audit trail) checkpoints its journal into a much smaller new
//! generation, and reopening gives exactly the same store, which keeps working. Also the crash
//! cases left on disk (both generations, or a new one without its header), the automatic
//! checkpoint, and the refusals.

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::policy::{AuditEntry, Policy, Trigger, VolumeAssignments};
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::sim::SimDisk;
use strata_engine::storage::Storage;
use strata_engine::{CreateOptions, Error, Managed, Store, VolumeId, VolumeInfo, VolumeKind};

const BS: usize = 512;
const BLOCKS: u64 = 32;
const HOUR_MS: u64 = 3_600_000;
const START_MS: u64 = 1_704_067_200_000;

fn no_copy(_: &str, _: &[u8]) -> strata_engine::Result<()> {
    Ok(())
}

fn hourly_policy() -> Policy {
    Policy::from_json(
        r#"{ "rules": [
            { "name": "hourly", "kind": "snapshot_every", "snapshot_every_ms": 3600000, "label": "hourly-{date}-{time}" },
            { "name": "thin", "kind": "retain", "label_prefix": "hourly-", "keep": { "hourly": 12, "daily": 3 } }
        ] }"#,
    )
    .unwrap()
}

/// Everything a reopen must reproduce.
#[derive(Debug, PartialEq)]
struct State {
    volumes: Vec<VolumeInfo>,
    images: Vec<(VolumeId, Vec<u8>)>,
    policy: Option<String>,
    assignments: VolumeAssignments,
    audit: Vec<AuditEntry>,
    head: VolumeId,
    next_seq: u64,
    store_id: u64,
    created_ms: u64,
}

fn state<S: Storage>(store: &Managed<Store<S>>) -> State {
    let volumes = store.volumes();
    let images = volumes
        .iter()
        .map(|v| (v.id, block_on(store.read_at(v.id, 0, BLOCKS)).unwrap()))
        .collect();
    let info = store.info();
    State {
        volumes,
        images,
        policy: store.policy().map(|p| serde_json::to_string(p).unwrap()),
        assignments: store.assignments().clone(),
        audit: store.audit().to_vec(),
        head: info.head,
        next_seq: info.next_seq,
        store_id: info.store_id,
        created_ms: info.created_ms,
    }
}

fn journals(storage: &MemoryStorage) -> Vec<String> {
    storage.with_objects(|objects| {
        objects
            .keys()
            .filter(|k| k.starts_with("meta-"))
            .cloned()
            .collect()
    })
}

/// A new store of the tests' geometry on `storage`.
fn create<S: Storage>(storage: S, clock: &Rc<ManualClock>) -> Managed<Store<S>> {
    Managed::new(
        block_on(Store::create(
            storage,
            CreateOptions::new(BLOCKS).block_size(BS as u32),
            clock.clone(),
        ))
        .unwrap(),
    )
    .unwrap()
}

fn reopen(storage: MemoryStorage, clock: &Rc<ManualClock>) -> Managed<Store<MemoryStorage>> {
    block_on(Managed::open_store(storage, clock.clone(), false)).unwrap()
}

/// A store with a long history; returned closed.
fn long_history(clock: &Rc<ManualClock>) -> MemoryStorage {
    let storage = MemoryStorage::new();
    let mut store = create(storage.clone(), clock);
    store.set_journal_checkpoint_bytes(u64::MAX);
    // Some history before the policy: snapshots, a compaction, a deletion, a merge, a rollback.
    for i in 0..6u64 {
        block_on(store.write(i, &vec![i as u8 + 1; BS])).unwrap();
        block_on(store.write(i, &vec![i as u8 + 2; BS])).unwrap();
        block_on(store.snapshot(Some(&format!("manual-{i}")))).unwrap();
    }
    let snaps: Vec<VolumeId> = store
        .volumes()
        .iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| v.id)
        .collect();
    block_on(store.compact(snaps[3], &mut |_| true)).unwrap();
    block_on(store.delete_volume(snaps[2])).unwrap();
    assert_eq!(block_on(store.merge(snaps[0], &mut |_| true)).unwrap(), 1);
    block_on(store.write(20, &vec![0x77; BS])).unwrap();
    block_on(store.rollback(snaps[4], Some("rolled"))).unwrap();
    block_on(store.write(21, &vec![0x78; 2 * BS])).unwrap();
    // Then three days of an hourly policy: many snapshots, thinned out by deletions.
    block_on(store.set_policy(Some(hourly_policy()))).unwrap();
    let mut now = START_MS + HOUR_MS / 2;
    for hour in 0..72u64 {
        clock.set(now);
        block_on(store.write(hour % BLOCKS, &vec![(hour % 251) as u8; BS])).unwrap();
        block_on(store.run_policies(Trigger::Tick, None, &mut no_copy)).unwrap();
        now += HOUR_MS;
    }
    let held = store
        .volumes()
        .iter()
        .rev()
        .find(|v| v.kind == VolumeKind::Snapshot)
        .unwrap()
        .id;
    let mut assignments = VolumeAssignments::default();
    assignments.set_hold(held, true);
    block_on(store.set_assignments(assignments)).unwrap();
    block_on(store.write(5, &vec![0x55; BS])).unwrap();
    block_on(store.close()).unwrap()
}

#[test]
fn a_checkpoint_shrinks_the_journal_and_reopens_identically() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let storage = long_history(&clock);
    assert_eq!(
        journals(&storage),
        vec!["meta-0000000000000001".to_string()]
    );
    let mut store = reopen(storage.clone(), &clock);
    store.set_journal_checkpoint_bytes(u64::MAX);
    let before = state(&store);
    assert!(before.audit.len() > 50, "audit: {}", before.audit.len());
    assert!(before.volumes.len() > 10);
    let bytes_before = store.journal_bytes();

    let bytes_after = block_on(store.checkpoint_journal()).unwrap();
    assert_eq!(bytes_after, store.journal_bytes());
    println!("journal: {bytes_before} bytes before the checkpoint, {bytes_after} after");
    assert!(
        bytes_after * 4 < bytes_before * 3,
        "{bytes_after} not much smaller than {bytes_before}"
    );
    assert_eq!(
        journals(&storage),
        vec!["meta-0000000000000002".to_string()]
    );
    // The store handle itself is unchanged.
    assert_eq!(state(&store), before);
    drop(store);

    let mut store = reopen(storage.clone(), &clock);
    assert_eq!(store.journal_bytes(), bytes_after);
    assert_eq!(state(&store), before);
    assert_eq!(store.recovery().journal_bytes_truncated, 0);

    // It keeps working: writes, snapshots, policy actions, and a second checkpoint.
    block_on(store.write(7, &vec![0xEE; 3 * BS])).unwrap();
    let snap = block_on(store.snapshot(Some("after"))).unwrap();
    block_on(store.write(7, &vec![0xEF; BS])).unwrap();
    clock.set(START_MS + 80 * HOUR_MS);
    block_on(store.run_policies(Trigger::Tick, None, &mut no_copy)).unwrap();
    block_on(store.sync()).unwrap();
    let later = state(&store);
    let snap_image = block_on(store.read_at(snap, 0, BLOCKS)).unwrap();
    assert_eq!(&snap_image[7 * BS..10 * BS], &vec![0xEE; 3 * BS][..]);
    let storage = block_on(store.close()).unwrap();
    let mut store = reopen(storage.clone(), &clock);
    assert_eq!(state(&store), later);
    block_on(store.checkpoint_journal()).unwrap();
    assert_eq!(
        journals(&storage),
        vec!["meta-0000000000000003".to_string()]
    );
    drop(store);
    let store = reopen(storage, &clock);
    assert_eq!(state(&store), later);
}

#[test]
fn recovery_after_a_crash_between_the_commits_of_a_checkpoint() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let storage = long_history(&clock);
    let old = storage.with_objects(|o| o.get("meta-0000000000000001").expect("journal").clone());
    let mut store = reopen(storage.clone(), &clock);
    let expected = state(&store);
    block_on(store.checkpoint_journal()).unwrap();
    drop(store);
    let new = storage.with_objects(|o| o.get("meta-0000000000000002").expect("journal").clone());

    // Crash after the new generation was complete, before the old one was deleted.
    storage.with_objects(|o| o.insert("meta-0000000000000001".into(), old.clone()));
    let store = reopen(storage.clone(), &clock);
    assert_eq!(state(&store), expected);
    assert_eq!(
        journals(&storage),
        vec!["meta-0000000000000002".to_string()]
    );
    drop(store);

    // Crash after the body, before the header: the new generation does not verify, the old one
    // is used and the unfinished one deleted.
    let mut headless = new.clone();
    headless[..64].fill(0);
    storage.with_objects(|o| {
        o.retain(|k, _| !k.starts_with("meta-"));
        o.insert("meta-0000000000000001".into(), old.clone());
        o.insert("meta-0000000000000002".into(), headless);
    });
    let mut store = reopen(storage.clone(), &clock);
    assert_eq!(state(&store), expected);
    assert_eq!(
        journals(&storage),
        vec!["meta-0000000000000001".to_string()]
    );
    // The next checkpoint writes that generation again.
    block_on(store.checkpoint_journal()).unwrap();
    assert_eq!(
        journals(&storage),
        vec!["meta-0000000000000002".to_string()]
    );
    drop(store);
    let store = reopen(storage, &clock);
    assert_eq!(state(&store), expected);
}

#[test]
fn the_journal_is_checkpointed_automatically_and_stays_bounded() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let storage = MemoryStorage::new();
    let mut store = create(storage.clone(), &clock);
    store.set_journal_checkpoint_bytes(4096);
    let mut largest = 0;
    // Snapshots that are deleted again soon: the journal grows, the state does not.
    let mut snaps = std::collections::VecDeque::new();
    for i in 0..400u64 {
        block_on(store.write(i % BLOCKS, &vec![i as u8; BS])).unwrap();
        snaps.push_back(block_on(store.snapshot(None)).unwrap());
        if snaps.len() > 3 {
            let oldest = snaps.pop_front().unwrap();
            block_on(store.delete_volume(oldest)).unwrap();
        }
        largest = largest.max(store.journal_bytes());
    }
    let generation = journals(&storage);
    assert_eq!(generation.len(), 1);
    assert_ne!(generation[0], "meta-0000000000000001");
    // Never much over four times what the state needs (or the threshold).
    let mut fresh = reopen(storage.clone(), &clock);
    fresh.set_journal_checkpoint_bytes(u64::MAX);
    let needed = block_on(fresh.checkpoint_journal()).unwrap();
    drop(fresh);
    println!("automatic checkpoints: largest journal {largest} bytes, a checkpoint {needed} bytes");
    assert!(
        largest <= 4096.max(4 * needed) + 512,
        "{largest} vs {needed}"
    );
    let expected = state(&store);
    drop(store);
    let store = reopen(storage, &clock);
    assert_eq!(state(&store), expected);
}

#[test]
fn a_large_state_is_not_checkpointed_over_and_over() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let storage = MemoryStorage::new();
    let mut store = create(storage.clone(), &clock);
    // Many snapshots that all stay: the state itself is above the threshold.
    store.set_journal_checkpoint_bytes(u64::MAX);
    for _ in 0..100 {
        block_on(store.snapshot(Some("a label to make the records longer"))).unwrap();
    }
    let size = store.journal_bytes();
    store.set_journal_checkpoint_bytes(size / 2);
    // The journal is over the threshold but not four times its checkpoint: nothing happens.
    block_on(store.write(0, &vec![1; BS])).unwrap();
    block_on(store.sync()).unwrap();
    assert_eq!(
        journals(&storage),
        vec!["meta-0000000000000001".to_string()]
    );
    assert!(store.journal_bytes() >= size);
}

#[test]
fn a_checkpoint_is_refused_on_a_read_only_store_and_during_an_unfinished_merge() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let disk = SimDisk::new();
    let mut store = create(disk.clone(), &clock);
    block_on(store.write(0, &vec![1; BS])).unwrap();
    let snap = block_on(store.snapshot(None)).unwrap();
    block_on(store.write(0, &vec![2; BS])).unwrap();
    block_on(store.sync()).unwrap();
    drop(store);

    let mut view = block_on(Store::open_read_only(disk.clone(), clock.clone())).unwrap();
    assert!(matches!(
        block_on(view.checkpoint_journal()),
        Err(Error::ReadOnly)
    ));
    drop(view);

    // Damage the snapshot's data: the merge starts, fails verifying it, and stays unfinished.
    let segment = disk
        .object_lengths()
        .into_keys()
        .find(|k| k.starts_with(&format!("seg-{:016x}", snap.0)))
        .unwrap();
    let mut store = block_on(Managed::open_store(disk.clone(), clock.clone(), true)).unwrap();
    // Data of the first record's block: after the record header and tables; flip a bit well
    // inside the 512-byte block.
    assert!(disk.flip_bit(&segment, 200, 1));
    assert!(block_on(store.merge(snap, &mut |_| true)).is_err());
    let journal = disk
        .object_lengths()
        .into_keys()
        .filter(|k| k.starts_with("meta-"))
        .collect::<Vec<_>>();
    match block_on(store.checkpoint_journal()) {
        Err(Error::InvalidArgument(m)) => assert!(m.contains("merge"), "{m}"),
        other => panic!("checkpoint during an unfinished merge: {other:?}"),
    }
    let after = disk
        .object_lengths()
        .into_keys()
        .filter(|k| k.starts_with("meta-"))
        .collect::<Vec<_>>();
    assert_eq!(journal, after);
}
