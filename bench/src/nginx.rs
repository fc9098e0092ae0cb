//! The second ceiling: nginx answering every request with the same manifest bytes and headers
//! from memory (`return 200 '…'`), with as many worker processes as ferry-server has HTTP
//! workers, no access log and unlimited keep-alive. nginx is the C server users put in front
//! of everything, so what it does with the same bytes is a bound ferry's actix-web stack
//! cannot be expected to beat; [`crate::ceiling`] is the same bound within actix-web.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::{bail, Context};
use ferry_tests::ports::{free_port, wait_for_tcp};
use ferry_tests::process::{require_sbin_tool, spawn_logged, ChildGuard};

/// A running nginx; killed when dropped.
pub struct Nginx {
    _child: ChildGuard,
    /// "127.0.0.1:PORT".
    pub addr: String,
}

/// Starts nginx in `dir` serving `manifest` (with its digest) at every path.
pub fn start(dir: &Path, manifest: &[u8], workers: usize) -> anyhow::Result<Nginx> {
    let binary = require_sbin_tool("nginx");
    let body = std::str::from_utf8(manifest).context("the manifest is not UTF-8")?;
    // Inside nginx's single-quoted string `$` starts a variable and `\` an escape; a manifest
    // holding either (or a quote) would be served altered, so refuse rather than measure that.
    if body.contains(['\'', '\\', '$']) {
        bail!("the manifest holds a quote, backslash or dollar sign, which nginx's `return` would not serve verbatim");
    }
    // nginx refuses a configuration parameter longer than its 4 KiB parse buffer.
    if body.len() > 4000 {
        bail!(
            "the manifest is {} bytes; nginx's `return` takes at most about 4,000 in its configuration: benchmark with a smaller image",
            body.len()
        );
    }
    let digest = ferry_proto::digest::sha256_digest(manifest);
    let addr = format!("127.0.0.1:{}", free_port());
    let prefix = dir.display();
    let conf = format!(
        "worker_processes {workers};
daemon off;
pid {prefix}/nginx.pid;
error_log {prefix}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  client_body_temp_path {prefix}/client_body;
  proxy_temp_path {prefix}/proxy;
  fastcgi_temp_path {prefix}/fastcgi;
  uwsgi_temp_path {prefix}/uwsgi;
  scgi_temp_path {prefix}/scgi;
  server {{
    listen {addr};
    location / {{
      default_type application/vnd.oci.image.manifest.v1+json;
      add_header Docker-Content-Digest {digest};
      return 200 '{body}';
    }}
  }}
}}
"
    );
    let conf_path = dir.join("nginx.conf");
    std::fs::write(&conf_path, conf)?;
    let mut cmd = Command::new(binary);
    cmd.arg("-p").arg(dir).arg("-c").arg(&conf_path);
    let child = spawn_logged(cmd, "nginx", dir);
    wait_for_tcp(addr.as_str(), Duration::from_secs(10))
        .with_context(|| format!("nginx did not listen on {addr}:\n{}", child.log_tail(20)))?;
    Ok(Nginx {
        _child: child,
        addr,
    })
}
