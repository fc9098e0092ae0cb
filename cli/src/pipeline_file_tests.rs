//! Every refusal of a pipeline file names `FILE:LINE:COL`, the field and the rule: a table.

use super::*;

const GOOD: &str = "\
apiVersion: ferry.dev/v1
kind: Pipeline
metadata: {name: shop}
spec:
  rings: [developers, testers, users]
  images: [registry.example.com/shop/root, registry.example.com/shop/api, nginx]
  root: registry.example.com/shop/root
  gates:
    testers: {soak: 90s}
    users: {requireApplied: true, soak: 1h30m, autoPromote: true}
";

#[test]
fn the_docs_example_parses() {
    let f = parse(GOOD, "shop.yaml").unwrap();
    assert_eq!(f.spec.name, "shop");
    assert_eq!(f.spec.rings, ["developers", "testers", "users"]);
    assert_eq!(f.spec.images[2], "docker.io/library/nginx");
    assert_eq!(f.spec.root, "registry.example.com/shop/root");
    assert_eq!(
        f.spec.gates["users"],
        pb::Gate {
            require_applied: true,
            soak_seconds: 5400,
            auto_promote: true
        }
    );
    assert_eq!(f.spec.gates["testers"].soak_seconds, 90);
    assert_eq!(f.source, GOOD);
}

/// `GOOD` with the first occurrence of `from` replaced by `to`.
fn edited(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "{from:?} not in the example");
    GOOD.replacen(from, to, 1)
}

#[test]
fn each_refusal_names_line_col_field_and_rule() {
    // (edit from, edit to, "LINE:COL", field, a piece of the rule)
    let rows: &[(&str, &str, &str, &str, &str)] = &[
        (
            "ferry.dev/v1",
            "ferry.dev/v2",
            "1:13",
            "apiVersion",
            "apiVersion: ferry.dev/v1",
        ),
        (
            "kind: Pipeline",
            "kind: Pipe",
            "2:7",
            "kind",
            "expected Pipeline",
        ),
        (
            "{name: shop}",
            "{name: Shop}",
            "3:18",
            "metadata.name",
            "\"Shop\": names match [a-z0-9][a-z0-9-]*",
        ),
        (
            "{name: shop}",
            "{name: shop, labels: {}}",
            "3:24",
            "metadata.labels",
            "unknown field `labels`",
        ),
        (
            "testers, users]",
            "testers, ante]",
            "5:32",
            "spec.rings[2]",
            "\"ante\" is reserved",
        ),
        (
            "testers, users]",
            "testers, testers]",
            "5:32",
            "spec.rings[2]",
            "\"testers\" is listed twice",
        ),
        (
            "[developers, testers, users]",
            "[]",
            "5:10",
            "spec.rings",
            "1 to 16",
        ),
        (
            "nginx]",
            "nginx:1.25]",
            "6:75",
            "spec.images[2]",
            "\"nginx:1.25\" is an image name with a tag or digest",
        ),
        (
            "nginx]",
            "nginx, docker.io/library/nginx]",
            "6:82",
            "spec.images[3]",
            "images are distinct",
        ),
        (
            "root: registry.example.com/shop/root",
            "root: other/root",
            "7:9",
            "spec.root",
            "\"other/root\" (docker.io/other/root) is not one of spec.images",
        ),
        (
            "testers: {soak: 90s}",
            "testerz: {soak: 90s}",
            "9:14",
            "spec.gates.testerz",
            "\"testerz\" is not a ring of spec.rings",
        ),
        (
            "{soak: 90s}",
            "{soak: 90}",
            "9:21",
            "spec.gates.testers.soak",
            "\"90\": a number needs a unit",
        ),
        (
            "{soak: 90s}",
            "{soak: 1m1h}",
            "9:21",
            "spec.gates.testers.soak",
            "\"1m1h\": a duration is hours, minutes and seconds in that order",
        ),
        (
            "{soak: 90s}",
            "{sok: 90s}",
            "9:15",
            "spec.gates.testers.sok",
            "unknown field `sok`",
        ),
        (
            "{soak: 90s}",
            "{autoPromote: maybe}",
            "9:28",
            "spec.gates.testers.autoPromote",
            "expected true or false, got \"maybe\"",
        ),
        (
            "testers: {soak: 90s}",
            "developers: {requireApplied: true}",
            "9:34",
            "spec.gates.developers.requireApplied",
            "first ring",
        ),
        (
            "  root:",
            "  rooot:",
            "7:3",
            "spec.rooot",
            "unknown field `rooot`",
        ),
    ];
    for &(from, to, at, field, rule) in rows {
        let text = edited(from, to);
        let err = parse(&text, "shop.yaml").expect_err(to);
        let shown = err.to_string();
        assert!(
            shown.starts_with(&format!("shop.yaml:{at}")),
            "{to}: expected shop.yaml:{at}…, got {shown}"
        );
        assert_eq!(err.field, field, "{to}: {shown}");
        assert!(shown.contains(rule), "{to}: {shown} lacks {rule:?}");
    }
}

#[test]
fn a_gate_written_twice_is_refused_at_the_second() {
    let text = edited(
        "testers: {soak: 90s}",
        "testers: {soak: 90s}\n    testers: {soak: 10m}",
    );
    let err = parse(&text, "p.yaml").unwrap_err();
    assert!(err.to_string().starts_with("p.yaml:10:5"), "{err}");
}

#[test]
fn missing_fields_and_empty_files_say_so() {
    let err = parse(
        "apiVersion: ferry.dev/v1\nkind: Pipeline\nmetadata: {name: x}\n",
        "p.yaml",
    )
    .unwrap_err();
    assert!(err.to_string().contains("spec"), "{err}");
    let err = parse("", "p.yaml").unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");
}
