//! End-to-end tests of `strata mirror create|status|scrub|replace|rebuild`: a store with its head
//! mirrored on leg directories, whose files the tests damage or remove as a failing disk would.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

const BS: usize = 512;
const BLOCKS: usize = 64;

/// A mirrored store in `vol` with legs `a` and `b`, and 8 blocks of noise written at block 3.
struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    dir: String,
    data: Vec<u8>,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let dir = s(&root.join("vol")).to_string();
        let out = ok_text([
            "mirror",
            "create",
            &dir,
            "--blocks",
            "64",
            "--block-size",
            "512",
            "--leg",
            s(&root.join("a")),
            "--leg",
            s(&root.join("b")),
        ]);
        assert!(
            out.starts_with(&format!("mirror on {dir}: 2 legs, head volume 1")),
            "{out}"
        );
        let data = noise(8 * BS, 7);
        ok_in(["write", &dir, "--addr", "3"], Some(&data));
        Fixture {
            _tmp: tmp,
            root,
            dir,
            data,
        }
    }

    fn leg(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    fn status(&self) -> Value {
        json(&ok(["mirror", "status", &self.dir, "--json"]))
    }

    fn scrub(&self) -> Value {
        json(&ok(["mirror", "scrub", &self.dir, "--json"]))
    }

    /// What the head reads, through the store.
    fn head(&self) -> Vec<u8> {
        ok([
            "read",
            &self.dir,
            "--addr",
            "0",
            "--blocks",
            &BLOCKS.to_string(),
        ])
    }
}

/// A leg's image of the head, zero-extended to the volume's size (the file may be shorter).
fn leg_image(leg: &Path) -> Vec<u8> {
    let mut image = std::fs::read(leg.join("primary.img")).unwrap();
    image.resize(BLOCKS * BS, 0);
    image
}

fn flip_byte(file: &Path, offset: usize) {
    let mut bytes = std::fs::read(file).unwrap();
    bytes[offset] ^= 0xFF;
    std::fs::write(file, bytes).unwrap();
}

#[test]
fn status_shows_both_legs_caught_up_with_writes_made_outside_the_mirror() {
    let f = Fixture::new();
    let status = f.status();
    assert_eq!(status["degraded"], false);
    assert_eq!(status["healthyLegs"], 2);
    for leg in status["legs"].as_array().unwrap() {
        assert_eq!(leg["state"], "healthy");
        // The write went to the store only; opening the mirror caught the legs up from the log.
        assert_eq!(leg["open"], "caughtUp", "{leg}");
        assert_eq!(leg["openBlocksWritten"], 8, "{leg}");
        assert_eq!(leg["synced"]["head"], 1);
    }
    // Both legs now hold exactly the head.
    let head = f.head();
    assert_eq!(&head[3 * BS..11 * BS], &f.data[..]);
    assert_eq!(leg_image(&f.leg("a")), head);
    assert_eq!(leg_image(&f.leg("b")), head);
    // The text form: a summary line, then one row per leg.
    let text = ok_text(["mirror", "status", &f.dir]);
    assert!(
        text.starts_with(&format!("{}: all 2 legs in service; head volume 1", f.dir)),
        "{text}"
    );
    assert!(text.contains("LEG  STATE"), "{text}");
    assert_eq!(
        text.matches("in sync").count(),
        2,
        "caught up by the previous open: {text}"
    );
}

#[test]
fn scrub_detects_and_repairs_a_corrupted_leg_file() {
    let f = Fixture::new();
    f.status(); // bring the legs up to date
                // Damage block 5 on leg a, and block 9 on leg b: every block still has one good copy.
    flip_byte(&f.leg("a").join("primary.img"), 5 * BS + 17);
    flip_byte(&f.leg("b").join("primary.img"), 9 * BS);
    let report = f.scrub();
    assert_eq!(report["blocksChecked"], BLOCKS);
    assert_eq!(report["copiesChecked"], 2 * BLOCKS);
    assert_eq!(report["detected"], 2, "{report}");
    assert_eq!(report["repaired"], 2, "{report}");
    assert_eq!(report["unrecoverable"], serde_json::json!([]));
    assert_eq!(report["legs"][0]["detected"], 1);
    assert_eq!(report["legs"][1]["detected"], 1);
    // The damage is gone from the files, and a second scrub finds nothing.
    let head = f.head();
    assert_eq!(leg_image(&f.leg("a")), head);
    assert_eq!(leg_image(&f.leg("b")), head);
    let again = f.scrub();
    assert_eq!(again["detected"], 0, "{again}");
    // The text form.
    flip_byte(&f.leg("a").join("primary.img"), 4 * BS);
    let text = ok_text(["mirror", "scrub", &f.dir]);
    assert!(
        text.starts_with("scrubbed 64 blocks, 128 copies: 1 bad, 1 repaired, 0 unrecoverable"),
        "{text}"
    );
}

#[test]
fn the_same_block_damaged_on_every_leg_is_repaired_from_the_store() {
    let f = Fixture::new();
    f.status();
    flip_byte(&f.leg("a").join("primary.img"), 6 * BS + 1);
    flip_byte(&f.leg("b").join("primary.img"), 6 * BS + 2);
    let report = f.scrub();
    assert_eq!(report["detected"], 2, "{report}");
    assert_eq!(report["repaired"], 2, "{report}");
    assert_eq!(leg_image(&f.leg("a")), f.head());
    assert_eq!(leg_image(&f.leg("b")), f.head());
}

#[test]
fn a_dead_leg_is_reported_degraded_and_replaced_by_a_new_directory() {
    let f = Fixture::new();
    f.status();
    // The disk behind leg b is gone.
    std::fs::remove_dir_all(f.leg("b")).unwrap();
    let status = f.status();
    assert_eq!(status["degraded"], true, "{status}");
    assert_eq!(status["healthyLegs"], 1);
    assert_eq!(status["legs"][1]["state"], "degraded");
    assert_eq!(status["legs"][1]["open"], "failed");
    let reason = status["legs"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("missing"), "{reason}");
    let text = ok_text(["mirror", "status", &f.dir]);
    assert!(text.contains("DEGRADED, 1 of 2 legs in service"), "{text}");
    // The store still serves the head, and writes still reach the surviving leg.
    let more = noise(2 * BS, 9);
    ok_in(["write", &f.dir, "--addr", "40"], Some(&more));
    let leg = &f.status()["legs"][0];
    assert_eq!(leg["open"], "caughtUp", "{leg}");
    assert_eq!(leg["openBlocksWritten"], 2, "{leg}");
    // Replace it with a new directory: resilvered from leg a, back in service.
    let c = f.leg("c");
    let report = json(&ok([
        "mirror",
        "replace",
        &f.dir,
        "--leg",
        "1",
        "--with",
        s(&c),
        "--json",
    ]));
    assert_eq!(report["leg"], 1);
    assert_eq!(report["blocksChecked"], BLOCKS);
    assert_eq!(
        report["blocksWritten"], 10,
        "the 10 written blocks; zeros need no writing"
    );
    let status = f.status();
    assert_eq!(status["degraded"], false, "{status}");
    assert_eq!(status["legs"][1]["path"], s(&c));
    assert_eq!(leg_image(&c), f.head());
    assert_eq!(f.scrub()["detected"], 0);
}

#[test]
fn a_leg_replaced_in_place_keeps_what_is_still_right() {
    let f = Fixture::new();
    f.status();
    flip_byte(&f.leg("a").join("primary.img"), 3 * BS);
    let report = json(&ok(["mirror", "replace", &f.dir, "--leg", "0", "--json"]));
    // Every block compared, only the damaged one rewritten.
    assert_eq!(report["blocksWritten"], 1, "{report}");
    assert_eq!(report["damagedFound"], 1, "{report}");
    assert_eq!(leg_image(&f.leg("a")), f.head());
}

#[test]
fn rebuild_makes_every_leg_again_from_the_store_after_all_were_lost() {
    let f = Fixture::new();
    std::fs::remove_dir_all(f.leg("a")).unwrap();
    std::fs::remove_dir_all(f.leg("b")).unwrap();
    let status = f.status();
    assert_eq!(status["healthyLegs"], 0, "{status}");
    let text = ok_text(["mirror", "rebuild", &f.dir]);
    assert!(
        text.contains("leg 0 rebuilt: 64 blocks checked, 8 written"),
        "{text}"
    );
    assert!(
        text.contains("leg 1 rebuilt: 64 blocks checked, 8 written"),
        "{text}"
    );
    let head = f.head();
    assert_eq!(leg_image(&f.leg("a")), head);
    assert_eq!(leg_image(&f.leg("b")), head);
    assert_eq!(f.status()["degraded"], false);
}

#[test]
fn a_mirror_is_put_beside_an_existing_store() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = s(&tmp.path().join("vol")).to_string();
    ok(["create", &dir, "--blocks", "64", "--block-size", "512"]);
    let data = noise(4 * BS, 3);
    ok_in(["write", &dir, "--addr", "60"], Some(&data));
    let leg = tmp.path().join("only");
    let created = json(&ok(["mirror", "create", &dir, "--leg", s(&leg), "--json"]));
    assert_eq!(created["legs"][0]["blocksWritten"], 4, "{created}");
    assert_eq!(&leg_image(&leg)[60 * BS..], &data[..]);
}

#[test]
fn mistakes_are_refused_with_their_codes() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let plain = s(&tmp.path().join("plain")).to_string();
    ok(["create", &plain, "--blocks", "8", "--block-size", "512"]);
    let stderr = fails_with(["mirror", "status", &plain], None, "NOT_A_MIRROR");
    assert!(stderr.contains("strata mirror create"), "{stderr}");
    fails_with(
        ["mirror", "status", s(&tmp.path().join("nothing"))],
        None,
        "NOT_A_STORE",
    );
    fails_with(
        ["mirror", "create", &f.dir, "--leg", s(&f.leg("z"))],
        None,
        "ALREADY_EXISTS",
    );
    fails_with(
        ["mirror", "replace", &f.dir, "--leg", "2"],
        None,
        "INVALID_ARGUMENT",
    );
    fails_with(
        [
            "mirror",
            "replace",
            &f.dir,
            "--leg",
            "1",
            "--with",
            s(&f.leg("a")),
        ],
        None,
        "INVALID_ARGUMENT",
    );
    let same = s(&tmp.path().join("x")).to_string();
    fails_with(
        ["mirror", "create", &plain, "--leg", &same, "--leg", &same],
        None,
        "INVALID_ARGUMENT",
    );
    usage_error(["mirror", "create", &plain]);
}

#[test]
fn mirror_help_teaches_primary_secondary_and_legs() {
    let help = ok_text(["mirror", "--help"]);
    for word in [
        "primary",
        "secondary",
        "leg",
        "scrub",
        "replace",
        "rebuild",
        "Examples:",
    ] {
        assert!(help.contains(word), "{word}: {help}");
    }
    let help = ok_text(["mirror", "scrub", "--help"]);
    assert!(help.contains("no good copy"), "{help}");
}

#[test]
fn a_block_bad_on_every_leg_and_in_the_store_is_reported_never_returned() {
    let f = Fixture::new();
    // Seal the write in a snapshot: damage in a sealed segment is found when the block is read.
    // (In the head's last record it would look like a torn write and be cut at open.)
    ok(["snapshot", &f.dir]);
    f.status();
    // Block 6 is the fourth block written: find its bytes in the store's log segment.
    let block = &f.data[3 * BS..4 * BS];
    let segment = std::fs::read_dir(&f.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("seg-") && std::fs::metadata(p).unwrap().len() > 0
        })
        .unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(BS).position(|w| w == block).unwrap();
    flip_byte(&segment, at + 5);
    flip_byte(&f.leg("a").join("primary.img"), 6 * BS + 5);
    flip_byte(&f.leg("b").join("primary.img"), 6 * BS + 5);
    let stderr = fails_with(["mirror", "scrub", &f.dir], None, "CORRUPT");
    assert!(stderr.contains("blocks 6)"), "{stderr}");
    // The store reports the damage rather than returning the bad bytes.
    fails_with(["read", &f.dir, "--addr", "6"], None, "CHECKSUM_MISMATCH");
}

#[test]
fn writes_the_store_lost_to_a_damaged_last_record_come_back_from_the_legs() {
    // The store's last log record is damaged: alone, the store would take it for a torn write
    // and cut it. The legs hold those acknowledged blocks and give them back.
    let f = Fixture::new();
    f.status();
    // The head's segment: the one that is not empty (the others are spares of later heads).
    let segment = std::fs::read_dir(&f.dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            name.starts_with("seg-") && std::fs::metadata(p).unwrap().len() > 0
        })
        .unwrap();
    let bytes = std::fs::read(&segment).unwrap();
    let at = bytes.windows(BS).position(|w| w == &f.data[..BS]).unwrap();
    flip_byte(&segment, at + 100);
    let status = f.status();
    assert_eq!(status["secondaryBlocksRestored"], 8, "{status}");
    assert_eq!(status["secondaryBlocksLost"], 0, "{status}");
    assert_eq!(&f.head()[3 * BS..11 * BS], &f.data[..]);
    assert_eq!(leg_image(&f.leg("a")), f.head());
}

#[test]
fn an_endless_leg_list_is_refused_at_its_limit() {
    let f = Fixture::new();
    let config = Path::new(&f.dir).join("mirror.json");
    std::fs::remove_file(&config).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &config).unwrap();
    let out = run_bounded(r#"exec "$0" mirror status "$1""#, &f.dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.starts_with(&format!(
            "error[NOT_A_MIRROR]: {}: mirror.json is longer than 1048576 bytes",
            f.dir
        )),
        "{err}"
    );
}

#[test]
fn unfit_legs_are_refused_before_anything_is_written() {
    let f = Fixture::new();
    let tmp = tempfile::tempdir().unwrap();
    let other = tmp.path().join("other");
    ok(["create", s(&other), "--blocks", "8"]);
    let other_before = files(&other);
    let leg_a_before = files(&f.leg("a"));
    let new = tmp.path().join("new");
    let fresh = tmp.path().join("fresh");
    let create = |legs: &[&Path], extra: &[&str]| {
        let mut args = vec!["mirror", "create", s(&new), "--block-size", "512"];
        args.extend_from_slice(extra);
        for leg in legs {
            args.extend(["--leg", s(leg)]);
        }
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let nothing_made = || {
        assert!(!new.exists(), "the store was created");
        assert!(!fresh.exists(), "a leg was created");
        assert_eq!(files(&other), other_before);
        assert_eq!(files(&f.leg("a")), leg_a_before);
    };

    // Another store's directory.
    let err = fails_with(
        create(&[&fresh, &other], &["--blocks", "64"]),
        None,
        "INVALID_ARGUMENT",
    );
    assert!(
        err.contains(&format!(
            "leg {}: the directory holds a strata store (meta-",
            s(&other)
        )),
        "{err}"
    );
    nothing_made();
    // A leg of another store's mirror.
    let err = fails_with(
        create(&[&fresh, &f.leg("a")], &["--blocks", "64"]),
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("is a leg of another store's mirror"), "{err}");
    nothing_made();
    // The store's own directory; one directory twice, through a symbolic link.
    let err = fails_with(
        create(&[&new], &["--blocks", "64"]),
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("the store's own directory"), "{err}");
    let real = tmp.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let alias = tmp.path().join("alias");
    std::os::unix::fs::symlink(&real, &alias).unwrap();
    let err = fails_with(
        create(&[&real, &alias], &["--blocks", "64"]),
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("are the same directory"), "{err}");
    nothing_made();
    // No room: a volume larger than any filesystem.
    let blocks: u64 = 1 << 40;
    let need = blocks * 65536 + blocks * 4 + (1 << 20);
    let mut args = create(&[&fresh], &["--blocks", &blocks.to_string()]);
    args[4] = "65536".into();
    let err = fails_with(&args, None, "QUOTA_EXCEEDED");
    assert!(
        err.contains(&format!("leg {} needs {need} bytes", s(&fresh)))
            && err.contains("but the filesystem has")
            && err.ends_with("free\n"),
        "{err}"
    );
    nothing_made();

    // An existing store is left as it was.
    let plain = tmp.path().join("plain");
    ok(["create", s(&plain), "--blocks", "64", "--block-size", "512"]);
    let plain_before = files(&plain);
    fails_with(
        ["mirror", "create", s(&plain), "--leg", s(&other)],
        None,
        "INVALID_ARGUMENT",
    );
    assert_eq!(files(&plain), plain_before);
    assert_eq!(files(&other), other_before);
    // So is a mirror whose leg would be replaced by another store's directory.
    fails_with(
        [
            "mirror",
            "replace",
            &f.dir,
            "--leg",
            "1",
            "--with",
            s(&other),
        ],
        None,
        "INVALID_ARGUMENT",
    );
    assert_eq!(files(&other), other_before);
    assert_eq!(f.status()["healthyLegs"], 2);
    assert_eq!(f.status()["legs"][1]["path"], s(&f.leg("b")));

    // A fit leg is taken.
    ok(["mirror", "create", s(&plain), "--leg", s(&fresh)]);
    assert!(fresh.join("primary.hdr").exists());
}
