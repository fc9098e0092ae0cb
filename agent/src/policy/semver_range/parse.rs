//! Reading range text: the `||` / `,` / whitespace / hyphen-range grammar and the partial
//! versions inside it (`1`, `1.x`, `v1.2.3-rc.1`). Evaluation is in the parent module.

use semver::{BuildMetadata, Prerelease, Version};

use super::{Comparator, Group, Op, Precision, RangeProblem};

/// Operators, two-character ones first so `>=` is not read as `>` followed by `=1`.
/// `=>`, `=<` and `~>` are Masterminds aliases.
const OPERATORS: [(&str, Op); 11] = [
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("=>", Op::Ge),
    ("<=", Op::Le),
    ("=<", Op::Le),
    ("~>", Op::Tilde),
    (">", Op::Gt),
    ("<", Op::Lt),
    ("=", Op::Eq),
    ("~", Op::Tilde),
    ("^", Op::Caret),
];

/// Parses one `||` alternative: comparisons separated by `,` or whitespace, where a bare
/// version followed by ` - ` and another bare version is a hyphen range.
pub(super) fn parse_group(text: &str) -> Result<Group, RangeProblem> {
    let mut comparators = Vec::new();
    let mut rest = text.trim_start();
    if rest.is_empty() {
        return Err(RangeProblem::EmptyAlternative);
    }
    loop {
        let (op_text, op) = OPERATORS
            .iter()
            .find(|(token, _)| rest.starts_with(token))
            .map_or(("", Op::Eq), |&(token, op)| (token, op));
        rest = rest[op_text.len()..].trim_start();
        let (version_text, after) = split_token(rest);
        if version_text.is_empty() {
            return Err(match op_text {
                "" => RangeProblem::DanglingComma,
                op => RangeProblem::MissingVersion { op: op.to_owned() },
            });
        }
        let lower = comparator(op_text, op, version_text)?;
        rest = after;

        // A hyphen range: `LOW - HIGH`, spaces required (Masterminds reads `1.1-3` as the
        // pre-release 1.1.0-3).
        let trimmed = rest.trim_start();
        if trimmed.len() < rest.len() && split_token(trimmed).0 == "-" {
            let (high_text, after) = split_token(split_token(trimmed).1.trim_start());
            let has_operator = |bound: &str| OPERATORS.iter().any(|(op, _)| bound.starts_with(op));
            let reason = if !op_text.is_empty() || has_operator(high_text) {
                Some("its bounds take no operator")
            } else if high_text.is_empty() {
                Some("the upper bound is missing")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(RangeProblem::BadHyphenRange {
                    text: format!("{op_text}{version_text} - {high_text}"),
                    reason,
                });
            }
            comparators.push(Comparator {
                op: Op::Ge,
                ..lower
            });
            let upper = comparator("<=", Op::Le, high_text)?;
            comparators.push(upper);
            rest = after;
        } else {
            comparators.push(lower);
        }

        rest = rest.trim_start();
        if rest.is_empty() {
            break;
        }
        if let Some(after_comma) = rest.strip_prefix(',') {
            rest = after_comma.trim_start();
            if rest.is_empty() || rest.starts_with(',') {
                return Err(RangeProblem::DanglingComma);
            }
        }
    }
    let admits_prerelease = comparators.iter().any(|c| !c.version.pre.is_empty());
    Ok(Group {
        comparators,
        admits_prerelease,
    })
}

/// Splits off the next token: everything up to whitespace or a comma.
fn split_token(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| c.is_whitespace() || c == ',')
        .unwrap_or(text.len());
    text.split_at(end)
}

fn comparator(op_text: &str, op: Op, text: &str) -> Result<Comparator, RangeProblem> {
    let bad = |reason: String| RangeProblem::BadVersion {
        text: text.to_owned(),
        reason,
    };
    if text.starts_with('-') {
        return Err(bad(
            "hyphen ranges need a space on both sides of \"-\"".into()
        ));
    }
    if text.starts_with('|') {
        return Err(bad("alternatives are separated by \"||\"".into()));
    }
    let partial = parse_partial(text).map_err(bad)?;
    let precision = match partial.written {
        0 => Precision::Any,
        1 => Precision::Major,
        2 => Precision::Minor,
        _ => Precision::Patch,
    };
    if precision == Precision::Any && matches!(op, Op::Gt | Op::Lt | Op::Le | Op::Ne) {
        return Err(RangeProblem::MeaninglessWildcard {
            op: op_text.to_owned(),
            version: text.to_owned(),
        });
    }
    Ok(Comparator {
        op,
        version: partial.version,
        precision,
    })
}

pub(super) struct Partial {
    /// Unwritten and wildcard parts are 0; no build metadata.
    pub(super) version: Version,
    /// How many leading parts were written as numbers (3 for `1.2.3`, 1 for `1.x` and `1`).
    pub(super) written: usize,
    /// Whether an `x`, `X` or `*` was written.
    pub(super) wildcard: bool,
}

/// Parses `v?N[.N[.N]][-pre][+build]` where each N may be a number or `x`, `X`, `*`.
pub(super) fn parse_partial(text: &str) -> Result<Partial, String> {
    let body = text.strip_prefix('v').unwrap_or(text);
    let (body, build) = match body.split_once('+') {
        Some((body, build)) => (body, Some(build)),
        None => (body, None),
    };
    let (core, pre) = match body.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (body, None),
    };
    if core.is_empty() {
        return Err("it has no version number".into());
    }

    let mut numbers = [0u64; 3];
    let mut written = 0;
    let mut wildcard = false;
    let parts: Vec<&str> = core.split('.').collect();
    if parts.len() > 3 {
        return Err("it has more than three numeric parts".into());
    }
    for (index, part) in parts.iter().enumerate() {
        match *part {
            "x" | "X" | "*" => wildcard = true,
            "" => return Err("it has an empty numeric part".into()),
            digits if digits.bytes().all(|b| b.is_ascii_digit()) => {
                if wildcard {
                    return Err("a number cannot follow a wildcard".into());
                }
                numbers[index] = digits
                    .parse()
                    .map_err(|_| format!("{digits} is too large"))?;
                written += 1;
            }
            other => return Err(format!("{other:?} is neither a number nor x, X or *")),
        }
    }

    let pre = match pre {
        None => Prerelease::EMPTY,
        Some("") => return Err("the pre-release after \"-\" is empty".into()),
        Some(pre) => Prerelease::new(pre).map_err(|e| format!("bad pre-release {pre:?}: {e}"))?,
    };
    match build {
        None => {}
        Some("") => return Err("the build metadata after \"+\" is empty".into()),
        Some(build) => {
            BuildMetadata::new(build).map_err(|e| format!("bad build metadata {build:?}: {e}"))?;
        }
    }

    let [major, minor, patch] = numbers;
    Ok(Partial {
        version: Version {
            pre,
            ..Version::new(major, minor, patch)
        },
        written,
        wildcard,
    })
}
