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
//!    event: the plugin stops QEMU that way under `serror` too, until it can divert the
//!    guest);
//! 3. the guest kernel panicked (`Kernel panic - not syncing`), except under `serror`
//!    after an abort, where the panic is the plugin's doing and expected;
//! 4. the guest did not print `# rzgate-done`, unless an abort stopped it (`halt`: QEMU
//!    stopped; `serror`: the kernel panicked);
//! 5. the events file or its closing `summary` is missing (except after a `halt`, which
//!    stops QEMU before the summary can be written);
//! 6. a fault the cell asked for was not armed, or an armed fault never fired ("fault
//!    adc-sresb-stuck was armed but never fired"): the test did not exercise what it is
//!    about.
//!
//! **abort** otherwise, when the plugin saw at least one gated access.
//!
//! **clean** otherwise, when every KTAP result passed (`ok`, or a `# SKIP`), there was at
//! least one, and the plan matches the number of top-level results.
//!
//! **error** otherwise, with the failing KTAP lines as the reason.
//!
//! The guest's own KTAP results are kept in the cell whatever the outcome (the console may
//! show a consequence of an abort that the outcome `abort` does not spell out).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::console::ConsoleReport;
use crate::events::EventsReport;
use crate::matrix::OnAbort;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Clean,
    Abort,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Clean => "clean",
            Outcome::Abort => "abort",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the QEMU process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuExit {
    Exited(i32),
    Signaled(i32),
    /// The runner killed it at the timeout.
    TimedOut(Duration),
}

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
}

impl Verdict {
    fn error(reason: impl Into<String>) -> Verdict {
        Verdict {
            outcome: Outcome::Error,
            error: Some(reason.into()),
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
        QemuExit::Exited(0) => false,
        // The plugin's own `halt` event vouches for the status too: until the SError
        // diversion exists, the plugin stops QEMU under `serror` exactly as under `halt`.
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

    // 3: a panic is expected only as the plugin's SError diversion.
    let serror_panic = evidence.on_abort == OnAbort::Serror && aborted && console.panic.is_some();
    if let Some(panic) = &console.panic {
        if !serror_panic {
            return Verdict::error(format!("the guest kernel panicked: {panic}"));
        }
    }

    // 4: the script must have run to its end unless an abort legitimately stopped it.
    if !console.done && !halted && !serror_panic {
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
        };
    }
    match console.ktap_failure() {
        None => Verdict {
            outcome: Outcome::Clean,
            error: None,
        },
        Some(reason) => Verdict::error(reason),
    }
}

#[cfg(test)]
mod tests {
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
                error: None
            }
        );
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
        // Under serror the plugin (for now) halts as well: its halt event vouches for it.
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
