//! A store on the directory backend with more snapshots than the backend keeps files open
//! (`OPEN_FILES_MAX`): every snapshot still reads back, across a reopen, with the number of
//! open files bounded (a store with thousands of snapshots once needed a descriptor per segment,
//! past the usual limit of 1,024 per process).

use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::storage::dir::{DirStorage, OPEN_FILES_MAX};
use strata_engine::{CreateOptions, Store, VolumeId};

const BS: usize = 512;

fn block(i: usize) -> Vec<u8> {
    let mut data = vec![(i % 251) as u8; BS];
    data[..8].copy_from_slice(&(i as u64).to_le_bytes());
    data
}

#[test]
fn more_snapshots_than_open_files_all_read_back_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let snapshots = OPEN_FILES_MAX + 44;
    let clock = Rc::new(ManualClock::new(1_700_000_000_000));
    let mut ids: Vec<VolumeId> = Vec::new();
    block_on(async {
        let storage = DirStorage::open(dir.path()).expect("open dir");
        let mut store = Store::create(
            storage,
            CreateOptions::new(64).block_size(BS as u32),
            clock.clone(),
        )
        .await
        .expect("create");
        for i in 0..snapshots {
            store
                .write((i % 64) as u64, &block(i))
                .await
                .expect("write");
            ids.push(store.snapshot(None).await.expect("snapshot"));
        }
        assert!(
            store.storage().open_files() <= OPEN_FILES_MAX,
            "{}",
            store.storage().open_files()
        );
        store.close().await.expect("close");

        let storage = DirStorage::open(dir.path()).expect("reopen dir");
        let store = Store::open(storage, clock.clone()).await.expect("reopen");
        for (i, id) in ids.iter().enumerate() {
            let got = store.read_at(*id, (i % 64) as u64, 1).await.expect("read");
            assert_eq!(got, block(i), "snapshot {i}");
        }
        assert!(
            store.storage().open_files() <= OPEN_FILES_MAX,
            "{}",
            store.storage().open_files()
        );
    });
}
