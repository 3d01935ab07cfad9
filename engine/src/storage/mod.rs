//! The storage contract the engine is written against, and the backends that ship with it.
//!
//! A [`Storage`] is a flat namespace of named *objects* (byte arrays that grow by writes).
//! It is deliberately small so that it maps onto a directory of files, onto OPFS sync access
//! handles and onto IndexedDB records holding chunks of objects.
//!
//! # Contract
//!
//! * **Reads** see every write of every earlier [`Storage::commit`] on this handle, durable or not.
//!   A read that reaches past the end of an object returns the bytes that exist, zero-fills the
//!   rest of the buffer and reports how many bytes existed (the *end of file*). Reading a missing
//!   object is the same as reading an empty one.
//! * **Writes** past the end of an object extend it; a gap between the old end and the write is
//!   zero-filled. Writing to a missing object creates it.
//! * **Commits** are the unit of I/O: a backend applies one [`Commit`] as one IndexedDB
//!   transaction, or as writes followed (when durable) by one `flush()`/`fsync` per touched file.
//!   A commit is **not** atomic on every backend: the engine never relies on atomicity, only on
//!   the durability barrier below and on its own checksums.
//! * **Durability**: when `commit(c)` with `c.durable == true` returns `Ok`, every write,
//!   truncation, creation and deletion of this and of all earlier commits survives a crash
//!   (for files this includes the directory entry), except those of *unsynced* commits
//!   ([`Commit::unsynced`]), which no barrier covers. Before that, any subset of the non-durable
//!   changes may survive, in any order, and a write may be torn at 512-byte sector granularity.
//! * **Failure**: an `Err` from a durable commit means *nothing* about what reached the medium.
//!   The engine treats it as fatal for the handle (it never retries a failed flush) and recovers by
//!   reopening, as PostgreSQL does after a failed fsync.
//! * Backends are used from one thread; futures need not be `Send`.

#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(not(target_arch = "wasm32"))]
pub mod dir;
pub mod memory;
pub mod sim;

/// What a backend reports when an operation fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// The medium is full or the origin's quota is exhausted.
    #[error("storage quota exceeded: {0}")]
    QuotaExceeded(String),
    /// Another process or tab holds the store open for writing.
    #[error("the store is open for writing elsewhere ({0}); close it there or open read-only")]
    Locked(String),
    /// An object name is not acceptable to the backend.
    #[error("invalid object name {0:?}")]
    InvalidName(String),
    /// A fault injected by a test backend.
    #[error("injected fault at I/O #{0}")]
    Injected(u64),
    /// An operating-system or browser I/O failure.
    #[error("I/O error on {object}: {message}")]
    Io {
        /// Object involved.
        object: String,
        /// What the platform said.
        message: String,
    },
}

impl StorageError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::QuotaExceeded(_) => "QUOTA_EXCEEDED",
            StorageError::Locked(_) => "LOCKED",
            StorageError::InvalidName(_) => "INVALID_NAME",
            StorageError::Injected(_) => "INJECTED_FAULT",
            StorageError::Io { .. } => "IO",
        }
    }
}

/// One change inside a [`Commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Write `data` at byte `offset` of `object`.
    Write {
        /// Object name.
        object: String,
        /// Byte offset.
        offset: u64,
        /// Bytes to write.
        data: Vec<u8>,
    },
    /// Set the length of `object` to `len` (shrinking or zero-extending it).
    Truncate {
        /// Object name.
        object: String,
        /// New length in bytes.
        len: u64,
    },
    /// Remove `object` (no error if it is missing).
    Delete {
        /// Object name.
        object: String,
    },
}

impl Change {
    /// The object this change touches.
    pub fn object(&self) -> &str {
        match self {
            Change::Write { object, .. }
            | Change::Truncate { object, .. }
            | Change::Delete { object } => object,
        }
    }
}

/// A group of changes applied as one backend operation (see the module contract).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Commit {
    /// The changes, applied in order.
    pub changes: Vec<Change>,
    /// When true, the commit is a durability barrier (see the module contract).
    pub durable: bool,
    /// When true (never with `durable`), nothing depends on these changes being durable, ever:
    /// a later barrier need not cover them, and a crash may drop or tear them even after one.
    /// The engine writes a sealed segment's index and footer like this when its records are
    /// already durable (open rebuilds a missing tail from the records), so that a snapshot
    /// after a sync costs one flush. The directory backend leaves such writes out of its later
    /// `fdatasync`s; the others may treat the commit as a plain non-durable one.
    pub unsynced: bool,
}

impl Commit {
    /// An empty commit with the given durability.
    pub fn new(durable: bool) -> Self {
        Commit {
            changes: Vec::new(),
            durable,
            unsynced: false,
        }
    }

    /// An empty commit whose changes never need to be durable (see [`Commit::unsynced`]).
    pub fn unsynced() -> Self {
        Commit {
            changes: Vec::new(),
            durable: false,
            unsynced: true,
        }
    }

    /// Adds a write.
    pub fn write(&mut self, object: &str, offset: u64, data: Vec<u8>) -> &mut Self {
        self.changes.push(Change::Write {
            object: object.to_string(),
            offset,
            data,
        });
        self
    }

    /// Adds a truncation.
    pub fn truncate(&mut self, object: &str, len: u64) -> &mut Self {
        self.changes.push(Change::Truncate {
            object: object.to_string(),
            len,
        });
        self
    }

    /// Adds a deletion.
    pub fn delete(&mut self, object: &str) -> &mut Self {
        self.changes.push(Change::Delete {
            object: object.to_string(),
        });
        self
    }
}

/// One read in a [`Storage::read_many`] call.
#[derive(Debug)]
pub struct ReadRequest<'a> {
    /// Object name.
    pub object: &'a str,
    /// Byte offset.
    pub offset: u64,
    /// Destination; filled completely (zero past the end of the object).
    pub buf: &'a mut [u8],
    /// Set by the backend: how many bytes existed before the end of the object.
    pub filled: usize,
}

/// The storage backend contract. See the module documentation for the rules.
#[allow(async_fn_in_trait)]
pub trait Storage {
    /// A short name of the backend kind (`"memory"`, `"dir"`, `"sim"`, `"opfs"`, `"indexeddb"`).
    fn kind(&self) -> &'static str;

    /// True when creating an object costs a flush of its own at the next barrier (a file's
    /// directory entry: an `fsync` of the directory). The engine then creates the (empty)
    /// segment objects of the next partitions ahead of time, in barriers that flush the
    /// directory anyway, so that a new partition's first sync flushes only its data. An empty
    /// write creates an object; on such a backend it costs no data flush.
    fn new_objects_cost_a_flush(&self) -> bool {
        false
    }

    /// Starts creating the empty objects `names` off the caller's path, durably (on the
    /// directory backend: a helper thread creates the files and flushes the directory), and
    /// returns whether it did; `false` (the default) does nothing. Until the creation has
    /// finished, any access to one of those objects waits for it first, and if it failed, a
    /// durable commit that writes one of them makes its existence durable itself.
    fn create_ahead(&mut self, _names: &[String]) -> bool {
        false
    }

    /// The names of all objects that exist, in no particular order.
    async fn list(&self) -> Result<Vec<String>, StorageError>;

    /// The length of an object, or `None` if it does not exist.
    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError>;

    /// Reads into `buf` from `offset`; returns the number of bytes that existed (the rest of `buf`
    /// is zero-filled).
    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError>;

    /// A hint that the byte ranges `(object, offset, len)` will be read soon: a backend that
    /// can fetch them in the background starts to (the directory backend asks the kernel to
    /// read them ahead). The default does nothing; nothing may depend on it.
    fn prefetch(&self, _ranges: &[(&str, u64, u64)]) {}

    /// A hint that `len` bytes of `object` from `offset`, written by a commit that was not
    /// durable, are likely to be made durable by a later one (the store gives it for each
    /// window of a merge, each time its write buffer goes to the head's segment, and for the
    /// chunks of an imported baseline and the records of a received volume): a backend
    /// that can start writing them to the medium in the background does so (the directory
    /// backend has a helper thread start the kernel's write-back of that range), so that the
    /// flush finds less to do. Durability still comes only from a durable commit. The default
    /// does nothing; nothing may depend on it.
    fn write_behind(&self, _object: &str, _offset: u64, _len: u64) {}

    /// Performs many reads in one call. The default issues them one by one; backends with a
    /// per-call cost (IndexedDB) override it to batch them.
    async fn read_many(&self, requests: &mut [ReadRequest<'_>]) -> Result<(), StorageError> {
        for request in requests.iter_mut() {
            request.filled = self
                .read_at(request.object, request.offset, request.buf)
                .await?;
        }
        Ok(())
    }

    /// Applies a commit (see the module contract for atomicity and durability).
    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError>;
}

/// Objects held in memory by name, in name order: the memory and simulated backends' images.
/// A sorted vector rather than a `BTreeMap`, whose code is some 8 KiB of the WebAssembly module
/// for the one map of this type there.
pub type Objects = litemap::LiteMap<String, Vec<u8>>;

/// Applies one change to an in-memory object map; shared by the memory and simulated backends.
pub(crate) fn apply_change(objects: &mut Objects, change: &Change) {
    match change {
        Change::Write {
            object,
            offset,
            data,
        } => {
            let file = objects.entry(object.clone()).or_default();
            let start = usize::try_from(*offset).unwrap_or(usize::MAX);
            let end = start.saturating_add(data.len());
            if file.len() < end {
                file.resize(end, 0);
            }
            if let Some(slot) = file.get_mut(start..end) {
                slot.copy_from_slice(data);
            }
        }
        Change::Truncate { object, len } => {
            let file = objects.entry(object.clone()).or_default();
            file.resize(usize::try_from(*len).unwrap_or(usize::MAX), 0);
        }
        Change::Delete { object } => {
            objects.remove(object);
        }
    }
}

/// Reads from an in-memory object with the zero-fill contract.
pub(crate) fn read_from(file: Option<&Vec<u8>>, offset: u64, buf: &mut [u8]) -> usize {
    buf.fill(0);
    let Some(file) = file else { return 0 };
    let Ok(start) = usize::try_from(offset) else {
        return 0;
    };
    if start >= file.len() {
        return 0;
    }
    let n = buf.len().min(file.len() - start);
    buf[..n].copy_from_slice(&file[start..start + n]);
    n
}
