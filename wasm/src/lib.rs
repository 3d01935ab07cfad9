//! # Strata in the browser
//!
//! The engine compiled to WebAssembly, over the browser's storage ([`backend`]: OPFS, IndexedDB,
//! memory), exported to JavaScript with wasm-bindgen. [`StrataStore`] works directly inside a
//! dedicated worker; the npm package (`wasm/js/`, built by `scripts/build-npm.sh`) adds a module
//! worker hosting it and a Promise client for pages (see `wasm/README.md`).
//!
//! Every method returns a Promise. Every failure rejects with a JS `Error` whose `name` is
//! `"StrataError"` and whose `code` is stable: the engine's [`strata_engine::Error::code`]
//! (`OUT_OF_RANGE`, `UNKNOWN_VOLUME`, `CORRUPT`, ..., and from storage `LOCKED`,
//! `QUOTA_EXCEEDED`, `IO`) or the binding's own (`CLOSED`, `READ_ONLY`, `INVALID_ARGUMENT`,
//! `INVALID_STATE`). Nothing in the bindings panics on input.
//!
//! Numbers (block addresses, counts, volume identifiers, sequence numbers, bytes, times in ms)
//! are JS numbers, checked to be whole and at most 2^53 - 1.
//!
//! | Export | What |
//! |---|---|
//! | `version()` | the engine's version |
//! | `StrataStore.open({name, backend?, blockSize?, blocks?, readOnly?})` | open or create; takes the store's Web Lock (`LOCKED` if held); `readOnly`: a lock-free point-in-time view beside a writer |
//! | `StrataStore.beginImport({name, backend?, blockSize?, expectedBytes?})` | an [`ImageImport`]: create a store from a raw image |
//! | `store.backend`, `.name`, `.readOnly` | which backend was chosen (`"auto"` resolves), the name, the mode |
//! | `write(addr, bytes)`, `writeBatch([[addr, bytes], ...])` | append entries (a batch is atomic); resolve to a sequence number |
//! | `sync()` | the durability point (IndexedDB `strict` transaction, OPFS `flush()`) |
//! | `snapshot(label?)` | seal the head; resolves to the snapshot's volume id |
//! | `read(addr, blocks)`, `readAt(volume, addr, blocks)` | a `Uint8Array` |
//! | `volumes()`, `info()`, `space()` | plain objects (`VolumeInfo[]`, `StoreInfo`, `SpaceInfo[]`) |
//! | `cursor(start?)`, `nextEntry(cursor, withData)`, `nextEntries(cursor, max, withData)` | walk the log |
//! | `compact(volume, onProgress?)`, `merge(volume, onProgress?)`, `deleteVolume(volume)` | reshape the log |
//! | `rollback(volume, label?)`, `diff(a, b)` | new head id; changed extents |
//! | `locate(volume, addr, blocks)`, `blockMap(volume, buckets)` | which partition serves each block; the volume as regions (`api_view.rs`) |
//! | `send(options?, onChunk?)`, `receive(chunks)` | copy streams |
//! | `setPolicy(json)`, `policy()`, `setAssignments(json)`, `assignments()` | storage-management policy |
//! | `event(name, onCopy?)`, `runPolicies(onCopy?)`, `dryRun(event?)`, `audit()` | run policies, see their decisions |
//! | `exportImage(volume, onChunk, onProgress?)` | a volume as a raw image, in chunks |
//! | `close()` | sync, release the storage and the lock |
//! | `ImageImport.push(bytes)`, `.finish()`, `.abort()` | feed the image; `finish` resolves to a `StrataStore` |
//! | `StrataStore.beginStreamImport({name, backend?})` | a [`StreamImport`]: create a store as a copy, from a full copy stream |
//! | `receiveBegin()`, `receivePush(bytes)`, `receiveFinish()`, `receiveAbort()` | apply a copy stream chunk by chunk (bounded memory) |
//! | `StreamImport.push(bytes)`, `.finish()`, `.abort()` | feed the stream; `finish` resolves to a `StrataStore` |
//! | `StrataCursor.nextSeq` | where the cursor is |
//!
//! With the cargo feature `mirror` (on by default; the npm package builds it as a second module,
//! `strata_mirror`, so that pages that never open a mirror do not download it),
//! [`StrataMirror`] (`mirror.rs`) is the redundant system: a secondary store beside a primary
//! mirrored on several legs, each on a backend of its own (`StrataMirror.open({name, backend,
//! legs: ["opfs", "indexeddb"], blocks?})`, `write`, `writeBatch`, `read`, `readAt`, `sync`,
//! `snapshot`, `volumes`, `info`, `space`, `cursor`/`nextEntry`/`nextEntries`, `compact`, `merge`,
//! `deleteVolume`, `rollback`, `diff`, `status`, `scrub`, `replace(leg)`, `rebuild()`, `events()`,
//! `close()`, `StrataMirror.destroy({name, backend, legs})`).
//!
//! The TypeScript declarations of the objects are in `api.rs` (`TS_TYPES`) and `mirror.rs`
//! (`TS_MIRROR_TYPES`) and end up in the generated `strata_wasm.d.ts`.

use wasm_bindgen::prelude::*;

mod api;
pub mod backend;
mod convert;
mod error;
mod exclusive;
#[cfg(feature = "mirror")]
mod mirror;
mod place;
#[cfg(feature = "policies")]
mod policy_api;
mod promise;
mod volume_api;

pub use api::{ImageImport, StrataStore, StreamImport};
pub use error::StrataError;
#[cfg(feature = "mirror")]
pub use mirror::{leg_store_name, StrataMirror};
pub use volume_api::StrataCursor;

/// The engine's version.
#[wasm_bindgen]
pub fn version() -> String {
    strata_engine::VERSION.to_string()
}
