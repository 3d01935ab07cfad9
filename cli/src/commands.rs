//! The subcommands.

mod copy;
mod mirror;
mod ops;
mod policy;

pub use copy::{receive, send};
pub use mirror::mirror;
pub use ops::{compact, delete, diff, du, merge, rollback};
pub use policy::{audit, event, hold, policy, ttl};

use std::fs::File;
use std::io::{self, IsTerminal, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use pollster::block_on;
use serde::Serialize;
use strata_engine::clock::{Clock, SystemClock};
use strata_engine::format::record::{RECORD_BLOCKS_MAX, RECORD_DATA_BYTES_MAX};
use strata_engine::storage::dir::DirStorage;
use strata_engine::{
    BaselineKind, CreateOptions, CursorStart, Error, Store, VolumeId, VolumeInfo, VolumeKind,
    IMAGE_CHUNK_BYTES,
};

use crate::args::{
    CreateArgs, ExportArgs, LogArgs, ReadArgs, SnapshotArgs, StatArgs, VolumeArg, VolumesArgs,
    WriteArgs,
};
use crate::error::CliError;
use crate::format::{hex_preview, rfc3339, table, HexDump};

type CliResult<T = ()> = Result<T, CliError>;

/// The lock file [`DirStorage::open`] creates in a store directory.
const LOCK_FILE: &str = "LOCK";
/// Most blocks `strata write` puts in one atomic record.
const WRITE_BATCH_BLOCKS: u64 = 1024;
/// Bytes of each entry's data shown by `strata log --data`.
const PREVIEW_BYTES: usize = 16;

fn clock() -> Rc<dyn Clock> {
    Rc::new(SystemClock)
}

fn stdout_err(e: io::Error) -> CliError {
    CliError::io("writing to stdout", e)
}

/// Prints an informational line on stderr unless `quiet`.
fn note(quiet: bool, message: std::fmt::Arguments<'_>) {
    if !quiet {
        let _ = writeln!(io::stderr(), "{message}");
    }
}

/// Whether stores opened by this process evaluate their threshold rules by themselves after
/// operations (`--manual-policies` turns it off).
static AUTOMATIC_POLICIES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Sets what [`open_store`] gives every store it opens (see `--manual-policies`).
pub fn set_automatic_policies(enabled: bool) {
    AUTOMATIC_POLICIES.store(enabled, std::sync::atomic::Ordering::Relaxed);
}

/// Opens an existing store. A missing path is reported as `NOT_A_STORE` without creating it,
/// and the lock file is not left behind in a directory that turns out to hold no store.
fn open_store(dir: &Path) -> CliResult<Store<DirStorage>> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => return Err(CliError::at(dir, Error::NotAStore)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(CliError::at(dir, Error::NotAStore))
        }
        Err(e) => return Err(CliError::io(dir.display().to_string(), e)),
    }
    let lock_existed = dir.join(LOCK_FILE).exists();
    let storage = DirStorage::open(dir).map_err(|e| CliError::at(dir, e.into()))?;
    match block_on(Store::open_with_automatic_policies(
        storage,
        clock(),
        AUTOMATIC_POLICIES.load(std::sync::atomic::Ordering::Relaxed),
    )) {
        Ok(store) => Ok(store),
        Err(e) => {
            // The storage (and its lock) is dropped by now.
            if matches!(e, Error::NotAStore) && !lock_existed {
                let _ = std::fs::remove_file(dir.join(LOCK_FILE));
            }
            Err(CliError::at(dir, e))
        }
    }
}

fn resolve(store: &Store<DirStorage>, volume: VolumeArg) -> CliResult<VolumeInfo> {
    let id = match volume {
        VolumeArg::Head => store.head(),
        VolumeArg::Id(n) => VolumeId(n),
    };
    Ok(store.volume(id)?)
}

/// The engine's error for `blocks` blocks from `addr` not fitting the volume, if they do not.
fn check_range(store: &Store<DirStorage>, addr: u64, blocks: u64) -> CliResult {
    let block_count = store.block_count();
    if blocks == 0 || addr >= block_count || blocks > block_count - addr {
        return Err(Error::BlockOutOfRange {
            addr,
            blocks,
            block_count,
        }
        .into());
    }
    Ok(())
}

/// A progress bar on stderr, or a hidden one when `quiet` or stderr is not a terminal. Without
/// `total`, a spinner counting bytes.
fn progress_bar(total: Option<u64>, quiet: bool, message: &str) -> ProgressBar {
    if quiet || !io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = match total {
        Some(total) => {
            let bar = ProgressBar::new(total);
            if let Some(style) = bar_style() {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) = ProgressStyle::with_template(
                "{spinner} {msg} {binary_bytes} {binary_bytes_per_sec}",
            ) {
                bar.set_style(style);
            }
            bar
        }
    };
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// The style of a progress bar whose total is known.
fn bar_style() -> Option<ProgressStyle> {
    ProgressStyle::with_template(
        "{msg} [{wide_bar}] {binary_bytes}/{binary_total_bytes} \
         {binary_bytes_per_sec} eta {eta}",
    )
    .ok()
    .map(|style| style.progress_chars("=> "))
}

/// Reads until `buf` is full or the input ends; returns the bytes read.
fn read_full(input: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match input.read(&mut buf[done..]) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Bytes left to read in `file` when that is knowable (a regular file or a block device).
fn remaining_len(file: &mut File) -> Option<u64> {
    let kind = file.metadata().ok()?.file_type();
    if !kind.is_file() && !kind.is_block_device() {
        return None;
    }
    let position = file.stream_position().ok()?;
    let end = file.seek(SeekFrom::End(0)).ok()?;
    file.seek(SeekFrom::Start(position)).ok()?;
    Some(end.saturating_sub(position))
}

/// `value` as JSON (cannot fail for the structures below, but is not unwrapped).
fn to_json(value: &impl Serialize, pretty: bool) -> CliResult<String> {
    let text = if pretty {
        serde_json::to_string_pretty(value)
    } else {
        serde_json::to_string(value)
    };
    text.map_err(|e| CliError::io("formatting JSON", io::Error::other(e)))
}

#[derive(Serialize)]
struct SnapshotJson<'a> {
    snapshot: u64,
    head: u64,
    label: &'a str,
}

#[derive(Serialize)]
struct EntryJson {
    seq: u64,
    volume: u64,
    addr: u64,
    blocks: u32,
    timestamp_ms: u64,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_preview: Option<String>,
}

#[derive(Serialize)]
struct VolumeJson<'a> {
    id: u64,
    kind: &'static str,
    label: &'a str,
    parent: Option<u64>,
    created_ms: u64,
    created: String,
    sealed_ms: Option<u64>,
    entries: u64,
    blocks_written: u64,
    bytes: u64,
    first_seq: u64,
    next_seq: u64,
}

#[derive(Serialize)]
struct StatJson {
    path: String,
    backend: &'static str,
    block_size: u32,
    block_count: u64,
    volume_bytes: u64,
    baseline: &'static str,
    store_id: u64,
    store_id_hex: String,
    created_ms: u64,
    created: String,
    head: u64,
    next_seq: u64,
    partitions: usize,
    log_bytes: u64,
    mapped_blocks: usize,
    index_bytes: usize,
    recovery: RecoveryJson,
}

#[derive(Serialize)]
struct RecoveryJson {
    journal_bytes_truncated: u64,
    head_bytes_truncated: u64,
}

// ----- create ------------------------------------------------------------------------------------

pub fn create(args: CreateArgs, quiet: bool) -> CliResult {
    let dir = &args.dir;
    let dir_existed = dir.exists();
    let lock_existed = dir.join(LOCK_FILE).exists();
    let result = create_inner(&args, quiet);
    if result.is_err() {
        // Leave nothing behind that this run made for a store that does not exist.
        if !dir_existed {
            let _ = std::fs::remove_dir_all(dir);
        } else if !lock_existed {
            let _ = std::fs::remove_file(dir.join(LOCK_FILE));
        }
    }
    let store = result?;
    let info = store.info();
    let bytes = info.block_count * u64::from(info.block_size);
    note(
        quiet,
        format_args!(
            "created store in {}: {} blocks of {} bytes ({}), {} baseline; head is volume {}",
            dir.display(),
            info.block_count,
            info.block_size,
            human_bytes(bytes),
            match info.baseline {
                BaselineKind::Zero => "empty (all-zero)",
                BaselineKind::Image => "imported",
            },
            info.head
        ),
    );
    block_on(store.close())?;
    Ok(())
}

fn create_inner(args: &CreateArgs, quiet: bool) -> CliResult<Store<DirStorage>> {
    let dir = &args.dir;
    if let Some(blocks) = args.blocks {
        let storage = DirStorage::open(dir).map_err(|e| CliError::at(dir, e.into()))?;
        let options = CreateOptions::new(blocks).block_size(args.block_size);
        return block_on(Store::create(storage, options, clock()))
            .map_err(|e| CliError::at(dir, e));
    }
    let Some(image) = &args.baseline else {
        // clap requires one of --blocks and --baseline.
        return Err(Error::InvalidArgument("give --blocks or --baseline".into()).into());
    };
    let image_name = image.display().to_string();
    let mut file = File::open(image).map_err(|e| CliError::io(&image_name, e))?;
    let expected = remaining_len(&mut file);
    let storage = DirStorage::open(dir).map_err(|e| CliError::at(dir, e.into()))?;
    let mut import = block_on(Store::import_baseline(
        storage,
        args.block_size,
        expected,
        None,
        clock(),
    ))
    .map_err(|e| CliError::at(dir, e))?;
    let bar = progress_bar(expected, quiet, "importing");
    let mut buf = vec![0u8; IMAGE_CHUNK_BYTES];
    loop {
        let n = read_full(&mut file, &mut buf).map_err(|e| CliError::io(&image_name, e))?;
        if n == 0 {
            break;
        }
        if let Err(e) = block_on(import.push(&buf[..n])) {
            bar.abandon();
            return Err(CliError::at(image, e));
        }
        bar.inc(n as u64);
        if n < buf.len() {
            break;
        }
    }
    bar.set_message("syncing");
    let store = block_on(import.finish());
    bar.finish_and_clear();
    store.map_err(|e| CliError::at(image, e))
}

fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

// ----- write -------------------------------------------------------------------------------------

pub fn write(args: WriteArgs, quiet: bool) -> CliResult {
    let mut store = open_store(&args.dir)?;
    let block_size = u64::from(store.block_size());
    let batch_blocks = WRITE_BATCH_BLOCKS
        .min(u64::from(RECORD_BLOCKS_MAX))
        .min(RECORD_DATA_BYTES_MAX / block_size)
        .max(1);
    let mut buf = vec![0u8; (batch_blocks * block_size) as usize];
    let mut addr = args.addr;
    let mut written_blocks = 0u64;
    let mut seqs: Option<(u64, u64)> = None;

    if let (Some(byte), Some(blocks)) = (args.pattern, args.blocks) {
        check_range(&store, args.addr, blocks)?;
        buf.fill(byte);
        while written_blocks < blocks {
            let n = batch_blocks.min(blocks - written_blocks);
            let seq = block_on(store.write(addr, &buf[..(n * block_size) as usize]))?;
            seqs = Some((seqs.map_or(seq, |s| s.0), seq));
            addr += n;
            written_blocks += n;
        }
    } else {
        let (mut input, name) = match &args.file {
            Some(path) => (
                File::open(path).map_err(|e| CliError::io(path.display().to_string(), e))?,
                path.display().to_string(),
            ),
            None => (stdin_file()?, "stdin".to_string()),
        };
        let known_len = remaining_len(&mut input);
        if let Some(len) = known_len {
            if len == 0 || !len.is_multiple_of(block_size) {
                return Err(not_whole(len, block_size));
            }
            check_range(&store, args.addr, len / block_size)?;
        }
        let mut total = 0u64;
        let outcome = loop {
            let n = match read_full(&mut input, &mut buf) {
                Ok(n) => n,
                Err(e) => break Err(CliError::io(&name, e)),
            };
            total += n as u64;
            if n == 0 {
                break if total == 0 {
                    Err(not_whole(0, block_size))
                } else {
                    Ok(())
                };
            }
            if !(n as u64).is_multiple_of(block_size) {
                break Err(not_whole(total, block_size));
            }
            match block_on(store.write(addr, &buf[..n])) {
                Ok(seq) => seqs = Some((seqs.map_or(seq, |s| s.0), seq)),
                Err(e) => break Err(e.into()),
            }
            addr += n as u64 / block_size;
            written_blocks += n as u64 / block_size;
            if n < buf.len() {
                break Ok(());
            }
        };
        if let Err(e) = outcome {
            if written_blocks > 0 && block_on(store.sync()).is_ok() {
                let note = format!(
                    "blocks {}..{addr}, read before the error, were written and synced",
                    args.addr
                );
                return Err(CliError::WithNote(Box::new(e), note));
            }
            return Err(e);
        }
    }
    block_on(store.sync())?;
    if let Some((first, last)) = seqs {
        note(
            quiet,
            format_args!(
                "wrote {} {}..{addr} to volume {} as {} (seq {first}..={last}), synced",
                plural(written_blocks, "block", "blocks"),
                args.addr,
                store.head(),
                plural(last - first + 1, "entry", "entries"),
            ),
        );
    }
    block_on(store.close())?;
    Ok(())
}

fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Stdin as a [`File`], so that its length can be known when it is redirected from a file.
fn stdin_file() -> CliResult<File> {
    use std::os::fd::AsFd;
    let fd = io::stdin()
        .as_fd()
        .try_clone_to_owned()
        .map_err(|e| CliError::io("stdin", e))?;
    Ok(File::from(fd))
}

fn not_whole(len: u64, block_size: u64) -> CliError {
    Error::NotWholeBlocks {
        len: usize::try_from(len).unwrap_or(usize::MAX),
        block_size: block_size as u32,
    }
    .into()
}

// ----- snapshot ----------------------------------------------------------------------------------

pub fn snapshot(args: SnapshotArgs) -> CliResult {
    let mut store = open_store(&args.dir)?;
    let snapshot = block_on(store.snapshot(args.label.as_deref()))?;
    let head = store.head();
    block_on(store.close())?;
    let mut out = io::stdout().lock();
    if args.json {
        let value = SnapshotJson {
            snapshot: snapshot.0,
            head: head.0,
            label: args.label.as_deref().unwrap_or(""),
        };
        writeln!(out, "{}", to_json(&value, false)?).map_err(stdout_err)?;
    } else {
        writeln!(out, "snapshot: {snapshot}\nhead: {head}").map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

// ----- read --------------------------------------------------------------------------------------

pub fn read(args: ReadArgs) -> CliResult {
    let store = open_store(&args.dir)?;
    let volume = resolve(&store, args.volume)?.id;
    check_range(&store, args.addr, args.blocks)?;
    let block_size = u64::from(store.block_size());
    let chunk_blocks = (IMAGE_CHUNK_BYTES as u64 / block_size).max(1);

    let (mut out, out_name): (Box<dyn Write>, String) = match &args.output {
        Some(path) => (
            Box::new(io::BufWriter::new(
                File::create(path).map_err(|e| CliError::io(path.display().to_string(), e))?,
            )),
            path.display().to_string(),
        ),
        None => (
            Box::new(io::BufWriter::new(io::stdout().lock())),
            "stdout".to_string(),
        ),
    };
    let out_err = |e: io::Error| CliError::io(format!("writing to {out_name}"), e);
    let mut dump = args.hex.then(|| HexDump::new(args.addr * block_size));
    let mut buf = vec![0u8; (chunk_blocks.min(args.blocks) * block_size) as usize];
    let mut done = 0;
    while done < args.blocks {
        let n = chunk_blocks.min(args.blocks - done);
        let chunk = &mut buf[..(n * block_size) as usize];
        block_on(store.read_into(volume, args.addr + done, chunk))?;
        match &mut dump {
            Some(dump) => dump.write(&mut out, chunk).map_err(out_err)?,
            None => out.write_all(chunk).map_err(out_err)?,
        }
        done += n;
    }
    if let Some(dump) = dump {
        dump.finish(&mut out).map_err(out_err)?;
    }
    out.flush().map_err(out_err)
}

// ----- log ---------------------------------------------------------------------------------------

pub fn log(args: LogArgs) -> CliResult {
    let store = open_store(&args.dir)?;
    let (start, only) = match (args.from_seq, args.volume) {
        (_, Some(v)) => {
            let id = resolve(&store, v)?.id;
            (CursorStart::Volume(id), Some(id))
        }
        (Some(seq), None) => (CursorStart::Seq(seq), None),
        (None, None) => (CursorStart::Beginning, None),
    };
    let mut cursor = store.cursor(start)?;
    let mut out = io::BufWriter::new(io::stdout().lock());
    let limit = args.limit.unwrap_or(u64::MAX);
    let mut count = 0u64;
    if args.json {
        write!(out, "[").map_err(stdout_err)?;
    } else {
        let mut header = format!(
            "{:>8}  {:>6}  {:>12}  {:>6}  {:<24}",
            "SEQ", "VOLUME", "ADDR", "BLOCKS", "TIME"
        );
        if args.data {
            header.push_str("  DATA");
        }
        writeln!(out, "{}", header.trim_end()).map_err(stdout_err)?;
    }
    while count < limit {
        let Some(entry) = block_on(store.next_entry(&mut cursor, args.data))? else {
            break;
        };
        if only.is_some_and(|v| v != entry.volume) {
            break;
        }
        let preview = entry.data.as_deref().map(|d| hex_preview(d, PREVIEW_BYTES));
        if args.json {
            let value = EntryJson {
                seq: entry.seq,
                volume: entry.volume.0,
                addr: entry.addr,
                blocks: entry.blocks,
                timestamp_ms: entry.timestamp_ms,
                time: rfc3339(entry.timestamp_ms),
                data_preview: preview,
            };
            let sep = if count == 0 { "\n  " } else { ",\n  " };
            write!(out, "{sep}{}", to_json(&value, false)?).map_err(stdout_err)?;
        } else {
            let mut line = format!(
                "{:>8}  {:>6}  {:>12}  {:>6}  {:<24}",
                entry.seq,
                entry.volume.0,
                entry.addr,
                entry.blocks,
                rfc3339(entry.timestamp_ms)
            );
            if let Some(preview) = preview {
                line.push_str("  ");
                line.push_str(&preview);
            }
            writeln!(out, "{}", line.trim_end()).map_err(stdout_err)?;
        }
        count += 1;
    }
    if args.json {
        writeln!(out, "{}]", if count == 0 { "" } else { "\n" }).map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

// ----- volumes -----------------------------------------------------------------------------------

fn kind_name(kind: VolumeKind) -> &'static str {
    match kind {
        VolumeKind::Baseline => "baseline",
        VolumeKind::Snapshot => "snapshot",
        VolumeKind::Head => "head",
    }
}

pub fn volumes(args: VolumesArgs) -> CliResult {
    let store = open_store(&args.dir)?;
    let volumes = store.volumes();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.json {
        let list: Vec<VolumeJson> = volumes
            .iter()
            .map(|v| VolumeJson {
                id: v.id.0,
                kind: kind_name(v.kind),
                label: &v.label,
                parent: v.parent.map(|p| p.0),
                created_ms: v.created_ms,
                created: rfc3339(v.created_ms),
                sealed_ms: v.sealed_ms,
                entries: v.entry_count,
                blocks_written: v.blocks_written,
                bytes: v.bytes,
                first_seq: v.first_seq,
                next_seq: v.next_seq,
            })
            .collect();
        writeln!(out, "{}", to_json(&list, true)?).map_err(stdout_err)?;
    } else {
        let rows: Vec<Vec<String>> = volumes
            .iter()
            .map(|v| {
                vec![
                    v.id.to_string(),
                    kind_name(v.kind).to_string(),
                    if v.label.is_empty() {
                        "-".to_string()
                    } else {
                        v.label.clone()
                    },
                    v.parent.map_or("-".to_string(), |p| p.to_string()),
                    rfc3339(v.created_ms),
                    v.entry_count.to_string(),
                    v.bytes.to_string(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "ID", "KIND", "LABEL", "PARENT", "CREATED", "ENTRIES", "BYTES",
            ],
            &rows,
            &[0, 3, 5, 6],
        )
        .map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

// ----- export ------------------------------------------------------------------------------------

pub fn export(args: ExportArgs, quiet: bool) -> CliResult {
    let store = open_store(&args.dir)?;
    let volume = resolve(&store, args.volume)?.id;
    let to_stdout = args.output.as_os_str() == "-";
    let out_name = if to_stdout {
        "stdout".to_string()
    } else {
        args.output.display().to_string()
    };
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(io::BufWriter::new(io::stdout().lock()))
    } else {
        Box::new(File::create(&args.output).map_err(|e| CliError::io(&out_name, e))?)
    };
    let total = store.block_count() * u64::from(store.block_size());
    let bar = progress_bar(Some(total), quiet, "exporting");
    let mut sink_error: Option<io::Error> = None;
    let result = block_on(store.export(
        volume,
        |chunk| {
            out.write_all(chunk).map_err(|e| {
                sink_error = Some(e);
                Error::Cancelled
            })
        },
        |done, _| bar.set_position(done),
    ));
    let result = match (result, sink_error) {
        (_, Some(e)) => Err(CliError::io(format!("writing to {out_name}"), e)),
        (Err(e), None) => Err(e.into()),
        (Ok(()), None) => out
            .flush()
            .map_err(|e| CliError::io(format!("writing to {out_name}"), e)),
    };
    drop(out);
    match result {
        Ok(()) => {
            bar.finish_and_clear();
            note(
                quiet,
                format_args!(
                    "exported volume {volume} ({}) to {out_name}",
                    human_bytes(total)
                ),
            );
            Ok(())
        }
        Err(e) => {
            bar.abandon();
            if !to_stdout {
                let _ = std::fs::remove_file(&args.output);
            }
            Err(e)
        }
    }
}

// ----- stat --------------------------------------------------------------------------------------

pub fn stat(args: StatArgs) -> CliResult {
    let store = open_store(&args.dir)?;
    let info = store.info();
    let recovery = store.recovery();
    let baseline = match info.baseline {
        BaselineKind::Zero => "zero",
        BaselineKind::Image => "image",
    };
    let volume_bytes = info.block_count * u64::from(info.block_size);
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.json {
        let value = StatJson {
            path: args.dir.display().to_string(),
            backend: info.backend,
            block_size: info.block_size,
            block_count: info.block_count,
            volume_bytes,
            baseline,
            store_id: info.store_id,
            store_id_hex: format!("{:016x}", info.store_id),
            created_ms: info.created_ms,
            created: rfc3339(info.created_ms),
            head: info.head.0,
            next_seq: info.next_seq,
            partitions: info.partitions,
            log_bytes: info.log_bytes,
            mapped_blocks: info.mapped_blocks,
            index_bytes: info.index_bytes,
            recovery: RecoveryJson {
                journal_bytes_truncated: recovery.journal_bytes_truncated,
                head_bytes_truncated: recovery.head_bytes_truncated,
            },
        };
        writeln!(out, "{}", to_json(&value, true)?).map_err(stdout_err)?;
    } else {
        let rows: Vec<(&str, String)> = vec![
            ("path", args.dir.display().to_string()),
            ("backend", info.backend.to_string()),
            ("block size", info.block_size.to_string()),
            ("block count", info.block_count.to_string()),
            (
                "volume size",
                format!("{volume_bytes} ({})", human_bytes(volume_bytes)),
            ),
            ("baseline", baseline.to_string()),
            ("store id", format!("{:016x}", info.store_id)),
            ("created", rfc3339(info.created_ms)),
            ("head volume", info.head.to_string()),
            ("next seq", info.next_seq.to_string()),
            ("partitions", info.partitions.to_string()),
            (
                "log bytes",
                format!("{} ({})", info.log_bytes, human_bytes(info.log_bytes)),
            ),
            ("mapped blocks", info.mapped_blocks.to_string()),
            ("index bytes", info.index_bytes.to_string()),
            (
                "recovery",
                format!(
                    "journal {} bytes truncated, head segment {} bytes truncated",
                    recovery.journal_bytes_truncated, recovery.head_bytes_truncated
                ),
            ),
        ];
        for (key, value) in rows {
            writeln!(out, "{:<14} {value}", format!("{key}:")).map_err(stdout_err)?;
        }
    }
    out.flush().map_err(stdout_err)
}

#[cfg(test)]
mod tests {
    use super::human_bytes;

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(1 << 30), "1.0 GiB");
        assert_eq!(human_bytes(u64::MAX), "16384.0 PiB");
    }
}
