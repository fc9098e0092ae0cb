//! (being written)

/// `ferry-bench` options for this scenario.
#[derive(Debug, Clone, clap::Args)]
pub struct Options {}

/// Runs the scenario; returns its Markdown section.
pub fn run(_o: &Options) -> anyhow::Result<String> {
    anyhow::bail!("not written yet")
}
