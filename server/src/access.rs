//! The outermost layers: the IP allowlist and the cross-site request check.
//!
//! **Allowlist.** The client address is the TCP peer. Only when the peer is a trusted proxy are
//! `X-Forwarded-For` (or, without it, `Forwarded`) believed, and then the client is the
//! right-most address that is not itself a trusted proxy: everything left of it was written by
//! the client and could say anything. IPv4-mapped IPv6 peers (`::ffff:a.b.c.d`) are treated as
//! the IPv4 address they carry. A refused request gets a bare 403; the refusal is logged, and
//! audited at most once per address per [`AUDIT_EVERY`] so a scan cannot flood the audit log.
//! The client address found here is put into the request's extensions as [`ClientIp`] for the
//! layers and handlers behind.
//!
//! **Cross-site check.** A request that may change something (any method but GET, HEAD,
//! OPTIONS) is refused when the browser says it comes from another site (`Sec-Fetch-Site`) or
//! its `Origin` does not match the host it was sent to. SameSite=Strict cookies already keep the
//! session out of such requests; this is the second lock on the same door.

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use engine::{
    Engine,
    accounts::ClientIp,
    audit::{self, NewEvent, Outcome},
};
use ipnet::IpNet;

/// At most one audit event per refused address in this period.
pub const AUDIT_EVERY: Duration = Duration::from_secs(600);
/// Bound on remembered refused addresses (a wide scan must not grow memory without end).
const MAX_REMEMBERED: usize = 10_000;

#[derive(Clone)]
pub struct Allowlist {
    allow: Arc<Vec<IpNet>>,
    trusted_proxies: Arc<Vec<IpNet>>,
    healthz_exempt: bool,
    engine: Engine,
    last_audited: Arc<Mutex<HashMap<IpAddr, Instant>>>,
}

impl Allowlist {
    pub fn new(engine: Engine) -> Allowlist {
        let access = &engine.config().access;
        Allowlist {
            allow: Arc::new(access.allow.clone()),
            trusted_proxies: Arc::new(access.trusted_proxies.clone()),
            healthz_exempt: access.healthz_exempt,
            last_audited: Arc::default(),
            engine,
        }
    }

    fn allows(&self, ip: IpAddr) -> bool {
        self.allow.iter().any(|net| net.contains(&ip))
    }

    /// Whether this refusal should be written to the audit log (rate-limited per address).
    fn should_audit(&self, ip: IpAddr) -> bool {
        let Ok(mut seen) = self.last_audited.lock() else {
            return false;
        };
        let now = Instant::now();
        if seen.get(&ip).is_some_and(|at| now.duration_since(*at) < AUDIT_EVERY) {
            return false;
        }
        if seen.len() >= MAX_REMEMBERED {
            seen.retain(|_, at| now.duration_since(*at) < AUDIT_EVERY);
            if seen.len() >= MAX_REMEMBERED {
                return false;
            }
        }
        seen.insert(ip, now);
        true
    }
}

/// The client's address as the allowlist decided it: the peer, or the right-most untrusted hop
/// behind trusted proxies. `None` when a forwarded hop cannot be read (refused).
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted_proxies: &[IpNet]) -> Option<IpAddr> {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let hops = forwarded_hops(headers);
    let mut client = Some(peer);
    for hop in hops.iter().rev() {
        let ip = parse_hop(hop)?;
        client = Some(ip);
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

/// The addresses a request passed through, oldest first: from every `X-Forwarded-For` header,
/// or else from the `for=` parameters of every `Forwarded` header.
fn forwarded_hops(headers: &HeaderMap) -> Vec<String> {
    let split = |name: header::HeaderName| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let xff = split(header::HeaderName::from_static("x-forwarded-for"));
    if !xff.is_empty() {
        return xff;
    }
    split(header::FORWARDED)
        .into_iter()
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.eq_ignore_ascii_case("for")
                    .then(|| value.trim().trim_matches('"').to_string())
            })
        })
        .collect()
}

/// `1.2.3.4`, `1.2.3.4:5678`, `[2001:db8::1]:443`, `2001:db8::1` → the address.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    if let Ok(addr) = hop.parse::<SocketAddr>() {
        return Some(addr.ip().to_canonical());
    }
    hop.strip_prefix('[')
        .and_then(|rest| rest.split(']').next())
        .and_then(|ip| ip.parse::<IpAddr>().ok())
}

/// Axum middleware: refuse what the allowlist does not allow; tell the rest who the client is.
pub async fn allowlist(State(allowlist): State<Allowlist>, mut request: Request, next: Next) -> Response {
    if allowlist.healthz_exempt && request.uri().path() == "/healthz" {
        return next.run(request).await;
    }
    let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() else {
        // Served without connect info: nothing can be checked, so nothing is let through.
        tracing::error!("request without peer address refused: serve with into_make_service_with_connect_info");
        return forbidden();
    };
    let client = client_ip(peer.ip(), request.headers(), &allowlist.trusted_proxies);
    match client {
        Some(ip) if allowlist.allows(ip) => {
            request.extensions_mut().insert(ClientIp(ip));
            next.run(request).await
        }
        _ => {
            let shown = client.map_or_else(
                || format!("unreadable forwarded address via {}", peer.ip()),
                |ip| ip.to_string(),
            );
            tracing::warn!(client = %shown, peer = %peer.ip(), path = %request.uri().path(), "refused by the IP allowlist");
            if allowlist.should_audit(client.unwrap_or(peer.ip())) {
                let event = NewEvent {
                    actor: None,
                    client_ip: Some(&shown),
                    action: "access.refused",
                    target: Some(request.uri().path()),
                    outcome: Outcome::Refused,
                    detail: serde_json::json!({"peer": peer.ip().to_string(), "method": request.method().as_str()}),
                    environment: None,
                };
                if let Err(e) = audit::record(allowlist.engine.db().pool(), &event).await {
                    tracing::error!(error = %e, "could not audit an allowlist refusal");
                }
            }
            forbidden()
        }
    }
}

fn forbidden() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "403 Forbidden\n",
    )
        .into_response()
}

/// Axum middleware: refuse state-changing requests that a browser marks as cross-site.
pub async fn same_origin_writes(request: Request, next: Next) -> Response {
    if matches!(*request.method(), Method::GET | Method::HEAD | Method::OPTIONS) || is_same_origin(request.headers()) {
        return next.run(request).await;
    }
    tracing::warn!(path = %request.uri().path(), "cross-site write refused");
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "403 Forbidden: cross-site request\n",
    )
        .into_response()
}

/// A request is same-origin unless the browser says otherwise. Clients that send neither
/// `Sec-Fetch-Site` nor `Origin` (the CLI, curl) are not browsers and carry no ambient cookie
/// risk.
fn is_same_origin(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    match (headers.get(header::ORIGIN), headers.get(header::HOST)) {
        (None, _) => true,
        (Some(origin), Some(host)) => {
            let origin = origin.to_str().unwrap_or_default();
            let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest);
            Some(origin_host) == host.to_str().ok()
        }
        (Some(_), None) => false,
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| s.parse().unwrap()).collect()
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(*k, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_claims() {
        let h = headers(&[("x-forwarded-for", "127.0.0.1")]);
        assert_eq!(
            client_ip("203.0.113.9".parse().unwrap(), &h, &nets(&["10.0.0.0/8"])),
            Some("203.0.113.9".parse().unwrap())
        );
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let h = headers(&[("x-forwarded-for", "127.0.0.1, 198.51.100.7, 10.0.0.5")]);
        assert_eq!(
            client_ip("10.0.0.1".parse().unwrap(), &h, &trusted),
            Some("198.51.100.7".parse().unwrap())
        );
        let forwarded = headers(&[("forwarded", "for=127.0.0.1, for=\"[2001:db8::7]:4711\";proto=https")]);
        assert_eq!(
            client_ip("10.0.0.1".parse().unwrap(), &forwarded, &trusted),
            Some("2001:db8::7".parse().unwrap())
        );
        let garbage = headers(&[("x-forwarded-for", "not-an-ip")]);
        assert_eq!(client_ip("10.0.0.1".parse().unwrap(), &garbage, &trusted), None);
    }

    #[test]
    fn ipv4_mapped_peers_are_ipv4() {
        let peer: IpAddr = "::ffff:192.0.2.10".parse().unwrap();
        assert_eq!(
            client_ip(peer, &HeaderMap::new(), &[]),
            Some("192.0.2.10".parse().unwrap())
        );
    }

    #[test]
    fn cross_site_writes_are_recognised() {
        assert!(is_same_origin(&headers(&[("sec-fetch-site", "same-origin")])));
        assert!(!is_same_origin(&headers(&[("sec-fetch-site", "cross-site")])));
        assert!(is_same_origin(&headers(&[
            ("origin", "http://steward:3000"),
            ("host", "steward:3000")
        ])));
        assert!(!is_same_origin(&headers(&[
            ("origin", "http://evil.example"),
            ("host", "steward:3000")
        ])));
        assert!(is_same_origin(&HeaderMap::new()));
    }
}
