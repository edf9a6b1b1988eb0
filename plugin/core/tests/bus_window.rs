//! What the RAM window holds after each access: the bus writes back register values and
//! side effects before the guest's next read (QEMU reports accesses after they land).

mod common;

use rzgate_core::bus::{Access, Outcome};
use rzgate_core::config::{AbortPolicy, PluginConfig};
use rzgate_core::event::Event;

const CPG: u64 = 0x7e01_0000;
const ADC: u64 = 0x7d05_8000;
const TSU: u64 = 0x7d05_9000;

/// BUS_MCPU2_MSTOP: ADC (bit 14) and TSU (bit 15) in module stop. With their clocks off (as
/// at reset) their bus answers with an error.
fn module_stop_adc_and_tsu(sim: &mut rzgate_core::sim::Sim) {
    sim.write32(CPG + 0xb68, 0xc000_c000);
}

#[test]
fn clk_on_write_is_replaced_by_its_low_half() {
    let mut sim = common::sim();
    sim.write32(CPG + 0x5a8, 0x0002_0002);
    assert_eq!(sim.peek(CPG + 0x5a8, 4), 0x2, "CLK_ON reads the low half");
    assert_eq!(sim.peek(CPG + 0x728, 4), 0x2, "CLK_MON follows at once");
}

#[test]
fn rst_mon_follows_rst_in_the_window() {
    let mut sim = common::sim();
    assert_eq!(sim.peek(CPG + 0x8a8, 4), 0x3);
    sim.write32(CPG + 0x8a8, 0x0003_0000);
    assert_eq!(sim.peek(CPG + 0x8a8, 4), 0);
    assert_eq!(sim.peek(CPG + 0xa28, 4), 0x3);
}

#[test]
fn writes_to_mon_registers_are_undone() {
    let mut sim = common::sim();
    sim.write32(CPG + 0x728, 0xffff_ffff);
    assert_eq!(sim.peek(CPG + 0x728, 4), 0);
    sim.write32(CPG + 0x280, 0x1);
    assert_eq!(sim.peek(CPG + 0x280, 4), 0, "CLKDIVSTATUS stays 0");
}

#[test]
fn byte_store_into_the_enable_half_changes_nothing() {
    let mut sim = common::sim();
    sim.write(CPG + 0x5a8 + 2, 1, 0x02);
    assert_eq!(sim.peek(CPG + 0x5a8, 4), 0);
    assert_eq!(sim.peek(CPG + 0x728, 4), 0);
}

#[test]
fn halfword_stores_merge_into_one_register_write() {
    let mut sim = common::sim();
    // The low half first (no enables: no change), then the high half carrying the old
    // low half as data: still no enable for a set bit, so the clock stays off.
    sim.write(CPG + 0x5a8, 2, 0x0002);
    sim.write(CPG + 0x5a8 + 2, 2, 0x0002);
    assert_eq!(sim.peek(CPG + 0x5a8, 4), 0);
}

#[test]
fn eight_byte_store_hits_two_registers() {
    let mut sim = common::sim();
    // CLK_ON_ADC (0x5a8) and CLK_ON_TSU (0x5ac) in one store.
    sim.write(CPG + 0x5a8, 8, 0x0001_0001_0003_0003);
    assert_eq!(sim.peek(CPG + 0x5a8, 8), 0x0000_0001_0000_0003);
    assert_eq!(sim.peek(CPG + 0x728, 8), 0x0000_0001_0000_0003);
}

#[test]
fn gating_overwrites_the_device_and_ungating_restores_it() {
    let mut sim = common::sim();
    // At reset the clocks are off but MSTOP is clear: the silicon answers (suspect only).
    assert_eq!(sim.peek(TSU + 0x18, 4), 0x8000_0511);
    // Module stop on top of the stopped clocks: the window shows the bus-error value.
    module_stop_adc_and_tsu(&mut sim);
    assert_eq!(sim.peek(ADC, 4), 0xffff_ffff);
    assert_eq!(sim.peek(TSU + 0x18, 4), 0xffff_ffff);
    sim.write32(CPG + 0x5ac, 0x0001_0001);
    assert_eq!(
        sim.peek(TSU + 0x18, 4),
        0x8000_0511,
        "trim word back in place: a running clock ends the bus error"
    );
    assert_eq!(sim.peek(TSU + 0x1c, 4), 0x8000_02ef);
    assert_eq!(sim.peek(TSU, 4), 0);
    sim.write32(TSU, 3);
    sim.write32(CPG + 0x5ac, 0x0001_0000);
    assert_eq!(sim.peek(TSU, 4), 0xffff_ffff);
    sim.write32(CPG + 0xb68, 0x8000_0000);
    assert_eq!(
        sim.peek(TSU, 4),
        3,
        "the model kept the real value while gated"
    );
}

#[test]
fn gate_event_names_the_cpg_access() {
    let mut sim = common::sim();
    common::step(&mut sim, 7);
    sim.pc = 0x1234;
    sim.vcpu = 1;
    sim.write32(CPG + 0x5ac, 0x0001_0001);
    let gate = sim
        .events
        .iter()
        .find(|e| matches!(e, Event::Gate { .. }))
        .expect("gate event");
    match gate {
        Event::Gate {
            device,
            gated,
            reasons,
            pc,
            vcpu,
            step,
            register,
            soc_addr,
            ..
        } => {
            assert_eq!(device, "tsu");
            assert!(!gated);
            assert!(reasons.is_empty());
            assert_eq!((*pc, *vcpu, *step), (0x1234, 1, 7));
            assert_eq!(register, "CLK_ON_TSU");
            assert_eq!(*soc_addr, 0x1101_05ac);
        }
        _ => unreachable!(),
    }
}

#[test]
fn gated_write_to_an_undeclared_offset_is_undone_too() {
    let mut sim = common::sim();
    module_stop_adc_and_tsu(&mut sim);
    sim.write(ADC + 0x101, 2, 0x1234);
    assert!(sim.last_aborted);
    assert_eq!(sim.peek(ADC + 0x101, 2), 0xffff);
    assert_eq!(sim.aborts()[0].register, "unmodelled@0x101");
}

#[test]
fn undeclared_offsets_are_kept_as_written_and_counted() {
    let mut sim = common::sim();
    sim.write32(CPG + 0x5ac, 0x0001_0001);
    sim.write32(TSU + 0x40, 0xdead_beef);
    assert!(!sim.last_aborted);
    assert_eq!(sim.read32(TSU + 0x40), 0xdead_beef);
    sim.read32(CPG + 0x3000);
    sim.read32(0x7d00_0000);
    match sim.bus.summary_event() {
        Event::Summary { unmodelled, .. } => {
            assert_eq!(unmodelled.get("tsu@0x40"), Some(&2));
            assert_eq!(unmodelled.get("cpg@0x3000"), Some(&1));
            assert_eq!(unmodelled.get("window@0x0"), Some(&1));
        }
        _ => unreachable!(),
    }
}

#[test]
fn accesses_outside_the_window_are_ignored() {
    let mut bus = rzgate_core::Bus::new(common::soc(), &Default::default()).expect("bus");
    assert!(!bus.in_window(0x7cff_ffff));
    assert!(bus.in_window(0x7d00_0000));
    assert!(bus.in_window(0x7fff_ffff));
    assert!(!bus.in_window(0x8000_0000));
    let mut out = Outcome {
        aborted: true,
        ..Outcome::default()
    };
    bus.access(
        &Access {
            phys: 0x4000_0000,
            size: 4,
            is_write: true,
            value: 1,
            vcpu: 0,
            pc: 0,
        },
        &mut out,
    );
    assert!(out.writes.is_empty() && out.events.is_empty() && !out.aborted);
}

#[test]
fn adsts_is_write_one_to_clear_through_the_window() {
    let mut sim = common::sim();
    assert!(common::adc_probe(&mut sim));
    common::adc_convert(&mut sim, 2);
    sim.w("adc", "ADM1", 0x4);
    sim.w("adc", "ADM2", 0x3);
    sim.w("adc", "ADINT", 0x1_0003);
    sim.w("adc", "ADM0", sim.peek(ADC, 4) as u32 | 1);
    assert_eq!(sim.r("adc", "ADSTS"), 0x3);
    sim.w("adc", "ADSTS", 0x1);
    assert_eq!(sim.r("adc", "ADSTS"), 0x2);
}

#[test]
fn reset_image_covers_every_register() {
    let bus = rzgate_core::Bus::new(common::soc(), &Default::default()).expect("bus");
    let image = bus.reset_image();
    let soc = common::soc();
    let total: usize = soc.devices().iter().map(|d| d.registers.len()).sum();
    assert_eq!(image.len(), total);
    let at = |phys: u64| image.iter().find(|w| w.phys == phys).map(|w| w.value);
    assert_eq!(at(CPG + 0x100), Some(1));
    assert_eq!(at(CPG + 0x8a8), Some(3));
    // Clocks off, MSTOP clear: no bus error, the real reset values.
    assert_eq!(at(ADC), Some(0));
    assert_eq!(at(TSU + 0x18), Some(0x8000_0511));
    assert_eq!(at(0x7fff_f000), Some(0));
}

#[test]
fn mailbox_step_emits_a_marker_and_is_carried_by_later_events() {
    let mut sim = common::sim();
    sim.vcpu = 1;
    sim.write32(0x7fff_f000, 5);
    assert!(matches!(
        sim.events.last(),
        Some(Event::Marker {
            step: 5,
            vcpu: 1,
            ..
        })
    ));
    assert_eq!(sim.bus.step(), 5);
    // At reset the ADC's clock is off with MSTOP clear: a suspect access, carrying the step.
    sim.read32(ADC);
    assert_eq!(sim.suspects()[0].step, 5);
}

fn markers(sim: &rzgate_core::sim::Sim) -> Vec<u32> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            Event::Marker { step, .. } => Some(*step),
            _ => None,
        })
        .collect()
}

/// The guest's sysfs write to the exported mailbox partition: memcpy_toio of STEP and
/// STEP_PAD (8 bytes at an 8-aligned address) is one 64-bit store: one marker per step.
#[test]
fn one_eight_byte_store_sets_step_and_reports_it_once() {
    let mut sim = common::sim();
    sim.write(0x7fff_f000, 8, 0x1ff);
    let step: u32 = 0x0302_0300;
    sim.write(0x7fff_f000, 8, u64::from(step));
    assert_eq!(sim.peek(0x7fff_f000, 8), u64::from(step));
    assert_eq!(sim.bus.step(), step);
    assert_eq!(markers(&sim), vec![0x1ff, step]);
    assert!(sim
        .bus
        .summary_event()
        .to_json()
        .contains("\"unmodelled\":{}"));
    sim.read32(ADC);
    assert_eq!(sim.suspects()[0].step, step);
}

/// Byte stores (a 4-byte write of the export) still end with STEP right, through partial
/// values: one marker per store.
#[test]
fn four_byte_stores_of_a_le_u32_set_step_and_report_it() {
    let mut sim = common::sim();
    sim.write32(0x7fff_f000, 0x1ff);
    let step: u32 = 0x0302_0100 | 0x200;
    for (i, b) in step.to_le_bytes().into_iter().enumerate() {
        sim.write(0x7fff_f000 + i as u64, 1, b.into());
    }
    assert_eq!(sim.peek(0x7fff_f000, 4), u64::from(step));
    assert_eq!(sim.bus.step(), step);
    let markers = markers(&sim);
    assert_eq!(markers.len(), 5, "one marker per store: {markers:x?}");
    assert_eq!(markers.last(), Some(&step));
    sim.read32(ADC);
    assert_eq!(sim.suspects()[0].step, step);
}

#[test]
fn start_and_summary_events() {
    let mut bus = rzgate_core::Bus::new(common::soc(), &Default::default()).expect("bus");
    let cfg = PluginConfig::parse([
        "soc=socs/r9a08g045.yaml",
        "events=e.jsonl",
        "temp=42",
        "on_abort=halt",
    ])
    .expect("cfg");
    let start = bus.start_event(&cfg);
    assert_eq!(start.seq(), 0);
    let json = start.to_json();
    assert!(
        json.starts_with("{\"type\":\"start\",\"seq\":0,\"soc\":\"r9a08g045\""),
        "{json}"
    );
    assert!(
        json.contains("\"on_abort\":\"halt\",\"temp_c\":42.0"),
        "{json}"
    );
    assert_eq!(cfg.on_abort, AbortPolicy::Halt);
    let halt = Event::Halt {
        seq: bus.next_seq(),
        abort_seq: 0,
    };
    assert_eq!(halt.seq(), 1);
    let mut summary = bus.summary_event();
    summary.set_channel_full(2);
    let json = summary.to_json();
    assert!(
        json.starts_with("{\"type\":\"summary\",\"seq\":2,"),
        "{json}"
    );
    assert!(
        json.contains(
            "\"accesses\":{\"adc\":0,\"cpg\":0,\"dmac\":0,\"hsusb\":0,\"i2c0\":0,\"mailbox\":0,\"phyrst\":0,\"rtc\":0,\"scif3\":0,\"sysc\":0,\"tsu\":0,\"usb2_phy0\":0,\"usb2_phy1\":0,\"vbattb\":0,\"wdt0\":0}"
        ),
        "{json}"
    );
    assert!(json.contains("\"aborts\":0"), "{json}");
    assert!(json.contains("\"channel_full\":2"), "{json}");
}

#[test]
fn reset_brings_back_the_power_on_window() {
    let mut bus = rzgate_core::Bus::new(common::soc(), &Default::default()).expect("bus");
    let fresh = bus.reset_image();
    let mut out = Outcome::default();
    for (phys, value) in [
        (CPG + 0x5a8, 0x0003_0003),
        (CPG + 0xb68, 0x8000_8000),
        (ADC, 0x4),
    ] {
        bus.access(
            &Access {
                phys,
                size: 4,
                is_write: true,
                value,
                vcpu: 0,
                pc: 0,
            },
            &mut out,
        );
    }
    assert_ne!(bus.reset_image(), fresh);
    bus.reset();
    assert_eq!(bus.reset_image(), fresh);
    assert_eq!(bus.step(), 0);
}
