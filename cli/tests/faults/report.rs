//! The table of counts, and the cases a developer has to look at.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::cases::Case;
use super::check::{Outcome, Verdict};

/// Counts for one row.
#[derive(Debug, Default, Clone, Copy)]
pub struct Counts {
    pub injected: usize,
    pub exact: usize,
    pub detected: usize,
    pub unnamed: usize,
    pub repaired: usize,
    pub silent: usize,
    pub panic: usize,
    pub hang: usize,
}

impl Counts {
    fn add(&mut self, verdict: Verdict) {
        self.injected += 1;
        match verdict {
            Verdict::Exact => self.exact += 1,
            Verdict::Detected => self.detected += 1,
            Verdict::Unnamed => self.unnamed += 1,
            Verdict::Repaired => self.repaired += 1,
            Verdict::Silent => self.silent += 1,
            Verdict::Panic => self.panic += 1,
            Verdict::Hang => self.hang += 1,
        }
    }

    fn merge(&mut self, other: &Counts) {
        self.injected += other.injected;
        self.exact += other.exact;
        self.detected += other.detected;
        self.unnamed += other.unnamed;
        self.repaired += other.repaired;
        self.silent += other.silent;
        self.panic += other.panic;
        self.hang += other.hang;
    }
}

pub struct Report {
    pub rows: BTreeMap<(String, &'static str), Counts>,
    pub systems: BTreeMap<&'static str, Counts>,
    pub total: Counts,
}

/// The order file kinds appear in.
fn kind_rank(kind: &str) -> (usize, String) {
    let order = [
        "meta",
        "seg-head",
        "seg-sealed",
        "seg-rewritten",
        "seg-spare",
        "baseline",
        "baseline.sum",
        "commit",
        "mirror.json",
        "primary.hdr",
        "primary.img",
        "primary.sum",
    ];
    (
        order.iter().position(|k| *k == kind).unwrap_or(order.len()),
        kind.to_string(),
    )
}

impl Report {
    pub fn new(results: &[(Case, Outcome)]) -> Self {
        let mut rows: BTreeMap<(String, &'static str), Counts> = BTreeMap::new();
        let mut systems: BTreeMap<&'static str, Counts> = BTreeMap::new();
        let mut total = Counts::default();
        for (case, outcome) in results {
            rows.entry((case.file_kind.clone(), case.damage_kind))
                .or_default()
                .add(outcome.verdict);
            systems
                .entry(case.system_name)
                .or_default()
                .add(outcome.verdict);
            total.add(outcome.verdict);
        }
        Report {
            rows,
            systems,
            total,
        }
    }

    /// The table: one row per file kind and damage kind, then per system, then the total.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let header = |out: &mut String, first: &str| {
            let _ = writeln!(
                out,
                "{first:<16} {:<18} {:>8} {:>6} {:>8} {:>8} {:>8} {:>6} {:>6} {:>5}",
                "DAMAGE",
                "INJECTED",
                "EXACT",
                "DETECTED",
                "UNNAMED",
                "REPAIRED",
                "SILENT",
                "PANIC",
                "HANG"
            );
        };
        let line = |out: &mut String, a: &str, b: &str, c: &Counts| {
            let _ = writeln!(
                out,
                "{a:<16} {b:<18} {:>8} {:>6} {:>8} {:>8} {:>8} {:>6} {:>6} {:>5}",
                c.injected, c.exact, c.detected, c.unnamed, c.repaired, c.silent, c.panic, c.hang
            );
        };
        header(&mut out, "FILE KIND");
        let mut keys: Vec<&(String, &'static str)> = self.rows.keys().collect();
        keys.sort_by_key(|(kind, damage)| (kind_rank(kind), *damage));
        let mut previous = String::new();
        let mut subtotal = Counts::default();
        for key in keys {
            if !previous.is_empty() && previous != key.0 {
                line(&mut out, &previous, "(all)", &subtotal);
                subtotal = Counts::default();
            }
            let counts = &self.rows[key];
            line(&mut out, &key.0, key.1, counts);
            subtotal.merge(counts);
            previous = key.0.clone();
        }
        if !previous.is_empty() {
            line(&mut out, &previous, "(all)", &subtotal);
        }
        out.push('\n');
        header(&mut out, "SYSTEM");
        for (system, counts) in &self.systems {
            line(&mut out, system, "(all)", counts);
        }
        line(&mut out, "TOTAL", "", &self.total);
        out
    }
}

/// The cases of one verdict, each with what went wrong, for a developer to replay.
pub fn listing(results: &[(Case, Outcome)], verdict: Verdict) -> String {
    let mut out = String::new();
    for (case, outcome) in results.iter().filter(|(_, o)| o.verdict == verdict) {
        let _ = writeln!(out, "  {}", case.id());
        for d in &outcome.differences {
            let _ = writeln!(out, "      differs: {d}");
        }
        for e in outcome
            .errors
            .iter()
            .take(if verdict == Verdict::Silent { 2 } else { 4 })
        {
            let _ = writeln!(out, "      error:   {e}");
        }
        for n in &outcome.notes {
            let _ = writeln!(out, "      note:    {n}");
        }
    }
    out
}

/// The detected-but-unnamed cases grouped by file kind, damage kind and error code, with one
/// example each.
pub fn unnamed_groups(results: &[(Case, Outcome)]) -> String {
    let mut groups: BTreeMap<(String, &'static str, String), (usize, String, String)> =
        BTreeMap::new();
    for (case, outcome) in results
        .iter()
        .filter(|(_, o)| o.verdict == Verdict::Unnamed)
    {
        let first = outcome.errors.first().cloned().unwrap_or_default();
        let code = first
            .split("error[")
            .nth(1)
            .and_then(|rest| rest.split(']').next())
            .map_or_else(|| first.chars().take(40).collect(), str::to_string);
        let entry = groups
            .entry((case.file_kind.clone(), case.damage_kind, code))
            .or_insert_with(|| (0, case.id(), first.clone()));
        entry.0 += 1;
    }
    let mut out = String::new();
    for ((kind, damage, code), (count, example, error)) in groups {
        let _ = writeln!(
            out,
            "  {kind} / {damage} / {code}: {count} case(s), e.g. {example}\n      error:   {error}"
        );
    }
    out
}

/// The notes (recovery cuts, deleted stray files) counted by kind, for the summary.
pub fn note_summary(results: &[(Case, Outcome)]) -> String {
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (_, outcome) in results {
        for note in &outcome.notes {
            let key: String = note
                .split(" = ")
                .next()
                .unwrap_or(note)
                .split(" was deleted")
                .next()
                .unwrap_or(note)
                .to_string();
            let key = if key.starts_with("the stray file") {
                "a stray file was deleted by the store".to_string()
            } else if key.starts_with("the reads deleted") {
                "a file of the undamaged store was deleted by the reads".to_string()
            } else {
                key
            };
            *counts.entry(key).or_default() += 1;
        }
    }
    let mut out = String::new();
    for (note, count) in counts {
        let _ = writeln!(out, "  {count:>5}  {note}");
    }
    out
}
