//! The autoPromote task: promotes rings whose gate says `autoPromote` as soon as the gate opens.
//!
//! It wakes on every live event batch (a ring moved), on every stored report (a gate may have
//! opened), and every second (a soak may have run out), and runs one round on the blocking pool.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{broadcast, watch};

use super::Service;

/// How often a round runs without a wake-up: soaks run out with no event to announce it.
const TICK: Duration = Duration::from_secs(1);

/// Runs autoPromote rounds until `shutdown` turns true (or its sender is dropped).
pub async fn run(service: Arc<Service>, mut shutdown: watch::Receiver<bool>) {
    let mut live = service.subscribe_live();
    let mut reports = service.reports_changed();
    loop {
        tokio::select! {
            r = live.recv() => {
                if let Err(broadcast::error::RecvError::Closed) = r {
                    return;
                }
            }
            r = reports.changed() => {
                if r.is_err() {
                    // The sender lives as long as the service; without it, wake by the tick.
                    reports = service.reports_changed();
                }
            }
            _ = tokio::time::sleep(TICK) => {}
            _ = shutdown.changed() => return,
        }
        if *shutdown.borrow() {
            return;
        }
        let s = service.clone();
        match tokio::task::spawn_blocking(move || s.auto_promote_once()).await {
            Ok(0) => {}
            Ok(moved) => tracing::info!(moved, "autoPromote moved rings"),
            Err(e) => tracing::error!(error = %e, "autoPromote round failed"),
        }
    }
}

/// Starts the autoPromote task on the current runtime.
pub fn spawn(
    service: Arc<Service>,
    shutdown: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(run(service, shutdown))
}
