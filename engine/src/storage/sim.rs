//! A simulated disk for crash and fault tests.
//!
//! It keeps the *durable image* (what survives a crash) apart from the *pending* changes made
//! since the last durability barrier. [`SimDisk::crash`] throws the pending changes at the durable
//! image the way a real disk might: each is dropped, kept, or torn at 512-byte sector granularity,
//! in a shuffled order. It can fail the Nth I/O once, or every I/O from the Nth on (a dead
//! device), and flip bits in the durable image.
//!
//! Every read, every change inside a commit and every durability barrier counts as one I/O.
//! Handles are cheap clones sharing one disk, so a test keeps a handle to crash and inspect the
//! disk after the store that used it is gone.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use rand_core::RngCore;

use super::{apply_change, read_from, Change, Commit, Objects, Storage, StorageError};

/// Sector size at which unsynced writes tear.
pub const SECTOR_BYTES: usize = 512;

/// How [`SimDisk::crash`] treats the pending (unsynced) changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashMode {
    /// Every pending change is lost.
    DropAll,
    /// Every pending change survives (as if the crash came just after a flush).
    KeepAll,
    /// Each pending change is dropped, kept or torn, in a random order.
    Random,
}

#[derive(Debug, Default)]
struct SimState {
    durable: Objects,
    current: Objects,
    pending: Vec<Change>,
    /// Changes of unsynced commits ([`Commit::unsynced`]): no barrier covers them; a crash
    /// resolves them with the pending ones.
    unsynced: Vec<Change>,
    io_count: u64,
    fail_once_at: Option<u64>,
    fail_from: Option<u64>,
}

impl SimState {
    fn tick(&mut self) -> Result<(), StorageError> {
        self.io_count += 1;
        let n = self.io_count;
        if self.fail_once_at == Some(n) {
            self.fail_once_at = None;
            return Err(StorageError::Injected(n));
        }
        if self.fail_from.is_some_and(|from| n >= from) {
            return Err(StorageError::Injected(n));
        }
        Ok(())
    }
}

/// A handle to a simulated disk. Clones share the disk.
#[derive(Debug, Clone, Default)]
pub struct SimDisk {
    state: Rc<RefCell<SimState>>,
}

impl SimDisk {
    /// An empty disk.
    pub fn new() -> Self {
        Self::default()
    }

    /// I/Os performed so far.
    pub fn io_count(&self) -> u64 {
        self.state.borrow().io_count
    }

    /// Makes I/O number `n` (counting from the start of the disk's life) fail once.
    pub fn fail_once_at(&self, n: u64) {
        self.state.borrow_mut().fail_once_at = Some(n);
    }

    /// Makes every I/O from number `n` on fail, as a device that died would; cleared by a crash.
    pub fn fail_from(&self, n: u64) {
        self.state.borrow_mut().fail_from = Some(n);
    }

    /// Number of changes of ordinary commits not yet covered by a durability barrier (those of
    /// unsynced commits, which no barrier covers, are not counted).
    pub fn pending_changes(&self) -> usize {
        self.state.borrow().pending.len()
    }

    /// Simulates a power cut: pending changes are resolved according to `mode` (randomness from
    /// `rng`), the durable image becomes the visible one, and injected failures are cleared.
    pub fn crash(&self, mode: CrashMode, rng: &mut impl RngCore) {
        let mut state = self.state.borrow_mut();
        let mut pending = std::mem::take(&mut state.unsynced);
        pending.append(&mut state.pending);
        if mode == CrashMode::Random {
            // Fisher-Yates shuffle: the disk may have reordered the writes.
            for i in (1..pending.len()).rev() {
                let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                pending.swap(i, j);
            }
        }
        let mut image = std::mem::take(&mut state.durable);
        for change in pending {
            let fate = match mode {
                CrashMode::DropAll => 0,
                CrashMode::KeepAll => 1,
                CrashMode::Random => rng.next_u64() % 3,
            };
            match (fate, change) {
                (0, _) => {}
                (
                    2,
                    Change::Write {
                        object,
                        offset,
                        data,
                    },
                ) => {
                    // Torn: only some sectors of the write reach the medium.
                    let file = image.entry(object.clone()).or_default();
                    let mut sector_start = 0;
                    while sector_start < data.len() {
                        let sector_end = (sector_start + SECTOR_BYTES).min(data.len());
                        if rng.next_u64().is_multiple_of(2) {
                            let start = offset as usize + sector_start;
                            let end = offset as usize + sector_end;
                            if file.len() < end {
                                file.resize(end, 0);
                            }
                            file[start..end].copy_from_slice(&data[sector_start..sector_end]);
                        }
                        sector_start = sector_end;
                    }
                }
                (_, change) => apply_change(&mut image, &change),
            }
        }
        state.current = image.clone();
        state.durable = image;
        state.fail_once_at = None;
        state.fail_from = None;
    }

    /// Flips one bit of the durable (and visible) image. Returns false if the byte does not exist.
    pub fn flip_bit(&self, object: &str, offset: u64, bit: u8) -> bool {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        let mut flipped = false;
        for image in [&mut state.durable, &mut state.current] {
            if let Some(byte) = image
                .get_mut(object)
                .and_then(|f| f.get_mut(offset as usize))
            {
                *byte ^= 1 << (bit % 8);
                flipped = true;
            }
        }
        flipped
    }

    /// Overwrites a range of the durable (and visible) image with zeros.
    pub fn zero_range(&self, object: &str, offset: u64, len: usize) {
        let mut guard = self.state.borrow_mut();
        let state = &mut *guard;
        for image in [&mut state.durable, &mut state.current] {
            if let Some(file) = image.get_mut(object) {
                let start = (offset as usize).min(file.len());
                let end = start.saturating_add(len).min(file.len());
                file[start..end].fill(0);
            }
        }
    }

    /// The visible length of each object.
    pub fn object_lengths(&self) -> BTreeMap<String, u64> {
        self.state
            .borrow()
            .current
            .iter()
            .map(|(k, v)| (k.clone(), v.len() as u64))
            .collect()
    }
}

impl Storage for SimDisk {
    fn kind(&self) -> &'static str {
        "sim"
    }

    /// As the directory backend, so that the crash suites run with spare segment objects.
    fn new_objects_cost_a_flush(&self) -> bool {
        true
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        let mut state = self.state.borrow_mut();
        state.tick()?;
        Ok(state.current.keys().cloned().collect())
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        let mut state = self.state.borrow_mut();
        state.tick()?;
        Ok(state.current.get(object).map(|v| v.len() as u64))
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        let mut state = self.state.borrow_mut();
        state.tick()?;
        Ok(read_from(state.current.get(object), offset, buf))
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        let mut state = self.state.borrow_mut();
        for change in commit.changes {
            state.tick()?;
            apply_change(&mut state.current, &change);
            if !matches!(change, Change::Write { .. }) {
                // A later truncation or deletion of the object settles its unsynced writes: a
                // deleted file's data is gone, and (conservatively) a truncated one's too.
                let object = change.object().to_string();
                state.unsynced.retain(|c| c.object() != object);
            }
            if commit.unsynced {
                state.unsynced.push(change);
            } else {
                state.pending.push(change);
            }
        }
        if commit.durable {
            state.tick()?;
            let pending = std::mem::take(&mut state.pending);
            for change in &pending {
                apply_change(&mut state.durable, change);
            }
        }
        Ok(())
    }
}
