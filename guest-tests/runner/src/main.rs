//! `rzgate-runner`: the host side of the rzgate guest test matrix.
//!
//! It builds the guest DTB (`dtb`), boots every kernel x test cell under QEMU with the
//! rzgate plugin (`run`), compares a kernel with and without a patch (`validate`), or
//! boots one cell with its console on the terminal (`boot`),
//! and turns consoles and plugin events into outcomes (`clean`, `abort`, `error`; the
//! rules are in [`classify`]) and reports (`report.json`, `report.md`, `junit.xml`).
//!
//! Modules, in the order a run uses them:
//! - [`cli`]: the command line;
//! - [`matrix`]: `guest-tests/matrix.yaml` (tests, parameters, expectations);
//! - [`inputs`]: the toolchain, kernel builds and other build products;
//! - [`dtb`]: QEMU's virt tree plus the SoC's nodes;
//! - [`run`], [`cell`], [`qemu`]: scheduling cells, one QEMU each, with a timeout;
//! - [`console`], [`events`]: what the guest printed and what the plugin recorded;
//! - [`outcome`]: the verdict vocabulary (`clean`, `abort`, `error`), a leaf module;
//! - [`classify`]: the rules that give a cell its outcome;
//! - [`symbols`], [`gated_accesses`]: addresses to `function+0xoffset` from System.map, and
//!   the aborts and suspects symbolized and grouped;
//! - [`report`], [`validate`], [`boot`]: the reports; [`sweep`]: the per-driver table of
//!   the tests that unbind and bind drivers with `unbind <driver> <device>` steps;
//! - [`merge`], [`kcidb`], [`lava`]: shards into one report, KCIDB export, LAVA jobs and
//!   their logs back into reports.
//!
//! No two modules use each other, directly or around a circle (a test below checks it):
//! shared types live in the module that owns them, below every module that uses them.

mod boot;
mod cell;
mod classify;
mod cli;
mod console;
mod dtb;
mod events;
mod fsutil;
mod gated_accesses;
mod inputs;
mod interrupt;
mod kcidb;
mod lava;
mod matrix;
mod merge;
mod outcome;
mod progress;
mod qemu;
mod replay;
mod report;
mod run;
mod selftest;
mod snapshot;
mod sweep;
mod symbols;
#[cfg(test)]
mod testdata;
mod validate;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

/// Exit status of a setup error (and of a usage error, as clap reports those).
const SETUP_ERROR: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match &cli.command {
        Command::Dtb(args) => inputs::Toolchain::load(args.toolchain.toolchain.as_deref())
            .and_then(|toolchain| dtb::generate(&toolchain, &args.soc, &args.out, None))
            .map(|()| {
                println!("wrote {}", args.out.display());
                0
            }),
        Command::Run(args) => run::command(args),
        Command::Validate(args) => validate::command(args),
        Command::Boot(args) => boot::command(args),
        Command::Merge(args) => merge::command(args),
        Command::ExportKcidb(args) => kcidb::command(args),
        Command::ExportLava(args) => lava::export_command(args),
        Command::ImportLava(args) => lava::import_command(args),
        Command::Replay(args) => replay::command(args),
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("rzgate-runner: error: {e:#}");
            ExitCode::from(SETUP_ERROR)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::Path;

    /// The modules each module names as `crate::<module>` in code (tests included, comments
    /// not), read from the source files: one file a module, `main.rs` being the root.
    fn module_uses() -> BTreeMap<String, BTreeSet<String>> {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut uses = BTreeMap::new();
        for entry in std::fs::read_dir(&src).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if path.extension().is_none_or(|e| e != "rs") || module == "main" {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("a readable source file");
            let code: String = text
                .lines()
                .filter(|line| !line.trim_start().starts_with("//"))
                .collect::<Vec<_>>()
                .join("\n");
            let mut used = BTreeSet::new();
            for after in code.split("crate::").skip(1) {
                used.extend(leading_modules(after));
            }
            used.remove(module);
            uses.insert(module.to_string(), used);
        }
        uses
    }

    /// The module names at the start of what follows `crate::`: `report::X` gives
    /// `report`, `{cell, run::Settings}` gives `cell` and `run`.
    fn leading_modules(after: &str) -> Vec<String> {
        let ident = |text: &str| -> String {
            text.trim_start()
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let Some(group) = after.strip_prefix('{') else {
            return vec![ident(after)];
        };
        let (mut depth, mut start, mut names) = (0, 0, Vec::new());
        for (index, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => {
                    names.push(ident(&group[start..index]));
                    break;
                }
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    names.push(ident(&group[start..index]));
                    start = index + 1;
                }
                _ => {}
            }
        }
        names.retain(|name| !name.is_empty());
        names
    }

    /// A cycle through `module`, as the path of modules, if there is one.
    fn cycle_from(
        module: &str,
        uses: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|m| m == module) {
            let mut cycle = path[start..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if done.contains(module) {
            return None;
        }
        path.push(module.to_string());
        for used in uses.get(module).into_iter().flatten() {
            if let Some(cycle) = cycle_from(used, uses, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(module.to_string());
        None
    }

    #[test]
    fn the_module_reader_sees_plain_and_grouped_paths() {
        assert_eq!(leading_modules("report::AbortReport;"), vec!["report"]);
        assert_eq!(
            leading_modules("{cell, run::{Settings, load_kernel}, outcome::Outcome};"),
            vec!["cell", "run", "outcome"]
        );
        let uses = module_uses();
        assert!(uses["cell"].contains("classify") && uses["classify"].contains("outcome"));
        assert!(uses["outcome"].is_empty(), "{:?}", uses["outcome"]);
    }

    /// Modules that use each other in a circle cannot be understood (or changed) one at a
    /// time; the shared vocabulary lives in leaf modules (`outcome`) instead.
    #[test]
    fn modules_use_each_other_without_cycles() {
        let uses = module_uses();
        for (module, used) in &uses {
            for name in used {
                assert!(
                    uses.contains_key(name),
                    "{module} uses crate::{name}, which is not a module file"
                );
            }
        }
        let mut done = BTreeSet::new();
        for module in uses.keys() {
            if let Some(cycle) = cycle_from(module, &uses, &mut Vec::new(), &mut done) {
                panic!(
                    "the modules use each other in a circle: {}",
                    cycle.join(" -> ")
                );
            }
        }
    }
}
