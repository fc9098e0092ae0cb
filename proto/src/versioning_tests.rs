//! The "Versioning" tables of docs/rings.md, row by row, and the edge cases added to them.

use super::*;

fn running(digest_byte: char, labels: &[(&str, &str)]) -> Running {
    Running {
        digest: format!("sha256:{}", digest_byte.to_string().repeat(64)),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    }
}

fn versioned(v: &str) -> Option<Running> {
    (!v.is_empty()).then(|| running('a', &[(VERSION_LABEL, v)]))
}

fn next(this: &str, next_ring: &str, major: bool) -> Result<NextVersion, VersionError> {
    let (t, n) = (versioned(this), versioned(next_ring));
    next_version(
        Side {
            ring: "testers",
            running: t.as_ref(),
        },
        Side {
            ring: "users",
            running: n.as_ref(),
        },
        major,
    )
}

#[test]
fn version_next_table() {
    // (this ring, next ring, --major, next version, a word the why must contain); "" = empty.
    let rows: &[(&str, &str, bool, &str, &str)] = &[
        // The rows of docs/rings.md.
        ("1.2.3", "1.2.0", false, "1.3.0", "same minor"),
        ("1.3.0", "1.2.5", false, "1.3.1", "older minor"),
        ("1.2.3", "", false, "1.2.4", "a fix"),
        ("", "1.4.2", false, "1.5.0", "minor after users"),
        ("", "", false, "0.1.0", "first build"),
        ("1.2.3", "1.2.0", true, "2.0.0", "--major"),
        ("1.2.3", "", true, "2.0.0", "--major"),
        ("1.2.3", "9.9.9", true, "2.0.0", "--major"),
        ("1.3.0-rc.1", "1.2.0", false, "1.3.0-rc.2", "pre-release"),
        ("1.3.0-rc.1", "", false, "1.3.0-rc.2", "pre-release"),
        ("1.3.0-beta", "1.2.0", false, "1.3.0-beta.1", "pre-release"),
        ("v1.2.3", "v1.2.0", false, "v1.3.0", "same minor"),
        ("1.2.3+build.7", "", false, "1.2.4", "a fix"),
        ("1.2.3+build.7", "1.2.0+ci.1", false, "1.3.0", "same minor"),
        // Edge cases, added to the docs table.
        ("1.2.3", "1.4.0", false, "1.2.4", "ahead"),
        ("2.0.1", "1.9.0", false, "2.0.2", "older minor"),
        ("v1.2.3", "1.2.0", false, "v1.3.0", "same minor"),
        ("", "v1.4.2", false, "v1.5.0", "minor after"),
        (
            "1.0.0-alpha.1.x",
            "",
            false,
            "1.0.0-alpha.2.x",
            "pre-release",
        ),
        ("1.3.0-rc.1", "", true, "2.0.0", "--major"),
        ("", "1.4.2", true, "2.0.0", "after 1.4.2 (users)"),
        ("", "", true, "1.0.0", "first major"),
    ];
    for &(this, next_ring, major, want, why) in rows {
        let got = next(this, next_ring, major)
            .unwrap_or_else(|e| panic!("{this:?} / {next_ring:?}: {e}"));
        assert_eq!(got.version, want, "{this:?} / {next_ring:?} major={major}");
        assert!(
            got.why.contains(why),
            "{this:?} / {next_ring:?}: why {:?} lacks {why:?}",
            got.why
        );
    }
}

#[test]
fn every_version_next_sorts_after_this_ring() {
    for this in [
        "1.2.3",
        "1.3.0-rc.1",
        "1.3.0-beta",
        "1.0.0-alpha.1.x",
        "0.0.0",
    ] {
        for next_ring in ["", "1.2.0", "0.1.0", "3.0.0"] {
            for major in [false, true] {
                let got = next(this, next_ring, major).unwrap();
                let a = Version::parse(this).unwrap();
                let b = Version::parse(&got.version).unwrap();
                assert!(b > a, "{this} / {next_ring}: {b} is not after {a}");
            }
        }
    }
}

#[test]
fn a_label_that_is_not_semver_names_the_ring_digest_and_value() {
    for (this, next_ring, bad_ring, value) in [
        ("latest", "", "testers", "latest"),
        ("1.2", "1.2.0", "testers", "1.2"),
        ("1.2.3", "V1.2.0", "users", "V1.2.0"),
        ("1.3.0-rc.1", "01.2.0", "users", "01.2.0"),
    ] {
        let err = next(this, next_ring, false).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(&err, VersionError::NotSemver { ring, value: v, .. } if ring == bad_ring && v == value),
            "{err:?}"
        );
        assert!(
            text.contains(&format!("ring {bad_ring} runs sha256:aaaa")),
            "{text}"
        );
        assert!(text.contains(&format!("{value:?}")), "{text}");
        assert!(text.contains("semantic versioning"), "{text}");
    }
}

#[test]
fn a_digest_without_a_version_label_is_an_error_not_a_first_build() {
    let unlabelled = running('b', &[]);
    let err = next_version(
        Side {
            ring: "testers",
            running: Some(&unlabelled),
        },
        Side {
            ring: "users",
            running: None,
        },
        false,
    )
    .unwrap_err();
    assert_eq!(
        err,
        VersionError::Unversioned {
            ring: "testers".into(),
            digest: unlabelled.digest.clone()
        }
    );
    assert!(err
        .to_string()
        .contains("--label org.opencontainers.image.version="));
}

fn decide(
    ring_labels: Option<&[(&str, &str)]>,
    revision: &str,
    deps: &[(&str, &str)],
) -> BuildDecision {
    let r = ring_labels.map(|l| running('c', l));
    needs_build(
        Side {
            ring: "testers",
            running: r.as_ref(),
        },
        &BuildInputs {
            revision: revision.to_string(),
            dependencies: deps
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        },
    )
}

const FULL: &str = "0123456789abcdef0123456789abcdef01234567";

#[test]
fn needs_build_table() {
    let rev = |r: &'static str| vec![(REVISION_LABEL, r)];
    // (ring labels or None for an empty ring, --revision, --dependency, build needed, why contains)
    type Row = (
        Option<Vec<(&'static str, &'static str)>>,
        &'static str,
        Vec<(&'static str, &'static str)>,
        bool,
        &'static str,
    );
    let rows: Vec<Row> = vec![
        (None, FULL, vec![], true, "runs nothing"),
        (Some(rev(FULL)), FULL, vec![], false, "no build needed"),
        (Some(rev(FULL)), "0123456", vec![], false, "no build needed"),
        (Some(rev("0123456")), FULL, vec![], false, "no build needed"),
        (
            Some(rev(FULL)),
            "0123456789ABCDEF",
            vec![],
            false,
            "no build needed",
        ),
        (Some(rev(FULL)), "012345", vec![], true, "not \"012345\""),
        (
            Some(rev(FULL)),
            "1123456",
            vec![],
            true,
            "built from revision",
        ),
        (
            Some(vec![]),
            FULL,
            vec![],
            true,
            "no org.opencontainers.image.revision label",
        ),
        (
            Some(rev("r1234")),
            "r1234",
            vec![],
            false,
            "no build needed",
        ),
        (
            Some(rev("r12345678")),
            "r1234567",
            vec![],
            true,
            "built from revision",
        ),
        (
            Some(vec![(REVISION_LABEL, FULL), ("dependency.api", "1.2.0")]),
            FULL,
            vec![("api", "1.2.0")],
            false,
            "dependency.api=1.2.0",
        ),
        (
            Some(vec![(REVISION_LABEL, FULL), ("dependency.api", "1.2.0")]),
            FULL,
            vec![("api", "1.3.0")],
            true,
            "dependency.api=\"1.2.0\", not \"1.3.0\"",
        ),
        (
            Some(rev(FULL)),
            FULL,
            vec![("web", "2.0.0")],
            true,
            "no \"dependency.web\" label",
        ),
    ];
    for (labels, revision, deps, needed, why) in rows {
        let got = decide(labels.as_deref(), revision, &deps);
        assert_eq!(
            got.needed, needed,
            "{labels:?} / {revision} / {deps:?}: {}",
            got.why
        );
        assert!(got.why.contains(why), "{:?} lacks {why:?}", got.why);
        assert!(got.why.starts_with("ring testers"), "{:?}", got.why);
    }
}

#[test]
fn needs_build_says_every_reason() {
    let got = decide(
        Some(&[(REVISION_LABEL, FULL), ("dependency.api", "1.0.0")]),
        "fedcba9",
        &[("api", "2.0.0"), ("web", "1.0.0")],
    );
    assert!(got.needed);
    assert_eq!(got.why.matches("; ").count(), 2, "{}", got.why);
}

#[test]
fn a_huge_revision_is_cut_in_the_why() {
    let huge = "f".repeat(10_000);
    let got = decide(Some(&[(REVISION_LABEL, FULL)]), &huge, &[]);
    assert!(got.needed);
    assert!(got.why.len() < 500, "{}", got.why.len());
}

#[test]
fn short_digests() {
    assert_eq!(
        short_digest(&format!("sha256:{}", "ab".repeat(32))),
        "sha256:abababababab"
    );
    assert_eq!(short_digest("sha256:abc"), "sha256:abc");
    assert_eq!(short_digest("nodigest"), "nodigest");
    assert_eq!(
        short_digest("sha256:ééééééééééééééé"),
        "sha256:éééééééééééé"
    );
}

#[test]
fn a_ring_pointer_without_labels_still_has_its_version_fields() {
    let p = crate::pb::RingPointer {
        digest: "sha256:1".into(),
        version: "1.2.3".into(),
        revision: "abc".into(),
        ..Default::default()
    };
    let r = Running::from(&p);
    assert_eq!(r.version(), Some("1.2.3"));
    assert_eq!(r.revision(), Some("abc"));
}
