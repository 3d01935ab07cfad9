//! Labels for newly formed snapshot volumes: templates such as `hourly-{date}-{n}`, and the UTC
//! calendar arithmetic they need (no date crate: the engine builds for `wasm32-unknown-unknown`
//! with no web dependencies, and a civil-from-days conversion is a dozen lines).
//!
//! Placeholders:
//!
//! | placeholder | expands to |
//! |---|---|
//! | `{date}` | the UTC date of the snapshot, `YYYY-MM-DD` |
//! | `{time}` | the UTC time of the snapshot, `HHMMSS` |
//! | `{n}` | a counter: the volume identifier the snapshot will carry (identifiers are sequential and never reused) |
//! | `{event}` | the event that caused the snapshot (`deploy`, `upgrade:pre`, `close`), empty otherwise |
//! | `{rule}` | the name of the rule that took it, or its kind (`snapshot_every`) if it has no name; `user` for a snapshot a person or program took without a label |
//!
//! The scheme names every snapshot taken without a label, the policy's own and a user's
//! ([`LabelScheme::render`]). A rendered label another volume already carries gets the first free
//! suffix `-2`, `-3`, ... ([`unique_label`]), so a scheme never names two volumes alike (a label
//! given explicitly is kept as given).
//!
//! `{{` and `}}` stand for literal braces. A rendered label is cut to [`LABEL_BYTES_MAX`] bytes
//! (at a character boundary) and control characters are replaced with `_`, so whatever a template
//! renders is a label the store accepts.

use std::fmt::Write as _;

use super::rules::LabelScheme;

pub use crate::format::meta::LABEL_BYTES_MAX;

const MS_PER_DAY: u64 = 86_400_000;

/// A moment in UTC, broken down into calendar fields (proleptic Gregorian calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDateTime {
    /// Year, e.g. `2024`.
    pub year: u64,
    /// Month, `1..=12`.
    pub month: u32,
    /// Day of the month, `1..=31`.
    pub day: u32,
    /// Hour, `0..=23`.
    pub hour: u32,
    /// Minute, `0..=59`.
    pub minute: u32,
    /// Second, `0..=59`.
    pub second: u32,
}

impl UtcDateTime {
    /// Breaks `unix_ms` (milliseconds since 1970-01-01T00:00:00Z) into UTC calendar fields.
    pub fn from_unix_ms(unix_ms: u64) -> Self {
        let t = strata_units::DateTime::from_unix_ms(unix_ms);
        UtcDateTime {
            year: t.year,
            month: t.month,
            day: t.day,
            hour: t.hour,
            minute: t.minute,
            second: t.second,
        }
    }

    /// `YYYY-MM-DD`.
    pub fn date_string(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    /// `HHMMSS`.
    pub fn time_string(&self) -> String {
        format!("{:02}{:02}{:02}", self.hour, self.minute, self.second)
    }
}

impl std::fmt::Display for UtcDateTime {
    /// `YYYY-MM-DD HH:MM:SSZ`, for reasons and logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Days since 1970-01-01 to a `(year, month, day)` civil date (the one calendar Strata has).
pub use strata_units::civil_from_days;

/// A parsed label template. Parse once with [`LabelTemplate::parse`], render many times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Date,
    Time,
    Counter,
    Event,
    Rule,
}

/// What a template is rendered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelContext<'a> {
    /// When the snapshot is taken (ms since the Unix epoch).
    pub at_ms: u64,
    /// The value of `{n}`.
    pub counter: u64,
    /// The value of `{event}` (empty if no event caused the snapshot).
    pub event: &'a str,
    /// The value of `{rule}`.
    pub rule: &'a str,
}

/// The placeholders a template may use, as written.
pub const PLACEHOLDERS: [&str; 5] = ["{date}", "{time}", "{n}", "{event}", "{rule}"];

impl LabelTemplate {
    /// The template for time-based labels: `{date}T{time}Z`, e.g. `2024-02-29T133005Z`.
    pub fn time_based() -> Self {
        LabelTemplate {
            parts: vec![
                Part::Date,
                Part::Literal("T".into()),
                Part::Time,
                Part::Literal("Z".into()),
            ],
        }
    }

    /// Parses `template`. The error is a sentence for a person, without the field path (the
    /// policy validator adds that).
    pub fn parse(template: &str) -> Result<Self, String> {
        if template.is_empty() {
            return Err("must not be empty (use the \"sequential\" scheme for no label)".into());
        }
        if template.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = template.chars().peekable();
        // Bounded: every iteration consumes at least one character.
        while let Some(c) = chars.next() {
            match c {
                '{' if chars.peek() == Some(&'{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek() == Some(&'}') => {
                    chars.next();
                    literal.push('}');
                }
                '}' => {
                    return Err("has a '}' with no '{' before it (write '}}' for a brace)".into())
                }
                '{' => {
                    let mut name = String::new();
                    let mut closed = false;
                    for c in chars.by_ref() {
                        if c == '}' {
                            closed = true;
                            break;
                        }
                        name.push(c);
                    }
                    if !closed {
                        return Err(format!(
                            "has an unclosed '{{{name}' (write '{{{{' for a brace)"
                        ));
                    }
                    let part = match name.as_str() {
                        "date" => Part::Date,
                        "time" => Part::Time,
                        "n" => Part::Counter,
                        "event" => Part::Event,
                        "rule" => Part::Rule,
                        _ => {
                            return Err(format!(
                                "unknown placeholder {{{name}}}; expected one of {}",
                                PLACEHOLDERS.join(", ")
                            ))
                        }
                    };
                    if !literal.is_empty() {
                        parts.push(Part::Literal(std::mem::take(&mut literal)));
                    }
                    parts.push(part);
                }
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        let literal_bytes: usize = parts
            .iter()
            .map(|p| match p {
                Part::Literal(s) => s.len(),
                _ => 0,
            })
            .sum();
        if literal_bytes > LABEL_BYTES_MAX {
            return Err(format!(
                "is {literal_bytes} bytes long without its placeholders; labels hold at most {LABEL_BYTES_MAX} bytes"
            ));
        }
        Ok(LabelTemplate { parts })
    }

    /// Renders the template: at most [`LABEL_BYTES_MAX`] bytes, no control characters.
    pub fn render(&self, context: &LabelContext<'_>) -> String {
        let at = UtcDateTime::from_unix_ms(context.at_ms);
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Date => out.push_str(&at.date_string()),
                Part::Time => out.push_str(&at.time_string()),
                Part::Counter => {
                    // Writing to a String cannot fail.
                    let _ = write!(out, "{}", context.counter);
                }
                Part::Event => out.push_str(context.event),
                Part::Rule => out.push_str(context.rule),
            }
        }
        sanitize_label(out)
    }
}

impl LabelScheme {
    /// The label this scheme gives a snapshot taken at `at_ms` that will carry identifier
    /// `counter`, taken by `rule` because of `event` (empty for none); empty for the sequential
    /// scheme or a template that does not parse (the validator refuses those).
    pub fn render(&self, at_ms: u64, counter: u64, rule: &str, event: &str) -> String {
        let template = match self {
            LabelScheme::Sequential => return String::new(),
            LabelScheme::Time => LabelTemplate::time_based(),
            LabelScheme::Template(t) => match LabelTemplate::parse(t) {
                Ok(t) => t,
                Err(_) => return String::new(),
            },
        };
        template.render(&LabelContext {
            at_ms,
            counter,
            event,
            rule,
        })
    }
}

/// How many suffixes [`unique_label`] tries before it gives the label up (returns it empty).
pub const UNIQUE_SUFFIXES_MAX: u32 = 10_000;

/// `label` if no volume carries it (`taken` says), else `label-2`, `label-3`, ... the first free
/// one, cut so that the suffix fits in [`LABEL_BYTES_MAX`] bytes. Empty stays empty; if
/// [`UNIQUE_SUFFIXES_MAX`] suffixes are all taken, the result is empty (no label).
pub fn unique_label(label: String, taken: impl Fn(&str) -> bool) -> String {
    if label.is_empty() || !taken(&label) {
        return label;
    }
    for n in 2..=UNIQUE_SUFFIXES_MAX {
        let suffix = format!("-{n}");
        let mut end = label.len().min(LABEL_BYTES_MAX - suffix.len());
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        let candidate = format!("{}{suffix}", &label[..end]);
        if !taken(&candidate) {
            return candidate;
        }
    }
    String::new()
}

/// Replaces control characters with `_` and cuts `label` to [`LABEL_BYTES_MAX`] bytes at a
/// character boundary.
pub fn sanitize_label(label: String) -> String {
    let mut label = if label.chars().any(char::is_control) {
        label
            .chars()
            .map(|c| if c.is_control() { '_' } else { c })
            .collect()
    } else {
        label
    };
    if label.len() > LABEL_BYTES_MAX {
        let mut end = LABEL_BYTES_MAX;
        while !label.is_char_boundary(end) {
            end -= 1;
        }
        label.truncate(end);
    }
    label
}

/// A duration written for people: `90s`, `1h`, `7d`, `1d 2h`, `1500ms`.
pub fn format_duration_ms(duration_ms: u64) -> String {
    const UNITS: [(u64, &str); 4] = [
        (MS_PER_DAY, "d"),
        (3_600_000, "h"),
        (60_000, "m"),
        (1_000, "s"),
    ];
    if duration_ms == 0 {
        return "0ms".into();
    }
    let mut rest = duration_ms;
    let mut out = String::new();
    for (unit_ms, suffix) in UNITS {
        if rest >= unit_ms {
            if !out.is_empty() {
                out.push(' ');
            }
            let _ = write!(out, "{}{suffix}", rest / unit_ms);
            rest %= unit_ms;
        }
    }
    if rest > 0 {
        if !out.is_empty() {
            out.push(' ');
        }
        let _ = write!(out, "{rest}ms");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_is_1970_01_01() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration_ms(3_600_000), "1h");
        assert_eq!(format_duration_ms(93_600_000), "1d 2h");
        assert_eq!(format_duration_ms(1_500), "1s 500ms");
        assert_eq!(format_duration_ms(0), "0ms");
    }

    #[test]
    fn long_labels_are_cut_at_a_character_boundary() {
        let label = sanitize_label("é".repeat(200));
        assert!(label.len() <= LABEL_BYTES_MAX);
        assert_eq!(label.chars().count(), LABEL_BYTES_MAX / 2);
    }

    #[test]
    fn a_taken_label_gets_the_first_free_suffix_and_fits_the_limit() {
        let taken = ["a", "a-2", "a-3"];
        assert_eq!(unique_label("a".into(), |l| taken.contains(&l)), "a-4");
        assert_eq!(unique_label("b".into(), |l| taken.contains(&l)), "b");
        assert_eq!(unique_label(String::new(), |_| true), "");
        let long = "é".repeat(LABEL_BYTES_MAX / 2);
        let named = unique_label(long.clone(), |l| l == long);
        assert!(
            named.len() <= LABEL_BYTES_MAX && named.ends_with("-2"),
            "{named}"
        );
        assert_eq!(unique_label("x".into(), |_| true), "");
    }

    #[test]
    fn a_scheme_renders_for_a_user_snapshot() {
        let at = 1_709_213_405_000; // 2024-02-29T13:30:05Z
        assert_eq!(LabelScheme::Sequential.render(at, 7, "user", ""), "");
        assert_eq!(
            LabelScheme::Time.render(at, 7, "user", ""),
            "2024-02-29T133005Z"
        );
        assert_eq!(
            LabelScheme::Template("{rule}-{n}".into()).render(at, 7, "user", ""),
            "user-7"
        );
    }
}
