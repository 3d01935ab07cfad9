//! The OPFS backend: one directory per store (`strata-<name>`) in the origin private file
//! system, one file per object, read and written through `FileSystemSyncAccessHandle`s.
//!
//! Sync access handles exist only in dedicated workers. Getting one is async; reads, writes,
//! truncations and flushes are then synchronous and copy straight from and into wasm memory.
//! A file can have one handle at a time, across all tabs and workers of the origin: a handle
//! held elsewhere surfaces as [`StorageError::Locked`]. Handles are opened lazily, cached, and
//! released by [`OpfsStorage::close`] or on drop.
//!
//! Durability: a durable commit `flush()`es every file written or truncated since the previous
//! durable commit. OPFS has no directory flush; the browser persists entries itself.
//!
//! Quota: Chromium answers a write past the origin's quota not with the `QuotaExceededError` the
//! specification asks for but with a short write (part of the bytes, and a byte count that is
//! not a number of bytes at all: 2^32 - 8 in Chromium 156). Every write's count is therefore
//! checked, and a write that did not take all its bytes is [`StorageError::QuotaExceeded`].
//!
//! Read-only ([`OpfsStorage::open_read_only`]): a view for a second tab while the writer holds
//! the sync access handles. It reads through `getFile()` snapshots, which need no handle, and
//! takes no lock, so the writer is never disturbed. It ignores the truncations recovery asks
//! for (the writer owns the files' tails) and refuses every other change.

use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;

use js_sys::{Promise, Reflect};
use strata_engine::storage::{Change, Commit, Storage, StorageError};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemReadWriteOptions, FileSystemRemoveOptions,
    FileSystemSyncAccessHandle,
};

use super::js::{io, map_error, opfs_sync_available, storage_manager};

/// The directory (OPFS) or database (IndexedDB) name of a store.
pub(crate) fn store_dir_name(store_name: &str) -> String {
    format!("strata-{store_name}")
}

const NEEDS_WORKER: &str = "OPFS sync access handles (FileSystemSyncAccessHandle) are only \
    available in a dedicated worker of a browser that supports them; run the store in a \
    dedicated worker or use the IndexedDB backend";

/// Objects stored as files of an OPFS directory.
#[derive(Debug)]
pub struct OpfsStorage {
    name: String,
    dir: FileSystemDirectoryHandle,
    /// Open handles.
    handles: RefCell<HashMap<String, FileSystemSyncAccessHandle>>,
    /// Handles being opened: concurrent callers wait for the same promise rather than asking
    /// for a second handle (which the browser would refuse).
    opening: RefCell<HashMap<String, Promise>>,
    /// Files written or truncated since the last durable commit, each once. A short list (the
    /// files a few commits touch), so a vector: a `BTreeSet<String>` cost the WebAssembly
    /// module its own copy of the B-tree code.
    unflushed: RefCell<Vec<String>>,
    /// Reads through `getFile()` and changes nothing (see the module documentation).
    read_only: bool,
}

async fn opfs_root(object: &str) -> Result<FileSystemDirectoryHandle, StorageError> {
    if !opfs_sync_available() {
        return Err(io(object, NEEDS_WORKER));
    }
    let manager = storage_manager().ok_or_else(|| io(object, NEEDS_WORKER))?;
    let root = JsFuture::from(manager.get_directory())
        .await
        .map_err(|e| map_error(object, &e))?;
    root.dyn_into()
        .map_err(|_| io(object, "navigator.storage.getDirectory() gave no directory"))
}

fn validate(object: &str) -> Result<(), StorageError> {
    if object.is_empty() || object == "." || object == ".." || object.contains(['/', '\\', '\0']) {
        return Err(StorageError::InvalidName(object.to_string()));
    }
    Ok(())
}

impl OpfsStorage {
    /// Remembers that `object` needs a flush at the next durable commit.
    fn mark_unflushed(&self, object: &str) {
        let mut unflushed = self.unflushed.borrow_mut();
        if !unflushed.iter().any(|o| o == object) {
            unflushed.push(object.to_string());
        }
    }

    /// Opens (creating it if needed) the store directory `strata-<store_name>`. Fails with a
    /// clear [`StorageError::Io`] outside a dedicated worker.
    pub async fn open(store_name: &str) -> Result<Self, StorageError> {
        Self::open_mode(store_name, false).await
    }

    /// Opens the store directory `strata-<store_name>` as a read-only view that holds no sync
    /// access handle (see the module documentation).
    pub async fn open_read_only(store_name: &str) -> Result<Self, StorageError> {
        Self::open_mode(store_name, true).await
    }

    async fn open_mode(store_name: &str, read_only: bool) -> Result<Self, StorageError> {
        let dir_name = store_dir_name(store_name);
        let root = opfs_root(&dir_name).await?;
        let options = FileSystemGetDirectoryOptions::new();
        options.set_create(true);
        let dir = JsFuture::from(root.get_directory_handle_with_options(&dir_name, &options))
            .await
            .map_err(|e| map_error(&dir_name, &e))?
            .dyn_into()
            .map_err(|_| io(&dir_name, "getDirectoryHandle gave no directory"))?;
        Ok(OpfsStorage {
            name: store_name.to_string(),
            dir,
            handles: RefCell::default(),
            opening: RefCell::default(),
            unflushed: RefCell::default(),
            read_only,
        })
    }

    /// True for a read-only view.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// A fresh `File` snapshot of `object` (read-only views), or `None` if it does not exist.
    async fn snapshot_file(&self, object: &str) -> Result<Option<web_sys::File>, StorageError> {
        validate(object)?;
        let file = match JsFuture::from(self.dir.get_file_handle(object)).await {
            Ok(file) => file,
            Err(e) if super::js::error_name(&e) == "NotFoundError" => return Ok(None),
            Err(e) => return Err(map_error(object, &e)),
        };
        let file: FileSystemFileHandle = file
            .dyn_into()
            .map_err(|_| io(object, "getFileHandle gave no file"))?;
        match JsFuture::from(file.get_file()).await {
            Ok(snapshot) => snapshot
                .dyn_into()
                .map(Some)
                .map_err(|_| io(object, "getFile gave no file")),
            Err(e) if super::js::error_name(&e) == "NotFoundError" => Ok(None),
            Err(e) => Err(map_error(object, &e)),
        }
    }

    /// `read_at` of a read-only view: bytes from a `getFile()` snapshot.
    async fn read_snapshot(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        let Some(file) = self.snapshot_file(object).await? else {
            return Ok(0);
        };
        let size = file.size() as u64;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let wanted = (size - offset).min(buf.len() as u64) as usize;
        let slice = file
            .slice_with_f64_and_f64(offset as f64, (offset + wanted as u64) as f64)
            .map_err(|e| map_error(object, &e))?;
        let bytes = JsFuture::from(slice.array_buffer())
            .await
            .map_err(|e| map_error(object, &e))?;
        let bytes = js_sys::Uint8Array::new(&bytes);
        let got = (bytes.length() as usize).min(wanted);
        bytes.subarray(0, got as u32).copy_to(&mut buf[..got]);
        Ok(got)
    }

    /// The store name this storage was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Releases every sync access handle (another worker or tab can then open the files).
    /// The storage stays usable: handles are reopened on demand.
    pub fn close(&self) {
        for (_, handle) in self.handles.borrow_mut().drain() {
            handle.close();
        }
        self.opening.borrow_mut().clear();
    }

    /// Deletes a store's directory and everything in it. A missing store is not an error; files
    /// still open (in this or another worker) fail with [`StorageError::Locked`].
    pub async fn destroy(store_name: &str) -> Result<(), StorageError> {
        let dir_name = store_dir_name(store_name);
        let root = opfs_root(&dir_name).await?;
        let options = FileSystemRemoveOptions::new();
        options.set_recursive(true);
        match JsFuture::from(root.remove_entry_with_options(&dir_name, &options)).await {
            Ok(_) => Ok(()),
            Err(e) if super::js::error_name(&e) == "NotFoundError" => Ok(()),
            Err(e) => Err(map_error(&dir_name, &e)),
        }
    }

    /// The open handle of `object`; with `create`, the file is created if missing, otherwise a
    /// missing file gives `None`.
    async fn handle(
        &self,
        object: &str,
        create: bool,
    ) -> Result<Option<FileSystemSyncAccessHandle>, StorageError> {
        validate(object)?;
        // Two rounds: a creating caller that waited on someone else's non-creating open of a
        // missing file tries again with its own.
        for _ in 0..2 {
            if let Some(handle) = self.handles.borrow().get(object) {
                return Ok(Some(handle.clone()));
            }
            let pending = self.opening.borrow().get(object).cloned();
            let (promise, promise_creates) = match pending {
                Some(promise) => (promise, false),
                None => {
                    let promise = self.open_handle(object, create);
                    self.opening
                        .borrow_mut()
                        .insert(object.to_string(), promise.clone());
                    (promise, create)
                }
            };
            let outcome = JsFuture::from(promise.clone()).await;
            let registered = self
                .opening
                .borrow()
                .get(object)
                .is_some_and(|p| JsValue::from(p) == JsValue::from(&promise));
            if registered {
                self.opening.borrow_mut().remove(object);
            }
            match outcome {
                Ok(handle) => {
                    let handle: FileSystemSyncAccessHandle = handle
                        .dyn_into()
                        .map_err(|_| io(object, "createSyncAccessHandle gave no handle"))?;
                    self.handles
                        .borrow_mut()
                        .entry(object.to_string())
                        .or_insert_with(|| handle.clone());
                    return Ok(Some(handle));
                }
                Err(e) if super::js::error_name(&e) == "NotFoundError" => {
                    if !create {
                        return Ok(None);
                    }
                    if promise_creates {
                        return Err(map_error(object, &e));
                    }
                }
                Err(e) => return Err(map_error(object, &e)),
            }
        }
        Err(io(object, "the file could not be created"))
    }

    /// `getFileHandle(object, {create}).then(f => f.createSyncAccessHandle())`.
    fn open_handle(&self, object: &str, create: bool) -> Promise {
        let options = FileSystemGetFileOptions::new();
        options.set_create(create);
        let file = self.dir.get_file_handle_with_options(object, &options);
        let create_handle: JsValue =
            wasm_bindgen::closure::Closure::<dyn FnMut(JsValue) -> JsValue>::once_into_js(
                |file: JsValue| match file.dyn_into::<FileSystemFileHandle>() {
                    Ok(file) => JsValue::from(file.create_sync_access_handle()),
                    Err(_) => JsValue::from(Promise::reject(&JsValue::from_str(
                        "getFileHandle gave no file",
                    ))),
                },
            );
        // `Promise.then` through `Reflect`: js-sys's `then` takes a closure returning nothing,
        // and this one returns the next promise.
        Reflect::get(&file, &"then".into())
            .and_then(|then| {
                then.unchecked_into::<js_sys::Function>()
                    .call1(&file, &create_handle)
            })
            .map(|p| p.unchecked_into())
            .unwrap_or_else(|e| Promise::reject(&e))
    }

    async fn remove(&mut self, object: &str) -> Result<(), StorageError> {
        validate(object)?;
        // Wait for a handle being opened, so that it can be closed.
        let pending = self.opening.borrow().get(object).cloned();
        if let Some(promise) = pending {
            let _ = self.handle(object, false).await;
            drop(promise);
        }
        if let Some(handle) = self.handles.borrow_mut().remove(object) {
            handle.close();
        }
        self.unflushed.borrow_mut().retain(|o| o != object);
        match JsFuture::from(self.dir.remove_entry(object)).await {
            Ok(_) => Ok(()),
            Err(e) if super::js::error_name(&e) == "NotFoundError" => Ok(()),
            Err(e) => Err(map_error(object, &e)),
        }
    }
}

impl Drop for OpfsStorage {
    fn drop(&mut self) {
        self.close();
    }
}

/// What a read-only view does with a commit: the truncations recovery asks for are left to the
/// writer (nothing happens, as if the tail were already gone); anything else is refused.
pub(crate) fn read_only_commit(store: &str, commit: &Commit) -> Result<(), StorageError> {
    match commit
        .changes
        .iter()
        .find(|c| !matches!(c, Change::Truncate { .. }))
    {
        None => Ok(()),
        Some(change) => Err(io(
            change.object(),
            format!("store {store:?} is open read-only here; changes are refused"),
        )),
    }
}

fn at(offset: u64) -> FileSystemReadWriteOptions {
    let options = FileSystemReadWriteOptions::new();
    options.set_at(offset as f64);
    options
}

impl Storage for OpfsStorage {
    fn kind(&self) -> &'static str {
        "opfs"
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        let entries = self.dir.entries();
        let mut names = Vec::new();
        loop {
            let next = entries.next().map_err(|e| map_error(&self.name, &e))?;
            let next = JsFuture::from(next)
                .await
                .map_err(|e| map_error(&self.name, &e))?;
            let done = Reflect::get(&next, &JsValue::from_str("done"))
                .map(|d| d.is_truthy())
                .unwrap_or(true);
            if done {
                break;
            }
            // Each value is a `[name, handle]` pair.
            let pair = Reflect::get(&next, &JsValue::from_str("value"))
                .map_err(|e| map_error(&self.name, &e))?;
            let name = Reflect::get_u32(&pair, 0).ok().and_then(|n| n.as_string());
            let kind = Reflect::get_u32(&pair, 1)
                .and_then(|h| Reflect::get(&h, &JsValue::from_str("kind")))
                .ok()
                .and_then(|k| k.as_string());
            if let (Some(name), Some("file")) = (name, kind.as_deref()) {
                names.push(name);
            }
        }
        // In the directory's order: no caller needs another (`Storage::list` promises none), and
        // a sort of strings would be one more copy of the sort in the module.
        Ok(names)
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        if self.read_only {
            return Ok(self.snapshot_file(object).await?.map(|f| f.size() as u64));
        }
        match self.handle(object, false).await? {
            None => Ok(None),
            Some(handle) => {
                let size = handle.get_size().map_err(|e| map_error(object, &e))?;
                Ok(Some(size as u64))
            }
        }
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        buf.fill(0);
        if self.read_only {
            return self.read_snapshot(object, offset, buf).await;
        }
        let Some(handle) = self.handle(object, false).await? else {
            return Ok(0);
        };
        let size = handle.get_size().map_err(|e| map_error(object, &e))? as u64;
        if offset >= size || buf.is_empty() {
            return Ok(0);
        }
        let wanted = (size - offset).min(buf.len() as u64) as usize;
        let mut filled = 0;
        while filled < wanted {
            let n = handle
                .read_with_u8_array_and_options(
                    &mut buf[filled..wanted],
                    &at(offset + filled as u64),
                )
                .map_err(|e| map_error(object, &e))? as usize;
            if n == 0 {
                return Err(io(
                    object,
                    format!(
                        "short read: {filled} of {wanted} bytes at {offset} of a {size}-byte file"
                    ),
                ));
            }
            filled += n;
        }
        Ok(filled)
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        if self.read_only {
            return read_only_commit(&self.name, &commit);
        }
        for change in &commit.changes {
            match change {
                Change::Write {
                    object,
                    offset,
                    data,
                } => {
                    let handle = self
                        .handle(object, true)
                        .await?
                        .ok_or_else(|| io(object, "file vanished"))?;
                    self.mark_unflushed(object);
                    let mut written = 0;
                    while written < data.len() {
                        let n = handle
                            .write_with_u8_array_and_options(
                                &data[written..],
                                &at(offset + written as u64),
                            )
                            .map_err(|e| map_error(object, &e))?
                            as usize;
                        // A count of 0, or one larger than what was asked (Chromium's answer
                        // to a write past the quota), is a write that did not happen in full.
                        if n == 0 || n > data.len() - written {
                            return Err(StorageError::QuotaExceeded(format!(
                                "{object}: OPFS wrote {} of {} bytes at {offset} (out of quota?)",
                                written + n.min(data.len() - written),
                                data.len()
                            )));
                        }
                        written += n;
                    }
                }
                Change::Truncate { object, len } => {
                    let handle = self
                        .handle(object, true)
                        .await?
                        .ok_or_else(|| io(object, "file vanished"))?;
                    self.mark_unflushed(object);
                    handle
                        .truncate_with_f64(*len as f64)
                        .map_err(|e| map_error(object, &e))?;
                }
                Change::Delete { object } => self.remove(object).await?,
            }
        }
        if commit.durable {
            let unflushed = self.unflushed.borrow().clone();
            for object in unflushed {
                let handle = self.handles.borrow().get(&object).cloned();
                if let Some(handle) = handle {
                    handle.flush().map_err(|e| map_error(&object, &e))?;
                }
                self.unflushed.borrow_mut().retain(|o| *o != object);
            }
        }
        Ok(())
    }
}
