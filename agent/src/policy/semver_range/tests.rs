//! The range table: each row is a case whose answer Masterminds/semver v3.4 gives the same way
//! (checked against its `constraints.go` and test table), except the rows marked "ferry:".

use super::*;

fn check(range: &str, version: &str) -> bool {
    let parsed = Range::parse(range).unwrap_or_else(|e| panic!("{e}"));
    let version = parse_version(version).unwrap_or_else(|| panic!("{version:?} is not a version"));
    parsed.matches(&version)
}

#[test]
fn range_table() {
    #[rustfmt::skip]
    let cases: &[(&str, &str, bool)] = &[
        // AND with "," or whitespace; short versions are zero-filled for >= and <.
        (">=1.2, <2", "1.2.0", true),
        (">=1.2, <2", "1.9.9", true),
        (">=1.2, <2", "1.1.9", false),
        (">=1.2, <2", "2.0.0", false),
        (">=1.2 <2", "1.5.0", true),
        (">= 1.2 ,  < 2", "1.5.0", true),
        (">=1.2,<2", "2.0.1", false),
        (">=1.1, <2, !=1.2.3", "1.2.3", false),
        (">=1.1 <2 !=1.2.3", "1.2.4", true),
        // OR.
        (">=1 || ^3.1", "1.0.0", true),
        (">=1 || ^3.1", "0.9.0", false),
        ("<1 || ^3.1", "3.5.0", true),
        ("<1 || ^3.1", "3.0.9", false),
        ("<1 || ^3.1", "4.0.0", false),
        (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", true),
        (">=1.1, <2, !=1.2.3 || > 3", "3.1.2", false),
        (">=1.1, <2, !=1.2.3 || >= 3", "3.0.0", true),
        // = and bare versions: exact when complete, a family when short.
        ("=2.0.0", "2.0.0", true),
        ("=2.0.0", "2.0.1", false),
        ("1.2.3", "1.2.3", true),
        ("1.2.3", "1.2.4", false),
        ("=1.2", "1.2.0", true),
        ("=1.2", "1.2.9", true),
        ("=1.2", "1.3.0", false),
        ("=1.2", "1.1.9", false),
        ("2", "2.1.1", true),
        ("2", "3.0.0", false),
        // Wildcards.
        ("1.2.x", "1.2.0", true),
        ("1.2.x", "1.2.99", true),
        ("1.2.x", "1.3.0", false),
        ("1.2.*", "1.2.7", true),
        ("1.2.X", "1.1.0", false),
        ("1.x", "1.9.0", true),
        ("1.x", "2.0.0", false),
        ("0.x.x", "1.2.3", false),
        ("0.0.x", "0.0.7", true),
        ("0.0.x", "0.1.0", false),
        ("*", "0.0.0", true),
        ("*", "4.5.6", true),
        ("x", "4.5.6", true),
        (">=1.2.x", "1.2.0", true),
        // !=
        ("!=1.2.3", "1.2.3", false),
        ("!=1.2.3", "1.2.4", true),
        ("!=v1.2.3", "1.2.3", false),
        ("!=4.1", "4.1.0", false),
        ("!=4.1", "4.1.7", false),
        ("!=4.1", "4.2.0", true),
        ("!=4.1", "5.1.0", true),
        ("!=4.x", "4.1.0", false),
        ("!=4.x", "5.1.0", true),
        ("!=4.1-alpha", "4.1.0", true),
        ("!=4.1-alpha", "4.1.1-alpha", false),
        // > and <= widen a short version to its whole family; < and >= zero-fill it.
        (">1.1", "1.1.9", false),
        (">1.1", "1.2.0", true),
        (">11", "11.9.0", false),
        (">11", "12.0.0", true),
        (">1.2.3", "1.2.4", true),
        (">1.2.3", "1.2.3", false),
        ("<1.1", "1.0.9", true),
        ("<1.1", "1.1.0", false),
        ("<2", "1.99.99", true),
        ("<2", "2.0.0", false),
        ("<1.x", "0.9.0", true),
        ("<1.x", "1.1.1", false),
        ("<=1.1", "1.1.9", true),
        ("<=1.1", "1.2.0", false),
        ("<=11", "11.2.3", true),
        ("<=11", "12.0.0", false),
        ("<=2.x", "3.0.0", false),
        ("<=1.2.3", "1.2.3", true),
        ("<=1.2.3", "1.2.4", false),
        (">=0", "0.0.0", true),
        // Aliases.
        ("=>1.2", "1.2.0", true),
        ("=<1.2", "1.2.5", true),
        ("~>1.2", "1.2.5", true),
        ("~>1.2", "1.3.0", false),
        // ~
        ("~1.4", "1.4.0", true),
        ("~1.4", "1.4.12", true),
        ("~1.4", "1.5.0", false),
        ("~1.4", "1.3.9", false),
        ("~1", "1.0.0", true),
        ("~1", "1.9.0", true),
        ("~1", "2.0.0", false),
        ("~1.2.3", "1.2.3", true),
        ("~1.2.3", "1.2.2", false),
        ("~1.2.3", "1.3.0", false),
        ("~1.x", "1.3.5", true),
        ("~1.x", "2.1.1", false),
        ("~0.2.3", "0.2.5", true),
        ("~0.2.3", "0.3.0", false),
        ("~*", "2.1.1", true),
        ("~0.0.0", "1.2.3", true), // Masterminds' special case
        // ^
        ("^2", "2.0.0", true),
        ("^2", "2.99.0", true),
        ("^2", "3.0.0", false),
        ("^2", "1.9.0", false),
        ("^1.2.3", "1.8.9", true),
        ("^1.2.3", "1.2.2", false),
        ("^1.2.3", "2.0.0", false),
        ("^1.x", "1.1.1", true),
        ("^1.x", "2.0.0", false),
        ("^0.3", "0.3.0", true),
        ("^0.3", "0.3.9", true),
        ("^0.3", "0.4.0", false),
        ("^0.2.3", "0.2.5", true),
        ("^0.2.3", "0.2.2", false),
        ("^0.2.3", "0.3.0", false),
        ("^0.0.3", "0.0.3", true),
        ("^0.0.3", "0.0.4", false),
        ("^0.0.3", "0.0.2", false),
        ("^0.0", "0.0.9", true),
        ("^0.0", "0.1.0", false),
        ("^0", "0.9.9", true),
        ("^0", "1.0.0", false),
        ("^0.0.0", "1.2.3", false),
        ("^*", "7.0.0", true), // ferry: Masterminds' code takes ^* as =0.0.0, its docs say "any"
        // Hyphen ranges: the upper bound is inclusive, and a short one covers its family.
        ("1.2 - 1.4.5", "1.2.0", true),
        ("1.2 - 1.4.5", "1.4.5", true),
        ("1.2 - 1.4.5", "1.4.6", false),
        ("1.2 - 1.4.5", "1.1.9", false),
        ("1.2 - 1.4", "1.4.9", true),
        ("1.2 - 1.4", "1.5.0", false),
        ("1.1 - 2", "2.9.0", true),
        ("1.1 - 2", "3.0.0", false),
        ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", true),
        ("1 - 2 || 4 - 5", "3.0.0", false),
        ("1 - 2 || 4 - 5", "4.5.0", true),
        ("1.1-3", "4.3.2", false), // no spaces: the pre-release 1.1.0-3, not a range
        // v prefix in ranges and versions; leading zeros and build metadata.
        (">=v1.2", "v1.2.0", true),
        ("^v2", "v2.3.4", true),
        ("v1.2.3", "1.2.3", true),
        (">=1.02", "1.2.0", true),
        ("1.2.3+build.7", "1.2.3", true),
        ("=1.2.3", "1.2.3+other", true),
        // Pre-releases are left out unless the AND group names one.
        (">=1.2", "1.3.0-rc.1", false),
        ("*", "1.2.3-alpha.1", false),
        ("^1.2", "1.3.0-beta", false),
        ("<2", "1.0.0-alpha", false),
        ("!=1.2.3", "1.2.4-rc.1", false),
        (">=1.0.0-0", "1.3.0-rc.1", true),
        (">=1.0.0-0", "0.9.0", false),
        (">=1.0.0-0", "1.0.0-0", true),
        ("*-0", "1.2.3-alpha.1", true),
        ("^1.2.3-beta", "1.2.3-beta.2", true),
        ("^1.2.3-beta", "1.2.3-alpha", false),
        ("^1.2.3-beta", "1.2.3", true),
        ("^1.2.3-beta", "1.5.0-rc.1", true),
        ("^1.2.3-beta", "2.0.0-rc.1", false),
        ("~1.2.3-beta.2", "1.2.4-beta.2", true),
        ("~1.2.3-beta.2", "1.3.4-beta.2", false),
        (">=1.2.3-0, <2", "2.0.0-rc.1", true),        // 2.0.0-rc.1 sorts below 2.0.0
        (">=1.2.3-0, <2.0.0-0", "2.0.0-rc.1", false),
        (">=1.2.3-0, <2", "1.9.0-rc.1", true),      // one pre-release opens the whole group
        (">=1.2.3-0, <2 || >3", "4.0.0-rc.1", false), // but not the other alternatives
        (">=1.2.3-0, <2 || >3", "4.0.0", true),
        ("<=1.1-a", "0.1.0-alpha", true),
        ("<=1.1", "0.1.0-alpha", false),
        (">1.2.3-alpha.1", "1.2.3-alpha.2", true),
        (">1.2.3-alpha.10", "1.2.3-alpha.9", false), // numeric identifiers compare as numbers
        (">=1.2.3-rc.1", "1.2.3-RC.1", false),       // ASCII order: "RC" < "rc"
    ];
    let mut failures = Vec::new();
    for &(range, version, want) in cases {
        if check(range, version) != want {
            failures.push(format!("{range:?} with {version:?}: want {want}"));
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
fn tags_that_are_versions() {
    #[rustfmt::skip]
    let cases: &[(&str, Option<&str>)] = &[
        ("1.2.3", Some("1.2.3")),
        ("v1.2.3", Some("1.2.3")),
        ("v1.2", Some("1.2.0")),
        ("1", Some("1.0.0")),
        ("1.2.3-rc.1", Some("1.2.3-rc.1")),
        ("v1.2.3-rc-1", Some("1.2.3-rc-1")),
        ("2024.01.15", Some("2024.1.15")),
        ("1.2.3+build", Some("1.2.3")),
        ("latest", None),
        ("main-abc1234", None),
        ("", None),
        ("v", None),
        ("V1.2.3", None),
        ("1.2.3.4", None),
        ("1.2.x", None),
        ("*", None),
        ("1.2.3-", None),
        ("1.2.3-01", None), // numeric pre-release identifiers have no leading zeros
        ("1.2.3-rc..1", None),
        ("1..3", None),
        ("1.2.3_amd64", None),
        ("sha256-0123", None),
        ("99999999999999999999.0.0", None),
    ];
    for &(tag, want) in cases {
        let want = want.map(|w| Version::parse(w).unwrap());
        assert_eq!(parse_version(tag), want, "tag {tag:?}");
    }
}

#[test]
fn invalid_ranges_name_the_range_and_the_problem() {
    #[rustfmt::skip]
    let cases: &[(&str, &str)] = &[
        ("", "it is empty"),
        ("   ", "it is empty"),
        (">=1 ||", "one side of \"||\" is empty"),
        ("|| >=1", "one side of \"||\" is empty"),
        (">=1,", "\",\" does not sit between two comparisons"),
        (">=1,,<2", "\",\" does not sit between two comparisons"),
        (", >=1", "\",\" does not sit between two comparisons"),
        (">=", "operator \">=\" has no version after it"),
        (">=1, <", "operator \"<\" has no version after it"),
        ("foo", "\"foo\" is not a version: \"foo\" is neither a number nor x, X or *"),
        (">= bar", "\"bar\" is not a version"),
        ("BAR >= 1.2.3", "\"BAR\" is not a version"),
        ("latest", "\"latest\" is not a version"),
        ("12.3.4.1234", "\"12.3.4.1234\" is not a version: it has more than three numeric parts"),
        ("1.x.3", "a number cannot follow a wildcard"),
        (">=1.2.3-01", "bad pre-release \"01\": invalid leading zero"),
        (">=1.2.3-", "the pre-release after \"-\" is empty"),
        ("1..2", "it has an empty numeric part"),
        (">=1 | <2", "alternatives are separated by \"||\""),
        (">>1", "\">1\" is not a version"),
        ("1.2 -1.4", "hyphen ranges need a space on both sides"),
        ("1.2 -", "hyphen range \"1.2 - \": the upper bound is missing"),
        (">=1 - 2", "hyphen range \">=1 - 2\": its bounds take no operator"),
        ("1 - <2", "hyphen range \"1 - <2\": its bounds take no operator"),
        ("<=*", "\"<=*\" means nothing useful"),
        ("!=x", "\"!=x\" means nothing useful"),
        (">*", "\">*\" means nothing useful"),
        ("99999999999999999999", "99999999999999999999 is too large"),
    ];
    for &(range, want) in cases {
        let message = Range::parse(range).expect_err(range).to_string();
        assert!(
            message.starts_with(&format!("invalid semver range {range:?}: ")),
            "{range:?}: {message}"
        );
        assert!(
            message.contains(want),
            "{range:?}: {message:?} lacks {want:?}"
        );
    }
}

#[test]
fn build_metadata_on_the_version_is_ignored() {
    let range = Range::parse("<=1.2.3").unwrap();
    assert!(range.matches(&Version::parse("1.2.3+zzz").unwrap()));
    let range = Range::parse("=1.2.3+aaa").unwrap();
    assert!(range.matches(&Version::parse("1.2.3+zzz").unwrap()));
    assert!(!Range::parse(">1.2.3")
        .unwrap()
        .matches(&Version::parse("1.2.3+zzz").unwrap()));
}

#[test]
fn display_is_the_range_as_written() {
    let range: Range = ">= 1.2,  <2 || ^3".parse().unwrap();
    assert_eq!(range.to_string(), ">= 1.2,  <2 || ^3");
    assert_eq!(range.as_str(), ">= 1.2,  <2 || ^3");
}
