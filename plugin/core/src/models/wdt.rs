//! The RZ/G3S watchdog (`rzg2l_wdt`).
//!
//! A counter on OSCCLK: WDTSET.WDTTIME sets one overflow period of
//! `1024 * 1024 * (WDTTIME + 1)` OSCCLK cycles (rzg2l_wdt.c rzg2l_wdt_get_cycle_usec). With
//! WDTCNT.WDTEN set the counter runs; the first overflow sets WDTINT.INTDISP (and raises
//! `wdt`), the second one resets the machine ("2 consecutive overflow cycle needed to
//! trigger reset", rzg2l_wdt_init_timeout). A write of WDTINT.INTDISP (the ping) or of
//! WDTTIM restarts the count. The driver stops the watchdog by asserting the module reset
//! alone (rzg2l_wdt_stop): while the `out_of_reset` condition is unmet the module is in
//! reset (registers at their reset values, nothing counts); while `counting` (OSCCLK) is
//! unmet the count stands still.
//!
//! Time. The model is pure: it keeps its instants in bus time ([`Env::now_ns`]), which the
//! bus takes from host monotonic time. QEMU's TCG without `-icount` runs the guest's
//! clocks at about host speed, so a timeout the guest programs in its own seconds passes in
//! about as many host seconds. The bus time continues across a snapshot, so a deadline
//! survives a restore as the time that remained.
//!
//! The restart handler forces a parity error (PECR = 0, PEEN.FORCE = 1): the machine resets
//! at once. WDTTIM is not a live count (the driver never reads it): it reads 0.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::device::{BuildError, Effects, Env, Peripheral, SystemReset};
use crate::regs::{find, find_field, Missing, RegFile, Register};
use crate::soc::Device;

/// The registry name of this model.
pub const MODEL: &str = "wdt";

/// WDTEN (bit 0) runs the counter.
pub const WDTCNT: &str = "WDTCNT";
/// WDTTIME (bits 31:20): the overflow period in units of 2^20 OSCCLK cycles, minus one.
pub const WDTSET: &str = "WDTSET";
/// The lapsed-time counter; a write restarts the count.
pub const WDTTIM: &str = "WDTTIM";
/// INTDISP (bit 0): set by the first overflow; writing 1 clears it and restarts the count.
pub const WDTINT: &str = "WDTINT";
/// Bit 0 (PEEN_CLR) 0: a parity error resets the machine; 1: it raises `perrout`.
pub const PECR: &str = "PECR";
/// FORCE (bit 0) forces a parity error.
pub const PEEN: &str = "PEEN";

/// The declared condition that holds while the module reset is released.
pub const OUT_OF_RESET: &str = "out_of_reset";
/// The declared condition that holds while OSCCLK runs.
pub const COUNTING: &str = "counting";

/// Interrupt lines, in the order the device declares them (r9a08g045.dtsi).
const LINE_WDT: usize = 0;
const LINE_PERROUT: usize = 1;

/// OSCCLK cycles per WDTTIME step.
const CYCLES_PER_STEP: u64 = 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WdtLayout {
    wdtcnt: usize,
    wdten: u32,
    wdtset: usize,
    wdttime: u32,
    wdttim: usize,
    wdtint: usize,
    intdisp: u32,
    pecr: usize,
    peen_clr: u32,
    peen: usize,
    force: u32,
}

impl WdtLayout {
    pub fn resolve(registers: &[Register]) -> Result<WdtLayout, Missing> {
        let wdtcnt = find(registers, WDTCNT)?;
        let wdtset = find(registers, WDTSET)?;
        let wdtint = find(registers, WDTINT)?;
        let pecr = find(registers, PECR)?;
        let peen = find(registers, PEEN)?;
        Ok(WdtLayout {
            wdtcnt,
            wdten: find_field(registers, wdtcnt, "WDTEN")?,
            wdtset,
            wdttime: find_field(registers, wdtset, "WDTTIME")?,
            wdttim: find(registers, WDTTIM)?,
            wdtint,
            intdisp: find_field(registers, wdtint, "INTDISP")?,
            pecr,
            peen_clr: find_field(registers, pecr, "PEEN_CLR")?,
            peen,
            force: find_field(registers, peen, "FORCE")?,
        })
    }
}

/// What the counter is doing, in bus time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Count {
    /// WDTEN clear, or the module in reset.
    #[default]
    Stopped,
    /// Counting since `since` (the start or the last ping, moved on by any time frozen).
    Running { since: u64 },
    /// OSCCLK off: `elapsed` ns counted so far.
    Frozen { elapsed: u64 },
}

/// What a snapshot keeps besides the registers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    regs: Value,
    count: Count,
    /// When the count last restarted (for the reset event).
    armed_ns: u64,
    starts: u64,
    pings: u64,
    bites: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wdt {
    registers: Vec<Register>,
    regs: RegFile,
    layout: WdtLayout,
    /// OSCCLK (Hz).
    osc_hz: u64,
    count: Count,
    armed_ns: u64,
    starts: u64,
    pings: u64,
    bites: u64,
}

impl Wdt {
    /// The watchdog of device `dev`, its counter on an OSCCLK of `osc_hz`.
    pub fn new(dev: &Device, osc_hz: u32) -> Result<Wdt, BuildError> {
        let layout = WdtLayout::resolve(&dev.registers)
            .map_err(|e| BuildError::new("registers", format!("the {MODEL} model needs {e}")))?;
        for cond in [OUT_OF_RESET, COUNTING] {
            if !dev.conditions.iter().any(|(n, _)| n == cond) {
                return Err(BuildError::new(
                    "conditions",
                    format!("the {MODEL} model needs the condition `{cond}`"),
                ));
            }
        }
        if dev.interrupts.len() < 2 {
            return Err(BuildError::new(
                "interrupts",
                format!("the {MODEL} model needs two lines: wdt, perrout"),
            ));
        }
        if osc_hz == 0 {
            return Err(BuildError::new("extal", "OSCCLK of 0 Hz"));
        }
        let registers = dev.registers.clone();
        let regs = RegFile::new(&registers);
        Ok(Wdt {
            registers,
            regs,
            layout,
            osc_hz: u64::from(osc_hz),
            count: Count::Stopped,
            armed_ns: 0,
            starts: 0,
            pings: 0,
            bites: 0,
        })
    }

    /// One overflow period (ns) for the programmed WDTTIME.
    pub fn period_ns(&self) -> u64 {
        let m = self.layout.wdttime;
        let wdttime = (self.regs.get(self.layout.wdtset) & m) >> m.trailing_zeros().min(31);
        let cycles = CYCLES_PER_STEP * (u64::from(wdttime) + 1);
        // Exact for every 12-bit WDTTIME: cycles < 2^32, times 1e9 < 2^62.
        cycles * 1_000_000_000 / self.osc_hz
    }

    /// From a start or a ping to the reset: two periods.
    pub fn timeout_ns(&self) -> u64 {
        2 * self.period_ns()
    }

    pub fn count(&self) -> Count {
        self.count
    }

    fn intdisp(&self) -> bool {
        self.regs.get(self.layout.wdtint) & self.layout.intdisp != 0
    }

    fn enabled(&self) -> bool {
        self.regs.get(self.layout.wdtcnt) & self.layout.wdten != 0
    }

    /// Restarts the count at `now` (when enabled and OSCCLK runs).
    fn restart(&mut self, env: &Env) {
        let now = env.now_ns();
        self.armed_ns = now;
        self.count = if !self.enabled() {
            Count::Stopped
        } else if env.unmet(COUNTING).is_some() {
            Count::Frozen { elapsed: 0 }
        } else {
            Count::Running { since: now }
        };
    }

    /// Brings the count up to `env`: the module reset, OSCCLK stopping or starting, the
    /// overflows that fell due. Returns true when a register changed.
    fn catch_up(&mut self, env: &Env, fx: &mut Effects) -> bool {
        let now = env.now_ns();
        if env.unmet(OUT_OF_RESET).is_some() {
            if self.intdisp() {
                fx.lower(LINE_WDT);
            }
            let changed = self.regs.values() != RegFile::new(&self.registers).values();
            self.regs = RegFile::new(&self.registers);
            self.count = Count::Stopped;
            return changed;
        }
        let clock_on = env.unmet(COUNTING).is_none();
        self.count = match self.count {
            Count::Running { since } if !clock_on => Count::Frozen {
                elapsed: now.saturating_sub(since),
            },
            Count::Frozen { elapsed } if clock_on => Count::Running {
                since: now.saturating_sub(elapsed),
            },
            c => c,
        };
        let Count::Running { since } = self.count else {
            return false;
        };
        let elapsed = now.saturating_sub(since);
        let period = self.period_ns();
        let mut changed = false;
        if elapsed >= period && self.regs.get(self.layout.wdtint) & self.layout.intdisp == 0 {
            let v = self.regs.get(self.layout.wdtint) | self.layout.intdisp;
            self.regs.set(self.layout.wdtint, v);
            fx.raise(LINE_WDT);
            changed = true;
        }
        if elapsed >= 2 * period {
            self.bite(
                fx,
                format!(
                    "{WDTTIM} overflowed twice ({} ns) without a {WDTINT} ping",
                    2 * period
                ),
                since.saturating_add(2 * period),
            );
        }
        changed
    }

    fn bite(&mut self, fx: &mut Effects, reason: String, due_ns: u64) {
        self.bites += 1;
        self.count = Count::Stopped;
        fx.system_reset = Some(SystemReset {
            reason,
            armed_ns: self.armed_ns,
            timeout_ns: self.timeout_ns(),
            due_ns,
        });
    }
}

impl Peripheral for Wdt {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
        self.count = Count::Stopped;
        self.armed_ns = 0;
        self.starts = 0;
        self.pings = 0;
        self.bites = 0;
    }

    fn write(&mut self, reg: usize, value: u32, env: &Env, fx: &mut Effects) {
        self.catch_up(env, fx);
        if fx.system_reset.is_some() {
            return;
        }
        let l = self.layout.clone();
        let was_enabled = self.enabled();
        if reg == l.wdtint {
            // w1c: INTDISP written 1 clears it (and withdraws `wdt`) and is the ping.
            let was_pending = self.intdisp();
            self.regs.write(&self.registers, reg, value);
            if value & l.intdisp != 0 {
                if was_pending {
                    fx.lower(LINE_WDT);
                }
                self.pings += 1;
                if self.enabled() {
                    self.restart(env);
                }
            }
            return;
        }
        self.regs.write(&self.registers, reg, value);
        if reg == l.wdtcnt {
            if self.enabled() && !was_enabled {
                self.starts += 1;
                self.restart(env);
            } else if !self.enabled() {
                self.count = Count::Stopped;
            }
        } else if reg == l.wdttim {
            if self.enabled() {
                self.restart(env);
            }
        } else if reg == l.peen && value & l.force != 0 {
            if self.regs.get(l.pecr) & l.peen_clr == 0 {
                self.armed_ns = env.now_ns();
                self.bite(
                    fx,
                    format!("{PEEN}.FORCE: a forced parity error with {PECR} selecting the reset"),
                    env.now_ns(),
                );
            } else {
                fx.raise(LINE_PERROUT);
            }
        }
    }

    fn keeps_time(&self) -> bool {
        true
    }

    /// The reset only. The first overflow (INTDISP, the `wdt` line) is no deadline: the
    /// driver neither reads WDTINT nor requests the line, so it is brought up to date at the
    /// next model call (a write, a CPG change, the reset's tick) rather than on time.
    fn deadline(&self) -> Option<u64> {
        let Count::Running { since } = self.count else {
            return None;
        };
        Some(since.saturating_add(self.timeout_ns()))
    }

    fn tick(&mut self, env: &Env, fx: &mut Effects) -> bool {
        self.catch_up(env, fx)
    }

    fn counters(&self) -> Option<Value> {
        Some(json!({ "starts": self.starts, "pings": self.pings, "bites": self.bites }))
    }

    fn save(&self) -> Value {
        let saved = Saved {
            regs: self.regs.save(),
            count: self.count,
            armed_ns: self.armed_ns,
            starts: self.starts,
            pings: self.pings,
            bites: self.bites,
        };
        serde_json::to_value(saved).unwrap_or(Value::Null)
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        let saved: Saved =
            serde_json::from_value(state.clone()).map_err(|e| format!("wdt state: {e}"))?;
        let mut regs = self.regs.clone();
        regs.load(&saved.regs)?;
        self.regs = regs;
        self.count = saved.count;
        self.armed_ns = saved.armed_ns;
        self.starts = saved.starts;
        self.pings = saved.pings;
        self.bites = saved.bites;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_soc;

    const S: u64 = 1_000_000_000;

    fn wdt() -> Wdt {
        let soc = test_soc();
        let dev = soc.device("wdt0").expect("wdt0");
        Wdt::new(dev, soc.extal().frequency).expect("wdt builds")
    }

    fn idx(w: &Wdt, name: &str) -> usize {
        find(&w.registers, name).expect("register")
    }

    /// Reset released, OSCCLK running, at `now`.
    fn on(now: u64) -> Env<'static> {
        Env::new(vec![], vec![]).at(now)
    }

    fn in_reset(now: u64) -> Env<'static> {
        Env::new(
            vec![(OUT_OF_RESET.into(), "WDT0 reset held".into())],
            vec![],
        )
        .at(now)
    }

    fn clock_off(now: u64) -> Env<'static> {
        Env::new(vec![(COUNTING.into(), "wdt0_clk off".into())], vec![]).at(now)
    }

    impl Wdt {
        fn w(&mut self, name: &str, value: u32, env: &Env) -> Effects {
            let mut fx = Effects::default();
            let reg = idx(self, name);
            self.write(reg, value, env, &mut fx);
            fx
        }
        fn r(&self, name: &str) -> u32 {
            self.value(idx(self, name))
        }
        fn t(&mut self, env: &Env) -> Effects {
            let mut fx = Effects::default();
            self.tick(env, &mut fx);
            fx
        }
    }

    /// What rzg2l_wdt_start programs for `timeout` s with a 24 MHz OSCCLK:
    /// time_out = timeout * 500000 / cycle_usec(0), cycle_usec(0) = 2^20 * 1e6 / 24e6.
    fn wdttime_for(timeout: u64) -> u32 {
        let cycle_us = 1024 * 1024 * 1_000_000 / 24_000_000;
        (timeout * 500_000 / cycle_us) as u32
    }

    /// rzg2l_wdt_start at `now`: ping, WDTSET, WDTTIM = 0, WDTEN.
    fn start(w: &mut Wdt, timeout: u64, now: u64) {
        w.w(WDTINT, 1, &on(now));
        w.w(WDTSET, wdttime_for(timeout) << 20, &on(now));
        w.w(WDTTIM, 0, &on(now));
        w.w(WDTCNT, 1, &on(now));
    }

    #[test]
    fn reset_values_are_zero_and_nothing_counts() {
        let w = wdt();
        for r in [WDTCNT, WDTSET, WDTTIM, WDTINT, PECR, PEEN] {
            assert_eq!(w.r(r), 0, "{r}");
        }
        assert_eq!(w.count(), Count::Stopped);
        assert_eq!(w.deadline(), None);
        assert!(w.keeps_time());
    }

    #[test]
    fn wdtcnt_keeps_wdten_only_and_starts_the_count() {
        let mut w = wdt();
        w.w(WDTCNT, 0xffff_ffff, &on(5));
        assert_eq!(w.r(WDTCNT), 1);
        assert_eq!(w.count(), Count::Running { since: 5 });
        w.w(WDTCNT, 0, &on(9));
        assert_eq!(w.count(), Count::Stopped);
        assert_eq!(w.deadline(), None);
    }

    #[test]
    fn wdtset_keeps_bits_31_20_and_sets_the_period() {
        let mut w = wdt();
        w.w(WDTSET, 0xffff_ffff, &on(0));
        assert_eq!(w.r(WDTSET), 0xfff0_0000);
        // WDTTIME 0xfff: 4096 * 2^20 cycles at 24 MHz = 178.956970666 s.
        assert_eq!(
            w.period_ns(),
            4096 * 1024 * 1024 * 1_000_000_000 / 24_000_000
        );
        w.w(WDTSET, 0, &on(0));
        // The smallest period: 2^20 cycles = 43.69 ms.
        assert_eq!(w.period_ns(), 43_690_666);
    }

    #[test]
    fn the_driver_timeouts_are_within_a_few_percent() {
        for timeout in [1u64, 2, 3, 5, 10, 60] {
            let mut w = wdt();
            start(&mut w, timeout, 0);
            let got = w.timeout_ns() as f64 / (timeout * S) as f64;
            assert!((0.95..1.05).contains(&got), "{timeout} s: ratio {got}");
        }
    }

    #[test]
    fn wdttim_reads_zero_and_its_write_restarts_the_count() {
        let mut w = wdt();
        start(&mut w, 3, 0);
        w.w(WDTTIM, 0x1234, &on(S));
        assert_eq!(w.r(WDTTIM), 0);
        assert_eq!(w.count(), Count::Running { since: S });
    }

    #[test]
    fn first_overflow_sets_intdisp_and_raises_wdt_second_resets() {
        let mut w = wdt();
        start(&mut w, 3, 0);
        let p = w.period_ns();
        assert_eq!(w.deadline(), Some(2 * p), "the reset is the deadline");
        assert!(w.t(&on(p - 1)).is_empty());
        let fx = w.t(&on(p));
        assert_eq!(fx.raised().collect::<Vec<_>>(), vec![LINE_WDT]);
        assert_eq!(w.r(WDTINT), 1);
        assert_eq!(w.deadline(), Some(2 * p));
        assert!(w.t(&on(2 * p - 1)).system_reset.is_none());
        let fx = w.t(&on(2 * p + 7));
        let reset = fx.system_reset.expect("bites");
        assert_eq!(reset.armed_ns, 0);
        assert_eq!(reset.timeout_ns, 2 * p);
        assert_eq!(reset.due_ns, 2 * p);
        assert!(
            reset.reason.contains("without a WDTINT ping"),
            "{}",
            reset.reason
        );
        assert_eq!(w.count(), Count::Stopped, "bites once");
        assert!(w.t(&on(5 * p)).system_reset.is_none());
    }

    #[test]
    fn a_late_check_still_bites_once() {
        let mut w = wdt();
        start(&mut w, 2, 0);
        let fx = w.t(&on(100 * S));
        assert!(fx.system_reset.is_some());
        assert_eq!(w.r(WDTINT), 1);
    }

    #[test]
    fn wdtint_write_is_the_ping() {
        let mut w = wdt();
        start(&mut w, 3, 0);
        let p = w.period_ns();
        w.t(&on(p + 1));
        assert_eq!(w.r(WDTINT), 1);
        let fx = w.w(WDTINT, 1, &on(p + 10));
        assert_eq!(w.r(WDTINT), 0, "w1c");
        assert_eq!(fx.lowered().collect::<Vec<_>>(), vec![LINE_WDT]);
        assert_eq!(w.count(), Count::Running { since: p + 10 });
        // Pinged every period for a long time: no reset.
        let mut now = p + 10;
        for _ in 0..20 {
            now += p - 1;
            assert!(w.w(WDTINT, 1, &on(now)).system_reset.is_none());
        }
        assert_eq!(w.counters().expect("counters")["pings"], 22);
        // Writing 0 is no ping.
        w.w(WDTINT, 0, &on(now + 1));
        assert_eq!(w.count(), Count::Running { since: now });
    }

    #[test]
    fn a_ping_after_the_deadline_comes_too_late() {
        let mut w = wdt();
        start(&mut w, 2, 0);
        let fx = w.w(WDTINT, 1, &on(3 * S));
        assert!(fx.system_reset.is_some(), "the write sees the reset first");
    }

    #[test]
    fn module_reset_stops_everything() {
        // rzg2l_wdt_stop: reset_control_assert only.
        let mut w = wdt();
        start(&mut w, 2, 0);
        w.w(PECR, 1, &on(0));
        let mut fx = Effects::default();
        assert!(w.tick(&in_reset(S), &mut fx), "registers changed");
        assert_eq!(w.r(WDTCNT), 0);
        assert_eq!(w.r(WDTSET), 0);
        assert_eq!(w.r(PECR), 0);
        assert_eq!(w.deadline(), None);
        assert!(w.t(&on(100 * S)).is_empty(), "no bite after the stop");
    }

    #[test]
    fn osc_clock_off_freezes_the_count() {
        let mut w = wdt();
        start(&mut w, 2, 0);
        let t = w.timeout_ns();
        w.t(&clock_off(S / 2));
        assert_eq!(w.count(), Count::Frozen { elapsed: S / 2 });
        assert_eq!(w.deadline(), None);
        assert!(w.t(&clock_off(100 * S)).system_reset.is_none());
        w.t(&on(100 * S));
        assert_eq!(
            w.count(),
            Count::Running {
                since: 100 * S - S / 2
            }
        );
        let reset = w.t(&on(100 * S - S / 2 + t)).system_reset;
        assert!(reset.is_some());
    }

    #[test]
    fn pecr_keeps_bit_0_and_peen_force_resets_at_once() {
        let mut w = wdt();
        w.w(PECR, 0xffff_ffff, &on(0));
        assert_eq!(w.r(PECR), 1);
        let fx = w.w(PEEN, 1, &on(4));
        assert!(fx.system_reset.is_none());
        assert_eq!(fx.raised().collect::<Vec<_>>(), vec![LINE_PERROUT]);
        // rzg2l_wdt_restart: PECR = 0, PEEN = FORCE.
        w.w(PECR, 0, &on(5));
        assert_eq!(w.r(PEEN), 1);
        let reset = w.w(PEEN, 1, &on(6)).system_reset.expect("forced reset");
        assert_eq!(reset.due_ns, 6);
        assert!(reset.reason.contains("PEEN.FORCE"), "{}", reset.reason);
    }

    #[test]
    fn state_survives_save_and_load() {
        let mut w = wdt();
        start(&mut w, 3, 10);
        w.w(WDTINT, 1, &on(20));
        let saved = w.save();
        let mut restored = wdt();
        restored.load(&saved).expect("loads");
        assert_eq!(restored, w);
        assert_eq!(restored.deadline(), w.deadline());
        assert!(restored.load(&json!({"regs": 1})).is_err());
        assert_eq!(restored, w, "unchanged after a failed load");
    }

    #[test]
    fn power_on_reset_forgets_the_count() {
        let mut w = wdt();
        start(&mut w, 3, 0);
        w.reset();
        assert_eq!(w, wdt());
    }
}
