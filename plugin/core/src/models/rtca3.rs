//! The RZ/G3S RTC (`rtc-renesas-rtca3`).
//!
//! A calendar counter in BCD byte registers (seconds, minutes, hours, day of week, day,
//! month, two-digit year) that runs while RCR2.START is set. Each whole second is a carry:
//! the counters advance, RSR.CF is set (rtca3_read_time clears it, reads the counters and
//! retries while it came back set) and `carry` is raised under RCR1.CIE. At every carry
//! the alarm registers whose ENB bit (bit 7) is set are compared with the counters; when
//! all of them match, RSR.AF is set and `alarm` raised under RCR1.AIE. With RCR1.PIE set,
//! RSR.PF is set and `period` raised at the RCR1.PES rate (the alarm setup waits for two
//! of them). RSR flags are cleared by writing 0 to them. RCR2.RESET puts the counters and
//! the alarm registers back to their power-on values and reads back 0 at once.
//!
//! Time. As the watchdog: the counter keeps its instants in bus time ([`Env::now_ns`],
//! host monotonic, continuous across a snapshot); [`Peripheral::deadline`] is the next
//! carry (or periodic interrupt), so the bus ticks the model while the guest idles and
//! an alarm fires at its second.
//!
//! Left out: the 64 Hz counter R64CNT (reads 0), the 12-hour mode (RCR2.HR24 clear counts
//! as 24-hour), the binary count mode (RCR2.CNTMD), the time error adjustment (RADJ and
//! RCR2.AADJE/ADJP are stored; the host clock needs none) and the 3-read settling the
//! manual asks for after a write (values read back at once).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{Fault, ModelConfig};
use crate::device::{BuildError, Effects, Env, Peripheral};
use crate::regs::{find, find_field, Missing, RegFile, Register, SubReg as Loc};
use crate::soc::Device;

/// The registry name of this model.
pub const MODEL: &str = "rtca3";

/// R64CNT (0x00, the 64 Hz counter, not modelled) and RSECCNT (0x02, BCD seconds).
pub const R64CNT_RSECCNT: &str = "R64CNT_RSECCNT";
/// RMINCNT (0x04, BCD minutes) and RHRCNT (0x06, BCD hours).
pub const RMINCNT_RHRCNT: &str = "RMINCNT_RHRCNT";
/// RWKCNT (0x08, day of week 0-6) and RDAYCNT (0x0a, BCD day of month).
pub const RWKCNT_RDAYCNT: &str = "RWKCNT_RDAYCNT";
/// RMONCNT (0x0c, BCD month) and RYRCNT (0x0e, 16 bits, BCD year in bits 7:0).
pub const RMONCNT_RYRCNT: &str = "RMONCNT_RYRCNT";
/// RSECAR (0x10) and RMINAR (0x12): alarm seconds and minutes, bit 7 ENB.
pub const RSECAR_RMINAR: &str = "RSECAR_RMINAR";
/// RHRAR (0x14) and RWKAR (0x16): alarm hours and day of week, bit 7 ENB.
pub const RHRAR_RWKAR: &str = "RHRAR_RWKAR";
/// RDAYAR (0x18) and RMONAR (0x1a): alarm day and month, bit 7 ENB.
pub const RDAYAR_RMONAR: &str = "RDAYAR_RMONAR";
/// RYRAR (0x1c, 16 bits, alarm year) and RYRAREN (0x1e, bit 7 ENB for the year).
pub const RYRAR_RYRAREN: &str = "RYRAR_RYRAREN";
/// RSR (0x20: AF, CF, PF) and RCR1 (0x22: AIE, CIE, PIE, PES).
pub const RSR_RCR1: &str = "RSR_RCR1";
/// RCR2 (0x24): START, RESET, AADJE, ADJP, HR24, CNTMD.
pub const RCR2: &str = "RCR2";
/// RADJ (0x2e): time error adjustment (stored only).
pub const RADJ: &str = "RADJ";

/// RSR/RCR1 bits (rtc-renesas-rtca3.c RTCA3_RSR_*, RTCA3_RCR1_*: same positions).
const AF: u32 = 1 << 0;
const CF: u32 = 1 << 1;
const PF: u32 = 1 << 2;
const AIE: u32 = AF;
const CIE: u32 = CF;
const PIE: u32 = PF;
/// RCR1.PES, bits 7:4.
const PES_SHIFT: u32 = 4;
/// RCR2 bits.
const START: u32 = 1 << 0;
const RESET: u32 = 1 << 1;
/// ENB of every alarm register (RTCA3_AR_ENB).
const ENB: u32 = 1 << 7;

/// Interrupt lines, in the order the device declares them (r9a08g045.dtsi).
const LINE_ALARM: usize = 0;
const LINE_PERIOD: usize = 1;
const LINE_CARRY: usize = 2;

const SEC_NS: u64 = 1_000_000_000;
/// Beyond this many seconds at once (a long-stopped bus clock, a restore) the counter
/// jumps instead of comparing the alarm at every second.
const STEP_LIMIT: u64 = 400_000;

/// One byte (or 16-bit) register inside a declared word: field `field` of word `word`.
fn loc(registers: &[Register], word: &str, field: &str) -> Result<Loc, Missing> {
    let word = find(registers, word)?;
    Ok(Loc {
        word,
        mask: find_field(registers, word, field)?,
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layout {
    sec: Loc,
    min: Loc,
    hour: Loc,
    wday: Loc,
    day: Loc,
    mon: Loc,
    year: Loc,
    sec_ar: Loc,
    min_ar: Loc,
    hour_ar: Loc,
    wday_ar: Loc,
    day_ar: Loc,
    mon_ar: Loc,
    year_ar: Loc,
    year_aren: Loc,
    rsr: Loc,
    rcr1: Loc,
    rcr2: Loc,
    radj: Loc,
}

impl Layout {
    fn resolve(r: &[Register]) -> Result<Layout, Missing> {
        Ok(Layout {
            sec: loc(r, R64CNT_RSECCNT, "RSECCNT")?,
            min: loc(r, RMINCNT_RHRCNT, "RMINCNT")?,
            hour: loc(r, RMINCNT_RHRCNT, "RHRCNT")?,
            wday: loc(r, RWKCNT_RDAYCNT, "RWKCNT")?,
            day: loc(r, RWKCNT_RDAYCNT, "RDAYCNT")?,
            mon: loc(r, RMONCNT_RYRCNT, "RMONCNT")?,
            year: loc(r, RMONCNT_RYRCNT, "RYRCNT")?,
            sec_ar: loc(r, RSECAR_RMINAR, "RSECAR")?,
            min_ar: loc(r, RSECAR_RMINAR, "RMINAR")?,
            hour_ar: loc(r, RHRAR_RWKAR, "RHRAR")?,
            wday_ar: loc(r, RHRAR_RWKAR, "RWKAR")?,
            day_ar: loc(r, RDAYAR_RMONAR, "RDAYAR")?,
            mon_ar: loc(r, RDAYAR_RMONAR, "RMONAR")?,
            year_ar: loc(r, RYRAR_RYRAREN, "RYRAR")?,
            year_aren: loc(r, RYRAR_RYRAREN, "RYRAREN")?,
            rsr: loc(r, RSR_RCR1, "RSR")?,
            rcr1: loc(r, RSR_RCR1, "RCR1")?,
            rcr2: loc(r, RCR2, "RCR2")?,
            radj: loc(r, RADJ, "RADJ")?,
        })
    }

    fn counters(&self) -> [Loc; 7] {
        [
            self.sec, self.min, self.hour, self.wday, self.day, self.mon, self.year,
        ]
    }

    fn alarms(&self) -> [Loc; 8] {
        [
            self.sec_ar,
            self.min_ar,
            self.hour_ar,
            self.wday_ar,
            self.day_ar,
            self.mon_ar,
            self.year_ar,
            self.year_aren,
        ]
    }
}

fn bcd2bin(v: u32) -> u32 {
    ((v >> 4) & 0xf) * 10 + (v & 0xf)
}

fn bin2bcd(v: u32) -> u32 {
    ((v / 10) << 4) | (v % 10)
}

fn leap(year: u32) -> bool {
    // Two-digit years of 2000-2099: every fourth is a leap year (2000 included).
    year.is_multiple_of(4)
}

fn month_days(year: u32, mon: u32) -> u32 {
    match mon {
        2 if leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days in the counter's 100-year cycle (2000-2099: 25 leap years).
const CYCLE_DAYS: u64 = 36_525;

/// The counters in binary. `year` is 0..=99 (2000 + year).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Calendar {
    pub sec: u32,
    pub min: u32,
    pub hour: u32,
    pub wday: u32,
    pub day: u32,
    pub mon: u32,
    pub year: u32,
}

impl Calendar {
    /// Seconds since 2000-01-01 00:00:00 (out-of-range fields clamped, as a counter would
    /// not hold them for long).
    fn to_secs(self) -> u64 {
        let year = self.year.min(99);
        let mon = self.mon.clamp(1, 12);
        let day = self.day.clamp(1, month_days(year, mon));
        let mut days = u64::from(year) * 365 + u64::from(year.div_ceil(4));
        for m in 1..mon {
            days += u64::from(month_days(year, m));
        }
        days += u64::from(day - 1);
        days * 86_400
            + u64::from(self.hour.min(23)) * 3600
            + u64::from(self.min.min(59)) * 60
            + u64::from(self.sec.min(59))
    }

    /// The calendar `secs` after 2000-01-01 00:00:00 (modulo 100 years), with day of week
    /// `wday`.
    fn from_secs(secs: u64, wday: u32) -> Calendar {
        let mut days = (secs / 86_400) % CYCLE_DAYS;
        let rem = secs % 86_400;
        let mut year = 0;
        loop {
            let len = if leap(year) { 366 } else { 365 };
            if days < len {
                break;
            }
            days -= len;
            year += 1;
        }
        let mut mon = 1;
        loop {
            let len = u64::from(month_days(year, mon));
            if days < len {
                break;
            }
            days -= len;
            mon += 1;
        }
        Calendar {
            sec: (rem % 60) as u32,
            min: ((rem / 60) % 60) as u32,
            hour: (rem / 3600) as u32,
            wday,
            day: days as u32 + 1,
            mon,
            year,
        }
    }

    /// `n` seconds later; the day of week advances with every day boundary crossed.
    pub fn advance(self, n: u64) -> Calendar {
        let secs = self.to_secs();
        let days = (secs + n) / 86_400 - secs / 86_400;
        let wday = ((u64::from(self.wday % 7) + days) % 7) as u32;
        Calendar::from_secs(secs + n, wday)
    }
}

/// What a snapshot keeps besides the registers.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Saved {
    regs: Value,
    second_start: Option<u64>,
    next_period: Option<u64>,
    carries: u64,
    alarms: u64,
    periods: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rtca3 {
    registers: Vec<Register>,
    regs: RegFile,
    layout: Layout,
    /// While running: the bus time at which the current second began.
    second_start: Option<u64>,
    /// While RCR1.PIE is set and the counter runs: when the next periodic interrupt falls.
    next_period: Option<u64>,
    carries: u64,
    alarms: u64,
    periods: u64,
    /// Fault `rtc-osc-stuck`: the oscillator never runs, RCR2.START never sets.
    osc_stuck: bool,
}

impl Rtca3 {
    pub fn new(dev: &Device, cfg: &ModelConfig) -> Result<Rtca3, BuildError> {
        let layout = Layout::resolve(&dev.registers)
            .map_err(|e| BuildError::new("registers", format!("the {MODEL} model needs {e}")))?;
        if dev.interrupts.len() < 3 {
            return Err(BuildError::new(
                "interrupts",
                format!("the {MODEL} model needs three lines: alarm, period, carry"),
            ));
        }
        let registers = dev.registers.clone();
        let regs = RegFile::new(&registers);
        Ok(Rtca3 {
            registers,
            regs,
            layout,
            second_start: None,
            next_period: None,
            carries: 0,
            alarms: 0,
            periods: 0,
            osc_stuck: cfg.armed(Fault::RtcOscStuck),
        })
    }

    fn get(&self, loc: Loc) -> u32 {
        loc.of(self.regs.get(loc.word))
    }

    fn set(&mut self, loc: Loc, v: u32) {
        self.regs
            .set(loc.word, loc.with(self.regs.get(loc.word), v));
    }

    /// The counters now (as the registers hold them).
    pub fn calendar(&self) -> Calendar {
        let l = &self.layout;
        Calendar {
            sec: bcd2bin(self.get(l.sec) & 0x7f),
            min: bcd2bin(self.get(l.min) & 0x7f),
            hour: bcd2bin(self.get(l.hour) & 0x3f),
            wday: self.get(l.wday) & 0x7,
            day: bcd2bin(self.get(l.day) & 0x3f),
            mon: bcd2bin(self.get(l.mon) & 0x1f),
            year: bcd2bin(self.get(l.year) & 0xff),
        }
    }

    fn set_calendar(&mut self, c: Calendar) {
        let l = self.layout;
        self.set(l.sec, bin2bcd(c.sec));
        self.set(l.min, bin2bcd(c.min));
        self.set(l.hour, bin2bcd(c.hour));
        self.set(l.wday, c.wday);
        self.set(l.day, bin2bcd(c.day));
        self.set(l.mon, bin2bcd(c.mon));
        self.set(l.year, bin2bcd(c.year));
    }

    pub fn running(&self) -> bool {
        self.second_start.is_some()
    }

    fn rcr1(&self) -> u32 {
        self.get(self.layout.rcr1)
    }

    fn rsr(&self) -> u32 {
        self.get(self.layout.rsr)
    }

    /// The periodic interrupt's period for RCR1.PES (ns); None for no periodic interrupt.
    /// PES 0x8 is 1/64 s (RTCA3_RCR1_PES_1_64_SEC); each step up doubles it (0x6 = 1/256 s
    /// .. 0xf = 2 s, as in the RTCA family).
    pub fn period_ns(&self) -> Option<u64> {
        let pes = (self.rcr1() >> PES_SHIFT) & 0xf;
        (6..=0xf).contains(&pes).then(|| {
            // 2^(pes - 14) s.
            if pes >= 14 {
                SEC_NS << (pes - 14)
            } else {
                SEC_NS >> (14 - pes)
            }
        })
    }

    /// Whether the enabled alarm fields all match the counters (and at least one is
    /// enabled).
    fn alarm_matches(&self) -> bool {
        let l = &self.layout;
        let pairs = [
            (l.sec_ar, l.sec, 0x7f),
            (l.min_ar, l.min, 0x7f),
            (l.hour_ar, l.hour, 0x7f),
            (l.wday_ar, l.wday, 0x07),
            (l.day_ar, l.day, 0x3f),
            (l.mon_ar, l.mon, 0x1f),
        ];
        let mut any = false;
        for (ar, cnt, m) in pairs {
            let a = self.get(ar);
            if a & ENB != 0 {
                any = true;
                if a & m != self.get(cnt) & m {
                    return false;
                }
            }
        }
        if self.get(l.year_aren) & ENB != 0 {
            any = true;
            if self.get(l.year_ar) & 0xff != self.get(l.year) & 0xff {
                return false;
            }
        }
        any
    }

    fn flag(&mut self, bit: u32, enable: u32, line: usize, fx: &mut Effects) {
        let rsr = self.rsr();
        self.set(self.layout.rsr, rsr | bit);
        if self.rcr1() & enable != 0 {
            fx.raise(line);
        }
    }

    /// Brings the counter up to `env`: carries, alarm matches, periodic interrupts that
    /// fell due. Returns true when a register changed.
    fn catch_up(&mut self, env: &Env, fx: &mut Effects) -> bool {
        let now = env.now_ns();
        let mut changed = false;
        if let Some(start) = self.second_start {
            let n = now.saturating_sub(start) / SEC_NS;
            if n > 0 {
                let mut cal = self.calendar();
                if n > STEP_LIMIT {
                    cal = cal.advance(n - 1);
                    self.set_calendar(cal);
                }
                let steps = n.min(STEP_LIMIT);
                for _ in 0..steps {
                    cal = cal.advance(1);
                    self.set_calendar(cal);
                    if self.alarm_matches() {
                        self.alarms += 1;
                        self.flag(AF, AIE, LINE_ALARM, fx);
                    }
                }
                self.carries += n;
                self.flag(CF, CIE, LINE_CARRY, fx);
                self.second_start = Some(start + n * SEC_NS);
                changed = true;
            }
        }
        if let (Some(next), Some(period)) = (self.next_period, self.period_ns()) {
            if now >= next {
                let k = (now - next) / period + 1;
                self.next_period = Some(next + k * period);
                self.periods += 1;
                self.flag(PF, PIE, LINE_PERIOD, fx);
                changed = true;
            }
        }
        changed
    }

    /// RCR2.RESET: the counters and alarm registers to their power-on values.
    fn reset_counter(&mut self) {
        let fresh = RegFile::new(&self.registers);
        let l = self.layout;
        for loc in l.counters().into_iter().chain(l.alarms()) {
            let v = loc.of(fresh.get(loc.word));
            self.set(loc, v);
        }
    }

    fn update_period(&mut self, now: u64) {
        let want = self.rcr1() & PIE != 0 && self.running() && self.period_ns().is_some();
        match (want, self.next_period) {
            (true, None) => {
                self.next_period = self.period_ns().map(|p| now + p);
            }
            (false, Some(_)) => self.next_period = None,
            _ => {}
        }
    }

    fn write_rsr(&mut self, written: u32, fx: &mut Effects) {
        let old = self.rsr();
        // Flags clear on a written 0; a written 1 leaves them.
        let new = old & written & (AF | CF | PF);
        self.set(self.layout.rsr, new);
        for (bit, line) in [(AF, LINE_ALARM), (CF, LINE_CARRY), (PF, LINE_PERIOD)] {
            if old & bit != 0 && new & bit == 0 {
                fx.lower(line);
            }
        }
    }

    fn write_rcr1(&mut self, written: u32, env: &Env, fx: &mut Effects) {
        let old = self.rcr1();
        self.set(self.layout.rcr1, written & 0xf7);
        let rsr = self.rsr();
        for (en, bit, line) in [
            (AIE, AF, LINE_ALARM),
            (CIE, CF, LINE_CARRY),
            (PIE, PF, LINE_PERIOD),
        ] {
            if written & en != 0 && old & en == 0 && rsr & bit != 0 {
                fx.raise(line);
            } else if written & en == 0 && old & en != 0 && rsr & bit != 0 {
                fx.lower(line);
            }
        }
        if (written ^ old) & (0xf << PES_SHIFT) != 0 {
            self.next_period = None;
        }
        self.update_period(env.now_ns());
    }

    fn write_rcr2(&mut self, written: u32, env: &Env, fx: &mut Effects) {
        let old = self.get(self.layout.rcr2);
        let mut new = written & 0xf3;
        if self.osc_stuck && new & START != 0 {
            // No count clock: START does not take (the probe's start poll times out,
            // rtc-renesas-rtca3.c:646-649).
            new &= !START;
            fx.fire(Fault::RtcOscStuck);
        }
        if new & RESET != 0 {
            self.reset_counter();
            new &= !RESET;
        }
        self.set(self.layout.rcr2, new);
        match (old & START != 0, new & START != 0) {
            (false, true) => self.second_start = Some(env.now_ns()),
            (true, false) => self.second_start = None,
            _ => {}
        }
        self.update_period(env.now_ns());
    }
}

impl Peripheral for Rtca3 {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
        self.second_start = None;
        self.next_period = None;
        self.carries = 0;
        self.alarms = 0;
        self.periods = 0;
    }

    fn write(&mut self, reg: usize, value: u32, env: &Env, fx: &mut Effects) {
        self.write_lanes(reg, value, 0xf, env, fx);
    }

    fn write_lanes(&mut self, reg: usize, value: u32, lanes: u8, env: &Env, fx: &mut Effects) {
        self.catch_up(env, fx);
        let l = self.layout;
        let hit = |loc: Loc| loc.hit_by(reg, lanes);
        let field = |loc: Loc| loc.of(value);
        for loc in l.counters().into_iter().chain(l.alarms()).chain([l.radj]) {
            if hit(loc) {
                self.set(loc, field(loc));
            }
        }
        if hit(l.rsr) {
            self.write_rsr(field(l.rsr), fx);
        }
        if hit(l.rcr1) {
            self.write_rcr1(field(l.rcr1), env, fx);
        }
        if hit(l.rcr2) {
            self.write_rcr2(field(l.rcr2), env, fx);
        }
    }

    fn keeps_time(&self) -> bool {
        true
    }

    fn deadline(&self) -> Option<u64> {
        let carry = self.second_start.map(|s| s.saturating_add(SEC_NS));
        match (carry, self.next_period) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn tick(&mut self, env: &Env, fx: &mut Effects) -> bool {
        self.catch_up(env, fx)
    }

    fn counters(&self) -> Option<Value> {
        Some(json!({ "carries": self.carries, "alarms": self.alarms, "periodic": self.periods }))
    }

    fn save(&self) -> Value {
        let saved = Saved {
            regs: self.regs.save(),
            second_start: self.second_start,
            next_period: self.next_period,
            carries: self.carries,
            alarms: self.alarms,
            periods: self.periods,
        };
        serde_json::to_value(saved).unwrap_or(Value::Null)
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        let saved: Saved =
            serde_json::from_value(state.clone()).map_err(|e| format!("{MODEL} state: {e}"))?;
        let mut regs = self.regs.clone();
        regs.load(&saved.regs)?;
        self.regs = regs;
        self.second_start = saved.second_start;
        self.next_period = saved.next_period;
        self.carries = saved.carries;
        self.alarms = saved.alarms;
        self.periods = saved.periods;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_soc;

    const S: u64 = SEC_NS;

    fn rtc() -> Rtca3 {
        let soc = test_soc();
        Rtca3::new(soc.device("rtc").expect("rtc"), &ModelConfig::default()).expect("rtc builds")
    }

    fn at(now: u64) -> Env<'static> {
        Env::new(vec![], vec![]).at(now)
    }

    /// Where the byte (or 16-bit) register `field` lives.
    fn loc(r: &Rtca3, field: &str) -> Loc {
        let word = r
            .registers
            .iter()
            .position(|x| x.field(field).is_some())
            .expect("field");
        Loc {
            word,
            mask: find_field(&r.registers, word, field).expect("mask"),
        }
    }

    impl Rtca3 {
        /// A byte store (a 16-bit one for RYRCNT/RYRAR) of `field`, as writeb/writew.
        fn wb(&mut self, field: &str, v: u32, now: u64) -> Effects {
            let l = loc(self, field);
            let mut fx = Effects::default();
            let word = l.with(self.regs.get(l.word), v);
            self.write_lanes(l.word, word, l.lanes(), &at(now), &mut fx);
            fx
        }
        fn rb(&self, field: &str) -> u32 {
            self.get(loc(self, field))
        }
        fn t(&mut self, now: u64) -> Effects {
            let mut fx = Effects::default();
            self.tick(&at(now), &mut fx);
            fx
        }
    }

    /// rtca3_initial_setup on a stopped RTC (L600-663): every poll ends as the driver waits.
    fn probe(r: &mut Rtca3, now: u64) {
        r.wb("RCR2", 0, now);
        assert_eq!(r.rb("RCR2") & (START | 0x80), 0, "stop poll");
        r.wb("RCR2", 0x40, now);
        assert_ne!(r.rb("RCR2") & 0x40, 0, "HR24 poll");
        r.wb("RCR2", 0x40 | RESET, now);
        assert_eq!(r.rb("RCR2") & RESET, 0, "reset poll");
        r.wb("RADJ", 0, now);
        assert_eq!(r.rb("RADJ"), 0, "RADJ poll");
        r.wb("RCR2", 0x40 | START | 0x10, now);
        assert_eq!(r.rb("RCR2") & 0x11, 0x11, "start poll");
        let rcr1 = r.rb("RCR1");
        r.wb("RCR1", (rcr1 & !0xf0) | 0x80, now);
        assert_eq!(r.rb("RCR1") & 0xf0, 0x80, "PES poll");
    }

    /// rtca3_set_time (L297-322): stop, BCD counters, start.
    fn set_time(r: &mut Rtca3, c: Calendar, now: u64) {
        let rcr2 = r.rb("RCR2");
        r.wb("RCR2", rcr2 & !START, now);
        assert_eq!(r.rb("RCR2") & START, 0);
        r.wb("RSECCNT", bin2bcd(c.sec), now);
        r.wb("RMINCNT", bin2bcd(c.min), now);
        r.wb("RHRCNT", bin2bcd(c.hour), now);
        r.wb("RWKCNT", c.wday, now);
        r.wb("RDAYCNT", bin2bcd(c.day), now);
        r.wb("RMONCNT", bin2bcd(c.mon), now);
        r.wb("RYRCNT", bin2bcd(c.year), now);
        r.wb("RCR2", rcr2 | START, now);
        assert_ne!(r.rb("RCR2") & START, 0);
    }

    fn cal(year: u32, mon: u32, day: u32, hour: u32, min: u32, sec: u32, wday: u32) -> Calendar {
        Calendar {
            sec,
            min,
            hour,
            wday,
            day,
            mon,
            year,
        }
    }

    #[test]
    fn power_on_is_2000_01_01_stopped() {
        let r = rtc();
        assert_eq!(r.calendar(), cal(0, 1, 1, 0, 0, 0, 6));
        assert!(!r.running());
        assert_eq!(r.deadline(), None);
        assert!(r.keeps_time());
    }

    #[test]
    fn the_probe_sequence_ends_running_in_24_hour_mode() {
        let mut r = rtc();
        probe(&mut r, 7);
        assert!(r.running());
        assert_eq!(r.rb("RCR2"), 0x40 | 0x10 | START);
        assert_eq!(r.deadline(), Some(7 + S));
    }

    #[test]
    fn reset_restores_counters_and_alarms_and_self_clears() {
        let mut r = rtc();
        r.wb("RSECCNT", 0x42, 0);
        r.wb("RSECAR", 0x85, 0);
        r.wb("RYRAREN", 0x80, 0);
        r.wb("RCR2", 0x40 | RESET, 0);
        assert_eq!(r.rb("RSECCNT"), 0);
        assert_eq!(r.rb("RSECAR"), 0);
        assert_eq!(r.rb("RYRAREN"), 0);
        assert_eq!(r.rb("RCR2"), 0x40);
    }

    #[test]
    fn seconds_carry_and_set_cf() {
        let mut r = rtc();
        probe(&mut r, 0);
        assert!(r.t(S / 2).is_empty());
        assert_eq!(r.rb("RSECCNT"), 0);
        r.t(2 * S + S / 2);
        assert_eq!(r.rb("RSECCNT"), 0x02);
        assert_ne!(r.rb("RSR") & CF, 0);
        assert_eq!(r.deadline(), Some(3 * S), "the phase of the second is kept");
        // The driver's clear: a read-modify-write of RSR with CF 0 (L254).
        let rsr = r.rb("RSR");
        r.wb("RSR", rsr & !CF, 2 * S + S / 2);
        assert_eq!(r.rb("RSR") & CF, 0);
        // A written 1 does not set a flag.
        r.wb("RSR", 0x7, 2 * S + S / 2);
        assert_eq!(r.rb("RSR"), 0);
    }

    #[test]
    fn a_write_catches_up_first_so_a_read_after_it_sees_the_carry() {
        let mut r = rtc();
        probe(&mut r, 0);
        // rtca3_read_time's first access after a second boundary is the RSR update.
        let rsr = r.rb("RSR");
        r.wb("RSR", rsr & !CF, S + 1);
        assert_eq!(r.rb("RSECCNT"), 0x01);
        assert_eq!(r.rb("RSR") & CF, 0, "the carry before the clear is cleared");
    }

    #[test]
    fn set_time_reads_back_and_runs_from_the_start() {
        let mut r = rtc();
        probe(&mut r, 0);
        let c = cal(26, 12, 2, 6, 42, 59, 3);
        set_time(&mut r, c, 10 * S + 123);
        assert_eq!(r.calendar(), c);
        assert_eq!(r.rb("RYRCNT"), 0x26);
        r.t(11 * S + 123);
        assert_eq!(r.calendar(), cal(26, 12, 2, 6, 43, 0, 3));
    }

    #[test]
    fn stopped_counter_stands_still() {
        let mut r = rtc();
        probe(&mut r, 0);
        let rcr2 = r.rb("RCR2");
        r.wb("RCR2", rcr2 & !START, S / 2);
        assert_eq!(r.deadline(), None);
        r.t(100 * S);
        assert_eq!(r.rb("RSECCNT"), 0);
    }

    #[test]
    fn calendar_rolls_over_months_leap_days_and_the_century() {
        let c = cal(24, 2, 28, 23, 59, 59, 3).advance(1);
        assert_eq!(c, cal(24, 2, 29, 0, 0, 0, 4));
        let c = cal(23, 2, 28, 23, 59, 59, 2).advance(1);
        assert_eq!(c, cal(23, 3, 1, 0, 0, 0, 3));
        let c = cal(99, 12, 31, 23, 59, 59, 4).advance(1);
        assert_eq!(c, cal(0, 1, 1, 0, 0, 0, 5));
        let c = cal(26, 4, 30, 12, 0, 0, 4).advance(86_400 * 7);
        assert_eq!(c, cal(26, 5, 7, 12, 0, 0, 4));
        // Seconds since 2000 agree with the civil calendar: 2026-12-02 = 9832 days.
        assert_eq!(cal(26, 12, 2, 0, 0, 0, 3).to_secs(), 9832 * 86_400);
    }

    fn set_alarm(r: &mut Rtca3, c: Calendar, now: u64) {
        r.wb("RSECAR", ENB | bin2bcd(c.sec), now);
        r.wb("RMINAR", ENB | bin2bcd(c.min), now);
        r.wb("RHRAR", ENB | bin2bcd(c.hour), now);
        r.wb("RWKAR", ENB | c.wday, now);
        r.wb("RDAYAR", ENB | bin2bcd(c.day), now);
        r.wb("RMONAR", ENB | bin2bcd(c.mon), now);
        r.wb("RYRAR", bin2bcd(c.year), now);
        r.wb("RYRAREN", ENB, now);
    }

    #[test]
    fn the_alarm_fires_at_its_second_under_aie() {
        let mut r = rtc();
        probe(&mut r, 0);
        let c = cal(26, 12, 2, 6, 42, 58, 3);
        set_time(&mut r, c, 0);
        set_alarm(&mut r, c.advance(2), 0);
        let rsr = r.rb("RSR");
        r.wb("RSR", rsr & !AF, 0);
        let rcr1 = r.rb("RCR1");
        r.wb("RCR1", rcr1 | AIE, 0);
        let fx = r.t(S);
        assert_eq!(r.rb("RSR") & AF, 0);
        assert_eq!(fx.raised().count(), 0);
        let fx = r.t(2 * S);
        assert_ne!(r.rb("RSR") & AF, 0);
        assert_eq!(fx.raised().collect::<Vec<_>>(), vec![LINE_ALARM]);
        // rtca3_alarm_handler_helper: RSR = val & ~AF withdraws the line.
        let rsr = r.rb("RSR");
        let fx = r.wb("RSR", rsr & !AF, 2 * S);
        assert!(fx.lowered().any(|l| l == LINE_ALARM));
        assert_eq!(r.counters().expect("counters")["alarms"], 1);
    }

    #[test]
    fn the_alarm_is_compared_at_every_second_of_a_late_tick() {
        let mut r = rtc();
        probe(&mut r, 0);
        let c = cal(26, 1, 1, 0, 0, 0, 4);
        set_time(&mut r, c, 0);
        set_alarm(&mut r, c.advance(3), 0);
        r.wb("RCR1", 0x80 | AIE, 0);
        let fx = r.t(10 * S);
        assert_ne!(r.rb("RSR") & AF, 0);
        assert!(fx.raised().any(|l| l == LINE_ALARM));
    }

    #[test]
    fn no_alarm_without_enb_or_without_aie_no_line() {
        let mut r = rtc();
        probe(&mut r, 0);
        r.t(5 * S);
        assert_eq!(r.rb("RSR") & AF, 0, "no ENB: never matches");
        let now = 5 * S;
        r.wb("RSECAR", ENB | 0x06, now);
        let fx = r.t(6 * S);
        assert_ne!(r.rb("RSR") & AF, 0);
        assert!(!fx.raised().any(|l| l == LINE_ALARM), "AIE clear");
        // AIE set with AF pending raises at once.
        let fx = r.wb("RCR1", 0x80 | AIE, 6 * S);
        assert!(fx.raised().any(|l| l == LINE_ALARM));
    }

    #[test]
    fn periodic_interrupts_at_1_64_s_under_pie() {
        let mut r = rtc();
        probe(&mut r, 0);
        let t0 = S / 10;
        let rcr1 = r.rb("RCR1");
        r.wb("RCR1", rcr1 | PIE, t0);
        assert_eq!(r.period_ns(), Some(15_625_000));
        assert_eq!(r.deadline(), Some(t0 + 15_625_000));
        let fx = r.t(t0 + 15_625_000);
        assert_ne!(r.rb("RSR") & PF, 0);
        assert_eq!(fx.raised().collect::<Vec<_>>(), vec![LINE_PERIOD]);
        let rsr = r.rb("RSR");
        r.wb("RSR", rsr & !PF, t0 + 15_625_000);
        let fx = r.t(t0 + 2 * 15_625_000);
        assert!(fx.raised().any(|l| l == LINE_PERIOD));
        // The periodic handler clears PIE: no more periodic deadline.
        let rcr1 = r.rb("RCR1");
        r.wb("RCR1", rcr1 & !PIE, t0 + 2 * 15_625_000);
        assert_eq!(r.deadline(), Some(S));
    }

    #[test]
    fn carry_interrupt_only_under_cie() {
        let mut r = rtc();
        probe(&mut r, 0);
        assert!(!r.t(S).raised().any(|l| l == LINE_CARRY));
        let rcr1 = r.rb("RCR1");
        r.wb("RCR1", rcr1 | CIE, S);
        let rsr = r.rb("RSR");
        r.wb("RSR", rsr & !CF, S);
        assert!(r.t(2 * S).raised().any(|l| l == LINE_CARRY));
    }

    #[test]
    fn byte_stores_touch_only_their_register() {
        let mut r = rtc();
        probe(&mut r, 0);
        r.wb("RSECAR", 0x85, 0);
        r.wb("RMINAR", 0x83, 0);
        assert_eq!(r.rb("RSECAR"), 0x85);
        assert_eq!(r.rb("RMINAR"), 0x83);
        r.t(S);
        assert_ne!(r.rb("RSR") & CF, 0);
        r.wb("RCR1", 0x80 | AIE, S);
        assert_ne!(
            r.rb("RSR") & CF,
            0,
            "an RCR1 store leaves RSR in the same word"
        );
    }

    #[test]
    fn save_load_round_trip_keeps_time_and_alarm() {
        let mut r = rtc();
        probe(&mut r, 0);
        let c = cal(26, 12, 2, 6, 42, 58, 3);
        set_time(&mut r, c, S / 4);
        set_alarm(&mut r, c.advance(3), S / 4);
        r.wb("RCR1", 0x80 | AIE | PIE, S / 4);
        r.t(S + S / 4);
        let saved = r.save();
        let mut back = rtc();
        back.load(&saved).expect("load");
        assert_eq!(back, r);
        let a = r.t(3 * S + S / 4);
        let b = back.t(3 * S + S / 4);
        assert_eq!(a, b);
        assert_eq!(back.calendar(), c.advance(3));
        assert!(back.load(&json!({"regs": {"registers": [1]}})).is_err());
        assert_eq!(back, r, "a failed load changes nothing");
    }

    #[test]
    fn rtc_osc_stuck_start_never_takes_and_fires() {
        let soc = test_soc();
        let cfg = ModelConfig {
            faults: vec![Fault::RtcOscStuck],
            ..ModelConfig::default()
        };
        let mut r = Rtca3::new(soc.device("rtc").expect("rtc"), &cfg).expect("builds");
        r.wb("RCR2", 0x40, 0);
        assert!(!r.wb("RCR2", 0x40, 0).fired(Fault::RtcOscStuck));
        let fx = r.wb("RCR2", 0x40 | START | 0x10, 0);
        assert!(fx.fired(Fault::RtcOscStuck));
        assert_eq!(r.rb("RCR2") & START, 0, "the start poll never ends");
        assert!(!r.running());
        assert_eq!(r.deadline(), None);
    }

    #[test]
    fn a_description_without_a_register_is_refused_by_name() {
        let soc = test_soc();
        let mut dev = soc.device("rtc").expect("rtc").clone();
        dev.registers.retain(|r| r.name != RCR2);
        let e = Rtca3::new(&dev, &ModelConfig::default()).expect_err("no RCR2");
        assert_eq!(e.key, "registers");
        assert!(e.message.contains("RCR2"), "{}", e.message);
        let mut dev = soc.device("rtc").expect("rtc").clone();
        dev.interrupts.truncate(2);
        assert_eq!(
            Rtca3::new(&dev, &ModelConfig::default())
                .expect_err("2 lines")
                .key,
            "interrupts"
        );
    }
}
