//! Formatting for people.
//!
//! Times are shown in UTC, so the server-rendered page and the hydrated one agree and every
//! operator reads the same clock. Written here rather than pulling a date crate into the wasm
//! bundle for one conversion.

/// `1_763_776_800_000` → `2025-11-22 02:00 UTC`.
pub fn utc(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// `2025-11-22 02:00:07` (UTC, to the second), for log lines.
pub fn utc_seconds(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `02:00:07` (UTC), for log lines on screen.
pub fn clock(ms: i64) -> String {
    let rem = ms.div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// `3.2 s`, `4 min 05 s`, `2 h 10 min` between two instants.
pub fn duration(from_ms: i64, to_ms: i64) -> String {
    let ms = (to_ms - from_ms).max(0);
    let secs = ms / 1000;
    if secs < 60 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if secs < 3600 {
        format!("{} min {:02} s", secs / 60, secs % 60)
    } else {
        format!("{} h {:02} min", secs / 3600, secs % 3600 / 60)
    }
}

/// `12 bytes`, `830 KiB`, `12.3 MiB`, `1.4 GiB` (binary units, as `du -h` and the drivers'
/// log lines count them).
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return if n == 1 { "1 byte".into() } else { format!("{n} bytes") };
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    // Round first, so that 1023.96 KiB reads "1.0 MiB" and not "1024 KiB".
    while round_for_display(value) >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if round_for_display(value) < 100.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// The value as [`bytes`] prints it: one decimal below 100, none above.
fn round_for_display(value: f64) -> f64 {
    if (value * 10.0).round() / 10.0 < 100.0 {
        (value * 10.0).round() / 10.0
    } else {
        value.round()
    }
}

/// How long ago `then_ms` was, seen from `now_ms`, in words: `just now`, `1 minute ago`,
/// `3 hours ago`, `2 days ago`. Whole units, rounded down, so "23 hours ago" never means a day.
pub fn ago(then_ms: i64, now_ms: i64) -> String {
    let secs = (now_ms - then_ms).max(0) / 1000;
    let (count, unit) = match secs {
        s if s < 60 => return "just now".into(),
        s if s < 3600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3600, "hour"),
        s => (s / 86_400, "day"),
    };
    if count == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{count} {unit}s ago")
    }
}

/// How long from `from_ms` to `to_ms`, in the two largest whole units, for sentences such as
/// "everything changed since 3 days 4 hours ago": `less than a minute`, `1 minute`,
/// `2 hours 5 minutes`, `3 days 4 hours`, `40 days`. Rounded down, and a zero second unit is
/// left out ("2 days", not "2 days 0 hours").
pub fn elapsed(from_ms: i64, to_ms: i64) -> String {
    fn count(n: i64, unit: &str) -> String {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    }
    fn two(big: i64, big_unit: &str, small: i64, small_unit: &str) -> String {
        if small == 0 {
            count(big, big_unit)
        } else {
            format!("{} {}", count(big, big_unit), count(small, small_unit))
        }
    }
    let minutes = (to_ms - from_ms).max(0) / 60_000;
    let (hours, days) = (minutes / 60, minutes / 1440);
    match minutes {
        0 => "less than a minute".into(),
        m if m < 60 => count(m, "minute"),
        m if m < 1440 => two(hours, "hour", m % 60, "minute"),
        // After a month the hours no longer matter to anyone.
        _ if days >= 30 => count(days, "day"),
        _ => two(days, "day", hours % 24, "hour"),
    }
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants_format_as_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(951_782_400_000), "2000-02-29 00:00 UTC");
        assert_eq!(utc(1_795_312_920_000), "2026-11-22 02:02 UTC");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(bytes(0), "0 bytes");
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(1023), "1023 bytes");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(830 * 1024), "830 KiB");
        assert_eq!(bytes(12_897_485), "12.3 MiB");
        assert_eq!(bytes(1024 * 1024 - 1), "1.0 MiB");
        assert_eq!(bytes(1_503_238_554), "1.4 GiB");
        assert_eq!(bytes(u64::MAX), "16384 PiB");
    }

    #[test]
    fn ages_read_in_whole_units() {
        let now = 1_795_312_920_000;
        assert_eq!(ago(now, now), "just now");
        assert_eq!(
            ago(now + 5_000, now),
            "just now",
            "a clock a little ahead is not the future"
        );
        assert_eq!(ago(now - 59_000, now), "just now");
        assert_eq!(ago(now - 60_000, now), "1 minute ago");
        assert_eq!(ago(now - 45 * 60_000, now), "45 minutes ago");
        assert_eq!(ago(now - 3 * 3_600_000 - 59 * 60_000, now), "3 hours ago");
        assert_eq!(ago(now - 23 * 3_600_000 - 59 * 60_000, now), "23 hours ago");
        assert_eq!(ago(now - 24 * 3_600_000, now), "1 day ago");
        assert_eq!(ago(now - 2 * 86_400_000 - 5 * 3_600_000, now), "2 days ago");
    }

    #[test]
    fn elapsed_time_reads_in_the_two_largest_units() {
        let now = 1_795_312_920_000;
        let (minute, hour, day) = (60_000, 3_600_000, 86_400_000);
        assert_eq!(elapsed(now, now), "less than a minute");
        assert_eq!(elapsed(now + 5_000, now), "less than a minute", "never negative");
        assert_eq!(elapsed(now - 59_999, now), "less than a minute");
        assert_eq!(elapsed(now - minute, now), "1 minute");
        assert_eq!(elapsed(now - 45 * minute - 59_000, now), "45 minutes");
        assert_eq!(elapsed(now - hour, now), "1 hour");
        assert_eq!(elapsed(now - 2 * hour - 5 * minute, now), "2 hours 5 minutes");
        assert_eq!(elapsed(now - day - minute, now), "1 day");
        assert_eq!(elapsed(now - 3 * day - 4 * hour - 59 * minute, now), "3 days 4 hours");
        assert_eq!(elapsed(now - 2 * day - hour, now), "2 days 1 hour");
        assert_eq!(elapsed(now - 40 * day - 5 * hour, now), "40 days");
    }
}
