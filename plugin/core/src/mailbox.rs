//! rzgate's guest-to-plugin mailbox (not a SoC device): the guest writes the number of
//! the test step it starts to STEP, and later events carry it.

use crate::bus::Effects;
use crate::regs::{find, Missing, RegFile, Register};

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
    pub fn new(registers: Vec<Register>, layout: MailboxLayout) -> Mailbox {
        let regs = RegFile::new(&registers);
        Mailbox {
            registers,
            regs,
            layout,
        }
    }

    pub fn write(&mut self, idx: usize, value: u32) -> Effects {
        self.regs.write(&self.registers, idx, value);
        let mut fx = Effects::default();
        if idx == self.layout.step {
            fx.step = Some(self.regs.get(idx));
        }
        fx
    }

    #[inline]
    pub fn value(&self, idx: usize) -> u32 {
        self.regs.get(idx)
    }

    pub fn values(&self) -> &[u32] {
        self.regs.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::soc::{Layout, ModelKind};
    use crate::test_soc;

    #[test]
    fn step_write_reports_the_step() {
        let soc = test_soc();
        let dev = soc.device_by_model(ModelKind::Mailbox).expect("mailbox");
        let Layout::Mailbox(layout) = dev.layout.clone() else {
            panic!("mailbox layout")
        };
        let mut m = Mailbox::new(dev.registers.clone(), layout);
        assert_eq!(m.write(0, 3).step, Some(3));
        assert_eq!(m.value(0), 3);
    }
}
