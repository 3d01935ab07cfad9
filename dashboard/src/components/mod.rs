//! One component per file, each with its own `XxxProps`.

pub mod header;
pub mod storage_panel;
