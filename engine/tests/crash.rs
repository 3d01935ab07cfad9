//! Crash at every I/O point of a seeded workload, with several damage patterns per point, and
//! a second crash during the recovery that follows.
//!
//! The seed is printed; set `STRATA_SEED` to replay one. The test prints how many crash points
//! and runs it tried.

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

#[derive(Debug, Clone)]
enum Op {
    Write(u64, u64, u8),
    Batch(Vec<(u64, u8)>),
    Sync,
    Snapshot,
}

fn workload(rng: &mut StdRng, len: usize) -> Vec<Op> {
    (0..len)
        .map(|_| match rng.random_range(0..10) {
            0..=4 => {
                let blocks = rng.random_range(1..4);
                Op::Write(rng.random_range(0..=BLOCKS - blocks), blocks, rng.random())
            }
            5 => Op::Batch(
                (0..rng.random_range(1..4))
                    .map(|_| (rng.random_range(0..BLOCKS), rng.random()))
                    .collect(),
            ),
            6 | 7 => Op::Sync,
            _ => Op::Snapshot,
        })
        .collect()
}

fn seed() -> u64 {
    match std::env::var("STRATA_SEED") {
        Ok(s) => s.parse().expect("STRATA_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    }
}

/// Runs `ops` until the first error. Returns the model of what must survive and, if a snapshot
/// was in flight when the error came, its volume id and image (it may or may not survive).
fn run_until_error(store: &mut Store<SimDisk>, ops: &[Op]) -> (Model, Option<(VolumeId, Vec<u8>)>) {
    let mut model = Model::new(BS, BLOCKS);
    for op in ops {
        let outcome = match op {
            Op::Write(addr, blocks, fill) => {
                let data = vec![*fill; *blocks as usize * BS];
                let r = block_on(store.write(*addr, &data));
                // Even a failed write may have reached the medium: it is a candidate survivor.
                model.apply(&[(*addr, data)]);
                r.map(|_| ())
            }
            Op::Batch(entries) => {
                let owned: Vec<(u64, Vec<u8>)> =
                    entries.iter().map(|(a, f)| (*a, vec![*f; BS])).collect();
                let borrowed: Vec<(u64, &[u8])> =
                    owned.iter().map(|(a, d)| (*a, d.as_slice())).collect();
                let r = block_on(store.write_batch(&borrowed));
                model.apply(&owned);
                r.map(|_| ())
            }
            Op::Sync => block_on(store.sync()).map(|()| model.synced()),
            Op::Snapshot => {
                let in_flight = (store.head(), model.head.clone());
                match block_on(store.snapshot(None)) {
                    Ok(id) => {
                        model.snapshot(id);
                        Ok(())
                    }
                    Err(_) => return (model, Some(in_flight)),
                }
            }
        };
        if outcome.is_err() {
            return (model, None);
        }
    }
    (model, None)
}

fn open(disk: &SimDisk, clock: &Rc<ManualClock>) -> Store<SimDisk> {
    let mut store = block_on(Store::open(disk.clone(), clock.clone()))
        .unwrap_or_else(|e| panic!("reopen failed: {e}"));
    store.set_write_buffer_bytes(0);
    store
}

#[test]
fn crash_at_every_io_point_keeps_acknowledged_state() {
    let seed = seed();
    println!("crash test seed: {seed} (replay with STRATA_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let ops = workload(&mut rng, 120);
    let clock = Rc::new(ManualClock::new(5_000));
    let create = |disk: &SimDisk| {
        let mut s = block_on(Store::create(
            disk.clone(),
            CreateOptions::new(BLOCKS).block_size(BS as u32),
            clock.clone(),
        ))
        .unwrap();
        s.set_write_buffer_bytes(0);
        s
    };
    // Count the workload's I/Os once without faults.
    let disk = SimDisk::new();
    let mut store = create(&disk);
    let start = disk.io_count();
    run_until_error(&mut store, &ops);
    let total = disk.io_count() - start;
    drop(store);

    let mut runs = 0;
    for point in 1..=total {
        for mode in [CrashMode::DropAll, CrashMode::KeepAll, CrashMode::Random] {
            let disk = SimDisk::new();
            let mut store = create(&disk);
            disk.fail_from(disk.io_count() + point);
            let (mut model, in_flight) = run_until_error(&mut store, &ops);
            drop(store);
            let crash_seed = seed ^ point.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            disk.crash(mode, &mut StdRng::seed_from_u64(crash_seed));
            // Crash again in the middle of recovery, at a random I/O of the open.
            let mut recovery_rng = StdRng::seed_from_u64(crash_seed);
            disk.fail_from(disk.io_count() + recovery_rng.random_range(1..12));
            let _ = block_on(Store::open(disk.clone(), clock.clone()));
            disk.crash(CrashMode::Random, &mut recovery_rng);

            let store = open(&disk, &clock);
            let context = format!("seed {seed}, crash point {point}/{total}, {mode:?}");
            if let Some((id, image)) = in_flight {
                if store
                    .volumes()
                    .iter()
                    .any(|v| v.id == id && v.kind == VolumeKind::Snapshot)
                {
                    model.snapshots.push((id, image));
                    model.synced();
                }
            }
            model
                .recovered(&store)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            model
                .check(&store)
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            runs += 1;
        }
    }
    println!(
        "crash test: {} operations, {total} I/O crash points, {runs} crash runs, 0 violations",
        ops.len()
    );
    assert!(
        total > 40,
        "the workload should perform many I/Os, did {total}"
    );
}
