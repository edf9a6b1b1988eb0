//! The test matrix file (`guest-tests/matrix.yaml`): kernels, tests and the expected
//! outcome of every kernel x test cell.
//!
//! The file's keys are documented at its top. Loading validates everything a run needs
//! before any QEMU starts, with errors that name the offending key: unknown keys, bad
//! values, and above all a missing expectation. There is no default expectation: every
//! cell must say what the ground truth is and why, because a cell without one could never
//! be a mismatch.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use crate::outcome::Outcome;

/// What the plugin does at a gated access (`on_abort=` plugin argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OnAbort {
    /// Gated reads see the bus-error value, gated writes are dropped; the guest goes on.
    Continue,
    /// QEMU stops at the first abort (exit status 3).
    Halt,
    /// The guest kernel is diverted into its SError path and panics.
    Serror,
}

impl OnAbort {
    pub fn as_str(self) -> &'static str {
        match self {
            OnAbort::Continue => "continue",
            OnAbort::Halt => "halt",
            OnAbort::Serror => "serror",
        }
    }
}

/// Run parameters every test inherits unless it (or the command line) says otherwise.
#[derive(Debug, Clone, PartialEq)]
pub struct Defaults {
    pub timeout_s: u64,
    pub loops: u32,
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub on_abort: OnAbort,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            timeout_s: 60,
            loops: 1,
            temp_c: 25.0,
            // The plugin's own default (0x400 on every channel).
            adc: [0x400; 8],
            on_abort: OnAbort::Continue,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct TestSpec {
    pub id: String,
    pub description: Option<String>,
    pub faults: Vec<String>,
    pub loops: Option<u32>,
    pub timeout_s: Option<u64>,
    /// Why the test needs a boot of its own instead of the run's snapshot (a fault that
    /// fires during boot); None: its cells restore the snapshot.
    pub cold_boot: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Expectation {
    pub outcome: Outcome,
    pub rationale: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub defaults: Defaults,
    pub kernels: Vec<String>,
    /// In file order (the order of the verdict table).
    pub tests: Vec<TestSpec>,
    /// Keyed by (test, kernel).
    expectations: BTreeMap<(String, String), Expectation>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    defaults: Option<RawDefaults>,
    kernels: Vec<String>,
    tests: serde_yaml::Mapping,
    expectations: serde_yaml::Mapping,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDefaults {
    timeout_s: Option<u64>,
    loops: Option<u32>,
    temp_c: Option<f64>,
    adc: Option<Vec<u16>>,
    on_abort: Option<OnAbort>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTest {
    description: Option<String>,
    #[serde(default)]
    faults: Vec<String>,
    loops: Option<u32>,
    timeout_s: Option<u64>,
    cold_boot: Option<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawExpectation {
    Short(String),
    Full(RawExpectationFull),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpectationFull {
    expect: String,
    rationale: Option<String>,
}

impl Matrix {
    pub fn load(path: &Path) -> Result<Matrix> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the matrix file {}", path.display()))?;
        Matrix::parse(&text).with_context(|| format!("bad matrix file {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Matrix> {
        let raw: RawFile = serde_yaml::from_str(text)?;

        let defaults = parse_defaults(raw.defaults.unwrap_or_default())?;

        if raw.kernels.is_empty() {
            bail!("`kernels` is empty: list at least one kernel variant");
        }
        for (index, kernel) in raw.kernels.iter().enumerate() {
            check_name(kernel, &format!("kernels[{index}]"), NameKind::Kernel)?;
            if raw.kernels[..index].contains(kernel) {
                bail!("kernels[{index}]: `{kernel}` is listed twice");
            }
        }

        let mut tests = Vec::new();
        for (key, value) in &raw.tests {
            let id = mapping_key(key, "tests")?;
            check_name(&id, &format!("tests.{id}"), NameKind::Test)?;
            // `boot: ~` and `boot: {}` both mean "no parameters".
            let raw_test: RawTest = if value.is_null() {
                RawTest::default()
            } else {
                serde_yaml::from_value(value.clone()).with_context(|| format!("tests.{id}"))?
            };
            tests.push(parse_test(id, raw_test)?);
        }
        if tests.is_empty() {
            bail!("`tests` is empty: list at least one test");
        }

        let mut expectations = BTreeMap::new();
        for (key, per_kernel) in &raw.expectations {
            let test = mapping_key(key, "expectations")?;
            if !tests.iter().any(|t| t.id == test) {
                bail!("expectations.{test}: no such test in `tests`");
            }
            let serde_yaml::Value::Mapping(per_kernel) = per_kernel else {
                bail!("expectations.{test}: expected a map of kernel -> expectation");
            };
            for (key, value) in per_kernel {
                let kernel = mapping_key(key, &format!("expectations.{test}"))?;
                let at = format!("expectations.{test}.{kernel}");
                if !raw.kernels.contains(&kernel) {
                    bail!("{at}: no such kernel in `kernels`");
                }
                let raw_expectation: RawExpectation = serde_yaml::from_value(value.clone())
                    .with_context(|| {
                        format!(
                            "{at}: expected `clean`, `abort` or {{expect: ..., rationale: ...}}"
                        )
                    })?;
                let (expect, rationale) = match raw_expectation {
                    RawExpectation::Short(expect) => (expect, None),
                    RawExpectation::Full(full) => (full.expect, full.rationale),
                };
                let outcome = match expect.as_str() {
                    "clean" => Outcome::Clean,
                    "abort" => Outcome::Abort,
                    "error" => bail!(
                        "{at}: `error` cannot be expected: an error means the cell proved nothing (fix the cause instead)"
                    ),
                    other => bail!("{at}: unknown outcome `{other}` (expected clean or abort)"),
                };
                expectations.insert((test.clone(), kernel), Expectation { outcome, rationale });
            }
        }

        let mut missing = Vec::new();
        for test in &tests {
            for kernel in &raw.kernels {
                if !expectations.contains_key(&(test.id.clone(), kernel.clone())) {
                    missing.push(format!("expectations.{}.{kernel}", test.id));
                }
            }
        }
        if !missing.is_empty() {
            bail!(
                "every kernel x test cell needs an expectation; missing: {}",
                missing.join(", ")
            );
        }

        Ok(Matrix {
            defaults,
            kernels: raw.kernels,
            tests,
            expectations,
        })
    }

    pub fn test(&self, id: &str) -> Option<&TestSpec> {
        self.tests.iter().find(|t| t.id == id)
    }

    pub fn expectation(&self, test: &str, kernel: &str) -> Option<&Expectation> {
        self.expectations
            .get(&(test.to_string(), kernel.to_string()))
    }

    /// The tests to run: all of them, or the named ones (in the file's order), each of
    /// which must exist.
    pub fn select_tests(&self, names: &[String]) -> Result<Vec<&TestSpec>> {
        for name in names {
            if self.test(name).is_none() {
                let known: Vec<&str> = self.tests.iter().map(|t| t.id.as_str()).collect();
                bail!(
                    "unknown test `{name}` (the matrix has: {})",
                    known.join(", ")
                );
            }
        }
        Ok(self
            .tests
            .iter()
            .filter(|t| names.is_empty() || names.contains(&t.id))
            .collect())
    }

    /// The kernels to run: all of them, or the named ones (in the file's order). A kernel
    /// the matrix does not list has no expectations and is refused.
    pub fn select_kernels(&self, names: &[String]) -> Result<Vec<&str>> {
        for name in names {
            if !self.kernels.contains(name) {
                bail!(
                    "kernel `{name}` has no expectations in the matrix (it lists: {}); use `validate` for other kernels",
                    self.kernels.join(", ")
                );
            }
        }
        Ok(self
            .kernels
            .iter()
            .filter(|k| names.is_empty() || names.contains(k))
            .map(String::as_str)
            .collect())
    }
}

fn parse_defaults(raw: RawDefaults) -> Result<Defaults> {
    let mut defaults = Defaults::default();
    if let Some(timeout) = raw.timeout_s {
        if timeout == 0 {
            bail!("defaults.timeout_s: must be at least 1 second");
        }
        defaults.timeout_s = timeout;
    }
    if let Some(loops) = raw.loops {
        if loops == 0 {
            bail!("defaults.loops: must be at least 1");
        }
        defaults.loops = loops;
    }
    if let Some(temp) = raw.temp_c {
        check_temp(temp).context("defaults.temp_c")?;
        defaults.temp_c = temp;
    }
    if let Some(adc) = raw.adc {
        defaults.adc = adc_channels(&adc, defaults.adc).context("defaults.adc")?;
    }
    if let Some(on_abort) = raw.on_abort {
        defaults.on_abort = on_abort;
    }
    Ok(defaults)
}

fn parse_test(id: String, raw: RawTest) -> Result<TestSpec> {
    for (index, fault) in raw.faults.iter().enumerate() {
        check_name(
            fault,
            &format!("tests.{id}.faults[{index}]"),
            NameKind::Fault,
        )?;
    }
    if raw.loops == Some(0) {
        bail!("tests.{id}.loops: must be at least 1");
    }
    if raw.timeout_s == Some(0) {
        bail!("tests.{id}.timeout_s: must be at least 1 second");
    }
    if raw
        .cold_boot
        .as_deref()
        .is_some_and(|why| why.trim().is_empty())
    {
        bail!("tests.{id}.cold_boot: expected the reason the test needs its own boot");
    }
    Ok(TestSpec {
        id,
        description: raw.description,
        faults: raw.faults,
        loops: raw.loops,
        timeout_s: raw.timeout_s,
        cold_boot: raw.cold_boot,
    })
}

fn mapping_key(key: &serde_yaml::Value, parent: &str) -> Result<String> {
    match key {
        serde_yaml::Value::String(s) => Ok(s.clone()),
        other => bail!("{parent}: keys must be strings, found {other:?}"),
    }
}

#[derive(Clone, Copy)]
enum NameKind {
    Kernel,
    Test,
    Fault,
}

/// Names end up in paths (kernels), on the kernel command line (tests) and in the
/// plugin's `:`/`,`-separated argument string (faults): keep them to safe characters.
fn check_name(name: &str, at: &str, kind: NameKind) -> Result<()> {
    let allowed = |c: char| match kind {
        NameKind::Kernel => c.is_ascii_alphanumeric() || "-_.+".contains(c),
        NameKind::Test | NameKind::Fault => {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
        }
    };
    let what = match kind {
        NameKind::Kernel => {
            "a kernel name (a directory under out/kernels: letters, digits, - _ . +)"
        }
        NameKind::Test => "a test id (lowercase letters, digits and -)",
        NameKind::Fault => "a fault name (lowercase letters, digits and -)",
    };
    if name.is_empty() || !name.chars().all(allowed) || name.starts_with('.') {
        bail!("{at}: `{name}` is not {what}");
    }
    Ok(())
}

/// A test id given on the command line (it goes onto the kernel command line as is).
pub fn check_test_id(id: &str) -> Result<()> {
    check_name(id, "--test", NameKind::Test)
}

/// The range the plugin accepts for `temp=`.
pub fn check_temp(temp_c: f64) -> Result<()> {
    if !(-40.0..=125.0).contains(&temp_c) {
        bail!("temperature {temp_c} °C is outside the TSU's -40..125 °C");
    }
    Ok(())
}

/// 1 to 8 channel values (12-bit); channels not given keep `base`.
pub fn adc_channels(values: &[u16], base: [u16; 8]) -> Result<[u16; 8]> {
    if values.is_empty() || values.len() > 8 {
        bail!("expected 1 to 8 channel values, got {}", values.len());
    }
    let mut channels = base;
    for (channel, &value) in values.iter().enumerate() {
        if value > 0xfff {
            bail!("channel {channel}: {value} does not fit the ADC's 12 bits (0..4095)");
        }
        channels[channel] = value;
    }
    Ok(channels)
}

/// Parses the command line's `v0:v1:...` (`,` is accepted too, as `make ADC=` uses it);
/// values are decimal or 0x-hex.
pub fn parse_adc_arg(text: &str, base: [u16; 8]) -> Result<[u16; 8]> {
    let values = text
        .split([':', ','])
        .map(|v| {
            let v = v.trim();
            let parsed = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
                Some(hex) => u16::from_str_radix(hex, 16),
                None => v.parse(),
            };
            parsed.with_context(|| format!("`{v}` is not a number (decimal or 0x-hex)"))
        })
        .collect::<Result<Vec<u16>>>()
        .with_context(|| format!("--adc `{text}`"))?;
    adc_channels(&values, base).with_context(|| format!("--adc `{text}`"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
defaults:
  timeout_s: 30
  temp_c: 42.5
  adc: [1, 2, 3]
kernels: [upstream, prefix]
tests:
  boot:
  adc-unbind-loop: {loops: 20, timeout_s: 90}
  adc-probe-failure:
    description: probe fails
    faults: [adc-sresb-stuck]
expectations:
  boot: {upstream: clean, prefix: clean}
  adc-unbind-loop:
    upstream: clean
    prefix: {expect: abort, rationale: "detach before devres"}
  adc-probe-failure:
    upstream: {expect: clean}
    prefix: abort
"#;

    #[test]
    fn parses_a_good_file() {
        let m = Matrix::parse(GOOD).unwrap();
        assert_eq!(m.kernels, vec!["upstream", "prefix"]);
        assert_eq!(
            m.tests.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            vec!["boot", "adc-unbind-loop", "adc-probe-failure"]
        );
        assert_eq!(m.defaults.timeout_s, 30);
        assert_eq!(m.defaults.loops, 1);
        assert_eq!(m.defaults.temp_c, 42.5);
        assert_eq!(m.defaults.adc, [1, 2, 3, 0x400, 0x400, 0x400, 0x400, 0x400]);
        let t = m.test("adc-unbind-loop").unwrap();
        assert_eq!((t.loops, t.timeout_s), (Some(20), Some(90)));
        assert_eq!(
            m.test("adc-probe-failure").unwrap().faults,
            vec!["adc-sresb-stuck"]
        );
        let e = m.expectation("adc-unbind-loop", "prefix").unwrap();
        assert_eq!(e.outcome, Outcome::Abort);
        assert_eq!(e.rationale.as_deref(), Some("detach before devres"));
        assert_eq!(
            m.expectation("boot", "upstream").unwrap().outcome,
            Outcome::Clean
        );
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", Matrix::parse(text).unwrap_err())
    }

    #[test]
    fn missing_expectation_is_an_error_naming_the_cell() {
        let text = GOOD.replace("    prefix: abort\n", "");
        let e = error_of(&text);
        assert!(e.contains("expectations.adc-probe-failure.prefix"), "{e}");
    }

    #[test]
    fn unknown_keys_are_named() {
        let e = error_of(&GOOD.replace("loops: 20", "loop: 20"));
        assert!(
            e.contains("tests.adc-unbind-loop") && e.contains("loop"),
            "{e}"
        );
        let e = error_of(&format!("{GOOD}extra: 1\n"));
        assert!(e.contains("extra"), "{e}");
        let e = error_of(&GOOD.replace("temp_c: 42.5", "temperature: 42.5"));
        assert!(e.contains("temperature"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = error_of(&GOOD.replace("prefix: abort", "prefix: broken"));
        assert!(
            e.contains("expectations.adc-probe-failure.prefix") && e.contains("broken"),
            "{e}"
        );
        let e = error_of(&GOOD.replace("prefix: abort", "prefix: error"));
        assert!(e.contains("cannot be expected"), "{e}");
        let e = error_of(&GOOD.replace("boot: {upstream", "nope: {upstream"));
        assert!(e.contains("expectations.nope: no such test"), "{e}");
        let e = error_of(&GOOD.replace(
            "boot: {upstream: clean, prefix: clean}",
            "boot: {upstream: clean, prefix: clean, other: clean}",
        ));
        assert!(e.contains("expectations.boot.other: no such kernel"), "{e}");
        let e = error_of(&GOOD.replace("[adc-sresb-stuck]", "[\"a:b\"]"));
        assert!(e.contains("tests.adc-probe-failure.faults[0]"), "{e}");
        let e = error_of(&GOOD.replace("[upstream, prefix]", "[upstream, upstream]"));
        assert!(e.contains("kernels[1]"), "{e}");
        let e = error_of(&GOOD.replace("[upstream, prefix]", "[\"up/stream\", prefix]"));
        assert!(e.contains("kernels[0]"), "{e}");
        let e = error_of(&GOOD.replace("temp_c: 42.5", "temp_c: 300"));
        assert!(e.contains("defaults.temp_c"), "{e}");
        let e = error_of(&GOOD.replace("adc: [1, 2, 3]", "adc: [5000]"));
        assert!(e.contains("defaults.adc") && e.contains("12 bits"), "{e}");
        let e = error_of(&GOOD.replace("loops: 20", "loops: 0"));
        assert!(e.contains("tests.adc-unbind-loop.loops"), "{e}");
        let e = error_of(&GOOD.replace("adc-unbind-loop: {", "Adc_Unbind: {"));
        assert!(e.contains("tests.Adc_Unbind"), "{e}");
    }

    #[test]
    fn selection_checks_names() {
        let m = Matrix::parse(GOOD).unwrap();
        assert_eq!(m.select_tests(&[]).unwrap().len(), 3);
        let picked = m
            .select_tests(&["adc-probe-failure".into(), "boot".into()])
            .unwrap();
        assert_eq!(picked[0].id, "boot");
        assert!(
            format!("{:#}", m.select_tests(&["nope".into()]).unwrap_err())
                .contains("unknown test `nope`")
        );
        assert_eq!(
            m.select_kernels(&["prefix".into()]).unwrap(),
            vec!["prefix"]
        );
        assert!(m.select_kernels(&["mine".into()]).is_err());
    }

    #[test]
    fn adc_argument_forms() {
        let base = [0x400; 8];
        assert_eq!(
            parse_adc_arg("1:2:0x10", base).unwrap()[..4],
            [1, 2, 16, 0x400]
        );
        assert_eq!(
            parse_adc_arg("1,2,3,4,5,6,7,8", base).unwrap(),
            [1, 2, 3, 4, 5, 6, 7, 8]
        );
        assert!(parse_adc_arg("1:2:3:4:5:6:7:8:9", base).is_err());
        assert!(parse_adc_arg("4096", base).is_err());
        assert!(parse_adc_arg("x", base).is_err());
    }

    #[test]
    fn the_repository_matrix_is_valid() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../matrix.yaml");
        let m = Matrix::load(&path).unwrap();
        for kernel in ["upstream", "prefix", "devres-group", "devres-group-fixed"] {
            assert!(m.kernels.iter().any(|k| k == kernel), "{kernel}");
        }
        for test in [
            "boot",
            "adc-read",
            "thermal",
            "adc-unbind",
            "adc-unbind-loop",
            "tsu-unbind",
            "tsu-unbind-loop",
            "adc-probe-failure",
        ] {
            assert!(m.test(test).is_some(), "{test}");
        }
        // The DESIGN.md ground truth.
        let abort = |test: &str, kernel: &str| {
            m.expectation(test, kernel).unwrap().outcome == Outcome::Abort
        };
        for test in [
            "adc-unbind",
            "adc-unbind-loop",
            "tsu-unbind",
            "tsu-unbind-loop",
        ] {
            assert!(abort(test, "prefix"));
            assert!(
                !abort(test, "upstream")
                    && !abort(test, "devres-group")
                    && !abort(test, "devres-group-fixed")
            );
        }
        assert!(abort("adc-probe-failure", "prefix") && abort("adc-probe-failure", "devres-group"));
        assert!(
            !abort("adc-probe-failure", "upstream")
                && !abort("adc-probe-failure", "devres-group-fixed")
        );
        for test in ["boot", "adc-read", "thermal"] {
            for kernel in &m.kernels {
                assert!(!abort(test, kernel));
            }
        }
        assert_eq!(
            m.test("adc-probe-failure").unwrap().faults,
            vec!["adc-sresb-stuck"]
        );
        // Every expectation carries its reason.
        for test in &m.tests {
            for kernel in &m.kernels {
                assert!(m.expectation(&test.id, kernel).unwrap().rationale.is_some());
            }
        }
    }
}
