//! The shape of the workspace, checked: no two top-level modules of a crate import each other
//! (directly or through others), and the runtime's halves depend on each other only as
//! `apm-runtime/ARCHITECTURE.md` draws it.
//!
//! Imports are read from the source text: every `crate::a::…` and `super::…` path outside
//! comments and `#[cfg(test)]` modules (inline, or in a `tests.rs`), `use crate::{a, b::c}`
//! groups included, and the crate root's re-exports (`crate::Agent` is `agent`'s). Test modules
//! are left out: a unit test may build a whole agent to exercise one part.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

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

/// The module path of a file under `src` (`record/span.rs` → `[record, span]`, `lib.rs` → `[]`).
fn module_path(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    if parts.first().is_some_and(|p| p == "bin") {
        return Vec::new();
    }
    parts
}

/// The code of a file without comments, string contents and `#[cfg(test)]` modules.
fn code_of(text: &str) -> String {
    let mut out = String::new();
    let mut skip_depth: Option<usize> = None;
    let mut depth = 0usize;
    let mut pending_test = false;
    for line in text.lines() {
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        if trimmed.starts_with("#[cfg(test)]") {
            pending_test = true;
            continue;
        }
        let opens = line.matches('{').count();
        let closes = line.matches('}').count();
        if pending_test && skip_depth.is_none() {
            pending_test = false;
            if trimmed.starts_with("mod ") && opens > closes {
                skip_depth = Some(depth);
                depth += opens - closes;
                continue;
            }
        }
        depth = (depth + opens).saturating_sub(closes);
        if let Some(d) = skip_depth {
            if depth <= d {
                skip_depth = None;
            }
            continue;
        }
        // Cut a trailing comment and the contents of string literals.
        let line = line.split(" // ").next().unwrap();
        let mut in_str = false;
        for c in line.chars() {
            if c == '"' {
                in_str = !in_str;
            }
            if !in_str {
                out.push(c);
            }
        }
        out.push('\n');
    }
    out
}

/// The first segments of every `crate::`-rooted path in `code`, groups expanded.
fn crate_paths(code: &str, here: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let word_start =
        |i: usize| i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_' || bytes[i - 1] == b'$');
    for (prefix, up) in [("crate::", None), ("super::", Some(()))] {
        let mut from = 0;
        while let Some(pos) = code[from..].find(prefix) {
            let at = from + pos;
            from = at + prefix.len();
            if !word_start(at) {
                continue;
            }
            let mut rest = &code[at + prefix.len()..];
            // `super::super::x` climbs once per `super`.
            let mut base: Vec<String> = here.to_vec();
            if up.is_some() {
                base.pop();
                while let Some(r) = rest.strip_prefix("super::") {
                    base.pop();
                    rest = r;
                }
            } else {
                base.clear();
            }
            let mut names = Vec::new();
            if let Some(group) = rest.strip_prefix('{') {
                let end = group.find('}').unwrap_or(group.len());
                for item in group[..end].split(',') {
                    names.push(item.trim().to_string());
                }
            } else {
                names.push(rest.to_string());
            }
            for name in names {
                let first: String = name.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if first.is_empty() || first == "self" {
                    continue;
                }
                match base.first() {
                    // Inside a top-level module, `super::x` is a sibling: the same module.
                    Some(top) => found.push(top.clone()),
                    None => found.push(first),
                }
            }
        }
    }
    found
}

/// Names the crate root re-exports, and the top-level module each comes from.
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    let code = code_of(lib);
    for stmt in code.split(';') {
        let stmt = stmt.trim();
        let Some(path) = stmt.strip_prefix("pub use ") else { continue };
        let module: String = path.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
        let names = match (path.find('{'), path.rfind('}')) {
            (Some(a), Some(b)) => path[a + 1..b].to_string(),
            _ => path.rsplit("::").next().unwrap().to_string(),
        };
        for name in names.split(',') {
            let name = name.split(" as ").last().unwrap().trim();
            if !name.is_empty() {
                map.insert(name.to_string(), module.clone());
            }
        }
    }
    map
}

/// The import graph between the top-level modules of the crate whose sources are in `src`.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let lib = ["lib.rs", "main.rs"].iter().map(|f| src.join(f)).find(|p| p.exists()).unwrap();
    let exported = reexports(&std::fs::read_to_string(&lib).unwrap());
    let tops: BTreeSet<String> = files.iter().filter_map(|f| module_path(src, f).first().cloned()).collect();
    let mut g = Graph::new();
    for file in &files {
        let here = module_path(src, file);
        let Some(top) = here.first().cloned() else { continue };
        // A `tests.rs` is a `#[cfg(test)] mod tests;` moved out of its parent's file.
        if here.last().is_some_and(|m| m == "tests") {
            continue;
        }
        let code = code_of(&std::fs::read_to_string(file).unwrap());
        let deps = g.entry(top.clone()).or_default();
        for first in crate_paths(&code, &here) {
            let module = if tops.contains(&first) { Some(first) } else { exported.get(&first).cloned() };
            if let Some(m) = module.filter(|m| *m != top && tops.contains(m)) {
                deps.insert(m);
            }
        }
    }
    g
}

/// A cycle in `g`, if there is one, as the modules along it.
fn find_cycle(g: &Graph) -> Option<Vec<String>> {
    fn visit(g: &Graph, n: &str, state: &mut BTreeMap<String, u8>, stack: &mut Vec<String>) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let at = stack.iter().position(|s| s == n).unwrap();
                let mut cycle = stack[at..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for m in g.get(n).into_iter().flatten() {
            if let Some(c) = visit(g, m, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    g.keys().find_map(|n| visit(g, n, &mut state, &mut Vec::new()))
}

fn show(g: &Graph) -> String {
    g.iter().map(|(m, deps)| format!("  {m} -> {}\n", deps.iter().cloned().collect::<Vec<_>>().join(", "))).collect()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn no_crate_of_the_workspace_has_an_import_cycle_between_its_modules() {
    for krate in ["apm-runtime/src", "apm-macros/src", "apm-bench/src", "src"] {
        let g = graph(&root().join(krate));
        assert!(g.len() > 1 || krate == "src", "{krate}: read no modules");
        if let Some(cycle) = find_cycle(&g) {
            panic!("{krate}: the modules {} import each other:\n{}", cycle.join(" -> "), show(&g));
        }
    }
}

/// The module table of `apm-runtime/ARCHITECTURE.md`: each module and what it imports.
fn documented_graph() -> Graph {
    let doc = std::fs::read_to_string(root().join("apm-runtime/ARCHITECTURE.md")).unwrap();
    let mut g = Graph::new();
    for line in doc.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split('|').collect();
        let names = |cell: &str| -> Vec<String> {
            cell.split(',').map(|n| n.trim().trim_matches('`').to_string()).filter(|n| !n.is_empty()).collect()
        };
        g.insert(names(cells[0]).remove(0), names(cells.get(1).copied().unwrap_or("")).into_iter().collect());
    }
    g
}

#[test]
fn the_runtime_s_modules_import_exactly_what_architecture_md_says() {
    let actual = graph(&root().join("apm-runtime/src"));
    let documented = documented_graph();
    assert!(documented.len() >= 10, "ARCHITECTURE.md's module table was not found: {documented:?}");
    let mut wrong = Vec::new();
    for module in actual.keys().chain(documented.keys()).collect::<BTreeSet<_>>() {
        let (has, says) = (actual.get(module), documented.get(module));
        match (has, says) {
            (None, _) => wrong.push(format!("ARCHITECTURE.md names a module `{module}` that does not exist")),
            (Some(_), None) => wrong.push(format!("`{module}` is missing from ARCHITECTURE.md's table")),
            (Some(has), Some(says)) => {
                for d in has.difference(says) {
                    wrong.push(format!("`{module}` imports `{d}`, which ARCHITECTURE.md does not allow"));
                }
                for d in says.difference(has) {
                    wrong.push(format!("ARCHITECTURE.md says `{module}` imports `{d}`, but it does not"));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}\nthe code's graph:\n{}", wrong.join("\n"), show(&actual));
}

#[test]
fn every_path_architecture_md_names_exists() {
    let doc = std::fs::read_to_string(root().join("apm-runtime/ARCHITECTURE.md")).unwrap();
    // Inline code only: fenced blocks (the drawings) are left out.
    let mut fenced = false;
    let text: String = doc
        .lines()
        .filter(|l| {
            fenced ^= l.starts_with("```");
            !fenced && !l.starts_with("```")
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let mut named = 0;
    for quoted in text.split('`').skip(1).step_by(2) {
        let path = quoted.trim_end_matches('/');
        if !(quoted.ends_with(".rs") || quoted.ends_with('/') || quoted.ends_with(".md")) || path.contains(' ') {
            continue;
        }
        named += 1;
        let found =
            [root().join("apm-runtime/src").join(path), root().join(path), root().join("apm-runtime").join(path)]
                .iter()
                .any(|p| p.exists());
        assert!(found, "ARCHITECTURE.md names `{quoted}`, which does not exist");
    }
    assert!(named >= 15, "only {named} paths found in ARCHITECTURE.md");
}

#[test]
fn the_checker_sees_an_import_cycle_when_there_is_one() {
    let dir = std::env::temp_dir().join(format!("apm-architecture-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("b")).unwrap();
    std::fs::write(dir.join("lib.rs"), "mod a;\nmod b;\npub use a::Thing;\n").unwrap();
    std::fs::write(
        dir.join("a.rs"),
        "// crate::c in a comment is no import\nuse crate::b::{inner::Y, Z};\npub struct Thing;\n",
    )
    .unwrap();
    std::fs::write(dir.join("b/mod.rs"), "pub mod inner;\npub struct Z;\n").unwrap();
    std::fs::write(
        dir.join("b/inner.rs"),
        "pub struct Y(super::Z, crate::Thing);\n#[cfg(test)]\nmod tests {\n    use crate::c;\n}\n",
    )
    .unwrap();
    let g = graph(&dir);
    assert_eq!(g["a"], BTreeSet::from(["b".to_string()]));
    assert_eq!(g["b"], BTreeSet::from(["a".to_string()]), "crate::Thing is a's");
    assert!(find_cycle(&g).is_some());
    std::fs::write(dir.join("b/inner.rs"), "pub struct Y(super::Z);\n").unwrap();
    assert!(find_cycle(&graph(&dir)).is_none());
    std::fs::remove_dir_all(&dir).unwrap();
}
