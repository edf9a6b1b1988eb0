//! The shipped socs/r9a08g045.yaml loads and generates the DT nodes the drivers need.

mod common;

#[test]
fn shipped_description_loads_with_the_contract_address_map() {
    let soc = common::soc();
    assert_eq!(soc.name(), "r9a08g045");
    let w = soc.window();
    assert_eq!(
        (w.guest_base, w.soc_base, w.size),
        (0x7d00_0000, 0x1000_0000, 0x0300_0000)
    );
    assert_eq!(soc.bus_error(), 0xffff_ffff);
    let at = |name: &str| {
        let d = soc.device(name).expect(name);
        (w.guest_addr(d.base), d.size)
    };
    assert_eq!(at("cpg"), (0x7e01_0000, 0x1_0000));
    assert_eq!(at("adc"), (0x7d05_8000, 0x1000));
    assert_eq!(at("tsu"), (0x7d05_9000, 0x1000));
    assert_eq!(at("mailbox"), (0x7fff_f000, 0x1000));
    let adc = soc.device("adc").expect("adc");
    assert_eq!(adc.model, "adc");
    assert_eq!(
        adc.interrupts
            .iter()
            .map(|l| (l.name.as_str(), l.soc_spi, l.spi))
            .collect::<Vec<_>>(),
        vec![("adi", Some(312), 200)]
    );
    assert_eq!(soc.gic().intid(200), 232);
    assert_eq!(soc.gic().set_pending(200), (0x0800_021c, 1 << 8));
    // ADC channel 8 is wired to the TSU's output.
    let tsu = soc.device_index("tsu");
    assert_eq!(adc.inputs, vec![("ch8".to_string(), tsu.expect("tsu"))]);
    assert_eq!(
        soc.clock("adc_pclk")
            .map(|c| (c.id, c.mon.offset, c.mon.bit)),
        Some((97, 0x728, 1))
    );
    assert_eq!(
        soc.reset("tsu_presetn").map(|r| (r.id, r.mon.offset)),
        Some((80, 0xa2c))
    );
}

#[test]
fn every_module_clock_and_reset_of_the_driver_is_declared() {
    let soc = common::soc();
    assert_eq!(soc.clocks().len(), 56);
    assert_eq!(soc.resets().len(), 45);
    let crit: Vec<&str> = soc
        .clocks()
        .iter()
        .filter(|c| c.critical)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        crit,
        [
            "gic_gicclk",
            "ia55_pclk",
            "ia55_clk",
            "dmac_aclk",
            "vbat_bclk"
        ]
    );
}

#[test]
fn dt_fragment_has_the_expected_nodes() {
    let soc = common::soc();
    let dts = soc.dt_fragment("/intc@8000000");
    let expect = [
        "/ {",
        "reserved-memory {",
        "rzgate-window@7d000000 {",
        "reg = <0x0 0x7d000000 0x0 0x3000000>;",
        "no-map;",
        "extal_clk: extal-clk {",
        "compatible = \"fixed-clock\";",
        "clock-frequency = <24000000>;",
        "cpg: clock-controller@7e010000 {",
        "compatible = \"renesas,r9a08g045-cpg\";",
        "reg = <0x0 0x7e010000 0x0 0x10000>;",
        "clocks = <&extal_clk>;",
        "clock-names = \"extal\";",
        "#clock-cells = <2>;",
        "#reset-cells = <1>;",
        "#power-domain-cells = <0>;",
        "adc: adc@7d058000 {",
        "compatible = \"renesas,r9a08g045-adc\";",
        "reg = <0x0 0x7d058000 0x0 0x1000>;",
        "interrupt-parent = <&{/intc@8000000}>;",
        "interrupts = <0 200 1>;",
        "/* adi: SoC SPI 312 -> virt SPI 200 (declared) */",
        " *   adc adi: SoC SPI 312 -> virt SPI 200 (declared)",
        "clocks = <&cpg 1 96>, <&cpg 1 97>;",
        "clock-names = \"adclk\", \"pclk\";",
        "resets = <&cpg 78>, <&cpg 79>;",
        "reset-names = \"presetn\", \"adrst-n\";",
        "power-domains = <&cpg>;",
        "#io-channel-cells = <1>;",
        "#address-cells = <1>;",
        "#size-cells = <0>;",
        "tsu: thermal@7d059000 {",
        "compatible = \"renesas,r9a08g045-tsu\";",
        "clocks = <&cpg 1 98>;",
        "resets = <&cpg 80>;",
        "io-channels = <&adc 8>;",
        "io-channel-names = \"tsu\";",
        "#thermal-sensor-cells = <0>;",
        "thermal-zones {",
        "cpu_thermal: cpu-thermal {",
        "polling-delay-passive = <250>;",
        "polling-delay = <1000>;",
        "thermal-sensors = <&tsu>;",
        "cpu_crit: cpu-critical {",
        // rzgate raises the dtsi's 110 °C critical trip to 130 °C (socs/r9a08g045.yaml).
        "temperature = <130000>;",
        "type = \"critical\";",
        "temperature = <90000>;",
        "temperature = <85000>;",
        "type = \"passive\";",
        "hysteresis = <1000>;",
    ];
    for line in expect {
        assert!(dts.contains(line), "missing `{line}` in:\n{dts}");
    }
    for ch in 0..9 {
        assert!(dts.contains(&format!("channel@{ch} {{")), "channel@{ch}");
        assert!(
            dts.contains(&format!("reg = <{ch}>;")),
            "reg of channel@{ch}"
        );
    }
    assert!(!dts.contains("channel@9"));
    assert!(!dts.contains("cooling"), "virt has no cooling device");
    assert_eq!(dts.matches('{').count(), dts.matches('}').count());
    assert!(dts.trim_end().ends_with("};"));
}

#[test]
fn mailbox_is_an_exported_mmio_sram_partition_at_its_guest_address() {
    let soc = common::soc();
    let dts = soc.dt_fragment("/intc@8000000");
    // Linux names the platform device 7ffff000.sram and the export 7ffff000.sram
    // (guest-tests/initramfs/lib.sh writes the step there).
    let node = "\trzgate_mailbox: sram@7ffff000 {
\t\tcompatible = \"mmio-sram\";
\t\treg = <0x0 0x7ffff000 0x0 0x1000>;
\t\tno-memory-wc;
\t\t#address-cells = <1>;
\t\t#size-cells = <1>;
\t\tranges = <0 0x0 0x7ffff000 0x1000>;

\t\tmailbox-sram@0 {
\t\t\treg = <0 0x1000>;
\t\t\texport;
\t\t};
\t};
";
    assert!(dts.contains(node), "missing\n{node}in:\n{dts}");
    assert_eq!(dts.matches("export;").count(), 1);
}

#[test]
fn riic0_node_has_its_eight_lines_and_the_eeprom_child() {
    let soc = common::soc();
    let dts = soc.dt_fragment("/intc@8000000");
    for want in [
        "i2c0: i2c@7d090000 {",
        "compatible = \"renesas,riic-r9a08g045\", \"renesas,riic-r9a09g057\";",
        "interrupts = <0 176 4>, <0 177 1>, <0 178 1>, <0 179 4>, <0 180 4>, <0 181 4>, <0 182 4>, <0 183 4>;",
        "interrupt-names = \"tei\", \"ri\", \"ti\", \"spi\", \"sti\", \"naki\", \"ali\", \"tmoi\";",
        "clocks = <&cpg 1 75>;",
        "resets = <&cpg 55>;",
        "clock-frequency = <1000000>;",
        "eeprom0: eeprom@50 {",
        "compatible = \"atmel,24c02\";",
        "reg = <0x50>;",
        "pagesize = <8>;",
    ] {
        assert!(dts.contains(want), "missing `{want}` in:\n{dts}");
    }
    let dev = soc.device("i2c0").expect("i2c0");
    let eeprom = &dev.i2c_targets[0];
    assert_eq!(eeprom.contents.len(), 256);
    assert!(eeprom
        .contents
        .starts_with(b"rzgate RZ/G3S RIIC0 AT24 EEPROM @0x50\n"));
    assert!(eeprom.contents[38..].iter().all(|&b| b == 0xff));
}
