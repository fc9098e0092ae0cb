//! Branch mode settings of a repository (`spec.repositories[].push`): where the agent's commits
//! go when the base branch refuses pushes, and the push options sent with them; and the branch
//! names a `branchTemplate` renders to.

use super::message::{render_commit_message, CommitVars};

/// `spec.repositories[].push`: where commits go and what the push tells the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushConfig {
    /// The branch pushed to.
    pub to: PushTarget,
    /// `pushOptions`: git push options (`git push -o`), no newlines in any.
    pub options: Vec<String>,
}

/// The branch commits are pushed to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PushTarget {
    /// No `push.branch` nor `push.branchTemplate`: the base branch itself.
    #[default]
    Base,
    /// `push.branch`: one branch, kept up to date with the base at each release.
    Branch(String),
    /// `push.branchTemplate`: a branch per release batch, named by [`branch_name`].
    Template(String),
}

/// Why a branch name is not one git accepts, or `Ok`.
pub fn check_branch_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("is empty".into());
    }
    // `git branch` refuses a leading '-' (it reads as an option); libgit2 would accept it.
    if name.starts_with('-') || !git2::Reference::is_valid_name(&format!("refs/heads/{name}")) {
        return Err(
            "is not a valid git branch name (no spaces, `..`, `~^:?*[\\`, leading `-` \
             or `.`, trailing `/`, `.` or `.lock`)"
                .into(),
        );
    }
    Ok(())
}

/// The branch for a release batch: `template` rendered with the first update's values (the
/// placeholders of commit messages), then made a valid ref name (see [`sanitize_branch`]).
/// An error says what the template rendered to when even that is not a branch name (e.g. a
/// template of only `{{revision}}` for an image without the revision label).
pub fn branch_name(template: &str, vars: &CommitVars) -> Result<String, String> {
    let rendered = render_commit_message(Some(template), vars);
    let name = sanitize_branch(&rendered);
    check_branch_name(&name).map_err(|why| {
        format!(
            "branchTemplate {template:?} renders to {rendered:?}, and made a ref name that is \
             {name:?}, which {why}; use placeholders that are always set, such as {{{{tag}}}}"
        )
    })?;
    Ok(name)
}

/// Makes rendered text a ref name: characters git refuses (':' of a registry port or a digest,
/// '@', spaces, '~', '^', '?', '*', '[', '\', control and non-ASCII characters) become '-', and
/// components that would still be refused (empty, leading '.', `..`, trailing `.` or `.lock`)
/// are repaired or dropped. Values of the placeholders come from image names, tags and
/// digests, so a template the config accepted keeps giving valid names.
pub fn sanitize_branch(raw: &str) -> String {
    let mapped: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_./".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let components: Vec<String> = mapped
        .split('/')
        .filter_map(|component| {
            let mut c = component.to_string();
            while c.contains("..") {
                c = c.replace("..", ".");
            }
            loop {
                let trimmed = c.trim_start_matches('.').trim_end_matches('.');
                let trimmed = trimmed.strip_suffix(".lock").unwrap_or(trimmed);
                if trimmed.len() == c.len() {
                    break;
                }
                c = trimmed.to_string();
            }
            (!c.is_empty()).then_some(c)
        })
        .collect();
    components
        .join("/")
        .trim_start_matches(['-', '/'])
        .to_string()
}

/// Values to render a template with when the config is read, to refuse a template that could
/// never give a branch name.
pub(crate) fn sample_vars() -> CommitVars {
    CommitVars {
        image: "registry.example.com/team/app".into(),
        tag: "1.2.3".into(),
        digest: format!("sha256:{}", "0".repeat(64)),
        previous_tag: Some("1.2.2".into()),
        revision: Some("0123456789abcdef".into()),
        file_path: "apps/app/deployment.yaml".into(),
        ring: Some("testers".into()),
        version: Some("1.2.3".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_makes_rendered_text_a_ref_name() {
        assert_eq!(
            sanitize_branch("ferry/127.0.0.1:5000/app-1.2.3"),
            "ferry/127.0.0.1-5000/app-1.2.3"
        );
        assert_eq!(
            sanitize_branch("ferry/app@sha256:abc"),
            "ferry/app-sha256-abc"
        );
        assert_eq!(
            sanitize_branch("ferry//a..b/.hidden/x.lock."),
            "ferry/a.b/hidden/x"
        );
        assert_eq!(sanitize_branch("-x y~z^"), "x-y-z-");
        assert_eq!(sanitize_branch("/"), "");
        for raw in ["a/b", "ferry/app-1.0", "x.lock.lock", ".a.", "é/ü"] {
            let name = sanitize_branch(raw);
            assert!(
                name.is_empty() || check_branch_name(&name).is_ok(),
                "{raw} → {name}"
            );
        }
    }

    #[test]
    fn branch_name_renders_the_first_update() {
        let vars = sample_vars();
        assert_eq!(
            branch_name("ferry/{{image}}-{{tag}}", &vars).unwrap(),
            "ferry/registry.example.com/team/app-1.2.3"
        );
        assert_eq!(
            branch_name("ferry/{{digest_short}}", &vars).unwrap(),
            "ferry/000000000000"
        );
        let no_revision = CommitVars {
            revision: None,
            ..vars
        };
        let err = branch_name("{{revision}}", &no_revision).unwrap_err();
        assert!(
            err.contains("renders to \"\"") && err.contains("is empty"),
            "{err}"
        );
    }
}
