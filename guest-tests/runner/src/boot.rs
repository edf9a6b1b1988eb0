//! The `boot` command (`make boot VARIANT=... TEST=...`): one kernel, one test, the console
//! streamed to the terminal as it happens, then the cell's verdict. For looking at a
//! kernel by hand; the kernel need not be one of the matrix's, and the test's matrix
//! entry (faults, loops, timeout) is used when it has one.

use anyhow::{Context, Result};

use crate::cell::{run_cell, CellSpec};
use crate::cli::BootArgs;
use crate::fsutil;
use crate::matrix::{self, Matrix, TestSpec};
use crate::outcome::Outcome;
use crate::report::{self, AbortReport};
use crate::run::{load_kernel, prepare_inputs, Settings};

/// Exit status: 0 when the cell is as expected (without an expectation: not an error),
/// 1 otherwise.
pub fn command(args: &BootArgs) -> Result<u8> {
    let matrix = Matrix::load(&args.cells.matrix)?;
    let settings = Settings::resolve(&args.cells, Some(1), &matrix)?;
    matrix::check_test_id(&args.test)?;
    let test = match matrix.test(&args.test) {
        Some(test) => test.clone(),
        None => {
            eprintln!(
                "rzgate-runner: note: test `{}` is not in {}: no faults, default loops and timeout",
                args.test,
                args.cells.matrix.display()
            );
            TestSpec {
                id: args.test.clone(),
                description: None,
                faults: Vec::new(),
                loops: None,
                timeout_s: None,
                cold_boot: None,
            }
        }
    };
    let (build, symbols) = load_kernel(&args.kernel, &args.kernels_dir.join(&args.kernel))?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let inputs = prepare_inputs(&args.cells, &args.out)?;
    let spec = CellSpec {
        expected: matrix.expectation(&test.id, &build.name).cloned(),
        dir: args.out.join("cells").join(&build.name).join(&test.id),
        kernel: build,
        symbols,
        test: test.id.clone(),
        faults: test.faults.clone(),
        loops: settings.loops(&matrix, &test),
        timeout: settings.timeout(&matrix, &test),
        temp_c: settings.temp_c,
        adc: settings.adc,
        on_abort: settings.on_abort,
        // One cell to watch: its boot is part of what there is to see.
        restore: None,
        cold_reason: None,
    };

    // `boot` installs no interrupt handlers, so its cell always finishes.
    let report = run_cell(&inputs, &spec, true).context("the boot was interrupted")?;
    let json = serde_json::to_string_pretty(&report).context("serializing the cell")?;
    let cell_json = spec.dir.join("cell.json");
    fsutil::write_atomic(&cell_json, format!("{json}\n").as_bytes())?;

    println!();
    println!(
        "rzgate: {}: {}{} in {:.2} s",
        report.name(),
        report.outcome,
        report
            .expected
            .map(|e| format!(" (expected {e})"))
            .unwrap_or_default(),
        report.duration_s
    );
    if let Some(error) = &report.error {
        println!("rzgate: error: {error}");
    }
    print_groups(&report.aborts, "root abort", "then");
    // Suspects after the aborts: they never decide the outcome.
    print_groups(
        &report.suspects,
        "root suspect (not an abort)",
        "then suspect",
    );
    if report.outcome != Outcome::Error && report.aborts.is_empty() && report.suspects.is_empty() {
        println!("rzgate: no gated access");
    }
    println!(
        "rzgate: files in {} (cell.json has the full report)",
        spec.dir.display()
    );
    Ok(if report.ok { 0 } else { 1 })
}

/// A cell's aborts or suspects, one line a group, with the root's call chain.
fn print_groups(groups: &[AbortReport], root_label: &str, then_label: &str) {
    for group in groups {
        println!(
            "rzgate: {} {} (x{}); gated by: {}",
            if group.root { root_label } else { then_label },
            group.one_line(),
            group.count,
            group.gated_by.join("; ")
        );
        if group.root {
            for frame in group.call_chain.iter().take(report::SHOWN_FRAMES) {
                println!("rzgate:     {frame}");
            }
        }
    }
}
