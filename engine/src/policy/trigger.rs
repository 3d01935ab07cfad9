//! What starts an evaluation of a policy: a [`Trigger`], and the [`Operation`]s after which the
//! store evaluates its threshold rules by itself.

use serde::{Deserialize, Serialize};

use super::rules::BuiltinEvent;

/// What caused an evaluation, and so which rules it considers.
///
/// | trigger | rules evaluated |
/// |---|---|
/// | `Tick` | temporal rules, threshold rules, per-volume TTLs |
/// | `Event(name)` | event rules matching `name` |
/// | `AfterOperation` | threshold rules; the store evaluates it by itself after an [`Operation`] that may have moved a watched status past its threshold |
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A clock tick (the executor's timer, or a simulation step).
    Tick,
    /// A named event: an application's (`"deploy"`, `"upgrade:pre"`) or a built-in one.
    Event(String),
    /// An operation (write, snapshot, compaction...) just finished.
    AfterOperation,
}

/// An operation after which the store evaluates its threshold rules by itself (see
/// [`Trigger::AfterOperation`]), as recorded in [`AuditEntry::after`](super::AuditEntry::after).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Operation {
    /// A write or a batch of writes.
    Write,
    /// A sync.
    Sync,
    /// A snapshot.
    Snapshot,
    /// An in-place compaction.
    Compact,
    /// A merge into the baseline.
    Merge,
    /// A volume deletion.
    Delete,
    /// A rollback.
    Rollback,
    /// A received copy stream.
    Receive,
}

impl Operation {
    /// The operation as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Write => "write",
            Operation::Sync => "sync",
            Operation::Snapshot => "snapshot",
            Operation::Compact => "compact",
            Operation::Merge => "merge",
            Operation::Delete => "delete",
            Operation::Rollback => "rollback",
            Operation::Receive => "receive",
        }
    }

    /// Whether the operation can change the partitions (and so the partition count and the
    /// reclaimable bytes), not only the head's counters.
    pub fn is_structural(self) -> bool {
        !matches!(self, Operation::Write | Operation::Sync)
    }
}

impl Trigger {
    /// The trigger for a built-in event.
    pub fn builtin(event: BuiltinEvent) -> Self {
        Trigger::Event(event.as_str().to_string())
    }
}
