//! Retention: which snapshots one `retain` rule keeps. Pure set arithmetic over snapshot times.

use crate::order::IdSet;

use super::label::civil_from_days;
use super::rules::Keep;
use super::view::VolumeView;
use crate::VolumeId;

const MS_PER_HOUR: u64 = 3_600_000;
const MS_PER_DAY: u64 = 86_400_000;

/// A kind of time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bucket {
    Hour,
    Day,
    /// ISO week, Monday to Sunday.
    Week,
    Month,
    Year,
}

impl Bucket {
    /// The bucket `at_ms` falls in, as a number that grows with time.
    pub(crate) fn key(self, at_ms: u64) -> u64 {
        let days = at_ms / MS_PER_DAY;
        match self {
            Bucket::Hour => at_ms / MS_PER_HOUR,
            Bucket::Day => days,
            // 1970-01-01 was a Thursday: shifting by 3 days puts Mondays on multiples of 7.
            Bucket::Week => (days + 3) / 7,
            Bucket::Month => {
                let (year, month, _) = civil_from_days(days);
                year * 12 + u64::from(month - 1)
            }
            Bucket::Year => civil_from_days(days).0,
        }
    }
}

/// The snapshots among `candidates` that a rule with `max_age_ms` and `keep` keeps at `now_ms`.
///
/// `candidates` are the snapshots in the rule's scope. "Newest" orders by
/// [`VolumeView::snapshot_ms`], ties broken by the greater identifier, so the result does not
/// depend on the order of `candidates`.
pub(crate) fn kept(
    candidates: &[&VolumeView],
    max_age_ms: Option<u64>,
    keep: Option<&Keep>,
    now_ms: u64,
) -> IdSet {
    let mut kept = Vec::new();
    if let Some(max_age_ms) = max_age_ms {
        kept.extend(
            candidates
                .iter()
                .filter(|v| now_ms.saturating_sub(v.snapshot_ms()) < max_age_ms)
                .map(|v| v.id),
        );
    }
    let Some(keep) = keep else {
        return IdSet::from_ids(kept);
    };
    // Newest first: descending (time, identifier).
    let newest_first: Vec<&VolumeView> = crate::order::order_by(candidates.len(), |i| {
        let v = candidates[i];
        (u64::MAX - v.snapshot_ms(), u64::MAX - v.id.0)
    })
    .into_iter()
    .map(|i| candidates[i])
    .collect();
    if let Some(last) = keep.last {
        kept.extend(newest_first.iter().take(last as usize).map(|v| v.id));
    }
    let buckets = [
        (Bucket::Hour, keep.hourly),
        (Bucket::Day, keep.daily),
        (Bucket::Week, keep.weekly),
        (Bucket::Month, keep.monthly),
        (Bucket::Year, keep.yearly),
    ];
    for (bucket, count) in buckets {
        let Some(count) = count else { continue };
        // Walking newest first, bucket keys never grow (a bucket is a span of time), and the
        // first snapshot seen in a bucket is that bucket's newest.
        let mut newest_in_bucket: Vec<(u64, VolumeId)> = Vec::new();
        for v in &newest_first {
            let key = bucket.key(v.snapshot_ms());
            if newest_in_bucket.last().is_none_or(|&(last, _)| last != key) {
                newest_in_bucket.push((key, v.id));
            }
        }
        kept.extend(
            newest_in_bucket
                .iter()
                .take(count as usize)
                .map(|&(_, id)| id),
        );
    }
    IdSet::from_ids(kept)
}

/// A rule's retention criteria in words: `max_age 7d; keep hourly 24, daily 7`.
pub(crate) fn describe(max_age_ms: Option<u64>, keep: Option<&Keep>) -> String {
    let mut parts = Vec::new();
    if let Some(max_age_ms) = max_age_ms {
        parts.push(format!(
            "max_age {}",
            super::label::format_duration_ms(max_age_ms)
        ));
    }
    if let Some(keep) = keep {
        let counts: Vec<String> = keep
            .counts()
            .map(|(name, count)| format!("{name} {count}"))
            .collect();
        parts.push(format!("keep {}", counts.join(", ")));
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weeks_start_on_monday() {
        // 2024-03-03 is a Sunday, 2024-03-04 a Monday.
        let sunday = 1_709_424_000_000;
        let monday = sunday + MS_PER_DAY;
        assert_eq!(
            Bucket::Week.key(sunday),
            Bucket::Week.key(sunday - 6 * MS_PER_DAY)
        );
        assert_eq!(Bucket::Week.key(monday), Bucket::Week.key(sunday) + 1);
    }
}
