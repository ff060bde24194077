//! Steward's configuration: one TOML file, every key overridable by a `STEWARD_*` variable.
//!
//! The file is found by `--config`, then `STEWARD_CONFIG`, then `./steward.toml`. Environment
//! variables win over the file; nested keys are joined with a double underscore
//! (`STEWARD_SERVER__LISTEN=0.0.0.0:8080`, `STEWARD_DATABASE__URL=postgres://…`).
//!
//! Loading is strict on purpose: an unknown key (a typo) or an invalid value stops start-up with
//! a message naming the key and where it came from, because a console that guards production
//! restores must not run on a configuration that silently means something else.
//!
//! Relative paths in the file are resolved against the directory of the file, so a config works
//! the same whatever the working directory of the process.

use std::{
    collections::{BTreeMap, HashSet},
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use figment::{
    Figment,
    providers::{Env, Format, Toml},
};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

pub mod notifications;
pub mod storage;

pub use storage::StorageConfig;

/// Where the configuration file is looked for when neither `--config` nor `STEWARD_CONFIG` says.
pub const DEFAULT_CONFIG_FILE: &str = "steward.toml";

/// The whole configuration, as read from the file and the environment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Steward's own state: the SQLite database (when no database URL is given) and, later,
    /// backups. Created at start when missing.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub log: LogConfig,
    pub access: AccessConfig,
    pub sessions: SessionConfig,
    pub login: LoginConfig,
    pub jobs: JobsConfig,
    pub storage: StorageConfig,
    /// Where Steward tells people that something went wrong, and when.
    pub notifications: notifications::NotificationsConfig,
    /// The Prometheus endpoint `/metrics`.
    pub metrics: MetricsConfig,
    /// The systems Steward looks after, e.g. dev, test and prod.
    pub environments: Vec<Environment>,
}

/// `[metrics]`: the Prometheus endpoint `/metrics`, behind the IP allowlist like every route.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// When set, a scrape must send `Authorization: Bearer <token>` (e.g. Prometheus'
    /// `authorization.credentials_file`); the token is read from here.
    pub token: Option<SecretSource>,
}

/// The job queue and its workers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs this instance runs at the same time (0: this instance runs none, e.g. a web-only
    /// instance beside a worker instance on PostgreSQL).
    pub workers: u32,
    /// A running job's claim expires this long after its worker last renewed it; a job whose
    /// claim expired (its Steward crashed) is marked `interrupted`.
    pub lease_seconds: u32,
    /// After SIGTERM, how long a cancelled or timed-out program may take to stop before
    /// SIGKILL.
    pub cancel_grace_seconds: u32,
    /// On shutdown, how long running jobs may take to finish before they are stopped and marked
    /// `interrupted`.
    pub shutdown_grace_seconds: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            lease_seconds: 30,
            cancel_grace_seconds: 10,
            shutdown_grace_seconds: 30,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address and port the web console listens on.
    pub listen: SocketAddr,
    /// Directory with the compiled browser assets (`pkg/steward.js`, `.wasm`, `.css`), as
    /// written by `cargo leptos build`.
    pub site_root: PathBuf,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// `sqlite://PATH` or `postgres://USER@HOST/DB`. Empty means SQLite at
    /// `<data_dir>/steward.db`.
    pub url: Option<String>,
    /// Upper bound of open connections in the pool.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `info,steward=debug`. `RUST_LOG` wins when set.
    pub level: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Readable lines for a terminal.
    #[default]
    Human,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Who may reach Steward at all, by network address. Checked before anything else, on every
/// route.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields, default)]
pub struct AccessConfig {
    /// Networks allowed to connect, e.g. `["127.0.0.1/32", "::1/128", "10.0.0.0/8"]`. Empty
    /// refuses to start; everyone is `["0.0.0.0/0", "::/0"]`, written out on purpose.
    pub allow: Vec<IpNet>,
    /// Reverse proxies whose `X-Forwarded-For` / `Forwarded` headers are believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Lets `/healthz` through for any address (load balancers, monitoring).
    pub healthz_exempt: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct SessionConfig {
    /// A session unused this long ends.
    pub idle_timeout_minutes: u32,
    /// A session ends this long after sign-in, however busy.
    pub absolute_lifetime_hours: u32,
    /// Marks the cookie `Secure` (only sent over https). Turn on behind TLS.
    pub secure_cookie: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// Failed sign-ins for one username within `window_minutes` that lock it.
    pub max_failures: u32,
    pub window_minutes: u32,
    /// How long a locked username stays locked (an admin can lift it earlier).
    pub lock_minutes: u32,
    /// Failed sign-ins from one address within `window_minutes`, whatever the usernames, after
    /// which that address must wait.
    pub max_failures_per_ip: u32,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            idle_timeout_minutes: 30,
            absolute_lifetime_hours: 12,
            secure_cookie: false,
        }
    }
}

impl Default for LoginConfig {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window_minutes: 15,
            lock_minutes: 15,
            max_failures_per_ip: 20,
        }
    }
}

/// One system Steward looks after. Resources (what a backup captures) come with the backup
/// drivers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Short id used in URLs, backup ids and the CLI: lowercase letters, digits and `-`.
    pub name: String,
    /// What people call it, e.g. "Production".
    pub label: String,
    /// `#rrggbb`; the environment is shown in this colour everywhere so that prod never looks
    /// like dev.
    pub colour: String,
    /// Production environments get extra confirmation before destructive actions.
    #[serde(default)]
    pub production: bool,
    /// Named programs an operator may run against this environment as a job, e.g. the
    /// installation's own `backup.sh` or "delete drafts". Keyed by the action's name.
    #[serde(default)]
    pub actions: BTreeMap<String, Action>,
    /// What a backup of this environment captures, keyed by the resource's name.
    #[serde(default)]
    pub resources: BTreeMap<String, Resource>,
    /// Facts recorded with every backup: a name and a program whose output describes the
    /// environment at that moment, e.g. `deployment = ["git", "-C", "/srv/app", "rev-parse", "HEAD"]`.
    #[serde(default)]
    pub facts: BTreeMap<String, Vec<String>>,
    /// How old the last successful backup may get before the overview shows it in red, in hours.
    /// Unset: no expectation.
    #[serde(default)]
    pub backup_expected_within_hours: Option<u32>,
    /// How the environment is put into maintenance and taken out of it (restores do both).
    #[serde(default)]
    pub maintenance: MaintenanceConfig,
    /// Checks a restore runs after restoring, before it leaves maintenance: a program that must
    /// exit 0, or a URL that must answer GET with 2xx. Keyed by the check's name.
    #[serde(default)]
    pub smoke_checks: BTreeMap<String, Hook>,
    /// The time zone schedules and retention periods are read in, e.g. `Europe/Berlin`
    /// (default UTC).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// What Steward does on its own, keyed by the schedule's name.
    #[serde(default)]
    pub schedules: BTreeMap<String, Schedule>,
    /// Which backups are kept (`[environments.retention]`); without it every backup is kept.
    #[serde(default)]
    pub retention: Option<crate::retention::Policy>,
}

/// `[environments.schedules.NAME]`: a job Steward requests on its own at the times a cron
/// expression names, read in the environment's time zone.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `backup`, `verify`, `prune` or `action:NAME`.
    pub what: String,
    /// Five fields (minute hour day-of-month month day-of-week), or six with seconds first.
    pub cron: String,
    /// The description of scheduled backups (default "Scheduled backup (NAME)").
    #[serde(default)]
    pub description: Option<String>,
    /// How many backups a scheduled `verify` test-restores (default 1).
    #[serde(default)]
    pub count: Option<u32>,
    /// How long a run that finds the environment busy keeps trying before it is recorded as
    /// skipped, in minutes.
    #[serde(default = "default_busy_wait_minutes")]
    pub busy_wait_minutes: u32,
    /// After a scheduled backup succeeds, apply the environment's retention rules (a `prune`
    /// job), when it has any. Default: yes.
    #[serde(default = "default_true")]
    pub prune_after: bool,
}

/// What a schedule runs, parsed from its `what`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduledWork {
    Backup,
    Verify,
    Prune,
    Action(String),
}

impl Schedule {
    pub fn work(&self) -> Result<ScheduledWork, String> {
        match self.what.as_str() {
            "backup" => Ok(ScheduledWork::Backup),
            "verify" => Ok(ScheduledWork::Verify),
            "prune" => Ok(ScheduledWork::Prune),
            other => match other.strip_prefix("action:") {
                Some(action) if !action.is_empty() => Ok(ScheduledWork::Action(action.to_string())),
                _ => Err(format!(
                    "\"{other}\" is not something a schedule runs: use \"backup\", \"verify\", \"prune\" or \"action:NAME\""
                )),
            },
        }
    }

    /// The parsed cron expression: 5 fields, or 6 with seconds first.
    pub fn cron(&self) -> Result<croner::Cron, String> {
        let fields = self.cron.split_whitespace().count();
        if !(5..=6).contains(&fields) {
            return Err(format!(
                "\"{}\" has {fields} fields: a cron expression has 5 (minute hour day month weekday, e.g. \"0 2 * * *\" for 02:00 every day) or 6 with seconds first",
                self.cron
            ));
        }
        croner::parser::CronParser::builder()
            .seconds(croner::parser::Seconds::Optional)
            .build()
            .parse(&self.cron)
            .map_err(|e| format!("\"{}\" is not a valid cron expression: {e}", self.cron))
    }
}

fn default_timezone() -> String {
    "UTC".to_string()
}

fn default_true() -> bool {
    true
}

fn default_busy_wait_minutes() -> u32 {
    60
}

impl Default for Environment {
    /// An environment with nothing configured (tests and tools fill in the rest), in UTC.
    fn default() -> Self {
        Environment {
            name: String::new(),
            label: String::new(),
            colour: String::new(),
            production: false,
            actions: BTreeMap::new(),
            resources: BTreeMap::new(),
            facts: BTreeMap::new(),
            backup_expected_within_hours: None,
            maintenance: MaintenanceConfig::default(),
            smoke_checks: BTreeMap::new(),
            timezone: default_timezone(),
            schedules: BTreeMap::new(),
            retention: None,
        }
    }
}

impl Environment {
    /// The environment's time zone (validated when the configuration is loaded).
    pub fn tz(&self) -> chrono_tz::Tz {
        self.timezone.parse().unwrap_or(chrono_tz::Tz::UTC)
    }

    /// Every secret the environment's configuration names, with its key below the environment
    /// (`actions.deploy.secret_env.TOKEN`, `resources.db.password`, …).
    pub fn secret_sources(&self) -> Vec<(String, &SecretSource)> {
        fn of_map<'a>(
            prefix: &str,
            map: &'a BTreeMap<String, SecretSource>,
        ) -> impl Iterator<Item = (String, &'a SecretSource)> {
            map.iter().map(move |(k, v)| (format!("{prefix}.secret_env.{k}"), v))
        }
        let mut all = Vec::new();
        for (name, action) in &self.actions {
            all.extend(of_map(&format!("actions.{name}"), &action.secret_env));
        }
        for (name, resource) in &self.resources {
            let prefix = format!("resources.{name}");
            match resource {
                Resource::Postgres { password, .. } | Resource::Mysql { password, .. } => {
                    all.extend(password.iter().map(|p| (format!("{prefix}.password"), p)));
                }
                Resource::Command { secret_env, .. } => all.extend(of_map(&prefix, secret_env)),
                Resource::Http { secret_header, .. } => {
                    all.extend(
                        secret_header
                            .iter()
                            .map(|h| (format!("{prefix}.secret_header.value"), &h.value)),
                    );
                }
                Resource::Directory { .. } | Resource::Sqlite { .. } => {}
            }
        }
        let hooks = [
            ("maintenance.enter".to_string(), &self.maintenance.enter),
            ("maintenance.leave".to_string(), &self.maintenance.leave),
        ]
        .into_iter()
        .filter_map(|(key, hook)| hook.as_ref().map(|hook| (key, hook)))
        .chain(
            self.smoke_checks
                .iter()
                .map(|(name, hook)| (format!("smoke_checks.{name}"), hook)),
        );
        for (prefix, hook) in hooks {
            match hook {
                Hook::Command { secret_env, .. } => all.extend(of_map(&prefix, secret_env)),
                Hook::Http { secret_header, .. } => {
                    all.extend(
                        secret_header
                            .iter()
                            .map(|h| (format!("{prefix}.secret_header.value"), &h.value)),
                    );
                }
            }
        }
        all
    }
}

/// The environment's maintenance hooks. Without them maintenance mode is only recorded (and
/// shown): nothing outside Steward is told.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceConfig {
    /// Called to enter maintenance. What it prints on standard output (JSON, e.g. the services
    /// it stopped) is kept and handed to `leave`.
    #[serde(default)]
    pub enter: Option<Hook>,
    /// Called to leave maintenance, with what `enter` printed (`STEWARD_MAINTENANCE_STATE`, or
    /// the `state` field of the JSON body for HTTP).
    #[serde(default)]
    pub leave: Option<Hook>,
    /// When a restore fails, leave maintenance anyway (default: stay in it, so nobody works on
    /// a half-restored system).
    #[serde(default)]
    pub leave_on_restore_failure: bool,
}

/// A program or an HTTP endpoint Steward calls at a moment of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged, deny_unknown_fields)]
pub enum Hook {
    /// `{ command = ["scripts/maintenance-on.sh"], env = { … }, secret_env = { … } }`
    Command {
        command: Vec<String>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        secret_env: BTreeMap<String, SecretSource>,
        #[serde(default = "default_hook_timeout_seconds")]
        timeout_seconds: u32,
    },
    /// `{ url = "https://app.internal/maintenance", secret_header = { … } }`: POSTed a JSON body;
    /// any 2xx answer is success, its JSON body (if any) what the hook reports.
    Http {
        url: String,
        #[serde(default)]
        secret_header: Option<SecretHeader>,
        #[serde(default = "default_hook_timeout_seconds")]
        timeout_seconds: u32,
    },
}

fn default_hook_timeout_seconds() -> u32 {
    300
}

/// Where a secret comes from, so that it never has to be written into the file:
/// `{ env = "PROD_DB_PASSWORD" }` or `{ file = "/run/secrets/prod-db" }` (first line).
///
/// A secret written into the file as a plain string is read as [`SecretSource::Written`] (its
/// value dropped at once) so that loading refuses it with a hint naming the key, instead of a
/// parser error that would repeat the value.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum SecretSource {
    Env(String),
    File(PathBuf),
    /// A plain string in the file: refused by [`Config::load`].
    Written,
}

/// The two forms a secret may take, as the file writes them.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
enum SecretTable {
    Env(String),
    File(PathBuf),
}

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = SecretSource;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("{ env = \"VARIABLE\" } or { file = \"PATH\" }")
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretSource, E> {
                Ok(SecretSource::Written)
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<SecretSource, A::Error> {
                Ok(
                    match SecretTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))? {
                        SecretTable::Env(name) => SecretSource::Env(name),
                        SecretTable::File(path) => SecretSource::File(path),
                    },
                )
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

/// What loading says of a secret written into the file.
pub(crate) const WRITTEN_SECRET: &str = "a secret is not written into the configuration file: give it as { env = \"VARIABLE\" } (an environment variable holds it) or { file = \"PATH\" } (the file's first line)";

impl SecretSource {
    /// The secret's value, or a message naming where it was looked for (never the value).
    pub fn read(&self) -> Result<String, String> {
        match self {
            SecretSource::Written => Err(WRITTEN_SECRET.into()),
            SecretSource::Env(name) => {
                std::env::var(name).map_err(|_| format!("the environment variable {name} is not set"))
            }
            SecretSource::File(path) => std::fs::read_to_string(path)
                .map(|text| text.lines().next().unwrap_or_default().to_string())
                .map_err(|e| format!("cannot read {}: {e}", path.display())),
        }
    }
}

/// One thing a backup captures, and the driver that captures it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "driver", rename_all = "lowercase")]
pub enum Resource {
    /// A directory tree, stored as a tree in the repository (tar + zstd when exported).
    Directory {
        path: PathBuf,
        /// Globs relative to `path`; empty means everything.
        #[serde(default)]
        include: Vec<String>,
        #[serde(default)]
        exclude: Vec<String>,
    },
    /// A PostgreSQL database, dumped with `pg_dump -Fc -Z0`.
    Postgres {
        /// `postgres://USER@HOST:PORT/DB`, without the password.
        url: String,
        #[serde(default)]
        password: Option<SecretSource>,
        /// Queries a test restore runs in the scratch database; each must return a row.
        #[serde(default)]
        verify_sql: Vec<String>,
    },
    /// A MySQL or MariaDB database, dumped with `mysqldump --single-transaction` as plain SQL.
    Mysql {
        /// `mysql://USER@HOST:PORT/DB`, without the password.
        url: String,
        #[serde(default)]
        password: Option<SecretSource>,
        /// Queries a test restore runs in the scratch database; each must return a row.
        #[serde(default)]
        verify_sql: Vec<String>,
    },
    /// A SQLite database file, copied consistently while in use.
    Sqlite { path: PathBuf },
    /// An operator's script that writes the backup into `STEWARD_OUTPUT_DIR`.
    Command {
        backup: Vec<String>,
        /// The matching restore script (used by restores).
        #[serde(default)]
        restore: Option<Vec<String>>,
        /// A script a test restore runs on the backup unpacked into `STEWARD_INPUT_DIR`; it
        /// must exit 0.
        #[serde(default)]
        verify: Option<Vec<String>>,
        #[serde(default)]
        env: BTreeMap<String, String>,
        #[serde(default)]
        secret_env: BTreeMap<String, SecretSource>,
        #[serde(default = "default_timeout_seconds")]
        timeout_seconds: u32,
    },
    /// A remote system that backs itself up when called, then reports its status.
    Http {
        /// Called with POST and the backup id and description.
        start_url: String,
        /// Polled with GET until it reports done or failed.
        status_url: String,
        /// Called with POST, the backup id and what the remote system reported when the backup
        /// was taken, to restore it; the status URL is then polled (with `operation=restore`).
        /// Without it the resource cannot be restored by Steward.
        #[serde(default)]
        restore_url: Option<String>,
        /// A header carrying a secret, e.g. `{ name = "X-Maintenance-Token", value = { env = "TOKEN" } }`.
        #[serde(default)]
        secret_header: Option<SecretHeader>,
        #[serde(default = "default_poll_seconds")]
        poll_seconds: u32,
        #[serde(default = "default_timeout_seconds")]
        timeout_seconds: u32,
    },
}

impl Resource {
    /// The driver's name, as written in the configuration.
    pub fn driver(&self) -> &'static str {
        match self {
            Resource::Directory { .. } => "directory",
            Resource::Postgres { .. } => "postgres",
            Resource::Mysql { .. } => "mysql",
            Resource::Sqlite { .. } => "sqlite",
            Resource::Command { .. } => "command",
            Resource::Http { .. } => "http",
        }
    }

    /// Every secret the resource names, read now (those that cannot be read are skipped: the
    /// driver reports them when it needs them).
    pub fn secrets(&self) -> Vec<String> {
        let sources: Vec<&SecretSource> = match self {
            Resource::Postgres { password, .. } | Resource::Mysql { password, .. } => password.iter().collect(),
            Resource::Command { secret_env, .. } => secret_env.values().collect(),
            Resource::Http { secret_header, .. } => secret_header.iter().map(|h| &h.value).collect(),
            Resource::Directory { .. } | Resource::Sqlite { .. } => Vec::new(),
        };
        sources
            .into_iter()
            .filter_map(|source| source.read().ok())
            .filter(|secret| !secret.is_empty())
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SecretHeader {
    pub name: String,
    pub value: SecretSource,
}

fn default_poll_seconds() -> u32 {
    5
}

/// A program Steward runs for an environment: the `command` job kind.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// What people see on the button, e.g. "Delete drafts".
    pub label: String,
    /// The program and its arguments, run directly (no shell): `["./backup.sh", "--full"]`.
    /// A relative program path is relative to the configuration file's directory.
    pub command: Vec<String>,
    /// Working directory (default: the configuration file's directory).
    #[serde(default)]
    pub workdir: Option<PathBuf>,
    /// Environment variables for the program.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Environment variables whose values are secrets, each `{ env = "VAR" }` or
    /// `{ file = "PATH" }`: read when the job starts, given to the program, and replaced by
    /// `***` wherever they appear in the job log.
    #[serde(default)]
    pub secret_env: BTreeMap<String, SecretSource>,
    /// The program is stopped (SIGTERM, then SIGKILL) after this many seconds. Default: 3600.
    #[serde(default = "default_timeout_seconds")]
    pub timeout_seconds: u32,
    /// `true` (default): the action changes the environment, so it never runs beside another
    /// such job (backup, restore, …) of the same environment. `false` for read-only checks.
    #[serde(default = "yes")]
    pub exclusive: bool,
}

fn default_timeout_seconds() -> u32 {
    3600
}

fn yes() -> bool {
    true
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("data"),
            server: ServerConfig::default(),
            database: DatabaseConfig::default(),
            log: LogConfig::default(),
            access: AccessConfig::default(),
            sessions: SessionConfig::default(),
            login: LoginConfig::default(),
            jobs: JobsConfig::default(),
            storage: StorageConfig::default(),
            notifications: Default::default(),
            metrics: MetricsConfig::default(),
            environments: Vec::new(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 3000)),
            site_root: PathBuf::from("target/site"),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_connections: 8,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Human,
            level: "info".into(),
        }
    }
}

impl Config {
    /// Reads the file at `path` and the `STEWARD_*` environment, validates, and resolves
    /// relative paths against the file's directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Self::load_with_env(path, "STEWARD_")
    }

    fn load_with_env(path: &Path, prefix: &str) -> Result<Config, ConfigError> {
        if !path.is_file() {
            return Err(ConfigError::Missing {
                file: path.to_path_buf(),
            });
        }
        let env = Env::prefixed(prefix)
            .split("__")
            // Variables that name the file or belong to the test suite are not config keys.
            .filter(|key| key != "config" && !key.as_str().starts_with("test_"));
        let figment = Figment::new().merge(Toml::file_exact(path)).merge(env);
        let origin = |key: &str| origin_of(&figment, key, path, prefix);
        let mut config: Config = figment.extract().map_err(|error| {
            // figment may report several problems; the first is enough to act on.
            let error = error
                .into_iter()
                .next()
                .expect("a figment error holds at least one error");
            let key = if error.path.is_empty() {
                "(top level)".to_string()
            } else {
                name_environment(&figment, &error.path)
            };
            ConfigError::Invalid {
                source: origin(&key),
                key,
                message: error.kind.to_string(),
            }
        })?;

        if let Err((key, message)) = config.validate() {
            return Err(ConfigError::Invalid {
                source: origin(&key),
                key,
                message,
            });
        }
        let base = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        config.data_dir = base.join(&config.data_dir);
        config.storage.resolve_paths(base);
        config.server.site_root = base.join(&config.server.site_root);
        for env in &mut config.environments {
            for resource in env.resources.values_mut() {
                match resource {
                    Resource::Directory { path, .. } | Resource::Sqlite { path } => *path = base.join(&*path),
                    Resource::Command {
                        backup,
                        restore,
                        verify,
                        ..
                    } => {
                        for command in std::iter::once(backup).chain(restore.as_mut()).chain(verify.as_mut()) {
                            resolve_program(base, command);
                        }
                    }
                    Resource::Postgres { .. } | Resource::Mysql { .. } | Resource::Http { .. } => {}
                }
            }
            for command in env.facts.values_mut() {
                resolve_program(base, command);
            }
            for hook in [&mut env.maintenance.enter, &mut env.maintenance.leave]
                .into_iter()
                .flatten()
                .chain(env.smoke_checks.values_mut())
            {
                if let Hook::Command { command, .. } = hook {
                    resolve_program(base, command);
                }
            }
        }
        for action in config.environments.iter_mut().flat_map(|env| env.actions.values_mut()) {
            action.workdir = Some(base.join(action.workdir.take().unwrap_or_default()));
            resolve_program(base, &mut action.command);
        }
        Ok(config)
    }

    /// Where the backups taken before the repository are: `storage.path`, by default
    /// `<data_dir>/backups`.
    pub fn backup_root(&self) -> PathBuf {
        self.storage
            .path
            .clone()
            .unwrap_or_else(|| self.data_dir.join("backups"))
    }

    /// Checks what serde cannot: formats, uniqueness, ranges. Returns the offending key.
    fn validate(&self) -> Result<(), (String, String)> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(("data_dir".into(), "must not be empty".into()));
        }
        if let Some(url) = &self.database.url
            && !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://"))
        {
            return Err((
                "database.url".into(),
                "must start with sqlite:, postgres:// or postgresql://".into(),
            ));
        }
        if self.database.max_connections == 0 {
            return Err(("database.max_connections".into(), "must be at least 1".into()));
        }
        if let Err(e) = self.log.level.parse::<LevelFilterCheck>() {
            return Err(("log.level".into(), e.0));
        }
        if self.access.allow.is_empty() {
            return Err((
                "access.allow".into(),
                "is empty, so nobody could connect: list the networks allowed to reach Steward, e.g. [\"127.0.0.1/32\", \"::1/128\"] (everyone: [\"0.0.0.0/0\", \"::/0\"])".into(),
            ));
        }
        for (key, value) in [
            ("sessions.idle_timeout_minutes", self.sessions.idle_timeout_minutes),
            (
                "sessions.absolute_lifetime_hours",
                self.sessions.absolute_lifetime_hours,
            ),
            ("login.max_failures", self.login.max_failures),
            ("login.window_minutes", self.login.window_minutes),
            ("login.lock_minutes", self.login.lock_minutes),
            ("login.max_failures_per_ip", self.login.max_failures_per_ip),
            ("jobs.lease_seconds", self.jobs.lease_seconds),
            ("jobs.cancel_grace_seconds", self.jobs.cancel_grace_seconds),
        ] {
            if value == 0 {
                return Err((key.into(), "must be at least 1".into()));
            }
        }
        if self.metrics.token == Some(SecretSource::Written) {
            return Err(("metrics.token".into(), WRITTEN_SECRET.into()));
        }
        self.storage
            .validate()
            .map_err(|(key, why)| (format!("storage.{key}"), why))?;
        let environments: Vec<&str> = self.environments.iter().map(|env| env.name.as_str()).collect();
        self.notifications
            .validate(&environments)
            .map_err(|(key, why)| (format!("notifications.{key}"), why))?;
        let mut names = HashSet::new();
        for (i, env) in self.environments.iter().enumerate() {
            let key = |field: &str| format!("environments[{i}].{field}");
            if !is_slug(&env.name) {
                return Err((
                    key("name"),
                    format!(
                        "\"{}\" is not a valid name: use 1 to 32 lowercase letters, digits and '-', starting with a letter",
                        env.name
                    ),
                ));
            }
            if !names.insert(env.name.as_str()) {
                return Err((key("name"), format!("\"{}\" is used by two environments", env.name)));
            }
            if env.label.trim().is_empty() {
                return Err((key("label"), "must not be empty".into()));
            }
            if !is_hex_colour(&env.colour) {
                return Err((
                    key("colour"),
                    format!("\"{}\" is not a colour like \"#1f6feb\"", env.colour),
                ));
            }
            for (kind, names) in [
                ("resources", env.resources.keys().collect::<Vec<_>>()),
                ("facts", env.facts.keys().collect()),
                ("smoke_checks", env.smoke_checks.keys().collect()),
            ] {
                if let Some(name) = names.into_iter().find(|name| !is_slug(name)) {
                    return Err((
                        format!("environments[{i}].{kind}"),
                        format!(
                            "\"{name}\" is not a valid name: use 1 to 32 lowercase letters, digits and '-', starting with a letter"
                        ),
                    ));
                }
            }
            if let Some((name, _)) = env
                .facts
                .iter()
                .find(|(_, command)| command.first().is_none_or(|p| p.trim().is_empty()))
            {
                return Err((
                    format!("environments[{i}].facts.{name}"),
                    "must name a program, e.g. [\"git\", \"-C\", \"/srv/app\", \"rev-parse\", \"HEAD\"]".into(),
                ));
            }
            for (key, source) in env.secret_sources() {
                if *source == SecretSource::Written {
                    return Err((format!("environments[{i}].{key}"), WRITTEN_SECRET.into()));
                }
            }
            for (name, resource) in &env.resources {
                if let Resource::Postgres { url, .. } | Resource::Mysql { url, .. } = resource
                    && url_has_password(url)
                {
                    // Refused now rather than at the first backup; the URL is not repeated.
                    return Err((
                        format!("environments[{i}].resources.{name}.url"),
                        "contains a password: leave it out of the URL and give it as the resource's password = { env = \"VARIABLE\" } or { file = \"PATH\" }".into(),
                    ));
                }
                if let Resource::Postgres { verify_sql, .. } | Resource::Mysql { verify_sql, .. } = resource
                    && verify_sql.iter().any(|query| query.trim().is_empty())
                {
                    return Err((
                        format!("environments[{i}].resources.{name}.verify_sql"),
                        "holds an empty query: each must be a query that returns a row when the data is there".into(),
                    ));
                }
                if let Resource::Command {
                    verify: Some(verify), ..
                } = resource
                    && verify.first().is_none_or(|program| program.trim().is_empty())
                {
                    return Err((
                        format!("environments[{i}].resources.{name}.verify"),
                        "must name a program, e.g. [\"./verify.sh\"]".into(),
                    ));
                }
            }
            if self.environments[i].timezone.parse::<chrono_tz::Tz>().is_err() {
                return Err((
                    key("timezone"),
                    format!(
                        "\"{}\" is not a time zone: use a name from the tz database, e.g. \"Europe/Berlin\" or \"UTC\"",
                        env.timezone
                    ),
                ));
            }
            for (name, schedule) in &env.schedules {
                let key = |field: &str| format!("environments[{i}].schedules.{name}.{field}");
                if !is_slug(name) {
                    return Err((
                        format!("environments[{i}].schedules"),
                        format!(
                            "\"{name}\" is not a valid schedule name: use 1 to 32 lowercase letters, digits and '-', starting with a letter"
                        ),
                    ));
                }
                match schedule.work() {
                    Err(why) => return Err((key("what"), why)),
                    Ok(ScheduledWork::Action(action)) if !env.actions.contains_key(&action) => {
                        return Err((
                            key("what"),
                            format!("there is no action \"{action}\" in this environment"),
                        ));
                    }
                    Ok(ScheduledWork::Backup) if env.resources.is_empty() => {
                        return Err((key("what"), "this environment has no resources to back up".into()));
                    }
                    Ok(ScheduledWork::Prune) if env.retention.is_none() => {
                        return Err((
                            key("what"),
                            "this environment has no [environments.retention] rules, so a prune would remove nothing: add them, or remove this schedule".into(),
                        ));
                    }
                    Ok(_) => {}
                }
                if let Err(why) = schedule.cron() {
                    return Err((key("cron"), why));
                }
                if schedule.count == Some(0) {
                    return Err((key("count"), "must be at least 1".into()));
                }
            }
            for (name, action) in &env.actions {
                let key = |field: &str| format!("environments[{i}].actions.{name}.{field}");
                if !is_slug(name) {
                    return Err((
                        format!("environments[{i}].actions"),
                        format!(
                            "\"{name}\" is not a valid action name: use 1 to 32 lowercase letters, digits and '-', starting with a letter"
                        ),
                    ));
                }
                if action.label.trim().is_empty() {
                    return Err((key("label"), "must not be empty".into()));
                }
                if action.command.first().is_none_or(|program| program.trim().is_empty()) {
                    return Err((
                        key("command"),
                        "must name a program, e.g. [\"./backup.sh\", \"--full\"]".into(),
                    ));
                }
                if action.timeout_seconds == 0 {
                    return Err((key("timeout_seconds"), "must be at least 1".into()));
                }
            }
        }
        Ok(())
    }

    /// The database URL in effect: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(url) => url.clone(),
            None => format!("sqlite://{}", self.data_dir.join("steward.db").display()),
        }
    }

    pub fn environment(&self, name: &str) -> Option<&Environment> {
        self.environments.iter().find(|e| e.name == name)
    }

    pub fn action(&self, environment: &str, action: &str) -> Option<&Action> {
        self.environment(environment)?.actions.get(action)
    }
}

/// A password in a database URL (`postgres://app:pw@host/db`, `…?password=pw`): on a command
/// line every local user can read it, so drivers take it from a secret instead.
fn url_has_password(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|url| {
        url.password().is_some() || url.query_pairs().any(|(key, _)| key.eq_ignore_ascii_case("password"))
    })
}

/// `environments.0.resources.db.driver` → `environments[0] (prod).resources.db.driver`: which
/// environment is meant, by the name a person gave it.
fn name_environment(figment: &Figment, path: &[String]) -> String {
    let joined = path.join(".");
    let (Some("environments"), Some(index)) = (path.first().map(String::as_str), path.get(1)) else {
        return joined;
    };
    let Ok(i) = index.parse::<usize>() else {
        return joined;
    };
    let name = figment
        .find_value("environments")
        .ok()
        .and_then(|value| value.into_array())
        .and_then(|list| list.into_iter().nth(i))
        .and_then(|env| env.into_dict())
        .and_then(|env| env.get("name").and_then(|name| name.as_str().map(str::to_string)));
    let rest = path[2..].join(".");
    match name {
        Some(name) => format!("environments[{i}] ({name}).{rest}"),
        None => joined,
    }
}

/// `./backup.sh` and `scripts/backup.sh` are the config's, so they are made absolute against its
/// directory; `sh` or `pg_dump` is looked up on PATH.
fn resolve_program(base: &Path, command: &mut [String]) {
    if let Some(program) = command.first_mut()
        && program.contains('/')
    {
        *program = base.join(&*program).display().to_string();
    }
}

/// Names where the value of `key` came from: the file, or the environment variable that set it.
fn origin_of(figment: &Figment, key: &str, file: &Path, env_prefix: &str) -> String {
    // `environments[1].colour` is stored under `environments`.
    let stored_key = key.split(['[', '.']).next().unwrap_or(key);
    let from_env = [key, stored_key].iter().any(|k| {
        figment
            .find_metadata(k)
            .is_some_and(|m| m.source.is_none() && m.name.contains("environment"))
    });
    if from_env {
        let var = if figment.find_metadata(key).is_some() {
            key
        } else {
            stored_key
        };
        format!(
            "environment variable {env_prefix}{}",
            var.replace('.', "__").to_uppercase()
        )
    } else {
        file.display().to_string()
    }
}

pub(crate) fn is_slug(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

fn is_hex_colour(s: &str) -> bool {
    s.len() == 7 && s.starts_with('#') && s[1..].chars().all(|c| c.is_ascii_hexdigit())
}

/// A light check of a `tracing` filter string without depending on tracing-subscriber here.
struct LevelFilterCheck;
struct LevelFilterError(String);

impl std::str::FromStr for LevelFilterCheck {
    type Err = LevelFilterError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
        for directive in s.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            let level = directive.rsplit_once('=').map_or(directive, |(_, level)| level);
            if !LEVELS.contains(&level.to_ascii_lowercase().as_str()) && directive.contains('=') {
                return Err(LevelFilterError(format!(
                    "\"{directive}\": the level after '=' must be one of {}",
                    LEVELS.join(", ")
                )));
            }
        }
        Ok(LevelFilterCheck)
    }
}

/// Why the configuration could not be used. Every variant names the file (or variable) and the
/// key, so the message alone tells the operator what to fix.
#[derive(Debug)]
pub enum ConfigError {
    Missing {
        file: PathBuf,
    },
    /// Unknown key, wrong type or unparsable value, as found by the parser.
    Invalid {
        source: String,
        key: String,
        message: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { file } => write!(
                f,
                "no configuration file at {}: pass --config PATH, set STEWARD_CONFIG, or copy steward.example.toml",
                file.display()
            ),
            ConfigError::Invalid { source, key, message } => {
                write!(f, "invalid configuration in {source}: key `{key}`: {message}")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml: &str) -> Result<Config, ConfigError> {
        load_env(toml, &[])
    }

    fn load_env(toml: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, toml).unwrap();
        // A private prefix keeps parallel tests (and the developer's own STEWARD_*) apart.
        let prefix = format!("STEWARDTEST{}_", uuid::Uuid::new_v4().simple());
        for (k, v) in vars {
            // SAFETY: the variable name is unique to this test, so no other thread reads it.
            unsafe { std::env::set_var(format!("{prefix}{k}"), v) };
        }
        Config::load_with_env(&path, &prefix)
    }

    const GOOD: &str = r##"
        data_dir = "state"
        [server]
        listen = "127.0.0.1:4000"
        [access]
        allow = ["127.0.0.1/32", "::1/128"]
        [[environments]]
        name = "prod"
        label = "Production"
        colour = "#c0392b"
        production = true
    "##;

    #[test]
    fn a_good_file_loads_and_paths_are_relative_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steward.toml");
        std::fs::write(&path, GOOD).unwrap();
        let config = Config::load_with_env(&path, "STEWARD_NOTHING_").unwrap();
        assert_eq!(config.server.listen.port(), 4000);
        assert_eq!(config.data_dir, dir.path().join("state"));
        assert_eq!(config.environments[0].label, "Production");
        assert!(config.environments[0].production);
        assert_eq!(config.database.max_connections, 8);
        assert!(config.database_url().ends_with("state/steward.db"));
    }

    #[test]
    fn an_empty_allow_list_refuses_to_start_and_says_how_to_allow_everyone() {
        let err = load("data_dir = \"x\"\n").unwrap_err().to_string();
        assert!(err.contains("access.allow") && err.contains("0.0.0.0/0"), "{err}");
        let open = load("[access]\nallow = [\"0.0.0.0/0\", \"::/0\"]\n").unwrap();
        assert_eq!(open.access.allow.len(), 2);
        let err = load("[access]\nallow = [\"10.0.0.300/8\"]\n").unwrap_err().to_string();
        assert!(err.contains("access.allow"), "{err}");
    }

    #[test]
    fn schedules_are_checked_when_the_file_loads() {
        let with = |schedule: &str| load(&format!("{GOOD}\n[environments.schedules.nightly]\n{schedule}\n"));
        let err = with("what = \"prune\"\ncron = \"0 3 * * *\"").unwrap_err().to_string();
        assert!(
            err.contains("schedules.nightly.what") && err.contains("no [environments.retention]"),
            "{err}"
        );
        let err = with("what = \"backup\"\ncron = \"0 3 * * *\"").unwrap_err().to_string();
        assert!(err.contains("no resources to back up"), "{err}");
        let err = with("what = \"action:nope\"\ncron = \"0 3 * * *\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("there is no action \"nope\""), "{err}");
        let with_retention = load(&format!(
            "{GOOD}\n[environments.schedules.nightly]\nwhat = \"prune\"\ncron = \"0 3 * * *\"\n[environments.retention]\nkeep_last = 3\n"
        ));
        assert!(with_retention.is_ok(), "{with_retention:?}");
    }

    #[test]
    fn a_typo_names_the_key_and_the_file() {
        let err = load("[server]\nlisen = \"127.0.0.1:1\"\n").unwrap_err().to_string();
        assert!(err.contains("server.lisen"), "{err}");
        assert!(err.contains("steward.toml"), "{err}");
    }

    #[test]
    fn an_invalid_value_names_the_key() {
        let err = load("[server]\nlisten = \"not an address\"\n").unwrap_err().to_string();
        assert!(err.contains("server.listen"), "{err}");

        let bad_colour = GOOD.replace("#c0392b", "red");
        let err = load(&bad_colour).unwrap_err().to_string();
        assert!(err.contains("environments[0].colour"), "{err}");
        assert!(err.contains("steward.toml"), "{err}");
    }

    #[test]
    fn duplicate_and_malformed_environment_names_are_refused() {
        let twice = format!("{GOOD}\n[[environments]]\nname = \"prod\"\nlabel = \"Again\"\ncolour = \"#000000\"\n");
        assert!(
            load(&twice)
                .unwrap_err()
                .to_string()
                .contains("used by two environments")
        );
        let upper = GOOD.replace("\"prod\"", "\"Prod\"");
        assert!(load(&upper).unwrap_err().to_string().contains("environments[0].name"));
    }

    #[test]
    fn environment_variables_override_the_file() {
        let config = load_env(
            GOOD,
            &[
                ("SERVER__LISTEN", "0.0.0.0:9999"),
                ("DATABASE__URL", "postgres://x@h/db"),
                ("LOG__FORMAT", "json"),
            ],
        )
        .unwrap();
        assert_eq!(config.server.listen.port(), 9999);
        assert_eq!(config.database_url(), "postgres://x@h/db");
        assert_eq!(config.log.format, LogFormat::Json);
    }

    #[test]
    fn an_unknown_environment_variable_is_an_error_naming_it() {
        let err = load_env(GOOD, &[("SERVER__LISTN", "0.0.0.0:1")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listn"), "{err}");
        assert!(err.contains("SERVER__LISTN"), "{err}");
    }

    #[test]
    fn a_missing_file_says_how_to_fix_it() {
        let err = Config::load(Path::new("/nonexistent/steward.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("/nonexistent/steward.toml") && err.contains("--config"),
            "{err}"
        );
    }

    #[test]
    fn resources_of_every_driver_are_read() {
        let toml = format!(
            r#"{GOOD}
            [environments.resources.files]
            driver = "directory"
            path = "/srv/app/config"
            exclude = ["*.tmp"]
            [environments.resources.db]
            driver = "postgres"
            url = "postgres://app@db.internal:5432/app"
            password = {{ env = "PROD_DB_PASSWORD" }}
            verify_sql = ["SELECT 1 FROM orders LIMIT 1"]
            [environments.resources.shop]
            driver = "mysql"
            url = "mysql://shop@127.0.0.1:3306/shop"
            password = {{ file = "/run/secrets/shop" }}
            [environments.resources.cache]
            driver = "sqlite"
            path = "/srv/app/cache.db"
            [environments.resources.search]
            driver = "command"
            backup = ["./backup-es.sh"]
            restore = ["./restore-es.sh"]
            verify = ["./verify-es.sh", "--quick"]
            [environments.resources.cms]
            driver = "http"
            start_url = "https://cms.internal/maintenance/backup"
            status_url = "https://cms.internal/maintenance/status"
            secret_header = {{ name = "X-Token", value = {{ env = "CMS_TOKEN" }} }}
            "#
        );
        let config = load(&toml).unwrap();
        let resources = &config.environments[0].resources;
        assert_eq!(resources.len(), 6);
        assert!(
            matches!(&resources["db"], Resource::Postgres { password: Some(SecretSource::Env(v)), .. } if v == "PROD_DB_PASSWORD")
        );
        assert!(matches!(&resources["files"], Resource::Directory { exclude, .. } if exclude == &["*.tmp"]));
        assert!(matches!(&resources["cms"], Resource::Http { poll_seconds: 5, .. }));
        assert!(
            matches!(&resources["db"], Resource::Postgres { verify_sql, .. } if verify_sql == &["SELECT 1 FROM orders LIMIT 1"])
        );
        assert!(matches!(&resources["shop"], Resource::Mysql { verify_sql, .. } if verify_sql.is_empty()));
        // The verify script is the config's, resolved against its directory like the others.
        let Resource::Command {
            verify: Some(verify), ..
        } = &resources["search"]
        else {
            panic!("{:?}", resources["search"]);
        };
        assert!(
            verify[0].ends_with("/verify-es.sh") && verify[0] != "./verify-es.sh",
            "{verify:?}"
        );
        assert_eq!(verify[1], "--quick");
    }

    #[test]
    fn an_unknown_driver_names_the_environment_and_resource() {
        let toml = format!("{GOOD}\n[environments.resources.db]\ndriver = \"oracle\"\nurl = \"x\"\n");
        let err = load(&toml).unwrap_err().to_string();
        assert!(err.contains("environments[0] (prod).resources.db.driver"), "{err}");
        assert!(err.contains("oracle"), "{err}");
    }

    #[test]
    fn an_actions_secret_comes_from_a_variable_or_a_file_and_a_written_one_is_refused() {
        let with = |secret: &str| {
            format!(
                "{GOOD}\n[environments.actions.deploy]\nlabel = \"Deploy\"\ncommand = [\"./deploy.sh\"]\nsecret_env = {{ API_TOKEN = {secret} }}\n"
            )
        };
        let config = load(&with("{ env = \"DEPLOY_TOKEN\" }")).unwrap();
        assert_eq!(
            config.environments[0].actions["deploy"].secret_env["API_TOKEN"],
            SecretSource::Env("DEPLOY_TOKEN".into())
        );
        let config = load(&with("{ file = \"/run/secrets/deploy\" }")).unwrap();
        assert_eq!(
            config.environments[0].actions["deploy"].secret_env["API_TOKEN"],
            SecretSource::File("/run/secrets/deploy".into())
        );

        let err = load(&with("\"hunter2-token\"")).unwrap_err().to_string();
        assert!(
            err.contains("key `environments[0].actions.deploy.secret_env.API_TOKEN`: a secret is not written into the configuration file: give it as { env = \"VARIABLE\" }"),
            "{err}"
        );
        assert!(err.contains("steward.toml"), "{err}");
        assert!(!err.contains("hunter2"), "the value is repeated: {err}");

        // The same rule everywhere a secret goes.
        let toml = format!(
            "{GOOD}\n[environments.resources.db]\ndriver = \"postgres\"\nurl = \"postgres://app@db/app\"\npassword = \"hunter2\"\n"
        );
        let err = load(&toml).unwrap_err().to_string();
        assert!(
            err.contains("key `environments[0].resources.db.password`: a secret is not written"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn a_database_url_with_a_password_is_refused_when_loading_without_repeating_it() {
        for (driver, url) in [
            ("postgres", "postgres://app:hunter2@db.internal:5432/app"),
            (
                "postgres",
                "postgres://app@db.internal/app?sslmode=require&password=hunter2",
            ),
            ("mysql", "mysql://shop:hunter2@127.0.0.1:3306/shop"),
        ] {
            let toml = format!("{GOOD}\n[environments.resources.db]\ndriver = \"{driver}\"\nurl = \"{url}\"\n");
            let err = load(&toml).unwrap_err().to_string();
            assert!(
                err.contains("key `environments[0].resources.db.url`: contains a password: leave it out of the URL"),
                "{err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
        // Steward's own database may carry its password (nothing runs it on a command line).
        let config = load_env(GOOD, &[("DATABASE__URL", "postgres://steward:secret@db/steward")]).unwrap();
        assert_eq!(config.database_url(), "postgres://steward:secret@db/steward");
    }

    #[test]
    fn the_example_file_in_the_repository_is_valid() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../steward.example.toml");
        let config = Config::load_with_env(&example, "STEWARD_NOTHING_").unwrap();
        assert!(config.environments.len() >= 3, "the demo has dev, test and prod");
    }
}
