//! Pre-flight checks of what the configuration points at: paths that must exist, databases
//! that must answer, programs that must be installed, secrets that must be readable. Used by
//! `steward config check`; each problem names the environment and the resource.

use std::{path::Path, time::Duration};

use crate::{
    config::{Config, Hook, Resource, SecretSource},
    http_client::Endpoint,
};

/// How long a database server gets to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Something a resource needs that is not there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub environment: String,
    /// The resource or fact, e.g. `resources.db`.
    pub item: String,
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "environment {}, {}: {}", self.environment, self.item, self.message)
    }
}

/// Checks every resource and fact of every environment. Empty when all is well.
pub async fn check_resources(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    for env in &config.environments {
        for (name, resource) in &env.resources {
            for message in check_resource(resource).await {
                problems.push(Problem {
                    environment: env.name.clone(),
                    item: format!("resources.{name} ({})", resource.driver()),
                    message,
                });
            }
        }
        for (name, command) in &env.facts {
            if let Some(message) = command.first().and_then(|program| program_missing(program)) {
                problems.push(Problem {
                    environment: env.name.clone(),
                    item: format!("facts.{name}"),
                    message,
                });
            }
        }
        let hooks = [
            ("maintenance.enter", &env.maintenance.enter),
            ("maintenance.leave", &env.maintenance.leave),
        ]
        .into_iter()
        .filter_map(|(item, hook)| hook.as_ref().map(|hook| (item.to_string(), hook)))
        .chain(
            env.smoke_checks
                .iter()
                .map(|(name, hook)| (format!("smoke_checks.{name}"), hook)),
        );
        for (item, hook) in hooks {
            for message in check_hook(hook) {
                problems.push(Problem {
                    environment: env.name.clone(),
                    item: item.clone(),
                    message,
                });
            }
        }
    }
    problems
}

/// A hook's program must be installed, its URL valid, its secrets readable.
fn check_hook(hook: &Hook) -> Vec<String> {
    let mut problems = Vec::new();
    match hook {
        Hook::Command {
            command, secret_env, ..
        } => {
            match command.first() {
                None => problems.push("no program is configured".into()),
                Some(program) => problems.extend(program_missing(program)),
            }
            problems.extend(secrets_missing(secret_env));
        }
        Hook::Http { url, secret_header, .. } => {
            // Never repeated: a URL may hold a password or a token.
            if let Err(why) = Endpoint::parse(url) {
                problems.push(format!("the URL {why}"));
            }
            problems.extend(secret_missing(secret_header.as_ref().map(|h| &h.value)));
        }
    }
    problems
}

async fn check_resource(resource: &Resource) -> Vec<String> {
    let mut problems = Vec::new();
    match resource {
        Resource::Directory { path, .. } => match tokio::fs::metadata(path).await {
            Ok(meta) if meta.is_dir() => {}
            Ok(_) => problems.push(format!("{} is not a directory", path.display())),
            Err(e) => problems.push(format!("the directory {} cannot be read: {e}", path.display())),
        },
        Resource::Sqlite { path } => match tokio::fs::metadata(path).await {
            Ok(meta) if meta.is_file() => {}
            Ok(_) => problems.push(format!("{} is not a file", path.display())),
            Err(e) => problems.push(format!("the database file {} cannot be read: {e}", path.display())),
        },
        Resource::Postgres { url, password, .. } => {
            problems.extend(reachable(url, 5432, "PostgreSQL").await);
            problems.extend(secret_missing(password.as_ref()));
            problems.extend(program_missing("pg_dump"));
        }
        Resource::Mysql { url, password, .. } => {
            problems.extend(reachable(url, 3306, "MySQL/MariaDB").await);
            problems.extend(secret_missing(password.as_ref()));
            if program_missing("mysqldump").is_some() && program_missing("mariadb-dump").is_some() {
                problems.push("neither mysqldump nor mariadb-dump is installed".into());
            }
        }
        Resource::Command {
            backup,
            restore,
            verify,
            secret_env,
            ..
        } => {
            for command in std::iter::once(backup).chain(restore).chain(verify) {
                match command.first() {
                    None => problems.push("no program is configured".into()),
                    Some(program) => problems.extend(program_missing(program)),
                }
            }
            problems.extend(secrets_missing(secret_env));
        }
        Resource::Http {
            start_url,
            status_url,
            restore_url,
            secret_header,
            ..
        } => {
            for (key, url) in [("start_url", start_url), ("status_url", status_url)]
                .into_iter()
                .chain(restore_url.iter().map(|url| ("restore_url", url)))
            {
                if let Err(why) = Endpoint::parse(url) {
                    problems.push(format!("{key} {why}"));
                }
            }
            problems.extend(secret_missing(secret_header.as_ref().map(|h| &h.value)));
        }
    }
    problems
}

/// Opens a TCP connection to the database server the URL names. Servers reached through a
/// socket (no host in the URL) are left to the dump tool.
async fn reachable(url: &str, default_port: u16, what: &str) -> Option<String> {
    let parsed = match url::Url::parse(url) {
        Ok(parsed) => parsed,
        Err(e) => return Some(format!("the URL is not valid: {e}")),
    };
    let host = parsed.host_str().filter(|h| !h.is_empty())?;
    let port = parsed.port().unwrap_or(default_port);
    match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect((host, port))).await {
        Ok(Ok(_)) => None,
        Ok(Err(e)) => Some(format!("cannot reach {what} at {host}:{port}: {e}")),
        Err(_) => Some(format!(
            "cannot reach {what} at {host}:{port}: no answer within {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
    }
}

fn secrets_missing(secret_env: &std::collections::BTreeMap<String, SecretSource>) -> Vec<String> {
    secret_env
        .iter()
        .filter_map(|(key, source)| secret_missing(Some(source)).map(|why| format!("the secret {key}: {why}")))
        .collect()
}

fn secret_missing(source: Option<&SecretSource>) -> Option<String> {
    source?.read().err()
}

/// `None` when the program can be run: an existing file for a path, else found on PATH.
fn program_missing(program: &str) -> Option<String> {
    if program.contains('/') {
        return (!Path::new(program).is_file()).then(|| format!("the program {program} does not exist"));
    }
    let found = std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()));
    (!found).then(|| format!("the program {program} is not installed (not found on PATH)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Environment;

    fn config_with(resources: Vec<(&str, Resource)>) -> Config {
        Config {
            environments: vec![Environment {
                name: "dev".into(),
                label: "Development".into(),
                colour: "#1f6feb".into(),
                production: false,
                actions: Default::default(),
                resources: resources.into_iter().map(|(n, r)| (n.to_string(), r)).collect(),
                facts: [("git".to_string(), vec!["no-such-program-xyz".to_string()])].into(),
                backup_expected_within_hours: None,
                maintenance: crate::config::MaintenanceConfig {
                    enter: Some(Hook::Command {
                        command: vec!["/no/such/maintenance-on.sh".into()],
                        env: Default::default(),
                        secret_env: Default::default(),
                        timeout_seconds: 10,
                    }),
                    leave: None,
                    leave_on_restore_failure: false,
                },
                smoke_checks: [(
                    "home".to_string(),
                    Hook::Http {
                        url: "not a url".into(),
                        secret_header: None,
                        timeout_seconds: 10,
                    },
                )]
                .into(),
                ..Default::default()
            }],
            ..Config::default()
        }
    }

    #[tokio::test]
    async fn problems_name_the_environment_and_the_resource() {
        let dir = tempfile::tempdir().unwrap();
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = config_with(vec![
            (
                "files",
                Resource::Directory {
                    path: dir.path().join("missing"),
                    include: vec![],
                    exclude: vec![],
                },
            ),
            (
                "ok-files",
                Resource::Directory {
                    path: dir.path().to_path_buf(),
                    include: vec![],
                    exclude: vec![],
                },
            ),
            (
                "db",
                Resource::Postgres {
                    url: format!("postgres://postgres@127.0.0.1:{port}/test"),
                    password: None,
                    verify_sql: vec![],
                },
            ),
            (
                "app",
                Resource::Sqlite {
                    path: dir.path().join("app.sqlite"),
                },
            ),
        ]);
        let problems: Vec<String> = check_resources(&config).await.iter().map(ToString::to_string).collect();
        assert_eq!(problems.len(), 6, "{problems:#?}");
        assert!(
            problems[0].starts_with("environment dev, resources.app (sqlite): the database file"),
            "{problems:#?}"
        );
        assert!(problems[1].starts_with(&format!(
            "environment dev, resources.db (postgres): cannot reach PostgreSQL at 127.0.0.1:{port}"
        )));
        assert!(problems[2].starts_with("environment dev, resources.files (directory): the directory"));
        assert!(problems[2].contains("missing"));
        assert_eq!(
            problems[3],
            "environment dev, facts.git: the program no-such-program-xyz is not installed (not found on PATH)"
        );
        assert!(
            problems[4].starts_with("environment dev, maintenance.enter: ")
                && problems[4].contains("/no/such/maintenance-on.sh"),
            "{problems:#?}"
        );
        assert!(
            problems[5].starts_with("environment dev, smoke_checks.home: the URL is not valid: "),
            "{problems:#?}"
        );
    }
}
