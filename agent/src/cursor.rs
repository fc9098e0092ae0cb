//! The durable cursor: the last event seq this agent has fully applied (pushed, or found already
//! applied). Written atomically — a temp file, fsync, rename, fsync of the directory — so a crash
//! leaves either the old cursor or the new one, never a torn file.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;

/// The cursor file of one image provider.
#[derive(Debug, Clone)]
pub struct Cursor {
    path: PathBuf,
    seq: u64,
}

impl Cursor {
    /// Loads `state_dir/cursor-<provider>`; 0 when it does not exist yet.
    pub fn load(state_dir: &Path, provider: &str) -> anyhow::Result<Cursor> {
        let path = state_dir.join(format!("cursor-{provider}"));
        let seq = match fs::read_to_string(&path) {
            Ok(text) => text.trim().parse().with_context(|| {
                format!(
                    "cursor file {} does not hold a number: {text:?}",
                    path.display()
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(Cursor { path, seq })
    }

    /// The last fully applied seq.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// Records `seq` durably (no-op unless it moves forward).
    pub fn advance(&mut self, seq: u64) -> anyhow::Result<()> {
        if seq <= self.seq {
            return Ok(());
        }
        let dir = self.path.parent().expect("cursor path has a directory");
        let tmp = self.path.with_extension("tmp");
        {
            let mut f = File::create(&tmp).with_context(|| format!("writing {}", tmp.display()))?;
            writeln!(f, "{seq}")?;
            f.sync_all()?;
        }
        fs::rename(&tmp, &self.path)
            .with_context(|| format!("replacing {}", self.path.display()))?;
        File::open(dir)?.sync_all()?;
        self.seq = seq;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn survives_reload_and_never_moves_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Cursor::load(dir.path(), "ferry").unwrap();
        assert_eq!(c.seq(), 0);
        c.advance(7).unwrap();
        c.advance(3).unwrap();
        assert_eq!(Cursor::load(dir.path(), "ferry").unwrap().seq(), 7);
        fs::write(dir.path().join("cursor-bad"), "x").unwrap();
        let err = Cursor::load(dir.path(), "bad").unwrap_err().to_string();
        assert!(err.contains("cursor-bad"), "{err}");
    }
}
