//! Snapshots (docs/contracts.md "Snapshots"): each kernel boots once per run to the point
//! where its `/init` waits for a test (`rzgate.snapshot=1`), QEMU migrates the guest to a
//! file and the plugin writes its model state beside it; every cell of that kernel then
//! starts from the file (`-incoming file:`) with its test on the console instead of
//! booting again.
//!
//! A snapshot is made fresh in every run, for one kernel and the run's inputs (initramfs,
//! DTB, plugin, SoC file, QEMU, host values), and lives in the run's output directory:
//! nothing can restore a guest made from other inputs. The plugin checks the rest (its
//! build, the SoC file and the kernel's System.map) when it loads the state. A snapshot
//! whose boot had an abort, a fault or an error is refused, and the kernel's cells boot
//! cold with the reason in their reports.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use crate::console;
use crate::events::EventsReport;
use crate::inputs::{KernelBuild, Toolchain};
use crate::interrupt::Interrupt;
use crate::qemu;

use console::READY_MARKER;
/// A boot to the snapshot point takes 1.5-2 s on 2 cores; this only catches a hang.
const BOOT_TIMEOUT: Duration = Duration::from_secs(60);
/// Console lines quoted when a snapshot cannot be made.
const TAIL_LINES: usize = 20;

/// One kernel's snapshot, ready to restore.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The host values the boot ran with (a cell with others boots cold).
    pub temp_c: f64,
    pub adc: [u16; 8],
    /// QEMU's migration stream.
    pub image: PathBuf,
    /// The plugin's state at the snapshot point (`state_out=`).
    pub state: PathBuf,
    /// The boot's events and console, joined to every restored cell's.
    pub events: PathBuf,
    pub console: PathBuf,
    /// How long making it took.
    pub seconds: f64,
}

/// What every snapshot of a run boots with besides its kernel.
pub struct Machine<'a> {
    pub toolchain: &'a Toolchain,
    pub initramfs: &'a Path,
    pub dtb: &'a Path,
    pub plugin: &'a Path,
    pub soc: &'a Path,
    pub interrupt: &'a Interrupt,
}

/// What the snapshot boot of one kernel needs.
pub struct Request<'a> {
    pub kernel: &'a KernelBuild,
    pub temp_c: f64,
    pub adc: [u16; 8],
    pub dir: PathBuf,
}

/// Boots `request.kernel` to the snapshot point and migrates it to `<dir>/guest.snap`.
pub fn make(inputs: &Machine, request: &Request) -> Result<Snapshot> {
    let started = Instant::now();
    let dir = &request.dir;
    if dir.exists() {
        std::fs::remove_dir_all(dir).with_context(|| format!("cannot empty {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let absolute = crate::fsutil::absolute;
    let dir = absolute(dir);
    let snapshot = Snapshot {
        temp_c: request.temp_c,
        adc: request.adc,
        image: dir.join("guest.snap"),
        state: dir.join("plugin.state"),
        events: dir.join("events.jsonl"),
        console: dir.join("console.log"),
        seconds: 0.0,
    };
    let qmp_socket = dir.join("qmp.sock");
    let (image, system_map) = (
        absolute(&request.kernel.image),
        absolute(&request.kernel.system_map),
    );
    let (initramfs, dtb) = (absolute(inputs.initramfs), absolute(inputs.dtb));
    let (plugin, soc) = (absolute(inputs.plugin), absolute(inputs.soc));
    let launch = qemu::CellLaunch {
        kernel_image: &image,
        system_map: &system_map,
        initramfs: &initramfs,
        dtb: &dtb,
        plugin: &plugin,
        soc: &soc,
        events_file: &snapshot.events,
        test: "",
        loops: 1,
        temp_c: request.temp_c,
        adc: request.adc,
        on_abort: crate::matrix::OnAbort::Continue,
        faults: &[],
    };
    let args = qemu::snapshot_boot_args(inputs.toolchain, &launch, &qmp_socket, &snapshot.state)?;
    let program = &inputs.toolchain.qemu;
    crate::fsutil::write_atomic(
        &dir.join("qemu.cmd"),
        format!("{}\n", qemu::shell_command_line(program, &args)).as_bytes(),
    )?;
    let stderr = std::fs::File::create(dir.join("qemu.stderr"))
        .with_context(|| format!("cannot create {}", dir.join("qemu.stderr").display()))?;
    let child = inputs
        .interrupt
        .spawn(
            Command::new(program)
                .args(&args)
                // Kept open and silent: the guest waits in `read` on the console.
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(stderr),
        )
        .with_context(|| format!("cannot start {}", program.display()))?;
    let Some(mut child) = child else {
        bail!("the run was interrupted");
    };
    let stdout = child.stdout.take().context("QEMU's stdout")?;
    let (ready_tx, ready_rx) = mpsc::channel();
    let console_reader = std::thread::spawn(move || read_console(stdout, ready_tx));

    let migrated = match ready_rx.recv_timeout(BOOT_TIMEOUT) {
        Ok(()) => migrate(&qmp_socket, &snapshot.image),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(anyhow::anyhow!(
            "the guest did not reach `{READY_MARKER}` within {} s",
            BOOT_TIMEOUT.as_secs()
        )),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(anyhow::anyhow!(
            "QEMU ended before the guest reached `{READY_MARKER}`"
        )),
    };
    if migrated.is_err() {
        let _ = child.kill();
    }
    drop(child.stdin.take());
    let status = child.wait().context("waiting for the snapshot's QEMU")?;
    let interrupted = inputs.interrupt.release(child.id());
    let console = console_reader
        .join()
        .map_err(|_| anyhow::anyhow!("the console reader panicked"))?;
    crate::fsutil::write_atomic(&snapshot.console, &console)?;
    let tail = || console::tail(&String::from_utf8_lossy(&console), TAIL_LINES).join("\n");
    if interrupted {
        bail!("the run was interrupted");
    }
    if let Err(error) = migrated {
        bail!(
            "{error:#}; QEMU {status}; stderr: {}; console tail:\n{}",
            qemu::file_tail(&dir.join("qemu.stderr"), 4),
            tail()
        );
    }
    if !status.success() {
        bail!("the snapshot's QEMU ended with {status} after the migration");
    }
    if !snapshot.state.is_file() {
        bail!(
            "the plugin wrote no state file {} ({})",
            snapshot.state.display(),
            qemu::file_tail(&dir.join("qemu.stderr"), 4)
        );
    }
    check_boot_events(&snapshot.events)?;
    Ok(Snapshot {
        seconds: (started.elapsed().as_secs_f64() * 100.0).round() / 100.0,
        ..snapshot
    })
}

/// A snapshot is every restored cell's boot: it must be a clean one.
fn check_boot_events(path: &Path) -> Result<()> {
    let events =
        EventsReport::load(path).with_context(|| format!("cannot read {}", path.display()))?;
    if events.missing || events.summary.is_none() {
        bail!("the boot's events {} have no summary", path.display());
    }
    if !events.aborts.is_empty() {
        bail!(
            "the boot had {} gated accesses (the first: {}); its cells boot cold so that each \
             reports them",
            events.aborts.len(),
            events.aborts[0].register_name()
        );
    }
    if !events.malformed.is_empty() {
        bail!(
            "the boot's events are malformed: {}",
            events.malformed.join("; ")
        );
    }
    Ok(())
}

/// Streams QEMU's stdout into memory and says when the guest is ready.
fn read_console(mut from: impl Read, ready: mpsc::Sender<()>) -> Vec<u8> {
    let mut all = Vec::new();
    let mut buffer = [0u8; 8192];
    let mut told = false;
    loop {
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => all.extend_from_slice(&buffer[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        if !told && console::has_line(&all, READY_MARKER) {
            told = true;
            let _ = ready.send(());
        }
    }
    all
}

/// Over QMP: stop the guest, migrate it to `image`, wait for the migration to complete,
/// quit (the plugin writes its state at exit, with the guest stopped).
fn migrate(socket: &Path, image: &Path) -> Result<()> {
    let stream = UnixStream::connect(socket)
        .with_context(|| format!("cannot connect to QMP at {}", socket.display()))?;
    stream
        .set_read_timeout(Some(BOOT_TIMEOUT))
        .context("QMP socket timeout")?;
    let mut qmp = Qmp {
        reader: BufReader::new(stream.try_clone().context("QMP socket")?),
        writer: stream,
    };
    qmp.message().context("the QMP greeting")?;
    qmp.execute(json!({"execute": "qmp_capabilities"}))?;
    // Stopped at once, so that the snapshot's guest is where a cold boot's is when its test
    // starts: the drivers' 300 ms autosuspend timers still pending after the probes. (A live
    // migration lets the guest run on for its duration, and a restored test would then
    // start from runtime-suspended devices where a cold one finds them active.) The
    // snapshot's QEMU does not store its run state (`migration.store-global-state=off`), so
    // a restored QEMU starts running once loaded.
    qmp.execute(json!({"execute": "stop"}))?;
    // With the `events` capability QEMU says when the migration is done: no polling.
    qmp.execute(json!({
        "execute": "migrate-set-capabilities",
        "arguments": {"capabilities": [{"capability": "events", "state": true}]}
    }))?;
    let uri = format!(
        "file:{}",
        image.to_str().context("the snapshot path is not UTF-8")?
    );
    qmp.execute(json!({"execute": "migrate", "arguments": {"uri": uri}}))?;
    loop {
        let message = qmp.message().context("waiting for the migration")?;
        if message["event"] == "MIGRATION" {
            match message["data"]["status"].as_str() {
                Some("completed") => break,
                Some(status @ ("failed" | "cancelled")) => {
                    let info = qmp.execute(json!({"execute": "query-migrate"}))?;
                    bail!(
                        "the migration {status}: {}",
                        info["error-desc"].as_str().unwrap_or("no reason given")
                    );
                }
                _ => {}
            }
        }
    }
    qmp.execute(json!({"execute": "quit"}))?;
    Ok(())
}

struct Qmp {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Qmp {
    fn message(&mut self) -> Result<Value> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).context("reading QMP")? == 0 {
            bail!("QEMU closed the QMP connection");
        }
        serde_json::from_str(&line).with_context(|| format!("QMP sent `{}`", line.trim()))
    }

    /// Sends a command and returns its `return`, skipping the events that come between.
    fn execute(&mut self, command: Value) -> Result<Value> {
        let name = command["execute"].as_str().unwrap_or("?").to_string();
        writeln!(self.writer, "{command}").context("writing QMP")?;
        loop {
            let message = self.message()?;
            if let Some(error) = message.get("error") {
                bail!("QMP {name}: {}", error["desc"].as_str().unwrap_or("error"));
            }
            if let Some(value) = message.get("return") {
                return Ok(value.clone());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_boot_with_an_abort_is_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let events = dir.path().join("events.jsonl");
        std::fs::write(&events, crate::testdata::PREFIX_ADC_UNBIND_EVENTS).unwrap();
        let error = check_boot_events(&events).unwrap_err().to_string();
        assert!(error.contains("gated accesses"), "{error}");
        let clean: String = crate::testdata::PREFIX_ADC_UNBIND_EVENTS
            .lines()
            .filter(|l| !l.contains("\"type\":\"abort\""))
            .map(|l| format!("{}\n", l.replace("\"aborts\":1", "\"aborts\":0")))
            .collect();
        std::fs::write(&events, clean).unwrap();
        check_boot_events(&events).unwrap();
        std::fs::write(&events, "").unwrap();
        assert!(check_boot_events(&events).is_err(), "no summary");
    }
}
