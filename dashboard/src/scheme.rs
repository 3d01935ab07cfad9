//! The scheme: the store drawn as it is built. The baseline at the bottom, each partition as a
//! layer above its parent (a branch beside the line it left), each layer's blocks in a fixed
//! number of buckets, and for one volume which layer serves each bucket (its read path).
//!
//! Everything here is computed from the engine's `volumes()` and `blockMap()` replies, so it is
//! plain data that the views draw and the unit tests check; [`Change`] compares two schemes to
//! show what a compaction, merge or deletion did.

use crate::client::{Bucket, VolumeInfo, VolumeKind};
use crate::format::format_bytes;

/// Buckets per layer. Fixed, so that a million-block volume costs as little to draw as a small
/// one: at most this many shapes per layer, never one per block.
pub const SCHEME_BUCKETS: u64 = 64;

/// Layers drawn at most (and block maps asked for): a store may hold up to 100,000 partitions,
/// and a drawing of more than a few dozen layers teaches nothing. The read volume's line and
/// the newest volumes are kept (see [`select_layers`]).
pub const SCHEME_LAYERS_MAX: usize = 40;

/// The volumes the scheme draws when there are more than `max`: the baseline, the head, the
/// read volume and its ancestors (newest first), then the newest others. Each kept volume's
/// parent becomes its nearest kept ancestor, so the drawing stays one tree. Returns the kept
/// volumes and the ids left out.
pub fn select_layers(
    volumes: &[VolumeInfo],
    read_volume: u64,
    max: usize,
) -> (Vec<VolumeInfo>, Vec<u64>) {
    if volumes.len() <= max {
        return (volumes.to_vec(), Vec::new());
    }
    let find = |id: u64| volumes.iter().find(|v| v.id.0 == id);
    let mut keep: Vec<u64> = Vec::with_capacity(max);
    let add = |id: u64, keep: &mut Vec<u64>| {
        if keep.len() < max && !keep.contains(&id) {
            keep.push(id);
        }
    };
    for v in volumes
        .iter()
        .filter(|v| matches!(v.kind, VolumeKind::Baseline | VolumeKind::Head))
    {
        add(v.id.0, &mut keep);
    }
    let mut at = find(read_volume);
    while let Some(v) = at {
        add(v.id.0, &mut keep);
        at = v.parent.and_then(|p| find(p.0));
    }
    let mut newest: Vec<u64> = volumes.iter().map(|v| v.id.0).collect();
    newest.sort_unstable_by(|a, b| b.cmp(a));
    for id in newest {
        add(id, &mut keep);
    }
    let kept = volumes
        .iter()
        .filter(|v| keep.contains(&v.id.0))
        .map(|v| {
            let mut v = v.clone();
            // The nearest kept ancestor (the baseline is always kept).
            let mut parent = v.parent;
            while let Some(p) = parent.filter(|p| !keep.contains(&p.0)) {
                parent = find(p.0).and_then(|a| a.parent);
            }
            v.parent = parent;
            v
        })
        .collect();
    let omitted = volumes
        .iter()
        .map(|v| v.id.0)
        .filter(|id| !keep.contains(id))
        .collect();
    (kept, omitted)
}

/// Who serves a bucket of a volume: the baseline image, a partition, or nobody (zeros).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    Zero,
    Baseline,
    Partition(u64),
}

impl Source {
    /// What `blockMap` said serves most of a bucket.
    pub fn of(bucket: &Bucket) -> Source {
        match (bucket.origin.as_str(), bucket.volume) {
            ("partition", Some(volume)) => Source::Partition(volume),
            ("baseline", _) => Source::Baseline,
            _ => Source::Zero,
        }
    }

    /// The layer this source is drawn in: a partition's own, the baseline's (volume 0) for the
    /// baseline image; `None` for zeros (never written).
    pub fn layer(self) -> Option<u64> {
        match self {
            Source::Zero => None,
            Source::Baseline => Some(0),
            Source::Partition(volume) => Some(volume),
        }
    }
}

/// One partition drawn as a layer.
#[derive(Clone, Debug, PartialEq)]
pub struct Layer {
    pub id: u64,
    pub kind: VolumeKind,
    pub label: String,
    pub branch: String,
    pub parent: Option<u64>,
    pub entries: u64,
    /// Bytes its partition occupies.
    pub bytes: u64,
    /// A deleted volume whose partition is kept because a descendant still reads from it: the
    /// engine no longer lists it, so it is known only from its children and the block maps.
    pub deleted: bool,
    /// Per bucket: whether this layer holds (serves, in its own volume) most of its blocks.
    pub held: Vec<bool>,
    /// Layers below it, down to the baseline (0 for the baseline).
    pub depth: usize,
    /// Its column: 0 for the line to the live head, one more for each branch off it.
    pub lane: usize,
}

impl Layer {
    pub fn held_buckets(&self) -> usize {
        self.held.iter().filter(|h| **h).count()
    }

    /// "volume 3 “label”", for text alternatives and messages.
    pub fn name(&self) -> String {
        match (self.kind, self.label.is_empty()) {
            _ if self.deleted => format!("deleted volume {} (kept for its descendants)", self.id),
            (VolumeKind::Baseline, _) => "the baseline (volume 0)".into(),
            (_, true) => format!("volume {}", self.id),
            (_, false) => format!("volume {} “{}”", self.id, self.label),
        }
    }
}

/// The whole store as layers, and the read path of one volume.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Scheme {
    pub block_count: u64,
    /// Each bucket's first block and number of blocks (the same for every layer).
    pub buckets: Vec<(u64, u64)>,
    pub layers: Vec<Layer>,
    /// The volume whose read path is drawn.
    pub read_volume: u64,
    /// Per bucket, who serves it to `read_volume`.
    pub read_path: Vec<Source>,
    pub lanes: usize,
    /// Volumes left out of the drawing ([`SCHEME_LAYERS_MAX`]).
    pub omitted: Vec<u64>,
}

impl Scheme {
    /// Builds the scheme from `volumes`, each volume's block map (`maps`, by volume id; the
    /// baseline's too) and the read volume's map. Volumes without a map are drawn empty.
    /// `omitted`: volumes that exist but are not drawn ([`select_layers`]); blocks read from
    /// them are not taken for a deleted volume's.
    pub fn build(
        block_count: u64,
        volumes: &[VolumeInfo],
        maps: &[(u64, Vec<Bucket>)],
        read_volume: u64,
        omitted: &[u64],
    ) -> Scheme {
        let buckets: Vec<(u64, u64)> = maps
            .iter()
            .find(|(_, map)| !map.is_empty())
            .map(|(_, map)| map.iter().map(|b| (b.first_addr, b.blocks)).collect())
            .unwrap_or_default();
        let map_of = |id: u64| maps.iter().find(|(v, _)| *v == id).map(|(_, m)| m);
        let mut layers: Vec<Layer> = volumes
            .iter()
            .map(|v| {
                let own = if v.kind == VolumeKind::Baseline {
                    Source::Baseline
                } else {
                    Source::Partition(v.id.0)
                };
                let held = match map_of(v.id.0) {
                    Some(map) => map.iter().map(|b| Source::of(b) == own).collect(),
                    None => vec![false; buckets.len()],
                };
                Layer {
                    id: v.id.0,
                    kind: v.kind,
                    label: v.label.clone(),
                    branch: v.branch.clone(),
                    parent: v.parent.map(|p| p.0),
                    entries: v.entry_count,
                    bytes: v.bytes,
                    deleted: false,
                    held,
                    depth: 0,
                    lane: 0,
                }
            })
            .collect();
        // A deleted volume kept for its descendants: the engine no longer lists it, but a child
        // may still name it as its parent, or a volume's map may still read from its partition.
        // It is drawn as a layer under them, holding what any volume reads from it (its own
        // block map can no longer be asked for).
        let listed = |id: u64| volumes.iter().any(|v| v.id.0 == id) || omitted.contains(&id);
        let mut missing: Vec<u64> = volumes
            .iter()
            .filter_map(|v| v.parent.map(|p| p.0))
            .chain(maps.iter().flat_map(|(_, map)| {
                map.iter().filter_map(|b| match Source::of(b) {
                    Source::Partition(id) => Some(id),
                    _ => None,
                })
            }))
            .filter(|id| !listed(*id))
            .collect();
        missing.sort_unstable();
        missing.dedup();
        for id in missing {
            let held = (0..buckets.len())
                .map(|i| {
                    maps.iter()
                        .any(|(_, map)| map.get(i).map(Source::of) == Some(Source::Partition(id)))
                })
                .collect();
            // Without a child naming it, it goes under the oldest volume that reads from it.
            let mut parent = None;
            if !layers.iter().any(|l| l.parent == Some(id)) {
                let reader = maps
                    .iter()
                    .filter(|(_, map)| map.iter().any(|b| Source::of(b) == Source::Partition(id)))
                    .map(|(v, _)| *v)
                    .min();
                if let Some(reader) = layers.iter_mut().find(|l| Some(l.id) == reader) {
                    parent = reader.parent.replace(id);
                }
            }
            layers.push(Layer {
                id,
                kind: VolumeKind::Snapshot,
                label: String::new(),
                branch: String::new(),
                parent,
                entries: 0,
                bytes: 0,
                deleted: true,
                held,
                depth: 0,
                lane: 0,
            });
        }
        place(&mut layers);
        let read_path = map_of(read_volume)
            .map(|map| map.iter().map(Source::of).collect())
            .unwrap_or_default();
        Scheme {
            block_count,
            buckets,
            lanes: layers.iter().map(|l| l.lane + 1).max().unwrap_or(1),
            layers,
            read_volume,
            read_path,
            omitted: omitted.to_vec(),
        }
    }

    pub fn layer(&self, id: u64) -> Option<&Layer> {
        self.layers.iter().find(|l| l.id == id)
    }

    /// The rows of the drawing, top (deepest layers) first: per row, one slot per lane.
    pub fn rows(&self) -> Vec<Vec<Option<&Layer>>> {
        let deepest = self.layers.iter().map(|l| l.depth).max().unwrap_or(0);
        (0..=deepest)
            .rev()
            .map(|depth| {
                (0..self.lanes)
                    .map(|lane| {
                        self.layers
                            .iter()
                            .find(|l| l.depth == depth && l.lane == lane)
                    })
                    .collect()
            })
            .collect()
    }

    /// The buckets that blocks `addr .. addr + blocks` touch.
    pub fn buckets_of(&self, addr: u64, blocks: u64) -> std::ops::Range<usize> {
        let end = addr.saturating_add(blocks.max(1));
        let first = self
            .buckets
            .iter()
            .position(|(f, n)| addr < f + n)
            .unwrap_or(self.buckets.len());
        let last = self
            .buckets
            .iter()
            .position(|(f, _)| *f >= end)
            .unwrap_or(self.buckets.len());
        first..last.max(first)
    }

    /// How many buckets of the read volume each layer serves (zeros under `None`), in layer
    /// order: the read path in numbers.
    pub fn served_by(&self, layer: Option<u64>) -> usize {
        self.read_path.iter().filter(|s| s.layer() == layer).count()
    }
}

/// Sets the depth (layers below, to the baseline) and lane of each layer. The line from the
/// baseline to the live head is lane 0; every other child of a layer starts a lane of its own to
/// the right (a branch, or the old line after a rollback), so lines never cross. A layer whose
/// parent is unknown rests on the baseline row (depth 1), in a lane of its own.
fn place(layers: &mut [Layer]) {
    let index_of = |id: u64| layers.iter().position(|l| l.id == id);
    // The live head's ancestry: followed first, so that it stays in lane 0.
    let mut on_head_line = vec![false; layers.len()];
    let mut at = layers.iter().position(|l| l.kind == VolumeKind::Head);
    while let Some(i) = at {
        if on_head_line[i] {
            break;
        }
        on_head_line[i] = true;
        at = layers[i].parent.and_then(index_of);
    }
    let mut placed = vec![false; layers.len()];
    let mut next_lane = 0;
    // Roots (the baseline, and layers whose parent is unknown), the head's line first.
    let mut roots: Vec<usize> = (0..layers.len())
        .filter(|&i| layers[i].parent.and_then(index_of).is_none())
        .collect();
    roots.sort_by_key(|&i| {
        (
            layers[i].kind != VolumeKind::Baseline,
            !on_head_line[i],
            layers[i].id,
        )
    });
    let mut stack: Vec<(usize, usize, Option<usize>)> = roots
        .iter()
        .rev()
        .map(|&i| (i, usize::from(layers[i].kind != VolumeKind::Baseline), None))
        .collect();
    while let Some((i, depth, lane)) = stack.pop() {
        if placed[i] {
            continue;
        }
        placed[i] = true;
        let lane = lane.unwrap_or_else(|| {
            next_lane += 1;
            next_lane - 1
        });
        layers[i].depth = depth;
        layers[i].lane = lane;
        let id = layers[i].id;
        let mut children: Vec<usize> = (0..layers.len())
            .filter(|&c| layers[c].parent == Some(id) && !placed[c])
            .collect();
        // The child on the head's line first, then by id; the first continues this lane.
        children.sort_by_key(|&c| (!on_head_line[c], layers[c].id));
        // Pushed in reverse so that the first child is placed first (depth-first: its whole line
        // takes lanes before its siblings do).
        for (n, &c) in children.iter().enumerate().rev() {
            stack.push((c, depth + 1, (n == 0).then_some(lane)));
        }
    }
}

/// What changed in one layer between two schemes.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerChange {
    pub id: u64,
    /// Buckets it held before and not after (blocks dropped, or the layer gone).
    pub dropped: Vec<usize>,
    /// Buckets it holds after and did not before (a merge folding blocks into the baseline).
    pub gained: Vec<usize>,
    /// The layer is no longer there (merged into the baseline, or deleted).
    pub removed: bool,
    /// Entries and bytes before and after, when they changed and the layer stayed (a
    /// compaction drops overwritten blocks from a layer that keeps its id).
    pub resized: Option<((u64, u64), (u64, u64))>,
}

/// The difference between the scheme before an operation and after it.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Change {
    pub layers: Vec<LayerChange>,
}

impl Change {
    pub fn between(before: &Scheme, after: &Scheme) -> Change {
        let mut layers = Vec::new();
        for old in &before.layers {
            let new = after.layer(old.id);
            let held_after = |i: usize| new.and_then(|n| n.held.get(i).copied()) == Some(true);
            let dropped: Vec<usize> = (0..old.held.len())
                .filter(|&i| old.held[i] && !held_after(i))
                .collect();
            let gained: Vec<usize> = new
                .map(|n| {
                    (0..n.held.len())
                        .filter(|&i| n.held[i] && !old.held.get(i).copied().unwrap_or(false))
                        .collect()
                })
                .unwrap_or_default();
            let resized = new
                .filter(|n| !n.deleted && (n.entries, n.bytes) != (old.entries, old.bytes))
                .map(|n| ((old.entries, old.bytes), (n.entries, n.bytes)));
            if new.is_none() || !dropped.is_empty() || !gained.is_empty() || resized.is_some() {
                layers.push(LayerChange {
                    id: old.id,
                    dropped,
                    gained,
                    removed: new.is_none(),
                    resized,
                });
            }
        }
        Change { layers }
    }

    pub fn of(&self, id: u64) -> Option<&LayerChange> {
        self.layers.iter().find(|c| c.id == id)
    }

    /// The change in words, one sentence per changed layer.
    pub fn describe(&self, before: &Scheme) -> Vec<String> {
        self.layers
            .iter()
            .map(|c| {
                let name = before
                    .layer(c.id)
                    .map(Layer::name)
                    .unwrap_or_else(|| format!("volume {}", c.id));
                let regions = match (c.removed, c.dropped.len(), c.gained.len()) {
                    (true, _, _) => return format!("{name} is gone"),
                    (false, 0, 0) => format!("{name} keeps its id and its regions"),
                    (false, 0, gained) => format!("{name} now holds {gained} more region(s)"),
                    (false, dropped, 0) => {
                        format!("{name} dropped {dropped} region(s) and keeps its id")
                    }
                    (false, dropped, gained) => {
                        format!("{name} dropped {dropped} region(s) and gained {gained}")
                    }
                };
                match c.resized {
                    Some(((entries, bytes), (entries_after, bytes_after))) => {
                        let mut sizes = Vec::new();
                        if entries != entries_after {
                            sizes.push(format!("{entries} → {entries_after} entries"));
                        }
                        if bytes != bytes_after {
                            sizes.push(format!(
                                "{} → {}",
                                format_bytes(bytes),
                                format_bytes(bytes_after)
                            ));
                        }
                        format!("{regions}: {}", sizes.join(", "))
                    }
                    None => regions,
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_engine::VolumeId;

    fn volume(id: u64, kind: VolumeKind, parent: Option<u64>) -> VolumeInfo {
        VolumeInfo {
            id: VolumeId(id),
            kind,
            label: String::new(),
            parent: parent.map(VolumeId),
            branch: String::new(),
            created_ms: 0,
            sealed_ms: None,
            entry_count: 0,
            blocks_written: 0,
            bytes: 0,
            first_seq: 0,
            next_seq: 0,
        }
    }

    fn bucket(first_addr: u64, origin: &str, volume: Option<u64>) -> Bucket {
        Bucket {
            first_addr,
            blocks: 1,
            origin: origin.into(),
            volume,
            deleted: false,
            log_blocks: 0,
            origins: 1,
        }
    }

    /// (depth, lane) of each layer, by id.
    fn placed(volumes: &[VolumeInfo]) -> Vec<(u64, usize, usize)> {
        let scheme = Scheme::build(1, volumes, &[], 0, &[]);
        let mut out: Vec<_> = scheme
            .layers
            .iter()
            .map(|l| (l.id, l.depth, l.lane))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn a_line_stacks_in_one_lane_and_a_branch_goes_beside_it() {
        // 0 ← 1 ← 2 (head), and 3 branched off 1.
        let volumes = [
            volume(0, VolumeKind::Baseline, None),
            volume(1, VolumeKind::Snapshot, Some(0)),
            volume(2, VolumeKind::Head, Some(1)),
            volume(3, VolumeKind::Snapshot, Some(1)),
        ];
        assert_eq!(
            placed(&volumes),
            vec![(0, 0, 0), (1, 1, 0), (2, 2, 0), (3, 2, 1)]
        );
    }

    #[test]
    fn the_head_line_keeps_lane_zero_after_a_rollback() {
        // A rollback to 1: the old head 2 is sealed, the new head 3 is another child of 1.
        let volumes = [
            volume(0, VolumeKind::Baseline, None),
            volume(1, VolumeKind::Snapshot, Some(0)),
            volume(2, VolumeKind::Snapshot, Some(1)),
            volume(3, VolumeKind::Head, Some(1)),
        ];
        assert_eq!(
            placed(&volumes),
            vec![(0, 0, 0), (1, 1, 0), (2, 2, 1), (3, 2, 0)]
        );
    }

    #[test]
    fn a_deleted_parent_kept_for_its_child_is_drawn_under_it() {
        // Volume 2 was deleted; the head 3 still reads from its partition.
        let volumes = [
            volume(0, VolumeKind::Baseline, None),
            volume(3, VolumeKind::Head, Some(2)),
        ];
        let maps = vec![
            (0, vec![bucket(0, "zero", None)]),
            (3, vec![bucket(0, "partition", Some(2))]),
        ];
        let scheme = Scheme::build(1, &volumes, &maps, 3, &[]);
        let ghost = scheme.layer(2).cloned();
        assert_eq!(
            ghost.as_ref().map(|g| (g.deleted, g.held.clone())),
            Some((true, vec![true]))
        );
        assert_eq!(placed(&volumes), vec![(0, 0, 0), (2, 1, 1), (3, 2, 1)]);
        // The engine re-parented the head onto the baseline: the kept partition goes between.
        let volumes = [
            volume(0, VolumeKind::Baseline, None),
            volume(3, VolumeKind::Head, Some(0)),
        ];
        let scheme = Scheme::build(1, &volumes, &maps, 3, &[]);
        assert_eq!(scheme.layer(3).and_then(|l| l.parent), Some(2));
        assert_eq!(scheme.layer(2).and_then(|l| l.parent), Some(0));
        let mut at: Vec<_> = scheme
            .layers
            .iter()
            .map(|l| (l.id, l.depth, l.lane))
            .collect();
        at.sort_unstable();
        assert_eq!(at, vec![(0, 0, 0), (2, 1, 0), (3, 2, 0)]);
    }

    #[test]
    fn layers_hold_what_they_serve_and_the_read_path_names_the_server() {
        let volumes = [
            volume(0, VolumeKind::Baseline, None),
            volume(1, VolumeKind::Head, Some(0)),
        ];
        let maps = vec![
            (
                0,
                vec![bucket(0, "baseline", None), bucket(1, "zero", None)],
            ),
            (
                1,
                vec![bucket(0, "baseline", None), bucket(1, "partition", Some(1))],
            ),
        ];
        let scheme = Scheme::build(2, &volumes, &maps, 1, &[]);
        assert_eq!(
            scheme.layer(0).map(|l| l.held.clone()),
            Some(vec![true, false])
        );
        assert_eq!(
            scheme.layer(1).map(|l| l.held.clone()),
            Some(vec![false, true])
        );
        assert_eq!(
            scheme.read_path,
            vec![Source::Baseline, Source::Partition(1)]
        );
        assert_eq!(scheme.served_by(Some(1)), 1);
        assert_eq!(scheme.buckets_of(1, 5), 1..2);
    }

    #[test]
    fn a_change_names_dropped_regions_and_removed_layers() {
        let volumes = [
            volume(0, VolumeKind::Baseline, None),
            volume(1, VolumeKind::Snapshot, Some(0)),
            volume(2, VolumeKind::Head, Some(1)),
        ];
        let p = |v| bucket(0, "partition", Some(v));
        let before = Scheme::build(
            2,
            &volumes,
            &[
                (0, vec![bucket(0, "zero", None), bucket(1, "zero", None)]),
                (1, vec![p(1), p(1)]),
                (2, vec![p(2), p(1)]),
            ],
            2,
            &[],
        );
        // Compaction of 1 drops the bucket 2 overwrote; the layer keeps its id.
        let compacted = Scheme::build(
            2,
            &volumes,
            &[
                (0, vec![bucket(0, "zero", None), bucket(1, "zero", None)]),
                (1, vec![bucket(0, "zero", None), p(1)]),
                (2, vec![p(2), p(1)]),
            ],
            2,
            &[],
        );
        let change = Change::between(&before, &compacted);
        assert_eq!(change.of(1).map(|c| c.dropped.clone()), Some(vec![0]));
        assert_eq!(change.of(1).map(|c| c.removed), Some(false));
        assert!(change.of(2).is_none());
        // Merging 1 folds it into the baseline.
        let merged = Scheme::build(
            2,
            &[volumes[0].clone(), volume(2, VolumeKind::Head, Some(0))],
            &[
                (
                    0,
                    vec![bucket(0, "baseline", None), bucket(1, "baseline", None)],
                ),
                (2, vec![p(2), bucket(1, "baseline", None)]),
            ],
            2,
            &[],
        );
        let change = Change::between(&before, &merged);
        assert_eq!(change.of(1).map(|c| c.removed), Some(true));
        assert_eq!(change.of(0).map(|c| c.gained.clone()), Some(vec![0, 1]));
        assert_eq!(
            change.describe(&before),
            vec![
                "the baseline (volume 0) now holds 2 more region(s)".to_string(),
                "volume 1 is gone".to_string()
            ]
        );
    }

    #[test]
    fn a_long_history_draws_the_read_line_and_the_newest_layers_in_one_tree() {
        // baseline 0, a chain 1..=99 (head 99), reading volume 10.
        let mut volumes = vec![volume(0, VolumeKind::Baseline, None)];
        for id in 1..100 {
            let kind = if id == 99 {
                VolumeKind::Head
            } else {
                VolumeKind::Snapshot
            };
            volumes.push(volume(id, kind, Some(id - 1)));
        }
        let (kept, omitted) = select_layers(&volumes, 10, 20);
        assert_eq!(kept.len(), 20);
        assert_eq!(omitted.len(), 80);
        let ids: Vec<u64> = kept.iter().map(|v| v.id.0).collect();
        // The baseline, the head, volume 10's whole line (0..=10), then the newest (98, 97...).
        for id in (0..=10).chain([99, 98, 97]) {
            assert!(ids.contains(&id), "{id} kept: {ids:?}");
        }
        // Every kept volume's parent is kept: one tree.
        for v in &kept {
            assert!(v.parent.is_none_or(|p| ids.contains(&p.0)), "{v:?}");
        }
        // The oldest kept newest volume rests on the nearest kept ancestor.
        let lowest_new = kept
            .iter()
            .filter(|v| v.id.0 > 10)
            .map(|v| v.id.0)
            .min()
            .unwrap_or(0);
        let parent = kept
            .iter()
            .find(|v| v.id.0 == lowest_new)
            .and_then(|v| v.parent);
        assert_eq!(parent.map(|p| p.0), Some(10));
        // Few volumes: all drawn.
        assert_eq!(select_layers(&volumes[..5], 2, 20).1, Vec::<u64>::new());
    }
}
