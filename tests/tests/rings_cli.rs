//! Issue 10, rings, from the command line: the real `ferry` binary against a real ferry-server.
//! Pipeline files refused with FILE:LINE:COL and nothing stored; apply, list, show; every move
//! verb printing what moved (or "nothing moved: …"); `version next` and `needs-build` computed
//! from the version and revision labels of published images, with their exit codes.

use std::collections::BTreeMap;
use std::process::{Command, Output};

use ferry_tests::ferry::{binary, FerryServer};
use ferry_tests::oci::{ImageSpec, OciLayout};

const API: &str = "registry.example.com/shop/api";
const WEB: &str = "registry.example.com/shop/web";
const VERSION: &str = "org.opencontainers.image.version";
const REVISION: &str = "org.opencontainers.image.revision";

const PIPELINE: &str = "\
apiVersion: ferry.dev/v1
kind: Pipeline
metadata: {name: shop}
spec:
  rings: [testers, users]
  images: [registry.example.com/shop/api, registry.example.com/shop/web]
";

/// A server and a token that may publish, promote and read.
struct Setup {
    server: FerryServer,
    token: String,
    dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Setup {
        let server = FerryServer::start();
        let token = server
            .token_command(&[
                "create",
                "--role",
                "publisher,promoter,reader",
                "--name",
                "ci",
            ])
            .trim()
            .to_string();
        Setup {
            server,
            token,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// `ferry ARGS… --server <server>` with the token, no FERRY_* settings from outside.
    fn ferry(&self, args: &[&str]) -> Output {
        Command::new(binary("ferry"))
            .args(args)
            .args(["--server", &self.server.grpc_url()])
            .env("FERRY_TOKEN", &self.token)
            .env_remove("FERRY_SERVER")
            .env_remove("FERRY_TOKEN_FILE")
            .env_remove("FERRY_CA_FILE")
            .env_remove("FERRY_LOG")
            .env("NO_COLOR", "1")
            .output()
            .expect("running ferry")
    }

    /// [`Setup::ferry`], which must exit 0; returns stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ferry(args);
        assert!(
            out.status.success(),
            "ferry {args:?} failed ({}):\n{}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            self.server.log()
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Writes the pipeline file `name` and applies it.
    fn apply(&self, name: &str, text: &str) -> Output {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        self.ferry(&["pipeline", "apply", "-f", path.to_str().unwrap()])
    }

    /// Publishes a new image of `image` with `labels` as `ferry publish oci:DIR:TAG` (extra
    /// `args` after it); returns the digest and what went to stderr (ring moves).
    fn publish(
        &self,
        image: &str,
        tag: &str,
        labels: &[(&str, &str)],
        args: &[&str],
    ) -> (String, String) {
        let dir = self.dir.path().join(format!("layout-{}", rand_name()));
        let mut layout = OciLayout::new(&dir);
        let desc = layout.add_image(ImageSpec {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            ..Default::default()
        });
        layout.tag(&desc, tag);
        layout.write();
        let source = layout.reference(tag);
        let mut all = vec!["publish", source.as_str(), "--image", image];
        all.extend_from_slice(args);
        let out = self.ferry(&all);
        assert!(
            out.status.success(),
            "ferry publish failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        (
            String::from_utf8(out.stdout).unwrap().trim().to_string(),
            String::from_utf8(out.stderr).unwrap(),
        )
    }
}

fn rand_name() -> String {
    hex::encode(ferry_tests::oci::random_bytes(6))
}

fn short(digest: &str) -> &str {
    &digest[..7 + 12]
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn a_bad_pipeline_file_names_line_and_column_and_nothing_is_stored() {
    let s = Setup::start();
    let bad = PIPELINE.replace("rings: [testers, users]", "rings: [testers, post]");
    let out = s.apply("shop.yaml", &bad);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    let path = s.dir.path().join("shop.yaml");
    assert!(
        err.starts_with(&format!(
            "ferry: error: {}:5:20: spec.rings[1]: \"post\" is reserved",
            path.display()
        )),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    let unknown = PIPELINE.replace("metadata: {name: shop}", "metadata: {name: shop, team: x}");
    let err = stderr(&s.apply("shop.yaml", &unknown));
    assert!(
        err.contains("shop.yaml:3:24: metadata.team: unknown field `team`"),
        "{err}"
    );
    assert_eq!(
        s.ok(&["pipeline", "list"]),
        "no pipelines: create one with ferry pipeline apply -f FILE\n"
    );
    let seq_before = s.server.head_seq();
    assert_eq!(seq_before, 0, "a refused file appends no event");
}

#[test]
fn apply_list_and_show() {
    let s = Setup::start();
    let out = s.apply("shop.yaml", PIPELINE);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).starts_with("pipeline shop applied: generation 1 (event seq "),
        "{}",
        stdout(&out)
    );
    let again = s.apply("shop.yaml", PIPELINE);
    assert_eq!(
        stdout(&again),
        "nothing changed: pipeline shop already has this spec (generation 1)\n"
    );
    let list = s.ok(&["pipeline", "list"]);
    let row = list.lines().nth(1).unwrap_or_default();
    assert!(
        row.starts_with("shop  1           testers → users  2"),
        "{list}"
    );
    let (digest, moves) = s.publish(API, "1.0.0", &[(VERSION, "1.0.0")], &[]);
    assert!(
        moves.contains(&format!(
            "moved shop/ante {API}: (empty) → {} (1.0.0)",
            short(&digest)
        )),
        "a publish lands in ante and says so: {moves}"
    );
    let show = s.ok(&["pipeline", "show", "shop"]);
    let ante_api = show
        .lines()
        .find(|l| l.starts_with("ante") && l.contains(API))
        .unwrap_or_else(|| panic!("{show}"));
    assert!(
        ante_api.contains("1.0.0") && ante_api.contains(short(&digest)),
        "{show}"
    );
    let testers_api = show
        .lines()
        .find(|l| l.starts_with("testers") && l.contains(API))
        .unwrap();
    assert!(!testers_api.contains("sha256:"), "testers is empty: {show}");
    // --history lists the publish that moved ante.
    let history = s.ok(&["pipeline", "show", "shop", "--history"]);
    assert!(
        history.contains(&format!("history of {API} in ante:")),
        "{history}"
    );
}

#[test]
fn move_verbs_print_what_moved() {
    let s = Setup::start();
    assert!(s.apply("shop.yaml", PIPELINE).status.success());
    let (v1, _) = s.publish(API, "1.0.0", &[(VERSION, "1.0.0")], &[]);
    let promoted = s.ok(&["promote", API, "--to", "testers"]);
    assert_eq!(
        promoted,
        format!(
            "moved shop/testers {API}: (empty) → {} (1.0.0)\n",
            short(&v1)
        )
    );
    let again = s.ok(&["promote", API, "--to", "testers"]);
    assert!(again.starts_with("nothing moved: "), "{again}");

    // publish --to testers moves ante and testers in the publish.
    let (v2, moves) = s.publish(API, "1.1.0", &[(VERSION, "1.1.0")], &["--to", "testers"]);
    assert!(
        moves.contains(&format!(
            "moved shop/testers {API}: {} → {} (1.1.0)",
            short(&v1),
            short(&v2)
        )),
        "{moves}"
    );

    let shifted = s.ok(&["shift", "shop"]);
    assert!(
        shifted.contains(&format!(
            "moved shop/users {API}: (empty) → {} (1.1.0)",
            short(&v2)
        )),
        "{shifted}"
    );
    let unshifted = s.ok(&["unshift", "shop"]);
    assert!(
        unshifted.contains(&format!("moved shop/users {API}: {} → (empty)", short(&v2))),
        "{unshifted}"
    );

    let rolled = s.ok(&["rollback", API, "--ring", "testers", "--reason", "slow"]);
    assert!(
        rolled.contains(&format!(
            "moved shop/testers {API}: {} → {}",
            short(&v2),
            short(&v1)
        )),
        "{rolled}"
    );

    let rejected = s.ok(&["reject", &format!("{API}@{v2}"), "--reason", "leaks memory"]);
    assert!(
        rejected.starts_with(&format!(
            "nothing moved: rejected {API}@{} (leaks memory)",
            short(&v2)
        )),
        "{rejected}"
    );
    let refused = s.ferry(&["promote", &format!("{API}@{v2}"), "--to", "testers"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("reject"), "{}", stderr(&refused));

    let status = s.ok(&["status", "shop"]);
    assert!(status.contains("rejected:"), "{status}");
    assert!(status.contains("leaks memory"), "{status}");
    assert!(
        status.contains("hold: "),
        "rollback holds testers: {status}"
    );
    let by_image = s.ok(&["status", WEB]);
    assert!(
        !by_image.lines().any(|l| l.trim_start().starts_with(API)),
        "status IMAGE shows only its rows: {by_image}"
    );
    assert!(
        by_image.contains("hold: "),
        "holds are per ring: {by_image}"
    );

    // The order rule, then --force past it, recorded with its reason.
    let (v3, _) = s.publish(API, "1.2.0", &[(VERSION, "1.2.0")], &[]);
    let v3_ref = format!("{API}@{v3}");
    let out_of_order = s.ferry(&["promote", &v3_ref, "--to", "users"]);
    assert_eq!(out_of_order.status.code(), Some(1));
    let forced = s.ok(&[
        "promote", &v3_ref, "--to", "users", "--force", "--reason", "hotfix",
    ]);
    assert_eq!(
        forced,
        format!("moved shop/users {API}: (empty) → {} (1.2.0)\n", short(&v3))
    );
    let history = s.ok(&["pipeline", "show", "shop", "--history"]);
    assert!(history.contains("(hotfix) FORCED"), "{history}");

    let forced = s.ferry(&["promote", API, "--to", "users", "--force"]);
    assert_eq!(forced.status.code(), Some(2), "clap refuses --force alone");
    assert!(stderr(&forced).contains("--reason"), "{}", stderr(&forced));
}

#[test]
fn version_next_and_needs_build_read_the_labels() {
    let s = Setup::start();
    assert!(s.apply("shop.yaml", PIPELINE).status.success());
    let r0 = "1111111111111111111111111111111111111111";
    let r1 = "2222222222222222222222222222222222222222";
    s.publish(API, "1.2.0", &[(VERSION, "1.2.0"), (REVISION, r0)], &[]);
    s.ok(&["promote", API, "--to", "testers"]);
    s.ok(&["promote", API, "--to", "users"]);
    s.publish(
        API,
        "1.2.3",
        &[
            (VERSION, "1.2.3"),
            (REVISION, r1),
            ("dependency.web", "2.0.0"),
        ],
        &["--to", "testers"],
    );

    let next = |args: &[&str]| {
        let mut all = vec!["version", "next", API];
        all.extend_from_slice(args);
        s.ferry(&all)
    };
    let out = next(&["--ring", "testers"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "1.3.0\n", "stdout is the version alone");
    assert!(stderr(&out).contains("same minor"), "{}", stderr(&out));
    assert_eq!(stdout(&next(&["--ring", "users"])), "1.2.1\n");
    assert_eq!(stdout(&next(&["--ring", "testers", "--major"])), "2.0.0\n");
    // ante runs 1.2.3 too (a publish lands there first), as does testers: a new minor.
    assert_eq!(stdout(&next(&["--ring", "ante"])), "1.3.0\n");
    let bad = next(&["--ring", "prod"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("ante, testers, users, post"),
        "{}",
        stderr(&bad)
    );

    let needs = |args: &[&str]| {
        let mut all = vec!["needs-build", API];
        all.extend_from_slice(args);
        s.ferry(&all)
    };
    let same = needs(&[
        "--ring",
        "testers",
        "--revision",
        &r1[..7],
        "--dependency",
        "web=2.0.0",
    ]);
    assert_eq!(same.status.code(), Some(1), "{}", stdout(&same));
    assert!(
        stdout(&same).starts_with("no build needed: ring testers runs"),
        "{}",
        stdout(&same)
    );
    let other = needs(&["--ring", "testers", "--revision", r0]);
    assert_eq!(other.status.code(), Some(0), "{}", stdout(&other));
    assert!(
        stdout(&other).contains("built from revision"),
        "{}",
        stdout(&other)
    );
    let dep = needs(&[
        "--ring",
        "testers",
        "--revision",
        r1,
        "--dependency",
        "web=2.1.0",
    ]);
    assert_eq!(dep.status.code(), Some(0));
    assert!(
        stdout(&dep).contains("dependency.web=\"2.0.0\", not \"2.1.0\""),
        "{}",
        stdout(&dep)
    );
    let empty = needs(&["--ring", "post", "--revision", r1]);
    assert_eq!(empty.status.code(), Some(0));
    assert!(
        stdout(&empty).contains("runs nothing"),
        "{}",
        stdout(&empty)
    );
    let error = needs(&["--ring", "prod", "--revision", r1]);
    assert_eq!(
        error.status.code(),
        Some(2),
        "errors exit 2: {}",
        stderr(&error)
    );

    // An image whose releases carry no version label: an error, not a first build.
    s.publish(WEB, "latest", &[], &[]);
    let unversioned = s.ferry(&["version", "next", WEB, "--ring", "ante"]);
    assert_eq!(unversioned.status.code(), Some(1));
    assert!(
        stderr(&unversioned).contains("has no org.opencontainers.image.version label"),
        "{}",
        stderr(&unversioned)
    );
}
