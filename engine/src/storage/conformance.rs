//! The storage conformance suite: what every [`Storage`] backend must do, checked against the
//! in-memory reference backend, and the engine on top of it (round trip, compaction, merging,
//! deletion, reopening, detecting damage).
//!
//! One suite for every backend: the engine's own tests run it on the directory, memory and
//! simulated backends, the browser tests (`wasm/tests/conformance.rs`) on memory, IndexedDB and
//! OPFS. A backend plugs in through [`Backend`]: how to open (again) the named storage under
//! test, how to destroy it, and a clock. The checks panic with the backend's name on the first
//! difference (this module is test support, compiled only with the `conformance` feature).

use std::rc::Rc;

use super::memory::MemoryStorage;
use super::{Commit, ReadRequest, Storage};
use crate::clock::Clock;
use crate::{CreateOptions, CursorStart, Error, Store, VolumeId, VolumeInfo};

const BLOCK: usize = 4096;
const BLOCKS: u64 = 96;

/// A backend under test: one named storage, opened as often as the suite asks.
#[allow(async_fn_in_trait)]
pub trait Backend {
    /// The storage it opens.
    type Storage: Storage;
    /// Its name in failure messages.
    fn name(&self) -> String;
    /// Opens the storage under test (again, after the previous handle was dropped): the same
    /// objects as before.
    async fn open(&mut self) -> Self::Storage;
    /// Removes everything the storage holds; the next [`Backend::open`] finds it empty.
    async fn destroy(&mut self);
    /// The clock stores are created with.
    fn clock(&self) -> Rc<dyn Clock>;
}

/// A block whose bytes depend on `seed` and position, so shifted, short or zeroed reads show.
fn block(seed: u32) -> Vec<u8> {
    let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(0x9E37_79B9);
    (0..BLOCK)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn blocks(seed: u32, n: usize) -> Vec<u8> {
    (0..n as u32).flat_map(|i| block(seed * 1000 + i)).collect()
}

/// The volumes after a reopen are the ones before it.
fn assert_same_volumes<S: Storage>(name: &str, store: &Store<S>, before: &[VolumeInfo]) {
    let after = store.volumes();
    assert_eq!(
        after.len(),
        before.len(),
        "{name}: volume count after reopen"
    );
    for (a, b) in after.iter().zip(before) {
        // `entry_count` is left out: the engine reports 0 for a snapshot sealed in this session
        // and the real count after a reopen.
        let (mut a, mut b) = (a.clone(), b.clone());
        a.entry_count = 0;
        b.entry_count = 0;
        assert_eq!(a, b, "{name}: volume after reopen");
    }
}

/// Every block of volume `v`.
async fn image<S: Storage>(store: &Store<S>, v: VolumeId) -> Vec<u8> {
    store
        .read_at(v, 0, BLOCKS)
        .await
        .expect("read a whole volume")
}

/// Runs the whole suite on `backend`: the backend contract, then the engine scenarios.
pub async fn run_all<B: Backend>(backend: &mut B) {
    backend_contract(backend).await;
    engine_round_trip(backend).await;
    engine_compact_merge_delete(backend).await;
    engine_detects_corruption(backend).await;
}

/// Create, write, read at the head and at snapshots, walk the log, close and reopen.
pub async fn engine_round_trip<B: Backend>(backend: &mut B) {
    let kind = backend.name();
    let storage = backend.open().await;
    let mut store = Store::create(storage, CreateOptions::new(BLOCKS), backend.clock())
        .await
        .expect("create");
    let writes: Vec<(u64, Vec<u8>)> = vec![
        (3, blocks(1, 1)),
        (10, blocks(2, 20)), // 80 KiB: crosses a 64 KiB IndexedDB chunk
        (95, blocks(3, 1)),
        (0, blocks(4, 2)),
    ];
    let mut expected = vec![0u8; BLOCKS as usize * BLOCK];
    for (addr, data) in &writes {
        store.write(*addr, data).await.expect("write");
        let at = *addr as usize * BLOCK;
        expected[at..at + data.len()].copy_from_slice(data);
    }
    let snap = store.snapshot(Some("first")).await.expect("snapshot");
    let at_snapshot = expected.clone();
    let later: Vec<(u64, Vec<u8>)> = vec![(3, blocks(5, 1)), (12, blocks(6, 3))];
    for (addr, data) in &later {
        store
            .write(*addr, data)
            .await
            .expect("write after snapshot");
        let at = *addr as usize * BLOCK;
        expected[at..at + data.len()].copy_from_slice(data);
    }
    store.sync().await.expect("sync");
    let head = store.head();
    assert_eq!(image(&store, head).await, expected, "{kind}: head");
    assert_eq!(image(&store, snap).await, at_snapshot, "{kind}: snapshot");
    assert_eq!(
        store.read(3, 1).await.unwrap(),
        blocks(5, 1),
        "{kind}: one block"
    );

    // The log, in order.
    let mut cursor = store.cursor(CursorStart::Beginning).expect("cursor");
    let mut walked = Vec::new();
    while let Some(entry) = store.next_entry(&mut cursor, true).await.expect("next") {
        walked.push(entry);
    }
    let all: Vec<&(u64, Vec<u8>)> = writes.iter().chain(later.iter()).collect();
    assert_eq!(walked.len(), all.len(), "{kind}: log entries");
    for (i, (entry, (addr, data))) in walked.iter().zip(all).enumerate() {
        assert_eq!(entry.addr, *addr, "{kind}: entry {i} address");
        assert_eq!(
            entry.blocks as usize * BLOCK,
            data.len(),
            "{kind}: entry {i}"
        );
        assert_eq!(
            entry.data.as_deref(),
            Some(&data[..]),
            "{kind}: entry {i} data"
        );
        if i > 0 {
            assert!(entry.seq > walked[i - 1].seq, "{kind}: sequence order");
        }
    }
    assert_eq!(
        walked[4].volume, head,
        "{kind}: later entries are in the head"
    );
    let volumes = store.volumes();

    // Reopen: drop everything, open the same storage again.
    drop(store.close().await.expect("close"));
    let store = Store::open(backend.open().await, backend.clock())
        .await
        .expect("reopen");
    assert_same_volumes(&kind, &store, &volumes);
    assert_eq!(
        image(&store, head).await,
        expected,
        "{kind}: head after reopen"
    );
    assert_eq!(
        image(&store, snap).await,
        at_snapshot,
        "{kind}: snapshot after reopen"
    );
    drop(store);
    backend.destroy().await;
}

/// Compaction, deletion and merging keep every remaining volume's contents, also across a
/// reopen.
pub async fn engine_compact_merge_delete<B: Backend>(backend: &mut B) {
    let kind = backend.name();
    let mut store = Store::create(
        backend.open().await,
        CreateOptions::new(BLOCKS),
        backend.clock(),
    )
    .await
    .expect("create");
    for round in 0..3u32 {
        store.write(0, &blocks(10 + round, 8)).await.unwrap();
        store.write(4, &blocks(20 + round, 8)).await.unwrap();
        store
            .write(40 + u64::from(round) * 10, &blocks(30 + round, 5))
            .await
            .unwrap();
    }
    let v1 = store.snapshot(Some("v1")).await.unwrap();
    store.write(2, &blocks(40, 4)).await.unwrap();
    store.write(2, &blocks(41, 4)).await.unwrap();
    let v2 = store.snapshot(Some("v2")).await.unwrap();
    store.write(60, &blocks(50, 16)).await.unwrap();
    let v3 = store.snapshot(Some("v3")).await.unwrap();
    store.write(1, &blocks(60, 1)).await.unwrap();
    store.sync().await.unwrap();
    let head = store.head();
    let (i1, i3, ih) = (
        image(&store, v1).await,
        image(&store, v3).await,
        image(&store, head).await,
    );

    let report = store.compact(v1, &mut |_| true).await.expect("compact");
    assert!(
        report.blocks_dropped > 0,
        "{kind}: compaction dropped overwritten blocks"
    );
    assert_eq!(image(&store, v1).await, i1, "{kind}: v1 after compaction");
    store.delete_volume(v2).await.expect("delete v2");
    assert!(
        matches!(store.read_at(v2, 0, 1).await, Err(Error::UnknownVolume(_))),
        "{kind}: a deleted volume is gone"
    );
    assert_eq!(image(&store, v3).await, i3, "{kind}: v3 after deleting v2");
    store.merge(v1, &mut |_| true).await.expect("merge v1");
    assert_eq!(
        image(&store, VolumeId::BASELINE).await,
        i1,
        "{kind}: baseline after merge"
    );
    assert_eq!(image(&store, v3).await, i3, "{kind}: v3 after merge");
    assert_eq!(image(&store, head).await, ih, "{kind}: head after merge");
    let volumes = store.volumes();

    drop(store.close().await.expect("close"));
    let store = Store::open(backend.open().await, backend.clock())
        .await
        .expect("reopen");
    assert_same_volumes(&kind, &store, &volumes);
    assert_eq!(
        image(&store, VolumeId::BASELINE).await,
        i1,
        "{kind}: baseline"
    );
    assert_eq!(image(&store, v3).await, i3, "{kind}: v3 after reopen");
    assert_eq!(image(&store, head).await, ih, "{kind}: head after reopen");
    drop(store);
    backend.destroy().await;
}

/// A byte damaged through the backend's own commit API is reported as corruption, never
/// returned as data.
pub async fn engine_detects_corruption<B: Backend>(backend: &mut B) {
    let kind = backend.name();
    let mut store = Store::create(
        backend.open().await,
        CreateOptions::new(BLOCKS),
        backend.clock(),
    )
    .await
    .expect("create");
    let victim = block(777);
    store.write(5, &victim).await.unwrap();
    store.write(6, &block(778)).await.unwrap();
    let snap = store.snapshot(None).await.unwrap();
    store.write(7, &block(779)).await.unwrap();
    let mut storage = store.close().await.expect("close");

    // Find the victim block's bytes in a segment object and flip one of them.
    let mut damaged = None;
    for object in storage.list().await.unwrap() {
        let len = storage.len(&object).await.unwrap().unwrap_or(0);
        let mut bytes = vec![0u8; len as usize];
        assert_eq!(
            storage.read_at(&object, 0, &mut bytes).await.unwrap(),
            len as usize
        );
        if let Some(at) = bytes.windows(BLOCK).position(|w| w == victim) {
            damaged = Some((object, at as u64 + 1000, bytes[at + 1000]));
            break;
        }
    }
    let (object, offset, old) =
        damaged.unwrap_or_else(|| panic!("{kind}: the written block is in no object"));
    let mut commit = Commit::new(true);
    commit.write(&object, offset, vec![old ^ 0x10]);
    storage.commit(commit).await.expect("damage");
    let mut check = [0u8; 1];
    storage.read_at(&object, offset, &mut check).await.unwrap();
    assert_eq!(check[0], old ^ 0x10, "{kind}: the damage was written");
    drop(storage);

    match Store::open(backend.open().await, backend.clock()).await {
        Err(e) => assert!(
            e.is_corruption(),
            "{kind}: open failed but not as corruption: {e}"
        ),
        Ok(store) => {
            let err = store
                .read_at(snap, 5, 1)
                .await
                .expect_err("damaged block read as data");
            assert!(err.is_corruption(), "{kind}: {err}");
            assert_eq!(store.read_at(snap, 6, 1).await.unwrap(), block(778));
        }
    }
    backend.destroy().await;
}

/// Asserts `storage` holds exactly what `model` holds (`what` says when, in the message).
pub async fn assert_same<S: Storage>(kind: &str, what: &str, storage: &S, model: &MemoryStorage) {
    // `Storage::list` promises no order.
    let mut names = model.list().await.unwrap();
    names.sort();
    let mut listed = storage.list().await.unwrap();
    listed.sort();
    assert_eq!(listed, names, "{kind} {what}: list");
    for name in names {
        let len = model.len(&name).await.unwrap();
        assert_eq!(
            storage.len(&name).await.unwrap(),
            len,
            "{kind} {what}: len {name}"
        );
        let len = len.unwrap_or(0) as usize;
        let mut want = vec![0u8; len + 100];
        let mut got = vec![0xEEu8; len + 100];
        model.read_at(&name, 0, &mut want).await.unwrap();
        let n = storage.read_at(&name, 0, &mut got).await.unwrap();
        assert_eq!(n, len, "{kind} {what}: bytes read of {name}");
        if got != want {
            let at = got.iter().zip(&want).position(|(a, b)| a != b).unwrap_or(0);
            panic!("{kind} {what}: {name} differs first at byte {at} of {len}");
        }
    }
}

/// Applies `c` to `storage` and to the reference `model`.
pub async fn apply<S: Storage>(kind: &str, storage: &mut S, model: &mut MemoryStorage, c: Commit) {
    model.commit(c.clone()).await.unwrap();
    storage
        .commit(c)
        .await
        .unwrap_or_else(|e| panic!("{kind}: commit failed: {e}"));
}

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The [`Storage`] contract, change by change, against [`MemoryStorage`]: missing objects,
/// gaps and reads past the end, mixed commits across 64 KiB boundaries, truncation (shrinking
/// never lets old bytes back), deletion and re-creation, `read_many`, then random commits with
/// reopens (cold caches) on the way.
pub async fn backend_contract<B: Backend>(backend: &mut B) {
    let kind = backend.name();
    let kind = kind.as_str();
    let mut storage = backend.open().await;
    let mut model = MemoryStorage::new();
    contract_missing_and_gaps(kind, &mut storage, &mut model).await;
    contract_commits(kind, &mut storage, &mut model).await;
    contract_read_many(kind, &storage, &model).await;
    let storage = contract_random_commits(kind, backend, storage, &mut model).await;
    drop(storage);
    let storage = backend.open().await;
    assert_same(kind, "final reopen", &storage, &model).await;
    drop(storage);
    backend.destroy().await;
    let storage = backend.open().await;
    assert_eq!(
        storage.list().await.unwrap(),
        Vec::<String>::new(),
        "{kind}: destroyed"
    );
    drop(storage);
    backend.destroy().await;
}

/// A missing object (no length, reads as zeros), a write past the start (the gap is zero), reads
/// past the end (zero-filled).
async fn contract_missing_and_gaps<S: Storage>(
    kind: &str,
    storage: &mut S,
    model: &mut MemoryStorage,
) {
    // A missing object: no length, reads as zeros, 0 bytes existed.
    assert_eq!(storage.len("missing").await.unwrap(), None);
    let mut buf = [0xAAu8; 300];
    assert_eq!(storage.read_at("missing", 0, &mut buf).await.unwrap(), 0);
    assert!(
        buf.iter().all(|&b| b == 0),
        "{kind}: missing object reads as zeros"
    );
    assert_eq!(storage.list().await.unwrap(), Vec::<String>::new());

    // Write past the start: the gap is zero; a read past the end zero-fills.
    let data: Vec<u8> = (0..100u32).map(|i| i as u8 + 1).collect();
    let mut c = Commit::new(false);
    c.write("a", 10, data.clone());
    apply(kind, storage, model, c).await;
    let mut buf = [0xAAu8; 200];
    assert_eq!(storage.read_at("a", 0, &mut buf).await.unwrap(), 110);
    assert!(buf[..10].iter().all(|&b| b == 0), "{kind}: leading gap");
    assert_eq!(&buf[10..110], &data[..]);
    assert!(
        buf[110..].iter().all(|&b| b == 0),
        "{kind}: zero-fill past the end"
    );
    let mut buf = [0xAAu8; 10];
    assert_eq!(storage.read_at("a", 500, &mut buf).await.unwrap(), 0);
    assert_eq!(buf, [0; 10], "{kind}: read wholly past the end");
}

/// Several changes in one commit across 64 KiB boundaries; shrink then grow (nothing old comes
/// back); delete then recreate (it starts empty).
async fn contract_commits<S: Storage>(kind: &str, storage: &mut S, model: &mut MemoryStorage) {
    // Several changes in one commit, in order, across 64 KiB boundaries.
    let mut c = Commit::new(true);
    c.write("b", 1000, blocks(7, 50)); // 200 KiB
    c.write("b", 65_536 - 10, vec![9; 100]);
    c.truncate("b", 70_000);
    c.write("b", 69_990, vec![8; 20]);
    c.truncate("c", 5);
    c.write("a", 20, vec![7; 5]); // partial overwrite of a committed chunk
    apply(kind, storage, model, c).await;
    assert_same(kind, "after a mixed commit", storage, model).await;

    // Shrink then grow: nothing of the old bytes comes back.
    let mut c = Commit::new(true);
    c.truncate("b", 200_000);
    apply(kind, storage, model, c).await;
    // (the mixed commit ended "b" at 70_010: a write followed its truncation to 70_000)
    let mut tail = vec![0xAAu8; 129_990];
    assert_eq!(
        storage.read_at("b", 70_010, &mut tail).await.unwrap(),
        129_990
    );
    assert!(
        tail.iter().all(|&b| b == 0),
        "{kind}: truncated bytes came back"
    );

    // Delete, then recreate: it starts empty.
    let mut c = Commit::new(false);
    c.delete("a");
    c.delete("never-existed");
    apply(kind, storage, model, c).await;
    assert_eq!(storage.len("a").await.unwrap(), None, "{kind}: deleted");
    let mut c = Commit::new(true);
    c.write("a", 3, vec![1, 2, 3]);
    apply(kind, storage, model, c).await;
    assert_same(kind, "after delete and recreate", storage, model).await;
}

/// `read_many` over several objects, a missing one and past the end.
async fn contract_read_many<S: Storage>(kind: &str, storage: &S, model: &MemoryStorage) {
    // read_many over several objects, a missing one and past the end.
    let (mut b1, mut b2, mut b3, mut b4) = (
        vec![0xAA; 70_000],
        vec![0xAA; 10],
        vec![0xAA; 8],
        vec![0xAA; 4],
    );
    let mut requests = vec![
        ReadRequest {
            object: "b",
            offset: 60_000,
            buf: &mut b1,
            filled: 99,
        },
        ReadRequest {
            object: "missing",
            offset: 0,
            buf: &mut b2,
            filled: 99,
        },
        ReadRequest {
            object: "a",
            offset: 0,
            buf: &mut b3,
            filled: 99,
        },
        ReadRequest {
            object: "c",
            offset: 3,
            buf: &mut b4,
            filled: 99,
        },
    ];
    storage.read_many(&mut requests).await.unwrap();
    let filled: Vec<usize> = requests.iter().map(|r| r.filled).collect();
    assert_eq!(filled, vec![70_000, 0, 6, 2], "{kind}: read_many filled");
    let mut want = vec![0u8; 70_000];
    model.read_at("b", 60_000, &mut want).await.unwrap();
    assert_eq!(b1, want, "{kind}: read_many data");
    assert_eq!(b2, vec![0; 10]);
    assert_eq!(b3, vec![0, 0, 0, 1, 2, 3, 0, 0]);
    assert_eq!(b4, vec![0; 4]);
}

/// Random commits against the model, with reopens (cold caches) on the way; gives back the
/// storage open at the end.
async fn contract_random_commits<B: Backend>(
    kind: &str,
    backend: &mut B,
    mut storage: B::Storage,
    model: &mut MemoryStorage,
) -> B::Storage {
    // Random commits against the model, with reopens (cold caches) on the way.
    let mut rng = Rng(u64::from(kind.len() as u32) * 7919 + 17);
    let objects = ["x", "y", "z", "b"];
    for step in 0..40 {
        let mut c = Commit::new(rng.below(3) == 0);
        for _ in 0..1 + rng.below(4) {
            let object = objects[rng.below(objects.len() as u64) as usize];
            match rng.below(10) {
                0 => {
                    c.delete(object);
                }
                1 | 2 => {
                    c.truncate(object, rng.below(300_000));
                }
                _ => {
                    let len = match rng.below(3) {
                        0 => 1 + rng.below(64),
                        1 => 1 + rng.below(8192),
                        _ => 1 + rng.below(150_000),
                    } as usize;
                    let seed = rng.next() as u8;
                    let bytes: Vec<u8> = (0..len)
                        .map(|i| seed.wrapping_add((i % 251) as u8))
                        .collect();
                    c.write(object, rng.below(300_000), bytes);
                }
            }
        }
        apply(kind, &mut storage, model, c).await;
        assert_same(kind, &format!("random step {step}"), &storage, model).await;
        if step % 13 == 12 {
            drop(storage);
            storage = backend.open().await;
            assert_same(kind, &format!("reopen at step {step}"), &storage, model).await;
        }
    }
    storage
}
