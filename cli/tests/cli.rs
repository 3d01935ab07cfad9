//! End-to-end tests of the `strata` binary against temporary directories.

use std::io::Read;

use std::process::{Command, Stdio};

use serde_json::Value;
use strata_engine::storage::dir::DirStorage;

mod common;
use common::*;

/// The `(seq, volume, addr, blocks)` of `strata log` table output.
fn log_rows(text: &str) -> Vec<(u64, u64, u64, u64)> {
    let mut lines = text.lines();
    let header = lines.next().expect("header line");
    assert!(
        header
            .split_whitespace()
            .eq(["SEQ", "VOLUME", "ADDR", "BLOCKS", "TIME"])
            || header
                .split_whitespace()
                .eq(["SEQ", "VOLUME", "ADDR", "BLOCKS", "TIME", "DATA"])
    );
    lines
        .map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let n = |i: usize| f[i].parse::<u64>().expect("number column");
            (n(0), n(1), n(2), n(3))
        })
        .collect()
}

#[test]
fn create_write_snapshot_write_then_read_at_head_and_at_snapshot() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "32", "--block-size", "512"]);

    // Two blocks from a file at address 4.
    let mut first = vec![0x11u8; 512];
    first.extend(noise(512, 7));
    let file = tmp.path().join("first.bin");
    std::fs::write(&file, &first).unwrap();
    ok(["write", d, "--addr", "4", "--file", s(&file)]);

    let snap = ok_text(["snapshot", d, "--label", "first"]);
    assert_eq!(snap, "snapshot: 1\nhead: 2\n");

    // One block through a pipe on stdin at address 5, and a pattern at 30..32.
    ok_in(["write", d, "--addr", "5"], Some(&[0x22u8; 512]));
    ok([
        "write",
        d,
        "--addr",
        "30",
        "--pattern",
        "0x33",
        "--blocks",
        "2",
    ]);

    let head = ok(["read", d, "--addr", "4", "--blocks", "3"]);
    let mut expected = first[..512].to_vec();
    expected.extend([0x22u8; 512]);
    expected.extend([0u8; 512]);
    assert_eq!(head, expected, "head at 4..7");

    let at_snapshot = ok(["read", d, "--addr", "4", "--blocks", "3", "--volume", "1"]);
    let mut expected = first.clone();
    expected.extend([0u8; 512]);
    assert_eq!(at_snapshot, expected, "snapshot 1 at 4..7");

    let baseline = ok([
        "read", d, "--addr", "4", "--blocks", "3", "--volume", "baseline",
    ]);
    assert_eq!(baseline, vec![0u8; 3 * 512]);

    let out_file = tmp.path().join("tail.bin");
    assert!(ok([
        "read",
        d,
        "--addr",
        "30",
        "--blocks",
        "2",
        "-o",
        s(&out_file)
    ])
    .is_empty());
    assert_eq!(std::fs::read(&out_file).unwrap(), vec![0x33u8; 1024]);
    // The pattern was written after the snapshot: the snapshot still has zeros there.
    assert_eq!(
        ok(["read", d, "--addr", "30", "--blocks", "2", "--volume", "1"]),
        vec![0u8; 1024]
    );

    let hex = ok_text(["read", d, "--addr", "5", "--hex"]);
    let hex_lines: Vec<&str> = hex.lines().collect();
    assert_eq!(
        hex_lines,
        [
            "00000a00  22 22 22 22 22 22 22 22  22 22 22 22 22 22 22 22  |\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"\"|",
            "*",
            "00000c00",
        ]
    );

    let volumes = json(&ok(["volumes", d, "--json"]));
    let volumes = volumes.as_array().expect("array");
    let summary: Vec<(u64, &str, &str, Option<u64>, u64)> = volumes
        .iter()
        .map(|v| {
            (
                v["id"].as_u64().unwrap(),
                v["kind"].as_str().unwrap(),
                v["label"].as_str().unwrap(),
                v["parent"].as_u64(),
                v["entryCount"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (0, "baseline", "", None, 0),
            (1, "snapshot", "first", Some(0), 1),
            (2, "head", "", Some(1), 2),
        ]
    );

    let table = ok_text(["volumes", d]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        ["ID", "KIND", "LABEL", "PARENT", "CREATED", "ENTRIES", "BYTES", "BRANCH"]
    );
    assert_eq!(rows[3].last(), Some(&"main"), "the head is main's");
    assert_eq!(rows[2][..4], ["1", "snapshot", "first", "0"]);
    assert_eq!(rows[3][..4], ["2", "head", "-", "1"]);

    let stat = json(&ok(["stat", d, "--json"]));
    assert_eq!(stat["blockSize"], 512);
    assert_eq!(stat["blockCount"], 32);
    assert_eq!(stat["baseline"], "zero");
    assert_eq!(stat["head"], 2);
    assert_eq!(stat["nextSeq"], 4);
    assert_eq!(stat["partitions"], 2);
    assert_eq!(stat["mappedBlocks"], 4); // 4, 5, 30, 31
    assert_eq!(stat["recovery"]["journalBytesTruncated"], 0);
    assert_eq!(stat["recovery"]["headBytesTruncated"], 0);
    let stat_text = ok_text(["stat", d]);
    assert!(stat_text.contains("head volume:   2\n"), "{stat_text}");
    assert!(stat_text.contains("recovery:"), "{stat_text}");
}

#[test]
fn baseline_import_then_export_equals_image_with_writes_applied() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    const BS: usize = 4096;
    const BLOCKS: usize = 700; // 2.7 MiB: several 1 MiB import and export chunks
    let image = noise(BS * BLOCKS, 42);
    let image_path = tmp.path().join("image.raw");
    std::fs::write(&image_path, &image).unwrap();
    ok([
        "create",
        d,
        "--baseline",
        s(&image_path),
        "--block-size",
        "4096",
    ]);

    let stat = json(&ok(["stat", d, "--json"]));
    assert_eq!(stat["baseline"], "image");
    assert_eq!(stat["blockCount"], BLOCKS as u64);

    let mut expected = image.clone();
    ok([
        "write",
        d,
        "--addr",
        "0",
        "--pattern",
        "0xee",
        "--blocks",
        "1",
    ]);
    expected[..BS].fill(0xee);
    let at_snapshot = expected.clone();
    assert_eq!(ok_text(["snapshot", d]), "snapshot: 1\nhead: 2\n");

    let last = noise(BS, 9);
    let last_path = tmp.path().join("last.bin");
    std::fs::write(&last_path, &last).unwrap();
    ok(["write", d, "--addr", "699", "--file", s(&last_path)]);
    expected[699 * BS..].copy_from_slice(&last);
    ok([
        "write",
        d,
        "--addr",
        "100",
        "--pattern",
        "0",
        "--blocks",
        "60",
    ]);
    expected[100 * BS..160 * BS].fill(0);

    let head_path = tmp.path().join("head.raw");
    ok(["export", d, "-o", s(&head_path)]);
    let head = std::fs::read(&head_path).unwrap();
    assert_eq!(head.len(), expected.len());
    assert!(
        head == expected,
        "exported head differs from image with writes"
    );

    let snap_path = tmp.path().join("snap.raw");
    ok(["export", d, "--volume", "1", "-o", s(&snap_path)]);
    assert!(std::fs::read(&snap_path).unwrap() == at_snapshot);

    let to_stdout = ok(["export", d, "--volume", "baseline", "-o", "-"]);
    assert!(
        to_stdout == image,
        "baseline export differs from the imported image"
    );
}

#[test]
fn log_lists_entries_in_seq_order() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "4096", "--block-size", "512"]);
    assert_eq!(log_rows(&ok_text(["log", d])), []);

    ok(["write", d, "--addr", "0", "--pattern", "1", "--blocks", "1"]);
    ok(["snapshot", d, "--label", "s1"]);
    // 1500 blocks are written as two atomic records of at most 1024 blocks.
    let big = tmp.path().join("big.bin");
    std::fs::write(&big, noise(1500 * 512, 3)).unwrap();
    ok(["write", d, "--addr", "100", "--file", s(&big)]);
    ok(["write", d, "--addr", "7", "--pattern", "2", "--blocks", "2"]);

    let all = [
        (1, 1, 0, 1),
        (2, 2, 100, 1024),
        (3, 2, 1124, 476),
        (4, 2, 7, 2),
    ];
    assert_eq!(log_rows(&ok_text(["log", d])), all);
    assert_eq!(log_rows(&ok_text(["log", d, "--from-seq", "3"])), all[2..]);
    assert_eq!(log_rows(&ok_text(["log", d, "--volume", "1"])), all[..1]);
    assert_eq!(log_rows(&ok_text(["log", d, "--volume", "head"])), all[1..]);
    assert_eq!(log_rows(&ok_text(["log", d, "--volume", "0"])), []);
    assert_eq!(log_rows(&ok_text(["log", d, "--limit", "2"])), all[..2]);
    assert_eq!(
        log_rows(&ok_text(["log", d, "--from-seq", "2", "--limit", "1"])),
        all[1..2]
    );

    let entries = json(&ok(["log", d, "--json", "--data"]));
    let entries = entries.as_array().expect("array");
    let rows: Vec<(u64, u64, u64, u64)> = entries
        .iter()
        .map(|e| {
            (
                e["seq"].as_u64().unwrap(),
                e["volume"].as_u64().unwrap(),
                e["addr"].as_u64().unwrap(),
                e["blocks"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(rows, all);
    assert_eq!(entries[0]["dataPreview"], format!("{}...", "01".repeat(16)));
    assert_eq!(entries[3]["dataPreview"], format!("{}...", "02".repeat(16)));
    let times: Vec<u64> = entries
        .iter()
        .map(|e| e["timestampMs"].as_u64().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
    let time = entries[0]["time"].as_str().unwrap();
    assert!(time.len() == 24 && time.ends_with('Z') && time.as_bytes()[10] == b'T');
    assert_eq!(
        json(&ok(["log", d, "--json", "--from-seq", "99"])),
        Value::Array(vec![])
    );

    // The table's data column shows the preview too.
    let text = ok_text(["log", d, "--data", "--limit", "1"]);
    assert!(text
        .lines()
        .nth(1)
        .unwrap()
        .ends_with(&format!("{}...", "01".repeat(16))));
}

#[test]
fn out_of_range_addresses_fail_with_out_of_range() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "32", "--block-size", "512"]);
    let two = tmp.path().join("two.bin");
    std::fs::write(&two, [5u8; 1024]).unwrap();

    let err = fails_with(["read", d, "--addr", "32"], None, "OUT_OF_RANGE");
    assert!(err.contains("32 blocks"), "{err}");
    fails_with(
        ["read", d, "--addr", "31", "--blocks", "2"],
        None,
        "OUT_OF_RANGE",
    );
    fails_with(
        [
            "read",
            d,
            "--addr",
            "18446744073709551615",
            "--blocks",
            "18446744073709551615",
        ],
        None,
        "OUT_OF_RANGE",
    );
    fails_with(
        ["write", d, "--addr", "31", "--file", s(&two)],
        None,
        "OUT_OF_RANGE",
    );
    fails_with(
        [
            "write",
            d,
            "--addr",
            "40",
            "--pattern",
            "1",
            "--blocks",
            "1",
        ],
        None,
        "OUT_OF_RANGE",
    );
    fails_with(
        [
            "write",
            d,
            "--addr",
            "0",
            "--pattern",
            "1",
            "--blocks",
            "33",
        ],
        None,
        "OUT_OF_RANGE",
    );
    fails_with(
        ["write", d, "--addr", "32"],
        Some(&[1u8; 512]),
        "OUT_OF_RANGE",
    );
    // Nothing reached the log.
    assert_eq!(log_rows(&ok_text(["log", d])), []);
}

#[test]
fn non_store_directory_gives_not_a_store() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    for cmd in [
        vec!["stat", s(&empty)],
        vec!["log", s(&empty)],
        vec!["volumes", s(&empty)],
        vec!["read", s(&empty), "--addr", "0"],
        vec!["snapshot", s(&empty)],
    ] {
        fails_with(&cmd, None, "NOT_A_STORE");
    }
    // No lock file (or anything else) is left behind.
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);

    let missing = tmp.path().join("missing");
    fails_with(["read", s(&missing), "--addr", "0"], None, "NOT_A_STORE");
    fails_with(
        ["write", s(&missing), "--addr", "0"],
        Some(&[0u8; 512]),
        "NOT_A_STORE",
    );
    assert!(
        !missing.exists(),
        "a missing store directory must not be created"
    );

    let file = tmp.path().join("plain-file");
    std::fs::write(&file, b"hello").unwrap();
    fails_with(["stat", s(&file)], None, "NOT_A_STORE");
}

#[test]
fn second_concurrent_writer_gets_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "8"]);

    let held = DirStorage::open(&dir).expect("lock the store in the test process");
    let before = files(&dir);
    let err = fails_with(
        ["write", d, "--addr", "0", "--pattern", "9", "--blocks", "1"],
        None,
        "LOCKED",
    );
    // What to do about it: close the writer; and what works meanwhile.
    assert!(
        err.contains(&format!(
            "{d}: the store is open for writing by another process"
        )) && err.contains("close that writer first")
            && err.contains("Reading commands (read, log, volumes, stat, export"),
        "{err}"
    );
    fails_with(["snapshot", d], None, "LOCKED");
    fails_with(["create", d, "--blocks", "8"], None, "LOCKED");
    assert_eq!(files(&dir), before, "the refused commands changed nothing");
    drop(held);

    // Once released, the write goes through, and the failed attempts left no trace.
    ok_after_release(["write", d, "--addr", "0", "--pattern", "9", "--blocks", "1"]);
    assert_eq!(log_rows(&ok_text(["log", d])), [(1, 1, 0, 1)]);
}

#[test]
fn input_that_is_not_whole_blocks_is_rejected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "2048", "--block-size", "512"]);

    let odd = tmp.path().join("odd.bin");
    std::fs::write(&odd, [1u8; 1000]).unwrap();
    let err = fails_with(
        ["write", d, "--addr", "0", "--file", s(&odd)],
        None,
        "NOT_WHOLE_BLOCKS",
    );
    assert!(err.contains("1000 bytes"), "{err}");
    fails_with(["write", d, "--addr", "0"], Some(&[]), "NOT_WHOLE_BLOCKS");
    // A file is checked before anything is written.
    assert_eq!(log_rows(&ok_text(["log", d])), []);

    // From a pipe, the whole batches before the partial tail are kept (and synced).
    let mut piped = vec![3u8; 1024 * 512];
    piped.extend([4u8; 100]);
    let err = fails_with(
        ["write", d, "--addr", "0"],
        Some(&piped),
        "NOT_WHOLE_BLOCKS",
    );
    assert!(
        err.contains(&format!("{} bytes", 1024 * 512 + 100)),
        "{err}"
    );
    assert!(
        err.contains("\nnote: blocks 0..1024, read before the error, were written and synced"),
        "{err}"
    );
    assert_eq!(log_rows(&ok_text(["log", d])), [(1, 1, 0, 1024)]);
    assert_eq!(ok(["read", d, "--addr", "1023"]), vec![3u8; 512]);

    // A baseline image must be whole blocks too; the failed store directory is removed.
    let bad = tmp.path().join("bad");
    fails_with(
        [
            "create",
            s(&bad),
            "--baseline",
            s(&odd),
            "--block-size",
            "512",
        ],
        None,
        "IMAGE_SIZE",
    );
    assert!(!bad.exists());
}

#[test]
fn engine_argument_errors_have_their_codes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "16"]);
    fails_with(["create", d, "--blocks", "16"], None, "ALREADY_EXISTS");
    fails_with(
        ["read", d, "--addr", "0", "--volume", "9"],
        None,
        "UNKNOWN_VOLUME",
    );
    fails_with(["log", d, "--volume", "9"], None, "UNKNOWN_VOLUME");
    fails_with(
        ["export", d, "--volume", "9", "-o", "-"],
        None,
        "UNKNOWN_VOLUME",
    );
    fails_with(["snapshot", d, "--label", "a\nb"], None, "INVALID_LABEL");
    let long = "x".repeat(300);
    fails_with(
        ["snapshot", d, "--label", long.as_str()],
        None,
        "INVALID_LABEL",
    );
    // The failed snapshots did not create volumes.
    assert_eq!(
        json(&ok(["volumes", d, "--json"]))
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let other = tmp.path().join("other");
    fails_with(
        [
            "create",
            s(&other),
            "--blocks",
            "16",
            "--block-size",
            "1000",
        ],
        None,
        "INVALID_BLOCK_SIZE",
    );
    fails_with(
        ["create", s(&other), "--blocks", "0"],
        None,
        "INVALID_BLOCK_COUNT",
    );
    assert!(
        !other.exists(),
        "a failed create removes the directory it made"
    );

    let missing_image = tmp.path().join("nope.raw");
    fails_with(
        ["create", s(&other), "--baseline", s(&missing_image)],
        None,
        "IO",
    );
    let export_into_missing_dir = tmp.path().join("no/such/dir.raw");
    fails_with(["export", d, "-o", s(&export_into_missing_dir)], None, "IO");
}

#[test]
fn usage_errors_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = s(tmp.path());
    usage_error(["read", d]); // no --addr
    usage_error(["create", d]); // neither --blocks nor --baseline
    usage_error(["create", d, "--blocks", "1", "--baseline", "x.raw"]);
    usage_error(["write", d, "--addr", "0", "--pattern", "1"]); // no --blocks
    usage_error(["write", d, "--addr", "0", "--blocks", "1"]); // no --pattern
    usage_error([
        "write",
        d,
        "--addr",
        "0",
        "--pattern",
        "256",
        "--blocks",
        "1",
    ]);
    usage_error(["write", d, "--addr", "0", "--pattern", "1", "--blocks", "0"]);
    usage_error(["read", d, "--addr", "-1"]);
    usage_error(["read", d, "--addr", "0", "--volume", "a\u{1}b"]);
    usage_error(["read", d, "--addr", "0", "--hex", "-o", "x.bin"]);
    usage_error(["log", d, "--from-seq", "1", "--volume", "1"]);
    usage_error(["frobnicate"]);
    usage_error(Vec::<&str>::new());
}

#[test]
fn help_explains_each_concept_with_an_example() {
    let cases = [
        ("create", "baseline partition"),
        ("write", "incremental log"),
        ("snapshot", "snapshot partitions"),
        ("read", "volume is identified"),
        ("log", "sequence number"),
        ("volumes", "volume identifier"),
        ("export", "raw image"),
        ("stat", "recovery"),
    ];
    for (command, concept) in cases {
        let help = ok_text([command, "--help"]);
        assert!(
            help.contains(concept),
            "`{command} --help` lacks {concept:?}"
        );
        assert!(
            help.contains("Example"),
            "`{command} --help` lacks an example"
        );
        assert!(help.contains(&format!("strata {command} ")), "{help}");
    }
    let top = ok_text(["--help"]);
    assert!(top.contains("volume identifier") && top.contains("Example"));
}

#[test]
fn closed_stdout_ends_quietly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "4096", "--block-size", "512"]);
    let data = noise(4096 * 512, 5);
    ok_in(["write", d, "--addr", "0"], Some(&data));
    // About 8 MiB of hex dump into a reader that stops after one offset.
    let mut child = Command::new(BIN)
        .args(["read", d, "--addr", "0", "--blocks", "4096", "--hex"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 8];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(&first, b"00000000");
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");

    // Raw output of 2 MiB into a reader that stops after 4 bytes.
    let mut child = Command::new(BIN)
        .args(["read", d, "--addr", "0", "--blocks", "4096"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 4];
    stdout.read_exact(&mut first).unwrap();
    assert_eq!(first, data[..4]);
    drop(stdout);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// ----- reading beside a writer -------------------------------------------------------------------

#[test]
fn reading_commands_work_beside_a_live_writer_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "64", "--block-size", "512"]);
    let first = noise(4 * 512, 3);
    ok_in(["write", d, "--addr", "8"], Some(&first));
    ok(["snapshot", d, "--label", "one"]);

    // A live writer in this process, holding the store's lock, writes and syncs more.
    let mut writer = open_writer(&dir);
    let second = noise(2 * 512, 4);
    pollster::block_on(writer.write(20, &second)).unwrap();
    pollster::block_on(writer.sync()).unwrap();
    let before = files(&dir);

    // Every reading command works beside it, and sees what it synced.
    assert_eq!(
        ok(["read", d, "--addr", "8", "--blocks", "4", "--volume", "1"]),
        first
    );
    assert_eq!(ok(["read", d, "--addr", "20", "--blocks", "2"]), second);
    let out_file = tmp.path().join("blocks.bin");
    ok([
        "read",
        d,
        "--addr",
        "20",
        "--blocks",
        "2",
        "-o",
        s(&out_file),
    ]);
    assert_eq!(std::fs::read(&out_file).unwrap(), second);
    assert_eq!(
        volumes(d)
            .into_iter()
            .map(|v| (v.0, v.1))
            .collect::<Vec<_>>(),
        [
            (0, "baseline".to_string()),
            (1, "snapshot".to_string()),
            (2, "head".to_string())
        ]
    );
    assert_eq!(
        log_rows(&ok_text(["log", d])),
        [(1, 1, 8, 4), (2, 2, 20, 2)]
    );
    assert_eq!(json(&ok(["stat", d, "--json"]))["head"], 2);
    let image = export(d, "head");
    assert_eq!(image.len(), 64 * 512);
    assert_eq!(&image[20 * 512..22 * 512], &second[..]);
    let exported = tmp.path().join("head.img");
    ok(["export", d, "-o", s(&exported)]);
    assert_eq!(std::fs::read(&exported).unwrap(), image);
    let diff = json(&ok(["diff", d, "1", "head", "--json"]));
    assert_eq!(diff["blocks"], 2, "{diff}");
    assert!(ok_text(["du", d]).contains("total"));
    let stream = tmp.path().join("full.stream");
    ok(["send", d, "-o", s(&stream)]);
    assert!(!std::fs::read(&stream).unwrap().is_empty());
    assert!(ok_text(["audit", d]).contains("is empty"));
    assert!(ok_text(["policy", "show", d]).contains("no policy is set"));

    // A writing command is refused, and says what to do.
    let err = fails_with(["snapshot", d], None, "LOCKED");
    assert!(
        err.contains("close that writer first") && err.contains("work beside it"),
        "{err}"
    );
    // Nothing in the store changed.
    assert_eq!(files(&dir), before);
    pollster::block_on(writer.close()).unwrap();
}

/// Readers keep working while the writer rewrites its journal over and over. (A reader that
/// listed the old journal just before a rewrite deleted it is tried again; that window is too
/// narrow to hit here reliably, so the retry itself is tested in `commands.rs`.)
#[test]
fn readers_keep_working_while_the_writer_checkpoints_its_journal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "64", "--block-size", "512"]);
    let mut writer = open_writer(&dir);
    for i in 0..8u64 {
        pollster::block_on(writer.write(i, &[i as u8 + 1; 512])).unwrap();
        pollster::block_on(writer.snapshot(None)).unwrap();
    }
    pollster::block_on(writer.sync()).unwrap();
    // Each rewrite writes a new journal file and deletes the old one.
    let mut failures = Vec::new();
    for _ in 0..30 {
        let mut child = Command::new(BIN)
            .args(["volumes", d, "--json"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        while child.try_wait().unwrap().is_none() {
            pollster::block_on(writer.checkpoint_journal()).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        if !out.status.success() {
            failures.push(String::from_utf8_lossy(&out.stderr).into_owned());
        } else {
            assert_eq!(json(&out.stdout).as_array().map(Vec::len), Some(10));
        }
    }
    pollster::block_on(writer.close()).unwrap();
    assert!(failures.is_empty(), "{failures:#?}");
}

// ----- outputs inside a store --------------------------------------------------------------------

#[test]
fn outputs_that_resolve_into_a_store_are_refused_before_anything_is_written() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    let image = noise(32 * 512, 9);
    let image_file = tmp.path().join("image.raw");
    std::fs::write(&image_file, &image).unwrap();
    ok([
        "create",
        d,
        "--baseline",
        s(&image_file),
        "--block-size",
        "512",
    ]);
    ok_in(["write", d, "--addr", "2"], Some(&[7u8; 512]));
    ok(["snapshot", d]);
    ok_in(["write", d, "--addr", "3"], Some(&[8u8; 512]));
    let other = tmp.path().join("other");
    ok(["create", s(&other), "--blocks", "8"]);
    let before = files(&dir);
    let other_before = files(&other);
    let names: Vec<&String> = before.keys().collect();
    let journal = names
        .iter()
        .find(|n| n.starts_with("meta-"))
        .expect("a journal");
    let head_segment = names
        .iter()
        .filter(|n| n.starts_with("seg-"))
        .max()
        .expect("a head segment");

    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&dir, &link).unwrap();
    let file_link = tmp.path().join("file-link");
    std::os::unix::fs::symlink(dir.join("baseline"), &file_link).unwrap();
    let dangling = tmp.path().join("dangling");
    std::os::unix::fs::symlink(dir.join("new-file"), &dangling).unwrap();
    let hard = tmp.path().join("hard");
    std::fs::hard_link(dir.join("baseline.sum"), &hard).unwrap();
    let dotdot = format!("{d}/../vol/x");
    let in_store = |name: &str| s(&dir.join(name)).to_string();
    let cases: Vec<Vec<String>> = vec![
        vec!["export".into(), d.into(), "-o".into(), in_store(journal)],
        vec![
            "read".into(),
            d.into(),
            "--addr".into(),
            "0".into(),
            "-o".into(),
            in_store("baseline.sum"),
        ],
        vec!["export".into(), d.into(), "-o".into(), in_store("baseline")],
        vec!["send".into(), d.into(), "-o".into(), in_store(head_segment)],
        vec![
            "export".into(),
            d.into(),
            "-o".into(),
            s(&link.join("new.img")).into(),
        ],
        vec!["export".into(), d.into(), "-o".into(), s(&file_link).into()],
        vec!["send".into(), d.into(), "-o".into(), s(&dangling).into()],
        vec![
            "read".into(),
            d.into(),
            "--addr".into(),
            "0".into(),
            "-o".into(),
            s(&hard).into(),
        ],
        vec!["export".into(), d.into(), "-o".into(), dotdot.clone()],
        // Another store's directory.
        vec![
            "export".into(),
            d.into(),
            "-o".into(),
            s(&other.join("image.raw")).into(),
        ],
        // A copy target inside the store.
        vec![
            "event".into(),
            d.into(),
            "deploy".into(),
            "--target".into(),
            format!("backup={}", in_store("backup")),
        ],
    ];
    for args in &cases {
        let err = fails_with(args, None, "INVALID_ARGUMENT");
        assert!(
            err.contains("refusing") || err.contains("--target backup"),
            "{err}"
        );
        assert!(err.contains(d) || err.contains(s(&other)), "{err}");
        assert_eq!(files(&dir), before, "strata {args:?} changed the store");
    }
    let err = fails_with(&cases[8], None, "INVALID_ARGUMENT");
    assert!(
        err.starts_with(&format!(
            "error[INVALID_ARGUMENT]: {dotdot}: refusing to write inside the store {d} (it resolves to {}",
            s(&dir.canonicalize().unwrap().join("x"))
        )),
        "{err}"
    );
    let err = fails_with(&cases[9], None, "INVALID_ARGUMENT");
    assert!(err.contains("which holds a strata store (meta-"), "{err}");

    // The store is intact: the same files, nothing added, and it opens and reads.
    assert_eq!(files(&dir), before);
    assert_eq!(files(&other), other_before);
    assert!(!dir.join("x").exists() && !dir.join("new-file").exists());
    assert!(!dir.join("backup").exists());
    assert_eq!(std::fs::read(&hard).unwrap(), before["baseline.sum"]);
    assert_eq!(ok(["read", d, "--addr", "0"]), image[..512]);
    assert_eq!(ok(["read", d, "--addr", "3"]), [8u8; 512]);
    assert_eq!(ok(["read", d, "--addr", "2", "--volume", "1"]), [7u8; 512]);

    // Outside any store, the same commands write.
    let fine = tmp.path().join("fine.img");
    ok(["export", d, "-o", s(&fine)]);
    assert_eq!(std::fs::read(&fine).unwrap().len(), 32 * 512);
}

// ----- messages ----------------------------------------------------------------------------------

#[test]
fn an_empty_baseline_image_is_called_empty() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let err = fails_with(
        ["create", s(&dir), "--baseline", "/dev/null"],
        None,
        "IMAGE_SIZE",
    );
    assert!(
        err.starts_with("error[IMAGE_SIZE]: /dev/null: the image is empty (0 bytes)"),
        "{err}"
    );
    let empty = tmp.path().join("empty.raw");
    std::fs::write(&empty, b"").unwrap();
    let err = fails_with(
        ["create", s(&dir), "--baseline", s(&empty)],
        None,
        "IMAGE_SIZE",
    );
    assert!(err.contains("the image is empty"), "{err}");
    assert!(!dir.exists());
}

#[test]
fn a_failed_create_in_an_existing_directory_leaves_nothing_it_made() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("notes.txt"), b"mine").unwrap();
    // From a pipe, whole megabytes of the image are written before its odd tail shows.
    let mut image = noise(3 << 20, 1);
    image.extend([1u8; 100]);
    fails_with(
        [
            "create",
            s(&dir),
            "--baseline",
            "/dev/stdin",
            "--block-size",
            "512",
        ],
        Some(&image),
        "IMAGE_SIZE",
    );
    assert_eq!(
        files(&dir).into_keys().collect::<Vec<_>>(),
        ["notes.txt"],
        "only what was there before is left"
    );
    assert_eq!(std::fs::read(dir.join("notes.txt")).unwrap(), b"mine");
}

#[test]
fn stat_reports_a_torn_journal_tail_and_leaves_it_to_the_next_writer() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    ok(["create", d, "--blocks", "16", "--block-size", "512"]);
    ok(["write", d, "--addr", "0", "--pattern", "1", "--blocks", "1"]);
    let journal = files(&dir)
        .into_keys()
        .find(|n| n.starts_with("meta-"))
        .expect("a journal");
    // A crash in the middle of an append: a torn last record.
    let mut bytes = std::fs::read(dir.join(&journal)).unwrap();
    bytes.extend([0x5a; 10]);
    std::fs::write(dir.join(&journal), &bytes).unwrap();
    let before = files(&dir);
    let stat = json(&ok(["stat", d, "--json"]));
    assert_eq!(stat["recovery"]["journalBytesTruncated"], 10, "{stat}");
    let text = ok_text(["stat", d]);
    assert!(
        text.contains("torn tail of journal 10 bytes, of head segment 0 bytes (left in place"),
        "{text}"
    );
    assert_eq!(files(&dir), before, "stat cut the tail");
    // The next writing command cuts it.
    ok(["snapshot", d]);
    assert_eq!(
        json(&ok(["stat", d, "--json"]))["recovery"]["journalBytesTruncated"],
        0
    );
}

#[test]
fn every_command_that_takes_a_volume_takes_its_label_too() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let d = s(&dir);
    ok(["create", d, "--blocks", "64", "-q"]);
    ok([
        "write",
        d,
        "--addr",
        "0",
        "--pattern",
        "0x11",
        "--blocks",
        "1",
        "-q",
    ]);
    ok(["snapshot", d, "--label", "v1"]);
    ok([
        "write",
        d,
        "--addr",
        "0",
        "--pattern",
        "0x22",
        "--blocks",
        "1",
        "-q",
    ]);
    ok(["snapshot", d, "--label", "twice"]);
    ok([
        "write",
        d,
        "--addr",
        "1",
        "--pattern",
        "0x33",
        "--blocks",
        "1",
        "-q",
    ]);
    ok(["snapshot", d, "--label", "twice"]);
    assert_eq!(
        ok(["read", d, "--volume", "v1", "--addr", "0", "--blocks", "1"]),
        ok(["read", d, "--volume", "1", "--addr", "0", "--blocks", "1"])
    );
    assert_eq!(
        ok(["read", d, "--volume", "v1", "--addr", "0", "--blocks", "1"])[0],
        0x11
    );
    assert_eq!(export(d, "v1"), export(d, "1"));
    let diff = ok_text(["diff", d, "v1", "head"]);
    assert!(diff.contains('0'), "{diff}");
    // A label naming two volumes is refused with their numbers; an unknown one too.
    let err = fails_with(
        ["read", d, "--volume", "twice", "--addr", "0"],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("2, 3"), "{err}");
    fails_with(
        ["read", d, "--volume", "nope", "--addr", "0"],
        None,
        "UNKNOWN_VOLUME",
    );
    ok(["delete", d, "--volume", "v1"]);
    fails_with(
        ["read", d, "--volume", "v1", "--addr", "0"],
        None,
        "UNKNOWN_VOLUME",
    );
}

#[test]
fn export_to_a_file_leaves_zero_blocks_as_holes() {
    use std::os::unix::fs::MetadataExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let d = s(&dir);
    ok(["create", d, "--blocks", "16384", "-q"]); // 64 MiB
    let data = noise(3 * 4096, 9);
    ok_in(["write", d, "--addr", "1000", "-q"], Some(&data));
    let image = tmp.path().join("out.raw");
    ok(["export", d, "-o", s(&image), "-q"]);
    let meta = std::fs::metadata(&image).unwrap();
    assert_eq!(meta.len(), 64 << 20);
    let allocated = meta.blocks() * 512;
    assert!(
        allocated < 1 << 20,
        "{allocated} bytes allocated for 12 KiB of data"
    );
    let bytes = std::fs::read(&image).unwrap();
    assert!(bytes[1000 * 4096..1003 * 4096] == data[..]);
    assert!(bytes[..1000 * 4096].iter().all(|&b| b == 0));
    assert!(bytes[1003 * 4096..].iter().all(|&b| b == 0));
    // To stdout the same bytes come out.
    assert!(ok(["export", d, "-o", "-", "-q"]) == bytes);
}

/// Bytes the files under `dir` take on disk.
fn allocated_under(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.blocks() * 512)
        .sum()
}

#[test]
fn a_sparse_image_imports_sparse_and_a_trim_is_metadata() {
    let tmp = tempfile::tempdir().unwrap();
    // A 64 MiB sparse image holding 12 KiB of data at block 1000.
    let image = tmp.path().join("sparse.img");
    let data = noise(3 * 4096, 5);
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut f = std::fs::File::create(&image).unwrap();
        f.set_len(64 << 20).unwrap();
        f.seek(SeekFrom::Start(1000 * 4096)).unwrap();
        f.write_all(&data).unwrap();
    }
    let dir = tmp.path().join("s");
    let d = s(&dir);
    ok(["create", d, "--baseline", s(&image), "-q"]);
    let allocated = allocated_under(&dir);
    assert!(
        allocated < 2 << 20,
        "importing a 64 MiB image of 12 KiB data allocated {allocated} bytes"
    );
    assert!(ok(["read", d, "--addr", "1000", "--blocks", "3", "-o", "-"]) == data);
    // Trim 40 MiB of which 12 KiB was data: three blocks recorded, the log grows by bytes.
    let written = noise(64 * 4096, 6);
    ok_in(["write", d, "--addr", "2000", "-q"], Some(&written));
    let before = allocated_under(&dir);
    let out = ok_out(["trim", d, "--addr", "0", "--blocks", "10240"], None);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("67 blocks recorded"), "{said}");
    assert!(allocated_under(&dir) <= before + 64 * 1024);
    let zeros = ok(["read", d, "--addr", "990", "--blocks", "80", "-o", "-"]);
    assert!(zeros.iter().all(|&b| b == 0));
    let log = String::from_utf8(ok(["log", d])).unwrap();
    assert!(log.lines().any(|l| l.trim_end().ends_with("zero")), "{log}");
    // Nothing to record the second time.
    let out = ok_out(["zero", d, "--addr", "0", "--blocks", "10240"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(0 blocks recorded"));
}

#[test]
fn a_branch_is_a_writable_clone_that_every_volume_argument_names() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let d = s(&dir);
    ok(["create", d, "--blocks", "64", "--block-size", "512", "-q"]);
    ok([
        "write",
        d,
        "--addr",
        "0",
        "--pattern",
        "1",
        "--blocks",
        "4",
        "-q",
    ]);
    ok(["snapshot", d, "--label", "golden"]);
    let head = String::from_utf8(ok([
        "branch", "create", d, "test", "--from", "golden", "-q",
    ]))
    .unwrap();
    assert!(head.trim().parse::<u64>().is_ok(), "{head}");
    // Writes go to main until the branch is named.
    ok([
        "write",
        d,
        "--addr",
        "0",
        "--pattern",
        "2",
        "--blocks",
        "1",
        "-q",
    ]);
    ok([
        "write",
        d,
        "--branch",
        "test",
        "--addr",
        "1",
        "--pattern",
        "3",
        "--blocks",
        "1",
        "-q",
    ]);
    let read = |volume: &str| {
        ok([
            "read", d, "--volume", volume, "--addr", "0", "--blocks", "2",
        ])
    };
    assert!(read("test") == [vec![1u8; 512], vec![3u8; 512]].concat());
    assert!(read("main") == [vec![2u8; 512], vec![1u8; 512]].concat());
    assert!(
        read("head") == read("test"),
        "test is the active branch now"
    );
    let branches = json(&ok(["branch", "list", d, "--json"]));
    let names: Vec<(&str, bool)> = branches
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["name"].as_str().unwrap(), b["active"].as_bool().unwrap()))
        .collect();
    assert_eq!(names, [("test", true), ("main", false)]);
    let volumes = json(&ok(["volumes", d, "--json"]));
    let with_branch: Vec<&str> = volumes
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|v| v["branch"].as_str().filter(|b| !b.is_empty()))
        .collect();
    assert_eq!(with_branch.len(), 2, "{volumes}");
    // A parked head is not deleted as a volume; the branch is.
    let main_head = read_only_head(d, "main");
    let out = run(["delete", d, "--volume", &main_head], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("branch \"main\""));
    ok(["branch", "checkout", d, "main", "-q"]);
    ok(["branch", "delete", d, "test", "-q"]);
    let out = run(
        [
            "read", d, "--volume", "test", "--addr", "0", "--blocks", "1",
        ],
        None,
    );
    assert!(!out.status.success());
    let out = run(["branch", "delete", d, "main"], None);
    assert!(String::from_utf8_lossy(&out.stderr).contains("INVALID_ARGUMENT"));
}

/// The head volume of branch `name`, as `branch list` prints it.
fn read_only_head(d: &str, name: &str) -> String {
    let branches = json(&ok(["branch", "list", d, "--json"]));
    branches
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .map(|b| b["head"].to_string())
        .unwrap()
}
