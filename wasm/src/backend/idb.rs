//! The IndexedDB backend: one database per store (`strata-<name>`) with two object stores:
//!
//! * `chunks`: key `[object, chunkIndex]`, value a `Uint8Array` holding bytes
//!   `chunkIndex * CHUNK ..` of the object (at most [`CHUNK`] bytes; a missing chunk, or the
//!   part of a chunk past its value's end, reads as zeros). No chunk holds bytes at or past the
//!   object's length.
//! * `meta`: key `object`, value the object's length (a number). An object exists iff it has a
//!   `meta` record.
//!
//! Lengths are cached in memory (loaded at open), and a bounded FIFO cache keeps recently used
//! chunks. A commit first fetches the chunks it partially overwrites (in a readonly transaction),
//! then builds the new chunks in memory and writes them, the deletions and the lengths in ONE
//! readwrite transaction (`durability: "strict"` for a durable commit, `"relaxed"` otherwise).
//! Only that transaction's `complete` updates the in-memory caches, so a failed or aborted commit
//! (a `QuotaExceededError`, say) leaves the store exactly as it was, readable and consistent.
//! On this backend a commit is atomic.
//!
//! Read-only ([`IdbStorage::open_read_only`]): a second connection for a view from another tab;
//! the lengths are those of the moment it opened (a point-in-time view), it ignores the
//! truncations recovery asks for and refuses every other change.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
// Ordered maps are sorted vectors (no B-tree: each instantiation is some 8 KiB of WebAssembly).
use litemap::LiteMap;
use rustc_hash::FxHashMap as HashMap;
// Sets of chunk keys hash like the chunk maps (no caller needs them ordered).
use rustc_hash::FxHashSet as ChunkSet;
use strata_engine::storage::{Change, Commit, ReadRequest, Storage, StorageError};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbKeyRange, IdbOpenDbRequest, IdbTransaction, IdbTransactionMode};

use super::js::{
    await_request, await_transaction, indexed_db, io, map_error, request_promise,
    transaction_promise,
};
use super::opfs::store_dir_name;

/// Bytes per chunk record.
pub const CHUNK: u64 = 64 * 1024;
/// Chunks kept in the clean-chunk cache (4 MiB).
const CACHE_CHUNKS: usize = 64;
const CHUNKS: &str = "chunks";
const META: &str = "meta";
const DB_VERSION: u32 = 1;

type ChunkKey = (String, u64);

/// A bounded first-in-first-out cache of chunk contents (bytes as stored, zero-padded on use).
#[derive(Debug, Default)]
struct ChunkCache {
    map: HashMap<ChunkKey, Rc<Vec<u8>>>,
    order: VecDeque<ChunkKey>,
}

impl ChunkCache {
    fn get(&self, key: &ChunkKey) -> Option<Rc<Vec<u8>>> {
        self.map.get(key).cloned()
    }

    fn insert(&mut self, key: ChunkKey, value: Rc<Vec<u8>>) {
        if self.map.insert(key.clone(), value).is_none() {
            self.order.push_back(key);
        }
        while self.map.len() > CACHE_CHUNKS {
            match self.order.pop_front() {
                Some(old) => {
                    self.map.remove(&old);
                }
                None => break,
            }
        }
        if self.order.len() > 4 * CACHE_CHUNKS {
            let map = &self.map;
            let mut seen = ChunkSet::default();
            self.order
                .retain(|k| map.contains_key(k) && seen.insert(k.clone()));
        }
    }

    /// Forgets the chunks of `object` from index `from` on.
    fn forget_from(&mut self, object: &str, from: u64) {
        self.map.retain(|(o, k), _| o != object || *k < from);
    }
}

/// Objects stored as 64 KiB chunks in an IndexedDB database.
pub struct IdbStorage {
    name: String,
    db: IdbDatabase,
    lengths: RefCell<LiteMap<String, u64>>,
    cache: RefCell<ChunkCache>,
    /// Test hook: abort the next commit's transaction after issuing its requests.
    abort_next_commit: Cell<bool>,
    /// A read-only view (see the module documentation).
    read_only: bool,
    _on_version_change: Closure<dyn FnMut(JsValue)>,
}

impl std::fmt::Debug for IdbStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdbStorage")
            .field("name", &self.name)
            .field("objects", &self.lengths.borrow().len())
            .finish()
    }
}

fn chunk_key(object: &str, index: u64) -> JsValue {
    Array::of2(&JsValue::from_str(object), &JsValue::from_f64(index as f64)).into()
}

/// `db.transaction(stores, mode, {durability})`, through `Reflect` because web-sys exposes the
/// options argument only under `web_sys_unstable_apis`.
fn transaction(
    db: &IdbDatabase,
    stores: &[&str],
    mode: IdbTransactionMode,
    durability: Option<&str>,
) -> Result<IdbTransaction, JsValue> {
    let names: Array = stores.iter().map(|s| JsValue::from_str(s)).collect();
    let mode = JsValue::from_str(match mode {
        IdbTransactionMode::Readwrite => "readwrite",
        _ => "readonly",
    });
    let options = Object::new();
    if let Some(durability) = durability {
        Reflect::set(&options, &"durability".into(), &durability.into())?;
    }
    let method: Function = Reflect::get(db, &"transaction".into())?.dyn_into()?;
    method.call3(db, &names, &mode, &options)?.dyn_into()
}

/// Copies the bytes of chunk `index` (as stored) that fall in `[offset, offset + buf.len())`.
fn copy_chunk_into(chunk: &[u8], index: u64, offset: u64, buf: &mut [u8]) {
    let chunk_start = index * CHUNK;
    let from = offset.max(chunk_start);
    let to = (offset + buf.len() as u64).min(chunk_start + chunk.len() as u64);
    if from >= to {
        return;
    }
    let src = &chunk[(from - chunk_start) as usize..(to - chunk_start) as usize];
    buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
}

/// One object's state while a commit is simulated.
struct Work {
    /// Length after the changes so far (`None`: missing).
    len: Option<u64>,
    /// The prefix of the object's committed bytes still valid (truncation and deletion cut it).
    base_valid: u64,
    /// Delete every stored chunk from this index on before writing.
    purge_from: Option<u64>,
    /// Chunks rewritten by this commit, each CHUNK bytes long.
    chunks: LiteMap<u64, Vec<u8>>,
}

/// The committed contents of the chunks a commit rewrites in part (see `IdbStorage::fetch`).
type Base = HashMap<ChunkKey, Rc<Vec<u8>>>;

impl Work {
    /// The state of `object` before the commit: its committed length, nothing rewritten yet.
    fn new(len: Option<u64>) -> Self {
        Work {
            len,
            base_valid: len.unwrap_or(0),
            purge_from: None,
            chunks: LiteMap::new(),
        }
    }

    /// Chunk `index` of `object` as rewritten so far: on first use, its committed bytes that
    /// are still valid, zeros after them.
    fn chunk_mut(&mut self, object: &str, index: u64, base: &Base) -> &mut Vec<u8> {
        let base_valid = self.base_valid;
        self.chunks.entry(index).or_insert_with(|| {
            let mut chunk = vec![0; CHUNK as usize];
            let start = index * CHUNK;
            if start < base_valid {
                if let Some(old) = base.get(&(object.to_string(), index)) {
                    let n = (old.len() as u64).min(base_valid - start) as usize;
                    chunk[..n].copy_from_slice(&old[..n]);
                }
            }
            chunk
        })
    }

    /// Applies one change of `object` to the chunks in memory.
    fn apply(&mut self, object: &str, change: &Change, base: &Base) {
        match change {
            Change::Write { offset, data, .. } => {
                let end = offset + data.len() as u64;
                self.len = Some(self.len.unwrap_or(0).max(end));
                if data.is_empty() {
                    return;
                }
                for index in offset / CHUNK..=(end - 1) / CHUNK {
                    let chunk = self.chunk_mut(object, index, base);
                    let start = index * CHUNK;
                    let from = (*offset).max(start);
                    let to = end.min(start + CHUNK);
                    chunk[(from - start) as usize..(to - start) as usize]
                        .copy_from_slice(&data[(from - offset) as usize..(to - offset) as usize]);
                }
            }
            Change::Truncate { len, .. } => {
                if *len < self.len.unwrap_or(0) {
                    let keep = len.div_ceil(CHUNK);
                    self.chunks.retain(|index, _| *index < keep);
                    if len % CHUNK != 0 {
                        self.chunk_mut(object, len / CHUNK, base)[(len % CHUNK) as usize..].fill(0);
                    }
                    self.base_valid = self.base_valid.min(*len);
                    self.purge_from = Some(self.purge_from.map_or(keep, |p| p.min(keep)));
                }
                self.len = Some(*len);
            }
            Change::Delete { .. } => {
                self.len = None;
                self.base_valid = 0;
                self.chunks.clear();
                self.purge_from = Some(0);
            }
        }
    }
}

impl IdbStorage {
    /// Opens (creating it if needed) the database `strata-<store_name>` and loads the object
    /// lengths.
    pub async fn open(store_name: &str) -> Result<Self, StorageError> {
        Self::open_mode(store_name, false).await
    }

    /// Opens the database `strata-<store_name>` as a read-only, point-in-time view.
    pub async fn open_read_only(store_name: &str) -> Result<Self, StorageError> {
        Self::open_mode(store_name, true).await
    }

    async fn open_mode(store_name: &str, read_only: bool) -> Result<Self, StorageError> {
        let db_name = store_dir_name(store_name);
        let factory = indexed_db().ok_or_else(|| {
            io(
                &db_name,
                "IndexedDB is not available here (some private-browsing modes disable it)",
            )
        })?;
        let request: IdbOpenDbRequest = factory
            .open_with_u32(&db_name, DB_VERSION)
            .map_err(|e| map_error(&db_name, &e))?;
        let on_upgrade = Closure::<dyn FnMut(JsValue) -> Result<(), JsValue>>::new(
            |event: JsValue| -> Result<(), JsValue> {
                let request: IdbOpenDbRequest =
                    Reflect::get(&event, &"target".into())?.dyn_into()?;
                let db: IdbDatabase = request.result()?.dyn_into()?;
                let existing = db.object_store_names();
                for store in [CHUNKS, META] {
                    if !existing.contains(store) {
                        db.create_object_store(store)?;
                    }
                }
                Ok(())
            },
        );
        request.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
        let promise = request_promise(&request);
        let opened = await_request(&request, promise, &db_name).await;
        request.set_onupgradeneeded(None);
        drop(on_upgrade);
        let db: IdbDatabase = opened?
            .dyn_into()
            .map_err(|_| io(&db_name, "indexedDB.open gave no database"))?;

        // Let a deletion or upgrade from elsewhere proceed instead of blocking forever; this
        // handle then fails with I/O errors.
        let db_for_close = db.clone();
        let on_version_change = Closure::<dyn FnMut(JsValue)>::new(move |_| db_for_close.close());
        db.set_onversionchange(Some(on_version_change.as_ref().unchecked_ref()));

        let storage = IdbStorage {
            name: store_name.to_string(),
            db,
            lengths: RefCell::default(),
            cache: RefCell::default(),
            abort_next_commit: Cell::new(false),
            read_only,
            _on_version_change: on_version_change,
        };
        let lengths = storage.load_lengths().await?;
        *storage.lengths.borrow_mut() = lengths;
        Ok(storage)
    }

    /// The store name this storage was opened with.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Closes the database connection (it closes once running transactions finish).
    pub fn close(&self) {
        self.db.close();
    }

    /// Deletes a store's database. A missing store is not an error. Waits for other connections
    /// to close (this backend's connections close themselves when asked).
    pub async fn destroy(store_name: &str) -> Result<(), StorageError> {
        let db_name = store_dir_name(store_name);
        let factory =
            indexed_db().ok_or_else(|| io(&db_name, "IndexedDB is not available here"))?;
        let request = factory
            .delete_database(&db_name)
            .map_err(|e| map_error(&db_name, &e))?;
        let promise = request_promise(&request);
        await_request(&request, promise, &db_name).await.map(drop)
    }

    /// Test hook: the next commit's transaction is aborted after its requests are issued, as a
    /// `QuotaExceededError` would abort it.
    #[doc(hidden)]
    pub fn abort_next_commit(&self) {
        self.abort_next_commit.set(true);
    }

    async fn load_lengths(&self) -> Result<LiteMap<String, u64>, StorageError> {
        let tx = transaction(&self.db, &[META], IdbTransactionMode::Readonly, None)
            .map_err(|e| map_error(&self.name, &e))?;
        let store = tx.object_store(META).map_err(|e| map_error(META, &e))?;
        let keys_request = store.get_all_keys().map_err(|e| map_error(META, &e))?;
        let keys_promise = request_promise(&keys_request);
        let values_request = store.get_all().map_err(|e| map_error(META, &e))?;
        let values_promise = request_promise(&values_request);
        let keys: Array = await_request(&keys_request, keys_promise, META)
            .await?
            .dyn_into()
            .map_err(|_| io(META, "getAllKeys gave no array"))?;
        let values: Array = await_request(&values_request, values_promise, META)
            .await?
            .dyn_into()
            .map_err(|_| io(META, "getAll gave no array"))?;
        let mut lengths = LiteMap::new();
        for (key, value) in keys.iter().zip(values.iter()) {
            let (Some(object), Some(len)) = (key.as_string(), value.as_f64()) else {
                return Err(io(META, format!("bad length record {key:?} = {value:?}")));
            };
            lengths.insert(object, len as u64);
        }
        Ok(lengths)
    }

    /// The stored contents of `keys` (from the cache, or all missing ones in one readonly
    /// transaction). An absent record is an empty vector (zeros).
    async fn fetch(
        &self,
        keys: &ChunkSet<ChunkKey>,
    ) -> Result<HashMap<ChunkKey, Rc<Vec<u8>>>, StorageError> {
        let mut found = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
        let mut missing = Vec::new();
        {
            let cache = self.cache.borrow();
            for key in keys {
                match cache.get(key) {
                    Some(chunk) => {
                        found.insert(key.clone(), chunk);
                    }
                    None => missing.push(key.clone()),
                }
            }
        }
        if missing.is_empty() {
            return Ok(found);
        }
        let tx = transaction(&self.db, &[CHUNKS], IdbTransactionMode::Readonly, None)
            .map_err(|e| map_error(&self.name, &e))?;
        let store = tx.object_store(CHUNKS).map_err(|e| map_error(CHUNKS, &e))?;
        // Issue every get first, then wait for them: the transaction stays active while it has
        // pending requests, and only IndexedDB futures are awaited.
        let mut pending = Vec::with_capacity(missing.len());
        for key in &missing {
            let request = store
                .get(&chunk_key(&key.0, key.1))
                .map_err(|e| map_error(&key.0, &e))?;
            let promise = request_promise(&request);
            pending.push((request, promise));
        }
        for (key, (request, promise)) in missing.into_iter().zip(pending) {
            let value = await_request(&request, promise, &key.0).await?;
            let bytes = if value.is_undefined() || value.is_null() {
                Vec::new()
            } else {
                value
                    .dyn_into::<Uint8Array>()
                    .map_err(|v| io(&key.0, format!("chunk {} is not bytes: {v:?}", key.1)))?
                    .to_vec()
            };
            let bytes = Rc::new(bytes);
            self.cache.borrow_mut().insert(key.clone(), bytes.clone());
            found.insert(key, bytes);
        }
        Ok(found)
    }

    /// The chunks a read of `len` bytes at `offset` of `object` needs, and how many bytes exist.
    fn plan_read(&self, object: &str, offset: u64, len: usize, keys: &mut ChunkSet<ChunkKey>) {
        let Some(object_len) = self.lengths.borrow().get(object).copied() else {
            return;
        };
        let end = offset.saturating_add(len as u64).min(object_len);
        if offset >= end {
            return;
        }
        for index in offset / CHUNK..=(end - 1) / CHUNK {
            keys.insert((object.to_string(), index));
        }
    }

    /// Fills `buf` from fetched chunks; returns the bytes that existed.
    fn fill(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
        chunks: &HashMap<ChunkKey, Rc<Vec<u8>>>,
    ) -> usize {
        buf.fill(0);
        let Some(object_len) = self.lengths.borrow().get(object).copied() else {
            return 0;
        };
        let end = offset.saturating_add(buf.len() as u64).min(object_len);
        if offset >= end {
            return 0;
        }
        for index in offset / CHUNK..=(end - 1) / CHUNK {
            if let Some(chunk) = chunks.get(&(object.to_string(), index)) {
                copy_chunk_into(chunk, index, offset, &mut buf[..(end - offset) as usize]);
            }
        }
        (end - offset) as usize
    }

    /// Chunks whose old contents the commit needs: those partly overwritten or cut by a
    /// truncation, that hold committed bytes.
    fn chunks_to_fetch(&self, commit: &Commit) -> ChunkSet<ChunkKey> {
        let lengths = self.lengths.borrow();
        let old_len = |object: &str| lengths.get(object).copied().unwrap_or(0);
        let mut covered = ChunkSet::default();
        for change in &commit.changes {
            if let Change::Write {
                object,
                offset,
                data,
            } = change
            {
                let end = offset + data.len() as u64;
                let first = offset.div_ceil(CHUNK);
                let mut index = first;
                while (index + 1) * CHUNK <= end {
                    covered.insert((object.clone(), index));
                    index += 1;
                }
            }
        }
        let mut needed = ChunkSet::default();
        for change in &commit.changes {
            match change {
                Change::Write {
                    object,
                    offset,
                    data,
                } if !data.is_empty() => {
                    // Every touched chunk that holds committed bytes (an append into the last
                    // chunk keeps what is before it).
                    let end = offset + data.len() as u64;
                    let last = ((end - 1) / CHUNK).min(old_len(object).div_ceil(CHUNK));
                    for index in offset / CHUNK..=last {
                        let key = (object.clone(), index);
                        if index * CHUNK < old_len(object) && !covered.contains(&key) {
                            needed.insert(key);
                        }
                    }
                }
                Change::Truncate { object, len } if len % CHUNK != 0 && *len < old_len(object) => {
                    let key = (object.clone(), len / CHUNK);
                    if !covered.contains(&key) {
                        needed.insert(key);
                    }
                }
                _ => {}
            }
        }
        needed
    }
}

impl Drop for IdbStorage {
    fn drop(&mut self) {
        self.db.set_onversionchange(None);
        self.db.close();
    }
}

impl Storage for IdbStorage {
    fn kind(&self) -> &'static str {
        "indexeddb"
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.lengths.borrow().keys().cloned().collect())
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        Ok(self.lengths.borrow().get(object).copied())
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        let mut keys = ChunkSet::default();
        self.plan_read(object, offset, buf.len(), &mut keys);
        let chunks = self.fetch(&keys).await?;
        Ok(self.fill(object, offset, buf, &chunks))
    }

    async fn read_many(&self, requests: &mut [ReadRequest<'_>]) -> Result<(), StorageError> {
        let mut keys = ChunkSet::default();
        for request in requests.iter() {
            self.plan_read(request.object, request.offset, request.buf.len(), &mut keys);
        }
        let chunks = self.fetch(&keys).await?;
        for request in requests.iter_mut() {
            request.filled = self.fill(request.object, request.offset, request.buf, &chunks);
        }
        Ok(())
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        if self.read_only {
            return super::opfs::read_only_commit(&self.name, &commit);
        }
        if commit.changes.is_empty() {
            return Ok(());
        }
        // 1. Old contents of partly rewritten chunks, before the write transaction opens.
        let base = self.fetch(&self.chunks_to_fetch(&commit)).await?;
        // 2. The new chunks, built in memory.
        let mut work: LiteMap<String, Work> = LiteMap::new();
        for change in &commit.changes {
            let object = change.object();
            work.entry(object.to_string())
                .or_insert_with(|| Work::new(self.lengths.borrow().get(object).copied()))
                .apply(object, change, &base);
        }
        // 3. One readwrite transaction.
        let puts = self.write_transaction(&work, commit.durable).await?;
        // 4. Committed: only now do the caches change.
        self.committed(&work, puts);
        Ok(())
    }
}

impl IdbStorage {
    /// Writes `work` in one readwrite transaction (`strict` durability for a durable commit);
    /// returns the chunks it stored, for the cache.
    async fn write_transaction(
        &self,
        work: &LiteMap<String, Work>,
        durable: bool,
    ) -> Result<Vec<(ChunkKey, Rc<Vec<u8>>)>, StorageError> {
        let durability = if durable { "strict" } else { "relaxed" };
        let tx = transaction(
            &self.db,
            &[CHUNKS, META],
            IdbTransactionMode::Readwrite,
            Some(durability),
        )
        .map_err(|e| map_error(&self.name, &e))?;
        let done = transaction_promise(&tx);
        let mut puts: Vec<(ChunkKey, Rc<Vec<u8>>)> = Vec::new();
        if let Err(e) = issue_writes(&tx, work, &mut puts) {
            let _ = tx.abort();
            let _ = await_transaction(&tx, done, &self.name).await;
            return Err(map_error(&self.name, &e));
        }
        if self.abort_next_commit.replace(false) {
            let _ = tx.abort();
        }
        await_transaction(&tx, done, &self.name).await?;
        Ok(puts)
    }

    /// After a committed transaction: the lengths and the chunk cache take its changes.
    fn committed(&self, work: &LiteMap<String, Work>, puts: Vec<(ChunkKey, Rc<Vec<u8>>)>) {
        let mut lengths = self.lengths.borrow_mut();
        let mut cache = self.cache.borrow_mut();
        for (object, state) in work {
            if let Some(from) = state.purge_from {
                cache.forget_from(object, from);
            }
            match state.len {
                None => {
                    lengths.remove(object);
                }
                Some(len) => {
                    lengths.insert(object.clone(), len);
                }
            }
        }
        for (key, chunk) in puts {
            cache.insert(key, chunk);
        }
    }
}

/// Issues the requests of `work` in `tx`: purges, chunk puts (recorded in `puts`) and lengths.
fn issue_writes(
    tx: &IdbTransaction,
    work: &LiteMap<String, Work>,
    puts: &mut Vec<(ChunkKey, Rc<Vec<u8>>)>,
) -> Result<(), JsValue> {
    let chunks = tx.object_store(CHUNKS)?;
    let meta = tx.object_store(META)?;
    for (object, state) in work {
        if let Some(from) = state.purge_from {
            let range = IdbKeyRange::bound(
                &chunk_key(object, from),
                &Array::of2(&object.into(), &f64::INFINITY.into()),
            )?;
            chunks.delete(&range)?;
        }
        let Some(len) = state.len else {
            meta.delete(&object.into())?;
            continue;
        };
        for (index, chunk) in &state.chunks {
            let start = index * CHUNK;
            if start >= len {
                continue;
            }
            let stored = &chunk[..(len - start).min(CHUNK) as usize];
            chunks.put_with_key(&Uint8Array::from(stored), &chunk_key(object, *index))?;
            puts.push(((object.clone(), *index), Rc::new(stored.to_vec())));
        }
        meta.put_with_key(&(len as f64).into(), &object.into())?;
    }
    Ok(())
}
