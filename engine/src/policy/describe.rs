//! Policies in words, for people: a rule, a naming scheme, a retention's counts.

use super::evaluate::threshold_text;
use super::label::format_duration_ms;
use super::rules::{Keep, LabelScheme, Rule, PAIR_POST_SUFFIX, PAIR_PRE_SUFFIX};

impl LabelScheme {
    /// How snapshots are named, in words.
    pub fn describe(&self) -> String {
        match self {
            LabelScheme::Sequential => "none (volumes are known by number)".to_string(),
            LabelScheme::Time => "the UTC time, e.g. 2024-02-29T133005Z".to_string(),
            LabelScheme::Template(t) => format!("template {t:?}"),
        }
    }
}

impl Keep {
    /// The counts kept per period, in order (last, hourly, daily, weekly, monthly, yearly),
    /// those set only.
    pub fn counts(&self) -> impl Iterator<Item = (&'static str, u32)> {
        [
            ("last", self.last),
            ("hourly", self.hourly),
            ("daily", self.daily),
            ("weekly", self.weekly),
            ("monthly", self.monthly),
            ("yearly", self.yearly),
        ]
        .into_iter()
        .filter_map(|(what, n)| n.map(|n| (what, n)))
    }

    /// `24 hourly, 7 daily`.
    pub fn describe(&self) -> String {
        self.counts()
            .map(|(what, n)| format!("{n} {what}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// `, labelled "…"`, or nothing.
fn labelled(label: &Option<String>) -> String {
    label
        .as_ref()
        .map_or(String::new(), |l| format!(", labelled {l:?}"))
}

/// One rule in words: `snapshot every 1h, labelled "hourly-{date}"`.
impl Rule {
    /// The rule in words: `snapshot every 1h, labelled "hourly-{date}"` (what `strata policy
    /// show` lists).
    pub fn describe(&self) -> String {
        match self {
            Rule::SnapshotEvery {
                snapshot_every_ms,
                label,
                ..
            } => format!(
                "snapshot every {}{}",
                format_duration_ms(*snapshot_every_ms),
                labelled(label)
            ),
            Rule::Retain {
                label_prefix,
                max_age_ms,
                keep,
                ..
            } => {
                let scope = match label_prefix {
                    Some(p) => format!("snapshots labelled {p:?}..."),
                    None => "all snapshots".to_string(),
                };
                let mut kept = Vec::new();
                if let Some(age) = max_age_ms {
                    kept.push(format!("younger than {}", format_duration_ms(*age)));
                }
                if let Some(keep) = keep {
                    kept.push(keep.describe());
                }
                format!("retain {scope}: keep {}", kept.join("; "))
            }
            Rule::MergeOlderThan { older_than_ms, .. } => format!(
                "merge snapshots older than {} into the baseline",
                format_duration_ms(*older_than_ms)
            ),
            Rule::CopyEvery {
                target,
                copy_every_ms,
                ..
            } => format!(
                "copy to {target:?} every {}",
                format_duration_ms(*copy_every_ms)
            ),
            Rule::Threshold {
                status,
                above,
                below,
                action,
                target,
                label,
                cooldown_ms,
                ..
            } => {
                let when = match (above, below) {
                    (Some(a), _) => format!("{} > {}", status.as_str(), threshold_text(*a)),
                    (None, Some(b)) => format!("{} < {}", status.as_str(), threshold_text(*b)),
                    (None, None) => status.as_str().to_string(),
                };
                let to = target
                    .as_ref()
                    .map_or(String::new(), |t| format!(" to {t:?}"));
                let cooldown = cooldown_ms.map_or(String::new(), |c| {
                    format!(", at most every {}", format_duration_ms(c))
                });
                format!(
                    "{}{to} while {when}{cooldown}{}",
                    action.as_str(),
                    labelled(label)
                )
            }
            Rule::Event {
                event,
                pair,
                action,
                target,
                label,
                ..
            } => {
                let on = if *pair {
                    format!(
                        "{:?} and {:?}",
                        format!("{event}{PAIR_PRE_SUFFIX}"),
                        format!("{event}{PAIR_POST_SUFFIX}")
                    )
                } else {
                    format!("{event:?}")
                };
                let to = target
                    .as_ref()
                    .map_or(String::new(), |t| format!(" to {t:?}"));
                format!("{}{to} on event {on}{}", action.as_str(), labelled(label))
            }
        }
    }
}
