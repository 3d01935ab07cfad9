//! The subcommands.

mod branch;
mod copy;
mod mirror;
mod ops;
mod paths;
mod policy;
mod serve;

pub use branch::branch;
pub use copy::{receive, send};
pub use mirror::mirror;
pub use ops::{compact, delete, diff, du, merge, rollback};
pub use policy::{audit, event, hold, policy, ttl};
pub use serve::serve;

use std::collections::BTreeSet;
use std::ffi::OsString;
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
use strata_engine::storage::StorageError;
use strata_engine::{
    BaselineKind, CreateOptions, CursorStart, Error, LogEntry, Managed, Store, StoreInfo, VolumeId,
    VolumeInfo, VolumeKind, IMAGE_CHUNK_BYTES,
};

use crate::args::{
    CreateArgs, ExportArgs, LogArgs, ReadArgs, SnapshotArgs, StatArgs, VolumeArg, VolumesArgs,
    WriteArgs, ZeroArgs,
};
use crate::error::CliError;
use crate::format::{hex_preview, rfc3339, table, HexDump};

type CliResult<T = ()> = Result<T, CliError>;

/// How many times a read-only open is tried before its error is reported: it can race a
/// writer's journal checkpoint (the old journal is deleted just after the new one is written)
/// or a compaction removing a segment, which a second look gets past.
const READ_ONLY_OPEN_TRIES: u32 = 3;
/// The pause between two tries of a read-only open.
const READ_ONLY_OPEN_PAUSE: Duration = Duration::from_millis(50);
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

/// `NOT_A_STORE` unless `dir` is an existing directory (a missing one is not created).
fn check_store_dir(dir: &Path) -> CliResult {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(CliError::at(dir, Error::NotAStore)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CliError::at(dir, Error::NotAStore)),
        Err(e) => Err(CliError::io(dir.display().to_string(), e)),
    }
}

/// The error of a store directory another process has open for writing.
fn locked(dir: &Path) -> CliError {
    CliError::Message {
        code: "LOCKED",
        message: format!(
            "{}: the store is open for writing by another process; close that writer first \
             (a store has one writer at a time). Reading commands (read, log, volumes, stat, \
             export, diff, du, send, audit, policy show) work beside it",
            dir.display()
        ),
    }
}

/// Opens the directory `dir` (creating it if missing) and locks it for writing.
fn lock_dir(dir: &Path) -> CliResult<DirStorage> {
    DirStorage::open(dir).map_err(|e| match e {
        StorageError::Locked(_) => locked(dir),
        e => CliError::at(dir, e.into()),
    })
}

/// Opens an existing store for writing: the directory is locked, recovery finishes what a
/// crash left, and the `open` event rules run. A missing path is reported as `NOT_A_STORE`
/// without creating it.
fn open_store(dir: &Path) -> CliResult<Managed<Store<DirStorage>>> {
    check_store_dir(dir)?;
    let storage = lock_dir(dir)?;
    block_on(Managed::open_store(
        storage,
        clock(),
        AUTOMATIC_POLICIES.load(std::sync::atomic::Ordering::Relaxed),
    ))
    .map_err(|e| CliError::at(dir, e))
}

/// `store` (just created, or received into) under storage management, its automatic policies
/// as the command line says. Signals no `open`.
fn managed(dir: &Path, store: Store<DirStorage>) -> CliResult<Managed<Store<DirStorage>>> {
    let mut store = Managed::new(store).map_err(|e| CliError::at(dir, e))?;
    store.set_automatic_policies(AUTOMATIC_POLICIES.load(std::sync::atomic::Ordering::Relaxed));
    Ok(store)
}

/// A read-only view under storage management, for the commands that show the policy, the
/// assignments or the audit trail (no rule ever acts on a view).
fn open_managed_read_only(dir: &Path) -> CliResult<Managed<Store<DirStorage>>> {
    let view = open_store_read_only(dir)?;
    Managed::new(view).map_err(|e| CliError::at(dir, e))
}

/// Opens an existing store as a read-only view for the commands that only look: no lock (a
/// writer may have the store open), nothing written (no recovery writes, no policy rules), so
/// they work beside a live writer and never change the store. A failed open is tried again a
/// few times (see [`READ_ONLY_OPEN_TRIES`]) unless it is final (no store, a newer format).
fn open_store_read_only(dir: &Path) -> CliResult<Store<DirStorage>> {
    check_store_dir(dir)?;
    retry_open(
        READ_ONLY_OPEN_TRIES,
        READ_ONLY_OPEN_PAUSE,
        || dir_state(dir),
        || {
            let storage = DirStorage::open_read_only(dir)?;
            block_on(Store::open_read_only(storage, clock()))
        },
    )
    .map_err(|e| CliError::at(dir, e))
}

/// Calls `open` until it succeeds, fails for good or has been called `tries` times, pausing for
/// `pause` after each failure but the last. A failure is for good when it cannot be a race with
/// a writer: no store or a newer format, or nothing changed on storage while the attempt ran
/// (`state` is read before and after it: a writer that checkpoints, compacts or appends changes
/// it), so a damaged store is reported at once.
fn retry_open<T, S: PartialEq>(
    tries: u32,
    pause: Duration,
    mut state: impl FnMut() -> S,
    mut open: impl FnMut() -> Result<T, Error>,
) -> Result<T, Error> {
    let mut tried = 0;
    loop {
        tried += 1;
        let before = state();
        match open() {
            Ok(value) => return Ok(value),
            Err(e @ (Error::NotAStore | Error::UnsupportedVersion { .. })) => return Err(e),
            Err(e) if tried >= tries || state() == before => return Err(e),
            Err(_) => std::thread::sleep(pause),
        }
    }
}

/// What a writer changes in `dir`: every name with its length and modification time.
fn dir_state(dir: &Path) -> Vec<(OsString, u64, Option<std::time::SystemTime>)> {
    let mut state: Vec<_> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let meta = e.metadata().ok();
                    (
                        e.file_name(),
                        meta.as_ref().map_or(0, |m| m.len()),
                        meta.and_then(|m| m.modified().ok()),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    state.sort();
    state
}

/// The names in directory `dir` (none if it cannot be read).
fn dir_entries(dir: &Path) -> BTreeSet<OsString> {
    std::fs::read_dir(dir)
        .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default()
}

/// After a store failed to come into being in `dir`: removes what the attempt made, the
/// directory itself if it did not exist before, or else the names in it that were not in
/// `entries_before`. Nothing is touched if the attempt never had the directory to itself
/// (another process holds it, or a store is there already): then it made nothing.
fn undo_failed_create(
    dir: &Path,
    dir_existed: bool,
    entries_before: &BTreeSet<OsString>,
    error: &CliError,
) {
    if matches!(error.code(), "LOCKED" | "ALREADY_EXISTS") {
        return;
    }
    if !dir_existed {
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    // Under the directory's lock, so that no writer that came in since is undone.
    let Ok(lock) = DirStorage::open(dir) else {
        return;
    };
    for name in dir_entries(dir).difference(entries_before) {
        let _ = std::fs::remove_file(dir.join(name));
    }
    drop(lock);
}

/// Runs `create`, which makes a store in `dir`; if it fails, removes what it left behind (see
/// [`undo_failed_create`]).
fn create_or_undo<T>(dir: &Path, create: impl FnOnce() -> CliResult<T>) -> CliResult<T> {
    let dir_existed = dir.exists();
    let entries_before = dir_entries(dir);
    let result = create();
    if let Err(e) = &result {
        undo_failed_create(dir, dir_existed, &entries_before, e);
    }
    result
}

/// Creates a store with an empty (all-zero) baseline of `blocks` blocks of `block_size` bytes in
/// `dir` (made if missing), locked for writing.
fn create_empty(dir: &Path, blocks: u64, block_size: u32) -> CliResult<Store<DirStorage>> {
    let storage = lock_dir(dir)?;
    let options = CreateOptions::new(blocks).block_size(block_size);
    block_on(Store::create(storage, options, clock())).map_err(|e| CliError::at(dir, e))
}

/// The volume `volume` names in `store`: a label must name exactly one.
pub(crate) fn resolve(store: &Store<DirStorage>, volume: VolumeArg) -> CliResult<VolumeInfo> {
    let id = match volume {
        VolumeArg::Head => store.head(),
        VolumeArg::Id(n) => VolumeId(n),
        // A branch's name reads its head.
        VolumeArg::Label(label) if store.branch_head(&label).is_ok() => {
            store.branch_head(&label)?
        }
        VolumeArg::Label(label) => {
            let named: Vec<VolumeInfo> = store
                .volumes()
                .into_iter()
                .filter(|v| v.label == label)
                .collect();
            return match <[VolumeInfo; 1]>::try_from(named) {
                Ok([one]) => Ok(one),
                Err(named) if named.is_empty() => Err(CliError::Message {
                    code: "UNKNOWN_VOLUME",
                    message: format!(
                        "no volume is labelled {label:?} (`strata volumes` lists them)"
                    ),
                }),
                Err(named) => Err(CliError::Message {
                    code: "INVALID_ARGUMENT",
                    message: format!(
                        "the label {label:?} names {} volumes ({}): give a number",
                        named.len(),
                        named
                            .iter()
                            .map(|v| v.id.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                }),
            };
        }
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

/// Ends `bar` as the work it followed ended: cleared after a success, left where it stopped
/// after a failure.
fn finish_bar<T, E: Into<CliError>>(bar: &ProgressBar, result: Result<T, E>) -> CliResult<T> {
    match result {
        Ok(value) => {
            bar.finish_and_clear();
            Ok(value)
        }
        Err(e) => {
            bar.abandon();
            Err(e.into())
        }
    }
}

/// Where `-o FILE` sends the bytes a command streams out of a store (`export`, `send`): the
/// file, or stdout for `-`.
struct OutputFile<'a> {
    /// The file; `None` for stdout.
    path: Option<&'a Path>,
    /// `stdout` or the file's name, for messages.
    name: String,
}

impl<'a> OutputFile<'a> {
    /// The output `path` of a command on the store in `store`; a file is refused, before
    /// anything is written, if it is inside a store (see [`paths::check_output`]).
    fn checked(path: &'a Path, store: &Path) -> CliResult<Self> {
        if path.as_os_str() == "-" {
            return Ok(OutputFile {
                path: None,
                name: "stdout".to_string(),
            });
        }
        paths::check_output(path, store)?;
        Ok(OutputFile {
            path: Some(path),
            name: path.display().to_string(),
        })
    }

    fn is_stdout(&self) -> bool {
        self.path.is_none()
    }

    /// Creates the file, or takes stdout.
    fn open(&self) -> CliResult<Box<dyn Write>> {
        Ok(match self.path {
            None => Box::new(io::BufWriter::new(io::stdout().lock())),
            Some(path) => Box::new(File::create(path).map_err(|e| CliError::io(&self.name, e))?),
        })
    }

    /// Like [`OutputFile::open`], but a file is written sparsely (see [`SparseFile`]): for
    /// images, whose unwritten blocks read as zeros.
    fn open_sparse(&self) -> CliResult<Box<dyn Write>> {
        Ok(match self.path {
            None => self.open()?,
            Some(path) => Box::new(SparseFile {
                file: File::create(path).map_err(|e| CliError::io(&self.name, e))?,
                at: 0,
            }),
        })
    }

    /// Calls `produce` with a sink that writes each chunk to `out`, then flushes `out`. A write
    /// that fails cancels `produce` (the sink returns [`Error::Cancelled`]) and is the error
    /// reported.
    fn stream<T>(
        &self,
        out: &mut dyn Write,
        produce: impl FnOnce(&mut dyn FnMut(&[u8]) -> Result<(), Error>) -> Result<T, Error>,
    ) -> CliResult<T> {
        let mut sink_error: Option<io::Error> = None;
        let result = produce(&mut |chunk| {
            out.write_all(chunk).map_err(|e| {
                sink_error = Some(e);
                Error::Cancelled
            })
        });
        let write_error = |e| CliError::io(format!("writing to {}", self.name), e);
        match (result, sink_error) {
            (_, Some(e)) => Err(write_error(e)),
            (Err(e), None) => Err(e.into()),
            (Ok(value), None) => out.flush().map(|()| value).map_err(write_error),
        }
    }

    /// After a failure: removes the file, which holds only part of the output.
    fn discard(&self) {
        if let Some(path) = self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// The unit [`SparseFile`] leaves as a hole when it is all zeros (the page size of the
/// filesystems a raw image usually lives on).
const HOLE_BYTES: u64 = 4096;

/// A new file written from its start, in which every all-zero [`HOLE_BYTES`] piece is skipped
/// rather than written, so it stays a hole (as `cp --sparse` and `qemu-img convert` do); `flush`
/// sets the length, which covers trailing zeros. Reads of the file are unchanged.
struct SparseFile {
    file: File,
    /// Bytes written (or skipped) so far.
    at: u64,
}

impl Write for SparseFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        use std::os::unix::fs::FileExt;
        let mut rest = buf;
        while !rest.is_empty() {
            let to_boundary = (HOLE_BYTES - self.at % HOLE_BYTES) as usize;
            let (piece, tail) = rest.split_at(to_boundary.min(rest.len()));
            if piece.iter().any(|&b| b != 0) {
                self.file.write_all_at(piece, self.at)?;
            }
            self.at += piece.len() as u64;
            rest = tail;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.file.metadata()?.len() < self.at {
            self.file.set_len(self.at)?;
        }
        Ok(())
    }
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

// The JSON of the store's commands: the engine's boundary types (camelCase, described once in
// strata_engine), with what only a command knows beside them.

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SnapshotJson<'a> {
    snapshot: u64,
    head: u64,
    label: &'a str,
}

/// A volume as the engine reports it, and when it was created for a person (RFC 3339).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct VolumeJson<'a> {
    #[serde(flatten)]
    volume: &'a VolumeInfo,
    created: String,
}

/// A log entry as the engine reports it (`data` null), its time for a person (RFC 3339) and the
/// start of its data, when asked for.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryJson {
    #[serde(flatten)]
    entry: LogEntry,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_preview: Option<String>,
}

/// The store's facts and where the store is.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatJson {
    path: String,
    #[serde(flatten)]
    info: StoreInfo,
}

// ----- create ------------------------------------------------------------------------------------

pub fn create(args: CreateArgs, quiet: bool) -> CliResult {
    let dir = &args.dir;
    // Leave nothing behind that this run made for a store that does not exist.
    let store = create_or_undo(dir, || create_inner(&args, quiet))?;
    let info = store.info();
    let bytes = info.block_count * u64::from(info.block_size);
    note(
        quiet,
        format_args!(
            "created store in {}: {} blocks of {} bytes ({}), {} baseline; head is volume {}",
            dir.display(),
            info.block_count,
            info.block_size,
            strata_units::format_bytes(bytes),
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
        return create_empty(dir, blocks, args.block_size);
    }
    let Some(image) = &args.baseline else {
        // clap requires one of --blocks and --baseline.
        return Err(Error::InvalidArgument("give --blocks or --baseline".into()).into());
    };
    let image_name = image.display().to_string();
    let mut file = File::open(image).map_err(|e| CliError::io(&image_name, e))?;
    let expected = remaining_len(&mut file);
    let storage = lock_dir(dir)?;
    let mut import = block_on(Store::import_baseline(
        storage,
        args.block_size,
        expected,
        None,
        clock(),
    ))
    .map_err(|e| image_error(image, dir, e))?;
    let bar = progress_bar(expected, quiet, "importing");
    let mut buf = vec![0u8; IMAGE_CHUNK_BYTES];
    // The holes of a sparse regular file are skipped, not read: they become holes of the
    // baseline (whole blocks only; what is left is read like the rest).
    let sparse = file.metadata().is_ok_and(|m| m.is_file());
    let block_size = u64::from(args.block_size);
    let mut pos = 0u64;
    loop {
        if let (true, Some(len)) = (sparse, expected) {
            let data = next_data(&file, pos).unwrap_or(len).min(len);
            let skip = (data - pos) / block_size * block_size;
            if skip > 0 {
                if let Err(e) = block_on(import.push_zeros(skip)) {
                    bar.abandon();
                    return Err(CliError::at(image, e));
                }
                pos += skip;
                bar.inc(skip);
                file.seek(SeekFrom::Start(pos))
                    .map_err(|e| CliError::io(&image_name, e))?;
            }
        }
        let n = read_full(&mut file, &mut buf).map_err(|e| CliError::io(&image_name, e))?;
        pos += n as u64;
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
    store.map_err(|e| image_error(image, image, e))
}

/// The offset of the first byte of data at or after `pos` in `file` (`SEEK_DATA`); `None` if
/// the rest of the file is a hole. A file system that cannot tell says `pos`: all data.
fn next_data(file: &File, pos: u64) -> Option<u64> {
    match rustix::fs::seek(file, rustix::fs::SeekFrom::Data(pos)) {
        Ok(data) => Some(data),
        Err(rustix::io::Errno::NXIO) => None,
        Err(_) => Some(pos),
    }
}

/// An error of a baseline import, about `path`; an empty image is said plainly.
fn image_error(image: &Path, path: &Path, error: Error) -> CliError {
    match error {
        Error::ImageSize { actual: 0, .. } => CliError::Message {
            code: error.code(),
            message: format!(
                "{}: the image is empty (0 bytes); a baseline needs at least one block",
                image.display()
            ),
        },
        error => CliError::at(path, error),
    }
}

// ----- write -------------------------------------------------------------------------------------

pub fn write(args: WriteArgs, quiet: bool) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    if let Some(branch) = &args.branch {
        block_on(store.checkout(branch))?;
    }
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

// ----- zero --------------------------------------------------------------------------------------

pub fn zero(args: ZeroArgs, quiet: bool) -> CliResult {
    let mut store = open_store(&args.store.dir)?;
    if let Some(branch) = &args.branch {
        block_on(store.checkout(branch))?;
    }
    check_range(&store, args.addr, args.blocks)?;
    let recorded = block_on(store.write_zeroes(args.addr, args.blocks))?;
    block_on(store.sync())?;
    note(
        quiet,
        format_args!(
            "zeroed blocks {}..{} of volume {} ({} recorded, the rest read as zeros already), synced",
            args.addr,
            args.addr + args.blocks,
            store.head(),
            plural(recorded, "block", "blocks"),
        ),
    );
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
    let mut store = open_store(&args.store.dir)?;
    let snapshot = block_on(store.snapshot(args.label.as_deref()))?;
    let head = store.head();
    block_on(store.close())?;
    let mut out = io::stdout().lock();
    if args.print.json {
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
    // `-o -` is stdout, as for `export`.
    let output = args.output.as_deref().filter(|p| p.as_os_str() != "-");
    if let Some(path) = output {
        paths::check_output(path, &args.store.dir)?;
    }
    let store = open_store_read_only(&args.store.dir)?;
    let volume = resolve(&store, args.volume)?.id;
    check_range(&store, args.addr, args.blocks)?;
    let block_size = u64::from(store.block_size());
    let chunk_blocks = (IMAGE_CHUNK_BYTES as u64 / block_size).max(1);

    let (mut out, out_name): (Box<dyn Write>, String) = match output {
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
    let store = open_store_read_only(&args.store.dir)?;
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
    if args.print.json {
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
        if args.print.json {
            let value = EntryJson {
                entry: LogEntry {
                    data: None,
                    ..entry.clone()
                },
                time: rfc3339(entry.timestamp_ms),
                data_preview: preview.clone(),
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
            if entry.zero {
                line.push_str("  zero");
            } else if let Some(preview) = preview {
                line.push_str("  ");
                line.push_str(&preview);
            }
            writeln!(out, "{}", line.trim_end()).map_err(stdout_err)?;
        }
        count += 1;
    }
    if args.print.json {
        writeln!(out, "{}]", if count == 0 { "" } else { "\n" }).map_err(stdout_err)?;
    }
    out.flush().map_err(stdout_err)
}

// ----- volumes -----------------------------------------------------------------------------------

pub fn volumes(args: VolumesArgs) -> CliResult {
    let store = open_store_read_only(&args.store.dir)?;
    let volumes = store.volumes();
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.print.json {
        let list: Vec<VolumeJson> = volumes
            .iter()
            .map(|volume| VolumeJson {
                volume,
                created: rfc3339(volume.created_ms),
            })
            .collect();
        writeln!(out, "{}", to_json(&list, true)?).map_err(stdout_err)?;
    } else {
        let rows: Vec<Vec<String>> = volumes
            .iter()
            .map(|v| {
                vec![
                    v.id.to_string(),
                    v.kind.as_str().to_string(),
                    if v.label.is_empty() {
                        "-".to_string()
                    } else {
                        v.label.clone()
                    },
                    v.parent.map_or("-".to_string(), |p| p.to_string()),
                    rfc3339(v.created_ms),
                    v.entry_count.to_string(),
                    v.bytes.to_string(),
                    if v.branch.is_empty() {
                        "-".to_string()
                    } else {
                        v.branch.clone()
                    },
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "ID", "KIND", "LABEL", "PARENT", "CREATED", "ENTRIES", "BYTES", "BRANCH",
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
    let output = OutputFile::checked(&args.output, &args.store.dir)?;
    let store = open_store_read_only(&args.store.dir)?;
    let volume = resolve(&store, args.volume)?.id;
    let mut out = output.open_sparse()?;
    let total = store.block_count() * u64::from(store.block_size());
    let bar = progress_bar(Some(total), quiet, "exporting");
    let result = output.stream(&mut out, |sink| {
        block_on(store.export(volume, sink, |done, _| bar.set_position(done)))
    });
    drop(out);
    finish_bar(&bar, result).inspect_err(|_| output.discard())?;
    note(
        quiet,
        format_args!(
            "exported volume {volume} ({}) to {}",
            strata_units::format_bytes(total),
            output.name
        ),
    );
    Ok(())
}

// ----- stat --------------------------------------------------------------------------------------

pub fn stat(args: StatArgs) -> CliResult {
    let store = open_store_read_only(&args.store.dir)?;
    let info = store.info();
    let recovery = &info.recovery;
    let baseline = info.baseline.as_str();
    let volume_bytes = info.block_count * u64::from(info.block_size);
    let mut out = io::BufWriter::new(io::stdout().lock());
    if args.print.json {
        let value = StatJson {
            path: args.store.dir.display().to_string(),
            info: info.clone(),
        };
        writeln!(out, "{}", to_json(&value, true)?).map_err(stdout_err)?;
    } else {
        let rows: Vec<(&str, String)> = vec![
            ("path", args.store.dir.display().to_string()),
            ("backend", info.backend.to_string()),
            ("block size", info.block_size.to_string()),
            ("block count", info.block_count.to_string()),
            (
                "volume size",
                format!(
                    "{volume_bytes} ({})",
                    strata_units::format_bytes(volume_bytes)
                ),
            ),
            ("baseline", baseline.to_string()),
            ("store id", format!("{:016x}", info.store_id)),
            ("created", rfc3339(info.created_ms)),
            ("head volume", info.head.to_string()),
            ("next seq", info.next_seq.to_string()),
            ("partitions", info.partitions.to_string()),
            (
                "log bytes",
                format!(
                    "{} ({})",
                    info.log_bytes,
                    strata_units::format_bytes(info.log_bytes)
                ),
            ),
            ("mapped blocks", info.mapped_blocks.to_string()),
            ("index bytes", info.index_bytes.to_string()),
            (
                "recovery",
                format!(
                    "torn tail of journal {} bytes, of head segment {} bytes{}",
                    recovery.journal_bytes_truncated,
                    recovery.head_bytes_truncated,
                    if recovery.journal_bytes_truncated + recovery.head_bytes_truncated > 0 {
                        " (left in place: the next writing command cuts it)"
                    } else {
                        ""
                    }
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
    use super::*;

    fn vanished() -> Error {
        StorageError::Io {
            object: "meta-0000000000000001".into(),
            message: "No such file or directory".into(),
        }
        .into()
    }

    #[test]
    fn a_failed_read_only_open_is_tried_again_unless_it_is_final() {
        let pause = Duration::ZERO;
        // Fails twice (a journal deleted under it: the storage changes), then opens.
        let changes = std::cell::Cell::new(0);
        let changing = || {
            changes.set(changes.get() + 1);
            changes.get()
        };
        let mut calls = 0;
        let opened = retry_open(3, pause, changing, || {
            calls += 1;
            if calls < 3 {
                Err(vanished())
            } else {
                Ok(calls)
            }
        });
        assert_eq!(opened.ok(), Some(3));
        // Keeps failing: the last error, after the given number of tries.
        let mut calls = 0;
        let failed = retry_open(3, pause, changing, || -> Result<(), Error> {
            calls += 1;
            Err(vanished())
        });
        assert_eq!(failed.err().map(|e| e.code()), Some("IO"));
        assert_eq!(calls, 3);
        // Nothing changed while it failed: damage, not a race; said at once.
        let mut calls = 0;
        let failed = retry_open(
            3,
            pause,
            || 0,
            || -> Result<(), Error> {
                calls += 1;
                Err(vanished())
            },
        );
        assert_eq!(failed.err().map(|e| e.code()), Some("IO"));
        assert_eq!(calls, 1);
        // No store there: said at once.
        let mut calls = 0;
        let failed = retry_open(3, pause, changing, || -> Result<(), Error> {
            calls += 1;
            Err(Error::NotAStore)
        });
        assert_eq!(failed.err().map(|e| e.code()), Some("NOT_A_STORE"));
        assert_eq!(calls, 1);
    }

    #[test]
    fn human_bytes_picks_a_unit() {
        assert_eq!(strata_units::format_bytes(512), "512 B");
        assert_eq!(strata_units::format_bytes(1536), "1.5 KiB");
        assert_eq!(strata_units::format_bytes(1 << 30), "1.0 GiB");
        assert_eq!(strata_units::format_bytes(u64::MAX), "16384.0 PiB");
    }
}
