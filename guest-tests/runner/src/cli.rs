//! The command line. Paths default to the repository layout, relative to the current
//! directory (the Makefile runs the runner from the repository root).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::matrix::OnAbort;

#[derive(Debug, Parser)]
#[command(
    name = "rzgate-runner",
    version,
    about = "Runs the rzgate guest test matrix under QEMU and reports which kernels hit power-gating aborts",
    after_help = "Exit status: 0 when every cell matches its expectation (validate: the patch adds no abort), \
                  1 on a mismatch or a flaky cell (validate: the patch adds an abort; merge: also a cell not run; replay: a replay not reproduced), \
                  2 on a setup error (validate: also when a cell errored: could not judge; merge: shards that do not fit), \
                  3 (validate only) when the patch adds no abort but a guest check fails only with it, \
                  128 + the signal when SIGINT/SIGTERM/SIGHUP interrupted `run` (its reports are still written)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate the guest DTB: QEMU's virt tree plus the SoC's nodes.
    Dtb(DtbArgs),
    /// Run the matrix (kernels x tests), compare with the expectations, write the reports.
    Run(RunArgs),
    /// Run every test on a base kernel and on the same kernel with a patch; report the
    /// aborts the patch adds and removes.
    Validate(ValidateArgs),
    /// Boot one kernel with one test, streaming its console, and report the cell.
    Boot(BootArgs),
    /// Combine the reports of `run --shard 1/N` .. `N/N` into one report (report.json,
    /// report.md, junit.xml), as one unsharded run would have written it.
    Merge(MergeArgs),
    /// Turn a matrix, merged or validate report.json into KernelCI KCIDB (v5) JSON.
    ExportKcidb(ExportKcidbArgs),
    /// Write one LAVA job per cell, a device configuration for lava-run, an index of the
    /// jobs and the artefacts they download.
    ExportLava(ExportLavaArgs),
    /// Turn the LAVA logs of exported jobs into report.json, report.md and junit.xml, as a
    /// local run writes them.
    ImportLava(ImportLavaArgs),
    /// Replay the real bugs on record (guest-tests/replays.yaml) under on_abort=serror: each
    /// must abort where the board did, with the board's exception, and its twin stay clean.
    Replay(ReplayArgs),
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The replays file
    #[arg(long, default_value = "guest-tests/replays.yaml")]
    pub replays: PathBuf,
    /// Where the kernel builds are (<dir>/<kernel>/Image and System.map)
    #[arg(long, default_value = "out/kernels", value_name = "DIR")]
    pub kernels_dir: PathBuf,
    /// Output directory (cells/, replay.json, replay.md)
    #[arg(long, default_value = "out/replay")]
    pub out: PathBuf,
    /// Cells run at once [default: the number of CPUs]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
    #[command(flatten)]
    pub cells: CellArgs,
}

/// Which tests and how many cells at once (`run`, `validate`).
#[derive(Debug, Args)]
pub struct SelectArgs {
    /// Tests to run, comma-separated [default: all]
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub tests: Vec<String>,
    /// Cells run at once [default: the number of CPUs]
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub jobs: Option<u32>,
}

#[derive(Debug, Args)]
pub struct ToolchainArgs {
    /// The provisioned toolchain's description [default: $RZGATE_CACHE/toolchain.env,
    /// else $XDG_CACHE_HOME/rzgate/toolchain.env, else ~/.cache/rzgate/toolchain.env]
    #[arg(long, value_name = "FILE")]
    pub toolchain: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DtbArgs {
    /// SoC description
    #[arg(long, default_value = "socs/r9a08g045.yaml")]
    pub soc: PathBuf,
    /// Where to write the DTB (its source goes next to it, with .dts)
    #[arg(long, default_value = "out/virt-rzg3s.dtb")]
    pub out: PathBuf,
    #[command(flatten)]
    pub toolchain: ToolchainArgs,
}

/// Options every command that boots cells shares.
#[derive(Debug, Args)]
pub struct CellArgs {
    /// The matrix file (tests, their parameters, defaults, expectations)
    #[arg(long, default_value = "guest-tests/matrix.yaml")]
    pub matrix: PathBuf,
    /// TSU temperature in °C [default: the matrix's defaults.temp_c]
    #[arg(long, value_name = "C", allow_negative_numbers = true)]
    pub temp: Option<f64>,
    /// ADC channel values v0:v1:...:v7 (1 to 8, decimal or 0x-hex; `,` also works)
    /// [default: the matrix's defaults.adc]
    #[arg(long, value_name = "V0:..:V7")]
    pub adc: Option<String>,
    /// What the plugin does at a gated access [default: the matrix's defaults.on_abort]
    #[arg(long, value_enum)]
    pub on_abort: Option<OnAbort>,
    /// Per-cell timeout in seconds, for every test [default: the matrix's]
    #[arg(long, value_name = "S", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: Option<u64>,
    /// Loop count (rzgate.loops) for every test [default: the matrix's]
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub loops: Option<u32>,
    /// The initramfs with /init and the test scripts
    #[arg(long, default_value = "out/initramfs.cpio")]
    pub initramfs: PathBuf,
    /// The QEMU plugin
    #[arg(long, default_value = "target/release/librzgate.so")]
    pub plugin: PathBuf,
    /// SoC description (for the plugin and the DTB)
    #[arg(long, default_value = "socs/r9a08g045.yaml")]
    pub soc: PathBuf,
    /// Use this DTB instead of generating one into the output directory
    #[arg(long, value_name = "FILE")]
    pub dtb: Option<PathBuf>,
    /// Boot every cell instead of restoring a per-kernel snapshot made at the start of the
    /// run (`boot` always boots)
    #[arg(long)]
    pub cold: bool,
    #[command(flatten)]
    pub toolchain: ToolchainArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Kernels to run, comma-separated [default: all the matrix lists]
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub kernels: Vec<String>,
    /// Where the kernel builds are (<dir>/<kernel>/Image and System.map)
    #[arg(long, default_value = "out/kernels", value_name = "DIR")]
    pub kernels_dir: PathBuf,
    /// Run the matrix N times; a cell whose outcome changes between runs is flaky
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub repeat: u32,
    /// Output directory (cells/, report.json, report.md, junit.xml)
    #[arg(long, default_value = "out/matrix")]
    pub out: PathBuf,
    /// Run only shard I of N (1 <= I <= N): the cells at positions k (from 0, kernel-major
    /// over the selection) with k mod N = I-1; `merge` combines the N reports
    #[arg(long, value_name = "I/N")]
    pub shard: Option<crate::report::Shard>,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub cells: CellArgs,
}

#[derive(Debug, Args)]
pub struct MergeArgs {
    /// The shard reports (report.json of `run --shard 1/N` .. `N/N`, in any order)
    #[arg(required = true, value_name = "REPORT.JSON")]
    pub reports: Vec<PathBuf>,
    /// Output directory (report.json, report.md, junit.xml)
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportKcidbArgs {
    /// A report.json of `run`, `merge` or `validate`
    #[arg(value_name = "REPORT.JSON")]
    pub report: PathBuf,
    /// Where to write the KCIDB JSON [default: kcidb.json beside the report]
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The KCIDB origin (agreed with KernelCI with the submission token); every id starts
    /// with it
    #[arg(long, default_value = "rzgate", value_name = "NAME")]
    pub origin: String,
    /// The id of this run within the origin [default: a hash of the report's contents, so
    /// that exporting the same report twice gives the same ids]
    #[arg(long, value_name = "ID")]
    pub run_id: Option<String>,
}

#[derive(Debug, Args)]
pub struct ExportLavaArgs {
    /// The cells, as KERNEL:TEST (the test need not be in the matrix, as with `boot`)
    /// [default: the matrix's --kernels x --tests]
    #[arg(long, value_delimiter = ',', value_name = "K:T,...", conflicts_with_all = ["kernels", "tests"])]
    pub cells: Vec<String>,
    /// Kernels, comma-separated [default: all the matrix lists]
    #[arg(long, value_delimiter = ',', value_name = "NAME,...")]
    pub kernels: Vec<String>,
    /// Tests, comma-separated [default: all]
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub tests: Vec<String>,
    /// Where the kernel builds are (<dir>/<kernel>/Image and System.map)
    #[arg(long, default_value = "out/kernels", value_name = "DIR")]
    pub kernels_dir: PathBuf,
    /// Output directory (jobs/, artifacts/, device.yaml, index.json)
    #[arg(long, default_value = "out/lava", value_name = "DIR")]
    pub out: PathBuf,
    /// The URL the lab downloads <out>/artifacts/ from [default: file://<out>/artifacts]
    #[arg(long, value_name = "URL")]
    pub artifact_url: Option<String>,
    /// Run QEMU 11 from this container image (LAVA `boot: docker:`), for a worker whose
    /// own QEMU is older
    #[arg(long, value_name = "IMAGE")]
    pub docker_image: Option<String>,
    /// The QEMU binary device.yaml names (lava-run looks it up in PATH)
    #[arg(long, default_value = "qemu-system-aarch64", value_name = "PATH")]
    pub qemu_command: String,
    #[command(flatten)]
    pub cells_args: CellArgs,
}

#[derive(Debug, Args)]
pub struct ImportLavaArgs {
    /// The export's index.json (its artefacts/ beside it give the System.maps)
    #[arg(long, default_value = "out/lava/index.json", value_name = "FILE")]
    pub index: PathBuf,
    /// LAVA job logs (lava-run's output, or a server's job log), each named after its job
    /// file (<kernel>--<test>.log or .yaml); a job without one is not run
    #[arg(value_name = "LOG")]
    pub logs: Vec<PathBuf>,
    /// Output directory (cells/, report.json, report.md, junit.xml)
    #[arg(long, default_value = "out/lava/report", value_name = "DIR")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The base kernel's build directory (Image, System.map)
    #[arg(long, value_name = "DIR")]
    pub base_kernel: PathBuf,
    /// The patched kernel's build directory (Image, System.map); or --series
    #[arg(long, value_name = "DIR", required_unless_present = "series")]
    pub patched_kernel: Option<PathBuf>,
    /// A series: the front door's manifest (JSON: source, reproduce, patches with subject,
    /// file and the kernel_dir of the state with that patch applied); each patch is also
    /// compared with the state before it
    #[arg(long, value_name = "FILE", conflicts_with = "patched_kernel")]
    pub series: Option<PathBuf>,
    /// The base's variant name (upstream, prefix, ...): labels the columns, and the
    /// matrix's expectations for it are shown next to the base column
    #[arg(long, value_name = "NAME")]
    pub base_name: String,
    /// The patched kernel's label (its column and cell directory) [default: <base-name>+patch]
    #[arg(long, value_name = "NAME")]
    pub patched_name: Option<String>,
    /// The patch's name (e.g. its file name), recorded in the reports
    #[arg(long, value_name = "NAME")]
    pub patch_name: Option<String>,
    /// Output directory (cells/, report.json, report.md)
    #[arg(long, default_value = "out/validate")]
    pub out: PathBuf,
    #[command(flatten)]
    pub select: SelectArgs,
    #[command(flatten)]
    pub cells: CellArgs,
}

#[derive(Debug, Args)]
pub struct BootArgs {
    /// The kernel to boot: a directory name under --kernels-dir (need not be in the matrix)
    #[arg(long, value_name = "NAME")]
    pub kernel: String,
    /// The test to run (its matrix entry supplies faults and loops, when it has one)
    #[arg(long, default_value = "boot", value_name = "ID")]
    pub test: String,
    /// Where the kernel builds are (<dir>/<kernel>/Image and System.map)
    #[arg(long, default_value = "out/kernels", value_name = "DIR")]
    pub kernels_dir: PathBuf,
    /// Output directory (cells/<kernel>/<test>/, the DTB)
    #[arg(long, default_value = "out/boot")]
    pub out: PathBuf,
    #[command(flatten)]
    pub cells: CellArgs,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_arguments_parse() {
        let cli = Cli::try_parse_from([
            "rzgate-runner",
            "run",
            "--kernels",
            "upstream,prefix",
            "--tests",
            "boot",
            "--temp",
            "-5.5",
            "--adc",
            "1:2",
            "--on-abort",
            "serror",
            "--jobs",
            "3",
            "--repeat",
            "2",
        ])
        .unwrap();
        let Command::Run(run) = cli.command else {
            panic!("not run")
        };
        assert_eq!(run.kernels, vec!["upstream", "prefix"]);
        assert_eq!(run.select.tests, vec!["boot"]);
        assert_eq!(run.cells.temp, Some(-5.5));
        assert_eq!(run.cells.on_abort, Some(OnAbort::Serror));
        assert_eq!(run.select.jobs, Some(3));
        assert_eq!(run.repeat, 2);
        assert_eq!(run.out, PathBuf::from("out/matrix"));
        assert!(Cli::try_parse_from(["rzgate-runner", "run", "--jobs", "0"]).is_err());
        assert!(Cli::try_parse_from(["rzgate-runner", "run", "--on-abort", "explode"]).is_err());
    }

    #[test]
    fn boot_defaults_to_the_boot_test() {
        let cli =
            Cli::try_parse_from(["rzgate-runner", "boot", "--kernel", "prefix", "--temp=-40"])
                .unwrap();
        let Command::Boot(boot) = cli.command else {
            panic!("not boot")
        };
        assert_eq!(
            (boot.kernel.as_str(), boot.test.as_str()),
            ("prefix", "boot")
        );
        assert_eq!(boot.cells.temp, Some(-40.0));
        assert!(Cli::try_parse_from(["rzgate-runner", "boot"]).is_err());
    }

    #[test]
    fn validate_requires_both_kernels() {
        assert!(
            Cli::try_parse_from(["rzgate-runner", "validate", "--base-name", "upstream"]).is_err()
        );
        let cli = Cli::try_parse_from([
            "rzgate-runner",
            "validate",
            "--base-kernel",
            "a",
            "--patched-kernel",
            "b",
            "--base-name",
            "upstream",
            "--patch-name",
            "fix.patch",
        ])
        .unwrap();
        let Command::Validate(v) = cli.command else {
            panic!("not validate")
        };
        assert_eq!(v.out, PathBuf::from("out/validate"));
        assert_eq!(v.patch_name.as_deref(), Some("fix.patch"));
    }
}
