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

use serde::Serialize;

/// One KTAP result line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KtapResult {
    pub number: u32,
    pub ok: bool,
    pub description: String,
    /// The text after `#`: a directive (`SKIP ...`, `TODO ...`) or, for `not ok`, the
    /// guest's reason.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub directive: Option<String>,
    /// Nesting depth (0 = top level; each level is 4 spaces of indentation in KTAP).
    #[serde(skip_serializing_if = "is_zero")]
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

    fn is_skip(&self) -> bool {
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
    /// The first `Kernel panic - not syncing: ...` line, if any.
    pub panic: Option<String>,
    /// Number of console lines.
    pub lines: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub n: u32,
    pub test: String,
    pub text: String,
}

impl ConsoleReport {
    pub fn parse(console: &str) -> ConsoleReport {
        let mut report = ConsoleReport::default();
        for raw in console.lines() {
            report.lines += 1;
            let line = strip_printk_timestamp(raw.trim_end_matches('\r'));
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
            } else if body == "# rzgate-done" {
                report.done = true;
            } else if let Some(step) = body.strip_prefix("# rzgate-step ") {
                if let Some(step) = parse_step(step) {
                    report.steps.push(step);
                }
            } else if let Some(result) = parse_result(body, indent) {
                report.results.push(result);
            }
        }
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

    /// Why the KTAP output does not amount to "every test passed", or `None` when it does:
    /// no results at all, a failing line (quoted as printed), or fewer/more top-level
    /// results than the plan announced.
    pub fn ktap_failure(&self) -> Option<String> {
        // A failing subtest normally fails its parent too: quote the top-level lines, which
        // carry the guest's reason, and the nested ones only when no parent failed.
        let failing = |top_level: bool| -> Vec<&str> {
            self.results
                .iter()
                .filter(|r| !r.passed() && (r.depth == 0) == top_level)
                .map(|r| r.line.as_str())
                .collect()
        };
        for lines in [failing(true), failing(false)] {
            if !lines.is_empty() {
                return Some(format!("failing KTAP lines: {}", lines.join(" | ")));
            }
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

#[cfg(test)]
mod tests {
    use super::*;

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
        let c = ConsoleReport::parse("1..1\n    not ok 1 sub # broke\nok 1 parent\n");
        assert!(c.ktap_failure().unwrap().contains("not ok 1 sub"));
        // A failing parent is quoted alone (its nested failure adds nothing).
        let c = ConsoleReport::parse(
            "1..1\n    TAP version 13\n    1..2\n    ok 1 a # SKIP\n    not ok 2 /platform-bus@c000000\nnot ok 1 dt-unprobed-devices # /platform-bus@c000000\n",
        );
        assert_eq!(
            c.ktap_failure().unwrap(),
            "failing KTAP lines: not ok 1 dt-unprobed-devices # /platform-bus@c000000"
        );
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
    fn bracketed_non_timestamps_are_kept() {
        assert_eq!(strip_printk_timestamp("[abc] ok 1 x"), "[abc] ok 1 x");
        assert_eq!(strip_printk_timestamp("[ 12.5] ok 1 x"), "ok 1 x");
    }

    #[test]
    fn tail_takes_last_lines() {
        assert_eq!(tail("a\r\nb\nc\n", 2), vec!["b", "c"]);
        assert_eq!(tail("a\n", 5), vec!["a"]);
    }
}
