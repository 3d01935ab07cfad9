//! The store's public value types: how a store is created, what it reports, where a cursor starts.
//!
//! # Boundary types
//!
//! What a store reports ([`VolumeInfo`], [`StoreInfo`], [`RecoveryReport`], [`LogEntry`], and
//! beside them `CompactReport`, `CopyReport`, `Extent` and `SpaceInfo`) is described once, here,
//! with serde: field names in camelCase, volume identifiers and quantities as plain numbers,
//! options as `null`. The CLI prints these types as its JSON (`--json`), the wasm bindings hand
//! them to JavaScript with serde-wasm-bindgen, the dashboard reads them back with it, and the
//! TypeScript declarations (`wasm/js/client.d.ts`) declare the same fields; the test
//! `tests/npm/shapes.test.mjs` compares the three so that they cannot drift apart.

use serde::{Deserialize, Serialize};

use crate::VolumeId;

/// How a store is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// Block size in bytes: a power of two in `512..=65536`.
    pub block_size: u32,
    /// Number of blocks in the volume.
    pub block_count: u64,
    /// An identifier for the store; derived from the clock when `None`.
    pub store_id: Option<u64>,
}

impl CreateOptions {
    /// `block_count` blocks of the default size, 4096 bytes.
    pub fn new(block_count: u64) -> Self {
        CreateOptions {
            block_size: 4096,
            block_count,
            store_id: None,
        }
    }

    /// Sets the block size.
    pub fn block_size(mut self, block_size: u32) -> Self {
        self.block_size = block_size;
        self
    }
}

/// What the baseline holds (`"zero"` or `"image"` across the boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BaselineKind {
    /// All zeros (the store was created empty).
    Zero,
    /// An imported image.
    Image,
}

/// Where a volume sits in the tree (`"baseline"`, `"snapshot"` or `"head"` across the boundary).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    /// The baseline partition (volume 0).
    Baseline,
    /// A sealed snapshot partition.
    Snapshot,
    /// The live, writable head.
    Head,
}

impl VolumeKind {
    /// `"baseline"`, `"snapshot"` or `"head"`, as the boundary spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            VolumeKind::Baseline => "baseline",
            VolumeKind::Snapshot => "snapshot",
            VolumeKind::Head => "head",
        }
    }
}

impl std::fmt::Display for VolumeKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl BaselineKind {
    /// `"zero"` or `"image"`, as the boundary spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BaselineKind::Zero => "zero",
            BaselineKind::Image => "image",
        }
    }
}

impl std::fmt::Display for BaselineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A description of one volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeInfo {
    /// Its identifier.
    pub id: VolumeId,
    /// Baseline, snapshot or head.
    pub kind: VolumeKind,
    /// The label given at snapshot time (empty if none).
    pub label: String,
    /// Parent volume (`None` for the baseline).
    pub parent: Option<VolumeId>,
    /// The branch whose head this volume is (the live head's: the active branch; a parked
    /// branch's: its sealed head), or empty.
    pub branch: String,
    /// When the partition was created (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it was sealed, for snapshots.
    pub sealed_ms: Option<u64>,
    /// Log entries in the partition.
    pub entry_count: u64,
    /// Blocks written in the partition (over all its entries).
    pub blocks_written: u64,
    /// Bytes the partition occupies on storage.
    pub bytes: u64,
    /// Sequence number of the partition's first entry.
    pub first_seq: u64,
    /// Sequence number after its last entry.
    pub next_seq: u64,
}

/// Facts about a store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    /// The storage backend's kind (`"dir"`, `"memory"`, `"opfs"`, `"indexeddb"`, ...).
    pub backend: String,
    /// Block size.
    pub block_size: u32,
    /// Number of blocks.
    pub block_count: u64,
    /// What the baseline holds.
    pub baseline: BaselineKind,
    /// Store identifier: 64 random bits, which a JavaScript number cannot hold, so it travels as
    /// 16 hexadecimal digits.
    #[serde(with = "hex_u64")]
    pub store_id: u64,
    /// Creation time.
    pub created_ms: u64,
    /// The live head volume.
    pub head: VolumeId,
    /// Next sequence number to be assigned.
    pub next_seq: u64,
    /// Number of log partitions (snapshots plus the head).
    pub partitions: usize,
    /// Bytes of log segments.
    pub log_bytes: u64,
    /// Distinct block addresses written in the log.
    pub mapped_blocks: usize,
    /// Approximate heap bytes of the block index.
    pub index_bytes: usize,
    /// What recovery did when the store was opened.
    pub recovery: RecoveryReport,
}

/// A `u64` as 16 lowercase hexadecimal digits.
mod hex_u64 {
    use serde::{de::Error as _, Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(value: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&format_args!("{value:016x}"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = String::deserialize(deserializer)?;
        u64::from_str_radix(&text, 16).map_err(D::Error::custom)
    }
}

/// Block data as bytes (a `Uint8Array` in JavaScript), not as a list of numbers.
mod optional_bytes {
    use serde::de::{SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Vec<u8>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(bytes) => serializer.serialize_bytes(bytes),
            None => serializer.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Vec<u8>>, D::Error> {
        Option::<Bytes>::deserialize(deserializer).map(|b| b.map(|b| b.0))
    }

    /// Bytes from a byte buffer (serde-wasm-bindgen's `Uint8Array`) or a list of numbers (JSON).
    struct Bytes(Vec<u8>);

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            deserializer.deserialize_byte_buf(BytesVisitor)
        }
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Bytes;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }

        fn visit_bytes<E>(self, bytes: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes(bytes.to_vec()))
        }

        fn visit_byte_buf<E>(self, bytes: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes(bytes))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
            let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(byte) = seq.next_element()? {
                bytes.push(byte);
            }
            Ok(Bytes(bytes))
        }
    }
}

/// What recovery did when the store was opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecoveryReport {
    /// Bytes cut from the metadata journal's torn tail.
    pub journal_bytes_truncated: u64,
    /// Bytes cut from the head segment's torn tail.
    pub head_bytes_truncated: u64,
    /// Sealed partitions whose index and footer were rebuilt from their records (a crash lost
    /// the tail that a snapshot after a sync writes without a flush, or it was damaged); written
    /// back unless the store was opened read-only.
    pub sealed_tails_rebuilt: u64,
    /// Bytes of the head segment that the commit point says were synced but that were cut (only
    /// a mirror's secondary opens like this: its legs give those writes back).
    pub head_bytes_lost: u64,
    /// Snapshots redone from their segments: the segment recorded the seal (a snapshot taken
    /// with unsynced writes), a crash came before the journal did; the journal records it now
    /// (unless the store was opened read-only).
    #[serde(default)]
    pub seals_redone: u64,
}

/// Where a log cursor starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CursorStart {
    /// The first entry of the log.
    Beginning,
    /// The first entry with this sequence number or a later one.
    Seq(u64),
    /// The first entry of this volume's partition.
    Volume(VolumeId),
}

/// One entry of the log, as returned by [`crate::Store::next_entry`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEntry {
    /// Sequence number.
    pub seq: u64,
    /// Volume (partition) it belongs to.
    pub volume: VolumeId,
    /// First block address.
    pub addr: u64,
    /// Number of blocks.
    pub blocks: u32,
    /// Commit time (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// A zero extent (a trim, write-zeroes, or a write of all-zero blocks): the blocks read as
    /// zeros, and `data` is `None` even when asked for (it would be only zeros).
    pub zero: bool,
    /// The data, when asked for (never for a zero extent).
    #[serde(with = "optional_bytes")]
    pub data: Option<Vec<u8>>,
}
