//! # Strata engine
//!
//! Incremental block storage: a **baseline partition** holding a baseline image, and an
//! **incremental log** of block writes split into **snapshot partitions**. Each
//! [`Store::snapshot`] seals the current partition, opens a new one and assigns it a
//! **volume identifier**; any snapshot can be read in place with [`Store::read_at`], and the log
//! can be walked entry by entry with [`Store::next_entry`].
//!
//! The engine is pure Rust with no web dependencies. It talks to storage only through the small
//! async [`storage::Storage`] trait, implemented natively over a directory ([`storage::dir`]), in
//! memory ([`storage::memory`]), as a misbehaving simulated disk for tests ([`storage::sim`]), and
//! in the browser over OPFS and IndexedDB (in the `strata-wasm` crate).
//!
//! ```
//! use std::rc::Rc;
//! use strata_engine::{clock::ManualClock, storage::memory::MemoryStorage, CreateOptions, Store};
//!
//! # pollster::block_on(async {
//! let clock = Rc::new(ManualClock::new(1_700_000_000_000));
//! let mut store = Store::create(MemoryStorage::new(), CreateOptions::new(1024), clock).await?;
//! store.write(7, &[0xAB; 4096]).await?;
//! let before = store.snapshot(Some("before")).await?;
//! store.write(7, &[0xCD; 4096]).await?;
//! store.sync().await?;
//! assert_eq!(store.read(7, 1).await?, vec![0xCD; 4096]);
//! assert_eq!(store.read_at(before, 7, 1).await?, vec![0xAB; 4096]);
//! # Ok::<(), strata_engine::Error>(())
//! # }).unwrap();
//! ```
//!
//! The on-disk format is documented byte by byte in `engine/docs/format.md`.
//!
//! Cargo features: `policies` (on by default) is the policy executor of [`managed`]; without it
//! a [`Managed`] volume carries out no policy and refuses a store that holds storage management
//! documents ([`Error::PoliciesUnavailable`]), which the browser package's main module relies on
//! to leave the executor to a module of its own. `conformance` exports the storage conformance
//! suite for the tests of other backends.

pub mod clock;
pub mod error;
pub mod format;
mod index;
pub mod managed;
pub mod mirror;
mod order;
pub mod policy;
#[cfg(not(target_arch = "wasm32"))]
pub mod shared;
pub mod storage;
mod store;
mod volume;

pub use error::{Error, Result};
pub use managed::{Lent, Managed};
#[cfg(not(target_arch = "wasm32"))]
pub use shared::{GroupStats, Shared, SyncTicket, GROUP_REQUESTS_MAX};
pub use store::{
    BaselineImport, BaselineKind, CompactReport, CopyReport, CreateOptions, CursorStart, Document,
    Documents, Extent, LogCursor, LogEntry, Progress, RecoveryReport, SendOptions, SpaceInfo,
    Store, StoreInfo, StreamReceiver, VolumeInfo, VolumeKind, DEFAULT_WRITE_BUFFER_BYTES,
    DOCUMENT_TRAIL_MAX, IMAGE_CHUNK_BYTES, PARTITIONS_MAX, READ_BYTES_MAX, SPARE_SEGMENTS,
};
pub use store::{BlockMapBucket, Origin, Provenance, BLOCK_MAP_BUCKETS_MAX, LOCATE_BLOCKS_MAX};
pub use store::{BranchInfo, BRANCHES_MAX, BRANCH_MAIN, BRANCH_NAME_BYTES_MAX};
pub use volume::Volume;

/// The engine's version, as published in its Cargo manifest.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Identifies a volume: `0` is the baseline, every log partition gets the next number when it is
/// created, and numbers are never reused. It travels as a plain number (policy JSON, audit
/// entries, the CLI's JSON, JavaScript objects).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(transparent)]
pub struct VolumeId(pub u64);

impl VolumeId {
    /// The baseline partition.
    pub const BASELINE: VolumeId = VolumeId(0);
}

impl std::fmt::Display for VolumeId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}
