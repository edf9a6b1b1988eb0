//! The RTC through the bus, as rtc-renesas-rtca3.c drives it: byte and 16-bit accesses at
//! the driver's offsets, the probe sequence, time set and read back with the carry retry,
//! the alarm raising its line at its second from a tick alone (the guest idle), and the
//! counter continuing across a snapshot.

mod common;

use rzgate_core::config::ModelConfig;
use rzgate_core::sim::Sim;

const S: u64 = 1_000_000_000;

fn base(sim: &Sim) -> u64 {
    let soc = sim.bus.soc();
    let dev = soc.device("rtc").expect("rtc");
    soc.window().guest_addr(dev.base)
}

fn rb(sim: &mut Sim, off: u64) -> u8 {
    let a = base(sim) + off;
    sim.read(a, 1) as u8
}

fn wb(sim: &mut Sim, off: u64, v: u8) {
    let a = base(sim) + off;
    sim.write(a, 1, v.into());
}

/// vbat_bclk (critical: the CPG probe turns it on), then rtca3_initial_setup.
fn probe(sim: &mut Sim) {
    assert!(common::clk_enable(sim, "vbat_bclk", true));
    assert!(common::reset(sim, "vbat_bresetn", false));
    wb(sim, 0x24, 0);
    assert_eq!(rb(sim, 0x24) & 0x81, 0);
    wb(sim, 0x24, 0x40);
    assert_eq!(rb(sim, 0x24) & 0x40, 0x40);
    wb(sim, 0x24, 0x42);
    assert_eq!(rb(sim, 0x24) & 0x02, 0, "RESET reads back 0 at once");
    wb(sim, 0x2e, 0);
    assert_eq!(rb(sim, 0x2e), 0);
    wb(sim, 0x24, 0x51);
    assert_eq!(rb(sim, 0x24) & 0x11, 0x11);
    let rcr1 = rb(sim, 0x22);
    wb(sim, 0x22, (rcr1 & 0x0f) | 0x80);
    assert_eq!(rb(sim, 0x22) & 0xf0, 0x80);
}

/// rtca3_read_time: clear CF, read the counters, retry while CF came back set.
fn read_time(sim: &mut Sim) -> [u16; 7] {
    for _ in 0..5 {
        let rsr = rb(sim, 0x20);
        wb(sim, 0x20, rsr & !0x2);
        let a = base(sim);
        let t = [
            u16::from(rb(sim, 0x02)),
            u16::from(rb(sim, 0x04)),
            u16::from(rb(sim, 0x06)),
            u16::from(rb(sim, 0x08)),
            u16::from(rb(sim, 0x0a)),
            u16::from(rb(sim, 0x0c)),
            sim.read(a + 0x0e, 2) as u16,
        ];
        if rb(sim, 0x20) & 0x2 == 0 {
            return t;
        }
    }
    panic!("CF set on every try");
}

/// rtca3_set_time with BCD values.
fn set_time(sim: &mut Sim, t: [u8; 7]) {
    let rcr2 = rb(sim, 0x24);
    wb(sim, 0x24, rcr2 & !1);
    for (off, v) in [0x02, 0x04, 0x06, 0x08, 0x0a, 0x0c].into_iter().zip(t) {
        wb(sim, off, v);
    }
    let a = base(sim);
    sim.write(a + 0x0e, 2, t[6].into());
    wb(sim, 0x24, rcr2 | 1);
}

#[test]
fn time_set_reads_back_and_runs() {
    let mut sim = common::sim();
    probe(&mut sim);
    assert!(sim.aborts().is_empty() && sim.suspects().is_empty());
    set_time(&mut sim, [0x58, 0x59, 0x23, 3, 0x31, 0x12, 0x26]);
    assert_eq!(read_time(&mut sim), [0x58, 0x59, 0x23, 3, 0x31, 0x12, 0x26]);
    sim.advance(2 * S);
    assert_eq!(read_time(&mut sim), [0x00, 0x00, 0x00, 4, 0x01, 0x01, 0x27]);
}

#[test]
fn a_read_after_an_unticked_second_retries_on_cf() {
    let mut sim = common::sim();
    probe(&mut sim);
    // Time passes without a tick (a busy vCPU): the first access of the read catches up.
    sim.clock.advance(S + 1);
    assert_eq!(read_time(&mut sim)[0], 0x01);
}

#[test]
fn the_alarm_raises_its_line_from_a_tick_alone() {
    let mut sim = common::sim();
    probe(&mut sim);
    set_time(&mut sim, [0x00, 0x00, 0x12, 3, 0x02, 0x12, 0x26]);
    // rtca3_set_alarm: AIE off, alarm registers with ENB, then AIE on (after the periodic
    // interrupts, here left out), RSR.AF cleared first.
    for (off, v) in [
        (0x10, 0x82),
        (0x12, 0x80),
        (0x14, 0x92),
        (0x16, 0x83),
        (0x18, 0x82),
        (0x1a, 0x92),
    ] {
        wb(&mut sim, off, v);
    }
    let a = base(&sim);
    sim.write(a + 0x1c, 2, 0x26);
    wb(&mut sim, 0x1e, 0x80);
    let rsr = rb(&mut sim, 0x20);
    wb(&mut sim, 0x20, rsr & !1);
    let rcr1 = rb(&mut sim, 0x22);
    wb(&mut sim, 0x22, rcr1 | 1);
    sim.take_irqs();
    sim.advance(S);
    assert!(sim.take_irqs().is_empty(), "one second early");
    sim.advance(S);
    let irqs = sim.take_irqs();
    assert_eq!(irqs.len(), 1, "{irqs:?}");
    assert_eq!(rb(&mut sim, 0x20) & 1, 1, "RSR.AF");
}

#[test]
fn the_counter_continues_across_a_snapshot() {
    let mut sim = common::sim();
    probe(&mut sim);
    set_time(&mut sim, [0x10, 0x00, 0x00, 3, 0x02, 0x12, 0x26]);
    sim.advance(S / 2);
    let mut restored = sim.restored(common::soc(), &ModelConfig::default());
    restored.advance(S / 2);
    assert_eq!(read_time(&mut restored)[0], 0x11);
    restored.advance(S);
    assert_eq!(read_time(&mut restored)[0], 0x12);
}
