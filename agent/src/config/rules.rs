//! The rules the config files share: which `apiVersion`s and `kind`s ferry reads, and how a
//! repo-relative include/exclude path is written. A leaf: it imports none of the other config
//! modules, so `piped`, `watcher` and `discover` can all use it without depending on each other.

use serde_saphyr::Spanned;

use super::error::{ConfigError, Pos};

/// The `apiVersion`s ferry reads: PipeCD's, and ferry's own.
pub const API_VERSIONS: [&str; 2] = ["pipecd.dev/v1beta1", "ferry.dev/v1"];

/// The `kind` of the agent config file.
pub const PIPED_KIND: &str = "Piped";

/// The `kind` of an ImageWatcher file.
pub const WATCHER_KIND: &str = "ImageWatcher";

/// Kinds PipeCD itself keeps under `.pipe/` (application, analysis and event-watcher configs):
/// files of these kinds are skipped quietly when looking for ImageWatcher files. Any other kind
/// there is skipped with a warning, because it is most likely a misspelt `ImageWatcher`.
pub const PIPECD_KINDS: &[&str] = &[
    "Application",
    "KubernetesApp",
    "TerraformApp",
    "CloudRunApp",
    "LambdaApp",
    "ECSApp",
    "AnalysisTemplate",
    "EventWatcher",
    "Piped",
    "ControlPlane",
];

/// `apiVersion` must be one ferry reads.
pub(crate) fn check_api_version(file: &str, v: &Spanned<String>) -> Result<(), ConfigError> {
    if API_VERSIONS.contains(&v.value.as_str()) {
        return Ok(());
    }
    Err(ConfigError::invalid(
        file,
        "apiVersion",
        Pos::of(v),
        format!(
            "unsupported apiVersion {:?}: use {}",
            v.value,
            API_VERSIONS.join(" or ")
        ),
    ))
}

/// The longest pipeline or ring name (a DNS label's limit).
pub(crate) const NAME_MAX: usize = 63;
/// The longest cluster name (a DNS name's limit, as the server takes it).
pub(crate) const CLUSTER_NAME_MAX: usize = 253;

/// Checks a pipeline or ring name as docs/rings.md writes the rule: `[a-z0-9][a-z0-9-]*`, at
/// most 63 characters. `what` names the value in the message ("ring", "pipeline").
pub(crate) fn check_ring_name(what: &str, name: &str) -> Result<(), String> {
    let ok = name.len() <= NAME_MAX
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        return Ok(());
    }
    Err(format!(
        "invalid {what} name {name:?}: {what} names match [a-z0-9][a-z0-9-]*, at most {NAME_MAX} characters"
    ))
}

/// Checks a cluster name (`spec.name` of the agent config): 1-253 lower-case letters, digits, '-'
/// and '.', starting and ending with a letter or digit, like a DNS name, so it reads the same in
/// `ferry status`, in logs and in URLs.
pub(crate) fn check_cluster_name(name: &str) -> Result<(), String> {
    let edge = |b: Option<u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    let ok = name.len() <= CLUSTER_NAME_MAX
        && edge(name.bytes().next())
        && edge(name.bytes().last())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-.".contains(&b));
    if ok {
        return Ok(());
    }
    Err(format!(
        "invalid cluster name {name:?}: cluster names are 1-{CLUSTER_NAME_MAX} lower-case letters, digits, '-' or '.', starting and ending with a letter or digit (prod-eu-1); remove spec.name to use the agent token's name"
    ))
}

/// Checks a repo-relative include/exclude path and returns it normalised (`./` parts dropped).
/// The error text states the rule and the offending value.
pub(crate) fn check_pattern(pattern: &str) -> Result<String, String> {
    if pattern.trim().is_empty() {
        return Err("empty path: write a path relative to the repository root, such as .pipe/imagewatcher.yaml".into());
    }
    if pattern.starts_with('/') || pattern.contains('\\') || is_drive_path(pattern) {
        return Err(format!(
            "{pattern:?} is absolute: write a path relative to the repository root with / separators, such as .pipe/imagewatcher.yaml"
        ));
    }
    let mut parts = Vec::new();
    for part in pattern.split('/') {
        match part {
            "." => {}
            "" => {
                return Err(format!(
                    "{pattern:?} has an empty path component (a doubled or trailing /)"
                ))
            }
            ".." => {
                return Err(format!(
                    "{pattern:?} leaves the repository: `..` is not allowed"
                ))
            }
            _ => parts.push(part),
        }
    }
    let Some((_, dirs)) = parts.split_last() else {
        return Err(format!("{pattern:?} names no file"));
    };
    if dirs.iter().any(|d| d.contains('*')) {
        return Err(format!(
            "{pattern:?}: `*` is only supported in the file-name part"
        ));
    }
    Ok(parts.join("/"))
}

/// `C:...`: absolute on Windows, never a sensible repo-relative path.
fn is_drive_path(p: &str) -> bool {
    let b = p.as_bytes();
    b.len() >= 2 && b[0].is_ascii_alphabetic() && b[1] == b':'
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_and_cluster_names() {
        assert!(check_ring_name("ring", "testers").is_ok());
        assert!(check_ring_name("ring", "ring-2").is_ok());
        assert!(check_ring_name("ring", &"a".repeat(63)).is_ok());
        for bad in ["", "Testers", "-a", "a_b", "a.b", &"a".repeat(64)] {
            let e = check_ring_name("ring", bad).unwrap_err();
            assert!(e.contains("[a-z0-9][a-z0-9-]*"), "{bad:?}: {e}");
        }
        assert!(check_cluster_name("prod-eu-1").is_ok());
        assert!(check_cluster_name("prod.eu").is_ok());
        assert!(check_cluster_name(&"a".repeat(253)).is_ok());
        for bad in [
            "",
            "Prod",
            "prod-",
            ".prod",
            "prod eu",
            "a,b",
            &"a".repeat(254),
        ] {
            let e = check_cluster_name(bad).unwrap_err();
            assert!(e.contains("spec.name"), "{bad:?}: {e}");
        }
    }

    #[test]
    fn patterns_must_stay_in_the_repository() {
        assert_eq!(check_pattern("./.pipe/a.yaml").unwrap(), ".pipe/a.yaml");
        assert_eq!(
            check_pattern(".pipe/*-prod.yaml").unwrap(),
            ".pipe/*-prod.yaml"
        );
        assert!(check_pattern("../other/.pipe/a.yaml")
            .unwrap_err()
            .contains("`..` is not allowed"));
        assert!(check_pattern(".pipe/../../a.yaml")
            .unwrap_err()
            .contains("leaves the repository"));
        assert!(check_pattern("/etc/passwd")
            .unwrap_err()
            .contains("is absolute"));
        assert!(check_pattern("C:\\x.yaml")
            .unwrap_err()
            .contains("is absolute"));
        assert!(check_pattern("").unwrap_err().contains("empty"));
        assert!(check_pattern(".pipe//a.yaml")
            .unwrap_err()
            .contains("empty path component"));
        assert!(check_pattern("*/a.yaml")
            .unwrap_err()
            .contains("only supported in the file-name part"));
        assert!(check_pattern(".").unwrap_err().contains("names no file"));
    }
}
