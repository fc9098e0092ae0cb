//! `spec.syncTriggers[]`: what to call after a push lands (the Argo CD CI guide's optional last
//! step, `argocd app sync`), read from the agent's config file.
//!
//! ```yaml
//! syncTriggers:
//!   - repoId: config                      # pushes to this repository's base branch
//!     argocd:
//!       server: https://argocd.example.com
//!       tokenFile: /etc/ferry/argocd-token   # an Argo CD API token (account or project)
//!       prune: false                      # optional, as `argocd app sync --prune`
//!       applications:
//!         - name: shop-prod               # every push
//!         - name: api-prod
//!           paths: [apps/api]             # only pushes that edit a file under apps/api/
//!   - repoId: config
//!     webhook:
//!       url: https://ci.example.com/hooks/ferry
//!       tokenFile: /etc/ferry/hook-token  # optional: sent as Authorization: Bearer
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::{ConfigError, Pos};
use super::piped::RepositoryConfig;

/// One raw `spec.syncTriggers[]` entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct RawSyncTrigger {
    repo_id: Spanned<String>,
    argocd: Option<Spanned<RawArgoCd>>,
    webhook: Option<Spanned<RawWebhook>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawArgoCd {
    server: Spanned<String>,
    token_file: Spanned<String>,
    #[serde(default)]
    prune: bool,
    applications: Vec<Spanned<RawApplication>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawApplication {
    name: Spanned<String>,
    app_namespace: Option<Spanned<String>>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWebhook {
    url: Spanned<String>,
    token_file: Option<Spanned<String>>,
}

/// A validated sync trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncTriggerConfig {
    /// The repository whose pushes fire it.
    pub repo_id: String,
    /// What it calls.
    pub call: SyncCall,
}

/// What a sync trigger calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncCall {
    /// Argo CD's `POST /api/v1/applications/{name}/sync`.
    ArgoCd {
        /// `http(s)://HOST[:PORT]` of the Argo CD API server (a path prefix is kept).
        server: String,
        /// The bearer token's file, read at each call (so a rotated token is picked up).
        token_file: PathBuf,
        /// Sent as the request's `prune`.
        prune: bool,
        /// The applications, each with the paths that concern it (empty: every push).
        applications: Vec<ArgoApplication>,
    },
    /// A JSON POST of `{repoId, remote, branch, commit, targets}`.
    Webhook {
        /// `http(s)://…`.
        url: String,
        /// Sent as `Authorization: Bearer` when given.
        token_file: Option<PathBuf>,
    },
}

/// An Argo CD application a push may sync.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgoApplication {
    /// `metadata.name` of the Application.
    pub name: String,
    /// Its namespace when not Argo CD's own (sent as `appNamespace`).
    pub app_namespace: Option<String>,
    /// Repo-relative directories (no trailing '/'); empty: every push.
    pub paths: Vec<String>,
}

impl ArgoApplication {
    /// Whether a push that edited `files` concerns this application.
    pub fn concerns(&self, files: &[String]) -> bool {
        self.paths.is_empty()
            || files.iter().any(|f| {
                self.paths.iter().any(|p| {
                    f == p
                        || f.strip_prefix(p.as_str())
                            .is_some_and(|r| r.starts_with('/'))
                })
            })
    }
}

/// Checks `raw` against the repositories; relative token files resolve against `base`.
pub(super) fn validate(
    file: &str,
    base: &Path,
    raw: &[Spanned<RawSyncTrigger>],
    repos: &[RepositoryConfig],
) -> Result<Vec<SyncTriggerConfig>, ConfigError> {
    let mut out = Vec::new();
    for (i, t) in raw.iter().enumerate() {
        let t = &t.value;
        let at = |name: &str| format!("spec.syncTriggers[{i}].{name}");
        let bad = |field: String, pos: Option<Pos>, msg: String| {
            ConfigError::invalid(file, field, pos, msg)
        };
        if !repos.iter().any(|r| r.repo_id == t.repo_id.value) {
            let known: Vec<&str> = repos.iter().map(|r| r.repo_id.as_str()).collect();
            return Err(bad(
                at("repoId"),
                Pos::of(&t.repo_id),
                format!(
                    "repoId {:?} is not in spec.repositories (known: {})",
                    t.repo_id.value,
                    known.join(", ")
                ),
            ));
        }
        let path = |field: String, v: &Spanned<String>| -> Result<PathBuf, ConfigError> {
            if v.value.trim().is_empty() {
                return Err(bad(field, Pos::of(v), "must not be empty".into()));
            }
            Ok(base.join(&v.value))
        };
        let call = match (&t.argocd, &t.webhook) {
            (Some(a), None) => {
                let a = &a.value;
                let server = http_url(&a.server.value)
                    .map_err(|m| bad(at("argocd.server"), Pos::of(&a.server), m))?;
                if a.applications.is_empty() {
                    return Err(bad(
                        at("argocd.applications"),
                        None,
                        "list at least one application to sync".into(),
                    ));
                }
                let mut applications = Vec::new();
                for (j, app) in a.applications.iter().enumerate() {
                    let app = &app.value;
                    let field = |n: &str| at(&format!("argocd.applications[{j}].{n}"));
                    check_k8s_name(&app.name.value)
                        .map_err(|m| bad(field("name"), Pos::of(&app.name), m))?;
                    if let Some(ns) = &app.app_namespace {
                        check_k8s_name(&ns.value)
                            .map_err(|m| bad(field("appNamespace"), Pos::of(ns), m))?;
                    }
                    let mut paths = Vec::new();
                    for (k, p) in app.paths.iter().enumerate() {
                        let clean = p.value.trim_matches('/');
                        if clean.is_empty()
                            || clean
                                .split('/')
                                .any(|c| c.is_empty() || c == "." || c == "..")
                        {
                            return Err(bad(
                                field(&format!("paths[{k}]")),
                                Pos::of(p),
                                format!("invalid path {:?}: write a directory of the repository such as apps/api, without '.', '..' or empty parts", p.value),
                            ));
                        }
                        paths.push(clean.to_string());
                    }
                    applications.push(ArgoApplication {
                        name: app.name.value.clone(),
                        app_namespace: app.app_namespace.as_ref().map(|n| n.value.clone()),
                        paths,
                    });
                }
                SyncCall::ArgoCd {
                    server: server.trim_end_matches('/').to_string(),
                    token_file: path(at("argocd.tokenFile"), &a.token_file)?,
                    prune: a.prune,
                    applications,
                }
            }
            (None, Some(w)) => {
                let w = &w.value;
                SyncCall::Webhook {
                    url: http_url(&w.url.value)
                        .map_err(|m| bad(at("webhook.url"), Pos::of(&w.url), m))?,
                    token_file: w
                        .token_file
                        .as_ref()
                        .map(|f| path(at("webhook.tokenFile"), f))
                        .transpose()?,
                }
            }
            _ => {
                return Err(bad(
                    format!("spec.syncTriggers[{i}]"),
                    Pos::of(&t.repo_id),
                    "give exactly one of argocd (Argo CD's sync API) or webhook (a generic POST)"
                        .into(),
                ))
            }
        };
        out.push(SyncTriggerConfig {
            repo_id: t.repo_id.value.clone(),
            call,
        });
    }
    Ok(out)
}

/// An `http://` or `https://` URL with a host and no `user:password@`.
fn http_url(text: &str) -> Result<String, String> {
    let rest = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
        .ok_or_else(|| format!("invalid URL {text:?}: write http://HOST[:PORT]/… or https://…"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("invalid URL {text:?}: it names no host"));
    }
    if authority.contains('@') {
        return Err(format!(
            "invalid URL {text:?}: it carries user:password@; put the secret in a tokenFile"
        ));
    }
    if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "invalid URL {text:?}: it contains spaces or control characters"
        ));
    }
    Ok(text.to_string())
}

/// A Kubernetes object name (RFC 1123 subdomain): what an Application's name and namespace are.
fn check_k8s_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric())
        && name
            .bytes()
            .last()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid name {name:?}: Argo CD application names and namespaces are lower-case letters, digits, '-' and '.', starting and ending with a letter or digit (at most 253)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_application_with_paths_concerns_only_pushes_under_them() {
        let app = ArgoApplication {
            name: "api".into(),
            app_namespace: None,
            paths: vec!["apps/api".into()],
        };
        assert!(app.concerns(&["apps/api/values.yaml".into()]));
        assert!(!app.concerns(&["apps/api-old/values.yaml".into(), "web.yaml".into()]));
        let every = ArgoApplication {
            paths: vec![],
            ..app
        };
        assert!(every.concerns(&["x.yaml".into()]));
    }

    #[test]
    fn urls_must_be_http_with_a_host_and_no_userinfo() {
        assert!(http_url("https://argocd.example.com").is_ok());
        assert!(http_url("ftp://x").unwrap_err().contains("write http://"));
        assert!(http_url("https://u:p@x/")
            .unwrap_err()
            .contains("tokenFile"));
        assert!(http_url("http:///x").unwrap_err().contains("no host"));
    }
}
