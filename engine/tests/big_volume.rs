//! A store of the largest supported size (2^28 blocks of 4 KiB: 1 TiB) on the directory
//! backend: one block written, a snapshot merged into the empty baseline, a reopen. Memory must
//! stay in proportion to the blocks written (the merge used to allocate 4 bytes per block of the
//! volume, and one past 2^40 blocks aborted the process and left a store that never opened), and
//! the files stay sparse. Alone in its test binary so that the process's peak RSS is its own.

use std::rc::Rc;
use std::time::Instant;

use pollster::block_on;
use strata_engine::clock::ManualClock;
use strata_engine::format::BLOCK_COUNT_MAX;
use strata_engine::storage::dir::DirStorage;
use strata_engine::{CreateOptions, Store, VolumeId};

/// Peak resident set of this process so far, in bytes (Linux `VmHWM`).
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Bytes a file really occupies on disk.
fn allocated(path: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or(0, |m| m.blocks() * 512)
}

#[test]
fn merging_one_block_into_a_1_tib_store_costs_memory_for_one_block() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Rc::new(ManualClock::new(1_700_000_000_000));
    let before = peak_rss();
    let started = Instant::now();
    let storage = DirStorage::open(dir.path()).expect("open");
    let mut store = block_on(Store::create(
        storage,
        CreateOptions::new(BLOCK_COUNT_MAX),
        clock.clone(),
    ))
    .expect("the largest store is accepted");
    let addr = BLOCK_COUNT_MAX - 3;
    block_on(store.write(addr, &[0x5A; 4096])).expect("write");
    let snap = block_on(store.snapshot(Some("one"))).expect("snapshot");
    block_on(store.merge(snap, &mut |_| true)).expect("merge");
    block_on(store.close()).expect("close");
    let store = block_on(Store::open(
        DirStorage::open(dir.path()).expect("reopen dir"),
        clock,
    ))
    .expect("reopen");
    assert_eq!(
        block_on(store.read_at(VolumeId::BASELINE, addr, 1)).expect("merged block"),
        vec![0x5A; 4096]
    );
    assert_eq!(
        block_on(store.read(addr - 1, 1)).expect("a never-written block"),
        vec![0; 4096]
    );
    let grew = peak_rss().saturating_sub(before);
    let on_disk =
        allocated(&dir.path().join("baseline")) + allocated(&dir.path().join("baseline.sum"));
    println!(
        "2^28-block store: create + write + snapshot + merge + reopen in {:.2?}, peak RSS grew {} KiB, baseline files occupy {} KiB",
        started.elapsed(),
        grew / 1024,
        on_disk / 1024
    );
    assert!(grew < 64 << 20, "peak RSS grew by {grew} bytes");
    assert!(on_disk < 1 << 20, "baseline files occupy {on_disk} bytes");
}
