//! What a policy returns: [`Decision`] values, each with the [`Reason`] that produced it, and the
//! [`AuditEntry`] an executor records after carrying one out.

use serde::{Deserialize, Serialize};

use super::trigger::{Operation, Trigger};
use crate::VolumeId;

/// One thing the policy wants done. The executor carries decisions out in the order
/// [`evaluate`](super::evaluate) returns them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// Take a snapshot labelled `label` (empty: no label).
    Snapshot {
        /// The label for the new snapshot volume.
        label: String,
        /// Why.
        reason: Reason,
    },
    /// Copy to the tertiary volume `target`.
    Copy {
        /// The target's name.
        target: String,
        /// Why.
        reason: Reason,
    },
    /// Merge the oldest partitions into the baseline: every partition on the path from the
    /// baseline to `up_to`, `up_to` included. Each of them is the only child of its parent, so
    /// no other volume reads through them.
    Merge {
        /// The newest partition merged.
        up_to: VolumeId,
        /// Why.
        reason: Reason,
    },
    /// Delete (release) the snapshot volume `volume`.
    Delete {
        /// The volume.
        volume: VolumeId,
        /// Why.
        reason: Reason,
    },
    /// Compact the snapshot partition `volume` in place (it keeps its identifier and contents).
    Compact {
        /// The volume.
        volume: VolumeId,
        /// Why.
        reason: Reason,
    },
}

impl Decision {
    /// Why this decision was made.
    pub fn reason(&self) -> &Reason {
        match self {
            Decision::Snapshot { reason, .. }
            | Decision::Copy { reason, .. }
            | Decision::Merge { reason, .. }
            | Decision::Delete { reason, .. }
            | Decision::Compact { reason, .. } => reason,
        }
    }

    /// The decision's kind as serialised (`"snapshot"`, `"delete"`, ...).
    pub fn kind_str(&self) -> &'static str {
        match self {
            Decision::Snapshot { .. } => "snapshot",
            Decision::Copy { .. } => "copy",
            Decision::Merge { .. } => "merge",
            Decision::Delete { .. } => "delete",
            Decision::Compact { .. } => "compact",
        }
    }
}

impl std::fmt::Display for Decision {
    /// One line for people: `delete volume 12: rules[1] "thin": ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decision::Snapshot { label, reason } if label.is_empty() => {
                write!(f, "snapshot: {reason}")
            }
            Decision::Snapshot { label, reason } => write!(f, "snapshot {label:?}: {reason}"),
            Decision::Copy { target, reason } => write!(f, "copy to {target:?}: {reason}"),
            Decision::Merge { up_to, reason } => {
                write!(f, "merge into the baseline up to volume {up_to}: {reason}")
            }
            Decision::Delete { volume, reason } => write!(f, "delete volume {volume}: {reason}"),
            Decision::Compact { volume, reason } => {
                write!(f, "compact volume {volume} in place: {reason}")
            }
        }
    }
}

/// Why a decision was made: which rule (or assignment) and, in words, which threshold.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    /// Where the decision comes from.
    pub origin: Origin,
    /// What was measured against what, for people: `"writes_since_snapshot 1001 > 1000"`.
    pub text: String,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.origin, self.text)
    }
}

/// Where a decision comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum Origin {
    /// A rule of the policy.
    Rule {
        /// Its position in [`Policy::rules`](super::Policy::rules).
        index: usize,
        /// Its name, if it has one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
    /// The volume's own time to live ([`Assignment::ttl_ms`](super::Assignment::ttl_ms)).
    VolumeTtl {
        /// The TTL.
        ttl_ms: u64,
    },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Rule {
                index,
                name: Some(name),
            } => write!(f, "rules[{index}] {name:?}"),
            Origin::Rule { index, name: None } => write!(f, "rules[{index}]"),
            Origin::VolumeTtl { .. } => write!(f, "volume ttl"),
        }
    }
}

/// A record of one decision and what became of it, for the executor's audit log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditEntry {
    /// When the decision was carried out (ms since the Unix epoch).
    pub at_ms: u64,
    /// The decision.
    pub decision: Decision,
    /// What became of it.
    pub outcome: Outcome,
    /// The evaluation that produced the decision: a tick, an event, or an automatic evaluation
    /// after an operation. `None` in entries recorded before triggers were recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<Trigger>,
    /// For [`Trigger::AfterOperation`], the operation the evaluation followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<Operation>,
}

/// What became of a decision.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Carried out.
    Applied {
        /// The volume it produced or acted on (the new snapshot's identifier, the deleted
        /// volume...), if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        volume: Option<VolumeId>,
    },
    /// Not carried out, deliberately (e.g. a dry run, or the store changed since the view).
    Skipped {
        /// Why, for people.
        why: String,
    },
    /// Tried and failed.
    Failed {
        /// The error, for people.
        error: String,
    },
}
