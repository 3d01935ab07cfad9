//! Values across the boundary: JavaScript numbers and option objects in, plain JS objects out.
//!
//! Block addresses, counts, volume identifiers and sequence numbers travel as JS numbers (not
//! `BigInt`), so they are checked to be whole, non-negative and at most 2^53 - 1. What the engine
//! reports (volume and store facts, log entries, compaction, copy and space reports, extents) is
//! described once, as serde types in the engine (camelCase); [`to_js`] hands them over with
//! serde-wasm-bindgen, so their shapes are the ones the CLI prints and the TypeScript
//! declarations (`TS_TYPES` in `api/mod.rs`, `wasm/js/client.d.ts`) declare. Policy documents,
//! decisions and audit entries are serde types in the engine too: they go through JSON.
//!
//! Also the pieces `StrataStore` (`api.rs`) and `StrataMirror` (`mirror.rs`) share: the
//! `writeBatch` argument, progress callbacks, and walking the log with a cursor.

use std::cell::RefCell;

use js_sys::{Array, Function, Object, Reflect, Uint8Array};
use serde::Serialize;
#[cfg(feature = "policies")]
use strata_engine::policy::{AuditEntry, Decision};
use strata_engine::storage::Storage;
use strata_engine::{CursorStart, Extent, LogCursor, Progress, Store, VolumeId};
use wasm_bindgen::{JsCast, JsValue};

#[cfg(feature = "policies")]
use crate::error::callback_error;
use crate::error::StrataError;

/// The largest integer a JS number holds exactly.
const SAFE_INTEGER_MAX: f64 = 9_007_199_254_740_991.0;

/// A whole, non-negative JS number as `u64`.
pub(crate) fn to_u64(value: f64, what: &str) -> Result<u64, StrataError> {
    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 && value <= SAFE_INTEGER_MAX {
        Ok(value as u64)
    } else {
        Err(StrataError::invalid_argument(format!(
            "{what} must be a whole number between 0 and 2^53 - 1, not {value}"
        )))
    }
}

/// A JS value that must be such a number.
pub(crate) fn value_to_u64(value: &JsValue, what: &str) -> Result<u64, StrataError> {
    match value.as_f64() {
        Some(n) => to_u64(n, what),
        None => Err(StrataError::invalid_argument(format!(
            "{what} must be a number"
        ))),
    }
}

pub(crate) fn to_volume(value: f64, what: &str) -> Result<VolumeId, StrataError> {
    to_u64(value, what).map(VolumeId)
}

fn number(n: u64) -> JsValue {
    // Engine quantities (bytes, blocks, milliseconds) stay far below 2^53.
    JsValue::from_f64(n as f64)
}

/// How the engine's boundary types become JS values: `None` as `null` (as the declarations
/// say), maps as plain objects, 64-bit integers as numbers (one past 2^53 - 1 is an error, never
/// a rounded number), block data as `Uint8Array`.
const SERIALIZER: serde_wasm_bindgen::Serializer = serde_wasm_bindgen::Serializer::new()
    .serialize_missing_as_null(true)
    .serialize_maps_as_objects(true);

/// One of the engine's boundary types (or a binding's type made of them) as a plain JS value.
pub(crate) fn to_js(value: &impl Serialize) -> Result<JsValue, StrataError> {
    value.serialize(&SERIALIZER).map_err(|e| {
        StrataError::new(
            "LIMIT_EXCEEDED",
            format!("a value does not fit a JavaScript number: {e}"),
        )
    })
}

/// A list of boundary values as a JS array.
pub(crate) fn to_js_array<T: Serialize>(values: &[T]) -> Result<Array, StrataError> {
    to_js(&values).map(JsCast::unchecked_into)
}

/// A boundary type's value with one more property (the chunks of a send, say).
pub(crate) fn with_property(value: JsValue, key: &str, property: impl Into<JsValue>) -> JsValue {
    // Defining a property on a fresh plain object cannot fail.
    let _ = Reflect::set(&value, &JsValue::from_str(key), &property.into());
    value
}

/// A plain object built field by field.
pub(crate) struct ObjectBuilder(Object);

impl ObjectBuilder {
    pub(crate) fn new() -> Self {
        ObjectBuilder(Object::new())
    }

    pub(crate) fn set(self, key: &str, value: impl Into<JsValue>) -> Self {
        // Defining a property on a fresh plain object cannot fail.
        let _ = Reflect::set(&self.0, &JsValue::from_str(key), &value.into());
        self
    }

    pub(crate) fn number(self, key: &str, n: u64) -> Self {
        self.set(key, number(n))
    }

    pub(crate) fn build(self) -> JsValue {
        self.0.into()
    }
}

/// A property of an options object (`undefined` if the object is `undefined` or `null`).
pub(crate) fn field(options: &JsValue, key: &str) -> JsValue {
    if options.is_undefined() || options.is_null() {
        return JsValue::UNDEFINED;
    }
    Reflect::get(options, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
}

fn is_absent(value: &JsValue) -> bool {
    value.is_undefined() || value.is_null()
}

pub(crate) fn optional_u64_field(options: &JsValue, key: &str) -> Result<Option<u64>, StrataError> {
    let value = field(options, key);
    if is_absent(&value) {
        return Ok(None);
    }
    value_to_u64(&value, key).map(Some)
}

pub(crate) fn optional_string_field(
    options: &JsValue,
    key: &str,
) -> Result<Option<String>, StrataError> {
    let value = field(options, key);
    if is_absent(&value) {
        return Ok(None);
    }
    value
        .as_string()
        .map(Some)
        .ok_or_else(|| StrataError::invalid_argument(format!("{key} must be a string")))
}

pub(crate) fn optional_bool_field(
    options: &JsValue,
    key: &str,
) -> Result<Option<bool>, StrataError> {
    let value = field(options, key);
    if is_absent(&value) {
        return Ok(None);
    }
    value
        .as_bool()
        .map(Some)
        .ok_or_else(|| StrataError::invalid_argument(format!("{key} must be true or false")))
}

/// A cursor start: `undefined`/`null`/`"beginning"`, `{ seq }` or `{ volume }`.
pub(crate) fn cursor_start(start: &JsValue) -> Result<CursorStart, StrataError> {
    if is_absent(start) || start.as_string().as_deref() == Some("beginning") {
        return Ok(CursorStart::Beginning);
    }
    if let Some(seq) = optional_u64_field(start, "seq")? {
        return Ok(CursorStart::Seq(seq));
    }
    if let Some(volume) = optional_u64_field(start, "volume")? {
        return Ok(CursorStart::Volume(VolumeId(volume)));
    }
    Err(StrataError::invalid_argument(
        "a cursor starts at \"beginning\", { seq: n } or { volume: n }",
    ))
}

/// The argument of `writeBatch`, `[[addr, Uint8Array], ...]`, as owned blocks.
pub(crate) fn write_batch(writes: &JsValue) -> Result<Vec<(u64, Vec<u8>)>, StrataError> {
    let shape = || StrataError::invalid_argument("writeBatch takes [[addr, Uint8Array], ...]");
    if !Array::is_array(writes) {
        return Err(shape());
    }
    let mut owned: Vec<(u64, Vec<u8>)> = Vec::new();
    for pair in Array::from(writes).iter() {
        if !Array::is_array(&pair) {
            return Err(shape());
        }
        let pair = Array::from(&pair);
        let addr = value_to_u64(&pair.get(0), "addr")?;
        let data: Uint8Array = pair.get(1).dyn_into().map_err(|_| shape())?;
        owned.push((addr, data.to_vec()));
    }
    Ok(owned)
}

/// Calls a JS progress callback; `false` from it cancels.
pub(crate) fn progress_callback(callback: &Option<Function>) -> impl FnMut(Progress) -> bool + '_ {
    move |p: Progress| match callback {
        None => true,
        Some(f) => {
            let done = JsValue::from_f64(p.done_bytes as f64);
            let total = JsValue::from_f64(p.total_bytes as f64);
            // A throwing progress callback cancels, like one returning false.
            match f.call2(&JsValue::NULL, &done, &total) {
                Ok(result) => result.as_bool() != Some(false),
                Err(_) => false,
            }
        }
    }
}

/// The most entries one `nextEntries` call returns.
pub(crate) const LOG_BATCH_MAX: u64 = 4096;
/// A `nextEntries` call with data stops adding entries once they hold this many bytes (16 MiB:
/// one entry of the largest batch).
const LOG_BATCH_DATA_BYTES: usize = 16 << 20;
/// The most extents one `diff` returns.
pub(crate) const DIFF_EXTENTS_MAX: usize = 1 << 20;

/// Up to `max` log entries of `store` from `cursor` (at most [`LOG_BATCH_MAX`]; fewer at the end
/// of the log, none past it, and fewer once the entries' data reach 16 MiB: only an empty batch
/// is the end).
pub(crate) async fn next_entries<S: Storage>(
    store: &Store<S>,
    cursor: &RefCell<LogCursor>,
    max: u64,
    with_data: bool,
) -> Result<Array, StrataError> {
    if max == 0 || max > LOG_BATCH_MAX {
        return Err(StrataError::invalid_argument(format!(
            "max must be from 1 to {LOG_BATCH_MAX}, not {max}"
        )));
    }
    // Work on a copy and store it back only on success: after an error the cursor has not
    // moved, as no entry was returned.
    let mut position = cursor.borrow().clone();
    let out = Array::new();
    let mut data_bytes = 0usize;
    for _ in 0..max {
        if data_bytes >= LOG_BATCH_DATA_BYTES {
            break;
        }
        match store.next_entry(&mut position, with_data).await? {
            Some(entry) => {
                data_bytes += entry.data.as_ref().map_or(0, Vec::len);
                out.push(&to_js(&entry)?);
            }
            None => break,
        }
    }
    *cursor.borrow_mut() = position;
    Ok(out)
}

/// The extents of a diff, refused past [`DIFF_EXTENTS_MAX`] (the differences are then too
/// scattered to list; diff narrower volumes, or read the log).
pub(crate) fn diff_extents(extents: &[Extent]) -> Result<Array, StrataError> {
    if extents.len() > DIFF_EXTENTS_MAX {
        return Err(StrataError::new(
            "LIMIT_EXCEEDED",
            format!(
                "the volumes differ in {} separate extents; a diff returns at most {DIFF_EXTENTS_MAX}",
                extents.len()
            ),
        ));
    }
    to_js_array(extents)
}

/// `[start, end)` block range of send options: `[start, end]` as a two-number array.
pub(crate) fn block_range(value: &JsValue) -> Result<Option<std::ops::Range<u64>>, StrataError> {
    if is_absent(value) {
        return Ok(None);
    }
    let bad = || StrataError::invalid_argument("blocks must be [start, end] (end excluded)");
    if !Array::is_array(value) {
        return Err(bad());
    }
    let array = Array::from(value);
    if array.length() != 2 {
        return Err(bad());
    }
    let start = value_to_u64(&array.get(0), "blocks[0]")?;
    let end = value_to_u64(&array.get(1), "blocks[1]")?;
    if start >= end {
        return Err(bad());
    }
    Ok(Some(start..end))
}

pub(crate) fn array<T>(items: &[T], convert: impl Fn(&T) -> JsValue) -> Array {
    items.iter().map(convert).collect()
}

/// A serde value (policy, decision, audit entry) as a plain JS object, through JSON.
#[cfg(feature = "policies")]
pub(crate) fn via_json(value: &impl serde::Serialize) -> Result<JsValue, StrataError> {
    let json = serde_json::to_string(value)
        .map_err(|e| StrataError::invalid_argument(format!("cannot serialise: {e}")))?;
    js_sys::JSON::parse(&json)
        .map_err(|_| StrataError::invalid_argument("the engine produced invalid JSON"))
}

#[cfg(feature = "policies")]
pub(crate) fn decisions(decisions: &[Decision]) -> Result<Array, StrataError> {
    decisions.iter().map(via_json).collect()
}

#[cfg(feature = "policies")]
pub(crate) fn audit_entries(entries: &[AuditEntry]) -> Result<Array, StrataError> {
    entries.iter().map(via_json).collect()
}

/// A JSON document given as a string or as a plain object (stringified here).
#[cfg(feature = "policies")]
pub(crate) fn json_text(value: &JsValue, what: &str) -> Result<String, StrataError> {
    if let Some(text) = value.as_string() {
        return Ok(text);
    }
    js_sys::JSON::stringify(value)
        .ok()
        .and_then(|s| s.as_string())
        .ok_or_else(|| {
            StrataError::invalid_argument(format!("{what} must be a JSON string or a plain object"))
        })
}

/// Where a policy copy streams: the `onCopy(target, chunk)` callback; without one, a copy
/// decision fails (and is recorded as failed).
#[cfg(feature = "policies")]
pub(crate) fn copy_sink(
    callback: &Option<Function>,
) -> impl FnMut(&str, &[u8]) -> strata_engine::Result<()> + '_ {
    move |target: &str, chunk: &[u8]| match callback {
        None => Err(strata_engine::Error::InvalidArgument(format!(
            "a policy copies to target {target:?}, but no onCopy callback was given"
        ))),
        Some(f) => {
            let array = Uint8Array::from(chunk);
            f.call2(&JsValue::NULL, &JsValue::from_str(target), &array)
                .map(drop)
                .map_err(|thrown| callback_error("onCopy", &thrown))
        }
    }
}
