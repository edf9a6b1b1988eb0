//! The run's reports: `report.json` (the contract of DESIGN.md, "Contracts other tools rely
//! on": field names are never renamed, only added), `report.md` for people, `junit.xml`
//! for CI, and the verdict table printed to stdout.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::console::{GuestTrace, KtapResult, Step};
use crate::events::SerrorDivert;
use crate::outcome::Outcome;

/// A step as an abort reports it: the number the guest wrote to the mailbox and the text
/// it printed for it.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct StepRef {
    pub n: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GatedSinceReport {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pc: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<StepRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub register: Option<String>,
    /// The gating access's call chain, when the plugin recorded one on the gate event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub call_chain: Vec<String>,
}

/// Who gave user space the window (`user_space_mapped`): the kernel store of the page-table
/// entry, symbolized.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct UserSpaceMappedReport {
    pub seq: u64,
    pub symbol: String,
    pub call_chain: Vec<String>,
}

/// One group of gated accesses of one class (a cell's `aborts`, or its `suspects`): the
/// first of its identity (pc + register + access) with the number of times it happened.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct AbortReport {
    pub device: String,
    pub register: String,
    pub soc_addr: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_addr: Option<u64>,
    pub access: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    pub value: Option<u64>,
    pub pc: u64,
    /// `function+0xoffset` of pc (or the hex address when it is not kernel text).
    pub symbol: String,
    /// The function alone, when pc is in kernel text (the identity `validate` compares).
    pub function: Option<String>,
    /// Symbolized return addresses, innermost first.
    pub call_chain: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unwind: Option<String>,
    pub gated_by: Vec<String>,
    pub step: Option<StepRef>,
    pub gated_since: Option<GatedSinceReport>,
    pub count: u64,
    /// The first of its class in the cell (the first abort, or the first suspect): the one
    /// to read; the others may be its consequences.
    pub root: bool,
    /// `seq` of the group's first event.
    pub first_seq: u64,
    /// Addresses that could not be symbolized, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// `on_abort=serror` diverted the guest into its SError path at this abort.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diverted: bool,
    /// How the divert was made (or why not), as the plugin recorded it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serror: Option<SerrorDivert>,
}

impl AbortReport {
    /// What `validate` compares between two kernels: device + register + access + the
    /// faulting function (without offset: the patched kernel is another build).
    pub fn identity(&self) -> String {
        format!(
            "{} {} {} in {}",
            self.device,
            self.register,
            self.access,
            self.function.as_deref().unwrap_or(&self.symbol)
        )
    }

    /// One line: `adc ADM0 read at rzg2l_adc_pm_runtime_suspend+0x14 (step 1)`.
    pub fn one_line(&self) -> String {
        let step = self
            .step
            .as_ref()
            .map(|s| format!(" (step {})", s.n))
            .unwrap_or_default();
        format!(
            "{} {} {} at {}{step}",
            self.device, self.register, self.access, self.symbol
        )
    }
}

/// The guest's KTAP output, kept in every cell.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct KtapReport {
    pub version: Option<u32>,
    pub plan: Option<u32>,
    pub results: Vec<KtapResult>,
    pub steps: Vec<Step>,
    pub done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panic: Option<String>,
}

/// A cell's time in three parts, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize, Serialize)]
pub struct Phases {
    /// QEMU's start to the test's first line (`KTAP version`): the boot, or the restore of
    /// the snapshot and the guest reading its parameters.
    pub start_s: f64,
    /// The test's first line to `# rzgate-done`.
    pub test_s: f64,
    /// `# rzgate-done` to QEMU's exit.
    pub end_s: f64,
}

/// One outcome of a repeated cell.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Repetition {
    pub outcome: Outcome,
    pub ok: bool,
    pub duration_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_abort: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct CellReport {
    pub kernel: String,
    pub test: String,
    pub outcome: Outcome,
    pub expected: Option<Outcome>,
    pub ok: bool,
    pub aborts: Vec<AbortReport>,
    pub duration_s: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// The root abort in one line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub root_abort: Option<String>,
    /// Number of abort events (all groups together).
    pub abort_events: u64,
    /// Accesses to a module gated in a way the silicon tolerates (its clock stopped while
    /// its bus MSTOP is clear, or its reset held), grouped like `aborts`. They never decide
    /// the outcome: a cell with suspects alone is `clean` when its tests passed.
    #[serde(default)]
    pub suspects: Vec<AbortReport>,
    /// Number of suspect events (all groups together).
    #[serde(default)]
    pub suspect_events: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The `error` is the guest's checks failing (the test ran to its end and observed
    /// something else), not the infrastructure (timeout, crash, panic, a fault that never
    /// fired); absent when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub checks_failed: bool,
    /// Last 40 console lines, for error cells.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub console_tail: Option<Vec<String>>,
    pub ktap: KtapReport,
    /// `on_abort=serror`: the guest kernel's own report of the SError (console).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_trace: Option<GuestTrace>,
    /// `on_abort=serror` with a diverted abort: the guest's `pc :` is the instruction of our
    /// root abort (so the register our record names is the one it accessed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_trace_agrees: Option<bool>,
    /// Why the guest's report and ours disagree.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub guest_trace_reason: Option<String>,
    pub faults_armed: Vec<String>,
    pub faults_fired: Vec<String>,
    /// From this event on user space was instrumented: who mapped the window into it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_space_mapped: Option<UserSpaceMappedReport>,
    /// Damage found in the events file (truncated last line, malformed lines, events
    /// dropped because the plugin's channel was full).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events_notes: Vec<String>,
    pub exit: String,
    pub loops: u32,
    pub events_file: String,
    pub console_file: String,
    pub qemu_cmd_file: String,
    /// With `--repeat`: every repetition's outcome (this cell's details are those of the
    /// first repetition that missed its expectation, else of the first).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repetitions: Option<Vec<Repetition>>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flaky: bool,
    /// Where the cell's time went (absent when the guest never started or finished its
    /// test).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<Phases>,
    /// How the guest started: `restored` from the run's snapshot of its kernel, `cold`
    /// (booted), or `cold: <why>` when the run used snapshots but this cell could not.
    #[serde(default)]
    pub boot: String,
}

impl CellReport {
    pub fn name(&self) -> String {
        format!("{}/{}", self.kernel, self.test)
    }

    pub fn root(&self) -> Option<&AbortReport> {
        self.aborts.iter().find(|a| a.root)
    }

    pub fn root_suspect(&self) -> Option<&AbortReport> {
        self.suspects.iter().find(|s| s.root)
    }
}

/// The counts are [`RunReport::recount`]'s: a new summary starts them at zero
/// (`..Summary::default()`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
pub struct Summary {
    pub cells: usize,
    pub matched: usize,
    pub mismatched: usize,
    pub errors: usize,
    pub aborting: usize,
    pub clean: usize,
    /// Suspect events over all cells (they are in no outcome; see the cells' `suspects`).
    pub suspects: u64,
    /// Cells with at least one suspect.
    pub suspect_cells: usize,
    /// Cells whose outcome differed between repetitions.
    pub flaky: Vec<String>,
    pub wall_s: f64,
    pub kernels: Vec<String>,
    pub tests: Vec<String>,
    pub repeat: u32,
    pub jobs: usize,
    pub on_abort: String,
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub dtb: String,
    /// A signal (Ctrl-C, a CI timeout's SIGTERM) stopped the run: `cells` has the cells that
    /// finished, `not_run` the others.
    #[serde(default)]
    pub interrupted: bool,
    /// `SIGINT`, `SIGTERM` or `SIGHUP`, when interrupted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted_by: Option<String>,
    /// Cells of this run (or shard) that did not run: `not_run`'s length.
    #[serde(default)]
    pub not_run: usize,
    /// `run --shard I/N`: this report has shard I's cells only (`kernels` and `tests` are
    /// still the whole selection, so that `merge` can check the shards fit together).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
    /// `merge`: the shard reports this report combines, in shard order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub merged_from: Vec<String>,
}

/// Shard `index` of `total` (both from 1): the cells whose position `k` (from 0) in the
/// selection's kernel-major order has `k % total == index - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub struct Shard {
    pub index: u32,
    pub total: u32,
}

impl Shard {
    /// Whether the cell at `position` (from 0) of the selection belongs to this shard.
    /// Round-robin rather than contiguous slices: the long loop tests of a kernel are then
    /// spread over the shards instead of landing in one.
    pub fn has(&self, position: usize) -> bool {
        position % self.total as usize == (self.index - 1) as usize
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// `I/N` with 1 <= I <= N.
    fn from_str(text: &str) -> Result<Shard, String> {
        let (index, total) = text
            .split_once('/')
            .ok_or_else(|| format!("`{text}` is not I/N (e.g. 2/3)"))?;
        let parse = |part: &str, what: &str| {
            part.trim()
                .parse::<u32>()
                .map_err(|_| format!("`{text}`: the {what} `{part}` is not a whole number"))
        };
        let (index, total) = (parse(index, "shard index")?, parse(total, "shard count")?);
        if total == 0 || index == 0 || index > total {
            return Err(format!(
                "`{text}`: the shard index must be 1..{total}, the count at least 1"
            ));
        }
        Ok(Shard { index, total })
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.total)
    }
}

/// A cell of the run that did not run because the run was interrupted.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct NotRunCell {
    pub kernel: String,
    pub test: String,
    pub expected: Option<Outcome>,
}

impl NotRunCell {
    pub fn name(&self) -> String {
        format!("{}/{}", self.kernel, self.test)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct RunReport {
    /// The cells that finished (all of them unless the run was interrupted).
    pub cells: Vec<CellReport>,
    /// The cells an interrupt kept from finishing (`[]` when none; absent in reports
    /// written before interrupts were kept, read as `[]`).
    #[serde(default)]
    pub not_run: Vec<NotRunCell>,
    pub summary: Summary,
}

impl RunReport {
    /// Every cell ran and matched its expectation, and none was flaky.
    pub fn all_ok(&self) -> bool {
        self.summary.mismatched == 0
            && self.summary.flaky.is_empty()
            && !self.summary.interrupted
            && self.not_run.is_empty()
    }

    /// Recomputes the summary's counts from `cells` and `not_run`.
    pub fn recount(&mut self) {
        let (matched, mismatched, errors, aborting, clean) = summarize_counts(&self.cells);
        let (suspects, suspect_cells) = suspect_counts(&self.cells);
        let s = &mut self.summary;
        (
            s.cells,
            s.matched,
            s.mismatched,
            s.errors,
            s.aborting,
            s.clean,
        ) = (
            self.cells.len(),
            matched,
            mismatched,
            errors,
            aborting,
            clean,
        );
        (s.suspects, s.suspect_cells) = (suspects, suspect_cells);
        s.flaky = self
            .cells
            .iter()
            .filter(|c| c.flaky)
            .map(CellReport::name)
            .collect();
        s.not_run = self.not_run.len();
    }

    fn not_run_cell(&self, kernel: &str, test: &str) -> Option<&NotRunCell> {
        self.not_run
            .iter()
            .find(|c| c.kernel == kernel && c.test == test)
    }

    /// Reads a report.json; a malformed one is refused with the path of the field at fault
    /// (`cells[3].outcome: unknown variant ...`).
    pub fn load(path: &std::path::Path) -> anyhow::Result<RunReport> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        parse_json(&text).with_context(|| format!("{} is not a runner report", path.display()))
    }

    fn cell(&self, kernel: &str, test: &str) -> Option<&CellReport> {
        self.cells
            .iter()
            .find(|c| c.kernel == kernel && c.test == test)
    }
}

/// Parses JSON into `T`; the error names the field at fault (`cells[3].outcome`), or the
/// document when the fault is at its top.
pub fn parse_json<T: serde::de::DeserializeOwned>(text: &str) -> anyhow::Result<T> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            anyhow::anyhow!("{inner}")
        } else {
            anyhow::anyhow!("{path}: {inner}")
        }
    })
}

/// Counts for the summary.
pub fn summarize_counts(cells: &[CellReport]) -> (usize, usize, usize, usize, usize) {
    let matched = cells.iter().filter(|c| c.ok).count();
    let errors = cells.iter().filter(|c| c.outcome == Outcome::Error).count();
    let aborting = cells.iter().filter(|c| c.outcome == Outcome::Abort).count();
    let clean = cells.iter().filter(|c| c.outcome == Outcome::Clean).count();
    (matched, cells.len() - matched, errors, aborting, clean)
}

/// Suspect events over all cells, and the number of cells that have any.
pub fn suspect_counts(cells: &[CellReport]) -> (u64, usize) {
    let events = cells.iter().map(|c| c.suspect_events).sum();
    let with_suspects = cells.iter().filter(|c| c.suspect_events > 0).count();
    (events, with_suspects)
}

/// `1 suspect`, `3 suspects`: a count with its noun in the right number.
pub fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// ` (2 suspects)` after a cell's outcome, or nothing: suspects are reported beside the
/// outcome, never in it.
pub fn suspects_suffix(suspect_events: u64) -> String {
    match suspect_events {
        0 => String::new(),
        n => format!(" ({})", counted(n, "suspect")),
    }
}

/// How a cell reads in a table: the outcome, marked when it is not what was expected, and
/// its suspect count when it has any.
fn verdict_text(cell: &CellReport) -> String {
    let mut text = cell.outcome.to_string();
    if !cell.ok {
        match cell.expected {
            Some(expected) if expected != cell.outcome => {
                text = format!("*{text} (expected {expected})")
            }
            _ => text = format!("*{text}"),
        }
    }
    text.push_str(&suspects_suffix(cell.suspect_events));
    if cell.flaky {
        text.push_str(" FLAKY");
    }
    text
}

/// The verdict table for the terminal: one row per test, one column per kernel.
pub fn render_table(report: &RunReport) -> String {
    let kernels = &report.summary.kernels;
    let mut rows: Vec<Vec<String>> = vec![std::iter::once("test".to_string())
        .chain(kernels.iter().cloned())
        .collect()];
    for test in &report.summary.tests {
        let mut row = vec![test.clone()];
        for kernel in kernels {
            row.push(match report.cell(kernel, test) {
                Some(cell) => verdict_text(cell),
                None if report.not_run_cell(kernel, test).is_some() => NOT_RUN.to_string(),
                None => "-".to_string(),
            });
        }
        rows.push(row);
    }
    let mut out = text_table(&rows);
    let s = &report.summary;
    let _ = writeln!(
        out,
        "\n{}/{} cells as expected ({} mismatched, {} errors){}{}; {:.1} s",
        s.matched,
        s.cells,
        s.mismatched,
        s.errors,
        if s.flaky.is_empty() {
            String::new()
        } else {
            format!("; flaky: {}", s.flaky.join(", "))
        },
        if s.suspects == 0 {
            String::new()
        } else {
            format!(
                "; {} in {} (not aborts; see report.md)",
                counted(s.suspects, "suspect event"),
                counted(s.suspect_cells as u64, "cell")
            )
        },
        s.wall_s
    );
    if s.mismatched > 0 {
        out.push_str("* = differs from the expectation\n");
    }
    if let Some(line) = interrupted_line(report) {
        let _ = writeln!(out, "{line}");
    }
    out
}

/// How a cell that did not run reads in the tables.
const NOT_RUN: &str = "not run";

/// `INTERRUPTED by SIGINT: 3 cells did not run (...)`, when the run was interrupted.
fn interrupted_line(report: &RunReport) -> Option<String> {
    let s = &report.summary;
    if !s.interrupted && report.not_run.is_empty() {
        return None;
    }
    let names: Vec<String> = report.not_run.iter().map(NotRunCell::name).collect();
    Some(format!(
        "INTERRUPTED{}: {} finished, {} did not run{}",
        s.interrupted_by
            .as_deref()
            .map(|by| format!(" by {by}"))
            .unwrap_or_default(),
        counted(report.cells.len() as u64, "cell"),
        counted(names.len() as u64, "cell"),
        if names.is_empty() {
            String::new()
        } else {
            format!(" ({})", names.join(", "))
        }
    ))
}

fn md_escape(text: &str) -> String {
    text.replace('|', "\\|")
}

/// How many frames of a call chain the reports and the console show.
pub const SHOWN_FRAMES: usize = 12;

/// A call chain on one line, innermost first: `a+0x10 <- b+0x2c <- ...`.
fn inline_chain(chain: &[String]) -> String {
    let shown: Vec<&str> = chain
        .iter()
        .take(SHOWN_FRAMES)
        .map(String::as_str)
        .collect();
    shown.join(" <- ")
}

/// Text in a code span; a backtick inside would end the span, so it becomes a quote.
fn code(text: &str) -> String {
    format!("`{}`", text.replace('`', "'"))
}

/// report.md, with `after_table` (sections that summarise the table, such as the sweep's
/// per-driver table) between the verdict table and the per-cell details.
pub fn render_markdown(report: &RunReport, after_table: &str) -> String {
    let mut md = String::new();
    let s = &report.summary;
    let _ = writeln!(md, "# rzgate matrix\n");
    let _ = writeln!(
        md,
        "{}/{} cells as expected, {} mismatched, {} errors; on_abort={}, {} °C, ADC {:?}; {:.1} s with {} jobs{}.\n",
        s.matched,
        s.cells,
        s.mismatched,
        s.errors,
        s.on_abort,
        s.temp_c,
        s.adc,
        s.wall_s,
        s.jobs,
        if s.repeat > 1 {
            format!(", {} repetitions", s.repeat)
        } else {
            String::new()
        }
    );
    if let Some(line) = interrupted_line(report) {
        let _ = writeln!(md, "**{line}**\n");
    }
    if !s.flaky.is_empty() {
        let _ = writeln!(
            md,
            "**Flaky** (outcome changed between repetitions): {}\n",
            s.flaky.join(", ")
        );
    }

    // The table.
    let _ = writeln!(md, "| test | {} |", s.kernels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(s.kernels.len()));
    for test in &s.tests {
        let cells: Vec<String> = s
            .kernels
            .iter()
            .map(|kernel| match report.cell(kernel, test) {
                None if report.not_run_cell(kernel, test).is_some() => NOT_RUN.to_string(),
                None => "-".to_string(),
                Some(cell) if cell.ok && !cell.flaky => {
                    let outcome = match cell.outcome {
                        Outcome::Abort => "**abort**".to_string(),
                        other => other.to_string(),
                    };
                    outcome + &suspects_suffix(cell.suspect_events)
                }
                Some(cell) => {
                    let mut text = format!("**{}** ✗", cell.outcome);
                    if let Some(expected) = cell.expected.filter(|&e| e != cell.outcome) {
                        text.push_str(&format!(" (expected {expected})"));
                    }
                    text.push_str(&suspects_suffix(cell.suspect_events));
                    if cell.flaky {
                        text.push_str(" flaky");
                    }
                    text
                }
            })
            .collect();
        let _ = writeln!(md, "| `{test}` | {} |", cells.join(" | "));
    }
    md.push('\n');
    md.push_str(after_table);

    let aborting: Vec<&CellReport> = report
        .cells
        .iter()
        .filter(|c| !c.aborts.is_empty())
        .collect();
    if !aborting.is_empty() {
        let _ = writeln!(md, "## Aborts\n");
    }
    for cell in aborting {
        let _ = writeln!(
            md,
            "### {} / {} ({}{})\n",
            cell.kernel,
            cell.test,
            cell.outcome,
            match cell.expected {
                Some(e) => format!(", expected {e}"),
                None => String::new(),
            }
        );
        if let Some(rationale) = &cell.rationale {
            let _ = writeln!(md, "Expectation: {rationale}\n");
        }
        if let Some(root) = cell.root() {
            render_root(&mut md, "Root abort", root);
        }
        if s.on_abort == "serror" || cell.guest_trace.is_some() {
            render_guest_trace(&mut md, cell);
        }
        if let Some(mapped) = &cell.user_space_mapped {
            let _ = writeln!(
                md,
                "User space can reach the window from event {}: the page-table entry stored at \
                 {} (called from {}).\n",
                mapped.seq,
                code(&mapped.symbol),
                code(&inline_chain(&mapped.call_chain))
            );
        }
        render_repeats(&mut md, &cell.aborts);
    }

    let with_suspects: Vec<&CellReport> = report
        .cells
        .iter()
        .filter(|c| !c.suspects.is_empty())
        .collect();
    if !with_suspects.is_empty() {
        let _ = writeln!(
            md,
            "## Suspects\n\nAccesses to a module gated in a way the silicon tolerates (its clock \
             stopped while its bus MSTOP is clear, or its reset held): reported, never an \
             abort.\n"
        );
    }
    for cell in with_suspects {
        let _ = writeln!(
            md,
            "### {} / {} ({}, {})\n",
            cell.kernel,
            cell.test,
            cell.outcome,
            counted(cell.suspect_events, "suspect event")
        );
        if let Some(root) = cell.root_suspect() {
            render_root(&mut md, "Root suspect", root);
        }
        render_repeats(&mut md, &cell.suspects);
    }

    let errors: Vec<&CellReport> = report
        .cells
        .iter()
        .filter(|c| c.outcome == Outcome::Error)
        .collect();
    if !errors.is_empty() {
        let _ = writeln!(md, "## Errors\n");
    }
    for cell in errors {
        let _ = writeln!(md, "### {} / {}\n", cell.kernel, cell.test);
        let _ = writeln!(
            md,
            "{}\n",
            cell.error.as_deref().unwrap_or("(no reason recorded)")
        );
        if let Some(tail) = &cell.console_tail {
            let _ = writeln!(
                md,
                "Console ({}), last {} lines:\n",
                cell.console_file,
                tail.len()
            );
            let _ = writeln!(md, "~~~text\n{}\n~~~\n", tail.join("\n"));
        }
    }
    md
}

/// The root of a cell's aborts or suspects (`title`): where, what, why gated, the call chain.
fn render_root(md: &mut String, title: &str, root: &AbortReport) {
    let _ = writeln!(
        md,
        "{title}{}: **{} {}** at SoC {:#010x}{}",
        if root.count > 1 {
            format!(" (x{})", root.count)
        } else {
            String::new()
        },
        root.device,
        md_escape(&root.register),
        root.soc_addr,
        root.guest_addr
            .map(|g| format!(" (guest {g:#x})"))
            .unwrap_or_default()
    );
    let _ = writeln!(md);
    let _ = writeln!(
        md,
        "- access: {}{}{}",
        root.access,
        root.size
            .map(|s| format!(" of {s} bytes"))
            .unwrap_or_default(),
        root.value
            .map(|v| format!(", value {v:#x}"))
            .unwrap_or_default()
    );
    let _ = writeln!(md, "- at: {} (pc {:#x})", code(&root.symbol), root.pc);
    if let Some(step) = &root.step {
        let _ = writeln!(
            md,
            "- step {}: {}",
            step.n,
            step.text
                .as_deref()
                .unwrap_or("(no step text on the console)")
        );
    }
    if !root.gated_by.is_empty() {
        let _ = writeln!(md, "- gated by: {}", md_escape(&root.gated_by.join("; ")));
    }
    if let Some(since) = &root.gated_since {
        let mut text = String::new();
        if let Some(register) = &since.register {
            let _ = write!(text, "{register} access");
        }
        if let Some(symbol) = &since.symbol {
            let _ = write!(text, " at {}", code(symbol));
        }
        if let Some(step) = &since.step {
            let _ = write!(text, " in step {}", step.n);
            if let Some(step_text) = &step.text {
                let _ = write!(text, " ({step_text})");
            }
        }
        if let Some(seq) = since.seq {
            let _ = write!(text, " [event {seq}]");
        }
        let _ = writeln!(md, "- gated since: {}", text.trim());
        if !since.call_chain.is_empty() {
            let _ = writeln!(
                md,
                "  (called from {})",
                code(&inline_chain(&since.call_chain))
            );
        }
    }
    for note in &root.notes {
        let _ = writeln!(md, "- note: {note}");
    }
    if !root.call_chain.is_empty() {
        let shown = root.call_chain.len().min(SHOWN_FRAMES);
        let _ = writeln!(
            md,
            "\nCall chain (innermost first, {shown} of {}{}):\n",
            root.call_chain.len(),
            root.unwind
                .as_deref()
                .map(|u| format!(", unwind: {u}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            md,
            "~~~text\n{}\n{}\n~~~",
            root.symbol,
            root.call_chain[..shown].join("\n")
        );
    }
    md.push('\n');
}

/// The groups after the root, one table row each.
fn render_repeats(md: &mut String, groups: &[AbortReport]) {
    let repeats: Vec<&AbortReport> = groups.iter().filter(|g| !g.root).collect();
    if repeats.is_empty() {
        return;
    }
    let _ = writeln!(md, "Then (grouped by pc + register + access):\n");
    let _ = writeln!(md, "| count | device | register | access | at | step |");
    let _ = writeln!(md, "|---:|---|---|---|---|---|");
    for g in repeats {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} |",
            g.count,
            g.device,
            md_escape(&g.register),
            g.access,
            code(&g.symbol),
            g.step.as_ref().map_or("-".to_string(), |s| s.n.to_string())
        );
    }
    md.push('\n');
}

/// Frames of the guest's call trace shown in report.md (the panic's own frames first, then
/// the driver; a deeper trace is cut).
const GUEST_TRACE_FRAMES: usize = 40;

/// `on_abort=serror`: the guest kernel's own SError report beside ours, and whether they
/// agree.
fn render_guest_trace(md: &mut String, cell: &CellReport) {
    let verdict = match (cell.guest_trace_agrees, &cell.guest_trace_reason) {
        (Some(true), _) => {
            " (its `pc` is the root abort's instruction: agrees with our record)".to_string()
        }
        (Some(false), reason) => format!(
            " — **disagrees with our record**: {}",
            md_escape(reason.as_deref().unwrap_or("(no reason)"))
        ),
        (None, _) => String::new(),
    };
    let Some(trace) = &cell.guest_trace else {
        let _ = writeln!(
            md,
            "The guest printed no SError report on its console{verdict}.\n"
        );
        return;
    };
    let _ = writeln!(md, "The guest kernel's own report (console){verdict}:\n");
    let mut lines = vec![trace.exception_line.clone()];
    lines.extend(trace.pc.as_ref().map(|pc| format!("pc : {pc}")));
    lines.extend(trace.lr.as_ref().map(|lr| format!("lr : {lr}")));
    lines.extend(trace.panic.clone());
    if !trace.call_trace.is_empty() {
        lines.push("Call trace:".to_string());
        lines.extend(
            trace
                .call_trace
                .iter()
                .take(GUEST_TRACE_FRAMES)
                .map(|frame| format!(" {frame}")),
        );
        if trace.call_trace.len() > GUEST_TRACE_FRAMES {
            lines.push(format!(
                " ... ({} more frames)",
                trace.call_trace.len() - GUEST_TRACE_FRAMES
            ));
        }
    }
    let _ = writeln!(md, "~~~text\n{}\n~~~\n", lines.join("\n"));
}

/// XML 1.0 text: escaped, and with the characters XML cannot carry at all (most control
/// characters, which a console may well contain) replaced.
fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// JUnit XML: one testsuite per kernel, one testcase per cell (name = test id,
/// classname = kernel), a `failure` for every cell that missed its expectation.
pub fn render_junit(report: &RunReport) -> String {
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let s = &report.summary;
    let _ = writeln!(
        xml,
        "<testsuites name=\"rzgate\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\">",
        s.cells + report.not_run.len(),
        s.mismatched,
        s.wall_s
    );
    for kernel in &s.kernels {
        let cells: Vec<&CellReport> = report
            .cells
            .iter()
            .filter(|c| &c.kernel == kernel)
            .collect();
        let not_run: Vec<&NotRunCell> = report
            .not_run
            .iter()
            .filter(|c| &c.kernel == kernel)
            .collect();
        if cells.is_empty() && not_run.is_empty() {
            continue;
        }
        let failures = cells.iter().filter(|c| !c.ok || c.flaky).count();
        let time: f64 = cells.iter().map(|c| c.duration_s).sum();
        let _ = writeln!(
            xml,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"{}\" time=\"{time:.3}\">",
            xml_escape(kernel),
            cells.len() + not_run.len(),
            not_run.len()
        );
        // A cell the interrupt kept from running is skipped, not failed: nothing is known
        // about it (the run as a whole fails through its exit status).
        for cell in &not_run {
            let _ = writeln!(
                xml,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"0.000\"><skipped message=\"not run: the run was interrupted{}\"/></testcase>",
                xml_escape(&cell.test),
                xml_escape(&cell.kernel),
                xml_escape(
                    &s.interrupted_by
                        .as_deref()
                        .map(|by| format!(" by {by}"))
                        .unwrap_or_default()
                )
            );
        }
        for cell in cells {
            let _ = write!(
                xml,
                "    <testcase name=\"{}\" classname=\"{}\" time=\"{:.3}\"",
                xml_escape(&cell.test),
                xml_escape(&cell.kernel),
                cell.duration_s
            );
            let failed = !cell.ok || cell.flaky;
            if !failed && cell.suspects.is_empty() {
                xml.push_str("/>\n");
                continue;
            }
            xml.push_str(">\n");
            // Suspects are information, never a failure: a property for tools, the list in
            // system-out for people (JUnit wants properties first, system-out last).
            if !cell.suspects.is_empty() {
                let _ = writeln!(
                    xml,
                    "      <properties><property name=\"suspects\" value=\"{}\"/></properties>",
                    cell.suspect_events
                );
            }
            if failed {
                write_junit_failure(&mut xml, cell);
            }
            if !cell.suspects.is_empty() {
                let mut out = String::new();
                for suspect in &cell.suspects {
                    let _ = writeln!(
                        out,
                        "{} {} (x{}); gated by: {}",
                        if suspect.root {
                            "root suspect"
                        } else {
                            "suspect"
                        },
                        suspect.one_line(),
                        suspect.count,
                        suspect.gated_by.join("; ")
                    );
                }
                let _ = writeln!(xml, "      <system-out>{}</system-out>", xml_escape(&out));
            }
            xml.push_str("    </testcase>\n");
        }
        xml.push_str("  </testsuite>\n");
    }
    xml.push_str("</testsuites>\n");
    xml
}

/// The `failure` element of a cell that missed its expectation (or was flaky).
fn write_junit_failure(xml: &mut String, cell: &CellReport) {
    let expected = cell.expected.map_or("none".to_string(), |e| e.to_string());
    let message = if cell.flaky {
        format!(
            "outcome {} (expected {expected}), flaky between repetitions",
            cell.outcome
        )
    } else {
        format!("outcome {}, expected {expected}", cell.outcome)
    };
    let mut body = String::new();
    if let Some(error) = &cell.error {
        let _ = writeln!(body, "error: {error}");
    }
    if let Some(root) = cell.root() {
        let _ = writeln!(body, "root abort: {}", root.one_line());
        let _ = writeln!(body, "gated by: {}", root.gated_by.join("; "));
        for frame in root.call_chain.iter().take(SHOWN_FRAMES) {
            let _ = writeln!(body, "  {frame}");
        }
    }
    if let Some(trace) = &cell.guest_trace {
        let _ = writeln!(body, "guest: {}", trace.exception_line);
        if let Some(pc) = &trace.pc {
            let _ = writeln!(body, "guest pc : {pc}");
        }
        if let Some(reason) = &cell.guest_trace_reason {
            let _ = writeln!(body, "guest trace disagrees: {reason}");
        }
    }
    if let Some(repetitions) = &cell.repetitions {
        let outcomes: Vec<&str> = repetitions.iter().map(|r| r.outcome.as_str()).collect();
        let _ = writeln!(body, "repetitions: {}", outcomes.join(", "));
    }
    if let Some(tail) = &cell.console_tail {
        let _ = writeln!(body, "console tail:\n{}", tail.join("\n"));
    }
    let _ = writeln!(
        xml,
        "      <failure message=\"{}\" type=\"{}\">{}</failure>",
        xml_escape(&message),
        if cell.outcome == Outcome::Error {
            "error"
        } else {
            "mismatch"
        },
        xml_escape(&body)
    );
}

/// Rows as left-aligned columns two spaces apart, one line each (the terminal tables).
pub fn text_table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|col| {
            rows.iter()
                .filter_map(|r| r.get(col))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn abort(root: bool, count: u64) -> AbortReport {
        AbortReport {
            device: "adc".into(),
            register: "ADM0".into(),
            soc_addr: 0x1005_8000,
            guest_addr: Some(0x7e05_8000),
            access: "read".into(),
            size: Some(4),
            value: Some(0xffff_ffff),
            pc: 0xffff_8000_8060_0014,
            symbol: "rzg2l_adc_pm_runtime_suspend+0x14".into(),
            function: Some("rzg2l_adc_pm_runtime_suspend".into()),
            call_chain: (0..15).map(|i| format!("frame{i}+0x4")).collect(),
            unwind: Some("depth-limit".into()),
            gated_by: vec!["ADC pclk off: CLK_MON 0x728 bit 1 = 0".into()],
            step: Some(StepRef {
                n: 1,
                text: Some("unbind <adc> & check".into()),
            }),
            gated_since: Some(GatedSinceReport {
                seq: Some(2),
                pc: Some(0xffff_8000_8070_0064),
                symbol: Some("rzg2l_mod_clock_endisable+0x64".into()),
                step: Some(StepRef { n: 1, text: None }),
                register: Some("CLK_ON_ADC".into()),
                call_chain: vec!["dev_pm_domain_detach+0x30".into()],
            }),
            count,
            root,
            first_seq: 3,
            notes: vec![],
            diverted: false,
            serror: None,
        }
    }

    pub(crate) fn cell(
        kernel: &str,
        test: &str,
        outcome: Outcome,
        expected: Outcome,
    ) -> CellReport {
        let aborts = if outcome == Outcome::Abort {
            let mut second = abort(false, 3);
            second.access = "write".into();
            vec![abort(true, 2), second]
        } else {
            vec![]
        };
        CellReport {
            kernel: kernel.into(),
            test: test.into(),
            outcome,
            expected: Some(expected),
            ok: outcome == expected,
            root_abort: aborts.first().map(AbortReport::one_line),
            abort_events: aborts.iter().map(|a| a.count).sum(),
            aborts,
            suspects: vec![],
            suspect_events: 0,
            duration_s: 1.5,
            rationale: Some("because".into()),
            error: (outcome == Outcome::Error).then(|| "timeout after 60 s <killed>".into()),
            checks_failed: false,
            console_tail: (outcome == Outcome::Error)
                .then(|| vec!["line with \u{1b}[0m escape & <tag>".into(), "last".into()]),
            ktap: KtapReport {
                version: Some(1),
                plan: Some(1),
                results: vec![],
                steps: vec![],
                done: true,
                panic: None,
            },
            guest_trace: None,
            guest_trace_agrees: None,
            guest_trace_reason: None,
            faults_armed: vec![],
            faults_fired: vec![],
            user_space_mapped: None,
            events_notes: vec![],
            exit: "exit status 0".into(),
            loops: 1,
            events_file: format!("cells/{kernel}/{test}/events.jsonl"),
            console_file: format!("cells/{kernel}/{test}/console.log"),
            qemu_cmd_file: format!("cells/{kernel}/{test}/qemu.cmd"),
            repetitions: None,
            flaky: false,
            phases: None,
            boot: "cold".into(),
        }
    }

    pub(crate) fn sample_report() -> RunReport {
        let cells = vec![
            cell("upstream", "adc-unbind", Outcome::Clean, Outcome::Clean),
            cell("prefix", "adc-unbind", Outcome::Abort, Outcome::Abort),
            cell("upstream", "boot", Outcome::Clean, Outcome::Clean),
            cell("prefix", "boot", Outcome::Error, Outcome::Clean),
        ];
        let (matched, mismatched, errors, aborting, clean) = summarize_counts(&cells);
        let (suspects, suspect_cells) = suspect_counts(&cells);
        RunReport {
            cells,
            not_run: vec![],
            summary: Summary {
                cells: 4,
                matched,
                mismatched,
                errors,
                aborting,
                clean,
                suspects,
                suspect_cells,
                flaky: vec![],
                wall_s: 3.25,
                kernels: vec!["upstream".into(), "prefix".into()],
                tests: vec!["boot".into(), "adc-unbind".into()],
                repeat: 1,
                jobs: 2,
                on_abort: "continue".into(),
                temp_c: 42.0,
                adc: [1; 8],
                dtb: "out/matrix/virt-rzg3s.dtb".into(),
                interrupted: false,
                interrupted_by: None,
                not_run: 0,
                shard: None,
                merged_from: vec![],
            },
        }
    }

    /// Gives `cell` suspects: a root read (x2, clock stopped with MSTOP clear) and a write
    /// while the reset is held (x1).
    pub(crate) fn add_suspects(cell: &mut CellReport) {
        let mut root = abort(true, 2);
        root.gated_by = vec!["ADC pclk off: CLK_MON 0x728 bit 1 = 0".into()];
        let mut then = abort(false, 1);
        then.access = "write".into();
        then.gated_by = vec!["ADC reset held: RST_MON 0xA28 bit 1 = 1".into()];
        then.gated_since = None;
        cell.suspects = vec![root, then];
        cell.suspect_events = 3;
    }

    /// The sample run with suspects in a clean cell and in the aborting one.
    fn report_with_suspects() -> RunReport {
        let mut report = sample_report();
        for name in ["upstream/adc-unbind", "prefix/adc-unbind"] {
            let cell = report.cells.iter_mut().find(|c| c.name() == name).unwrap();
            add_suspects(cell);
        }
        (report.summary.suspects, report.summary.suspect_cells) = suspect_counts(&report.cells);
        report
    }

    #[test]
    fn suspects_are_in_the_json_beside_the_aborts() {
        let report = report_with_suspects();
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        let clean = &json["cells"][0];
        assert_eq!(clean["outcome"], "clean");
        assert_eq!(clean["aborts"].as_array().unwrap().len(), 0);
        assert_eq!(clean["suspects"].as_array().unwrap().len(), 2);
        assert_eq!(clean["suspects"][0]["root"], true);
        assert_eq!(clean["suspects"][0]["register"], "ADM0");
        assert_eq!(clean["suspect_events"], 3);
        let aborting = &json["cells"][1];
        assert_eq!(aborting["aborts"].as_array().unwrap().len(), 2);
        assert_eq!(aborting["suspects"].as_array().unwrap().len(), 2);
        // Cells without suspects still carry the (empty) list.
        assert_eq!(json["cells"][2]["suspects"].as_array().unwrap().len(), 0);
        assert_eq!(json["summary"]["suspects"], 6);
        assert_eq!(json["summary"]["suspect_cells"], 2);
        // Suspects change no count of the outcomes.
        assert_eq!(json["summary"]["clean"], 2);
        assert_eq!(json["summary"]["aborting"], 1);
    }

    #[test]
    fn the_table_counts_suspects_beside_the_outcome() {
        let table = render_table(&report_with_suspects());
        let adc_unbind = table.lines().nth(2).unwrap();
        assert!(
            adc_unbind.contains("clean (3 suspects)") && adc_unbind.ends_with("abort (3 suspects)"),
            "{table}"
        );
        assert!(
            table.contains("; 6 suspect events in 2 cells (not aborts; see report.md);"),
            "{table}"
        );
        assert!(!render_table(&sample_report()).contains("suspect"));
        assert_eq!(suspects_suffix(1), " (1 suspect)");
        assert_eq!(suspects_suffix(0), "");
    }

    #[test]
    fn markdown_has_a_suspects_section_apart_from_the_aborts() {
        let md = render_markdown(&report_with_suspects(), "");
        assert!(
            md.contains("| `adc-unbind` | clean (3 suspects) | **abort** (3 suspects) |"),
            "{md}"
        );
        let (before, suspects) = md.split_once("## Suspects").expect("a suspects section");
        // The aborts section shows aborts only.
        let aborts = before.split_once("## Aborts").expect("an aborts section").1;
        assert!(!aborts.contains("suspect"), "{aborts}");
        assert!(aborts.contains("### prefix / adc-unbind (abort, expected abort)"));
        assert!(suspects.contains("reported, never an abort"), "{suspects}");
        let clean = suspects
            .split("### upstream / adc-unbind (clean, 3 suspect events)")
            .nth(1)
            .expect("the clean cell's suspects");
        let clean = clean.split("### ").next().unwrap();
        assert!(
            clean.contains("Root suspect (x2): **adc ADM0** at SoC 0x10058000 (guest 0x7e058000)"),
            "{clean}"
        );
        assert!(clean.contains("- gated by: ADC pclk off: CLK_MON 0x728 bit 1 = 0"));
        assert!(clean.contains("Call chain (innermost first, 12 of 15, unwind: depth-limit)"));
        assert!(
            clean.contains("| 1 | adc | ADM0 | write | `rzg2l_adc_pm_runtime_suspend+0x14` | 1 |"),
            "{clean}"
        );
        assert!(suspects.contains("### prefix / adc-unbind (abort, 3 suspect events)"));
        assert!(!render_markdown(&sample_report(), "").contains("Suspects"));
    }

    #[test]
    fn junit_shows_suspects_without_failing_the_cell() {
        let xml = render_junit(&report_with_suspects());
        // The same single failure as without suspects.
        assert_eq!(xml.matches("<failure").count(), 1);
        assert!(
            xml.contains(
                "<testcase name=\"adc-unbind\" classname=\"upstream\" time=\"1.500\">\n      \
                 <properties><property name=\"suspects\" value=\"3\"/></properties>\n      \
                 <system-out>root suspect adc ADM0 read at rzg2l_adc_pm_runtime_suspend+0x14 \
                 (step 1) (x2); gated by: ADC pclk off: CLK_MON 0x728 bit 1 = 0\n\
                 suspect adc ADM0 write at rzg2l_adc_pm_runtime_suspend+0x14 (step 1) (x1); \
                 gated by: ADC reset held: RST_MON 0xA28 bit 1 = 1\n</system-out>\n    \
                 </testcase>"
            ),
            "{xml}"
        );
        let mut reader = quick_xml::Reader::from_str(&xml);
        loop {
            match reader.read_event().expect("well-formed XML") {
                quick_xml::events::Event::Eof => break,
                _ => continue,
            }
        }
    }

    #[test]
    fn json_has_the_contract_fields() {
        let report = sample_report();
        let json: serde_json::Value = serde_json::to_value(&report).unwrap();
        let cell = &json["cells"][1];
        for key in [
            "kernel",
            "test",
            "outcome",
            "expected",
            "ok",
            "aborts",
            "duration_s",
        ] {
            assert!(cell.get(key).is_some(), "missing {key}");
        }
        assert_eq!(cell["outcome"], "abort");
        assert_eq!(cell["expected"], "abort");
        let abort = &cell["aborts"][0];
        for key in [
            "device",
            "register",
            "soc_addr",
            "access",
            "value",
            "pc",
            "symbol",
            "call_chain",
            "gated_by",
            "step",
            "gated_since",
            "count",
        ] {
            assert!(abort.get(key).is_some(), "missing abort.{key}");
        }
        assert_eq!(abort["soc_addr"], 0x1005_8000u64);
        assert_eq!(abort["step"]["n"], 1);
        assert_eq!(abort["root"], true);
        assert_eq!(
            abort["gated_since"]["symbol"],
            "rzg2l_mod_clock_endisable+0x64"
        );
        for key in ["cells", "matched", "mismatched", "errors", "wall_s"] {
            assert!(json["summary"].get(key).is_some(), "missing summary.{key}");
        }
        assert_eq!(json["summary"]["mismatched"], 1);
        assert_eq!(json["cells"][3]["console_tail"][1], "last");
    }

    #[test]
    fn table_marks_mismatches() {
        let table = render_table(&sample_report());
        let lines: Vec<&str> = table.lines().collect();
        assert!(
            lines[0].starts_with("test")
                && lines[0].contains("upstream")
                && lines[0].contains("prefix")
        );
        assert!(
            lines[1].starts_with("boot") && lines[1].contains("*error (expected clean)"),
            "{table}"
        );
        assert!(
            lines[2].starts_with("adc-unbind") && lines[2].ends_with("abort"),
            "{table}"
        );
        assert!(table.contains("3/4 cells as expected"));
    }

    #[test]
    fn markdown_has_table_root_abort_and_errors() {
        let md = render_markdown(&sample_report(), "");
        assert!(md.contains("| test | upstream | prefix |"), "{md}");
        assert!(
            md.contains("| `boot` | clean | **error** ✗ (expected clean) |"),
            "{md}"
        );
        assert!(md.contains("| `adc-unbind` | clean | **abort** |"), "{md}");
        assert!(md.contains("### prefix / adc-unbind (abort, expected abort)"));
        assert!(
            md.contains("Root abort (x2): **adc ADM0** at SoC 0x10058000 (guest 0x7e058000)"),
            "{md}"
        );
        assert!(md.contains("- access: read of 4 bytes, value 0xffffffff"));
        assert!(md.contains("- step 1: unbind <adc> & check"));
        assert!(md.contains("- gated since: CLK_ON_ADC access at `rzg2l_mod_clock_endisable+0x64` in step 1 [event 2]"), "{md}");
        assert!(
            md.contains("  (called from `dev_pm_domain_detach+0x30`)"),
            "{md}"
        );
        assert!(md.contains("Call chain (innermost first, 12 of 15, unwind: depth-limit)"));
        assert!(md.contains("frame11+0x4") && !md.contains("frame12+0x4"));
        assert!(
            md.contains("| 3 | adc | ADM0 | write | `rzg2l_adc_pm_runtime_suspend+0x14` | 1 |"),
            "{md}"
        );
        assert!(md.contains("## Errors") && md.contains("timeout after 60 s <killed>"));
    }

    #[test]
    fn markdown_says_who_gave_user_space_the_window() {
        let mut report = sample_report();
        let cell = report
            .cells
            .iter_mut()
            .find(|c| c.name() == "prefix/adc-unbind")
            .unwrap();
        cell.user_space_mapped = Some(UserSpaceMappedReport {
            seq: 7,
            symbol: "remap_pfn_range_internal+0x28c".into(),
            call_chain: vec![
                "remap_pfn_range_complete+0x2c".into(),
                "__arm64_sys_mmap+0x28".into(),
            ],
        });
        let md = render_markdown(&report, "");
        assert!(
            md.contains(
                "User space can reach the window from event 7: the page-table entry stored at \
                 `remap_pfn_range_internal+0x28c` (called from \
                 `remap_pfn_range_complete+0x2c <- __arm64_sys_mmap+0x28`)."
            ),
            "{md}"
        );
    }

    #[test]
    fn markdown_shows_the_guests_serror_report_beside_the_abort() {
        let mut report = sample_report();
        report.summary.on_abort = "serror".into();
        let console = crate::console::ConsoleReport::parse(crate::testdata::SERROR_CONSOLE);
        let cell = &mut report.cells[1];
        cell.guest_trace = console.guest_trace;
        cell.guest_trace_agrees = Some(true);
        let md = render_markdown(&report, "");
        let block = md
            .split("### prefix / adc-unbind")
            .nth(1)
            .expect("the aborting cell");
        assert!(block.contains("Root abort (x2): **adc ADM0**"), "{block}");
        assert!(
            block.contains("The guest kernel's own report (console) (its `pc` is the root abort's instruction: agrees with our record):"),
            "{block}"
        );
        assert!(
            block.contains(
                "~~~text\nSError Interrupt on CPU0, code 0x00000000be000011 -- SError\n\
             pc : rzg3s_thermal_change_mode+0x48/0x114\n\
             lr : rzg3s_thermal_change_mode+0x38/0x114\n\
             Kernel panic - not syncing: Asynchronous SError Interrupt\n\
             Call trace:\n show_stack+0x14/0x1c (C)\n"
            ),
            "{block}"
        );
        assert!(block.contains(" rzg3s_thermal_change_mode+0x48/0x114 (P)\n devm_thermal_of_zone_release+0x18/0x2c\n") || block.contains(" rzg3s_thermal_change_mode+0x48/0x114 (P)\n thermal_zone_device_set_mode+0x44/0x7c\n"), "{block}");

        // A disagreement is spelled out; a missing report is said.
        let cell = &mut report.cells[1];
        cell.guest_trace_agrees = Some(false);
        cell.guest_trace_reason = Some("the guest's pc is in a | b".into());
        assert!(render_markdown(&report, "")
            .contains("— **disagrees with our record**: the guest's pc is in a \\| b:"));
        report.cells[1].guest_trace = None;
        assert!(render_markdown(&report, "")
            .contains("The guest printed no SError report on its console"));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["cells"][1]["guest_trace_agrees"], false);
        assert!(json["cells"][0].get("guest_trace_agrees").is_none());
    }

    #[test]
    fn junit_parses_back() {
        use quick_xml::events::Event;
        let xml = render_junit(&sample_report());
        let mut reader = quick_xml::Reader::from_str(&xml);
        let mut suites = Vec::new();
        let mut cases = Vec::new();
        let mut failures = Vec::new();
        let mut texts = String::new();
        loop {
            match reader.read_event().expect("well-formed XML") {
                Event::Eof => break,
                Event::Start(e) | Event::Empty(e) => {
                    let attr = |name: &str| {
                        e.attributes()
                            .map(|a| a.unwrap())
                            .find(|a| a.key.as_ref() == name.as_bytes())
                            .map(|a| a.unescape_value().unwrap().into_owned())
                    };
                    match e.name().as_ref() {
                        b"testsuite" => {
                            suites.push((attr("name").unwrap(), attr("failures").unwrap()))
                        }
                        b"testcase" => {
                            cases.push((attr("classname").unwrap(), attr("name").unwrap()))
                        }
                        b"failure" => failures.push(attr("message").unwrap()),
                        _ => {}
                    }
                }
                Event::Text(t) => texts.push_str(&t.unescape().unwrap()),
                _ => {}
            }
        }
        assert_eq!(
            suites,
            vec![
                ("upstream".to_string(), "0".to_string()),
                ("prefix".to_string(), "1".to_string())
            ]
        );
        assert_eq!(cases.len(), 4);
        assert!(cases.contains(&("prefix".to_string(), "boot".to_string())));
        assert_eq!(failures, vec!["outcome error, expected clean"]);
        assert!(
            texts.contains("error: timeout after 60 s <killed>"),
            "{texts}"
        );
        assert!(
            texts.contains("line with \u{fffd}[0m escape & <tag>"),
            "{texts}"
        );
    }

    /// The sample run, interrupted by SIGTERM after its first two cells.
    pub(crate) fn interrupted_report() -> RunReport {
        let mut report = sample_report();
        let unfinished = report.cells.split_off(2);
        report.not_run = unfinished
            .iter()
            .map(|c| NotRunCell {
                kernel: c.kernel.clone(),
                test: c.test.clone(),
                expected: c.expected,
            })
            .collect();
        report.summary.interrupted = true;
        report.summary.interrupted_by = Some("SIGTERM".into());
        report.recount();
        report
    }

    #[test]
    fn an_interrupted_run_says_so_everywhere() {
        let report = interrupted_report();
        assert!(!report.all_ok(), "an interrupted run never passes");
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["summary"]["interrupted"], true);
        assert_eq!(json["summary"]["interrupted_by"], "SIGTERM");
        assert_eq!(json["summary"]["not_run"], 2);
        assert_eq!(json["not_run"][0]["kernel"], "upstream");
        assert_eq!(json["not_run"][0]["test"], "boot");
        assert_eq!(json["cells"].as_array().unwrap().len(), 2);

        let table = render_table(&report);
        let boot = table.lines().nth(1).unwrap();
        assert!(
            boot.starts_with("boot") && boot.contains("not run"),
            "{table}"
        );
        assert!(
            table.contains(
                "INTERRUPTED by SIGTERM: 2 cells finished, 2 cells did not run (upstream/boot, prefix/boot)"
            ),
            "{table}"
        );
        let md = render_markdown(&report, "");
        assert!(md.contains("| `boot` | not run | not run |"), "{md}");
        assert!(md.contains("**INTERRUPTED by SIGTERM"), "{md}");
        let xml = render_junit(&report);
        assert_eq!(
            xml.matches("<skipped message=\"not run: the run was interrupted by SIGTERM\"/>")
                .count(),
            2,
            "{xml}"
        );
        assert!(
            xml.contains("<testsuites name=\"rzgate\" tests=\"4\""),
            "{xml}"
        );
        // A report without interruption has no such line and an empty list.
        let plain = sample_report();
        assert!(interrupted_line(&plain).is_none());
        assert_eq!(
            serde_json::to_value(&plain).unwrap()["not_run"],
            serde_json::json!([])
        );
    }

    #[test]
    fn reports_read_back_as_written() {
        for report in [report_with_suspects(), interrupted_report()] {
            let json = serde_json::to_string_pretty(&report).unwrap();
            let back: RunReport = parse_json(&json).unwrap();
            assert_eq!(back, report);
        }
    }

    #[test]
    fn a_malformed_report_is_refused_naming_the_field() {
        let mut json = serde_json::to_value(sample_report()).unwrap();
        json["cells"][1]["outcome"] = "pass".into();
        let err = parse_json::<RunReport>(&json.to_string())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("cells[1].outcome: unknown variant `pass`"),
            "{err}"
        );

        let mut json = serde_json::to_value(sample_report()).unwrap();
        json["cells"][2].as_object_mut().unwrap().remove("kernel");
        let err = parse_json::<RunReport>(&json.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("cells[2]: missing field `kernel`"), "{err}");

        let mut json = serde_json::to_value(sample_report()).unwrap();
        json.as_object_mut().unwrap().remove("summary");
        let err = parse_json::<RunReport>(&json.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("missing field `summary`"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.json");
        std::fs::write(&path, "{\"cells\": [}").unwrap();
        let err = format!("{:#}", RunReport::load(&path).unwrap_err());
        assert!(err.contains("report.json is not a runner report"), "{err}");
        let err = format!(
            "{:#}",
            RunReport::load(&dir.path().join("none.json")).unwrap_err()
        );
        assert!(
            err.contains("cannot read") && err.contains("none.json"),
            "{err}"
        );
    }

    #[test]
    fn shards_parse_and_slice_round_robin() {
        let shard: Shard = "2/3".parse().unwrap();
        assert_eq!(shard, Shard { index: 2, total: 3 });
        assert_eq!(shard.to_string(), "2/3");
        let owned: Vec<usize> = (0..8).filter(|&k| shard.has(k)).collect();
        assert_eq!(owned, [1, 4, 7]);
        // Every cell is in exactly one shard.
        for total in 1..6u32 {
            for k in 0..20 {
                let owners = (1..=total)
                    .filter(|&index| Shard { index, total }.has(k))
                    .count();
                assert_eq!(owners, 1, "cell {k} of {total} shards");
            }
        }
        for bad in ["0/3", "4/3", "1/0", "3", "a/3", "1/b", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad} parsed");
        }
        assert!("4/3".parse::<Shard>().unwrap_err().contains("1..3"));
    }
}
