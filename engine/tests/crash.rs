//! Crash at every I/O point, with several damage patterns per point and a second crash during
//! the recovery that follows:
//! * of a seeded random workload of every operation;
//! * of every sequence of up to three operations from {write, sync, snapshot, compact, merge,
//!   delete, rollback, copy, checkpoint, close-and-reopen}, after a fixed setup (most real crash
//!   bugs need three operations or fewer);
//! * of every sequence of up to two operations after a setup that grew the journal well past
//!   what its state needs, with the automatic journal checkpoint armed (threshold 0), so that the
//!   first operation that finishes checkpoints the journal by itself.
//!
//! After recovery every volume must read as the model says: acknowledged writes and operations
//! intact, unacknowledged ones either complete or absent, never a mix. Seeds are printed; set
//! `STRATA_SEED` to replay one. The tests print how many sequences, crash points and runs they
//! tried.
//!
//! A *copy* sends the source's newest snapshot chain as a stream (incremental from what the
//! target already has, else a full stream into a fresh target disk) and receives it into a second
//! store on its own simulated disk. The crash is a power cut of the machine: the I/O points are
//! counted over both disks together, and both disks crash. After it, the source must read as the
//! model says, and the target must either be absent or refused (only if no copy into it was ever
//! acknowledged) or open with every volume an acknowledged copy landed, every volume it has
//! reading byte-identical to what was sent, and nothing else.
//!
//! A *checkpoint* rewrites the source's metadata journal as a new generation
//! ([`Store::checkpoint_journal`]); it changes no volume, so after a crash the store must read as
//! before it. The random workload also arms the automatic checkpoint (threshold 0: it fires
//! whenever the journal is more than four times what a checkpoint needs, which a random workload
//! seldom reaches; the third test grows the journal first so that it does).

use std::collections::BTreeMap;
use std::rc::Rc;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{
    CreateOptions, Error, Managed, SendOptions, Store, StreamReceiver, VolumeId, VolumeKind,
};

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
    /// Copy the newest snapshot chain to the second store.
    Copy,
    /// Checkpoint the journal.
    Checkpoint,
    /// Close the store (its final sync and commit point) and open it again.
    Close,
    /// Hold the newest snapshot (or release every hold): deletes and merges of a held
    /// volume are refused and do not apply.
    Hold,
    /// Assign (or remove) a policy that compacts snapshots by itself after operations when
    /// a tenth of their bytes is reclaimable; what compaction does changes no volume.
    Policy,
}

const KINDS: [Op; 10] = [
    Op::Write(3, 2, 0xA1),
    Op::Sync,
    Op::Snapshot,
    Op::Compact,
    Op::Merge,
    Op::Delete,
    Op::Rollback,
    Op::Copy,
    Op::Checkpoint,
    Op::Close,
];

fn workload(rng: &mut StdRng, len: usize) -> Vec<Op> {
    (0..len)
        .map(|_| match rng.random_range(0..19) {
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
            15 => Op::Rollback,
            16 => Op::Checkpoint,
            17 => Op::Close,
            _ => Op::Copy,
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

/// What the copies of one test did, over all its runs (each test runs on its own thread).
#[derive(Debug, Default, Clone, Copy)]
struct CopyStats {
    incremental: u64,
    full: u64,
    /// After a crash: the target opened and was checked volume by volume.
    target_checked: u64,
    /// After a crash: the target was absent or refused (no copy into it was acknowledged).
    target_absent: u64,
}

/// Journal checkpoints the runs of one test completed (each test runs on its own thread).
#[derive(Debug, Default, Clone, Copy)]
struct CheckpointStats {
    /// [`Op::Checkpoint`] returned `Ok`.
    explicit: u64,
    /// Another operation returned with a smaller journal than it started with: the store
    /// checkpointed it by itself.
    automatic: u64,
}

thread_local! {
    static COPY_STATS: std::cell::Cell<CopyStats> = std::cell::Cell::new(CopyStats::default());
    static CHECKPOINT_STATS: std::cell::Cell<CheckpointStats> =
        std::cell::Cell::new(CheckpointStats::default());
    /// The automatic checkpoint threshold of the source store (`None`: the default).
    static CHECKPOINT_BYTES: std::cell::Cell<Option<u64>> = const { std::cell::Cell::new(None) };
    /// Set the source store's automatic checkpoint threshold to 0 once the setup has run.
    static ARM_CHECKPOINT_AFTER_SETUP: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count_checkpoint(f: impl FnOnce(&mut CheckpointStats)) {
    CHECKPOINT_STATS.with(|c| {
        let mut stats = c.get();
        f(&mut stats);
        c.set(stats);
    });
}

fn count(f: impl FnOnce(&mut CopyStats)) {
    COPY_STATS.with(|c| {
        let mut stats = c.get();
        f(&mut stats);
        c.set(stats);
    });
}

/// The second store that copies land in, and what it may hold after a crash.
struct Target {
    disk: SimDisk,
    store: Option<Managed<Store<SimDisk>>>,
    /// A copy into this disk was acknowledged (its `finish` returned `Ok`): the store must open.
    acknowledged: bool,
    /// Every snapshot a stream into this disk may have carried: (parent, image when sent).
    sent: BTreeMap<VolumeId, (Option<VolumeId>, Vec<u8>)>,
    /// Snapshots an acknowledged copy landed: they must survive the crash.
    landed: Vec<VolumeId>,
    /// What the target's baseline reads (the source's baseline when the full stream was sent).
    baseline: Vec<u8>,
}

impl Target {
    fn fresh(model: &Model) -> Self {
        Target {
            disk: SimDisk::new(),
            store: None,
            acknowledged: false,
            sent: BTreeMap::new(),
            landed: Vec::new(),
            baseline: model.baseline.clone(),
        }
    }

    /// After the crash: absent or refused only if nothing was acknowledged; otherwise every
    /// landed volume present, and everything present exactly as sent.
    fn check(&self, store: Result<Managed<Store<SimDisk>>, Error>) -> Result<(), String> {
        let store = match store {
            Err(_) if !self.acknowledged => {
                count(|c| c.target_absent += 1);
                return Ok(());
            }
            Err(e) => return Err(format!("target refused after an acknowledged copy: {e}")),
            Ok(store) => store,
        };
        let blocks = store.info().block_count;
        let snapshots: Vec<_> = store
            .volumes()
            .into_iter()
            .filter(|v| v.kind == VolumeKind::Snapshot)
            .collect();
        for id in &self.landed {
            if !snapshots.iter().any(|v| v.id == *id) {
                return Err(format!(
                    "target lost volume {id}, which an acknowledged copy landed"
                ));
            }
        }
        for v in &snapshots {
            let (parent, image) = self
                .sent
                .get(&v.id)
                .ok_or_else(|| format!("target holds volume {}, which no stream carried", v.id))?;
            if v.parent != *parent {
                return Err(format!(
                    "target volume {} grows from {:?}, the source's from {parent:?}",
                    v.id, v.parent
                ));
            }
            let got = block_on(store.read_at(v.id, 0, blocks))
                .map_err(|e| format!("read target volume {}: {e}", v.id))?;
            if &got != image {
                return Err(format!("target volume {} differs from the source's", v.id));
            }
        }
        let baseline = block_on(store.read_at(VolumeId::BASELINE, 0, blocks))
            .map_err(|e| format!("read target baseline: {e}"))?;
        if baseline != self.baseline {
            return Err("target baseline differs from the source's".into());
        }
        count(|c| c.target_checked += 1);
        Ok(())
    }
}

/// Where the device dies: at I/O number `point` counted over the source and target disks
/// together, as a machine losing power would (`None`: never). The disk in use is armed with the
/// I/Os it may still do; the other is disarmed.
struct Faults {
    point: Option<u64>,
    /// I/Os done on disks armed before the current one.
    used: u64,
    armed: SimDisk,
    mark: u64,
}

impl Faults {
    fn new(point: Option<u64>, source: &SimDisk) -> Self {
        let mut faults = Faults {
            point,
            used: 0,
            armed: source.clone(),
            mark: source.io_count(),
        };
        faults.arm(source);
        faults
    }

    /// I/Os done since the faults were set up.
    fn used(&self) -> u64 {
        self.used + self.armed.io_count() - self.mark
    }

    fn arm(&mut self, disk: &SimDisk) {
        self.used = self.used();
        self.armed.fail_from(u64::MAX);
        self.armed = disk.clone();
        self.mark = disk.io_count();
        if let Some(point) = self.point {
            // I/O number `point` is the first to fail, so `point - 1` succeed in all.
            let left = (point - 1).saturating_sub(self.used);
            disk.fail_from(disk.io_count() + left + 1);
        }
    }
}

/// Everything one case works on.
struct Case {
    disk: SimDisk,
    clock: Rc<ManualClock>,
    store: Managed<Store<SimDisk>>,
    model: Model,
    target: Option<Target>,
    faults: Faults,
    /// Running the setup: copies are not counted in [`CopyStats`].
    in_setup: bool,
}

fn step(case: &mut Case, op: Op) -> Result<bool, Option<InFlight>> {
    let journal = case.store.journal_bytes();
    let result = match op {
        Op::Copy => copy(case),
        Op::Close => close_and_reopen(case),
        _ => apply(&mut case.store, &mut case.model, op),
    };
    if !case.in_setup && result.is_ok() {
        if op == Op::Checkpoint {
            count_checkpoint(|c| c.explicit += 1);
        } else if case.store.journal_bytes() < journal {
            count_checkpoint(|c| c.automatic += 1);
        }
    }
    result
}

/// Closes the source store (a final sync, then its commit point) and opens it again: the commit
/// point vouches for what the journal and the head held, so every later crash is checked against
/// it too.
fn close_and_reopen(case: &mut Case) -> Result<bool, Option<InFlight>> {
    let placeholder = create(&SimDisk::new(), &case.clock);
    let store = std::mem::replace(&mut case.store, placeholder);
    block_on(store.close()).map_err(|_| None)?;
    case.model.synced();
    let mut store = block_on(Managed::open_store(
        case.disk.clone(),
        case.clock.clone(),
        true,
    ))
    .map_err(|_| None)?;
    configure(&mut store);
    if !case.in_setup && ARM_CHECKPOINT_AFTER_SETUP.with(|c| c.get()) {
        store.set_journal_checkpoint_bytes(0);
    }
    case.store = store;
    Ok(true)
}

/// Sends the source's newest snapshot chain and receives it into the target: incrementally
/// from the newest volume the target has when the source still has it, else as a full stream
/// into a fresh target disk. Never changes the source.
fn copy(case: &mut Case) -> Result<bool, Option<InFlight>> {
    let head = case.store.volume(case.store.head()).map_err(|_| None)?;
    let Some(upto) = head.parent.filter(|p| *p != VolumeId::BASELINE) else {
        return Ok(false);
    };
    let have = case
        .target
        .as_ref()
        .and_then(|t| t.store.as_ref())
        .and_then(|s| s.volume(s.head()).ok())
        .and_then(|h| h.parent)
        .filter(|p| *p != VolumeId::BASELINE);
    if have == Some(upto) {
        return Ok(false);
    }
    let send = |base: Option<VolumeId>| {
        let mut stream = Vec::new();
        block_on(case.store.send(
            &SendOptions {
                base,
                ..SendOptions::default()
            },
            &mut |chunk| {
                stream.extend_from_slice(chunk);
                Ok(())
            },
        ))
        .map(|_| stream)
    };
    let incremental = match have {
        Some(base) => match send(Some(base)) {
            Ok(stream) => Some(stream),
            // The source merged or deleted the target's newest volume: send everything.
            Err(Error::InvalidArgument(_) | Error::UnknownVolume(_)) => None,
            Err(_) => return Err(None),
        },
        None => None,
    };
    let stream = match incremental {
        Some(stream) => {
            if !case.in_setup {
                count(|c| c.incremental += 1);
            }
            stream
        }
        None => {
            if !case.in_setup {
                count(|c| c.full += 1);
            }
            let stream = send(None).map_err(|_| None)?;
            case.target = Some(Target::fresh(&case.model));
            stream
        }
    };
    let target = case.target.as_mut().ok_or(None)?;
    for v in case.store.volumes() {
        if let (VolumeKind::Snapshot, Some(image)) = (v.kind, case.model.image_of(v.id)) {
            target.sent.entry(v.id).or_insert((v.parent, image));
        }
    }
    let mut receiver = match target.store.take() {
        Some(store) => StreamReceiver::into_store(store.into_volume()),
        None => StreamReceiver::new_store(target.disk.clone(), case.clock.clone()),
    };
    case.faults.arm(&target.disk);
    let received = block_on(receiver.push(&stream)).and_then(|()| block_on(receiver.finish()));
    case.faults.arm(&case.disk);
    let (store, _) = received.map_err(|_| None)?;
    target.landed = store
        .volumes()
        .into_iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| v.id)
        .collect();
    target.acknowledged = true;
    target.store = Some(Managed::new(store).map_err(|_| None)?);
    Ok(true)
}

/// Runs one operation against store and model. `Err` carries what a failed operation may have
/// done; `Ok(false)` means the operation did not apply (no target).
fn apply(
    store: &mut Managed<Store<SimDisk>>,
    model: &mut Model,
    op: Op,
) -> Result<bool, Option<InFlight>> {
    let snapshots: Vec<VolumeId> = model.snapshots.iter().map(|(v, _)| *v).collect();
    match op {
        Op::Copy | Op::Close => Ok(false),
        Op::Hold => {
            let mut holds = strata_engine::policy::VolumeAssignments::new();
            if let Some(&newest) = snapshots.last().filter(|v| !store.is_held(**v)) {
                holds.set(
                    newest,
                    strata_engine::policy::Assignment {
                        hold: true,
                        ttl_ms: None,
                    },
                );
            }
            block_on(store.set_assignments(holds))
                .map(|()| true)
                .map_err(|_| None)
        }
        Op::Policy => {
            let policy = match store.policy() {
                Some(_) => None,
                None => Some(
                    strata_engine::policy::Policy::from_json(
                        r#"{"rules":[{"name":"tidy","kind":"threshold","status":"reclaimable_ratio","above":0.1,"action":"compact"}]}"#,
                    )
                    .expect("a valid policy"),
                ),
            };
            block_on(store.set_policy(policy))
                .map(|()| true)
                .map_err(|_| None)
        }
        // Changes no volume: a crash in it must leave the store reading as before.
        Op::Checkpoint => block_on(store.checkpoint_journal())
            .map(|_| true)
            .map_err(|_| None),
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
            let Some(&target) = snapshots.first().filter(|v| !store.is_held(**v)) else {
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
            let Some(&target) = snapshots.first().filter(|v| !store.is_held(**v)) else {
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
fn resolve(store: &Managed<Store<SimDisk>>, model: &mut Model, in_flight: Option<InFlight>) {
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

fn create(disk: &SimDisk, clock: &Rc<ManualClock>) -> Managed<Store<SimDisk>> {
    let s = block_on(Store::create(
        disk.clone(),
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        clock.clone(),
    ))
    .unwrap();
    let mut s = Managed::new(s).unwrap();
    configure(&mut s);
    s
}

/// The test's settings of a source store: unsynced records go to storage at once, and the
/// automatic checkpoint threshold of the test.
fn configure(s: &mut Managed<Store<SimDisk>>) {
    s.set_write_buffer_bytes(0);
    if let Some(bytes) = CHECKPOINT_BYTES.with(|c| c.get()) {
        s.set_journal_checkpoint_bytes(bytes);
    }
}

/// Crashes `disk` with `mode`, crashes it again at a random I/O of the recovery that follows,
/// and reopens it.
fn crash_and_reopen(
    disk: &SimDisk,
    clock: &Rc<ManualClock>,
    mode: CrashMode,
    crash_seed: u64,
) -> Result<Managed<Store<SimDisk>>, Error> {
    disk.crash(mode, &mut StdRng::seed_from_u64(crash_seed));
    let mut recovery_rng = StdRng::seed_from_u64(crash_seed);
    disk.fail_from(disk.io_count() + recovery_rng.random_range(1..16));
    let _ = block_on(Managed::open_store(disk.clone(), clock.clone(), true));
    disk.crash(CrashMode::Random, &mut recovery_rng);
    block_on(Managed::open_store(disk.clone(), clock.clone(), true))
}

/// Runs `setup` (without faults) then `ops` with the device dying at I/O `point` of `ops`
/// (counted over the source and target disks); crashes, crashes again during recovery, reopens
/// and checks. Returns the I/Os `ops` used when `point` is `None`.
fn run_case(
    setup: &[Op],
    ops: &[Op],
    point: Option<u64>,
    mode: CrashMode,
    crash_seed: u64,
) -> Result<u64, String> {
    let clock = Rc::new(ManualClock::new(5_000));
    let disk = SimDisk::new();
    let store = create(&disk, &clock);
    let mut case = Case {
        faults: Faults::new(None, &disk),
        disk,
        clock,
        store,
        model: Model::new(BS, BLOCKS),
        target: None,
        in_setup: true,
    };
    for op in setup {
        step(&mut case, *op).map_err(|_| format!("setup operation {op:?} failed"))?;
    }
    case.in_setup = false;
    if ARM_CHECKPOINT_AFTER_SETUP.with(|c| c.get()) {
        case.store.set_journal_checkpoint_bytes(0);
    }
    case.faults = Faults::new(point, &case.disk);
    let mut in_flight = None;
    for op in ops {
        match step(&mut case, *op) {
            Ok(_) => {}
            Err(_) if point.is_none() => {
                return Err(format!("{op:?} failed with no fault injected"));
            }
            Err(flight) => {
                in_flight = flight;
                break;
            }
        }
    }
    let used = case.faults.used();
    let Case {
        disk,
        clock,
        store,
        mut model,
        target,
        ..
    } = case;
    drop(store);
    let store = crash_and_reopen(&disk, &clock, mode, crash_seed)
        .map_err(|e| format!("reopen failed: {e}"))?;
    resolve(&store, &mut model, in_flight);
    model.recovered(&store)?;
    model.check(&store)?;
    if let Some(mut target) = target {
        drop(target.store.take());
        let reopened = crash_and_reopen(&target.disk, &clock, mode, !crash_seed);
        target.check(reopened)?;
    }
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
    CHECKPOINT_BYTES.with(|c| c.set(Some(0)));
    let ops = workload(&mut StdRng::seed_from_u64(seed), 150);
    let (points, runs) =
        crash_everywhere(&[], &ops, seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
    println!("random workload: {} operations, {points} I/O crash points, {runs} crash runs, 0 violations", ops.len());
    println!("random workload copies: {:?}", COPY_STATS.with(|c| c.get()));
    println!(
        "random workload checkpoints: {:?}",
        CHECKPOINT_STATS.with(|c| c.get())
    );
    assert!(
        points > 100,
        "the workload should perform many I/Os, did {points}"
    );
}

#[test]
fn crash_at_every_io_point_of_every_sequence_of_up_to_three_operations() {
    let seed = seed();
    println!("sequence test seed: {seed} (replay with STRATA_SEED={seed})");
    // Two snapshots with overwritten blocks (the first already copied to the second store), and
    // unsynced writes in the head.
    let setup = [
        Op::Write(0, 3, 1),
        Op::Write(1, 1, 2),
        Op::Snapshot,
        Op::Copy,
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
    assert_eq!(sequences.len(), 10 + 100 + 1000);
    let stats = COPY_STATS.with(|c| c.get());
    println!("sequence copies: {stats:?}");
    assert!(stats.incremental > 0 && stats.full > 0 && stats.target_checked > 0);
    let checkpoints = CHECKPOINT_STATS.with(|c| c.get());
    println!("sequence checkpoints: {checkpoints:?}");
    assert!(checkpoints.explicit > 0);
}

#[test]
fn crash_at_every_io_point_of_automatic_journal_checkpoints() {
    let seed = seed();
    println!("automatic checkpoint seed: {seed} (replay with STRATA_SEED={seed})");
    // Snapshots taken and deleted again grow the journal far beyond what the state needs; the
    // setup runs with the default threshold, so nothing is checkpointed yet.
    let mut setup = vec![Op::Write(0, 3, 1), Op::Snapshot, Op::Copy];
    for i in 0..12u8 {
        setup.extend([Op::Write(0, 2, i + 2), Op::Snapshot, Op::Delete]);
    }
    setup.extend([Op::Write(1, 2, 0x30), Op::Snapshot, Op::Write(9, 1, 0x31)]);
    let mut sequences = vec![];
    for a in KINDS {
        sequences.push(vec![a]);
        for b in KINDS {
            sequences.push(vec![a, b]);
        }
    }
    // Armed only for the operations under test: the first one to finish checkpoints.
    ARM_CHECKPOINT_AFTER_SETUP.with(|c| c.set(true));
    let (mut points, mut runs) = (0, 0);
    for ops in &sequences {
        let (p, r) =
            crash_everywhere(&setup, ops, seed).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        points += p;
        runs += r;
    }
    println!(
        "automatic checkpoints: {} sequences of up to 2 operations, {points} I/O crash points, {runs} crash runs, 0 violations",
        sequences.len()
    );
    let checkpoints = CHECKPOINT_STATS.with(|c| c.get());
    println!("automatic checkpoint runs: {checkpoints:?}");
    assert!(checkpoints.automatic > 0);
}

/// The long workload's operations: the random workload's, with holds and a self-compacting
/// policy.
fn long_workload_op(rng: &mut StdRng) -> Op {
    match rng.random_range(0..40) {
        0 => Op::Hold,
        1 => Op::Policy,
        _ => workload(rng, 1)[0],
    }
}

/// Power loss at random moments of a long seeded workload (2,000 operations; 20,000 with
/// `STRATA_LONG=1`) of every operation, holds and a policy included: before about one
/// operation in twenty, the device is set to die at a random I/O of it; the disk then loses,
/// keeps or tears each unsynced write in a shuffled order (torn at 512-byte sectors,
/// reordered), crashes again during the recovery that follows, reopens, and every volume must
/// read as the model says. The workload then goes on with the recovered store.
#[test]
fn power_loss_at_random_moments_of_a_long_workload() {
    let seed = seed();
    let long = std::env::var("STRATA_LONG").is_ok_and(|v| v == "1");
    let total = if long { 20_000 } else { 2_000 };
    println!("long workload seed: {seed} (replay with STRATA_SEED={seed}), {total} operations");
    let mut rng = StdRng::seed_from_u64(seed);
    let clock = Rc::new(ManualClock::new(5_000));
    let disk = SimDisk::new();
    let store = create(&disk, &clock);
    let mut case = Case {
        faults: Faults::new(None, &disk),
        disk,
        clock,
        store,
        model: Model::new(BS, BLOCKS),
        target: None,
        in_setup: false,
    };
    let (mut crashes, mut failed_ops, mut applied) = (0u64, 0u64, 0u64);
    let mut modes = [0u64; 3];
    for i in 0..total {
        let op = long_workload_op(&mut rng);
        case.clock.advance(1_000);
        let power_loss = rng.random_ratio(1, 20);
        if power_loss {
            case.faults = Faults::new(Some(rng.random_range(1..8)), &case.disk);
        }
        let result = step(&mut case, op);
        case.faults = Faults::new(None, &case.disk);
        let in_flight = match result {
            Ok(done) => {
                applied += u64::from(done);
                if !power_loss {
                    continue;
                }
                // The power went after the operation returned.
                None
            }
            Err(_) if !power_loss => {
                panic!("seed {seed}, operation {i} {op:?} failed with no fault")
            }
            Err(flight) => {
                failed_ops += 1;
                flight
            }
        };
        crashes += 1;
        let mode_index = rng.random_range(0..MODES.len());
        modes[mode_index] += 1;
        let placeholder = create(&SimDisk::new(), &case.clock);
        drop(std::mem::replace(&mut case.store, placeholder));
        let mut store = crash_and_reopen(&case.disk, &case.clock, MODES[mode_index], rng.random())
            .unwrap_or_else(|e| panic!("seed {seed}, operation {i} {op:?}: reopen failed: {e}"));
        resolve(&store, &mut case.model, in_flight);
        case.model
            .recovered(&store)
            .and_then(|()| case.model.check(&store))
            .unwrap_or_else(|e| panic!("seed {seed}, operation {i} {op:?}: {e}"));
        configure(&mut store);
        case.store = store;
        if let Some(mut target) = case.target.take() {
            drop(target.store.take());
            let reopened =
                crash_and_reopen(&target.disk, &case.clock, MODES[mode_index], rng.random());
            target
                .check(reopened)
                .unwrap_or_else(|e| panic!("seed {seed}, operation {i} {op:?}: target: {e}"));
            // Copies go on into the target if it opens; else the next one starts a new target.
            target.store = block_on(Managed::open_store(
                target.disk.clone(),
                case.clock.clone(),
                true,
            ))
            .ok();
            if target.store.is_some() {
                case.target = Some(target);
            }
        }
    }
    let copies = COPY_STATS.with(|c| c.get());
    println!(
        "long workload: {total} operations ({applied} applied), {crashes} power losses ({failed_ops} inside an operation; drop all / keep all / torn and reordered: {modes:?}), 0 violations; copies {copies:?}"
    );
    assert!(
        crashes > total as u64 / 40,
        "too few power losses: {crashes}"
    );
}
