//! The one HTTP client of Steward: the `http` backup driver, HTTP maintenance hooks and smoke
//! checks all call remote systems through it.
//!
//! What it promises, whoever calls it:
//!
//! - **A URL's secrets stay out of sight.** A configured URL may carry a password
//!   (`https://user:pw@host/x`) or a token in its query (`?token=…`). Neither appears in an error,
//!   a log line, an audit detail or the browser: URLs are shown by [`shown`] (no credentials, no
//!   query, no fragment), and a failed request is described by [`describe`], which leaves out
//!   the URL that reqwest's own messages carry (`… for url (https://user:pw@host/x?token=…)`).
//!   Answers that echo a secret are masked before anyone sees them ([`Endpoint::secrets`]).
//! - **Credentials in a URL are sent as HTTP basic auth**, as curl does: the user and password
//!   are taken out of the URL (percent-decoded) and sent in an `Authorization` header marked
//!   sensitive, so the URL that travels and that errors could name has none.
//! - **No redirects.** A secret header or basic auth must never travel to a host nobody
//!   configured; a redirect is an answer like any other (3xx is not success).
//! - **Bounded time and size.** Every client has a connect timeout and a request timeout; an
//!   answer is read up to a cap ([`MAX_JSON_BYTES`] for the JSON that drivers and hooks keep),
//!   and a larger one is a clear error instead of memory spent on it.
//!
//! This module is a leaf: it depends on nothing of the queue or the jobs, only on the
//! configuration's secret types.

use std::time::Duration;

use reqwest::{
    Client, Method, RequestBuilder, Response, StatusCode,
    header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue},
};
use serde_json::Value;

use crate::config::SecretHeader;

/// The most of a JSON answer (a status report, what a hook reports) that Steward reads.
pub const MAX_JSON_BYTES: usize = 1 << 20;

/// How long connecting to a remote system may take, whatever the request's own timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The most of an answer's body that goes into an error message.
const MAX_SNIPPET_CHARS: usize = 300;

/// Query values shorter than this are not masked in answers: `page=1` is no secret, and masking
/// every `1` would garble the text. Tokens are longer.
const MIN_MASKED_QUERY_VALUE: usize = 4;

/// A configured URL, ready to call: credentials taken out (sent as basic auth), and how it is
/// shown.
#[derive(Clone)]
pub struct Endpoint {
    /// The URL that is requested: no credentials, the query kept.
    url: url::Url,
    user: Option<(String, Option<String>)>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Endpoint").field(&self.shown()).finish()
    }
}

impl Endpoint {
    /// Parses a configured URL. The error says what is wrong as a predicate ("is not valid: …",
    /// for "the start URL is not valid: …"), never repeating the URL (it may hold a password or
    /// a token); callers name the URL.
    pub fn parse(raw: &str) -> Result<Endpoint, String> {
        let mut url = url::Url::parse(raw.trim()).map_err(|e| format!("is not valid: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("must start with http:// or https://, not {}:", url.scheme()));
        }
        let user = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let decode = |text: &str| {
                percent_encoding::percent_decode_str(text)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            let user = (decode(url.username()), url.password().map(decode));
            let _ = url.set_username("");
            let _ = url.set_password(None);
            Some(user)
        };
        Ok(Endpoint { url, user })
    }

    /// The URL as logs, errors and reports show it: scheme, host, port and path only.
    pub fn shown(&self) -> String {
        shown(&self.url)
    }

    /// Adds `key=value` to the query (the status URL's `backup_id`).
    pub fn append_query(&mut self, key: &str, value: &str) {
        self.url.query_pairs_mut().append_pair(key, value);
    }

    /// The values to mask in anything an answer puts in front of people: the URL's password
    /// and the values of its query.
    pub fn secrets(&self) -> Vec<String> {
        let password = self.user.as_ref().and_then(|(_, password)| password.clone());
        password
            .into_iter()
            .chain(
                self.url
                    .query_pairs()
                    .map(|(_, value)| value.into_owned())
                    .filter(|value| value.len() >= MIN_MASKED_QUERY_VALUE),
            )
            .collect()
    }

    /// A request to this endpoint, with its basic auth if the URL had credentials (reqwest
    /// marks that header sensitive, so hyper never logs it).
    pub fn request(&self, client: &Client, method: Method) -> RequestBuilder {
        let request = client.request(method, self.url.clone());
        match &self.user {
            None => request,
            Some((user, password)) => request.basic_auth(user, password.as_deref()),
        }
    }
}

/// A URL as logs and reports show it: without credentials, query and fragment (any of which
/// may hold a token).
pub fn shown(url: &url::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    url.to_string()
}

/// A client for calls to remote systems: rustls, no redirects, a connect timeout, and
/// `timeout` for each request as a whole; `headers` go with every request (a secret header:
/// mark it sensitive).
pub fn client(timeout: Duration, headers: HeaderMap) -> Result<Client, String> {
    Client::builder()
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT.min(timeout))
        .timeout(timeout)
        .build()
        .map_err(|e| format!("the HTTP client cannot be set up: {}", describe(e)))
}

/// The header a secret header configures, its value read now and marked sensitive; the value
/// is returned too, to be masked wherever an answer is shown.
pub fn sensitive_header(header: &SecretHeader) -> Result<(HeaderName, HeaderValue, String), String> {
    let name = HeaderName::from_bytes(header.name.as_bytes())
        .map_err(|_| format!("\"{}\" is not a valid header name", header.name))?;
    let value = header
        .value
        .read()
        .map_err(|why| format!("the value of the header {}: {why}", header.name))?;
    let mut header_value = HeaderValue::from_str(&value)
        .map_err(|_| format!("the value of the header {} is not a valid header value", header.name))?;
    header_value.set_sensitive(true);
    Ok((name, header_value, value))
}

/// A reqwest error in words, with its causes ("connection refused") and without the URL.
pub fn describe(error: reqwest::Error) -> String {
    if error.is_timeout() {
        return "no answer in time (timed out)".into();
    }
    let error = error.without_url();
    let mut text = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        // hyper repeats its cause in its own message now and then.
        if !text.ends_with(&inner_text) {
            text.push_str(&format!(": {inner_text}"));
        }
        cause = inner.source();
    }
    text
}

/// Sends a request; a failure is described without the URL.
pub async fn send(request: RequestBuilder) -> Result<Response, String> {
    request.send().await.map_err(describe)
}

/// Reads the whole body, at most `limit` bytes: a larger answer is an error that says so.
pub async fn read_capped(mut response: Response, limit: usize) -> Result<Vec<u8>, String> {
    let too_large = || format!("the answer is larger than {}", size_in_words(limit));
    if response.content_length().is_some_and(|length| length > limit as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads the first `limit` bytes of the body and drops the rest (a page that only has to
/// answer, whose body is shown in an error at most).
pub async fn read_prefix(mut response: Response, limit: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(describe)? {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(body)
}

/// `1 MiB`, `64 KiB`, `100 bytes`.
fn size_in_words(bytes: usize) -> String {
    match bytes {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// A body as JSON, or as a string when it is not JSON.
pub fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

/// Replaces every secret in `text` with `***`, longer secrets first (the job log's rule; this
/// module cannot use the job log's own function and stay a leaf).
pub fn mask(text: &str, secrets: &[String]) -> String {
    let mut secrets: Vec<&String> = secrets.iter().filter(|s| !s.is_empty()).collect();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    secrets
        .into_iter()
        .fold(text.to_string(), |text, secret| text.replace(secret.as_str(), "***"))
}

/// `: <the body, masked and shortened to one line>` for an error message; empty for an empty
/// body.
pub fn snippet(body: &Value, secrets: &[String]) -> String {
    let text = match body {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    };
    let text = mask(text.trim(), secrets).replace(['\n', '\r'], " ");
    if text.is_empty() {
        return String::new();
    }
    let mut shown: String = text.chars().take(MAX_SNIPPET_CHARS).collect();
    if shown.len() < text.len() {
        shown.push('…');
    }
    format!(": {shown}")
}

/// What a hook or a smoke check answered with a 2xx status: its body (masked), as JSON when
/// it is JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct HookAnswer {
    pub status: StatusCode,
    pub body: Value,
}

/// Calls an HTTP hook or smoke check: POSTs `body` as JSON (or GETs without one) with the
/// secret header, within `timeout`. A 2xx answer is success; its body is read up to
/// [`MAX_JSON_BYTES`] (a POSTed hook's answer is kept as state, so a larger one is an error; a
/// GET's body is only looked at, so the rest is dropped). Every error starts with what failed
/// and the URL as [`shown`], and holds none of the URL's or the header's secrets.
pub async fn call_hook(
    url: &str,
    secret_header: Option<&SecretHeader>,
    body: Option<&Value>,
    timeout: Duration,
) -> Result<HookAnswer, String> {
    let endpoint = Endpoint::parse(url).map_err(|why| format!("the URL {why}"))?;
    let shown = endpoint.shown();
    let mut secrets = endpoint.secrets();
    let mut headers = HeaderMap::new();
    if let Some(header) = secret_header {
        let (name, value, secret) = sensitive_header(header)?;
        secrets.push(secret);
        headers.insert(name, value);
    }
    let client = client(timeout, headers)?;
    let request = match body {
        Some(body) => endpoint
            .request(&client, Method::POST)
            .header(CONTENT_TYPE, "application/json")
            .body(body.to_string()),
        None => endpoint.request(&client, Method::GET),
    };
    let response = request.send().await.map_err(|error| {
        if error.is_timeout() {
            format!("{shown} did not answer within {} s", timeout.as_secs())
        } else {
            format!("{shown} could not be reached: {}", mask(&describe(error), &secrets))
        }
    })?;
    let status = response.status();
    let read = if body.is_some() {
        read_capped(response, MAX_JSON_BYTES).await
    } else {
        read_prefix(response, MAX_JSON_BYTES).await
    };
    let text = read.map_err(|why| format!("{shown} answered {status}, but reading the answer failed: {why}"))?;
    let text = mask(String::from_utf8_lossy(&text).trim(), &secrets);
    let answer = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    if status.is_success() {
        Ok(HookAnswer { status, body: answer })
    } else if status.is_redirection() {
        Err(format!(
            "{shown} answered {status}, a redirect, which Steward does not follow: configure the URL it points to"
        ))
    } else {
        Err(format!("{shown} answered {status}{}", snippet(&answer, &[])))
    }
}

#[cfg(test)]
mod tests;
