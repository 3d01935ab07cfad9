//! The peer: a qcow2 overlay on a qcow2 backing file, driven by `qemu-io` command scripts.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::stats::median;
use crate::Res;

/// Flags every `qemu-io` run gets. `-t writeback` is QEMU's usual guest default (host page cache,
/// data durable only after a flush); without it `qemu-io` opens images writethrough (a flush after
/// every write).
pub const QEMU_IO_FLAGS: [&str; 4] = ["-f", "qcow2", "-t", "writeback"];

/// A qcow2 overlay (`overlay.qcow2`, backing file `base.qcow2`) in its own directory.
pub struct Qcow2 {
    pub dir: PathBuf,
    pub overlay: PathBuf,
}

fn run(cmd: &mut Command) -> Res<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{:?} failed: {}{}",
            cmd,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

impl Qcow2 {
    /// `qemu-img create -f qcow2 base.qcow2 SIZE` and
    /// `qemu-img create -f qcow2 -b base.qcow2 -F qcow2 overlay.qcow2` (default 64 KiB clusters).
    pub fn create(dir: &Path, size: u64) -> Res<Self> {
        fs::create_dir_all(dir)?;
        let base = dir.join("base.qcow2");
        let overlay = dir.join("overlay.qcow2");
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&base)
            .arg(size.to_string()))?;
        run(Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2", "-b"])
            .arg(&base)
            .args(["-F", "qcow2"])
            .arg(&overlay))?;
        Ok(Qcow2 {
            dir: dir.to_path_buf(),
            overlay,
        })
    }

    /// Runs `qemu-io` on the overlay with `script` on standard input; returns its wall time.
    fn run_once(&self, script: Option<&Path>) -> Res<Duration> {
        let log_path = self.dir.join("qemu-io.log");
        let log = File::create(&log_path)?;
        let stdin = match script {
            Some(p) => Stdio::from(File::open(p)?),
            None => Stdio::null(),
        };
        let t = Instant::now();
        let status = Command::new("qemu-io")
            .args(QEMU_IO_FLAGS)
            .arg(&self.overlay)
            .stdin(stdin)
            .stdout(log.try_clone()?)
            .stderr(log)
            .status()?;
        let elapsed = t.elapsed();
        let text = fs::read_to_string(&log_path)?;
        let bad: Vec<&str> = text
            .split("qemu-io> ")
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .take(3)
            .collect();
        if !status.success() || !bad.is_empty() {
            return Err(format!("qemu-io reported: {status}: {}", bad.join(" | ")).into());
        }
        Ok(elapsed)
    }

    /// Wall time of `qemu-io` with an empty script (process start, image open, close): the median
    /// of three runs.
    pub fn startup(&self) -> Res<Duration> {
        let runs = (0..3)
            .map(|_| self.run_once(None).map(|d| d.as_secs_f64()))
            .collect::<Res<Vec<f64>>>()?;
        Ok(Duration::from_secs_f64(median(&runs)))
    }

    /// Runs a command script; returns (wall time, startup time measured just before, which the
    /// caller subtracts).
    pub fn run_script(&self, name: &str, script: &str) -> Res<(Duration, Duration)> {
        let path = self.dir.join(name);
        fs::write(&path, script)?;
        let startup = self.startup()?;
        let wall = self.run_once(Some(&path))?;
        fs::remove_file(&path)?;
        Ok((wall, startup))
    }

    /// Like [`Qcow2::run_script`], but drops the image files from the page cache right before the
    /// timed run (and before measuring startup).
    pub fn run_script_cold(&self, name: &str, script: &str) -> Res<(Duration, Duration)> {
        let path = self.dir.join(name);
        fs::write(&path, script)?;
        crate::disk::evict(&self.dir)?;
        let startup = self.startup()?;
        crate::disk::evict(&self.dir)?;
        let wall = self.run_once(Some(&path))?;
        fs::remove_file(&path)?;
        Ok((wall, startup))
    }
}

/// Runs `qemu-img ARGS`; an error carries its output.
pub fn img(args: &[&OsStr]) -> Res<()> {
    run(Command::new("qemu-img").args(args))
}

/// `qemu-img create -f qcow2 -o cluster_size=CLUSTER -b BASE -F qcow2 OVERLAY`.
pub fn create_overlay(base: &Path, overlay: &Path, cluster: u64) -> Res<()> {
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2", "-o"])
        .arg(format!("cluster_size={cluster}"))
        .arg("-b")
        .arg(base)
        .args(["-F", "qcow2"])
        .arg(overlay))
}

/// `qemu-img commit -q -f qcow2 OVERLAY` (default cache mode `writeback`, which flushes the base
/// before exiting, and empties the overlay afterwards); returns its wall time.
pub fn commit(overlay: &Path) -> Res<Duration> {
    let t = Instant::now();
    run(Command::new("qemu-img")
        .args(["commit", "-q", "-f", "qcow2"])
        .arg(overlay))?;
    Ok(t.elapsed())
}

/// Runs `qemu-io FLAGS IMAGE` with `script` on standard input (written to a file in `dir`);
/// returns its wall time. Any output (a failed pattern check, an error) is an error.
pub fn io_script(image: &Path, dir: &Path, script: &str, flags: &[&str]) -> Res<Duration> {
    let path = dir.join("script.qio");
    fs::write(&path, script)?;
    let stdin = Stdio::from(File::open(&path)?);
    let t = Instant::now();
    let out = Command::new("qemu-io")
        .args(flags)
        .arg(image)
        .stdin(stdin)
        .output()?;
    let elapsed = t.elapsed();
    fs::remove_file(&path)?;
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let bad: Vec<&str> = text
        .split("qemu-io> ")
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .take(3)
        .collect();
    if !out.status.success() || !bad.is_empty() {
        return Err(format!(
            "qemu-io on {} reported: {}: {}",
            image.display(),
            out.status,
            bad.join(" | ")
        )
        .into());
    }
    Ok(elapsed)
}

/// `write -q -P 0xNN OFFSET 4k` per write, a `flush` after every `flush_every` writes (never if
/// 0), and a final `flush`.
pub fn write_script(ops: &[(u64, u8)], block_size: u64, flush_every: usize) -> String {
    let mut s = String::with_capacity(ops.len() * 40);
    for (i, &(addr, pattern)) in ops.iter().enumerate() {
        let _ = writeln!(
            s,
            "write -q -P 0x{pattern:02x} {} {block_size}",
            addr * block_size
        );
        if flush_every > 0 && (i + 1) % flush_every == 0 {
            s.push_str("flush\n");
        }
    }
    s.push_str("flush\n");
    s
}

/// `read -q -P 0xNN OFFSET 4k` per read (qemu-io checks the pattern, as the engine checks CRCs).
pub fn read_script(reads: &[(u64, u8)], block_size: u64) -> String {
    let mut s = String::with_capacity(reads.len() * 40);
    for &(addr, pattern) in reads {
        let _ = writeln!(
            s,
            "read -q -P 0x{pattern:02x} {} {block_size}",
            addr * block_size
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts() {
        assert_eq!(
            write_script(&[(2, 0xab)], 4096, 1),
            "write -q -P 0xab 8192 4096\nflush\nflush\n"
        );
        assert_eq!(read_script(&[(1, 7)], 4096), "read -q -P 0x07 4096 4096\n");
    }
}
