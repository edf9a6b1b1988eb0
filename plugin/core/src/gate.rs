//! Power gating: when is a module legal to access, what does the bus answer when it is
//! not, and why, in words.
//!
//! A gate (from the SoC YAML) lists clocks that must run and resets that must be released.
//! A clock runs when its CLK_MON bit is 1 and its bus is out of module stop (its MSTOP bits
//! are 0); a reset is released when its RST_MON bit is 0. The MON registers are what the
//! hardware reports, so faults that freeze a MON bit gate the module exactly like the real
//! SoC would.
//!
//! Which failures are a bus error is declared per device ([`BusErrorWhen`]): on RZ/G3S a
//! bus error needs the module's clock stopped *and* its bus in module stop (Renesas, usbhs
//! unbind fix eb9ac779830b), while register accesses with the reset asserted worked on the
//! silicon (Renesas, 2026 I3C runtime-PM patch). A failure that is not a bus error makes the
//! access [`GateState::Suspect`]: it works, and it is reported.
//!
//! Everything here reads the clock controller's register values (`cc`), indexed like its
//! declared registers.

use serde::Serialize;

use crate::soc::{hex, BusErrorWhen, Clock, Device, Gate, Reset, Rule, Soc};

/// What an access to a device meets now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateState {
    /// Every gate condition holds.
    #[default]
    Open,
    /// Some condition fails, but not one the device answers with a bus error: the access
    /// works and is reported.
    Suspect,
    /// The bus answers with an error: reads see the bus-error value, writes are dropped.
    BusError,
}

/// CLK_MON says the clock runs.
pub fn clock_running(cc: &[u32], clock: &Clock) -> bool {
    cc.get(clock.mon.reg).copied().unwrap_or(0) & clock.mon.mask() != 0
}

/// The clock's MSTOP bits that are set (bus in module stop); 0 if it has none.
pub fn mstop_bits(cc: &[u32], clock: &Clock) -> u32 {
    clock
        .mstop
        .map(|m| cc.get(m.reg).copied().unwrap_or(0) & m.mask)
        .unwrap_or(0)
}

/// RST_MON says the module is in reset.
pub fn reset_held(cc: &[u32], reset: &Reset) -> bool {
    cc.get(reset.mon.reg).copied().unwrap_or(0) & reset.mon.mask() != 0
}

/// True when every condition of `rule` holds.
pub fn holds(rule: &Rule, soc: &Soc, cc: &[u32]) -> bool {
    let clocks_ok = rule.clocks.iter().all(|&i| {
        soc.clocks()
            .get(i)
            .is_some_and(|c| clock_running(cc, c) && mstop_bits(cc, c) == 0)
    });
    let resets_ok = rule
        .resets
        .iter()
        .all(|&i| soc.resets().get(i).is_some_and(|r| !reset_held(cc, r)));
    clocks_ok && resets_ok
}

/// What an access to a device with `gate` meets now.
pub fn state(gate: &Gate, soc: &Soc, cc: &[u32]) -> GateState {
    if holds(&gate.rule, soc, cc) {
        return GateState::Open;
    }
    let clocks = || gate.rule.clocks.iter().filter_map(|&i| soc.clocks().get(i));
    let bus_error = match gate.bus_error {
        BusErrorWhen::ClockStoppedAndMstop => {
            clocks().any(|c| !clock_running(cc, c) && mstop_bits(cc, c) != 0)
        }
        BusErrorWhen::ClockStopped => clocks().any(|c| !clock_running(cc, c)),
        BusErrorWhen::Any => true,
    };
    if bus_error {
        GateState::BusError
    } else {
        GateState::Suspect
    }
}

/// The short name a device knows a clock by: its DT clock-names entry, else the clock
/// name without the `<device>_` prefix (tsu_pclk -> pclk).
pub fn clock_short_name<'a>(dev: &'a Device, soc: &'a Soc, clock: &'a Clock) -> &'a str {
    if let Some(dt) = &dev.dt {
        let pos = dt.clocks.iter().position(|c| match c {
            crate::soc::DtClock::Module(i) => {
                soc.clocks().get(*i).is_some_and(|k| k.name == clock.name)
            }
            _ => false,
        });
        if let Some(name) = pos.and_then(|p| dt.clock_names.get(p)) {
            return name;
        }
    }
    clock
        .name
        .strip_prefix(dev.name.as_str())
        .and_then(|rest| rest.strip_prefix('_'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(&clock.name)
}

/// Every failing condition of `rule`, e.g. "ADC pclk off: CLK_MON 0x728 bit 1 = 0".
pub fn reasons(dev: &Device, rule: &Rule, soc: &Soc, cc: &[u32]) -> Vec<String> {
    let mut out = Vec::new();
    for clock in rule.clocks.iter().filter_map(|&i| soc.clocks().get(i)) {
        if !clock_running(cc, clock) {
            out.push(format!(
                "{} {} off: CLK_MON {} bit {} = 0",
                dev.label,
                clock_short_name(dev, soc, clock),
                hex(clock.mon.offset.into()),
                clock.mon.bit
            ));
        }
        if let Some(m) = clock.mstop {
            let stopped = mstop_bits(cc, clock);
            for bit in (0..16).filter(|b| stopped & (1 << b) != 0) {
                let reason = format!(
                    "{} bus in module stop: MSTOP {} bit {} = 1",
                    dev.label,
                    hex(m.offset.into()),
                    bit
                );
                // Clocks sharing one MSTOP bit (adclk and pclk) must not repeat it.
                if !out.contains(&reason) {
                    out.push(reason);
                }
            }
        }
    }
    for reset in rule.resets.iter().filter_map(|&i| soc.resets().get(i)) {
        if reset_held(cc, reset) {
            out.push(reset_reason(dev, reset));
        }
    }
    out
}

fn reset_reason(dev: &Device, reset: &Reset) -> String {
    format!(
        "{} reset held: RST_MON {} bit {} = 1",
        dev.label,
        hex(reset.mon.offset.into()),
        reset.mon.bit
    )
}

/// The first failing condition of `rule`, or None when it holds.
pub fn first_reason(dev: &Device, rule: &Rule, soc: &Soc, cc: &[u32]) -> Option<String> {
    if holds(rule, soc, cc) {
        return None;
    }
    reasons(dev, rule, soc, cc).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_soc;

    /// The clock controller's reset values: clocks off, MSTOP 0, resets released.
    fn cc_reset(soc: &Soc) -> Vec<u32> {
        soc.clock_controller_device()
            .map(|d| d.registers.iter().map(|r| r.reset).collect())
            .unwrap_or_default()
    }

    fn set(soc: &Soc, cc: &mut [u32], reg: &str, mask: u32, on: bool) {
        let dev = soc.clock_controller_device().expect("cpg");
        let i = dev.register_index(reg).expect(reg);
        if on {
            cc[i] |= mask;
        } else {
            cc[i] &= !mask;
        }
    }

    #[test]
    fn adc_at_reset_is_suspect_because_pclk_is_off_but_mstop_is_clear() {
        let soc = test_soc();
        let cc = cc_reset(&soc);
        let adc = soc.device("adc").expect("adc");
        let gate = adc.gate.as_ref().expect("gate");
        assert_eq!(state(gate, &soc, &cc), GateState::Suspect);
        assert_eq!(
            reasons(adc, &gate.rule, &soc, &cc),
            vec!["ADC pclk off: CLK_MON 0x728 bit 1 = 0".to_string()]
        );
    }

    #[test]
    fn clock_stopped_and_mstop_set_is_a_bus_error() {
        let soc = test_soc();
        let mut cc = cc_reset(&soc);
        set(&soc, &mut cc, "BUS_MCPU2_MSTOP", 1 << 14, true);
        let adc = soc.device("adc").expect("adc");
        let gate = adc.gate.as_ref().expect("gate");
        assert_eq!(state(gate, &soc, &cc), GateState::BusError);
        // Clock running again, MSTOP still set: suspect, not a bus error.
        set(&soc, &mut cc, "CLK_MON_ADC", 0x3, true);
        assert_eq!(state(gate, &soc, &cc), GateState::Suspect);
        set(&soc, &mut cc, "BUS_MCPU2_MSTOP", 1 << 14, false);
        assert_eq!(state(gate, &soc, &cc), GateState::Open);
    }

    #[test]
    fn a_held_reset_alone_is_suspect() {
        let soc = test_soc();
        let mut cc = cc_reset(&soc);
        set(&soc, &mut cc, "CLK_MON_ADC", 0x3, true);
        set(&soc, &mut cc, "RST_MON_ADC", 0x1, true);
        let adc = soc.device("adc").expect("adc");
        let gate = adc.gate.as_ref().expect("gate");
        assert_eq!(state(gate, &soc, &cc), GateState::Suspect);
        assert_eq!(
            reasons(adc, &gate.rule, &soc, &cc),
            vec!["ADC reset held: RST_MON 0xA28 bit 0 = 1".to_string()]
        );
    }

    #[test]
    fn the_declared_rule_decides_the_class() {
        let soc = test_soc();
        let mut cc = cc_reset(&soc);
        set(&soc, &mut cc, "CLK_MON_ADC", 0x3, true);
        set(&soc, &mut cc, "RST_MON_ADC", 0x1, true);
        let adc = soc.device("adc").expect("adc");
        let mut gate = adc.gate.clone().expect("gate");
        gate.bus_error = BusErrorWhen::Any;
        assert_eq!(state(&gate, &soc, &cc), GateState::BusError);
        gate.bus_error = BusErrorWhen::ClockStopped;
        assert_eq!(state(&gate, &soc, &cc), GateState::Suspect);
        set(&soc, &mut cc, "CLK_MON_ADC", 0x3, false);
        assert_eq!(state(&gate, &soc, &cc), GateState::BusError);
    }

    #[test]
    fn tsu_reasons_use_the_short_clock_name() {
        let soc = test_soc();
        let cc = cc_reset(&soc);
        let tsu = soc.device("tsu").expect("tsu");
        let gate = tsu.gate.as_ref().expect("gate");
        assert_eq!(
            reasons(tsu, &gate.rule, &soc, &cc),
            vec!["TSU pclk off: CLK_MON 0x72C bit 0 = 0".to_string()]
        );
    }
}
