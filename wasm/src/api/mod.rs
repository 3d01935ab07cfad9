//! The exported classes: [`StrataStore`] and [`ImageImport`] (the cursor: `volume_api.rs`).
//!
//! Every method returns a promise (made in `promise.rs`, from the class's Rust `async fn` of
//! the same name), takes its turn with the store (see `exclusive.rs`) and converts engine
//! errors once, at the end, into a JS `Error` with a `code` (see `error.rs`). Data from
//! JavaScript arrives as an owned `Vec<u8>`: wasm-bindgen copies the `Uint8Array` into wasm memory
//! once and the engine works on that copy. Data going out is copied once into a fresh
//! `Uint8Array` that JavaScript owns (and may transfer to another thread).

use std::rc::Rc;

use js_sys::{Array, Function, Promise, Uint8Array};
use strata_engine::policy::Operation;
use strata_engine::storage::Storage;
use strata_engine::{
    BaselineImport, CreateOptions, Lent, Managed, SendOptions, Store, StreamReceiver,
};
use wasm_bindgen::prelude::*;

use crate::backend::{AnyStorage, BackendKind};
use crate::convert;
use crate::error::{callback_error, StrataError, CODE_CLOSED, CODE_INVALID_STATE, CODE_READ_ONLY};
use crate::exclusive::Exclusive;
use crate::place::{self, StoreLock};
use crate::promise::promise;
use crate::volume_api::{self, Binding, StrataCursor};

// `locate` and `blockMap`: a child module, so that it shares the session's turn-taking.
mod view;

type Result<T, E = StrataError> = std::result::Result<T, E>;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** Options of `StrataStore.open`. */
export interface OpenOptions {
  /** The store's name: one store per name and origin (and per backend). */
  name: string;
  /** Where the store lives. `"auto"` picks OPFS when available, else IndexedDB. */
  backend?: "auto" | "memory" | "opfs" | "indexeddb";
  /** Block size in bytes when creating (a power of two, 512..65536); default 4096. */
  blockSize?: number;
  /** Number of blocks when creating; needed only if the store does not exist yet. */
  blocks?: number;
  /**
   * A point-in-time view that takes no lock, beside a writer in another tab: reads work, every
   * change fails with code `READ_ONLY`; the store must exist. Opening writes nothing. Not on the
   * memory backend (`INVALID_ARGUMENT`).
   */
  readOnly?: boolean;
  /**
   * Whether the store acts on its policy by itself (default true): threshold rules right after
   * the operation that crossed them, built-in events (`open`, `close`, compactions). With
   * `false`, only `runPolicies`, `event` and the worker's `policyTickMs` timer carry policy
   * decisions out, and opening signals no `open` event.
   */
  automaticPolicies?: boolean;
}

/** Options of `StrataStore.beginImport`. */
export interface ImportOptions {
  name: string;
  backend?: "auto" | "memory" | "opfs" | "indexeddb";
  blockSize?: number;
  /** The image's size, checked as bytes arrive (optional). */
  expectedBytes?: number;
}

export type VolumeKind = "baseline" | "snapshot" | "head";

export interface VolumeInfo {
  id: number;
  kind: VolumeKind;
  label: string;
  parent: number | null;
  /** The branch whose head this volume is (the live head: the active branch), or "". */
  branch: string;
  createdMs: number;
  sealedMs: number | null;
  entryCount: number;
  blocksWritten: number;
  bytes: number;
  firstSeq: number;
  nextSeq: number;
}

/** One branch (a writable clone), as `branches()` lists it. */
export interface BranchInfo {
  name: string;
  /** The volume its head is now: the live head if it is active, else its parked head. */
  head: number;
  /** Writes, snapshots and rollbacks act on the active branch. */
  active: boolean;
}

/** What `info()` returns: the engine's facts about the store, with the session's name and mode. */
export interface StoreInfo {
  name: string;
  backend: "memory" | "opfs" | "indexeddb";
  readOnly: boolean;
  blockSize: number;
  blockCount: number;
  baseline: "zero" | "image";
  /** 64 bits, hexadecimal. */
  storeId: string;
  createdMs: number;
  head: number;
  nextSeq: number;
  partitions: number;
  logBytes: number;
  mappedBlocks: number;
  indexBytes: number;
  /** What recovery cut from torn tails when the store was opened. */
  recovery: RecoveryReport;
}

/** What recovery did when a store was opened. */
export interface RecoveryReport {
  /** Bytes cut from the metadata journal's torn tail. */
  journalBytesTruncated: number;
  /** Bytes cut from the head segment's torn tail. */
  headBytesTruncated: number;
  /**
   * Sealed partitions whose index and footer were rebuilt from their records (a crash lost the
   * tail a snapshot after a sync writes without a flush, or it was damaged).
   */
  sealedTailsRebuilt: number;
  /**
   * Bytes of the head segment that the commit point says were synced but that were cut: only a
   * mirror's secondary opens like this (its legs give those writes back); 0 for a store.
   */
  headBytesLost: number;
  /**
   * Snapshots redone from their segments: a snapshot with unsynced writes records its seal in
   * the segment, and a crash came before the journal recorded it.
   */
  sealsRedone: number;
}

/** Where a log cursor starts. */
export type CursorStart = "beginning" | { seq: number } | { volume: number };

export interface LogEntry {
  seq: number;
  volume: number;
  addr: number;
  blocks: number;
  timestampMs: number;
  /** A zero extent (trim, write-zeroes, or an all-zero write): the blocks read as zeros, and `data` is null. */
  zero: boolean;
  /** The blocks' bytes when asked for (`withData`), else null (always null for a zero extent). */
  data: Uint8Array | null;
}

export interface CompactReport {
  bytesBefore: number;
  bytesAfter: number;
  blocksKept: number;
  blocksDropped: number;
  removed: boolean;
}

export interface Extent {
  addr: number;
  blocks: number;
}

export interface SpaceInfo {
  volume: number;
  visible: boolean;
  totalBytes: number;
  liveBytes: number;
  exclusiveBytes: number;
  reclaimableBytes: number;
  metadataBytes: number;
}

export interface SendOptions {
  /** The volume the target already has: only later partitions are sent. Absent: a full copy. */
  base?: number;
  /** The newest snapshot to send; absent: the newest snapshot of the live chain. */
  upto?: number;
  /** Only entries at or after this sequence number. */
  sinceSeq?: number;
  /** Only the parts of entries in blocks `[start, end)`. */
  blocks?: [number, number];
}

export interface CopyReport {
  volumes: number;
  volumesSkipped: number;
  entries: number;
  dataBytes: number;
  streamBytes: number;
}

export interface SendResult extends CopyReport {
  /** The stream's chunks, in order (empty when an `onChunk` callback took them). */
  chunks: Uint8Array[];
}

/** A decision of a policy, as the engine serialises it (`decision` is its kind). */
export interface Decision {
  decision: "snapshot" | "copy" | "merge" | "delete" | "compact";
  reason: unknown;
  [field: string]: unknown;
}

/** One entry of the audit trail. */
export interface AuditEntry {
  at_ms: number;
  decision: Decision;
  outcome: unknown;
  /** What started the evaluation; absent in entries written before it was recorded. */
  trigger?: 'after_operation' | 'tick' | { event: string };
  /** For automatic evaluations: the operation they followed, e.g. `'write'`, `'snapshot'`. */
  after?: 'write' | 'sync' | 'snapshot' | 'compact' | 'merge' | 'delete' | 'rollback' | 'receive';
}

/** Called with bytes done and bytes in all; return `false` to cancel (code `CANCELLED`). */
export type ProgressCallback = (doneBytes: number, totalBytes: number) => boolean | void;
/** Receives consecutive chunks of an image or a stream; return `false` to cancel. */
export type ChunkCallback = (chunk: Uint8Array) => boolean | void;
/** Receives a policy copy to the tertiary target `target`, chunk by chunk. */
export type CopyCallback = (target: string, chunk: Uint8Array) => void;
"#;

/// What `info()` returns: the engine's `StoreInfo` and the session's name and mode.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct OpenStoreInfo<'a> {
    name: &'a str,
    read_only: bool,
    #[serde(flatten)]
    info: strata_engine::StoreInfo,
}

/// What a [`StrataStore`] holds while it is open.
pub(crate) struct Session {
    /// The store, under storage management; `None` once closed, and while `receiving` holds
    /// it.
    store: Option<Managed<Store<AnyStorage>>>,
    /// A copy stream being received (`receiveBegin` .. `receiveFinish`): it owns the store.
    /// With it, the executor's state while the store is lent out.
    receiving: Option<(StreamReceiver<AnyStorage>, Lent)>,
    /// The cross-tab lock; released when the session closes. Read-only views take none.
    lock: Option<StoreLock>,
}

impl Session {
    fn new(store: Managed<Store<AnyStorage>>, lock: Option<StoreLock>) -> Self {
        Session {
            store: Some(store),
            receiving: None,
            lock,
        }
    }

    fn unavailable(&self) -> StrataError {
        if self.receiving.is_some() {
            StrataError::new(
                CODE_INVALID_STATE,
                "a copy stream is being received: finish or abort it first",
            )
        } else {
            closed()
        }
    }

    fn store(&self) -> Result<&Managed<Store<AnyStorage>>> {
        match &self.store {
            Some(store) => Ok(store),
            None => Err(self.unavailable()),
        }
    }

    fn store_mut(&mut self) -> Result<&mut Managed<Store<AnyStorage>>> {
        if self.store.is_none() {
            return Err(self.unavailable());
        }
        self.store.as_mut().ok_or_else(closed)
    }
}

/// True for the failures after which the engine's handle refuses further changes (a failed
/// storage commit poisons it): the handle is then replaced by a fresh open of the storage.
fn poisons(error: &strata_engine::Error) -> bool {
    matches!(
        error,
        strata_engine::Error::Storage(_) | strata_engine::Error::Poisoned
    )
}

fn closed() -> StrataError {
    StrataError::new(
        CODE_CLOSED,
        "the store is closed; open it again with StrataStore.open",
    )
}

/// A Strata store in this thread (a dedicated worker, for OPFS). Created by
/// [`StrataStore::open`]; see the crate documentation for the methods.
#[wasm_bindgen]
#[derive(Clone)]
// A handle: clones share the store (each exported method's promise holds one: `promise.rs`).
pub struct StrataStore(Rc<StoreState>);

/// What a [`StrataStore`] holds.
struct StoreState {
    session: Exclusive<Session>,
    name: String,
    backend: BackendKind,
    read_only: bool,
    /// `automaticPolicies`, kept to open the store again the same way after a storage failure.
    automatic_policies: bool,
}

/// Parsed `OpenOptions`.
struct OpenOptions {
    name: String,
    backend: BackendKind,
    block_size: Option<u32>,
    blocks: Option<u64>,
    read_only: bool,
    automatic_policies: bool,
}

fn required_name(options: &JsValue) -> Result<String> {
    match convert::optional_string_field(options, "name")? {
        Some(name) if !name.is_empty() => Ok(name),
        _ => Err(StrataError::invalid_argument(
            "options.name (a non-empty string) is required",
        )),
    }
}

fn backend_option(options: &JsValue) -> Result<BackendKind> {
    match convert::optional_string_field(options, "backend")? {
        Some(name) => place::parse_backend(&name),
        None => Ok(BackendKind::Auto),
    }
}

fn block_size_option(options: &JsValue) -> Result<Option<u32>> {
    match convert::optional_u64_field(options, "blockSize")? {
        None => Ok(None),
        Some(size) => u32::try_from(size)
            .map(Some)
            .map_err(|_| StrataError::invalid_argument(format!("blockSize {size} is too large"))),
    }
}

impl OpenOptions {
    fn parse(options: &JsValue) -> Result<Self> {
        Ok(OpenOptions {
            name: required_name(options)?,
            backend: backend_option(options)?,
            block_size: block_size_option(options)?,
            blocks: convert::optional_u64_field(options, "blocks")?,
            read_only: convert::optional_bool_field(options, "readOnly")?.unwrap_or(false),
            automatic_policies: convert::optional_bool_field(options, "automaticPolicies")?
                .unwrap_or(true),
        })
    }
}

/// `readOnly` on the memory backend: its storage is the writer's own, shared in this worker, so
/// a view would be no view; refused rather than handing out a second handle to it.
fn memory_read_only() -> StrataError {
    StrataError::invalid_argument(
        "readOnly is not available on the memory backend (a memory store lives in one worker, \
         beside its writer); open it without readOnly",
    )
}

/// 64 bits to tell stores apart in copy streams.
fn random_store_id() -> u64 {
    let half = || (js_sys::Math::random() * 4_294_967_296.0) as u64 & 0xffff_ffff;
    (half() << 32) | half()
}

async fn has_store(storage: &AnyStorage) -> Result<bool> {
    Ok(storage
        .list()
        .await?
        .iter()
        .any(|name| strata_engine::format::parse_meta_object(name).is_some()))
}

/// Calls a JS chunk callback with a fresh `Uint8Array`; `false` from it cancels.
fn deliver_chunk(callback: &Function, name: &str, chunk: &[u8]) -> strata_engine::Result<()> {
    let array = Uint8Array::from(chunk);
    match callback.call1(&JsValue::NULL, &array) {
        Ok(result) if result.as_bool() == Some(false) => Err(strata_engine::Error::Cancelled),
        Ok(_) => Ok(()),
        Err(thrown) => Err(callback_error(name, &thrown)),
    }
}

/// The copy sink handed to the policy executor.
impl Binding for StrataStore {
    type Session = Session;
    type Volume = Store<AnyStorage>;

    fn session(&self) -> &Exclusive<Session> {
        &self.0.session
    }

    fn volume(session: &mut Session) -> Result<&mut Managed<Store<AnyStorage>>> {
        session.store_mut()
    }

    #[cfg(feature = "policies")]
    async fn quota_free_bytes(&self) -> Option<u64> {
        match self.0.backend {
            BackendKind::Memory | BackendKind::Auto => None,
            BackendKind::Opfs | BackendKind::IndexedDb => place::quota_free_bytes().await,
        }
    }

    fn check_writable(&self) -> Result<()> {
        StrataStore::check_writable(self)
    }

    fn read_only(&self) -> bool {
        self.0.read_only
    }

    async fn settle<T>(
        &self,
        session: &mut Session,
        outcome: strata_engine::Result<T>,
    ) -> Result<T> {
        StrataStore::settle(self, session, outcome).await
    }
}

// write, read and history: shared with `StrataMirror` (see `volume_api.rs`).
volume_api::shared_methods!(StrataStore);
// storage management, in the modules built with the policy executor (see `policy_api.rs`).
#[cfg(feature = "policies")]
crate::policy_api::policy_methods!(StrataStore);

impl StrataStore {
    /// [`Self::js_open`] for Rust callers (the wasm-bindgen tests).
    pub async fn open(options: JsValue) -> Result<StrataStore> {
        let options = OpenOptions::parse(&options)?;
        if options.read_only && options.backend == BackendKind::Memory {
            return Err(memory_read_only());
        }
        let lock = if options.read_only {
            None
        } else {
            Some(place::lock(&options.name).await?)
        };
        let (store, backend) = match Self::open_locked(&options).await {
            Ok(opened) => opened,
            Err(error) => {
                // Freed before the error returns, so that opening the store again at once (the
                // worker does, in the policies module, after POLICIES_UNAVAILABLE) is granted.
                if let Some(lock) = lock {
                    place::release(lock).await;
                }
                return Err(error);
            }
        };
        Ok(StrataStore(Rc::new(StoreState {
            session: Exclusive::new(Session::new(store, lock)),
            name: options.name,
            backend,
            read_only: options.read_only,
            automatic_policies: options.automatic_policies,
        })))
    }

    /// [`Self::open`] once the store's lock is held: the storage, then the store, opened or
    /// created as `options` say, with the backend chosen.
    async fn open_locked(
        options: &OpenOptions,
    ) -> Result<(Managed<Store<AnyStorage>>, BackendKind)> {
        let (storage, backend) =
            place::open_storage(options.backend, &options.name, options.read_only).await?;
        if options.read_only && backend == BackendKind::Memory {
            return Err(memory_read_only());
        }
        let clock = place::clock();
        let store = if options.read_only && has_store(&storage).await? {
            // Writes nothing: a writer's unfinished work is read around, never redone or removed.
            let store = Store::open_read_only(storage, clock).await?;
            check_geometry(&store, options.block_size, options.blocks)?;
            Managed::new(store)?
        } else if has_store(&storage).await? {
            let store = Store::open(storage, clock).await?;
            check_geometry(&store, options.block_size, options.blocks)?;
            Managed::open(store, options.automatic_policies).await?
        } else if options.read_only {
            return Err(strata_engine::Error::NotAStore.into());
        } else {
            let block_count = options.blocks.ok_or_else(|| {
                StrataError::invalid_argument(format!(
                    "there is no store {:?} yet: give options.blocks to create it",
                    options.name
                ))
            })?;
            let create = CreateOptions {
                block_size: options.block_size.unwrap_or(4096),
                block_count,
                store_id: Some(random_store_id()),
            };
            let mut store = Managed::new(Store::create(storage, create, clock).await?)?;
            store.set_automatic_policies(options.automatic_policies);
            store
        };
        Ok((store, backend))
    }

    /// [`Self::js_begin_import`] for Rust callers (the wasm-bindgen tests).
    pub async fn begin_import(options: JsValue) -> Result<ImageImport> {
        let name = required_name(&options)?;
        let backend = backend_option(&options)?;
        let block_size = block_size_option(&options)?.unwrap_or(4096);
        let expected_bytes = convert::optional_u64_field(&options, "expectedBytes")?;
        let lock = place::lock(&name).await?;
        let (storage, backend) = place::open_storage(backend, &name, false).await?;
        let import = Store::import_baseline(
            storage,
            block_size,
            expected_bytes,
            Some(random_store_id()),
            place::clock(),
        )
        .await?;
        Ok(ImageImport(Rc::new(Import {
            state: Exclusive::new(Some(ImportState { import, lock })),
            name,
            backend,
        })))
    }

    /// [`Self::js_destroy`] for Rust callers (the wasm-bindgen tests).
    pub async fn destroy(options: JsValue) -> Result<()> {
        let name = required_name(&options)?;
        let backend = backend_option(&options)?;
        let lock = place::lock(&name).await?;
        let destroyed = crate::backend::destroy_backend(backend, &name).await;
        place::release(lock).await;
        Ok(destroyed?)
    }

    fn check_writable(&self) -> Result<()> {
        if self.0.read_only {
            Err(StrataError::new(
                CODE_READ_ONLY,
                format!("store {:?} was opened read-only", self.0.name),
            ))
        } else {
            Ok(())
        }
    }

    /// [`Self::js_snapshot`] for Rust callers (the wasm-bindgen tests).
    pub async fn snapshot(&self, label: Option<String>) -> Result<f64> {
        self.check_writable()?;
        let mut session = self.0.session.lock().await;
        let outcome = session.store_mut()?.snapshot(label.as_deref()).await;
        Ok(self.settle(&mut session, outcome).await?.0 as f64)
    }

    /// [`Self::js_branches`] for Rust callers (the wasm-bindgen tests).
    pub async fn branches(&self) -> Result<JsValue> {
        let session = self.0.session.lock().await;
        convert::to_js(&session.store()?.branches())
    }

    /// [`Self::js_clone_branch`] for Rust callers (the wasm-bindgen tests).
    pub async fn clone_branch(&self, from: f64, name: String) -> Result<f64> {
        self.check_writable()?;
        let from = convert::to_volume(from, "from")?;
        let mut session = self.0.session.lock().await;
        let outcome = session.store_mut()?.clone_branch(from, &name).await;
        Ok(self.settle(&mut session, outcome).await?.0 as f64)
    }

    /// [`Self::js_checkout`] for Rust callers (the wasm-bindgen tests).
    pub async fn checkout(&self, name: String) -> Result<f64> {
        self.check_writable()?;
        let mut session = self.0.session.lock().await;
        let outcome = session.store_mut()?.checkout(&name).await;
        Ok(self.settle(&mut session, outcome).await?.0 as f64)
    }

    /// [`Self::js_delete_branch`] for Rust callers (the wasm-bindgen tests).
    pub async fn delete_branch(&self, name: String) -> Result<()> {
        self.check_writable()?;
        let mut session = self.0.session.lock().await;
        let outcome = session.store_mut()?.delete_branch(&name).await;
        self.settle(&mut session, outcome).await
    }

    /// [`Self::js_info`] for Rust callers (the wasm-bindgen tests).
    pub async fn info(&self) -> Result<JsValue> {
        let session = self.0.session.lock().await;
        let store = session.store()?;
        convert::to_js(&OpenStoreInfo {
            name: &self.0.name,
            read_only: self.0.read_only,
            info: store.info(),
        })
    }

    /// [`Self::js_send`] for Rust callers (the wasm-bindgen tests).
    pub async fn send(&self, options: JsValue, on_chunk: Option<Function>) -> Result<JsValue> {
        let send_options = SendOptions {
            base: convert::optional_u64_field(&options, "base")?.map(strata_engine::VolumeId),
            upto: convert::optional_u64_field(&options, "upto")?.map(strata_engine::VolumeId),
            since_seq: convert::optional_u64_field(&options, "sinceSeq")?,
            blocks: convert::block_range(&convert::field(&options, "blocks"))?,
        };
        let session = self.0.session.lock().await;
        let chunks = Array::new();
        let mut sink = |chunk: &[u8]| match &on_chunk {
            Some(f) => deliver_chunk(f, "onChunk", chunk),
            None => {
                chunks.push(&Uint8Array::from(chunk));
                Ok(())
            }
        };
        let report = session.store()?.send(&send_options, &mut sink).await?;
        Ok(convert::with_property(
            convert::to_js(&report)?,
            "chunks",
            chunks,
        ))
    }

    /// [`Self::js_receive`] for Rust callers (the wasm-bindgen tests).
    pub async fn receive(&self, stream: JsValue) -> Result<JsValue> {
        self.check_writable()?;
        let chunks: Vec<Uint8Array> = if Array::is_array(&stream) {
            Array::from(&stream)
                .iter()
                .map(|c| c.dyn_into::<Uint8Array>())
                .collect::<Result<_, _>>()
        } else {
            stream.dyn_into::<Uint8Array>().map(|c| vec![c])
        }
        .map_err(|_| {
            StrataError::invalid_argument("receive takes a Uint8Array or an array of them")
        })?;
        let mut session = self.0.session.lock().await;
        self.begin_receiving(&mut session)?;
        for chunk in &chunks {
            self.push_received(&mut session, &chunk.to_vec()).await?;
        }
        self.finish_receiving(&mut session).await
    }

    /// [`Self::js_receive_begin`] for Rust callers (the wasm-bindgen tests).
    pub async fn receive_begin(&self) -> Result<()> {
        self.check_writable()?;
        let mut session = self.0.session.lock().await;
        self.begin_receiving(&mut session)
    }

    /// [`Self::js_receive_push`] for Rust callers (the wasm-bindgen tests).
    pub async fn receive_push(&self, chunk: Vec<u8>) -> Result<f64> {
        let mut session = self.0.session.lock().await;
        self.push_received(&mut session, &chunk).await
    }

    /// [`Self::js_receive_finish`] for Rust callers (the wasm-bindgen tests).
    pub async fn receive_finish(&self) -> Result<JsValue> {
        let mut session = self.0.session.lock().await;
        self.finish_receiving(&mut session).await
    }

    /// [`Self::js_receive_abort`] for Rust callers (the wasm-bindgen tests).
    pub async fn receive_abort(&self) -> Result<()> {
        let mut session = self.0.session.lock().await;
        let Some((receiver, lent)) = session.receiving.take() else {
            return Ok(());
        };
        match receiver.finish().await {
            Ok((store, _)) => session.store = Some(lent.take_back(store)),
            // An unfinished stream is refused and takes the store with it: reopen it.
            Err(_) => session.store = Some(self.open_again().await?),
        }
        Ok(())
    }

    /// [`Self::js_export_image`] for Rust callers (the wasm-bindgen tests).
    pub async fn export_image(
        &self,
        volume: f64,
        on_chunk: Function,
        on_progress: Option<Function>,
    ) -> Result<()> {
        let volume = convert::to_volume(volume, "volume")?;
        let session = self.0.session.lock().await;
        let sink = |chunk: &[u8]| deliver_chunk(&on_chunk, "onChunk", chunk);
        let progress = |done: u64, total: u64| {
            if let Some(f) = &on_progress {
                // The engine's export cannot be cancelled from its progress callback; onChunk can.
                let _ = f.call2(
                    &JsValue::NULL,
                    &JsValue::from_f64(done as f64),
                    &JsValue::from_f64(total as f64),
                );
            }
        };
        session.store()?.export(volume, sink, progress).await?;
        Ok(())
    }

    /// [`Self::js_close`] for Rust callers (the wasm-bindgen tests).
    pub async fn close(&self) -> Result<()> {
        let mut session = self.0.session.lock().await;
        let lock = session.lock.take();
        // A receive in progress is abandoned with its partial volume (recovery drops it).
        session.receiving = None;
        let closed = match session.store.take() {
            // Nothing to sync: release the storage (OPFS handles, the IndexedDB connection).
            Some(store) if self.0.read_only => {
                store.storage().close();
                Ok(())
            }
            Some(store) => store.close().await.map(|storage| storage.close()),
            None => Ok(()),
        };
        // The lock goes after the storage, and only once the browser has freed it may the
        // caller open the store again.
        if let Some(lock) = lock {
            place::release(lock).await;
        }
        closed?;
        Ok(())
    }

    fn begin_receiving(&self, session: &mut Session) -> Result<()> {
        if session.receiving.is_some() {
            return Err(session.unavailable());
        }
        let (store, lent) = session.store.take().ok_or_else(closed)?.lend();
        session.receiving = Some((StreamReceiver::into_store(store), lent));
        Ok(())
    }

    async fn push_received(&self, session: &mut Session, chunk: &[u8]) -> Result<f64> {
        let (receiver, _) = session.receiving.as_mut().ok_or_else(|| {
            StrataError::new(CODE_INVALID_STATE, "no copy stream is being received")
        })?;
        match receiver.push(chunk).await {
            Ok(()) => Ok(receiver.report().stream_bytes as f64),
            Err(e) => {
                // The receiver owns the store: drop both (releasing OPFS handles) before the
                // store is opened again from storage, as after a crash.
                session.receiving = None;
                session.store = Some(self.open_again().await?);
                Err(e.into())
            }
        }
    }

    async fn finish_receiving(&self, session: &mut Session) -> Result<JsValue> {
        let (receiver, lent) = session.receiving.take().ok_or_else(|| {
            StrataError::new(CODE_INVALID_STATE, "no copy stream is being received")
        })?;
        match receiver.finish().await {
            Ok((store, report)) => {
                // The volumes landed: the policy may act on them, as after any operation.
                let mut store = lent.take_back(store);
                let observed = store.observe(Operation::Receive).await;
                session.store = Some(store);
                self.settle(session, observed).await?;
                convert::to_js(&report)
            }
            Err(e) => {
                session.store = Some(self.open_again().await?);
                Err(e.into())
            }
        }
    }

    /// Opens the store again from storage (recovery runs, as after a crash), under storage
    /// management as it was opened.
    async fn open_again(&self) -> Result<Managed<Store<AnyStorage>>> {
        let (storage, _) =
            place::open_storage(self.0.backend, &self.0.name, self.0.read_only).await?;
        if self.0.read_only {
            return Ok(Managed::new(
                Store::open_read_only(storage, place::clock()).await?,
            )?);
        }
        let store = Store::open(storage, place::clock()).await?;
        Ok(Managed::open(store, self.0.automatic_policies).await?)
    }

    /// Passes a change's outcome on. A storage failure (a `QuotaExceededError`, say) poisons
    /// the engine's handle, so the store is first opened again from storage: it then holds
    /// every synced write (and perhaps some later ones), reads work, and writes are accepted
    /// again as soon as the storage takes them (space freed, quota raised). Writes that were
    /// not synced when the failure struck may be lost, as in a crash.
    async fn settle<T>(
        &self,
        session: &mut Session,
        outcome: strata_engine::Result<T>,
    ) -> Result<T> {
        match outcome {
            Ok(value) => Ok(value),
            Err(error) => Err(self.after_failure(session, error).await),
        }
    }

    /// The failure half of [`StrataStore::settle`], apart so that it is compiled once rather
    /// than once per result type.
    async fn after_failure(
        &self,
        session: &mut Session,
        error: strata_engine::Error,
    ) -> StrataError {
        if poisons(&error) {
            self.replace_poisoned(session).await;
        }
        error.into()
    }

    /// Replaces the session's store by a fresh open of its storage; keeps the old (readable,
    /// poisoned) handle if that fails, so that the next change tries again.
    async fn replace_poisoned(&self, session: &mut Session) {
        let Some(old) = session.store.as_ref() else {
            return;
        };
        // The new OPFS storage needs the sync access handles the old one holds. Closing them
        // leaves the old one usable (handles reopen on demand) should the new open fail.
        // IndexedDB allows a second connection; closing the old one would end it.
        if self.0.backend == BackendKind::Opfs {
            old.storage().close();
        }
        if let Ok(store) = self.open_again().await {
            session.store = Some(store);
        }
    }
}

#[wasm_bindgen]
impl StrataStore {
    /// Opens the store `options.name`, creating it (with `options.blocks` blocks of
    /// `options.blockSize` bytes) if it does not exist. Takes the store's cross-tab lock first:
    /// if another tab or worker has the store open, fails with code `LOCKED`.
    ///
    /// With `readOnly: true` no lock is taken: the store opens as a point-in-time view beside a
    /// writer in another tab (OPFS through `getFile()`, IndexedDB through a second connection),
    /// and every change fails with code `READ_ONLY`. The view shows the store as it was when it
    /// opened; a writer's later compaction or deletion may make some of its reads fail
    /// verification (`CHECKSUM_MISMATCH`), never return wrong bytes. Reopen to see newer data.
    /// Opening a view writes nothing ([`Store::open_read_only`]): a writer's unfinished
    /// compaction, merge or receive is read around, never redone or removed. The memory backend
    /// has no read-only views (`INVALID_ARGUMENT`): its storage is the writer's own.
    #[wasm_bindgen(js_name = open, unchecked_return_type = "Promise<StrataStore>")]
    pub fn js_open(
        #[wasm_bindgen(unchecked_param_type = "OpenOptions")] options: JsValue,
    ) -> Promise {
        promise(Self::open(options))
    }

    /// Starts creating the store `options.name` from a raw image pushed in chunks; the store
    /// must not exist. Takes the store's lock like `open`.
    #[wasm_bindgen(js_name = beginImport, unchecked_return_type = "Promise<ImageImport>")]
    pub fn js_begin_import(
        #[wasm_bindgen(unchecked_param_type = "ImportOptions")] options: JsValue,
    ) -> Promise {
        promise(Self::begin_import(options))
    }

    /// Deletes everything the store `options.name` holds on `options.backend` (`"auto"`: on
    /// every backend). Takes the store's lock first, so an open store fails with `LOCKED`.
    /// A missing store is not an error.
    #[wasm_bindgen(js_name = destroy, unchecked_return_type = "Promise<void>")]
    pub fn js_destroy(
        #[wasm_bindgen(
            unchecked_param_type = "{ name: string; backend?: OpenOptions[\"backend\"] }"
        )]
        options: JsValue,
    ) -> Promise {
        promise(Self::destroy(options))
    }

    /// Takes the closed memory store `name` out of this module: `[object, bytes]` pairs, or
    /// `null` if this module holds no memory store of that name. The worker moves a memory
    /// store to the package's other module (`putMemoryStore` there) when it gets a policy.
    #[wasm_bindgen(js_name = takeMemoryStore, unchecked_return_type = "Array<[string, Uint8Array]> | null")]
    pub fn js_take_memory_store(name: String) -> JsValue {
        match crate::backend::take_memory_store(&name) {
            None => JsValue::NULL,
            Some(objects) => objects
                .iter()
                .map(|(object, bytes)| {
                    Array::of2(&JsValue::from_str(object), &Uint8Array::from(&bytes[..]))
                })
                .collect::<Array>()
                .into(),
        }
    }

    /// Makes memory store `name` of `objects` (what `takeMemoryStore` gave in the package's
    /// other module), in place of any memory store of that name here.
    #[wasm_bindgen(js_name = putMemoryStore)]
    pub fn js_put_memory_store(
        name: String,
        #[wasm_bindgen(unchecked_param_type = "Array<[string, Uint8Array]>")] objects: Array,
    ) -> Result<()> {
        let bad = || StrataError::invalid_argument("objects must be [name, Uint8Array] pairs");
        let mut pairs = Vec::with_capacity(objects.length() as usize);
        for pair in objects.iter() {
            let pair: Array = pair.dyn_into().map_err(|_| bad())?;
            let object = pair.get(0).as_string().ok_or_else(bad)?;
            let bytes: Uint8Array = pair.get(1).dyn_into().map_err(|_| bad())?;
            pairs.push((object, bytes.to_vec()));
        }
        crate::backend::put_memory_store(&name, pairs);
        Ok(())
    }

    /// The backend the store is on: `"memory"`, `"opfs"` or `"indexeddb"` (never `"auto"`).
    #[wasm_bindgen(
        getter,
        unchecked_return_type = "\"memory\" | \"opfs\" | \"indexeddb\""
    )]
    pub fn backend(&self) -> String {
        self.0.backend.as_str().to_string()
    }

    /// The store's name.
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.0.name.clone()
    }

    /// True if the store was opened with `readOnly: true`.
    #[wasm_bindgen(getter, js_name = readOnly)]
    pub fn read_only(&self) -> bool {
        self.0.read_only
    }

    /// Takes a snapshot labelled `label`; returns the snapshot's volume identifier.
    #[wasm_bindgen(js_name = snapshot, unchecked_return_type = "Promise<number>")]
    pub fn js_snapshot(&self, label: Option<String>) -> Promise {
        let this = self.clone();
        promise(async move { this.snapshot(label).await })
    }

    /// Every branch: the active one first.
    #[wasm_bindgen(js_name = branches, unchecked_return_type = "Promise<BranchInfo[]>")]
    pub fn js_branches(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.branches().await })
    }

    /// Clones volume `from` (a snapshot, the baseline, or a parked branch's head) into a new
    /// branch `name`, parked; resolves to its head's identifier. Nothing is copied.
    #[wasm_bindgen(js_name = cloneBranch, unchecked_return_type = "Promise<number>")]
    pub fn js_clone_branch(&self, from: f64, name: String) -> Promise {
        let this = self.clone();
        promise(async move { this.clone_branch(from, name).await })
    }

    /// Makes branch `name` the active one (where writes go); resolves to the live head's identifier.
    #[wasm_bindgen(js_name = checkout, unchecked_return_type = "Promise<number>")]
    pub fn js_checkout(&self, name: String) -> Promise {
        let this = self.clone();
        promise(async move { this.checkout(name).await })
    }

    /// Deletes branch `name` (not "main"); its snapshots stay.
    #[wasm_bindgen(js_name = deleteBranch, unchecked_return_type = "Promise<void>")]
    pub fn js_delete_branch(&self, name: String) -> Promise {
        let this = self.clone();
        promise(async move { this.delete_branch(name).await })
    }

    /// Facts about the store.
    #[wasm_bindgen(js_name = info, unchecked_return_type = "Promise<StoreInfo>")]
    pub fn js_info(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.info().await })
    }

    /// Writes a copy stream of sealed snapshots (see `SendOptions`). Chunks go to `onChunk` if
    /// given, else they are returned in `chunks`.
    #[wasm_bindgen(js_name = send, unchecked_return_type = "Promise<SendResult>")]
    pub fn js_send(
        &self,
        #[wasm_bindgen(unchecked_param_type = "SendOptions | undefined")] options: JsValue,
        #[wasm_bindgen(unchecked_optional_param_type = "ChunkCallback")] on_chunk: Option<Function>,
    ) -> Promise {
        let this = self.clone();
        promise(async move { this.send(options, on_chunk).await })
    }

    /// Applies a copy stream (one `Uint8Array` or an array of chunks, in order) to this store.
    /// Volumes that arrived whole stay even if a later part of the stream is refused, so an
    /// interrupted copy can be resumed by receiving the stream again. For a stream that does
    /// not fit in memory, push it chunk by chunk: `receiveBegin`, `receivePush`, `receiveFinish`.
    #[wasm_bindgen(js_name = receive, unchecked_return_type = "Promise<CopyReport>")]
    pub fn js_receive(
        &self,
        #[wasm_bindgen(unchecked_param_type = "Uint8Array | Uint8Array[]")] stream: JsValue,
    ) -> Promise {
        let this = self.clone();
        promise(async move { this.receive(stream).await })
    }

    /// Starts receiving a copy stream pushed chunk by chunk (`receivePush`), so that a stream
    /// of any size goes through bounded memory. Until `receiveFinish` or `receiveAbort`, other
    /// calls on the store fail with code `INVALID_STATE`.
    #[wasm_bindgen(js_name = receiveBegin, unchecked_return_type = "Promise<void>")]
    pub fn js_receive_begin(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.receive_begin().await })
    }

    /// Feeds the next bytes of the stream being received; returns the stream bytes so far. A
    /// refused stream ends the receive (the store reopens as storage holds it) and fails.
    #[wasm_bindgen(js_name = receivePush, unchecked_return_type = "Promise<number>")]
    pub fn js_receive_push(&self, chunk: Vec<u8>) -> Promise {
        let this = self.clone();
        promise(async move { this.receive_push(chunk).await })
    }

    /// Completes the receive; fails with `BAD_STREAM` if the stream stopped before its end.
    #[wasm_bindgen(js_name = receiveFinish, unchecked_return_type = "Promise<CopyReport>")]
    pub fn js_receive_finish(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.receive_finish().await })
    }

    /// Abandons the receive: volumes that arrived whole stay, a partial one is dropped.
    #[wasm_bindgen(js_name = receiveAbort, unchecked_return_type = "Promise<void>")]
    pub fn js_receive_abort(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.receive_abort().await })
    }

    /// Streams volume `volume` as a raw image to `onChunk` (chunks of up to 1 MiB), calling
    /// `onProgress(done, total)` after each.
    #[wasm_bindgen(js_name = exportImage, unchecked_return_type = "Promise<void>")]
    pub fn js_export_image(
        &self,
        volume: f64,
        #[wasm_bindgen(unchecked_param_type = "ChunkCallback")] on_chunk: Function,
        #[wasm_bindgen(unchecked_optional_param_type = "ProgressCallback")] on_progress: Option<
            Function,
        >,
    ) -> Promise {
        let this = self.clone();
        promise(async move { this.export_image(volume, on_chunk, on_progress).await })
    }

    /// Syncs, closes the store and releases its lock. Later calls fail with code `CLOSED`;
    /// closing twice is allowed.
    #[wasm_bindgen(js_name = close, unchecked_return_type = "Promise<void>")]
    pub fn js_close(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.close().await })
    }
}

/// Checks an existing store against the geometry the caller asked for, if any.
fn check_geometry(
    store: &Store<AnyStorage>,
    block_size: Option<u32>,
    blocks: Option<u64>,
) -> Result<()> {
    if let Some(size) = block_size.filter(|&s| s != store.block_size()) {
        return Err(StrataError::invalid_argument(format!(
            "the store exists with {}-byte blocks, not {size}",
            store.block_size()
        )));
    }
    if let Some(count) = blocks.filter(|&c| c != store.block_count()) {
        return Err(StrataError::invalid_argument(format!(
            "the store exists with {} blocks, not {count}",
            store.block_count()
        )));
    }
    Ok(())
}

struct ImportState {
    import: BaselineImport<AnyStorage>,
    lock: StoreLock,
}

/// A store being created from a raw image; see [`StrataStore::begin_import`].
#[wasm_bindgen]
#[derive(Clone)]
// A handle, as the store's.
pub struct ImageImport(Rc<Import<ImportState>>);

/// What an [`ImageImport`] or a [`StreamImport`] holds.
struct Import<S> {
    state: Exclusive<Option<S>>,
    name: String,
    backend: BackendKind,
}

impl StrataStore {
    /// The writable store an import (of an image or a stream) has just created, with its lock.
    fn created(
        store: Store<AnyStorage>,
        lock: StoreLock,
        name: &str,
        backend: BackendKind,
    ) -> Result<StrataStore> {
        Ok(StrataStore(Rc::new(StoreState {
            session: Exclusive::new(Session::new(Managed::new(store)?, Some(lock))),
            name: name.to_string(),
            backend,
            read_only: false,
            automatic_policies: true,
        })))
    }
}

fn import_finished() -> StrataError {
    StrataError::new(CODE_INVALID_STATE, "the import has finished or failed")
}

impl ImageImport {
    /// [`Self::js_push`] for Rust callers (the wasm-bindgen tests).
    pub async fn push(&self, chunk: Vec<u8>) -> Result<f64> {
        let mut state = self.0.state.lock().await;
        let import = &mut state.as_mut().ok_or_else(import_finished)?.import;
        import.push(&chunk).await?;
        Ok(import.bytes_imported() as f64)
    }

    /// [`Self::js_finish`] for Rust callers (the wasm-bindgen tests).
    pub async fn finish(&self) -> Result<StrataStore> {
        let mut state = self.0.state.lock().await;
        let ImportState { import, lock } = state.take().ok_or_else(import_finished)?;
        let store = import.finish().await?;
        StrataStore::created(store, lock, &self.0.name, self.0.backend)
    }

    /// [`Self::js_abort`] for Rust callers (the wasm-bindgen tests).
    pub async fn abort(&self) {
        let mut state = self.0.state.lock().await;
        state.take();
    }
}

#[wasm_bindgen]
impl ImageImport {
    /// Adds the next bytes of the image; returns the bytes imported so far.
    #[wasm_bindgen(js_name = push, unchecked_return_type = "Promise<number>")]
    pub fn js_push(&self, chunk: Vec<u8>) -> Promise {
        let this = self.clone();
        promise(async move { this.push(chunk).await })
    }

    /// Completes the import (checks the size, makes the baseline durable) and opens the store.
    #[wasm_bindgen(js_name = finish, unchecked_return_type = "Promise<StrataStore>")]
    pub fn js_finish(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.finish().await })
    }

    /// Abandons the import and releases the store's lock. What was written stays on storage
    /// without a journal (it is not a store); importing again under the name replaces it.
    #[wasm_bindgen(js_name = abort, unchecked_return_type = "Promise<void>")]
    pub fn js_abort(&self) -> Promise {
        let this = self.clone();
        promise(async move {
            this.abort().await;
            Ok(())
        })
    }
}

struct StreamImportState {
    receiver: StreamReceiver<AnyStorage>,
    lock: StoreLock,
}

/// A new store being created from a copy stream (a full `send`); see
/// [`StrataStore::begin_stream_import`].
#[wasm_bindgen]
#[derive(Clone)]
// A handle, as the store's.
pub struct StreamImport(Rc<Import<StreamImportState>>);

impl StrataStore {
    /// [`Self::js_begin_stream_import`] for Rust callers (the wasm-bindgen tests).
    pub async fn begin_stream_import(options: JsValue) -> Result<StreamImport> {
        let name = required_name(&options)?;
        let backend = backend_option(&options)?;
        let lock = place::lock(&name).await?;
        let (storage, backend) = place::open_storage(backend, &name, false).await?;
        if has_store(&storage).await? {
            return Err(strata_engine::Error::AlreadyExists.into());
        }
        Ok(StreamImport(Rc::new(Import {
            state: Exclusive::new(Some(StreamImportState {
                receiver: StreamReceiver::new_store(storage, place::clock()),
                lock,
            })),
            name,
            backend,
        })))
    }
}

#[wasm_bindgen]
impl StrataStore {
    /// Starts creating the store `options.name` as a copy of another, from a full copy stream
    /// (`send()` without `base`) pushed in chunks; the store must not exist. Takes the store's
    /// lock like `open`. Later copy streams of the same source go to `receive`.
    #[wasm_bindgen(js_name = beginStreamImport, unchecked_return_type = "Promise<StreamImport>")]
    pub fn js_begin_stream_import(
        #[wasm_bindgen(
            unchecked_param_type = "{ name: string; backend?: OpenOptions[\"backend\"] }"
        )]
        options: JsValue,
    ) -> Promise {
        promise(Self::begin_stream_import(options))
    }
}

impl StreamImport {
    /// [`Self::js_push`] for Rust callers (the wasm-bindgen tests).
    pub async fn push(&self, chunk: Vec<u8>) -> Result<f64> {
        let mut state = self.0.state.lock().await;
        let import = state.as_mut().ok_or_else(import_finished)?;
        match import.receiver.push(&chunk).await {
            Ok(()) => Ok(import.receiver.report().stream_bytes as f64),
            Err(e) => {
                state.take();
                Err(e.into())
            }
        }
    }

    /// [`Self::js_finish`] for Rust callers (the wasm-bindgen tests).
    pub async fn finish(&self) -> Result<StrataStore> {
        let mut state = self.0.state.lock().await;
        let StreamImportState { receiver, lock } = state.take().ok_or_else(import_finished)?;
        let (store, _) = receiver.finish().await?;
        StrataStore::created(store, lock, &self.0.name, self.0.backend)
    }

    /// [`Self::js_abort`] for Rust callers (the wasm-bindgen tests).
    pub async fn abort(&self) {
        let mut state = self.0.state.lock().await;
        state.take();
    }
}

#[wasm_bindgen]
impl StreamImport {
    /// Adds the next bytes of the stream; returns the stream bytes so far. A refused stream
    /// ends the import.
    #[wasm_bindgen(js_name = push, unchecked_return_type = "Promise<number>")]
    pub fn js_push(&self, chunk: Vec<u8>) -> Promise {
        let this = self.clone();
        promise(async move { this.push(chunk).await })
    }

    /// Completes the import (the stream must have reached its end) and opens the new store.
    #[wasm_bindgen(js_name = finish, unchecked_return_type = "Promise<StrataStore>")]
    pub fn js_finish(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.finish().await })
    }

    /// Abandons the import and releases the store's lock; what was written stays on storage
    /// (destroy the store, or import again after destroying it).
    #[wasm_bindgen(js_name = abort, unchecked_return_type = "Promise<void>")]
    pub fn js_abort(&self) -> Promise {
        let this = self.clone();
        promise(async move {
            this.abort().await;
            Ok(())
        })
    }
}
