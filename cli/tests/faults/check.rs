//! One case: copy the pristine system, damage one file, read everything back, and judge.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;

use super::cases::{Case, Damage};
use super::cmd::Ran;
use super::state::{self, comparable_stat, Expected, Probe};
use super::workload::{Location, System};

/// What a case came to, worst first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Verdict {
    /// A command ran past the timeout.
    Hang,
    /// A command panicked or died by a signal.
    Panic,
    /// A command succeeded and printed something other than the acknowledged state.
    Silent,
    /// A mirror gave the store back blocks it lost (every exported image is exact) and its
    /// `mirror status` said so (`store_blocks_restored`); only the log of those writes differs
    /// (the legs hold blocks, not log entries, so the restored writes are new entries).
    Repaired,
    /// Every deviation is a failed command (or a leg taken out of service), but none names the
    /// damaged file.
    Unnamed,
    /// A failed command names the damaged file.
    Detected,
    /// Everything reads back exactly as acknowledged.
    Exact,
}

impl Verdict {
    pub fn is_failure(self) -> bool {
        matches!(self, Verdict::Hang | Verdict::Panic | Verdict::Silent)
    }
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub verdict: Verdict,
    /// What a successful command got wrong.
    pub differences: Vec<String>,
    /// `command: first line of stderr` of every failed command, and legs out of service.
    pub errors: Vec<String>,
    /// Things worth knowing that are not failures (recovery cut bytes, a stray file deleted).
    pub notes: Vec<String>,
}

/// Whether `text` names the object `name` (as a word: `baseline` is not named by
/// `baseline.sum`).
pub fn names(text: &str, name: &str) -> bool {
    text.match_indices(name).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + name.len()..].chars().next();
        let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
        let continues = |c: Option<char>| {
            word(c)
                || (c == Some('.')
                    && text[at + name.len() + 1..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphanumeric()))
        };
        !word(before) && !continues(after)
    })
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create scratch dir");
    for entry in std::fs::read_dir(from)
        .expect("read pristine dir")
        .flatten()
    {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// Points the copy's `mirror.json` at the copies of the legs.
fn relocate_legs(store: &Path, legs: &[PathBuf]) {
    let path = store.join("mirror.json");
    let text = std::fs::read_to_string(&path).expect("mirror.json");
    let mut config: Value = serde_json::from_str(&text).expect("mirror.json is JSON");
    config["legs"] = Value::Array(
        legs.iter()
            .map(|l| Value::String(l.display().to_string()))
            .collect(),
    );
    std::fs::write(&path, serde_json::to_string_pretty(&config).expect("JSON"))
        .expect("write mirror.json");
}

/// Runs `case` in `work` (created, and removed afterwards unless `keep` says where to move it
/// when the case fails).
pub fn run(
    case: &Case,
    sys: &System,
    expected: &Expected,
    work: &Path,
    timeout: Duration,
    keep: Option<&Path>,
) -> Outcome {
    let store = work.join("store");
    let legs: Vec<PathBuf> = (0..sys.legs.len())
        .map(|i| work.join("legs").join(Location::Leg(i).name()))
        .collect();
    let io = work.join("io");
    std::fs::create_dir_all(&io).expect("io dir");
    copy_dir(&sys.dir, &store);
    for (from, to) in sys.legs.iter().zip(&legs) {
        copy_dir(from, to);
    }
    if sys.mirrored {
        relocate_legs(&store, &legs);
    }
    let target = match case.location {
        Location::Store => store.clone(),
        Location::Leg(i) => legs[i].clone(),
    };
    case.apply(&target)
        .unwrap_or_else(|e| panic!("applying {}: {e}", case.id()));

    let mut runs: Vec<(Probe, Ran)> = Vec::new();
    for probe in state::probes(sys.mirrored, &expected.ids) {
        let ran = probe.run(&store, &io, timeout);
        runs.push((probe, ran));
    }
    let outcome = judge(case, sys, expected, &runs, &store, &legs);
    if let (Some(keep), true) = (keep, outcome.verdict != Verdict::Exact) {
        let name: String = case
            .id()
            .chars()
            .map(|c| {
                if c.is_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(150)
            .collect();
        let dest = keep.join(name);
        let _ = std::fs::remove_dir_all(&dest);
        let _ = std::fs::create_dir_all(keep);
        // The damaged copy as the reads left it; the reads can be run again on it.
        let _ = std::fs::rename(work, &dest);
    }
    let _ = std::fs::remove_dir_all(work);
    outcome
}

fn judge(
    case: &Case,
    sys: &System,
    expected: &Expected,
    runs: &[(Probe, Ran)],
    store: &Path,
    legs: &[PathBuf],
) -> Outcome {
    let mut differences = Vec::new();
    let mut errors = Vec::new();
    let mut notes = Vec::new();
    let mut named = false;
    let mut image_differs = false;
    let (mut hang, mut panic) = (false, false);
    for (probe, ran) in runs {
        let command = ran.short();
        if ran.timed_out {
            hang = true;
            errors.push(format!("`{command}`: no answer within the timeout"));
            continue;
        }
        if ran.panicked() {
            panic = true;
            errors.push(format!(
                "`{command}`: exit {:?}: {}",
                ran.code,
                ran.stderr.trim()
            ));
            continue;
        }
        if !ran.ok() {
            named |= names(&ran.stderr, &case.file);
            errors.push(format!("`{command}`: {}", ran.error_line()));
            continue;
        }
        match probe {
            Probe::Export(v) => {
                if let Some(d) =
                    state::image_diff(&expected.images[v], &ran.stdout, expected.block_size)
                {
                    image_differs = true;
                    differences.push(format!("`{command}`: {d}"));
                }
            }
            Probe::MirrorStatus | Probe::MirrorScrub => {}
            _ => {
                let Ok(mut actual) = serde_json::from_slice::<Value>(&ran.stdout) else {
                    differences.push(format!("`{command}`: printed invalid JSON"));
                    continue;
                };
                if *probe == Probe::Stat {
                    let recovery = &actual["recovery"];
                    for key in [
                        "journalBytesTruncated",
                        "headBytesTruncated",
                        "headBytesLost",
                        "sealedTailsRebuilt",
                        "sealsRedone",
                    ] {
                        if recovery[key].as_u64().is_some_and(|n| n > 0) {
                            notes.push(format!("stat: recovery {key} = {}", recovery[key]));
                        }
                    }
                    actual = comparable_stat(actual);
                }
                let wanted = expected.json(*probe).expect("a JSON probe");
                if let Some(d) = state::json_diff(wanted, &actual) {
                    differences.push(format!("`{command}`: {d}"));
                }
            }
        }
    }
    if sys.mirrored {
        let before = differences.len();
        judge_legs(
            case,
            expected,
            runs,
            legs,
            &mut differences,
            &mut errors,
            &mut notes,
            &mut named,
        );
        image_differs |= differences.len() > before;
    }
    if !differences.is_empty() && !image_differs {
        notes.push(
            "every exported image is exact: only what the other commands print differs".into(),
        );
    }
    let restored_reported = runs
        .iter()
        .find(|(p, r)| *p == Probe::MirrorStatus && r.ok())
        .and_then(|(_, r)| serde_json::from_slice::<Value>(&r.stdout).ok())
        .is_some_and(|s| s["secondaryBlocksRestored"].as_u64().is_some_and(|n| n > 0));
    if let Damage::Add(_) = case.damage {
        if !store.join(&case.file).exists() {
            notes.push(format!(
                "the stray file {} was deleted by the store",
                case.file
            ));
        }
    }
    // Files of the undamaged store that the reading commands removed (recovery deletes the
    // objects its journal does not name).
    for name in std::fs::read_dir(&sys.dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
    {
        let removed_by_case = name == case.file
            && case.location == Location::Store
            && matches!(case.damage, Damage::Delete);
        if !removed_by_case && !store.join(&name).exists() {
            notes.push(format!("the reads deleted {name}"));
        }
    }
    let verdict = if hang {
        Verdict::Hang
    } else if panic {
        Verdict::Panic
    } else if !differences.is_empty() && !image_differs && restored_reported {
        Verdict::Repaired
    } else if !differences.is_empty() {
        Verdict::Silent
    } else if errors.is_empty() {
        Verdict::Exact
    } else if named {
        Verdict::Detected
    } else {
        Verdict::Unnamed
    };
    Outcome {
        verdict,
        differences,
        errors,
        notes,
    }
}

/// A mirror's legs, after the scrub: a leg the last `mirror status` calls healthy must hold
/// exactly the head; one out of service counts as reported (naming the file if its reason does).
#[allow(clippy::too_many_arguments)]
fn judge_legs(
    case: &Case,
    expected: &Expected,
    runs: &[(Probe, Ran)],
    legs: &[PathBuf],
    differences: &mut Vec<String>,
    errors: &mut Vec<String>,
    notes: &mut Vec<String>,
    named: &mut bool,
) {
    let statuses: Vec<Value> = runs
        .iter()
        .filter(|(p, r)| *p == Probe::MirrorStatus && r.ok())
        .filter_map(|(_, r)| serde_json::from_slice(&r.stdout).ok())
        .collect();
    if let Some(first) = statuses.first() {
        for key in ["secondaryBlocksRestored", "secondaryBlocksLost"] {
            if first[key].as_u64().is_some_and(|n| n > 0) {
                notes.push(format!("mirror status: {key} = {}", first[key]));
            }
        }
        for (i, leg) in first["legs"].as_array().into_iter().flatten().enumerate() {
            let open = leg["open"].as_str().unwrap_or("?");
            if open != "inSync" {
                notes.push(format!(
                    "mirror status: {} open = {open}",
                    Location::Leg(i).name()
                ));
            }
        }
    }
    let scrub: Option<Value> = runs
        .iter()
        .find(|(p, r)| *p == Probe::MirrorScrub && r.ok())
        .and_then(|(_, r)| serde_json::from_slice(&r.stdout).ok());
    if let Some(scrub) = scrub {
        for key in ["mismatches", "repaired"] {
            if scrub[key].as_u64().is_some_and(|n| n > 0) {
                notes.push(format!("mirror scrub: {key} = {}", scrub[key]));
            }
        }
    }
    let last_status_ok = runs
        .last()
        .is_some_and(|(p, r)| *p == Probe::MirrorStatus && r.ok());
    if !last_status_ok {
        // The final status failed: already an error; the legs cannot be judged.
        return;
    }
    let Some(status) = statuses.last() else {
        return;
    };
    let head = &expected.images[&expected.head];
    for (i, leg) in legs.iter().enumerate() {
        let info = &status["legs"][i];
        let state = info["state"].as_str().unwrap_or("?");
        let leg_name = Location::Leg(i).name();
        if state == "healthy" {
            let image = state::leg_image(leg, head.len());
            if let Some(d) = state::image_diff(head, &image, expected.block_size) {
                differences.push(format!(
                    "{leg_name}: primary.img does not hold the head ({d}) after scrub, yet `mirror status` calls it healthy"
                ));
            }
        } else {
            let reason = info["reason"].as_str().unwrap_or("");
            // A leg's reason may name a file of its own, or the store's mirror.json that points
            // at it.
            *named |= (case.location == Location::Leg(i) || case.location == Location::Store)
                && names(reason, &case.file);
            errors.push(format!("{leg_name} {state}: {reason}"));
        }
    }
}
