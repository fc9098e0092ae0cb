//! Wires the registry (actix-web) and gRPC (tonic) listeners to one service under one tokio
//! runtime, and shuts both down on a signal.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;

use crate::config::ServerConfig;
use crate::grpc::FerryGrpc;
use crate::registry;
use crate::registry::auth::RegistryAuth;
use crate::service::Service;
use crate::store::Store;

/// Opens the store and loads the service.
pub fn open_service(cfg: &ServerConfig) -> anyhow::Result<Arc<Service>> {
    let store = Store::open(&cfg.data_dir)
        .with_context(|| format!("opening the store in {}", cfg.data_dir.display()))?;
    crate::admin::ensure_bootstrap_token(
        &store,
        &cfg.data_dir,
        cfg.bootstrap_token_file.as_deref(),
    )?
    .log();
    let service =
        Service::load(Arc::new(store), cfg.limits.clone()).context("loading the catalog")?;
    Ok(Arc::new(service))
}

/// Serves until `shutdown` completes. Takes bound listeners so tests can bind port 0.
pub async fn run(
    cfg: ServerConfig,
    service: Arc<Service>,
    http: std::net::TcpListener,
    grpc: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let http_addr = http.local_addr()?;
    let grpc_addr = grpc.local_addr()?;
    let data = actix_web::web::Data::new(service.clone());
    let registry_auth =
        actix_web::web::Data::new(RegistryAuth::new(cfg.registry_auth, cfg.registry_token_ttl));
    // The dashboard's live streams end when `close_streams` turns true, as gRPC streams do.
    let (close_streams, streams_closing) = tokio::sync::watch::channel(false);
    let ui_auth = crate::ui::state(cfg.registry_auth, streams_closing.clone());
    let draining = crate::health::Draining::default();
    let draining_data = actix_web::web::Data::new(draining.clone());
    let metrics_on = cfg.metrics;
    let http_server = actix_web::HttpServer::new(move || {
        actix_web::App::new()
            .wrap(actix_web::middleware::Condition::new(
                metrics_on,
                actix_web::middleware::from_fn(crate::metrics::http::record),
            ))
            .app_data(data.clone())
            .app_data(registry_auth.clone())
            .app_data(draining_data.clone())
            .app_data(ui_auth.clone())
            .configure(crate::health::configure)
            .configure(crate::ui::configure)
            .configure(|c| {
                if metrics_on {
                    crate::metrics::http::configure(c)
                }
            })
            .configure(registry::configure)
    })
    .workers(cfg.http_workers)
    .disable_signals()
    .shutdown_timeout(5);
    let http_server = match &cfg.tls {
        Some(tls) => http_server.listen_rustls_0_23(http, tls.rustls_config()?),
        None => http_server.listen(http),
    }
    .context("starting the registry listener")?
    .run();
    let http_handle = http_server.handle();

    let (stop_grpc_tx, stop_grpc_rx) = tokio::sync::oneshot::channel::<()>();
    let mut grpc_builder = tonic::transport::Server::builder();
    if let Some(tls) = &cfg.tls {
        grpc_builder = grpc_builder
            .tls_config(tls.tonic_config())
            .context("setting up TLS on the gRPC listener")?;
    }
    let (grpc_health, grpc_health_service) = crate::health::GrpcHealth::serving().await;
    grpc_health.spawn_store_watch(service.clone(), draining.clone());
    let grpc_server = grpc_builder
        .add_service(grpc_health_service)
        .add_service(
            FerryGrpc::new(
                service.clone(),
                cfg.heartbeat,
                streams_closing,
                crate::grpc::StreamCounts::new(cfg.max_streams_per_token),
            )
            .into_server(),
        )
        .serve_with_incoming_shutdown(grpc_incoming(grpc), async {
            let _ = stop_grpc_rx.await;
        });

    let scheme = if cfg.tls.is_some() { "https" } else { "http" };
    tracing::info!(%http_addr, %grpc_addr, %scheme, data_dir = %cfg.data_dir.display(), "ferry-server listening");
    let http_task = tokio::spawn(http_server);
    let grpc_task = tokio::spawn(grpc_server);
    let auto_promote =
        crate::service::auto_promote::spawn(service.clone(), close_streams.subscribe());
    // Its senders are not awaited at shutdown: a hanging receiver must not hold the exit.
    let _notify = crate::notify::spawn(service.clone(), &cfg.notify, close_streams.subscribe());
    shutdown.await;
    // Not ready first, while both listeners still serve: load balancers and Kubernetes stop
    // sending new work during --drain-secs, then streams and listeners close.
    draining.start();
    grpc_health.draining().await;
    tracing::info!(
        drain_secs = cfg.drain.as_secs(),
        "draining: /readyz and gRPC health answer not ready"
    );
    tokio::time::sleep(cfg.drain).await;
    tracing::info!("shutting down");
    // Streams first: graceful shutdown waits for them, and they only end when told to.
    let _ = close_streams.send(true);
    let _ = stop_grpc_tx.send(());
    http_handle.stop(true).await;
    http_task.await?.context("registry server")?;
    grpc_task.await?.context("gRPC server")?;
    auto_promote.await.context("autoPromote task")?;
    Ok(())
}

/// The gRPC listener's connections, with `TCP_NODELAY` set: without it Nagle's algorithm holds
/// a stream's response headers until the client's delayed ACK, about 18 ms per `Subscribe` on
/// loopback (measured in `ferry-bench fanout`), which would make 5,000 agents reconnecting
/// after a restart wait 90 s. Keepalive finds peers that vanished without a FIN.
fn grpc_incoming(listener: tokio::net::TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(std::time::Duration::from_secs(60)))
}

/// Completes on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing the SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
