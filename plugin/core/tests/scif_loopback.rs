//! SCIF3 through the bus, with the accesses sh-sci makes (8- and 16-bit, by register
//! offset in the RZ/G2L layout): the loopback, the interrupt lines at the GIC (dri and tei
//! one SPI), the gate, and a snapshot in the middle of a transfer.

mod common;

use rzgate_core::config::{Fault, ModelConfig};
use rzgate_core::sim::Sim;

const SCSCR: u64 = 0x04;
const SCFTDR: u64 = 0x06;
const SCFSR: u64 = 0x08;
const SCFRDR: u64 = 0x0a;
const SCFCR: u64 = 0x0c;
const SCFDR: u64 = 0x0e;
const SCLSR: u64 = 0x12;

fn base(sim: &Sim) -> u64 {
    let soc = sim.bus.soc();
    let dev = soc.device("scif3").expect("scif3");
    soc.window().guest_addr(dev.base)
}

/// The GIC set-pending write of line `name`.
fn pend(sim: &Sim, name: &str) -> (u64, u64) {
    common::gic_pend(sim, "scif3", name)
}

fn raised(sim: &mut Sim, name: &str) -> bool {
    let want = pend(sim, name);
    sim.take_irqs().iter().any(|w| (w.phys, w.value) == want)
}

/// sh-sci's probe and open: clock on, reset released, sci_set_termios (FIFO reset, RTRG 8,
/// TE|RE, RIE).
fn open(sim: &mut Sim) -> u64 {
    assert!(common::clk_enable(sim, "scif3_clk_pck", true));
    assert!(common::reset(sim, "scif3_rst_system_n", false));
    let b = base(sim);
    sim.write(b + SCSCR, 2, 0);
    sim.write(b + SCFCR, 2, 0x06);
    sim.write(b + SCFCR, 2, 0x80);
    sim.write(b + SCSCR, 2, 0x30);
    sim.write(b + SCSCR, 2, 0x70);
    sim.take_irqs();
    b
}

#[test]
fn sixteen_bytes_loop_back_with_rxi_and_txi_at_the_gic() {
    let mut sim = common::sim();
    let b = open(&mut sim);
    // sci_start_tx: TIE with TDFE set -> txi.
    sim.write(b + SCSCR, 2, 0xf0);
    assert!(raised(&mut sim, "txi"));
    for i in 0..16u64 {
        sim.write(b + SCFTDR, 1, 0x40 + i);
    }
    assert!(raised(&mut sim, "rxi"), "16 >= trigger 8");
    // SCFDR is the upper half of the word at 0x0c: R count 16, T count 0.
    assert_eq!(sim.read(b + SCFDR, 2), 16);
    let got: Vec<u64> = (0..16).map(|_| sim.read(b + SCFRDR, 1)).collect();
    assert_eq!(got, (0x40..0x50).collect::<Vec<_>>());
    assert_eq!(sim.read(b + SCFDR, 2), 0);
    // A 16-bit read of SCFSR pops nothing; clearing RDF|DR with the FIFO empty sticks.
    sim.write(b + SCFSR, 2, 0xfffc);
    assert_eq!(sim.read(b + SCFSR, 2) & 0x3, 0);
    assert!(sim.aborts().is_empty() && sim.suspects().is_empty());
}

#[test]
fn dri_and_tei_are_one_gic_line() {
    let sim = common::sim();
    assert_eq!(pend(&sim, "dri"), pend(&sim, "tei"));
    assert_ne!(pend(&sim, "dri"), pend(&sim, "rxi"));
}

#[test]
fn a_gated_scif_aborts_and_keeps_its_fifo() {
    let mut sim = common::sim();
    let b = open(&mut sim);
    sim.write(b + SCFTDR, 1, 0x55);
    common::clk_disable(&mut sim, "scif3_clk_pck", true);
    sim.read(b + SCFRDR, 1);
    assert_eq!(sim.aborts().len(), 1, "{:?}", sim.events);
    assert!(common::clk_enable(&mut sim, "scif3_clk_pck", true));
    assert_eq!(
        sim.read(b + SCFRDR, 1),
        0x55,
        "the aborted read popped nothing"
    );
}

#[test]
fn a_restored_scif_goes_on_with_its_fifos() {
    let mut sim = common::sim();
    let b = open(&mut sim);
    for i in 0..20u64 {
        sim.write(b + SCFTDR, 1, i);
    }
    let mut restored = sim.restored(common::soc(), &ModelConfig::default());
    assert_eq!(restored.read(b + SCFDR, 2), (4 << 8) | 16);
    let got: Vec<u64> = (0..20).map(|_| restored.read(b + SCFRDR, 1)).collect();
    assert_eq!(got, (0..20).collect::<Vec<_>>());
}

#[test]
fn the_overrun_fault_fires_and_bri_pends() {
    let mut sim = common::sim_faults(&[Fault::ScifRxOverrun]);
    let b = open(&mut sim);
    for i in 0..20u64 {
        sim.write(b + SCFTDR, 1, i);
        if i == 15 {
            for _ in 0..16 {
                sim.read(b + SCFRDR, 1);
            }
        }
    }
    assert!(raised(&mut sim, "bri"));
    assert_eq!(sim.read(b + SCLSR, 2) & 1, 1);
    assert!(sim
        .events
        .iter()
        .any(|e| format!("{e:?}").contains("ScifRxOverrun")));
}
