//! One cell: one kernel booting one test under QEMU with the plugin, and the report of it.
//!
//! A cell never fails the run: whatever goes wrong inside it (QEMU cannot start, the
//! guest hangs) becomes the cell's outcome `error` with a reason, and the other cells go
//! on. Its files live in its own directory, which is emptied first so that nothing from
//! an earlier run can be mistaken for this one's evidence:
//!
//! - `qemu.cmd`: the exact command line, shell-quoted (paste it to rerun the cell);
//! - `console.log`: the guest console, streamed while the cell runs;
//! - `events.jsonl`: the plugin's events;
//! - `qemu.stderr`: what QEMU (and the plugin) wrote to stderr.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::classify::{apply_agreement, classify, guest_trace_agreement, Evidence};
use crate::console::{self, ConsoleReport};
use crate::events::EventsReport;
use crate::fsutil;
use crate::gated_accesses::{group_aborts, group_suspects};
use crate::inputs::{KernelBuild, Toolchain};
use crate::interrupt::Interrupt;
use crate::matrix::{Expectation, OnAbort};
use crate::outcome::Outcome;
use crate::qemu::{self, CellLaunch, QemuExit, RunOptions};
use crate::report::{AbortReport, CellReport, KtapReport, Phases, UserSpaceMappedReport};
use crate::snapshot::Snapshot;
use crate::symbols::SymbolMap;

/// Console lines an error cell carries in its report.
const CONSOLE_TAIL_LINES: usize = 40;
/// stderr lines quoted in an error reason (the plugin's refusal is one line).
const STDERR_TAIL_LINES: usize = 6;

/// What every cell of a run shares.
#[derive(Debug, Clone)]
pub struct RunInputs {
    pub toolchain: Toolchain,
    pub initramfs: PathBuf,
    pub dtb: PathBuf,
    pub plugin: PathBuf,
    pub soc: PathBuf,
    /// Stops the run's QEMUs on SIGINT/SIGTERM (only `run` installs the handlers).
    pub interrupt: Interrupt,
    /// Where the run's snapshots go; None: every cell boots cold (`--cold`).
    pub snapshots: Option<PathBuf>,
}

/// Everything that defines one cell.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub kernel: KernelBuild,
    pub symbols: Arc<SymbolMap>,
    pub test: String,
    pub faults: Vec<String>,
    pub loops: u32,
    pub timeout: Duration,
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub on_abort: OnAbort,
    pub expected: Option<Expectation>,
    /// The cell's own directory (`<out>/cells/<kernel>/<test>[/run-<n>]`).
    pub dir: PathBuf,
    /// The snapshot the cell starts from; None: it boots.
    pub restore: Option<Arc<Snapshot>>,
    /// Why the cell boots although the run uses snapshots (its test's `cold_boot`, a
    /// snapshot that could not be made).
    pub cold_reason: Option<String>,
}

impl CellSpec {
    fn console_file(&self) -> PathBuf {
        self.dir.join("console.log")
    }
    fn events_file(&self) -> PathBuf {
        self.dir.join("events.jsonl")
    }
    fn cmd_file(&self) -> PathBuf {
        self.dir.join("qemu.cmd")
    }
    fn stderr_file(&self) -> PathBuf {
        self.dir.join("qemu.stderr")
    }
}

/// What a finished QEMU left behind.
#[derive(Debug)]
pub struct Recorded {
    pub exit: QemuExit,
    pub console: String,
    pub duration: Duration,
    pub test_started: Option<Duration>,
    pub test_done: Option<Duration>,
    pub events: EventsReport,
    pub qemu_stderr_tail: String,
}

/// Runs the cell and reports it; problems inside the cell become its `error`. With
/// `echo`, the console is also streamed to stdout (`boot`). `None`: the run was
/// interrupted before the cell finished, so there is nothing to say about it.
pub fn run_cell(inputs: &RunInputs, spec: &CellSpec, echo: bool) -> Option<CellReport> {
    match execute(inputs, spec, echo) {
        Ok(recorded) if recorded.exit == QemuExit::Interrupted => None,
        Ok(recorded) => Some(evaluate(spec, recorded)),
        Err(e) => Some(failed_to_run(spec, &format!("{e:#}"))),
    }
}

fn execute(inputs: &RunInputs, spec: &CellSpec, echo: bool) -> Result<Recorded> {
    if spec.dir.exists() {
        std::fs::remove_dir_all(&spec.dir)
            .with_context(|| format!("cannot empty the cell directory {}", spec.dir.display()))?;
    }
    std::fs::create_dir_all(&spec.dir)
        .with_context(|| format!("cannot create the cell directory {}", spec.dir.display()))?;

    // Absolute paths, so that qemu.cmd reruns from anywhere.
    let absolute = fsutil::absolute;
    let (image, system_map) = (
        absolute(&spec.kernel.image),
        absolute(&spec.kernel.system_map),
    );
    let (initramfs, dtb) = (absolute(&inputs.initramfs), absolute(&inputs.dtb));
    let (plugin, soc, events_file) = (
        absolute(&inputs.plugin),
        absolute(&inputs.soc),
        absolute(&spec.events_file()),
    );
    let launch = CellLaunch {
        kernel_image: &image,
        system_map: &system_map,
        initramfs: &initramfs,
        dtb: &dtb,
        plugin: &plugin,
        soc: &soc,
        events_file: &events_file,
        test: &spec.test,
        loops: spec.loops,
        temp_c: spec.temp_c,
        adc: spec.adc,
        on_abort: spec.on_abort,
        faults: &spec.faults,
    };
    let (args, input) = match &spec.restore {
        Some(snapshot) => (
            qemu::restore_args(&inputs.toolchain, &launch, &snapshot.image, &snapshot.state)?,
            Some(qemu::restore_input(
                &spec.test,
                spec.loops,
                spec.temp_c,
                &spec.adc,
            )),
        ),
        None => (qemu::cell_args(&inputs.toolchain, &launch)?, None),
    };
    let program = &inputs.toolchain.qemu;
    fsutil::write_atomic(
        &spec.cmd_file(),
        format!("{}\n", qemu::shell_command_line(program, &args)).as_bytes(),
    )?;

    let finished = qemu::run(
        program,
        &args,
        &spec.console_file(),
        &spec.stderr_file(),
        spec.timeout,
        echo,
        &inputs.interrupt,
        RunOptions {
            input,
            stop_at: Some(console::DONE_MARKER),
        },
    )?;
    let mut console = finished.console;
    if let Some(snapshot) = &spec.restore {
        console = join_boot(snapshot, spec, console)?;
    }
    let events = EventsReport::load(&spec.events_file())
        .with_context(|| format!("cannot read {}", spec.events_file().display()))?;
    Ok(Recorded {
        exit: finished.exit,
        console: String::from_utf8_lossy(&console).into_owned(),
        duration: finished.duration,
        test_started: finished.test_started,
        test_done: finished.test_done,
        events,
        qemu_stderr_tail: qemu::file_tail(&spec.stderr_file(), STDERR_TAIL_LINES),
    })
}

/// A restored cell's boot is the snapshot's: its console and events go in front of the
/// cell's own, so that the files and the report read as those of a cold boot (the boot's
/// summary is dropped: the cell's counts everything). Returns the joined console.
fn join_boot(snapshot: &Snapshot, spec: &CellSpec, console: Vec<u8>) -> Result<Vec<u8>> {
    let read = |path: &Path| {
        std::fs::read(path)
            .with_context(|| format!("cannot read the snapshot's {}", path.display()))
    };
    let mut joined = read(&snapshot.console)?;
    joined.extend_from_slice(&console);
    fsutil::write_atomic(&spec.console_file(), &joined)?;

    let boot_events = read(&snapshot.events)?;
    let mut events: Vec<u8> = boot_events
        .split_inclusive(|&b| b == b'\n')
        .filter(|line| !line.starts_with(br#"{"type":"summary""#))
        .flatten()
        .copied()
        .collect();
    // A missing events file of the cell stays evidence of its own: nothing is joined.
    if let Ok(cell_events) = std::fs::read(spec.events_file()) {
        events.extend_from_slice(&cell_events);
        fsutil::write_atomic(&spec.events_file(), &events)?;
    }
    Ok(joined)
}

fn exit_text(exit: QemuExit) -> String {
    match exit {
        QemuExit::Exited(code) => format!("exit status {code}"),
        QemuExit::Signaled(signal) => format!("killed by signal {signal}"),
        QemuExit::TimedOut(after) => format!("killed after the {} s timeout", after.as_secs()),
        QemuExit::Interrupted => "interrupted".to_string(),
    }
}

fn is_ok(expected: Option<&Expectation>, outcome: Outcome) -> bool {
    match expected {
        Some(expected) => expected.outcome == outcome,
        // Without an expectation (validate's patched kernel) only an error is not ok.
        None => outcome != Outcome::Error,
    }
}

/// Builds the cell's report from what QEMU left behind.
pub fn evaluate(spec: &CellSpec, recorded: Recorded) -> CellReport {
    let console = ConsoleReport::parse(&recorded.console);
    let verdict = classify(&Evidence {
        exit: recorded.exit,
        console: &console,
        events: &recorded.events,
        on_abort: spec.on_abort,
        requested_faults: &spec.faults,
        qemu_stderr_tail: &recorded.qemu_stderr_tail,
    });
    let aborts = group_aborts(&recorded.events, &spec.symbols, &console);
    let suspects = group_suspects(&recorded.events, &spec.symbols, &console);
    let events = &recorded.events;
    // Under serror: the guest's own report must tell the same story as ours.
    let agreement = guest_trace_agreement(
        spec.on_abort,
        console.guest_trace.as_ref(),
        &aborts,
        events.halt.is_some(),
    );
    let verdict = apply_agreement(verdict, agreement.as_ref());

    let mut events_notes = events.malformed.clone();
    if events.truncated_last_line {
        events_notes.push("the last line is truncated (QEMU ended mid-write); ignored".into());
    }
    if let Some(dropped) = events
        .summary
        .as_ref()
        .map(|s| s.channel_full)
        .filter(|&n| n > 0)
    {
        events_notes.push(format!(
            "{dropped} events were dropped by the plugin (its channel was full)"
        ));
    }
    let summarized_aborts = events.summary.as_ref().map_or(0, |s| s.aborts);
    if summarized_aborts > events.aborts.len() as u64 {
        events_notes.push(format!(
            "the summary counts {summarized_aborts} aborts but only {} abort events were recorded",
            events.aborts.len()
        ));
    }
    let summarized_suspects = events.summary.as_ref().map_or(0, |s| s.suspects);
    if summarized_suspects > events.suspects.len() as u64 {
        events_notes.push(format!(
            "the summary counts {summarized_suspects} suspects but only {} suspect events were \
             recorded",
            events.suspects.len()
        ));
    }

    let is_error = verdict.outcome == Outcome::Error;
    CellReport {
        kernel: spec.kernel.name.clone(),
        test: spec.test.clone(),
        outcome: verdict.outcome,
        expected: spec.expected.as_ref().map(|e| e.outcome),
        ok: is_ok(spec.expected.as_ref(), verdict.outcome),
        root_abort: aborts.first().map(AbortReport::one_line),
        abort_events: events.aborts.len() as u64,
        aborts,
        suspect_events: events.suspects.len() as u64,
        suspects,
        duration_s: round_centis(recorded.duration),
        rationale: spec.expected.as_ref().and_then(|e| e.rationale.clone()),
        error: verdict.error,
        checks_failed: verdict.checks_failed,
        console_tail: is_error.then(|| console::tail(&recorded.console, CONSOLE_TAIL_LINES)),
        ktap: KtapReport {
            version: console.ktap_version,
            plan: console.plan,
            results: console.results.clone(),
            steps: console.steps.clone(),
            done: console.done,
            panic: console.panic.clone(),
        },
        guest_trace: console.guest_trace.clone(),
        guest_trace_agrees: agreement.as_ref().map(|a| a.agrees),
        guest_trace_reason: agreement.and_then(|a| a.reason),
        faults_armed: events.faults_armed(),
        faults_fired: events.faults_fired(),
        user_space_mapped: events
            .user_space_mapped
            .as_ref()
            .map(|mapped| UserSpaceMappedReport {
                seq: mapped.seq,
                symbol: spec.symbols.symbolize(mapped.pc).text,
                call_chain: spec
                    .symbols
                    .call_chain(mapped.pc, &mapped.frames)
                    .into_iter()
                    .map(|s| s.text)
                    .collect(),
            }),
        events_notes,
        exit: exit_text(recorded.exit),
        loops: spec.loops,
        events_file: spec.events_file().display().to_string(),
        console_file: spec.console_file().display().to_string(),
        qemu_cmd_file: spec.cmd_file().display().to_string(),
        repetitions: None,
        flaky: false,
        phases: Phases::of(&recorded),
        boot: match (&spec.restore, &spec.cold_reason) {
            (Some(_), _) => "restored".to_string(),
            (None, Some(why)) => format!("cold: {why}"),
            (None, None) => "cold".to_string(),
        },
    }
}

/// The report of a cell whose QEMU could not even be started.
fn failed_to_run(spec: &CellSpec, reason: &str) -> CellReport {
    let recorded = Recorded {
        exit: QemuExit::Exited(-1),
        console: String::new(),
        duration: Duration::ZERO,
        test_started: None,
        test_done: None,
        events: EventsReport {
            missing: true,
            ..EventsReport::default()
        },
        qemu_stderr_tail: String::new(),
    };
    let mut report = evaluate(spec, recorded);
    report.error = Some(format!("the cell could not run: {reason}"));
    report.exit = "not started".into();
    report
}

impl Phases {
    /// From QEMU's start: the test's first line, its done line, QEMU's exit.
    fn of(recorded: &Recorded) -> Option<Phases> {
        let started = recorded.test_started?;
        let done = recorded.test_done?;
        Some(Phases {
            start_s: round_centis(started),
            test_s: round_centis(done.saturating_sub(started)),
            end_s: round_centis(recorded.duration.saturating_sub(done)),
        })
    }
}

fn round_centis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 100.0).round() / 100.0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::StepRef;
    use crate::testdata;

    pub(crate) fn spec(test: &str, on_abort: OnAbort, expected: Option<Outcome>) -> CellSpec {
        CellSpec {
            kernel: KernelBuild {
                name: "prefix".into(),
                image: "out/kernels/prefix/Image".into(),
                system_map: "out/kernels/prefix/System.map".into(),
            },
            symbols: Arc::new(SymbolMap::parse(testdata::SYSTEM_MAP)),
            test: test.into(),
            faults: vec![],
            loops: 1,
            timeout: Duration::from_secs(60),
            temp_c: 42.0,
            adc: [0x400; 8],
            on_abort,
            expected: expected.map(|outcome| Expectation {
                outcome,
                rationale: Some("the platform bus detaches the PM domain first".into()),
            }),
            dir: "out/matrix/cells/prefix/adc-unbind".into(),
            restore: None,
            cold_reason: None,
        }
    }

    pub(crate) fn recorded(console: &str, events: &str, exit: QemuExit) -> Recorded {
        Recorded {
            exit,
            console: console.into(),
            duration: Duration::from_millis(2346),
            test_started: Some(Duration::from_millis(1500)),
            test_done: Some(Duration::from_millis(2300)),
            events: EventsReport::parse(events),
            qemu_stderr_tail: String::new(),
        }
    }

    #[test]
    fn user_space_mapped_is_symbolized_and_shown() {
        // The kernel store at rzg2l_mod_clock_endisable+0x28, called from
        // pm_runtime_disable_action+0x10 (test map functions standing in for the mmap path).
        let events = format!(
            "{}\n{{\"type\":\"user_space_mapped\",\"seq\":9,\"pc\":{},\"frames\":[{}]}}\n",
            testdata::PREFIX_ADC_UNBIND_EVENTS.trim_end(),
            0xffff_8000_8070_0028u64,
            0xffff_8000_8052_0010u64
        );
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Continue, Some(Outcome::Abort)),
            recorded(
                testdata::PREFIX_ADC_UNBIND_CONSOLE,
                &events,
                QemuExit::Exited(0),
            ),
        );
        let mapped = report.user_space_mapped.clone().expect("user_space_mapped");
        assert_eq!(mapped.seq, 9);
        assert_eq!(mapped.symbol, "rzg2l_mod_clock_endisable+0x28");
        assert_eq!(mapped.call_chain, vec!["pm_runtime_disable_action+0x10"]);
        let without = evaluate(
            &spec("adc-unbind", OnAbort::Continue, Some(Outcome::Abort)),
            recorded(
                testdata::PREFIX_ADC_UNBIND_CONSOLE,
                testdata::PREFIX_ADC_UNBIND_EVENTS,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!(without.user_space_mapped, None);
        assert!(!serde_json::to_string(&without)
            .unwrap()
            .contains("user_space_mapped"));
    }

    #[test]
    fn prefix_adc_unbind_report_is_grouped_and_symbolized() {
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Continue, Some(Outcome::Abort)),
            recorded(
                testdata::PREFIX_ADC_UNBIND_CONSOLE,
                testdata::PREFIX_ADC_UNBIND_EVENTS,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!(report.outcome, Outcome::Abort);
        assert!(report.ok);
        assert_eq!(report.abort_events, 4);
        assert_eq!(report.duration_s, 2.35);
        assert_eq!(report.aborts.len(), 3);

        let root = &report.aborts[0];
        assert!(root.root);
        assert_eq!(root.device, "tsu");
        assert_eq!(root.symbol, "rzg3s_thermal_change_mode+0x2c");
        assert_eq!(
            root.call_chain,
            vec![
                "devm_thermal_of_zone_release+0x18",
                "devres_release_all+0x90"
            ]
        );
        assert_eq!(
            root.step,
            Some(StepRef {
                n: 1,
                text: Some("unbind 10058000.adc from rzg2l-adc".into())
            })
        );
        let since = root.gated_since.as_ref().unwrap();
        assert_eq!(
            since.symbol.as_deref(),
            Some("rzg2l_mod_clock_endisable+0x64")
        );
        assert_eq!(since.register.as_deref(), Some("CLK_ON_ADC"));

        let adm0_read = &report.aborts[1];
        assert!(!adm0_read.root);
        assert_eq!(
            adm0_read.count, 2,
            "the step-2 read has the same pc/register/access"
        );
        assert_eq!(adm0_read.symbol, "rzg2l_adc_pm_runtime_suspend+0x14");
        assert_eq!(
            adm0_read.identity(),
            "adc ADM0 read in rzg2l_adc_pm_runtime_suspend"
        );
        assert_eq!(adm0_read.call_chain[0], "pm_generic_runtime_suspend+0x2c");
        // The last frame is beyond _etext: hex with a note.
        assert_eq!(adm0_read.call_chain[4], "0xffff800081000000");
        assert!(adm0_read.notes[0].contains("beyond _etext"));
        assert_eq!(report.aborts[2].access, "write");
        assert_eq!(report.aborts[2].count, 1);

        assert_eq!(
            report.root_abort.as_deref(),
            Some("tsu TSU_SM write at rzg3s_thermal_change_mode+0x2c (step 1)")
        );
        assert!(report.error.is_none() && report.console_tail.is_none());
        assert_eq!(report.ktap.results.len(), 2);
        assert_eq!(
            report.rationale.as_deref(),
            Some("the platform bus detaches the PM domain first")
        );
    }

    #[test]
    fn serror_cell_carries_both_traces_and_agrees() {
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Serror, Some(Outcome::Abort)),
            recorded(
                testdata::SERROR_CONSOLE,
                testdata::SERROR_EVENTS,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!(report.outcome, Outcome::Abort, "{:?}", report.error);
        assert!(report.ok);
        assert_eq!(report.guest_trace_agrees, Some(true));
        assert_eq!(report.guest_trace_reason, None);
        let root = report.root().unwrap();
        assert!(root.diverted);
        assert_eq!(root.serror.as_ref().unwrap().mode, "faithful");
        let trace = report.guest_trace.as_ref().unwrap();
        assert_eq!(
            trace.pc.as_deref(),
            Some("rzg3s_thermal_change_mode+0x48/0x114")
        );
        assert!(trace
            .call_trace
            .contains(&"rzg3s_thermal_change_mode+0x48/0x114 (P)".to_string()));
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["guest_trace_agrees"], true);
        assert_eq!(
            json["guest_trace"]["exception_line"],
            "SError Interrupt on CPU0, code 0x00000000be000011 -- SError"
        );
        assert_eq!(json["aborts"][0]["diverted"], true);

        // The same console against a record of another access: an error.
        let other = testdata::SERROR_EVENTS.replace(
            "\"pc\":18446603338375037000",
            &format!("\"pc\":{}", 0xffff_8000_8060_0014u64),
        );
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Serror, Some(Outcome::Abort)),
            recorded(testdata::SERROR_CONSOLE, &other, QemuExit::Exited(0)),
        );
        assert_eq!(report.outcome, Outcome::Error);
        assert!(!report.ok);
        assert_eq!(report.guest_trace_agrees, Some(false));
        assert!(report
            .error
            .as_deref()
            .unwrap()
            .contains("disagrees with the plugin's record"));
        assert!(report.console_tail.is_some());
    }

    #[test]
    fn a_suspect_only_cell_is_clean_and_lists_its_suspects() {
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Continue, Some(Outcome::Clean)),
            recorded(
                testdata::UPSTREAM_ADC_UNBIND_CONSOLE,
                testdata::SUSPECT_ONLY_EVENTS,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!(report.outcome, Outcome::Clean, "{:?}", report.error);
        assert!(report.ok);
        assert!(report.aborts.is_empty() && report.root_abort.is_none());
        assert_eq!(report.abort_events, 0);
        assert_eq!(report.suspect_events, 3);
        assert!(report.events_notes.is_empty(), "{:?}", report.events_notes);

        // Grouped like aborts: the step-2 read repeats the step-1 read.
        assert_eq!(report.suspects.len(), 2);
        let root = report.root_suspect().unwrap();
        assert_eq!(root.symbol, "rzg2l_adc_pm_runtime_suspend+0x8");
        assert_eq!(root.register, "ADM0");
        assert_eq!(root.access, "read");
        assert_eq!(root.count, 2);
        assert_eq!(root.gated_by, vec!["ADC pclk off: CLK_MON 0x728 bit 1 = 0"]);
        assert_eq!(
            root.call_chain,
            vec!["pm_generic_runtime_suspend+0x2c", "rpm_suspend+0x40"]
        );
        assert_eq!(
            root.step.as_ref().unwrap().text.as_deref(),
            Some("unbind 10058000.adc from rzg2l-adc")
        );
        let since = root.gated_since.as_ref().unwrap();
        assert_eq!(
            since.symbol.as_deref(),
            Some("rzg2l_mod_clock_endisable+0x64")
        );
        assert_eq!(since.call_chain, vec!["pm_runtime_disable_action+0x10"]);
        let reset_held = &report.suspects[1];
        assert!(!reset_held.root);
        assert_eq!((reset_held.access.as_str(), reset_held.count), ("write", 1));
        assert_eq!(
            reset_held.gated_by,
            vec!["ADC reset held: RST_MON 0xA28 bit 1 = 1"]
        );

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["outcome"], "clean");
        assert_eq!(json["aborts"].as_array().unwrap().len(), 0);
        assert_eq!(json["suspect_events"], 3);
        let suspect = &json["suspects"][0];
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
            "root",
        ] {
            assert!(suspect.get(key).is_some(), "missing suspects[0].{key}");
        }
        assert!(suspect.get("diverted").is_none() && suspect.get("serror").is_none());
    }

    #[test]
    fn an_abort_with_suspects_is_abort_and_lists_both_apart() {
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Continue, Some(Outcome::Abort)),
            recorded(
                testdata::PREFIX_ADC_UNBIND_CONSOLE,
                testdata::ABORT_AND_SUSPECT_EVENTS,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!(report.outcome, Outcome::Abort, "{:?}", report.error);
        assert!(report.ok);
        assert_eq!((report.abort_events, report.suspect_events), (1, 2));

        // The abort is the root abort although a suspect came first.
        assert_eq!(report.aborts.len(), 1);
        let root = report.root().unwrap();
        assert_eq!(root.first_seq, 4);
        assert_eq!(root.access, "write");
        assert_eq!(root.gated_by.len(), 2);
        assert_eq!(
            report.root_abort.as_deref(),
            Some("adc ADM0 write at rzg2l_adc_pm_runtime_suspend+0x1c (step 1)")
        );

        assert_eq!(report.suspects.len(), 1);
        let suspect = report.root_suspect().unwrap();
        assert_eq!((suspect.first_seq, suspect.count), (3, 2));
        assert_eq!(suspect.access, "read");
        assert_eq!(suspect.call_chain, vec!["pm_generic_runtime_suspend+0x2c"]);

        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["aborts"][0]["access"], "write");
        assert_eq!(json["suspects"][0]["access"], "read");
        assert_eq!(json["suspects"][0]["count"], 2);
    }

    #[test]
    fn a_summary_counting_more_suspects_than_recorded_is_noted() {
        let events = testdata::SUSPECT_ONLY_EVENTS.replace("\"suspects\":3", "\"suspects\":5");
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Continue, Some(Outcome::Clean)),
            recorded(
                testdata::UPSTREAM_ADC_UNBIND_CONSOLE,
                &events,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!(report.outcome, Outcome::Clean);
        assert!(report.events_notes.contains(
            &"the summary counts 5 suspects but only 3 suspect events were recorded".to_string()
        ));
    }

    #[test]
    fn error_cell_carries_reason_and_console_tail() {
        let long_console: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Continue, Some(Outcome::Clean)),
            recorded(
                &long_console,
                testdata::CLEAN_EVENTS,
                QemuExit::TimedOut(Duration::from_secs(60)),
            ),
        );
        assert_eq!(report.outcome, Outcome::Error);
        assert!(!report.ok);
        assert_eq!(
            report.error.as_deref(),
            Some("timeout after 60 s (QEMU killed)")
        );
        let tail = report.console_tail.unwrap();
        assert_eq!(tail.len(), 40);
        assert_eq!(tail.last().unwrap(), "line 99");
        assert_eq!(report.exit, "killed after the 60 s timeout");
    }

    #[test]
    fn mismatch_is_not_ok_and_no_expectation_means_not_error() {
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Continue, Some(Outcome::Clean)),
            recorded(
                testdata::PREFIX_ADC_UNBIND_CONSOLE,
                testdata::PREFIX_ADC_UNBIND_EVENTS,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!((report.outcome, report.ok), (Outcome::Abort, false));
        let report = evaluate(
            &spec("adc-unbind", OnAbort::Continue, None),
            recorded(
                testdata::PREFIX_ADC_UNBIND_CONSOLE,
                testdata::PREFIX_ADC_UNBIND_EVENTS,
                QemuExit::Exited(0),
            ),
        );
        assert!(report.ok && report.expected.is_none());
    }

    #[test]
    fn events_damage_is_noted() {
        let events = format!(
            "{}{{\"type\":\"abo",
            testdata::CLEAN_EVENTS.replace("\"channel_full\":0", "\"channel_full\":7")
        );
        let report = evaluate(
            &spec("boot", OnAbort::Continue, Some(Outcome::Clean)),
            recorded(
                testdata::UPSTREAM_ADC_UNBIND_CONSOLE,
                &events,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!(report.outcome, Outcome::Clean);
        assert!(report.events_notes.iter().any(|n| n.contains("truncated")));
        assert!(report
            .events_notes
            .iter()
            .any(|n| n.contains("7 events were dropped")));
    }

    #[test]
    fn a_cell_that_cannot_start_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec("boot", OnAbort::Continue, Some(Outcome::Clean));
        s.dir = dir.path().join("cells/prefix/boot");
        let inputs = RunInputs {
            toolchain: Toolchain::parse("QEMU=/nonexistent/qemu-system-aarch64\n").unwrap(),
            initramfs: "i".into(),
            dtb: "d".into(),
            plugin: "p".into(),
            soc: "s".into(),
            interrupt: crate::interrupt::Interrupt::new(),
            snapshots: None,
        };
        let report = run_cell(&inputs, &s, false).expect("not interrupted");
        assert_eq!(report.outcome, Outcome::Error);
        assert!(report.error.unwrap().contains("cannot start"));
        // qemu.cmd was written before the attempt.
        let cmd = std::fs::read_to_string(s.dir.join("qemu.cmd")).unwrap();
        assert!(cmd.starts_with("/nonexistent/qemu-system-aarch64 -M virt "));
    }
}
