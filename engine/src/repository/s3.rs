//! The restic-format repository on an S3-compatible object store (AWS S3, MinIO, Ceph, moto…):
//! a rustic backend over opendal's S3 service.
//!
//! Why our own backend: rustic_backend's `opendal` feature compiles some twenty storage services
//! to offer S3; this module needs opendal's S3 service alone (see engine/Cargo.toml).
//!
//! Layout: the same object keys restic's S3 backend uses, under the location's prefix: `config`,
//! `keys/<id>`, `snapshots/<id>`, `index/<id>`, `data/<first two hex digits>/<id>` (and restic's
//! own `locks/<id>`), so `restic -r s3:<endpoint>/<bucket>/<prefix>` reads what Steward wrote.
//! Object stores have no directories, so unlike rustic's opendal backend `create` makes no
//! empty "directory" objects: it only checks that the bucket answers. Buckets are not ours to
//! create.
//!
//! Threads: rustic calls a backend from plain threads (its packers, rayon) and from inside
//! `spawn_blocking`, never from async code. opendal's blocking operator runs each request on a
//! tokio runtime of this module's own, one per process, shared by every backend and never
//! dropped (dropping a runtime inside async code panics). Calling a backend method from async
//! code panics likewise: wrap repository work in `spawn_blocking`.
//!
//! Failures: transient ones (connection refused or reset, 5xx, throttling, a request timing
//! out) are retried a few times over a few seconds, so an endpoint that is down is reported in
//! about 4 s, not minutes; a connection attempt gives up after [`CONNECT_TIMEOUT`], so an
//! address that drops packets takes four of those (about 45 s). Every error names the
//! repository's location and says in an operator's words what went wrong (could not reach,
//! refused the credentials, no such bucket…). Credentials never appear in `Debug` output, in
//! errors or in logs: the endpoint may not carry any, and the keys are masked in any text an
//! error quotes from the server (S3 echoes the access key id when it does not know it).

use std::{error::Error as _, fmt, sync::OnceLock, time::Duration};

use bytes::Bytes;
use opendal::{
    HttpTransporter, OperationContext,
    blocking::Operator,
    layers::{RetryLayer, TimeoutLayer},
    options::{ListOptions, ReadOptions},
    services::S3,
};
use opendal_http_transport_reqwest::ReqwestTransport;
use rustic_core::{BytesList, ErrorKind, FileType, Id, ReadBackend, RusticError, RusticResult, WriteBackend};
use tokio::runtime::Runtime;

/// Attempts after the first for a request that failed transiently; with [`RETRY_MIN_DELAY`]
/// doubling, an unreachable endpoint is reported after about 4 s.
const RETRIES: usize = 3;
const RETRY_MIN_DELAY: Duration = Duration::from_millis(500);
const RETRY_MAX_DELAY: Duration = Duration::from_secs(4);
/// How long a TCP (and TLS) connection may take: an address that drops packets fails here.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A request without a body to move (stat, list page, delete).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// One step of moving a body: a whole pack (32 MiB and growing) goes up in one request.
const IO_TIMEOUT: Duration = Duration::from_secs(300);
/// S3-compatible servers that ignore the region still need one to sign requests.
const DEFAULT_REGION: &str = "us-east-1";

/// Where an S3 repository is (all strings already resolved; credentials are secrets: never put
/// them in Debug output, errors or logs).
#[derive(Clone, PartialEq, Eq)]
pub struct S3Location {
    /// `http://` or `https://`, host, optional port (and path, behind a proxy); no credentials.
    pub endpoint: String,
    pub bucket: String,
    /// Empty means `us-east-1`, which servers that ignore regions accept.
    pub region: String,
    /// The repository's key prefix inside the bucket; empty for the bucket's root.
    pub prefix: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl S3Location {
    /// restic's spelling of the repository, `s3:<endpoint>/<bucket>[/<prefix>]`, for people
    /// and logs (no credential).
    pub fn describe(&self) -> String {
        let endpoint = self.endpoint.trim_end_matches('/');
        let (bucket, prefix) = (self.bucket.trim(), self.prefix.trim_matches('/'));
        if prefix.is_empty() {
            format!("s3:{endpoint}/{bucket}")
        } else {
            format!("s3:{endpoint}/{bucket}/{prefix}")
        }
    }
}

impl fmt::Debug for S3Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Location")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .field("access_key_id", &"<secret>")
            .field("secret_access_key", &"<secret>")
            .finish()
    }
}

/// Why an S3 repository cannot be set up or reached. Every message names the repository
/// (`s3:<endpoint>/<bucket>/<prefix>`) and none contains a credential.
#[derive(Debug, thiserror::Error)]
pub enum S3Error {
    #[error("the S3 endpoint is not usable: {0}")]
    InvalidEndpoint(&'static str),
    #[error("the S3 bucket name is empty or contains a slash")]
    InvalidBucket,
    #[error("the S3 {0} is empty")]
    MissingCredential(&'static str),
    #[error("cannot set up the S3 client for {location}: {cause}")]
    Setup { location: String, cause: String },
    #[error("could not reach the S3 endpoint of {location}: {cause}")]
    Unreachable { location: String, cause: String },
    #[error("the S3 endpoint of {location} did not answer within {} s", .waited.as_secs())]
    TimedOut { location: String, waited: Duration },
    #[error(
        "the S3 endpoint of {location} refused access: check the access key id and the secret \
         access key, and that they may use this bucket ({cause})"
    )]
    AccessDenied { location: String, cause: String },
    #[error("the bucket of {location} does not exist on that endpoint (Steward does not create buckets)")]
    NoSuchBucket { location: String },
    #[error("`{key}` does not exist in {location}")]
    NotFound { location: String, key: String },
    #[error("the S3 endpoint of {location} answered with an error: {cause}")]
    Failed { location: String, cause: String },
}

/// A restic-format repository's storage in an S3 bucket: implements rustic's [`ReadBackend`] and
/// [`WriteBackend`]. Cheap to clone (the connection pool is shared).
#[derive(Clone)]
pub struct S3Backend {
    operator: Operator,
    /// `s3:<endpoint>/<bucket>[/<prefix>]`, restic's spelling of the repository.
    location: String,
    /// The prefix without surrounding slashes, for [`ReadBackend::warmup_path`].
    prefix: String,
    /// Only to mask them in the server's answers quoted by errors.
    secrets: [String; 2],
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Backend")
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// Checks the location and builds the client. Nothing is sent yet: a wrong endpoint or
    /// credentials show at the first request ([`S3Backend::check`], or the repository's open).
    pub fn new(location: &S3Location) -> Result<S3Backend, S3Error> {
        let endpoint = checked_endpoint(&location.endpoint)?;
        let bucket = location.bucket.trim();
        if bucket.is_empty() || bucket.contains('/') {
            return Err(S3Error::InvalidBucket);
        }
        if location.access_key_id.is_empty() {
            return Err(S3Error::MissingCredential("access key id"));
        }
        if location.secret_access_key.is_empty() {
            return Err(S3Error::MissingCredential("secret access key"));
        }
        let prefix = location.prefix.trim_matches('/').to_string();
        let name = if prefix.is_empty() {
            format!("s3:{endpoint}/{bucket}")
        } else {
            format!("s3:{endpoint}/{bucket}/{prefix}")
        };
        let setup = |cause: String| S3Error::Setup {
            location: name.clone(),
            cause,
        };
        let region = match location.region.trim() {
            "" => DEFAULT_REGION,
            region => region,
        };

        let builder = S3::default()
            .endpoint(endpoint)
            .bucket(bucket)
            .region(region)
            .root(&format!("/{prefix}"))
            .access_key_id(&location.access_key_id)
            .secret_access_key(&location.secret_access_key)
            // Only the credentials given here: no AWS_* variables, ~/.aws files or EC2 metadata
            // (a request to the metadata address would hang off AWS).
            .disable_config_load()
            .disable_ec2_metadata();
        // Path-style addressing (`<endpoint>/<bucket>/<key>`) is opendal's default, and what
        // MinIO, moto and most self-hosted stores need.

        let client = reqwest_opendal::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|e| setup(format!("HTTP client: {e}")))?;
        let transport = HttpTransporter::new(ReqwestTransport::new(client));
        let operator = opendal::Operator::new(builder)
            .map_err(|e| setup(e.to_string()))?
            .with_context(OperationContext::new().with_http_transport(transport))
            // Timeouts inside the retries: a request that hangs is retried like one that failed.
            .layer(
                TimeoutLayer::new()
                    .with_timeout(REQUEST_TIMEOUT)
                    .with_io_timeout(IO_TIMEOUT),
            )
            .layer(
                RetryLayer::new()
                    .with_max_times(RETRIES)
                    .with_min_delay(RETRY_MIN_DELAY)
                    .with_max_delay(RETRY_MAX_DELAY)
                    .with_factor(2.0)
                    .with_jitter(),
            );
        let runtime = runtime().map_err(|e| setup(format!("tokio runtime: {e}")))?;
        let _entered = runtime.enter();
        let operator = Operator::new(operator).map_err(|e| setup(e.to_string()))?;

        Ok(S3Backend {
            operator,
            location: name,
            prefix,
            secrets: [location.access_key_id.clone(), location.secret_access_key.clone()],
        })
    }

    /// Sends one small request (a listing of at most one key): `Ok` when the endpoint answers,
    /// accepts the credentials and has the bucket. Blocking, like every method of a backend.
    pub fn check(&self) -> Result<(), S3Error> {
        self.list_one().map_err(|e| self.classify(&e, ""))
    }

    fn list_one(&self) -> Result<(), opendal::Error> {
        let options = ListOptions {
            limit: Some(1),
            ..Default::default()
        };
        match self.operator.lister_options("", options)?.next() {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// The key of a file relative to the prefix, as restic lays it out.
    fn key(tpe: FileType, id: &Id) -> String {
        let hex = id.to_hex();
        match tpe {
            FileType::Config => "config".to_string(),
            FileType::Pack => format!("data/{}/{}", &hex[..2], &*hex),
            _ => format!("{}/{}", tpe.dirname(), &*hex),
        }
    }

    /// An operator's reading of an opendal error about `key`.
    fn classify(&self, error: &opendal::Error, key: &str) -> S3Error {
        let location = self.location.clone();
        let message = error.message();
        if message.ends_with("timeout reached") {
            let waited = if message.starts_with("io ") {
                IO_TIMEOUT
            } else {
                REQUEST_TIMEOUT
            };
            return S3Error::TimedOut { location, waited };
        }
        // The HTTP transport's error: no answer came (refused, reset, DNS, TLS…).
        if message == "send http request" || has_io_error(error) {
            let cause = self.mask(&innermost_cause(error));
            return S3Error::Unreachable { location, cause };
        }
        // opendal files S3's NoSuchBucket under ConfigInvalid, not NotFound.
        if message.contains("NoSuchBucket") {
            return S3Error::NoSuchBucket { location };
        }
        let answer = s3_answer(message).unwrap_or_else(|| message.to_string());
        match error.kind() {
            opendal::ErrorKind::PermissionDenied => S3Error::AccessDenied {
                location,
                cause: self.mask(&answer),
            },
            opendal::ErrorKind::NotFound => S3Error::NotFound {
                location,
                key: key.to_string(),
            },
            _ => S3Error::Failed {
                location,
                cause: self.mask(&format!("{}: {answer}", error.kind())),
            },
        }
    }

    /// rustic's error for `doing` something to `key` that failed: the operator's reading first,
    /// opendal's full account (request, response status and headers; masked) as its cause.
    fn rustic_error(&self, doing: &str, key: &str, error: &opendal::Error) -> Box<RusticError> {
        let reading = self.classify(error, key);
        RusticError::with_source(
            ErrorKind::Backend,
            format!("{doing}: {reading}"),
            self.mask(&error.to_string()),
        )
    }

    fn mask(&self, text: &str) -> String {
        let mut text = text.to_string();
        for secret in &self.secrets {
            // A one- to three-character key would mask half the message and hide nothing.
            if secret.len() >= 4 {
                text = text.replace(secret.as_str(), "<secret>");
            }
        }
        text
    }
}

impl ReadBackend for S3Backend {
    fn location(&self) -> String {
        self.location.clone()
    }

    fn list_with_size(&self, tpe: FileType) -> RusticResult<Vec<(Id, u32)>> {
        if tpe == FileType::Config {
            let doing = "looking up `config`";
            return match self.operator.stat("config") {
                Ok(meta) => Ok(vec![(Id::default(), size_u32(meta.content_length(), "config")?)]),
                // No config: no repository here, unless there is no bucket either (an answer
                // to HEAD has no body to say which), which the operator had better hear.
                Err(e) if e.kind() == opendal::ErrorKind::NotFound => match self.list_one() {
                    Ok(()) => Ok(Vec::new()),
                    Err(e) => Err(self.rustic_error(doing, "config", &e)),
                },
                Err(e) => Err(self.rustic_error(doing, "config", &e)),
            };
        }
        let dir = format!("{}/", tpe.dirname());
        let doing = format!("listing `{dir}`");
        let options = ListOptions {
            recursive: true,
            ..Default::default()
        };
        let lister = self
            .operator
            .lister_options(&dir, options)
            .map_err(|e| self.rustic_error(&doing, &dir, &e))?;
        let mut files = Vec::new();
        for entry in lister {
            let entry = entry.map_err(|e| self.rustic_error(&doing, &dir, &e))?;
            if !entry.metadata().is_file() {
                continue;
            }
            // Anything that is not named by an id (a stray "directory" object, a temporary
            // file of another tool) is not part of the repository.
            if let Some(id) = Id::parse_some(entry.name(), tpe) {
                files.push((id, size_u32(entry.metadata().content_length(), entry.path())?));
            }
        }
        Ok(files)
    }

    fn read_full(&self, tpe: FileType, id: &Id) -> RusticResult<Bytes> {
        let key = Self::key(tpe, id);
        let buffer = self
            .operator
            .read(&key)
            .map_err(|e| self.rustic_error(&format!("reading `{key}`"), &key, &e))?;
        Ok(buffer.to_bytes())
    }

    fn read_partial(&self, tpe: FileType, id: &Id, _cacheable: bool, offset: u32, length: u32) -> RusticResult<Bytes> {
        let key = Self::key(tpe, id);
        let start = u64::from(offset);
        let options = ReadOptions {
            range: (start..start + u64::from(length)).into(),
            ..Default::default()
        };
        let buffer = self
            .operator
            .read_options(&key, options)
            .map_err(|e| self.rustic_error(&format!("reading {length} bytes of `{key}`"), &key, &e))?;
        Ok(buffer.to_bytes())
    }

    fn warmup_path(&self, tpe: FileType, id: &Id) -> String {
        let key = Self::key(tpe, id);
        if self.prefix.is_empty() {
            key
        } else {
            format!("{}/{key}", self.prefix)
        }
    }
}

impl WriteBackend for S3Backend {
    /// Checks that the bucket answers (creating nothing: see the module's docs).
    fn create(&self) -> RusticResult<()> {
        self.list_one()
            .map_err(|e| self.rustic_error("checking the bucket for a new repository", "", &e))
    }

    fn write_bytes(&self, tpe: FileType, id: &Id, _cacheable: bool, content: BytesList) -> RusticResult<()> {
        let key = Self::key(tpe, id);
        self.operator
            .write(&key, content.into_vec())
            .map_err(|e| self.rustic_error(&format!("writing `{key}`"), &key, &e))?;
        Ok(())
    }

    fn remove(&self, tpe: FileType, id: &Id, _cacheable: bool) -> RusticResult<()> {
        let key = Self::key(tpe, id);
        self.operator
            .delete(&key)
            .map_err(|e| self.rustic_error(&format!("removing `{key}`"), &key, &e))
    }
}

/// The runtime every S3 backend's requests run on; built once, never dropped.
fn runtime() -> Result<&'static Runtime, &'static str> {
    static RUNTIME: OnceLock<Result<Runtime, String>> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .thread_name("steward-s3")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(String::as_str)
}

/// The endpoint without a trailing slash, once it is an http(s) URL with a host and nothing
/// that would leak (credentials) or break request signing (query, fragment).
fn checked_endpoint(endpoint: &str) -> Result<&str, S3Error> {
    let endpoint = endpoint.trim().trim_end_matches('/');
    // The URL itself is not quoted in these errors: it may hold credentials.
    let url = url::Url::parse(endpoint).map_err(|_| S3Error::InvalidEndpoint("it is not a URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(S3Error::InvalidEndpoint("it must start with http:// or https://"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(S3Error::InvalidEndpoint("it names no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(S3Error::InvalidEndpoint(
            "it must not carry credentials: give them as the access key id and secret access key",
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(S3Error::InvalidEndpoint("it must not have a query or a fragment"));
    }
    Ok(endpoint)
}

/// rustic counts file sizes in `u32`; a bigger object is not one rustic or restic wrote.
fn size_u32(size: u64, key: &str) -> RusticResult<u32> {
    u32::try_from(size).map_err(|_| {
        RusticError::new(
            ErrorKind::Backend,
            format!("`{key}` is {size} bytes long, more than a repository file can be"),
        )
    })
}

/// Whether the failure came from the network rather than from an answer.
fn has_io_error(error: &opendal::Error) -> bool {
    let mut source = error.source();
    while let Some(e) = source {
        if e.is::<std::io::Error>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The last error of the chain: for a refused connection "Connection refused (os error 111)"
/// rather than reqwest's "error sending request for url (…)".
fn innermost_cause(error: &opendal::Error) -> String {
    let mut last: &dyn std::error::Error = error;
    while let Some(source) = last.source() {
        last = source;
    }
    last.to_string()
}

/// `Code: message` out of opendal's rendering of an S3 error answer
/// (`S3Error { code: "AccessDenied", message: "Access Denied", … }`).
fn s3_answer(message: &str) -> Option<String> {
    let field = |name: &str| {
        let start = message.find(&format!("{name}: \""))? + name.len() + 3;
        let end = start + message[start..].find('"')?;
        Some(&message[start..end])
    };
    let code = field("code")?;
    match field("message") {
        Some(text) if !text.is_empty() => Some(format!("{code}: {text}")),
        _ => Some(code.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use std::{
        path::{Path, PathBuf},
        process::Command,
        sync::Arc,
        time::{Duration, Instant},
    };

    use rustic_core::{
        BackupOptions, ConfigOptions, Credentials, KeyOptions, PathList, Repository, RepositoryBackends,
        RepositoryOptions, SnapshotOptions, repofile::SnapshotFile,
    };

    use super::*;
    use crate::testing::s3_server::{ACCESS_KEY_ID, S3Server, SECRET_ACCESS_KEY, free_port};

    const PASSWORD: &str = "correct horse battery staple";
    const PREFIX: &str = "steward/repo";

    /// A directory tree to back up: text, an empty file, and 300 kB of bytes that do not
    /// compress (several chunks, so a file is read back from more than one blob).
    struct Source {
        _dir: tempfile::TempDir,
        root: PathBuf,
        big: Vec<u8>,
    }

    impl Source {
        fn new() -> Source {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().join("tree");
            std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
            std::fs::write(root.join("hello.txt"), "hello, S3\n").unwrap();
            std::fs::write(root.join("sub/empty"), "").unwrap();
            let mut state = 0x2545_f491_4f6c_dd1d_u64;
            let big: Vec<u8> = (0..300_000)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    state as u8
                })
                .collect();
            std::fs::write(root.join("sub/deeper/big.bin"), &big).unwrap();
            Source { _dir: dir, root, big }
        }

        fn path(&self, relative: &str) -> String {
            self.root.join(relative).to_str().unwrap().to_string()
        }
    }

    fn backends(location: &S3Location) -> RepositoryBackends {
        RepositoryBackends::new(Arc::new(S3Backend::new(location).unwrap()), None)
    }

    /// No local cache: every read goes to S3, and no test writes into the user's cache dir.
    fn options() -> RepositoryOptions {
        RepositoryOptions::default().no_cache(true)
    }

    /// Initialises a repository at `location` and backs `source` up into it, as Steward will.
    fn init_and_back_up(location: &S3Location, source: &Path) -> SnapshotFile {
        let repo = Repository::new(&options(), &backends(location))
            .unwrap()
            .init(
                &Credentials::password(PASSWORD),
                &KeyOptions::default(),
                &ConfigOptions::default(),
            )
            .unwrap()
            .to_indexed_ids()
            .unwrap();
        let source = PathList::from_string(source.to_str().unwrap())
            .unwrap()
            .sanitize()
            .unwrap();
        let snapshot = SnapshotOptions::default()
            .add_tags("steward")
            .unwrap()
            .to_snapshot()
            .unwrap();
        repo.backup(&BackupOptions::default(), &source, snapshot).unwrap()
    }

    /// rustic runs in `spawn_blocking`, as in Steward: the backend must not need the caller's
    /// runtime.
    async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
        tokio::task::spawn_blocking(work).await.unwrap()
    }

    #[tokio::test]
    async fn a_backup_is_written_to_s3_and_read_back_after_reopening() {
        let server = S3Server::start().await;
        let location = server.location(PREFIX);
        let source = Source::new();

        let backend = S3Backend::new(&location).unwrap();
        let port = server.endpoint().rsplit(':').next().unwrap().to_string();
        assert_eq!(
            backend.location(),
            format!("s3:http://127.0.0.1:{port}/steward-test/steward/repo")
        );
        for shown in [format!("{backend:?}"), format!("{location:?}"), backend.location()] {
            assert!(
                !shown.contains(SECRET_ACCESS_KEY) && !shown.contains(ACCESS_KEY_ID),
                "{shown}"
            );
        }

        let (saved, source) = blocking({
            let location = location.clone();
            move || (init_and_back_up(&location, &source.root), source)
        })
        .await;

        let (snapshots, hello, big, empty, packs) = blocking({
            let location = location.clone();
            let (hello, big, empty) = (
                source.path("hello.txt"),
                source.path("sub/deeper/big.bin"),
                source.path("sub/empty"),
            );
            move || {
                let repo = Repository::new(&options(), &backends(&location))
                    .unwrap()
                    .open(&Credentials::password(PASSWORD))
                    .unwrap();
                let snapshots = repo.get_all_snapshots().unwrap();
                let repo = repo.to_indexed().unwrap();
                let read = |path: &str| {
                    let node = repo.node_from_snapshot_and_path(&snapshots[0], path).unwrap();
                    let mut bytes = Vec::new();
                    repo.dump(&node, &mut bytes).unwrap();
                    bytes
                };
                let (hello, big, empty) = (read(&hello), read(&big), read(&empty));
                let packs = S3Backend::new(&location)
                    .unwrap()
                    .list_with_size(FileType::Pack)
                    .unwrap();
                (snapshots, hello, big, empty, packs)
            }
        })
        .await;

        assert_eq!(snapshots.len(), 1);
        assert_eq!(snapshots[0].id, saved.id);
        assert!(snapshots[0].tags.contains("steward"), "{:?}", snapshots[0].tags);
        assert_eq!(hello, b"hello, S3\n");
        assert_eq!(big, source.big);
        assert!(empty.is_empty());
        // Packs sit under data/<two hex digits>/ with their real sizes.
        assert!(!packs.is_empty());
        assert!(packs.iter().all(|(_, size)| *size > 0), "{packs:?}");
        let log = server.log();
        let first = packs[0].0.to_hex().to_string();
        assert!(
            log.contains(&format!("/steward-test/steward/repo/data/{}/{}", &first[..2], first)),
            "no request for pack {first} in moto's log:\n{log}"
        );
    }

    /// Debian's restic (`$STEWARD_TEST_RESTIC` if set), run against the repository at PREFIX.
    fn restic(server: &S3Server, args: &[&str]) -> Vec<u8> {
        let restic = std::env::var("STEWARD_TEST_RESTIC").unwrap_or_else(|_| "restic".to_string());
        let repository = format!("s3:{}/{}/{PREFIX}", server.endpoint(), server.bucket());
        let output = Command::new(&restic)
            .args(["--no-cache", "-r", &repository])
            .args(args)
            .env("RESTIC_PASSWORD", PASSWORD)
            .env("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID)
            .env("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
            .env_remove("RESTIC_REPOSITORY")
            .env_remove("RESTIC_PASSWORD_FILE")
            .output()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {restic} ({e}): this test checks that restic reads Steward's repository; \
                     run scripts/setup.sh (it installs Debian's restic) or set STEWARD_TEST_RESTIC"
                )
            });
        assert!(
            output.status.success(),
            "restic {args:?} failed ({}): {}\nmoto's log:\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr),
            server.log()
        );
        output.stdout
    }

    #[tokio::test]
    async fn restic_reads_the_repository_steward_wrote() {
        let server = S3Server::start().await;
        let location = server.location(PREFIX);
        let source = Source::new();
        let (saved, source) = blocking(move || (init_and_back_up(&location, &source.root), source)).await;

        let listed: serde_json::Value = serde_json::from_slice(&restic(&server, &["snapshots", "--json"])).unwrap();
        let listed = listed.as_array().unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        assert_eq!(listed[0]["id"], saved.id.to_hex().as_str());
        assert_eq!(listed[0]["tags"], serde_json::json!(["steward"]));
        assert_eq!(listed[0]["paths"], serde_json::json!([source.root.to_str().unwrap()]));

        let big = restic(&server, &["dump", "latest", &source.path("sub/deeper/big.bin")]);
        assert!(
            big == source.big,
            "restic dumped {} bytes, not the {} backed up",
            big.len(),
            source.big.len()
        );
        let hello = restic(&server, &["dump", "latest", &source.path("hello.txt")]);
        assert_eq!(hello, b"hello, S3\n");
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_reported_as_such_within_seconds() {
        let port = free_port();
        let location = S3Location {
            endpoint: format!("http://127.0.0.1:{port}"),
            bucket: "steward".into(),
            region: String::new(),
            prefix: PREFIX.into(),
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
        };
        let started = Instant::now();
        let error = blocking(move || {
            Repository::new(&options(), &backends(&location))
                .unwrap()
                .open(&Credentials::password(PASSWORD))
                .unwrap_err()
        })
        .await;
        let waited = started.elapsed();

        let text = error.to_string();
        assert!(
            text.contains(&format!(
                "could not reach the S3 endpoint of s3:http://127.0.0.1:{port}/steward/steward/repo"
            )),
            "{text}"
        );
        assert!(text.to_lowercase().contains("connection refused"), "{text}");
        assert!(waited < Duration::from_secs(15), "took {waited:?}");
        assert!(!text.contains(SECRET_ACCESS_KEY), "{text}");
    }

    #[tokio::test]
    async fn a_wrong_password_is_a_clear_error() {
        let server = S3Server::start().await;
        let location = server.location(PREFIX);
        let error = blocking(move || {
            Repository::new(&options(), &backends(&location))
                .unwrap()
                .init(
                    &Credentials::password(PASSWORD),
                    &KeyOptions::default(),
                    &ConfigOptions::default(),
                )
                .unwrap();
            Repository::new(&options(), &backends(&location))
                .unwrap()
                .open(&Credentials::password("not the password"))
                .unwrap_err()
        })
        .await;
        assert!(error.is_incorrect_password(), "{error}");
        assert!(error.to_string().contains("password"), "{error}");
    }

    #[tokio::test]
    async fn a_missing_bucket_is_named_not_mistaken_for_an_empty_repository() {
        let server = S3Server::start().await;
        let location = S3Location {
            bucket: "no-such-bucket".into(),
            ..server.location(PREFIX)
        };
        let (on_open, on_init) = blocking(move || {
            let on_open = Repository::new(&options(), &backends(&location))
                .unwrap()
                .open(&Credentials::password(PASSWORD))
                .unwrap_err();
            let on_init = Repository::new(&options(), &backends(&location))
                .unwrap()
                .init(
                    &Credentials::password(PASSWORD),
                    &KeyOptions::default(),
                    &ConfigOptions::default(),
                )
                .unwrap_err();
            (on_open.to_string(), on_init.to_string())
        })
        .await;
        for text in [on_open, on_init] {
            assert!(
                text.contains("/no-such-bucket/steward/repo does not exist on that endpoint"),
                "{text}"
            );
        }
    }

    /// moto accepts any key, so the refusal S3 gives for an unknown one comes from a stand-in
    /// that answers every request as AWS does (echoing the key in its message).
    #[tokio::test]
    async fn refused_credentials_are_named_and_never_echoed() {
        use axum::{Router, http::StatusCode};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InvalidAccessKeyId</Code><Message>The AWS \
             Access Key Id {ACCESS_KEY_ID} you provided does not exist in our records.</Message></Error>"
        );
        let app = Router::new().fallback(move || {
            let body = body.clone();
            async move { (StatusCode::FORBIDDEN, [("content-type", "application/xml")], body) }
        });
        let server = tokio::spawn(async move { axum::serve(listener, app).await });

        let location = S3Location {
            endpoint: format!("http://127.0.0.1:{port}/"),
            bucket: "steward".into(),
            region: "eu-central-1".into(),
            prefix: String::new(),
            access_key_id: ACCESS_KEY_ID.into(),
            secret_access_key: SECRET_ACCESS_KEY.into(),
        };
        let (checked, read) = blocking(move || {
            let backend = S3Backend::new(&location).unwrap();
            let checked = backend.check().unwrap_err();
            let read = backend.read_full(FileType::Index, &Id::default()).unwrap_err();
            (checked, read.to_string())
        })
        .await;
        server.abort();

        assert!(matches!(checked, S3Error::AccessDenied { .. }), "{checked:?}");
        for text in [checked.to_string(), read] {
            assert!(
                text.contains(&format!(
                    "the S3 endpoint of s3:http://127.0.0.1:{port}/steward refused access"
                )),
                "{text}"
            );
            assert!(text.contains("InvalidAccessKeyId"), "{text}");
            assert!(
                !text.contains(ACCESS_KEY_ID) && !text.contains(SECRET_ACCESS_KEY),
                "{text}"
            );
        }
    }

    #[test]
    fn a_location_that_would_leak_or_cannot_work_is_refused_before_any_request() {
        let good = S3Location {
            endpoint: "https://s3.example.com".into(),
            bucket: "b".into(),
            region: String::new(),
            prefix: "/p/".into(),
            access_key_id: "id".into(),
            secret_access_key: "secret".into(),
        };
        assert_eq!(
            S3Backend::new(&good).unwrap().location(),
            "s3:https://s3.example.com/b/p"
        );
        let refused = |change: fn(&mut S3Location)| {
            let mut location = good.clone();
            change(&mut location);
            S3Backend::new(&location).unwrap_err().to_string()
        };
        let leak = refused(|l| l.endpoint = "https://user:hunter22@s3.example.com".into());
        assert!(
            leak.contains("must not carry credentials") && !leak.contains("hunter22"),
            "{leak}"
        );
        assert!(refused(|l| l.endpoint = "ftp://s3.example.com".into()).contains("http://"));
        assert!(refused(|l| l.endpoint = "s3.example.com".into()).contains("not a URL"));
        assert!(refused(|l| l.bucket = "a/b".into()).contains("bucket"));
        assert!(refused(|l| l.secret_access_key.clear()).contains("secret access key is empty"));
    }
}
