//! `ferry-server probe`: one `GET /readyz` (or `/healthz`) against the server's own registry
//! listener, for health checks in a FROM-scratch image that has no curl or wget.
//!
//! Plain HTTP/1.1 over a `std::net::TcpStream`: the probe runs next to the server, so it needs
//! no TLS, no redirects and no connection reuse, and a hand-written request keeps it free of an
//! HTTP client dependency.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// How long the whole probe may take: connecting, sending and reading the answer.
pub const TIMEOUT: Duration = Duration::from_secs(2);

/// The most of an answer read; a health endpoint's answer is a few hundred bytes.
const MAX_RESPONSE_BYTES: u64 = 64 * 1024;

/// The most of a body quoted in an error.
const MAX_REASON_CHARS: usize = 200;

/// Why a probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// The URL is not `http://HOST[:PORT]`.
    #[error("--url {url:?}: {why}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it, and what to give instead.
        why: String,
    },
    /// No connection, or no complete answer in time.
    #[error("GET {url}: {what}: {source}")]
    Io {
        /// The URL probed.
        url: String,
        /// Which step failed.
        what: &'static str,
        /// The cause.
        source: std::io::Error,
    },
    /// The answer is not HTTP.
    #[error("GET {url}: the answer is not an HTTP response (first line {first_line:?})")]
    NotHttp {
        /// The URL probed.
        url: String,
        /// The first line received.
        first_line: String,
    },
    /// An answer other than 200.
    #[error("GET {url}: {status} {reason}{body}")]
    NotOk {
        /// The URL probed.
        url: String,
        /// The status code.
        status: u16,
        /// The status line's reason phrase.
        reason: String,
        /// `: ` and the start of the body, or nothing.
        body: String,
    },
}

/// Where to probe: `http://HOST[:PORT]` and a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `HOST:PORT`, for connecting.
    pub authority: String,
    /// The `Host` header's value.
    pub host: String,
    /// The request path, starting with `/`.
    pub path: String,
}

impl Target {
    /// Parses `--url` (`http://HOST[:PORT]`, port 80 when absent) and `--path`.
    pub fn parse(url: &str, path: &str) -> Result<Target, ProbeError> {
        let bad = |why: &str| ProbeError::BadUrl {
            url: url.to_string(),
            why: why.to_string(),
        };
        let rest = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(bad(
                "probe speaks plain HTTP only; a server with --tls-cert needs a probe that speaks \
                 TLS (an orchestrator's HTTPS probe), or point --url at a plain-HTTP listener",
            ));
        } else {
            return Err(bad("give http://HOST[:PORT], e.g. http://127.0.0.1:5000"));
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        if host.is_empty() || host.contains('/') || host.contains('@') {
            return Err(bad(
                "give only a scheme, host and port (http://HOST[:PORT]); the path goes in --path",
            ));
        }
        let has_port = match host.rfind(']') {
            // [v6] or [v6]:port
            Some(end) => host[end..].contains(':'),
            None => host.contains(':'),
        };
        let authority = if has_port {
            host.to_string()
        } else {
            format!("{host}:80")
        };
        if !path.starts_with('/') || path.contains(char::is_whitespace) {
            return Err(ProbeError::BadUrl {
                url: url.to_string(),
                why: format!("--path {path:?} must start with / and hold no spaces"),
            });
        }
        Ok(Target {
            authority,
            host: host.to_string(),
            path: path.to_string(),
        })
    }

    fn url(&self) -> String {
        format!("http://{}{}", self.host, self.path)
    }
}

/// What a successful probe saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOk {
    /// The URL probed.
    pub url: String,
    /// The body, as text.
    pub body: String,
}

/// GETs the target within [`TIMEOUT`]; Ok on 200, else why not.
pub fn probe(target: &Target) -> Result<ProbeOk, ProbeError> {
    let url = target.url();
    let io = |what: &'static str| {
        let url = url.clone();
        move |source: std::io::Error| ProbeError::Io { url, what, source }
    };
    let deadline = Instant::now() + TIMEOUT;
    let mut stream = connect(&target.authority, deadline).map_err(io("connecting"))?;
    stream
        .set_write_timeout(Some(remaining(deadline)))
        .map_err(io("connecting"))?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: ferry-server-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        target.path, target.host
    );
    stream
        .write_all(request.as_bytes())
        .map_err(io("sending the request"))?;
    let mut raw = Vec::new();
    let mut limited = (&mut stream).take(MAX_RESPONSE_BYTES);
    // Read until the server closes (we asked it to), re-arming the timeout with what is left.
    loop {
        let left = remaining(deadline);
        if left.is_zero() {
            return Err(io("reading the answer")(
                std::io::ErrorKind::TimedOut.into(),
            ));
        }
        limited
            .get_ref()
            .set_read_timeout(Some(left))
            .map_err(io("reading the answer"))?;
        let mut buf = [0u8; 4096];
        match limited.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("reading the answer")(e)),
        }
    }
    let (status, reason, body) = parse_response(&raw).ok_or_else(|| ProbeError::NotHttp {
        url: url.clone(),
        first_line: first_line(&raw),
    })?;
    if status == 200 {
        Ok(ProbeOk { url, body })
    } else {
        let body = quote(&body);
        Err(ProbeError::NotOk {
            url,
            status,
            reason,
            body: if body.is_empty() {
                String::new()
            } else {
                format!(": {body}")
            },
        })
    }
}

/// Connects to the first address of `authority` that answers before the deadline.
fn connect(authority: &str, deadline: Instant) -> std::io::Result<TcpStream> {
    let addrs: Vec<SocketAddr> = authority.to_socket_addrs()?.collect();
    let mut last = std::io::Error::new(
        std::io::ErrorKind::NotFound,
        format!("{authority} resolves to no address"),
    );
    for addr in addrs {
        let left = remaining(deadline);
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        match TcpStream::connect_timeout(&addr, left) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn remaining(deadline: Instant) -> Duration {
    deadline.saturating_duration_since(Instant::now())
}

/// The status code, reason phrase and body of an HTTP/1.x response. A chunked body is decoded
/// just enough to quote it.
fn parse_response(raw: &[u8]) -> Option<(u16, String, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.splitn(3, ' ');
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let reason = parts.next().unwrap_or("").to_string();
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("transfer-encoding")
                && value.to_ascii_lowercase().contains("chunked")
        })
    });
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_string()
    };
    Some((status, reason, body))
}

/// The data of a chunked body (extensions and trailers dropped); what is there when cut short.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size_line, rest)) = body.split_once("\r\n") {
        let size = size_line.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size, 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            out.push_str(rest.get(..size.min(rest.len())).unwrap_or(""));
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].strip_prefix("\r\n").unwrap_or(&rest[size..]);
    }
    out
}

fn first_line(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    quote(text.lines().next().unwrap_or(""))
}

/// `text` on one line, cut to [`MAX_REASON_CHARS`].
fn quote(text: &str) -> String {
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(MAX_REASON_CHARS)
        .collect();
    one_line
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Serves one connection on loopback with `response`; returns the address and the request
    /// it received.
    fn serve_once(response: &'static str) -> (String, std::thread::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let handle = std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buf = [0u8; 1024];
            while !request.ends_with(b"\r\n\r\n") {
                let n = conn.read(&mut buf).unwrap();
                assert!(n > 0, "the probe closed before the end of its request");
                request.extend_from_slice(&buf[..n]);
            }
            conn.write_all(response.as_bytes()).unwrap();
            String::from_utf8(request).unwrap()
        });
        (addr, handle)
    }

    #[test]
    fn probe_is_ok_on_200_and_sends_a_plain_get() {
        let (addr, server) = serve_once(
            "HTTP/1.1 200 OK\r\ncontent-length: 12\r\ncontent-type: application/json\r\n\r\n{\"ready\":1}\n",
        );
        let target = Target::parse(&format!("http://{addr}"), "/readyz").unwrap();
        let ok = probe(&target).unwrap();
        assert_eq!(ok.body, "{\"ready\":1}\n");
        let request = server.join().unwrap();
        assert!(request.starts_with("GET /readyz HTTP/1.1\r\n"), "{request}");
        assert!(
            request.contains(&format!("\r\nHost: {addr}\r\n")),
            "{request}"
        );
    }

    #[test]
    fn probe_fails_on_503_quoting_status_and_body() {
        let (addr, server) = serve_once(
            "HTTP/1.1 503 Service Unavailable\r\ntransfer-encoding: chunked\r\n\r\n\
             1b\r\n{\"reason\":\"draining: bye\"}\r\n0\r\n\r\n",
        );
        let target = Target::parse(&format!("http://{addr}/"), "/healthz").unwrap();
        let err = probe(&target).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "GET http://{addr}/healthz: 503 Service Unavailable: {{\"reason\":\"draining: bye\"}}"
            )
        );
        assert!(server.join().unwrap().starts_with("GET /healthz "));
    }

    #[test]
    fn probe_fails_within_the_timeout_when_nothing_answers() {
        // Accepts (the kernel does, from the backlog) but never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let started = Instant::now();
        let err = probe(&Target::parse(&format!("http://{addr}"), "/readyz").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("reading the answer"), "{err}");
        assert!(started.elapsed() < TIMEOUT + Duration::from_secs(1));
        drop(listener);
        let err = probe(&Target::parse(&format!("http://{addr}"), "/readyz").unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("connecting"), "{err}");
    }

    #[test]
    fn urls_other_than_plain_http_are_refused_with_what_to_give() {
        let err = Target::parse("https://127.0.0.1:5000", "/readyz")
            .unwrap_err()
            .to_string();
        assert!(err.contains("plain HTTP only"), "{err}");
        for url in ["127.0.0.1:5000", "http://", "http://h:1/readyz"] {
            let err = Target::parse(url, "/readyz").unwrap_err().to_string();
            assert!(err.contains("http://HOST[:PORT]"), "{url}: {err}");
        }
        assert!(Target::parse("http://h:1", "readyz").is_err());
        assert_eq!(
            Target::parse("http://localhost", "/healthz").unwrap(),
            Target {
                authority: "localhost:80".into(),
                host: "localhost".into(),
                path: "/healthz".into()
            }
        );
        assert_eq!(
            Target::parse("http://[::1]:5000", "/readyz")
                .unwrap()
                .authority,
            "[::1]:5000"
        );
    }
}
