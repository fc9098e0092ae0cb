//! Policy tests: acceptance, choosing among published tags, the live-event path, and errors.

use super::*;

/// A range, pattern or tag that a case may leave out.
type Maybe = Option<&'static str>;

const DIGEST: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// Candidates published in the order given (seq 1, 2, …).
fn published<'a>(tags: &[&'a str]) -> Vec<Candidate<'a>> {
    tags.iter()
        .zip(1..)
        .map(|(&tag, seq)| Candidate {
            tag,
            digest: DIGEST,
            seq,
        })
        .collect()
}

fn policy(semver: Option<&str>, tag_pattern: Option<&str>) -> Policy {
    Policy::new(semver, tag_pattern).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn choose_table() {
    const TAGS: &[&str] = &[
        "1.0.0",
        "v1.1.0",
        "1.2.0",
        "1.2.5-rc.1",
        "latest",
        "1.2.5",
        "2.0.0-beta.1",
        "1.4.0",
        "main-abc1234",
        "2.0.0",
        "main-def5678",
        "3.1.4",
        "1.3.9",
        "main-abc1234-debug",
    ];
    #[rustfmt::skip]
    let cases: &[(Maybe, Maybe, Maybe, Maybe)] = &[
        // (semver, tagPattern, current tag, expected pick)
        (Some(">=1.2, <2"), None, None, Some("1.4.0")),
        (Some(">=1.2, <2"), None, Some("1.0.0"), Some("1.4.0")),
        (Some(">=1.2, <2"), None, Some("latest"), Some("1.4.0")),
        (Some("~1.2"), None, Some("1.2.0"), Some("1.2.5")),
        (Some("^1"), None, Some("1.0.0"), Some("1.4.0")),
        (Some("^2"), None, None, Some("2.0.0")),
        (Some("1.2 - 1.3"), None, None, Some("1.3.9")),
        (Some(">=1 || ^3.1"), None, None, Some("3.1.4")),
        (Some("<1.4 || ^3.1"), None, Some("1.2.0"), Some("3.1.4")),
        (Some("!=1.4.0, <2"), None, None, Some("1.3.9")),
        (Some("1.2.x"), None, None, Some("1.2.5")),
        (Some("~1.1"), None, None, Some("v1.1.0")),                  // a v-prefixed tag is a version
        // With pre-releases let in, 2.0.0-beta.1 sorts below 2.0.0 and so is "<2"; "<2.0.0-0"
        // is the bound that stops before every 2.0.0 pre-release.
        (Some(">=1.2.5-0, <2"), None, None, Some("2.0.0-beta.1")),
        (Some(">=1.2.5-0, <2.0.0-0"), None, None, Some("1.4.0")),
        (Some("~1.2.5-0"), None, None, Some("1.2.5")),               // the release beats its rc
        (Some("^2.0.0-0"), None, None, Some("2.0.0")),
        (Some(">=2.0.0-0 <2.0.0"), None, None, Some("2.0.0-beta.1")),
        (Some("~1.2"), None, Some("1.2.5-rc.1"), Some("1.2.5")),
        (Some("^5"), None, None, None),                              // nothing in range
        // Never a lower version than the current one, even when the current one is out of range.
        (Some(">=1.2, <2"), None, Some("2.0.0"), None),
        (Some("^1"), None, Some("1.9.0"), None),
        (Some("^1"), None, Some("v1.4.0"), None),                    // same version, other spelling
        (Some("^1"), None, Some("1.4.0"), Some("1.4.0")),            // stays, digest may be new
        // Both: the pattern narrows what the range may pick.
        (Some(">=1"), Some(r"\d+\.\d+\.\d+"), None, Some("3.1.4")),
        (Some(">=1"), Some(r"1\..*"), None, Some("1.4.0")),
        (Some("*"), Some("v.*"), None, Some("v1.1.0")),
        // No semver: the most recently published accepted tag, whatever its version.
        (None, None, None, Some("main-abc1234-debug")),
        (None, None, Some("3.1.4"), Some("main-abc1234-debug")),
        (None, Some("^main-[0-9a-f]{7}$"), None, Some("main-def5678")),
        (None, Some("main-[0-9a-f]{7}"), None, Some("main-def5678")), // anchored: not the -debug
        (None, Some(r"1\.\d+\.\d+"), Some("1.4.0"), Some("1.3.9")),   // newest, even if lower
        (None, Some("^main-"), None, None),                          // a prefix must say ".*"
        (None, Some("^main-.*"), None, Some("main-abc1234-debug")),
        (None, Some("release-.*"), None, None),
    ];
    let candidates = published(TAGS);
    let mut failures = Vec::new();
    for &(semver, pattern, current, want) in cases {
        let got = policy(semver, pattern)
            .choose(current, &candidates)
            .map(|c| c.tag);
        if got != want {
            failures.push(format!(
                "semver {semver:?}, tagPattern {pattern:?}, current {current:?}: \
                 got {got:?}, want {want:?}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn choose_with_no_candidates_stays() {
    assert_eq!(policy(None, None).choose(Some("1.0.0"), &[]), None);
    assert_eq!(policy(Some("*"), None).choose(None, &[]), None);
}

#[test]
fn most_recent_wins_by_seq_not_by_slice_order() {
    let candidates = [
        Candidate {
            tag: "b",
            digest: DIGEST,
            seq: 9,
        },
        Candidate {
            tag: "c",
            digest: DIGEST,
            seq: 3,
        },
        Candidate {
            tag: "a",
            digest: DIGEST,
            seq: 5,
        },
    ];
    assert_eq!(
        policy(None, None).choose(None, &candidates),
        Some(candidates[0])
    );
}

#[test]
fn equal_versions_keep_the_current_spelling_then_prefer_the_newest() {
    let candidates = published(&["1.4.0", "v1.4", "1.4", "1.3.0"]);
    let range = policy(Some("^1"), None);
    // No current tag: the newest of the equal versions.
    assert_eq!(range.choose(None, &candidates).map(|c| c.tag), Some("1.4"));
    // From 1.3.0: also the newest spelling.
    assert_eq!(
        range.choose(Some("1.3.0"), &candidates).map(|c| c.tag),
        Some("1.4")
    );
    // Already on one spelling: keep it rather than flap to another.
    assert_eq!(
        range.choose(Some("v1.4"), &candidates).map(|c| c.tag),
        Some("v1.4")
    );
}

#[test]
fn a_republished_tag_comes_back_with_its_newest_digest() {
    let candidates = [
        Candidate {
            tag: "1.4.0",
            digest: "sha256:old",
            seq: 2,
        },
        Candidate {
            tag: "1.4.0",
            digest: "sha256:new",
            seq: 7,
        },
    ];
    let chosen = policy(Some("^1"), None).choose(Some("1.4.0"), &candidates);
    assert_eq!(chosen.map(|c| c.digest), Some("sha256:new"));
}

#[test]
fn accepts_table() {
    #[rustfmt::skip]
    let cases: &[(Maybe, Maybe, &str, bool)] = &[
        (None, None, "anything-at-all", true),
        (None, None, "latest", true),
        (Some(">=1.2, <2"), None, "1.5.0", true),
        (Some(">=1.2, <2"), None, "v1.5.0", true),
        (Some(">=1.2, <2"), None, "2.0.0", false),
        (Some(">=1.2, <2"), None, "latest", false),
        (Some(">=1.2, <2"), None, "main-abc1234", false),
        (Some(">=1.2, <2"), None, "1.5.0-rc.1", false),
        (Some(">=1.2.0-0, <2"), None, "1.5.0-rc.1", true),
        (Some("*"), None, "latest", false),
        (None, Some("^main-[0-9a-f]{7}$"), "main-abc1234", true),
        (None, Some("^main-[0-9a-f]{7}$"), "main-abc12345", false),
        (None, Some("^main-[0-9a-f]{7}$"), "main-ABC1234", false),
        (None, Some("main-[0-9a-f]{7}"), "main-abc1234", true),
        (None, Some("main-[0-9a-f]{7}"), "x-main-abc1234", false),
        (None, Some("main-[0-9a-f]{7}"), "main-abc1234-debug", false),
        (None, Some("a|ab"), "ab", true),        // the whole tag, not the leftmost match
        (None, Some("(?i)MAIN-.*"), "main-x", true),
        (None, Some("(?x) main- [0-9a-f]{7}  # short commit"), "main-abc1234", true),
        (None, Some("(?x) main- [0-9a-f]{7}  # short commit"), "main-abc1234x", false),
        (Some("^1"), Some(r"v\d.*"), "v1.2.0", true),
        (Some("^1"), Some(r"v\d.*"), "1.2.0", false),
        (Some("^1"), Some(r"v\d.*"), "v2.0.0", false),
    ];
    for &(semver, pattern, tag, want) in cases {
        assert_eq!(
            policy(semver, pattern).accepts(tag),
            want,
            "semver {semver:?}, tagPattern {pattern:?}, tag {tag:?}"
        );
    }
}

#[test]
fn should_move_table() {
    #[rustfmt::skip]
    let cases: &[(Maybe, Maybe, Maybe, &str, bool)] = &[
        // (semver, tagPattern, current, new tag, move?)
        (Some(">=1.2, <2"), None, Some("1.3.0"), "1.4.0", true),
        (Some(">=1.2, <2"), None, Some("1.3.0"), "1.2.9", false), // never downgrade
        (Some(">=1.2, <2"), None, Some("1.3.0"), "2.0.0", false), // out of range
        (Some(">=1.2, <2"), None, Some("1.3.0"), "latest", false),
        (Some(">=1.2, <2"), None, Some("1.3.0"), "1.4.0-rc.1", false),
        (Some(">=1.2, <2"), None, Some("1.3.0"), "1.3.0", true),  // re-published: new digest
        (Some(">=1.2, <2"), None, Some("1.3.0"), "v1.3.0", false), // same version, other spelling
        (Some(">=1.2, <2"), None, Some("latest"), "1.2.0", true),
        (Some(">=1.2, <2"), None, None, "1.2.0", true),
        (Some("^1"), None, Some("2.0.0"), "1.9.0", false),        // current out of range: stay
        (Some(">=1.0.0-0"), None, Some("1.3.0-rc.1"), "1.3.0-rc.2", true),
        (Some(">=1.0.0-0"), None, Some("1.3.0-rc.2"), "1.3.0-rc.1", false),
        (None, None, Some("1.9.0"), "1.2.0", true),               // newest wins without semver
        (None, None, None, "latest", true),
        (None, Some("^main-[0-9a-f]{7}$"), Some("main-abc1234"), "main-def5678", true),
        (None, Some("^main-[0-9a-f]{7}$"), Some("main-abc1234"), "pr-42", false),
    ];
    for &(semver, pattern, current, new, want) in cases {
        assert_eq!(
            policy(semver, pattern).should_move(current, new),
            want,
            "semver {semver:?}, tagPattern {pattern:?}, current {current:?}, new {new:?}"
        );
    }
}

#[test]
fn invalid_policies_give_clear_errors() {
    let message = |semver, pattern| Policy::new(semver, pattern).unwrap_err().to_string();

    let m = message(Some(">=1.2,, <2"), None);
    assert!(
        m.starts_with(r#"invalid semver range ">=1.2,, <2": "#),
        "{m}"
    );
    let m = message(Some("latest"), None);
    assert!(m.contains(r#""latest" is not a version"#), "{m}");
    let m = message(Some(""), None);
    assert!(
        m.contains("it is empty") && m.contains("leave semver out"),
        "{m}"
    );

    let m = message(None, Some("main-[0-9a-f"));
    assert!(
        m.starts_with(r#"invalid tagPattern "main-[0-9a-f": "#),
        "{m}"
    );
    assert!(m.contains("unclosed character class"), "{m}");
    // Invalid alone, though it would compile once wrapped in `^(?:…)$`.
    let m = message(None, Some("a)|(b"));
    assert!(m.starts_with(r#"invalid tagPattern "a)|(b": "#), "{m}");
    let m = message(None, Some(""));
    assert!(m.contains("tagPattern is empty"), "{m}");

    // The semver range is checked first, and either error is typed.
    assert!(matches!(
        Policy::new(Some("^"), Some("(")),
        Err(PolicyError::Semver(RangeError {
            problem: RangeProblem::MissingVersion { .. },
            ..
        }))
    ));
    assert!(matches!(
        Policy::new(None, Some("(")),
        Err(PolicyError::TagPattern { .. })
    ));
}

#[test]
fn accessors_return_the_policy_as_written() {
    let p = policy(Some(">=1.2,<2"), Some("v.*"));
    assert_eq!(p.semver().map(Range::as_str), Some(">=1.2,<2"));
    assert_eq!(p.tag_pattern(), Some("v.*"));
    let default = Policy::default();
    assert!(default.semver().is_none() && default.tag_pattern().is_none());
    assert!(default.accepts("whatever"));
}
