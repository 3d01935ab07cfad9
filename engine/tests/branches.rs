//! Branches (writable clones): a random workload over several branches, their snapshots,
//! compaction, deletion, merges, trims, journal checkpoints and reopens, checked after every step
//! against a model that keeps each branch's and each snapshot's image. Whatever is compacted,
//! merged or deleted, every remaining branch and snapshot must read exactly what the model says.
//!
//! The seed is printed; `STRATA_SEED=<n>` replays one run.

use std::collections::BTreeMap;
use std::rc::Rc;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::{CreateOptions, Error, Store, VolumeId, VolumeKind, BRANCH_MAIN};

const BS: usize = 512;
const BLOCKS: u64 = 48;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

fn new_store() -> (MemoryStorage, Store<MemoryStorage>) {
    let storage = MemoryStorage::new();
    let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
    let store = block_on(Store::create(storage.clone(), options, clock())).expect("create");
    (storage, store)
}

/// What every branch and snapshot must read.
struct Model {
    branches: BTreeMap<String, Vec<u8>>,
    active: String,
    snapshots: Vec<(VolumeId, Vec<u8>)>,
    baseline: Vec<u8>,
}

impl Model {
    fn active_image(&mut self) -> &mut Vec<u8> {
        self.branches.get_mut(&self.active).expect("active branch")
    }
}

fn check(store: &Store<MemoryStorage>, model: &Model, step: &str) {
    let names: Vec<String> = store.branches().into_iter().map(|b| b.name).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        model.branches.keys().cloned().collect::<Vec<_>>(),
        "{step}: branches"
    );
    assert_eq!(store.active_branch(), model.active, "{step}: active branch");
    assert_eq!(
        names[0], model.active,
        "{step}: the active branch is listed first"
    );
    let volumes = store.volumes();
    for (name, image) in &model.branches {
        let head = store.branch_head(name).expect("branch head");
        assert!(
            block_on(store.read_at(head, 0, BLOCKS)).unwrap() == *image,
            "{step}: branch {name} (head {head}) reads wrong"
        );
        let info = volumes.iter().find(|v| v.id == head).expect("listed");
        assert_eq!(info.branch, *name, "{step}: volume {head}'s branch");
    }
    assert!(
        block_on(store.read(0, BLOCKS)).unwrap() == model.branches[&model.active],
        "{step}: the live head reads wrong"
    );
    for (id, image) in &model.snapshots {
        assert!(
            block_on(store.read_at(*id, 0, BLOCKS)).unwrap() == *image,
            "{step}: snapshot {id} reads wrong"
        );
    }
    assert!(
        block_on(store.read_at(VolumeId::BASELINE, 0, BLOCKS)).unwrap() == model.baseline,
        "{step}: the baseline reads wrong"
    );
}

/// The visible chain from `volume` to the baseline (what a merge up to it folds in).
fn visible_chain(store: &Store<MemoryStorage>, volume: VolumeId) -> Vec<VolumeId> {
    let volumes = store.volumes();
    let mut chain = Vec::new();
    let mut at = Some(volume);
    while let Some(v) = at.filter(|v| *v != VolumeId::BASELINE) {
        chain.push(v);
        at = volumes.iter().find(|i| i.id == v).and_then(|i| i.parent);
    }
    chain
}

fn run(seed: u64) {
    println!("branches seed {seed} (replay with STRATA_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let (storage, mut store) = new_store();
    let zero = vec![0u8; BLOCKS as usize * BS];
    let mut model = Model {
        branches: BTreeMap::from([(BRANCH_MAIN.to_string(), zero.clone())]),
        active: BRANCH_MAIN.to_string(),
        snapshots: Vec::new(),
        baseline: zero,
    };
    let mut names = 0u32;
    for step in 0..250 {
        let op = rng.random_range(0..100);
        let label = format!("step {step} (op {op})");
        match op {
            0..=29 => {
                let blocks = rng.random_range(1..4u64);
                let addr = rng.random_range(0..=BLOCKS - blocks);
                let fill: u8 = rng.random();
                let data = vec![fill; blocks as usize * BS];
                block_on(store.write(addr, &data)).unwrap();
                let at = addr as usize * BS;
                model.active_image()[at..at + data.len()].copy_from_slice(&data);
            }
            30..=34 => {
                let blocks = rng.random_range(1..12u64);
                let addr = rng.random_range(0..=BLOCKS - blocks);
                block_on(store.write_zeroes(addr, blocks)).unwrap();
                let at = addr as usize * BS;
                model.active_image()[at..at + blocks as usize * BS].fill(0);
            }
            35..=44 => {
                let id = block_on(store.snapshot(None)).unwrap();
                let image = model.branches[&model.active].clone();
                model.snapshots.push((id, image));
            }
            45..=54 => {
                // Clone a snapshot, a parked branch's head, or the baseline.
                let name = format!("b{names}");
                names += 1;
                let parked: Vec<String> = model
                    .branches
                    .keys()
                    .filter(|n| **n != model.active)
                    .cloned()
                    .collect();
                let pick = rng.random_range(0..model.snapshots.len() + parked.len() + 1);
                let (from, image) = if pick < model.snapshots.len() {
                    model.snapshots[pick].clone()
                } else if pick < model.snapshots.len() + parked.len() {
                    let branch = &parked[pick - model.snapshots.len()];
                    (
                        store.branch_head(branch).unwrap(),
                        model.branches[branch].clone(),
                    )
                } else {
                    (VolumeId::BASELINE, model.baseline.clone())
                };
                let head = block_on(store.clone_branch(from, &name)).unwrap();
                assert_eq!(store.branch_head(&name).unwrap(), head);
                model.branches.insert(name, image);
            }
            55..=69 => {
                let names: Vec<String> = model.branches.keys().cloned().collect();
                let name = &names[rng.random_range(0..names.len())];
                block_on(store.checkout(name)).unwrap();
                model.active = name.clone();
            }
            70..=74 => {
                let names: Vec<String> = model.branches.keys().cloned().collect();
                let name = names[rng.random_range(0..names.len())].clone();
                match block_on(store.delete_branch(&name)) {
                    Ok(()) => {
                        assert_ne!(name, BRANCH_MAIN);
                        model.branches.remove(&name);
                        if model.active == name {
                            model.active = BRANCH_MAIN.to_string();
                        }
                    }
                    Err(Error::InvalidArgument(_)) => assert_eq!(name, BRANCH_MAIN),
                    Err(e) => panic!("{label}: delete branch {name}: {e}"),
                }
            }
            75..=79 if !model.snapshots.is_empty() => {
                let i = rng.random_range(0..model.snapshots.len());
                let id = model.snapshots[i].0;
                block_on(store.compact(id, &mut |_| true)).unwrap();
            }
            80..=84 if !model.snapshots.is_empty() => {
                let i = rng.random_range(0..model.snapshots.len());
                let id = model.snapshots[i].0;
                block_on(store.delete_volume(id)).unwrap();
                model.snapshots.remove(i);
            }
            85..=89 if !model.snapshots.is_empty() => {
                let i = rng.random_range(0..model.snapshots.len());
                let (id, image) = model.snapshots[i].clone();
                let chain = visible_chain(&store, id);
                match block_on(store.merge(id, &mut |_| true)) {
                    Ok(_) => {
                        model.baseline = image;
                        model.snapshots.retain(|(v, _)| !chain.contains(v));
                    }
                    // Refused where another line still reads the old baseline, or a branch's
                    // head would be folded in.
                    Err(Error::InvalidArgument(_)) => {}
                    Err(e) => panic!("{label}: merge {id}: {e}"),
                }
            }
            90..=94 => {
                block_on(store.checkpoint_journal()).unwrap();
            }
            _ => {
                block_on(store.sync()).unwrap();
                drop(store);
                store = block_on(Store::open(storage.clone(), clock())).expect("reopen");
            }
        }
        check(&store, &model, &label);
    }
    // A parked branch's head cannot be deleted as a volume, nor merged away.
    if let Some(parked) = store.branches().into_iter().find(|b| !b.active) {
        assert!(matches!(
            block_on(store.delete_volume(parked.head)),
            Err(Error::InvalidArgument(_))
        ));
    }
    block_on(store.sync()).unwrap();
    drop(store);
    let store = block_on(Store::open(storage, clock())).expect("final reopen");
    check(&store, &model, "final reopen");
    // Parked heads are listed as snapshots with their branch's name; the live head as the head.
    for v in store.volumes() {
        if !v.branch.is_empty() && v.id != store.head() {
            assert_eq!(v.kind, VolumeKind::Snapshot);
        }
    }
}

#[test]
fn random_work_over_branches_reads_what_the_model_says() {
    let seeds: Vec<u64> = match std::env::var("STRATA_SEED") {
        Ok(s) => vec![s.parse().expect("STRATA_SEED must be a u64")],
        Err(_) => {
            let base: u64 = rand::rng().random();
            (0..12).map(|i| base.wrapping_add(i)).collect()
        }
    };
    for seed in seeds {
        run(seed);
    }
}

#[test]
fn a_clone_shares_blocks_and_checkout_switches_where_writes_go() {
    let (storage, mut store) = new_store();
    block_on(store.write(0, &vec![1u8; 8 * BS])).unwrap();
    let snap = block_on(store.snapshot(Some("golden"))).unwrap();
    let bytes_before: u64 = store.volumes().iter().map(|v| v.bytes).sum();
    let clone_head = block_on(store.clone_branch(snap, "test")).unwrap();
    let bytes_after: u64 = store.volumes().iter().map(|v| v.bytes).sum();
    assert!(
        bytes_after - bytes_before < 256,
        "a clone copies no data: {} bytes",
        bytes_after - bytes_before
    );
    assert_eq!(
        block_on(store.read_at(clone_head, 0, 1)).unwrap(),
        vec![1u8; BS]
    );
    // Writes go to main until the clone is checked out.
    block_on(store.write(0, &vec![2u8; BS])).unwrap();
    assert_eq!(
        block_on(store.read_at(clone_head, 0, 1)).unwrap(),
        vec![1u8; BS]
    );
    block_on(store.checkout("test")).unwrap();
    assert_eq!(store.active_branch(), "test");
    block_on(store.write(1, &vec![3u8; BS])).unwrap();
    let test_snap = block_on(store.snapshot(Some("on-test"))).unwrap();
    let main_head = store.branch_head(BRANCH_MAIN).unwrap();
    assert_eq!(
        block_on(store.read_at(main_head, 0, 2)).unwrap(),
        [vec![2u8; BS], vec![1u8; BS]].concat()
    );
    assert_eq!(
        block_on(store.read(0, 2)).unwrap(),
        [vec![1u8; BS], vec![3u8; BS]].concat()
    );
    // Names are checked, and the main branch stays.
    for bad in ["", "head", "baseline", "12", "a b", "test"] {
        assert!(
            block_on(store.clone_branch(snap, bad)).is_err(),
            "{bad:?} was taken as a branch name"
        );
    }
    assert!(block_on(store.delete_branch(BRANCH_MAIN)).is_err());
    // Deleting the active branch checks main out; its snapshot stays.
    block_on(store.delete_branch("test")).unwrap();
    assert_eq!(store.active_branch(), BRANCH_MAIN);
    assert_eq!(block_on(store.read(0, 1)).unwrap(), vec![2u8; BS]);
    assert_eq!(
        block_on(store.read_at(test_snap, 1, 1)).unwrap(),
        vec![3u8; BS]
    );
    block_on(store.sync()).unwrap();
    drop(store);
    let store = block_on(Store::open(storage, clock())).unwrap();
    assert_eq!(store.branches().len(), 1);
    assert_eq!(
        block_on(store.read_at(test_snap, 1, 1)).unwrap(),
        vec![3u8; BS]
    );
}

#[test]
fn a_read_only_open_lists_branches_and_refuses_to_switch() {
    let (storage, mut store) = new_store();
    let snap = block_on(store.snapshot(None)).unwrap();
    block_on(store.clone_branch(snap, "x")).unwrap();
    drop(store);
    let mut view = block_on(Store::open_read_only(storage, clock())).unwrap();
    assert_eq!(view.branches().len(), 2);
    assert!(matches!(block_on(view.checkout("x")), Err(Error::ReadOnly)));
}

/// Branch operations are atomic through a crash at any I/O: after the device dies at every I/O
/// point of a sequence of clones, checkouts, writes, snapshots and a branch deletion (dropping,
/// keeping or tearing what was not yet durable), the reopened store's branches read exactly as
/// after the last operation that returned, or the one in flight.
#[test]
fn branch_operations_are_atomic_through_a_crash_at_every_io() {
    use strata_engine::storage::sim::{CrashMode, SimDisk};

    #[derive(Debug, Clone, Copy)]
    enum Op {
        Clone,
        Checkout(&'static str),
        WriteSynced(u64, u8),
        Snapshot,
        Delete,
    }
    const OPS: [Op; 9] = [
        Op::Clone,
        Op::Checkout("x"),
        Op::WriteSynced(2, 7),
        Op::Snapshot,
        Op::Checkout(BRANCH_MAIN),
        Op::WriteSynced(3, 9),
        Op::Checkout("x"),
        Op::WriteSynced(4, 5),
        Op::Delete,
    ];
    type State = (String, Vec<(String, Vec<u8>)>);
    fn state(store: &Store<SimDisk>) -> State {
        let mut branches: Vec<(String, Vec<u8>)> = store
            .branches()
            .into_iter()
            .map(|b| (b.name, block_on(store.read_at(b.head, 0, BLOCKS)).unwrap()))
            .collect();
        branches.sort();
        (store.active_branch().to_string(), branches)
    }
    fn setup(disk: &SimDisk) -> (Store<SimDisk>, VolumeId) {
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        let mut store = block_on(Store::create(disk.clone(), options, clock())).unwrap();
        block_on(store.write(0, &vec![1u8; 2 * BS])).unwrap();
        let snap = block_on(store.snapshot(None)).unwrap();
        block_on(store.write(1, &vec![2u8; BS])).unwrap();
        block_on(store.sync()).unwrap();
        (store, snap)
    }
    fn apply(store: &mut Store<SimDisk>, snap: VolumeId, op: Op) -> Result<(), Error> {
        match op {
            Op::Clone => block_on(store.clone_branch(snap, "x")).map(drop),
            Op::Checkout(name) => block_on(store.checkout(name)).map(drop),
            Op::WriteSynced(addr, fill) => {
                block_on(store.write(addr, &vec![fill; BS]))?;
                block_on(store.sync())
            }
            Op::Snapshot => block_on(store.snapshot(None)).map(drop),
            Op::Delete => block_on(store.delete_branch("x")),
        }
    }
    // The states after 0, 1, ... operations, without faults.
    let disk = SimDisk::new();
    let (mut store, snap) = setup(&disk);
    let start = disk.io_count();
    let mut states = vec![state(&store)];
    for op in OPS {
        apply(&mut store, snap, op).unwrap();
        states.push(state(&store));
    }
    let total = disk.io_count() - start;
    let mut runs = 0;
    for point in 1..=total {
        for (m, mode) in [CrashMode::DropAll, CrashMode::KeepAll, CrashMode::Random]
            .into_iter()
            .enumerate()
        {
            let disk = SimDisk::new();
            let (mut store, snap) = setup(&disk);
            disk.fail_from(disk.io_count() + point);
            let done = OPS
                .iter()
                .take_while(|&&op| apply(&mut store, snap, op).is_ok())
                .count();
            drop(store);
            disk.crash(mode, &mut StdRng::seed_from_u64(point * 3 + m as u64));
            let store = block_on(Store::open(disk.clone(), clock()))
                .unwrap_or_else(|e| panic!("crash at I/O {point} ({mode:?}): reopen: {e}"));
            let got = state(&store);
            let allowed = &states[done..(done + 2).min(states.len())];
            assert!(
                allowed.contains(&got),
                "crash at I/O {point} of {total} ({mode:?}) after {done} operations: branches {:?} are neither before nor after {:?}",
                got.1.iter().map(|(n, _)| n).collect::<Vec<_>>(),
                OPS.get(done)
            );
            runs += 1;
        }
    }
    println!("{total} I/O points, {runs} crash runs");
    assert!(total > 20, "only {total} I/Os");
}

#[test]
fn a_full_send_copies_every_branch_and_snapshot() {
    use strata_engine::{SendOptions, StreamReceiver};
    let (_, mut store) = new_store();
    block_on(store.write(0, &vec![1u8; 4 * BS])).unwrap();
    let golden = block_on(store.snapshot(Some("golden"))).unwrap();
    block_on(store.write(1, &vec![2u8; BS])).unwrap();
    let main_snap = block_on(store.snapshot(Some("main-2"))).unwrap();
    block_on(store.clone_branch(golden, "a")).unwrap();
    block_on(store.clone_branch(golden, "b")).unwrap();
    block_on(store.checkout("a")).unwrap();
    block_on(store.write(2, &vec![3u8; BS])).unwrap();
    let a_snap = block_on(store.snapshot(Some("a-1"))).unwrap();
    block_on(store.checkout("b")).unwrap();
    block_on(store.write(3, &vec![4u8; BS])).unwrap();
    block_on(store.checkout(BRANCH_MAIN)).unwrap();
    block_on(store.sync()).unwrap();
    let mut stream = Vec::new();
    block_on(store.send(&SendOptions::default(), &mut |bytes: &[u8]| {
        stream.extend_from_slice(bytes);
        Ok(())
    }))
    .unwrap();
    let mut receiver = StreamReceiver::new_store(MemoryStorage::new(), clock());
    block_on(receiver.push(&stream)).unwrap();
    let (copy, report) = block_on(receiver.finish()).unwrap();
    assert!(report.volumes >= 5, "{report:?}");
    let names = |s: &Store<MemoryStorage>| -> Vec<(String, bool)> {
        s.branches()
            .into_iter()
            .map(|b| (b.name, b.active))
            .collect()
    };
    assert_eq!(names(&copy), names(&store));
    for branch in ["a", "b"] {
        let (src, dst) = (
            store.branch_head(branch).unwrap(),
            copy.branch_head(branch).unwrap(),
        );
        assert_eq!(
            block_on(copy.read_at(dst, 0, BLOCKS)).unwrap(),
            block_on(store.read_at(src, 0, BLOCKS)).unwrap(),
            "branch {branch}"
        );
    }
    for snap in [golden, main_snap, a_snap] {
        assert_eq!(
            block_on(copy.read_at(snap, 0, BLOCKS)).unwrap(),
            block_on(store.read_at(snap, 0, BLOCKS)).unwrap(),
            "snapshot {snap}"
        );
    }
    // The copy's head grows from main's newest snapshot, as a copy of main's line would.
    assert_eq!(
        block_on(copy.read(0, BLOCKS)).unwrap(),
        block_on(store.read_at(main_snap, 0, BLOCKS)).unwrap()
    );
}
