//! Storage backends for the browser, behind the engine's [`Storage`] contract:
//!
//! * [`MemoryStorage`] (the engine's): objects in memory. [`open_backend`] keeps named memory
//!   stores for the life of the worker, so reopening a name sees the same objects;
//!   [`destroy_backend`] forgets them.
//! * [`OpfsStorage`] (`opfs`): a directory per store in the origin private file system, one
//!   file per object, through sync access handles. Fastest; dedicated workers only.
//! * [`IdbStorage`] (`indexeddb`): a database per store, objects cut into 64 KiB chunks, one
//!   transaction per commit. Works in any context (window or worker).
//!
//! [`AnyStorage`] is one of them, chosen at run time by [`open_backend`]. [`acquire_store_lock`]
//! takes the store's Web Lock (one writer across tabs), and [`JsClock`] feeds the engine
//! `Date.now()`.
//!
//! The browser backends exist only on `wasm32`; natively only memory is available.

use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;

use strata_engine::clock::Clock;
pub use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::{Commit, ReadRequest, Storage, StorageError};

#[cfg(target_arch = "wasm32")]
pub mod idb;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
pub mod lock;
#[cfg(target_arch = "wasm32")]
pub mod opfs;

#[cfg(target_arch = "wasm32")]
pub use idb::IdbStorage;
#[cfg(target_arch = "wasm32")]
pub use lock::{acquire_store_lock, LockGuard};
#[cfg(target_arch = "wasm32")]
pub use opfs::OpfsStorage;

/// Which backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum BackendKind {
    /// OPFS where available (a dedicated worker with sync access handles), else IndexedDB,
    /// else memory.
    #[default]
    Auto,
    /// In memory, for the life of the worker.
    Memory,
    /// The origin private file system.
    Opfs,
    /// IndexedDB.
    IndexedDb,
}

impl BackendKind {
    /// Parses `"auto"`, `"memory"`, `"opfs"`, `"indexeddb"` (also `"idb"`).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "auto" | "" => Some(BackendKind::Auto),
            "memory" => Some(BackendKind::Memory),
            "opfs" => Some(BackendKind::Opfs),
            "indexeddb" | "idb" => Some(BackendKind::IndexedDb),
            _ => None,
        }
    }

    /// The name [`BackendKind::parse`] reads (and [`Storage::kind`] reports).
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Memory => "memory",
            BackendKind::Opfs => "opfs",
            BackendKind::IndexedDb => "indexeddb",
        }
    }
}

impl std::fmt::Display for BackendKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Any of the backends, implementing [`Storage`] by delegation.
#[derive(Debug)]
pub enum AnyStorage {
    /// In memory.
    Memory(MemoryStorage),
    /// OPFS.
    #[cfg(target_arch = "wasm32")]
    Opfs(OpfsStorage),
    /// IndexedDB.
    #[cfg(target_arch = "wasm32")]
    IndexedDb(IdbStorage),
}

impl AnyStorage {
    /// Which backend this is.
    pub fn backend(&self) -> BackendKind {
        match self {
            AnyStorage::Memory(_) => BackendKind::Memory,
            #[cfg(target_arch = "wasm32")]
            AnyStorage::Opfs(_) => BackendKind::Opfs,
            #[cfg(target_arch = "wasm32")]
            AnyStorage::IndexedDb(_) => BackendKind::IndexedDb,
        }
    }

    /// Releases what the backend holds (OPFS handles, the IndexedDB connection) without waiting
    /// for the drop. OPFS stays usable (handles reopen on demand); IndexedDB does not.
    pub fn close(&self) {
        match self {
            AnyStorage::Memory(_) => {}
            #[cfg(target_arch = "wasm32")]
            AnyStorage::Opfs(s) => s.close(),
            #[cfg(target_arch = "wasm32")]
            AnyStorage::IndexedDb(s) => s.close(),
        }
    }
}

macro_rules! delegate {
    ($self:expr, $s:ident => $e:expr) => {
        match $self {
            AnyStorage::Memory($s) => $e,
            #[cfg(target_arch = "wasm32")]
            AnyStorage::Opfs($s) => $e,
            #[cfg(target_arch = "wasm32")]
            AnyStorage::IndexedDb($s) => $e,
        }
    };
}

impl Storage for AnyStorage {
    fn kind(&self) -> &'static str {
        delegate!(self, s => s.kind())
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        delegate!(self, s => s.list().await)
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        delegate!(self, s => s.len(object).await)
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        self.yield_if_due().await;
        delegate!(self, s => s.read_at(object, offset, buf).await)
    }

    async fn read_many(&self, requests: &mut [ReadRequest<'_>]) -> Result<(), StorageError> {
        self.yield_if_due().await;
        delegate!(self, s => s.read_many(requests).await)
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        self.yield_if_due().await;
        delegate!(self, s => s.commit(commit).await)
    }
}

impl AnyStorage {
    /// Memory and OPFS (sync access handles) complete every call without waiting, so a long
    /// operation would hold the worker's event loop to its end; they let it turn now and then
    /// (see `js::yield_if_due`). IndexedDB waits on the browser at every call already.
    async fn yield_if_due(&self) {
        #[cfg(target_arch = "wasm32")]
        if !matches!(self, AnyStorage::IndexedDb(_)) {
            js::yield_if_due().await;
        }
    }
}

thread_local! {
    /// Named memory stores, alive until the worker ends or [`destroy_backend`].
    static MEMORY_STORES: RefCell<HashMap<String, MemoryStorage>> = RefCell::default();
}

fn memory_store(name: &str) -> MemoryStorage {
    MEMORY_STORES.with(|stores| {
        stores
            .borrow_mut()
            .entry(name.to_string())
            .or_default()
            .clone()
    })
}

/// The objects of memory store `name`, taken out of this module's named stores, or `None` if it
/// has none: how the worker moves a closed memory store to the package's other module
/// ([`put_memory_store`] there).
pub fn take_memory_store(name: &str) -> Option<Vec<(String, Vec<u8>)>> {
    let storage = MEMORY_STORES.with(|stores| stores.borrow_mut().remove(name))?;
    Some(storage.with_objects(|objects| std::mem::take(objects).into_iter().collect()))
}

/// Makes memory store `name` of `objects` (what [`take_memory_store`] gave in the other module),
/// in place of any this module held under that name.
pub fn put_memory_store(name: &str, objects: Vec<(String, Vec<u8>)>) {
    let storage = MemoryStorage::new();
    storage.with_objects(|map| *map = objects.into_iter().collect());
    MEMORY_STORES.with(|stores| stores.borrow_mut().insert(name.to_string(), storage));
}

/// True where OPFS sync access handles exist (a dedicated worker of a browser with them).
pub fn opfs_available() -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        js::opfs_sync_available()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        false
    }
}

/// True where IndexedDB exists.
pub fn indexed_db_available() -> bool {
    #[cfg(target_arch = "wasm32")]
    {
        js::indexed_db().is_some()
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        false
    }
}

/// Opens the backend `kind` for store `name` (creating its directory or database if needed) and
/// says which backend it is. [`BackendKind::Auto`] picks OPFS where available, else IndexedDB,
/// else memory; an explicit kind that is unavailable fails with a clear
/// [`StorageError::Io`]. Nothing here takes the store's Web Lock: see [`acquire_store_lock`].
pub async fn open_backend(
    kind: BackendKind,
    name: &str,
) -> Result<(AnyStorage, BackendKind), StorageError> {
    open_backend_mode(kind, name, false).await
}

/// [`open_backend`], or with `read_only` a view that changes nothing and holds nothing another
/// tab's writer needs: OPFS reads through `getFile()` instead of sync access handles, IndexedDB
/// opens a second connection. Memory stores have no read-only mode (they live in one worker):
/// `read_only` hands back the shared, writable storage, so the bindings refuse it first.
pub async fn open_backend_mode(
    kind: BackendKind,
    name: &str,
    read_only: bool,
) -> Result<(AnyStorage, BackendKind), StorageError> {
    match kind {
        BackendKind::Memory => Ok((AnyStorage::Memory(memory_store(name)), BackendKind::Memory)),
        #[cfg(target_arch = "wasm32")]
        BackendKind::Opfs => {
            let storage = if read_only {
                OpfsStorage::open_read_only(name).await?
            } else {
                OpfsStorage::open(name).await?
            };
            Ok((AnyStorage::Opfs(storage), BackendKind::Opfs))
        }
        #[cfg(target_arch = "wasm32")]
        BackendKind::IndexedDb => {
            let storage = if read_only {
                IdbStorage::open_read_only(name).await?
            } else {
                IdbStorage::open(name).await?
            };
            Ok((AnyStorage::IndexedDb(storage), BackendKind::IndexedDb))
        }
        #[cfg(not(target_arch = "wasm32"))]
        BackendKind::Opfs | BackendKind::IndexedDb => Err(StorageError::Io {
            object: name.to_string(),
            message: format!("the {kind} backend exists only in the browser"),
        }),
        BackendKind::Auto => {
            let chosen = if opfs_available() {
                BackendKind::Opfs
            } else if indexed_db_available() {
                BackendKind::IndexedDb
            } else {
                BackendKind::Memory
            };
            Box::pin(open_backend_mode(chosen, name, read_only)).await
        }
    }
}

/// Deletes everything store `name` holds in backend `kind` (`Auto`: in every backend).
/// A missing store is not an error. Close the store first: open OPFS files make this fail with
/// [`StorageError::Locked`], and an open IndexedDB connection of another kind may delay it.
pub async fn destroy_backend(kind: BackendKind, name: &str) -> Result<(), StorageError> {
    if matches!(kind, BackendKind::Memory | BackendKind::Auto) {
        MEMORY_STORES.with(|stores| stores.borrow_mut().remove(name));
    }
    #[cfg(target_arch = "wasm32")]
    {
        if kind == BackendKind::Opfs || kind == BackendKind::Auto && opfs_available() {
            OpfsStorage::destroy(name).await?;
        }
        if kind == BackendKind::IndexedDb || kind == BackendKind::Auto && indexed_db_available() {
            IdbStorage::destroy(name).await?;
        }
    }
    #[cfg(not(target_arch = "wasm32"))]
    if matches!(kind, BackendKind::Opfs | BackendKind::IndexedDb) {
        return Err(StorageError::Io {
            object: name.to_string(),
            message: format!("the {kind} backend exists only in the browser"),
        });
    }
    Ok(())
}

/// The engine's clock in the browser: `Date.now()` (the system clock natively).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsClock;

impl Clock for JsClock {
    fn now_ms(&self) -> u64 {
        #[cfg(target_arch = "wasm32")]
        {
            js_sys::Date::now() as u64
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            strata_engine::clock::SystemClock.now_ms()
        }
    }
}
