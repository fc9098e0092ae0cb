//! Gates: whether a digest may enter a ring, from the reports of the clusters that follow the
//! ring before it (`requireApplied`) and how long it has been there (`soak`).
//!
//! Pure functions of the reports and the pointer: the caller gathers them (in memory) once per
//! ring, so a status of a thousand clusters costs no SQL.

use std::sync::Arc;

use super::pipelines::Gate;
use super::reports::ReportedTarget;

/// How a gate stands for one candidate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateEval {
    /// Whether the candidate may enter.
    pub open: bool,
    /// Why not: the clusters that have not applied it, or the soak left.
    pub why_closed: String,
    /// Clusters that have not reported the candidate applied.
    pub waiting_for: Vec<String>,
    /// Seconds of soak left.
    pub soak_left_seconds: u64,
    /// The digest evaluated (of the first member).
    pub candidate: String,
}

/// What a gate is asked about: entering `ring` of `pipeline` with `members` (image, digest),
/// one for a plain image, several for a bundle.
pub struct GateQuery<'a> {
    /// The pipeline.
    pub pipeline: &'a str,
    /// The ring to enter.
    pub ring: &'a str,
    /// The ring before it.
    pub previous: &'a str,
    /// (image, digest) to enter.
    pub members: &'a [(String, String)],
    /// Latest reports of targets following `previous` of the pipeline.
    pub reports: &'a [Arc<ReportedTarget>],
    /// When the first member's digest entered `previous` (its pointer's since), if it runs there.
    pub entered_previous_ms: Option<i64>,
    /// Now (ms since the epoch).
    pub now_ms: i64,
}

/// The most cluster names a refusal lists before "and N more".
const NAMES_SHOWN: usize = 10;

fn names(list: &[String]) -> String {
    let shown: Vec<&str> = list.iter().take(NAMES_SHOWN).map(String::as_str).collect();
    let mut s = shown.join(", ");
    if list.len() > NAMES_SHOWN {
        s.push_str(&format!(" and {} more", list.len() - NAMES_SHOWN));
    }
    s
}

/// `90s`, `10m`, `1h30m5s`.
pub fn duration_text(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 || out.is_empty() {
        out.push_str(&format!("{s}s"));
    }
    out
}

/// Evaluates `gate` for `q`.
pub fn evaluate(gate: &Gate, q: &GateQuery) -> GateEval {
    let candidate = q.members.first().map(|m| m.1.clone()).unwrap_or_default();
    let mut eval = GateEval {
        open: true,
        candidate,
        ..Default::default()
    };
    if !gate.guards() {
        return eval;
    }
    let short = |d: &str| {
        d.strip_prefix("sha256:")
            .unwrap_or(d)
            .chars()
            .take(12)
            .collect::<String>()
    };
    let mut soak_from = q.entered_previous_ms;
    if gate.require_applied {
        let mut following = 0;
        let mut applied_at: Option<i64> = None;
        let mut waiting: Vec<String> = Vec::new();
        for t in q.reports {
            let Some((_, digest)) = q.members.iter().find(|(i, _)| *i == t.image) else {
                continue;
            };
            following += 1;
            if t.digest == *digest && t.error.is_empty() {
                applied_at = Some(applied_at.map_or(t.since_ms, |a| a.max(t.since_ms)));
            } else if !waiting.contains(&t.cluster) {
                waiting.push(t.cluster.clone());
            }
        }
        waiting.sort();
        if following == 0 {
            eval.open = false;
            eval.why_closed = format!(
                "gate of ring {} (requireApplied): no cluster follows ring {} of pipeline {} for {}; a cluster must report it applied first",
                q.ring,
                q.previous,
                q.pipeline,
                q.members.iter().map(|(i, _)| i.as_str()).collect::<Vec<_>>().join(", ")
            );
            return eval;
        }
        if !waiting.is_empty() {
            eval.open = false;
            eval.why_closed = format!(
                "gate of ring {} (requireApplied): {} following ring {} {} not reported {} applied without error",
                q.ring,
                names(&waiting),
                q.previous,
                if waiting.len() == 1 { "has" } else { "have" },
                short(&eval.candidate),
            );
            eval.waiting_for = waiting;
            return eval;
        }
        soak_from = applied_at;
    }
    if gate.soak_seconds > 0 {
        let Some(from) = soak_from else {
            eval.open = false;
            eval.why_closed = format!(
                "gate of ring {} (soak {}): {} does not run in ring {}, so its soak has not started",
                q.ring,
                duration_text(gate.soak_seconds),
                short(&eval.candidate),
                q.previous
            );
            return eval;
        };
        let passed = (q.now_ms - from).max(0) as u64;
        let need = gate.soak_seconds * 1000;
        if passed < need {
            let left = (need - passed).div_ceil(1000);
            eval.open = false;
            eval.soak_left_seconds = left;
            eval.why_closed = format!(
                "gate of ring {} (soak {}): {} has soaked in ring {} for {}; the soak still runs for {}",
                q.ring,
                duration_text(gate.soak_seconds),
                short(&eval.candidate),
                q.previous,
                duration_text(passed / 1000),
                duration_text(left)
            );
        }
    }
    eval
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(cluster: &str, digest: &str, error: &str, since_ms: i64) -> Arc<ReportedTarget> {
        Arc::new(ReportedTarget {
            cluster: cluster.into(),
            image: "img".into(),
            digest: digest.into(),
            error: error.into(),
            since_ms,
            ..Default::default()
        })
    }

    fn eval(gate: Gate, reports: &[Arc<ReportedTarget>], entered: Option<i64>) -> GateEval {
        let members = [("img".to_string(), "sha256:aaaa".to_string())];
        evaluate(
            &gate,
            &GateQuery {
                pipeline: "shop",
                ring: "users",
                previous: "testers",
                members: &members,
                reports,
                entered_previous_ms: entered,
                now_ms: 100_000,
            },
        )
    }

    #[test]
    fn require_applied_names_the_clusters_and_soak_the_time_left() {
        let applied = Gate {
            require_applied: true,
            ..Default::default()
        };
        let e = eval(applied, &[], None);
        assert!(
            !e.open && e.why_closed.contains("no cluster follows ring testers"),
            "{e:?}"
        );
        let e = eval(
            applied,
            &[
                report("b", "sha256:aaaa", "", 0),
                report("a", "sha256:old", "", 0),
                report("c", "sha256:aaaa", "boom", 0),
            ],
            None,
        );
        assert!(!e.open, "{e:?}");
        assert_eq!(e.waiting_for, ["a", "c"]);
        assert!(
            e.why_closed
                .contains("a, c following ring testers have not"),
            "{}",
            e.why_closed
        );
        let e = eval(applied, &[report("a", "sha256:aaaa", "", 0)], None);
        assert!(e.open, "{e:?}");

        let soaked = Gate {
            require_applied: true,
            soak_seconds: 600,
            ..Default::default()
        };
        let e = eval(soaked, &[report("a", "sha256:aaaa", "", 40_000)], None);
        assert!(!e.open);
        assert_eq!(e.soak_left_seconds, 540);
        assert!(
            e.why_closed.contains("still runs for 9m"),
            "{}",
            e.why_closed
        );

        let soak_only = Gate {
            soak_seconds: 60,
            ..Default::default()
        };
        assert!(eval(soak_only, &[], Some(0)).open);
        assert!(!eval(soak_only, &[], Some(90_000)).open);
        assert!(!eval(soak_only, &[], None).open);
        assert!(eval(Gate::default(), &[], None).open);
        assert_eq!(duration_text(5400), "1h30m");
        assert_eq!(duration_text(0), "0s");
    }
}
