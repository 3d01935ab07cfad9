//! Branches: writable clones of snapshots that live in the same store and share unchanged blocks
//! (like qcow2 overlays or ZFS clones).
//!
//! A branch is a named line of writable history. The store's first line is [`BRANCH_MAIN`];
//! [`Store::clone_branch`] starts another from any sealed volume. The store has one live head,
//! so one branch is *active* at a time: its head is the live head, and every other branch is
//! *parked*, its head a sealed partition of its own (reads of the branch read it, and nothing
//! else may delete or merge it). [`Store::checkout`] makes a parked branch active: the live head
//! is sealed and parked for its branch, and a new live head opens on the resumed branch's parked
//! head, whose identifier is released (it stays, without an identifier, for what its new child
//! reads through it, and goes when nothing does). Writing, snapshotting and rolling back act on
//! the active branch; the branch a volume belongs to is therefore a matter of which branch was
//! active when its partition was made.
//!
//! Invariants:
//! * the registry names each branch once; every parked branch's head is a sealed, visible,
//!   unlabelled partition that no other branch names;
//! * the registry changes only in the same atomic journal group as the partitions it describes
//!   (a crash leaves both before or both after), so the two never disagree on disk.

use serde::{Deserialize, Serialize};

use super::*;
use crate::format::meta::META_KIND_BRANCHES;

/// The name of the store's first branch (the line a new store starts on).
pub const BRANCH_MAIN: &str = "main";
/// Most branches a store holds (the main branch included).
pub const BRANCHES_MAX: usize = 1024;
/// Longest branch name, in bytes of UTF-8.
pub const BRANCH_NAME_BYTES_MAX: usize = 64;

/// The branch registry, as the journal keeps it (a `Document` of kind `META_KIND_BRANCHES`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct Branches {
    /// The branch the live head belongs to.
    pub active: String,
    /// Every other branch: its name and the volume identifier of its parked head.
    pub parked: Vec<(String, u64)>,
}

impl Default for Branches {
    fn default() -> Self {
        Branches {
            active: BRANCH_MAIN.to_string(),
            parked: Vec::new(),
        }
    }
}

impl Branches {
    pub(super) fn document(&self) -> MetaRecord {
        MetaRecord::Document {
            kind: META_KIND_BRANCHES,
            json: serde_json::to_string(self).unwrap_or_default(),
        }
    }

    /// The registry from its JSON (a journal document, or a copy stream's branches frame).
    pub(super) fn from_json(json: &str) -> serde_json::Result<Self> {
        serde_json::from_str(json)
    }

    /// Parks branch `name` with its head `volume`, in name order.
    fn park(&mut self, name: &str, volume: u64) {
        let at = self.parked.partition_point(|(n, _)| n.as_str() < name);
        self.parked.insert(at, (name.to_string(), volume));
    }

    fn parked_head(&self, name: &str) -> Option<VolumeId> {
        self.parked
            .iter()
            .find(|(n, _)| n == name)
            .map(|&(_, v)| VolumeId(v))
    }

    fn exists(&self, name: &str) -> bool {
        self.active == name || self.parked_head(name).is_some()
    }
}

/// One branch, as [`Store::branches`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BranchInfo {
    /// Its name.
    pub name: String,
    /// The volume its head is now: the live head if it is active, else its parked head.
    pub head: VolumeId,
    /// It is the active branch (its head is the live head, where writes go).
    pub active: bool,
}

/// Checks a new branch's name: 1 to [`BRANCH_NAME_BYTES_MAX`] bytes of letters, digits, `-`,
/// `_` and `.`, not all digits, not `head` or `baseline` (so that it can name a volume wherever
/// a volume is taken), and not taken.
fn check_branch_name(branches: &Branches, name: &str) -> Result<()> {
    let shape_ok = !name.is_empty()
        && name.len() <= BRANCH_NAME_BYTES_MAX
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.chars().all(|c| c.is_ascii_digit())
        && name != "head"
        && name != "baseline";
    if !shape_ok {
        return Err(Error::InvalidArgument(format!(
            "branch name {name:?} is not allowed: use 1 to {BRANCH_NAME_BYTES_MAX} letters, digits, '-', '_' or '.', not only digits, and not \"head\" or \"baseline\""
        )));
    }
    if branches.exists(name) {
        return Err(Error::InvalidArgument(format!(
            "there is a branch {name:?} already"
        )));
    }
    Ok(())
}

impl<S: Storage> Store<S> {
    /// The registry as the journal's latest branch document says (the default, one active
    /// `main`, if there is none); checked against the partitions.
    pub(super) fn load_branches(&mut self) -> Result<()> {
        let Some(json) = self.documents.latest(META_KIND_BRANCHES) else {
            self.branches = Branches::default();
            return Ok(());
        };
        let branches = Branches::from_json(json)
            .map_err(|e| Error::corrupt(&self.meta_object, 0, format!("branch registry: {e}")))?;
        self.check_registry(&branches).map_err(|what| {
            Error::corrupt(&self.meta_object, 0, format!("branch registry: {what}"))
        })?;
        self.branches = branches;
        Ok(())
    }

    /// What the module's invariants ask of a registry: every name once, at most
    /// [`BRANCHES_MAX`], and every parked head a sealed, visible volume of this store.
    pub(super) fn check_registry(&self, branches: &Branches) -> std::result::Result<(), String> {
        if branches.parked.len() >= BRANCHES_MAX {
            return Err(format!("more than {BRANCHES_MAX} branches"));
        }
        let names: Vec<&str> = branches
            .parked
            .iter()
            .map(|(n, _)| n.as_str())
            .chain([branches.active.as_str()])
            .collect();
        // At most BRANCHES_MAX names: pairwise is cheap, and needs no sort of its own.
        let twice = names
            .iter()
            .enumerate()
            .any(|(i, a)| names[i + 1..].contains(a));
        if twice || names.iter().any(|n| n.is_empty()) {
            return Err("a branch name is empty or given twice".into());
        }
        for (name, volume) in &branches.parked {
            let sealed_visible = self
                .partitions
                .slot(VolumeId(*volume))
                .map(|s| &self.partitions[s as usize])
                .is_some_and(|p| !p.hidden && !p.dropped && p.sealed_ms.is_some());
            if !sealed_visible {
                return Err(format!(
                    "branch {name:?}'s head, volume {volume}, is not a sealed volume"
                ));
            }
        }
        Ok(())
    }

    /// Every branch: the active one first, then the parked ones by name.
    pub fn branches(&self) -> Vec<BranchInfo> {
        let mut out = vec![BranchInfo {
            name: self.branches.active.clone(),
            head: self.head(),
            active: true,
        }];
        // The registry keeps the parked branches in name order.
        out.extend(
            self.branches
                .parked
                .iter()
                .map(|(name, volume)| BranchInfo {
                    name: name.clone(),
                    head: VolumeId(*volume),
                    active: false,
                }),
        );
        out
    }

    /// The name of the active branch (the one the live head belongs to).
    pub fn active_branch(&self) -> &str {
        &self.branches.active
    }

    /// The volume branch `name`'s head is now (the live head for the active branch).
    pub fn branch_head(&self, name: &str) -> Result<VolumeId> {
        if self.branches.active == name {
            return Ok(self.head());
        }
        self.branches.parked_head(name).ok_or_else(|| {
            let names: Vec<String> = self.branches().into_iter().map(|b| b.name).collect();
            Error::InvalidArgument(format!(
                "there is no branch {name:?}; the branches are {}",
                names.join(", ")
            ))
        })
    }

    /// Every parked branch's name and head.
    pub(super) fn branch_heads(&self) -> impl Iterator<Item = (&str, VolumeId)> {
        self.branches
            .parked
            .iter()
            .map(|(name, volume)| (name.as_str(), VolumeId(*volume)))
    }

    /// Fails if `slot` is a parked branch's head (which only deleting the branch removes).
    pub(super) fn check_not_parked_head(&self, slot: u32, doing: &str) -> Result<()> {
        let volume = self.partitions[slot as usize].volume;
        match self.branches.parked.iter().find(|&&(_, v)| v == volume.0) {
            Some((name, _)) => Err(Error::InvalidArgument(format!(
                "cannot {doing} volume {volume}: it is the head of branch {name:?} (check the branch out and snapshot it, or delete the branch)"
            ))),
            None => Ok(()),
        }
    }

    /// Branch operations write a journal document of format version 3: an older store is
    /// upgraded first (a journal checkpoint writes the current header).
    async fn upgrade_for_branches(&mut self) -> Result<()> {
        if self.format_version < 3 {
            self.checkpoint_journal().await?;
        }
        Ok(())
    }

    /// Starts branch `name` from volume `from` (a snapshot, a parked branch's head, or the
    /// baseline): a writable clone that shares every block with `from` until written. The new
    /// branch is parked, its head an empty partition whose parent is `from`; [`Store::checkout`]
    /// makes it the one written. Returns its head's identifier. Durable on return; costs one
    /// durable journal append and no data.
    pub async fn clone_branch(&mut self, from: VolumeId, name: &str) -> Result<VolumeId> {
        self.check_writable()?;
        check_branch_name(&self.branches, name)?;
        if self.branches.parked.len() + 1 >= BRANCHES_MAX {
            return Err(Error::LimitExceeded(format!(
                "a store holds at most {BRANCHES_MAX} branches; delete one first"
            )));
        }
        let parent = self.partitions.slot_of(from)?;
        if parent == Some(self.head) {
            return Err(Error::InvalidArgument(format!(
                "volume {from} is the live head, which is still changing: take a snapshot and clone that"
            )));
        }
        self.check_partition_room(1)?;
        self.upgrade_for_branches().await?;
        let now = self.clock.now_ms();
        let volume = VolumeId(self.next_volume);
        let first_seq = self.partitions[self.head as usize].next_seq;
        // The partition (sealed and empty: a segment length of 0, no segment object, so that
        // nothing is written before the journal names it) and the registry, in one durable
        // journal group.
        let mut branches = self.branches.clone();
        branches.park(name, volume.0);
        self.append_journal(&[
            MetaRecord::PartitionCreated {
                volume: volume.0,
                parent: from.0,
                created_ms: now,
                first_seq,
                segment_generation: 0,
                flags: 0,
            },
            MetaRecord::PartitionSealed {
                volume: volume.0,
                sealed_ms: now,
                segment_len: 0,
                next_seq: first_seq,
                label: String::new(),
            },
            branches.document(),
        ])
        .await?;
        // Memory follows.
        self.next_volume += 1;
        let slot = self.partitions.push(volume, parent, now, first_seq, 0);
        self.partitions[slot as usize].sealed_ms = Some(now);
        self.set_branches(branches);
        self.operation_done().await?;
        Ok(volume)
    }

    /// Makes branch `name` the active one: the live head is sealed as the head of the branch it
    /// belonged to (parked), and a new live head opens on `name`'s parked head. Writes, snapshots
    /// and rollbacks then act on `name`. Returns the new live head's identifier (the active
    /// branch's head already, if `name` is active). Durable on return.
    pub async fn checkout(&mut self, name: &str) -> Result<VolumeId> {
        self.check_writable()?;
        if self.branches.active == name {
            return Ok(self.head());
        }
        let tip = self.branch_head(name)?;
        let tip_slot = self.partitions.slot_of(tip)?;
        self.upgrade_for_branches().await?;
        let parked_volume = self.head();
        let mut branches = self.branches.clone();
        branches.parked.retain(|(n, _)| n != name);
        let active = std::mem::replace(&mut branches.active, name.to_string());
        branches.park(&active, parked_volume.0);
        let extra = vec![
            MetaRecord::VolumeReleased { volume: tip.0 },
            branches.document(),
        ];
        let head = self
            .seal_head_and_open_then("", Some(tip_slot), false, extra)
            .await?;
        self.mark_released(tip_slot);
        self.set_branches(branches);
        // The resumed branch's old head stays only for what the new head reads through it.
        self.reclaim_hidden_ancestors(tip_slot).await?;
        self.operation_done().await?;
        Ok(head)
    }

    /// Deletes branch `name` (not [`BRANCH_MAIN`]): its head goes, and with it every block
    /// nothing else reads; snapshots taken on the branch stay. If it is the active branch,
    /// [`BRANCH_MAIN`] becomes the active one, in the same atomic step. Durable on return.
    pub async fn delete_branch(&mut self, name: &str) -> Result<()> {
        self.check_writable()?;
        if name == BRANCH_MAIN {
            return Err(Error::InvalidArgument(
                "the main branch cannot be deleted".into(),
            ));
        }
        self.branch_head(name)?;
        if self.branches.active == name {
            return self.delete_active_branch().await;
        }
        let tip = self.branch_head(name)?;
        let tip_slot = self.partitions.slot_of(tip)?;
        let mut branches = self.branches.clone();
        branches.parked.retain(|(n, _)| n != name);
        self.append_journal(&[
            MetaRecord::VolumeReleased { volume: tip.0 },
            branches.document(),
        ])
        .await?;
        self.mark_released(tip_slot);
        self.set_branches(branches);
        self.reclaim_hidden_ancestors(tip_slot).await?;
        self.operation_done().await?;
        Ok(())
    }

    /// Deletes the active branch and resumes [`BRANCH_MAIN`] in one atomic step: the live head
    /// is sealed and released at once, and a new live head opens on main's parked head.
    async fn delete_active_branch(&mut self) -> Result<()> {
        let tip = self.branch_head(BRANCH_MAIN)?;
        let tip_slot = self.partitions.slot_of(tip)?;
        self.upgrade_for_branches().await?;
        let (old_head, old_volume) = (self.head, self.head());
        let mut branches = self.branches.clone();
        branches.parked.retain(|(n, _)| n != BRANCH_MAIN);
        branches.active = BRANCH_MAIN.to_string();
        let extra = vec![
            MetaRecord::VolumeReleased {
                volume: old_volume.0,
            },
            MetaRecord::VolumeReleased { volume: tip.0 },
            branches.document(),
        ];
        self.seal_head_and_open_then("", Some(tip_slot), false, extra)
            .await?;
        self.mark_released(Some(old_head));
        self.mark_released(tip_slot);
        self.set_branches(branches);
        self.reclaim_hidden_ancestors(Some(old_head)).await?;
        self.reclaim_hidden_ancestors(tip_slot).await?;
        self.operation_done().await?;
        Ok(())
    }

    /// Keeps `branches` as the registry, in memory and in the documents a checkpoint writes.
    pub(super) fn set_branches(&mut self, branches: Branches) {
        if let MetaRecord::Document { kind, json } = branches.document() {
            self.documents.apply(kind, json);
        }
        self.branches = branches;
    }
}
