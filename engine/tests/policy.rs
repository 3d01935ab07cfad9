//! The storage-management policy module, tested with no storage at all: policies are data,
//! views are plain structs, time is a number.
//!
//! Random tests are proptests: a failure prints the minimal failing input and proptest persists
//! its seed in `policy.proptest-regressions` for replay.

use std::collections::BTreeSet;

use proptest::prelude::*;
use strata_engine::policy::label::{civil_from_days, LabelContext, LabelTemplate, UtcDateTime};
use strata_engine::policy::{
    apply_to_model, evaluate, simulate, ActionKind, Assignment, AuditEntry, Decision, Keep,
    LabelScheme, Origin, Outcome, Policy, PolicyError, Reason, Rule, Status, StoreView, Trigger,
    VolumeAssignments, VolumeView,
};
use strata_engine::VolumeId;

const MINUTE: u64 = 60_000;
const HOUR: u64 = 3_600_000;
const DAY: u64 = 86_400_000;
/// 2024-03-01T00:00:00Z, a Friday.
const MARCH_1_2024: u64 = 1_709_251_200_000;
/// 2024-01-01T00:00:00Z, a Monday.
const JANUARY_1_2024: u64 = 1_704_067_200_000;

// ----- helpers ---------------------------------------------------------------------------------

fn policy(json: &str) -> Policy {
    match Policy::from_json(json) {
        Ok(policy) => policy,
        Err(e) => panic!("test policy refused: {e}"),
    }
}

fn error_of(json: &str) -> String {
    match Policy::from_json(json) {
        Ok(_) => panic!("policy accepted, expected an error: {json}"),
        Err(e) => e.to_string(),
    }
}

fn baseline() -> VolumeView {
    VolumeView {
        id: VolumeId::BASELINE,
        label: String::new(),
        parent: None,
        created_ms: 0,
        sealed_ms: Some(0),
        is_head: false,
        bytes: 0,
        reclaimable_bytes: 0,
    }
}

fn snapshot(id: u64, parent: u64, sealed_ms: u64, label: &str) -> VolumeView {
    VolumeView {
        id: VolumeId(id),
        label: label.to_string(),
        parent: Some(VolumeId(parent)),
        created_ms: sealed_ms.saturating_sub(1),
        sealed_ms: Some(sealed_ms),
        is_head: false,
        bytes: 1_000,
        reclaimable_bytes: 0,
    }
}

fn head(id: u64, parent: u64, created_ms: u64) -> VolumeView {
    VolumeView {
        id: VolumeId(id),
        label: String::new(),
        parent: Some(VolumeId(parent)),
        created_ms,
        sealed_ms: None,
        is_head: true,
        bytes: 0,
        reclaimable_bytes: 0,
    }
}

/// A store that has just been created at `at_ms`: the baseline and an empty head.
fn fresh_view(at_ms: u64) -> StoreView {
    StoreView {
        volumes: vec![baseline(), head(1, 0, at_ms)],
        partition_count: 1,
        ..StoreView::default()
    }
}

/// A chain: baseline <- snapshots taken at `times` (ids 1..) <- head.
fn chain_view(times: &[u64]) -> StoreView {
    let mut volumes = vec![baseline()];
    for (i, t) in times.iter().enumerate() {
        volumes.push(snapshot(i as u64 + 1, i as u64, *t, ""));
    }
    let n = times.len() as u64;
    volumes.push(head(n + 1, n, times.last().copied().unwrap_or(0)));
    StoreView {
        log_bytes: 1_000 * n,
        partition_count: n + 1,
        volumes,
        ..StoreView::default()
    }
}

fn deleted(decisions: &[Decision]) -> BTreeSet<u64> {
    decisions
        .iter()
        .filter_map(|d| match d {
            Decision::Delete { volume, .. } => Some(volume.0),
            _ => None,
        })
        .collect()
}

fn snapshot_times(view: &StoreView) -> Vec<u64> {
    let mut times: Vec<u64> = view
        .volumes
        .iter()
        .filter(|v| v.is_snapshot())
        .filter_map(|v| v.sealed_ms)
        .collect();
    times.sort();
    times
}

fn tick(policy: &Policy, view: &StoreView, now_ms: u64) -> Vec<Decision> {
    evaluate(
        policy,
        &VolumeAssignments::new(),
        view,
        now_ms,
        Trigger::Tick,
    )
}

// ----- validation ------------------------------------------------------------------------------

#[test]
fn validation_errors_name_the_offending_field() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"rules": [
                {"kind": "snapshot_every", "snapshot_every_ms": 3600000},
                {"kind": "retain", "max_age_ms": 1000},
                {"kind": "retain", "keep": {"hourly": 0, "daily": 7}}
            ]}"#,
            "rules[2].keep.hourly: must be at least 1",
        ),
        (
            r#"{"rules": [{"kind": "snapshot_every", "snapshot_every_ms": 0}]}"#,
            "rules[0].snapshot_every_ms: must be at least 1",
        ),
        (
            r#"{"rules": [{"kind": "retain"}]}"#,
            "rules[0]: a retain rule needs max_age_ms, keep, or both",
        ),
        (
            r#"{"rules": [{"kind": "retain", "keep": {}}]}"#,
            "rules[0].keep: must set at least one of last, hourly, daily, weekly, monthly, yearly",
        ),
        (
            r#"{"rules": [{"kind": "merge_older_than", "older_than_ms": 0}]}"#,
            "rules[0].older_than_ms: must be at least 1",
        ),
        (
            r#"{"rules": [{"kind": "copy_every", "target": "", "copy_every_ms": 1}]}"#,
            "rules[0].target: must not be empty",
        ),
        (
            r#"{"rules": [{"kind": "threshold", "status": "log_bytes", "above": 1, "below": 2, "action": "compact"}]}"#,
            "rules[0]: a threshold rule needs exactly one of above or below",
        ),
        (
            r#"{"rules": [{"kind": "threshold", "status": "reclaimable_ratio", "above": 1.5, "action": "compact"}]}"#,
            "rules[0].above: must be between 0 and 1 for reclaimable_ratio",
        ),
        (
            r#"{"rules": [{"kind": "threshold", "status": "log_bytes", "below": -1, "action": "compact"}]}"#,
            "rules[0].below: must be a number of at least 0",
        ),
        (
            r#"{"rules": [{"kind": "threshold", "status": "log_bytes", "above": 1, "action": "copy"}]}"#,
            "rules[0].target: required when action is copy",
        ),
        (
            r#"{"rules": [{"kind": "event", "event": "deploy", "action": "snapshot", "target": "x"}]}"#,
            "rules[0].target: only for action copy, not snapshot",
        ),
        (
            r#"{"rules": [{"kind": "event", "event": "deploy", "action": "compact", "label": "x"}]}"#,
            "rules[0].label: only for action snapshot, not compact",
        ),
        (
            r#"{"rules": [{"kind": "event", "event": "", "action": "snapshot"}]}"#,
            "rules[0].event: must not be empty",
        ),
        (
            r#"{"rules": [{"kind": "event", "event": "close", "pair": true, "action": "snapshot"}]}"#,
            "rules[0].pair: built-in event \"close\" has no pre/post pair",
        ),
        (
            r#"{"rules": [{"kind": "event", "event": "after_compaction", "action": "compact"}]}"#,
            "rules[0].action: compact on \"after_compaction\" would trigger itself without end",
        ),
        (
            r#"{"rules": [
                {"name": "a", "kind": "snapshot_every", "snapshot_every_ms": 1},
                {"name": "a", "kind": "merge_older_than", "older_than_ms": 1}
            ]}"#,
            "rules[1].name: \"a\" is already the name of rules[0]",
        ),
        (
            r#"{"rules": [{"kind": "snapshot_every", "snapshot_every_ms": 1, "label": "h-{hour}"}]}"#,
            "rules[0].label: unknown placeholder {hour}; expected one of {date}, {time}, {n}, {event}, {rule}",
        ),
        (
            r#"{"labels": {"template": "x-{date"}}"#,
            "labels.template: has an unclosed '{date' (write '{{' for a brace)",
        ),
        (
            r#"{"labels": {"template": "x}"}}"#,
            "labels.template: has a '}' with no '{' before it (write '}}' for a brace)",
        ),
    ];
    for (json, expected) in cases {
        assert_eq!(&error_of(json), expected, "for {json}");
    }
}

#[test]
fn invalid_error_carries_the_path_as_data() {
    let error = Policy::from_json(r#"{"rules": [{"kind": "retain", "keep": {"weekly": 0}}]}"#)
        .err()
        .unwrap_or(PolicyError::ZeroStep);
    assert_eq!(error.path(), Some("rules[0].keep.weekly"));
    assert!(
        matches!(error, PolicyError::Invalid { ref message, .. } if message == "must be at least 1")
    );
}

#[test]
fn misspelt_fields_and_unknown_kinds_are_parse_errors() {
    let error = error_of(r#"{"rules": [{"kind": "retain", "keep": {"houry": 3}}]}"#);
    assert!(error.contains("unknown field `houry`"), "{error}");
    let error = error_of(r#"{"rules": [{"kind": "retain", "max_age_ms": 5, "keep_hourly": 3}]}"#);
    assert!(error.contains("unknown field `keep_hourly`"), "{error}");
    let error = error_of(r#"{"rules": [{"kind": "snapshot_sometimes"}]}"#);
    assert!(
        error.contains("unknown variant `snapshot_sometimes`"),
        "{error}"
    );
    let error = error_of(r#"{"rulez": []}"#);
    assert!(error.contains("unknown field `rulez`"), "{error}");
    let error = error_of(
        r#"{"rules": [{"kind": "threshold", "status": "disk_bytes", "above": 1, "action": "compact"}]}"#,
    );
    assert!(error.contains("unknown variant `disk_bytes`"), "{error}");
}

#[test]
fn assignment_ttl_of_zero_is_refused_with_its_volume() {
    let mut assignments = VolumeAssignments::new();
    assignments.set_ttl_ms(VolumeId(3), Some(0));
    let error = assignments.validate().err().map(|e| e.to_string());
    assert_eq!(
        error.as_deref(),
        Some("volumes[3].ttl_ms: must be at least 1")
    );
}

#[test]
fn policy_json_round_trips() {
    let original = policy(
        r#"{
        "labels": "time",
        "rules": [
            {"name": "h", "kind": "snapshot_every", "snapshot_every_ms": 3600000, "label": "h-{n}"},
            {"kind": "retain", "label_prefix": "h-", "max_age_ms": 60000, "keep": {"last": 3, "yearly": 2}},
            {"kind": "merge_older_than", "older_than_ms": 5},
            {"kind": "copy_every", "target": "t", "copy_every_ms": 5},
            {"kind": "threshold", "status": "bytes_since_snapshot", "above": 5, "action": "copy", "target": "t", "cooldown_ms": 9},
            {"kind": "event", "event": "e", "pair": true, "action": "snapshot", "label": "{event}"}
        ]
    }"#,
    );
    assert_eq!(Policy::from_json(&original.to_json()), Ok(original));
}

#[test]
fn assignments_serialise_as_a_list_and_refuse_duplicates() {
    let mut assignments = VolumeAssignments::new();
    assignments.set_hold(VolumeId(5), true);
    assignments.set_ttl_ms(VolumeId(7), Some(86_400_000));
    let json = serde_json::to_string(&assignments).unwrap_or_default();
    assert_eq!(
        json,
        r#"[{"volume":5,"hold":true},{"volume":7,"ttl_ms":86400000}]"#
    );
    let back: Result<VolumeAssignments, _> = serde_json::from_str(&json);
    assert_eq!(back.ok(), Some(assignments));
    let twice: Result<VolumeAssignments, _> =
        serde_json::from_str(r#"[{"volume":5,"hold":true},{"volume":5}]"#);
    assert!(twice.is_err());
}

// ----- retention over a simulated period --------------------------------------------------------

/// Snapshots every hour, on the hour, from 2024-03-01T00:00Z to 2024-03-30T23:00Z (720 of
/// them); keep 24 hourly, 7 daily, 4 weekly. Written out by hand:
///
/// - hourly: the 24 snapshots of 2024-03-30, 00:00 to 23:00;
/// - daily: the 23:00 snapshot of each of the 7 most recent days, 2024-03-24 to 2024-03-30;
/// - weekly (ISO weeks, from Monday): the 23:00 snapshot of the last Sunday of each of the four
///   most recent weeks: 2024-03-10 (week of 4 March), 2024-03-17, 2024-03-24, and for the week
///   of 25 March (not over yet) its newest, 2024-03-30 23:00.
#[test]
fn hourly_snapshots_for_30_days_keep_exactly_24_hourly_7_daily_4_weekly() {
    let policy = policy(
        r#"{"rules": [
            {"kind": "snapshot_every", "snapshot_every_ms": 3600000},
            {"kind": "retain", "keep": {"hourly": 24, "daily": 7, "weekly": 4}}
        ]}"#,
    );
    let at = |day_of_march: u64, hour: u64| MARCH_1_2024 + (day_of_march - 1) * DAY + hour * HOUR;
    let mut expected: BTreeSet<u64> = (0..24).map(|hour| at(30, hour)).collect();
    expected.extend((24..=30).map(|day| at(day, 23)));
    expected.extend([at(10, 23), at(17, 23), at(24, 23), at(30, 23)]);
    assert_eq!(expected.len(), 24 + 6 + 2);

    // Evaluate every 15 minutes; the last evaluation, at 23:45 on 30 March, sees the 23:00
    // snapshot.
    let until = at(30, 23) + 45 * MINUTE;
    let simulation = simulate(
        &policy,
        &VolumeAssignments::new(),
        fresh_view(MARCH_1_2024),
        MARCH_1_2024,
        until,
        15 * MINUTE,
        apply_to_model,
    );
    let simulation = simulation.unwrap_or_else(|e| panic!("{e}"));
    let taken = simulation
        .timeline
        .iter()
        .filter(|e| matches!(e.decision, Decision::Snapshot { .. }))
        .count();
    assert_eq!(taken, 720);
    let kept: BTreeSet<u64> = snapshot_times(&simulation.view).into_iter().collect();
    assert_eq!(kept, expected);
    // Nothing was deleted twice, and every deletion was the retention rule's.
    let deletions: Vec<u64> = simulation
        .timeline
        .iter()
        .filter_map(|e| match &e.decision {
            Decision::Delete { volume, reason } => {
                assert!(matches!(reason.origin, Origin::Rule { index: 1, .. }));
                Some(volume.0)
            }
            _ => None,
        })
        .collect();
    assert_eq!(deletions.len(), 720 - expected.len());
    assert_eq!(
        deletions.iter().collect::<BTreeSet<_>>().len(),
        deletions.len()
    );
}

/// Daily snapshots at midnight from 2024-01-01 to 2024-04-10 (101 of them, a leap February
/// among them); keep 3 daily and 3 monthly: 8, 9 and 10 April (daily), and the last day of each
/// of the three most recent months: 10 April (newest of April), 31 March, 29 February.
#[test]
fn daily_snapshots_keep_the_last_day_of_each_recent_month() {
    let policy = policy(
        r#"{"rules": [
            {"kind": "snapshot_every", "snapshot_every_ms": 86400000},
            {"kind": "retain", "keep": {"daily": 3, "monthly": 3}}
        ]}"#,
    );
    let april_10 = 1_712_707_200_000;
    let expected: BTreeSet<u64> = [
        1_709_164_800_000, // 2024-02-29
        1_711_843_200_000, // 2024-03-31
        1_712_534_400_000, // 2024-04-08
        1_712_620_800_000, // 2024-04-09
        april_10,
    ]
    .into();
    let simulation = simulate(
        &policy,
        &VolumeAssignments::new(),
        fresh_view(JANUARY_1_2024),
        JANUARY_1_2024,
        april_10 + 18 * HOUR,
        6 * HOUR,
        apply_to_model,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let kept: BTreeSet<u64> = snapshot_times(&simulation.view).into_iter().collect();
    assert_eq!(kept, expected);
}

#[test]
fn max_age_keeps_younger_snapshots_and_the_newest_whatever_its_age() {
    let policy = policy(r#"{"rules": [{"kind": "retain", "max_age_ms": 3600000}]}"#);
    let now = MARCH_1_2024;
    // Ages: 3h, 1h exactly, 59m, and (newest) 30m.
    let view = chain_view(&[
        now - 3 * HOUR,
        now - HOUR,
        now - 59 * MINUTE,
        now - 30 * MINUTE,
    ]);
    assert_eq!(deleted(&tick(&policy, &view, now)), [1, 2].into());
    // Much later, everything is old, but the newest snapshot stays.
    assert_eq!(
        deleted(&tick(&policy, &view, now + 30 * DAY)),
        [1, 2, 3].into()
    );
}

#[test]
fn a_snapshot_kept_by_any_rule_is_kept_and_rules_apply_only_to_their_prefix() {
    let policy = policy(
        r#"{"rules": [
            {"kind": "retain", "label_prefix": "hourly-", "keep": {"last": 1}},
            {"kind": "retain", "max_age_ms": 7200000}
        ]}"#,
    );
    let now = MARCH_1_2024;
    let mut view = chain_view(&[
        now - 5 * HOUR,
        now - 4 * HOUR,
        now - HOUR,
        now - 30 * MINUTE,
    ]);
    let labels = ["hourly-a", "hourly-b", "hourly-c", "manual"];
    for (v, label) in view.volumes[1..5].iter_mut().zip(labels) {
        v.label = label.to_string();
    }
    // hourly-a, hourly-b: old, not the last hourly -> deleted. hourly-c: last hourly (and young).
    // manual: only in the second rule's scope, young.
    assert_eq!(deleted(&tick(&policy, &view, now)), [1, 2].into());
    // A label in no rule's scope is left alone by a prefix-only policy.
    let only_hourly = policy_with_rules(vec![Rule::Retain {
        name: None,
        label_prefix: Some("hourly-".into()),
        max_age_ms: None,
        keep: Some(Keep {
            last: Some(1),
            ..Keep::default()
        }),
    }]);
    view.volumes[1].label = "manual-old".into();
    assert_eq!(deleted(&tick(&only_hourly, &view, now)), [2].into());
}

fn policy_with_rules(rules: Vec<Rule>) -> Policy {
    let policy = Policy {
        labels: LabelScheme::Sequential,
        rules,
    };
    if let Err(e) = policy.validate() {
        panic!("test policy refused: {e}");
    }
    policy
}

// ----- precedence: hold > newest > TTL > retention ------------------------------------------

#[test]
fn precedence_hold_then_newest_then_ttl_then_retention() {
    let policy = policy(r#"{"rules": [{"kind": "retain", "keep": {"last": 2}}]}"#);
    let now = MARCH_1_2024;
    let view = chain_view(&[
        now - 6 * DAY,
        now - 5 * DAY,
        now - 4 * DAY,
        now - 3 * DAY,
        now - 2 * DAY,
        now - DAY,
    ]);
    let mut assignments = VolumeAssignments::new();
    // 1: held, and with an expired TTL: the hold wins.
    assignments.set(
        VolumeId(1),
        Assignment {
            hold: true,
            ttl_ms: Some(HOUR),
        },
    );
    // 2: TTL not reached, but retention (last 2) would delete it: the TTL wins, kept.
    assignments.set_ttl_ms(VolumeId(2), Some(10 * DAY));
    // 5: kept by retention (one of the last 2) but its TTL has passed: the TTL wins, deleted.
    assignments.set_ttl_ms(VolumeId(5), Some(DAY));
    // 6: the newest, TTL passed: newest-snapshot protection wins.
    assignments.set_ttl_ms(VolumeId(6), Some(HOUR));
    // 3, 4: no assignment; retention's scope is {3, 4} (5 and 6 have TTLs), last 2 keeps both.
    let decisions = evaluate(&policy, &assignments, &view, now, Trigger::Tick);
    assert_eq!(deleted(&decisions), [5].into());
    assert!(decisions.iter().any(|d| matches!(
        d,
        Decision::Delete { volume: VolumeId(5), reason: Reason { origin: Origin::VolumeTtl { ttl_ms }, .. } } if *ttl_ms == DAY
    )));
    // Drop the hold: 1's TTL now applies.
    assignments.set_hold(VolumeId(1), false);
    let decisions = evaluate(&policy, &assignments, &view, now, Trigger::Tick);
    assert_eq!(deleted(&decisions), [1, 5].into());
}

// ----- merges -----------------------------------------------------------------------------------

#[test]
fn merge_older_than_merges_the_old_trunk_and_stops_at_a_hold() {
    let policy = policy(r#"{"rules": [{"kind": "merge_older_than", "older_than_ms": 86400000}]}"#);
    let now = MARCH_1_2024;
    let view = chain_view(&[now - 5 * DAY, now - 4 * DAY, now - 3 * DAY, now - HOUR]);
    let decisions = tick(&policy, &view, now);
    assert!(matches!(
        &decisions[..],
        [Decision::Merge {
            up_to: VolumeId(3),
            ..
        }]
    ));
    let mut assignments = VolumeAssignments::new();
    assignments.set_hold(VolumeId(2), true);
    let decisions = evaluate(&policy, &assignments, &view, now, Trigger::Tick);
    assert!(matches!(
        &decisions[..],
        [Decision::Merge {
            up_to: VolumeId(1),
            ..
        }]
    ));
    assignments.set_hold(VolumeId(1), true);
    assert!(evaluate(&policy, &assignments, &view, now, Trigger::Tick).is_empty());
}

#[test]
fn merge_stops_where_the_tree_branches_and_never_takes_the_newest() {
    let policy = policy(r#"{"rules": [{"kind": "merge_older_than", "older_than_ms": 1}]}"#);
    let now = MARCH_1_2024;
    // baseline <- 1 <- 2 <- {3, 4 <- head 5}: 2 has two children.
    let view = StoreView {
        volumes: vec![
            baseline(),
            snapshot(1, 0, now - 4 * DAY, ""),
            snapshot(2, 1, now - 3 * DAY, ""),
            snapshot(3, 2, now - 2 * DAY, ""),
            snapshot(4, 2, now - DAY, ""),
            head(5, 4, now - DAY),
        ],
        ..StoreView::default()
    };
    assert!(matches!(
        &tick(&policy, &view, now)[..],
        [Decision::Merge {
            up_to: VolumeId(2),
            ..
        }]
    ));
    // A chain of one old snapshot: it is the newest, so nothing merges.
    let view = chain_view(&[now - 10 * DAY]);
    assert!(tick(&policy, &view, now).is_empty());
}

#[test]
fn merged_volumes_are_not_also_deleted() {
    let policy = policy(
        r#"{"rules": [
            {"kind": "retain", "keep": {"last": 1}},
            {"kind": "merge_older_than", "older_than_ms": 172800000}
        ]}"#,
    );
    let now = MARCH_1_2024;
    let view = chain_view(&[now - 5 * DAY, now - 4 * DAY, now - DAY, now - HOUR]);
    let decisions = tick(&policy, &view, now);
    assert!(matches!(
        &decisions[0],
        Decision::Merge {
            up_to: VolumeId(2),
            ..
        }
    ));
    assert_eq!(deleted(&decisions), [3].into());
    assert_eq!(decisions.len(), 2);
}

// ----- status thresholds ----------------------------------------------------------------------

#[test]
fn status_thresholds_fire_exactly_when_crossed() {
    type Set = fn(&mut StoreView, u64);
    let cases: &[(Status, Set)] = &[
        (Status::LogBytes, |v, x| v.log_bytes = x),
        (Status::PartitionCount, |v, x| v.partition_count = x),
        (Status::WritesSinceSnapshot, |v, x| {
            v.writes_since_snapshot = x
        }),
        (Status::BytesSinceSnapshot, |v, x| {
            v.bytes_since_snapshot = x
        }),
        (Status::QuotaFreeBytes, |v, x| v.quota_free_bytes = Some(x)),
        (Status::ReclaimableBytes, |v, x| {
            v.volumes[1].reclaimable_bytes = x
        }),
    ];
    let now = MARCH_1_2024;
    for (status, set) in cases {
        for (above, threshold) in [(true, 1_000u64), (false, 1_000)] {
            let policy = policy_with_rules(vec![Rule::Threshold {
                name: None,
                status: *status,
                above: above.then_some(threshold as f64),
                below: (!above).then_some(threshold as f64),
                action: ActionKind::Snapshot,
                target: None,
                label: None,
                cooldown_ms: None,
            }]);
            let fires_at = |value: u64| {
                let mut view = chain_view(&[now - HOUR]);
                set(&mut view, value);
                let decisions = tick(&policy, &view, now);
                assert_eq!(
                    evaluate(
                        &policy,
                        &VolumeAssignments::new(),
                        &view,
                        now,
                        Trigger::AfterOperation
                    ),
                    decisions,
                    "AfterOperation evaluates thresholds as Tick does"
                );
                assert!(evaluate(
                    &policy,
                    &VolumeAssignments::new(),
                    &view,
                    now,
                    Trigger::Event("x".into())
                )
                .is_empty());
                !decisions.is_empty()
            };
            let what = format!("{status:?} above={above}");
            assert!(!fires_at(threshold), "{what}: fired at the threshold");
            assert_eq!(fires_at(threshold + 1), above, "{what} at threshold + 1");
            assert_eq!(fires_at(threshold - 1), !above, "{what} at threshold - 1");
        }
    }
}

#[test]
fn no_quota_never_fires_a_quota_rule() {
    let policy = policy(
        r#"{"rules": [{"kind": "threshold", "status": "quota_free_bytes", "below": 1000, "action": "snapshot"}]}"#,
    );
    let view = chain_view(&[MARCH_1_2024 - HOUR]);
    assert!(tick(&policy, &view, MARCH_1_2024).is_empty());
}

#[test]
fn reclaimable_ratio_compacts_the_partition_with_the_most_reclaimable_bytes() {
    let policy = policy(
        r#"{"rules": [{"name": "tidy", "kind": "threshold", "status": "reclaimable_ratio", "above": 0.5, "action": "compact"}]}"#,
    );
    let now = MARCH_1_2024;
    let mut view = chain_view(&[now - 3 * HOUR, now - 2 * HOUR, now - HOUR]);
    view.log_bytes = 1_000;
    view.volumes[1].reclaimable_bytes = 200;
    view.volumes[2].reclaimable_bytes = 300;
    // The head's reclaimable bytes count toward the ratio but the head is never compacted.
    view.volumes[4].reclaimable_bytes = 400;
    view.volumes[4].bytes = 400;
    // 900 / 1000 > 0.5, and volume 2 has the most among snapshots.
    let decisions = tick(&policy, &view, now);
    assert!(
        matches!(&decisions[..], [Decision::Compact { volume: VolumeId(2), reason }]
        if reason.text.starts_with("reclaimable_ratio 0.9000 > 0.5")
        && matches!(&reason.origin, Origin::Rule { index: 0, name: Some(n) } if n == "tidy"))
    );
    view.volumes[4].reclaimable_bytes = 0; // 500 / 1000: not above 0.5
    assert!(tick(&policy, &view, now).is_empty());
    view.volumes[3].reclaimable_bytes = 1; // 501 / 1000
    assert!(matches!(
        &tick(&policy, &view, now)[..],
        [Decision::Compact {
            volume: VolumeId(2),
            ..
        }]
    ));
}

#[test]
fn cooldown_quiets_a_threshold_rule_after_it_ran() {
    let policy = policy(
        r#"{"rules": [{"kind": "threshold", "status": "log_bytes", "above": 10, "action": "merge_oldest", "cooldown_ms": 60000}]}"#,
    );
    let now = MARCH_1_2024;
    let mut view = chain_view(&[now - 3 * HOUR, now - 2 * HOUR, now - HOUR]);
    assert!(matches!(
        &tick(&policy, &view, now)[..],
        [Decision::Merge {
            up_to: VolumeId(1),
            ..
        }]
    ));
    view.rule_last_run_ms.insert(0, now - 59_999);
    assert!(tick(&policy, &view, now).is_empty());
    view.rule_last_run_ms.insert(0, now - 60_000);
    assert_eq!(tick(&policy, &view, now).len(), 1);
}

// ----- temporal intervals -----------------------------------------------------------------

#[test]
fn interval_rules_fire_once_per_epoch_aligned_interval() {
    let policy = policy(
        r#"{"rules": [
            {"kind": "snapshot_every", "snapshot_every_ms": 3600000},
            {"kind": "copy_every", "target": "backup", "copy_every_ms": 86400000}
        ]}"#,
    );
    let now = MARCH_1_2024 + 10 * HOUR + 5 * MINUTE;
    let mut view = fresh_view(MARCH_1_2024);
    let first = tick(&policy, &view, now);
    assert!(matches!(
        &first[..],
        [Decision::Snapshot { .. }, Decision::Copy { .. }]
    ));
    // Ran at 10:05: nothing more until 11:00 for the snapshot, until tomorrow for the copy.
    view.rule_last_run_ms.insert(0, now);
    view.last_copy_ms.insert("backup".into(), now);
    assert!(tick(&policy, &view, MARCH_1_2024 + 10 * HOUR + 59 * MINUTE).is_empty());
    assert!(matches!(
        &tick(&policy, &view, MARCH_1_2024 + 11 * HOUR)[..],
        [Decision::Snapshot { .. }]
    ));
    assert_eq!(tick(&policy, &view, MARCH_1_2024 + DAY).len(), 2);
}

// ----- events -----------------------------------------------------------------------------------

#[test]
fn events_trigger_their_rules_and_only_theirs() {
    let policy = policy(
        r#"{"rules": [
            {"name": "deploy", "kind": "event", "event": "deploy", "action": "snapshot", "label": "{rule}-{event}-{n}"},
            {"kind": "event", "event": "upgrade", "pair": true, "action": "snapshot", "label": "{event}"},
            {"kind": "event", "event": "close", "action": "copy", "target": "backup"},
            {"kind": "event", "event": "quota_warning", "action": "compact"},
            {"kind": "event", "event": "open", "action": "merge_oldest"}
        ]}"#,
    );
    let now = MARCH_1_2024;
    let mut view = chain_view(&[now - 2 * HOUR, now - HOUR]);
    view.volumes[1].reclaimable_bytes = 10;
    let on = |name: &str| {
        evaluate(
            &policy,
            &VolumeAssignments::new(),
            &view,
            now,
            Trigger::Event(name.into()),
        )
    };
    assert!(
        matches!(&on("deploy")[..], [Decision::Snapshot { label, reason }]
        if label == "deploy-deploy-3" && reason.text == "event \"deploy\"")
    );
    assert!(on("deploy2").is_empty());
    assert!(on("upgrade").is_empty());
    assert!(
        matches!(&on("upgrade:pre")[..], [Decision::Snapshot { label, .. }] if label == "upgrade:pre")
    );
    assert!(
        matches!(&on("upgrade:post")[..], [Decision::Snapshot { label, .. }] if label == "upgrade:post")
    );
    assert!(on("upgrade:during").is_empty());
    assert!(matches!(&on("close")[..], [Decision::Copy { target, .. }] if target == "backup"));
    assert!(matches!(
        &on("quota_warning")[..],
        [Decision::Compact {
            volume: VolumeId(1),
            ..
        }]
    ));
    assert!(matches!(
        &on("open")[..],
        [Decision::Merge {
            up_to: VolumeId(1),
            ..
        }]
    ));
    // Ticks and operations do not fire event rules.
    assert!(tick(&policy, &view, now).is_empty());
    assert!(evaluate(
        &policy,
        &VolumeAssignments::new(),
        &view,
        now,
        Trigger::AfterOperation
    )
    .is_empty());
    let builtin = Trigger::builtin(strata_engine::policy::BuiltinEvent::Close);
    assert_eq!(builtin, Trigger::Event("close".into()));
}

// ----- labels -----------------------------------------------------------------------------------

fn render(template: &str, at_ms: u64) -> String {
    match LabelTemplate::parse(template) {
        Ok(t) => t.render(&LabelContext {
            at_ms,
            counter: 42,
            event: "deploy",
            rule: "hourly",
        }),
        Err(e) => panic!("{template}: {e}"),
    }
}

#[test]
fn label_templates_format_fixed_dates_including_leap_days() {
    // Instants written out independently (seconds since the epoch, from a calendar).
    let cases = [
        (0, "1970-01-01", "000000"),
        (68_191_628_000, "1972-02-29", "060708"),
        (951_782_400_000, "2000-02-29", "000000"),
        (1_704_067_199_000, "2023-12-31", "235959"),
        (1_704_067_200_000, "2024-01-01", "000000"),
        (1_709_210_096_000, "2024-02-29", "123456"),
        (1_709_251_199_999, "2024-02-29", "235959"),
        (1_709_251_200_000, "2024-03-01", "000000"),
        (4_107_542_399_000, "2100-02-28", "235959"),
        // 2100 is not a leap year: the next second is 1 March.
        (4_107_542_400_000, "2100-03-01", "000000"),
        (253_402_300_799_000, "9999-12-31", "235959"),
    ];
    for (at_ms, date, time) in cases {
        assert_eq!(render("{date}", at_ms), date, "{at_ms}");
        assert_eq!(render("{time}", at_ms), time, "{at_ms}");
    }
    assert_eq!(
        render("hourly-{date}-{n}", 1_709_210_096_000),
        "hourly-2024-02-29-42"
    );
    assert_eq!(
        render("{rule}/{event}/{date}T{time}Z/{{n}}", 951_782_400_000),
        "hourly/deploy/2000-02-29T000000Z/{n}"
    );
    assert_eq!(
        LabelTemplate::time_based().render(&LabelContext {
            at_ms: 1_709_210_096_000,
            counter: 0,
            event: "",
            rule: ""
        }),
        "2024-02-29T123456Z"
    );
    assert_eq!(
        UtcDateTime::from_unix_ms(1_709_210_096_000).to_string(),
        "2024-02-29 12:34:56Z"
    );
}

#[test]
fn every_day_of_four_centuries_follows_the_day_before() {
    // An independent calendar walk: day by day from 1970-01-01 for 400 years, checked against
    // the conversion for each day.
    let mut date = (1970u64, 1u32, 1u32);
    for days in 0..146_097u64 {
        assert_eq!(civil_from_days(days), date, "day {days}");
        let (y, m, d) = date;
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let month_days = match m {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        date = if d < month_days {
            (y, m, d + 1)
        } else if m < 12 {
            (y, m + 1, 1)
        } else {
            (y + 1, 1, 1)
        };
    }
}

#[test]
fn label_schemes_sequential_time_and_template() {
    let now = 1_709_210_096_000;
    let view = fresh_view(now - HOUR);
    let rule = r#"{"kind": "snapshot_every", "snapshot_every_ms": 3600000}"#;
    let label_of = |labels: &str| {
        let policy = policy(&format!(r#"{{"labels": {labels}, "rules": [{rule}]}}"#));
        match &tick(&policy, &view, now)[..] {
            [Decision::Snapshot { label, .. }] => label.clone(),
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(label_of(r#""sequential""#), "");
    assert_eq!(label_of(r#""time""#), "2024-02-29T123456Z");
    assert_eq!(
        label_of(r#"{"template": "auto-{date}-{n}-{rule}"}"#),
        "auto-2024-02-29-1-snapshot_every"
    );
    // A rule's own label overrides the scheme.
    let policy = policy(
        r#"{"labels": "time", "rules": [{"kind": "snapshot_every", "snapshot_every_ms": 1, "label": "x{n}"}]}"#,
    );
    assert!(
        matches!(&tick(&policy, &view, now)[..], [Decision::Snapshot { label, .. }] if label == "x1")
    );
}

#[test]
fn two_snapshots_in_one_evaluation_count_on() {
    let policy = policy(
        r#"{"labels": {"template": "{rule}-{n}"}, "rules": [
            {"name": "hourly", "kind": "snapshot_every", "snapshot_every_ms": 3600000},
            {"name": "daily", "kind": "snapshot_every", "snapshot_every_ms": 86400000}
        ]}"#,
    );
    let view = chain_view(&[MARCH_1_2024 - HOUR]); // head is volume 2
    let labels: Vec<String> = tick(&policy, &view, MARCH_1_2024)
        .into_iter()
        .filter_map(|d| match d {
            Decision::Snapshot { label, .. } => Some(label),
            _ => None,
        })
        .collect();
    assert_eq!(labels, ["hourly-2", "daily-3"]);
}

// ----- audit ------------------------------------------------------------------------------------

#[test]
fn audit_entries_serialise_to_json_and_back() {
    let entry = AuditEntry {
        at_ms: 5,
        decision: Decision::Delete {
            volume: VolumeId(9),
            reason: Reason {
                origin: Origin::Rule {
                    index: 1,
                    name: Some("thin".into()),
                },
                text: "kept by none".into(),
            },
        },
        outcome: Outcome::Applied {
            volume: Some(VolumeId(9)),
        },
        // Entries recorded before triggers were recorded have neither field.
        trigger: None,
        after: None,
    };
    let json = serde_json::to_string(&entry).unwrap_or_default();
    assert_eq!(
        json,
        r#"{"at_ms":5,"decision":{"decision":"delete","volume":9,"reason":{"origin":{"from":"rule","index":1,"name":"thin"},"text":"kept by none"}},"outcome":{"outcome":"applied","volume":9}}"#
    );
    let back: Result<AuditEntry, _> = serde_json::from_str(&json);
    assert_eq!(back.ok(), Some(entry));
}

// ----- properties -------------------------------------------------------------------------------

/// A random store: a tree of snapshots (each the child of an earlier one or of the baseline),
/// a head, random labels, sizes and times.
fn arb_view() -> impl Strategy<Value = StoreView> {
    let volume = (
        0..4usize,    // label
        0..100u32,    // parent choice (mostly the previous volume)
        1..(3 * DAY), // gap since the previous snapshot
        0..5_000u64,  // reclaimable bytes
    );
    (
        proptest::collection::vec(volume, 0..24),
        0..100u32,
        0..5_000u64,
    )
        .prop_map(|(specs, head_parent, writes)| {
            let labels = ["", "hourly-x", "daily-x", "deploy:pre"];
            let mut volumes = vec![baseline()];
            let mut t = MARCH_1_2024;
            for (i, (label, parent, gap, reclaimable)) in specs.iter().enumerate() {
                let id = i as u64 + 1;
                t += gap;
                let parent = if *parent < 80 {
                    id - 1
                } else {
                    u64::from(*parent) % id
                };
                let mut v = snapshot(id, parent, t, labels[*label]);
                v.reclaimable_bytes = *reclaimable;
                volumes.push(v);
            }
            let n = specs.len() as u64;
            let parent = if head_parent < 80 {
                n
            } else {
                u64::from(head_parent) % (n + 1)
            };
            volumes.push(head(n + 1, parent, t));
            StoreView {
                log_bytes: 1_000 * n,
                partition_count: n + 1,
                writes_since_snapshot: writes,
                volumes,
                ..StoreView::default()
            }
        })
}

fn arb_keep() -> impl Strategy<Value = Keep> {
    let count = proptest::option::of(1..6u32);
    (
        count.clone(),
        count.clone(),
        count.clone(),
        count.clone(),
        count.clone(),
        count,
    )
        .prop_map(|(last, hourly, daily, weekly, monthly, yearly)| {
            let keep = Keep {
                last,
                hourly,
                daily,
                weekly,
                monthly,
                yearly,
            };
            if keep == Keep::default() {
                Keep {
                    last: Some(1),
                    ..keep
                }
            } else {
                keep
            }
        })
}

fn arb_rule() -> impl Strategy<Value = Rule> {
    let prefix = proptest::option::of(prop_oneof![
        Just("hourly-".to_string()),
        Just("daily-".to_string())
    ]);
    prop_oneof![
        3 => (prefix, proptest::option::of(1..(10 * DAY)), proptest::option::of(arb_keep())).prop_map(
            |(label_prefix, max_age_ms, keep)| Rule::Retain {
                name: None,
                label_prefix,
                max_age_ms: if keep.is_none() { Some(max_age_ms.unwrap_or(DAY)) } else { max_age_ms },
                keep,
            }
        ),
        1 => (1..(20 * DAY)).prop_map(|older_than_ms| Rule::MergeOlderThan { name: None, older_than_ms }),
        1 => (0..5_000u64, prop_oneof![Just(ActionKind::Compact), Just(ActionKind::MergeOldest), Just(ActionKind::Snapshot)])
            .prop_map(|(threshold, action)| Rule::Threshold {
                name: None,
                status: Status::WritesSinceSnapshot,
                above: Some(threshold as f64),
                below: None,
                action,
                target: None,
                label: None,
                cooldown_ms: None,
            }),
        1 => (1..DAY).prop_map(|snapshot_every_ms| Rule::SnapshotEvery { name: None, snapshot_every_ms, label: None }),
    ]
}

fn arb_policy() -> impl Strategy<Value = Policy> {
    proptest::collection::vec(arb_rule(), 0..5).prop_map(|rules| Policy {
        labels: LabelScheme::Template("{rule}-{date}-{n}".into()),
        rules,
    })
}

fn arb_assignments(view: &StoreView) -> impl Strategy<Value = VolumeAssignments> {
    let ids: Vec<VolumeId> = view.volumes.iter().map(|v| v.id).collect();
    let entry = (any::<bool>(), proptest::option::of(1..(10 * DAY)));
    proptest::collection::vec(entry, ids.len()).prop_map(move |entries| {
        let mut assignments = VolumeAssignments::new();
        for (id, (hold, ttl_ms)) in ids.iter().zip(entries) {
            // About a third of volumes get something.
            if hold || ttl_ms.is_some_and(|t| t % 3 == 0) {
                assignments.set(
                    *id,
                    Assignment {
                        hold: hold && ttl_ms.is_some(),
                        ttl_ms: ttl_ms.filter(|t| t % 2 == 0),
                    },
                );
            }
        }
        assignments
    })
}

/// Checks every safety property of one evaluation's decisions against the view they were made
/// from.
fn check_safety(
    view: &StoreView,
    assignments: &VolumeAssignments,
    decisions: &[Decision],
) -> Result<(), TestCaseError> {
    let newest = view.newest_snapshot().map(|v| v.id);
    let head = view.head().map(|v| v.id);
    let mut gone = BTreeSet::new();
    for d in decisions {
        match d {
            Decision::Delete { volume, .. } => {
                prop_assert!(
                    !assignments.is_held(*volume),
                    "held volume {volume} deleted: {d}"
                );
                prop_assert!(
                    Some(*volume) != newest,
                    "newest snapshot {volume} deleted: {d}"
                );
                prop_assert!(Some(*volume) != head, "head {volume} deleted: {d}");
                prop_assert!(*volume != VolumeId::BASELINE, "baseline deleted");
                prop_assert!(
                    view.volume(*volume).is_some(),
                    "unknown volume {volume} deleted"
                );
                prop_assert!(gone.insert(*volume), "volume {volume} deleted twice");
            }
            Decision::Merge { up_to, .. } => {
                // Walk from up_to back to the baseline: every step a sealed snapshot, the only
                // child of its parent, neither held nor the newest.
                let mut at = *up_to;
                for _ in 0..=view.volumes.len() {
                    if at == VolumeId::BASELINE {
                        break;
                    }
                    let v = view.volume(at).ok_or_else(|| {
                        TestCaseError::fail(format!("merge through unknown {at}"))
                    })?;
                    prop_assert!(v.is_snapshot(), "merge takes non-snapshot {at}: {d}");
                    prop_assert!(!assignments.is_held(at), "merge takes held {at}: {d}");
                    prop_assert!(Some(at) != newest, "merge takes the newest {at}: {d}");
                    let parent = v.parent.unwrap_or(VolumeId::BASELINE);
                    let siblings = view
                        .volumes
                        .iter()
                        .filter(|s| s.parent == Some(parent))
                        .count();
                    prop_assert_eq!(siblings, 1, "merge takes {} which has siblings", at);
                    prop_assert!(
                        gone.insert(at),
                        "volume {at} merged twice or merged and deleted"
                    );
                    at = parent;
                }
                prop_assert_eq!(
                    at,
                    VolumeId::BASELINE,
                    "merge path does not reach the baseline"
                );
            }
            Decision::Compact { volume, .. } => {
                prop_assert!(
                    view.volume(*volume).is_some_and(|v| v.is_snapshot()),
                    "compact of non-snapshot {volume}"
                );
            }
            Decision::Snapshot { label, .. } => {
                prop_assert!(label.len() <= 255 && !label.chars().any(char::is_control));
            }
            Decision::Copy { .. } => {}
        }
    }
    for d in decisions {
        if let Decision::Compact { volume, .. } = d {
            prop_assert!(
                !gone.contains(volume),
                "compacting {volume}, which is going"
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn held_newest_head_and_baseline_are_never_deleted(
        (view, assignments) in arb_view().prop_flat_map(|v| { let a = arb_assignments(&v); (Just(v), a) }),
        policy in arb_policy(),
        later_ms in 0..(40 * DAY),
        trigger in prop_oneof![Just(Trigger::Tick), Just(Trigger::AfterOperation)],
    ) {
        prop_assert!(policy.validate().is_ok());
        let now = view.volumes.iter().filter_map(|v| v.sealed_ms).max().unwrap_or(0) + later_ms;
        let decisions = evaluate(&policy, &assignments, &view, now, trigger);
        check_safety(&view, &assignments, &decisions)?;
    }

    #[test]
    fn decisions_are_deterministic_whatever_the_volume_order(
        (view, shuffled, assignments) in arb_view().prop_flat_map(|v| {
            let shuffled = Just(v.volumes.clone()).prop_shuffle();
            let a = arb_assignments(&v);
            (Just(v), shuffled, a)
        }),
        policy in arb_policy(),
        later_ms in 0..(40 * DAY),
    ) {
        let now = MARCH_1_2024 + later_ms;
        let first = evaluate(&policy, &assignments, &view, now, Trigger::Tick);
        let again = evaluate(&policy, &assignments, &view, now, Trigger::Tick);
        prop_assert_eq!(&first, &again);
        let other_order = StoreView { volumes: shuffled, ..view.clone() };
        prop_assert_eq!(&first, &evaluate(&policy, &assignments, &other_order, now, Trigger::Tick));
    }

}

proptest! {
    // Each case simulates a week of hourly steps: fewer cases.
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn over_a_simulated_week_holds_survive_and_every_step_is_safe(
        policy in arb_policy(),
        held in proptest::collection::btree_set(1..6u64, 0..3),
    ) {
        // Five hourly snapshots to start with, some of them held.
        let times: Vec<u64> = (1..=5).map(|i| MARCH_1_2024 + i * HOUR).collect();
        let view = chain_view(&times);
        let mut assignments = VolumeAssignments::new();
        for id in &held {
            assignments.set_hold(VolumeId(*id), true);
        }
        let mut policy = policy;
        policy.rules.push(Rule::SnapshotEvery { name: Some("tick".into()), snapshot_every_ms: 2 * HOUR, label: None });
        let mut failure = None;
        let mut last_step = None;
        let simulation = simulate(&policy, &assignments, view, MARCH_1_2024 + 6 * HOUR, MARCH_1_2024 + 7 * DAY, HOUR,
            |decision, view, at_ms| {
                // Check each step's decisions against the view they were made from.
                if last_step != Some(at_ms) {
                    last_step = Some(at_ms);
                    let decisions = evaluate(&policy, &assignments, view, at_ms, Trigger::Tick);
                    if let Err(e) = check_safety(view, &assignments, &decisions) {
                        failure.get_or_insert(e);
                    }
                }
                apply_to_model(decision, view, at_ms);
            });
        let simulation = simulation.map_err(|e| TestCaseError::fail(e.to_string()))?;
        if let Some(e) = failure {
            return Err(e);
        }
        for id in &held {
            prop_assert!(simulation.view.volume(VolumeId(*id)).is_some(), "held volume {} is gone", id);
        }
        prop_assert_eq!(simulation.view.volumes.iter().filter(|v| v.is_head).count(), 1);
        prop_assert!(simulation.view.volume(VolumeId::BASELINE).is_some());
    }
}
