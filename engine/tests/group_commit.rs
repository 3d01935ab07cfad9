//! `Shared`: one store written and synced by many threads, with group commit (issue #13).
//!
//! * syncs queued while the volume's thread is busy are answered by one group, and one flush;
//! * threads writing and syncing concurrently, with snapshots, on the simulated disk crashed in
//!   the middle of their work (random tears and reorders): every thread's acknowledged writes
//!   survive, and what survives of a thread is a prefix of what it wrote; the store reopened in
//!   place and written on;
//! * a failed group fails each of its syncs with the same error, and the store is poisoned;
//! * `spawn` returns `open`'s error; a dropped handle closes the store like `close`.
//!
//! Seeded (`STRATA_SEED` replays the plans and the crashes; the threads' interleaving is the
//! machine's).

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::storage::dir::DirStorage;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{CreateOptions, Error, Shared, Store};

const BS: usize = 512;
const THREADS: u64 = 8;
/// Blocks each thread owns.
const OWN: u64 = 16;
const BLOCKS: u64 = THREADS * OWN;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

fn seed() -> u64 {
    let seed = std::env::var("STRATA_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    println!("seed {seed} (STRATA_SEED={seed} replays)");
    seed
}

/// Write `i` (from 1) of thread `t` in round `round`.
fn block(round: u64, t: u64, i: u64) -> Vec<u8> {
    let mut data = vec![i as u8; BS];
    data[..8].copy_from_slice(&round.to_le_bytes());
    data[8..16].copy_from_slice(&t.to_le_bytes());
    data[16..24].copy_from_slice(&i.to_le_bytes());
    data
}

fn tag(data: &[u8]) -> (u64, u64, u64) {
    let word = |k: usize| u64::from_le_bytes(data[k * 8..k * 8 + 8].try_into().unwrap());
    (word(0), word(1), word(2))
}

fn sim_store(disk: SimDisk) -> Store<SimDisk> {
    block_on(Store::create(
        disk,
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock(),
    ))
    .unwrap()
}

#[test]
fn syncs_queued_during_a_flush_are_answered_by_one_group_and_one_flush() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let shared = Shared::spawn(move || {
        block_on(Store::create(
            DirStorage::open(&root)?,
            CreateOptions::new(BLOCKS).block_size(BS as u32),
            clock(),
        ))
    })
    .unwrap();
    for t in 0..THREADS {
        shared.write(t * OWN, &block(0, t, 1)).unwrap();
    }
    let flushes_before = shared.call(|s| s.storage().flushes()).unwrap();

    // Hold the volume's thread in a call, ask for eight syncs meanwhile, then let it go.
    let (entered, entered_rx) = mpsc::channel();
    let (gate, gate_rx) = mpsc::channel::<()>();
    std::thread::scope(|s| {
        let shared = &shared;
        let held = s.spawn(move || {
            shared
                .call(move |_| {
                    entered.send(()).unwrap();
                    gate_rx.recv().unwrap();
                })
                .unwrap()
        });
        entered_rx.recv().unwrap();
        let tickets: Vec<_> = (0..THREADS).map(|_| shared.begin_sync()).collect();
        gate.send(()).unwrap();
        held.join().unwrap();
        for ticket in tickets {
            ticket.wait().unwrap();
        }
    });
    let stats = shared.stats();
    assert_eq!(
        (stats.syncs, stats.groups, stats.largest_group),
        (THREADS, 1, THREADS)
    );
    let flushes = shared.call(|s| s.storage().flushes()).unwrap() - flushes_before;
    assert_eq!(flushes, 1, "eight syncs, one group, one fdatasync");
    // Nothing written since: the next group flushes nothing.
    shared.sync().unwrap();
    assert_eq!(
        shared.call(|s| s.storage().flushes()).unwrap() - flushes_before,
        1
    );
    shared.close().unwrap();

    // Closed with its commit point: it opens and reads back.
    let store = block_on(Store::open(DirStorage::open(dir.path()).unwrap(), clock())).unwrap();
    for t in 0..THREADS {
        assert_eq!(block_on(store.read(t * OWN, 1)).unwrap(), block(0, t, 1));
    }
}

/// One thread's plan for a round: the block of each write (from its own blocks).
fn plan(rng: &mut StdRng, t: u64, len: usize) -> Vec<u64> {
    (0..len)
        .map(|_| t * OWN + rng.random_range(0..OWN))
        .collect()
}

/// What thread `t`'s blocks hold after the first `c` writes of `plan` over `base`.
fn after_prefix(base: &[Vec<u8>], round: u64, t: u64, plan: &[u64], c: u64) -> Vec<Vec<u8>> {
    let mut own: Vec<Vec<u8>> = (t * OWN..(t + 1) * OWN)
        .map(|b| base[b as usize].clone())
        .collect();
    for (i, &addr) in plan.iter().enumerate().take(c as usize) {
        own[(addr - t * OWN) as usize] = block(round, t, i as u64 + 1);
    }
    own
}

#[test]
fn concurrent_writers_keep_every_acknowledged_write_through_crashes() {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let disk_seed: u64 = rng.random();
    let shared = Shared::spawn(|| Ok(sim_store(SimDisk::new()))).unwrap();
    let rounds = 8;
    let plan_len = 300;
    let mut checked = 0;
    for round in 1..=rounds {
        let base = shared.read(0, BLOCKS).unwrap();
        let base: Vec<Vec<u8>> = base.chunks(BS).map(<[u8]>::to_vec).collect();
        let plans: Vec<Vec<u64>> = (0..THREADS).map(|t| plan(&mut rng, t, plan_len)).collect();
        let acked: Arc<Vec<AtomicU64>> =
            Arc::new((0..THREADS).map(|_| AtomicU64::new(0)).collect());
        let done = Arc::new(AtomicU64::new(0));
        let crashed = Arc::new(AtomicBool::new(false));
        let crash_after = rng.random_range(0..(THREADS as usize * plan_len) as u64);
        let mode = if round % 2 == 0 {
            CrashMode::Random
        } else {
            CrashMode::DropAll
        };
        let (image, acked_at_crash) = std::thread::scope(|s| {
            for t in 0..THREADS {
                let (shared, plan) = (&shared, &plans[t as usize]);
                let (acked, done, crashed) = (acked.clone(), done.clone(), crashed.clone());
                let mut rng = StdRng::seed_from_u64(seed ^ (round << 8 | t));
                s.spawn(move || {
                    for (i, &addr) in plan.iter().enumerate() {
                        let i = i as u64 + 1;
                        let wrote = shared.write(addr, &block(round, t, i));
                        if crashed.load(Ordering::SeqCst) {
                            return;
                        }
                        wrote.unwrap();
                        done.fetch_add(1, Ordering::SeqCst);
                        match rng.random_range(0..8) {
                            0..=2 => {
                                let synced = shared.sync();
                                if crashed.load(Ordering::SeqCst) {
                                    return;
                                }
                                synced.unwrap();
                                acked[t as usize].store(i, Ordering::SeqCst);
                            }
                            3 if t == 0 => {
                                let taken = shared.snapshot(None);
                                if crashed.load(Ordering::SeqCst) {
                                    return;
                                }
                                taken.unwrap();
                            }
                            _ => {}
                        }
                    }
                });
            }
            while done.load(Ordering::SeqCst) < crash_after {
                std::thread::yield_now();
            }
            // The crash, in its turn among the requests: what was acknowledged before it must
            // survive; the store is then opened again in place and the threads stop.
            let (acked, crashed) = (acked.clone(), crashed.clone());
            shared
                .call(move |store| {
                    let acked: Vec<u64> = acked.iter().map(|a| a.load(Ordering::SeqCst)).collect();
                    crashed.store(true, Ordering::SeqCst);
                    let disk = store.storage().clone();
                    disk.crash(mode, &mut StdRng::seed_from_u64(disk_seed ^ round));
                    *store = block_on(Store::open(disk, clock()))?;
                    let image = block_on(store.read(0, BLOCKS))?;
                    Ok::<_, Error>((image, acked))
                })
                .unwrap()
                .unwrap()
        });
        for t in 0..THREADS {
            let own = &image[(t * OWN) as usize * BS..((t + 1) * OWN) as usize * BS];
            let seen = own
                .chunks(BS)
                .filter_map(|b| {
                    let (r, tt, i) = tag(b);
                    (r == round && tt == t).then_some(i)
                })
                .max()
                .unwrap_or(0);
            let acked = acked_at_crash[t as usize];
            assert!(
                seen >= acked,
                "seed {seed} round {round} thread {t}: write {acked} was acknowledged, only {seen} survived"
            );
            let expected = after_prefix(&base, round, t, &plans[t as usize], seen);
            let got: Vec<Vec<u8>> = own.chunks(BS).map(<[u8]>::to_vec).collect();
            assert!(
                got == expected,
                "seed {seed} round {round} thread {t}: its blocks are not the first {seen} of its writes"
            );
            checked += acked;
        }
    }
    let stats = shared.stats();
    println!(
        "{rounds} crashes; {checked} acknowledged writes checked; {} syncs in {} groups (largest {})",
        stats.syncs, stats.groups, stats.largest_group
    );
    shared.close().unwrap();
}

#[test]
fn a_failed_group_fails_each_of_its_syncs_and_poisons_the_store() {
    let shared = Shared::spawn(|| Ok(sim_store(SimDisk::new()))).unwrap();
    shared.write(1, &block(0, 0, 1)).unwrap();
    let (entered, entered_rx) = mpsc::channel();
    let (gate, gate_rx) = mpsc::channel::<()>();
    let results: Vec<Result<(), Error>> = std::thread::scope(|s| {
        let shared = &shared;
        let held = s.spawn(move || {
            shared
                .call(move |store| {
                    let disk = store.storage();
                    disk.fail_from(disk.io_count() + 1);
                    entered.send(()).unwrap();
                    gate_rx.recv().unwrap();
                })
                .unwrap()
        });
        entered_rx.recv().unwrap();
        let tickets: Vec<_> = (0..4).map(|_| shared.begin_sync()).collect();
        gate.send(()).unwrap();
        held.join().unwrap();
        tickets.into_iter().map(|t| t.wait()).collect()
    });
    let codes: Vec<&str> = results
        .iter()
        .map(|r| r.as_ref().unwrap_err().code())
        .collect();
    assert_eq!(codes, ["INJECTED_FAULT"; 4]);
    assert_eq!(shared.stats().groups, 1);
    let after = shared.write(2, &block(0, 0, 2)).unwrap_err();
    assert_eq!(after.code(), "POISONED");
}

#[test]
fn spawn_returns_the_open_error_and_a_dropped_handle_closes_the_store() {
    let refused = Shared::spawn(|| block_on(Store::open(MemoryStorage::new(), clock())));
    assert_eq!(refused.err().map(|e| e.code()), Some("NOT_A_STORE"));

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let shared = Shared::spawn(move || {
        block_on(Store::create(
            DirStorage::open(&root)?,
            CreateOptions::new(BLOCKS).block_size(BS as u32),
            clock(),
        ))
    })
    .unwrap();
    assert_eq!(
        (shared.block_size(), shared.block_count()),
        (BS as u32, BLOCKS)
    );
    shared.write(3, &block(0, 1, 1)).unwrap();
    let snap = shared.snapshot(Some("one")).unwrap();
    shared.write(3, &block(0, 1, 2)).unwrap();
    assert_eq!(shared.read_at(snap, 3, 1).unwrap(), block(0, 1, 1));
    let out_of_range = shared.write(BLOCKS, &block(0, 1, 3)).unwrap_err();
    assert_eq!(out_of_range.code(), "OUT_OF_RANGE");
    // No sync and no close: the drop closes it (a final sync and the commit point).
    drop(shared);
    let store = block_on(Store::open(DirStorage::open(dir.path()).unwrap(), clock())).unwrap();
    assert_eq!(block_on(store.read(3, 1)).unwrap(), block(0, 1, 2));
    assert_eq!(block_on(store.read_at(snap, 3, 1)).unwrap(), block(0, 1, 1));
}
