//! Fixes the plugin's build identity at compile time: a digest of every source file the
//! plugin is built from (this crate, rzgate-core, rzgate-arm64). A snapshot's state file
//! records it, and a plugin built from other sources refuses to load that state: its models
//! may save and read their state differently.

use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn main() {
    let here = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let roots = [
        here.join("src"),
        here.join("Cargo.toml"),
        here.join("../core/src"),
        here.join("../core/Cargo.toml"),
        here.join("../arm64/src"),
        here.join("../arm64/Cargo.toml"),
    ];
    let mut all = Vec::new();
    for root in &roots {
        println!("cargo:rerun-if-changed={}", root.display());
        if root.is_dir() {
            files(root, &mut all);
        } else {
            all.push(root.clone());
        }
    }
    all.sort();
    // FNV-1a over (relative path, contents) of every file, in path order.
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            hash = (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    for path in &all {
        let rel = path.strip_prefix(&here).unwrap_or(path);
        feed(rel.to_string_lossy().as_bytes());
        feed(&[0]);
        feed(&std::fs::read(path).unwrap_or_default());
        feed(&[0]);
    }
    println!(
        "cargo:rustc-env=RZGATE_BUILD_ID={}-{hash:016x}",
        std::env::var("CARGO_PKG_VERSION").unwrap_or_default()
    );
}
