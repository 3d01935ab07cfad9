//! Small helpers shared by the browser backends: the worker scope, error mapping, and turning
//! IndexedDB requests and transactions into futures.

use js_sys::{Function, Promise, Reflect};
use strata_engine::storage::StorageError;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbRequest, IdbTransaction};

/// The `name` of a JS error (`DOMException` or `Error`), or `""`.
pub(crate) fn error_name(err: &JsValue) -> String {
    Reflect::get(err, &JsValue::from_str("name"))
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default()
}

/// A one-line description of a JS error or event.
pub(crate) fn describe(err: &JsValue) -> String {
    if let Some(s) = err.as_string() {
        return s;
    }
    let name = error_name(err);
    let message = Reflect::get(err, &JsValue::from_str("message"))
        .ok()
        .and_then(|v| v.as_string())
        .unwrap_or_default();
    match (name.is_empty(), message.is_empty()) {
        (false, false) => format!("{name}: {message}"),
        (false, true) => name,
        (true, false) => message,
        (true, true) => {
            // An event without an error (an `abort` after `abort()`, say): name its type.
            let kind = Reflect::get(err, &JsValue::from_str("type"))
                .ok()
                .and_then(|v| v.as_string());
            match kind {
                Some(kind) => format!("`{kind}` event without an error"),
                None => format!("{err:?}"),
            }
        }
    }
}

/// Maps a browser error to the storage contract's error: `NoModificationAllowedError` (a sync
/// access handle held elsewhere) is [`StorageError::Locked`], `QuotaExceededError` is
/// [`StorageError::QuotaExceeded`], everything else is [`StorageError::Io`].
pub(crate) fn map_error(object: &str, err: &JsValue) -> StorageError {
    let message = describe(err);
    match error_name(err).as_str() {
        "NoModificationAllowedError" => StorageError::Locked(format!("{object}: {message}")),
        "QuotaExceededError" => StorageError::QuotaExceeded(format!("{object}: {message}")),
        _ => StorageError::Io {
            object: object.to_string(),
            message,
        },
    }
}

/// An [`StorageError::Io`] with a message of ours.
pub(crate) fn io(object: &str, message: impl Into<String>) -> StorageError {
    StorageError::Io {
        object: object.to_string(),
        message: message.into(),
    }
}

/// The global scope's `navigator` (a `WorkerNavigator` or a `Navigator`).
pub(crate) fn navigator() -> Option<JsValue> {
    Reflect::get(&js_sys::global(), &JsValue::from_str("navigator"))
        .ok()
        .filter(|n| !n.is_undefined() && !n.is_null())
}

/// `navigator.storage`, when the platform has it.
pub(crate) fn storage_manager() -> Option<web_sys::StorageManager> {
    let storage = Reflect::get(&navigator()?, &JsValue::from_str("storage")).ok()?;
    storage.dyn_into().ok()
}

/// True in a dedicated worker whose browser has OPFS sync access handles.
pub(crate) fn opfs_sync_available() -> bool {
    let global = js_sys::global();
    let has = |name: &str| Reflect::has(&global, &JsValue::from_str(name)).unwrap_or(false);
    has("FileSystemSyncAccessHandle")
        && has("FileSystemFileHandle")
        && has("DedicatedWorkerGlobalScope")
        && global.has_type::<web_sys::WorkerGlobalScope>()
        && storage_manager().is_some()
}

/// The global `indexedDB`, when the platform has it.
pub(crate) fn indexed_db() -> Option<web_sys::IdbFactory> {
    let factory = Reflect::get(&js_sys::global(), &JsValue::from_str("indexedDB")).ok()?;
    factory.dyn_into().ok()
}

/// A promise that settles with an IndexedDB request: resolves on `success`, rejects on `error`.
/// Create it right after issuing the request (events fire in a later task).
pub(crate) fn request_promise(request: &IdbRequest) -> Promise {
    Promise::new(&mut |resolve: Function, reject: Function| {
        request.set_onsuccess(Some(&resolve));
        request.set_onerror(Some(&reject));
    })
}

/// Waits for a request created earlier with [`request_promise`]; returns its result.
pub(crate) async fn await_request(
    request: &IdbRequest,
    promise: Promise,
    object: &str,
) -> Result<JsValue, StorageError> {
    let outcome = JsFuture::from(promise).await;
    request.set_onsuccess(None);
    request.set_onerror(None);
    match outcome {
        Ok(_) => request.result().map_err(|e| map_error(object, &e)),
        Err(event) => Err(match request.error().ok().flatten() {
            Some(error) => map_error(object, &error),
            None => map_error(object, &event),
        }),
    }
}

/// A promise that resolves on a transaction's `complete` and rejects on `error` or `abort`.
pub(crate) fn transaction_promise(transaction: &IdbTransaction) -> Promise {
    Promise::new(&mut |resolve: Function, reject: Function| {
        transaction.set_oncomplete(Some(&resolve));
        transaction.set_onerror(Some(&reject));
        transaction.set_onabort(Some(&reject));
    })
}

/// Waits for a transaction's promise (see [`transaction_promise`]); the error is the
/// transaction's own (`QuotaExceededError` when the quota aborted it).
pub(crate) async fn await_transaction(
    transaction: &IdbTransaction,
    promise: Promise,
    object: &str,
) -> Result<(), StorageError> {
    let outcome = JsFuture::from(promise).await;
    transaction.set_oncomplete(None);
    transaction.set_onerror(None);
    transaction.set_onabort(None);
    outcome.map(drop).map_err(|event| {
        if let Some(error) = transaction.error() {
            return map_error(object, &error);
        }
        // An `error` event bubbling from a request comes before the transaction records its
        // error: take the failed request's.
        let request_error = Reflect::get(&event, &JsValue::from_str("target"))
            .and_then(|target| Reflect::get(&target, &JsValue::from_str("error")))
            .ok()
            .filter(|e| !e.is_null() && !e.is_undefined());
        map_error(object, request_error.as_ref().unwrap_or(&event))
    })
}

/// How long a backend that never waits (memory, OPFS sync handles) may run before it lets the
/// event loop turn: 50 ms keeps a cancel message or a page's request waiting no longer than
/// that, at the cost of one `setTimeout(0)` (about 1-4 ms) per 50 ms of work.
const YIELD_EVERY_MS: f64 = 50.0;

thread_local! {
    /// When the event loop last turned under a synchronous backend (`Date.now()`, ms).
    static LAST_YIELD_MS: std::cell::Cell<f64> = std::cell::Cell::new(js_sys::Date::now());
}

/// Lets the event loop run a macrotask if the synchronous backends have held it for
/// [`YIELD_EVERY_MS`]: without this, a long compaction, merge or export over memory or OPFS
/// never gives the worker a chance to see the `cancel` message for it.
pub(crate) async fn yield_if_due() {
    let now = js_sys::Date::now();
    if now - LAST_YIELD_MS.with(|t| t.get()) < YIELD_EVERY_MS {
        return;
    }
    // A macrotask, not a resolved promise: microtasks run before any message event.
    let timer = Promise::new(&mut |resolve, _reject| {
        let global = js_sys::global();
        if let Ok(set_timeout) = Reflect::get(&global, &JsValue::from_str("setTimeout")) {
            if let Some(set_timeout) = set_timeout.dyn_ref::<Function>() {
                let _ = set_timeout.call2(&global, &resolve, &JsValue::from(0));
                return;
            }
        }
        // No timers (not a browser): nothing to yield to.
        let _ = resolve.call0(&JsValue::UNDEFINED);
    });
    let _ = JsFuture::from(timer).await;
    LAST_YIELD_MS.with(|t| t.set(js_sys::Date::now()));
}
