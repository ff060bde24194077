//! Schedules: what Steward does on its own, at the times a cron expression names.
//!
//! Every instance runs [`Engine::run_scheduler`], which wakes each second and, for every
//! configured schedule, looks for a **fire time that passed** since the schedule's last slot
//! (or since it was first seen or resumed). It claims that slot by inserting its row
//! (`schedule_slot`, keyed by environment, schedule and fire time): the first instance to
//! insert it has it, so two instances on one PostgreSQL never both run a slot. The job it
//! queues carries the slot's key as well (`job.slot_key`, unique), so a slot that is retried —
//! by its instance or by another one after a crash — is never queued twice.
//!
//! **Missed slots**: after downtime only the latest fire time that passed runs, once; the ones
//! before it are counted on its row ("missed 3 runs from 02:00 while Steward was not running;
//! ran once at 07:14"), and a slot claimed more than [`LATE_AFTER_MS`] after its time says it
//! ran late.
//!
//! **Busy**: a slot whose job needs the environment's exclusive slot while another job holds
//! it waits (`waiting`, naming the job in the way) and is retried each second by any instance,
//! until `busy_wait_minutes` after its fire time; then it is recorded as `skipped` with that
//! job, and audited.
//!
//! The cron expression is read in the environment's time zone by `croner`, which follows
//! Vixie cron at daylight-saving changes: a fixed time that does not exist (02:30 on the night
//! clocks go forward) runs at the first time after the gap, a fixed time that happens twice
//! runs once (the first), and interval patterns (`*/5 …`) run by the wall clock.

pub use crate::text::local;
use chrono::TimeZone;
pub use chrono_tz::Tz;

mod alerts;
use serde_json::json;

use crate::{
    Engine,
    accounts::Actor,
    audit::{self, Outcome},
    config::{Environment, Schedule, ScheduledWork},
    db::{
        jobs as job_rows, now_ms,
        schedules::{self as rows, SlotRow, StateRow},
    },
    jobs::{Job, JobError, JobRequest, JobSpec, JobState},
    kinds::{backup::Backup, command::Command, prune::Prune},
    manifest::{Trigger, new_backup_id},
    text::MAX_REASON_CHARS,
};

/// A slot claimed this long after its fire time ran late: Steward was not running (or not
/// scheduling) at the time.
pub const LATE_AFTER_MS: i64 = 60_000;

/// How many missed fire times are counted at most (a per-second schedule after a week down
/// would otherwise be counted one by one).
const MAX_MISSED_COUNTED: usize = 10_000;

/// How often the scheduler looks for due slots.
const TICK: std::time::Duration = std::time::Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    #[error("{environment} has no schedule \"{name}\"")]
    Unknown { environment: String, name: String },
    #[error("the schedule {environment}/{name} is already paused")]
    AlreadyPaused { environment: String, name: String },
    #[error("the schedule {environment}/{name} is not paused")]
    NotPaused { environment: String, name: String },
    #[error("a reason is required: say why the schedule is paused or resumed")]
    ReasonRequired,
    #[error("the reason is too long ({0} characters; at most {MAX_REASON_CHARS})")]
    ReasonTooLong(usize),
    #[error("{0}")]
    Job(#[from] JobError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

/// A schedule as the console and the CLI show it.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleStatus {
    pub environment: String,
    pub name: String,
    pub what: String,
    pub cron: String,
    pub timezone: String,
    pub paused: Option<Pause>,
    /// The next fire times (Unix milliseconds); none while paused.
    pub next: Vec<i64>,
    /// The latest slots, newest first.
    pub recent: Vec<Slot>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pause {
    pub at_ms: i64,
    pub by: String,
    pub reason: String,
}

/// What happened at one fire time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    pub fire_at_ms: i64,
    pub state: SlotState,
    /// Earlier fire times that passed while no instance ran, and the first of them.
    pub missed: u64,
    pub missed_first_ms: Option<i64>,
    pub claimed_at_ms: i64,
    pub started_at_ms: Option<i64>,
    /// The job it ran, with that job's state now.
    pub job: Option<(i64, JobState)>,
    /// The job that held the environment while it waited.
    pub blocked_by: Option<i64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotState {
    Due,
    Waiting,
    Started,
    Skipped,
    Failed,
}

impl SlotState {
    fn parse(s: &str) -> SlotState {
        match s {
            "waiting" => SlotState::Waiting,
            "started" => SlotState::Started,
            "skipped" => SlotState::Skipped,
            "failed" => SlotState::Failed,
            _ => SlotState::Due,
        }
    }
}

impl Slot {
    fn from_row(row: SlotRow, job: Option<(i64, JobState)>) -> Slot {
        Slot {
            fire_at_ms: row.fire_at,
            state: SlotState::parse(&row.state),
            missed: u64::try_from(row.missed).unwrap_or(0),
            missed_first_ms: row.missed_first,
            claimed_at_ms: row.claimed_at,
            started_at_ms: row.started_at,
            job,
            blocked_by: row.blocked_by,
            note: row.note,
        }
    }

    /// What happened, in words, with times in `tz`: "ran as job #12", "missed 02:00 while
    /// Steward was not running; ran at 07:14 as job #12", "skipped: prod is busy: …".
    pub fn summary(&self, tz: Tz) -> String {
        let at = |ms: i64| local(ms, tz, "%H:%M");
        let mut words = Vec::new();
        if self.missed > 0 {
            let first = self.missed_first_ms.map(at).unwrap_or_default();
            let runs = if self.missed == 1 {
                format!("missed {first}")
            } else {
                let counted = if self.missed as usize >= MAX_MISSED_COUNTED {
                    "more than "
                } else {
                    ""
                };
                format!("missed {counted}{} runs from {first}", self.missed)
            };
            words.push(format!("{runs} while Steward was not running"));
        } else if self.claimed_at_ms - self.fire_at_ms > LATE_AFTER_MS {
            words.push(format!("missed {} while Steward was not running", at(self.fire_at_ms)));
        }
        let late = self.missed > 0 || self.claimed_at_ms - self.fire_at_ms > LATE_AFTER_MS;
        match (self.state, self.job) {
            (SlotState::Started, Some((id, state))) => {
                let ran = match self.started_at_ms {
                    Some(started) if late || started - self.fire_at_ms > LATE_AFTER_MS => {
                        format!(
                            "ran {}at {} as job #{id}",
                            if self.missed > 0 { "once " } else { "" },
                            at(started)
                        )
                    }
                    _ => format!("ran as job #{id}"),
                };
                words.push(format!("{ran} ({})", state.as_str()));
            }
            (SlotState::Started, None) => words.push("ran".to_string()),
            (SlotState::Due, _) => words.push("starting".to_string()),
            (SlotState::Waiting, _) => words.push(match self.blocked_by {
                Some(id) => format!("waiting for job #{id} to end"),
                None => "waiting for the environment".to_string(),
            }),
            (SlotState::Skipped | SlotState::Failed, _) => {
                let state = if self.state == SlotState::Skipped {
                    "skipped"
                } else {
                    "failed"
                };
                words.push(match &self.note {
                    Some(note) => format!("{state}: {note}"),
                    None => state.to_string(),
                });
            }
        }
        let mut text = words.join("; ");
        if let Some(first) = text.get(..1) {
            text = first.to_uppercase() + &text[1..];
        }
        text
    }
}

/// The fire time a schedule should run now, if any: the latest one in `(after_ms, now_ms]`,
/// with how many earlier ones in that range were missed and the first of those.
pub(crate) fn due(cron: &croner::Cron, tz: Tz, after_ms: i64, now_ms: i64) -> Option<(i64, u64, Option<i64>)> {
    let now = tz.timestamp_millis_opt(now_ms).single()?;
    let latest = cron.find_previous_occurrence(&now, true).ok()?;
    let latest_ms = latest.timestamp_millis();
    if latest_ms <= after_ms {
        return None;
    }
    let after = tz.timestamp_millis_opt(after_ms).single()?;
    let mut missed = 0u64;
    let mut first = None;
    for time in cron.iter_after(after).take(MAX_MISSED_COUNTED) {
        if time >= latest {
            break;
        }
        missed += 1;
        first.get_or_insert(time.timestamp_millis());
    }
    Some((latest_ms, missed, first))
}

/// The next `count` fire times after `now_ms`.
pub fn next_fire_times(schedule: &Schedule, tz: Tz, now_ms: i64, count: usize) -> Vec<i64> {
    let (Ok(cron), Some(now)) = (schedule.cron(), tz.timestamp_millis_opt(now_ms).single()) else {
        return Vec::new();
    };
    cron.iter_after(now).take(count).map(|t| t.timestamp_millis()).collect()
}

fn minutes(n: u32) -> String {
    if n == 1 {
        "1 minute".to_string()
    } else {
        format!("{n} minutes")
    }
}

/// Who requests a schedule's jobs, in the audit log and on the job.
fn actor_of(name: &str) -> Actor {
    Actor {
        username: Some(format!("schedule:{name}")),
        client_ip: None,
    }
}

fn slot_key(slot: &SlotRow) -> String {
    format!("{}/{}/{}", slot.environment, slot.schedule, slot.fire_at)
}

/// The job a run of `schedule` requests (a verification chooses its backups now, as
/// `steward verify ENV --count N` does).
async fn request_of(
    engine: &Engine,
    environment: &Environment,
    name: &str,
    schedule: &Schedule,
) -> Result<JobRequest, String> {
    let spec = match schedule.work()? {
        ScheduledWork::Backup => JobSpec::new(Backup {
            backup_id: new_backup_id(&environment.name, now_ms()),
            description: schedule
                .description
                .clone()
                .unwrap_or_else(|| format!("Scheduled backup ({name})")),
            trigger: Trigger::Scheduled,
        }),
        ScheduledWork::Verify => JobSpec::new(
            engine
                .verification_of(&environment.name, schedule.count.unwrap_or(1))
                .await
                .map_err(|e| e.to_string())?,
        ),
        ScheduledWork::Prune => JobSpec::new(Prune { dry_run: false }),
        ScheduledWork::Action(action) => JobSpec::new(Command { action }),
    };
    Ok(JobRequest {
        environment: environment.name.clone(),
        spec,
        reason: format!("schedule {name} ({})", schedule.cron),
        parent_id: None,
    })
}

impl Engine {
    /// Runs the scheduler until `stop` is cancelled: each second, claims and starts the slots
    /// that are due (see the module's documentation). `instance` names this instance on the
    /// slots it claims.
    pub async fn run_scheduler(&self, instance: String, stop: tokio_util::sync::CancellationToken) {
        let schedules: usize = self.config().environments.iter().map(|e| e.schedules.len()).sum();
        if schedules == 0 {
            return;
        }
        tracing::info!(schedules, "scheduler started");
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.schedule_tick(&instance, now_ms()).await {
                tracing::warn!("scheduler: {e}");
            }
        }
    }

    /// One look at every schedule at time `now`: claims due slots and starts (or retries) the
    /// open ones.
    pub async fn schedule_tick(&self, instance: &str, now: i64) -> Result<(), ScheduleError> {
        for environment in &self.config().environments {
            for (name, schedule) in &environment.schedules {
                let state = {
                    let mut conn = self.db().pool().acquire().await?;
                    rows::ensure_state(&mut conn, &environment.name, name, now).await?
                };
                if state.paused_at.is_some() {
                    continue;
                }
                let Ok(cron) = schedule.cron() else { continue };
                let last = rows::last_fire(self.db().pool(), &environment.name, name).await?;
                let after = last.unwrap_or(i64::MIN).max(state.since);
                if let Some((fire_at, missed, missed_first)) = due(&cron, environment.tz(), after, now) {
                    let slot = SlotRow {
                        environment: environment.name.clone(),
                        schedule: name.clone(),
                        fire_at,
                        state: "due".into(),
                        missed: i64::try_from(missed).unwrap_or(i64::MAX),
                        missed_first,
                        claimed_by: instance.to_string(),
                        claimed_at: now,
                        started_at: None,
                        job_id: None,
                        blocked_by: None,
                        note: None,
                    };
                    if rows::claim(self.db().pool(), &slot).await? && (missed > 0 || now - fire_at > LATE_AFTER_MS) {
                        let mut tx = self.db().begin_write().await?;
                        audit::record(
                            &mut *tx,
                            &actor_of(name)
                                .event(
                                    "schedule.missed",
                                    Some(&format!("{}/{name}", environment.name)),
                                    Outcome::Ok,
                                )
                                .with_detail(json!({
                                    "environment": environment.name,
                                    "fire_at": fire_at,
                                    "missed": missed,
                                    "missed_first": missed_first,
                                })),
                        )
                        .await?;
                        if schedule.work() == Ok(ScheduledWork::Backup) {
                            let missed = i64::try_from(missed).unwrap_or(i64::MAX);
                            alerts::backup_slot_missed(&mut tx, self, &environment.name, name, fire_at, missed).await?;
                        }
                        tx.commit().await?;
                    }
                }
            }
        }
        for slot in rows::open_slots(self.db().pool()).await? {
            self.start_slot(slot, now).await?;
        }
        for (slot, job_state) in rows::ended_unfollowed(self.db().pool()).await? {
            self.follow_up(&slot, &job_state, now).await?;
        }
        Ok(())
    }

    /// After a scheduled backup succeeded: the environment's retention rules are applied by a
    /// prune job, queued once (its slot key is the backup slot's with `/prune`). While the
    /// environment is busy it is tried again each tick, for `busy_wait_minutes`.
    async fn follow_up(&self, slot: &SlotRow, job_state: &str, now: i64) -> Result<(), ScheduleError> {
        let configured = self
            .config()
            .environment(&slot.environment)
            .and_then(|env| env.schedules.get(&slot.schedule).map(|schedule| (env, schedule)));
        let wanted = configured.filter(|(env, schedule)| {
            job_state == "succeeded"
                && schedule.prune_after
                && env.retention.is_some()
                && schedule.work() == Ok(ScheduledWork::Backup)
        });
        let Some((_, schedule)) = wanted else {
            rows::set_followed_up(self.db().pool(), slot).await?;
            return Ok(());
        };
        let request = JobRequest {
            environment: slot.environment.clone(),
            spec: JobSpec::new(Prune { dry_run: false }),
            reason: format!(
                "retention after the scheduled backup (job #{})",
                slot.job_id.unwrap_or(0)
            ),
            parent_id: slot.job_id,
        };
        let key = format!("{}/prune", slot_key(slot));
        if let Some(holder) = job_rows::holder(self.db().pool(), &slot.environment).await? {
            let window_ms = i64::from(schedule.busy_wait_minutes) * 60_000;
            if now < slot.fire_at + window_ms {
                return Ok(());
            }
            let why = format!(
                "retention was not applied after the scheduled backup: {} held {} for {}",
                Job::from(holder).title(),
                slot.environment,
                minutes(schedule.busy_wait_minutes)
            );
            tracing::warn!(environment = %slot.environment, schedule = %slot.schedule, "{why}");
            let mut tx = self.db().begin_write().await?;
            rows::set_followed_up(&mut *tx, slot).await?;
            audit::record(
                &mut *tx,
                &actor_of(&slot.schedule)
                    .event(
                        "schedule.skip",
                        Some(&format!("{}/{}", slot.environment, slot.schedule)),
                        Outcome::Failed,
                    )
                    .with_detail(json!({ "environment": slot.environment, "fire_at": slot.fire_at, "why": why })),
            )
            .await?;
            tx.commit().await?;
            return Ok(());
        }
        match self.request_slot_job(&actor_of(&slot.schedule), request, &key).await {
            Ok(_) => rows::set_followed_up(self.db().pool(), slot).await?,
            Err(JobError::Busy(_)) => {}
            Err(e) => {
                tracing::warn!(environment = %slot.environment, "retention after the scheduled backup: {e}");
                rows::set_followed_up(self.db().pool(), slot).await?;
            }
        }
        Ok(())
    }

    /// Starts the job of an open slot, or records why it waits, was skipped or failed.
    async fn start_slot(&self, slot: SlotRow, now: i64) -> Result<(), ScheduleError> {
        let configured = self
            .config()
            .environment(&slot.environment)
            .and_then(|env| env.schedules.get(&slot.schedule).map(|schedule| (env, schedule)));
        let Some((environment, schedule)) = configured else {
            self.end_slot(&slot, "failed", None, "the schedule is no longer configured")
                .await?;
            return Ok(());
        };
        let paused = rows::is_paused(self.db().pool(), &slot.environment, &slot.schedule).await?;
        if paused {
            self.end_slot(&slot, "skipped", None, "the schedule was paused").await?;
            return Ok(());
        }
        let request = match request_of(self, environment, &slot.schedule, schedule).await {
            Ok(request) => request,
            Err(why) => return self.end_slot(&slot, "failed", None, &why).await,
        };
        // A job that needs the environment while another holds it is not even requested (each
        // refused request would be audited, once a second).
        let plan = match self.plan(&slot.environment, &request.spec).await {
            Ok(plan) => plan,
            Err(e) => return self.end_slot(&slot, "failed", None, &e.to_string()).await,
        };
        if plan.exclusive
            && let Some(holder) = job_rows::holder(self.db().pool(), &slot.environment).await?
        {
            let holder = Job::from(holder);
            return self.slot_busy(&slot, schedule, &holder, now).await;
        }
        match self
            .request_slot_job(&actor_of(&slot.schedule), request, &slot_key(&slot))
            .await
        {
            Ok(job) => {
                rows::set_started(self.db().pool(), &slot, job.id, now).await?;
                Ok(())
            }
            Err(JobError::Busy(busy)) => match self.job(busy.job_id).await? {
                Some(holder) => self.slot_busy(&slot, schedule, &holder, now).await,
                None => Ok(()),
            },
            Err(e) => self.end_slot(&slot, "failed", None, &e.to_string()).await,
        }
    }

    async fn slot_busy(
        &self,
        slot: &SlotRow,
        schedule: &Schedule,
        holder: &Job,
        now: i64,
    ) -> Result<(), ScheduleError> {
        let window_ms = i64::from(schedule.busy_wait_minutes) * 60_000;
        if now < slot.fire_at + window_ms {
            rows::set_waiting(self.db().pool(), slot, Some(holder.id)).await?;
            return Ok(());
        }
        let note = format!(
            "{} was busy with {} (requested by {}) for {}",
            slot.environment,
            holder.title(),
            holder.requested_by,
            minutes(schedule.busy_wait_minutes)
        );
        self.end_slot(slot, "skipped", Some(holder.id), &note).await
    }

    /// Ends a slot without a job, audited once (whichever instance gets there first).
    async fn end_slot(
        &self,
        slot: &SlotRow,
        state: &str,
        blocked_by: Option<i64>,
        note: &str,
    ) -> Result<(), ScheduleError> {
        let mut tx = self.db().begin_write().await?;
        if rows::set_ended(&mut *tx, slot, state, blocked_by, note).await? {
            let action = if state == "skipped" {
                "schedule.skip"
            } else {
                "schedule.fail"
            };
            audit::record(
                &mut *tx,
                &actor_of(&slot.schedule)
                    .event(
                        action,
                        Some(&format!("{}/{}", slot.environment, slot.schedule)),
                        Outcome::Failed,
                    )
                    .with_detail(json!({
                        "environment": slot.environment,
                        "fire_at": slot.fire_at,
                        "blocked_by": blocked_by,
                        "why": note,
                    })),
            )
            .await?;
            let is_backup = self
                .config()
                .environment(&slot.environment)
                .and_then(|env| env.schedules.get(&slot.schedule))
                .is_some_and(|schedule| schedule.work() == Ok(ScheduledWork::Backup));
            if is_backup {
                alerts::backup_slot_skipped(&mut tx, self, &slot.environment, &slot.schedule, slot.fire_at, note)
                    .await?;
            }
            tracing::warn!(environment = %slot.environment, schedule = %slot.schedule, "scheduled run {state}: {note}");
        }
        tx.commit().await?;
        Ok(())
    }

    /// The configured schedules with their state, next fire times and latest slots; of one
    /// environment, or of all.
    pub async fn schedules(&self, environment: Option<&str>) -> Result<Vec<ScheduleStatus>, ScheduleError> {
        let states = rows::states(self.db().pool()).await?;
        let now = now_ms();
        let mut all = Vec::new();
        for env in &self.config().environments {
            if environment.is_some_and(|name| name != env.name) {
                continue;
            }
            for (name, schedule) in &env.schedules {
                let state = states.iter().find(|s| s.environment == env.name && &s.schedule == name);
                let paused = state.and_then(pause_of);
                let mut recent = Vec::new();
                for row in rows::recent(self.db().pool(), &env.name, name, 10).await? {
                    let job = match row.job_id {
                        Some(id) => self.job(id).await?.map(|job| (job.id, job.state)),
                        None => None,
                    };
                    recent.push(Slot::from_row(row, job));
                }
                all.push(ScheduleStatus {
                    environment: env.name.clone(),
                    name: name.clone(),
                    what: schedule.what.clone(),
                    cron: schedule.cron.clone(),
                    timezone: env.timezone.clone(),
                    next: if paused.is_some() {
                        Vec::new()
                    } else {
                        next_fire_times(schedule, env.tz(), now, 3)
                    },
                    paused,
                    recent,
                });
            }
        }
        Ok(all)
    }

    fn configured_schedule(&self, environment: &str, name: &str) -> Result<(&Environment, &Schedule), ScheduleError> {
        self.config()
            .environment(environment)
            .and_then(|env| env.schedules.get(name).map(|schedule| (env, schedule)))
            .ok_or_else(|| ScheduleError::Unknown {
                environment: environment.to_string(),
                name: name.to_string(),
            })
    }

    /// Pauses a schedule: no slot of it runs until it is resumed. Audited.
    pub async fn pause_schedule(
        &self,
        actor: &Actor,
        environment: &str,
        name: &str,
        reason: &str,
    ) -> Result<(), ScheduleError> {
        self.set_schedule_paused(actor, environment, name, reason, true).await
    }

    /// Resumes a paused schedule from now on: the fire times it skipped while paused are not
    /// caught up. Audited.
    pub async fn resume_schedule(
        &self,
        actor: &Actor,
        environment: &str,
        name: &str,
        reason: &str,
    ) -> Result<(), ScheduleError> {
        self.set_schedule_paused(actor, environment, name, reason, false).await
    }

    async fn set_schedule_paused(
        &self,
        actor: &Actor,
        environment: &str,
        name: &str,
        reason: &str,
        pause: bool,
    ) -> Result<(), ScheduleError> {
        self.configured_schedule(environment, name)?;
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(ScheduleError::ReasonRequired);
        }
        let chars = reason.chars().count();
        if chars > MAX_REASON_CHARS {
            return Err(ScheduleError::ReasonTooLong(chars));
        }
        let now = now_ms();
        {
            let mut conn = self.db().pool().acquire().await?;
            rows::ensure_state(&mut conn, environment, name, now).await?;
        }
        let by = actor.username.as_deref().unwrap_or("steward");
        let mut tx = self.db().begin_write().await?;
        let changed = rows::set_paused(&mut *tx, environment, name, pause.then_some((now, by, reason)), now).await?;
        if !changed {
            tx.rollback().await?;
            let (environment, name) = (environment.to_string(), name.to_string());
            return Err(if pause {
                ScheduleError::AlreadyPaused { environment, name }
            } else {
                ScheduleError::NotPaused { environment, name }
            });
        }
        let action = if pause { "schedule.pause" } else { "schedule.resume" };
        audit::record(
            &mut *tx,
            &actor
                .event(action, Some(&format!("{environment}/{name}")), Outcome::Ok)
                .with_detail(json!({ "environment": environment, "reason": reason })),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Runs a schedule's job now, requested by `actor` (not a slot: the schedule's own times
    /// are unaffected). Audited as `schedule.run` and, like every job, `job.request`.
    pub async fn run_schedule_now(&self, actor: &Actor, environment: &str, name: &str) -> Result<Job, ScheduleError> {
        let (env, schedule) = self.configured_schedule(environment, name)?;
        let mut request = request_of(self, env, name, schedule).await.map_err(JobError::Refused)?;
        request.reason = format!("run now: schedule {name}");
        let job = self.request_job(actor, request).await?;
        let mut tx = self.db().begin_write().await?;
        audit::record(
            &mut *tx,
            &actor
                .event("schedule.run", Some(&format!("{environment}/{name}")), Outcome::Ok)
                .with_detail(json!({ "environment": environment, "job": job.id })),
        )
        .await?;
        tx.commit().await?;
        Ok(job)
    }
}

fn pause_of(state: &StateRow) -> Option<Pause> {
    Some(Pause {
        at_ms: state.paused_at?,
        by: state.paused_by.clone().unwrap_or_default(),
        reason: state.pause_reason.clone().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
