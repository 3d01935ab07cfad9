//! The machine and its disk: free space, page-cache control, fsync latency, a description.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::Res;

/// Bytes available to an unprivileged writer on the filesystem holding `path` (`df`).
pub fn free_bytes(path: &Path) -> Res<u64> {
    let out = Command::new("df")
        .args(["-B1", "--output=avail"])
        .arg(path)
        .output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .ok_or_else(|| format!("cannot parse df output: {text}").into())
}

/// Errors out unless `needed` bytes (plus a 1 GiB margin) are free under `path`.
pub fn ensure_space(path: &Path, needed: u64, what: &str) -> Res<()> {
    let free = free_bytes(path)?;
    let margin = 1 << 30;
    if free < needed + margin {
        return Err(format!(
            "{what} needs {} free (+1 GiB margin) under {}, only {} available",
            crate::stats::fmt_bytes(needed),
            path.display(),
            crate::stats::fmt_bytes(free)
        )
        .into());
    }
    Ok(())
}

/// Every regular file under `dir`, recursively.
pub fn files_under(dir: &Path) -> Res<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d)? {
            let entry = entry?;
            let ty = entry.file_type()?;
            if ty.is_dir() {
                stack.push(entry.path());
            } else if ty.is_file() {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Flushes all dirty data of the machine (`sync`), so that one measurement does not pay for the
/// write-back of the one before.
pub fn sync_all() -> Res<()> {
    let t = Instant::now();
    let status = Command::new("sync").status()?;
    if t.elapsed() > Duration::from_millis(500) {
        println!(
            "    (sync of other dirty data on the machine took {})",
            crate::stats::fmt_dur(t.elapsed())
        );
    }
    if !status.success() {
        return Err("sync failed".into());
    }
    Ok(())
}

/// Drops the page cache of every file under `dir` (`dd iflag=nocache count=0`, which is
/// `posix_fadvise(DONTNEED)` over the whole file). Files must be clean: call after a sync.
pub fn evict(dir: &Path) -> Res<()> {
    sync_all()?;
    for file in files_under(dir)? {
        let status = Command::new("dd")
            .arg(format!("if={}", file.display()))
            .args(["iflag=nocache", "count=0", "status=none"])
            .status()?;
        if !status.success() {
            return Err(format!("dd could not drop the cache of {}", file.display()).into());
        }
    }
    Ok(())
}

/// Reads every file under `dir` once, so that later reads hit the page cache.
pub fn warm(dir: &Path) -> Res<()> {
    let mut buf = vec![0u8; 1 << 20];
    for file in files_under(dir)? {
        let mut f = File::open(&file)?;
        while f.read(&mut buf)? > 0 {}
    }
    Ok(())
}

/// Removes `dir` and everything in it (missing is fine).
///
/// qcow2 images written by `qemu-io` over an empty backing file are made of thousands of small
/// extents (qcow2 zero-fills the untouched part of each new 64 KiB cluster with
/// `fallocate(ZERO_RANGE)`); on a filesystem mounted with `discard`, unlinking such a file issues
/// one discard per extent and takes minutes for 1 GiB. Zero-ranging the whole file first merges
/// it into a few unwritten extents and makes the unlink take milliseconds. Not part of any
/// measurement.
pub fn remove(dir: &Path) -> Res<()> {
    if dir.exists() {
        for file in files_under(dir)? {
            if file.extension().is_some_and(|e| e == "qcow2") {
                let len = fs::metadata(&file)?.len();
                let _ = Command::new("fallocate")
                    .args(["-z", "-o", "0", "-l", &len.to_string()])
                    .arg(&file)
                    .status();
            }
        }
    }
    match fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Latency of appending 4 KiB to a file and `fdatasync`-ing it, `n` times.
pub fn fdatasync_latency(dir: &Path, n: usize) -> Res<Vec<Duration>> {
    let path = dir.join("fsync-probe");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)?;
    let block = vec![0x5au8; 4096];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f.write_all(&block)?;
        f.sync_data()?;
        samples.push(t.elapsed());
    }
    drop(f);
    fs::remove_file(&path)?;
    Ok(samples)
}

fn first_line(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
        .unwrap_or_else(|| format!("({cmd} unavailable)"))
}

/// One paragraph describing the machine: CPUs, memory, kernel, the scratch filesystem, qemu.
pub fn describe(dir: &Path) -> Vec<String> {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU".to_string(), |s| s.trim().to_string());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
    let df = Command::new("df")
        .args(["-hT"])
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .nth(1)
                .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        })
        .unwrap_or_default();
    vec![
        format!("cpu: {cpus} x {model}; memory {mem_gib:.1} GiB"),
        format!("kernel: {}", first_line("uname", &["-sr"])),
        format!("scratch fs (df -hT: device type size used avail use% mount): {df}"),
        format!("peer: {}", first_line("qemu-img", &["--version"])),
        format!(
            "load average at start (1, 5, 15 min; other tenants of this machine): {}",
            fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        ),
    ]
}

/// Starts the kernel's write-back of `len` bytes of `file` from `offset` without waiting for it
/// (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): what the engine's directory backend does for
/// bytes a later sync will flush, for the raw peers that do the same.
pub fn start_write_back(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    // SAFETY: an FFI call that reads no memory of ours; `file` is open for the whole call.
    unsafe {
        libc::sync_file_range(
            file.as_raw_fd(),
            offset as i64,
            len as i64,
            libc::SYNC_FILE_RANGE_WRITE,
        );
    }
}

/// A helper thread that starts the write-back of ranges of one file ([`start_write_back`]), as
/// the engine's directory backend does, for the raw peers that overlap writing and flushing the
/// same way. Dropping it waits for the thread.
pub struct WriteBehind {
    ranges: Option<std::sync::mpsc::SyncSender<(u64, u64)>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WriteBehind {
    pub fn new(file: &File) -> Res<WriteBehind> {
        let file = file.try_clone()?;
        let (ranges, jobs) = std::sync::mpsc::sync_channel::<(u64, u64)>(64);
        let thread = std::thread::spawn(move || {
            for (offset, len) in jobs {
                start_write_back(&file, offset, len);
            }
        });
        Ok(WriteBehind {
            ranges: Some(ranges),
            thread: Some(thread),
        })
    }

    /// Hands the range to the thread (dropped if 64 are waiting, as the engine drops them).
    pub fn hint(&self, offset: u64, len: u64) {
        if let Some(ranges) = &self.ranges {
            let _ = ranges.try_send((offset, len));
        }
    }
}

impl Drop for WriteBehind {
    fn drop(&mut self) {
        self.ranges.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The CPU time this process has used, all threads (`CLOCK_PROCESS_CPUTIME_ID`).
pub fn process_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec, and the clock id is a constant the kernel
    // knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// The CPU time this thread has used (`CLOCK_THREAD_CPUTIME_ID`).
pub fn thread_cpu_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec, and the clock id is a constant the kernel
    // knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return Duration::ZERO;
    }
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// CPU time this thread has run and time it has waited on a run queue for a CPU
/// (`/proc/thread-self/schedstat`), to tell a slow phase from a starved one on a shared machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct Sched {
    pub cpu: Duration,
    pub wait: Duration,
}

impl Sched {
    pub fn now() -> Sched {
        // schedstat's run time only advances at scheduler events (a tick, 4 ms here, for a busy
        // thread), so CPU time comes from the thread CPU clock, which is exact.
        let text = fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
        let wait = text
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        Sched {
            cpu: thread_cpu_time(),
            wait: Duration::from_nanos(wait),
        }
    }

    /// What happened since `self`.
    pub fn since(self) -> Sched {
        let now = Sched::now();
        Sched {
            cpu: now.cpu.saturating_sub(self.cpu),
            wait: now.wait.saturating_sub(self.wait),
        }
    }

    pub fn describe(self) -> String {
        format!(
            "cpu {}, waited {} for a cpu",
            crate::stats::fmt_dur(self.cpu),
            crate::stats::fmt_dur(self.wait)
        )
    }
}
