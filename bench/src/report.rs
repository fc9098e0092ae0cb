//! The results table, and `BENCHMARKS.md`: each scenario owns one section between markers, so
//! running one scenario updates its section and leaves the others' last results in place.

use std::path::PathBuf;

use crate::wrk::Sample;

/// One endpoint measured on every server.
pub struct Row {
    /// What was requested.
    pub what: String,
    /// ferry's numbers.
    pub ferry: Sample,
    /// docker-registry's numbers.
    pub registry: Sample,
    /// The constant handler's numbers, where measured.
    pub ceiling: Option<Sample>,
}

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

/// Prints `section` and stores it in BENCHMARKS.md between this scenario's markers.
pub fn write_section(name: &str, section: &str) -> anyhow::Result<()> {
    println!("{section}");
    let path = benchmarks_md();
    let (start, end) = (
        format!("<!-- scenario:{name} -->"),
        format!("<!-- /scenario:{name} -->"),
    );
    let mut doc = std::fs::read_to_string(&path).unwrap_or_else(|_| "# Benchmarks\n\nProduced by `bench/run.sh`; each section is rewritten when its scenario runs.\n".into());
    let block = format!("{start}\n{section}{end}\n");
    match (doc.find(&start), doc.find(&end)) {
        (Some(a), Some(b)) if a < b => doc.replace_range(a..b + end.len() + 1, &block),
        _ => {
            doc.push('\n');
            doc.push_str(&block);
        }
    }
    std::fs::write(&path, doc)?;
    eprintln!("wrote {}", path.display());
    Ok(())
}
