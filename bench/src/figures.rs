//! Figures 1-4a and 7b: the engine against qcow2 (and raw file writes) on the same trace.

use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use pollster::block_on;
use rand::rngs::StdRng;
use rand::Rng;

use crate::disk;
use crate::engine::{self, BLOCK};
use crate::qemu::{self, Qcow2};
use crate::report::{Report, Row, Status};
use crate::stats::{fmt_bytes, fmt_dur, median, mib_per_s, per_s, MIB};
use crate::{Params, Res};

/// `n` random block writes over the volume: (block address, fill byte 1..=255).
pub fn random_ops(rng: &mut StdRng, blocks: u64, n: usize) -> Vec<(u64, u8)> {
    (0..n)
        .map(|_| (rng.random_range(0..blocks), rng.random_range(1..=255u8)))
        .collect()
}

/// Figure 1 (random writes, one sync), 4a (random reads vs qcow2, warm and cold) and 7b (index
/// memory of the single-partition store). They share one engine store and one qcow2 overlay.
pub fn writes_then_reads(
    p: &Params,
    rep: &mut Report,
    rng: &mut StdRng,
    want_writes: bool,
    want_reads: bool,
) -> Res<()> {
    let dir = p.dir.join("fig1");
    disk::remove(&dir)?;
    let n = p.random_writes;
    let data_bytes = n as u64 * BLOCK;
    // Engine log ~ data; qcow2 allocates a 64 KiB cluster per first touch, at most the volume.
    disk::ensure_space(
        &p.dir,
        data_bytes + (n as u64 * 65536).min(p.volume_bytes) + 64 * MIB,
        "figure 1",
    )?;
    let ops = random_ops(rng, p.blocks, n);
    let mut last = vec![0u8; p.blocks as usize];
    for &(a, pat) in &ops {
        last[a as usize] = pat;
    }
    println!(
        "[1] {n} random 4 KiB writes ({}) over {}, one sync at the end",
        fmt_bytes(data_bytes),
        fmt_bytes(p.volume_bytes)
    );

    // Engine.
    let edir = dir.join("engine");
    disk::sync_all()?;
    let mut store = engine::create(&edir, p.blocks)?;
    let mut buf = vec![0u8; BLOCK as usize];
    let sched = disk::Sched::now();
    let t = Instant::now();
    for &(addr, pattern) in &ops {
        buf.fill(pattern);
        block_on(store.write(addr, &buf))?;
    }
    let t_writes = t.elapsed();
    block_on(store.sync())?;
    let e_time = t.elapsed();
    let sched = sched.since();
    let log_bytes = store.info().log_bytes;
    drop(store);
    println!(
        "    strata: {} total = {} writes + {} final sync ({}); log {} for {} of data",
        fmt_dur(e_time),
        fmt_dur(t_writes),
        fmt_dur(e_time - t_writes),
        sched.describe(),
        fmt_bytes(log_bytes),
        fmt_bytes(data_bytes)
    );

    // qcow2.
    disk::sync_all()?;
    let q = Qcow2::create(&dir.join("qcow2"), p.volume_bytes)?;
    let (wall, startup) = q.run_script("writes.qio", &qemu::write_script(&ops, BLOCK, 0))?;
    let q_time = wall.saturating_sub(startup);
    let q_size = std::fs::metadata(&q.overlay)?.len();
    println!(
        "    qcow2: qemu-io {} {} wall {} - startup {} = {}; overlay file {}",
        qemu::QEMU_IO_FLAGS.join(" "),
        q.overlay.display(),
        fmt_dur(wall),
        fmt_dur(startup),
        fmt_dur(q_time),
        fmt_bytes(q_size)
    );
    if want_writes {
        let ratio = q_time.as_secs_f64() / e_time.as_secs_f64();
        rep.add(Row {
            id: "1".into(),
            what: format!(
                "4 KiB random writes, {n} ({}) over {}, one sync",
                fmt_bytes(data_bytes),
                fmt_bytes(p.volume_bytes)
            ),
            strata: format!(
                "{:.0} MiB/s ({:.0} writes/s)",
                mib_per_s(data_bytes, e_time),
                per_s(n, e_time)
            ),
            peer: format!(
                "qcow2 overlay {:.0} MiB/s ({:.0} writes/s)",
                mib_per_s(data_bytes, q_time),
                per_s(n, q_time)
            ),
            result: format!("{ratio:.1}x"),
            target: ">= 5x".into(),
            status: Status::of(ratio >= 5.0),
        });
    }

    // Reads of written blocks, same addresses for both.
    let reads: Vec<(u64, u8)> = (0..p.reads)
        .map(|_| {
            let a = ops[rng.random_range(0..ops.len())].0;
            (a, last[a as usize])
        })
        .collect();
    let store = engine::open(&edir)?;
    let info = store.info();
    rep.add(Row {
        id: "7b".into(),
        what: format!(
            "index bytes per mapped block, 1 partition ({} blocks mapped)",
            info.mapped_blocks
        ),
        strata: format!("{} B index", info.index_bytes),
        peer: "-".into(),
        result: format!(
            "{:.1} B/block",
            info.index_bytes as f64 / info.mapped_blocks.max(1) as f64
        ),
        target: "<= 32 B (issue #13)".into(),
        status: Status::of(info.index_bytes <= 32 * info.mapped_blocks),
    });
    if want_reads {
        println!(
            "[4a] {} random 4 KiB reads of written blocks: strata head vs qcow2 (qemu-io read -P)",
            reads.len()
        );
        let script = qemu::read_script(&reads, BLOCK);
        for cold in [false, true] {
            let (e, (wall, startup)) = if cold {
                disk::evict(&edir)?;
                let e = engine::read_loop(&store, store.head(), &reads)?;
                (e, q.run_script_cold("reads.qio", &script)?)
            } else {
                disk::warm(&edir)?;
                disk::warm(&q.dir)?;
                let e = engine::read_best(&store, store.head(), &reads, 2)?;
                disk::warm(&q.dir)?;
                (e, q.run_script("reads.qio", &script)?)
            };
            let qt = wall.saturating_sub(startup);
            let mode = if cold {
                "cold (files dropped from page cache)"
            } else {
                "warm (files in page cache)"
            };
            println!(
                "    {mode}: strata {} ; qcow2 wall {} - startup {} = {}",
                fmt_dur(e),
                fmt_dur(wall),
                fmt_dur(startup),
                fmt_dur(qt)
            );
            let ratio = qt.as_secs_f64() / e.as_secs_f64();
            rep.add(Row {
                id: if cold { "4a-cold" } else { "4a-warm" }.into(),
                what: format!("4 KiB random reads at head vs qcow2, {mode}"),
                strata: format!(
                    "{:.0} reads/s ({}/read)",
                    per_s(reads.len(), e),
                    fmt_dur(e / reads.len() as u32)
                ),
                peer: format!(
                    "qcow2 {:.0} reads/s ({}/read)",
                    per_s(reads.len(), qt),
                    fmt_dur(qt / reads.len() as u32)
                ),
                result: format!("{ratio:.2}x qcow2"),
                target: ">= 1x".into(),
                status: Status::of(ratio >= 1.0),
            });
        }
    }
    drop(store);
    disk::remove(&dir)?;
    Ok(())
}

/// Writers of figure 2b: threads writing and syncing through one [`Shared`] store at once.
pub const WRITERS: usize = 8;

/// Figure 2: a sync after every write; 2b: the same with [`WRITERS`] threads writing and
/// syncing concurrently through one shared store (group commit), against the same qcow2 rounds;
/// 2c: qcow2 with one flush per [`WRITERS`] writes, what it would make of the same grouping. The
/// disk's flush latency drifts by several times within a minute on a shared machine, so the
/// trace is cut into rounds that alternate between the engine, qemu-io and the shared store (the
/// same stores and overlays carry on from round to round).
pub fn synced_writes(p: &Params, rep: &mut Report, rng: &mut StdRng) -> Res<()> {
    let dir = p.dir.join("fig2");
    disk::remove(&dir)?;
    let n = p.sync_writes;
    let rounds = 4;
    disk::ensure_space(&p.dir, 3 * n as u64 * (BLOCK + 65536), "figure 2")?;
    let ops = random_ops(rng, p.blocks, n);
    println!(
        "[2] {n} random 4 KiB writes, each followed by a sync / flush, in {rounds} alternating rounds; \
         2b: the same by {WRITERS} threads at once on one shared store"
    );

    disk::sync_all()?;
    let mut store = engine::create(&dir.join("engine"), p.blocks)?;
    let shared = engine::create_shared(&dir.join("shared"), p.blocks)?;
    let q = Qcow2::create(&dir.join("qcow2"), p.volume_bytes)?;
    let q8 = Qcow2::create(&dir.join("qcow2-grouped"), p.volume_bytes)?;
    let mut buf = vec![0u8; BLOCK as usize];
    let mut samples = Vec::with_capacity(n);
    let (mut e_time, mut q_time, mut s_time, mut q8_time) = (
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
        Duration::ZERO,
    );
    for round in 0..rounds {
        let chunk = &ops[round * n / rounds..(round + 1) * n / rounds];
        let t = Instant::now();
        for &(addr, pattern) in chunk {
            let t1 = Instant::now();
            buf.fill(pattern);
            block_on(store.write(addr, &buf))?;
            block_on(store.sync())?;
            samples.push(t1.elapsed());
        }
        let e = t.elapsed();
        let (wall, startup) = q.run_script("writes.qio", &qemu::write_script(chunk, BLOCK, 1))?;
        let qt = wall.saturating_sub(startup);
        let st = engine::shared_synced_writes(&shared, chunk, WRITERS)?;
        let (wall8, startup8) =
            q8.run_script("writes.qio", &qemu::write_script(chunk, BLOCK, WRITERS))?;
        let q8t = wall8.saturating_sub(startup8);
        println!(
            "    round {}: strata {} ({}/write); qcow2 wall {} - startup {} = {} ({}/write); \
             shared store, {WRITERS} writers {} ({}/write); qcow2 flushing every {WRITERS} writes {} ({}/write)",
            round + 1,
            fmt_dur(e),
            fmt_dur(e / chunk.len() as u32),
            fmt_dur(wall),
            fmt_dur(startup),
            fmt_dur(qt),
            fmt_dur(qt / chunk.len() as u32),
            fmt_dur(st),
            fmt_dur(st / chunk.len() as u32),
            fmt_dur(q8t),
            fmt_dur(q8t / chunk.len() as u32),
        );
        e_time += e;
        q_time += qt;
        s_time += st;
        q8_time += q8t;
    }
    drop(store);
    let stats = shared.stats();
    shared.close()?;
    println!(
        "    strata per write+sync: mean {} p50 {} p99 {}; qemu-io {} with a `flush` line after every write",
        fmt_dur(crate::stats::mean(&samples)),
        fmt_dur(crate::stats::percentile(&samples, 50.0)),
        fmt_dur(crate::stats::percentile(&samples, 99.0)),
        qemu::QEMU_IO_FLAGS.join(" "),
    );
    println!(
        "    shared store: {} syncs answered by {} groups ({:.2} syncs per group, the largest {})",
        stats.syncs,
        stats.groups,
        stats.syncs as f64 / stats.groups.max(1) as f64,
        stats.largest_group
    );
    let ratio = q_time.as_secs_f64() / e_time.as_secs_f64();
    rep.add(Row {
        id: "2".into(),
        what: format!("4 KiB random writes, sync after each ({n}, {rounds} alternating rounds)"),
        strata: format!(
            "{:.0} writes/s ({}/write)",
            per_s(n, e_time),
            fmt_dur(e_time / n as u32)
        ),
        peer: format!(
            "qcow2 {:.0} writes/s ({}/write)",
            per_s(n, q_time),
            fmt_dur(q_time / n as u32)
        ),
        result: format!("{ratio:.2}x"),
        target: ">= 1.0x (issue #13)".into(),
        status: Status::of(ratio >= 1.0),
    });
    let ratio = q_time.as_secs_f64() / s_time.as_secs_f64();
    rep.add(Row {
        id: "2b".into(),
        what: format!(
            "the same, {WRITERS} threads each writing and syncing on one shared store (group commit)"
        ),
        strata: format!(
            "{:.0} writes/s, {:.2} syncs per flush",
            per_s(n, s_time),
            stats.syncs as f64 / stats.groups.max(1) as f64
        ),
        peer: format!("qcow2 (figure 2's rounds) {:.0} writes/s", per_s(n, q_time)),
        result: format!("{ratio:.2}x"),
        target: ">= 4x (issue #13)".into(),
        status: Status::of(ratio >= 4.0),
    });
    let ratio = q8_time.as_secs_f64() / s_time.as_secs_f64();
    rep.add(Row {
        id: "2c".into(),
        what: format!("2b against qcow2 given the same grouping (one flush per {WRITERS} writes)"),
        strata: format!("{:.0} writes/s", per_s(n, s_time)),
        peer: format!("qcow2 {:.0} writes/s", per_s(n, q8_time)),
        result: format!("{ratio:.2}x"),
        target: "context for 2b: what qcow2 would gain from the same grouping".into(),
        status: Status::Info,
    });
    disk::remove(&dir)?;
    Ok(())
}

/// Figure 3: sequential 256 KiB appends against raw file writes of the same bytes.
pub fn append_bandwidth(p: &Params, rep: &mut Report, rng: &mut StdRng) -> Res<()> {
    let dir = p.dir.join("fig3");
    disk::remove(&dir)?;
    std::fs::create_dir_all(&dir)?;
    let bytes = p.append_bytes;
    let chunk = p.append_chunk;
    disk::ensure_space(&p.dir, bytes + bytes / 64, "figure 3")?;
    let count = (bytes / chunk as u64) as usize;
    let chunk_blocks = chunk as u64 / BLOCK;
    let buf = vec![rng.random_range(1..=255u8); chunk];
    let rounds = 3;
    println!(
        "[3] sequential writes of {} in {} chunks, fdatasync at the end; {rounds} alternating rounds \
         (cpu: the whole process's, helper threads included)",
        fmt_bytes(bytes),
        fmt_bytes(chunk as u64)
    );
    let (mut raw_rates, mut behind_rates, mut eng_rates) = (Vec::new(), Vec::new(), Vec::new());
    let (mut raw_cpu, mut behind_cpu, mut eng_cpu) = (Vec::new(), Vec::new(), Vec::new());
    let every = strata_engine::DEFAULT_WRITE_BUFFER_BYTES as u64;
    for round in 0..rounds {
        // Raw file, written then flushed; then the same with write-behind every `every` bytes.
        let path = dir.join("raw.bin");
        let mut raw_sides = Vec::new();
        for write_behind in [false, true] {
            disk::sync_all()?;
            let cpu = disk::process_cpu_time();
            let (writes, total) = raw_append(&path, &buf, count, write_behind.then_some(every))?;
            let cpu = disk::process_cpu_time().saturating_sub(cpu);
            std::fs::remove_file(&path)?;
            raw_sides.push((writes, total, cpu));
        }

        // Engine.
        let edir = dir.join("engine");
        disk::sync_all()?;
        let mut store = engine::create(&edir, p.blocks)?;
        let cpu = disk::process_cpu_time();
        let t = Instant::now();
        let mut addr = 0u64;
        for _ in 0..count {
            if addr + chunk_blocks > p.blocks {
                addr = 0;
            }
            block_on(store.write(addr, &buf))?;
            addr += chunk_blocks;
        }
        let t_writes = t.elapsed();
        block_on(store.sync())?;
        let eng = t.elapsed();
        let cpu = disk::process_cpu_time().saturating_sub(cpu);
        let log = store.info().log_bytes;
        drop(store);
        disk::remove(&edir)?;
        for (k, (name, (writes, total, cpu))) in ["raw", "raw + write-behind"]
            .into_iter()
            .zip(&raw_sides)
            .enumerate()
        {
            println!(
                "    {:<9}{name} {} ({:.0} MiB/s) = {} writes + {} sync, cpu {}",
                if k == 0 {
                    format!("round {}:", round + 1)
                } else {
                    String::new()
                },
                fmt_dur(*total),
                mib_per_s(bytes, *total),
                fmt_dur(*writes),
                fmt_dur(total.saturating_sub(*writes)),
                fmt_dur(*cpu)
            );
        }
        println!(
            "             strata {} ({:.0} MiB/s) = {} writes + {} sync, cpu {}; log {}",
            fmt_dur(eng),
            mib_per_s(bytes, eng),
            fmt_dur(t_writes),
            fmt_dur(eng - t_writes),
            fmt_dur(cpu),
            fmt_bytes(log)
        );
        raw_rates.push(mib_per_s(bytes, raw_sides[0].1));
        behind_rates.push(mib_per_s(bytes, raw_sides[1].1));
        eng_rates.push(mib_per_s(bytes, eng));
        raw_cpu.push(raw_sides[0].2.as_secs_f64());
        behind_cpu.push(raw_sides[1].2.as_secs_f64());
        eng_cpu.push(cpu.as_secs_f64());
    }
    let (raw, behind, eng) = (
        median(&raw_rates),
        median(&behind_rates),
        median(&eng_rates),
    );
    let gib = bytes as f64 / crate::stats::GIB as f64;
    let (raw_cpu, behind_cpu, eng_cpu) = (
        median(&raw_cpu) / gib,
        median(&behind_cpu) / gib,
        median(&eng_cpu) / gib,
    );
    let what = format!(
        "append bandwidth, {} in {} writes (median of {rounds})",
        fmt_bytes(bytes),
        fmt_bytes(chunk as u64)
    );
    let strata = format!("{eng:.0} MiB/s, cpu {eng_cpu:.2} s/GiB");
    rep.add(Row {
        id: "3".into(),
        what: what.clone(),
        strata: strata.clone(),
        peer: format!("raw file write+fdatasync {raw:.0} MiB/s, cpu {raw_cpu:.2} s/GiB"),
        result: format!("{:.0}% of raw", eng / raw * 100.0),
        target: ">= 80% (issue #13)".into(),
        status: Status::of(eng / raw >= 0.80),
    });
    rep.add(Row {
        id: "3b".into(),
        what: format!(
            "{what}, against a raw file that also starts the write-back of every {} written (sync_file_range on a helper thread, as the engine's directory backend does)",
            fmt_bytes(every)
        ),
        strata,
        peer: format!("raw + write-behind {behind:.0} MiB/s, cpu {behind_cpu:.2} s/GiB"),
        result: format!("{:.0}% of raw + write-behind", eng / behind * 100.0),
        target: "context for 3: the physical limit when writing and flushing overlap".into(),
        status: Status::Info,
    });
    disk::remove(&dir)?;
    Ok(())
}

/// Writes `count` copies of `buf` to a new file at `path`, then `fdatasync`s it; with
/// `write_behind`, every that many bytes a helper thread starts the write-back of the bytes just
/// written. Returns (time of the writes, total time).
fn raw_append(
    path: &Path,
    buf: &[u8],
    count: usize,
    write_behind: Option<u64>,
) -> Res<(Duration, Duration)> {
    let mut f = File::create(path)?;
    let behind = match write_behind {
        Some(every) => Some((every, disk::WriteBehind::new(&f)?)),
        None => None,
    };
    let t = Instant::now();
    let (mut written, mut hinted) = (0u64, 0u64);
    for _ in 0..count {
        f.write_all(buf)?;
        written += buf.len() as u64;
        if let Some((every, helper)) = &behind {
            if written - hinted >= *every {
                helper.hint(hinted, written - hinted);
                hinted = written;
            }
        }
    }
    let writes = t.elapsed();
    f.sync_data()?;
    let total = t.elapsed();
    drop(behind);
    Ok((writes, total))
}

/// What one `fdatasync` costs on this disk: prints the mean, p50 and p99, returns the p50 (the
/// unit of figure 5's targets).
pub fn fsync_context(p: &Params, n: usize) -> Res<Duration> {
    std::fs::create_dir_all(&p.dir)?;
    let samples = disk::fdatasync_latency(&p.dir, n)?;
    let m = crate::stats::mean(&samples);
    println!(
        "disk: 4 KiB append + fdatasync, {n} times: mean {} p50 {} p99 {}",
        fmt_dur(m),
        fmt_dur(crate::stats::percentile(&samples, 50.0)),
        fmt_dur(crate::stats::percentile(&samples, 99.0))
    );
    Ok(crate::stats::percentile(&samples, 50.0))
}
