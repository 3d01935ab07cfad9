//! The engine side: stores on the directory backend, and timed loops over them.

use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

use pollster::block_on;
use strata_engine::clock::{Clock, SystemClock};
use strata_engine::storage::dir::DirStorage;
use strata_engine::{CreateOptions, Shared, Store, VolumeId};

use crate::Res;

pub type DirStore = Store<DirStorage>;

/// Bytes per block in every store the bench makes (the engine's default).
pub const BLOCK: u64 = 4096;

/// The wall clock every bench store uses.
pub fn clock() -> Rc<dyn Clock> {
    Rc::new(SystemClock)
}

/// A new, empty store of `blocks` blocks in `dir` (removed first if it exists).
pub fn create(dir: &Path, blocks: u64) -> Res<DirStore> {
    crate::disk::remove(dir)?;
    let storage = DirStorage::open(dir)?;
    Ok(block_on(Store::create(
        storage,
        CreateOptions::new(blocks),
        clock(),
    ))?)
}

/// A store shared by threads ([`Shared`]): a new, empty store of `blocks` blocks in `dir`
/// (removed first), on a thread of its own.
pub fn create_shared(dir: &Path, blocks: u64) -> Res<Shared<DirStore>> {
    crate::disk::remove(dir)?;
    let dir = dir.to_path_buf();
    Ok(Shared::spawn(move || {
        block_on(Store::create(
            DirStorage::open(&dir)?,
            CreateOptions::new(blocks),
            clock(),
        ))
    })?)
}

/// Figure 2b's loop: `writers` threads share `ops` (thread `k` takes every `writers`-th one),
/// each writing its block and syncing before the next. Returns the wall time until the last
/// thread is done.
pub fn shared_synced_writes(
    shared: &Shared<DirStore>,
    ops: &[(u64, u8)],
    writers: usize,
) -> Res<Duration> {
    let t = Instant::now();
    std::thread::scope(|s| {
        let threads: Vec<_> = (0..writers)
            .map(|k| {
                s.spawn(move || -> strata_engine::Result<()> {
                    let mut buf = vec![0u8; BLOCK as usize];
                    for &(addr, pattern) in ops.iter().skip(k).step_by(writers) {
                        buf.fill(pattern);
                        shared.write(addr, &buf)?;
                        shared.sync()?;
                    }
                    Ok(())
                })
            })
            .collect();
        threads.into_iter().try_for_each(|thread| {
            thread
                .join()
                .map_err(|_| "a figure 2b writer panicked".to_string())?
                .map_err(|e| e.to_string())
        })
    })?;
    Ok(t.elapsed())
}

/// Opens the store in `dir`.
pub fn open(dir: &Path) -> Res<DirStore> {
    let storage = DirStorage::open(dir)?;
    Ok(block_on(Store::open(storage, clock()))?)
}

/// Reads one block per `(addr, pattern)` from `volume`, checking that it holds `pattern`
/// (pattern 0: never written). Returns the wall time of the loop.
pub fn read_loop(store: &DirStore, volume: VolumeId, reads: &[(u64, u8)]) -> Res<Duration> {
    let mut buf = vec![0u8; BLOCK as usize];
    let mut bad = 0usize;
    let t = Instant::now();
    for &(addr, pattern) in reads {
        block_on(store.read_into(volume, addr, &mut buf))?;
        // Blocks are uniform fills and the engine checks every block's CRC: three bytes tell
        // which version came back, at no measurable cost.
        let n = buf.len();
        if buf[0] != pattern || buf[n / 2] != pattern || buf[n - 1] != pattern {
            bad += 1;
        }
    }
    let elapsed = t.elapsed();
    if bad > 0 {
        return Err(format!(
            "{bad} of {} engine reads at volume {volume} returned unexpected data",
            reads.len()
        )
        .into());
    }
    Ok(elapsed)
}

/// Like [`read_loop`], but returns the CPU time the loop's thread ran (warm reads do no I/O
/// wait, and CPU time leaves out the time spent waiting for a CPU on a shared machine).
pub fn read_loop_cpu(store: &DirStore, volume: VolumeId, reads: &[(u64, u8)]) -> Res<Duration> {
    let sched = crate::disk::Sched::now();
    read_loop(store, volume, reads)?;
    Ok(sched.since().cpu)
}

/// Best (lowest) of `rounds` runs of [`read_loop`].
pub fn read_best(
    store: &DirStore,
    volume: VolumeId,
    reads: &[(u64, u8)],
    rounds: usize,
) -> Res<Duration> {
    let mut best = Duration::MAX;
    for _ in 0..rounds.max(1) {
        best = best.min(read_loop(store, volume, reads)?);
    }
    Ok(best)
}

/// A `kB` field of `/proc/self/status` in bytes: `VmRSS` (resident now), `VmHWM` (the peak).
fn status_bytes(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// Resident set size of this process in bytes (`VmRSS`).
pub fn rss_bytes() -> u64 {
    status_bytes("VmRSS:")
}

/// The most this process has had resident, in bytes (`VmHWM`).
pub fn peak_rss_bytes() -> u64 {
    status_bytes("VmHWM:")
}

/// An operation `--probe-open` runs after the open, for its time and peak memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeOp {
    /// In-place compaction of the oldest snapshot.
    Compact,
    /// Merge of the older half of the snapshots into the baseline.
    Merge,
}

impl ProbeOp {
    fn name(self) -> &'static str {
        match self {
            ProbeOp::Compact => "compact",
            ProbeOp::Merge => "merge",
        }
    }

    pub fn parse(name: &str) -> Res<ProbeOp> {
        match name {
            "compact" => Ok(ProbeOp::Compact),
            "merge" => Ok(ProbeOp::Merge),
            other => Err(format!("unknown probe operation {other}").into()),
        }
    }
}

/// The hidden `--probe-open DIR` mode: opens the store in a fresh process (then runs `op`, if
/// any) and prints what it cost as `key=value` pairs on one line: times, the resident set
/// before and after the open, and the peak resident set after the open and after `op`.
pub fn probe_open(dir: &Path, op: Option<ProbeOp>) -> Res<()> {
    let rss_before = rss_bytes();
    let t = Instant::now();
    let mut store = open(dir)?;
    let elapsed = t.elapsed();
    let rss_after = rss_bytes();
    let peak_open = peak_rss_bytes();
    let info = store.info();
    let mut op_ns = 0;
    if let Some(op) = op {
        let snapshots: Vec<VolumeId> = store
            .volumes()
            .iter()
            .filter(|v| v.kind == strata_engine::VolumeKind::Snapshot)
            .map(|v| v.id)
            .collect();
        let t = Instant::now();
        match op {
            ProbeOp::Compact => {
                let oldest = *snapshots.first().ok_or("no snapshot to compact")?;
                block_on(store.compact(oldest, &mut |_| true))?;
            }
            ProbeOp::Merge => {
                let middle = *snapshots
                    .get(snapshots.len().saturating_sub(1) / 2)
                    .ok_or("no snapshot to merge")?;
                block_on(store.merge(middle, &mut |_| true))?;
            }
        }
        op_ns = t.elapsed().as_nanos();
    }
    println!(
        "open_ns={} rss_before={} rss_after={} peak_open={} op={} op_ns={} peak_op={} index_bytes={} mapped_blocks={} partitions={} log_bytes={}",
        elapsed.as_nanos(),
        rss_before,
        rss_after,
        peak_open,
        op.map_or("none", ProbeOp::name),
        op_ns,
        peak_rss_bytes(),
        info.index_bytes,
        info.mapped_blocks,
        info.partitions,
        info.log_bytes
    );
    Ok(())
}

/// What `--probe-open` reported.
#[derive(Debug, Clone, Copy, Default)]
pub struct Probe {
    pub open: Duration,
    pub rss_growth: u64,
    /// How far the process's peak resident set rose above what it held before the open: after
    /// the open, and after the operation (if any).
    pub peak_open: u64,
    pub peak_op: u64,
    pub op: Duration,
    pub index_bytes: u64,
    pub mapped_blocks: u64,
    pub partitions: u64,
    pub log_bytes: u64,
}

/// Runs this executable with `--probe-open dir` (and `--probe-op`) and parses its answer.
pub fn spawn_probe(dir: &Path, op: Option<ProbeOp>) -> Res<Probe> {
    let mut command = std::process::Command::new(std::env::current_exe()?);
    command.arg("--probe-open").arg(dir);
    if let Some(op) = op {
        command.arg("--probe-op").arg(op.name());
    }
    let out = command.output()?;
    if !out.status.success() {
        return Err(format!(
            "open probe failed: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |key: &str| -> Res<u64> {
        text.split_whitespace()
            .find_map(|kv| kv.strip_prefix(key).and_then(|v| v.strip_prefix('=')))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| format!("open probe printed no {key}: {text}").into())
    };
    Ok(Probe {
        open: Duration::from_nanos(get("open_ns")?),
        rss_growth: get("rss_after")?.saturating_sub(get("rss_before")?),
        peak_open: get("peak_open")?.saturating_sub(get("rss_before")?),
        peak_op: get("peak_op")?.saturating_sub(get("rss_before")?),
        op: Duration::from_nanos(get("op_ns")?),
        index_bytes: get("index_bytes")?,
        mapped_blocks: get("mapped_blocks")?,
        partitions: get("partitions")?,
        log_bytes: get("log_bytes")?,
    })
}
