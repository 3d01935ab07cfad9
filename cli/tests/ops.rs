//! End-to-end tests of `strata compact`, `merge`, `delete`, `rollback`, `diff`, `du`, `send` and
//! `receive`: their outputs and the state they leave the store in.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

const BS: usize = 512;
const BLOCKS: usize = 64;

/// A store under test and what each of its volumes must read.
struct History {
    _tmp: tempfile::TempDir,
    dir: String,
    /// The image of volume `i` (0: the baseline, 1..=3 the snapshots, 4 the head).
    images: Vec<Vec<u8>>,
}

impl History {
    fn d(&self) -> &str {
        &self.dir
    }

    fn path(&self, name: &str) -> String {
        s(&self._tmp.path().join(name)).to_string()
    }
}

/// Writes `data` at block `addr` of the head and applies it to `image`.
fn put(dir: &str, image: &mut [u8], addr: usize, data: &[u8]) {
    ok_in(["write", dir, "--addr", &addr.to_string()], Some(data));
    image[addr * BS..addr * BS + data.len()].copy_from_slice(data);
}

/// A zero-baseline store of 64 blocks of 512 bytes:
/// * volume 1 "one": blocks 0..8 of 0x01, then 0..4 of 0x02 (4 blocks overwritten in place);
/// * volume 2 "two": blocks 4..12 of noise;
/// * volume 3 "three": blocks 20..22 of 0x04, then 20 of 0x05 (1 block overwritten);
/// * head 4: block 30 of 0x06.
fn history() -> History {
    let tmp = tempfile::tempdir().unwrap();
    let dir = s(&tmp.path().join("vol")).to_string();
    let d = dir.as_str();
    ok(["create", d, "--blocks", "64", "--block-size", "512"]);
    let mut image = vec![0u8; BS * BLOCKS];
    let mut images = vec![image.clone()];
    put(d, &mut image, 0, &[1u8; 8 * BS]);
    put(d, &mut image, 0, &[2u8; 4 * BS]);
    assert_eq!(
        ok_text(["snapshot", d, "--label", "one"]),
        "snapshot: 1\nhead: 2\n"
    );
    images.push(image.clone());
    put(d, &mut image, 4, &noise(8 * BS, 2));
    assert_eq!(
        ok_text(["snapshot", d, "--label", "two"]),
        "snapshot: 2\nhead: 3\n"
    );
    images.push(image.clone());
    put(d, &mut image, 20, &[4u8; 2 * BS]);
    put(d, &mut image, 20, &[5u8; BS]);
    assert_eq!(
        ok_text(["snapshot", d, "--label", "three"]),
        "snapshot: 3\nhead: 4\n"
    );
    images.push(image.clone());
    put(d, &mut image, 30, &[6u8; BS]);
    images.push(image);
    History {
        _tmp: tmp,
        dir,
        images,
    }
}

/// Asserts that each `(volume, image)` reads as `image`.
fn assert_reads(dir: &str, expected: &[(&str, &[u8])]) {
    for (volume, image) in expected {
        assert!(
            export(dir, volume) == *image,
            "volume {volume} of {dir} does not read as expected"
        );
    }
}

/// The `strata du --json` row of `volume`.
fn du_row(dir: &str, volume: u64) -> Value {
    json(&ok(["du", dir, "--json"]))["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["volume"] == volume)
        .unwrap_or_else(|| panic!("no du row for volume {volume}"))
        .clone()
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("{v} is not a number"))
}

#[test]
fn compact_drops_overwritten_blocks_and_every_volume_reads_the_same() {
    let h = history();
    let d = h.d();
    let all = |h: &History| -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("baseline", h.images[0].clone()),
            ("1", h.images[1].clone()),
            ("2", h.images[2].clone()),
            ("3", h.images[3].clone()),
            ("head", h.images[4].clone()),
        ]
    };
    let row = du_row(d, 1);
    assert_eq!(row["reclaimableBytes"], 4 * BS as u64);
    assert_eq!(du_row(d, 2)["reclaimableBytes"], 0);
    assert_eq!(du_row(d, 3)["reclaimableBytes"], BS as u64);

    let report = json(&ok(["compact", d, "--volume", "1", "--json"]));
    assert_eq!(report["volume"], 1);
    assert_eq!(report["blocksKept"], 8);
    assert_eq!(report["blocksDropped"], 4);
    assert_eq!(report["removed"], false);
    assert_eq!(report["bytesBefore"], row["totalBytes"]);
    let after = u(&report["bytesAfter"]);
    // Four blocks of data go; the record headers stay much the same.
    assert!(u(&report["freedBytes"]) + 64 >= 4 * BS as u64, "{report}");
    assert_eq!(u(&report["freedBytes"]), u(&report["bytesBefore"]) - after);
    let row = du_row(d, 1);
    assert_eq!(row["reclaimableBytes"], 0);
    assert_eq!(u(&row["totalBytes"]), after);
    assert_eq!(row["liveBytes"], 8 * BS as u64);

    let text = ok_text(["compact", d, "--volume", "3"]);
    assert!(
        text.starts_with("compacted volume 3: ") && text.ends_with("; 2 blocks kept, 1 dropped\n"),
        "{text}"
    );
    let total = u(&du_row(d, 3)["totalBytes"]);
    assert_eq!(
        ok_text(["compact", d, "--volume", "3"]),
        format!("volume 3 has nothing to reclaim: all 2 blocks are live ({total} bytes)\n")
    );
    let expected = all(&h);
    let expected: Vec<(&str, &[u8])> = expected.iter().map(|(v, i)| (*v, i.as_slice())).collect();
    assert_reads(d, &expected);
    // The log keeps the surviving entries, with their sequence numbers.
    let log = json(&ok(["log", d, "--json", "--volume", "1"]));
    let seqs: Vec<(u64, u64, u64)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (u(&e["seq"]), u(&e["addr"]), u(&e["blocks"])))
        .collect();
    assert_eq!(seqs, [(1, 4, 4), (2, 0, 4)]);

    let err = fails_with(["compact", d, "--volume", "head"], None, "INVALID_ARGUMENT");
    assert!(err.contains("take a snapshot first"), "{err}");
    fails_with(
        ["compact", d, "--volume", "baseline"],
        None,
        "INVALID_ARGUMENT",
    );
    fails_with(["compact", d, "--volume", "9"], None, "UNKNOWN_VOLUME");
    assert_reads(d, &expected);
}

#[test]
fn merge_folds_the_oldest_snapshots_into_the_baseline() {
    let h = history();
    let d = h.d();
    assert_eq!(
        ok_text(["merge", d, "--volume", "2"]),
        "merged volumes 1, 2 into the baseline (2 partitions, 6.0 KiB of blocks written); \
         volume 0 now reads what volume 2 read\n"
    );
    assert_eq!(
        volumes(d),
        [
            (0, "baseline".into(), "".into(), None),
            (3, "snapshot".into(), "three".into(), Some(0)),
            (4, "head".into(), "".into(), Some(3)),
        ]
    );
    assert_reads(
        d,
        &[
            ("baseline", &h.images[2]),
            ("3", &h.images[3]),
            ("head", &h.images[4]),
        ],
    );
    assert_eq!(json(&ok(["stat", d, "--json"]))["baseline"], "image");
    fails_with(
        ["read", d, "--addr", "0", "--volume", "1"],
        None,
        "UNKNOWN_VOLUME",
    );
    fails_with(["merge", d, "--volume", "head"], None, "INVALID_ARGUMENT");
    fails_with(["merge", d, "--volume", "2"], None, "UNKNOWN_VOLUME");
    // The baseline is now an image of volume 2: du counts it.
    let base = du_row(d, 0);
    assert_eq!(base["totalBytes"], (BLOCKS * (BS + 4)) as u64);
    assert_eq!(base["liveBytes"], (BLOCKS * BS) as u64);
    assert_eq!(base["exclusiveBytes"], Value::Null);
}

#[test]
fn merge_is_refused_while_a_branch_reads_a_merged_partition() {
    let h = history();
    let d = h.d();
    // A branch from volume 1: the new head 5 grows from 1, and 2 is merged only with 1.
    ok(["rollback", d, "--to", "1"]);
    let before = volumes(d);
    let err = fails_with(["merge", d, "--volume", "2"], None, "INVALID_ARGUMENT");
    assert!(err.contains("grows from"), "{err}");
    assert_eq!(volumes(d), before);
    assert_reads(d, &[("2", &h.images[2]), ("head", &h.images[1])]);
    // Merging up to the branch point is fine.
    assert_eq!(
        json(&ok(["merge", d, "--volume", "1", "--json"])),
        json!({"volume": 1, "partitions": 1, "merged": [1], "blocksBytes": 8 * BS})
    );
    assert_reads(
        d,
        &[
            ("baseline", &h.images[1]),
            ("2", &h.images[2]),
            ("3", &h.images[3]),
            ("4", &h.images[4]),
            ("head", &h.images[1]),
        ],
    );
}

#[test]
fn delete_removes_the_identifier_and_keeps_what_descendants_read() {
    let h = history();
    let d = h.d();
    // Volume 2 wrote 4..12 and volume 3 and the head read all of it through 2.
    assert_eq!(
        ok_text(["delete", d, "--volume", "2"]),
        "deleted volume 2: freed 0 B (0 blocks dropped); 8 blocks kept for the volumes that grow from it\n"
    );
    assert_eq!(volume_ids(d), [0, 1, 3, 4]);
    fails_with(
        ["export", d, "--volume", "2", "-o", "-"],
        None,
        "UNKNOWN_VOLUME",
    );
    let row = du_row(d, 2);
    assert_eq!(row["kind"], "deleted");
    assert_eq!(row["liveBytes"], 8 * BS as u64);
    let table = ok_text(["du", d]);
    assert!(
        table
            .lines()
            .any(|l| l.split_whitespace().take(2).eq(["(2)", "deleted"])),
        "{table}"
    );

    // Volume 1: 4 overwritten blocks and 4..8 (overridden by 2) go; 0..4 stay for the others.
    let report = json(&ok(["delete", d, "--volume", "1", "--json"]));
    assert_eq!(report["blocksKept"], 4);
    assert_eq!(report["blocksDropped"], 8);
    assert_eq!(report["removed"], false);
    assert!(u(&report["freedBytes"]) >= 8 * BS as u64, "{report}");
    assert_eq!(volume_ids(d), [0, 3, 4]);
    assert_reads(
        d,
        &[
            ("baseline", &h.images[0]),
            ("3", &h.images[3]),
            ("head", &h.images[4]),
        ],
    );

    // A leaf snapshot nothing grows from goes entirely.
    ok(["rollback", d, "--to", "3"]); // the head (4) becomes a snapshot; head 5 grows from 3
    let text = ok_text(["delete", d, "--volume", "4"]);
    assert!(
        text.starts_with("deleted volume 4: freed ")
            && text.ends_with(" (1 block dropped); its partition was removed entirely\n"),
        "{text}"
    );
    assert_eq!(volume_ids(d), [0, 3, 5]);
    assert!(!json(&ok(["du", d, "--json"]))["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["volume"] == 4));

    let err = fails_with(["delete", d, "--volume", "head"], None, "INVALID_ARGUMENT");
    assert!(err.contains("live head"), "{err}");
    let err = fails_with(
        ["delete", d, "--volume", "baseline"],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("baseline cannot be deleted"), "{err}");
    fails_with(["delete", d, "--volume", "2"], None, "UNKNOWN_VOLUME");
    assert_reads(d, &[("3", &h.images[3]), ("head", &h.images[3])]);
}

#[test]
fn rollback_keeps_the_old_head_and_reads_like_the_target() {
    let h = history();
    let d = h.d();
    assert_eq!(
        ok_text(["rollback", d, "--to", "1", "--label", "oops"]),
        "previous head: 4 (kept as snapshot 4 \"oops\")\nhead: 5 (parent 1)\n"
    );
    assert_reads(
        d,
        &[
            ("head", &h.images[1]),
            ("4", &h.images[4]),
            ("3", &h.images[3]),
            ("2", &h.images[2]),
        ],
    );
    assert_eq!(
        volumes(d).last().unwrap(),
        &(5, "head".to_string(), String::new(), Some(1))
    );
    assert_eq!(
        volumes(d)[4],
        (4, "snapshot".into(), "oops".into(), Some(3))
    );
    // An empty head is removed rather than kept.
    assert_eq!(
        json(&ok(["rollback", d, "--to", "baseline", "--json"])),
        json!({"previousHead": 5, "previousHeadKept": false, "label": "", "head": 6, "parent": 0})
    );
    assert_eq!(volume_ids(d), [0, 1, 2, 3, 4, 6]);
    assert_reads(d, &[("head", &h.images[0])]);
    // Writes go to the new branch only.
    ok(["write", d, "--addr", "1", "--pattern", "9", "--blocks", "1"]);
    let mut image = h.images[0].clone();
    image[BS..2 * BS].fill(9);
    assert_reads(d, &[("head", &image), ("4", &h.images[4])]);

    fails_with(["rollback", d, "--to", "head"], None, "INVALID_ARGUMENT");
    fails_with(["rollback", d, "--to", "5"], None, "UNKNOWN_VOLUME");
    fails_with(
        ["rollback", d, "--to", "1", "--label", "a\tb"],
        None,
        "INVALID_LABEL",
    );
    assert_reads(d, &[("head", &image)]);
}

/// `(addr, end, blocks)` rows of `strata diff` text output, and its last line.
fn diff_rows(text: &str) -> (Vec<(u64, u64, u64)>, String) {
    let lines: Vec<&str> = text.lines().collect();
    let (last, table) = lines.split_last().expect("a summary line");
    let rows = if table.is_empty() {
        Vec::new()
    } else {
        assert!(
            table[0].split_whitespace().eq(["ADDR", "END", "BLOCKS"]),
            "{text}"
        );
        table[1..]
            .iter()
            .map(|l| {
                let f: Vec<u64> = l.split_whitespace().map(|x| x.parse().unwrap()).collect();
                (f[0], f[1], f[2])
            })
            .collect()
    };
    (rows, last.to_string())
}

#[test]
fn diff_lists_exactly_the_extents_that_differ() {
    let h = history();
    let d = h.d();
    // Rewriting a block with the bytes it already has changes nothing.
    ok([
        "write",
        d,
        "--addr",
        "40",
        "--pattern",
        "0",
        "--blocks",
        "1",
    ]);
    ok(["write", d, "--addr", "2", "--pattern", "2", "--blocks", "1"]);

    let (rows, summary) = diff_rows(&ok_text(["diff", d, "1", "3"]));
    assert_eq!(rows, [(4, 12, 8), (20, 22, 2)]);
    assert_eq!(
        summary,
        "2 extents, 10 blocks (5.0 KiB) differ between volumes 1 and 3"
    );
    let expected: Vec<(u64, u64, u64)> = changed_extents(&h.images[1], &h.images[3], BS)
        .into_iter()
        .map(|(a, n)| (a, a + n, n))
        .collect();
    assert_eq!(rows, expected);

    for (a, b, ia, ib) in [
        ("baseline", "head", 0, 4),
        ("head", "2", 4, 2),
        ("3", "0", 3, 0),
    ] {
        let out = json(&ok(["diff", d, a, b, "--json"]));
        let got: Vec<(u64, u64)> = out["extents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (u(&e["addr"]), u(&e["blocks"])))
            .collect();
        assert_eq!(
            got,
            changed_extents(&h.images[ia], &h.images[ib], BS),
            "{a} vs {b}"
        );
        assert_eq!(u(&out["blocks"]), got.iter().map(|e| e.1).sum::<u64>());
        assert_eq!(out["blockSize"], BS as u64);
    }
    assert_eq!(
        ok_text(["diff", d, "2", "2"]),
        "volumes 2 and 2 are identical\n"
    );
    assert_eq!(ok_text(["diff", d, "3", "head"]).lines().count(), 3);

    // Across branches.
    ok(["rollback", d, "--to", "1"]);
    ok([
        "write",
        d,
        "--addr",
        "63",
        "--pattern",
        "7",
        "--blocks",
        "1",
    ]);
    let (rows, _) = diff_rows(&ok_text(["diff", d, "head", "3"]));
    assert_eq!(rows, [(4, 12, 8), (20, 22, 2), (63, 64, 1)]);
    fails_with(["diff", d, "1", "99"], None, "UNKNOWN_VOLUME");
}

#[test]
fn du_accounts_every_byte_and_totals_them() {
    let h = history();
    let d = h.d();
    ok(["delete", d, "--volume", "2"]);
    let du = json(&ok(["du", d, "--json"]));
    let rows = du["volumes"].as_array().unwrap();
    let kinds: Vec<(u64, &str, &str)> = rows
        .iter()
        .map(|r| {
            (
                u(&r["volume"]),
                r["kind"].as_str().unwrap(),
                r["label"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            (0, "baseline", ""),
            (1, "snapshot", "one"),
            (2, "deleted", ""),
            (3, "snapshot", "three"),
            (4, "head", ""),
        ]
    );
    let columns = [
        "totalBytes",
        "liveBytes",
        "exclusiveBytes",
        "reclaimableBytes",
        "metadataBytes",
    ];
    for r in rows.iter().chain([&du["total"]]) {
        assert_eq!(
            u(&r["totalBytes"]),
            u(&r["liveBytes"]) + u(&r["reclaimableBytes"]) + u(&r["metadataBytes"]),
            "{r}"
        );
    }
    for column in columns {
        let sum: u64 = rows.iter().map(|r| r[column].as_u64().unwrap_or(0)).sum();
        assert_eq!(u(&du["total"][column]), sum, "{column}");
    }
    // Exact values: a zero baseline takes nothing; volume 1 wrote 12 blocks, 8 of them live,
    // 4 of those (4..8) only it reads; the head wrote one block.
    assert_eq!(u(&rows[0]["totalBytes"]), 0);
    assert_eq!(u(&rows[1]["liveBytes"]), 8 * BS as u64);
    assert_eq!(u(&rows[1]["exclusiveBytes"]), 4 * BS as u64);
    assert_eq!(u(&rows[1]["reclaimableBytes"]), 4 * BS as u64);
    assert_eq!(u(&rows[2]["exclusiveBytes"]), 0);
    assert_eq!(u(&rows[4]["liveBytes"]), BS as u64);
    // The partition sizes are those `strata volumes` shows.
    let listed = json(&ok(["volumes", d, "--json"]));
    for v in listed.as_array().unwrap().iter().skip(1) {
        let row = rows.iter().find(|r| r["volume"] == v["id"]).unwrap();
        assert_eq!(row["totalBytes"], v["bytes"]);
    }

    // The table shows the same numbers with --bytes, a `-` for the baseline's EXCLUSIVE and a
    // total row.
    let table = ok_text(["du", d, "--bytes"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[0],
        [
            "VOLUME",
            "KIND",
            "LABEL",
            "TOTAL",
            "LIVE",
            "EXCLUSIVE",
            "RECLAIMABLE",
            "METADATA"
        ]
    );
    assert_eq!(lines.len(), 7, "{table}");
    assert_eq!(lines[1][..3], ["0", "baseline", "-"]);
    assert_eq!(lines[1][5], "-");
    assert_eq!(lines[3][..3], ["(2)", "deleted", "-"]);
    assert_eq!(lines[2][..3], ["1", "snapshot", "one"]);
    for (line, row) in lines[2..6].iter().zip(&rows[1..]) {
        let numbers: Vec<u64> = line[3..].iter().map(|x| x.parse().unwrap()).collect();
        let expected: Vec<u64> = columns.iter().map(|c| u(&row[*c])).collect();
        assert_eq!(numbers, expected, "{table}");
    }
    let total: Vec<String> = columns
        .iter()
        .map(|c| u(&du["total"][*c]).to_string())
        .collect();
    assert_eq!(lines[6][0], "total");
    assert_eq!(
        lines[6][1..],
        total.iter().map(String::as_str).collect::<Vec<_>>()[..]
    );
    // Without --bytes, binary units.
    let human = ok_text(["du", d]);
    assert!(human.contains(" KiB"), "{human}");
    assert!(
        human
            .lines()
            .last()
            .unwrap()
            .trim_start()
            .starts_with("total"),
        "{human}"
    );
}

#[test]
fn du_counts_an_imported_baseline() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("vol");
    let d = s(&dir);
    let image = tmp.path().join("image.raw");
    std::fs::write(&image, noise(16 * 4096, 3)).unwrap();
    ok(["create", d, "--baseline", s(&image)]);
    let du = json(&ok(["du", d, "--json"]));
    assert_eq!(
        du["volumes"][0],
        json!({"volume": 0, "kind": "baseline", "label": "", "totalBytes": 16 * 4100,
               "liveBytes": 16 * 4096, "exclusiveBytes": null, "reclaimableBytes": 0,
               "metadataBytes": 16 * 4})
    );
    assert_eq!(du["total"]["totalBytes"], 16 * 4100);
}

/// Runs `strata send ... -o -` piped into `strata receive ... -i -`; returns receive's stdout.
fn pipe(send: &[&str], receive: &[&str]) -> String {
    let mut sender = Command::new(BIN)
        .args(send)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let receiver = Command::new(BIN)
        .args(receive)
        .stdin(Stdio::from(sender.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let received = receiver.wait_with_output().unwrap();
    let sent = sender.wait_with_output().unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(
        received.status.success(),
        "{}",
        String::from_utf8_lossy(&received.stderr)
    );
    String::from_utf8(received.stdout).unwrap()
}

/// Asserts that `target` has the snapshots of `source` (labels, parents, contents).
fn assert_same_snapshots(source: &str, target: &str) {
    let snapshots = |d: &str| -> Vec<(u64, String, String, Option<u64>)> {
        volumes(d).into_iter().filter(|v| v.1 != "head").collect()
    };
    let (a, b) = (snapshots(source), snapshots(target));
    assert_eq!(a, b);
    for (id, ..) in a {
        let id = id.to_string();
        assert!(
            export(source, &id) == export(target, &id),
            "volume {id} differs"
        );
    }
}

#[test]
fn send_and_receive_copy_volumes_fully_then_incrementally() {
    let h = history();
    let d = h.d();
    ok(["snapshot", d, "--label", "four"]); // 4 is a snapshot now, head 5
    let full = h.path("full.stream");
    let sent = ok_out(["send", d, "-o", full.as_str()], None);
    let note = String::from_utf8(sent.stderr).unwrap();
    assert!(
        note.starts_with(
            "sent a full stream up to volume 4: 4 volumes, 6 entries, 12.0 KiB of block data, "
        ),
        "{note}"
    );
    assert!(sent.stdout.is_empty());
    let stream_len = std::fs::metadata(&full).unwrap().len();
    assert!(
        note.ends_with(&format!(" {stream_len} bytes of stream to {full}\n")),
        "{note}"
    );

    let copy = h.path("copy");
    let out = ok_text(["receive", copy.as_str(), "-i", full.as_str()]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("created store in {copy}"));
    assert_eq!(
        lines[1],
        format!(
            "received 4 volumes (1, 2, 3, 4), 0 already here; 6 entries, 12.0 KiB of block data from {stream_len} bytes of stream"
        )
    );
    assert!(
        lines[2].starts_with("head: ") && lines[2].ends_with(" (parent 4)"),
        "{out}"
    );
    assert_same_snapshots(d, &copy);
    assert_reads(&copy, &[("head", &h.images[4])]);

    // More on the source; only the new snapshot travels, through a pipe.
    ok([
        "write",
        d,
        "--addr",
        "50",
        "--pattern",
        "0x50",
        "--blocks",
        "8",
    ]);
    ok(["snapshot", d, "--label", "five"]);
    let out = pipe(
        &["send", d, "--base", "4", "-o", "-"],
        &["receive", copy.as_str(), "-i", "-", "--json"],
    );
    let report = json(out.as_bytes());
    assert_eq!(report["created"], false);
    assert_eq!(report["landed"], json!([5]));
    assert_eq!(report["volumesSkipped"], 0);
    assert_eq!(report["entries"], 1);
    assert_eq!(report["dataBytes"], 8 * BS as u64);
    assert_eq!(report["headParent"], 5);
    assert_same_snapshots(d, &copy);

    // Applying it again lands nothing.
    let inc = h.path("inc.stream");
    ok(["send", d, "--base", "4", "-o", inc.as_str()]);
    let out = ok_text(["receive", copy.as_str(), "-i", inc.as_str()]);
    assert!(
        out.starts_with("received 0 volumes (-), 1 already here; 1 entry, "),
        "{out}"
    );
    assert_same_snapshots(d, &copy);

    // A store whose head has writes of its own refuses streams.
    ok([
        "write",
        copy.as_str(),
        "--addr",
        "0",
        "--pattern",
        "1",
        "--blocks",
        "1",
    ]);
    let err = fails_with(
        ["receive", copy.as_str(), "-i", inc.as_str()],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("local writes"), "{err}");

    // An incremental stream needs its base: not in a new store, not in one that lacks it.
    let other = h.path("other");
    let err = fails_with(
        ["receive", other.as_str(), "-i", inc.as_str()],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("incremental"), "{err}");
    assert!(err.contains("note: nothing landed"), "{err}");
    assert!(
        !Path::new(&other).exists(),
        "a failed receive leaves no store behind"
    );
}

#[test]
fn interrupted_receive_says_what_landed_and_resumes_from_there() {
    let h = history();
    let d = h.d();
    ok(["snapshot", d]); // 4
    ok_in(["write", d, "--addr", "40"], Some(&noise(16 * BS, 4)));
    ok(["snapshot", d]); // 5: 16 blocks, the last volume of the stream
    let full = h.path("full.stream");
    ok(["send", d, "-o", full.as_str()]);
    let bytes = std::fs::read(&full).unwrap();
    let cut = h.path("cut.stream");
    std::fs::write(&cut, &bytes[..bytes.len() - 1000]).unwrap();

    let copy = h.path("copy");
    let err = fails_with(
        ["receive", copy.as_str(), "-i", cut.as_str()],
        None,
        "BAD_STREAM",
    );
    assert!(err.contains("the stream is damaged or incomplete"), "{err}");
    assert!(
        err.contains(&format!(
            "\nnote: 4 volumes landed before the error (1, 2, 3, 4), 0 already here; the newest volume {copy} has is 4: \
             resume with `strata send SOURCE --base 4 -o - | strata receive {copy} -i -`"
        )),
        "{err}"
    );
    let mut ids = volume_ids(&copy);
    ids.sort_unstable();
    assert_eq!(ids[..5], [0, 1, 2, 3, 4]);
    assert!(!ids.contains(&5), "{ids:?}");
    // The advice works.
    let out = pipe(
        &["send", d, "--base", "4", "-o", "-"],
        &["receive", copy.as_str(), "-i", "-"],
    );
    assert!(
        out.starts_with("received 1 volume (5), 0 already here; 1 entry, 8.0 KiB"),
        "{out}"
    );
    assert_same_snapshots(d, &copy);

    // A damaged byte is caught by the frame checksums; nothing of the damaged volume lands.
    let mut damaged = bytes.clone();
    let at = damaged.len() - 2000;
    damaged[at] ^= 0x20;
    let bad = h.path("bad.stream");
    std::fs::write(&bad, &damaged).unwrap();
    let copy2 = h.path("copy2");
    let err = fails_with(
        ["receive", copy2.as_str(), "-i", bad.as_str()],
        None,
        "BAD_STREAM",
    );
    assert!(err.contains("checksum"), "{err}");
    assert!(
        err.contains("note: 4 volumes landed before the error"),
        "{err}"
    );
    assert_eq!(volume_ids(&copy2).iter().filter(|v| **v == 5).count(), 0);

    // Not a stream at all, into an empty directory: it stays empty.
    let junk = h.path("junk.stream");
    std::fs::write(&junk, noise(4096, 1)).unwrap();
    let empty = h.path("empty");
    std::fs::create_dir(&empty).unwrap();
    let err = fails_with(
        ["receive", empty.as_str(), "-i", junk.as_str()],
        None,
        "BAD_STREAM",
    );
    assert!(err.contains("note: nothing landed"), "{err}");
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn filtered_and_partial_sends_carry_only_what_was_asked() {
    let h = history();
    let d = h.d();
    ok(["snapshot", d]); // 4; head 5
                         // Only blocks 0..6 of every entry: volumes read the source there, zeros elsewhere.
    let part = h.path("part.stream");
    let note = String::from_utf8(
        ok_out(["send", d, "--blocks", "0..6", "-o", part.as_str()], None).stderr,
    )
    .unwrap();
    assert!(
        note.starts_with(
            "sent a filtered full stream up to volume 4: 4 volumes, 3 entries, 6.0 KiB"
        ),
        "{note}"
    );
    let copy = h.path("copy");
    ok(["receive", copy.as_str(), "-i", part.as_str()]);
    for v in 1..=4 {
        let mut expected = vec![0u8; BS * BLOCKS];
        expected[..6 * BS].copy_from_slice(&h.images[v][..6 * BS]);
        assert_reads(&copy, &[(v.to_string().as_str(), &expected)]);
    }
    // Entries from sequence number 3 on (volume 2's and later), up to volume 3.
    let since = h.path("since.stream");
    let note = String::from_utf8(
        ok_out(
            [
                "send",
                d,
                "--since-seq",
                "3",
                "--upto",
                "3",
                "-o",
                since.as_str(),
            ],
            None,
        )
        .stderr,
    )
    .unwrap();
    assert!(
        note.starts_with("sent a filtered full stream up to volume 3: 3 volumes, 3 entries, "),
        "{note}"
    );
    // Snapshots 2..=3 only, over volume 1.
    let mid = h.path("mid.stream");
    let note = String::from_utf8(
        ok_out(
            ["send", d, "--base", "1", "--upto", "3", "-o", mid.as_str()],
            None,
        )
        .stderr,
    )
    .unwrap();
    assert!(
        note.starts_with(
            "sent an incremental stream over volume 1 up to volume 3: 2 volumes, 3 entries, "
        ),
        "{note}"
    );

    fails_with(
        ["send", d, "--blocks", "0..65", "-o", "-"],
        None,
        "OUT_OF_RANGE",
    );
    fails_with(
        ["send", d, "--upto", "head", "-o", "-"],
        None,
        "INVALID_ARGUMENT",
    );
    fails_with(
        ["send", d, "--base", "9", "-o", "-"],
        None,
        "UNKNOWN_VOLUME",
    );
    let err = fails_with(
        ["send", d, "--base", "3", "--upto", "2", "-o", "-"],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("not an ancestor"), "{err}");
    // A failed send leaves no file behind.
    let failed = h.path("failed.stream");
    fails_with(
        ["send", d, "--upto", "head", "-o", failed.as_str()],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(!Path::new(&failed).exists());
}

#[test]
fn new_commands_use_usage_errors_for_bad_arguments() {
    let tmp = tempfile::tempdir().unwrap();
    let d = s(tmp.path());
    usage_error(["compact", d]); // no --volume
    usage_error(["merge", d]);
    usage_error(["delete", d, "--volume", ""]);
    usage_error(["rollback", d]); // no --to
    usage_error(["diff", d, "1"]); // no B
    usage_error(["diff", d, "1", "bad\tlabel"]);
    usage_error(["du", d, "--json", "--bytes"]);
    usage_error(["send", d]); // no -o
    usage_error(["send", d, "--blocks", "8..8", "-o", "x"]);
    usage_error(["send", d, "--blocks", "8", "-o", "x"]);
    usage_error(["receive", d]); // no -i
                                 // A directory without a store.
    for cmd in [
        vec!["compact", d, "--volume", "1"],
        vec!["merge", d, "--volume", "1"],
        vec!["delete", d, "--volume", "1"],
        vec!["rollback", d, "--to", "1"],
        vec!["diff", d, "1", "2"],
        vec!["du", d],
        vec!["send", d, "-o", "-"],
    ] {
        fails_with(&cmd, None, "NOT_A_STORE");
    }
}

#[test]
fn help_of_each_new_command_explains_its_concept_with_an_example() {
    let cases = [
        ("compact", "overwritten"),
        ("merge", "baseline partition"),
        ("delete", "descendants"),
        ("rollback", "without destroying anything"),
        ("diff", "extent"),
        ("du", "TOTAL = LIVE + RECLAIMABLE + METADATA"),
        ("send", "copy stream"),
        ("receive", "resume"),
    ];
    for (command, concept) in cases {
        let help = ok_text([command, "--help"]);
        assert!(
            help.contains(concept),
            "`{command} --help` lacks {concept:?}:\n{help}"
        );
        assert!(
            help.contains("Example"),
            "`{command} --help` lacks an example"
        );
        assert!(help.contains(&format!("strata {command} ")), "{help}");
    }
    let du = ok_text(["du", "--help"]);
    for column in ["TOTAL", "LIVE", "EXCLUSIVE", "RECLAIMABLE", "METADATA"] {
        assert!(
            du.contains(&format!("  {column} ")),
            "du --help lacks {column}"
        );
    }
    let top = ok_text(["--help"]);
    for command in [
        "compact", "merge", "delete", "rollback", "diff", "du", "send", "receive",
    ] {
        assert!(
            top.contains(&format!("  {command} ")),
            "`--help` lacks {command}"
        );
    }
}
