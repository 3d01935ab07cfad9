//! Strata in the browser (skeleton).
use wasm_bindgen::prelude::*;

/// The engine's version.
#[wasm_bindgen]
pub fn version() -> String {
    strata_engine::VERSION.to_string()
}
