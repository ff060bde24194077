//! `/metrics`: Prometheus' view of Steward, rendered by one of our own routes (no listener of
//! the exporter's own, no push gateway), so it sits behind the IP allowlist like every route.
//!
//! The engine records through the `metrics` facade ([`engine::metrics`] names every metric);
//! this module installs the recorder behind it, once per process ([`recorder`]), with
//! `*_duration_seconds` histograms as real Prometheus histograms (which can be summed across
//! instances) rather than summaries. A scrape refreshes the gauges that come from the database,
//! then renders.
//!
//! Prometheus does not sign in, so the route needs no session. When `metrics.token` is
//! configured, a scrape must send `Authorization: Bearer <token>`; the token is read from its
//! secret when the router is built, so a token that cannot be read stops start-up (naming
//! `metrics.token`, never the value) instead of failing every scrape later. Only its SHA-256 is
//! kept, and the comparison takes the same time whatever the guess.

use std::{sync::OnceLock, time::Duration};

use anyhow::Context;
use axum::{
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use engine::Engine;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The text exposition format Prometheus asks for.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are folded into their buckets between scrapes, as the
/// exporter's documentation asks of a recorder installed without its own listener.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// The handle of this process' recorder, installed the first time it is asked for.
///
/// The `metrics` facade has one global recorder per process; a router built twice (tests start
/// several servers in one process) shares it. Should another recorder already be installed,
/// `/metrics` still answers, with only what the scrape itself sets (the database's gauges
/// would not reach it either), and a warning says why.
pub fn recorder() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new().set_buckets_for_metric(
                Matcher::Suffix(engine::metrics::DURATION_SUFFIX.into()),
                engine::metrics::DURATION_BUCKETS,
            );
            let builder = builder.unwrap_or_else(|e| {
                // Only an empty bucket list fails, and ours is a non-empty constant.
                tracing::warn!(error = %e, "metrics: duration buckets refused; durations are summaries");
                PrometheusBuilder::new()
            });
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            match metrics::set_global_recorder(recorder) {
                Ok(()) => engine::metrics::describe(),
                Err(e) => tracing::warn!(error = %e, "metrics: another recorder is installed; /metrics shows little"),
            }
            let upkeep = handle.clone();
            let started = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = started {
                // Every scrape runs the upkeep too: only memory between scrapes is at stake.
                tracing::warn!(error = %e, "metrics: could not start the upkeep thread");
            }
            handle
        })
        .clone()
}

/// What the `/metrics` route needs: the recorder's handle and the token's digest, if any.
#[derive(Clone)]
pub struct Endpoint {
    handle: PrometheusHandle,
    token_sha256: Option<[u8; 32]>,
}

impl Endpoint {
    /// Installs the recorder (once per process) and reads `metrics.token` from its secret.
    /// Fails when the token is configured but cannot be read or is empty.
    pub fn new(engine: &Engine) -> anyhow::Result<Endpoint> {
        let token_sha256 = match &engine.config().metrics.token {
            None => None,
            Some(source) => {
                let token = source
                    .read()
                    .map_err(anyhow::Error::msg)
                    .context("metrics.token: the scrape token cannot be read")?;
                let token = token.trim();
                anyhow::ensure!(
                    !token.is_empty(),
                    "metrics.token: the scrape token is empty; give it a value or remove [metrics] token"
                );
                Some(digest(token))
            }
        };
        Ok(Endpoint {
            handle: recorder(),
            token_sha256,
        })
    }

    /// Whether the request may read the metrics: always without a token, else only with it.
    fn admits(&self, headers: &HeaderMap) -> bool {
        let Some(expected) = &self.token_sha256 else {
            return true;
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim());
        // Digests of equal length, compared in constant time: neither the token's length nor
        // how much of a guess was right shows in the answer's timing.
        presented.is_some_and(|token| bool::from(digest(token).ct_eq(expected)))
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// `GET /metrics`: 401 without the configured token; otherwise the database's gauges are
/// refreshed and everything is rendered in Prometheus' text format. A database error is a bare
/// 500, its cause logged.
pub async fn scrape(State(endpoint): State<Endpoint>, State(engine): State<Engine>, headers: HeaderMap) -> Response {
    if !endpoint.admits(&headers) {
        tracing::warn!(
            path = "/metrics",
            "metrics scrape refused: missing or wrong bearer token"
        );
        return (
            StatusCode::UNAUTHORIZED,
            [
                (
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"steward metrics\""),
                ),
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                ),
            ],
            "401 Unauthorized\n",
        )
            .into_response();
    }
    if let Err(e) = engine.refresh_metrics().await {
        tracing::error!(error = %e, "metrics: reading the database failed");
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            "500 Internal Server Error\n",
        )
            .into_response();
    }
    endpoint.handle.run_upkeep();
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE))],
        endpoint.handle.render(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint(token: Option<&str>) -> Endpoint {
        Endpoint {
            handle: PrometheusBuilder::new().build_recorder().handle(),
            token_sha256: token.map(digest),
        }
    }

    fn with_authorization(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_the_configured_bearer_token_is_admitted() {
        let guarded = endpoint(Some("s3cret"));
        assert!(guarded.admits(&with_authorization("Bearer s3cret")));
        assert!(
            guarded.admits(&with_authorization("bearer s3cret")),
            "the scheme is case-insensitive"
        );
        assert!(!guarded.admits(&HeaderMap::new()));
        assert!(!guarded.admits(&with_authorization("Bearer s3cre")));
        assert!(!guarded.admits(&with_authorization("Bearer s3cret2")));
        assert!(!guarded.admits(&with_authorization("Bearer ")));
        assert!(!guarded.admits(&with_authorization("Basic s3cret")));
        assert!(!guarded.admits(&with_authorization("s3cret")));
        assert!(
            endpoint(None).admits(&HeaderMap::new()),
            "no token configured: open (the allowlist still applies)"
        );
    }
}
