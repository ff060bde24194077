//! Retention against tables worked out by hand: borg's own documented example and test cases,
//! a 400-day catalog across both daylight saving changes in Berlin, the issue's 60-day figure,
//! and Steward's additions (protected and safety backups, the empty policy).

use chrono::{Days, NaiveDateTime, TimeZone};
use chrono_tz::{Europe::Berlin, Tz, UTC};

use super::*;

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 24 * HOUR_MS;

/// Unix milliseconds of a wall-clock time in `tz`, "YYYY-MM-DD HH:MM" or with ":SS".
fn at(tz: Tz, wall_clock: &str) -> i64 {
    let format = if wall_clock.len() > 16 {
        "%Y-%m-%d %H:%M:%S"
    } else {
        "%Y-%m-%d %H:%M"
    };
    let naive = NaiveDateTime::parse_from_str(wall_clock, format).unwrap();
    tz.from_local_datetime(&naive).single().unwrap().timestamp_millis()
}

fn utc(wall_clock: &str) -> i64 {
    at(UTC, wall_clock)
}

/// How the tables name a backup: its wall-clock time with the zone's abbreviation, so that
/// "02:30 CEST" and "02:30 CET" on the fall-back night are two different backups.
fn label(tz: Tz, ms: i64) -> String {
    tz.timestamp_millis_opt(ms)
        .unwrap()
        .format("%Y-%m-%d %H:%M %Z")
        .to_string()
}

fn backup(id: &str, created_at_ms: i64) -> Candidate {
    Candidate {
        id: id.to_string(),
        created_at_ms,
        safety: false,
        protected: None,
    }
}

/// One backup a day at the same wall-clock time in `tz`, from `first` ("YYYY-MM-DD HH:MM") on.
fn daily(tz: Tz, first: &str, count: u64) -> Vec<Candidate> {
    let first = NaiveDateTime::parse_from_str(first, "%Y-%m-%d %H:%M").unwrap();
    (0..count)
        .map(|i| first.checked_add_days(Days::new(i)).unwrap())
        .map(|naive| tz.from_local_datetime(&naive).single().unwrap().timestamp_millis())
        .map(|ms| backup(&label(tz, ms), ms))
        .collect()
}

/// `count` backups `step_ms` apart from `first_ms` on, each named by its `label`.
fn every(tz: Tz, first_ms: i64, step_ms: i64, count: i64) -> Vec<Candidate> {
    (0..count)
        .map(|i| first_ms + i * step_ms)
        .map(|ms| backup(&label(tz, ms), ms))
        .collect()
}

/// The kept backups, newest first, with their reasons as the console shows them.
fn kept(policy: &Policy, tz: Tz, now_ms: i64, backups: &[Candidate]) -> Vec<(String, String)> {
    decide(policy, tz, now_ms, backups)
        .into_iter()
        .filter_map(|(id, verdict)| match verdict {
            Verdict::Keep(reason) => Some((id, reason.to_string())),
            Verdict::Remove => None,
        })
        .collect()
}

fn assert_kept(actual: Vec<(String, String)>, expected: &[(&str, &str)]) {
    let actual: Vec<String> = actual.iter().map(|(id, why)| format!("{id} | {why}")).collect();
    let expected: Vec<String> = expected.iter().map(|(id, why)| format!("{id} | {why}")).collect();
    assert_eq!(actual, expected);
}

fn within(s: &str) -> Option<KeepWithin> {
    Some(s.parse().unwrap())
}

// ---------------------------------------------------------------------------------------------
// borg's own documentation and test cases
// ---------------------------------------------------------------------------------------------

/// borg's docs/misc/prune-example.txt, "borg prune visualized": a backup on each day of 2015
/// except 2015-12-19, pruned on 2016-01-01 with `--keep-daily 14 --keep-monthly 6
/// --keep-yearly 1`. The table is the document's list view, copied from it: daily keeps 12-31
/// back to 12-17 (12-19 has no backup and does not count); monthly skips December (its newest,
/// 12-31, is kept by daily) and keeps Nov back to Jun; yearly skips 2015 for the same reason,
/// finds no older year, and so keeps the oldest backup, 2015-01-01.
#[test]
fn borg_documentation_visualized_example() {
    let days = daily(Berlin, "2015-01-01 21:00", 365);
    let backups: Vec<Candidate> = days.into_iter().filter(|b| !b.id.starts_with("2015-12-19")).collect();
    let policy = Policy {
        keep_daily: Some(14),
        keep_monthly: Some(6),
        keep_yearly: Some(1),
        ..Policy::default()
    };
    assert_kept(
        kept(&policy, Berlin, at(Berlin, "2016-01-01 08:00"), &backups),
        &[
            ("2015-12-31 21:00 CET", "daily 1 of 14"),
            ("2015-12-30 21:00 CET", "daily 2 of 14"),
            ("2015-12-29 21:00 CET", "daily 3 of 14"),
            ("2015-12-28 21:00 CET", "daily 4 of 14"),
            ("2015-12-27 21:00 CET", "daily 5 of 14"),
            ("2015-12-26 21:00 CET", "daily 6 of 14"),
            ("2015-12-25 21:00 CET", "daily 7 of 14"),
            ("2015-12-24 21:00 CET", "daily 8 of 14"),
            ("2015-12-23 21:00 CET", "daily 9 of 14"),
            ("2015-12-22 21:00 CET", "daily 10 of 14"),
            ("2015-12-21 21:00 CET", "daily 11 of 14"),
            ("2015-12-20 21:00 CET", "daily 12 of 14"),
            ("2015-12-18 21:00 CET", "daily 13 of 14"),
            ("2015-12-17 21:00 CET", "daily 14 of 14"),
            ("2015-11-30 21:00 CET", "monthly 1 of 6"),
            ("2015-10-31 21:00 CET", "monthly 2 of 6"),
            ("2015-09-30 21:00 CEST", "monthly 3 of 6"),
            ("2015-08-31 21:00 CEST", "monthly 4 of 6"),
            ("2015-07-31 21:00 CEST", "monthly 5 of 6"),
            ("2015-06-30 21:00 CEST", "monthly 6 of 6"),
            ("2015-01-01 21:00 CET", "yearly (oldest backup, the rule wants 1)"),
        ],
    );
}

/// The archives of borg's `test_prune_split` (src/borg/testsuite/helpers.py), ids 1 to 13.
fn borg_test_archives() -> Vec<Candidate> {
    [
        (1, "2015-01-01 10:00:00"), // years apart
        (2, "2016-01-01 10:00:00"),
        (3, "2017-01-01 10:00:00"),
        (4, "2017-02-01 10:00:00"), // months apart
        (5, "2017-03-01 10:00:00"),
        (6, "2017-03-02 10:00:00"), // days apart
        (7, "2017-03-03 10:00:00"),
        (8, "2017-03-04 10:00:00"),
        (9, "2017-10-01 09:45:00"), // minutes apart
        (10, "2017-10-01 09:55:00"),
        (11, "2017-10-01 10:00:01"), // seconds apart
        (12, "2017-10-01 10:00:03"),
        (13, "2017-10-01 10:00:05"),
    ]
    .into_iter()
    .map(|(id, wall_clock)| backup(&id.to_string(), utc(wall_clock)))
    .collect()
}

/// borg's expected ids for one rule at a time (their minutely case has no Steward rule). Each
/// rule fills its count, so borg keeps no oldest backup here.
#[test]
fn borg_test_suite_single_rules() {
    let cases: [(Policy, Rule, &[&str]); 7] = [
        (
            Policy {
                keep_yearly: Some(3),
                ..Policy::default()
            },
            Rule::Yearly,
            &["13", "2", "1"],
        ),
        (
            Policy {
                keep_monthly: Some(3),
                ..Policy::default()
            },
            Rule::Monthly,
            &["13", "8", "4"],
        ),
        (
            Policy {
                keep_weekly: Some(2),
                ..Policy::default()
            },
            Rule::Weekly,
            &["13", "8"],
        ),
        (
            Policy {
                keep_daily: Some(3),
                ..Policy::default()
            },
            Rule::Daily,
            &["13", "8", "7"],
        ),
        (
            Policy {
                keep_hourly: Some(3),
                ..Policy::default()
            },
            Rule::Hourly,
            &["13", "10", "8"],
        ),
        (
            Policy {
                keep_last: Some(4),
                ..Policy::default()
            },
            Rule::Last,
            &["13", "12", "11", "10"],
        ),
        // borg: `("daily", 0, [])`. Alone, a 0 is no rule at all, so nothing goes (see
        // `empty_policies_remove_nothing`); beside another rule it keeps nothing of its own.
        (
            Policy {
                keep_daily: Some(0),
                keep_yearly: Some(1),
                ..Policy::default()
            },
            Rule::Yearly,
            &["13"],
        ),
    ];
    for (policy, rule, expected) in cases {
        let verdicts = decide(&policy, UTC, utc("2018-01-01 00:00"), &borg_test_archives());
        let kept: Vec<&str> = verdicts
            .iter()
            .filter(|(_, v)| v.is_keep())
            .map(|(id, _)| id.as_str())
            .collect();
        assert_eq!(kept, expected, "{policy:?}");
        for (_, verdict) in verdicts.iter().filter(|(_, v)| v.is_keep()) {
            assert!(
                matches!(verdict, Verdict::Keep(Reason::Rule { rule: r, .. }) if *r == rule),
                "{verdict}"
            );
        }
    }
}

/// borg's `test_prune_split_keep_oldest`: a yearly rule that wants 3 but finds two years keeps
/// the oldest backup too (not the interim one); one that wants 2 does not.
#[test]
fn borg_test_suite_keep_oldest() {
    let archives = [
        backup("1", utc("2018-01-01 10:00")), // oldest backup, but not the last of its year
        backup("2", utc("2018-12-30 10:00")), // an interim backup
        backup("3", utc("2018-12-31 10:00")), // year-end backups
        backup("4", utc("2019-12-31 10:00")),
    ];
    let now = utc("2020-01-01 00:00");
    let three = Policy {
        keep_yearly: Some(3),
        ..Policy::default()
    };
    assert_kept(
        kept(&three, UTC, now, &archives),
        &[
            ("4", "yearly 1 of 3"),
            ("3", "yearly 2 of 3"),
            ("1", "yearly (oldest backup, the rule wants 3)"),
        ],
    );
    let two = Policy {
        keep_yearly: Some(2),
        ..Policy::default()
    };
    assert_kept(
        kept(&two, UTC, now, &archives),
        &[("4", "yearly 1 of 2"), ("3", "yearly 2 of 2")],
    );
}

/// borg's `test_prune_within`: backups 1 minute, 1.5, 2.5, 3.5, 25 and 49 hours old.
#[test]
fn borg_test_suite_keep_within() {
    let now = utc("2024-06-01 12:00");
    let archives: Vec<Candidate> = [60, 90 * 60, 150 * 60, 210 * 60, 25 * 3600, 49 * 3600]
        .into_iter()
        .enumerate()
        .map(|(i, seconds_old)| backup(&i.to_string(), now - seconds_old * 1000))
        .collect();
    let cases: [(&str, &[&str]); 11] = [
        ("1H", &["0"]),
        ("2H", &["0", "1"]),
        ("3H", &["0", "1", "2"]),
        ("24H", &["0", "1", "2", "3"]),
        ("26H", &["0", "1", "2", "3", "4"]),
        ("2d", &["0", "1", "2", "3", "4"]),
        ("50H", &["0", "1", "2", "3", "4", "5"]),
        ("3d", &["0", "1", "2", "3", "4", "5"]),
        ("1w", &["0", "1", "2", "3", "4", "5"]),
        ("1m", &["0", "1", "2", "3", "4", "5"]),
        ("1y", &["0", "1", "2", "3", "4", "5"]),
    ];
    for (interval, expected) in cases {
        let policy = Policy {
            keep_within: within(interval),
            ..Policy::default()
        };
        let kept = kept(&policy, UTC, now, &archives);
        let ids: Vec<&str> = kept.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(ids, expected, "{interval}");
        assert!(
            kept.iter().all(|(_, why)| *why == format!("within {interval}")),
            "{kept:?}"
        );
    }
}

/// borg keeps what is *strictly* younger than the interval: a backup exactly 2 days old goes.
#[test]
fn keep_within_boundary_is_strict() {
    let now = utc("2025-01-10 12:00");
    let backups = [
        backup("just inside", now - 2 * DAY_MS + 1),
        backup("exactly 2d", now - 2 * DAY_MS),
    ];
    let policy = Policy {
        keep_within: within("2d"),
        ..Policy::default()
    };
    assert_kept(kept(&policy, UTC, now, &backups), &[("just inside", "within 2d")]);
}

// ---------------------------------------------------------------------------------------------
// 400 days in Berlin, across both daylight saving changes
// ---------------------------------------------------------------------------------------------

/// A backup every 6 hours by the UTC clock, at 04:00, 10:00, 16:00 and 22:00 UTC, from
/// 2024-09-27 04:00 UTC to 2025-10-31 22:00 UTC: 400 days, 1600 backups, named in Berlin time.
///
/// UTC spacing is what makes daylight saving bite. In winter (CET, +1) the backups are at
/// 05:00, 11:00, 17:00 and 23:00 local, so a day's newest is its 23:00 backup. In summer
/// (CEST, +2) they are at 06:00, 12:00, 18:00 and 00:00 local, so the 22:00 UTC backup opens
/// the *next* day and a day's newest is its 18:00 backup; the same goes for the last day of a
/// week, month or year. Spring forward (Sunday 2025-03-30) leaves that day 06:00, 12:00 and
/// 18:00 CEST; fall back (Sunday 2025-10-26, and 2024-10-27) gives that day five: 00:00 CEST,
/// then 05:00, 11:00, 17:00 and 23:00 CET.
fn four_hundred_days() -> Vec<Candidate> {
    let backups = every(Berlin, utc("2024-09-27 04:00"), 6 * HOUR_MS, 400 * 4);
    assert_eq!(backups.last().unwrap().created_at_ms, utc("2025-10-31 22:00"));
    backups
}

/// The catalog really has the daylight saving days the tables below rely on.
#[test]
fn the_catalog_crosses_both_daylight_saving_changes() {
    let on = |day: &str| -> Vec<String> {
        four_hundred_days()
            .into_iter()
            .map(|b| b.id)
            .filter(|id| id.starts_with(day))
            .collect()
    };
    assert_eq!(
        on("2025-03-29"),
        [
            "2025-03-29 05:00 CET",
            "2025-03-29 11:00 CET",
            "2025-03-29 17:00 CET",
            "2025-03-29 23:00 CET"
        ]
    );
    assert_eq!(
        on("2025-03-30"),
        [
            "2025-03-30 06:00 CEST",
            "2025-03-30 12:00 CEST",
            "2025-03-30 18:00 CEST"
        ]
    );
    assert_eq!(
        on("2025-10-26"),
        [
            "2025-10-26 00:00 CEST",
            "2025-10-26 05:00 CET",
            "2025-10-26 11:00 CET",
            "2025-10-26 17:00 CET",
            "2025-10-26 23:00 CET"
        ]
    );
    assert_eq!(on("2024-10-27").len(), 5);
}

/// borg's documented everyday policy, `--keep-daily 7 --keep-weekly 4 --keep-monthly 6`, on
/// 2025-11-01.
///
/// Daily: the newest of each of the last 7 local days, Friday 10-31 back to Saturday 10-25.
/// From 10-26 (fall back) on it is winter, newest 23:00 CET; 10-25 is still summer, so its
/// newest is 18:00 CEST (its 22:00 UTC backup is 10-26 00:00 CEST).
/// Weekly: ISO week 44 (10-27..11-02) and week 43 (10-20..10-26) have their newest (10-31 and
/// 10-26 23:00) kept by daily, so they are used up; weeks 42, 41, 40 and 39 count, each with
/// its Sunday 18:00 CEST backup (Sunday's 22:00 UTC one is Monday 00:00 local).
/// Monthly: October's newest (10-31 23:00) is kept by daily; September back to April count,
/// each with its last day's 18:00 CEST backup (the 22:00 UTC one opens the next month).
#[test]
fn year_catalog_borg_documented_policy() {
    let policy = Policy {
        keep_daily: Some(7),
        keep_weekly: Some(4),
        keep_monthly: Some(6),
        ..Policy::default()
    };
    assert_kept(
        kept(&policy, Berlin, utc("2025-11-01 00:00"), &four_hundred_days()),
        &[
            ("2025-10-31 23:00 CET", "daily 1 of 7"),
            ("2025-10-30 23:00 CET", "daily 2 of 7"),
            ("2025-10-29 23:00 CET", "daily 3 of 7"),
            ("2025-10-28 23:00 CET", "daily 4 of 7"),
            ("2025-10-27 23:00 CET", "daily 5 of 7"),
            ("2025-10-26 23:00 CET", "daily 6 of 7"),
            ("2025-10-25 18:00 CEST", "daily 7 of 7"),
            ("2025-10-19 18:00 CEST", "weekly 1 of 4"),
            ("2025-10-12 18:00 CEST", "weekly 2 of 4"),
            ("2025-10-05 18:00 CEST", "weekly 3 of 4"),
            ("2025-09-30 18:00 CEST", "monthly 1 of 6"),
            ("2025-09-28 18:00 CEST", "weekly 4 of 4"),
            ("2025-08-31 18:00 CEST", "monthly 2 of 6"),
            ("2025-07-31 18:00 CEST", "monthly 3 of 6"),
            ("2025-06-30 18:00 CEST", "monthly 4 of 6"),
            ("2025-05-31 18:00 CEST", "monthly 5 of 6"),
            ("2025-04-30 18:00 CEST", "monthly 6 of 6"),
        ],
    );
}

/// After borg's docs' `--keep-within=10d --keep-weekly=4 --keep-monthly=-1`, with 2 days and a
/// year of months (Steward has no unlimited count), at 2025-11-01 04:00 UTC.
///
/// Within: backups after 2025-10-30 04:00 UTC; the one at exactly that time (05:00 CET) is not
/// strictly younger than 2 days and goes, leaving seven.
/// Weekly: week 44's newest is within, so it is used up; weeks 43 (Sunday 10-26 is winter:
/// 23:00 CET) to 40 count.
/// Monthly: October is used up; September back to April end 18:00 CEST; March ends 03-31
/// 18:00 CEST (summer since 03-30); February back to October 2024 are winter months (October
/// 2024 fell back on the 27th) and end 23:00 CET. That makes twelve; September 2024 goes.
#[test]
fn year_catalog_within_weekly_monthly() {
    let policy = Policy {
        keep_within: within("2d"),
        keep_weekly: Some(4),
        keep_monthly: Some(12),
        ..Policy::default()
    };
    assert_kept(
        kept(&policy, Berlin, utc("2025-11-01 04:00"), &four_hundred_days()),
        &[
            ("2025-10-31 23:00 CET", "within 2d"),
            ("2025-10-31 17:00 CET", "within 2d"),
            ("2025-10-31 11:00 CET", "within 2d"),
            ("2025-10-31 05:00 CET", "within 2d"),
            ("2025-10-30 23:00 CET", "within 2d"),
            ("2025-10-30 17:00 CET", "within 2d"),
            ("2025-10-30 11:00 CET", "within 2d"),
            ("2025-10-26 23:00 CET", "weekly 1 of 4"),
            ("2025-10-19 18:00 CEST", "weekly 2 of 4"),
            ("2025-10-12 18:00 CEST", "weekly 3 of 4"),
            ("2025-10-05 18:00 CEST", "weekly 4 of 4"),
            ("2025-09-30 18:00 CEST", "monthly 1 of 12"),
            ("2025-08-31 18:00 CEST", "monthly 2 of 12"),
            ("2025-07-31 18:00 CEST", "monthly 3 of 12"),
            ("2025-06-30 18:00 CEST", "monthly 4 of 12"),
            ("2025-05-31 18:00 CEST", "monthly 5 of 12"),
            ("2025-04-30 18:00 CEST", "monthly 6 of 12"),
            ("2025-03-31 18:00 CEST", "monthly 7 of 12"),
            ("2025-02-28 23:00 CET", "monthly 8 of 12"),
            ("2025-01-31 23:00 CET", "monthly 9 of 12"),
            ("2024-12-31 23:00 CET", "monthly 10 of 12"),
            ("2024-11-30 23:00 CET", "monthly 11 of 12"),
            ("2024-10-31 23:00 CET", "monthly 12 of 12"),
        ],
    );
}

/// Every counting rule at once: `keep_last 3, keep_hourly 4, keep_daily 3, keep_weekly 2,
/// keep_yearly 3`.
///
/// Last: the three newest. Hourly: every backup has an hour of its own; the three newest hours
/// are used up, the next four count (10-31 05:00 back to 10-30 11:00). Daily: 10-31 and 10-30
/// have their newest kept already, so 10-29 to 10-27 count. Weekly: week 44 is used up; week 43
/// ends on the fall-back Sunday, 23:00 CET; week 42 ends 18:00 CEST. Yearly: 2025 is used up,
/// 2024 ends 12-31 23:00 CET, and there is no third year: the oldest backup of all, the first
/// one (2024-09-27 04:00 UTC, 06:00 CEST), is kept as well.
#[test]
fn year_catalog_every_rule_and_the_oldest() {
    let policy = Policy {
        keep_last: Some(3),
        keep_hourly: Some(4),
        keep_daily: Some(3),
        keep_weekly: Some(2),
        keep_yearly: Some(3),
        ..Policy::default()
    };
    assert_kept(
        kept(&policy, Berlin, utc("2025-11-01 00:00"), &four_hundred_days()),
        &[
            ("2025-10-31 23:00 CET", "last 1 of 3"),
            ("2025-10-31 17:00 CET", "last 2 of 3"),
            ("2025-10-31 11:00 CET", "last 3 of 3"),
            ("2025-10-31 05:00 CET", "hourly 1 of 4"),
            ("2025-10-30 23:00 CET", "hourly 2 of 4"),
            ("2025-10-30 17:00 CET", "hourly 3 of 4"),
            ("2025-10-30 11:00 CET", "hourly 4 of 4"),
            ("2025-10-29 23:00 CET", "daily 1 of 3"),
            ("2025-10-28 23:00 CET", "daily 2 of 3"),
            ("2025-10-27 23:00 CET", "daily 3 of 3"),
            ("2025-10-26 23:00 CET", "weekly 1 of 2"),
            ("2025-10-19 18:00 CEST", "weekly 2 of 2"),
            ("2024-12-31 23:00 CET", "yearly 1 of 3"),
            ("2024-09-27 06:00 CEST", "yearly (oldest backup, the rule wants 3)"),
        ],
    );
}

/// The same catalog as it stood right after its 2025-03-31 22:00 UTC backup, two days after
/// spring forward, with `keep_daily 4, keep_weekly 2, keep_monthly 2`.
///
/// Daily: that last backup is 2025-04-01 00:00 CEST, so it is April's and the first day's. 03-31
/// ends 18:00 CEST. The 23-hour 03-30 has only 06:00, 12:00 and 18:00 CEST and ends 18:00.
/// 03-29 is still winter and ends 23:00 CET.
/// Weekly: week 14 (from Monday 03-31) and week 13 (whose Sunday is 03-30) are used up by
/// daily; weeks 12 and 11 end on Sundays in winter, 23:00 CET.
/// Monthly: April and March (newest 03-31 18:00 CEST, not the 22:00 UTC backup) are used up by
/// daily; February and January count.
#[test]
fn year_catalog_just_after_spring_forward() {
    let catalog: Vec<Candidate> = four_hundred_days()
        .into_iter()
        .filter(|b| b.created_at_ms <= utc("2025-03-31 22:00"))
        .collect();
    let policy = Policy {
        keep_daily: Some(4),
        keep_weekly: Some(2),
        keep_monthly: Some(2),
        ..Policy::default()
    };
    assert_kept(
        kept(&policy, Berlin, utc("2025-04-01 00:00"), &catalog),
        &[
            ("2025-04-01 00:00 CEST", "daily 1 of 4"),
            ("2025-03-31 18:00 CEST", "daily 2 of 4"),
            ("2025-03-30 18:00 CEST", "daily 3 of 4"),
            ("2025-03-29 23:00 CET", "daily 4 of 4"),
            ("2025-03-23 23:00 CET", "weekly 1 of 2"),
            ("2025-03-16 23:00 CET", "weekly 2 of 2"),
            ("2025-02-28 23:00 CET", "monthly 1 of 2"),
            ("2025-01-31 23:00 CET", "monthly 2 of 2"),
        ],
    );
}

/// On the fall-back night the wall clock shows 02:00–03:00 twice, and borg reads periods off
/// the wall clock: 02:30 CEST and 02:30 CET (an hour apart) are one hourly period, and even one
/// "secondly" period for `keep_last`. Hourly backups at :30 UTC, 22:30 to 03:30 UTC.
#[test]
fn fall_back_night_repeats_an_hour() {
    let night = every(Berlin, utc("2025-10-25 22:30"), HOUR_MS, 6);
    let ids: Vec<&str> = night.iter().map(|b| b.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "2025-10-26 00:30 CEST",
            "2025-10-26 01:30 CEST",
            "2025-10-26 02:30 CEST",
            "2025-10-26 02:30 CET",
            "2025-10-26 03:30 CET",
            "2025-10-26 04:30 CET"
        ]
    );
    let now = utc("2025-10-26 04:00");
    let hourly = Policy {
        keep_hourly: Some(4),
        ..Policy::default()
    };
    assert_kept(
        kept(&hourly, Berlin, now, &night),
        &[
            ("2025-10-26 04:30 CET", "hourly 1 of 4"),
            ("2025-10-26 03:30 CET", "hourly 2 of 4"),
            ("2025-10-26 02:30 CET", "hourly 3 of 4"),
            ("2025-10-26 01:30 CEST", "hourly 4 of 4"),
        ],
    );
    let last = Policy {
        keep_last: Some(4),
        ..Policy::default()
    };
    assert_kept(
        kept(&last, Berlin, now, &night),
        &[
            ("2025-10-26 04:30 CET", "last 1 of 4"),
            ("2025-10-26 03:30 CET", "last 2 of 4"),
            ("2025-10-26 02:30 CET", "last 3 of 4"),
            ("2025-10-26 01:30 CEST", "last 4 of 4"),
        ],
    );
    // In UTC nothing repeats: the four newest.
    assert_eq!(kept(&last, UTC, now, &night).len(), 4);
    assert!(
        kept(&last, UTC, now, &night)
            .iter()
            .any(|(id, _)| id == "2025-10-26 02:30 CEST")
    );
}

/// Weeks are ISO weeks, Monday to Sunday, numbered in the ISO week-based year (borg's
/// `%G-%V`): 2020-12-28 to 2021-01-03 is week 53 of 2020, in one piece across New Year.
#[test]
fn weeks_are_iso_weeks_across_new_year() {
    let backups = daily(UTC, "2020-12-20 12:00", 17); // to Tuesday 2021-01-05
    let policy = Policy {
        keep_weekly: Some(3),
        keep_yearly: Some(1),
        ..Policy::default()
    };
    assert_kept(
        kept(&policy, UTC, utc("2021-01-06 00:00"), &backups),
        &[
            ("2021-01-05 12:00 UTC", "weekly 1 of 3"), // 2021-W01, Monday 01-04 on
            ("2021-01-03 12:00 UTC", "weekly 2 of 3"), // Sunday of 2020-W53
            ("2020-12-31 12:00 UTC", "yearly 1 of 1"), // 2021 is used up; 2020 ends inside 2020-W53
            ("2020-12-27 12:00 UTC", "weekly 3 of 3"), // Sunday of 2020-W52
        ],
    );
}

/// `keep_last` is borg's `--keep-secondly`: backups within one second count once.
#[test]
fn keep_last_counts_one_backup_per_second() {
    let backups = [
        backup("a", utc("2025-01-01 10:00:05") + 900),
        backup("b", utc("2025-01-01 10:00:05") + 100),
        backup("c", utc("2025-01-01 10:00:04")),
        backup("d", utc("2025-01-01 10:00:03")),
    ];
    let policy = Policy {
        keep_last: Some(2),
        ..Policy::default()
    };
    assert_kept(
        kept(&policy, UTC, utc("2025-01-02 00:00"), &backups),
        &[("a", "last 1 of 2"), ("c", "last 2 of 2")],
    );
}

// ---------------------------------------------------------------------------------------------
// The issue's figure
// ---------------------------------------------------------------------------------------------

/// The issue: backups every 6 hours for 60 days, `keep_last 3, keep_daily 7, keep_weekly 4,
/// keep_monthly 6`: borg keeps 16, Proxmox Backup Server 14.
///
/// The 60 days are 2025-07-01 to Friday 2025-08-29, at 00:00, 06:00, 12:00 and 18:00 Berlin
/// time (240 backups). Last 3: 08-29 18:00, 12:00, 06:00. Daily 7: 08-29 is used up (its newest
/// is kept), so 08-28 back to 08-22. Weekly 4: week 35 (08-25..08-31) and week 34 (whose Sunday
/// 08-24 daily kept) are used up; Sundays 08-17, 08-10, 08-03 and 07-27 count. Monthly 6:
/// August is used up; July's newest, 07-31 18:00, counts; no month is left, so the oldest,
/// 07-01 00:00, is kept too. 3 + 7 + 4 + 2 = 16.
///
/// PBS skips every period that holds *any* kept backup: July holds the weekly 07-27, so its
/// monthly rule keeps nothing, and it has no oldest rule: 3 + 7 + 4 = 14.
#[test]
fn sixty_days_every_six_hours_keeps_sixteen() {
    let backups = every(Berlin, at(Berlin, "2025-07-01 00:00"), 6 * HOUR_MS, 60 * 4);
    assert_eq!(backups.last().unwrap().id, "2025-08-29 18:00 CEST");
    let policy = Policy {
        keep_last: Some(3),
        keep_daily: Some(7),
        keep_weekly: Some(4),
        keep_monthly: Some(6),
        ..Policy::default()
    };
    let kept = kept(&policy, Berlin, at(Berlin, "2025-08-30 00:00"), &backups);
    assert_eq!(kept.len(), 16);
    assert_kept(
        kept,
        &[
            ("2025-08-29 18:00 CEST", "last 1 of 3"),
            ("2025-08-29 12:00 CEST", "last 2 of 3"),
            ("2025-08-29 06:00 CEST", "last 3 of 3"),
            ("2025-08-28 18:00 CEST", "daily 1 of 7"),
            ("2025-08-27 18:00 CEST", "daily 2 of 7"),
            ("2025-08-26 18:00 CEST", "daily 3 of 7"),
            ("2025-08-25 18:00 CEST", "daily 4 of 7"),
            ("2025-08-24 18:00 CEST", "daily 5 of 7"),
            ("2025-08-23 18:00 CEST", "daily 6 of 7"),
            ("2025-08-22 18:00 CEST", "daily 7 of 7"),
            ("2025-08-17 18:00 CEST", "weekly 1 of 4"),
            ("2025-08-10 18:00 CEST", "weekly 2 of 4"),
            ("2025-08-03 18:00 CEST", "weekly 3 of 4"),
            ("2025-07-31 18:00 CEST", "monthly 1 of 6"),
            ("2025-07-27 18:00 CEST", "weekly 4 of 4"),
            ("2025-07-01 00:00 CEST", "monthly (oldest backup, the rule wants 6)"),
        ],
    );
}

// ---------------------------------------------------------------------------------------------
// Steward's additions: protected and safety backups, the empty policy
// ---------------------------------------------------------------------------------------------

/// The policies above and a few harsh ones.
fn policies() -> Vec<Policy> {
    vec![
        Policy {
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_monthly: Some(6),
            ..Policy::default()
        },
        Policy {
            keep_within: within("2d"),
            keep_weekly: Some(4),
            keep_monthly: Some(12),
            ..Policy::default()
        },
        Policy {
            keep_last: Some(3),
            keep_hourly: Some(4),
            keep_daily: Some(3),
            keep_weekly: Some(2),
            keep_yearly: Some(3),
            ..Policy::default()
        },
        Policy {
            keep_last: Some(1),
            ..Policy::default()
        },
        Policy {
            keep_within: within("1H"),
            ..Policy::default()
        },
        Policy {
            keep_yearly: Some(1),
            keep_pre_restore_days: 0,
            ..Policy::default()
        },
        Policy::default(),
    ]
}

#[test]
fn protected_and_young_safety_backups_survive_every_policy() {
    let now = utc("2025-11-01 04:00");
    let mut backups = four_hundred_days();
    backups[700].protected = Some("pinned by alice: before the migration".to_string());
    backups[1598].protected = Some("being restored by job #40".to_string());
    let safety = |id: &str, age_ms: i64, protected: Option<&str>| Candidate {
        id: id.to_string(),
        created_at_ms: now - age_ms,
        safety: true,
        protected: protected.map(str::to_string),
    };
    backups.push(safety("young safety", 3 * DAY_MS, None));
    backups.push(safety("old safety", 20 * DAY_MS, None));
    backups.push(safety(
        "old protected safety",
        20 * DAY_MS,
        Some("safety backup of failed restore #12"),
    ));

    for policy in policies() {
        let verdicts = decide(&policy, Berlin, now, &backups);
        assert_eq!(verdicts.len(), backups.len());
        let verdict = |id: &str| {
            verdicts
                .iter()
                .find(|(v, _)| v == id)
                .map(|(_, v)| v.to_string())
                .unwrap()
        };

        assert!(
            verdict(&backups[700].id).starts_with("keep — pinned by alice: before the migration"),
            "{policy:?}"
        );
        assert!(
            verdict(&backups[1598].id).starts_with("keep — being restored by job #40"),
            "{policy:?}"
        );
        assert!(verdict("old protected safety").starts_with("keep — safety backup of failed restore #12"));
        let young = verdict("young safety");
        let old = verdict("old safety");
        if policy.is_empty() {
            assert_eq!(young, "keep — no retention rules");
            assert_eq!(old, "keep — no retention rules");
        } else if policy.keep_pre_restore_days == 0 {
            assert_eq!(young, "remove");
            assert_eq!(old, "remove");
        } else {
            assert_eq!(young, "keep — safety backup, younger than 14 days");
            assert_eq!(old, "remove");
        }
    }
}

/// A protected backup takes part in the rules as borg would see it, so the rest are kept as
/// borg would keep them; its verdict leads with the protection and then says what else keeps
/// it, if anything (nothing: unpinning it lets the next cleanup remove it).
#[test]
fn protected_backups_count_as_borg_sees_them() {
    let mut backups = every(UTC, utc("2025-01-01 12:00"), DAY_MS, 5);
    let policy = Policy {
        keep_daily: Some(3),
        ..Policy::default()
    };
    let now = utc("2025-01-06 00:00");
    let unprotected = decide(&policy, UTC, now, &backups);

    backups[3].protected = Some("pinned by alice: before the migration".to_string()); // 01-04
    backups[0].protected = Some("newest backup proven restorable".to_string()); // 01-01
    let verdicts = decide(&policy, UTC, now, &backups);
    let shown: Vec<String> = verdicts.iter().map(|(id, v)| format!("{id} | {v}")).collect();
    assert_eq!(
        shown,
        [
            "2025-01-05 12:00 UTC | keep — daily 1 of 3",
            "2025-01-04 12:00 UTC | keep — pinned by alice: before the migration; also daily 2 of 3",
            "2025-01-03 12:00 UTC | keep — daily 3 of 3",
            "2025-01-02 12:00 UTC | remove",
            "2025-01-01 12:00 UTC | keep — newest backup proven restorable",
        ]
    );
    // Apart from the protected ones, the verdicts are borg's.
    for ((id, with), (_, without)) in verdicts.iter().zip(&unprotected) {
        if !id.starts_with("2025-01-04") && !id.starts_with("2025-01-01") {
            assert_eq!(with, without, "{id}");
        }
    }
}

/// Safety backups neither count nor use up a period: the history is pruned as if they were not
/// there, and each is judged by its age alone.
#[test]
fn safety_backups_stay_out_of_the_rules() {
    let now = utc("2025-03-10 12:00");
    let mut backups = every(UTC, utc("2025-03-06 12:00"), DAY_MS, 4);
    let history_only = kept(
        &Policy {
            keep_last: Some(2),
            keep_daily: Some(1),
            ..Policy::default()
        },
        UTC,
        now,
        &backups,
    );
    backups.push(Candidate {
        id: "before restore".into(),
        created_at_ms: now - 1,
        safety: true,
        protected: None,
    });
    backups.push(Candidate {
        id: "14 days old".into(),
        created_at_ms: now - 14 * DAY_MS,
        safety: true,
        protected: None,
    });
    backups.push(Candidate {
        id: "almost 14 days old".into(),
        created_at_ms: now - 14 * DAY_MS + 1,
        safety: true,
        protected: None,
    });
    let policy = Policy {
        keep_last: Some(2),
        keep_daily: Some(1),
        ..Policy::default()
    };
    let mut with_safety = kept(&policy, UTC, now, &backups);
    assert_eq!(
        with_safety.remove(0),
        ("before restore".into(), "safety backup, younger than 14 days".into())
    );
    assert_eq!(
        with_safety.pop(),
        Some((
            "almost 14 days old".into(),
            "safety backup, younger than 14 days".into()
        ))
    );
    assert_eq!(with_safety, history_only);
    assert_kept(
        history_only,
        &[
            ("2025-03-09 12:00 UTC", "last 1 of 2"),
            ("2025-03-08 12:00 UTC", "last 2 of 2"),
            ("2025-03-07 12:00 UTC", "daily 1 of 1"),
        ],
    );
}

/// No rule, or only zeros, or only the safety period: nothing at all is removed.
#[test]
fn empty_policies_remove_nothing() {
    let mut backups = four_hundred_days();
    backups.push(Candidate {
        id: "ancient safety".into(),
        created_at_ms: 0,
        safety: true,
        protected: None,
    });
    let zeros = Policy {
        keep_last: Some(0),
        keep_hourly: Some(0),
        keep_daily: Some(0),
        keep_weekly: Some(0),
        keep_monthly: Some(0),
        keep_yearly: Some(0),
        keep_within: None,
        keep_pre_restore_days: 1,
    };
    for policy in [
        Policy::default(),
        zeros,
        Policy {
            keep_pre_restore_days: 0,
            ..Policy::default()
        },
    ] {
        assert!(policy.is_empty());
        let verdicts = decide(&policy, Berlin, utc("2030-01-01 00:00"), &backups);
        assert_eq!(verdicts.len(), backups.len());
        assert!(
            verdicts.iter().all(|(_, v)| *v == Verdict::Keep(Reason::NoRules)),
            "{policy:?}"
        );
    }
    assert!(
        !Policy {
            keep_within: within("1H"),
            ..Policy::default()
        }
        .is_empty()
    );
    assert!(
        !Policy {
            keep_yearly: Some(1),
            ..Policy::default()
        }
        .is_empty()
    );
}

/// Newest first, by time and then by id, whatever order the caller passes; every backup once.
#[test]
fn order_is_newest_first_and_ties_are_broken_by_id() {
    let t = utc("2025-05-05 05:05");
    let backups = vec![
        backup("older", t - 1000),
        backup("b", t),
        backup("a", t),
        backup("c", t),
        backup("newest", t + 60_000),
    ];
    let policy = Policy {
        keep_last: Some(2),
        ..Policy::default()
    };
    let mut reversed = backups.clone();
    reversed.reverse();
    for input in [backups, reversed] {
        let shown: Vec<String> = decide(&policy, UTC, t, &input)
            .iter()
            .map(|(id, v)| format!("{id} | {v}"))
            .collect();
        // "a", "b" and "c" share a second, so `keep_last` (borg's secondly) counts only "c".
        assert_eq!(
            shown,
            [
                "newest | keep — last 1 of 2",
                "c | keep — last 2 of 2",
                "b | remove",
                "a | remove",
                "older | remove"
            ]
        );
    }
    assert!(decide(&policy, UTC, t, &[]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Configuration, words
// ---------------------------------------------------------------------------------------------

#[test]
fn keep_within_reads_borgs_units() {
    for (text, hours, words) in [
        ("36H", 36, "36 hours"),
        ("1H", 1, "1 hour"),
        ("2d", 48, "2 days"),
        ("1w", 168, "1 week"),
        ("6m", 6 * 31 * 24, "6 months (186 days)"),
        ("1y", 365 * 24, "1 year (365 days)"),
    ] {
        let within: KeepWithin = text.parse().unwrap();
        assert_eq!(within.hours(), hours, "{text}");
        assert_eq!(within.in_words(), words);
        assert_eq!(within.to_string(), text);
    }
}

#[test]
fn keep_within_errors_say_what_is_wrong() {
    let form = |s: &str| {
        format!(
            "invalid keep_within \"{s}\": must be a number followed by H, d, w, m or y (hours, days, weeks, \
             months of 31 days, years of 365 days), e.g. \"2d\" or \"36H\""
        )
    };
    for bad in [
        "", "5", "d", "2D", "36h", "2 d", " 2d", "-1d", "+2d", "1.5d", "2dd", "2days", "٣d",
    ] {
        assert_eq!(bad.parse::<KeepWithin>().unwrap_err().to_string(), form(bad), "{bad:?}");
    }
    assert_eq!(
        "0d".parse::<KeepWithin>().unwrap_err().to_string(),
        "invalid keep_within \"0d\": the number must be greater than 0"
    );
    assert_eq!(
        "99999999999y".parse::<KeepWithin>().unwrap_err().to_string(),
        "invalid keep_within \"99999999999y\": the number is too large"
    );
    // The largest accepted interval reaches back past any timestamp without overflowing.
    let policy = Policy {
        keep_within: within("4294967295y"),
        ..Policy::default()
    };
    assert_eq!(kept(&policy, UTC, i64::MAX, &[backup("x", i64::MIN)]).len(), 1);
}

#[test]
fn policy_is_the_config_section() {
    let policy: Policy = serde_json::from_str(r#"{"keep_daily": 7, "keep_weekly": 4, "keep_within": "36H"}"#).unwrap();
    assert_eq!(
        policy,
        Policy {
            keep_daily: Some(7),
            keep_weekly: Some(4),
            keep_within: within("36H"),
            ..Policy::default()
        }
    );
    assert_eq!(policy.keep_pre_restore_days, 14);
    assert_eq!(serde_json::to_value(&policy).unwrap()["keep_within"], "36H");
    let again: Policy = serde_json::from_value(serde_json::to_value(&policy).unwrap()).unwrap();
    assert_eq!(again, policy);

    let empty: Policy = serde_json::from_str("{}").unwrap();
    assert_eq!(empty, Policy::default());

    let typo = serde_json::from_str::<Policy>(r#"{"keep_dayly": 7}"#)
        .unwrap_err()
        .to_string();
    assert!(typo.contains("unknown field `keep_dayly`"), "{typo}");
    let bad = serde_json::from_str::<Policy>(r#"{"keep_within": "2 days"}"#)
        .unwrap_err()
        .to_string();
    assert!(
        bad.contains("invalid keep_within \"2 days\": must be a number followed by H, d, w, m or y"),
        "{bad}"
    );
    let negative = serde_json::from_str::<Policy>(r#"{"keep_daily": -1}"#);
    assert!(negative.is_err());
}

#[test]
fn verdicts_in_words() {
    let cases = [
        (
            Verdict::Keep(Reason::Rule {
                rule: Rule::Daily,
                nth: 3,
                of: 7,
            }),
            "keep — daily 3 of 7",
        ),
        (
            Verdict::Keep(Reason::Rule {
                rule: Rule::Last,
                nth: 1,
                of: 3,
            }),
            "keep — last 1 of 3",
        ),
        (
            Verdict::Keep(Reason::Oldest {
                rule: Rule::Monthly,
                of: 6,
            }),
            "keep — monthly (oldest backup, the rule wants 6)",
        ),
        (
            Verdict::Keep(Reason::Protected {
                why: "pinned by alice: before the migration".into(),
                also: None,
            }),
            "keep — pinned by alice: before the migration",
        ),
        (
            Verdict::Keep(Reason::Protected {
                why: "newest backup proven restorable".into(),
                also: Some(Box::new(Reason::Rule {
                    rule: Rule::Weekly,
                    nth: 1,
                    of: 4,
                })),
            }),
            "keep — newest backup proven restorable; also weekly 1 of 4",
        ),
        (Verdict::Keep(Reason::Within("2d".parse().unwrap())), "keep — within 2d"),
        (
            Verdict::Keep(Reason::SafetyWithinDays(14)),
            "keep — safety backup, younger than 14 days",
        ),
        (
            Verdict::Keep(Reason::SafetyWithinDays(1)),
            "keep — safety backup, younger than 1 day",
        ),
        (Verdict::Keep(Reason::NoRules), "keep — no retention rules"),
        (Verdict::Remove, "remove"),
    ];
    for (verdict, words) in cases {
        assert_eq!(verdict.to_string(), words);
    }
}

#[test]
fn policies_in_words() {
    let policy = Policy {
        keep_last: Some(3),
        keep_hourly: Some(1),
        keep_daily: Some(7),
        keep_weekly: Some(4),
        keep_monthly: Some(0),
        keep_yearly: Some(2),
        keep_within: within("2d"),
        keep_pre_restore_days: 14,
    };
    assert_eq!(
        policy.describe(),
        [
            "everything from the last 2 days",
            "the 3 newest backups",
            "the newest backup of the latest hour that has one",
            "the newest backup of each of the last 7 days that have one",
            "the newest backup of each of the last 4 weeks that have one",
            "the newest backup of each of the last 2 years that have one",
            "as in borg prune: a period whose newest backup is kept above does not count, and a rule that finds \
             too few also keeps the oldest backup",
            "safety backups before restores: 14 days",
        ]
    );
    assert_eq!(
        Policy {
            keep_last: Some(1),
            keep_within: within("6m"),
            keep_pre_restore_days: 1,
            ..Policy::default()
        }
        .describe(),
        [
            "everything from the last 6 months (186 days)",
            "the newest backup",
            "as in borg prune: a period whose newest backup is kept above does not count, and a rule that finds \
             too few also keeps the oldest backup",
            "safety backups before restores: 1 day",
        ]
    );
    assert_eq!(
        Policy {
            keep_within: within("36H"),
            ..Policy::default()
        }
        .describe(),
        [
            "everything from the last 36 hours",
            "safety backups before restores: 14 days"
        ]
    );
    assert_eq!(Policy::default().describe(), ["no retention rules: nothing is removed"]);
}
