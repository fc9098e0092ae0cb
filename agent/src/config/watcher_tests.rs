use super::*;

const FILE: &str = ".pipe/imagewatcher.yaml";

const FULL: &str = "\
apiVersion: pipecd.dev/v1beta1
kind: ImageWatcher
spec:
  commitMessage: \"Deploy {{image}}:{{tag}} ({{digest_short}})\"
  targets:
    - image: gcr.io/pipecd/foo
      provider: ferry
      filePath: foo/deployment.yaml
      field: spec.template.spec.containers[0].image
      format: tag
      policy:
        semver: \">=1.2, <2\"
        tagPattern: \"^main-[0-9a-f]{7}$\"
    - image: pipecd/bar
      provider: ferry
      filePath: bar/kustomization.yaml
      kustomize: {}
    - image: registry.example.com/core-cqrs-command
      provider: ferry
      filePath: environments/production/values/core-cqrs-command.yaml
      helm: {repository: image.graph, tag: image.tag, digest: image.digest}
      format: digest
";

fn parse(text: &str) -> ImageWatcherFile {
    ImageWatcherFile::parse(text, FILE).expect("file-level parse")
}

fn with(old: &str, new: &str) -> String {
    assert!(FULL.contains(old), "{old:?} not in the example");
    FULL.replacen(old, new, 1)
}

/// Asserts target `index` failed naming the file, the field path and each expected part.
#[track_caller]
fn assert_target_err(file: &ImageWatcherFile, index: usize, field: &str, parts: &[&str]) {
    let err = file.targets[index]
        .as_ref()
        .expect_err("target should be refused");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{FILE}:")),
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
}

#[track_caller]
fn assert_file_err(text: &str, field: &str, parts: &[&str]) -> ConfigError {
    let err = ImageWatcherFile::parse(text, FILE).expect_err("file should be refused");
    let shown = err.to_string();
    assert!(
        shown.starts_with(&format!("{FILE}:")),
        "file not named: {shown}"
    );
    assert_eq!(err.field(), field, "{shown}");
    for part in parts {
        assert!(shown.contains(part), "{part:?} missing from: {shown}");
    }
    err
}

#[test]
fn full_example_round_trip() {
    let f = parse(FULL);
    assert_eq!(f.file, FILE);
    assert_eq!(
        f.commit_message.as_deref(),
        Some("Deploy {{image}}:{{tag}} ({{digest_short}})")
    );
    let t: Vec<&TargetSpec> = f.targets.iter().map(|t| t.as_ref().unwrap()).collect();
    assert_eq!(t.len(), 3);
    assert_eq!(
        *t[0],
        TargetSpec {
            index: 0,
            pos: Some(Pos { line: 6, column: 7 }),
            image: ImageName::parse("gcr.io/pipecd/foo").unwrap(),
            image_raw: "gcr.io/pipecd/foo".into(),
            provider: "ferry".into(),
            file_path: "foo/deployment.yaml".into(),
            kind: TargetKind::Field {
                path: "spec.template.spec.containers[0].image".into(),
            },
            format: Format::Tag,
            policy: Some(Policy::new(Some(">=1.2, <2"), Some("^main-[0-9a-f]{7}$")).unwrap()),
            ring: None,
        }
    );
    assert_eq!(t[1].image.to_string(), "docker.io/pipecd/bar");
    assert_eq!(t[1].image_raw, "pipecd/bar");
    assert_eq!(t[1].kind, TargetKind::Kustomize);
    assert_eq!(t[1].format, Format::Tag);
    assert_eq!(t[1].policy, None);
    assert_eq!(t[2].index, 2);
    assert_eq!(
        t[2].kind,
        TargetKind::Helm {
            repository: Some("image.graph".into()),
            tag: Some("image.tag".into()),
            digest: Some("image.digest".into()),
        }
    );
    assert_eq!(t[2].format, Format::Digest);
    assert_eq!(f.valid_targets().count(), 3);
    assert_eq!(f.target_errors().count(), 0);
}

#[test]
fn a_bad_target_leaves_the_others_working() {
    let text = with("      format: digest\n", "      format: sha\n");
    let text = text.replacen(
        "      kustomize: {}\n",
        "      kustomize: {}\n      fromat: tag\n",
        1,
    );
    let f = parse(&text);
    assert!(f.targets[0].is_ok());
    assert_target_err(
        &f,
        1,
        "spec.targets[1].fromat",
        &["unknown field `fromat`", "format"],
    );
    assert_target_err(
        &f,
        2,
        "spec.targets[2].format",
        &["unknown format \"sha\"", "tag, digest or tag+digest"],
    );
    let err = f.targets[2].as_ref().unwrap_err();
    assert_eq!(
        err.diagnostic().unwrap().pos,
        Some(Pos {
            line: 23,
            column: 15
        })
    );
    assert_eq!(f.valid_targets().map(|t| t.index).collect::<Vec<_>>(), [0]);
    assert_eq!(f.target_errors().count(), 2);
}

#[test]
fn shape_errors_inside_a_target_stay_in_that_target() {
    let text = with(
        "      filePath: bar/kustomization.yaml\n",
        "      filePath: [a, b]\n",
    );
    let f = parse(&text);
    assert_target_err(&f, 1, "spec.targets[1].filePath", &["expected string"]);
    assert!(f.targets[0].is_ok() && f.targets[2].is_ok());

    let text = with("    - image: pipecd/bar\n", "    - imag: pipecd/bar\n");
    let f = parse(&text);
    assert_target_err(&f, 1, "spec.targets[1].imag", &["unknown field `imag`"]);

    let text = with(
        "      provider: ferry\n      filePath: bar",
        "      filePath: bar",
    );
    let f = parse(&text);
    assert_target_err(&f, 1, "spec.targets[1]", &["missing field `provider`"]);

    let text = with("      kustomize: {}\n", "      kustomize: {images: []}\n");
    let f = parse(&text);
    assert_target_err(
        &f,
        1,
        "spec.targets[1].kustomize.images",
        &["unknown field `images`"],
    );

    let text = with("tag: image.tag, digest", "tags: image.tag, digest");
    let f = parse(&text);
    assert_target_err(
        &f,
        2,
        "spec.targets[2].helm.tags",
        &["unknown field `tags`"],
    );
    assert_eq!(f.valid_targets().count(), 2);
}

#[test]
fn exactly_one_of_field_kustomize_helm() {
    let f = parse(&with("      kustomize: {}\n", ""));
    assert_target_err(
        &f,
        1,
        "spec.targets[1]",
        &["exactly one of field, kustomize or helm", "found none"],
    );
    let f = parse(&with(
        "      kustomize: {}\n",
        "      kustomize: {}\n      field: a.b\n",
    ));
    assert_target_err(&f, 1, "spec.targets[1]", &["found field and kustomize"]);
    let f = parse(&with("      kustomize: {}\n", "      kustomize:\n"));
    assert_eq!(f.targets[1].as_ref().unwrap().kind, TargetKind::Kustomize);
    let f = parse(&with(
        "      field: spec.template.spec.containers[0].image\n",
        "      field: ''\n",
    ));
    assert_target_err(&f, 0, "spec.targets[0].field", &["must not be empty"]);
}

#[test]
fn helm_keys() {
    let f = parse(&with(
        "{repository: image.graph, tag: image.tag, digest: image.digest}",
        "{repository: image.graph}",
    ));
    assert_target_err(
        &f,
        2,
        "spec.targets[2].helm",
        &["at least one of tag and digest"],
    );
    let f = parse(&with(
        "{repository: image.graph, tag: image.tag, digest: image.digest}",
        "{tag: image.tag}",
    ));
    assert_target_err(
        &f,
        2,
        "spec.targets[2].helm",
        &[
            "format is digest but helm has no digest path",
            "format: tag",
        ],
    );
    let text = with(
        "{repository: image.graph, tag: image.tag, digest: image.digest}",
        "{digest: image.digest}",
    );
    let f = parse(&text.replace("      format: digest\n", ""));
    assert_target_err(
        &f,
        2,
        "spec.targets[2].helm",
        &["format is tag but helm has no tag path", "format: digest"],
    );
    let f = parse(&with(
        "{repository: image.graph, tag: image.tag, digest: image.digest}",
        "{digest: image.digest}",
    ));
    assert_eq!(
        f.targets[2].as_ref().unwrap().kind,
        TargetKind::Helm {
            repository: None,
            tag: None,
            digest: Some("image.digest".into()),
        }
    );
    let f = parse(&with("format: digest", "format: tag+digest"));
    assert_eq!(f.targets[2].as_ref().unwrap().format, Format::TagDigest);
    let f = parse(&with("tag: image.tag,", "tag: '',"));
    assert_target_err(&f, 2, "spec.targets[2].helm.tag", &["must not be empty"]);
}

#[test]
fn image_provider_and_file_path() {
    let f = parse(&with("image: pipecd/bar", "image: pipecd/bar:1.0"));
    assert_target_err(
        &f,
        1,
        "spec.targets[1].image",
        &["invalid image \"pipecd/bar:1.0\"", "bare name"],
    );
    let f = parse(&with("image: pipecd/bar", "image: Pipecd/Bar"));
    assert_target_err(
        &f,
        1,
        "spec.targets[1].image",
        &["invalid image \"Pipecd/Bar\""],
    );
    let f = parse(&with("filePath: bar/kustomization.yaml", "filePath: ''"));
    assert_target_err(&f, 1, "spec.targets[1].filePath", &["must not be empty"]);
    let f = parse(&with(
        "      provider: ferry\n      filePath: bar",
        "      provider: ' '\n      filePath: bar",
    ));
    assert_target_err(&f, 1, "spec.targets[1].provider", &["must not be empty"]);
}

#[test]
fn policy_checks() {
    let f = parse(&with(
        "tagPattern: \"^main-[0-9a-f]{7}$\"",
        "tagPattern: \"^main-[0-9a-f{7}$\"",
    ));
    assert_target_err(
        &f,
        0,
        "spec.targets[0].policy.tagPattern",
        &["invalid regular expression \"^main-[0-9a-f{7}$\""],
    );
    let shown = f.targets[0].as_ref().unwrap_err().to_string();
    assert!(!shown.contains('\n'), "one line: {shown}");
    let f = parse(&with("semver: \">=1.2, <2\"", "semver: ''"));
    assert_target_err(
        &f,
        0,
        "spec.targets[0].policy.semver",
        &["must not be empty"],
    );
    let f = parse(&with(
        "        tagPattern: \"^main-[0-9a-f]{7}$\"\n",
        "        tag_pattern: x\n",
    ));
    assert_target_err(
        &f,
        0,
        "spec.targets[0].policy.tag_pattern",
        &["unknown field"],
    );
    let f = parse(&with(
        "      policy:\n        semver: \">=1.2, <2\"\n        tagPattern: \"^main-[0-9a-f]{7}$\"\n",
        "      policy: {}\n",
    ));
    assert_eq!(f.targets[0].as_ref().unwrap().policy, None);
}

#[test]
fn file_level_errors() {
    assert_file_err(
        &with("kind: ImageWatcher", "kind: Piped"),
        "kind",
        &["\"Piped\"", "expected ImageWatcher"],
    );
    assert_file_err(
        &with("apiVersion: pipecd.dev/v1beta1", "apiVersion: v1"),
        "apiVersion",
        &["unsupported apiVersion \"v1\""],
    );
    let err = assert_file_err(
        &with(
            "  commitMessage: \"Deploy {{image}}:{{tag}} ({{digest_short}})\"",
            "  commitMessage: \"Deploy {{image}}:{{tga}}\"",
        ),
        "spec.commitMessage",
        &["unknown placeholder {{tga}}"],
    );
    assert_eq!(
        err.diagnostic().unwrap().pos,
        Some(Pos {
            line: 4,
            column: 18
        })
    );
    assert_file_err(
        &with(
            "  commitMessage: \"Deploy {{image}}:{{tag}} ({{digest_short}})\"",
            "  commitMessage: ''",
        ),
        "spec.commitMessage",
        &["is empty"],
    );
    assert_file_err(
        &with("  targets:", "  trgets:"),
        "spec.trgets",
        &["unknown field `trgets`"],
    );
    assert_file_err(
        &with("  targets:", "  targets: {}\n  x:"),
        "spec.targets",
        &["sequence"],
    );
    let err = ImageWatcherFile::parse("kind: ImageWatcher\n  spec: : x\n", FILE).unwrap_err();
    assert!(matches!(err, ConfigError::Yaml(_)));
    assert!(err.to_string().starts_with(&format!("{FILE}:2:")), "{err}");
    assert!(err.to_string().contains("not allowed"), "{err}");
}

#[test]
fn no_commit_message_and_no_targets() {
    let f = parse("apiVersion: ferry.dev/v1\nkind: ImageWatcher\nspec:\n  targets: []\n");
    assert_eq!(f.commit_message, None);
    assert!(f.targets.is_empty());
}

#[test]
fn targets_naming_an_unknown_provider_are_refused() {
    let config = AgentConfig::parse(
        "apiVersion: ferry.dev/v1\nkind: Piped\nspec:\n  git: {username: bot, email: bot@example.com}\n  repositories: [{repoId: c, remote: x, branch: main}]\n  imageProviders: [{name: ferry, type: FERRY, config: {address: 'http://x'}}]\n",
        "agent.yaml",
    )
    .unwrap();
    let mut f = parse(&with(
        "      provider: ferry\n      filePath: bar",
        "      provider: frery\n      filePath: bar",
    ));
    f.check_providers(&config);
    assert!(f.targets[0].is_ok() && f.targets[2].is_ok());
    assert_target_err(
        &f,
        1,
        "spec.targets[1].provider",
        &[
            "provider \"frery\" is not an image provider",
            "known: ferry",
        ],
    );
}

#[test]
fn format_spellings() {
    for (s, f) in [
        ("tag", Format::Tag),
        ("digest", Format::Digest),
        ("tag+digest", Format::TagDigest),
    ] {
        assert_eq!(s.parse::<Format>().unwrap(), f);
        assert_eq!(f.to_string(), s);
    }
    assert!("Tag".parse::<Format>().is_err());
    assert_eq!(Format::default(), Format::Tag);
}

// The policy is compiled where it is validated (once), so a bad range is refused at its own
// field with its position, like every other field.
#[test]
fn a_bad_semver_range_is_refused_at_its_field() {
    let f = parse(&with("semver: \">=1.2, <2\"", "semver: \">=1.2 <<2\""));
    assert_target_err(&f, 0, "spec.targets[0].policy.semver", &[">=1.2 <<2"]);
    let err = f.targets[0].as_ref().unwrap_err();
    assert_eq!(
        err.diagnostic().and_then(|d| d.pos).map(|p| p.line),
        Some(12)
    );
    assert_eq!(f.valid_targets().count(), 2);
}

const RING: &str = "\
apiVersion: pipecd.dev/v1beta1
kind: ImageWatcher
spec:
  targets:
    - image: registry.example.com/shop/api
      provider: ferry
      filePath: environments/prod/kustomization.yaml
      kustomize: {}
      ring: users
      pipeline: shop
      format: tag+digest
";

fn ring_with(old: &str, new: &str) -> String {
    assert!(RING.contains(old), "{old:?} not in the ring example");
    RING.replacen(old, new, 1)
}

#[test]
fn ring_targets_name_the_ring_and_maybe_the_pipeline() {
    let f = parse(RING);
    let t = f.targets[0].as_ref().unwrap();
    assert_eq!(
        t.ring,
        Some(RingFollow {
            ring: "users".into(),
            pipeline: Some("shop".into()),
        })
    );
    assert!(t.follows_ring());
    assert_eq!(t.policy, None);
    assert_eq!(t.format, Format::TagDigest);
    let f = parse(&ring_with("      pipeline: shop\n", ""));
    let t = f.targets[0].as_ref().unwrap();
    assert_eq!(t.ring.as_ref().unwrap().pipeline, None);
    // A tag target follows no ring.
    assert!(!parse(FULL).targets[1].as_ref().unwrap().follows_ring());
}

#[test]
fn ring_and_policy_are_refused_together() {
    let f = parse(&ring_with(
        "      ring: users\n",
        "      ring: users\n      policy: {semver: '>=1'}\n",
    ));
    assert_target_err(
        &f,
        0,
        "spec.targets[0].ring",
        &["9:13", "ring or policy, not both"],
    );
    // Even an empty policy: it says the author meant tags.
    let f = parse(&ring_with(
        "      ring: users\n",
        "      ring: users\n      policy: {}\n",
    ));
    assert_target_err(&f, 0, "spec.targets[0].ring", &["not both"]);
}

#[test]
fn ring_and_pipeline_names_are_checked() {
    let f = parse(&ring_with("ring: users", "ring: Users"));
    assert_target_err(
        &f,
        0,
        "spec.targets[0].ring",
        &["9:13", "\"Users\"", "[a-z0-9][a-z0-9-]*"],
    );
    let f = parse(&ring_with("ring: users", "ring: ante"));
    assert_target_err(&f, 0, "spec.targets[0].ring", &["\"ante\"", "pseudo ring"]);
    let f = parse(&ring_with("ring: users", "ring: post"));
    assert_target_err(&f, 0, "spec.targets[0].ring", &["pseudo ring"]);
    let f = parse(&ring_with("pipeline: shop", "pipeline: shop_1"));
    assert_target_err(
        &f,
        0,
        "spec.targets[0].pipeline",
        &["10:17", "invalid pipeline name \"shop_1\""],
    );
    let f = parse(&ring_with("      ring: users\n", ""));
    assert_target_err(
        &f,
        0,
        "spec.targets[0].pipeline",
        &["only for ring targets"],
    );
}
