//! The damage suite: a store damaged the way media and people damage files must either read back
//! exactly what was acknowledged or fail with an error naming the damaged file. Never a third
//! thing (`engine/docs/format.md`, "Corruption"; the reliability guide, "Damage, not only
//! crashes").
//!
//! A seeded workload of real `strata` commands builds four systems (see `faults/workload.rs`):
//! a store created with `--blocks`, one created from a baseline image, one made by `receive`,
//! and a mirrored store with two legs; every file's content after every command is kept. The
//! reading commands (`stat`, `volumes`, `log`, `policy show`, `audit` and `export` of every
//! volume, plus `mirror status` and `scrub` for the mirror) record the acknowledged state.
//! Then, for every file of every kind found in the directories, each case copies the pristine
//! system, applies one damage (bit flips in headers, tables, data and footers; truncation at and
//! inside record boundaries, parsed from the format; a zeroed 512-byte sector or 4 KiB page;
//! deletion; a stale copy from an earlier step; a stray file added), runs every reading command
//! and judges:
//!
//! * EXACT: everything reads back identical;
//! * DETECTED: some command failed, and one names the damaged file;
//! * UNNAMED: commands failed, none naming the file (not silent, but a defect);
//! * REPAIRED: a mirror gave the store back blocks it lost and `mirror status` reported it
//!   (`store_blocks_restored`); every image is exact, and only the log of those writes differs
//!   (the legs keep blocks, not log entries, so the restored writes are new entries);
//! * SILENT: a command succeeded with anything but the acknowledged output;
//! * PANIC / HANG: a panic or death by a signal, or no answer within the timeout.
//!
//! It asserts no SILENT, PANIC or HANG case.
//!
//! ```text
//! cargo test -p strata-cli --test faults -- --nocapture
//! STRATA_SEED=1234 ...                 replay a run (the seed is printed)
//! STRATA_FAULTS_LONG=1 ...             every record boundary and field, every stale copy
//! STRATA_FAULTS_REPORT_ONLY=1 ...      print the report, assert nothing
//! STRATA_FAULTS_ONLY='zero/store/meta' run only the cases whose id contains this
//! STRATA_FAULTS_KEEP=/tmp/cases        keep the damaged copy of every case that is not exact
//! STRATA_FAULTS_JOBS=2                 cases run at once
//! STRATA_FAULTS_TIMEOUT_SECS=20        a command running longer is a hang
//! ```
//!
//! The report is also written to `<target>/tmp/faults-report.txt`.

#[path = "faults/mod.rs"]
mod faults;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use faults::cases::{self, Case};
use faults::check::{self, Outcome, Verdict};
use faults::report::{self, Report};
use faults::state::{self, Expected};
use faults::workload;
use faults::Config;

#[test]
fn every_damaged_file_reads_back_exactly_or_fails_naming_the_file() {
    let config = Config::from_env();
    let mode = if config.long { "long" } else { "default" };
    println!(
        "faults: seed {} ({mode} mode; replay with STRATA_SEED={}{})",
        config.seed,
        config.seed,
        if config.long {
            " STRATA_FAULTS_LONG=1"
        } else {
            ""
        }
    );
    let started = Instant::now();
    let tmp = tempfile::tempdir().expect("temporary directory");
    let root = tmp.path().join("world");
    let mut world = workload::build(&root, config.seed);
    let io = tmp.path().join("record-io");
    std::fs::create_dir_all(&io).expect("io dir");
    let expected: Vec<Expected> = world
        .systems
        .iter()
        .map(|sys| {
            let first = state::record(sys, &io);
            // Reading changes nothing: a second reading is the same, or the suite cannot judge.
            let second = state::record(sys, &io);
            assert!(
                first == second,
                "{}: two readings of the undamaged store differ",
                sys.name
            );
            first
        })
        .collect();
    for sys in &mut world.systems {
        sys.drop_current_versions();
    }
    let setup_secs = started.elapsed().as_secs_f64();

    let mut planned = cases::plan(&world, &expected, config.seed, config.long);
    let kinds: std::collections::BTreeSet<String> =
        planned.iter().map(|c| c.file_kind.clone()).collect();
    for kind in [
        "meta",
        "seg-head",
        "seg-sealed",
        "seg-rewritten",
        "baseline",
        "baseline.sum",
        "mirror.json",
        "primary.hdr",
        "primary.img",
        "primary.sum",
    ] {
        assert!(
            kinds.contains(kind),
            "the workload left no file of kind {kind} (found {kinds:?}): the suite would not test it"
        );
    }
    let planned_count = planned.len();
    if let Some(only) = &config.only {
        planned.retain(|c| c.id().contains(only.as_str()));
        println!(
            "faults: STRATA_FAULTS_ONLY={only:?}: {} of {planned_count} cases",
            planned.len()
        );
    }
    println!(
        "faults: workload of {} commands on {} systems, {} cases planned, setup {setup_secs:.1}s",
        world.commands,
        world.systems.len(),
        planned.len()
    );

    let scratch = tmp.path().join("cases");
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
    let cases_started = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..config.jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(case) = planned.get(i) else {
                    break;
                };
                let sys = &world.systems[case.system];
                let outcome = check::run(
                    case,
                    sys,
                    &expected[case.system],
                    &scratch.join(format!("case-{i}")),
                    config.timeout,
                    config.keep.as_deref(),
                );
                results.lock().expect("results").push((i, outcome));
            });
        }
    });
    let cases_secs = cases_started.elapsed().as_secs_f64();
    let mut results = results.into_inner().expect("results");
    results.sort_by_key(|(i, _)| *i);
    let results: Vec<(Case, Outcome)> = results
        .into_iter()
        .map(|(i, outcome)| (planned[i].clone(), outcome))
        .collect();

    let report = Report::new(&results);
    let mut text = String::new();
    text.push_str(&format!(
        "faults: seed {} ({mode} mode), {} cases in {cases_secs:.1}s ({} jobs), {:.1}s in all\n\n",
        config.seed,
        results.len(),
        config.jobs,
        started.elapsed().as_secs_f64()
    ));
    text.push_str(&report.table());
    for (verdict, title) in [
        (
            Verdict::Repaired,
            "REPAIRED: a mirror gave the store back lost blocks and said so (the log of those writes differs)",
        ),
        (
            Verdict::Silent,
            "SILENT: a command succeeded with other data",
        ),
        (
            Verdict::Panic,
            "PANIC: a command panicked or died by a signal",
        ),
        (Verdict::Hang, "HANG: a command did not answer in time"),
    ] {
        let n = results.iter().filter(|(_, o)| o.verdict == verdict).count();
        text.push_str(&format!("\n{title} ({n} cases)\n"));
        text.push_str(&report::listing(&results, verdict));
    }
    let unnamed = results
        .iter()
        .filter(|(_, o)| o.verdict == Verdict::Unnamed)
        .count();
    text.push_str(&format!(
        "\nDETECTED-UNNAMED: failed without naming the damaged file ({unnamed} cases), by kind and error code\n"
    ));
    text.push_str(&report::unnamed_groups(&results));
    let notes = report::note_summary(&results);
    if !notes.is_empty() {
        text.push_str("\nNotes (cases where it happened)\n");
        text.push_str(&notes);
    }
    text.push_str(&format!(
        "\nreplay: STRATA_SEED={}{} cargo test -p strata-cli --test faults -- --nocapture \
         (one case: add STRATA_FAULTS_ONLY='<case id>')\n",
        config.seed,
        if config.long {
            " STRATA_FAULTS_LONG=1"
        } else {
            ""
        }
    ));
    println!("\n{text}");
    let report_file = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("faults-report.txt");
    if std::fs::write(&report_file, &text).is_ok() {
        println!("faults: report written to {}", report_file.display());
    }

    assert!(!results.is_empty(), "no case ran");
    if config.report_only {
        println!("faults: STRATA_FAULTS_REPORT_ONLY is set: nothing asserted");
        return;
    }
    let failures: Vec<String> = results
        .iter()
        .filter(|(_, o)| o.verdict.is_failure())
        .map(|(c, o)| format!("{:?}: {}", o.verdict, c.id()))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} damage cases were silent, panicked or hung (seed {}):\n{}",
        failures.len(),
        results.len(),
        config.seed,
        failures.join("\n")
    );
}
