//! The YAML as written (serde types). `super` validates it into a [`super::Soc`].

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;

use crate::regs::RegAccess;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocSpec {
    pub name: String,
    pub window: WindowSpec,
    pub bus_error: u32,
    pub gic: GicSpec,
    pub extal: ExtalSpec,
    /// Further fixed-rate clocks of the board (the VBATTB's 32.768 kHz crystal), each a
    /// `fixed-clock` DT node like EXTAL.
    #[serde(default)]
    pub fixed_clocks: Vec<ExtalSpec>,
    #[serde(default)]
    pub clock_controller: Option<ClockControllerSpec>,
    #[serde(default)]
    pub clocks: Vec<ClockSpec>,
    #[serde(default)]
    pub resets: Vec<ResetSpec>,
    pub devices: Keyed<DeviceSpec>,
    #[serde(default)]
    pub thermal_zones: Vec<ZoneSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowSpec {
    pub guest_base: u64,
    pub soc_base: u64,
    pub size: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GicSpec {
    pub distributor: u64,
    pub spi_intid_base: u32,
    pub num_spis: u32,
    /// Inclusive ranges of SPIs the machine leaves free for the SoC's devices.
    pub free_spis: Vec<[u32; 2]>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockControllerSpec {
    pub device: String,
    pub mon_offset: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtalSpec {
    pub name: String,
    pub node: String,
    pub label: String,
    pub frequency: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitSpec {
    pub reg: String,
    pub bit: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BitsSpec {
    pub reg: String,
    pub bits: Vec<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClockSpec {
    pub name: String,
    pub id: u32,
    pub on: BitSpec,
    #[serde(default)]
    pub mstop: Option<BitsSpec>,
    #[serde(default)]
    pub critical: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResetSpec {
    pub name: String,
    pub id: u32,
    pub rst: BitSpec,
    #[serde(default)]
    pub critical: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSpec {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub label: Option<String>,
    pub base: u64,
    pub size: u64,
    #[serde(default)]
    pub interrupts: Vec<InterruptSpec>,
    #[serde(default)]
    pub channels: Option<u32>,
    #[serde(default)]
    pub gate: Option<GateSpec>,
    #[serde(default)]
    pub conditions: Option<Keyed<RuleSpec>>,
    #[serde(default)]
    pub inputs: Option<Keyed<String>>,
    #[serde(default)]
    pub dt: Option<DtSpec>,
    #[serde(default)]
    pub i2c_targets: Vec<I2cTargetSpec>,
    pub registers: Vec<RegisterSpec>,
}

/// A device on an I2C controller's bus (`devices.<name>.i2c_targets[]`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct I2cTargetSpec {
    pub name: String,
    pub model: String,
    pub address: u32,
    pub size: u32,
    pub page_size: u32,
    #[serde(default)]
    pub contents: String,
    #[serde(default)]
    pub fill: Option<u32>,
    #[serde(default)]
    pub dt: Option<I2cTargetDtSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct I2cTargetDtSpec {
    #[serde(default)]
    pub label: Option<String>,
    pub compatible: Vec<String>,
    #[serde(default)]
    pub properties: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterruptSpec {
    pub name: String,
    #[serde(default)]
    pub soc_spi: Option<u32>,
    #[serde(default)]
    pub spi: Option<u32>,
    #[serde(default)]
    pub flags: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    #[serde(default)]
    pub clocks: Vec<String>,
    #[serde(default)]
    pub resets: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateSpec {
    #[serde(default)]
    pub clocks: Vec<String>,
    #[serde(default)]
    pub resets: Vec<String>,
    #[serde(default)]
    pub bus_error: BusErrorWhen,
}

/// Which failing gate conditions make the bus answer with an error (an abort); the other
/// failing conditions are reported as suspect accesses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BusErrorWhen {
    /// A gate clock is stopped (CLK_MON 0) and its bus is in module stop (MSTOP set).
    #[default]
    ClockStoppedAndMstop,
    /// A gate clock is stopped, whatever MSTOP says.
    ClockStopped,
    /// Any gate condition fails (a held reset too).
    Any,
}

impl BusErrorWhen {
    pub fn as_str(self) -> &'static str {
        match self {
            BusErrorWhen::ClockStoppedAndMstop => "clock-stopped-and-mstop",
            BusErrorWhen::ClockStopped => "clock-stopped",
            BusErrorWhen::Any => "any",
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterSpec {
    pub name: String,
    pub offset: u64,
    pub access: RegAccess,
    #[serde(default)]
    pub reset: u32,
    #[serde(default)]
    pub mask: Option<u32>,
    #[serde(default)]
    pub fields: Vec<FieldSpec>,
    /// One register per channel: `count` copies `stride` bytes apart, named
    /// `<name><first + i>` (a DMA controller's per-channel registers).
    #[serde(default)]
    pub repeat: Option<RepeatSpec>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatSpec {
    pub count: u32,
    pub stride: u64,
    #[serde(default)]
    pub first: u32,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldSpec {
    pub name: String,
    pub lsb: u32,
    pub width: u32,
    #[serde(default)]
    pub self_clear: bool,
    #[serde(default)]
    pub clear_on_read: bool,
    /// `REGISTER.FIELD` of the same device whose value this field reads.
    #[serde(default)]
    pub mirror: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IoChannelSpec {
    pub device: String,
    pub channel: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtSpec {
    pub node: String,
    pub label: String,
    pub compatible: Vec<String>,
    #[serde(default)]
    pub clocks: Vec<String>,
    #[serde(default)]
    pub clock_names: Vec<String>,
    #[serde(default)]
    pub resets: Vec<String>,
    #[serde(default)]
    pub reset_names: Vec<String>,
    #[serde(default)]
    pub power_domains: Option<String>,
    #[serde(default)]
    pub irq_flags: Option<u32>,
    #[serde(default)]
    pub interrupt_names: bool,
    #[serde(default)]
    pub io_channels: Vec<IoChannelSpec>,
    #[serde(default)]
    pub io_channel_names: Vec<String>,
    #[serde(default)]
    pub module_clock_cell: Option<u32>,
    #[serde(default)]
    pub channel_nodes: bool,
    #[serde(default)]
    pub sram_export: Option<String>,
    /// The node's `reg` as several ranges of the device, `[offset, size]` each (a DMA
    /// controller's channel registers and its DMARS block); default one range, the device.
    #[serde(default)]
    pub regions: Vec<[u64; 2]>,
    #[serde(default)]
    pub properties: Vec<String>,
    /// Child nodes without a device of their own (the usbphy-ctrl's `regulator-vbus`).
    #[serde(default)]
    pub children: Vec<DtChildSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DtChildSpec {
    pub node: String,
    #[serde(default)]
    pub label: Option<String>,
    #[serde(default)]
    pub properties: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZoneSpec {
    pub name: String,
    pub label: String,
    pub sensor: String,
    pub polling_delay_passive: u32,
    pub polling_delay: u32,
    #[serde(default)]
    pub trips: Vec<TripSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TripSpec {
    pub name: String,
    #[serde(default)]
    pub label: Option<String>,
    pub temperature: i32,
    pub hysteresis: u32,
    #[serde(rename = "type")]
    pub kind: TripKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TripKind {
    Active,
    Passive,
    Hot,
    Critical,
}

impl TripKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TripKind::Active => "active",
            TripKind::Passive => "passive",
            TripKind::Hot => "hot",
            TripKind::Critical => "critical",
        }
    }
}

/// A YAML mapping kept in file order that refuses a key given twice (serde's maps would
/// silently keep the last one).
#[derive(Debug)]
pub struct Keyed<T>(pub Vec<(String, T)>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Keyed<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for KeyedVisitor<T> {
            type Value = Keyed<T>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping from unique names to entries")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Keyed<T>, A::Error> {
                let mut entries: Vec<(String, T)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(de::Error::custom(format!(
                            "duplicate name `{key}`: each name must be listed once"
                        )));
                    }
                    let value = map.next_value::<T>()?;
                    entries.push((key, value));
                }
                Ok(Keyed(entries))
            }
        }

        deserializer.deserialize_map(KeyedVisitor(PhantomData))
    }
}
