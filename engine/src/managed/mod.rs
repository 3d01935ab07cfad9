//! [`Managed`]: a volume under storage management. The policy executor sits above any
//! [`Volume`] (a [`Store`], or a [`crate::mirror::Mirror`]): it observes the operations made
//! through it, evaluates the policy's rules when they may be due, and carries the decisions out
//! with the volume's own operations, recording each, with its reason and outcome, in an audit
//! trail.
//!
//! Policies ([`crate::policy`]) are pure: they look at a [`crate::policy::StoreView`] and a
//! clock reading and return [`crate::policy::Decision`]s. The store below knows nothing of them: it keeps the executor's
//! documents (the policy, the per-volume assignments, the executor's state and the audit trail)
//! in its journal ([`Volume::append_documents`], [`crate::Documents`]), so they survive reopen
//! and crashes, and `Managed` reads them back when it is made.
//!
//! # Automatic evaluation after operations
//!
//! `Managed` evaluates the policy's threshold rules by itself
//! ([`crate::policy::Trigger::AfterOperation`])
//! after the operations that change the statuses those rules watch: writes, syncs, snapshots,
//! compactions, merges, deletions and rollbacks made through it, and what the host reports with
//! [`Managed::observe`] (a received copy stream). It is on by default and
//! [`Managed::set_automatic_policies`] turns it off for callers who drive every evaluation
//! themselves. The audit entries it records say `Trigger::AfterOperation` and which
//! [`Operation`] it followed.
//!
//! Invariants:
//! * **Cheap**: the write path pays only a comparison per threshold rule on a head counter
//!   (`writes_since_snapshot`, `bytes_since_snapshot`, `log_bytes`); the store's view is built
//!   and the policy evaluated only when such a comparison says a rule is past its threshold and
//!   out of its cooldown. Rules on `partition_count` and the reclaimable bytes (which need the
//!   space accounting) are considered only after operations that change partitions; rules on
//!   `quota_free_bytes` only when the host evaluates with a quota.
//! * **No recursion**: the decisions are carried out with the volume's own operations, which
//!   observe nothing, so one operation causes at most one automatic evaluation, which carries
//!   out the bounded list of decisions [`crate::policy::evaluate`] returns.
//! * **No busy loop**: a rule that was due but whose decision was not carried out (nothing to
//!   merge, a failure) is *disarmed* until the partitions next change, so a rule stuck past its
//!   threshold does not cost an evaluation per write. An automatic action's attempt is written
//!   to the executor's state before the action (it counts as the rule's run, and the rule is
//!   listed as failed until the action applies), so the cooldown and the disarming also hold
//!   across a reopen, even after an action that poisoned the store.
//! * **The operation stands**: a failed automatic action is recorded in the audit trail
//!   ([`crate::policy::Outcome::Failed`]) and never turns the operation it followed into an error, unless it
//!   poisoned the store. Closing evaluates no threshold rule.
//! * **Deferred copies**: an automatic evaluation has no copy sink, so copy decisions are left
//!   for the host's next [`Managed::run_policies`] or [`Managed::event`] (a built-in event
//!   records its copy decisions as `Outcome::Skipped`, "no copy sink").
//! * **Holds**: a held volume is never deleted or merged through `Managed`, by a rule, a time to
//!   live or the caller ([`Managed::delete_volume`], [`Managed::merge`] refuse it).
//!
//! # Built-in events
//!
//! `Managed` also signals the built-in events ([`crate::policy::BuiltinEvent`]) and carries out
//! the event rules for them, recorded with the trigger `Event(name)`: `open` when it is made
//! with [`Managed::open`] on a writable volume with automatic policies on (not by
//! [`Managed::new`], for a store just created: it has no policy yet), `close` at the start of
//! [`Managed::finish`] (and the `close` of a managed store or mirror) before the final sync,
//! `before_compaction` and `after_compaction` around the compactions and merges the caller asks
//! for ([`Managed::compact`], [`Managed::merge`]), never around the ones the executor carries
//! out. `quota_warning` is the host's to signal, with [`Managed::event`] (the browser worker
//! does it when the origin's storage is over 90% of its quota). The invariants above hold for
//! them too: nothing is signalled with automatic policies off or on a read-only or poisoned
//! volume, and a failed action fails neither the operation nor the open or close (which still
//! syncs), unless it poisoned the store.
//! * **Deterministic**: what fires depends only on the store, the policy, its persisted state and
//!   the clock.
//!
//! # Reaching the volume
//!
//! `Managed<V>` dereferences to `V`, so the volume's queries and settings (`info`, `read_at`,
//! `set_write_buffer_bytes`, a mirror's `status`, ...) are used as they are. Every operation the
//! executor observes is a method of `Managed` itself, found before the volume's own; an
//! operation made on the volume directly (through `volume_mut`, say) is not observed until the
//! host calls [`Managed::observe`].

use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use crate::clock::Clock;
use crate::mirror::Mirror;
use crate::policy::{BuiltinEvent, Operation};
use crate::storage::Storage;
use crate::{CompactReport, Error, Progress, Result, Store, Volume, VolumeId};

mod executor;

use executor::Automation;

/// A volume under storage management: a [`Store`] or a mirror, with the policy executor above
/// it. See the [module documentation](crate::managed).
pub struct Managed<V: Volume> {
    volume: V,
    automation: Automation,
}

impl<V: Volume> std::fmt::Debug for Managed<V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Managed")
            .field("automation", &self.automation)
            .finish_non_exhaustive()
    }
}

impl<V: Volume> Deref for Managed<V> {
    type Target = V;

    fn deref(&self) -> &V {
        &self.volume
    }
}

impl<V: Volume> DerefMut for Managed<V> {
    fn deref_mut(&mut self) -> &mut V {
        &mut self.volume
    }
}

impl<V: Volume> Managed<V> {
    /// Puts `volume` under storage management, with automatic policies on (off on a read-only
    /// view, where nothing can act); reads the policy, assignments, state and audit trail its
    /// store keeps. Signals nothing (for a volume just created; [`Managed::open`] signals
    /// `open`).
    pub fn new(volume: V) -> Result<Self> {
        let mut automation = Automation::from_documents(volume.documents())?;
        automation.manual_only = volume.store().is_read_only();
        Ok(Managed { volume, automation })
    }

    /// [`Managed::new`] for a volume just opened, with automatic policies on or off from the
    /// start; with them on, signals the built-in `open` event and carries out its rules before
    /// returning (their failure does not fail the open, unless it poisoned the store).
    pub async fn open(volume: V, automatic_policies: bool) -> Result<Self> {
        let mut managed = Managed::new(volume)?;
        if !automatic_policies {
            managed.set_automatic_policies(false);
        }
        managed.signal_event(BuiltinEvent::Open).await?;
        Ok(managed)
    }

    /// The volume. Operations made on it directly are not observed (see [`Managed::observe`]).
    pub fn volume_mut(&mut self) -> &mut V {
        &mut self.volume
    }

    /// Gives the volume back, without signalling `close` (see [`Managed::finish`]).
    pub fn into_volume(self) -> V {
        self.volume
    }

    /// Lends the volume out whole (to a copy-stream receiver, which takes a store by value),
    /// keeping the executor's state in [`Lent`] so that [`Lent::take_back`] puts it back
    /// without reading the documents again.
    pub fn lend(self) -> (V, Lent) {
        let lent = Lent {
            automation: self.automation,
        };
        (self.volume, lent)
    }

    /// Signals the built-in `close` event (with automatic policies on) and gives the volume back
    /// to be closed. A failed `close` rule fails this only if it poisoned the store.
    pub async fn finish(mut self) -> Result<V> {
        self.signal_event(BuiltinEvent::Close).await?;
        Ok(self.volume)
    }

    /// Writes whole blocks from block `addr` as one log entry ([`Volume::write`]), then observes
    /// the write: a threshold rule it made due is carried out before this returns. Such an
    /// automatic action never turns the write into an error, unless it poisoned the store.
    pub async fn write(&mut self, addr: u64, data: &[u8]) -> Result<u64> {
        let seq = self.volume.write(addr, data).await?;
        self.observe(Operation::Write).await?;
        Ok(seq)
    }

    /// Writes several entries as one atomic record ([`Volume::write_batch`]), then observes it.
    pub async fn write_batch(&mut self, writes: &[(u64, &[u8])]) -> Result<u64> {
        let seq = self.volume.write_batch(writes).await?;
        self.observe(Operation::Write).await?;
        Ok(seq)
    }

    /// Makes blocks read as zeros ([`Volume::write_zeroes`]), then observes it as a write.
    pub async fn write_zeroes(&mut self, addr: u64, blocks: u64) -> Result<u64> {
        let recorded = self.volume.write_zeroes(addr, blocks).await?;
        self.observe(Operation::Write).await?;
        Ok(recorded)
    }

    /// The durability point ([`Volume::sync`]), then observes it. A rule's failure does not fail
    /// the sync, unless it poisoned the store: then the error is returned, although the writes
    /// were made durable first.
    pub async fn sync(&mut self) -> Result<()> {
        self.volume.sync().await?;
        self.observe(Operation::Sync).await
    }

    /// Seals the head as a snapshot ([`Volume::snapshot`]), then observes it. Without a
    /// `label`, the policy's identifier scheme names it ([`Managed::scheme_label`]).
    pub async fn snapshot(&mut self, label: Option<&str>) -> Result<VolumeId> {
        let named = self.label_or_scheme(label);
        let volume = self.volume.snapshot(named.as_deref()).await?;
        self.observe(Operation::Snapshot).await?;
        Ok(volume)
    }

    /// In-place compaction of snapshot `volume` ([`Volume::compact`]), between the built-in
    /// `before_compaction` and `after_compaction` events, and observed.
    pub async fn compact(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<CompactReport> {
        self.volume.store().check_writable()?;
        self.sealed_snapshot(volume)?;
        self.signal_event(BuiltinEvent::BeforeCompaction).await?;
        let report = self.volume.compact(volume, progress).await?;
        self.observe(Operation::Compact).await?;
        self.signal_event(BuiltinEvent::AfterCompaction).await?;
        Ok(report)
    }

    /// Folds the oldest partitions, up to and including snapshot `volume`, into the baseline
    /// ([`Volume::merge`]), between the compaction events, and observed. Refused if a volume it
    /// would remove is held.
    pub async fn merge(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<u32> {
        self.volume.store().check_writable()?;
        self.sealed_snapshot(volume)?;
        if let Some(held) = self
            .volume
            .store()
            .merge_chain(volume)?
            .into_iter()
            .find(|&v| self.is_held(v))
        {
            return Err(Error::InvalidArgument(format!(
                "volume {held} is held; merging would remove it: release the hold first"
            )));
        }
        self.signal_event(BuiltinEvent::BeforeCompaction).await?;
        let merged = self.volume.merge(volume, progress).await?;
        self.observe(Operation::Merge).await?;
        self.signal_event(BuiltinEvent::AfterCompaction).await?;
        Ok(merged)
    }

    /// Deletes snapshot `volume` ([`Volume::delete_volume`]), then observes it. Refused if the
    /// volume is held.
    pub async fn delete_volume(&mut self, volume: VolumeId) -> Result<CompactReport> {
        if volume != VolumeId::BASELINE && self.is_held(volume) {
            self.sealed_snapshot(volume)?;
            return Err(Error::InvalidArgument(format!(
                "volume {volume} is held; release the hold before deleting it"
            )));
        }
        let report = self.volume.delete_volume(volume).await?;
        self.observe(Operation::Delete).await?;
        Ok(report)
    }

    /// Makes the head read as `to` does ([`Volume::rollback`]), then observes it. Without a
    /// `label`, the policy's identifier scheme names the head it seals.
    pub async fn rollback(&mut self, to: VolumeId, label: Option<&str>) -> Result<VolumeId> {
        let named = self.label_or_scheme(label);
        let head = self.volume.rollback(to, named.as_deref()).await?;
        self.observe(Operation::Rollback).await?;
        Ok(head)
    }

    /// The label the policy's identifier scheme gives the head if it is sealed now by `rule`
    /// (`"user"` for a snapshot taken without a label): rendered with the head's identifier as
    /// `{n}` and the store's clock, and made unique among the volumes' labels (see
    /// [`crate::policy::label::unique_label`]). Empty without a policy or with the sequential
    /// scheme (the volume is known by its number).
    pub fn scheme_label(&self, rule: &str) -> String {
        let Some(policy) = self.policy() else {
            return String::new();
        };
        let store = self.volume.store();
        let label = policy
            .labels
            .render(store.now_ms(), store.head().0, rule, "");
        self.unique(label)
    }

    /// `label` made unique among the store's volume labels.
    fn unique(&self, label: String) -> String {
        if label.is_empty() {
            return label;
        }
        let labels: Vec<String> = self
            .volume
            .store()
            .volumes()
            .into_iter()
            .map(|v| v.label)
            .filter(|l| !l.is_empty())
            .collect();
        crate::policy::label::unique_label(label, |l| labels.iter().any(|t| t == l))
    }

    /// A label given explicitly, kept as given; else the scheme's, if it gives one.
    fn label_or_scheme(&self, label: Option<&str>) -> Option<String> {
        match label {
            Some(label) => Some(label.to_string()),
            None => Some(self.scheme_label("user")).filter(|l| !l.is_empty()),
        }
    }

    /// Fails unless `volume` is a sealed snapshot (what compaction and merging take).
    fn sealed_snapshot(&self, volume: VolumeId) -> Result<()> {
        self.volume.store().sealed_snapshot(volume)
    }
}

/// The executor's state while its volume is lent out (see [`Managed::lend`]).
#[derive(Debug)]
pub struct Lent {
    automation: Automation,
}

impl Lent {
    /// Puts `volume` (the one lent out, or the store it became) back under storage management
    /// with the state it had. The documents are not read again: only the executor writes them.
    pub fn take_back<V: Volume>(self, volume: V) -> Managed<V> {
        let mut automation = self.automation;
        // Its partitions may have changed while it was away (a stream landed): nothing the
        // executor remembers of them holds.
        automation.partitions_changed();
        Managed { volume, automation }
    }
}

impl<S: Storage> Managed<Store<S>> {
    /// Opens the store on `storage` ([`Store::open`]) under storage management, with automatic
    /// policies on or off ([`Managed::open`]).
    pub async fn open_store(
        storage: S,
        clock: Rc<dyn Clock>,
        automatic_policies: bool,
    ) -> Result<Self> {
        Managed::open(Store::open(storage, clock).await?, automatic_policies).await
    }

    /// Signals `close` ([`Managed::finish`]), then closes the store after a final sync and gives
    /// back the storage. A failed `close` rule does not fail the close, unless it poisoned the
    /// store.
    pub async fn close(mut self) -> Result<S> {
        let signalled = self.signal_event(BuiltinEvent::Close).await;
        let storage = self.volume.close().await?;
        signalled?;
        Ok(storage)
    }
}

impl<P: Storage, S: Storage> Managed<Mirror<P, S>> {
    /// Signals `close` ([`Managed::finish`]), then closes the mirror ([`Mirror::close`]).
    pub async fn close(mut self) -> Result<(S, Vec<Option<P>>)> {
        let signalled = self.signal_event(BuiltinEvent::Close).await;
        let closed = self.volume.close().await?;
        signalled?;
        Ok(closed)
    }
}

/// A managed volume is a volume: generic code (the browser bindings) drives a managed store and
/// a managed mirror alike, and every change it makes is observed.
impl<V: Volume> Volume for Managed<V> {
    type Storage = V::Storage;

    fn store(&self) -> &Store<V::Storage> {
        self.volume.store()
    }

    async fn write(&mut self, addr: u64, data: &[u8]) -> Result<u64> {
        Managed::write(self, addr, data).await
    }

    async fn write_batch(&mut self, writes: &[(u64, &[u8])]) -> Result<u64> {
        Managed::write_batch(self, writes).await
    }

    async fn write_zeroes(&mut self, addr: u64, blocks: u64) -> Result<u64> {
        Managed::write_zeroes(self, addr, blocks).await
    }

    async fn sync(&mut self) -> Result<()> {
        Managed::sync(self).await
    }

    async fn snapshot(&mut self, label: Option<&str>) -> Result<VolumeId> {
        Managed::snapshot(self, label).await
    }

    async fn read(&mut self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.volume.read(addr, blocks).await
    }

    async fn compact(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<CompactReport> {
        Managed::compact(self, volume, progress).await
    }

    async fn merge(
        &mut self,
        volume: VolumeId,
        progress: &mut dyn FnMut(Progress) -> bool,
    ) -> Result<u32> {
        Managed::merge(self, volume, progress).await
    }

    async fn delete_volume(&mut self, volume: VolumeId) -> Result<CompactReport> {
        Managed::delete_volume(self, volume).await
    }

    async fn rollback(&mut self, to: VolumeId, label: Option<&str>) -> Result<VolumeId> {
        Managed::rollback(self, to, label).await
    }

    async fn append_documents(&mut self, documents: &[crate::Document]) -> Result<()> {
        self.volume.append_documents(documents).await
    }

    /// Signals `close`, then closes the volume; as the inherent `close`s do, a failed `close`
    /// rule fails the close only once the volume is closed.
    async fn close(mut self) -> Result<()> {
        let signalled = self.signal_event(BuiltinEvent::Close).await;
        self.volume.close().await?;
        signalled
    }
}
