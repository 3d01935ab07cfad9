//! `strata mirror`: the redundant system ([`Mirror`]) over directories.
//!
//! The store directory is the secondary; each leg is a [`DirStorage`] directory. The leg list
//! lives in `DIR/mirror.json` (written to a temporary file and renamed, so it is the old list or
//! the new one). A leg directory that is missing or cannot be opened is given to the controller
//! as a [`LegDevice::Unavailable`] device that fails every I/O, so the controller marks the leg
//! degraded and keeps serving from the others, as it would for a disk that died.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use strata_engine::Volume;

use pollster::block_on;
use serde::{Deserialize, Serialize};
use strata_engine::mirror::layout::{
    current_header, HeaderState, HEADER_OBJECT, IMAGE_OBJECT, PRIMARY_HEADER_LEN,
    PRIMARY_HEADER_SLOTS, SUM_ENTRY_LEN, SUM_OBJECT,
};
use strata_engine::mirror::{
    LegOpenOutcome, LegState, MirrorOptions, MirrorStatus, ResilverReport,
};
use strata_engine::storage::dir::DirStorage;
use strata_engine::storage::{Commit, ReadRequest, Storage, StorageError};
use strata_engine::Error;

use super::ops::print_line;
use super::paths::{self, Marker};
use super::{
    clock, create_empty, create_or_undo, open_store, open_store_read_only, plural, stdout_err,
    to_json, CliResult,
};
use crate::args::mirror::{
    MirrorArgs, MirrorCommand, MirrorCreateArgs, MirrorRebuildArgs, MirrorReplaceArgs,
    MirrorScrubArgs, MirrorStatusArgs,
};
use crate::error::CliError;
use crate::format::table;

/// The file in the store directory that lists the legs.
const CONFIG_FILE: &str = "mirror.json";
/// Version of [`MirrorConfig`]'s layout.
const CONFIG_VERSION: u32 = 1;
/// Most bytes of `mirror.json` read: a list of leg paths is far shorter.
const CONFIG_BYTES_MAX: u64 = 1 << 20;
/// Room a leg needs beyond its image and checksum table: the header, and some for the
/// filesystem's own bookkeeping.
const LEG_SLACK_BYTES: u64 = 1 << 20;

/// `DIR/mirror.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MirrorConfig {
    version: u32,
    /// The leg directories, absolute, in leg order.
    legs: Vec<PathBuf>,
}

/// A leg's device: its directory, or the reason it could not be opened.
#[derive(Debug)]
enum LegDevice {
    Dir(Box<DirStorage>),
    Unavailable { path: String, why: String },
}

impl LegDevice {
    /// Opens the leg directory `path`; with `create`, makes it if missing.
    fn open(path: &Path, create: bool) -> LegDevice {
        if !create && !path.is_dir() {
            return LegDevice::Unavailable {
                path: path.display().to_string(),
                why: format!("the leg directory that {CONFIG_FILE} names is missing"),
            };
        }
        match DirStorage::open(path) {
            Ok(storage) => LegDevice::Dir(Box::new(storage)),
            Err(e) => LegDevice::Unavailable {
                path: path.display().to_string(),
                why: e.to_string(),
            },
        }
    }

    /// Opens the leg directory `path` to write it, making it if missing; a leg that cannot be
    /// opened is an error.
    fn open_for_writing(path: &Path) -> CliResult<LegDevice> {
        match LegDevice::open(path, true) {
            LegDevice::Unavailable { path, why } => Err(CliError::Message {
                code: "IO",
                message: format!("leg {path}: {why}"),
            }),
            device => Ok(device),
        }
    }

    fn unavailable(&self) -> StorageError {
        match self {
            LegDevice::Unavailable { path, why } => StorageError::Io {
                object: path.clone(),
                message: why.clone(),
            },
            LegDevice::Dir(_) => StorageError::Io {
                object: String::new(),
                message: "available".into(),
            },
        }
    }
}

impl Storage for LegDevice {
    fn kind(&self) -> &'static str {
        "dir"
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        match self {
            LegDevice::Dir(d) => d.list().await,
            LegDevice::Unavailable { .. } => Err(self.unavailable()),
        }
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        match self {
            LegDevice::Dir(d) => d.len(object).await,
            LegDevice::Unavailable { .. } => Err(self.unavailable()),
        }
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        match self {
            LegDevice::Dir(d) => d.read_at(object, offset, buf).await,
            LegDevice::Unavailable { .. } => Err(self.unavailable()),
        }
    }

    async fn read_many(&self, requests: &mut [ReadRequest<'_>]) -> Result<(), StorageError> {
        match self {
            LegDevice::Dir(d) => d.read_many(requests).await,
            LegDevice::Unavailable { .. } => Err(self.unavailable()),
        }
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        match self {
            LegDevice::Dir(d) => d.commit(commit).await,
            LegDevice::Unavailable { .. } => Err(self.unavailable()),
        }
    }
}

type Mirror = strata_engine::mirror::Mirror<LegDevice, DirStorage>;

/// Runs a `strata mirror` subcommand.
pub fn mirror(args: MirrorArgs) -> CliResult {
    match args.command {
        MirrorCommand::Create(a) => create(a),
        MirrorCommand::Status(a) => status(a),
        MirrorCommand::Scrub(a) => scrub(a),
        MirrorCommand::Replace(a) => replace(a),
        MirrorCommand::Rebuild(a) => rebuild(a),
    }
}

fn config_error(dir: &Path, what: impl std::fmt::Display) -> CliError {
    CliError::Message {
        code: "NOT_A_MIRROR",
        message: format!(
            "{}: {what}; `strata mirror create {} --leg DIR ...` puts a primary beside the store",
            dir.display(),
            dir.display()
        ),
    }
}

fn read_config(dir: &Path) -> CliResult<MirrorConfig> {
    let path = dir.join(CONFIG_FILE);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // Tell "no store" apart from "a store without a mirror" (only looking).
            open_store_read_only(dir)?;
            return Err(config_error(
                dir,
                format!("the store has no mirror ({CONFIG_FILE} is not there)"),
            ));
        }
        Err(e) => return Err(CliError::io(path.display().to_string(), e)),
    };
    let mut bytes = Vec::new();
    file.take(CONFIG_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| CliError::io(path.display().to_string(), e))?;
    if bytes.len() as u64 > CONFIG_BYTES_MAX {
        return Err(config_error(
            dir,
            format!(
                "{CONFIG_FILE} is longer than {CONFIG_BYTES_MAX} bytes, which no list of legs is"
            ),
        ));
    }
    let text = String::from_utf8(bytes)
        .map_err(|_| config_error(dir, format!("{CONFIG_FILE} is not UTF-8 text")))?;
    let config: MirrorConfig = serde_json::from_str(&text)
        .map_err(|e| config_error(dir, format!("{CONFIG_FILE} does not parse: {e}")))?;
    if config.version != CONFIG_VERSION || config.legs.is_empty() {
        return Err(config_error(
            dir,
            format!(
                "{CONFIG_FILE} has version {} and {} legs; this strata reads version {CONFIG_VERSION} with at least one leg",
                config.version,
                config.legs.len()
            ),
        ));
    }
    Ok(config)
}

fn write_config(dir: &Path, config: &MirrorConfig) -> CliResult {
    let path = dir.join(CONFIG_FILE);
    let temporary = dir.join(format!("{CONFIG_FILE}.tmp"));
    let text = to_json(config, true)?;
    let io_error = |e| CliError::io(path.display().to_string(), e);
    let mut file = std::fs::File::create(&temporary).map_err(io_error)?;
    file.write_all(text.as_bytes()).map_err(io_error)?;
    file.sync_all().map_err(io_error)?;
    std::fs::rename(&temporary, &path).map_err(io_error)?;
    // The rename is durable once the directory is.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

fn absolute(path: &Path) -> CliResult<PathBuf> {
    std::path::absolute(path).map_err(|e| CliError::io(path.display().to_string(), e))
}

/// Opens the system: the store, then every leg of `DIR/mirror.json` (reconciled with the
/// store; see the open outcomes).
fn open_mirror(dir: &Path) -> CliResult<(Mirror, MirrorConfig)> {
    let config = read_config(dir)?;
    // Opened as a mirror's secondary: synced writes of its head that it lost (damage at the end
    // of its log) are given back by the legs rather than refusing the open.
    let storage = DirStorage::open(dir).map_err(|e| CliError::at(dir, e.into()))?;
    let legs = config
        .legs
        .iter()
        .map(|p| LegDevice::open(p, false))
        .collect();
    let mirror = block_on(Mirror::open(storage, legs, MirrorOptions::new(), clock()))
        .map_err(|e| CliError::at(dir, e))?;
    Ok((mirror, config))
}

fn close(dir: &Path, mirror: Mirror) -> CliResult {
    block_on(mirror.close()).map_err(|e| CliError::at(dir, e))?;
    Ok(())
}

// The mirror's JSON: the engine's reports (camelCase, as the npm package returns them), with
// where each leg lives (`path`) beside them.

/// A resilver report and its leg's directory.
#[derive(Serialize)]
struct ResilverJson<'a> {
    path: String,
    #[serde(flatten)]
    report: &'a ResilverReport,
}

fn resilver_json<'a>(report: &'a ResilverReport, config: &MirrorConfig) -> ResilverJson<'a> {
    ResilverJson {
        path: leg_path(config, report.leg),
        report,
    }
}

/// `value` (a report whose `legs` each have a `leg` number) with each leg's `path`.
fn with_leg_paths(mut value: serde_json::Value, config: &MirrorConfig) -> serde_json::Value {
    if let Some(legs) = value.get_mut("legs").and_then(|l| l.as_array_mut()) {
        for leg in legs {
            let path = leg
                .get("leg")
                .and_then(|i| i.as_u64())
                .map_or_else(String::new, |i| leg_path(config, i as usize));
            if let Some(object) = leg.as_object_mut() {
                object.insert("path".into(), path.into());
            }
        }
    }
    value
}

/// An engine report as JSON, for `with_leg_paths`.
fn json_value(value: &impl Serialize) -> CliResult<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| CliError::io("formatting JSON", io::Error::other(e)))
}

fn leg_path(config: &MirrorConfig, leg: usize) -> String {
    config
        .legs
        .get(leg)
        .map_or_else(String::new, |p| p.display().to_string())
}

fn resilver_line(verb: &str, report: &ResilverReport) -> String {
    let mut line = format!(
        "leg {} {verb}: {} checked, {} written",
        report.leg,
        plural(report.blocks_checked, "block", "blocks"),
        report.blocks_written
    );
    if report.damaged_found > 0 {
        line += &format!(", {} damaged copies repaired", report.damaged_found);
    }
    if !report.unrecoverable.is_empty() {
        line += &format!(
            ", {} with no good copy anywhere",
            plural(report.unrecoverable.len() as u64, "block", "blocks")
        );
    }
    line
}

/// An error if a resilver left blocks with no good copy.
fn check_unrecoverable(dir: &Path, blocks: &[u64]) -> CliResult {
    if blocks.is_empty() {
        return Ok(());
    }
    let shown: Vec<String> = blocks.iter().take(16).map(u64::to_string).collect();
    Err(CliError::Message {
        code: "CORRUPT",
        message: format!(
            "{}: {} no good copy on any leg nor in the store (blocks {}{}); they stay marked bad and reads report them",
            dir.display(),
            plural(blocks.len() as u64, "block has", "blocks have"),
            shown.join(", "),
            if blocks.len() > shown.len() { ", ..." } else { "" }
        ),
    })
}

// ----- checking legs ------------------------------------------------------------------------------

fn invalid_leg(message: String) -> CliError {
    CliError::Message {
        code: "INVALID_ARGUMENT",
        message,
    }
}

/// The store identifier in the leg header in directory `leg`, if it has a valid one.
fn leg_owner(leg: &Path) -> Option<u64> {
    let file = std::fs::File::open(leg.join(HEADER_OBJECT)).ok()?;
    let mut bytes = Vec::new();
    file.take(PRIMARY_HEADER_LEN as u64 * PRIMARY_HEADER_SLOTS)
        .read_to_end(&mut bytes)
        .ok()?;
    match current_header(&bytes) {
        HeaderState::Valid(header) => Some(header.store_id),
        _ => None,
    }
}

/// Length of file `path` (0 if it is missing).
fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map_or(0, |m| m.len())
}

/// The nearest directory at or above `path` that exists.
fn existing_ancestor(path: &Path) -> &Path {
    path.ancestors()
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("/"))
}

/// Checks the leg directories of a mirror of the store in `dir` (with identifier `store_id`,
/// `None` for a store still to be created), before anything is written: a leg must not be the
/// store's directory, hold a store, or be a leg of another store's mirror (a leg of this store
/// may come back), two legs must not be one directory, and each filesystem must have room for
/// the primaries (image and checksum table) of all the legs on it.
fn check_legs(
    dir: &Path,
    legs: &[PathBuf],
    store_id: Option<u64>,
    block_count: u64,
    block_size: u32,
) -> CliResult {
    let store_real = paths::resolve(dir).ok();
    let mut seen: Vec<(PathBuf, &PathBuf)> = Vec::new();
    // By filesystem (device): bytes needed, bytes free, the legs on it.
    let mut filesystems: BTreeMap<u64, (u64, u64, Vec<String>)> = BTreeMap::new();
    let primary_bytes = block_count
        .saturating_mul(u64::from(block_size))
        .saturating_add(block_count.saturating_mul(SUM_ENTRY_LEN))
        .saturating_add(LEG_SLACK_BYTES);
    for leg in legs {
        let real = paths::resolve(leg).map_err(|e| CliError::io(leg.display().to_string(), e))?;
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == real) {
            return Err(invalid_leg(format!(
                "legs {} and {} are the same directory ({}): each leg needs its own directory",
                first.display(),
                leg.display(),
                real.display()
            )));
        }
        if store_real.as_ref() == Some(&real) {
            return Err(invalid_leg(format!(
                "leg {}: it is the store's own directory; a leg needs a directory of its own (on another disk, ideally)",
                leg.display()
            )));
        }
        match paths::marker(&real) {
            None => {}
            Some(Marker::Store(journal)) => {
                return Err(invalid_leg(format!(
                    "leg {}: the directory holds a strata store ({journal}); a leg needs an empty or new directory",
                    leg.display()
                )))
            }
            Some(Marker::Leg) => match leg_owner(&real) {
                Some(owner) if Some(owner) == store_id => {}
                Some(owner) => {
                    return Err(invalid_leg(format!(
                        "leg {}: the directory is a leg of another store's mirror (store id {owner:016x}); a leg needs an empty or new directory",
                        leg.display()
                    )))
                }
                None => {
                    return Err(invalid_leg(format!(
                        "leg {}: the directory holds a mirror leg header ({HEADER_OBJECT}) that does not read as this store's; a leg needs an empty or new directory",
                        leg.display()
                    )))
                }
            },
        }
        // What the leg already holds of this store's primary is room it keeps.
        let held = file_len(&real.join(IMAGE_OBJECT)) + file_len(&real.join(SUM_OBJECT));
        let probe = existing_ancestor(&real);
        let io_error = |e: io::Error| CliError::io(probe.display().to_string(), e);
        let device = std::fs::metadata(probe).map_err(io_error)?.dev();
        let stat = rustix::fs::statvfs(probe).map_err(|e| io_error(e.into()))?;
        let free = stat.f_bavail.saturating_mul(stat.f_frsize);
        let fs = filesystems
            .entry(device)
            .or_insert_with(|| (0, free, Vec::new()));
        fs.0 = fs.0.saturating_add(primary_bytes.saturating_sub(held));
        fs.2.push(leg.display().to_string());
        seen.push((real, leg));
    }
    for (need, free, names) in filesystems.values() {
        if need > free {
            let who = match names.as_slice() {
                [one] => format!("leg {one} needs"),
                many => format!("legs {} need", many.join(", ")),
            };
            return Err(CliError::Message {
                code: "QUOTA_EXCEEDED",
                message: format!(
                    "{who} {need} bytes ({}) for the primary ({} of {block_size} bytes and their checksums), but the filesystem has {free} bytes ({}) free",
                    strata_units::format_bytes(*need),
                    plural(block_count, "block", "blocks"),
                    strata_units::format_bytes(*free)
                ),
            });
        }
    }
    Ok(())
}

// ----- create -----------------------------------------------------------------------------------

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateJson<'a> {
    dir: String,
    head: u64,
    legs: Vec<ResilverJson<'a>>,
}

/// The leg directories, absolute; each given once.
fn distinct_legs(given: &[PathBuf]) -> CliResult<Vec<PathBuf>> {
    let mut legs = Vec::with_capacity(given.len());
    for leg in given {
        let leg = absolute(leg)?;
        if legs.contains(&leg) {
            return Err(Error::InvalidArgument(format!(
                "{} is given as a leg twice: each leg needs its own directory",
                leg.display()
            ))
            .into());
        }
        legs.push(leg);
    }
    Ok(legs)
}

/// The store to mirror (created with `--blocks`, else opened), once the legs are checked: before
/// the store is created or opened for writing, and before any leg is written.
fn checked_store(
    args: &MirrorCreateArgs,
    legs: &[PathBuf],
) -> CliResult<strata_engine::Store<DirStorage>> {
    let dir = &args.dir;
    match args.blocks {
        Some(blocks) => {
            check_legs(dir, legs, None, blocks, args.block_size)?;
            create_or_undo(dir, || create_empty(dir, blocks, args.block_size))
        }
        None => {
            let info = open_store_read_only(dir)?.info();
            check_legs(
                dir,
                legs,
                Some(info.store_id),
                info.block_count,
                info.block_size,
            )?;
            Ok(open_store(dir)?.into_volume())
        }
    }
}

/// What filling each leg did (a leg the open did not touch reports nothing), and the legs that
/// could not be written.
fn fill_reports(open: &[LegOpenOutcome]) -> (Vec<ResilverReport>, Vec<String>) {
    let reports = open
        .iter()
        .enumerate()
        .map(|(i, outcome)| match outcome {
            LegOpenOutcome::Reconciled(r) | LegOpenOutcome::Resilvered(r) => r.clone(),
            _ => ResilverReport {
                leg: i,
                ..ResilverReport::default()
            },
        })
        .collect();
    let failed = open
        .iter()
        .enumerate()
        .filter_map(|(i, o)| match o {
            LegOpenOutcome::Failed(why) => Some(format!("leg {i}: {why}")),
            _ => None,
        })
        .collect();
    (reports, failed)
}

fn create(args: MirrorCreateArgs) -> CliResult {
    let dir = &args.dir;
    if dir.join(CONFIG_FILE).exists() {
        return Err(CliError::Message {
            code: "ALREADY_EXISTS",
            message: format!(
                "{}: the store is mirrored already; `strata mirror status` shows its legs, `strata mirror replace` changes one",
                dir.display()
            ),
        });
    }
    let legs = distinct_legs(&args.legs)?;
    let store = checked_store(&args, &legs)?;
    let devices = legs
        .iter()
        .map(|leg| LegDevice::open_for_writing(leg))
        .collect::<CliResult<Vec<_>>>()?;
    let mirror = block_on(Mirror::attach(store, devices, MirrorOptions::new()))
        .map_err(|e| CliError::at(dir, e))?;
    let config = MirrorConfig {
        version: CONFIG_VERSION,
        legs,
    };
    let (reports, failed) = fill_reports(mirror.open_report());
    let head = mirror.head();
    close(dir, mirror)?;
    if !failed.is_empty() {
        return Err(CliError::Message {
            code: "IO",
            message: format!(
                "{}: the primary could not be written: {}",
                dir.display(),
                failed.join("; ")
            ),
        });
    }
    write_config(dir, &config)?;
    if args.print.json {
        let value = CreateJson {
            dir: dir.display().to_string(),
            head: head.0,
            legs: reports.iter().map(|r| resilver_json(r, &config)).collect(),
        };
        return print_line(&to_json(&value, true)?);
    }
    let mut out = format!(
        "mirror on {}: {}, head volume {head}",
        dir.display(),
        plural(config.legs.len() as u64, "leg", "legs")
    );
    for (report, path) in reports.iter().zip(&config.legs) {
        out += &format!(
            "\n  leg {} {}: {} written",
            report.leg,
            path.display(),
            plural(report.blocks_written, "block", "blocks")
        );
    }
    print_line(&out)
}

// ----- status -----------------------------------------------------------------------------------

fn state_name(state: LegState) -> &'static str {
    match state {
        LegState::Healthy => "healthy",
        LegState::Degraded => "degraded",
        LegState::Missing => "missing",
    }
}

/// The OPEN column and the blocks the open wrote.
fn open_text(outcome: Option<&LegOpenOutcome>) -> (String, u64) {
    match outcome {
        Some(LegOpenOutcome::InSync) | None => ("in sync".into(), 0),
        Some(LegOpenOutcome::Reconciled(r)) => {
            (format!("caught up {}", r.blocks_written), r.blocks_written)
        }
        Some(LegOpenOutcome::Resilvered(r)) => {
            (format!("resilvered {}", r.blocks_written), r.blocks_written)
        }
        Some(LegOpenOutcome::Failed(_)) => ("failed".into(), 0),
    }
}

fn status(args: MirrorStatusArgs) -> CliResult {
    let dir = &args.store.dir;
    let (mirror, config) = open_mirror(dir)?;
    let status = mirror.status();
    let open: Vec<String> = (0..status.legs.len())
        .map(|i| open_text(mirror.open_report().get(i)).0)
        .collect();
    close(dir, mirror)?;
    if args.print.json {
        let mut value = with_leg_paths(json_value(&status)?, &config);
        if let Some(object) = value.as_object_mut() {
            object.insert("dir".into(), dir.display().to_string().into());
        }
        return print_line(&to_json(&value, true)?);
    }
    print_status(dir, &status, &open, &config)
}

/// `mirror status` for people: a summary, what the open restored, a table of the legs.
fn print_status(
    dir: &Path,
    status: &MirrorStatus,
    open: &[String],
    config: &MirrorConfig,
) -> CliResult {
    let mut out = io::stdout().lock();
    let summary = if status.degraded {
        format!(
            "{}: DEGRADED, {} of {} legs in service; head volume {} (replace the bad legs with `strata mirror replace`)",
            dir.display(),
            status.healthy_legs,
            status.legs.len(),
            status.head
        )
    } else {
        format!(
            "{}: all {} in service; head volume {}",
            dir.display(),
            plural(status.legs.len() as u64, "leg", "legs"),
            status.head
        )
    };
    writeln!(out, "{summary}").map_err(stdout_err)?;
    if status.secondary_blocks_restored > 0 {
        writeln!(
            out,
            "the store had lost acknowledged writes (its last log record was damaged): {} restored from the legs",
            plural(status.secondary_blocks_restored, "block", "blocks")
        )
        .map_err(stdout_err)?;
    }
    if status.secondary_blocks_lost > 0 {
        writeln!(
            out,
            "WARNING: {} the store may have lost could not be restored (no leg had a good copy); their latest writes may be gone",
            plural(status.secondary_blocks_lost, "block", "blocks")
        )
        .map_err(stdout_err)?;
    }
    let rows: Vec<Vec<String>> = status
        .legs
        .iter()
        .map(|l| {
            vec![
                l.leg.to_string(),
                state_name(l.state).to_string(),
                open.get(l.leg).cloned().unwrap_or_default(),
                match l.synced {
                    Some((v, s)) => format!("volume {v} @ {s}"),
                    None => "-".into(),
                },
                l.errors_detected.to_string(),
                l.errors_repaired.to_string(),
                leg_path(config, l.leg),
            ]
        })
        .collect();
    table(
        &mut out,
        &[
            "LEG", "STATE", "OPEN", "SYNCED", "DETECTED", "REPAIRED", "PATH",
        ],
        &rows,
        &[4, 5],
    )
    .map_err(stdout_err)?;
    for l in &status.legs {
        if let Some(reason) = &l.reason {
            writeln!(out, "leg {}: {reason}", l.leg).map_err(stdout_err)?;
        }
    }
    out.flush().map_err(stdout_err)
}

// ----- scrub ------------------------------------------------------------------------------------

fn scrub(args: MirrorScrubArgs) -> CliResult {
    let dir = &args.store.dir;
    let (mut mirror, config) = open_mirror(dir)?;
    let report = block_on(mirror.scrub()).map_err(|e| CliError::at(dir, e))?;
    close(dir, mirror)?;
    let value = &report;
    if args.print.json {
        let json = with_leg_paths(json_value(&report)?, &config);
        print_line(&to_json(&json, true)?)?;
    } else {
        let mut out = format!(
            "scrubbed {}, {}: {} bad, {} repaired, {} unrecoverable",
            plural(value.blocks_checked, "block", "blocks"),
            plural(value.copies_checked, "copy", "copies"),
            value.mismatches,
            value.repaired,
            value.unrecoverable.len()
        );
        for l in &value.legs {
            out += &format!(
                "\nleg {}: {} checked, {} bad, {} repaired",
                l.leg, l.checked, l.mismatches, l.repaired
            );
            if let Some(e) = &l.io_error {
                out += &format!(" (taken out of service: {e})");
            }
        }
        if !value.secondary_damaged.is_empty() {
            out += &format!(
                "\nthe store's own copy of {} is damaged (the primary still serves them)",
                plural(value.secondary_damaged.len() as u64, "block", "blocks")
            );
        }
        print_line(&out)?;
    }
    check_unrecoverable(dir, &report.unrecoverable)
}

// ----- replace and rebuild ----------------------------------------------------------------------

fn replace(args: MirrorReplaceArgs) -> CliResult {
    let dir = &args.store.dir;
    let (mut mirror, mut config) = open_mirror(dir)?;
    let Some(current) = config.legs.get(args.leg).cloned() else {
        return Err(Error::InvalidArgument(format!(
            "there is no leg {}: the mirror has {} (numbered from 0)",
            args.leg,
            plural(config.legs.len() as u64, "leg", "legs")
        ))
        .into());
    };
    let path = match &args.with {
        Some(p) => absolute(p)?,
        None => current.clone(),
    };
    if path != current && config.legs.contains(&path) {
        return Err(Error::InvalidArgument(format!(
            "{} is leg {} already",
            path.display(),
            config.legs.iter().position(|p| *p == path).unwrap_or(0)
        ))
        .into());
    }
    if path != current {
        let info = mirror.info();
        check_legs(
            dir,
            std::slice::from_ref(&path),
            Some(info.store_id),
            info.block_count,
            info.block_size,
        )?;
    }
    // The old device (if it opened) goes first: a directory reused in place is locked by the
    // handle that has it open, and would refuse a second one.
    let _ = mirror.detach(args.leg);
    let device = LegDevice::open_for_writing(&path)?;
    let report = block_on(mirror.replace(args.leg, device)).map_err(|e| CliError::at(dir, e))?;
    close(dir, mirror)?;
    config.legs[args.leg] = path;
    write_config(dir, &config)?;
    if args.print.json {
        print_line(&to_json(&resilver_json(&report, &config), true)?)?;
    } else {
        print_line(&format!(
            "{} ({})",
            resilver_line("resilvered", &report),
            leg_path(&config, report.leg)
        ))?;
    }
    check_unrecoverable(dir, &report.unrecoverable)
}

fn rebuild(args: MirrorRebuildArgs) -> CliResult {
    let dir = &args.store.dir;
    let (mut mirror, config) = open_mirror(dir)?;
    for i in 0..config.legs.len() {
        let _ = mirror.detach(i);
    }
    let devices = config
        .legs
        .iter()
        .map(|path| LegDevice::open_for_writing(path))
        .collect::<CliResult<Vec<_>>>()?;
    let reports = block_on(mirror.rebuild_primary(devices)).map_err(|e| CliError::at(dir, e))?;
    close(dir, mirror)?;
    if args.print.json {
        let value: Vec<ResilverJson> = reports.iter().map(|r| resilver_json(r, &config)).collect();
        print_line(&to_json(&value, true)?)?;
    } else {
        let lines: Vec<String> = reports
            .iter()
            .map(|r| {
                format!(
                    "{} ({})",
                    resilver_line("rebuilt", r),
                    leg_path(&config, r.leg)
                )
            })
            .collect();
        print_line(&lines.join("\n"))?;
    }
    let unrecoverable: Vec<u64> = reports
        .iter()
        .flat_map(|r| r.unrecoverable.iter().copied())
        .collect();
    check_unrecoverable(dir, &unrecoverable)
}
