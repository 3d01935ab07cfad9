//! Model-based test: random operations against the engine on the simulated disk and against a
//! plain in-memory model, with crash-and-reopen as one of the transitions.
//!
//! The operations: writes, batches, sync, snapshot, in-place compaction, merge into the baseline,
//! volume deletion, rollback, diff (checked against the model's images), copy (a stream sent to a
//! second store and received there, incremental when it can be), crash, reopen and clock ticks.
//! The model keeps the partition tree (deleted volumes stay in it as hidden nodes) to predict
//! which snapshots a merge folds in and when it must be refused.
//!
//! After a crash, every acknowledged write and snapshot must be intact, and the head must equal
//! the last acknowledged state plus a *prefix* of the unacknowledged records (never a torn mix).
//! proptest prints the failing operation list (crash seeds included) and persists it for replay.

use std::collections::BTreeMap;
use std::rc::Rc;

use pollster::block_on;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;
use strata_engine::clock::ManualClock;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{
    CreateOptions, Error, Extent, SendOptions, Store, StreamReceiver, VolumeId, VolumeKind,
};

mod common;
use common::Model;

const BS: usize = 512;
const BLOCKS: u64 = 24;

#[derive(Debug, Clone)]
enum Op {
    Write {
        addr: u64,
        blocks: u64,
        fill: u8,
    },
    Batch(Vec<(u64, u8)>),
    /// `write_zeroes` (trim) of a range.
    Zero {
        addr: u64,
        blocks: u64,
    },
    Sync,
    Snapshot,
    Crash {
        seed: u64,
        mode: u8,
    },
    Reopen,
    Tick(u64),
    /// Compact the snapshot picked by the index (modulo the number of snapshots).
    Compact(u8),
    /// Merge the picked snapshot (and its ancestors) into the baseline.
    Merge(u8),
    /// Delete the picked snapshot.
    Delete(u8),
    /// Roll the head back to the picked volume (0: the baseline, then the snapshots).
    Rollback(u8),
    /// Diff two picked volumes (the baseline, the snapshots, then the head).
    Diff(u8, u8),
    /// Copy the newest snapshot chain to the second store.
    Copy,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        // Fill 0 often: an all-zero write is kept as a zero extent.
        8 => (0..BLOCKS, 1..4u64, prop_oneof![1 => Just(0u8), 4 => any::<u8>()])
            .prop_map(|(addr, blocks, fill)| Op::Write {
                addr: addr.min(BLOCKS - blocks),
                blocks,
                fill
            }),
        2 => (0..BLOCKS, 1..12u64).prop_map(|(addr, blocks)| Op::Zero {
            addr: addr.min(BLOCKS - blocks),
            blocks,
        }),
        2 => proptest::collection::vec((0..BLOCKS, any::<u8>()), 1..4).prop_map(Op::Batch),
        3 => Just(Op::Sync),
        2 => Just(Op::Snapshot),
        2 => (any::<u64>(), 0..3u8).prop_map(|(seed, mode)| Op::Crash { seed, mode }),
        1 => Just(Op::Reopen),
        1 => (1..10_000u64).prop_map(Op::Tick),
        1 => any::<u8>().prop_map(Op::Compact),
        1 => any::<u8>().prop_map(Op::Merge),
        1 => any::<u8>().prop_map(Op::Delete),
        1 => any::<u8>().prop_map(Op::Rollback),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Diff(a, b)),
        1 => Just(Op::Copy),
    ]
}

/// The partition tree as the model sees it: each snapshot's parent (deleted snapshots stay as
/// hidden nodes, since the engine keeps what their descendants read), and the head's parent.
struct Tree {
    parents: BTreeMap<VolumeId, VolumeId>,
    head_parent: VolumeId,
}

impl Tree {
    /// `id` and its ancestors below the baseline, root first.
    fn chain(&self, id: VolumeId) -> Vec<VolumeId> {
        let mut chain = vec![id];
        let mut at = id;
        while let Some(&parent) = self.parents.get(&at) {
            if parent == VolumeId::BASELINE || chain.len() > self.parents.len() {
                break;
            }
            chain.push(parent);
            at = parent;
        }
        chain.reverse();
        chain
    }

    /// True if `id` is `ancestor` or grows from it.
    fn descends(&self, id: VolumeId, ancestor: VolumeId) -> bool {
        let mut at = id;
        for _ in 0..=self.parents.len() + 1 {
            if at == ancestor {
                return true;
            }
            match self.parents.get(&at) {
                Some(&parent) => at = parent,
                None => return false,
            }
        }
        false
    }
}

/// The second store and what each of its volumes must read (their images when sent).
struct CopyTarget {
    store: Store<MemoryStorage>,
    sent: BTreeMap<VolumeId, Vec<u8>>,
}

fn pick<T: Copy>(items: &[T], index: u8) -> Option<T> {
    if items.is_empty() {
        None
    } else {
        Some(items[index as usize % items.len()])
    }
}

/// The block extents whose contents differ between two images.
fn model_diff(a: &[u8], b: &[u8]) -> Vec<Extent> {
    let mut extents: Vec<Extent> = Vec::new();
    for (addr, (x, y)) in a.chunks(BS).zip(b.chunks(BS)).enumerate() {
        if x == y {
            continue;
        }
        let addr = addr as u64;
        match extents.last_mut() {
            Some(e) if e.addr + e.blocks == addr => e.blocks += 1,
            _ => extents.push(Extent { addr, blocks: 1 }),
        }
    }
    extents
}

fn send(store: &Store<SimDisk>, base: Option<VolumeId>) -> Result<Vec<u8>, Error> {
    let mut stream = Vec::new();
    block_on(store.send(
        &SendOptions {
            base,
            ..SendOptions::default()
        },
        &mut |chunk| {
            stream.extend_from_slice(chunk);
            Ok(())
        },
    ))?;
    Ok(stream)
}

/// Copies the source's newest snapshot chain into the target (incrementally from the newest
/// volume the target has, when the source still has it; else a full copy into a new store), then
/// checks that the target has every visible snapshot of that chain, each reading as the model
/// said when it was sent, and a head reading as the newest.
fn copy(
    store: &Store<SimDisk>,
    model: &Model,
    tree: &Tree,
    target: &mut Option<CopyTarget>,
) -> Result<(), TestCaseError> {
    // The newest snapshot of the live chain (deleted volumes are not snapshots).
    let upto = store
        .volume(store.head())
        .ok()
        .and_then(|h| h.parent)
        .unwrap_or(VolumeId::BASELINE);
    if upto == VolumeId::BASELINE {
        return Ok(());
    }
    let have = target
        .as_ref()
        .and_then(|t| t.store.volume(t.store.head()).ok())
        .and_then(|h| h.parent)
        .filter(|p| *p != VolumeId::BASELINE);
    if have == Some(upto) {
        return Ok(());
    }
    let incremental = match have {
        Some(base) => match send(store, Some(base)) {
            Ok(stream) => Some(stream),
            Err(Error::InvalidArgument(_) | Error::UnknownVolume(_)) => None,
            Err(e) => return Err(TestCaseError::fail(format!("incremental send: {e}"))),
        },
        None => None,
    };
    let (mut receiver, mut sent) = match (incremental.is_some(), target.take()) {
        (true, Some(t)) => (StreamReceiver::into_store(t.store), t.sent),
        _ => (
            StreamReceiver::new_store(MemoryStorage::new(), Rc::new(ManualClock::new(1_000))),
            BTreeMap::new(),
        ),
    };
    let stream = match incremental {
        Some(stream) => stream,
        None => send(store, None).map_err(|e| TestCaseError::fail(format!("full send: {e}")))?,
    };
    block_on(receiver.push(&stream)).map_err(|e| TestCaseError::fail(format!("receive: {e}")))?;
    let (received, _) =
        block_on(receiver.finish()).map_err(|e| TestCaseError::fail(format!("finish: {e}")))?;
    for (id, image) in &model.snapshots {
        sent.entry(*id).or_insert_with(|| image.clone());
    }
    for id in tree.chain(upto) {
        if model.image_of(id).is_some() {
            prop_assert!(
                received.volume(id).is_ok(),
                "the copy lacks snapshot {} of the chain it was sent",
                id
            );
        }
    }
    for v in received.volumes() {
        if v.kind != VolumeKind::Snapshot {
            continue;
        }
        let expected = sent.get(&v.id).ok_or_else(|| {
            TestCaseError::fail(format!("the copy holds volume {}, never sent", v.id))
        })?;
        let got = block_on(received.read_at(v.id, 0, BLOCKS)).unwrap();
        prop_assert!(&got == expected, "copied volume {} differs", v.id);
    }
    let head = block_on(received.read(0, BLOCKS)).unwrap();
    prop_assert!(
        Some(head) == model.image_of(upto),
        "the copy's head does not read as volume {}",
        upto
    );
    *target = Some(CopyTarget {
        store: received,
        sent,
    });
    Ok(())
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
    let mut tree = Tree {
        parents: BTreeMap::new(),
        head_parent: VolumeId::BASELINE,
    };
    let mut target: Option<CopyTarget> = None;
    for op in ops {
        let snapshots: Vec<VolumeId> = model.snapshots.iter().map(|(v, _)| *v).collect();
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
            Op::Zero { addr, blocks } => {
                // What the engine records: one zero extent per run of blocks that do not read
                // as zeros, all in one record (or nothing, if the range reads as zeros).
                let runs = model.nonzero_runs(addr, blocks);
                let recorded = block_on(store.write_zeroes(addr, blocks)).unwrap();
                prop_assert_eq!(recorded, runs.iter().map(|&(_, n)| n).sum::<u64>());
                if !runs.is_empty() {
                    let zeros: Vec<(u64, Vec<u8>)> = runs
                        .iter()
                        .map(|&(a, n)| (a, vec![0u8; n as usize * BS]))
                        .collect();
                    model.apply(&zeros);
                }
            }
            Op::Sync => {
                block_on(store.sync()).unwrap();
                model.synced();
            }
            Op::Snapshot => {
                let id = block_on(store.snapshot(None)).unwrap();
                model.snapshot(id);
                tree.parents.insert(id, tree.head_parent);
                tree.head_parent = id;
            }
            Op::Compact(i) => {
                if let Some(id) = pick(&snapshots, i) {
                    block_on(store.compact(id, &mut |_| true))
                        .map_err(|e| TestCaseError::fail(format!("compact {id}: {e}")))?;
                    // Compaction makes the head's writes durable before it drops anything.
                    model.synced();
                }
            }
            Op::Delete(i) => {
                if let Some(id) = pick(&snapshots, i) {
                    block_on(store.delete_volume(id))
                        .map_err(|e| TestCaseError::fail(format!("delete {id}: {e}")))?;
                    model.snapshots.retain(|(v, _)| *v != id);
                    // Deleting compacts, which makes the head's writes durable first.
                    model.synced();
                }
            }
            Op::Rollback(i) => {
                let mut choices = vec![VolumeId::BASELINE];
                choices.extend(&snapshots);
                let to = pick(&choices, i).unwrap_or(VolumeId::BASELINE);
                let old_head = store.head();
                block_on(store.rollback(to, None))
                    .map_err(|e| TestCaseError::fail(format!("rollback to {to}: {e}")))?;
                if model.head_entries > 0 {
                    tree.parents.insert(old_head, tree.head_parent);
                }
                tree.head_parent = to;
                model.rolled_back(old_head, to);
            }
            Op::Merge(i) => {
                if let Some(id) = pick(&snapshots, i) {
                    let chain = tree.chain(id);
                    // Any other visible volume that does not grow from `id` still reads the old
                    // baseline or a merged partition: the merge must be refused.
                    let branch = snapshots
                        .iter()
                        .copied()
                        .chain([store.head()])
                        .filter(|v| !chain.contains(v))
                        .find(|v| {
                            let parent = if *v == store.head() {
                                tree.head_parent
                            } else {
                                tree.parents[v]
                            };
                            !tree.descends(parent, id)
                        });
                    match block_on(store.merge(id, &mut |_| true)) {
                        Ok(merged) => {
                            prop_assert!(
                                branch.is_none(),
                                "merged {} although volume {:?} branches off its chain",
                                id,
                                branch
                            );
                            prop_assert!(merged as usize <= chain.len());
                            let visible: Vec<VolumeId> = chain
                                .iter()
                                .copied()
                                .filter(|v| snapshots.contains(v))
                                .collect();
                            model.merged(&visible);
                            // The merge's durability barrier covers the head's earlier writes.
                            model.synced();
                            for v in &chain {
                                tree.parents.remove(v);
                            }
                            for parent in tree.parents.values_mut() {
                                if chain.contains(parent) {
                                    *parent = VolumeId::BASELINE;
                                }
                            }
                            if chain.contains(&tree.head_parent) {
                                tree.head_parent = VolumeId::BASELINE;
                            }
                        }
                        Err(Error::InvalidArgument(e)) => prop_assert!(
                            branch.is_some(),
                            "merge of {} refused with no branch off its chain: {}",
                            id,
                            e
                        ),
                        Err(e) => return Err(TestCaseError::fail(format!("merge {id}: {e}"))),
                    }
                }
            }
            Op::Diff(i, j) => {
                let mut choices = vec![VolumeId::BASELINE];
                choices.extend(&snapshots);
                choices.push(store.head());
                let (a, b) = (pick(&choices, i).unwrap(), pick(&choices, j).unwrap());
                let image = |v: VolumeId| {
                    if v == store.head() {
                        model.head.clone()
                    } else {
                        model.image_of(v).unwrap()
                    }
                };
                let got = block_on(store.diff(a, b))
                    .map_err(|e| TestCaseError::fail(format!("diff {a} {b}: {e}")))?;
                prop_assert_eq!(got, model_diff(&image(a), &image(b)), "diff {} {}", a, b);
            }
            Op::Copy => copy(&store, &model, &tree, &mut target)?,
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

fn replay(ops: Vec<Op>) {
    if let Err(e) = run(ops) {
        panic!("{e}");
    }
}

fn write(addr: u64, blocks: u64, fill: u8) -> Op {
    Op::Write { addr, blocks, fill }
}

/// Regression: with the head's parent deleted (its partition kept, hidden, for the blocks the
/// head reads through it), a copy sent that hidden partition as the tip of the stream, and the
/// target's head grew from it instead of from the newest snapshot.
#[test]
fn copy_after_deleting_the_heads_parent_grows_from_the_newest_snapshot() {
    replay(vec![
        Op::Snapshot,
        Op::Snapshot,
        write(0, 1, 1),
        Op::Snapshot,
        Op::Delete(2),
        Op::Copy,
    ]);
}

/// Regression: compaction splits an entry partly overwritten in its partition into runs that
/// keep its sequence number; the receiver refused the second run as out of order.
#[test]
fn copy_of_a_compacted_partition_with_a_split_entry() {
    replay(vec![
        write(17, 3, 0),
        write(18, 1, 0),
        Op::Snapshot,
        Op::Compact(0),
        Op::Copy,
    ]);
}

/// Regression: deleting a snapshot with no entries left its partition behind (hidden), and
/// merges of every other branch were refused because of it.
#[test]
fn a_deleted_empty_snapshot_does_not_block_merges() {
    replay(vec![
        Op::Snapshot,
        Op::Rollback(0),
        Op::Delete(0),
        Op::Snapshot,
        Op::Merge(0),
    ]);
}

/// Regression: a deleted snapshot kept for the head's sake stayed after a rollback removed the
/// (empty) head, although nothing read it any more, and blocked merges of other branches.
#[test]
fn a_deleted_snapshot_nothing_reads_goes_after_a_rollback() {
    replay(vec![
        write(0, 1, 0),
        Op::Snapshot,
        Op::Delete(0),
        Op::Rollback(0),
        Op::Snapshot,
        Op::Merge(0),
    ]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn engine_matches_model_through_crashes(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
