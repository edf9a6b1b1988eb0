//! librzgate.so inside the real QEMU 11.1 of the project's toolchain (`make toolchain`):
//! loading, argument refusal, the reset image, model effects, abort call chains, `halt`, two
//! vCPUs under MTTCG, and the summary at power-off and on a signal.
//!
//! Skipped, with a note on stderr, when that QEMU is not installed. Set `RZGATE_QEMU` and
//! `RZGATE_QEMU_DATADIR` to use another one.
//!
//! The guests are a few aarch64 instructions (their listing is in the comments) that QEMU
//! loads as a raw image at 0x4008_0000 and runs at EL1 with the MMU off; they end with PSCI
//! SYSTEM_OFF through HVC, virt's conduit when it boots a kernel at EL1.

use serde_json::Value;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Reads RST_ADC (reset value 3: from the reset image), turns both ADC clocks on and reads
/// CLK_MON_ADC (3: the model's effect), turns them off and reads it again (0), then stores
/// `RST | MON_on << 8 | MON_off << 16` (0x303) to ADM0 from `leaf`, called through `f1` and
/// `f2`: a gated write.
const GATED_WRITE: &[u32] = &[
    0x58000449, // 40080000: ldr x9, =0x40200000
    0x9100013f, // 40080004: mov sp, x9
    0xd280001d, // 40080008: mov x29, #0
    0x58000420, // 4008000c: ldr x0, =0x7e0108a8 (RST_ADC)
    0xb9400001, // 40080010: ldr w1, [x0]
    0x58000420, // 40080014: ldr x0, =0x7e010728 (CLK_MON_ADC)
    0x58000442, // 40080018: ldr x2, =0x7e0105a8 (CLK_ON_ADC)
    0x18000324, // 4008001c: ldr w4, =0x00030003
    0xb9000044, // 40080020: str w4, [x2]
    0xb9400003, // 40080024: ldr w3, [x0]
    0x180002e4, // 40080028: ldr w4, =0x00030000
    0xb9000044, // 4008002c: str w4, [x2]
    0xb9400006, // 40080030: ldr w6, [x0]
    0x2a032023, // 40080034: orr w3, w1, w3, lsl #8
    0x2a064063, // 40080038: orr w3, w3, w6, lsl #16
    0x58000365, // 4008003c: ldr x5, =0x7d058000 (ADM0)
    0x94000004, // 40080040: bl f1
    0x58000360, // 40080044: ldr x0, =0x84000008 (PSCI SYSTEM_OFF)
    0xd4000002, // 40080048: hvc #0
    0x14000000, // 4008004c: b .
    0xa9bf7bfd, // 40080050: f1: stp x29, x30, [sp, #-16]!
    0x910003fd, // 40080054: mov x29, sp
    0x94000003, // 40080058: bl f2
    0xa8c17bfd, // 4008005c: ldp x29, x30, [sp], #16
    0xd65f03c0, // 40080060: ret
    0xa9bf7bfd, // 40080064: f2: stp x29, x30, [sp, #-16]!
    0x910003fd, // 40080068: mov x29, sp
    0x94000003, // 4008006c: bl leaf
    0xa8c17bfd, // 40080070: ldp x29, x30, [sp], #16
    0xd65f03c0, // 40080074: ret
    0xb90000a3, // 40080078: leaf: str w3, [x5]
    0xd65f03c0, // 4008007c: ret
    0x00030003, 0x00030000, // 40080080
    0x40200000, 0, 0x7e0108a8, 0, 0x7e010728, 0, 0x7e0105a8, 0, // 40080088
    0x7d058000, 0, 0x84000008, 0, // 400800a8
];

/// CPU 0 starts CPU 1 (PSCI CPU_ON); both run `worker`: 2000 times ADC clocks on, read
/// ADM0, clocks off, read ADM0 (the vCPUs race, so some reads abort and some do not). CPU 1
/// then sets a flag at 0x4030_0000, CPU 0 waits for it and powers off.
const TWO_VCPUS: &[u32] = &[
    0x58000549, // 40080000: ldr x9, =0x40200000
    0x9100013f, // 40080004: mov sp, x9
    0xd280001d, // 40080008: mov x29, #0
    0x58000520, // 4008000c: ldr x0, =0xc4000003 (PSCI CPU_ON)
    0xd2800021, // 40080010: mov x1, #1
    0x10000142, // 40080014: adr x2, secondary
    0xd2800003, // 40080018: mov x3, #0
    0xd4000002, // 4008001c: hvc #0
    0x94000010, // 40080020: bl worker
    0x580004a7, // 40080024: ldr x7, =0x40300000
    0xb94000e8, // 40080028: ldr w8, [x7]
    0x34ffffe8, // 4008002c: cbz w8, 40080028
    0x58000480, // 40080030: ldr x0, =0x84000008 (PSCI SYSTEM_OFF)
    0xd4000002, // 40080034: hvc #0
    0x14000000, // 40080038: b .
    0x58000469, // 4008003c: secondary: ldr x9, =0x40280000
    0x9100013f, // 40080040: mov sp, x9
    0xd280001d, // 40080044: mov x29, #0
    0x94000006, // 40080048: bl worker
    0x58000367, // 4008004c: ldr x7, =0x40300000
    0x52800028, // 40080050: mov w8, #1
    0xb90000e8, // 40080054: str w8, [x7]
    0xd503205f, // 40080058: wfe
    0x17ffffff, // 4008005c: b 40080058
    0xa9bf7bfd, // 40080060: worker: stp x29, x30, [sp, #-16]!
    0x910003fd, // 40080064: mov x29, sp
    0x58000342, // 40080068: ldr x2, =0x7e0105a8 (CLK_ON_ADC)
    0x58000365, // 4008006c: ldr x5, =0x7d058000 (ADM0)
    0x1800016a, // 40080070: ldr w10, =0x00030003
    0x1800016b, // 40080074: ldr w11, =0x00030000
    0x5800034c, // 40080078: ldr x12, =2000
    0xb900004a, // 4008007c: str w10, [x2]
    0xb94000ad, // 40080080: ldr w13, [x5]
    0xb900004b, // 40080084: str w11, [x2]
    0xb94000ad, // 40080088: ldr w13, [x5]
    0xf100058c, // 4008008c: subs x12, x12, #1
    0x54ffff61, // 40080090: b.ne 4008007c
    0xa8c17bfd, // 40080094: ldp x29, x30, [sp], #16
    0xd65f03c0, // 40080098: ret
    0x00030003, 0x00030000, 0, // 4008009c
    0x40200000, 0, 0xc4000003, 0, 0x40300000, 0, 0x84000008, 0, // 400800a8
    0x40280000, 0, 0x7e0105a8, 0, 0x7d058000, 0, 2000, 0, // 400800c8
];

/// `on_abort=serror` in miniature: sets VBAR_EL1 to `vectors`, ungates and gates the ADC,
/// then `leaf` (called through `f1`, x19 = 0x1234) reads ADM0: a gated read. The fake kernel
/// functions of [`SERROR_MAP`] follow: `el1h_64_error` calls `el1h_64_error_handler`, which
/// calls `do_serror`, as in Linux. `do_serror` and `arm64_serror_panic` report what they were
/// entered with by writing it to the mailbox STEP register (each write is a `marker` event),
/// then power off. [`serror_guest`] places `vectors` at +0x800; an unexpected exception powers
/// off without markers.
const SERROR_CODE: &[u32] = &[
    0x580008c9, // 40080000: ldr x9, =0x40200000
    0x9100013f, // 40080004: mov sp, x9
    0xd280001d, // 40080008: mov x29, #0
    0x10003fa0, // 4008000c: adr x0, vectors (40080800)
    0xd518c000, // 40080010: msr vbar_el1, x0
    0x58000862, // 40080014: ldr x2, =0x7e0105a8 (CLK_ON_ADC)
    0x180007a4, // 40080018: ldr w4, =0x00030003
    0xb9000044, // 4008001c: str w4, [x2]
    0x18000784, // 40080020: ldr w4, =0x00030000
    0xb9000044, // 40080024: str w4, [x2]
    0x58000805, // 40080028: ldr x5, =0x7d058000 (ADM0)
    0xd2824693, // 4008002c: mov x19, #0x1234
    0x94000002, // 40080030: bl f1
    0x14000000, // 40080034: b .
    0xa9bf7bfd, // 40080038: f1: stp x29, x30, [sp, #-16]!
    0x910003fd, // 4008003c: mov x29, sp
    0x94000003, // 40080040: bl leaf
    0xa8c17bfd, // 40080044: ldp x29, x30, [sp], #16
    0xd65f03c0, // 40080048: ret
    0xb94000a3, // 4008004c: leaf: ldr w3, [x5]     <- the gated read
    0xd65f03c0, // 40080050: ret
    0xd503201f, // 40080054: el1h_64_error: nop
    0x94000002, // 40080058: bl el1h_64_error_handler
    0x14000000, // 4008005c: b .
    0xa9be7bfd, // 40080060: el1h_64_error_handler: stp x29, x30, [sp, #-32]!
    0x910003fd, // 40080064: mov x29, sp
    0x94000002, // 40080068: bl do_serror
    0x14000000, // 4008006c: b .
    0xa9bf7bfd, // 40080070: do_serror: stp x29, x30, [sp, #-16]!
    0x910003fd, // 40080074: mov x29, sp
    0x580005ca, // 40080078: ldr x10, =0x7ffff000 (mailbox STEP)
    0xb9000141, // 4008007c: str w1, [x10]          esr
    0xf940800b, // 40080080: ldr x11, [x0, #256]
    0xb900014b, // 40080084: str w11, [x10]         pt_regs.pc
    0xf9404c0b, // 40080088: ldr x11, [x0, #152]
    0xb900014b, // 4008008c: str w11, [x10]         pt_regs.regs[19]
    0xf9409c0b, // 40080090: ldr x11, [x0, #312]
    0xb900014b, // 40080094: str w11, [x10]         pt_regs.stackframe.type
    0xf9407c0b, // 40080098: ldr x11, [x0, #248]
    0xcb00016b, // 4008009c: sub x11, x11, x0
    0xb900014b, // 400800a0: str w11, [x10]         pt_regs.sp - regs
    0xf94003ab, // 400800a4: ldr x11, [x29]         the handler's frame record
    0xf940016c, // 400800a8: ldr x12, [x11]
    0xcb00018c, // 400800ac: sub x12, x12, x0
    0xb900014c, // 400800b0: str w12, [x10]         its fp - regs
    0xf940056c, // 400800b4: ldr x12, [x11, #8]
    0xb900014c, // 400800b8: str w12, [x10]         its lr
    0xf94007ac, // 400800bc: ldr x12, [x29, #8]
    0xb900014c, // 400800c0: str w12, [x10]         do_serror's lr
    0xd53b422c, // 400800c4: mrs x12, daif
    0xb900014c, // 400800c8: str w12, [x10]         DAIF
    0x1400000d, // 400800cc: b power_off
    0xa9bf7bfd, // 400800d0: arm64_serror_panic: stp x29, x30, [sp, #-16]!
    0x910003fd, // 400800d4: mov x29, sp
    0x580002ca, // 400800d8: ldr x10, =0x7ffff000
    0xb9000141, // 400800dc: str w1, [x10]          esr
    0xf940800b, // 400800e0: ldr x11, [x0, #256]
    0xb900014b, // 400800e4: str w11, [x10]         pt_regs.pc
    0xf9404c0b, // 400800e8: ldr x11, [x0, #152]
    0xb900014b, // 400800ec: str w11, [x10]         pt_regs.regs[19]
    0xf94007ac, // 400800f0: ldr x12, [x29, #8]
    0xb900014c, // 400800f4: str w12, [x10]         its lr
    0xd53b422c, // 400800f8: mrs x12, daif
    0xb900014c, // 400800fc: str w12, [x10]         DAIF
    0x580001c0, // 40080100: power_off: ldr x0, =0x84000008 (PSCI SYSTEM_OFF)
    0xd4000002, // 40080104: hvc #0
    0x14000000, // 40080108: b .
    0x00030003, 0x00030000, 0, // 4008010c
    0x40200000, 0, 0x7e0105a8, 0, 0x7d058000, 0, 0x7ffff000, 0, 0x84000008, 0, // 40080118
];

/// The System.map of [`SERROR_CODE`]'s fake kernel (`faithful`: with `el1h_64_error`; without
/// it the plugin falls back to `arm64_serror_panic`).
fn serror_map(faithful: bool) -> String {
    let entry = if faithful {
        "el1h_64_error"
    } else {
        "entry_renamed"
    };
    format!(
        "0000000040080000 T _text\n\
         0000000040080000 T _stext\n\
         0000000040080038 t f1\n\
         000000004008004c t leaf\n\
         0000000040080054 t {entry}\n\
         0000000040080060 T el1h_64_error_handler\n\
         0000000040080070 T do_serror\n\
         00000000400800d0 T arm64_serror_panic\n\
         0000000040080100 t power_off\n\
         0000000040080800 T vectors\n\
         0000000040080a18 T _etext\n"
    )
}

/// [`SERROR_CODE`], padded with nops to `vectors` at +0x800, whose first 0x200 bytes are nops
/// and whose current-EL sync entry (+0x200) powers off.
fn serror_guest() -> Vec<u32> {
    let mut guest = SERROR_CODE.to_vec();
    guest.resize(0x800 / 4 + 0x200 / 4, 0xd503201f);
    guest.extend([0x58000080, 0xd4000002, 0x14000000, 0, 0x84000008, 0]);
    guest
}

/// `b .`: runs until QEMU is stopped from outside.
const SPIN: &[u32] = &[0x14000000];

const TIMEOUT: Duration = Duration::from_secs(60);

struct Qemu {
    binary: PathBuf,
    datadir: PathBuf,
}

/// The toolchain's QEMU, as ci/lib.sh and ci/toolchain.sh place it.
fn qemu() -> Option<Qemu> {
    let cache = std::env::var_os("RZGATE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("XDG_CACHE_HOME").map(|dir| Path::new(&dir).join("rzgate")))
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache/rzgate")))?;
    let binary = std::env::var_os("RZGATE_QEMU")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("bin/qemu-system-aarch64"));
    let datadir = std::env::var_os("RZGATE_QEMU_DATADIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| cache.join("root-trixie/usr/share/qemu"));
    if binary.exists() && datadir.exists() {
        Some(Qemu { binary, datadir })
    } else {
        eprintln!(
            "skipped: no QEMU 11 at {} (run `make toolchain`, or set RZGATE_QEMU and \
             RZGATE_QEMU_DATADIR)",
            binary.display()
        );
        None
    }
}

/// librzgate.so of the current sources. Cargo builds no cdylib for an integration test (it
/// cannot link one), so the test asks cargo for it, once, and takes the path cargo reports.
fn plugin() -> PathBuf {
    static PLUGIN: OnceLock<PathBuf> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            let output = Command::new(env!("CARGO"))
                .args([
                    "build",
                    "-p",
                    "rzgate",
                    "--message-format=json-render-diagnostics",
                ])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .stderr(Stdio::inherit())
                .output()
                .expect("cargo build -p rzgate");
            assert!(output.status.success(), "cargo build -p rzgate failed");
            String::from_utf8_lossy(&output.stdout)
                .lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|message| message["reason"] == "compiler-artifact")
                .flat_map(|artifact| {
                    artifact["filenames"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                })
                .filter_map(|file| file.as_str().map(PathBuf::from))
                .find(|file| file.file_name().is_some_and(|name| name == "librzgate.so"))
                .expect("cargo reports librzgate.so")
        })
        .clone()
}

/// The shipped description with one declared change: the ADC's bus answers with an error as
/// soon as its clock stops (`bus_error: clock-stopped`), so that these few-instruction guests
/// gate it with one CLK_ON store instead of a whole CPG sequence. The gate rule itself is
/// rzgate-core's and tested there.
fn soc() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../socs/r9a08g045.yaml");
        let text = std::fs::read_to_string(&shipped).expect("shipped SoC description");
        let rule = "      resets: [adc_presetn]\n      bus_error: clock-stopped-and-mstop\n";
        assert_eq!(text.matches(rule).count(), 1, "the ADC's gate rule");
        let text = text.replacen(
            rule,
            "      resets: [adc_presetn]\n      bus_error: clock-stopped\n",
            1,
        );
        let path = std::env::temp_dir().join(format!(
            "rzgate-qemu-{}-soc-adc-clock-stopped.yaml",
            std::process::id()
        ));
        std::fs::write(&path, text).expect("write the test SoC description");
        path
    })
    .clone()
}

fn scratch(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("rzgate-qemu-{}-{name}-{n}", std::process::id()))
}

struct Run {
    status: ExitStatus,
    stderr: String,
    /// QEMU's stdout (the serial console, and the plugin's `verdict=stdout` stream).
    stdout: String,
    events: Vec<Value>,
}

struct Machine {
    child: Child,
    events: PathBuf,
    image: PathBuf,
}

impl Machine {
    /// Boots `guest` with the plugin and `options` appended to its arguments.
    fn start(qemu: &Qemu, guest: &[u32], options: &str, smp: u32) -> Machine {
        let image = scratch("guest.bin");
        let bytes: Vec<u8> = guest.iter().flat_map(|word| word.to_le_bytes()).collect();
        std::fs::write(&image, bytes).expect("guest image");
        let events = scratch("events.jsonl");
        let mut plugin_argument = format!(
            "{},soc={},events={}",
            plugin().display(),
            soc().display(),
            events.display()
        );
        if !options.is_empty() {
            plugin_argument.push(',');
            plugin_argument.push_str(options);
        }
        let child = Command::new(&qemu.binary)
            .arg("-L")
            .arg(&qemu.datadir)
            .args(["-M", "virt", "-cpu", "cortex-a55", "-m", "1G", "-nographic"])
            .args(["-smp", &smp.to_string(), "-accel", "tcg,thread=multi"])
            .arg("-plugin")
            .arg(plugin_argument)
            .arg("-kernel")
            .arg(&image)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("QEMU starts");
        Machine {
            child,
            events,
            image,
        }
    }

    fn wait(mut self) -> Run {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for QEMU") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("QEMU did not finish within {TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let mut stdout = String::new();
        if let Some(mut pipe) = self.child.stdout.take() {
            let _ = pipe.read_to_string(&mut stdout);
        }
        let events = std::fs::read_to_string(&self.events)
            .unwrap_or_default()
            .lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
            .collect();
        let _ = std::fs::remove_file(&self.events);
        let _ = std::fs::remove_file(&self.image);
        Run {
            status,
            stderr,
            stdout,
            events,
        }
    }
}

fn boot(qemu: &Qemu, guest: &[u32], options: &str, smp: u32) -> Run {
    Machine::start(qemu, guest, options, smp).wait()
}

fn of_type<'a>(events: &'a [Value], kind: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|event| event["type"] == kind)
        .collect()
}

fn kinds(events: &[Value]) -> Vec<&str> {
    events
        .iter()
        .map(|event| event["type"].as_str().unwrap_or("?"))
        .collect()
}

#[test]
fn a_bad_argument_makes_qemu_refuse_the_plugin_with_a_message() {
    let Some(qemu) = qemu() else { return };
    let run = boot(&qemu, SPIN, "bogus=1", 1);
    assert!(!run.status.success(), "{:?}", run.status);
    assert!(
        run.stderr.contains("rzgate: unknown argument `bogus`"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("rzgate: rzgate:"), "{}", run.stderr);
}

#[test]
fn a_gated_write_is_reported_with_its_call_chain_after_the_models_ran() {
    let Some(qemu) = qemu() else { return };
    let run = boot(&qemu, GATED_WRITE, "", 1);
    assert!(run.status.success(), "{:?}: {}", run.status, run.stderr);
    let kinds = kinds(&run.events);
    assert_eq!(
        kinds,
        ["start", "gate", "gate", "abort", "summary"],
        "{:#?}",
        run.events
    );

    let abort = of_type(&run.events, "abort")[0];
    // Reset image visible (RST_ADC = 3), CLK_MON followed CLK_ON on and off at once.
    assert_eq!(abort["value"], 0x303, "{abort:#}");
    assert_eq!(abort["device"], "adc");
    assert_eq!(abort["register"], "ADM0");
    assert_eq!(abort["access"], "write");
    assert_eq!(abort["pc"], 0x4008_0078);
    // lr into f2, then the return addresses of f2's and f1's records; _start's fp is 0.
    assert_eq!(
        abort["frames"],
        serde_json::json!([0x4008_0070, 0x4008_005c, 0x4008_0044])
    );
    assert_eq!(abort["unwind"], "end");
    let gated = &of_type(&run.events, "gate")[1];
    assert_eq!(gated["gated"], true);
    assert_eq!(abort["gated_since"]["seq"], gated["seq"]);

    let summary = run.events.last().unwrap();
    assert_eq!(summary["aborts"], 1);
    assert_eq!(summary["write_failures"], 0);
    assert_eq!(summary["channel_full"], 0);
}

#[test]
fn halt_stops_qemu_with_status_3_once_the_events_are_written() {
    let Some(qemu) = qemu() else { return };
    let run = boot(&qemu, GATED_WRITE, "on_abort=halt", 1);
    assert_eq!(run.status.code(), Some(3), "{}", run.stderr);
    let kinds = kinds(&run.events);
    assert_eq!(kinds[kinds.len() - 3..], ["abort", "halt", "summary"]);
    let abort = of_type(&run.events, "abort")[0];
    assert_eq!(of_type(&run.events, "halt")[0]["abort_seq"], abort["seq"]);
    assert_eq!(abort["unwind"], "end");
}

/// `verdict=stdout`: QEMU closes its stdio descriptors before the plugin's exit callback;
/// the stream still ends with the verdict and the end marker, after a normal exit and after
/// a halt, and carries exactly the events of the file.
#[test]
fn the_verdict_stream_ends_after_the_summary_on_qemus_stdout() {
    let Some(qemu) = qemu() else { return };
    for (options, status) in [("verdict=stdout", 0), ("verdict=stdout,on_abort=halt", 3)] {
        let run = boot(&qemu, GATED_WRITE, options, 1);
        assert_eq!(run.status.code(), Some(status), "{options}: {}", run.stderr);
        let lines: Vec<&str> = run.stdout.lines().collect();
        let begin = lines.iter().position(|l| *l == "# rzgate-begin");
        assert!(
            begin.is_some(),
            "{options}: no begin marker in {:?}",
            run.stdout
        );
        assert_eq!(
            lines[lines.len() - 2..],
            ["not ok 1 rzgate.no-gated-access # aborts=1", "# rzgate-end"],
            "{options}"
        );
        let streamed: Vec<Value> = lines
            .iter()
            .filter_map(|l| l.strip_prefix("rzgate-event: "))
            .map(|l| serde_json::from_str(l).expect("one JSON object a line"))
            .collect();
        assert_eq!(streamed, run.events, "{options}");
    }
    let run = boot(&qemu, GATED_WRITE, "verdict=serial", 1);
    assert!(!run.status.success());
    assert!(
        run.stderr.contains("bad value `serial` for `verdict`"),
        "{}",
        run.stderr
    );
}

fn markers(events: &[Value]) -> Vec<u64> {
    of_type(events, "marker")
        .iter()
        .map(|marker| marker["step"].as_u64().expect("step"))
        .collect()
}

fn write_map(text: &str) -> PathBuf {
    let map = scratch("System.map");
    std::fs::write(&map, text).expect("System.map");
    map
}

#[test]
fn serror_enters_do_serror_as_the_kernel_entry_code_would() {
    let Some(qemu) = qemu() else { return };
    let map = write_map(&serror_map(true));
    let run = boot(
        &qemu,
        &serror_guest(),
        &format!("on_abort=serror,symbols={}", map.display()),
        1,
    );
    let _ = std::fs::remove_file(&map);
    assert!(run.status.success(), "{:?}: {}", run.status, run.stderr);
    let ready = of_type(&run.events, "serror_ready");
    assert_eq!(ready.len(), 1, "{:#?}", run.events);
    assert_eq!(ready[0]["mode"], "faithful");
    assert_eq!(ready[0]["vbar_el1"], 0x4008_0800, "VBAR_EL1 is readable");
    let abort = of_type(&run.events, "abort")[0];
    assert_eq!(abort["pc"], 0x4008_004c);
    assert_eq!(abort["diverted"], true);
    assert_eq!(abort["serror"]["mode"], "faithful");
    assert_eq!(
        abort["frames"],
        serde_json::json!([0x4008_0044, 0x4008_0034])
    );
    // The guest's do_serror saw: x1 = the SError ESR; pt_regs.pc = the gated read, with the
    // interrupted x19; the meta record type PT_REGS; pt_regs below the interrupted sp; the
    // handler's frame record pointing at pt_regs.stackframe and returning into
    // el1h_64_error after its bl; x30 = after the bl in the handler; DAIF masked.
    assert_eq!(
        markers(&run.events),
        [
            0xbe00_0011,
            0x4008_004c,
            0x1234,
            2,
            320,
            296,
            0x4008_005c,
            0x4008_006c,
            0x3c0
        ],
        "{:#?}",
        run.events
    );
    assert_eq!(run.events.last().unwrap()["type"], "summary");
}

#[test]
fn serror_falls_back_to_arm64_serror_panic() {
    let Some(qemu) = qemu() else { return };
    let map = write_map(&serror_map(false));
    let run = boot(
        &qemu,
        &serror_guest(),
        &format!("on_abort=serror,symbols={}", map.display()),
        1,
    );
    let _ = std::fs::remove_file(&map);
    assert!(run.status.success(), "{:?}: {}", run.status, run.stderr);
    assert!(run.stderr.contains("lacks el1h_64_error"), "{}", run.stderr);
    let abort = of_type(&run.events, "abort")[0];
    assert_eq!(abort["serror"]["mode"], "fallback");
    // x30 = the gated read + 4: the faulting function is the first frame of the trace.
    assert_eq!(
        markers(&run.events),
        [0xbe00_0011, 0x4008_004c, 0x1234, 0x4008_0050, 0x3c0]
    );
}

#[test]
fn serror_stops_qemu_at_once_when_the_map_is_another_kernels() {
    let Some(qemu) = qemu() else { return };
    // Everything 0x10 further on: the code at the map's addresses does not call as the map
    // says.
    let shifted: String = serror_map(true)
        .lines()
        .map(|line| {
            let (addr, rest) = line.split_once(' ').unwrap();
            let addr = u64::from_str_radix(addr, 16).unwrap() + 0x10;
            format!("{addr:016x} {rest}\n")
        })
        .collect();
    let map = write_map(&shifted);
    let run = boot(
        &qemu,
        &serror_guest(),
        &format!("on_abort=serror,symbols={}", map.display()),
        1,
    );
    let _ = std::fs::remove_file(&map);
    assert_eq!(run.status.code(), Some(4), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("is not the System.map of the running kernel"),
        "{}",
        run.stderr
    );
    assert_eq!(kinds(&run.events), ["start", "symbols_mismatch", "summary"]);
}

#[test]
fn serror_without_a_usable_map_is_refused_at_load() {
    let Some(qemu) = qemu() else { return };
    let run = boot(
        &qemu,
        SPIN,
        "on_abort=serror,symbols=/nonexistent/System.map",
        1,
    );
    assert!(!run.status.success(), "{:?}", run.status);
    assert!(
        run.stderr
            .contains("rzgate: on_abort=serror: cannot read the kernel's symbol map symbols=/nonexistent/System.map"),
        "{}",
        run.stderr
    );
}

#[test]
fn two_vcpus_share_the_models_and_every_event_is_written_in_order() {
    let Some(qemu) = qemu() else { return };
    let run = boot(&qemu, TWO_VCPUS, "", 2);
    assert!(run.status.success(), "{:?}: {}", run.status, run.stderr);
    let seqs: Vec<u64> = run
        .events
        .iter()
        .map(|event| event["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    let summary = run.events.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["accesses"]["adc"], 8000);
    assert_eq!(summary["accesses"]["cpg"], 8000);
    let aborts = of_type(&run.events, "abort");
    assert_eq!(summary["aborts"], aborts.len() as u64);
    // About one abort per read after a vCPU's own clocks-off (4000), give or take the
    // other vCPU's clock writes landing in between (seen: 3998..4003): not an exact count.
    assert!(
        (3000..=5000).contains(&aborts.len()),
        "about every read after a vCPU's own clocks-off aborts: {}",
        aborts.len()
    );
    for vcpu in [0, 1] {
        assert!(
            aborts.iter().any(|abort| abort["vcpu"] == vcpu),
            "vCPU {vcpu}"
        );
    }
    assert_eq!(summary["write_failures"], 0);
}

#[test]
fn the_summary_is_written_when_qemu_is_stopped_by_a_signal() {
    let Some(qemu) = qemu() else { return };
    let machine = Machine::start(&qemu, SPIN, "", 1);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(machine.child.id() as libc::pid_t, libc::SIGTERM) };
    let run = machine.wait();
    assert_eq!(kinds(&run.events), ["start", "summary"], "{}", run.stderr);
}
