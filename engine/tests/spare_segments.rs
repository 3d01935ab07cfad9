//! One flush per sync, also the first one of a new partition (issue #13): on the directory
//! backend a new file costs a directory flush, so the store creates the empty segment objects of
//! the next partitions ahead of time: the first 32 with the journal, then, whenever fewer than 16
//! are left, up to 32 ahead on a helper thread that flushes the directory off every caller's
//! path (`Storage::create_ahead`).
//!
//! * flush counts of every sync and snapshot over more snapshots than two batches of spares;
//! * spares survive a reopen and serve the next partitions;
//! * recovery keeps an empty generation-0 segment of a volume the journal has not created yet
//!   (a spare), and still refuses anything else there (the journal lost records).

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::format::segment_object;
use strata_engine::storage::dir::DirStorage;
use strata_engine::storage::Storage;
use strata_engine::{CreateOptions, Error, Store};

const BS: usize = 512;

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

/// A new store of 64 blocks in `dir`, on the directory backend.
async fn create(dir: &std::path::Path) -> Store<DirStorage> {
    let storage = DirStorage::open(dir).expect("open dir");
    let options = CreateOptions::new(64).block_size(BS as u32);
    Store::create(storage, options, clock())
        .await
        .expect("create")
}

/// Flushes `f` cost on `store`'s directory backend.
async fn flushes_of<T>(
    store: &mut Store<DirStorage>,
    f: impl AsyncFnOnce(&mut Store<DirStorage>) -> T,
) -> (u64, T) {
    let before = store.storage().flushes();
    let out = f(store).await;
    (store.storage().flushes() - before, out)
}

/// Writes `byte` at `addr`, syncs, then snapshots: the flushes of the sync and of the snapshot.
async fn sync_then_snapshot(store: &mut Store<DirStorage>, addr: u64, byte: u8) -> (u64, u64) {
    let (sync, ()) = flushes_of(store, async |s| {
        s.write(addr, &[byte; BS]).await.expect("write");
        s.sync().await.expect("sync");
    })
    .await;
    let (snapshot, _) =
        flushes_of(store, async |s| s.snapshot(None).await.expect("snapshot")).await;
    (sync, snapshot)
}

#[test]
fn every_sync_and_every_snapshot_is_one_flush_and_spares_are_made_ahead() {
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let mut store = create(dir.path()).await;
        let rounds = 80u8;
        for round in 0..rounds {
            let (sync, n) = sync_then_snapshot(&mut store, u64::from(round % 64), round).await;
            assert_eq!(sync, 1, "round {round}: a sync after writes");
            assert_eq!(n, 1, "round {round}: a snapshot after a sync");
            // Never fewer than 16 spares ahead of the head once a snapshot has returned (asked
            // through the storage, which waits for a creation under way).
            let head = store.head().0;
            for volume in head + 1..=head + 16 {
                let name = segment_object(volume, 0);
                assert_eq!(
                    store.storage().len(&name).await.expect("len"),
                    Some(0),
                    "round {round}: the spare {name}"
                );
            }
        }
        // The journal's creation made spares for volumes 1..=33; the helper thread made the
        // rest, in at least 3 batches (80 rounds make heads 2 to 81), each with one directory
        // flush of its own.
        assert!(
            store.storage().background_flushes() >= 3,
            "directory flushes off the snapshots' path: {}",
            store.storage().background_flushes()
        );
        // A snapshot with unsynced writes flushes the segment only (no directory: the file
        // exists): records, index and seal block together; the journal's records of the seal
        // wait for the next journal append (here, the close).
        let (n, _) = flushes_of(&mut store, async |s| {
            s.write(1, &[9; BS]).await.expect("write");
            s.snapshot(None).await.expect("snapshot")
        })
        .await;
        assert_eq!(n, 1, "a snapshot with unsynced writes");
        let head = store.head();
        store.close().await.expect("close");

        // Reopened: the spares are still there, and the next partitions use them.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        let next = head.0 + 1;
        assert!(
            names.contains(&segment_object(next, 0)),
            "the spare of volume {next}"
        );
        let storage = DirStorage::open(dir.path()).expect("reopen dir");
        let mut store = Store::open(storage, clock()).await.expect("reopen");
        for round in 0..3u8 {
            let (sync, n) = sync_then_snapshot(&mut store, 2, round).await;
            assert_eq!(sync, 1, "after the reopen, round {round}: a sync");
            assert_eq!(n, 1, "after the reopen, round {round}: a snapshot");
        }
    });
}

#[test]
fn an_empty_spare_of_a_future_volume_is_kept_and_anything_else_there_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let create = || {
        block_on(async {
            let mut store = create(dir.path()).await;
            store.write(0, &[1; BS]).await.expect("write");
            store.snapshot(None).await.expect("snapshot");
            store.close().await.expect("close");
        })
    };
    let open = || {
        block_on(async {
            let storage = DirStorage::open(dir.path()).expect("open dir");
            Store::open(storage, clock()).await.map(|_| ())
        })
    };
    create();
    // Volumes 1 and 2 exist; 3 and up are spares (empty): kept through a reopen.
    let far = dir.path().join(segment_object(1000, 0));
    std::fs::write(&far, b"").expect("spare");
    open().expect("an empty generation-0 segment of a future volume is a spare");
    assert!(far.exists(), "the spare was kept");
    for (name, bytes) in [
        (segment_object(1000, 1), &b""[..]),
        (segment_object(1000, 0), &b"not empty"[..]),
    ] {
        let path = dir.path().join(&name);
        std::fs::write(&path, bytes).expect("write");
        match open() {
            Err(e @ Error::Corrupt { .. }) => {
                assert!(e.to_string().contains(&name), "{e}");
            }
            other => panic!("{name} ({} bytes): {other:?}", bytes.len()),
        }
        assert!(path.exists(), "nothing is deleted");
        std::fs::remove_file(&path).expect("remove");
    }
    open().expect("opens again");
}
