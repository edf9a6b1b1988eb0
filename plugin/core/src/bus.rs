//! The bus: decodes a guest access in the window, checks the device's gate, runs the
//! model and returns the memory writes and events that follow from it.
//!
//! QEMU reports an access after it has landed in the RAM window, so every value a later
//! read must see is written back before [`Bus::access`] returns: the register's real
//! value after a write (a write-enable-masked CLK_ON write must not stay in RAM as
//! written), side effects (CLK_MON, RST_MON, ADSTS, ADCR), the bus-error value over a
//! device that just became gated, and the GIC set-pending write of an interrupt. The bus
//! keeps a shadow of what the window holds for each declared register, so it writes
//! back exactly the registers whose visible value changed.

use std::collections::BTreeMap;

use crate::adc::{Adc, AdcContext};
use crate::config::{Fault, ModelConfig, PluginConfig};
use crate::cpg::Cpg;
use crate::event::{Abort, AccessKind, AdcCounters, Event, GatedSince};
use crate::gate;
use crate::mailbox::Mailbox;
use crate::soc::{hex, Device, Layout, ModelKind, Soc, Window};
use crate::tsu::Tsu;

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

/// A little-endian store of `size` bytes at guest-physical `phys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemWrite {
    pub phys: u64,
    pub size: u8,
    pub value: u64,
}

/// What the glue must do after an access: apply `writes` in order, report `events`.
#[derive(Debug, Default)]
pub struct Outcome {
    pub writes: Vec<MemWrite>,
    pub events: Vec<Event>,
    /// The access hit a gated device.
    pub aborted: bool,
}

impl Outcome {
    pub fn clear(&mut self) {
        self.writes.clear();
        self.events.clear();
        self.aborted = false;
    }
}

/// What a model write asks of the bus.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    /// Pulse the device's interrupt.
    pub irq: bool,
    /// Armed faults that changed the model's behaviour (one bit per [`Fault::ALL`] entry;
    /// one ADM0 write can trip both ADC faults).
    faults: u8,
    /// The mailbox STEP register was written.
    pub step: Option<u32>,
}

impl Effects {
    pub fn fire(&mut self, fault: Fault) {
        self.faults |= 1 << fault.index();
    }

    pub fn fired(&self, fault: Fault) -> bool {
        self.faults & (1 << fault.index()) != 0
    }

    pub fn faults(&self) -> impl Iterator<Item = Fault> + '_ {
        Fault::ALL.into_iter().filter(|f| self.fired(*f))
    }

    fn merge(&mut self, other: Effects) {
        self.irq |= other.irq;
        self.faults |= other.faults;
        if other.step.is_some() {
            self.step = other.step;
        }
    }
}

/// Snapshot of every model's state (register values and counters), for tests and checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelState {
    /// Real register values by device name, in declaration order.
    pub registers: BTreeMap<String, Vec<u32>>,
    pub adc: Option<AdcCounters>,
}

/// Runtime view of one device in the window.
#[derive(Debug)]
struct Slot {
    /// Index into `soc.devices()`.
    dev: usize,
    model: ModelKind,
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
    gated: bool,
    since: Option<GatedSince>,
    accesses: u64,
    gate_events: u64,
}

impl Slot {
    fn reg_at(&self, offset: u64) -> Option<usize> {
        let off = u32::try_from(offset).ok()?;
        self.lookup
            .binary_search_by_key(&off, |&(o, _)| o)
            .ok()
            .and_then(|i| self.lookup.get(i))
            .map(|&(_, idx)| idx)
    }
}

/// The device models, apart from the bookkeeping so both can be borrowed at once.
struct Models {
    cpg: Cpg,
    adc: Option<Adc>,
    tsu: Option<Tsu>,
    mailbox: Option<Mailbox>,
}

impl Models {
    #[inline]
    fn value(&self, model: ModelKind, idx: usize) -> u32 {
        match model {
            ModelKind::Cpg => self.cpg.value(idx),
            ModelKind::Adc => self.adc.as_ref().map_or(0, |m| m.value(idx)),
            ModelKind::Tsu => self.tsu.as_ref().map_or(0, |m| m.value(idx)),
            ModelKind::Mailbox => self.mailbox.as_ref().map_or(0, |m| m.value(idx)),
        }
    }

    fn values(&self, model: ModelKind) -> Vec<u32> {
        match model {
            ModelKind::Cpg => self.cpg.values().to_vec(),
            ModelKind::Adc => self
                .adc
                .as_ref()
                .map(|m| m.values().to_vec())
                .unwrap_or_default(),
            ModelKind::Tsu => self
                .tsu
                .as_ref()
                .map(|m| m.values().to_vec())
                .unwrap_or_default(),
            ModelKind::Mailbox => self
                .mailbox
                .as_ref()
                .map(|m| m.values().to_vec())
                .unwrap_or_default(),
        }
    }
}

/// Key of the unmodelled-access counter: window bytes outside every device use
/// `WINDOW_SLOT`.
const WINDOW_SLOT: usize = usize::MAX;

pub struct Bus {
    soc: Soc,
    window: Window,
    bus_error: u32,
    slots: Vec<Slot>,
    models: Models,
    /// GICD_ISPENDR address and bit of the ADC's SPI.
    adc_irq: Option<(u64, u32)>,
    seq: u64,
    step: u32,
    aborts: u64,
    faults_armed: Vec<Fault>,
    faults_fired: Vec<Fault>,
    unmodelled: BTreeMap<(usize, u64), u64>,
}

impl Bus {
    pub fn new(soc: Soc, cfg: &ModelConfig) -> Bus {
        let window = soc.window();
        let cpg = Cpg::new(&soc, cfg);
        let mut adc = None;
        let mut tsu = None;
        let mut mailbox = None;
        let mut adc_irq = None;
        for dev in soc.devices() {
            match &dev.layout {
                Layout::Cpg => {}
                Layout::Adc(l) => {
                    adc = Some(Adc::new(
                        dev.registers.clone(),
                        l.clone(),
                        soc.temperature_channel(),
                        cfg,
                    ));
                    adc_irq = dev.spi.map(|spi| soc.gic().set_pending(spi));
                }
                Layout::Tsu(l) => tsu = Some(Tsu::new(dev.registers.clone(), l.clone(), cfg)),
                Layout::Mailbox(l) => {
                    mailbox = Some(Mailbox::new(dev.registers.clone(), l.clone()))
                }
            }
        }
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
                    model: d.model,
                    name: d.name.clone(),
                    window_off: d.base.wrapping_sub(window.soc_base),
                    size: d.size,
                    guest_base: window.guest_addr(d.base),
                    lookup,
                    offsets: d.registers.iter().map(|r| r.offset).collect(),
                    shadow: vec![0; d.registers.len()],
                    gated: false,
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
            models: Models {
                cpg,
                adc,
                tsu,
                mailbox,
            },
            adc_irq,
            seq: 0,
            step: 0,
            aborts: 0,
            faults_armed,
            faults_fired: Vec::new(),
            unmodelled: BTreeMap::new(),
        };
        for si in 0..bus.slots.len() {
            let gated = bus.gate_rule_holds_not(si);
            let values: Vec<u32> = bus.visible_values(si, gated);
            if let Some(slot) = bus.slots.get_mut(si) {
                slot.gated = gated;
                slot.shadow = values;
            }
        }
        bus
    }

    pub fn soc(&self) -> &Soc {
        &self.soc
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

    /// Whether device `name` is gated now; None for an unknown device.
    pub fn is_gated(&self, name: &str) -> Option<bool> {
        self.slots.iter().find(|s| s.name == name).map(|s| s.gated)
    }

    /// The sequence number for the next event (events the glue creates use it too).
    pub fn next_seq(&mut self) -> u64 {
        let s = self.seq;
        self.seq += 1;
        s
    }

    fn device(&self, si: usize) -> Option<&Device> {
        self.slots
            .get(si)
            .and_then(|s| self.soc.devices().get(s.dev))
    }

    /// True when the device of slot `si` has a gate rule that fails now.
    fn gate_rule_holds_not(&self, si: usize) -> bool {
        self.device(si)
            .and_then(|d| d.gate.as_ref())
            .is_some_and(|rule| gate::is_gated(rule, &self.soc, &self.models.cpg))
    }

    /// What the window must hold for each register of slot `si`.
    fn visible_values(&self, si: usize, gated: bool) -> Vec<u32> {
        let Some(slot) = self.slots.get(si) else {
            return Vec::new();
        };
        (0..slot.offsets.len())
            .map(|idx| {
                if gated {
                    self.bus_error
                } else {
                    self.models.value(slot.model, idx)
                }
            })
            .collect()
    }

    /// Every modelled register's value (the bus-error value over gated devices), to
    /// write into the zeroed RAM window before the guest runs.
    pub fn reset_image(&self) -> Vec<MemWrite> {
        let mut out = Vec::new();
        for slot in &self.slots {
            for (idx, &off) in slot.offsets.iter().enumerate() {
                let value = if slot.gated {
                    self.bus_error
                } else {
                    self.models.value(slot.model, idx)
                };
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
        let dev_off = off - slot.window_off;
        let end = dev_off.saturating_add(len).min(slot.size);
        if slot.gated {
            self.abort(si, access, dev_off, len, out);
        } else if access.is_write {
            self.write(si, access, dev_off, len, end, out);
        } else {
            self.note_undeclared(si, dev_off, end);
        }
    }

    fn note_unmodelled(&mut self, si: usize, offset: u64) {
        *self.unmodelled.entry((si, offset)).or_insert(0) += 1;
    }

    fn note_undeclared(&mut self, si: usize, dev_off: u64, end: u64) {
        let mut word = dev_off & !3;
        while word < end {
            if self.slots.get(si).is_some_and(|s| s.reg_at(word).is_none()) {
                self.note_unmodelled(si, word);
            }
            word += 4;
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
        let Some(model) = self.slots.get(si).map(|s| s.model) else {
            return;
        };
        // Up to 16 bytes at any alignment touch at most 5 words.
        let mut touched = [usize::MAX; 5];
        let mut n_touched = 0;
        let mut fx = Effects::default();
        let mut first_reg: Option<usize> = None;
        let mut word = dev_off & !3;
        while word < end {
            let reg = self.slots.get(si).and_then(|s| s.reg_at(word));
            match reg {
                None => self.note_unmodelled(si, word),
                Some(idx) => {
                    let old = self
                        .slots
                        .get(si)
                        .and_then(|s| s.shadow.get(idx))
                        .copied()
                        .unwrap_or(0);
                    let written = merge_bytes(old, word, dev_off, len, a.value);
                    fx.merge(self.model_write(model, idx, written));
                    if let Some(t) = touched.get_mut(n_touched) {
                        *t = idx;
                        n_touched += 1;
                    }
                    first_reg.get_or_insert(idx);
                }
            }
            word += 4;
        }
        self.sync(si, touched.get(..n_touched).unwrap_or(&[]), out);

        for fault in fx.faults() {
            self.fire(fault, a, out);
        }
        if model == ModelKind::Cpg {
            if let Some(idx) = first_reg {
                self.update_gates(a, idx, out);
            }
        }
        if fx.irq {
            if let Some((addr, bit)) = self.adc_irq.filter(|_| model == ModelKind::Adc) {
                out.writes.push(MemWrite {
                    phys: addr,
                    size: 4,
                    value: bit.into(),
                });
            }
        }
        if let Some(step) = fx.step {
            self.step = step;
            let seq = self.next_seq();
            out.events.push(Event::Marker {
                seq,
                step,
                vcpu: a.vcpu,
            });
        }
    }

    fn adc_context(&self) -> AdcContext {
        let blocked = self.soc.device_by_model(ModelKind::Adc).and_then(|dev| {
            dev.conversion
                .as_ref()
                .and_then(|rule| gate::first_reason(dev, rule, &self.soc, &self.models.cpg))
        });
        let tsu_code = self.models.tsu.as_ref();
        AdcContext {
            blocked,
            tsu_code: tsu_code.map_or(crate::tsu::OUTPUT_OFF_CODE, |t| t.channel_code()),
        }
    }

    fn model_write(&mut self, model: ModelKind, idx: usize, value: u32) -> Effects {
        let ctx = if model == ModelKind::Adc {
            Some(self.adc_context())
        } else {
            None
        };
        let m = &mut self.models;
        match (model, ctx) {
            (ModelKind::Cpg, _) => m.cpg.write(idx, value),
            (ModelKind::Adc, Some(ctx)) => m
                .adc
                .as_mut()
                .map(|a| a.write(idx, value, &ctx))
                .unwrap_or_default(),
            (ModelKind::Adc, None) => Effects::default(),
            (ModelKind::Tsu, _) => m
                .tsu
                .as_mut()
                .map(|t| t.write(idx, value))
                .unwrap_or_default(),
            (ModelKind::Mailbox, _) => m
                .mailbox
                .as_mut()
                .map(|b| b.write(idx, value))
                .unwrap_or_default(),
        }
    }

    /// Writes back every register of slot `si` whose real value differs from what the
    /// window holds, and every register the guest's store overwrote.
    fn sync(&mut self, si: usize, touched: &[usize], out: &mut Outcome) {
        let (slots, models) = (&mut self.slots, &self.models);
        let Some(slot) = slots.get_mut(si) else {
            return;
        };
        for (idx, (shadow, &off)) in slot.shadow.iter_mut().zip(&slot.offsets).enumerate() {
            let real = models.value(slot.model, idx);
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

    /// After a CPG write: gate or ungate every device whose rule changed.
    fn update_gates(&mut self, a: &Access, cpg_reg: usize, out: &mut Outcome) {
        for si in 0..self.slots.len() {
            let Some(dev) = self.device(si) else { continue };
            let Some(rule) = &dev.gate else { continue };
            let now = gate::is_gated(rule, &self.soc, &self.models.cpg);
            if self.slots.get(si).is_none_or(|s| s.gated == now) {
                continue;
            }
            let reasons = if now {
                gate::reasons(dev, rule, &self.soc, &self.models.cpg)
            } else {
                Vec::new()
            };
            let device = dev.name.clone();
            let cpg_regs = self.models.cpg.registers();
            let register = cpg_regs
                .get(cpg_reg)
                .map(|r| r.name.clone())
                .unwrap_or_default();
            let cpg_offset = cpg_regs.get(cpg_reg).map_or(0, |r| u64::from(r.offset));
            let cpg_base = self
                .soc
                .device_by_model(ModelKind::Cpg)
                .map_or(0, |d| d.base);
            let seq = self.next_seq();
            let step = self.step;
            let bus_error = self.bus_error;
            let (slots, models) = (&mut self.slots, &self.models);
            let Some(slot) = slots.get_mut(si) else {
                continue;
            };
            slot.gated = now;
            slot.gate_events += 1;
            slot.since = now.then(|| GatedSince {
                seq,
                pc: a.pc,
                step,
                register: register.clone(),
            });
            for (idx, (shadow, &off)) in slot.shadow.iter_mut().zip(&slot.offsets).enumerate() {
                let v = if now {
                    bus_error
                } else {
                    models.value(slot.model, idx)
                };
                *shadow = v;
                out.writes.push(MemWrite {
                    phys: slot.guest_base + u64::from(off),
                    size: 4,
                    value: v.into(),
                });
            }
            out.events.push(Event::Gate {
                seq,
                device,
                gated: now,
                reasons,
                pc: a.pc,
                vcpu: a.vcpu,
                step,
                register,
                soc_addr: cpg_base + cpg_offset,
                frames: Vec::new(),
                unwind: "not-captured".to_string(),
            });
        }
    }

    fn abort(&mut self, si: usize, a: &Access, dev_off: u64, len: u64, out: &mut Outcome) {
        let seq = self.next_seq();
        self.aborts += 1;
        out.aborted = true;
        let (device, base, gated_by) = match self.device(si) {
            Some(dev) => (
                dev.name.clone(),
                dev.base,
                dev.gate
                    .as_ref()
                    .map(|rule| gate::reasons(dev, rule, &self.soc, &self.models.cpg))
                    .unwrap_or_default(),
            ),
            None => (String::new(), 0, Vec::new()),
        };
        let slot = self.slots.get(si);
        let register = slot
            .and_then(|s| s.reg_at(dev_off & !3))
            .and_then(|idx| self.device(si).and_then(|d| d.registers.get(idx)))
            .map(|r| r.name.clone())
            .unwrap_or_else(|| format!("unmodelled@{}", hex(dev_off)));
        let gated_since = slot.and_then(|s| s.since.clone());
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
        out.events.push(Event::Abort(Abort {
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
        }));
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
            .unmodelled
            .iter()
            .map(|(&(si, off), &n)| {
                let name = self.slots.get(si).map_or("window", |s| s.name.as_str());
                (format!("{name}@{}", hex(off)), n)
            })
            .collect();
        Event::Summary {
            seq: self.next_seq(),
            accesses,
            aborts: self.aborts,
            faults_armed: self.faults_armed.clone(),
            faults_fired: self.faults_fired.clone(),
            channel_full: 0,
            unmodelled,
            gate_events,
            adc: self
                .models
                .adc
                .as_ref()
                .map(|a| a.counters().clone())
                .unwrap_or_default(),
        }
    }

    /// Every model's real state (independent of gating).
    pub fn model_state(&self) -> ModelState {
        let registers = self
            .slots
            .iter()
            .map(|s| (s.name.clone(), self.models.values(s.model)))
            .collect();
        ModelState {
            registers,
            adc: self.models.adc.as_ref().map(|a| a.counters().clone()),
        }
    }

    /// The ADC code the TSU drives while enabled (for reports and tests).
    pub fn tsu_code(&self) -> Option<u16> {
        self.models.tsu.as_ref().map(|t| t.enabled_code())
    }
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
