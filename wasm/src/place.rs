//! Where a store lives: the backend choice, the cross-tab lock, the clock.
//!
//! The bindings reach storage only through this module, a thin adapter over
//! [`crate::backend`], so that the rest of them does not care which backend a store is on.

use std::rc::Rc;

use strata_engine::clock::Clock;

use crate::backend::{open_backend_mode, AnyStorage, BackendKind, JsClock};
use crate::error::StrataError;

/// Parses the JS `backend` option.
pub(crate) fn parse_backend(name: &str) -> Result<BackendKind, StrataError> {
    BackendKind::parse(name).ok_or_else(|| {
        StrataError::invalid_argument(format!(
            "backend must be \"auto\", \"memory\", \"opfs\" or \"indexeddb\", not {name:?}"
        ))
    })
}

/// Held while a store is open; dropping it lets another tab or worker open the store.
#[cfg(target_arch = "wasm32")]
pub(crate) type StoreLock = crate::backend::LockGuard;

/// Natively there is no other tab: the lock is a token.
#[cfg(not(target_arch = "wasm32"))]
#[derive(Debug)]
pub(crate) struct StoreLock;

/// Takes the store's cross-tab Web Lock, or fails with code `LOCKED`.
pub(crate) async fn lock(name: &str) -> Result<StoreLock, StrataError> {
    #[cfg(target_arch = "wasm32")]
    {
        Ok(crate::backend::acquire_store_lock(name).await?)
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        let _ = name;
        Ok(StoreLock)
    }
}

/// Releases the store's lock and waits until another `lock` call can take it (reopening a
/// store right after closing it must not fail with `LOCKED`).
pub(crate) async fn release(lock: StoreLock) {
    #[cfg(target_arch = "wasm32")]
    lock.release_and_wait().await;
    #[cfg(not(target_arch = "wasm32"))]
    let StoreLock = lock;
}

/// Opens the named store's storage on `backend` (a view that changes nothing if `read_only`);
/// returns it and the backend chosen.
pub(crate) async fn open_storage(
    backend: BackendKind,
    name: &str,
    read_only: bool,
) -> Result<(AnyStorage, BackendKind), StrataError> {
    Ok(open_backend_mode(backend, name, read_only).await?)
}

pub(crate) fn clock() -> Rc<dyn Clock> {
    Rc::new(JsClock)
}

/// The origin's free quota (`quota - usage` of `navigator.storage.estimate()`), when known.
#[cfg(feature = "policies")]
pub(crate) async fn quota_free_bytes() -> Option<u64> {
    use js_sys::{Function, Promise, Reflect};
    use wasm_bindgen::{JsCast, JsValue};
    if !cfg!(target_arch = "wasm32") {
        return None;
    }
    let get = |target: &JsValue, key: &str| Reflect::get(target, &JsValue::from_str(key)).ok();
    let storage = get(&get(&js_sys::global(), "navigator")?, "storage")?;
    let estimate: Function = get(&storage, "estimate")?.dyn_into().ok()?;
    let promise: Promise = estimate.call0(&storage).ok()?.dyn_into().ok()?;
    let result = wasm_bindgen_futures::JsFuture::from(promise).await.ok()?;
    let quota = get(&result, "quota")?.as_f64()?;
    let usage = get(&result, "usage")?.as_f64()?;
    Some((quota - usage).max(0.0) as u64)
}
