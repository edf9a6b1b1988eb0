//! The model of a device whose driver needs only declared registers: everything it does is
//! in the SoC description. Reset values and access kinds (`rw`, `ro`, `w1c`, `we16`,
//! `we16-field`) come from the register list; the field behaviours it adds are declared
//! per field:
//!
//! - `self_clear`: a written 1 acts and reads back 0 (a start or soft-reset trigger);
//! - `clear_on_read`: a read of the register clears the field (the next read sees 0);
//! - `mirror: REGISTER.FIELD`: the field reads what another field of the device holds (a
//!   status bit that follows its control bit).
//!
//! A device without `model:` gets this one.

use serde_json::Value;

use crate::device::{BuildError, Effects, Env, Peripheral};
use crate::regs::{Behaviour, RegFile, Register};
use crate::soc::Device;

/// The registry name of this model.
pub const MODEL: &str = crate::soc::GENERIC_MODEL;

/// One mirrored field: bits `mask` of register `reg` take the source's bits.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Mirror {
    reg: usize,
    mask: u32,
    lsb: u32,
    source_reg: usize,
    source_lsb: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generic {
    registers: Vec<Register>,
    regs: RegFile,
    /// Per register: the bits that clear after a write.
    self_clear: Vec<u32>,
    /// Per register: the bits a read clears.
    clear_on_read: Vec<u32>,
    mirrors: Vec<Mirror>,
}

impl Generic {
    pub fn new(dev: &Device) -> Result<Generic, BuildError> {
        if !dev.i2c_targets.is_empty() {
            return Err(BuildError::new(
                "i2c_targets",
                "a device without a model carries no I2C targets (the `riic` model does)",
            ));
        }
        let registers = dev.registers.clone();
        let mut self_clear = vec![0; registers.len()];
        let mut clear_on_read = vec![0; registers.len()];
        let mut mirrors = Vec::new();
        for (i, r) in registers.iter().enumerate() {
            for f in &r.fields {
                match f.behaviour {
                    Behaviour::Plain => {}
                    Behaviour::SelfClear => self_clear[i] |= f.mask(),
                    Behaviour::ClearOnRead => clear_on_read[i] |= f.mask(),
                    Behaviour::Mirror { reg, lsb } => mirrors.push(Mirror {
                        reg: i,
                        mask: f.mask(),
                        lsb: f.lsb,
                        source_reg: reg,
                        source_lsb: lsb,
                    }),
                }
            }
        }
        let regs = RegFile::new(&registers);
        let mut model = Generic {
            registers,
            regs,
            self_clear,
            clear_on_read,
            mirrors,
        };
        model.update_mirrors();
        Ok(model)
    }

    fn update_mirrors(&mut self) {
        for m in &self.mirrors {
            let width_mask = m.mask >> m.lsb;
            let bits = (self.regs.get(m.source_reg) >> m.source_lsb) & width_mask;
            let value = (self.regs.get(m.reg) & !m.mask) | (bits << m.lsb);
            self.regs.set(m.reg, value);
        }
    }
}

impl Peripheral for Generic {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
        self.update_mirrors();
    }

    fn write(&mut self, reg: usize, value: u32, _env: &Env, _fx: &mut Effects) {
        self.regs.write(&self.registers, reg, value);
        if let Some(&bits) = self.self_clear.get(reg) {
            if bits != 0 {
                self.regs.set(reg, self.regs.get(reg) & !bits);
            }
        }
        self.update_mirrors();
    }

    fn watches_reads(&self) -> bool {
        self.clear_on_read.iter().any(|&bits| bits != 0)
    }

    fn after_read(&mut self, reg: usize, _env: &Env, _fx: &mut Effects) -> bool {
        let bits = self.clear_on_read.get(reg).copied().unwrap_or(0);
        let old = self.regs.get(reg);
        if old & bits == 0 {
            return false;
        }
        self.regs.set(reg, old & !bits);
        self.update_mirrors();
        true
    }

    /// Mirrored fields are register bits too: the values are the whole state.
    fn save(&self) -> Value {
        self.regs.save()
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        self.regs.load(state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soc::Soc;

    const YAML: &str = r#"
name: test
window: { guest_base: 0x7d000000, soc_base: 0x10000000, size: 0x10000 }
bus_error: 0xffffffff
gic: { distributor: 0x08000000, spi_intid_base: 32, num_spis: 256, free_spis: [[176, 255]] }
extal: { name: extal, node: extal-clk, label: extal_clk, frequency: 24000000 }
devices:
  timer:
    base: 0x10000000
    size: 0x100
    registers:
      - { name: ID,   offset: 0x0, access: ro, reset: 0x0a5a0001 }
      - name: CTRL
        offset: 0x4
        access: rw
        mask: 0x3
        fields:
          - { name: EN, lsb: 0, width: 1 }
          - { name: SWRST, lsb: 1, width: 1, self_clear: true }
      - name: STS
        offset: 0x8
        access: ro
        fields:
          - { name: RUNNING, lsb: 0, width: 1, mirror: CTRL.EN }
      - name: EVT
        offset: 0xc
        access: w1c
        reset: 0x5
        fields:
          - { name: OVF, lsb: 0, width: 1, clear_on_read: true }
          - { name: CMP, lsb: 2, width: 1 }
"#;

    fn model() -> Generic {
        let soc = Soc::parse(YAML, "test.yaml").expect("parses");
        Generic::new(soc.device("timer").expect("timer")).expect("builds")
    }

    fn w(m: &mut Generic, reg: usize, v: u32) {
        m.write(reg, v, &Env::EMPTY, &mut Effects::default());
    }

    #[test]
    fn read_only_id_keeps_its_reset_value() {
        let mut m = model();
        w(&mut m, 0, 0);
        assert_eq!(m.value(0), 0x0a5a_0001);
    }

    #[test]
    fn self_clearing_bit_reads_back_zero_and_keeps_the_others() {
        let mut m = model();
        w(&mut m, 1, 0x3);
        assert_eq!(m.value(1), 0x1);
    }

    #[test]
    fn status_bit_follows_its_control_bit() {
        let mut m = model();
        assert_eq!(m.value(2), 0);
        w(&mut m, 1, 0x1);
        assert_eq!(m.value(2), 0x1);
        w(&mut m, 1, 0x0);
        assert_eq!(m.value(2), 0);
    }

    #[test]
    fn clear_on_read_clears_only_its_field_and_only_once() {
        let mut m = model();
        assert!(m.watches_reads(), "EVT.OVF clears on read");
        let mut fx = Effects::default();
        assert!(m.after_read(3, &Env::EMPTY, &mut fx));
        assert_eq!(m.value(3), 0x4, "CMP stays; it is write-1-to-clear");
        assert!(
            !m.after_read(3, &Env::EMPTY, &mut fx),
            "nothing left to clear"
        );
        assert!(!m.after_read(1, &Env::EMPTY, &mut fx));
        assert!(fx.is_empty());
    }

    #[test]
    fn reset_restores_power_on_values() {
        let mut m = model();
        w(&mut m, 1, 0x1);
        m.after_read(3, &Env::EMPTY, &mut Effects::default());
        m.reset();
        assert_eq!(m.values(), &[0x0a5a_0001, 0, 0, 0x5]);
    }
}
