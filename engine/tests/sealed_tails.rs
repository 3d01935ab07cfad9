//! A snapshot after a sync costs one flush (issue #13): the sealed partition's index and footer
//! (its *tail*) are written without one, because open rebuilds a tail that a crash lost from the
//! partition's records, which the sync made durable and the journal's seal vouches for.
//!
//! * the flush count, on the directory backend;
//! * the tail dropped (on the simulated disk, and cut from a real file), torn, damaged: every
//!   snapshot reads back exactly, the rebuild is reported and written back, and a read-only
//!   view rebuilds in memory and writes nothing;
//! * what must still fail: a damaged record below a lost tail, a record missing.

use std::rc::Rc;

mod common;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::SeedableRng;
use strata_engine::clock::ManualClock;
use strata_engine::storage::dir::DirStorage;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{CreateOptions, Error, Store, VolumeId};

const BS: usize = 512;
const BLOCKS: u64 = 64;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

fn block(i: u64, round: u64) -> Vec<u8> {
    let mut data = vec![(i * 7 + round) as u8; BS];
    data[..8].copy_from_slice(&(round << 32 | i).to_le_bytes());
    data
}

/// Writes `rounds` rounds of blocks, each synced then snapshotted; returns each snapshot with
/// the image it must read.
async fn history<S: strata_engine::storage::Storage>(
    store: &mut Store<S>,
    rounds: u64,
) -> Vec<(VolumeId, Vec<Vec<u8>>)> {
    let mut image = vec![vec![0u8; BS]; BLOCKS as usize];
    let mut snapshots = Vec::new();
    for round in 1..=rounds {
        for i in (round % 3..BLOCKS).step_by(3) {
            let data = block(i, round);
            store.write(i, &data).await.expect("write");
            image[i as usize] = data;
        }
        store.sync().await.expect("sync");
        let id = store
            .snapshot(Some(&format!("r{round}")))
            .await
            .expect("snapshot");
        snapshots.push((id, image.clone()));
    }
    snapshots
}

async fn assert_reads<S: strata_engine::storage::Storage>(
    store: &Store<S>,
    snapshots: &[(VolumeId, Vec<Vec<u8>>)],
    what: &str,
) {
    for (id, image) in snapshots {
        for (i, want) in image.iter().enumerate() {
            let got = store.read_at(*id, i as u64, 1).await.expect("read");
            assert_eq!(&got, want, "{what}: snapshot {id:?} block {i}");
        }
    }
}

fn segments(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seg-"))
        })
        .collect();
    names.sort();
    names
}

#[test]
fn a_snapshot_after_a_sync_is_one_flush_and_a_cut_tail_is_rebuilt_from_the_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let storage = DirStorage::open(dir.path()).expect("open dir");
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        let mut store = Store::create(storage, options, clock())
            .await
            .expect("create");
        let snapshots = history(&mut store, 3).await;
        // One more: count what a sync and then a snapshot flush.
        store.write(1, &block(1, 9)).await.expect("write");
        store.sync().await.expect("sync");
        let before = store.storage().flushes();
        store.snapshot(None).await.expect("snapshot");
        assert_eq!(
            store.storage().flushes() - before,
            1,
            "a snapshot after a sync"
        );
        // With unsynced writes, the records are flushed first (not counted here: the rule is
        // only that they are durable when the snapshot returns).
        store.close().await.expect("close");

        // A crash lost every sealed tail: cut each sealed segment back to its records (the
        // index section starts with "SIDX"; the head's segment and the empty spares have none).
        let mut sealed = Vec::new();
        let mut full_lengths = Vec::new();
        for path in segments(dir.path()) {
            let bytes = std::fs::read(&path).expect("read segment");
            if let Some(at) = bytes.windows(4).rposition(|w| w == b"SIDX") {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&path)
                    .and_then(|f| f.set_len(at as u64))
                    .expect("cut");
                sealed.push(path);
                full_lengths.push(bytes.len() as u64);
            }
        }
        assert_eq!(sealed.len(), 4, "four sealed segments");

        // Read-only: rebuilt in memory, nothing written.
        let view = Store::open_read_only(
            DirStorage::open_read_only(dir.path()).expect("dir"),
            clock(),
        )
        .await
        .expect("read-only open");
        assert_eq!(view.recovery().sealed_tails_rebuilt, 4);
        assert_reads(&view, &snapshots, "read-only").await;
        drop(view);
        for (path, full) in sealed.iter().zip(&full_lengths) {
            let len = std::fs::metadata(path).expect("meta").len();
            assert!(
                len < *full,
                "{} was written by a read-only view",
                path.display()
            );
        }

        let store = Store::open(DirStorage::open(dir.path()).expect("dir"), clock())
            .await
            .expect("open");
        assert_eq!(store.recovery().sealed_tails_rebuilt, 4);
        assert_reads(&store, &snapshots, "rebuilt").await;
        drop(store);
        // Written back: byte for byte the tails the snapshots wrote, and the next open reads them.
        for (path, full) in sealed.iter().zip(&full_lengths) {
            assert_eq!(std::fs::metadata(path).expect("meta").len(), *full);
        }
        let store = Store::open(DirStorage::open(dir.path()).expect("dir"), clock())
            .await
            .expect("reopen");
        assert_eq!(store.recovery().sealed_tails_rebuilt, 0);
        assert_reads(&store, &snapshots, "after the rebuild").await;
    });
}

/// On the simulated disk the tail is an unsynced write that no later barrier covers: a crash
/// drops, keeps or tears it (and every other unsynced change), many times over.
#[test]
fn crashes_that_drop_or_tear_sealed_tails_lose_no_snapshot() {
    let mut rng = StdRng::seed_from_u64(common::seed_or(20261206));
    let mut rebuilt = 0;
    for (case, mode) in common::crash_modes(30).enumerate() {
        let disk = SimDisk::new();
        let snapshots = block_on(async {
            let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
            let mut store = Store::create(disk.clone(), options, clock())
                .await
                .expect("create");
            history(&mut store, 4).await
        });
        disk.crash(mode, &mut rng);
        let store = block_on(Store::open(disk.clone(), clock()))
            .unwrap_or_else(|e| panic!("case {case} ({mode:?}): {e}"));
        if mode == CrashMode::DropAll {
            assert_eq!(
                store.recovery().sealed_tails_rebuilt,
                4,
                "every tail dropped"
            );
        }
        rebuilt += store.recovery().sealed_tails_rebuilt;
        block_on(assert_reads(
            &store,
            &snapshots,
            &format!("case {case} ({mode:?})"),
        ));
    }
    println!("{rebuilt} tails rebuilt over 32 crashes");
    assert!(rebuilt > 4, "random crashes dropped or tore some tails");
}

#[test]
fn a_damaged_record_below_a_lost_tail_is_refused_not_cut() {
    let disk = SimDisk::new();
    block_on(async {
        let options = CreateOptions::new(BLOCKS).block_size(BS as u32);
        let mut store = Store::create(disk.clone(), options, clock())
            .await
            .expect("create");
        history(&mut store, 2).await;
    });
    disk.crash(CrashMode::DropAll, &mut StdRng::seed_from_u64(1));
    // Damage the first sealed segment's first record (its data, well inside it).
    let name = disk
        .object_lengths()
        .into_keys()
        .find(|n| n.starts_with("seg-"))
        .expect("a segment");
    assert!(disk.flip_bit(&name, 400, 3));
    match block_on(Store::open(disk.clone(), clock())) {
        Err(e @ Error::Corrupt { .. }) => {
            assert!(e.to_string().contains(&name), "{e}");
        }
        Err(e) => panic!("refused, but not as corruption: {e}"),
        Ok(_) => panic!("opened over a damaged record of a sealed partition"),
    }
}
