//! Image references as Kubernetes manifests write them, normalised the way Docker does.
//!
//! `nginx` → `docker.io/library/nginx`; `index.docker.io/x/y` → `docker.io/x/y`;
//! `127.0.0.1:5001/team/app` stays as it is. A registry `:port` cannot appear in an OCI repository
//! name, so ferry's repository for an image writes it `_port`: `127.0.0.1_5001/team/app`.

use std::fmt;

use thiserror::Error;

use crate::names::{validate_digest, validate_repository, validate_tag, NameError, Shown};

/// The registry Docker assumes when a reference names none.
pub const DOCKER_HUB: &str = "docker.io";

/// A reference that cannot be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReferenceError {
    /// Empty input.
    #[error("empty image reference")]
    Empty,
    /// The registry host part is malformed.
    #[error("invalid registry host {} in {}: a host is letters, digits, '.' and '-', optionally followed by :PORT", Shown(host), Shown(reference))]
    Host {
        /// The host part.
        host: String,
        /// The whole reference.
        reference: String,
    },
    /// A first component read as a host only because of its capital letters (Docker's rule), which
    /// lowercasing would turn into a Docker Hub namespace: the name would not survive
    /// normalisation. Found by fuzzing.
    #[error("{} in {} is read as a registry host only because it has capital letters; write the host with a '.' or a :PORT, or lowercase it to mean a Docker Hub namespace", Shown(host), Shown(reference))]
    AmbiguousHost {
        /// The host part.
        host: String,
        /// The whole reference.
        reference: String,
    },
    /// A tag or digest was given where only a name is allowed.
    #[error(
        "{} is an image name with a tag or digest; expected a bare name such as gcr.io/team/app",
        Shown(.0)
    )]
    NotBareName(String),
    /// A name, tag or digest inside the reference is invalid. The rule is part of this
    /// message (registry error bodies carry only the top message), so it is not also exposed
    /// as `source()`: a chain printer would say it twice.
    #[error("in image reference {}: {rule}", Shown(reference))]
    Name {
        /// The whole reference.
        reference: String,
        /// Which part failed, and its rule.
        rule: NameError,
    },
}

/// A normalised image name: registry host (with port) and repository path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageName {
    registry: String,
    path: String,
}

/// A parsed reference: a name with an optional tag and digest (`name:tag@digest`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The normalised name.
    pub name: ImageName,
    /// The tag, if written.
    pub tag: Option<String>,
    /// The digest, if written.
    pub digest: Option<String>,
}

fn is_valid_host(host: &str) -> bool {
    let (name, port) = match host.rsplit_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    let name_ok = !name.is_empty()
        && name.len() <= 253
        && name
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    let port_ok =
        port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    name_ok && port_ok
}

/// Docker's rule: the first component is a registry host if it has a '.' or ':', is
/// `localhost`, or has an upper-case letter (which a repository path cannot).
fn looks_like_host(first: &str) -> bool {
    first.contains('.')
        || first.contains(':')
        || first == "localhost"
        || first.bytes().any(|b| b.is_ascii_uppercase())
}

/// The registry host written in a ferry repository's first segment: `_port` back to `:port`.
fn host_from_ferry(first: &str) -> String {
    match first.rsplit_once('_') {
        Some((h, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("{h}:{port}")
        }
        _ => first.to_string(),
    }
}

/// A prefix of ferry repository names in the form of image names: `127.0.0.1_5001/team` →
/// `127.0.0.1:5001/team`. Only the first segment, the registry host, changes; a prefix already
/// in the image form comes back as it is. For prefixes such as token scopes, which need not name
/// a whole image and so cannot go through [`ImageName::from_ferry_repository`].
pub fn image_prefix_from_ferry_repository(prefix: &str) -> String {
    match prefix.split_once('/') {
        Some((first, rest)) => format!("{}/{rest}", host_from_ferry(first)),
        None => host_from_ferry(prefix),
    }
}

impl ImageName {
    /// Parses a bare image name (no tag, no digest) and normalises it.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        let r = Reference::parse(s)?;
        if r.tag.is_some() || r.digest.is_some() {
            return Err(ReferenceError::NotBareName(s.to_string()));
        }
        Ok(r.name)
    }

    fn from_parts(registry: &str, path: &str, reference: &str) -> Result<Self, ReferenceError> {
        if !is_valid_host(registry) {
            return Err(ReferenceError::Host {
                host: registry.to_string(),
                reference: reference.to_string(),
            });
        }
        let mut registry = registry.to_ascii_lowercase();
        if registry != DOCKER_HUB && !looks_like_host(&registry) {
            return Err(ReferenceError::AmbiguousHost {
                host: registry,
                reference: reference.to_string(),
            });
        }
        if registry == "index.docker.io" || registry == "registry-1.docker.io" {
            registry = DOCKER_HUB.to_string();
        }
        let path = if registry == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path.to_string()
        };
        validate_repository(&path).map_err(|rule| ReferenceError::Name {
            reference: reference.to_string(),
            rule,
        })?;
        let name = ImageName { registry, path };
        // The whole ferry repository name must fit the grammar and length limit too.
        validate_repository(&name.ferry_repository()).map_err(|rule| ReferenceError::Name {
            reference: reference.to_string(),
            rule,
        })?;
        Ok(name)
    }

    /// Inverse of [`ImageName::ferry_repository`]: `127.0.0.1_5001/team/app` → `127.0.0.1:5001/team/app`.
    pub fn from_ferry_repository(repo: &str) -> Result<Self, ReferenceError> {
        validate_repository(repo).map_err(|rule| ReferenceError::Name {
            reference: repo.to_string(),
            rule,
        })?;
        let Some((first, path)) = repo.split_once('/') else {
            return Err(ReferenceError::Name {
                reference: repo.to_string(),
                rule: NameError::Repository(repo.to_string()),
            });
        };
        Self::from_parts(&host_from_ferry(first), path, repo)
    }

    /// The registry host, with port: `docker.io`, `127.0.0.1:5001`.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path at the registry: `library/nginx`, `team/app`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// ferry's repository name for this image: the normalised name with `:port` written `_port`.
    pub fn ferry_repository(&self) -> String {
        format!("{}/{}", self.registry.replace(':', "_"), self.path)
    }
}

impl fmt::Display for ImageName {
    /// The normalised name: `docker.io/library/nginx`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.path)
    }
}

impl Reference {
    /// Parses `[host[:port]/]path[:tag][@digest]`.
    pub fn parse(s: &str) -> Result<Self, ReferenceError> {
        if s.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let name_err = |rule| ReferenceError::Name {
            reference: s.to_string(),
            rule,
        };
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => {
                validate_digest(d).map_err(name_err)?;
                (r, Some(d.to_string()))
            }
            None => (s, None),
        };
        // A ':' after the last '/' separates the tag; one before it belongs to a host:port.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag).map_err(name_err)?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        let (registry, path) = match name.split_once('/') {
            Some((first, path)) if looks_like_host(first) => (first, path),
            _ => (DOCKER_HUB, name),
        };
        Ok(Reference {
            name: ImageName::from_parts(registry, path, s)?,
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f4f";

    #[test]
    fn normalises_like_docker() {
        let cases = [
            (
                "nginx",
                "docker.io/library/nginx",
                "docker.io/library/nginx",
            ),
            ("pipecd/bar", "docker.io/pipecd/bar", "docker.io/pipecd/bar"),
            (
                "index.docker.io/library/nginx",
                "docker.io/library/nginx",
                "docker.io/library/nginx",
            ),
            (
                "docker.io/nginx",
                "docker.io/library/nginx",
                "docker.io/library/nginx",
            ),
            (
                "gcr.io/pipecd/foo",
                "gcr.io/pipecd/foo",
                "gcr.io/pipecd/foo",
            ),
            (
                "127.0.0.1:5001/team/app",
                "127.0.0.1:5001/team/app",
                "127.0.0.1_5001/team/app",
            ),
            ("localhost/app", "localhost/app", "localhost/app"),
            (
                "localhost:5000/app",
                "localhost:5000/app",
                "localhost_5000/app",
            ),
            ("GCR.io/team/app", "gcr.io/team/app", "gcr.io/team/app"),
        ];
        for (input, normal, ferry) in cases {
            let n = ImageName::parse(input).unwrap();
            assert_eq!(n.to_string(), normal, "{input}");
            assert_eq!(n.ferry_repository(), ferry, "{input}");
            assert_eq!(
                ImageName::from_ferry_repository(ferry).unwrap(),
                n,
                "{ferry}"
            );
        }
    }

    #[test]
    fn ferry_repository_prefixes_read_back_as_image_prefixes() {
        for (prefix, image) in [
            ("127.0.0.1_5001/team", "127.0.0.1:5001/team"),
            ("127.0.0.1_5001", "127.0.0.1:5001"),
            ("localhost_5000/a/b_1", "localhost:5000/a/b_1"),
            ("127.0.0.1:5001/team", "127.0.0.1:5001/team"),
            ("ghcr.io/acme", "ghcr.io/acme"),
            ("ghcr.io/team_2", "ghcr.io/team_2"),
        ] {
            assert_eq!(
                image_prefix_from_ferry_repository(prefix),
                image,
                "{prefix}"
            );
        }
        // The same rule as whole repositories.
        let n = ImageName::parse("127.0.0.1:5001/team/app").unwrap();
        assert_eq!(
            image_prefix_from_ferry_repository(&n.ferry_repository()),
            n.to_string()
        );
    }

    #[test]
    fn splits_tag_and_digest() {
        let r = Reference::parse(&format!("127.0.0.1:5001/team/app:1.2.3@{D}")).unwrap();
        assert_eq!(r.name.to_string(), "127.0.0.1:5001/team/app");
        assert_eq!(r.tag.as_deref(), Some("1.2.3"));
        assert_eq!(r.digest.as_deref(), Some(D));
        let r = Reference::parse("localhost:5000/app").unwrap();
        assert_eq!(r.tag, None);
        assert_eq!(r.name.registry(), "localhost:5000");
        let r = Reference::parse(&format!("nginx@{D}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/nginx@{D}"));
    }

    #[test]
    fn a_host_only_by_capital_letters_is_refused() {
        // Found by fuzzing (fuzz/regressions/reference): "UPPER/case" normalised to
        // "upper/case", which reads back as docker.io/upper/case.
        let err = Reference::parse("UPPER/case").unwrap_err();
        assert!(
            err.to_string()
                .contains("only because it has capital letters"),
            "{err}"
        );
        assert!(Reference::parse("Registry.Example.com/team/app").is_ok());
    }

    #[test]
    fn rejects_bad_references_with_the_rule() {
        for bad in [
            "",
            "Team/App",
            "app:v1:2",
            "gcr.io/team/app@sha256:abc",
            "gcr..io/x",
            "a b",
        ] {
            assert!(Reference::parse(bad).is_err(), "{bad}");
        }
        let msg = Reference::parse("gcr.io/Team/app").unwrap_err().to_string();
        assert!(
            msg.contains("Team/app") && msg.contains("[a-z0-9]+"),
            "{msg}"
        );
        // The rule is said once, even by a printer that follows source() (anyhow's {:#}).
        let err = Reference::parse("gcr.io/Team/app").unwrap_err();
        assert!(std::error::Error::source(&err).is_none(), "{err}");
        assert_eq!(msg.matches("invalid repository name").count(), 1, "{msg}");
        assert!(matches!(
            ImageName::parse("nginx:1"),
            Err(ReferenceError::NotBareName(_))
        ));
    }
}
