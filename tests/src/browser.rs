//! A real headless Chromium driven over the Chrome DevTools Protocol, for the dashboard tests.
//!
//! Minimal on purpose: a blocking WebSocket to the browser endpoint (tungstenite), one page
//! attached in flat mode, and the few commands the tests need (navigate, evaluate, screenshot).
//! Events the browser sends between answers are skipped, except the console and exceptions,
//! which are kept so a test can show them when it fails.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use base64::Engine;
use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use crate::process::require_tool;

/// A running headless Chromium with one page open.
pub struct Browser {
    child: Child,
    ws: WebSocket<TcpStream>,
    session: String,
    next_id: u64,
    /// Console messages and uncaught exceptions the page reported.
    pub console: Vec<String>,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts Chromium headless with a fresh profile and opens a blank 1280×800 page.
    pub fn start() -> anyhow::Result<Browser> {
        // Debian's `chromium` package; FERRY_CHROMIUM names another build.
        let binary = std::env::var("FERRY_CHROMIUM")
            .unwrap_or_else(|_| require_tool("chromium").display().to_string());
        let profile = tempfile::tempdir()?;
        let child = Command::new(&binary)
            .args([
                "--headless=new",
                // Tests run as root in CI containers, where Chromium's sandbox cannot start.
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--hide-scrollbars",
                "--font-render-hinting=none",
                "--remote-debugging-port=0",
                "--remote-allow-origins=*",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        // Chromium writes the port it bound and the browser endpoint's path here.
        let port_file = profile.path().join("DevToolsActivePort");
        let deadline = Instant::now() + Duration::from_secs(30);
        let (port, path) = loop {
            if let Ok(text) = std::fs::read_to_string(&port_file) {
                let mut lines = text.lines();
                if let (Some(port), Some(path)) = (lines.next(), lines.next()) {
                    break (port.to_string(), path.to_string());
                }
            }
            if Instant::now() > deadline {
                bail!("chromium did not write {} within 30 s", port_file.display());
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let addr = format!("127.0.0.1:{port}");
        let stream = TcpStream::connect(&addr).with_context(|| format!("connecting to {addr}"))?;
        let (ws, _) = tungstenite::client(format!("ws://{addr}{path}"), stream)
            .map_err(|e| anyhow!("DevTools WebSocket handshake: {e}"))?;
        let mut b = Browser {
            child,
            ws,
            session: String::new(),
            next_id: 0,
            console: Vec::new(),
            _profile: profile,
        };
        let target = b.call_browser("Target.createTarget", json!({ "url": "about:blank" }))?;
        let target_id = target["targetId"].as_str().context("targetId")?.to_string();
        let attached = b.call_browser(
            "Target.attachToTarget",
            json!({ "targetId": target_id, "flatten": true }),
        )?;
        b.session = attached["sessionId"]
            .as_str()
            .context("sessionId")?
            .to_string();
        b.call("Page.enable", json!({}))?;
        b.call("Runtime.enable", json!({}))?;
        b.resize(1280, 800)?;
        Ok(b)
    }

    fn send(&mut self, method: &str, params: Value, session: bool) -> anyhow::Result<Value> {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({ "id": id, "method": method, "params": params });
        if session {
            msg["sessionId"] = json!(self.session);
        }
        self.ws
            .send(Message::text(msg.to_string()))
            .with_context(|| format!("sending {method}"))?;
        loop {
            let reply = self
                .ws
                .read()
                .with_context(|| format!("reading the answer to {method}"))?;
            let Message::Text(text) = reply else { continue };
            let v: Value = serde_json::from_str(text.as_str())?;
            if v["id"].as_u64() == Some(id) {
                if let Some(e) = v.get("error") {
                    bail!("{method}: {e}");
                }
                return Ok(v["result"].clone());
            }
            self.note_event(&v);
        }
    }

    fn note_event(&mut self, v: &Value) {
        match v["method"].as_str() {
            Some("Runtime.consoleAPICalled") => self.console.push(format!(
                "console.{}: {}",
                v["params"]["type"], v["params"]["args"]
            )),
            Some("Runtime.exceptionThrown") => self
                .console
                .push(format!("exception: {}", v["params"]["exceptionDetails"])),
            _ => {}
        }
    }

    fn call_browser(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.send(method, params, false)
    }

    /// A command to the page's session.
    pub fn call(&mut self, method: &str, params: Value) -> anyhow::Result<Value> {
        self.send(method, params, true)
    }

    /// Sets the viewport.
    pub fn resize(&mut self, width: u32, height: u32) -> anyhow::Result<()> {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )?;
        Ok(())
    }

    /// Opens `url` and waits until the document has loaded.
    pub fn goto(&mut self, url: &str) -> anyhow::Result<()> {
        let nav = self.call("Page.navigate", json!({ "url": url }))?;
        if let Some(e) = nav.get("errorText").and_then(Value::as_str) {
            bail!("navigating to {url}: {e}");
        }
        let loaded = self.wait_for(
            "document.readyState === 'complete'",
            Duration::from_secs(30),
        )?;
        if !loaded {
            bail!("{url} did not finish loading within 30 s");
        }
        Ok(())
    }

    /// The value of JavaScript `expression` in the page.
    pub fn eval(&mut self, expression: &str) -> anyhow::Result<Value> {
        let r = self.call(
            "Runtime.evaluate",
            json!({ "expression": expression, "returnByValue": true, "awaitPromise": true }),
        )?;
        if let Some(e) = r.get("exceptionDetails") {
            bail!("evaluating {expression}: {e}");
        }
        Ok(r["result"]["value"].clone())
    }

    /// The text of the first element matching `selector` (empty when none).
    pub fn text(&mut self, selector: &str) -> anyhow::Result<String> {
        let expr = format!(
            "(document.querySelector({}) || {{innerText: ''}}).innerText",
            json!(selector)
        );
        Ok(self.eval(&expr)?.as_str().unwrap_or_default().to_string())
    }

    /// Runs `action` (JavaScript that submits a form or clicks a link) and waits until the next
    /// page has loaded.
    pub fn navigate_by(&mut self, action: &str) -> anyhow::Result<()> {
        self.eval(&format!("window.__ferry_old_page = true; {action}"))?;
        let loaded = self.wait_for(
            "window.__ferry_old_page === undefined && document.readyState === 'complete'",
            Duration::from_secs(30),
        )?;
        if !loaded {
            bail!("no new page loaded within 30 s after {action}");
        }
        Ok(())
    }

    /// Polls `expression` until it is true or `timeout` passes; returns the last answer.
    pub fn wait_for(&mut self, expression: &str, timeout: Duration) -> anyhow::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            // A navigation in flight destroys the context mid-call: that answer is "not yet".
            if self.eval(expression).ok() == Some(Value::Bool(true)) {
                return Ok(true);
            }
            if Instant::now() > deadline {
                return Ok(false);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Saves a PNG of the page, `width` wide and as tall as its content (at most 1,600 px).
    pub fn screenshot(&mut self, path: &Path, width: u32) -> anyhow::Result<PathBuf> {
        // Measured in a short viewport: the document is never shorter than the viewport.
        self.resize(width, 200)?;
        let height = self
            .eval("document.documentElement.scrollHeight")?
            .as_u64()
            .unwrap_or(800)
            .clamp(200, 1600) as u32;
        self.resize(width, height)?;
        let shot = self.call("Page.captureScreenshot", json!({ "format": "png" }))?;
        let data = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().context("screenshot data")?)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, data).with_context(|| format!("writing {}", path.display()))?;
        self.resize(1280, 800)?;
        Ok(path.to_path_buf())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.ws.close(None);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
