//! The redundant system (claims 22-25): a primary on mirrored simulated devices beside the
//! secondary store, under fault injection.
//!
//! Random tests print their seed; set `STRATA_SEED` to replay one. Fault counts are printed.

use std::collections::BTreeSet;
use std::rc::Rc;
use strata_engine::Volume;

use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::ManualClock;
use strata_engine::mirror::layout::{
    PrimaryHeader, HEADER_OBJECT, IMAGE_OBJECT, PRIMARY_BLOCK_COUNT_OFFSET,
    PRIMARY_BLOCK_SIZE_OFFSET, PRIMARY_CRC_OFFSET, PRIMARY_FLAGS_OFFSET, PRIMARY_GENERATION_OFFSET,
    PRIMARY_HEAD_OFFSET, PRIMARY_LEG_COUNT_OFFSET, PRIMARY_LEG_INDEX_OFFSET, PRIMARY_MAGIC_OFFSET,
    PRIMARY_NEXT_SEQ_OFFSET, PRIMARY_STORE_ID_OFFSET, PRIMARY_VERSION_OFFSET, SUM_OBJECT,
};
use strata_engine::mirror::{
    FaultKind, FoundBy, LegOpenOutcome, LegState, Mirror, MirrorOptions, ScrubOptions,
    SnapshotCompaction,
};
use strata_engine::storage::sim::{CrashMode, SimDisk};
use strata_engine::storage::Storage;
use strata_engine::{CreateOptions, Error, VolumeId, VolumeKind};

mod common;
use common::legs::{block_of, leg_block_is, BS};
const BLOCKS: u64 = 128;

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

fn create(legs: usize, options: MirrorOptions) -> (SimDisk, Vec<SimDisk>, Rs) {
    create_with_id(legs, options, None)
}

fn create_with_id(
    legs: usize,
    options: MirrorOptions,
    store_id: Option<u64>,
) -> (SimDisk, Vec<SimDisk>, Rs) {
    let mut create = CreateOptions::new(BLOCKS).block_size(BS as u32);
    create.store_id = store_id;
    let secondary = SimDisk::new();
    let disks: Vec<SimDisk> = (0..legs).map(|_| SimDisk::new()).collect();
    let rs = block_on(Mirror::create(
        secondary.clone(),
        disks.clone(),
        create,
        options,
        clock(),
    ))
    .expect("create");
    (secondary, disks, rs)
}

fn reopen(secondary: &SimDisk, legs: &[SimDisk]) -> Rs {
    block_on(Mirror::open(
        secondary.clone(),
        legs.to_vec(),
        MirrorOptions::new(),
        clock(),
    ))
    .expect("reopen")
}

/// A block of random bytes, never all zero.
fn random_block(rng: &mut StdRng) -> Vec<u8> {
    let mut b = vec![0u8; BS];
    rng.fill(&mut b[..]);
    b[0] |= 1;
    b
}

fn write_some(rs: &mut Rs, model: &mut [u8], rng: &mut StdRng, n: usize) {
    for _ in 0..n {
        let blocks = rng.random_range(1..4u64);
        let addr = rng.random_range(0..=BLOCKS - blocks);
        let mut data = Vec::new();
        for _ in 0..blocks {
            data.extend(random_block(rng));
        }
        block_on(rs.write(addr, &data)).expect("write");
        model[addr as usize * BS..][..data.len()].copy_from_slice(&data);
    }
}

fn check_head(rs: &mut Rs, model: &[u8], context: &str) {
    let got = block_on(rs.read(0, BLOCKS)).unwrap_or_else(|e| panic!("{context}: read: {e}"));
    if got != model {
        let at = got.iter().zip(model).position(|(a, b)| a != b).unwrap_or(0);
        panic!(
            "{context}: head differs from the model at block {}",
            at / BS
        );
    }
}

/// Fault accounting for the random workload.
#[derive(Debug, Default)]
struct Counts {
    flips_image: u64,
    flips_sum: u64,
    zeroed_image: u64,
    zeroed_sum: u64,
    detected: u64,
    repaired: u64,
    detected_by_read: u64,
    detected_by_scrub: u64,
    detected_by_resilver: u64,
    overwritten: u64,
    lost_with_device: u64,
    torn_by_failed_writes: u64,
    write_faults_armed: u64,
    io_errors: u64,
    replacements: u64,
    device_gone_at_step: Option<usize>,
    degraded_steps: u64,
    scrubs: u64,
    reads_checked: u64,
}

impl Counts {
    fn injected(&self) -> u64 {
        self.flips_image + self.flips_sum + self.zeroed_image + self.zeroed_sum
    }
}

/// Matches fault events against the damage injected on leg 1.
fn account(rs: &mut Rs, damage: &mut BTreeSet<u64>, c: &mut Counts) {
    for e in rs.take_events() {
        match (e.leg, e.kind) {
            (_, FaultKind::Io) => c.io_errors += 1,
            (0, kind) => panic!("leg 0 was never damaged, yet {kind:?} at {:?}", e.addr),
            (_, FaultKind::Stale) => panic!("unexpected stale copy on leg 1: {e:?}"),
            (_, FaultKind::Checksum) => {
                let addr = e.addr.expect("checksum events name a block");
                if damage.contains(&addr) {
                    if e.repaired {
                        damage.remove(&addr);
                        c.detected += 1;
                        c.repaired += 1;
                        match e.found_by {
                            FoundBy::Read => c.detected_by_read += 1,
                            FoundBy::Scrub => c.detected_by_scrub += 1,
                            _ => c.detected_by_resilver += 1,
                        }
                    }
                    // Not repaired: the leg failed while being repaired; the damage stays and
                    // is found again when the leg is resilvered.
                } else if e.found_by == FoundBy::Resilver {
                    // A write that failed part-way left a block half written on the leg.
                    c.torn_by_failed_writes += 1;
                } else {
                    panic!("checksum fault nobody injected: {e:?}");
                }
            }
        }
    }
}

#[test]
fn faults_on_one_leg_random_workload() {
    let seed = seed();
    println!("faults_on_one_leg_random_workload seed: {seed} (replay with STRATA_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let options =
        MirrorOptions::new().compact_on_snapshot(SnapshotCompaction::MergeOldest { keep: 3 });
    let (secondary, disks, mut rs) = create(2, options);
    let mut leg1 = disks[1].clone();
    let mut model = vec![0u8; BLOCKS as usize * BS];
    let mut synced = model.clone();
    let mut snapshots: Vec<(VolumeId, Vec<u8>)> = Vec::new();
    let mut damage: BTreeSet<u64> = BTreeSet::new();
    let mut c = Counts::default();
    const PHASE_A: usize = 500;
    const STEPS: usize = 800;
    let gone_at = rng.random_range(PHASE_A + 20..PHASE_A + 120);
    let mut gone_since: Option<usize> = None;
    for step in 0..STEPS {
        if step == PHASE_A {
            // End of phase A: no more I/O faults; bring leg 1 back, scrub, and settle the books.
            leg1.fail_once_at(0);
            if rs.status().legs[1].state != LegState::Healthy {
                block_on(rs.replace(1, leg1.clone())).expect("replace at end of phase A");
                c.replacements += 1;
            }
            let report = block_on(rs.scrub()).expect("scrub");
            c.scrubs += 1;
            assert_eq!(report.repaired, report.mismatches, "{report:?}");
            assert!(report.unrecoverable.is_empty(), "{report:?}");
            account(&mut rs, &mut damage, &mut c);
            synced.clone_from(&model);
            // What no event reported must have been overwritten by a later write.
            for &addr in &damage {
                assert!(
                    leg_block_is(&leg1, addr, block_of(&synced, addr)),
                    "seed {seed}: damage at block {addr} of leg 1 went undetected"
                );
            }
            c.overwritten += damage.len() as u64;
            damage.clear();
            println!("after phase A (bit rot, zeroed blocks, failed writes): {c:#?}");
            assert_eq!(
                c.detected,
                c.injected() - c.overwritten,
                "seed {seed}: every damaged block that still held the damage was detected"
            );
            assert_eq!(c.repaired, c.detected, "seed {seed}");
        }
        if step == gone_at {
            c.device_gone_at_step = Some(step);
            leg1.fail_from(leg1.io_count() + rng.random_range(1..30));
            gone_since = Some(step);
        }
        match rng.random_range(0..20) {
            0..=6 => write_some(&mut rs, &mut model, &mut rng, 1),
            7 => {
                let a = rng.random_range(0..BLOCKS / 2);
                let b = rng.random_range(BLOCKS / 2..BLOCKS);
                let (da, db) = (random_block(&mut rng), random_block(&mut rng));
                block_on(rs.write_batch(&[(a, &da), (b, &db)])).expect("batch");
                model[a as usize * BS..][..BS].copy_from_slice(&da);
                model[b as usize * BS..][..BS].copy_from_slice(&db);
            }
            8 | 9 => {
                block_on(rs.sync()).expect("sync");
                synced.clone_from(&model);
            }
            10 => {
                let report = block_on(rs.snapshot(None)).expect("snapshot");
                snapshots.push((report.volume, model.clone()));
                synced.clone_from(&model);
            }
            11..=13 => {
                let blocks = rng.random_range(1..9u64);
                let addr = rng.random_range(0..=BLOCKS - blocks);
                let got = block_on(rs.read(addr, blocks)).expect("read");
                assert_eq!(
                    got,
                    &model[addr as usize * BS..][..blocks as usize * BS],
                    "seed {seed} step {step}: read {addr}+{blocks}"
                );
                c.reads_checked += 1;
            }
            14..=16 if gone_since.is_none() || step < gone_at => {
                // Damage a block of leg 1 that holds data (as of the last sync).
                let with_data: Vec<u64> = (0..BLOCKS)
                    .filter(|&a| !damage.contains(&a))
                    .filter(|&a| block_of(&synced, a).iter().any(|&b| b != 0))
                    .collect();
                if let Some(&addr) = with_data.get(rng.random_range(0..with_data.len().max(1))) {
                    let done = match rng.random_range(0..4) {
                        0 => {
                            let off = addr * BS as u64 + rng.random_range(0..BS as u64);
                            let hit = leg1.flip_bit(IMAGE_OBJECT, off, rng.random_range(0..8));
                            c.flips_image += u64::from(hit);
                            hit
                        }
                        1 => {
                            let off = addr * 4 + rng.random_range(0..4);
                            let hit = leg1.flip_bit(SUM_OBJECT, off, rng.random_range(0..8));
                            c.flips_sum += u64::from(hit);
                            hit
                        }
                        2 => {
                            leg1.zero_range(IMAGE_OBJECT, addr * BS as u64, BS);
                            c.zeroed_image += 1;
                            true
                        }
                        _ => {
                            // Zeroing a checksum entry is damage unless the checksum was zero.
                            // (The probe may itself meet an armed I/O fault: then skip.)
                            let mut sum = [0u8; 4];
                            let probed = block_on(leg1.read_at(SUM_OBJECT, addr * 4, &mut sum));
                            let real = probed.is_ok() && sum != [0; 4];
                            if real {
                                leg1.zero_range(SUM_OBJECT, addr * 4, 4);
                                c.zeroed_sum += 1;
                            }
                            real
                        }
                    };
                    if done {
                        damage.insert(addr);
                    }
                }
            }
            17 if step < PHASE_A && rs.status().legs[1].state == LegState::Healthy => {
                leg1.fail_once_at(leg1.io_count() + rng.random_range(1..40));
                c.write_faults_armed += 1;
            }
            18 => {
                let deep = rng.random_bool(0.5);
                let report = block_on(rs.scrub_with(ScrubOptions {
                    compare_with_secondary: deep,
                }))
                .expect("scrub");
                c.scrubs += 1;
                synced.clone_from(&model);
                assert!(report.unrecoverable.is_empty(), "seed {seed}: {report:?}");
                if report.legs.iter().all(|l| l.io_error.is_none()) {
                    assert_eq!(
                        report.repaired, report.mismatches,
                        "seed {seed}: {report:?}"
                    );
                }
            }
            _ => check_head(&mut rs, &model, &format!("seed {seed} step {step}")),
        }
        account(&mut rs, &mut damage, &mut c);
        let status = rs.status();
        if status.legs[1].state != LegState::Healthy {
            c.degraded_steps += 1;
            assert!(status.is_degraded());
            assert_eq!(status.healthy_legs, 1);
            match gone_since {
                None => {
                    // A failed write or read: the device is still there; resilver it in place.
                    if block_on(rs.replace(1, leg1.clone())).is_ok() {
                        c.replacements += 1;
                        synced.clone_from(&model);
                    }
                    account(&mut rs, &mut damage, &mut c);
                }
                Some(since) if step >= since + 40 => {
                    // The device is gone for good: a new one takes its place.
                    c.lost_with_device += damage.len() as u64;
                    damage.clear();
                    leg1 = SimDisk::new();
                    let r = block_on(rs.replace(1, leg1.clone())).expect("replace gone leg");
                    assert_eq!(r.blocks_checked, BLOCKS);
                    c.replacements += 1;
                    gone_since = None;
                    synced.clone_from(&model);
                    account(&mut rs, &mut damage, &mut c);
                }
                Some(_) => {}
            }
        }
    }
    // The end: everything in service, a clean scrub, every volume right, and again after reopen.
    if rs.status().legs[1].state != LegState::Healthy {
        leg1 = SimDisk::new();
        block_on(rs.replace(1, leg1.clone())).expect("final replace");
        c.lost_with_device += damage.len() as u64;
        damage.clear();
    }
    let report = block_on(rs.scrub()).expect("final scrub");
    account(&mut rs, &mut damage, &mut c);
    for &addr in &damage {
        assert!(leg_block_is(&leg1, addr, block_of(&model, addr)));
    }
    c.overwritten += damage.len() as u64;
    println!("final scrub: {report:?}");
    println!("all faults: {c:#?}");
    println!(
        "faults injected on leg 1: {} (bit flips {} + {}, zeroed {} + {}); detected {} \
         (read {}, scrub {}, resilver {}); repaired {}; overwritten before detection {}; \
         lost with the dead device {}; write faults armed {}; I/O errors {}; replacements {}",
        c.injected(),
        c.flips_image,
        c.flips_sum,
        c.zeroed_image,
        c.zeroed_sum,
        c.detected,
        c.detected_by_read,
        c.detected_by_scrub,
        c.detected_by_resilver,
        c.repaired,
        c.overwritten,
        c.lost_with_device,
        c.write_faults_armed,
        c.io_errors,
        c.replacements
    );
    assert_eq!(report.repaired, report.mismatches, "{report:?}");
    assert!(report.unrecoverable.is_empty(), "{report:?}");
    let again = block_on(rs.scrub()).expect("second scrub");
    assert_eq!(again.mismatches, 0, "nothing left after a scrub: {again:?}");
    assert_eq!(
        c.detected + c.overwritten + c.lost_with_device,
        c.injected()
    );
    assert_eq!(c.repaired, c.detected);
    assert!(c.device_gone_at_step.is_some());
    assert_eq!(rs.status().healthy_legs, 2);
    check_head(&mut rs, &model, "end");
    let volumes = rs.volumes();
    for (id, image) in &snapshots {
        if volumes.iter().any(|v| v.id == *id) {
            assert_eq!(
                &block_on(rs.read_at(*id, 0, BLOCKS)).expect("snapshot"),
                image
            );
        }
    }
    block_on(rs.sync()).expect("sync");
    drop(rs);
    let mut rs = reopen(&secondary, &[disks[0].clone(), leg1.clone()]);
    assert_eq!(
        rs.open_report(),
        &[LegOpenOutcome::InSync, LegOpenOutcome::InSync]
    );
    check_head(&mut rs, &model, "after reopen");
}

#[test]
fn same_block_bad_on_every_leg_is_repaired_from_the_secondary() {
    let mut rng = StdRng::seed_from_u64(7);
    let (_, disks, mut rs) = create(2, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 40);
    let addr = 9;
    let data = random_block(&mut rng);
    block_on(rs.write(addr, &data)).expect("write");
    model[addr as usize * BS..][..BS].copy_from_slice(&data);
    block_on(rs.sync()).expect("sync");

    // A read: both legs fail the checksum, the secondary supplies the block, both are rewritten.
    disks[0].flip_bit(IMAGE_OBJECT, addr * BS as u64 + 100, 3);
    disks[1].zero_range(SUM_OBJECT, addr * 4, 4);
    assert_eq!(block_on(rs.read(addr, 1)).expect("read"), data);
    let status = rs.status();
    println!("after the read: {status:?}");
    assert_eq!(status.blocks_served_by_secondary, 1);
    for leg in &status.legs {
        assert_eq!((leg.errors_detected, leg.errors_repaired), (1, 1));
    }
    assert!(leg_block_is(&disks[0], addr, &data) && leg_block_is(&disks[1], addr, &data));

    // A scrub, quick then thorough: the same, reported per copy.
    for compare_with_secondary in [false, true] {
        disks[0].zero_range(IMAGE_OBJECT, addr * BS as u64, BS);
        disks[1].flip_bit(IMAGE_OBJECT, addr * BS as u64 + 7, 0);
        let report = block_on(rs.scrub_with(ScrubOptions {
            compare_with_secondary,
        }))
        .expect("scrub");
        println!("scrub (compare with secondary: {compare_with_secondary}): {report:?}");
        assert_eq!(report.blocks_checked, BLOCKS);
        assert_eq!(report.copies_checked, 2 * BLOCKS);
        assert_eq!((report.mismatches, report.repaired), (2, 2));
        assert!(report.unrecoverable.is_empty() && report.secondary_damaged.is_empty());
        assert!(leg_block_is(&disks[0], addr, &data) && leg_block_is(&disks[1], addr, &data));
    }
    check_head(&mut rs, &model, "after repairs");
    assert_eq!(block_on(rs.scrub()).expect("scrub").mismatches, 0);
}

/// Finds where `needle` sits in one of the secondary's segments.
fn find_in_segments(disk: &SimDisk, needle: &[u8]) -> (String, u64) {
    for name in block_on(disk.list()).expect("list") {
        if !name.starts_with("seg-") {
            continue;
        }
        let len = block_on(disk.len(&name)).expect("len").unwrap_or(0) as usize;
        let mut bytes = vec![0u8; len];
        block_on(disk.read_at(&name, 0, &mut bytes)).expect("read segment");
        if let Some(at) = bytes.windows(needle.len()).position(|w| w == needle) {
            return (name, at as u64);
        }
    }
    panic!("block not found in any segment");
}

#[test]
fn same_block_bad_everywhere_including_the_secondary_is_unrecoverable() {
    let mut rng = StdRng::seed_from_u64(8);
    let (secondary, disks, mut rs) = create(2, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 30);
    let addr = 21;
    let data = random_block(&mut rng);
    block_on(rs.write(addr, &data)).expect("write");
    model[addr as usize * BS..][..BS].copy_from_slice(&data);
    block_on(rs.sync()).expect("sync");

    disks[0].flip_bit(IMAGE_OBJECT, addr * BS as u64 + 5, 1);
    disks[1].flip_bit(SUM_OBJECT, addr * 4 + 2, 6);
    let (segment, at) = find_in_segments(&secondary, &data);
    assert!(secondary.flip_bit(&segment, at + 11, 4));

    // Reads of the block, alone or in a range, fail with a typed corruption error every time.
    for _ in 0..3 {
        let err = block_on(rs.read(addr, 1)).expect_err("no good copy anywhere");
        println!("read error: {err}");
        assert!(err.is_corruption(), "{err:?}");
        assert_eq!(err.code(), "CORRUPT");
        let err = block_on(rs.read(addr - 3, 8)).expect_err("range with the bad block");
        assert!(err.is_corruption());
    }
    assert!(block_on(rs.read_secondary(addr, 1))
        .expect_err("the secondary's copy is damaged")
        .is_corruption());
    // Every other block still reads, from the primary.
    assert_eq!(
        block_on(rs.read(0, addr)).expect("before"),
        &model[..addr as usize * BS]
    );
    assert_eq!(
        block_on(rs.read(addr + 1, BLOCKS - addr - 1)).expect("after"),
        &model[(addr as usize + 1) * BS..]
    );

    let report = block_on(rs.scrub()).expect("scrub");
    println!("scrub: {report:?}");
    assert_eq!(report.unrecoverable, vec![addr]);
    assert_eq!(report.secondary_damaged, vec![addr]);
    assert_eq!((report.mismatches, report.repaired), (2, 0));
    let status = rs.status();
    assert!(status.unrecoverable_reads >= 6);
    assert!(block_on(rs.read(addr, 1)).is_err(), "never wrong data");

    // Writing the block again heals it everywhere.
    let fresh = random_block(&mut rng);
    block_on(rs.write(addr, &fresh)).expect("rewrite");
    block_on(rs.sync()).expect("sync");
    assert_eq!(block_on(rs.read(addr, 1)).expect("read"), fresh);
    let report = block_on(rs.scrub()).expect("scrub");
    assert_eq!(report.mismatches, 0);
    assert!(report.unrecoverable.is_empty() && report.secondary_damaged.is_empty());
}

#[test]
fn the_secondary_damaged_alone_is_served_by_the_primary_and_reported_by_scrub() {
    let mut rng = StdRng::seed_from_u64(9);
    let (secondary, _, mut rs) = create(1, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 20);
    let data = random_block(&mut rng);
    block_on(rs.write(50, &data)).expect("write");
    model[50 * BS..][..BS].copy_from_slice(&data);
    block_on(rs.sync()).expect("sync");
    let (segment, at) = find_in_segments(&secondary, &data);
    assert!(secondary.flip_bit(&segment, at, 0));
    check_head(&mut rs, &model, "primary serves");
    let report = block_on(rs.scrub()).expect("scrub");
    assert_eq!(report.secondary_damaged, vec![50]);
    assert_eq!(report.mismatches, 0);
    assert!(report.unrecoverable.is_empty());
}

#[test]
fn the_secondary_losing_its_last_record_at_open_gets_it_back_from_the_primary() {
    // Regression: damage to the last record of the secondary's head segment looks, at open,
    // like a write torn by a crash, and recovery cuts it. The legs, which held the acknowledged
    // data, were then rewritten to match the shortened secondary: acknowledged writes were lost
    // although two good copies existed.
    let mut rng = StdRng::seed_from_u64(10);
    let (secondary, disks, mut rs) = create(2, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 20);
    block_on(rs.sync()).expect("sync");
    let mut last = Vec::new();
    for _ in 0..3 {
        last.extend(random_block(&mut rng));
    }
    block_on(rs.write(70, &last)).expect("write");
    model[70 * BS..][..last.len()].copy_from_slice(&last);
    block_on(rs.sync()).expect("sync: acknowledged");
    drop(rs);
    let (segment, at) = find_in_segments(&secondary, &last[BS..2 * BS]);
    assert!(secondary.flip_bit(&segment, at + 9, 3));

    let mut rs = reopen(&secondary, &disks);
    assert!(
        rs.secondary().recovery().head_bytes_truncated > 0,
        "recovery cut the damaged record"
    );
    let status = rs.status();
    println!("status after open: {status:?}");
    assert_eq!(status.secondary_blocks_restored, 3);
    assert!(!status.is_degraded());
    check_head(&mut rs, &model, "primary after open");
    assert_eq!(
        block_on(rs.read_secondary(0, BLOCKS)).expect("secondary"),
        model,
        "the secondary has the writes back"
    );
    let report = block_on(rs.scrub()).expect("scrub");
    assert_eq!(report.mismatches, 0, "{report:?}");
    // And it stays so: the restored entries are durable in the secondary.
    drop(rs);
    let mut rs = reopen(&secondary, &disks);
    assert_eq!(rs.status().secondary_blocks_restored, 0);
    check_head(&mut rs, &model, "after a second open");
}

#[test]
fn a_lost_secondary_block_no_leg_can_vouch_for_is_counted() {
    // Regression: when the secondary came back behind the primary, a block no leg had a good
    // copy of was skipped silently; the legs were then reconciled with the secondary, and the
    // acknowledged write vanished without a word.
    let mut rng = StdRng::seed_from_u64(11);
    let (secondary, disks, mut rs) = create(2, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 20);
    block_on(rs.sync()).expect("sync");
    let mut last = Vec::new();
    for _ in 0..3 {
        last.extend(random_block(&mut rng));
    }
    block_on(rs.write(70, &last)).expect("write");
    block_on(rs.sync()).expect("sync: acknowledged");
    drop(rs);
    let (segment, at) = find_in_segments(&secondary, &last[BS..2 * BS]);
    assert!(secondary.flip_bit(&segment, at + 9, 3));
    // Block 71 is damaged on every leg too: nothing can bring it back.
    disks[0].flip_bit(IMAGE_OBJECT, 71 * BS as u64 + 5, 1);
    disks[1].flip_bit(IMAGE_OBJECT, 71 * BS as u64 + 17, 2);

    let rs = reopen(&secondary, &disks);
    assert!(rs.secondary().recovery().head_bytes_truncated > 0);
    let status = rs.status();
    println!("status after open: {status:?}");
    assert_eq!(status.secondary_blocks_restored, 2);
    assert_eq!(
        status.secondary_blocks_lost, 1,
        "the lost block is reported"
    );
    let secondary_now = block_on(rs.read_secondary(0, BLOCKS)).expect("secondary");
    assert_eq!(secondary_now[70 * BS..][..BS], last[..BS]);
    assert_eq!(secondary_now[72 * BS..][..BS], last[2 * BS..]);
    assert_ne!(secondary_now[71 * BS..][..BS], last[BS..2 * BS]);
}

#[test]
fn replace_resilvers_a_new_device() {
    let mut rng = StdRng::seed_from_u64(10);
    let (_, disks, mut rs) = create(2, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 60);
    block_on(rs.sync()).expect("sync");

    // Leg 1's device dies; the store keeps serving and says so.
    disks[1].fail_from(disks[1].io_count() + 1);
    write_some(&mut rs, &mut model, &mut rng, 10);
    block_on(rs.sync()).expect("sync with a dead leg");
    check_head(&mut rs, &model, "degraded");
    let status = rs.status();
    println!("degraded: {:?}", status.legs[1]);
    assert_eq!(status.legs[1].state, LegState::Degraded);
    assert!(status.legs[1].reason.is_some() && status.is_degraded());

    // A device holding another store's primary is refused.
    let (_, foreign, _) = create_with_id(1, MirrorOptions::new(), Some(0xF0F0));
    let err = block_on(rs.replace(1, foreign[0].clone())).expect_err("foreign device");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    let fresh = SimDisk::new();
    let report = block_on(rs.replace(1, fresh.clone())).expect("replace");
    println!("resilver: {report:?}");
    let nonzero = (0..BLOCKS)
        .filter(|&a| block_of(&model, a).iter().any(|&b| b != 0))
        .count() as u64;
    assert_eq!(report.blocks_checked, BLOCKS);
    assert_eq!(report.blocks_written, nonzero);
    assert!(report.unrecoverable.is_empty());
    assert_eq!(rs.status().healthy_legs, 2);
    for a in 0..BLOCKS {
        assert!(leg_block_is(&fresh, a, block_of(&model, a)), "block {a}");
    }
    assert_eq!(block_on(rs.scrub()).expect("scrub").mismatches, 0);

    // Leg 0 dies too: everything is served by the new leg alone, not by the secondary.
    let before = rs.status().blocks_served_by_secondary;
    disks[0].fail_from(disks[0].io_count() + 1);
    for _ in 0..4 {
        check_head(&mut rs, &model, "served by the new leg");
    }
    let status = rs.status();
    assert_eq!(status.legs[0].state, LegState::Degraded);
    assert_eq!(status.blocks_served_by_secondary, before);
}

#[test]
fn rebuild_primary_after_losing_every_leg() {
    let mut rng = StdRng::seed_from_u64(11);
    let (secondary, disks, mut rs) = create(2, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 50);
    block_on(rs.snapshot(Some("one"))).expect("snapshot");
    write_some(&mut rs, &mut model, &mut rng, 50);
    block_on(rs.sync()).expect("sync");
    for d in &disks {
        d.fail_from(d.io_count() + 1);
    }
    write_some(&mut rs, &mut model, &mut rng, 10);
    block_on(rs.sync()).expect("sync with no leg");
    check_head(&mut rs, &model, "no legs");
    let status = rs.status();
    assert_eq!(status.healthy_legs, 0);
    assert!(status.blocks_served_by_secondary >= BLOCKS);

    let new: Vec<SimDisk> = (0..2).map(|_| SimDisk::new()).collect();
    let reports = block_on(rs.rebuild_primary(new.clone())).expect("rebuild");
    println!("rebuild: {reports:?}");
    assert!(reports.iter().all(|r| r.unrecoverable.is_empty()));
    let status = rs.status();
    assert_eq!(status.healthy_legs, 2);
    assert!(status.legs.iter().all(|l| l.replacements == 1));
    let served = status.blocks_served_by_secondary;
    check_head(&mut rs, &model, "rebuilt");
    assert_eq!(rs.status().blocks_served_by_secondary, served);
    assert_eq!(block_on(rs.scrub()).expect("scrub").mismatches, 0);
    drop(rs);
    let mut rs = reopen(&secondary, &new);
    assert_eq!(
        rs.open_report(),
        &[LegOpenOutcome::InSync, LegOpenOutcome::InSync]
    );
    check_head(&mut rs, &model, "rebuilt, reopened");
}

/// A crash at every I/O of a sync, in the secondary or in either leg: the reopened system reads
/// the state after the sync if the secondary's sync completed, else the state before it plus a
/// prefix of the unsynced records, from the primary and from the secondary alike, with every leg
/// brought in line.
#[test]
fn crash_between_secondary_sync_and_primary_sync() {
    let seed = seed();
    let name = "crash_between_secondary_sync_and_primary_sync";
    println!("{name} seed: {seed} (replay with STRATA_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let setup_seed: u64 = rng.random();
    let setup = |crash_point: Option<u64>| {
        let mut rng = StdRng::seed_from_u64(setup_seed);
        let (secondary, disks, mut rs) = create(2, MirrorOptions::new());
        let mut model = vec![0u8; BLOCKS as usize * BS];
        write_some(&mut rs, &mut model, &mut rng, 30);
        block_on(rs.snapshot(None)).expect("snapshot");
        write_some(&mut rs, &mut model, &mut rng, 30);
        block_on(rs.sync()).expect("sync");
        // Twelve records after the last sync: any prefix of them may survive a crash.
        let mut states = vec![model.clone()];
        for _ in 0..12 {
            write_some(&mut rs, &mut model, &mut rng, 1);
            states.push(model.clone());
        }
        let all: Vec<SimDisk> = std::iter::once(secondary.clone())
            .chain(disks.clone())
            .collect();
        let start: Vec<u64> = all.iter().map(SimDisk::io_count).collect();
        if let Some(point) = crash_point {
            // Global I/O order within a sync: the secondary, then leg 0, then leg 1.
            let mut rest = point;
            let mut stopped = false;
            for d in &all {
                if stopped {
                    d.fail_from(d.io_count() + 1);
                } else if rest <= 64 {
                    d.fail_from(d.io_count() + rest);
                    stopped = true;
                } else {
                    rest -= 64;
                }
            }
        }
        let result = block_on(rs.sync());
        let used: Vec<u64> = all
            .iter()
            .zip(&start)
            .map(|(d, s)| d.io_count() - s)
            .collect();
        (secondary, disks, states, result.is_ok(), used, rs)
    };
    // A dry run counts the I/Os of the sync on each disk.
    let (.., used, _) = setup(None);
    println!(
        "I/Os of the sync: secondary {}, leg 0 {}, leg 1 {}",
        used[0], used[1], used[2]
    );
    assert!(used.iter().all(|&n| n > 0 && n <= 64));
    let mut points = 0;
    let mut outcomes = std::collections::BTreeMap::new();
    for (disk, &n) in used.iter().enumerate() {
        for k in 1..=n {
            for mode in [CrashMode::DropAll, CrashMode::KeepAll, CrashMode::Random] {
                let point = disk as u64 * 64 + k;
                let (secondary, disks, states, acked, _, rs) = setup(Some(point));
                drop(rs);
                let crash_seed = seed ^ point.wrapping_mul(0x9E37_79B9_7F4A_7C15);
                let mut crash_rng = StdRng::seed_from_u64(crash_seed);
                secondary.crash(mode, &mut crash_rng);
                for d in &disks {
                    d.crash(mode, &mut crash_rng);
                }
                let mut rs = reopen(&secondary, &disks);
                let head = block_on(rs.read(0, BLOCKS)).expect("read after crash");
                let from_secondary = block_on(rs.read_secondary(0, BLOCKS)).expect("secondary");
                let context = format!("seed {seed}: crash at disk {disk} I/O {k} ({mode:?})");
                assert_eq!(
                    head, from_secondary,
                    "{context}: primary and secondary disagree"
                );
                let after = states.last().expect("states");
                if acked {
                    assert!(&head == after, "{context}: acknowledged sync lost");
                } else {
                    assert!(
                        states.contains(&head),
                        "{context}: not a prefix of the records"
                    );
                }
                for outcome in rs.open_report() {
                    let key = match outcome {
                        LegOpenOutcome::InSync => "in sync",
                        LegOpenOutcome::Reconciled(_) => "reconciled from the log",
                        LegOpenOutcome::Resilvered(_) => "resilvered whole",
                        LegOpenOutcome::Failed(e) => panic!("{context}: leg failed at open: {e}"),
                    };
                    *outcomes.entry(key).or_insert(0u64) += 1;
                }
                let report = block_on(rs.scrub()).expect("scrub");
                assert_eq!(report.mismatches, 0, "{context}: {report:?}");
                points += 1;
            }
        }
    }
    println!("crash runs: {points}; legs at reopen: {outcomes:?}");
    assert!(outcomes.contains_key("reconciled from the log"));
}

#[test]
fn snapshots_compact_per_the_configured_option() {
    let mut rng = StdRng::seed_from_u64(12);
    // Claim 23: merging the oldest snapshots into the baseline on each snapshot.
    let options =
        MirrorOptions::new().compact_on_snapshot(SnapshotCompaction::MergeOldest { keep: 1 });
    let (_, _, mut rs) = create(2, options);
    let mut model = vec![0u8; BLOCKS as usize * BS];
    let mut images = Vec::new();
    for i in 0..4 {
        write_some(&mut rs, &mut model, &mut rng, 10);
        let report = block_on(rs.snapshot(Some(&format!("s{i}")))).expect("snapshot");
        assert_eq!(report.merged_partitions, u32::from(i > 0));
        images.push((report.volume, model.clone()));
    }
    let snapshots: Vec<VolumeId> = rs
        .volumes()
        .iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| v.id)
        .collect();
    let (last, last_image) = images.last().expect("snapshots");
    assert_eq!(snapshots, vec![*last]);
    let (_, merged_image) = &images[images.len() - 2];
    assert_eq!(
        &block_on(rs.read_at(VolumeId::BASELINE, 0, BLOCKS)).expect("baseline"),
        merged_image
    );
    assert_eq!(
        &block_on(rs.read_at(*last, 0, BLOCKS)).expect("snapshot"),
        last_image
    );
    check_head(&mut rs, &model, "after merges");

    // Claim 24: in-place compaction of each snapshot.
    let options = MirrorOptions::new().compact_on_snapshot(SnapshotCompaction::InPlace);
    let (_, _, mut rs) = create(1, options);
    let mut model = vec![0u8; BLOCKS as usize * BS];
    for _ in 0..3 {
        block_on(rs.write(3, &random_block(&mut rng))).expect("overwrite");
    }
    write_some(&mut rs, &mut model, &mut rng, 10);
    let data = block_on(rs.read(3, 1)).expect("read");
    model[3 * BS..][..BS].copy_from_slice(&data);
    let report = block_on(rs.snapshot(None)).expect("snapshot");
    let compacted = report.compacted.expect("compacted");
    assert!(compacted.blocks_dropped >= 2, "{compacted:?}");
    assert_eq!(
        block_on(rs.read_at(report.volume, 0, BLOCKS)).expect("snapshot"),
        model
    );
    check_head(&mut rs, &model, "after in-place compaction");
}

#[test]
fn rollback_rewrites_the_primary() {
    let mut rng = StdRng::seed_from_u64(13);
    let (secondary, disks, mut rs) = create(2, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 20);
    let snap = block_on(rs.snapshot(None)).expect("snapshot").volume;
    let at_snapshot = model.clone();
    write_some(&mut rs, &mut model, &mut rng, 20);
    block_on(rs.rollback(snap, None)).expect("rollback");
    check_head(&mut rs, &at_snapshot, "after rollback");
    for d in &disks {
        for a in 0..BLOCKS {
            assert!(leg_block_is(d, a, block_of(&at_snapshot, a)));
        }
    }
    assert_eq!(block_on(rs.scrub()).expect("scrub").mismatches, 0);
    drop(rs);
    let mut rs = reopen(&secondary, &disks);
    check_head(&mut rs, &at_snapshot, "after rollback and reopen");
}

#[test]
fn the_layout_table_in_the_module_doc_names_the_right_offsets() {
    let constants = [
        ("PRIMARY_MAGIC_OFFSET", PRIMARY_MAGIC_OFFSET),
        ("PRIMARY_VERSION_OFFSET", PRIMARY_VERSION_OFFSET),
        ("PRIMARY_STORE_ID_OFFSET", PRIMARY_STORE_ID_OFFSET),
        ("PRIMARY_BLOCK_SIZE_OFFSET", PRIMARY_BLOCK_SIZE_OFFSET),
        ("PRIMARY_FLAGS_OFFSET", PRIMARY_FLAGS_OFFSET),
        ("PRIMARY_BLOCK_COUNT_OFFSET", PRIMARY_BLOCK_COUNT_OFFSET),
        ("PRIMARY_GENERATION_OFFSET", PRIMARY_GENERATION_OFFSET),
        ("PRIMARY_HEAD_OFFSET", PRIMARY_HEAD_OFFSET),
        ("PRIMARY_NEXT_SEQ_OFFSET", PRIMARY_NEXT_SEQ_OFFSET),
        ("PRIMARY_LEG_INDEX_OFFSET", PRIMARY_LEG_INDEX_OFFSET),
        ("PRIMARY_LEG_COUNT_OFFSET", PRIMARY_LEG_COUNT_OFFSET),
        ("PRIMARY_CRC_OFFSET", PRIMARY_CRC_OFFSET),
    ];
    let doc = include_str!("../src/mirror/mod.rs");
    let mut rows = 0;
    for line in doc.lines().filter_map(|l| l.strip_prefix("//! | ")) {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        let Some(&(name, offset)) = constants
            .iter()
            .find(|(n, _)| cells.iter().rev().nth(1) == Some(n))
        else {
            continue;
        };
        assert_eq!(cells[0].parse::<usize>().ok(), Some(offset), "{name}");
        rows += 1;
    }
    assert_eq!(rows, constants.len());
}

#[test]
fn leg_layout_matches_the_documented_bytes() {
    let mut rng = StdRng::seed_from_u64(14);
    let (_, disks, mut rs) = create(2, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 10);
    block_on(rs.sync()).expect("sync");
    let info = rs.info();
    let (head, next_seq) = (rs.head(), info.next_seq);
    for (i, d) in disks.iter().enumerate() {
        let mut slots = [0u8; 128];
        block_on(d.read_at(HEADER_OBJECT, 0, &mut slots)).expect("header");
        let generation = rs.status().legs[i].generation;
        let slot = &slots[(generation % 2) as usize * 64..][..64];
        let u16_at = |o: usize| u16::from_le_bytes([slot[o], slot[o + 1]]);
        let u32_at = |o: usize| u32::from_le_bytes(slot[o..o + 4].try_into().expect("4"));
        let u64_at = |o: usize| u64::from_le_bytes(slot[o..o + 8].try_into().expect("8"));
        assert_eq!(&slot[PRIMARY_MAGIC_OFFSET..][..4], b"SPRM");
        assert_eq!(u32_at(PRIMARY_VERSION_OFFSET), 1);
        assert_eq!(u64_at(PRIMARY_STORE_ID_OFFSET), info.store_id);
        assert_eq!(u32_at(PRIMARY_BLOCK_SIZE_OFFSET), BS as u32);
        assert_eq!(u32_at(PRIMARY_FLAGS_OFFSET), 1);
        assert_eq!(u64_at(PRIMARY_BLOCK_COUNT_OFFSET), BLOCKS);
        assert_eq!(u64_at(PRIMARY_GENERATION_OFFSET), generation);
        assert_eq!(u64_at(PRIMARY_HEAD_OFFSET), head.0);
        assert_eq!(u64_at(PRIMARY_NEXT_SEQ_OFFSET), next_seq);
        assert_eq!(usize::from(u16_at(PRIMARY_LEG_INDEX_OFFSET)), i);
        assert_eq!(u16_at(PRIMARY_LEG_COUNT_OFFSET), 2);
        assert_eq!(
            u32_at(PRIMARY_CRC_OFFSET),
            strata_engine::format::crc(&slot[..60])
        );
        assert!(PrimaryHeader::decode(slot).is_ok());
        for a in 0..BLOCKS {
            assert!(leg_block_is(d, a, block_of(&model, a)), "block {a}");
        }
        let lengths = d.object_lengths();
        assert_eq!(lengths["primary.sum"], BLOCKS * 4);
        assert!(lengths["primary.img"] <= BLOCKS * BS as u64);
    }
}

#[test]
fn open_refuses_a_device_of_another_store_and_fills_a_blank_one() {
    let mut rng = StdRng::seed_from_u64(15);
    let (secondary, disks, mut rs) = create(1, MirrorOptions::new());
    let mut model = vec![0u8; BLOCKS as usize * BS];
    write_some(&mut rs, &mut model, &mut rng, 20);
    block_on(rs.sync()).expect("sync");
    drop(rs);
    let (_, foreign, _) = create_with_id(1, MirrorOptions::new(), Some(0xF0F0));
    let err = block_on(Mirror::open(
        secondary.clone(),
        vec![disks[0].clone(), foreign[0].clone()],
        MirrorOptions::new(),
        clock(),
    ))
    .expect_err("foreign leg");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");
    let err = block_on(Mirror::<SimDisk, SimDisk>::create(
        SimDisk::new(),
        vec![disks[0].clone()],
        CreateOptions::new(BLOCKS).block_size(BS as u32),
        MirrorOptions::new(),
        clock(),
    ))
    .expect_err("device in use");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    // A second, blank leg is filled at open.
    let blank = SimDisk::new();
    let mut rs = reopen(&secondary, &[disks[0].clone(), blank.clone()]);
    assert!(matches!(
        rs.open_report(),
        [LegOpenOutcome::InSync, LegOpenOutcome::Resilvered(_)]
    ));
    disks[0].fail_from(disks[0].io_count() + 1);
    check_head(&mut rs, &model, "from the filled leg");
    assert_eq!(rs.status().blocks_served_by_secondary, 0);
}

/// Random writes, syncs, snapshots (merging the oldest), snapshot deletions, rollbacks, reads and
/// scrubs, with a device (the secondary's or a leg's) failing at a random I/O and every device
/// crashing at the end of each round, sometimes again while the legs are being brought in line
/// at open. After every reopen the head reads the same from the primary and the secondary, is a
/// state between the last acknowledged sync and the crash, and a scrub finds nothing to repair.
#[test]
fn random_workload_with_crashes() {
    let seed = seed();
    println!("random_workload_with_crashes seed: {seed} (replay with STRATA_SEED={seed})");
    let mut rng = StdRng::seed_from_u64(seed);
    let options =
        MirrorOptions::new().compact_on_snapshot(SnapshotCompaction::MergeOldest { keep: 2 });
    let (secondary, disks, rs) = create(2, options);
    let mut rs = Some(rs);
    let all: Vec<SimDisk> = std::iter::once(secondary.clone())
        .chain(disks.clone())
        .collect();
    let mut model = vec![0u8; BLOCKS as usize * BS];
    let mut candidates = vec![model.clone()];
    let mut images: std::collections::BTreeMap<VolumeId, Vec<u8>> = Default::default();
    let (mut deletes, mut rollbacks) = (0u64, 0u64);
    let mut outcomes = std::collections::BTreeMap::new();
    let (mut ops, mut failed_ops, mut crashes_in_recovery) = (0u64, 0u64, 0u64);
    let modes = [CrashMode::DropAll, CrashMode::KeepAll, CrashMode::Random];
    for round in 0..60 {
        let context = format!("seed {seed} round {round}");
        let store = rs.as_mut().expect("open");
        let target = rng.random_range(0..all.len());
        let fail_at = all[target].io_count() + rng.random_range(1..120);
        all[target].fail_from(fail_at);
        let mut journal = vec![format!("disk {target} fails from I/O {fail_at}")];
        for _ in 0..rng.random_range(5..40) {
            ops += 1;
            let op = rng.random_range(0..14);
            journal.push(
                [
                    "write", "write", "write", "write", "write", "sync", "sync", "snapshot",
                    "scrub",
                ]
                .get(op)
                .unwrap_or(&"read")
                .to_string(),
            );
            let ok = match op {
                0..=4 => {
                    let blocks = rng.random_range(1..4u64);
                    let addr = rng.random_range(0..=BLOCKS - blocks);
                    let data: Vec<u8> = (0..blocks).flat_map(|_| random_block(&mut rng)).collect();
                    let result = block_on(store.write(addr, &data));
                    model[addr as usize * BS..][..data.len()].copy_from_slice(&data);
                    candidates.push(model.clone());
                    result.is_ok()
                }
                5..=6 => {
                    let ok = block_on(store.sync()).is_ok();
                    if ok {
                        candidates = vec![model.clone()];
                    }
                    ok
                }
                7 => match block_on(store.snapshot(None)) {
                    Ok(report) => {
                        images.insert(report.volume, model.clone());
                        candidates = vec![model.clone()];
                        true
                    }
                    Err(_) => false,
                },
                9 | 10 => {
                    let snapshots: Vec<VolumeId> = store
                        .volumes()
                        .iter()
                        .filter(|v| v.kind == VolumeKind::Snapshot && images.contains_key(&v.id))
                        .map(|v| v.id)
                        .collect();
                    match snapshots.get(rng.random_range(0..snapshots.len().max(1))) {
                        None => true,
                        Some(&id) if rng.random_bool(0.5) => {
                            journal.push(format!("delete {id}"));
                            deletes += 1;
                            block_on(store.delete_volume(id)).is_ok()
                        }
                        Some(&id) => {
                            journal.push(format!("rollback to {id}"));
                            rollbacks += 1;
                            let old_head = store.head();
                            let before = model.clone();
                            let target = images[&id].clone();
                            candidates.push(target.clone());
                            let ok = block_on(store.rollback(id, None)).is_ok();
                            if ok {
                                images.insert(old_head, before);
                                model = target;
                                candidates = vec![model.clone()];
                            }
                            ok
                        }
                    }
                }
                8 => {
                    let ok = block_on(store.scrub()).is_ok_and(|r| r.unrecoverable.is_empty());
                    if ok {
                        candidates = vec![model.clone()];
                    }
                    ok
                }
                _ => match block_on(store.read(0, BLOCKS)) {
                    Ok(head) => {
                        assert!(head == model, "{context}: read differs from the model");
                        true
                    }
                    Err(e) => {
                        // Only a failing secondary may make a read fail.
                        assert!(target == 0, "{context}: read failed: {e}");
                        false
                    }
                },
            };
            if !ok {
                journal.push("(failed)".into());
                failed_ops += 1;
                break;
            }
        }
        drop(rs.take());
        let crash = |rng: &mut StdRng| {
            for d in &all {
                let mode = modes[rng.random_range(0..modes.len())];
                d.crash(mode, rng);
            }
        };
        crash(&mut rng);
        if rng.random_bool(0.3) {
            // Crash again while the legs are being brought in line.
            let leg = rng.random_range(1..all.len());
            all[leg].fail_from(all[leg].io_count() + rng.random_range(1..40));
            journal.push(format!("crash; reopen with leg {} failing; crash", leg - 1));
            drop(reopen(&secondary, &disks));
            crash(&mut rng);
            crashes_in_recovery += 1;
        }
        let mut store = block_on(Mirror::open(
            secondary.clone(),
            disks.clone(),
            options,
            clock(),
        ))
        .unwrap_or_else(|e| panic!("{context}: reopen: {e}"));
        for outcome in store.open_report() {
            let key = match outcome {
                LegOpenOutcome::InSync => "in sync",
                LegOpenOutcome::Reconciled(_) => "reconciled from the log",
                LegOpenOutcome::Resilvered(_) => "resilvered whole",
                LegOpenOutcome::Failed(e) => panic!("{context}: leg failed at open: {e}"),
            };
            *outcomes.entry(key).or_insert(0u64) += 1;
        }
        let head = block_on(store.read(0, BLOCKS)).unwrap_or_else(|e| panic!("{context}: {e}"));
        let from_secondary = block_on(store.read_secondary(0, BLOCKS)).expect("secondary");
        let explain = |store: &Rs| {
            format!(
                "primary is a legal state: {}, secondary is: {}; blocks where they differ: {:?}; \
                 legs at open: {:?}; round's operations: {:?}",
                candidates.contains(&head),
                candidates.contains(&from_secondary),
                (0..BLOCKS)
                    .filter(|&a| block_of(&head, a) != block_of(&from_secondary, a))
                    .collect::<Vec<_>>(),
                store.open_report(),
                journal,
            )
        };
        assert!(
            head == from_secondary,
            "{context}: primary and secondary disagree: {}",
            explain(&store)
        );
        assert!(
            candidates.contains(&head),
            "{context}: the head is not a state between the last acknowledged sync and the crash"
        );
        let report = block_on(store.scrub()).expect("scrub");
        assert_eq!(
            report.mismatches,
            0,
            "{context}: {report:?}: {}",
            explain(&store)
        );
        model = head;
        candidates = vec![model.clone()];
        rs = Some(store);
    }
    println!(
        "rounds: 60, operations: {ops}, operations failed by an injected fault: {failed_ops}, \
         crashes during recovery: {crashes_in_recovery}, snapshot deletions: {deletes}, \
         rollbacks: {rollbacks}, legs at reopen: {outcomes:?}"
    );
}

/// A mirror under storage management (the policy executor above any `Volume`): a threshold rule
/// takes its snapshots as writes cross it, the snapshots keep the legs in step, and the policy
/// and audit trail live in the secondary's journal, so a reopened mirror has them.
#[test]
fn a_managed_mirror_carries_its_policy_out_and_keeps_the_legs_in_step() {
    use strata_engine::policy::{Operation, Outcome, Policy, Trigger};
    use strata_engine::Managed;

    let (secondary, legs, rs) = create(2, MirrorOptions::new());
    let mut managed = block_on(Managed::open(rs, true)).expect("managed");
    let policy = Policy::from_json(
        r#"{ "rules": [ { "name": "every-three", "kind": "threshold",
             "status": "writes_since_snapshot", "above": 2, "action": "snapshot",
             "label": "auto-{n}" } ] }"#,
    )
    .expect("policy");
    block_on(managed.set_policy(Some(policy.clone()))).expect("set policy");
    let mut model = vec![0u8; BLOCKS as usize * BS];
    for n in 0..7u64 {
        let data = vec![n as u8 + 1; BS];
        block_on(managed.write(n, &data)).expect("write");
        model[n as usize * BS..(n as usize + 1) * BS].copy_from_slice(&data);
    }
    // Writes 3 and 6 crossed the threshold: two snapshots, each carried out by the executor
    // through the mirror (so the primary was synced with the secondary first).
    let auto: Vec<_> = managed
        .volumes()
        .into_iter()
        .filter(|v| v.kind == VolumeKind::Snapshot && v.label.starts_with("auto-"))
        .collect();
    assert_eq!(auto.len(), 2, "{:?}", managed.volumes());
    let audit = managed.audit().to_vec();
    assert_eq!(audit.len(), 2, "{audit:?}");
    assert!(audit
        .iter()
        .all(|e| matches!(e.outcome, Outcome::Applied { .. })
            && e.trigger == Some(Trigger::AfterOperation)
            && e.after == Some(Operation::Write)));
    block_on(managed.sync()).expect("sync");
    let scrub = block_on(managed.scrub()).expect("scrub");
    assert_eq!(scrub.mismatches, 0, "{scrub:?}");
    check_head(&mut managed, &model, "after the automatic snapshots");

    // The policy and the audit trail are in the secondary's journal.
    drop(block_on(managed.close()).expect("close"));
    let rs = reopen(&secondary, &legs);
    let managed = Managed::new(rs).expect("managed again");
    assert_eq!(managed.policy(), Some(&policy));
    assert_eq!(managed.audit(), &audit[..]);
    let snapshots = managed
        .volumes()
        .into_iter()
        .filter(|v| v.kind == VolumeKind::Snapshot)
        .count();
    assert_eq!(snapshots, 2);
}

#[test]
fn write_zeroes_zeroes_every_leg_and_the_secondary() {
    let (secondary, legs, mut rs) = create(2, MirrorOptions::new());
    let data: Vec<u8> = (0..16 * BS).map(|i| (i % 251) as u8 + 1).collect();
    block_on(rs.write(10, &data)).unwrap();
    block_on(rs.sync()).unwrap();
    // Blocks 0..10 were never written: only the 10 written blocks of the range are recorded.
    assert_eq!(block_on(rs.write_zeroes(0, 20)).unwrap(), 10);
    block_on(rs.sync()).unwrap();
    let zero = vec![0u8; BS];
    for leg in &legs {
        for addr in 10..20 {
            assert!(
                leg_block_is(leg, addr, &zero),
                "leg block {addr} not zeroed"
            );
        }
        assert!(leg_block_is(leg, 20, block_of(&data, 10)));
    }
    assert_eq!(block_on(rs.read(0, 20)).unwrap(), vec![0u8; 20 * BS]);
    drop(rs);
    let mut rs = reopen(&secondary, &legs);
    assert_eq!(block_on(rs.read(10, 10)).unwrap(), vec![0u8; 10 * BS]);
    assert_eq!(
        block_on(rs.secondary().read(10, 10)).unwrap(),
        vec![0u8; 10 * BS]
    );
}
