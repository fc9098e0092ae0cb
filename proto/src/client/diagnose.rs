//! Turning "the peer does not speak what we expected" into a [`ConnectError`] that says what
//! listens there. Two failures need it:
//!
//! - an `https://` address whose server is plain text: the TLS handshake sees an HTTP answer
//!   and reports a corrupt record;
//! - an address that speaks HTTP/1 (ferry-server's registry port): an HTTP/2 client connects
//!   without complaint and only the first call fails, with an h2 protocol error or, as the
//!   race goes, "operation was canceled: connection closed".
//!
//! Neither error says what listens there; [`probe`] asks it, so the message states a fact,
//! not a guess.

use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::codegen::http::{self, Uri};
use tonic::codegen::Service;
use tonic::transport::Channel;

use super::probe::{self, PlainAnswer};
use super::{causes, error_chain, ConnectError, DEFAULT_GRPC_PORT};

/// ferry-server's channel, whose failed calls carry a [`ConnectError`] (read it back with
/// [`super::explanation`]) when the address turns out not to speak gRPC, for the CLI and the
/// agent alike. Every other outcome passes through untouched.
#[derive(Clone)]
pub struct ExplainedChannel {
    channel: Channel,
    target: Arc<Target>,
}

struct Target {
    address: String,
    uri: Uri,
}

impl ExplainedChannel {
    pub(super) fn new(channel: Channel, address: &str, uri: &Uri) -> Self {
        ExplainedChannel {
            channel,
            target: Arc::new(Target {
                address: address.to_string(),
                uri: uri.clone(),
            }),
        }
    }
}

type BoxError = Box<dyn StdError + Send + Sync>;

impl Service<http::Request<Body>> for ExplainedChannel {
    type Response = http::Response<Body>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.channel.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let call = self.channel.call(request);
        let target = self.target.clone();
        Box::pin(async move {
            match call.await {
                Ok(response) => Ok(response),
                // Any failure here is the transport's (a status from the server is a
                // response): a dead server refuses the probe at once, a live gRPC one answers
                // HTTP/2, and only an HTTP/1 answer changes the error.
                Err(e) => match explain_call_failure(&target).await {
                    Some(why) => Err(why.into()),
                    None => Err(e.into()),
                },
            }
        })
    }
}

/// What listens at the target, when it answers HTTP/1; None for an HTTP/2 peer or silence,
/// whose failure is reported as it was.
async fn explain_call_failure(target: &Target) -> Option<ConnectError> {
    // Over TLS the handshake already succeeded, so the peer speaks TLS: a plain-text probe of a
    // TLS port (an ingress answers it "400, plain HTTP sent to an HTTPS port") says nothing of
    // what it serves inside TLS, and would turn a reset or a proxy's error into "not gRPC".
    if target.address.starts_with("https://") {
        return None;
    }
    match probe::plain_answer(&authority(&target.uri)?).await? {
        PlainAnswer::Http1 { registry: true } => Some(registry_port(&target.address, &target.uri)),
        PlainAnswer::Http1 { registry: false } => Some(ConnectError::NotGrpc {
            address: target.address.clone(),
        }),
        PlainAnswer::Http2 => None,
    }
}

/// Why connecting failed. A TLS handshake answered with something that is not TLS is probed
/// in plain text, so the message can say what does listen there.
pub(super) async fn explain_connect_failure(
    address: &str,
    uri: &Uri,
    e: &tonic::transport::Error,
) -> ConnectError {
    if address.starts_with("https://") && tls_handshake_saw_plain_text(e) {
        if let Some(authority) = authority(uri) {
            match probe::plain_answer(&authority).await {
                Some(PlainAnswer::Http1 { registry: true }) => return registry_port(address, uri),
                Some(_) => {
                    return ConnectError::PlainText {
                        address: address.to_string(),
                        plain: format!("http://{}", &address["https://".len()..]),
                    }
                }
                None => {}
            }
        }
    }
    ConnectError::Unreachable {
        address: address.to_string(),
        reason: error_chain(e),
    }
}

/// The probe is plain text, so the suggestion is too.
fn registry_port(address: &str, uri: &Uri) -> ConnectError {
    ConnectError::RegistryPort {
        address: address.to_string(),
        suggestion: format!(
            "http://{}:{DEFAULT_GRPC_PORT}",
            uri.host().unwrap_or("HOST")
        ),
    }
}

/// HOST:PORT of `uri`, with the scheme's default port when none is written.
fn authority(uri: &Uri) -> Option<String> {
    let port = uri
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(format!("{}:{port}", uri.host()?))
}

/// True when a TLS handshake failed on bytes that are not a TLS record: rustls found an
/// invalid message where the server's hello should have been, as when the server speaks plain
/// HTTP. (Shared with the CLI's reqwest client, which runs on the same rustls.)
pub fn tls_handshake_saw_plain_text(e: &(dyn StdError + 'static)) -> bool {
    causes(e).any(is_rustls_invalid_message)
}

/// rustls reports through `std::io::Error`, sometimes wrapped twice (reqwest's connector), and
/// an `io::Error`'s `source()` skips the error it wraps: look inside with `get_ref`.
fn is_rustls_invalid_message(mut e: &(dyn StdError + 'static)) -> bool {
    loop {
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return matches!(tls, rustls::Error::InvalidMessage(_));
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => e = inner,
            None => return false,
        }
    }
}
