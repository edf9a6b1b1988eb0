//! The bus: decodes a guest access in the window, checks the device's gate, runs the
//! device's model through the peripheral interface and returns the memory writes and
//! events that follow from it.
//!
//! QEMU reports an access after it has landed in the RAM window, so every value a later
//! read must see is written back before [`Bus::access`] returns: the register's real
//! value after a write (a write-enable-masked CLK_ON write must not stay in RAM as
//! written), side effects (CLK_MON, RST_MON, ADSTS, ADCR), the bus-error value over a
//! device that just became gated, and the GIC writes of its interrupts. The bus keeps a
//! shadow of what the window holds for each declared register, so it writes back exactly
//! the registers whose visible value changed.
//!
//! The bus knows devices only as [`Peripheral`]s built by the registry; which device a
//! gate reads (the clock controller), which interrupts a device has and which outputs feed
//! which inputs all come from the SoC description.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Fault, ModelConfig, PluginConfig};
use crate::device::{Effects, Env, GuestMemory, NoMemory, Peripheral};
use crate::event::{Abort, AccessKind, Event, GatedSince};
use crate::gate::{self, GateState};
use crate::registry;
use crate::soc::{hex, Soc, SocError, Window};

pub use crate::device::MemWrite;

/// One guest load or store, as the QEMU memory callback reports it (after the fact).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Guest-physical address.
    pub phys: u64,
    /// Bytes: 1, 2, 4, 8 (16 for a SIMD access; bytes past 8 count as 0 in a write).
    pub size: u8,
    pub is_write: bool,
    /// The value stored, or the value the load returned, little-endian in the low bytes.
    pub value: u64,
    pub vcpu: u32,
    pub pc: u64,
}

/// What the glue must do after an access: apply `writes` in order, report `events`.
#[derive(Debug, Default)]
pub struct Outcome {
    pub writes: Vec<MemWrite>,
    pub events: Vec<Event>,
    /// The access hit a device whose bus answers with an error (an abort).
    pub aborted: bool,
    /// A device reset the machine (its `watchdog_reset` event is in `events`): the glue
    /// ends the run as a guest reset under `-no-reboot` does.
    pub system_reset: bool,
}

impl Outcome {
    pub fn clear(&mut self) {
        self.writes.clear();
        self.events.clear();
        self.aborted = false;
        self.system_reset = false;
    }
}

/// Where the bus's time comes from: a monotonic count of ns.
pub trait Clock: Send {
    fn now_ns(&self) -> u64;
}

/// Host monotonic time. QEMU's TCG without `-icount` runs the guest's clocks at host
/// speed, so a timeout the guest programs in its own seconds passes in about as many host
/// seconds (a guest paused in a debugger is the exception).
#[derive(Debug)]
pub struct HostClock(std::time::Instant);

impl HostClock {
    pub fn new() -> HostClock {
        HostClock(std::time::Instant::now())
    }
}

impl Default for HostClock {
    fn default() -> HostClock {
        HostClock::new()
    }
}

impl Clock for HostClock {
    fn now_ns(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

/// A clock that moves only when told (tests): clones share the time.
#[derive(Clone, Debug, Default)]
pub struct ManualClock(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl ManualClock {
    pub fn advance(&self, ns: u64) {
        self.0.fetch_add(ns, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Clock for ManualClock {
    fn now_ns(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Snapshot of every model's state (register values and counters), for tests and checks.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelState {
    /// Real register values by device name, in declaration order.
    pub registers: BTreeMap<String, Vec<u32>>,
    /// Model counters by device name (devices whose model keeps any).
    pub counters: BTreeMap<String, Value>,
}

/// Everything the bus and its models keep while the guest runs, for a snapshot
/// (docs/contracts.md "Snapshots"): a bus loaded from it continues exactly where this one
/// stood, with the window QEMU migrated. The armed faults, host values and policies are not
/// in it: the restored plugin's arguments give them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BusState {
    /// The next event's sequence number (the restored run's events continue the boot's).
    pub seq: u64,
    pub step: u32,
    pub aborts: u64,
    pub suspects: u64,
    /// Names of the faults that fired.
    pub faults_fired: Vec<String>,
    /// Accesses to offsets no register declares: (device, or `window`, offset, count).
    pub unmodelled: Vec<(String, u64, u64)>,
    /// By device name, every device of the SoC description.
    pub devices: BTreeMap<String, DeviceState>,
    /// The bus time at the save (ns): a restored bus's clock continues from it, so a
    /// deadline a model keeps in bus time survives as the time that remained.
    #[serde(default)]
    pub time_ns: u64,
}

/// One device's part of a [`BusState`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeviceState {
    /// What [`Peripheral::save`] returned.
    pub model: Value,
    /// What the window holds for each declared register (the bus-error value while gated).
    pub window: Vec<u32>,
    pub since: Option<GatedSince>,
    pub accesses: u64,
    pub gate_events: u64,
}

/// The GIC writes that raise and withdraw one interrupt line.
#[derive(Clone, Copy, Debug)]
struct Line {
    set_pending: (u64, u32),
    clear_pending: (u64, u32),
}

/// Runtime view of one device in the window.
#[derive(Debug)]
struct Slot {
    /// Index into `soc.devices()` and the bus's models.
    dev: usize,
    name: String,
    /// Device base relative to the window start.
    window_off: u64,
    size: u64,
    guest_base: u64,
    /// (offset, register index), sorted by offset.
    lookup: Vec<(u32, usize)>,
    /// Offset of register `idx`.
    offsets: Vec<u32>,
    /// What the window holds for register `idx`.
    shadow: Vec<u32>,
    lines: Vec<Line>,
    /// The device declares conditions or inputs: its model calls get a computed [`Env`].
    needs_env: bool,
    /// The device holds the clock and reset bits: its writes can change every gate.
    is_clock_controller: bool,
    /// The model acts on reads (`Peripheral::watches_reads`): only then does a read of a
    /// declared register call it.
    watches_reads: bool,
    /// The model keeps time (`Peripheral::keeps_time`): its calls get the bus time.
    keeps_time: bool,
    state: GateState,
    since: Option<GatedSince>,
    accesses: u64,
    gate_events: u64,
}

impl Slot {
    /// The bus answers the device with an error: the window holds the bus-error image.
    fn gated(&self) -> bool {
        self.state == GateState::BusError
    }

    fn reg_at(&self, offset: u64) -> Option<usize> {
        let off = u32::try_from(offset).ok()?;
        self.lookup
            .binary_search_by_key(&off, |&(o, _)| o)
            .ok()
            .and_then(|i| self.lookup.get(i))
            .map(|&(_, idx)| idx)
    }
}

/// Key of the unmodelled-access counter: window bytes outside every device use
/// `WINDOW_SLOT`.
const WINDOW_SLOT: usize = usize::MAX;
/// The name of [`WINDOW_SLOT`] in reports and saved states.
const WINDOW: &str = "window";

pub struct Bus {
    soc: Soc,
    window: Window,
    bus_error: u32,
    slots: Vec<Slot>,
    /// One model per device, indexed like `soc.devices()`.
    models: Vec<Box<dyn Peripheral>>,
    /// Device index of the clock controller.
    controller: Option<usize>,
    seq: u64,
    step: u32,
    aborts: u64,
    suspects: u64,
    faults_armed: Vec<Fault>,
    faults_fired: Vec<Fault>,
    unmodelled: BTreeMap<(usize, u64), u64>,
    /// Reused for every model call (its memory list keeps its capacity).
    fx: Effects,
    /// The bus time is `clock.now_ns() + time_offset` (wrapping): 0 at power-on,
    /// continuous across a snapshot.
    clock: Box<dyn Clock>,
    time_offset: u64,
    /// Guest-physical memory for bus masters (the DMA controller): the glue's, or
    /// [`NoMemory`]. Taken out of the bus for the length of a model call.
    memory: Box<dyn GuestMemory>,
}

impl Bus {
    /// The bus of `soc` with every device's model in its power-on state. Fails when a
    /// device's model cannot be built from its description (an unknown model, a register
    /// the model needs and the YAML lacks).
    pub fn new(soc: Soc, cfg: &ModelConfig) -> Result<Bus, SocError> {
        let models = registry::build(&soc, cfg)?;
        let window = soc.window();
        let gic = soc.gic();
        let controller = soc.clock_controller().map(|c| c.device);
        let mut slots: Vec<Slot> = soc
            .devices()
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let mut lookup: Vec<(u32, usize)> = d
                    .registers
                    .iter()
                    .enumerate()
                    .map(|(idx, r)| (r.offset, idx))
                    .collect();
                lookup.sort_unstable();
                Slot {
                    dev: i,
                    name: d.name.clone(),
                    window_off: d.base.wrapping_sub(window.soc_base),
                    size: d.size,
                    guest_base: window.guest_addr(d.base),
                    lookup,
                    offsets: d.registers.iter().map(|r| r.offset).collect(),
                    shadow: vec![0; d.registers.len()],
                    lines: d
                        .interrupts
                        .iter()
                        .map(|l| Line {
                            set_pending: gic.set_pending(l.spi),
                            clear_pending: gic.clear_pending(l.spi),
                        })
                        .collect(),
                    needs_env: !d.conditions.is_empty() || !d.inputs.is_empty(),
                    is_clock_controller: controller == Some(i),
                    watches_reads: models.get(i).is_some_and(|m| m.watches_reads()),
                    keeps_time: models.get(i).is_some_and(|m| m.keeps_time()),
                    state: GateState::Open,
                    since: None,
                    accesses: 0,
                    gate_events: 0,
                }
            })
            .collect();
        slots.sort_by_key(|s| s.window_off);

        let mut faults_armed = cfg.faults.clone();
        faults_armed.sort();
        faults_armed.dedup();
        let mut bus = Bus {
            bus_error: soc.bus_error(),
            soc,
            window,
            slots,
            models,
            controller,
            seq: 0,
            step: 0,
            aborts: 0,
            suspects: 0,
            faults_armed,
            faults_fired: Vec::new(),
            unmodelled: BTreeMap::new(),
            fx: Effects::default(),
            clock: Box::new(HostClock::new()),
            time_offset: 0,
            memory: Box::new(NoMemory),
        };
        bus.settle_all();
        Ok(bus)
    }

    /// Every device's gate state and window shadow from its model's current state.
    fn settle_all(&mut self) {
        for si in 0..self.slots.len() {
            let state = self
                .slots
                .get(si)
                .map_or(GateState::Open, |s| self.state_of(s.dev));
            let values = self.visible_values(si, state == GateState::BusError);
            if let Some(slot) = self.slots.get_mut(si) {
                slot.state = state;
                slot.shadow = values;
            }
        }
    }

    /// Every model back to power-on, the counters and the step to 0 (the reset image is
    /// then what the window must hold).
    pub fn reset(&mut self) {
        for m in &mut self.models {
            m.reset();
        }
        for slot in &mut self.slots {
            slot.since = None;
            slot.accesses = 0;
            slot.gate_events = 0;
        }
        self.step = 0;
        self.aborts = 0;
        self.suspects = 0;
        self.faults_fired.clear();
        self.unmodelled.clear();
        self.settle_all();
    }

    pub fn soc(&self) -> &Soc {
        &self.soc
    }

    /// The bus time (ns): the clock's, 0 at power-on, continuous across a snapshot.
    pub fn now_ns(&self) -> u64 {
        self.clock.now_ns().wrapping_add(self.time_offset)
    }

    /// Takes time from `clock` from now on, the bus time continuing where it stands (tests
    /// drive time by hand).
    pub fn set_clock(&mut self, clock: Box<dyn Clock>) {
        let now = self.now_ns();
        self.time_offset = now.wrapping_sub(clock.now_ns());
        self.clock = clock;
    }

    /// Gives the models guest-physical memory (the glue's view of the machine's address
    /// space, a test's `Vec`): what a DMA controller copies. Until then every access fails.
    pub fn set_memory(&mut self, memory: Box<dyn GuestMemory>) {
        self.memory = memory;
    }

    /// The earliest bus time at which a model needs [`Bus::tick`]; None when none does.
    pub fn deadline(&self) -> Option<u64> {
        self.slots
            .iter()
            .filter(|s| s.keeps_time)
            .filter_map(|s| self.models.get(s.dev).and_then(|m| m.deadline()))
            .min()
    }

    /// Lets every model that keeps time do what is due now (a watchdog bites); clears
    /// `out` and fills it like [`Bus::access`]. The glue calls it when [`Bus::deadline`]
    /// has passed.
    pub fn tick(&mut self, out: &mut Outcome) {
        out.clear();
        self.tick_models(&Access::default(), out);
    }

    /// [`Peripheral::tick`] of every model that keeps time, for access `a` (or none).
    fn tick_models(&mut self, a: &Access, out: &mut Outcome) {
        let memory = std::mem::replace(&mut self.memory, Box::new(NoMemory));
        for si in 0..self.slots.len() {
            if !self.slots.get(si).is_some_and(|s| s.keeps_time) {
                continue;
            }
            let env = self.env(si).with_memory(&*memory);
            let mut fx = std::mem::take(&mut self.fx);
            fx.clear();
            let changed = match self.slots.get(si).and_then(|s| self.models.get_mut(s.dev)) {
                Some(m) => m.tick(&env, &mut fx),
                None => false,
            };
            if changed {
                self.sync(si, &[], out);
            }
            if !fx.is_empty() {
                self.apply(si, a, &fx, out);
            }
            self.fx = fx;
        }
        self.memory = memory;
    }

    pub fn window(&self) -> Window {
        self.window
    }

    /// Cheap range check for the hot path: is `phys` inside the window?
    #[inline]
    pub fn in_window(&self, phys: u64) -> bool {
        phys.wrapping_sub(self.window.guest_base) < self.window.size
    }

    /// The step the guest last wrote to the mailbox (0 before the first).
    pub fn step(&self) -> u32 {
        self.step
    }

    pub fn aborts(&self) -> u64 {
        self.aborts
    }

    pub fn suspects(&self) -> u64 {
        self.suspects
    }

    /// Whether device `name` answers with a bus error now; None for an unknown device.
    pub fn is_gated(&self, name: &str) -> Option<bool> {
        self.slots.iter().find(|s| s.name == name).map(Slot::gated)
    }

    /// What an access to device `name` meets now; None for an unknown device.
    pub fn gate_state(&self, name: &str) -> Option<GateState> {
        self.slots.iter().find(|s| s.name == name).map(|s| s.state)
    }

    /// The value device `name` drives on its output now (what its linked inputs see).
    pub fn output(&self, name: &str) -> Option<u32> {
        let dev = self.soc.device_index(name)?;
        self.models.get(dev).and_then(|m| m.output())
    }

    /// The sequence number for the next event (events the glue creates use it too).
    pub fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq += 1;
        s
    }

    /// The clock controller's register values (what gates read); empty without one.
    fn controller_values(&self) -> &[u32] {
        self.controller
            .and_then(|c| self.models.get(c))
            .map_or(&[], |m| m.values())
    }

    /// What an access to device `dev` meets now.
    fn state_of(&self, dev: usize) -> GateState {
        self.soc
            .devices()
            .get(dev)
            .and_then(|d| d.gate.as_ref())
            .map_or(GateState::Open, |g| {
                gate::state(g, &self.soc, self.controller_values())
            })
    }

    /// What the window must hold for each register of slot `si`.
    fn visible_values(&self, si: usize, gated: bool) -> Vec<u32> {
        let Some(slot) = self.slots.get(si) else {
            return Vec::new();
        };
        let model = self.models.get(slot.dev);
        (0..slot.offsets.len())
            .map(|idx| {
                if gated {
                    self.bus_error
                } else {
                    model.map_or(0, |m| m.value(idx))
                }
            })
            .collect()
    }

    /// Every modelled register's value (the bus-error value over gated devices), to
    /// write into the zeroed RAM window before the guest runs.
    pub fn reset_image(&self) -> Vec<MemWrite> {
        let mut out = Vec::new();
        for slot in &self.slots {
            for (&value, &off) in slot.shadow.iter().zip(&slot.offsets) {
                out.push(MemWrite {
                    phys: slot.guest_base + u64::from(off),
                    size: 4,
                    value: value.into(),
                });
            }
        }
        out
    }

    /// Handles one guest access; clears `out` and fills it with what the glue must do.
    pub fn access(&mut self, access: &Access, out: &mut Outcome) {
        out.clear();
        let off = access.phys.wrapping_sub(self.window.guest_base);
        if off >= self.window.size {
            return;
        }
        let len = u64::from(access.size.clamp(1, 16));
        let Some(si) = self
            .slots
            .iter()
            .position(|s| off.wrapping_sub(s.window_off) < s.size)
        else {
            self.note_unmodelled(WINDOW_SLOT, off & !3);
            return;
        };
        let Some(slot) = self.slots.get_mut(si) else {
            return;
        };
        slot.accesses += 1;
        let state = slot.state;
        let dev_off = off - slot.window_off;
        let end = dev_off.saturating_add(len).min(slot.size);
        match state {
            GateState::BusError => {
                self.gated_access(si, access, dev_off, len, GateState::BusError, out);
                return;
            }
            GateState::Suspect => {
                self.gated_access(si, access, dev_off, len, GateState::Suspect, out)
            }
            GateState::Open => {}
        }
        if access.is_write {
            self.write(si, access, dev_off, len, end, out);
        } else if self.slots.get(si).is_some_and(|s| s.watches_reads) {
            self.read(si, access, dev_off, end, out);
        } else {
            self.note_undeclared(si, dev_off, end);
        }
    }

    fn note_unmodelled(&mut self, si: usize, offset: u64) {
        *self.unmodelled.entry((si, offset)).or_insert(0) += 1;
    }

    /// What a model call of slot `si` may ask about: its unmet conditions and its inputs.
    fn env(&self, si: usize) -> Env<'static> {
        let Some(slot) = self.slots.get(si).filter(|s| s.needs_env || s.keeps_time) else {
            return Env::EMPTY;
        };
        let now = if slot.keeps_time { self.now_ns() } else { 0 };
        let Some(dev) = self.soc.devices().get(slot.dev) else {
            return Env::EMPTY;
        };
        let cc = self.controller_values();
        let unmet = dev
            .conditions
            .iter()
            .filter_map(|(name, rule)| {
                gate::first_reason(dev, rule, &self.soc, cc).map(|why| (name.clone(), why))
            })
            .collect();
        let inputs = dev
            .inputs
            .iter()
            .filter_map(|(name, source)| {
                let v = self.models.get(*source).and_then(|m| m.output())?;
                Some((name.clone(), v))
            })
            .collect();
        Env::new(unmet, inputs).at(now)
    }

    /// Reads of offsets no register declares are counted.
    fn note_undeclared(&mut self, si: usize, dev_off: u64, end: u64) {
        let mut word = dev_off & !3;
        while word < end {
            if self.slots.get(si).is_some_and(|s| s.reg_at(word).is_none()) {
                self.note_unmodelled(si, word);
            }
            word += 4;
        }
    }

    /// A read of a device whose model acts on reads.
    fn read(&mut self, si: usize, a: &Access, dev_off: u64, end: u64, out: &mut Outcome) {
        let mut changed = false;
        let memory = std::mem::replace(&mut self.memory, Box::new(NoMemory));
        let env = self.env(si).with_memory(&*memory);
        let mut word = dev_off & !3;
        while word < end {
            match self.slots.get(si).and_then(|s| s.reg_at(word)) {
                None => self.note_unmodelled(si, word),
                Some(idx) => {
                    let mut fx = std::mem::take(&mut self.fx);
                    fx.clear();
                    if let Some(m) = self.slots.get(si).and_then(|s| self.models.get_mut(s.dev)) {
                        let lanes = byte_lanes(word, dev_off, end - dev_off);
                        changed |= m.after_read_lanes(idx, lanes, &env, &mut fx);
                    }
                    if !fx.is_empty() {
                        self.apply(si, a, &fx, out);
                    }
                    self.fx = fx;
                }
            }
            word += 4;
        }
        self.memory = memory;
        if changed {
            self.sync(si, &[], out);
        }
    }

    fn write(
        &mut self,
        si: usize,
        a: &Access,
        dev_off: u64,
        len: u64,
        end: u64,
        out: &mut Outcome,
    ) {
        // Up to 16 bytes at any alignment touch at most 5 words.
        let mut touched = [usize::MAX; 5];
        let mut n_touched = 0;
        let mut fx = std::mem::take(&mut self.fx);
        fx.clear();
        let mut first_reg: Option<usize> = None;
        let memory = std::mem::replace(&mut self.memory, Box::new(NoMemory));
        let env = self.env(si).with_memory(&*memory);
        let mut word = dev_off & !3;
        while word < end {
            match self.slots.get(si).and_then(|s| s.reg_at(word)) {
                None => self.note_unmodelled(si, word),
                Some(idx) => {
                    let old = self
                        .slots
                        .get(si)
                        .and_then(|s| s.shadow.get(idx))
                        .copied()
                        .unwrap_or(0);
                    let written = merge_bytes(old, word, dev_off, len, a.value);
                    if let Some(m) = self.slots.get(si).and_then(|s| self.models.get_mut(s.dev)) {
                        m.write_lanes(idx, written, byte_lanes(word, dev_off, len), &env, &mut fx);
                    }
                    if let Some(t) = touched.get_mut(n_touched) {
                        *t = idx;
                        n_touched += 1;
                    }
                    first_reg.get_or_insert(idx);
                }
            }
            word += 4;
        }
        drop(env);
        self.memory = memory;
        self.sync(si, touched.get(..n_touched).unwrap_or(&[]), out);
        if self.slots.get(si).is_some_and(|s| s.is_clock_controller) {
            if let Some(idx) = first_reg {
                self.update_gates(a, si, idx, out);
            }
            // A reset asserted or a clock stopped stops a counter now, not at its deadline.
            self.tick_models(a, out);
        }
        self.apply(si, a, &fx, out);
        self.fx = fx;
    }

    /// Carries out what a model call of slot `si` asked for.
    fn apply(&mut self, si: usize, a: &Access, fx: &Effects, out: &mut Outcome) {
        for fault in fx.faults() {
            self.fire(fault, a, out);
        }
        if let Some(slot) = self.slots.get(si) {
            let raise = fx
                .raised()
                .filter_map(|l| slot.lines.get(l).map(|l| l.set_pending));
            let lower = fx
                .lowered()
                .filter_map(|l| slot.lines.get(l).map(|l| l.clear_pending));
            for (phys, bit) in raise.chain(lower) {
                out.writes.push(MemWrite {
                    phys,
                    size: 4,
                    value: bit.into(),
                });
            }
        }
        out.writes.extend_from_slice(&fx.memory);
        if let Some(reset) = &fx.system_reset {
            let seq = self.next_seq();
            let device = self
                .slots
                .get(si)
                .map(|s| s.name.clone())
                .unwrap_or_default();
            out.system_reset = true;
            out.events.push(Event::WatchdogReset {
                seq,
                device,
                reason: reset.reason.clone(),
                step: self.step,
                armed_ns: reset.armed_ns,
                timeout_ns: reset.timeout_ns,
                due_ns: reset.due_ns,
                seen_ns: self.now_ns(),
            });
        }
        if let Some(step) = fx.marker {
            self.step = step;
            let seq = self.next_seq();
            out.events.push(Event::Marker {
                seq,
                step,
                vcpu: a.vcpu,
            });
        }
    }

    /// Writes back every register of slot `si` whose real value differs from what the
    /// window holds, and every register the guest's store overwrote.
    fn sync(&mut self, si: usize, touched: &[usize], out: &mut Outcome) {
        let (slots, models) = (&mut self.slots, &self.models);
        let Some(slot) = slots.get_mut(si) else {
            return;
        };
        if slot.gated() {
            return;
        }
        let Some(model) = models.get(slot.dev) else {
            return;
        };
        for (idx, (shadow, &off)) in slot.shadow.iter_mut().zip(&slot.offsets).enumerate() {
            let real = model.value(idx);
            if real != *shadow || touched.contains(&idx) {
                *shadow = real;
                out.writes.push(MemWrite {
                    phys: slot.guest_base + u64::from(off),
                    size: 4,
                    value: real.into(),
                });
            }
        }
    }

    /// After a write to the clock controller (slot `cc_si`, register `cc_reg`): move every
    /// device whose gate state changed, and say so.
    fn update_gates(&mut self, a: &Access, cc_si: usize, cc_reg: usize, out: &mut Outcome) {
        let (register, soc_addr) = match self.slots.get(cc_si) {
            Some(cc) => {
                let dev = self.soc.devices().get(cc.dev);
                let reg = dev.and_then(|d| d.registers.get(cc_reg));
                (
                    reg.map(|r| r.name.clone()).unwrap_or_default(),
                    dev.map_or(0, |d| d.base) + reg.map_or(0, |r| u64::from(r.offset)),
                )
            }
            None => return,
        };
        for si in 0..self.slots.len() {
            let Some(dev_index) = self.slots.get(si).map(|s| s.dev) else {
                continue;
            };
            let Some(dev) = self.soc.devices().get(dev_index) else {
                continue;
            };
            let Some(g) = &dev.gate else { continue };
            let cc = self.controller_values();
            let now = gate::state(g, &self.soc, cc);
            if self.slots.get(si).is_none_or(|s| s.state == now) {
                continue;
            }
            let reasons = if now == GateState::Open {
                Vec::new()
            } else {
                gate::reasons(dev, &g.rule, &self.soc, cc)
            };
            let device = dev.name.clone();
            let seq = self.next_seq();
            let step = self.step;
            let gated = now == GateState::BusError;
            let was_gated = self.slots.get(si).is_some_and(Slot::gated);
            // The window flips between the bus-error image and the real registers only
            // when the bus error starts or ends.
            let image = (gated != was_gated).then(|| self.visible_values(si, gated));
            let Some(slot) = self.slots.get_mut(si) else {
                continue;
            };
            slot.state = now;
            slot.gate_events += 1;
            slot.since = (now != GateState::Open).then(|| GatedSince {
                seq,
                pc: a.pc,
                step,
                register: register.clone(),
            });
            if let Some(values) = image {
                for ((shadow, &off), v) in slot.shadow.iter_mut().zip(&slot.offsets).zip(values) {
                    *shadow = v;
                    out.writes.push(MemWrite {
                        phys: slot.guest_base + u64::from(off),
                        size: 4,
                        value: v.into(),
                    });
                }
            }
            out.events.push(Event::Gate {
                seq,
                device,
                gated,
                state: now,
                reasons,
                pc: a.pc,
                vcpu: a.vcpu,
                step,
                register: register.clone(),
                soc_addr,
                frames: Vec::new(),
                unwind: "not-captured".to_string(),
            });
        }
    }

    /// An access to a device whose gate fails: an abort (`BusError`: a read sees the
    /// bus-error value, a write is undone) or a suspect access (it works; reported).
    fn gated_access(
        &mut self,
        si: usize,
        a: &Access,
        dev_off: u64,
        len: u64,
        class: GateState,
        out: &mut Outcome,
    ) {
        let seq = self.next_seq();
        let Some(slot) = self.slots.get(si) else {
            return;
        };
        let (device, base, gated_by, register) = match self.soc.devices().get(slot.dev) {
            Some(dev) => (
                dev.name.clone(),
                dev.base,
                dev.gate
                    .as_ref()
                    .map(|g| gate::reasons(dev, &g.rule, &self.soc, self.controller_values()))
                    .unwrap_or_default(),
                slot.reg_at(dev_off & !3)
                    .and_then(|idx| dev.registers.get(idx))
                    .map(|r| {
                        r.name_for_access((dev_off & 3) as u32, len as u32)
                            .to_string()
                    })
                    .unwrap_or_else(|| format!("unmodelled@{}", hex(dev_off))),
            ),
            None => (String::new(), 0, Vec::new(), String::new()),
        };
        let gated_since = slot.since.clone();
        let record = Abort {
            seq,
            device,
            register,
            offset: dev_off,
            soc_addr: base + dev_off,
            guest_addr: a.phys,
            access: if a.is_write {
                AccessKind::Write
            } else {
                AccessKind::Read
            },
            size: a.size,
            value: a.value,
            vcpu: a.vcpu,
            pc: a.pc,
            step: self.step,
            gated_by,
            gated_since,
            frames: Vec::new(),
            unwind: "not-captured".to_string(),
            diverted: false,
            serror: None,
        };
        if class != GateState::BusError {
            self.suspects += 1;
            out.events.push(Event::Suspect(record));
            return;
        }
        self.aborts += 1;
        out.aborted = true;
        if a.is_write {
            // Undo the store: the window goes back to the bus-error pattern.
            let mut done = 0;
            while done < len {
                let chunk = (len - done).min(8);
                let phys = a.phys.wrapping_add(done);
                let value = (0..chunk).fold(0u64, |acc, i| {
                    let byte = (self.bus_error >> (8 * (phys.wrapping_add(i) % 4))) & 0xff;
                    acc | (u64::from(byte) << (8 * i))
                });
                out.writes.push(MemWrite {
                    phys,
                    size: chunk as u8,
                    value,
                });
                done += chunk;
            }
        }
        out.events.push(Event::Abort(record));
    }

    fn fire(&mut self, fault: Fault, a: &Access, out: &mut Outcome) {
        if self.faults_fired.contains(&fault) || !self.faults_armed.contains(&fault) {
            return;
        }
        self.faults_fired.push(fault);
        let seq = self.next_seq();
        out.events.push(Event::FaultFired {
            seq,
            fault,
            pc: a.pc,
            step: self.step,
        });
    }

    pub fn start_event(&mut self, cfg: &PluginConfig) -> Event {
        Event::Start {
            seq: self.next_seq(),
            soc: self.soc.name().to_string(),
            window: self.window,
            on_abort: cfg.on_abort,
            temp_c: cfg.temp_c,
            adc: cfg.adc,
            faults: cfg.faults.clone(),
            user_space: cfg.user_space,
        }
    }

    pub fn summary_event(&mut self) -> Event {
        let accesses = self
            .slots
            .iter()
            .map(|s| (s.name.clone(), s.accesses))
            .collect();
        let gate_events = self
            .slots
            .iter()
            .filter(|s| {
                self.soc
                    .devices()
                    .get(s.dev)
                    .is_some_and(|d| d.gate.is_some())
            })
            .map(|s| (s.name.clone(), s.gate_events))
            .collect();
        let unmodelled = self
            .unmodelled_by_name()
            .map(|(name, off, n)| (format!("{name}@{}", hex(off)), n))
            .collect();
        Event::Summary {
            seq: self.next_seq(),
            accesses,
            aborts: self.aborts,
            suspects: self.suspects,
            faults_armed: self.faults_armed.clone(),
            faults_fired: self.faults_fired.clone(),
            channel_full: 0,
            unmodelled,
            gate_events,
            counters: self.counters(),
        }
    }

    /// The unmodelled-access counts as (device name, or `window`, offset, count).
    fn unmodelled_by_name(&self) -> impl Iterator<Item = (&str, u64, u64)> + '_ {
        self.unmodelled.iter().map(|(&(si, off), &n)| {
            let name = self.slots.get(si).map_or(WINDOW, |s| s.name.as_str());
            (name, off, n)
        })
    }

    fn counters(&self) -> BTreeMap<String, Value> {
        self.soc
            .devices()
            .iter()
            .zip(&self.models)
            .filter_map(|(d, m)| m.counters().map(|c| (d.name.clone(), c)))
            .collect()
    }

    /// The whole state, for a snapshot.
    pub fn save(&self) -> BusState {
        let devices = self
            .slots
            .iter()
            .map(|slot| {
                let model = self.models.get(slot.dev).map_or(Value::Null, |m| m.save());
                let state = DeviceState {
                    model,
                    window: slot.shadow.clone(),
                    since: slot.since.clone(),
                    accesses: slot.accesses,
                    gate_events: slot.gate_events,
                };
                (slot.name.clone(), state)
            })
            .collect();
        let unmodelled = self
            .unmodelled_by_name()
            .map(|(name, off, n)| (name.to_string(), off, n))
            .collect();
        BusState {
            seq: self.seq,
            step: self.step,
            aborts: self.aborts,
            suspects: self.suspects,
            faults_fired: self
                .faults_fired
                .iter()
                .map(|f| f.as_str().to_string())
                .collect(),
            unmodelled,
            devices,
            time_ns: self.now_ns(),
        }
    }

    /// Continues from `state` (what [`Bus::save`] of a bus of the same SoC description
    /// wrote). The error names the device or key that does not fit; the bus is then back at
    /// power-on.
    pub fn load(&mut self, state: &BusState) -> Result<(), String> {
        let result = self.load_all(state);
        if result.is_err() {
            self.reset();
        }
        result
    }

    fn load_all(&mut self, state: &BusState) -> Result<(), String> {
        if let Some(extra) = state
            .devices
            .keys()
            .find(|name| !self.slots.iter().any(|s| &s.name == *name))
        {
            return Err(format!(
                "device `{extra}` is in the state but not in the SoC description"
            ));
        }
        let mut faults_fired = Vec::new();
        for name in &state.faults_fired {
            let fault: Fault = name
                .parse()
                .map_err(|e| format!("faults_fired: `{name}`: {e}"))?;
            faults_fired.push(fault);
        }
        let mut unmodelled = BTreeMap::new();
        for (name, off, n) in &state.unmodelled {
            let si = if name == WINDOW {
                WINDOW_SLOT
            } else {
                self.slots
                    .iter()
                    .position(|s| &s.name == name)
                    .ok_or_else(|| format!("unmodelled: unknown device `{name}`"))?
            };
            unmodelled.insert((si, *off), *n);
        }
        for si in 0..self.slots.len() {
            let Some(slot) = self.slots.get(si) else {
                continue;
            };
            let name = slot.name.clone();
            let saved = state.devices.get(&name).ok_or_else(|| {
                format!("device `{name}` of the SoC description is not in the state")
            })?;
            if saved.window.len() != slot.shadow.len() {
                return Err(format!(
                    "device `{name}`: {} window values saved, it declares {} registers",
                    saved.window.len(),
                    slot.shadow.len()
                ));
            }
            if let Some(model) = self.models.get_mut(slot.dev) {
                model
                    .load(&saved.model)
                    .map_err(|e| format!("device `{name}`: {e}"))?;
            }
        }
        // Gates follow from the clock controller's restored values.
        self.settle_all();
        for slot in &mut self.slots {
            if let Some(saved) = state.devices.get(&slot.name) {
                slot.shadow = saved.window.clone();
                slot.since = saved.since.clone();
                slot.accesses = saved.accesses;
                slot.gate_events = saved.gate_events;
            }
        }
        self.seq = state.seq;
        self.step = state.step;
        self.aborts = state.aborts;
        self.suspects = state.suspects;
        self.faults_fired = faults_fired;
        self.unmodelled = unmodelled;
        self.time_offset = state.time_ns.wrapping_sub(self.clock.now_ns());
        Ok(())
    }

    /// Every model's real state (independent of gating).
    pub fn model_state(&self) -> ModelState {
        let registers = self
            .soc
            .devices()
            .iter()
            .zip(&self.models)
            .map(|(d, m)| (d.name.clone(), m.values().to_vec()))
            .collect();
        ModelState {
            registers,
            counters: self.counters(),
        }
    }
}

/// Which bytes of the 32-bit register at `word` an access of `len` bytes at `start` covers
/// (bit n = byte n).
fn byte_lanes(word: u64, start: u64, len: u64) -> u8 {
    (0..4u64)
        .filter(|b| {
            let addr = word + b;
            addr >= start && addr < start.saturating_add(len)
        })
        .fold(0, |m, b| m | (1 << b))
}

/// The 32-bit value a register at `word` receives from a store of `len` bytes of
/// `value` at `start`, when the window held `old` there before (sub-word stores merge).
fn merge_bytes(old: u32, word: u64, start: u64, len: u64, value: u64) -> u32 {
    let mut out = old;
    for b in 0..4u64 {
        let addr = word + b;
        if addr >= start && addr < start.saturating_add(len) {
            let pos = addr - start;
            let byte = if pos < 8 {
                (value >> (8 * pos)) & 0xff
            } else {
                0
            };
            let shift = 8 * b;
            out = (out & !(0xff << shift)) | ((byte as u32) << shift);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_lanes_name_the_bytes_an_access_covers() {
        assert_eq!(byte_lanes(0x10, 0x10, 4), 0xf);
        assert_eq!(byte_lanes(0x10, 0x13, 1), 0x8);
        assert_eq!(byte_lanes(0x10, 0x12, 2), 0xc);
        assert_eq!(byte_lanes(0x14, 0x12, 4), 0x3);
        assert_eq!(byte_lanes(0x10, 0x08, 16), 0xf);
    }

    #[test]
    fn merge_bytes_places_sub_word_stores() {
        assert_eq!(merge_bytes(0x1122_3344, 0, 0, 4, 0xaabb_ccdd), 0xaabb_ccdd);
        assert_eq!(merge_bytes(0x1122_3344, 0, 2, 2, 0xaabb), 0xaabb_3344);
        assert_eq!(merge_bytes(0x1122_3344, 4, 2, 4, 0xaabb_ccdd), 0x1122_aabb);
        assert_eq!(merge_bytes(0x1122_3344, 0, 1, 1, 0xee), 0x1122_ee44);
        assert_eq!(merge_bytes(0x1122_3344, 8, 0, 16, u64::MAX), 0);
    }

    #[test]
    fn bus_is_send() {
        fn send<T: Send>() {}
        send::<Bus>();
    }
}
