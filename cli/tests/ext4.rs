//! A real client: ext4 filesystems built by `mkfs.ext4 -d` from generated directory trees are
//! stored as successive versions, written as block writes of only the blocks that changed, then
//! the store is compacted, merged, pruned and rolled back, and every remaining volume is exported
//! and checked with `e2fsck -fn` and `qemu-img compare` against the image it must equal.
//!
//! Needs e2fsprogs (`mkfs.ext4`, `e2fsck`) and qemu-utils (`qemu-img`); without them the test
//! fails and says so.

mod common;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use common::*;

const BS: usize = 4096;
const IMAGE_SIZE: &str = "16M";
const IMAGE_BYTES: usize = 16 << 20;
/// Fixed so that the same tree always gives the same image (and versions differ only where the
/// files do).
const FS_UUID: &str = "5e1f0c3a-7d2b-4c6e-9a8f-0b1c2d3e4f50";
const FAKE_TIME: u64 = 1_700_000_000;

/// The path of tool `name` (see [`find_tool`]).
fn tool(name: &str) -> PathBuf {
    find_tool(
        name,
        "install the Debian packages e2fsprogs (mkfs.ext4, e2fsck) and qemu-utils (qemu-img), e.g. `apt-get install -y e2fsprogs qemu-utils`",
    )
}

struct Tools {
    mkfs: PathBuf,
    e2fsck: PathBuf,
    qemu_img: PathBuf,
}

fn output(command: &mut Command) -> Output {
    command
        .output()
        .unwrap_or_else(|e| panic!("running {command:?}: {e}"))
}

/// A directory tree: relative file path to contents.
type Tree = BTreeMap<String, Vec<u8>>;

/// Writes `tree` into a fresh directory `dir`, every file and directory with the same times.
fn materialise(tree: &Tree, dir: &Path) {
    if dir.exists() {
        std::fs::remove_dir_all(dir).unwrap();
    }
    std::fs::create_dir_all(dir).unwrap();
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(FAKE_TIME);
    for (name, data) in tree {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, data).unwrap();
        File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(time)
            .unwrap();
    }
    // Directories last (creating files changed their times), deepest first.
    let mut dirs: Vec<PathBuf> = tree
        .keys()
        .flat_map(|name| {
            Path::new(name)
                .ancestors()
                .skip(1)
                .map(|a| dir.join(a))
                .collect::<Vec<_>>()
        })
        .collect();
    dirs.sort_by_key(|d| std::cmp::Reverse(d.components().count()));
    dirs.dedup();
    for d in dirs {
        // Best effort: only the reproducibility of the images depends on it.
        if let Ok(f) = File::open(&d) {
            let _ = f.set_modified(time);
        }
    }
}

/// Builds an ext4 image of `tree` at `image` with `mkfs.ext4 -d`.
fn mkfs(tools: &Tools, tree: &Tree, work: &Path, image: &Path) -> Vec<u8> {
    let src = work.join("src");
    materialise(tree, &src);
    let out = output(
        Command::new(&tools.mkfs)
            .args(["-F", "-q", "-b", "4096", "-U", FS_UUID])
            .arg("-E")
            .arg(format!("hash_seed={FS_UUID},root_owner=0:0"))
            .arg("-d")
            .arg(&src)
            .arg(image)
            .arg(IMAGE_SIZE)
            .env("E2FSPROGS_FAKE_TIME", FAKE_TIME.to_string()),
    );
    assert!(
        out.status.success(),
        "mkfs.ext4 failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(image).unwrap();
    assert_eq!(bytes.len(), IMAGE_BYTES);
    bytes
}

/// `e2fsck -fn image` must find the filesystem clean (exit 0); returns its summary line.
fn fsck(tools: &Tools, image: &Path) -> String {
    let out = output(Command::new(&tools.e2fsck).arg("-fn").arg(image));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "e2fsck -fn {} is not clean:\n{stdout}{}",
        image.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().last().unwrap_or_default().to_string()
}

/// `qemu-img compare` must call the two raw images identical (exit 0).
fn qemu_compare(tools: &Tools, exported: &Path, original: &Path) {
    let out = output(
        Command::new(&tools.qemu_img)
            .args(["compare", "-f", "raw", "-F", "raw"])
            .arg(exported)
            .arg(original),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.code() == Some(0) && stdout.contains("Images are identical"),
        "qemu-img compare {} {}: exit {:?}: {stdout}{}",
        exported.display(),
        original.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Writes to the head of `dir` only the blocks where `to` differs from `from`, one
/// `strata write` per run of changed blocks. Returns (runs, blocks) written.
fn apply(dir: &str, from: &[u8], to: &[u8]) -> (usize, u64) {
    let extents = changed_extents(from, to, BS);
    for &(addr, blocks) in &extents {
        let range = addr as usize * BS..(addr + blocks) as usize * BS;
        ok_in(
            ["write", dir, "--addr", &addr.to_string()],
            Some(&to[range]),
        );
    }
    (extents.len(), extents.iter().map(|e| e.1).sum())
}

/// `strata diff --json` as `(addr, blocks)` pairs.
fn strata_diff(dir: &str, a: &str, b: &str) -> Vec<(u64, u64)> {
    json(&ok(["diff", dir, a, b, "--json"]))["extents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["addr"].as_u64().unwrap(), e["blocks"].as_u64().unwrap()))
        .collect()
}

fn file(seed: u64, kib: usize) -> Vec<u8> {
    noise(kib * 1024 + (seed as usize % 7) * 131, seed)
}

/// The successive source trees: v0 (the baseline), v1..=v4 (snapshots), v5 (written to the head,
/// then abandoned by the rollback) and v6 (a branch from v2). Each version but v0 also has an
/// intermediate state (the final tree plus a scratch file) written before it, so that its
/// partition holds overwritten blocks for compaction to drop.
fn trees() -> Vec<Tree> {
    let mut t = Tree::new();
    t.insert("etc/config.txt".into(), b"mode = fast\n".repeat(200));
    t.insert(
        "docs/readme.md".into(),
        b"# strata ext4 test\n\nplain text\n".repeat(40),
    );
    for i in 0..12u64 {
        t.insert(
            format!("data/blob{i:02}.bin"),
            file(100 + i, (i as usize + 1) * 29),
        );
    }
    let v0 = t.clone();

    // v1: a file rewritten in the middle, one appended to, new files, a changed config.
    let blob = t.get_mut("data/blob03.bin").unwrap();
    blob[20_000..28_192].copy_from_slice(&noise(8192, 7));
    t.get_mut("data/blob05.bin")
        .unwrap()
        .extend(noise(100 * 1024, 8));
    for i in 0..4u64 {
        t.insert(format!("photos/p{i}.jpg"), file(200 + i, 200));
    }
    t.insert("etc/config.txt".into(), b"mode = safe\n".repeat(220));
    let v1 = t.clone();

    // v2: files deleted, a big one added, a document edited.
    for i in 0..5 {
        t.remove(&format!("data/blob{i:02}.bin"));
    }
    t.insert("big/video.bin".into(), file(300, 2048));
    t.get_mut("docs/readme.md")
        .unwrap()
        .extend_from_slice(b"\nmore text in v2\n");
    let v2 = t.clone();

    // v3: a directory renamed, a file truncated, many small files.
    for i in 0..4 {
        let data = t.remove(&format!("photos/p{i}.jpg")).unwrap();
        t.insert(format!("pictures/p{i}.jpg"), data);
    }
    t.get_mut("data/blob08.bin").unwrap().truncate(10 * 1024);
    for i in 0..50u64 {
        t.insert(
            format!("many/f{i:03}.txt"),
            file(400 + i, 1 + i as usize % 3),
        );
    }
    let v3 = t.clone();

    // v4: the big file replaced by another, the config rewritten.
    t.remove("big/video.bin");
    t.insert("big/archive.bin".into(), file(500, 1536));
    t.insert("etc/config.txt".into(), b"mode = archive\n".repeat(150));
    let v4 = t.clone();

    // v5 (head, abandoned): junk added, a blob changed.
    t.insert("junk/junk.bin".into(), file(600, 1024));
    t.get_mut("data/blob10.bin").unwrap()[..4096].fill(0x55);
    let v5 = t;

    // v6: a branch from v2.
    let mut t = v2.clone();
    t.insert(
        "branch/notes.txt".into(),
        b"written on the branch\n".repeat(100),
    );
    t.get_mut("big/video.bin").unwrap()[512 * 1024..768 * 1024].fill(0xb6);
    let v6 = t;

    vec![v0, v1, v2, v3, v4, v5, v6]
}

#[test]
fn ext4_versions_survive_compaction_merge_deletion_rollback_and_copy() {
    let tools = Tools {
        mkfs: tool("mkfs.ext4"),
        e2fsck: tool("e2fsck"),
        qemu_img: tool("qemu-img"),
    };
    let tmp = tempfile::tempdir().unwrap();
    let work = tmp.path();
    let store = work.join("store");
    let d = s(&store);
    let trees = trees();

    // Every version's image, built from scratch by mkfs.ext4.
    let mut images: Vec<Vec<u8>> = Vec::new();
    let mut paths: Vec<PathBuf> = Vec::new();
    for (n, tree) in trees.iter().enumerate() {
        let path = work.join(format!("original_v{n}.img"));
        images.push(mkfs(&tools, tree, work, &path));
        println!(
            "v{n}: mkfs.ext4 -d of {} files: {}",
            tree.len(),
            fsck(&tools, &path)
        );
        paths.push(path);
    }

    // v0 is the baseline.
    ok(["create", d, "--baseline", s(&paths[0])]);
    assert_eq!(json(&ok(["stat", d, "--json"]))["blockCount"], 4096);

    // v1..=v4: the intermediate state's changed blocks, then the final state's, then a snapshot.
    let write_version = |n: usize, from: usize| {
        let mut scratch_tree = trees[n].clone();
        scratch_tree.insert("tmp/scratch.bin".into(), file(900 + n as u64, 600));
        let scratch_path = work.join(format!("scratch_v{n}.img"));
        let scratch = mkfs(&tools, &scratch_tree, work, &scratch_path);
        let (runs1, blocks1) = apply(d, &images[from], &scratch);
        let (runs2, blocks2) = apply(d, &scratch, &images[n]);
        // Blocks written twice, or back to what they were, do not count: the head reads vN.
        let expected = changed_extents(&images[from], &images[n], BS);
        assert_eq!(strata_diff(d, &from.to_string(), "head"), expected);
        println!(
            "v{n}: wrote {runs1} runs ({blocks1} blocks) of an intermediate state and {runs2} runs \
             ({blocks2} blocks) of the final one; `strata diff` agrees with the {} extents \
             ({} blocks) where v{from} and v{n} differ",
            expected.len(),
            expected.iter().map(|e| e.1).sum::<u64>()
        );
    };
    for n in 1..=4 {
        write_version(n, n - 1);
        let snap = json(&ok(["snapshot", d, "--label", &format!("v{n}"), "--json"]));
        assert_eq!(snap["snapshot"], n as u64);
    }
    // v5 goes to the head without a snapshot.
    write_version(5, 4);
    assert_eq!(export(d, "head"), images[5]);

    // Compact v1..v3: each drops the intermediate state's blocks.
    for v in ["1", "2", "3"] {
        let report = json(&ok(["compact", d, "--volume", v, "--json"]));
        assert!(report["blocksDropped"].as_u64().unwrap() > 0, "{report}");
        let du = json(&ok(["du", d, "--json"]));
        let row = du["volumes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["volume"] == v.parse::<u64>().unwrap())
            .unwrap()
            .clone();
        assert_eq!(row["reclaimableBytes"], 0, "{row}");
        println!(
            "compacted volume {v}: {} -> {} bytes, {} blocks kept, {} dropped",
            report["bytesBefore"],
            report["bytesAfter"],
            report["blocksKept"],
            report["blocksDropped"]
        );
    }

    // Merge v1 into the baseline, delete v3, compact v4 (over the deleted v3), roll back to v2.
    let merged = json(&ok(["merge", d, "--volume", "1", "--json"]));
    assert_eq!(merged["merged"], serde_json::json!([1]));
    println!("merged volume 1 into the baseline");
    let deleted = json(&ok(["delete", d, "--volume", "3", "--json"]));
    println!(
        "deleted volume 3: {} blocks dropped, {} kept for volume 4 and the head",
        deleted["blocksDropped"], deleted["blocksKept"]
    );
    let report = json(&ok(["compact", d, "--volume", "4", "--json"]));
    println!(
        "compacted volume 4: {} blocks kept, {} dropped",
        report["blocksKept"], report["blocksDropped"]
    );
    let rollback = json(&ok(["rollback", d, "--to", "2", "--label", "v5", "--json"]));
    assert_eq!(rollback["previousHead"], 5);
    assert_eq!(rollback["previousHeadKept"], true);
    assert_eq!(rollback["head"], 6);
    println!("rolled back to volume 2: the head with v5 is kept as snapshot 5, head 6 reads v2");
    assert_eq!(export(d, "head"), images[2]);
    // v6 on the new branch.
    let (runs, blocks) = apply(d, &images[2], &images[6]);
    assert_eq!(
        ok_text(["snapshot", d, "--label", "v6"]),
        "snapshot: 6\nhead: 7\n"
    );
    println!("v6: wrote {runs} runs ({blocks} blocks) on the branch from volume 2; snapshot 6");

    assert_eq!(
        volumes(d),
        [
            (0, "baseline".into(), "".into(), None),
            (2, "snapshot".into(), "v2".into(), Some(0)),
            (4, "snapshot".into(), "v4".into(), Some(2)),
            (5, "snapshot".into(), "v5".into(), Some(4)),
            (6, "snapshot".into(), "v6".into(), Some(2)),
            (7, "head".into(), "".into(), Some(6)),
        ]
    );
    // Diffs across the deleted volume and across branches are exact.
    for (a, b, ia, ib) in [("2", "4", 2, 4), ("4", "6", 4, 6), ("0", "5", 1, 5)] {
        assert_eq!(
            strata_diff(d, a, b),
            changed_extents(&images[ia], &images[ib], BS),
            "diff {a} {b}"
        );
    }
    let du = json(&ok(["du", d, "--json"]));
    let total = &du["total"];
    assert_eq!(
        total["totalBytes"].as_u64().unwrap(),
        total["liveBytes"].as_u64().unwrap()
            + total["reclaimableBytes"].as_u64().unwrap()
            + total["metadataBytes"].as_u64().unwrap()
    );

    // Every remaining volume, exported, is a clean filesystem identical to its original image.
    let expected = [
        ("baseline", 1),
        ("2", 2),
        ("4", 4),
        ("5", 5),
        ("6", 6),
        ("head", 6),
    ];
    let check = |dir: &str, volume: &str, version: usize| {
        let exported = work.join(format!("exported_{volume}.img"));
        ok(["export", dir, "--volume", volume, "-o", s(&exported)]);
        let summary = fsck(&tools, &exported);
        qemu_compare(&tools, &exported, &paths[version]);
        println!(
            "{dir} volume {volume}: e2fsck -fn clean ({summary}); qemu-img compare: identical to \
             original_v{version}.img"
        );
        std::fs::remove_file(&exported).unwrap();
    };
    for (volume, version) in expected {
        check(d, volume, version);
    }

    // A full copy through a stream file: the whole tree (the side line 4, 5 that the rollback
    // left, too) lands and reads the same.
    let stream = work.join("full.stream");
    ok(["send", d, "-o", s(&stream)]);
    let copy = work.join("copy");
    let received = json(&ok(["receive", s(&copy), "-i", s(&stream), "--json"]));
    assert_eq!(received["landed"], serde_json::json!([2, 4, 5, 6]));
    for (volume, version) in expected {
        check(s(&copy), volume, version);
    }
}
