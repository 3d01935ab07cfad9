//! Validation, done when a policy is assigned: every error names the offending field by its path
//! in the policy document, e.g. `rules[2].keep.hourly: must be at least 1`.

use super::label::{LabelTemplate, LABEL_BYTES_MAX};
use super::rules::{ActionKind, BuiltinEvent, Keep, LabelScheme, Policy, Rule, Status};
use super::view::VolumeAssignments;

/// Longest rule name or event name, in bytes.
pub const NAME_BYTES_MAX: usize = 64;
/// Most rules in one policy.
pub const RULES_MAX: usize = 1024;
/// Longest policy document, in bytes of JSON (as given, and as the store keeps it). With
/// [`RULES_MAX`] and [`ASSIGNMENTS_MAX`] it keeps every journal record the executor writes well
/// inside the journal's record limit (`format::meta::META_PAYLOAD_MAX`).
pub const POLICY_BYTES_MAX: usize = 256 * 1024;
/// Most volumes with a hold or a time to live at once.
pub const ASSIGNMENTS_MAX: usize = 4096;

/// Why a policy (or a simulation request) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A field has a value the policy cannot use.
    #[error("{path}: {message}")]
    Invalid {
        /// Where, e.g. `rules[2].keep.hourly`.
        path: String,
        /// What is wrong, e.g. `must be at least 1`.
        message: String,
    },
    /// The text is not a policy document (syntax, a misspelt field, a wrong type).
    #[error("not a policy: {0}")]
    Parse(String),
    /// The policy document is longer than [`POLICY_BYTES_MAX`].
    #[error("the policy is {bytes} bytes of JSON; at most {bytes_max} bytes are allowed")]
    TooLarge {
        /// Its length.
        bytes: usize,
        /// The limit.
        bytes_max: usize,
    },
    /// A simulation was asked for with steps of zero length.
    #[error("step_ms must be at least 1")]
    ZeroStep,
    /// A simulation would take more steps than [`SIMULATION_STEPS_MAX`](super::SIMULATION_STEPS_MAX).
    #[error("the simulation would take {steps} steps; at most {steps_max} are allowed (use a larger step)")]
    TooManySteps {
        /// Steps asked for.
        steps: u64,
        /// The limit.
        steps_max: u64,
    },
}

impl PolicyError {
    /// The field path of an [`PolicyError::Invalid`] error.
    pub fn path(&self) -> Option<&str> {
        match self {
            PolicyError::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }
}

fn invalid(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Invalid {
        path: path.into(),
        message: message.into(),
    }
}

impl Policy {
    /// Reads a policy from JSON and validates it. The document must be a JSON object of at most
    /// [`POLICY_BYTES_MAX`] bytes.
    pub fn from_json(json: &str) -> Result<Policy, PolicyError> {
        if json.len() > POLICY_BYTES_MAX {
            return Err(PolicyError::TooLarge {
                bytes: json.len(),
                bytes_max: POLICY_BYTES_MAX,
            });
        }
        if json.bytes().find(|b| !b.is_ascii_whitespace()) != Some(b'{') {
            return Err(PolicyError::Parse(
                "a policy is a JSON object ({\"rules\": [...]})".into(),
            ));
        }
        let policy: Policy =
            serde_json::from_str(json).map_err(|e| PolicyError::Parse(e.to_string()))?;
        policy.validate()?;
        Ok(policy)
    }

    /// The policy as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // A policy is plain data with string keys: serialising it cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Checks every field; the first problem found (in document order) is returned.
    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.rules.len() > RULES_MAX {
            return Err(invalid(
                "rules",
                format!(
                    "{} rules; at most {RULES_MAX} are allowed",
                    self.rules.len()
                ),
            ));
        }
        // The store keeps the policy as compact JSON; it must stay within the document limit.
        let bytes = serde_json::to_string(self).map_or(usize::MAX, |j| j.len());
        if bytes > POLICY_BYTES_MAX {
            return Err(PolicyError::TooLarge {
                bytes,
                bytes_max: POLICY_BYTES_MAX,
            });
        }
        if let LabelScheme::Template(template) = &self.labels {
            LabelTemplate::parse(template).map_err(|m| invalid("labels.template", m))?;
        }
        // The names so far, with their rule (a short list: a linear search is enough).
        let mut names: Vec<(&str, usize)> = Vec::new();
        for (index, rule) in self.rules.iter().enumerate() {
            let at = format!("rules[{index}]");
            if let Some(name) = rule.name() {
                check_name(&format!("{at}.name"), name)?;
                let first = names.iter().find(|(n, _)| *n == name).map(|&(_, i)| i);
                names.push((name, index));
                if let Some(first) = first {
                    return Err(invalid(
                        format!("{at}.name"),
                        format!("{name:?} is already the name of rules[{first}]"),
                    ));
                }
            }
            validate_rule(&at, rule)?;
        }
        Ok(())
    }
}

impl VolumeAssignments {
    /// Checks every assignment: a TTL must be at least 1 ms. Paths read `volumes[7].ttl_ms`,
    /// naming the volume identifier.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let count = self.iter().count();
        if count > ASSIGNMENTS_MAX {
            return Err(invalid(
                "volumes",
                format!("{count} volumes with a hold or a time to live; at most {ASSIGNMENTS_MAX} are allowed"),
            ));
        }
        for (volume, assignment) in self.iter() {
            if volume == crate::VolumeId::BASELINE {
                return Err(invalid(
                    "volumes[0]",
                    "the baseline (volume 0) cannot be held or given a time to live",
                ));
            }
            if assignment.ttl_ms == Some(0) {
                return Err(invalid(
                    format!("volumes[{volume}].ttl_ms"),
                    "must be at least 1",
                ));
            }
        }
        Ok(())
    }
}

fn validate_rule(at: &str, rule: &Rule) -> Result<(), PolicyError> {
    match rule {
        Rule::SnapshotEvery {
            snapshot_every_ms,
            label,
            ..
        } => {
            at_least_one(&format!("{at}.snapshot_every_ms"), *snapshot_every_ms)?;
            check_template(&format!("{at}.label"), label.as_deref())
        }
        Rule::Retain {
            label_prefix,
            max_age_ms,
            keep,
            ..
        } => check_retain(at, label_prefix.as_deref(), *max_age_ms, keep.as_ref()),
        Rule::MergeOlderThan { older_than_ms, .. } => {
            at_least_one(&format!("{at}.older_than_ms"), *older_than_ms)
        }
        Rule::CopyEvery {
            target,
            copy_every_ms,
            ..
        } => {
            check_text(&format!("{at}.target"), target, LABEL_BYTES_MAX, false)?;
            at_least_one(&format!("{at}.copy_every_ms"), *copy_every_ms)
        }
        Rule::Threshold {
            status,
            above,
            below,
            action,
            target,
            label,
            ..
        } => {
            check_threshold(at, *status, *above, *below)?;
            check_action(at, *action, target.as_deref(), label.as_deref())
        }
        Rule::Event {
            event,
            pair,
            action,
            target,
            label,
            ..
        } => {
            check_event(at, event, *pair, *action)?;
            check_action(at, *action, target.as_deref(), label.as_deref())
        }
    }
}

fn check_retain(
    at: &str,
    label_prefix: Option<&str>,
    max_age_ms: Option<u64>,
    keep: Option<&Keep>,
) -> Result<(), PolicyError> {
    if let Some(prefix) = label_prefix {
        check_text(&format!("{at}.label_prefix"), prefix, LABEL_BYTES_MAX, true)?;
    }
    if let Some(max_age_ms) = max_age_ms {
        at_least_one(&format!("{at}.max_age_ms"), max_age_ms)?;
    }
    match keep {
        Some(keep) => check_keep(&format!("{at}.keep"), keep),
        None if max_age_ms.is_none() => {
            Err(invalid(at, "a retain rule needs max_age_ms, keep, or both"))
        }
        None => Ok(()),
    }
}

/// Exactly one bound, a number of at least 0 (at most 1 for a ratio).
fn check_threshold(
    at: &str,
    status: Status,
    above: Option<f64>,
    below: Option<f64>,
) -> Result<(), PolicyError> {
    let (field, threshold) = match (above, below) {
        (Some(above), None) => ("above", above),
        (None, Some(below)) => ("below", below),
        _ => {
            return Err(invalid(
                at,
                "a threshold rule needs exactly one of above or below",
            ))
        }
    };
    let path = format!("{at}.{field}");
    if !threshold.is_finite() || threshold < 0.0 {
        return Err(invalid(path, "must be a number of at least 0"));
    }
    if status == Status::ReclaimableRatio && threshold > 1.0 {
        return Err(invalid(
            path,
            "must be between 0 and 1 for reclaimable_ratio",
        ));
    }
    Ok(())
}

/// A valid event name; no pre/post pair on a built-in event; no compaction on a compaction
/// event (it would signal itself again, for ever).
fn check_event(at: &str, event: &str, pair: bool, action: ActionKind) -> Result<(), PolicyError> {
    check_name(&format!("{at}.event"), event)?;
    let builtin = BuiltinEvent::from_name(event);
    if pair && builtin.is_some() {
        return Err(invalid(
            format!("{at}.pair"),
            format!("built-in event {event:?} has no pre/post pair"),
        ));
    }
    if action == ActionKind::Compact
        && matches!(
            builtin,
            Some(BuiltinEvent::BeforeCompaction | BuiltinEvent::AfterCompaction)
        )
    {
        return Err(invalid(
            format!("{at}.action"),
            format!("compact on {event:?} would trigger itself without end"),
        ));
    }
    Ok(())
}

fn check_action(
    at: &str,
    action: ActionKind,
    target: Option<&str>,
    label: Option<&str>,
) -> Result<(), PolicyError> {
    match (action, target) {
        (ActionKind::Copy, None) => {
            return Err(invalid(
                format!("{at}.target"),
                "required when action is copy",
            ))
        }
        (ActionKind::Copy, Some(target)) => {
            check_text(&format!("{at}.target"), target, LABEL_BYTES_MAX, false)?
        }
        (_, Some(_)) => {
            return Err(invalid(
                format!("{at}.target"),
                format!("only for action copy, not {}", action.as_str()),
            ))
        }
        (_, None) => {}
    }
    if label.is_some() && action != ActionKind::Snapshot {
        return Err(invalid(
            format!("{at}.label"),
            format!("only for action snapshot, not {}", action.as_str()),
        ));
    }
    check_template(&format!("{at}.label"), label)
}

fn check_keep(at: &str, keep: &Keep) -> Result<(), PolicyError> {
    let counts = [
        ("last", keep.last),
        ("hourly", keep.hourly),
        ("daily", keep.daily),
        ("weekly", keep.weekly),
        ("monthly", keep.monthly),
        ("yearly", keep.yearly),
    ];
    for (field, count) in counts {
        if count == Some(0) {
            return Err(invalid(format!("{at}.{field}"), "must be at least 1"));
        }
    }
    if counts.iter().all(|(_, count)| count.is_none()) {
        return Err(invalid(
            at,
            "must set at least one of last, hourly, daily, weekly, monthly, yearly",
        ));
    }
    Ok(())
}

fn check_template(path: &str, template: Option<&str>) -> Result<(), PolicyError> {
    match template {
        Some(template) => LabelTemplate::parse(template)
            .map(|_| ())
            .map_err(|m| invalid(path, m)),
        None => Ok(()),
    }
}

fn check_name(path: &str, name: &str) -> Result<(), PolicyError> {
    check_text(path, name, NAME_BYTES_MAX, false)
}

fn check_text(
    path: &str,
    text: &str,
    bytes_max: usize,
    may_be_empty: bool,
) -> Result<(), PolicyError> {
    if text.is_empty() && !may_be_empty {
        return Err(invalid(path, "must not be empty"));
    }
    if text.len() > bytes_max {
        return Err(invalid(
            path,
            format!("is {} bytes long; at most {bytes_max} bytes", text.len()),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(path, "must not contain control characters"));
    }
    Ok(())
}

fn at_least_one(path: &str, value: u64) -> Result<(), PolicyError> {
    if value == 0 {
        return Err(invalid(path, "must be at least 1"));
    }
    Ok(())
}
