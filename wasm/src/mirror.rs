//! [`StrataMirror`]: the redundant system ([`Mirror`]) in the browser. A *secondary*
//! store (baseline + incremental log, the source of truth) on one backend, and a *primary* copy
//! of the live volume (a plain image plus a checksum per block) mirrored on several *legs*, each
//! on a backend of its own: a mirror across OPFS and IndexedDB, say.
//!
//! # Where things live
//!
//! For a mirror named `NAME`:
//!
//! | what | store name | OPFS directory / IndexedDB database | Web Lock |
//! |---|---|---|---|
//! | the secondary, on `backend` | `NAME` | `strata-NAME` | `strata-NAME` |
//! | leg `i`, on `legs[i]` | `NAME.leg<i>` (`NAME.leg0`, `NAME.leg1`, ...) | `strata-NAME.leg<i>` | `strata-NAME.leg<i>` |
//!
//! A leg is known by its position: opening with the same `legs` list finds the same storage.
//! Opening takes every one of these locks first (`LOCKED` if any is held), so neither the
//! secondary nor a leg can be opened twice. The secondary is an ordinary store: while the mirror
//! is closed, `StrataStore.open({ name: NAME })` works on it, and the legs catch up from its log
//! at the next `StrataMirror.open`.
//!
//! # Lost legs
//!
//! When an existing mirror opens and a leg's storage holds no primary (it was destroyed, the
//! site's data for it was cleared, or it is a new position), the leg is *not* filled behind the
//! caller's back: it is out of service (`degraded`, its open outcome `failed`), and reads are
//! served by the other legs and the secondary. `replace(i)` wipes the leg's storage and
//! resilvers it; `rebuild()` does so for every leg from the secondary's head (after all were
//! lost, or to put a mirror beside a store first made with `StrataStore`). A leg whose storage
//! fails while open (an IndexedDB database deleted from elsewhere) is taken out of service the
//! same way.
//!
//! Memory legs live as long as the worker: after a page reload they are lost (call `rebuild()`),
//! and a memory secondary is gone with them.

use std::rc::Rc;

use js_sys::{Array, Function, Promise, Reflect};
use strata_engine::mirror::layout::HEADER_OBJECT;
use strata_engine::mirror::{MirrorOptions, ResilverReport, SnapshotCompaction};
use strata_engine::policy::Operation;
use strata_engine::storage::{Commit, ReadRequest, Storage, StorageError};
use strata_engine::Volume;
use strata_engine::{CreateOptions, Managed, Store};
use wasm_bindgen::prelude::*;

use crate::backend::{AnyStorage, BackendKind};
use crate::convert;
use crate::error::{StrataError, CODE_CLOSED, CODE_INVALID_STATE};
use crate::exclusive::Exclusive;
use crate::place::{self, StoreLock};
use crate::promise::promise;
use crate::volume_api::{self, Binding, StrataCursor};

type Result<T, E = StrataError> = std::result::Result<T, E>;

/// The one instantiation of the controller in the bindings.
type Mirror = strata_engine::mirror::Mirror<LegDevice, AnyStorage>;

#[wasm_bindgen(typescript_custom_section)]
const TS_MIRROR_TYPES: &str = r#"
/** A backend as the bindings report it (`"auto"` resolved). */
export type ResolvedBackend = "memory" | "opfs" | "indexeddb";

/**
 * A leg's backend: resolved, except `"auto"` for a leg asked for as `"auto"` whose storage
 * could not be opened (nothing to resolve it against).
 */
export type LegBackend = ResolvedBackend | "auto";

/** Options of `StrataMirror.open`. */
export interface MirrorOptions {
  /** The mirror's name: the secondary is the store `name`, leg `i` the store `name.leg<i>`. */
  name: string;
  /** Where the secondary (baseline + log) lives; default `"auto"`. */
  backend?: "auto" | "memory" | "opfs" | "indexeddb";
  /** One backend per leg of the primary, e.g. `["opfs", "indexeddb"]`; at least one. */
  legs: Array<"auto" | "memory" | "opfs" | "indexeddb">;
  /** Block size in bytes when creating (a power of two, 512..65536); default 4096. */
  blockSize?: number;
  /** Number of blocks when creating; needed only if the mirror does not exist yet. */
  blocks?: number;
  /**
   * What every `snapshot()` does to the secondary after sealing the snapshot: `"inPlace"`
   * compacts it in place, `{ keepSnapshots: n }` merges the oldest snapshots into the baseline
   * so that at most `n` remain; absent or `"none"`: nothing. Not stored: give it at every open.
   */
  compactOnSnapshot?: "none" | "inPlace" | { keepSnapshots: number };
  /**
   * Whether the mirror acts on its policy by itself (default true), as a store does; with
   * `false`, only `runPolicies` and `event` carry policy decisions out, and opening signals no
   * `open` event.
   */
  automaticPolicies?: boolean;
}

/** What `StrataMirror.info()` returns: the secondary's facts, and the legs' backends. */
export interface MirrorInfo extends Omit<StoreInfo, "readOnly"> {
  legs: LegBackend[];
}

/** One leg in `MirrorStatus`. */
export interface MirrorLegStatus {
  leg: number;
  backend: LegBackend;
  /** The leg's store name (`name.leg<i>`): its OPFS directory / database is `strata-` + this. */
  store: string;
  /** `healthy`: in service; `degraded`: out of service, replace it; `missing`: no device. */
  state: "healthy" | "degraded" | "missing";
  /** Why it is out of service. */
  reason: string | null;
  /**
   * How opening brought it in line: nothing to do, the blocks written since it was last
   * updated, a full compare, or it could not be used (its storage is missing or failed).
   */
  open: "inSync" | "caughtUp" | "resilvered" | "failed";
  /** Blocks that opening wrote to it. */
  openBlocksWritten: number;
  /** The head volume and log position its image reflects, when known to be consistent. */
  synced: { head: number; nextSeq: number } | null;
  /** Bad copies found on it (reads, scrubs, resilvers) since the mirror was opened. */
  errorsDetected: number;
  /** Of those, rewritten from a good copy. */
  errorsRepaired: number;
  ioErrors: number;
  blocksResilvered: number;
  /** Times `replace` or `rebuild` put a new device in its place since the mirror was opened. */
  replacements: number;
  generation: number;
}

/** What `StrataMirror.status()` returns. */
export interface MirrorStatus {
  /** The secondary's head volume. */
  head: number;
  healthyLegs: number;
  /** True if some leg is out of service. */
  degraded: boolean;
  /** Written blocks not on the primary yet (they reach it at the next sync). */
  pendingBlocks: number;
  /** Blocks head reads took from the secondary because no leg had a good copy. */
  blocksServedBySecondary: number;
  /** Blocks head reads could not get from anywhere (they failed with `CORRUPT`). */
  unrecoverableReads: number;
  /** Blocks the secondary had lost (its last record damaged) and got back from the legs at open. */
  secondaryBlocksRestored: number;
  /** Blocks the secondary may have lost at open that no leg could give back. */
  secondaryBlocksLost: number;
  legs: MirrorLegStatus[];
}

/** One leg in `MirrorScrubReport`. */
export interface MirrorLegScrub {
  leg: number;
  backend: LegBackend;
  /** Copies checked on this leg. */
  checked: number;
  /** Copies that failed their checksum or differed from the secondary. */
  detected: number;
  /** Of those, rewritten from a good copy. */
  repaired: number;
  /** The I/O failure that took the leg out of service during the scrub. */
  ioError: string | null;
}

/** What `StrataMirror.scrub()` returns. */
export interface MirrorScrubReport {
  blocksChecked: number;
  /** Leg copies checked (blocks times legs in service). */
  copiesChecked: number;
  /** Copies found damaged or stale. */
  detected: number;
  /** Copies rewritten from a good copy. */
  repaired: number;
  /** Blocks with no good copy anywhere: left marked bad, reads of them fail with `CORRUPT`. */
  unrecoverable: number[];
  /** Blocks whose copy in the secondary is damaged (the primary still serves them). */
  secondaryDamaged: number[];
  legs: MirrorLegScrub[];
}

/** What `replace` (and each leg of `rebuild`) did. */
export interface ResilverReport {
  leg: number;
  backend: LegBackend;
  blocksChecked: number;
  blocksWritten: number;
  /** Damaged copies found on a device that held a trusted copy. */
  damagedFound: number;
  /** Blocks with no good copy anywhere (marked bad on the leg). */
  unrecoverable: number[];
}

/** One fault found on a leg (`StrataMirror.events()`). */
export interface FaultEvent {
  leg: number;
  /** The block, for checksum and stale faults. */
  addr: number | null;
  /** A copy failing its checksum, a copy passing it but out of date, a failed device. */
  kind: "checksum" | "stale" | "io";
  foundBy: "read" | "scrub" | "resilver" | "write";
  repaired: boolean;
}

/** What `StrataMirror.snapshot()` returns. */
export interface MirrorSnapshot {
  /** The snapshot's volume id. */
  volume: number;
  /** The in-place compaction of the snapshot (`compactOnSnapshot: "inPlace"`). */
  compacted: CompactReport | null;
  /** Partitions merged into the baseline (`compactOnSnapshot: { keepSnapshots }`). */
  mergedPartitions: number;
  /** Why the configured compaction was not done, if it was not. */
  compactionSkipped: string | null;
}
"#;

/// The store name of leg `i` of mirror `name` (see the module documentation).
pub fn leg_store_name(name: &str, i: usize) -> String {
    format!("{name}.leg{i}")
}

/// A leg's device: its storage, or why there is none to use (the controller then sees a device
/// that fails every I/O and takes the leg out of service).
#[derive(Debug)]
pub(crate) enum LegDevice {
    Ready(AnyStorage),
    Lost(StorageError),
}

impl LegDevice {
    fn ready(&self) -> Result<&AnyStorage, StorageError> {
        match self {
            LegDevice::Ready(storage) => Ok(storage),
            LegDevice::Lost(why) => Err(why.clone()),
        }
    }
}

impl Storage for LegDevice {
    fn kind(&self) -> &'static str {
        match self {
            LegDevice::Ready(storage) => storage.kind(),
            LegDevice::Lost(_) => "missing",
        }
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        self.ready()?.list().await
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        self.ready()?.len(object).await
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        self.ready()?.read_at(object, offset, buf).await
    }

    async fn read_many(&self, requests: &mut [ReadRequest<'_>]) -> Result<(), StorageError> {
        self.ready()?.read_many(requests).await
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        match self {
            LegDevice::Ready(storage) => storage.commit(commit).await,
            LegDevice::Lost(why) => Err(why.clone()),
        }
    }
}

/// What a [`StrataMirror`] holds while it is open.
pub(crate) struct Session {
    /// The controller, under storage management; `None` once closed.
    mirror: Option<Managed<Mirror>>,
    /// Each leg's backend (resolved when its storage opened).
    legs: Vec<BackendKind>,
    /// The secondary's lock, then each leg's; released when the session closes.
    locks: Vec<StoreLock>,
}

impl Session {
    fn mirror(&mut self) -> Result<&mut Managed<Mirror>> {
        self.mirror.as_mut().ok_or_else(|| {
            StrataError::new(
                CODE_CLOSED,
                "the mirror is closed; open it again with StrataMirror.open",
            )
        })
    }
}

/// Parsed `MirrorOptions` (and the `{ name, backend, legs }` of `destroy`).
struct Options {
    name: String,
    backend: BackendKind,
    legs: Vec<BackendKind>,
}

impl Options {
    fn parse(options: &JsValue) -> Result<Self> {
        let name = match convert::optional_string_field(options, "name")? {
            Some(name) if !name.is_empty() => name,
            _ => {
                return Err(StrataError::invalid_argument(
                    "options.name (a non-empty string) is required",
                ))
            }
        };
        let backend = match convert::optional_string_field(options, "backend")? {
            Some(text) => place::parse_backend(&text)?,
            None => BackendKind::Auto,
        };
        let legs = convert::field(options, "legs");
        let bad = || {
            StrataError::invalid_argument(
                "options.legs must be a non-empty array of backends, one per leg, e.g. \
                 [\"opfs\", \"indexeddb\"]",
            )
        };
        if !Array::is_array(&legs) {
            return Err(bad());
        }
        let legs = Array::from(&legs)
            .iter()
            .map(|leg| place::parse_backend(&leg.as_string().ok_or_else(bad)?))
            .collect::<Result<Vec<_>>>()?;
        // The engine's own bound on legs is far above any sensible mirror.
        if legs.is_empty() || legs.len() > 16 {
            return Err(bad());
        }
        Ok(Options {
            name,
            backend,
            legs,
        })
    }

    /// Takes the secondary's lock, then every leg's (`LOCKED` if any is held; those taken so
    /// far are released).
    async fn lock(&self) -> Result<Vec<StoreLock>> {
        let mut locks = Vec::with_capacity(1 + self.legs.len());
        for i in 0..=self.legs.len() {
            let name = match i {
                0 => self.name.clone(),
                _ => leg_store_name(&self.name, i - 1),
            };
            match place::lock(&name).await {
                Ok(lock) => locks.push(lock),
                Err(e) => {
                    release_all(locks).await;
                    return Err(e);
                }
            }
        }
        Ok(locks)
    }
}

/// Releases locks and waits until they can be taken again (a retry right after a failed open
/// or a close must not fail with `LOCKED`).
async fn release_all(locks: Vec<StoreLock>) {
    for lock in locks {
        place::release(lock).await;
    }
}

/// `compactOnSnapshot`: absent, `"none"`, `"inPlace"` or `{ keepSnapshots: n }`.
fn snapshot_compaction(options: &JsValue) -> Result<Option<SnapshotCompaction>> {
    let value = convert::field(options, "compactOnSnapshot");
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    match value.as_string().as_deref() {
        Some("none") => return Ok(None),
        Some("inPlace") => return Ok(Some(SnapshotCompaction::InPlace)),
        _ => {}
    }
    if value.is_object() {
        if let Some(keep) = convert::optional_u64_field(&value, "keepSnapshots")? {
            let keep = usize::try_from(keep)
                .map_err(|_| StrataError::invalid_argument("keepSnapshots is too large"))?;
            return Ok(Some(SnapshotCompaction::MergeOldest { keep }));
        }
    }
    Err(StrataError::invalid_argument(
        "compactOnSnapshot must be \"none\", \"inPlace\" or { keepSnapshots: n }",
    ))
}

/// Opens leg `i`'s storage afresh, empty: whatever it held is deleted first.
async fn wipe_leg(name: &str, i: usize, backend: BackendKind) -> Result<(AnyStorage, BackendKind)> {
    let store = leg_store_name(name, i);
    crate::backend::destroy_backend(backend, &store).await?;
    place::open_storage(backend, &store, false).await
}

/// Opens (or creates) the secondary and every leg of an [`Options`] whose locks are held;
/// returns the controller, the legs' backends and the secondary's.
async fn open_parts(
    parsed: &Options,
    block_size: Option<u64>,
    blocks: Option<u64>,
    mirror_options: MirrorOptions,
) -> Result<(Mirror, Vec<BackendKind>, BackendKind)> {
    let (secondary, backend) = place::open_storage(parsed.backend, &parsed.name, false).await?;
    let exists = secondary
        .list()
        .await?
        .iter()
        .any(|object| strata_engine::format::parse_meta_object(object).is_some());
    let mut devices = Vec::with_capacity(parsed.legs.len());
    let mut legs = Vec::with_capacity(parsed.legs.len());
    for (i, &kind) in parsed.legs.iter().enumerate() {
        let store = leg_store_name(&parsed.name, i);
        let (device, chosen) = match crate::backend::open_backend(kind, &store).await {
            Ok((storage, chosen)) => match storage.len(HEADER_OBJECT).await {
                Ok(None) if exists => (
                    LegDevice::Lost(StorageError::Io {
                        object: store,
                        message: "the leg's storage holds no primary (destroyed, or never \
                                  filled): replace or rebuild it"
                            .into(),
                    }),
                    chosen,
                ),
                _ => (LegDevice::Ready(storage), chosen),
            },
            Err(e) if exists => (LegDevice::Lost(e), kind),
            Err(e) => return Err(e.into()),
        };
        devices.push(device);
        legs.push(chosen);
    }
    let mirror = if exists {
        let store = Store::open(secondary, place::clock()).await?;
        for (asked, actual, what) in [
            (block_size, u64::from(store.block_size()), "-byte blocks"),
            (blocks, store.block_count(), " blocks"),
        ] {
            if asked.is_some_and(|asked| asked != actual) {
                return Err(StrataError::invalid_argument(format!(
                    "the mirror exists with {actual}{what}, not {}",
                    asked.unwrap_or_default()
                )));
            }
        }
        Mirror::attach(store, devices, mirror_options).await?
    } else {
        let block_count = blocks.ok_or_else(|| {
            StrataError::invalid_argument(format!(
                "there is no mirror {:?} yet: give options.blocks to create it",
                parsed.name
            ))
        })?;
        let block_size = u32::try_from(block_size.unwrap_or(4096)).map_err(|_| {
            StrataError::invalid_argument("blockSize must be a power of two, 512..65536")
        })?;
        // 64 random bits to tell stores apart (in copy streams and leg headers).
        let half = || (js_sys::Math::random() * 4_294_967_296.0) as u64 & 0xffff_ffff;
        let create = CreateOptions {
            block_size,
            block_count,
            store_id: Some((half() << 32) | half()),
        };
        Mirror::create(secondary, devices, create, mirror_options, place::clock()).await?
    };
    Ok((mirror, legs, backend))
}

/// The mirror (the redundant system) in this thread (a dedicated worker, for OPFS): a secondary
/// store and a primary mirrored on several legs. Created by [`StrataMirror::open`]; see the
/// module documentation for where things live and `MirrorOptions` in the TypeScript declarations.
///
/// Its methods are a store's (`volume_api.rs`), done through the controller: a write goes to
/// the secondary at once and to every leg at the next `sync()`; `sync()` makes the secondary
/// durable, then every leg in service (a leg that fails is taken out of service, see
/// `status()`, not reported as an error); `read()` reads the live volume from the primary,
/// verified block by block (a bad copy is taken from another leg or the secondary and
/// rewritten; a block with no good copy anywhere fails with `CORRUPT`); reads of history and
/// the log come from the secondary; compactions, merges, deletions and rollbacks sync first
/// and keep the primary in step.
#[wasm_bindgen]
#[derive(Clone)]
// A handle, as a store's (see `promise.rs`).
pub struct StrataMirror(Rc<MirrorState>);

/// What a [`StrataMirror`] holds.
struct MirrorState {
    session: Exclusive<Session>,
    name: String,
    backend: BackendKind,
}

// write, read, history and storage management: shared with `StrataStore` (see `volume_api.rs`
// and `policy_api.rs`; the feature `mirror` implies `policies`).
volume_api::shared_methods!(StrataMirror);
crate::policy_api::policy_methods!(StrataMirror);

impl Binding for StrataMirror {
    type Session = Session;
    type Volume = Mirror;

    fn session(&self) -> &Exclusive<Session> {
        &self.0.session
    }

    fn volume(session: &mut Session) -> Result<&mut Managed<Mirror>> {
        session.mirror()
    }

    async fn quota_free_bytes(&self) -> Option<u64> {
        match self.0.backend {
            BackendKind::Memory | BackendKind::Auto => None,
            BackendKind::Opfs | BackendKind::IndexedDb => place::quota_free_bytes().await,
        }
    }
}

impl StrataMirror {
    /// [`Self::js_open`] for Rust callers (the wasm-bindgen tests).
    pub async fn open(options: JsValue) -> Result<StrataMirror> {
        let parsed = Options::parse(&options)?;
        let block_size = convert::optional_u64_field(&options, "blockSize")?;
        let blocks = convert::optional_u64_field(&options, "blocks")?;
        let mut mirror_options = MirrorOptions::new();
        mirror_options.compact_on_snapshot = snapshot_compaction(&options)?;
        let automatic =
            convert::optional_bool_field(&options, "automaticPolicies")?.unwrap_or(true);
        let locks = parsed.lock().await?;
        let opened = match open_parts(&parsed, block_size, blocks, mirror_options).await {
            Ok((mirror, legs, backend)) => Managed::open(mirror, automatic)
                .await
                .map(|mirror| (mirror, legs, backend))
                .map_err(StrataError::from),
            Err(e) => Err(e),
        };
        match opened {
            Ok((mirror, legs, backend)) => Ok(StrataMirror(Rc::new(MirrorState {
                session: Exclusive::new(Session {
                    mirror: Some(mirror),
                    legs,
                    locks,
                }),
                name: parsed.name,
                backend,
            }))),
            Err(e) => {
                release_all(locks).await;
                Err(e)
            }
        }
    }

    /// [`Self::js_destroy`] for Rust callers (the wasm-bindgen tests).
    pub async fn destroy(options: JsValue) -> Result<()> {
        let parsed = Options::parse(&options)?;
        let locks = parsed.lock().await?;
        let mut outcome = crate::backend::destroy_backend(parsed.backend, &parsed.name).await;
        for (i, &kind) in parsed.legs.iter().enumerate() {
            let destroyed =
                crate::backend::destroy_backend(kind, &leg_store_name(&parsed.name, i)).await;
            outcome = outcome.and(destroyed);
        }
        for lock in locks {
            place::release(lock).await;
        }
        Ok(outcome?)
    }

    /// [`Self::js_snapshot`] for Rust callers (the wasm-bindgen tests).
    pub async fn snapshot(&self, label: Option<String>) -> Result<JsValue> {
        let mut session = self.0.session.lock().await;
        let mirror = session.mirror()?;
        // The mirror's own snapshot (with its compaction report), then observed by the policies.
        let report = mirror.volume_mut().snapshot(label.as_deref()).await?;
        mirror.observe(Operation::Snapshot).await?;
        convert::to_js(&report)
    }

    /// [`Self::js_info`] for Rust callers (the wasm-bindgen tests).
    pub async fn info(&self) -> Result<JsValue> {
        let mut session = self.0.session.lock().await;
        let info = session.mirror()?.info();
        let legs: Vec<&str> = session.legs.iter().map(|b| b.as_str()).collect();
        convert::to_js(&MirrorInfo {
            name: &self.0.name,
            info,
            legs,
        })
    }

    /// [`Self::js_status`] for Rust callers (the wasm-bindgen tests).
    pub async fn status(&self) -> Result<JsValue> {
        let mut session = self.0.session.lock().await;
        let mirror = session.mirror()?;
        let status = convert::to_js(&mirror.status())?;
        // Each leg with where it lives: its backend and its store's name.
        let legs = Reflect::get(&status, &JsValue::from_str("legs")).map_err(|_| shape_error())?;
        for (i, leg) in Array::from(&legs).iter().enumerate() {
            let leg = convert::with_property(leg, "backend", backend_of(&session.legs, i));
            convert::with_property(leg, "store", leg_store_name(&self.0.name, i));
        }
        Ok(status)
    }

    /// [`Self::js_scrub`] for Rust callers (the wasm-bindgen tests).
    pub async fn scrub(&self) -> Result<JsValue> {
        let mut session = self.0.session.lock().await;
        let report = convert::to_js(&session.mirror()?.scrub().await?)?;
        let legs = Reflect::get(&report, &JsValue::from_str("legs")).map_err(|_| shape_error())?;
        for (i, leg) in Array::from(&legs).iter().enumerate() {
            convert::with_property(leg, "backend", backend_of(&session.legs, i));
        }
        Ok(report)
    }

    /// [`Self::js_replace`] for Rust callers (the wasm-bindgen tests).
    pub async fn replace(&self, leg: f64) -> Result<JsValue> {
        let mut session = self.0.session.lock().await;
        session.mirror()?;
        let count = session.legs.len();
        // Formatted as an integer: a float in a message would bring core's float printing in.
        let leg = convert::to_u64(leg, "leg")?;
        let i = usize::try_from(leg)
            .ok()
            .filter(|&i| i < count)
            .ok_or_else(|| {
                StrataError::invalid_argument(format!(
                    "there is no leg {leg}: the mirror has {count} legs, numbered from 0"
                ))
            })?;
        // The old device goes first (dropping it closes its handles or connection), so that its
        // storage can be deleted.
        let _ = session.mirror()?.detach(i);
        let (storage, backend) = wipe_leg(&self.0.name, i, session.legs[i]).await?;
        session.legs[i] = backend;
        let report = session
            .mirror()?
            .replace(i, LegDevice::Ready(storage))
            .await?;
        resilver_report(&report, &session.legs)
    }

    /// [`Self::js_rebuild`] for Rust callers (the wasm-bindgen tests).
    pub async fn rebuild(&self) -> Result<Array> {
        let mut session = self.0.session.lock().await;
        let count = session.legs.len();
        for i in 0..count {
            let _ = session.mirror()?.detach(i);
        }
        let mut devices = Vec::with_capacity(count);
        for i in 0..count {
            let (storage, backend) = wipe_leg(&self.0.name, i, session.legs[i]).await?;
            session.legs[i] = backend;
            devices.push(LegDevice::Ready(storage));
        }
        let reports = session.mirror()?.rebuild_primary(devices).await?;
        reports
            .iter()
            .map(|r| resilver_report(r, &session.legs))
            .collect()
    }

    /// [`Self::js_events`] for Rust callers (the wasm-bindgen tests).
    pub async fn events(&self) -> Result<Array> {
        let mut session = self.0.session.lock().await;
        convert::to_js_array(&session.mirror()?.take_events())
    }

    /// [`Self::js_close`] for Rust callers (the wasm-bindgen tests).
    pub async fn close(&self) -> Result<()> {
        let mut session = self.0.session.lock().await;
        // The storages are released (handles, connections) when what `close` returns is
        // dropped, or with the controller if it fails; the locks go after them.
        let closed = match session.mirror.take() {
            Some(mirror) => mirror.close().await.map(drop),
            None => Ok(()),
        };
        for lock in std::mem::take(&mut session.locks) {
            place::release(lock).await;
        }
        Ok(closed?)
    }
}

#[wasm_bindgen]
impl StrataMirror {
    /// Opens the mirror `options.name`, creating it (with `options.blocks` blocks of
    /// `options.blockSize` bytes) if its secondary does not exist. Takes the locks of the
    /// secondary and of every leg first: `LOCKED` if any is held. Opening an existing mirror
    /// brings every leg in line with the secondary (see `status().legs[i].open`); a leg whose
    /// storage holds no primary is left out of service (see the module documentation).
    #[wasm_bindgen(js_name = open, unchecked_return_type = "Promise<StrataMirror>")]
    pub fn js_open(
        #[wasm_bindgen(unchecked_param_type = "MirrorOptions")] options: JsValue,
    ) -> Promise {
        promise(Self::open(options))
    }

    /// Deletes everything the mirror `options.name` holds: the secondary on `options.backend`
    /// and leg `i` on `options.legs[i]` (`"auto"`: on every backend). Takes every lock first, so
    /// an open mirror (or an open leg) fails with `LOCKED`. Missing parts are not an error.
    #[wasm_bindgen(js_name = destroy, unchecked_return_type = "Promise<void>")]
    pub fn js_destroy(
        #[wasm_bindgen(
            unchecked_param_type = "{ name: string; backend?: MirrorOptions[\"backend\"]; legs: MirrorOptions[\"legs\"] }"
        )]
        options: JsValue,
    ) -> Promise {
        promise(Self::destroy(options))
    }

    /// The mirror's name (the secondary's store name).
    #[wasm_bindgen(getter)]
    pub fn name(&self) -> String {
        self.0.name.clone()
    }

    /// The secondary's backend: `"memory"`, `"opfs"` or `"indexeddb"` (never `"auto"`).
    #[wasm_bindgen(getter, unchecked_return_type = "ResolvedBackend")]
    pub fn backend(&self) -> String {
        self.0.backend.as_str().to_string()
    }

    /// Syncs and takes a snapshot of the secondary labelled `label`, then does the
    /// `compactOnSnapshot` compaction. Durable when it resolves.
    #[wasm_bindgen(js_name = snapshot, unchecked_return_type = "Promise<MirrorSnapshot>")]
    pub fn js_snapshot(&self, label: Option<String>) -> Promise {
        let this = self.clone();
        promise(async move { this.snapshot(label).await })
    }

    /// Facts about the secondary, with the mirror's name and the legs' backends.
    #[wasm_bindgen(js_name = info, unchecked_return_type = "Promise<MirrorInfo>")]
    pub fn js_info(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.info().await })
    }

    /// The state of every leg and what has been found and fixed since the mirror was opened.
    #[wasm_bindgen(js_name = status, unchecked_return_type = "Promise<MirrorStatus>")]
    pub fn js_status(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.status().await })
    }

    /// Verifies every block of every leg in service against its checksum, the other legs and
    /// the secondary's head, and rewrites every bad copy it can. Syncs first.
    #[wasm_bindgen(js_name = scrub, unchecked_return_type = "Promise<MirrorScrubReport>")]
    pub fn js_scrub(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.scrub().await })
    }

    /// Wipes leg `leg`'s storage and resilvers it from the other legs in service, or from the
    /// secondary; the leg is then in service again. For a leg that is degraded, or whose storage
    /// is suspect.
    #[wasm_bindgen(js_name = replace, unchecked_return_type = "Promise<ResilverReport>")]
    pub fn js_replace(&self, leg: f64) -> Promise {
        let this = self.clone();
        promise(async move { this.replace(leg).await })
    }

    /// Rebuilds the whole primary from the secondary's head: every leg's storage is wiped and
    /// filled again. For when every leg was lost (or to put a mirror beside a store made with
    /// `StrataStore`). Returns one report per leg.
    #[wasm_bindgen(js_name = rebuild, unchecked_return_type = "Promise<ResilverReport[]>")]
    pub fn js_rebuild(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.rebuild().await })
    }

    /// The faults found on the legs since the last call (reads, scrubs, resilvers, syncs),
    /// oldest first; at most 65536 are kept.
    #[wasm_bindgen(js_name = events, unchecked_return_type = "Promise<FaultEvent[]>")]
    pub fn js_events(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.events().await })
    }

    /// Syncs, closes the secondary and every leg, and releases the locks. Later calls fail with
    /// code `CLOSED`; closing twice is allowed.
    #[wasm_bindgen(js_name = close, unchecked_return_type = "Promise<void>")]
    pub fn js_close(&self) -> Promise {
        let this = self.clone();
        promise(async move { this.close().await })
    }
}

// ----- values going out -------------------------------------------------------------------------

/// What `info()` returns: the secondary's `StoreInfo`, the mirror's name and the legs' backends.
#[derive(serde::Serialize)]
struct MirrorInfo<'a> {
    name: &'a str,
    #[serde(flatten)]
    info: strata_engine::StoreInfo,
    legs: Vec<&'a str>,
}

fn backend_of(legs: &[BackendKind], i: usize) -> &'static str {
    legs.get(i).map_or("auto", |b| b.as_str())
}

/// A leg's resilver report, with its backend.
fn resilver_report(report: &ResilverReport, legs: &[BackendKind]) -> Result<JsValue> {
    let object = convert::to_js(report)?;
    Ok(convert::with_property(
        object,
        "backend",
        backend_of(legs, report.leg),
    ))
}

/// A serialized report lost a field the engine's type has (cannot happen).
fn shape_error() -> StrataError {
    StrataError::new(CODE_INVALID_STATE, "a mirror report lacks its legs")
}
