//! Steward as an operator runs it: a configuration in a temporary directory, `steward serve`
//! and CLI commands as real child processes on the same SQLite file. Shared by the CLI tests
//! of jobs, backups and restores.
//!
//! Every wait polls with a deadline ([`TIMEOUT`]); every process a test starts is stopped when
//! the test ends, however it ends.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader, Read, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStderr, ChildStdout, Command, Stdio},
    sync::{Arc, Mutex},
    thread,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill, killpg},
    unistd::Pid,
};

/// The longest any one wait may take. Generous: a CLI-queued job waits up to 5 s for a worker
/// of another process to look (SQLite has no notifications), and the machine may be busy.
pub const TIMEOUT: Duration = Duration::from_secs(30);
pub const POLL: Duration = Duration::from_millis(100);

/// A configuration directory with one environment, `prod`, and the given actions (TOML under
/// `[environments.actions]`).
pub struct Steward {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
}

impl Steward {
    pub fn new(actions: &str) -> Steward {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("steward.toml");
        let body = format!(
            r##"
data_dir = "state"
[server]
listen = "127.0.0.1:0"
[access]
allow = ["127.0.0.1/32"]
[jobs]
workers = 2
lease_seconds = 5
cancel_grace_seconds = 1
shutdown_grace_seconds = 1
[[environments]]
name = "prod"
label = "Production"
colour = "#c62828"
{actions}
"##
        );
        std::fs::write(&config, body).expect("write config");
        Steward { dir, config }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_steward"));
        command
            .args(args)
            .arg("--config")
            .arg(&self.config)
            .env_remove("STEWARD_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null());
        command
    }

    /// Runs a CLI command to its end.
    pub fn cli(&self, args: &[&str]) -> Ended {
        self.start(args).wait()
    }

    /// Runs a CLI command to its end with `input` on its standard input (`--password-stdin`).
    pub fn with_input(&self, args: &[&str], input: &str) -> Ended {
        let mut command = self.command(args);
        command.stdin(Stdio::piped());
        let mut proc = Proc::spawn(command, args.join(" "));
        if let Some(mut stdin) = proc.child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("write standard input");
        }
        proc.wait()
    }

    /// Starts a CLI command and returns at once.
    pub fn start(&self, args: &[&str]) -> Proc {
        Proc::spawn(self.command(args), args.join(" "))
    }

    /// Runs a CLI command on a terminal, as a person at a keyboard would: a pseudo-terminal made
    /// by util-linux's `script`, `input` typed into it (end of input after it). The terminal
    /// echoes what is typed, and it joins standard error to standard output: both are in
    /// `stdout`.
    pub fn on_terminal(&self, args: &[&str], input: &str) -> Ended {
        let quote = |arg: &str| format!("'{}'", arg.replace('\'', r"'\''"));
        let config = self.config.display().to_string();
        let line: Vec<String> = std::iter::once(env!("CARGO_BIN_EXE_steward"))
            .chain(args.iter().copied())
            .chain(["--config", config.as_str()])
            .map(quote)
            .collect();
        let mut command = Command::new("script");
        command
            .args(["--quiet", "--return", "--command", &line.join(" "), "/dev/null"])
            .env_remove("STEWARD_CONFIG")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped());
        let mut proc = Proc::spawn(command, format!("{} (on a terminal)", args.join(" ")));
        if let Some(mut stdin) = proc.child.stdin.take() {
            stdin.write_all(input.as_bytes()).expect("type into the terminal");
        }
        proc.wait()
    }

    /// Waits until the log of job `id` (`steward job log`) contains `text`; returns the log.
    pub fn wait_for_log(&self, id: u32, text: &str) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let log = self.cli(&["job", "log", &id.to_string()]);
            if log.stdout.contains(text) {
                return log.stdout;
            }
            assert!(
                Instant::now() < deadline,
                "the log of job #{id} did not show {text:?} within {TIMEOUT:?}:\n{log:?}"
            );
            thread::sleep(POLL);
        }
    }

    /// Starts `steward serve` and waits until its workers are running.
    pub fn serve(&self) -> Serve {
        let mut command = self.command(&["serve"]);
        command.env("RUST_LOG", "info");
        let serve = Serve(Proc::spawn(command, "serve".into()));
        serve.0.wait_for_stderr("job workers started");
        serve
    }

    /// The state of job `id` as `steward job show` reports it.
    pub fn state(&self, id: u32) -> String {
        let shown = self.cli(&["job", "show", &id.to_string()]);
        shown.field("state")
    }

    pub fn wait_for_state(&self, id: u32, want: &str) -> Ended {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let shown = self.cli(&["job", "show", &id.to_string()]);
            if shown.field("state") == want {
                return shown;
            }
            assert!(
                Instant::now() < deadline,
                "job #{id} did not become {want} within {TIMEOUT:?}:\n{shown:?}"
            );
            thread::sleep(POLL);
        }
    }
}

/// A child process whose output is collected as it comes; killed (SIGKILL) when dropped.
pub struct Proc {
    pub name: String,
    pub child: Child,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
    pub readers: Vec<thread::JoinHandle<()>>,
}

/// A finished process.
#[derive(Debug)]
pub struct Ended {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Ended {
    /// The value of a `  label   value` line of `steward job show`.
    pub fn field(&self, label: &str) -> String {
        self.stdout
            .lines()
            .filter_map(|line| line.strip_prefix("  "))
            .find_map(|line| {
                line.strip_prefix(label)
                    .filter(|rest| rest.starts_with("  "))
                    .map(|rest| rest.trim().to_string())
            })
            .unwrap_or_default()
    }
}

impl Proc {
    pub fn spawn(mut command: Command, name: String) -> Proc {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start steward");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            collect(child.stdout.take().map(Pipe::Out), stdout.clone()),
            collect(child.stderr.take().map(Pipe::Err), stderr.clone()),
        ];
        Proc {
            name,
            child,
            stdout,
            stderr,
            readers,
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    pub fn wait_until(&self, what: &str, done: impl Fn(&Proc) -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "`steward {}`: no {what} within {TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                self.name,
                self.stdout(),
                self.stderr()
            );
            thread::sleep(POLL);
        }
    }

    pub fn wait_for_stdout(&self, text: &str) {
        self.wait_until(&format!("{text:?} on stdout"), |p| p.stdout().contains(text));
    }

    pub fn wait_for_stderr(&self, text: &str) {
        self.wait_until(&format!("{text:?} on stderr"), |p| p.stderr().contains(text));
    }

    /// Waits for the process to end (at most [`TIMEOUT`]) and for the last of its output.
    pub fn wait(mut self) -> Ended {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for steward") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "`steward {}` did not end within {TIMEOUT:?}\nstdout:\n{}\nstderr:\n{}",
                self.name,
                self.stdout(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        };
        for reader in std::mem::take(&mut self.readers) {
            let _ = reader.join();
        }
        Ended {
            code: status.code(),
            stdout: self.stdout(),
            stderr: self.stderr(),
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

pub enum Pipe {
    Out(ChildStdout),
    Err(ChildStderr),
}

/// Appends everything the pipe delivers to `into`, line by line, until it closes.
pub fn collect(pipe: Option<Pipe>, into: Arc<Mutex<String>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let reader: Box<dyn Read + Send> = match pipe {
            Some(Pipe::Out(out)) => Box::new(out),
            Some(Pipe::Err(err)) => Box::new(err),
            None => return,
        };
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if let Ok(mut text) = into.lock() {
                text.push_str(&line);
                text.push('\n');
            }
        }
    })
}

/// A running `steward serve`. Dropped: asked to stop (SIGTERM, which also stops the programs of
/// its running jobs), killed if it takes too long.
pub struct Serve(pub Proc);

impl Serve {
    /// The first admin's password, printed once on standard output at the first start.
    pub fn admin_password(&self) -> String {
        self.0.wait_for_stdout("password:");
        let stdout = self.0.stdout();
        stdout
            .lines()
            .find_map(|line| line.trim().strip_prefix("password:"))
            .map(|p| p.trim().to_string())
            .expect("the first start prints the admin password")
    }

    /// `http://127.0.0.1:PORT`, from the "listening" log line.
    pub fn base(&self) -> String {
        self.0.wait_for_stderr("is listening on http://");
        let stderr = self.0.stderr();
        let at = stderr.find("http://").expect("listening line");
        stderr[at..].split_whitespace().next().unwrap_or_default().to_string()
    }

    /// Signs in as `admin` and returns the HTML of `path`, as the server renders it.
    pub fn page_as_admin(&self, password: &str, path: &str) -> String {
        let base = self.base();
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        runtime.block_on(async {
            let client = reqwest::Client::builder()
                .cookie_store(true)
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client");
            let login = client
                .post(format!("{base}/api/auth/login"))
                .header("accept", "application/json")
                .form(&[("username", "admin"), ("password", password)])
                .send()
                .await
                .expect("sign in");
            assert!(login.status().is_success(), "sign-in failed: {}", login.status());
            client
                .get(format!("{base}{path}"))
                .send()
                .await
                .expect("page")
                .text()
                .await
                .expect("page body")
        })
    }

    /// SIGKILL: a crash, as far as Steward can tell.
    pub fn crash(mut self) {
        self.0.kill();
    }

    /// SIGTERM, as a service manager stops Steward; returns how long it took to exit (up to
    /// [`TIMEOUT`]; `None` if it had not exited by then).
    pub fn terminate(mut self) -> Option<Duration> {
        let pid = i32::try_from(self.0.child.id()).ok()?;
        let asked = Instant::now();
        kill(Pid::from_raw(pid), Signal::SIGTERM).ok()?;
        while asked.elapsed() < TIMEOUT {
            if matches!(self.0.child.try_wait(), Ok(Some(_))) {
                return Some(asked.elapsed());
            }
            thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let Ok(pid) = i32::try_from(self.0.child.id()) else {
            return;
        };
        if matches!(self.0.child.try_wait(), Ok(None)) && kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok() {
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(self.0.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(50));
            }
        }
        // Proc's drop kills whatever is left.
    }
}

/// The process group of a script whose Steward was killed: nobody else stops it.
pub struct Orphan(pub Pid);

impl Drop for Orphan {
    fn drop(&mut self) {
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

/// `Queued slow #3 on prod; …` → 3.
pub fn queued_id(stdout: &str) -> u32 {
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("Queued "))
        .and_then(|rest| rest.split_once('#'))
        .and_then(|(_, rest)| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .unwrap_or_else(|| panic!("no job id in {stdout:?}"))
}

pub fn action(name: &str, label: &str, script: &str) -> String {
    format!("[environments.actions.{name}]\nlabel = \"{label}\"\ncommand = [\"sh\", \"-c\", {script:?}]\n")
}

pub fn read_pid(path: &Path) -> Pid {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let pid: i32 = text
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("{}: {text:?}: {e}", path.display()));
    Pid::from_raw(pid)
}

/// The demo shop's site and database (made by `steward demo init`) as the `prod` environment's
/// resources, plus `extra` TOML.
pub fn shop(extra: &str) -> Steward {
    let steward = Steward::new(&format!(
        r#"
[environments.resources.site]
driver = "directory"
path = "shop/site"

[environments.resources.shop-db]
driver = "sqlite"
path = "shop/shop.sqlite"

[environments.facts]
release = ["echo", "v2.4.1"]
{extra}"#
    ));
    let made = steward.cli(&["demo", "init", &steward.path("shop").display().to_string()]);
    assert_eq!(made.code, Some(0), "{made:?}");
    steward
}

/// `Backup prod-20261122-0630-1a2b is complete: …` → the id.
pub fn completed_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|line| {
            line.split("Backup ")
                .nth(1)?
                .split_once(" is complete")
                .map(|(id, _)| id.to_string())
        })
        .unwrap_or_else(|| panic!("no completed backup in {stdout:?}"))
}
