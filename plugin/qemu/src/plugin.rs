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
//!
//! `on_abort=serror`. The first access to the window checks the System.map against the
//! running kernel (see [`arm64_serror::verify`] and [`sea::verify`]); the first abort is
//! diverted, a gated read into the kernel's synchronous data abort path (a synchronous
//! external abort, [`sea`]), a gated write into its SError path: under the lock
//! its call chain is captured, the pt_regs and frame record are stored on the guest stack and
//! the registers set, the events are queued; then the lock is released, the reporter flushed,
//! and [`Verdict::Divert`] tells the FFI glue to set the PC from a frame with nothing to drop.

use crate::access::{access_size_and_value, StoreBytes};
use crate::install::InstallError;
use crate::reporter::{Record, Reporter, CHANNEL_CAPACITY};
use crate::serror::{self, SymbolsError};
use crate::snapshot;
use crate::verdict;
use rzgate_arm64::filter;
use rzgate_arm64::sea::{self, SeaSymbols, SeaVerified};
use rzgate_arm64::serror::{
    self as arm64_serror, CpuState, Divert, Exception, Register, SerrorSymbols, Verified,
};
use rzgate_arm64::unwind::{walk_frame_records, CallChain, FrameRecord};
use rzgate_core::bus::{Access, Bus, MemWrite, Outcome};
use rzgate_core::config::{AbortPolicy, PluginConfig, UserSpace};
use rzgate_core::device::GuestMemory;
use rzgate_core::event::{Abort, Event};
use rzgate_core::soc::Soc;
use rzgate_core::state::Identity;
use serde_json::json;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};
use std::time::{Duration, Instant};

/// Exit status of QEMU when `on_abort=halt` stops it (and `serror` when it cannot divert).
pub const HALT_EXIT_STATUS: i32 = 3;
/// Exit status of QEMU when a device resets the machine (the watchdog bit): what QEMU
/// itself exits with when the guest resets under `-no-reboot` (a shutdown, status 0). The
/// `watchdog_reset` event, written before, says it was a reset.
pub const SYSTEM_RESET_EXIT_STATUS: i32 = 0;
/// Exit status of QEMU when `on_abort=serror` finds that `symbols=` is not the running
/// kernel's map (at the first access to the window, before any abort could need it).
pub const SYMBOLS_MISMATCH_EXIT_STATUS: i32 = 4;

/// What the plugin needs from QEMU for one vCPU, in that vCPU's callback.
pub trait Guest {
    /// Stores `bytes` at guest-physical `phys` through the vCPU's address space (RAM or device
    /// MMIO). False when QEMU refuses the write.
    fn write_phys(&mut self, phys: u64, bytes: &[u8]) -> bool;
    /// The vCPU's x29 (fp) and x30 (lr), or `None` when they cannot be read here.
    fn frame_registers(&mut self) -> Option<(u64, u64)>;
    /// The 16-byte frame record at guest-virtual `vaddr`, or `None` when it cannot be read.
    fn read_frame_record(&mut self, vaddr: u64) -> Option<FrameRecord>;
    /// `len` bytes of guest-virtual memory at `vaddr` (the kernel's code), or `None`.
    fn read_virt(&mut self, vaddr: u64, len: usize) -> Option<Vec<u8>>;
    /// Stores `bytes` at guest-virtual `vaddr` (RAM: the kernel stack). False when refused.
    fn write_virt(&mut self, vaddr: u64, bytes: &[u8]) -> bool;
    /// VBAR_EL1, when QEMU exposes it.
    fn vector_base(&mut self) -> Option<u64>;
    /// x0-x30, sp and cpsr, or `None` when they cannot be read here.
    fn cpu_state(&mut self) -> Option<CpuState>;
    /// Sets one register (only in a callback registered with RW_REGS_PC). False when refused.
    fn write_register(&mut self, register: Register, value: u64) -> bool;
}

/// What the caller must do after an access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Continue,
    /// The events are on disk; terminate QEMU with this status now.
    Halt(i32),
    /// `on_abort=serror`: the stack and the registers are set and the events are on disk;
    /// set the vCPU's PC to this address now (`qemu_plugin_set_pc`, which does not return),
    /// from a frame that holds nothing with a destructor.
    Divert(u64),
}

/// The window's reset image is not in RAM yet: nothing else may happen.
const RESET_PENDING: u8 = 0;
/// Modelling.
const ACTIVE: u8 = 1;
/// Halted, finished or disabled by an internal error: every callback returns at once.
const STOPPED: u8 = 2;

/// The lower (TTBR0) half is instrumented until the guest runs code in the upper half: before
/// that the code there is firmware, the MMU-off boot, or a bare-metal guest without a
/// kernel in the upper half, and any of those may touch the window.
const LOWER_HALF_UNTIL_KERNEL: u8 = 0;
/// A kernel runs in the upper half and no descriptor gives user space access to the window:
/// lower-half blocks get no callbacks, lower-half addresses return at once.
const LOWER_HALF_SKIPPED: u8 = 1;
/// User space can reach the window (or `user_space=always`).
const LOWER_HALF_INSTRUMENTED: u8 = 2;

/// `user_space_mapped_seq` before the event.
const NO_SEQ: u64 = u64::MAX;

struct Engine {
    bus: Bus,
    outcome: Outcome,
    /// `on_abort=serror` only.
    serror: Option<SerrorEngine>,
}

/// The divert's state, under the engine lock.
struct SerrorEngine {
    symbols: SerrorSymbols,
    /// The synchronous data abort path, for gated reads.
    sea: SeaSymbols,
    symbols_path: PathBuf,
    /// Set by the check at the first access to the window.
    verified: Option<Verified>,
    /// Set by the same check; `None` when the map lacks the synchronous path (reads then
    /// take the SError path too).
    sea_verified: Option<SeaVerified>,
    /// The first abort has been handled (diverted, or refused and halted): the guest is dead
    /// or about to be, and later aborts are only recorded.
    done: bool,
}

pub struct Plugin {
    window_base: u64,
    window_size: u64,
    halt_on_abort: bool,
    /// `on_abort=serror`: memory callbacks need QEMU_PLUGIN_CB_RW_REGS_PC.
    diverts: bool,
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
    /// [`LOWER_HALF_UNTIL_KERNEL`], [`LOWER_HALF_SKIPPED`] or [`LOWER_HALF_INSTRUMENTED`].
    lower_half: AtomicU8,
    user_space: UserSpace,
    /// The `seq` of the `user_space_mapped` event, for the summary.
    user_space_mapped_seq: AtomicU64,
    /// `state_out=`: where the state goes at exit, and what it belongs to.
    state_out: Option<(PathBuf, Identity)>,
    /// The models' next deadline ([`Bus::deadline`]) in ns of [`Plugin::host_ns`];
    /// `u64::MAX` when none. Checked without the lock by [`Plugin::check_deadline`].
    due_host_ns: AtomicU64,
    /// The origin of [`Plugin::host_ns`].
    origin: Instant,
}

impl Plugin {
    /// Everything `qemu_plugin_install` does that does not register callbacks: parse the
    /// arguments, load the SoC, build the bus, create the events file, start the reporter and
    /// queue the `start` event.
    pub fn from_arguments(arguments: &[String]) -> Result<Plugin, InstallError> {
        let (arguments, stream) = verdict::take_argument(arguments)?;
        let config = PluginConfig::parse(&arguments)?;
        let soc = Soc::load(&config.soc).map_err(|error| InstallError::Soc {
            path: config.soc.clone(),
            error,
        })?;
        // Before the events file exists: a refused plugin leaves nothing behind.
        let serror = match (config.on_abort, &config.symbols) {
            (AbortPolicy::Serror, Some(path)) => Some(serror_engine(path)?),
            _ => None,
        };
        let window = soc.window();
        let soc_path = config.soc.clone();
        let mut bus = Bus::new(soc, &config.model_config()).map_err(|error| InstallError::Soc {
            path: soc_path,
            error,
        })?;
        // Before the events file exists too: a state that does not fit leaves nothing behind.
        let identity = snapshot::identity(&config)?;
        let restored = match (&config.state_in, &identity) {
            (Some(path), Some(identity)) => Some(snapshot::load(path, identity, &mut bus)?),
            _ => None,
        };
        let state_out = match (&config.state_out, identity) {
            (Some(path), Some(identity)) => {
                snapshot::check_writable(path)?;
                Some((path.clone(), identity))
            }
            _ => None,
        };
        let glue = |key: &str| restored.as_ref().and_then(|g| g.get(key)).cloned();
        let user_space_reached = glue("user_space_instrumented") == Some(true.into());
        let events =
            std::fs::File::create(&config.events).map_err(|error| InstallError::EventsFile {
                path: config.events.clone(),
                error,
            })?;
        let stream = stream
            .map(verdict::StdStream::open)
            .transpose()
            .map_err(InstallError::Reporter)?;
        let events = verdict::Tee::new(events, stream);
        let reporter = Reporter::start(events, CHANNEL_CAPACITY).map_err(InstallError::Reporter)?;
        reporter.send_event(bus.start_event(&config));
        let halt_on_abort = config.on_abort == AbortPolicy::Halt;
        Ok(Plugin {
            window_base: window.guest_base,
            window_size: window.size,
            halt_on_abort,
            diverts: serror.is_some(),
            policy_name: config.on_abort.as_str(),
            events_path: config.events.clone(),
            // A restored guest's window is the migrated one: the models' state was loaded
            // to match it, and nothing may be written over it.
            reset_image: if restored.is_some() {
                Vec::new()
            } else {
                bus.reset_image()
            },
            state: AtomicU8::new(RESET_PENDING),
            reset_in_progress: Mutex::new(()),
            engine: Mutex::new(Engine {
                bus,
                outcome: Outcome::default(),
                serror,
            }),
            reporter,
            write_failures: AtomicU64::new(
                glue("write_failures").and_then(|v| v.as_u64()).unwrap_or(0),
            ),
            summary_written: AtomicBool::new(false),
            internal_error: Mutex::new(None),
            // A restored plugin finds out again where the kernel runs; only a window that
            // user space could already reach stays instrumented.
            lower_half: AtomicU8::new(match config.user_space {
                UserSpace::Watch if !user_space_reached => LOWER_HALF_UNTIL_KERNEL,
                _ => LOWER_HALF_INSTRUMENTED,
            }),
            user_space: config.user_space,
            user_space_mapped_seq: AtomicU64::new(
                glue("user_space_mapped_seq")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(NO_SEQ),
            ),
            state_out,
            due_host_ns: AtomicU64::new(u64::MAX),
            origin: Instant::now(),
        })
        .inspect(|plugin| {
            // A restored watchdog keeps counting down what remained of its timeout.
            if let Ok(engine) = plugin.engine.lock() {
                plugin.note_deadline(&engine.bus);
            }
        })
    }

    /// Gives the bus guest-physical memory (the glue's `QemuMemory`): what the DMA
    /// controller's model copies. Called once, at install, before any callback runs.
    pub fn set_memory(&self, memory: Box<dyn GuestMemory>) {
        if let Ok(mut engine) = self.engine.lock() {
            engine.bus.set_memory(memory);
        }
    }

    /// Host monotonic ns since install (the bus's own clock is host time as well).
    fn host_ns(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// After the models changed: when their next deadline falls, in [`Plugin::host_ns`].
    fn note_deadline(&self, bus: &Bus) {
        let due = match bus.deadline() {
            Some(deadline) => self
                .host_ns()
                .saturating_add(deadline.saturating_sub(bus.now_ns())),
            None => u64::MAX,
        };
        self.due_host_ns.store(due, Ordering::Relaxed);
    }

    /// Called when a vCPU goes idle or resumes (every tick of an idle vCPU: 4 ms at the
    /// guest kernels' HZ=250, periodic) and before every window access: when a model's
    /// deadline has passed, lets it act: a watchdog's reset ends the run, an RTC's carry
    /// updates its counters in the window and its alarm raises the line. Cheap until then:
    /// one atomic load and a clock read.
    ///
    /// Outside a memory callback (`in_access` false) the vCPU may hold QEMU's BQL, which a
    /// vCPU holding the engine can be waiting for (its GIC write): the engine is only
    /// tried, and a busy engine is tried again at the next callback. Once this vCPU has the
    /// engine, its memory writes are applied like an access's: the window is RAM, and a GIC
    /// write takes the BQL only when this thread does not hold it already (QEMU's
    /// prepare_mmio_access), while no thread holding the BQL waits for the engine (they only
    /// try it, here).
    pub fn check_deadline(&self, guest: &mut impl Guest, in_access: bool) -> Verdict {
        let due = self.due_host_ns.load(Ordering::Relaxed);
        if due == u64::MAX || self.host_ns() < due || !self.is_active() {
            return Verdict::Continue;
        }
        let mut engine = match self.engine.try_lock() {
            Ok(engine) => engine,
            Err(TryLockError::WouldBlock) if in_access => match self.engine.lock() {
                Ok(engine) => engine,
                Err(_) => return Verdict::Continue,
            },
            Err(_) => return Verdict::Continue,
        };
        if !self.is_active() {
            return Verdict::Continue;
        }
        let Engine { bus, outcome, .. } = &mut *engine;
        bus.tick(outcome);
        self.note_deadline(bus);
        self.finish_outcome(guest, bus, outcome)
    }

    /// Applies `outcome`'s writes, sends its events, and ends the run when a device reset
    /// the machine.
    fn finish_outcome(
        &self,
        guest: &mut impl Guest,
        bus: &mut Bus,
        outcome: &mut Outcome,
    ) -> Verdict {
        for write in &outcome.writes {
            if !store(guest, write) {
                self.write_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        let reset = outcome.system_reset;
        for event in outcome.events.drain(..) {
            self.reporter.send_event(event);
        }
        if reset {
            self.system_reset(bus);
            return Verdict::Halt(SYSTEM_RESET_EXIT_STATUS);
        }
        Verdict::Continue
    }

    /// A device reset the machine: the `watchdog_reset` event is queued; add the summary,
    /// write everything out and stop modelling. The caller ends QEMU as `-no-reboot` does.
    fn system_reset(&self, bus: &mut Bus) {
        self.state.store(STOPPED, Ordering::Release);
        self.write_summary(bus);
        self.reporter.shutdown();
        eprintln!(
            "rzgate: a device reset the machine (watchdog_reset in {}): ending QEMU as a \
             guest reset under -no-reboot does (exit status {SYSTEM_RESET_EXIT_STATUS})",
            self.events_path.display()
        );
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

    /// `on_abort=serror`: the memory callbacks must be registered with
    /// QEMU_PLUGIN_CB_RW_REGS_PC (`qemu_plugin_set_pc` asserts it). The other policies keep
    /// R_REGS.
    pub fn diverts(&self) -> bool {
        self.diverts
    }

    /// Halted, finished or disabled: nothing to instrument any more.
    pub fn is_stopped(&self) -> bool {
        self.state.load(Ordering::Acquire) == STOPPED
    }

    /// Hot path: is user space instrumented? False until a page-table entry gives EL0 access
    /// to the window ([`filter::gives_el0_access`]), unless `user_space=always`. While
    /// false, kernel stores are watched for such an entry.
    #[inline]
    pub fn user_space_instrumented(&self) -> bool {
        self.lower_half.load(Ordering::Acquire) == LOWER_HALF_INSTRUMENTED
    }

    /// Hot path: do lower-half (user) addresses skip the model? True once a kernel runs in
    /// the upper half and until user space can reach the window.
    #[inline]
    pub fn lower_half_skipped(&self) -> bool {
        self.lower_half.load(Ordering::Acquire) == LOWER_HALF_SKIPPED
    }

    /// Translation of the block at `vaddr`: true when its instructions need no callbacks
    /// because it is lower-half code that cannot reach the window. The first upper-half block
    /// is the sign that a kernel runs there (see [`LOWER_HALF_UNTIL_KERNEL`]).
    pub fn skips_block(&self, vaddr: u64) -> bool {
        if filter::in_lower_half(vaddr) {
            return self.lower_half_skipped();
        }
        let _ = self.lower_half.compare_exchange(
            LOWER_HALF_UNTIL_KERNEL,
            LOWER_HALF_SKIPPED,
            Ordering::AcqRel,
            Ordering::Acquire,
        );
        false
    }

    /// Hot path: does the 8-byte `value`, stored into a page table, give EL0 access to the
    /// window? Pure; [`Plugin::watch_descriptor_store`] acts on it.
    #[inline]
    pub fn descriptor_reaches_window(&self, value: u64) -> bool {
        filter::gives_el0_access(value, self.window_base, self.window_size)
    }

    /// A kernel store of the 8-byte `value` at `vaddr` by the instruction at `pc`, made
    /// while user space is not instrumented. True when the value gives EL0 access to the
    /// window and this call is the first to see one: the caller must then have every block
    /// translated again, so that user space's get their callbacks. The `user_space_mapped`
    /// event carries the kernel's call chain (who mapped the window).
    pub fn watch_descriptor_store(
        &self,
        guest: &mut impl Guest,
        vcpu: u32,
        pc: u64,
        vaddr: u64,
        value: u64,
    ) -> bool {
        if !self.descriptor_reaches_window(value)
            || self
                .lower_half
                .swap(LOWER_HALF_INSTRUMENTED, Ordering::AcqRel)
                == LOWER_HALF_INSTRUMENTED
        {
            return false;
        }
        let chain = capture_call_chain(guest);
        if let Ok(mut engine) = self.engine.lock() {
            let seq = engine.bus.next_seq();
            self.user_space_mapped_seq.store(seq, Ordering::Relaxed);
            self.reporter.send(Record::Json(json!({
                "type": "user_space_mapped",
                "seq": seq,
                "vcpu": vcpu,
                "pc": pc,
                "descriptor": value,
                "descriptor_at": vaddr,
                "frames": chain.frames,
                "unwind": chain.stop.as_str(),
            })));
        }
        true
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
    /// model it, apply its writes, capture the call chains of aborts and gate changes, queue
    /// the events; under `serror`, check the symbol map at the first access and divert the
    /// vCPU at the first abort. `value` is the value loaded or stored (its low 8 bytes), `pc`
    /// the instruction's address.
    #[allow(clippy::too_many_arguments)]
    pub fn on_window_access(
        &self,
        guest: &mut impl Guest,
        vcpu: u32,
        pc: u64,
        vaddr: u64,
        phys: u64,
        size_shift: u32,
        is_write: bool,
        value: u64,
    ) -> Verdict {
        let Some((size, value)) = access_size_and_value(size_shift, value) else {
            return Verdict::Continue;
        };
        let access = Access {
            phys,
            size,
            is_write,
            value,
            vcpu,
            pc,
        };
        if let halt @ Verdict::Halt(_) = self.check_deadline(guest, true) {
            return halt;
        }
        let verdict = self.model_access(guest, &access, vaddr);
        if let Verdict::Divert(_) = verdict {
            // Outside the lock. The guest panics after the divert and QEMU may end at any
            // moment (panic=-1, -no-reboot): the abort must be in the file first.
            self.reporter.flush();
        }
        verdict
    }

    /// The part of [`Plugin::on_window_access`] under the engine lock.
    fn model_access(&self, guest: &mut impl Guest, access: &Access, vaddr: u64) -> Verdict {
        // A poisoned lock means a model panicked: internal_error has stopped the plugin.
        let Ok(mut engine) = self.engine.lock() else {
            return Verdict::Continue;
        };
        // Another vCPU may have halted or disabled the plugin while this one waited.
        if !self.is_active() {
            return Verdict::Continue;
        }
        let Engine {
            bus,
            outcome,
            serror,
        } = &mut *engine;
        if let Some(serror) = serror.as_mut() {
            if serror.verified.is_none() {
                let vbar = guest.vector_base();
                let checked = arm64_serror::verify(&serror.symbols, vbar, |vaddr, len| {
                    guest.read_virt(vaddr, len)
                })
                .and_then(|verified| {
                    sea::verify(&serror.sea, |vaddr, len| guest.read_virt(vaddr, len))
                        .map(|sea_verified| (verified, sea_verified))
                });
                match checked {
                    Ok((verified, sea_verified)) => {
                        let seq = bus.next_seq();
                        self.reporter.send(Record::Json(serror_ready_event(
                            seq,
                            &verified,
                            sea_verified.as_ref(),
                            &serror.sea.missing,
                            vbar,
                        )));
                        serror.verified = Some(verified);
                        serror.sea_verified = sea_verified;
                    }
                    Err(mismatch) => {
                        let path = serror.symbols_path.clone();
                        self.symbols_mismatch(bus, &path, &mismatch);
                        return Verdict::Halt(SYMBOLS_MISMATCH_EXIT_STATUS);
                    }
                }
            }
        }
        bus.access(access, outcome);
        self.note_deadline(bus);
        if outcome.system_reset {
            // The watchdog's restart handler (or a ping that came too late).
            return self.finish_outcome(guest, bus, outcome);
        }
        for write in &outcome.writes {
            if !store(guest, write) {
                self.write_failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        // Before any register changes: the registers are this vCPU's, now.
        let mut first_abort = None;
        for (index, event) in outcome.events.iter_mut().enumerate() {
            match event {
                Event::Abort(abort) => {
                    let chain = capture_call_chain(guest);
                    abort.frames = chain.frames;
                    abort.unwind = chain.stop.as_str().to_string();
                    first_abort.get_or_insert(index);
                }
                Event::Suspect(suspect) => {
                    let chain = capture_call_chain(guest);
                    suspect.frames = chain.frames;
                    suspect.unwind = chain.stop.as_str().to_string();
                }
                Event::Gate { frames, unwind, .. } => {
                    let chain = capture_call_chain(guest);
                    *frames = chain.frames;
                    *unwind = chain.stop.as_str().to_string();
                }
                _ => {}
            }
        }
        let first_abort = first_abort.and_then(|index| match outcome.events.get_mut(index) {
            Some(Event::Abort(abort)) => Some(abort),
            _ => None,
        });
        let mut verdict = Verdict::Continue;
        let mut halt_after = None;
        match (first_abort, serror.as_mut()) {
            (Some(abort), Some(serror)) if !serror.done => {
                serror.done = true;
                // A read takes its bus error synchronously, a posted write as an SError.
                let read = (!access.is_write)
                    .then_some(())
                    .and(serror.sea_verified.as_ref());
                let exception = match read {
                    Some(_) => Exception::SyncExternalAbort,
                    None => Exception::Serror,
                };
                match serror.verified.as_ref() {
                    Some(verified) => match divert(guest, verified, read, access.pc, vaddr) {
                        Ok(divert) => {
                            abort.diverted = true;
                            abort.serror = Some(Box::new(serror::diverted(&divert, Some(vaddr))));
                            verdict = Verdict::Divert(divert.pc);
                        }
                        Err(reason) => {
                            self.refuse_divert(abort, exception, reason);
                            halt_after = Some(abort.seq);
                        }
                    },
                    None => {
                        self.refuse_divert(
                            abort,
                            exception,
                            "the symbol map was not checked".into(),
                        );
                        halt_after = Some(abort.seq);
                    }
                }
            }
            (Some(abort), None) if self.halt_on_abort => halt_after = Some(abort.seq),
            _ => {}
        }
        for event in outcome.events.drain(..) {
            self.reporter.send_event(event);
        }
        if let Some(abort_seq) = halt_after {
            self.halt(bus, abort_seq);
            return Verdict::Halt(HALT_EXIT_STATUS);
        }
        verdict
    }

    fn refuse_divert(&self, abort: &mut Abort, exception: Exception, reason: String) {
        eprintln!(
            "rzgate: on_abort=serror: the gated access at pc {:#x} cannot be diverted into the \
             guest's {} path: {reason}",
            abort.pc,
            exception.name()
        );
        abort.serror = Some(Box::new(serror::refused(exception, reason)));
    }

    /// `on_abort=serror` and a map that is not the running kernel's: say so, write
    /// everything out and stop modelling; the caller terminates QEMU. Jumping to an address
    /// from the wrong map would run arbitrary kernel code.
    fn symbols_mismatch(&self, bus: &mut Bus, path: &std::path::Path, mismatch: &str) {
        self.state.store(STOPPED, Ordering::Release);
        let message = format!(
            "on_abort=serror: symbols={} is not the System.map of the running kernel: \
             {mismatch}",
            path.display()
        );
        let seq = bus.next_seq();
        self.reporter.send(Record::Json(json!({
            "type": "symbols_mismatch",
            "seq": seq,
            "symbols": path.display().to_string(),
            "message": message,
        })));
        self.write_summary(bus);
        self.reporter.shutdown();
        eprintln!(
            "rzgate: {message}; stopping QEMU with exit status {SYMBOLS_MISMATCH_EXIT_STATUS} \
             (give the booted kernel's own System.map)"
        );
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
            Some(mut engine) => {
                // Before the summary takes its seq: a restored run's events continue the
                // boot's without a gap.
                self.write_state(&engine.bus);
                self.write_summary(&mut engine.bus)
            }
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

    /// `state_out=`: the bus's state and the glue's, for a restored run to load.
    fn write_state(&self, bus: &Bus) {
        let Some((path, identity)) = &self.state_out else {
            return;
        };
        let mapped_seq = self.user_space_mapped_seq.load(Ordering::Relaxed);
        let glue = json!({
            "user_space_instrumented": self.user_space_instrumented(),
            "user_space_mapped_seq": (mapped_seq != NO_SEQ).then_some(mapped_seq),
            "write_failures": self.write_failures.load(Ordering::Relaxed),
        });
        if let Err(error) = snapshot::write(path, identity, bus, glue) {
            eprintln!(
                "rzgate: cannot write the state state_out={}: {error}",
                path.display()
            );
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
            let mapped_seq = self.user_space_mapped_seq.load(Ordering::Relaxed);
            fields.insert(
                "user_space".into(),
                json!({
                    "policy": self.user_space.as_str(),
                    "instrumented": self.user_space_instrumented(),
                    "mapped_seq": (mapped_seq != NO_SEQ).then_some(mapped_seq),
                }),
            );
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

/// `symbols=` of `on_abort=serror`, loaded and resolved at install, and checked against the
/// kernel Image QEMU boots when there is one (`-kernel`, an uncompressed arm64 Image): a map
/// of another build stops QEMU before the guest starts. The check against the running
/// kernel's memory at the first window access is made in any case.
fn serror_engine(path: &std::path::Path) -> Result<SerrorEngine, InstallError> {
    let map = serror::load_symbols(path).map_err(InstallError::Symbols)?;
    let symbols = serror::resolve_symbols(&map, path).map_err(InstallError::Symbols)?;
    let booted = std::fs::read("/proc/self/cmdline")
        .ok()
        .and_then(|cmdline| serror::kernel_from_cmdline(&cmdline));
    if let Some(image_path) = booted {
        // Unreadable: QEMU itself says so when it loads it.
        if let Ok(image) = std::fs::read(&image_path) {
            if let Some(Err(why)) = arm64_serror::verify_image(&symbols, &image) {
                return Err(InstallError::Symbols(SymbolsError::Mismatch {
                    path: path.to_path_buf(),
                    image: image_path,
                    why,
                }));
            }
        }
    }
    if !symbols.is_faithful() {
        eprintln!(
            "rzgate: on_abort=serror: symbols={} lacks {}: the guest will enter \
             {} directly (a leaf function may lose its caller in the guest's trace)",
            path.display(),
            symbols.missing.join(", "),
            arm64_serror::FALLBACK_SYMBOL
        );
    }
    let sea = SeaSymbols::resolve(&map);
    if !sea.is_complete() {
        eprintln!(
            "rzgate: on_abort=serror: symbols={} lacks {}: gated reads will enter the SError \
             path too, not the synchronous external abort the board takes",
            path.display(),
            sea.missing.join(", ")
        );
    }
    Ok(SerrorEngine {
        symbols,
        sea,
        symbols_path: path.to_path_buf(),
        verified: None,
        sea_verified: None,
        done: false,
    })
}

/// The `serror_ready` event: the map matched the running kernel, and what the divert will use.
fn serror_ready_event(
    seq: u64,
    verified: &Verified,
    sea_verified: Option<&SeaVerified>,
    sea_missing: &[String],
    vbar: Option<u64>,
) -> serde_json::Value {
    let mut event = match verified {
        Verified::Faithful {
            do_serror,
            handler_return,
            entry_return,
            handler_frame,
        } => json!({
            "type": "serror_ready",
            "seq": seq,
            "mode": "faithful",
            "target": do_serror,
            "handler_return": handler_return,
            "entry_return": entry_return,
            "handler_frame": handler_frame,
        }),
        Verified::Fallback {
            arm64_serror_panic,
            missing,
        } => json!({
            "type": "serror_ready",
            "seq": seq,
            "mode": "fallback",
            "target": arm64_serror_panic,
            "missing": missing,
        }),
    };
    if let Some(fields) = event.as_object_mut() {
        if let Some(vbar) = vbar {
            fields.insert("vbar_el1".into(), vbar.into());
        }
        // The synchronous path for gated reads, or what the map lacks for it.
        let sync = match sea_verified {
            Some(sea) => json!({
                "target": sea.do_mem_abort,
                "entry_return": sea.entry_return,
                "handler_return": sea.handler_return,
                "handler_frame": sea.handler_frame,
                "abort_return": sea.abort_return,
                "abort_frame": sea.abort_frame,
            }),
            None => json!({ "missing": sea_missing }),
        };
        fields.insert("sync".into(), sync);
    }
    event
}

/// Builds the divert of the current vCPU and stores its stack and registers; the caller then
/// sets the PC. `Err` when it cannot be made (the guest state may then be half-changed: the
/// caller stops the machine).
/// A gated read with the synchronous path known (`read`) enters `do_mem_abort` with `far`,
/// anything else `do_serror`.
fn divert(
    guest: &mut impl Guest,
    verified: &Verified,
    read: Option<&SeaVerified>,
    pc: u64,
    far: u64,
) -> Result<Divert, String> {
    let state = guest
        .cpu_state()
        .ok_or_else(|| "the vCPU's registers cannot be read".to_string())?;
    let divert = match read {
        Some(sea_verified) => sea::plan(sea_verified, &state, pc, far)?,
        None => arm64_serror::plan(verified, &state, pc)?,
    };
    if !guest.write_virt(divert.stack_addr, &divert.stack) {
        return Err(format!(
            "QEMU refused to store {} bytes at {:#x} on the guest stack",
            divert.stack.len(),
            divert.stack_addr
        ));
    }
    for &(register, value) in &divert.registers {
        if !guest.write_register(register, value) {
            return Err(format!("QEMU refused to set {register:?} to {value:#x}"));
        }
    }
    Ok(divert)
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
        /// Guest-virtual memory (kernel code, stack) for `serror`.
        virt: HashMap<u64, u8>,
        cpu: Option<CpuState>,
        vbar: Option<u64>,
        written_registers: Vec<(Register, u64)>,
        refuse_register_writes: bool,
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
        fn read_virt(&mut self, vaddr: u64, len: usize) -> Option<Vec<u8>> {
            (0..len as u64)
                .map(|i| self.virt.get(&(vaddr + i)).copied())
                .collect()
        }
        fn write_virt(&mut self, vaddr: u64, bytes: &[u8]) -> bool {
            for (i, byte) in bytes.iter().enumerate() {
                self.virt.insert(vaddr + i as u64, *byte);
            }
            true
        }
        fn vector_base(&mut self) -> Option<u64> {
            self.vbar
        }
        fn cpu_state(&mut self) -> Option<CpuState> {
            self.cpu
        }
        fn write_register(&mut self, register: Register, value: u64) -> bool {
            if self.refuse_register_writes {
                return false;
            }
            self.written_registers.push((register, value));
            true
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
    /// What the CPG does on the ADC's runtime suspend: its bus into module stop, its
    /// clocks off. Its bus answers with an error from then on.
    fn stop_adc_clocks(plugin: &Plugin, guest: &mut FakeGuest) {
        let mstop = register_address("cpg", "BUS_MCPU2_MSTOP");
        let verdict = plugin.on_window_access(guest, 0, 0x1000, mstop, mstop, 2, true, 0x4000_4000);
        assert_eq!(verdict, Verdict::Continue);
        let clk_on_adc = register_address("cpg", "CLK_ON_ADC");
        let verdict = plugin.on_window_access(
            guest,
            0,
            0x1000,
            clk_on_adc,
            clk_on_adc,
            2,
            true,
            0x0003_0000,
        );
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
        plugin.on_window_access(guest, 1, 0xffff_0000_0000_0100, adm0, adm0, 2, false, 0)
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
        .expect("bus")
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
    fn a_restored_plugin_continues_the_saved_state_and_keeps_the_window() {
        let (boot_events, cell_events) = (events_path("boot"), events_path("cell"));
        let state = events_path("state").with_extension("state");
        let state_out = format!("state_out={}", state.display());
        let boot = plugin_with(&boot_events, &[&state_out]);
        let mut guest = FakeGuest::default();
        boot.write_reset_image(&mut guest);
        stop_adc_clocks(&boot, &mut guest);
        boot.finish();
        let boot_events = events_in(&boot_events);
        let boot_summary = boot_events.last().unwrap().clone();
        let gate = of_type(&boot_events, "gate")[0].clone();

        let state_in = format!("state_in={}", state.display());
        let cell = plugin_with(&cell_events, &[&state_in]);
        // The migrated window stays as it is: nothing is written over it.
        let mut migrated = FakeGuest::default();
        assert_eq!(cell.write_reset_image(&mut migrated), 0);
        assert!(migrated.memory.is_empty());
        assert!(cell.is_active());
        // The ADC is still gated, and the abort names the boot's gating write.
        assert_eq!(read_adm0(&cell, &mut migrated), Verdict::Continue);
        cell.finish();
        let events = events_in(&cell_events);
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        // The boot's summary took no seq of the state: the cell goes on from the last event.
        assert_eq!(seqs[0], boot_summary["seq"].as_u64().unwrap());
        let abort = of_type(&events, "abort")[0];
        assert_eq!(abort["gated_since"]["seq"], gate["seq"]);
        let summary = events.last().unwrap();
        assert_eq!(summary["aborts"], 1);
        assert_eq!(
            summary["accesses"]["cpg"], boot_summary["accesses"]["cpg"],
            "the boot's accesses are counted as in a cold run"
        );
        let _ = std::fs::remove_file(state);
    }

    #[test]
    fn a_state_that_does_not_fit_is_refused_before_anything_is_written() {
        let dir = std::env::temp_dir().join(format!("rzgate-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let state = dir.join("boot.state");
        let boot = plugin_with(
            &dir.join("boot.jsonl"),
            &[&format!("state_out={}", state.display())],
        );
        boot.finish();
        let map = dir.join("System.map");
        std::fs::write(&map, "ffff800080000000 T _text\n").unwrap();
        let events = dir.join("refused.jsonl");
        let arguments = [
            format!("soc={}", soc_path().display()),
            format!("events={}", events.display()),
            format!("state_in={}", state.display()),
            format!("symbols={}", map.display()),
        ];
        let error = Plugin::from_arguments(&arguments).err().expect("refused");
        let message = error.to_string();
        assert!(
            message.contains(&format!("state_in={}", state.display())),
            "{message}"
        );
        assert!(message.contains("saved without symbols="), "{message}");
        assert!(!events.exists(), "a refused plugin leaves no events file");

        let arguments = [
            format!("soc={}", soc_path().display()),
            format!("events={}", events.display()),
            format!("state_out={}", dir.join("missing/boot.state").display()),
        ];
        let message = Plugin::from_arguments(&arguments)
            .err()
            .expect("refused")
            .to_string();
        assert!(message.contains("does not exist"), "{message}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn abort_without_readable_registers_is_not_captured() {
        let events = events_path("not-captured");
        let plugin = plugin_with(&events, &[]);
        let mut guest = FakeGuest::default();
        plugin.write_reset_image(&mut guest);
        stop_adc_clocks(&plugin, &mut guest);
        let adm0 = register_address("adc", "ADM0");
        plugin.on_window_access(&mut guest, 0, 0x40, adm0, adm0, 2, false, 0);
        plugin.finish();
        let events = events_in(&events);
        let abort = of_type(&events, "abort")[0];
        assert_eq!(abort["frames"], serde_json::json!([]));
        assert_eq!(abort["unwind"], "not-captured");
    }

    #[test]
    fn an_unpinged_watchdog_ends_the_run_at_the_first_check_after_its_deadline() {
        let events = events_path("watchdog");
        let plugin = plugin_with(&events, &[]);
        let mut guest = FakeGuest::default();
        plugin.write_reset_image(&mut guest);
        let mut write = |device: &str, register: &str, value: u64| {
            let at = register_address(device, register);
            let verdict = plugin.on_window_access(&mut guest, 0, 0x1000, at, at, 2, true, value);
            assert_eq!(verdict, Verdict::Continue, "{device} {register}");
        };
        // Both WDT0 clocks on; the reset is released out of reset.
        write("cpg", "CLK_ON_WDT0", 0x0003_0003);
        // The shortest timeout: WDTTIME 0, two periods of 2^20 OSCCLK cycles = 87.4 ms.
        write("wdt0", "WDTSET", 0);
        write("wdt0", "WDTCNT", 1);
        let mut guest = FakeGuest::default();
        assert_eq!(plugin.check_deadline(&mut guest, false), Verdict::Continue);
        std::thread::sleep(Duration::from_millis(100));
        assert_eq!(
            plugin.check_deadline(&mut guest, false),
            Verdict::Halt(SYSTEM_RESET_EXIT_STATUS)
        );
        assert!(plugin.is_stopped());
        let events = events_in(&events);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(
            kinds[kinds.len() - 2..],
            ["watchdog_reset", "summary"],
            "{kinds:?}"
        );
        let reset = &events[events.len() - 2];
        assert_eq!(reset["device"], "wdt0");
        assert_eq!(reset["timeout_ns"], 87_381_332);
        let ran = reset["seen_ns"].as_u64().unwrap() - reset["armed_ns"].as_u64().unwrap();
        assert!(ran >= 87_381_332, "{ran}");
        assert_eq!(events[events.len() - 1]["counters"]["wdt0"]["bites"], 1);
        // Nothing after it.
        assert_eq!(plugin.check_deadline(&mut guest, false), Verdict::Continue);
        plugin.finish();
    }

    #[test]
    fn halt_writes_abort_halt_and_summary_then_stops() {
        let events = events_path("halt");
        let plugin = plugin_with(&events, &["on_abort=halt"]);
        assert!(!plugin.diverts(), "halt keeps R_REGS callbacks");
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
        assert_eq!(tail, ["abort", "halt", "summary"], "{kinds:?}");
        let abort = &events[events.len() - 3];
        let halt = &events[events.len() - 2];
        assert_eq!(halt["abort_seq"], abort["seq"]);
        assert!(abort.get("serror").is_none() && abort.get("diverted").is_none());
        // Whatever else happens is ignored, and exit adds nothing.
        assert_eq!(read_adm0(&plugin, &mut guest), Verdict::Continue);
        plugin.finish();
    }

    #[test]
    fn gate_changes_carry_the_call_chain_of_the_gating_access() {
        let events = events_path("gate-chain");
        let plugin = plugin_with(&events, &[]);
        let mut guest = FakeGuest::default();
        plugin.write_reset_image(&mut guest);
        guest.registers = Some((0x8000_2000, 0xffff_0000_0000_0a04));
        guest.records.insert(
            0x8000_2000,
            FrameRecord {
                next_fp: 0,
                return_address: 0xffff_0000_0000_0b08,
            },
        );
        // The ADC is gated at reset: clocks on (ungated), then off (gated).
        let clk_on_adc = register_address("cpg", "CLK_ON_ADC");
        plugin.on_window_access(
            &mut guest,
            0,
            0x1000,
            clk_on_adc,
            clk_on_adc,
            2,
            true,
            0x0003_0003,
        );
        stop_adc_clocks(&plugin, &mut guest);
        plugin.finish();
        let events = events_in(&events);
        let gates = of_type(&events, "gate");
        assert!(!gates.is_empty(), "{events:#?}");
        for gate in gates {
            assert_eq!(
                gate["frames"],
                serde_json::json!([0xffff_0000_0000_0a04u64, 0xffff_0000_0000_0b08u64])
            );
            assert_eq!(gate["unwind"], "end");
        }
    }

    // ---- on_abort=serror ------------------------------------------------------------------

    const VECTORS: u64 = 0xffff_8000_8001_0800;
    const ENTRY: u64 = 0xffff_8000_8001_1394;
    const HANDLER: u64 = 0xffff_8000_802f_8700;
    const DO_SERROR: u64 = 0xffff_8000_8002_2fa4;
    const SERROR_PANIC: u64 = 0xffff_8000_8002_2e80;

    fn system_map(test: &str, faithful: bool) -> PathBuf {
        let path = events_path(test).with_extension("map");
        let entry = if faithful {
            "el1h_64_error"
        } else {
            "el1h_64_error_renamed"
        };
        std::fs::write(
            &path,
            format!(
                "ffff800080000000 T _text\n\
                 ffff800080010000 T _stext\n\
                 {VECTORS:016x} T vectors\n\
                 {ENTRY:016x} t {entry}\n\
                 ffff800080011404 t el0t_64_sync\n\
                 {SERROR_PANIC:016x} T arm64_serror_panic\n\
                 ffff800080022f00 T arm64_is_fatal_ras_serror\n\
                 {DO_SERROR:016x} T do_serror\n\
                 ffff80008002300c T is_valid_bugaddr\n\
                 {HANDLER:016x} T el1h_64_error_handler\n\
                 ffff8000802f8748 T el0t_64_sync_handler\n\
                 ffff800080310000 D _etext\n"
            ),
        )
        .unwrap();
        path
    }

    fn bl(at: u64, target: u64) -> u32 {
        0x9400_0000 | ((target.wrapping_sub(at) as i64 / 4) as u32 & 0x03ff_ffff)
    }

    /// A guest running the kernel of `system_map`, in a driver at EL1h.
    fn kernel_guest() -> FakeGuest {
        let mut guest = FakeGuest::default();
        let mut code = |at: u64, insn: u32| {
            for (i, byte) in insn.to_le_bytes().iter().enumerate() {
                guest.virt.insert(at + i as u64, *byte);
            }
        };
        for at in (ENTRY..0xffff_8000_8001_1404).step_by(4) {
            code(at, 0xd503_201f); // nop
        }
        code(ENTRY + 0x68, bl(ENTRY + 0x68, HANDLER));
        for at in (HANDLER..0xffff_8000_802f_8748).step_by(4) {
            code(at, 0xd503_201f);
        }
        code(HANDLER, 0xa9be_7bfd); // stp x29, x30, [sp, #-32]!
        code(HANDLER + 0x2c, bl(HANDLER + 0x2c, DO_SERROR));
        for at in (SERROR_PANIC..0xffff_8000_8002_2f00).step_by(4) {
            code(at, 0xd503_201f);
        }
        code(SERROR_PANIC, 0xa9bf_7bfd); // stp x29, x30, [sp, #-16]!
        guest.vbar = Some(VECTORS);
        let mut x = [0u64; 31];
        x[0] = 0xffff_ffff;
        guest.cpu = Some(CpuState {
            x,
            sp: 0xffff_8000_8233_bb60,
            cpsr: 0x6000_0005,
        });
        guest
    }

    fn serror_plugin(test: &str, faithful: bool) -> (Plugin, PathBuf, PathBuf) {
        let events = events_path(test);
        let map = system_map(test, faithful);
        let plugin = plugin_with(
            &events,
            &["on_abort=serror", &format!("symbols={}", map.display())],
        );
        assert!(plugin.diverts(), "serror registers RW_REGS_PC callbacks");
        (plugin, events, map)
    }

    #[test]
    fn serror_refuses_a_symbol_map_it_cannot_use_at_install() {
        for (symbols, expected) in [
            (
                "/nonexistent/System.map",
                "cannot read the kernel's symbol map symbols=/nonexistent/System.map",
            ),
            ("/dev/null", "symbols=/dev/null is not a kernel System.map"),
        ] {
            let events = events_path("serror-install");
            let arguments = vec![
                format!("soc={}", soc_path().display()),
                format!("events={}", events.display()),
                "on_abort=serror".to_string(),
                format!("symbols={symbols}"),
            ];
            let error = Plugin::from_arguments(&arguments).err().expect("refused");
            assert!(matches!(error, InstallError::Symbols(_)), "{error}");
            assert!(error.to_string().contains(expected), "{error}");
            assert!(!events.exists(), "no events file for a refused plugin");
        }
        // A map without any SError entry point.
        let map = events_path("serror-no-entry").with_extension("map");
        std::fs::write(
            &map,
            "ffff800080000000 T _text\nffff800080010000 T _stext\n",
        )
        .unwrap();
        let events = events_path("serror-no-entry");
        let arguments = vec![
            format!("soc={}", soc_path().display()),
            format!("events={}", events.display()),
            "on_abort=serror".to_string(),
            format!("symbols={}", map.display()),
        ];
        let error = Plugin::from_arguments(&arguments).err().expect("refused");
        assert!(
            error.to_string().contains("nor arm64_serror_panic"),
            "{error}"
        );
        let _ = std::fs::remove_file(map);
        // Under the other policies the map is not read.
        let events = events_path("serror-other-policy");
        let plugin = plugin_with(&events, &["symbols=/nonexistent/System.map"]);
        assert!(!plugin.diverts());
        plugin.finish();
        let _ = std::fs::remove_file(events);
    }

    #[test]
    fn serror_diverts_the_first_abort_into_do_serror() {
        let (plugin, events, map) = serror_plugin("serror-faithful", true);
        let mut guest = kernel_guest();
        plugin.write_reset_image(&mut guest);
        stop_adc_clocks(&plugin, &mut guest);
        assert_eq!(read_adm0(&plugin, &mut guest), Verdict::Divert(DO_SERROR));
        assert!(plugin.is_active(), "the guest takes it from here");

        // On disk before the caller diverts: no finish() yet.
        let text = std::fs::read_to_string(&events).unwrap();
        let written: Vec<serde_json::Value> = text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        let ready = of_type(&written, "serror_ready");
        assert_eq!(ready.len(), 1);
        assert_eq!(ready[0]["mode"], "faithful");
        assert_eq!(ready[0]["target"], DO_SERROR);
        assert_eq!(ready[0]["handler_return"], HANDLER + 0x30);
        assert_eq!(ready[0]["entry_return"], ENTRY + 0x6c);
        assert_eq!(ready[0]["handler_frame"], 32);
        assert_eq!(ready[0]["vbar_el1"], VECTORS);
        let abort = of_type(&written, "abort")[0];
        assert_eq!(abort["diverted"], true);
        assert_eq!(abort["serror"]["mode"], "faithful");
        assert_eq!(abort["serror"]["target"], "do_serror");
        assert_eq!(abort["serror"]["esr"], 0xbe00_0011u64);
        assert_eq!(
            abort["unwind"], "end",
            "the chain is the one before the divert"
        );

        // The stack and the registers as the entry code would have left them.
        let regs = 0xffff_8000_8233_bb60u64 - 320;
        assert_eq!(abort["serror"]["regs"], regs);
        let frame = regs - 32;
        let word = |guest: &FakeGuest, at: u64| {
            u64::from_le_bytes(std::array::from_fn(|i| guest.virt[&(at + i as u64)]))
        };
        assert_eq!(word(&guest, frame), regs + 296);
        assert_eq!(word(&guest, frame + 8), ENTRY + 0x6c);
        assert_eq!(word(&guest, regs), 0xffff_ffff, "x0 in pt_regs");
        assert_eq!(
            word(&guest, regs + 256),
            0xffff_0000_0000_0100,
            "pc in pt_regs"
        );
        assert_eq!(word(&guest, regs + 312), 2, "meta record type");
        assert_eq!(
            guest.written_registers,
            vec![
                (Register::X(0), regs),
                (Register::X(1), 0xbe00_0011),
                (Register::X(29), frame),
                (Register::X(30), HANDLER + 0x30),
                (Register::Sp, frame),
                (Register::Cpsr, 0x6000_03c5),
            ]
        );

        // Later aborts are only recorded.
        guest.written_registers.clear();
        assert_eq!(read_adm0(&plugin, &mut guest), Verdict::Continue);
        assert!(guest.written_registers.is_empty());
        plugin.finish();
        let events = events_in(&events);
        let aborts = of_type(&events, "abort");
        assert_eq!(aborts.len(), 2);
        assert!(aborts[1].get("diverted").is_none() && aborts[1].get("serror").is_none());
        assert_eq!(events.last().unwrap()["type"], "summary");
        assert!(of_type(&events, "halt").is_empty());
        let _ = std::fs::remove_file(map);
    }

    // The synchronous data abort path of the upstream build (sea.rs has its layout).
    const SYNC_ENTRY: u64 = 0xffff_8000_8001_1244;
    const SYNC_HANDLER: u64 = 0xffff_8000_802f_9060;
    const EL1_ABORT: u64 = 0xffff_8000_802f_8940;
    const DO_MEM_ABORT: u64 = 0xffff_8000_8002_9df0;

    /// `system_map` plus the synchronous path, and a guest that has its code.
    fn with_sync_path(map: &Path, guest: &mut FakeGuest) {
        let mut text = std::fs::read_to_string(map).unwrap();
        text.push_str(&format!(
            "{SYNC_ENTRY:016x} t el1h_64_sync\n\
             {DO_MEM_ABORT:016x} T do_mem_abort\n\
             {EL1_ABORT:016x} t el1_abort\n\
             ffff8000802f89a0 t el1_pc\n\
             {SYNC_HANDLER:016x} T el1h_64_sync_handler\n\
             ffff8000802f9104 T el1h_64_irq_handler\n"
        ));
        std::fs::write(map, text).unwrap();
        let mut code = |at: u64, insn: u32| {
            for (i, byte) in insn.to_le_bytes().iter().enumerate() {
                guest.virt.insert(at + i as u64, *byte);
            }
        };
        for (start, end) in [
            (SYNC_ENTRY, ENTRY),
            (EL1_ABORT, 0xffff_8000_802f_89a0),
            (SYNC_HANDLER, 0xffff_8000_802f_9104),
        ] {
            for at in (start..end).step_by(4) {
                code(at, 0xd503_201f); // nop
            }
        }
        code(SYNC_ENTRY + 0x68, bl(SYNC_ENTRY + 0x68, SYNC_HANDLER));
        code(SYNC_HANDLER, 0xa9bf_7bfd); // stp x29, x30, [sp, #-16]!
        code(SYNC_HANDLER + 0x48, bl(SYNC_HANDLER + 0x48, EL1_ABORT));
        code(EL1_ABORT, 0xa9bd_7bfd); // stp x29, x30, [sp, #-48]!
        code(EL1_ABORT + 0x3c, bl(EL1_ABORT + 0x3c, DO_MEM_ABORT));
    }

    /// An `on_abort=serror` plugin whose map has the synchronous path, and its guest with the
    /// reset image written.
    fn sync_path_plugin(test: &str) -> (Plugin, PathBuf, PathBuf, FakeGuest) {
        let events = events_path(test);
        let map = system_map(test, true);
        let mut guest = kernel_guest();
        with_sync_path(&map, &mut guest);
        let plugin = plugin_with(
            &events,
            &["on_abort=serror", &format!("symbols={}", map.display())],
        );
        plugin.write_reset_image(&mut guest);
        (plugin, events, map, guest)
    }

    #[test]
    fn serror_diverts_a_gated_read_into_a_synchronous_external_abort_and_a_write_into_an_serror() {
        // The read: ADM0 with the ADC's clocks stopped.
        let (plugin, events, map, mut guest) = sync_path_plugin("sea-read");
        stop_adc_clocks(&plugin, &mut guest);
        assert_eq!(
            read_adm0(&plugin, &mut guest),
            Verdict::Divert(DO_MEM_ABORT)
        );
        let adm0 = register_address("adc", "ADM0");
        let regs = 0xffff_8000_8233_bb60 - 320;
        let frame = regs - 16 - 48;
        for written in [
            (Register::X(0), adm0),
            (Register::X(1), 0x9600_0010),
            (Register::X(2), regs),
            (Register::X(29), frame),
            (Register::X(30), EL1_ABORT + 0x40),
        ] {
            assert!(guest.written_registers.contains(&written), "{written:x?}");
        }
        plugin.finish();
        let written = events_in(&events);
        let ready = of_type(&written, "serror_ready")[0];
        assert_eq!(ready["sync"]["target"], DO_MEM_ABORT);
        assert_eq!(ready["sync"]["abort_frame"], 48);
        let abort = of_type(&written, "abort")[0];
        assert_eq!(abort["diverted"], true);
        assert_eq!(abort["serror"]["exception"], "synchronous-external-abort");
        assert_eq!(abort["serror"]["target"], "do_mem_abort");
        assert_eq!(abort["serror"]["esr"], 0x9600_0010u64);
        assert_eq!(abort["serror"]["far"], adm0);
        let _ = std::fs::remove_file(&map);

        // The write: ADM0 again, stored this time.
        let (plugin, events, map, mut guest) = sync_path_plugin("sea-write");
        stop_adc_clocks(&plugin, &mut guest);
        let verdict = plugin.on_window_access(&mut guest, 0, 0x40, adm0, adm0, 2, true, 0);
        assert_eq!(verdict, Verdict::Divert(DO_SERROR));
        assert!(guest
            .written_registers
            .contains(&(Register::X(1), 0xbe00_0011)));
        plugin.finish();
        let abort = of_type(&events_in(&events), "abort")[0].clone();
        assert_eq!(abort["serror"]["exception"], "serror");
        assert!(abort["serror"].get("far").is_none());
        let _ = std::fs::remove_file(&map);
    }

    #[test]
    fn serror_reads_take_the_serror_path_when_the_map_lacks_the_synchronous_one() {
        // system_map has no el1h_64_sync & co.: the read of the faithful test goes to
        // do_serror, and the ready event says what is missing.
        let (plugin, events, map) = serror_plugin("sea-missing", true);
        let mut guest = kernel_guest();
        plugin.write_reset_image(&mut guest);
        stop_adc_clocks(&plugin, &mut guest);
        assert_eq!(read_adm0(&plugin, &mut guest), Verdict::Divert(DO_SERROR));
        plugin.finish();
        let written = events_in(&events);
        assert_eq!(
            of_type(&written, "serror_ready")[0]["sync"]["missing"],
            serde_json::json!([
                "el1h_64_sync",
                "el1h_64_sync_handler",
                "el1_abort",
                "do_mem_abort"
            ])
        );
        assert_eq!(
            of_type(&written, "abort")[0]["serror"]["exception"],
            "serror"
        );
        let _ = std::fs::remove_file(map);
    }

    #[test]
    fn serror_falls_back_to_arm64_serror_panic_when_a_symbol_is_missing() {
        let (plugin, events, map) = serror_plugin("serror-fallback", false);
        let mut guest = kernel_guest();
        plugin.write_reset_image(&mut guest);
        stop_adc_clocks(&plugin, &mut guest);
        assert_eq!(
            read_adm0(&plugin, &mut guest),
            Verdict::Divert(SERROR_PANIC)
        );
        plugin.finish();
        let events = events_in(&events);
        let abort = of_type(&events, "abort")[0];
        assert_eq!(abort["diverted"], true);
        assert_eq!(abort["serror"]["mode"], "fallback");
        assert_eq!(abort["serror"]["target"], "arm64_serror_panic");
        assert_eq!(
            abort["serror"]["missing"],
            serde_json::json!(["el1h_64_error"])
        );
        assert!(guest
            .written_registers
            .contains(&(Register::X(30), 0xffff_0000_0000_0104)));
        let _ = std::fs::remove_file(map);
    }

    #[test]
    fn serror_stops_qemu_when_the_map_is_not_the_running_kernels() {
        let (plugin, events, map) = serror_plugin("serror-mismatch", true);
        let mut guest = kernel_guest();
        // Another build: its handler is 0x40 further on, the bl does not reach it.
        guest.virt.clear();
        guest.vbar = Some(VECTORS);
        plugin.write_reset_image(&mut guest);
        let clk_on_adc = register_address("cpg", "CLK_ON_ADC");
        let verdict = plugin.on_window_access(
            &mut guest, 0, 0x1000, clk_on_adc, clk_on_adc, 2, true, 0x3_0000,
        );
        assert_eq!(verdict, Verdict::Halt(SYMBOLS_MISMATCH_EXIT_STATUS));
        assert!(plugin.is_stopped());
        let events = events_in(&events);
        let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
        assert_eq!(kinds, ["start", "symbols_mismatch", "summary"]);
        let message = events[1]["message"].as_str().unwrap();
        assert!(
            message.contains("is not the System.map of the running kernel"),
            "{message}"
        );
        assert!(
            message.contains("no readable code at el1h_64_error"),
            "{message}"
        );

        // A wrong vector base is a mismatch too.
        let (plugin, events, _) = serror_plugin("serror-mismatch-vbar", true);
        let mut guest = kernel_guest();
        guest.vbar = Some(VECTORS + 0x1000);
        plugin.write_reset_image(&mut guest);
        let verdict = plugin.on_window_access(
            &mut guest, 0, 0x1000, clk_on_adc, clk_on_adc, 2, true, 0x3_0000,
        );
        assert_eq!(verdict, Verdict::Halt(SYMBOLS_MISMATCH_EXIT_STATUS));
        let events = events_in(&events);
        assert!(events[1]["message"].as_str().unwrap().contains("VBAR_EL1"));
        let _ = std::fs::remove_file(map);
    }

    #[test]
    fn serror_halts_when_the_access_cannot_be_diverted() {
        // A user-space access (EL0t), then a QEMU that refuses the register writes.
        for (cpsr, refuse, expected) in [
            (0x6000_0000, false, "not made by the kernel at EL1h"),
            (0x6000_0005, true, "QEMU refused to set"),
        ] {
            let (plugin, events, map) = serror_plugin("serror-refused", true);
            let mut guest = kernel_guest();
            guest.cpu.as_mut().unwrap().cpsr = cpsr;
            guest.refuse_register_writes = refuse;
            plugin.write_reset_image(&mut guest);
            stop_adc_clocks(&plugin, &mut guest);
            assert_eq!(
                read_adm0(&plugin, &mut guest),
                Verdict::Halt(HALT_EXIT_STATUS)
            );
            let events = events_in(&events);
            let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
            assert_eq!(kinds[kinds.len() - 3..], ["abort", "halt", "summary"]);
            let abort = of_type(&events, "abort")[0];
            assert!(abort.get("diverted").is_none());
            assert_eq!(abort["serror"]["mode"], "refused");
            let reason = abort["serror"]["reason"].as_str().unwrap();
            assert!(reason.contains(expected), "{reason}");
            let _ = std::fs::remove_file(map);
        }
    }

    /// A `/dev/mem` page-table entry for the ADC page (see `filter`'s tests).
    const USER_PTE_OF_ADC: u64 = 0x0060_0000_7d05_8fc3;
    const KERNEL_PC: u64 = 0xffff_8000_8010_0000;
    const USER_PC: u64 = 0x0000_aaaa_0000_1000;

    #[test]
    fn lower_half_is_skipped_from_the_first_kernel_block_until_user_space_reaches_the_window() {
        let events = events_path("lower-half");
        let plugin = plugin_with(&events, &[]);
        // Firmware and MMU-off code first: instrumented.
        assert!(!plugin.skips_block(0x4008_0000));
        assert!(!plugin.lower_half_skipped());
        // A kernel in the upper half: user blocks are skipped from now on.
        assert!(!plugin.skips_block(KERNEL_PC));
        assert!(plugin.skips_block(USER_PC));
        assert!(plugin.lower_half_skipped() && !plugin.user_space_instrumented());
        // A kernel store of an ordinary value changes nothing.
        let mut guest = FakeGuest {
            registers: Some((0, 0)),
            ..FakeGuest::default()
        };
        assert!(!plugin.watch_descriptor_store(
            &mut guest,
            0,
            KERNEL_PC,
            0xffff_0000_0100_0000,
            0x7e05_8fff
        ));
        assert!(plugin.skips_block(USER_PC));
        // The entry that maps the ADC for EL0: retranslate, once.
        assert!(plugin.watch_descriptor_store(
            &mut guest,
            0,
            KERNEL_PC,
            0xffff_0000_0100_0008,
            USER_PTE_OF_ADC
        ));
        assert!(!plugin.watch_descriptor_store(
            &mut guest,
            0,
            KERNEL_PC,
            0xffff_0000_0100_0010,
            USER_PTE_OF_ADC
        ));
        assert!(plugin.user_space_instrumented() && !plugin.lower_half_skipped());
        assert!(!plugin.skips_block(USER_PC));
        plugin.finish();
        let all = events_in(&events);
        let mapped = of_type(&all, "user_space_mapped");
        assert_eq!(mapped.len(), 1, "{all:?}");
        assert_eq!(mapped[0]["descriptor"], USER_PTE_OF_ADC);
        assert_eq!(mapped[0]["descriptor_at"], 0xffff_0000_0100_0008_u64);
        assert_eq!(mapped[0]["pc"], KERNEL_PC);
        let summary = of_type(&all, "summary")[0];
        assert_eq!(summary["user_space"]["policy"], "watch");
        assert_eq!(summary["user_space"]["instrumented"], true);
        assert_eq!(summary["user_space"]["mapped_seq"], mapped[0]["seq"]);
    }

    #[test]
    fn user_space_always_instruments_the_lower_half_from_the_start() {
        let events = events_path("user-always");
        let plugin = plugin_with(&events, &["user_space=always"]);
        assert!(!plugin.skips_block(KERNEL_PC));
        assert!(!plugin.skips_block(USER_PC));
        assert!(plugin.user_space_instrumented());
        plugin.finish();
        let all = events_in(&events);
        assert_eq!(of_type(&all, "start")[0]["user_space"], "always");
        assert!(of_type(&all, "user_space_mapped").is_empty());
        assert_eq!(
            of_type(&all, "summary")[0]["user_space"]["mapped_seq"],
            serde_json::Value::Null
        );
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
                        plugin.on_window_access(
                            &mut guest, vcpu, i, clk_on_adc, clk_on_adc, 2, true, value,
                        );
                        plugin.on_window_access(&mut guest, vcpu, i, adm0, adm0, 2, false, 0);
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
