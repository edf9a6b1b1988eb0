//! The DMAC through the bus, as rz-dmac drives a memcpy: the descriptor and the buffers in
//! guest memory (the bus's `GuestMemory`, a `Vec` here), the channel's registers in the
//! window, its edge line at the GIC; the gate; a snapshot between two transfers.

mod common;

use std::sync::Arc;

use rzgate_core::config::{Fault, ModelConfig};
use rzgate_core::device::{GuestMemory, VecMemory};
use rzgate_core::sim::Sim;

const RAM: u64 = 0x4000_0000;
const DESC: u32 = 0x4000_0100;
const SRC: u32 = 0x4000_1000;
const DST: u32 = 0x4000_4000;

/// A `VecMemory` the test keeps a handle on while the bus owns the other.
struct Shared(Arc<VecMemory>);

impl GuestMemory for Shared {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), String> {
        self.0.read(phys, buf)
    }
    fn write(&self, phys: u64, data: &[u8]) -> Result<(), String> {
        self.0.write(phys, data)
    }
}

fn with_memory(sim: &mut Sim) -> Arc<VecMemory> {
    let mem = Arc::new(VecMemory::new(RAM, 0x8000));
    sim.bus.set_memory(Box::new(Shared(mem.clone())));
    mem
}

/// The GIC set-pending write of line `name`.
fn pend(sim: &Sim, name: &str) -> (u64, u64) {
    common::gic_pend(sim, "dmac", name)
}

/// rz_dmac_probe with the clocks on: the channel reset (CHCTRL_DEFAULT), DCTRL_DEFAULT.
fn probe(sim: &mut Sim) {
    assert!(common::clk_enable(sim, "dmac_aclk", true));
    assert!(common::clk_enable(sim, "dmac_pclk", true));
    sim.w("dmac", "CHCTRL0", 0x0002_027a);
    sim.w("dmac", "DCTRL0", 0x3);
    sim.take_irqs();
}

fn memcpy(sim: &mut Sim, mem: &VecMemory, len: u32) {
    let words = [0x3, SRC, DST, len, 0x8040_0008, 0, 0, DESC + 32];
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
    mem.write(u64::from(DESC), &bytes).expect("descriptor");
    sim.w("dmac", "NXLA0", DESC);
    sim.w("dmac", "CHCFG0", 0x8040_0008);
    sim.w("dmac", "CHCTRL0", 1 << 3);
    sim.w("dmac", "CHCTRL0", (1 << 2) | 1);
}

#[test]
fn a_memcpy_copies_and_raises_ch0_at_the_gic() {
    let mut sim = common::sim();
    let mem = with_memory(&mut sim);
    probe(&mut sim);
    let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    mem.write(u64::from(SRC), &data).expect("source");
    memcpy(&mut sim, &mem, 1000);
    assert_eq!(mem.peek(u64::from(DST), 1000), data);
    let want = pend(&sim, "ch0");
    assert!(sim.take_irqs().iter().any(|w| (w.phys, w.value) == want));
    // The window holds what the IRQ handler reads: END, EN clear.
    assert_eq!(sim.r("dmac", "CHSTAT0") & 0x21, 0x20);
    assert_eq!(sim.r("dmac", "CRLA0"), DESC);
    sim.w("dmac", "CHCTRL0", 1 << 5);
    assert_eq!(sim.r("dmac", "CHSTAT0") & 0x20, 0);
    assert!(sim.aborts().is_empty());
}

#[test]
fn without_guest_memory_a_start_is_a_channel_error() {
    let mut sim = common::sim();
    probe(&mut sim);
    sim.w("dmac", "NXLA0", DESC);
    sim.w("dmac", "CHCFG0", 0x8040_0008);
    sim.w("dmac", "CHCTRL0", (1 << 2) | 1);
    assert_ne!(sim.r("dmac", "CHSTAT0") & (1 << 4), 0, "CHSTAT.ER");
    let irqs = sim.take_irqs();
    for line in ["ch0", "error"] {
        let want = pend(&sim, line);
        assert!(irqs.iter().any(|w| (w.phys, w.value) == want), "{line}");
    }
}

#[test]
fn a_gated_start_does_nothing() {
    let mut sim = common::sim();
    let mem = with_memory(&mut sim);
    probe(&mut sim);
    common::clk_disable(&mut sim, "dmac_pclk", true);
    mem.write(u64::from(SRC), &[7; 16]).expect("source");
    memcpy(&mut sim, &mem, 16);
    assert!(!sim.aborts().is_empty(), "the accesses are aborts");
    assert_eq!(mem.peek(u64::from(DST), 16), vec![0; 16]);
    assert!(sim.take_irqs().is_empty());
}

#[test]
fn the_stuck_fault_fires_and_a_snapshot_keeps_the_channel_enabled() {
    let mut sim = common::sim_faults(&[Fault::DmacTransferStuck]);
    let mem = with_memory(&mut sim);
    probe(&mut sim);
    memcpy(&mut sim, &mem, 16);
    assert_eq!(sim.r("dmac", "CHSTAT0") & 0x21, 0x1, "enabled, never ended");
    assert!(sim.take_irqs().is_empty());
    let restored = sim.restored(
        common::soc(),
        &ModelConfig {
            faults: vec![Fault::DmacTransferStuck],
            ..ModelConfig::default()
        },
    );
    assert_eq!(restored.bus.model_state(), sim.bus.model_state());
}
