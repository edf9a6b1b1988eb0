//! Adding a peripheral whose driver needs only declared registers touches only the SoC
//! YAML: a device added to the shipped description, with no `model:` and no Rust, gets
//! its reset values, masks, declared field behaviour, gate and interrupt lines.
//!
//! The example is the watchdog as it was first added, register-only: the shipped
//! description now models it (`model: wdt`), so the test puts the register-only one in its
//! place.

mod common;

use rzgate_core::config::ModelConfig;
use rzgate_core::gate::GateState;
use rzgate_core::registry;
use rzgate_core::sim::Sim;

/// The RZ/G3S watchdog's registers as a register-only device (rzg2l_wdt.c: WDTCNT,
/// WDTSET, WDTTIM, WDTINT, PECR, PEEN), gated by wdt0_pclk like the real one.
const WDT: &str = r#"
  wdt0:
    base: 0x12800800
    size: 0x400
    interrupts:
      - { name: wdt, soc_spi: 53, flags: 4 }
      - { name: perrout, soc_spi: 52, flags: 4 }
    gate:
      clocks: [wdt0_pclk]
      resets: [wdt0_presetn]
    dt:
      node: watchdog
      label: wdt0
      compatible: ["renesas,r9a08g045-wdt", "renesas,rzg2l-wdt"]
      interrupt_names: true
    registers:
      - name: WDTCNT
        offset: 0x00
        access: rw
        mask: 0x1
        fields:
          - { name: WDTEN, lsb: 0, width: 1 }
      - { name: WDTSET, offset: 0x04, access: rw, mask: 0xfff00000 }
      - { name: WDTTIM, offset: 0x08, access: ro, reset: 0x00000000 }
      - name: WDTINT
        offset: 0x0c
        access: w1c
        mask: 0x1
        reset: 0x1
        fields:
          - { name: INTDISP, lsb: 0, width: 1, clear_on_read: true }
      - name: PECR
        offset: 0x10
        access: rw
        fields:
          - { name: PEEN_CLR, lsb: 0, width: 1, self_clear: true }
          - { name: RUNNING, lsb: 4, width: 1, mirror: WDTCNT.WDTEN }
"#;

/// The shipped description with its `wdt0` (and the comment above it) replaced by [`WDT`].
fn with_wdt() -> String {
    let text = common::soc_text();
    let start = text
        .find("\n  # The watchdog (rzg2l_wdt.c")
        .expect("wdt0 comment");
    let end = text
        .find("\n  # Not a SoC device: the guest marks test steps here")
        .expect("mailbox comment");
    assert!(start < end);
    let mut out = text.clone();
    out.replace_range(start..end, WDT);
    out
}

#[test]
fn a_register_only_device_needs_nothing_but_yaml() {
    let soc = registry::parse(&with_wdt(), "with-wdt.yaml").expect("valid");
    let dev = soc.device("wdt0").expect("wdt0");
    assert_eq!(dev.model, "generic");
    // Lines without `spi` are allocated from gic.free_spis in declaration order, skipping the
    // ADC's pinned 200: RIIC0's eight lines (declared before) took 176-183.
    let spis: Vec<u32> = dev.interrupts.iter().map(|l| l.spi).collect();
    assert_eq!(spis, vec![184, 185]);
    let dts = soc.dt_fragment("/intc@8000000");
    assert!(dts.contains("wdt0: watchdog@7f800800 {"), "{dts}");
    assert!(dts.contains("interrupts = <0 184 4>, <0 185 4>;"), "{dts}");
    assert!(
        dts.contains("interrupt-names = \"wdt\", \"perrout\";"),
        "{dts}"
    );
    assert!(
        dts.contains("/* wdt: SoC SPI 53 -> virt SPI 184 (allocated) */"),
        "{dts}"
    );

    let mut sim = Sim::new(soc, &ModelConfig::default());
    let base = sim.addr("wdt0", "WDTCNT");
    assert_eq!(base, 0x7f80_0800);
    // Reset values in the window before the guest runs (clock off, MSTOP clear: suspect).
    assert_eq!(sim.peek(sim.addr("wdt0", "WDTINT"), 4), 0x1);
    assert_eq!(sim.bus.gate_state("wdt0"), Some(GateState::Suspect));
    assert!(common::clk_enable(&mut sim, "wdt0_pclk", true));
    assert_eq!(sim.bus.gate_state("wdt0"), Some(GateState::Open));

    // Masks: only the declared bits stick.
    sim.w("wdt0", "WDTSET", 0xffff_ffff);
    assert_eq!(sim.r("wdt0", "WDTSET"), 0xfff0_0000);
    sim.w("wdt0", "WDTTIM", 0x1234);
    assert_eq!(sim.r("wdt0", "WDTTIM"), 0, "read-only");
    // A status bit that follows its control bit.
    sim.w("wdt0", "WDTCNT", 1);
    assert_eq!(sim.r("wdt0", "PECR") & 0x10, 0x10);
    // Self-clearing trigger.
    sim.w("wdt0", "PECR", 0x1);
    assert_eq!(sim.r("wdt0", "PECR") & 0x1, 0);
    // Clear-on-read: the read returns 1, the next one 0.
    assert_eq!(sim.r("wdt0", "WDTINT"), 1);
    assert_eq!(sim.r("wdt0", "WDTINT"), 0);

    // The declared gate: clock off with MSTOP set is a bus error.
    common::clk_disable(&mut sim, "wdt0_pclk", true);
    assert_eq!(sim.r("wdt0", "WDTCNT"), 0xffff_ffff);
    assert_eq!(sim.aborts().len(), 1);
    assert_eq!(sim.aborts()[0].device, "wdt0");
}

#[test]
fn a_register_only_device_is_restored_from_a_snapshot() {
    let soc = registry::parse(&with_wdt(), "with-wdt.yaml").expect("valid");
    let mut sim = Sim::new(soc.clone(), &ModelConfig::default());
    assert!(common::clk_enable(&mut sim, "wdt0_pclk", true));
    sim.w("wdt0", "WDTSET", 0xabc0_0000);
    sim.w("wdt0", "WDTCNT", 1);
    let mut restored = sim.restored(soc, &ModelConfig::default());
    for sim in [&mut sim, &mut restored] {
        assert_eq!(sim.r("wdt0", "WDTSET"), 0xabc0_0000);
        assert_eq!(sim.r("wdt0", "PECR") & 0x10, 0x10, "the mirror");
        assert_eq!(sim.r("wdt0", "WDTINT"), 1);
        assert_eq!(sim.r("wdt0", "WDTINT"), 0, "clear-on-read still acts");
    }
    assert_eq!(restored.bus.model_state(), sim.bus.model_state());
}
