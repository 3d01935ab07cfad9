//! Native directory backend: one file per object, `pwrite`/`pread`, `fdatasync` per touched file
//! on a durable commit and `fsync` of the directory after files are created or removed.
//!
//! Opening takes an exclusive lock on `LOCK` in the directory, so two processes cannot open one
//! store for writing. The lock is released when the storage is dropped (or the process dies).

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::{Change, Commit, Storage, StorageError};

const LOCK_FILE: &str = "LOCK";

/// A directory of files.
#[derive(Debug)]
pub struct DirStorage {
    root: PathBuf,
    _lock: File,
    files: RefCell<HashMap<String, File>>,
    /// Files written since the last durable commit.
    dirty: BTreeSet<String>,
    /// Whether directory entries changed since the last durable commit.
    dir_dirty: bool,
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

impl DirStorage {
    /// Opens (creating if needed) the directory `root` and locks it for writing.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, StorageError> {
        let root = root.as_ref().to_path_buf();
        let root_name = root.display().to_string();
        std::fs::create_dir_all(&root).map_err(|e| io_error(&root_name, e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(root.join(LOCK_FILE))
            .map_err(|e| io_error(LOCK_FILE, e))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(StorageError::Locked(root_name)),
            Err(std::fs::TryLockError::Error(e)) => return Err(io_error(LOCK_FILE, e)),
        }
        Ok(DirStorage {
            root,
            _lock: lock,
            files: RefCell::new(HashMap::new()),
            dirty: BTreeSet::new(),
            dir_dirty: false,
        })
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
        let mut files = self.files.borrow_mut();
        if !files.contains_key(object) {
            let opened = OpenOptions::new()
                .read(true)
                .write(true)
                .create(create)
                .truncate(false)
                .open(self.root.join(object));
            match opened {
                Ok(file) => {
                    files.insert(object.to_string(), file);
                }
                Err(e) if e.kind() == ErrorKind::NotFound && !create => return Ok(None),
                Err(e) => return Err(io_error(object, e)),
            }
        }
        let file = files
            .get(object)
            .ok_or_else(|| StorageError::InvalidName(object.to_string()))?;
        f(file).map(Some).map_err(|e| io_error(object, e))
    }
}

impl Storage for DirStorage {
    fn kind(&self) -> &'static str {
        "dir"
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
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
            let mut done = 0;
            while done < buf.len() {
                match file.read_at(&mut buf[done..], offset + done as u64) {
                    Ok(0) => break,
                    Ok(n) => done += n,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            buf[done..].fill(0);
            Ok(done)
        })?;
        match filled {
            Some(n) => Ok(n),
            None => {
                buf.fill(0);
                Ok(0)
            }
        }
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        for change in &commit.changes {
            match change {
                Change::Write {
                    object,
                    offset,
                    data,
                } => {
                    let existed =
                        self.files.borrow().contains_key(object) || self.root.join(object).exists();
                    self.with_file(object, true, |f| f.write_all_at(data, *offset))?;
                    self.dir_dirty |= !existed;
                    self.dirty.insert(object.clone());
                }
                Change::Truncate { object, len } => {
                    self.with_file(object, true, |f| f.set_len(*len))?;
                    self.dirty.insert(object.clone());
                }
                Change::Delete { object } => {
                    check_name(object)?;
                    self.files.borrow_mut().remove(object);
                    self.dirty.remove(object);
                    match std::fs::remove_file(self.root.join(object)) {
                        Ok(()) => self.dir_dirty = true,
                        Err(e) if e.kind() == ErrorKind::NotFound => {}
                        Err(e) => return Err(io_error(object, e)),
                    }
                }
            }
        }
        if commit.durable {
            let dirty = std::mem::take(&mut self.dirty);
            for object in &dirty {
                self.with_file(object, true, |f| f.sync_data())?;
            }
            if self.dir_dirty {
                let root_name = self.root.display().to_string();
                File::open(&self.root)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io_error(&root_name, e))?;
                self.dir_dirty = false;
            }
        }
        Ok(())
    }
}
