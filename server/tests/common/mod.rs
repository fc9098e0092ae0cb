//! Shared by the in-process server tests: the configuration of a server on loopback with one
//! registry worker, anonymous registry reads and no TLS, and such a server started in-process.

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
        notify: Default::default(),
        metrics: true,
        drain: Duration::ZERO,
    }
}

/// A server running in this process on loopback, stopped by [`Server::stop`].
// Not every test crate that includes `common` starts one this way.
#[allow(dead_code)]
pub struct Server {
    /// The gRPC URL.
    pub grpc: String,
    /// The running service, kept so tests can read what it observed (e.g. lag replays).
    pub service: std::sync::Arc<ferry_server::service::Service>,
    /// The bootstrap token (roles publisher and agent) the server wrote on first start.
    pub token: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _dir: tempfile::TempDir,
}

#[allow(dead_code)]
impl Server {
    /// Starts a server on a fresh data directory with these limits and heartbeat period.
    pub async fn start(limits: Limits, heartbeat: Duration) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), limits, heartbeat);
        let service = ferry_server::run::open_service(&cfg).unwrap();
        let http = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = format!("http://{}", grpc.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(ferry_server::run::run(
            cfg,
            service.clone(),
            http,
            grpc,
            async {
                let _ = stopped.await;
            },
        ));
        let token =
            std::fs::read_to_string(ferry_server::admin::bootstrap_token_path(dir.path())).unwrap();
        Server {
            grpc: addr,
            service,
            token,
            stop: Some(stop),
            task: Some(task),
            _dir: dir,
        }
    }

    /// A client with the bootstrap token.
    pub async fn client(&self) -> ferry_proto::client::Client {
        self.client_with(&self.token).await
    }

    /// A new token named `name` with `roles` (and `scopes`): its secret.
    pub fn token(
        &self,
        name: &str,
        roles: &[ferry_server::service::auth::Role],
        scopes: &[&str],
    ) -> String {
        let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
        self.service.create_token(name, roles, &scopes).unwrap().1
    }

    /// A client with `token`.
    pub async fn client_with(&self, token: &str) -> ferry_proto::client::Client {
        ferry_proto::client::connect(&self.grpc, Some(token))
            .await
            .unwrap()
    }

    /// Shuts the server down, failing the test if it takes more than 10 s.
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the server did not shut down within 10 s with streams open")
            .unwrap()
            .unwrap();
    }
}
