//! OCI error responses: `{"errors":[{"code","message","detail"}]}` with the spec's codes.
//!
//! The mapping from domain errors lives here. Internal causes (store failures) are logged and
//! answered with a generic message: clients never see SQL.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::service::ServiceError;
use ferry_proto::names::NameError;

/// One OCI error, ready to send.
#[derive(Debug)]
pub struct OciError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// A `WWW-Authenticate` challenge for 401 answers.
    challenge: Option<String>,
}

#[derive(Serialize)]
struct Body<'a> {
    errors: [Info<'a>; 1],
}

#[derive(Serialize)]
struct Info<'a> {
    code: &'a str,
    message: &'a str,
    #[serde(skip_serializing_if = "serde_json::Value::is_null")]
    detail: serde_json::Value,
}

impl OciError {
    /// An error with an explicit status and code.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        OciError {
            status,
            code,
            message: message.into(),
            challenge: None,
        }
    }

    /// 401 UNAUTHORIZED with the `WWW-Authenticate` challenge telling the client how to log in.
    pub fn unauthorized(message: impl Into<String>, challenge: String) -> Self {
        OciError {
            challenge: Some(challenge),
            ..Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
        }
    }

    /// 404 for an endpoint that does not exist.
    pub fn not_found(message: String) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 405 UNSUPPORTED for write methods.
    pub fn unsupported(message: String) -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", message)
    }

    /// The OCI code, for tests.
    pub fn code(&self) -> &'static str {
        self.code
    }
}

impl std::fmt::Display for OciError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for OciError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = Body {
            errors: [Info {
                code: self.code,
                message: &self.message,
                detail: serde_json::Value::Null,
            }],
        };
        let mut resp = HttpResponse::build(self.status);
        if let Some(c) = &self.challenge {
            resp.insert_header((actix_web::http::header::WWW_AUTHENTICATE, c.as_str()));
        }
        resp.json(body)
    }
}

impl From<ServiceError> for OciError {
    fn from(e: ServiceError) -> Self {
        use StatusCode as S;
        let msg = e.to_string();
        match e {
            ServiceError::NameInvalid(NameError::Repository(_)) => {
                Self::new(S::BAD_REQUEST, "NAME_INVALID", msg)
            }
            ServiceError::NameInvalid(NameError::Tag(_)) => {
                Self::new(S::BAD_REQUEST, "TAG_INVALID", msg)
            }
            ServiceError::NameInvalid(NameError::Digest(_)) => {
                Self::new(S::BAD_REQUEST, "DIGEST_INVALID", msg)
            }
            ServiceError::Reference(_) => Self::new(S::BAD_REQUEST, "NAME_INVALID", msg),
            ServiceError::NameUnknown(_) => Self::new(S::NOT_FOUND, "NAME_UNKNOWN", msg),
            ServiceError::ManifestUnknown { .. } => {
                Self::new(S::NOT_FOUND, "MANIFEST_UNKNOWN", msg)
            }
            ServiceError::BlobUnknown { .. } => Self::new(S::NOT_FOUND, "BLOB_UNKNOWN", msg),
            ServiceError::Digest(_) => Self::new(S::BAD_REQUEST, "DIGEST_INVALID", msg),
            ServiceError::Manifest(_)
            | ServiceError::InvalidPublish(_)
            | ServiceError::InvalidToken(_) => Self::new(S::BAD_REQUEST, "MANIFEST_INVALID", msg),
            // The registry never moves rings; mapped for completeness.
            ServiceError::RingInvalid(_) | ServiceError::RingRefused(_) => {
                Self::new(S::BAD_REQUEST, "DENIED", msg)
            }
            ServiceError::RingUnknown(_) => Self::new(S::NOT_FOUND, "NAME_UNKNOWN", msg),
            ServiceError::TooLarge { .. } => Self::new(S::PAYLOAD_TOO_LARGE, "SIZE_INVALID", msg),
            ServiceError::Store(e) => {
                tracing::error!(error = %e, "store failure on the read path");
                Self::new(
                    S::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal error; see the server log",
                )
            }
        }
    }
}
