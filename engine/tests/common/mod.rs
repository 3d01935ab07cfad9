//! A plain in-memory model of a store, shared by the model-based and crash tests.

#![allow(dead_code)]

pub mod legs;

use pollster::block_on;
use strata_engine::storage::Storage;
use strata_engine::{Store, VolumeId};

/// The seed of a seeded test: `STRATA_SEED` if set (it must be a `u64`), else `default`;
/// printed so that a failure can be replayed.
pub fn seed_or(default: u64) -> u64 {
    let seed = match std::env::var("STRATA_SEED") {
        Ok(s) => s.parse().expect("STRATA_SEED must be a u64"),
        Err(_) => default,
    };
    println!("seed {seed} (replay with STRATA_SEED={seed})");
    seed
}

/// The crash modes of a random-crash test: everything dropped, everything kept, then `random`
/// crashes that drop, keep or tear each unsynced change.
pub fn crash_modes(random: usize) -> impl Iterator<Item = strata_engine::storage::sim::CrashMode> {
    use strata_engine::storage::sim::CrashMode;
    [CrashMode::DropAll, CrashMode::KeepAll]
        .into_iter()
        .chain(std::iter::repeat_n(CrashMode::Random, random))
}

/// Rewrites the store header of `meta-0000000000000001` to carry format `version`,
/// re-checksummed: a store as an older build would have written it.
pub fn set_header_version(storage: &strata_engine::storage::memory::MemoryStorage, version: u32) {
    edit_store_header(storage, |payload| {
        payload[0..4].copy_from_slice(&version.to_le_bytes())
    });
}

/// Edits the payload of the store header (the journal's first record: format version at 0,
/// block size at 4, block count at 8, ...) of `meta-0000000000000001`, re-checksummed.
pub fn edit_store_header(
    storage: &strata_engine::storage::memory::MemoryStorage,
    edit: impl FnOnce(&mut [u8]),
) {
    storage.with_objects(|objects| {
        let journal = objects.get_mut("meta-0000000000000001").expect("journal");
        let len = u32::from_le_bytes(journal[8..12].try_into().expect("4 bytes")) as usize;
        edit(&mut journal[16..16 + len]);
        let c = crc32c::crc32c_append(crc32c::crc32c(&journal[..12]), &journal[16..16 + len]);
        journal[12..16].copy_from_slice(&c.to_le_bytes());
    });
}

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
    /// What volume 0 reads (changes when snapshots are merged into it).
    pub baseline: Vec<u8>,
    /// Entries in the head partition (a rollback removes an empty head instead of sealing it).
    pub head_entries: u64,
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
            baseline: vec![0; blocks as usize * block_size],
            head_entries: 0,
        }
    }

    /// The image of a volume the model knows (the baseline or a snapshot).
    pub fn image_of(&self, id: VolumeId) -> Option<Vec<u8>> {
        if id == VolumeId::BASELINE {
            return Some(self.baseline.clone());
        }
        self.snapshots
            .iter()
            .find(|(v, _)| *v == id)
            .map(|(_, i)| i.clone())
    }

    /// A rollback to `to` returned: the old head became a snapshot (if it held entries).
    pub fn rolled_back(&mut self, old_head: VolumeId, to: VolumeId) {
        if self.head_entries > 0 {
            self.snapshots.push((old_head, self.head.clone()));
        }
        self.head = self.image_of(to).expect("rollback target is known");
        self.head_entries = 0;
        self.synced();
    }

    /// Snapshots up to and including `target` (a chain from the oldest) were merged.
    pub fn merged(&mut self, chain: &[VolumeId]) {
        if let Some(last) = chain.last() {
            self.baseline = self.image_of(*last).expect("merged snapshot is known");
        }
        self.snapshots.retain(|(v, _)| !chain.contains(v));
    }

    /// One record of writes was appended.
    pub fn apply(&mut self, writes: &[(u64, Vec<u8>)]) {
        for (addr, data) in writes {
            let start = *addr as usize * self.block_size;
            self.head[start..start + data.len()].copy_from_slice(data);
        }
        self.next_seq += writes.len() as u64;
        self.head_entries += 1;
        self.unsynced.push((writes.len() as u64, self.head.clone()));
    }

    /// The runs (first block, length) of `blocks` blocks from `addr` whose head data is not
    /// all zeros.
    pub fn nonzero_runs(&self, addr: u64, blocks: u64) -> Vec<(u64, u64)> {
        let mut runs: Vec<(u64, u64)> = Vec::new();
        for a in addr..addr + blocks {
            let start = a as usize * self.block_size;
            if self.head[start..start + self.block_size]
                .iter()
                .all(|&b| b == 0)
            {
                continue;
            }
            match runs.last_mut() {
                Some((first, n)) if *first + *n == a => *n += 1,
                _ => runs.push((a, 1)),
            }
        }
        runs
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
        self.head_entries = 0;
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
        self.head_entries = store.volume(store.head()).map_or(0, |v| v.entry_count);
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
        if baseline != self.baseline {
            return Err(first_difference(
                "baseline",
                &baseline,
                &self.baseline,
                self.block_size,
            ));
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
