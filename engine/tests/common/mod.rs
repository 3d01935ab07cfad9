//! A plain in-memory model of a store, shared by the model-based and crash tests.

#![allow(dead_code)]

use pollster::block_on;
use strata_engine::storage::Storage;
use strata_engine::{Store, VolumeId};

/// What a store must read, kept as whole images.
pub struct Model {
    pub block_size: usize,
    pub blocks: u64,
    pub head: Vec<u8>,
    pub synced_head: Vec<u8>,
    pub synced_next_seq: u64,
    /// Records written since the last durability point: (entries, image after the record).
    pub unsynced: Vec<(u64, Vec<u8>)>,
    pub next_seq: u64,
    pub snapshots: Vec<(VolumeId, Vec<u8>)>,
}

impl Model {
    pub fn new(block_size: usize, blocks: u64) -> Self {
        let image = vec![0; blocks as usize * block_size];
        Model {
            block_size,
            blocks,
            head: image.clone(),
            synced_head: image,
            synced_next_seq: 1,
            unsynced: Vec::new(),
            next_seq: 1,
            snapshots: Vec::new(),
        }
    }

    /// One record of writes was appended.
    pub fn apply(&mut self, writes: &[(u64, Vec<u8>)]) {
        for (addr, data) in writes {
            let start = *addr as usize * self.block_size;
            self.head[start..start + data.len()].copy_from_slice(data);
        }
        self.next_seq += writes.len() as u64;
        self.unsynced.push((writes.len() as u64, self.head.clone()));
    }

    /// Everything so far is durable.
    pub fn synced(&mut self) {
        self.synced_head = self.head.clone();
        self.synced_next_seq = self.next_seq;
        self.unsynced.clear();
    }

    /// A snapshot returned `id`: it holds the head as it is, and everything is durable.
    pub fn snapshot(&mut self, id: VolumeId) {
        self.snapshots.push((id, self.head.clone()));
        self.synced();
    }

    /// After a crash and reopen: the store must hold every acknowledged write and a prefix of
    /// the unacknowledged records. Adopts what survived as the new model state.
    pub fn recovered<S: Storage>(&mut self, store: &Store<S>) -> Result<(), String> {
        let recovered = store.info().next_seq;
        if recovered < self.synced_next_seq {
            return Err(format!(
                "acknowledged writes lost: store resumes at seq {recovered}, {} were synced",
                self.synced_next_seq
            ));
        }
        let mut entries = self.synced_next_seq;
        let mut image = self.synced_head.clone();
        for (n, after) in &self.unsynced {
            if entries == recovered {
                break;
            }
            entries += n;
            image = after.clone();
        }
        if entries != recovered {
            return Err(format!(
                "recovery resumed at seq {recovered}, inside a record or past the log"
            ));
        }
        self.head = image;
        self.next_seq = recovered;
        self.synced();
        Ok(())
    }

    /// Every volume of the store reads exactly as the model says.
    pub fn check<S: Storage>(&self, store: &Store<S>) -> Result<(), String> {
        let head = block_on(store.read(0, self.blocks)).map_err(|e| format!("read head: {e}"))?;
        if head != self.head {
            return Err(first_difference("head", &head, &self.head, self.block_size));
        }
        for (id, image) in &self.snapshots {
            let got = block_on(store.read_at(*id, 0, self.blocks))
                .map_err(|e| format!("read snapshot {id}: {e}"))?;
            if &got != image {
                return Err(first_difference(
                    &format!("snapshot {id}"),
                    &got,
                    image,
                    self.block_size,
                ));
            }
        }
        let baseline = block_on(store.read_at(VolumeId::BASELINE, 0, self.blocks))
            .map_err(|e| e.to_string())?;
        if baseline.iter().any(|&b| b != 0) {
            return Err("baseline is not zero".into());
        }
        let ids: Vec<VolumeId> = store.volumes().iter().map(|v| v.id).collect();
        let mut expected = vec![VolumeId::BASELINE];
        expected.extend(self.snapshots.iter().map(|(id, _)| *id));
        expected.push(store.head());
        if ids != expected {
            return Err(format!("volumes {ids:?}, expected {expected:?}"));
        }
        if store.info().next_seq != self.next_seq {
            return Err(format!(
                "next seq {} expected {}",
                store.info().next_seq,
                self.next_seq
            ));
        }
        Ok(())
    }
}

fn first_difference(what: &str, got: &[u8], expected: &[u8], block_size: usize) -> String {
    let at = got
        .iter()
        .zip(expected)
        .position(|(a, b)| a != b)
        .unwrap_or(0);
    format!(
        "{what} differs from the model at block {} (read {:#04x}, expected {:#04x})",
        at / block_size,
        got[at],
        expected[at]
    )
}
