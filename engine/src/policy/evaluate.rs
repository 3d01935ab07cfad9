//! [`evaluate`]: a policy, the assignments, a view and a clock reading in; decisions out.
//!
//! Evaluation runs in two passes. The first walks the rules in order and collects *intents*
//! (take a snapshot, copy, merge, compact); the second resolves them against each other and
//! against the retention and TTL deletions, so that no decision in one result undoes or
//! invalidates another (nothing is both merged and deleted, nothing deleted is compacted).

use super::decision::{Decision, Origin, Reason};
use super::label::{format_duration_ms, LabelContext, LabelTemplate, UtcDateTime};
use super::retention;
use super::rules::{
    ActionKind, LabelScheme, Policy, Rule, Status, PAIR_POST_SUFFIX, PAIR_PRE_SUFFIX,
};
use super::trigger::Trigger;
use super::view::{StoreView, VolumeAssignments, VolumeView};
use crate::order::IdSet;
use crate::VolumeId;

/// Evaluates `policy` at `now_ms` for `trigger`, and returns what should be done, in the order
/// to do it: snapshots, copies, at most one merge, deletions (by volume identifier), at most one
/// compaction.
///
/// Pure and deterministic: the result depends only on the arguments, not on the order of
/// `view.volumes`. It never panics, even on a policy that [`Policy::validate`] would refuse
/// (such rules simply do less).
pub fn evaluate(
    policy: &Policy,
    assignments: &VolumeAssignments,
    view: &StoreView,
    now_ms: u64,
    trigger: Trigger,
) -> Vec<Decision> {
    let context = Context::new(policy, assignments, view, now_ms);
    let mut intents = Intents::default();
    for (index, rule) in policy.rules.iter().enumerate() {
        let origin = Origin::Rule {
            index,
            name: rule.name().map(str::to_string),
        };
        let considered = Considered {
            context: &context,
            rule,
            index,
            origin,
        };
        considered.collect(&trigger, &mut intents);
    }
    let on_tick = trigger == Trigger::Tick;
    intents.resolve(&context, on_tick)
}

/// One rule being considered for one evaluation.
struct Considered<'a> {
    context: &'a Context<'a>,
    rule: &'a Rule,
    index: usize,
    origin: Origin,
}

impl Considered<'_> {
    /// Adds what the rule intends for `trigger` to `intents` (nothing if it does not fire).
    fn collect(self, trigger: &Trigger, intents: &mut Intents) {
        match (self.rule, trigger) {
            (
                Rule::SnapshotEvery {
                    snapshot_every_ms,
                    label,
                    ..
                },
                Trigger::Tick,
            ) => self.snapshot_every(*snapshot_every_ms, label.as_deref(), intents),
            (
                Rule::CopyEvery {
                    target,
                    copy_every_ms,
                    ..
                },
                Trigger::Tick,
            ) => self.copy_every(target, *copy_every_ms, intents),
            (Rule::MergeOlderThan { older_than_ms, .. }, Trigger::Tick) => {
                self.merge_older_than(*older_than_ms, intents)
            }
            (Rule::Threshold { .. }, Trigger::Tick | Trigger::AfterOperation) => {
                self.threshold(intents)
            }
            (
                Rule::Event {
                    event,
                    pair,
                    action,
                    target,
                    label,
                    ..
                },
                Trigger::Event(name),
            ) => {
                if !event_matches(event, *pair, name) {
                    return;
                }
                let text = format!("event {name:?}");
                let act = Act {
                    action: *action,
                    target: target.as_deref(),
                    template: label.as_deref(),
                    event: name,
                };
                intents.action(self.context, self.rule, act, self.origin, text);
            }
            _ => {}
        }
    }

    fn snapshot_every(self, every_ms: u64, label: Option<&str>, intents: &mut Intents) {
        let view = self.context.view;
        let last = view.rule_last_run_ms.get(&self.index).copied();
        if let Some(why) = interval_due(self.context.now_ms, last, every_ms, "last run") {
            let text = format!("snapshot_every {}: {why}", format_duration_ms(every_ms));
            intents.snapshot(self.context, self.rule, label, "", self.origin, text);
        }
    }

    fn copy_every(self, target: &str, every_ms: u64, intents: &mut Intents) {
        let last = self.context.view.last_copy_ms.get(target).copied();
        let last_what = format!("last copy to {target:?}");
        if let Some(why) = interval_due(self.context.now_ms, last, every_ms, &last_what) {
            let text = format!("copy_every {}: {why}", format_duration_ms(every_ms));
            let reason = Reason {
                origin: self.origin,
                text,
            };
            intents.copies.push((target.to_string(), reason));
        }
    }

    fn merge_older_than(self, older_than_ms: u64, intents: &mut Intents) {
        let (trunk, now_ms) = (&self.context.trunk, self.context.now_ms);
        let old_enough = trunk
            .iter()
            .take_while(|v| now_ms.saturating_sub(v.snapshot_ms()) >= older_than_ms)
            .count();
        if let Some(up_to) = old_enough.checked_sub(1).map(|i| trunk[i]) {
            let text = format!(
                "merge_older_than {}: {old_enough} partition(s) up to volume {} (taken {}) are at least that old",
                format_duration_ms(older_than_ms),
                up_to.id,
                UtcDateTime::from_unix_ms(up_to.snapshot_ms()),
            );
            let reason = Reason {
                origin: self.origin,
                text,
            };
            intents.merges.push((old_enough, reason));
        }
    }

    fn threshold(self, intents: &mut Intents) {
        let Rule::Threshold {
            status,
            above,
            below,
            action,
            target,
            label,
            cooldown_ms,
            ..
        } = self.rule
        else {
            return;
        };
        let view = self.context.view;
        let Some(text) = threshold_crossed(view, *status, *above, *below) else {
            return;
        };
        if let (Some(cooldown_ms), Some(last)) =
            (cooldown_ms, view.rule_last_run_ms.get(&self.index))
        {
            if self.context.now_ms.saturating_sub(*last) < *cooldown_ms {
                return;
            }
        }
        let act = Act {
            action: *action,
            target: target.as_deref(),
            template: label.as_deref(),
            event: "",
        };
        intents.action(self.context, self.rule, act, self.origin, text);
    }
}

/// Whether an event rule for `event` (with `pair`) fires on the signalled `name`.
fn event_matches(event: &str, pair: bool, name: &str) -> bool {
    if pair {
        name.strip_prefix(event)
            .is_some_and(|suffix| suffix == PAIR_PRE_SUFFIX || suffix == PAIR_POST_SUFFIX)
    } else {
        name == event
    }
}

/// Whether an epoch-aligned interval rule is due: it has never run, or its last run fell in an
/// earlier interval than `now_ms`. Returns the reason in words.
fn interval_due(
    now_ms: u64,
    last_ms: Option<u64>,
    interval_ms: u64,
    last_what: &str,
) -> Option<String> {
    let interval_ms = interval_ms.max(1);
    match last_ms {
        None => Some(format!("{last_what}: never")),
        Some(last_ms) if now_ms / interval_ms > last_ms / interval_ms => Some(format!(
            "{last_what} at {} was in an earlier interval",
            UtcDateTime::from_unix_ms(last_ms)
        )),
        Some(_) => None,
    }
}

/// If the status value is past the threshold, says so in words.
fn threshold_crossed(
    view: &StoreView,
    status: Status,
    above: Option<f64>,
    below: Option<f64>,
) -> Option<String> {
    let value = status_value(view, status)?;
    let shown = match value {
        StatusValue::Count(n) => n.to_string(),
        StatusValue::Ratio(r) => ratio_text(r),
    };
    let value = match value {
        StatusValue::Count(n) => n as f64,
        StatusValue::Ratio(r) => r,
    };
    let name = status.as_str();
    match (above, below) {
        (Some(above), _) if value > above => {
            Some(format!("{name} {shown} > {}", threshold_text(above)))
        }
        (None, Some(below)) if value < below => {
            Some(format!("{name} {shown} < {}", threshold_text(below)))
        }
        _ => None,
    }
}

/// A ratio (reclaimable over log bytes: never negative) with four decimals (`0.3125`), in integer
/// arithmetic, ties to even as `{:.4}` rounds them (`0.03125` -> `0.0312`): core's float
/// formatting is some 16 KiB of WebAssembly, and these reasons were its only use in the engine.
/// The value is scaled in binary, so a number a hair from a tie may round the other way than
/// `{:.4}`, which rounds the exact decimal expansion; it is a text for people.
fn ratio_text(ratio: f64) -> String {
    let scaled = (ratio.max(0.0) * 10_000.0).round_ties_even() as u64;
    format!("{}.{:04}", scaled / 10_000, scaled % 10_000)
}

/// A threshold as written in the policy: whole numbers in full (`1000`, `10000000000000000`),
/// others in the shortest form that reads back as the same number (`0.3`; exponent notation
/// below 0.001 or so, `1e-7`), as JSON writes them.
pub(super) fn threshold_text(threshold: f64) -> String {
    if threshold.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&threshold) {
        return (threshold as u64).to_string();
    }
    serde_json::to_string(&threshold).unwrap_or_default()
}

enum StatusValue {
    Count(u64),
    Ratio(f64),
}

fn status_value(view: &StoreView, status: Status) -> Option<StatusValue> {
    let reclaimable = || -> u64 {
        view.volumes
            .iter()
            .filter(|v| v.id != VolumeId::BASELINE)
            .fold(0u64, |sum, v| sum.saturating_add(v.reclaimable_bytes))
    };
    Some(match status {
        Status::LogBytes => StatusValue::Count(view.log_bytes),
        Status::PartitionCount => StatusValue::Count(view.partition_count),
        Status::ReclaimableBytes => StatusValue::Count(reclaimable()),
        Status::ReclaimableRatio => StatusValue::Ratio(if view.log_bytes == 0 {
            0.0
        } else {
            reclaimable() as f64 / view.log_bytes as f64
        }),
        Status::WritesSinceSnapshot => StatusValue::Count(view.writes_since_snapshot),
        Status::BytesSinceSnapshot => StatusValue::Count(view.bytes_since_snapshot),
        Status::QuotaFreeBytes => StatusValue::Count(view.quota_free_bytes?),
    })
}

/// The view, sorted and indexed once per evaluation.
struct Context<'a> {
    policy: &'a Policy,
    assignments: &'a VolumeAssignments,
    view: &'a StoreView,
    now_ms: u64,
    /// Every volume, sorted (by identifier first), so results never depend on input order.
    volumes: Vec<&'a VolumeView>,
    newest_snapshot: Option<VolumeId>,
    /// The `{n}` of the next snapshot: the head's identifier (the snapshot seals the head).
    next_counter: u64,
    /// The partitions a merge may take, oldest first: starting at the baseline, each the only
    /// child of the one before, each a snapshot that is neither held nor the newest.
    trunk: Vec<&'a VolumeView>,
}

impl<'a> Context<'a> {
    fn new(
        policy: &'a Policy,
        assignments: &'a VolumeAssignments,
        view: &'a StoreView,
        now_ms: u64,
    ) -> Self {
        // By identifier (unique in a store's view; in a malformed one, ties keep their order).
        let volumes: Vec<&VolumeView> =
            crate::order::order_by(view.volumes.len(), |i| (view.volumes[i].id.0, 0))
                .into_iter()
                .map(|i| &view.volumes[i])
                .collect();
        let newest_snapshot = view.newest_snapshot().map(|v| v.id);
        let next_counter = match view.head() {
            Some(head) => head.id.0,
            None => volumes
                .iter()
                .map(|v| v.id.0)
                .max()
                .map_or(1, |m| m.saturating_add(1)),
        };
        let mut context = Context {
            policy,
            assignments,
            view,
            now_ms,
            volumes,
            newest_snapshot,
            next_counter,
            trunk: Vec::new(),
        };
        context.trunk = context.compute_trunk();
        context
    }

    /// Held, or the newest snapshot: never deleted, never merged.
    fn is_protected(&self, volume: VolumeId) -> bool {
        self.assignments.is_held(volume) || self.newest_snapshot == Some(volume)
    }

    fn compute_trunk(&self) -> Vec<&'a VolumeView> {
        // The volumes ordered by parent (roots first), so that a volume's children are a run
        // found by binary search. (A sorted list rather than a map of children: one B-tree
        // instantiation less in the WebAssembly module.)
        let parent_key = |v: &VolumeView| v.parent.map_or((0, 0), |p| (1, p.0));
        let by_parent = crate::order::order_by(self.volumes.len(), |i| parent_key(self.volumes[i]));
        let children_of = |at: VolumeId| {
            let start = by_parent.partition_point(|&i| parent_key(self.volumes[i]) < (1, at.0));
            let end = by_parent.partition_point(|&i| parent_key(self.volumes[i]) <= (1, at.0));
            &by_parent[start..end]
        };
        let mut trunk = Vec::new();
        let mut at = VolumeId::BASELINE;
        // Bounded: each step takes a distinct volume (a cycle in a malformed view would revisit
        // one, and the bound stops it).
        for _ in 0..self.volumes.len() {
            let [only_child] = children_of(at) else {
                break;
            };
            let only_child = &self.volumes[*only_child];
            if !only_child.is_snapshot()
                || self.is_protected(only_child.id)
                || trunk.iter().any(|v: &&VolumeView| v.id == only_child.id)
            {
                break;
            }
            trunk.push(*only_child);
            at = only_child.id;
        }
        trunk
    }

    fn label(&self, rule: &Rule, template: Option<&str>, event: &str, counter: u64) -> String {
        let parsed = match (template, &self.policy.labels) {
            (Some(template), _) => LabelTemplate::parse(template).ok(),
            (None, LabelScheme::Template(template)) => LabelTemplate::parse(template).ok(),
            (None, LabelScheme::Time) => Some(LabelTemplate::time_based()),
            (None, LabelScheme::Sequential) => None,
        };
        let Some(template) = parsed else {
            return String::new();
        };
        template.render(&LabelContext {
            at_ms: self.now_ms,
            counter,
            event,
            rule: rule.name().unwrap_or(rule.kind_str()),
        })
    }
}

/// The action part of a threshold or event rule, with the event that fired it (empty if none).
struct Act<'r> {
    action: ActionKind,
    target: Option<&'r str>,
    template: Option<&'r str>,
    event: &'r str,
}

/// What the rules asked for, before resolution.
#[derive(Default)]
struct Intents {
    snapshots: Vec<(String, Reason)>,
    copies: Vec<(String, Reason)>,
    /// Number of trunk partitions to merge (at least 1), and why.
    merges: Vec<(usize, Reason)>,
    compactions: Vec<Reason>,
}

impl Intents {
    fn snapshot(
        &mut self,
        context: &Context<'_>,
        rule: &Rule,
        template: Option<&str>,
        event: &str,
        origin: Origin,
        text: String,
    ) {
        // Each snapshot seals the head and opens the next identifier, so the k-th snapshot of
        // this evaluation will carry the head's identifier plus k.
        let counter = context
            .next_counter
            .saturating_add(self.snapshots.len() as u64);
        let label = context.label(rule, template, event, counter);
        self.snapshots.push((label, Reason { origin, text }));
    }

    fn action(
        &mut self,
        context: &Context<'_>,
        rule: &Rule,
        act: Act<'_>,
        origin: Origin,
        text: String,
    ) {
        let Act {
            action,
            target,
            template,
            event,
        } = act;
        match action {
            ActionKind::Snapshot => self.snapshot(context, rule, template, event, origin, text),
            ActionKind::Copy => {
                // A copy action without a target is refused by validation; do nothing.
                if let Some(target) = target {
                    self.copies
                        .push((target.to_string(), Reason { origin, text }));
                }
            }
            ActionKind::MergeOldest => {
                if let Some(oldest) = context.trunk.first() {
                    let text = format!("{text}; the oldest partition is volume {}", oldest.id);
                    self.merges.push((1, Reason { origin, text }));
                }
            }
            ActionKind::Compact => self.compactions.push(Reason { origin, text }),
        }
    }

    fn resolve(self, context: &Context<'_>, on_tick: bool) -> Vec<Decision> {
        let mut decisions = Vec::new();
        for (label, reason) in self.snapshots {
            decisions.push(Decision::Snapshot { label, reason });
        }
        let mut copied: Vec<String> = Vec::new();
        for (target, reason) in self.copies {
            if !copied.contains(&target) {
                copied.push(target.clone());
                decisions.push(Decision::Copy { target, reason });
            }
        }
        // The longest merge asked for covers the others; the first rule asking for it wins.
        let mut merged_count = 0;
        let mut merge_reason = None;
        for (count, reason) in self.merges {
            if count > merged_count {
                merged_count = count;
                merge_reason = Some(reason);
            }
        }
        let merged = IdSet::from_ids(context.trunk.iter().take(merged_count).map(|v| v.id));
        if let (Some(reason), Some(up_to)) = (merge_reason, merged_count.checked_sub(1)) {
            if let Some(up_to) = context.trunk.get(up_to) {
                decisions.push(Decision::Merge {
                    up_to: up_to.id,
                    reason,
                });
            }
        }
        let mut deleted = IdSet::default();
        if on_tick {
            for (volume, reason) in deletions(context, &merged) {
                deleted.insert(volume);
                decisions.push(Decision::Delete { volume, reason });
            }
        }
        if let Some(reason) = self.compactions.into_iter().next() {
            let best = context
                .volumes
                .iter()
                .filter(|v| v.is_snapshot() && v.reclaimable_bytes > 0)
                .filter(|v| !merged.contains(v.id) && !deleted.contains(v.id))
                .max_by_key(|v| (v.reclaimable_bytes, std::cmp::Reverse(v.id)));
            if let Some(best) = best {
                let text = format!(
                    "{}; volume {} has the most reclaimable bytes ({})",
                    reason.text, best.id, best.reclaimable_bytes
                );
                decisions.push(Decision::Compact {
                    volume: best.id,
                    reason: Reason {
                        origin: reason.origin,
                        text,
                    },
                });
            }
        }
        decisions
    }
}

/// Each retain rule: its scope (snapshots without a TTL whose label has its prefix) and the
/// snapshots it keeps.
struct Retention<'r> {
    origin: Origin,
    label_prefix: Option<&'r str>,
    describe: String,
    kept: IdSet,
}

/// Per-volume TTLs, then store-wide retention, in the precedence the module documents.
fn deletions(context: &Context<'_>, merged: &IdSet) -> Vec<(VolumeId, Reason)> {
    let snapshots: Vec<&VolumeView> = context
        .volumes
        .iter()
        .copied()
        .filter(|v| v.is_snapshot())
        .collect();
    let retentions = retentions(context, &snapshots);
    snapshots
        .into_iter()
        .filter(|v| !merged.contains(v.id) && !context.is_protected(v.id))
        .filter_map(|v| match context.assignments.get(v.id).ttl_ms {
            // A TTL replaces store-wide retention for this volume, both ways.
            Some(ttl_ms) => ttl_deletion(context, v, ttl_ms),
            None => retention_deletion(context, v, &retentions),
        })
        .collect()
}

/// The retain rules, each with what it keeps of `snapshots`.
fn retentions<'a>(context: &Context<'a>, snapshots: &[&VolumeView]) -> Vec<Retention<'a>> {
    let mut retentions = Vec::new();
    for (index, rule) in context.policy.rules.iter().enumerate() {
        let Rule::Retain {
            label_prefix,
            max_age_ms,
            keep,
            ..
        } = rule
        else {
            continue;
        };
        let label_prefix = label_prefix.as_deref();
        let scope: Vec<&VolumeView> = snapshots
            .iter()
            .copied()
            .filter(|v| in_scope(v, label_prefix, context.assignments))
            .collect();
        retentions.push(Retention {
            origin: Origin::Rule {
                index,
                name: rule.name().map(str::to_string),
            },
            label_prefix,
            describe: retention::describe(*max_age_ms, keep.as_ref()),
            kept: retention::kept(&scope, *max_age_ms, keep.as_ref(), context.now_ms),
        });
    }
    retentions
}

/// Snapshot `v` deleted by its time to live, if it has reached it.
fn ttl_deletion(context: &Context<'_>, v: &VolumeView, ttl_ms: u64) -> Option<(VolumeId, Reason)> {
    let age_ms = context.now_ms.saturating_sub(v.snapshot_ms());
    if age_ms < ttl_ms {
        return None;
    }
    let text = format!(
        "age {} reached its ttl {}",
        format_duration_ms(age_ms),
        format_duration_ms(ttl_ms)
    );
    let origin = Origin::VolumeTtl { ttl_ms };
    Some((v.id, Reason { origin, text }))
}

/// Snapshot `v` deleted by store-wide retention: some retain rule governs it and none keeps it.
fn retention_deletion(
    context: &Context<'_>,
    v: &VolumeView,
    retentions: &[Retention<'_>],
) -> Option<(VolumeId, Reason)> {
    let governing: Vec<&Retention> = retentions
        .iter()
        .filter(|r| in_scope(v, r.label_prefix, context.assignments))
        .collect();
    let first = governing.first()?;
    if governing.iter().any(|r| r.kept.contains(v.id)) {
        return None;
    }
    let rules: Vec<String> = governing
        .iter()
        .map(|r| format!("{} ({})", r.origin, r.describe))
        .collect();
    let text = format!(
        "taken {} (age {}), kept by none of {}",
        UtcDateTime::from_unix_ms(v.snapshot_ms()),
        format_duration_ms(context.now_ms.saturating_sub(v.snapshot_ms())),
        rules.join(", ")
    );
    let origin = first.origin.clone();
    Some((v.id, Reason { origin, text }))
}

fn in_scope(v: &VolumeView, label_prefix: Option<&str>, assignments: &VolumeAssignments) -> bool {
    assignments.get(v.id).ttl_ms.is_none()
        && label_prefix.is_none_or(|prefix| v.label.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::{ratio_text, threshold_text};

    #[test]
    fn reasons_show_numbers_as_core_formatting_did() {
        // Ties included: power-of-two fractions of the log are common ratios.
        let mut ratios = vec![0.0, 0.3125, 0.5, 0.99995, 1.0, 1.0 / 3.0, 0.00004, 1.25];
        ratios.extend((0..=64).map(|k| f64::from(k) / 64.0));
        ratios.extend((1..=32).map(|k| 1.0 / f64::from(1u32 << (k % 20))));
        for ratio in ratios {
            assert_eq!(ratio_text(ratio), format!("{ratio:.4}"), "{ratio}");
        }
        for threshold in [
            0.0,
            0.3,
            1000.0,
            52_428_800.0,
            0.25,
            1.5e9,
            12.125,
            1e16,
            4.5e15,
        ] {
            assert_eq!(threshold_text(threshold), format!("{threshold}"));
        }
        assert_eq!(threshold_text(1e-7), "1e-7");
    }
}
