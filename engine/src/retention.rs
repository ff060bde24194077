//! Retention: which backups of one environment are kept, which are removed, and why.
//!
//! The rules are **borg prune's**, to the letter, so that an administrator can read borg's
//! documentation (`docs/usage/prune.rst`, and the worked example in
//! `docs/misc/prune-example.txt`) and predict what Steward removes. The algorithm is borg
//! 1.2/1.4's `prune_within` and `prune_split` (`src/borg/helpers/misc.py`, driven by `do_prune`
//! in `src/borg/archiver.py`; the same code lives in `archiver/prune_cmd.py` in borg 2):
//!
//! 1. `keep_within` keeps every backup younger than the interval (strictly: one exactly that old
//!    goes).
//! 2. Then the counting rules run in borg's order: `keep_last` (borg's alias of
//!    `--keep-secondly`), hourly, daily, weekly, monthly, yearly. Each walks the backups newest
//!    first and keeps the newest backup of each period (hour, day, ISO week Monday to Sunday,
//!    month, year) until it has kept its count. Periods without a backup do not count.
//! 3. A period whose *newest* backup an earlier step already kept is used up without counting:
//!    the rule moves on to an older period. Only the newest matters: a period whose kept backup
//!    is not its newest still counts. (Proxmox Backup Server skips every period that holds any
//!    kept backup and has no step 4, so the same numbers keep fewer backups there.)
//! 4. A rule that runs out of backups before reaching its count also keeps the oldest backup of
//!    all (borg ≥ 1.2), so that the first backup ages on until newer ones replace it.
//!
//! Periods are wall-clock periods in the environment's time zone, as borg reads them in the
//! local zone of the machine it runs on. Daylight saving time follows: the spring-forward day is
//! 23 hours long, the fall-back day 25, and on the fall-back night the repeated hour is *one*
//! hourly period. `keep_last` is borg's "secondly" rule, so it, too, keeps one backup per
//! wall-clock second: two backups in the same second (or at the same wall-clock second on both
//! sides of a fall-back) count once, as borg's own help warns. A count of 0 is the same as no
//! rule, as in borg. Not taken from borg: minutely rules, negative ("unlimited") counts and
//! borg 2's quarterly rules.
//!
//! Steward adds three things borg does not know, each to make removal harder, never easier:
//!
//! - **Protected** backups (pinned by a person, the newest one proven restorable, the safety
//!   backup of a failed restore, one being restored right now) are never removed. They still
//!   take part in the rules exactly as borg would see them, so the unprotected backups that are
//!   kept are the very set borg would keep; a protected backup's verdict names the protection
//!   first and then, if any, the rule that would keep it anyway.
//! - **Safety** backups, taken before a restore, are not the environment's history and stay out
//!   of the rules altogether: they neither use up a period nor count. One is kept while younger
//!   than `keep_pre_restore_days` (a day being 24 hours), or while protected.
//! - A policy with no rule at all ([`Policy::is_empty`]) removes nothing, safety backups
//!   included: an empty or forgotten `[retention]` section must never mean "delete everything".
//!
//! Backups with equal timestamps are ordered by id, so every decision is deterministic. This
//! module only decides; removing files and rows is its caller's business.

use std::{fmt, str::FromStr};

use chrono::{DateTime, Datelike, NaiveDateTime, TimeZone, Timelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

/// `[environments.retention]`: which backups of an environment cleanup keeps.
///
/// Every backup that no rule keeps is removed. Without any rule nothing is removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The N newest backups (borg's `--keep-last`).
    pub keep_last: Option<u32>,
    /// The newest backup of each of the last N hours that have one.
    pub keep_hourly: Option<u32>,
    /// The newest backup of each of the last N days that have one.
    pub keep_daily: Option<u32>,
    /// The newest backup of each of the last N ISO weeks (Monday to Sunday) that have one.
    pub keep_weekly: Option<u32>,
    /// The newest backup of each of the last N months that have one.
    pub keep_monthly: Option<u32>,
    /// The newest backup of each of the last N years that have one.
    pub keep_yearly: Option<u32>,
    /// Everything newer than this, e.g. "2d", "36H", "1w", "6m", "1y": borg's units (H = hour,
    /// d = day, w = 7 days, m = 31 days, y = 365 days).
    pub keep_within: Option<KeepWithin>,
    /// Safety backups taken before restores are not subject to the rules above: each is kept
    /// this many days (default 14).
    #[serde(default = "default_keep_pre_restore_days")]
    pub keep_pre_restore_days: u32,
}

fn default_keep_pre_restore_days() -> u32 {
    14
}

/// Written by hand so that `Policy::default()` and an empty config section agree on the
/// 14 days of safety backups.
impl Default for Policy {
    fn default() -> Self {
        Policy {
            keep_last: None,
            keep_hourly: None,
            keep_daily: None,
            keep_weekly: None,
            keep_monthly: None,
            keep_yearly: None,
            keep_within: None,
            keep_pre_restore_days: default_keep_pre_restore_days(),
        }
    }
}

impl Policy {
    /// No rule at all (a count of 0 is no rule, as in borg): then nothing is removed, not even
    /// old safety backups, because an empty section must not read as "keep nothing".
    pub fn is_empty(&self) -> bool {
        self.keep_within.is_none() && Rule::ALL.iter().all(|&rule| self.count(rule) == 0)
    }

    /// The rules in words, in the order they are applied, for the console.
    pub fn describe(&self) -> Vec<String> {
        if self.is_empty() {
            return vec!["no retention rules: nothing is removed".to_string()];
        }
        let mut lines = Vec::new();
        if let Some(within) = self.keep_within {
            lines.push(format!("everything from the last {}", within.in_words()));
        }
        for rule in Rule::ALL {
            lines.push(match (rule, self.count(rule)) {
                (_, 0) => continue,
                (Rule::Last, 1) => "the newest backup".to_string(),
                (Rule::Last, n) => format!("the {n} newest backups"),
                (_, 1) => format!("the newest backup of the latest {} that has one", rule.unit()),
                (_, n) => format!(
                    "the newest backup of each of the last {n} {}s that have one",
                    rule.unit()
                ),
            });
        }
        if Rule::ALL.iter().any(|&rule| self.count(rule) > 0) {
            lines.push(
                "as in borg prune: a period whose newest backup is kept above does not count, and a rule \
                 that finds too few also keeps the oldest backup"
                    .to_string(),
            );
        }
        lines.push(format!(
            "safety backups before restores: {}",
            days(self.keep_pre_restore_days)
        ));
        lines
    }

    fn count(&self, rule: Rule) -> u32 {
        let n = match rule {
            Rule::Last => self.keep_last,
            Rule::Hourly => self.keep_hourly,
            Rule::Daily => self.keep_daily,
            Rule::Weekly => self.keep_weekly,
            Rule::Monthly => self.keep_monthly,
            Rule::Yearly => self.keep_yearly,
        };
        n.unwrap_or(0)
    }
}

/// `keep_within`: a whole number of borg's units, kept as written so that it reads back as
/// the administrator wrote it ("1w" stays "1w", not "168H").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeepWithin {
    amount: u32,
    unit: WithinUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WithinUnit {
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl WithinUnit {
    fn letter(self) -> char {
        match self {
            WithinUnit::Hours => 'H',
            WithinUnit::Days => 'd',
            WithinUnit::Weeks => 'w',
            WithinUnit::Months => 'm',
            WithinUnit::Years => 'y',
        }
    }

    /// borg's multipliers: a month is 31 days and a year 365, not calendar months and years.
    fn hours(self) -> u64 {
        match self {
            WithinUnit::Hours => 1,
            WithinUnit::Days => 24,
            WithinUnit::Weeks => 24 * 7,
            WithinUnit::Months => 24 * 31,
            WithinUnit::Years => 24 * 365,
        }
    }
}

impl KeepWithin {
    /// The interval in hours, as borg computes it.
    pub fn hours(&self) -> u64 {
        u64::from(self.amount) * self.unit.hours()
    }

    /// "2 days", "36 hours", "6 months (186 days)": months and years say how long they are,
    /// since they are not calendar months and years.
    pub fn in_words(&self) -> String {
        let n = self.amount;
        let plural = if n == 1 { "" } else { "s" };
        match self.unit {
            WithinUnit::Hours => format!("{n} hour{plural}"),
            WithinUnit::Days => format!("{n} day{plural}"),
            WithinUnit::Weeks => format!("{n} week{plural}"),
            WithinUnit::Months => format!("{n} month{plural} ({})", days(n.saturating_mul(31))),
            WithinUnit::Years => format!("{n} year{plural} ({})", days(n.saturating_mul(365))),
        }
    }

    /// Strictly younger than the interval, as in borg (`a.ts > now - interval`).
    fn holds(&self, created_at_ms: i64, now_ms: i64) -> bool {
        younger_than(created_at_ms, now_ms, i128::from(self.hours()) * 3_600_000)
    }
}

impl fmt::Display for KeepWithin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.amount, self.unit.letter())
    }
}

impl FromStr for KeepWithin {
    type Err = KeepWithinError;

    /// Stricter than borg's `int()`: digits only, no sign, spaces or underscores, and the unit
    /// letters exactly as borg spells them ("2D" and "36h" are refused, not guessed at).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let error = |problem| KeepWithinError {
            input: s.to_string(),
            problem,
        };
        let unit = match s.chars().last() {
            Some('H') => WithinUnit::Hours,
            Some('d') => WithinUnit::Days,
            Some('w') => WithinUnit::Weeks,
            Some('m') => WithinUnit::Months,
            Some('y') => WithinUnit::Years,
            _ => return Err(error(Problem::Form)),
        };
        let digits = &s[..s.len() - 1];
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(error(Problem::Form));
        }
        match digits.parse::<u32>() {
            Ok(0) => Err(error(Problem::Zero)),
            Ok(amount) => Ok(KeepWithin { amount, unit }),
            Err(_) => Err(error(Problem::TooLarge)),
        }
    }
}

impl TryFrom<String> for KeepWithin {
    type Error = KeepWithinError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<KeepWithin> for String {
    fn from(within: KeepWithin) -> String {
        within.to_string()
    }
}

/// A `keep_within` that is not a positive number followed by H, d, w, m or y.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeepWithinError {
    input: String,
    problem: Problem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Form,
    Zero,
    TooLarge,
}

impl fmt::Display for KeepWithinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let input = &self.input;
        match self.problem {
            Problem::Form => write!(
                f,
                "invalid keep_within {input:?}: must be a number followed by H, d, w, m or y (hours, days, \
                 weeks, months of 31 days, years of 365 days), e.g. \"2d\" or \"36H\""
            ),
            Problem::Zero => write!(f, "invalid keep_within {input:?}: the number must be greater than 0"),
            Problem::TooLarge => write!(f, "invalid keep_within {input:?}: the number is too large"),
        }
    }
}

impl std::error::Error for KeepWithinError {}

/// One backup as retention sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Handed back with the backup's verdict.
    pub id: String,
    /// When the backup was taken, Unix milliseconds. borg uses the start time too.
    pub created_at_ms: i64,
    /// A safety backup taken before a restore: out of the rules, kept for
    /// `keep_pre_restore_days`.
    pub safety: bool,
    /// Why it must never be removed, in words for the console, e.g. "pinned by alice: before
    /// the migration", "newest backup proven restorable", "being restored by job #40".
    pub protected: Option<String>,
}

/// What cleanup does with one backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Keep(Reason),
    Remove,
}

impl Verdict {
    pub fn is_keep(&self) -> bool {
        matches!(self, Verdict::Keep(_))
    }
}

/// Why a backup is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Never removed, for the reason given. `also` is what would keep it without the protection
    /// (borg's verdict, or the safety period); `None` means unprotecting it lets cleanup remove it.
    Protected { why: String, also: Option<Box<Reason>> },
    /// Younger than `keep_within`.
    Within(KeepWithin),
    /// The newest backup of its period: the `nth` kept by `rule`, which keeps `of`.
    Rule { rule: Rule, nth: u32, of: u32 },
    /// The oldest backup, kept because `rule` found fewer than `of` periods.
    Oldest { rule: Rule, of: u32 },
    /// A safety backup younger than this many days.
    SafetyWithinDays(u32),
    /// The policy has no rules, so nothing is removed.
    NoRules,
}

/// A counting rule, in the order borg applies them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rule {
    Last,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Rule {
    const ALL: [Rule; 6] = [
        Rule::Last,
        Rule::Hourly,
        Rule::Daily,
        Rule::Weekly,
        Rule::Monthly,
        Rule::Yearly,
    ];

    /// borg's strftime patterns as a comparable key: `%Y-%m-%d %H:%M:%S`, `%Y-%m-%d %H`,
    /// `%Y-%m-%d`, `%G-%V`, `%Y-%m`, `%Y`. Sub-second parts are dropped, as `%S` drops them.
    fn period(self, t: NaiveDateTime) -> (i32, u32, u32, u32, u32, u32) {
        match self {
            Rule::Last => (t.year(), t.month(), t.day(), t.hour(), t.minute(), t.second()),
            Rule::Hourly => (t.year(), t.month(), t.day(), t.hour(), 0, 0),
            Rule::Daily => (t.year(), t.month(), t.day(), 0, 0, 0),
            Rule::Weekly => (t.iso_week().year(), t.iso_week().week(), 0, 0, 0, 0),
            Rule::Monthly => (t.year(), t.month(), 0, 0, 0, 0),
            Rule::Yearly => (t.year(), 0, 0, 0, 0, 0),
        }
    }

    /// The period in words, for [`Policy::describe`].
    fn unit(self) -> &'static str {
        match self {
            Rule::Last => "second",
            Rule::Hourly => "hour",
            Rule::Daily => "day",
            Rule::Weekly => "week",
            Rule::Monthly => "month",
            Rule::Yearly => "year",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Rule::Last => "last",
            Rule::Hourly => "hourly",
            Rule::Daily => "daily",
            Rule::Weekly => "weekly",
            Rule::Monthly => "monthly",
            Rule::Yearly => "yearly",
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Protected { why, also: None } => f.write_str(why),
            Reason::Protected { why, also: Some(also) } => write!(f, "{why}; also {also}"),
            Reason::Within(within) => write!(f, "within {within}"),
            Reason::Rule { rule, nth, of } => write!(f, "{rule} {nth} of {of}"),
            Reason::Oldest { rule, of } => write!(f, "{rule} (oldest backup, the rule wants {of})"),
            Reason::SafetyWithinDays(n) => write!(f, "safety backup, younger than {}", days(*n)),
            Reason::NoRules => f.write_str("no retention rules"),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Keep(reason) => write!(f, "keep — {reason}"),
            Verdict::Remove => f.write_str("remove"),
        }
    }
}

/// A verdict for every backup, newest first (by `created_at_ms`, then by id, both descending),
/// with periods read in `tz` and `keep_within` and the safety period counted back from `now_ms`.
pub fn decide(policy: &Policy, tz: Tz, now_ms: i64, backups: &[Candidate]) -> Vec<(String, Verdict)> {
    let mut order: Vec<&Candidate> = backups.iter().collect();
    order.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));

    // Why each backup would be kept without its protection, by position in `order`.
    let mut kept: Vec<Option<Reason>> = vec![None; order.len()];
    if policy.is_empty() {
        kept.fill(Some(Reason::NoRules));
    } else {
        // The rules see the environment's history: every backup but the safety ones, newest
        // first, each with its wall-clock time in the environment's zone.
        let history: Vec<(usize, NaiveDateTime)> = order
            .iter()
            .enumerate()
            .filter(|(_, backup)| !backup.safety)
            .map(|(i, backup)| (i, local_time(tz, backup.created_at_ms)))
            .collect();
        if let Some(within) = policy.keep_within {
            for &(i, _) in &history {
                if within.holds(order[i].created_at_ms, now_ms) {
                    kept[i] = Some(Reason::Within(within));
                }
            }
        }
        for rule in Rule::ALL {
            keep_newest_per_period(rule, policy.count(rule), &history, &mut kept);
        }
        let safety_ms = i128::from(policy.keep_pre_restore_days) * 86_400_000;
        for (i, backup) in order.iter().enumerate() {
            if backup.safety && younger_than(backup.created_at_ms, now_ms, safety_ms) {
                kept[i] = Some(Reason::SafetyWithinDays(policy.keep_pre_restore_days));
            }
        }
    }

    order
        .into_iter()
        .zip(kept)
        .map(|(backup, reason)| {
            let verdict = match (&backup.protected, reason) {
                (Some(why), also) => Verdict::Keep(Reason::Protected {
                    why: why.clone(),
                    also: also.map(Box::new),
                }),
                (None, Some(reason)) => Verdict::Keep(reason),
                (None, None) => Verdict::Remove,
            };
            (backup.id.clone(), verdict)
        })
        .collect()
}

/// borg's `prune_split` for one rule over `history` (newest first); `kept` holds what earlier
/// steps kept and receives what this rule keeps.
fn keep_newest_per_period(rule: Rule, n: u32, history: &[(usize, NaiveDateTime)], kept: &mut [Option<Reason>]) {
    if n == 0 {
        return;
    }
    let mut last_period = None;
    let mut count = 0;
    for &(i, local) in history {
        let period = rule.period(local);
        if last_period == Some(period) {
            continue; // an older backup of a period already seen
        }
        last_period = Some(period);
        if kept[i].is_some() {
            continue; // the period's newest backup is kept already: it uses the period up
        }
        count += 1;
        kept[i] = Some(Reason::Rule {
            rule,
            nth: count,
            of: n,
        });
        if count == n {
            return;
        }
    }
    if let Some(&(oldest, _)) = history.last()
        && kept[oldest].is_none()
    {
        kept[oldest] = Some(Reason::Oldest { rule, of: n });
    }
}

/// Wall-clock time in `tz`. Timestamps beyond ±250,000 years (none is real) are clamped so
/// that chrono's range is never left; they still get a period, just not a meaningful one.
fn local_time(tz: Tz, ms: i64) -> NaiveDateTime {
    const LIMIT_MS: i64 = 250_000 * 366 * 86_400_000;
    let utc = DateTime::from_timestamp_millis(ms.clamp(-LIMIT_MS, LIMIT_MS)).unwrap_or_default();
    tz.from_utc_datetime(&utc.naive_utc()).naive_local()
}

/// `created_at_ms > now_ms - span_ms`, in i128 so that no interval or clock overflows.
fn younger_than(created_at_ms: i64, now_ms: i64, span_ms: i128) -> bool {
    i128::from(created_at_ms) > i128::from(now_ms) - span_ms
}

fn days(n: u32) -> String {
    if n == 1 {
        "1 day".to_string()
    } else {
        format!("{n} days")
    }
}

#[cfg(test)]
mod tests;
