//! Calendar dates and byte sizes as Strata shows them, written once for the engine (policy
//! labels and calendar retention), the CLI and the dashboard. No dependencies, so that the
//! dashboard's WebAssembly module does not grow by linking it.
//!
//! Dates are proleptic Gregorian and UTC; times are milliseconds since the Unix epoch.

/// Days since 1970-01-01 to a `(year, month, day)` civil date.
///
/// Howard Hinnant's `civil_from_days`, specialised to days on or after the epoch (all unsigned):
/// shift to 0000-03-01 so that leap days fall at the end of a year, split into 400-year eras of
/// 146 097 days, then into years of the era and days of the year, then into months of 153 days
/// per five (March-based).
pub fn civil_from_days(days_since_epoch: u64) -> (u64, u32, u32) {
    // 719 468 days from 0000-03-01 to 1970-01-01.
    let z = days_since_epoch + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097; // [0, 146096]
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365; // [0, 399]
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100); // [0, 365]
    let month_from_march = (5 * day_of_year + 2) / 153; // [0, 11]
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32; // [1, 31]
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32; // [1, 12]
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// Days from 1970-01-01 to a civil date on or after it (Howard Hinnant's `days_from_civil`, the
/// inverse of [`civil_from_days`]). `month` is 1..=12; a date before the epoch is not defined.
pub fn days_from_civil(year: u64, month: u32, day: u32) -> u64 {
    let (month, day) = (u64::from(month), u64::from(day));
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let year_of_era = y - era * 400;
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Days in `month` (1..=12) of `year`.
pub fn days_in_month(year: u64, month: u32) -> u32 {
    match month {
        4 | 6 | 9 | 11 => 30,
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        _ => 31,
    }
}

/// A UTC date and time of day, to the millisecond.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateTime {
    pub year: u64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    pub millis: u32,
}

impl DateTime {
    /// The date and time `ms` milliseconds after 1970-01-01T00:00:00Z.
    pub fn from_unix_ms(ms: u64) -> Self {
        let secs = ms / 1000;
        let (year, month, day) = civil_from_days(secs / 86_400);
        let of_day = (secs % 86_400) as u32;
        DateTime {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
            millis: (ms % 1000) as u32,
        }
    }

    /// RFC 3339 with milliseconds: `2023-11-14T22:13:20.000Z`.
    pub fn rfc3339(&self) -> String {
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
            self.year, self.month, self.day, self.hour, self.minute, self.second, self.millis
        )
    }

    /// For people: `2023-11-14 22:13:20` (UTC).
    pub fn short(&self) -> String {
        format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// A byte count in binary units with one decimal (`1.5 MiB`); under 1 KiB, exact (`512 B`).
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_dates_round_trip_over_four_centuries() {
        // Every day from 1970 to 2400: each is one more than the day before, and converts back.
        let mut previous = None;
        for days in 0..(430 * 366) {
            let (year, month, day) = civil_from_days(days);
            assert!((1..=12).contains(&month));
            assert!(day >= 1 && day <= days_in_month(year, month));
            assert_eq!(days_from_civil(year, month, day), days);
            if let Some((py, pm, pd)) = previous {
                let next = if pd < days_in_month(py, pm) {
                    (py, pm, pd + 1)
                } else if pm < 12 {
                    (py, pm + 1, 1)
                } else {
                    (py + 1, 1, 1)
                };
                assert_eq!((year, month, day), next);
            }
            previous = Some((year, month, day));
        }
    }

    #[test]
    fn known_instants() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(
            DateTime::from_unix_ms(1_700_000_000_000).rfc3339(),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            DateTime::from_unix_ms(951_782_400_123).short(),
            "2000-02-29 00:00:00"
        );
        assert_eq!(DateTime::from_unix_ms(951_782_400_123).millis, 123);
    }

    #[test]
    fn byte_sizes() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1024), "1.0 KiB");
        assert_eq!(format_bytes(1536 * 1024), "1.5 MiB");
        assert_eq!(format_bytes(u64::MAX), "16384.0 PiB");
    }
}
