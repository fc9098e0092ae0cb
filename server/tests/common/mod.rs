//! Shared by the in-process server tests: the configuration of a server on loopback with one
//! registry worker, anonymous registry reads and no TLS.

use std::path::Path;
use std::time::Duration;

use ferry_server::config::ServerConfig;
use ferry_server::service::Limits;

/// A test server's configuration on `data_dir`, with these limits and heartbeat period.
pub fn config(data_dir: &Path, limits: Limits, heartbeat: Duration) -> ServerConfig {
    ServerConfig {
        data_dir: data_dir.to_path_buf(),
        limits,
        heartbeat,
        http_workers: 1,
        registry_auth: ferry_server::registry::auth::RegistryAuthMode::Anonymous,
        registry_token_ttl: Duration::from_secs(300),
        tls: None,
        max_streams_per_token: 1000,
        bootstrap_token_file: None,
    }
}
