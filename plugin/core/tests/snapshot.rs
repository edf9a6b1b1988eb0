//! Snapshots: a bus that loads another's saved state (over the migrated window) goes on
//! exactly as the original would: same register values, same events with the same
//! sequence numbers and `gated_since`, same interrupts, same summary. Driven with the
//! driver-shaped sequences of the other tests, through every model of the shipped SoC.

mod common;

use rzgate_core::bus::BusState;
use rzgate_core::config::{Fault, ModelConfig};
use rzgate_core::sim::Sim;
use rzgate_core::Bus;

fn cfg() -> ModelConfig {
    ModelConfig {
        temp_c: 42.0,
        adc: [100, 500, 1000, 1500, 2000, 2500, 3000, 4000],
        faults: vec![],
    }
}

/// What a cold boot leaves behind at the snapshot point: cpg, adc and tsu probed, one
/// conversion per channel, the ADC runtime-suspended (gated, with a `gated_since`).
fn booted() -> Sim {
    let mut sim = common::sim_with(cfg());
    common::step(&mut sim, 1);
    assert!(common::adc_probe(&mut sim));
    common::tsu_probe(&mut sim);
    for ch in 0..9 {
        assert!(common::adc_convert(&mut sim, ch).is_some(), "channel {ch}");
    }
    common::adc_runtime_suspend(&mut sim);
    assert_eq!(sim.bus.is_gated("adc"), Some(true));
    sim
}

/// What a test does after the snapshot point: a gated access first (it must name the
/// boot's gating event), then a resume, conversions, suspend, a step.
fn test_body(sim: &mut Sim) -> Vec<u64> {
    let mut seen = Vec::new();
    common::step(sim, 2);
    seen.push(u64::from(sim.r("adc", "ADM0")));
    common::adc_runtime_resume(sim);
    for ch in [0, 3, 7, 8] {
        seen.push(common::adc_convert(sim, ch).map_or(u64::MAX, u64::from));
    }
    seen.extend(sim.take_irqs().iter().map(|w| w.phys));
    common::adc_runtime_suspend(sim);
    common::step(sim, 3);
    seen
}

#[test]
fn a_restored_bus_goes_on_exactly_as_the_original() {
    let mut original = booted();
    let mut restored = original.restored(common::soc(), &cfg());
    assert_eq!(restored.bus.model_state(), original.bus.model_state());
    assert_eq!(restored.bus.save(), original.bus.save());
    original.events.clear();

    let seen_original = test_body(&mut original);
    let seen_restored = test_body(&mut restored);
    assert_eq!(seen_restored, seen_original);
    assert_eq!(restored.events, original.events, "same events, same seq");
    assert_eq!(restored.bus.model_state(), original.bus.model_state());
    assert_eq!(restored.bus.summary_event(), original.bus.summary_event());

    // The first access of the body hit the gated ADC: its abort names the boot's gating.
    let first = &restored.aborts()[0];
    assert_eq!(first.register, "ADM0");
    let since = first
        .gated_since
        .as_ref()
        .expect("gated_since carried over");
    assert_eq!(since.step, 1);
    // The suspend's last write set the ADC's MSTOP bit: from then on a bus error.
    assert_eq!(since.register, "BUS_MCPU2_MSTOP", "{since:?}");
}

#[test]
fn a_restored_bus_writes_no_reset_image_over_the_window() {
    let original = booted();
    let restored = original.restored(common::soc(), &cfg());
    // What the plugin would write: the restored window itself, not the power-on values.
    for w in restored.bus.reset_image() {
        assert_eq!(restored.peek(w.phys, 4), w.value, "{:#x}", w.phys);
    }
}

#[test]
fn armed_faults_come_from_the_restored_arguments() {
    let original = booted();
    let armed = ModelConfig {
        faults: vec![Fault::AdcConversionStuck],
        ..cfg()
    };
    let mut restored = original.restored(common::soc(), &armed);
    common::adc_runtime_resume(&mut restored);
    assert_eq!(common::adc_convert(&mut restored, 0), None);
    let summary = serde_json::to_value(restored.bus.summary_event()).unwrap();
    assert_eq!(summary["faults_fired"][0], "adc-conversion-stuck");
}

#[test]
fn a_state_that_does_not_fit_is_refused_by_name() {
    let original = booted();
    let state = original.bus.save();
    let fresh = || Bus::new(common::soc(), &cfg()).unwrap();

    let mut missing = state.clone();
    missing.devices.remove("tsu");
    let error = fresh().load(&missing).unwrap_err();
    assert!(error.contains("`tsu`"), "{error}");

    let mut extra = state.clone();
    let adc = extra.devices["adc"].clone();
    extra.devices.insert("scif1".into(), adc);
    let error = fresh().load(&extra).unwrap_err();
    assert!(error.contains("`scif1`"), "{error}");

    let mut short = state.clone();
    short.devices.get_mut("cpg").unwrap().model["registers"]
        .as_array_mut()
        .unwrap()
        .pop();
    let mut bus = fresh();
    let error = bus.load(&short).unwrap_err();
    assert!(
        error.contains("`cpg`") && error.contains("register"),
        "{error}"
    );
    // Refused: the bus is at power-on, not half-loaded.
    assert_eq!(bus.model_state(), fresh().model_state());

    let mut bad_fault: BusState = state.clone();
    bad_fault.faults_fired.push("adc-on-fire".into());
    let error = fresh().load(&bad_fault).unwrap_err();
    assert!(error.contains("adc-on-fire"), "{error}");

    let mut counters = state;
    counters.devices.get_mut("adc").unwrap().model["counters"]["conversions"] =
        serde_json::json!([1, 2]);
    let error = fresh().load(&counters).unwrap_err();
    assert!(
        error.contains("`adc`") && error.contains("channels"),
        "{error}"
    );
}
