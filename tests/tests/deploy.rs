//! Issue 12: the Kubernetes manifests in deploy/kubernetes render with `kubectl kustomize` and
//! pass the Kubernetes schemas (`kubernetes-validate --strict`, which bundles them and works
//! offline). No cluster is needed.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const KUBECTL_HINT: &str = "kubectl is needed to render deploy/kubernetes: \
    `apt-get install kubernetes-client` (Debian; any kubectl >= 1.20 works)";
const VALIDATE_HINT: &str = "kubernetes-validate is needed to check the manifests against the \
    Kubernetes schemas: `pip install kubernetes-validate`";

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("deploy")
        .join("kubernetes")
}

/// Runs `program args`, failing the test with `hint` when the program is not installed.
fn run(program: &str, args: &[&str], hint: &str) -> Output {
    match Command::new(program).args(args).output() {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{program} not found: {hint}"),
        Err(e) => panic!("running {program}: {e}"),
    }
}

/// `kubectl kustomize deploy/kubernetes/DIR`: the rendered YAML stream.
fn render(dir: &str) -> String {
    let path = deploy_dir().join(dir);
    let out = run(
        "kubectl",
        &["kustomize", path.to_str().unwrap()],
        KUBECTL_HINT,
    );
    assert!(
        out.status.success(),
        "kubectl kustomize {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("kustomize prints UTF-8")
}

/// `kubernetes-validate --strict` on `yaml`: Ok, or Err with what it printed.
fn validate(yaml: &str) -> Result<(), String> {
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp file");
    std::fs::write(file.path(), yaml).expect("writing the manifests");
    let out = run(
        "kubernetes-validate",
        &["--strict", "--quiet", file.path().to_str().unwrap()],
        VALIDATE_HINT,
    );
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

/// The `kind/name` of every document in a rendered stream.
fn resources(yaml: &str) -> Vec<String> {
    yaml.split("\n---\n")
        .map(|doc| {
            let kind = doc
                .lines()
                .find_map(|l| l.strip_prefix("kind: "))
                .unwrap_or("?");
            let name = doc
                .lines()
                .skip_while(|l| *l != "metadata:")
                .find_map(|l| l.strip_prefix("  name: "))
                .unwrap_or("?");
            format!("{kind}/{name}")
        })
        .collect()
}

/// Values of `key: value` lines, wherever they are indented.
fn values<'a>(yaml: &'a str, key: &str) -> Vec<&'a str> {
    let prefix = format!("{key}: ");
    yaml.lines()
        .filter_map(|l| {
            l.trim_start()
                .trim_start_matches("- ")
                .strip_prefix(&prefix)
        })
        .collect()
}

#[test]
fn server_base_renders_a_valid_statefulset_with_probes_and_services() {
    let yaml = render("server");
    validate(&yaml).unwrap_or_else(|e| panic!("server base is invalid:\n{e}\n{yaml}"));
    assert_eq!(
        resources(&yaml),
        [
            "Service/ferry-grpc",
            "Service/ferry-registry",
            "StatefulSet/ferry-server"
        ]
    );
    assert_eq!(
        values(&yaml, "path"),
        ["/healthz", "/readyz", "/healthz"],
        "liveness, readiness and startup probes (kustomize sorts the keys)"
    );
    assert_eq!(
        values(&yaml, "mountPath"),
        ["/data", "/tmp", "/etc/ferry/bootstrap-token"]
    );
    // The first token comes from a Secret, through the file the server reads on a first start.
    assert_eq!(
        values(&yaml, "secretName"),
        ["ferry-server-bootstrap-token"]
    );
    assert!(
        yaml.contains("value: /etc/ferry/bootstrap-token/token"),
        "FERRY_BOOTSTRAP_TOKEN_FILE points into the mount: {yaml}"
    );
    assert!(yaml.contains("volumeClaimTemplates:"), "{yaml}");
    assert_eq!(
        values(&yaml, "port"),
        ["50051", "5000", "registry", "registry", "registry"]
    );
}

#[test]
fn agent_base_renders_a_valid_deployment_with_probes_on_the_metrics_port() {
    let yaml = render("agent");
    validate(&yaml).unwrap_or_else(|e| panic!("agent base is invalid:\n{e}\n{yaml}"));
    let resources = resources(&yaml);
    assert_eq!(resources.len(), 2, "{resources:?}");
    assert!(
        resources[0].starts_with("ConfigMap/ferry-agent-config-"),
        "{resources:?}"
    );
    assert_eq!(resources[1], "Deployment/ferry-agent");
    // Both probes on the port --metrics-addr binds (tests/tests/agent_health.rs covers them).
    assert_eq!(
        values(&yaml, "path"),
        ["/healthz", "/readyz"],
        "liveness and readiness probes"
    );
    assert_eq!(values(&yaml, "port"), ["metrics", "metrics"]);
    assert!(
        yaml.contains("- --metrics-addr\n        - 0.0.0.0:9090\n"),
        "{yaml}"
    );
    assert_eq!(values(&yaml, "containerPort"), ["9090"]);
    assert_eq!(
        values(&yaml, "secretName"),
        [
            "ferry-agent-token",
            "ferry-agent-signing-key",
            "ferry-agent-git"
        ]
    );
}

#[test]
fn example_overlay_is_valid_and_every_reference_resolves() {
    let yaml = render("example");
    validate(&yaml).unwrap_or_else(|e| panic!("example overlay is invalid:\n{e}\n{yaml}"));
    let resources = resources(&yaml);
    // Generated names carry a content hash; the Deployment must point at those exact names.
    for secret in values(&yaml, "secretName") {
        assert!(
            resources.contains(&format!("Secret/{secret}")),
            "secretName {secret} is not among {resources:?}"
        );
    }
    let config_map = values(&yaml, "name")
        .into_iter()
        .find(|n| n.starts_with("ferry-agent-config-"))
        .expect("the agent's ConfigMap");
    assert!(
        resources.contains(&format!("ConfigMap/{config_map}")),
        "{resources:?}"
    );
    assert!(
        yaml.contains("remote: ssh://git@git.example.com/platform/clusters.git"),
        "the overlay's agent.yaml replaces the base's"
    );
    assert_eq!(
        values(&yaml, "image"),
        [
            "registry.example.com/ferry/ferry-agent:0.1.0",
            "registry.example.com/ferry/ferry-server:0.1.0"
        ]
    );
    assert_eq!(
        values(&yaml, "namespace")
            .iter()
            .filter(|n| **n == "ferry")
            .count(),
        9
    );
    // Both workloads: non-root, read-only root filesystem, no privilege escalation.
    assert_eq!(values(&yaml, "runAsNonRoot"), ["true", "true"]);
    assert_eq!(values(&yaml, "readOnlyRootFilesystem"), ["true", "true"]);
    assert_eq!(
        values(&yaml, "allowPrivilegeEscalation"),
        ["false", "false"]
    );
}

#[test]
fn the_validator_rejects_a_manifest_that_breaks_the_schema() {
    // Guards the tests above: a validator that accepted anything would make them pass vacuously.
    let broken = render("server").replace("replicas: 1", "replicas: one");
    let err = validate(&broken).expect_err("replicas: one must fail the StatefulSet schema");
    assert!(err.contains("replicas"), "{err}");
    let unknown = render("server").replace("serviceName:", "servicename:");
    validate(&unknown).expect_err("--strict must refuse an unknown field");
}
