//! Percentiles over measured values, and what `/proc` says about a process and a directory.

use std::path::Path;

/// Measured values, sorted, for percentiles.
#[derive(Debug, Clone)]
pub struct Dist {
    sorted: Vec<f64>,
}

impl Dist {
    /// Sorts `values` (NaNs last; none are expected).
    pub fn new(mut values: Vec<f64>) -> Dist {
        values.sort_by(f64::total_cmp);
        Dist { sorted: values }
    }

    /// The nearest-rank percentile `p` in 0..=100; 0.0 for no values.
    pub fn pct(&self, p: f64) -> f64 {
        if self.sorted.is_empty() {
            return 0.0;
        }
        let rank = ((p / 100.0) * self.sorted.len() as f64).ceil() as usize;
        self.sorted[rank.clamp(1, self.sorted.len()) - 1]
    }

    /// The median.
    pub fn p50(&self) -> f64 {
        self.pct(50.0)
    }

    /// The 99th percentile.
    pub fn p99(&self) -> f64 {
        self.pct(99.0)
    }

    /// The largest value.
    pub fn max(&self) -> f64 {
        self.sorted.last().copied().unwrap_or(0.0)
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.sorted.len()
    }
}

/// The resident set size of process `pid`, in bytes (`VmRSS` in `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS for process {pid}"))?;
    Ok(kb * 1024)
}

/// The bytes of every file under `dir` (apparent sizes, as `du -sb` counts them).
pub fn dir_bytes(dir: &Path) -> anyhow::Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            dir_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}

/// `bytes` as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / 1024.0 / 1024.0)
}

/// `n` rounded, with thousands separated by commas: 28800000.0 → "28,800,000".
pub fn grouped(n: f64) -> String {
    let digits = format!("{:.0}", n.abs());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < -0.5 {
        out.insert(0, '-');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{grouped, Dist};

    #[test]
    fn grouped_thousands() {
        assert_eq!(grouped(28_800_000.0), "28,800,000");
        assert_eq!(grouped(999.4), "999");
        assert_eq!(grouped(1000.0), "1,000");
        assert_eq!(grouped(0.0), "0");
        assert_eq!(grouped(-12345.0), "-12,345");
    }

    #[test]
    fn nearest_rank_percentiles() {
        let d = Dist::new((1..=100).map(f64::from).rev().collect());
        assert_eq!(d.p50(), 50.0);
        assert_eq!(d.p99(), 99.0);
        assert_eq!(d.pct(100.0), 100.0);
        assert_eq!(d.pct(0.0), 1.0);
        assert_eq!(Dist::new(vec![7.0]).p99(), 7.0);
        assert_eq!(Dist::new(vec![]).p50(), 0.0);
    }
}
