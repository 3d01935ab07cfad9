//! An error means nothing changed, or says exactly what did (issue #12): a deletion whose
//! reclaiming fails after the deletion is durable (a full disk, a dying device) reports that the
//! volume is deleted; a merge that fails after it is journaled says it will be finished at the
//! next open. Checked at every I/O point of each operation, against what a reopen then shows.

use std::rc::Rc;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::SeedableRng;
use strata_engine::clock::ManualClock;
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::{CreateOptions, Error, Store, VolumeId};

const BS: usize = 512;

fn setup() -> (SimDisk, Rc<ManualClock>, Store<SimDisk>, VolumeId, VolumeId) {
    let disk = SimDisk::new();
    let clock = Rc::new(ManualClock::new(1_700_000_000_000));
    let mut store = block_on(Store::create(
        disk.clone(),
        CreateOptions::new(16).block_size(BS as u32),
        clock.clone(),
    ))
    .expect("create");
    block_on(store.write(0, &[1; BS * 4])).expect("write");
    let one = block_on(store.snapshot(Some("one"))).expect("one");
    block_on(store.write(1, &[2; BS])).expect("write");
    let two = block_on(store.snapshot(Some("two"))).expect("two");
    block_on(store.write(2, &[3; BS])).expect("write");
    block_on(store.sync()).expect("sync");
    (disk, clock, store, one, two)
}

fn exists(store: &Store<SimDisk>, id: VolumeId) -> bool {
    store.volumes().iter().any(|v| v.id == id)
}

#[test]
fn a_failed_delete_says_whether_the_volume_is_gone() {
    let (mut incomplete, mut untouched) = (0, 0);
    for point in 1.. {
        let (disk, clock, mut store, one, _) = setup();
        disk.fail_from(disk.io_count() + point);
        let result = block_on(store.delete_volume(one));
        drop(store);
        disk.crash(CrashMode::DropAll, &mut StdRng::seed_from_u64(point));
        let store = block_on(Store::open(disk, clock)).expect("reopens");
        match result {
            Ok(_) => {
                assert!(!exists(&store, one));
                break;
            }
            Err(e @ Error::Incomplete { .. }) => {
                assert!(e.to_string().contains("is deleted"), "{e}");
                assert!(
                    !exists(&store, one),
                    "point {point}: {e}, yet volume 1 is back"
                );
                incomplete += 1;
            }
            Err(e) => {
                assert!(
                    exists(&store, one),
                    "point {point}: {e}, yet volume 1 is gone"
                );
                untouched += 1;
            }
        }
    }
    println!(
        "delete: {untouched} failures changed nothing, {incomplete} said the volume is deleted"
    );
    assert!(incomplete > 0 && untouched > 0);
}

#[test]
fn a_failed_merge_says_it_will_be_finished() {
    let (mut incomplete, mut untouched) = (0, 0);
    for point in 1.. {
        let (disk, clock, mut store, one, _) = setup();
        disk.fail_from(disk.io_count() + point);
        let result = block_on(store.merge(one, &mut |_| true));
        drop(store);
        disk.crash(CrashMode::DropAll, &mut StdRng::seed_from_u64(point));
        let store = block_on(Store::open(disk, clock)).expect("reopens");
        match result {
            Ok(_) => {
                assert!(!exists(&store, one));
                break;
            }
            Err(e @ Error::Incomplete { .. }) => {
                assert!(e.to_string().contains("next opened"), "{e}");
                assert!(
                    !exists(&store, one),
                    "point {point}: the reopen did not finish it"
                );
                incomplete += 1;
            }
            Err(e) => {
                assert!(
                    exists(&store, one),
                    "point {point}: {e}, yet volume 1 was merged"
                );
                untouched += 1;
            }
        }
        assert_eq!(
            block_on(store.read(0, 3)).expect("read"),
            [vec![1; BS], vec![2; BS], vec![3; BS]].concat()
        );
    }
    println!("merge: {untouched} failures changed nothing, {incomplete} said it will be finished");
    assert!(incomplete > 0 && untouched > 0);
}
