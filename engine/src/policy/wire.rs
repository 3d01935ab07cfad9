//! Deserialisation of the policy's internally tagged enums ([`Rule`], [`Decision`], [`Origin`],
//! [`Outcome`]) through flat "wire" structs.
//!
//! serde's derive for an internally tagged enum (`#[serde(tag = "kind")]`) buffers the whole
//! object into its private `Content` tree before it knows the variant, and instantiates every
//! variant's visitor a second time for that tree. In the WebAssembly build that machinery was
//! the largest single part of serde's code. Here each enum reads a plain struct instead: the tag
//! as a unit enum and every field of every variant as an `Option`, then picks the variant and
//! checks that the object held exactly that variant's fields. Every document the derive wrote
//! or read reads the same, and the errors keep their kinds (`unknown variant`, `unknown field`,
//! `missing field`), with small differences from the derive: `null` counts as absent for any
//! optional field (also one of another kind, and `pair`); a required field given as `null` is
//! "missing" rather than "invalid type"; an unknown field's message lists the kind's fields
//! ("expected one of `a`, `b`"), or every field when it belongs to no kind. Serialisation stays
//! derived (it never buffers).

use serde::{de::Error as _, Deserialize, Deserializer};

use super::decision::{Decision, Origin, Outcome, Reason};
use super::rules::{ActionKind, Keep, Rule, Status};
use crate::VolumeId;

/// Fails with serde's wording if `present` holds a field that is not in `allowed`.
fn only(present: &[(&'static str, bool)], allowed: &[&'static str]) -> Result<(), String> {
    match present
        .iter()
        .find(|(name, set)| *set && !allowed.contains(name))
    {
        None => Ok(()),
        Some((name, _)) => {
            let expected: Vec<String> = allowed.iter().map(|a| format!("`{a}`")).collect();
            Err(format!(
                "unknown field `{name}`, expected one of {}",
                expected.join(", ")
            ))
        }
    }
}

/// The value of a required field, or serde's `missing field` error.
fn required<T>(value: Option<T>, name: &str) -> Result<T, String> {
    value.ok_or_else(|| format!("missing field `{name}`"))
}

/// Deserialises `W` and converts it, reporting a conversion failure as a custom error (which
/// serde_json places at the object's end, like the derive's own errors).
fn via<'de, D, W, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    W: Deserialize<'de> + TryInto<T, Error = String>,
{
    W::deserialize(deserializer)?
        .try_into()
        .map_err(D::Error::custom)
}

// ----- Rule --------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum RuleKind {
    SnapshotEvery,
    Retain,
    MergeOlderThan,
    CopyEvery,
    Threshold,
    Event,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleWire {
    kind: RuleKind,
    name: Option<String>,
    snapshot_every_ms: Option<u64>,
    label: Option<String>,
    label_prefix: Option<String>,
    max_age_ms: Option<u64>,
    keep: Option<Keep>,
    older_than_ms: Option<u64>,
    target: Option<String>,
    copy_every_ms: Option<u64>,
    status: Option<Status>,
    above: Option<f64>,
    below: Option<f64>,
    action: Option<ActionKind>,
    cooldown_ms: Option<u64>,
    event: Option<String>,
    pair: Option<bool>,
}

impl TryFrom<RuleWire> for Rule {
    type Error = String;

    fn try_from(w: RuleWire) -> Result<Self, String> {
        let present = [
            ("name", w.name.is_some()),
            ("snapshot_every_ms", w.snapshot_every_ms.is_some()),
            ("label", w.label.is_some()),
            ("label_prefix", w.label_prefix.is_some()),
            ("max_age_ms", w.max_age_ms.is_some()),
            ("keep", w.keep.is_some()),
            ("older_than_ms", w.older_than_ms.is_some()),
            ("target", w.target.is_some()),
            ("copy_every_ms", w.copy_every_ms.is_some()),
            ("status", w.status.is_some()),
            ("above", w.above.is_some()),
            ("below", w.below.is_some()),
            ("action", w.action.is_some()),
            ("cooldown_ms", w.cooldown_ms.is_some()),
            ("event", w.event.is_some()),
            ("pair", w.pair.is_some()),
        ];
        Ok(match w.kind {
            RuleKind::SnapshotEvery => {
                only(&present, &["name", "snapshot_every_ms", "label"])?;
                Rule::SnapshotEvery {
                    name: w.name,
                    snapshot_every_ms: required(w.snapshot_every_ms, "snapshot_every_ms")?,
                    label: w.label,
                }
            }
            RuleKind::Retain => {
                only(&present, &["name", "label_prefix", "max_age_ms", "keep"])?;
                Rule::Retain {
                    name: w.name,
                    label_prefix: w.label_prefix,
                    max_age_ms: w.max_age_ms,
                    keep: w.keep,
                }
            }
            RuleKind::MergeOlderThan => {
                only(&present, &["name", "older_than_ms"])?;
                Rule::MergeOlderThan {
                    name: w.name,
                    older_than_ms: required(w.older_than_ms, "older_than_ms")?,
                }
            }
            RuleKind::CopyEvery => {
                only(&present, &["name", "target", "copy_every_ms"])?;
                Rule::CopyEvery {
                    name: w.name,
                    target: required(w.target, "target")?,
                    copy_every_ms: required(w.copy_every_ms, "copy_every_ms")?,
                }
            }
            RuleKind::Threshold => {
                only(
                    &present,
                    &[
                        "name",
                        "status",
                        "above",
                        "below",
                        "action",
                        "target",
                        "label",
                        "cooldown_ms",
                    ],
                )?;
                Rule::Threshold {
                    name: w.name,
                    status: required(w.status, "status")?,
                    above: w.above,
                    below: w.below,
                    action: required(w.action, "action")?,
                    target: w.target,
                    label: w.label,
                    cooldown_ms: w.cooldown_ms,
                }
            }
            RuleKind::Event => {
                only(
                    &present,
                    &["name", "event", "pair", "action", "target", "label"],
                )?;
                Rule::Event {
                    name: w.name,
                    event: required(w.event, "event")?,
                    pair: w.pair.unwrap_or(false),
                    action: required(w.action, "action")?,
                    target: w.target,
                    label: w.label,
                }
            }
        })
    }
}

impl<'de> Deserialize<'de> for Rule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        via::<D, RuleWire, Rule>(deserializer)
    }
}

// ----- Decision ----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum DecisionKind {
    Snapshot,
    Copy,
    Merge,
    Delete,
    Compact,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionWire {
    decision: DecisionKind,
    label: Option<String>,
    target: Option<String>,
    up_to: Option<VolumeId>,
    volume: Option<VolumeId>,
    reason: Option<Reason>,
}

impl TryFrom<DecisionWire> for Decision {
    type Error = String;

    fn try_from(w: DecisionWire) -> Result<Self, String> {
        let present = [
            ("label", w.label.is_some()),
            ("target", w.target.is_some()),
            ("up_to", w.up_to.is_some()),
            ("volume", w.volume.is_some()),
            ("reason", w.reason.is_some()),
        ];
        // Unknown fields first, then missing ones, as for the other enums.
        only(
            &present,
            match w.decision {
                DecisionKind::Snapshot => &["label", "reason"],
                DecisionKind::Copy => &["target", "reason"],
                DecisionKind::Merge => &["up_to", "reason"],
                DecisionKind::Delete | DecisionKind::Compact => &["volume", "reason"],
            },
        )?;
        let reason = required(w.reason, "reason")?;
        Ok(match w.decision {
            DecisionKind::Snapshot => Decision::Snapshot {
                label: required(w.label, "label")?,
                reason,
            },
            DecisionKind::Copy => Decision::Copy {
                target: required(w.target, "target")?,
                reason,
            },
            DecisionKind::Merge => Decision::Merge {
                up_to: required(w.up_to, "up_to")?,
                reason,
            },
            DecisionKind::Delete => Decision::Delete {
                volume: required(w.volume, "volume")?,
                reason,
            },
            DecisionKind::Compact => Decision::Compact {
                volume: required(w.volume, "volume")?,
                reason,
            },
        })
    }
}

impl<'de> Deserialize<'de> for Decision {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        via::<D, DecisionWire, Decision>(deserializer)
    }
}

// ----- Origin ------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OriginKind {
    Rule,
    VolumeTtl,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OriginWire {
    from: OriginKind,
    index: Option<usize>,
    name: Option<String>,
    ttl_ms: Option<u64>,
}

impl TryFrom<OriginWire> for Origin {
    type Error = String;

    fn try_from(w: OriginWire) -> Result<Self, String> {
        let present = [
            ("index", w.index.is_some()),
            ("name", w.name.is_some()),
            ("ttl_ms", w.ttl_ms.is_some()),
        ];
        Ok(match w.from {
            OriginKind::Rule => {
                only(&present, &["index", "name"])?;
                Origin::Rule {
                    index: required(w.index, "index")?,
                    name: w.name,
                }
            }
            OriginKind::VolumeTtl => {
                only(&present, &["ttl_ms"])?;
                Origin::VolumeTtl {
                    ttl_ms: required(w.ttl_ms, "ttl_ms")?,
                }
            }
        })
    }
}

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        via::<D, OriginWire, Origin>(deserializer)
    }
}

// ----- Outcome -----------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
enum OutcomeKind {
    Applied,
    Skipped,
    Failed,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeWire {
    outcome: OutcomeKind,
    volume: Option<VolumeId>,
    why: Option<String>,
    error: Option<String>,
}

impl TryFrom<OutcomeWire> for Outcome {
    type Error = String;

    fn try_from(w: OutcomeWire) -> Result<Self, String> {
        let present = [
            ("volume", w.volume.is_some()),
            ("why", w.why.is_some()),
            ("error", w.error.is_some()),
        ];
        Ok(match w.outcome {
            OutcomeKind::Applied => {
                only(&present, &["volume"])?;
                Outcome::Applied { volume: w.volume }
            }
            OutcomeKind::Skipped => {
                only(&present, &["why"])?;
                Outcome::Skipped {
                    why: required(w.why, "why")?,
                }
            }
            OutcomeKind::Failed => {
                only(&present, &["error"])?;
                Outcome::Failed {
                    error: required(w.error, "error")?,
                }
            }
        })
    }
}

impl<'de> Deserialize<'de> for Outcome {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        via::<D, OutcomeWire, Outcome>(deserializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{AuditEntry, Policy};

    fn rule(json: &str) -> Result<Rule, String> {
        serde_json::from_str(json).map_err(|e| e.to_string())
    }

    #[test]
    fn every_rule_round_trips_through_json() {
        let policy = Policy {
            rules: vec![
                Rule::SnapshotEvery {
                    name: Some("s".into()),
                    snapshot_every_ms: 5,
                    label: Some("x-{n}".into()),
                },
                Rule::Retain {
                    name: None,
                    label_prefix: Some("x-".into()),
                    max_age_ms: Some(9),
                    keep: Some(Keep {
                        last: Some(2),
                        ..Keep::default()
                    }),
                },
                Rule::MergeOlderThan {
                    name: None,
                    older_than_ms: 7,
                },
                Rule::CopyEvery {
                    name: None,
                    target: "t".into(),
                    copy_every_ms: 3,
                },
                Rule::Threshold {
                    name: None,
                    status: Status::ReclaimableRatio,
                    above: Some(0.25),
                    below: None,
                    action: ActionKind::Compact,
                    target: None,
                    label: None,
                    cooldown_ms: Some(1),
                },
                Rule::Event {
                    name: None,
                    event: "deploy".into(),
                    pair: true,
                    action: ActionKind::Copy,
                    target: Some("t".into()),
                    label: None,
                },
            ],
            ..Policy::default()
        };
        let json = serde_json::to_string(&policy).unwrap_or_default();
        let back: Policy = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, policy, "{json}");
    }

    #[test]
    fn a_field_of_another_kind_is_unknown_and_a_required_one_missing() {
        let error = rule(r#"{"kind": "merge_older_than", "older_than_ms": 1, "label": "x"}"#)
            .err()
            .unwrap_or_default();
        assert!(
            error.starts_with("unknown field `label`, expected one of `name`, `older_than_ms`"),
            "{error}"
        );
        let error = rule(r#"{"kind": "copy_every", "target": "t"}"#)
            .err()
            .unwrap_or_default();
        assert!(
            error.starts_with("missing field `copy_every_ms`"),
            "{error}"
        );
        let error = rule(r#"{"snapshot_every_ms": 1}"#)
            .err()
            .unwrap_or_default();
        assert!(error.starts_with("missing field `kind`"), "{error}");
        let error = rule(r#"{"kind": "event", "event": "e", "action": "jump"}"#)
            .err()
            .unwrap_or_default();
        assert!(error.starts_with("unknown variant `jump`"), "{error}");
    }

    #[test]
    fn audit_entries_round_trip_and_refuse_mixed_variants() {
        let entries = vec![
            AuditEntry {
                at_ms: 1,
                decision: Decision::Merge {
                    up_to: VolumeId(4),
                    reason: Reason {
                        origin: Origin::VolumeTtl { ttl_ms: 8 },
                        text: "t".into(),
                    },
                },
                outcome: Outcome::Skipped { why: "w".into() },
                trigger: None,
                after: None,
            },
            AuditEntry {
                at_ms: 2,
                decision: Decision::Snapshot {
                    label: String::new(),
                    reason: Reason {
                        origin: Origin::Rule {
                            index: 3,
                            name: Some("n".into()),
                        },
                        text: "u".into(),
                    },
                },
                outcome: Outcome::Applied {
                    volume: Some(VolumeId(9)),
                },
                trigger: None,
                after: None,
            },
        ];
        let json = serde_json::to_string(&entries).unwrap_or_default();
        let back: Vec<AuditEntry> = serde_json::from_str(&json).unwrap_or_default();
        assert_eq!(back, entries, "{json}");

        let mixed = r#"{"outcome": "failed", "error": "e", "why": "w"}"#;
        let error = serde_json::from_str::<Outcome>(mixed)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("unknown field `why`"), "{error}");
        let mixed = r#"{"decision": "delete", "volume": 3, "up_to": 2, "reason": {"origin": {"from": "volume_ttl", "ttl_ms": 1}, "text": ""}}"#;
        let error = serde_json::from_str::<Decision>(mixed)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.starts_with("unknown field `up_to`"), "{error}");
    }
}
