//! A dual-stack listener: IPv4 clients arrive as IPv4-mapped IPv6 peers and must match IPv4
//! rules.
//!
//! In a test binary of its own on purpose: its `[::]:0` socket may be given the same port as
//! another test's `127.0.0.1:0` server (both sockets set SO_REUSEADDR), and a request meant for
//! that server would then reach this one's listener, left unserved once this test has ended.
//! Cargo runs test binaries one after another, so here no other server is listening.

#[path = "support/harness.rs"]
mod harness;

use std::net::SocketAddr;

use engine::config::AccessConfig;
use harness::*;

#[tokio::test]
async fn ipv4_mapped_ipv6_peers_match_ipv4_rules() {
    let test = sqlite().await;
    let mut config = config(&test.url);
    config.access = AccessConfig {
        allow: vec!["127.0.0.1/32".parse().unwrap()],
        ..AccessConfig::default()
    };
    // A dual-stack socket: an IPv4 client arrives as ::ffff:127.0.0.1.
    let server = start_on(config, SocketAddr::from(([0u16; 8], 0))).await;
    let response = harness::plain_client()
        .get(format!("{}/login", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}
