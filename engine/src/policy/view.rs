//! What a policy looks at: a read-only [`StoreView`] (plain data the executor fills from the
//! store) and per-volume [`VolumeAssignments`].

use litemap::LiteMap;

use serde::{Deserialize, Serialize};

use super::decision::{Decision, Origin};
use crate::{StoreInfo, VolumeId, VolumeInfo, VolumeKind};

/// One volume, as a policy sees it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeView {
    /// Its identifier ([`VolumeId::BASELINE`] for the baseline).
    pub id: VolumeId,
    /// Its label (empty if none).
    #[serde(default)]
    pub label: String,
    /// Parent volume (`None` for the baseline).
    #[serde(default)]
    pub parent: Option<VolumeId>,
    /// When the partition was created (ms since the Unix epoch).
    pub created_ms: u64,
    /// When it was sealed, i.e. when the snapshot was taken; `None` while it is writable.
    #[serde(default)]
    pub sealed_ms: Option<u64>,
    /// Whether it is the live, writable head.
    #[serde(default)]
    pub is_head: bool,
    /// Bytes it occupies.
    #[serde(default)]
    pub bytes: u64,
    /// Bytes in-place compaction would free (entries overwritten within the partition).
    #[serde(default)]
    pub reclaimable_bytes: u64,
}

impl VolumeView {
    /// Whether this is a sealed snapshot partition: not the baseline, not the head, sealed.
    /// Only snapshots are ever deleted, merged or compacted by a policy.
    pub fn is_snapshot(&self) -> bool {
        self.id != VolumeId::BASELINE && !self.is_head && self.sealed_ms.is_some()
    }

    /// The moment the snapshot stands for: when it was sealed (its creation time if unsealed).
    /// Ages, buckets and "newest" are all measured on this.
    pub fn snapshot_ms(&self) -> u64 {
        self.sealed_ms.unwrap_or(self.created_ms)
    }
}

impl From<&VolumeInfo> for VolumeView {
    /// The store's description of a volume; `reclaimable_bytes` is left at 0 for the executor
    /// to fill in.
    fn from(info: &VolumeInfo) -> Self {
        VolumeView {
            id: info.id,
            label: info.label.clone(),
            parent: info.parent,
            created_ms: info.created_ms,
            sealed_ms: info.sealed_ms,
            is_head: info.kind == VolumeKind::Head,
            bytes: info.bytes,
            reclaimable_bytes: 0,
        }
    }
}

/// A read-only picture of a store: everything a policy may look at.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreView {
    /// Every volume, the baseline included (order does not matter).
    #[serde(default)]
    pub volumes: Vec<VolumeView>,
    /// Bytes of log segments.
    #[serde(default)]
    pub log_bytes: u64,
    /// Number of log partitions (snapshots plus the head).
    #[serde(default)]
    pub partition_count: u64,
    /// Log entries written since the last snapshot.
    #[serde(default)]
    pub writes_since_snapshot: u64,
    /// Bytes written since the last snapshot.
    #[serde(default)]
    pub bytes_since_snapshot: u64,
    /// When the last snapshot was taken.
    #[serde(default)]
    pub last_snapshot_ms: Option<u64>,
    /// When the last copy to each tertiary volume finished, by target name.
    #[serde(default, serialize_with = "as_map", deserialize_with = "from_map")]
    pub last_copy_ms: LiteMap<String, u64>,
    /// When each rule last produced a decision that was carried out, by rule index. The
    /// executor keeps this (see [`StoreView::record_run`]) and clears it when a different
    /// policy is assigned, since indices then mean other rules.
    #[serde(default, serialize_with = "as_map", deserialize_with = "from_map")]
    pub rule_last_run_ms: LiteMap<usize, u64>,
    /// Free bytes of the browser's storage quota; `None` where there is no quota.
    #[serde(default)]
    pub quota_free_bytes: Option<u64>,
}

/// Writes `map` as a map even when empty (a `LiteMap` alone writes an empty one as `[]`,
/// which the documents of earlier versions, `BTreeMap`s, never held).
pub(crate) fn as_map<K: Serialize, V: Serialize, S: serde::Serializer>(
    map: &LiteMap<K, V>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_map(map.iter())
}

/// Reads a map into a `LiteMap` entry by entry, a later repeat of a key replacing the earlier
/// one as in a `BTreeMap` (`LiteMap`'s own reader sorts out-of-order entries with a stable
/// sort, one more instantiation of it per map type in the WebAssembly module).
pub(crate) fn from_map<'de, K, V, D>(deserializer: D) -> Result<LiteMap<K, V>, D::Error>
where
    K: Deserialize<'de> + Ord,
    V: Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    struct Entries<K, V>(std::marker::PhantomData<(K, V)>);

    impl<'de, K: Deserialize<'de> + Ord, V: Deserialize<'de>> serde::de::Visitor<'de>
        for Entries<K, V>
    {
        type Value = LiteMap<K, V>;

        fn expecting(&self, formatter: &mut std::fmt::Formatter) -> std::fmt::Result {
            formatter.write_str("a map")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut access: A,
        ) -> Result<Self::Value, A::Error> {
            let mut map = LiteMap::new();
            while let Some((key, value)) = access.next_entry()? {
                map.insert(key, value);
            }
            Ok(map)
        }
    }

    deserializer.deserialize_map(Entries(std::marker::PhantomData))
}

impl StoreView {
    /// A view of a store from [`Store::info`](crate::Store::info) and
    /// [`Store::volumes`](crate::Store::volumes). The counters since the last snapshot, the
    /// reclaimable bytes, the last-run and last-copy times and the quota are the executor's to
    /// fill in.
    ///
    /// A parked branch's head (a snapshot by kind, sealed when its branch was switched away from)
    /// is not a snapshot to a policy: no rule sees it, so none deletes, merges or counts it.
    pub fn from_store(info: &StoreInfo, volumes: &[VolumeInfo]) -> Self {
        let parked_head = |v: &&VolumeInfo| v.kind == VolumeKind::Snapshot && !v.branch.is_empty();
        StoreView {
            volumes: volumes
                .iter()
                .filter(|v| !parked_head(v))
                .map(VolumeView::from)
                .collect(),
            log_bytes: info.log_bytes,
            partition_count: info.partitions as u64,
            last_snapshot_ms: volumes
                .iter()
                .filter(|v| !parked_head(v))
                .filter(|v| v.kind == VolumeKind::Snapshot)
                .filter_map(|v| v.sealed_ms)
                .max(),
            ..StoreView::default()
        }
    }

    /// The volume `id`, if present.
    pub fn volume(&self, id: VolumeId) -> Option<&VolumeView> {
        self.volumes.iter().find(|v| v.id == id)
    }

    /// The head volume, if present (the lowest identifier if, wrongly, several claim to be).
    pub fn head(&self) -> Option<&VolumeView> {
        self.volumes
            .iter()
            .filter(|v| v.is_head)
            .min_by_key(|v| v.id)
    }

    /// The newest snapshot: the greatest [`VolumeView::snapshot_ms`], ties broken by the
    /// greatest identifier. No policy ever deletes or merges it.
    pub fn newest_snapshot(&self) -> Option<&VolumeView> {
        self.volumes
            .iter()
            .filter(|v| v.is_snapshot())
            .max_by_key(|v| (v.snapshot_ms(), v.id))
    }

    /// Policy bookkeeping after `decision` was carried out at `at_ms`: the rule that produced it
    /// has run (for intervals and cooldowns). Store effects (a new volume, a later copy time)
    /// are not this method's business: the executor reads them back from the store, and a
    /// simulation's `apply` models them.
    pub fn record_run(&mut self, decision: &Decision, at_ms: u64) {
        if let Origin::Rule { index, .. } = decision.reason().origin {
            self.rule_last_run_ms.insert(index, at_ms);
        }
    }
}

/// What is assigned to one volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Assignment {
    /// A hold: no rule and no TTL may delete or merge the volume.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
    /// Time to live: the volume is deleted once its snapshot is this old, and store-wide
    /// retention neither deletes it earlier nor keeps it longer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

/// Per-volume assignments (holds and TTLs), keyed by volume.
///
/// Serialised as a list, `[{"volume": 5, "hold": true}, {"volume": 7, "ttl_ms": 86400000}]`,
/// so that TOML (whose keys are strings) reads it too.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(into = "Vec<AssignmentEntry>", try_from = "Vec<AssignmentEntry>")]
pub struct VolumeAssignments {
    by_volume: LiteMap<VolumeId, Assignment>,
}

/// One element of the serialised form of [`VolumeAssignments`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssignmentEntry {
    /// The volume.
    pub volume: VolumeId,
    /// A hold.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hold: bool,
    /// Time to live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_ms: Option<u64>,
}

impl From<VolumeAssignments> for Vec<AssignmentEntry> {
    fn from(assignments: VolumeAssignments) -> Self {
        assignments
            .by_volume
            .into_iter()
            .map(|(volume, a)| AssignmentEntry {
                volume,
                hold: a.hold,
                ttl_ms: a.ttl_ms,
            })
            .collect()
    }
}

impl TryFrom<Vec<AssignmentEntry>> for VolumeAssignments {
    type Error = String;

    fn try_from(entries: Vec<AssignmentEntry>) -> Result<Self, String> {
        let mut out = VolumeAssignments::default();
        for (i, e) in entries.into_iter().enumerate() {
            let assignment = Assignment {
                hold: e.hold,
                ttl_ms: e.ttl_ms,
            };
            if out.by_volume.insert(e.volume, assignment).is_some() {
                return Err(format!("[{i}].volume: volume {} is listed twice", e.volume));
            }
        }
        Ok(out)
    }
}

impl VolumeAssignments {
    /// No assignments.
    pub fn new() -> Self {
        Self::default()
    }

    /// What is assigned to `volume` (the default, nothing, if it has no entry).
    pub fn get(&self, volume: VolumeId) -> Assignment {
        self.by_volume.get(&volume).copied().unwrap_or_default()
    }

    /// Replaces what is assigned to `volume`; the default assignment removes the entry.
    pub fn set(&mut self, volume: VolumeId, assignment: Assignment) {
        if assignment == Assignment::default() {
            self.by_volume.remove(&volume);
        } else {
            self.by_volume.insert(volume, assignment);
        }
    }

    /// Places or releases a hold on `volume`.
    pub fn set_hold(&mut self, volume: VolumeId, hold: bool) {
        let assignment = Assignment {
            hold,
            ..self.get(volume)
        };
        self.set(volume, assignment);
    }

    /// Sets or clears the time to live of `volume`.
    pub fn set_ttl_ms(&mut self, volume: VolumeId, ttl_ms: Option<u64>) {
        let assignment = Assignment {
            ttl_ms,
            ..self.get(volume)
        };
        self.set(volume, assignment);
    }

    /// Whether `volume` is held.
    pub fn is_held(&self, volume: VolumeId) -> bool {
        self.get(volume).hold
    }

    /// Every volume with an assignment, in identifier order.
    pub fn iter(&self) -> impl Iterator<Item = (VolumeId, Assignment)> + '_ {
        self.by_volume.iter().map(|(v, a)| (*v, *a))
    }

    /// Drops the entries of volumes no longer in `view` (after deletions and merges).
    pub fn prune(&mut self, view: &StoreView) {
        self.by_volume
            .retain(|id, _| view.volumes.iter().any(|v| v.id == *id));
    }
}
