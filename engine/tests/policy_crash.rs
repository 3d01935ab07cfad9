//! Policy persistence under crashes: with the simulated disk, crash at every I/O point of
//! `set_policy`, `set_assignments`, a `run_policies` that snapshots and expires, and a write after
//! which the store snapshots by itself (a threshold rule, [`Trigger::AfterOperation`]), in every crash
//! mode, with a second crash during the recovery that follows; then reopen and check that
//! * the policy (with the executor's state) and the assignments are either the old or the new
//!   ones, never a mix;
//! * the audit trail is the old one plus a prefix of the entries the uninterrupted run records,
//!   each entry whole;
//! * the volumes are those the uninterrupted run had after that many decisions (or one more: a
//!   crash may fall between an action and its audit entry), each reading byte-identical to the
//!   image it was taken from.
//!
//! Seeds are printed; set `STRATA_SEED` to replay one.

use std::collections::BTreeMap;
use std::rc::Rc;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::policy::{
    AuditEntry, Decision, Operation, Outcome, Policy, Trigger, VolumeAssignments,
};
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{CreateOptions, Managed, Store, VolumeId, VolumeKind};

const BS: usize = 512;
const BLOCKS: u64 = 8;
const HOUR_MS: u64 = 3_600_000;
/// 2024-01-01T00:00:00Z.
const START_MS: u64 = 1_704_067_200_000;
/// Crash runs per point in [`CrashMode::Random`].
const RANDOM_TRIES: u64 = 8;
const MODES: [CrashMode; 3] = [CrashMode::DropAll, CrashMode::KeepAll, CrashMode::Random];

fn seed() -> u64 {
    match std::env::var("STRATA_SEED") {
        Ok(s) => s.parse().expect("STRATA_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    }
}

/// Hourly snapshots labelled `auto-...`; the `old-` snapshots expire after four hours.
fn run_policy() -> Policy {
    Policy::from_json(
        r#"{ "rules": [
            { "name": "hourly", "kind": "snapshot_every", "snapshot_every_ms": 3600000, "label": "auto-{n}" },
            { "name": "expire", "kind": "retain", "label_prefix": "old-", "max_age_ms": 14400000 },
            { "name": "busy", "kind": "threshold", "status": "writes_since_snapshot", "above": 1,
              "action": "snapshot", "label": "busy-{n}" }
        ] }"#,
    )
    .unwrap()
}

fn other_policy() -> Policy {
    Policy::from_json(
        r#"{ "rules": [
            { "name": "busy", "kind": "threshold", "status": "writes_since_snapshot", "above": 1000, "action": "snapshot" }
        ] }"#,
    )
    .unwrap()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Case {
    SetPolicy,
    SetAssignments,
    /// A tick that takes a snapshot and deletes two expired ones (one by TTL, one by age).
    RunSnapshotAndExpire,
    /// A write that takes the head past the `busy` threshold: the store snapshots by itself.
    AutomaticSnapshotAfterWrite,
}

/// The block the automatic case writes, and its fill.
const AUTO_WRITE: (u64, u8) = (5, 0xAB);

/// The store after the fixed setup, with what its volumes must read.
struct Setup {
    store: Managed<Store<SimDisk>>,
    /// Every snapshot volume and the image it reads; the head's image under its own id.
    images: BTreeMap<VolumeId, Vec<u8>>,
    head_image: Vec<u8>,
    old: Vec<VolumeId>,
}

fn setup(disk: &SimDisk, clock: &Rc<ManualClock>) -> Setup {
    let mut store = Managed::new(
        block_on(Store::create(
            disk.clone(),
            CreateOptions::new(BLOCKS).block_size(BS as u32),
            clock.clone(),
        ))
        .unwrap(),
    )
    .unwrap();
    store.set_write_buffer_bytes(0);
    let mut image = vec![0u8; BLOCKS as usize * BS];
    let mut images = BTreeMap::new();
    let mut old = Vec::new();
    for n in 1..=4u8 {
        let addr = usize::from(n) % BLOCKS as usize;
        image[addr * BS..(addr + 1) * BS].fill(n);
        block_on(store.write(addr as u64, &vec![n; BS])).unwrap();
        let id = block_on(store.snapshot(Some(&format!("old-{n}")))).unwrap();
        images.insert(id, image.clone());
        old.push(id);
        clock.advance(HOUR_MS);
    }
    block_on(store.set_policy(Some(run_policy()))).unwrap();
    let mut assignments = VolumeAssignments::new();
    assignments.set_ttl_ms(old[0], Some(5 * HOUR_MS));
    assignments.set_hold(old[2], true);
    block_on(store.set_assignments(assignments)).unwrap();
    // A first tick, so the executor has state (the hourly rule's last run) and an audit entry.
    clock.advance(HOUR_MS / 2);
    let head = store.head();
    let entries = block_on(store.run_policies(Trigger::Tick, None, &mut |_, _| Ok(()))).unwrap();
    assert!(
        matches!(
            &entries[..],
            [AuditEntry {
                decision: Decision::Snapshot { .. },
                outcome: Outcome::Applied { .. },
                ..
            }]
        ),
        "setup tick: {entries:?}"
    );
    images.insert(head, image.clone());
    image[0..BS].fill(0xEE);
    block_on(store.write(0, &vec![0xEE; BS])).unwrap();
    block_on(store.sync()).unwrap();
    // Two hours on: old-1 is past its TTL, old-2 past the retention age, old-3 is held.
    clock.advance(2 * HOUR_MS);
    Setup {
        store,
        images,
        head_image: image,
        old,
    }
}

fn new_assignments(old: &[VolumeId]) -> VolumeAssignments {
    let mut a = VolumeAssignments::new();
    a.set_hold(old[1], true);
    a.set_ttl_ms(old[3], Some(10 * HOUR_MS));
    a
}

/// Runs the case's operation; `Ok(entries)` if it returned.
fn operate(
    store: &mut Managed<Store<SimDisk>>,
    case: Case,
    old: &[VolumeId],
) -> Result<Vec<AuditEntry>, ()> {
    match case {
        Case::SetPolicy => block_on(store.set_policy(Some(other_policy())))
            .map(|()| Vec::new())
            .map_err(|_| ()),
        Case::SetAssignments => block_on(store.set_assignments(new_assignments(old)))
            .map(|()| Vec::new())
            .map_err(|_| ()),
        Case::RunSnapshotAndExpire => {
            block_on(store.run_policies(Trigger::Tick, None, &mut |_, _| Ok(()))).map_err(|_| ())
        }
        Case::AutomaticSnapshotAfterWrite => {
            let before = store.audit().len();
            block_on(store.write(AUTO_WRITE.0, &vec![AUTO_WRITE.1; BS])).map_err(|_| ())?;
            Ok(store.audit()[before..].to_vec())
        }
    }
}

/// What the uninterrupted run leaves after each of its audit entries.
struct Reference {
    ios: u64,
    entries: Vec<AuditEntry>,
    /// The snapshot volumes after `k` entries, `k = 0..=entries.len()`.
    volumes_after: Vec<Vec<VolumeId>>,
    assignments_after: Vec<VolumeAssignments>,
}

fn snapshots(store: &Managed<Store<SimDisk>>) -> Vec<VolumeId> {
    store
        .volumes()
        .iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| v.id)
        .collect()
}

fn reference(case: Case) -> Reference {
    let clock = Rc::new(ManualClock::new(START_MS));
    let disk = SimDisk::new();
    let Setup { mut store, old, .. } = setup(&disk, &clock);
    let before = snapshots(&store);
    let assignments = store.assignments().clone();
    let start = disk.io_count();
    let head = store.head();
    let entries = operate(&mut store, case, &old).expect("the uninterrupted run succeeds");
    let ios = disk.io_count() - start;
    let mut volumes_after = vec![before];
    let mut assignments_after = vec![assignments];
    let mut pruned = store.assignments().clone();
    for entry in &entries {
        let mut volumes = volumes_after.last().cloned().unwrap_or_default();
        match (&entry.decision, &entry.outcome) {
            (Decision::Snapshot { .. }, Outcome::Applied { volume: Some(v) }) => {
                assert_eq!(*v, head);
                volumes.push(*v);
            }
            (Decision::Delete { volume, .. }, Outcome::Applied { .. }) => {
                volumes.retain(|v| v != volume)
            }
            other => panic!("unexpected decision in the reference run: {other:?}"),
        }
        volumes.sort();
        // The executor drops the assignments of volumes that are gone with each entry.
        pruned = VolumeAssignments::new();
        for (v, a) in assignments_after.last().into_iter().flat_map(|a| a.iter()) {
            if volumes.contains(&v) || v == store.head() {
                pruned.set(v, a);
            }
        }
        volumes_after.push(volumes);
        assignments_after.push(pruned.clone());
    }
    if case == Case::AutomaticSnapshotAfterWrite {
        assert!(
            matches!(
                &entries[..],
                [AuditEntry {
                    decision: Decision::Snapshot { .. },
                    trigger: Some(Trigger::AfterOperation),
                    after: Some(Operation::Write),
                    ..
                }]
            ),
            "{entries:#?}"
        );
    }
    if case == Case::RunSnapshotAndExpire {
        let deletes = entries
            .iter()
            .filter(|e| matches!(e.decision, Decision::Delete { .. }))
            .count();
        assert_eq!(entries.len(), 3, "{entries:#?}");
        assert_eq!(deletes, 2, "{entries:#?}");
        assert_eq!(&pruned, store.assignments());
    }
    Reference {
        ios,
        entries,
        volumes_after,
        assignments_after,
    }
}

fn run_case(
    case: Case,
    reference: &Reference,
    point: u64,
    mode: CrashMode,
    crash_seed: u64,
) -> Result<(), String> {
    let clock = Rc::new(ManualClock::new(START_MS));
    let disk = SimDisk::new();
    let Setup {
        mut store,
        mut images,
        head_image,
        old,
    } = setup(&disk, &clock);
    let old_policy = store.policy().cloned();
    let old_state = store.policy_view(None).rule_last_run_ms;
    let old_assignments = store.assignments().clone();
    let old_audit = store.audit().to_vec();
    let head = store.head();
    // What the head reads after the operation, if its write survived.
    let mut written_image = head_image.clone();
    if case == Case::AutomaticSnapshotAfterWrite {
        let at = AUTO_WRITE.0 as usize * BS;
        written_image[at..at + BS].fill(AUTO_WRITE.1);
        // The automatic snapshot seals the head with the write in it.
        images.insert(head, written_image.clone());
    } else {
        images.insert(head, head_image.clone());
    }
    disk.fail_from(disk.io_count() + point);
    let _ = operate(&mut store, case, &old);
    drop(store);
    disk.crash(mode, &mut StdRng::seed_from_u64(crash_seed));
    let mut recovery_rng = StdRng::seed_from_u64(crash_seed);
    disk.fail_from(disk.io_count() + recovery_rng.random_range(1..16));
    let _ = block_on(Managed::open_store(disk.clone(), clock.clone(), true));
    disk.crash(CrashMode::Random, &mut recovery_rng);
    let store = block_on(Managed::open_store(disk.clone(), clock.clone(), true))
        .map_err(|e| format!("reopen failed: {e}"))?;

    // Policy and the executor's state: old or new together.
    let state = store.policy_view(None).rule_last_run_ms;
    match case {
        Case::SetPolicy => {
            let new = Some(other_policy());
            if store.policy() == new.as_ref() {
                if !state.is_empty() {
                    return Err(format!(
                        "new policy with the old rules' run times {state:?}"
                    ));
                }
            } else if store.policy() != old_policy.as_ref() || state != old_state {
                return Err(format!(
                    "policy is neither old nor new: {:?}, state {state:?}",
                    store.policy()
                ));
            }
        }
        _ if store.policy() != old_policy.as_ref() => {
            return Err(format!("policy changed: {:?}", store.policy()))
        }
        _ => {}
    }
    // Audit: the old trail plus a prefix of the reference run's entries.
    let audit = store.audit();
    if audit.len() < old_audit.len() || audit[..old_audit.len()] != old_audit[..] {
        return Err(format!("the old audit trail was damaged: {audit:?}"));
    }
    let k = audit.len() - old_audit.len();
    if k > reference.entries.len() || audit[old_audit.len()..] != reference.entries[..k] {
        return Err(format!(
            "audit is not a prefix of the uninterrupted run's: {:?}",
            &audit[old_audit.len()..]
        ));
    }
    // Assignments: old or new (set_assignments), or as after entry k (run).
    let assignments = store.assignments();
    let assignments_ok = match case {
        Case::SetAssignments => {
            *assignments == old_assignments || *assignments == new_assignments(&old)
        }
        _ => *assignments == reference.assignments_after[k],
    };
    if !assignments_ok {
        return Err(format!(
            "assignments torn after {k} entries: {:?}",
            assignments.iter().collect::<Vec<_>>()
        ));
    }
    // Volumes: as after entry k, or k + 1 when the crash fell between an action and its entry.
    let volumes = snapshots(&store);
    let candidates = &reference.volumes_after[k..reference.volumes_after.len().min(k + 2)];
    if !candidates.contains(&volumes) {
        return Err(format!(
            "after {k} audit entries the snapshots are {volumes:?}, expected one of {candidates:?}"
        ));
    }
    for v in &volumes {
        let read = block_on(store.read_at(*v, 0, BLOCKS)).map_err(|e| format!("read {v}: {e}"))?;
        if Some(&read) != images.get(v) {
            return Err(format!("volume {v} does not read its image"));
        }
    }
    let read = block_on(store.read(0, BLOCKS)).map_err(|e| format!("read head: {e}"))?;
    // An unsynced write may or may not survive; once snapshotted, it must.
    let snapshotted = volumes.contains(&head);
    let acceptable = if snapshotted {
        read == written_image
    } else {
        read == head_image || read == written_image
    };
    if !acceptable {
        return Err("the head reads neither the synced image nor the written one".into());
    }
    Ok(())
}

fn crash_everywhere(case: Case) {
    let seed = seed();
    println!("{case:?}: seed {seed} (replay with STRATA_SEED={seed})");
    let reference = reference(case);
    let mut runs = 0;
    for point in 1..=reference.ios + 1 {
        for mode in MODES {
            // Random tearing is tried several times per point: these operations are short.
            let tries = if mode == CrashMode::Random {
                RANDOM_TRIES
            } else {
                1
            };
            for attempt in 0..tries {
                let crash_seed =
                    seed ^ point.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ attempt.rotate_left(32);
                run_case(case, &reference, point, mode, crash_seed).unwrap_or_else(|e| {
                    panic!(
                        "seed {seed}, {case:?}, crash point {point}/{}, {mode:?}, attempt {attempt}: {e}",
                        reference.ios
                    )
                });
                runs += 1;
            }
        }
    }
    println!(
        "{case:?}: {} I/O crash points, {runs} crash runs, 0 violations",
        reference.ios
    );
    assert!(reference.ios >= 2, "the operation does I/O");
}

#[test]
fn set_policy_is_old_or_new_after_a_crash_at_every_io_point() {
    crash_everywhere(Case::SetPolicy);
}

#[test]
fn set_assignments_is_old_or_new_after_a_crash_at_every_io_point() {
    crash_everywhere(Case::SetAssignments);
}

#[test]
fn a_snapshot_and_expire_run_is_never_torn_by_a_crash_at_any_io_point() {
    crash_everywhere(Case::RunSnapshotAndExpire);
}

#[test]
fn an_automatic_snapshot_after_a_write_is_never_torn_by_a_crash_at_any_io_point() {
    crash_everywhere(Case::AutomaticSnapshotAfterWrite);
}
