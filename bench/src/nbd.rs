//! Figure 12: `strata serve` against `qemu-nbd` serving a qcow2, both driven by the same real
//! client, `qemu-img convert`, over a Unix socket: a raw image (a quarter of its 64 KiB regions
//! random data, the rest zeros, as a lightly used disk) is converted into the export (`-n`, then
//! the client's final flush), and the export is converted back out to a raw file. The ratio is
//! qemu-nbd's time over strata's (above 1 means strata is faster).
//!
//! Needs the `strata` binary of the same build next to this one
//! (`cargo build --release -p strata-cli -p strata-bench`).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;

use crate::report::{Report, Row, Status};
use crate::stats::{fmt_bytes, fmt_dur};
use crate::{Params, Res};

const REGION: usize = 64 * 1024;

fn run(cmd: &mut Command) -> Res<()> {
    let out = cmd.output()?;
    if !out.status.success() {
        return Err(format!(
            "{cmd:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

fn strata_binary() -> Res<PathBuf> {
    let exe = std::env::current_exe()?;
    let path = exe.with_file_name("strata");
    if !path.is_file() {
        return Err(format!(
            "{} is missing: build it with `cargo build --release -p strata-cli`",
            path.display()
        )
        .into());
    }
    Ok(path)
}

/// Waits until `socket` accepts connections (at most 10 s).
fn wait_for(socket: &Path) -> Res<()> {
    let start = Instant::now();
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        if start.elapsed() > Duration::from_secs(10) {
            return Err(format!("{} never accepted", socket.display()).into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Times `qemu-img convert` into the export at `uri` and back out, with the files cold.
fn convert_both_ways(image: &Path, uri: &str, out: &Path) -> Res<(Duration, Duration)> {
    let dir = image.parent().ok_or("image has no directory")?;
    cold(dir)?;
    let t = Instant::now();
    run(Command::new("qemu-img")
        .args(["convert", "-n", "-f", "raw", "-O", "raw"])
        .arg(image)
        .arg(uri))?;
    let into = t.elapsed();
    cold(dir)?;
    let t = Instant::now();
    run(Command::new("qemu-img")
        .args(["convert", "-f", "raw", "-O", "raw"])
        .arg(uri)
        .arg(out))?;
    let out_of = t.elapsed();
    Ok((into, out_of))
}

/// Everything written is on disk, and the files under `dir` out of the page cache.
fn cold(dir: &Path) -> Res<()> {
    crate::disk::sync_all()?;
    crate::disk::evict(dir)
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn convert_through_nbd(p: &Params, rep: &mut Report, rng: &mut StdRng) -> Res<()> {
    let strata = strata_binary()?;
    let dir = p.dir.join("nbd");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let size = p.volume_bytes;
    let image = dir.join("image.raw");
    {
        let mut f = File::create(&image)?;
        let mut buf = vec![0u8; REGION];
        for _ in 0..size as usize / REGION {
            if rng.random_range(0..4) == 0 {
                rng.fill(&mut buf[..]);
            } else {
                buf.fill(0);
            }
            f.write_all(&buf)?;
        }
        f.sync_all()?;
    }
    let expected = fs::read(&image)?;

    // Strata.
    let store = dir.join("store");
    run(Command::new(&strata).arg("create").arg(&store).args([
        "--blocks",
        &(size / 4096).to_string(),
        "-q",
    ]))?;
    let socket = dir.join("strata.sock");
    let server = Killed(
        Command::new(&strata)
            .arg("serve")
            .arg(&store)
            .arg("--socket")
            .arg(&socket)
            .arg("-q")
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_for(&socket)?;
    let uri = format!("nbd+unix:///head?socket={}", socket.display());
    let strata_out = dir.join("strata-out.raw");
    let (s_into, s_out) = convert_both_ways(&image, &uri, &strata_out)?;
    drop(server);
    if fs::read(&strata_out)? != expected {
        return Err("the image read back from strata serve differs".into());
    }
    let store_bytes: u64 = fs::read_dir(&store)?
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum();
    fs::remove_dir_all(&store)?;
    fs::remove_file(&strata_out)?;

    // qemu-nbd serving a qcow2 (64 KiB clusters, writeback cache: durable at the client's flush).
    let qcow2 = dir.join("peer.qcow2");
    run(Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&qcow2)
        .arg(size.to_string()))?;
    let qsocket = dir.join("qemu.sock");
    let peer = Killed(
        Command::new("qemu-nbd")
            .args(["-f", "qcow2", "--cache=writeback", "--persistent", "-k"])
            .arg(&qsocket)
            .arg(&qcow2)
            .stdout(Stdio::null())
            .spawn()?,
    );
    wait_for(&qsocket)?;
    let quri = format!("nbd+unix:///?socket={}", qsocket.display());
    let peer_out = dir.join("peer-out.raw");
    let (q_into, q_out) = convert_both_ways(&image, &quri, &peer_out)?;
    drop(peer);
    if fs::read(&peer_out)? != expected {
        return Err("the image read back from qemu-nbd differs".into());
    }
    let _ = fs::remove_dir_all(&dir);

    let mib = size as f64 / (1 << 20) as f64;
    for (id, way, s, q) in [
        ("12a", "into", s_into, q_into),
        ("12b", "out of", s_out, q_out),
    ] {
        let ratio = q.as_secs_f64() / s.as_secs_f64();
        rep.add(Row {
            id: id.into(),
            what: format!(
                "`qemu-img convert` of a {} raw image (1/4 data) {way} the export, Unix socket, files cold",
                fmt_bytes(size)
            ),
            strata: format!(
                "strata serve {} ({:.0} MiB/s){}",
                fmt_dur(s),
                mib / s.as_secs_f64(),
                if id == "12a" {
                    format!(", store {}", fmt_bytes(store_bytes))
                } else {
                    String::new()
                }
            ),
            peer: format!("qemu-nbd + qcow2 {} ({:.0} MiB/s)", fmt_dur(q), mib / q.as_secs_f64()),
            result: format!("{ratio:.2}x qemu-nbd"),
            target: ">= 1x".into(),
            status: Status::of(ratio >= 1.0),
        });
    }
    Ok(())
}
