//! A snapshot with unsynced writes costs one flush (issue #13, format version 4): records, index
//! and a *seal block* reach the head's segment in one durable commit, and the journal's records
//! of the seal wait for the next journal append. Recovery redoes a seal the journal lacks from
//! the segment, and its successor is the head.
//!
//! * the flush count, on the directory backend;
//! * the store dropped without a close (the journal never got the seals): every snapshot reads
//!   back with its label, the head's synced writes survive, a read-only view redoes the seals in
//!   memory and writes nothing, a writable open journals them once;
//! * a chain longer than the pending-record bound, and pending records too large to share one
//!   journal record with the next append;
//! * random crashes on the simulated disk;
//! * what must not be redone (a torn seal) and what must fail (damage below a seal whose new
//!   head already has records).

use std::rc::Rc;

mod common;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::SeedableRng;
use strata_engine::clock::ManualClock;
use strata_engine::storage::dir::DirStorage;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::storage::Storage;
use strata_engine::{CreateOptions, Error, Store, VolumeId};

const BS: usize = 512;
const BLOCKS: u64 = 64;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

fn block(i: u64, round: u64) -> Vec<u8> {
    let mut data = vec![(i * 5 + round) as u8; BS];
    data[..8].copy_from_slice(&(round << 32 | i).to_le_bytes());
    data
}

/// A snapshot the test took: its volume, label and the image it must read.
struct Taken {
    id: VolumeId,
    label: String,
    image: Vec<Vec<u8>>,
}

/// Writes `rounds` rounds of blocks, each snapshotted without a sync; then writes once more and
/// syncs. Returns the snapshots and the head's synced image.
async fn history<S: Storage>(store: &mut Store<S>, rounds: u64) -> (Vec<Taken>, Vec<Vec<u8>>) {
    history_from(store, vec![vec![0u8; BS]; BLOCKS as usize], rounds).await
}

/// [`history`] on a store whose head reads `image`.
async fn history_from<S: Storage>(
    store: &mut Store<S>,
    mut image: Vec<Vec<u8>>,
    rounds: u64,
) -> (Vec<Taken>, Vec<Vec<u8>>) {
    let mut taken = Vec::new();
    for round in 1..=rounds {
        for i in (round % 4..BLOCKS).step_by(4) {
            let data = block(i, round);
            store.write(i, &data).await.expect("write");
            image[i as usize] = data;
        }
        let label = format!("round {round}");
        let id = store.snapshot(Some(&label)).await.expect("snapshot");
        taken.push(Taken {
            id,
            label,
            image: image.clone(),
        });
    }
    let data = block(3, 1000);
    store.write(3, &data).await.expect("write");
    image[3] = data;
    store.sync().await.expect("sync");
    (taken, image)
}

async fn assert_reads<S: Storage>(store: &Store<S>, taken: &[Taken], head: &[Vec<u8>], what: &str) {
    let volumes = store.volumes();
    for t in taken {
        let info = volumes
            .iter()
            .find(|v| v.id == t.id)
            .unwrap_or_else(|| panic!("{what}: snapshot {:?} is gone", t.id));
        assert_eq!(info.label, t.label, "{what}: label of {:?}", t.id);
        assert!(info.sealed_ms.is_some(), "{what}: {:?} is sealed", t.id);
        for (i, want) in t.image.iter().enumerate() {
            let got = store.read_at(t.id, i as u64, 1).await.expect("read");
            assert_eq!(&got, want, "{what}: snapshot {:?} block {i}", t.id);
        }
    }
    let head_id = store.head();
    for (i, want) in head.iter().enumerate() {
        let got = store.read_at(head_id, i as u64, 1).await.expect("read");
        assert_eq!(&got, want, "{what}: head block {i}");
    }
}

/// The store in `dir`, opened for writing (`what` names the step if it fails).
fn open_dir(dir: &std::path::Path, what: &str) -> Store<DirStorage> {
    let storage = DirStorage::open(dir).expect("dir");
    block_on(Store::open(storage, clock())).expect(what)
}

fn journal_len(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry"))
        .filter(|e| e.file_name().to_string_lossy().starts_with("meta-"))
        .map(|e| e.metadata().expect("meta").len())
        .sum()
}

#[test]
fn a_snapshot_with_unsynced_writes_is_one_flush_and_survives_a_lost_journal() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (taken, head) = block_on(async {
        let storage = DirStorage::open(dir.path()).expect("open dir");
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        let mut store = Store::create(storage, options, clock())
            .await
            .expect("create");
        // The first snapshot creates the spare segments (and flushes the directory once).
        store.write(0, &block(0, 0)).await.expect("write");
        store.snapshot(Some("warm-up")).await.expect("snapshot");
        for round in 1..=3 {
            store.write(round, &block(round, 0)).await.expect("write");
            let before = store.storage().flushes();
            store.snapshot(None).await.expect("snapshot");
            assert_eq!(
                store.storage().flushes() - before,
                1,
                "a snapshot with unsynced writes, round {round}"
            );
        }
        store.sync().await.expect("sync");
        // Not closed: the journal has none of the seals below.
        let mut image = vec![vec![0u8; BS]; BLOCKS as usize];
        image[0] = block(0, 0);
        for round in 1..=3 {
            image[round as usize] = block(round, 0);
        }
        let (taken, head) = history_from(&mut store, image, 5).await;
        drop(store);
        (taken, head)
    });
    let journal_before = journal_len(dir.path());

    // Read-only: the seals are redone in memory, nothing is written.
    let view = block_on(Store::open_read_only(
        DirStorage::open_read_only(dir.path()).expect("dir"),
        clock(),
    ))
    .expect("read-only open");
    // The warm-up, three counted and five more.
    assert_eq!(view.recovery().seals_redone, 9);
    block_on(assert_reads(&view, &taken, &head, "read-only"));
    drop(view);
    assert_eq!(journal_len(dir.path()), journal_before, "read-only wrote");

    let store = open_dir(dir.path(), "open");
    assert_eq!(store.recovery().seals_redone, 9);
    block_on(assert_reads(&store, &taken, &head, "recovered"));
    let head_volume = store.head();
    drop(store);
    assert!(journal_len(dir.path()) > journal_before, "journaled");

    // The journal holds them now: nothing to redo, the same store.
    let mut store = open_dir(dir.path(), "reopen");
    assert_eq!(store.recovery().seals_redone, 0);
    assert_eq!(store.head(), head_volume);
    block_on(assert_reads(&store, &taken, &head, "reopened"));
    // And it goes on: a new snapshot gets a fresh volume.
    let next = block_on(store.snapshot(Some("after"))).expect("snapshot");
    assert!(taken.iter().all(|t| t.id != next) && next == head_volume);
    block_on(store.close()).expect("close");

    // A tail with a seal block lost once the journal has the seal: rebuilt from the records
    // and the journal, seal block included, byte for byte.
    let path = dir
        .path()
        .join(format!("seg-{:016x}-{:08x}", taken[1].id.0, 0));
    let full = std::fs::read(&path).expect("read segment");
    let at = full
        .windows(4)
        .rposition(|w| w == b"SIDX")
        .expect("an index section");
    assert!(
        full.windows(4).any(|w| w == b"SSEL"),
        "the segment has a seal block"
    );
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .and_then(|f| f.set_len(at as u64))
        .expect("cut");
    let store = open_dir(dir.path(), "open with a cut tail");
    assert_eq!(store.recovery().sealed_tails_rebuilt, 1);
    block_on(assert_reads(&store, &taken, &head, "tail rebuilt"));
    drop(store);
    assert!(
        std::fs::read(&path).expect("read") == full,
        "rebuilt exactly"
    );
}

#[test]
fn a_chain_of_seals_longer_than_the_pending_bound_is_recovered() {
    let disk = SimDisk::new();
    let (taken, head) = block_on(async {
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        let mut store = Store::create(disk.clone(), options, clock())
            .await
            .expect("create");
        history(&mut store, 45).await
    });
    disk.crash(CrashMode::DropAll, &mut StdRng::seed_from_u64(7));
    let store = block_on(Store::open(disk.clone(), clock())).expect("open");
    // 45 snapshots: 32 fill the pending records, the 33rd journals them with its own, the
    // 12 after it are pending again when the crash comes.
    assert_eq!(store.recovery().seals_redone, 12);
    block_on(assert_reads(&store, &taken, &head, "chain"));
}

/// Random crashes: each drops, keeps or tears every unsynced change (the journal's records of
/// the seals were never written at all).
#[test]
fn random_crashes_after_unsynced_snapshots_lose_no_snapshot() {
    let mut rng = StdRng::seed_from_u64(common::seed_or(20261206));
    let mut redone = 0;
    for (case, mode) in common::crash_modes(30).enumerate() {
        let disk = SimDisk::new();
        let (taken, head) = block_on(async {
            let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
            let mut store = Store::create(disk.clone(), options, clock())
                .await
                .expect("create");
            history(&mut store, 5).await
        });
        disk.crash(mode, &mut rng);
        let store = block_on(Store::open(disk.clone(), clock()))
            .unwrap_or_else(|e| panic!("case {case} ({mode:?}): {e}"));
        assert_eq!(store.recovery().seals_redone, 5, "case {case} ({mode:?})");
        redone += store.recovery().seals_redone;
        block_on(assert_reads(
            &store,
            &taken,
            &head,
            &format!("case {case} ({mode:?})"),
        ));
        drop(store);
        let again = block_on(Store::open(disk.clone(), clock())).expect("reopen");
        assert_eq!(again.recovery().seals_redone, 0, "case {case}: journaled");
        block_on(assert_reads(&again, &taken, &head, "reopened"));
    }
    println!("{redone} seals redone over 32 crashes");
}

/// Name and length of the segment of `volume` (generation 0).
fn segment(disk: &SimDisk, volume: VolumeId) -> (String, u64) {
    let name = format!("seg-{:016x}-{:08x}", volume.0, 0);
    let len = disk.object_lengths()[&name];
    (name, len)
}

#[test]
fn a_torn_seal_is_not_redone_and_damage_below_an_acknowledged_one_is_refused() {
    // A seal block that does not verify: the snapshot is a torn tail, cut; its records stay
    // (they were written, not acknowledged by any sync).
    let disk = SimDisk::new();
    let sealed = block_on(async {
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        let mut store = Store::create(disk.clone(), options, clock())
            .await
            .expect("create");
        store.write(1, &block(1, 1)).await.expect("write");
        store.snapshot(Some("torn")).await.expect("snapshot")
    });
    disk.crash(CrashMode::KeepAll, &mut StdRng::seed_from_u64(1));
    let (name, len) = segment(&disk, sealed);
    // The label's last byte, inside the seal block just before the footer.
    assert!(disk.flip_bit(&name, len - 65, 0));
    let store = block_on(Store::open(disk.clone(), clock())).expect("open");
    assert_eq!(store.recovery().seals_redone, 0);
    assert!(store.recovery().head_bytes_truncated > 0, "the tail is cut");
    assert_eq!(store.head(), sealed, "the snapshot was not redone");
    assert_eq!(
        block_on(store.read_at(sealed, 1, 1)).expect("read"),
        block(1, 1)
    );
    drop(store);

    // A damaged record below a seal whose new head has a record: acknowledged writes are
    // damaged, and open says so instead of cutting them.
    let disk = SimDisk::new();
    let sealed = block_on(async {
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        let mut store = Store::create(disk.clone(), options, clock())
            .await
            .expect("create");
        store.write(1, &block(1, 1)).await.expect("write");
        let sealed = store.snapshot(Some("kept")).await.expect("snapshot");
        store.write(2, &block(2, 2)).await.expect("write");
        store.sync().await.expect("sync");
        sealed
    });
    disk.crash(CrashMode::DropAll, &mut StdRng::seed_from_u64(1));
    let (name, _) = segment(&disk, sealed);
    assert!(disk.flip_bit(&name, 300, 2));
    match block_on(Store::open(disk.clone(), clock())) {
        Err(e @ Error::Corrupt { .. }) => assert!(e.to_string().contains(&name), "{e}"),
        Err(e) => panic!("refused, but not as corruption: {e}"),
        Ok(_) => panic!("opened over damage below an acknowledged snapshot"),
    }
}

/// The next journal append carries the pending seals in its own group; when both do not fit in
/// one journal record, the seals go first, alone, and the operation still succeeds.
#[test]
fn pending_seals_too_large_to_share_a_record_are_appended_first() {
    use strata_engine::format::meta::{META_KIND_POLICY_STATE, META_PAYLOAD_MAX};
    use strata_engine::Document;
    let disk = SimDisk::new();
    let (sealed, json) = block_on(async {
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        let mut store = Store::create(disk.clone(), options, clock())
            .await
            .expect("create");
        store.write(1, &block(1, 1)).await.expect("write");
        let sealed = store.snapshot(Some("pending")).await.expect("snapshot");
        // Fits a journal record alone, not beside the two pending ones.
        let json = format!("\"{}\"", "x".repeat(META_PAYLOAD_MAX - 64));
        store
            .append_documents(&[Document {
                kind: META_KIND_POLICY_STATE,
                json: json.clone(),
            }])
            .await
            .expect("a document that fits alone");
        (sealed, json)
    });
    // Not closed, and every unsynced change dropped: the journal alone must hold both.
    disk.crash(CrashMode::DropAll, &mut StdRng::seed_from_u64(3));
    let store = block_on(Store::open(disk.clone(), clock())).expect("open");
    assert_eq!(store.recovery().seals_redone, 0, "the journal has the seal");
    assert_eq!(
        store.documents().latest(META_KIND_POLICY_STATE),
        Some(json.as_str())
    );
    let info = store.volumes().into_iter().find(|v| v.id == sealed);
    assert_eq!(info.map(|v| v.label), Some("pending".to_string()));
}
