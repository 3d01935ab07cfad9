//! `strata-bench-mirror`: what the redundant system costs and what it buys (issue #8).
//!
//! ```text
//! cargo run --release -p strata-bench --bin strata-bench-mirror -- [--seed N] [--volume-mib 256]
//!     [--write-mib 64] [--rounds 3] [--dir D] [--quick]
//! ```
//!
//! Two measurements, each printed with its ratio against the peer measured in the same run:
//!
//! 1. **Mirrored writes**: the same seeded trace of random writes (16-block records, a sync every
//!    4 MiB) through a [`Mirror`] with 2 legs and with 1 leg, and, as the floor, through
//!    the plain [`Store`] alone (the secondary without any primary). Every store and leg is a
//!    [`DirStorage`] directory under `--dir` (so all on one disk: the figure is the extra bytes
//!    and fsyncs, not the parallelism of separate disks). Reported: MiB/s and the 2-leg / 1-leg
//!    time ratio. The directory backend does its I/O synchronously inside its futures, so the
//!    controller's concurrent leg writes cannot overlap on it; the same trace is also run with
//!    each leg's directory behind an I/O thread of its own ([`ThreadedDir`]: a commit's future
//!    completes when the thread has done it, as with an asynchronous backend), where they can.
//! 2. **Head reads**: over an imported baseline image, after a history of many snapshots whose
//!    writes are scattered over the volume, the head is read through the primary image ([`Mirror::read`]: one image
//!    read per request, checked against the checksums the controller keeps in memory) and through the secondary's baseline + log
//!    ([`Store::read`]: an index lookup per block and a read per run of blocks from whichever
//!    partition holds it), both checksum-verified, with random 4 KiB reads and sequential 1 MiB
//!    reads. Both read files the page cache holds (they were just written): this measures the
//!    engine's work per read, not the disk.
//!
//! Each figure is the median of `--rounds` runs. The seed is printed; `--seed` replays a run.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};
use strata_engine::Volume;

use clap::Parser;
use pollster::block_on;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use strata_engine::clock::{Clock, SystemClock};
use strata_engine::mirror::{Mirror, MirrorOptions};
use strata_engine::storage::dir::DirStorage;
use strata_engine::storage::{Commit, Storage, StorageError};
use strata_engine::{CreateOptions, Store};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const MIB: u64 = 1 << 20;
/// Blocks per write record in the write trace.
const RECORD_BLOCKS: u64 = 16;
/// Bytes written between syncs in the write trace.
const SYNC_EVERY_BYTES: u64 = 4 * MIB;
/// Snapshots in the history behind the read figure.
const HISTORY_SNAPSHOTS: u64 = 64;

/// The cost of mirroring writes, and head reads from the primary against baseline + log.
#[derive(Debug, Parser)]
#[command(name = "strata-bench-mirror", version)]
struct Args {
    /// Seed of every random choice (printed; a random one when omitted).
    #[arg(long)]
    seed: Option<u64>,
    /// Volume size in MiB.
    #[arg(long, default_value_t = 256)]
    volume_mib: u64,
    /// MiB written by the write trace (and by the history behind the read figure).
    #[arg(long, default_value_t = 64)]
    write_mib: u64,
    /// Runs per figure (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Block size in bytes.
    #[arg(long, default_value_t = 4096)]
    block_size: u32,
    /// Scratch directory (default: a new directory under the system's temporary directory).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// A small run: 64 MiB volume, 16 MiB written, one round.
    #[arg(long)]
    quick: bool,
}

fn clock() -> Rc<dyn Clock> {
    Rc::new(SystemClock)
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort_unstable();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

fn mib_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / MIB as f64 / time.as_secs_f64().max(1e-9)
}

/// A fresh, empty directory `name` under `root`.
fn fresh(root: &Path, name: &str) -> Res<PathBuf> {
    let path = root.join(name);
    if path.exists() {
        std::fs::remove_dir_all(&path)?;
    }
    std::fs::create_dir_all(&path)?;
    Ok(path)
}

/// A job run on a [`ThreadedDir`]'s I/O thread.
type Job = Box<dyn FnOnce(&mut DirStorage) + Send>;

/// Where a commit's result is left for its future.
#[derive(Default)]
struct Slot {
    result: Option<Result<(), StorageError>>,
    waker: Option<Waker>,
}

/// A [`DirStorage`] owned by an I/O thread of its own: a commit is handed to the thread and its
/// future completes (waking the task) when the thread has applied it, so the commits of several
/// legs proceed in parallel, as with an asynchronous backend. Reads wait for the thread.
struct ThreadedDir {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ThreadedDir {
    fn open(path: PathBuf) -> Res<ThreadedDir> {
        let mut dir = DirStorage::open(path)?;
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread = std::thread::spawn(move || {
            while let Ok(job) = queue.recv() {
                job(&mut dir);
            }
        });
        Ok(ThreadedDir {
            jobs: Some(jobs),
            thread: Some(thread),
        })
    }

    /// Runs `f` on the I/O thread and waits for its result.
    fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut DirStorage) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let gone = || StorageError::Io {
            object: String::new(),
            message: "the I/O thread is gone".into(),
        };
        let (tx, rx) = mpsc::sync_channel(1);
        let jobs = self.jobs.as_ref().ok_or_else(gone)?;
        jobs.send(Box::new(move |dir| {
            let _ = tx.send(f(dir));
        }))
        .map_err(|_| gone())?;
        rx.recv().map_err(|_| gone())?
    }
}

impl Drop for ThreadedDir {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Storage for ThreadedDir {
    fn kind(&self) -> &'static str {
        "dir (threaded)"
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        self.call(|dir| block_on(dir.list()))
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        let object = object.to_string();
        self.call(move |dir| block_on(dir.len(&object)))
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        let object = object.to_string();
        let len = buf.len();
        let (data, filled) = self.call(move |dir| {
            let mut data = vec![0u8; len];
            let filled = block_on(dir.read_at(&object, offset, &mut data))?;
            Ok((data, filled))
        })?;
        buf.copy_from_slice(&data);
        Ok(filled)
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        let slot = Arc::new(Mutex::new(Slot::default()));
        let done = slot.clone();
        let job: Job = Box::new(move |dir| {
            let result = block_on(dir.commit(commit));
            if let Ok(mut slot) = done.lock() {
                slot.result = Some(result);
                if let Some(waker) = slot.waker.take() {
                    waker.wake();
                }
            }
        });
        let sent = self.jobs.as_ref().map(|jobs| jobs.send(job));
        if !matches!(sent, Some(Ok(()))) {
            return Err(StorageError::Io {
                object: String::new(),
                message: "the I/O thread is gone".into(),
            });
        }
        std::future::poll_fn(|cx| match slot.lock() {
            Ok(mut slot) => match slot.result.take() {
                Some(result) => Poll::Ready(result),
                None => {
                    slot.waker = Some(cx.waker().clone());
                    Poll::Pending
                }
            },
            Err(_) => Poll::Ready(Err(StorageError::Io {
                object: String::new(),
                message: "the I/O thread panicked".into(),
            })),
        })
        .await
    }
}

/// The write trace: `(addr, fill)` per record, seeded.
fn write_trace(seed: u64, blocks: u64, bytes: u64, block_size: u32) -> Vec<(u64, u8)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let records = bytes / (RECORD_BLOCKS * u64::from(block_size));
    (0..records)
        .map(|_| (rng.random_range(0..=blocks - RECORD_BLOCKS), rng.random()))
        .collect()
}

/// Where the trace's writes go.
enum Target {
    Plain(Store<DirStorage>),
    Mirrored(Mirror<DirStorage, DirStorage>),
    Threaded(Mirror<ThreadedDir, DirStorage>),
}

/// The write configurations, in the order they are printed.
const CONFIGS: [(usize, bool, &str); 5] = [
    (0, false, "secondary only (no primary)"),
    (1, false, "primary on 1 leg"),
    (2, false, "primary on 2 legs"),
    (1, true, "1 leg, own I/O thread"),
    (2, true, "2 legs, an I/O thread each"),
];

impl Target {
    fn new(root: &Path, legs: usize, threaded: bool, create: CreateOptions) -> Res<Target> {
        let secondary = DirStorage::open(fresh(root, "secondary")?)?;
        if legs == 0 {
            return Ok(Target::Plain(block_on(Store::create(
                secondary,
                create,
                clock(),
            ))?));
        }
        if threaded {
            let mut devices = Vec::with_capacity(legs);
            for i in 0..legs {
                devices.push(ThreadedDir::open(fresh(root, &format!("leg{i}"))?)?);
            }
            return Ok(Target::Threaded(block_on(Mirror::create(
                secondary,
                devices,
                create,
                MirrorOptions::new(),
                clock(),
            ))?));
        }
        let mut devices = Vec::with_capacity(legs);
        for i in 0..legs {
            devices.push(DirStorage::open(fresh(root, &format!("leg{i}"))?)?);
        }
        Ok(Target::Mirrored(block_on(Mirror::create(
            secondary,
            devices,
            create,
            MirrorOptions::new(),
            clock(),
        ))?))
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Res<()> {
        match self {
            Target::Plain(s) => block_on(s.write(addr, data)).map(drop)?,
            Target::Mirrored(m) => block_on(m.write(addr, data)).map(drop)?,
            Target::Threaded(m) => block_on(m.write(addr, data)).map(drop)?,
        }
        Ok(())
    }

    fn sync(&mut self) -> Res<()> {
        match self {
            Target::Plain(s) => block_on(s.sync())?,
            Target::Mirrored(m) => block_on(m.sync())?,
            Target::Threaded(m) => block_on(m.sync())?,
        }
        Ok(())
    }
}

/// Runs the write trace into a new target with `legs` legs (0: the plain store), each behind
/// an I/O thread if `threaded`; returns the time from the first write to the last sync.
fn time_writes(
    root: &Path,
    legs: usize,
    threaded: bool,
    create: CreateOptions,
    trace: &[(u64, u8)],
) -> Res<Duration> {
    let mut target = Target::new(root, legs, threaded, create)?;
    let record_bytes = (RECORD_BLOCKS * u64::from(create.block_size)) as usize;
    let mut data = vec![0u8; record_bytes];
    let mut since_sync = 0u64;
    let start = Instant::now();
    for &(addr, fill) in trace {
        data.fill(fill);
        // Make every block differ, so no layer can take a shortcut on repeated content.
        for (i, chunk) in data.chunks_mut(create.block_size as usize).enumerate() {
            chunk[..8].copy_from_slice(&(addr + i as u64).to_le_bytes());
        }
        target.write(addr, &data)?;
        since_sync += record_bytes as u64;
        if since_sync >= SYNC_EVERY_BYTES {
            target.sync()?;
            since_sync = 0;
        }
    }
    target.sync()?;
    let elapsed = start.elapsed();
    drop(target);
    Ok(elapsed)
}

/// Builds a mirrored store (2 legs) whose baseline is an imported image of seeded noise (a zero
/// baseline would make the secondary's reads of unwritten blocks free, which no real disk image
/// allows), with a history of `HISTORY_SNAPSHOTS` snapshots whose writes, `write_bytes` in all,
/// are scattered over the volume.
fn build_history(
    root: &Path,
    create: CreateOptions,
    seed: u64,
    write_bytes: u64,
    record_blocks: u64,
) -> Res<Mirror<DirStorage, DirStorage>> {
    let bs = u64::from(create.block_size);
    let secondary = DirStorage::open(fresh(root, "secondary")?)?;
    let volume_bytes = create.block_count * bs;
    let mut import = block_on(Store::import_baseline(
        secondary,
        create.block_size,
        Some(volume_bytes),
        None,
        clock(),
    ))?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0xBA5E);
    let mut chunk = vec![0u8; MIB as usize];
    for _ in 0..volume_bytes.div_ceil(MIB) {
        rng.fill(&mut chunk[..]);
        block_on(import.push(&chunk))?;
    }
    let store = block_on(import.finish())?;
    let legs = vec![
        DirStorage::open(fresh(root, "leg0")?)?,
        DirStorage::open(fresh(root, "leg1")?)?,
    ];
    let mut mirror = block_on(Mirror::attach(store, legs, MirrorOptions::new()))?;
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5EED);
    let trace: Vec<(u64, u8)> = (0..write_bytes / (record_blocks * bs))
        .map(|_| {
            (
                rng.random_range(0..=create.block_count - record_blocks),
                rng.random(),
            )
        })
        .collect();
    let per_snapshot = (trace.len() as u64 / HISTORY_SNAPSHOTS).max(1) as usize;
    let mut data = vec![0u8; (record_blocks * bs) as usize];
    for (i, &(addr, fill)) in trace.iter().enumerate() {
        data.fill(fill);
        block_on(mirror.write(addr, &data))?;
        if (i + 1) % per_snapshot == 0 {
            block_on(mirror.snapshot(None))?;
        }
    }
    block_on(mirror.sync())?;
    Ok(mirror)
}

/// Reads `requests` (addr, blocks) through the primary and through the secondary; returns
/// (primary time, secondary time), and checks that both read the same bytes.
fn time_reads(
    mirror: &mut Mirror<DirStorage, DirStorage>,
    requests: &[(u64, u64)],
) -> Res<(Duration, Duration)> {
    let start = Instant::now();
    let mut primary_sum = 0u64;
    for &(addr, blocks) in requests {
        let data = block_on(mirror.read(addr, blocks))?;
        primary_sum = primary_sum.wrapping_add(checksum(&data));
    }
    let primary = start.elapsed();
    let start = Instant::now();
    let mut secondary_sum = 0u64;
    for &(addr, blocks) in requests {
        let data = block_on(mirror.secondary().read(addr, blocks))?;
        secondary_sum = secondary_sum.wrapping_add(checksum(&data));
    }
    let secondary = start.elapsed();
    if primary_sum != secondary_sum {
        return Err("the primary and the secondary read different bytes".into());
    }
    Ok((primary, secondary))
}

fn checksum(data: &[u8]) -> u64 {
    data.chunks(8).fold(0u64, |h, c| {
        let mut word = [0u8; 8];
        word[..c.len()].copy_from_slice(c);
        h.rotate_left(5) ^ u64::from_le_bytes(word)
    })
}

fn main() -> Res<()> {
    let mut args = Args::parse();
    if args.quick {
        args.volume_mib = 64;
        args.write_mib = 16;
        args.rounds = 1;
    }
    let seed = args.seed.unwrap_or_else(|| rand::rng().random());
    let root = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("strata-bench-mirror-{}", std::process::id())),
    };
    std::fs::create_dir_all(&root)?;
    let bs = u64::from(args.block_size);
    let blocks = args.volume_mib * MIB / bs;
    if blocks < RECORD_BLOCKS * 2 {
        return Err("the volume is too small for the trace".into());
    }
    let create = CreateOptions::new(blocks).block_size(args.block_size);
    let write_bytes = args.write_mib * MIB;
    println!(
        "strata-bench-mirror: seed {seed} (replay with --seed {seed}); volume {} MiB in {} B blocks; \
         {} MiB written in {} KiB records, a sync every {} MiB; {} round(s); scratch {}",
        args.volume_mib,
        args.block_size,
        args.write_mib,
        RECORD_BLOCKS * bs / 1024,
        SYNC_EVERY_BYTES / MIB,
        args.rounds,
        root.display()
    );

    // 1. Mirrored writes.
    let trace = write_trace(seed, blocks, write_bytes, args.block_size);
    let mut times: [Vec<Duration>; CONFIGS.len()] = Default::default();
    for round in 0..args.rounds.max(1) {
        // Rotate the order each round so that no configuration always runs first.
        for k in 0..CONFIGS.len() {
            let c = (round + k) % CONFIGS.len();
            let (legs, threaded, _) = CONFIGS[c];
            times[c].push(time_writes(&root, legs, threaded, create, &trace)?);
        }
    }
    let times = times.map(median);
    println!();
    println!(
        "Mirrored writes ({} MiB, write + sync, median of {}):",
        args.write_mib, args.rounds
    );
    println!("  configuration               time      MiB/s   vs 1 leg (same kind)");
    for (c, &(_, threaded, name)) in CONFIGS.iter().enumerate() {
        let one = if threaded { times[3] } else { times[1] };
        println!(
            "  {name:<27} {:>7.3} s {:>8.1} {:>8.2}x",
            times[c].as_secs_f64(),
            mib_per_s(write_bytes, times[c]),
            times[c].as_secs_f64() / one.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "  cost of the second leg: 2 legs / 1 leg = {:.2}x the time (directories), {:.2}x (an I/O thread per leg)",
        times[2].as_secs_f64() / times[1].as_secs_f64().max(1e-9),
        times[4].as_secs_f64() / times[3].as_secs_f64().max(1e-9)
    );

    // 2. Head reads: primary image against baseline + log, over two histories: writes in
    // 64 KiB records, and in single-block records (the most fragmented log).
    let mut rng = StdRng::seed_from_u64(seed ^ 0xBEEF);
    let random: Vec<(u64, u64)> = (0..20_000)
        .map(|_| (rng.random_range(0..blocks), 1))
        .collect();
    let run = (MIB / bs).min(blocks);
    let sequential: Vec<(u64, u64)> = (0..blocks / run).map(|i| (i * run, run)).collect();
    for record_blocks in [RECORD_BLOCKS, 1] {
        let mut mirror = build_history(&root, create, seed, write_bytes, record_blocks)?;
        let partitions = mirror.info().partitions;
        println!();
        println!(
            "Head reads over an imported baseline after {HISTORY_SNAPSHOTS} snapshots ({partitions} log partitions, {} MiB written in {} KiB records at random places), page cache warm, median of {}:",
            args.write_mib,
            record_blocks * bs / 1024,
            args.rounds
        );
        println!(
            "  reads                          primary        baseline+log   baseline+log / primary"
        );
        for (name, requests, bytes) in [
            ("random 4 KiB x 20000", &random, random.len() as u64 * bs),
            (
                "sequential 1 MiB, whole volume",
                &sequential,
                sequential.len() as u64 * run * bs,
            ),
        ] {
            let mut primary = Vec::new();
            let mut secondary = Vec::new();
            // One untimed pass so that both read warm files.
            time_reads(&mut mirror, requests)?;
            for _ in 0..args.rounds.max(1) {
                let (p, s) = time_reads(&mut mirror, requests)?;
                primary.push(p);
                secondary.push(s);
            }
            let (p, s) = (median(primary), median(secondary));
            println!(
                "  {name:<30} {:>8.1} MiB/s {:>10.1} MiB/s {:>10.2}x",
                mib_per_s(bytes, p),
                mib_per_s(bytes, s),
                s.as_secs_f64() / p.as_secs_f64().max(1e-9)
            );
        }
        let status = mirror.status();
        if status.is_degraded() || status.unrecoverable_reads > 0 {
            return Err(format!("the mirror ended degraded: {status:?}").into());
        }
    }
    if args.dir.is_none() {
        std::fs::remove_dir_all(&root)?;
    }
    Ok(())
}
