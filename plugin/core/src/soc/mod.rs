//! The SoC description: YAML schema (see socs/SCHEMA.md), loader, validation and the
//! device-tree fragment generated from it.
//!
//! Everything the rest of the crate knows about addresses, registers, clocks, resets,
//! gating rules and DT nodes comes from here; models attach behaviour to names.

mod dt;
mod spec;

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::regs::{Behaviour, Field, RegAccess, Register};

pub use spec::{BusErrorWhen, TripKind};

/// The model a device without `model:` gets: registers and declared field behaviour only.
pub const GENERIC_MODEL: &str = "generic";

/// The compatible of Linux's generic SRAM driver, which exports `sram_export` partitions.
const SRAM_COMPATIBLE: &str = "mmio-sram";
/// Properties the generator writes for a `sram_export` node.
const SRAM_GENERATED: [&str; 4] = ["#address-cells", "#size-cells", "ranges", "no-memory-wc"];

/// Where the SoC's peripheral block sits in the guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Window {
    pub guest_base: u64,
    pub soc_base: u64,
    pub size: u64,
}

impl Window {
    /// The SoC address of a guest-physical address inside the window.
    pub fn soc_addr(&self, phys: u64) -> u64 {
        phys.wrapping_sub(self.guest_base)
            .wrapping_add(self.soc_base)
    }

    /// The guest-physical address of a SoC address inside the window.
    pub fn guest_addr(&self, soc_addr: u64) -> u64 {
        soc_addr
            .wrapping_sub(self.soc_base)
            .wrapping_add(self.guest_base)
    }
}

/// Errors of loading a SoC description. Display: `<file>: <yaml path>: <what is wrong>`.
#[derive(Debug, thiserror::Error)]
pub enum SocError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        #[source]
        source: std::io::Error,
    },
    /// The YAML does not match the schema (unknown or missing key, wrong type); serde_yaml's
    /// message already starts with the YAML path and ends with the line and column.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
    #[error("{file}: {path}: {message}")]
    Invalid {
        file: String,
        path: String,
        message: String,
    },
}

/// The GIC the stand-in SPIs are raised on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Gic {
    pub distributor: u64,
    pub spi_intid_base: u32,
    pub num_spis: u32,
}

impl Gic {
    /// Address and value of the GICD_ICPENDR<n> write that withdraws a pending `spi`.
    pub fn clear_pending(&self, spi: u32) -> (u64, u32) {
        let (set, bit) = self.set_pending(spi);
        (set.wrapping_add(0x80), bit)
    }

    /// GIC INTID of an SPI.
    pub fn intid(&self, spi: u32) -> u32 {
        self.spi_intid_base.saturating_add(spi)
    }

    /// Address and value of the GICD_ISPENDR<n> write that makes `spi` pending.
    pub fn set_pending(&self, spi: u32) -> (u64, u32) {
        let intid = self.intid(spi);
        let reg = self
            .distributor
            .wrapping_add(0x200 + 4 * u64::from(intid / 32));
        (reg, 1u32 << (intid % 32))
    }
}

/// The board's EXTAL oscillator (a fixed clock in the DT).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Extal {
    pub name: String,
    pub node: String,
    pub label: String,
    pub frequency: u32,
}

/// One bit of a CPG register: `reg` indexes the CPG device's registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct BitRef {
    pub reg: usize,
    pub offset: u32,
    pub bit: u32,
}

impl BitRef {
    pub fn mask(&self) -> u32 {
        1u32 << (self.bit & 31)
    }
}

/// Bits of a CPG register.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct MaskRef {
    pub reg: usize,
    pub offset: u32,
    pub mask: u32,
}

/// A module clock: CLK_ON bit, its CLK_MON bit, its MSTOP bits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Clock {
    pub name: String,
    pub id: u32,
    pub on: BitRef,
    pub mon: BitRef,
    pub mstop: Option<MaskRef>,
    pub critical: bool,
}

/// A module reset: RST bit (1 = released) and its RST_MON bit (1 = in reset).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Reset {
    pub name: String,
    pub id: u32,
    pub rst: BitRef,
    pub mon: BitRef,
    pub critical: bool,
}

/// Clocks that must run (with their MSTOP released) and resets that must be released.
/// Indices point into [`Soc::clocks`] and [`Soc::resets`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub clocks: Vec<usize>,
    pub resets: Vec<usize>,
}

/// When register access to a device is legal, and which failures the bus answers with an
/// error (see [`BusErrorWhen`]).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Gate {
    pub rule: Rule,
    pub bus_error: BusErrorWhen,
}

/// The device whose registers hold every clock's and reset's control and monitor bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ClockController {
    /// Index into [`Soc::devices`].
    pub device: usize,
    pub mon_offset: u32,
}

/// One interrupt line of a device: its name, the SoC's SPI it stands for, and the `virt`
/// SPI that carries it (declared, or allocated from `gic.free_spis`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Interrupt {
    pub name: String,
    pub soc_spi: Option<u32>,
    pub spi: u32,
    /// DT interrupt type cell (1 = edge rising, 4 = level high).
    pub flags: u32,
    /// The SPI was allocated, not declared.
    pub allocated: bool,
}

/// A clock reference in a DT `clocks` property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtClock {
    Extal,
    Module(usize),
    /// One of the SoC's `fixed_clocks`, by index.
    Fixed(usize),
    /// An output of another device's clock provider: `<&label cell>` (YAML `device:cell`).
    Provider {
        label: String,
        cell: u32,
    },
}

/// A reset reference in a DT `resets` property.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DtReset {
    /// One of the SoC's `resets` (the CPG's), by index: `<&cpg id>`.
    Cpg(usize),
    /// Line `cell` of another device's reset controller: `<&label cell>` (YAML
    /// `device:cell`, the usbphy-ctrl's `<&phyrst 0>`).
    Provider { label: String, cell: u32 },
}

/// A DT child node of a device that is no device of its own (a regulator the device's
/// driver registers from it): `[label:] node { properties; };`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtChild {
    pub node: String,
    pub label: Option<String>,
    pub properties: Vec<String>,
}

/// DT node data of a device (validated; references resolved).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DtNode {
    pub node: String,
    pub label: String,
    pub compatible: Vec<String>,
    pub clocks: Vec<DtClock>,
    pub clock_names: Vec<String>,
    pub resets: Vec<DtReset>,
    pub reset_names: Vec<String>,
    /// Label of the power-domain provider.
    pub power_domains: Option<String>,
    pub irq_flags: Option<u32>,
    /// Emit `interrupt-names` from the device's interrupt names.
    pub interrupt_names: bool,
    /// (provider label, channel).
    pub io_channels: Vec<(String, u32)>,
    pub io_channel_names: Vec<String>,
    pub module_clock_cell: Option<u32>,
    pub channel_nodes: bool,
    /// `mmio-sram`: name of the one child partition that covers the device and is
    /// exported to sysfs (`<phys>.sram`).
    pub sram_export: Option<String>,
    /// `reg` ranges as (offset from the device base, size); empty: the whole device.
    pub regions: Vec<(u64, u64)>,
    pub properties: Vec<String>,
    pub children: Vec<DtChild>,
}

/// One device in the window.
#[derive(Clone, Debug)]
pub struct Device {
    pub name: String,
    /// How reasons name the device ("ADC").
    pub label: String,
    /// The registry name of the device's model (`generic` when the YAML names none).
    pub model: String,
    /// SoC address.
    pub base: u64,
    pub size: u64,
    pub interrupts: Vec<Interrupt>,
    /// Number of channels (ADC inputs, DMA channels); 0 when not declared.
    pub channels: u32,
    pub registers: Vec<Register>,
    /// None: never gated (the clock controller, the mailbox).
    pub gate: Option<Gate>,
    /// Named conditions a model may ask about (an ADC conversion needs its converter clock).
    pub conditions: Vec<(String, Rule)>,
    /// Named inputs wired to another device's output: (input name, device index).
    pub inputs: Vec<(String, usize)>,
    pub dt: Option<DtNode>,
    /// The targets on the device's I2C bus (an I2C controller's EEPROM), in YAML order.
    pub i2c_targets: Vec<I2cTarget>,
}

/// The only I2C target model: an AT24-compatible EEPROM.
pub const AT24_MODEL: &str = "at24";

/// A device on an I2C controller's bus; the controller's model carries it out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I2cTarget {
    /// DT node name (`eeprom`), unique on the bus.
    pub name: String,
    /// What it is: [`AT24_MODEL`].
    pub model: String,
    /// 7-bit address.
    pub address: u8,
    /// Bytes of memory: a power of two, 128..=256 (one word-address byte) or 4096..=65536
    /// (two); the 24c04..24c16, which take address bits from the I2C address, are not modelled.
    pub size: u32,
    /// Write page: a write wraps inside its page (AT24 page write); a power of two <= size.
    pub page_size: u32,
    /// The memory at power-on: `contents`' bytes, then `fill`.
    pub contents: Vec<u8>,
    /// DT child node: label, compatible, extra properties (`reg` and `pagesize` are written).
    pub dt: Option<I2cTargetDt>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct I2cTargetDt {
    pub label: Option<String>,
    pub compatible: Vec<String>,
    pub properties: Vec<String>,
}

impl I2cTarget {
    /// Word-address bytes the EEPROM takes after its I2C address.
    pub fn address_bytes(&self) -> u32 {
        if self.size > 256 {
            2
        } else {
            1
        }
    }
}

impl Device {
    pub fn register(&self, name: &str) -> Option<&Register> {
        self.registers.iter().find(|r| r.name == name)
    }

    /// Index of the register called `name`.
    pub fn register_index(&self, name: &str) -> Option<usize> {
        self.registers.iter().position(|r| r.name == name)
    }
}

/// A thermal zone of the DT fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ThermalZone {
    pub name: String,
    pub label: String,
    pub sensor_label: String,
    pub polling_delay_passive: u32,
    pub polling_delay: u32,
    pub trips: Vec<Trip>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trip {
    pub name: String,
    pub label: Option<String>,
    pub temperature: i32,
    pub hysteresis: u32,
    pub kind: TripKind,
}

/// A loaded and validated SoC description.
#[derive(Clone, Debug)]
pub struct Soc {
    name: String,
    origin: String,
    window: Window,
    bus_error: u32,
    gic: Gic,
    extal: Extal,
    fixed_clocks: Vec<Extal>,
    clock_controller: Option<ClockController>,
    clocks: Vec<Clock>,
    resets: Vec<Reset>,
    devices: Vec<Device>,
    thermal_zones: Vec<ThermalZone>,
}

impl Soc {
    /// Reads, parses and validates a SoC description file.
    pub fn load(path: &Path) -> Result<Soc, SocError> {
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| SocError::Io {
            file: origin.clone(),
            source,
        })?;
        Soc::parse(&text, &origin)
    }

    /// Parses and validates YAML text; `origin` names the file in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Soc, SocError> {
        let spec: spec::SocSpec = serde_yaml::from_str(text).map_err(|e| SocError::Syntax {
            file: origin.to_string(),
            message: e.to_string(),
        })?;
        Validator { origin }.soc(spec)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file the description came from (as given to `load`/`parse`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    pub fn window(&self) -> Window {
        self.window
    }

    pub fn bus_error(&self) -> u32 {
        self.bus_error
    }

    pub fn gic(&self) -> Gic {
        self.gic
    }

    pub fn extal(&self) -> &Extal {
        &self.extal
    }

    /// The board's further fixed-rate clocks (`fixed_clocks`), in declaration order.
    pub fn fixed_clocks(&self) -> &[Extal] {
        &self.fixed_clocks
    }

    pub fn clocks(&self) -> &[Clock] {
        &self.clocks
    }

    pub fn resets(&self) -> &[Reset] {
        &self.resets
    }

    pub fn devices(&self) -> &[Device] {
        &self.devices
    }

    pub fn device(&self, name: &str) -> Option<&Device> {
        self.devices.iter().find(|d| d.name == name)
    }

    pub fn clock(&self, name: &str) -> Option<&Clock> {
        self.clocks.iter().find(|c| c.name == name)
    }

    pub fn reset(&self, name: &str) -> Option<&Reset> {
        self.resets.iter().find(|r| r.name == name)
    }

    pub fn thermal_zones(&self) -> &[ThermalZone] {
        &self.thermal_zones
    }

    /// Index of the device called `name` in [`Soc::devices`].
    pub fn device_index(&self, name: &str) -> Option<usize> {
        self.devices.iter().position(|d| d.name == name)
    }

    /// The devices whose model is `model`, in declaration order.
    pub fn devices_with_model<'a>(&'a self, model: &'a str) -> impl Iterator<Item = &'a Device> {
        self.devices.iter().filter(move |d| d.model == model)
    }

    /// The device that holds the clock and reset bits, if the description has clocks.
    pub fn clock_controller(&self) -> Option<ClockController> {
        self.clock_controller
    }

    /// The clock controller's device.
    pub fn clock_controller_device(&self) -> Option<&Device> {
        self.clock_controller
            .and_then(|c| self.devices.get(c.device))
    }

    /// DTS source text to append (as a second `/ { ... };` block) to the decompiled QEMU
    /// virt tree: the reserved-memory carve-out of the window, the EXTAL fixed clock, a
    /// node per device that has DT data, and the thermal zones. Addresses are
    /// guest-physical; `gic_path` is the virt GIC node's path (interrupt-parent).
    pub fn dt_fragment(&self, gic_path: &str) -> String {
        dt::fragment(self, gic_path)
    }
}

/// Formats an offset the way reasons and errors print them (0xB68).
pub(crate) fn hex(v: u64) -> String {
    format!("0x{v:X}")
}

struct Validator<'a> {
    origin: &'a str,
}

type Res<T> = Result<T, SocError>;

fn named(path: &str, index: usize, name: &str) -> String {
    format!("{path}[{index}] ({name})")
}

/// A DTS property as the SoC file may give it verbatim: one, not empty, and unable to close
/// its node or open another (no `;`, no braces).
fn one_dts_property(p: &str) -> bool {
    !p.trim().is_empty() && !p.contains(';') && !p.contains('{') && !p.contains('}')
}

impl Validator<'_> {
    fn err(&self, path: impl Into<String>, message: impl Into<String>) -> SocError {
        SocError::Invalid {
            file: self.origin.to_string(),
            path: path.into(),
            message: message.into(),
        }
    }

    fn soc(&self, mut spec: spec::SocSpec) -> Res<Soc> {
        for (name, d) in &mut spec.devices.0 {
            d.registers = self.expand_repeats(&format!("devices.{name}"), &d.registers)?;
        }
        if spec.name.trim().is_empty() {
            return Err(self.err("name", "must not be empty (expected the SoC's part name)"));
        }
        let window = self.window(&spec.window)?;
        let gic = Gic {
            distributor: spec.gic.distributor,
            spi_intid_base: spec.gic.spi_intid_base,
            num_spis: spec.gic.num_spis,
        };
        if gic.spi_intid_base.checked_add(gic.num_spis).is_none() {
            return Err(self.err("gic", "spi_intid_base + num_spis overflows"));
        }
        let free_spis = self.free_spis(&spec.gic.free_spis, &gic)?;
        let extal = Extal {
            name: spec.extal.name,
            node: spec.extal.node,
            label: spec.extal.label,
            frequency: spec.extal.frequency,
        };
        if extal.frequency == 0 {
            return Err(self.err("extal.frequency", "must be non-zero (expected Hz)"));
        }
        let mut fixed_clocks: Vec<Extal> = Vec::with_capacity(spec.fixed_clocks.len());
        for (i, f) in spec.fixed_clocks.iter().enumerate() {
            let path = named("fixed_clocks", i, &f.name);
            if f.frequency == 0 {
                return Err(self.err(
                    format!("{path}.frequency"),
                    "must be non-zero (expected Hz)",
                ));
            }
            if f.name == extal.name || fixed_clocks.iter().any(|c| c.name == f.name) {
                return Err(self.err(
                    format!("{path}.name"),
                    format!("duplicate clock name `{}`", f.name),
                ));
            }
            fixed_clocks.push(Extal {
                name: f.name.clone(),
                node: f.node.clone(),
                label: f.label.clone(),
                frequency: f.frequency,
            });
        }

        // The clock controller owns CLK_ON/RST/MSTOP; clocks and resets point into its
        // registers.
        let names: Vec<&str> = spec.devices.0.iter().map(|(n, _)| n.as_str()).collect();
        let (clock_controller, clocks, resets) = match &spec.clock_controller {
            None => {
                if !spec.clocks.is_empty() || !spec.resets.is_empty() {
                    return Err(self.err(
                        "clock_controller",
                        "missing (clocks and resets need `clock_controller: {device: <name>, mon_offset: <distance to the MON registers>}`)",
                    ));
                }
                (None, Vec::new(), Vec::new())
            }
            Some(cc) => {
                let index = names.iter().position(|n| *n == cc.device).ok_or_else(|| {
                    self.err(
                        "clock_controller.device",
                        format!(
                            "reference to undefined device `{}` (expected a name from `devices`)",
                            cc.device
                        ),
                    )
                })?;
                let (cc_name, cc_spec) = &spec.devices.0[index];
                let cc_path = format!("devices.{cc_name}");
                let cc_regs = self.registers(&cc_path, cc_spec)?;
                let clocks = self.clocks(&spec.clocks, &cc_path, &cc_regs, cc.mon_offset)?;
                let resets = self.resets(&spec.resets, &cc_path, &cc_regs, cc.mon_offset)?;
                let controller = ClockController {
                    device: index,
                    mon_offset: cc.mon_offset,
                };
                (Some(controller), clocks, resets)
            }
        };

        let mut devices = Vec::with_capacity(spec.devices.0.len());
        for (i, (name, dspec)) in spec.devices.0.iter().enumerate() {
            let path = format!("devices.{name}");
            let is_controller = clock_controller.is_some_and(|c| c.device == i);
            let registers = self.registers(&path, dspec)?;
            devices.push(self.device(
                name,
                &path,
                dspec,
                registers,
                &window,
                is_controller,
                &names,
                &clocks,
                &resets,
            )?);
        }
        self.no_device_overlap(&devices)?;
        self.allocate_spis(&mut devices, &spec.devices.0, &gic, &free_spis)?;

        // DT data refers to other devices, so it is resolved once all devices exist.
        for (i, (name, dspec)) in spec.devices.0.iter().enumerate() {
            if let Some(dt) = &dspec.dt {
                let node = self.dt(
                    &format!("devices.{name}.dt"),
                    dt,
                    &spec.devices.0,
                    clock_controller.and_then(|c| names.get(c.device).copied()),
                    (&extal, &fixed_clocks),
                    &clocks,
                    &resets,
                )?;
                self.regions(&format!("devices.{name}.dt.regions"), &node, dspec.size)?;
                if let Some(dev) = devices.get_mut(i) {
                    dev.dt = Some(node);
                }
            }
        }
        self.dt_labels(&devices, &extal, &fixed_clocks, &spec.thermal_zones)?;
        self.dt_cross_checks(&devices, clock_controller)?;

        let thermal_zones = self.zones(&spec.thermal_zones, &devices)?;

        Ok(Soc {
            name: spec.name,
            origin: self.origin.to_string(),
            window,
            bus_error: spec.bus_error,
            gic,
            extal,
            fixed_clocks,
            clock_controller,
            clocks,
            resets,
            devices,
            thermal_zones,
        })
    }

    /// `gic.free_spis`: inclusive ranges inside the GIC, not overlapping.
    fn free_spis(&self, ranges: &[[u32; 2]], gic: &Gic) -> Res<Vec<u32>> {
        let mut out: Vec<u32> = Vec::new();
        for (i, &[first, last]) in ranges.iter().enumerate() {
            let path = format!("gic.free_spis[{i}]");
            if first > last || last >= gic.num_spis {
                return Err(self.err(
                    path,
                    format!(
                        "[{first}, {last}] is not a range of existing SPIs (expected [first, last] with first <= last < num_spis = {})",
                        gic.num_spis
                    ),
                ));
            }
            for spi in first..=last {
                if out.contains(&spi) {
                    return Err(self.err(path, format!("SPI {spi} is listed twice")));
                }
                out.push(spi);
            }
        }
        Ok(out)
    }

    /// Gives every interrupt without a declared `spi` the lowest free one, in declaration
    /// order, and refuses two lines on one SPI or a line on an SPI the machine uses itself.
    fn allocate_spis(
        &self,
        devices: &mut [Device],
        specs: &[(String, spec::DeviceSpec)],
        gic: &Gic,
        free: &[u32],
    ) -> Res<()> {
        let mut taken: Vec<(u32, String)> = Vec::new();
        let path_of = |d: usize, l: usize| -> String {
            let dev = specs.get(d).map(|(n, _)| n.as_str()).unwrap_or("");
            let line = specs
                .get(d)
                .and_then(|(_, s)| s.interrupts.get(l))
                .map(|s| s.name.as_str())
                .unwrap_or("");
            format!("devices.{dev}.interrupts[{l}] ({line})")
        };
        // Declared SPIs first, so that allocation never takes one a later device pins.
        for (d, (_, dspec)) in specs.iter().enumerate() {
            for (l, ispec) in dspec.interrupts.iter().enumerate() {
                let Some(spi) = ispec.spi else { continue };
                let path = path_of(d, l);
                if spi >= gic.num_spis {
                    return Err(self.err(
                        format!("{path}.spi"),
                        format!(
                            "SPI {spi} does not exist on the GIC (expected < {}; num_spis in `gic`)",
                            gic.num_spis
                        ),
                    ));
                }
                if !free.contains(&spi) {
                    return Err(self.err(
                        format!("{path}.spi"),
                        format!("SPI {spi} is not in gic.free_spis (the machine uses it, or may)"),
                    ));
                }
                if let Some((_, other)) = taken.iter().find(|(s, _)| *s == spi) {
                    return Err(self.err(
                        format!("{path}.spi"),
                        format!("SPI {spi} is also {other} (expected one line per SPI)"),
                    ));
                }
                taken.push((spi, path));
            }
        }
        let mut next = free.iter();
        for (d, dev) in devices.iter_mut().enumerate() {
            for l in 0..dev.interrupts.len() {
                let (earlier, rest) = dev.interrupts.split_at_mut(l);
                let Some(line) = rest.first_mut() else {
                    continue;
                };
                if !line.allocated {
                    continue;
                }
                // A line with the SoC SPI of an earlier line of the same device is that
                // line on the silicon (scif's dri and tei): it gets the same virt SPI.
                let shared = line
                    .soc_spi
                    .and_then(|soc_spi| earlier.iter().find(|o| o.soc_spi == Some(soc_spi)));
                if let Some(first) = shared {
                    line.spi = first.spi;
                    continue;
                }
                let spi = next
                    .by_ref()
                    .copied()
                    .find(|s| !taken.iter().any(|(t, _)| t == s))
                    .ok_or_else(|| {
                        self.err(
                            path_of(d, l),
                            format!(
                                "no free SPI left to allocate ({} in gic.free_spis, all taken)",
                                free.len()
                            ),
                        )
                    })?;
                line.spi = spi;
                taken.push((spi, path_of(d, l)));
            }
        }
        Ok(())
    }

    fn window(&self, w: &spec::WindowSpec) -> Res<Window> {
        if w.size == 0 {
            return Err(self.err("window.size", "must be non-zero"));
        }
        if w.guest_base.checked_add(w.size).is_none() || w.soc_base.checked_add(w.size).is_none() {
            return Err(self.err("window", "base + size overflows 64 bits"));
        }
        if !w.guest_base.is_multiple_of(0x1000) || !w.size.is_multiple_of(0x1000) {
            return Err(self.err(
                "window",
                "guest_base and size must be multiples of 4 KiB (a reserved-memory carve-out)",
            ));
        }
        Ok(Window {
            guest_base: w.guest_base,
            soc_base: w.soc_base,
            size: w.size,
        })
    }

    /// `dt.regions`: non-empty ranges inside the device, in ascending order, disjoint.
    fn regions(&self, path: &str, node: &DtNode, size: u64) -> Res<()> {
        let mut end_prev = 0u64;
        for (i, &(offset, len)) in node.regions.iter().enumerate() {
            let end = offset.checked_add(len);
            if len == 0 || end.is_none_or(|e| e > size) || (i > 0 && offset < end_prev) {
                return Err(self.err(
                    format!("{path}[{i}]"),
                    format!(
                        "[{}, {}] is not a non-empty range inside the device (size {}) after the previous one",
                        hex(offset),
                        hex(len),
                        hex(size)
                    ),
                ));
            }
            end_prev = end.unwrap_or(size);
        }
        Ok(())
    }

    /// Registers with `repeat` become `count` registers `<name><first + i>` at `offset + i *
    /// stride`, in place; later checks (offsets, overlaps, names) see the copies.
    fn expand_repeats(
        &self,
        dev_path: &str,
        specs: &[spec::RegisterSpec],
    ) -> Res<Vec<spec::RegisterSpec>> {
        let mut out = Vec::with_capacity(specs.len());
        for (i, r) in specs.iter().enumerate() {
            let Some(rep) = &r.repeat else {
                out.push(r.clone());
                continue;
            };
            let path = format!("{dev_path}.registers[{i}] ({}).repeat", r.name);
            if !(1..=64).contains(&rep.count) {
                return Err(self.err(
                    path,
                    format!("count {} is out of range (expected 1..64)", rep.count),
                ));
            }
            if rep.stride < 4 || !rep.stride.is_multiple_of(4) {
                return Err(self.err(
                    path,
                    format!(
                        "stride {} is not a non-zero multiple of 4 (registers are 32-bit)",
                        hex(rep.stride)
                    ),
                ));
            }
            if r.fields.iter().any(|f| f.mirror.is_some()) {
                return Err(self.err(
                    path,
                    "a repeated register cannot mirror (expected one source per copy)",
                ));
            }
            for k in 0..rep.count {
                let mut copy = r.clone();
                copy.repeat = None;
                copy.name = format!("{}{}", r.name, rep.first.saturating_add(k));
                copy.offset = r
                    .offset
                    .checked_add(u64::from(k).saturating_mul(rep.stride))
                    .ok_or_else(|| self.err(path.clone(), "offset overflows"))?;
                out.push(copy);
            }
        }
        Ok(out)
    }

    fn registers(&self, dev_path: &str, d: &spec::DeviceSpec) -> Res<Vec<Register>> {
        let mut out: Vec<Register> = Vec::with_capacity(d.registers.len());
        for (i, r) in d.registers.iter().enumerate() {
            let path = format!("{dev_path}.registers[{i}] ({})", r.name);
            if r.name.trim().is_empty() {
                return Err(self.err(path, "register name must not be empty"));
            }
            if let Some(prev) = out.iter().position(|p| p.name == r.name) {
                return Err(self.err(
                    path,
                    format!("duplicate register name (also registers[{prev}]); names must be unique in a device"),
                ));
            }
            if !r.offset.is_multiple_of(4) {
                return Err(self.err(
                    path,
                    format!(
                        "offset {} is not a multiple of 4 (registers are 32-bit)",
                        hex(r.offset)
                    ),
                ));
            }
            if r.offset.checked_add(4).is_none_or(|end| end > d.size) {
                return Err(self.err(
                    path,
                    format!(
                        "offset {} is outside the device (size {}; expected offset + 4 <= size)",
                        hex(r.offset),
                        hex(d.size)
                    ),
                ));
            }
            if let Some(prev) = out.iter().position(|p| u64::from(p.offset) == r.offset) {
                let other = out.get(prev).map(|p| p.name.as_str()).unwrap_or("");
                return Err(self.err(
                    path,
                    format!(
                        "overlaps registers[{prev}] ({other}) at offset {} (expected distinct 32-bit slots)",
                        hex(r.offset)
                    ),
                ));
            }
            let half = matches!(r.access, RegAccess::We16 | RegAccess::We16Field);
            let default_mask = if half { 0xffff } else { u32::MAX };
            let mask = r.mask.unwrap_or(default_mask);
            if half && (mask > 0xffff || r.reset > 0xffff) {
                return Err(self.err(
                    path,
                    format!(
                        "access {} keeps its value in bits 15:0 (bits 31:16 are write enables); expected mask and reset <= 0xFFFF",
                        r.access.as_str()
                    ),
                ));
            }
            let mut fields: Vec<Field> = Vec::with_capacity(r.fields.len());
            for (j, f) in r.fields.iter().enumerate() {
                let fpath = format!("{path}.fields[{j}] ({})", f.name);
                let limit = if half { 16 } else { 32 };
                if f.width == 0 || f.lsb.checked_add(f.width).is_none_or(|end| end > limit) {
                    return Err(self.err(
                        fpath,
                        format!(
                            "bits {}..{} do not fit in bits 0..{} of the register",
                            f.lsb,
                            f.lsb.saturating_add(f.width),
                            limit
                        ),
                    ));
                }
                let declared = [f.self_clear, f.clear_on_read, f.mirror.is_some()];
                if declared.iter().filter(|&&d| d).count() > 1 {
                    return Err(self.err(
                        fpath,
                        "self_clear, clear_on_read and mirror exclude each other (expected at most one)",
                    ));
                }
                if f.self_clear && r.access == RegAccess::Ro {
                    return Err(self.err(
                        fpath,
                        "self_clear on a read-only register (expected access rw, we16 or we16-field: a bit the guest writes)",
                    ));
                }
                let behaviour = if f.self_clear {
                    Behaviour::SelfClear
                } else if f.clear_on_read {
                    Behaviour::ClearOnRead
                } else {
                    // A mirror's source is resolved once every register of the device exists.
                    Behaviour::Plain
                };
                let field = Field {
                    name: f.name.clone(),
                    lsb: f.lsb,
                    width: f.width,
                    behaviour,
                };
                if let Some(other) = fields
                    .iter()
                    .find(|o| o.name == f.name || o.mask() & field.mask() != 0)
                {
                    return Err(self.err(
                        fpath,
                        format!(
                            "clashes with field {} (expected unique names and disjoint bits)",
                            other.name
                        ),
                    ));
                }
                fields.push(field);
            }
            if r.access == RegAccess::We16Field && fields.is_empty() {
                return Err(self.err(
                    path,
                    "access we16-field needs `fields` (each field has its own write enable)",
                ));
            }
            let offset = u32::try_from(r.offset)
                .map_err(|_| self.err(path.clone(), "offset does not fit 32 bits"))?;
            out.push(Register {
                name: r.name.clone(),
                offset,
                reset: r.reset,
                access: r.access,
                mask,
                fields,
            });
        }
        self.mirrors(dev_path, d, &mut out)?;
        Ok(out)
    }

    /// Resolves every `mirror: REGISTER.FIELD` to the source field's register and position.
    fn mirrors(&self, dev_path: &str, d: &spec::DeviceSpec, regs: &mut [Register]) -> Res<()> {
        for (i, r) in d.registers.iter().enumerate() {
            for (j, f) in r.fields.iter().enumerate() {
                let Some(source) = &f.mirror else { continue };
                let fpath = format!(
                    "{dev_path}.registers[{i}] ({}).fields[{j}] ({}).mirror",
                    r.name, f.name
                );
                let resolved = source.split_once('.').and_then(|(reg, field)| {
                    let idx = regs.iter().position(|x| x.name == reg)?;
                    let src = regs.get(idx)?.field(field)?;
                    Some((idx, src.lsb, src.width))
                });
                let Some((reg, lsb, width)) = resolved else {
                    return Err(self.err(
                        fpath,
                        format!("`{source}` does not name a field of this device (expected REGISTER.FIELD)"),
                    ));
                };
                if width != f.width || (reg == i && lsb == f.lsb) {
                    return Err(self.err(
                        fpath,
                        format!("`{source}` is {width} bits wide or is the field itself (expected another field of {} bits)", f.width),
                    ));
                }
                if let Some(field) = regs.get_mut(i).and_then(|x| x.fields.get_mut(j)) {
                    field.behaviour = Behaviour::Mirror { reg, lsb };
                }
            }
        }
        Ok(())
    }

    fn cpg_bit(
        &self,
        path: &str,
        regs: &[Register],
        cpg_path: &str,
        name: &str,
        bit: u32,
    ) -> Res<BitRef> {
        let idx = self.cpg_reg(path, regs, cpg_path, name, &[RegAccess::We16])?;
        if bit > 15 {
            return Err(self.err(
                format!("{path}.bit"),
                format!("bit {bit} is out of range (expected 0..15: bits 31:16 are write enables)"),
            ));
        }
        let offset = regs.get(idx).map(|r| r.offset).unwrap_or(0);
        Ok(BitRef {
            reg: idx,
            offset,
            bit,
        })
    }

    fn cpg_reg(
        &self,
        path: &str,
        regs: &[Register],
        cpg_path: &str,
        name: &str,
        kinds: &[RegAccess],
    ) -> Res<usize> {
        let idx = regs.iter().position(|r| r.name == name).ok_or_else(|| {
            self.err(
                format!("{path}.reg"),
                format!(
                    "reference to undefined register `{name}` (expected a register of {cpg_path})"
                ),
            )
        })?;
        let access = regs.get(idx).map(|r| r.access).unwrap_or(RegAccess::Ro);
        if !kinds.contains(&access) {
            return Err(self.err(
                format!("{path}.reg"),
                format!(
                    "register `{name}` has access {} (expected {})",
                    access.as_str(),
                    kinds
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(" or ")
                ),
            ));
        }
        Ok(idx)
    }

    fn mon(
        &self,
        path: &str,
        regs: &[Register],
        cpg_path: &str,
        on: BitRef,
        mon_offset: u32,
        what: &str,
    ) -> Res<BitRef> {
        let want = on.offset.wrapping_add(mon_offset);
        let idx = regs.iter().position(|r| r.offset == want).ok_or_else(|| {
            self.err(
                path.to_string(),
                format!(
                    "no {what} register at {} ({} + mon_offset) in {cpg_path}",
                    hex(want.into()),
                    hex(on.offset.into())
                ),
            )
        })?;
        if regs.get(idx).map(|r| r.access) != Some(RegAccess::Ro) {
            return Err(self.err(
                path.to_string(),
                format!(
                    "the {what} register at {} must have access ro (the model drives it)",
                    hex(want.into())
                ),
            ));
        }
        Ok(BitRef {
            reg: idx,
            offset: want,
            bit: on.bit,
        })
    }

    fn clocks(
        &self,
        specs: &[spec::ClockSpec],
        cpg_path: &str,
        regs: &[Register],
        mon_offset: u32,
    ) -> Res<Vec<Clock>> {
        let mut out: Vec<Clock> = Vec::with_capacity(specs.len());
        for (i, c) in specs.iter().enumerate() {
            let path = named("clocks", i, &c.name);
            if let Some(prev) = out.iter().position(|o| o.name == c.name) {
                return Err(self.err(path, format!("duplicate clock name (also clocks[{prev}])")));
            }
            if let Some(prev) = out.iter().position(|o| o.id == c.id) {
                return Err(self.err(
                    path,
                    format!("duplicate DT id {} (also clocks[{prev}])", c.id),
                ));
            }
            let on = self.cpg_bit(&format!("{path}.on"), regs, cpg_path, &c.on.reg, c.on.bit)?;
            let mon = self.mon(
                &format!("{path}.on"),
                regs,
                cpg_path,
                on,
                mon_offset,
                "CLK_MON",
            )?;
            let mstop = match &c.mstop {
                None => None,
                Some(m) => {
                    let mpath = format!("{path}.mstop");
                    let reg = self.cpg_reg(&mpath, regs, cpg_path, &m.reg, &[RegAccess::We16])?;
                    if m.bits.is_empty() || m.bits.iter().any(|&b| b > 15) {
                        return Err(self.err(
                            format!("{mpath}.bits"),
                            "expected one or more bits in 0..15",
                        ));
                    }
                    let mask = m.bits.iter().fold(0u32, |acc, &b| acc | (1 << b));
                    let offset = regs.get(reg).map(|r| r.offset).unwrap_or(0);
                    Some(MaskRef { reg, offset, mask })
                }
            };
            out.push(Clock {
                name: c.name.clone(),
                id: c.id,
                on,
                mon,
                mstop,
                critical: c.critical,
            });
        }
        Ok(out)
    }

    fn resets(
        &self,
        specs: &[spec::ResetSpec],
        cpg_path: &str,
        regs: &[Register],
        mon_offset: u32,
    ) -> Res<Vec<Reset>> {
        let mut out: Vec<Reset> = Vec::with_capacity(specs.len());
        for (i, r) in specs.iter().enumerate() {
            let path = named("resets", i, &r.name);
            if let Some(prev) = out.iter().position(|o| o.name == r.name) {
                return Err(self.err(path, format!("duplicate reset name (also resets[{prev}])")));
            }
            if let Some(prev) = out.iter().position(|o| o.id == r.id) {
                return Err(self.err(
                    path,
                    format!("duplicate DT id {} (also resets[{prev}])", r.id),
                ));
            }
            let rst = self.cpg_bit(
                &format!("{path}.rst"),
                regs,
                cpg_path,
                &r.rst.reg,
                r.rst.bit,
            )?;
            let mon = self.mon(
                &format!("{path}.rst"),
                regs,
                cpg_path,
                rst,
                mon_offset,
                "RST_MON",
            )?;
            out.push(Reset {
                name: r.name.clone(),
                id: r.id,
                rst,
                mon,
                critical: r.critical,
            });
        }
        Ok(out)
    }

    fn rule(
        &self,
        path: &str,
        clock_names: &[String],
        reset_names: &[String],
        clocks: &[Clock],
        resets: &[Reset],
    ) -> Res<Rule> {
        let mut rule = Rule::default();
        for (i, name) in clock_names.iter().enumerate() {
            let idx = clocks.iter().position(|c| c.name == *name).ok_or_else(|| {
                self.err(
                    format!("{path}.clocks[{i}]"),
                    format!(
                        "reference to undefined clock `{name}` (expected a name from `clocks`)"
                    ),
                )
            })?;
            rule.clocks.push(idx);
        }
        for (i, name) in reset_names.iter().enumerate() {
            let idx = resets.iter().position(|c| c.name == *name).ok_or_else(|| {
                self.err(
                    format!("{path}.resets[{i}]"),
                    format!(
                        "reference to undefined reset `{name}` (expected a name from `resets`)"
                    ),
                )
            })?;
            rule.resets.push(idx);
        }
        if rule.clocks.is_empty() && rule.resets.is_empty() {
            return Err(self.err(
                path.to_string(),
                "an empty rule (expected clocks and/or resets)",
            ));
        }
        Ok(rule)
    }

    #[allow(clippy::too_many_arguments)]
    fn device(
        &self,
        name: &str,
        path: &str,
        d: &spec::DeviceSpec,
        registers: Vec<Register>,
        window: &Window,
        is_clock_controller: bool,
        names: &[&str],
        clocks: &[Clock],
        resets: &[Reset],
    ) -> Res<Device> {
        let ident = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !ident(name) {
            return Err(self.err(path.to_string(), "device names use [A-Za-z0-9_-]"));
        }
        let model = d.model.clone().unwrap_or_else(|| GENERIC_MODEL.to_string());
        if !ident(&model) {
            return Err(self.err(
                format!("{path}.model"),
                format!("`{model}` is not a model name ([A-Za-z0-9_-])"),
            ));
        }
        if d.size == 0 || !d.size.is_multiple_of(4) {
            return Err(self.err(
                format!("{path}.size"),
                format!("size {} must be a non-zero multiple of 4", hex(d.size)),
            ));
        }
        let win_end = window.soc_base + window.size;
        let inside = d.base >= window.soc_base
            && d.base.checked_add(d.size).is_some_and(|end| end <= win_end);
        if !inside {
            return Err(self.err(
                path.to_string(),
                format!(
                    "device {}..{} is outside the window {}..{} (expected base >= soc_base and base + size <= soc_base + size)",
                    hex(d.base),
                    hex(d.base.saturating_add(d.size)),
                    hex(window.soc_base),
                    hex(win_end)
                ),
            ));
        }
        if !d.base.is_multiple_of(4) {
            return Err(self.err(format!("{path}.base"), "base must be 4-byte aligned"));
        }
        if is_clock_controller && d.gate.is_some() {
            return Err(self.err(
                format!("{path}.gate"),
                "the clock controller is never gated (it would gate itself)",
            ));
        }
        let gate = match &d.gate {
            None => None,
            Some(g) => {
                let rule = self.rule(
                    &format!("{path}.gate"),
                    &g.clocks,
                    &g.resets,
                    clocks,
                    resets,
                )?;
                Some(Gate {
                    rule,
                    bus_error: g.bus_error,
                })
            }
        };
        let mut conditions = Vec::new();
        for (cname, c) in d.conditions.iter().flat_map(|k| k.0.iter()) {
            let rule = self.rule(
                &format!("{path}.conditions.{cname}"),
                &c.clocks,
                &c.resets,
                clocks,
                resets,
            )?;
            conditions.push((cname.clone(), rule));
        }
        let mut inputs = Vec::new();
        for (iname, source) in d.inputs.iter().flat_map(|k| k.0.iter()) {
            let ipath = format!("{path}.inputs.{iname}");
            let index = names.iter().position(|n| n == source).ok_or_else(|| {
                self.err(
                    ipath.clone(),
                    format!(
                        "reference to undefined device `{source}` (expected a name from `devices`)"
                    ),
                )
            })?;
            if names.get(index) == Some(&name) {
                return Err(self.err(ipath, "a device cannot be wired to itself"));
            }
            inputs.push((iname.clone(), index));
        }
        if d.interrupts.len() > crate::device::MAX_LINES {
            return Err(self.err(
                format!("{path}.interrupts"),
                format!(
                    "{} lines (expected at most {})",
                    d.interrupts.len(),
                    crate::device::MAX_LINES
                ),
            ));
        }
        let mut interrupts: Vec<Interrupt> = Vec::with_capacity(d.interrupts.len());
        for (i, line) in d.interrupts.iter().enumerate() {
            let lpath = format!("{path}.interrupts[{i}] ({})", line.name);
            if !ident(&line.name) {
                return Err(self.err(lpath, "interrupt names use [A-Za-z0-9_-]"));
            }
            if interrupts.iter().any(|o| o.name == line.name) {
                return Err(self.err(lpath, "duplicate interrupt name"));
            }
            let flags = line
                .flags
                .or_else(|| d.dt.as_ref().and_then(|dt| dt.irq_flags))
                .ok_or_else(|| {
                    self.err(
                        format!("{lpath}.flags"),
                        "missing (expected the DT interrupt type, 1 = edge rising, 4 = level high, here or as dt.irq_flags)",
                    )
                })?;
            interrupts.push(Interrupt {
                name: line.name.clone(),
                soc_spi: line.soc_spi,
                spi: line.spi.unwrap_or(0),
                flags,
                allocated: line.spi.is_none(),
            });
        }
        let channels = d.channels.unwrap_or(0);
        if d.channels.is_some() && !(1..=32).contains(&channels) {
            return Err(self.err(
                format!("{path}.channels"),
                format!("{channels} is out of range (expected 1..32)"),
            ));
        }
        let label = d.label.clone().unwrap_or_else(|| name.to_uppercase());
        let i2c_targets = self.i2c_targets(path, &d.i2c_targets)?;
        Ok(Device {
            name: name.to_string(),
            label,
            model,
            base: d.base,
            size: d.size,
            interrupts,
            channels,
            registers,
            gate,
            conditions,
            inputs,
            dt: None,
            i2c_targets,
        })
    }

    /// `i2c_targets`: unique names and 7-bit addresses, a memory the model can carry out,
    /// contents that fit.
    fn i2c_targets(&self, path: &str, specs: &[spec::I2cTargetSpec]) -> Res<Vec<I2cTarget>> {
        let mut out: Vec<I2cTarget> = Vec::with_capacity(specs.len());
        for (i, t) in specs.iter().enumerate() {
            let tpath = format!("{path}.i2c_targets[{i}] ({})", t.name);
            let ident = !t.name.is_empty()
                && t.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !ident {
                return Err(self.err(tpath, "target names use [A-Za-z0-9_-]"));
            }
            if t.model != AT24_MODEL {
                return Err(self.err(
                    format!("{tpath}.model"),
                    format!(
                        "unknown I2C target model `{}` (expected `{AT24_MODEL}`)",
                        t.model
                    ),
                ));
            }
            // 0x00-0x07 and 0x78-0x7f are reserved addresses (I2C specification).
            if !(0x08..=0x77).contains(&t.address) {
                return Err(self.err(
                    format!("{tpath}.address"),
                    format!(
                        "{} is not a 7-bit device address (expected 0x08..0x77)",
                        hex(t.address.into())
                    ),
                ));
            }
            let address = t.address as u8;
            if let Some(o) = out
                .iter()
                .find(|o| o.address == address || o.name == t.name)
            {
                return Err(self.err(
                    tpath,
                    format!(
                        "same name or address as `{}` at {} (each target has its own)",
                        o.name,
                        hex(o.address.into())
                    ),
                ));
            }
            let size_ok = t.size.is_power_of_two()
                && ((128..=256).contains(&t.size) || (4096..=65536).contains(&t.size));
            if !size_ok {
                return Err(self.err(
                    format!("{tpath}.size"),
                    format!(
                        "{} bytes: expected a power of two, 128..256 (24c01/24c02) or 4096..65536 (24c32..24c512); the 24c04..24c16 are not modelled",
                        t.size
                    ),
                ));
            }
            if !t.page_size.is_power_of_two() || t.page_size > t.size {
                return Err(self.err(
                    format!("{tpath}.page_size"),
                    format!(
                        "{}: expected a power of two no larger than size ({})",
                        t.page_size, t.size
                    ),
                ));
            }
            let fill = t.fill.unwrap_or(0xff);
            let Ok(fill) = u8::try_from(fill) else {
                return Err(self.err(
                    format!("{tpath}.fill"),
                    format!("{fill} is not a byte (expected 0..255)"),
                ));
            };
            let mut contents = t.contents.as_bytes().to_vec();
            if contents.len() > t.size as usize {
                return Err(self.err(
                    format!("{tpath}.contents"),
                    format!(
                        "{} bytes do not fit the {}-byte memory",
                        contents.len(),
                        t.size
                    ),
                ));
            }
            contents.resize(t.size as usize, fill);
            let dt = match &t.dt {
                None => None,
                Some(d) => {
                    if d.compatible.is_empty() {
                        return Err(self.err(
                            format!("{tpath}.dt.compatible"),
                            "expected at least one compatible string (`atmel,24c02`)",
                        ));
                    }
                    for (j, p) in d.properties.iter().enumerate() {
                        let bad = !one_dts_property(p);
                        let name = p.split('=').next().unwrap_or("").trim();
                        if bad || name == "reg" || name == "pagesize" {
                            return Err(self.err(
                                format!("{tpath}.dt.properties[{j}]"),
                                "expected one DTS property without `;` or braces, not `reg` or `pagesize` (both are generated)",
                            ));
                        }
                    }
                    Some(I2cTargetDt {
                        label: d.label.clone(),
                        compatible: d.compatible.clone(),
                        properties: d.properties.clone(),
                    })
                }
            };
            out.push(I2cTarget {
                name: t.name.clone(),
                model: t.model.clone(),
                address,
                size: t.size,
                page_size: t.page_size,
                contents,
                dt,
            });
        }
        Ok(out)
    }

    fn no_device_overlap(&self, devices: &[Device]) -> Res<()> {
        for (i, a) in devices.iter().enumerate() {
            for b in devices.iter().take(i) {
                if a.base < b.base + b.size && b.base < a.base + a.size {
                    return Err(self.err(
                        format!("devices.{}", a.name),
                        format!(
                            "overlaps device {} ({}..{})",
                            b.name,
                            hex(b.base),
                            hex(b.base + b.size)
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn dt(
        &self,
        path: &str,
        dt: &spec::DtSpec,
        devices: &[(String, spec::DeviceSpec)],
        clock_controller: Option<&str>,
        (extal, fixed): (&Extal, &[Extal]),
        clocks: &[Clock],
        resets: &[Reset],
    ) -> Res<DtNode> {
        let ident =
            |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        let node_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ",._+-".contains(c))
        };
        if !node_ok(&dt.node) {
            return Err(self.err(
                format!("{path}.node"),
                format!("`{}` is not a valid DT node name", dt.node),
            ));
        }
        if !ident(&dt.label) {
            return Err(self.err(
                format!("{path}.label"),
                format!("`{}` is not a valid DT label ([A-Za-z0-9_])", dt.label),
            ));
        }
        if dt.compatible.is_empty() {
            return Err(self.err(
                format!("{path}.compatible"),
                "expected at least one compatible string",
            ));
        }
        let strings_ok =
            |list: &[String]| list.iter().all(|s| !s.contains('"') && !s.contains('\\'));
        if !strings_ok(&dt.compatible)
            || !strings_ok(&dt.clock_names)
            || !strings_ok(&dt.reset_names)
            || !strings_ok(&dt.io_channel_names)
        {
            return Err(self.err(
                path.to_string(),
                "DT strings must not contain quotes or backslashes",
            ));
        }
        // A `<device>:<cell>` reference: the providing device's DT label and the cell.
        let provider = |name: &str,
                        dev: &str,
                        cell: &str,
                        at: String,
                        what: &str|
         -> Res<(String, u32)> {
            let cell: u32 = cell.parse().map_err(|_| {
                self.err(
                    at.clone(),
                    format!("`{name}`: the cell after `:` must be a number (`<device>:<cell>`)"),
                )
            })?;
            let spec = devices.iter().find(|(n, _)| n == dev).ok_or_else(|| {
                self.err(
                    at.clone(),
                    format!("`{name}`: reference to undefined device `{dev}` (expected a name from `devices`)"),
                )
            })?;
            let label = spec.1.dt.as_ref().map(|d| d.label.clone()).ok_or_else(|| {
                self.err(
                    at.clone(),
                    format!("`{name}`: device `{dev}` has no `dt` node to provide {what}"),
                )
            })?;
            Ok((label, cell))
        };
        let mut dclocks = Vec::with_capacity(dt.clocks.len());
        for (i, name) in dt.clocks.iter().enumerate() {
            if *name == extal.name {
                dclocks.push(DtClock::Extal);
            } else if let Some(idx) = clocks.iter().position(|c| c.name == *name) {
                dclocks.push(DtClock::Module(idx));
            } else if let Some(idx) = fixed.iter().position(|c| c.name == *name) {
                dclocks.push(DtClock::Fixed(idx));
            } else if let Some((dev, cell)) = name.split_once(':') {
                // `device:cell`: output `cell` of another device's clock provider.
                let (label, cell) =
                    provider(name, dev, cell, format!("{path}.clocks[{i}]"), "clocks")?;
                dclocks.push(DtClock::Provider { label, cell });
            } else {
                return Err(self.err(
                    format!("{path}.clocks[{i}]"),
                    format!("reference to undefined clock `{name}` (expected a name from `clocks`, `fixed_clocks`, the extal name, or `<device>:<cell>`)"),
                ));
            }
        }
        let mut dresets = Vec::with_capacity(dt.resets.len());
        for (i, name) in dt.resets.iter().enumerate() {
            let rpath = format!("{path}.resets[{i}]");
            if let Some(idx) = resets.iter().position(|r| r.name == *name) {
                dresets.push(DtReset::Cpg(idx));
            } else if let Some((dev, cell)) = name.split_once(':') {
                // `device:cell`: line `cell` of another device's reset controller.
                let (label, cell) = provider(name, dev, cell, rpath.clone(), "resets")?;
                dresets.push(DtReset::Provider { label, cell });
            } else {
                return Err(self.err(
                    rpath,
                    format!(
                        "reference to undefined reset `{name}` (expected a name from `resets` or `<device>:<cell>`)"
                    ),
                ));
            }
        }
        let same_len = |names: &[String], refs: usize, what: &str| -> Res<()> {
            if !names.is_empty() && names.len() != refs {
                return Err(self.err(
                    format!("{path}.{what}_names"),
                    format!(
                        "{} names for {} {what}s (expected one name per entry)",
                        names.len(),
                        refs
                    ),
                ));
            }
            Ok(())
        };
        same_len(&dt.clock_names, dt.clocks.len(), "clock")?;
        same_len(&dt.reset_names, dt.resets.len(), "reset")?;
        if !dt.io_channel_names.is_empty() && dt.io_channel_names.len() != dt.io_channels.len() {
            return Err(self.err(
                format!("{path}.io_channel_names"),
                "expected one name per io_channels entry",
            ));
        }
        let label_of = |dev: &str| -> Option<(&spec::DeviceSpec, String)> {
            devices
                .iter()
                .find(|(n, _)| n == dev)
                .and_then(|(_, d)| d.dt.as_ref().map(|dt| (d, dt.label.clone())))
        };
        let power_domains = match &dt.power_domains {
            None => None,
            Some(dev) => {
                let (_, label) = label_of(dev).ok_or_else(|| {
                    self.err(
                        format!("{path}.power_domains"),
                        format!(
                            "reference to undefined device `{dev}` (expected a device with `dt`)"
                        ),
                    )
                })?;
                if clock_controller != Some(dev.as_str()) {
                    return Err(self.err(
                        format!("{path}.power_domains"),
                        format!("device `{dev}` is not the clock controller (the CPG is the power-domain provider)"),
                    ));
                }
                Some(label)
            }
        };
        let mut io_channels = Vec::with_capacity(dt.io_channels.len());
        for (i, io) in dt.io_channels.iter().enumerate() {
            let ipath = format!("{path}.io_channels[{i}]");
            let (d, label) = label_of(&io.device).ok_or_else(|| {
                self.err(
                    format!("{ipath}.device"),
                    format!(
                        "reference to undefined device `{}` (expected a device with `dt`)",
                        io.device
                    ),
                )
            })?;
            if d.channels.is_none() {
                return Err(self.err(
                    format!("{ipath}.device"),
                    format!("device `{}` has no `channels` (expected an ADC)", io.device),
                ));
            }
            if io.channel >= d.channels.unwrap_or(0) {
                return Err(self.err(
                    format!("{ipath}.channel"),
                    format!(
                        "channel {} does not exist (the ADC has {} channels)",
                        io.channel,
                        d.channels.unwrap_or(0)
                    ),
                ));
            }
            io_channels.push((label, io.channel));
        }
        for (i, p) in dt.properties.iter().enumerate() {
            if !one_dts_property(p) {
                return Err(self.err(
                    format!("{path}.properties[{i}]"),
                    "expected one DTS property without `;` or braces, e.g. \"#clock-cells = <2>\"",
                ));
            }
        }
        let mut children: Vec<DtChild> = Vec::with_capacity(dt.children.len());
        for (i, c) in dt.children.iter().enumerate() {
            let cpath = format!("{path}.children[{i}]");
            if !node_ok(&c.node) {
                return Err(self.err(
                    format!("{cpath}.node"),
                    format!("`{}` is not a valid DT node name", c.node),
                ));
            }
            if children.iter().any(|o| o.node == c.node) {
                return Err(self.err(format!("{cpath}.node"), "duplicate child node name"));
            }
            if let Some(l) = &c.label {
                if !ident(l) {
                    return Err(self.err(
                        format!("{cpath}.label"),
                        format!("`{l}` is not a valid DT label ([A-Za-z0-9_])"),
                    ));
                }
            }
            for (j, p) in c.properties.iter().enumerate() {
                if !one_dts_property(p) {
                    return Err(self.err(
                        format!("{cpath}.properties[{j}]"),
                        "expected one DTS property without `;` or braces, e.g. \"regulator-name = \\\"vbus\\\"\"",
                    ));
                }
            }
            children.push(DtChild {
                node: c.node.clone(),
                label: c.label.clone(),
                properties: c.properties.clone(),
            });
        }
        if let Some(child) = &dt.sram_export {
            self.sram_export(path, dt, child, &node_ok)?;
        }
        Ok(DtNode {
            node: dt.node.clone(),
            label: dt.label.clone(),
            compatible: dt.compatible.clone(),
            clocks: dclocks,
            clock_names: dt.clock_names.clone(),
            resets: dresets,
            reset_names: dt.reset_names.clone(),
            power_domains,
            irq_flags: dt.irq_flags,
            interrupt_names: dt.interrupt_names,
            io_channels,
            io_channel_names: dt.io_channel_names.clone(),
            module_clock_cell: dt.module_clock_cell,
            channel_nodes: dt.channel_nodes,
            sram_export: dt.sram_export.clone(),
            regions: dt.regions.iter().map(|&[o, n]| (o, n)).collect(),
            properties: dt.properties.clone(),
            children,
        })
    }

    /// `sram_export` makes the node an `mmio-sram` whose cells, `ranges` and
    /// `no-memory-wc` the generator writes; the YAML must not fight it.
    fn sram_export(
        &self,
        path: &str,
        dt: &spec::DtSpec,
        child: &str,
        node_ok: &dyn Fn(&str) -> bool,
    ) -> Res<()> {
        if !node_ok(child) {
            return Err(self.err(
                format!("{path}.sram_export"),
                format!(
                    "`{child}` is not a valid DT node name (expected the partition's name without a unit address, e.g. mailbox-sram)"
                ),
            ));
        }
        if !dt.compatible.iter().any(|c| c == SRAM_COMPATIBLE) {
            return Err(self.err(
                format!("{path}.compatible"),
                format!("sram_export needs `{SRAM_COMPATIBLE}` in compatible (the driver that exports the partition binds to it)"),
            ));
        }
        if dt.channel_nodes {
            return Err(self.err(
                format!("{path}.channel_nodes"),
                "cannot be combined with sram_export (both define the child nodes)",
            ));
        }
        for (i, p) in dt.properties.iter().enumerate() {
            let name = p.split('=').next().unwrap_or("").trim();
            if SRAM_GENERATED.contains(&name) {
                return Err(self.err(
                    format!("{path}.properties[{i}]"),
                    format!("`{name}` is generated for sram_export; remove it"),
                ));
            }
        }
        Ok(())
    }

    fn dt_labels(
        &self,
        devices: &[Device],
        extal: &Extal,
        fixed: &[Extal],
        zones: &[spec::ZoneSpec],
    ) -> Res<()> {
        let mut seen: Vec<(String, String)> =
            vec![(extal.label.clone(), "extal.label".to_string())];
        let mut add = |label: &str, path: String| -> Res<()> {
            if let Some((_, other)) = seen.iter().find(|(l, _)| l == label) {
                return Err(self.err(path, format!("duplicate DT label `{label}` (also {other})")));
            }
            seen.push((label.to_string(), path));
            Ok(())
        };
        for (i, f) in fixed.iter().enumerate() {
            add(
                &f.label,
                format!("{}.label", named("fixed_clocks", i, &f.name)),
            )?;
        }
        for d in devices {
            if let Some(dt) = &d.dt {
                add(&dt.label, format!("devices.{}.dt.label", d.name))?;
            }
        }
        for (i, z) in zones.iter().enumerate() {
            add(
                &z.label,
                format!("{}.label", named("thermal_zones", i, &z.name)),
            )?;
            for (j, t) in z.trips.iter().enumerate() {
                if let Some(l) = &t.label {
                    add(
                        l,
                        format!(
                            "{}.trips[{j}] ({}).label",
                            named("thermal_zones", i, &z.name),
                            t.name
                        ),
                    )?;
                }
            }
        }
        Ok(())
    }

    fn dt_cross_checks(&self, devices: &[Device], cc: Option<ClockController>) -> Res<()> {
        let cpg = cc.and_then(|c| devices.get(c.device));
        let cpg_dt = cpg.and_then(|d| d.dt.as_ref());
        for d in devices {
            let Some(dt) = &d.dt else { continue };
            let path = format!("devices.{}.dt", d.name);
            let uses_cpg = dt.clocks.iter().any(|c| matches!(c, DtClock::Module(_)))
                || dt.resets.iter().any(|r| matches!(r, DtReset::Cpg(_)));
            if uses_cpg {
                match cpg_dt {
                    None => {
                        return Err(
                            self.err(path, "refers to CPG clocks/resets but the CPG has no `dt`")
                        )
                    }
                    Some(c)
                        if c.module_clock_cell.is_none()
                            && dt.clocks.iter().any(|c| matches!(c, DtClock::Module(_))) =>
                    {
                        return Err(self.err(
                            format!(
                                "devices.{}.dt.module_clock_cell",
                                cpg.map(|c| c.name.as_str()).unwrap_or("cpg")
                            ),
                            "missing (expected the clock-type cell of module clocks, CPG_MOD = 1)",
                        ));
                    }
                    Some(_) => {}
                }
            }
            if dt.sram_export.is_some() && u32::try_from(d.size).is_err() {
                return Err(self.err(
                    format!("{path}.sram_export"),
                    format!(
                        "device size {} does not fit the partition's one size cell",
                        hex(d.size)
                    ),
                ));
            }
        }
        Ok(())
    }

    fn zones(&self, specs: &[spec::ZoneSpec], devices: &[Device]) -> Res<Vec<ThermalZone>> {
        let mut out: Vec<ThermalZone> = Vec::with_capacity(specs.len());
        for (i, z) in specs.iter().enumerate() {
            let path = named("thermal_zones", i, &z.name);
            if out.iter().any(|o| o.name == z.name) {
                return Err(self.err(path, "duplicate zone name"));
            }
            let dev = devices.iter().find(|d| d.name == z.sensor).ok_or_else(|| {
                self.err(
                    format!("{path}.sensor"),
                    format!("reference to undefined device `{}`", z.sensor),
                )
            })?;
            let is_sensor = dev.dt.as_ref().is_some_and(|dt| {
                dt.properties
                    .iter()
                    .any(|p| p.trim_start().starts_with("#thermal-sensor-cells"))
            });
            if !is_sensor {
                return Err(self.err(
                    format!("{path}.sensor"),
                    format!(
                        "device `{}` is not a TSU (its dt has no #thermal-sensor-cells)",
                        z.sensor
                    ),
                ));
            }
            let sensor_label = dev.dt.as_ref().map(|d| d.label.clone()).ok_or_else(|| {
                self.err(
                    format!("{path}.sensor"),
                    format!("device `{}` has no `dt`", z.sensor),
                )
            })?;
            let mut trips: Vec<Trip> = Vec::new();
            for (j, t) in z.trips.iter().enumerate() {
                if trips.iter().any(|o| o.name == t.name) {
                    return Err(self.err(
                        format!("{path}.trips[{j}] ({})", t.name),
                        "duplicate trip name",
                    ));
                }
                trips.push(Trip {
                    name: t.name.clone(),
                    label: t.label.clone(),
                    temperature: t.temperature,
                    hysteresis: t.hysteresis,
                    kind: t.kind,
                });
            }
            out.push(ThermalZone {
                name: z.name.clone(),
                label: z.label.clone(),
                sensor_label,
                polling_delay_passive: z.polling_delay_passive,
                polling_delay: z.polling_delay,
                trips,
            });
        }
        Ok(out)
    }
}

/// A one-line description of the SoC for logs.
impl std::fmt::Display for Soc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        for d in &self.devices {
            let _ = write!(s, " {}@{}", d.name, hex(d.base));
        }
        write!(f, "{} ({}):{}", self.name, self.origin, s)
    }
}
