//! `--metrics-addr`: `/healthz`, `/readyz` and Prometheus `/metrics` ([`crate::metrics`]) over
//! plain HTTP/1.1.
//!
//! A probe sends one small GET and reads one answer, so a hand-written responder is enough and
//! keeps a web framework out of the agent: read the request head up to [`MAX_HEAD`] bytes,
//! answer with Content-Length and `Connection: close`, hang up.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::config::AgentConfig;
use crate::metrics::Metrics;

/// The largest request head read. Probes send well under 1 KiB; anything bigger is not a probe.
const MAX_HEAD: usize = 8 * 1024;
/// How long a client may take to send its request head, so a stalled connection cannot pin a
/// task forever.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Where one provider stream or one repository stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Link {
    /// Not tried yet (the agent has just started).
    Pending,
    Up,
    /// The last attempt failed, with the error on one line.
    Down(String),
}

/// What `/readyz` reports: each provider's stream and each repository's last fetch. Updated by
/// the run loop, read by probes; a plain mutex is enough since both sides hold it for a map
/// update or a read.
#[derive(Debug, Default)]
pub struct Readiness {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    providers: BTreeMap<String, Link>,
    repos: BTreeMap<String, Link>,
}

impl Readiness {
    /// Readiness for every provider and watched repository of `config`, none of them ready yet.
    pub fn for_config(config: &AgentConfig) -> Readiness {
        let state = State {
            providers: config
                .providers
                .iter()
                .map(|p| (p.name.clone(), Link::Pending))
                .collect(),
            repos: config
                .watchers
                .iter()
                .map(|w| (w.repo_id.clone(), Link::Pending))
                .collect(),
        };
        Readiness {
            state: Mutex::new(state),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().expect("readiness lock poisoned")
    }

    /// `provider` answered ListTags: its stream is (about to be) open.
    pub fn connected(&self, provider: &str) {
        self.state()
            .providers
            .insert(provider.to_string(), Link::Up);
    }

    /// `provider`'s session ended with `error` (one line).
    pub fn disconnected(&self, provider: &str, error: &str) {
        let down = Link::Down(error.to_string());
        self.state().providers.insert(provider.to_string(), down);
    }

    /// The outcome of the last fetch (or fetch, commit and push) of repository `repo_id`.
    pub fn fetched(&self, repo_id: &str, outcome: Result<(), String>) {
        let link = match outcome {
            Ok(()) => Link::Up,
            Err(e) => Link::Down(e),
        };
        self.state().repos.insert(repo_id.to_string(), link);
    }

    /// Why the agent is not ready, one line per provider or repository; empty when it is.
    pub fn reasons(&self) -> Vec<String> {
        let state = self.state();
        let providers = state
            .providers
            .iter()
            .filter_map(|(name, link)| match link {
                Link::Up => None,
                Link::Pending => Some(format!("provider {name}: not connected yet")),
                Link::Down(e) => Some(format!("provider {name}: not connected: {e}")),
            });
        let repos = state.repos.iter().filter_map(|(id, link)| match link {
            Link::Up => None,
            Link::Pending => Some(format!("repository {id}: not fetched yet")),
            Link::Down(e) => Some(format!("repository {id}: last fetch failed: {e}")),
        });
        providers.chain(repos).collect()
    }
}

/// Answers probes and scrapes on `listener` until the process ends. A failed connection only
/// ends itself.
pub async fn serve(listener: TcpListener, readiness: Arc<Readiness>, metrics: Arc<Metrics>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: pause instead of spinning on the error.
                tracing::warn!(error = %e, "accepting a metrics connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let (readiness, metrics) = (readiness.clone(), metrics.clone());
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &readiness, &metrics).await {
                tracing::debug!(%peer, error = %e, "metrics connection");
            }
        });
    }
}

/// Reads one request head and writes the answer.
async fn answer(
    mut stream: TcpStream,
    readiness: &Readiness,
    metrics: &Metrics,
) -> std::io::Result<()> {
    let response = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Err(_) => return Ok(()), // the client never finished its request: nobody to answer
        Ok(Err(e)) => return Err(e),
        Ok(Ok(None)) => Response::text(
            431,
            "Request Header Fields Too Large",
            "request head over 8 KiB\n",
        ),
        Ok(Ok(Some(head))) => route(&head, readiness, metrics),
    };
    stream.write_all(&response.to_bytes()).await?;
    stream.shutdown().await
}

/// The request head (up to the blank line), or None when it is over [`MAX_HEAD`] bytes.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        match head.windows(4).position(|w| w == b"\r\n\r\n") {
            Some(end) if end <= MAX_HEAD => {
                head.truncate(end);
                return Ok(Some(head));
            }
            // One read may bring a whole oversized head; the cap holds either way.
            _ if head.len() > MAX_HEAD => return Ok(None),
            _ => {}
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        head.extend_from_slice(&buf[..n]);
    }
}

/// One answer: status, content type and body.
#[derive(Debug, PartialEq, Eq)]
struct Response {
    status: u16,
    reason: &'static str,
    content_type: &'static str,
    body: String,
}

impl Response {
    fn text(status: u16, reason: &'static str, body: &str) -> Response {
        Response {
            status,
            reason,
            content_type: "text/plain; charset=utf-8",
            body: body.to_string(),
        }
    }

    fn to_bytes(&self) -> Vec<u8> {
        format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
            self.status,
            self.reason,
            self.content_type,
            self.body.len(),
            self.body
        )
        .into_bytes()
    }
}

/// Answers a request head: only the request line matters (probes send no body).
fn route(head: &[u8], readiness: &Readiness, metrics: &Metrics) -> Response {
    let head = String::from_utf8_lossy(head);
    let mut parts = head.lines().next().unwrap_or_default().split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Response::text(400, "Bad Request", "malformed request line\n");
    };
    if !version.starts_with("HTTP/1.") {
        return Response::text(400, "Bad Request", "only HTTP/1.x is served\n");
    }
    // Probes may add a query string; it changes nothing.
    let path = target.split('?').next().unwrap_or_default();
    match (method, path) {
        ("GET", "/healthz") => Response::text(200, "OK", "ok"),
        ("GET", "/readyz") => {
            let reasons = readiness.reasons();
            let (status, reason, body) = if reasons.is_empty() {
                (200, "OK", serde_json::json!({"ready": true}))
            } else {
                let body = serde_json::json!({"ready": false, "reasons": reasons});
                (503, "Service Unavailable", body)
            };
            Response {
                status,
                reason,
                content_type: "application/json",
                body: body.to_string(),
            }
        }
        ("GET", "/metrics") => Response {
            status: 200,
            reason: "OK",
            content_type: crate::metrics::CONTENT_TYPE,
            body: metrics.encode(),
        },
        _ => Response::text(
            404,
            "Not Found",
            "not found: try /healthz, /readyz or /metrics\n",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn readiness() -> Readiness {
        let r = Readiness::default();
        r.disconnected("ferry", "cannot reach ferry-server at http://127.0.0.1:1");
        r.fetched(
            "config",
            Err("syncing git://x/config: connection refused".into()),
        );
        r
    }

    /// Sends `request` to a listener served in-process and returns the raw answer.
    async fn exchange(readiness: Arc<Readiness>, request: &[u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, readiness, Arc::new(Metrics::new())));
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request).await.unwrap();
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.unwrap();
        server.abort();
        raw
    }

    #[tokio::test]
    async fn healthz_is_ok_and_readyz_names_what_is_not_ready() {
        let r = Arc::new(readiness());
        let raw = exchange(r.clone(), b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await;
        assert_eq!(
            raw,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
        );

        let raw = exchange(r.clone(), b"GET /readyz?verbose HTTP/1.1\r\n\r\n").await;
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(
            head.starts_with("HTTP/1.1 503 Service Unavailable\r\n"),
            "{head}"
        );
        assert!(
            head.contains(&format!("Content-Length: {}\r\n", body.len())),
            "{head}"
        );
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"ready": false, "reasons": [
                "provider ferry: not connected: cannot reach ferry-server at http://127.0.0.1:1",
                "repository config: last fetch failed: syncing git://x/config: connection refused",
            ]})
        );

        r.connected("ferry");
        r.fetched("config", Ok(()));
        let raw = exchange(r, b"GET /readyz HTTP/1.0\r\n\r\n").await;
        assert!(raw.starts_with("HTTP/1.1 200 OK\r\n"), "{raw}");
        assert!(raw.ends_with("\r\n\r\n{\"ready\":true}"), "{raw}");
    }

    #[tokio::test]
    async fn other_paths_and_methods_are_404_and_junk_is_400() {
        let r = Arc::new(Readiness::default());
        for request in [
            &b"GET /metricz HTTP/1.1\r\n\r\n"[..],
            b"POST /healthz HTTP/1.1\r\n\r\n",
        ] {
            let raw = exchange(r.clone(), request).await;
            assert!(raw.starts_with("HTTP/1.1 404 Not Found\r\n"), "{raw}");
        }
        let raw = exchange(r.clone(), b"hello\r\n\r\n").await;
        assert!(raw.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{raw}");
        let raw = exchange(r, b"GET /readyz SPDY/3\r\n\r\n").await;
        assert!(raw.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{raw}");
    }

    #[tokio::test]
    async fn metrics_are_served_in_the_openmetrics_text_format() {
        let raw = exchange(
            Arc::new(Readiness::default()),
            b"GET /metrics HTTP/1.1\r\n\r\n",
        )
        .await;
        let (head, body) = raw.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(
            head.contains("Content-Type: application/openmetrics-text; version=1.0.0"),
            "{head}"
        );
        assert!(
            body.contains("# TYPE ferry_agent_publish_to_push_seconds histogram"),
            "{body}"
        );
        assert!(body.ends_with("# EOF\n"), "{body}");
    }

    #[tokio::test]
    async fn a_request_head_over_the_cap_is_refused() {
        let mut request = b"GET /healthz HTTP/1.1\r\nX-Pad: ".to_vec();
        request.extend(std::iter::repeat_n(b'a', MAX_HEAD + 10));
        request.extend_from_slice(b"\r\n\r\n");
        let raw = exchange(Arc::new(Readiness::default()), &request).await;
        assert!(raw.starts_with("HTTP/1.1 431 "), "{raw}");
    }

    #[test]
    fn a_fresh_agent_is_not_ready_until_everything_is_up() {
        let r = Readiness::default();
        r.state().providers.insert("ferry".into(), Link::Pending);
        r.state().repos.insert("config".into(), Link::Pending);
        assert_eq!(
            r.reasons(),
            [
                "provider ferry: not connected yet",
                "repository config: not fetched yet"
            ]
        );
        r.connected("ferry");
        r.fetched("config", Ok(()));
        assert!(r.reasons().is_empty());
        r.disconnected("ferry", "the server closed the stream");
        assert_eq!(
            r.reasons(),
            ["provider ferry: not connected: the server closed the stream"]
        );
    }
}
