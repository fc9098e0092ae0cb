//! A test certificate authority and a server certificate it signed, made with `openssl`.

use std::path::Path;
use std::process::Command;

use crate::process::{describe, require_tool, run_combined};

/// `ca.pem` (a CA made for this server only) and `server.pem` + `server.key` (signed by it,
/// for IP 127.0.0.1, serverAuth), in `dir`.
pub fn make_certificates(dir: &Path) {
    let openssl = require_tool("openssl");
    std::fs::write(
        dir.join("server.ext"),
        "basicConstraints = critical, CA:FALSE\n\
         keyUsage = critical, digitalSignature\n\
         extendedKeyUsage = serverAuth\n\
         subjectAltName = IP:127.0.0.1\n",
    )
    .expect("writing server.ext");
    const EC_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    // (arguments split on whitespace, then arguments holding spaces)
    let steps: [(String, &[&str]); 3] = [
        (
            format!("req -x509 -days 2 {EC_KEY} -keyout ca.key -out ca.pem"),
            &[
                "-subj",
                "/CN=ferry-tests CA",
                "-addext",
                "basicConstraints = critical, CA:TRUE",
                "-addext",
                "keyUsage = critical, keyCertSign, cRLSign",
            ],
        ),
        (
            format!("req -new {EC_KEY} -keyout server.key -out server.csr -subj /CN=127.0.0.1"),
            &[],
        ),
        (
            "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
             -extfile server.ext -out server.pem"
                .to_string(),
            &[],
        ),
    ];
    for (args, spaced) in steps {
        let mut cmd = Command::new(&openssl);
        cmd.args(args.split_whitespace())
            .args(spaced)
            .current_dir(dir);
        run_combined(&mut cmd)
            .unwrap_or_else(|e| panic!("making test certificates ({}): {e:#}", describe(&cmd)));
    }
}
