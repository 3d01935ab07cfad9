//! `strata serve` with real NBD clients: qemu-io, qemu-img, nbdinfo and nbdcopy from Debian's
//! qemu-utils and libnbd-bin, mkfs.ext4 and e2fsck, plus a hostile client written here that sends
//! malformed packets. Every trace applied through NBD is applied to a raw file too, and the two
//! must compare equal; the store must then hold the same bytes after the server stops.
//!
//! Needs qemu-utils, libnbd-bin and e2fsprogs (`scripts/setup.sh test` installs them); without
//! them the tests fail and say so.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use common::*;

const BS: usize = 4096;
const BLOCKS: usize = 4096; // 16 MiB

/// The path of tool `name` (see [`find_tool`]).
fn tool(name: &str) -> PathBuf {
    find_tool(
        name,
        "install the Debian packages qemu-utils, libnbd-bin and e2fsprogs (`./scripts/setup.sh test` does)",
    )
}

fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

fn succeeds(command: &mut Command) -> String {
    let out = output(command);
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A running `strata serve` on a Unix socket; killed if the test panics.
struct Served {
    child: Option<Child>,
    socket: PathBuf,
}

impl Served {
    fn start(store: &Path, socket: &Path, extra: &[&str]) -> Served {
        let mut child = Command::new(BIN)
            .args(["serve", s(store), "--socket", s(socket), "-q"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn strata serve");
        // The URI line says it is listening.
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the URI");
        assert!(
            line.starts_with("nbd+unix://"),
            "unexpected first line {line:?}"
        );
        Served {
            child: Some(child),
            socket: socket.to_path_buf(),
        }
    }

    /// The URI of export `name`.
    fn uri(&self, name: &str) -> String {
        format!("nbd+unix:///{name}?socket={}", s(&self.socket))
    }

    /// SIGTERM: the server must sync, close the store and exit 0.
    fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        succeeds(Command::new("kill").args(["-TERM", &child.id().to_string()]));
        let status = child.wait().expect("wait for strata serve");
        assert!(status.success(), "strata serve exited with {status}");
        assert!(!self.socket.exists(), "the socket file is removed on exit");
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `qemu-img compare` of two raw images (export URIs or files): fails unless identical.
fn qemu_img_compare(a: &str, b: &str) {
    succeeds(Command::new(tool("qemu-img")).args(["compare", "-f", "raw", "-F", "raw", a, b]));
}

fn qemu_io(uri: &str, commands: &[String]) -> String {
    let mut cmd = Command::new(tool("qemu-io"));
    cmd.args(["-f", "raw"]);
    for c in commands {
        cmd.args(["-c", c]);
    }
    cmd.arg(uri);
    succeeds(&mut cmd)
}

/// A trace of random writes (unaligned ones included), discards, zeroes and flushes, as
/// qemu-io commands. The seed is printed so a failure can be replayed.
fn trace(seed: u64, count: usize, size: u64) -> Vec<String> {
    println!("trace seed {seed}");
    let mut x = seed | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    (0..count)
        .map(|i| {
            let r = next();
            let len = 1 + next() % (256 * 1024);
            let off = next() % (size - len);
            match r % 10 {
                0 => format!("discard {off} {len}"),
                1 => format!("write -z {off} {len}"),
                2 => "flush".to_string(),
                // Aligned writes, then unaligned ones of odd lengths.
                3..=5 => {
                    let off = off / 4096 * 4096;
                    let len = (len / 4096).max(1) * 4096;
                    format!("write -P {} {off} {len}", (i % 250) + 1)
                }
                _ => format!("write -P {} {off} {len}", (i % 250) + 1),
            }
        })
        .collect()
}

fn create(dir: &Path) -> PathBuf {
    let store = dir.join("store");
    ok(["create", s(&store), "--blocks", &BLOCKS.to_string(), "-q"]);
    store
}

fn raw_file(path: &Path, bytes: &[u8]) -> PathBuf {
    std::fs::write(path, bytes).expect("write raw file");
    path.to_path_buf()
}

#[test]
fn a_qemu_io_trace_through_nbd_equals_the_same_trace_on_a_raw_file_and_survives_the_stop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let raw = raw_file(&tmp.path().join("expected.raw"), &vec![0u8; BLOCKS * BS]);
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    let commands = trace(0x5eed_0001, 120, (BLOCKS * BS) as u64);
    qemu_io(&served.uri("head"), &commands);
    qemu_io(s(&raw), &commands);
    qemu_img_compare(&served.uri("head"), s(&raw));
    // nbdcopy reads it sparsely (base:allocation) and must still get every byte.
    let copy = tmp.path().join("copy.raw");
    succeeds(Command::new(tool("nbdcopy")).args([&served.uri("head"), s(&copy)]));
    assert!(
        std::fs::read(&copy).unwrap() == std::fs::read(&raw).unwrap(),
        "nbdcopy's copy differs"
    );
    served.stop();
    // After the stop, the store holds exactly what was acknowledged.
    assert!(
        export(s(&store), "head") == std::fs::read(&raw).unwrap(),
        "the store differs after the stop"
    );
}

#[test]
fn snapshots_are_exported_read_only_by_number_and_label_to_any_number_of_clients() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let before = noise(64 * BS, 3);
    ok_in(["write", s(&store), "--addr", "8", "-q"], Some(&before));
    ok(["snapshot", s(&store), "--label", "before"]);
    ok_in(
        ["write", s(&store), "--addr", "8", "-q"],
        Some(&noise(64 * BS, 4)),
    );
    let expected = export(s(&store), "1");
    let raw = raw_file(&tmp.path().join("v1.raw"), &expected);
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    for name in ["1", "before"] {
        qemu_img_compare(&served.uri(name), s(&raw));
    }
    // Several read-only clients at once, and the head's writer beside them.
    let readers: Vec<Child> = (0..3)
        .map(|_| {
            Command::new(tool("nbdcopy"))
                .args([&served.uri("before"), "null:"])
                .spawn()
                .expect("spawn nbdcopy")
        })
        .collect();
    qemu_io(&served.uri("head"), &["write -P 7 0 4096".into()]);
    for mut r in readers {
        assert!(r.wait().unwrap().success(), "a concurrent reader failed");
    }
    let info = succeeds(Command::new(tool("nbdinfo")).arg(served.uri("before")));
    assert!(info.contains("is_read_only: true"), "{info}");
    // A write to a snapshot is refused, and the snapshot is unchanged.
    let out = output(Command::new(tool("qemu-io")).args([
        "-f",
        "raw",
        "-c",
        "write -P 1 0 4096",
        &served.uri("1"),
    ]));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("wrote 4096/4096"),
        "a snapshot took a write: {text}"
    );
    // An unknown export is refused with a reason.
    let out = output(Command::new(tool("nbdinfo")).arg(served.uri("no-such-label")));
    assert!(!out.status.success());
    served.stop();
    assert_eq!(export(s(&store), "1"), expected);
}

#[test]
fn an_ext4_filesystem_made_through_nbd_checks_clean_in_a_snapshot_export() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let image = tmp.path().join("fs.raw");
    let tree = tmp.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    for i in 0..40 {
        std::fs::write(
            tree.join(format!("file{i}")),
            noise(1000 + i * 3000, i as u64 + 10),
        )
        .unwrap();
    }
    succeeds(Command::new(tool("mkfs.ext4")).args([
        "-q",
        "-F",
        "-b",
        "4096",
        "-d",
        s(&tree),
        s(&image),
        "16M",
    ]));
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    succeeds(Command::new(tool("qemu-img")).args([
        "convert",
        "-n",
        "-f",
        "raw",
        "-O",
        "raw",
        s(&image),
        &served.uri("head"),
    ]));
    served.stop();
    ok(["snapshot", s(&store), "--label", "fs"]);
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    let copy = tmp.path().join("snapshot.raw");
    succeeds(Command::new(tool("nbdcopy")).args([&served.uri("fs"), s(&copy)]));
    succeeds(Command::new(tool("e2fsck")).args(["-fn", s(&copy)]));
    qemu_img_compare(&served.uri("fs"), s(&image));
    served.stop();
}

#[test]
fn a_client_killed_mid_write_leaves_the_server_serving_and_the_head_free() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    qemu_io(
        &served.uri("head"),
        &["write -P 9 0 2M".into(), "flush".into()],
    );
    // Many 64 KiB writes over the first MiB, killed part way.
    let commands: Vec<String> = (0..4000)
        .map(|i| format!("write -P 5 {} 64k", (i % 16) * 65536))
        .collect();
    let mut cmd = Command::new(tool("qemu-io"));
    cmd.args(["-f", "raw"]);
    for c in &commands {
        cmd.args(["-c", c]);
    }
    let mut victim = cmd
        .arg(served.uri("head"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(150));
    victim.kill().unwrap();
    victim.wait().unwrap();
    // The head is free again (the writer slot went with the connection) and what was flushed
    // and not overwritten is there.
    qemu_io(&served.uri("head"), &["read -P 9 1M 1M".into()]);
    served.stop();
    // Each 64 KiB write is one request, so each reads whole: the old pattern or the new one.
    let head = export(s(&store), "head");
    for (i, chunk) in head[..1 << 20].chunks(65536).enumerate() {
        assert!(
            chunk.iter().all(|&b| b == 9) || chunk.iter().all(|&b| b == 5),
            "64 KiB chunk {i} is torn"
        );
    }
    assert!(head[1 << 20..2 << 20].iter().all(|&b| b == 9));
}

// ----- a hostile client ------------------------------------------------------------------------

fn be32(v: u32) -> [u8; 4] {
    v.to_be_bytes()
}

/// Connects and does the handshake's first part; returns the stream after the client flags.
fn connect(socket: &Path) -> UnixStream {
    let mut c = UnixStream::connect(socket).expect("connect");
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = [0u8; 18];
    c.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting[0..16], b"NBDMAGICIHAVEOPT");
    c.write_all(&be32(3)).unwrap(); // fixed newstyle, no zeroes
    c
}

fn send_option(c: &mut UnixStream, option: u32, data: &[u8]) {
    c.write_all(b"IHAVEOPT").unwrap();
    c.write_all(&be32(option)).unwrap();
    c.write_all(&be32(data.len() as u32)).unwrap();
    c.write_all(data).unwrap();
}

/// Reads one option reply: (option, type, data).
fn option_reply(c: &mut UnixStream) -> (u32, u32, Vec<u8>) {
    let mut h = [0u8; 20];
    c.read_exact(&mut h).unwrap();
    assert_eq!(
        u64::from_be_bytes(h[0..8].try_into().unwrap()),
        0x0003_e889_0455_65a9
    );
    let len = u32::from_be_bytes(h[16..20].try_into().unwrap()) as usize;
    let mut data = vec![0u8; len];
    c.read_exact(&mut data).unwrap();
    (
        u32::from_be_bytes(h[8..12].try_into().unwrap()),
        u32::from_be_bytes(h[12..16].try_into().unwrap()),
        data,
    )
}

/// `NBD_OPT_GO` on export `name` (simple replies): reads replies up to the ACK.
fn go(c: &mut UnixStream, name: &str) -> u32 {
    let mut data = be32(name.len() as u32).to_vec();
    data.extend_from_slice(name.as_bytes());
    data.extend_from_slice(&0u16.to_be_bytes());
    send_option(c, 7, &data);
    loop {
        let (_, kind, _) = option_reply(c);
        if kind != 3 {
            return kind;
        }
    }
}

fn request(c: &mut UnixStream, kind: u16, offset: u64, length: u32, magic: u32) {
    let mut b = be32(magic).to_vec();
    b.extend_from_slice(&0u16.to_be_bytes());
    b.extend_from_slice(&kind.to_be_bytes());
    b.extend_from_slice(&42u64.to_be_bytes());
    b.extend_from_slice(&offset.to_be_bytes());
    b.extend_from_slice(&be32(length));
    c.write_all(&b).unwrap();
}

/// Reads a simple reply's error value.
fn simple_reply(c: &mut UnixStream) -> u32 {
    let mut h = [0u8; 16];
    c.read_exact(&mut h).unwrap();
    assert_eq!(u32::from_be_bytes(h[0..4].try_into().unwrap()), 0x6744_6698);
    u32::from_be_bytes(h[4..8].try_into().unwrap())
}

/// The server closed the connection: a read gets end-of-file (or a reset).
fn closed(c: &mut UnixStream) -> bool {
    let mut b = [0u8; 1];
    matches!(c.read(&mut b), Ok(0) | Err(_))
}

#[test]
fn malformed_and_hostile_packets_get_protocol_errors_and_never_hurt_the_server_or_the_store() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let data = noise(8 * BS, 77);
    ok_in(["write", s(&store), "--addr", "0", "-q"], Some(&data));
    let before = export(s(&store), "head");
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    let socket = served.socket.clone();

    // Unknown option: NBD_REP_ERR_UNSUP, and the session goes on.
    let mut c = connect(&socket);
    send_option(&mut c, 999, b"junk");
    assert_eq!(option_reply(&mut c).1, (1 << 31) + 1);
    // A malformed NBD_OPT_GO: NBD_REP_ERR_INVALID.
    send_option(&mut c, 7, &[0, 0, 1]);
    assert_eq!(option_reply(&mut c).1, (1 << 31) + 3);
    // An unknown export: NBD_REP_ERR_UNKNOWN.
    assert_eq!(go(&mut c, "nope"), (1 << 31) + 6);
    // An option payload over the limit is read, dropped and answered NBD_REP_ERR_TOO_BIG.
    send_option(&mut c, 6, &vec![0u8; 100_000]);
    assert_eq!(option_reply(&mut c).1, (1 << 31) + 9);
    // Into transmission on the head.
    assert_eq!(go(&mut c, "head"), 1);
    // A second writer is refused while this one holds the head.
    let mut other = connect(&socket);
    assert_eq!(go(&mut other, "head"), (1 << 31) + 2);
    drop(other);
    // Out of range read and write: EINVAL, ENOSPC (the write's payload is consumed).
    request(&mut c, 0, (BLOCKS * BS) as u64, 4096, 0x2560_9513);
    assert_eq!(simple_reply(&mut c), 22);
    request(&mut c, 1, u64::MAX - 10, 16, 0x2560_9513);
    c.write_all(&[0xee; 16]).unwrap();
    assert_eq!(simple_reply(&mut c), 28);
    // A read longer than the largest payload: EOVERFLOW; unknown command: EINVAL.
    request(&mut c, 0, 0, u32::MAX, 0x2560_9513);
    assert_eq!(simple_reply(&mut c), 75);
    request(&mut c, 77, 0, 0, 0x2560_9513);
    assert_eq!(simple_reply(&mut c), 22);
    // Block status without the context: EINVAL.
    request(&mut c, 7, 0, 4096, 0x2560_9513);
    assert_eq!(simple_reply(&mut c), 22);
    // A huge write is answered EOVERFLOW and the connection closed (its payload cannot be skipped).
    request(&mut c, 1, 0, u32::MAX, 0x2560_9513);
    assert_eq!(simple_reply(&mut c), 75);
    assert!(closed(&mut c));

    // A bad request magic closes the connection.
    let mut c = connect(&socket);
    assert_eq!(go(&mut c, "head"), 1);
    request(&mut c, 0, 0, 4096, 0xdead_beef);
    assert!(closed(&mut c));
    // A bad option magic, unknown client flags, a huge option length: closed.
    let mut c = connect(&socket);
    c.write_all(b"IHAVEOPX\0\0\0\x01\0\0\0\0").unwrap();
    assert!(closed(&mut c));
    let mut c = UnixStream::connect(&socket).unwrap();
    let mut greeting = [0u8; 18];
    c.read_exact(&mut greeting).unwrap();
    c.write_all(&be32(0xffff_ffff)).unwrap();
    assert!(closed(&mut c));
    let mut c = connect(&socket);
    c.write_all(b"IHAVEOPT").unwrap();
    c.write_all(&be32(7)).unwrap();
    c.write_all(&be32(u32::MAX)).unwrap();
    assert!(closed(&mut c));
    // Garbage from the first byte, and a client that hangs up mid-header.
    let mut c = UnixStream::connect(&socket).unwrap();
    let _ = c.write_all(&noise(4096, 5));
    drop(c);
    let mut c = connect(&socket);
    c.write_all(b"IHAV").unwrap();
    drop(c);

    // The server still serves, and the store is unchanged.
    let info = succeeds(Command::new(tool("nbdinfo")).arg(served.uri("head")));
    assert!(info.contains("export-size: 16777216"), "{info}");
    served.stop();
    assert!(
        export(s(&store), "head") == before,
        "hostile clients changed the store"
    );
}

#[test]
fn clients_beyond_max_clients_are_closed_at_once_and_the_rest_are_served() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let served = Served::start(&store, &tmp.path().join("sock"), &["--max-clients", "2"]);
    let first = connect(&served.socket);
    let second = connect(&served.socket);
    let mut third = UnixStream::connect(&served.socket).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert!(closed(&mut third), "a third client was served beside two");
    drop(first);
    drop(second);
    // Their tasks end once the server reads end-of-file; then clients are served again.
    let mut served_again = false;
    for _ in 0..50 {
        std::thread::sleep(Duration::from_millis(20));
        let out = output(Command::new(tool("nbdinfo")).arg(served.uri("head")));
        if out.status.success() {
            served_again = true;
            break;
        }
    }
    assert!(served_again, "no client was served after the others left");
    served.stop();
}

#[test]
fn sigusr1_takes_a_snapshot_between_requests_and_exports_it_at_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    qemu_io(&served.uri("head"), &["write -P 1 0 64k".into()]);
    let pid = served.child.as_ref().expect("running").id();
    succeeds(Command::new("kill").args(["-USR1", &pid.to_string()]));
    // The snapshot is volume 1 (the head it sealed); wait until it is exported.
    let mut exported = false;
    for _ in 0..100 {
        if output(Command::new(tool("nbdinfo")).arg(served.uri("1")))
            .status
            .success()
            && succeeds(Command::new(tool("nbdinfo")).arg(served.uri("head"))).contains("volume 2")
        {
            exported = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(exported, "no snapshot after SIGUSR1");
    qemu_io(&served.uri("head"), &["write -P 2 0 64k".into()]);
    succeeds(Command::new(tool("qemu-io")).args([
        "-r",
        "-f",
        "raw",
        "-c",
        "read -P 1 0 64k",
        &served.uri("1"),
    ]));
    qemu_io(&served.uri("head"), &["read -P 2 0 64k".into()]);
    served.stop();
    assert_eq!(volume_ids(s(&store)), vec![0, 1, 2]);
}

/// The head's log bytes, as `strata volumes --json` reports them (beside the live server).
fn head_bytes(store: &Path) -> u64 {
    let volumes: serde_json::Value =
        serde_json::from_slice(&ok(["volumes", s(store), "--json"])).expect("json");
    volumes
        .as_array()
        .expect("a list")
        .iter()
        .find(|v| v["kind"] == "head")
        .and_then(|v| v["bytes"].as_u64())
        .expect("the head's bytes")
}

#[test]
fn a_discard_through_nbd_is_metadata_and_block_status_reports_it_as_a_hole() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    let uri = served.uri("head");
    let mib = 1 << 20;
    qemu_io(&uri, &[format!("write -P 7 0 {}", 4 * mib), "flush".into()]);
    let before = head_bytes(&store);
    qemu_io(&uri, &[format!("discard 0 {}", 4 * mib), "flush".into()]);
    let grew = head_bytes(&store) - before;
    assert!(grew < 4096, "discarding 4 MiB took {grew} bytes of log");
    // nbdinfo --map reads base:allocation: the discarded range is a hole that reads as zeros.
    let map = succeeds(Command::new(tool("nbdinfo")).args(["--map", &uri]));
    let first = map.lines().next().expect("a map line");
    let fields: Vec<&str> = first.split_whitespace().collect();
    assert_eq!(fields[0], "0", "{map}");
    assert!(fields[1].parse::<u64>().unwrap() >= 4 * mib, "{map}");
    assert_eq!(fields[2], "3", "hole and zero: {map}");
    served.stop();
}

#[test]
fn a_branch_is_exported_writable_by_name_beside_main() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let store = create(tmp.path());
    let d = s(&store);
    ok([
        "write",
        d,
        "--addr",
        "0",
        "--pattern",
        "1",
        "--blocks",
        "256",
        "-q",
    ]);
    ok(["snapshot", d, "--label", "golden"]);
    ok(["branch", "create", d, "test", "--from", "golden", "-q"]);
    let served = Served::start(&store, &tmp.path().join("sock"), &[]);
    // The branch takes writes through its own export; main's head is untouched.
    qemu_io(
        &served.uri("test"),
        &["write -P 9 4096 8192".into(), "flush".into()],
    );
    let mut expected = vec![0u8; BLOCKS * BS];
    expected[..256 * BS].fill(1);
    let main_image = raw_file(&tmp.path().join("main.raw"), &expected);
    expected[4096..4096 + 8192].fill(9);
    let test_image = raw_file(&tmp.path().join("test.raw"), &expected);
    for (export, image) in [("test", &test_image), ("main", &main_image)] {
        qemu_img_compare(&served.uri(export), s(image));
    }
    // Once that client is gone, a writer on main checks main out again; the branch keeps its
    // writes.
    qemu_io(
        &served.uri("main"),
        &["write -P 3 0 4096".into(), "flush".into()],
    );
    let mut main_bytes = std::fs::read(&main_image).unwrap();
    main_bytes[..4096].fill(3);
    let main_image = raw_file(&main_image, &main_bytes);
    served.stop();
    assert!(export(d, "test") == std::fs::read(&test_image).unwrap());
    assert!(export(d, "main") == std::fs::read(&main_image).unwrap());
}
