//! rzg2l_cpg_probe on the G3S replayed against the bus (RZG3S_FACTS §1.8): core clock
//! registers read, critical clocks enabled with their CLK_MON polls succeeding at once,
//! rzg2l_mod_clock_init_mstop, critical resets deasserted with RST_MON polls.

mod common;

use rzgate_core::event::Event;

/// rzg3s_cpg_pll_clk_recalc_rate.
fn pll1_rate(setting: u32, clk1: u32, extal: u64) -> u64 {
    if setting & 1 != 0 {
        return 1_100_000_000;
    }
    let v = u64::from(clk1);
    let mut p = 1u64 << ((v >> 26) & 7);
    if p > 8 {
        p = 16;
    }
    let m = ((v >> 22) & 0xf) + 1;
    let ni = ((v >> 13) & 0x1ff) + 1;
    let nf = (v >> 1) & 0xfff;
    let rate = (extal * (4096 * ni + nf)) >> 12;
    (rate + (m * p) / 2) / (m * p)
}

#[test]
fn cpg_probe_sequence_succeeds() {
    let mut sim = common::sim();
    let soc = sim.bus.soc().clone();
    let cpg = soc.device("cpg").expect("cpg").clone();

    // 1. Core clocks: only reads.
    let setting = sim.r("cpg", "PLL1_SETTING");
    let clk1 = sim.r("cpg", "PLL1_CLK1");
    assert_eq!(
        pll1_rate(setting, clk1, 24_000_000),
        1_100_000_000,
        "PLL1 via SEL_PLL"
    );
    assert_eq!(
        pll1_rate(0, clk1, 24_000_000),
        1_100_000_000,
        "PLL1 via CLK1"
    );
    let dtable_1_32 = [1u64, 2, 4, 8, 32];
    let div = |v: u32, shift: u32, mask: u32| dtable_1_32[((v >> shift) & mask) as usize];
    let pl1 = sim.r("cpg", "PL1_DDIV");
    assert_eq!(1_100_000_000 / div(pl1, 0, 3), 1_100_000_000, "I");
    let pl2 = sim.r("cpg", "PL2_DDIV");
    assert_eq!(100_000_000 / div(pl2, 4, 7), 100_000_000, "P0");
    let pl3 = sim.r("cpg", "PL3A_DDIV");
    assert_eq!(200_000_000 / div(pl3, 0, 7), 200_000_000, "P1");
    assert_eq!(100_000_000 / div(pl3, 4, 7), 100_000_000, "P2");
    assert_eq!(200_000_000 / div(pl3, 8, 7), 200_000_000, "P3");
    assert_eq!(sim.r("cpg", "SDHI_DDIV"), 0);
    assert_eq!(sim.r("cpg", "PLL_DSEL") >> 6 & 1, 1, "S0 from PLL4");
    let dsel = sim.r("cpg", "SDHI_DSEL");
    for shift in [0, 4, 8] {
        assert!(
            [0, 2, 3].contains(&((dsel >> shift) & 3)),
            "SEL_SDHI at {shift} is in mtable_sd"
        );
    }
    assert_eq!(sim.r("cpg", "CLKDIVSTATUS"), 0);
    assert_eq!(sim.r("cpg", "CLKSELSTATUS"), 0);

    // 2. Critical module clocks: CLK_ON, MSTOP released on the first user, CLK_MON poll.
    let mut mstop_users: Vec<(usize, u32)> = Vec::new();
    for c in soc.clocks().iter().filter(|c| c.critical) {
        let first = c
            .mstop
            .is_some_and(|m| !mstop_users.contains(&(m.reg, m.mask)));
        if let Some(m) = c.mstop {
            mstop_users.push((m.reg, m.mask));
        }
        assert!(
            common::clk_enable(&mut sim, &c.name, first),
            "Failed to enable CLK_ON for {}",
            c.name
        );
    }

    // 3. rzg2l_mod_clock_init_mstop: every clock with MSTOP whose CLK_MON bit is 0 goes to
    //    standby, unless its MSTOP is shared with a critical clock that holds it.
    for c in soc.clocks().iter().filter(|c| c.mstop.is_some()) {
        let mon = sim.r("cpg", &cpg.registers[c.mon.reg].name);
        let Some(m) = c.mstop else { continue };
        if mon & c.mon.mask() != 0 || mstop_users.contains(&(m.reg, m.mask)) {
            continue;
        }
        sim.w("cpg", &cpg.registers[m.reg].name, m.mask << 16 | m.mask);
    }
    assert_eq!(
        sim.r("cpg", "BUS_MCPU2_MSTOP") & 0xc000,
        0xc000,
        "ADC and TSU buses stopped"
    );
    assert_eq!(sim.r("cpg", "BUS_ACPU_MSTOP") & 0x8, 0, "GIC bus running");

    // 4. Critical resets: 0x82C <- 0x00010001, 0x00020002, polls of 0x9AC.
    for r in soc.resets().iter().filter(|r| r.critical) {
        assert!(
            common::reset(&mut sim, &r.name, false),
            "deassert {}",
            r.name
        );
    }
    assert_eq!(sim.r("cpg", "RST_DMAC"), 0x3);
    assert_eq!(sim.r("cpg", "RST_MON_DMAC"), 0);

    // The CPG is never gated, and nothing of this touched a gated device.
    assert!(sim.aborts().is_empty());
    // The gate changes: the RTC and VBATTB open when the critical vbat_bclk is turned on
    // (r9a08g045-cpg.c crit_mod_clks); the DMAC (dmac_pclk), WDT0, the USB blocks, RIIC0, SCIF3, ADC and TSU, clocks off since
    // reset, answer with a bus error once rzg2l_mod_clock_init_mstop puts their bus in
    // module stop.
    let gates: Vec<(String, bool, String)> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Gate {
                device,
                gated,
                register,
                ..
            } => Some((device.clone(), *gated, register.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        gates,
        vec![
            ("rtc".to_string(), false, "CLK_ON_VBAT".to_string()),
            ("vbattb".to_string(), false, "CLK_ON_VBAT".to_string()),
            ("dmac".to_string(), true, "BUS_REG1_MSTOP".to_string()),
            ("wdt0".to_string(), true, "BUS_REG0_MSTOP".to_string()),
            // BUS_PERI_COM_MSTOP bits 5 (usb0_host), 7 (usb1_host), 6 (usb0_func), 4 (usb_pclk).
            (
                "usb2_phy0".to_string(),
                true,
                "BUS_PERI_COM_MSTOP".to_string()
            ),
            (
                "usb2_phy1".to_string(),
                true,
                "BUS_PERI_COM_MSTOP".to_string()
            ),
            ("hsusb".to_string(), true, "BUS_PERI_COM_MSTOP".to_string()),
            ("phyrst".to_string(), true, "BUS_PERI_COM_MSTOP".to_string()),
            ("i2c0".to_string(), true, "BUS_MCPU2_MSTOP".to_string()),
            ("scif3".to_string(), true, "BUS_MCPU2_MSTOP".to_string()),
            ("adc".to_string(), true, "BUS_MCPU2_MSTOP".to_string()),
            ("tsu".to_string(), true, "BUS_MCPU2_MSTOP".to_string()),
        ]
    );
    assert_eq!(sim.bus.is_gated("cpg"), Some(false));
    assert_eq!(sim.bus.is_gated("adc"), Some(true));
    assert_eq!(sim.bus.is_gated("tsu"), Some(true));

    // 5. Every CPG register in the window reads what the model holds.
    let state = sim.bus.model_state();
    let values = state.registers.get("cpg").expect("cpg values").clone();
    for (reg, real) in cpg.registers.iter().zip(values) {
        assert_eq!(sim.r("cpg", &reg.name), real, "{} in the window", reg.name);
    }
}

#[test]
fn clk_disable_unused_turns_clocks_off_without_polls() {
    let mut sim = common::sim();
    assert!(common::clk_enable(&mut sim, "i2c0_pclk", true));
    common::clk_disable(&mut sim, "i2c0_pclk", true);
    assert_eq!(sim.r("cpg", "CLK_ON_I2C"), 0);
    assert_eq!(sim.r("cpg", "CLK_MON_I2C"), 0);
    assert_eq!(sim.r("cpg", "BUS_MCPU2_MSTOP") & (1 << 10), 1 << 10);
}

#[test]
fn reset_assert_poll_times_out_never() {
    let mut sim = common::sim();
    for r in sim.bus.soc().resets().to_vec() {
        assert!(common::reset(&mut sim, &r.name, true), "assert {}", r.name);
        assert!(
            common::reset(&mut sim, &r.name, false),
            "deassert {}",
            r.name
        );
    }
}
