//! The policy executor: the one place where storage-management decisions are carried out.
//!
//! Policies ([`crate::policy`]) are pure: they look at a [`StoreView`] and a clock reading and
//! return [`Decision`]s. This module builds the view from the store, carries the decisions out in
//! order, and records each one, with its reason and outcome, in an audit trail. The policy, the
//! per-volume assignments (holds, time to live), the executor's state (when each rule last ran,
//! when each tertiary target was last copied to) and the audit trail are journal records, so
//! they survive reopen and crashes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::*;
use crate::format::meta::{
    META_KIND_ASSIGNMENTS, META_KIND_AUDIT, META_KIND_POLICY, META_KIND_POLICY_STATE,
};
use crate::policy::{
    evaluate, AuditEntry, Decision, Outcome, Policy, StoreView, Trigger, VolumeAssignments,
};

/// Most audit entries kept in memory (the journal keeps all of them until it is rewritten).
const AUDIT_ENTRIES_MAX: usize = 10_000;

/// The executor's persistent state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PolicyState {
    #[serde(default)]
    rule_last_run_ms: BTreeMap<usize, u64>,
    #[serde(default)]
    last_copy_ms: BTreeMap<String, u64>,
    /// The newest volume each target received, the base of the next incremental copy.
    #[serde(default)]
    last_copy_volume: BTreeMap<String, u64>,
}

/// Everything policy-related a store holds.
#[derive(Debug, Default)]
pub(crate) struct Automation {
    policy: Option<Policy>,
    assignments: VolumeAssignments,
    state: PolicyState,
    audit: Vec<AuditEntry>,
}

fn document_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::corrupt("journal", 0, format!("{what} document does not parse: {e}"))
}

impl<S: Storage> Store<S> {
    pub(crate) fn load_policy_documents(&mut self, documents: Vec<(u16, String)>) -> Result<()> {
        for (kind, json) in documents {
            match kind {
                META_KIND_POLICY if json.is_empty() => self.automation.policy = None,
                META_KIND_POLICY => {
                    self.automation.policy =
                        Some(serde_json::from_str(&json).map_err(|e| document_error("policy", e))?)
                }
                META_KIND_ASSIGNMENTS => {
                    self.automation.assignments =
                        serde_json::from_str(&json).map_err(|e| document_error("assignments", e))?
                }
                META_KIND_POLICY_STATE => {
                    self.automation.state = serde_json::from_str(&json)
                        .map_err(|e| document_error("policy state", e))?
                }
                META_KIND_AUDIT => {
                    let entry =
                        serde_json::from_str(&json).map_err(|e| document_error("audit", e))?;
                    self.push_audit(entry);
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn push_audit(&mut self, entry: AuditEntry) {
        if self.automation.audit.len() >= AUDIT_ENTRIES_MAX {
            self.automation.audit.remove(0);
        }
        self.automation.audit.push(entry);
    }

    fn document(kind: u16, value: &impl Serialize) -> MetaRecord {
        MetaRecord::Document {
            kind,
            json: serde_json::to_string(value).unwrap_or_default(),
        }
    }

    /// The policy assigned to the incremental log, if any.
    pub fn policy(&self) -> Option<&Policy> {
        self.automation.policy.as_ref()
    }

    /// Assigns a storage management policy to the incremental log (store-wide), after validating
    /// it; `None` removes it. Durable on return.
    pub async fn set_policy(&mut self, policy: Option<Policy>) -> Result<()> {
        self.check_writable()?;
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
        self.append_journal(&[
            MetaRecord::Document {
                kind: META_KIND_POLICY,
                json,
            },
            Self::document(META_KIND_POLICY_STATE, &state),
        ])
        .await?;
        self.automation.policy = policy;
        self.automation.state = state;
        Ok(())
    }

    /// The per-volume assignments (holds and times to live).
    pub fn assignments(&self) -> &VolumeAssignments {
        &self.automation.assignments
    }

    /// Replaces the per-volume assignments, after validating them. Durable on return.
    pub async fn set_assignments(&mut self, assignments: VolumeAssignments) -> Result<()> {
        self.check_writable()?;
        assignments
            .validate()
            .map_err(|e| Error::InvalidArgument(format!("assignments: {e}")))?;
        for (volume, _) in assignments.iter() {
            self.slot_of(volume)?;
        }
        self.append_journal(&[Self::document(META_KIND_ASSIGNMENTS, &assignments)])
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
        let volumes = self.volumes();
        let mut view = StoreView::from_store(&self.info(), &volumes);
        let space = self.space();
        for v in view.volumes.iter_mut() {
            if let Some(s) = space.iter().find(|s| s.volume == v.id) {
                v.reclaimable_bytes = s.reclaimable_bytes;
            }
        }
        let head = &self.partitions[self.head as usize];
        view.writes_since_snapshot = head.entries;
        view.bytes_since_snapshot = head.blocks_written * u64::from(self.block_size);
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
                self.clock.now_ms(),
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
    /// store is poisoned (then the error is returned).
    pub async fn run_policies(
        &mut self,
        trigger: Trigger,
        quota_free_bytes: Option<u64>,
        copy: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<Vec<AuditEntry>> {
        self.check_writable()?;
        let decisions = self.policy_dry_run(trigger, quota_free_bytes);
        let mut entries = Vec::new();
        for decision in decisions {
            let now = self.clock.now_ms();
            let outcome = match self.carry_out(&decision, copy).await {
                Ok(outcome) => outcome,
                Err(e) if self.poisoned => return Err(e),
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
            }
            let entry = AuditEntry {
                at_ms: now,
                decision,
                outcome,
            };
            let state = self.automation.state.clone();
            let mut assignments = self.automation.assignments.clone();
            assignments.prune(&self.policy_view(quota_free_bytes));
            self.append_journal(&[
                Self::document(META_KIND_AUDIT, &entry),
                Self::document(META_KIND_POLICY_STATE, &state),
                Self::document(META_KIND_ASSIGNMENTS, &assignments),
            ])
            .await?;
            self.automation.assignments = assignments;
            self.push_audit(entry.clone());
            entries.push(entry);
        }
        Ok(entries)
    }

    async fn carry_out(
        &mut self,
        decision: &Decision,
        copy: &mut dyn FnMut(&str, &[u8]) -> Result<()>,
    ) -> Result<Outcome> {
        Ok(match decision {
            Decision::Snapshot { label, .. } => {
                let label = (!label.is_empty()).then_some(label.as_str());
                let volume = self.snapshot(label).await?;
                Outcome::Applied {
                    volume: Some(volume),
                }
            }
            Decision::Compact { volume, .. } => {
                self.compact(*volume, &mut |_| true).await?;
                Outcome::Applied {
                    volume: Some(*volume),
                }
            }
            Decision::Merge { up_to, .. } => {
                self.merge(*up_to, &mut |_| true).await?;
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
                    self.delete_volume(*volume).await?;
                    Outcome::Applied {
                        volume: Some(*volume),
                    }
                }
            }
            Decision::Copy { target, .. } => {
                let Some(newest) = self.partitions[self.head as usize].parent else {
                    return Ok(Outcome::Skipped {
                        why: "no snapshot to copy yet".into(),
                    });
                };
                let newest_volume = self.partitions[newest as usize].volume;
                let base = self
                    .automation
                    .state
                    .last_copy_volume
                    .get(target)
                    .map(|&v| VolumeId(v))
                    .filter(|v| self.slot_of(*v).is_ok());
                if base == Some(newest_volume) {
                    return Ok(Outcome::Skipped {
                        why: format!("{target} already has volume {newest_volume}"),
                    });
                }
                let options = SendOptions {
                    base,
                    ..SendOptions::default()
                };
                self.send(&options, &mut |chunk| copy(target, chunk))
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
