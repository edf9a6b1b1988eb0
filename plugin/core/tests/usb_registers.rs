//! USB as on the RZ/G3S SMARC board, through the bus: the USB PHY control block (phyrst,
//! reset-rzg2l-usbphy-ctrl.c with its VBUS regulator), USB2 PHY 0 (phy-rcar-gen3-usb2.c)
//! and the high-speed function controller (hsusb, renesas_usbhs). All three are
//! register-only devices (no `model:`): everything here comes from socs/r9a08g045.yaml.
//! The gate checks are the accesses the two real fixes on record are about: the SYSCFG
//! access of usbhs_sys_function_pullup after usbhs's power-off (eb9ac779830b) and the
//! USB2_OBINTSTA read of rcar_gen3_phy_usb2_irq with the PHY suspended (de76809f60cc).

mod common;

use rzgate_core::sim::Sim;

fn base(sim: &Sim, dev: &str) -> u64 {
    let soc = sim.bus.soc();
    let d = soc.device(dev).expect("device");
    soc.window().guest_addr(d.base)
}

fn rd(sim: &mut Sim, dev: &str, off: u64) -> u32 {
    let a = base(sim, dev) + off;
    sim.read32(a)
}

fn wr(sim: &mut Sim, dev: &str, off: u64, v: u32) {
    let a = base(sim, dev) + off;
    sim.write32(a, v);
}

/// usbhs_read/usbhs_write: ioread16/iowrite16 (renesas_usbhs/common.c:61-69).
fn rd16(sim: &mut Sim, off: u64) -> u16 {
    let a = base(sim, "hsusb") + off;
    sim.read(a, 2) as u16
}

fn wr16(sim: &mut Sim, off: u64, v: u16) {
    let a = base(sim, "hsusb") + off;
    sim.write(a, 2, v.into());
}

/// What the drivers' probes leave on: usb_pclk (usbphy-ctrl's runtime-PM reference),
/// usb0_host (the PHY resumed), usb0_func (usbhs powered), every USB reset released.
fn usb_up(sim: &mut Sim) {
    for c in ["usb_pclk", "usb0_host", "usb0_func"] {
        assert!(common::clk_enable(sim, c, true), "{c} CLK_MON");
    }
    for r in ["usb_presetn", "usb_u2h0_hresetn", "usb_u2p_exl_sysrst"] {
        assert!(common::reset(sim, r, false), "{r} RST_MON");
    }
    for d in ["phyrst", "usb2_phy0", "hsusb"] {
        assert_eq!(sim.bus.is_gated(d), Some(false), "{d} open");
    }
}

#[test]
fn usb_devices_sit_at_their_dtsi_addresses() {
    let soc = common::soc();
    for (name, base, size) in [
        ("phyrst", 0x11e0_0000, 0x1_0000),
        ("usb2_phy0", 0x11e1_0200, 0x700),
        ("usb2_phy1", 0x11e3_0200, 0x700),
        ("hsusb", 0x11e2_0000, 0x1_0000),
    ] {
        let d = soc.device(name).expect(name);
        assert_eq!(d.model, "generic", "{name} is register-only");
        assert_eq!((d.base, d.size), (base, size), "{name}");
        assert!(d.gate.is_some(), "{name} is gated by the CPG");
    }
    // The PHY's one line (dtsi SPI 78) and usbhs's four (85 edge, 86, 87, 84).
    let phy = soc.device("usb2_phy0").expect("phy");
    assert_eq!(phy.interrupts.len(), 1);
    assert_eq!(phy.interrupts[0].flags, 4);
    let hs = soc.device("hsusb").expect("hsusb");
    let spis: Vec<Option<u32>> = hs.interrupts.iter().map(|l| l.soc_spi).collect();
    assert_eq!(spis, vec![Some(85), Some(86), Some(87), Some(84)]);
    assert_eq!(hs.interrupts[0].flags, 1, "U2P_IXL_INT is edge-rising");
}

fn assert_has(node: &str, wants: &[&str]) {
    for want in wants {
        assert!(node.contains(want), "missing `{want}` in:\n{node}");
    }
}

#[test]
fn dt_nodes_are_the_boards() {
    let soc = common::soc();
    let dts = soc.dt_fragment("/intc@8000000");
    let node = |head: &str| -> String {
        let start = dts
            .find(head)
            .unwrap_or_else(|| panic!("no `{head}` in:\n{dts}"));
        let n = &dts[start..];
        n[..n.find("\n\t};").expect("end of node")].to_string()
    };
    let phyrst = node("phyrst: usbphy-ctrl@7ee00000 {");
    assert_has(
        &phyrst,
        &[
            "compatible = \"renesas,r9a08g045-usbphy-ctrl\";",
            "clocks = <&cpg 1 68>;",
            "resets = <&cpg 52>;",
            "#reset-cells = <1>;",
            "renesas,sysc-pwrrdy = <&sysc 0xd70 0x1>;",
            "usb0_vbus_otg: regulator-vbus {",
            "regulator-name = \"vbus\";",
        ],
    );
    let phy = node("usb2_phy0: usb-phy@7ee10200 {");
    assert_has(
        &phy,
        &[
            "compatible = \"renesas,usb2-phy-r9a08g045\";",
            "reg = <0x0 0x7ee10200 0x0 0x700>;",
            "clocks = <&cpg 1 68>, <&cpg 1 65>;",
            "resets = <&phyrst 0>, <&cpg 49>;",
            "#phy-cells = <1>;",
            "vbus-supply = <&usb0_vbus_otg>;",
        ],
    );
    let hs = node("hsusb: usb@7ee20000 {");
    assert_has(
        &hs,
        &[
            "compatible = \"renesas,usbhs-r9a08g045\", \"renesas,rzg2l-usbhs\";",
            "clocks = <&cpg 1 68>, <&cpg 1 67>;",
            "resets = <&phyrst 0>, <&cpg 51>;",
            "phys = <&usb2_phy0 3>;",
            "phy-names = \"usb\";",
            "renesas,buswait = <7>;",
        ],
    );
    let phy1 = node("usb2_phy1: usb-phy@7ee30200 {");
    assert_has(
        &phy1,
        &[
            "clocks = <&cpg 1 68>, <&cpg 1 66>;",
            "resets = <&phyrst 1>, <&cpg 50>;",
        ],
    );
    // No dr_mode: it would make the PHY an OTG channel that needs extcon (the YAML).
    assert!(!hs.contains("dr_mode"), "{hs}");
}

#[test]
fn usbphy_ctrl_reset_lines_and_vbus_regulator_hold_their_bits() {
    let mut sim = common::sim();
    usb_up(&mut sim);
    // rzg2l_usbphy_ctrl_init: SEL_PLLRESET | PLLRESET | both ports (L97-107).
    let v = rd(&mut sim, "phyrst", 0x0);
    wr(&mut sim, "phyrst", 0x0, v | 0x1133);
    assert_eq!(rd(&mut sim, "phyrst", 0x0), 0x1133);
    // Deassert line 0: SEL_PLLRESET set, PLLRESET and port 1 cleared (L66-83).
    let v = rd(&mut sim, "phyrst", 0x0);
    wr(&mut sim, "phyrst", 0x0, (v | 0x1000) & !(0x100 | 0x11));
    assert_eq!(rd(&mut sim, "phyrst", 0x0), 0x1022);
    assert_eq!(
        rd(&mut sim, "phyrst", 0x0) & 0x11,
        0,
        "status: line 0 released (L85-94)"
    );
    // Undeclared bits are not kept.
    wr(&mut sim, "phyrst", 0x0, 0xffff_ffff);
    assert_eq!(rd(&mut sim, "phyrst", 0x0), 0x1133);
    // VBENCTL, the regulator's enable bit (inverted): 0 at power-on (on), bit 0 only.
    assert_eq!(rd(&mut sim, "phyrst", 0x3c), 0);
    wr(&mut sim, "phyrst", 0x3c, 0xffff_ffff);
    assert_eq!(rd(&mut sim, "phyrst", 0x3c), 1);
    assert_eq!(sim.r("phyrst", "VBENCTL"), 1);
    assert!(sim.aborts().is_empty() && sim.suspects().is_empty());
}

#[test]
fn usb2_phy_registers_as_the_driver_uses_them() {
    let mut sim = common::sim();
    usb_up(&mut sim);
    // init_bus: AHB_BUS_CTR.MBL = INCR4 (L1027-1030).
    let v = rd(&mut sim, "usb2_phy0", 0x008);
    wr(&mut sim, "usb2_phy0", 0x008, (v & !3) | 2);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x008), 2);
    // phy_init of index 3: UCOM_INTEN, then the timing registers (L663-670).
    let v = rd(&mut sim, "usb2_phy0", 0x000);
    wr(&mut sim, "usb2_phy0", 0x000, v | 0x8);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x000), 0x8);
    wr(&mut sim, "usb2_phy0", 0x10c, 0x014e_029b);
    wr(&mut sim, "usb2_phy0", 0x110, 0x0002_09ab);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x10c), 0x014e_029b);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x110), 0x0002_09ab);
    // power_on pulses USBCTR.PLL_RST (L800-804).
    wr(&mut sim, "usb2_phy0", 0x00c, 0x2);
    wr(&mut sim, "usb2_phy0", 0x00c, 0x0);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x00c), 0);
    // LINECTRL1: the pull-down controls are kept, USB2_IDMON (bit 0) stays 1 (B-device).
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x610), 1);
    wr(&mut sim, "usb2_phy0", 0x610, 0x000b_0040);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x610), 0x000b_0041);
    wr(&mut sim, "usb2_phy0", 0x610, 0);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x610), 1);
    // OBINTSTA: nothing sets it; a write of ones (otg phase 1, L528) leaves it 0.
    wr(&mut sim, "usb2_phy0", 0x604, 0xffff_ffff);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x604), 0);
    // COMMCTRL keeps only OTG_PERI.
    wr(&mut sim, "usb2_phy0", 0x600, 0xffff_ffff);
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x600), 0x8000_0000);
    assert!(sim.aborts().is_empty() && sim.suspects().is_empty());
}

#[test]
fn obintsta_read_with_the_phy_suspended_is_a_bus_error() {
    let mut sim = common::sim();
    usb_up(&mut sim);
    let _ = rd(&mut sim, "usb2_phy0", 0x604);
    assert!(sim.aborts().is_empty());
    // The PHY runtime-suspends: genpd stops usb0_host (its MSTOP bit 5 set); usb_pclk
    // keeps running, held by usbphy-ctrl. rcar_gen3_phy_usb2_irq without its
    // pm_runtime_suspended() check (de76809f60cc reverted) then reads USB2_OBINTSTA.
    common::clk_disable(&mut sim, "usb0_host", true);
    assert_eq!(sim.bus.is_gated("usb2_phy0"), Some(true));
    assert_eq!(sim.bus.is_gated("phyrst"), Some(false), "usb_pclk runs");
    assert_eq!(rd(&mut sim, "usb2_phy0", 0x604), 0xffff_ffff);
    let aborts = sim.aborts();
    assert_eq!(aborts.len(), 1, "{aborts:?}");
    assert_eq!(aborts[0].device, "usb2_phy0");
    assert_eq!(aborts[0].register, "OBINTSTA");
    assert_eq!(aborts[0].soc_addr, 0x11e1_0804);
    assert!(
        aborts[0].gated_by.iter().any(|g| g.contains("usb0_host")),
        "{:?}",
        aborts[0].gated_by
    );
}

#[test]
fn usbhs_sixteen_bit_registers_share_their_words() {
    let mut sim = common::sim();
    usb_up(&mut sim);
    // usbhsc_set_buswait: BUSWAIT (0x02) low nibble = 7; SYSCFG (0x00) beside it.
    let v = rd16(&mut sim, 0x02);
    wr16(&mut sim, 0x02, (v & !0xf) | 7);
    // usbhs_sys_clock_ctrl(1): SCKE (common.c:94-97).
    let v = rd16(&mut sim, 0x00);
    wr16(&mut sim, 0x00, v | 0x400);
    assert_eq!(rd16(&mut sim, 0x00), 0x400);
    assert_eq!(rd16(&mut sim, 0x02), 7);
    assert_eq!(sim.r("hsusb", "SYSCFG_BUSWAIT"), 0x0007_0400);
    // usbhs_sys_function_ctrl(1) then the pullup: HSE | USBE | CNEN, then DPRPU.
    let v = rd16(&mut sim, 0x00);
    wr16(&mut sim, 0x00, v | 0x181);
    let v = rd16(&mut sim, 0x00);
    wr16(&mut sim, 0x00, v | 0x10);
    assert_eq!(rd16(&mut sim, 0x00), 0x591);
    // SUSPMODE.SUSPM (0x102) beside the D0FIFO port (rza2.c:48).
    let v = rd16(&mut sim, 0x102);
    wr16(&mut sim, 0x102, v | 0x4000);
    assert_eq!(rd16(&mut sim, 0x102), 0x4000);
    // INTENB0 (0x30) with VBSE; INTENB1 (0x32) untouched.
    wr16(&mut sim, 0x30, 0x8000);
    assert_eq!(rd16(&mut sim, 0x30), 0x8000);
    assert_eq!(rd16(&mut sim, 0x32), 0);
    // INTSTS0: no cable (VBSTS 0), no event; the handler's magic clear leaves it 0.
    assert_eq!(rd16(&mut sim, 0x40) & 0x80, 0, "VBSTS: no VBUS");
    wr16(&mut sim, 0x40, 0xf800);
    assert_eq!(rd16(&mut sim, 0x40), 0);
    wr16(&mut sim, 0x48, 0xffff);
    assert_eq!(rd16(&mut sim, 0x48), 0);
    assert!(sim.aborts().is_empty() && sim.suspects().is_empty());
    let sum = sim.bus.summary_event().to_json();
    assert!(
        !sum.contains("\"hsusb@"),
        "no unmodelled hsusb offsets: {sum}"
    );
}

#[test]
fn syscfg_after_usbhs_power_off_is_a_bus_error() {
    let mut sim = common::sim();
    usb_up(&mut sim);
    // usbhsc_power_ctrl(0) ends in pm_runtime_put_sync: genpd stops usb0_func and sets
    // its MSTOP (BUS_PERI_COM bit 6); usb_pclk stays on for usbphy-ctrl. The old
    // usbhs_remove then reached usbhs_sys_function_pullup (eb9ac779830b): SYSCFG.
    common::clk_disable(&mut sim, "usb0_func", true);
    assert_eq!(sim.bus.is_gated("hsusb"), Some(true));
    let v = rd16(&mut sim, 0x00);
    assert_eq!(v, 0xffff, "the bus-error value");
    let aborts = sim.aborts();
    assert_eq!(aborts.len(), 1, "{aborts:?}");
    assert_eq!(aborts[0].device, "hsusb");
    // The 16-bit access covers the SYSCFG field of the declared word exactly: the report
    // names the register the driver reads.
    assert_eq!(aborts[0].register, "SYSCFG");
    assert_eq!(aborts[0].soc_addr, 0x11e2_0000);
    assert_eq!(aborts[0].size, 2);
    // A 32-bit read covers both registers: the report names the word.
    let word = base(&sim, "hsusb");
    let _ = sim.read(word, 4);
    let aborts = sim.aborts();
    assert_eq!(
        aborts.last().map(|a| a.register.as_str()),
        Some("SYSCFG_BUSWAIT")
    );
}

#[test]
fn usb0_func_stopped_without_module_stop_is_only_suspect() {
    let mut sim = common::sim();
    usb_up(&mut sim);
    common::clk_disable(&mut sim, "usb0_func", false);
    let _ = rd16(&mut sim, 0x00);
    assert!(sim.aborts().is_empty());
    assert_eq!(sim.suspects().len(), 1);
    assert_eq!(sim.suspects()[0].device, "hsusb");
}

#[test]
fn usb2_phy1_has_phy0s_registers_and_its_own_gate() {
    let soc = common::soc();
    let p0 = soc.device("usb2_phy0").expect("phy0");
    let p1 = soc.device("usb2_phy1").expect("phy1");
    assert_eq!(
        p0.registers, p1.registers,
        "one register list (a YAML alias)"
    );
    let mut sim = common::sim();
    usb_up(&mut sim);
    assert!(common::clk_enable(&mut sim, "usb1_host", true));
    assert!(common::reset(&mut sim, "usb_u2h1_hresetn", false));
    wr(&mut sim, "usb2_phy1", 0x008, 2);
    assert_eq!(rd(&mut sim, "usb2_phy1", 0x008), 2);
    assert_eq!(
        rd(&mut sim, "usb2_phy0", 0x008),
        0,
        "phy0 is another device"
    );
    // usb1_host stopped gates PHY1 alone.
    common::clk_disable(&mut sim, "usb1_host", true);
    assert_eq!(sim.bus.is_gated("usb2_phy1"), Some(true));
    assert_eq!(sim.bus.is_gated("usb2_phy0"), Some(false));
    let _ = rd(&mut sim, "usb2_phy1", 0x604);
    let aborts = sim.aborts();
    assert_eq!(aborts.len(), 1, "{aborts:?}");
    assert_eq!(aborts[0].device, "usb2_phy1");
    assert_eq!(aborts[0].register, "OBINTSTA");
}
