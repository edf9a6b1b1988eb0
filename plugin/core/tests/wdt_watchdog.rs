//! The watchdog through the bus, as rzg2l_wdt.c drives it: start, ping, stop by the module
//! reset, the bite when not pinged, and a deadline that survives a snapshot as the time
//! that remained.

mod common;

use rzgate_core::config::ModelConfig;
use rzgate_core::event::Event;
use rzgate_core::sim::Sim;

const MS: u64 = 1_000_000;
const S: u64 = 1_000 * MS;

/// rzg2l_wdt_start for `timeout` s: runtime resume (clocks on), reset released, ping,
/// WDTSET, WDTTIM = 0, WDTEN.
fn start(sim: &mut Sim, timeout: u64) {
    assert!(common::clk_enable(sim, "wdt0_pclk", true));
    assert!(common::clk_enable(sim, "wdt0_clk", true));
    assert!(common::reset(sim, "wdt0_presetn", false));
    // time_out = timeout * 500000 / cycle_usec(0), cycle_usec(0) = 43690 us at 24 MHz.
    let wdttime = (timeout * 500_000 / 43_690) as u32;
    sim.w("wdt0", "WDTINT", 1);
    sim.w("wdt0", "WDTSET", wdttime << 20);
    sim.w("wdt0", "WDTTIM", 0);
    sim.w("wdt0", "WDTCNT", 1);
}

fn bites(sim: &Sim) -> Vec<(u64, u64, u64)> {
    sim.events
        .iter()
        .filter_map(|e| match e {
            Event::WatchdogReset {
                armed_ns,
                timeout_ns,
                seen_ns,
                ..
            } => Some((*armed_ns, *timeout_ns, *seen_ns)),
            _ => None,
        })
        .collect()
}

#[test]
fn pinged_it_never_bites_unpinged_it_bites_within_ten_percent() {
    let mut sim = common::sim();
    start(&mut sim, 3);
    assert!(sim.aborts().is_empty());
    for _ in 0..10 {
        sim.advance(S);
        sim.w("wdt0", "WDTINT", 1);
    }
    assert!(bites(&sim).is_empty() && !sim.system_reset);
    let armed = sim.bus.now_ns();
    for _ in 0..40 {
        sim.advance(100 * MS);
    }
    assert!(sim.system_reset);
    let b = bites(&sim);
    assert_eq!(b.len(), 1, "{:?}", sim.events);
    let (armed_ns, timeout_ns, seen_ns) = b[0];
    assert_eq!(armed_ns, armed);
    let ran = (seen_ns - armed_ns) as f64 / (3 * S) as f64;
    assert!((0.9..1.1).contains(&ran), "ran {ran} of the timeout");
    assert!((timeout_ns as f64 / (3 * S) as f64 - 1.0).abs() < 0.05);
}

#[test]
fn stopped_by_the_module_reset_it_never_bites() {
    let mut sim = common::sim();
    start(&mut sim, 2);
    sim.advance(S);
    // rzg2l_wdt_stop: reset_control_assert, then runtime suspend stops the clocks.
    assert!(common::reset(&mut sim, "wdt0_presetn", true));
    common::clk_disable(&mut sim, "wdt0_clk", false);
    common::clk_disable(&mut sim, "wdt0_pclk", true);
    sim.advance(10 * S);
    assert!(bites(&sim).is_empty());
    assert_eq!(sim.bus.deadline(), None);
    assert_eq!(
        sim.bus.model_state().registers["wdt0"][0],
        0,
        "WDTCNT in reset"
    );
}

#[test]
fn the_deadline_survives_a_snapshot_as_remaining_time() {
    let mut sim = common::sim();
    start(&mut sim, 2);
    sim.advance(S);
    let remaining = sim.bus.deadline().expect("due") - sim.bus.now_ns();
    let soc = common::soc();
    let mut restored = sim.restored(soc, &ModelConfig::default());
    // The restored bus's clock starts anywhere: its time continues from the saved one.
    assert_eq!(restored.bus.now_ns(), sim.bus.now_ns());
    assert_eq!(
        restored.bus.deadline().expect("due") - restored.bus.now_ns(),
        remaining
    );
    restored.advance(remaining - 1);
    assert!(!restored.system_reset, "1 ns early");
    restored.advance(1);
    assert!(restored.system_reset);
}

#[test]
fn the_restart_handler_resets_at_once() {
    let mut sim = common::sim();
    assert!(common::clk_enable(&mut sim, "wdt0_pclk", true));
    assert!(common::clk_enable(&mut sim, "wdt0_clk", true));
    assert!(common::reset(&mut sim, "wdt0_presetn", false));
    sim.w("wdt0", "PECR", 0);
    sim.w("wdt0", "PEEN", 1);
    assert!(sim.system_reset);
    assert_eq!(bites(&sim).len(), 1);
}
