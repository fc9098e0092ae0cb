//! The agent's own config file (`ferry-agent --config FILE`), in PipeCD's `Piped` shape.
//!
//! Read in two passes over the same text. The first reads every provider's `config` as opaque, so
//! that a PipeCD provider of another type (GCR, ECR, ...) is refused for its type rather than for
//! the shape of its config; the second reads FERRY configs strictly. Both reject unknown fields.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::error::{ConfigError, Pos};
use super::message::validate_template;
use super::push::{branch_name, check_branch_name, sample_vars, PushConfig, PushTarget};
use super::rules::{check_api_version, check_cluster_name, check_pattern, PIPED_KIND};
use super::yaml::from_yaml;
use crate::git::HttpsCredentials;
// One identity type for the whole agent: the config fills the one the git layer commits with.
pub use crate::git::GitIdentity;
/// The only image provider type ferry-agent reads: a ferry server's event stream.
pub const FERRY_PROVIDER_TYPE: &str = "FERRY";

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPiped<C> {
    api_version: Spanned<String>,
    kind: Spanned<String>,
    spec: RawSpec<C>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawSpec<C> {
    name: Option<Spanned<String>>,
    git: RawGit,
    repositories: Vec<Spanned<RawRepository>>,
    image_providers: Vec<Spanned<RawProvider<C>>>,
    #[serde(default)]
    image_watcher: Vec<Spanned<RawWatcher>>,
    #[serde(default)]
    sync_triggers: Vec<Spanned<super::sync_trigger::RawSyncTrigger>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawGit {
    username: Spanned<String>,
    email: Spanned<String>,
    ssh_key_file: Option<Spanned<String>>,
    signing_key_file: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRepository {
    repo_id: Spanned<String>,
    remote: Spanned<String>,
    branch: Spanned<String>,
    username: Option<Spanned<String>>,
    password_file: Option<Spanned<String>>,
    token_file: Option<Spanned<String>>,
    push: Option<Spanned<RawPush>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPush {
    branch: Option<Spanned<String>>,
    branch_template: Option<Spanned<String>>,
    #[serde(default)]
    push_options: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawProvider<C> {
    name: Spanned<String>,
    #[serde(rename = "type")]
    provider_type: Spanned<String>,
    config: Option<C>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFerryConfig {
    address: Spanned<String>,
    token_file: Option<Spanned<String>>,
    ca_file: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawWatcher {
    repo_id: Spanned<String>,
    #[serde(default)]
    includes: Vec<Spanned<String>>,
    #[serde(default)]
    excludes: Vec<Spanned<String>>,
}

/// A config repository the agent commits to (`spec.repositories[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepositoryConfig {
    /// Unique; letters, digits, '.', '_', '-' (it names the clone's directory).
    pub repo_id: String,
    /// As written: `https://`, `ssh://`, `git://`, `file://`, scp-style or a path.
    pub remote: String,
    /// The base branch: targets are read and edits planned here, and commits go here unless
    /// `push` names another branch.
    pub branch: String,
    /// `push`: branch mode (commits go to a push branch, never to `branch`) and push options.
    pub push: PushConfig,
    /// For an `https://` remote: the user name and the file holding its password or token
    /// (`passwordFile`, or `tokenFile`: the same thing under the name forges use).
    pub https: Option<HttpsCredentials>,
}

/// A ferry server to take image events from (`spec.imageProviders[]` of type FERRY).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderConfig {
    /// Unique; ImageWatcher targets name it in `provider`.
    pub name: String,
    /// `http://` or `https://` URL of the ferry server's gRPC endpoint.
    pub address: String,
    /// Bearer token file, resolved against the config file's directory.
    pub token_file: Option<PathBuf>,
    /// CA bundle for `https://`, resolved against the config file's directory.
    pub ca_file: Option<PathBuf>,
}

/// Which ImageWatcher files of a repository to read (`spec.imageWatcher[]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherConfig {
    /// A `repo_id` of [`AgentConfig::repositories`].
    pub repo_id: String,
    /// Repo-relative paths (`*` allowed in the file name), normalised; empty: every ImageWatcher
    /// file under `.pipe/`.
    pub includes: Vec<String>,
    /// Repo-relative paths (`*` allowed in the file name) to leave out, normalised.
    pub excludes: Vec<String>,
}

/// The validated agent config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentConfig {
    /// The cluster name the agent reports under (`spec.name`); empty: the server uses the
    /// agent token's name.
    pub cluster: String,
    /// Commit author and committer: `spec.git.username` as the name, `spec.git.email` (contains
    /// '@').
    pub identity: GitIdentity,
    /// SSH private key for fetch and push, resolved against the config file's directory.
    pub ssh_key_file: Option<PathBuf>,
    /// Commit signing key (armored OpenPGP secret key or OpenSSH key), resolved likewise.
    pub signing_key_file: Option<PathBuf>,
    /// CA bundle trusted (besides the system CAs) for `https://` remotes, resolved likewise.
    pub ca_file: Option<PathBuf>,
    /// At least one; `repo_id`s are unique.
    pub repositories: Vec<RepositoryConfig>,
    /// At least one; names are unique.
    pub providers: Vec<ProviderConfig>,
    /// One per repository, in repository order. As in PipeCD every repository is watched; an
    /// `imageWatcher` entry only narrows which files are read. Without one, every ImageWatcher
    /// file under `.pipe/`.
    pub watchers: Vec<WatcherConfig>,
    /// What to call after a push lands (`spec.syncTriggers`): Argo CD syncs, webhooks.
    pub sync_triggers: Vec<super::sync_trigger::SyncTriggerConfig>,
}

impl AgentConfig {
    /// Reads and validates the config file at `path`.
    pub fn load(path: &Path) -> Result<AgentConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new(""));
        Validator::new(&path.display().to_string(), base).run(&text)
    }

    /// Validates config text; `file` names it in errors, and relative key and token paths resolve
    /// against its directory.
    pub fn parse(text: &str, file: &str) -> Result<AgentConfig, ConfigError> {
        let base = Path::new(file).parent().unwrap_or(Path::new(""));
        Validator::new(file, base).run(text)
    }

    /// The repository with this `repo_id`.
    pub fn repository(&self, repo_id: &str) -> Option<&RepositoryConfig> {
        self.repositories.iter().find(|r| r.repo_id == repo_id)
    }

    /// The provider with this name.
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|p| p.name == name)
    }
}

/// Shorthand for [`ConfigError::invalid`] with owned parts.
fn invalid(file: &str, field: String, at: Option<Pos>, message: String) -> ConfigError {
    ConfigError::invalid(file, field, at, message)
}

struct Validator<'a> {
    file: &'a str,
    base: &'a Path,
}

impl<'a> Validator<'a> {
    fn new(file: &'a str, base: &'a Path) -> Self {
        Validator { file, base }
    }

    fn run(&self, text: &str) -> Result<AgentConfig, ConfigError> {
        let loose: RawPiped<IgnoredAny> = from_yaml(text, self.file)?;
        self.check_header(&loose)?;
        for (i, p) in loose.spec.image_providers.iter().enumerate() {
            let ty = &p.value.provider_type;
            if ty.value != FERRY_PROVIDER_TYPE {
                let mut msg = format!(
                    "unsupported image provider type {:?} for provider {:?}: ferry-agent only reads {FERRY_PROVIDER_TYPE}",
                    ty.value, p.value.name.value
                );
                if ty.value.eq_ignore_ascii_case(FERRY_PROVIDER_TYPE) {
                    msg.push_str(" (types are upper case)");
                }
                return Err(invalid(
                    self.file,
                    format!("spec.imageProviders[{i}].type"),
                    Pos::of(ty),
                    msg,
                ));
            }
        }
        let raw: RawPiped<RawFerryConfig> = from_yaml(text, self.file)?;
        let spec = raw.spec;
        let cluster = match &spec.name {
            None => String::new(),
            Some(n) => {
                check_cluster_name(&n.value)
                    .map_err(|m| invalid(self.file, "spec.name".into(), Pos::of(n), m))?;
                n.value.clone()
            }
        };
        let git = &spec.git;
        let identity = GitIdentity {
            name: self.non_empty("spec.git.username".into(), &git.username)?,
            email: self.email(&git.email)?,
        };
        let ssh_key_file =
            self.opt_path("spec.git.sshKeyFile".into(), git.ssh_key_file.as_ref())?;
        let signing_key_file = self.opt_path(
            "spec.git.signingKeyFile".into(),
            git.signing_key_file.as_ref(),
        )?;
        let ca_file = self.opt_path("spec.git.caFile".into(), git.ca_file.as_ref())?;
        let repositories = self.repositories(&spec.repositories)?;
        let providers = self.providers(&spec.image_providers)?;
        let watchers = self.watchers(&spec.image_watcher, &repositories)?;
        let sync_triggers = super::sync_trigger::validate(
            self.file,
            self.base,
            &spec.sync_triggers,
            &repositories,
        )?;
        Ok(AgentConfig {
            sync_triggers,
            cluster,
            identity,
            ssh_key_file,
            signing_key_file,
            ca_file,
            repositories,
            providers,
            watchers,
        })
    }

    fn check_header<C>(&self, raw: &RawPiped<C>) -> Result<(), ConfigError> {
        check_api_version(self.file, &raw.api_version)?;
        if raw.kind.value != PIPED_KIND {
            return Err(invalid(
                self.file,
                "kind".into(),
                Pos::of(&raw.kind),
                format!(
                    "kind is {:?}; the agent config file has kind {PIPED_KIND}",
                    raw.kind.value
                ),
            ));
        }
        Ok(())
    }

    fn non_empty(&self, field: String, v: &Spanned<String>) -> Result<String, ConfigError> {
        if v.value.trim().is_empty() {
            return Err(invalid(
                self.file,
                field,
                Pos::of(v),
                "must not be empty".into(),
            ));
        }
        Ok(v.value.clone())
    }

    fn email(&self, v: &Spanned<String>) -> Result<String, ConfigError> {
        let ok = v
            .value
            .split_once('@')
            .is_some_and(|(user, host)| !user.is_empty() && !host.is_empty())
            && !v.value.contains(char::is_whitespace)
            && !v.value.contains(['<', '>']);
        if !ok {
            return Err(invalid(
                self.file,
                "spec.git.email".into(),
                Pos::of(v),
                format!(
                    "invalid email {:?}: write an address such as ferry-bot@example.com",
                    v.value
                ),
            ));
        }
        Ok(v.value.clone())
    }

    /// A file path, relative ones resolved against the config file's directory.
    fn opt_path(
        &self,
        field: String,
        v: Option<&Spanned<String>>,
    ) -> Result<Option<PathBuf>, ConfigError> {
        let Some(v) = v else { return Ok(None) };
        let raw = self.non_empty(field, v)?;
        Ok(Some(self.base.join(raw)))
    }

    fn repositories(
        &self,
        raw: &[Spanned<RawRepository>],
    ) -> Result<Vec<RepositoryConfig>, ConfigError> {
        if raw.is_empty() {
            return Err(invalid(
                self.file,
                "spec.repositories".into(),
                None,
                "at least one repository is required".into(),
            ));
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, r) in raw.iter().enumerate() {
            let r = &r.value;
            let field = |name: &str| format!("spec.repositories[{i}].{name}");
            let id = &r.repo_id.value;
            let id_ok = id.len() <= 63
                && id.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
            if !id_ok {
                return Err(invalid(
                    self.file,
                    field("repoId"),
                    Pos::of(&r.repo_id),
                    format!("invalid repoId {id:?}: a repoId is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"),
                ));
            }
            if let Some(first) = seen.insert(id.clone(), i) {
                return Err(invalid(
                    self.file,
                    field("repoId"),
                    Pos::of(&r.repo_id),
                    format!("duplicate repoId {id:?} (also spec.repositories[{first}].repoId)"),
                ));
            }
            let remote = self.non_empty(field("remote"), &r.remote)?;
            let branch = self.non_empty(field("branch"), &r.branch)?;
            out.push(RepositoryConfig {
                repo_id: id.clone(),
                https: self.https_credentials(i, r, &remote)?,
                push: match &r.push {
                    Some(p) => self.push(i, &p.value, &branch)?,
                    None => PushConfig::default(),
                },
                remote,
                branch,
            });
        }
        Ok(out)
    }

    /// `push`: `branch` or `branchTemplate` (not both), neither naming the base branch `base`,
    /// and `pushOptions`. A template is rendered with sample values here, so one that can never
    /// give a branch name is refused before any release arrives.
    fn push(&self, i: usize, p: &RawPush, base: &str) -> Result<PushConfig, ConfigError> {
        let field = |name: &str| format!("spec.repositories[{i}].push.{name}");
        let to = match (&p.branch, &p.branch_template) {
            (Some(_), Some(t)) => {
                return Err(invalid(
                    self.file,
                    field("branchTemplate"),
                    Pos::of(t),
                    "give push.branch or push.branchTemplate, not both: branch is one branch \
                     kept up to date, branchTemplate a new branch per release"
                        .into(),
                ))
            }
            (Some(b), None) => {
                let name = &b.value;
                if let Err(why) = check_branch_name(name) {
                    return Err(invalid(
                        self.file,
                        field("branch"),
                        Pos::of(b),
                        format!("branch {name:?} {why}"),
                    ));
                }
                if name == base {
                    return Err(invalid(
                        self.file,
                        field("branch"),
                        Pos::of(b),
                        format!("push.branch {name:?} is the base branch: branch mode never pushes the base; name another branch, or drop push.branch to commit to {base:?}"),
                    ));
                }
                PushTarget::Branch(name.clone())
            }
            (None, Some(t)) => {
                let template = &t.value;
                let refuse = |message: String| {
                    invalid(self.file, field("branchTemplate"), Pos::of(t), message)
                };
                validate_template(template)
                    .map_err(|e| refuse(format!("branchTemplate {template:?}: {e}")))?;
                let sample = branch_name(template, &sample_vars()).map_err(refuse)?;
                if sample == base {
                    return Err(refuse(format!("branchTemplate {template:?} renders to the base branch {base:?}, which branch mode never pushes: add a placeholder such as {{{{tag}}}}")));
                }
                PushTarget::Template(template.clone())
            }
            (None, None) => PushTarget::Base,
        };
        let mut options = Vec::new();
        for (j, o) in p.push_options.iter().enumerate() {
            if o.value.contains(['\n', '\r', '\0']) {
                return Err(invalid(
                    self.file,
                    field(&format!("pushOptions[{j}]")),
                    Pos::of(o),
                    format!("push option {:?} contains a line break or NUL: git sends push options one per line; split it into several options", o.value),
                ));
            }
            options.push(o.value.clone());
        }
        Ok(PushConfig { to, options })
    }

    /// `username` with `passwordFile` or `tokenFile`: only for an `https://` remote whose URL
    /// carries no password of its own, so the secret lives in exactly one place.
    fn https_credentials(
        &self,
        i: usize,
        r: &RawRepository,
        remote: &str,
    ) -> Result<Option<HttpsCredentials>, ConfigError> {
        let field = |name: &str| format!("spec.repositories[{i}].{name}");
        let file = match (&r.password_file, &r.token_file) {
            (Some(_), Some(token)) => {
                return Err(invalid(
                    self.file,
                    field("tokenFile"),
                    Pos::of(token),
                    "give passwordFile or tokenFile, not both: they are the same setting".into(),
                ))
            }
            (Some(f), None) => Some(("passwordFile", f)),
            (None, Some(f)) => Some(("tokenFile", f)),
            (None, None) => None,
        };
        let Some((name, file)) = file else {
            if let Some(u) = &r.username {
                return Err(invalid(
                    self.file,
                    field("username"),
                    Pos::of(u),
                    "username is sent with a password: add passwordFile (or tokenFile)".into(),
                ));
            }
            return Ok(None);
        };
        if !remote.starts_with("https://") {
            return Err(invalid(
                self.file,
                field(name),
                Pos::of(file),
                format!("{name} is for https:// remotes, and remote {remote:?} is not one"),
            ));
        }
        let url_user = remote
            .strip_prefix("https://")
            .and_then(|rest| rest.split('/').next())
            .and_then(|authority| authority.rsplit_once('@'))
            .map(|(userinfo, _)| userinfo);
        if url_user.is_some_and(|u| u.contains(':')) {
            return Err(invalid(
                self.file,
                field(name),
                Pos::of(file),
                format!("the remote URL carries a password too: remove it from the URL and keep the secret only in {name}"),
            ));
        }
        let username = match &r.username {
            Some(u) => self.non_empty(field("username"), u)?,
            None => url_user.unwrap_or("git").to_string(),
        };
        let password_file = self
            .opt_path(field(name), Some(file))?
            .expect("a path was given");
        Ok(Some(HttpsCredentials {
            username,
            password_file,
        }))
    }

    fn providers(
        &self,
        raw: &[Spanned<RawProvider<RawFerryConfig>>],
    ) -> Result<Vec<ProviderConfig>, ConfigError> {
        if raw.is_empty() {
            return Err(invalid(
                self.file,
                "spec.imageProviders".into(),
                None,
                format!("at least one image provider of type {FERRY_PROVIDER_TYPE} is required"),
            ));
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        let mut out = Vec::new();
        for (i, p) in raw.iter().enumerate() {
            let at = Pos::of(p);
            let p = &p.value;
            let field = |name: &str| format!("spec.imageProviders[{i}].{name}");
            let name = self.non_empty(field("name"), &p.name)?;
            if let Some(first) = seen.insert(name.clone(), i) {
                return Err(invalid(
                    self.file,
                    field("name"),
                    Pos::of(&p.name),
                    format!(
                        "duplicate provider name {name:?} (also spec.imageProviders[{first}].name)"
                    ),
                ));
            }
            let Some(config) = &p.config else {
                return Err(invalid(
                    self.file,
                    field("config"),
                    at,
                    format!("provider {name:?} has no config: a {FERRY_PROVIDER_TYPE} provider needs config.address"),
                ));
            };
            let address = &config.address.value;
            let scheme_ok = ["http://", "https://"].iter().any(|s| {
                address
                    .strip_prefix(s)
                    .is_some_and(|rest| !rest.is_empty() && !rest.starts_with('/'))
            });
            if !scheme_ok || address.contains(char::is_whitespace) {
                return Err(invalid(
                    self.file,
                    field("config.address"),
                    Pos::of(&config.address),
                    format!("invalid address {address:?}: write an http:// or https:// URL such as http://ferry.example.com:50051"),
                ));
            }
            if let Some(ca) = &config.ca_file {
                if !address.starts_with("https://") {
                    return Err(invalid(
                        self.file,
                        field("config.caFile"),
                        Pos::of(ca),
                        format!("caFile is set but address {address:?} is not https://: use https:// or drop caFile"),
                    ));
                }
            }
            out.push(ProviderConfig {
                address: address.clone(),
                token_file: self.opt_path(field("config.tokenFile"), config.token_file.as_ref())?,
                ca_file: self.opt_path(field("config.caFile"), config.ca_file.as_ref())?,
                name,
            });
        }
        Ok(out)
    }

    fn watchers(
        &self,
        raw: &[Spanned<RawWatcher>],
        repos: &[RepositoryConfig],
    ) -> Result<Vec<WatcherConfig>, ConfigError> {
        let mut by_repo: HashMap<String, (usize, WatcherConfig)> = HashMap::new();
        for (i, w) in raw.iter().enumerate() {
            let w = &w.value;
            let id = &w.repo_id.value;
            let field = format!("spec.imageWatcher[{i}].repoId");
            if !repos.iter().any(|r| &r.repo_id == id) {
                let known: Vec<&str> = repos.iter().map(|r| r.repo_id.as_str()).collect();
                return Err(invalid(
                    self.file,
                    field,
                    Pos::of(&w.repo_id),
                    format!(
                        "repoId {id:?} is not in spec.repositories (repoIds there: {})",
                        known.join(", ")
                    ),
                ));
            }
            if let Some((first, _)) = by_repo.get(id) {
                return Err(invalid(
                    self.file,
                    field,
                    Pos::of(&w.repo_id),
                    format!("repoId {id:?} has two imageWatcher entries (also spec.imageWatcher[{first}]): merge them"),
                ));
            }
            let patterns =
                |list: &[Spanned<String>], name: &str| -> Result<Vec<String>, ConfigError> {
                    list.iter()
                        .enumerate()
                        .map(|(j, p)| {
                            check_pattern(&p.value).map_err(|m| {
                                invalid(
                                    self.file,
                                    format!("spec.imageWatcher[{i}].{name}[{j}]"),
                                    Pos::of(p),
                                    m,
                                )
                            })
                        })
                        .collect()
                };
            let config = WatcherConfig {
                repo_id: id.clone(),
                includes: patterns(&w.includes, "includes")?,
                excludes: patterns(&w.excludes, "excludes")?,
            };
            by_repo.insert(id.clone(), (i, config));
        }
        Ok(repos
            .iter()
            .map(|r| match by_repo.remove(&r.repo_id) {
                Some((_, w)) => w,
                None => WatcherConfig {
                    repo_id: r.repo_id.clone(),
                    includes: Vec::new(),
                    excludes: Vec::new(),
                },
            })
            .collect())
    }
}

#[cfg(test)]
#[path = "piped_tests.rs"]
mod tests;
