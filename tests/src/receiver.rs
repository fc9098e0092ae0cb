//! A webhook receiver written for the tests: an HTTP/1.1 server on a loopback port that records
//! every request (method, path, headers, body) and answers as the test says: a status, or
//! never (it holds the connection open, as a hung receiver does).
//!
//! It stands in for peers that cannot run here (Argo CD's API server, Slack, a CI webhook);
//! tests check what was sent against those peers' documented APIs.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request as received.
#[derive(Debug, Clone)]
pub struct Received {
    /// `POST`, `GET` …
    pub method: String,
    /// The request target: path and query.
    pub target: String,
    /// Header names in lower case → value (the last of repeated ones).
    pub headers: BTreeMap<String, String>,
    /// The body (by Content-Length).
    pub body: Vec<u8>,
}

impl Received {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header's value, or "".
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }
}

/// How the receiver answers the request numbered `n` (from 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// This status with an empty JSON body.
    Status(u16),
    /// Never: read the request, then hold the connection until the receiver is dropped.
    Hang,
}

/// A running receiver; it stops accepting when dropped (held connections are closed then).
pub struct Receiver {
    port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    held: Arc<Mutex<Vec<TcpStream>>>,
}

impl Receiver {
    /// Starts a receiver answering request `n` with `answer(n)`.
    pub fn start(answer: impl Fn(usize) -> Answer + Send + Sync + 'static) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the receiver");
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let held: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let answer = Arc::new(answer);
        let (rec, hold) = (received.clone(), held.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (rec, hold, answer) = (rec.clone(), hold.clone(), answer.clone());
                std::thread::spawn(move || serve(conn, &rec, &hold, &*answer));
            }
        });
        Receiver {
            port,
            received,
            held,
        }
    }

    /// `http://127.0.0.1:PORT` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        for c in self.held.lock().unwrap().drain(..) {
            let _ = c.shutdown(std::net::Shutdown::Both);
        }
        // Unblock the accept loop; it ends on the error of the next accept or never matters.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    conn: TcpStream,
    received: &Mutex<Vec<Received>>,
    held: &Mutex<Vec<TcpStream>>,
    answer: &(dyn Fn(usize) -> Answer + Send + Sync),
) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(conn.try_clone().expect("cloning the connection"));
    let mut conn = conn;
    // Keep-alive: one connection may carry several requests.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let (method, target) = (
            parts.next().unwrap_or("").to_string(),
            parts.next().unwrap_or("").to_string(),
        );
        let mut headers = BTreeMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; len];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let n = {
            let mut r = received.lock().unwrap();
            r.push(Received {
                method,
                target,
                headers,
                body,
            });
            r.len() - 1
        };
        match answer(n) {
            Answer::Status(code) => {
                let reply = format!(
                    "HTTP/1.1 {code} X\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
                );
                if conn.write_all(reply.as_bytes()).is_err() {
                    return;
                }
            }
            Answer::Hang => {
                held.lock().unwrap().push(conn);
                return;
            }
        }
    }
}

/// Checks every body against the JSON Schema (draft 2020-12) at `schema`, with Python's
/// `jsonschema` (scripts/test.sh installs it from PyPI); `Err` lists each failure.
pub fn check_schema(schema: &std::path::Path, bodies: &[serde_json::Value]) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("bodies.json");
    std::fs::write(&file, serde_json::to_vec(bodies).unwrap()).map_err(|e| e.to_string())?;
    let script = "import json, sys\n\
try:\n    import jsonschema\n\
except ImportError:\n    sys.exit('python3 jsonschema is missing: python3 -m pip install jsonschema (scripts/test.sh does)')\n\
schema = json.load(open(sys.argv[1]))\n\
v = jsonschema.Draft202012Validator(schema)\n\
bad = [f'body {i}: {e.message}' for i, b in enumerate(json.load(open(sys.argv[2]))) for e in v.iter_errors(b)]\n\
print('\\n'.join(bad)); sys.exit(1 if bad else 0)\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(schema)
        .arg(&file)
        .output()
        .map_err(|e| {
            format!("running python3: {e} (install python3 and python3 -m pip install jsonschema)")
        })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
