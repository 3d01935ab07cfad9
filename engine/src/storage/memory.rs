//! In-memory backend: for tests, demos and the browser's `memory` option.
//!
//! Clones share the same objects, so a test can "close" a store and open it again from a clone.
//! Everything is durable as soon as it is written (there is no crash to survive).

use std::cell::RefCell;
use std::rc::Rc;

use super::{apply_change, read_from, Commit, Objects, Storage, StorageError};

/// Objects held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStorage {
    objects: Rc<RefCell<Objects>>,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Total bytes held.
    pub fn bytes(&self) -> u64 {
        self.objects.borrow().values().map(|v| v.len() as u64).sum()
    }

    /// Runs `f` on the raw object map (tests use it to damage bytes on purpose).
    pub fn with_objects<T>(&self, f: impl FnOnce(&mut Objects) -> T) -> T {
        f(&mut self.objects.borrow_mut())
    }
}

impl Storage for MemoryStorage {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn list(&self) -> Result<Vec<String>, StorageError> {
        Ok(self.objects.borrow().keys().cloned().collect())
    }

    async fn len(&self, object: &str) -> Result<Option<u64>, StorageError> {
        Ok(self.objects.borrow().get(object).map(|v| v.len() as u64))
    }

    async fn read_at(
        &self,
        object: &str,
        offset: u64,
        buf: &mut [u8],
    ) -> Result<usize, StorageError> {
        Ok(read_from(self.objects.borrow().get(object), offset, buf))
    }

    async fn commit(&mut self, commit: Commit) -> Result<(), StorageError> {
        let mut objects = self.objects.borrow_mut();
        for change in &commit.changes {
            apply_change(&mut objects, change);
        }
        Ok(())
    }
}
