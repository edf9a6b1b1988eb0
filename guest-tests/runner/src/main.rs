//! `rzgate-runner`: the host side of the rzgate guest test matrix.
//!
//! It builds the guest DTB (`dtb`), boots every kernel x test cell under QEMU with the
//! rzgate plugin (`run`), compares a kernel with and without a patch (`validate`), or
//! boots one cell with its console on the terminal (`boot`),
//! and turns consoles and plugin events into outcomes (`clean`, `abort`, `error`; the
//! rules are in [`outcome`]) and reports (`report.json`, `report.md`, `junit.xml`).
//!
//! Modules, in the order a run uses them:
//! - [`cli`]: the command line;
//! - [`matrix`]: `guest-tests/matrix.yaml` (tests, parameters, expectations);
//! - [`inputs`]: the toolchain, kernel builds and other build products;
//! - [`dtb`]: QEMU's virt tree plus the SoC's nodes;
//! - [`run`], [`cell`], [`qemu`]: scheduling cells, one QEMU each, with a timeout;
//! - [`console`], [`events`]: what the guest printed and what the plugin recorded;
//! - [`outcome`]: the cell's verdict;
//! - [`symbols`]: addresses to `function+0xoffset` from System.map;
//! - [`report`], [`validate`], [`boot`]: the reports.

mod boot;
mod cell;
mod cli;
mod console;
mod dtb;
mod events;
mod fsutil;
mod inputs;
mod matrix;
mod outcome;
mod progress;
mod qemu;
mod report;
mod run;
mod selftest;
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
    };
    match result {
        Ok(status) => ExitCode::from(status),
        Err(e) => {
            eprintln!("rzgate-runner: error: {e:#}");
            ExitCode::from(SETUP_ERROR)
        }
    }
}
