//! Domain errors. The protocol layers map them to OCI error codes and gRPC statuses.

use ferry_proto::digest::DigestError;
use ferry_proto::manifest::ManifestError;
use ferry_proto::names::NameError;
use ferry_proto::reference::ReferenceError;
use thiserror::Error;

use crate::store::StoreError;

/// Why a request failed.
#[derive(Debug, Error)]
pub enum ServiceError {
    /// A repository name, tag or digest breaks the OCI grammar.
    #[error(transparent)]
    NameInvalid(#[from] NameError),
    /// An image name in a publish could not be parsed.
    #[error(transparent)]
    Reference(#[from] ReferenceError),
    /// No such repository.
    #[error("repository {0:?} is not known to this registry")]
    NameUnknown(String),
    /// No such tag or digest in the repository.
    #[error("manifest {reference:?} is not known in repository {repository:?}")]
    ManifestUnknown {
        /// The repository.
        repository: String,
        /// The tag or digest asked for.
        reference: String,
    },
    /// No such blob, or a layer blob with no known origin.
    #[error("blob {digest} is not known in repository {repository:?}")]
    BlobUnknown {
        /// The repository.
        repository: String,
        /// The digest asked for.
        digest: String,
    },
    /// Content does not match its digest.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// A manifest that cannot be stored.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// Content over a size cap.
    #[error("{what} is {size} bytes, over the limit of {limit} bytes")]
    TooLarge {
        /// What was too big.
        what: String,
        /// Its size.
        size: usize,
        /// The cap.
        limit: usize,
    },
    /// A publish that is inconsistent (missing child or config, sizes that disagree, …).
    #[error("invalid publish: {0}")]
    InvalidPublish(String),
    /// A token could not be created as asked.
    #[error("{0}")]
    InvalidToken(String),
    /// A ring verb or pipeline spec with bad input (an unknown ring, a spec breaking a rule).
    #[error("{0}")]
    RingInvalid(String),
    /// A ring move the rules refuse now: a closed gate, the order rule, a rejected digest,
    /// nothing to unshift or roll back.
    #[error("{0}")]
    RingRefused(String),
    /// An unknown pipeline, image or digest named by a ring verb.
    #[error("{0}")]
    RingUnknown(String),
    /// The store failed; details are logged, not sent to clients.
    #[error(transparent)]
    Store(#[from] StoreError),
}
