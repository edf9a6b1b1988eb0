//! Register access kinds and a device's register file.
//!
//! The YAML declares every register with an access kind; this module is the one place
//! where a kind turns a bus write into a new register value. Device models own a
//! [`RegFile`] and add behaviour (mirrors, conversions, latches) on top of it.

use serde::{Deserialize, Serialize};

/// How a bus write changes a register (declared per register in the SoC YAML).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RegAccess {
    /// Written bits under `mask` take the written value.
    Rw,
    /// Writes are ignored; the value is the reset value or what the model computes.
    Ro,
    /// Writing 1 clears a bit under `mask` (status registers like ADSTS).
    W1c,
    /// Renesas write-enable convention: bit n (n < 16) changes only when bit 16+n of the
    /// written value is set; reads return the low half only (CLK_ON, RST, MSTOP).
    We16,
    /// G3S divider/selector convention: a field changes when any enable bit in
    /// 16+lsb .. 16+lsb+width-1 is set (accepts both the single-enable G3S style and the
    /// full-mask HIWORD style); reads return the low half only.
    We16Field,
}

impl RegAccess {
    pub fn as_str(self) -> &'static str {
        match self {
            RegAccess::Rw => "rw",
            RegAccess::Ro => "ro",
            RegAccess::W1c => "w1c",
            RegAccess::We16 => "we16",
            RegAccess::We16Field => "we16-field",
        }
    }
}

/// A named bit field of a register.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Field {
    pub name: String,
    pub lsb: u32,
    pub width: u32,
    /// Declared behaviour the generic model gives the field (models with Rust behaviour
    /// may ignore it).
    #[serde(skip_serializing_if = "Behaviour::is_plain")]
    pub behaviour: Behaviour,
}

/// Simple behaviour of a field, declared in the SoC description instead of written in Rust.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Behaviour {
    /// Holds what the access kind leaves in it.
    #[default]
    Plain,
    /// A written 1 acts and reads back 0 at once (a start or reset trigger).
    SelfClear,
    /// Reading the register clears the field (a latched status the driver acknowledges by
    /// reading it).
    ClearOnRead,
    /// Reads what field `lsb..` of register `reg` (same device, same width) holds: a status
    /// bit that follows a control bit.
    Mirror { reg: usize, lsb: u32 },
}

impl Behaviour {
    pub fn is_plain(&self) -> bool {
        *self == Behaviour::Plain
    }
}

impl Field {
    /// The field's bits in register position.
    pub fn mask(&self) -> u32 {
        field_mask(self.lsb, self.width)
    }
}

/// Bits lsb..lsb+width-1, saturating at bit 31 (validated fields never saturate).
pub fn field_mask(lsb: u32, width: u32) -> u32 {
    if lsb >= 32 || width == 0 {
        return 0;
    }
    let ones = if width >= 32 {
        u32::MAX
    } else {
        (1u32 << width) - 1
    };
    ones.checked_shl(lsb).unwrap_or(0)
}

/// One 32-bit register as declared in the SoC description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Register {
    pub name: String,
    /// Offset from the device base (a multiple of 4).
    pub offset: u32,
    pub reset: u32,
    pub access: RegAccess,
    /// Implemented bits: writes touch only these (rw, w1c, we16) and reads of `ro`
    /// registers the model fills are clipped to them.
    pub mask: u32,
    pub fields: Vec<Field>,
}

impl Register {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// The name a report gives an access of `size` bytes at byte `byte` of this word. The
    /// SoC description declares 32-bit words; where the hardware has narrower registers
    /// side by side (SCIF's SCSMR and SCBRR, usbhs's SYSCFG and BUSWAIT), they are fields
    /// of one word, and an access that covers exactly one of them is to that register, by
    /// the name the driver uses. Any other access is to the word.
    pub fn name_for_access(&self, byte: u32, size: u32) -> &str {
        if size == 0 || size >= 4 {
            return &self.name;
        }
        self.fields
            .iter()
            .find(|f| f.lsb == byte * 8 && f.width == size * 8)
            .map_or(&self.name, |f| &f.name)
    }

    /// The value the register holds after a bus write of `written` when it held `old`.
    pub fn apply_write(&self, old: u32, written: u32) -> u32 {
        match self.access {
            RegAccess::Rw => (old & !self.mask) | (written & self.mask),
            RegAccess::Ro => old,
            RegAccess::W1c => old & !(written & self.mask),
            RegAccess::We16 => {
                let enabled = (written >> 16) & self.mask & 0xffff;
                (old & !enabled) | (written & enabled)
            }
            RegAccess::We16Field => {
                let enables = written >> 16;
                let mut value = old;
                for field in &self.fields {
                    let m = field.mask() & 0xffff;
                    if enables & m != 0 {
                        value = (value & !m) | (written & m);
                    }
                }
                value
            }
        }
    }
}

/// The live values of one device's registers, indexed like its declaration list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegFile {
    values: Vec<u32>,
}

impl RegFile {
    pub fn new(registers: &[Register]) -> RegFile {
        RegFile {
            values: registers.iter().map(|r| r.reset).collect(),
        }
    }

    /// The value of register `idx`; 0 for an index the device does not have.
    #[inline]
    pub fn get(&self, idx: usize) -> u32 {
        self.values.get(idx).copied().unwrap_or(0)
    }

    /// Sets register `idx` directly (model-driven bits); ignored for a bad index.
    #[inline]
    pub fn set(&mut self, idx: usize, value: u32) {
        if let Some(v) = self.values.get_mut(idx) {
            *v = value;
        }
    }

    /// Applies a bus write with the register's access kind; returns the old value.
    pub fn write(&mut self, registers: &[Register], idx: usize, written: u32) -> u32 {
        let old = self.get(idx);
        if let (Some(reg), Some(v)) = (registers.get(idx), self.values.get_mut(idx)) {
            *v = reg.apply_write(old, written);
        }
        old
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn values(&self) -> &[u32] {
        &self.values
    }

    /// The values as a model's saved state (`{"registers": [...]}`), for models whose
    /// registers are all their state.
    pub fn save(&self) -> serde_json::Value {
        serde_json::json!({ "registers": self.values })
    }

    /// Takes back what [`RegFile::save`] wrote (the `registers` key of `state`); the
    /// number of values must be this device's.
    pub fn load(&mut self, state: &serde_json::Value) -> Result<(), String> {
        let values: Vec<u32> = state
            .get("registers")
            .cloned()
            .ok_or_else(|| "no `registers` list".to_string())
            .and_then(|v| {
                serde_json::from_value(v)
                    .map_err(|e| format!("`registers` is not a list of 32-bit values: {e}"))
            })?;
        if values.len() != self.values.len() {
            return Err(format!(
                "{} register values saved, the device declares {}",
                values.len(),
                self.values.len()
            ));
        }
        self.values = values;
        Ok(())
    }
}

/// A register or field a model needs but the SoC description does not declare.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Missing {
    pub register: String,
    pub field: Option<String>,
}

impl std::fmt::Display for Missing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            None => write!(f, "a register named {}", self.register),
            Some(field) => write!(f, "a field {} in register {}", field, self.register),
        }
    }
}

/// A register narrower than the 32-bit words the SoC description declares: a field of one
/// of them, named after the register (byte and 16-bit registers packed into words, as the
/// RTC and the SCIF have them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SubReg {
    /// Index of the declared word that holds it.
    pub word: usize,
    /// Its bits in the word.
    pub mask: u32,
}

impl SubReg {
    pub fn shift(self) -> u32 {
        self.mask.trailing_zeros().min(31)
    }

    /// The bytes of the word it occupies (bit n = byte lane n).
    pub fn lanes(self) -> u8 {
        (0..4u32)
            .filter(|b| self.mask & (0xff << (8 * b)) != 0)
            .fold(0, |acc, b| acc | (1 << b))
    }

    /// A store or load of `lanes` of word `word` covers (part of) it.
    pub fn hit_by(self, word: usize, lanes: u8) -> bool {
        self.word == word && self.lanes() & lanes != 0
    }

    /// Its value in `word_value` (the whole word).
    pub fn of(self, word_value: u32) -> u32 {
        (word_value & self.mask) >> self.shift()
    }

    /// `word_value` with this register replaced by `v`.
    pub fn with(self, word_value: u32, v: u32) -> u32 {
        (word_value & !self.mask) | ((v << self.shift()) & self.mask)
    }
}

/// Index of the register called `name`.
pub fn find(registers: &[Register], name: &str) -> Result<usize, Missing> {
    registers
        .iter()
        .position(|r| r.name == name)
        .ok_or_else(|| Missing {
            register: name.to_string(),
            field: None,
        })
}

/// Mask of field `field` of register `idx`.
pub fn find_field(registers: &[Register], idx: usize, field: &str) -> Result<u32, Missing> {
    let reg = registers.get(idx);
    reg.and_then(|r| r.field(field))
        .map(Field::mask)
        .ok_or_else(|| Missing {
            register: reg.map(|r| r.name.clone()).unwrap_or_default(),
            field: Some(field.to_string()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_halves() -> Register {
        Register {
            name: "SYSCFG_BUSWAIT".into(),
            offset: 0,
            reset: 0,
            access: RegAccess::Rw,
            mask: u32::MAX,
            fields: vec![
                Field {
                    name: "SYSCFG".into(),
                    lsb: 0,
                    width: 16,
                    behaviour: Behaviour::Plain,
                },
                Field {
                    name: "BUSWAIT".into(),
                    lsb: 16,
                    width: 16,
                    behaviour: Behaviour::Plain,
                },
                Field {
                    name: "USBE".into(),
                    lsb: 0,
                    width: 1,
                    behaviour: Behaviour::Plain,
                },
            ],
        }
    }

    #[test]
    fn an_access_covering_one_narrow_register_is_named_after_it() {
        let r = two_halves();
        assert_eq!(r.name_for_access(0, 2), "SYSCFG");
        assert_eq!(r.name_for_access(2, 2), "BUSWAIT");
    }

    #[test]
    fn other_accesses_are_named_after_the_word() {
        let r = two_halves();
        assert_eq!(r.name_for_access(0, 4), "SYSCFG_BUSWAIT");
        // A byte of SYSCFG is no declared register of its own (USBE is one bit).
        assert_eq!(r.name_for_access(0, 1), "SYSCFG_BUSWAIT");
        assert_eq!(r.name_for_access(1, 2), "SYSCFG_BUSWAIT");
        assert_eq!(r.name_for_access(0, 8), "SYSCFG_BUSWAIT");
    }

    fn reg(access: RegAccess, mask: u32, fields: Vec<Field>) -> Register {
        Register {
            name: "R".into(),
            offset: 0,
            reset: 0,
            access,
            mask,
            fields,
        }
    }

    #[test]
    fn rw_writes_only_masked_bits() {
        let r = reg(RegAccess::Rw, 0x0000_8005, vec![]);
        assert_eq!(r.apply_write(0x0000_0002, 0xffff_ffff), 0x0000_8007);
        assert_eq!(r.apply_write(0x0000_8007, 0), 0x0000_0002);
    }

    #[test]
    fn ro_ignores_writes() {
        let r = reg(RegAccess::Ro, 0xfff, vec![]);
        assert_eq!(r.apply_write(0x123, 0xffff_ffff), 0x123);
    }

    #[test]
    fn w1c_clears_written_ones() {
        let r = reg(RegAccess::W1c, 0x0001_01ff, vec![]);
        assert_eq!(r.apply_write(0x0001_0101, 0x0000_0100), 0x0001_0001);
        assert_eq!(r.apply_write(0x0001_0001, 0x0001_0001), 0);
        assert_eq!(r.apply_write(0x0000_0003, 0), 3);
    }

    #[test]
    fn we16_changes_only_enabled_bits_and_reads_low_half() {
        let r = reg(RegAccess::We16, 0xffff, vec![]);
        // CLK_ON write of 0x00020002: pclk on, adclk untouched.
        assert_eq!(r.apply_write(0x0000_0001, 0x0002_0002), 0x0000_0003);
        // Disable adclk only.
        assert_eq!(r.apply_write(0x0000_0003, 0x0001_0000), 0x0000_0002);
        // No enables: nothing changes even if the low half differs.
        assert_eq!(r.apply_write(0x0000_0002, 0x0000_ffff), 0x0000_0002);
    }

    #[test]
    fn we16_field_updates_when_any_enable_in_range_is_set() {
        let r = reg(
            RegAccess::We16Field,
            0xffff,
            vec![
                Field {
                    name: "A".into(),
                    lsb: 0,
                    width: 3,
                    behaviour: Behaviour::Plain,
                },
                Field {
                    name: "B".into(),
                    lsb: 4,
                    width: 3,
                    behaviour: Behaviour::Plain,
                },
            ],
        );
        // G3S style: (BIT(16) | 3) << 4 sets B = 3 with only enable bit 20.
        assert_eq!(r.apply_write(0x0000_0002, (0x1_0000 | 3) << 4), 0x0000_0032);
        // HIWORD style: full field mask in the high half.
        assert_eq!(r.apply_write(0x0000_0032, 0x0007_0005), 0x0000_0035);
        // Enable of another range leaves the field alone.
        assert_eq!(r.apply_write(0x0000_0035, 0x0000_0077), 0x0000_0035);
    }

    #[test]
    fn field_mask_covers_edges() {
        assert_eq!(field_mask(0, 32), u32::MAX);
        assert_eq!(field_mask(31, 1), 0x8000_0000);
        assert_eq!(field_mask(32, 1), 0);
        assert_eq!(field_mask(4, 0), 0);
    }
}
