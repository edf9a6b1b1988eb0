//! rzgate's guest-to-plugin mailbox (not a SoC device): the guest writes the number of
//! the test step it starts to STEP, and later events carry it.

use serde_json::Value;

use crate::device::{BuildError, Effects, Env, Peripheral};
use crate::regs::{find, Missing, RegFile, Register};
use crate::soc::Device;

/// The registry name of this model.
pub const MODEL: &str = "mailbox";

/// Number of the test step the guest starts (u32, from 1).
pub const STEP: &str = "STEP";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MailboxLayout {
    step: usize,
}

impl MailboxLayout {
    pub fn resolve(registers: &[Register]) -> Result<MailboxLayout, Missing> {
        Ok(MailboxLayout {
            step: find(registers, STEP)?,
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mailbox {
    registers: Vec<Register>,
    regs: RegFile,
    layout: MailboxLayout,
}

impl Mailbox {
    pub fn new(dev: &Device) -> Result<Mailbox, BuildError> {
        let layout = MailboxLayout::resolve(&dev.registers)
            .map_err(|e| BuildError::new("registers", format!("the {MODEL} model needs {e}")))?;
        let registers = dev.registers.clone();
        let regs = RegFile::new(&registers);
        Ok(Mailbox {
            registers,
            regs,
            layout,
        })
    }
}

impl Peripheral for Mailbox {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
    }

    fn write(&mut self, reg: usize, value: u32, _env: &Env, fx: &mut Effects) {
        self.regs.write(&self.registers, reg, value);
        if reg == self.layout.step {
            fx.marker = Some(self.regs.get(reg));
        }
    }

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
    use crate::test_soc;

    #[test]
    fn step_write_reports_the_step() {
        let soc = test_soc();
        let dev = soc.device("mailbox").expect("mailbox");
        let mut m = Mailbox::new(dev).expect("mailbox builds");
        let mut fx = Effects::default();
        m.write(0, 3, &Env::EMPTY, &mut fx);
        assert_eq!(fx.marker, Some(3));
        assert_eq!(m.value(0), 3);
        m.reset();
        assert_eq!(m.value(0), 0);
    }
}
