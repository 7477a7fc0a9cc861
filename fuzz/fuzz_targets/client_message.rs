#![no_main]
// The entry point and its invariants live in `syncreel::fuzzing`, which
// `tests/fuzz_corpus.rs` replays the corpus through.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| syncreel::fuzzing::client_message(data));
