//! Everything the ring verbs print, in one place: moves, pipeline tables, status.
//!
//! Values come from the server and, through it, from whoever published or reported them: a
//! value with control characters or longer than [`Shown::MAX_CHARS`] is printed quoted and cut
//! ([`Shown`]), so a hostile label cannot rewrite the terminal or flood a table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use ferry_proto::names::Shown;
use ferry_proto::pb;
use ferry_proto::versioning::short_digest;

/// A value as a table cell: as it is when it is plain, else quoted and cut.
pub fn cell(value: &str) -> String {
    let plain = value.chars().count() <= Shown::MAX_CHARS
        && !value.chars().any(|c| c.is_control() || c == '\u{202e}');
    if plain {
        value.to_string()
    } else {
        Shown(value).to_string()
    }
}

/// A digest as tables show it (`sha256:` and 12 hex digits), or `-` for none.
pub fn digest(d: &str) -> String {
    if d.is_empty() {
        "-".to_string()
    } else {
        cell(short_digest(d))
    }
}

/// Milliseconds since the epoch as `2026-12-01 11:46:16Z`, or `-` for 0.
pub fn when(ms: i64) -> String {
    ferry_proto::time::table_time(ms)
}

/// Rows as columns padded to their widest cell, two spaces apart, no trailing blanks.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, c) in row.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let mut line = String::new();
        for (i, c) in row.iter().enumerate() {
            line.push_str(c);
            if i + 1 < row.len() {
                line.push_str(&" ".repeat(widths[i] - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// One line per ring move: `moved shop/testers IMAGE: sha256:… → sha256:… (1.2.3)`.
pub fn moves(moved: &[pb::RingMove]) -> Vec<String> {
    moved
        .iter()
        .map(|m| {
            let mut extra = Vec::new();
            if !m.version.is_empty() {
                extra.push(cell(&m.version));
            }
            if !m.tag.is_empty() && m.tag != m.version {
                extra.push(format!("tag {}", cell(&m.tag)));
            }
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(" ({})", extra.join(", "))
            };
            format!(
                "moved {}/{} {}: {} → {}{extra}",
                cell(&m.pipeline),
                cell(&m.ring),
                cell(&m.image),
                or_empty(&m.previous_digest),
                or_empty(&m.digest),
            )
        })
        .collect()
}

fn or_empty(d: &str) -> String {
    if d.is_empty() {
        "(empty)".to_string()
    } else {
        digest(d)
    }
}

/// What a move verb prints: each move, or `nothing moved: WHY`.
pub fn move_outcome(moved: &[pb::RingMove], nothing_why: &str) -> String {
    if moved.is_empty() {
        return format!("nothing moved: {nothing_why}\n");
    }
    let mut out = moves(moved).join("\n");
    out.push('\n');
    out
}

/// `ferry pipeline apply`.
pub fn applied(resp: &pb::ApplyPipelineResponse) -> String {
    let name = resp.spec.as_ref().map_or("", |s| s.name.as_str());
    if resp.changed {
        format!(
            "pipeline {} applied: generation {} (event seq {})\n",
            cell(name),
            resp.generation,
            resp.seq
        )
    } else {
        format!(
            "nothing changed: pipeline {} already has this spec (generation {})\n",
            cell(name),
            resp.generation
        )
    }
}

/// `ferry pipeline list`.
pub fn pipelines(list: &[pb::PipelineSummary]) -> String {
    if list.is_empty() {
        return "no pipelines: create one with ferry pipeline apply -f FILE\n".to_string();
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|p| {
            vec![
                cell(&p.name),
                p.generation.to_string(),
                cell(&p.rings.join(" → ")),
                p.images.len().to_string(),
                when(p.updated_at_ms),
            ]
        })
        .collect();
    table(&["NAME", "GENERATION", "RINGS", "IMAGES", "UPDATED"], &rows)
}

/// The rings in order (ante, the user rings, post), each with its status if the server sent one.
fn rings_in_order(status: &pb::PipelineStatus) -> Vec<(String, Option<&pb::RingStatus>)> {
    let by_name: BTreeMap<&str, &pb::RingStatus> =
        status.rings.iter().map(|r| (r.name.as_str(), r)).collect();
    let spec_rings = status
        .spec
        .as_ref()
        .map(|s| s.rings.clone())
        .unwrap_or_default();
    let mut names: Vec<String> = ferry_proto::pipeline::all_rings(&spec_rings)
        .into_iter()
        .map(str::to_string)
        .collect();
    // A ring the server sent that the spec does not name (it should not happen) is still shown.
    for r in &status.rings {
        if !names.contains(&r.name) {
            names.push(r.name.clone());
        }
    }
    names
        .into_iter()
        .map(|n| {
            let r = by_name.get(n.as_str()).copied();
            (n, r)
        })
        .collect()
}

fn header(status: &pb::PipelineStatus) -> String {
    let spec = status.spec.clone().unwrap_or_default();
    let mut out = format!(
        "pipeline {} (generation {}, head seq {})\n",
        cell(&spec.name),
        status.generation,
        status.head_seq
    );
    if !spec.root.is_empty() {
        let _ = writeln!(out, "root: {}", cell(&spec.root));
    }
    out
}

/// Most cluster names a line lists before `… and N more`.
const MAX_NAMES: usize = 10;

/// Names joined by `, `, cut short past [`MAX_NAMES`] with `… and N more`.
fn names_cut(names: &[String]) -> String {
    let mut out: Vec<String> = names.iter().take(MAX_NAMES).map(|n| cell(n)).collect();
    if names.len() > MAX_NAMES {
        out.push(format!("… and {} more", names.len() - MAX_NAMES));
    }
    out.join(", ")
}

/// Clusters running `digest` of `image` in this ring (from the summaries), by name.
fn running_clusters(ring: &pb::RingStatus, image: &str, digest: &str) -> String {
    match ring
        .running
        .iter()
        .find(|r| r.image == image && r.digest == digest && !digest.is_empty())
    {
        Some(r) if !r.clusters.is_empty() => names_cut(&r.clusters),
        _ => "-".to_string(),
    }
}

/// `ferry pipeline show`: ring × image → version, digest, since, clusters running it; with
/// `history`, each pointer's moves under the table.
pub fn show(status: &pb::PipelineStatus, history: bool) -> String {
    let mut out = String::new();
    for (i, s) in std::iter::once(status).chain(&status.also).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&show_one(s, history));
    }
    out
}

fn show_one(status: &pb::PipelineStatus, history: bool) -> String {
    let mut out = header(status);
    let images = status
        .spec
        .as_ref()
        .map(|s| s.images.clone())
        .unwrap_or_default();
    let mut rows = Vec::new();
    for (name, ring) in rings_in_order(status) {
        for image in &images {
            let p = ring.and_then(|r| r.pointers.iter().find(|p| &p.image == image));
            let mut row = vec![cell(&name), cell(image)];
            match p {
                Some(p) if !p.digest.is_empty() => row.extend([
                    if p.version.is_empty() {
                        "-".into()
                    } else {
                        cell(&p.version)
                    },
                    digest(&p.digest),
                    when(p.since_ms),
                    running_clusters(ring.expect("a pointer has a ring"), image, &p.digest),
                ]),
                _ => row.extend(["-".into(), "-".into(), "-".into(), "-".into()]),
            }
            rows.push(row);
        }
    }
    out.push_str(&table(
        &["RING", "IMAGE", "VERSION", "DIGEST", "SINCE", "CLUSTERS"],
        &rows,
    ));
    if history {
        for (name, ring) in rings_in_order(status) {
            let Some(ring) = ring else { continue };
            let mut keys: Vec<&String> = ring.history.keys().collect();
            keys.sort();
            for image in keys {
                let _ = writeln!(out, "history of {} in {}:", cell(image), cell(&name));
                for e in &ring.history[image].entries {
                    let _ = writeln!(
                        out,
                        "  {}  seq {}  {} → {}  by {}{}{}",
                        when(e.at_ms),
                        e.seq,
                        or_empty(&e.previous_digest),
                        or_empty(&e.digest),
                        cell(&e.actor),
                        if e.reason.is_empty() {
                            String::new()
                        } else {
                            format!(" ({})", cell(&e.reason))
                        },
                        if e.forced { " FORCED" } else { "" },
                    );
                }
            }
        }
    }
    out
}

/// `ferry status`: per ring, what it points at; per image which digests its clusters run (how
/// many clusters, their names cut short, since when); the gate and a hold; the clusters that are
/// behind, disconnected or failing, with their failing targets; and rejected digests. `image`:
/// only that (normalised) image's rows. With `targets` (the server sent every target), every
/// target's row too.
pub fn status(status: &pb::PipelineStatus, image: Option<&str>, targets: bool) -> String {
    let mut out = String::new();
    for (i, s) in std::iter::once(status).chain(&status.also).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&status_one(s, image, targets));
    }
    out
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

fn status_one(status: &pb::PipelineStatus, image: Option<&str>, targets: bool) -> String {
    let mut out = header(status);
    let wanted = |img: &str| image.is_none_or(|i| i == img);
    for (name, ring) in rings_in_order(status) {
        let _ = writeln!(out, "ring {}", cell(&name));
        let Some(ring) = ring else {
            out.push_str("  (empty)\n");
            continue;
        };
        let pointers: Vec<&pb::RingPointer> = ring
            .pointers
            .iter()
            .filter(|p| wanted(&p.image) && !p.digest.is_empty())
            .collect();
        if pointers.is_empty() {
            out.push_str("  (empty)\n");
        }
        for p in &pointers {
            let rejected = if ring.rejected_running.contains(&p.digest) {
                "  REJECTED"
            } else {
                ""
            };
            let version = if p.version.is_empty() {
                "-".to_string()
            } else {
                cell(&p.version)
            };
            let _ = writeln!(
                out,
                "  {}  {version}  {}  since {}{rejected}",
                cell(&p.image),
                digest(&p.digest),
                when(p.since_ms)
            );
            running_lines(&mut out, ring, &p.image);
        }
        // Clusters may run an image the ring holds no pointer for (yet): still shown.
        let mut others: Vec<&str> = Vec::new();
        for r in ring.running.iter().filter(|r| wanted(&r.image)) {
            if !pointers.iter().any(|p| p.image == r.image) && !others.contains(&r.image.as_str()) {
                others.push(&r.image);
            }
        }
        for img in others {
            let _ = writeln!(out, "  {}  (no pointer)", cell(img));
            running_lines(&mut out, ring, img);
        }
        // A ring without gate rules is always open: saying so on every ring is noise.
        if let Some(gate) = ring.gate.as_ref().filter(|g| **g != pb::Gate::default()) {
            let _ = writeln!(
                out,
                "  gate: {}",
                gate_line(gate, ring.gate_status.as_ref())
            );
        }
        if !ring.hold.is_empty() {
            let _ = writeln!(out, "  hold: {}", cell(&ring.hold));
        }
        cluster_lines(&mut out, ring, &wanted);
        if targets {
            for c in ring.clusters.iter().filter(|c| wanted(&c.image)) {
                let _ = writeln!(
                    out,
                    "  target {}  {}  {}  {}  since {}{}",
                    cell(&c.cluster),
                    cell(&c.target),
                    cell(&c.image),
                    digest(&c.digest),
                    when(c.since_ms),
                    if c.error.is_empty() { "" } else { "  FAILING" },
                );
            }
        }
    }
    let rejected: Vec<&pb::Rejection> = status
        .rejected
        .iter()
        .filter(|r| wanted(&r.image))
        .collect();
    if !rejected.is_empty() {
        out.push_str("rejected:\n");
        for r in rejected {
            let _ = writeln!(
                out,
                "  {}@{} by {} at {}: {}",
                cell(&r.image),
                digest(&r.digest),
                cell(&r.actor),
                when(r.at_ms),
                cell(&r.reason)
            );
        }
    }
    out
}

/// `    DIGEST → N clusters (NAMES) since T`, per digest the ring's clusters run of `image`.
fn running_lines(out: &mut String, ring: &pb::RingStatus, image: &str) {
    for r in ring.running.iter().filter(|r| r.image == image) {
        let _ = writeln!(
            out,
            "    {} → {} ({}) since {}",
            if r.digest.is_empty() {
                "(unknown)".to_string()
            } else {
                digest(&r.digest)
            },
            plural(r.clusters.len(), "cluster"),
            names_cut(&r.clusters),
            when(r.since_ms)
        );
    }
}

/// The clusters of the ring that are behind the head, disconnected or failing (with their
/// failing targets); all caught up, connected and healthy: one line saying so.
fn cluster_lines(out: &mut String, ring: &pb::RingStatus, wanted: &dyn Fn(&str) -> bool) {
    // With an image filter, the clusters that run that image here.
    let runs_wanted = |cluster: &str| {
        ring.running
            .iter()
            .any(|r| wanted(&r.image) && r.clusters.iter().any(|c| c == cluster))
    };
    let mut fine = 0;
    for c in ring
        .cluster_summaries
        .iter()
        .filter(|c| runs_wanted(&c.cluster))
    {
        if c.lag == 0 && c.connected && c.failing == 0 {
            fine += 1;
            continue;
        }
        let mut why = vec![format!("lag {}", c.lag)];
        why.push(
            if c.connected {
                "connected"
            } else {
                "disconnected"
            }
            .to_string(),
        );
        if c.failing > 0 {
            why.push(format!("{} of {} targets failing", c.failing, c.targets));
        }
        let _ = writeln!(
            out,
            "  cluster {}  {}  reported {}",
            cell(&c.cluster),
            why.join("  "),
            when(c.reported_at_ms)
        );
        for t in ring
            .clusters
            .iter()
            .filter(|t| t.cluster == c.cluster && !t.error.is_empty() && wanted(&t.image))
        {
            let _ = writeln!(
                out,
                "    FAILING {} ({}) {} {}: {}",
                cell(&t.target),
                cell(&t.file),
                cell(&t.image),
                digest(&t.digest),
                cell(&t.error)
            );
        }
    }
    if fine > 0 {
        let _ = writeln!(
            out,
            "  {} caught up, connected, not failing",
            plural(fine, "cluster")
        );
    }
}

fn gate_line(gate: &pb::Gate, st: Option<&pb::GateStatus>) -> String {
    let mut rules = Vec::new();
    if gate.require_applied {
        rules.push("requireApplied".to_string());
    }
    if gate.soak_seconds > 0 {
        rules.push(format!("soak {}", duration(gate.soak_seconds)));
    }
    if gate.auto_promote {
        rules.push("autoPromote".to_string());
    }
    let rules = if rules.is_empty() {
        "no rules".to_string()
    } else {
        rules.join(", ")
    };
    let Some(s) = st else { return rules };
    let candidate = if s.candidate.is_empty() {
        String::new()
    } else {
        format!(" for {}", digest(&s.candidate))
    };
    if s.open {
        format!("open ({rules}){candidate}")
    } else {
        format!("closed ({rules}){candidate}: {}", cell(&s.why_closed))
    }
}

/// Seconds as the pipeline file writes durations: `1h30m`, `10m`, `90s` → `1m30s`.
pub fn duration(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs % 3600 / 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        let _ = write!(out, "{h}h");
    }
    if m > 0 {
        let _ = write!(out, "{m}m");
    }
    if s > 0 || out.is_empty() {
        let _ = write!(out, "{s}s");
    }
    out
}

/// `ferry reject`.
pub fn rejected(resp: &pb::RejectResponse) -> String {
    let r = resp.rejection.clone().unwrap_or_default();
    let mut out = format!(
        "nothing moved: rejected {}@{} ({}); it can never enter a ring again\n",
        cell(&r.image),
        digest(&r.digest),
        cell(&r.reason)
    );
    for p in &resp.running {
        let _ = writeln!(
            out,
            "still running: {}/{} (flagged in ferry status; roll it back or promote another)",
            cell(&p.pipeline),
            cell(&p.ring)
        );
    }
    out
}

#[cfg(test)]
#[path = "print_tests.rs"]
mod tests;
