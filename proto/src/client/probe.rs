//! Finding out what listens at an address that did not speak gRPC as expected, so a failed
//! connection can say "that is the registry port" or "that server is plain text" instead of
//! passing on an h2 or TLS error. Only run after a failure: one or two short plain-text
//! exchanges, each bounded by [`PROBE_TIMEOUT`].

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long one probe may take; a failed connection is already being reported, so this only
/// bounds how much later.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The most of an HTTP/1 response head read before giving up on finding its end.
const MAX_HEAD: usize = 16 * 1024;

/// The HTTP/2 client connection preface, then an empty SETTINGS frame (RFC 9113 §3.4).
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// What answered in plain text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlainAnswer {
    /// An HTTP/2 server (a plain-text gRPC listener sends its SETTINGS).
    Http2,
    /// An HTTP/1 server; `registry` when it answered `GET /v2/` with the distribution API's
    /// `Docker-Distribution-API-Version` header (ferry-server's registry listener, or another
    /// registry).
    Http1 {
        /// It is an OCI distribution registry.
        registry: bool,
    },
}

/// Asks `authority` (HOST:PORT) in plain text what it speaks: HTTP/1 first (`GET /v2/`, which
/// also tells a registry), then an HTTP/2 preface. None: neither answered (nothing listens,
/// TLS only, or some other protocol).
pub(crate) async fn plain_answer(authority: &str) -> Option<PlainAnswer> {
    if let Some(head) = exchange(authority, http1_request(authority).as_bytes()).await {
        if head.starts_with(b"HTTP/1.") {
            let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
            return Some(PlainAnswer::Http1 {
                registry: head.contains("\r\ndocker-distribution-api-version:"),
            });
        }
    }
    let reply = exchange(authority, H2_PREFACE_AND_SETTINGS).await?;
    // A frame header is 9 bytes; byte 3 is the type, 0x4 SETTINGS, which a server sends first.
    (reply.len() >= 9 && reply[3] == 0x4).then_some(PlainAnswer::Http2)
}

fn http1_request(authority: &str) -> String {
    format!("GET /v2/ HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: ferry-probe\r\nConnection: close\r\n\r\n")
}

/// Sends `request` and returns what came back until the end of an HTTP/1 head, 9 bytes of
/// HTTP/2 frame header, EOF or [`MAX_HEAD`]; None when nothing could be sent or read in time.
async fn exchange(authority: &str, request: &[u8]) -> Option<Vec<u8>> {
    let talk = async {
        let mut stream = TcpStream::connect(authority).await.ok()?;
        stream.write_all(request).await.ok()?;
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.ok()?;
            if n == 0 {
                break;
            }
            reply.extend_from_slice(&buf[..n]);
            let http1_done = reply.windows(4).any(|w| w == b"\r\n\r\n");
            let h2_frame = !reply.starts_with(b"HTTP/") && reply.len() >= 9;
            if http1_done || h2_frame || reply.len() >= MAX_HEAD {
                break;
            }
        }
        (!reply.is_empty()).then_some(reply)
    };
    tokio::time::timeout(PROBE_TIMEOUT, talk).await.ok()?
}
