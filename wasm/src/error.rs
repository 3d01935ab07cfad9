//! The one place where failures become JavaScript errors.
//!
//! Every exported function returns `Result<_, StrataError>`; wasm-bindgen turns the error into a
//! thrown (or rejected) JS `Error` through [`From<StrataError> for JsValue`]. The error's
//! `code` property is stable and machine-readable: the engine's [`strata_engine::Error::code`]
//! (which includes the storage codes `LOCKED`, `QUOTA_EXCEEDED`, `IO`, ...) or one of the
//! binding's own codes below. Its `message` is written for a person and may change.

use js_sys::Reflect;
use strata_engine::storage::StorageError;
use wasm_bindgen::JsValue;

/// The store was closed (or its opening failed half way); open it again.
pub const CODE_CLOSED: &str = "CLOSED";
/// A write or another change to a store opened with `readOnly: true`.
pub const CODE_READ_ONLY: &str = "READ_ONLY";
/// An argument from JavaScript has the wrong type or value.
pub const CODE_INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
/// A cursor or an import used after it was finished, or with another store.
pub const CODE_INVALID_STATE: &str = "INVALID_STATE";

/// A failure on its way to JavaScript: a stable code and a message for a person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrataError {
    code: &'static str,
    message: String,
}

impl StrataError {
    /// An error with one of the codes above.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        StrataError {
            code,
            message: message.into(),
        }
    }

    /// A bad argument from JavaScript.
    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(CODE_INVALID_ARGUMENT, message)
    }

    /// The stable code (the JS error's `code` property).
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// The message for a person.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl std::fmt::Display for StrataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl From<strata_engine::Error> for StrataError {
    fn from(e: strata_engine::Error) -> Self {
        StrataError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<StorageError> for StrataError {
    fn from(e: StorageError) -> Self {
        StrataError {
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<StrataError> for JsValue {
    /// A JS `Error` whose `name` is `"StrataError"` and whose `code` is the stable code.
    fn from(e: StrataError) -> JsValue {
        let error = js_sys::Error::new(&e.message);
        error.set_name("StrataError");
        // Setting a property on a fresh, extensible Error object cannot fail.
        let _ = Reflect::set(
            &error,
            &JsValue::from_str("code"),
            &JsValue::from_str(e.code),
        );
        error.into()
    }
}

/// A one-line description of a value JavaScript threw (an `Error`, a string, anything).
pub(crate) fn describe_js(value: &JsValue) -> String {
    if let Some(s) = value.as_string() {
        return s;
    }
    let field = |name: &str| {
        Reflect::get(value, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    match (field("name"), field("message")) {
        (name, message) if !name.is_empty() && !message.is_empty() => format!("{name}: {message}"),
        (name, message) if message.is_empty() && !name.is_empty() => name,
        (_, message) if !message.is_empty() => message,
        _ => format!("{value:?}"),
    }
}

/// What a JS callback's exception becomes inside the engine, which only knows its own errors.
pub(crate) fn callback_error(callback: &str, thrown: &JsValue) -> strata_engine::Error {
    strata_engine::Error::Storage(StorageError::Io {
        object: callback.to_string(),
        message: format!("the {callback} callback threw: {}", describe_js(thrown)),
    })
}
