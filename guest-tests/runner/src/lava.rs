//! LAVA: the matrix's cells as LAVA jobs (`export-lava`), and a LAVA job's log back into
//! the runner's own cell record (`import-lava`), so that a lab's run ends in the same
//! report.json, report.md and junit.xml as a local one (docs/contracts.md "LAVA").
//!
//! A job boots the cell's kernel with QEMU's `-plugin` through LAVA's `image_arg`
//! substitution, with `verdict=stdout`: the plugin prints a begin marker at load, every
//! event, and at QEMU's exit its verdict and an end marker. A `monitors` test turns the
//! guest's KTAP lines and the plugin's verdict into LAVA test cases between the two
//! markers. Because the end marker comes from the plugin's exit, a guest that panics still
//! completes the job; and because the events are in the log, the import rebuilds the cell
//! with the same classification and symbolization as a local run ([`cell::evaluate`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::cell::{self, CellSpec, Recorded};
use crate::cli::{ExportLavaArgs, ImportLavaArgs};
use crate::events::EventsReport;
use crate::fsutil;
use crate::inputs::{require_file, KernelBuild};
use crate::matrix::{self, Matrix, OnAbort, TestSpec};
use crate::outcome::Outcome;
use crate::qemu::{self, CellLaunch, QemuExit};
use crate::report::{self, CellReport, NotRunCell, RunReport, Summary};
use crate::run::{self, Settings};
use crate::symbols::SymbolMap;

/// The plugin's stream (plugin/qemu/src/verdict.rs; the runner cannot link the plugin).
const BEGIN: &str = "# rzgate-begin";
const END: &str = "# rzgate-end";
const EVENT_PREFIX: &str = "rzgate-event: ";
const VERDICT_NAME: &str = "rzgate.no-gated-access";
/// The events file of a LAVA job: the events travel on the stream, and a lab keeps no
/// file of the worker's anyway.
const LAB_EVENTS_FILE: &str = "/dev/null";

/// KTAP result lines as LAVA test cases: `ok`, `not ok`, and `ok ... # SKIP` as skip (the
/// empty look-ahead group maps to `skip` through `fixupdict`). It ends at the line's end
/// because pexpect matches a stream that may stop inside a line.
const KTAP_PATTERN: &str = r"(?P<result>(?=ok \d+ [^\r\n]*# SKIP)|not ok|ok)(?:ok)? \d+ (?P<test_case_id>[^#\r\n]+?) *(?:#[^\r\n]*)?[\r\n]";

/// QEMU options every lab renders from the job's `context` (LAVA's qemu device type),
/// chosen to be the machine the runner boots (qemu::machine_args): the DTB is dumped from
/// it.
const CONTEXT_ARCH: &str = "aarch64";
const CONTEXT_MACHINE: &str = "virt";
const CONTEXT_CPU: &str = "cortex-a55";
const CONTEXT_MEMORY_MB: u32 = 1024;
const CONTEXT_EXTRA: [&str; 2] = ["-smp 1", "-no-reboot"];

const DEPLOY_TIMEOUT_S: u64 = 120;
/// Only QEMU's start: the guest runs under the test action.
const BOOT_TIMEOUT_S: u64 = 60;
/// Beyond the actions' own timeouts, before LAVA ends the job.
const JOB_MARGIN_S: u64 = 120;

// ---- the job definition (LAVA's job schema, the parts rzgate uses) ----

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub device_type: String,
    pub job_name: String,
    pub timeouts: JobTimeouts,
    pub priority: String,
    pub visibility: String,
    pub metadata: BTreeMap<String, String>,
    pub context: JobContext,
    /// `- deploy: {...}`: serde_yaml would otherwise tag the variants (`- !deploy`).
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    pub actions: Vec<Action>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobTimeouts {
    pub job: Timeout,
    pub action: Timeout,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Timeout {
    pub seconds: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct JobContext {
    pub arch: String,
    pub machine: String,
    pub cpu: String,
    pub memory: u32,
    /// LAVA >= 2025.02 (and TuxLAVA): no NIC; the guest has no network driver anyway.
    pub no_network: bool,
    /// TuxLAVA's template adds -enable-kvm otherwise; TCG is what the plugin instruments.
    pub no_kvm: bool,
    pub extra_options: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Deploy(Box<Deploy>),
    Boot(Boot),
    Test(Test),
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub to: String,
    pub timeout: Timeout,
    pub images: Images,
}

/// In the order LAVA puts their `image_arg`s on QEMU's command line.
#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Images {
    pub kernel: Image,
    pub ramdisk: Image,
    pub dtb: Image,
    /// Substituted into the plugin's arguments only (`image_arg: ""`).
    pub soc: Image,
    pub systemmap: Image,
    pub plugin: Image,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Image {
    pub url: String,
    pub image_arg: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Boot {
    pub method: String,
    pub media: String,
    pub timeout: Timeout,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Docker>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Docker {
    pub image: String,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Test {
    pub timeout: Timeout,
    pub monitors: Vec<Monitor>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Monitor {
    pub name: String,
    pub start: String,
    pub end: String,
    pub pattern: String,
    pub fixupdict: BTreeMap<String, String>,
}

// ---- the index: which job is which cell ----

#[derive(Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub artifact_url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker_image: Option<String>,
    /// `continue`, `halt` or `serror` (matrix::OnAbort reads it).
    pub on_abort: String,
    pub temp_c: f64,
    pub adc: [u16; 8],
    /// Relative to the index's directory: the DTB all jobs boot.
    pub dtb: String,
    pub jobs: Vec<IndexJob>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct IndexJob {
    /// The job's file, relative to the index's directory (`jobs/<name>.yaml`).
    pub job: String,
    pub job_name: String,
    pub kernel: String,
    pub test: String,
    #[serde(default)]
    pub expected: Option<Outcome>,
    #[serde(default)]
    pub rationale: Option<String>,
    pub loops: u32,
    pub timeout_s: u64,
    pub faults: Vec<String>,
    /// Label -> file relative to the index's directory (`artifacts/...`).
    pub artifacts: BTreeMap<String, String>,
}

impl IndexJob {
    /// The job file's stem: logs are matched to jobs by it.
    pub fn stem(&self) -> &str {
        Path::new(&self.job)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or(&self.job)
    }
}

/// A name LAVA accepts for a monitor (`^[-_a-zA-Z0-9.]+$`) and a file name.
fn safe_name(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// What one job needs besides the URLs.
pub struct JobCell<'a> {
    pub kernel: &'a str,
    pub test: &'a str,
    pub loops: u32,
    pub timeout_s: u64,
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub on_abort: OnAbort,
    pub faults: &'a [String],
}

/// The artefacts' URLs of one job.
pub struct JobUrls {
    pub kernel: String,
    pub ramdisk: String,
    pub dtb: String,
    pub soc: String,
    pub systemmap: String,
    pub plugin: String,
}

pub fn context() -> JobContext {
    JobContext {
        arch: CONTEXT_ARCH.into(),
        machine: CONTEXT_MACHINE.into(),
        cpu: CONTEXT_CPU.into(),
        memory: CONTEXT_MEMORY_MB,
        no_network: true,
        no_kvm: true,
        extra_options: CONTEXT_EXTRA.iter().map(|s| s.to_string()).collect(),
    }
}

/// The LAVA job of one cell.
pub fn job(cell: &JobCell, urls: &JobUrls, docker_image: Option<&str>) -> Result<Job> {
    // The runner's own plugin argument, with LAVA's placeholders for the downloaded files.
    let launch = CellLaunch {
        kernel_image: Path::new("{kernel}"),
        system_map: Path::new("{systemmap}"),
        initramfs: Path::new("{ramdisk}"),
        dtb: Path::new("{dtb}"),
        plugin: Path::new("{plugin}"),
        soc: Path::new("{soc}"),
        events_file: Path::new(LAB_EVENTS_FILE),
        test: cell.test,
        loops: cell.loops,
        temp_c: cell.temp_c,
        adc: cell.adc,
        on_abort: cell.on_abort,
        faults: cell.faults,
    };
    let plugin_arg = format!("{},verdict=stdout", qemu::plugin_arg(&launch)?);
    let cmdline = qemu::kernel_cmdline(cell.test, cell.loops, cell.temp_c, &cell.adc);
    let image = |url: &str, image_arg: String| Image {
        url: url.to_string(),
        image_arg,
    };
    let test_timeout = Timeout {
        seconds: cell.timeout_s,
    };
    let job_name = format!("rzgate {} x {}", cell.kernel, cell.test);
    let mut fixupdict = BTreeMap::new();
    fixupdict.insert("ok".to_string(), "pass".to_string());
    fixupdict.insert("not ok".to_string(), "fail".to_string());
    fixupdict.insert(String::new(), "skip".to_string());
    let mut metadata = BTreeMap::new();
    metadata.insert("rzgate.kernel".to_string(), cell.kernel.to_string());
    metadata.insert("rzgate.test".to_string(), cell.test.to_string());
    metadata.insert("rzgate.on_abort".to_string(), cell.on_abort.as_str().into());
    Ok(Job {
        device_type: "qemu".into(),
        job_name,
        timeouts: JobTimeouts {
            job: Timeout {
                seconds: DEPLOY_TIMEOUT_S + BOOT_TIMEOUT_S + cell.timeout_s + JOB_MARGIN_S,
            },
            action: Timeout {
                seconds: DEPLOY_TIMEOUT_S.max(cell.timeout_s),
            },
        },
        priority: "medium".into(),
        visibility: "public".into(),
        metadata,
        context: context(),
        actions: vec![
            Action::Deploy(Box::new(Deploy {
                to: "tmpfs".into(),
                timeout: Timeout {
                    seconds: DEPLOY_TIMEOUT_S,
                },
                images: Images {
                    kernel: image(
                        &urls.kernel,
                        format!("-kernel {{kernel}} -append \"{cmdline}\""),
                    ),
                    ramdisk: image(&urls.ramdisk, "-initrd {ramdisk}".into()),
                    dtb: image(&urls.dtb, "-dtb {dtb}".into()),
                    soc: image(&urls.soc, String::new()),
                    systemmap: image(&urls.systemmap, String::new()),
                    plugin: image(&urls.plugin, format!("-plugin {plugin_arg}")),
                },
            })),
            Action::Boot(Boot {
                method: "qemu".into(),
                media: "tmpfs".into(),
                timeout: Timeout {
                    seconds: BOOT_TIMEOUT_S,
                },
                docker: docker_image.map(|image| Docker {
                    image: image.to_string(),
                }),
            }),
            Action::Test(Test {
                timeout: test_timeout,
                monitors: vec![Monitor {
                    name: safe_name(&format!("rzgate-{}-{}", cell.kernel, cell.test)),
                    start: BEGIN.into(),
                    end: END.into(),
                    pattern: KTAP_PATTERN.into(),
                    fixupdict,
                }],
            }),
        ],
    })
}

// ---- the device configuration for lava-run without a server ----

#[derive(Debug, Serialize)]
struct Device {
    device_type: &'static str,
    available_architectures: Vec<&'static str>,
    actions: DeviceActions,
    timeouts: DeviceTimeouts,
}

#[derive(Debug, Serialize)]
struct DeviceActions {
    deploy: DeviceMethods<DeployMethods>,
    boot: DeviceMethods<BootMethods>,
}

#[derive(Debug, Serialize)]
struct DeviceMethods<M> {
    methods: M,
}

#[derive(Debug, Serialize)]
struct DeployMethods {
    /// `to: tmpfs` deploys need the `image` method.
    image: DeviceParameters<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
struct BootMethods {
    qemu: DeviceParameters<QemuParameters>,
}

#[derive(Debug, Serialize)]
struct DeviceParameters<P> {
    parameters: P,
}

#[derive(Debug, Serialize)]
struct QemuParameters {
    command: String,
    options: Vec<String>,
    extra: Vec<String>,
}

#[derive(Debug, Serialize)]
struct DeviceTimeouts {
    actions: BTreeMap<String, Timeout>,
    connections: BTreeMap<String, Timeout>,
}

/// The rendered device configuration a lab's qemu device type gives these jobs' `context`
/// (the options LAVA's `qemu.jinja2` emits for arm64 with `no_network`), for `lava-run
/// --device` on a machine without a server. `qemu` is the binary's name or path.
pub fn device_configuration(qemu: &str) -> Result<String> {
    let context = context();
    let device = Device {
        device_type: "qemu",
        available_architectures: vec![CONTEXT_ARCH],
        actions: DeviceActions {
            deploy: DeviceMethods {
                methods: DeployMethods {
                    image: DeviceParameters {
                        parameters: BTreeMap::new(),
                    },
                },
            },
            boot: DeviceMethods {
                methods: BootMethods {
                    qemu: DeviceParameters {
                        parameters: QemuParameters {
                            command: qemu.to_string(),
                            options: vec![
                                format!("-cpu {}", context.cpu),
                                format!("-machine {}", context.machine),
                                "-nographic".into(),
                                "-net none".into(),
                                format!("-m {}", context.memory),
                                "-monitor none".into(),
                            ],
                            extra: context.extra_options.clone(),
                        },
                    },
                },
            },
        },
        timeouts: DeviceTimeouts {
            actions: BTreeMap::new(),
            connections: BTreeMap::new(),
        },
    };
    serde_yaml::to_string(&device).context("serializing the device configuration")
}

// ---- export-lava ----

/// The cells to export: `--cells kernel:test,...`, else the matrix's kernels x tests
/// (`--kernels`, `--tests`).
fn selected_cells(args: &ExportLavaArgs, matrix: &Matrix) -> Result<Vec<(String, TestSpec)>> {
    if !args.cells.is_empty() {
        let mut cells = Vec::new();
        for (index, pair) in args.cells.iter().enumerate() {
            let Some((kernel, test)) = pair.split_once(':') else {
                bail!("--cells[{index}]: `{pair}` is not KERNEL:TEST (e.g. prefix:adc-unbind)");
            };
            matrix::check_test_id(test).with_context(|| format!("--cells[{index}]"))?;
            if kernel.is_empty() || kernel.contains('/') {
                bail!("--cells[{index}]: `{kernel}` is not a kernel name");
            }
            let test = matrix.test(test).cloned().unwrap_or(TestSpec {
                id: test.to_string(),
                description: None,
                faults: Vec::new(),
                loops: None,
                timeout_s: None,
                cold_boot: None,
            });
            cells.push((kernel.to_string(), test));
        }
        return Ok(cells);
    }
    let kernels = matrix.select_kernels(&args.kernels)?;
    let tests = matrix.select_tests(&args.tests)?;
    Ok(kernels
        .iter()
        .flat_map(|k| tests.iter().map(move |t| (k.to_string(), (*t).clone())))
        .collect())
}

/// Places `from` at `to` (a hard link when the file system allows, else a copy).
fn stage(from: &Path, to: &Path) -> Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    let _ = std::fs::remove_file(to);
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

/// A job's file stem, which its log is named after.
fn job_stem(kernel: &str, test: &str) -> String {
    format!("{}--{test}", safe_name(kernel))
}

fn url_join(base: &str, relative: &str) -> String {
    format!("{}/{relative}", base.trim_end_matches('/'))
}

/// Exit status 0; every problem is a setup error (nothing half-written: the jobs, the
/// device configuration and the index are written only once every cell is known).
pub fn export_command(args: &ExportLavaArgs) -> Result<u8> {
    let matrix = Matrix::load(&args.cells_args.matrix)?;
    let settings = Settings::resolve(&args.cells_args, Some(1), &matrix)?;
    let cells = selected_cells(args, &matrix)?;
    if cells.is_empty() {
        bail!("nothing to export");
    }
    let mut stems = std::collections::HashSet::new();
    for (kernel, test) in &cells {
        if !stems.insert(job_stem(kernel, &test.id)) {
            bail!(
                "cell {kernel}:{} is selected twice (or its kernel's name differs from another's only in characters outside [-_.a-zA-Z0-9])",
                test.id
            );
        }
    }
    if let Some(image) = &args.docker_image {
        if image.trim().is_empty() || image.contains(char::is_whitespace) {
            bail!(
                "--docker-image `{image}`: expected a container image name, e.g. registry/qemu:11"
            );
        }
    }
    let out =
        std::path::absolute(&args.out).with_context(|| format!("--out {}", args.out.display()))?;
    let artifact_url = match &args.artifact_url {
        Some(url) if url.contains("://") => url.trim_end_matches('/').to_string(),
        Some(url) => bail!("--artifact-url `{url}`: expected a URL (https://..., file:///...)"),
        None => format!("file://{}", out.join("artifacts").display()),
    };

    // Check everything before writing anything.
    let mut kernels: BTreeMap<String, KernelBuild> = BTreeMap::new();
    for (kernel, _) in &cells {
        if !kernels.contains_key(kernel) {
            let build = KernelBuild::find(kernel, &args.kernels_dir.join(kernel))?;
            kernels.insert(kernel.clone(), build);
        }
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let inputs = run::prepare_inputs(&args.cells_args, &out)?;

    let artifacts = out.join("artifacts");
    let shared = [
        ("ramdisk", inputs.initramfs.clone(), "initramfs.cpio"),
        ("dtb", inputs.dtb.clone(), "virt-rzg3s.dtb"),
        ("plugin", inputs.plugin.clone(), "librzgate.so"),
        ("soc", inputs.soc.clone(), "soc.yaml"),
    ];
    for (_, from, name) in &shared {
        stage(from, &artifacts.join(name))?;
    }
    for (name, build) in &kernels {
        let dir = artifacts.join("kernels").join(name);
        stage(&build.image, &dir.join("Image"))?;
        stage(&build.system_map, &dir.join("System.map"))?;
    }

    let mut index = Index {
        artifact_url: artifact_url.clone(),
        docker_image: args.docker_image.clone(),
        on_abort: settings.on_abort.as_str().to_string(),
        temp_c: settings.temp_c,
        adc: settings.adc,
        dtb: "artifacts/virt-rzg3s.dtb".into(),
        jobs: Vec::new(),
    };
    let mut documents = Vec::new();
    for (kernel, test) in &cells {
        let loops = settings.loops(&matrix, test);
        let timeout_s = settings.timeout(&matrix, test).as_secs();
        let mut files: BTreeMap<String, String> = shared
            .iter()
            .map(|(label, _, name)| (label.to_string(), format!("artifacts/{name}")))
            .collect();
        files.insert("kernel".into(), format!("artifacts/kernels/{kernel}/Image"));
        files.insert(
            "systemmap".into(),
            format!("artifacts/kernels/{kernel}/System.map"),
        );
        let url = |label: &str| {
            url_join(
                &artifact_url,
                files[label]
                    .strip_prefix("artifacts/")
                    .unwrap_or(&files[label]),
            )
        };
        let urls = JobUrls {
            kernel: url("kernel"),
            ramdisk: url("ramdisk"),
            dtb: url("dtb"),
            soc: url("soc"),
            systemmap: url("systemmap"),
            plugin: url("plugin"),
        };
        let cell = JobCell {
            kernel,
            test: &test.id,
            loops,
            timeout_s,
            temp_c: settings.temp_c,
            adc: settings.adc,
            on_abort: settings.on_abort,
            faults: &test.faults,
        };
        let job = job(&cell, &urls, args.docker_image.as_deref())?;
        let stem = job_stem(kernel, &test.id);
        let yaml = serde_yaml::to_string(&job).context("serializing a LAVA job")?;
        let expectation = matrix.expectation(&test.id, kernel);
        index.jobs.push(IndexJob {
            job: format!("jobs/{stem}.yaml"),
            job_name: job.job_name.clone(),
            kernel: kernel.clone(),
            test: test.id.clone(),
            expected: expectation.map(|e| e.outcome),
            rationale: expectation.and_then(|e| e.rationale.clone()),
            loops,
            timeout_s,
            faults: test.faults.clone(),
            artifacts: files,
        });
        documents.push((format!("{stem}.yaml"), yaml));
    }
    // The jobs replace an earlier export's as a whole: a job left from another selection
    // would be submitted with the others.
    let (jobs_dir, partial) = (out.join("jobs"), out.join("jobs.partial"));
    let _ = std::fs::remove_dir_all(&partial);
    for (name, yaml) in &documents {
        fsutil::write_atomic(&partial.join(name), yaml.as_bytes())?;
    }
    if jobs_dir.exists() {
        std::fs::remove_dir_all(&jobs_dir)
            .with_context(|| format!("cannot replace {}", jobs_dir.display()))?;
    }
    std::fs::rename(&partial, &jobs_dir).with_context(|| {
        format!(
            "cannot rename {} to {}",
            partial.display(),
            jobs_dir.display()
        )
    })?;
    fsutil::write_atomic(
        &out.join("device.yaml"),
        device_configuration(&args.qemu_command)?.as_bytes(),
    )?;
    let json = serde_json::to_string_pretty(&index).context("serializing the index")?;
    fsutil::write_atomic(&out.join("index.json"), format!("{json}\n").as_bytes())?;
    println!(
        "wrote {} LAVA jobs in {}, device.yaml and index.json (artefacts: {} served as {})",
        index.jobs.len(),
        out.join("jobs").display(),
        artifacts.display(),
        artifact_url
    );
    Ok(0)
}

// ---- reading a LAVA log ----

/// One entry of a LAVA job log: `lava-run`'s output or a server's job log, one YAML flow
/// mapping a line (a server's is a YAML list: the same lines with `- `).
#[derive(Debug, Deserialize)]
struct LogEntry {
    #[serde(default)]
    dt: Option<String>,
    lvl: String,
    msg: serde_yaml::Value,
}

/// What a LAVA log says about one cell.
#[derive(Debug, Default, PartialEq)]
pub struct LabRecord {
    /// The guest's console, without the plugin's lines.
    pub console: String,
    /// The plugin's events, one JSON object a line, as in an events file.
    pub events: String,
    pub begin: bool,
    pub end: bool,
    /// The plugin's verdict line's abort count.
    pub verdict_aborts: Option<u64>,
    /// `Boot command: ...`: QEMU's command line on the worker.
    pub boot_command: Option<String>,
    /// LAVA's test cases: (suite, case) -> result.
    pub cases: BTreeMap<String, String>,
    /// The job's own result (`pass`/`fail`) and, when it failed, LAVA's error.
    pub job_result: Option<String>,
    pub error_type: Option<String>,
    pub error_msg: Option<String>,
    /// From the boot command to the end marker (or the last line).
    pub duration: Duration,
}

/// Seconds since the epoch of an RFC 3339 time `YYYY-MM-DDTHH:MM:SS[.frac](Z|+00:00)`.
fn epoch_seconds(text: &str) -> Option<f64> {
    let (date, time) = text.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let time = time.trim_end_matches('Z');
    let (clock, offset) = match time.rfind(['+', '-']) {
        Some(pos) => (&time[..pos], Some(&time[pos..])),
        None => (time, None),
    };
    let mut t = clock.split(':');
    let (h, min, s) = (
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
        t.next()?.parse::<f64>().ok()?,
    );
    let offset_s = match offset {
        Some(o) => {
            let sign = if o.starts_with('-') { -1.0 } else { 1.0 };
            let (oh, om) = o[1..].split_once(':')?;
            sign * (oh.parse::<f64>().ok()? * 3600.0 + om.parse::<f64>().ok()? * 60.0)
        }
        None => 0.0,
    };
    // Days from the civil date (proleptic Gregorian).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days as f64 * 86400.0 + h * 3600.0 + min * 60.0 + s - offset_s)
}

/// A line of the plugin's that ends `line` (whose start may be a guest line the plugin's
/// write cut into): the guest's fragment before it, and what it is.
enum PluginLine<'a> {
    Begin,
    End,
    Event(&'a str),
    Verdict(u64),
}

fn plugin_line(line: &str) -> Option<(&str, PluginLine<'_>)> {
    if let Some(pos) = line.find(EVENT_PREFIX) {
        return Some((
            &line[..pos],
            PluginLine::Event(&line[pos + EVENT_PREFIX.len()..]),
        ));
    }
    for (marker, kind) in [(BEGIN, PluginLine::Begin), (END, PluginLine::End)] {
        if let Some(fragment) = line.strip_suffix(marker) {
            return Some((fragment, kind));
        }
    }
    let verdict_tail = format!("ok 1 {VERDICT_NAME} # aborts=");
    let pos = line.find(&verdict_tail)?;
    let aborts = line[pos + verdict_tail.len()..].trim().parse().ok()?;
    let start = line[..pos].strip_suffix("not ").map_or(pos, |s| s.len());
    Some((&line[..start], PluginLine::Verdict(aborts)))
}

impl LabRecord {
    /// Reads a LAVA job log. Lines that are not log entries are refused with their number:
    /// a file that is not a LAVA log must not pass for a cell without output.
    pub fn parse(text: &str) -> Result<LabRecord> {
        let mut record = LabRecord::default();
        let mut console: Vec<String> = Vec::new();
        let mut events: Vec<&str> = Vec::new();
        // A guest line the plugin's write cut into: continued on the next guest line.
        let mut fragment = String::new();
        let (mut first_dt, mut end_dt, mut last_dt) = (None, None, None);
        let mut entries = Vec::new();
        for (number, raw) in text.lines().enumerate() {
            let line = raw.trim_end();
            if line.is_empty() || line == "---" {
                continue;
            }
            let body = line.strip_prefix("- ").unwrap_or(line);
            let entry: LogEntry = serde_yaml::from_str(body).with_context(|| {
                format!(
                    "line {}: not a LAVA log entry ({{dt, lvl, msg}}): {}",
                    number + 1,
                    line.chars().take(120).collect::<String>()
                )
            })?;
            entries.push(entry);
        }
        for entry in &entries {
            let when = entry.dt.as_deref().and_then(epoch_seconds);
            if when.is_some() {
                last_dt = when;
            }
            match (entry.lvl.as_str(), &entry.msg) {
                ("target" | "feedback", serde_yaml::Value::String(text)) => {
                    let Some((cut, kind)) = plugin_line(text) else {
                        console.push(std::mem::take(&mut fragment) + text);
                        continue;
                    };
                    fragment.push_str(cut);
                    match kind {
                        PluginLine::Begin => record.begin = true,
                        PluginLine::End => {
                            record.end = true;
                            end_dt = when;
                        }
                        PluginLine::Event(json) => events.push(json),
                        PluginLine::Verdict(aborts) => record.verdict_aborts = Some(aborts),
                    }
                }
                ("info", serde_yaml::Value::String(text)) => {
                    if let Some(command) = text.strip_prefix("Boot command: ") {
                        record.boot_command = Some(command.to_string());
                        first_dt = when;
                    }
                }
                ("results", serde_yaml::Value::Mapping(map)) => {
                    let field = |key: &str| {
                        map.get(key)
                            .and_then(serde_yaml::Value::as_str)
                            .map(str::to_string)
                    };
                    let (Some(suite), Some(case), Some(result)) =
                        (field("definition"), field("case"), field("result"))
                    else {
                        continue;
                    };
                    if suite == "lava" && case == "job" {
                        record.job_result = Some(result.clone());
                        record.error_type = field("error_type");
                        record.error_msg = field("error_msg");
                    }
                    record.cases.insert(format!("{suite}.{case}"), result);
                }
                _ => {}
            }
        }
        if !fragment.is_empty() {
            console.push(fragment);
        }
        record.console = console.iter().map(|l| format!("{l}\n")).collect();
        record.events = events.iter().map(|l| format!("{l}\n")).collect();
        if let (Some(start), Some(stop)) = (first_dt, end_dt.or(last_dt)) {
            // Microseconds: LAVA's resolution, and an f64 of seconds since the epoch cannot
            // hold more.
            record.duration = Duration::from_micros(((stop - start).max(0.0) * 1e6).round() as u64);
        }
        Ok(record)
    }

    /// How QEMU ended, as far as the log tells: the plugin's end marker means QEMU went
    /// through its exit (its status then follows from the events: `halt` 3,
    /// `symbols_mismatch` 4, else 0); without it LAVA stopped QEMU at a timeout (lava-run
    /// 2026.10 says `Test: lava-test-monitor timed out after N seconds` for a hung guest),
    /// or QEMU ended without the plugin's exit (`None`: the reason is LAVA's).
    fn exit(&self, events: &EventsReport, timeout: Duration) -> Option<QemuExit> {
        if self.end {
            if events.halt.is_some() {
                return Some(QemuExit::Exited(crate::classify::HALT_EXIT_STATUS));
            }
            if self.events.contains("{\"type\":\"symbols_mismatch\"") {
                return Some(QemuExit::Exited(4));
            }
            return Some(QemuExit::Exited(0));
        }
        let timed_out = self.error_type.as_deref() == Some("LAVATimeout")
            || self
                .error_msg
                .as_deref()
                .is_some_and(|m| m.contains("timed out"));
        timed_out.then_some(QemuExit::TimedOut(timeout))
    }
}

// ---- import-lava ----

fn read_index(path: &Path) -> Result<Index> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let deserializer = &mut serde_json::Deserializer::from_str(&text);
    serde_path_to_error::deserialize(deserializer)
        .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))
}

/// The cell record of one job from its LAVA log, classified and symbolized as a local
/// run's; its files (console.log, events.jsonl, qemu.cmd, lava.json) go to `dir`.
pub fn import_cell(
    job: &IndexJob,
    index: &Index,
    index_dir: &Path,
    record: &LabRecord,
    dir: &Path,
) -> Result<CellReport> {
    let artifact = |label: &str| -> Result<PathBuf> {
        let relative = job
            .artifacts
            .get(label)
            .with_context(|| format!("job {}: artifacts.{label} is missing", job.job))?;
        Ok(index_dir.join(relative))
    };
    let build = KernelBuild {
        name: job.kernel.clone(),
        image: artifact("kernel")?,
        system_map: artifact("systemmap")?,
    };
    require_file(
        &build.system_map,
        "the job's System.map",
        "rzgate-runner export-lava",
    )?;
    let symbols = Arc::new(SymbolMap::load(&build.system_map)?);
    let on_abort = match index.on_abort.as_str() {
        "continue" => OnAbort::Continue,
        "halt" => OnAbort::Halt,
        "serror" => OnAbort::Serror,
        other => bail!("index on_abort: `{other}` is not continue, halt or serror"),
    };
    let spec = CellSpec {
        kernel: build,
        symbols,
        test: job.test.clone(),
        faults: job.faults.clone(),
        loops: job.loops,
        timeout: Duration::from_secs(job.timeout_s),
        temp_c: index.temp_c,
        adc: index.adc,
        on_abort,
        expected: job.expected.map(|outcome| crate::matrix::Expectation {
            outcome,
            rationale: job.rationale.clone(),
        }),
        dir: dir.to_path_buf(),
        // A LAVA job boots its kernel (no snapshot: it runs where the lab puts it).
        restore: None,
        cold_reason: None,
    };
    let mut events = EventsReport::parse(&record.events);
    events.missing = record.events.is_empty();
    let summary_aborts = events.summary.as_ref().map(|summary| summary.aborts);
    let exit = record.exit(&events, spec.timeout);
    let recorded = Recorded {
        exit: exit.unwrap_or(QemuExit::Exited(-1)),
        console: record.console.clone(),
        duration: record.duration,
        // LAVA's log has no timestamps per line: no phases.
        test_started: None,
        test_done: None,
        events,
        qemu_stderr_tail: String::new(),
    };
    if dir.exists() {
        std::fs::remove_dir_all(dir)
            .with_context(|| format!("cannot empty the cell directory {}", dir.display()))?;
    }
    fsutil::write_atomic(&dir.join("console.log"), record.console.as_bytes())?;
    fsutil::write_atomic(&dir.join("events.jsonl"), record.events.as_bytes())?;
    fsutil::write_atomic(
        &dir.join("qemu.cmd"),
        format!("{}\n", record.boot_command.as_deref().unwrap_or("")).as_bytes(),
    )?;
    let lava = serde_json::json!({
        "job": job.job,
        "job_name": job.job_name,
        "job_result": record.job_result,
        "error_type": record.error_type,
        "error_msg": record.error_msg,
        "begin": record.begin,
        "end": record.end,
        "verdict_aborts": record.verdict_aborts,
        "cases": record.cases,
    });
    fsutil::write_atomic(
        &dir.join("lava.json"),
        format!("{}\n", serde_json::to_string_pretty(&lava)?).as_bytes(),
    )?;

    let mut report = cell::evaluate(&spec, recorded);
    if exit.is_none() {
        report.outcome = Outcome::Error;
        report.ok = false;
        report.checks_failed = false;
        report.exit = "unknown (no end marker in the LAVA log)".into();
        report.error = Some(format!(
            "the LAVA log has no `{END}`: QEMU or the plugin did not end through the plugin's exit{}",
            match (&record.error_type, &record.error_msg) {
                (Some(kind), Some(msg)) => format!(" (LAVA: {kind}: {msg})"),
                (None, Some(msg)) => format!(" (LAVA: {msg})"),
                _ => String::new(),
            }
        ));
        if report.console_tail.is_none() {
            report.console_tail = Some(crate::console::tail(&record.console, 40));
        }
    }
    // The verdict line is made from the summary: a difference means the log is damaged.
    if let (Some(verdict), Some(summary)) = (record.verdict_aborts, summary_aborts) {
        if verdict != summary {
            report.events_notes.push(format!(
                "the plugin's verdict line counts {verdict} aborts, its summary {summary}: the LAVA log is damaged"
            ));
        }
    }
    Ok(report)
}

/// Exit status: 0 when every job's cell is as expected, 1 otherwise (a job without a log
/// is not run).
pub fn import_command(args: &ImportLavaArgs) -> Result<u8> {
    let started = Instant::now();
    let index = read_index(&args.index)?;
    let index_dir = args
        .index
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let mut logs: BTreeMap<String, &PathBuf> = BTreeMap::new();
    for log in &args.logs {
        let stem = log
            .file_stem()
            .and_then(|s| s.to_str())
            .with_context(|| format!("{}: no file name", log.display()))?;
        if !index.jobs.iter().any(|j| j.stem() == stem) {
            let known: Vec<&str> = index.jobs.iter().map(IndexJob::stem).collect();
            bail!(
                "{}: no job `{stem}` in {} (a log is named after its job file: {})",
                log.display(),
                args.index.display(),
                known.join(", ")
            );
        }
        if logs.insert(stem.to_string(), log).is_some() {
            bail!("{}: a second log for job `{stem}`", log.display());
        }
    }
    // Every log is read, and every System.map found, before anything is written.
    if !["continue", "halt", "serror"].contains(&index.on_abort.as_str()) {
        bail!(
            "{}: on_abort: `{}` is not continue, halt or serror",
            args.index.display(),
            index.on_abort
        );
    }
    let mut records = Vec::new();
    for job in &index.jobs {
        let Some(path) = logs.get(job.stem()) else {
            records.push(None);
            continue;
        };
        let Some(map) = job.artifacts.get("systemmap") else {
            bail!(
                "{}: job {}: artifacts.systemmap is missing",
                args.index.display(),
                job.job
            );
        };
        require_file(
            &index_dir.join(map),
            &format!("job {}'s System.map", job.job),
            "rzgate-runner export-lava",
        )?;
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let record = Some(LabRecord::parse(&text).with_context(|| format!("{}", path.display()))?);
        records.push(record);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut cells = Vec::new();
    let mut not_run = Vec::new();
    for (job, record) in index.jobs.iter().zip(&records) {
        match record {
            Some(record) => {
                let dir = args.out.join("cells").join(&job.kernel).join(&job.test);
                cells.push(import_cell(job, &index, &index_dir, record, &dir)?);
            }
            None => not_run.push(NotRunCell {
                kernel: job.kernel.clone(),
                test: job.test.clone(),
                expected: job.expected,
            }),
        }
    }
    let unique = |items: Vec<&String>| {
        let mut seen = Vec::<String>::new();
        for item in items {
            if !seen.contains(item) {
                seen.push(item.clone());
            }
        }
        seen
    };
    let mut report = RunReport {
        summary: Summary {
            wall_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            kernels: unique(index.jobs.iter().map(|j| &j.kernel).collect()),
            tests: unique(index.jobs.iter().map(|j| &j.test).collect()),
            repeat: 1,
            jobs: 1,
            on_abort: index.on_abort.clone(),
            temp_c: index.temp_c,
            adc: index.adc,
            dtb: index_dir.join(&index.dtb).display().to_string(),
            ..Summary::default()
        },
        cells,
        not_run,
    };
    report.recount();
    run::write_run_reports(&report, &args.out)?;
    print!("{}", report::render_table(&report));
    println!("reports: {}", args.out.join("report.md").display());
    Ok(if report.all_ok() { 0 } else { 1 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    fn cell<'a>(faults: &'a [String]) -> JobCell<'a> {
        JobCell {
            kernel: "prefix",
            test: "adc-probe-failure",
            loops: 1,
            timeout_s: 90,
            temp_c: 25.0,
            adc: [0x400; 8],
            on_abort: OnAbort::Continue,
            faults,
        }
    }

    fn urls() -> JobUrls {
        let u = |p: &str| format!("https://lab.example/rzgate/{p}");
        JobUrls {
            kernel: u("kernels/prefix/Image"),
            ramdisk: u("initramfs.cpio"),
            dtb: u("virt-rzg3s.dtb"),
            soc: u("soc.yaml"),
            systemmap: u("kernels/prefix/System.map"),
            plugin: u("librzgate.so"),
        }
    }

    #[test]
    fn a_job_carries_the_cell_through_image_arg_and_round_trips() {
        let faults = vec!["adc-sresb-stuck".to_string()];
        let job = job(&cell(&faults), &urls(), None).unwrap();
        let yaml = serde_yaml::to_string(&job).unwrap();
        let back: Job = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(back, job);

        let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        assert_eq!(value["device_type"], "qemu");
        assert_eq!(
            value["context"]["arch"], "aarch64",
            "not arm64: LAVA's version probe"
        );
        assert_eq!(value["context"]["memory"], 1024);
        let actions = value["actions"].as_sequence().unwrap();
        let deploy = &actions[0]["deploy"];
        assert_eq!(deploy["to"], "tmpfs");
        let images = &deploy["images"];
        assert_eq!(
            images["kernel"]["image_arg"],
            "-kernel {kernel} -append \"console=ttyAMA0 panic=-1 oops=panic printk.time=1 rdinit=/init rzgate.test=adc-probe-failure rzgate.loops=1 rzgate.temp_mc=25000 rzgate.adc=1024:1024:1024:1024:1024:1024:1024:1024\""
        );
        assert_eq!(
            images["plugin"]["image_arg"],
            "-plugin {plugin},soc={soc},events=/dev/null,on_abort=continue,temp=25,adc=1024:1024:1024:1024:1024:1024:1024:1024,faults=adc-sresb-stuck,symbols={systemmap},verdict=stdout"
        );
        assert_eq!(images["soc"]["image_arg"], "");
        assert_eq!(
            images["systemmap"]["url"],
            "https://lab.example/rzgate/kernels/prefix/System.map"
        );
        let boot = &actions[1]["boot"];
        assert_eq!(boot["method"], "qemu");
        assert!(boot.get("docker").is_none());
        let monitor = &actions[2]["test"]["monitors"][0];
        assert_eq!(monitor["start"], "# rzgate-begin");
        assert_eq!(monitor["end"], "# rzgate-end");
        assert_eq!(monitor["name"], "rzgate-prefix-adc-probe-failure");
        assert_eq!(monitor["fixupdict"][""], "skip");
        assert_eq!(actions[2]["test"]["timeout"]["seconds"], 90);
        // The job outlives its actions.
        assert!(job.timeouts.job.seconds > 90 + DEPLOY_TIMEOUT_S + BOOT_TIMEOUT_S);
    }

    #[test]
    fn the_docker_option_names_the_image_and_odd_kernel_names_are_made_safe() {
        let mut c = cell(&[]);
        c.kernel = "upstream+patch";
        let job = job(&c, &urls(), Some("registry.example/qemu:11.1")).unwrap();
        let Action::Boot(boot) = &job.actions[1] else {
            panic!("the second action is not the boot")
        };
        assert_eq!(
            boot.docker.as_ref().unwrap().image,
            "registry.example/qemu:11.1"
        );
        let Action::Test(test) = &job.actions[2] else {
            panic!("the third action is not the test")
        };
        assert_eq!(
            test.monitors[0].name,
            "rzgate-upstream_patch-adc-probe-failure"
        );
    }

    #[test]
    fn the_ktap_pattern_matches_results_skips_and_the_verdict_only() {
        // Python's re and Rust's differ in look-ahead support; check the shape the monitor
        // relies on instead: every result line has `ok N name`, ends with a line break.
        assert!(KTAP_PATTERN.starts_with("(?P<result>(?=ok \\d+ [^\\r\\n]*# SKIP)|not ok|ok)"));
        assert!(KTAP_PATTERN.ends_with("[\\r\\n]"));
        assert!(KTAP_PATTERN.contains("(?P<test_case_id>"));
    }

    #[test]
    fn the_device_configuration_has_the_jobs_machine() {
        let yaml = device_configuration("qemu-system-aarch64").unwrap();
        let value: serde_yaml::Value = serde_yaml::from_str(&yaml).unwrap();
        let qemu = &value["actions"]["boot"]["methods"]["qemu"]["parameters"];
        assert_eq!(qemu["command"], "qemu-system-aarch64");
        let options: Vec<&str> = qemu["options"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|o| o.as_str().unwrap())
            .collect();
        assert!(options.contains(&"-cpu cortex-a55") && options.contains(&"-m 1024"));
        assert!(options.contains(&"-net none"));
        assert_eq!(qemu["extra"][0], "-smp 1");
        assert_eq!(value["available_architectures"][0], "aarch64");
        assert!(value["actions"]["deploy"]["methods"].get("image").is_some());
    }

    /// A workspace with fake build products, and `export-lava` arguments over it.
    fn export_args(dir: &Path, extra: &[&str]) -> ExportLavaArgs {
        use clap::Parser;
        for kernel in ["upstream", "prefix"] {
            let k = dir.join("kernels").join(kernel);
            std::fs::create_dir_all(&k).unwrap();
            std::fs::write(k.join("Image"), format!("{kernel} image")).unwrap();
            std::fs::write(k.join("System.map"), testdata::SYSTEM_MAP).unwrap();
        }
        for name in ["initramfs.cpio", "librzgate.so", "soc.yaml", "virt.dtb"] {
            std::fs::write(dir.join(name), name).unwrap();
        }
        // The DTB is given, so QEMU never runs; the toolchain only has to name one.
        std::fs::write(dir.join("toolchain.env"), "QEMU=/bin/sh\n").unwrap();
        let path = |name: &str| dir.join(name).display().to_string();
        let matrix = Path::new(env!("CARGO_MANIFEST_DIR")).join("../matrix.yaml");
        let mut argv: Vec<String> = [
            "rzgate-runner",
            "export-lava",
            "--kernels-dir",
            &path("kernels"),
            "--out",
            &path("lava"),
            "--initramfs",
            &path("initramfs.cpio"),
            "--plugin",
            &path("librzgate.so"),
            "--soc",
            &path("soc.yaml"),
            "--dtb",
            &path("virt.dtb"),
            "--toolchain",
            &path("toolchain.env"),
            "--matrix",
            &matrix.display().to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        argv.extend(extra.iter().map(|s| s.to_string()));
        let crate::cli::Command::ExportLava(args) =
            crate::cli::Cli::try_parse_from(argv).unwrap().command
        else {
            unreachable!()
        };
        args
    }

    #[test]
    fn export_writes_jobs_index_device_and_artifacts_and_replaces_an_earlier_export() {
        let dir = tempfile::tempdir().unwrap();
        let args = export_args(
            dir.path(),
            &[
                "--cells",
                "prefix:adc-unbind,upstream:selftest-panic",
                "--artifact-url",
                "https://lab.example/a/",
            ],
        );
        assert_eq!(export_command(&args).unwrap(), 0);
        let out = dir.path().join("lava");
        let index: Index = read_index(&out.join("index.json")).unwrap();
        let cells: Vec<(&str, &str, Option<Outcome>)> = index
            .jobs
            .iter()
            .map(|j| (j.kernel.as_str(), j.test.as_str(), j.expected))
            .collect();
        assert_eq!(
            cells,
            [
                ("prefix", "adc-unbind", Some(Outcome::Abort)),
                ("upstream", "selftest-panic", None)
            ]
        );
        let abort = &index.jobs[0];
        assert!(abort.rationale.is_some());
        assert_eq!(
            abort.artifacts["systemmap"],
            "artifacts/kernels/prefix/System.map"
        );
        assert_eq!(
            std::fs::read_to_string(out.join(&abort.artifacts["kernel"])).unwrap(),
            "prefix image"
        );
        let job: Job =
            serde_yaml::from_str(&std::fs::read_to_string(out.join(&abort.job)).unwrap()).unwrap();
        let Action::Deploy(deploy) = &job.actions[0] else {
            panic!("the first action is not the deploy")
        };
        assert_eq!(
            deploy.images.kernel.url,
            "https://lab.example/a/kernels/prefix/Image"
        );
        assert_eq!(
            deploy.images.plugin.url,
            "https://lab.example/a/librzgate.so"
        );
        assert!(out.join("device.yaml").is_file());

        // Another selection: the earlier jobs are gone, not left to be submitted.
        let args = export_args(dir.path(), &["--kernels", "upstream", "--tests", "boot"]);
        export_command(&args).unwrap();
        let names: Vec<String> = std::fs::read_dir(out.join("jobs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["upstream--boot.yaml"]);
        let index = read_index(&out.join("index.json")).unwrap();
        assert!(
            index.artifact_url.starts_with("file:///"),
            "{}",
            index.artifact_url
        );
    }

    #[test]
    fn bad_export_arguments_are_named_and_nothing_is_written() {
        let dir = tempfile::tempdir().unwrap();
        for (extra, expected) in [
            (
                vec!["--cells", "prefix"],
                "--cells[0]: `prefix` is not KERNEL:TEST",
            ),
            (vec!["--cells", "prefix:Boot"], "--cells[0]"),
            (
                vec!["--cells", "prefix:boot,prefix:boot"],
                "prefix:boot is selected twice",
            ),
            (vec!["--cells", "mine:boot"], "kernel `mine` is not built"),
            (
                vec!["--artifact-url", "lab/a"],
                "--artifact-url `lab/a`: expected a URL",
            ),
            (vec!["--docker-image", "a b"], "--docker-image `a b`"),
        ] {
            let args = export_args(dir.path(), &extra);
            let error = format!("{:#}", export_command(&args).unwrap_err());
            assert!(error.contains(expected), "{extra:?}: {error}");
            assert!(
                !dir.path().join("lava").exists(),
                "{extra:?} wrote something"
            );
        }
    }

    /// A lava-run log of a cell: LAVA's own lines, the guest's console, and the plugin's
    /// stream (with one event line cut into a guest line).
    fn lab_log(console: &str, events: &str, end: bool, job: &str) -> String {
        let entry = |dt: &str, lvl: &str, msg: &str| {
            format!(
                "{{\"dt\": \"2026-12-02T00:{dt}+00:00\", \"lvl\": \"{lvl}\", \"msg\": {}}}\n",
                serde_json::to_string(msg).unwrap()
            )
        };
        let mut log = entry(
            "04:31.000000",
            "info",
            "lava-dispatcher, installed at version: 2026.10",
        );
        log += &entry(
            "04:31.050000",
            "info",
            "Boot command: /usr/bin/qemu-system-aarch64 -cpu cortex-a55",
        );
        log += &entry("04:31.100000", "target", BEGIN);
        let event_lines: Vec<&str> = events.lines().collect();
        let (first, rest) = event_lines.split_first().unwrap();
        log += &entry("04:31.100000", "target", &format!("{EVENT_PREFIX}{first}"));
        let mut lines = console.lines();
        // The guest had printed "Booting Li" when the plugin's next write came.
        let head = lines.next().unwrap();
        let (a, b) = head.split_at(head.len().min(10));
        let mut rest = rest.iter();
        if let Some(event) = rest.next() {
            log += &entry(
                "04:31.200000",
                "target",
                &format!("{a}{EVENT_PREFIX}{event}"),
            );
            log += &entry("04:31.200000", "target", b);
        } else {
            log += &entry("04:31.200000", "target", head);
        }
        for line in lines {
            log += &entry("04:32.000000", "target", line);
        }
        let summary_aborts = events
            .lines()
            .last()
            .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .and_then(|v| v["aborts"].as_u64())
            .unwrap_or(0);
        for event in rest {
            log += &entry("04:33.000000", "target", &format!("{EVENT_PREFIX}{event}"));
        }
        if end {
            let status = if summary_aborts == 0 { "ok" } else { "not ok" };
            log += &entry(
                "04:33.000000",
                "target",
                &format!("{status} 1 {VERDICT_NAME} # aborts={summary_aborts}"),
            );
            log += &entry("04:33.500000", "target", END);
            log += "{\"dt\": \"2026-12-02T00:04:33.6+00:00\", \"lvl\": \"results\", \"msg\": {\"definition\": \"rzgate-x\", \"case\": \"rzgate_no_gated_access\", \"result\": \"fail\"}}\n";
            log += "{\"dt\": \"2026-12-02T00:04:34+00:00\", \"lvl\": \"results\", \"msg\": {\"definition\": \"lava\", \"case\": \"job\", \"result\": \"pass\"}}\n";
        } else {
            log += &format!("{{\"dt\": \"2026-12-02T00:06:34+00:00\", \"lvl\": \"results\", \"msg\": {{\"definition\": \"lava\", \"case\": \"job\", \"result\": \"fail\", \"error_msg\": \"{job}\", \"error_type\": \"Infrastructure\"}}}}\n");
        }
        log
    }

    #[test]
    fn a_log_gives_back_the_console_and_the_events() {
        let log = lab_log(
            testdata::PREFIX_ADC_UNBIND_CONSOLE,
            testdata::PREFIX_ADC_UNBIND_EVENTS,
            true,
            "",
        );
        let record = LabRecord::parse(&log).unwrap();
        assert!(record.begin && record.end);
        // LAVA logs lines without their line ends; the console comes back with `\n`.
        assert_eq!(
            record.console,
            testdata::PREFIX_ADC_UNBIND_CONSOLE.replace("\r\n", "\n")
        );
        assert_eq!(record.events, testdata::PREFIX_ADC_UNBIND_EVENTS);
        assert_eq!(record.job_result.as_deref(), Some("pass"));
        assert_eq!(record.cases["rzgate-x.rzgate_no_gated_access"], "fail");
        assert_eq!(record.duration, Duration::from_millis(2450));
        assert!(record.boot_command.unwrap().contains("qemu-system-aarch64"));
        // A server's log is the same lines as a YAML list.
        let listed: String = log.lines().map(|l| format!("- {l}\n")).collect();
        assert_eq!(LabRecord::parse(&listed).unwrap().console, record.console);
    }

    #[test]
    fn a_file_that_is_not_a_lava_log_is_refused_with_its_line() {
        let error =
            LabRecord::parse("{\"dt\": \"x\", \"lvl\": \"info\", \"msg\": \"a\"}\nBooting Linux\n")
                .unwrap_err();
        assert!(format!("{error:#}").contains("line 2"), "{error:#}");
    }

    #[test]
    fn plugin_lines_are_found_after_a_guest_fragment() {
        let Some((cut, PluginLine::Verdict(3))) =
            plugin_line("abcnot ok 1 rzgate.no-gated-access # aborts=3")
        else {
            panic!("verdict not found")
        };
        assert_eq!(cut, "abc");
        let Some(("", PluginLine::Verdict(0))) =
            plugin_line("ok 1 rzgate.no-gated-access # aborts=0")
        else {
            panic!("clean verdict not found")
        };
        assert!(matches!(
            plugin_line("xy# rzgate-end"),
            Some(("xy", PluginLine::End))
        ));
        assert!(plugin_line("ok 1 adc bound").is_none());
        assert_eq!(epoch_seconds("1970-01-02T00:00:01Z"), Some(86401.0));
        assert_eq!(
            epoch_seconds("2000-03-01T01:00:00+01:00"),
            Some(951868800.0)
        );
    }

    fn index_for(
        dir: &Path,
        kernel: &str,
        test: &str,
        expected: Option<Outcome>,
    ) -> (Index, IndexJob) {
        let map_dir = dir.join("artifacts/kernels").join(kernel);
        std::fs::create_dir_all(&map_dir).unwrap();
        std::fs::write(map_dir.join("System.map"), testdata::SYSTEM_MAP).unwrap();
        let mut artifacts = BTreeMap::new();
        artifacts.insert(
            "kernel".to_string(),
            format!("artifacts/kernels/{kernel}/Image"),
        );
        artifacts.insert(
            "systemmap".to_string(),
            format!("artifacts/kernels/{kernel}/System.map"),
        );
        let job = IndexJob {
            job: format!("jobs/{kernel}--{test}.yaml"),
            job_name: format!("rzgate {kernel} x {test}"),
            kernel: kernel.into(),
            test: test.into(),
            expected,
            rationale: Some("because".into()),
            loops: 1,
            timeout_s: 60,
            faults: vec![],
            artifacts,
        };
        let index = Index {
            artifact_url: "file:///x".into(),
            docker_image: None,
            on_abort: "continue".into(),
            temp_c: 42.0,
            adc: [0x400; 8],
            dtb: "artifacts/virt-rzg3s.dtb".into(),
            jobs: vec![job.clone()],
        };
        (index, job)
    }

    #[test]
    fn an_imported_cell_is_the_local_record() {
        let dir = tempfile::tempdir().unwrap();
        let (index, job) = index_for(dir.path(), "prefix", "adc-unbind", Some(Outcome::Abort));
        let record = LabRecord::parse(&lab_log(
            testdata::PREFIX_ADC_UNBIND_CONSOLE,
            testdata::PREFIX_ADC_UNBIND_EVENTS,
            true,
            "",
        ))
        .unwrap();
        let cell_dir = dir.path().join("cells/prefix/adc-unbind");
        let imported = import_cell(&job, &index, dir.path(), &record, &cell_dir).unwrap();

        // The local runner's record of the same console and events.
        let mut spec =
            crate::cell::tests::spec("adc-unbind", OnAbort::Continue, Some(Outcome::Abort));
        spec.dir = cell_dir.clone();
        spec.kernel.system_map = dir.path().join("artifacts/kernels/prefix/System.map");
        spec.kernel.image = dir.path().join("artifacts/kernels/prefix/Image");
        let local = cell::evaluate(
            &spec,
            crate::cell::tests::recorded(
                testdata::PREFIX_ADC_UNBIND_CONSOLE,
                testdata::PREFIX_ADC_UNBIND_EVENTS,
                QemuExit::Exited(0),
            ),
        );
        assert_eq!(imported.outcome, Outcome::Abort);
        assert!(imported.ok);
        assert_eq!(imported.aborts, local.aborts);
        assert_eq!(imported.root_abort, local.root_abort);
        assert_eq!(imported.ktap, local.ktap);
        assert_eq!(imported.exit, "exit status 0");
        assert_eq!(imported.duration_s, 2.45);
        assert!(
            imported.events_notes.is_empty(),
            "{:?}",
            imported.events_notes
        );
        assert_eq!(
            std::fs::read_to_string(cell_dir.join("events.jsonl")).unwrap(),
            testdata::PREFIX_ADC_UNBIND_EVENTS
        );
        let lava: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(cell_dir.join("lava.json")).unwrap())
                .unwrap();
        assert_eq!(lava["verdict_aborts"], 4);
    }

    #[test]
    fn a_log_without_the_end_marker_is_an_error_naming_lavas_reason() {
        let dir = tempfile::tempdir().unwrap();
        let (index, job) = index_for(dir.path(), "upstream", "boot", Some(Outcome::Clean));
        let record = LabRecord::parse(&lab_log(
            testdata::UPSTREAM_ADC_UNBIND_CONSOLE,
            testdata::CLEAN_EVENTS,
            false,
            "Connection closed",
        ))
        .unwrap();
        assert!(!record.end);
        let report = import_cell(&job, &index, dir.path(), &record, &dir.path().join("c")).unwrap();
        assert_eq!(report.outcome, Outcome::Error);
        assert!(!report.ok);
        let error = report.error.unwrap();
        assert!(error.contains("no `# rzgate-end`"), "{error}");
        assert!(
            error.contains("Infrastructure: Connection closed"),
            "{error}"
        );
        assert!(report.console_tail.is_some());

        // The monitor's timeout (a hung guest; measured with lava-run 2026.10): the
        // runner's timeout error.
        let mut record = record;
        record.error_type = Some("Test".into());
        record.error_msg = Some("lava-test-monitor timed out after 60 seconds".into());
        let report = import_cell(&job, &index, dir.path(), &record, &dir.path().join("c")).unwrap();
        let error = report.error.unwrap();
        assert!(
            error.starts_with("timeout after 60 s (QEMU killed)"),
            "{error}"
        );
    }

    #[test]
    fn import_writes_the_reports_and_lists_jobs_without_a_log_as_not_run() {
        let dir = tempfile::tempdir().unwrap();
        let (mut index, job) = index_for(dir.path(), "prefix", "adc-unbind", Some(Outcome::Abort));
        let (_, mut other) = index_for(dir.path(), "upstream", "boot", Some(Outcome::Clean));
        other.job = "jobs/upstream--boot.yaml".into();
        index.jobs.push(other);
        std::fs::write(
            dir.path().join("index.json"),
            serde_json::to_string(&index).unwrap(),
        )
        .unwrap();
        let log = dir.path().join(format!("{}.log", job.stem()));
        std::fs::write(
            &log,
            lab_log(
                testdata::PREFIX_ADC_UNBIND_CONSOLE,
                testdata::PREFIX_ADC_UNBIND_EVENTS,
                true,
                "",
            ),
        )
        .unwrap();
        let out = dir.path().join("report");
        let args = ImportLavaArgs {
            index: dir.path().join("index.json"),
            logs: vec![log.clone()],
            out: out.clone(),
        };
        // A job not run: not all ok.
        assert_eq!(import_command(&args).unwrap(), 1);
        let report: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out.join("report.json")).unwrap())
                .unwrap();
        assert_eq!(report["cells"][0]["outcome"], "abort");
        assert_eq!(report["cells"][0]["ok"], true);
        assert_eq!(report["not_run"][0]["test"], "boot");
        assert!(out.join("junit.xml").exists() && out.join("report.md").exists());

        // A log named after no job is refused, naming it, and nothing is written.
        let stray = dir.path().join("nobody--boot.log");
        std::fs::write(&stray, "").unwrap();
        let args = ImportLavaArgs {
            index: dir.path().join("index.json"),
            logs: vec![stray],
            out: dir.path().join("other"),
        };
        let error = format!("{:#}", import_command(&args).unwrap_err());
        assert!(
            error.contains("nobody--boot.log") && error.contains("no job `nobody--boot`"),
            "{error}"
        );
        assert!(!dir.path().join("other").exists());

        // A malformed index names the field.
        std::fs::write(
            dir.path().join("bad.json"),
            serde_json::to_string(&index)
                .unwrap()
                .replace("\"loops\":1", "\"loops\":\"one\""),
        )
        .unwrap();
        let args = ImportLavaArgs {
            index: dir.path().join("bad.json"),
            logs: vec![],
            out: dir.path().join("other"),
        };
        let error = format!("{:#}", import_command(&args).unwrap_err());
        assert!(error.contains("jobs[0].loops"), "{error}");

        // A job whose System.map is gone: named, and nothing is written.
        std::fs::remove_file(dir.path().join("artifacts/kernels/prefix/System.map")).unwrap();
        let args = ImportLavaArgs {
            index: dir.path().join("index.json"),
            logs: vec![log],
            out: dir.path().join("other"),
        };
        let error = format!("{:#}", import_command(&args).unwrap_err());
        assert!(error.contains("prefix/System.map"), "{error}");
        assert!(!dir.path().join("other").exists());
    }
}
