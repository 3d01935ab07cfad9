//! The one place where the exported methods' futures become JavaScript promises.
//!
//! An exported `async fn` makes wasm-bindgen instantiate `future_to_promise` (its task, its
//! waker, its drop glue) once per method: some 500 bytes of WebAssembly each, 23 KiB over the
//! store's methods. The exported methods are therefore plain functions returning a `Promise`
//! made here, from one boxed future type, so that all of it exists once. Each method's own work
//! stays an `async fn` of the class (what the wasm-bindgen tests call from Rust), and the
//! exported method (`js_name` the JavaScript name) hands a clone of the class (an `Rc`) to it.

use std::future::Future;
use std::pin::Pin;

use js_sys::{Array, Promise};
use wasm_bindgen::JsValue;

use crate::error::StrataError;

/// What an exported method's promise resolves to.
pub(crate) trait IntoJs {
    /// The JavaScript value.
    fn into_js(self) -> JsValue;
}

impl IntoJs for () {
    fn into_js(self) -> JsValue {
        JsValue::UNDEFINED
    }
}

impl IntoJs for f64 {
    fn into_js(self) -> JsValue {
        JsValue::from_f64(self)
    }
}

impl IntoJs for Vec<u8> {
    fn into_js(self) -> JsValue {
        js_sys::Uint8Array::from(self.as_slice()).into()
    }
}

impl IntoJs for JsValue {
    fn into_js(self) -> JsValue {
        self
    }
}

impl IntoJs for Array {
    fn into_js(self) -> JsValue {
        self.into()
    }
}

/// The exported classes an exported method may resolve to.
macro_rules! class_into_js {
    ($($class:ty),*) => {
        $(impl IntoJs for $class {
            fn into_js(self) -> JsValue {
                self.into()
            }
        })*
    };
}
class_into_js!(
    crate::StrataStore,
    crate::StrataCursor,
    crate::ImageImport,
    crate::StreamImport
);
#[cfg(feature = "mirror")]
class_into_js!(crate::StrataMirror);

/// The futures every promise runs: one type, so one instantiation of `future_to_promise`.
type Task = Pin<Box<dyn Future<Output = Result<JsValue, JsValue>>>>;

/// A promise of what `work` resolves to; its failure rejects the promise with the error's
/// JavaScript `Error` (with its `code`).
pub(crate) fn promise<T: IntoJs>(
    work: impl Future<Output = Result<T, StrataError>> + 'static,
) -> Promise {
    let task: Task = Box::pin(async move {
        match work.await {
            Ok(value) => Ok(value.into_js()),
            Err(error) => Err(error.into()),
        }
    });
    wasm_bindgen_futures::future_to_promise(task)
}
