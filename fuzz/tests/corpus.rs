//! Every seed and every saved regression passes every property, and a short fixed-seed fuzz
//! run of each target finds nothing. (The long runs are `ferry-fuzz TARGET --seconds N`.)

use ferry_fuzz::{corpus, inputs, run_target, TARGETS};
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

#[test]
fn seeds_and_regressions_pass() {
    for target in TARGETS {
        let files = corpus(target).unwrap();
        assert!(!files.is_empty(), "{target} has no seed corpus");
        for data in files {
            run_target(target, &data);
        }
    }
}

#[test]
fn a_short_deterministic_fuzz_run_finds_nothing() {
    for target in TARGETS {
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: 2_000,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::deterministic_rng(RngAlgorithm::ChaCha),
        );
        runner
            .run(&inputs(corpus(target).unwrap()), |data| {
                run_target(target, &data);
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{target}: {e}"));
    }
}
