//! Storage management policies, pure: no storage, no clock, no I/O.
//!
//! A [`Policy`] is data (serde: JSON for JavaScript and the dashboard, TOML or JSON for the
//! CLI; unknown fields are errors). It is checked once, when it is assigned to a store, with
//! [`Policy::validate`], whose [`PolicyError`] names the offending field
//! (`rules[2].keep.hourly: must be at least 1`). Then [`evaluate`] looks at a read-only
//! [`StoreView`], the per-volume [`VolumeAssignments`], a clock reading and a [`Trigger`], and
//! returns [`Decision`]s; one place, the store's executor, carries them out and records an
//! [`AuditEntry`] for each. [`simulate`] runs a policy over a simulated period against a model
//! of the store: the dry run behind `strata policy run --dry-run --until` and the dashboard's
//! preview.
//!
//! # Example
//!
//! ```
//! use strata_engine::policy::{evaluate, Decision, Policy, StoreView, Trigger, VolumeAssignments, VolumeView};
//! use strata_engine::VolumeId;
//!
//! let policy = Policy::from_json(r#"{
//!   "labels": { "template": "auto-{date}-{n}" },
//!   "rules": [
//!     { "name": "hourly", "kind": "snapshot_every", "snapshot_every_ms": 3600000,
//!       "label": "hourly-{date}-{time}" },
//!     { "name": "thin", "kind": "retain", "label_prefix": "hourly-",
//!       "keep": { "hourly": 24, "daily": 7, "weekly": 4, "monthly": 6 } },
//!     { "name": "recent", "kind": "retain", "max_age_ms": 172800000 },
//!     { "name": "fold", "kind": "merge_older_than", "older_than_ms": 31536000000 },
//!     { "name": "offsite", "kind": "copy_every", "target": "backup", "copy_every_ms": 86400000 },
//!     { "name": "busy", "kind": "threshold", "status": "writes_since_snapshot", "above": 10000,
//!       "action": "snapshot" },
//!     { "name": "tidy", "kind": "threshold", "status": "reclaimable_ratio", "above": 0.3,
//!       "action": "compact", "cooldown_ms": 600000 },
//!     { "name": "tight", "kind": "threshold", "status": "quota_free_bytes", "below": 52428800,
//!       "action": "merge_oldest", "cooldown_ms": 60000 },
//!     { "name": "deploy", "kind": "event", "event": "deploy", "pair": true,
//!       "action": "snapshot", "label": "{event}-{date}-{n}" },
//!     { "name": "closing", "kind": "event", "event": "close", "action": "copy", "target": "backup" }
//!   ]
//! }"#)?;
//!
//! // A fresh store: the baseline and an empty head.
//! let view = StoreView {
//!     volumes: vec![
//!         VolumeView { id: VolumeId(0), label: String::new(), parent: None, created_ms: 0,
//!                      sealed_ms: Some(0), is_head: false, bytes: 0, reclaimable_bytes: 0 },
//!         VolumeView { id: VolumeId(1), label: String::new(), parent: Some(VolumeId(0)),
//!                      created_ms: 0, sealed_ms: None, is_head: true, bytes: 0,
//!                      reclaimable_bytes: 0 },
//!     ],
//!     partition_count: 1,
//!     ..StoreView::default()
//! };
//! let now_ms = 1_709_294_400_000; // 2024-03-01T12:00:00Z
//! let assignments = VolumeAssignments::new();
//!
//! let decisions = evaluate(&policy, &assignments, &view, now_ms, Trigger::Event("deploy:pre".into()));
//! assert!(matches!(&decisions[..], [Decision::Snapshot { label, .. }] if label == "deploy:pre-2024-03-01-1"));
//!
//! let decisions = evaluate(&policy, &assignments, &view, now_ms, Trigger::Tick);
//! assert!(matches!(&decisions[0], Decision::Snapshot { label, .. } if label == "hourly-2024-03-01-120000"));
//! assert!(matches!(&decisions[1], Decision::Copy { target, .. } if target == "backup"));
//! # Ok::<(), strata_engine::policy::PolicyError>(())
//! ```
//!
//! # Rules
//!
//! | kind | category | fields | decision |
//! |---|---|---|---|
//! | `snapshot_every` | temporal | `snapshot_every_ms`, `label`? | `Snapshot` once per interval (epoch-aligned) |
//! | `retain` | temporal | `label_prefix`?, `max_age_ms`?, `keep`? {`last`, `hourly`, `daily`, `weekly`, `monthly`, `yearly`} | `Delete` of snapshots no retention rule keeps |
//! | `merge_older_than` | temporal | `older_than_ms` | `Merge` of the oldest partitions at least that old |
//! | `copy_every` | temporal | `target`, `copy_every_ms` | `Copy` once per interval (epoch-aligned) |
//! | `threshold` | status | `status`, `above` or `below`, `action`, `target`?, `label`?, `cooldown_ms`? | the action, while the value is past the threshold |
//! | `event` | event | `event`, `pair`?, `action`, `target`?, `label`? | the action, when the event is signalled |
//!
//! Every rule may carry a unique `name`. Statuses ([`Status`]): `log_bytes`,
//! `partition_count`, `reclaimable_bytes`, `reclaimable_ratio`, `writes_since_snapshot`,
//! `bytes_since_snapshot`, `quota_free_bytes` (never fires where there is no quota). Actions
//! ([`ActionKind`]): `snapshot`, `compact` (in place, the snapshot partition with the most
//! reclaimable bytes), `merge_oldest` (the oldest partition into the baseline), `copy` (to
//! `target`). Thresholds are strict: `above: 1000` fires at 1001, not at 1000; they fire at
//! every evaluation while the value stays past the threshold, at most once per `cooldown_ms`.
//!
//! Which rules an evaluation considers depends on its [`Trigger`]: `Tick` (the executor's
//! timer) evaluates temporal rules, thresholds and TTLs; `AfterOperation` only thresholds;
//! `Event(name)` only the event rules for `name`. The executor ([`crate::Managed`], above a store
//! or a mirror) evaluates `AfterOperation` by itself
//! after the operations that change the statuses its threshold rules watch (writes, syncs,
//! snapshots, compactions, merges, deletions, rollbacks, received streams; see
//! [`Operation`]), records the trigger and the operation in each [`AuditEntry`], and never lets
//! the actions it takes start another evaluation; `Managed::set_automatic_policies(false)` turns
//! this off.
//!
//! ## Events, and pre/post pairs
//!
//! Application events have any name the application chooses (`deploy`); the built-in events
//! ([`BuiltinEvent`]) are `open`, `close`, `before_compaction`, `after_compaction` and
//! `quota_warning`. The executor signals the first four itself and carries out their rules:
//! `open` when a writable store or mirror is opened under it, `close` before closing, `before_compaction` and
//! `after_compaction` around a compaction or merge the caller asked for (never one the executor
//! carries out), unless automatic policies are off (see `Managed::set_automatic_policies`); the
//! host signals `quota_warning` with `Managed::event`. A rule with `"pair": true` for event `upgrade`
//! fires on `upgrade:pre` and on `upgrade:post`: the application signals `upgrade:pre` before
//! an operation and `upgrade:post` after it, and gets a snapshot of the state before and one of
//! the state after, as snapper's pre/post snapshots (`{event}` in the label is the full name,
//! `upgrade:pre`). Compaction triggered by `before_compaction` or `after_compaction` is refused
//! by validation, as it would trigger itself.
//!
//! ## Retention
//!
//! Only sealed snapshot partitions are ever deleted: never the baseline, never the head. A
//! `retain` rule applies to the snapshots whose label starts with its `label_prefix` (all of
//! them without one). It keeps a snapshot younger than `max_age_ms`, and the snapshots `keep`
//! selects: `last: N`, the `N` newest; for each bucket kind (UTC hour, day, ISO week from
//! Monday, calendar month, calendar year) with count `N`, the newest snapshot in each of the
//! `N` most recent buckets that hold a snapshot (as sanoid and snapper count: a week with the
//! machine off does not use up a daily slot). A snapshot kept by any rule is kept; a snapshot
//! in the scope of at least one rule and kept by none is deleted; a snapshot in the scope of no
//! rule is left alone. Times are the snapshot's [`VolumeView::snapshot_ms`] (when it was
//! sealed).
//!
//! ## Precedence
//!
//! From strongest to weakest:
//!
//! 1. **Hold** ([`Assignment::hold`]): a held volume is never deleted or merged, by any rule or
//!    TTL. (It may still be compacted in place, which keeps its identifier and contents.)
//! 2. **Newest-snapshot protection**: the newest snapshot ([`StoreView::newest_snapshot`]) is
//!    never deleted or merged, whatever its age, buckets or TTL say.
//! 3. **Per-volume TTL** ([`Assignment::ttl_ms`]): a volume with a TTL is deleted once its
//!    snapshot is that old, and store-wide retention neither deletes it earlier nor keeps it
//!    longer (it is outside every `retain` rule's scope, and fills no bucket).
//! 4. **Store-wide retention** (`retain` rules), as above.
//!
//! `merge_older_than` and `merge_oldest` respect 1 and 2: a merge takes the partitions from the
//! baseline forward while each is the only child of the one before, and stops before a held
//! volume, the newest snapshot or the head. They do not consult retention: merging is an
//! explicit instruction that old partitions stop being separate snapshots.
//!
//! ## Labels
//!
//! Claims 2, 18 and 28: the policy directs the identifier a newly formed partition gets. The
//! numeric [`VolumeId`](crate::VolumeId) is the engine's and always sequential; the policy
//! chooses the label ([`LabelScheme`]): `"sequential"` (the default: no label, the volume is
//! known by its number), `"time"` (`2024-02-29T133005Z`) or `{"template": "..."}` with the
//! placeholders of the [`label`] module (`{date}`, `{time}`, `{n}`, `{event}`, `{rule}`). A
//! snapshot rule's own `label` template overrides the policy's scheme.
//!
//! ## Decisions
//!
//! One evaluation returns, in this order: snapshots (one per firing rule, in rule order; two
//! rules firing together take two snapshots, as sanoid takes an hourly and a daily one at
//! midnight), copies (one per target), at most one merge (the longest asked for), deletions
//! (by volume identifier; none of a merged volume), at most one compaction (never of a volume
//! being merged or deleted). Every decision carries a [`Reason`]: which rule (index and name)
//! or TTL, and the measurement in words. After carrying a decision out, the executor calls
//! [`StoreView::record_run`] on the view it keeps, so that intervals and cooldowns see it.
//!
//! # Invariants
//!
//! Checked by `engine/tests/policy.rs`, with proptest over random views and policies:
//!
//! - A held volume is never deleted or merged.
//! - The newest snapshot is never deleted or merged.
//! - The head and the baseline are never deleted, merged or compacted.
//! - [`evaluate`] is deterministic: the same arguments give the same decisions, whatever the
//!   order of [`StoreView::volumes`].
//! - Labels are at most [`label::LABEL_BYTES_MAX`] bytes and have no control characters.

mod decision;
mod describe;
mod evaluate;
pub mod label;
mod retention;
mod rules;
mod simulate;
mod trigger;
mod validate;
pub(crate) mod view;
mod wire;

pub use decision::{AuditEntry, Decision, Origin, Outcome, Reason};
pub use evaluate::evaluate;
pub use rules::{
    ActionKind, BuiltinEvent, Keep, LabelScheme, Policy, Rule, RuleCategory, Status,
    PAIR_POST_SUFFIX, PAIR_PRE_SUFFIX,
};
pub use simulate::{apply_to_model, simulate, Simulation, TimelineEntry, SIMULATION_STEPS_MAX};
pub use trigger::{Operation, Trigger};
pub use validate::{PolicyError, ASSIGNMENTS_MAX, NAME_BYTES_MAX, POLICY_BYTES_MAX, RULES_MAX};
pub use view::{Assignment, AssignmentEntry, StoreView, VolumeAssignments, VolumeView};
