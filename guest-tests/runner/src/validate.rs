//! The `validate` command: does a patch, or a series of patches, add power-gating aborts?
//!
//! Every test (or the selected ones) runs on the base kernel and on the patched kernel.
//! An abort's identity is device + register + access + faulting function; the offset is
//! left out because the patched kernel is another build and code may move. Per test, the
//! identities only the patched kernel shows are the aborts the patch **adds**, those only
//! the base shows are the ones it **removes**.
//!
//! A series (`--series`, a manifest the front door `./validate` writes) is the base plus
//! one kernel per patch applied (state k = base + patches 1..k). The verdict is the base
//! against the last state; each patch is also compared with the state before it, which
//! says which patch first adds each new abort and which removes each removed one (and
//! when a later patch takes back what an earlier one added). A state whose Image is the
//! previous state's, byte for byte (a patch that changes no built file), is not run again.
//!
//! Suspects (gated accesses the silicon tolerates) are counted beside each kernel's outcome
//! but never compared: a patch that only adds suspects adds no abort.
//!
//! A guest check that fails with the patch and passed without it (the test ran to its end
//! and observed something else: `checks_failed`) is its own verdict, "changes what the test
//! observes", not an error: the patch changed behaviour a test looks at.
//!
//! Exit status ([`ValidateReport::exit_status`]): 2 when the comparison is incomplete (a
//! cell's infrastructure failed: timeout, crash, panic, a fault that never fired; or a
//! setup error); else 1 when the patch (the series as a whole) adds an abort; else 3 when
//! it changes what a test observes; else 0.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::ValidateArgs;
use crate::console::ConsoleReport;
use crate::fsutil;
use crate::matrix::Matrix;
use crate::outcome::Outcome;
use crate::report::{self, AbortReport, CellReport};
use crate::run::{execute_cells, load_kernel, prepare_inputs, Settings};

/// The patch adds no abort and changes no check.
pub const EXIT_CLEAN: u8 = 0;
/// The patch (the series as a whole) adds an abort.
pub const EXIT_ADDS_ABORT: u8 = 1;
/// Could not judge: a cell's infrastructure failed, or the input or setup was bad.
pub const EXIT_COULD_NOT_JUDGE: u8 = 2;
/// No abort added, but a guest check fails with the patch that passes without it.
pub const EXIT_CHANGES_OBSERVATION: u8 = 3;

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
    /// Guest checks (`not ok N description`) that fail with the patch and not without it.
    pub newly_failing: Vec<String>,
    /// Guest checks that fail without the patch and pass with it.
    pub no_longer_failing: Vec<String>,
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
    /// Cells whose infrastructure failed (not counting cells whose checks failed).
    pub errors: usize,
    /// Guest checks that fail only with the patch (the series).
    pub newly_failing_checks: usize,
    pub verdict: String,
    pub exit_status: u8,
    pub wall_s: f64,
}

/// One patch of a series, as the front door's manifest gives it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManifestPatch {
    pub subject: String,
    /// The file the patch came from (or the message of an mbox / a commit of a range).
    pub file: String,
    /// The kernel built with this patch and every one before it.
    pub kernel_dir: PathBuf,
    /// Seconds its kernel build took (incremental, from the state before).
    #[serde(default)]
    pub build_s: Option<f64>,
}

/// The front door's description of a series (`--series FILE`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeriesManifest {
    /// What the user gave: `PATCH=...` or `KERNEL_SRC=... GIT_RANGE=...`.
    pub source: String,
    pub patches: Vec<ManifestPatch>,
    /// One command that reproduces this validation locally.
    #[serde(default)]
    pub reproduce: Option<String>,
}

impl SeriesManifest {
    pub fn load(path: &Path) -> Result<SeriesManifest> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the series manifest {}", path.display()))?;
        let manifest: SeriesManifest = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a series manifest", path.display()))?;
        if manifest.patches.is_empty() {
            bail!("{}: the series has no patches", path.display());
        }
        Ok(manifest)
    }
}

/// An abort identity a patch adds or removes, over the tests that show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchDelta {
    pub identity: String,
    pub tests: Vec<String>,
    pub count: u64,
    pub example: AbortReport,
}

/// One patch compared with the state before it (the base for the first).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PatchVerdict {
    pub n: usize,
    pub of: usize,
    pub subject: String,
    pub file: String,
    pub kernel: String,
    pub kernel_dir: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub build_s: Option<f64>,
    /// Its Image is the previous state's: not run again, nothing can change.
    pub same_image_as_previous: bool,
    pub added: Vec<PatchDelta>,
    pub removed: Vec<PatchDelta>,
    /// `test: not ok N description`, failing from this patch on.
    pub newly_failing: Vec<String>,
    /// Cells of this state whose infrastructure failed.
    pub errors: usize,
}

/// Which patch adds (removes) an abort the series as a whole adds (removes), or one that a
/// later patch takes back.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Attribution {
    pub identity: String,
    /// The first patch that adds it (`added`) or removes it (`removed`).
    pub by_patch: Option<usize>,
    /// For an abort one patch adds and a later one removes: that later patch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taken_back_by: Option<usize>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesReport {
    pub source: String,
    pub patches: Vec<PatchVerdict>,
    /// Aborts the series as a whole adds, and the patch that first adds each.
    pub added: Vec<Attribution>,
    /// Aborts the series as a whole removes, and the patch that first removes each.
    pub removed: Vec<Attribution>,
    /// Aborts a patch adds that a later patch of the series removes again.
    pub transient: Vec<Attribution>,
    /// Kernel builds of all states, seconds.
    pub build_s: f64,
    /// States run (distinct Images) and their cells.
    pub states_run: usize,
    pub cells_run: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reproduce: Option<String>,
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
    /// Per patch, for a series.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<SeriesReport>,
    pub summary: ValidateSummary,
}

impl ValidateReport {
    pub fn exit_status(&self) -> u8 {
        self.summary.exit_status
    }
}

fn exit_status_of(errors: usize, added: usize, newly_failing: usize) -> u8 {
    if errors > 0 {
        EXIT_COULD_NOT_JUDGE
    } else if added > 0 {
        EXIT_ADDS_ABORT
    } else if newly_failing > 0 {
        EXIT_CHANGES_OBSERVATION
    } else {
        EXIT_CLEAN
    }
}

/// A cell whose infrastructure failed: it proved nothing. A cell whose guest checks failed
/// (the test ran and observed something else) is a result, not an error.
fn infrastructure_error(cell: &CellReport) -> bool {
    cell.outcome == Outcome::Error && !cell.checks_failed
}

fn failing_checks(cell: &CellReport) -> Vec<String> {
    if infrastructure_error(cell) {
        // An unfinished script's missing lines are not observations.
        return vec![];
    }
    ConsoleReport::failing_checks(&cell.ktap.results)
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
    let base_failing = failing_checks(base);
    let patched_failing = failing_checks(patched);
    let minus = |a: &[String], b: &[String]| -> Vec<String> {
        a.iter().filter(|x| !b.contains(x)).cloned().collect()
    };
    TestComparison {
        test: base.test.clone(),
        base: base.outcome,
        patched: patched.outcome,
        base_expected: base.expected,
        added: only_in(&patched_aborts, &base_aborts),
        removed: only_in(&base_aborts, &patched_aborts),
        newly_failing: minus(&patched_failing, &base_failing),
        no_longer_failing: minus(&base_failing, &patched_failing),
        base_suspects: base.suspect_events,
        patched_suspects: patched.suspect_events,
        base_error: base.error.clone(),
        patched_error: patched.error.clone(),
    }
}

fn verdict_text(what: &str, errors: usize, added: usize, removed: usize, newly: usize) -> String {
    if errors > 0 {
        return format!(
            "could not judge: {errors} cells errored (timeout, crash or panic; see the errors)"
        );
    }
    match (added, removed, newly) {
        (0, 0, 0) => format!("{what} neither adds nor removes aborts"),
        (0, r, 0) => format!(
            "{what} removes {} and adds none",
            plural(r, "abort", "aborts")
        ),
        (0, r, n) => format!(
            "{what} adds no abort{} but changes what the tests observe: {} only with it",
            if r > 0 {
                format!(" (removes {r})")
            } else {
                String::new()
            },
            plural(n, "check fails", "checks fail")
        ),
        (a, r, _) => format!(
            "{what} ADDS {} (and removes {r})",
            plural(a, "abort", "aborts")
        ),
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
    let newly: usize = tests.iter().map(|t| t.newly_failing.len()).sum();
    let errors = base_cells
        .iter()
        .chain(&patched_cells)
        .filter(|c| infrastructure_error(c))
        .count();
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
            newly_failing_checks: newly,
            verdict: verdict_text("the patch", errors, added, removed, newly),
            exit_status: exit_status_of(errors, added, newly),
            wall_s,
        },
        tests,
        cells: base_cells.into_iter().chain(patched_cells).collect(),
        series: None,
    }
}

/// One state of a series: its patch and its cells (one per test, in the base's order).
pub struct State {
    pub patch: ManifestPatch,
    pub kernel: String,
    pub same_image_as_previous: bool,
    pub cells: Vec<CellReport>,
}

fn group_by_identity(tests: &[TestComparison], added: bool) -> Vec<PatchDelta> {
    let mut out: Vec<PatchDelta> = Vec::new();
    for t in tests {
        for d in if added { &t.added } else { &t.removed } {
            match out.iter_mut().find(|g| g.identity == d.identity) {
                Some(g) => {
                    g.count += d.count;
                    if !g.tests.contains(&t.test) {
                        g.tests.push(t.test.clone());
                    }
                }
                None => out.push(PatchDelta {
                    identity: d.identity.clone(),
                    tests: vec![t.test.clone()],
                    count: d.count,
                    example: d.example.clone(),
                }),
            }
        }
    }
    out
}

/// Per-patch verdicts and the attribution of the series' net changes. `report` is the
/// base against the last state (from [`build_report`]); its verdict becomes the series'.
pub fn attach_series(
    report: &mut ValidateReport,
    base_cells: &[CellReport],
    states: &[State],
    source: String,
    reproduce: Option<String>,
    cells_run: usize,
) {
    let of = states.len();
    let mut patches = Vec::new();
    let mut previous = base_cells;
    for (i, state) in states.iter().enumerate() {
        let tests: Vec<TestComparison> = previous
            .iter()
            .zip(&state.cells)
            .map(|(b, p)| compare(b, p))
            .collect();
        patches.push(PatchVerdict {
            n: i + 1,
            of,
            subject: state.patch.subject.clone(),
            file: state.patch.file.clone(),
            kernel: state.kernel.clone(),
            kernel_dir: state.patch.kernel_dir.display().to_string(),
            build_s: state.patch.build_s,
            same_image_as_previous: state.same_image_as_previous,
            added: group_by_identity(&tests, true),
            removed: group_by_identity(&tests, false),
            newly_failing: tests
                .iter()
                .flat_map(|t| {
                    t.newly_failing
                        .iter()
                        .map(move |c| format!("{}: {c}", t.test))
                })
                .collect(),
            errors: if state.same_image_as_previous {
                0
            } else {
                state
                    .cells
                    .iter()
                    .filter(|c| infrastructure_error(c))
                    .count()
            },
        });
        previous = &state.cells;
    }
    let first_patch = |identity: &str, added: bool| -> Option<usize> {
        patches
            .iter()
            .find(|p| {
                (if added { &p.added } else { &p.removed })
                    .iter()
                    .any(|d| d.identity == identity)
            })
            .map(|p| p.n)
    };
    let net = |added: bool| -> Vec<Attribution> {
        let mut out: Vec<Attribution> = Vec::new();
        for t in &report.tests {
            for d in if added { &t.added } else { &t.removed } {
                if out.iter().any(|a| a.identity == d.identity) {
                    continue;
                }
                out.push(Attribution {
                    identity: d.identity.clone(),
                    by_patch: first_patch(&d.identity, added),
                    taken_back_by: None,
                });
            }
        }
        out
    };
    let added = net(true);
    let removed = net(false);
    let mut transient: Vec<Attribution> = Vec::new();
    for p in &patches {
        for d in &p.added {
            let net_added = added.iter().any(|a| a.identity == d.identity);
            if net_added || transient.iter().any(|t| t.identity == d.identity) {
                continue;
            }
            let taken_back_by = patches
                .iter()
                .skip(p.n)
                .find(|later| later.removed.iter().any(|r| r.identity == d.identity))
                .map(|later| later.n);
            transient.push(Attribution {
                identity: d.identity.clone(),
                by_patch: Some(p.n),
                taken_back_by,
            });
        }
    }
    let errors = report.summary.errors
        + patches[..of.saturating_sub(1)]
            .iter()
            .map(|p| p.errors)
            .sum::<usize>();
    let s = &mut report.summary;
    s.errors = errors;
    s.exit_status = exit_status_of(errors, s.added, s.newly_failing_checks);
    let mut verdict = verdict_text(
        if of > 1 { "the series" } else { "the patch" },
        errors,
        s.added,
        s.removed,
        s.newly_failing_checks,
    );
    if errors == 0 {
        let name = |n: Option<usize>| n.map_or("?".to_string(), |n| format!("{n}/{of}"));
        let mut why: Vec<String> = Vec::new();
        for a in &added {
            why.push(format!("patch {} adds {}", name(a.by_patch), a.identity));
        }
        for t in &transient {
            if let Some(back) = t.taken_back_by {
                why.push(format!(
                    "patch {} adds {} and patch {} removes it again",
                    name(t.by_patch),
                    t.identity,
                    name(Some(back))
                ));
            }
        }
        for r in &removed {
            why.push(format!("patch {} removes {}", name(r.by_patch), r.identity));
        }
        if of > 1 && !why.is_empty() {
            verdict = format!("{verdict}: {}", why.join("; "));
        }
    }
    s.verdict = verdict;
    report.series = Some(SeriesReport {
        source,
        build_s: (states.iter().filter_map(|s| s.patch.build_s).sum::<f64>() * 10.0).round() / 10.0,
        states_run: states.iter().filter(|s| !s.same_image_as_previous).count(),
        cells_run,
        patches,
        added,
        removed,
        transient,
        reproduce,
    });
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
        for check in &t.newly_failing {
            let _ = writeln!(out, "  {}: ! fails only with the patch: {check}", t.test);
        }
        for (label, error, checks_failed) in [
            (
                &report.base.name,
                &t.base_error,
                t.base == Outcome::Error
                    && t.newly_failing.is_empty()
                    && !t.no_longer_failing.is_empty(),
            ),
            (
                &report.patched.name,
                &t.patched_error,
                !t.newly_failing.is_empty(),
            ),
        ] {
            if let (Some(error), false) = (error, checks_failed) {
                let _ = writeln!(out, "  {}: {label} errored: {error}", t.test);
            }
        }
    }
    if let Some(series) = &report.series {
        let _ = writeln!(out);
        for line in patch_lines(series) {
            let _ = writeln!(out, "{line}");
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
    if let Some(series) = &report.series {
        let _ = writeln!(md, "\n## Per patch\n\n~~~text");
        for line in patch_lines(series) {
            let _ = writeln!(md, "{line}");
        }
        let _ = writeln!(md, "~~~");
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
    // (cells whose checks failed are listed too: their failing lines are the evidence)
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

/// `[k/N] subject`, then one line per abort it adds or removes and per check it breaks.
fn patch_lines(series: &SeriesReport) -> Vec<String> {
    let mut lines = Vec::new();
    for p in &series.patches {
        let what = if p.same_image_as_previous {
            "the same Image as before it: not run again".to_string()
        } else if p.errors > 0 {
            format!("{} cells errored", p.errors)
        } else if p.added.is_empty() && p.removed.is_empty() && p.newly_failing.is_empty() {
            "no change".to_string()
        } else {
            format!("adds {}, removes {}", p.added.len(), p.removed.len())
        };
        lines.push(format!("[{}/{}] {}: {what}", p.n, p.of, p.subject));
        for d in &p.added {
            lines.push(format!(
                "  patch {}/{} adds {} ({})",
                p.n,
                p.of,
                d.identity,
                d.tests.join(", ")
            ));
        }
        for d in &p.removed {
            let again = series
                .transient
                .iter()
                .find(|t| t.identity == d.identity && t.taken_back_by == Some(p.n))
                .and_then(|t| t.by_patch)
                .map(|n| format!(": the abort patch {n}/{} adds", p.of))
                .unwrap_or_default();
            lines.push(format!(
                "  patch {}/{} removes {} ({}){again}",
                p.n,
                p.of,
                d.identity,
                d.tests.join(", ")
            ));
        }
        for c in &p.newly_failing {
            lines.push(format!("  patch {}/{} makes a check fail: {c}", p.n, p.of));
        }
    }
    lines
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `out/validate/summary.txt`: a reply a bot can send, in the style of the kernel's CI bot
/// mails: the verdict first, then per patch, then the root aborts with their call chains,
/// then one command that reproduces it.
pub fn render_summary(report: &ValidateReport) -> String {
    let mut out = String::new();
    let status = report.exit_status();
    let word = match status {
        EXIT_CLEAN => "PASS",
        EXIT_ADDS_ABORT => "FAIL",
        EXIT_CHANGES_OBSERVATION => "CHANGED",
        _ => "UNKNOWN",
    };
    let _ = writeln!(out, "rzgate validate: {word}: {}", report.summary.verdict);
    let _ = writeln!(out, "exit status {status}");
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "base:    {} ({})",
        report.base.name, report.base.kernel_dir
    );
    match &report.series {
        Some(series) => {
            let _ = writeln!(
                out,
                "input:   {} ({} patches)",
                series.source,
                series.patches.len()
            );
        }
        None => {
            if let Some(patch) = &report.patch {
                let _ = writeln!(out, "input:   {patch}");
            }
        }
    }
    let _ = writeln!(
        out,
        "tests:   {} on the base and with the patches",
        report.summary.tests
    );
    if let Some(series) = &report.series {
        let _ = writeln!(out, "\nPer patch:");
        for line in patch_lines(series) {
            let _ = writeln!(out, "  {line}");
        }
    }
    let added: Vec<(&str, &AbortDelta)> = report
        .tests
        .iter()
        .flat_map(|t| t.added.iter().map(move |d| (t.test.as_str(), d)))
        .collect();
    if !added.is_empty() {
        let _ = writeln!(
            out,
            "\nAborts added (\"root\": the first abort of its cell):"
        );
    }
    let mut shown: Vec<&str> = Vec::new();
    for (test, delta) in added {
        if shown.contains(&delta.identity.as_str()) {
            continue;
        }
        shown.push(&delta.identity);
        let a = &delta.example;
        let by = report
            .series
            .as_ref()
            .and_then(|s| s.added.iter().find(|x| x.identity == delta.identity))
            .and_then(|x| x.by_patch)
            .map(|n| {
                format!(
                    ", first added by patch {n}/{}",
                    report.series.as_ref().map_or(1, |s| s.patches.len())
                )
            })
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "\n  {}{} (test {test}, step {}{by})\n  {} {:#010x} {} at {}\n  gated by: {}\n  call chain:",
            if a.root { "root: " } else { "" },
            delta.identity,
            a.step.as_ref().map_or("-".to_string(), |s| match &s.text {
                Some(text) => format!("{} \"{text}\"", s.n),
                None => s.n.to_string(),
            }),
            a.register,
            a.soc_addr,
            a.access,
            a.symbol,
            a.gated_by.join("; "),
        );
        for frame in std::iter::once(&a.symbol)
            .chain(a.call_chain.iter())
            .take(report::SHOWN_FRAMES)
        {
            let _ = writeln!(out, "    {frame}");
        }
    }
    let newly: Vec<String> = report
        .tests
        .iter()
        .flat_map(|t| {
            t.newly_failing
                .iter()
                .map(move |c| format!("{}: {c}", t.test))
        })
        .collect();
    if !newly.is_empty() {
        let _ = writeln!(out, "\nChecks that fail only with the patches:");
        for c in &newly {
            let _ = writeln!(out, "  {c}");
        }
        for cell in report.cells.iter().filter(|c| c.checks_failed) {
            for r in cell
                .ktap
                .results
                .iter()
                .filter(|r| r.depth == 0 && !r.passed())
            {
                let _ = writeln!(out, "    {}/{}: {}", cell.kernel, cell.test, r.line);
            }
        }
    }
    let errors: Vec<&CellReport> = report
        .cells
        .iter()
        .filter(|c| infrastructure_error(c))
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(out, "\nCould not judge (cells errored):");
        for cell in errors {
            let _ = writeln!(
                out,
                "  {}/{}: {}",
                cell.kernel,
                cell.test,
                cell.error.as_deref().unwrap_or("-")
            );
        }
    }
    if let Some(series) = &report.series {
        let _ = writeln!(
            out,
            "\nCost: kernel builds {:.0} s ({}, incremental), {} cells run on {} distinct kernels in {:.0} s",
            series.build_s,
            plural(series.patches.len(), "state", "states"),
            series.cells_run,
            series.states_run + 1,
            report.summary.wall_s
        );
        if let Some(cmd) = &series.reproduce {
            let _ = writeln!(out, "\nReproduce locally:\n  {cmd}");
        }
    }
    out
}

/// Whether two kernel Images are the same bytes (a patch that changes no built file).
fn same_image(a: &Path, b: &Path) -> bool {
    match (
        std::fs::read(a.join("Image")),
        std::fs::read(b.join("Image")),
    ) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
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
    // A single patch is a series of one, named as before (`<base>+patch`); a series'
    // states are `<base>+1` .. `<base>+N`.
    let manifest = match (&args.series, &args.patched_kernel) {
        (Some(path), None) => Some(SeriesManifest::load(path)?),
        (None, Some(_)) => None,
        (Some(_), Some(_)) => bail!("give either --series or --patched-kernel, not both"),
        (None, None) => bail!("--series or --patched-kernel is required"),
    };
    let patched_name = args
        .patched_name
        .clone()
        .unwrap_or_else(|| format!("{}+patch", args.base_name));
    let states_in: Vec<(String, ManifestPatch)> = match &manifest {
        Some(m) if m.patches.len() > 1 => m
            .patches
            .iter()
            .enumerate()
            .map(|(i, p)| (format!("{}+{}", args.base_name, i + 1), p.clone()))
            .collect(),
        Some(m) => vec![(patched_name.clone(), m.patches[0].clone())],
        None => vec![(
            patched_name.clone(),
            ManifestPatch {
                subject: args
                    .patch_name
                    .clone()
                    .unwrap_or_else(|| "the patch".into()),
                file: args.patch_name.clone().unwrap_or_default(),
                kernel_dir: args.patched_kernel.clone().unwrap_or_default(),
                build_s: None,
            },
        )],
    };
    if states_in.iter().any(|(name, _)| *name == args.base_name) {
        bail!(
            "--patched-name must differ from --base-name (both are `{}`)",
            args.base_name
        );
    }
    let base = load_kernel(&args.base_name, &args.base_kernel)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let inputs = prepare_inputs(&args.cells, &args.out)?;

    // Which states run: one whose Image is the previous state's cannot differ from it.
    let mut run_states = Vec::new();
    let mut same_as_previous = Vec::new();
    let mut previous_dir = args.base_kernel.clone();
    for (name, patch) in &states_in {
        let same = same_image(&previous_dir, &patch.kernel_dir);
        same_as_previous.push(same);
        if !same {
            run_states.push(load_kernel(name, &patch.kernel_dir)?);
        }
        previous_dir = patch.kernel_dir.clone();
    }
    let mut specs = Vec::new();
    for (build, symbols) in std::iter::once(&base).chain(&run_states) {
        for test in &tests {
            // The base is held to the matrix when it is one of its kernels; the patched
            // kernels have no expectation (finding out is the point).
            let expected = (build.name == args.base_name)
                .then(|| matrix.expectation(&test.id, &build.name).cloned())
                .flatten();
            let dir = args.out.join("cells").join(&build.name).join(&test.id);
            specs.push(settings.cell(&matrix, build, symbols, test, expected, dir));
        }
    }
    let cells_run = specs.len();
    // `validate` installs no interrupt handlers, so every cell finishes.
    let finished: Vec<CellReport> = execute_cells(&inputs, &specs, settings.jobs)
        .into_iter()
        .collect::<Option<_>>()
        .context("the run was interrupted")?;
    let mut all = finished.into_iter();
    let base_cells: Vec<CellReport> = all.by_ref().take(tests.len()).collect();
    let mut states: Vec<State> = Vec::new();
    for ((name, patch), same) in states_in.into_iter().zip(same_as_previous) {
        let cells = if same {
            let before = states.last().map_or(&base_cells, |s| &s.cells);
            before
                .iter()
                .cloned()
                .map(|mut c| {
                    c.kernel = name.clone();
                    c.expected = None;
                    c
                })
                .collect()
        } else {
            all.by_ref().take(tests.len()).collect()
        };
        states.push(State {
            patch,
            kernel: name,
            same_image_as_previous: same,
            cells,
        });
    }
    let last = states.last().context("no patched kernel")?;
    let mut report = build_report(
        KernelLabel {
            name: args.base_name.clone(),
            kernel_dir: args.base_kernel.display().to_string(),
        },
        KernelLabel {
            name: last.kernel.clone(),
            kernel_dir: last.patch.kernel_dir.display().to_string(),
        },
        args.patch_name.clone(),
        base_cells.clone(),
        last.cells.clone(),
        (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
    );
    let source = manifest
        .as_ref()
        .map(|m| m.source.clone())
        .or_else(|| args.patch_name.clone())
        .unwrap_or_default();
    let reproduce = manifest.as_ref().and_then(|m| m.reproduce.clone());
    attach_series(
        &mut report,
        &base_cells,
        &states,
        source,
        reproduce,
        cells_run,
    );
    // The intermediate states' cells go into the report too (after base and last).
    for state in &states[..states.len() - 1] {
        if !state.same_image_as_previous {
            report.cells.extend(state.cells.iter().cloned());
        }
    }
    let json = serde_json::to_string_pretty(&report).context("serializing report.json")?;
    fsutil::write_atomic(
        &args.out.join("report.json"),
        format!("{json}\n").as_bytes(),
    )?;
    fsutil::write_atomic(
        &args.out.join("report.md"),
        render_markdown(&report).as_bytes(),
    )?;
    fsutil::write_atomic(
        &args.out.join("summary.txt"),
        render_summary(&report).as_bytes(),
    )?;
    print!("{}", render_text(&report));
    println!(
        "reports: {} (summary.txt, report.json)",
        args.out.join("report.md").display()
    );
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

    fn manifest_patch(n: usize) -> ManifestPatch {
        ManifestPatch {
            subject: format!("subject {n}"),
            file: format!("000{n}-x.patch"),
            kernel_dir: format!("out/kernels/validate-upstream-{n}").into(),
            build_s: Some(10.0),
        }
    }

    /// base, then one state per outcome of adc-unbind.
    fn series(outcomes: &[Outcome]) -> ValidateReport {
        let base = vec![cell(
            "upstream",
            "adc-unbind",
            Outcome::Clean,
            Outcome::Clean,
        )];
        let states: Vec<State> = outcomes
            .iter()
            .enumerate()
            .map(|(i, &o)| State {
                patch: manifest_patch(i + 1),
                kernel: format!("upstream+{}", i + 1),
                same_image_as_previous: false,
                cells: vec![cell(&format!("upstream+{}", i + 1), "adc-unbind", o, o)],
            })
            .collect();
        let last = states.last().unwrap();
        let mut report = build_report(
            label("upstream"),
            label(&last.kernel),
            Some("series.mbox".into()),
            base.clone(),
            last.cells.clone(),
            1.0,
        );
        attach_series(
            &mut report,
            &base,
            &states,
            "PATCH=series.mbox".into(),
            Some("./validate PATCH=/abs/series.mbox BASE=upstream".into()),
            4,
        );
        report
    }

    #[test]
    fn a_series_names_the_patch_that_adds_the_abort() {
        let report = series(&[Outcome::Clean, Outcome::Abort, Outcome::Abort]);
        assert_eq!(report.exit_status(), EXIT_ADDS_ABORT);
        let s = report.series.as_ref().unwrap();
        assert_eq!(s.added.len(), 2, "read and write identities");
        assert!(s.added.iter().all(|a| a.by_patch == Some(2)));
        assert!(s.patches[0].added.is_empty() && s.patches[2].added.is_empty());
        let text = render_text(&report);
        assert!(
            text.contains(
                "patch 2/3 adds adc ADM0 read in rzg2l_adc_pm_runtime_suspend (adc-unbind)"
            ),
            "{text}"
        );
        assert!(text.contains("[1/3] subject 1: no change"), "{text}");
        assert!(
            report
                .summary
                .verdict
                .starts_with("the series ADDS 2 aborts"),
            "{}",
            report.summary.verdict
        );
        assert!(report
            .summary
            .verdict
            .contains("patch 2/3 adds adc ADM0 read"));
        let summary = render_summary(&report);
        let first = summary.lines().next().unwrap();
        assert!(
            first.starts_with("rzgate validate: FAIL: the series ADDS 2"),
            "{summary}"
        );
        assert!(summary.contains("first added by patch 2/3"), "{summary}");
        assert!(
            summary.contains("    rzg2l_adc_pm_runtime_suspend+0x14\n    frame0+0x4\n"),
            "the call chain: {summary}"
        );
        assert!(
            summary.contains("Reproduce locally:\n  ./validate PATCH=/abs/series.mbox"),
            "{summary}"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["series"]["added"][0]["by_patch"], 2);
        assert_eq!(json["summary"]["exit_status"], 1);
    }

    #[test]
    fn a_series_whose_last_patch_takes_back_the_first_ones_abort_passes_and_says_so() {
        let report = series(&[Outcome::Abort, Outcome::Abort, Outcome::Clean]);
        assert_eq!(report.exit_status(), EXIT_CLEAN);
        let s = report.series.as_ref().unwrap();
        assert!(s.added.is_empty() && s.removed.is_empty());
        assert_eq!(s.transient.len(), 2);
        assert_eq!(
            (s.transient[0].by_patch, s.transient[0].taken_back_by),
            (Some(1), Some(3))
        );
        assert!(
            report.summary.verdict.contains(
                "patch 1/3 adds adc ADM0 read in rzg2l_adc_pm_runtime_suspend and patch 3/3 removes it again"
            ),
            "{}",
            report.summary.verdict
        );
        let text = render_text(&report);
        assert!(text.contains("patch 3/3 removes adc ADM0 read in rzg2l_adc_pm_runtime_suspend (adc-unbind): the abort patch 1/3 adds"), "{text}");
        assert!(render_summary(&report).starts_with("rzgate validate: PASS"));
    }

    #[test]
    fn a_state_with_the_previous_image_is_not_run_and_changes_nothing() {
        let base = vec![cell("upstream", "boot", Outcome::Clean, Outcome::Clean)];
        let state = State {
            patch: manifest_patch(1),
            kernel: "upstream+1".into(),
            same_image_as_previous: true,
            cells: base.clone(),
        };
        let mut report = build_report(
            label("upstream"),
            label("upstream+1"),
            None,
            base.clone(),
            base.clone(),
            1.0,
        );
        attach_series(
            &mut report,
            &base,
            &[state],
            "PATCH=doc.patch".into(),
            None,
            1,
        );
        assert_eq!(report.exit_status(), EXIT_CLEAN);
        assert!(patch_lines(report.series.as_ref().unwrap())[0].contains("not run again"));
    }

    fn failing_check(mut c: CellReport) -> CellReport {
        c.outcome = Outcome::Error;
        c.checks_failed = true;
        c.error = Some("failing KTAP lines: not ok 2 probe failed # errno".into());
        c.ktap.results = vec![crate::console::KtapResult {
            number: 2,
            ok: false,
            description: "probe failed".into(),
            directive: Some("errno".into()),
            depth: 0,
            line: "not ok 2 probe failed # errno".into(),
        }];
        c
    }

    #[test]
    fn a_check_that_fails_only_with_the_patch_is_its_own_verdict_not_an_error() {
        let base = vec![cell(
            "upstream",
            "adc-probe-failure",
            Outcome::Clean,
            Outcome::Clean,
        )];
        let patched = vec![failing_check(cell(
            "upstream+patch",
            "adc-probe-failure",
            Outcome::Clean,
            Outcome::Clean,
        ))];
        let report = build_report(
            label("upstream"),
            label("upstream+patch"),
            None,
            base,
            patched,
            1.0,
        );
        assert_eq!(report.summary.errors, 0);
        assert_eq!(report.exit_status(), EXIT_CHANGES_OBSERVATION);
        assert_eq!(report.tests[0].newly_failing, vec!["not ok 2 probe failed"]);
        assert!(
            report
                .summary
                .verdict
                .contains("changes what the tests observe"),
            "{}",
            report.summary.verdict
        );
        let text = render_text(&report);
        assert!(
            text.contains("adc-probe-failure: ! fails only with the patch: not ok 2 probe failed"),
            "{text}"
        );
        let summary = render_summary(&report);
        assert!(summary.starts_with("rzgate validate: CHANGED"), "{summary}");
        assert!(
            summary.contains("upstream+patch/adc-probe-failure: not ok 2 probe failed # errno"),
            "{summary}"
        );

        // The same failing check on both kernels changes nothing the patch did.
        let both = build_report(
            label("upstream"),
            label("upstream+patch"),
            None,
            vec![failing_check(cell(
                "upstream",
                "t",
                Outcome::Clean,
                Outcome::Clean,
            ))],
            vec![failing_check(cell(
                "upstream+patch",
                "t",
                Outcome::Clean,
                Outcome::Clean,
            ))],
            1.0,
        );
        assert_eq!(both.exit_status(), EXIT_CLEAN);
        // An infrastructure error still means "could not judge", whatever else happened.
        let timeout = build_report(
            label("upstream"),
            label("upstream+patch"),
            None,
            vec![cell("upstream", "t", Outcome::Clean, Outcome::Clean)],
            vec![cell("upstream+patch", "t", Outcome::Error, Outcome::Clean)],
            1.0,
        );
        assert_eq!(timeout.exit_status(), EXIT_COULD_NOT_JUDGE);
        assert!(render_summary(&timeout).starts_with("rzgate validate: UNKNOWN: could not judge"));
    }
}
