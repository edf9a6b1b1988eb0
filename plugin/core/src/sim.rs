//! A guest-memory stand-in for tests (here and in other crates): a sparse byte RAM for
//! the window, driven the way QEMU drives the plugin. A store lands in RAM first, then
//! the bus sees it and its memory writes are applied; a load reads RAM and then the bus
//! sees it. Writes outside the window (the GIC's set-pending registers) are recorded.
//! Time stands still unless the test moves it ([`Sim::advance`]).

use std::collections::HashMap;

use crate::bus::{Access, Bus, ManualClock, MemWrite, Outcome};
use crate::config::ModelConfig;
use crate::event::{Abort, Event};
use crate::soc::Soc;

pub struct Sim {
    pub bus: Bus,
    ram: HashMap<u64, u8>,
    out: Outcome,
    /// Every event so far, in order.
    pub events: Vec<Event>,
    /// Memory writes outside the window (interrupts), in order.
    pub irq_writes: Vec<MemWrite>,
    /// PC reported with the next accesses.
    pub pc: u64,
    pub vcpu: u32,
    /// Whether the last access aborted.
    pub last_aborted: bool,
    /// The bus's clock.
    pub clock: ManualClock,
    /// A device reset the machine (what the glue would end the run on).
    pub system_reset: bool,
}

impl Sim {
    /// A bus for `soc` with its reset image applied to a zeroed window.
    ///
    /// # Panics
    /// When a device's model cannot be built (a test's own SoC text is wrong).
    pub fn new(soc: Soc, cfg: &ModelConfig) -> Sim {
        let mut bus = match Bus::new(soc, cfg) {
            Ok(bus) => bus,
            Err(e) => panic!("{e}"),
        };
        let clock = ManualClock::default();
        bus.set_clock(Box::new(clock.clone()));
        let mut sim = Sim {
            bus,
            ram: HashMap::new(),
            out: Outcome::default(),
            events: Vec::new(),
            irq_writes: Vec::new(),
            pc: 0xffff_8000_0800_0000,
            vcpu: 0,
            last_aborted: false,
            clock,
            system_reset: false,
        };
        for w in sim.bus.reset_image() {
            sim.poke(w.phys, w.size, w.value);
        }
        sim
    }

    /// What a restored plugin sees: a fresh bus of `soc` built with `cfg` (the restored
    /// run's own arguments) that loads this bus's saved state, after a round trip through
    /// JSON as in a state file, over a copy of this RAM (QEMU migrates the window). No
    /// reset image is written: the migrated window is the guest's.
    ///
    /// # Panics
    /// When the state does not load (a test's own error).
    pub fn restored(&self, soc: Soc, cfg: &ModelConfig) -> Sim {
        let mut bus = match Bus::new(soc, cfg) {
            Ok(bus) => bus,
            Err(e) => panic!("{e}"),
        };
        let clock = ManualClock::default();
        bus.set_clock(Box::new(clock.clone()));
        let text = match serde_json::to_string(&self.bus.save()) {
            Ok(text) => text,
            Err(e) => panic!("{e}"),
        };
        let state = match serde_json::from_str(&text) {
            Ok(state) => state,
            Err(e) => panic!("{e}"),
        };
        if let Err(e) = bus.load(&state) {
            panic!("{e}");
        }
        Sim {
            bus,
            ram: self.ram.clone(),
            out: Outcome::default(),
            events: Vec::new(),
            irq_writes: Vec::new(),
            pc: self.pc,
            vcpu: self.vcpu,
            last_aborted: false,
            clock,
            system_reset: false,
        }
    }

    /// Moves the bus time on by `ns` and, as the glue does at its next callback, lets the
    /// models do what fell due.
    pub fn advance(&mut self, ns: u64) {
        self.clock.advance(ns);
        if self.bus.deadline().is_some_and(|d| d <= self.bus.now_ns()) {
            self.bus.tick(&mut self.out);
            self.take_outcome();
        }
    }

    /// Raw store into the simulated RAM, without the bus.
    pub fn poke(&mut self, phys: u64, size: u8, value: u64) {
        for i in 0..u64::from(size.min(8)) {
            self.ram
                .insert(phys.wrapping_add(i), ((value >> (8 * i)) & 0xff) as u8);
        }
    }

    /// Raw load from the simulated RAM, without the bus.
    pub fn peek(&self, phys: u64, size: u8) -> u64 {
        (0..u64::from(size.min(8))).fold(0u64, |acc, i| {
            let b = self.ram.get(&phys.wrapping_add(i)).copied().unwrap_or(0);
            acc | (u64::from(b) << (8 * i))
        })
    }

    fn run(&mut self, access: Access) {
        self.bus.access(&access, &mut self.out);
        self.last_aborted = self.out.aborted;
        self.take_outcome();
    }

    fn take_outcome(&mut self) {
        self.system_reset |= self.out.system_reset;
        let writes = std::mem::take(&mut self.out.writes);
        for w in &writes {
            if !self.bus.in_window(w.phys) {
                self.irq_writes.push(*w);
            }
            self.poke(w.phys, w.size, w.value);
        }
        self.out.writes = writes;
        self.events.append(&mut self.out.events);
    }

    /// A guest load: returns what the guest would see.
    pub fn read(&mut self, phys: u64, size: u8) -> u64 {
        let value = self.peek(phys, size);
        self.run(Access {
            phys,
            size,
            is_write: false,
            value,
            vcpu: self.vcpu,
            pc: self.pc,
        });
        value
    }

    /// A guest store.
    pub fn write(&mut self, phys: u64, size: u8, value: u64) {
        self.poke(phys, size, value);
        self.run(Access {
            phys,
            size,
            is_write: true,
            value,
            vcpu: self.vcpu,
            pc: self.pc,
        });
    }

    pub fn read32(&mut self, phys: u64) -> u32 {
        self.read(phys, 4) as u32
    }

    pub fn write32(&mut self, phys: u64, value: u32) {
        self.write(phys, 4, value.into());
    }

    /// The guest-physical address of register `reg` of device `device`.
    pub fn addr(&self, device: &str, reg: &str) -> u64 {
        let soc = self.bus.soc();
        let Some(dev) = soc.device(device) else {
            return u64::MAX;
        };
        let off = dev.register(reg).map_or(u64::MAX, |r| u64::from(r.offset));
        soc.window().guest_addr(dev.base).wrapping_add(off)
    }

    pub fn r(&mut self, device: &str, reg: &str) -> u32 {
        let a = self.addr(device, reg);
        self.read32(a)
    }

    pub fn w(&mut self, device: &str, reg: &str, value: u32) {
        let a = self.addr(device, reg);
        self.write32(a, value);
    }

    /// Abort events so far.
    pub fn aborts(&self) -> Vec<&Abort> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Abort(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// Suspect events so far.
    pub fn suspects(&self) -> Vec<&Abort> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::Suspect(a) => Some(a),
                _ => None,
            })
            .collect()
    }

    /// Takes the interrupt writes recorded so far.
    pub fn take_irqs(&mut self) -> Vec<MemWrite> {
        std::mem::take(&mut self.irq_writes)
    }
}
