//! How the dashboard writes times, digests and labels.

use maud::{html, Markup};

use crate::store::now_ms;

/// `2026-12-01 15:04:05Z`; `-` for 0 (never): the form the CLI's tables print.
pub(super) fn time(ms: i64) -> String {
    ferry_proto::time::table_time(ms)
}

/// How long ago `ms` was: `12s ago`, `5m ago`, `3h ago`, `2d ago`.
pub(super) fn ago(ms: i64) -> String {
    if ms <= 0 {
        return "never".into();
    }
    let secs = (now_ms() - ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86_400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86_400),
    }
}

/// A time with its age, the exact time on hover.
pub(super) fn when(ms: i64) -> Markup {
    html! { span title=(time(ms)) { (ago(ms)) } }
}

/// `sha256:0123456789ab`: enough to tell digests apart on a page; the full one on hover.
pub(super) fn digest(d: &str) -> Markup {
    if d.is_empty() {
        return html! { span.muted { "-" } };
    }
    let short: String = match d.split_once(':') {
        Some((alg, hex)) => format!("{alg}:{}", hex.get(..12).unwrap_or(hex)),
        None => d.chars().take(19).collect(),
    };
    html! { code title=(d) { (short) } }
}

/// Labels as a list of `key=value` chips. Labels are publisher input: maud escapes them.
pub(super) fn labels(labels: &std::collections::BTreeMap<String, String>) -> Markup {
    html! {
        ul.labels {
            @for (k, v) in labels {
                li { (k) "=" (v) }
            }
        }
    }
}

/// A commit id cut to 12 characters, the full one on hover.
pub(super) fn commit(c: &str) -> Markup {
    if c.is_empty() {
        return html! { span.muted { "-" } };
    }
    html! { code title=(c) { (c.get(..12).unwrap_or(c)) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_and_never_is_a_dash() {
        assert_eq!(time(0), "-");
        assert_eq!(time(1_764_601_445_000), "2025-12-01 15:04:05Z");
    }

    #[test]
    fn digests_are_cut_but_keep_the_full_value_on_hover() {
        let d = format!("sha256:{}", "ab".repeat(32));
        let html = digest(&d).into_string();
        assert!(html.contains(">sha256:abababababab<"), "{html}");
        assert!(html.contains(&format!("title=\"{d}\"")), "{html}");
    }
}
