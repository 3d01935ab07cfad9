//! `strata policy set|show|clear|run`, `strata event`, `strata hold`, `strata ttl` and
//! `strata audit`: the store's storage management policy, its per-volume assignments and the
//! audit trail of what it did.

use super::*;

use std::collections::BTreeMap;
use std::path::PathBuf;

use strata_engine::policy::label::format_duration_ms;
use strata_engine::policy::{
    apply_to_model, simulate, AuditEntry, Decision, Outcome, Policy, Rule, RuleCategory, StoreView,
    Trigger, POLICY_BYTES_MAX,
};
use strata_engine::storage::StorageError;

use crate::args::{
    AuditArgs, EventArgs, HoldArgs, PolicyArgs, PolicyCommand, PolicyFormat, PolicyRunArgs,
    PolicySetArgs, PolicyShowArgs, TargetArg, TtlArgs, Until,
};

/// The code of a refused policy file or argument (the engine's).
const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
/// The code of a run in which some decision failed.
const POLICY_FAILED: &str = "POLICY_FAILED";

fn invalid(message: String) -> CliError {
    CliError::Message {
        code: INVALID_ARGUMENT,
        message,
    }
}

fn no_policy(dir: &Path) -> CliError {
    invalid(format!(
        "{}: no policy is set; set one with `strata policy set {} FILE`",
        dir.display(),
        dir.display()
    ))
}

pub fn policy(args: PolicyArgs) -> CliResult {
    match args.command {
        PolicyCommand::Set(a) => set(a),
        PolicyCommand::Show(a) => show(a),
        PolicyCommand::Clear(a) => clear(a),
        PolicyCommand::Run(a) => run(a),
    }
}

// ----- describing rules --------------------------------------------------------------------------

fn category_name(category: RuleCategory) -> &'static str {
    match category {
        RuleCategory::Temporal => "temporal",
        RuleCategory::Status => "status",
        RuleCategory::Event => "event",
    }
}

/// `6 rules (4 temporal, 1 status, 1 event)`.
fn rule_counts(policy: &Policy) -> String {
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for rule in &policy.rules {
        *counts.entry(category_name(rule.category())).or_default() += 1;
    }
    let parts: Vec<String> = ["temporal", "status", "event"]
        .iter()
        .filter_map(|c| counts.get(c).map(|n| format!("{n} {c}")))
        .collect();
    let mut text = plural(policy.rules.len() as u64, "rule", "rules");
    if !parts.is_empty() {
        text.push_str(&format!(" ({})", parts.join(", ")));
    }
    text
}

/// `rules[0] "hourly"` (or `rules[0]`).
fn rule_ref(index: usize, rule: &Rule) -> String {
    match rule.name() {
        Some(name) => format!("rules[{index}] {name:?}"),
        None => format!("rules[{index}]"),
    }
}

// ----- set ---------------------------------------------------------------------------------------

/// Reads a policy document from `input`: at most [`POLICY_BYTES_MAX`] bytes (one more is read
/// to tell a longer input, which is refused without reading the rest), as UTF-8 text.
fn read_bounded(input: &mut impl Read, name: &str) -> CliResult<String> {
    let limit = POLICY_BYTES_MAX as u64;
    let mut bytes = Vec::new();
    input
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(name, e))?;
    if bytes.len() as u64 > limit {
        return Err(invalid(format!(
            "{name}: the policy is longer than {limit} bytes ({}), the most a policy file may be",
            strata_units::format_bytes(limit)
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        invalid(format!(
            "{name}: not a policy: not UTF-8 text (at byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads and checks a policy file: TOML or JSON by `format`, the extension, or a sniff.
fn read_policy(path: &Path, format: Option<PolicyFormat>) -> CliResult<Policy> {
    let from_stdin = path.as_os_str() == "-";
    let name = if from_stdin {
        "stdin".to_string()
    } else {
        path.display().to_string()
    };
    let text = if from_stdin {
        read_bounded(&mut io::stdin().lock(), &name)?
    } else {
        let mut file = File::open(path).map_err(|e| CliError::io(&name, e))?;
        read_bounded(&mut file, &name)?
    };
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let format = match (format, extension.as_deref()) {
        (Some(format), _) => format,
        (None, Some("toml")) => PolicyFormat::Toml,
        (None, Some("json")) => PolicyFormat::Json,
        (None, _) if text.trim_start().starts_with('{') => PolicyFormat::Json,
        (None, _) => PolicyFormat::Toml,
    };
    let parsed: Result<Policy, String> = match format {
        PolicyFormat::Toml => toml::from_str(&text).map_err(|e| e.to_string()),
        // A policy is a JSON object: serde would take `[]` for an empty policy.
        PolicyFormat::Json if !text.trim_start().starts_with('{') => {
            Err("a policy is a JSON object ({\"rules\": [...]})".to_string())
        }
        PolicyFormat::Json => serde_json::from_str(&text).map_err(|e| e.to_string()),
    };
    let policy = parsed.map_err(|e| {
        let syntax = match format {
            PolicyFormat::Toml => "TOML",
            PolicyFormat::Json => "JSON",
        };
        invalid(format!("{name}: not a policy ({syntax}): {}", e.trim_end()))
    })?;
    policy
        .validate()
        .map_err(|e| invalid(format!("{name}: {e}")))?;
    Ok(policy)
}

fn set(args: PolicySetArgs) -> CliResult {
    // Checked before the store is opened: a bad file changes nothing.
    let policy = read_policy(&args.file, args.format)?;
    let mut store = open_store(&args.store.dir)?;
    block_on(store.set_policy(Some(policy.clone())))?;
    block_on(store.close())?;
    let mut text = format!(
        "policy set on {}: {}; labels: {}",
        args.store.dir.display(),
        rule_counts(&policy),
        policy.labels.describe()
    );
    for (index, rule) in policy.rules.iter().enumerate() {
        text.push_str(&format!(
            "\n  {}: {}",
            rule_ref(index, rule),
            rule.describe()
        ));
    }
    super::ops::print_line(&text)
}

// ----- show --------------------------------------------------------------------------------------

#[derive(Serialize)]
struct ShowJson<'a> {
    policy: Option<&'a Policy>,
    assignments: Vec<AssignmentJson>,
}

#[derive(Serialize)]
struct AssignmentJson {
    volume: u64,
    label: String,
    hold: bool,
    ttl_ms: Option<u64>,
    /// When the TTL deletes the volume (its snapshot time plus the TTL), if it is sealed.
    expires_ms: Option<u64>,
}

fn assignment_rows(store: &Managed<Store<DirStorage>>) -> Vec<AssignmentJson> {
    store
        .assignments()
        .iter()
        .map(|(volume, a)| {
            let info = store.volume(volume).ok();
            AssignmentJson {
                volume: volume.0,
                label: info.as_ref().map(|v| v.label.clone()).unwrap_or_default(),
                hold: a.hold,
                ttl_ms: a.ttl_ms,
                expires_ms: a
                    .ttl_ms
                    .zip(info.and_then(|v| v.sealed_ms))
                    .map(|(ttl, sealed)| sealed.saturating_add(ttl)),
            }
        })
        .collect()
}

fn show(args: PolicyShowArgs) -> CliResult {
    let store = open_managed_read_only(&args.store.dir)?;
    let assignments = assignment_rows(&store);
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.print.json {
        let value = ShowJson {
            policy: store.policy(),
            assignments,
        };
        writeln!(out, "{}", to_json(&value, true)?).map_err(stdout_err)?;
        return out.flush().map_err(stdout_err);
    }
    // Everything but the policy itself is a TOML comment, so the output can be set again.
    match store.policy() {
        None => writeln!(
            out,
            "# no policy is set on {} (strata policy set DIR FILE)",
            args.store.dir.display()
        )
        .map_err(stdout_err)?,
        Some(policy) => {
            writeln!(
                out,
                "# policy of {}: {}; labels: {}",
                args.store.dir.display(),
                rule_counts(policy),
                policy.labels.describe()
            )
            .map_err(stdout_err)?;
            for (index, rule) in policy.rules.iter().enumerate() {
                writeln!(out, "#   {}: {}", rule_ref(index, rule), rule.describe())
                    .map_err(stdout_err)?;
            }
            let text = toml::to_string_pretty(policy)
                .map_err(|e| CliError::io("formatting the policy as TOML", io::Error::other(e)))?;
            writeln!(out, "\n{}", text.trim_end()).map_err(stdout_err)?;
        }
    }
    writeln!(out).map_err(stdout_err)?;
    if assignments.is_empty() {
        writeln!(
            out,
            "# no volume has a hold or a TTL (strata hold, strata ttl)"
        )
        .map_err(stdout_err)?;
    } else {
        writeln!(out, "# assignments (strata hold, strata ttl):").map_err(stdout_err)?;
        for a in &assignments {
            let mut parts = Vec::new();
            if a.hold {
                parts.push("held".to_string());
            }
            if let Some(ttl) = a.ttl_ms {
                let mut ttl_text = format!("ttl {}", format_duration_ms(ttl));
                match a.expires_ms {
                    Some(at) => ttl_text.push_str(&format!(" (deleted from {})", rfc3339(at))),
                    None => ttl_text.push_str(" (counted from when it becomes a snapshot)"),
                }
                parts.push(ttl_text);
            }
            let label = if a.label.is_empty() {
                String::new()
            } else {
                format!(" {:?}", a.label)
            };
            writeln!(out, "#   volume {}{label}: {}", a.volume, parts.join(", "))
                .map_err(stdout_err)?;
        }
    }
    out.flush().map_err(stdout_err)
}

// ----- clear -------------------------------------------------------------------------------------

fn clear(args: crate::args::PolicyClearArgs) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let had = store.policy().is_some();
    if had {
        block_on(store.set_policy(None))?;
    }
    block_on(store.close())?;
    super::ops::print_line(&if had {
        format!(
            "policy cleared on {}; holds, TTLs and the audit trail are kept",
            args.store.dir.display()
        )
    } else {
        format!(
            "{} had no policy; nothing changed",
            args.store.dir.display()
        )
    })
}

// ----- copies to targets -------------------------------------------------------------------------

/// A copy stream being written to a target's directory, under a temporary name until the
/// engine reports the copy applied (and so which volume it ends at).
struct PendingStream {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    bytes: u64,
}

/// A stream file a copy produced.
#[derive(Serialize)]
struct StreamFile {
    target: String,
    path: String,
    volume: u64,
    bytes: u64,
}

/// Where the copy decisions of one run write: one directory per target name.
struct CopySink {
    targets: BTreeMap<String, PathBuf>,
    pending: BTreeMap<String, PendingStream>,
    created: u64,
}

fn storage_io(path: &Path, e: io::Error) -> Error {
    Error::Storage(StorageError::Io {
        object: path.display().to_string(),
        message: e.to_string(),
    })
}

impl CopySink {
    /// The sink for the copies of the store in `store` to `targets`, each checked first: no
    /// target directory may be in a store's directory (the copies' stream files would land
    /// among its files).
    fn new(targets: &[TargetArg], store: &Path) -> CliResult<Self> {
        let mut map = BTreeMap::new();
        for t in targets {
            if map.insert(t.name.clone(), t.dir.clone()).is_some() {
                return Err(invalid(format!(
                    "--target {} is given twice; give each target one directory",
                    t.name
                )));
            }
            super::paths::check_output_dir(&t.dir, store, &format!("--target {}", t.name))?;
        }
        Ok(CopySink {
            targets: map,
            pending: BTreeMap::new(),
            created: 0,
        })
    }

    /// The engine's copy callback: appends `chunk` to the target's pending stream file.
    fn write(&mut self, target: &str, chunk: &[u8]) -> strata_engine::Result<()> {
        if !self.pending.contains_key(target) {
            let Some(dir) = self.targets.get(target) else {
                return Err(Error::InvalidArgument(format!(
                    "copy target {target:?} has no directory: run with --target {target}=DIR"
                )));
            };
            std::fs::create_dir_all(dir).map_err(|e| storage_io(dir, e))?;
            self.created += 1;
            let path = dir.join(format!(
                ".strata-copy-{}-{}.partial",
                std::process::id(),
                self.created
            ));
            let file = File::create(&path).map_err(|e| storage_io(&path, e))?;
            let stream = PendingStream {
                dir: dir.clone(),
                path,
                file,
                bytes: 0,
            };
            self.pending.insert(target.to_string(), stream);
        }
        let Some(stream) = self.pending.get_mut(target) else {
            return Err(Error::InvalidArgument(format!(
                "copy target {target:?} lost its stream file"
            )));
        };
        stream
            .file
            .write_all(chunk)
            .map_err(|e| storage_io(&stream.path, e))?;
        stream.bytes += chunk.len() as u64;
        Ok(())
    }

    /// After the run: the stream of each applied copy becomes `DIR/<volume>.stream` (durably);
    /// the others (failed copies) are removed.
    fn finish(mut self, entries: &[AuditEntry]) -> CliResult<Vec<StreamFile>> {
        let mut files = Vec::new();
        let mut first_error = None;
        for entry in entries {
            let (
                Decision::Copy { target, .. },
                Outcome::Applied {
                    volume: Some(volume),
                },
            ) = (&entry.decision, &entry.outcome)
            else {
                continue;
            };
            let Some(stream) = self.pending.remove(target) else {
                continue;
            };
            let path = stream.dir.join(format!("{volume}.stream"));
            let kept = stream
                .file
                .sync_all()
                .and_then(|()| std::fs::rename(&stream.path, &path))
                .and_then(|()| File::open(&stream.dir)?.sync_all());
            match kept {
                Ok(()) => files.push(StreamFile {
                    target: target.clone(),
                    path: path.display().to_string(),
                    volume: volume.0,
                    bytes: stream.bytes,
                }),
                Err(e) => {
                    first_error.get_or_insert(CliError::io(
                        format!(
                            "keeping the copy to {target:?} as {} (it is in {})",
                            path.display(),
                            stream.path.display()
                        ),
                        e,
                    ));
                }
            }
        }
        self.discard();
        match first_error {
            Some(e) => Err(e),
            None => Ok(files),
        }
    }

    /// Removes the streams of copies that did not complete.
    fn discard(&mut self) {
        for (_, stream) in std::mem::take(&mut self.pending) {
            drop(stream.file);
            let _ = std::fs::remove_file(&stream.path);
        }
    }
}

// ----- printing decisions ------------------------------------------------------------------------

/// One decision as printed: carried out (with an outcome) or foreseen (without).
struct Row {
    at_ms: u64,
    kind: &'static str,
    volume: Option<VolumeId>,
    detail: String,
    outcome: Option<String>,
    reason: String,
}

fn quoted_label(label: &str) -> String {
    if label.is_empty() {
        "-".to_string()
    } else {
        format!("{label:?}")
    }
}

/// What a decision is about, besides its volume: the label or the target.
fn detail(decision: &Decision, labels: &BTreeMap<VolumeId, String>) -> String {
    match decision {
        Decision::Snapshot { label, .. } => quoted_label(label),
        Decision::Copy { target, .. } => format!("to {target:?}"),
        Decision::Merge { .. } => "into the baseline".to_string(),
        Decision::Delete { volume, .. } | Decision::Compact { volume, .. } => {
            quoted_label(labels.get(volume).map_or("", String::as_str))
        }
    }
}

fn outcome_text(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied { .. } => "applied".to_string(),
        Outcome::Skipped { why } => format!("skipped: {why}"),
        Outcome::Failed { error } => format!("failed: {error}"),
    }
}

/// The volume a decision names, without knowing what it produced.
fn decision_volume(decision: &Decision) -> Option<VolumeId> {
    match decision {
        Decision::Delete { volume, .. } | Decision::Compact { volume, .. } => Some(*volume),
        Decision::Merge { up_to, .. } => Some(*up_to),
        Decision::Snapshot { .. } | Decision::Copy { .. } => None,
    }
}

fn audit_row(entry: &AuditEntry, labels: &BTreeMap<VolumeId, String>) -> Row {
    let volume = match &entry.outcome {
        Outcome::Applied {
            volume: Some(volume),
        } => Some(*volume),
        _ => decision_volume(&entry.decision),
    };
    Row {
        at_ms: entry.at_ms,
        kind: entry.decision.kind_str(),
        volume,
        detail: detail(&entry.decision, labels),
        outcome: Some(outcome_text(&entry.outcome)),
        reason: match entry.after {
            // Done by the store itself after an operation, not by a run or an event.
            Some(operation) => format!("after {}: {}", operation.as_str(), entry.decision.reason()),
            None => entry.decision.reason().to_string(),
        },
    }
}

/// Before a modelled decision is applied to `view`: the volume it will make or act on, and its
/// detail.
fn model_row(decision: &Decision, view: &StoreView, at_ms: u64) -> Row {
    let volume = match decision {
        // The snapshot seals the head, which keeps its identifier.
        Decision::Snapshot { .. } => view.head().map(|h| h.id),
        Decision::Copy { .. } => view
            .head()
            .and_then(|h| h.parent)
            .filter(|p| *p != VolumeId::BASELINE),
        _ => decision_volume(decision),
    };
    let labels: BTreeMap<VolumeId, String> = match decision_volume(decision) {
        Some(id) => view
            .volume(id)
            .map(|v| (id, v.label.clone()))
            .into_iter()
            .collect(),
        None => BTreeMap::new(),
    };
    Row {
        at_ms,
        kind: decision.kind_str(),
        volume,
        detail: detail(decision, &labels),
        outcome: None,
        reason: decision.reason().to_string(),
    }
}

fn print_rows(out: &mut impl Write, rows: &[Row]) -> CliResult {
    let with_outcome = rows.iter().any(|r| r.outcome.is_some());
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let mut row = vec![
                rfc3339(r.at_ms),
                r.kind.to_string(),
                r.volume.map_or("-".to_string(), |v| v.to_string()),
                r.detail.clone(),
            ];
            if with_outcome {
                row.push(r.outcome.clone().unwrap_or_default());
            }
            row.push(r.reason.clone());
            row
        })
        .collect();
    let mut header = vec!["TIME", "DECISION", "VOLUME", "DETAIL"];
    if with_outcome {
        header.push("OUTCOME");
    }
    header.push("REASON");
    table(out, &header, &cells, &[2]).map_err(stdout_err)
}

#[derive(Serialize)]
struct AuditJson<'a> {
    time: String,
    #[serde(flatten)]
    entry: &'a AuditEntry,
}

fn audit_json(entries: &[AuditEntry]) -> Vec<AuditJson<'_>> {
    entries
        .iter()
        .map(|entry| AuditJson {
            time: rfc3339(entry.at_ms),
            entry,
        })
        .collect()
}

/// Labels of the store's volumes, for the DETAIL of deletions and compactions.
fn labels_of(store: &Store<DirStorage>) -> BTreeMap<VolumeId, String> {
    store
        .volumes()
        .into_iter()
        .map(|v| (v.id, v.label))
        .collect()
}

// ----- run and event -----------------------------------------------------------------------------

#[derive(Serialize)]
struct RunJson<'a> {
    trigger: &'a str,
    entries: Vec<AuditJson<'a>>,
    files: Vec<StreamFile>,
}

/// Evaluates the policy for `trigger`, carries the decisions out and prints the audit entries.
/// A policy run for people: its decisions, the copies it wrote, a count by outcome.
fn print_run(
    out: &mut impl Write,
    trigger_name: &str,
    entries: &[AuditEntry],
    labels: &BTreeMap<VolumeId, String>,
    files: &[StreamFile],
) -> CliResult {
    if entries.is_empty() {
        let what = match trigger_name {
            "run" => "no rule is due".to_string(),
            event => format!("no rule acts on {event}"),
        };
        return writeln!(out, "nothing to do: {what}").map_err(stdout_err);
    }
    let rows: Vec<Row> = entries.iter().map(|e| audit_row(e, labels)).collect();
    print_rows(out, &rows)?;
    for f in files {
        writeln!(
            out,
            "copy to {:?}: wrote {} ({}), up to volume {}",
            f.target,
            f.path,
            strata_units::format_bytes(f.bytes),
            f.volume
        )
        .map_err(stdout_err)?;
    }
    let count = |skipped: bool| {
        entries
            .iter()
            .filter(|e| match e.outcome {
                Outcome::Skipped { .. } => skipped,
                Outcome::Failed { .. } => !skipped,
                _ => false,
            })
            .count()
    };
    let (skipped, failed) = (count(true), count(false));
    writeln!(
        out,
        "{}: {} applied, {skipped} skipped, {failed} failed",
        plural(entries.len() as u64, "decision", "decisions"),
        entries.len() - skipped - failed,
    )
    .map_err(stdout_err)
}

fn execute(
    dir: &Path,
    trigger: Trigger,
    targets: &[TargetArg],
    json: bool,
    require_policy: bool,
) -> CliResult {
    let mut sink = CopySink::new(targets, dir)?;
    let mut store = open_store(dir)?;
    let trigger_name = match &trigger {
        Trigger::Event(name) => format!("event {name:?}"),
        _ => "run".to_string(),
    };
    if store.policy().is_none() {
        if require_policy {
            return Err(no_policy(dir));
        }
        block_on(store.close())?;
        if json {
            let value = RunJson {
                trigger: &trigger_name,
                entries: Vec::new(),
                files: Vec::new(),
            };
            return super::ops::print_line(&to_json(&value, true)?);
        }
        return super::ops::print_line(&format!(
            "{}: no policy is set, so the {trigger_name} changed nothing",
            dir.display()
        ));
    }
    let labels = labels_of(&store);
    let result = block_on(store.run_policies(trigger, None, &mut |target, chunk| {
        sink.write(target, chunk)
    }));
    let entries = match result {
        Ok(entries) => entries,
        Err(e) => {
            sink.discard();
            return Err(e.into());
        }
    };
    let files = sink.finish(&entries);
    block_on(store.close())?;
    let files = files?;
    let failed = entries
        .iter()
        .filter(|e| matches!(e.outcome, Outcome::Failed { .. }))
        .count();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if json {
        let value = RunJson {
            trigger: &trigger_name,
            entries: audit_json(&entries),
            files,
        };
        writeln!(out, "{}", to_json(&value, true)?).map_err(stdout_err)?;
    } else {
        print_run(&mut out, &trigger_name, &entries, &labels, &files)?;
    }
    out.flush().map_err(stdout_err)?;
    if failed > 0 {
        return Err(CliError::Message {
            code: POLICY_FAILED,
            message: match (failed, entries.len()) {
                (1, 1) => "the decision failed".to_string(),
                (failed, total) => format!("{failed} of {total} decisions failed"),
            } + " (see above, and `strata audit`)",
        });
    }
    Ok(())
}

fn run(args: PolicyRunArgs) -> CliResult {
    if !args.dry_run {
        return execute(
            &args.store.dir,
            Trigger::Tick,
            &args.targets,
            args.print.json,
            true,
        );
    }
    let store = open_managed_read_only(&args.store.dir)?;
    let Some(policy) = store.policy().cloned() else {
        return Err(no_policy(&args.store.dir));
    };
    let now = clock().now_ms();
    let window = dry_run_window(&args, now)?;
    let simulated = args.until.map(|_| window);
    let dry_run = DryRun::of(&store, &policy, simulated, now)?;
    drop(store);
    let summary = dry_run.summary();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.print.json {
        let (from, until, step) = window;
        let value = DryRunJson {
            from_ms: from,
            until_ms: until,
            step_ms: args.until.map(|_| step),
            steps: (until - from) / step + 1,
            timeline: dry_run
                .rows
                .iter()
                .zip(&dry_run.timeline)
                .map(|(row, decision)| TimelineJson {
                    at_ms: row.at_ms,
                    time: rfc3339(row.at_ms),
                    volume: row.volume.map(|v| v.0),
                    decision,
                })
                .collect(),
            summary,
        };
        writeln!(out, "{}", to_json(&value, true)?).map_err(stdout_err)?;
        return out.flush().map_err(stdout_err);
    }
    print_dry_run(&mut out, &dry_run, &summary, simulated)?;
    out.flush().map_err(stdout_err)
}

/// The dry run's window: from now to `--until` (or now alone), evaluated every `--step`.
fn dry_run_window(args: &PolicyRunArgs, now: u64) -> CliResult<(u64, u64, u64)> {
    let Some(until) = args.until else {
        return Ok((now, now, 1));
    };
    let until_ms = match until {
        Until::In(ms) => now.saturating_add(ms),
        Until::At(ms) => ms,
    };
    if until_ms < now {
        return Err(invalid(format!(
            "--until {} is in the past (now is {})",
            rfc3339(until_ms),
            rfc3339(now)
        )));
    }
    Ok((now, until_ms, args.step.0))
}

/// What a dry run found: the decisions, a row for each, the model of the store afterwards.
struct DryRun {
    rows: Vec<Row>,
    timeline: Vec<Decision>,
    view: StoreView,
    merged_partitions: u64,
}

impl DryRun {
    /// The policy's decisions now (the engine's own dry run), or simulated over `simulated`
    /// (from, until, step) on a model of the store.
    fn of(
        store: &Managed<Store<DirStorage>>,
        policy: &Policy,
        simulated: Option<(u64, u64, u64)>,
        now: u64,
    ) -> CliResult<DryRun> {
        let mut rows = Vec::new();
        let mut merged_partitions = 0u64;
        let mut apply = |decision: &Decision, view: &mut StoreView, at_ms: u64| {
            rows.push(model_row(decision, view, at_ms));
            let before = view.volumes.len();
            apply_to_model(decision, view, at_ms);
            if matches!(decision, Decision::Merge { .. }) {
                merged_partitions += before.saturating_sub(view.volumes.len()) as u64;
            }
        };
        let (timeline, view) = if let Some((from, until, step)) = simulated {
            let simulation = simulate(
                policy,
                store.assignments(),
                store.policy_view(None),
                from,
                until,
                step,
                &mut apply,
            )
            .map_err(|e| invalid(format!("cannot simulate: {e}")))?;
            let decisions = simulation
                .timeline
                .into_iter()
                .map(|t| t.decision)
                .collect();
            (decisions, simulation.view)
        } else {
            // What the policy decides now: the engine's own dry run.
            let mut view = store.policy_view(None);
            let decisions = store.policy_dry_run(Trigger::Tick, None);
            for decision in &decisions {
                apply(decision, &mut view, now);
            }
            (decisions, view)
        };
        Ok(DryRun {
            rows,
            timeline,
            view,
            merged_partitions,
        })
    }

    fn summary(&self) -> SummaryJson {
        let count = |kind: &str| {
            self.timeline
                .iter()
                .filter(|d| d.kind_str() == kind)
                .count() as u64
        };
        SummaryJson {
            snapshots: count("snapshot"),
            deleted: count("delete"),
            merges: count("merge"),
            merged_partitions: self.merged_partitions,
            compacted: count("compact"),
            copied: count("copy"),
            snapshots_after: self.view.volumes.iter().filter(|v| v.is_snapshot()).count() as u64,
        }
    }
}

/// A dry run for people: its rows, the simulated window (if any), the summary.
fn print_dry_run(
    out: &mut impl Write,
    dry_run: &DryRun,
    summary: &SummaryJson,
    simulated: Option<(u64, u64, u64)>,
) -> CliResult {
    if dry_run.rows.is_empty() {
        writeln!(out, "nothing would be done: no rule is due").map_err(stdout_err)?;
    } else {
        print_rows(out, &dry_run.rows)?;
    }
    if let Some((from, until, step)) = simulated {
        writeln!(
            out,
            "simulated {} every {} from {} to {}",
            plural((until - from) / step + 1, "evaluation", "evaluations"),
            format_duration_ms(step),
            rfc3339(from),
            rfc3339(until)
        )
        .map_err(stdout_err)?;
    }
    writeln!(
        out,
        "would take {}, delete {}, merge {} ({}), compact {}, copy {}; {} afterwards",
        plural(summary.snapshots, "snapshot", "snapshots"),
        summary.deleted,
        summary.merges,
        plural(summary.merged_partitions, "partition", "partitions"),
        summary.compacted,
        summary.copied,
        plural(summary.snapshots_after, "snapshot", "snapshots"),
    )
    .map_err(stdout_err)?;
    writeln!(out, "dry run: nothing was written").map_err(stdout_err)
}

#[derive(Serialize)]
struct TimelineJson<'a> {
    at_ms: u64,
    time: String,
    /// The volume the decision makes or acts on, in the model.
    volume: Option<u64>,
    decision: &'a Decision,
}

#[derive(Serialize)]
struct SummaryJson {
    snapshots: u64,
    deleted: u64,
    merges: u64,
    merged_partitions: u64,
    compacted: u64,
    copied: u64,
    snapshots_after: u64,
}

#[derive(Serialize)]
struct DryRunJson<'a> {
    from_ms: u64,
    until_ms: u64,
    step_ms: Option<u64>,
    steps: u64,
    timeline: Vec<TimelineJson<'a>>,
    summary: SummaryJson,
}

pub fn event(args: EventArgs) -> CliResult {
    if args.name.is_empty() {
        return Err(invalid("the event name must not be empty".to_string()));
    }
    execute(
        &args.store.dir,
        Trigger::Event(args.name.clone()),
        &args.targets,
        args.print.json,
        false,
    )
}

// ----- hold and ttl ------------------------------------------------------------------------------

pub fn hold(args: HoldArgs) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let volume = resolve(&store, args.volume)?.id;
    let was_held = store.assignments().is_held(volume);
    let hold = !args.release;
    let mut assignments = store.assignments().clone();
    assignments.set_hold(volume, hold);
    if was_held != hold {
        block_on(store.set_assignments(assignments))?;
    }
    block_on(store.close())?;
    let text = match (args.release, was_held) {
        (false, false) => {
            format!("volume {volume} is held: no policy rule or TTL will delete or merge it")
        }
        (false, true) => format!("volume {volume} was already held"),
        (true, true) => {
            format!("released the hold on volume {volume}: the policy may delete or merge it again")
        }
        (true, false) => format!("volume {volume} was not held; nothing changed"),
    };
    super::ops::print_line(&text)
}

pub fn ttl(args: TtlArgs) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    let info = resolve(&store, args.volume)?;
    let volume = info.id;
    if volume == VolumeId::BASELINE && args.ttl.is_some() {
        return Err(invalid(
            "the baseline cannot be deleted, so it cannot have a TTL".to_string(),
        ));
    }
    let ttl_ms = args.ttl.map(|d| d.0);
    let before = store.assignments().get(volume).ttl_ms;
    let mut assignments = store.assignments().clone();
    assignments.set_ttl_ms(volume, ttl_ms);
    if before != ttl_ms {
        block_on(store.set_assignments(assignments))?;
    }
    let held = store.assignments().is_held(volume);
    let has_policy = store.policy().is_some();
    block_on(store.close())?;
    let mut text = match (ttl_ms, before) {
        (None, None) => format!("volume {volume} had no TTL; nothing changed"),
        (None, Some(_)) => {
            format!("cleared the TTL of volume {volume}: retention rules apply to it again")
        }
        (Some(ttl), _) => match info.sealed_ms {
            Some(sealed) => format!(
                "volume {volume} will be deleted by `strata policy run` from {} (taken {} + {})",
                rfc3339(sealed.saturating_add(ttl)),
                rfc3339(sealed),
                format_duration_ms(ttl)
            ),
            None => format!(
                "volume {volume} gets a TTL of {}, counted from when it becomes a snapshot",
                format_duration_ms(ttl)
            ),
        },
    };
    if ttl_ms.is_some() && held {
        text.push_str("\nnote: it is held, so it stays until the hold is released");
    }
    if ttl_ms.is_some() && !has_policy {
        text.push_str("\nnote: no policy is set; TTLs take effect when one is (strata policy set)");
    }
    super::ops::print_line(&text)
}

// ----- audit -------------------------------------------------------------------------------------

pub fn audit(args: AuditArgs) -> CliResult {
    let store = open_managed_read_only(&args.store.dir)?;
    let all = store.audit();
    let entries = match args.limit {
        Some(n) => &all[all.len().saturating_sub(n)..],
        None => all,
    };
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.print.json {
        writeln!(out, "{}", to_json(&audit_json(entries), true)?).map_err(stdout_err)?;
    } else if entries.is_empty() {
        writeln!(
            out,
            "the audit trail of {} is empty",
            args.store.dir.display()
        )
        .map_err(stdout_err)?;
    } else {
        let labels = labels_of(&store);
        let rows: Vec<Row> = entries.iter().map(|e| audit_row(e, &labels)).collect();
        print_rows(&mut out, &rows)?;
        if entries.len() < all.len() {
            writeln!(
                out,
                "(the newest {} of {})",
                entries.len(),
                plural(all.len() as u64, "entry", "entries")
            )
            .map_err(stdout_err)?;
        }
    }
    out.flush().map_err(stdout_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_read_as_sentences() {
        let policy: Policy = toml::from_str(crate::args::POLICY_EXAMPLE_TOML).unwrap();
        let lines: Vec<String> = policy.rules.iter().map(Rule::describe).collect();
        assert_eq!(
            lines,
            [
                "snapshot every 1h, labelled \"hourly-{date}-{time}\"",
                "retain snapshots labelled \"hourly-\"...: keep 3 last, 24 hourly, 7 daily, 4 weekly, 6 monthly",
                "merge snapshots older than 365d into the baseline",
                "copy to \"backup\" every 1d",
                "compact while reclaimable_ratio > 0.3, at most every 10m",
                "snapshot on event \"deploy:pre\" and \"deploy:post\", labelled \"{event}-{date}\"",
            ]
        );
        assert_eq!(
            rule_counts(&policy),
            "6 rules (4 temporal, 1 status, 1 event)"
        );
    }

    #[test]
    fn shown_toml_reads_back_as_the_same_policy() {
        let policy: Policy = toml::from_str(crate::args::POLICY_EXAMPLE_TOML).unwrap();
        let text = toml::to_string_pretty(&policy).unwrap();
        let back: Policy = toml::from_str(&text).unwrap();
        assert_eq!(back, policy);
    }
}
