//! Figure 0: device flushes per durability point, counted by the directory backend itself
//! (`DirStorage::flushes`: each `fdatasync` of a file and each `fsync` of the directory). The
//! physical limit of a sync is one flush; a store whose records validate themselves needs no
//! more for `sync()` or `snapshot()`, and none when nothing is dirty.

use pollster::block_on;
use strata_engine::SPARE_SEGMENTS;

use crate::engine::{self, DirStore, BLOCK};
use crate::report::{Report, Row, Status};
use crate::{Params, Res};

/// Rounds per case: more than 32, so that the counts show the snapshots' two occasional costs.
/// A backend that cannot create files off the caller's path creates the next
/// `SPARE_SEGMENTS` partitions' segment files in one snapshot in that many (a directory flush);
/// an unsynced snapshot that finds 32 snapshots' journal records pending appends them to the
/// journal (the journal's flush). They are deterministic.
const ROUNDS: usize = SPARE_SEGMENTS as usize + 8;
/// Rounds in which one more flush than the target is allowed: those two (at most one of each
/// per 32 rounds).
const SPARE_ROUNDS: usize = ROUNDS.div_ceil(SPARE_SEGMENTS as usize);
/// Blocks written before each durability point.
const WRITES: u64 = 8;

fn writes(store: &mut DirStore, round: usize) -> Res<()> {
    let data = vec![round as u8 + 1; BLOCK as usize];
    for addr in 0..WRITES {
        block_on(store.write(addr, &data))?;
    }
    Ok(())
}

/// The flushes `step` made in each round; `prepare` runs before each round.
fn flushes_of(
    store: &mut DirStore,
    prepare: &mut dyn FnMut(&mut DirStore, usize) -> Res<()>,
    step: &mut dyn FnMut(&mut DirStore) -> Res<()>,
) -> Res<Vec<u64>> {
    let mut counts = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        prepare(store, round)?;
        let before = store.storage().flushes();
        step(store)?;
        counts.push(store.storage().flushes() - before);
    }
    Ok(counts)
}

/// The row of one case: the mean over the rounds, how many rounds took each count, and the
/// verdict: every round at the target, except (for snapshots, which may create spare segments
/// or journal pending records) at most [`SPARE_ROUNDS`] one flush over it.
fn row(id: &str, what: &str, counts: &[u64], target: u64, snapshots: bool) -> Row {
    let allowed = if snapshots { SPARE_ROUNDS } else { 0 };
    let max = counts.iter().copied().max().unwrap_or(0);
    let mean = counts.iter().sum::<u64>() as f64 / counts.len().max(1) as f64;
    let histogram: Vec<String> = (0..=max)
        .filter_map(|n| {
            let rounds = counts.iter().filter(|&&c| c == n).count();
            (rounds > 0).then(|| format!("{rounds} at {n}"))
        })
        .collect();
    let over = counts.iter().filter(|&&c| c > target).count();
    Row {
        id: id.into(),
        what: what.into(),
        strata: format!(
            "mean {mean:.3} flushes, max {max} ({} rounds: {})",
            counts.len(),
            histogram.join(", ")
        ),
        peer: "one device flush (the physical limit)".into(),
        result: format!("{mean:.3}"),
        target: if snapshots {
            format!(
                "{target} (at most {allowed} of {ROUNDS} rounds {}: spare segments, pending journal records)",
                target + 1
            )
        } else {
            format!("{target} in every round")
        },
        status: Status::of(max <= target + 1 && over <= allowed),
    }
}

/// Figure 0: flushes per `sync()` after writes and with nothing dirty, per `snapshot()` after a
/// `sync()` and with unsynced writes.
pub fn flush_counts(p: &Params, rep: &mut Report) -> Res<()> {
    println!(
        "[0] device flushes per sync() and per snapshot() ({WRITES} blocks written before each)"
    );
    let mut store = engine::create(&p.dir.join("fig0"), 1024)?;
    let sync = flushes_of(&mut store, &mut |s, round| writes(s, round), &mut |s| {
        Ok(block_on(s.sync())?)
    })?;
    rep.add(row(
        "0a",
        "flushes per sync() after writes",
        &sync,
        1,
        false,
    ));
    let idle = flushes_of(&mut store, &mut |_, _| Ok(()), &mut |s| {
        Ok(block_on(s.sync())?)
    })?;
    rep.add(row(
        "0b",
        "flushes per sync() with nothing dirty",
        &idle,
        0,
        false,
    ));
    let after_sync = flushes_of(
        &mut store,
        &mut |s, round| {
            writes(s, round)?;
            Ok(block_on(s.sync())?)
        },
        &mut |s| Ok(block_on(s.snapshot(None)).map(drop)?),
    )?;
    rep.add(row(
        "0c",
        "flushes per snapshot() after sync()",
        &after_sync,
        1,
        true,
    ));
    let unsynced = flushes_of(&mut store, &mut |s, round| writes(s, round), &mut |s| {
        Ok(block_on(s.snapshot(None)).map(drop)?)
    })?;
    rep.add(row(
        "0d",
        "flushes per snapshot() with unsynced writes",
        &unsynced,
        1,
        true,
    ));
    drop(store);
    crate::disk::remove(&p.dir.join("fig0"))?;
    Ok(())
}
