//! The platform sweep's per-driver table: for every driver a test unbinds and binds with
//! steps named `unbind <driver> <device>` / `bind <driver> <device>` (docs/contracts.md
//! "Runner reports"), whether those steps were clean or aborted on each kernel, with the
//! function of the root abort. This is the answer to "is the unbind ordering one driver's
//! problem or every platform driver's", one row per driver instead of one cell per test.
//!
//! Built only from what the cells already carry (the abort groups' steps and the step texts
//! of the console), so a merged, imported or re-read report gives the same table.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::outcome::Outcome;
use crate::report::{AbortReport, CellReport, StepRef};

/// What a sweep step does to its driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Unbind,
    Bind,
}

/// A step text that follows the naming convention, split: `unbind rzg2l-adc 7d058000.adc`
/// gives `(Unbind, "rzg2l-adc", "7d058000.adc")`. Anything else (another test's step, a
/// fourth word) is not a sweep step: the convention is exact so that free-form step texts
/// that happen to start with "unbind" (`unbind adc while runtime-active`) stay out.
pub fn parse_step(text: &str) -> Option<(Action, &str, &str)> {
    let mut words = text.split_whitespace();
    let action = match words.next()? {
        "unbind" => Action::Unbind,
        "bind" => Action::Bind,
        _ => return None,
    };
    let (driver, device) = (words.next()?, words.next()?);
    words.next().is_none().then_some((action, driver, device))
}

/// One driver on one kernel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverOutcome {
    /// `abort` when an abort happened first in one of the driver's steps; `error` when none
    /// did but a cell that swept it is an `error` (its steps may not all have run); else
    /// `clean`.
    pub outcome: Outcome,
    /// The cells (`kernel/test`) whose steps swept this driver.
    pub cells: Vec<String>,
    /// The root abort (the earliest abort group whose step is one of the driver's): its
    /// function, as `validate` identifies aborts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    /// The rzgate device the root abort touched (`adc`, `tsu`): a driver's unbind can reach
    /// another module through its device-link consumers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub register: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soc_addr: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepRef>,
    /// The functions of every abort group in the driver's steps, root first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub functions: Vec<String>,
    /// Abort events of those groups (each group's count).
    pub abort_events: u64,
}

/// One driver's row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriverRow {
    /// The devices its steps named.
    pub devices: Vec<String>,
    /// Kernel name -> outcome; a kernel whose cells never swept the driver is absent.
    pub kernels: BTreeMap<String, DriverOutcome>,
}

/// report.json's `sweep`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sweep {
    /// The tests whose steps follow the convention.
    pub tests: Vec<String>,
    /// The columns, in the run's kernel order.
    pub kernels: Vec<String>,
    /// Driver name -> its row.
    pub drivers: BTreeMap<String, DriverRow>,
}

/// The table of the cells' sweep steps, or `None` when no cell has one.
pub fn table(cells: &[CellReport], kernels: &[String]) -> Option<Sweep> {
    let mut sweep = Sweep {
        tests: vec![],
        kernels: kernels.to_vec(),
        drivers: BTreeMap::new(),
    };
    for cell in cells {
        // Step number -> driver. The console's last text for a number wins, as in
        // ConsoleReport::step_text.
        let mut driver_of: BTreeMap<u32, &str> = BTreeMap::new();
        let mut devices: Vec<(&str, &str)> = vec![];
        for step in &cell.ktap.steps {
            driver_of.remove(&step.n);
            if let Some((_, driver, device)) = parse_step(&step.text) {
                driver_of.insert(step.n, driver);
                if !devices.contains(&(driver, device)) {
                    devices.push((driver, device));
                }
            }
        }
        if devices.is_empty() {
            continue;
        }
        if !sweep.tests.contains(&cell.test) {
            sweep.tests.push(cell.test.clone());
        }
        let mut ordered: Vec<&AbortReport> = cell.aborts.iter().collect();
        ordered.sort_by_key(|a| a.first_seq);
        for (driver, device) in &devices {
            let row = sweep
                .drivers
                .entry(driver.to_string())
                .or_insert_with(|| DriverRow {
                    devices: vec![],
                    kernels: BTreeMap::new(),
                });
            if !row.devices.iter().any(|d| d == device) {
                row.devices.push(device.to_string());
            }
            let entry = row
                .kernels
                .entry(cell.kernel.clone())
                .or_insert_with(|| DriverOutcome {
                    outcome: Outcome::Clean,
                    cells: vec![],
                    function: None,
                    symbol: None,
                    device: None,
                    register: None,
                    access: None,
                    soc_addr: None,
                    step: None,
                    functions: vec![],
                    abort_events: 0,
                });
            if entry.cells.contains(&cell.name()) {
                continue;
            }
            entry.cells.push(cell.name());
            let mine = ordered.iter().filter(|a| {
                a.step
                    .as_ref()
                    .is_some_and(|s| driver_of.get(&s.n) == Some(driver))
            });
            for abort in mine {
                let function = abort.function.clone().unwrap_or(abort.symbol.clone());
                if entry.outcome != Outcome::Abort {
                    entry.outcome = Outcome::Abort;
                    entry.function = Some(function.clone());
                    entry.symbol = Some(abort.symbol.clone());
                    entry.device = Some(abort.device.clone());
                    entry.register = Some(abort.register.clone());
                    entry.access = Some(abort.access.clone());
                    entry.soc_addr = Some(abort.soc_addr);
                    entry.step = abort.step.clone();
                }
                if !entry.functions.contains(&function) {
                    entry.functions.push(function);
                }
                entry.abort_events += abort.count;
            }
            if entry.outcome == Outcome::Clean && cell.outcome == Outcome::Error {
                entry.outcome = Outcome::Error;
            }
        }
    }
    (!sweep.drivers.is_empty()).then_some(sweep)
}

/// How a driver reads in a kernel's column: `clean`, `abort (<root function>)`, `error`.
pub fn verdict(outcome: &DriverOutcome) -> String {
    match (&outcome.outcome, &outcome.function) {
        (Outcome::Abort, Some(function)) => format!("abort ({function})"),
        (other, _) => other.to_string(),
    }
}

/// report.md's section "Platform sweep: per driver", or nothing without a sweep.
pub fn render_markdown(sweep: Option<&Sweep>) -> String {
    let Some(sweep) = sweep else {
        return String::new();
    };
    let mut md = String::new();
    let _ = writeln!(md, "## Platform sweep: per driver\n");
    let tests: Vec<String> = sweep.tests.iter().map(|t| format!("`{t}`")).collect();
    let _ = writeln!(
        md,
        "Each driver's `unbind <driver> <device>` and `bind <driver> <device>` steps ({}): \
         `clean`, or `abort` with the function of the first abort in them. An access that \
         repeats one of an earlier step (same pc, register and access) counts for the \
         earlier step's driver (abort groups keep their first step): a consumer's abort, \
         repeated when its supplier's unbind takes it along, is in the consumer's row.\n",
        tests.join(", ")
    );
    let _ = writeln!(md, "| driver | {} |", sweep.kernels.join(" | "));
    let _ = writeln!(md, "|---|{}", "---|".repeat(sweep.kernels.len()));
    for (driver, row) in &sweep.drivers {
        let columns: Vec<String> = sweep
            .kernels
            .iter()
            .map(|kernel| match row.kernels.get(kernel) {
                None => "-".to_string(),
                Some(o) if o.outcome == Outcome::Abort => format!("**{}**", verdict(o)),
                Some(o) => verdict(o),
            })
            .collect();
        let _ = writeln!(
            md,
            "| `{driver}` ({}) | {} |",
            row.devices.join(", "),
            columns.join(" | ")
        );
    }
    md.push('\n');
    for (driver, row) in &sweep.drivers {
        for kernel in &sweep.kernels {
            let Some(o) = row.kernels.get(kernel) else {
                continue;
            };
            if o.outcome != Outcome::Abort {
                continue;
            }
            let step = o
                .step
                .as_ref()
                .map(|s| format!(", step {} ({})", s.n, s.text.as_deref().unwrap_or("?")))
                .unwrap_or_default();
            let _ = writeln!(
                md,
                "- `{driver}` on {kernel}: {} {} {} at `{}`{step}; {} abort event(s) in its steps, in {}",
                o.device.as_deref().unwrap_or("?"),
                o.register.as_deref().unwrap_or("?"),
                o.access.as_deref().unwrap_or("?"),
                o.symbol.as_deref().unwrap_or("?"),
                o.abort_events,
                o.functions
                    .iter()
                    .map(|f| format!("`{f}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }
    md.push('\n');
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::Step;
    use crate::report::tests::{abort, cell};

    fn step(n: u32, text: &str) -> Step {
        Step {
            n,
            test: "platform-sweep".into(),
            text: text.into(),
        }
    }

    /// The sweep's steps as the guest test takes them: the TSU (consumer) first, then the
    /// ADC, whose unbind takes the TSU along, so the TSU is bound again in step 5.
    fn sweep_steps() -> Vec<Step> {
        vec![
            step(1, "unbind rzg3s-thermal 7d059000.thermal"),
            step(2, "bind rzg3s-thermal 7d059000.thermal"),
            step(3, "unbind rzg2l-adc 7d058000.adc"),
            step(4, "bind rzg2l-adc 7d058000.adc"),
            step(5, "bind rzg3s-thermal 7d059000.thermal"),
        ]
    }

    /// An abort group at `step` in `function`, the `seq`-th of its cell.
    fn group(step: u32, function: &str, register: &str, seq: u64, count: u64) -> AbortReport {
        let mut a = abort(seq == 1, count);
        a.function = Some(function.into());
        a.symbol = format!("{function}+0x14");
        a.register = register.into();
        a.first_seq = seq;
        a.step = Some(StepRef {
            n: step,
            text: sweep_steps()
                .iter()
                .find(|s| s.n == step)
                .map(|s| s.text.clone()),
        });
        a
    }

    fn sweep_cell(kernel: &str, outcome: Outcome, aborts: Vec<AbortReport>) -> CellReport {
        let mut c = cell(kernel, "platform-sweep", outcome, outcome);
        c.ktap.steps = sweep_steps();
        c.aborts = aborts;
        c
    }

    fn kernels() -> Vec<String> {
        vec!["upstream".into(), "prefix".into()]
    }

    #[test]
    fn step_texts_follow_the_convention_exactly() {
        assert_eq!(
            parse_step("unbind rzg2l-adc 7d058000.adc"),
            Some((Action::Unbind, "rzg2l-adc", "7d058000.adc"))
        );
        assert_eq!(
            parse_step("bind rzg3s-thermal 7d059000.thermal"),
            Some((Action::Bind, "rzg3s-thermal", "7d059000.thermal"))
        );
        for other in [
            "unbind adc while runtime-active",
            "bind adc and tsu",
            "unbind rzg2l-adc",
            "rebind rzg2l-adc 7d058000.adc",
            "",
        ] {
            assert_eq!(parse_step(other), None, "{other:?}");
        }
    }

    #[test]
    fn each_driver_gets_the_root_abort_of_its_own_steps() {
        // prefix: the TSU's zone-disable write at its own unbind (x2: again when the ADC's
        // unbind takes it along, same pc), then the ADC's runtime suspend at step 3.
        let prefix = sweep_cell(
            "prefix",
            Outcome::Abort,
            vec![
                group(1, "rzg3s_thermal_change_mode", "TSU_SM", 1, 2),
                group(3, "rzg2l_adc_pm_runtime_suspend", "ADM0", 2, 1),
                group(3, "rzg2l_adc_pm_runtime_suspend", "ADM0", 3, 1),
            ],
        );
        let upstream = sweep_cell("upstream", Outcome::Clean, vec![]);
        let sweep = table(&[upstream, prefix], &kernels()).unwrap();
        assert_eq!(sweep.tests, vec!["platform-sweep"]);
        assert_eq!(
            sweep.drivers.keys().collect::<Vec<_>>(),
            vec!["rzg2l-adc", "rzg3s-thermal"]
        );
        let adc = &sweep.drivers["rzg2l-adc"];
        assert_eq!(adc.devices, vec!["7d058000.adc"]);
        let on = |row: &DriverRow, k: &str| verdict(&row.kernels[k]);
        assert_eq!(on(adc, "upstream"), "clean");
        assert_eq!(on(adc, "prefix"), "abort (rzg2l_adc_pm_runtime_suspend)");
        let p = &adc.kernels["prefix"];
        assert_eq!(p.register.as_deref(), Some("ADM0"));
        assert_eq!(p.step.as_ref().unwrap().n, 3);
        assert_eq!(p.abort_events, 2);
        assert_eq!(p.functions, vec!["rzg2l_adc_pm_runtime_suspend"]);
        assert_eq!(p.cells, vec!["prefix/platform-sweep"]);
        let tsu = &sweep.drivers["rzg3s-thermal"];
        assert_eq!(on(tsu, "prefix"), "abort (rzg3s_thermal_change_mode)");
        assert_eq!(tsu.kernels["prefix"].abort_events, 2);
        assert_eq!(on(tsu, "upstream"), "clean");
    }

    #[test]
    fn the_root_is_the_earliest_group_whatever_the_order_in_the_cell() {
        let mut later = group(4, "rzg2l_adc_probe", "ADM3", 9, 1);
        later.root = false;
        let c = sweep_cell(
            "prefix",
            Outcome::Abort,
            vec![
                later,
                group(3, "rzg2l_adc_pm_runtime_suspend", "ADM0", 5, 1),
            ],
        );
        let sweep = table(&[c], &kernels()).unwrap();
        let p = &sweep.drivers["rzg2l-adc"].kernels["prefix"];
        assert_eq!(p.function.as_deref(), Some("rzg2l_adc_pm_runtime_suspend"));
        assert_eq!(
            p.functions,
            vec!["rzg2l_adc_pm_runtime_suspend", "rzg2l_adc_probe"]
        );
    }

    #[test]
    fn aborts_outside_sweep_steps_and_cells_without_them_stay_out() {
        // An abort at step 0 (boot) belongs to no driver; a test without sweep steps
        // (adc-unbind) adds no row even though it aborts.
        let boot_abort = group(0, "rzg2l_adc_pm_runtime_resume", "ADM0", 1, 1);
        let c = sweep_cell("prefix", Outcome::Abort, vec![boot_abort]);
        let other = cell("prefix", "adc-unbind", Outcome::Abort, Outcome::Abort);
        let sweep = table(&[other.clone(), c], &kernels()).unwrap();
        assert_eq!(sweep.tests, vec!["platform-sweep"]);
        assert_eq!(
            verdict(&sweep.drivers["rzg2l-adc"].kernels["prefix"]),
            "clean"
        );
        assert!(!sweep.drivers["rzg2l-adc"].kernels.contains_key("upstream"));
        assert_eq!(table(&[other], &kernels()), None);
    }

    #[test]
    fn an_error_cell_without_aborts_is_no_clean_row() {
        let c = sweep_cell("upstream", Outcome::Error, vec![]);
        let sweep = table(&[c], &kernels()).unwrap();
        assert_eq!(
            sweep.drivers["rzg2l-adc"].kernels["upstream"].outcome,
            Outcome::Error
        );
    }

    #[test]
    fn markdown_has_a_row_per_driver_and_a_column_per_kernel() {
        let prefix = sweep_cell(
            "prefix",
            Outcome::Abort,
            vec![group(3, "rzg2l_adc_pm_runtime_suspend", "ADM0", 1, 1)],
        );
        let sweep = table(
            &[sweep_cell("upstream", Outcome::Clean, vec![]), prefix],
            &kernels(),
        );
        let md = render_markdown(sweep.as_ref());
        assert!(md.starts_with("## Platform sweep: per driver\n"), "{md}");
        assert!(md.contains("| driver | upstream | prefix |"), "{md}");
        assert!(
            md.contains(
                "| `rzg2l-adc` (7d058000.adc) | clean | **abort (rzg2l_adc_pm_runtime_suspend)** |"
            ),
            "{md}"
        );
        assert!(
            md.contains("| `rzg3s-thermal` (7d059000.thermal) | clean | clean |"),
            "{md}"
        );
        assert!(
            md.contains("step 3 (unbind rzg2l-adc 7d058000.adc)"),
            "{md}"
        );
        assert_eq!(render_markdown(None), "");
    }

    #[test]
    fn the_json_key_reads_back() {
        let prefix = sweep_cell(
            "prefix",
            Outcome::Abort,
            vec![group(1, "rzg3s_thermal_change_mode", "TSU_SM", 1, 2)],
        );
        let sweep = table(&[prefix], &kernels()).unwrap();
        let json = serde_json::to_value(&sweep).unwrap();
        let tsu = &json["drivers"]["rzg3s-thermal"]["kernels"]["prefix"];
        assert_eq!(tsu["outcome"], "abort");
        assert_eq!(tsu["function"], "rzg3s_thermal_change_mode");
        assert_eq!(tsu["register"], "TSU_SM");
        assert_eq!(tsu["step"]["n"], 1);
        let back: Sweep = serde_json::from_value(json).unwrap();
        assert_eq!(back, sweep);
    }
}
