//! `rzgate-runner replay`: the real bugs on record (guest-tests/replays.yaml), each run under
//! `on_abort=serror` on the kernel with its fix reverted and on its twin with the fix, and
//! judged on what the board showed. A gated access (`kind: abort`): the first abort's
//! function, device, register and access, the exception class the guest kernel reports (a
//! read: synchronous external abort; a write: SError) with its own trace agreeing. A bug of
//! the driver's own (`kind: oops`): no gated access, the guest kernel's oops in the function
//! at the address the fix names. Either way the twin is clean. Writes replay.md and
//! replay.json.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::ReplayArgs;
use crate::console::{OOPS, SERROR, SYNC_EXTERNAL_ABORT};
use crate::fsutil::write_atomic;
use crate::matrix::{Matrix, OnAbort};
use crate::outcome::Outcome;
use crate::report::CellReport;
use crate::run::{execute_cells, load_kernel, prepare_inputs, Settings};

/// One entry of the replays file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReplay {
    id: String,
    driver: String,
    fix: String,
    board: String,
    variant: Option<String>,
    twin: Option<String>,
    test: Option<String>,
    device: Option<String>,
    register: Option<String>,
    access: Option<String>,
    function: Option<String>,
    kind: Option<String>,
    address: Option<String>,
    pending: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    replays: Vec<RawReplay>,
}

/// What the bug made the board do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A register access to a gated module: rzgate's abort.
    Abort,
    /// The driver's own fault at a bad kernel address (a NULL pointer): the guest's oops,
    /// with no gated access.
    Oops,
}

/// Where the board aborted, and on which kernels to look for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub kind: Kind,
    pub variant: String,
    pub twin: String,
    pub test: String,
    pub device: String,
    pub register: String,
    pub access: String,
    pub function: String,
    /// `kind: oops`: the virtual address the guest kernel faults at (for a NULL base, the
    /// register's offset).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<u64>,
}

impl Target {
    /// The exception the board takes: a read's bus error is synchronous, a write's is
    /// posted and comes back as an SError; the driver's own bad address is an oops.
    pub fn exception(&self) -> &'static str {
        match self.kind {
            Kind::Oops => OOPS,
            Kind::Abort if self.access == "read" => SYNC_EXTERNAL_ABORT,
            Kind::Abort => SERROR,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Replay {
    pub id: String,
    pub driver: String,
    pub fix: String,
    pub board: String,
    /// `None` when pending.
    pub target: Option<Target>,
    pub pending: Option<String>,
}

/// Reads and checks the replays file against the matrix (its tests and kernels).
pub fn load(path: &Path, matrix: &Matrix) -> Result<Vec<Replay>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the replays file {}", path.display()))?;
    parse(&text, matrix).with_context(|| format!("bad replays file {}", path.display()))
}

fn parse(text: &str, matrix: &Matrix) -> Result<Vec<Replay>> {
    let raw: RawFile = serde_yaml::from_str(text)?;
    let mut seen = HashSet::new();
    let mut replays = Vec::new();
    for (index, raw) in raw.replays.into_iter().enumerate() {
        let at = format!("replays[{index}] ({})", raw.id);
        if !seen.insert(raw.id.clone()) {
            bail!("{at}: the id is used twice");
        }
        let target_keys = [
            ("variant", &raw.variant),
            ("twin", &raw.twin),
            ("test", &raw.test),
            ("device", &raw.device),
            ("register", &raw.register),
            ("access", &raw.access),
            ("function", &raw.function),
        ];
        let target = if raw.pending.is_some() {
            let more = [("kind", &raw.kind), ("address", &raw.address)];
            if let Some((key, _)) = target_keys
                .iter()
                .chain(&more)
                .find(|(_, value)| value.is_some())
            {
                bail!("{at}.{key}: a pending replay has no target (remove `pending:` to run it)");
            }
            None
        } else {
            let value = |key: &str, value: &Option<String>| -> Result<String> {
                value
                    .clone()
                    .filter(|v| !v.trim().is_empty())
                    .with_context(|| format!("{at}.{key}: missing (or give `pending: <why>`)"))
            };
            let [variant, twin, test, device, register, access, function] =
                target_keys.map(|(key, v)| value(key, v));
            let kind = match raw.kind.as_deref() {
                None | Some("abort") => Kind::Abort,
                Some("oops") => Kind::Oops,
                Some(other) => bail!("{at}.kind: expected abort or oops, got `{other}`"),
            };
            let address = match (kind, raw.address.as_deref()) {
                (Kind::Oops, None) => {
                    bail!("{at}.address: missing (an oops replay names the address it faults at)")
                }
                (Kind::Oops, Some(text)) => Some(
                    text.strip_prefix("0x")
                        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
                        .with_context(|| {
                            format!("{at}.address: expected a 0x-hex address, got `{text}`")
                        })?,
                ),
                (Kind::Abort, Some(_)) => {
                    bail!("{at}.address: only an oops replay has one (`kind: oops`)")
                }
                (Kind::Abort, None) => None,
            };
            let target = Target {
                kind,
                address,
                variant: variant?,
                twin: twin?,
                test: test?,
                device: device?,
                register: register?,
                access: access?,
                function: function?,
            };
            if target.access != "read" && target.access != "write" {
                bail!(
                    "{at}.access: expected read or write, got `{}`",
                    target.access
                );
            }
            if matrix.test(&target.test).is_none() {
                bail!("{at}.test: `{}` is not a test of the matrix", target.test);
            }
            Some(target)
        };
        replays.push(Replay {
            id: raw.id,
            driver: raw.driver,
            fix: raw.fix.trim().to_string(),
            board: raw.board.trim().to_string(),
            target,
            pending: raw.pending.map(|p| p.trim().to_string()),
        });
    }
    if replays.is_empty() {
        bail!("`replays` is empty");
    }
    Ok(replays)
}

/// A replay's verdict.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    pub id: String,
    /// "reproduced", "not reproduced" or "pending".
    pub status: String,
    /// Why not (each failed condition), or why pending.
    pub reasons: Vec<String>,
    /// What rzgate reported on the variant: `function`, `device register access`, exception.
    pub reported: Option<String>,
    pub exception: Option<String>,
    /// The variant cell's duration: the time to reproduce.
    pub seconds: Option<f64>,
    pub twin_outcome: Option<String>,
}

/// Judges one replay from its two cells.
pub fn judge(replay: &Replay, variant: Option<&CellReport>, twin: Option<&CellReport>) -> Verdict {
    let mut verdict = Verdict {
        id: replay.id.clone(),
        status: "pending".into(),
        reasons: Vec::new(),
        reported: None,
        exception: None,
        seconds: None,
        twin_outcome: None,
    };
    let Some(target) = &replay.target else {
        verdict.reasons = replay.pending.iter().cloned().collect();
        return verdict;
    };
    let mut reasons = Vec::new();
    match variant {
        None => reasons.push(format!("{}/{} did not run", target.variant, target.test)),
        Some(cell) if target.kind == Kind::Oops => {
            verdict.seconds = Some(cell.duration_s);
            judge_oops(target, cell, &mut verdict, &mut reasons);
        }
        Some(cell) => {
            verdict.seconds = Some(cell.duration_s);
            let root = cell.aborts.iter().find(|abort| abort.root);
            match root {
                None => reasons.push(format!(
                    "{}/{} had no abort ({})",
                    target.variant,
                    target.test,
                    cell.error.as_deref().unwrap_or(cell.outcome.as_str())
                )),
                Some(root) => {
                    let function = root.function.as_deref().unwrap_or(&root.symbol);
                    verdict.reported = Some(format!(
                        "{function}: {} {} {}",
                        root.device, root.register, root.access
                    ));
                    if function != target.function
                        || root.device != target.device
                        || root.register != target.register
                        || root.access != target.access
                    {
                        reasons.push(format!(
                            "the first abort is {function}: {} {} {}, the board's was {}: {} {} {}",
                            root.device,
                            root.register,
                            root.access,
                            target.function,
                            target.device,
                            target.register,
                            target.access
                        ));
                    }
                }
            }
            verdict.exception = cell.guest_trace.as_ref().map(|t| t.exception.clone());
            match &cell.guest_trace {
                None => reasons.push("the guest kernel reported no exception".into()),
                Some(trace) if trace.exception != target.exception() => reasons.push(format!(
                    "the guest reported `{}`, the board takes a {} on a {}",
                    trace.exception_line,
                    target.exception(),
                    target.access
                )),
                Some(_) => {}
            }
            if cell.guest_trace_agrees != Some(true) {
                reasons.push(format!(
                    "the guest's trace does not agree with the plugin's record: {}",
                    cell.guest_trace_reason
                        .as_deref()
                        .unwrap_or("no comparison")
                ));
            }
        }
    }
    match twin {
        None => reasons.push(format!("{}/{} did not run", target.twin, target.test)),
        Some(cell) => {
            verdict.twin_outcome = Some(cell.outcome.as_str().to_string());
            if cell.outcome != Outcome::Clean {
                reasons.push(format!(
                    "the twin {}/{} is {}, not clean",
                    target.twin,
                    target.test,
                    cell.outcome.as_str()
                ));
            }
        }
    }
    verdict.status = if reasons.is_empty() {
        "reproduced"
    } else {
        "not reproduced"
    }
    .into();
    verdict.reasons = reasons;
    verdict
}

/// The variant of an oops replay: no gated access, and the guest kernel's own fault in the
/// fix's function at its address.
fn judge_oops(
    target: &Target,
    cell: &CellReport,
    verdict: &mut Verdict,
    reasons: &mut Vec<String>,
) {
    if let Some(root) = cell.aborts.iter().find(|abort| abort.root) {
        reasons.push(format!(
            "a gated access came first ({}: {} {} {}); the fix's bug is the driver's own fault",
            root.function.as_deref().unwrap_or(&root.symbol),
            root.device,
            root.register,
            root.access
        ));
    }
    let Some(trace) = &cell.guest_trace else {
        reasons.push(format!(
            "the guest kernel reported no oops ({})",
            cell.error.as_deref().unwrap_or(cell.outcome.as_str())
        ));
        return;
    };
    verdict.exception = Some(trace.exception.clone());
    if trace.exception != OOPS {
        reasons.push(format!(
            "the guest reported `{}`, the fix's bug is an oops",
            trace.exception_line
        ));
        return;
    }
    let function = trace.pc_function().unwrap_or("no `pc :` line");
    let hex = |a: Option<u64>| a.map_or("no address".to_string(), |a| format!("{a:#x}"));
    let address = hex(trace.fault_address);
    let matches = trace.fault_address == target.address;
    verdict.reported = Some(if matches {
        format!(
            "{function}: {} {} {} through a NULL base (address {address})",
            target.device, target.register, target.access
        )
    } else {
        format!("{function}: address {address}")
    });
    if function != target.function || !matches {
        reasons.push(format!(
            "the guest's oops is in {function} at {address}, the fix's in {} at {}",
            target.function,
            hex(target.address)
        ));
    }
}

pub fn command(args: &ReplayArgs) -> Result<u8> {
    let matrix = Matrix::load(&args.cells.matrix)?;
    let replays = load(&args.replays, &matrix)?;
    let mut settings = Settings::resolve(&args.cells, args.jobs, &matrix)?;
    if settings.on_abort != OnAbort::Serror && args.cells.on_abort.is_some() {
        bail!("--on-abort: a replay runs under serror (what the board shows), not another policy");
    }
    settings.on_abort = OnAbort::Serror;

    // The cells: each (kernel, test) once, in the file's order.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for target in replays.iter().filter_map(|r| r.target.as_ref()) {
        for kernel in [&target.variant, &target.twin] {
            let pair = (kernel.clone(), target.test.clone());
            if !pairs.contains(&pair) {
                pairs.push(pair);
            }
        }
    }
    let mut builds = Vec::new();
    for kernel in pairs.iter().map(|(k, _)| k) {
        if !builds
            .iter()
            .any(|(b, _): &(crate::inputs::KernelBuild, _)| &b.name == kernel)
        {
            builds.push(load_kernel(kernel, &args.kernels_dir.join(kernel))?);
        }
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let inputs = prepare_inputs(&args.cells, &args.out)?;
    let specs: Vec<_> = pairs
        .iter()
        .map(|(kernel, test)| {
            let (build, symbols) = builds.iter().find(|(b, _)| &b.name == kernel).unwrap();
            let spec = matrix.test(test).expect("checked at load");
            let dir = args.out.join("cells").join(kernel).join(test);
            let expected = matrix.expectation(test, kernel).cloned();
            settings.cell(&matrix, build, symbols, spec, expected, dir)
        })
        .collect();
    inputs.interrupt.on_signals()?;
    let reports: Vec<Option<CellReport>> = execute_cells(&inputs, &specs, settings.jobs);
    let cell = |kernel: &str, test: &str| {
        reports
            .iter()
            .flatten()
            .find(|c| c.kernel == kernel && c.test == test)
    };
    let verdicts: Vec<Verdict> = replays
        .iter()
        .map(|replay| match &replay.target {
            Some(t) => judge(replay, cell(&t.variant, &t.test), cell(&t.twin, &t.test)),
            None => judge(replay, None, None),
        })
        .collect();

    let json = serde_json::json!({
        "replays": replays,
        "verdicts": verdicts,
        "cells": reports.iter().flatten().collect::<Vec<_>>(),
    });
    write_atomic(
        &args.out.join("replay.json"),
        serde_json::to_string_pretty(&json)?.as_bytes(),
    )?;
    let markdown = render(&replays, &verdicts);
    write_atomic(&args.out.join("replay.md"), markdown.as_bytes())?;
    print!("{}", render_summary(&verdicts));
    println!("report: {}", args.out.join("replay.md").display());
    if let Some(signal) = inputs.interrupt.signal() {
        return Ok(128 + signal as u8);
    }
    Ok(if verdicts.iter().any(|v| v.status == "not reproduced") {
        1
    } else {
        0
    })
}

/// One line per replay, for the terminal.
fn render_summary(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let detail = match v.status.as_str() {
            "reproduced" => format!(
                "{} ({}) in {:.1} s; twin clean",
                v.reported.as_deref().unwrap_or("?"),
                v.exception.as_deref().unwrap_or("?"),
                v.seconds.unwrap_or(0.0)
            ),
            _ => v.reasons.join("; "),
        };
        let _ = writeln!(out, "{:<32} {:<15} {detail}", v.id, v.status);
    }
    out
}

/// The README's table "real bugs rzgate catches", from a run.
fn render(replays: &[Replay], verdicts: &[Verdict]) -> String {
    let mut out = String::from(
        "# Real bugs rzgate catches\n\n\
         Each replay runs under `on_abort=serror` on the kernel with the fix reverted and on \
         its twin with the fix (guest-tests/replays.yaml).\n\n\
         | replay | driver | fix | the board printed | rzgate reports | twin | time | status |\n\
         |---|---|---|---|---|---|---|---|\n",
    );
    for (replay, verdict) in replays.iter().zip(verdicts) {
        let reported = match (&verdict.reported, &verdict.exception) {
            (Some(r), Some(e)) => format!("{r}, {e}"),
            (Some(r), None) => r.clone(),
            _ => "-".into(),
        };
        let status = match verdict.status.as_str() {
            "reproduced" => "reproduced".to_string(),
            other => format!("{other}: {}", verdict.reasons.join("; ")),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            replay.id,
            replay.driver,
            replay.fix.replace('|', "/"),
            replay.board.replace('|', "/"),
            reported,
            verdict.twin_outcome.as_deref().unwrap_or("-"),
            verdict
                .seconds
                .map_or("-".to_string(), |s| format!("{s:.1} s")),
            status.replace('|', "/")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MATRIX: &str = "\
kernels: [upstream, prefix]
tests:
  tsu-unbind:
expectations:
  tsu-unbind: {upstream: clean, prefix: abort}
";

    fn matrix() -> Matrix {
        Matrix::parse(MATRIX).unwrap()
    }

    const TSU: &str = "\
replays:
  - id: tsu
    driver: rzg3s_thermal
    fix: abc
    board: SError
    variant: prefix
    twin: upstream
    test: tsu-unbind
    device: tsu
    register: TSU_SM
    access: write
    function: rzg3s_thermal_change_mode
  - id: usb
    driver: renesas_usbhs
    fix: eb9ac779830b
    board: synchronous external abort
    pending: no USB model
";

    const DMAC: &str = "\
replays:
  - id: dmac
    driver: rz-dmac
    fix: Move interrupt request after everything is set up
    board: the IRQ handler ran before the setup
    kind: oops
    variant: prefix
    twin: upstream
    test: tsu-unbind
    device: dmac
    register: CHSTAT
    access: read
    function: rz_dmac_irq_handler
    address: \"0x24\"
";

    fn oops_cell(kernel: &str, function: &str, address: u64) -> CellReport {
        let mut report = cell(kernel, Outcome::Error, None);
        report.error = Some("the guest kernel panicked".into());
        report.guest_trace = Some(crate::console::GuestTrace {
            exception: OOPS.into(),
            exception_line: format!(
                "Unable to handle kernel NULL pointer dereference at virtual address {address:016x}"
            ),
            fault_address: Some(address),
            pc: Some(format!("{function}+0x28/0xac")),
            ..Default::default()
        });
        report
    }

    #[test]
    fn an_oops_replay_names_its_address_and_reproduces_only_as_the_guests_own_fault() {
        let replay = &parse(DMAC, &matrix()).unwrap()[0];
        let target = replay.target.as_ref().unwrap();
        assert_eq!((target.kind, target.address), (Kind::Oops, Some(0x24)));
        assert_eq!(target.exception(), OOPS);
        let twin = cell("upstream", Outcome::Clean, None);

        let v = judge(
            replay,
            Some(&oops_cell("prefix", "rz_dmac_irq_handler", 0x24)),
            Some(&twin),
        );
        assert_eq!(v.status, "reproduced", "{:?}", v.reasons);
        assert_eq!(
            v.reported.as_deref(),
            Some("rz_dmac_irq_handler: dmac CHSTAT read through a NULL base (address 0x24)")
        );
        assert_eq!(v.exception.as_deref(), Some(OOPS));

        let v = judge(
            replay,
            Some(&oops_cell("prefix", "rz_dmac_irq_handler", 0x28)),
            Some(&twin),
        );
        assert!(
            v.reasons[0].contains("at 0x28, the fix's in rz_dmac_irq_handler at 0x24"),
            "{v:?}"
        );
        let v = judge(
            replay,
            Some(&oops_cell("prefix", "other", 0x24)),
            Some(&twin),
        );
        assert!(v.reasons[0].contains("oops is in other"), "{v:?}");

        // A gated access first is not this bug, even with the same oops after it.
        let mut gated = oops_cell("prefix", "rz_dmac_irq_handler", 0x24);
        gated.aborts = cell("prefix", Outcome::Abort, Some(("f", SERROR))).aborts;
        let v = judge(replay, Some(&gated), Some(&twin));
        assert!(v.reasons[0].contains("a gated access came first"), "{v:?}");
        // No oops at all (the handler never ran).
        let v = judge(
            replay,
            Some(&cell("prefix", Outcome::Clean, None)),
            Some(&twin),
        );
        assert!(v.reasons[0].contains("reported no oops"), "{v:?}");
        // An SError in its place.
        let v = judge(
            replay,
            Some(&cell(
                "prefix",
                Outcome::Abort,
                Some(("rz_dmac_irq_handler", SERROR)),
            )),
            Some(&twin),
        );
        assert!(
            v.reasons
                .iter()
                .any(|r| r.contains("the fix's bug is an oops")),
            "{v:?}"
        );

        for (text, expected) in [
            (
                DMAC.replace("    address: \"0x24\"\n", ""),
                "dmac).address: missing",
            ),
            (
                DMAC.replace("\"0x24\"", "\"36\""),
                "expected a 0x-hex address, got `36`",
            ),
            (
                DMAC.replace("kind: oops", "kind: crash"),
                "expected abort or oops, got `crash`",
            ),
            (
                DMAC.replace("kind: oops", "kind: abort"),
                "only an oops replay has one",
            ),
        ] {
            let error = format!("{:#}", parse(&text, &matrix()).unwrap_err());
            assert!(error.contains(expected), "{error}");
        }
    }

    #[test]
    fn the_repositorys_replays_file_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let matrix = Matrix::load(&dir.join("matrix.yaml")).unwrap();
        let replays = load(&dir.join("replays.yaml"), &matrix).unwrap();
        let kinds: Vec<Kind> = replays
            .iter()
            .filter_map(|r| r.target.as_ref().map(|t| t.kind))
            .collect();
        assert!(kinds.contains(&Kind::Abort) && kinds.contains(&Kind::Oops));
    }

    #[test]
    fn bad_entries_are_refused_by_key() {
        let replays = parse(TSU, &matrix()).unwrap();
        assert_eq!(replays[0].target.as_ref().unwrap().exception(), SERROR);
        assert!(replays[1].target.is_none());
        for (text, expected) in [
            (
                TSU.replace("    access: write\n", ""),
                "replays[0] (tsu).access: missing",
            ),
            (
                TSU.replace("access: write", "access: poke"),
                "expected read or write",
            ),
            (
                TSU.replace("test: tsu-unbind", "test: nope"),
                "`nope` is not a test",
            ),
            (
                TSU.replace(
                    "    pending: no USB model\n",
                    "    pending: x\n    test: tsu-unbind\n",
                ),
                "replays[1] (usb).test: a pending replay has no target",
            ),
            (TSU.replace("id: usb", "id: tsu"), "the id is used twice"),
            (
                TSU.replace("driver: rzg3s_thermal", "driver: x\n    colour: red"),
                "unknown field `colour`",
            ),
        ] {
            let error = format!("{:#}", parse(&text, &matrix()).unwrap_err());
            assert!(error.contains(expected), "{error}");
        }
    }

    fn cell(kernel: &str, outcome: Outcome, root: Option<(&str, &str)>) -> CellReport {
        let mut report = crate::report::tests::cell(kernel, "tsu-unbind", outcome, outcome);
        report.duration_s = 1.5;
        if let Some((function, exception)) = root {
            let mut abort = crate::report::tests::abort(true, 1);
            abort.device = "tsu".into();
            abort.register = "TSU_SM".into();
            abort.access = "write".into();
            abort.function = Some(function.into());
            abort.symbol = format!("{function}+0x48");
            report.aborts = vec![abort];
            report.guest_trace = Some(crate::console::GuestTrace {
                exception: exception.into(),
                exception_line: "SError Interrupt on CPU0".into(),
                ..Default::default()
            });
            report.guest_trace_agrees = Some(true);
        }
        report
    }

    #[test]
    fn a_replay_reproduces_only_where_the_board_aborted_with_its_exception_and_a_clean_twin() {
        let replay = &parse(TSU, &matrix()).unwrap()[0];
        let variant = cell(
            "prefix",
            Outcome::Abort,
            Some(("rzg3s_thermal_change_mode", SERROR)),
        );
        let twin = cell("upstream", Outcome::Clean, None);
        let verdict = judge(replay, Some(&variant), Some(&twin));
        assert_eq!(verdict.status, "reproduced", "{:?}", verdict.reasons);
        assert_eq!(
            verdict.reported.as_deref(),
            Some("rzg3s_thermal_change_mode: tsu TSU_SM write")
        );
        assert_eq!(verdict.seconds, Some(1.5));

        let elsewhere = cell(
            "prefix",
            Outcome::Abort,
            Some(("thermal_zone_device_set_mode", SERROR)),
        );
        let v = judge(replay, Some(&elsewhere), Some(&twin));
        assert!(
            v.reasons[0].contains("the board's was rzg3s_thermal_change_mode"),
            "{v:?}"
        );

        let wrong_class = cell(
            "prefix",
            Outcome::Abort,
            Some(("rzg3s_thermal_change_mode", SYNC_EXTERNAL_ABORT)),
        );
        let v = judge(replay, Some(&wrong_class), Some(&twin));
        assert!(
            v.reasons[0].contains("the board takes a serror on a write"),
            "{v:?}"
        );

        let dirty_twin = cell(
            "upstream",
            Outcome::Abort,
            Some(("rzg3s_thermal_change_mode", SERROR)),
        );
        let v = judge(replay, Some(&variant), Some(&dirty_twin));
        assert_eq!(v.status, "not reproduced");
        assert!(
            v.reasons[0].contains("the twin upstream/tsu-unbind is abort"),
            "{v:?}"
        );

        let v = judge(replay, None, Some(&twin));
        assert!(
            v.reasons[0].contains("prefix/tsu-unbind did not run"),
            "{v:?}"
        );

        let pending = judge(&parse(TSU, &matrix()).unwrap()[1], None, None);
        assert_eq!(
            (pending.status.as_str(), pending.reasons[0].as_str()),
            ("pending", "no USB model")
        );
    }
}
