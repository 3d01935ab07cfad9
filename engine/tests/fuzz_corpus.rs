//! Replays the fuzz corpus (`engine/fuzz/corpus/<target>/`) and the built-in seed inputs through
//! the very harness the cargo-fuzz targets run (`engine/fuzz/harness.rs`), so that every input a
//! fuzzer ever kept is checked by a plain `cargo test`. Fails if any input panics.
//!
//! Fuzzing itself needs nightly and cargo-fuzz; see `engine/fuzz/README.md`.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

#[allow(dead_code)]
mod harness {
    include!("../fuzz/harness.rs");
}

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// Files of a directory, sorted (none if it does not exist).
fn inputs(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

/// Runs `f` on `input`; a panic becomes an error message naming the input.
fn replay(f: fn(&[u8]), what: &str, input: &[u8]) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(|| f(input))).map_err(|panic| {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "(non-string panic)".into());
        format!("{what}: {message}")
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn fuzz_corpus_replays_without_panics() {
    let mut failures = Vec::new();
    let seeds = harness::seeds();
    for &(target, f) in harness::TARGETS {
        let files = inputs(&fuzz_dir().join("corpus").join(target));
        for path in &files {
            let input = std::fs::read(path).expect("read corpus file");
            if let Err(e) = replay(f, &path.display().to_string(), &input) {
                failures.push(e);
            }
        }
        let mut seeded = 0;
        for (_, input) in seeds.iter().filter(|(t, _)| *t == target) {
            seeded += 1;
            if let Err(e) = replay(f, &format!("{target} seed {}", hex(input)), input) {
                failures.push(e);
            }
        }
        println!(
            "{target}: replayed {} corpus inputs and {seeded} built-in seeds",
            files.len()
        );
    }
    assert!(
        failures.is_empty(),
        "{} inputs panicked:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every target's corpus directory exists and is not empty (an emptied corpus would make the
/// replay above vacuous).
#[test]
fn every_target_has_a_corpus() {
    for &(target, _) in harness::TARGETS {
        let n = inputs(&fuzz_dir().join("corpus").join(target)).len();
        assert!(n > 0, "engine/fuzz/corpus/{target} is empty");
    }
}

/// Regression: inputs that made the engine panic, hang or allocate gigabytes when fuzzing
/// found them (overflowing sequence numbers and volume identifiers, a cursor that trusted a
/// damaged copy of a sealed record). They are fixed; every run replays them.
#[test]
fn known_crashes_no_longer_panic() {
    let mut failures = Vec::new();
    for &(target, f) in harness::TARGETS {
        for path in inputs(&fuzz_dir().join("crashes").join(target)) {
            let input = std::fs::read(&path).expect("read crash file");
            if let Err(e) = replay(f, &path.display().to_string(), &input) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Writes the built-in seeds into the corpus directories, for fuzzing from scratch:
/// `STRATA_WRITE_SEEDS=1 cargo test -p strata-engine --test fuzz_corpus -- --ignored write_seed_corpus`.
#[test]
#[ignore = "writes files; run by hand"]
fn write_seed_corpus() {
    if std::env::var_os("STRATA_WRITE_SEEDS").is_none() {
        println!("set STRATA_WRITE_SEEDS=1 to write the seeds into engine/fuzz/corpus");
        return;
    }
    for (target, input) in harness::seeds() {
        let dir = fuzz_dir().join("corpus").join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        let name = format!(
            "seed-{:08x}-{}",
            strata_engine::format::crc(&input),
            input.len()
        );
        std::fs::write(dir.join(name), &input).expect("write seed");
    }
}
