//! The fuzz harness, shared with the corpus replay test `engine/tests/fuzz_corpus.rs`: both
//! include `engine/fuzz/harness.rs`, which documents the targets and their input formats.

include!("../harness.rs");
