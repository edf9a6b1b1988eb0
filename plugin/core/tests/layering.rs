//! The layering of rzgate-core, checked on its `use crate::...` lines (tests included):
//! no module circles, models that know only the peripheral interface and the description,
//! and one registry that names the models.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Module name (`bus`, `soc`, `models::adc`) of a source file under src/.
fn module_name(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_string())
        .collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts.join("::")
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src").flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Top-level modules each module uses (`crate::soc::Device` counts as `soc`; a submodule
/// of `soc` using `super::` is inside `soc`). A `models::x` module uses `models`' siblings
/// by their full name.
fn uses() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in all {
        let module = module_name(&src, &file);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("read module");
        let used = out.entry(module.clone()).or_default();
        for line in text.lines().map(str::trim) {
            if line.starts_with("//") {
                continue;
            }
            for (i, _) in line.match_indices("crate::") {
                let rest = &line[i + "crate::".len()..];
                let name: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                    .collect();
                let mut segs = name.split("::").filter(|s| !s.is_empty());
                let Some(first) = segs.next() else { continue };
                // `crate::models::{adc, cpg}`: each named model.
                if first == "models" {
                    if let Some(list) = rest
                        .strip_prefix("models::{")
                        .and_then(|r| r.split('}').next())
                    {
                        for m in list.split(',').map(str::trim).filter(|m| !m.is_empty()) {
                            used.insert(format!("models::{m}"));
                        }
                        continue;
                    }
                }
                let target = if first == "models" {
                    match segs.next() {
                        Some(m) if m.chars().all(|c| c.is_ascii_lowercase() || c == '_') => {
                            format!("models::{m}")
                        }
                        _ => "models".to_string(),
                    }
                } else {
                    first.to_string()
                };
                if target != module
                    && !target.starts_with(char::is_uppercase)
                    && target != "test_soc"
                {
                    used.insert(target);
                }
            }
            if let Some(rest) = line.strip_prefix("use super::") {
                // A model using a sibling model (`super::adc::MODEL`).
                let sib: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if module.starts_with("models::") && !sib.is_empty() && sib != "super" {
                    used.insert(format!("models::{sib}"));
                }
            }
        }
    }
    out
}

fn cycle(
    node: &str,
    uses: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|p| p == node) {
        let mut c = path[at..].to_vec();
        c.push(node.to_string());
        return Some(c);
    }
    if done.contains(node) {
        return None;
    }
    path.push(node.to_string());
    for next in uses.get(node).into_iter().flatten() {
        if let Some(c) = cycle(next, uses, path, done) {
            return Some(c);
        }
    }
    path.pop();
    done.insert(node.to_string());
    None
}

#[test]
fn no_module_circles() {
    let uses = uses();
    assert!(
        uses.contains_key("bus") && uses.contains_key("models::adc"),
        "{uses:?}"
    );
    let mut done = BTreeSet::new();
    for m in uses.keys() {
        if let Some(c) = cycle(m, &uses, &mut Vec::new(), &mut done) {
            panic!("modules use each other in a circle: {}", c.join(" -> "));
        }
    }
}

#[test]
fn models_know_only_the_interface_and_the_description() {
    // `gate` only in the CPG's unit tests (they check CLK_MON with the gate's readers).
    let allowed = ["device", "regs", "config", "soc", "gate"];
    for (module, used) in uses() {
        if !module.starts_with("models::") {
            continue;
        }
        for u in used {
            let sibling = u.starts_with("models::");
            assert!(
                allowed.contains(&u.as_str()) || sibling,
                "{module} uses crate::{u}: models may use only {allowed:?} and sibling models"
            );
        }
    }
}

#[test]
fn only_the_registry_and_models_name_a_model() {
    for (module, used) in uses() {
        if module == "registry" || module.starts_with("models") {
            continue;
        }
        assert!(
            !used.iter().any(|u| u.starts_with("models")),
            "{module} names a concrete model ({used:?}); only the registry may"
        );
    }
}

#[test]
fn the_bus_and_the_description_know_no_model() {
    let uses = uses();
    for m in [
        "soc",
        "soc::dt",
        "soc::spec",
        "device",
        "gate",
        "event",
        "bus",
    ] {
        if let Some(used) = uses.get(m) {
            assert!(
                !used.iter().any(|u| u.starts_with("models")),
                "{m}: {used:?}"
            );
        }
    }
    assert!(uses["bus"].contains("registry") && uses["bus"].contains("device"));
}
