//! Words and numbers as Steward writes them in messages: sizes, times of day, sentences, and
//! the one limit on what a person may type as a reason. A leaf module, so that every other
//! module (the queue, the kinds, maintenance, the drivers) says these things the same way.

/// The longest reason (or backup description) a request may carry.
pub const MAX_REASON_CHARS: usize = 500;

/// `1.4 GiB`, `830 KiB`, `12 bytes`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} bytes");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 {
        format!("{value:.1} {}", UNITS[unit])
    } else {
        format!("{value:.0} {}", UNITS[unit])
    }
}

/// `10:02` for a Unix-milliseconds time (UTC), for messages.
pub fn hh_mm_utc(ms: i64) -> String {
    let minutes = ms.div_euclid(60_000).rem_euclid(24 * 60);
    format!("{:02}:{:02}", minutes / 60, minutes % 60)
}

/// Ends `s` with a full stop. The first letter stays as it is: errors often start with a
/// program's name (`backup.sh exited with status 3.`).
pub fn sentence(s: &str) -> String {
    if s.ends_with('.') {
        s.to_string()
    } else {
        format!("{s}.")
    }
}

/// `ms` as local time in `tz`, formatted with chrono's `format`.
pub fn local(ms: i64, tz: chrono_tz::Tz, format: &str) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format(format).to_string())
        .unwrap_or_default()
}

/// Midnight UTC of a date written `2026-12-01`, in Unix milliseconds.
pub fn utc_day_start_ms(date: &str) -> Option<i64> {
    let day = chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    Some(day.and_hms_opt(0, 0, 0)?.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(830 * 1024), "830 KiB");
        assert_eq!(hh_mm_utc(((10 * 60) + 2) * 60_000), "10:02");
        assert_eq!(sentence("done"), "done.");
        assert_eq!(sentence("done."), "done.");
    }
}
