//! Which endpoint a `/v2/…` path names, parsed by hand.
//!
//! Repository names contain slashes, so actix-web can only route them with `{name:.+}` patterns,
//! which it matches with a regex engine for every route in turn. Profiling the registry
//! benchmark put a quarter of the server's CPU in that matching (BENCHMARKS.md, "Profiles"). The
//! grammar needs no regex: the last two segments say which resource is meant.

/// A path under `/v2`, split into the resource and its parameters.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Endpoint<'a> {
    /// `/v2/`: the API version check.
    Base,
    /// `/v2/_catalog`.
    Catalog,
    /// `/v2/<name>/manifests/<reference>`.
    Manifest { name: &'a str, reference: &'a str },
    /// `/v2/<name>/blobs/<digest>`.
    Blob { name: &'a str, digest: &'a str },
    /// `/v2/<name>/tags/list`.
    Tags { name: &'a str },
    /// `/v2/<name>/referrers/<digest>`.
    Referrers { name: &'a str, digest: &'a str },
    /// Anything else (including uploads, which this read-only registry does not take).
    Unknown,
}

impl Endpoint<'_> {
    /// The route's pattern, for metrics labels: never the names in the path, which are the
    /// client's.
    pub(crate) fn pattern(&self) -> &'static str {
        match self {
            Endpoint::Base => "/v2/",
            Endpoint::Catalog => "/v2/_catalog",
            Endpoint::Manifest { .. } => "/v2/{name}/manifests/{reference}",
            Endpoint::Blob { .. } => "/v2/{name}/blobs/{digest}",
            Endpoint::Tags { .. } => "/v2/{name}/tags/list",
            Endpoint::Referrers { .. } => "/v2/{name}/referrers/{digest}",
            Endpoint::Unknown => "/v2/{unknown}",
        }
    }

    /// The repository the request reads, if any (for access checks).
    pub(crate) fn repository(&self) -> Option<&str> {
        match self {
            Endpoint::Manifest { name, .. }
            | Endpoint::Blob { name, .. }
            | Endpoint::Tags { name }
            | Endpoint::Referrers { name, .. } => Some(name),
            Endpoint::Base | Endpoint::Catalog | Endpoint::Unknown => None,
        }
    }
}

/// Parses `path` (the request path, starting with `/v2`).
pub(crate) fn parse(path: &str) -> Endpoint<'_> {
    let Some(rest) = path.strip_prefix("/v2") else {
        return Endpoint::Unknown;
    };
    let rest = match rest {
        "" | "/" => return Endpoint::Base,
        r => match r.strip_prefix('/') {
            Some(r) => r,
            None => return Endpoint::Unknown, // "/v2x…"
        },
    };
    if rest == "_catalog" {
        return Endpoint::Catalog;
    }
    // name / kind / last: the name is everything before the last two segments.
    let mut parts = rest.rsplitn(3, '/');
    let (Some(last), Some(kind), Some(name)) = (parts.next(), parts.next(), parts.next()) else {
        return Endpoint::Unknown;
    };
    if name.is_empty() || last.is_empty() {
        return Endpoint::Unknown;
    }
    match kind {
        "manifests" => Endpoint::Manifest {
            name,
            reference: last,
        },
        "blobs" => Endpoint::Blob { name, digest: last },
        "referrers" => Endpoint::Referrers { name, digest: last },
        "tags" if last == "list" => Endpoint::Tags { name },
        _ => Endpoint::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::{parse, Endpoint::*};

    #[test]
    fn every_endpoint() {
        assert_eq!(parse("/v2"), Base);
        assert_eq!(parse("/v2/"), Base);
        assert_eq!(parse("/v2/_catalog"), Catalog);
        assert_eq!(
            parse("/v2/127.0.0.1_5000/team/app/manifests/v1"),
            Manifest {
                name: "127.0.0.1_5000/team/app",
                reference: "v1"
            }
        );
        assert_eq!(
            parse("/v2/app/blobs/sha256:ab"),
            Blob {
                name: "app",
                digest: "sha256:ab"
            }
        );
        assert_eq!(parse("/v2/a/b/tags/list"), Tags { name: "a/b" });
        assert_eq!(
            parse("/v2/a/referrers/sha256:ab"),
            Referrers {
                name: "a",
                digest: "sha256:ab"
            }
        );
    }

    #[test]
    fn names_may_contain_resource_words() {
        // Only the last two segments choose the resource, as the spec's grammar does.
        assert_eq!(
            parse("/v2/manifests/tags/manifests/list"),
            Manifest {
                name: "manifests/tags",
                reference: "list"
            }
        );
        assert_eq!(parse("/v2/blobs/tags/list"), Tags { name: "blobs" });
    }

    #[test]
    fn anything_else_is_unknown() {
        for p in [
            "/v2x",
            "/v3/a/manifests/v1",
            "/v2/manifests/v1",
            "/v2/a/manifests/",
            "/v2//manifests/v1",
            "/v2/a/tags/other",
            "/v2/a/blobs/uploads/",
            "/v2/a/blobs/uploads/123",
            "/v2/a/unknown/x",
            "/v2/_catalog/x",
            "/v2/a",
        ] {
            assert_eq!(parse(p), Unknown, "{p}");
        }
    }
}
