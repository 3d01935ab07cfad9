//! The JavaScript operations a store and a mirror share, written once over [`Volume`], and
//! their storage management: each class holds its volume as a [`Managed`] one, so the policy
//! methods (`setPolicy`, `runPolicies`, `audit`, ...) are written once here too.
//!
//! wasm-bindgen exports no generics, so [`crate::StrataStore`] and [`crate::StrataMirror`] each
//! keep a one-line exported method that calls the function here; what differs between them
//! (whether the volume may change, what a failure does to the session) is the [`Binding`]
//! each implements.

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

use js_sys::{Array, Function};
use strata_engine::{LogCursor, Managed, Volume};
use wasm_bindgen::prelude::*;

use crate::convert;
use crate::error::StrataError;
use crate::exclusive::Exclusive;

type Result<T, E = StrataError> = std::result::Result<T, E>;

/// A position in a store's or a mirror's log; see `cursor()`.
#[wasm_bindgen]
#[derive(Clone)]
pub struct StrataCursor {
    /// For a mirror, a position in its secondary's log. Shared with the promise of a
    /// `nextEntry` call in progress.
    pub(crate) cursor: Rc<RefCell<LogCursor>>,
}

impl StrataCursor {
    pub(crate) fn new(cursor: LogCursor) -> Self {
        StrataCursor {
            cursor: Rc::new(RefCell::new(cursor)),
        }
    }
}

#[wasm_bindgen]
impl StrataCursor {
    /// The lowest sequence number the cursor may still return.
    #[wasm_bindgen(getter, js_name = nextSeq)]
    pub fn next_seq(&self) -> f64 {
        self.cursor.borrow().next_seq() as f64
    }
}

/// How the shared operations reach an exported class's open volume.
pub(crate) trait Binding {
    /// What the class holds while open.
    type Session;
    /// The volume inside it (under storage management).
    type Volume: Volume;

    /// The session, taken in turns (see `exclusive.rs`).
    fn session(&self) -> &Exclusive<Self::Session>;

    /// The open volume (an error once closed, or while it is busy otherwise).
    fn volume(session: &mut Self::Session) -> Result<&mut Managed<Self::Volume>>;

    /// The origin's free quota for `quota_free_bytes` thresholds (`None`: not known, e.g. in
    /// memory).
    #[cfg(feature = "policies")]
    fn quota_free_bytes(&self) -> impl Future<Output = Option<u64>> {
        crate::place::quota_free_bytes()
    }

    /// Fails with `READ_ONLY` if the volume may not change.
    fn check_writable(&self) -> Result<()> {
        Ok(())
    }

    /// True if the volume was opened as a read-only view (`sync` then has nothing to do).
    fn read_only(&self) -> bool {
        false
    }

    /// The outcome of a change, after whatever a failure calls for (see
    /// `StrataStore::settle`).
    fn settle<T>(
        &self,
        session: &mut Self::Session,
        outcome: strata_engine::Result<T>,
    ) -> impl Future<Output = Result<T>> {
        let _ = session;
        std::future::ready(outcome.map_err(StrataError::from))
    }
}

pub(crate) async fn write<B: Binding>(b: &B, addr: f64, data: Vec<u8>) -> Result<f64> {
    b.check_writable()?;
    let addr = convert::to_u64(addr, "addr")?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.write(addr, &data).await;
    Ok(b.settle(&mut session, outcome).await? as f64)
}

pub(crate) async fn write_batch<B: Binding>(b: &B, writes: JsValue) -> Result<f64> {
    b.check_writable()?;
    let owned = convert::write_batch(&writes)?;
    let writes: Vec<(u64, &[u8])> = owned.iter().map(|(a, d)| (*a, d.as_slice())).collect();
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.write_batch(&writes).await;
    Ok(b.settle(&mut session, outcome).await? as f64)
}

pub(crate) async fn write_zeroes<B: Binding>(b: &B, addr: f64, blocks: f64) -> Result<f64> {
    b.check_writable()?;
    let addr = convert::to_u64(addr, "addr")?;
    let blocks = convert::to_u64(blocks, "blocks")?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.write_zeroes(addr, blocks).await;
    Ok(b.settle(&mut session, outcome).await? as f64)
}

pub(crate) async fn sync<B: Binding>(b: &B) -> Result<()> {
    let mut session = b.session().lock().await;
    if b.read_only() {
        return Ok(());
    }
    let outcome = B::volume(&mut session)?.sync().await;
    b.settle(&mut session, outcome).await
}

pub(crate) async fn read<B: Binding>(b: &B, addr: f64, blocks: f64) -> Result<Vec<u8>> {
    let addr = convert::to_u64(addr, "addr")?;
    let blocks = convert::to_u64(blocks, "blocks")?;
    let mut session = b.session().lock().await;
    Ok(B::volume(&mut session)?.read(addr, blocks).await?)
}

pub(crate) async fn read_at<B: Binding>(
    b: &B,
    volume: f64,
    addr: f64,
    blocks: f64,
) -> Result<Vec<u8>> {
    let volume = convert::to_volume(volume, "volume")?;
    let addr = convert::to_u64(addr, "addr")?;
    let blocks = convert::to_u64(blocks, "blocks")?;
    let mut session = b.session().lock().await;
    Ok(B::volume(&mut session)?
        .read_at(volume, addr, blocks)
        .await?)
}

pub(crate) async fn volumes<B: Binding>(b: &B) -> Result<Array> {
    let mut session = b.session().lock().await;
    let volumes = B::volume(&mut session)?.volumes();
    convert::to_js_array(&volumes)
}

pub(crate) async fn space<B: Binding>(b: &B) -> Result<Array> {
    let mut session = b.session().lock().await;
    let space = B::volume(&mut session)?.space();
    convert::to_js_array(&space)
}

pub(crate) async fn cursor<B: Binding>(b: &B, start: JsValue) -> Result<StrataCursor> {
    let start = convert::cursor_start(&start)?;
    let mut session = b.session().lock().await;
    let cursor = B::volume(&mut session)?.cursor(start)?;
    Ok(StrataCursor::new(cursor))
}

pub(crate) async fn next_entry<B: Binding>(
    b: &B,
    cursor: &StrataCursor,
    with_data: bool,
) -> Result<JsValue> {
    let entries = next_entries(b, cursor, 1.0, with_data).await?;
    // `null` at the end of the log, as the type says (`Array::get` past the end gives
    // `undefined`).
    Ok(match entries.length() {
        0 => JsValue::NULL,
        _ => entries.get(0),
    })
}

pub(crate) async fn next_entries<B: Binding>(
    b: &B,
    cursor: &StrataCursor,
    max: f64,
    with_data: bool,
) -> Result<Array> {
    let max = convert::to_u64(max, "max")?;
    let mut session = b.session().lock().await;
    let store = B::volume(&mut session)?.store();
    convert::next_entries(store, &cursor.cursor, max, with_data).await
}

pub(crate) async fn compact<B: Binding>(
    b: &B,
    volume: f64,
    on_progress: Option<Function>,
) -> Result<JsValue> {
    b.check_writable()?;
    let volume = convert::to_volume(volume, "volume")?;
    let mut session = b.session().lock().await;
    let mut progress = convert::progress_callback(&on_progress);
    let outcome = B::volume(&mut session)?
        .compact(volume, &mut progress)
        .await;
    let report = b.settle(&mut session, outcome).await?;
    convert::to_js(&report)
}

pub(crate) async fn merge<B: Binding>(
    b: &B,
    volume: f64,
    on_progress: Option<Function>,
) -> Result<f64> {
    b.check_writable()?;
    let volume = convert::to_volume(volume, "volume")?;
    let mut session = b.session().lock().await;
    let mut progress = convert::progress_callback(&on_progress);
    let outcome = B::volume(&mut session)?.merge(volume, &mut progress).await;
    Ok(f64::from(b.settle(&mut session, outcome).await?))
}

pub(crate) async fn delete_volume<B: Binding>(b: &B, volume: f64) -> Result<JsValue> {
    b.check_writable()?;
    let volume = convert::to_volume(volume, "volume")?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?.delete_volume(volume).await;
    let report = b.settle(&mut session, outcome).await?;
    convert::to_js(&report)
}

pub(crate) async fn rollback<B: Binding>(b: &B, volume: f64, label: Option<String>) -> Result<f64> {
    b.check_writable()?;
    let volume = convert::to_volume(volume, "volume")?;
    let mut session = b.session().lock().await;
    let outcome = B::volume(&mut session)?
        .rollback(volume, label.as_deref())
        .await;
    Ok(b.settle(&mut session, outcome).await?.0 as f64)
}

pub(crate) async fn diff<B: Binding>(b: &B, a: f64, c: f64) -> Result<Array> {
    let a = convert::to_volume(a, "a")?;
    let c = convert::to_volume(c, "b")?;
    let mut session = b.session().lock().await;
    let extents = B::volume(&mut session)?.diff(a, c).await?;
    convert::diff_extents(&extents)
}

/// The exported methods a store and a mirror share, each the function of the same name above:
/// wasm-bindgen exports no generics, so each class gets these one-line methods from here, and
/// keeps only what is its own (`open`, `snapshot`, `info`, `close`, ...).
macro_rules! shared_methods {
    ($class:ident) => {
        impl $class {
            /// [`Self::js_write`] for Rust callers (the wasm-bindgen tests).
            pub async fn write(&self, addr: f64, data: Vec<u8>) -> Result<f64> {
                $crate::volume_api::write(self, addr, data).await
            }

            /// [`Self::js_write_batch`] for Rust callers (the wasm-bindgen tests).
            pub async fn write_batch(&self, writes: JsValue) -> Result<f64> {
                $crate::volume_api::write_batch(self, writes).await
            }

            /// [`Self::js_write_zeroes`] for Rust callers (the wasm-bindgen tests).
            pub async fn write_zeroes(&self, addr: f64, blocks: f64) -> Result<f64> {
                $crate::volume_api::write_zeroes(self, addr, blocks).await
            }

            /// [`Self::js_sync`] for Rust callers (the wasm-bindgen tests).
            pub async fn sync(&self) -> Result<()> {
                $crate::volume_api::sync(self).await
            }

            /// [`Self::js_read`] for Rust callers (the wasm-bindgen tests).
            pub async fn read(&self, addr: f64, blocks: f64) -> Result<Vec<u8>> {
                $crate::volume_api::read(self, addr, blocks).await
            }

            /// [`Self::js_read_at`] for Rust callers (the wasm-bindgen tests).
            pub async fn read_at(&self, volume: f64, addr: f64, blocks: f64) -> Result<Vec<u8>> {
                $crate::volume_api::read_at(self, volume, addr, blocks).await
            }

            /// [`Self::js_volumes`] for Rust callers (the wasm-bindgen tests).
            pub async fn volumes(&self) -> Result<Array> {
                $crate::volume_api::volumes(self).await
            }

            /// [`Self::js_cursor`] for Rust callers (the wasm-bindgen tests).
            pub async fn cursor(&self, start: JsValue) -> Result<StrataCursor> {
                $crate::volume_api::cursor(self, start).await
            }

            /// [`Self::js_next_entry`] for Rust callers (the wasm-bindgen tests).
            pub async fn next_entry(&self, cursor: &StrataCursor, with_data: bool) -> Result<JsValue> {
                $crate::volume_api::next_entry(self, cursor, with_data).await
            }

            /// [`Self::js_next_entries`] for Rust callers (the wasm-bindgen tests).
            pub async fn next_entries(&self, cursor: &StrataCursor, max: f64, with_data: bool) -> Result<Array> {
                $crate::volume_api::next_entries(self, cursor, max, with_data).await
            }

            /// [`Self::js_compact`] for Rust callers (the wasm-bindgen tests).
            pub async fn compact(&self, volume: f64, on_progress: Option<Function>) -> Result<JsValue> {
                $crate::volume_api::compact(self, volume, on_progress).await
            }

            /// [`Self::js_merge`] for Rust callers (the wasm-bindgen tests).
            pub async fn merge(&self, volume: f64, on_progress: Option<Function>) -> Result<f64> {
                $crate::volume_api::merge(self, volume, on_progress).await
            }

            /// [`Self::js_delete_volume`] for Rust callers (the wasm-bindgen tests).
            pub async fn delete_volume(&self, volume: f64) -> Result<JsValue> {
                $crate::volume_api::delete_volume(self, volume).await
            }

            /// [`Self::js_rollback`] for Rust callers (the wasm-bindgen tests).
            pub async fn rollback(&self, volume: f64, label: Option<String>) -> Result<f64> {
                $crate::volume_api::rollback(self, volume, label).await
            }

            /// [`Self::js_diff`] for Rust callers (the wasm-bindgen tests).
            pub async fn diff(&self, a: f64, b: f64) -> Result<Array> {
                $crate::volume_api::diff(self, a, b).await
            }

            /// [`Self::js_space`] for Rust callers (the wasm-bindgen tests).
            pub async fn space(&self) -> Result<Array> {
                $crate::volume_api::space(self).await
            }
        }

        #[wasm_bindgen]
        impl $class {
            /// Writes whole blocks from block `addr`; returns the entry's sequence number. Durable after
            /// the next `sync()`.
            #[wasm_bindgen(js_name = write, unchecked_return_type = "Promise<number>")]
            pub fn js_write(&self, addr: f64, data: Vec<u8>) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.write(addr, data).await })
            }

            /// Writes several entries as one atomic record (`[[addr, Uint8Array], ...]`): after a crash
            /// all of them are there or none. Returns the first entry's sequence number.
            #[wasm_bindgen(js_name = writeBatch, unchecked_return_type = "Promise<number>")]
            pub fn js_write_batch(&self, #[wasm_bindgen(unchecked_param_type = "Array<[number, Uint8Array]>")]
                writes: JsValue) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.write_batch(writes).await })
            }

            /// Makes `blocks` blocks from `addr` read as zeros (trim, discard): recorded as zero
            /// extents, metadata only, for the blocks that do not read as zeros already; resolves to
            /// how many those were. Durable after the next `sync()`.
            #[wasm_bindgen(js_name = writeZeroes, unchecked_return_type = "Promise<number>")]
            pub fn js_write_zeroes(&self, addr: f64, blocks: f64) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.write_zeroes(addr, blocks).await })
            }

            /// The durability point: when the promise resolves, every write so far survives a crash
            /// (IndexedDB: a `strict` transaction; OPFS: `flush()`).
            #[wasm_bindgen(js_name = sync, unchecked_return_type = "Promise<void>")]
            pub fn js_sync(&self) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.sync().await })
            }

            /// Reads `blocks` blocks from block `addr` of the live volume.
            #[wasm_bindgen(js_name = read, unchecked_return_type = "Promise<Uint8Array>")]
            pub fn js_read(&self, addr: f64, blocks: f64) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.read(addr, blocks).await })
            }

            /// Reads `blocks` blocks from block `addr` of volume `volume` (a snapshot, the baseline `0`
            /// or the head).
            #[wasm_bindgen(js_name = readAt, unchecked_return_type = "Promise<Uint8Array>")]
            pub fn js_read_at(&self, volume: f64, addr: f64, blocks: f64) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.read_at(volume, addr, blocks).await })
            }

            /// Every volume: the baseline first, then the partitions in creation order.
            #[wasm_bindgen(js_name = volumes, unchecked_return_type = "Promise<VolumeInfo[]>")]
            pub fn js_volumes(&self) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.volumes().await })
            }

            /// A cursor over the log in sequence order, for `nextEntry`.
            #[wasm_bindgen(js_name = cursor, unchecked_return_type = "Promise<StrataCursor>")]
            pub fn js_cursor(&self, #[wasm_bindgen(unchecked_param_type = "CursorStart | undefined")] start: JsValue) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.cursor(start).await })
            }

            /// The entry at the cursor (advancing it), or `null` at the end of the log. With `withData`
            /// the entry's blocks are read and verified.
            #[wasm_bindgen(js_name = nextEntry, unchecked_return_type = "Promise<LogEntry | null>")]
            pub fn js_next_entry(&self, cursor: &StrataCursor, with_data: bool) -> ::js_sys::Promise {
                let this = self.clone();
                let cursor = cursor.clone();
                $crate::promise::promise(async move { this.next_entry(&cursor, with_data).await })
            }

            /// Up to `max` entries from the cursor (fewer at the end of the log; none past it).
            #[wasm_bindgen(js_name = nextEntries, unchecked_return_type = "Promise<LogEntry[]>")]
            pub fn js_next_entries(&self, cursor: &StrataCursor, max: f64, with_data: bool) -> ::js_sys::Promise {
                let this = self.clone();
                let cursor = cursor.clone();
                $crate::promise::promise(async move { this.next_entries(&cursor, max, with_data).await })
            }

            /// In-place compaction of snapshot `volume`. `onProgress(done, total)` may return `false` to
            /// cancel.
            #[wasm_bindgen(js_name = compact, unchecked_return_type = "Promise<CompactReport>")]
            pub fn js_compact(&self, volume: f64, #[wasm_bindgen(unchecked_optional_param_type = "ProgressCallback")]
                on_progress: Option<Function>) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.compact(volume, on_progress).await })
            }

            /// Folds the oldest partitions, up to and including snapshot `volume`, into the baseline.
            /// Returns the number of partitions merged.
            #[wasm_bindgen(js_name = merge, unchecked_return_type = "Promise<number>")]
            pub fn js_merge(&self, volume: f64, #[wasm_bindgen(unchecked_optional_param_type = "ProgressCallback")]
                on_progress: Option<Function>) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.merge(volume, on_progress).await })
            }

            /// Deletes snapshot `volume` (its identifier disappears; what descendants need stays).
            #[wasm_bindgen(js_name = deleteVolume, unchecked_return_type = "Promise<CompactReport>")]
            pub fn js_delete_volume(&self, volume: f64) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.delete_volume(volume).await })
            }

            /// Rolls the live volume back to `volume`, keeping the current head as a snapshot labelled
            /// `label` (default `"before-rollback"`). Returns the new head's identifier.
            #[wasm_bindgen(js_name = rollback, unchecked_return_type = "Promise<number>")]
            pub fn js_rollback(&self, volume: f64, label: Option<String>) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.rollback(volume, label).await })
            }

            /// The block extents whose contents differ between volumes `a` and `b`.
            #[wasm_bindgen(js_name = diff, unchecked_return_type = "Promise<Extent[]>")]
            pub fn js_diff(&self, a: f64, b: f64) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.diff(a, b).await })
            }

            /// Space accounting for every partition.
            #[wasm_bindgen(js_name = space, unchecked_return_type = "Promise<SpaceInfo[]>")]
            pub fn js_space(&self) -> ::js_sys::Promise {
                let this = self.clone();
                $crate::promise::promise(async move { this.space().await })
            }
        }
    };
}
pub(crate) use shared_methods;
