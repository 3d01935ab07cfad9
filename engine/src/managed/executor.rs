//! The executor: builds the view a policy looks at, evaluates the policy when a rule may be due,
//! carries the decisions out with the volume's own operations and records each in the audit
//! trail. See the [module documentation](super) for what it promises.

use litemap::LiteMap;
use serde::{Deserialize, Serialize};

use super::Managed;
use crate::format::meta::{
    META_KIND_ASSIGNMENTS, META_KIND_AUDIT, META_KIND_POLICY, META_KIND_POLICY_STATE,
};
use crate::policy::view::{as_map, from_map};
use crate::policy::{
    evaluate, AuditEntry, BuiltinEvent, Decision, Operation, Origin, Outcome, Policy, Rule, Status,
    StoreView, Trigger, VolumeAssignments,
};
use crate::{Document, Error, Result, SendOptions, Volume, VolumeId, VolumeKind};

/// Where a policy copy streams its chunks (`copy(target, chunk)`).
type CopySink<'a> = &'a mut dyn FnMut(&str, &[u8]) -> Result<()>;

/// Most audit entries kept in memory (the journal keeps all of them until it is rewritten),
/// as many as the store keeps of its trail documents.
const AUDIT_ENTRIES_MAX: usize = crate::DOCUMENT_TRAIL_MAX;

/// The executor's persistent state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PolicyState {
    #[serde(default, serialize_with = "as_map", deserialize_with = "from_map")]
    rule_last_run_ms: LiteMap<usize, u64>,
    #[serde(default, serialize_with = "as_map", deserialize_with = "from_map")]
    last_copy_ms: LiteMap<String, u64>,
    /// The newest volume each target received, the base of the next incremental copy.
    #[serde(default, serialize_with = "as_map", deserialize_with = "from_map")]
    last_copy_volume: LiteMap<String, u64>,
    /// Rules whose latest automatic action is not known to have been carried out: written
    /// before the action (with the attempt counted as the rule's run) and cleared when it
    /// applies. They stay disarmed after a reopen until the partitions next change, so that an
    /// action that failed (or poisoned the store) is not retried by every operation. Sorted,
    /// no index twice (a JSON array, as a set was written before).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    failed_rules: Vec<usize>,
}

/// The executor's state: the documents read from the volume's store, and what it keeps only in
/// memory.
#[derive(Debug, Default)]
pub(crate) struct Automation {
    policy: Option<Policy>,
    assignments: VolumeAssignments,
    state: PolicyState,
    audit: Vec<AuditEntry>,
    /// Automatic evaluation after operations is turned off (see `set_automatic_policies`).
    pub(super) manual_only: bool,
    /// Bumped by every operation that may change the partitions.
    generation: u64,
    /// Rules that were due but not carried out, with the generation they were disarmed at.
    disarmed: LiteMap<usize, u64>,
    /// Bytes of the log outside the head, with the generation it was measured at.
    sealed_log_bytes: Option<(u64, u64)>,
    /// The policy has a threshold rule on a status that writes change.
    watches_writes: bool,
}

/// Whether `policy` has a threshold rule on a status that a write changes.
fn watches_writes(policy: Option<&Policy>) -> bool {
    policy.is_some_and(|p| {
        p.rules.iter().any(|r| {
            matches!(
                r,
                Rule::Threshold {
                    status: Status::WritesSinceSnapshot
                        | Status::BytesSinceSnapshot
                        | Status::LogBytes,
                    ..
                }
            )
        })
    })
}

/// The same comparison as the policy's: strict, and `below` only without `above`.
fn past_threshold(value: f64, above: Option<f64>, below: Option<f64>) -> bool {
    match (above, below) {
        (Some(above), _) => value > above,
        (None, Some(below)) => value < below,
        (None, None) => false,
    }
}

fn document_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::corrupt("journal", 0, format!("{what} document does not parse: {e}"))
}

impl Automation {
    /// The executor's state from the documents in the volume's store. Without the `policies`
    /// feature there is no executor to carry them out: a store that holds any is refused
    /// ([`Error::PoliciesUnavailable`]) rather than opened with its policy, holds and times to
    /// live ignored.
    pub(super) fn from_documents(documents: &crate::Documents) -> Result<Self> {
        if !cfg!(feature = "policies") {
            let managed = documents.latest(META_KIND_POLICY).is_some()
                || documents.latest(META_KIND_ASSIGNMENTS).is_some()
                || documents.latest(META_KIND_POLICY_STATE).is_some()
                || documents.trail().next().is_some();
            return if managed {
                Err(Error::PoliciesUnavailable)
            } else {
                Ok(Automation::default())
            };
        }
        let mut automation = Automation::default();
        if let Some(json) = documents.latest(META_KIND_POLICY).filter(|j| !j.is_empty()) {
            automation.policy =
                Some(serde_json::from_str(json).map_err(|e| document_error("policy", e))?);
        }
        if let Some(json) = documents.latest(META_KIND_ASSIGNMENTS) {
            automation.assignments =
                serde_json::from_str(json).map_err(|e| document_error("assignments", e))?;
        }
        if let Some(json) = documents.latest(META_KIND_POLICY_STATE) {
            automation.state =
                serde_json::from_str(json).map_err(|e| document_error("policy state", e))?;
        }
        for json in documents.trail() {
            let entry = serde_json::from_str(json).map_err(|e| document_error("audit", e))?;
            automation.push_audit(entry);
        }
        automation.watches_writes = watches_writes(automation.policy.as_ref());
        // Sorted and without repeats, whatever the document held.
        automation.state.failed_rules.sort_unstable();
        automation.state.failed_rules.dedup();
        for &index in &automation.state.failed_rules {
            automation.disarmed.insert(index, 0);
        }
        Ok(automation)
    }

    /// The volume's partitions changed behind the executor: forget what it measured of them
    /// and re-arm the rules disarmed until they next change.
    pub(super) fn partitions_changed(&mut self) {
        self.generation += 1;
    }

    fn push_audit(&mut self, entry: AuditEntry) {
        if self.audit.len() >= AUDIT_ENTRIES_MAX {
            self.audit.remove(0);
        }
        self.audit.push(entry);
    }
}

/// A document of `kind` holding `value` as JSON.
fn document(kind: u16, value: &impl Serialize) -> Document {
    Document {
        kind,
        json: serde_json::to_string(value).unwrap_or_default(),
    }
}

impl<V: Volume> Managed<V> {
    /// The policy assigned to the incremental log, if any.
    pub fn policy(&self) -> Option<&Policy> {
        self.automation.policy.as_ref()
    }

    /// Assigns a storage management policy to the incremental log (store-wide), after validating
    /// it; `None` removes it. Durable on return.
    pub async fn set_policy(&mut self, policy: Option<Policy>) -> Result<()> {
        if !cfg!(feature = "policies") {
            return Err(Error::PoliciesUnavailable);
        }
        self.volume.store().check_writable()?;
        if let Some(p) = &policy {
            p.validate()
                .map_err(|e| Error::InvalidArgument(format!("policy: {e}")))?;
        }
        let json = match &policy {
            Some(p) => {
                serde_json::to_string(p).map_err(|e| Error::InvalidArgument(e.to_string()))?
            }
            None => String::new(),
        };
        // Rule indices now mean other rules: forget when they last ran.
        let mut state = self.automation.state.clone();
        state.rule_last_run_ms.clear();
        state.failed_rules.clear();
        self.volume
            .append_documents(&[
                Document {
                    kind: META_KIND_POLICY,
                    json,
                },
                document(META_KIND_POLICY_STATE, &state),
            ])
            .await?;
        self.automation.watches_writes = watches_writes(policy.as_ref());
        self.automation.policy = policy;
        self.automation.state = state;
        self.automation.disarmed.clear();
        Ok(())
    }

    /// The per-volume assignments (holds and times to live).
    pub fn assignments(&self) -> &VolumeAssignments {
        &self.automation.assignments
    }

    /// Replaces the per-volume assignments, after validating them. Durable on return.
    pub async fn set_assignments(&mut self, assignments: VolumeAssignments) -> Result<()> {
        if !cfg!(feature = "policies") {
            return Err(Error::PoliciesUnavailable);
        }
        self.volume.store().check_writable()?;
        assignments
            .validate()
            .map_err(|e| Error::InvalidArgument(format!("assignments: {e}")))?;
        for (volume, _) in assignments.iter() {
            self.volume.store().check_volume(volume)?;
        }
        self.volume
            .append_documents(&[document(META_KIND_ASSIGNMENTS, &assignments)])
            .await?;
        self.automation.assignments = assignments;
        Ok(())
    }

    /// True if a hold protects `volume` from deletion and merging.
    pub fn is_held(&self, volume: VolumeId) -> bool {
        self.automation.assignments.is_held(volume)
    }

    /// The audit trail: every decision the executor carried out (or tried to), oldest first.
    pub fn audit(&self) -> &[AuditEntry] {
        &self.automation.audit
    }

    /// The store as policies see it, with `quota_free_bytes` supplied by the host (browser).
    pub fn policy_view(&self, quota_free_bytes: Option<u64>) -> StoreView {
        let store = self.volume.store();
        let volumes = store.volumes();
        let mut view = StoreView::from_store(&store.info(), &volumes);
        let space = store.space();
        for v in view.volumes.iter_mut() {
            if let Some(s) = space.iter().find(|s| s.volume == v.id) {
                v.reclaimable_bytes = s.reclaimable_bytes;
            }
        }
        let (entries, blocks_written, _) = store.head_counters();
        view.writes_since_snapshot = entries;
        view.bytes_since_snapshot = blocks_written * u64::from(store.block_size());
        view.last_snapshot_ms = volumes
            .iter()
            .filter_map(|v| match v.kind {
                VolumeKind::Snapshot => v.sealed_ms,
                _ => None,
            })
            .max();
        view.last_copy_ms = self.automation.state.last_copy_ms.clone();
        view.rule_last_run_ms = self.automation.state.rule_last_run_ms.clone();
        view.quota_free_bytes = quota_free_bytes;
        view
    }

    /// What the policies would decide now, without doing it (a dry run).
    pub fn policy_dry_run(&self, trigger: Trigger, quota_free_bytes: Option<u64>) -> Vec<Decision> {
        match &self.automation.policy {
            Some(policy) => evaluate(
                policy,
                &self.automation.assignments,
                &self.policy_view(quota_free_bytes),
                self.volume.store().now_ms(),
                trigger,
            ),
            None => Vec::new(),
        }
    }

    /// Fires a named application event (or a built-in one, e.g. `"close"`) at the policies.
    pub async fn event(
        &mut self,
        name: &str,
        copy: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<Vec<AuditEntry>> {
        self.run_policies(Trigger::Event(name.to_string()), None, copy)
            .await
    }

    /// Evaluates the policies for `trigger` and carries out their decisions in order, recording
    /// each in the audit trail. Copies to a tertiary target stream an incremental copy (from the
    /// newest volume that target received) to `copy(target, chunk)`. Returns the new audit
    /// entries. A decision that fails is recorded as failed and the rest still run, unless the
    /// store is poisoned (then the error is returned). The operations it carries out do not
    /// start automatic evaluations of their own.
    pub async fn run_policies(
        &mut self,
        trigger: Trigger,
        quota_free_bytes: Option<u64>,
        copy: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<Vec<AuditEntry>> {
        self.volume.store().check_writable()?;
        let decisions = self.policy_dry_run(trigger.clone(), quota_free_bytes);
        self.execute(decisions, trigger, None, quota_free_bytes, Some(copy))
            .await
    }

    /// Turns the automatic evaluation of threshold rules after operations on (the default) or
    /// off. Not persisted: it is the calling program's choice, made again after each open.
    /// With it off, nothing happens unless the host calls [`Managed::run_policies`] or
    /// [`Managed::event`].
    ///
    /// An automatic action that fails never fails the operation it followed: the operation
    /// returns `Ok` (its own effect is done), the failure is recorded in the audit trail
    /// ([`Outcome::Failed`]), the attempt counts as the rule's run (its cooldown starts) and the
    /// rule is disarmed until the partitions next change, also across a reopen. The one
    /// exception is an action that poisons the store (a storage commit failed): the operation
    /// then returns that error, as the handle is unusable and must be reopened.
    pub fn set_automatic_policies(&mut self, enabled: bool) {
        self.automation.manual_only = !enabled;
    }

    /// Whether threshold rules are evaluated automatically after operations.
    pub fn automatic_policies(&self) -> bool {
        !self.automation.manual_only
    }

    /// Observes `operation`, which has just been carried out on the volume: evaluates the
    /// threshold rules that may now be due ([`Trigger::AfterOperation`]) and carries out their
    /// decisions. Every operation made through `Managed` calls it; call it for an operation
    /// made on the volume directly (a copy stream received into the store, say). See the
    /// module documentation for what keeps this cheap and bounded.
    ///
    /// Returns an error only if the store is poisoned: a failed action is recorded in the audit
    /// trail and its rule disarmed, and the operation that called this still succeeds.
    pub async fn observe(&mut self, operation: Operation) -> Result<()> {
        if operation.is_structural() {
            self.automation.generation += 1;
        }
        if !cfg!(feature = "policies")
            || self.automation.manual_only
            || self.volume.store().is_poisoned()
            || self.automation.policy.is_none()
            || (operation == Operation::Write && !self.automation.watches_writes)
        {
            return Ok(());
        }
        let due = self.due_threshold_rules(operation);
        if due.is_empty() {
            return Ok(());
        }
        let mut decisions = self.policy_dry_run(Trigger::AfterOperation, None);
        // No copy sink here: copies wait for the host's next evaluation.
        decisions.retain(|d| !matches!(d, Decision::Copy { .. }));
        // The decisions are carried out with the volume's own operations, which observe
        // nothing: no evaluation starts inside this one.
        let entries = match self
            .execute(
                decisions,
                Trigger::AfterOperation,
                Some(operation),
                None,
                None,
            )
            .await
        {
            Ok(entries) => entries,
            Err(e) if self.volume.store().is_poisoned() => return Err(e),
            // Not reached today (the executor records failures and returns errors only when
            // poisoned), but the caller's operation is done: it must not fail for this.
            Err(_) => Vec::new(),
        };
        let generation = self.automation.generation;
        for index in due {
            let carried_out = entries.iter().any(|e| {
                matches!(e.outcome, Outcome::Applied { .. })
                    && matches!(e.decision.reason().origin, Origin::Rule { index: i, .. } if i == index)
            });
            if !carried_out {
                self.automation.disarmed.insert(index, generation);
            }
        }
        Ok(())
    }

    /// Signals a built-in event (`open`, `close`, `before_compaction`, `after_compaction`) from
    /// inside the store: evaluates the event rules for it ([`Trigger::Event`]) and carries out
    /// their decisions, with the guarantees of the automatic evaluation after operations:
    /// nothing happens while the executor runs (an action never signals events: no recursion),
    /// with automatic policies off, on a read-only or poisoned store, or without a policy; a
    /// copy decision has no sink here and is recorded as skipped, left to the host; a failed
    /// action is recorded in the audit trail and never fails the caller's operation.
    ///
    /// Returns an error only if the store is poisoned.
    pub(super) async fn signal_event(&mut self, event: BuiltinEvent) -> Result<()> {
        let store = self.volume.store();
        if !cfg!(feature = "policies")
            || self.automation.manual_only
            || store.is_read_only()
            || store.is_poisoned()
            || self.automation.policy.is_none()
        {
            return Ok(());
        }
        let trigger = Trigger::builtin(event);
        let decisions = self.policy_dry_run(trigger.clone(), None);
        if decisions.is_empty() {
            return Ok(());
        }
        match self.execute(decisions, trigger, None, None, None).await {
            Ok(_) => Ok(()),
            Err(e) if self.volume.store().is_poisoned() => Err(e),
            Err(_) => Ok(()),
        }
    }

    /// The threshold rules that may fire after `operation`: past their threshold by the cheap
    /// measures, out of their cooldown, not disarmed. Rules on statuses that need the space
    /// accounting count as possibly due after operations that change partitions.
    fn due_threshold_rules(&mut self, operation: Operation) -> Vec<usize> {
        let generation = self.automation.generation;
        let structural = operation.is_structural();
        let needs_log_bytes = self.automation.policy.as_ref().is_some_and(|p| {
            p.rules.iter().any(|r| {
                matches!(
                    r,
                    Rule::Threshold {
                        status: Status::LogBytes,
                        ..
                    }
                )
            })
        });
        let log_bytes = if needs_log_bytes {
            self.log_bytes_cached()
        } else {
            0
        };
        let store = self.volume.store();
        let now = store.now_ms();
        let (entries, blocks_written, _) = store.head_counters();
        let writes = entries as f64;
        let bytes = (blocks_written * u64::from(store.block_size())) as f64;
        // Partitions change only in structural operations: not counted on the write path.
        let partition_count = if structural {
            store.partition_count() as f64
        } else {
            0.0
        };
        let Some(policy) = &self.automation.policy else {
            return Vec::new();
        };
        let mut due = Vec::new();
        for (index, rule) in policy.rules.iter().enumerate() {
            let Rule::Threshold {
                status,
                above,
                below,
                cooldown_ms,
                ..
            } = rule
            else {
                continue;
            };
            if self.automation.disarmed.get(&index) == Some(&generation) {
                continue;
            }
            let last = self.automation.state.rule_last_run_ms.get(&index);
            if let (Some(cooldown_ms), Some(last)) = (cooldown_ms, last) {
                if now.saturating_sub(*last) < *cooldown_ms {
                    continue;
                }
            }
            let value = match status {
                Status::WritesSinceSnapshot => writes,
                Status::BytesSinceSnapshot => bytes,
                Status::LogBytes => log_bytes as f64,
                Status::PartitionCount if structural => partition_count,
                Status::ReclaimableBytes | Status::ReclaimableRatio if structural => {
                    due.push(index);
                    continue;
                }
                _ => continue,
            };
            if past_threshold(value, *above, *below) {
                due.push(index);
            }
        }
        due
    }

    /// Bytes of log segments, as [`Store::info`] counts them, without summing every partition
    /// on each write: the sealed partitions' share is remembered until the partitions change.
    fn log_bytes_cached(&mut self) -> u64 {
        let generation = self.automation.generation;
        let sealed = match self.automation.sealed_log_bytes {
            Some((at, bytes)) if at == generation => bytes,
            _ => {
                let bytes = self.volume.store().sealed_log_bytes();
                self.automation.sealed_log_bytes = Some((generation, bytes));
                bytes
            }
        };
        sealed + self.volume.store().head_counters().2
    }

    /// Carries `decisions` out in order and records each, with the trigger, in the audit trail.
    async fn execute(
        &mut self,
        decisions: Vec<Decision>,
        trigger: Trigger,
        after: Option<Operation>,
        quota_free_bytes: Option<u64>,
        copy: Option<CopySink<'_>>,
    ) -> Result<Vec<AuditEntry>> {
        let has_sink = copy.is_some();
        let mut no_sink = |_: &str, _: &[u8]| Ok(());
        let copy: &mut dyn FnMut(&str, &[u8]) -> Result<()> = match copy {
            Some(copy) => copy,
            None => &mut no_sink,
        };
        let mut entries = Vec::new();
        for decision in decisions {
            let now = self.volume.store().now_ms();
            let rule = match decision.reason().origin {
                Origin::Rule { index, .. } => Some(index),
                Origin::VolumeTtl { .. } => None,
            };
            if let (Some(_), Some(index)) = (after, rule) {
                // An automatic action: record the attempt before it, so that if it fails (even by
                // poisoning the store) a reopen neither forgets the cooldown nor retries at once.
                let failed = &mut self.automation.state.failed_rules;
                if let Err(at) = failed.binary_search(&index) {
                    failed.insert(at, index);
                }
                self.automation.state.rule_last_run_ms.insert(index, now);
                let state = self.automation.state.clone();
                self.volume
                    .append_documents(&[document(META_KIND_POLICY_STATE, &state)])
                    .await?;
            }
            let outcome = match self.carry_out(&decision, has_sink, copy).await {
                Ok(outcome) => outcome,
                Err(e) if self.volume.store().is_poisoned() => return Err(e),
                Err(e) => Outcome::Failed {
                    error: e.to_string(),
                },
            };
            if matches!(outcome, Outcome::Applied { .. }) {
                let mut view = StoreView {
                    rule_last_run_ms: std::mem::take(&mut self.automation.state.rule_last_run_ms),
                    last_copy_ms: std::mem::take(&mut self.automation.state.last_copy_ms),
                    ..StoreView::default()
                };
                view.record_run(&decision, now);
                self.automation.state.rule_last_run_ms = view.rule_last_run_ms;
                self.automation.state.last_copy_ms = view.last_copy_ms;
                if let Some(index) = rule {
                    self.automation.state.failed_rules.retain(|&i| i != index);
                }
            }
            let entry = AuditEntry {
                at_ms: now,
                decision,
                outcome,
                trigger: Some(trigger.clone()),
                after,
            };
            let state = self.automation.state.clone();
            let mut assignments = self.automation.assignments.clone();
            assignments.prune(&self.policy_view(quota_free_bytes));
            self.volume
                .append_documents(&[
                    document(META_KIND_AUDIT, &entry),
                    document(META_KIND_POLICY_STATE, &state),
                    document(META_KIND_ASSIGNMENTS, &assignments),
                ])
                .await?;
            self.automation.assignments = assignments;
            self.automation.push_audit(entry.clone());
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn carry_out(
        &mut self,
        decision: &Decision,
        has_sink: bool,
        copy: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<Outcome> {
        Ok(match decision {
            Decision::Snapshot { label, .. } => {
                // The scheme never names two volumes alike (time-based labels can collide
                // within a second).
                let label = self.unique(label.clone());
                let label = (!label.is_empty()).then_some(label.as_str());
                let volume = self.volume.snapshot(label).await?;
                Outcome::Applied {
                    volume: Some(volume),
                }
            }
            Decision::Compact { volume, .. } => {
                self.volume.compact(*volume, &mut |_| true).await?;
                Outcome::Applied {
                    volume: Some(*volume),
                }
            }
            Decision::Merge { up_to, .. } => {
                self.volume.merge(*up_to, &mut |_| true).await?;
                Outcome::Applied {
                    volume: Some(*up_to),
                }
            }
            Decision::Delete { volume, .. } => {
                if self.automation.assignments.is_held(*volume) {
                    // Policies never decide this; the executor double-checks.
                    Outcome::Skipped {
                        why: format!("volume {volume} is held"),
                    }
                } else {
                    self.volume.delete_volume(*volume).await?;
                    Outcome::Applied {
                        volume: Some(*volume),
                    }
                }
            }
            Decision::Copy { target, .. } => {
                if !has_sink {
                    // A built-in event the store signals itself: no copy sink to stream to.
                    return Ok(Outcome::Skipped {
                        why: format!(
                            "no copy sink: the copy to {target} is left to the host (run_policies or event)"
                        ),
                    });
                }
                // The newest snapshot of the live chain, as `send` picks it: a deleted volume's
                // partition kept for the head is not one (it is not a volume a copy can name).
                let newest_volume = self.volume.store().newest_snapshot();
                if newest_volume == VolumeId::BASELINE {
                    return Ok(Outcome::Skipped {
                        why: "no snapshot to copy yet".into(),
                    });
                }
                let base = self
                    .automation
                    .state
                    .last_copy_volume
                    .get(target)
                    .map(|&v| VolumeId(v))
                    .filter(|v| self.volume.store().check_volume(*v).is_ok());
                if base == Some(newest_volume) {
                    return Ok(Outcome::Skipped {
                        why: format!("{target} already has volume {newest_volume}"),
                    });
                }
                let options = SendOptions {
                    base,
                    ..SendOptions::default()
                };
                self.volume
                    .store()
                    .send(&options, &mut |chunk| copy(target, chunk))
                    .await?;
                self.automation
                    .state
                    .last_copy_volume
                    .insert(target.clone(), newest_volume.0);
                Outcome::Applied {
                    volume: Some(newest_volume),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The state document as stores wrote it when its maps were `BTreeMap`s and its set a
    /// `BTreeSet`: it reads back, and is written again byte for byte (the set sorted).
    #[test]
    fn the_state_document_keeps_its_json_form() {
        let written = r#"{"rule_last_run_ms":{"0":5,"12":7,"3":9},"last_copy_ms":{"b":1,"a":2},"last_copy_volume":{"a":4},"failed_rules":[12,3]}"#;
        let state: PolicyState = serde_json::from_str(written).expect("reads");
        assert_eq!(state.rule_last_run_ms.get(&12), Some(&7));
        assert_eq!(state.last_copy_ms.get("a"), Some(&2));
        let mut automation =
            Automation::from_documents(&crate::Documents::default()).expect("no documents");
        automation.state = state;
        let again = serde_json::to_string(&automation.state).expect("writes");
        assert_eq!(
            again,
            r#"{"rule_last_run_ms":{"0":5,"3":9,"12":7},"last_copy_ms":{"a":2,"b":1},"last_copy_volume":{"a":4},"failed_rules":[12,3]}"#
        );
        let empty = serde_json::to_string(&PolicyState::default()).expect("writes");
        assert_eq!(
            empty,
            r#"{"rule_last_run_ms":{},"last_copy_ms":{},"last_copy_volume":{}}"#
        );
    }
}
