//! The `validate` command: does a patch add power-gating aborts?
//!
//! Every test (or the selected ones) runs on the base kernel and on the patched kernel.
//! An abort's identity is device + register + access + faulting function; the offset is
//! left out because the patched kernel is another build and code may move. Per test, the
//! identities only the patched kernel shows are the aborts the patch **adds**, those only
//! the base shows are the ones it **removes**.
//!
//! Suspects (gated accesses the silicon tolerates) are counted beside each kernel's outcome
//! but never compared: a patch that only adds suspects adds no abort.
//!
//! Exit status: 2 when a cell errored (or on a setup error), since the comparison is then
//! incomplete; else 1 when the patch adds an abort; else 0.

use std::fmt::Write as _;
use std::time::Instant;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::cli::ValidateArgs;
use crate::fsutil;
use crate::matrix::Matrix;
use crate::outcome::Outcome;
use crate::report::{self, AbortReport, CellReport};
use crate::run::{execute_cells, load_kernel, prepare_inputs, Settings};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbortDelta {
    pub identity: String,
    /// Abort events of this identity in the kernel that has it.
    pub count: u64,
    /// The first group of this identity, for its call chain and gating cause.
    pub example: AbortReport,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TestComparison {
    pub test: String,
    pub base: Outcome,
    pub patched: Outcome,
    /// The matrix's expectation for the base kernel, when the base is a matrix kernel.
    pub base_expected: Option<Outcome>,
    pub added: Vec<AbortDelta>,
    pub removed: Vec<AbortDelta>,
    /// Suspect events of each kernel's cell: shown, never part of `added` or `removed`.
    pub base_suspects: u64,
    pub patched_suspects: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patched_error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KernelLabel {
    pub name: String,
    pub kernel_dir: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidateSummary {
    pub tests: usize,
    pub adds_aborts: bool,
    pub removes_aborts: bool,
    pub added: usize,
    pub removed: usize,
    pub errors: usize,
    pub verdict: String,
    pub wall_s: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidateReport {
    pub base: KernelLabel,
    pub patched: KernelLabel,
    /// The patch's name, when the caller gave one (`--patch-name`).
    pub patch: Option<String>,
    pub tests: Vec<TestComparison>,
    /// Both kernels' cells, in the shape of the matrix report's cells.
    pub cells: Vec<CellReport>,
    pub summary: ValidateSummary,
}

impl ValidateReport {
    pub fn exit_status(&self) -> u8 {
        if self.summary.errors > 0 {
            2
        } else if self.summary.adds_aborts {
            1
        } else {
            0
        }
    }
}

/// The aborts of a cell by identity, in first-seen order, with summed counts.
fn by_identity(cell: &CellReport) -> Vec<AbortDelta> {
    let mut deltas: Vec<AbortDelta> = Vec::new();
    for abort in &cell.aborts {
        let identity = abort.identity();
        match deltas.iter_mut().find(|d| d.identity == identity) {
            Some(delta) => delta.count += abort.count,
            None => deltas.push(AbortDelta {
                identity,
                count: abort.count,
                example: abort.clone(),
            }),
        }
    }
    deltas
}

/// Compares one test's base and patched cells.
pub fn compare(base: &CellReport, patched: &CellReport) -> TestComparison {
    let base_aborts = by_identity(base);
    let patched_aborts = by_identity(patched);
    let only_in = |these: &[AbortDelta], those: &[AbortDelta]| -> Vec<AbortDelta> {
        these
            .iter()
            .filter(|d| !those.iter().any(|o| o.identity == d.identity))
            .cloned()
            .collect()
    };
    TestComparison {
        test: base.test.clone(),
        base: base.outcome,
        patched: patched.outcome,
        base_expected: base.expected,
        added: only_in(&patched_aborts, &base_aborts),
        removed: only_in(&base_aborts, &patched_aborts),
        base_suspects: base.suspect_events,
        patched_suspects: patched.suspect_events,
        base_error: base.error.clone(),
        patched_error: patched.error.clone(),
    }
}

pub fn build_report(
    base: KernelLabel,
    patched: KernelLabel,
    patch: Option<String>,
    base_cells: Vec<CellReport>,
    patched_cells: Vec<CellReport>,
    wall_s: f64,
) -> ValidateReport {
    let tests: Vec<TestComparison> = base_cells
        .iter()
        .zip(&patched_cells)
        .map(|(b, p)| compare(b, p))
        .collect();
    let added: usize = tests.iter().map(|t| t.added.len()).sum();
    let removed: usize = tests.iter().map(|t| t.removed.len()).sum();
    let errors = base_cells
        .iter()
        .chain(&patched_cells)
        .filter(|c| c.outcome == Outcome::Error)
        .count();
    let verdict = match (errors, added, removed) {
        (e, _, _) if e > 0 => format!("incomplete: {e} cells errored"),
        (0, 0, 0) => "the patch neither adds nor removes aborts".to_string(),
        (0, 0, r) => format!("the patch removes {r} aborts and adds none"),
        (0, a, r) => format!("the patch ADDS {a} aborts (and removes {r})"),
        _ => unreachable!(),
    };
    ValidateReport {
        base,
        patched,
        patch,
        summary: ValidateSummary {
            tests: tests.len(),
            adds_aborts: added > 0,
            removes_aborts: removed > 0,
            added,
            removed,
            errors,
            verdict,
            wall_s,
        },
        tests,
        cells: base_cells.into_iter().chain(patched_cells).collect(),
    }
}

/// A kernel's column: its outcome, the matrix's expectation when it differs, and its
/// suspect count when it has any.
fn outcome_cell(outcome: Outcome, expected: Option<Outcome>, suspect_events: u64) -> String {
    let text = match expected {
        Some(expected) if expected != outcome => format!("{outcome} (matrix expects {expected})"),
        _ => outcome.to_string(),
    };
    text + &report::suspects_suffix(suspect_events)
}

/// The per-test comparison for the terminal.
pub fn render_text(report: &ValidateReport) -> String {
    let mut rows = vec![vec![
        "test".to_string(),
        report.base.name.clone(),
        report.patched.name.clone(),
        "added".to_string(),
        "removed".to_string(),
    ]];
    for t in &report.tests {
        rows.push(vec![
            t.test.clone(),
            outcome_cell(t.base, t.base_expected, t.base_suspects),
            outcome_cell(t.patched, None, t.patched_suspects),
            t.added.len().to_string(),
            t.removed.len().to_string(),
        ]);
    }
    let mut out = crate::report::text_table(&rows);
    for t in &report.tests {
        for delta in &t.added {
            let _ = writeln!(
                out,
                "  {}: + adds {} (x{}) at {}",
                t.test, delta.identity, delta.count, delta.example.symbol
            );
        }
        for delta in &t.removed {
            let _ = writeln!(
                out,
                "  {}: - removes {} (x{})",
                t.test, delta.identity, delta.count
            );
        }
        for (label, error) in [
            (&report.base.name, &t.base_error),
            (&report.patched.name, &t.patched_error),
        ] {
            if let Some(error) = error {
                let _ = writeln!(out, "  {}: {label} errored: {error}", t.test);
            }
        }
    }
    let _ = writeln!(
        out,
        "\n{}{}",
        report
            .patch
            .as_ref()
            .map(|p| format!("{p}: "))
            .unwrap_or_default(),
        report.summary.verdict
    );
    out
}

pub fn render_markdown(report: &ValidateReport) -> String {
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# rzgate validate: {} vs {}\n\n{}{}.\n",
        report.base.name,
        report.patched.name,
        report
            .patch
            .as_ref()
            .map(|p| format!("Patch `{p}`: "))
            .unwrap_or_default(),
        report.summary.verdict
    );
    let _ = writeln!(
        md,
        "| test | {} | {} | added | removed |\n|---|---|---|---|---|",
        report.base.name, report.patched.name
    );
    let list = |deltas: &[AbortDelta]| {
        if deltas.is_empty() {
            "-".to_string()
        } else {
            deltas
                .iter()
                .map(|d| format!("{} (x{})", d.identity, d.count))
                .collect::<Vec<_>>()
                .join("<br>")
        }
    };
    for t in &report.tests {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} |",
            t.test,
            outcome_cell(t.base, t.base_expected, t.base_suspects),
            outcome_cell(t.patched, None, t.patched_suspects),
            list(&t.added),
            list(&t.removed)
        );
    }
    let added: Vec<(&str, &AbortDelta)> = report
        .tests
        .iter()
        .flat_map(|t| t.added.iter().map(move |d| (t.test.as_str(), d)))
        .collect();
    if !added.is_empty() {
        let _ = writeln!(md, "\n## Aborts the patch adds\n");
    }
    for (test, delta) in added {
        let a = &delta.example;
        let _ = writeln!(
            md,
            "### {test}: {}\n\n- at `{}`, SoC {:#010x}, step {}\n- gated by: {}\n\n~~~text\n{}\n~~~\n",
            delta.identity,
            a.symbol,
            a.soc_addr,
            a.step.as_ref().map_or("-".to_string(), |s| s.n.to_string()),
            a.gated_by.join("; "),
            a.call_chain.iter().take(report::SHOWN_FRAMES).cloned().collect::<Vec<_>>().join("\n")
        );
    }
    let errors: Vec<&CellReport> = report
        .cells
        .iter()
        .filter(|c| c.outcome == Outcome::Error)
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(md, "\n## Errors\n");
    }
    for cell in errors {
        let _ = writeln!(
            md,
            "### {} / {}\n\n{}\n\n~~~text\n{}\n~~~\n",
            cell.kernel,
            cell.test,
            cell.error.as_deref().unwrap_or("-"),
            cell.console_tail.as_deref().unwrap_or_default().join("\n")
        );
    }
    md
}

pub fn command(args: &ValidateArgs) -> Result<u8> {
    let started = Instant::now();
    let matrix = Matrix::load(&args.cells.matrix)?;
    let names: Vec<String> = args
        .select
        .tests
        .iter()
        .filter(|n| !n.trim().is_empty())
        .map(|n| n.trim().to_string())
        .collect();
    let tests = matrix.select_tests(&names)?;
    let settings = Settings::resolve(&args.cells, args.select.jobs, &matrix)?;
    let patched_name = args
        .patched_name
        .clone()
        .unwrap_or_else(|| format!("{}+patch", args.base_name));
    if patched_name == args.base_name {
        anyhow::bail!("--patched-name must differ from --base-name (both are `{patched_name}`)");
    }
    let base = load_kernel(&args.base_name, &args.base_kernel)?;
    let patched = load_kernel(&patched_name, &args.patched_kernel)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let inputs = prepare_inputs(&args.cells, &args.out)?;

    let mut specs = Vec::new();
    for (build, symbols) in [&base, &patched] {
        for test in &tests {
            // The base is held to the matrix when it is one of its kernels; the patched
            // kernel has no expectation (finding out is the point).
            let expected = (build.name == args.base_name)
                .then(|| matrix.expectation(&test.id, &build.name).cloned())
                .flatten();
            let dir = args.out.join("cells").join(&build.name).join(&test.id);
            specs.push(settings.cell(&matrix, build, symbols, test, expected, dir));
        }
    }
    // `validate` installs no interrupt handlers, so every cell finishes.
    let mut cells: Vec<CellReport> = execute_cells(&inputs, &specs, settings.jobs)
        .into_iter()
        .collect::<Option<_>>()
        .context("the run was interrupted")?;
    let patched_cells = cells.split_off(tests.len());
    let report = build_report(
        KernelLabel {
            name: args.base_name.clone(),
            kernel_dir: args.base_kernel.display().to_string(),
        },
        KernelLabel {
            name: patched_name,
            kernel_dir: args.patched_kernel.display().to_string(),
        },
        args.patch_name.clone(),
        cells,
        patched_cells,
        (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    );
    let json = serde_json::to_string_pretty(&report).context("serializing report.json")?;
    fsutil::write_atomic(
        &args.out.join("report.json"),
        format!("{json}\n").as_bytes(),
    )?;
    fsutil::write_atomic(
        &args.out.join("report.md"),
        render_markdown(&report).as_bytes(),
    )?;
    print!("{}", render_text(&report));
    println!("reports: {}", args.out.join("report.md").display());
    Ok(report.exit_status())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::cell;

    fn label(name: &str) -> KernelLabel {
        KernelLabel {
            name: name.into(),
            kernel_dir: format!("out/kernels/{name}"),
        }
    }

    #[test]
    fn a_patch_that_removes_aborts_passes() {
        let base = vec![
            cell("prefix", "adc-unbind", Outcome::Abort, Outcome::Abort),
            cell("prefix", "boot", Outcome::Clean, Outcome::Clean),
        ];
        let mut fixed = cell("prefix+patch", "adc-unbind", Outcome::Clean, Outcome::Clean);
        fixed.expected = None;
        let patched = vec![
            fixed,
            cell("prefix+patch", "boot", Outcome::Clean, Outcome::Clean),
        ];
        let report = build_report(
            label("prefix"),
            label("prefix+patch"),
            None,
            base,
            patched,
            1.0,
        );
        assert_eq!(report.exit_status(), 0);
        assert_eq!(
            report.tests[0].removed.len(),
            2,
            "read and write identities"
        );
        assert_eq!(
            report.tests[0].removed[0].identity,
            "adc ADM0 read in rzg2l_adc_pm_runtime_suspend"
        );
        assert_eq!(report.tests[0].removed[0].count, 2);
        assert!(report.tests[0].added.is_empty());
        assert!(report.summary.removes_aborts && !report.summary.adds_aborts);
        let text = render_text(&report);
        assert!(
            text.contains(
                "adc-unbind: - removes adc ADM0 read in rzg2l_adc_pm_runtime_suspend (x2)"
            ),
            "{text}"
        );
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        assert_eq!(json["summary"]["adds_aborts"], false);
        assert_eq!(json["cells"].as_array().unwrap().len(), 4);
    }

    #[test]
    fn a_patch_that_adds_an_abort_fails() {
        let base = vec![cell(
            "upstream",
            "adc-probe-failure",
            Outcome::Clean,
            Outcome::Clean,
        )];
        let patched = vec![cell(
            "upstream+patch",
            "adc-probe-failure",
            Outcome::Abort,
            Outcome::Abort,
        )];
        let report = build_report(
            label("upstream"),
            label("upstream+patch"),
            Some("adds-gated-access.patch".into()),
            base,
            patched,
            1.0,
        );
        assert_eq!(report.exit_status(), 1);
        assert!(render_text(&report).contains("adds-gated-access.patch: the patch ADDS 2"));
        assert!(report.summary.verdict.contains("ADDS 2"));
        let md = render_markdown(&report);
        assert!(md.contains("## Aborts the patch adds"), "{md}");
        assert!(
            md.contains("adc ADM0 write in rzg2l_adc_pm_runtime_suspend (x3)"),
            "{md}"
        );
    }

    #[test]
    fn suspects_are_counted_per_column_but_never_added_aborts() {
        let mut base = cell("upstream", "adc-unbind", Outcome::Clean, Outcome::Clean);
        let mut patched = cell(
            "upstream+patch",
            "adc-unbind",
            Outcome::Clean,
            Outcome::Clean,
        );
        patched.expected = None;
        crate::report::tests::add_suspects(&mut patched);
        let report = build_report(
            label("upstream"),
            label("upstream+patch"),
            None,
            vec![base.clone()],
            vec![patched.clone()],
            1.0,
        );
        assert_eq!(report.exit_status(), 0);
        assert!(report.tests[0].added.is_empty() && report.tests[0].removed.is_empty());
        assert_eq!(
            (
                report.tests[0].base_suspects,
                report.tests[0].patched_suspects
            ),
            (0, 3)
        );
        assert_eq!(
            report.summary.verdict,
            "the patch neither adds nor removes aborts"
        );
        let text = render_text(&report);
        let row = text.lines().nth(1).unwrap();
        assert!(
            row.starts_with("adc-unbind  clean     clean (3 suspects)  0"),
            "{text}"
        );
        let md = render_markdown(&report);
        assert!(
            md.contains("| `adc-unbind` | clean | clean (3 suspects) | - | - |"),
            "{md}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["tests"][0]["patched_suspects"], 3);
        assert_eq!(json["cells"][1]["suspects"].as_array().unwrap().len(), 2);

        // Suspects in the base that the patch removes are not removed aborts either.
        crate::report::tests::add_suspects(&mut base);
        patched.suspects.clear();
        patched.suspect_events = 0;
        let t = compare(&base, &patched);
        assert!(t.added.is_empty() && t.removed.is_empty());
        assert_eq!((t.base_suspects, t.patched_suspects), (3, 0));
    }

    #[test]
    fn an_error_cell_makes_it_inconclusive() {
        let base = vec![cell("upstream", "boot", Outcome::Error, Outcome::Clean)];
        let patched = vec![cell(
            "upstream+patch",
            "boot",
            Outcome::Abort,
            Outcome::Abort,
        )];
        let report = build_report(
            label("upstream"),
            label("upstream+patch"),
            None,
            base,
            patched,
            1.0,
        );
        assert_eq!(report.exit_status(), 2);
        let text = render_text(&report);
        assert!(text.contains("error (matrix expects clean)"), "{text}");
        assert!(text.contains("boot: upstream errored: timeout"), "{text}");
    }

    #[test]
    fn identity_ignores_offsets_but_not_access() {
        let mut base = cell("prefix", "adc-unbind", Outcome::Abort, Outcome::Abort);
        let mut patched = base.clone();
        patched.kernel = "prefix+patch".into();
        for a in &mut patched.aborts {
            a.symbol = "rzg2l_adc_pm_runtime_suspend+0x18".into();
            a.pc += 4;
        }
        let t = compare(&base, &patched);
        assert!(t.added.is_empty() && t.removed.is_empty());
        base.aborts.truncate(1);
        let t = compare(&base, &patched);
        assert_eq!(t.added.len(), 1);
        assert_eq!(
            t.added[0].identity,
            "adc ADM0 write in rzg2l_adc_pm_runtime_suspend"
        );
    }
}
