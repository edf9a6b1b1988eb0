//! The RZ/G2L-family A/D converter (`rzg2l_adc`), G3S flavour: 9 channels, channel 8
//! wired to the TSU.
//!
//! Conversions are one-shot and synchronous: the driver waits only 1 jiffy
//! (`RZG2L_ADC_TIMEOUT`) for the interrupt, so ADCE=1 in select mode converts the
//! selected channels, sets their ADSTS bits and raises the interrupt before the store
//! returns; ADCE and ADBSY then read 0 again (the 6.12 driver never clears ADCE itself,
//! the 7.2 one polls for both to drop).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Fault, ModelConfig};
use crate::device::{BuildError, Effects, Env, Peripheral};
use crate::regs::{find, find_field, Missing, RegFile, Register};
use crate::soc::Device;

/// The registry name of this model.
pub const MODEL: &str = "adc";
/// The declared condition a conversion needs on top of register access (converter clock,
/// converter reset): `conditions.conversion` in the SoC description.
pub const CONVERSION: &str = "conversion";
/// Interrupt line 0 signals conversions (ADI).
const IRQ_LINE: usize = 0;

/// A/D mode register 0: ADCE starts a conversion, ADBSY reports one in progress, PWDWNB
/// powers the converter up, SRESB releases the software reset.
pub const ADM0: &str = "ADM0";
/// A/D mode register 1: MS selects select mode (the only mode the driver uses).
pub const ADM1: &str = "ADM1";
/// A/D mode register 2: one bit per channel to convert.
pub const ADM2: &str = "ADM2";
/// A/D interrupt control: INTEN per channel, CSEEN for channel-select errors.
pub const ADINT: &str = "ADINT";
/// A/D status (write 1 to clear): INTST per channel, CSEST channel-select error.
pub const ADSTS: &str = "ADSTS";
/// A/D conversion result of channel n, bits 11:0.
pub fn adcr(n: u32) -> String {
    format!("ADCR{n}")
}

/// Where the registers and bits the model drives sit (resolved from the YAML).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdcLayout {
    adm0: usize,
    adm1: usize,
    adm2: usize,
    adint: usize,
    adsts: usize,
    adcr: Vec<usize>,
    adce: u32,
    adbsy: u32,
    pwdwnb: u32,
    sresb: u32,
    ms: u32,
    inten: u32,
    cseen: u32,
    intst: u32,
    csest: u32,
}

impl AdcLayout {
    pub fn resolve(registers: &[Register], channels: u32) -> Result<AdcLayout, Missing> {
        let adm0 = find(registers, ADM0)?;
        let adm1 = find(registers, ADM1)?;
        let adm2 = find(registers, ADM2)?;
        let adint = find(registers, ADINT)?;
        let adsts = find(registers, ADSTS)?;
        let adcr = (0..channels)
            .map(|n| find(registers, &adcr(n)))
            .collect::<Result<Vec<_>, _>>()?;
        let layout = AdcLayout {
            adm0,
            adm1,
            adm2,
            adint,
            adsts,
            adcr,
            adce: find_field(registers, adm0, "ADCE")?,
            adbsy: find_field(registers, adm0, "ADBSY")?,
            pwdwnb: find_field(registers, adm0, "PWDWNB")?,
            sresb: find_field(registers, adm0, "SRESB")?,
            ms: find_field(registers, adm1, "MS")?,
            inten: find_field(registers, adint, "INTEN")?,
            cseen: find_field(registers, adint, "CSEEN")?,
            intst: find_field(registers, adsts, "INTST")?,
            csest: find_field(registers, adsts, "CSEST")?,
        };
        // One INTEN/INTST bit per channel, from bit 0 (rzg2l_adc.c uses BIT(ch)).
        let need = channel_mask(channels);
        for (field, reg, mask) in [
            ("INTEN", ADINT, layout.inten),
            ("INTST", ADSTS, layout.intst),
        ] {
            if mask & need != need {
                return Err(Missing {
                    register: reg.to_string(),
                    field: Some(format!(
                        "{field} covering bits 0..{} (one per channel)",
                        channels.saturating_sub(1)
                    )),
                });
            }
        }
        Ok(layout)
    }
}

fn channel_mask(channels: u32) -> u32 {
    crate::regs::field_mask(0, channels)
}

/// Conversion counters of the ADC model (the summary event's `counters.<device>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdcCounters {
    /// Completed conversions per channel.
    pub conversions: Vec<u64>,
    /// Interrupts raised.
    pub interrupts: u64,
    /// Channel-select errors (no channel selected).
    pub channel_select_errors: u64,
    /// ADCE=1 writes that converted nothing, by reason.
    pub not_converted: BTreeMap<String, u64>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Adc {
    registers: Vec<Register>,
    regs: RegFile,
    layout: AdcLayout,
    /// Host-set results of channels 0..7.
    host: [u16; 8],
    /// Channels wired to another device's output: (channel, input name). Declared as
    /// `inputs: { ch<N>: <device> }`.
    wired: Vec<(u32, String)>,
    sresb_stuck: bool,
    conversion_stuck: bool,
    counters: AdcCounters,
}

impl Adc {
    /// The ADC of device `dev`: registers and fields by name, `channels`, one interrupt
    /// line, inputs named `ch<N>`.
    pub fn new(dev: &Device, cfg: &ModelConfig) -> Result<Adc, BuildError> {
        if !(1..=16).contains(&dev.channels) {
            return Err(BuildError::new(
                "channels",
                format!(
                    "the {MODEL} model needs `channels` from 1 to 16 (got {})",
                    dev.channels
                ),
            ));
        }
        if dev.interrupts.is_empty() {
            return Err(BuildError::new(
                "interrupts",
                format!("the {MODEL} model needs an interrupt line (it signals conversions)"),
            ));
        }
        let layout = AdcLayout::resolve(&dev.registers, dev.channels)
            .map_err(|e| BuildError::new("registers", format!("the {MODEL} model needs {e}")))?;
        let mut wired = Vec::new();
        for (name, _) in &dev.inputs {
            let ch = name
                .strip_prefix("ch")
                .and_then(|n| n.parse::<u32>().ok())
                .filter(|&n| n < dev.channels);
            let Some(ch) = ch else {
                return Err(BuildError::new(
                    format!("inputs.{name}"),
                    format!(
                        "the {MODEL} model's inputs are its channels ch0..ch{}",
                        dev.channels.saturating_sub(1)
                    ),
                ));
            };
            wired.push((ch, name.clone()));
        }
        Ok(Adc::with_layout(dev.registers.clone(), layout, wired, cfg))
    }

    fn with_layout(
        registers: Vec<Register>,
        layout: AdcLayout,
        wired: Vec<(u32, String)>,
        cfg: &ModelConfig,
    ) -> Adc {
        let regs = RegFile::new(&registers);
        let channels = layout.adcr.len();
        Adc {
            registers,
            regs,
            layout,
            host: cfg.adc,
            wired,
            sresb_stuck: cfg.armed(Fault::AdcSresbStuck),
            conversion_stuck: cfg.armed(Fault::AdcConversionStuck),
            counters: AdcCounters {
                conversions: vec![0; channels],
                ..AdcCounters::default()
            },
        }
    }

    pub fn registers(&self) -> &[Register] {
        &self.registers
    }

    pub fn counters(&self) -> &AdcCounters {
        &self.counters
    }

    /// The result a conversion of `ch` produces now: a wired channel converts its source's
    /// output (0 while the source drives nothing), the others the host-set value.
    fn input(&self, ch: u32, env: &Env) -> u16 {
        if let Some((_, name)) = self.wired.iter().find(|(c, _)| *c == ch) {
            return env.input(name).map_or(0, |v| v.min(0xffff) as u16);
        }
        usize::try_from(ch)
            .ok()
            .and_then(|i| self.host.get(i))
            .copied()
            .unwrap_or(0)
    }

    /// A bus write of `value` to register `idx`.
    fn write_reg(&mut self, idx: usize, value: u32, env: &Env, fx: &mut Effects) {
        let old = self.regs.write(&self.registers, idx, value);
        if idx != self.layout.adm0 {
            return;
        }
        let l = &self.layout;
        let mut adm0 = self.regs.get(l.adm0);
        if value & l.sresb != 0 && self.sresb_stuck {
            adm0 &= !l.sresb;
            fx.fire(Fault::AdcSresbStuck);
        }
        let was_on = old & l.adce != 0;
        let on = adm0 & l.adce != 0;
        if !on {
            // Stopping also abandons a conversion that never finished.
            adm0 &= !l.adbsy;
        }
        self.regs.set(l.adm0, adm0);
        if on && !was_on {
            self.start(env, fx);
        }
    }

    fn not_converted(&mut self, why: &str) {
        *self
            .counters
            .not_converted
            .entry(why.to_string())
            .or_insert(0) += 1;
    }

    fn start(&mut self, env: &Env, fx: &mut Effects) {
        let l = self.layout.clone();
        let adm0 = self.regs.get(l.adm0);
        if adm0 & l.pwdwnb == 0 {
            self.not_converted("ADC powered down: ADM0.PWDWNB = 0");
            return;
        }
        if let Some(why) = env.unmet(CONVERSION) {
            let why = why.to_string();
            self.not_converted(&why);
            return;
        }
        if self.regs.get(l.adm1) & l.ms == 0 {
            self.not_converted("scan mode (ADM1.MS = 0) is not modelled");
            return;
        }
        if self.conversion_stuck {
            self.regs.set(l.adm0, adm0 | l.adbsy);
            fx.fire(Fault::AdcConversionStuck);
            self.not_converted("fault adc-conversion-stuck");
            return;
        }

        let channels = u32::try_from(l.adcr.len()).unwrap_or(0);
        let selected = self.regs.get(l.adm2) & channel_mask(channels);
        let adint = self.regs.get(l.adint);
        let mut adsts = self.regs.get(l.adsts);
        let mut irq = false;
        if selected == 0 {
            if adint & l.cseen != 0 {
                adsts |= l.csest;
                irq = true;
                self.counters.channel_select_errors += 1;
            } else {
                self.not_converted("no channel selected in ADM2");
            }
        } else {
            for ch in (0..channels).filter(|c| selected & (1 << c) != 0) {
                let code = u32::from(self.input(ch, env));
                if let Some(&reg) = l.adcr.get(ch as usize) {
                    let mask = self.registers.get(reg).map(|r| r.mask).unwrap_or(0xfff);
                    self.regs.set(reg, code & mask);
                }
                adsts |= 1 << ch;
                if let Some(n) = self.counters.conversions.get_mut(ch as usize) {
                    *n += 1;
                }
            }
            if adint & l.inten & selected != 0 {
                irq = true;
            }
        }
        self.regs.set(l.adsts, adsts);
        // One-shot select mode: done at once, ADCE auto-clears.
        self.regs.set(l.adm0, adm0 & !(l.adce | l.adbsy));
        if irq {
            fx.raise(IRQ_LINE);
            self.counters.interrupts += 1;
        }
    }

    /// Host-set results by channel (for reports).
    pub fn host_values(&self) -> BTreeMap<u32, u16> {
        (0u32..).zip(self.host).collect()
    }
}

impl Peripheral for Adc {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
        self.counters = AdcCounters {
            conversions: vec![0; self.layout.adcr.len()],
            ..AdcCounters::default()
        };
    }

    fn write(&mut self, reg: usize, value: u32, env: &Env, fx: &mut Effects) {
        self.write_reg(reg, value, env, fx);
    }

    fn counters(&self) -> Option<Value> {
        serde_json::to_value(&self.counters).ok()
    }

    /// The registers and the conversion counters (the summary of a restored plugin counts
    /// the boot's conversions too, as a cold boot's does).
    fn save(&self) -> Value {
        let mut state = self.regs.save();
        if let (Some(fields), Ok(counters)) =
            (state.as_object_mut(), serde_json::to_value(&self.counters))
        {
            fields.insert("counters".into(), counters);
        }
        state
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        let counters: AdcCounters = state
            .get("counters")
            .cloned()
            .ok_or_else(|| "no `counters`".to_string())
            .and_then(|v| serde_json::from_value(v).map_err(|e| format!("`counters`: {e}")))?;
        if counters.conversions.len() != self.layout.adcr.len() {
            return Err(format!(
                "conversions of {} channels saved, the device has {}",
                counters.conversions.len(),
                self.layout.adcr.len()
            ));
        }
        self.regs.load(state)?;
        self.counters = counters;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_soc;

    struct T {
        adc: Adc,
        blocked: Option<String>,
    }

    impl T {
        fn new(faults: Vec<Fault>) -> T {
            let soc = test_soc();
            let dev = soc.device("adc").expect("adc");
            let cfg = ModelConfig {
                adc: [100, 101, 102, 103, 104, 105, 106, 4095],
                faults,
                ..ModelConfig::default()
            };
            T {
                adc: Adc::new(dev, &cfg).expect("adc builds"),
                blocked: None,
            }
        }
        fn env(&self) -> Env<'static> {
            let unmet = self
                .blocked
                .iter()
                .map(|why| (CONVERSION.to_string(), why.clone()))
                .collect();
            Env::new(unmet, vec![("ch8".into(), 966)])
        }
        fn idx(&self, name: &str) -> usize {
            self.adc
                .registers()
                .iter()
                .position(|r| r.name == name)
                .unwrap_or(usize::MAX)
        }
        fn w(&mut self, name: &str, v: u32) -> Effects {
            let i = self.idx(name);
            let env = self.env();
            let mut fx = Effects::default();
            self.adc.write(i, v, &env, &mut fx);
            fx
        }
        fn r(&self, name: &str) -> u32 {
            self.adc.value(self.idx(name))
        }
        /// rzg2l_adc_conversion_setup + start for channel `ch`.
        fn convert(&mut self, ch: u32) -> Effects {
            self.w("ADM0", self.r("ADM0") | 0x4);
            self.w("ADM1", (self.r("ADM1") & !0x3011) | 0x4);
            self.w("ADM2", (self.r("ADM2") & !0x1ff) | (1 << ch));
            self.w(
                "ADINT",
                (self.r("ADINT") & !0x8000_0fff) | 0x1_0000 | (1 << ch),
            );
            self.w("ADM0", self.r("ADM0") | 1)
        }
    }

    #[test]
    fn sresb_latches_when_written_one() {
        let mut t = T::new(vec![]);
        let fx = t.w("ADM0", 0x8000);
        assert_eq!(t.r("ADM0") & 0x8000, 0x8000);
        assert_eq!(fx.faults().count(), 0);
    }

    #[test]
    fn sresb_stuck_fault_keeps_it_clear_and_fires() {
        let mut t = T::new(vec![Fault::AdcSresbStuck]);
        let fx = t.w("ADM0", 0x8004);
        assert_eq!(t.r("ADM0"), 0x4);
        assert!(fx.fired(Fault::AdcSresbStuck));
    }

    #[test]
    fn adbsy_is_not_writable() {
        let mut t = T::new(vec![]);
        t.w("ADM0", !1);
        assert_eq!(t.r("ADM0") & 0x2, 0);
    }

    #[test]
    fn select_mode_conversion_completes_at_once_with_irq() {
        let mut t = T::new(vec![]);
        for ch in 0..9u32 {
            let fx = t.convert(ch);
            assert!(fx.any_irq(), "ch{ch} raises the interrupt");
            let want = if ch == 8 { 966 } else { 100 + ch };
            let want = if ch == 7 { 4095 } else { want };
            assert_eq!(t.r(&adcr(ch)), want, "ch{ch} result");
            assert_eq!(t.r("ADSTS") & 0x1ff, 1 << ch, "ch{ch} INTST");
            assert_eq!(t.r("ADM0") & 0x3, 0, "ADCE and ADBSY auto-clear");
            // The ISR writes back what it read: W1C.
            let sts = t.r("ADSTS");
            t.w("ADSTS", sts);
            assert_eq!(t.r("ADSTS"), 0);
        }
        assert_eq!(t.adc.counters().conversions, vec![1; 9]);
        assert_eq!(t.adc.counters().interrupts, 9);
    }

    #[test]
    fn no_irq_without_inten() {
        let mut t = T::new(vec![]);
        t.w("ADM0", 0x4);
        t.w("ADM1", 0x4);
        t.w("ADM2", 0x2);
        t.w("ADINT", 0x1_0000);
        let fx = t.w("ADM0", 0x5);
        assert!(!fx.any_irq());
        assert_eq!(t.r("ADSTS"), 0x2);
        assert_eq!(t.r("ADCR1"), 101);
    }

    #[test]
    fn no_channel_selected_with_cseen_sets_csest_and_irq() {
        let mut t = T::new(vec![]);
        t.w("ADM0", 0x4);
        t.w("ADM1", 0x4);
        t.w("ADM2", 0);
        t.w("ADINT", 0x1_0000);
        let fx = t.w("ADM0", 0x5);
        assert!(fx.any_irq());
        assert_eq!(t.r("ADSTS"), 0x1_0000);
        assert_eq!(t.adc.counters().channel_select_errors, 1);
    }

    #[test]
    fn conversion_needs_pwdwnb_and_a_running_converter() {
        let mut t = T::new(vec![]);
        t.w("ADM1", 0x4);
        t.w("ADM2", 0x1);
        t.w("ADINT", 0x1_0001);
        let fx = t.w("ADM0", 0x1);
        assert!(!fx.any_irq());
        assert_eq!(t.r("ADSTS"), 0);
        assert_eq!(t.r("ADM0") & 1, 1, "ADCE stays set: nothing ran");
        t.w("ADM0", 0x0);
        t.blocked = Some("ADC adclk off: CLK_MON 0x728 bit 0 = 0".into());
        t.w("ADM0", 0x4);
        let fx = t.w("ADM0", 0x5);
        assert!(!fx.any_irq());
        assert_eq!(t.r("ADCR0"), 0);
        let nc = &t.adc.counters().not_converted;
        assert_eq!(nc.get("ADC powered down: ADM0.PWDWNB = 0"), Some(&1));
        assert_eq!(nc.get("ADC adclk off: CLK_MON 0x728 bit 0 = 0"), Some(&1));
    }

    #[test]
    fn conversion_stuck_fault_keeps_adce_until_cleared() {
        let mut t = T::new(vec![Fault::AdcConversionStuck]);
        let fx = t.convert(3);
        assert!(!fx.any_irq());
        assert!(fx.fired(Fault::AdcConversionStuck));
        assert_eq!(t.r("ADM0") & 0x3, 0x3, "ADCE and ADBSY stay set");
        assert_eq!(t.r("ADCR3"), 0);
        assert_eq!(t.r("ADSTS"), 0);
        // The driver's timeout path writes ADCE = 0 and polls ADBSY|ADCE.
        t.w("ADM0", t.r("ADM0") & !1);
        assert_eq!(t.r("ADM0") & 0x3, 0);
    }

    #[test]
    fn one_adm0_write_can_trip_both_adc_faults() {
        let mut t = T::new(vec![Fault::AdcSresbStuck, Fault::AdcConversionStuck]);
        t.w("ADM1", 0x4);
        t.w("ADM2", 0x1);
        t.w("ADINT", 0x1_0001);
        t.w("ADM0", 0x4);
        let fx = t.w("ADM0", 0x8005);
        assert!(fx.fired(Fault::AdcSresbStuck));
        assert!(fx.fired(Fault::AdcConversionStuck));
        assert_eq!(t.r("ADM0"), 0x7);
    }

    #[test]
    fn adcr_is_read_only() {
        let mut t = T::new(vec![]);
        t.w("ADCR0", 0x123);
        assert_eq!(t.r("ADCR0"), 0);
    }

    #[test]
    fn an_unwired_source_converts_to_zero_and_reset_clears_counters() {
        let mut t = T::new(vec![]);
        t.convert(1);
        let i = t.idx("ADM0");
        let mut fx = Effects::default();
        // Channel 8 with nothing on the input: 0, as the TSU with its output off.
        t.adc.write(i, t.r("ADM0") & !1, &Env::EMPTY, &mut fx);
        t.w("ADM2", 1 << 8);
        t.adc.write(i, t.r("ADM0") | 1, &Env::EMPTY, &mut fx);
        assert_eq!(t.r("ADCR8"), 0);
        assert_eq!(t.adc.counters().conversions[1], 1);
        t.adc.reset();
        assert_eq!(t.adc.counters().conversions, vec![0; 9]);
        assert_eq!(t.r("ADCR1"), 0);
    }

    #[test]
    fn inputs_must_name_channels() {
        let soc = test_soc();
        let mut dev = soc.device("adc").expect("adc").clone();
        dev.inputs = vec![("ch9".into(), 0)];
        let e = Adc::new(&dev, &ModelConfig::default()).expect_err("ch9 does not exist");
        assert_eq!(e.key, "inputs.ch9");
        dev.inputs.clear();
        dev.interrupts.clear();
        let e = Adc::new(&dev, &ModelConfig::default()).expect_err("no interrupt");
        assert_eq!(e.key, "interrupts");
    }

    #[test]
    fn adivc_keeps_only_divadc() {
        let mut t = T::new(vec![]);
        t.w("ADIVC", 0xffff_ffff);
        assert_eq!(t.r("ADIVC"), 0x1ff);
    }
}
