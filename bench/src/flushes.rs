//! Figure 0: device flushes per durability point, counted by the directory backend itself
//! (`DirStorage::flushes`: each `fdatasync` of a file and each `fsync` of the directory). The
//! physical limit of a sync is one flush; a store whose records validate themselves needs no
//! more for `sync()` or `snapshot()`, and none when nothing is dirty.

use pollster::block_on;

use crate::engine::{self, DirStore, BLOCK};
use crate::report::{Report, Row, Status};
use crate::{Params, Res};

/// Rounds per case; the counts are deterministic, the most seen is reported (the first round of
/// a new partition also flushes the directory entry of its segment), every round's printed.
const ROUNDS: usize = 3;
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

fn row(id: &str, what: &str, counts: &[u64], target: u64) -> Row {
    let count = counts.iter().copied().max().unwrap_or(0);
    let rounds: Vec<String> = counts.iter().map(u64::to_string).collect();
    Row {
        id: id.into(),
        what: what.into(),
        strata: format!("{count} flushes (rounds: {})", rounds.join(", ")),
        peer: "one device flush (the physical limit)".into(),
        result: format!("{count}"),
        target: format!("{target}"),
        status: Status::of(count <= target),
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
    rep.add(row("0a", "flushes per sync() after writes", &sync, 1));
    let idle = flushes_of(&mut store, &mut |_, _| Ok(()), &mut |s| {
        Ok(block_on(s.sync())?)
    })?;
    rep.add(row("0b", "flushes per sync() with nothing dirty", &idle, 0));
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
    ));
    let unsynced = flushes_of(&mut store, &mut |s, round| writes(s, round), &mut |s| {
        Ok(block_on(s.snapshot(None)).map(drop)?)
    })?;
    rep.add(row(
        "0d",
        "flushes per snapshot() with unsynced writes",
        &unsynced,
        1,
    ));
    drop(store);
    crate::disk::remove(&p.dir.join("fig0"))?;
    Ok(())
}
