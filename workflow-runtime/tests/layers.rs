//! The runtime's modules form layers (see the crate docs): each module uses only modules below
//! it, and no module uses one that uses it back. This test reads the sources and checks both,
//! so a new import that breaks the layering fails here with the file and the path it named.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules, bottom first.
const LAYERS: &[&str] = &["error", "engine", "broker", "client", "worker"];

/// Every `.rs` file under `dir`, with its module path (`broker::redis::plan`).
fn sources(dir: &Path, prefix: &[String], out: &mut Vec<(Vec<String>, PathBuf)>) {
    let mut entries: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let name = path.file_stem().unwrap().to_str().unwrap().to_owned();
        if path.is_dir() {
            let mut p = prefix.to_vec();
            p.push(name);
            sources(&path, &p, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let mut p = prefix.to_vec();
            if name != "mod" && name != "lib" {
                p.push(name);
            }
            out.push((p, path));
        }
    }
}

/// The code of a file without comments, string literals and its `#[cfg(test)]` module.
fn code(text: &str) -> String {
    let end = ["#[cfg(test)]", "#[cfg(all(test"]
        .iter()
        .filter_map(|m| text.find(m))
        .min()
        .unwrap_or(text.len());
    let text = &text[..end];
    text.lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .map(|l| {
            // Drop string literals (a path inside one is not a use).
            let mut out = String::new();
            let mut in_str = false;
            for c in l.chars() {
                if c == '"' {
                    in_str = !in_str;
                } else if !in_str {
                    out.push(c);
                }
            }
            out
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The module paths that `text` (the code of module `me`) names through `crate::` or `super::`,
/// as the longest prefix that is a module of the crate.
fn references(me: &[String], text: &str, modules: &BTreeSet<Vec<String>>) -> BTreeSet<Vec<String>> {
    let mut out = BTreeSet::new();
    let idents = |s: &str| -> Vec<String> {
        let mut parts = Vec::new();
        let mut rest = s;
        loop {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            if end == 0 {
                break;
            }
            parts.push(rest[..end].to_owned());
            match rest[end..].strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        parts
    };
    for (anchor, base) in [
        ("crate::", Vec::new()),
        ("super::", me[..me.len().saturating_sub(1)].to_vec()),
    ] {
        let mut from = 0;
        while let Some(i) = text[from..].find(anchor) {
            let at = from + i;
            from = at + anchor.len();
            // `self::super::`, `crate::x` inside a longer identifier: skip.
            if at > 0 && text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let mut path = base.clone();
            path.extend(idents(&text[from..]));
            // The longest prefix that is a module; `crate::{a, b}` names the root.
            let module = (0..=path.len())
                .rev()
                .map(|n| path[..n].to_vec())
                .find(|p| modules.contains(p))
                .unwrap_or_default();
            if module != me {
                out.insert(module);
            }
        }
    }
    // A child used by a relative path (`use registry::Registry;`, `pub use state::State;`).
    for child in modules
        .iter()
        .filter(|m| m.len() == me.len() + 1 && m.starts_with(me))
    {
        let name = format!("{}::", child[me.len()]);
        let used = text.match_indices(&name).any(|(at, _)| {
            !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':')
        });
        if used {
            out.insert(child.clone());
        }
    }
    out
}

#[test]
fn modules_use_only_lower_layers_and_never_each_other_both_ways() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &[], &mut files);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|(m, _)| m.clone()).collect();
    let rank = |m: &[String]| {
        m.first()
            .and_then(|top| LAYERS.iter().position(|l| l == top))
    };

    let mut graph: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    let mut wrong = Vec::new();
    for (me, path) in &files {
        if me.is_empty() {
            continue; // lib.rs: the root, above every layer
        }
        let Some(my_rank) = rank(me) else {
            wrong.push(format!(
                "{}: module `{}` is in no layer",
                path.display(),
                me[0]
            ));
            continue;
        };
        let refs = references(me, &code(&fs::read_to_string(path).unwrap()), &modules);
        for r in &refs {
            match rank(r) {
                Some(theirs) if theirs > my_rank => wrong.push(format!(
                    "{}: `{}` (layer {}) uses `{}` (layer {}), a layer above it",
                    path.display(),
                    me.join("::"),
                    LAYERS[my_rank],
                    r.join("::"),
                    LAYERS[theirs]
                )),
                None => wrong.push(format!(
                    "{}: `{}` uses the crate root; name the module instead",
                    path.display(),
                    me.join("::")
                )),
                _ => {}
            }
        }
        graph.insert(me.clone(), refs);
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));

    // No cycle between modules, at any depth (a parent that uses its child and a child that
    // uses its parent's items is a cycle too).
    fn visit(
        m: &Vec<String>,
        graph: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        stack: &mut Vec<Vec<String>>,
        done: &mut BTreeSet<Vec<String>>,
    ) -> Option<Vec<Vec<String>>> {
        if let Some(i) = stack.iter().position(|s| s == m) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(m.clone());
            return Some(cycle);
        }
        if !done.insert(m.clone()) {
            return None;
        }
        stack.push(m.clone());
        for next in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(next, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            let names: Vec<_> = cycle.iter().map(|m| m.join("::")).collect();
            panic!("modules use each other in a circle: {}", names.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_an_upward_use_and_a_circle() {
    let modules: BTreeSet<Vec<String>> = [
        vec![],
        vec!["engine".into()],
        vec!["engine".into(), "state".into()],
        vec!["worker".into()],
    ]
    .into();
    let me = vec!["engine".to_owned(), "state".to_owned()];
    let refs = references(
        &me,
        &code("use crate::worker::Worker;\n// crate::client in a comment\nuse super::Thing;"),
        &modules,
    );
    let expect: BTreeSet<Vec<String>> =
        [vec!["worker".to_owned()], vec!["engine".to_owned()]].into();
    assert_eq!(refs, expect);
    // The parent re-exports the child that uses it: a circle.
    let parent = references(&["engine".to_owned()], "pub use state::State;", &modules);
    assert!(parent.contains(&me), "{parent:?}");
}
