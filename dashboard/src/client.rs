//! A typed Rust wrapper over the npm package's Promise client (`wasm/js/client.js`), which
//! `www/main.js` imports and hands over as the global `strataBridge` = `{ open, destroy,
//! importImage, importStream, openMirror }`. The dashboard therefore drives the engine exactly
//! as an embedding page does: in the package's module worker, through messages.
//!
//! Results are plain JS objects; they are read with serde-wasm-bindgen into the engine's boundary
//! types (the ones the worker wrote them from) and the serde types below. Every
//! rejection becomes a [`ClientError`] carrying the `StrataError`'s stable `code`.

use std::fmt;
use std::rc::Rc;

use gloo_events::EventListener;
use js_sys::{Array, Function, Object, Promise, Reflect, Uint8Array};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;

/// A failure reported by the client: `code` is `StrataError.code` (e.g. `LOCKED`,
/// `UNKNOWN_VOLUME`, `CANCELLED`), or `DASHBOARD` for a failure of this wrapper itself.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientError {
    pub code: String,
    pub message: String,
}

impl ClientError {
    pub fn dashboard(message: impl Into<String>) -> Self {
        ClientError {
            code: "DASHBOARD".into(),
            message: message.into(),
        }
    }

    fn from_js(error: &JsValue) -> Self {
        let text = |key: &str| {
            Reflect::get(error, &JsValue::from_str(key))
                .ok()
                .and_then(|v| v.as_string())
        };
        match (text("code"), text("message")) {
            (code, Some(message)) => ClientError {
                code: code.unwrap_or_else(|| "ERROR".into()),
                message,
            },
            (code, None) => ClientError {
                code: code.unwrap_or_else(|| "ERROR".into()),
                message: error.as_string().unwrap_or_else(|| format!("{error:?}")),
            },
        }
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

pub type ClientResult<T> = Result<T, ClientError>;

/// Where a store lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Memory,
    IndexedDb,
    Opfs,
}

impl Backend {
    pub const ALL: [Backend; 3] = [Backend::Memory, Backend::IndexedDb, Backend::Opfs];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Memory => "memory",
            Backend::IndexedDb => "indexeddb",
            Backend::Opfs => "opfs",
        }
    }

    pub fn parse(name: &str) -> Option<Backend> {
        Backend::ALL.into_iter().find(|b| b.as_str() == name)
    }

    pub fn title(self) -> &'static str {
        match self {
            Backend::Memory => "Memory (gone on reload)",
            Backend::IndexedDb => "IndexedDB",
            Backend::Opfs => "OPFS",
        }
    }
}

pub use strata_engine::{
    CompactReport, CopyReport, Extent, LogEntry, SpaceInfo, VolumeInfo, VolumeKind,
};

/// What the client's `info()` returns: the engine's `StoreInfo` with the session's name and mode.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    pub name: String,
    pub read_only: bool,
    #[serde(flatten)]
    pub info: strata_engine::StoreInfo,
}

impl std::ops::Deref for StoreInfo {
    type Target = strata_engine::StoreInfo;

    fn deref(&self) -> &strata_engine::StoreInfo {
        &self.info
    }
}

/// Where a block's data lives (see the engine's `Origin`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub addr: u64,
    pub origin: String,
    pub volume: Option<u64>,
    pub deleted: bool,
    pub record_seq: Option<u64>,
    pub created_ms: Option<u64>,
    pub sealed_ms: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Bucket {
    pub first_addr: u64,
    pub blocks: u64,
    pub origin: String,
    pub volume: Option<u64>,
    pub deleted: bool,
    pub log_blocks: u64,
    pub origins: u64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Assignment {
    pub volume: u64,
    #[serde(default)]
    pub hold: Option<bool>,
    #[serde(default)]
    pub ttl_ms: Option<u64>,
}

/// Cancels a long operation: an `AbortController` whose signal goes to the client.
#[derive(Clone)]
pub struct Canceller(web_sys::AbortController);

impl PartialEq for Canceller {
    fn eq(&self, other: &Self) -> bool {
        Object::is(&self.0, &other.0)
    }
}

impl fmt::Debug for Canceller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Canceller")
    }
}

impl Canceller {
    pub fn new() -> ClientResult<Self> {
        web_sys::AbortController::new()
            .map(Canceller)
            .map_err(|e| ClientError::from_js(&e))
    }

    pub fn cancel(&self) {
        self.0.abort();
    }
}

/// Handlers for a long operation: progress in bytes, and a signal to cancel it.
pub struct LongOp {
    pub on_progress: Rc<dyn Fn(f64, f64)>,
    pub canceller: Canceller,
}

impl LongOp {
    /// `{ onProgress, signal }`, and the closure that must live until the call settles.
    fn options(&self) -> (Object, Closure<dyn Fn(f64, f64)>) {
        let progress = self.on_progress.clone();
        let callback = Closure::<dyn Fn(f64, f64)>::new(move |done, total| progress(done, total));
        let options = Object::new();
        set(&options, "onProgress", callback.as_ref());
        set(&options, "signal", &self.canceller.0.signal());
        (options, callback)
    }
}

fn set(object: &Object, key: &str, value: &JsValue) {
    // Setting a property on a fresh plain object cannot fail.
    let _ = Reflect::set(object, &JsValue::from_str(key), value);
}

fn bridge() -> ClientResult<JsValue> {
    let global = js_sys::global();
    let bridge = Reflect::get(&global, &JsValue::from_str("strataBridge"))
        .map_err(|e| ClientError::from_js(&e))?;
    if bridge.is_undefined() || bridge.is_null() {
        return Err(ClientError::dashboard(
            "the Strata client is missing: www/main.js sets globalThis.strataBridge",
        ));
    }
    Ok(bridge)
}

/// Calls `target[method](...args)` and returns the Promise it returns.
fn start_call(target: &JsValue, method: &str, args: &[JsValue]) -> ClientResult<Promise> {
    let function: Function = Reflect::get(target, &JsValue::from_str(method))
        .map_err(|e| ClientError::from_js(&e))?
        .dyn_into()
        .map_err(|_| ClientError::dashboard(format!("the client has no method {method}")))?;
    let args: Array = args.iter().collect();
    let returned = function
        .apply(target, &args)
        .map_err(|e| ClientError::from_js(&e))?;
    Ok(Promise::resolve(&returned))
}

/// Calls `target[method](...args)` and awaits the Promise it returns.
async fn call_on(target: &JsValue, method: &str, args: &[JsValue]) -> ClientResult<JsValue> {
    let promise = start_call(target, method, args)?;
    JsFuture::from(promise)
        .await
        .map_err(|e| ClientError::from_js(&e))
}

/// `promise`, or a rejection with code `CANCELLED` as soon as `signal` aborts. The worker stops
/// the operation at its next progress point; the page does not wait for that.
async fn until_cancelled(promise: Promise, signal: &web_sys::AbortSignal) -> ClientResult<JsValue> {
    let cancelled = Object::new();
    set(&cancelled, "code", &JsValue::from_str("CANCELLED"));
    set(&cancelled, "message", &JsValue::from_str("cancelled"));
    // Listens until the call settles: dropping the listener removes it from the signal.
    let mut on_abort = None;
    let abort = if signal.aborted() {
        Promise::reject(&cancelled)
    } else {
        Promise::new(&mut |_resolve, reject| {
            let cancelled = cancelled.clone();
            on_abort = Some(EventListener::once(signal, "abort", move |_| {
                let _ = reject.call1(&JsValue::NULL, &cancelled);
            }));
        })
    };
    let race = Promise::race(&[promise, abort].iter().collect::<Array>());
    let result = JsFuture::from(race).await;
    drop(on_abort);
    result.map_err(|e| ClientError::from_js(&e))
}

/// A JS value the client returned, read into `T` with serde-wasm-bindgen.
pub fn decode<T: DeserializeOwned>(value: &JsValue) -> ClientResult<T> {
    serde_wasm_bindgen::from_value(value.clone())
        .map_err(|e| ClientError::dashboard(format!("unexpected reply from the client: {e}")))
}

fn num(n: u64) -> JsValue {
    JsValue::from_f64(n as f64)
}

fn options_object(name: &str, backend: Backend) -> Object {
    let options = Object::new();
    set(&options, "name", &JsValue::from_str(name));
    set(&options, "backend", &JsValue::from_str(backend.as_str()));
    options
}

/// An open store: one `StrataClient` (and its worker).
#[derive(Clone)]
pub struct Client {
    inner: JsValue,
    pub name: String,
    pub backend: Backend,
}

impl PartialEq for Client {
    fn eq(&self, other: &Self) -> bool {
        Object::is(&self.inner, &other.inner)
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Client({:?} on {})", self.name, self.backend.as_str())
    }
}

/// Opens (or creates, with `geometry` = (block size, blocks)) the store `name`.
pub async fn open(
    name: &str,
    backend: Backend,
    geometry: Option<(u64, u64)>,
) -> ClientResult<Client> {
    let options = options_object(name, backend);
    if let Some((block_size, blocks)) = geometry {
        set(&options, "blockSize", &num(block_size));
        set(&options, "blocks", &num(blocks));
    }
    let inner = call_on(&bridge()?, "open", &[options.into()]).await?;
    Ok(Client {
        inner,
        name: name.to_string(),
        backend,
    })
}

/// Deletes the store `name` (it must be closed everywhere).
pub async fn destroy(name: &str, backend: Backend) -> ClientResult<()> {
    let options = options_object(name, backend);
    call_on(&bridge()?, "destroy", &[options.into()]).await?;
    Ok(())
}

/// Creates the store `name` from a raw image file (its baseline) and opens it.
pub async fn import_image(
    name: &str,
    backend: Backend,
    block_size: u64,
    image: &web_sys::Blob,
) -> ClientResult<Client> {
    let options = options_object(name, backend);
    set(&options, "blockSize", &num(block_size));
    let inner = call_on(&bridge()?, "importImage", &[options.into(), image.into()]).await?;
    Ok(Client {
        inner,
        name: name.to_string(),
        backend,
    })
}

/// Creates the store `name` as a copy of another store, from a full copy stream file.
pub async fn import_stream(
    name: &str,
    backend: Backend,
    stream: &web_sys::Blob,
) -> ClientResult<Client> {
    let options = options_object(name, backend);
    let inner = call_on(&bridge()?, "importStream", &[options.into(), stream.into()]).await?;
    Ok(Client {
        inner,
        name: name.to_string(),
        backend,
    })
}

impl Client {
    async fn call(&self, method: &str, args: &[JsValue]) -> ClientResult<JsValue> {
        call_on(&self.inner, method, args).await
    }

    async fn call_decoded<T: DeserializeOwned>(
        &self,
        method: &str,
        args: &[JsValue],
    ) -> ClientResult<T> {
        decode(&self.call(method, args).await?)
    }

    /// Writes whole blocks from `addr`; returns the entry's sequence number.
    pub async fn write(&self, addr: u64, data: &[u8]) -> ClientResult<u64> {
        self.call_decoded("write", &[num(addr), Uint8Array::from(data).into()])
            .await
    }

    /// Several writes as one atomic record; returns the first sequence number.
    pub async fn write_batch(&self, writes: &[(u64, Vec<u8>)]) -> ClientResult<u64> {
        let list: Array = writes
            .iter()
            .map(|(addr, data)| -> JsValue {
                let pair: Array = [num(*addr), Uint8Array::from(data.as_slice()).into()]
                    .iter()
                    .collect();
                pair.into()
            })
            .collect();
        self.call_decoded("writeBatch", &[list.into()]).await
    }

    pub async fn sync(&self) -> ClientResult<()> {
        self.call("sync", &[]).await.map(drop)
    }

    pub async fn snapshot(&self, label: &str) -> ClientResult<u64> {
        let label = if label.is_empty() {
            JsValue::UNDEFINED
        } else {
            JsValue::from_str(label)
        };
        self.call_decoded("snapshot", &[label]).await
    }

    pub async fn read_at(&self, volume: u64, addr: u64, blocks: u64) -> ClientResult<Vec<u8>> {
        let bytes = self
            .call("readAt", &[num(volume), num(addr), num(blocks)])
            .await?;
        Ok(Uint8Array::new(&bytes).to_vec())
    }

    pub async fn info(&self) -> ClientResult<StoreInfo> {
        self.call_decoded("info", &[]).await
    }

    pub async fn volumes(&self) -> ClientResult<Vec<VolumeInfo>> {
        self.call_decoded("volumes", &[]).await
    }

    pub async fn space(&self) -> ClientResult<Vec<SpaceInfo>> {
        self.call_decoded("space", &[]).await
    }

    pub async fn locate(
        &self,
        volume: u64,
        addr: u64,
        blocks: u64,
    ) -> ClientResult<Vec<Provenance>> {
        self.call_decoded("locate", &[num(volume), num(addr), num(blocks)])
            .await
    }

    pub async fn block_map(&self, volume: u64, buckets: u64) -> ClientResult<Vec<Bucket>> {
        self.call_decoded("blockMap", &[num(volume), num(buckets)])
            .await
    }

    /// Up to `max` log entries from sequence number `from_seq` (a fresh cursor each call: the
    /// dashboard pages by sequence number, so no cursor outlives a page).
    pub async fn log_page(&self, from_seq: u64, max: u64) -> ClientResult<Vec<LogEntry>> {
        let options = Object::new();
        let from = Object::new();
        set(&from, "seq", &num(from_seq));
        set(&options, "from", &from);
        set(&options, "batch", &num(max.max(1)));
        let iterator: js_sys::AsyncIterator = self
            .inner
            .dyn_ref::<Object>()
            .ok_or_else(|| ClientError::dashboard("the client is not an object"))
            .and_then(|_| {
                let function: Function = Reflect::get(&self.inner, &JsValue::from_str("log"))
                    .map_err(|e| ClientError::from_js(&e))?
                    .dyn_into()
                    .map_err(|_| ClientError::dashboard("the client has no log()"))?;
                function
                    .call1(&self.inner, &options)
                    .map_err(|e| ClientError::from_js(&e))
            })?
            .unchecked_into();
        let mut out = Vec::new();
        // Bounded: at most `max` entries.
        while (out.len() as u64) < max {
            let next = iterator.next().map_err(|e| ClientError::from_js(&e))?;
            let step = JsFuture::from(next)
                .await
                .map_err(|e| ClientError::from_js(&e))?;
            let done = Reflect::get(&step, &JsValue::from_str("done"))
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(true);
            if done {
                return Ok(out);
            }
            let value = Reflect::get(&step, &JsValue::from_str("value"))
                .map_err(|e| ClientError::from_js(&e))?;
            out.push(decode(&value)?);
        }
        // Let the generator close its cursor in the worker.
        if let Ok(ret) = Reflect::get(&iterator, &JsValue::from_str("return")) {
            if let Ok(ret) = ret.dyn_into::<Function>() {
                if let Ok(promise) = ret.call0(&iterator) {
                    let _ = JsFuture::from(Promise::resolve(&promise)).await;
                }
            }
        }
        Ok(out)
    }

    /// Calls a cancellable method with `{ onProgress, signal, ...extra }` as its last argument.
    async fn call_long(
        &self,
        method: &str,
        volume: u64,
        op: &LongOp,
        extra: Option<(&str, &JsValue)>,
    ) -> ClientResult<JsValue> {
        let (options, progress) = op.options();
        if let Some((key, value)) = extra {
            set(&options, key, value);
        }
        let promise = start_call(&self.inner, method, &[num(volume), options.into()])?;
        let signal = op.canceller.0.signal();
        let result = until_cancelled(promise, &signal).await;
        if signal.aborted() {
            // The worker may still report progress until it reaches its next progress point:
            // the callback must outlive this call (a small, one-off leak per cancellation).
            progress.forget();
        }
        result
    }

    pub async fn compact(&self, volume: u64, op: LongOp) -> ClientResult<CompactReport> {
        decode(&self.call_long("compact", volume, &op, None).await?)
    }

    pub async fn merge(&self, volume: u64, op: LongOp) -> ClientResult<u64> {
        decode(&self.call_long("merge", volume, &op, None).await?)
    }

    pub async fn delete(&self, volume: u64) -> ClientResult<CompactReport> {
        self.call_decoded("delete", &[num(volume)]).await
    }

    pub async fn rollback(&self, volume: u64, label: &str) -> ClientResult<u64> {
        self.call_decoded("rollback", &[num(volume), JsValue::from_str(label)])
            .await
    }

    pub async fn diff(&self, a: u64, b: u64) -> ClientResult<Vec<Extent>> {
        self.call_decoded("diff", &[num(a), num(b)]).await
    }

    /// Volume `volume` as a raw image, returned as a `Blob` of its chunks.
    pub async fn export_image(&self, volume: u64, op: LongOp) -> ClientResult<web_sys::Blob> {
        let chunks = Array::new();
        let signal = op.canceller.0.signal();
        let on_chunk = Closure::<dyn Fn(JsValue) -> JsValue>::new({
            let (chunks, signal) = (chunks.clone(), signal.clone());
            move |chunk: JsValue| {
                // After a cancellation, chunks still in flight are dropped, and `false` asks
                // the worker to stop.
                if signal.aborted() {
                    chunks.set_length(0);
                    return JsValue::FALSE;
                }
                chunks.push(&chunk);
                JsValue::TRUE
            }
        });
        let result = self
            .call_long(
                "exportImage",
                volume,
                &op,
                Some(("onChunk", on_chunk.as_ref())),
            )
            .await;
        if signal.aborted() {
            on_chunk.forget();
        }
        result?;
        blob(&chunks)
    }

    /// A full copy stream of the sealed snapshots, as a `Blob`, and its report.
    pub async fn send(&self) -> ClientResult<(web_sys::Blob, CopyReport)> {
        let result = self.call("send", &[]).await?;
        let chunks: Array = Reflect::get(&result, &JsValue::from_str("chunks"))
            .map_err(|e| ClientError::from_js(&e))?
            .dyn_into()
            .map_err(|_| ClientError::dashboard("send returned no chunks"))?;
        let _ = Reflect::set(&result, &JsValue::from_str("chunks"), &JsValue::NULL);
        Ok((blob(&chunks)?, decode(&result)?))
    }

    pub async fn receive(&self, stream: &[u8]) -> ClientResult<CopyReport> {
        self.call_decoded("receive", &[Uint8Array::from(stream).into()])
            .await
    }

    /// The policy as pretty JSON text, or `None`.
    pub async fn policy(&self) -> ClientResult<Option<String>> {
        let value: Option<serde_json::Value> = self.call_decoded("policy", &[]).await?;
        Ok(value.map(|v| serde_json::to_string_pretty(&v).unwrap_or_default()))
    }

    /// Sets the policy from JSON text (`""` removes it); the engine validates it.
    pub async fn set_policy(&self, json: &str) -> ClientResult<()> {
        let arg = if json.trim().is_empty() {
            JsValue::NULL
        } else {
            JsValue::from_str(json)
        };
        self.call("setPolicy", &[arg]).await.map(drop)
    }

    pub async fn assignments(&self) -> ClientResult<Vec<Assignment>> {
        self.call_decoded("assignments", &[]).await
    }

    pub async fn set_assignments(&self, json: &str) -> ClientResult<()> {
        self.call("setAssignments", &[JsValue::from_str(json)])
            .await
            .map(drop)
    }

    /// What the policies would decide now (or on `event`), as JSON values.
    pub async fn dry_run(&self, event: Option<&str>) -> ClientResult<Vec<serde_json::Value>> {
        let arg = event.map_or(JsValue::UNDEFINED, JsValue::from_str);
        self.call_decoded("dryRun", &[arg]).await
    }

    pub async fn event(&self, name: &str) -> ClientResult<Vec<serde_json::Value>> {
        self.call_decoded("event", &[JsValue::from_str(name)]).await
    }

    pub async fn run_policies(&self) -> ClientResult<Vec<serde_json::Value>> {
        self.call_decoded("runPolicies", &[]).await
    }

    /// The policies' decisions if the clock ran for `duration_ms` from now, evaluated every
    /// `step_ms` (a model of the store: nothing changes).
    pub async fn simulate_policies(
        &self,
        duration_ms: u64,
        step_ms: u64,
    ) -> ClientResult<Vec<serde_json::Value>> {
        self.call_decoded("simulatePolicies", &[num(duration_ms), num(step_ms)])
            .await
    }

    pub async fn audit(&self) -> ClientResult<Vec<serde_json::Value>> {
        self.call_decoded("audit", &[]).await
    }

    pub async fn close(&self) -> ClientResult<()> {
        self.call("close", &[]).await.map(drop)
    }
}

fn blob(chunks: &Array) -> ClientResult<web_sys::Blob> {
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/octet-stream");
    web_sys::Blob::new_with_u8_array_sequence_and_options(chunks, &options)
        .map_err(|e| ClientError::from_js(&e))
}

// ----- the mirror -------------------------------------------------------------------------------

/// One primary leg's state, as `StrataMirrorClient.status()` reports it (the engine's
/// `LegStatus` with the leg's backend and store name). The engine's type only serializes, so the
/// fields the dashboard shows are read into this one.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorLegStatus {
    pub leg: u64,
    /// `"healthy"`, `"degraded"` or `"missing"`.
    pub state: String,
    pub reason: Option<String>,
    /// How opening the mirror brought the leg in line (`"inSync"`, `"caughtUp"`,
    /// `"resilvered"` or `"failed"`), and the blocks that took.
    pub open: String,
    pub open_blocks_written: u64,
    pub errors_detected: u64,
    pub errors_repaired: u64,
    pub io_errors: u64,
    pub blocks_resilvered: u64,
    pub replacements: u64,
    pub generation: u64,
    pub synced: Option<LegSynced>,
    pub backend: String,
    pub store: String,
}

/// The head and next sequence number a leg's image reflects.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegSynced {
    pub head: u64,
    pub next_seq: u64,
}

/// `StrataMirrorClient.status()`: the whole system.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MirrorStatus {
    pub head: u64,
    pub healthy_legs: u64,
    pub degraded: bool,
    pub pending_blocks: u64,
    pub blocks_served_by_secondary: u64,
    pub unrecoverable_reads: u64,
    pub legs: Vec<MirrorLegStatus>,
}

/// What a scrub found on one leg.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LegScrub {
    pub leg: u64,
    pub checked: u64,
    pub detected: u64,
    pub repaired: u64,
    pub io_error: Option<String>,
}

/// `StrataMirrorClient.scrub()`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScrubReport {
    pub blocks_checked: u64,
    pub copies_checked: u64,
    pub detected: u64,
    pub repaired: u64,
    pub unrecoverable: Vec<u64>,
    pub secondary_damaged: Vec<u64>,
    pub legs: Vec<LegScrub>,
}

/// `StrataMirrorClient.replace()`: what resilvering the new leg did.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResilverReport {
    pub leg: u64,
    pub blocks_checked: u64,
    pub blocks_written: u64,
    pub damaged_found: u64,
    pub unrecoverable: Vec<u64>,
}

/// One fault found on a leg (`StrataMirrorClient.events()`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultEvent {
    pub leg: u64,
    pub addr: Option<u64>,
    /// `"checksum"`, `"stale"` or `"io"`.
    pub kind: String,
    /// `"read"`, `"scrub"`, `"resilver"` or `"write"`.
    pub found_by: String,
    pub repaired: bool,
}

/// An open mirror: one `StrataMirrorClient` (and its worker).
#[derive(Clone)]
pub struct MirrorClient {
    inner: JsValue,
    pub name: String,
}

impl PartialEq for MirrorClient {
    fn eq(&self, other: &Self) -> bool {
        Object::is(&self.inner, &other.inner)
    }
}

impl fmt::Debug for MirrorClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MirrorClient({:?})", self.name)
    }
}

/// Opens (or creates, with `blocks` blocks of `block_size` bytes) the mirror `name`: the
/// secondary on `backend`, leg `i` of the primary on `legs[i]`. An existing mirror must be opened
/// with the same legs in the same order (a leg is known by its position).
pub async fn open_mirror(
    name: &str,
    backend: Backend,
    legs: &[Backend],
    block_size: u64,
    blocks: u64,
) -> ClientResult<MirrorClient> {
    let options = options_object(name, backend);
    let leg_backends: Array = legs
        .iter()
        .map(|leg| JsValue::from_str(leg.as_str()))
        .collect();
    set(&options, "legs", &leg_backends);
    set(&options, "blockSize", &num(block_size));
    set(&options, "blocks", &num(blocks));
    let inner = call_on(&bridge()?, "openMirror", &[options.into()]).await?;
    Ok(MirrorClient {
        inner,
        name: name.to_string(),
    })
}

impl MirrorClient {
    async fn call_decoded<T: DeserializeOwned>(
        &self,
        method: &str,
        args: &[JsValue],
    ) -> ClientResult<T> {
        decode(&call_on(&self.inner, method, args).await?)
    }

    /// Writes whole blocks from `addr` (to the secondary's log; the legs get them at `sync`).
    pub async fn write(&self, addr: u64, data: &[u8]) -> ClientResult<u64> {
        self.call_decoded("write", &[num(addr), Uint8Array::from(data).into()])
            .await
    }

    /// Makes the secondary durable, then every leg in service.
    pub async fn sync(&self) -> ClientResult<()> {
        call_on(&self.inner, "sync", &[]).await.map(drop)
    }

    pub async fn volumes(&self) -> ClientResult<Vec<VolumeInfo>> {
        self.call_decoded("volumes", &[]).await
    }

    /// The secondary's number of blocks (from `info()`, the secondary's `StoreInfo`).
    pub async fn block_count(&self) -> ClientResult<u64> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Geometry {
            block_count: u64,
        }
        let geometry: Geometry = self.call_decoded("info", &[]).await?;
        Ok(geometry.block_count)
    }

    pub async fn status(&self) -> ClientResult<MirrorStatus> {
        self.call_decoded("status", &[]).await
    }

    pub async fn scrub(&self) -> ClientResult<ScrubReport> {
        self.call_decoded("scrub", &[]).await
    }

    pub async fn replace(&self, leg: u64) -> ClientResult<ResilverReport> {
        self.call_decoded("replace", &[num(leg)]).await
    }

    pub async fn events(&self) -> ClientResult<Vec<FaultEvent>> {
        self.call_decoded("events", &[]).await
    }

    /// Seals the secondary's head as a snapshot; returns its volume id.
    pub async fn snapshot(&self) -> ClientResult<u64> {
        let report = call_on(&self.inner, "snapshot", &[JsValue::UNDEFINED]).await?;
        let volume = Reflect::get(&report, &JsValue::from_str("volume"))
            .map_err(|e| ClientError::from_js(&e))?;
        decode(&volume)
    }

    pub async fn close(&self) -> ClientResult<()> {
        call_on(&self.inner, "close", &[]).await.map(drop)
    }
}
