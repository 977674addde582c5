//! The module map of ARCHITECTURE.md, checked over the source's `use` lines: each top-level
//! module of `provisiond` uses only modules of lower layers (no upward arrow, hence no circle
//! between them); the files of one directory module (its `mod.rs` aside, which declares the
//! interface its files implement) do not import each other in a circle; and the crates below
//! `provisiond` never depend on it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers of `crates/provisiond/src`, lowest first: a module may use the modules of the
/// layers before its own, never those of its own layer or after.
const LAYERS: &[&[&str]] = &[
    &["time", "ids", "wire_enum", "tls"],
    &["store", "crypto", "protocol"],
    &[
        "auth",
        "idempotency",
        "in_flight",
        "audit",
        "paging",
        "served",
    ],
    &["context", "datadir", "engine_keys"],
    &["queue", "testing"],
    &["catalog"],
    &["proton"],
    &["s3"],
    &["repair"],
    &["metrics"],
    &["console"],
    &["server"],
    &["bench"],
    &["cli"],
];

/// Circles among the files of one directory that are known and being removed: none now. The
/// test fails on any circle not listed here, and on a listed one that is gone, so the list
/// only shrinks.
const KNOWN_CIRCLES: &[(&str, &[&str])] = &[];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The source of a file without its `#[cfg(test)]` part (tests may reach anywhere).
fn code(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    match text.find("#[cfg(test)]") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Every identifier path that follows `prefix` (`crate::`, `super::`), with the names inside
/// a `{…}` group after it: `crate::{a, b::c}` gives `a` and `b`.
fn names_after(code: &str, prefix: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find(prefix) {
        let before = rest[..at].chars().next_back();
        rest = &rest[at + prefix.len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name.starts_with(|c: char| c.is_ascii_lowercase()) && name != "self" {
                    found.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name.starts_with(|c: char| c.is_ascii_lowercase()) {
                found.insert(name);
            }
        }
    }
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
    out.sort();
    out
}

/// The top-level module a file belongs to.
fn top_module(path: &Path) -> String {
    let relative = path.strip_prefix(src()).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

#[test]
fn top_level_modules_use_only_lower_layers() {
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, names)| names.iter().map(move |n| (*n, i)))
        .collect();
    let mut upward = Vec::new();
    for path in rust_files(&src()) {
        let from = top_module(&path);
        if from == "lib" || from == "main" {
            continue;
        }
        let Some(&from_layer) = layer_of.get(from.as_str()) else {
            panic!(
                "{from} (in {}) has no layer in LAYERS: place it",
                path.display()
            );
        };
        for to in names_after(&code(&path), "crate::") {
            if to == from {
                continue;
            }
            let to_layer = *layer_of.get(to.as_str()).unwrap_or_else(|| {
                panic!("{} uses crate::{to}, which has no layer", path.display())
            });
            if to_layer >= from_layer {
                upward.push(format!("{} ({from}) uses {to}", path.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "arrows that do not point down:\n{}",
        upward.join("\n")
    );
}

/// The circles of a graph, each as the sorted set of its members.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<Vec<String>> {
    // Strongly connected components (Tarjan), those of more than one member.
    struct Walk<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<String, usize>,
        low: BTreeMap<String, usize>,
        stack: Vec<String>,
        on_stack: BTreeSet<String>,
        found: BTreeSet<Vec<String>>,
    }
    fn visit(w: &mut Walk<'_>, v: &str) {
        let i = w.index.len();
        w.index.insert(v.to_string(), i);
        w.low.insert(v.to_string(), i);
        w.stack.push(v.to_string());
        w.on_stack.insert(v.to_string());
        for next in w.edges.get(v).into_iter().flatten() {
            if !w.index.contains_key(next) {
                visit(w, next);
                let low = w.low[v].min(w.low[next]);
                w.low.insert(v.to_string(), low);
            } else if w.on_stack.contains(next) {
                let low = w.low[v].min(w.index[next]);
                w.low.insert(v.to_string(), low);
            }
        }
        if w.low[v] == w.index[v] {
            let mut component = Vec::new();
            loop {
                let top = w.stack.pop().unwrap();
                w.on_stack.remove(&top);
                let done = top == v;
                component.push(top);
                if done {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                w.found.insert(component);
            }
        }
    }
    let mut walk = Walk {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        found: BTreeSet::new(),
    };
    for v in edges.keys() {
        if !walk.index.contains_key(v) {
            visit(&mut walk, v);
        }
    }
    walk.found
}

#[test]
fn the_files_of_a_directory_module_import_each_other_without_circles() {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let module = dir.file_name().unwrap().to_string_lossy().to_string();
        let siblings: BTreeSet<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().to_string_lossy().to_string();
                name.strip_suffix(".rs").map(str::to_string)
            })
            .filter(|name| name != "mod")
            .collect();
        let mut edges = BTreeMap::new();
        for file in &siblings {
            let text = code(&dir.join(format!("{file}.rs")));
            let mut uses = names_after(&text, "super::");
            uses.extend(names_after(&text, &format!("crate::{module}::")));
            let to: BTreeSet<String> = uses
                .into_iter()
                .filter(|n| n != file && siblings.contains(n))
                .collect();
            edges.insert(file.clone(), to);
        }
        for circle in circles(&edges) {
            found.insert((module.clone(), circle));
        }
    }
    let known: BTreeSet<(String, Vec<String>)> = KNOWN_CIRCLES
        .iter()
        .map(|(module, members)| {
            let mut members: Vec<String> = members.iter().map(|m| m.to_string()).collect();
            members.sort();
            (module.to_string(), members)
        })
        .collect();
    let new: Vec<_> = found.difference(&known).collect();
    let gone: Vec<_> = known.difference(&found).collect();
    assert!(
        new.is_empty(),
        "files importing each other in a circle: {new:?}"
    );
    assert!(
        gone.is_empty(),
        "circles gone, take them off KNOWN_CIRCLES: {gone:?}"
    );
}

#[test]
fn the_crates_below_provisiond_never_depend_on_it() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    for name in ["engine", "formats", "model", "sigv4"] {
        let manifest = std::fs::read_to_string(crates.join(name).join("Cargo.toml")).unwrap();
        let depends = manifest.lines().any(|line| {
            line.trim_start().starts_with("provisiond ") || line.contains("\"../provisiond\"")
        });
        assert!(!depends, "crates/{name} depends on provisiond");
    }
    // The engine sees the server only through the public API: not even the model's dispatch.
    let engine = rust_files(&crates.join("engine").join("src"));
    for path in engine {
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            !text.contains("provisiond::"),
            "{} names provisiond",
            path.display()
        );
    }
}

#[test]
fn use_paths_are_read_as_written() {
    let names = names_after(
        "use crate::{idempotency, paging::{self, Page}};\nlet a = crate::store::get(x); my_crate::no",
        "crate::",
    );
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["idempotency", "paging", "store"]
    );
    let mut edges = BTreeMap::new();
    for (from, to) in [("a", "b"), ("b", "c"), ("c", "a"), ("d", "a")] {
        edges
            .entry(from.to_string())
            .or_insert_with(BTreeSet::new)
            .insert(to.to_string());
    }
    assert_eq!(
        circles(&edges).into_iter().collect::<Vec<_>>(),
        [vec!["a".to_string(), "b".to_string(), "c".to_string()]]
    );
}
