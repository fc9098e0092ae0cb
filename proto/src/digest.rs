//! Content digests: what a registry uses as the identity of a manifest or blob.

use sha2::{Digest as _, Sha256, Sha512};
use thiserror::Error;

use crate::names::{validate_digest, NameError};

/// A digest that is malformed or does not match the bytes it claims to describe.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DigestError {
    /// The digest string itself breaks the grammar.
    #[error(transparent)]
    Invalid(#[from] NameError),
    /// The bytes hash to something else.
    #[error("digest mismatch: content declared as {declared} hashes to {actual}")]
    Mismatch {
        /// What the sender said.
        declared: String,
        /// What the bytes hash to with the same algorithm.
        actual: String,
    },
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// Checks that `data` hashes to `declared`, using the declared algorithm.
pub fn verify(declared: &str, data: &[u8]) -> Result<(), DigestError> {
    validate_digest(declared)?;
    let actual = if declared.starts_with("sha512:") {
        format!("sha512:{}", hex::encode(Sha512::digest(data)))
    } else {
        sha256_digest(data)
    };
    if actual == declared {
        Ok(())
    } else {
        Err(DigestError::Mismatch {
            declared: declared.to_string(),
            actual,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifies_and_reports_mismatch() {
        let d = sha256_digest(b"hello");
        assert_eq!(
            d,
            "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert!(verify(&d, b"hello").is_ok());
        let err = verify(&d, b"hellO").unwrap_err();
        assert!(matches!(err, DigestError::Mismatch { .. }));
        assert!(err.to_string().contains(&d));
        assert!(matches!(
            verify("sha256:zz", b""),
            Err(DigestError::Invalid(_))
        ));
    }
}
