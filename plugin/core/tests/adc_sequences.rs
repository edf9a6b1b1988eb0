//! rzg2l_adc on the bus: probe, one conversion per channel with the interrupt, runtime
//! suspend, and the pre-6.17 unbind ordering that touches the ADC after its clocks were
//! gated: the abort event carries every field of the contract.

mod common;

use rzgate_core::config::{Fault, ModelConfig};
use rzgate_core::event::{AccessKind, Event, GatedSince};

const ADC_BASE: u64 = 0x7d05_8000;

/// The ADC's gate transitions in `probe_convert_every_channel_then_unbind_after_detach_aborts`:
/// probe (suspect -> open at pclk on), autosuspend (open -> suspect at pclk off, -> bus
/// error at MSTOP set), resume (-> suspect at MSTOP clear, -> open at pclk on), unbind
/// (-> suspect, -> bus error).
const GATE_EVENTS: u64 = 7;

fn gate_events(events: &[Event]) -> Vec<(String, bool, Vec<String>, String, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Gate {
                device,
                gated,
                reasons,
                register,
                seq,
                ..
            } => Some((
                device.clone(),
                *gated,
                reasons.clone(),
                register.clone(),
                *seq,
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn probe_convert_every_channel_then_unbind_after_detach_aborts() {
    let mut sim = common::sim_with(ModelConfig {
        temp_c: 25.0,
        adc: [10, 11, 12, 13, 14, 15, 16, 4095],
        faults: vec![],
    });
    common::step(&mut sim, 1);
    assert!(common::adc_probe(&mut sim), "SRESB latched");
    assert_eq!(sim.r("adc", "ADM3"), 0x001d_007f);

    // Ungated by the pclk enable (adclk's enable already released MSTOP).
    let gates = gate_events(&sim.events);
    assert_eq!(gates.len(), 1);
    assert_eq!(gates[0].0, "adc");
    assert!(!gates[0].1);
    assert!(gates[0].2.is_empty());
    assert_eq!(gates[0].3, "CLK_ON_ADC");

    // Channel 8 with the TSU off reads the documented "output off" code.
    assert_eq!(common::adc_convert(&mut sim, 8), Some(0));
    common::tsu_probe(&mut sim);
    let code = sim.bus.output("tsu").expect("tsu drives its output");
    assert_eq!(code, 966, "25 degC with the default calibration");

    common::step(&mut sim, 2);
    for ch in 0..9u32 {
        sim.take_irqs();
        let want = match ch {
            8 => code,
            7 => 4095,
            c => 10 + c,
        };
        assert_eq!(
            common::adc_convert(&mut sim, ch),
            Some(want),
            "channel {ch}"
        );
    }
    // Each conversion set GICD_ISPENDR7 bit 8 (SPI 200 = INTID 232).
    let counters = match sim.bus.summary_event() {
        Event::Summary { counters, .. } => counters["adc"].clone(),
        _ => unreachable!(),
    };
    assert_eq!(
        counters["conversions"],
        serde_json::json!([1, 1, 1, 1, 1, 1, 1, 1, 2])
    );
    assert_eq!(counters["interrupts"], 10);

    // The interrupt write itself.
    let v = sim.r("adc", "ADM0");
    sim.w("adc", "ADM0", v | 1);
    let irqs = sim.take_irqs();
    assert_eq!(irqs.len(), 1);
    assert_eq!(
        (irqs[0].phys, irqs[0].size, irqs[0].value),
        (0x0800_021c, 4, 1 << 8)
    );
    let sts = sim.r("adc", "ADSTS");
    sim.w("adc", "ADSTS", sts);

    // Autosuspend: clean, gates the ADC again (pclk off first: suspect; then adclk off
    // with MSTOP set: a bus error).
    common::adc_runtime_suspend(&mut sim);
    let gates = gate_events(&sim.events);
    let last = gates.last().expect("gate");
    assert!(last.1);
    assert_eq!(
        last.2,
        vec![
            "ADC pclk off: CLK_MON 0x728 bit 1 = 0".to_string(),
            "ADC bus in module stop: MSTOP 0xB68 bit 14 = 1".to_string(),
        ]
    );
    assert_eq!(last.3, "BUS_MCPU2_MSTOP");
    assert!(
        sim.aborts().is_empty(),
        "a clean runtime PM cycle never aborts"
    );

    // Unbind, prefix ordering: the device is runtime-active, detach (pm_clk_destroy)
    // gates its clocks, then devres' pm_runtime_disable_action runs runtime_suspend.
    common::adc_runtime_resume(&mut sim);
    sim.take_irqs();
    common::step(&mut sim, 3);
    sim.pc = 0xffff_8000_1111_0000;
    common::clk_disable(&mut sim, "adc_pclk", false);
    assert_eq!(
        sim.bus.is_gated("adc"),
        Some(false),
        "pclk off alone: suspect"
    );
    sim.pc = 0xffff_8000_1111_0008;
    common::clk_disable(&mut sim, "adc_adclk", true);
    let gated_seq = gate_events(&sim.events).last().map(|g| g.4).expect("gate");
    let before = sim.bus.model_state();

    sim.pc = 0xffff_8000_2222_0014;
    let v = sim.read32(ADC_BASE);
    assert_eq!(v, 0xffff_ffff, "a gated read sees the bus-error value");
    assert!(sim.last_aborted);
    sim.write32(ADC_BASE, v & !0x4);
    assert!(sim.last_aborted);
    assert_eq!(
        sim.peek(ADC_BASE, 4),
        0xffff_ffff,
        "the gated write was undone"
    );
    assert_eq!(
        sim.bus.model_state(),
        before,
        "aborted accesses leave the models alone"
    );

    let aborts = sim.aborts();
    assert_eq!(aborts.len(), 2);
    let read = aborts[0];
    assert_eq!(read.device, "adc");
    assert_eq!(read.register, "ADM0");
    assert_eq!(read.offset, 0);
    assert_eq!(read.soc_addr, 0x1005_8000);
    assert_eq!(read.guest_addr, ADC_BASE);
    assert_eq!(read.access, AccessKind::Read);
    assert_eq!(read.size, 4);
    assert_eq!(read.value, 0xffff_ffff);
    assert_eq!(read.vcpu, 0);
    assert_eq!(read.pc, 0xffff_8000_2222_0014);
    assert_eq!(read.step, 3);
    assert_eq!(
        read.gated_by,
        vec![
            "ADC pclk off: CLK_MON 0x728 bit 1 = 0".to_string(),
            "ADC bus in module stop: MSTOP 0xB68 bit 14 = 1".to_string(),
        ]
    );
    assert_eq!(
        read.gated_since,
        Some(GatedSince {
            seq: gated_seq,
            pc: 0xffff_8000_1111_0008,
            step: 3,
            register: "BUS_MCPU2_MSTOP".into(),
        })
    );
    assert!(read.frames.is_empty());
    assert_eq!(read.unwind, "not-captured");
    let write = aborts[1];
    assert_eq!(write.access, AccessKind::Write);
    assert_eq!(write.value, 0xffff_fffb);
    assert!(write.seq > read.seq);

    // devres then asserts the resets: the reasons grow.
    assert!(common::reset(&mut sim, "adc_presetn", true));
    sim.read32(ADC_BASE + 0x24);
    let last = *sim.aborts().last().expect("abort");
    assert_eq!(last.register, "ADSTS");
    assert_eq!(
        last.gated_by.last().map(String::as_str),
        Some("ADC reset held: RST_MON 0xA28 bit 0 = 1")
    );

    // Summary counts.
    match sim.bus.summary_event() {
        Event::Summary {
            aborts,
            accesses,
            gate_events,
            ..
        } => {
            assert_eq!(aborts, 3);
            assert!(accesses["adc"] > 40);
            assert!(accesses["cpg"] > 10);
            assert_eq!(accesses["mailbox"], 3);
            assert_eq!(gate_events["adc"], GATE_EVENTS);
        }
        _ => unreachable!(),
    }
    let markers: Vec<u32> = sim
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Marker { step, .. } => Some(*step),
            _ => None,
        })
        .collect();
    assert_eq!(markers, [1, 2, 3]);
    // seq counts every event from 0 (the summaries above took one number each).
    let seqs: Vec<u64> = sim.events.iter().map(Event::seq).collect();
    assert_eq!(seqs.first(), Some(&0));
    assert!(seqs.windows(2).all(|w| w[1] > w[0]), "{seqs:?}");
}

#[test]
fn sresb_stuck_fails_the_probe_and_fires_once() {
    let mut sim = common::sim_faults(&[Fault::AdcSresbStuck]);
    assert!(!common::adc_probe(&mut sim));
    let v = sim.r("adc", "ADM0");
    sim.w("adc", "ADM0", v | 0x8000);
    let fired: Vec<&Event> = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::FaultFired { .. }))
        .collect();
    assert_eq!(fired.len(), 1);
    assert!(matches!(
        fired[0],
        Event::FaultFired {
            fault: Fault::AdcSresbStuck,
            ..
        }
    ));
}

#[test]
fn conversion_stuck_times_out_without_data_or_interrupt() {
    let mut sim = common::sim_faults(&[Fault::AdcConversionStuck]);
    assert!(common::adc_probe(&mut sim));
    assert_eq!(common::adc_convert(&mut sim, 0), None);
    assert!(sim.irq_writes.is_empty());
    assert_eq!(sim.r("adc", "ADCR0"), 0);
    assert_eq!(common::adc_convert(&mut sim, 1), None);
    let fired = sim
        .events
        .iter()
        .filter(|e| matches!(e, Event::FaultFired { .. }))
        .count();
    assert_eq!(fired, 1);
}

#[test]
fn clkmon_stuck_keeps_the_adc_suspect() {
    let mut sim = common::sim_faults(&[Fault::CpgClkmonStuckAdc]);
    assert!(common::reset(&mut sim, "adc_presetn", false));
    assert!(
        !common::clk_enable(&mut sim, "adc_adclk", true),
        "CLK_MON never sets"
    );
    assert!(!common::clk_enable(&mut sim, "adc_pclk", false));
    // CLK_MON says stopped but the enable released MSTOP: what the silicon tolerates.
    assert_eq!(sim.bus.is_gated("adc"), Some(false));
    assert_eq!(
        sim.bus.gate_state("adc"),
        Some(rzgate_core::gate::GateState::Suspect)
    );
    sim.r("adc", "ADM0");
    assert!(sim.aborts().is_empty());
    let a = *sim.suspects().first().expect("suspect");
    assert_eq!(a.gated_since, None, "suspect since reset");
    assert_eq!(
        a.gated_by,
        vec!["ADC pclk off: CLK_MON 0x728 bit 1 = 0".to_string()]
    );
    let fired = sim
        .events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::FaultFired {
                    fault: Fault::CpgClkmonStuckAdc,
                    ..
                }
            )
        })
        .count();
    assert_eq!(fired, 1);
    // The TSU's clock still works.
    assert!(common::clk_enable(&mut sim, "tsu_pclk", true));
}

#[test]
fn conversion_needs_adclk_and_adrst_released() {
    let mut sim = common::sim();
    assert!(common::adc_probe(&mut sim));
    // 6.12-style register access with pclk alone: legal, but nothing converts.
    common::clk_disable(&mut sim, "adc_adclk", false);
    assert_eq!(sim.bus.is_gated("adc"), Some(false));
    assert_eq!(common::adc_convert(&mut sim, 0), None);
    assert!(common::clk_enable(&mut sim, "adc_adclk", false));
    assert!(common::reset(&mut sim, "adc_adrst_n", true));
    assert_eq!(common::adc_convert(&mut sim, 0), None);
    assert!(common::reset(&mut sim, "adc_adrst_n", false));
    assert_eq!(common::adc_convert(&mut sim, 0), Some(0x400));
    match sim.bus.summary_event() {
        Event::Summary { counters, .. } => {
            let nc = &counters["adc"]["not_converted"];
            assert_eq!(nc["ADC adclk off: CLK_MON 0x728 bit 0 = 0"], 1);
            assert_eq!(nc["ADC reset held: RST_MON 0xA28 bit 1 = 1"], 1);
        }
        _ => unreachable!(),
    }
    assert!(sim.aborts().is_empty());
}
