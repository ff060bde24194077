//! The command line: `steward serve`, `steward migrate`, `steward config check`, `steward user …`,
//! the job commands `steward run` and `steward job …` ([`jobs`]), backups ([`backups`]),
//! restores ([`restores`]), verification with test restores ([`verify`]) and maintenance
//! mode ([`maintenance`]).
//!
//! Exit codes: 0 success, 1 a failure while running, 2 a configuration problem (the message
//! names the key and the file).

mod audit;
mod backups;
mod demo;
mod jobs;
mod maintenance;
mod notify;
mod restores;
mod schedules;
mod storage;
mod verify;

use std::{path::PathBuf, process::ExitCode};

use clap::{Args, Parser, Subcommand, ValueEnum};
use engine::{
    Config, Engine,
    accounts::Actor,
    config::{ConfigError, DEFAULT_CONFIG_FILE, LogFormat},
    users::Role,
};

/// Steward: backups, restores and clean-ups of your environments, from one web console.
///
/// Start with `steward serve`; the console then answers at the `listen` address of the
/// configuration file (http://127.0.0.1:3000 by default).
#[derive(Debug, Parser)]
#[command(name = "steward", version, about, long_about)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// The configuration file (TOML). Every key can also be set by a STEWARD_* environment
    /// variable; see steward.example.toml.
    #[arg(long, short, global = true, env = "STEWARD_CONFIG", default_value = DEFAULT_CONFIG_FILE)]
    pub config: PathBuf,

    /// Log format: `human` for a terminal, `json` for a log collector. Overrides `log.format`.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormatArg {
    Human,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the web console. Applies pending database migrations first.
    Serve,
    /// Bring the database schema up to date, then exit (useful before rolling out a new
    /// version to several instances).
    Migrate,
    /// Inspect the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage the people who may sign in (works while Steward is running).
    #[command(subcommand)]
    User(UserCommand),
    /// Run an action of an environment as a job and print its log until it ends (needs a
    /// running `steward serve` to do the work). Exit code 0 if the job succeeded, 1 otherwise.
    Run(jobs::RunArgs),
    /// Follow and manage jobs: list, show, log, cancel, retry, acknowledge (works while
    /// Steward is running).
    #[command(subcommand)]
    Job(jobs::JobCommand),
    /// Take, list, show and verify backups; rebuild the catalog from storage.
    #[command(subcommand)]
    Backup(backups::BackupCommand),
    /// Restore an environment to one of its backups, or undo a failed restore (needs a running
    /// `steward serve`). Prints what would happen, asks for the environment's name on a
    /// terminal (twice for production) unless --yes, then queues the restore: a safety backup
    /// is taken first and the environment is in maintenance meanwhile.
    Restore(restores::RestoreArgs),
    /// Prove that backups restore (needs a running `steward serve`): re-check every checksum
    /// and test-restore each resource into scratch — a temporary tree or file, a scratch
    /// database dropped afterwards — never touching the live systems. --count N backups (never
    /// verified first, then the longest unverified, ties at random) or --backup ID. Exit code 0
    /// only if every one passed.
    Verify(verify::VerifyArgs),
    /// Show whether an environment is in maintenance mode (and the restores it is waiting on),
    /// or put it in or take it out by hand with on|off (runs its `enter` or `leave` hook;
    /// refused while a job holds the environment).
    Maintenance(maintenance::MaintenanceArgs),
    /// List, pause, resume or run now the schedules of the environments
    /// ([environments.schedules.NAME]).
    #[command(subcommand)]
    Schedule(schedules::ScheduleCommand),
    /// Show which backups the retention rules keep and which they would remove.
    #[command(subcommand)]
    Retention(schedules::RetentionCommand),
    /// Remove the backups an environment's retention rules no longer keep, as a job (needs a
    /// running `steward serve`); prints its log. Pinned backups, the newest proven-restorable
    /// one and safety backups of failed restores are never removed.
    Prune {
        /// The environment, e.g. `prod`.
        env: String,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Try a notification target, or list what was sent where and how it went
    /// ([notifications] in the configuration).
    #[command(subcommand)]
    Notify(notify::NotifyCommand),
    /// The backup repository: what each environment's backups take in it, and its check.
    #[command(subcommand)]
    Storage(storage::StorageCommand),
    /// Check that the audit log is whole (its hash chain).
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Sample content for the demo environment of steward.example.toml.
    #[command(subcommand)]
    Demo(demo::DemoCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user. The password is asked for twice on the terminal, or read from the first
    /// line of standard input with --password-stdin.
    Add {
        name: String,
        /// admin: everything; operator: start backups, restores, clean-ups; viewer: read only.
        #[arg(long, short)]
        role: RoleArg,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set a new password for a user (asked for, or --password-stdin).
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Stop a user from signing in (their sessions end at their next request).
    Disable { name: String },
    /// Let a disabled user sign in again.
    Enable { name: String },
    /// Lift the sign-in lock that too many failed attempts put on a username.
    Unlock { name: String },
    /// List users with role, state and last sign-in.
    List,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RoleArg {
    Admin,
    Operator,
    Viewer,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Admin => Role::Admin,
            RoleArg::Operator => Role::Operator,
            RoleArg::Viewer => Role::Viewer,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Read and validate the configuration file and the STEWARD_* variables, print a summary,
    /// and exit non-zero with the offending key and file if something is wrong. Starts nothing.
    Check,
}

pub async fn run(cli: Cli) -> ExitCode {
    let config = match Config::load(&cli.global.config) {
        Ok(config) => config,
        Err(e) => return config_error(&e),
    };
    let format = match cli.global.log_format {
        Some(LogFormatArg::Human) => LogFormat::Human,
        Some(LogFormatArg::Json) => LogFormat::Json,
        None => config.log.format,
    };
    crate::logging::init(format, &config.log.level);

    let result = match cli.command {
        Command::Serve => serve(config).await,
        Command::Migrate => migrate(config).await,
        Command::Config(ConfigCommand::Check) => check_config(&cli.global.config, &config).await,
        Command::User(command) => user(config, command).await,
        Command::Run(args) => jobs::run_action(config, args).await,
        Command::Job(command) => jobs::job(config, command).await,
        Command::Backup(command) => backups::backup(config, command).await,
        Command::Restore(args) => restores::restore(config, args).await,
        Command::Verify(args) => verify::verify(config, args).await,
        Command::Demo(command) => demo::demo(command).await,
        Command::Schedule(command) => schedules::schedule(config, command).await,
        Command::Retention(command) => schedules::retention(config, command).await,
        Command::Prune { env, dry_run } => schedules::prune(config, &env, dry_run).await,
        Command::Maintenance(args) => maintenance::maintenance(config, args).await,
        Command::Notify(command) => notify::notify(config, command).await,
        Command::Storage(command) => storage::storage(config, command).await,
        Command::Audit(command) => audit::audit(config, command).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Once, on standard error, whatever the log level or format.
            eprintln!("steward: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Whether Steward generates the repository's password (none is configured, the repository is
/// local) — the first start says where it will be.
fn config_password_generated(config: &Config) -> bool {
    config.storage.password.is_none() && config.storage.s3.is_none()
}

fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("steward: {e}");
    ExitCode::from(2)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let listen = config.server.listen;
    let assets = config
        .server
        .site_root
        .join("pkg")
        .join(format!("{}.js", app::OUTPUT_NAME));
    if !assets.is_file() {
        tracing::warn!(
            path = %assets.display(),
            "browser assets not found: pages will render but not become interactive; build them with `cargo leptos build --release`"
        );
    }
    let engine = open_engine(config).await?;
    // Before anything is printed: a configuration the router refuses (an unreadable
    // `metrics.token`) stops start-up here.
    let router = crate::http::router(engine.clone()).await?;
    if let Some((username, password)) = engine.ensure_first_admin().await? {
        // Standard output, once, never the log: the password is a secret.
        println!();
        println!("  First admin created. Sign in at http://{listen}/login with");
        println!("    username: {username}");
        println!("    password: {password}");
        println!("  This password is shown only now. Change it under Account after signing in.");
        if config_password_generated(engine.config()) {
            println!();
            println!(
                "  Backups go to the repository {}; its password will be written to",
                engine.repository_location()
            );
            println!(
                "    {} with the first backup.",
                engine
                    .config()
                    .data_dir
                    .join(engine::config::storage::GENERATED_PASSWORD_FILE)
                    .display()
            );
            println!("  Keep a copy of that file somewhere safe: without it no backup can be read.");
        }
        println!();
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen}: {e}"))?;
    let workers = engine.start_workers().await?;
    tracing::info!("Steward is listening on http://{}", listener.local_addr()?);
    let closing = engine.clone();
    let stop_claiming = workers.stop_claiming();
    let scheduler = {
        let (engine, stop) = (engine.clone(), stop_claiming.clone());
        let instance = format!("{}-{}", std::process::id(), engine::db::now_ms());
        tokio::spawn(async move { engine.run_scheduler(instance, stop).await })
    };
    // Stops with the scheduler, after the last request: a job that ends during shutdown may
    // still write a notification, which the next start (of any instance) delivers.
    let notifier = {
        let (engine, stop) = (engine.clone(), stop_claiming.clone());
        let instance = format!("{}-{}", std::process::id(), engine::db::now_ms());
        tokio::spawn(async move { engine.run_notifier(instance, stop).await })
    };
    let audit_watch = {
        let (engine, stop) = (engine.clone(), stop_claiming.clone());
        tokio::spawn(async move { engine.run_audit_watch(stop).await })
    };
    let shutdown = async move {
        shutdown_signal().await;
        tracing::info!("shutting down: no new jobs are started; running ones get time to finish");
        stop_claiming.cancel();
        closing.begin_close();
    };
    crate::http::serve(listener, router, shutdown).await?;
    if let Err(e) = scheduler.await {
        tracing::warn!("the scheduler ended abnormally: {e}");
    }
    if let Err(e) = notifier.await {
        tracing::warn!("the notification sender ended abnormally: {e}");
    }
    if let Err(e) = audit_watch.await {
        tracing::warn!("the audit chain's hourly check ended abnormally: {e}");
    }
    let grace = std::time::Duration::from_secs(u64::from(engine.config().jobs.shutdown_grace_seconds));
    workers.shutdown(grace).await;
    engine.db().close().await;
    tracing::info!("stopped");
    Ok(())
}

async fn migrate(config: Config) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    println!("The database is up to date.");
    engine.db().close().await;
    Ok(())
}

async fn user(config: Config, command: UserCommand) -> anyhow::Result<()> {
    let engine = open_engine(config).await?;
    let actor = Actor::cli();
    let result = match command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
        } => {
            let password = read_new_password(password_stdin)?;
            let user = engine.create_user(&actor, &name, &password, role.into()).await?;
            println!("User {} added with role {}.", user.username, user.role);
            Ok(())
        }
        UserCommand::Passwd { name, password_stdin } => {
            let password = read_new_password(password_stdin)?;
            engine.set_password(&actor, &name, &password).await?;
            println!("Password of {name} changed.");
            Ok(())
        }
        UserCommand::Disable { name } => {
            engine.set_disabled(&actor, &name, true).await?;
            println!("User {name} disabled.");
            Ok(())
        }
        UserCommand::Enable { name } => {
            engine.set_disabled(&actor, &name, false).await?;
            println!("User {name} enabled.");
            Ok(())
        }
        UserCommand::Unlock { name } => {
            if engine.unlock(&actor, &name).await? {
                println!("Sign-in lock of {name} lifted.");
            } else {
                println!("{name} had no failed sign-ins to forget.");
            }
            Ok(())
        }
        UserCommand::List => {
            println!("{:<24} {:<9} {:<26} LAST SIGN-IN", "USERNAME", "ROLE", "STATE");
            for user in engine.users().await? {
                let state = match (user.disabled, user.locked_until_ms) {
                    (true, _) => "disabled".to_string(),
                    (false, Some(until)) => format!("locked until {}", app::format::utc(until)),
                    (false, None) => "active".to_string(),
                };
                let last = user
                    .last_login_at_ms
                    .map(app::format::utc)
                    .unwrap_or_else(|| "never".into());
                println!("{:<24} {:<9} {:<26} {last}", user.username, user.role.as_str(), state);
            }
            Ok(())
        }
    };
    engine.db().close().await;
    result
}

/// A new password from standard input (first line) or asked twice on the terminal.
fn read_new_password(from_stdin: bool) -> anyhow::Result<String> {
    let password = if from_stdin {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    } else {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Again: ")?;
        anyhow::ensure!(first == second, "the two passwords differ; nothing was changed");
        first
    };
    engine::users::check_password(&password)?;
    Ok(password)
}

async fn open_engine(config: Config) -> anyhow::Result<Engine> {
    let where_ = database_description(&config);
    Engine::open(config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the database ({where_}): {e}"))
}

/// The database as it may be shown to a person: the password, if any, hidden.
fn database_description(config: &Config) -> String {
    let url = config.database_url();
    match url.split_once("://") {
        Some((scheme, rest)) if scheme.starts_with("postgres") => match rest.split_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or_default();
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.clone(),
        },
        _ => url,
    }
}

/// Prints the summary, then checks what the resources point at (paths, database servers,
/// programs, secrets); fails naming each environment and resource with a problem.
async fn check_config(file: &std::path::Path, config: &Config) -> anyhow::Result<()> {
    print_config_summary(file, config);
    let resources: usize = config.environments.iter().map(|env| env.resources.len()).sum();
    let mut problems = unreadable_secrets(config);
    match engine::backups::check_repository(config).await {
        Ok(line) => println!("  repository:   {line}"),
        Err(why) => problems.push(why),
    }
    if resources > 0 {
        let found = engine::checks::check_resources(config).await;
        if found.is_empty() {
            println!(
                "  resources:    all {resources} ready (paths exist, database servers answer, programs installed)"
            );
        }
        problems.extend(found.iter().map(ToString::to_string));
    }
    if problems.is_empty() {
        return Ok(());
    }
    for problem in &problems {
        eprintln!("problem: {problem}");
    }
    anyhow::bail!(
        "{} problem(s) with what the configuration points at; backups of the environments named above will fail until they are fixed",
        problems.len()
    )
}

fn print_config_summary(file: &std::path::Path, config: &Config) {
    println!("Configuration {} is valid.", file.display());
    println!("  listen:       http://{}", config.server.listen);
    println!("  data dir:     {}", config.data_dir.display());
    println!("  database:     {}", database_description(config));
    println!("  site root:    {}", config.server.site_root.display());
    println!("  environments: {}", config.environments.len());
    for env in &config.environments {
        let production = if env.production { " (production)" } else { "" };
        println!("    {:<12} {} {}{production}", env.name, env.colour, env.label);
        for (name, resource) in &env.resources {
            println!("      resource {name} ({})", resource.driver());
        }
    }
    let targets = &config.notifications.targets;
    if targets.is_empty() {
        println!("  notifications: no targets (nobody is told when something goes wrong)");
    } else {
        println!("  notifications: {} target(s)", targets.len());
        for (name, target) in targets {
            println!("    {name:<12} {}", engine::notifications::destination(target));
        }
    }
}

/// The notification targets', the metrics token's and the repository's secrets that cannot be
/// read now, by key
/// (never a value).
fn unreadable_secrets(config: &Config) -> Vec<String> {
    let targets = config.notifications.targets.iter().flat_map(|(name, target)| {
        target
            .secret_sources()
            .into_iter()
            .map(move |(field, source)| (format!("notifications.targets.{name}.{field}"), source))
    });
    let token = config
        .metrics
        .token
        .iter()
        .map(|source| ("metrics.token".to_string(), source));
    targets
        .chain(token)
        .chain(config.storage.secret_sources())
        .filter_map(|(key, source)| source.read().err().map(|why| format!("{key}: {why}")))
        .collect()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn database_passwords_are_hidden() {
        let config = Config {
            database: engine::config::DatabaseConfig {
                url: Some("postgres://steward:s3cret@db.internal/steward".into()),
                max_connections: 1,
            },
            ..Config::default()
        };
        let shown = database_description(&config);
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("db.internal/steward"), "{shown}");
    }
}
