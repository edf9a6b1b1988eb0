//! Power gating: when is a module legal to access, and why not, in words.
//!
//! A rule (from the SoC YAML) lists clocks that must run and resets that must be
//! released. A clock counts as running when its CLK_MON bit is 1 and its bus is out of
//! module stop (its MSTOP bits are 0); a reset counts as released when its RST_MON bit is
//! 0. The MON registers are what the hardware reports, so faults that freeze a MON bit
//! gate the module exactly like the real SoC would.

use crate::cpg::Cpg;
use crate::soc::{hex, Clock, Device, Reset, Rule, Soc};

/// True when any condition of `rule` fails.
pub fn is_gated(rule: &Rule, soc: &Soc, cpg: &Cpg) -> bool {
    let clocks_ok = rule.clocks.iter().all(|&i| {
        soc.clocks()
            .get(i)
            .is_some_and(|c| cpg.clock_running(c) && cpg.mstop_bits(c) == 0)
    });
    let resets_ok = rule
        .resets
        .iter()
        .all(|&i| soc.resets().get(i).is_some_and(|r| !cpg.reset_held(r)));
    !(clocks_ok && resets_ok)
}

/// The short name a device knows a clock by: its DT clock-names entry, else the clock
/// name without the `<device>_` prefix (tsu_pclk -> pclk).
pub fn clock_short_name<'a>(dev: &'a Device, soc: &'a Soc, clock: &'a Clock) -> &'a str {
    if let Some(dt) = &dev.dt {
        let pos = dt.clocks.iter().position(|c| match c {
            crate::soc::DtClock::Module(i) => {
                soc.clocks().get(*i).is_some_and(|k| k.name == clock.name)
            }
            crate::soc::DtClock::Extal => false,
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
pub fn reasons(dev: &Device, rule: &Rule, soc: &Soc, cpg: &Cpg) -> Vec<String> {
    let mut out = Vec::new();
    for clock in rule.clocks.iter().filter_map(|&i| soc.clocks().get(i)) {
        if !cpg.clock_running(clock) {
            out.push(format!(
                "{} {} off: CLK_MON {} bit {} = 0",
                dev.label,
                clock_short_name(dev, soc, clock),
                hex(clock.mon.offset.into()),
                clock.mon.bit
            ));
        }
        if let Some(m) = clock.mstop {
            let stopped = cpg.mstop_bits(clock);
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
        if cpg.reset_held(reset) {
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
pub fn first_reason(dev: &Device, rule: &Rule, soc: &Soc, cpg: &Cpg) -> Option<String> {
    if !is_gated(rule, soc, cpg) {
        return None;
    }
    reasons(dev, rule, soc, cpg).into_iter().next()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::soc::ModelKind;
    use crate::test_soc;

    #[test]
    fn adc_is_gated_at_reset_because_pclk_is_off() {
        let soc = test_soc();
        let cpg = Cpg::new(&soc, &ModelConfig::default());
        let adc = soc.device_by_model(ModelKind::Adc).expect("adc");
        let rule = adc.gate.as_ref().expect("rule");
        assert!(is_gated(rule, &soc, &cpg));
        assert_eq!(
            reasons(adc, rule, &soc, &cpg),
            vec!["ADC pclk off: CLK_MON 0x728 bit 1 = 0".to_string()]
        );
    }

    #[test]
    fn tsu_reasons_use_the_short_clock_name() {
        let soc = test_soc();
        let cpg = Cpg::new(&soc, &ModelConfig::default());
        let tsu = soc.device_by_model(ModelKind::Tsu).expect("tsu");
        let rule = tsu.gate.as_ref().expect("rule");
        assert_eq!(
            reasons(tsu, rule, &soc, &cpg),
            vec!["TSU pclk off: CLK_MON 0x72C bit 0 = 0".to_string()]
        );
    }
}
