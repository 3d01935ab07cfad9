//! Strata engine (skeleton).

/// The engine's version, as published in its Cargo manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
