//! RIIC0 on the bus: i2c-riic's byte stores and loads reach the model as the byte
//! registers they address (one 32-bit register holds four), its interrupts become GIC
//! writes, and a gated RIIC aborts naming the register word.

mod common;

use rzgate_core::event::AccessKind;

const RIIC: u64 = 0x7d09_0000;
const ICCR1: u64 = RIIC;
const ICCR2: u64 = RIIC + 0x01;
const ICMR3: u64 = RIIC + 0x04;
const ICIER: u64 = RIIC + 0x07;
const ICSR2: u64 = RIIC + 0x09;
const ICBRL: u64 = RIIC + 0x10;
const ICDRT: u64 = RIIC + 0x12;
const ICDRR: u64 = RIIC + 0x13;

/// GICD_ISPENDR bit of `line` (0 tei .. 7 tmoi) of RIIC0: virt SPIs 176.. (allocated).
fn pend(line: u32) -> (u64, u64) {
    let intid = 32 + 176 + line;
    (0x0800_0200 + 4 * u64::from(intid / 32), 1 << (intid % 32))
}

fn raised(sim: &mut rzgate_core::sim::Sim, line: u32) -> bool {
    let (phys, bit) = pend(line);
    sim.take_irqs()
        .iter()
        .any(|w| w.phys == phys && w.value == bit)
}

#[test]
fn byte_accesses_drive_a_read_from_the_eeprom() {
    let mut sim = common::sim();
    assert!(common::clk_enable(&mut sim, "i2c0_pclk", true), "CLK_MON");
    // riic_init_hw (abridged): IICRST|SOWP, ICE, ACKWP|RDRFS, IICRST off.
    sim.write(ICCR1, 1, 0x50);
    sim.write(ICCR1, 1, 0xd0);
    sim.write(ICMR3, 1, 0x30);
    sim.write(ICCR1, 1, 0x90);
    assert_eq!(sim.read(ICCR1, 1), 0x9f, "ICE, SOWP, both pins high");
    assert_eq!(sim.read(ICCR2, 1) & 0x80, 0, "bus free");
    sim.take_irqs();

    // Read one byte: ST, the address with R, the dummy read, then the byte.
    sim.write(ICIER, 1, 0x30); // RIE | NAKIE
    sim.write(ICCR2, 1, 0x02);
    assert_eq!(sim.read(ICCR2, 1), 0xe0, "BBSY, MST, TRS");
    sim.write(ICDRT, 1, (0x50 << 1) | 1);
    assert!(raised(&mut sim, 1), "RXI after the address");
    assert_eq!(sim.read(ICSR2, 1) & 0x20, 0x20, "RDRF");
    // Loading ICBRL, in the same word as ICDRR, takes nothing.
    sim.read(ICBRL, 1);
    assert!(!raised(&mut sim, 1));
    sim.read(ICDRR, 1); // dummy
    assert!(raised(&mut sim, 1), "RXI for the first byte");
    sim.write(ICIER, 1, 0x38); // + SPIE
    sim.write(ICCR2, 1, 0x08); // SP, held until the NACK
    sim.write(ICMR3, 1, 0x38); // ACKBT (NACK) with ACKWP
    assert_eq!(
        sim.read(ICDRR, 1),
        u64::from(b'r'),
        "the first byte of the contents"
    );
    assert!(raised(&mut sim, 3), "SPI: the STOP after the NACK");
    assert_eq!(sim.read(ICSR2, 1) & 0x08, 0x08, "STOP");
    assert_eq!(sim.read(ICCR2, 1) & 0x80, 0, "bus free again");
    assert!(sim.aborts().is_empty());
}

#[test]
fn absent_address_raises_naki() {
    let mut sim = common::sim();
    assert!(common::clk_enable(&mut sim, "i2c0_pclk", true), "CLK_MON");
    sim.write(ICCR1, 1, 0x90);
    sim.write(ICIER, 1, 0x90); // TIE | NAKIE
    sim.write(ICCR2, 1, 0x02);
    assert!(raised(&mut sim, 2), "TXI after the START");
    sim.write(ICDRT, 1, 0x3c << 1);
    assert!(raised(&mut sim, 5), "NAKI");
    assert_eq!(sim.read(ICSR2, 1) & 0x10, 0x10, "NACKF");
}

#[test]
fn gated_riic_aborts_naming_the_byte_register() {
    let mut sim = common::sim();
    assert!(common::clk_enable(&mut sim, "i2c0_pclk", true), "CLK_MON");
    common::clk_disable(&mut sim, "i2c0_pclk", true);
    assert_eq!(sim.read(ICSR2, 1), 0xff, "the bus-error value");
    let aborts = sim.aborts();
    assert_eq!(aborts.len(), 1);
    assert_eq!(aborts[0].device, "i2c0");
    // The byte read is ICSR2, a field of the declared word ICSR1_ICSR2_SARL0_SARU0.
    assert_eq!(aborts[0].register, "ICSR2");
    assert_eq!(aborts[0].access, AccessKind::Read);
}
