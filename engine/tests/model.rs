//! Model-based test: random operations against the engine on the simulated disk and against a
//! plain in-memory model, with crash-and-reopen as one of the transitions.
//!
//! After a crash, every acknowledged write and snapshot must be intact, and the head must equal
//! the last acknowledged state plus a *prefix* of the unacknowledged records (never a torn mix).
//! proptest prints the failing operation list (crash seeds included) and persists it for replay.

use std::rc::Rc;

use pollster::block_on;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use strata_engine::clock::ManualClock;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{CreateOptions, Store};

mod common;
use common::Model;

const BS: usize = 512;
const BLOCKS: u64 = 24;

#[derive(Debug, Clone)]
enum Op {
    Write { addr: u64, blocks: u64, fill: u8 },
    Batch(Vec<(u64, u8)>),
    Sync,
    Snapshot,
    Crash { seed: u64, mode: u8 },
    Reopen,
    Tick(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..BLOCKS, 1..4u64, any::<u8>()).prop_map(|(addr, blocks, fill)| Op::Write {
            addr: addr.min(BLOCKS - blocks),
            blocks,
            fill
        }),
        2 => proptest::collection::vec((0..BLOCKS, any::<u8>()), 1..4).prop_map(Op::Batch),
        3 => Just(Op::Sync),
        2 => Just(Op::Snapshot),
        2 => (any::<u64>(), 0..3u8).prop_map(|(seed, mode)| Op::Crash { seed, mode }),
        1 => Just(Op::Reopen),
        1 => (1..10_000u64).prop_map(Op::Tick),
    ]
}

fn check(store: &Store<SimDisk>, model: &Model) -> Result<(), TestCaseError> {
    model.check(store).map_err(TestCaseError::fail)
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let disk = SimDisk::new();
    let clock = Rc::new(ManualClock::new(1_000));
    let mut store = block_on(Store::create(
        disk.clone(),
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock.clone(),
    ))
    .unwrap();
    store.set_write_buffer_bytes(0);
    let mut model = Model::new(BS, BLOCKS);
    for op in ops {
        match op {
            Op::Write { addr, blocks, fill } => {
                let data = vec![fill; blocks as usize * BS];
                block_on(store.write(addr, &data)).unwrap();
                model.apply(&[(addr, data)]);
            }
            Op::Batch(entries) => {
                let owned: Vec<(u64, Vec<u8>)> =
                    entries.iter().map(|(a, f)| (*a, vec![*f; BS])).collect();
                let borrowed: Vec<(u64, &[u8])> =
                    owned.iter().map(|(a, d)| (*a, d.as_slice())).collect();
                block_on(store.write_batch(&borrowed)).unwrap();
                model.apply(&owned);
            }
            Op::Sync => {
                block_on(store.sync()).unwrap();
                model.synced();
            }
            Op::Snapshot => {
                let id = block_on(store.snapshot(None)).unwrap();
                model.snapshot(id);
            }
            Op::Tick(ms) => clock.advance(ms),
            Op::Reopen => {
                block_on(store.close()).unwrap();
                store = block_on(Store::open(disk.clone(), clock.clone())).unwrap();
                store.set_write_buffer_bytes(0);
                model.synced();
            }
            Op::Crash { seed, mode } => {
                drop(store);
                let mode =
                    [CrashMode::DropAll, CrashMode::KeepAll, CrashMode::Random][mode as usize];
                disk.crash(mode, &mut StdRng::seed_from_u64(seed));
                store = block_on(Store::open(disk.clone(), clock.clone()))
                    .map_err(|e| TestCaseError::fail(format!("reopen after crash: {e}")))?;
                store.set_write_buffer_bytes(0);
                let (synced, written) = (model.synced_next_seq, model.next_seq);
                model.recovered(&store).map_err(TestCaseError::fail)?;
                if mode == CrashMode::DropAll {
                    prop_assert_eq!(
                        model.next_seq,
                        synced,
                        "unsynced writes survived a crash that dropped them"
                    );
                }
                if mode == CrashMode::KeepAll {
                    prop_assert_eq!(
                        model.next_seq,
                        written,
                        "writes that reached the medium were cut"
                    );
                }
            }
        }
        check(&store, &model)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model_through_crashes(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
