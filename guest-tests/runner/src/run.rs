//! The `run` command, and what `validate` shares with it: resolving a run's settings and
//! inputs, and executing cells in parallel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::cell::{run_cell, CellSpec, RunInputs};
use crate::cli::{CellArgs, RunArgs};
use crate::dtb;
use crate::fsutil;
use crate::inputs::{require_file, KernelBuild, Toolchain};
use crate::interrupt::{self, Interrupt};
use crate::matrix::{self, Expectation, Matrix, OnAbort, TestSpec};
use crate::progress::Progress;
use crate::report::{self, CellReport, NotRunCell, Repetition, RunReport, Shard, Summary};
use crate::selftest;
use crate::snapshot::{self, Request, Snapshot};
use crate::sweep;
use crate::symbols::SymbolMap;

/// The run-wide parameters after the command line has overridden the matrix defaults.
#[derive(Debug, Clone)]
pub struct Settings {
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub on_abort: OnAbort,
    pub timeout_override: Option<u64>,
    pub loops_override: Option<u32>,
    pub jobs: usize,
}

impl Settings {
    pub fn resolve(args: &CellArgs, jobs: Option<u32>, matrix: &Matrix) -> Result<Settings> {
        let temp_c = args.temp.unwrap_or(matrix.defaults.temp_c);
        matrix::check_temp(temp_c).context("--temp")?;
        let adc = match &args.adc {
            Some(text) => matrix::parse_adc_arg(text, matrix.defaults.adc)?,
            None => matrix.defaults.adc,
        };
        let jobs = match jobs {
            Some(jobs) => jobs as usize,
            None => std::thread::available_parallelism().map_or(1, |n| n.get()),
        };
        Ok(Settings {
            temp_c,
            adc,
            on_abort: args.on_abort.unwrap_or(matrix.defaults.on_abort),
            timeout_override: args.timeout,
            loops_override: args.loops,
            jobs,
        })
    }

    pub fn timeout(&self, matrix: &Matrix, test: &TestSpec) -> Duration {
        Duration::from_secs(
            self.timeout_override
                .or(test.timeout_s)
                .unwrap_or(matrix.defaults.timeout_s),
        )
    }

    pub fn loops(&self, matrix: &Matrix, test: &TestSpec) -> u32 {
        self.loops_override
            .or(test.loops)
            .unwrap_or(matrix.defaults.loops)
    }

    /// One cell of `test` on `kernel` with these settings.
    pub fn cell(
        &self,
        matrix: &Matrix,
        kernel: &KernelBuild,
        symbols: &Arc<SymbolMap>,
        test: &TestSpec,
        expected: Option<Expectation>,
        dir: PathBuf,
    ) -> CellSpec {
        CellSpec {
            kernel: kernel.clone(),
            symbols: symbols.clone(),
            test: test.id.clone(),
            faults: test.faults.clone(),
            loops: self.loops(matrix, test),
            timeout: self.timeout(matrix, test),
            temp_c: self.temp_c,
            adc: self.adc,
            on_abort: self.on_abort,
            expected,
            dir,
            restore: None,
            cold_reason: test.cold_boot.clone(),
        }
    }
}

/// Checks the build products and produces the DTB (or takes the given one).
pub fn prepare_inputs(args: &CellArgs, out_dir: &Path) -> Result<RunInputs> {
    let toolchain = Toolchain::load(args.toolchain.toolchain.as_deref())?;
    require_file(&args.initramfs, "the initramfs", "make initramfs")?;
    require_file(&args.plugin, "the plugin", "make plugin")?;
    require_file(&args.soc, "the SoC description", "git checkout socs/")?;
    let dtb = match &args.dtb {
        Some(dtb) => {
            require_file(dtb, "the DTB given with --dtb", "rzgate-runner dtb")?;
            dtb.clone()
        }
        None => {
            let dtb = out_dir.join("virt-rzg3s.dtb");
            let initramfs = std::fs::read(&args.initramfs)
                .with_context(|| format!("cannot read {}", args.initramfs.display()))?;
            let selftest_list = selftest::compatible_list_from_initramfs(&initramfs);
            dtb::generate(&toolchain, &args.soc, &dtb, selftest_list.as_deref())
                .context("cannot generate the guest DTB")?;
            dtb
        }
    };
    Ok(RunInputs {
        toolchain,
        initramfs: args.initramfs.clone(),
        dtb,
        plugin: args.plugin.clone(),
        soc: args.soc.clone(),
        interrupt: Interrupt::new(),
        snapshots: (!args.cold).then(|| out_dir.join("snapshots")),
    })
}

/// Finds a kernel build and loads its symbols (once per kernel, shared by its cells).
pub fn load_kernel(name: &str, dir: &Path) -> Result<(KernelBuild, Arc<SymbolMap>)> {
    let build = KernelBuild::find(name, dir)?;
    let symbols = SymbolMap::load(&build.system_map)?;
    Ok((build, Arc::new(symbols)))
}

enum CellEvent {
    Started(usize),
    /// `None`: the run was interrupted before the cell finished.
    Finished(usize, Option<Box<CellReport>>),
}

/// Runs the cells, up to `jobs` at once, and returns their reports in `specs` order;
/// `None` for a cell that did not finish because the run was interrupted
/// (`inputs.interrupt`): from then on no cell starts.
///
/// Worker threads take the next cell from a shared counter, so a slow cell never holds up
/// the others; the calling thread only draws progress from the workers' messages. The
/// longest cells start first ([`start_order`]).
pub fn execute_cells(
    inputs: &RunInputs,
    specs: &[CellSpec],
    jobs: usize,
) -> Vec<Option<CellReport>> {
    let specs = &attach_snapshots(inputs, specs, jobs);
    let order = start_order(specs);
    let next = AtomicUsize::new(0);
    let (sender, receiver) = mpsc::channel();
    let mut reports: Vec<Option<CellReport>> = vec![None; specs.len()];
    let mut progress = Progress::new(specs.len());
    std::thread::scope(|scope| {
        for _ in 0..jobs.min(specs.len()) {
            let sender = sender.clone();
            let (next, order) = (&next, &order);
            scope.spawn(move || loop {
                // After an interrupt the cell directories of cells that never start keep
                // whatever an earlier run left; the report lists those cells as not run.
                if inputs.interrupt.signal().is_some() {
                    return;
                }
                let Some(&index) = order.get(next.fetch_add(1, Ordering::SeqCst)) else {
                    return;
                };
                let spec = &specs[index];
                let _ = sender.send(CellEvent::Started(index));
                let report = run_cell(inputs, spec, false);
                let _ = sender.send(CellEvent::Finished(index, report.map(Box::new)));
            });
        }
        // Only the workers hold senders now: the loop ends when the last one is done.
        drop(sender);
        for event in receiver {
            match event {
                CellEvent::Started(index) => progress.started(&label(&specs[index])),
                CellEvent::Finished(index, Some(report)) => {
                    progress.finished(&report, &label(&specs[index]));
                    reports[index] = Some(*report);
                }
                CellEvent::Finished(index, None) => progress.not_run(&label(&specs[index])),
            }
        }
    });
    progress.done();
    reports
}

/// Makes the snapshots the cells can use (one per kernel, up to `jobs` at once) and points
/// each cell that can restore at its kernel's; returns the cells. A cell whose test needs
/// its own boot, or whose kernel's snapshot could not be made, boots cold with the reason.
/// Without a snapshot directory (`--cold`) every cell boots.
pub fn attach_snapshots(inputs: &RunInputs, specs: &[CellSpec], jobs: usize) -> Vec<CellSpec> {
    let Some(dir) = &inputs.snapshots else {
        // Every cell boots: there is no "why" to report.
        return specs
            .iter()
            .map(|spec| CellSpec {
                cold_reason: None,
                ..spec.clone()
            })
            .collect();
    };
    let restorable = |spec: &CellSpec| {
        spec.cold_reason.is_none()
            && specs
                .iter()
                .filter(|s| s.cold_reason.is_none() && s.kernel.image == spec.kernel.image)
                .count()
                >= MIN_CELLS_PER_SNAPSHOT
    };
    let mut requests: Vec<Request> = Vec::new();
    for spec in specs.iter().filter(|s| restorable(s)) {
        if requests.iter().any(|r| r.kernel.image == spec.kernel.image) {
            continue;
        }
        let taken = |name: &str| requests.iter().any(|r| r.dir == dir.join(name));
        let mut name = spec.kernel.name.clone();
        if taken(&name) {
            name = format!("{name}-{}", requests.len());
        }
        requests.push(Request {
            kernel: &spec.kernel,
            temp_c: spec.temp_c,
            adc: spec.adc,
            dir: dir.join(name),
        });
    }
    let made = make_all(inputs, &requests, jobs);
    for (request, result) in requests.iter().zip(&made) {
        match result {
            Ok(snapshot) => eprintln!(
                "rzgate-runner: snapshot of {} made in {:.1} s",
                request.kernel.name, snapshot.seconds
            ),
            Err(error) => eprintln!(
                "rzgate-runner: no snapshot of {}: {error}; its cells boot",
                request.kernel.name
            ),
        }
    }
    specs
        .iter()
        .map(|spec| {
            let mut spec = spec.clone();
            if spec.cold_reason.is_some() {
                return spec;
            }
            if !restorable(&spec) {
                spec.cold_reason = Some(ONE_CELL.into());
                return spec;
            }
            let made = requests
                .iter()
                .position(|r| r.kernel.image == spec.kernel.image)
                .and_then(|i| made.get(i));
            match made {
                Some(Ok(snapshot))
                    if snapshot.temp_c == spec.temp_c && snapshot.adc == spec.adc =>
                {
                    spec.restore = Some(snapshot.clone());
                }
                Some(Ok(_)) => {
                    spec.cold_reason = Some("other host values than its kernel's snapshot".into())
                }
                Some(Err(error)) => spec.cold_reason = Some(format!("no snapshot: {error}")),
                None => spec.cold_reason = Some("no snapshot was made".into()),
            }
            spec
        })
        .collect()
}

/// A snapshot costs a boot and each restore about a quarter of one: a kernel with a single
/// cell to run boots it.
const MIN_CELLS_PER_SNAPSHOT: usize = 2;
const ONE_CELL: &str = "the only cell of its kernel in this run (a snapshot would cost a boot too)";

/// A kernel's snapshot, or why there is none.
type Made = Result<Arc<Snapshot>, String>;

/// Makes every requested snapshot, up to `jobs` at once, in request order.
fn make_all(inputs: &RunInputs, requests: &[Request], jobs: usize) -> Vec<Made> {
    let machine = snapshot::Machine {
        toolchain: &inputs.toolchain,
        initramfs: &inputs.initramfs,
        dtb: &inputs.dtb,
        plugin: &inputs.plugin,
        soc: &inputs.soc,
        interrupt: &inputs.interrupt,
    };
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Made>>> = requests.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..jobs.clamp(1, requests.len().max(1)) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let (Some(request), Some(slot)) = (requests.get(i), results.get(i)) else {
                    return;
                };
                let result = snapshot::make(&machine, request)
                    .map(Arc::new)
                    .map_err(|e| format!("{e:#}"));
                *slot.lock().unwrap_or_else(|p| p.into_inner()) = Some(result);
            });
        }
    });
    results
        .into_iter()
        .map(|slot| {
            slot.into_inner()
                .unwrap_or_else(|p| p.into_inner())
                .unwrap_or_else(|| Err("not made".to_string()))
        })
        .collect()
}

/// The order the cells start in: the longest first, otherwise as given. A cell's timeout
/// says how long its test may take (`rtctest` waits out a minute, 200 s; the loop tests
/// 180 s), and among equal timeouts the most loops go first. Started last, a long cell
/// would run on while the other workers idle.
fn start_order(specs: &[CellSpec]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..specs.len()).collect();
    order.sort_by_key(|&index| std::cmp::Reverse((specs[index].timeout, specs[index].loops)));
    order
}

/// A cell's name in progress output: `kernel/test`, plus `run-N` for repetitions (the
/// name of their directory), so that concurrent repetitions stay apart.
fn label(spec: &CellSpec) -> String {
    let name = format!("{}/{}", spec.kernel.name, spec.test);
    match spec.dir.file_name().and_then(|n| n.to_str()) {
        Some(leaf) if leaf.starts_with("run-") => format!("{name} {leaf}"),
        _ => name,
    }
}

/// Merges the repetitions of each cell (reports in any order; cells keep the order of
/// their first repetition). The cell shown is the first repetition that missed its
/// expectation, else the first; `flaky` marks outcomes that differ between repetitions.
pub fn merge_repetitions(reports: Vec<CellReport>, repeat: u32) -> Vec<CellReport> {
    if repeat <= 1 {
        return reports;
    }
    let mut order: Vec<(String, String)> = Vec::new();
    let mut groups: HashMap<(String, String), Vec<CellReport>> = HashMap::new();
    for report in reports {
        let key = (report.kernel.clone(), report.test.clone());
        if !groups.contains_key(&key) {
            order.push(key.clone());
        }
        groups.entry(key).or_default().push(report);
    }
    order
        .into_iter()
        .map(|key| {
            let runs = groups.remove(&key).expect("grouped");
            let repetitions: Vec<Repetition> = runs
                .iter()
                .map(|r| Repetition {
                    outcome: r.outcome,
                    ok: r.ok,
                    duration_s: r.duration_s,
                    error: r.error.clone(),
                    root_abort: r.root_abort.clone(),
                })
                .collect();
            let flaky = runs.iter().any(|r| r.outcome != runs[0].outcome);
            let all_ok = runs.iter().all(|r| r.ok);
            let shown = runs.iter().position(|r| !r.ok).unwrap_or(0);
            let mut cell = runs.into_iter().nth(shown).expect("index in range");
            cell.ok = all_ok;
            cell.flaky = flaky;
            cell.repetitions = Some(repetitions);
            cell
        })
        .collect()
}

/// The (kernel, test) index pairs a run covers: the selection in kernel-major order (the
/// order of an unsharded report's cells), or the shard's slice of it.
fn selected_cells(kernels: usize, tests: usize, shard: Option<Shard>) -> Vec<(usize, usize)> {
    (0..kernels)
        .flat_map(|k| (0..tests).map(move |t| (k, t)))
        .enumerate()
        .filter(|(position, _)| shard.is_none_or(|shard| shard.has(*position)))
        .map(|(_, pair)| pair)
        .collect()
}

/// Exit status of `run`: 0 when everything matched, 1 otherwise, 128 + the signal when
/// the run was interrupted (130 for Ctrl-C, 143 for SIGTERM, as a shell reports a process
/// the signal killed).
pub fn command(args: &RunArgs) -> Result<u8> {
    let started = Instant::now();
    let matrix = Matrix::load(&args.cells.matrix)?;
    let drop_empty = |names: &[String]| -> Vec<String> {
        names
            .iter()
            .filter(|n| !n.trim().is_empty())
            .map(|n| n.trim().to_string())
            .collect()
    };
    let kernels = matrix.select_kernels(&drop_empty(&args.kernels))?;
    let tests = matrix.select_tests(&drop_empty(&args.select.tests))?;
    let settings = Settings::resolve(&args.cells, args.select.jobs, &matrix)?;

    let mut builds = Vec::new();
    for kernel in &kernels {
        builds.push(load_kernel(kernel, &args.kernels_dir.join(kernel))?);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let inputs = prepare_inputs(&args.cells, &args.out)?;

    // Every repetition of a cell is in the same shard (flakiness is judged per cell).
    let pairs = selected_cells(builds.len(), tests.len(), args.shard);
    let mut specs = Vec::new();
    for repetition in 1..=args.repeat {
        for &(b, t) in &pairs {
            let ((build, symbols), test) = (&builds[b], &tests[t]);
            let mut dir: PathBuf = args.out.join("cells").join(&build.name).join(&test.id);
            if args.repeat > 1 {
                dir = dir.join(format!("run-{repetition}"));
            }
            let expected = matrix.expectation(&test.id, &build.name).cloned();
            specs.push(settings.cell(&matrix, build, symbols, test, expected, dir));
        }
    }
    if pairs.is_empty() {
        match args.shard {
            // More shards than cells: an empty shard is a valid, empty report.
            Some(_) => {}
            None => bail!("nothing to run"),
        }
    }

    // From here on a signal stops the run but the reports are still written.
    inputs.interrupt.on_signals()?;
    let reports = execute_cells(&inputs, &specs, settings.jobs);
    let not_run: Vec<NotRunCell> = specs
        .iter()
        .zip(&reports)
        .filter(|(_, report)| report.is_none())
        .map(|(spec, _)| NotRunCell {
            kernel: spec.kernel.name.clone(),
            test: spec.test.clone(),
            expected: spec.expected.as_ref().map(|e| e.outcome),
        })
        .collect();
    let cells = merge_repetitions(reports.into_iter().flatten().collect(), args.repeat);
    // With --repeat, a cell with at least one finished repetition is reported from those.
    let mut seen = std::collections::HashSet::new();
    let not_run: Vec<NotRunCell> = not_run
        .into_iter()
        .filter(|n| {
            !cells
                .iter()
                .any(|c| c.kernel == n.kernel && c.test == n.test)
        })
        .filter(|n| seen.insert(n.name()))
        .collect();
    let signal = inputs.interrupt.signal();
    let mut report = RunReport {
        summary: Summary {
            wall_s: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
            kernels: kernels.iter().map(|k| k.to_string()).collect(),
            tests: tests.iter().map(|t| t.id.clone()).collect(),
            repeat: args.repeat,
            jobs: settings.jobs,
            on_abort: settings.on_abort.as_str().to_string(),
            temp_c: settings.temp_c,
            adc: settings.adc,
            dtb: inputs.dtb.display().to_string(),
            interrupted: signal.is_some(),
            interrupted_by: signal.map(interrupt::signal_name),
            shard: args.shard,
            ..Summary::default()
        },
        cells,
        not_run,
    };
    report.recount();
    write_run_reports(&report, &args.out)?;
    print!("{}", report::render_table(&report));
    println!("reports: {}", args.out.join("report.md").display());
    Ok(match signal {
        Some(signal) => 128 + signal as u8,
        None if report.all_ok() => 0,
        None => 1,
    })
}

/// Writes report.json, report.md and junit.xml. The sweep table is derived from the cells
/// here rather than kept in [`RunReport`], so that every writer (run, merge, import-lava)
/// recomputes it from the cells it has and a re-read report cannot carry a stale one.
pub fn write_run_reports(report: &RunReport, out: &Path) -> Result<()> {
    let sweep = sweep::table(&report.cells, &report.summary.kernels);
    let mut json = serde_json::to_value(report).context("serializing report.json")?;
    if let (Some(sweep), Some(object)) = (&sweep, json.as_object_mut()) {
        object.insert(
            "sweep".into(),
            serde_json::to_value(sweep).context("serializing report.json's sweep")?,
        );
    }
    let json = serde_json::to_string_pretty(&json).context("serializing report.json")?;
    fsutil::write_atomic(&out.join("report.json"), format!("{json}\n").as_bytes())?;
    fsutil::write_atomic(
        &out.join("report.md"),
        report::render_markdown(report, &sweep::render_markdown(sweep.as_ref())).as_bytes(),
    )?;
    fsutil::write_atomic(
        &out.join("junit.xml"),
        report::render_junit(report).as_bytes(),
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::tests::cell;

    /// The inputs of a run whose QEMU is the toolchain file's `toolchain` line (a fake).
    fn inputs_with_qemu(toolchain: &str, snapshots: Option<PathBuf>) -> RunInputs {
        RunInputs {
            toolchain: Toolchain::parse(toolchain).unwrap(),
            initramfs: "i".into(),
            dtb: "d".into(),
            plugin: "p".into(),
            soc: "s".into(),
            interrupt: Interrupt::new(),
            snapshots,
        }
    }

    /// Cells t0..t<n-1> on prefix, each expected clean, in their own directories under `dir`.
    fn clean_cells(dir: &Path, n: usize) -> Vec<CellSpec> {
        (0..n)
            .map(|i| {
                let mut spec = crate::cell::tests::spec(
                    &format!("t{i}"),
                    OnAbort::Continue,
                    Some(Outcome::Clean),
                );
                spec.dir = dir.join(format!("cells/prefix/t{i}"));
                spec
            })
            .collect()
    }

    #[test]
    fn looping_cells_start_first_the_rest_keep_their_order() {
        let loops = [1, 20, 1, 1, 20, 5];
        let specs: Vec<CellSpec> = loops
            .iter()
            .map(|&n| CellSpec {
                loops: n,
                ..crate::cell::tests::spec("boot", OnAbort::Continue, None)
            })
            .collect();
        assert_eq!(start_order(&specs), [1, 4, 5, 0, 2, 3]);
    }

    #[test]
    fn longer_timeouts_start_before_more_loops() {
        let cells = [(60, 1), (60, 20), (200, 1), (180, 20), (60, 1)];
        let specs: Vec<CellSpec> = cells
            .iter()
            .map(|&(timeout_s, loops)| CellSpec {
                loops,
                timeout: Duration::from_secs(timeout_s),
                ..crate::cell::tests::spec("boot", OnAbort::Continue, None)
            })
            .collect();
        assert_eq!(start_order(&specs), [2, 3, 1, 0, 4]);
    }

    #[test]
    fn shards_slice_the_selection_round_robin_and_cover_it_once() {
        // 2 kernels x 3 tests: positions 0..6 are (0,0) (0,1) (0,2) (1,0) (1,1) (1,2).
        let all = selected_cells(2, 3, None);
        assert_eq!(all, [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]);
        let shard = |index| selected_cells(2, 3, Some(Shard { index, total: 4 }));
        assert_eq!(shard(1), [(0, 0), (1, 1)]);
        assert_eq!(shard(2), [(0, 1), (1, 2)]);
        assert_eq!(shard(3), [(0, 2)]);
        assert_eq!(shard(4), [(1, 0)]);
        let mut union: Vec<_> = (1..=4).flat_map(shard).collect();
        union.sort();
        assert_eq!(union, all);
        // Deterministic: the same arguments give the same slice.
        assert_eq!(shard(2), shard(2));
        // More shards than cells: the extra shards are empty.
        assert!(selected_cells(1, 2, Some(Shard { index: 3, total: 3 })).is_empty());
    }

    #[test]
    fn repetitions_merge_and_flag_flaky_cells() {
        let reports = vec![
            cell("prefix", "adc-unbind", Outcome::Abort, Outcome::Abort),
            cell("prefix", "boot", Outcome::Clean, Outcome::Clean),
            cell("prefix", "adc-unbind", Outcome::Clean, Outcome::Abort),
            cell("prefix", "boot", Outcome::Clean, Outcome::Clean),
        ];
        let merged = merge_repetitions(reports, 2);
        assert_eq!(merged.len(), 2);
        let unbind = &merged[0];
        assert_eq!(unbind.test, "adc-unbind");
        assert!(unbind.flaky && !unbind.ok);
        // The shown repetition is the one that missed.
        assert_eq!(unbind.outcome, Outcome::Clean);
        let outcomes: Vec<Outcome> = unbind
            .repetitions
            .as_ref()
            .unwrap()
            .iter()
            .map(|r| r.outcome)
            .collect();
        assert_eq!(outcomes, vec![Outcome::Abort, Outcome::Clean]);
        assert!(!merged[1].flaky && merged[1].ok);
    }

    #[test]
    fn single_run_is_untouched() {
        let reports = vec![cell("prefix", "boot", Outcome::Clean, Outcome::Clean)];
        let merged = merge_repetitions(reports.clone(), 1);
        assert_eq!(merged, reports);
    }

    #[test]
    fn settings_override_matrix_defaults() {
        use clap::Parser;
        let matrix = Matrix::parse(
            "defaults: {timeout_s: 60, loops: 1, temp_c: 42}\nkernels: [k]\ntests:\n  t: {loops: 20, timeout_s: 90}\n  u:\nexpectations:\n  t: {k: clean}\n  u: {k: clean}\n",
        )
        .unwrap();
        let cli = crate::cli::Cli::try_parse_from([
            "r", "run", "--temp", "30", "--adc", "7", "--jobs", "2",
        ])
        .unwrap();
        let crate::cli::Command::Run(run) = cli.command else {
            unreachable!()
        };
        let s = Settings::resolve(&run.cells, run.select.jobs, &matrix).unwrap();
        assert_eq!((s.temp_c, s.adc[0], s.adc[1], s.jobs), (30.0, 7, 0x400, 2));
        let t = matrix.test("t").unwrap();
        let u = matrix.test("u").unwrap();
        assert_eq!(
            (s.loops(&matrix, t), s.timeout(&matrix, t)),
            (20, Duration::from_secs(90))
        );
        assert_eq!(
            (s.loops(&matrix, u), s.timeout(&matrix, u)),
            (1, Duration::from_secs(60))
        );
        let cli = crate::cli::Cli::try_parse_from([
            "r",
            "run",
            "--loops",
            "3",
            "--timeout",
            "5",
            "--temp",
            "200",
        ])
        .unwrap();
        let crate::cli::Command::Run(run) = cli.command else {
            unreachable!()
        };
        assert!(Settings::resolve(&run.cells, None, &matrix).is_err());
    }

    #[test]
    fn execute_cells_runs_in_parallel_and_keeps_order() {
        // Fake "QEMU": a shell script that prints a clean KTAP run and writes the events
        // file named in the -plugin argument; like QEMU, it exits 0 on the SIGTERM the
        // runner sends at the done line.
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("fake-qemu");
        std::fs::write(
            &fake,
            "#!/bin/sh\ntrap 'exit 0' TERM\nfor a in \"$@\"; do plugin=\"$a\"; done\n\
             events=$(echo \"$plugin\" | tr ',' '\\n' | sed -n 's/^events=//p')\n\
             printf '{\"type\":\"start\",\"seq\":0,\"faults\":[]}\\n{\"type\":\"summary\",\"seq\":1,\"aborts\":0,\"faults_armed\":[],\"faults_fired\":[]}\\n' > \"$events\"\n\
             printf 'KTAP version 1\\n1..1\\nok 1 fine\\n# rzgate-done\\n'\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let inputs = inputs_with_qemu(&format!("QEMU={}\n", fake.display()), None);
        let specs = clean_cells(dir.path(), 5);
        let reports: Vec<CellReport> = execute_cells(&inputs, &specs, 3)
            .into_iter()
            .map(|r| r.expect("not interrupted"))
            .collect();
        let tests: Vec<&str> = reports.iter().map(|r| r.test.as_str()).collect();
        assert_eq!(tests, vec!["t0", "t1", "t2", "t3", "t4"]);
        for report in &reports {
            assert_eq!(report.outcome, Outcome::Clean, "{:?}", report.error);
        }
    }

    #[test]
    fn which_cells_restore_and_why_the_others_boot() {
        use crate::cell::tests::spec;
        let dir = tempfile::tempdir().unwrap();
        let inputs = |snapshots: Option<PathBuf>| {
            inputs_with_qemu("QEMU=/nonexistent/qemu-system-aarch64\n", snapshots)
        };
        let mut faulty = spec("adc-probe-failure", OnAbort::Continue, None);
        faulty.cold_reason = Some("the fault fires at boot".into());
        let mut other_kernel = spec("adc-read", OnAbort::Continue, None);
        other_kernel.kernel.name = "upstream".into();
        other_kernel.kernel.image = "out/kernels/upstream/Image".into();
        let specs = vec![
            spec("adc-unbind", OnAbort::Continue, None),
            spec("thermal", OnAbort::Continue, None),
            faulty,
            other_kernel,
        ];

        // --cold: every cell boots, and no reason is given.
        let cold = attach_snapshots(&inputs(None), &specs, 2);
        assert!(cold
            .iter()
            .all(|s| s.restore.is_none() && s.cold_reason.is_none()));

        let attached = attach_snapshots(&inputs(Some(dir.path().join("snapshots"))), &specs, 2);
        let reasons: Vec<&str> = attached
            .iter()
            .map(|s| s.cold_reason.as_deref().unwrap_or(""))
            .collect();
        // prefix's snapshot could not be made (no QEMU): its cells say so.
        assert!(reasons[0].starts_with("no snapshot: ") && reasons[0].contains("cannot start"));
        assert_eq!(reasons[0], reasons[1]);
        assert_eq!(reasons[2], "the fault fires at boot");
        // upstream has one cell: no snapshot is tried for it.
        assert_eq!(reasons[3], ONE_CELL);
        assert!(!dir.path().join("snapshots/upstream").exists());
        assert!(attached.iter().all(|s| s.restore.is_none()));
    }

    #[test]
    fn an_interrupt_keeps_the_finished_cells_and_starts_no_more() {
        // Fake "QEMU": cell t0 ends clean at once (exiting 0 on the runner's SIGTERM at its
        // done line, as QEMU does); t1 tells the test it runs (through a FIFO, whose write
        // blocks until the test reads) and then hangs until killed.
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("running");
        let status = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(status.success());
        let pid_file = dir.path().join("t1.pid");
        let fake = dir.path().join("fake-qemu");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\ntrap 'exit 0' TERM\nfor a in \"$@\"; do plugin=\"$a\"; done\n\
                 events=$(echo \"$plugin\" | tr ',' '\\n' | sed -n 's/^events=//p')\n\
                 case \"$*\" in *rzgate.test=t0*) ;; *) echo $$ > {pid}; echo running > {fifo}; exec sleep 60;; esac\n\
                 printf '{{\"type\":\"start\",\"seq\":0,\"faults\":[]}}\\n{{\"type\":\"summary\",\"seq\":1,\"aborts\":0,\"faults_armed\":[],\"faults_fired\":[]}}\\n' > \"$events\"\n\
                 printf 'KTAP version 1\\n1..1\\nok 1 fine\\n# rzgate-done\\n'\n",
                fifo = fifo.display(),
                pid = pid_file.display()
            ),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let inputs = inputs_with_qemu(&format!("QEMU={}\n", fake.display()), None);
        let specs = clean_cells(dir.path(), 4);
        let interrupt = inputs.interrupt.clone();
        let reports = std::thread::scope(|scope| {
            scope.spawn(|| {
                // Opening the FIFO waits for t1's writer: t0 has finished by then (one job).
                std::fs::read_to_string(&fifo).unwrap();
                interrupt.trigger(libc::SIGTERM);
            });
            execute_cells(&inputs, &specs, 1)
        });
        // t1's "QEMU" (the same pid after exec) was killed and reaped, not left to run.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        assert!(
            !Path::new("/proc").join(pid.trim()).exists(),
            "t1 (pid {}) was not stopped",
            pid.trim()
        );
        assert_eq!(reports[0].as_ref().map(|r| r.outcome), Some(Outcome::Clean));
        assert!(reports[1..].iter().all(Option::is_none), "{reports:?}");
        // t2 and t3 never started: no cell directory.
        assert!(!specs[2].dir.exists() && !specs[3].dir.exists());
    }

    #[test]
    fn the_reports_carry_the_sweep_table_only_when_a_cell_has_sweep_steps() {
        let dir = tempfile::tempdir().unwrap();
        let mut report = crate::report::tests::sample_report();
        write_run_reports(&report, dir.path()).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
                .unwrap();
        assert!(json.get("sweep").is_none());
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        assert!(!md.contains("Platform sweep"));

        // The sample's aborts are at step 1: name it as the sweep does.
        let prefix = report
            .cells
            .iter_mut()
            .find(|c| c.name() == "prefix/adc-unbind")
            .unwrap();
        prefix.ktap.steps = vec![crate::console::Step {
            n: 1,
            test: "adc-unbind".into(),
            text: "unbind rzg2l-adc 7d058000.adc".into(),
        }];
        write_run_reports(&report, dir.path()).unwrap();
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.path().join("report.json")).unwrap())
                .unwrap();
        let adc = &json["sweep"]["drivers"]["rzg2l-adc"]["kernels"]["prefix"];
        assert_eq!(adc["outcome"], "abort", "{json:#}");
        assert_eq!(adc["function"], "rzg2l_adc_pm_runtime_suspend");
        // The strict reader still takes the report (the key is derived, not read back).
        crate::report::RunReport::load(&dir.path().join("report.json")).unwrap();
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        let sweep_at = md.find("## Platform sweep: per driver").unwrap();
        assert!(sweep_at > md.find("| `adc-unbind` |").unwrap());
        assert!(sweep_at < md.find("## Aborts").unwrap());
    }
}
