//! One writer per store across tabs and workers: an exclusive Web Lock (`navigator.locks`)
//! named after the store, requested with `ifAvailable` so that a second opener gets
//! [`StorageError::Locked`] at once instead of waiting.
//!
//! The bindings go through `Reflect` because web-sys exposes `LockManager` only under
//! `web_sys_unstable_apis`.

use std::cell::RefCell;
use std::rc::Rc;

use js_sys::{Function, Object, Promise, Reflect};
use strata_engine::storage::StorageError;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use super::js::{describe, io, navigator};

/// The Web Lock name of a store.
pub fn lock_name(store_name: &str) -> String {
    format!("strata-{store_name}")
}

/// Holds a store's Web Lock; dropping it (or [`LockGuard::release`]) releases the lock.
pub struct LockGuard {
    name: String,
    release: Option<Function>,
    /// The promise `navigator.locks.request` returned: it settles once the lock is released.
    released: Promise,
    _callback: Closure<dyn FnMut(JsValue) -> Promise>,
}

impl std::fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LockGuard")
            .field("name", &self.name)
            .field("held", &self.release.is_some())
            .finish()
    }
}

impl LockGuard {
    /// The lock's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Releases the lock now. The browser frees it a moment later: to open the store again at
    /// once, use [`LockGuard::release_and_wait`].
    pub fn release(mut self) {
        self.release_now();
    }

    /// Releases the lock and waits until the browser has freed it, so that an `ifAvailable`
    /// request made next (reopening the store right after closing it) is granted.
    pub async fn release_and_wait(mut self) {
        self.release_now();
        // Settles (fulfilled, or rejected if the request failed) once the lock is gone.
        let _ = JsFuture::from(self.released.clone()).await;
    }

    fn release_now(&mut self) {
        if let Some(release) = self.release.take() {
            let _ = release.call0(&JsValue::UNDEFINED);
        }
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        self.release_now();
    }
}

/// Takes the exclusive Web Lock of store `store_name`, or fails with [`StorageError::Locked`]
/// if another tab or worker (or this one) holds it.
pub async fn acquire_store_lock(store_name: &str) -> Result<LockGuard, StorageError> {
    let name = lock_name(store_name);
    let unavailable = |why: &str| io(&name, format!("Web Locks are not available: {why}"));
    let navigator = navigator().ok_or_else(|| unavailable("no navigator"))?;
    let locks = Reflect::get(&navigator, &"locks".into())
        .ok()
        .filter(|l| l.is_object())
        .ok_or_else(|| unavailable("no navigator.locks (an insecure context?)"))?;
    let request: Function = Reflect::get(&locks, &"request".into())
        .ok()
        .and_then(|r| r.dyn_into().ok())
        .ok_or_else(|| unavailable("no navigator.locks.request"))?;

    // `granted` settles with true or false when the callback runs; the callback's own promise,
    // which holds the lock while pending, is resolved by the guard.
    let slots: Rc<RefCell<(Option<Function>, Option<Function>)>> = Rc::default();
    let granted = {
        let slots = slots.clone();
        Promise::new(&mut |resolve: Function, _reject: Function| {
            slots.borrow_mut().0 = Some(resolve);
        })
    };
    let callback_slots = slots.clone();
    let callback = Closure::<dyn FnMut(JsValue) -> Promise>::new(move |lock: JsValue| {
        let report = callback_slots.borrow_mut().0.take();
        let held = !lock.is_null() && !lock.is_undefined();
        if let Some(report) = report {
            let _ = report.call1(&JsValue::UNDEFINED, &JsValue::from_bool(held));
        }
        if !held {
            return Promise::resolve(&JsValue::UNDEFINED);
        }
        let slots = callback_slots.clone();
        Promise::new(&mut |resolve: Function, _reject: Function| {
            slots.borrow_mut().1 = Some(resolve);
        })
    });
    let options = Object::new();
    Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE)
        .map_err(|e| io(&name, describe(&e)))?;
    let requested = request
        .call3(
            &locks,
            &JsValue::from_str(&name),
            &options,
            callback.as_ref(),
        )
        .map_err(|e| io(&name, describe(&e)))?;
    // The request's own promise settles when the lock is released; a rejection there means the
    // request failed before the callback ran.
    let requested: Promise = requested
        .dyn_into()
        .map_err(|_| io(&name, "navigator.locks.request gave no promise"))?;
    let failed: JsValue = {
        let slots = slots.clone();
        Closure::<dyn FnMut(JsValue)>::once_into_js(move |error: JsValue| {
            if let Some(report) = slots.borrow_mut().0.take() {
                let _ = report.call1(&JsValue::UNDEFINED, &error);
            }
        })
    };
    let _ = Reflect::get(&requested, &"catch".into()).and_then(|catch| {
        catch
            .unchecked_into::<Function>()
            .call1(&requested, &failed)
    });

    let outcome = JsFuture::from(granted)
        .await
        .map_err(|e| io(&name, describe(&e)))?;
    match outcome.as_bool() {
        Some(true) => {
            let release = slots.borrow_mut().1.take();
            Ok(LockGuard {
                name,
                release,
                released: requested,
                _callback: callback,
            })
        }
        Some(false) => Err(StorageError::Locked(format!(
            "Web Lock {name:?} is held by another tab or worker"
        ))),
        None => Err(io(
            &name,
            format!("navigator.locks.request failed: {}", describe(&outcome)),
        )),
    }
}
