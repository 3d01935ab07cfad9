//! Crash at every I/O point, with several damage patterns per point and a second crash during
//! the recovery that follows:
//! * of a seeded random workload of every operation;
//! * of every sequence of up to three operations from {write, sync, snapshot, compact, merge,
//!   delete, rollback}, after a fixed setup (most real crash bugs need three operations or fewer).
//!
//! After recovery every volume must read as the model says: acknowledged writes and operations
//! intact, unacknowledged ones either complete or absent, never a mix. Seeds are printed; set
//! `STRATA_SEED` to replay one. The tests print how many sequences, crash points and runs they
//! tried.

use std::rc::Rc;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{CreateOptions, Store, VolumeId, VolumeKind};

mod common;
use common::Model;

const BS: usize = 512;
const BLOCKS: u64 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Write(u64, u64, u8),
    Batch(u64, u8),
    Sync,
    Snapshot,
    /// Compact the newest snapshot.
    Compact,
    /// Merge the oldest snapshot into the baseline.
    Merge,
    /// Delete the oldest snapshot.
    Delete,
    /// Roll back to the newest snapshot.
    Rollback,
}

const KINDS: [Op; 7] = [
    Op::Write(3, 2, 0xA1),
    Op::Sync,
    Op::Snapshot,
    Op::Compact,
    Op::Merge,
    Op::Delete,
    Op::Rollback,
];

fn workload(rng: &mut StdRng, len: usize) -> Vec<Op> {
    (0..len)
        .map(|_| match rng.random_range(0..16) {
            0..=6 => {
                let blocks = rng.random_range(1..4);
                Op::Write(rng.random_range(0..=BLOCKS - blocks), blocks, rng.random())
            }
            7 => Op::Batch(rng.random_range(0..BLOCKS - 2), rng.random()),
            8 | 9 => Op::Sync,
            10 | 11 => Op::Snapshot,
            12 => Op::Compact,
            13 => Op::Merge,
            14 => Op::Delete,
            _ => Op::Rollback,
        })
        .collect()
}

fn seed() -> u64 {
    match std::env::var("STRATA_SEED") {
        Ok(s) => s.parse().expect("STRATA_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    }
}

/// An operation that failed part-way: what it may or may not have done.
enum InFlight {
    Snapshot { old_head: VolumeId, image: Vec<u8> },
    Delete(VolumeId),
    Rollback { old_head: VolumeId, to: VolumeId },
    Merge(Vec<VolumeId>),
}

/// Runs one operation against store and model. `Err` carries what a failed operation may have
/// done; `Ok(false)` means the operation did not apply (no target).
fn apply(store: &mut Store<SimDisk>, model: &mut Model, op: Op) -> Result<bool, Option<InFlight>> {
    let snapshots: Vec<VolumeId> = model.snapshots.iter().map(|(v, _)| *v).collect();
    match op {
        Op::Write(addr, blocks, fill) => {
            let data = vec![fill; blocks as usize * BS];
            let r = block_on(store.write(addr, &data));
            // Even a failed write may have reached the medium: it is a candidate survivor.
            model.apply(&[(addr, data)]);
            r.map(|_| true).map_err(|_| None)
        }
        Op::Batch(addr, fill) => {
            let owned: Vec<(u64, Vec<u8>)> =
                vec![(addr, vec![fill; BS]), (addr + 2, vec![!fill; BS])];
            let borrowed: Vec<(u64, &[u8])> =
                owned.iter().map(|(a, d)| (*a, d.as_slice())).collect();
            let r = block_on(store.write_batch(&borrowed));
            model.apply(&owned);
            r.map(|_| true).map_err(|_| None)
        }
        Op::Sync => block_on(store.sync())
            .map(|()| model.synced())
            .map(|()| true)
            .map_err(|_| None),
        Op::Snapshot => {
            let in_flight = InFlight::Snapshot {
                old_head: store.head(),
                image: model.head.clone(),
            };
            match block_on(store.snapshot(None)) {
                Ok(id) => {
                    model.snapshot(id);
                    Ok(true)
                }
                Err(_) => Err(Some(in_flight)),
            }
        }
        Op::Compact => {
            let Some(&target) = snapshots.last() else {
                return Ok(false);
            };
            block_on(store.compact(target, &mut |_| true))
                .map(|_| true)
                .map_err(|_| None)
        }
        Op::Delete => {
            let Some(&target) = snapshots.first() else {
                return Ok(false);
            };
            match block_on(store.delete_volume(target)) {
                Ok(_) => {
                    model.snapshots.retain(|(v, _)| *v != target);
                    Ok(true)
                }
                Err(_) => Err(Some(InFlight::Delete(target))),
            }
        }
        Op::Rollback => {
            let Some(&target) = snapshots.last() else {
                return Ok(false);
            };
            let old_head = store.head();
            match block_on(store.rollback(target, None)) {
                Ok(_) => {
                    model.rolled_back(old_head, target);
                    Ok(true)
                }
                Err(_) => Err(Some(InFlight::Rollback {
                    old_head,
                    to: target,
                })),
            }
        }
        Op::Merge => {
            // Merge the oldest snapshot, if nothing else grows from the baseline.
            let Some(&target) = snapshots.first() else {
                return Ok(false);
            };
            match block_on(store.merge(target, &mut |_| true)) {
                Ok(_) => {
                    model.merged(&[target]);
                    Ok(true)
                }
                Err(strata_engine::Error::InvalidArgument(_)) => Ok(false),
                Err(_) => Err(Some(InFlight::Merge(vec![target]))),
            }
        }
    }
}

/// After recovery: decide from the store whether the operation in flight happened, and update
/// the model to match (both outcomes are legal; a mix is not, and `check` would see it).
fn resolve(store: &Store<SimDisk>, model: &mut Model, in_flight: Option<InFlight>) {
    let visible = |id: VolumeId| {
        store
            .volumes()
            .iter()
            .any(|v| v.id == id && v.kind == VolumeKind::Snapshot)
    };
    match in_flight {
        Some(InFlight::Snapshot { old_head, image }) if visible(old_head) => {
            model.snapshots.push((old_head, image));
            model.head_entries = 0;
            model.synced();
        }
        Some(InFlight::Delete(id)) if !visible(id) => {
            model.snapshots.retain(|(v, _)| *v != id);
        }
        Some(InFlight::Rollback { old_head, to }) if store.head() != old_head => {
            model.rolled_back(old_head, to);
        }
        Some(InFlight::Merge(chain)) => {
            let gone: Vec<VolumeId> = chain
                .iter()
                .copied()
                .take_while(|id| !visible(*id))
                .collect();
            model.merged(&gone);
        }
        _ => {}
    }
}

fn create(disk: &SimDisk, clock: &Rc<ManualClock>) -> Store<SimDisk> {
    let mut s = block_on(Store::create(
        disk.clone(),
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock.clone(),
    ))
    .unwrap();
    s.set_write_buffer_bytes(0);
    s
}

/// Runs `setup` (without faults) then `ops` with the device dying at I/O `point` of `ops`;
/// crashes, crashes again during recovery, reopens and checks. Returns the I/Os `ops` used when
/// `point` is `None`.
fn run_case(
    setup: &[Op],
    ops: &[Op],
    point: Option<u64>,
    mode: CrashMode,
    crash_seed: u64,
) -> Result<u64, String> {
    let clock = Rc::new(ManualClock::new(5_000));
    let disk = SimDisk::new();
    let mut store = create(&disk, &clock);
    let mut model = Model::new(BS, BLOCKS);
    for op in setup {
        apply(&mut store, &mut model, *op).map_err(|_| "setup failed".to_string())?;
    }
    let start = disk.io_count();
    if let Some(point) = point {
        disk.fail_from(start + point);
    }
    let mut in_flight = None;
    for op in ops {
        match apply(&mut store, &mut model, *op) {
            Ok(_) => {}
            Err(flight) => {
                in_flight = flight;
                break;
            }
        }
    }
    let used = disk.io_count() - start;
    drop(store);
    disk.crash(mode, &mut StdRng::seed_from_u64(crash_seed));
    // Crash again in the middle of recovery, at a random I/O of the open.
    let mut recovery_rng = StdRng::seed_from_u64(crash_seed);
    disk.fail_from(disk.io_count() + recovery_rng.random_range(1..16));
    let _ = block_on(Store::open(disk.clone(), clock.clone()));
    disk.crash(CrashMode::Random, &mut recovery_rng);
    let store = block_on(Store::open(disk.clone(), clock.clone()))
        .map_err(|e| format!("reopen failed: {e}"))?;
    resolve(&store, &mut model, in_flight);
    model.recovered(&store)?;
    model.check(&store)?;
    Ok(used)
}

const MODES: [CrashMode; 3] = [CrashMode::DropAll, CrashMode::KeepAll, CrashMode::Random];

fn crash_everywhere(setup: &[Op], ops: &[Op], seed: u64) -> Result<(u64, u64), String> {
    let total = run_case(setup, ops, None, CrashMode::KeepAll, seed)?;
    let mut runs = 0;
    for point in 1..=total + 1 {
        for mode in MODES {
            let crash_seed = seed ^ point.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            run_case(setup, ops, Some(point), mode, crash_seed)
                .map_err(|e| format!("ops {ops:?}, crash point {point}/{total}, {mode:?}: {e}"))?;
            runs += 1;
        }
    }
    Ok((total, runs))
}

#[test]
fn crash_at_every_io_point_of_a_random_workload() {
    let seed = seed();
    println!("random workload seed: {seed} (replay with STRATA_SEED={seed})");
    let ops = workload(&mut StdRng::seed_from_u64(seed), 150);
    let (points, runs) =
        crash_everywhere(&[], &ops, seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    println!("random workload: {} operations, {points} I/O crash points, {runs} crash runs, 0 violations", ops.len());
    assert!(
        points > 100,
        "the workload should perform many I/Os, did {points}"
    );
}

#[test]
fn crash_at_every_io_point_of_every_sequence_of_up_to_three_operations() {
    let seed = seed();
    println!("sequence test seed: {seed} (replay with STRATA_SEED={seed})");
    // Two snapshots with overwritten blocks, and unsynced writes in the head.
    let setup = [
        Op::Write(0, 3, 1),
        Op::Write(1, 1, 2),
        Op::Snapshot,
        Op::Write(1, 2, 3),
        Op::Write(8, 1, 4),
        Op::Snapshot,
        Op::Write(2, 1, 5),
        Op::Sync,
        Op::Write(9, 2, 6),
    ];
    let mut sequences = vec![];
    for a in KINDS {
        sequences.push(vec![a]);
        for b in KINDS {
            sequences.push(vec![a, b]);
            for c in KINDS {
                sequences.push(vec![a, b, c]);
            }
        }
    }
    let (mut points, mut runs) = (0, 0);
    for ops in &sequences {
        let (p, r) =
            crash_everywhere(&setup, ops, seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        points += p;
        runs += r;
    }
    println!(
        "sequences: {} sequences of up to 3 operations, {points} I/O crash points, {runs} crash runs, 0 violations",
        sequences.len()
    );
    assert_eq!(sequences.len(), 7 + 49 + 343);
}
