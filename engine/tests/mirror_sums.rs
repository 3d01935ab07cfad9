//! The primary's checksums in memory and its concurrent leg writes (issue #8): a read of a
//! loaded page is one image read; damage to a leg's data behind the store's back is still found
//! by reads and repaired; damage to a leg's checksum table alone is found and repaired by scrub
//! while reads keep working; a sync writes the legs concurrently, each leg's data durable before
//! its header.
//!
//! Random tests print their seed; set `STRATA_SEED` to replay one.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;
use std::task::Poll;
use strata_engine::Volume;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::format::block_crc;
use strata_engine::mirror::layout::{HEADER_OBJECT, IMAGE_OBJECT, SUM_OBJECT};
use strata_engine::mirror::{
    FaultEvent, FaultKind, FoundBy, LegState, Mirror, MirrorOptions, ScrubOptions,
};
use strata_engine::storage::sim::SimDisk;
use strata_engine::storage::{Commit, Storage, StorageError};
use strata_engine::CreateOptions;

mod common;
use common::legs::{block_of, leg_block, leg_block_is, BS};
/// Three pages of 1024 checksum entries (the last one partly used).
const BLOCKS: u64 = 2600;

type Rs = Mirror<SimDisk, SimDisk>;

fn seed() -> u64 {
    match std::env::var("STRATA_SEED") {
        Ok(s) => s.parse().expect("STRATA_SEED must be a u64"),
        Err(_) => rand::rng().random(),
    }
}

fn clock() -> Rc<ManualClock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

fn create(legs: usize) -> (SimDisk, Vec<SimDisk>, Rs) {
    let secondary = SimDisk::new();
    let disks: Vec<SimDisk> = (0..legs).map(|_| SimDisk::new()).collect();
    let rs = block_on(Mirror::create(
        secondary.clone(),
        disks.clone(),
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        MirrorOptions::new(),
        clock(),
    ))
    .expect("create");
    (secondary, disks, rs)
}

/// A block of random bytes, never all zero.
fn random_block(rng: &mut StdRng) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    rng.fill(&mut b[..]);
    b[0] |= 1;
    b
}

/// Fills the whole volume with random data, syncs it, and returns the model.
fn fill(rs: &mut Rs, rng: &mut StdRng) -> Vec<u8> {
    let mut model = Vec::with_capacity(BLOCKS as usize * BS);
    for _ in 0..BLOCKS {
        model.extend(random_block(rng));
    }
    for (k, chunk) in model.chunks(64 * BS).enumerate() {
        block_on(rs.write(k as u64 * 64, chunk)).expect("write");
    }
    block_on(rs.sync()).expect("sync");
    model
}

/// Reads the whole head once per leg (legs are read in turn), checking it against the model:
/// afterwards every leg's checksum pages are in memory.
fn read_all_from_every_leg(rs: &mut Rs, model: &[u8], context: &str) {
    for _ in 0..rs.leg_count() {
        let got = block_on(rs.read(0, BLOCKS)).unwrap_or_else(|e| panic!("{context}: {e}"));
        assert!(got == model, "{context}: the head differs from the model");
    }
}

/// Writes behind the store's back.
fn poke(disk: &SimDisk, object: &str, offset: u64, data: Vec<u8>) {
    let mut commit = Commit::new(true);
    commit.write(object, offset, data);
    block_on(disk.clone().commit(commit)).expect("poke");
}

#[test]
fn a_read_of_a_loaded_checksum_page_is_one_image_read() {
    let mut rng = StdRng::seed_from_u64(1);
    let (secondary, disks, mut rs) = create(2);
    let model = fill(&mut rs, &mut rng);
    // A fresh controller holds no checksums: the first read of a block from a leg reads the
    // image and the page of checksums, in one call.
    drop(rs);
    let mut rs = block_on(Mirror::open(
        secondary,
        disks.clone(),
        MirrorOptions::new(),
        clock(),
    ))
    .expect("reopen");
    let before: Vec<u64> = disks.iter().map(SimDisk::io_count).collect();
    assert_eq!(block_on(rs.read(5, 1)).expect("read"), block_of(&model, 5));
    let first: u64 = disks
        .iter()
        .zip(&before)
        .map(|(d, b)| d.io_count() - b)
        .sum();
    assert_eq!(first, 2, "image + checksum page");
    read_all_from_every_leg(&mut rs, &model, "warm-up");
    // Now every read is one I/O on one leg, whichever leg serves it, for single blocks, runs
    // and runs that span pages.
    for (addr, blocks) in [(5, 1), (1023, 2), (0, BLOCKS), (2599, 1), (1500, 700)] {
        for _ in 0..2 {
            let before: Vec<u64> = disks.iter().map(SimDisk::io_count).collect();
            let got = block_on(rs.read(addr, blocks)).expect("read");
            assert_eq!(got, &model[addr as usize * BS..][..blocks as usize * BS]);
            let ios: u64 = disks
                .iter()
                .zip(&before)
                .map(|(d, b)| d.io_count() - b)
                .sum();
            assert_eq!(ios, 1, "read {addr}+{blocks}: one image read");
        }
    }
    assert!(rs.take_events().is_empty());
}

/// How a leg's copy of a block is damaged behind the store's back.
#[derive(Debug, Clone, Copy)]
enum DataDamage {
    FlipBit,
    Zero,
    /// Other data, with a checksum entry on the device that matches it: a copy the device's
    /// table vouches for, which only the checksum kept in memory can tell from the truth.
    RewrittenWithMatchingSum,
}

#[test]
fn leg_data_damaged_after_its_checksums_are_cached_is_detected_by_reads_and_repaired() {
    let seed = seed();
    println!(
        "leg_data_damaged_after_its_checksums_are_cached seed: {seed} (replay with STRATA_SEED={seed})"
    );
    let mut rng = StdRng::seed_from_u64(seed);
    let (secondary, disks, mut rs) = create(2);
    let mut model = fill(&mut rs, &mut rng);
    read_all_from_every_leg(&mut rs, &model, "warm-up");
    let (mut injected, mut detected, mut repaired) = (0u64, 0u64, 0u64);
    for round in 0..60 {
        if round % 10 == 9 {
            // Writes keep the cache in step: new data, then damage to it.
            let addr = rng.random_range(0..BLOCKS);
            let data = random_block(&mut rng);
            block_on(rs.write(addr, &data)).expect("write");
            block_on(rs.sync()).expect("sync");
            model[addr as usize * BS..][..BS].copy_from_slice(&data);
            for _ in 0..2 {
                assert_eq!(block_on(rs.read(addr, 1)).expect("read"), data);
            }
            assert!(
                rs.take_events().is_empty(),
                "seed {seed}: the sums follow writes"
            );
        }
        let addr = rng.random_range(0..BLOCKS);
        let leg = rng.random_range(0..2usize);
        let kind = match rng.random_range(0..3) {
            0 => DataDamage::FlipBit,
            1 => DataDamage::Zero,
            _ => DataDamage::RewrittenWithMatchingSum,
        };
        let disk = &disks[leg];
        match kind {
            DataDamage::FlipBit => {
                let off = addr * BS as u64 + rng.random_range(0..BS as u64);
                assert!(disk.flip_bit(IMAGE_OBJECT, off, rng.random_range(0..8)));
            }
            DataDamage::Zero => disk.zero_range(IMAGE_OBJECT, addr * BS as u64, BS),
            DataDamage::RewrittenWithMatchingSum => {
                let other = random_block(&mut rng);
                let sum = block_crc(addr, &other).to_le_bytes().to_vec();
                poke(disk, IMAGE_OBJECT, addr * BS as u64, other);
                poke(disk, SUM_OBJECT, addr * 4, sum);
            }
        }
        injected += 1;
        // One read per leg: the damaged one is read once.
        for _ in 0..2 {
            let got = block_on(rs.read(addr, 1)).expect("read");
            assert_eq!(
                got,
                block_of(&model, addr),
                "seed {seed} round {round}: {kind:?}"
            );
        }
        let events = rs.take_events();
        assert_eq!(
            events,
            vec![FaultEvent {
                leg,
                addr: Some(addr),
                kind: FaultKind::Checksum,
                found_by: FoundBy::Read,
                repaired: true,
            }],
            "seed {seed} round {round}: {kind:?} on leg {leg} at {addr}"
        );
        detected += 1;
        repaired += 1;
        assert!(
            leg_block_is(disk, addr, block_of(&model, addr)),
            "seed {seed} round {round}: the leg was repaired on the device"
        );
    }
    read_all_from_every_leg(&mut rs, &model, "after the damage");
    assert!(
        rs.take_events().is_empty(),
        "seed {seed}: nothing left to find"
    );
    let status = rs.status();
    println!("injected {injected}, detected {detected}, repaired {repaired}: {status:?}");
    let legs_detected: u64 = status.legs.iter().map(|l| l.errors_detected).sum();
    let legs_repaired: u64 = status.legs.iter().map(|l| l.errors_repaired).sum();
    assert_eq!((legs_detected, legs_repaired), (injected, injected));
    assert_eq!(status.healthy_legs, 2);
    assert_eq!(status.blocks_served_by_secondary, 0);
    let report = block_on(rs.scrub()).expect("scrub");
    assert_eq!(report.mismatches, 0, "nothing left for scrub: {report:?}");
    // A fresh controller (nothing in memory) agrees.
    drop(rs);
    let mut rs = block_on(Mirror::open(
        secondary,
        disks.clone(),
        MirrorOptions::new(),
        clock(),
    ))
    .expect("reopen");
    read_all_from_every_leg(&mut rs, &model, "after reopen");
    assert!(rs.take_events().is_empty());
}

#[test]
fn damage_to_a_leg_checksum_table_alone_is_found_by_scrub_and_reads_keep_working() {
    let seed = seed();
    println!("damage_to_a_leg_checksum_table_alone seed: {seed} (replay with STRATA_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let (_, disks, mut rs) = create(2);
    let model = fill(&mut rs, &mut rng);
    for compare_with_secondary in [false, true] {
        read_all_from_every_leg(&mut rs, &model, "warm-up");
        // Damage some checksum entries of each leg (one block on both legs at once).
        let mut damaged: [BTreeSet<u64>; 2] = Default::default();
        let both = rng.random_range(0..BLOCKS);
        for (leg, disk) in disks.iter().enumerate() {
            damaged[leg].insert(both);
            for _ in 0..8 {
                damaged[leg].insert(rng.random_range(0..BLOCKS));
            }
            for &addr in &damaged[leg] {
                if rng.random_bool(0.5) {
                    let off = addr * 4 + rng.random_range(0..4);
                    assert!(disk.flip_bit(SUM_OBJECT, off, rng.random_range(0..8)));
                } else {
                    let (_, sum) = leg_block(disk, addr);
                    assert_ne!(sum, 0);
                    disk.zero_range(SUM_OBJECT, addr * 4, 4);
                }
                assert!(!leg_block_is(disk, addr, block_of(&model, addr)));
            }
        }
        let total: u64 = damaged.iter().map(|d| d.len() as u64).sum();
        // Reads keep working from both legs, and find nothing (the data is right).
        read_all_from_every_leg(&mut rs, &model, "with damaged tables");
        for &addr in damaged.iter().flatten() {
            for _ in 0..2 {
                assert_eq!(
                    block_on(rs.read(addr, 1)).expect("read"),
                    block_of(&model, addr)
                );
            }
        }
        assert!(
            rs.take_events().is_empty(),
            "reads use the checksums in memory"
        );
        assert_eq!(rs.status().blocks_served_by_secondary, 0);
        // Scrub reports every damaged entry and repairs it.
        let report = block_on(rs.scrub_with(ScrubOptions {
            compare_with_secondary,
        }))
        .expect("scrub");
        println!("scrub (compare with secondary: {compare_with_secondary}): {report:?}");
        assert_eq!((report.mismatches, report.repaired), (total, total));
        assert!(report.unrecoverable.is_empty() && report.secondary_damaged.is_empty());
        for (leg, set) in damaged.iter().enumerate() {
            assert_eq!(report.legs[leg].mismatches, set.len() as u64);
            assert_eq!(report.legs[leg].repaired, set.len() as u64);
        }
        let mut found: [BTreeSet<u64>; 2] = Default::default();
        for e in rs.take_events() {
            assert_eq!(
                (e.kind, e.found_by, e.repaired),
                (FaultKind::Checksum, FoundBy::Scrub, true),
                "{e:?}"
            );
            found[e.leg].insert(e.addr.expect("a block"));
        }
        assert_eq!(found, damaged, "seed {seed}");
        for (leg, disk) in disks.iter().enumerate() {
            for &addr in &damaged[leg] {
                assert!(
                    leg_block_is(disk, addr, block_of(&model, addr)),
                    "seed {seed}"
                );
            }
        }
        assert_eq!(block_on(rs.scrub()).expect("scrub").mismatches, 0);
        read_all_from_every_leg(&mut rs, &model, "after scrub");
        assert_eq!(rs.status().healthy_legs, 2);
    }
}

/// A leg device that records its commits and yields once inside each, as a device whose I/O
/// completes later would.
#[derive(Debug, Clone)]
struct Recorded {
    disk: SimDisk,
    leg: usize,
    log: Rc<RefCell<Vec<(usize, &'static str)>>>,
}

fn yield_once() -> impl std::future::Future<Output = ()> {
    let mut done = false;
    std::future::poll_fn(move |cx| {
        if done {
            Poll::Ready(())
        } else {
            done = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
}

impl Storage for Recorded {
    fn kind(&self) -> &'static str {
        "recorded"
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        self.disk.list().await
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        self.disk.len(object).await
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        self.disk.read_at(object, offset, buf).await
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        let header = commit.changes.iter().any(|c| c.object() == HEADER_OBJECT);
        let what = if header { "header" } else { "data" };
        self.log.borrow_mut().push((self.leg, what));
        yield_once().await;
        let result = self.disk.commit(commit).await;
        let done = if header { "header done" } else { "data done" };
        self.log.borrow_mut().push((self.leg, done));
        result
    }
}

#[test]
fn sync_writes_the_legs_concurrently_each_data_before_its_header() {
    let mut rng = StdRng::seed_from_u64(3);
    let log = Rc::new(RefCell::new(Vec::new()));
    let disks: Vec<SimDisk> = (0..3).map(|_| SimDisk::new()).collect();
    let legs: Vec<Recorded> = disks
        .iter()
        .enumerate()
        .map(|(leg, disk)| Recorded {
            disk: disk.clone(),
            leg,
            log: log.clone(),
        })
        .collect();
    let mut rs = block_on(Mirror::create(
        SimDisk::new(),
        legs,
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        MirrorOptions::new(),
        clock(),
    ))
    .expect("create");
    let data = random_block(&mut rng);
    block_on(rs.write(7, &data)).expect("write");
    log.borrow_mut().clear();
    block_on(rs.sync()).expect("sync");
    let log = log.borrow().clone();
    println!("sync: {log:?}");
    let at = |leg: usize, what: &str| {
        log.iter()
            .position(|&(l, w)| l == leg && w == what)
            .unwrap_or_else(|| panic!("leg {leg}: no {what:?} in {log:?}"))
    };
    for leg in 0..3 {
        // The header is started only once the leg's data is durable.
        assert!(at(leg, "data done") < at(leg, "header"), "{log:?}");
        assert!(at(leg, "header") < at(leg, "header done"), "{log:?}");
    }
    // Concurrent: every leg's data commit started before any of them finished.
    let first_done = (0..3).map(|l| at(l, "data done")).min().unwrap_or(0);
    assert!((0..3).all(|l| at(l, "data") < first_done), "{log:?}");
    assert_eq!(log.len(), 12, "two commits per leg: {log:?}");
    let status = rs.status();
    let position = (rs.head(), rs.volume(rs.head()).expect("head").next_seq);
    assert!(status.legs.iter().all(|l| l.synced == Some(position)));
    for disk in &disks {
        assert!(leg_block_is(disk, 7, &data));
    }
    assert_eq!(block_on(rs.read(7, 1)).expect("read"), data);
}

#[test]
fn a_leg_failing_during_a_concurrent_sync_is_degraded_without_a_header_and_the_others_go_on() {
    let mut rng = StdRng::seed_from_u64(4);
    let (_, disks, mut rs) = create(3);
    let mut model = fill(&mut rs, &mut rng);
    read_all_from_every_leg(&mut rs, &model, "warm-up");
    let generations: Vec<u64> = rs.status().legs.iter().map(|l| l.generation).collect();
    let data = random_block(&mut rng);
    block_on(rs.write(100, &data)).expect("write");
    model[100 * BS..][..BS].copy_from_slice(&data);
    // The data commit of leg 1 fails at its first I/O.
    disks[1].fail_once_at(disks[1].io_count() + 1);
    block_on(rs.sync()).expect("a failed leg does not fail the sync");
    let status = rs.status();
    println!("{status:?}");
    assert_eq!(status.legs[1].state, LegState::Degraded);
    assert_eq!(status.legs[1].io_errors, 1);
    assert_eq!(
        status.legs[1].generation, generations[1],
        "no header on leg 1"
    );
    assert_eq!(status.legs[1].synced, None);
    for leg in [0, 2] {
        assert_eq!(status.legs[leg].state, LegState::Healthy);
        assert_eq!(status.legs[leg].generation, generations[leg] + 1);
        assert!(leg_block_is(&disks[leg], 100, &data));
    }
    let events = rs.take_events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].leg, events[0].kind, events[0].found_by),
        (1, FaultKind::Io, FoundBy::Write)
    );
    // The store serves from the other legs, then the leg comes back.
    read_all_from_every_leg(&mut rs, &model, "degraded");
    let report = block_on(rs.replace(1, disks[1].clone())).expect("replace");
    println!("replace: {report:?}");
    assert_eq!(rs.status().healthy_legs, 3);
    read_all_from_every_leg(&mut rs, &model, "after replace");
    assert_eq!(block_on(rs.scrub()).expect("scrub").mismatches, 0);
}
