//! Core's architecture, checked: its top-level modules are layers, in the order `lib.rs`
//! declares them, and a module may use only the modules declared before it. That makes the
//! module graph a DAG a reader can follow from the bottom (`kernel`) up, and it is what keeps
//! `oidc` standing on `signin` and never the reverse.
//!
//! The check reads the source as text: every `crate::name` path outside comments and strings
//! names a dependency on the top-level module `name` (grouped imports, `crate::{a::X, b::Y}`,
//! included).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The top-level modules in the order `lib.rs` declares them.
fn declared_layers() -> Vec<String> {
    let lib = fs::read_to_string(src().join("lib.rs")).expect("lib.rs");
    lib.lines()
        .filter_map(|line| {
            let line = line.trim();
            let rest = line
                .strip_prefix("pub mod ")
                .or_else(|| line.strip_prefix("mod "))?;
            Some(rest.trim_end_matches(';').trim().to_string())
        })
        .collect()
}

/// Every `.rs` file of a top-level module (a file `name.rs` or a folder `name/`).
fn files_of(module: &str) -> Vec<PathBuf> {
    let file = src().join(format!("{module}.rs"));
    if file.is_file() {
        return vec![file];
    }
    let mut out = Vec::new();
    let mut stack = vec![src().join(module)];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// The source without comments and string literals, so that a doc link or a message that
/// mentions `crate::x` is not read as a dependency.
fn code_only(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            i += end;
        } else if let Some(raw) = rest.strip_prefix("r#\"") {
            let end = raw.find("\"#").map_or(rest.len(), |e| e + 5);
            i += end;
        } else if bytes[i] == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if bytes[i] == b'\''
            && i + 2 < bytes.len()
            && (bytes[i + 2] == b'\'' || bytes[i + 1] == b'\\')
        {
            // A character literal such as '"' or '\''.
            let end = rest[1..].find('\'').map_or(rest.len(), |e| e + 2);
            i += if bytes[i + 1] == b'\\' {
                4.min(rest.len())
            } else {
                end
            };
        } else {
            let c = rest.chars().next().expect("a char");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn ident_at(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    &text[..end]
}

/// The first path segments after `crate::`, including each entry of a grouped import.
fn crate_paths(code: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        // `$crate::` inside a macro is the crate root as seen by the macro's user: not a layer.
        let before = &rest[..at];
        rest = &rest[at + "crate::".len()..];
        if before.ends_with('$')
            || before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_')
        {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            let mut depth = 1;
            let mut start = 0;
            for (k, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' => {
                        depth -= 1;
                        if depth == 0 {
                            break;
                        }
                    }
                    ',' if depth == 1 => start = k + 1,
                    _ => {}
                }
                if k == start {
                    let name = ident_at(group[k..].trim_start());
                    if !name.is_empty() {
                        names.insert(name.to_string());
                    }
                }
            }
        } else {
            names.insert(ident_at(rest).to_string());
        }
    }
    names
}

#[test]
fn each_module_uses_only_the_layers_below_it() {
    let layers = declared_layers();
    assert!(
        layers.len() >= 8,
        "lib.rs should declare core's layers, found {layers:?}"
    );
    let mut violations = Vec::new();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (position, module) in layers.iter().enumerate() {
        let below: BTreeSet<&str> = layers[..position].iter().map(String::as_str).collect();
        for file in files_of(module) {
            let code = code_only(&fs::read_to_string(&file).expect("source"));
            for used in crate_paths(&code) {
                if used == *module || !layers.contains(&used) {
                    continue;
                }
                graph
                    .entry(module.clone())
                    .or_default()
                    .insert(used.clone());
                if !below.contains(used.as_str()) {
                    violations.push(format!(
                        "{} uses crate::{used}, which is not below `{module}`",
                        file.strip_prefix(src()).unwrap_or(&file).display()
                    ));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "core's layers are, bottom up: {}.\nA module may use only those before it:\n{}",
        layers.join(" → "),
        violations.join("\n")
    );
    // The order is what a reader relies on: the graph has the edges it should, not none.
    assert!(graph["oidc"].contains("signin"), "oidc stands on signin");
    assert!(
        graph["signin"].contains("methods"),
        "signin stands on methods"
    );
}

#[test]
fn the_checker_sees_what_it_must() {
    let code = code_only(
        "use crate::kernel::Deps;\n\
         use crate::{directory::model::User, session::{AuthSession, MethodKind}};\n\
         // crate::oidc in a comment\n\
         /// [`crate::signin`] in a doc link\n\
         let s = \"crate::logs in a string\";\n\
         let c = '\"'; let t = crate::methods::tap::X;\n\
         $crate::narrow!(deps, X);\n",
    );
    let found: Vec<String> = crate_paths(&code).into_iter().collect();
    assert_eq!(found, ["directory", "kernel", "methods", "session"]);
}
