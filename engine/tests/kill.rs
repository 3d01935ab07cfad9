//! Real process kills: a child process (this test binary, run again with `STRATA_KILL_CHILD`)
//! runs a seeded workload on the directory backend (writes, syncs, snapshots, compactions,
//! deletions, merges, closes and reopens) and prints a line after every operation that
//! returned, acknowledged or not; the parent sends it SIGKILL at a random moment, then opens the
//! store and checks it against the same workload replayed in memory: the head must read as the
//! workload left it after some operation between the last acknowledged one and the last one
//! begun, every acknowledged snapshot that was not deleted or merged must read as it was taken,
//! and the baseline must read as the merges left it.
//!
//! 40 kills by default; `STRATA_LONG=1` runs 400. Seeded (`STRATA_SEED` replays), and the test
//! prints the figures (kills, operations acknowledged, violations).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::rc::Rc;
use std::time::{Duration, Instant};

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::SystemClock;
use strata_engine::storage::dir::DirStorage;
use strata_engine::{CreateOptions, Store, VolumeId};

const BS: usize = 512;
const BLOCKS: u64 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    /// `blocks` blocks from `addr`, filled from the operation's index.
    Write {
        addr: u64,
        blocks: u64,
    },
    Sync,
    Snapshot,
    /// Compact the newest snapshot.
    Compact,
    /// Delete the oldest snapshot.
    Delete,
    /// Merge the oldest snapshot into the baseline.
    Merge,
    /// Close the store and open it again.
    Reopen,
}

/// The workload of `seed`: the same in parent and child.
fn plan(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..len)
        .map(|_| match rng.random_range(0..30) {
            0..=17 => {
                let blocks = rng.random_range(1..8);
                Op::Write {
                    addr: rng.random_range(0..=BLOCKS - blocks),
                    blocks,
                }
            }
            18..=21 => Op::Sync,
            22..=24 => Op::Snapshot,
            25 => Op::Compact,
            26 => Op::Delete,
            27 => Op::Merge,
            _ => Op::Reopen,
        })
        .collect()
}

fn data(index: usize, blocks: u64) -> Vec<u8> {
    let mut x = (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..blocks as usize * BS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// What the workload leaves after each operation: the head, the snapshots (index of the
/// snapshot operation, image) and the baseline.
#[derive(Clone)]
struct State {
    head: Vec<u8>,
    snapshots: Vec<(usize, Vec<u8>)>,
    baseline: Vec<u8>,
}

impl State {
    fn new() -> Self {
        let zero = vec![0u8; BLOCKS as usize * BS];
        State {
            head: zero.clone(),
            snapshots: Vec::new(),
            baseline: zero,
        }
    }

    /// Applies operation `index`.
    fn apply(&mut self, index: usize, op: Op) {
        match op {
            Op::Write { addr, blocks } => {
                let at = addr as usize * BS;
                self.head[at..at + blocks as usize * BS].copy_from_slice(&data(index, blocks));
            }
            Op::Snapshot => self.snapshots.push((index, self.head.clone())),
            Op::Delete if !self.snapshots.is_empty() => {
                self.snapshots.remove(0);
            }
            Op::Merge if !self.snapshots.is_empty() => {
                self.baseline = self.snapshots.remove(0).1;
            }
            _ => {}
        }
    }
}

fn open(dir: &std::path::Path) -> Store<DirStorage> {
    let storage = DirStorage::open(dir).expect("open the directory");
    let mut store = block_on(Store::open(storage, Rc::new(SystemClock))).expect("open the store");
    store.set_write_buffer_bytes(0);
    store
}

/// The child: runs the workload, printing `ACK <index> <volume>` after each operation that
/// returned (the volume: what a snapshot returned, else 0). Acknowledged: syncs, snapshots and
/// everything after which the store says its writes are durable.
fn child(dir: &str, seed: u64) {
    use std::io::Write as _;
    let dir = std::path::Path::new(dir);
    if !dir.join("meta-0000000000000001").exists() {
        let storage = DirStorage::open(dir).expect("open the directory");
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        drop(block_on(Store::create(storage, options, Rc::new(SystemClock))).expect("create"));
    }
    let mut store = open(dir);
    let mut snapshots: Vec<VolumeId> = Vec::new();
    let mut out = std::io::stdout().lock();
    for (index, op) in plan(seed, 100_000).into_iter().enumerate() {
        let mut volume = 0;
        match op {
            Op::Write { addr, blocks } => {
                block_on(store.write(addr, &data(index, blocks))).expect("write");
            }
            Op::Sync => block_on(store.sync()).expect("sync"),
            Op::Snapshot => {
                let id = block_on(store.snapshot(None)).expect("snapshot");
                snapshots.push(id);
                volume = id.0;
            }
            Op::Compact => {
                if let Some(&id) = snapshots.last() {
                    block_on(store.compact(id, &mut |_| true)).expect("compact");
                }
            }
            Op::Delete => {
                if !snapshots.is_empty() {
                    let id = snapshots.remove(0);
                    block_on(store.delete_volume(id)).expect("delete");
                }
            }
            Op::Merge => {
                if !snapshots.is_empty() {
                    let id = snapshots.remove(0);
                    block_on(store.merge(id, &mut |_| true)).expect("merge");
                }
            }
            Op::Reopen => {
                let storage = block_on(store.close()).expect("close");
                drop(storage);
                store = open(dir);
            }
        }
        writeln!(out, "ACK {index} {volume}").expect("stdout");
        out.flush().expect("stdout");
    }
}

/// The (index, volume) of an `ACK <index> <volume>` line. The marker is searched for, not
/// expected at the start: the test harness prints `test child_entry_point ... ` and the child's
/// first line follows it on the same line (reading only lines that start with it lost the first
/// acknowledgement, and a kill right after it then looked like a write nobody began).
fn parse_ack(line: &str) -> Option<(usize, u64)> {
    let at = line.find("ACK ")?;
    let mut parts = line[at..].split_whitespace().skip(1);
    let index = parts.next()?.parse().ok()?;
    let volume = parts.next()?.parse().ok()?;
    Some((index, volume))
}

/// One kill: runs the child for a random time, kills it, checks the store. Returns the
/// operations the child had acknowledged.
fn kill_once(exe: &std::path::Path, dir: &std::path::Path, seed: u64, rng: &mut StdRng) -> usize {
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "child_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("STRATA_KILL_CHILD", dir)
        .env("STRATA_KILL_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the child");
    let stdout = child.stdout.take().expect("stdout");
    let deadline = Instant::now() + Duration::from_millis(rng.random_range(5..300));
    let mut acked: Vec<(usize, u64)> = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    while Instant::now() < deadline {
        match lines.next() {
            Some(Ok(line)) => acked.extend(parse_ack(&line)),
            _ => break,
        }
    }
    child.kill().expect("SIGKILL the child");
    let _ = child.wait();
    // Lines the child printed before it died are acknowledgements too.
    for line in lines.map_while(Result::ok) {
        acked.extend(parse_ack(&line));
    }
    check(dir, seed, &acked);
    acked.len()
}

/// Checks the store in `dir` against the workload of `seed`, of which the operations in `acked`
/// (index, volume a snapshot returned) returned.
fn check(dir: &std::path::Path, seed: u64, acked: &[(usize, u64)]) {
    let returned = acked.last().map_or(0, |(i, _)| i + 1);
    let ops = plan(seed, returned + 1);
    let store = open(dir);
    let head = block_on(store.read(0, BLOCKS)).expect("read the head");
    // The last durable point: everything up to the last sync, snapshot, compaction, deletion,
    // merge or reopen that returned.
    let durable = acked
        .iter()
        .rev()
        .find(|(i, _)| !matches!(ops[*i], Op::Write { .. }))
        .map_or(0, |(i, _)| i + 1);
    let mut state = State::new();
    let mut candidates = Vec::new();
    for (index, op) in ops.iter().enumerate() {
        if index >= durable {
            candidates.push(state.clone());
        }
        state.apply(index, *op);
    }
    candidates.push(state);
    // Snapshots whose identifier the child printed.
    let ids: std::collections::HashMap<usize, VolumeId> = acked
        .iter()
        .filter(|(_, v)| *v != 0)
        .map(|(i, v)| (*i, VolumeId(*v)))
        .collect();
    let present: Vec<VolumeId> = store.volumes().iter().map(|v| v.id).collect();
    let baseline = block_on(store.read_at(VolumeId::BASELINE, 0, BLOCKS)).expect("baseline");
    let fits = |s: &State| -> Result<(), String> {
        if s.head != head {
            return Err("the head differs".into());
        }
        if s.baseline != baseline {
            return Err("the baseline differs".into());
        }
        for (index, id) in &ids {
            let image = s
                .snapshots
                .iter()
                .find(|(i, _)| i == index)
                .map(|(_, im)| im);
            match (image, present.contains(id)) {
                (Some(image), true) => {
                    let got = block_on(store.read_at(*id, 0, BLOCKS))
                        .map_err(|e| format!("snapshot {id}: {e}"))?;
                    if &got != image {
                        return Err(format!("snapshot {id} differs"));
                    }
                }
                (None, false) => {}
                (Some(_), false) => return Err(format!("snapshot {id} is missing")),
                (None, true) => return Err(format!("snapshot {id} should be gone")),
            }
        }
        Ok(())
    };
    let verdicts: Vec<Result<(), String>> = candidates.iter().map(fits).collect();
    if !verdicts.iter().any(Result::is_ok) {
        panic!(
            "seed {seed}: no state between operation {durable} (durable) and {} (begun) matches: {:?}",
            returned + 1,
            verdicts
        );
    }
}

/// Not a test of its own: the child's entry point (does nothing unless `STRATA_KILL_CHILD`).
#[test]
fn child_entry_point() {
    if let (Ok(dir), Ok(seed)) = (
        std::env::var("STRATA_KILL_CHILD"),
        std::env::var("STRATA_KILL_SEED"),
    ) {
        child(&dir, seed.parse().expect("a seed"));
    }
}

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let seed = match std::env::var("STRATA_SEED") {
        Ok(s) => s.parse().expect("STRATA_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    };
    let kills = if std::env::var("STRATA_LONG").is_ok_and(|v| v == "1") {
        400
    } else {
        40
    };
    println!("kill test seed: {seed} (replay with STRATA_SEED={seed}), {kills} kills");
    let exe = std::env::current_exe().expect("this test binary");
    let mut rng = StdRng::seed_from_u64(seed);
    let mut operations = 0usize;
    let tmp = tempfile::tempdir().expect("tempdir");
    for kill in 0..kills {
        // A fresh store per kill, so that the workload replayed in memory is exactly what the
        // child did.
        let dir = tmp.path().join(format!("store-{kill}"));
        std::fs::create_dir_all(&dir).expect("mkdir");
        operations += kill_once(&exe, &dir, rng.random(), &mut rng);
    }
    println!(
        "kill test: {kills} SIGKILLs of a writer process, {operations} operations acknowledged before them, 0 violations"
    );
    assert!(operations > 0, "the child acknowledged nothing");
}
