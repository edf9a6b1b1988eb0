//! QEMU command lines and running one QEMU with a timeout.
//!
//! The machine options are shared by the DTB dump and the cells: QEMU's `virt` tree
//! depends on them (CPU nodes, memory, GIC), so the DTB must come from exactly the
//! machine the cells boot.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::inputs::Toolchain;
use crate::interrupt::Interrupt;
use crate::matrix::OnAbort;

/// `-M virt` plus what follows it; `dumpdtb` is appended to the machine option.
pub fn machine_args(dumpdtb: Option<&Path>) -> Vec<String> {
    let machine = match dumpdtb {
        Some(path) => format!("virt,dumpdtb={}", path.display()),
        None => "virt".to_string(),
    };
    [
        "-M",
        &machine,
        "-cpu",
        "cortex-a55",
        "-smp",
        "1",
        "-m",
        "1G",
        "-display",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// What one cell's QEMU boots and how the plugin is configured.
#[derive(Debug, Clone)]
pub struct CellLaunch<'a> {
    pub kernel_image: &'a Path,
    pub system_map: &'a Path,
    pub initramfs: &'a Path,
    pub dtb: &'a Path,
    pub plugin: &'a Path,
    pub soc: &'a Path,
    pub events_file: &'a Path,
    pub test: &'a str,
    pub loops: u32,
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub on_abort: OnAbort,
    pub faults: &'a [String],
}

/// The kernel's own part of the guest's command line. `oops=panic`: an oops (the synchronous
/// external abort `on_abort=serror` makes of a gated read, or any other) ends the guest as
/// the SError does, with the panic the runner reads, instead of killing one task and
/// leaving the test to hang on the locks it held. `printk.time=1`: kernel messages carry a
/// timestamp, so one that lands inside a test's line can be taken out of it
/// (`console::untangle`).
const KERNEL_ARGS: &str = "console=ttyAMA0 panic=-1 oops=panic printk.time=1 rdinit=/init";

/// The guest's command line (docs/contracts.md, "Guest side").
pub fn kernel_cmdline(test: &str, loops: u32, temp_c: f64, adc: &[u16; 8]) -> String {
    format!("{KERNEL_ARGS} {}", test_params(test, loops, temp_c, adc))
}

/// The test's `rzgate.*` words: on the command line of a cold boot, on the console of a
/// restored snapshot.
pub fn test_params(test: &str, loops: u32, temp_c: f64, adc: &[u16; 8]) -> String {
    format!(
        "rzgate.test={test} rzgate.loops={loops} rzgate.temp_mc={} rzgate.adc={}",
        (temp_c * 1000.0).round() as i64,
        join_adc(adc)
    )
}

/// What the runner writes to a restored guest's console: a newline to be lost (bytes that
/// arrive while QEMU still loads the snapshot can be), then the test's words.
pub fn restore_input(test: &str, loops: u32, temp_c: f64, adc: &[u16; 8]) -> Vec<u8> {
    format!("\n{}\n", test_params(test, loops, temp_c, adc)).into_bytes()
}

fn join_adc(adc: &[u16; 8]) -> String {
    adc.iter().map(u16::to_string).collect::<Vec<_>>().join(":")
}

/// A path QEMU's option parser can take as a plugin argument value: QEMU splits on
/// commas, so a path containing one would be cut.
fn plugin_value(path: &Path) -> Result<String> {
    let text = path
        .to_str()
        .with_context(|| format!("{} is not valid UTF-8", path.display()))?;
    if text.contains(',') {
        bail!("{text}: QEMU splits -plugin arguments on commas; use a path without one");
    }
    Ok(text.to_string())
}

/// `librzgate.so,soc=...,events=...,on_abort=...,temp=...,adc=...[,faults=a:b],symbols=...`
pub fn plugin_arg(launch: &CellLaunch) -> Result<String> {
    let mut arg = format!(
        "{},soc={},events={},on_abort={},temp={},adc={}",
        plugin_value(launch.plugin)?,
        plugin_value(launch.soc)?,
        plugin_value(launch.events_file)?,
        launch.on_abort.as_str(),
        launch.temp_c,
        join_adc(&launch.adc)
    );
    if !launch.faults.is_empty() {
        arg.push_str(&format!(",faults={}", launch.faults.join(":")));
    }
    // Always passed: `serror` needs it, and it costs nothing otherwise.
    arg.push_str(&format!(",symbols={}", plugin_value(launch.system_map)?));
    Ok(arg)
}

/// The console, the machine and the data directory: what every cell's QEMU shares.
fn common_args(toolchain: &Toolchain) -> Vec<String> {
    let mut args = machine_args(None);
    args.extend(
        ["-monitor", "none", "-serial", "stdio", "-no-reboot"]
            .iter()
            .map(|s| s.to_string()),
    );
    args.extend(toolchain.datadir_args());
    args
}

/// The QEMU of a snapshot: a cold boot whose guest waits at the snapshot point
/// (`rzgate.snapshot=1`), with QMP to migrate it and the plugin writing its state at exit.
pub fn snapshot_boot_args(
    toolchain: &Toolchain,
    launch: &CellLaunch,
    qmp_socket: &Path,
    state_out: &Path,
) -> Result<Vec<String>> {
    let mut args = boot_args(
        toolchain,
        launch,
        format!(
            "{KERNEL_ARGS} rzgate.snapshot=1 rzgate.temp_mc={} rzgate.adc={}",
            (launch.temp_c * 1000.0).round() as i64,
            join_adc(&launch.adc)
        ),
    );
    // The snapshot is taken from a stopped guest; without its run state in the stream, a
    // restored QEMU runs once loaded instead of staying paused (no QMP needed there).
    args.push("-global".to_string());
    args.push("migration.store-global-state=off".to_string());
    args.push("-qmp".to_string());
    args.push(format!(
        "unix:{},server=on,wait=off",
        plugin_value(qmp_socket)?
    ));
    args.push("-plugin".to_string());
    args.push(format!(
        "{},state_out={}",
        plugin_arg(launch)?,
        plugin_value(state_out)?
    ));
    Ok(args)
}

/// The QEMU of a restored cell: the snapshot's machine, started from its migration stream
/// (kernel, initramfs and DTB are in it: QEMU ignores -kernel on an incoming migration),
/// the plugin loading the snapshot's state with this cell's own arguments.
pub fn restore_args(
    toolchain: &Toolchain,
    launch: &CellLaunch,
    image: &Path,
    state_in: &Path,
) -> Result<Vec<String>> {
    let mut args = common_args(toolchain);
    args.push("-incoming".to_string());
    args.push(format!("file:{}", plugin_value(image)?));
    args.push("-plugin".to_string());
    args.push(format!(
        "{},state_in={}",
        plugin_arg(launch)?,
        plugin_value(state_in)?
    ));
    Ok(args)
}

/// The full argument list of a cell's QEMU (without the program).
pub fn cell_args(toolchain: &Toolchain, launch: &CellLaunch) -> Result<Vec<String>> {
    let cmdline = kernel_cmdline(launch.test, launch.loops, launch.temp_c, &launch.adc);
    let mut args = boot_args(toolchain, launch, cmdline);
    args.push("-plugin".to_string());
    args.push(plugin_arg(launch)?);
    Ok(args)
}

/// A QEMU that boots the cell's kernel, initramfs and DTB with command line `append`.
fn boot_args(toolchain: &Toolchain, launch: &CellLaunch, append: String) -> Vec<String> {
    let mut args = common_args(toolchain);
    for (flag, path) in [
        ("-kernel", launch.kernel_image),
        ("-initrd", launch.initramfs),
        ("-dtb", launch.dtb),
    ] {
        args.push(flag.to_string());
        args.push(path.display().to_string());
    }
    args.push("-append".to_string());
    args.push(append);
    args
}

/// One line a POSIX shell runs as the same command (for `qemu.cmd`: copy, paste, debug).
pub fn shell_command_line(program: &Path, args: &[String]) -> String {
    std::iter::once(program.display().to_string())
        .chain(args.iter().cloned())
        .map(|word| shell_quote(&word))
        .collect::<Vec<_>>()
        .join(" ")
}

fn shell_quote(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// How the QEMU process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QemuExit {
    Exited(i32),
    Signaled(i32),
    /// The runner killed it at the timeout.
    TimedOut(Duration),
    /// The run was interrupted (a signal to the runner) before it finished, or before it
    /// started: it says nothing about the cell.
    Interrupted,
}

/// A QEMU run that ended (or was ended).
#[derive(Debug)]
pub struct Finished {
    pub exit: QemuExit,
    /// Everything QEMU wrote to stdout (the guest's serial console).
    pub console: Vec<u8>,
    pub duration: Duration,
    /// When the test began (its `KTAP version` line) and when the guest said it was done
    /// (the `stop_at` line), from QEMU's start: where a cell's time goes.
    pub test_started: Option<Duration>,
    pub test_done: Option<Duration>,
}

/// How a QEMU run is fed and ended besides its timeout.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Written to QEMU's stdin (the guest's console), which is then closed; None: no stdin.
    pub input: Option<Vec<u8>>,
    /// Once the console has this line, the guest is done: QEMU gets SIGTERM (it exits at
    /// once, and the plugin writes its summary at exit) instead of waiting for the guest's
    /// power-off path.
    pub stop_at: Option<&'static str>,
}

/// What the watcher threads tell the thread that owns the child.
enum Watch {
    Exited,
    Done,
}

/// Runs `program args`, streaming stdout to `console_log` (so a running cell can be
/// watched with `tail -f`) and, with `echo`, to our stdout; stderr goes to `stderr_log`.
/// Kills it after `timeout`, or when `interrupt` fires.
#[allow(clippy::too_many_arguments)]
pub fn run(
    program: &Path,
    args: &[String],
    console_log: &Path,
    stderr_log: &Path,
    timeout: Duration,
    echo: bool,
    interrupt: &Interrupt,
    options: RunOptions,
) -> Result<Finished> {
    let console_file = File::create(console_log)
        .with_context(|| format!("cannot create {}", console_log.display()))?;
    let stderr_file = File::create(stderr_log)
        .with_context(|| format!("cannot create {}", stderr_log.display()))?;
    let started = Instant::now();
    let stdin = if options.input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    };
    let child = interrupt
        .spawn(
            Command::new(program)
                .args(args)
                .stdin(stdin)
                .stdout(Stdio::piped())
                .stderr(stderr_file),
        )
        .with_context(|| format!("cannot start {}", program.display()))?;
    let Some(mut child) = child else {
        return Ok(Finished {
            exit: QemuExit::Interrupted,
            console: Vec::new(),
            duration: Duration::ZERO,
            test_started: None,
            test_done: None,
        });
    };
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), options.input) {
        // A guest that never reads must not block the runner: a pipe holds 64 KiB, and
        // the input is one line. A write error means QEMU is gone; its exit says why.
        let _ = stdin.write_all(&input);
    }

    let (sender, watch) = mpsc::channel();
    let stdout = child.stdout.take().expect("stdout is piped");
    let done_sender = sender.clone();
    let stop_at = options.stop_at;
    let console_reader = thread::spawn(move || {
        copy_console(stdout, console_file, echo, started, stop_at, move || {
            let _ = done_sender.send(Watch::Done);
        })
    });
    notify_on_exit(child.id(), sender);

    let deadline = started + timeout;
    let ended = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match watch.recv_timeout(left) {
            Ok(Watch::Done) => {
                // Not reaped yet (only this thread reaps), so the pid is still our child.
                // SAFETY: kill has no memory effects.
                unsafe {
                    libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
                }
            }
            Ok(Watch::Exited) => break Ok(()),
            Err(error) => break Err(error),
        }
    };
    // Before any reaping (the watcher waits with WNOWAIT): from here on the interrupt
    // leaves this pid alone.
    let interrupted = interrupt.release(child.id());
    let exit = match ended {
        // Disconnected: the watcher could not wait (it never happens for our own child);
        // fall back to a blocking wait rather than killing a healthy QEMU.
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            exit_of(child.wait().context("waiting for QEMU")?)
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            // The child is not reaped yet, so its pid is still ours: killing by it cannot
            // hit an unrelated process.
            let _ = child.kill();
            child.wait().context("waiting for the killed QEMU")?;
            QemuExit::TimedOut(timeout)
        }
    };
    let exit = if interrupted {
        QemuExit::Interrupted
    } else {
        exit
    };
    let duration = started.elapsed();
    // QEMU is gone, so its stdout is at EOF and the reader ends.
    let capture = console_reader
        .join()
        .map_err(|_| anyhow::anyhow!("the console reader thread panicked"))?
        .context("reading the QEMU console")?;
    Ok(Finished {
        exit,
        console: capture.bytes,
        duration,
        test_started: capture.test_started,
        test_done: capture.stopped,
    })
}

fn exit_of(status: std::process::ExitStatus) -> QemuExit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => QemuExit::Exited(code),
        (None, Some(signal)) => QemuExit::Signaled(signal),
        (None, None) => QemuExit::Exited(-1),
    }
}

/// The console of a run and when its lines of interest came.
struct Capture {
    bytes: Vec<u8>,
    test_started: Option<Duration>,
    stopped: Option<Duration>,
}

/// The line a test's output begins with.
const KTAP_START: &[u8] = b"KTAP version ";

fn copy_console(
    mut from: impl Read,
    mut to: File,
    echo: bool,
    started: Instant,
    stop_at: Option<&str>,
    on_stop: impl FnOnce(),
) -> std::io::Result<Capture> {
    let mut capture = Capture {
        bytes: Vec::new(),
        test_started: None,
        stopped: None,
    };
    let mut buffer = [0u8; 8192];
    let mut on_stop = Some(on_stop);
    loop {
        let n = match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        to.write_all(&buffer[..n])?;
        if echo {
            // A closed stdout (`| head`) must not stop the cell: ignore echo errors.
            let mut stdout = std::io::stdout().lock();
            let _ = stdout.write_all(&buffer[..n]).and_then(|()| stdout.flush());
        }
        let all = &mut capture.bytes;
        // Only the lines this read finished can hold a marker.
        let from_line = all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        all.extend_from_slice(&buffer[..n]);
        let new_lines = &all[from_line..];
        if capture.test_started.is_none()
            && new_lines
                .split(|&b| b == b'\n')
                .any(|line| line.starts_with(KTAP_START))
        {
            capture.test_started = Some(started.elapsed());
        }
        if let Some(marker) = stop_at {
            if capture.stopped.is_none() && crate::console::has_line(new_lines, marker) {
                capture.stopped = Some(started.elapsed());
                if let Some(stop) = on_stop.take() {
                    stop();
                }
            }
        }
    }
    to.flush()?;
    Ok(capture)
}

/// Sends [`Watch::Exited`] once process `pid` has exited, without reaping it.
///
/// std has no wait-with-timeout; a thread blocked in `waitid(WEXITED | WNOWAIT)` turns the
/// exit into a message the caller can `recv_timeout` on. Not reaping matters: the `Child`
/// stays the owner of the pid until its own `wait()`, so a kill at the timeout can never
/// reach a recycled pid.
fn notify_on_exit(pid: u32, sender: mpsc::Sender<Watch>) {
    thread::spawn(move || {
        loop {
            // SAFETY: waitid only writes into the siginfo_t we own; a zeroed siginfo_t is a
            // valid value of that plain C struct.
            let result = unsafe {
                let mut info: libc::siginfo_t = std::mem::zeroed();
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOWAIT,
                )
            };
            if result == 0 {
                let _ = sender.send(Watch::Exited);
                return;
            }
            if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
                // Dropping the sender disconnects the channel once the console reader has
                // dropped its own: the caller falls back to a plain wait.
                return;
            }
        }
    });
}

/// The last `lines` lines of a log file, or "" when it cannot be read.
pub fn file_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    crate::console::tail(&text, lines).join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn launch<'a>(faults: &'a [String], paths: &'a [PathBuf; 7]) -> CellLaunch<'a> {
        CellLaunch {
            kernel_image: &paths[0],
            system_map: &paths[1],
            initramfs: &paths[2],
            dtb: &paths[3],
            plugin: &paths[4],
            soc: &paths[5],
            events_file: &paths[6],
            test: "adc-probe-failure",
            loops: 1,
            temp_c: 42.5,
            adc: [100, 500, 1000, 1500, 2000, 2500, 3000, 4000],
            on_abort: OnAbort::Continue,
            faults,
        }
    }

    fn paths() -> [PathBuf; 7] {
        [
            "/k/Image",
            "/k/System.map",
            "/o/initramfs.cpio",
            "/o/virt.dtb",
            "/t/librzgate.so",
            "/s/r9a08g045.yaml",
            "/o/events.jsonl",
        ]
        .map(PathBuf::from)
    }

    #[test]
    fn cell_command_line_has_the_contract_shape() {
        let toolchain = Toolchain::parse("QEMU=/q\nQEMU_DATADIR=/share\n").unwrap();
        let faults = vec!["adc-sresb-stuck".to_string()];
        let paths = paths();
        let args = cell_args(&toolchain, &launch(&faults, &paths)).unwrap();
        let line = args.join(" ");
        assert!(line.starts_with(
            "-M virt -cpu cortex-a55 -smp 1 -m 1G -display none -monitor none -serial stdio -no-reboot -L /share -kernel /k/Image -initrd /o/initramfs.cpio -dtb /o/virt.dtb -append "
        ), "{line}");
        let append = &args[args.iter().position(|a| a == "-append").unwrap() + 1];
        assert_eq!(
            append,
            "console=ttyAMA0 panic=-1 oops=panic printk.time=1 rdinit=/init rzgate.test=adc-probe-failure rzgate.loops=1 rzgate.temp_mc=42500 rzgate.adc=100:500:1000:1500:2000:2500:3000:4000"
        );
        assert_eq!(
            args.last().unwrap(),
            "/t/librzgate.so,soc=/s/r9a08g045.yaml,events=/o/events.jsonl,on_abort=continue,temp=42.5,adc=100:500:1000:1500:2000:2500:3000:4000,faults=adc-sresb-stuck,symbols=/k/System.map"
        );
    }

    #[test]
    fn no_faults_no_faults_key_and_negative_temperature() {
        let toolchain = Toolchain::parse("QEMU=/q\n").unwrap();
        let paths = paths();
        let mut l = launch(&[], &paths);
        l.temp_c = -5.0;
        let args = cell_args(&toolchain, &l).unwrap();
        assert!(!args.contains(&"-L".to_string()));
        assert!(!args.last().unwrap().contains("faults="));
        assert!(args.last().unwrap().contains(",temp=-5,"));
        assert!(args.iter().any(|a| a.contains("rzgate.temp_mc=-5000 ")));
    }

    #[test]
    fn comma_in_a_plugin_path_is_refused() {
        let toolchain = Toolchain::parse("QEMU=/q\n").unwrap();
        let mut paths = paths();
        paths[6] = PathBuf::from("/o/a,b/events.jsonl");
        assert!(cell_args(&toolchain, &launch(&[], &paths)).is_err());
    }

    #[test]
    fn shell_quoting_round_trips_through_sh() {
        let args = vec![
            "-append".to_string(),
            "console=ttyAMA0 it's".to_string(),
            "plain,a=b:c".to_string(),
            String::new(),
        ];
        let line = shell_command_line(Path::new("printf"), &args);
        assert_eq!(
            line,
            r"printf -append 'console=ttyAMA0 it'\''s' plain,a=b:c ''"
        );
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "{} ; true",
                line.replacen("printf", "printf '[%s]'", 1)
            ))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap(),
            "[-append][console=ttyAMA0 it's][plain,a=b:c][]"
        );
    }

    #[test]
    fn run_captures_console_and_exit_status() {
        let dir = tempfile::tempdir().unwrap();
        let finished = run(
            Path::new("sh"),
            &["-c".into(), "echo 'ok 1 x'; echo err >&2; exit 3".into()],
            &dir.path().join("console.log"),
            &dir.path().join("stderr.log"),
            Duration::from_secs(30),
            false,
            &Interrupt::new(),
            RunOptions::default(),
        )
        .unwrap();
        assert_eq!(finished.exit, QemuExit::Exited(3));
        assert_eq!(finished.console, b"ok 1 x\n");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("console.log")).unwrap(),
            "ok 1 x\n"
        );
        assert_eq!(file_tail(&dir.path().join("stderr.log"), 5), "err");
    }

    #[test]
    fn run_kills_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let finished = run(
            Path::new("sh"),
            &["-c".into(), "echo started; exec sleep 30".into()],
            &dir.path().join("console.log"),
            &dir.path().join("stderr.log"),
            Duration::from_millis(300),
            false,
            &Interrupt::new(),
            RunOptions::default(),
        )
        .unwrap();
        assert_eq!(
            finished.exit,
            QemuExit::TimedOut(Duration::from_millis(300))
        );
        assert!(started.elapsed() < Duration::from_secs(10));
        assert_eq!(finished.console, b"started\n");
    }

    #[test]
    fn input_reaches_stdin_and_the_done_line_ends_the_process() {
        let dir = tempfile::tempdir().unwrap();
        // Echoes its input, says it is done, then would hang for 30 s: only the SIGTERM at
        // the done line ends it well before the timeout.
        let script = "read a; read b; echo \"got $b\"; echo '# rzgate-done'; exec sleep 30";
        let finished = run(
            Path::new("sh"),
            &["-c".into(), script.into()],
            &dir.path().join("console.log"),
            &dir.path().join("stderr.log"),
            Duration::from_secs(60),
            false,
            &Interrupt::new(),
            RunOptions {
                input: Some(b"\nrzgate.test=boot\n".to_vec()),
                stop_at: Some("# rzgate-done"),
            },
        )
        .unwrap();
        assert_eq!(finished.exit, QemuExit::Signaled(libc::SIGTERM));
        assert_eq!(finished.console, b"got rzgate.test=boot\n# rzgate-done\n");
    }

    #[test]
    fn signal_exit_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let finished = run(
            Path::new("sh"),
            &["-c".into(), "kill -SEGV $$".into()],
            &dir.path().join("console.log"),
            &dir.path().join("stderr.log"),
            Duration::from_secs(30),
            false,
            &Interrupt::new(),
            RunOptions::default(),
        )
        .unwrap();
        assert_eq!(finished.exit, QemuExit::Signaled(libc::SIGSEGV));
    }
}
