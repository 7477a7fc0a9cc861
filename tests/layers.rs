//! The import rules of ARCHITECTURE.md, read off the source: the pure core
//! uses nothing but itself and no system time, sockets, JSON, GStreamer or
//! SQL; the edges (media, rtc, the record) never reach back into the live
//! runtime, the wire or HTTP; and the modules import no circle except
//! those listed in `KNOWN_CIRCLES`, which must shrink, never grow.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const CORE: &[&str] = &[
    "timecode",
    "clock",
    "session",
    "drawing",
    "ranges",
    "framecode",
];
const EDGES: &[&str] = &[
    "media", "rtc", "store", "export", "exporter", "webhooks", "cluster", "uploads",
];
const RUNTIME: &[&str] = &["live", "protocol", "http", "ws"];
/// What the pure core may not name: system time, async runtime, sockets,
/// JSON, GStreamer, SQL.
const IMPURE: &[&str] = &[
    "SystemTime",
    "Instant::now",
    "tokio",
    "std::net",
    "serde_json",
    "gstreamer",
    "gst::",
    "rusqlite",
];
/// Circles that still stand (issue #14 removes them). A circle that is
/// gone must leave this list, so that it cannot come back unnoticed.
/// (`config` checks webhook URLs with `webhooks`, which takes its settings
/// and errors from `config`.)
const KNOWN_CIRCLES: &[(&str, &str)] = &[("config", "webhooks")];

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("src readable") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a source file belongs to (`src/media/player.rs`
/// → `media`, `src/live.rs` → `live`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_string()
}

/// The code of a file without its `#[cfg(test)]` module and comments:
/// tests may use whatever they like.
fn shipped_code(text: &str) -> String {
    let code = match text.find("#[cfg(test)]\nmod tests") {
        Some(at) => &text[..at],
        None => text,
    };
    code.lines()
        .filter(|l| {
            let t = l.trim_start();
            !(t.starts_with("//") || t.starts_with("///") || t.starts_with("//!"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::`.
fn imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if modules.contains(&name) {
            found.insert(name);
        }
    }
    // `use crate::{a, b::c}` names several at once.
    for (at, _) in code.match_indices("crate::{") {
        let rest = &code[at + "crate::{".len()..];
        let group = &rest[..rest.find('}').unwrap_or(rest.len())];
        for part in group.split(',') {
            let name: String = part
                .trim()
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if modules.contains(&name) {
                found.insert(name);
            }
        }
    }
    found
}

/// Module → the modules it imports, from the shipped code under src/.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let code = shipped_code(&std::fs::read_to_string(file).expect("readable"));
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(
            imports(&code, &modules)
                .into_iter()
                .filter(|m| *m != module),
        );
    }
    graph
}

fn core_code() -> Vec<(PathBuf, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    files
        .into_iter()
        .filter(|f| CORE.contains(&module_of(&src, f).as_str()))
        .map(|f| {
            let code = shipped_code(&std::fs::read_to_string(&f).expect("readable"));
            (f, code)
        })
        .collect()
}

#[test]
fn the_pure_core_imports_only_itself_and_nothing_impure() {
    let graph = graph();
    for module in CORE {
        let outside: Vec<_> = graph[*module]
            .iter()
            .filter(|m| !CORE.contains(&m.as_str()))
            .collect();
        assert!(outside.is_empty(), "{module} imports {outside:?}");
    }
    for (file, code) in core_code() {
        for word in IMPURE {
            assert!(!code.contains(word), "{} names {word}", file.display());
        }
    }
}

#[test]
fn edges_never_reach_back_into_the_runtime_or_the_wire() {
    let graph = graph();
    for edge in EDGES {
        let back: Vec<_> = graph
            .get(*edge)
            .into_iter()
            .flatten()
            .filter(|m| RUNTIME.contains(&m.as_str()))
            .collect();
        assert!(back.is_empty(), "{edge} imports {back:?}");
    }
}

#[test]
fn no_module_circles_but_the_known_ones_and_those_still_stand() {
    let graph = graph();
    let mut circles = BTreeSet::new();
    for (a, uses) in &graph {
        for b in uses {
            if graph.get(b).is_some_and(|back| back.contains(a)) && a < b {
                circles.insert((a.clone(), b.clone()));
            }
        }
    }
    let known: BTreeSet<(String, String)> = KNOWN_CIRCLES
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(
        circles, known,
        "two-module import circles (a new one is a break; a known one gone leaves KNOWN_CIRCLES)"
    );
}

#[test]
fn the_reader_finds_imports_in_every_form() {
    let modules: BTreeSet<String> = ["live", "clock", "store"].map(String::from).into();
    let code =
        "use crate::live::Outbound;\nlet t = crate::clock::now();\nuse crate::{store, clock::X};";
    assert_eq!(imports(code, &modules), modules);
    assert!(imports("use crate::livestock;", &modules).is_empty());
    assert_eq!(
        shipped_code("use crate::live;\n#[cfg(test)]\nmod tests {\n use crate::store;\n}"),
        "use crate::live;"
    );
}
