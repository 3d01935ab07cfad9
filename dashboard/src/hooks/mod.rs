//! Hooks that talk to the browser and report back through the reducer.

pub mod use_storage_estimate;
