//! The results table, and `BENCHMARKS.md`: each scenario owns one section between markers, so
//! running one scenario updates its section and leaves the others' last results in place.

use std::path::PathBuf;

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The machine and date, for the top of a section.
pub fn machine() -> String {
    let cpuinfo = read("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem_kb: u64 = read("/proc/meminfo")
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!(
        "Machine: {cores} cores ({model}), {:.0} GiB RAM; measured {date}.\n\n",
        mem_kb as f64 / 1024.0 / 1024.0
    )
}

fn benchmarks_md() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../BENCHMARKS.md")
}

/// The scenarios in the order their sections appear in BENCHMARKS.md.
const ORDER: [&str; 11] = [
    "registry",
    "publish",
    "fanout",
    "end-to-end",
    "upstream",
    "catchup",
    "status",
    "promote",
    "dashboard",
    "notify",
    "monorepo",
];

fn markers(name: &str) -> (String, String) {
    (
        format!("<!-- scenario:{name} -->"),
        format!("<!-- /scenario:{name} -->"),
    )
}

/// Puts `section` in place of `name`'s section in `doc`. The text before the first section
/// (the summary, written by hand) is kept; the sections follow in [`ORDER`].
fn replace_section(doc: &str, name: &str, section: &str) -> String {
    let first_marker = doc.find("<!-- scenario:").unwrap_or(doc.len());
    let mut out = doc[..first_marker].to_string();
    if !out.is_empty() && !out.ends_with("\n\n") {
        out.push('\n');
    }
    for scenario in ORDER
        .iter()
        .copied()
        .chain((!ORDER.contains(&name)).then_some(name))
    {
        let (start, end) = markers(scenario);
        let body = if scenario == name {
            Some(section.to_string())
        } else {
            match (doc.find(&start), doc.find(&end)) {
                (Some(a), Some(b)) if a < b => Some(doc[a + start.len() + 1..b].to_string()),
                _ => None,
            }
        };
        if let Some(body) = body {
            out.push_str(&format!("{start}\n{body}{end}\n\n"));
        }
    }
    out.truncate(out.trim_end().len() + 1);
    out
}

/// Stores `section` in BENCHMARKS.md between this scenario's markers.
pub fn write_section(name: &str, section: &str) -> anyhow::Result<()> {
    let path = benchmarks_md();
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        "# Benchmarks\n\nProduced by `bench/run.sh`; each section is rewritten when its scenario runs.\n".into()
    });
    std::fs::write(&path, replace_section(&doc, name, section))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::replace_section;

    #[test]
    fn sections_keep_scenario_order_and_the_summary() {
        let doc = "# B\n\nsummary\n";
        let doc = replace_section(doc, "catchup", "six\n");
        let doc = replace_section(&doc, "registry", "one\n");
        let doc = replace_section(&doc, "catchup", "six again\n");
        assert_eq!(
            doc,
            "# B\n\nsummary\n\n<!-- scenario:registry -->\none\n<!-- /scenario:registry -->\n\n\
             <!-- scenario:catchup -->\nsix again\n<!-- /scenario:catchup -->\n"
        );
    }
}
