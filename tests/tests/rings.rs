//! Issue 10 end to end: versions move through the rings of a pipeline, and three sites of one
//! config repo (`environments/{dev,staging,prod}`), each followed by its own ferry-agent with its
//! own cluster name, get exactly the commits the moves call for. Real peers throughout: a
//! docker-registry origin (skopeo pushes each release there; `ferry publish` records it), a
//! ferry-server, `git daemon`, and the `ferry` CLI for every verb. What each cluster runs is read
//! back from the agents' own reports (GetPipeline).

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ferry_proto::pb;
use ferry_tests::ferry::{agent_config, wait_until, FerryAgent, FerryServer};
use ferry_tests::git::{self, GitDaemon, HeldHook};
use ferry_tests::oci::{ImageSpec, OciLayout};
use ferry_tests::origin::OriginRegistry;
use ferry_tests::process::require_tool;
use ferry_tests::skopeo;

const VERSION: &str = "org.opencontainers.image.version";
const WAIT: Duration = Duration::from_secs(60);

/// The sites: (environment directory, cluster name, ring it follows).
const SITES: [(&str, &str, &str); 3] = [
    ("dev", "dev-cluster", "developers"),
    ("staging", "staging-cluster", "testers"),
    ("prod", "prod-cluster", "users"),
];

fn kustomization(images: &[&str]) -> String {
    let mut s = String::from(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\nimages:\n",
    );
    for i in images {
        s.push_str(&format!("  - name: {i}\n    newTag: 0.0.0\n"));
    }
    s
}

/// One ImageWatcher file per site: every image of `images`, in that site's kustomization,
/// following `ring` of `pipeline`.
fn watcher(env: &str, ring: &str, pipeline: &str, images: &[&str]) -> String {
    let mut s = String::from(
        "apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  commitMessage: \"{{ring}}: {{image}} {{version}}\"\n  targets:\n",
    );
    for i in images {
        s.push_str(&format!(
            "    - image: {i}\n      provider: ferry\n      filePath: environments/{env}/kustomization.yaml\n      kustomize: {{}}\n      ring: {ring}\n      pipeline: {pipeline}\n"
        ));
    }
    s
}

/// The agent config for one site: the shared repo, only that site's ImageWatcher file, and its
/// cluster name (`spec.name`).
fn site_config(server: &FerryServer, url: &str, env: &str, cluster: &str) -> String {
    let include = format!(".pipe/{env}.yaml");
    agent_config(server, url, None, &[&include]).replacen(
        "spec:\n",
        &format!("spec:\n  name: {cluster}\n"),
        1,
    )
}

struct Rig {
    tmp: tempfile::TempDir,
    origin: OriginRegistry,
    server: FerryServer,
    url: String,
    /// The config repo as `git daemon` serves it.
    bare: std::path::PathBuf,
    agents: Vec<FerryAgent>,
    layout: OciLayout,
    promoter: String,
    runtime: tokio::runtime::Runtime,
}

impl Rig {
    /// A server, an origin, a config repo with the three sites for `images` following the rings
    /// of `pipeline` (applied from `pipeline_yaml`), and one agent per site.
    fn start(pipeline: &str, pipeline_yaml: &str, images: &[&str]) -> Rig {
        for tool in ["skopeo", "git"] {
            require_tool(tool);
        }
        let tmp = tempfile::tempdir().unwrap();
        let origin = OriginRegistry::start();
        let server = FerryServer::start();
        let full: Vec<String> = images
            .iter()
            .map(|i| format!("{}/{i}", origin.addr()))
            .collect();
        let full_refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let daemon = GitDaemon::start(tmp.path().join("git"));
        let mut files = Vec::new();
        for (env, _, ring) in SITES {
            files.push((
                format!("environments/{env}/kustomization.yaml"),
                kustomization(&full_refs),
            ));
            files.push((
                format!(".pipe/{env}.yaml"),
                watcher(env, ring, pipeline, &full_refs),
            ));
        }
        let file_refs: Vec<(&str, &str)> = files
            .iter()
            .map(|(p, c)| (p.as_str(), c.as_str()))
            .collect();
        let url = daemon.init_bare_repo_with_files("config", &file_refs);
        let bare = daemon.repo_path("config");
        std::mem::forget(daemon); // lives as long as the test process
        let promoter = server
            .token_command(&["create", "--role", "promoter", "--name", "release-bot"])
            .trim()
            .to_string();
        let file = tmp.path().join("pipeline.yaml");
        std::fs::write(&file, pipeline_yaml.replace("ORIGIN", &origin.addr())).unwrap();
        server.cli_ok(
            &["pipeline", "apply", "-f", file.to_str().unwrap()],
            &promoter,
        );
        let agents = SITES
            .iter()
            .map(|(env, cluster, _)| {
                let a = FerryAgent::start(&site_config(&server, &url, env, cluster), &[]);
                assert!(
                    a.wait_for_log("connected", 1, WAIT),
                    "agent {cluster} never connected:\n{}",
                    a.log()
                );
                a
            })
            .collect();
        let layout = OciLayout::new(tmp.path().join("img"));
        Rig {
            tmp,
            origin,
            server,
            url,
            bare,
            agents,
            layout,
            promoter,
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
        }
    }

    fn image(&self, name: &str) -> String {
        format!("{}/{name}", self.origin.addr())
    }

    /// Builds `name:version` with `labels` (and the version label), pushes it to the origin and
    /// publishes it (into ante). Returns its digest.
    fn release(&mut self, name: &str, version: &str, labels: &[(&str, &str)]) -> String {
        let mut all: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        all.insert(VERSION.into(), version.into());
        all.insert(
            "org.opencontainers.image.revision".into(),
            format!("rev-{name}-{version}"),
        );
        let desc = self.layout.add_image(ImageSpec {
            labels: all,
            ..ImageSpec::default()
        });
        self.layout.tag(&desc, version);
        skopeo::copy(
            &self.layout.reference(version),
            &self.origin.docker_ref(&format!("{name}:{version}")),
        )
        .unwrap();
        let image = self.image(name);
        self.server
            .publish_ok(&[&format!("docker://{image}:{version}"), "--insecure"])
    }

    fn ferry(&self, args: &[&str]) -> String {
        self.server.cli_ok(args, &self.promoter)
    }

    fn ferry_fails(&self, args: &[&str]) -> String {
        let out = self.server.cli_as(args, Some(&self.promoter));
        assert!(
            !out.status.success(),
            "ferry {args:?} should have been refused:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn status(&self, pipeline: &str) -> pb::PipelineStatus {
        self.runtime.block_on(async {
            self.server
                .client()
                .await
                .get_pipeline(pb::GetPipelineRequest {
                    name_or_image: pipeline.into(),
                    history: false,
                    targets: false,
                })
                .await
                .map(|answer| {
                    let mut status = answer.into_inner();
                    ferry_proto::status::resolve_cluster_names(&mut status);
                    status
                })
                .expect("GetPipeline")
        })
    }

    /// Waits until every agent caught up with the head and reported it, and the remote stopped
    /// moving; returns a fresh clone.
    fn settle(&self, pipeline: &str) -> std::path::PathBuf {
        let head = self.server.head_seq();
        for a in &self.agents {
            assert!(
                a.wait_caught_up(&self.server, WAIT),
                "agent behind the head:\n{}",
                a.log()
            );
        }
        let reported = wait_until(WAIT, || {
            let st = self.status(pipeline);
            SITES.iter().all(|(_, cluster, _)| {
                st.rings
                    .iter()
                    .flat_map(|r| &r.cluster_summaries)
                    .any(|c| c.cluster == *cluster && c.cursor >= head)
            })
        });
        assert!(
            reported,
            "not every cluster reported seq {head}: {:?}\n{}",
            self.status(pipeline),
            self.agents
                .iter()
                .map(|a| a.log())
                .collect::<Vec<_>>()
                .join("\n-----\n")
        );
        let dir = self.tmp.path().join(format!("clone-{head}"));
        let _ = std::fs::remove_dir_all(&dir);
        git::clone(&self.url, &dir).unwrap();
        dir
    }
}

/// The `newTag` of `image` in a site's kustomization.
fn tag_in(clone: &Path, env: &str, image: &str) -> String {
    let text =
        std::fs::read_to_string(clone.join(format!("environments/{env}/kustomization.yaml")))
            .unwrap();
    let at = text
        .find(&format!("name: {image}\n"))
        .unwrap_or_else(|| panic!("{image} not in {env}:\n{text}"));
    let rest = &text[at..];
    let line = rest.lines().nth(1).unwrap();
    line.trim().trim_start_matches("newTag:").trim().to_string()
}

/// Commits that touched each site's directory, oldest first, per environment.
fn commits_per_site(clone: &Path) -> BTreeMap<String, usize> {
    SITES
        .iter()
        .map(|(env, _, _)| {
            let out = git::git(
                clone,
                &["log", "--format=%H", "--", &format!("environments/{env}")],
            )
            .unwrap();
            (env.to_string(), out.lines().count())
        })
        .collect()
}

/// What each cluster reports for `image` without an error (cluster → digest), from
/// GetPipeline's summaries: `running`, less the failing targets (the only rows of `clusters`).
fn reported(st: &pb::PipelineStatus, image: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for r in &st.rings {
        let failing: std::collections::HashSet<(&str, &str)> = r
            .clusters
            .iter()
            .filter(|c| c.image == image && !c.error.is_empty())
            .map(|c| (c.cluster.as_str(), c.digest.as_str()))
            .collect();
        for d in r.running.iter().filter(|d| d.image == image) {
            for c in &d.clusters {
                if !failing.contains(&(c.as_str(), d.digest.as_str())) {
                    out.insert(c.clone(), d.digest.clone());
                }
            }
        }
    }
    out
}

fn pointer<'a>(st: &'a pb::PipelineStatus, ring: &str, image: &str) -> Option<&'a pb::RingPointer> {
    st.rings
        .iter()
        .find(|r| r.name == ring)?
        .pointers
        .iter()
        .find(|p| p.image == image)
}

const SHOP: &str = "apiVersion: ferry.dev/v1\nkind: Pipeline\nmetadata: {name: shop}\nspec:\n  rings: [developers, testers, users]\n  images: [ORIGIN/shop/web]\n";

/// Must-show 1: publish, promote through the rings, roll back, shift and unshift; after each,
/// exactly the expected commits in each overlay and nothing else, and every cluster's report.
#[test]
fn versions_move_through_three_sites_exactly_as_the_rings_say() {
    let mut rig = Rig::start("shop", SHOP, &["shop/web"]);
    let web = rig.image("shop/web");
    let clone = rig.settle("shop");
    let mut expected = commits_per_site(&clone); // the initial commit touches every site
    let step = |rig: &Rig,
                what: &str,
                moved: &[&str],
                tags: [&str; 3],
                expected: &mut BTreeMap<String, usize>| {
        let clone = rig.settle("shop");
        for env in moved {
            *expected.get_mut(*env).unwrap() += 1;
        }
        assert_eq!(&commits_per_site(&clone), expected, "after {what}");
        for ((env, _, _), tag) in SITES.iter().zip(tags) {
            assert_eq!(tag_in(&clone, env, &web), tag, "{env} after {what}");
        }
    };

    let v100 = rig.release("shop/web", "1.0.0", &[]);
    let st = rig.status("shop");
    assert_eq!(
        pointer(&st, "ante", &web).unwrap().digest,
        v100,
        "publish puts it in ante"
    );
    step(
        &rig,
        "publish 1.0.0",
        &[],
        ["0.0.0", "0.0.0", "0.0.0"],
        &mut expected,
    );

    let out = rig.ferry(&["promote", &web, "--to", "developers"]);
    assert!(
        out.contains("developers"),
        "promote prints what moved: {out}"
    );
    step(
        &rig,
        "promote developers",
        &["dev"],
        ["1.0.0", "0.0.0", "0.0.0"],
        &mut expected,
    );
    rig.ferry(&["promote", &web, "--to", "testers"]);
    step(
        &rig,
        "promote testers",
        &["staging"],
        ["1.0.0", "1.0.0", "0.0.0"],
        &mut expected,
    );
    rig.ferry(&["promote", &web, "--to", "users"]);
    step(
        &rig,
        "promote users",
        &["prod"],
        ["1.0.0", "1.0.0", "1.0.0"],
        &mut expected,
    );

    // The commit says which ring and version (the {{ring}} and {{version}} templates).
    let clone = rig.settle("shop");
    let subject = git::git(
        &clone,
        &["log", "-1", "--format=%s", "--", "environments/prod"],
    )
    .unwrap();
    assert_eq!(subject.trim(), format!("users: {web} 1.0.0"));

    let v110 = rig.release("shop/web", "1.1.0", &[]);
    // A digest that never was in developers cannot enter testers.
    let err = rig.ferry_fails(&["promote", &format!("{web}@{v110}"), "--to", "testers"]);
    assert!(
        err.contains("developers"),
        "the order rule names the ring: {err}"
    );
    rig.ferry(&["promote", &web, "--to", "developers"]);
    rig.ferry(&["promote", &web, "--to", "testers"]);
    step(
        &rig,
        "1.1.0 to testers",
        &["dev", "staging"],
        ["1.1.0", "1.1.0", "1.0.0"],
        &mut expected,
    );

    rig.ferry(&["rollback", &web, "--ring", "testers"]);
    step(
        &rig,
        "rollback testers",
        &["staging"],
        ["1.1.0", "1.0.0", "1.0.0"],
        &mut expected,
    );
    assert!(
        !rig.status("shop")
            .rings
            .iter()
            .find(|r| r.name == "testers")
            .unwrap()
            .hold
            .is_empty(),
        "a rollback holds the ring"
    );
    rig.ferry(&["promote", &web, "--to", "testers"]);
    step(
        &rig,
        "promote testers again",
        &["staging"],
        ["1.1.0", "1.1.0", "1.0.0"],
        &mut expected,
    );
    assert!(
        rig.status("shop")
            .rings
            .iter()
            .find(|r| r.name == "testers")
            .unwrap()
            .hold
            .is_empty(),
        "a promote by hand lifts the hold"
    );

    let v120 = rig.release("shop/web", "1.2.0", &[]);
    rig.ferry(&["shift", "shop"]);
    step(
        &rig,
        "shift",
        &["dev", "prod"],
        ["1.2.0", "1.1.0", "1.1.0"],
        &mut expected,
    );
    let st = rig.status("shop");
    assert_eq!(
        pointer(&st, "post", &web).unwrap().digest,
        v100,
        "post holds what left users"
    );

    rig.ferry(&["unshift", "shop"]);
    step(
        &rig,
        "unshift",
        &["dev", "prod"],
        ["1.1.0", "1.1.0", "1.0.0"],
        &mut expected,
    );
    let st = rig.status("shop");
    assert!(
        pointer(&st, "post", &web).is_none(),
        "post was empty before the shift"
    );
    let err = rig.ferry_fails(&["unshift", "shop"]);
    assert!(err.contains("shift"), "a second unshift is refused: {err}");

    // Every cluster's digest, as the agents reported it.
    assert_eq!(
        reported(&st, &web),
        BTreeMap::from([
            ("dev-cluster".to_string(), v110.clone()),
            ("staging-cluster".to_string(), v110.clone()),
            ("prod-cluster".to_string(), v100.clone()),
        ])
    );
    let status = rig.ferry(&["status", "shop"]);
    for (_, cluster, _) in SITES {
        assert!(
            status.contains(cluster),
            "ferry status names {cluster}:\n{status}"
        );
    }
    assert!(
        status.contains(&v110["sha256:".len().."sha256:".len() + 12]),
        "{status}"
    );
    let _ = v120;
}

const BUNDLE: &str = "apiVersion: ferry.dev/v1\nkind: Pipeline\nmetadata: {name: suite}\nspec:\n  rings: [developers, testers, users]\n  images: [ORIGIN/suite/root, ORIGIN/suite/api, ORIGIN/suite/web]\n  root: ORIGIN/suite/root\n";

/// Must-show 2: a root image whose dependency labels pin two others moves all three in one
/// commit per site; a dependency version never published refuses and moves nothing.
#[test]
fn a_root_image_promotes_its_bundle_in_one_commit_per_site() {
    let mut rig = Rig::start("suite", BUNDLE, &["suite/root", "suite/api", "suite/web"]);
    let (root, api, web) = (
        rig.image("suite/root"),
        rig.image("suite/api"),
        rig.image("suite/web"),
    );
    let api1 = rig.release("suite/api", "1.4.0", &[]);
    let web1 = rig.release("suite/web", "2.0.1", &[]);
    rig.release("suite/api", "1.5.0", &[]); // a newer api the root does not pin
    let root1 = rig.release(
        "suite/root",
        "3.0.0",
        &[("dependency.api", "1.4.0"), ("dependency.web", "2.0.1")],
    );
    let clone = rig.settle("suite");
    let before = commits_per_site(&clone);

    rig.ferry(&["promote", &root, "--to", "developers"]);
    let clone = rig.settle("suite");
    let after = commits_per_site(&clone);
    assert_eq!(
        after["dev"],
        before["dev"] + 1,
        "one commit in dev for the bundle"
    );
    assert_eq!(after["staging"], before["staging"]);
    assert_eq!(tag_in(&clone, "dev", &root), "3.0.0");
    assert_eq!(
        tag_in(&clone, "dev", &api),
        "1.4.0",
        "the pinned api, not the newest"
    );
    assert_eq!(tag_in(&clone, "dev", &web), "2.0.1");
    let st = rig.status("suite");
    for (image, digest) in [(&root, &root1), (&api, &api1), (&web, &web1)] {
        assert_eq!(&pointer(&st, "developers", image).unwrap().digest, digest);
    }
    let batch: Vec<u64> = [&root, &api, &web]
        .iter()
        .map(|i| pointer(&st, "developers", i).unwrap().seq)
        .collect();
    let (lo, hi) = (batch.iter().min().unwrap(), batch.iter().max().unwrap());
    assert_eq!(
        hi - lo,
        2,
        "three consecutive events of one move: {batch:?}"
    );

    // A root pinning an api version that was never published: publishing it puts only the root
    // in ante; promoting it is refused, names the dependency, and moves nothing.
    rig.release(
        "suite/root",
        "3.1.0",
        &[("dependency.api", "9.9.9"), ("dependency.web", "2.0.1")],
    );
    let head = rig.server.head_seq();
    let err = rig.ferry_fails(&["promote", &root, "--to", "developers"]);
    assert!(
        err.contains("dependency.api") && err.contains("9.9.9"),
        "names the dependency: {err}"
    );
    assert_eq!(rig.server.head_seq(), head, "no event appended");
    let st2 = rig.status("suite");
    for image in [&root, &api, &web] {
        assert_eq!(
            pointer(&st2, "developers", image).unwrap().digest,
            pointer(&st, "developers", image).unwrap().digest
        );
    }
    let clone = rig.settle("suite");
    assert_eq!(
        commits_per_site(&clone),
        after,
        "no commit for a refused promotion"
    );
}

const GATED: &str = "apiVersion: ferry.dev/v1\nkind: Pipeline\nmetadata: {name: gated}\nspec:\n  rings: [developers, testers, users]\n  images: [ORIGIN/gated/web]\n  gates:\n    users: {requireApplied: true, soak: 3s}\n";

/// Must-show 3 (with real agents): promotion into the last ring is refused, naming the cluster,
/// until the previous ring's agent reported the digest applied; then until the soak has run.
#[test]
fn a_gate_names_the_cluster_that_has_not_applied_and_waits_out_the_soak() {
    let mut rig = Rig::start("gated", GATED, &["gated/web"]);
    let web = rig.image("gated/web");
    let v1 = rig.release("gated/web", "1.0.0", &[]);
    rig.ferry(&["promote", &web, "--to", "developers"]);
    rig.settle("gated");

    // The testers' site is down while testers takes 1.0.0: its cluster cannot have applied it.
    rig.agents[1].kill9();
    rig.ferry(&["promote", &web, "--to", "testers"]);
    let err = rig.ferry_fails(&["promote", &web, "--to", "users"]);
    assert!(
        err.contains("staging-cluster"),
        "the refusal names the cluster: {err}"
    );
    let st = rig.status("gated");
    assert!(pointer(&st, "users", &web).is_none(), "nothing moved");

    // Back up: it applies and reports; the soak then still holds the gate for a while.
    rig.agents[1].restart();
    rig.settle("gated");
    let users = st.rings.iter().position(|r| r.name == "users").unwrap();
    let gate = rig.status("gated").rings[users]
        .gate_status
        .clone()
        .unwrap();
    if !gate.open {
        assert!(gate.why_closed.contains("soak"), "{gate:?}");
        let err = rig.ferry_fails(&["promote", &web, "--to", "users"]);
        assert!(
            err.contains("soak"),
            "the refusal says the soak still runs: {err}"
        );
    }
    assert!(
        wait_until(WAIT, || rig.status("gated").rings[users]
            .gate_status
            .as_ref()
            .is_some_and(|g| g.open)),
        "the gate never opened: {:?}",
        rig.status("gated").rings[users]
    );
    rig.ferry(&["promote", &web, "--to", "users"]);
    let clone = rig.settle("gated");
    assert_eq!(tag_in(&clone, "prod", &web), "1.0.0");
    assert_eq!(reported(&rig.status("gated"), &web)["prod-cluster"], v1);
}

const AUTO: &str = "apiVersion: ferry.dev/v1\nkind: Pipeline\nmetadata: {name: auto}\nspec:\n  rings: [developers, testers, users]\n  images: [ORIGIN/auto/web]\n  gates:\n    testers: {autoPromote: true}\n    users: {requireApplied: true, autoPromote: true}\n";

/// Must-show 3: autoPromote moves a ring when its gate opens (testers at once, users once the
/// testers' cluster reported), and a rejected digest does not move on.
#[test]
fn auto_promote_follows_reports_and_stops_at_a_rejected_digest() {
    let mut rig = Rig::start("auto", AUTO, &["auto/web"]);
    let web = rig.image("auto/web");
    let v1 = rig.release("auto/web", "1.0.0", &[]);
    rig.ferry(&["promote", &web, "--to", "developers"]);
    assert!(
        wait_until(WAIT, || pointer(&rig.status("auto"), "users", &web)
            .is_some_and(|p| p.digest == v1)),
        "1.0.0 never reached users by itself: {:?}",
        rig.status("auto")
    );
    let clone = rig.settle("auto");
    for (env, _, _) in SITES {
        assert_eq!(tag_in(&clone, env, &web), "1.0.0", "{env}");
    }
    let history = rig.runtime.block_on(async {
        rig.server
            .client()
            .await
            .get_pipeline(pb::GetPipelineRequest {
                name_or_image: "auto".into(),
                history: true,
                targets: false,
            })
            .await
            .unwrap()
            .into_inner()
    });
    let users = history.rings.iter().find(|r| r.name == "users").unwrap();
    let last = users.history[&web].entries.last().unwrap().clone();
    assert_eq!(
        (last.actor.as_str(), last.reason.as_str()),
        ("ferry-server", "auto")
    );

    // 1.1.0 reaches testers by itself while the testers' site is down, and is rejected there
    // before that site reports it: users must never take it, even once the site has applied it
    // and the gate is open.
    rig.agents[1].kill9();
    let v2 = rig.release("auto/web", "1.1.0", &[]);
    rig.ferry(&["promote", &web, "--to", "developers"]);
    assert!(
        wait_until(WAIT, || pointer(&rig.status("auto"), "testers", &web)
            .is_some_and(|p| p.digest == v2)),
        "1.1.0 never reached testers by itself"
    );
    rig.ferry(&[
        "reject",
        &format!("{web}@{v2}"),
        "--reason",
        "crashes on start",
    ]);
    let err = rig.ferry_fails(&[
        "promote",
        &format!("{web}@{v2}"),
        "--to",
        "users",
        "--force",
        "--reason",
        "try",
    ]);
    assert!(
        err.contains("rejected") && err.contains("crashes on start"),
        "even --force: {err}"
    );
    rig.agents[1].restart();
    rig.settle("auto");
    let st = rig.status("auto");
    assert_eq!(
        reported(&st, &web)["staging-cluster"],
        v2,
        "the site runs what its ring says"
    );
    let testers = st.rings.iter().find(|r| r.name == "testers").unwrap();
    assert_eq!(
        testers.rejected_running,
        vec![v2.clone()],
        "status flags the rejected digest"
    );
    // A negative: nothing may happen. Three of the server's one-second autoPromote rounds is the
    // window in which a wrong move would show.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        pointer(&rig.status("auto"), "users", &web).unwrap().digest,
        v1,
        "users took a rejected digest"
    );

    // A rollback holds testers: a new build in developers does not flow on by itself.
    rig.ferry(&["rollback", &web, "--ring", "testers"]);
    let v3 = rig.release("auto/web", "1.2.0", &[]);
    rig.ferry(&["promote", &web, "--to", "developers"]);
    rig.settle("auto");
    std::thread::sleep(Duration::from_secs(3)); // the same window, for the hold
    let st = rig.status("auto");
    assert_eq!(pointer(&st, "developers", &web).unwrap().digest, v3);
    assert_eq!(
        pointer(&st, "testers", &web).unwrap().digest,
        v1,
        "a held ring moved by itself"
    );
    // Promoting by hand lifts the hold.
    rig.ferry(&["promote", &web, "--to", "testers"]);
    assert_eq!(
        pointer(&rig.status("auto"), "testers", &web)
            .unwrap()
            .digest,
        v3
    );
}

/// Must-show 5: an agent killed in the middle of applying a promotion — its push landed, but it
/// died before hearing so — comes back, finds the file already right, and reports the new digest
/// once: one commit for the move and one history row, however the crash fell.
#[test]
fn an_agent_killed_mid_promotion_reports_it_exactly_once() {
    let mut rig = Rig::start("shop", SHOP, &["shop/web"]);
    let web = rig.image("shop/web");
    let v1 = rig.release("shop/web", "1.0.0", &[]);
    let before = commits_per_site(&rig.settle("shop"));

    let held = HeldHook::install(&rig.bare, rig.tmp.path(), "post-receive", "promote", 0);
    rig.ferry(&["promote", &web, "--to", "developers"]);
    assert!(
        wait_until(WAIT, || held.reached()),
        "the dev agent's push never reached the hook:\n{}",
        rig.agents[0].log()
    );
    rig.agents[0].kill9();
    held.release();
    assert!(wait_until(WAIT, || held.done()), "the hook never finished");
    held.remove();
    rig.agents[0].restart();

    let clone = rig.settle("shop");
    assert_eq!(tag_in(&clone, "dev", &web), "1.0.0");
    let after = commits_per_site(&clone);
    assert_eq!(
        after["dev"],
        before["dev"] + 1,
        "one commit for the promotion"
    );
    assert_eq!(reported(&rig.status("shop"), &web)["dev-cluster"], v1);
    // The server's report history (read from its database): one row for the new digest, not
    // one per report — also after a second restart, whose reconcile reports it all again.
    let db = rusqlite::Connection::open_with_flags(
        rig.server.data_dir().join("ferry.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .unwrap();
    let rows = || -> i64 {
        db.query_row(
            "SELECT count(*) FROM cluster_target_history WHERE cluster = 'dev-cluster' AND digest = ?1",
            [&v1],
            |r| r.get(0),
        )
        .unwrap()
    };
    let reported_at = || -> i64 {
        db.query_row(
            "SELECT reported_at FROM clusters WHERE name = 'dev-cluster'",
            [],
            |r| r.get(0),
        )
        .unwrap()
    };
    assert_eq!(
        rows(),
        1,
        "the restarted agent's report of {v1} was recorded more than once"
    );
    let last = reported_at();
    rig.agents[0].restart();
    assert!(
        wait_until(WAIT, || reported_at() > last),
        "the agent did not report again after its restart:\n{}",
        rig.agents[0].log()
    );
    assert_eq!(rows(), 1, "a re-sent report added history");
}
