//! CPG (clock pulse generator) of the RZ/G2L family, as `rzg2l-cpg` drives it on the G3S.
//!
//! Registers come from the YAML (CLK_ON/RST/MSTOP are `we16`, dividers `we16-field`,
//! PLL and status registers plain); the behaviour here is what the driver's polls need
//! to see at once, because its atomic polls count iterations, not time:
//! - CLK_MON (CLK_ON + mon_offset) mirrors CLK_ON (rzg2l-cpg.c: enable polls CLK_MON
//!   about 10 000 times with no delay).
//! - RST_MON (RST + mon_offset) is NOT RST over the declared reset bits (1 = in reset;
//!   assert/deassert poll it about 21 times).
//!
//! Fault `cpg-clkmon-stuck-adc`: the CLK_MON bits of the ADC's clocks never set.

use crate::config::{Fault, ModelConfig};
use serde_json::Value;

use crate::device::{BuildError, Effects, Env, Peripheral};
use crate::regs::{RegFile, Register};
use crate::soc::{Clock, Device, Soc};

/// The registry name of this model.
pub const MODEL: &str = "cpg";

/// A CLK_ON register and the CLK_MON register that reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ClockPair {
    on: usize,
    mon: usize,
}

/// A RST register, its RST_MON register and the bits that have a reset behind them.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ResetPair {
    rst: usize,
    mon: usize,
    bits: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cpg {
    registers: Vec<Register>,
    regs: RegFile,
    clock_pairs: Vec<ClockPair>,
    reset_pairs: Vec<ResetPair>,
    /// (CLK_ON register, bits) of the ADC's clocks, and (CLK_MON register, bits) that the
    /// armed fault keeps at 0.
    stuck_on: Vec<(usize, u32)>,
    stuck_mon: Vec<(usize, u32)>,
}

impl Cpg {
    /// The CPG `dev` of `soc` in its reset state (clocks off, MSTOP 0, resets released).
    /// `dev` must be the SoC's clock controller: the clocks and resets point into it.
    pub fn new(dev: &Device, soc: &Soc, cfg: &ModelConfig) -> Result<Cpg, BuildError> {
        let is_controller = soc
            .clock_controller_device()
            .is_some_and(|c| c.name == dev.name);
        if !is_controller {
            return Err(BuildError::new(
                "model",
                format!(
                    "the {MODEL} model drives the clock and reset bits: the device must be the top-level clock_controller"
                ),
            ));
        }
        let registers = dev.registers.clone();
        let regs = RegFile::new(&registers);

        let mut clock_pairs: Vec<ClockPair> = Vec::new();
        for c in soc.clocks() {
            let pair = ClockPair {
                on: c.on.reg,
                mon: c.mon.reg,
            };
            if !clock_pairs.contains(&pair) {
                clock_pairs.push(pair);
            }
        }
        let mut reset_pairs: Vec<ResetPair> = Vec::new();
        for r in soc.resets() {
            match reset_pairs.iter_mut().find(|p| p.rst == r.rst.reg) {
                Some(p) => p.bits |= r.rst.mask(),
                None => reset_pairs.push(ResetPair {
                    rst: r.rst.reg,
                    mon: r.mon.reg,
                    bits: r.rst.mask(),
                }),
            }
        }

        let mut stuck_on = Vec::new();
        let mut stuck_mon = Vec::new();
        if cfg.armed(Fault::CpgClkmonStuckAdc) {
            for c in adc_clocks(soc) {
                stuck_on.push((c.on.reg, c.on.mask()));
                stuck_mon.push((c.mon.reg, c.mon.mask()));
            }
        }

        let mut cpg = Cpg {
            registers,
            regs,
            clock_pairs,
            reset_pairs,
            stuck_on,
            stuck_mon,
        };
        cpg.update_all_mons();
        Ok(cpg)
    }

    fn update_all_mons(&mut self) {
        for i in 0..self.clock_pairs.len() {
            self.update_clock_mon(i);
        }
        for i in 0..self.reset_pairs.len() {
            self.update_reset_mon(i);
        }
    }

    fn update_clock_mon(&mut self, pair: usize) {
        let Some(p) = self.clock_pairs.get(pair) else {
            return;
        };
        let mut mon = self.regs.get(p.on);
        for &(reg, bits) in &self.stuck_mon {
            if reg == p.mon {
                mon &= !bits;
            }
        }
        self.regs.set(p.mon, mon);
    }

    fn update_reset_mon(&mut self, pair: usize) {
        let Some(p) = self.reset_pairs.get(pair) else {
            return;
        };
        let held = !self.regs.get(p.rst) & p.bits;
        self.regs.set(p.mon, held);
    }

    /// A bus write of `value` to register `idx`.
    fn write_reg(&mut self, idx: usize, value: u32, fx: &mut Effects) {
        self.regs.write(&self.registers, idx, value);
        for i in 0..self.clock_pairs.len() {
            if self.clock_pairs.get(i).is_some_and(|p| p.on == idx) {
                self.update_clock_mon(i);
            }
        }
        for i in 0..self.reset_pairs.len() {
            if self.reset_pairs.get(i).is_some_and(|p| p.rst == idx) {
                self.update_reset_mon(i);
            }
        }
        // "Turns an ADC clock on": the write enables and sets one of its CLK_ON bits.
        let turned_on = self
            .stuck_on
            .iter()
            .any(|&(reg, bits)| reg == idx && value & bits != 0 && (value >> 16) & bits != 0);
        if turned_on {
            fx.fire(Fault::CpgClkmonStuckAdc);
        }
    }

    pub fn registers(&self) -> &[Register] {
        &self.registers
    }
}

impl Peripheral for Cpg {
    #[inline]
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    #[inline]
    fn value(&self, reg: usize) -> u32 {
        self.regs.get(reg)
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
        self.update_all_mons();
    }

    fn write(&mut self, reg: usize, value: u32, _env: &Env, fx: &mut Effects) {
        self.write_reg(reg, value, fx);
    }

    /// CLK_MON and RST_MON are registers too: the values are the whole state.
    fn save(&self) -> Value {
        self.regs.save()
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        self.regs.load(state)
    }
}

/// The clocks of the first device with the `adc` model, from its DT node and its gate and
/// conditions (what `cpg-clkmon-stuck-adc` freezes).
fn adc_clocks(soc: &Soc) -> Vec<&Clock> {
    let Some(adc) = soc.devices_with_model(super::adc::MODEL).next() else {
        return Vec::new();
    };
    let mut out: Vec<&Clock> = Vec::new();
    let from_dt = adc
        .dt
        .iter()
        .flat_map(|dt| dt.clocks.iter())
        .filter_map(|c| match c {
            crate::soc::DtClock::Module(i) => soc.clocks().get(*i),
            _ => None,
        });
    let from_rules = adc
        .gate
        .iter()
        .map(|g| &g.rule)
        .chain(adc.conditions.iter().map(|(_, r)| r))
        .flat_map(|r| r.clocks.iter())
        .filter_map(|&i| soc.clocks().get(i));
    for c in from_dt.chain(from_rules) {
        if !out.iter().any(|o| o.name == c.name) {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_soc;

    use crate::gate::{clock_running, mstop_bits, reset_held};

    fn cpg_with(faults: Vec<Fault>) -> (Soc, Cpg) {
        let soc = test_soc();
        let cfg = ModelConfig {
            faults,
            ..ModelConfig::default()
        };
        let dev = soc.device("cpg").expect("cpg");
        let cpg = Cpg::new(dev, &soc, &cfg).expect("cpg builds");
        (soc, cpg)
    }

    impl Cpg {
        fn w(&mut self, idx: usize, value: u32) -> Effects {
            let mut fx = Effects::default();
            self.write(idx, value, &Env::EMPTY, &mut fx);
            fx
        }
    }

    fn idx(cpg: &Cpg, name: &str) -> usize {
        cpg.registers()
            .iter()
            .position(|r| r.name == name)
            .unwrap_or(usize::MAX)
    }

    fn read(cpg: &Cpg, name: &str) -> u32 {
        cpg.value(idx(cpg, name))
    }

    #[test]
    fn clk_on_write_enable_keeps_unenabled_bits() {
        let (_, mut cpg) = cpg_with(vec![]);
        let on = idx(&cpg, "CLK_ON_ADC");
        cpg.w(on, 0x0001_0001);
        cpg.w(on, 0x0002_0002);
        assert_eq!(read(&cpg, "CLK_ON_ADC"), 0x3);
        cpg.w(on, 0x0001_0000);
        assert_eq!(read(&cpg, "CLK_ON_ADC"), 0x2);
        // The low half without enables changes nothing.
        cpg.w(on, 0x0000_0000);
        assert_eq!(read(&cpg, "CLK_ON_ADC"), 0x2);
    }

    #[test]
    fn clk_mon_mirrors_clk_on_at_once() {
        let (_, mut cpg) = cpg_with(vec![]);
        assert_eq!(read(&cpg, "CLK_MON_ADC"), 0);
        cpg.w(idx(&cpg, "CLK_ON_ADC"), 0x0002_0002);
        assert_eq!(read(&cpg, "CLK_MON_ADC"), 0x2);
        cpg.w(idx(&cpg, "CLK_ON_GIC"), 0x0001_0001);
        assert_eq!(read(&cpg, "CLK_MON_GIC"), 0x1);
    }

    #[test]
    fn rst_mon_is_not_rst_at_once() {
        let (_, mut cpg) = cpg_with(vec![]);
        assert_eq!(read(&cpg, "RST_ADC"), 0x3);
        assert_eq!(read(&cpg, "RST_MON_ADC"), 0);
        // Assert PRESETN: write BIT(0) << 16 without the value bit.
        cpg.w(idx(&cpg, "RST_ADC"), 0x0001_0000);
        assert_eq!(read(&cpg, "RST_ADC"), 0x2);
        assert_eq!(read(&cpg, "RST_MON_ADC"), 0x1);
        cpg.w(idx(&cpg, "RST_ADC"), 0x0001_0001);
        assert_eq!(read(&cpg, "RST_MON_ADC"), 0);
    }

    #[test]
    fn resets_start_released_and_clocks_off_and_mstop_zero() {
        let (soc, cpg) = cpg_with(vec![]);
        for r in soc.resets() {
            assert!(!reset_held(cpg.values(), r), "{} held at reset", r.name);
        }
        for c in soc.clocks() {
            assert!(
                !clock_running(cpg.values(), c),
                "{} running at reset",
                c.name
            );
            assert_eq!(
                mstop_bits(cpg.values(), c),
                0,
                "{} in module stop at reset",
                c.name
            );
        }
    }

    #[test]
    fn mstop_write_enable_sets_and_clears() {
        let (_, mut cpg) = cpg_with(vec![]);
        let m = idx(&cpg, "BUS_MCPU2_MSTOP");
        cpg.w(m, 0x4000_4000);
        assert_eq!(read(&cpg, "BUS_MCPU2_MSTOP"), 0x4000);
        cpg.w(m, 0x8000_8000);
        assert_eq!(read(&cpg, "BUS_MCPU2_MSTOP"), 0xc000);
        cpg.w(m, 0x4000_0000);
        assert_eq!(read(&cpg, "BUS_MCPU2_MSTOP"), 0x8000);
    }

    #[test]
    fn pll1_reads_as_1_1_ghz_and_dividers_as_documented() {
        let (_, cpg) = cpg_with(vec![]);
        assert_eq!(
            read(&cpg, "PLL1_SETTING") & 1,
            1,
            "SEL_PLL selects the 1.1 GHz default"
        );
        // CLK1 encodes the same rate: EXTAL * (4096*ni + nf) / 4096 / (m*p).
        let clk1 = u64::from(read(&cpg, "PLL1_CLK1"));
        let p = 1u64 << ((clk1 >> 26) & 7);
        let m = ((clk1 >> 22) & 0xf) + 1;
        let ni = ((clk1 >> 13) & 0x1ff) + 1;
        let nf = (clk1 >> 1) & 0xfff;
        let rate = (24_000_000 * (4096 * ni + nf) / 4096 + (m * p) / 2) / (m * p);
        assert_eq!(rate, 1_100_000_000);
        for name in ["PL1_DDIV", "PL2_DDIV", "PL3A_DDIV", "SDHI_DDIV"] {
            assert_eq!(read(&cpg, name), 0, "{name}: /1");
        }
        assert_eq!(read(&cpg, "PLL_DSEL"), 0x40, "S0 from PLL4");
        for shift in [0, 4, 8] {
            assert!([0, 2, 3].contains(&((read(&cpg, "SDHI_DSEL") >> shift) & 3)));
        }
    }

    #[test]
    fn divider_field_updates_with_one_enable_bit_and_status_reads_zero() {
        let (_, mut cpg) = cpg_with(vec![]);
        // rzg3s_div_clk_set_rate: (BIT(16) | val) << shift, DIVPL2B at [6:4].
        cpg.w(idx(&cpg, "PL2_DDIV"), (0x1_0000 | 2) << 4);
        assert_eq!(read(&cpg, "PL2_DDIV"), 0x20);
        cpg.w(idx(&cpg, "PL3A_DDIV"), (0x1_0000 | 1) << 8);
        assert_eq!(read(&cpg, "PL3A_DDIV"), 0x100);
        cpg.w(idx(&cpg, "CLKDIVSTATUS"), 0xffff_ffff);
        assert_eq!(read(&cpg, "CLKDIVSTATUS"), 0);
        assert_eq!(read(&cpg, "CLKSELSTATUS"), 0);
    }

    #[test]
    fn clkmon_stuck_fault_keeps_adc_mon_bits_clear_and_fires_on_enable() {
        let (soc, mut cpg) = cpg_with(vec![Fault::CpgClkmonStuckAdc]);
        let fx = cpg.w(idx(&cpg, "CLK_ON_ADC"), 0x0001_0000);
        assert_eq!(
            fx.faults().count(),
            0,
            "turning a clock off is not turning it on"
        );
        let fx = cpg.w(idx(&cpg, "CLK_ON_ADC"), 0x0002_0002);
        assert!(fx.fired(Fault::CpgClkmonStuckAdc));
        assert_eq!(read(&cpg, "CLK_ON_ADC"), 0x2);
        assert_eq!(read(&cpg, "CLK_MON_ADC"), 0);
        let pclk = soc.clock("adc_pclk").expect("adc_pclk");
        assert!(!clock_running(cpg.values(), pclk));
        // Other clocks are unaffected.
        cpg.w(idx(&cpg, "CLK_ON_TSU"), 0x0001_0001);
        assert_eq!(read(&cpg, "CLK_MON_TSU"), 1);
    }

    #[test]
    fn reset_returns_to_power_on() {
        let (_, mut cpg) = cpg_with(vec![]);
        let fresh = cpg.values().to_vec();
        cpg.w(idx(&cpg, "CLK_ON_ADC"), 0x0003_0003);
        cpg.w(idx(&cpg, "RST_ADC"), 0x0001_0000);
        assert_ne!(cpg.values(), fresh.as_slice());
        cpg.reset();
        assert_eq!(cpg.values(), fresh.as_slice());
    }

    #[test]
    fn only_the_clock_controller_can_be_a_cpg() {
        let soc = test_soc();
        let adc = soc.device("adc").expect("adc");
        let e = Cpg::new(adc, &soc, &ModelConfig::default()).expect_err("adc is no CPG");
        assert_eq!(e.key, "model");
    }
}
