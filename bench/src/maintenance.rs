//! Figures 9-11: the operations that reshape the log.
//!
//! * **9**: merging a snapshot partition into the baseline (`Store::merge`) against
//!   `qemu-img commit` of a qcow2 overlay holding the same writes onto its base, which holds the
//!   same image as the engine's baseline. 9 uses 4 KiB qcow2 clusters (the engine's block size),
//!   9b qcow2's default 64 KiB clusters. Beside it, the floor of any in-place merge: the same
//!   blocks written into a copy of the raw image, one `pwrite` each in address order with the
//!   same write-behind as the merge, then one `fdatasync` (no reading, no checking).
//! * **10**: in-place compaction (`Store::compact`) of a partition of random 4 KiB writes, of which
//!   about a third were overwritten inside the partition: partition bytes processed per second,
//!   as a share of a raw copy of the same number of bytes on the same disk (read a cold file, write
//!   a file, `fdatasync`), measured just before and just after.
//! * **11**: the size of an incremental copy stream (`Store::send` with a base) against the bytes
//!   of data changed since the base; the stream is received into a second store and checked.
//!
//! Every timed phase starts after a machine-wide `sync`, with the files it reads in the page
//! cache (9: both sides just wrote them) or dropped from it (10: both the engine and the raw
//! copy read cold files).

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use pollster::block_on;
use rand::rngs::StdRng;
use rand::Rng;
use strata_engine::storage::dir::DirStorage;
use strata_engine::{SendOptions, Store, StreamReceiver, VolumeId};

use crate::disk;
use crate::engine::{self, DirStore, BLOCK};
use crate::qemu;
use crate::report::{Report, Row, Status};
use crate::stats::{fmt_bytes, fmt_dur, median, mib_per_s, MIB};
use crate::{Params, Res};

/// Bytes per chunk of every image and raw file the bench streams.
const CHUNK_BYTES: usize = MIB as usize;

/// The fill byte of baseline block `addr` (never zero, so qcow2 allocates every base cluster).
fn base_fill(seed: u64, addr: u64) -> u8 {
    let x = (addr ^ seed)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        .rotate_left(29);
    (x % 255) as u8 + 1
}

/// `n` distinct block addresses in random order, each with a fill byte that differs from the
/// baseline's.
fn distinct_writes(rng: &mut StdRng, seed: u64, blocks: u64, n: usize) -> Vec<(u64, u8)> {
    let mut addrs: Vec<u64> = (0..blocks).collect();
    let n = n.min(addrs.len());
    // Partial Fisher-Yates: the first n slots become a uniform random sample.
    for i in 0..n {
        let j = rng.random_range(i..addrs.len());
        addrs.swap(i, j);
    }
    addrs[..n]
        .iter()
        .map(|&a| {
            let mut fill = rng.random_range(1..=255u8);
            if fill == base_fill(seed, a) {
                fill = fill.wrapping_add(1).max(1);
            }
            (a, fill)
        })
        .collect()
}

/// Streams the baseline image (block `a` filled with `base_fill(seed, a)`) in 1 MiB chunks.
fn for_each_image_chunk(seed: u64, blocks: u64, f: &mut dyn FnMut(&[u8]) -> Res<()>) -> Res<()> {
    let per_chunk = CHUNK_BYTES as u64 / BLOCK;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut addr = 0;
    while addr < blocks {
        let n = per_chunk.min(blocks - addr);
        for (k, block) in buf[..(n * BLOCK) as usize]
            .chunks_mut(BLOCK as usize)
            .enumerate()
        {
            block.fill(base_fill(seed, addr + k as u64));
        }
        f(&buf[..(n * BLOCK) as usize])?;
        addr += n;
    }
    Ok(())
}

/// A store in `dir` whose baseline is the image of [`for_each_image_chunk`].
fn import_store(dir: &Path, seed: u64, blocks: u64) -> Res<DirStore> {
    disk::remove(dir)?;
    let mut import = block_on(Store::import_baseline(
        DirStorage::open(dir)?,
        BLOCK as u32,
        Some(blocks * BLOCK),
        None,
        engine::clock(),
    ))?;
    for_each_image_chunk(seed, blocks, &mut |chunk| {
        block_on(import.push(chunk))?;
        Ok(())
    })?;
    Ok(block_on(import.finish())?)
}

fn write_blocks(store: &mut DirStore, writes: &[(u64, u8)]) -> Res<()> {
    let mut buf = vec![0u8; BLOCK as usize];
    for &(addr, fill) in writes {
        buf.fill(fill);
        block_on(store.write(addr, &buf))?;
    }
    Ok(())
}

/// Up to `n` of `writes`, spread over the list, for read-back checks.
fn sample(writes: &[(u64, u8)], n: usize) -> Vec<(u64, u8)> {
    let step = (writes.len() / n.max(1)).max(1);
    writes.iter().step_by(step).copied().collect()
}

fn files_bytes(dir: &Path) -> Res<u64> {
    let mut total = 0;
    for f in disk::files_under(dir)? {
        total += fs::metadata(f)?.len();
    }
    Ok(total)
}

/// One side of figure 9 for qcow2 with `cluster` byte clusters: (commit wall time, fixed cost
/// of an empty commit, overlay size).
fn qcow2_commit(
    dir: &Path,
    raw: &Path,
    cluster: u64,
    writes: &[(u64, u8)],
    check: &[(u64, u8)],
) -> Res<(Duration, Duration, u64)> {
    fs::create_dir_all(dir)?;
    let base = dir.join("base.qcow2");
    let overlay = dir.join("overlay.qcow2");
    let cluster_opt = format!("cluster_size={cluster}");
    qemu::img(&[
        "convert".as_ref(),
        "-q".as_ref(),
        "-f".as_ref(),
        "raw".as_ref(),
        "-O".as_ref(),
        "qcow2".as_ref(),
        "-o".as_ref(),
        cluster_opt.as_ref(),
        raw.as_os_str(),
        base.as_os_str(),
    ])?;
    qemu::create_overlay(&base, &overlay, cluster)?;
    qemu::io_script(
        &overlay,
        dir,
        &qemu::write_script(writes, BLOCK, 0),
        qemu::QEMU_IO_FLAGS.as_slice(),
    )?;
    let overlay_bytes = fs::metadata(&overlay)?.len();
    // The fixed cost of `qemu-img commit` (process start, opening both images, flushes): an
    // overlay with no data, committed three times, median.
    let empty = dir.join("empty.qcow2");
    let mut fixed = Vec::new();
    for _ in 0..3 {
        qemu::create_overlay(&base, &empty, cluster)?;
        disk::sync_all()?;
        fixed.push(qemu::commit(&empty)?.as_secs_f64());
        fs::remove_file(&empty)?;
    }
    let fixed = Duration::from_secs_f64(median(&fixed));
    disk::sync_all()?;
    let wall = qemu::commit(&overlay)?;
    // Not timed: the base now reads the writes.
    qemu::io_script(
        &base,
        dir,
        &qemu::read_script(check, BLOCK),
        qemu::QEMU_IO_FLAGS.as_slice(),
    )?;
    Ok((wall, fixed, overlay_bytes))
}

/// Blocks per window of the engine's merge (`MERGE_WINDOW_BYTES` in `engine/src/store/ops.rs`,
/// 1 MiB of 4 KiB blocks), which the floor hints at the same pace.
const MERGE_WINDOW_BLOCKS: usize = (1 << 20) / BLOCK as usize;

/// The physical floor of an in-place merge: the same blocks written into a copy of the image
/// (`raw`, copied untimed), one 4 KiB `pwrite` each in address order, with the write-back of
/// every 256 blocks (1 MiB, the engine's merge window) started on a helper thread as the merge
/// does, then one `fdatasync`.
fn raw_in_place(dir: &Path, raw: &Path, writes: &[(u64, u8)]) -> Res<Duration> {
    use std::os::unix::fs::FileExt;
    let copy = dir.join("floor.raw");
    fs::copy(raw, &copy)?;
    let mut sorted = writes.to_vec();
    sorted.sort_unstable();
    let f = fs::OpenOptions::new().write(true).open(&copy)?;
    let behind = disk::WriteBehind::new(&f)?;
    disk::sync_all()?;
    let mut buf = vec![0u8; BLOCK as usize];
    let t = Instant::now();
    for window in sorted.chunks(MERGE_WINDOW_BLOCKS) {
        for &(addr, fill) in window {
            buf.fill(fill);
            f.write_all_at(&buf, addr * BLOCK)?;
        }
        let (first, last) = (window[0].0, window[window.len() - 1].0);
        behind.hint(first * BLOCK, (last + 1 - first) * BLOCK);
    }
    f.sync_data()?;
    let elapsed = t.elapsed();
    drop(behind);
    drop(f);
    fs::remove_file(&copy)?;
    Ok(elapsed)
}

/// Figure 9: merge into the baseline vs `qemu-img commit` (4 KiB and 64 KiB clusters), in
/// `MERGE_ROUNDS` rounds that alternate between the three (each round builds its stores and
/// images afresh, untimed); the figure compares the medians.
pub fn merge_vs_commit(p: &Params, rep: &mut Report, rng: &mut StdRng) -> Res<()> {
    const MERGE_ROUNDS: usize = 3;
    let dir = p.dir.join("fig9");
    disk::remove(&dir)?;
    fs::create_dir_all(&dir)?;
    let blocks = p.ops_bytes / BLOCK;
    let n = (blocks / 4) as usize;
    let volume = blocks * BLOCK;
    // Engine: baseline + log; qcow2: raw file, a base and an overlay (64 KiB clusters: up to
    // the volume).
    disk::ensure_space(&p.dir, 4 * volume + 2 * n as u64 * BLOCK, "figure 9")?;
    let seed = p.seed;
    let writes = distinct_writes(rng, seed, blocks, n);
    let check = sample(&writes, 2000);
    let changed = n as u64 * BLOCK;
    println!(
        "[9] merge of a snapshot partition with {n} changed 4 KiB blocks ({}, distinct addresses) \
         into a {} baseline image vs qemu-img commit of a qcow2 overlay with the same writes; \
         {MERGE_ROUNDS} alternating rounds",
        fmt_bytes(changed),
        fmt_bytes(volume)
    );
    // The same image as a raw file, converted to a qcow2 base in every round.
    let raw = dir.join("base.raw");
    {
        let mut f = File::create(&raw)?;
        for_each_image_chunk(seed, blocks, &mut |chunk| {
            f.write_all(chunk)?;
            Ok(())
        })?;
    }
    const CLUSTERS: [u64; 2] = [4096, 65536];
    let mut engine_times = Vec::new();
    let mut floor_times = Vec::new();
    // Per cluster size: (commit wall, fixed cost, wall - fixed) per round.
    let mut qcow2_times: [Vec<(f64, f64, f64)>; 2] = [Vec::new(), Vec::new()];
    for round in 1..=MERGE_ROUNDS {
        let edir = dir.join("engine");
        let mut store = import_store(&edir, seed, blocks)?;
        write_blocks(&mut store, &writes)?;
        let snapshot = block_on(store.snapshot(Some("to-merge")))?;
        let partition_bytes = store.volume(snapshot)?.bytes;
        disk::sync_all()?;
        let sched = disk::Sched::now();
        let t = Instant::now();
        let merged = block_on(store.merge(snapshot, &mut |_| true))?;
        let e_time = t.elapsed();
        let sched = sched.since();
        engine::read_loop(&store, VolumeId::BASELINE, &check)?;
        engine::read_loop(&store, store.head(), &check)?;
        drop(store);
        disk::remove(&edir)?;
        println!(
            "    round {round}: strata merge of {merged} partition ({} segment) {} ({}); baseline checked",
            fmt_bytes(partition_bytes),
            fmt_dur(e_time),
            sched.describe()
        );
        engine_times.push(e_time.as_secs_f64());
        let floor = raw_in_place(&dir, &raw, &writes)?;
        println!(
            "             floor: the same {n} blocks written in place into a copy of the raw image (4 KiB pwrites in address order, write-behind, fdatasync) {}",
            fmt_dur(floor)
        );
        floor_times.push(floor.as_secs_f64());
        for (i, cluster) in CLUSTERS.into_iter().enumerate() {
            let qdir = dir.join(format!("qcow2-{cluster}"));
            let (wall, fixed, overlay_bytes) = qcow2_commit(&qdir, &raw, cluster, &writes, &check)?;
            disk::remove(&qdir)?;
            let q_time = wall.saturating_sub(fixed);
            println!(
                "             qcow2 {} clusters: qemu-img commit wall {} - empty commit {} = {}; overlay {}; base checked with qemu-io",
                fmt_bytes(cluster),
                fmt_dur(wall),
                fmt_dur(fixed),
                fmt_dur(q_time),
                fmt_bytes(overlay_bytes)
            );
            qcow2_times[i].push((
                wall.as_secs_f64(),
                fixed.as_secs_f64(),
                q_time.as_secs_f64(),
            ));
        }
    }
    disk::remove(&dir)?;
    let e_time = median(&engine_times);
    let floor = median(&floor_times);
    for (i, (id, cluster)) in [("9", CLUSTERS[0]), ("9b", CLUSTERS[1])]
        .into_iter()
        .enumerate()
    {
        let pick = |f: fn(&(f64, f64, f64)) -> f64| -> f64 {
            median(&qcow2_times[i].iter().map(f).collect::<Vec<_>>())
        };
        let (wall, fixed, q_time) = (pick(|t| t.0), pick(|t| t.1), pick(|t| t.2));
        let secs = Duration::from_secs_f64;
        let ratio = q_time / e_time;
        let wall_ratio = wall / e_time;
        rep.add(Row {
            id: id.into(),
            what: format!(
                "merge a snapshot partition into the baseline vs `qemu-img commit`, {n} changed 4 KiB blocks ({}) over a {} image, qcow2 {} clusters (median of {MERGE_ROUNDS})",
                fmt_bytes(changed),
                fmt_bytes(volume),
                fmt_bytes(cluster)
            ),
            strata: format!(
                "{} ({:.0} MiB/s of changed data; raw in-place floor {}: {:.2}x of it)",
                fmt_dur(secs(e_time)),
                mib_per_s(changed, secs(e_time)),
                fmt_dur(secs(floor)),
                e_time / floor
            ),
            peer: format!(
                "commit {} ({:.0} MiB/s; wall {}, empty commit {}: medians of wall - empty, wall, empty)",
                fmt_dur(secs(q_time)),
                mib_per_s(changed, secs(q_time)),
                fmt_dur(secs(wall)),
                fmt_dur(secs(fixed))
            ),
            result: format!("{ratio:.2}x (wall-clock {wall_ratio:.2}x)"),
            target: ">= 2x (issue #13)".into(),
            status: Status::of(ratio >= 2.0),
        });
    }
    Ok(())
}

/// Reads `path` sequentially in 1 MiB chunks; returns the bytes read.
fn read_file(path: &Path) -> Res<u64> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            return Ok(total);
        }
        total += n as u64;
    }
}

/// Writes `bytes` to a new file in 1 MiB chunks and `fdatasync`s it.
fn write_file(path: &Path, bytes: u64, fill: u8) -> Res<()> {
    let buf = vec![fill; CHUNK_BYTES];
    let mut f = File::create(path)?;
    let mut left = bytes;
    while left > 0 {
        let n = left.min(CHUNK_BYTES as u64) as usize;
        f.write_all(&buf[..n])?;
        left -= n as u64;
    }
    f.sync_data()?;
    Ok(())
}

/// Drops one file from the page cache (it must be clean).
fn evict_file(path: &Path) -> Res<()> {
    let status = Command::new("dd")
        .arg(format!("if={}", path.display()))
        .args(["iflag=nocache", "count=0", "status=none"])
        .status()?;
    if !status.success() {
        return Err(format!("dd could not drop the cache of {}", path.display()).into());
    }
    Ok(())
}

/// A raw copy of `bytes`: read `from` cold, write `to` and `fdatasync` it. Returns (read time,
/// write time).
fn raw_copy(from: &Path, to: &Path, bytes: u64) -> Res<(Duration, Duration)> {
    disk::sync_all()?;
    evict_file(from)?;
    let t = Instant::now();
    let read = read_file(from)?;
    let t_read = t.elapsed();
    if read < bytes {
        return Err(format!("{} holds only {read} bytes", from.display()).into());
    }
    let t = Instant::now();
    write_file(to, bytes, 0x5a)?;
    Ok((t_read, t.elapsed()))
}

/// Figure 10: in-place compaction throughput against a raw read+write of the same bytes.
pub fn compaction_throughput(p: &Params, rep: &mut Report, rng: &mut StdRng) -> Res<()> {
    let dir = p.dir.join("fig10");
    disk::remove(&dir)?;
    fs::create_dir_all(&dir)?;
    let blocks = p.ops_bytes / BLOCK;
    let n = blocks as usize;
    disk::ensure_space(&p.dir, 4 * p.ops_bytes, "figure 10")?;
    println!(
        "[10] in-place compaction of a partition of {n} random 4 KiB writes ({}) over {blocks} blocks, vs a raw copy (cold read + write + fdatasync) of as many bytes",
        fmt_bytes(n as u64 * BLOCK)
    );
    let ops = crate::figures::random_ops(rng, blocks, n);
    let mut last = vec![0u8; blocks as usize];
    for &(a, fill) in &ops {
        last[a as usize] = fill;
    }
    let edir = dir.join("engine");
    let mut store = engine::create(&edir, blocks)?;
    write_blocks(&mut store, &ops)?;
    let snapshot = block_on(store.snapshot(Some("to-compact")))?;
    let segment = disk::files_under(&edir)?
        .into_iter()
        .filter(|f| {
            f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("seg"))
        })
        .max_by_key(|f| fs::metadata(f).map_or(0, |m| m.len()))
        .ok_or("no segment file in the store")?;
    let partition_bytes = store.volume(snapshot)?.bytes;

    // Raw copy before: read the partition's segment file cold, write a file as large.
    let (r1, w1) = raw_copy(&segment, &dir.join("raw-1.bin"), partition_bytes)?;
    disk::sync_all()?;
    disk::evict(&edir)?;
    let sched = disk::Sched::now();
    let t = Instant::now();
    let report = block_on(store.compact(snapshot, &mut |_| true))?;
    let c_time = t.elapsed();
    let sched = sched.since();
    // Raw copy after: read the file written before (cold), write another.
    let (r2, w2) = raw_copy(
        &dir.join("raw-1.bin"),
        &dir.join("raw-2.bin"),
        partition_bytes,
    )?;
    // Not timed: the snapshot still reads every block's last write.
    let reads: Vec<(u64, u8)> = (0..blocks)
        .step_by(((blocks / 4000) as usize).max(1))
        .map(|a| (a, last[a as usize]))
        .filter(|&(_, fill)| fill != 0)
        .collect();
    engine::read_loop(&store, snapshot, &reads)?;
    let store_bytes = files_bytes(&edir)?;
    drop(store);
    disk::remove(&dir)?;

    let raw = [(r1, w1), (r2, w2)];
    for (i, (r, w)) in raw.iter().enumerate() {
        println!(
            "    raw copy {} of {}: read {} ({:.0} MiB/s) + write+fdatasync {} ({:.0} MiB/s) = {:.0} MiB/s",
            if i == 0 { "before" } else { "after" },
            fmt_bytes(partition_bytes),
            fmt_dur(*r),
            mib_per_s(partition_bytes, *r),
            fmt_dur(*w),
            mib_per_s(partition_bytes, *w),
            mib_per_s(partition_bytes, *r + *w)
        );
    }
    let raw_rate = median(
        &raw.iter()
            .map(|(r, w)| mib_per_s(partition_bytes, *r + *w))
            .collect::<Vec<_>>(),
    );
    let c_rate = mib_per_s(report.bytes_before, c_time);
    println!(
        "    strata: compact {} -> {} ({} blocks kept, {} dropped) in {} ({}); store now {}",
        fmt_bytes(report.bytes_before),
        fmt_bytes(report.bytes_after),
        report.blocks_kept,
        report.blocks_dropped,
        fmt_dur(c_time),
        sched.describe(),
        fmt_bytes(store_bytes)
    );
    let share = c_rate / raw_rate;
    rep.add(Row {
        id: "10".into(),
        what: format!(
            "in-place compaction of a {} partition of random 4 KiB writes ({:.0}% of its blocks overwritten in it), page cache dropped",
            fmt_bytes(report.bytes_before),
            100.0 * report.blocks_dropped as f64
                / (report.blocks_kept + report.blocks_dropped).max(1) as f64
        ),
        strata: format!(
            "{c_rate:.0} MiB/s of partition ({} -> {} in {})",
            fmt_bytes(report.bytes_before),
            fmt_bytes(report.bytes_after),
            fmt_dur(c_time)
        ),
        peer: format!("raw cold read + write + fdatasync of as many bytes {raw_rate:.0} MiB/s (mean of before/after)"),
        result: format!("{:.0}% of raw", share * 100.0),
        target: ">= 50%".into(),
        status: Status::of(share >= 0.5),
    });
    Ok(())
}

/// Writes a stream from `store` to `path`; returns (report, time including `fdatasync`).
fn send_to_file(
    store: &DirStore,
    options: &SendOptions,
    path: &Path,
) -> Res<(strata_engine::CopyReport, Duration)> {
    let mut f = File::create(path)?;
    let t = Instant::now();
    let mut io_error = None;
    let report = block_on(store.send(options, &mut |chunk| {
        if let Err(e) = f.write_all(chunk) {
            io_error.get_or_insert(e);
        }
        Ok(())
    }))?;
    if let Some(e) = io_error {
        return Err(e.into());
    }
    f.sync_data()?;
    Ok((report, t.elapsed()))
}

/// Applies the stream in `path` to a receiver in 1 MiB pieces.
fn receive_file(mut receiver: StreamReceiver<DirStorage>, path: &Path) -> Res<DirStore> {
    let mut f = File::open(path)?;
    let mut buf = vec![0u8; CHUNK_BYTES];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        block_on(receiver.push(&buf[..n]))?;
    }
    Ok(block_on(receiver.finish())?.0)
}

/// Figure 11: incremental stream size against the changed data.
pub fn incremental_stream(p: &Params, rep: &mut Report, rng: &mut StdRng) -> Res<()> {
    let dir = p.dir.join("fig11");
    disk::remove(&dir)?;
    fs::create_dir_all(&dir)?;
    let blocks = p.ops_bytes / BLOCK;
    let base_writes = (blocks / 16) as usize;
    let n = (blocks / 4) as usize;
    disk::ensure_space(&p.dir, 6 * n as u64 * BLOCK, "figure 11")?;
    let changed = n as u64 * BLOCK;
    println!(
        "[11] incremental stream of {n} changed 4 KiB blocks ({}, distinct addresses) after a base snapshot of {base_writes} writes, over {}",
        fmt_bytes(changed),
        fmt_bytes(blocks * BLOCK)
    );
    let src = dir.join("source");
    let mut store = engine::create(&src, blocks)?;
    write_blocks(
        &mut store,
        &crate::figures::random_ops(rng, blocks, base_writes),
    )?;
    let base = block_on(store.snapshot(Some("base")))?;
    let writes = distinct_writes(rng, p.seed, blocks, n);
    write_blocks(&mut store, &writes)?;
    let newest = block_on(store.snapshot(Some("changed")))?;

    // The target gets the base first (full stream, not measured).
    let full_path = dir.join("full.stream");
    send_to_file(
        &store,
        &SendOptions {
            upto: Some(base),
            ..SendOptions::default()
        },
        &full_path,
    )?;
    let tdir = dir.join("target");
    disk::remove(&tdir)?;
    let receiver = StreamReceiver::new_store(DirStorage::open(&tdir)?, engine::clock());
    let target = receive_file(receiver, &full_path)?;
    fs::remove_file(&full_path)?;

    let path = dir.join("incremental.stream");
    let (report, t_send) = send_to_file(
        &store,
        &SendOptions {
            base: Some(base),
            ..SendOptions::default()
        },
        &path,
    )?;
    let stream_bytes = fs::metadata(&path)?.len();
    let t = Instant::now();
    let target = receive_file(StreamReceiver::into_store(target), &path)?;
    let t_receive = t.elapsed();
    // Not timed: the target's copy of the newest snapshot reads the changed blocks.
    let check = sample(&writes, 2000);
    engine::read_loop(&target, newest, &check)?;
    drop(target);
    drop(store);
    disk::remove(&dir)?;
    let ratio = stream_bytes as f64 / changed as f64;
    println!(
        "    strata: stream {} for {} of changed data ({} entries, {} volume); send to a file + fdatasync {} ({:.0} MiB/s); receive {} ({:.0} MiB/s); target checked",
        fmt_bytes(stream_bytes),
        fmt_bytes(changed),
        report.entries,
        report.volumes,
        fmt_dur(t_send),
        mib_per_s(stream_bytes, t_send),
        fmt_dur(t_receive),
        mib_per_s(stream_bytes, t_receive)
    );
    rep.add(Row {
        id: "11".into(),
        what: format!(
            "incremental copy stream (Store::send with a base) vs changed data, {n} changed 4 KiB blocks"
        ),
        strata: format!("{stream_bytes} B stream ({} entries)", report.entries),
        peer: format!("{changed} B changed"),
        result: format!("{ratio:.4}x"),
        target: "<= 1.05x".into(),
        status: Status::of(ratio <= 1.05),
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn distinct_writes_are_distinct_and_differ_from_the_baseline() {
        let mut rng = StdRng::seed_from_u64(7);
        let w = distinct_writes(&mut rng, 7, 100, 60);
        assert_eq!(w.len(), 60);
        let mut addrs: Vec<u64> = w.iter().map(|(a, _)| *a).collect();
        addrs.sort_unstable();
        addrs.dedup();
        assert_eq!(addrs.len(), 60);
        assert!(w.iter().all(|&(a, f)| f != 0 && f != base_fill(7, a)));
    }

    #[test]
    fn image_chunks_cover_the_volume() {
        let mut total = 0u64;
        for_each_image_chunk(3, 300, &mut |c| {
            total += c.len() as u64;
            assert!(c.iter().all(|&b| b != 0));
            Ok(())
        })
        .unwrap();
        assert_eq!(total, 300 * BLOCK);
    }
}
