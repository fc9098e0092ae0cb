//! Saying a thing once. Planning runs on every event batch and every resync, and finds the same
//! facts each time ("this tag is an SBOM", "this target's policy keeps it on 1.2.3"); logging
//! them every time would bury the one line a user needs. Each fact is logged the first time it
//! is seen by this process; a new release or a changed file is a new fact.

use std::collections::HashSet;
use std::hash::Hash;
use std::sync::Mutex;

/// The facts already logged.
#[derive(Debug)]
pub struct Notices<T> {
    seen: Mutex<HashSet<T>>,
}

impl<T> Default for Notices<T> {
    fn default() -> Self {
        Notices {
            seen: Mutex::new(HashSet::new()),
        }
    }
}

impl<T: Hash + Eq + Clone> Notices<T> {
    /// True the first time `fact` is offered, false after.
    pub fn first_time(&self, fact: &T) -> bool {
        let mut seen = self.seen.lock().expect("notices lock poisoned");
        if seen.contains(fact) {
            return false;
        }
        seen.insert(fact.clone());
        true
    }
}

#[cfg(test)]
mod tests {
    use super::Notices;

    #[test]
    fn each_fact_is_new_once() {
        let notices = Notices::default();
        assert!(notices.first_time(&"a"));
        assert!(!notices.first_time(&"a"));
        assert!(notices.first_time(&"b"));
    }
}
