//! End-to-end tests of `strata policy set|show|clear|run`, `strata event`, `strata hold`,
//! `strata ttl` and `strata audit`.
//!
//! The CLI's clock is the system clock, so nothing here waits for hours: retention is tested
//! with `keep.last` and label prefixes, events are signalled directly, the one TTL test waits a
//! second, and time-based rules are tested through the dry-run simulation (whose clock is
//! simulated).

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

const BS: usize = 512;

/// A temporary directory with an empty store of 64 blocks of 512 bytes in `vol`.
struct Fixture {
    tmp: tempfile::TempDir,
    dir: String,
}

impl Fixture {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = s(&tmp.path().join("vol")).to_string();
        ok(["create", &dir, "--blocks", "64", "--block-size", "512"]);
        Fixture { tmp, dir }
    }

    fn d(&self) -> &str {
        &self.dir
    }

    fn path(&self, name: &str) -> String {
        s(&self.tmp.path().join(name)).to_string()
    }

    /// Writes `text` to a file named `name` in the temporary directory; returns its path.
    fn file(&self, name: &str, text: &str) -> String {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Sets the policy `text` (TOML).
    fn set_policy(&self, text: &str) {
        let file = self.file("policy.toml", text);
        ok(["policy", "set", self.d(), &file]);
    }

    fn snapshot(&self, label: &str) -> u64 {
        let out = json(&ok(["snapshot", self.d(), "--label", label, "--json"]));
        out["snapshot"].as_u64().unwrap()
    }

    fn write(&self, addr: u64, byte: u8, blocks: u64) {
        ok([
            "write",
            self.d(),
            "--addr",
            &addr.to_string(),
            "--pattern",
            &byte.to_string(),
            "--blocks",
            &blocks.to_string(),
        ]);
    }

    fn audit(&self) -> Vec<Value> {
        json(&ok(["audit", self.d(), "--json"]))
            .as_array()
            .unwrap()
            .clone()
    }
}

/// `(kind, volume, outcome)` of each entry of `strata policy run --json` / `strata event --json`.
fn run_entries(out: &[u8]) -> Vec<(String, Option<u64>, String)> {
    json(out)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(entry_summary)
        .collect()
}

fn entry_summary(e: &Value) -> (String, Option<u64>, String) {
    let decision = &e["decision"];
    let volume = e["outcome"]["volume"]
        .as_u64()
        .or_else(|| decision["volume"].as_u64());
    (
        decision["decision"].as_str().unwrap().to_string(),
        volume,
        e["outcome"]["outcome"].as_str().unwrap().to_string(),
    )
}

fn entry(kind: &str, volume: u64, outcome: &str) -> (String, Option<u64>, String) {
    (kind.to_string(), Some(volume), outcome.to_string())
}

// ----- set, show, clear --------------------------------------------------------------------------

#[test]
fn invalid_policies_are_refused_naming_the_field() {
    let f = Fixture::new();
    let bad_keep = f.file(
        "bad.toml",
        r#"
[[rules]]
kind = "snapshot_every"
snapshot_every_ms = 3_600_000

[[rules]]
kind = "retain"
max_age_ms = 86_400_000

[[rules]]
kind = "retain"
label_prefix = "hourly-"
keep = { last = 3, hourly = 0 }
"#,
    );
    let err = fails_with(
        ["policy", "set", f.d(), &bad_keep],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(
        err.contains("bad.toml: rules[2].keep.hourly: must be at least 1"),
        "{err}"
    );

    // The same mistake in JSON, found by extension.
    let bad_json = f.file(
        "bad.json",
        r#"{ "rules": [ { "kind": "snapshot_every", "snapshot_every_ms": 0 } ] }"#,
    );
    let err = fails_with(
        ["policy", "set", f.d(), &bad_json],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(
        err.contains("rules[0].snapshot_every_ms: must be at least 1"),
        "{err}"
    );

    // A misspelt field names the field; a bad template names the placeholder.
    let misspelt = f.file(
        "misspelt.toml",
        "[[rules]]\nkind = \"snapshot_every\"\nsnapshot_evry_ms = 60_000\n",
    );
    let err = fails_with(
        ["policy", "set", f.d(), &misspelt],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("not a policy (TOML)"), "{err}");
    assert!(err.contains("snapshot_evry_ms"), "{err}");
    let template = f.file(
        "template.toml",
        "[[rules]]\nkind = \"snapshot_every\"\nsnapshot_every_ms = 60_000\nlabel = \"x-{week}\"\n",
    );
    let err = fails_with(
        ["policy", "set", f.d(), &template],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(
        err.contains("rules[0].label: unknown placeholder {week}"),
        "{err}"
    );

    // Without a .toml or .json name: --format, or a sniff of the first character.
    let stdin_json = br#"{ "rules": [ { "kind": "retain" } ] }"#;
    let out = run(["policy", "set", f.d(), "-"], Some(stdin_json));
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error[INVALID_ARGUMENT]: stdin: rules[0]: a retain rule needs"),
        "{err}"
    );

    // Nothing was assigned.
    let shown = json(&ok(["policy", "show", f.d(), "--json"]));
    assert_eq!(shown["policy"], Value::Null);
    assert_eq!(shown["assignments"], serde_json::json!([]));
}

const HOURLY: &str = r#"
labels = "time"

[[rules]]
name = "hourly"
kind = "snapshot_every"
snapshot_every_ms = 3_600_000       # 1h
label = "{rule}-{date}-{n}"

[[rules]]
name = "thin"
kind = "retain"
label_prefix = "hourly-"
keep = { last = 48, daily = 7 }
"#;

#[test]
fn a_toml_policy_is_set_shown_and_cleared() {
    let f = Fixture::new();
    let file = f.file("policy.toml", HOURLY);
    let out = ok_text(["policy", "set", f.d(), &file]);
    assert!(
        out.starts_with(&format!("policy set on {}: 2 rules (2 temporal)", f.d())),
        "{out}"
    );
    assert!(
        out.contains("rules[0] \"hourly\": snapshot every 1h, labelled \"{rule}-{date}-{n}\""),
        "{out}"
    );

    let shown = json(&ok(["policy", "show", f.d(), "--json"]));
    let policy = &shown["policy"];
    assert_eq!(policy["labels"], "time");
    assert_eq!(policy["rules"][0]["kind"], "snapshot_every");
    assert_eq!(policy["rules"][0]["snapshot_every_ms"], 3_600_000);
    assert_eq!(policy["rules"][1]["keep"]["daily"], 7);

    // The text output is TOML that sets the same policy again.
    let text = ok_text(["policy", "show", f.d()]);
    assert!(text.contains("[[rules]]"), "{text}");
    let again = f.file("shown.toml", &text);
    ok(["policy", "set", f.d(), &again]);
    assert_eq!(json(&ok(["policy", "show", f.d(), "--json"])), shown);

    // ... and the JSON policy sets it too, with --format for a name without an extension.
    let as_json = f.file("policy.txt", &policy.to_string());
    ok(["policy", "set", f.d(), &as_json, "--format", "json"]);
    assert_eq!(json(&ok(["policy", "show", f.d(), "--json"])), shown);

    let out = ok_text(["policy", "clear", f.d()]);
    assert!(out.starts_with("policy cleared"), "{out}");
    assert_eq!(
        json(&ok(["policy", "show", f.d(), "--json"]))["policy"],
        Value::Null
    );
    let err = fails_with(["policy", "run", f.d()], None, "INVALID_ARGUMENT");
    assert!(err.contains("no policy is set"), "{err}");
}

// ----- dry runs ----------------------------------------------------------------------------------

#[test]
fn dry_run_until_simulates_the_schedule_and_writes_nothing() {
    let f = Fixture::new();
    f.write(0, 1, 4);
    f.set_policy(HOURLY);
    let volumes_before = ok(["volumes", f.d(), "--json"]);

    // From now to now + 48h in 1h steps: 49 evaluations, each in a new UTC hour.
    let sim = json(&ok([
        "policy",
        "run",
        f.d(),
        "--dry-run",
        "--until",
        "2d",
        "--json",
    ]));
    assert_eq!(sim["steps"], 49);
    assert_eq!(sim["step_ms"], 3_600_000);
    let timeline = sim["timeline"].as_array().unwrap();
    let snapshots = timeline
        .iter()
        .filter(|t| t["decision"]["decision"] == "snapshot")
        .count();
    assert_eq!(snapshots, 49);
    assert_eq!(sim["summary"]["snapshots"], 49);
    // Retention runs in the same evaluation as the snapshot, on the view before it: the 49th
    // snapshot would make one too many for `last = 48` only at the next evaluation.
    assert_eq!(sim["summary"]["deleted"], 0);
    assert_eq!(sim["summary"]["snapshots_after"], 49);
    // The first snapshot seals the head (volume 1), and is labelled from the template.
    assert_eq!(timeline[0]["volume"], 1);
    let label = timeline[0]["decision"]["label"].as_str().unwrap();
    assert!(
        label.starts_with("hourly-") && label.ends_with("-1"),
        "{label}"
    );

    // Smaller steps do not take more snapshots (one per UTC hour); larger ones take fewer.
    let sim = json(&ok([
        "policy",
        "run",
        f.d(),
        "--dry-run",
        "--until",
        "2d",
        "--step",
        "30m",
        "--json",
    ]));
    assert_eq!(sim["steps"], 97);
    assert_eq!(sim["summary"]["snapshots"], 49);
    let sim = json(&ok([
        "policy",
        "run",
        f.d(),
        "--dry-run",
        "--until",
        "2d",
        "--step",
        "2h",
        "--json",
    ]));
    assert_eq!(sim["summary"]["snapshots"], 25);
    // Over three days, the last evaluation finds 72 snapshots: the 24 oldest are too many for
    // `last = 48`, but these 24 consecutive hours always hold the last snapshot of exactly one
    // UTC day, which `daily = 7` keeps: 23 are deleted.
    let sim = json(&ok([
        "policy",
        "run",
        f.d(),
        "--dry-run",
        "--until",
        "3d",
        "--json",
    ]));
    assert_eq!(sim["summary"]["snapshots"], 73);
    assert_eq!(sim["summary"]["deleted"], 23);
    assert_eq!(sim["summary"]["snapshots_after"], 50);

    // The text form: a timeline and a summary.
    let text = ok_text(["policy", "run", f.d(), "--dry-run", "--until", "2d"]);
    let rows = text
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("snapshot"))
        .count();
    assert_eq!(rows, 49, "{text}");
    assert!(
        text.contains("simulated 49 evaluations every 1h from "),
        "{text}"
    );
    assert!(
        text.contains("would take 49 snapshots, delete 0, merge 0 (0 partitions), compact 0, copy 0; 49 snapshots afterwards"),
        "{text}"
    );
    assert!(text.ends_with("dry run: nothing was written\n"), "{text}");

    // Now only: the first snapshot.
    let now = json(&ok(["policy", "run", f.d(), "--dry-run", "--json"]));
    assert_eq!(now["steps"], 1);
    assert_eq!(now["timeline"].as_array().unwrap().len(), 1);

    // Nothing changed: same volumes, no audit entries, and the rule still has not run.
    assert_eq!(ok(["volumes", f.d(), "--json"]), volumes_before);
    assert!(f.audit().is_empty());
    let now = json(&ok(["policy", "run", f.d(), "--dry-run", "--json"]));
    assert_eq!(now["summary"]["snapshots"], 1);

    // Refused: a time in the past, too many steps, --until without --dry-run.
    let err = fails_with(
        ["policy", "run", f.d(), "--dry-run", "--until", "2020-01-01"],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("is in the past"), "{err}");
    let err = fails_with(
        [
            "policy",
            "run",
            f.d(),
            "--dry-run",
            "--until",
            "100000w",
            "--step",
            "1s",
        ],
        None,
        "INVALID_ARGUMENT",
    );
    assert!(err.contains("use a larger step"), "{err}");
    usage_error(["policy", "run", f.d(), "--until", "2d"]);
    usage_error(["policy", "run", f.d(), "--dry-run", "--until", "2 days"]);
    usage_error(["policy", "run", f.d(), "--dry-run", "--target", "backup=x"]);
}

// ----- runs --------------------------------------------------------------------------------------

/// The `YYYY-MM-DD` of an RFC 3339 time.
fn date_of(time: &Value) -> String {
    time.as_str().unwrap()[..10].to_string()
}

#[test]
fn a_run_takes_a_snapshot_with_the_templated_label() {
    let f = Fixture::new();
    let created = json(&ok(["volumes", f.d(), "--json"]))[0]["created"].clone();
    f.write(3, 0xab, 2);
    // A yearly interval: a second run is certainly in the same interval.
    f.set_policy(
        r#"
[[rules]]
name = "yearly"
kind = "snapshot_every"
snapshot_every_ms = 31_536_000_000
label = "{rule}-{date}-{n}"
"#,
    );
    let out = ok(["policy", "run", f.d(), "--json"]);
    assert_eq!(run_entries(&out), [entry("snapshot", 1, "applied")]);
    let run = json(&out);
    let label = run["entries"][0]["decision"]["label"]
        .as_str()
        .unwrap()
        .to_string();
    let date = &label["yearly-".len()..label.len() - "-1".len()];
    assert!(
        label.starts_with("yearly-") && label.ends_with("-1"),
        "{label}"
    );
    // The date of the run (or of the store's creation, should midnight have passed since).
    let dates = [date_of(&run["entries"][0]["time"]), date_of(&created)];
    assert!(dates.iter().any(|d| d == date), "{label} vs {dates:?}");
    assert_eq!(
        volumes(f.d())[1],
        (1, "snapshot".to_string(), label.clone(), Some(0))
    );
    // The snapshot holds the write.
    let image = export(f.d(), "1");
    assert_eq!(&image[3 * BS..5 * BS], &[0xab; 2 * BS][..]);

    // Nothing is due a second time; the text form says so.
    assert_eq!(
        ok_text(["policy", "run", f.d()]),
        "nothing to do: no rule is due\n"
    );
    assert_eq!(volume_ids(f.d()), [0, 1, 2]);
}

#[test]
fn a_hold_prevents_a_retention_delete() {
    let f = Fixture::new();
    for i in 1..=4u8 {
        f.write(u64::from(i), i, 1);
        assert_eq!(f.snapshot(&format!("keep-{i}")), u64::from(i));
    }
    f.snapshot("other"); // volume 5: outside the rule's scope
    f.set_policy(
        r#"
[[rules]]
name = "one"
kind = "retain"
label_prefix = "keep-"
keep = { last = 1 }
"#,
    );
    let out = ok_text(["hold", f.d(), "--volume", "2"]);
    assert_eq!(
        out,
        "volume 2 is held: no policy rule or TTL will delete or merge it\n"
    );
    let shown = json(&ok(["policy", "show", f.d(), "--json"]));
    assert_eq!(shown["assignments"][0]["volume"], 2);
    assert_eq!(shown["assignments"][0]["hold"], true);

    // keep-4 is the newest kept by `last = 1`; keep-2 is held; keep-1 and keep-3 go.
    let out = ok(["policy", "run", f.d(), "--json"]);
    assert_eq!(
        run_entries(&out),
        [entry("delete", 1, "applied"), entry("delete", 3, "applied")]
    );
    let reason = json(&out)["entries"][0]["decision"]["reason"].clone();
    assert_eq!(reason["origin"]["name"], "one");
    assert_eq!(volume_ids(f.d()), [0, 2, 4, 5, 6]);
    // What the deleted volumes held is still read by the newer ones.
    let image = export(f.d(), "head");
    for i in 1..=4usize {
        assert_eq!(image[i * BS], i as u8);
    }
    assert_eq!(
        ok_text(["policy", "run", f.d()]),
        "nothing to do: no rule is due\n"
    );

    // Released, it goes at the next run.
    let out = ok_text(["hold", f.d(), "--volume", "2", "--release"]);
    assert!(out.starts_with("released the hold on volume 2"), "{out}");
    assert_eq!(
        run_entries(&ok(["policy", "run", f.d(), "--json"])),
        [entry("delete", 2, "applied")]
    );
    assert_eq!(volume_ids(f.d()), [0, 4, 5, 6]);
    fails_with(["hold", f.d(), "--volume", "2"], None, "UNKNOWN_VOLUME");
}

#[test]
fn a_ttl_deletes_a_volume_once_it_is_that_old_unless_held() {
    let f = Fixture::new();
    for i in 1..=3u8 {
        f.write(u64::from(i), i, 1);
        f.snapshot(&format!("s{i}"));
    }
    // A policy without retention rules: only the TTLs delete.
    f.set_policy("[[rules]]\nkind = \"event\"\nevent = \"noop\"\naction = \"snapshot\"\n");
    let out = ok_text(["ttl", f.d(), "--volume", "1", "1s"]);
    assert!(
        out.starts_with("volume 1 will be deleted by `strata policy run` from "),
        "{out}"
    );
    ok(["ttl", f.d(), "--volume", "2", "1s"]);
    let out = ok_text(["hold", f.d(), "--volume", "2"]);
    assert!(out.contains("is held"), "{out}");
    // Volume 3 is the newest snapshot: a TTL does not delete it.
    ok(["ttl", f.d(), "--volume", "3", "1s"]);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let out = ok(["policy", "run", f.d(), "--json"]);
    assert_eq!(run_entries(&out), [entry("delete", 1, "applied")]);
    let reason = &json(&out)["entries"][0]["decision"]["reason"];
    assert_eq!(reason["origin"]["from"], "volume_ttl");
    assert_eq!(volume_ids(f.d()), [0, 2, 3, 4]);

    // The deleted volume's assignment went with it; clearing works and says so.
    let shown = json(&ok(["policy", "show", f.d(), "--json"]));
    let listed: Vec<u64> = shown["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["volume"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [2, 3]);
    let out = ok_text(["ttl", f.d(), "--volume", "3", "--clear"]);
    assert!(out.starts_with("cleared the TTL of volume 3"), "{out}");
    usage_error(["ttl", f.d(), "--volume", "3"]);
    usage_error(["ttl", f.d(), "--volume", "3", "1s", "--clear"]);
    usage_error(["ttl", f.d(), "--volume", "3", "soon"]);
}

// ----- events ------------------------------------------------------------------------------------

#[test]
fn an_event_pair_takes_a_snapshot_before_and_one_after() {
    let f = Fixture::new();
    f.set_policy(
        r#"
[[rules]]
name = "upgrade"
kind = "event"
event = "upgrade"
pair = true
action = "snapshot"
label = "{event}-{n}"
"#,
    );
    let out = ok_text(["event", f.d(), "upgrade:pre"]);
    assert!(out.contains("\"upgrade:pre-1\"  applied"), "{out}");
    assert!(
        out.contains("rules[0] \"upgrade\": event \"upgrade:pre\""),
        "{out}"
    );
    f.write(7, 0x77, 3);
    let out = ok(["event", f.d(), "upgrade:post", "--json"]);
    assert_eq!(run_entries(&out), [entry("snapshot", 2, "applied")]);

    let vols = volumes(f.d());
    assert_eq!(
        vols[1],
        (1, "snapshot".into(), "upgrade:pre-1".into(), Some(0))
    );
    assert_eq!(
        vols[2],
        (2, "snapshot".into(), "upgrade:post-2".into(), Some(1))
    );
    // The pair brackets the write.
    let diff = json(&ok(["diff", f.d(), "1", "2", "--json"]));
    assert_eq!(diff["blocks"], 3);

    // The bare event, and unknown ones, do nothing.
    assert_eq!(
        ok_text(["event", f.d(), "upgrade"]),
        "nothing to do: no rule acts on event \"upgrade\"\n"
    );
    ok(["event", f.d(), "deploy:pre"]);
    assert_eq!(volume_ids(f.d()), [0, 1, 2, 3]);

    // Without a policy, an event changes nothing (and is not an error).
    ok(["policy", "clear", f.d()]);
    let out = ok_text(["event", f.d(), "upgrade:pre"]);
    assert!(out.contains("no policy is set"), "{out}");
    assert!(run_entries(&ok(["event", f.d(), "upgrade:pre", "--json"])).is_empty());
    assert_eq!(volume_ids(f.d()), [0, 1, 2, 3]);
}

// ----- audit -------------------------------------------------------------------------------------

#[test]
fn the_audit_trail_lists_every_entry_and_survives_reopen() {
    let f = Fixture::new();
    assert_eq!(
        ok_text(["audit", f.d()]),
        format!("the audit trail of {} is empty\n", f.d())
    );
    f.set_policy(
        r#"
[[rules]]
name = "mark"
kind = "event"
event = "mark"
action = "snapshot"
label = "mark-{n}"

[[rules]]
name = "two"
kind = "retain"
label_prefix = "mark-"
keep = { last = 2 }
"#,
    );
    for _ in 0..3 {
        ok(["event", f.d(), "mark"]);
    }
    ok(["policy", "run", f.d()]);
    // Other commands open and close the store in between.
    f.write(0, 1, 1);
    f.snapshot("manual");

    let entries: Vec<_> = f.audit().iter().map(entry_summary).collect();
    assert_eq!(
        entries,
        [
            entry("snapshot", 1, "applied"),
            entry("snapshot", 2, "applied"),
            entry("snapshot", 3, "applied"),
            entry("delete", 1, "applied"),
        ]
    );
    let audit = f.audit();
    assert_eq!(audit[0]["decision"]["label"], "mark-1");
    assert!(audit[0]["time"].as_str().unwrap().ends_with('Z'));
    assert!(audit[0]["at_ms"].as_u64().unwrap() <= audit[3]["at_ms"].as_u64().unwrap());

    let last = json(&ok(["audit", f.d(), "--json", "--limit", "1"]));
    assert_eq!(last.as_array().unwrap().len(), 1);
    assert_eq!(last[0]["decision"]["decision"], "delete");

    let text = ok_text(["audit", f.d(), "--limit", "2"]);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4, "{text}");
    assert!(lines[0].starts_with("TIME"), "{text}");
    assert!(
        lines[1].contains("snapshot") && lines[1].contains("\"mark-3\""),
        "{text}"
    );
    assert!(
        lines[2].contains("delete") && lines[2].contains("rules[1] \"two\""),
        "{text}"
    );
    assert_eq!(lines[3], "(the newest 2 of 4 entries)");
}

// ----- copies ------------------------------------------------------------------------------------

/// The streams in `dir`, by name.
fn stream_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn copies_to_a_target_directory_receive_into_an_identical_store() {
    let f = Fixture::new();
    f.set_policy(
        r#"
[[rules]]
name = "daily"
kind = "copy_every"
target = "backup"
copy_every_ms = 86_400_000

[[rules]]
name = "ship"
kind = "event"
event = "ship"
action = "copy"
target = "backup"
"#,
    );
    let backup = f.path("backup");
    let target = format!("backup={backup}");

    // No snapshot yet: the copy is skipped.
    let out = ok(["policy", "run", f.d(), "--target", &target, "--json"]);
    let entries = run_entries(&out);
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].2, "skipped");

    f.write(0, 0x11, 8);
    f.write(2, 0x22, 2);
    assert_eq!(f.snapshot("first"), 1);
    f.write(30, 0x33, 4);
    assert_eq!(f.snapshot("second"), 2);

    // Without --target the copy fails, is recorded as failed, and the command exits 1.
    let out = run(["event", f.d(), "ship"], None);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("failed: "), "{stdout}");
    assert!(stdout.contains("--target backup=DIR"), "{stdout}");
    assert!(
        stderr.starts_with("error[POLICY_FAILED]: the decision failed"),
        "{stderr}"
    );
    let last = f.audit().last().cloned().unwrap();
    assert_eq!(last["outcome"]["outcome"], "failed");
    assert!(!Path::new(&backup).exists());

    // The first copy is a full stream up to volume 2.
    let out = ok(["event", f.d(), "ship", "--target", &target, "--json"]);
    assert_eq!(run_entries(&out), [entry("copy", 2, "applied")]);
    let written = &json(&out)["files"][0];
    assert_eq!(written["path"], format!("{backup}/2.stream"));
    assert_eq!(stream_files(Path::new(&backup)), ["2.stream"]);

    // Nothing new: skipped.
    let out = ok(["event", f.d(), "ship", "--target", &target, "--json"]);
    assert_eq!(run_entries(&out)[0].2, "skipped");

    // The next copy is incremental.
    f.write(40, 0x44, 1);
    assert_eq!(f.snapshot("third"), 3);
    f.write(41, 0x55, 1);
    assert_eq!(f.snapshot("fourth"), 4);
    let text = ok_text(["event", f.d(), "ship", "--target", &target]);
    assert!(
        text.contains(&format!("copy to \"backup\": wrote {backup}/4.stream")),
        "{text}"
    );
    assert_eq!(stream_files(Path::new(&backup)), ["2.stream", "4.stream"]);

    // Received in order, the streams rebuild the store.
    let copy = f.path("copy");
    ok(["receive", &copy, "-i", &format!("{backup}/2.stream")]);
    ok(["receive", &copy, "-i", &format!("{backup}/4.stream")]);
    let source: Vec<_> = volumes(f.d())
        .into_iter()
        .filter(|v| v.1 == "snapshot")
        .collect();
    let received: Vec<_> = volumes(&copy)
        .into_iter()
        .filter(|v| v.1 == "snapshot")
        .collect();
    assert_eq!(received, source);
    for v in ["baseline", "1", "2", "3", "4"] {
        assert!(export(&copy, v) == export(f.d(), v), "volume {v} differs");
    }
}

// ----- help --------------------------------------------------------------------------------------

#[test]
fn policy_help_teaches_rules_labels_retention_and_precedence() {
    let help = ok_text(["policy", "--help"]);
    for concept in [
        "temporal",
        "status",
        "event",
        "{date}",
        "{time}",
        "{n}",
        "{event}",
        "{rule}",
        "hourly",
        "monthly",
        "sanoid",
        "Precedence",
        "hold",
        "TTL",
        "[[rules]]",
        "keep = { last = 3",
        "\"rules\": [",
        "\"keep\": { \"last\": 3",
        "strata policy run ./vol --dry-run --until 30d",
    ] {
        assert!(help.contains(concept), "`policy --help` lacks {concept:?}");
    }
    for command in [
        &["policy", "set"][..],
        &["policy", "show"],
        &["policy", "clear"],
        &["policy", "run"],
        &["event"],
        &["hold"],
        &["ttl"],
        &["audit"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = ok_text(&args);
        assert!(
            help.contains("Example"),
            "`{command:?} --help` lacks an example"
        );
        assert!(
            help.contains(&format!("strata {} ", command.join(" "))),
            "{help}"
        );
    }
}

#[test]
fn a_threshold_rule_acts_by_itself_after_a_write_unless_policies_are_manual() {
    let f = Fixture::new();
    let policy = f.file(
        "busy.json",
        r#"{ "rules": [ { "name": "busy", "kind": "threshold", "status": "writes_since_snapshot",
              "above": 1, "action": "snapshot", "label": "busy-{n}" } ] }"#,
    );
    ok(["policy", "set", &f.dir, &policy]);
    let write = |extra: &[&str]| {
        let mut args = vec![
            "write",
            f.dir.as_str(),
            "--addr",
            "0",
            "--pattern",
            "7",
            "--blocks",
            "1",
        ];
        args.extend_from_slice(extra);
        ok(args);
    };
    // With --manual-policies the store leaves the rule alone, however far past it is.
    write(&["--manual-policies"]);
    write(&["--manual-policies"]);
    write(&["--manual-policies"]);
    assert!(json(&ok(["audit", &f.dir, "--json"]))
        .as_array()
        .unwrap()
        .is_empty());
    // The next write lets the store act: it takes the snapshot by itself.
    write(&[]);
    let audit = json(&ok(["audit", &f.dir, "--json"]));
    let entries = audit.as_array().unwrap();
    assert_eq!(entries.len(), 1, "{audit}");
    assert_eq!(entries[0]["trigger"], "after_operation");
    assert_eq!(entries[0]["after"], "write");
    assert_eq!(entries[0]["decision"]["label"], "busy-1");
    let text = ok_text(["audit", &f.dir]);
    assert!(
        text.contains("after write: rules[0] \"busy\": writes_since_snapshot 4 > 1"),
        "{text}"
    );
}

// ----- reading commands and bounds ---------------------------------------------------------------

#[test]
fn reading_commands_fire_no_open_event_rules() {
    let f = Fixture::new();
    f.set_policy(
        r#"
[[rules]]
name = "on-open"
kind = "event"
event = "open"
action = "snapshot"
"#,
    );
    f.write(0, 1, 2);
    let dir = Path::new(f.d());
    let before = files(dir);
    let volumes_before = volume_ids(f.d());
    let audit_before = f.audit().len();
    let stream = f.path("full.stream");
    let image = f.path("head.img");
    for args in [
        vec!["volumes", f.d()],
        vec!["stat", f.d()],
        vec!["log", f.d()],
        vec!["read", f.d(), "--addr", "0"],
        vec!["export", f.d(), "-o", &image],
        vec!["diff", f.d(), "baseline", "head"],
        vec!["du", f.d()],
        vec!["send", f.d(), "-o", &stream],
        vec!["audit", f.d()],
        vec!["policy", "show", f.d()],
        vec!["policy", "run", f.d(), "--dry-run"],
    ] {
        ok(&args);
        assert_eq!(files(dir), before, "strata {args:?} changed the store");
    }
    assert_eq!(volume_ids(f.d()), volumes_before);
    assert_eq!(f.audit().len(), audit_before);
    // The rule is live: a writing command's open carries it out.
    f.write(1, 2, 1);
    assert!(f.audit().len() > audit_before);
    assert!(volume_ids(f.d()).len() > volumes_before.len());
}

#[test]
fn an_endless_policy_input_is_refused_at_the_limit() {
    let f = Fixture::new();
    for (script, name) in [
        (r#"exec "$0" policy set "$1" /dev/zero"#, "/dev/zero"),
        (r#"exec "$0" policy set "$1" - < /dev/zero"#, "stdin"),
    ] {
        let out = run_bounded(script, f.d());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{script}: {err}");
        assert!(
            err.starts_with(&format!(
                "error[INVALID_ARGUMENT]: {name}: the policy is longer than 262144 bytes (256.0 KiB)"
            )),
            "{err}"
        );
    }
    assert_eq!(
        json(&ok(["policy", "show", f.d(), "--json"]))["policy"],
        Value::Null
    );
}

#[test]
fn a_thousand_rules_are_refused_when_too_long_and_work_when_not() {
    let f = Fixture::new();
    // 1,000 rules of some 400 bytes each: past the 256 KiB a policy may be.
    let mut long = String::new();
    for i in 0..1000 {
        long.push_str(&format!(
            "[[rules]]\nname = \"{:0>60}\"\nkind = \"event\"\nevent = \"{:0>60}\"\naction = \"snapshot\"\nlabel = \"{}-{{date}}-{{n}}\"\n\n",
            i,
            i,
            "x".repeat(150)
        ));
    }
    assert!(long.len() > 262_144);
    let file = f.file("long.toml", &long);
    let err = fails_with(["policy", "set", f.d(), &file], None, "INVALID_ARGUMENT");
    assert!(
        err.contains("long.toml: the policy is longer than 262144 bytes"),
        "{err}"
    );
    // Refused before the store was touched: it has no policy and keeps working.
    assert_eq!(
        json(&ok(["policy", "show", f.d(), "--json"]))["policy"],
        Value::Null
    );
    f.write(0, 1, 1);
    assert_eq!(f.snapshot("after"), 1);

    // 1,000 short rules fit: they are set, and the store still opens, writes and acts on them.
    let mut short = String::new();
    for i in 0..1000 {
        short.push_str(&format!(
            "[[rules]]\nkind = \"event\"\nevent = \"e{i}\"\naction = \"snapshot\"\n\n"
        ));
    }
    let file = f.file("short.toml", &short);
    let out = ok_text(["policy", "set", f.d(), &file]);
    assert!(out.contains("1000 rules (1000 event)"), "{out}");
    f.write(1, 2, 1);
    let shown = json(&ok(["policy", "show", f.d(), "--json"]));
    assert_eq!(
        shown["policy"]["rules"].as_array().map(Vec::len),
        Some(1000)
    );
    let before = volume_ids(f.d()).len();
    ok(["event", f.d(), "e999"]);
    assert_eq!(volume_ids(f.d()).len(), before + 1);
    ok(["stat", f.d()]);
}

#[test]
fn a_policy_that_is_not_an_object_is_refused() {
    let f = Fixture::new();
    for (name, text) in [
        ("list.json", "[]"),
        ("number.json", "7"),
        ("stdin-like", "[]"),
    ] {
        let file = f.file(name, text);
        let err = fails_with(["policy", "set", f.d(), &file], None, "INVALID_ARGUMENT");
        assert!(err.contains("not a policy"), "{name}: {err}");
    }
    assert_eq!(
        json(&ok(["policy", "show", f.d(), "--json"]))["policy"],
        Value::Null
    );
}
