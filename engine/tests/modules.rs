//! The engine's architecture, checked: the import graph of its top-level modules has no cycle,
//! and the leaves stay leaves (the queue knows no job kind; the process runner, the drivers and
//! maintenance know nothing of jobs).
//!
//! A module's imports are the `crate::NAME` paths its files name outside comments and outside
//! their test modules (`tests.rs`, `*_tests.rs`, `testing.rs` and `mod tests { … }`). `lib.rs` is the crate
//! root that declares the modules and builds the [`engine::Engine`] every module is handed:
//! the composition root, not a node of the graph.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

/// Files of `dir`, recursively.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without comments and without an inline `mod tests { … }` at the end.
fn code_of(source: &str) -> String {
    let source = source.split("#[cfg(test)]\nmod tests {").next().unwrap_or_default();
    source
        .lines()
        .map(|line| match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `code` names through `crate::`: `crate::jobs::Job` and
/// `use crate::{jobs::Job, db}` both count.
fn imports(code: &str, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // A use group: the first name of each item at depth 0.
            let mut depth = 0;
            let mut item_start = true;
            let mut name = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        if !name.is_empty() {
                            found.insert(std::mem::take(&mut name));
                        }
                        item_start = true;
                    }
                    c if item_start && (c.is_alphanumeric() || c == '_') => name.push(c),
                    _ if item_start && !name.is_empty() => {
                        found.insert(std::mem::take(&mut name));
                        item_start = false;
                    }
                    _ => {}
                }
            }
            if !name.is_empty() {
                found.insert(name);
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            found.insert(name);
        }
    }
    found
        .into_iter()
        .map(|name| match name.as_str() {
            // What lib.rs re-exports, by the module that defines it.
            "audit" | "Db" | "DbError" => "db".to_string(),
            "Config" => "config".to_string(),
            _ => name,
        })
        .filter(|name| modules.contains(name))
        .collect()
}

/// Top-level module → the top-level modules it imports.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let module_of = |path: &Path| -> String {
        let relative = path.strip_prefix(&src).unwrap();
        let first = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        first.trim_end_matches(".rs").to_string()
    };
    let modules: BTreeSet<String> = files.iter().map(|f| module_of(f)).filter(|m| m != "lib").collect();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy();
        let module = module_of(file);
        if module == "lib"
            || name == "tests.rs"
            || name.ends_with("_tests.rs")
            || name == "testing.rs"
            || module == "testing"
        {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let entry = graph.entry(module.clone()).or_default();
        entry.extend(imports(&code, &modules).into_iter().filter(|m| *m != module));
    }
    graph.remove("testing");
    for deps in graph.values_mut() {
        deps.remove("testing");
    }
    graph
}

/// A cycle through `start`, if there is one, as the path that closes it.
fn cycle_from(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    fn visit(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        start: &str,
        path: &mut Vec<String>,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        for next in graph.get(node).into_iter().flatten() {
            if next == start {
                path.push(next.clone());
                return true;
            }
            if seen.insert(next.clone()) {
                path.push(next.clone());
                if visit(graph, next, start, path, seen) {
                    return true;
                }
                path.pop();
            }
        }
        false
    }
    let mut path = vec![start.to_string()];
    visit(graph, start, start, &mut path, &mut BTreeSet::new()).then_some(path)
}

#[test]
fn the_engines_modules_import_each_other_without_a_cycle() {
    let graph = graph();
    assert!(graph.contains_key("jobs") && graph.contains_key("kinds"), "{graph:#?}");
    for module in graph.keys() {
        if let Some(cycle) = cycle_from(&graph, module) {
            panic!("import cycle: {}\n{graph:#?}", cycle.join(" → "));
        }
    }
}

#[test]
fn the_queue_knows_no_kind_and_the_leaves_know_no_jobs() {
    let graph = graph();
    let deps = |module: &str| graph.get(module).cloned().unwrap_or_default();
    assert!(
        !deps("jobs").contains("kinds"),
        "the queue imports a kind: {:?}",
        deps("jobs")
    );
    for leaf in ["process", "drivers", "maintenance", "http_client"] {
        let imported = deps(leaf);
        assert!(
            !imported.contains("jobs") && !imported.contains("kinds"),
            "{leaf} imports {imported:?}"
        );
    }
    for leaf in ["output", "text"] {
        assert!(deps(leaf).is_empty(), "{leaf} is a leaf but imports {:?}", deps(leaf));
    }
}

#[test]
fn a_use_group_names_each_module() {
    let modules: BTreeSet<String> = ["db", "jobs", "output"].map(String::from).into();
    let code = "use crate::{\n    Engine,\n    audit::{self, Outcome},\n    db::{jobs as rows, now_ms},\n    output::JobLog,\n};\nlet x = crate::jobs::Job::id;";
    assert_eq!(
        imports(code, &modules),
        ["db", "jobs", "output"].map(String::from).into()
    );
}
