//! The policy executor against a real store: simulated months run in milliseconds, every
//! remaining volume still reads byte-identical to a model, and policy state survives reopen.

use std::collections::BTreeMap;
use std::rc::Rc;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::SeedableRng;
use strata_engine::clock::ManualClock;
use strata_engine::policy::{
    apply_to_model, simulate, Assignment, AuditEntry, Decision, Operation, Outcome, Policy,
    Trigger, VolumeAssignments,
};
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{CreateOptions, Managed, Store, StreamReceiver, VolumeId, VolumeKind};

const BS: usize = 512;
const BLOCKS: u64 = 32;
const HOUR_MS: u64 = 3_600_000;
/// 2024-01-01T00:00:00Z, a Monday.
const START_MS: u64 = 1_704_067_200_000;

fn store(clock: &Rc<ManualClock>) -> (MemoryStorage, Managed<Store<MemoryStorage>>) {
    let storage = MemoryStorage::new();
    let store = Managed::new(
        block_on(Store::create(
            storage.clone(),
            CreateOptions::new(BLOCKS).block_size(BS as u32),
            clock.clone(),
        ))
        .unwrap(),
    )
    .unwrap();
    (storage, store)
}

fn hourly_policy() -> Policy {
    Policy::from_json(
        r#"{ "rules": [
            { "name": "hourly", "kind": "snapshot_every", "snapshot_every_ms": 3600000, "label": "hourly-{date}-{time}" },
            { "name": "thin", "kind": "retain", "label_prefix": "hourly-", "keep": { "hourly": 24, "daily": 7, "weekly": 4 } }
        ] }"#,
    )
    .unwrap()
}

fn no_copy(_: &str, _: &[u8]) -> strata_engine::Result<()> {
    Ok(())
}

#[test]
fn thirty_days_of_hourly_snapshots_keep_exactly_what_the_policy_says() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    block_on(store.set_policy(Some(hourly_policy()))).unwrap();
    // The expected outcome from the pure policy simulated over a model of the store.
    let expected = simulate(
        &hourly_policy(),
        &VolumeAssignments::default(),
        store.policy_view(None),
        START_MS + HOUR_MS / 2,
        START_MS + 30 * 24 * HOUR_MS,
        HOUR_MS,
        apply_to_model,
    )
    .unwrap();
    let mut images: BTreeMap<VolumeId, Vec<u8>> = BTreeMap::new();
    let mut image = vec![0u8; BLOCKS as usize * BS];
    let mut now = START_MS + HOUR_MS / 2;
    let mut hour = 0u64;
    while now <= START_MS + 30 * 24 * HOUR_MS {
        clock.set(now);
        // Some writes every hour, so that every snapshot differs from the last.
        let addr = hour % BLOCKS;
        let fill = (hour % 251) as u8;
        block_on(store.write(addr, &vec![fill; BS])).unwrap();
        image[addr as usize * BS..(addr as usize + 1) * BS].fill(fill);
        let before = store.head();
        for entry in block_on(store.run_policies(Trigger::Tick, None, &mut no_copy)).unwrap() {
            assert!(
                matches!(entry.outcome, Outcome::Applied { .. }),
                "{entry:?}"
            );
            if let Decision::Snapshot { .. } = entry.decision {
                images.insert(before, image.clone());
            }
        }
        now += HOUR_MS;
        hour += 1;
    }
    let remaining: Vec<(VolumeId, u64)> = store
        .volumes()
        .iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| (v.id, v.sealed_ms.unwrap()))
        .collect();
    let expected_times: Vec<u64> = expected
        .view
        .volumes
        .iter()
        .filter(|v| v.is_snapshot())
        .map(|v| v.snapshot_ms())
        .collect();
    let mut times: Vec<u64> = remaining.iter().map(|(_, t)| *t).collect();
    let mut expected_sorted = expected_times.clone();
    times.sort_unstable();
    expected_sorted.sort_unstable();
    assert_eq!(times, expected_sorted);
    assert_eq!(
        times.len(),
        24 + 7 + 4 - 3,
        "24 hourly, 7 daily, 4 weekly, overlapping in 3"
    );
    for (id, _) in &remaining {
        assert_eq!(
            &block_on(store.read_at(*id, 0, BLOCKS)).unwrap(),
            &images[id],
            "volume {id}"
        );
    }
    assert_eq!(block_on(store.read(0, BLOCKS)).unwrap(), image);
    let deletes = store
        .audit()
        .iter()
        .filter(|e| matches!(e.decision, Decision::Delete { .. }))
        .count();
    assert_eq!(
        deletes,
        720 - times.len(),
        "every snapshot not kept was deleted, with an audit entry"
    );
}

#[test]
fn policy_assignments_and_audit_survive_reopen() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (storage, mut store) = store(&clock);
    block_on(store.set_policy(Some(hourly_policy()))).unwrap();
    let s = block_on(store.snapshot(Some("hourly-keep-me"))).unwrap();
    let mut assignments = VolumeAssignments::default();
    assignments.set_hold(s, true);
    block_on(store.set_assignments(assignments)).unwrap();
    clock.advance(HOUR_MS);
    let entries = block_on(store.run_policies(Trigger::Tick, None, &mut no_copy)).unwrap();
    assert!(!entries.is_empty());
    block_on(store.close()).unwrap();
    let store = block_on(Managed::open_store(storage, clock.clone(), true)).unwrap();
    assert_eq!(store.policy(), Some(&hourly_policy()));
    assert!(store.assignments().is_held(s));
    assert_eq!(store.audit().len(), entries.len());
    assert_eq!(store.audit()[0], entries[0]);
}

/// One rule: delete snapshots older than an hour.
fn retain_an_hour() -> Policy {
    Policy::from_json(r#"{ "rules": [ { "kind": "retain", "max_age_ms": 3600000 } ] }"#).unwrap()
}

#[test]
fn a_held_volume_is_never_deleted() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    block_on(store.set_policy(Some(retain_an_hour()))).unwrap();
    let held = block_on(store.snapshot(Some("held"))).unwrap();
    let other = block_on(store.snapshot(Some("other"))).unwrap();
    block_on(store.snapshot(Some("newest"))).unwrap();
    let mut assignments = VolumeAssignments::default();
    assignments.set(
        held,
        Assignment {
            hold: true,
            ttl_ms: None,
        },
    );
    block_on(store.set_assignments(assignments)).unwrap();
    clock.advance(10 * HOUR_MS);
    block_on(store.run_policies(Trigger::Tick, None, &mut no_copy)).unwrap();
    assert!(store.volume(held).is_ok());
    assert!(
        store.volume(other).is_err(),
        "the unheld old snapshot was deleted"
    );
}

#[test]
fn events_trigger_snapshots_and_copies_reach_the_target() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    let policy = Policy::from_json(
        r#"{ "rules": [
            { "kind": "event", "event": "deploy", "pair": true, "action": "snapshot", "label": "{event}-{n}" },
            { "kind": "event", "event": "close", "action": "copy", "target": "backup" }
        ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    block_on(store.write(1, &vec![1u8; BS])).unwrap();
    block_on(store.event("deploy:pre", &mut no_copy)).unwrap();
    block_on(store.write(1, &vec![2u8; BS])).unwrap();
    block_on(store.event("deploy:post", &mut no_copy)).unwrap();
    let labels: Vec<String> = store
        .volumes()
        .iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| v.label.clone())
        .collect();
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert!(
        labels[0].starts_with("deploy:pre") && labels[1].starts_with("deploy:post"),
        "{labels:?}"
    );
    let mut stream = Vec::new();
    let entries = block_on(store.event("close", &mut |target, chunk| {
        assert_eq!(target, "backup");
        stream.extend_from_slice(chunk);
        Ok(())
    }))
    .unwrap();
    assert!(
        matches!(entries[0].outcome, Outcome::Applied { .. }),
        "{entries:?}"
    );
    let mut receiver = StreamReceiver::new_store(MemoryStorage::new(), clock.clone());
    block_on(receiver.push(&stream)).unwrap();
    let (copy, _) = block_on(receiver.finish()).unwrap();
    for v in store
        .volumes()
        .iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
    {
        assert_eq!(
            block_on(copy.read_at(v.id, 0, BLOCKS)).unwrap(),
            block_on(store.read_at(v.id, 0, BLOCKS)).unwrap()
        );
    }
    // A second close copies nothing new.
    let entries = block_on(store.event("close", &mut |_, _| panic!("nothing to send"))).unwrap();
    assert!(
        matches!(entries[0].outcome, Outcome::Skipped { .. }),
        "{entries:?}"
    );
}

#[test]
fn invalid_policy_is_refused_with_the_field_named() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    let mut policy = hourly_policy();
    policy.rules.push(
        serde_json::from_str(r#"{ "kind": "snapshot_every", "snapshot_every_ms": 0 }"#).unwrap(),
    );
    let err = block_on(store.set_policy(Some(policy))).unwrap_err();
    assert!(err.to_string().contains("rules[2]"), "{err}");
    assert!(store.policy().is_none());
}

// ----- automatic evaluation after operations -----------------------------------------------------

fn snapshot_ids(store: &Managed<Store<MemoryStorage>>) -> Vec<VolumeId> {
    store
        .volumes()
        .iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| v.id)
        .collect()
}

fn busy_policy() -> Policy {
    Policy::from_json(
        r#"{ "rules": [
            { "name": "busy", "kind": "threshold", "status": "writes_since_snapshot", "above": 3,
              "action": "snapshot", "label": "busy-{n}" }
        ] }"#,
    )
    .unwrap()
}

#[test]
fn a_threshold_rule_fires_by_itself_after_the_write_that_crosses_it() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    block_on(store.set_policy(Some(busy_policy()))).unwrap();
    for i in 0..3u8 {
        block_on(store.write(u64::from(i), &vec![i; BS])).unwrap();
    }
    assert!(snapshot_ids(&store).is_empty(), "3 writes are not above 3");
    let head_before = store.head();
    block_on(store.write(3, &vec![3u8; BS])).unwrap();
    // The fourth write crossed the threshold: the store took the snapshot without being asked.
    assert_eq!(snapshot_ids(&store), [head_before]);
    assert_eq!(store.volume(head_before).unwrap().label, "busy-1");
    assert_eq!(store.audit().len(), 1);
    let entry = &store.audit()[0];
    assert_eq!(entry.trigger, Some(Trigger::AfterOperation));
    assert_eq!(entry.after, Some(Operation::Write));
    assert!(
        matches!(entry.outcome, Outcome::Applied { volume: Some(v) } if v == head_before),
        "{entry:?}"
    );
    assert!(
        entry
            .decision
            .reason()
            .text
            .contains("writes_since_snapshot 4 > 3"),
        "{}",
        entry.decision
    );
    // The counter restarted with the new head: three more writes do nothing, the fourth fires.
    for i in 0..3u8 {
        block_on(store.write(u64::from(i), &vec![9; BS])).unwrap();
    }
    assert_eq!(snapshot_ids(&store).len(), 1);
    block_on(store.write(4, &vec![9; BS])).unwrap();
    assert_eq!(snapshot_ids(&store).len(), 2);
    assert_eq!(store.audit().len(), 2);
    // Every volume reads what was written before it was taken.
    assert_eq!(
        block_on(store.read_at(head_before, 0, 4)).unwrap(),
        [vec![0u8; BS], vec![1u8; BS], vec![2u8; BS], vec![3u8; BS]].concat()
    );
}

#[test]
fn a_partition_count_rule_merges_after_each_snapshot() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    let policy = Policy::from_json(
        r#"{ "rules": [
            { "name": "few", "kind": "threshold", "status": "partition_count", "above": 3,
              "action": "merge_oldest" }
        ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    let mut image = vec![0u8; BLOCKS as usize * BS];
    let mut images: BTreeMap<VolumeId, Vec<u8>> = BTreeMap::new();
    for round in 0..8u8 {
        let addr = usize::from(round) % BLOCKS as usize;
        image[addr * BS..(addr + 1) * BS].fill(round + 1);
        block_on(store.write(addr as u64, &vec![round + 1; BS])).unwrap();
        let sealed = block_on(store.snapshot(None)).unwrap();
        images.insert(sealed, image.clone());
        assert!(
            store.info().partitions <= 3,
            "round {round}: {} partitions",
            store.info().partitions
        );
    }
    let merges: Vec<&AuditEntry> = store
        .audit()
        .iter()
        .filter(|e| matches!(e.decision, Decision::Merge { .. }))
        .collect();
    assert_eq!(
        merges.len(),
        6,
        "one merge after each snapshot past the third"
    );
    assert!(merges.iter().all(
        |e| e.after == Some(Operation::Snapshot) && e.trigger == Some(Trigger::AfterOperation)
    ));
    // Policy-driven merging never changes what a remaining volume reads.
    for id in snapshot_ids(&store) {
        assert_eq!(block_on(store.read_at(id, 0, BLOCKS)).unwrap(), images[&id]);
    }
    assert_eq!(block_on(store.read(0, BLOCKS)).unwrap(), image);
}

#[test]
fn an_action_that_is_itself_an_operation_does_not_trigger_again() {
    // Every snapshot the rule takes raises the partition count further; if the executor's own
    // snapshot started another evaluation, one user snapshot would cascade without end.
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    let policy = Policy::from_json(
        r#"{ "rules": [
            { "name": "more", "kind": "threshold", "status": "partition_count", "above": 1,
              "action": "snapshot" }
        ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    block_on(store.snapshot(Some("mine"))).unwrap();
    assert_eq!(
        snapshot_ids(&store).len(),
        2,
        "the user's and exactly one more"
    );
    assert_eq!(store.audit().len(), 1);
    assert_eq!(store.audit()[0].after, Some(Operation::Snapshot));
    // Each later user operation causes at most one more.
    block_on(store.snapshot(None)).unwrap();
    assert_eq!(snapshot_ids(&store).len(), 4);
    assert_eq!(store.audit().len(), 2);
}

#[test]
fn a_rule_with_nothing_to_do_records_nothing_write_after_write() {
    // "log_bytes > 0: merge the oldest partition" is past its threshold after every write, but
    // there is nothing to merge: the store takes no action and records nothing, write after
    // write. (It also disarms the rule until the partitions change, so later writes skip the
    // evaluation; that saving is not observable from outside and is not asserted here.)
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    let policy = Policy::from_json(
        r#"{ "rules": [
            { "kind": "threshold", "status": "log_bytes", "above": 0, "action": "merge_oldest" }
        ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    for i in 0..50u64 {
        block_on(store.write(i % BLOCKS, &vec![7u8; BS])).unwrap();
    }
    assert!(store.audit().is_empty());
    assert_eq!(store.info().partitions, 1);
}

#[test]
fn automatic_evaluation_can_be_turned_off() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    block_on(store.set_policy(Some(busy_policy()))).unwrap();
    assert!(store.automatic_policies());
    store.set_automatic_policies(false);
    for i in 0..10u64 {
        block_on(store.write(i, &vec![1u8; BS])).unwrap();
    }
    block_on(store.sync()).unwrap();
    assert!(snapshot_ids(&store).is_empty());
    assert!(store.audit().is_empty());
    // The host still decides when: an explicit evaluation fires the rule.
    let entries =
        block_on(store.run_policies(Trigger::AfterOperation, None, &mut no_copy)).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].trigger, Some(Trigger::AfterOperation));
    assert_eq!(entries[0].after, None, "not after any particular operation");
    assert_eq!(snapshot_ids(&store).len(), 1);
}

#[test]
fn automatic_entries_and_the_rule_survive_reopen() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (storage, mut store) = store(&clock);
    block_on(store.set_policy(Some(busy_policy()))).unwrap();
    for i in 0..4u64 {
        block_on(store.write(i, &vec![2u8; BS])).unwrap();
    }
    let audit = store.audit().to_vec();
    assert_eq!(audit.len(), 1);
    block_on(store.close()).unwrap();
    let mut store = block_on(Managed::open_store(storage, clock.clone(), true)).unwrap();
    assert_eq!(
        store.audit(),
        &audit[..],
        "trigger and operation are persisted"
    );
    assert!(store.automatic_policies(), "on again after open");
    for i in 0..4u64 {
        block_on(store.write(i, &vec![3u8; BS])).unwrap();
    }
    assert_eq!(
        snapshot_ids(&store).len(),
        2,
        "the rule still fires by itself"
    );
}

#[test]
fn automatic_evaluation_is_deterministic() {
    fn run() -> Vec<AuditEntry> {
        let clock = Rc::new(ManualClock::new(START_MS));
        let (_, mut store) = store(&clock);
        let policy = Policy::from_json(
            r#"{ "rules": [
                { "kind": "threshold", "status": "bytes_since_snapshot", "above": 2048,
                  "action": "snapshot", "label": "auto-{n}" },
                { "kind": "threshold", "status": "partition_count", "above": 4,
                  "action": "merge_oldest", "cooldown_ms": 60000 },
                { "kind": "threshold", "status": "reclaimable_bytes", "above": 0,
                  "action": "compact" }
            ] }"#,
        )
        .unwrap();
        block_on(store.set_policy(Some(policy))).unwrap();
        for i in 0..200u64 {
            clock.advance(10_000);
            block_on(store.write((i * 7) % BLOCKS, &vec![i as u8; BS])).unwrap();
            if i % 3 == 0 {
                block_on(store.write((i * 7) % BLOCKS, &vec![!(i as u8); BS])).unwrap();
            }
        }
        store.audit().to_vec()
    }
    let first = run();
    assert!(
        first
            .iter()
            .any(|e| matches!(e.decision, Decision::Merge { .. })),
        "{first:#?}"
    );
    assert!(first
        .iter()
        .any(|e| matches!(e.decision, Decision::Snapshot { .. })));
    assert_eq!(first, run());
}

#[test]
fn a_policy_copy_never_names_a_deleted_volume_as_the_newest() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    let policy = Policy::from_json(
        r#"{ "rules": [ { "kind": "event", "event": "close", "action": "copy", "target": "backup" } ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    let mut stream = Vec::new();
    let close = |store: &mut Managed<Store<MemoryStorage>>, stream: &mut Vec<u8>| {
        stream.clear();
        let entries = block_on(store.event("close", &mut |_, chunk| {
            stream.extend_from_slice(chunk);
            Ok(())
        }))
        .unwrap();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].outcome.clone()
    };
    block_on(store.write(1, &vec![1u8; BS])).unwrap();
    let s1 = block_on(store.snapshot(Some("s1"))).unwrap();
    assert_eq!(
        close(&mut store, &mut stream),
        Outcome::Applied { volume: Some(s1) }
    );
    let mut receiver = StreamReceiver::new_store(MemoryStorage::new(), clock.clone());
    block_on(receiver.push(&stream)).unwrap();
    let (copy, _) = block_on(receiver.finish()).unwrap();
    // The newest snapshot is deleted; the head still grows from its (hidden) partition.
    block_on(store.write(2, &vec![2u8; BS])).unwrap();
    let s2 = block_on(store.snapshot(Some("s2"))).unwrap();
    block_on(store.write(3, &vec![3u8; BS])).unwrap();
    block_on(store.delete_volume(s2)).unwrap();
    // The newest visible snapshot is s1, which the target already has.
    let outcome = close(&mut store, &mut stream);
    assert!(
        matches!(&outcome, Outcome::Skipped { why } if why.contains(&format!("already has volume {s1}"))),
        "{outcome:?}"
    );
    // The next copy is incremental from s1 and lands on the target's store.
    let s3 = block_on(store.snapshot(Some("s3"))).unwrap();
    assert_eq!(
        close(&mut store, &mut stream),
        Outcome::Applied { volume: Some(s3) }
    );
    let mut receiver = StreamReceiver::into_store(copy);
    block_on(receiver.push(&stream)).unwrap();
    let (copy, _) = block_on(receiver.finish()).unwrap();
    assert_eq!(
        block_on(copy.read_at(s3, 0, BLOCKS)).unwrap(),
        block_on(store.read_at(s3, 0, BLOCKS)).unwrap()
    );
    // Every snapshot gone but the hidden ones: nothing to copy, whatever the target had.
    block_on(store.delete_volume(s1)).unwrap();
    block_on(store.delete_volume(s3)).unwrap();
    let outcome = close(&mut store, &mut stream);
    assert!(
        matches!(&outcome, Outcome::Skipped { why } if why.contains("no snapshot")),
        "{outcome:?}"
    );
}

#[test]
fn closing_runs_no_threshold_rule() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (storage, mut store) = store(&clock);
    block_on(store.set_policy(Some(busy_policy()))).unwrap();
    store.set_automatic_policies(false);
    for i in 0..4u64 {
        block_on(store.write(i, &vec![4u8; BS])).unwrap();
    }
    store.set_automatic_policies(true);
    block_on(store.close()).unwrap();
    let store = block_on(Managed::open_store(storage, clock.clone(), true)).unwrap();
    assert!(snapshot_ids(&store).is_empty());
    assert!(store.audit().is_empty(), "{:?}", store.audit());
    assert_eq!(
        block_on(store.read(0, 4)).unwrap(),
        vec![4u8; 4 * BS],
        "the writes were made durable"
    );
}

/// A store whose next write makes `log_bytes > 0 -> merge_oldest` due, with three snapshots.
fn merge_setup(disk: &SimDisk, clock: &Rc<ManualClock>) -> Managed<Store<SimDisk>> {
    let mut store = Managed::new(
        block_on(Store::create(
            disk.clone(),
            CreateOptions::new(BLOCKS).block_size(BS as u32),
            clock.clone(),
        ))
        .unwrap(),
    )
    .unwrap();
    let policy = Policy::from_json(
        r#"{ "rules": [
            { "name": "shrink", "kind": "threshold", "status": "log_bytes", "above": 0,
              "action": "merge_oldest" }
        ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    store.set_automatic_policies(false);
    for round in 0..3u8 {
        block_on(store.write(u64::from(round), &vec![round + 1; 4 * BS])).unwrap();
        block_on(store.snapshot(None)).unwrap();
    }
    block_on(store.sync()).unwrap();
    store.set_automatic_policies(true);
    store
}

#[test]
fn a_failed_automatic_action_fails_no_operation_and_is_not_retried_after_reopen() {
    // Every I/O of the automatic merge that follows a write fails in turn. Whatever fails, the
    // write returns Ok unless the store is poisoned, the failure is in the audit trail, and once
    // the attempt is recorded no later operation (before or after a reopen) retries it at once.
    let mut failed_cleanly = 0;
    let mut poisoned_then_held = 0;
    for k in 1.. {
        let clock = Rc::new(ManualClock::new(START_MS));
        let disk = SimDisk::new();
        let mut store = merge_setup(&disk, &clock);
        let start = disk.io_count();
        disk.fail_once_at(start + k);
        clock.advance(1000);
        let result = block_on(store.write(20, &vec![9u8; BS]));
        if disk.io_count() - start < k {
            // The failure point is past the whole operation: every case was seen.
            assert!(result.is_ok());
            assert!(
                matches!(
                    store.audit().last().map(|e| &e.outcome),
                    Some(Outcome::Applied { .. })
                ),
                "{:?}",
                store.audit()
            );
            break;
        }
        let attempted = |store: &Managed<Store<SimDisk>>| {
            store.policy_view(None).rule_last_run_ms.get(&0) == Some(&(START_MS + 1000))
        };
        match result {
            Ok(_) => {
                let Some(Outcome::Failed { .. }) = store.audit().last().map(|e| &e.outcome) else {
                    continue; // The failure hit the merge's aftermath (not the merge).
                };
                failed_cleanly += 1;
                assert!(
                    attempted(&store),
                    "k {k}: the failed attempt is the rule's run"
                );
                let audit = store.audit().len();
                block_on(store.write(21, &vec![9u8; BS])).unwrap();
                assert_eq!(store.audit().len(), audit, "k {k}: retried at once");
                block_on(store.close()).unwrap();
                let mut store =
                    block_on(Managed::open_store(disk.clone(), clock.clone(), true)).unwrap();
                block_on(store.write(22, &vec![9u8; BS])).unwrap();
                block_on(store.sync()).unwrap();
                // (Recovery may finish a merge that had started: that is not a retry.)
                assert_eq!(store.audit().len(), audit, "k {k}: retried after reopen");
            }
            Err(_) => {
                drop(store);
                disk.crash(CrashMode::KeepAll, &mut StdRng::seed_from_u64(k));
                let mut store =
                    block_on(Managed::open_store(disk.clone(), clock.clone(), true)).unwrap();
                if !attempted(&store) {
                    continue; // The failure came before the attempt was recorded.
                }
                if store
                    .audit()
                    .iter()
                    .any(|e| matches!(e.outcome, Outcome::Applied { .. }))
                {
                    continue; // The merge was carried out; the failure came after it.
                }
                poisoned_then_held += 1;
                let audit = store.audit().len();
                let partitions = store.info().partitions;
                for i in 0..5u64 {
                    block_on(store.write(22 + i, &vec![9u8; BS])).unwrap();
                }
                block_on(store.sync()).unwrap();
                assert_eq!(
                    store.audit().len(),
                    audit,
                    "k {k}: retried after reopen: {:#?}",
                    store.audit()
                );
                assert_eq!(store.info().partitions, partitions, "k {k}");
                // A change of the partitions re-arms the rule.
                block_on(store.snapshot(None)).unwrap();
                assert!(
                    matches!(
                        store.audit().last().map(|e| &e.outcome),
                        Some(Outcome::Applied { .. })
                    ),
                    "k {k}: {:?}",
                    store.audit().last()
                );
            }
        }
    }
    assert!(failed_cleanly > 0, "no read of the merge failed");
    assert!(poisoned_then_held > 0, "no commit of the merge failed");
}

fn snapshot_labels(store: &Managed<Store<MemoryStorage>>, prefix: &str) -> Vec<VolumeId> {
    store
        .volumes()
        .iter()
        .filter(|v| v.kind == VolumeKind::Snapshot && v.label.starts_with(prefix))
        .map(|v| v.id)
        .collect()
}

fn event_entries<'a>(store: &'a Managed<Store<MemoryStorage>>, name: &str) -> Vec<&'a AuditEntry> {
    store
        .audit()
        .iter()
        .filter(|e| e.trigger == Some(Trigger::Event(name.into())))
        .collect()
}

#[test]
fn the_open_event_fires_on_a_writable_reopen_with_automatic_policies_on() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (storage, mut store) = store(&clock);
    let policy = Policy::from_json(
        r#"{ "rules": [ { "kind": "event", "event": "open", "action": "snapshot", "label": "at-open" } ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    block_on(store.write(1, &vec![7u8; BS])).unwrap();
    assert!(
        snapshot_labels(&store, "at-open").is_empty(),
        "not on set_policy"
    );
    block_on(store.close()).unwrap();

    let store = block_on(Managed::open_store(storage.clone(), clock.clone(), true)).unwrap();
    let snaps = snapshot_labels(&store, "at-open");
    assert_eq!(snaps.len(), 1, "{:?}", store.volumes());
    assert_eq!(
        block_on(store.read_at(snaps[0], 1, 1)).unwrap(),
        vec![7u8; BS]
    );
    let entries = event_entries(&store, "open");
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(matches!(entries[0].outcome, Outcome::Applied { .. }));
    assert_eq!(entries[0].after, None);
    block_on(store.close()).unwrap();

    // A read-only view never fires.
    let view = block_on(Store::open_read_only(storage.clone(), clock.clone())).unwrap();
    let view = block_on(Managed::open(view, true)).unwrap();
    assert_eq!(snapshot_labels(&view, "at-open").len(), 1);
    block_on(view.close()).unwrap();
    let store = block_on(Managed::open_store(storage.clone(), clock.clone(), true)).unwrap();
    assert_eq!(
        snapshot_labels(&store, "at-open").len(),
        2,
        "read-only open fired"
    );
    block_on(store.close()).unwrap();

    // Automatic policies off from the start: nothing fires.
    let store = block_on(Managed::open_store(storage.clone(), clock.clone(), false)).unwrap();
    assert!(!store.automatic_policies());
    assert_eq!(snapshot_labels(&store, "at-open").len(), 2);
    block_on(store.close()).unwrap();
    let store = block_on(Managed::open_store(storage, clock.clone(), true)).unwrap();
    assert_eq!(snapshot_labels(&store, "at-open").len(), 3);
}

#[test]
fn the_close_event_leaves_a_snapshot_visible_after_reopen() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (storage, mut store) = store(&clock);
    let policy = Policy::from_json(
        r#"{ "rules": [ { "kind": "event", "event": "close", "action": "snapshot", "label": "at-close" } ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    block_on(store.write(2, &vec![9u8; BS])).unwrap();
    block_on(store.close()).unwrap();
    let mut store = block_on(Managed::open_store(storage.clone(), clock.clone(), true)).unwrap();
    let snaps = snapshot_labels(&store, "at-close");
    assert_eq!(snaps.len(), 1, "{:?}", store.volumes());
    assert_eq!(
        block_on(store.read_at(snaps[0], 2, 1)).unwrap(),
        vec![9u8; BS]
    );
    assert_eq!(event_entries(&store, "close").len(), 1);
    // Off: closing fires nothing.
    store.set_automatic_policies(false);
    block_on(store.close()).unwrap();
    let store = block_on(Managed::open_store(storage, clock.clone(), false)).unwrap();
    assert_eq!(snapshot_labels(&store, "at-close").len(), 1);
}

#[test]
fn compaction_events_fire_around_user_compactions_and_merges_only() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    let policy = Policy::from_json(
        r#"{ "rules": [
            { "kind": "event", "event": "before_compaction", "action": "snapshot", "label": "pre-compact" },
            { "kind": "event", "event": "after_compaction", "action": "copy", "target": "backup" },
            { "kind": "event", "event": "tidy", "action": "compact" }
        ] }"#,
    )
    .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
    // Overwrites within one partition leave reclaimable bytes.
    block_on(store.write(1, &vec![1u8; BS])).unwrap();
    block_on(store.write(1, &vec![2u8; BS])).unwrap();
    let s1 = block_on(store.snapshot(Some("s1"))).unwrap();
    block_on(store.write(3, &vec![3u8; BS])).unwrap();
    block_on(store.write(3, &vec![4u8; BS])).unwrap();
    let s2 = block_on(store.snapshot(Some("s2"))).unwrap();

    // A compaction the executor carries out signals nothing.
    let entries = block_on(store.event("tidy", &mut no_copy)).unwrap();
    assert!(
        matches!(
            entries[..],
            [AuditEntry {
                decision: Decision::Compact { .. },
                outcome: Outcome::Applied { .. },
                ..
            }]
        ),
        "{entries:?}"
    );
    assert!(snapshot_labels(&store, "pre-compact").is_empty());
    assert!(event_entries(&store, "before_compaction").is_empty());
    assert!(event_entries(&store, "after_compaction").is_empty());

    // A user compaction: a snapshot before it, the copy recorded (deferred) after it.
    let audit_before = store.audit().len();
    block_on(store.compact(s2, &mut |_| true)).unwrap();
    let pre = snapshot_labels(&store, "pre-compact");
    assert_eq!(pre.len(), 1, "{:?}", store.volumes());
    assert!(pre[0] > s2);
    let new: Vec<&AuditEntry> = store.audit()[audit_before..].iter().collect();
    assert_eq!(new.len(), 2, "{new:?}");
    assert_eq!(
        new[0].trigger,
        Some(Trigger::Event("before_compaction".into()))
    );
    assert!(matches!(new[0].decision, Decision::Snapshot { .. }));
    assert!(matches!(new[0].outcome, Outcome::Applied { .. }));
    assert_eq!(
        new[1].trigger,
        Some(Trigger::Event("after_compaction".into()))
    );
    assert!(matches!(&new[1].decision, Decision::Copy { target, .. } if target == "backup"));
    assert!(
        matches!(&new[1].outcome, Outcome::Skipped { why } if why.contains("no copy sink")),
        "{:?}",
        new[1].outcome
    );

    // A user merge: the same pair, once each (the snapshot does not signal again).
    let audit_before = store.audit().len();
    block_on(store.merge(s1, &mut |_| true)).unwrap();
    assert_eq!(snapshot_labels(&store, "pre-compact").len(), 2);
    let new: Vec<&AuditEntry> = store.audit()[audit_before..].iter().collect();
    assert_eq!(new.len(), 2, "{new:?}");
    assert_eq!(
        new[0].trigger,
        Some(Trigger::Event("before_compaction".into()))
    );
    assert_eq!(
        new[1].trigger,
        Some(Trigger::Event("after_compaction".into()))
    );

    // Automatic policies off: a user compaction signals nothing.
    store.set_automatic_policies(false);
    let audit_before = store.audit().len();
    block_on(store.compact(s2, &mut |_| true)).unwrap();
    assert_eq!(store.audit().len(), audit_before);
    assert_eq!(snapshot_labels(&store, "pre-compact").len(), 2);
}

#[test]
fn the_policy_scheme_names_every_snapshot_taken_without_a_label_and_never_twice_alike() {
    let clock = Rc::new(ManualClock::new(START_MS + 13 * HOUR_MS));
    let (_, mut store) = store(&clock);
    // Without a policy, an unlabelled snapshot stays unlabelled.
    block_on(store.write(1, &vec![1u8; BS])).unwrap();
    let first = block_on(store.snapshot(None)).unwrap();
    assert_eq!(store.volume(first).unwrap().label, "");
    block_on(store.set_policy(Some(
        Policy::from_json(r#"{"labels": "time", "rules": []}"#).unwrap(),
    )))
    .unwrap();
    // A user's snapshot is named by the scheme; two in the same second get a suffix.
    let a = block_on(store.snapshot(None)).unwrap();
    let b = block_on(store.snapshot(None)).unwrap();
    assert_eq!(store.volume(a).unwrap().label, "2024-01-01T130000Z");
    assert_eq!(store.volume(b).unwrap().label, "2024-01-01T130000Z-2");
    // A label given explicitly is kept as given, even a duplicate.
    let c = block_on(store.snapshot(Some("2024-01-01T130000Z"))).unwrap();
    assert_eq!(store.volume(c).unwrap().label, "2024-01-01T130000Z");
    // Templates see `{n}` as the identifier the snapshot carries and `{rule}` as `user`;
    // a rollback's sealed head is named too.
    block_on(store.set_policy(Some(
        Policy::from_json(r#"{"labels": {"template": "{rule}-{n}"}, "rules": []}"#).unwrap(),
    )))
    .unwrap();
    block_on(store.write(2, &vec![2u8; BS])).unwrap();
    let d = block_on(store.snapshot(None)).unwrap();
    assert_eq!(store.volume(d).unwrap().label, format!("user-{}", d.0));
    block_on(store.write(3, &vec![3u8; BS])).unwrap();
    let sealed = store.head();
    block_on(store.rollback(a, None)).unwrap();
    assert_eq!(
        store.volume(sealed).unwrap().label,
        format!("user-{}", sealed.0)
    );
    // The policy's own snapshots are made unique the same way.
    block_on(store.set_policy(Some(
        Policy::from_json(
            r#"{"rules": [{ "kind": "event", "event": "go", "action": "snapshot", "label": "same" }]}"#,
        )
        .unwrap(),
    )))
    .unwrap();
    for _ in 0..3 {
        block_on(store.write(4, &vec![4u8; BS])).unwrap();
        block_on(store.event("go", &mut no_copy)).unwrap();
    }
    let mut same: Vec<String> = store
        .volumes()
        .into_iter()
        .map(|v| v.label)
        .filter(|l| l.starts_with("same"))
        .collect();
    same.sort();
    assert_eq!(same, ["same", "same-2", "same-3"]);
}

#[test]
fn a_retention_rule_never_touches_a_parked_branch_head() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    block_on(store.set_policy(Some(retain_an_hour()))).unwrap();
    let golden = block_on(store.snapshot(Some("golden"))).unwrap();
    let parked = block_on(store.clone_branch(golden, "test")).unwrap();
    block_on(store.snapshot(Some("newest"))).unwrap();
    clock.advance(10 * HOUR_MS);
    block_on(store.run_policies(Trigger::Tick, None, &mut no_copy)).unwrap();
    // The old snapshot goes (the branch keeps what it reads through it); the branch stays whole.
    assert!(
        store.volume(golden).is_err(),
        "the old snapshot was deleted"
    );
    assert_eq!(store.branch_head("test").unwrap(), parked);
    assert!(store.volume(parked).is_ok());
    // No rule sees it: the view the rules are evaluated on leaves it out.
    let view = strata_engine::policy::StoreView::from_store(&store.info(), &store.volumes());
    assert!(
        view.volume(parked).is_none(),
        "a policy sees the parked head"
    );
}
