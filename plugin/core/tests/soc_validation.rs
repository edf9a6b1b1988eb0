//! Every class of SoC-description error names the file, the YAML path and what was expected.

mod common;

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

fn error(text: &str) -> String {
    match Soc::parse(text, "test.yaml") {
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
    assert!(Soc::parse(&common::soc_text(), "test.yaml").is_ok());
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
    let t = mutate("base: 0x11fff000", "base: 0x12000000");
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
    let t = mutate("    spi: 200\n", "    spi: 312\n");
    assert_error(&t, "test.yaml: devices.adc.spi: ", "SPI 312 does not exist");
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
    let t = mutate("  size: 0x02000000\n", "  size: 0x200000000\n");
    let t = t.replacen(
        "    base: 0x11fff000\n    size: 0x1000\n",
        "    base: 0x11fff000\n    size: 0x100000000\n",
        1,
    );
    assert_error(
        &t,
        "test.yaml: devices.mailbox.dt.sram_export: ",
        "does not fit the partition's one size cell",
    );
}
