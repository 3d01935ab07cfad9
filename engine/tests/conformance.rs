//! The storage conformance suite (`strata_engine::storage::conformance`) on the native
//! backends: the directory, memory and simulated-disk backends. The browser backends run the same
//! suite in `wasm/tests/conformance.rs`.

use std::path::PathBuf;
use std::rc::Rc;

use pollster::block_on;
use strata_engine::clock::{Clock, ManualClock};
use strata_engine::storage::conformance::{self, Backend};
use strata_engine::storage::dir::DirStorage;
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::storage::sim::SimDisk;

fn clock() -> Rc<dyn Clock> {
    Rc::new(ManualClock::new(1_700_000_000_000))
}

/// A directory, opened afresh (and locked) each time; destroyed by removing it.
struct Dir {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl Backend for Dir {
    type Storage = DirStorage;
    fn name(&self) -> String {
        "dir".into()
    }
    async fn open(&mut self) -> DirStorage {
        DirStorage::open(&self.path).expect("open the directory")
    }
    async fn destroy(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
    fn clock(&self) -> Rc<dyn Clock> {
        clock()
    }
}

/// Handles of one in-memory object map; destroyed by starting a new map.
struct Memory(MemoryStorage);

impl Backend for Memory {
    type Storage = MemoryStorage;
    fn name(&self) -> String {
        "memory".into()
    }
    async fn open(&mut self) -> MemoryStorage {
        self.0.clone()
    }
    async fn destroy(&mut self) {
        self.0 = MemoryStorage::new();
    }
    fn clock(&self) -> Rc<dyn Clock> {
        clock()
    }
}

/// Handles of one simulated disk; destroyed by starting a new disk.
struct Sim(SimDisk);

impl Backend for Sim {
    type Storage = SimDisk;
    fn name(&self) -> String {
        "sim".into()
    }
    async fn open(&mut self) -> SimDisk {
        self.0.clone()
    }
    async fn destroy(&mut self) {
        self.0 = SimDisk::new();
    }
    fn clock(&self) -> Rc<dyn Clock> {
        clock()
    }
}

#[test]
fn the_directory_backend_conforms() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut backend = Dir {
        path: tmp.path().join("store"),
        _parent: tmp,
    };
    block_on(conformance::run_all(&mut backend));
}

#[test]
fn the_memory_backend_conforms() {
    block_on(conformance::run_all(&mut Memory(MemoryStorage::new())));
}

#[test]
fn the_simulated_disk_conforms() {
    block_on(conformance::run_all(&mut Sim(SimDisk::new())));
}
