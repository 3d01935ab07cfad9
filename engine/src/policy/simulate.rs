//! Dry runs: a policy evaluated over a simulated period against a model of the store, for
//! `strata policy run --dry-run --until` and the dashboard's preview.

use serde::{Deserialize, Serialize};

use super::decision::Decision;
use super::evaluate::evaluate;
use super::rules::Policy;
use super::trigger::Trigger;
use super::validate::PolicyError;
use super::view::{StoreView, VolumeAssignments, VolumeView};
use crate::VolumeId;

/// The most steps one simulation may take (a year at one-minute steps is 525 600).
pub const SIMULATION_STEPS_MAX: u64 = 10_000_000;

/// One decision of a simulation's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimelineEntry {
    /// The simulated time of the decision.
    pub at_ms: u64,
    /// The decision.
    pub decision: Decision,
}

/// The result of [`simulate`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Simulation {
    /// Every decision, in the order it was applied.
    pub timeline: Vec<TimelineEntry>,
    /// The view after the last step.
    pub view: StoreView,
}

/// Runs `policy` from `from_ms` to `until_ms` (both included) in steps of `step_ms`: at each
/// step, [`evaluate`] with [`Trigger::Tick`], then for each decision in order, record the rule's
/// run ([`StoreView::record_run`]) and call `apply(decision, view, at_ms)` to change the view as
/// the store would. [`apply_to_model`] is a ready-made `apply`.
///
/// The policy and the assignments are validated first.
pub fn simulate(
    policy: &Policy,
    assignments: &VolumeAssignments,
    initial: StoreView,
    from_ms: u64,
    until_ms: u64,
    step_ms: u64,
    mut apply: impl FnMut(&Decision, &mut StoreView, u64),
) -> Result<Simulation, PolicyError> {
    policy.validate()?;
    assignments.validate()?;
    if step_ms == 0 {
        return Err(PolicyError::ZeroStep);
    }
    let steps = if until_ms < from_ms {
        0
    } else {
        (until_ms - from_ms) / step_ms + 1
    };
    if steps > SIMULATION_STEPS_MAX {
        return Err(PolicyError::TooManySteps {
            steps,
            steps_max: SIMULATION_STEPS_MAX,
        });
    }
    let mut view = initial;
    let mut timeline = Vec::new();
    for step in 0..steps {
        let at_ms = from_ms + step * step_ms;
        for decision in evaluate(policy, assignments, &view, at_ms, Trigger::Tick) {
            view.record_run(&decision, at_ms);
            apply(&decision, &mut view, at_ms);
            timeline.push(TimelineEntry { at_ms, decision });
        }
    }
    Ok(Simulation { timeline, view })
}

/// A simple model of how a decision changes a store, for dry runs:
///
/// - `Snapshot`: the head is sealed at `at_ms` with the label, and a new empty head (the next
///   identifier) opens as its child; counters since the last snapshot reset.
/// - `Delete`: the volume goes, its children hang from its parent (as the engine drops a
///   partition), and its bytes leave the log.
/// - `Merge`: the partitions from the baseline up to `up_to` go, their bytes leave the log, and
///   `up_to`'s children hang from the baseline.
/// - `Compact`: the volume's reclaimable bytes leave it and the log.
/// - `Copy`: the target's last copy time becomes `at_ms`.
///
/// Decisions about volumes that are not in the view change nothing.
pub fn apply_to_model(decision: &Decision, view: &mut StoreView, at_ms: u64) {
    match decision {
        Decision::Snapshot { label, .. } => {
            let next_id = VolumeId(
                view.volumes
                    .iter()
                    .map(|v| v.id.0)
                    .max()
                    .unwrap_or(0)
                    .saturating_add(1),
            );
            let head_id = view.head().map(|h| h.id);
            let parent = match head_id {
                Some(head_id) => {
                    if let Some(head) = view.volumes.iter_mut().find(|v| v.id == head_id) {
                        head.is_head = false;
                        head.sealed_ms = Some(at_ms);
                        head.label = label.clone();
                    }
                    head_id
                }
                None => VolumeId::BASELINE,
            };
            view.volumes.push(VolumeView {
                id: next_id,
                label: String::new(),
                parent: Some(parent),
                created_ms: at_ms,
                sealed_ms: None,
                is_head: true,
                bytes: 0,
                reclaimable_bytes: 0,
            });
            view.partition_count = view.partition_count.saturating_add(1);
            view.last_snapshot_ms = Some(at_ms);
            view.writes_since_snapshot = 0;
            view.bytes_since_snapshot = 0;
        }
        Decision::Delete { volume, .. } => {
            remove_volume(view, *volume, None);
        }
        Decision::Merge { up_to, .. } => {
            // The path from `up_to` back to the baseline, bounded by the number of volumes.
            let mut path = Vec::new();
            let mut at = Some(*up_to);
            for _ in 0..view.volumes.len() {
                match at {
                    Some(id) if id != VolumeId::BASELINE => {
                        path.push(id);
                        at = view.volume(id).and_then(|v| v.parent);
                    }
                    _ => break,
                }
            }
            for id in path {
                remove_volume(view, id, Some(VolumeId::BASELINE));
            }
        }
        Decision::Compact { volume, .. } => {
            if let Some(v) = view.volumes.iter_mut().find(|v| v.id == *volume) {
                let freed = v.reclaimable_bytes;
                v.bytes = v.bytes.saturating_sub(freed);
                v.reclaimable_bytes = 0;
                view.log_bytes = view.log_bytes.saturating_sub(freed);
            }
        }
        Decision::Copy { target, .. } => {
            view.last_copy_ms.insert(target.clone(), at_ms);
        }
    }
}

/// Removes `id`; its children move to `new_parent` (its own parent if `None`).
fn remove_volume(view: &mut StoreView, id: VolumeId, new_parent: Option<VolumeId>) {
    let Some(position) = view.volumes.iter().position(|v| v.id == id) else {
        return;
    };
    let removed = view.volumes.remove(position);
    let new_parent = new_parent.or(removed.parent);
    for child in view.volumes.iter_mut().filter(|v| v.parent == Some(id)) {
        child.parent = new_parent;
    }
    view.log_bytes = view.log_bytes.saturating_sub(removed.bytes);
    view.partition_count = view.partition_count.saturating_sub(1);
}
