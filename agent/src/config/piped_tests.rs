use super::*;
use crate::config::SyncCall;

const FULL: &str = "\
apiVersion: pipecd.dev/v1beta1          # ferry.dev/v1 is accepted too
kind: Piped
spec:
  git:
    username: ferry-bot
    email: ferry-bot@example.com
    sshKeyFile: /etc/ferry/ssh-key
    signingKeyFile: keys/gpg.asc
  repositories:
    - repoId: config
      remote: git://git.example.com/config.git
      branch: main
    - repoId: apps
      remote: https://git.example.com/apps.git
      branch: release
  imageProviders:
    - name: ferry
      type: FERRY
      config:
        address: http://ferry.example.com:50051
        tokenFile: agent-token
    - name: ferry-tls
      type: FERRY
      config:
        address: https://ferry.example.com
        caFile: /etc/ferry/ca.pem
  imageWatcher:
    - repoId: config
      includes: [.pipe/imagewatcher-prod.yaml, ./.pipe/team-*.yaml]
      excludes: [.pipe/team-old.yaml]
";

fn parse(text: &str) -> Result<AgentConfig, ConfigError> {
    AgentConfig::parse(text, "/etc/ferry/agent.yaml")
}

/// Asserts that the error names the file, the field path and every expected part of the rule.
#[track_caller]
fn assert_err(text: &str, field: &str, parts: &[&str]) -> ConfigError {
    let err = parse(text).expect_err("config should be refused");
    let shown = err.to_string();
    assert!(
        shown.starts_with("/etc/ferry/agent.yaml:"),
        "file not named: {shown}"
    );
    assert_eq!(err.field(), field, "{shown}");
    assert!(
        shown.contains(&format!(": {field}: ")),
        "field not shown: {shown}"
    );
    for part in parts {
        assert!(shown.contains(part), "{part:?} missing from: {shown}");
    }
    err
}

fn with(old: &str, new: &str) -> String {
    assert!(FULL.contains(old), "{old:?} not in the example");
    FULL.replacen(old, new, 1)
}

#[test]
fn full_example_round_trip() {
    let c = parse(FULL).unwrap();
    assert_eq!(
        c,
        AgentConfig {
            sync_triggers: vec![],
            cluster: String::new(),
            identity: GitIdentity {
                name: "ferry-bot".into(),
                email: "ferry-bot@example.com".into(),
            },
            ssh_key_file: Some("/etc/ferry/ssh-key".into()),
            signing_key_file: Some("/etc/ferry/keys/gpg.asc".into()),
            ca_file: None,
            repositories: vec![
                RepositoryConfig {
                    push: PushConfig::default(),
                    repo_id: "config".into(),
                    remote: "git://git.example.com/config.git".into(),
                    branch: "main".into(),
                    https: None,
                },
                RepositoryConfig {
                    push: PushConfig::default(),
                    repo_id: "apps".into(),
                    remote: "https://git.example.com/apps.git".into(),
                    branch: "release".into(),
                    https: None,
                },
            ],
            providers: vec![
                ProviderConfig {
                    name: "ferry".into(),
                    address: "http://ferry.example.com:50051".into(),
                    token_file: Some("/etc/ferry/agent-token".into()),
                    ca_file: None,
                },
                ProviderConfig {
                    name: "ferry-tls".into(),
                    address: "https://ferry.example.com".into(),
                    token_file: None,
                    ca_file: Some("/etc/ferry/ca.pem".into()),
                },
            ],
            watchers: vec![
                WatcherConfig {
                    repo_id: "config".into(),
                    includes: vec![
                        ".pipe/imagewatcher-prod.yaml".into(),
                        ".pipe/team-*.yaml".into()
                    ],
                    excludes: vec![".pipe/team-old.yaml".into()],
                },
                // Not listed under imageWatcher: watched with the default, as in PipeCD.
                WatcherConfig {
                    repo_id: "apps".into(),
                    includes: vec![],
                    excludes: vec![],
                },
            ],
        }
    );
    assert_eq!(c.repository("apps").unwrap().branch, "release");
    assert_eq!(
        c.provider("ferry-tls").unwrap().address,
        "https://ferry.example.com"
    );
    assert!(c.provider("gcr").is_none());
}

#[test]
fn minimal_config_and_ferry_api_version() {
    let text = "\
apiVersion: ferry.dev/v1
kind: Piped
spec:
  git: {username: bot, email: bot@example.com}
  repositories: [{repoId: config, remote: /srv/git/config.git, branch: main}]
  imageProviders: [{name: ferry, type: FERRY, config: {address: 'http://127.0.0.1:50051'}}]
";
    let c = parse(text).unwrap();
    assert_eq!(c.ssh_key_file, None);
    assert_eq!(c.signing_key_file, None);
    assert_eq!(c.ca_file, None);
    assert_eq!(c.providers[0].token_file, None);
    assert_eq!(c.watchers.len(), 1);
    assert!(c.watchers[0].includes.is_empty());
}

#[test]
fn load_reads_the_file_and_resolves_paths_against_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("agent.yaml");
    std::fs::write(&path, FULL).unwrap();
    let c = AgentConfig::load(&path).unwrap();
    assert_eq!(c.signing_key_file, Some(dir.path().join("keys/gpg.asc")));
    assert_eq!(
        c.providers[0].token_file,
        Some(dir.path().join("agent-token"))
    );
    assert_eq!(c.ssh_key_file, Some(PathBuf::from("/etc/ferry/ssh-key")));

    let missing = dir.path().join("nope.yaml");
    let err = AgentConfig::load(&missing).unwrap_err();
    assert!(matches!(err, ConfigError::Read { .. }));
    assert!(err.to_string().contains("nope.yaml"), "{err}");

    std::fs::write(
        &path,
        with("apiVersion: pipecd.dev/v1beta1", "apiVersion: v1"),
    )
    .unwrap();
    let err = AgentConfig::load(&path).unwrap_err();
    assert!(
        err.to_string()
            .starts_with(&format!("{}:1:13: apiVersion: ", path.display())),
        "{err}"
    );
}

#[test]
fn api_version_and_kind() {
    let err = assert_err(
        &with(
            "apiVersion: pipecd.dev/v1beta1",
            "apiVersion: pipecd.dev/v1",
        ),
        "apiVersion",
        &[
            "unsupported apiVersion \"pipecd.dev/v1\"",
            "pipecd.dev/v1beta1 or ferry.dev/v1",
        ],
    );
    assert_eq!(
        err.diagnostic().unwrap().pos,
        Some(Pos {
            line: 1,
            column: 13
        })
    );
    assert_err(
        &with("kind: Piped", "kind: ImageWatcher"),
        "kind",
        &["\"ImageWatcher\"", "kind Piped"],
    );
}

#[test]
fn other_pipecd_provider_types_are_refused_by_type() {
    // A GCR provider has a different config shape; the error is about its type, not its fields.
    let text = with(
        "    - name: ferry-tls\n      type: FERRY\n      config:\n        address: https://ferry.example.com\n        caFile: /etc/ferry/ca.pem\n",
        "    - name: gcr\n      type: GCR\n      config:\n        serviceAccountFile: /etc/sa.json\n",
    );
    let err = assert_err(
        &text,
        "spec.imageProviders[1].type",
        &["unsupported image provider type \"GCR\" for provider \"gcr\": ferry-agent only reads FERRY"],
    );
    assert_eq!(
        err.diagnostic().unwrap().pos,
        Some(Pos {
            line: 23,
            column: 13
        })
    );
    for other in ["ECR", "DOCKER_HUB"] {
        assert_err(
            &with("type: FERRY", &format!("type: {other}")),
            "spec.imageProviders[0].type",
            &[other],
        );
    }
    assert_err(
        &with("type: FERRY", "type: ferry"),
        "spec.imageProviders[0].type",
        &["upper case"],
    );
}

#[test]
fn unknown_fields_are_errors_naming_the_field() {
    let err = assert_err(
        &with("tokenFile: agent-token", "tokenFiel: agent-token"),
        "spec.imageProviders[0].config.tokenFiel",
        &["unknown field `tokenFiel`", "tokenFile"],
    );
    assert!(matches!(err, ConfigError::Yaml(_)));
    assert_eq!(
        err.diagnostic().unwrap().pos,
        Some(Pos {
            line: 21,
            column: 9
        })
    );
    assert_err(
        &with("  git:\n", "  gti: {}\n  git:\n"),
        "spec.gti",
        &["unknown field `gti`"],
    );
    assert_err(
        &with(
            "      branch: main\n",
            "      branch: main\n      brnach: x\n",
        ),
        "spec.repositories[0].brnach",
        &["unknown field"],
    );
    assert_err(
        &with("      excludes:", "      exclude:"),
        "spec.imageWatcher[0].exclude",
        &["unknown field"],
    );
}

#[test]
fn missing_and_mistyped_fields() {
    assert_err(
        &with("      branch: main\n", ""),
        "spec.repositories[0]",
        &["missing field `branch`"],
    );
    assert_err(
        &with("      branch: main\n", "      branch: [main]\n"),
        "spec.repositories[0].branch",
        &["expected string"],
    );
    assert_err(
        &with("      branch: main\n", "      branch: \"\"\n"),
        "spec.repositories[0].branch",
        &["must not be empty"],
    );
    let no_config = with(
        "      config:\n        address: http://ferry.example.com:50051\n        tokenFile: agent-token\n",
        "",
    );
    assert_err(
        &no_config,
        "spec.imageProviders[0].config",
        &["provider \"ferry\" has no config", "config.address"],
    );
    let err = parse("").unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}

#[test]
fn provider_rules() {
    assert_err(
        &with("name: ferry-tls", "name: ferry"),
        "spec.imageProviders[1].name",
        &[
            "duplicate provider name \"ferry\"",
            "spec.imageProviders[0].name",
        ],
    );
    for bad in [
        "ferry.example.com:50051",
        "grpc://ferry.example.com",
        "http://",
        "http:///x",
    ] {
        assert_err(
            &with(
                "address: http://ferry.example.com:50051",
                &format!("address: '{bad}'"),
            ),
            "spec.imageProviders[0].config.address",
            &[&format!("invalid address {bad:?}"), "http:// or https://"],
        );
    }
    assert_err(
        &with(
            "address: https://ferry.example.com",
            "address: http://ferry.example.com",
        ),
        "spec.imageProviders[1].config.caFile",
        &["caFile is set", "\"http://ferry.example.com\""],
    );
}

#[test]
fn repository_rules() {
    assert_err(
        &with("repoId: apps", "repoId: config"),
        "spec.repositories[1].repoId",
        &["duplicate repoId \"config\"", "spec.repositories[0].repoId"],
    );
    for bad in ["../x", "a/b", "", "-x"] {
        assert_err(
            &with("repoId: apps", &format!("repoId: '{bad}'")),
            "spec.repositories[1].repoId",
            &[&format!("invalid repoId {bad:?}")],
        );
    }
    let text = "apiVersion: ferry.dev/v1\nkind: Piped\nspec:\n  git: {username: bot, email: bot@example.com}\n  repositories: []\n  imageProviders: [{name: f, type: FERRY, config: {address: 'http://x'}}]\n";
    assert_err(text, "spec.repositories", &["at least one repository"]);
    let text = text
        .replace(
            "repositories: []",
            "repositories: [{repoId: c, remote: x, branch: main}]",
        )
        .replace(
            "imageProviders: [{name: f, type: FERRY, config: {address: 'http://x'}}]",
            "imageProviders: []",
        );
    assert_err(
        &text,
        "spec.imageProviders",
        &["at least one image provider of type FERRY"],
    );
}

#[test]
fn https_credentials_come_from_a_file_and_only_for_https() {
    let creds = |lines: &str| {
        with(
            "      branch: release\n",
            &format!("      branch: release\n{lines}"),
        )
    };
    let with_file = |line: &str| creds(&format!("      username: ferry-bot\n{line}"));
    let config = parse(&with_file("      tokenFile: git-token\n")).unwrap();
    assert_eq!(
        config.repositories[1].https,
        Some(HttpsCredentials {
            username: "ferry-bot".into(),
            password_file: "/etc/ferry/git-token".into(),
        })
    );
    let config = parse(&with_file("      passwordFile: /run/secrets/pw\n")).unwrap();
    let https = config.repositories[1].https.clone().unwrap();
    assert_eq!(https.password_file, PathBuf::from("/run/secrets/pw"));
    assert_eq!(https.username, "ferry-bot");
    assert_err(
        &with_file("      tokenFile: a\n      passwordFile: b\n"),
        "spec.repositories[1].tokenFile",
        &["passwordFile or tokenFile, not both"],
    );
    assert_err(
        &with_file(""),
        "spec.repositories[1].username",
        &["add passwordFile (or tokenFile)"],
    );
    let token = with_file("      tokenFile: git-token\n");
    assert_err(
        &token.replace(
            "remote: https://git.example.com/apps.git",
            "remote: git://git.example.com/apps.git",
        ),
        "spec.repositories[1].tokenFile",
        &["for https:// remotes", "git://git.example.com/apps.git"],
    );
    assert_err(
        &token.replace(
            "remote: https://git.example.com/apps.git",
            "remote: https://bot:secret@git.example.com/apps.git",
        ),
        "spec.repositories[1].tokenFile",
        &["remove it from the URL"],
    );
    // Without username, the URL's user, else "git".
    let no_user = creds("      tokenFile: git-token\n");
    assert_eq!(
        parse(&no_user).unwrap().repositories[1]
            .https
            .clone()
            .unwrap()
            .username,
        "git"
    );
    let url_user = no_user.replace(
        "https://git.example.com",
        "https://deployer@git.example.com",
    );
    assert_eq!(
        parse(&url_user).unwrap().repositories[1]
            .https
            .clone()
            .unwrap()
            .username,
        "deployer"
    );
}

#[test]
fn git_identity_rules() {
    for bad in [
        "ferry-bot",
        "@example.com",
        "ferry-bot@",
        "a b@example.com",
        "<bot@example.com>",
    ] {
        assert_err(
            &with("email: ferry-bot@example.com", &format!("email: '{bad}'")),
            "spec.git.email",
            &[&format!("invalid email {bad:?}")],
        );
    }
    assert_err(
        &with("username: ferry-bot", "username: ' '"),
        "spec.git.username",
        &["must not be empty"],
    );
    assert_err(
        &with("sshKeyFile: /etc/ferry/ssh-key", "sshKeyFile: ''"),
        "spec.git.sshKeyFile",
        &["must not be empty"],
    );
}

#[test]
fn image_watcher_rules() {
    assert_err(
        &with(
            "    - repoId: config\n      includes",
            "    - repoId: cfg\n      includes",
        ),
        "spec.imageWatcher[0].repoId",
        &["repoId \"cfg\" is not in spec.repositories", "config, apps"],
    );
    let twice = with(
        "      excludes: [.pipe/team-old.yaml]\n",
        "      excludes: [.pipe/team-old.yaml]\n    - repoId: config\n",
    );
    assert_err(
        &twice,
        "spec.imageWatcher[1].repoId",
        &["two imageWatcher entries", "spec.imageWatcher[0]"],
    );
    assert_err(
        &with("./.pipe/team-*.yaml", "../other/.pipe/x.yaml"),
        "spec.imageWatcher[0].includes[1]",
        &["\"../other/.pipe/x.yaml\"", "`..` is not allowed"],
    );
    assert_err(
        &with(
            "includes: [.pipe/imagewatcher-prod.yaml",
            "includes: [/etc/x.yaml",
        ),
        "spec.imageWatcher[0].includes[0]",
        &["\"/etc/x.yaml\" is absolute"],
    );
    assert_err(
        &with("excludes: [.pipe/team-old.yaml]", "excludes: ['*/x.yaml']"),
        "spec.imageWatcher[0].excludes[0]",
        &["file-name part"],
    );
}

#[test]
fn git_ca_file_is_resolved_against_the_config_directory() {
    let key = "    signingKeyFile: keys/gpg.asc\n";
    let c = parse(&with(key, &format!("{key}    caFile: git-ca.pem\n"))).unwrap();
    assert_eq!(c.ca_file, Some(PathBuf::from("/etc/ferry/git-ca.pem")));
    let c = parse(&with(key, &format!("{key}    caFile: /srv/ca.pem\n"))).unwrap();
    assert_eq!(c.ca_file, Some(PathBuf::from("/srv/ca.pem")));
    assert_err(
        &with(key, &format!("{key}    caFile: ''\n")),
        "spec.git.caFile",
        &["must not be empty"],
    );
}

/// The example with `push:` (its lines, indented under the first repository) after
/// `branch: main`.
fn with_push(lines: &[&str]) -> String {
    let mut push = String::from("      branch: main\n      push:\n");
    for line in lines {
        push.push_str(&format!("        {line}\n"));
    }
    with("      branch: main\n", &push)
}

#[test]
fn push_branch_template_and_options() {
    let c = parse(&with_push(&[
        "branch: ferry/updates",
        "pushOptions: [merge_request.create, \"merge_request.target=main\"]",
    ]))
    .unwrap();
    assert_eq!(
        c.repositories[0].push,
        PushConfig {
            to: PushTarget::Branch("ferry/updates".into()),
            options: vec![
                "merge_request.create".into(),
                "merge_request.target=main".into()
            ],
        }
    );
    // The other repository has no push section: it commits to its branch.
    assert_eq!(c.repositories[1].push, PushConfig::default());

    let c = parse(&with_push(&["branchTemplate: \"ferry/{{image}}-{{tag}}\""])).unwrap();
    assert_eq!(
        c.repositories[0].push.to,
        PushTarget::Template("ferry/{{image}}-{{tag}}".into())
    );
    // Options alone: pushed to the base, with the options.
    let c = parse(&with_push(&["pushOptions: [ci.skip]"])).unwrap();
    assert_eq!(c.repositories[0].push.to, PushTarget::Base);
    assert_eq!(c.repositories[0].push.options, vec!["ci.skip".to_string()]);
}

#[test]
fn push_rules() {
    assert_err(
        &with_push(&["branch: ferry/updates", "branchTemplate: 'ferry/{{tag}}'"]),
        "spec.repositories[0].push.branchTemplate",
        &["push.branch or push.branchTemplate, not both"],
    );
    assert_err(
        &with_push(&["branch: ''"]),
        "spec.repositories[0].push.branch",
        &["branch \"\" is empty"],
    );
    for bad in ["a..b", "x y", "-x", "ends/", "a.lock", "a:b"] {
        assert_err(
            &with_push(&[&format!("branch: {bad}")]),
            "spec.repositories[0].push.branch",
            &["is not a valid git branch name"],
        );
    }
    assert_err(
        &with_push(&["branch: main"]),
        "spec.repositories[0].push.branch",
        &["\"main\" is the base branch", "never pushes the base"],
    );
    assert_err(
        &with_push(&["branchTemplate: 'ferry/{{release}}'"]),
        "spec.repositories[0].push.branchTemplate",
        &["unknown placeholder {{release}}", "tag"],
    );
    // Nothing of it survives sanitising: refused with what it rendered to.
    assert_err(
        &with_push(&["branchTemplate: '..///'"]),
        "spec.repositories[0].push.branchTemplate",
        &["renders to \"..///\"", "is empty"],
    );
    assert_err(
        &with_push(&["branchTemplate: main"]),
        "spec.repositories[0].push.branchTemplate",
        &["renders to the base branch \"main\""],
    );
    assert_err(
        &with_push(&["pushOptions: [\"a\\nb\"]"]),
        "spec.repositories[0].push.pushOptions[0]",
        &["line break", "\"a\\nb\""],
    );
    assert_err(
        &with_push(&["pushBranch: x"]),
        "spec.repositories[0].push.pushBranch",
        &["unknown field `pushBranch`", "branchTemplate"],
    );
}

#[test]
fn cluster_name_is_checked_and_optional() {
    assert_eq!(parse(FULL).unwrap().cluster, "");
    let named = with("spec:\n", "spec:\n  name: prod-eu-1\n");
    assert_eq!(parse(&named).unwrap().cluster, "prod-eu-1");
    let bad = with("spec:\n", "spec:\n  name: Prod EU\n");
    assert_err(
        &bad,
        "spec.name",
        &[
            "agent.yaml:4:9",
            "\"Prod EU\"",
            "lower-case",
            "remove spec.name",
        ],
    );
    assert_err(
        &with("spec:\n", "spec:\n  name: \"\"\n"),
        "spec.name",
        &["invalid cluster name \"\""],
    );
}

const SYNC: &str = "
  syncTriggers:
    - repoId: config
      argocd:
        server: https://argocd.example.com/
        tokenFile: argocd-token
        applications:
          - name: shop-prod
          - name: api-prod
            appNamespace: team-a
            paths: [apps/api/]
    - repoId: apps
      webhook:
        url: https://ci.example.com/hooks/ferry
";

#[test]
fn sync_triggers_are_read_with_token_files_resolved_and_paths_normalised() {
    let c = parse(&format!("{FULL}{SYNC}")).unwrap();
    assert_eq!(c.sync_triggers.len(), 2);
    let SyncCall::ArgoCd {
        server,
        token_file,
        applications,
        prune,
    } = &c.sync_triggers[0].call
    else {
        panic!("{:?}", c.sync_triggers)
    };
    assert_eq!(server, "https://argocd.example.com");
    assert_eq!(token_file, Path::new("/etc/ferry/argocd-token"));
    assert!(!prune);
    assert_eq!(applications[1].paths, vec!["apps/api".to_string()]);
    assert_eq!(applications[1].app_namespace.as_deref(), Some("team-a"));
    assert!(matches!(
        &c.sync_triggers[1].call,
        SyncCall::Webhook {
            token_file: None,
            ..
        }
    ));
}

#[test]
fn bad_sync_triggers_are_refused_naming_file_line_field_and_rule() {
    let full = format!("{FULL}{SYNC}");
    let text = full.replace("repoId: apps\n      webhook", "repoId: nope\n      webhook");
    assert_err(
        &text,
        "spec.syncTriggers[1].repoId",
        &["\"nope\" is not in spec.repositories", "config, apps"],
    );
    let text = full.replace("https://argocd.example.com/", "argocd.example.com");
    assert_err(
        &text,
        "spec.syncTriggers[0].argocd.server",
        &["write http://HOST"],
    );
    let text = full.replace("name: shop-prod", "name: Shop_Prod");
    assert_err(
        &text,
        "spec.syncTriggers[0].argocd.applications[0].name",
        &["lower-case letters"],
    );
    let text = full.replace("paths: [apps/api/]", "paths: [../x]");
    assert_err(
        &text,
        "spec.syncTriggers[0].argocd.applications[1].paths[0]",
        &["'..'"],
    );
    let text = full.replace(
        "    - repoId: apps\n      webhook:\n        url: https://ci.example.com/hooks/ferry\n",
        "    - repoId: apps\n",
    );
    assert_err(&text, "spec.syncTriggers[1]", &["exactly one of argocd"]);
}
