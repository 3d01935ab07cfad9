//! Helpers shared by the end-to-end tests that run the `strata` binary.

#![allow(dead_code)] // each test crate uses a different part

use std::ffi::OsStr;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// Runs `strata` with `args` and `stdin` (empty when `None`), capturing its output.
pub fn run<I, S>(args: I, stdin: Option<&[u8]>) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn strata");
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.unwrap_or_default().to_vec();
    let feeder = std::thread::spawn(move || {
        // The CLI may exit before reading everything (on an error): ignore EPIPE.
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("wait for strata");
    feeder.join().expect("stdin feeder");
    out
}

/// Runs `strata` and asserts it succeeded; returns stdout.
pub fn ok<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    ok_in(args, None)
}

/// Like [`ok`], with `stdin`.
pub fn ok_in<I, S>(args: I, stdin: Option<&[u8]>) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    ok_out(args, stdin).stdout
}

/// Runs `strata`, asserts it succeeded and returns its whole output (stdout and stderr).
pub fn ok_out<I, S>(args: I, stdin: Option<&[u8]>) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = run(&args, stdin);
    assert!(
        out.status.success(),
        "strata {args:?} failed with {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// [`ok`] as text.
pub fn ok_text<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    String::from_utf8(ok(args)).expect("utf-8 output")
}

/// Runs `strata`, asserts exit code 1 with `error[code]: ...` on stderr; returns stderr.
pub fn fails_with<I, S>(args: I, stdin: Option<&[u8]>, code: &str) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = run(&args, stdin);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "strata {args:?}: expected exit 1, stderr: {stderr}"
    );
    assert!(
        stderr.starts_with(&format!("error[{code}]: ")),
        "strata {args:?}: expected error[{code}], got: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// Asserts that `strata args` is a usage error (exit 2).
pub fn usage_error<I, S>(args: I)
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let out = run(&args, None);
    assert_eq!(
        out.status.code(),
        Some(2),
        "strata {args:?}: expected a usage error, stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// Deterministic bytes that differ from block to block (xorshift).
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

pub fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("valid JSON")
}

/// The whole image of `volume` (`head`, `baseline` or a number) of the store in `dir`.
pub fn export(dir: &str, volume: &str) -> Vec<u8> {
    ok(["export", dir, "--volume", volume, "-o", "-"])
}

/// `(id, kind, label, parent)` of every volume `strata volumes --json` lists.
pub fn volumes(dir: &str) -> Vec<(u64, String, String, Option<u64>)> {
    json(&ok(["volumes", dir, "--json"]))
        .as_array()
        .expect("array")
        .iter()
        .map(|v| {
            (
                v["id"].as_u64().unwrap(),
                v["kind"].as_str().unwrap().to_string(),
                v["label"].as_str().unwrap().to_string(),
                v["parent"].as_u64(),
            )
        })
        .collect()
}

/// The identifiers of the volumes `strata volumes` lists.
pub fn volume_ids(dir: &str) -> Vec<u64> {
    volumes(dir).into_iter().map(|v| v.0).collect()
}

/// The block extents `(addr, blocks)` where `a` and `b` differ, `block` bytes a block.
pub fn changed_extents(a: &[u8], b: &[u8], block: usize) -> Vec<(u64, u64)> {
    assert_eq!(a.len(), b.len());
    let mut extents: Vec<(u64, u64)> = Vec::new();
    for (i, (x, y)) in a.chunks(block).zip(b.chunks(block)).enumerate() {
        if x != y {
            match extents.last_mut() {
                Some((addr, n)) if *addr + *n == i as u64 => *n += 1,
                _ => extents.push((i as u64, 1)),
            }
        }
    }
    extents
}

/// Every file in directory `dir` (not recursive), by name, with its contents: compared before
/// and after a command to show it changed nothing there.
pub fn files(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .expect("read the directory")
        .map(|e| e.expect("directory entry"))
        .filter(|e| e.file_type().expect("file type").is_file())
        .map(|e| {
            (
                e.file_name().into_string().expect("utf-8 name"),
                std::fs::read(e.path()).expect("read a file"),
            )
        })
        .collect()
}

/// Opens the store in `dir` for writing in the test process, as a live writer beside the
/// commands under test.
pub fn open_writer(dir: &Path) -> strata_engine::Store<strata_engine::storage::dir::DirStorage> {
    let storage =
        strata_engine::storage::dir::DirStorage::open(dir).expect("lock the store for writing");
    pollster::block_on(strata_engine::Store::open(
        storage,
        std::rc::Rc::new(strata_engine::clock::SystemClock),
    ))
    .expect("open the store for writing")
}

/// Like [`ok`], for a writing command run just after the test process released its own write
/// lock on the store: tried again (briefly) while it reports `LOCKED`, because a child that
/// another test thread is spawning shares the test process's descriptors (the lock's among
/// them) between its fork and its exec.
pub fn ok_after_release<I, S>(args: I) -> Vec<u8>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<_> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    for _ in 0..50 {
        let out = run(&args, None);
        if out.status.code() == Some(1) && out.stderr.starts_with(b"error[LOCKED]") {
            std::thread::sleep(std::time::Duration::from_millis(20));
            continue;
        }
        assert!(
            out.status.success(),
            "strata {args:?} failed with {:?}: {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        return out.stdout;
    }
    panic!("strata {args:?} stayed LOCKED after the lock was released");
}

/// Runs `strata` through `sh -c script` (with `$0` the binary and `$1` the store) under a
/// 1 GiB address-space limit, and fails the test if it takes more than 30 seconds: for inputs
/// that never end, which must be refused without reading them whole.
pub fn run_bounded(script: &str, dir: &str) -> std::process::Output {
    let mut child = Command::new("sh")
        .args(["-c", &format!("ulimit -v 1048576; {script}"), BIN, dir])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sh");
    let started = std::time::Instant::now();
    while child.try_wait().expect("wait").is_none() {
        if started.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("`{script}` still runs after 30 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().expect("output")
}

/// The path of tool `name`, looked up in `PATH` and the sbin directories (which are not always on
/// a user's `PATH`). Fails the test, saying `install` (which packages to install), when missing.
pub fn find_tool(name: &str, install: &str) -> std::path::PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(std::path::PathBuf::from));
    for dir in dirs {
        let candidate = dir.join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("this test needs `{name}`, which is not installed: {install}");
}
