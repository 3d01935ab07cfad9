//! The policy executor against a real store: simulated months run in milliseconds, every
//! remaining volume still reads byte-identical to a model, and policy state survives reopen.

use std::collections::BTreeMap;
use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::policy::{
    apply_to_model, simulate, Assignment, Decision, Outcome, Policy, Trigger, VolumeAssignments,
};
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::{CreateOptions, Store, StreamReceiver, VolumeId, VolumeKind};

const BS: usize = 512;
const BLOCKS: u64 = 32;
const HOUR_MS: u64 = 3_600_000;
/// 2024-01-01T00:00:00Z, a Monday.
const START_MS: u64 = 1_704_067_200_000;

fn store(clock: &Rc<ManualClock>) -> (MemoryStorage, Store<MemoryStorage>) {
    let storage = MemoryStorage::new();
    let store = block_on(Store::create(
        storage.clone(),
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock.clone(),
    ))
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
    let store = block_on(Store::open(storage, clock.clone())).unwrap();
    assert_eq!(store.policy(), Some(&hourly_policy()));
    assert!(store.assignments().is_held(s));
    assert_eq!(store.audit().len(), entries.len());
    assert_eq!(store.audit()[0], entries[0]);
}

#[test]
fn a_held_volume_is_never_deleted() {
    let clock = Rc::new(ManualClock::new(START_MS));
    let (_, mut store) = store(&clock);
    let policy =
        Policy::from_json(r#"{ "rules": [ { "kind": "retain", "max_age_ms": 3600000 } ] }"#)
            .unwrap();
    block_on(store.set_policy(Some(policy))).unwrap();
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
