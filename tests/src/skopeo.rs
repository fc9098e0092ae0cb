//! Thin `skopeo` wrappers. Registries in tests speak plain HTTP, so every `docker://`
//! reference gets `--*tls-verify=false`; `--insecure-policy` keeps the host's
//! `/etc/containers/policy.json` out of the picture. Errors carry skopeo's stderr.

use std::process::Command;

use anyhow::{Context, Result};
use serde_json::Value;

use crate::process::{describe, require_tool, run};

fn skopeo() -> Command {
    Command::new(require_tool("skopeo"))
}

fn is_registry(reference: &str) -> bool {
    reference.starts_with("docker://")
}

/// `skopeo copy --preserve-digests SRC DST`: one image (for an index, only the child for
/// this machine's platform). `--preserve-digests` makes skopeo fail rather than rewrite a
/// manifest; without it, copying to an `oci:` destination gzips the uncompressed layers of
/// [`crate::oci`] layouts and so changes every digest.
pub fn copy(src: &str, dst: &str) -> Result<String> {
    copy_with(src, dst, &["--preserve-digests"])
}

/// `skopeo copy --all --preserve-digests SRC DST`: an index with all its children.
pub fn copy_all(src: &str, dst: &str) -> Result<String> {
    copy_with(src, dst, &["--all", "--preserve-digests"])
}

/// `skopeo copy EXTRA… SRC DST` with only the TLS and policy flags added.
pub fn copy_with(src: &str, dst: &str, extra_args: &[&str]) -> Result<String> {
    let mut cmd = skopeo();
    cmd.args(["--insecure-policy", "copy"]);
    if is_registry(src) {
        cmd.arg("--src-tls-verify=false");
    }
    if is_registry(dst) {
        cmd.arg("--dest-tls-verify=false");
    }
    cmd.args(extra_args).args([src, dst]);
    run(&mut cmd)
}

fn inspect_command(reference: &str, extra_args: &[&str]) -> Command {
    let mut cmd = skopeo();
    cmd.arg("inspect");
    if is_registry(reference) {
        cmd.arg("--tls-verify=false");
    }
    cmd.args(extra_args).arg(reference);
    cmd
}

/// `skopeo inspect EXTRA… REF` parsed as JSON (e.g. `extra_args = &["--config"]`). Without
/// `--raw`, an index resolves to the child for this machine's platform.
pub fn inspect(reference: &str, extra_args: &[&str]) -> Result<Value> {
    let mut cmd = inspect_command(reference, extra_args);
    let out = run(&mut cmd)?;
    serde_json::from_str(&out)
        .with_context(|| format!("{} printed non-JSON: {out}", describe(&cmd)))
}

/// `skopeo inspect --raw REF`: the manifest bytes exactly as served (no trailing newline).
pub fn inspect_raw(reference: &str) -> Result<Vec<u8>> {
    let mut cmd = inspect_command(reference, &["--raw"]);
    let output = cmd
        .output()
        .with_context(|| format!("spawning {}", describe(&cmd)))?;
    if !output.status.success() {
        anyhow::bail!(
            "{} failed ({}):\nstderr: {}",
            describe(&cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim_end()
        );
    }
    Ok(output.stdout)
}

/// `skopeo list-tags REF` (REF is `docker://HOST/REPO`, no tag): the tags, in the order
/// the registry returned them.
pub fn list_tags(reference: &str) -> Result<Vec<String>> {
    let mut cmd = skopeo();
    cmd.arg("list-tags");
    if is_registry(reference) {
        cmd.arg("--tls-verify=false");
    }
    cmd.arg(reference);
    let out = run(&mut cmd)?;
    let v: Value =
        serde_json::from_str(&out).with_context(|| format!("list-tags printed non-JSON: {out}"))?;
    let tags = v["Tags"]
        .as_array()
        .with_context(|| format!("no \"Tags\" array in {out}"))?;
    Ok(tags
        .iter()
        .filter_map(|t| t.as_str().map(String::from))
        .collect())
}
