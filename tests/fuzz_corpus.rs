//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`) and of
//! the kept crash reproducers (`fuzz/regressions/<target>/`) through the
//! entry points the fuzz targets call, `syncreel::fuzzing`, so that an
//! ordinary `cargo test` guards what fuzzing found without building
//! sanitizers. An entry point's panic fails the test and names the file.

use std::path::{Path, PathBuf};

use syncreel::fuzzing::TARGETS;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `dir`, sorted; none when it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("a readable directory entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
}

fn replay(target: &str, entry: syncreel::fuzzing::Entry, files: &[PathBuf]) {
    for file in files {
        let data = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let outcome = std::panic::catch_unwind(|| entry(&data));
        if let Err(panic) = outcome {
            eprintln!("{target}: {} panicked", file.display());
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn every_corpus_file_passes_its_target() {
    for (target, entry) in TARGETS {
        let corpus = files(&fuzz_dir().join("corpus").join(target));
        assert!(
            corpus.len() >= 5,
            "fuzz/corpus/{target} has {} files: a corpus went missing",
            corpus.len()
        );
        replay(target, entry, &corpus);
    }
}

#[test]
fn every_kept_crash_passes_its_target() {
    let regressions = fuzz_dir().join("regressions");
    let mut kept = 0;
    for entry in std::fs::read_dir(&regressions).expect("fuzz/regressions exists") {
        let name = entry.expect("a readable entry").file_name();
        let name = name.to_string_lossy();
        assert!(
            TARGETS.iter().any(|(t, _)| *t == name),
            "fuzz/regressions/{name} is not a target's directory"
        );
    }
    for (target, entry) in TARGETS {
        let reproducers = files(&regressions.join(target));
        kept += reproducers.len();
        replay(target, entry, &reproducers);
    }
    assert!(kept > 0, "the crash reproducers went missing");
}

/// The replay can fail: a panic in an entry point reaches the test.
#[test]
#[should_panic(expected = "an invariant broke")]
fn a_broken_invariant_fails_the_replay() {
    fn broken(_: &[u8]) {
        panic!("an invariant broke");
    }
    let corpus = files(&fuzz_dir().join("corpus").join(TARGETS[0].0));
    replay("broken", broken, &corpus);
}
