//! The policy as data: what a policy file (JSON or TOML) deserialises into. Every struct rejects
//! unknown fields, so a misspelt field is an error, not a silently ignored rule.

use serde::{Deserialize, Serialize};

/// A storage management policy: how new snapshot volumes are labelled, and the rules.
///
/// Build one in code or deserialise it (JSON, TOML: anything serde reads), then check it with
/// [`Policy::validate`] before assigning it to a store.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// How snapshots are labelled when the rule that takes them has no `label` template of its
    /// own. Defaults to [`LabelScheme::Sequential`].
    #[serde(default, skip_serializing_if = "LabelScheme::is_sequential")]
    pub labels: LabelScheme,
    /// The rules. Their position (`rules[i]`) is how reasons, audit entries and
    /// [`StoreView::rule_last_run_ms`](super::StoreView::rule_last_run_ms) refer to them.
    #[serde(default)]
    pub rules: Vec<Rule>,
}

/// How a newly formed snapshot volume is labelled (claims 2, 18, 28: "assign a volume identifier
/// to a newly formed partition as directed by a storage management policy"). The engine's
/// numeric [`VolumeId`](crate::VolumeId) is always sequential; the label is the name people see.
///
/// JSON: `"sequential"`, `"time"` or `{"template": "hourly-{date}-{n}"}`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LabelScheme {
    /// No label: the volume is known by its sequential identifier alone.
    #[default]
    Sequential,
    /// The UTC time of the snapshot: `2024-02-29T133005Z` (the template `{date}T{time}Z`).
    Time,
    /// A template; see [`label`](super::label) for the placeholders.
    Template(String),
}

impl LabelScheme {
    /// Whether this is the default scheme.
    pub fn is_sequential(&self) -> bool {
        matches!(self, LabelScheme::Sequential)
    }
}

/// One rule. JSON objects carry their kind in `"kind"`: `snapshot_every`, `retain`,
/// `merge_older_than`, `copy_every` (temporal), `threshold` (status-based), `event`
/// (event-based). Every rule may have a unique `name`.
///
/// Deserialised through a flat struct (see `wire.rs`): the derive's JSON, nearly its messages.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Rule {
    /// Temporal: take a snapshot once in every interval of `snapshot_every_ms`. Intervals are
    /// aligned to the Unix epoch (an hourly rule fires at the first evaluation in each UTC
    /// hour), so the schedule does not drift with the evaluation rate.
    SnapshotEvery {
        /// Optional unique name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The interval.
        snapshot_every_ms: u64,
        /// Label template for these snapshots, overriding [`Policy::labels`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
    /// Temporal: retention. Keeps snapshots younger than `max_age_ms` and those chosen by
    /// `keep`; deletes the other snapshots in its scope, unless another retention rule keeps
    /// them (see the module documentation for the exact semantics and precedence).
    Retain {
        /// Optional unique name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Scope: only snapshots whose label starts with this. All snapshots if absent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label_prefix: Option<String>,
        /// Keep snapshots younger than this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_age_ms: Option<u64>,
        /// Keep by count and by time buckets.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep: Option<Keep>,
    },
    /// Temporal: merge the oldest partitions into the baseline once they are older than
    /// `older_than_ms` (claims 8, 23: compaction to the baseline volume).
    MergeOlderThan {
        /// Optional unique name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Partitions whose snapshot is at least this old are merged.
        older_than_ms: u64,
    },
    /// Temporal: copy to the tertiary volume `target` once in every interval of
    /// `copy_every_ms` (epoch-aligned, like [`Rule::SnapshotEvery`]; any copy to the target
    /// counts, including one an event caused).
    CopyEvery {
        /// Optional unique name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// Name of the tertiary volume (the executor resolves it).
        target: String,
        /// The interval.
        copy_every_ms: u64,
    },
    /// Status-based: act when a status value is past a threshold. Set exactly one of `above`
    /// (fires while `value > above`) or `below` (fires while `value < below`).
    Threshold {
        /// Optional unique name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The status value watched.
        status: Status,
        /// Fire while the value is strictly greater than this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        above: Option<f64>,
        /// Fire while the value is strictly less than this.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        below: Option<f64>,
        /// What to do.
        action: ActionKind,
        /// Tertiary volume, for `action: "copy"` (required then, refused otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Label template, for `action: "snapshot"` only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
        /// After firing, stay quiet for this long even if the value is still past the threshold
        /// (useful when the action cannot bring it back, e.g. compaction against a full quota).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cooldown_ms: Option<u64>,
    },
    /// Event-based: act when the application or the engine signals `event`.
    Event {
        /// Optional unique name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// An application event name, or a built-in one ([`BuiltinEvent`]).
        event: String,
        /// Pre/post pair (as snapper's): the rule fires on `<event>:pre` and on `<event>:post`
        /// instead of on `<event>`. Not for built-in events.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        pair: bool,
        /// What to do.
        action: ActionKind,
        /// Tertiary volume, for `action: "copy"` (required then, refused otherwise).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Label template, for `action: "snapshot"` only.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        label: Option<String>,
    },
}

impl Rule {
    /// The rule's name, if it has one.
    pub fn name(&self) -> Option<&str> {
        match self {
            Rule::SnapshotEvery { name, .. }
            | Rule::Retain { name, .. }
            | Rule::MergeOlderThan { name, .. }
            | Rule::CopyEvery { name, .. }
            | Rule::Threshold { name, .. }
            | Rule::Event { name, .. } => name.as_deref(),
        }
    }

    /// The rule's kind as written in JSON (`"snapshot_every"`, `"retain"`, ...).
    pub fn kind_str(&self) -> &'static str {
        match self {
            Rule::SnapshotEvery { .. } => "snapshot_every",
            Rule::Retain { .. } => "retain",
            Rule::MergeOlderThan { .. } => "merge_older_than",
            Rule::CopyEvery { .. } => "copy_every",
            Rule::Threshold { .. } => "threshold",
            Rule::Event { .. } => "event",
        }
    }

    /// Whether the rule is temporal, status-based or event-based (claims 3, 6).
    pub fn category(&self) -> RuleCategory {
        match self {
            Rule::SnapshotEvery { .. }
            | Rule::Retain { .. }
            | Rule::MergeOlderThan { .. }
            | Rule::CopyEvery { .. } => RuleCategory::Temporal,
            Rule::Threshold { .. } => RuleCategory::Status,
            Rule::Event { .. } => RuleCategory::Event,
        }
    }
}

/// The three kinds of storage management policy (claims 3 and 6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuleCategory {
    /// Driven by the clock.
    Temporal,
    /// Driven by a status value crossing a threshold.
    Status,
    /// Driven by a named event.
    Event,
}

/// Retention by count and by time buckets, as sanoid and snapper do. A field left out keeps
/// nothing by that criterion; a field present must be at least 1.
///
/// For each bucket kind with count `N`: group the snapshots in scope by UTC bucket (hour, day,
/// ISO week starting Monday, calendar month, calendar year), take the `N` most recent buckets
/// that hold at least one snapshot, and keep the newest snapshot of each. `last: N` keeps the
/// `N` newest snapshots.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Keep {
    /// The newest N snapshots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<u32>,
    /// The newest snapshot in each of the N most recent hours that have one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hourly: Option<u32>,
    /// ... days ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily: Option<u32>,
    /// ... ISO weeks (Monday to Sunday) ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weekly: Option<u32>,
    /// ... calendar months ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly: Option<u32>,
    /// ... calendar years.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub yearly: Option<u32>,
}

/// A status value a [`Rule::Threshold`] watches (all read from the
/// [`StoreView`](super::StoreView)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Bytes of log segments.
    LogBytes,
    /// Number of log partitions (snapshots plus the head).
    PartitionCount,
    /// Sum of the log partitions' reclaimable bytes.
    ReclaimableBytes,
    /// Reclaimable bytes over log bytes, `0.0..=1.0` (0 when the log is empty).
    ReclaimableRatio,
    /// Log entries written since the last snapshot.
    WritesSinceSnapshot,
    /// Bytes written since the last snapshot.
    BytesSinceSnapshot,
    /// Free bytes of the browser's storage quota. Never fires where there is no quota.
    QuotaFreeBytes,
}

impl Status {
    /// The status as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::LogBytes => "log_bytes",
            Status::PartitionCount => "partition_count",
            Status::ReclaimableBytes => "reclaimable_bytes",
            Status::ReclaimableRatio => "reclaimable_ratio",
            Status::WritesSinceSnapshot => "writes_since_snapshot",
            Status::BytesSinceSnapshot => "bytes_since_snapshot",
            Status::QuotaFreeBytes => "quota_free_bytes",
        }
    }
}

/// What a status or event rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// Take a snapshot.
    Snapshot,
    /// Compact in place the snapshot partition with the most reclaimable bytes.
    Compact,
    /// Merge the oldest partition into the baseline.
    MergeOldest,
    /// Copy to the rule's `target`.
    Copy,
}

impl ActionKind {
    /// The action as written in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Snapshot => "snapshot",
            ActionKind::Compact => "compact",
            ActionKind::MergeOldest => "merge_oldest",
            ActionKind::Copy => "copy",
        }
    }
}

/// Events the engine's executor signals by itself. Application events are any other name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BuiltinEvent {
    /// The store was opened.
    Open,
    /// The store is about to close.
    Close,
    /// A compaction is about to start.
    BeforeCompaction,
    /// A compaction finished.
    AfterCompaction,
    /// The browser's storage quota is running low.
    QuotaWarning,
}

impl BuiltinEvent {
    /// Every built-in event.
    pub const ALL: [BuiltinEvent; 5] = [
        BuiltinEvent::Open,
        BuiltinEvent::Close,
        BuiltinEvent::BeforeCompaction,
        BuiltinEvent::AfterCompaction,
        BuiltinEvent::QuotaWarning,
    ];

    /// The event's name, as rules and [`Trigger::Event`](super::Trigger::Event) spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            BuiltinEvent::Open => "open",
            BuiltinEvent::Close => "close",
            BuiltinEvent::BeforeCompaction => "before_compaction",
            BuiltinEvent::AfterCompaction => "after_compaction",
            BuiltinEvent::QuotaWarning => "quota_warning",
        }
    }

    /// The built-in event called `name`, if there is one.
    pub fn from_name(name: &str) -> Option<BuiltinEvent> {
        BuiltinEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

/// Suffix of the event that opens a pre/post pair.
pub const PAIR_PRE_SUFFIX: &str = ":pre";
/// Suffix of the event that closes a pre/post pair.
pub const PAIR_POST_SUFFIX: &str = ":post";
