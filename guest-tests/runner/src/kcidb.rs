//! The `export-kcidb` command: a runner report (matrix, merged shards, or validate) as
//! KernelCI's KCIDB v5 JSON, the format the field's dashboards take.
//!
//! - one checkout: the kernel source the variants were built from (the report names no
//!   commit, so none is claimed);
//! - one build per kernel variant (`upstream`, `prefix`, ...; validate: the base and the
//!   patched kernel), status PASS (the cells booted it);
//! - one test per cell, path `rzgate.<test-id>`, status clean -> PASS, abort -> FAIL,
//!   error -> ERROR, not run (interrupted) -> MISS; `misc` has the outcome, the expectation
//!   and its rationale, the abort and suspect counts and the root abort (register, SoC
//!   address, function, step, gating cause, call chain); `log_excerpt` the root abort or the
//!   error with the console tail;
//! - one child test per top-level KTAP result, path `rzgate.<test-id>.<result>`: ok -> PASS,
//!   not ok -> FAIL, `# SKIP` -> SKIP.
//!
//! Ids are `<origin>:<run-id>[:<kernel>[:<test>[:<n>]]]`; the run id defaults to a hash of
//! the report's bytes, so the same report always exports to the same ids (KCIDB merges
//! objects submitted twice under one id) and another run never collides with it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::cli::ExportKcidbArgs;
use crate::fsutil;
use crate::outcome::Outcome;
use crate::report::{parse_json, CellReport, NotRunCell, SHOWN_FRAMES};

/// The schema version written (kcidb-io 141's latest).
pub const VERSION: (u32, u32) = (5, 3);
/// The root compatible of the SoC the guest sees.
const COMPATIBLE: &str = "renesas,r9a08g045";
/// KCIDB's limit on `log_excerpt` (characters); the end of a longer text is kept.
const LOG_EXCERPT_MAX: usize = 16384;

/// What the export reads from any of the runner's reports.
#[derive(Debug, Deserialize)]
struct Input {
    cells: Vec<CellReport>,
    #[serde(default)]
    not_run: Vec<NotRunCell>,
    summary: InputSummary,
    /// validate: the base and patched kernels, and the patch's name.
    #[serde(default)]
    base: Option<Label>,
    #[serde(default)]
    patched: Option<Label>,
    #[serde(default)]
    patch: Option<String>,
}

#[derive(Debug, Deserialize)]
struct InputSummary {
    #[serde(default)]
    kernels: Vec<String>,
    #[serde(default)]
    on_abort: Option<String>,
    #[serde(default)]
    temp_c: Option<f64>,
    #[serde(default)]
    interrupted: bool,
}

#[derive(Debug, Deserialize)]
struct Label {
    name: String,
}

pub fn command(args: &ExportKcidbArgs) -> Result<u8> {
    let text = std::fs::read_to_string(&args.report)
        .with_context(|| format!("cannot read {}", args.report.display()))?;
    let run_id = args
        .run_id
        .clone()
        .unwrap_or_else(|| content_id(text.as_bytes()));
    let doc = export(&text, &args.origin, &run_id)
        .with_context(|| format!("{}: cannot export to KCIDB", args.report.display()))?;
    let out: PathBuf = args
        .out
        .clone()
        .unwrap_or_else(|| default_out(&args.report));
    let json = serde_json::to_string_pretty(&doc).context("serializing the KCIDB JSON")?;
    fsutil::write_atomic(&out, format!("{json}\n").as_bytes())?;
    println!(
        "wrote {}: KCIDB v{}.{}, {} builds, {} tests (origin {}, run {run_id})",
        out.display(),
        VERSION.0,
        VERSION.1,
        doc["builds"].as_array().map_or(0, Vec::len),
        doc["tests"].as_array().map_or(0, Vec::len),
        args.origin
    );
    Ok(0)
}

/// 64-bit FNV-1a of the report, in hex: a stable id, not a security measure.
fn content_id(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A KCIDB origin: `[a-z0-9_]+` (the schema's rule).
fn check_origin(origin: &str) -> Result<()> {
    if origin.is_empty()
        || !origin
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        bail!("--origin `{origin}`: a KCIDB origin is lower-case letters, digits and `_`");
    }
    Ok(())
}

/// One part of a test path: KCIDB allows `[a-zA-Z0-9_-]+`.
fn path_part(text: &str) -> String {
    let part: String = text
        .trim()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if part.is_empty() {
        "_".to_string()
    } else {
        part
    }
}

fn status(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Clean => "PASS",
        Outcome::Abort => "FAIL",
        Outcome::Error => "ERROR",
    }
}

/// The KCIDB document for the report `text`.
pub fn export(text: &str, origin: &str, run_id: &str) -> Result<Value> {
    check_origin(origin)?;
    if run_id.is_empty() {
        bail!("--run-id must not be empty");
    }
    let input: Input = parse_json(text).context("not a runner report")?;
    let checkout_id = format!("{origin}:{run_id}");

    // Builds in the report's kernel order, then any kernel only the cells name.
    let mut kernels: Vec<String> = match (&input.base, &input.patched) {
        (Some(base), Some(patched)) => vec![base.name.clone(), patched.name.clone()],
        _ => input.summary.kernels.clone(),
    };
    for name in input
        .cells
        .iter()
        .map(|c| &c.kernel)
        .chain(input.not_run.iter().map(|c| &c.kernel))
    {
        if !kernels.contains(name) {
            kernels.push(name.clone());
        }
    }
    let build_id = |kernel: &str| format!("{checkout_id}:{kernel}");

    let mut checkout_misc = Map::new();
    checkout_misc.insert(
        "report".into(),
        json!(if input.base.is_some() {
            "validate"
        } else {
            "matrix"
        }),
    );
    checkout_misc.insert("kernels".into(), json!(kernels));
    if let Some(patch) = &input.patch {
        checkout_misc.insert("patch".into(), json!(patch));
    }
    if input.summary.interrupted {
        checkout_misc.insert("interrupted".into(), json!(true));
    }
    let checkouts = vec![json!({
        "id": checkout_id,
        "origin": origin,
        "valid": true,
        "misc": checkout_misc,
    })];
    let builds: Vec<Value> = kernels
        .iter()
        .map(|kernel| {
            json!({
                "id": build_id(kernel),
                "checkout_id": checkout_id,
                "origin": origin,
                "architecture": "arm64",
                "config_name": "rzgate",
                "status": "PASS",
                "misc": {"variant": kernel},
            })
        })
        .collect();

    let mut environment_misc = Map::new();
    if let Some(on_abort) = &input.summary.on_abort {
        environment_misc.insert("on_abort".into(), json!(on_abort));
    }
    if let Some(temp_c) = input.summary.temp_c {
        environment_misc.insert("temp_c".into(), json!(temp_c));
    }
    let environment = json!({
        "comment": "QEMU 11 virt with librzgate.so (RZ/G3S power gating)",
        "compatible": [COMPATIBLE],
        "misc": environment_misc,
    });

    let mut tests = Vec::new();
    for cell in &input.cells {
        let id = format!("{}:{}", build_id(&cell.kernel), cell.test);
        let mut test = json!({
            "id": id,
            "build_id": build_id(&cell.kernel),
            "origin": origin,
            "path": format!("rzgate.{}", path_part(&cell.test)),
            "status": status(cell.outcome),
            "environment": environment,
            "duration": cell.duration_s,
            "misc": cell_misc(cell),
        });
        if let Some(excerpt) = log_excerpt(cell) {
            test["log_excerpt"] = json!(excerpt);
        }
        tests.push(test);
        tests.extend(ktap_tests(
            cell,
            &id,
            &build_id(&cell.kernel),
            origin,
            &environment,
        ));
    }
    for cell in &input.not_run {
        tests.push(json!({
            "id": format!("{}:{}", build_id(&cell.kernel), cell.test),
            "build_id": build_id(&cell.kernel),
            "origin": origin,
            "path": format!("rzgate.{}", path_part(&cell.test)),
            "status": "MISS",
            "environment": environment,
            "misc": {
                "kernel": cell.kernel,
                "test": cell.test,
                "outcome": "not-run",
                "expected": cell.expected,
                "reason": "the run was interrupted before the cell finished",
            },
        }));
    }
    Ok(json!({
        "version": {"major": VERSION.0, "minor": VERSION.1},
        "checkouts": checkouts,
        "builds": builds,
        "tests": tests,
    }))
}

/// The cell's verdict and forensics for `misc` (absent values left out).
fn cell_misc(cell: &CellReport) -> Value {
    let mut misc = Map::new();
    misc.insert("kernel".into(), json!(cell.kernel));
    misc.insert("test".into(), json!(cell.test));
    misc.insert("outcome".into(), json!(cell.outcome));
    if let Some(expected) = cell.expected {
        misc.insert("expected".into(), json!(expected));
    }
    misc.insert("matches_expectation".into(), json!(cell.ok));
    if let Some(rationale) = &cell.rationale {
        misc.insert("rationale".into(), json!(rationale));
    }
    misc.insert("aborts".into(), json!(cell.abort_events));
    misc.insert("suspects".into(), json!(cell.suspect_events));
    if let Some(root) = cell.root() {
        misc.insert(
            "root_abort".into(),
            json!({
                "summary": root.one_line(),
                "device": root.device,
                "register": root.register,
                "access": root.access,
                "soc_addr": root.soc_addr,
                "symbol": root.symbol,
                "step": root.step.as_ref().map(|s| s.n),
                "gated_by": root.gated_by,
                "call_chain": root.call_chain.iter().take(SHOWN_FRAMES).collect::<Vec<_>>(),
                "count": root.count,
            }),
        );
    }
    if let Some(error) = &cell.error {
        misc.insert("error".into(), json!(error));
    }
    if cell.flaky {
        misc.insert("flaky".into(), json!(true));
    }
    misc.insert("exit".into(), json!(cell.exit));
    misc.insert("loops".into(), json!(cell.loops));
    Value::Object(misc)
}

/// What a reader of the dashboard needs first: the root abort with its gating cause and
/// call chain, or the error with the console tail.
fn log_excerpt(cell: &CellReport) -> Option<String> {
    let mut text = String::new();
    if let Some(root) = cell.root() {
        text.push_str(&format!("root abort: {}\n", root.one_line()));
        text.push_str(&format!("gated by: {}\n", root.gated_by.join("; ")));
        for frame in root.call_chain.iter().take(SHOWN_FRAMES) {
            text.push_str(&format!("  {frame}\n"));
        }
    }
    if let Some(error) = &cell.error {
        text.push_str(&format!("error: {error}\n"));
    }
    if let Some(tail) = &cell.console_tail {
        text.push_str("console tail:\n");
        for line in tail {
            text.push_str(line);
            text.push('\n');
        }
    }
    if text.is_empty() {
        return None;
    }
    // The schema refuses NUL, which a console can carry.
    text.retain(|c| c != '\0');
    let chars = text.chars().count();
    if chars > LOG_EXCERPT_MAX {
        text = text.chars().skip(chars - LOG_EXCERPT_MAX).collect();
    }
    Some(text)
}

/// The cell's top-level KTAP results as child tests.
fn ktap_tests(
    cell: &CellReport,
    parent_id: &str,
    build_id: &str,
    origin: &str,
    environment: &Value,
) -> Vec<Value> {
    let mut used = std::collections::HashSet::new();
    cell.ktap
        .results
        .iter()
        .filter(|r| r.depth == 0)
        .map(|result| {
            let mut name = path_part(&result.description);
            if !used.insert(name.clone()) {
                name = format!("{name}-{}", result.number);
            }
            let status = if result.is_skip() {
                "SKIP"
            } else if result.ok {
                "PASS"
            } else {
                "FAIL"
            };
            let mut misc = Map::new();
            misc.insert("ktap_number".into(), json!(result.number));
            if let Some(directive) = &result.directive {
                misc.insert("directive".into(), json!(directive));
            }
            json!({
                "id": format!("{parent_id}:{}", result.number),
                "build_id": build_id,
                "origin": origin,
                "path": format!("rzgate.{}.{name}", path_part(&cell.test)),
                "status": status,
                "environment": environment,
                "misc": misc,
            })
        })
        .collect()
}

/// `export-kcidb`'s default output: `kcidb.json` beside the report.
fn default_out(report: &Path) -> PathBuf {
    fsutil::parent_dir(report).join("kcidb.json")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::console::KtapResult;
    use crate::report::tests::{interrupted_report, sample_report};

    /// The `id`s of a KCIDB document's `kind` objects (`builds`, `tests`, ...), in order.
    fn ids<'a>(doc: &'a Value, kind: &str) -> Vec<&'a str> {
        doc[kind]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_str().unwrap())
            .collect()
    }

    fn exported(report: &crate::report::RunReport) -> Value {
        export(&serde_json::to_string(report).unwrap(), "rzgate", "run1").unwrap()
    }

    #[test]
    fn one_checkout_one_build_per_kernel_one_test_per_cell() {
        let mut report = sample_report();
        report.cells[1].ktap.results = vec![
            KtapResult {
                number: 1,
                ok: true,
                description: "adc bound".into(),
                directive: None,
                depth: 0,
                line: String::new(),
            },
            KtapResult {
                number: 2,
                ok: false,
                description: "tsu follows".into(),
                directive: Some("SKIP no tsu".into()),
                depth: 0,
                line: String::new(),
            },
            KtapResult {
                number: 3,
                ok: false,
                description: "nested".into(),
                directive: None,
                depth: 1,
                line: String::new(),
            },
        ];
        let doc = exported(&report);
        assert_eq!(doc["version"], json!({"major": 5, "minor": 3}));
        assert_eq!(doc["checkouts"].as_array().unwrap().len(), 1);
        assert_eq!(doc["checkouts"][0]["id"], "rzgate:run1");
        let builds = ids(&doc, "builds");
        assert_eq!(builds, ["rzgate:run1:upstream", "rzgate:run1:prefix"]);
        let tests = doc["tests"].as_array().unwrap();
        // 4 cells + 2 top-level KTAP results of prefix/adc-unbind.
        assert_eq!(tests.len(), 6);
        let by_id = |id: &str| tests.iter().find(|t| t["id"] == id).unwrap();
        let abort = by_id("rzgate:run1:prefix:adc-unbind");
        assert_eq!(abort["status"], "FAIL");
        assert_eq!(abort["path"], "rzgate.adc-unbind");
        assert_eq!(abort["build_id"], "rzgate:run1:prefix");
        assert_eq!(abort["misc"]["outcome"], "abort");
        assert_eq!(abort["misc"]["rationale"], "because");
        assert_eq!(abort["misc"]["root_abort"]["register"], "ADM0");
        assert_eq!(abort["misc"]["root_abort"]["soc_addr"], 0x1005_8000u64);
        assert_eq!(
            abort["misc"]["root_abort"]["call_chain"]
                .as_array()
                .unwrap()
                .len(),
            SHOWN_FRAMES
        );
        let excerpt = abort["log_excerpt"].as_str().unwrap();
        assert!(excerpt.starts_with("root abort: adc ADM0 read at rzg2l_adc_pm_runtime_suspend+0x14 (step 1)\ngated by: ADC pclk off"), "{excerpt}");
        assert_eq!(abort["environment"]["compatible"], json!([COMPATIBLE]));
        assert_eq!(abort["environment"]["misc"]["on_abort"], "continue");
        assert_eq!(
            by_id("rzgate:run1:prefix:adc-unbind:1")["path"],
            "rzgate.adc-unbind.adc_bound"
        );
        assert_eq!(by_id("rzgate:run1:prefix:adc-unbind:1")["status"], "PASS");
        assert_eq!(by_id("rzgate:run1:prefix:adc-unbind:2")["status"], "SKIP");
        let clean = by_id("rzgate:run1:upstream:boot");
        assert_eq!(clean["status"], "PASS");
        assert!(clean.get("log_excerpt").is_none());
        let error = by_id("rzgate:run1:prefix:boot");
        assert_eq!(error["status"], "ERROR");
        assert!(error["log_excerpt"]
            .as_str()
            .unwrap()
            .contains("error: timeout after 60 s <killed>\nconsole tail:\n"));
        assert_eq!(error["misc"]["matches_expectation"], false);

        // NULs go (the schema refuses them); a long excerpt keeps its end, within the limit.
        let mut report = sample_report();
        let tail = report.cells[3].console_tail.as_mut().unwrap();
        tail.push("a\0b".into());
        tail.push("x".repeat(LOG_EXCERPT_MAX));
        tail.push("the end".into());
        let doc = exported(&report);
        let excerpt = doc["tests"][3]["log_excerpt"].as_str().unwrap();
        assert!(!excerpt.contains('\0'));
        assert_eq!(excerpt.chars().count(), LOG_EXCERPT_MAX);
        assert!(excerpt.ends_with("the end\n"));
    }

    #[test]
    fn cells_that_did_not_run_are_missed() {
        let doc = exported(&interrupted_report());
        let tests = doc["tests"].as_array().unwrap();
        let missed: Vec<&str> = tests
            .iter()
            .filter(|t| t["status"] == "MISS")
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            missed,
            ["rzgate:run1:upstream:boot", "rzgate:run1:prefix:boot"]
        );
        assert_eq!(doc["checkouts"][0]["misc"]["interrupted"], true);
    }

    #[test]
    fn a_validate_report_has_the_base_and_patched_builds() {
        let mut json = serde_json::to_value(sample_report()).unwrap();
        for cell in json["cells"].as_array_mut().unwrap() {
            if cell["kernel"] == "upstream" {
                cell["kernel"] = "prefix+patch".into();
            }
        }
        json["summary"] = json!({"tests": 2, "verdict": "..."});
        json["base"] = json!({"name": "prefix", "kernel_dir": "k/prefix"});
        json["patched"] = json!({"name": "prefix+patch", "kernel_dir": "k/p"});
        json["patch"] = json!("fix.patch");
        json["tests"] = json!([]);
        let doc = export(&json.to_string(), "rzgate", "v").unwrap();
        let builds = ids(&doc, "builds");
        assert_eq!(builds, ["rzgate:v:prefix", "rzgate:v:prefix+patch"]);
        assert_eq!(doc["checkouts"][0]["misc"]["patch"], "fix.patch");
        assert_eq!(doc["checkouts"][0]["misc"]["report"], "validate");
    }

    #[test]
    fn a_malformed_report_is_refused_naming_the_field() {
        let mut json = serde_json::to_value(sample_report()).unwrap();
        json["cells"][2]["outcome"] = "pass".into();
        let err = format!(
            "{:#}",
            export(&json.to_string(), "rzgate", "r").unwrap_err()
        );
        assert!(
            err.contains("cells[2].outcome: unknown variant `pass`"),
            "{err}"
        );
        let mut json = serde_json::to_value(sample_report()).unwrap();
        json["cells"][0]["aborts"] = json!("none");
        let err = format!(
            "{:#}",
            export(&json.to_string(), "rzgate", "r").unwrap_err()
        );
        assert!(err.contains("cells[0].aborts: invalid type"), "{err}");
        let err = format!("{:#}", export("[]", "rzgate", "r").unwrap_err());
        assert!(err.contains("not a runner report"), "{err}");
        let report = serde_json::to_string(&sample_report()).unwrap();
        let err = format!("{:#}", export(&report, "RzGate", "r").unwrap_err());
        assert!(err.contains("--origin `RzGate`"), "{err}");
    }

    #[test]
    fn ids_are_stable_per_report_and_paths_are_kcidb_safe() {
        assert_eq!(content_id(b"a"), content_id(b"a"));
        assert_ne!(content_id(b"a"), content_id(b"b"));
        assert_eq!(content_id(b"").len(), 16);
        assert_eq!(path_part("dt selftest: 3/4 ok"), "dt_selftest__3_4_ok");
        assert_eq!(path_part("adc-unbind_x"), "adc-unbind_x");
        assert_eq!(path_part(""), "_");
        assert_eq!(
            default_out(Path::new("out/matrix/report.json")),
            Path::new("out/matrix/kcidb.json")
        );
    }

    #[test]
    fn the_command_writes_beside_the_report_and_refuses_a_missing_one() {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.json");
        std::fs::write(&report, serde_json::to_string(&sample_report()).unwrap()).unwrap();
        let args = ExportKcidbArgs {
            report: report.clone(),
            out: None,
            origin: "rzgate".into(),
            run_id: None,
        };
        assert_eq!(command(&args).unwrap(), 0);
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("kcidb.json")).unwrap())
                .unwrap();
        assert_eq!(doc["tests"].as_array().unwrap().len(), 4);
        std::fs::write(&report, "{\"cells\": 3}").unwrap();
        let out = dir.path().join("other.json");
        let args = ExportKcidbArgs {
            out: Some(out.clone()),
            ..args
        };
        let err = format!("{:#}", command(&args).unwrap_err());
        assert!(
            err.contains("report.json: cannot export to KCIDB")
                && err.contains("cells: invalid type"),
            "{err}"
        );
        assert!(!out.exists(), "nothing is written for a malformed report");
    }
}
