//! Validation of the names the OCI distribution spec defines.
//!
//! The grammar is the spec's, written out by hand rather than as a regex so that the error can
//! say which rule failed and so that validation on the hot path allocates nothing.

use thiserror::Error;

/// The longest repository name we accept. The spec leaves this to registries; Docker Hub and
/// the reference registry use 255 for the whole name including the host.
pub const MAX_REPOSITORY_LEN: usize = 255;
/// The spec's limit on tag length.
pub const MAX_TAG_LEN: usize = 128;

/// A value from a request, quoted for an error message and cut after [`Shown::MAX_CHARS`]
/// characters, with its full length said. Error messages echo untrusted input, and over gRPC they
/// travel in a trailer: past gRPC's 16 KiB metadata limit the client sees only "Stream removed",
/// so a 10 KB image name would hide the very message that explains it.
pub struct Shown<'a>(pub &'a str);

impl Shown<'_> {
    /// How much of a value an error message quotes.
    pub const MAX_CHARS: usize = 100;
}

impl std::fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.char_indices().nth(Self::MAX_CHARS) {
            None => write!(f, "{:?}", self.0),
            Some((cut, _)) => write!(f, "{:?}… ({} bytes)", &self.0[..cut], self.0.len()),
        }
    }
}

/// A name, tag or digest that does not follow the OCI grammar.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    /// The repository name breaks the path-component grammar. A first component written
    /// `HOST:PORT` gets a hint with ferry's `HOST_PORT` form.
    #[error("invalid repository name {}: {rule}", Shown(.0), rule = repository_rule(.0))]
    Repository(String),
    /// The tag breaks the tag grammar.
    #[error("invalid tag {}: tags match [A-Za-z0-9_][A-Za-z0-9._-]{{0,127}}", Shown(.0))]
    Tag(String),
    /// The digest is not `sha256:` + 64 or `sha512:` + 128 lowercase hex characters.
    #[error(
        "invalid digest {}: digests are sha256:<64 lowercase hex> or sha512:<128 lowercase hex>",
        Shown(.0)
    )]
    Digest(String),
}

/// The grammar a repository name broke, or for `127.0.0.1:5001/team/app` (a registry host and
/// port copied from an image reference) the name ferry knows it by: the OCI grammar has no ':'
/// in repository names, so ferry writes the port `_5001`.
fn repository_rule(name: &str) -> String {
    if let Some(fixed) = with_port_underscored(name) {
        return format!(
            "a registry :PORT is written _PORT in a ferry repository name: write {fixed}"
        );
    }
    "path components match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*, separated by '/', at most 255 characters".to_string()
}

/// `HOST:PORT/rest` → `HOST_PORT/rest`, when that is a valid repository name.
fn with_port_underscored(name: &str) -> Option<String> {
    let (first, rest) = name.split_once('/')?;
    let (host, port) = first.rsplit_once(':')?;
    if host.is_empty() || port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let fixed = format!("{host}_{port}/{rest}");
    validate_repository(&fixed).is_ok().then_some(fixed)
}

fn is_alnum_lower(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn is_valid_component(c: &[u8]) -> bool {
    if c.is_empty() || !is_alnum_lower(c[0]) || !is_alnum_lower(c[c.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < c.len() {
        if is_alnum_lower(c[i]) {
            i += 1;
            continue;
        }
        // A separator run: ".", "_", "__" or one or more "-", always followed by alnum.
        let start = i;
        match c[i] {
            b'.' => i += 1,
            b'_' => {
                i += 1;
                if i < c.len() && c[i] == b'_' {
                    i += 1;
                }
            }
            b'-' => {
                while i < c.len() && c[i] == b'-' {
                    i += 1;
                }
            }
            _ => return false,
        }
        if i == start || i >= c.len() || !is_alnum_lower(c[i]) {
            return false;
        }
    }
    true
}

/// Checks a repository name (`team/app`, `gcr.io/pipecd/foo`, `127.0.0.1_5001/team/app`).
pub fn validate_repository(name: &str) -> Result<(), NameError> {
    if name.is_empty()
        || name.len() > MAX_REPOSITORY_LEN
        || !name.split('/').all(|c| is_valid_component(c.as_bytes()))
    {
        return Err(NameError::Repository(name.to_string()));
    }
    Ok(())
}

/// Checks a tag: `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), NameError> {
    let b = tag.as_bytes();
    let ok = !b.is_empty()
        && b.len() <= MAX_TAG_LEN
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(NameError::Tag(tag.to_string()))
    }
}

/// Checks a digest. Only the algorithms the image spec registers are accepted.
pub fn validate_digest(digest: &str) -> Result<(), NameError> {
    let hex_len = match digest.split_once(':') {
        Some(("sha256", hex)) => (hex.len() == 64).then_some(hex),
        Some(("sha512", hex)) => (hex.len() == 128).then_some(hex),
        _ => None,
    };
    match hex_len {
        Some(hex)
            if hex
                .bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)) =>
        {
            Ok(())
        }
        _ => Err(NameError::Digest(digest.to_string())),
    }
}

/// True when `s` looks like a digest (has an algorithm prefix) rather than a tag. Tags cannot
/// contain ':', so the distinction is unambiguous.
pub fn is_digest_like(s: &str) -> bool {
    s.contains(':')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repository_grammar() {
        for ok in [
            "a",
            "team/app",
            "gcr.io/pipecd/foo",
            "127.0.0.1_5001/team/app",
            "a__b",
            "a---b",
            "docker.io/library/nginx",
        ] {
            assert_eq!(validate_repository(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "A",
            "team/",
            "/app",
            "a___b",
            "a..b",
            "a.",
            "-a",
            "team//app",
            "app:1",
            "ü",
        ] {
            assert!(validate_repository(bad).is_err(), "{bad}");
        }
        assert!(validate_repository(&"a".repeat(256)).is_err());
    }

    #[test]
    fn a_registry_port_in_a_repository_name_suggests_the_underscore_form() {
        // Regression: GET /v2/127.0.0.1:5001/team/app/… answered only the grammar, leaving the
        // user to discover that ferry spells the port `_5001`.
        let msg = validate_repository("127.0.0.1:5001/team/app")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("\"127.0.0.1:5001/team/app\"")
                && msg.contains("write 127.0.0.1_5001/team/app"),
            "{msg}"
        );
        let msg = validate_repository("localhost:5000/app")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("write localhost_5000/app"), "{msg}");
        // No hint where the underscore form would be invalid too, or there is no port.
        for other in [
            "127.0.0.1:5001/Team/app",
            "host:/app",
            "host:x1/app",
            "app:1",
        ] {
            let msg = validate_repository(other).unwrap_err().to_string();
            assert!(!msg.contains("write "), "{other}: {msg}");
            assert!(msg.contains("[a-z0-9]+"), "{other}: {msg}");
        }
    }

    #[test]
    fn tag_grammar() {
        for ok in [
            "latest",
            "v1.2.3",
            "_x",
            "1",
            "main-abc1234",
            &"a".repeat(128),
        ] {
            assert_eq!(validate_tag(ok), Ok(()), "{ok}");
        }
        for bad in ["", "-x", ".x", "v1:2", "a/b", &"a".repeat(129)] {
            assert!(validate_tag(bad).is_err(), "{bad}");
        }
        let msg = validate_tag("v1:2").unwrap_err().to_string();
        assert!(
            msg.contains("\"v1:2\"") && msg.contains("[A-Za-z0-9_]"),
            "{msg}"
        );
    }

    #[test]
    fn digest_grammar() {
        assert!(validate_digest(&format!("sha256:{}", "a".repeat(64))).is_ok());
        assert!(validate_digest(&format!("sha512:{}", "0".repeat(128))).is_ok());
        assert!(validate_digest(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(validate_digest(&format!("sha256:{}", "a".repeat(63))).is_err());
        assert!(validate_digest(&format!("md5:{}", "a".repeat(32))).is_err());
        assert!(validate_digest("sha256").is_err());
    }
}

#[cfg(test)]
mod shown_tests {
    use super::*;

    // Regression (issue 14): a 10 KB image name made the error exceed gRPC's 16 KiB metadata
    // limit, so the client saw only "Stream removed".
    #[test]
    fn long_values_are_cut_in_messages_and_their_length_said() {
        assert_eq!(Shown("v1:2").to_string(), "\"v1:2\"");
        let long = "a".repeat(10_000);
        let shown = Shown(&long).to_string();
        assert!(shown.len() < 200, "{shown}");
        assert!(shown.ends_with("… (10000 bytes)"), "{shown}");
        let err = validate_tag(&format!("{long}:x")).unwrap_err().to_string();
        assert!(err.len() < 300 && err.contains("tags match"), "{err}");
        // Multi-byte characters are cut on a character boundary.
        let wide = "é".repeat(150);
        assert!(Shown(&wide).to_string().contains("(300 bytes)"));
    }
}
