//! Native directory backend: one file per object, `pwrite`/`pread`, `fdatasync` per touched file
//! on a durable commit and `fsync` of the directory after files are created or removed.
//!
//! Opening for writing takes an exclusive OS lock (`flock`) on the directory itself, held on an
//! open descriptor for as long as the storage lives, so two processes cannot open one store for
//! writing, and no path inside the directory can be deleted or replaced to admit a second writer.
//! The lock is released when the storage is dropped (or the process dies). Earlier versions kept
//! the lock on a file named `LOCK`; such a file is left alone and holds nothing.
//!
//! [`DirStorage::open_read_only`] takes no lock and refuses every commit: it is for read-only
//! views (`Store::open_read_only`) that may run beside a writer.
//!
//! At most [`OPEN_FILES_MAX`] files are kept open, besides at most 64 deleted ones waiting for
//! the background thread to close them (a store has a segment file per snapshot, and the usual
//! limit is 1,024 descriptors per process): past that, the least recently used file without
//! unsynced writes is closed, and opened again when next needed. Files written since the
//! last durable commit stay open until it has synced them, so that a write-back error reaches
//! the `fdatasync` of the descriptor that wrote.
//!
//! A new file costs a directory `fsync` before its data may be called durable, so the store asks
//! for the next partitions' (empty) segment files ahead of time ([`Storage::create_ahead`]): a
//! helper thread creates them and flushes the directory, off every caller's path. Any access to
//! a file it is creating waits for it first; if it failed, the next durable write to such a file
//! flushes the directory itself.
//!
//! Bytes written without a flush that a later flush will want ([`Storage::write_behind`]: a
//! merge's windows, the store's write buffer, an import's chunks, a receive's records) are
//! handed to another helper thread, which starts the kernel's write-back of them
//! (`sync_file_range`) on a file description of its own, so that the device writes them while
//! the caller goes on and the next `fdatasync` waits for less. A deleted file's name goes at
//! once, but its last descriptor is closed on that thread too, so that the kernel frees its
//! cached pages and blocks there (a merge's or a compaction's old segment); the file is gone
//! from the directory either way, and a crash leaves nothing behind.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::{Change, Commit, ReadRequest, Storage, StorageError};

/// The lock file of earlier versions: never an object name.
const LOCK_FILE: &str = "LOCK";

/// How many files a [`DirStorage`] keeps open at most (more only while more than this many have
/// unsynced writes).
pub const OPEN_FILES_MAX: usize = 256;

/// A directory of files.
#[derive(Debug)]
pub struct DirStorage {
    root: PathBuf,
    /// The directory, opened and `flock`ed exclusively (writable storage only).
    _lock: Option<File>,
    /// Opened with [`DirStorage::open_read_only`]: files are opened read-only, commits refused.
    read_only: bool,
    /// Open files, each with the tick of its last use.
    files: RefCell<HashMap<String, (File, u64)>>,
    /// Uses so far: the clock of the least-recently-used choice.
    ticks: std::cell::Cell<u64>,
    /// How many files to keep open ([`OPEN_FILES_MAX`]; lower in tests).
    open_files_max: usize,
    /// Files written since the last durable commit.
    dirty: BTreeSet<String>,
    /// Whether directory entries changed since the last durable commit.
    dir_dirty: bool,
    /// Device flushes so far: `fdatasync` of a file, `fsync` of the directory.
    flushes: u64,
    /// Empty files a helper thread is creating ([`Storage::create_ahead`]).
    creating: RefCell<Option<Creating>>,
    /// Files created ahead whose directory entries are not known to be durable (the helper
    /// failed): a durable commit that writes one flushes the directory.
    entries_unsure: RefCell<BTreeSet<String>>,
    /// The helper threads' directory flushes so far (off every caller's path).
    background_flushes: Arc<AtomicU64>,
    /// The background thread (write-behind and the closing of deleted files), started by the
    /// first job.
    background: RefCell<Option<Background>>,
}

/// Jobs handed to the background thread and not yet taken, at most: past this, a hint is
/// dropped (the durable commit's `fdatasync` writes those bytes itself) and a deleted file is
/// closed by the caller.
const BACKGROUND_QUEUE: usize = 64;

/// What the background thread does, off every caller's path.
#[derive(Debug)]
enum Job {
    /// Start the kernel's write-back of (file, offset, length), written but not yet synced
    /// ([`Storage::write_behind`]).
    WriteBack(PathBuf, u64, u64),
    /// Close the last descriptor of a deleted file: the kernel then frees its cached pages and
    /// its blocks (19 ms for a merge's 67 MiB segment, measured), here rather than in the
    /// commit that deleted it.
    Close(File),
}

/// The background thread and the queue of its jobs.
#[derive(Debug)]
struct Background {
    jobs: std::sync::mpsc::SyncSender<Job>,
    thread: std::thread::JoinHandle<()>,
}

impl Background {
    fn spawn() -> Option<Self> {
        let (jobs, queue) = std::sync::mpsc::sync_channel(BACKGROUND_QUEUE);
        let thread = std::thread::Builder::new()
            .name("strata-background".into())
            .spawn(move || {
                for job in queue {
                    match job {
                        // A description of its own, so that no write-back error is consumed
                        // from the writer's (its `fdatasync` must see it); a failure only loses
                        // a hint.
                        Job::WriteBack(path, offset, len) => {
                            if let Ok(file) = File::open(&path) {
                                start_write_back(&file, offset, len);
                            }
                        }
                        Job::Close(file) => drop(file),
                    }
                }
            })
            .ok()?;
        Some(Background { jobs, thread })
    }
}

/// Starts writing the dirty pages of `file` in `offset..offset + len` to the device, without
/// waiting for them (`sync_file_range(SYNC_FILE_RANGE_WRITE)`): no flush of the device's cache
/// and no report of errors, which the next `fdatasync` of the writer's descriptor sees.
#[cfg(target_os = "linux")]
fn start_write_back(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    // SAFETY: an FFI call that reads no memory of ours; `file` is open for the whole call.
    let _ = unsafe {
        libc::sync_file_range(file.as_raw_fd(), offset, len, libc::SYNC_FILE_RANGE_WRITE)
    };
}

#[cfg(not(target_os = "linux"))]
fn start_write_back(_file: &File, _offset: u64, _len: u64) {}

/// Fills `buf` with the bytes from `offset` on, read by `read_once` until `buf` is full or the
/// file ends (interrupted reads are retried), and zeros past the end: the bytes that existed.
fn fill_from(
    buf: &mut [u8],
    offset: u64,
    mut read_once: impl FnMut(&mut [u8], u64) -> std::io::Result<usize>,
) -> std::io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match read_once(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf[done..].fill(0);
    Ok(done)
}

/// A creation of empty files under way on a helper thread.
#[derive(Debug)]
struct Creating {
    names: BTreeSet<String>,
    done: std::thread::JoinHandle<std::io::Result<()>>,
}

fn io_error(object: &str, error: std::io::Error) -> StorageError {
    if error.raw_os_error() == Some(28) || error.raw_os_error() == Some(122) {
        return StorageError::QuotaExceeded(format!("{object}: {error}"));
    }
    StorageError::Io {
        object: object.to_string(),
        message: error.to_string(),
    }
}

fn check_name(object: &str) -> Result<(), StorageError> {
    let ok = !object.is_empty()
        && object != LOCK_FILE
        && !object.starts_with('.')
        && object
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(StorageError::InvalidName(object.to_string()))
    }
}

/// Largest single `pwrite` into an empty file: the first write of a file longer than this is
/// issued in pieces of this size.
///
/// Measured on the bench machine (ext4 on a virtual disk, kernel 6.18): writing a partition's
/// 1.1 MB of records into a new segment file in one `pwrite` took 2.5 ms (p50), in 256 KiB
/// pieces 0.23 ms (figure 5b went from 3.07 to 2.24 ms). Appends to a file already written are
/// fast in one piece, and splitting them cost CPU (figure 3, 1 GiB appended in 2 MiB commits:
/// 66-82% of raw split, 84-87% whole), so only a write at offset 0 is split.
const FIRST_WRITE_CHUNK_BYTES: usize = 256 << 10;

/// `write_all_at`, in pieces of at most [`FIRST_WRITE_CHUNK_BYTES`] at offset 0.
fn write_at(f: &File, data: &[u8], offset: u64) -> std::io::Result<()> {
    if offset != 0 {
        return f.write_all_at(data, offset);
    }
    let mut at = offset;
    for chunk in data.chunks(FIRST_WRITE_CHUNK_BYTES) {
        f.write_all_at(chunk, at)?;
        at += chunk.len() as u64;
    }
    Ok(())
}

impl DirStorage {
    /// Opens (creating if needed) the directory `root` and locks it for writing: an exclusive
    /// `flock` on the directory's own descriptor, so deleting or replacing any file inside it
    /// cannot let a second writer in. Fails with [`StorageError::Locked`] if another process
    /// (or another `DirStorage` of this one) holds it.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        let root = root.as_ref().to_path_buf();
        let root_name = root.display().to_string();
        std::fs::create_dir_all(&root).map_err(|e| io_error(&root_name, e))?;
        let lock = File::open(&root).map_err(|e| io_error(&root_name, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StorageError::Locked(root_name)),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(&root_name, e)),
        }
        Ok(Self::new(root, Some(lock)))
    }

    /// Opens the existing directory `root` for reading only: no lock is taken (a writer may have
    /// the store open), files are opened read-only, and every [`Storage::commit`] fails. A missing
    /// directory is an error.
    pub fn open_read_only(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        let root = root.as_ref().to_path_buf();
        let root_name = root.display().to_string();
        let meta = std::fs::metadata(&root).map_err(|e| io_error(&root_name, e))?;
        if !meta.is_dir() {
            return Err(StorageError::Io {
                object: root_name,
                message: "not a directory".into(),
            });
        }
        let mut storage = Self::new(root, None);
        storage.read_only = true;
        Ok(storage)
    }

    fn new(root: PathBuf, lock: Option<File>) -> Self {
        DirStorage {
            root,
            _lock: lock,
            read_only: false,
            files: RefCell::new(HashMap::new()),
            ticks: std::cell::Cell::new(0),
            open_files_max: OPEN_FILES_MAX,
            dirty: BTreeSet::new(),
            dir_dirty: false,
            flushes: 0,
            creating: RefCell::new(None),
            entries_unsure: RefCell::new(BTreeSet::new()),
            background_flushes: Arc::new(AtomicU64::new(0)),
            background: RefCell::new(None),
        }
    }

    /// Directory flushes made by helper threads that created files ahead
    /// ([`Storage::create_ahead`]): device flushes, but on no caller's path.
    pub fn background_flushes(&self) -> u64 {
        self.background_flushes.load(Ordering::Relaxed)
    }

    /// Waits for the creation under way, if any, when it includes `object` (every object with
    /// `None`); a failed one leaves its files' directory entries unsure.
    fn wait_for_creation(&self, object: Option<&str>) {
        let mut creating = self.creating.borrow_mut();
        if !creating
            .as_ref()
            .is_some_and(|c| object.is_none_or(|o| c.names.contains(o)))
        {
            return;
        }
        if let Some(c) = creating.take() {
            if !matches!(c.done.join(), Ok(Ok(()))) {
                self.entries_unsure.borrow_mut().extend(c.names);
            }
        }
    }

    /// Device flushes this handle has made (each `fdatasync` of a file and each `fsync` of the
    /// directory), for the benchmarks that count them per durability point.
    pub fn flushes(&self) -> u64 {
        self.flushes
    }

    /// True if opened with [`DirStorage::open_read_only`].
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Hands `job` to the background thread (started by the first job); gives it back if the
    /// thread has [`BACKGROUND_QUEUE`] jobs waiting or could not start.
    fn in_background(&self, job: Job) -> Result<(), Job> {
        let mut background = self.background.borrow_mut();
        if background.is_none() {
            *background = Background::spawn();
        }
        match background.as_ref() {
            Some(b) => b.jobs.try_send(job).map_err(|e| match e {
                std::sync::mpsc::TrySendError::Full(job)
                | std::sync::mpsc::TrySendError::Disconnected(job) => job,
            }),
            None => Err(job),
        }
    }

    /// The directory this storage lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn with_file<T>(
        &self,
        object: &str,
        create: bool,
        f: impl FnOnce(&File) -> std::io::Result<T>,
    ) -> Result<Option<T>, StorageError> {
        check_name(object)?;
        self.wait_for_creation(Some(object));
        let tick = self.ticks.get() + 1;
        self.ticks.set(tick);
        let mut files = self.files.borrow_mut();
        if !files.contains_key(object) {
            let opened = OpenOptions::new()
                .read(true)
                .write(!self.read_only)
                .create(create && !self.read_only)
                .truncate(false)
                .open(self.root.join(object));
            match opened {
                Ok(file) => {
                    while files.len() >= self.open_files_max
                        && self.close_least_recently_used(&mut files)
                    {}
                    files.insert(object.to_string(), (file, tick));
                }
                Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(None),
                Err(e) => return Err(io_error(object, e)),
            }
        }
        let (file, last_used) = files
            .get_mut(object)
            .ok_or_else(|| StorageError::InvalidName(object.to_string()))?;
        *last_used = tick;
        f(file).map(Some).map_err(|e| io_error(object, e))
    }

    /// Reads `buf` at `offset` of `object` from the page cache alone (`preadv2` with
    /// `RWF_NOWAIT`), as [`Storage::read_at`] would: the bytes that exist, zeros past the end,
    /// `Some(0)` for a missing object. `None` if some of it would wait for the device, or the
    /// kernel cannot tell, and everywhere but Linux: the caller then reads it the usual way,
    /// which also reports any error.
    fn read_cached(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<Option<usize>, StorageError> {
        #[cfg(target_os = "linux")]
        {
            use rustix::io::{preadv2, ReadWriteFlags};
            let read = self.with_file(object, false, |file| {
                let nowait = |part: &mut [u8], at: u64| {
                    let mut slices = [std::io::IoSliceMut::new(part)];
                    Ok(preadv2(file, &mut slices, at, ReadWriteFlags::NOWAIT)?)
                };
                Ok(fill_from(buf, offset, nowait).ok())
            })?;
            Ok(match read {
                Some(filled) => filled,
                None => {
                    buf.fill(0);
                    Some(0)
                }
            })
        }
        #[cfg(not(target_os = "linux"))]
        {
            let _ = (object, offset, buf);
            Ok(None)
        }
    }

    /// Closes the least recently used quarter of the open files that have no unsynced writes
    /// (at least one); false if there is none. A quarter at a time, so that the scan of the open
    /// files is paid once per `open_files_max / 4` files opened, not for each one (a cold open
    /// of 10,000 partitions spent an eighth of its time here).
    fn close_least_recently_used(&self, files: &mut HashMap<String, (File, u64)>) -> bool {
        let mut idle: Vec<(u64, &String)> = files
            .iter()
            .filter(|(name, _)| !self.dirty.contains(*name))
            .map(|(name, (_, last_used))| (*last_used, name))
            .collect();
        if idle.is_empty() {
            return false;
        }
        let close = (self.open_files_max / 4).clamp(1, idle.len());
        idle.select_nth_unstable(close - 1);
        let closing: Vec<String> = idle[..close]
            .iter()
            .map(|(_, name)| (*name).clone())
            .collect();
        for name in closing {
            files.remove(&name);
        }
        true
    }

    /// How many files are open now.
    pub fn open_files(&self) -> usize {
        self.files.borrow().len()
    }
}

impl Storage for DirStorage {
    fn kind(&self) -> &'static str {
        "dir"
    }

    fn new_objects_cost_a_flush(&self) -> bool {
        true
    }

    fn create_ahead(&mut self, names: &[String]) -> bool {
        if self.read_only || names.iter().any(|n| check_name(n).is_err()) {
            return false;
        }
        self.wait_for_creation(None);
        let names: BTreeSet<String> = names
            .iter()
            .filter(|n| !self.files.borrow().contains_key(*n) && !self.root.join(n).exists())
            .cloned()
            .collect();
        if names.is_empty() {
            return true;
        }
        let root = self.root.clone();
        let list: Vec<String> = names.iter().cloned().collect();
        let flushes = Arc::clone(&self.background_flushes);
        let spawned = std::thread::Builder::new()
            .name("strata-create-ahead".into())
            .spawn(move || {
                for name in &list {
                    OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(root.join(name))?;
                }
                flushes.fetch_add(1, Ordering::Relaxed);
                File::open(&root)?.sync_all()
            });
        match spawned {
            Ok(done) => {
                *self.creating.borrow_mut() = Some(Creating { names, done });
                true
            }
            Err(_) => false,
        }
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        self.wait_for_creation(None);
        let root_name = self.root.display().to_string();
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.root).map_err(|e| io_error(&root_name, e))? {
            let entry = entry.map_err(|e| io_error(&root_name, e))?;
            if let Some(name) = entry.file_name().to_str() {
                if check_name(name).is_ok() {
                    names.push(name.to_string());
                }
            }
        }
        names.sort();
        Ok(names)
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        self.with_file(object, false, |f| f.metadata().map(|m| m.len()))
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        let filled = self.with_file(object, false, |file| {
            fill_from(buf, offset, |part, at| file.read_at(part, at))
        })?;
        match filled {
            Some(n) => Ok(n),
            None => {
                buf.fill(0);
                Ok(0)
            }
        }
    }

    /// Asks the kernel to read every range ahead (`posix_fadvise(WILLNEED)`), so that the
    /// device fetches them concurrently while the caller does other work. Files are opened
    /// for it (and count against the open-files limit); failures are ignored: a hint.
    fn prefetch(&self, ranges: &[(&str, u64, u64)]) {
        #[cfg(target_os = "linux")]
        for &(object, offset, len) in ranges {
            // Only a hint: a failure changes nothing but the speed of the reads that follow.
            let len = std::num::NonZeroU64::new(len);
            let _ = self.with_file(object, false, |file| {
                let advice = rustix::fs::Advice::WillNeed;
                rustix::fs::fadvise(file, offset, len, advice).map_err(std::io::Error::from)
            });
        }
        #[cfg(not(target_os = "linux"))]
        let _ = ranges;
    }

    /// Hands the range to a helper thread that starts the kernel's write-back of it
    /// (`sync_file_range`), so that the device writes it while the caller prepares more; the
    /// durable commit's `fdatasync` then waits for less. Linux only; dropped when the thread has
    /// 64 jobs waiting (`BACKGROUND_QUEUE`).
    fn write_behind(&self, object: &str, offset: u64, len: u64) {
        if !cfg!(target_os = "linux") || self.read_only || len == 0 || check_name(object).is_err() {
            return;
        }
        let _ = self.in_background(Job::WriteBack(self.root.join(object), offset, len));
    }

    /// Reads what the page cache already holds first, without waiting for the device (Linux's
    /// `RWF_NOWAIT`); then tells the kernel about every range still missing
    /// ([`Storage::prefetch`]) and reads those: a cold open reads the tails of hundreds of
    /// segments this way, in about the time of the slowest rather than their sum, and a merge
    /// of blocks still cached costs one system call per block rather than two.
    async fn read_many(&self, requests: &mut [ReadRequest<'_>]) -> Result<(), StorageError> {
        if requests.len() > 1 {
            let mut missing = Vec::new();
            for (k, r) in requests.iter_mut().enumerate() {
                match self.read_cached(r.object, r.offset, r.buf)? {
                    Some(filled) => r.filled = filled,
                    None => missing.push(k),
                }
            }
            let ranges: Vec<(&str, u64, u64)> = missing
                .iter()
                .map(|&k| {
                    (
                        requests[k].object,
                        requests[k].offset,
                        requests[k].buf.len() as u64,
                    )
                })
                .collect();
            self.prefetch(&ranges);
            for k in missing {
                let r = &mut requests[k];
                r.filled = self.read_at(r.object, r.offset, r.buf).await?;
            }
            return Ok(());
        }
        for r in requests.iter_mut() {
            r.filled = self.read_at(r.object, r.offset, r.buf).await?;
        }
        Ok(())
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        if self.read_only {
            return Err(StorageError::Io {
                object: self.root.display().to_string(),
                message: "the storage was opened read-only".into(),
            });
        }
        for change in &commit.changes {
            match change {
                Change::Write {
                    object,
                    offset,
                    data,
                } => {
                    if commit.unsynced {
                        // Never flushed on purpose: the file stays out of the dirty set (and a
                        // new file's directory entry out of the next directory sync).
                        self.with_file(object, true, |f| write_at(f, data, *offset))?;
                        continue;
                    }
                    self.wait_for_creation(Some(object));
                    let existed = (self.files.borrow().contains_key(object)
                        || self.root.join(object).exists())
                        && !self.entries_unsure.borrow().contains(object);
                    if data.is_empty() {
                        // Creates the file (if new): only its directory entry needs a flush.
                        self.with_file(object, true, |_| Ok(()))?;
                        self.dir_dirty |= !existed;
                        continue;
                    }
                    // Marked before the write: a file with unsynced writes is never closed.
                    self.dirty.insert(object.clone());
                    self.with_file(object, true, |f| write_at(f, data, *offset))?;
                    self.dir_dirty |= !existed;
                }
                Change::Truncate { object, len } => {
                    self.dirty.insert(object.clone());
                    self.with_file(object, true, |f| f.set_len(*len))?;
                }
                Change::Delete { object } => {
                    check_name(object)?;
                    self.wait_for_creation(Some(object));
                    let path = self.root.join(object);
                    // Held open across the unlink, which then only removes the name: the
                    // background thread closes it, and the kernel frees its pages and blocks
                    // there.
                    let open = self.files.borrow_mut().remove(object).map(|(file, _)| file);
                    let open = open.or_else(|| File::open(&path).ok());
                    self.dirty.remove(object);
                    match std::fs::remove_file(&path) {
                        Ok(()) => self.dir_dirty = true,
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(io_error(object, e)),
                    }
                    if let Some(file) = open {
                        // Closed here when the thread cannot take it.
                        let _ = self.in_background(Job::Close(file));
                    }
                }
            }
        }
        if commit.durable {
            // Each file leaves the dirty set once synced; on an error the rest stay dirty (and
            // open) for the next durable commit.
            let dirty: Vec<String> = self.dirty.iter().cloned().collect();
            for object in &dirty {
                self.flushes += 1;
                self.with_file(object, true, |f| f.sync_data())?;
                self.dirty.remove(object);
            }
            if self.dir_dirty {
                let root_name = self.root.display().to_string();
                self.flushes += 1;
                File::open(&self.root)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_error(&root_name, e))?;
                self.dir_dirty = false;
                // Every entry the directory holds is durable now.
                self.entries_unsure.borrow_mut().clear();
            }
        }
        Ok(())
    }
}

impl Drop for DirStorage {
    /// A creation under way finishes first (its thread holds no lock; the files are empty), and
    /// the background thread stops once it has done the jobs it holds.
    fn drop(&mut self) {
        self.wait_for_creation(None);
        if let Some(background) = self.background.take() {
            // Closing the channel ends the thread once it has done the jobs it holds.
            drop(background.jobs);
            let _ = background.thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        pollster::block_on(future)
    }

    /// Descriptors of this process open on files under `dir` (other tests open their own
    /// files meanwhile).
    fn fds_under(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd").map_or(0, |fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter(|target| target.starts_with(dir))
                .count()
        })
    }

    /// Commits one write of `data` to each of `objects`, durable or not.
    fn write_files(storage: &mut DirStorage, objects: &[(String, Vec<u8>)], durable: bool) {
        let changes = objects
            .iter()
            .map(|(object, data)| Change::Write {
                object: object.clone(),
                offset: 0,
                data: data.clone(),
            })
            .collect();
        block_on(storage.commit(Commit {
            unsynced: false,
            changes,
            durable,
        }))
        .expect("commit");
    }

    /// `f0`, `f1`, ... each with 10 bytes of its own number.
    fn numbered_files(count: u8) -> Vec<(String, Vec<u8>)> {
        (0..count).map(|i| (format!("f{i}"), vec![i; 10])).collect()
    }

    #[test]
    fn the_lock_is_on_the_directory_so_no_path_inside_it_admits_a_second_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = DirStorage::open(dir.path()).expect("open");
        let mut commit = Commit::new(true);
        commit.write("meta-0000000000000001", 0, vec![1; 10]);
        block_on(writer.commit(commit)).expect("commit");
        // Whatever is deleted or created inside the directory, a second writer stays out.
        for name in ["LOCK", "meta-0000000000000001"] {
            let _ = std::fs::remove_file(dir.path().join(name));
            let second = DirStorage::open(dir.path());
            assert!(
                matches!(second, Err(StorageError::Locked(_))),
                "after deleting {name}: {second:?}"
            );
        }
        assert!(!dir.path().join("LOCK").exists(), "no lock file is created");
        drop(writer);
        DirStorage::open(dir.path()).expect("free once the writer is gone");
    }

    #[test]
    fn a_read_only_directory_takes_no_lock_sees_the_writer_and_refuses_commits() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut writer = DirStorage::open(dir.path()).expect("open");
        let mut reader = DirStorage::open_read_only(dir.path()).expect("beside the writer");
        let mut commit = Commit::new(true);
        commit.write("seg-a", 0, vec![7; 10]);
        block_on(writer.commit(commit.clone())).expect("commit");
        let mut buf = [0u8; 10];
        assert_eq!(block_on(reader.read_at("seg-a", 0, &mut buf)), Ok(10));
        assert_eq!(buf, [7; 10]);
        assert!(block_on(reader.commit(commit)).is_err());
        assert!(block_on(reader.read_at("seg-missing", 0, &mut buf)).is_ok());
        assert!(
            !dir.path().join("seg-missing").exists(),
            "reads create nothing"
        );
        assert!(DirStorage::open_read_only(dir.path().join("absent")).is_err());
    }

    #[test]
    fn keeps_at_most_the_limit_of_files_open_and_reopens_closed_ones() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut storage = DirStorage::open(dir.path()).expect("open");
        storage.open_files_max = 8;
        let before = fds_under(dir.path());
        for i in 0..40u8 {
            let commit = Commit {
                unsynced: false,
                changes: vec![Change::Write {
                    object: format!("seg-{i}"),
                    offset: 0,
                    data: vec![i; 100],
                }],
                durable: i % 4 == 3,
            };
            block_on(storage.commit(commit)).expect("commit");
            // Unsynced files stay open (at most 4 between durable commits here).
            assert!(storage.open_files() <= 8 + 4, "{}", storage.open_files());
        }
        assert!(storage.open_files() <= 8);
        assert!(
            fds_under(dir.path()) <= before + 8,
            "{} descriptors, {before} before",
            fds_under(dir.path())
        );
        for i in 0..40u8 {
            let mut buf = [0u8; 100];
            let n = block_on(storage.read_at(&format!("seg-{i}"), 0, &mut buf)).expect("read");
            assert_eq!((n, buf), (100, [i; 100]));
        }
        assert!(storage.open_files() <= 8);
    }

    #[test]
    fn the_least_recently_used_quarter_is_closed_at_once() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut storage = DirStorage::open(dir.path()).expect("open");
        storage.open_files_max = 8;
        write_files(&mut storage, &numbered_files(8), true);
        // Use f0..f3 again: f4..f7 are now the least recently used, f4 the oldest.
        let mut buf = [0u8; 10];
        for i in 0..4u8 {
            block_on(storage.read_at(&format!("f{i}"), 0, &mut buf)).expect("read");
        }
        write_files(&mut storage, &[("g".into(), vec![9; 10])], true);
        let open: BTreeSet<String> = storage.files.borrow().keys().cloned().collect();
        let expected: BTreeSet<String> = ["f0", "f1", "f2", "f3", "f6", "f7", "g"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(open, expected, "two (a quarter of 8) closed: f4 and f5");
    }

    #[test]
    fn files_with_unsynced_writes_are_never_closed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut storage = DirStorage::open(dir.path()).expect("open");
        storage.open_files_max = 2;
        write_files(&mut storage, &numbered_files(6), false);
        assert_eq!(storage.open_files(), 6, "all six hold unsynced writes");
        write_files(&mut storage, &[], true);
        assert!(storage.dirty.is_empty());
        // Synced: the next file opened brings the count back under the limit.
        write_files(&mut storage, &[("g".into(), vec![7; 10])], true);
        assert_eq!(storage.open_files(), 2);
        let mut buf = [0u8; 10];
        for i in 0..6u8 {
            block_on(storage.read_at(&format!("f{i}"), 0, &mut buf)).expect("read");
            assert_eq!(buf, [i; 10]);
        }
        assert_eq!(storage.open_files(), 2);
    }

    #[test]
    fn files_created_ahead_cost_their_first_durable_write_no_directory_flush() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut storage = DirStorage::open(dir.path()).expect("open");
        let names: Vec<String> = (0..8).map(|i| format!("ahead{i}")).collect();
        assert!(storage.create_ahead(&names));
        // A durable write to one of them waits for the helper, then flushes only its data.
        let before = storage.flushes();
        write_files(&mut storage, &[(names[3].clone(), vec![7; 10])], true);
        assert_eq!(
            storage.flushes() - before,
            1,
            "one fdatasync, no directory fsync"
        );
        assert_eq!(storage.background_flushes(), 1);
        for name in &names {
            let len = block_on(storage.len(name)).expect("len");
            assert_eq!(len, Some(if *name == names[3] { 10 } else { 0 }), "{name}");
        }
        // Created again: nothing to do, no thread, no flush.
        assert!(storage.create_ahead(&names));
        assert_eq!(storage.background_flushes(), 1);
        // A new file not created ahead still costs the directory flush.
        let before = storage.flushes();
        write_files(&mut storage, &[("other".into(), vec![1; 10])], true);
        assert_eq!(
            storage.flushes() - before,
            2,
            "fdatasync and directory fsync"
        );
        // A read-only handle creates nothing.
        let mut view = DirStorage::open_read_only(dir.path()).expect("view");
        assert!(!view.create_ahead(&["never".to_string()]));
        assert!(!dir.path().join("never").exists());
    }

    #[test]
    fn a_creation_ahead_that_failed_leaves_the_next_durable_write_to_flush_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut storage = DirStorage::open(dir.path()).expect("open");
        // What the helper leaves behind when it fails: the file may exist, its entry unsure.
        std::fs::write(dir.path().join("unsure"), b"").expect("create");
        storage.entries_unsure.borrow_mut().insert("unsure".into());
        let before = storage.flushes();
        write_files(&mut storage, &[("unsure".into(), vec![2; 10])], true);
        assert_eq!(
            storage.flushes() - before,
            2,
            "fdatasync and directory fsync"
        );
        assert!(
            storage.entries_unsure.borrow().is_empty(),
            "all durable now"
        );
    }

    /// Whether `count` threads of this process are named `name` within 10 s (a new thread names
    /// itself once it runs, and an ended one leaves `/proc` a moment after it is joined).
    #[cfg(target_os = "linux")]
    fn threads_named_become(name: &str, count: usize) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if threads_named(name) == count {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Threads of this process named `name` (as the kernel shows it: 15 bytes at most).
    #[cfg(target_os = "linux")]
    fn threads_named(name: &str) -> usize {
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return 0;
        };
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|comm| comm.trim_end() == name)
            .count()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn write_behind_starts_one_helper_that_leaves_the_data_alone_and_stops_with_the_storage() {
        const HELPER: &str = "strata-backgrou";
        let dir = tempfile::tempdir().expect("tempdir");
        let before = threads_named(HELPER);
        // A read-only handle and empty or invalid ranges start nothing.
        std::fs::write(dir.path().join("base"), b"").expect("create");
        let view = DirStorage::open_read_only(dir.path()).expect("view");
        view.write_behind("base", 0, 10);
        let mut storage = DirStorage::open(dir.path()).expect("open");
        storage.write_behind("base", 0, 0);
        storage.write_behind("../base", 0, 10);
        assert!(view.background.borrow().is_none() && storage.background.borrow().is_none());
        assert_eq!(threads_named(HELPER), before, "nothing to write back");
        let data: Vec<u8> = (0..1u32 << 20).map(|i| (i % 251) as u8).collect();
        write_files(&mut storage, &[("base".into(), data.clone())], false);
        // Hints of every kind, and one for an object that does not exist: one thread.
        for _ in 0..3 {
            storage.write_behind("base", 0, data.len() as u64);
        }
        storage.write_behind("missing", 0, 4096);
        assert!(storage.background.borrow().is_some());
        assert!(
            threads_named_become(HELPER, before + 1),
            "one helper for every hint: {} threads",
            threads_named(HELPER)
        );
        // The durable commit still flushes the file, and the data is what was written.
        let flushes = storage.flushes();
        write_files(&mut storage, &[("base".into(), data[..10].to_vec())], true);
        assert_eq!(storage.flushes() - flushes, 1);
        let mut back = vec![0u8; data.len()];
        assert_eq!(
            block_on(storage.read_at("base", 0, &mut back)).expect("read"),
            data.len()
        );
        assert_eq!(back, data);
        assert!(
            !dir.path().join("missing").exists(),
            "a hint creates nothing"
        );
        drop(storage);
        drop(view);
        assert!(
            threads_named_become(HELPER, before),
            "the helper stops with the storage: {} threads",
            threads_named(HELPER)
        );
    }

    /// `read_many` reads what the page cache holds without waiting, and the rest the usual
    /// way: either way each request gets the object's bytes, zeros past its end (and for a
    /// missing object), and `filled` as `read_at` reports it.
    #[cfg(target_os = "linux")]
    #[test]
    fn read_many_gives_cached_and_uncached_ranges_alike() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut storage = DirStorage::open(dir.path()).expect("open");
        let len = 256 * 1024;
        let data: Vec<u8> = (0..len).map(|i| (i * 7 + i / 4096) as u8).collect();
        let mut commit = Commit::new(true);
        commit.write("seg", 0, data.clone());
        block_on(storage.commit(commit)).expect("commit");
        // (object, offset, length): inside, across the end, past the end, a missing object.
        let asked: [(&str, usize, usize); 5] = [
            ("seg", 0, 4096),
            ("seg", 128 * 1024 + 512, 8192),
            ("seg", len - 100, 4096),
            ("seg", len + 4096, 4096),
            ("seg-missing", 0, 16),
        ];
        let expect = |&(object, offset, wanted): &(&str, usize, usize)| {
            let mut bytes = vec![0u8; wanted];
            let mut filled = 0;
            if object == "seg" && offset < len {
                filled = wanted.min(len - offset);
                bytes[..filled].copy_from_slice(&data[offset..offset + filled]);
            }
            (filled, bytes)
        };
        for cold in [true, false] {
            if cold {
                // The clean pages leave the page cache, so the reads must wait for the device.
                let file = File::open(dir.path().join("seg")).expect("open seg");
                let dontneed = rustix::fs::Advice::DontNeed;
                rustix::fs::fadvise(&file, 0, None, dontneed).expect("fadvise");
            }
            let mut bufs: Vec<Vec<u8>> = asked.iter().map(|a| vec![0xee; a.2]).collect();
            let mut requests: Vec<ReadRequest<'_>> = asked
                .iter()
                .zip(bufs.iter_mut())
                .map(|(a, buf)| ReadRequest {
                    object: a.0,
                    offset: a.1 as u64,
                    buf,
                    filled: usize::MAX,
                })
                .collect();
            block_on(storage.read_many(&mut requests)).expect("read_many");
            let filled: Vec<usize> = requests.iter().map(|r| r.filled).collect();
            for (k, a) in asked.iter().enumerate() {
                let (want_filled, want_bytes) = expect(a);
                assert_eq!(filled[k], want_filled, "cold {cold}: filled of {a:?}");
                assert!(bufs[k] == want_bytes, "cold {cold}: the bytes of {a:?}");
            }
        }
        assert!(
            !dir.path().join("seg-missing").exists(),
            "reads create nothing"
        );
    }

    /// A deleted file's name goes with the commit; its last descriptor goes to the background
    /// thread, which closes it; and the name is free for a new file at once.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_deleted_file_is_gone_at_once_and_closed_in_the_background() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut storage = DirStorage::open(dir.path()).expect("open");
        let big = vec![1u8; 1 << 20];
        write_files(
            &mut storage,
            &[("seg-a".into(), big), ("seg-b".into(), vec![2; 10])],
            true,
        );
        // seg-b is closed by the storage first: a delete opens it to close it in the background.
        storage.files.borrow_mut().remove("seg-b");
        assert!(storage.background.borrow().is_none(), "nothing to do yet");
        let mut commit = Commit::new(true);
        commit.delete("seg-a").delete("seg-b").delete("seg-never");
        block_on(storage.commit(commit)).expect("delete");
        for name in ["seg-a", "seg-b"] {
            assert!(!dir.path().join(name).exists(), "{name} is gone");
            let mut buf = [9u8; 4];
            let filled = block_on(storage.read_at(name, 0, &mut buf)).expect("read");
            assert_eq!((filled, buf), (0, [0; 4]), "{name} reads as missing");
        }
        assert!(
            storage.background.borrow().is_some(),
            "the descriptors went to the background thread"
        );
        // A new file of the same name is its own, whatever the thread does meanwhile.
        write_files(&mut storage, &[("seg-a".into(), vec![3; 10])], true);
        let mut back = vec![0u8; 20];
        assert_eq!(
            block_on(storage.read_at("seg-a", 0, &mut back)).expect("read"),
            10
        );
        assert_eq!(back[..10], [3; 10]);
        drop(storage);
        assert_eq!(fds_under(dir.path()), 0, "every descriptor is closed");
        assert_eq!(
            std::fs::metadata(dir.path().join("seg-a"))
                .expect("seg-a")
                .len(),
            10
        );
    }
}
