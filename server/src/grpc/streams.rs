//! Open `Subscribe` streams per token, capped so one leaked or hostile token cannot hold the
//! server's memory (about 33 KiB per stream, BENCHMARKS.md scenario 3).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tonic::Status;

/// Counts of open streams by token id.
#[derive(Clone)]
pub struct StreamCounts {
    open: Arc<Mutex<HashMap<i64, usize>>>,
    max_per_token: usize,
}

/// One open stream's place in the count; dropping it (when the stream ends) frees the place.
pub struct StreamSlot {
    open: Arc<Mutex<HashMap<i64, usize>>>,
    token: i64,
}

impl StreamCounts {
    /// Allows `max_per_token` open streams per token.
    pub fn new(max_per_token: usize) -> Self {
        StreamCounts {
            open: Arc::default(),
            max_per_token,
        }
    }

    /// Takes a place for a new stream of `token` (id) named `name`, or RESOURCE_EXHAUSTED.
    pub fn open(&self, token: i64, name: &str) -> Result<StreamSlot, Status> {
        let mut open = self.open.lock().expect("stream counts poisoned");
        let n = open.entry(token).or_default();
        if *n >= self.max_per_token {
            return Err(Status::resource_exhausted(format!(
                "token {name:?} already has {n} open event streams, the most one token may hold (--max-streams-per-token {}); give each cluster its own token",
                self.max_per_token
            )));
        }
        *n += 1;
        Ok(StreamSlot {
            open: self.open.clone(),
            token,
        })
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().expect("stream counts poisoned");
        if let Some(n) = open.get_mut(&self.token) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.token);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_token_and_freed_on_drop() {
        let counts = StreamCounts::new(2);
        let a1 = counts.open(1, "a").unwrap();
        let _a2 = counts.open(1, "a").unwrap();
        let err = counts.open(1, "a").err().unwrap();
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        assert!(
            err.message().contains("--max-streams-per-token 2"),
            "{}",
            err.message()
        );
        let _b = counts.open(2, "b").unwrap();
        drop(a1);
        assert!(counts.open(1, "a").is_ok());
    }
}
