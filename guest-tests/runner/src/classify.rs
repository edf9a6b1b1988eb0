//! The outcome of one cell (one kernel running one test), decided from the evidence: how
//! QEMU ended, the guest console, and the plugin's events.
//!
//! # Rules, first match wins
//!
//! **error** (the cell proved nothing, or something broke) when:
//!
//! 1. QEMU did not end within the cell's timeout (it is killed; reason `timeout after N s`);
//! 2. QEMU crashed: killed by a signal, or a non-zero exit status other than the `halt`
//!    policy's 3 after an abort (3 also counts as a halt when the events hold a `halt`
//!    event: under `serror` the plugin stops QEMU that way when it cannot divert the
//!    faulting vCPU, e.g. a gated access from user space); under `serror`, status 4 is the
//!    plugin refusing a `symbols=` map that is not the running kernel's;
//! 3. the guest kernel panicked (`Kernel panic - not syncing`), except under `serror`
//!    after an abort, where the panic is the plugin's doing and expected (QEMU then exits 0
//!    through `panic=-1` and `-no-reboot`);
//! 4. the guest did not print `# rzgate-done`, unless an abort stopped it (`halt`: QEMU
//!    stopped; `serror`: the kernel panicked);
//! 5. the events file or its closing `summary` is missing (except after a `halt`, which
//!    stops QEMU before the summary can be written);
//! 6. a fault the cell asked for was not armed, or an armed fault never fired ("fault
//!    adc-sresb-stuck was armed but never fired"): the test did not exercise what it is
//!    about.
//!
//! 7. under `serror`, the guest's own SError report disagrees with the plugin's record of
//!    the abort it diverted, or is missing ([`guest_trace_agreement`], applied by the cell
//!    once the aborts are symbolized);
//! 8. a watchdog reset the machine (a `watchdog_reset` event) without the guest announcing
//!    it (`# rzgate-expect-reset <ms>`), or after an unpinged time more than 10% away from
//!    the announced timeout; or the guest announced one and reached `# rzgate-done`
//!    without it. An announced reset within 10% stands for `# rzgate-done`: the KTAP the
//!    guest printed before it is judged as usual (checked right after QEMU's exit status).
//!
//! **abort** otherwise, when the plugin recorded at least one abort (an `abort` event, or a
//! summary that counts one). `suspect` events, the weaker class of gated access that the
//! silicon tolerates (a stopped clock with MSTOP clear, a held reset), never make a cell
//! `abort`: they are reported beside the outcome, not in it.
//!
//! **clean** otherwise, when every KTAP result passed (`ok`, or a `# SKIP`), there was at
//! least one, and the plan matches the number of top-level results.
//!
//! **error** otherwise, with the failing KTAP lines as the reason.
//!
//! The guest's own KTAP results are kept in the cell whatever the outcome (the console may
//! show a consequence of an abort that the outcome `abort` does not spell out).

use crate::console::{frame_function, frame_offset, ConsoleReport, GuestTrace, OOPS};
use crate::events::EventsReport;
use crate::matrix::OnAbort;
use crate::outcome::Outcome;
use crate::qemu::QemuExit;
use crate::report::AbortReport;

/// The exit status QEMU ends with under `on_abort=halt` (docs/contracts.md).
pub const HALT_EXIT_STATUS: i32 = 3;

/// Everything the classification looks at.
pub struct Evidence<'a> {
    pub exit: QemuExit,
    pub console: &'a ConsoleReport,
    pub events: &'a EventsReport,
    pub on_abort: OnAbort,
    /// The faults the runner passed to the plugin.
    pub requested_faults: &'a [String],
    /// The last lines QEMU wrote to stderr (the plugin's refusal message lands there).
    pub qemu_stderr_tail: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub outcome: Outcome,
    /// Why the outcome is `error`.
    pub error: Option<String>,
    /// The `error` is the guest's own checks failing (KTAP `not ok` lines, the plan met),
    /// not the infrastructure: the test ran and observed something other than it expects.
    /// `validate` tells the two apart (a patch that changes what a test observes is a
    /// verdict; a timeout or a crash means it could not judge).
    pub checks_failed: bool,
}

impl Verdict {
    fn error(reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::Error,
            error: Some(reason.into()),
            checks_failed: false,
        }
    }
}

pub fn classify(evidence: &Evidence) -> Verdict {
    let events = evidence.events;
    let console = evidence.console;
    let abort_count = events
        .aborts
        .len()
        .max(events.summary.as_ref().map_or(0, |s| s.aborts as usize));
    let aborted = abort_count > 0;
    let stderr_hint = || {
        let stderr = evidence.qemu_stderr_tail.trim();
        if stderr.is_empty() {
            String::new()
        } else {
            format!("; QEMU said: {}", stderr.replace('\n', " | "))
        }
    };

    // 1 and 2: how QEMU ended.
    let halted = match evidence.exit {
        QemuExit::TimedOut(after) => {
            return Verdict::error(format!(
                "timeout after {} s (QEMU killed){}",
                after.as_secs(),
                if console.done {
                    "; the guest had printed `# rzgate-done` but did not power off"
                } else {
                    ""
                }
            ))
        }
        QemuExit::Signaled(signal) => {
            return Verdict::error(format!(
                "QEMU was killed by signal {signal}{}",
                stderr_hint()
            ))
        }
        // `run_cell` never classifies an interrupted cell; should one get here, it is not
        // a verdict on the guest.
        QemuExit::Interrupted => {
            return Verdict::error("the run was interrupted before the cell finished")
        }
        QemuExit::Exited(0) => false,
        // The plugin's own `halt` event vouches for the status too: under `serror` the
        // plugin stops QEMU that way when it cannot divert the faulting vCPU.
        QemuExit::Exited(HALT_EXIT_STATUS)
            if aborted && (evidence.on_abort == OnAbort::Halt || events.halt.is_some()) =>
        {
            true
        }
        QemuExit::Exited(HALT_EXIT_STATUS) if evidence.on_abort == OnAbort::Halt => {
            return Verdict::error(format!(
                "QEMU exited with the halt status {HALT_EXIT_STATUS} but no abort was recorded{}",
                stderr_hint()
            ))
        }
        QemuExit::Exited(status) => {
            return Verdict::error(format!("QEMU exited with status {status}{}", stderr_hint()))
        }
    };
    // A halt event without QEMU's halt status would mean QEMU went on after it.
    let halted = halted || (evidence.on_abort == OnAbort::Halt && events.halt.is_some() && aborted);

    // 8: a watchdog reset, expected or not.
    let expected_reset = match (&events.watchdog_reset, console.expect_reset_ms) {
        (Some(reset), Some(ms)) => {
            let ran = reset.ran_ms();
            let want = ms as f64;
            if (ran - want).abs() > want / 10.0 {
                return Verdict::error(format!(
                    "{} reset the machine {ran:.0} ms after its last ping; the guest expected \
                     {ms} ms (+-10%)",
                    reset.device
                ));
            }
            true
        }
        (Some(reset), None) => {
            return Verdict::error(format!(
                "{} reset the machine ({}) and the guest did not expect it",
                reset.device, reset.reason
            ))
        }
        (None, Some(ms)) if console.done => {
            return Verdict::error(format!(
                "the guest expected a watchdog reset within {ms} ms (+-10%) and none came"
            ))
        }
        _ => false,
    };

    // 3: a panic is expected only as the plugin's SError diversion.
    let serror_panic = evidence.on_abort == OnAbort::Serror && aborted && console.panic.is_some();
    if let Some(panic) = &console.panic {
        if !serror_panic {
            // The kernel's own fault says where: a driver bug, not a gated access.
            let oops = console
                .guest_trace
                .as_ref()
                .filter(|t| t.exception == OOPS)
                .map(|t| match &t.pc {
                    Some(pc) => format!(" after `{}` at {pc}", t.exception_line),
                    None => format!(" after `{}`", t.exception_line),
                })
                .unwrap_or_default();
            return Verdict::error(format!("the guest kernel panicked: {panic}{oops}"));
        }
    }

    // 4: the script must have run to its end unless an abort legitimately stopped it.
    if !console.done && !halted && !serror_panic && !expected_reset {
        return Verdict::error(
            "the guest did not finish its script (no `# rzgate-done` on the console)",
        );
    }

    // 5: the plugin's record must be complete.
    if events.missing {
        return Verdict::error(format!(
            "no events file: the plugin did not run{}",
            stderr_hint()
        ));
    }
    if events.summary.is_none() && !halted {
        return Verdict::error(format!(
            "the events summary is missing ({} event lines{}): the plugin did not exit cleanly",
            events.lines,
            if events.truncated_last_line {
                ", the last one truncated"
            } else {
                ""
            }
        ));
    }

    // 6: an injected fault that did not take effect makes the test meaningless.
    let armed = events.faults_armed();
    let fired = events.faults_fired();
    for fault in evidence.requested_faults {
        if !armed.contains(fault) {
            return Verdict::error(format!(
                "fault {fault} was requested but the plugin did not arm it (armed: [{}])",
                armed.join(", ")
            ));
        }
    }
    for fault in &armed {
        if !fired.contains(fault) {
            return Verdict::error(format!("fault {fault} was armed but never fired"));
        }
    }

    if aborted {
        return Verdict {
            outcome: Outcome::Abort,
            error: None,
            checks_failed: false,
        };
    }
    match console.ktap_failure() {
        None => Verdict {
            outcome: Outcome::Clean,
            error: None,
            checks_failed: false,
        },
        Some(reason) => Verdict {
            checks_failed: console.checks_failed(),
            ..Verdict::error(reason)
        },
    }
}

/// Whether the guest's SError report tells the same story as the plugin's record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceAgreement {
    pub agrees: bool,
    /// Why not.
    pub reason: Option<String>,
}

impl TraceAgreement {
    fn disagrees(reason: String) -> TraceAgreement {
        TraceAgreement {
            agrees: false,
            reason: Some(reason),
        }
    }
}

/// Under `serror`, for a cell with aborts: the guest kernel's `pc :` must be the
/// instruction of the root abort, the one the plugin diverted: the same function at the same
/// offset (so the register our record names is the one that instruction accessed). `None`
/// when there is nothing to compare: another policy, no abort, or a divert the plugin
/// refused (it halted QEMU instead: `halted`).
pub fn guest_trace_agreement(
    on_abort: OnAbort,
    trace: Option<&GuestTrace>,
    aborts: &[AbortReport],
    halted: bool,
) -> Option<TraceAgreement> {
    if on_abort != OnAbort::Serror || halted {
        return None;
    }
    let root = aborts.iter().find(|abort| abort.root)?;
    let ours = format!(
        "{} {} {} at {}",
        root.device, root.register, root.access, root.symbol
    );
    if !root.diverted {
        return Some(TraceAgreement::disagrees(format!(
            "the plugin did not record a divert at the root abort ({ours})"
        )));
    }
    let Some(trace) = trace else {
        return Some(TraceAgreement::disagrees(format!(
            "the plugin diverted the guest at the root abort ({ours}) but the console shows no \
             `SError Interrupt` or `Internal error: synchronous external abort` line"
        )));
    };
    // A read is a synchronous external abort, a write an SError: the guest must report the
    // exception the plugin made it take.
    if let Some(divert) = root.serror.as_ref() {
        if divert.exception != trace.exception {
            return Some(TraceAgreement::disagrees(format!(
                "the plugin made the guest take a{} {} at the root abort ({ours}) but the guest \
                 reports `{}`",
                if divert.exception.starts_with('s') {
                    ""
                } else {
                    "n"
                },
                divert.exception,
                trace.exception_line
            )));
        }
    }
    let Some(pc) = trace.pc.as_deref() else {
        return Some(TraceAgreement::disagrees(format!(
            "the guest printed `{}` but no register dump (`pc :` line)",
            trace.exception_line
        )));
    };
    let Some(function) = root.function.as_deref() else {
        return Some(TraceAgreement::disagrees(format!(
            "the root abort's pc {:#x} is not in kernel text; the guest's pc is {pc}",
            root.pc
        )));
    };
    let guest_function = trace.pc_function().unwrap_or(pc);
    if guest_function != function {
        return Some(TraceAgreement::disagrees(format!(
            "the guest's pc is in {guest_function} ({pc}) but the root abort's is in \
             {function} ({ours})"
        )));
    }
    let (guest_offset, our_offset) = (frame_offset(pc), frame_offset(&root.symbol));
    if guest_offset != our_offset {
        return Some(TraceAgreement::disagrees(format!(
            "the guest's pc is {pc} but the root abort is at {}: not the instruction that \
             made the {} {} access",
            root.symbol, root.register, root.access
        )));
    }
    // The faithful divert's trace crosses the exception at pt_regs->pc, marked (P).
    if let Some(crossing) = trace.interrupted_frame() {
        let crossing_location = crossing.trim_end_matches("(P)").trim();
        if frame_function(crossing_location) != guest_function
            || frame_offset(crossing_location) != guest_offset
        {
            return Some(TraceAgreement::disagrees(format!(
                "the guest's call trace crosses the exception at {crossing_location}, not at \
                 its pc {pc}"
            )));
        }
    }
    Some(TraceAgreement {
        agrees: true,
        reason: None,
    })
}

/// Rule 7: a disagreement makes the cell an error (unless it already is one).
pub fn apply_agreement(verdict: Verdict, agreement: Option<&TraceAgreement>) -> Verdict {
    match agreement {
        Some(TraceAgreement {
            agrees: false,
            reason,
        }) if verdict.outcome != Outcome::Error => Verdict::error(format!(
            "the guest's SError report disagrees with the plugin's record: {}",
            reason.as_deref().unwrap_or("(no reason)")
        )),
        _ => verdict,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testdata;

    struct Case {
        exit: QemuExit,
        console: String,
        events: String,
        on_abort: OnAbort,
        faults: Vec<String>,
        stderr: String,
    }

    impl Case {
        fn new(console: &str, events: &str) -> Case {
            Case {
                exit: QemuExit::Exited(0),
                console: console.to_string(),
                events: events.to_string(),
                on_abort: OnAbort::Continue,
                faults: Vec::new(),
                stderr: String::new(),
            }
        }
        fn verdict(&self) -> Verdict {
            let console = ConsoleReport::parse(&self.console);
            let events = EventsReport::parse(&self.events);
            classify(&Evidence {
                exit: self.exit,
                console: &console,
                events: &events,
                on_abort: self.on_abort,
                requested_faults: &self.faults,
                qemu_stderr_tail: &self.stderr,
            })
        }
        fn error(&self) -> String {
            let v = self.verdict();
            assert_eq!(v.outcome, Outcome::Error, "{v:?}");
            v.error.unwrap()
        }
    }

    #[test]
    fn clean_run_is_clean() {
        let v = Case::new(
            testdata::UPSTREAM_ADC_UNBIND_CONSOLE,
            testdata::CLEAN_EVENTS,
        )
        .verdict();
        assert_eq!(
            v,
            Verdict {
                outcome: Outcome::Clean,
                error: None,
                checks_failed: false,
            }
        );
    }

    /// The watchdog-bite cell: KTAP up to the kill, the announcement, then the reset.
    const BITE_CONSOLE: &str = "KTAP version 1\n1..2\nok 1 bound\nok 2 active\n\
        # rzgate-expect-reset 3000\nwatchdog: watchdog0: watchdog did not stop!\n";

    fn bite_events(ran_ms: u64) -> String {
        format!(
            "{{\"type\":\"start\",\"seq\":0}}\n\
             {{\"type\":\"watchdog_reset\",\"seq\":1,\"device\":\"wdt0\",\"reason\":\"r\",\
             \"armed_ns\":1000,\"timeout_ns\":3058346666,\"due_ns\":3058347666,\
             \"seen_ns\":{}}}\n\
             {{\"type\":\"summary\",\"seq\":2,\"aborts\":0}}\n",
            1000 + ran_ms * 1_000_000
        )
    }

    #[test]
    fn an_announced_watchdog_reset_within_ten_percent_stands_for_done() {
        let v = Case::new(BITE_CONSOLE, &bite_events(3062)).verdict();
        assert_eq!(v.outcome, Outcome::Clean, "{v:?}");
        let v = Case::new(BITE_CONSOLE, &bite_events(3400)).verdict();
        assert_eq!(v.outcome, Outcome::Error);
        assert!(v.error.unwrap().contains("expected 3000 ms"));
        let v = Case::new(BITE_CONSOLE, &bite_events(2600)).verdict();
        assert_eq!(v.outcome, Outcome::Error);
    }

    #[test]
    fn an_unannounced_watchdog_reset_or_a_missing_one_is_an_error() {
        let console = BITE_CONSOLE.replace("# rzgate-expect-reset 3000\n", "");
        let v = Case::new(&console, &bite_events(3000)).verdict();
        assert!(v.error.unwrap().contains("did not expect it"));
        let console = format!("{BITE_CONSOLE}# rzgate-done\n");
        let events = "{\"type\":\"start\",\"seq\":0}\n{\"type\":\"summary\",\"seq\":1}\n";
        let v = Case::new(&console, events).verdict();
        assert!(v.error.unwrap().contains("none came"));
    }

    #[test]
    fn aborts_under_continue_are_abort() {
        let v = Case::new(
            testdata::PREFIX_ADC_UNBIND_CONSOLE,
            testdata::PREFIX_ADC_UNBIND_EVENTS,
        )
        .verdict();
        assert_eq!(v.outcome, Outcome::Abort);
    }

    #[test]
    fn suspects_alone_leave_a_passing_cell_clean() {
        let v = Case::new(
            testdata::UPSTREAM_ADC_UNBIND_CONSOLE,
            testdata::SUSPECT_ONLY_EVENTS,
        )
        .verdict();
        assert_eq!(
            v,
            Verdict {
                outcome: Outcome::Clean,
                error: None,
                checks_failed: false,
            }
        );
        // Nor do they explain a failing test: that stays an error.
        let failing = testdata::UPSTREAM_ADC_UNBIND_CONSOLE
            .replace("ok 2 adc bound again", "not ok 2 adc bound again");
        let e = Case::new(&failing, testdata::SUSPECT_ONLY_EVENTS).error();
        assert!(e.contains("not ok 2 adc bound again"), "{e}");
        // Nor a halt status: under `halt` only an abort stops QEMU.
        let mut case = Case::new(testdata::HALTED_CONSOLE, testdata::SUSPECT_ONLY_EVENTS);
        case.on_abort = OnAbort::Halt;
        case.exit = QemuExit::Exited(HALT_EXIT_STATUS);
        assert!(case.error().contains("no abort was recorded"));
    }

    #[test]
    fn an_abort_with_suspects_is_abort() {
        let v = Case::new(
            testdata::PREFIX_ADC_UNBIND_CONSOLE,
            testdata::ABORT_AND_SUSPECT_EVENTS,
        )
        .verdict();
        assert_eq!(v.outcome, Outcome::Abort);
    }

    #[test]
    fn abort_wins_over_failing_ktap() {
        let console = testdata::PREFIX_ADC_UNBIND_CONSOLE.replace("ok 2 adc", "not ok 2 adc");
        let v = Case::new(&console, testdata::PREFIX_ADC_UNBIND_EVENTS).verdict();
        assert_eq!(v.outcome, Outcome::Abort);
    }

    #[test]
    fn timeout_is_an_error() {
        let mut case = Case::new("KTAP version 1\n1..2\nok 1 a\n", "");
        case.exit = QemuExit::TimedOut(Duration::from_secs(60));
        assert_eq!(case.error(), "timeout after 60 s (QEMU killed)");
    }

    #[test]
    fn crash_is_an_error_with_qemu_stderr() {
        let mut case = Case::new("", "");
        case.exit = QemuExit::Exited(1);
        case.stderr = "qemu-system-aarch64: -plugin ...: rzgate: unknown key `temperature`".into();
        let e = case.error();
        assert!(
            e.starts_with("QEMU exited with status 1; QEMU said: "),
            "{e}"
        );
        assert!(e.contains("unknown key"), "{e}");
        case.exit = QemuExit::Signaled(11);
        assert!(case.error().starts_with("QEMU was killed by signal 11"));
    }

    #[test]
    fn halt_status_after_an_abort_is_abort() {
        let mut case = Case::new(testdata::HALTED_CONSOLE, testdata::HALTED_EVENTS);
        case.on_abort = OnAbort::Halt;
        case.exit = QemuExit::Exited(HALT_EXIT_STATUS);
        assert_eq!(case.verdict().outcome, Outcome::Abort);
        // Under serror the plugin halts when it cannot divert: its halt event vouches for it.
        case.on_abort = OnAbort::Serror;
        assert_eq!(case.verdict().outcome, Outcome::Abort);
        // Status 3 without the halt policy and without a halt event is a crash.
        case.on_abort = OnAbort::Continue;
        case.events = testdata::HALTED_EVENTS
            .lines()
            .filter(|l| !l.contains("\"type\":\"halt\""))
            .map(|l| format!("{l}\n"))
            .collect();
        assert!(case.error().contains("status 3"));
        // Halt status but nothing recorded.
        let mut case = Case::new(testdata::HALTED_CONSOLE, "");
        case.on_abort = OnAbort::Halt;
        case.exit = QemuExit::Exited(HALT_EXIT_STATUS);
        assert!(case.error().contains("no abort was recorded"));
    }

    #[test]
    fn panic_is_an_error_except_serror_after_abort() {
        let mut case = Case::new(testdata::SERROR_CONSOLE, testdata::SERROR_EVENTS);
        case.on_abort = OnAbort::Serror;
        assert_eq!(case.verdict().outcome, Outcome::Abort);
        // The same console under `continue` is a real panic.
        case.on_abort = OnAbort::Continue;
        assert!(case
            .error()
            .starts_with("the guest kernel panicked: Kernel panic - not syncing"));
        // Under serror but without any abort the panic is unexplained.
        let mut case = Case::new(testdata::SERROR_CONSOLE, testdata::CLEAN_EVENTS);
        case.on_abort = OnAbort::Serror;
        assert!(case.error().contains("panicked"));
    }

    #[test]
    fn a_panic_after_the_guests_own_oops_names_the_fault_and_its_pc() {
        let console = "\
Unable to handle kernel NULL pointer dereference at virtual address 0000000000000024
pc : rz_dmac_irq_handler+0x28/0xac
Kernel panic - not syncing: Oops: Fatal exception in interrupt
";
        let mut case = Case::new(console, testdata::CLEAN_EVENTS);
        case.on_abort = OnAbort::Serror;
        assert_eq!(
            case.error(),
            "the guest kernel panicked: Kernel panic - not syncing: Oops: Fatal exception in \
             interrupt after `Unable to handle kernel NULL pointer dereference at virtual \
             address 0000000000000024` at rz_dmac_irq_handler+0x28/0xac"
        );
    }

    /// The cell of the recorded prefix run: aborts symbolized against the fixture map.
    fn serror_aborts(events: &str) -> (Vec<AbortReport>, ConsoleReport, EventsReport) {
        let console = ConsoleReport::parse(testdata::SERROR_CONSOLE);
        let events = EventsReport::parse(events);
        let aborts = crate::gated_accesses::group_aborts(
            &events,
            &crate::symbols::SymbolMap::parse(testdata::SYSTEM_MAP),
            &console,
        );
        (aborts, console, events)
    }

    #[test]
    fn the_recorded_guest_trace_agrees_with_the_plugins_record() {
        let (aborts, console, _) = serror_aborts(testdata::SERROR_EVENTS);
        assert_eq!(aborts[0].symbol, "rzg3s_thermal_change_mode+0x48");
        let agreement = guest_trace_agreement(
            OnAbort::Serror,
            console.guest_trace.as_ref(),
            &aborts,
            false,
        );
        assert_eq!(
            agreement,
            Some(TraceAgreement {
                agrees: true,
                reason: None
            })
        );
        let verdict = Verdict {
            outcome: Outcome::Abort,
            error: None,
            checks_failed: false,
        };
        assert_eq!(
            apply_agreement(verdict.clone(), agreement.as_ref()),
            verdict
        );
        // Nothing to compare under other policies, or when the plugin halted instead.
        let trace = console.guest_trace.as_ref();
        assert_eq!(
            guest_trace_agreement(OnAbort::Continue, trace, &aborts, false),
            None
        );
        assert_eq!(
            guest_trace_agreement(OnAbort::Serror, trace, &aborts, true),
            None
        );
        assert_eq!(
            guest_trace_agreement(OnAbort::Serror, trace, &[], false),
            None
        );
    }

    #[test]
    fn a_guest_trace_at_another_place_disagrees_and_is_an_error() {
        // Our record says the ADC's runtime-suspend read; the guest says the TSU write.
        let other = testdata::SERROR_EVENTS.replace(
            "\"pc\":18446603338375037000",
            &format!("\"pc\":{}", 0xffff_8000_8060_0014u64),
        );
        let (aborts, console, _) = serror_aborts(&other);
        let agreement = guest_trace_agreement(
            OnAbort::Serror,
            console.guest_trace.as_ref(),
            &aborts,
            false,
        )
        .unwrap();
        assert!(!agreement.agrees);
        let reason = agreement.reason.clone().unwrap();
        assert!(
            reason.contains("the guest's pc is in rzg3s_thermal_change_mode")
                && reason.contains("the root abort's is in rzg2l_adc_pm_runtime_suspend"),
            "{reason}"
        );
        let verdict = apply_agreement(
            Verdict {
                outcome: Outcome::Abort,
                error: None,
                checks_failed: false,
            },
            Some(&agreement),
        );
        assert_eq!(verdict.outcome, Outcome::Error);
        assert!(verdict
            .error
            .unwrap()
            .starts_with("the guest's SError report disagrees with the plugin's record: "));

        // Same function, another instruction.
        let shifted = testdata::SERROR_EVENTS.replace(
            "\"pc\":18446603338375037000",
            &format!("\"pc\":{}", 0xffff_8000_8061_0044u64),
        );
        let (aborts, console, _) = serror_aborts(&shifted);
        let reason = guest_trace_agreement(
            OnAbort::Serror,
            console.guest_trace.as_ref(),
            &aborts,
            false,
        )
        .unwrap()
        .reason
        .unwrap();
        assert!(
            reason.contains("the root abort is at rzg3s_thermal_change_mode+0x44")
                && reason.contains("TSU_SM write"),
            "{reason}"
        );
    }

    #[test]
    fn a_guest_report_of_the_other_exception_class_disagrees() {
        // The plugin says it made the guest take a synchronous external abort (a read), but
        // the console has an SError.
        let (mut aborts, console, _) = serror_aborts(testdata::SERROR_EVENTS);
        let root = aborts.iter_mut().find(|abort| abort.root).unwrap();
        root.serror.as_mut().unwrap().exception = "synchronous-external-abort".into();
        let reason = guest_trace_agreement(
            OnAbort::Serror,
            console.guest_trace.as_ref(),
            &aborts,
            false,
        )
        .unwrap()
        .reason
        .unwrap();
        assert!(
            reason.contains("take a synchronous-external-abort")
                && reason.contains("SError Interrupt on CPU0"),
            "{reason}"
        );
    }

    #[test]
    fn a_diverted_abort_without_the_guests_report_disagrees() {
        let (aborts, _, _) = serror_aborts(testdata::SERROR_EVENTS);
        let silent = ConsoleReport::parse(testdata::PREFIX_ADC_UNBIND_CONSOLE);
        let agreement =
            guest_trace_agreement(OnAbort::Serror, silent.guest_trace.as_ref(), &aborts, false)
                .unwrap();
        assert!(agreement
            .reason
            .unwrap()
            .contains("the console shows no `SError Interrupt` or `Internal error: synchronous external abort` line"));
        // A console cut off after the SError line: no register dump.
        let cut: String = testdata::SERROR_CONSOLE
            .lines()
            .take_while(|line| !line.starts_with("CPU:"))
            .map(|line| format!("{line}\n"))
            .collect();
        let cut = ConsoleReport::parse(&cut);
        let reason =
            guest_trace_agreement(OnAbort::Serror, cut.guest_trace.as_ref(), &aborts, false)
                .unwrap()
                .reason
                .unwrap();
        assert!(reason.contains("no register dump"), "{reason}");
        // An abort the plugin did not mark diverted.
        let undiverted = testdata::SERROR_EVENTS.replace("\"diverted\":true,", "");
        let (aborts, console, _) = serror_aborts(&undiverted);
        let reason = guest_trace_agreement(
            OnAbort::Serror,
            console.guest_trace.as_ref(),
            &aborts,
            false,
        )
        .unwrap()
        .reason
        .unwrap();
        assert!(reason.contains("did not record a divert"), "{reason}");
    }

    #[test]
    fn missing_done_marker_is_an_error() {
        let console = testdata::UPSTREAM_ADC_UNBIND_CONSOLE.replace("# rzgate-done", "");
        let e = Case::new(&console, testdata::CLEAN_EVENTS).error();
        assert!(e.contains("rzgate-done"), "{e}");
        // Even when aborts were seen: under `continue` the guest must finish.
        let console = testdata::PREFIX_ADC_UNBIND_CONSOLE.replace("# rzgate-done", "");
        let e = Case::new(&console, testdata::PREFIX_ADC_UNBIND_EVENTS).error();
        assert!(e.contains("rzgate-done"), "{e}");
    }

    #[test]
    fn missing_events_or_summary_is_an_error() {
        let mut case = Case::new(testdata::UPSTREAM_ADC_UNBIND_CONSOLE, "");
        let console = ConsoleReport::parse(&case.console);
        let events = EventsReport {
            missing: true,
            ..EventsReport::default()
        };
        let v = classify(&Evidence {
            exit: case.exit,
            console: &console,
            events: &events,
            on_abort: case.on_abort,
            requested_faults: &[],
            qemu_stderr_tail: "",
        });
        assert!(v.error.unwrap().starts_with("no events file"));
        let without_summary: String = testdata::CLEAN_EVENTS
            .lines()
            .filter(|l| !l.contains("\"summary\""))
            .map(|l| format!("{l}\n"))
            .collect();
        case.events = format!("{without_summary}{{\"type\":\"gate\",\"se");
        let e = case.error();
        assert!(
            e.contains("summary is missing") && e.contains("truncated"),
            "{e}"
        );
    }

    #[test]
    fn armed_fault_that_never_fired_is_an_error() {
        let mut case = Case::new(
            testdata::UPSTREAM_ADC_UNBIND_CONSOLE,
            &testdata::CLEAN_EVENTS.replace(
                "\"faults_armed\":[]",
                "\"faults_armed\":[\"adc-sresb-stuck\"]",
            ),
        );
        case.faults = vec!["adc-sresb-stuck".into()];
        assert_eq!(
            case.error(),
            "fault adc-sresb-stuck was armed but never fired"
        );
        // Requested but not armed by the plugin.
        case.events = testdata::CLEAN_EVENTS.to_string();
        assert!(case
            .error()
            .contains("was requested but the plugin did not arm it"));
        // Armed and fired: fine.
        case.events = testdata::CLEAN_EVENTS
            .replace(
                "\"faults_armed\":[]",
                "\"faults_armed\":[\"adc-sresb-stuck\"]",
            )
            .replace(
                "\"faults_fired\":[]",
                "\"faults_fired\":[\"adc-sresb-stuck\"]",
            );
        assert_eq!(case.verdict().outcome, Outcome::Clean);
    }

    #[test]
    fn failing_ktap_without_abort_is_an_error_quoting_the_lines() {
        let console = testdata::UPSTREAM_ADC_UNBIND_CONSOLE.replace(
            "ok 3 adc bound again",
            "not ok 3 adc bound again # no iio device",
        );
        let e = Case::new(&console, testdata::CLEAN_EVENTS).error();
        assert!(
            e.contains("not ok 3 adc bound again # no iio device"),
            "{e}"
        );
    }
}
