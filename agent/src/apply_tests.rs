use super::*;
use crate::config::ImageWatcherFile;
use crate::git::testing::TestTree;
use ferry_proto::pb;

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn tag_of_reads_the_tag_part() {
    assert_eq!(tag_of("gcr.io/acme/app:1.2.3"), Some("1.2.3"));
    assert_eq!(tag_of("127.0.0.1:5001/app:v1@sha256:abc"), Some("v1"));
    assert_eq!(tag_of("127.0.0.1:5001/app@sha256:abc"), None);
    assert_eq!(tag_of("1.2.3"), Some("1.2.3"));
    assert_eq!(tag_of("sha256:abc"), None);
}

#[test]
fn short_digest_of_reads_the_digest_part() {
    let pinned = format!("127.0.0.1:5001/app@sha256:{HEX}");
    assert_eq!(short_digest_of(&pinned), Some("0123456789ab"));
    assert_eq!(
        short_digest_of(&format!("sha256:{HEX}")),
        Some("0123456789ab")
    );
    assert_eq!(short_digest_of("app:1.2.3"), None);
}

/// A repository with `deployment.yaml` running `image`, and one target on it with `policy`
/// (a YAML flow mapping, or empty for none).
fn repo_with_target(image: &str, policy: &str) -> (TestTree, Target) {
    let deployment = format!("spec:\n  containers:\n    - name: app\n      image: {image}\n");
    let dir = TestTree::new(&[("deployment.yaml", &deployment)]);
    let policy = if policy.is_empty() {
        String::new()
    } else {
        format!("      policy: {policy}\n")
    };
    let text = format!("apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  targets:\n    - image: registry.example.com/app\n      provider: ferry\n      filePath: deployment.yaml\n      field: spec.containers[0].image\n{policy}");
    let file = ImageWatcherFile::parse(&text, ".pipe/w.yaml").unwrap();
    let spec = file.valid_targets().next().expect("a valid target").clone();
    let target = Target {
        repo_id: "config".into(),
        watcher_file: ".pipe/w.yaml".into(),
        policy: spec.policy.clone().unwrap_or_default(),
        spec,
        commit_message: None,
    };
    (dir, target)
}

fn table(tags: &[(&str, u64, &str, &str)]) -> Known {
    let mut image = BTreeMap::new();
    for (tag, seq, artifact_type, subject) in tags {
        image.insert(
            tag.to_string(),
            TagInfo {
                digest: format!("sha256:{:064x}", seq),
                seq: *seq,
                artifact_type: artifact_type.to_string(),
                subject: subject.to_string(),
                ..TagInfo::default()
            },
        );
    }
    Known {
        tags: HashMap::from([("registry.example.com/app".to_string(), image)]),
        rings: RingTable::default(),
    }
}

// Regression (issue 9): an SBOM or signature published with a tag after a release moved
// targets without a policy ("latest published wins") onto the artifact.
#[test]
fn plan_picks_the_release_over_newer_artifact_tags() {
    let (dir, target) = repo_with_target("registry.example.com/app:1.2.3", "");
    let subject = format!("sha256:{HEX}");
    let cosign = format!("sha256-{HEX}.sig");
    let table = table(&[
        ("1.2.4", 1, "", ""),
        ("1.2.4-sbom", 2, "application/spdx+json", ""),
        ("1.2.4-sig", 3, "", &subject),
        (&cosign, 4, "", ""),
    ]);
    let plan = plan(&dir.files(), &[&target], &table);
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert_eq!(plan.updates.len(), 1, "{plan:?}");
    assert_eq!(plan.updates[0].tag, "1.2.4");
    let content = String::from_utf8(plan.files["deployment.yaml"].clone()).unwrap();
    assert!(
        content.contains("image: registry.example.com/app:1.2.4\n"),
        "{content}"
    );

    let passed: Vec<String> = plan.notes.iter().map(Note::to_string).collect();
    assert_eq!(passed.len(), 3, "{passed:?}");
    assert!(passed[0].contains("1.2.4-sbom") && passed[0].contains("application/spdx+json"));
    assert!(passed[1].contains("1.2.4-sig") && passed[1].contains(&subject));
    assert!(passed[2].contains(&cosign) && passed[2].contains("cosign"));
}

#[test]
fn only_artifacts_move_nothing() {
    let (dir, target) = repo_with_target("registry.example.com/app:1.2.3", "");
    let table = table(&[("sbom", 5, "application/spdx+json", "")]);
    let plan = plan(&dir.files(), &[&target], &table);
    assert!(plan.files.is_empty() && plan.updates.is_empty());
    assert!(matches!(&plan.notes[..], [Note::PassedOver { tag, .. }] if tag == "sbom"));
}

// Regression (issue 9): a target moving from a digest-only reference had an empty
// {{previous_tag}}; it now names the short digest it left.
#[test]
fn previous_tag_falls_back_to_the_short_digest() {
    let (dir, target) = repo_with_target(&format!("registry.example.com/app@sha256:{HEX}"), "");
    let plan = plan(&dir.files(), &[&target], &table(&[("1.2.4", 1, "", "")]));
    assert_eq!(plan.updates.len(), 1, "{plan:?}");
    assert_eq!(
        plan.updates[0].previous_tag.as_deref(),
        Some("0123456789ab")
    );
    let message = combined_message(&plan.updates, Some("from {{previous_tag}} to {{tag}}"));
    assert_eq!(message, "from 0123456789ab to 1.2.4");
}

#[test]
fn a_target_kept_by_its_policy_says_why_once_per_release() {
    let (dir, target) = repo_with_target("registry.example.com/app:1.2.3", "{semver: '>=2'}");
    let first = plan(&dir.files(), &[&target], &table(&[("1.2.4", 1, "", "")]));
    assert!(first.files.is_empty());
    let [note @ Note::Stays { .. }] = &first.notes[..] else {
        panic!("{:?}", first.notes)
    };
    let shown = note.to_string();
    assert!(
        shown.contains("deployment.yaml") && shown.contains("policy") && shown.contains("1.2.4"),
        "{shown}"
    );
    // Planned again (a resync) with nothing new: the same note, which the caller logs once.
    let again = plan(&dir.files(), &[&target], &table(&[("1.2.4", 1, "", "")]));
    assert_eq!(again.notes, first.notes);
    // A new release is a new note.
    let newer = plan(
        &dir.files(),
        &[&target],
        &table(&[("1.2.4", 1, "", ""), ("1.3.0", 2, "", "")]),
    );
    assert_ne!(newer.notes, first.notes);
}

#[test]
fn a_target_never_moved_down_says_why() {
    let (dir, target) = repo_with_target("registry.example.com/app:1.5.0", "{semver: '<2'}");
    let plan = plan(&dir.files(), &[&target], &table(&[("1.2.4", 1, "", "")]));
    assert!(plan.files.is_empty());
    let shown: Vec<String> = plan.notes.iter().map(Note::to_string).collect();
    assert!(
        matches!(&shown[..], [s] if s.contains("on 1.5.0") && s.contains("lower version")),
        "{shown:?}"
    );
}

// --- ring targets ---

const IMAGE: &str = "registry.example.com/app";

/// A repository with `deployment.yaml` running `image`, and a target following ring `testers`
/// with `extra` lines (format, commitMessage is separate).
fn repo_with_ring_target(image: &str, extra: &str) -> (TestTree, Target) {
    let deployment = format!("spec:\n  containers:\n    - name: app\n      image: {image}\n");
    let dir = TestTree::new(&[("deployment.yaml", &deployment)]);
    let text = format!("apiVersion: pipecd.dev/v1beta1\nkind: ImageWatcher\nspec:\n  commitMessage: \"Deploy {{{{version}}}} to {{{{ring}}}}\"\n  targets:\n    - image: {IMAGE}\n      provider: ferry\n      filePath: deployment.yaml\n      field: spec.containers[0].image\n      ring: testers\n{extra}");
    let file = ImageWatcherFile::parse(&text, ".pipe/w.yaml").unwrap();
    let spec = file.valid_targets().next().expect("a valid target").clone();
    let target = Target {
        repo_id: "config".into(),
        watcher_file: ".pipe/w.yaml".into(),
        policy: Default::default(),
        spec,
        commit_message: file.commit_message.clone(),
    };
    (dir, target)
}

fn digest(n: u64) -> String {
    format!("sha256:{n:064x}")
}

/// Rings as listed at seq 10: `shop/testers` at release 1.3.0 (digest 3).
fn listed_rings() -> RingTable {
    RingTable::from_list(&pb::ListRingsResponse {
        head_seq: 10,
        pointers: vec![pb::RingPointer {
            pipeline: "shop".into(),
            ring: "testers".into(),
            image: IMAGE.into(),
            digest: digest(3),
            tag: "1.3.0".into(),
            version: "1.3.0".into(),
            seq: 10,
            ..Default::default()
        }],
    })
}

fn ring_moved(seq: u64, digest: &str, tag: &str) -> pb::Event {
    pb::Event {
        seq,
        kind: pb::EventKind::RingMoved as i32,
        image: IMAGE.into(),
        pipeline: "shop".into(),
        ring: "testers".into(),
        digest: digest.into(),
        tag: tag.into(),
        labels: [(VERSION_LABEL.to_string(), tag.to_string())].into(),
        ..Default::default()
    }
}

fn written(plan: &Plan) -> String {
    String::from_utf8(plan.files["deployment.yaml"].clone()).unwrap()
}

#[test]
fn a_ring_target_writes_what_the_ring_points_at_with_ring_and_version() {
    let (dir, target) = repo_with_ring_target(&format!("{IMAGE}:1.2.0"), "");
    let known = Known {
        rings: listed_rings(),
        ..Known::default()
    };
    let plan = plan(&dir.files(), &[&target], &known);
    assert!(plan.errors.is_empty(), "{:?}", plan.errors);
    assert!(written(&plan).contains(&format!("image: {IMAGE}:1.3.0\n")));
    let [update] = &plan.updates[..] else {
        panic!("{:?}", plan.updates)
    };
    assert_eq!(update.ring.as_deref(), Some("testers"));
    assert_eq!(update.version.as_deref(), Some("1.3.0"));
    assert_eq!(
        combined_message(&plan.updates, target.commit_message.as_deref()),
        "Deploy 1.3.0 to testers"
    );
    assert_eq!(
        plan.verdicts[&target.key()],
        Verdict::Holds {
            digest: digest(3),
            edited: true
        }
    );
}

#[test]
fn a_ring_moving_back_is_applied() {
    // The never-downgrade rule is for tag policies: a rollback of the ring is written.
    let (dir, target) = repo_with_ring_target(&format!("{IMAGE}:1.3.0"), "");
    let mut known = Known {
        rings: listed_rings(),
        ..Known::default()
    };
    let current = plan(&dir.files(), &[&target], &known);
    assert!(current.files.is_empty(), "already on 1.3.0: {current:?}");
    assert_eq!(
        current.verdicts[&target.key()],
        Verdict::Holds {
            digest: digest(3),
            edited: false
        }
    );
    assert!(known
        .rings
        .record_event(&ring_moved(11, &digest(2), "1.2.0")));
    let back = plan(&dir.files(), &[&target], &known);
    assert!(back.errors.is_empty(), "{:?}", back.errors);
    assert!(written(&back).contains(&format!("image: {IMAGE}:1.2.0\n")));
    assert_eq!(back.updates[0].previous_tag.as_deref(), Some("1.3.0"));
}

#[test]
fn an_emptied_ring_leaves_the_file_as_it_is() {
    let (dir, target) = repo_with_ring_target(&format!("{IMAGE}:1.2.0"), "");
    let mut known = Known {
        rings: listed_rings(),
        ..Known::default()
    };
    assert!(known.rings.record_event(&ring_moved(11, "", "")));
    let plan = plan(&dir.files(), &[&target], &known);
    assert!(plan.files.is_empty() && plan.errors.is_empty(), "{plan:?}");
    // No verdict: the report keeps what the file held.
    assert!(plan.verdicts.is_empty(), "{:?}", plan.verdicts);
    let [note @ Note::RingEmpty { .. }] = &plan.notes[..] else {
        panic!("{:?}", plan.notes)
    };
    assert!(
        note.to_string().contains("ring testers points at nothing"),
        "{note}"
    );
}

#[test]
fn tag_moves_never_move_a_ring_target() {
    let (dir, target) = repo_with_ring_target(&format!("{IMAGE}:1.3.0"), "");
    // A newer tag of the image than the ring's: a tag target would move, the ring target not.
    let mut known = table(&[("9.9.9", 20, "", "")]);
    known.rings = listed_rings();
    let plan = plan(&dir.files(), &[&target], &known);
    assert!(plan.files.is_empty(), "{plan:?}");
    assert_eq!(
        plan.verdicts[&target.key()],
        Verdict::Holds {
            digest: digest(3),
            edited: false
        }
    );
    // And a ring target with no ring pointers writes nothing, whatever the tags say.
    let tags_only = table(&[("9.9.9", 20, "", "")]);
    assert!(plan_files_empty(&dir.files(), &target, &tags_only));
}

fn plan_files_empty(tip: &TreeFiles<'_>, target: &Target, known: &Known) -> bool {
    plan(tip, &[target], known).files.is_empty()
}

#[test]
fn a_format_that_writes_a_tag_needs_a_tagged_pointer() {
    let (dir, target) = repo_with_ring_target(&format!("{IMAGE}:1.2.0"), "");
    let mut known = Known {
        rings: listed_rings(),
        ..Known::default()
    };
    assert!(known.rings.record_event(&ring_moved(11, &digest(4), "")));
    let failed = plan(&dir.files(), &[&target], &known);
    assert!(failed.files.is_empty());
    let Verdict::Failed(why) = &failed.verdicts[&target.key()] else {
        panic!("{:?}", failed.verdicts)
    };
    assert!(
        why.contains("ring testers of pipeline shop")
            && why.contains(&digest(4))
            && why.contains("format: digest"),
        "{why}"
    );
    assert!(failed.errors[0].contains(why.as_str()));
    // format: digest writes it.
    let (dir, target) = repo_with_ring_target(&format!("{IMAGE}:1.2.0"), "      format: digest\n");
    let plan = plan(&dir.files(), &[&target], &known);
    assert!(written(&plan).contains(&format!("image: {IMAGE}@{}\n", digest(4))));
}

#[test]
fn a_ring_in_several_pipelines_is_a_target_error_naming_them() {
    let (dir, target) = repo_with_ring_target(&format!("{IMAGE}:1.2.0"), "");
    let mut known = Known {
        rings: listed_rings(),
        ..Known::default()
    };
    let other = pb::Event {
        pipeline: "outlet".into(),
        ..ring_moved(11, &digest(5), "1.5.0")
    };
    assert!(known.rings.record_event(&other));
    let failed = plan(&dir.files(), &[&target], &known);
    let Verdict::Failed(why) = &failed.verdicts[&target.key()] else {
        panic!("{:?}", failed.verdicts)
    };
    assert!(why.contains("(outlet, shop)"), "{why}");
    let (dir, target) =
        repo_with_ring_target(&format!("{IMAGE}:1.2.0"), "      pipeline: outlet\n");
    assert!(written(&plan(&dir.files(), &[&target], &known)).contains(":1.5.0\n"));
}
