//! Shared helpers: the shipped SoC description and driver-shaped access sequences
//! (what rzg2l-cpg, rzg2l_adc and rzg3s_thermal do, re-expressed as register traffic).
#![allow(dead_code)]

use std::path::PathBuf;

use rzgate_core::config::{Fault, ModelConfig};
use rzgate_core::sim::Sim;
use rzgate_core::soc::Soc;

pub fn soc_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../socs/r9a08g045.yaml")
}

pub fn soc_text() -> String {
    match std::fs::read_to_string(soc_path()) {
        Ok(t) => t,
        Err(e) => panic!("{}: {e}", soc_path().display()),
    }
}

pub fn soc() -> Soc {
    match Soc::load(&soc_path()) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

pub fn sim_with(cfg: ModelConfig) -> Sim {
    Sim::new(soc(), &cfg)
}

pub fn sim() -> Sim {
    sim_with(ModelConfig::default())
}

pub fn sim_faults(faults: &[Fault]) -> Sim {
    sim_with(ModelConfig {
        faults: faults.to_vec(),
        ..ModelConfig::default()
    })
}

/// Bounded poll like readl_poll_timeout_atomic: true when `cond` held within `tries` reads.
pub fn poll(sim: &mut Sim, dev: &str, reg: &str, tries: usize, cond: impl Fn(u32) -> bool) -> bool {
    (0..tries).any(|_| {
        let v = sim.r(dev, reg);
        cond(v)
    })
}

/// The CPG side of clk_enable() of a module clock: CLK_ON, MSTOP (first user), CLK_MON poll.
pub fn clk_enable(sim: &mut Sim, clock: &str, clear_mstop: bool) -> bool {
    let soc = sim.bus.soc().clone();
    let Some(c) = soc.clock(clock) else {
        panic!("no clock {clock}")
    };
    let cpg = soc.device("cpg").expect("cpg");
    let on = cpg.registers[c.on.reg].name.clone();
    let mon = cpg.registers[c.mon.reg].name.clone();
    let bit = c.on.mask();
    sim.w("cpg", &on, bit << 16 | bit);
    if clear_mstop {
        if let Some(m) = c.mstop {
            let name = cpg.registers[m.reg].name.clone();
            sim.w("cpg", &name, m.mask << 16);
        }
    }
    poll(sim, "cpg", &mon, 10_000, |v| v & bit != 0)
}

/// The CPG side of clk_disable(): MSTOP first (last user), then CLK_ON.
pub fn clk_disable(sim: &mut Sim, clock: &str, set_mstop: bool) {
    let soc = sim.bus.soc().clone();
    let Some(c) = soc.clock(clock) else {
        panic!("no clock {clock}")
    };
    let cpg = soc.device("cpg").expect("cpg");
    if set_mstop {
        if let Some(m) = c.mstop {
            let name = cpg.registers[m.reg].name.clone();
            sim.w("cpg", &name, m.mask << 16 | m.mask);
        }
    }
    let on = cpg.registers[c.on.reg].name.clone();
    sim.w("cpg", &on, c.on.mask() << 16);
}

/// __rzg2l_cpg_assert: write, then poll RST_MON until it reports the new state.
pub fn reset(sim: &mut Sim, name: &str, assert: bool) -> bool {
    let soc = sim.bus.soc().clone();
    let Some(r) = soc.reset(name) else {
        panic!("no reset {name}")
    };
    let cpg = soc.device("cpg").expect("cpg");
    let rst = cpg.registers[r.rst.reg].name.clone();
    let mon = cpg.registers[r.mon.reg].name.clone();
    let bit = r.rst.mask();
    sim.w("cpg", &rst, bit << 16 | if assert { 0 } else { bit });
    poll(sim, "cpg", &mon, 21, |v| assert == (v & bit != 0))
}

pub fn step(sim: &mut Sim, n: u32) {
    sim.w("mailbox", "STEP", n);
}

/// genpd + pm_clk resume of the ADC (adclk, then pclk; the first clears MSTOP), then
/// rzg2l_adc_pm_runtime_resume (PWDWNB).
pub fn adc_runtime_resume(sim: &mut Sim) {
    assert!(clk_enable(sim, "adc_adclk", true), "adclk CLK_MON");
    assert!(clk_enable(sim, "adc_pclk", false), "pclk CLK_MON");
    let v = sim.r("adc", "ADM0");
    sim.w("adc", "ADM0", v | 0x4);
}

/// rzg2l_adc_pm_runtime_suspend (PWDWNB off), then pm_clk suspend in reverse order.
pub fn adc_runtime_suspend(sim: &mut Sim) {
    let v = sim.r("adc", "ADM0");
    sim.w("adc", "ADM0", v & !0x4);
    clk_disable(sim, "adc_pclk", false);
    clk_disable(sim, "adc_adclk", true);
}

/// rzg2l_adc_probe up to and including hw_init; true when SRESB was seen.
pub fn adc_probe(sim: &mut Sim) -> bool {
    assert!(reset(sim, "adc_adrst_n", false));
    assert!(reset(sim, "adc_presetn", false));
    adc_runtime_resume(sim);
    let v = sim.r("adc", "ADM0");
    sim.w("adc", "ADM0", v | 0x8000);
    let ok = poll(sim, "adc", "ADM0", 6, |v| v & 0x8000 != 0);
    if ok {
        let v = sim.r("adc", "ADM3");
        sim.w("adc", "ADM3", (v & 0x0000_ff00) | 0x001d_007f);
    }
    ok
}

/// rzg2l_adc_conversion for channel `ch`: setup, start, the ISR (if the interrupt came),
/// stop. Returns the value the ISR latched, or None on timeout.
pub fn adc_convert(sim: &mut Sim, ch: u32) -> Option<u32> {
    assert_eq!(sim.r("adc", "ADM0") & 0x2, 0, "ADBSY before setup");
    let v = sim.r("adc", "ADM1");
    sim.w("adc", "ADM1", (v & !0x3011) | 0x4);
    let v = sim.r("adc", "ADM2");
    sim.w("adc", "ADM2", (v & !0x1ff) | (1 << ch));
    let v = sim.r("adc", "ADM3");
    sim.w(
        "adc",
        "ADM3",
        (v & !0xff) | if ch == 8 { 0xff } else { 0x7f },
    );
    let v = sim.r("adc", "ADINT");
    sim.w("adc", "ADINT", (v & !0x8000_0fff) | 0x1_0000 | (1 << ch));
    sim.take_irqs();
    let v = sim.r("adc", "ADM0");
    sim.w("adc", "ADM0", v | 1);
    let irqs = sim.take_irqs();
    let mut latched = None;
    if !irqs.is_empty() {
        // rzg2l_adc_isr
        let sts = sim.r("adc", "ADSTS");
        if sts & 0x1_0000 == 0 {
            for c in 0..9 {
                if sts & (1 << c) != 0 {
                    let r = sim.r("adc", &format!("ADCR{c}")) & 0xfff;
                    if c == ch {
                        latched = Some(r);
                    }
                }
            }
        }
        sim.w("adc", "ADSTS", sts);
    } else {
        let v = sim.r("adc", "ADINT");
        sim.w("adc", "ADINT", v & !0xfff);
    }
    let v = sim.r("adc", "ADM0");
    sim.w("adc", "ADM0", v & !1);
    assert!(
        poll(sim, "adc", "ADM0", 6, |v| v & 0x3 == 0),
        "stopping ADC timed out"
    );
    latched
}

/// TSU probe: reset, clock on (tsu_pclk's MSTOP), trims read, zone enabled (TSU_SM 1, 3).
/// Returns the (calib0, calib1) the driver derives from the trim words.
pub fn tsu_probe(sim: &mut Sim) -> (i64, i64) {
    assert!(reset(sim, "tsu_presetn", false));
    assert!(clk_enable(sim, "tsu_pclk", true));
    let t0 = sim.r("tsu", "OTPTSUTRIM0");
    let t1 = sim.r("tsu", "OTPTSUTRIM1");
    let c0 = if t0 & (1 << 31) != 0 {
        i64::from(t0 & 0xfff)
    } else {
        1297
    };
    let c1 = if t1 & (1 << 31) != 0 {
        i64::from(t1 & 0xfff)
    } else {
        751
    };
    sim.w("tsu", "TSU_SM", 1);
    sim.w("tsu", "TSU_SM", 3);
    (c0, c1)
}

/// The GIC set-pending write (address, bit) that raising interrupt line `line` of device
/// `device` makes.
pub fn gic_pend(sim: &Sim, device: &str, line: &str) -> (u64, u64) {
    let soc = sim.bus.soc();
    let dev = soc.device(device).expect("device");
    let spi = dev
        .interrupts
        .iter()
        .find(|l| l.name == line)
        .map(|l| l.spi)
        .expect("line");
    let (phys, bit) = soc.gic().set_pending(spi);
    (phys, u64::from(bit))
}
