//! Parsing of the guest console (QEMU's `-serial stdio` output).
//!
//! The guest's `/init` speaks KTAP (docs/contracts.md, "Guest side"):
//!
//! ```text
//! KTAP version 1
//! 1..3
//! # rzgate-step 1 adc-unbind: unbind rzg2l-adc
//! ok 1 adc bound
//! not ok 2 adc unbind # sysfs write failed
//! ok 3 tsu read # SKIP no zone
//! # rzgate-done
//! ```
//!
//! Kernel messages interleave with it on the same console, so the parser picks the lines it
//! knows and ignores the rest. A printk timestamp prefix (`[    0.380000] `) is stripped
//! first, so KTAP printed through the kernel log parses as well. Indented result lines are
//! nested subtests: they are kept (with their depth) but only top-level results count
//! against the plan.
//!
//! The kernel writes its messages to the UART whole, but between any two bytes of what a
//! guest program writes: a KTAP line can come out as `ok 3 bind x[    1.2] at24 ...` and
//! its end (the newline) only after the kernel's line. The runner boots with printk
//! timestamps (`printk.time=1`) so that such a line can be told apart and put back
//! together ([`untangle`]).

/// The guest's last line of a test script (before its power-off).
pub const DONE_MARKER: &str = "# rzgate-done";
/// `# rzgate-expect-reset <ms>`: see [`ConsoleReport::expect_reset_ms`].
pub const EXPECT_RESET_MARKER: &str = "# rzgate-expect-reset ";
/// The guest's line when it waits for its test at the snapshot point (`rzgate.snapshot=1`).
pub const READY_MARKER: &str = "# rzgate-snapshot-ready";

use serde::{Deserialize, Serialize};

/// One KTAP result line.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct KtapResult {
    pub number: u32,
    pub ok: bool,
    pub description: String,
    /// The text after `#`: a directive (`SKIP ...`, `TODO ...`) or, for `not ok`, the
    /// guest's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directive: Option<String>,
    /// Nesting depth (0 = top level; each level is 4 spaces of indentation in KTAP).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub depth: u32,
    /// The line as printed, for error reasons.
    #[serde(skip)]
    pub line: String,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl KtapResult {
    /// A result counts as passing when it is `ok`, or when it is skipped (`# SKIP`): a
    /// skip is the guest saying "not applicable here", not a failure.
    pub fn passed(&self) -> bool {
        self.ok || self.is_skip()
    }

    pub fn is_skip(&self) -> bool {
        self.directive
            .as_deref()
            .is_some_and(|d| d.trim_start().to_ascii_uppercase().starts_with("SKIP"))
    }
}

/// What the console says.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConsoleReport {
    /// A `KTAP version N` header was seen.
    pub ktap_version: Option<u32>,
    /// The top-level plan `1..N`.
    pub plan: Option<u32>,
    pub results: Vec<KtapResult>,
    /// Step texts from `# rzgate-step N <test-id>: <text>`, in console order.
    pub steps: Vec<Step>,
    /// The guest printed `# rzgate-done`: the script ran to its end.
    pub done: bool,
    /// The guest printed `# rzgate-expect-reset <ms>`: it stopped pinging a watchdog it
    /// programmed for `<ms>` and expects the machine to reset (the runner checks the
    /// plugin's `watchdog_reset` event instead of `# rzgate-done`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expect_reset_ms: Option<u64>,
    /// The first `Kernel panic - not syncing: ...` line, if any.
    pub panic: Option<String>,
    /// The guest kernel's own report of an exception: the SError or synchronous external
    /// abort `on_abort=serror` made it take, or a fault of its own (an oops at a bad kernel
    /// address), whichever it printed first.
    pub guest_trace: Option<GuestTrace>,
    /// Number of console lines.
    pub lines: usize,
}

/// What the guest kernel printed for the exception `on_abort=serror` made it take, as on the
/// board: for a gated write an SError,
///
/// ```text
/// SError Interrupt on CPU0, code 0x00000000be000011 -- SError
/// ...
/// pc : rzg3s_thermal_change_mode+0x48/0x114
/// lr : rzg3s_thermal_change_mode+0x38/0x114
/// ...
/// Kernel panic - not syncing: Asynchronous SError Interrupt
/// ...
/// Call trace:
///  show_stack+0x14/0x1c (C)
///  ...
///  el1h_64_error+0x6c/0x70
///  rzg3s_thermal_change_mode+0x48/0x114 (P)
///  thermal_zone_device_set_mode+0x44/0x7c
///  ...
/// ```
///
/// and for a gated read a synchronous external abort (an oops, `oops=panic`):
///
/// ```text
/// Internal error: synchronous external abort: 0000000096000010 [#1]  SMP
/// ...
/// pc : rzg2l_adc_pm_runtime_suspend+0x14/0x68
/// ...
/// Call trace:
///  rzg2l_adc_pm_runtime_suspend+0x14/0x68 (P)
///  pm_generic_runtime_suspend+0x28/0x3c
///  ...
/// Kernel panic - not syncing: synchronous external abort: Fatal exception
/// ```
///
/// The guest's own faults are reported the same way, with the address it could not
/// access: a driver that dereferences a NULL pointer (no gated access involved),
///
/// ```text
/// Unable to handle kernel NULL pointer dereference at virtual address 0000000000000024
/// ...
/// Internal error: Oops: 0000000096000004 [#1]  SMP
/// ...
/// pc : rz_dmac_irq_handler+0x28/0xac
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
pub struct GuestTrace {
    /// "serror" or "synchronous-external-abort" (the names of the plugin's events), or
    /// "oops": the kernel's own fault at an address it could not access.
    pub exception: String,
    /// `SError Interrupt on CPU0, code 0x... -- SError`, `Internal error: synchronous
    /// external abort: 0000000096000010 [#1] ...` or `Unable to handle kernel NULL pointer
    /// dereference at virtual address 0000000000000024`
    pub exception_line: String,
    /// An oops's virtual address (`... at virtual address <hex>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fault_address: Option<u64>,
    /// The register dump's `pc :` (`function+0xoff/0xsize`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pc: Option<String>,
    /// The register dump's `lr :`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lr: Option<String>,
    /// The frames of the call trace printed with the panic (the first `Call trace:` after
    /// the panic line, else after the SError line), as printed (`func+0xoff/0xsize (P)`).
    pub call_trace: Vec<String>,
    /// The `Kernel panic - not syncing: ...` line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub panic: Option<String>,
}

impl GuestTrace {
    /// The function of the `pc :` line.
    pub fn pc_function(&self) -> Option<&str> {
        self.pc.as_deref().map(frame_function)
    }

    /// The frame marked `(P)`: the interrupted pc, where the trace crosses the exception.
    pub fn interrupted_frame(&self) -> Option<&str> {
        self.call_trace
            .iter()
            .map(String::as_str)
            .find(|frame| frame.ends_with("(P)"))
    }
}

/// `func+0x48/0x114 (P)` -> `func`.
pub fn frame_function(frame: &str) -> &str {
    let frame = frame.trim();
    frame.split(['+', ' ']).next().unwrap_or(frame)
}

/// `func+0x48/0x114 (P)` -> `0x48`, when the frame has an offset.
pub fn frame_offset(frame: &str) -> Option<u64> {
    let (_, rest) = frame.trim().split_once('+')?;
    let offset = rest.split(['/', ' ']).next()?;
    u64::from_str_radix(offset.strip_prefix("0x")?, 16).ok()
}

/// One line of a call trace: `func+0xoff/0xsize`, optionally ` [module]` and ` (P)`.
fn is_trace_frame(body: &str) -> bool {
    let mut words = body.split_whitespace();
    let Some(location) = words.next() else {
        return false;
    };
    let symbolic = location
        .split_once('+')
        .is_some_and(|(name, offset)| !name.is_empty() && offset.starts_with("0x"));
    let hex = location.starts_with("0x") && location.len() > 2;
    (symbolic || hex)
        && words.all(|word| {
            (word.starts_with('[') && word.ends_with(']'))
                || (word.starts_with('(') && word.ends_with(')'))
        })
}

/// The exception names of a [`GuestTrace`] (and of the plugin's abort events).
pub const SERROR: &str = "serror";
pub const SYNC_EXTERNAL_ABORT: &str = "synchronous-external-abort";
/// The guest kernel's own fault: arm64's do_page_fault/die_kernel_fault report for a kernel
/// access to an address nothing maps (NULL pointer dereference or paging request).
pub const OOPS: &str = "oops";

/// `... at virtual address 0000000000000024` -> 0x24.
fn oops_address(line: &str) -> Option<u64> {
    let (_, rest) = line.split_once("at virtual address ")?;
    let hex = rest.split_whitespace().next()?;
    u64::from_str_radix(hex.trim_start_matches("0x"), 16).ok()
}

/// Collects the guest's exception report (an SError, a synchronous external abort or an
/// oops) while the console is parsed, line by line.
#[derive(Default)]
struct TraceParser {
    trace: Option<GuestTrace>,
    /// In a `Call trace:` block that belongs to the report.
    in_trace: bool,
    /// The kept call trace came from after the panic line (final).
    after_panic: bool,
    panic_seen: bool,
}

impl TraceParser {
    fn line(&mut self, body: &str) {
        let exception = [
            ("SError Interrupt on CPU", SERROR),
            (
                "Internal error: synchronous external abort: ",
                SYNC_EXTERNAL_ABORT,
            ),
            ("Unable to handle kernel ", OOPS),
        ]
        .into_iter()
        .find_map(|(start, name)| body.find(start).map(|pos| (pos, name)));
        if let Some((pos, name)) = exception {
            if self.trace.is_none() {
                let line = body[pos..].trim_end();
                self.trace = Some(GuestTrace {
                    exception: name.to_string(),
                    exception_line: line.to_string(),
                    fault_address: (name == OOPS).then(|| oops_address(line)).flatten(),
                    ..GuestTrace::default()
                });
            }
            return;
        }
        let Some(trace) = self.trace.as_mut() else {
            return;
        };
        if self.in_trace {
            if is_trace_frame(body) {
                trace.call_trace.push(body.to_string());
                return;
            }
            self.in_trace = false;
        }
        if let Some(pos) = body.find("Kernel panic - not syncing") {
            if trace.panic.is_none() {
                trace.panic = Some(body[pos..].trim_end().to_string());
                self.panic_seen = true;
            }
        } else if let Some(pc) = body.strip_prefix("pc : ") {
            trace.pc.get_or_insert_with(|| pc.trim().to_string());
        } else if let Some(lr) = body.strip_prefix("lr : ") {
            trace.lr.get_or_insert_with(|| lr.trim().to_string());
        } else if body == "Call trace:" && !self.after_panic {
            // A trace after the panic line replaces one seen before it (a WARNING's).
            if self.panic_seen || trace.call_trace.is_empty() {
                trace.call_trace.clear();
                self.after_panic = self.panic_seen;
                self.in_trace = true;
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct Step {
    pub n: u32,
    pub test: String,
    pub text: String,
}

impl ConsoleReport {
    pub fn parse(console: &str) -> ConsoleReport {
        let mut report = ConsoleReport::default();
        let mut guest_trace = TraceParser::default();
        for raw in untangle(console) {
            report.lines += 1;
            let line = strip_printk_timestamp(&raw);
            guest_trace.line(line.trim());
            if let Some(pos) = line.find("Kernel panic - not syncing") {
                if report.panic.is_none() {
                    report.panic = Some(line[pos..].trim_end().to_string());
                }
                continue;
            }
            let indent = line.len() - line.trim_start_matches(' ').len();
            let body = line.trim();
            if let Some(version) = body.strip_prefix("KTAP version ") {
                if indent == 0 {
                    report.ktap_version = version.trim().parse().ok();
                }
            } else if let Some(count) = body.strip_prefix("1..") {
                if indent == 0 {
                    if let Ok(n) = count.trim().parse() {
                        report.plan = Some(n);
                    }
                }
            } else if body == DONE_MARKER {
                report.done = true;
            } else if let Some(ms) = body.strip_prefix(EXPECT_RESET_MARKER) {
                report.expect_reset_ms = ms.trim().parse().ok();
            } else if let Some(step) = body.strip_prefix("# rzgate-step ") {
                if let Some(step) = parse_step(step) {
                    report.steps.push(step);
                }
            } else if let Some(result) = parse_result(body, indent) {
                report.results.push(result);
            }
        }
        report.guest_trace = guest_trace.trace;
        report
    }

    /// The text of step `n` (the last one printed with that number).
    pub fn step_text(&self, n: u32) -> Option<&str> {
        self.steps
            .iter()
            .rev()
            .find(|s| s.n == n)
            .map(|s| s.text.as_str())
    }

    pub fn top_level_results(&self) -> impl Iterator<Item = &KtapResult> {
        self.results.iter().filter(|r| r.depth == 0)
    }

    /// The guest ran its checks to the end (results as many as the plan) and some failed:
    /// what the test observed differs from what it expects.
    pub fn checks_failed(&self) -> bool {
        let top_level = self.top_level_results().count();
        self.top_level_results().any(|r| !r.passed())
            && self.plan.is_none_or(|plan| plan as usize == top_level)
    }

    /// The failing top-level checks, as `not ok N description` (without the guest's reason,
    /// which may quote values that differ between runs).
    pub fn failing_checks(results: &[KtapResult]) -> Vec<String> {
        results
            .iter()
            .filter(|r| r.depth == 0 && !r.passed())
            .map(|r| format!("not ok {} {}", r.number, r.description))
            .collect()
    }

    /// Why the KTAP output does not amount to "every test passed", or `None` when it does:
    /// no results at all, a failing line (quoted as printed), or fewer/more top-level
    /// results than the plan announced.
    pub fn ktap_failure(&self) -> Option<String> {
        // KTAP: a parent's result line is the verdict on its subtest. The guest may pass a
        // subtest with failing lines on purpose (the DT selftest when a test leaves a
        // device unbound by design), so only top-level lines count; the nested ones stay
        // in the console log and in the cell's KTAP record.
        let failing: Vec<&str> = self
            .top_level_results()
            .filter(|r| !r.passed())
            .map(|r| r.line.as_str())
            .collect();
        if !failing.is_empty() {
            return Some(format!("failing KTAP lines: {}", failing.join(" | ")));
        }
        let top_level = self.top_level_results().count();
        if top_level == 0 {
            return Some("the guest printed no KTAP results".to_string());
        }
        if let Some(plan) = self.plan {
            if plan as usize != top_level {
                return Some(format!(
                    "KTAP plan 1..{plan} but {top_level} top-level results"
                ));
            }
        }
        None
    }
}

/// `[    0.380000] text` -> `text`. Lines without the prefix are returned unchanged.
fn strip_printk_timestamp(line: &str) -> &str {
    let Some(rest) = line.strip_prefix('[') else {
        return line;
    };
    let Some(close) = rest.find(']') else {
        return line;
    };
    let stamp = rest[..close].trim();
    if !stamp.is_empty() && stamp.chars().all(|c| c.is_ascii_digit() || c == '.') {
        rest[close + 1..]
            .strip_prefix(' ')
            .unwrap_or(&rest[close + 1..])
    } else {
        line
    }
}

/// The console's lines with every kernel message that landed inside a program's line taken
/// out of it: `ok 3 bi[    1.2] k\r\nnd x\r\n` gives `[    1.2] k` and `ok 3 bind x`,
/// in the order they were finished. A kernel message is recognised by its printk timestamp
/// (`[%5lu.%06lu] `); it runs to the end of its line. Consoles without timestamps come out
/// line by line, as printed.
pub fn untangle(console: &str) -> Vec<String> {
    let mut lines = Vec::new();
    // The start of a program's line that a kernel message interrupted.
    let mut pending = String::new();
    for raw in console.lines() {
        let line = raw.trim_end_matches('\r');
        match printk_timestamp_at(line) {
            Some(0) => lines.push(line.to_string()),
            Some(pos) => {
                pending.push_str(&line[..pos]);
                lines.push(line[pos..].to_string());
            }
            None => {
                pending.push_str(line);
                lines.push(std::mem::take(&mut pending));
            }
        }
    }
    if !pending.is_empty() {
        lines.push(pending);
    }
    lines
}

/// Where the first printk timestamp (`[` spaces, seconds, `.`, six digits, `] `) in `line`
/// starts.
fn printk_timestamp_at(line: &str) -> Option<usize> {
    line.match_indices('[').map(|(pos, _)| pos).find(|&pos| {
        let Some((stamp, rest)) = line[pos + 1..].split_once(']') else {
            return false;
        };
        let Some((secs, micros)) = stamp.trim_start_matches(' ').split_once('.') else {
            return false;
        };
        !secs.is_empty()
            && secs.bytes().all(|b| b.is_ascii_digit())
            && micros.len() == 6
            && micros.bytes().all(|b| b.is_ascii_digit())
            && (rest.is_empty() || rest.starts_with(' '))
    })
}

/// `N <test-id>: <text>` (the part after `# rzgate-step `).
fn parse_step(rest: &str) -> Option<Step> {
    let (n, rest) = rest.trim().split_once(' ')?;
    let n = n.parse().ok()?;
    let (test, text) = match rest.split_once(':') {
        Some((test, text)) => (test.trim(), text.trim()),
        None => ("", rest.trim()),
    };
    Some(Step {
        n,
        test: test.to_string(),
        text: text.to_string(),
    })
}

/// `ok N desc [# directive]` / `not ok N desc [# directive]`.
fn parse_result(body: &str, indent: usize) -> Option<KtapResult> {
    let (ok, rest) = if let Some(rest) = body.strip_prefix("not ok ") {
        (false, rest)
    } else if let Some(rest) = body.strip_prefix("ok ") {
        (true, rest)
    } else {
        return None;
    };
    let (number, rest) = match rest.split_once(' ') {
        Some((n, rest)) => (n, rest),
        None => (rest, ""),
    };
    let number = number.parse().ok()?;
    let (description, directive) = match rest.split_once('#') {
        Some((desc, directive)) => (desc.trim(), Some(directive.trim().to_string())),
        None => (rest.trim(), None),
    };
    let description = description.strip_prefix("- ").unwrap_or(description);
    Some(KtapResult {
        number,
        ok,
        description: description.to_string(),
        directive,
        depth: (indent / 4) as u32,
        line: body.to_string(),
    })
}

/// The last `n` lines of the console, for error reports.
pub fn tail(console: &str, n: usize) -> Vec<String> {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(n)..]
        .iter()
        .map(|l| l.trim_end_matches('\r').to_string())
        .collect()
}

/// Whether `text` holds `marker` as a whole line (the serial console ends lines with CRLF).
pub fn has_line(text: &[u8], marker: &str) -> bool {
    text.split(|&b| b == b'\n')
        .rev()
        .skip(1) // the unfinished last line
        .any(|line| line.strip_suffix(b"\r").unwrap_or(line) == marker.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ready_marker_counts_only_as_a_whole_finished_line() {
        assert!(has_line(
            b"boot\r\n# rzgate-snapshot-ready\r\n",
            READY_MARKER
        ));
        assert!(has_line(b"# rzgate-snapshot-ready\n", READY_MARKER));
        assert!(!has_line(b"boot\r\n# rzgate-snapshot-ready", READY_MARKER));
        assert!(!has_line(b"echo '# rzgate-snapshot-ready'\n", READY_MARKER));
    }

    const CLEAN: &str = "\
Booting Linux on physical CPU 0x0000000000 [0x412fd050]\r
[    0.123456] rzg2l-adc 7e058000.adc: probed\r
KTAP version 1\r
1..3\r
# rzgate-step 1 adc-unbind: unbind rzg2l-adc\r
ok 1 adc bound\r
# rzgate-step 2 adc-unbind: bind rzg2l-adc again\r
ok 2 - adc unbind\r
ok 3 tsu read # SKIP no thermal zone\r
# rzgate-done\r
reboot: Power down\r
";

    #[test]
    fn parses_ktap_steps_and_done() {
        let c = ConsoleReport::parse(CLEAN);
        assert_eq!(c.ktap_version, Some(1));
        assert_eq!(c.plan, Some(3));
        assert_eq!(c.results.len(), 3);
        assert_eq!(c.results[1].description, "adc unbind");
        assert_eq!(
            c.results[2].directive.as_deref(),
            Some("SKIP no thermal zone")
        );
        assert!(c.results.iter().all(KtapResult::passed));
        assert!(c.done);
        assert_eq!(c.panic, None);
        assert_eq!(c.step_text(2), Some("bind rzg2l-adc again"));
        assert_eq!(c.steps[0].test, "adc-unbind");
        assert_eq!(c.ktap_failure(), None);
    }

    #[test]
    fn failing_lines_are_quoted() {
        let c = ConsoleReport::parse(
            "KTAP version 1\n1..2\nok 1 a\nnot ok 2 adc read ch3 # got 0 expected 1500\n# rzgate-done\n",
        );
        let failure = c.ktap_failure().unwrap();
        assert!(
            failure.contains("not ok 2 adc read ch3 # got 0 expected 1500"),
            "{failure}"
        );
        assert_eq!(
            c.results[1].directive.as_deref(),
            Some("got 0 expected 1500")
        );
        assert!(!c.results[1].passed());
    }

    #[test]
    fn plan_mismatch_and_no_results_are_failures() {
        let c = ConsoleReport::parse("KTAP version 1\n1..3\nok 1 a\n# rzgate-done\n");
        assert!(c.ktap_failure().unwrap().contains("plan 1..3 but 1"));
        let c = ConsoleReport::parse("# rzgate-done\n");
        assert!(c.ktap_failure().unwrap().contains("no KTAP results"));
    }

    #[test]
    fn nested_results_do_not_count_against_the_plan() {
        let c = ConsoleReport::parse(
            "KTAP version 1\n1..1\n    KTAP version 1\n    1..2\n    ok 1 sub a\n    ok 2 sub b\nok 1 parent\n",
        );
        assert_eq!(c.plan, Some(1));
        assert_eq!(c.results.len(), 3);
        assert_eq!(c.results[0].depth, 1);
        assert_eq!(c.ktap_failure(), None);
        // The parent's line is the verdict: a subtest failure the parent accepts (a device
        // the test leaves unbound on purpose) does not fail the cell.
        let c = ConsoleReport::parse("1..1\n    not ok 1 sub # broke\nok 1 parent # as intended\n");
        assert_eq!(c.ktap_failure(), None);
        // A failing parent is quoted alone (its nested failure adds nothing).
        let c = ConsoleReport::parse(
            "1..1\n    TAP version 13\n    1..2\n    ok 1 a # SKIP\n    not ok 2 /platform-bus@c000000\nnot ok 1 dt-unprobed-devices # /platform-bus@c000000\n",
        );
        assert_eq!(
            c.ktap_failure().unwrap(),
            "failing KTAP lines: not ok 1 dt-unprobed-devices # /platform-bus@c000000"
        );
    }

    /// What prefix/adc-probe-failure printed under `serror` (a gated read of ADM0), cut.
    const SYNC_EXTERNAL_ABORT_CONSOLE: &str = "\
Internal error: synchronous external abort: 0000000096000010 [#1]  SMP
CPU: 0 UID: 0 PID: 1 Comm: init Tainted: G   M                7.2.13 #23 PREEMPTLAZY
pstate: 20400005 (nzCv daif +PAN -UAO -TCO -DIT -SSBS BTYPE=--)
pc : rzg2l_adc_pm_runtime_suspend+0x14/0x4c
lr : pm_generic_runtime_suspend+0x28/0x40
sp : ffff8000805fb9f0
Call trace:
 rzg2l_adc_pm_runtime_suspend+0x14/0x4c (P)
 pm_generic_runtime_suspend+0x28/0x40
 __rpm_callback+0x44/0x1e0
Code: 910003fd f9403c00 f941a801 f9400020 (b9400000)
---[ end trace 0000000000000000 ]---
Kernel panic - not syncing: synchronous external abort: Fatal exception
";

    #[test]
    fn a_synchronous_external_abort_is_the_guests_report_too() {
        let c = ConsoleReport::parse(SYNC_EXTERNAL_ABORT_CONSOLE);
        let trace = c.guest_trace.expect("a synchronous external abort report");
        assert_eq!(trace.exception, SYNC_EXTERNAL_ABORT);
        assert_eq!(
            trace.exception_line,
            "Internal error: synchronous external abort: 0000000096000010 [#1]  SMP"
        );
        assert_eq!(trace.pc_function(), Some("rzg2l_adc_pm_runtime_suspend"));
        assert_eq!(
            trace.interrupted_frame(),
            Some("rzg2l_adc_pm_runtime_suspend+0x14/0x4c (P)")
        );
        assert_eq!(
            trace.call_trace.len(),
            3,
            "the trace before the panic line is kept"
        );
        assert_eq!(
            trace.panic.as_deref(),
            Some("Kernel panic - not syncing: synchronous external abort: Fatal exception")
        );
        // Other oopses are not this report.
        let other = ConsoleReport::parse(
            "Internal error: Oops: 0000000096000005 [#1]  SMP
",
        );
        assert!(other.guest_trace.is_none());
    }

    #[test]
    fn detects_panic_and_printk_prefixed_ktap() {
        let c = ConsoleReport::parse(
            "[    0.500000] SError Interrupt on CPU0, code 0x00000000be000011 -- SError\n\
             [    0.500100] Kernel panic - not syncing: Asynchronous SError Interrupt\n\
             [    0.400000] ok 1 from kmsg\n",
        );
        assert_eq!(
            c.panic.as_deref(),
            Some("Kernel panic - not syncing: Asynchronous SError Interrupt")
        );
        assert_eq!(c.results[0].description, "from kmsg");
        assert!(!c.done);
    }

    #[test]
    fn the_guests_serror_report_is_parsed_from_the_recorded_console() {
        let c = ConsoleReport::parse(crate::testdata::SERROR_CONSOLE);
        let trace = c.guest_trace.expect("an SError report");
        assert_eq!(
            trace.exception_line,
            "SError Interrupt on CPU0, code 0x00000000be000011 -- SError"
        );
        assert_eq!(
            trace.pc.as_deref(),
            Some("rzg3s_thermal_change_mode+0x48/0x114")
        );
        assert_eq!(
            trace.lr.as_deref(),
            Some("rzg3s_thermal_change_mode+0x38/0x114")
        );
        assert_eq!(trace.pc_function(), Some("rzg3s_thermal_change_mode"));
        assert_eq!(
            trace.panic.as_deref(),
            Some("Kernel panic - not syncing: Asynchronous SError Interrupt")
        );
        assert_eq!(
            trace.call_trace.first().unwrap(),
            "show_stack+0x14/0x1c (C)"
        );
        assert_eq!(trace.call_trace.last().unwrap(), "el0t_64_sync+0x154/0x158");
        assert_eq!(trace.call_trace.len(), 33);
        let entry: Vec<&str> = trace.call_trace[6..16].iter().map(String::as_str).collect();
        assert_eq!(
            entry,
            [
                "arm64_serror_panic+0x6c/0x80",
                "do_serror+0x38/0x68",
                "el1h_64_error_handler+0x30/0x48",
                "el1h_64_error+0x6c/0x70",
                "rzg3s_thermal_change_mode+0x48/0x114 (P)",
                "thermal_zone_device_set_mode+0x44/0x7c",
                "thermal_zone_device_disable+0x10/0x20",
                "devm_thermal_of_zone_release+0x18/0x2c",
                "dr_node_release+0x18/0x20",
                "devres_release_all+0x8c/0xf4",
            ]
        );
        assert_eq!(
            trace.interrupted_frame(),
            Some("rzg3s_thermal_change_mode+0x48/0x114 (P)")
        );
        // The KTAP before it is still read; the panic is recorded too.
        assert_eq!(c.results.len(), 1);
        assert!(c.panic.is_some() && !c.done);
    }

    #[test]
    fn the_panics_trace_wins_over_an_earlier_warning_and_timestamps_are_stripped() {
        let c = ConsoleReport::parse(
            "[    1.000000] SError Interrupt on CPU0, code 0x00000000be000011 -- SError\n\
             [    1.000001] pc : f+0x14/0x40\n\
             [    1.000002] lr : g+0x2c/0x44\n\
             [    1.000003] WARNING: CPU: 0 at somewhere\n\
             [    1.000004] Call trace:\n\
             [    1.000005]  warn_slowpath+0x10/0x20 (C)\n\
             [    1.000006] ---[ end trace ]---\n\
             [    1.000007] Kernel panic - not syncing: Asynchronous SError Interrupt\n\
             [    1.000008] Call trace:\n\
             [    1.000009]  show_stack+0x14/0x1c (C)\n\
             [    1.000010]  f+0x14/0x40 (P)\n\
             [    1.000011]  g+0x2c/0x44\n\
             [    1.000012]  0xffff800080001234\n\
             [    1.000013]  mod_fn+0x8/0x10 [some_module]\n\
             [    1.000014] Kernel Offset: disabled\n\
             [    1.000015] Call trace:\n\
             [    1.000016]  later+0x0/0x4\n",
        );
        let trace = c.guest_trace.unwrap();
        assert_eq!(trace.pc.as_deref(), Some("f+0x14/0x40"));
        assert_eq!(
            trace.call_trace,
            vec![
                "show_stack+0x14/0x1c (C)",
                "f+0x14/0x40 (P)",
                "g+0x2c/0x44",
                "0xffff800080001234",
                "mod_fn+0x8/0x10 [some_module]"
            ]
        );
        // Without an SError line there is no guest trace, panic or not.
        let c = ConsoleReport::parse("Kernel panic - not syncing: VFS\nCall trace:\n x+0x0/0x4\n");
        assert!(c.guest_trace.is_none() && c.panic.is_some());
    }

    /// The guest's own NULL-pointer oops (replay-dmac-irq: a channel handler run at its
    /// request, before ch_base was set), as 7.2 prints it.
    const OOPS_CONSOLE: &str = "\
[    0.400653] Unable to handle kernel NULL pointer dereference at virtual address 0000000000000024
[    0.400765] Mem abort info:
[    0.400780]   ESR = 0x0000000096000004
[    0.401289] Internal error: Oops: 0000000096000004 [#1]  SMP
[    0.404147] pc : rz_dmac_irq_handler+0x28/0xac
[    0.404897] lr : __handle_irq_event_percpu+0x44/0x1b4
[    0.407986] Call trace:
[    0.408256]  rz_dmac_irq_handler+0x28/0xac (P)
[    0.408627]  __handle_irq_event_percpu+0x44/0x1b4
[    0.410143]  _raw_spin_unlock_irqrestore+0x8/0x40 (P)
[    0.410283]  request_threaded_irq+0xc4/0x190
[    0.410537]  rz_dmac_probe+0x2f0/0x7e0
[    0.415792] ---[ end trace 0000000000000000 ]---
[    0.416372] Kernel panic - not syncing: Oops: Fatal exception in interrupt
";

    #[test]
    fn a_kernel_oops_is_a_guest_trace_with_its_address() {
        let c = ConsoleReport::parse(OOPS_CONSOLE);
        let trace = c.guest_trace.expect("an oops report");
        assert_eq!(trace.exception, OOPS);
        assert_eq!(
            trace.exception_line,
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000024"
        );
        assert_eq!(trace.fault_address, Some(0x24));
        assert_eq!(trace.pc_function(), Some("rz_dmac_irq_handler"));
        assert_eq!(trace.call_trace.len(), 5);
        assert_eq!(
            trace.panic.as_deref(),
            Some("Kernel panic - not syncing: Oops: Fatal exception in interrupt")
        );
        // A paging request names its address the same way.
        let c = ConsoleReport::parse(
            "Unable to handle kernel paging request at virtual address ffff800081234567\n",
        );
        assert_eq!(
            c.guest_trace.unwrap().fault_address,
            Some(0xffff_8000_8123_4567)
        );
    }

    #[test]
    fn frame_parts() {
        assert_eq!(frame_function("f+0x14/0x40 (P)"), "f");
        assert_eq!(frame_offset("f+0x14/0x40 (P)"), Some(0x14));
        assert_eq!(frame_offset("f+0x14"), Some(0x14));
        assert_eq!(frame_offset("0xffff800080001234"), None);
        assert!(is_trace_frame("f+0x14/0x40 (P)"));
        assert!(!is_trace_frame(
            "x29: ffff80008072baa0 x28: ffff0000008e5c00"
        ));
        assert!(!is_trace_frame("Kernel Offset: disabled"));
        assert!(!is_trace_frame("+0x4/0x8"));
    }

    #[test]
    fn bracketed_non_timestamps_are_kept() {
        assert_eq!(strip_printk_timestamp("[abc] ok 1 x"), "[abc] ok 1 x");
        assert_eq!(strip_printk_timestamp("[ 12.5] ok 1 x"), "ok 1 x");
    }

    #[test]
    fn a_kernel_message_inside_a_ktap_line_is_taken_out_of_it() {
        // As recorded on devres-group/platform-sweep: at24's probe message came between
        // the test's "bind 7d090000.i2c" and its newline.
        let console = "    ok 2 7d090000.i2c unbound\r\n\
             # rzgate-step 7 platform-sweep: bind i2c-riic 7d090000.i2c\r\n\
             [    3.101000] i2c-riic 7d090000.i2c: registered with 1000000Hz bus speed\r\n\
             \x20   ok 3 bind 7d090000.i2c[    3.102000] at24 0-0050: 256 byte 24c02 EEPROM\r\n\
             \r\n\
             \x20   ok 4 7d090000.i2c bound to i2c-riic\r\n\
             ok 1 a bi[    3.200000] k1\r\n[    3.200001] k2\r\nnd # SKIP x\r\n";
        let c = ConsoleReport::parse(console);
        let descriptions: Vec<&str> = c.results.iter().map(|r| r.description.as_str()).collect();
        assert_eq!(
            descriptions,
            [
                "7d090000.i2c unbound",
                "bind 7d090000.i2c",
                "7d090000.i2c bound to i2c-riic",
                "a bind"
            ]
        );
        assert_eq!(c.results[1].depth, 1);
        assert_eq!(c.results[3].directive.as_deref(), Some("SKIP x"));
        assert_eq!(
            untangle("ok 1 a bi[    3.200000] k1\r\nnd\r\n"),
            ["[    3.200000] k1", "ok 1 a bind"]
        );
        // Without timestamps, and with brackets that are not timestamps, nothing moves.
        assert_eq!(
            untangle("ok 1 x [1.5] y [ 2.123456]z\nat24 0-0050: 256 byte\nrest"),
            [
                "ok 1 x [1.5] y [ 2.123456]z",
                "at24 0-0050: 256 byte",
                "rest"
            ]
        );
    }

    #[test]
    fn tail_takes_last_lines() {
        assert_eq!(tail("a\r\nb\nc\n", 2), vec!["b", "c"]);
        assert_eq!(tail("a\n", 5), vec!["a"]);
    }
}
