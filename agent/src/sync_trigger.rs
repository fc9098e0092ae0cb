//! Sync triggers (`spec.syncTriggers`): after a push lands on a repository's base branch, ask
//! Argo CD to sync the applications it concerns (`POST /api/v1/applications/{name}/sync`, what
//! `argocd app sync` calls), or POST a generic webhook.
//!
//! Off the push path: the apply loop only offers a [`PushLanded`] to a bounded queue
//! (`try_send`), and one task makes the calls, each with a timeout and a bounded number of
//! attempts. A failed call is logged and counted ([`SyncStats`]); it never undoes the push, nor
//! delays the next one. Tokens are read from their files at each call and never logged.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::{SyncCall, SyncTriggerConfig};

/// Pushes that may wait for their calls; one more is dropped (and counted).
const QUEUE: usize = 64;
/// Longest one call may take.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per call, the first included.
const ATTEMPTS: u32 = 3;
/// The wait after the first failed attempt; it doubles after each further one.
const BACKOFF: Duration = Duration::from_millis(500);

/// A push that landed on a base branch.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushLanded {
    /// The repository (`spec.repositories[].repoId`).
    pub repo_id: String,
    /// Its remote, without any `user:password@`.
    pub remote: String,
    /// The branch pushed.
    pub branch: String,
    /// The commit now at its tip.
    pub commit: String,
    /// The targets this push applied.
    pub targets: Vec<LandedTarget>,
}

/// One target a push applied.
#[derive(Debug, Clone, Serialize)]
pub struct LandedTarget {
    /// The target key (`repo#file#targets[i]`).
    pub target: String,
    /// Its image.
    pub image: String,
    /// The file it writes.
    pub file: String,
    /// The digest now in the file.
    pub digest: String,
}

/// What the sync triggers did since start: the agent's `ferry_agent_sync_calls_total{result}`
/// counters ([`crate::metrics::Metrics::sync_stats`]).
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Calls answered with 2xx.
    pub succeeded: Counter,
    /// Calls given up (after the last attempt, or refused for good).
    pub failed: Counter,
    /// Attempts that failed and were tried again.
    pub retried: Counter,
    /// Pushes not announced because the queue was full.
    pub dropped: Counter,
}

/// The handle the apply loop offers pushes to.
#[derive(Clone, Default)]
pub struct SyncTriggers {
    tx: Option<mpsc::Sender<PushLanded>>,
    stats: Arc<SyncStats>,
}

impl SyncTriggers {
    /// Starts the caller task on the current runtime; without triggers, nothing runs.
    /// `stats`: the counters to count into (the agent's metrics).
    pub fn start(triggers: Vec<SyncTriggerConfig>, stats: SyncStats) -> SyncTriggers {
        let stats = Arc::new(stats);
        if triggers.is_empty() {
            return SyncTriggers { tx: None, stats };
        }
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(call_all(triggers, rx, stats.clone()));
        SyncTriggers {
            tx: Some(tx),
            stats,
        }
    }

    /// Offers `push` to the triggers without waiting (callable from blocking threads).
    pub fn landed(&self, push: PushLanded) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::error::TrySendError::Full(p)) = tx.try_send(push) {
            let dropped = self.stats.dropped.inc() + 1;
            tracing::warn!(repo = %p.repo_id, commit = %p.commit, dropped_total = dropped, "sync trigger queue full: this push triggers no sync");
        }
    }

    /// The counters.
    pub fn stats(&self) -> &Arc<SyncStats> {
        &self.stats
    }
}

/// One HTTP call a push makes.
struct Call {
    /// For logs: `argocd app shop-prod` or `webhook https://host:443`.
    what: String,
    url: String,
    token_file: Option<std::path::PathBuf>,
    body: Vec<u8>,
}

async fn call_all(
    triggers: Vec<SyncTriggerConfig>,
    mut rx: mpsc::Receiver<PushLanded>,
    stats: Arc<SyncStats>,
) {
    let client = reqwest::Client::builder()
        .user_agent(concat!("ferry-agent/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("building the sync trigger HTTP client");
    while let Some(push) = rx.recv().await {
        let files: Vec<String> = push.targets.iter().map(|t| t.file.clone()).collect();
        for t in triggers.iter().filter(|t| t.repo_id == push.repo_id) {
            for call in calls(&t.call, &push, &files) {
                one_call(&client, &call, &push, &stats).await;
            }
        }
    }
}

/// Argo CD's `ApplicationSyncRequest` fields that `argocd app sync APP` sends by default:
/// the name, the revision (here: the commit just pushed), prune and dryRun.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArgoSyncRequest<'a> {
    name: &'a str,
    revision: &'a str,
    prune: bool,
    dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    app_namespace: Option<&'a str>,
}

fn calls(call: &SyncCall, push: &PushLanded, files: &[String]) -> Vec<Call> {
    match call {
        SyncCall::ArgoCd {
            server,
            token_file,
            prune,
            applications,
        } => applications
            .iter()
            .filter(|a| a.concerns(files))
            .map(|a| Call {
                what: format!("argocd app {}", a.name),
                // Names are RFC 1123 (checked with the config): nothing to escape in the path.
                url: format!("{server}/api/v1/applications/{}/sync", a.name),
                token_file: Some(token_file.clone()),
                body: serde_json::to_vec(&ArgoSyncRequest {
                    name: &a.name,
                    revision: &push.commit,
                    prune: *prune,
                    dry_run: false,
                    app_namespace: a.app_namespace.as_deref(),
                })
                .expect("JSON"),
            })
            .collect(),
        SyncCall::Webhook { url, token_file } => vec![Call {
            what: format!("webhook {}", shown(url)),
            url: url.clone(),
            token_file: token_file.clone(),
            body: serde_json::to_vec(push).expect("JSON"),
        }],
    }
}

async fn one_call(client: &reqwest::Client, call: &Call, push: &PushLanded, stats: &SyncStats) {
    let mut wait = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let why = match attempt_call(client, call).await {
            Ok(()) => {
                stats.succeeded.inc();
                tracing::info!(call = %call.what, repo = %push.repo_id, commit = %push.commit, attempt, "sync triggered");
                return;
            }
            Err((why, retry)) if !retry => {
                stats.failed.inc();
                tracing::warn!(call = %call.what, repo = %push.repo_id, commit = %push.commit, error = %why, "sync trigger refused; not retried (the push stands)");
                return;
            }
            Err((why, _)) => why,
        };
        if attempt == ATTEMPTS {
            stats.failed.inc();
            tracing::warn!(call = %call.what, repo = %push.repo_id, commit = %push.commit, attempt, error = %why, "sync trigger failed; giving up (the push stands)");
        } else {
            stats.retried.inc();
            tracing::warn!(call = %call.what, repo = %push.repo_id, commit = %push.commit, attempt, error = %why, "sync trigger failed; retrying");
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
}

/// One attempt: `Err((why, worth retrying))`.
async fn attempt_call(client: &reqwest::Client, call: &Call) -> Result<(), (String, bool)> {
    let mut req = client
        .post(&call.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .timeout(TIMEOUT)
        .body(call.body.clone());
    if let Some(file) = &call.token_file {
        let token = std::fs::read_to_string(file).map_err(|e| {
            (
                format!("reading the token file {}: {e}", file.display()),
                true,
            )
        })?;
        let token = token.trim();
        if token.is_empty() {
            return Err((format!("the token file {} is empty", file.display()), false));
        }
        req = req.bearer_auth(token);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => {
            let status = r.status();
            // Argo CD explains a refusal in its JSON body ({"error", "message", "code"}); a
            // bounded prefix of it is logged, never the request (it carried the token).
            let text = r.text().await.unwrap_or_default();
            let text: String = text.chars().filter(|c| !c.is_control()).take(300).collect();
            let permanent = matches!(status.as_u16(), 401 | 403 | 404);
            Err((format!("answered {status}: {text}"), !permanent))
        }
        Err(e) => Err((
            if e.is_timeout() {
                "timed out".to_string()
            } else {
                crate::errors::one_line(&anyhow::Error::new(e.without_url()))
            },
            true,
        )),
    }
}

/// `https://host:port` of a URL (its path and query may hold a secret).
fn shown(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{host}")
}

/// `remote` without a `user:password@` in an URL's authority.
pub fn remote_without_userinfo(remote: &str) -> String {
    let Some((scheme, rest)) = remote.split_once("://") else {
        return remote.to_string();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => remote.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_a_remote_are_not_sent() {
        assert_eq!(
            remote_without_userinfo("https://bot:s3cret@git.example.com/config.git"),
            "https://git.example.com/config.git"
        );
        assert_eq!(
            remote_without_userinfo("git@host:config.git"),
            "git@host:config.git"
        );
        assert_eq!(
            shown("https://h.example.com:8443/hook?key=x"),
            "https://h.example.com:8443"
        );
    }
}
