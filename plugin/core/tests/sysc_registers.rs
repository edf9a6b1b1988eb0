//! The system controller (SYSC) through the bus, as drivers/soc/renesas/rz-sysc.c and the
//! users of its syscon regmap see it: the device ID the probe reads, the regmap's
//! read-write and read-only registers (r9a08g045-sysc.c), USB PWRRDY as
//! reset-rzg2l-usbphy-ctrl.c drives it, and no gate whatever the CPG does. The SYSC is a
//! register-only device (no `model:`): everything here comes from socs/r9a08g045.yaml.

mod common;

use rzgate_core::sim::Sim;

fn base(sim: &Sim) -> u64 {
    let soc = sim.bus.soc();
    let dev = soc.device("sysc").expect("sysc");
    soc.window().guest_addr(dev.base)
}

/// The driver's readl/regmap accesses are 32-bit at the block's offsets.
fn rd(sim: &mut Sim, off: u64) -> u32 {
    let a = base(sim) + off;
    sim.read32(a)
}

fn wr(sim: &mut Sim, off: u64, v: u32) {
    let a = base(sim) + off;
    sim.write32(a, v);
}

#[test]
fn sysc_is_register_only_at_its_dtsi_address() {
    let soc = common::soc();
    let dev = soc.device("sysc").expect("sysc");
    assert_eq!(dev.model, "generic");
    assert_eq!((dev.base, dev.size), (0x1102_0000, 0x1_0000));
    assert_eq!(soc.window().guest_addr(dev.base), 0x7e02_0000);
    assert!(
        dev.gate.is_none(),
        "the dtsi node has no clocks, resets or power-domains"
    );
    // The dtsi's four lines are left out: no driver requests them (socs/r9a08g045.yaml).
    assert!(dev.interrupts.is_empty());
}

#[test]
fn device_id_is_rzg3s_revision_0_and_read_only() {
    let mut sim = common::sim();
    // rz_sysc_soc_init: readl(base + 0xa04), revision GENMASK(31, 28), specific id
    // GENMASK(27, 0) compared with 0x85e0447 (r9a08g045-sysc.c:32-38, rz-sysc.c:60-70).
    let id = rd(&mut sim, 0xa04);
    assert_eq!(id, 0x085e_0447);
    assert_eq!(id >> 28, 0, "revision");
    assert_eq!(id & 0x0fff_ffff, 0x85e_0447, "specific id");
    assert_eq!(sim.r("sysc", "SYS_LSI_DEVID"), 0x085e_0447);
    wr(&mut sim, 0xa04, 0x1234_5678);
    assert_eq!(
        rd(&mut sim, 0xa04),
        0x085e_0447,
        "a write leaves the ID alone"
    );
    assert!(sim.aborts().is_empty() && sim.suspects().is_empty());
}

#[test]
fn usb_pwrrdy_powers_on_not_ready_and_keeps_bit_0() {
    let mut sim = common::sim();
    // The declared power-on value: 1, PWRRDY off.
    assert_eq!(rd(&mut sim, 0xd70), 1);
    // rzg2l_usbphy_ctrl_set_pwrrdy(true): regmap_field_update_bits(field, 1, 0), a
    // read-modify-write of bit 0 (reset-rzg2l-usbphy-ctrl.c:134-143).
    let v = rd(&mut sim, 0xd70);
    wr(&mut sim, 0xd70, v & !1);
    assert_eq!(rd(&mut sim, 0xd70), 0, "power ready");
    // The devm action (L146-149) and suspend (L295) write 1 again.
    let v = rd(&mut sim, 0xd70);
    wr(&mut sim, 0xd70, v | 1);
    assert_eq!(rd(&mut sim, 0xd70), 1);
    // Only bit 0 is declared writable.
    wr(&mut sim, 0xd70, 0xffff_fffe);
    assert_eq!(rd(&mut sim, 0xd70), 0);
    assert_eq!(sim.r("sysc", "SYS_USB_PWRRDY"), 0);
}

#[test]
fn regmap_registers_read_write_and_read_only() {
    let mut sim = common::sim();
    // Read-write in the regmap (rzg3s_regmap_readable_writeable_reg, r9a08g045-sysc.c:40-60).
    for off in [
        0x348, 0x34c, 0x350, 0x354, 0x3a0, 0x3b4, 0x400, 0x410, 0x420, 0x430, 0x440,
    ] {
        assert_eq!(rd(&mut sim, off), 0, "power-on value at {off:#x}");
        wr(&mut sim, off, 0xa5a5_0000 | off as u32);
        assert_eq!(rd(&mut sim, off), 0xa5a5_0000 | off as u32, "{off:#x}");
    }
    // RST_RSM_B: pcie-rzg3s-host.c updates BIT(0) of 0xd74.
    wr(&mut sim, 0xd74, 0xffff_ffff);
    assert_eq!(rd(&mut sim, 0xd74), 1);
    assert_eq!(sim.r("sysc", "SYS_PCIE_RST_RSM_B"), 1);
    // Read-only in the regmap (L62-76): a raw write changes nothing.
    for off in [0x380, 0x390, 0x3a4, 0x3ac] {
        wr(&mut sim, off, 0xffff_ffff);
        assert_eq!(rd(&mut sim, off), 0, "{off:#x} is read-only");
    }
    assert!(sim.aborts().is_empty() && sim.suspects().is_empty());
}

#[test]
fn sysc_is_never_gated_whatever_the_cpg_stops() {
    let mut sim = common::sim();
    let soc = sim.bus.soc().clone();
    // Every module clock stopped with its bus in module stop, every reset asserted.
    for c in soc.clocks() {
        common::clk_disable(&mut sim, &c.name, true);
    }
    for r in soc.resets() {
        common::reset(&mut sim, &r.name, true);
    }
    assert_eq!(sim.bus.is_gated("sysc"), Some(false));
    assert_eq!(rd(&mut sim, 0xa04), 0x085e_0447);
    wr(&mut sim, 0xd70, 0);
    assert_eq!(rd(&mut sim, 0xd70), 0);
    assert!(
        sim.aborts().iter().all(|a| a.device != "sysc"),
        "{:?}",
        sim.aborts()
    );
    assert!(sim.suspects().iter().all(|a| a.device != "sysc"));
}

#[test]
fn dt_node_is_the_dtsi_node_without_clocks_or_lines() {
    let soc = common::soc();
    let dts = soc.dt_fragment("/intc@8000000");
    let start = dts
        .find("sysc: system-controller@7e020000 {")
        .unwrap_or_else(|| panic!("no sysc node in:\n{dts}"));
    let node = &dts[start..];
    let node = &node[..node.find("\n\t};").expect("end of the sysc node")];
    for want in [
        "compatible = \"renesas,r9a08g045-sysc\";",
        "reg = <0x0 0x7e020000 0x0 0x10000>;",
    ] {
        assert!(node.contains(want), "missing `{want}` in:\n{node}");
    }
    for absent in ["clocks", "resets", "power-domains", "interrupts"] {
        assert!(!node.contains(absent), "`{absent}` in:\n{node}");
    }
}
