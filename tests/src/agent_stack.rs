//! A config repo the agent end-to-end tests share: ferry-server, a `git daemon` serving one
//! config repository (fast-forward pushes only), OCI layouts to publish from, and the
//! deployment / ImageWatcher texts the tests write into it.

use std::time::Duration;

use crate::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use crate::git::{self, GitDaemon};
use crate::oci::{ImageSpec, OciLayout};
use crate::process::require_tool;

/// How long a test waits for the agent.
pub const WAIT: Duration = Duration::from_secs(20);

/// A deployment whose container image is `image:tag`.
pub fn deployment(image: &str, tag: &str) -> String {
    format!("apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: {image}:{tag}   # managed by ferry\n")
}

/// One ImageWatcher target on a deployment file.
pub fn target(image: &str, file: &str) -> String {
    format!("    - image: {image}\n      provider: ferry\n      filePath: {file}\n      field: spec.template.spec.containers[0].image\n")
}

/// An ImageWatcher file with `targets`.
pub fn watcher(targets: &[String]) -> String {
    format!(
        "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n{}",
        targets.concat()
    )
}

/// ferry-server, a git daemon with one config repo, and OCI layouts to publish from.
pub struct Stack {
    /// Holds the git daemon's repositories, the layouts and anything a test writes.
    pub tmp: tempfile::TempDir,
    /// The control plane.
    pub server: FerryServer,
    /// Serves the config repo.
    pub daemon: GitDaemon,
    /// The config repo's URL.
    pub url: String,
    /// Where released images come from.
    pub layout: OciLayout,
}

impl Stack {
    /// Starts the server and a git daemon serving `config` with `files` on `main`.
    pub fn new(files: &[(&str, String)]) -> Stack {
        require_tool("git");
        let tmp = tempfile::tempdir().unwrap();
        let server = FerryServer::start();
        let daemon = GitDaemon::start(tmp.path().join("git"));
        let files: Vec<(&str, &str)> = files.iter().map(|(p, c)| (*p, c.as_str())).collect();
        let url = daemon.init_bare_repo_with_files("config", &files);
        // A force push would be refused outright, so "every update landed" also means "no force".
        git::git(
            &daemon.repo_path("config"),
            &["config", "receive.denyNonFastForwards", "true"],
        )
        .unwrap();
        let layout = OciLayout::new(tmp.path().join("images"));
        Stack {
            tmp,
            server,
            daemon,
            url,
            layout,
        }
    }

    /// Starts an agent on the config repo (ImageWatcher `includes`, or `.pipe/` when empty) and
    /// waits until it is connected.
    pub fn agent(&self, includes: &[&str]) -> FerryAgent {
        let agent = FerryAgent::start(&agent_config(&self.server, &self.url, None, includes), &[]);
        assert!(
            agent.wait_for_log("connected", 1, WAIT),
            "agent never connected:\n{}",
            agent.log()
        );
        agent
    }

    /// Publishes a fresh image as `image:tag`.
    pub fn release(&mut self, image: &str, tag: &str) -> String {
        let desc = self.layout.add_image(ImageSpec::default());
        let ref_name = format!("{}-{tag}", image.replace(['/', '.', ':'], "-"));
        self.layout.tag(&desc, &ref_name);
        self.server.publish_ok(&[
            &self.layout.reference(&ref_name),
            "--image",
            image,
            "--tag",
            tag,
        ])
    }

    /// The bare repository the daemon serves.
    pub fn bare(&self) -> std::path::PathBuf {
        self.daemon.repo_path("config")
    }

    /// A file's content on the remote's `main`.
    pub fn remote_file(&self, path: &str) -> String {
        git::git(&self.bare(), &["show", &format!("main:{path}")]).unwrap_or_default()
    }

    /// Commit subjects on the remote's `main`, newest first.
    pub fn remote_log(&self, paths: &[&str]) -> Vec<String> {
        let mut args = vec!["log", "--format=%s", "main", "--"];
        args.extend(paths);
        git::git(&self.bare(), &args)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Waits until `path` on the remote reads `wanted`; fails with the agents' logs otherwise.
    pub fn wait_for_file(&self, path: &str, wanted: &str, agents: &[&FerryAgent]) {
        let ok = wait_until(WAIT, || self.remote_file(path) == wanted);
        let logs: Vec<String> = agents.iter().map(|a| a.log()).collect();
        assert!(
            ok,
            "{path} never became:\n{wanted}\nit is:\n{}\nagent logs:\n{}",
            self.remote_file(path),
            logs.join("\n-----\n")
        );
    }
}

impl Stack {
    /// The commit the remote's `main` points at.
    pub fn remote_main(&self) -> String {
        git::git(&self.bare(), &["rev-parse", "main"])
            .unwrap()
            .trim()
            .to_string()
    }
}
