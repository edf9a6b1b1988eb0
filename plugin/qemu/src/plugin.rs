//! The plugin's state and what happens on one access to the window, with QEMU behind the
//! [`Guest`] trait so that all of it runs under `cargo test`.
//!
//! Concurrency. Under MTTCG (`-smp 2`) vCPU threads call in at the same time, and the device
//! models are shared state, so the bus sits behind one mutex. The lock covers the model step,
//! the application of its memory writes and the queueing of its events:
//! - writes: two vCPUs touching the same device could otherwise apply their effects out of
//!   order (A's older CLK_MON value landing after B's newer one), leaving the window stale;
//! - events: they reach the file in `seq` order.
//!
//! Holding it across `qemu_plugin_write_memory_hwaddr` is safe: that call takes the BQL only for
//! MMIO (the GIC), and no thread that holds the BQL ever waits for this lock (vCPU threads run
//! guest code and these callbacks without the BQL; the vCPU-init callback, which does run
//! under the BQL, never takes it; at exit the vCPUs are stopped). The outcome buffer lives under
//! the same lock, so the hot path reuses its capacity instead of allocating.
//!
//! Everything outside the window returns before any lock: see [`Plugin::window_contains`].

use crate::access::{access_size_and_value, StoreBytes};
use crate::install::InstallError;
use crate::reporter::{Record, Reporter, CHANNEL_CAPACITY};
use crate::unwind::{walk_frame_records, CallChain, FrameRecord};
use rzgate_core::bus::{Access, Bus, MemWrite, Outcome};
use rzgate_core::config::{AbortPolicy, PluginConfig};
use rzgate_core::event::Event;
use rzgate_core::soc::Soc;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// Exit status of QEMU when `on_abort=halt` stops it.
pub const HALT_EXIT_STATUS: i32 = 3;

/// What the plugin needs from QEMU for one vCPU, in that vCPU's callback.
pub trait Guest {
    /// Stores `bytes` at guest-physical `phys` through the vCPU's address space (RAM or device
    /// MMIO). False when QEMU refuses the write.
    fn write_phys(&mut self, phys: u64, bytes: &[u8]) -> bool;
    /// The vCPU's x29 (fp) and x30 (lr), or `None` when they cannot be read here.
    fn frame_registers(&mut self) -> Option<(u64, u64)>;
    /// The 16-byte frame record at guest-virtual `vaddr`, or `None` when it cannot be read.
    fn read_frame_record(&mut self, vaddr: u64) -> Option<FrameRecord>;
}

/// What the caller must do after an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// The events are on disk; terminate QEMU with this status now.
    Halt(i32),
}

/// The window's reset image is not in RAM yet: nothing else may happen.
const RESET_PENDING: u8 = 0;
/// Modelling.
const ACTIVE: u8 = 1;
/// Halted, finished or disabled by an internal error: every callback returns at once.
const STOPPED: u8 = 2;

struct Engine {
    bus: Bus,
    outcome: Outcome,
}

pub struct Plugin {
    window_base: u64,
    window_size: u64,
    halt_on_abort: bool,
    policy_name: &'static str,
    events_path: PathBuf,
    reset_image: Vec<MemWrite>,
    state: AtomicU8,
    reset_in_progress: Mutex<()>,
    engine: Mutex<Engine>,
    reporter: Reporter,
    write_failures: AtomicU64,
    summary_written: AtomicBool,
    internal_error: Mutex<Option<String>>,
}

impl Plugin {
    /// Everything `qemu_plugin_install` does that does not register callbacks: parse the
    /// arguments, load the SoC, build the bus, create the events file, start the reporter and
    /// queue the `start` event.
    pub fn from_arguments(arguments: &[String]) -> Result<Plugin, InstallError> {
        let config = PluginConfig::parse(arguments)?;
        let soc = Soc::load(&config.soc).map_err(|error| InstallError::Soc {
            path: config.soc.clone(),
            error,
        })?;
        let window = soc.window();
        let mut bus = Bus::new(soc, &config.model_config());
        let events =
            std::fs::File::create(&config.events).map_err(|error| InstallError::EventsFile {
                path: config.events.clone(),
                error,
            })?;
        let reporter = Reporter::start(events, CHANNEL_CAPACITY).map_err(InstallError::Reporter)?;
        reporter.send_event(bus.start_event(&config));
        let halt_on_abort = match config.on_abort {
            AbortPolicy::Continue => false,
            AbortPolicy::Halt => true,
            AbortPolicy::Serror => {
                eprintln!(
                    "rzgate: on_abort=serror cannot divert the guest yet; \
                     QEMU stops at the first abort as with on_abort=halt"
                );
                true
            }
        };
        Ok(Plugin {
            window_base: window.guest_base,
            window_size: window.size,
            halt_on_abort,
            policy_name: config.on_abort.as_str(),
            events_path: config.events.clone(),
            reset_image: bus.reset_image(),
            state: AtomicU8::new(RESET_PENDING),
            reset_in_progress: Mutex::new(()),
            engine: Mutex::new(Engine {
                bus,
                outcome: Outcome::default(),
            }),
            reporter,
            write_failures: AtomicU64::new(0),
            summary_written: AtomicBool::new(false),
            internal_error: Mutex::new(None),
        })
    }

    /// Hot path: one atomic load.
    #[inline]
    pub fn is_active(&self) -> bool {
        self.state.load(Ordering::Acquire) == ACTIVE
    }

    /// Hot path: is guest-physical `phys` in the SoC window? No lock, no allocation: the
    /// bounds were copied out of the SoC description at install.
    #[inline]
    pub fn window_contains(&self, phys: u64) -> bool {
        phys.wrapping_sub(self.window_base) < self.window_size
    }

    /// Halted, finished or disabled: nothing to instrument any more.
    pub fn is_stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) == STOPPED
    }

    /// True while the window still holds zeroes instead of the reset image.
    pub fn reset_pending(&self) -> bool {
        self.state.load(Ordering::Acquire) == RESET_PENDING
    }

    /// Writes the SoC's reset image into the window and makes the plugin active. Called by
    /// the first memory callback of any vCPU (see the crate documentation for why not
    /// earlier); the others wait on the lock and then find it done. Failed writes are counted
    /// and reported, and the plugin goes active with what it has: the guest cannot wait.
    /// Returns the number of writes made by this call (0 when another call did them).
    pub fn write_reset_image(&self, guest: &mut impl Guest) -> usize {
        let _one_writer = self
            .reset_in_progress
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if !self.reset_pending() {
            return 0;
        }
        let failures = self
            .reset_image
            .iter()
            .filter(|write| !store(guest, write))
            .count();
        if failures > 0 {
            self.write_failures
                .fetch_add(failures as u64, Ordering::Relaxed);
            eprintln!(
                "rzgate: {failures} of {} reset-image writes into the window at {:#x} \
                 (size {:#x}) failed: is it guest RAM (-M virt -m 1G)?",
                self.reset_image.len(),
                self.window_base,
                self.window_size
            );
        }
        let _ =
            self.state
                .compare_exchange(RESET_PENDING, ACTIVE, Ordering::AcqRel, Ordering::Acquire);
        self.reset_image.len() - failures
    }

    /// One guest access of `1 << size_shift` bytes inside the window, after QEMU made it:
    /// model it, apply its writes, capture the call chain of an abort, queue the events.
    /// `value` is the value loaded or stored (its low 8 bytes), `pc` the instruction's address.
    #[allow(clippy::too_many_arguments)]
    pub fn on_window_access(
        &self,
        guest: &mut impl Guest,
        vcpu: u32,
        pc: u64,
        phys: u64,
        size_shift: u32,
        is_write: bool,
        value: u64,
    ) -> Verdict {
        let Some((size, value)) = access_size_and_value(size_shift, value) else {
            return Verdict::Continue;
        };
        // A poisoned lock means a model panicked: internal_error has stopped the plugin.
        let Ok(mut engine) = self.engine.lock() else {
            return Verdict::Continue;
        };
        // Another vCPU may have halted or disabled the plugin while this one waited.
        if !self.is_active() {
            return Verdict::Continue;
        }
        let Engine { bus, outcome } = &mut *engine;
        let access = Access {
            phys,
            size,
            is_write,
            value,
            vcpu,
            pc,
        };
        bus.access(&access, outcome);
        for write in &outcome.writes {
            if !store(guest, write) {
                self.write_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        let mut first_abort_seq = None;
        for mut event in outcome.events.drain(..) {
            if let Event::Abort(abort) = &mut event {
                // Before the event leaves: the registers are this vCPU's, now.
                let chain = capture_call_chain(guest);
                abort.frames = chain.frames;
                abort.unwind = chain.stop.as_str().to_string();
                first_abort_seq.get_or_insert(abort.seq);
            }
            self.reporter.send_event(event);
        }
        match first_abort_seq {
            Some(abort_seq) if self.halt_on_abort => {
                self.halt(bus, abort_seq);
                Verdict::Halt(HALT_EXIT_STATUS)
            }
            _ => Verdict::Continue,
        }
    }

    /// `on_abort=halt`: the abort is queued; add `halt` and the summary, write everything out
    /// and stop modelling. The caller then terminates QEMU.
    fn halt(&self, bus: &mut Bus, abort_seq: u64) {
        self.state.store(STOPPED, Ordering::Release);
        let seq = bus.next_seq();
        self.reporter.send_event(Event::Halt { seq, abort_seq });
        self.write_summary(bus);
        self.reporter.shutdown();
        eprintln!(
            "rzgate: gated access (event seq {abort_seq}) with on_abort={}: stopping QEMU \
             with exit status {HALT_EXIT_STATUS}; the report is in {}",
            self.policy_name,
            self.events_path.display()
        );
    }

    /// QEMU is exiting (the guest powered off, a signal, ...): queue the summary, write
    /// everything out. Idempotent.
    pub fn finish(&self) {
        self.state.store(STOPPED, Ordering::Release);
        // The vCPUs are stopped by now; should one still hold the lock, do not hang QEMU's
        // exit on it.
        match self.lock_engine_within(Duration::from_secs(2)) {
            Some(mut engine) => self.write_summary(&mut engine.bus),
            None => eprintln!(
                "rzgate: the device models were still busy at exit: {} has no summary",
                self.events_path.display()
            ),
        }
        self.reporter.shutdown();
    }

    /// A callback panicked: stop modelling for the rest of the run (the guest then sees plain
    /// RAM), say so once on stderr and in the events file.
    pub fn internal_error(&self, callback: &str, message: &str) {
        self.state.store(STOPPED, Ordering::Release);
        let mut first = self
            .internal_error
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if first.is_some() {
            return;
        }
        let description = format!("panic in the {callback} callback: {message}");
        eprintln!(
            "rzgate: internal error: {description}; device modelling is off for the rest of \
             the run"
        );
        *first = Some(description.clone());
        drop(first);
        if let Some(mut engine) = self.lock_engine_within(Duration::from_secs(2)) {
            let seq = engine.bus.next_seq();
            self.reporter.send(Record::Json(json!({
                "type": "internal_error",
                "seq": seq,
                "callback": callback,
                "message": description,
            })));
        }
    }

    /// The summary event of rzgate-core plus what only the glue counts: `channel_full` (how
    /// often a sender had to wait for the reporter; nothing is dropped), `write_failures`
    /// (model writes QEMU refused) and, after a panic, `internal_error`.
    fn write_summary(&self, bus: &mut Bus) {
        if self.summary_written.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut event = bus.summary_event();
        event.set_channel_full(self.reporter.channel_full());
        let mut summary = match serde_json::to_value(&event) {
            Ok(value) => value,
            Err(error) => json!({ "type": "summary", "serialize_error": error.to_string() }),
        };
        if let Some(fields) = summary.as_object_mut() {
            fields.insert(
                "write_failures".into(),
                self.write_failures.load(Ordering::Relaxed).into(),
            );
            let internal_error = self
                .internal_error
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clone();
            if let Some(description) = internal_error {
                fields.insert("internal_error".into(), description.into());
            }
        }
        self.reporter.send(Record::Json(summary));
    }

    /// The engine, poisoned or not, unless another thread keeps it for longer than `patience`.
    fn lock_engine_within(&self, patience: Duration) -> Option<MutexGuard<'_, Engine>> {
        let deadline = Instant::now() + patience;
        loop {
            match self.engine.try_lock() {
                Ok(engine) => return Some(engine),
                Err(TryLockError::Poisoned(poisoned)) => return Some(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(TryLockError::WouldBlock) => return None,
            }
        }
    }
}

/// Applies one model write; false when it could not be stored.
fn store(guest: &mut impl Guest, write: &MemWrite) -> bool {
    match StoreBytes::new(write.size, write.value) {
        Some(bytes) => guest.write_phys(write.phys, bytes.as_slice()),
        None => false,
    }
}

fn capture_call_chain(guest: &mut impl Guest) -> CallChain {
    match guest.frame_registers() {
        Some((fp, lr)) => walk_frame_records(lr, fp, |vaddr| guest.read_frame_record(vaddr)),
        None => CallChain::not_captured(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;
    use std::path::Path;
    use std::sync::atomic::AtomicUsize;

    fn soc_path() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../socs/r9a08g045.yaml")
    }

    /// A fresh events path per test (tests run in parallel).
    fn events_path(test: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        std::env::temp_dir().join(format!(
            "rzgate-plugin-{}-{test}-{n}.jsonl",
            std::process::id()
        ))
    }

    fn plugin_with(events: &Path, extra: &[&str]) -> Plugin {
        let mut arguments = vec![
            format!("soc={}", soc_path().display()),
            format!("events={}", events.display()),
        ];
        arguments.extend(extra.iter().map(|arg| arg.to_string()));
        Plugin::from_arguments(&arguments).expect("plugin loads")
    }

    fn events_in(path: &Path) -> Vec<serde_json::Value> {
        let text = std::fs::read_to_string(path).expect("events file");
        let _ = std::fs::remove_file(path);
        text.lines()
            .map(|line| serde_json::from_str(line).expect("one JSON object a line"))
            .collect()
    }

    fn of_type<'a>(events: &'a [serde_json::Value], kind: &str) -> Vec<&'a serde_json::Value> {
        events
            .iter()
            .filter(|event| event["type"] == kind)
            .collect()
    }

    /// Guest memory, registers and stack as a test sets them up.
    #[derive(Default)]
    struct FakeGuest {
        memory: HashMap<u64, u8>,
        refuse_writes: bool,
        registers: Option<(u64, u64)>,
        records: HashMap<u64, FrameRecord>,
    }

    impl FakeGuest {
        fn read(&self, phys: u64, size: u8) -> u64 {
            (0..u64::from(size)).fold(0, |value, i| {
                value | u64::from(*self.memory.get(&(phys + i)).unwrap_or(&0)) << (8 * i)
            })
        }
    }

    impl Guest for FakeGuest {
        fn write_phys(&mut self, phys: u64, bytes: &[u8]) -> bool {
            if self.refuse_writes {
                return false;
            }
            for (i, byte) in bytes.iter().enumerate() {
                self.memory.insert(phys + i as u64, *byte);
            }
            true
        }
        fn frame_registers(&mut self) -> Option<(u64, u64)> {
            self.registers
        }
        fn read_frame_record(&mut self, vaddr: u64) -> Option<FrameRecord> {
            self.records.get(&vaddr).copied()
        }
    }

    fn soc() -> Soc {
        Soc::load(&soc_path()).expect("the SoC description loads")
    }

    /// Guest-physical address of `register` of `device`.
    fn register_address(device: &str, register: &str) -> u64 {
        let soc = soc();
        let device = soc.device(device).expect("device");
        let offset = device.register(register).expect("register").offset;
        soc.window().guest_addr(device.base + u64::from(offset))
    }

    /// Stops the ADC's clocks (CLK_ON_ADC is write-enable masked: upper half selects bits).
    fn stop_adc_clocks(plugin: &Plugin, guest: &mut FakeGuest) {
        let clk_on_adc = register_address("cpg", "CLK_ON_ADC");
        let verdict = plugin.on_window_access(guest, 0, 0x1000, clk_on_adc, 2, true, 0x0003_0000);
        assert_eq!(verdict, Verdict::Continue);
    }

    /// A read of ADM0 from a leaf function called through two frame records.
    fn read_adm0(plugin: &Plugin, guest: &mut FakeGuest) -> Verdict {
        guest.registers = Some((0x8000_1000, 0xffff_0000_0000_0104));
        guest.records.insert(
            0x8000_1000,
            FrameRecord {
                next_fp: 0x8000_1040,
                return_address: 0xffff_0000_0000_0208,
            },
        );
        guest.records.insert(
            0x8000_1040,
            FrameRecord {
                next_fp: 0,
                return_address: 0xffff_0000_0000_030c,
            },
        );
        let adm0 = register_address("adc", "ADM0");
        plugin.on_window_access(guest, 1, 0xffff_0000_0000_0100, adm0, 2, false, 0)
    }

    #[test]
    fn bad_arguments_are_refused_by_name() {
        let events = events_path("bad-arguments");
        let arguments = vec![
            format!("soc={}", soc_path().display()),
            format!("events={}", events.display()),
            "bogus=1".to_string(),
        ];
        let error = Plugin::from_arguments(&arguments).err().expect("refused");
        assert!(matches!(error, InstallError::Config(_)), "{error}");
        assert!(error.to_string().contains("bogus"), "{error}");
        let error = Plugin::from_arguments(&[]).err().expect("refused");
        assert!(error.to_string().contains("soc"), "{error}");
    }

    #[test]
    fn missing_soc_file_is_refused_by_name() {
        let events = events_path("missing-soc");
        let arguments = vec![
            "soc=/nonexistent/soc.yaml".to_string(),
            format!("events={}", events.display()),
        ];
        let error = Plugin::from_arguments(&arguments).err().expect("refused");
        assert!(matches!(error, InstallError::Soc { .. }), "{error}");
        assert!(
            error.to_string().contains("soc=/nonexistent/soc.yaml"),
            "{error}"
        );
        assert!(!events.exists(), "no events file for a refused plugin");
    }

    #[test]
    fn uncreatable_events_file_is_refused_by_name() {
        let arguments = vec![
            format!("soc={}", soc_path().display()),
            "events=/nonexistent/dir/ev.jsonl".to_string(),
        ];
        let error = Plugin::from_arguments(&arguments).err().expect("refused");
        assert!(matches!(error, InstallError::EventsFile { .. }), "{error}");
        assert!(
            error
                .to_string()
                .contains("events=/nonexistent/dir/ev.jsonl"),
            "{error}"
        );
    }

    #[test]
    fn window_bounds_come_from_the_soc() {
        let events = events_path("window");
        let plugin = plugin_with(&events, &[]);
        let window = soc().window();
        assert!(plugin.window_contains(window.guest_base));
        assert!(plugin.window_contains(window.guest_base + window.size - 1));
        assert!(!plugin.window_contains(window.guest_base - 1));
        assert!(!plugin.window_contains(window.guest_base + window.size));
        assert!(!plugin.window_contains(0));
        assert!(!plugin.window_contains(u64::MAX));
        plugin.finish();
        let _ = std::fs::remove_file(events);
    }

    #[test]
    fn nothing_is_modelled_before_the_reset_image_is_in_place() {
        let events = events_path("reset");
        let plugin = plugin_with(&events, &[]);
        assert!(plugin.reset_pending());
        assert!(!plugin.is_active());
        let mut guest = FakeGuest::default();
        let written = plugin.write_reset_image(&mut guest);
        assert!(plugin.is_active());
        let expected = Bus::new(
            soc(),
            &PluginConfig::parse([
                format!("soc={}", soc_path().display()),
                "events=/dev/null".to_string(),
            ])
            .unwrap()
            .model_config(),
        )
        .reset_image();
        assert!(!expected.is_empty());
        assert_eq!(written, expected.len());
        for write in &expected {
            assert_eq!(
                guest.read(write.phys, write.size),
                write.value,
                "reset value at {:#x}",
                write.phys
            );
        }
        // A second call (another vCPU's first access) writes nothing again.
        let mut other = FakeGuest::default();
        assert_eq!(plugin.write_reset_image(&mut other), 0);
        assert!(other.memory.is_empty());
        plugin.finish();
        let summary = events_in(&events).pop().unwrap();
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["write_failures"], 0);
    }

    #[test]
    fn refused_reset_writes_are_counted_and_modelling_starts_anyway() {
        let events = events_path("reset-refused");
        let plugin = plugin_with(&events, &[]);
        let mut guest = FakeGuest {
            refuse_writes: true,
            ..FakeGuest::default()
        };
        assert_eq!(plugin.write_reset_image(&mut guest), 0);
        assert!(plugin.is_active());
        plugin.finish();
        let summary = events_in(&events).pop().unwrap();
        assert_eq!(summary["type"], "summary");
        assert_eq!(summary["write_failures"], plugin.reset_image.len() as u64);
    }

    #[test]
    fn gated_access_is_reported_with_its_call_chain() {
        let events = events_path("abort");
        let plugin = plugin_with(&events, &[]);
        let mut guest = FakeGuest::default();
        plugin.write_reset_image(&mut guest);
        stop_adc_clocks(&plugin, &mut guest);
        assert_eq!(read_adm0(&plugin, &mut guest), Verdict::Continue);
        assert!(plugin.is_active(), "on_abort=continue keeps modelling");
        plugin.finish();

        let events = events_in(&events);
        assert_eq!(events.first().unwrap()["type"], "start");
        assert_eq!(events.last().unwrap()["type"], "summary");
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert!(seqs.windows(2).all(|pair| pair[0] < pair[1]), "{seqs:?}");
        let aborts = of_type(&events, "abort");
        assert_eq!(aborts.len(), 1, "{events:#?}");
        let abort = aborts[0];
        assert_eq!(abort["pc"], 0xffff_0000_0000_0100u64);
        assert_eq!(abort["vcpu"], 1);
        assert_eq!(
            abort["frames"],
            serde_json::json!([
                0xffff_0000_0000_0104u64,
                0xffff_0000_0000_0208u64,
                0xffff_0000_0000_030cu64
            ])
        );
        assert_eq!(abort["unwind"], "end");
        assert!(of_type(&events, "halt").is_empty());
    }

    #[test]
    fn abort_without_readable_registers_is_not_captured() {
        let events = events_path("not-captured");
        let plugin = plugin_with(&events, &[]);
        let mut guest = FakeGuest::default();
        plugin.write_reset_image(&mut guest);
        stop_adc_clocks(&plugin, &mut guest);
        let adm0 = register_address("adc", "ADM0");
        plugin.on_window_access(&mut guest, 0, 0x40, adm0, 2, false, 0);
        plugin.finish();
        let events = events_in(&events);
        let abort = of_type(&events, "abort")[0];
        assert_eq!(abort["frames"], serde_json::json!([]));
        assert_eq!(abort["unwind"], "not-captured");
    }

    #[test]
    fn halt_writes_abort_halt_and_summary_then_stops() {
        for policy in ["on_abort=halt", "on_abort=serror"] {
            let events = events_path("halt");
            let extra: &[&str] = if policy == "on_abort=serror" {
                &[policy, "symbols=/dev/null"]
            } else {
                &[policy]
            };
            let plugin = plugin_with(&events, extra);
            let mut guest = FakeGuest::default();
            plugin.write_reset_image(&mut guest);
            stop_adc_clocks(&plugin, &mut guest);
            assert_eq!(
                read_adm0(&plugin, &mut guest),
                Verdict::Halt(HALT_EXIT_STATUS)
            );
            assert!(plugin.is_stopped());
            // The file is complete before the caller terminates QEMU: no finish() here.
            let events = events_in(&events);
            let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
            let tail = &kinds[kinds.len() - 3..];
            assert_eq!(tail, ["abort", "halt", "summary"], "{policy}: {kinds:?}");
            let abort = &events[events.len() - 3];
            let halt = &events[events.len() - 2];
            assert_eq!(halt["abort_seq"], abort["seq"], "{policy}");
            // Whatever else happens is ignored, and exit adds nothing.
            assert_eq!(read_adm0(&plugin, &mut guest), Verdict::Continue);
            plugin.finish();
        }
    }

    #[test]
    fn internal_error_stops_modelling_and_is_reported_once() {
        let events = events_path("internal-error");
        let plugin = plugin_with(&events, &[]);
        let mut guest = FakeGuest::default();
        plugin.write_reset_image(&mut guest);
        plugin.internal_error("memory", "index out of bounds at core/src/adc.rs:1");
        plugin.internal_error("memory", "a second panic");
        assert!(plugin.is_stopped());
        stop_adc_clocks(&plugin, &mut guest);
        assert_eq!(read_adm0(&plugin, &mut guest), Verdict::Continue);
        plugin.finish();
        plugin.finish();
        let events = events_in(&events);
        let errors = of_type(&events, "internal_error");
        assert_eq!(errors.len(), 1);
        assert!(errors[0]["message"].as_str().unwrap().contains("adc.rs:1"));
        assert!(of_type(&events, "abort").is_empty());
        let summaries = of_type(&events, "summary");
        assert_eq!(summaries.len(), 1, "finish is idempotent");
        assert!(summaries[0]["internal_error"]
            .as_str()
            .unwrap()
            .contains("panic in the memory callback"));
    }

    #[test]
    fn concurrent_vcpus_keep_the_file_in_seq_order() {
        let events = events_path("concurrent");
        let plugin = std::sync::Arc::new(plugin_with(&events, &[]));
        plugin.write_reset_image(&mut FakeGuest::default());
        let clk_on_adc = register_address("cpg", "CLK_ON_ADC");
        let adm0 = register_address("adc", "ADM0");
        let threads: Vec<_> = (0..2u32)
            .map(|vcpu| {
                let plugin = std::sync::Arc::clone(&plugin);
                std::thread::spawn(move || {
                    let mut guest = FakeGuest::default();
                    for i in 0..200u64 {
                        // Clocks off and on again, and an ADC read in between.
                        let value = if i % 2 == 0 { 0x0003_0000 } else { 0x0003_0003 };
                        plugin.on_window_access(&mut guest, vcpu, i, clk_on_adc, 2, true, value);
                        plugin.on_window_access(&mut guest, vcpu, i, adm0, 2, false, 0);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        plugin.finish();
        let events = events_in(&events);
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    }
}
