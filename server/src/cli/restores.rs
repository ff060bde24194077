//! `steward restore BACKUP_ID --reason "…"` and `steward restore --undo JOB_ID --reason "…"`:
//! a restore as a person asks for it on a terminal.
//!
//! The command prints the preview in plain words first (what is restored, what is lost, that a
//! safety backup is taken first and the environment is in maintenance meanwhile), then asks the
//! person to type the environment's name — and, for a production environment, to confirm a
//! second time. `--yes` answers both for scripts; without a terminal and without `--yes` the
//! command refuses rather than restore unasked. The engine checks the confirmations again and
//! audits what it refuses; the workers of `steward serve` do the work, which `--follow` prints.

use std::io::{IsTerminal, Write};

use anyhow::anyhow;
use clap::Args;
use engine::{
    Engine,
    accounts::Actor,
    db::now_ms,
    jobs::{Job, JobError, JobState},
    kinds::restore::Restore,
    restores::{RestoreError, RestorePreview, RestoreRequest},
    text::human_bytes,
};

use super::{
    jobs::{explain, follow},
    open_engine,
};

/// What a person types to confirm a restore of a production environment a second time.
const SECOND_CONFIRMATION: &str = "yes";

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup to restore, e.g. `prod-20261121-0102-7f3a` (`steward backup list ENV` lists
    /// them). Its environment is the one restored.
    #[arg(value_name = "BACKUP_ID", required_unless_present = "undo", conflicts_with = "undo")]
    pub backup_id: Option<String>,
    /// Undo a failed, cancelled or interrupted restore instead: restore the safety backup it
    /// took before it touched anything.
    #[arg(long, value_name = "JOB_ID")]
    pub undo: Option<i64>,
    /// Why the environment is restored: kept with the job and in the audit log.
    #[arg(long, short, value_parser = non_blank)]
    pub reason: String,
    /// Print the job's log until it ends; exit code 0 only if the restore succeeded.
    #[arg(long, short)]
    pub follow: bool,
    /// Do not ask for the environment's name (nor, for production, the second confirmation):
    /// for scripts, and needed whenever standard input is not a terminal.
    #[arg(long, short)]
    pub yes: bool,
}

/// `--reason ""` is refused by clap, before anything is looked up.
fn non_blank(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        Err("say why the environment is restored".into())
    } else {
        Ok(s.to_string())
    }
}

/// What the person confirmed.
struct Confirmation {
    /// The environment's name as typed.
    environment: String,
    /// Production: the second confirmation.
    production: bool,
}

pub(super) async fn restore(config: engine::Config, args: RestoreArgs) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let result = restore_or_undo(&engine, args).await;
    engine.db().close().await;
    result
}

async fn restore_or_undo(engine: &Engine, args: RestoreArgs) -> anyhow::Result<()> {
    let (backup_id, undo_of) = match args.undo {
        Some(job_id) => (safety_backup_of(engine, job_id).await?, Some(job_id)),
        None => (args.backup_id.clone().unwrap_or_default(), None),
    };
    let preview = engine
        .restore_preview(&backup_id)
        .await
        .map_err(|e| explain_restore(engine, e))?;
    print_preview(&preview, undo_of, now_ms());
    let env = &preview.environment;

    let confirmation = if args.yes {
        Confirmation {
            environment: env.name.clone(),
            production: true,
        }
    } else if !std::io::stdin().is_terminal() {
        return Err(anyhow!(
            "standard input is not a terminal, so nobody can type the environment's name to confirm the restore of {}: nothing was restored. Pass --yes to restore without being asked",
            env.name
        ));
    } else {
        // Asking someone to type a name for a request that would be refused wastes their time.
        // The engine still has the last word, and audits its refusals, for requests made.
        if let Some(busy) = &preview.busy {
            return Err(anyhow!("{busy}"));
        }
        if !preview.problems.is_empty() {
            return Err(RestoreError::CannotRestore(preview.problems.join("; ")).into());
        }
        ask(&env.name, env.production).await?
    };

    let actor = Actor::cli();
    let job = match undo_of {
        None => {
            let request = RestoreRequest {
                backup_id: backup_id.clone(),
                reason: args.reason.clone(),
                confirm_environment: confirmation.environment,
                confirm_production: confirmation.production,
            };
            engine.request_restore(&actor, &request).await
        }
        // An Undo needs no confirmation from the engine (the console's button is one); here
        // it is a restore typed on a terminal like any other, so it is confirmed the same way.
        Some(job_id) => {
            if confirmation.environment.trim() != env.name {
                return Err(RestoreError::NotConfirmed(env.name.clone()).into());
            }
            if env.production && !confirmation.production {
                return Err(RestoreError::ProductionNotConfirmed(env.name.clone()).into());
            }
            engine.request_undo(&actor, job_id, &args.reason).await
        }
    }
    .map_err(|e| explain_restore(engine, e))?;

    let safety = safety_backup_id(&job).unwrap_or_default();
    let what = match undo_of {
        Some(failed) => format!("{} of restore #{failed} (backup {backup_id})", job.title()),
        None => format!("{} of backup {backup_id}", job.title()),
    };
    if !args.follow {
        println!(
            "Queued {what} into {}; the safety backup will be {safety}. Follow it with `steward job log {} --follow`.",
            env.name, job.id
        );
        return Ok(());
    }
    println!(
        "Queued {what} into {}; the safety backup will be {safety}. Following its log (Ctrl-C stops following, not the restore).",
        env.name
    );
    let job = follow(engine, job.id).await?;
    restore_outcome(engine, &job).await
}

/// The safety backup of restore `job_id`, which an Undo restores. The engine checks the rest
/// (the restore's state, an earlier Undo) when the Undo is requested.
async fn safety_backup_of(engine: &Engine, job_id: i64) -> anyhow::Result<String> {
    let job = engine.job(job_id).await?.ok_or(JobError::NotFound(job_id))?;
    let safety = safety_backup_id(&job).ok_or(RestoreError::NotARestore(job_id))?;
    if engine.backup(&safety).await?.is_none() {
        return Err(RestoreError::NoSafetyBackup {
            job: job_id,
            safety_backup: safety,
        }
        .into());
    }
    Ok(safety)
}

fn safety_backup_id(job: &Job) -> Option<String> {
    let restore = job.spec.as_ref()?.get::<Restore>()?;
    Some(restore.safety_backup_id.clone())
}

/// The preview, as the restore page shows it, in words.
fn print_preview(preview: &RestorePreview, undo_of: Option<i64>, now: i64) {
    let backup = &preview.backup;
    let env = &preview.environment;
    let name = &env.name;
    let taken = app::format::utc(backup.created_at_ms);
    let age = app::format::elapsed(backup.created_at_ms, now);
    match undo_of {
        Some(failed) => println!(
            "Undo restore #{failed}: restore {name} ({}) to its safety backup {}",
            env.label, backup.id
        ),
        None => println!("Restore {name} ({}) to backup {}", env.label, backup.id),
    }
    let by = match backup.description.as_str() {
        "" => format!("{} by {}", backup.trigger, backup.requested_by),
        description => format!("{} by {}: {description}", backup.trigger, backup.requested_by),
    };
    println!("  taken:         {taken}, {age} ago ({by})");
    println!("  size:          {}", human_bytes(backup.total_size));
    let resources: Vec<String> = backup
        .manifest
        .artifacts
        .iter()
        .map(|a| format!("{} ({})", a.resource, a.driver))
        .collect();
    println!("  resources:     {}", resources.join(", "));
    if !preview.not_in_backup.is_empty() {
        println!(
            "  not in it:     {} (left as they are)",
            preview.not_in_backup.join(", ")
        );
    }
    let checks = match preview.smoke_checks.as_slice() {
        [] => "none".to_string(),
        checks => checks.join(", "),
    };
    println!("  smoke checks:  {checks}");
    println!();
    if env.production {
        println!("{name} is a PRODUCTION environment.");
    }
    println!("Everything that changed in {name} since {taken} ({age} ago) will be lost.");
    println!("A safety backup of {name} as it is now is taken first; {name} is in maintenance meanwhile.");
    if let Some(current) = &preview.maintenance {
        let entered_by = match current.job_id {
            Some(id) => format!("restore #{id}"),
            None => current.entered_by.clone(),
        };
        let after = if current.job_id.is_some() {
            "the restore leaves it when it succeeds"
        } else {
            "it stays in maintenance afterwards, as it was put there by hand"
        };
        println!(
            "{name} is already in maintenance (since {}, entered by {entered_by}: {}); {after}.",
            app::format::utc(current.since_ms),
            current.reason
        );
    }
    if let Some(busy) = &preview.busy {
        println!("{busy}");
    }
    for problem in &preview.problems {
        println!("Cannot be restored: {problem}");
    }
    let _ = std::io::stdout().flush();
}

/// Asks for the environment's name, and for production a second confirmation.
async fn ask(name: &str, production: bool) -> anyhow::Result<Confirmation> {
    let environment = prompt(format!("\nType the environment's name, {name}, to restore it: ")).await?;
    let production = if production && environment.trim() == name {
        let answer = prompt(format!(
            "{name} is production. Type {SECOND_CONFIRMATION} to confirm a second time: "
        ))
        .await?;
        answer.trim() == SECOND_CONFIRMATION
    } else {
        false
    };
    Ok(Confirmation {
        environment,
        production,
    })
}

/// Prints `question` and reads one line from the terminal (empty at end of input).
async fn prompt(question: String) -> anyhow::Result<String> {
    let line = tokio::task::spawn_blocking(move || -> std::io::Result<String> {
        let mut out = std::io::stdout().lock();
        out.write_all(question.as_bytes())?;
        out.flush()?;
        drop(out);
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    })
    .await??;
    Ok(line)
}

/// A refused restore in words, with where to look when the id was wrong.
fn explain_restore(engine: &Engine, e: RestoreError) -> anyhow::Error {
    match e {
        RestoreError::NotFound(id) => anyhow!("there is no backup \"{id}\" (`steward backup list ENV` lists them)"),
        RestoreError::Job(e) => explain(engine, e),
        other => other.into(),
    }
}

/// The exit code of a followed restore. A failed one says, beside the error, what state the
/// environment is in and what brings it back.
async fn restore_outcome(engine: &Engine, job: &Job) -> anyhow::Result<()> {
    if job.state == JobState::Succeeded {
        return Ok(());
    }
    let name = &job.environment;
    let mut message = format!(
        "{} {}: {}",
        job.title(),
        job.state,
        job.error.as_deref().unwrap_or("no reason was recorded")
    );
    if let Ok(Some(current)) = engine.maintenance(name).await {
        message.push_str(&format!(
            "\n  {name} is still in maintenance (since {}); `steward maintenance {name} off --reason \"…\"` takes it out once it works.",
            app::format::utc(current.since_ms)
        ));
    }
    let safety = safety_backup_id(job).unwrap_or_default();
    let safety_exists = matches!(engine.backup(&safety).await, Ok(Some(_)));
    if safety_exists {
        message.push_str(&format!(
            "\n  The safety backup {safety} holds {name} as it was before this restore: `steward restore --undo {} --reason \"…\"` brings it back.",
            job.id
        ));
    }
    message.push_str(&format!(
        "\n  Or fix the cause and run the restore again: `steward job retry {}`. `steward job log {}` has every step.",
        job.id, job.id
    ));
    Err(anyhow!(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_blank_reason_is_refused() {
        assert!(non_blank("").is_err());
        assert!(non_blank("  \t").is_err());
        assert_eq!(non_blank("the upgrade broke it"), Ok("the upgrade broke it".into()));
    }
}
