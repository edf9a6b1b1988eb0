//! Every class of SoC-description error names the file, the YAML path and what was expected.

mod common;

use rzgate_core::registry;
use rzgate_core::soc::{Soc, SocError};

/// The shipped text with `from` (which must occur exactly once) replaced by `to`.
fn mutate(from: &str, to: &str) -> String {
    let text = common::soc_text();
    assert_eq!(
        text.matches(from).count(),
        1,
        "`{from}` must occur once in the shipped YAML"
    );
    text.replacen(from, to, 1)
}

/// Every error class goes through the complete validation: the description, then every
/// device against its model.
fn error(text: &str) -> String {
    match registry::parse(text, "test.yaml") {
        Ok(_) => panic!("accepted an invalid description"),
        Err(e) => e.to_string(),
    }
}

fn assert_error(text: &str, prefix: &str, needle: &str) {
    let e = error(text);
    assert!(
        e.starts_with(prefix),
        "expected prefix `{prefix}`, got: {e}"
    );
    assert!(e.contains(needle), "expected `{needle}` in: {e}");
}

#[test]
fn shipped_text_parses() {
    assert!(registry::parse(&common::soc_text(), "test.yaml").is_ok());
}

#[test]
fn unknown_key_in_a_device() {
    let t = mutate("    model: adc\n", "    model: adc\n    colour: red\n");
    assert_error(&t, "test.yaml: devices.adc: ", "unknown field `colour`");
}

#[test]
fn unknown_key_in_a_register() {
    let t = mutate(
        "{ name: ADFIL, offset: 0x2c, access: rw }",
        "{ name: ADFIL, offset: 0x2c, acces: rw }",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.registers[7]: ",
        "unknown field `acces`",
    );
}

#[test]
fn unknown_access_kind() {
    let t = mutate(
        "{ name: ADFIL, offset: 0x2c, access: rw }",
        "{ name: ADFIL, offset: 0x2c, access: wo }",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.registers[7].access: ",
        "unknown variant `wo`",
    );
}

#[test]
fn missing_required_top_level_key() {
    let t = mutate("bus_error: 0xffffffff\n", "");
    assert_error(&t, "test.yaml: ", "missing field `bus_error`");
}

#[test]
fn missing_register_offset() {
    let t = mutate(
        "{ name: ADFIL, offset: 0x2c, access: rw }",
        "{ name: ADFIL, access: rw }",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.registers[7]: ",
        "missing field `offset`",
    );
}

#[test]
fn overlapping_registers() {
    let t = mutate(
        "name: ADSTS\n        offset: 0x24",
        "name: ADSTS\n        offset: 0x20",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.registers[5] (ADSTS): ",
        "overlaps registers[4] (ADINT) at offset 0x20",
    );
}

#[test]
fn unaligned_register() {
    let t = mutate(
        "{ name: ADFIL, offset: 0x2c,",
        "{ name: ADFIL, offset: 0x2e,",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.registers[7] (ADFIL): ",
        "not a multiple of 4",
    );
}

#[test]
fn register_offset_outside_its_device() {
    let t = mutate(
        "{ name: ADCR8, offset: 0x50,",
        "{ name: ADCR8, offset: 0x1000,",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.registers[16] (ADCR8): ",
        "outside the device (size 0x1000",
    );
}

#[test]
fn duplicate_register_name() {
    let t = mutate(
        "{ name: ADFIL, offset: 0x2c,",
        "{ name: ADIVC, offset: 0x2c,",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.registers[7] (ADIVC): ",
        "duplicate register name",
    );
}

#[test]
fn duplicate_clock_name() {
    let t = mutate("{ name: tsu_pclk,", "{ name: adc_pclk,");
    assert_error(
        &t,
        "test.yaml: clocks[50] (adc_pclk): ",
        "duplicate clock name (also clocks[49])",
    );
}

#[test]
fn duplicate_reset_id() {
    let t = mutate("id: 80, rst:", "id: 79, rst:");
    assert_error(
        &t,
        "test.yaml: resets[34] (tsu_presetn): ",
        "duplicate DT id 79",
    );
}

#[test]
fn duplicate_device_name() {
    let text = common::soc_text();
    let t = text.replacen("\n  mailbox:\n", "\n  adc:\n", 1);
    assert_error(&t, "test.yaml: devices", "duplicate name `adc`");
}

#[test]
fn undefined_clock_in_a_gate_rule() {
    let t = mutate("      clocks: [adc_pclk]\n", "      clocks: [adc_pclkk]\n");
    assert_error(
        &t,
        "test.yaml: devices.adc.gate.clocks[0]: ",
        "reference to undefined clock `adc_pclkk`",
    );
}

#[test]
fn undefined_reset_in_dt() {
    let t = mutate(
        "resets: [adc_presetn, adc_adrst_n]",
        "resets: [adc_presetn, adc_adrst]",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.dt.resets[1]: ",
        "reference to undefined reset `adc_adrst`",
    );
}

#[test]
fn reset_of_an_undefined_provider_in_dt() {
    let t = mutate(
        "resets: [\"phyrst:0\", usb_u2h0_hresetn]",
        "resets: [\"phyrs:0\", usb_u2h0_hresetn]",
    );
    assert_error(
        &t,
        "test.yaml: devices.usb2_phy0.dt.resets[0]: ",
        "reference to undefined device `phyrs`",
    );
}

#[test]
fn reset_provider_cell_must_be_a_number() {
    let t = mutate(
        "resets: [\"phyrst:0\", usb_u2h0_hresetn]",
        "resets: [\"phyrst:x\", usb_u2h0_hresetn]",
    );
    assert_error(
        &t,
        "test.yaml: devices.usb2_phy0.dt.resets[0]: ",
        "the cell after `:` must be a number",
    );
}

#[test]
fn dt_child_property_with_braces() {
    let t = mutate(
        "properties: [\"regulator-name = \\\"vbus\\\"\"]",
        "properties: [\"sub { x }\"]",
    );
    assert_error(
        &t,
        "test.yaml: devices.phyrst.dt.children[0].properties[0]: ",
        "expected one DTS property",
    );
}

#[test]
fn dt_child_with_a_bad_label() {
    let t = mutate("label: usb0_vbus_otg", "label: usb0-vbus");
    assert_error(
        &t,
        "test.yaml: devices.phyrst.dt.children[0].label: ",
        "not a valid DT label",
    );
}

#[test]
fn undefined_register_in_a_clock() {
    let t = mutate(
        "on: { reg: CLK_ON_TSU,  bit: 0 }",
        "on: { reg: CLK_ON_TSUX, bit: 0 }",
    );
    assert_error(
        &t,
        "test.yaml: clocks[50] (tsu_pclk).on.reg: ",
        "undefined register `CLK_ON_TSUX`",
    );
}

#[test]
fn clock_bit_in_the_write_enable_half() {
    let t = mutate(
        "on: { reg: CLK_ON_TSU,  bit: 0 }",
        "on: { reg: CLK_ON_TSU,  bit: 16 }",
    );
    assert_error(
        &t,
        "test.yaml: clocks[50] (tsu_pclk).on.bit: ",
        "out of range",
    );
}

#[test]
fn missing_mon_register() {
    let t = mutate(
        "      - { name: CLK_MON_TSU,  offset: 0x72c, access: ro }\n",
        "",
    );
    assert_error(
        &t,
        "test.yaml: clocks[50] (tsu_pclk).on: ",
        "no CLK_MON register at 0x72C",
    );
}

#[test]
fn device_outside_the_window() {
    let t = mutate("base: 0x12fff000", "base: 0x13000000");
    assert_error(&t, "test.yaml: devices.mailbox: ", "outside the window");
}

#[test]
fn overlapping_devices() {
    let t = mutate("base: 0x10059000", "base: 0x10058800");
    assert_error(&t, "test.yaml: devices.tsu: ", "overlaps device adc");
}

#[test]
fn model_register_missing() {
    let t = mutate("name: ADSTS\n", "name: ADSTAT\n");
    assert_error(
        &t,
        "test.yaml: devices.adc.registers: ",
        "the adc model needs a register named ADSTS",
    );
}

#[test]
fn model_field_missing() {
    let t = mutate(
        "{ name: SRESB, lsb: 15, width: 1 }",
        "{ name: SRES, lsb: 15, width: 1 }",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.registers: ",
        "a field SRESB in register ADM0",
    );
}

#[test]
fn spi_beyond_the_gic() {
    let t = mutate("soc_spi: 312, spi: 200 }", "soc_spi: 312, spi: 312 }");
    assert_error(
        &t,
        "test.yaml: devices.adc.interrupts[0] (adi).spi: ",
        "SPI 312 does not exist",
    );
}

#[test]
fn we16_reset_in_the_enable_half() {
    let t = mutate(
        "{ name: RST_TSU,      offset: 0x8ac, access: we16, reset: 0x0001 }",
        "{ name: RST_TSU,      offset: 0x8ac, access: we16, reset: 0x10001 }",
    );
    assert_error(
        &t,
        "test.yaml: devices.cpg.registers[",
        "expected mask and reset <= 0xFFFF",
    );
}

#[test]
fn io_channel_beyond_the_adc() {
    let t = mutate(
        "io_channels: [{ device: adc, channel: 8 }]",
        "io_channels: [{ device: adc, channel: 9 }]",
    );
    assert_error(
        &t,
        "test.yaml: devices.tsu.dt.io_channels[0].channel: ",
        "channel 9 does not exist",
    );
}

#[test]
fn thermal_zone_sensor_must_be_a_tsu() {
    let t = mutate("    sensor: tsu\n", "    sensor: adc\n");
    assert_error(
        &t,
        "test.yaml: thermal_zones[0] (cpu-thermal).sensor: ",
        "is not a TSU",
    );
}

#[test]
fn yaml_syntax_error_names_the_file() {
    let e = error("name: [unclosed\n");
    assert!(e.starts_with("test.yaml: "), "{e}");
}

#[test]
fn load_of_a_missing_file_names_it() {
    let e = Soc::load(std::path::Path::new("/nonexistent/soc.yaml"));
    match e {
        Err(SocError::Io { file, .. }) => assert_eq!(file, "/nonexistent/soc.yaml"),
        other => panic!("{other:?}"),
    }
}

const MAILBOX_DT: &str = "      sram_export: mailbox-sram\n";

#[test]
fn sram_export_with_a_unit_address() {
    let t = mutate(MAILBOX_DT, "      sram_export: mailbox-sram@0\n");
    assert_error(
        &t,
        "test.yaml: devices.mailbox.dt.sram_export: ",
        "`mailbox-sram@0` is not a valid DT node name",
    );
}

#[test]
fn sram_export_without_the_mmio_sram_compatible() {
    let t = mutate(
        "compatible: [\"mmio-sram\"]",
        "compatible: [\"rzgate,mailbox\"]",
    );
    assert_error(
        &t,
        "test.yaml: devices.mailbox.dt.compatible: ",
        "sram_export needs `mmio-sram`",
    );
}

#[test]
fn sram_export_with_a_generated_property() {
    let t = mutate(
        MAILBOX_DT,
        "      sram_export: mailbox-sram\n      properties: [\"ranges\"]\n",
    );
    assert_error(
        &t,
        "test.yaml: devices.mailbox.dt.properties[0]: ",
        "`ranges` is generated for sram_export",
    );
    let t = mutate(
        MAILBOX_DT,
        "      sram_export: mailbox-sram\n      properties: [\"#size-cells = <2>\"]\n",
    );
    assert_error(
        &t,
        "test.yaml: devices.mailbox.dt.properties[0]: ",
        "`#size-cells` is generated for sram_export",
    );
}

#[test]
fn sram_export_with_channel_nodes() {
    let t = mutate(
        MAILBOX_DT,
        "      sram_export: mailbox-sram\n      channel_nodes: true\n",
    );
    assert_error(
        &t,
        "test.yaml: devices.mailbox.dt.channel_nodes: ",
        "cannot be combined with sram_export",
    );
}

#[test]
fn sram_export_larger_than_one_size_cell() {
    let t = mutate("  size: 0x03000000\n", "  size: 0x200000000\n");
    let t = t.replacen(
        "    base: 0x12fff000\n    size: 0x1000\n",
        "    base: 0x12fff000\n    size: 0x100000000\n",
        1,
    );
    assert_error(
        &t,
        "test.yaml: devices.mailbox.dt.sram_export: ",
        "does not fit the partition's one size cell",
    );
}

#[test]
fn spi_the_machine_uses() {
    let t = mutate("soc_spi: 312, spi: 200 }", "soc_spi: 312, spi: 40 }");
    assert_error(
        &t,
        "test.yaml: devices.adc.interrupts[0] (adi).spi: ",
        "SPI 40 is not in gic.free_spis",
    );
}

#[test]
fn two_lines_on_one_spi() {
    let t = mutate(
        "      - { name: adi, soc_spi: 312, spi: 200 }\n",
        "      - { name: adi, soc_spi: 312, spi: 200 }\n      - { name: other, spi: 200 }\n",
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.interrupts[1] (other).spi: ",
        "SPI 200 is also devices.adc.interrupts[0] (adi)",
    );
}

#[test]
fn allocation_runs_out_of_free_spis() {
    let t = mutate("free_spis: [[176, 255]]", "free_spis: [[200, 200]]");
    let t = t.replacen(
        "      - { name: adi, soc_spi: 312, spi: 200 }\n",
        "      - { name: adi, soc_spi: 312, spi: 200 }\n      - { name: extra, soc_spi: 313 }\n",
        1,
    );
    assert_error(
        &t,
        "test.yaml: devices.adc.interrupts[1] (extra): ",
        "no free SPI left to allocate (1 in gic.free_spis, all taken)",
    );
}

#[test]
fn unknown_model() {
    let t = mutate("    model: tsu\n", "    model: tsuu\n");
    assert_error(
        &t,
        "test.yaml: devices.tsu.model: ",
        "unknown model `tsuu` (expected one of generic, cpg, adc, tsu, wdt, mailbox",
    );
}

#[test]
fn link_to_an_undefined_device() {
    let t = mutate("      ch8: tsu\n", "      ch8: tsv\n");
    assert_error(
        &t,
        "test.yaml: devices.adc.inputs.ch8: ",
        "reference to undefined device `tsv`",
    );
}

#[test]
fn link_to_an_input_the_model_lacks() {
    let t = mutate("      ch8: tsu\n", "      ch9: tsu\n");
    assert_error(
        &t,
        "test.yaml: devices.adc.inputs.ch9: ",
        "the adc model's inputs are its channels ch0..ch8",
    );
}

#[test]
fn unknown_bus_error_rule() {
    let t = mutate(
        "      resets: [tsu_presetn]\n      bus_error: clock-stopped-and-mstop\n",
        "      resets: [tsu_presetn]\n      bus_error: sometimes\n",
    );
    assert_error(
        &t,
        "test.yaml: devices.tsu.gate.bus_error: ",
        "unknown variant `sometimes`",
    );
}

#[test]
fn clocks_without_a_clock_controller() {
    let t = mutate("clock_controller: { device: cpg, mon_offset: 0x180 }\n", "");
    assert_error(&t, "test.yaml: clock_controller: ", "missing");
}

#[test]
fn mirror_of_an_unknown_field() {
    let t = mutate(
        "          - { name: OE, lsb: 1, width: 1 }\n",
        "          - { name: OE, lsb: 1, width: 1, mirror: TSU_SM.XX }\n",
    );
    assert_error(
        &t,
        "test.yaml: devices.tsu.registers[0] (TSU_SM).fields[1] (OE).mirror: ",
        "`TSU_SM.XX` does not name a field of this device",
    );
}

#[test]
fn self_clear_on_a_read_only_register() {
    let t = mutate(
        "          - { name: TRIM, lsb: 0, width: 12 }\n          - { name: VALID, lsb: 31, width: 1 }\n      - name: OTPTSUTRIM1",
        "          - { name: TRIM, lsb: 0, width: 12, self_clear: true }\n          - { name: VALID, lsb: 31, width: 1 }\n      - name: OTPTSUTRIM1",
    );
    assert_error(
        &t,
        "test.yaml: devices.tsu.registers[1] (OTPTSUTRIM0).fields[0] (TRIM): ",
        "self_clear on a read-only register",
    );
}

#[test]
fn i2c_target_errors_name_the_target() {
    let prefix = "test.yaml: devices.i2c0.i2c_targets[0] (eeprom)";
    let t = mutate("        address: 0x50\n", "        address: 0x78\n");
    assert_error(&t, &format!("{prefix}.address: "), "expected 0x08..0x77");
    let t = mutate("        size: 256\n", "        size: 1024\n");
    assert_error(
        &t,
        &format!("{prefix}.size: "),
        "24c04..24c16 are not modelled",
    );
    let t = mutate("        page_size: 8\n", "        page_size: 12\n");
    assert_error(&t, &format!("{prefix}.page_size: "), "power of two");
    let t = mutate("        model: at24\n", "        model: at25\n");
    assert_error(&t, &format!("{prefix}.model: "), "expected `at24`");
    let t = mutate("        fill: 0xff\n", "        fill: 0x100\n");
    assert_error(&t, &format!("{prefix}.fill: "), "not a byte");
    let long = "x".repeat(257);
    let t = mutate(
        "        contents: \"rzgate RZ/G3S RIIC0 AT24 EEPROM @0x50\\n\"\n",
        &format!("        contents: \"{long}\"\n"),
    );
    assert_error(
        &t,
        &format!("{prefix}.contents: "),
        "do not fit the 256-byte memory",
    );
    let t = mutate(
        "          compatible: [\"atmel,24c02\"]\n",
        "          compatible: [\"atmel,24c02\"]\n          properties: [\"reg = <0x51>\"]\n",
    );
    assert_error(
        &t,
        &format!("{prefix}.dt.properties[0]: "),
        "not `reg` or `pagesize`",
    );
    let t = mutate(
        "        page_size: 8\n",
        "        page_size: 8\n        colour: red\n",
    );
    assert_error(&t, "test.yaml: devices.i2c0", "unknown field `colour`");
}

#[test]
fn a_second_target_at_the_same_address_is_refused() {
    let t = mutate(
        "    i2c_targets:\n",
        "    i2c_targets:\n      - { name: other, model: at24, address: 0x50, size: 128, page_size: 8 }\n",
    );
    assert_error(
        &t,
        "test.yaml: devices.i2c0.i2c_targets[1] (eeprom): ",
        "same name or address as `other` at 0x50",
    );
}

#[test]
fn riic_needs_its_byte_registers_and_lines() {
    let t = mutate(
        "          - { name: ICDRR, lsb: 24, width: 8 }\n",
        "          - { name: ICDRX, lsb: 24, width: 8 }\n",
    );
    assert_error(
        &t,
        "test.yaml: devices.i2c0.registers: ",
        "byte register ICDRR",
    );
    let t = mutate(
        "          - { name: ICIER, lsb: 24, width: 8 }\n",
        "          - { name: ICIER, lsb: 24, width: 4 }\n",
    );
    assert_error(&t, "test.yaml: devices.i2c0.registers: ", "as a whole byte");
    let t = mutate(
        "      - { name: naki, soc_spi: 258, flags: 4 }\n",
        "      - { name: nak, soc_spi: 258, flags: 4 }\n",
    );
    assert_error(&t, "test.yaml: devices.i2c0.interrupts: ", "named `naki`");
}

#[test]
fn only_the_riic_model_takes_i2c_targets() {
    let t = mutate("    model: riic\n", "");
    assert_error(
        &t,
        "test.yaml: devices.i2c0.i2c_targets: ",
        "carries no I2C targets",
    );
}

#[test]
fn repeat_with_a_bad_stride() {
    let t = mutate(
        "{ name: CHSTAT, offset: 0x024, access: ro, repeat: { count: 8, stride: 0x40 } }",
        "{ name: CHSTAT, offset: 0x024, access: ro, repeat: { count: 8, stride: 0x42 } }",
    );
    assert_error(
        &t,
        "test.yaml: devices.dmac.registers[12] (CHSTAT).repeat: ",
        "stride 0x42 is not a non-zero multiple of 4",
    );
}

#[test]
fn repeat_copies_clash_by_name_and_offset() {
    // Channels 8..15 named from 0 again: the copies' names clash with channels 0..7.
    let t = mutate(
        "{ name: CHSTAT, offset: 0x424, access: ro, repeat: { count: 8, stride: 0x40, first: 8 } }",
        "{ name: CHSTAT, offset: 0x424, access: ro, repeat: { count: 8, stride: 0x40 } }",
    );
    assert_error(
        &t,
        "test.yaml: devices.dmac.registers[104] (CHSTAT0): ",
        "duplicate register name (also registers[96])",
    );
    // Copies past the device's end.
    let t = mutate(
        "{ name: DMARS,  offset: 0x10000, access: rw, repeat: { count: 8, stride: 0x4 } }",
        "{ name: DMARS,  offset: 0x1fff0, access: rw, repeat: { count: 8, stride: 0x4 } }",
    );
    let e = error(&t);
    assert!(
        e.starts_with("test.yaml: devices.dmac.registers[") && e.contains("(DMARS4): "),
        "{e}"
    );
    assert!(e.contains("is outside the device"), "{e}");
}

#[test]
fn dt_regions_outside_the_device_or_unordered() {
    let t = mutate(
        "regions: [[0x0, 0x10000], [0x10000, 0x10000]]",
        "regions: [[0x0, 0x10000], [0x10000, 0x20000]]",
    );
    assert_error(
        &t,
        "test.yaml: devices.dmac.dt.regions[1]: ",
        "is not a non-empty range inside the device (size 0x20000)",
    );
    let t = mutate(
        "regions: [[0x0, 0x10000], [0x10000, 0x10000]]",
        "regions: [[0x10000, 0x10000], [0x0, 0x10000]]",
    );
    assert_error(
        &t,
        "test.yaml: devices.dmac.dt.regions[1]: ",
        "after the previous one",
    );
}
