//! The RZ/G3S DMA controller (`rz-dmac`, drivers/dma/sh/rz-dmac.c), as its memcpy channels
//! need it.
//!
//! Sixteen channels, each with the registers the driver uses (CHSTAT, CHCTRL, CHCFG, NXLA,
//! CRLA, CRTB) and those a descriptor loads (N0SA, N0DA, N0TB, CRSA, CRDA, CHITVL, CHEXT).
//! CHCTRL is a command register that reads 0; its bits act in this order within one write:
//! SWRST (status, trigger and suspend cleared), CLREN (the channel stops), CLREND, CLRTC,
//! CLRSUS, SETSUS (while enabled), CLRINTMSK, SETINTMSK, SETEN, STG (the software trigger:
//! memcpy's, rz_dmac_prepare_desc_for_memcpy sets CHCTRL_STG, rz-dmac.c:449).
//!
//! An enabled, triggered, not suspended channel transfers at once, inside the write:
//! - link mode (CHCFG.DMS, what rz-dmac uses for everything, CHCFG_MEM_COPY :190): it walks
//!   the descriptors from NXLA (struct rz_lmdesc :41-50: header, sa, da, tb, chcfg, chitvl,
//!   chext, nxla, eight little-endian words). Each must have header.LV (:206); its words are
//!   loaded into the registers, `tb` bytes are copied from `sa` to `da` through guest
//!   memory, and the header is written back with LV clear unless header.WBD (:208) (the
//!   driver recycles descriptors whose LV the controller cleared, rz_dmac_lmdesc_recycle
//!   :293-304). A descriptor whose chcfg has DEM (bit 24) clear ends with END and TC set and
//!   the channel's line raised (unless CHSTAT.INTMSK); header.LE (:207) ends the chain:
//!   the channel disables (CHSTAT.EN clear, what rz_dmac_device_synchronize polls for,
//!   :912). At most 64 descriptors (DMAC_NR_LMDESC, :212) per trigger.
//! - register mode (DMS clear): N0TB bytes from N0SA to N0DA, then as a link end.
//!
//! The driver completes a transfer from the channel's interrupt: the hard handler reads
//! CHSTAT (ER: it logs and disables the channel) and writes CLREND (rz_dmac_irq_handle_channel,
//! :1181-1202), the thread completes the descriptor and starts the next (:1216-1237).
//! Completing inside the start write is safe for it: issue_pending starts the channel under
//! the channel's spinlock with interrupts off (:812-830), so the edge is taken after it.
//!
//! Errors: a descriptor read or a copy that guest memory refuses (an address outside RAM),
//! or a descriptor without LV, sets CHSTAT.ER, disables the channel and raises the
//! channel's line and the `error` line; the reason is in the counters (`last_error`).
//!
//! Transfers that wait for a peripheral's request (slave and cyclic: no STG) stay enabled
//! and never run: no peripheral requests DMA in this model. DCTRL and DMARS keep what is
//! written. Fault `dmac-transfer-stuck`: a started transfer never runs nor ends (the
//! channel stays enabled until the driver's CLREN or SWRST).
//!
//! Fault `dmac-irq-pending-at-probe`: whenever the register clock comes on (the condition
//! `registers_clocked`: off, then on, as rz_dmac_probe's pm_runtime_resume_and_get does,
//! rz-dmac.c:1452), channel 0 holds a transfer end left over from before (CHSTAT.END) and
//! its line is raised: the interrupt a transfer started by the boot loader or a kexec'd
//! kernel leaves pending at the GIC. The driver then finds it pending when request_irq
//! enables the line, and its handler runs at once: what the upstream fix "Move interrupt
//! request after everything is set up" guards against (a handler that reads CHSTAT through
//! a ch_base not yet set).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Fault, ModelConfig};
use crate::device::{save_with_parts, saved_part, BuildError, Effects, Env, Peripheral};
use crate::regs::{find, RegFile, Register};
use crate::soc::Device;

/// The registry name of this model.
pub const MODEL: &str = "dmac";

/// rz-dmac handles at most 16 channels (RZ_DMAC_MAX_CHANNELS, rz-dmac.c:211).
pub const MAX_CHANNELS: u32 = 16;
/// Descriptors walked per trigger at most (DMAC_NR_LMDESC, rz-dmac.c:212: the ring's size).
const MAX_DESCRIPTORS: usize = 64;
/// Bytes copied per guest-memory call.
const CHUNK: usize = 4096;

/// CHSTAT bits (rz-dmac.c:165-167; END/TC are what CHCTRL CLREND/CLRTC clear, INTMSK what
/// CLRINTMSK clears).
pub const CHSTAT_EN: u32 = 1 << 0;
pub const CHSTAT_SUS: u32 = 1 << 3;
pub const CHSTAT_ER: u32 = 1 << 4;
pub const CHSTAT_END: u32 = 1 << 5;
pub const CHSTAT_TC: u32 = 1 << 6;
pub const CHSTAT_INTMSK: u32 = 1 << 16;

/// CHCTRL bits (rz-dmac.c:169-178; SETINTMSK is CLRINTMSK's pair).
pub const CHCTRL_SETEN: u32 = 1 << 0;
pub const CHCTRL_CLREN: u32 = 1 << 1;
pub const CHCTRL_STG: u32 = 1 << 2;
pub const CHCTRL_SWRST: u32 = 1 << 3;
pub const CHCTRL_CLRRQ: u32 = 1 << 4;
pub const CHCTRL_CLREND: u32 = 1 << 5;
pub const CHCTRL_CLRTC: u32 = 1 << 6;
pub const CHCTRL_SETSUS: u32 = 1 << 8;
pub const CHCTRL_CLRSUS: u32 = 1 << 9;
pub const CHCTRL_SETINTMSK: u32 = 1 << 16;
pub const CHCTRL_CLRINTMSK: u32 = 1 << 17;

/// CHCFG bits (rz-dmac.c:184-187).
pub const CHCFG_DMS: u32 = 1 << 31;
pub const CHCFG_DEM: u32 = 1 << 24;

/// Link descriptor header bits (rz-dmac.c:206-208).
pub const HEADER_LV: u32 = 1 << 0;
pub const HEADER_LE: u32 = 1 << 1;
pub const HEADER_WBD: u32 = 1 << 2;

/// The interrupt line of the controller's errors; channel n's is `ch<n>`.
pub const LINE_ERROR: &str = "error";

/// The condition that holds while the registers are clocked (dmac_pclk on): the fault
/// `dmac-irq-pending-at-probe` acts when it comes to hold.
pub const REGISTERS_CLOCKED: &str = "registers_clocked";

/// One channel's registers (indexes into the device's registers).
#[derive(Clone, Debug, PartialEq, Eq)]
struct Chan {
    n0sa: usize,
    n0da: usize,
    n0tb: usize,
    crsa: usize,
    crda: usize,
    crtb: usize,
    chstat: usize,
    chctrl: usize,
    chcfg: usize,
    chitvl: usize,
    chext: usize,
    nxla: usize,
    crla: usize,
    /// Its interrupt line.
    line: usize,
}

/// What the model counts, for the summary.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DmacCounters {
    /// Transfers that ended (a link end or a register-mode transfer).
    pub transfers: u64,
    pub descriptors: u64,
    pub bytes: u64,
    /// Channel errors (ER set).
    pub errors: u64,
    /// Transfers the fault `dmac-transfer-stuck` held.
    pub stuck: u64,
    /// Channel 0 interrupts the fault `dmac-irq-pending-at-probe` left pending.
    pub stale_interrupts: u64,
    /// The last error, in words.
    pub last_error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dmac {
    registers: Vec<Register>,
    regs: RegFile,
    chans: Vec<Chan>,
    line_error: usize,
    /// Channel n was triggered (STG) and has not transferred (it is suspended).
    triggered: Vec<bool>,
    /// Fault `dmac-transfer-stuck` is armed.
    stuck: bool,
    /// Fault `dmac-irq-pending-at-probe` is armed.
    stale_irq: bool,
    /// The register clock was seen off since the fault last acted: it acts when the clock
    /// comes on.
    stale_irq_due: bool,
    counters: DmacCounters,
}

/// A transfer that could not go on: guest memory refused, or a descriptor is not valid.
struct Failed(String);

impl Dmac {
    pub fn new(dev: &Device, cfg: &ModelConfig) -> Result<Dmac, BuildError> {
        let n = dev.channels;
        if !(1..=MAX_CHANNELS).contains(&n) {
            return Err(BuildError::new(
                "channels",
                format!("the {MODEL} model needs 1..{MAX_CHANNELS} channels (rz-dmac's maximum), got {n}"),
            ));
        }
        let line = |name: &str| {
            dev.interrupts
                .iter()
                .position(|l| l.name == name)
                .ok_or_else(|| {
                    BuildError::new(
                        "interrupts",
                        format!("the {MODEL} model needs an interrupt line named `{name}`"),
                    )
                })
        };
        let reg = |name: &str, c: u32| {
            find(&dev.registers, &format!("{name}{c}")).map_err(|e| {
                BuildError::new(
                    "registers",
                    format!("the {MODEL} model needs {e} (one per channel: `repeat`)"),
                )
            })
        };
        let mut chans = Vec::new();
        for c in 0..n {
            chans.push(Chan {
                n0sa: reg("N0SA", c)?,
                n0da: reg("N0DA", c)?,
                n0tb: reg("N0TB", c)?,
                crsa: reg("CRSA", c)?,
                crda: reg("CRDA", c)?,
                crtb: reg("CRTB", c)?,
                chstat: reg("CHSTAT", c)?,
                chctrl: reg("CHCTRL", c)?,
                chcfg: reg("CHCFG", c)?,
                chitvl: reg("CHITVL", c)?,
                chext: reg("CHEXT", c)?,
                nxla: reg("NXLA", c)?,
                crla: reg("CRLA", c)?,
                line: line(&format!("ch{c}"))?,
            });
        }
        let stale_irq = cfg.armed(Fault::DmacIrqPendingAtProbe);
        if stale_irq && !dev.conditions.iter().any(|(n, _)| n == REGISTERS_CLOCKED) {
            return Err(BuildError::new(
                "conditions",
                format!(
                    "the {MODEL} model needs the condition `{REGISTERS_CLOCKED}` for the fault \
                     {}",
                    Fault::DmacIrqPendingAtProbe
                ),
            ));
        }
        let registers = dev.registers.clone();
        let regs = RegFile::new(&registers);
        Ok(Dmac {
            registers,
            regs,
            line_error: line(LINE_ERROR)?,
            triggered: vec![false; chans.len()],
            chans,
            stuck: cfg.armed(Fault::DmacTransferStuck),
            stale_irq,
            stale_irq_due: false,
            counters: DmacCounters::default(),
        })
    }

    fn chan(&self, c: usize) -> Option<&Chan> {
        self.chans.get(c)
    }

    /// The register `pick` of channel `c`.
    fn get(&self, c: usize, pick: fn(&Chan) -> usize) -> u32 {
        self.chan(c).map_or(0, |ch| self.regs.get(pick(ch)))
    }

    fn set(&mut self, c: usize, pick: fn(&Chan) -> usize, v: u32) {
        if let Some(i) = self.chan(c).map(pick) {
            self.regs.set(i, v);
        }
    }

    /// A CHCTRL write of `cmd` to channel `c`.
    fn command(&mut self, c: usize, cmd: u32, env: &Env, fx: &mut Effects) {
        let mut st = self.get(c, |ch| ch.chstat);
        if cmd & CHCTRL_SWRST != 0 {
            st &= !(CHSTAT_EN | CHSTAT_SUS | CHSTAT_ER | CHSTAT_END | CHSTAT_TC);
            self.set_triggered(c, false);
        }
        if cmd & CHCTRL_CLREN != 0 {
            st &= !CHSTAT_EN;
            self.set_triggered(c, false);
        }
        if cmd & CHCTRL_CLREND != 0 {
            st &= !CHSTAT_END;
        }
        if cmd & CHCTRL_CLRTC != 0 {
            st &= !CHSTAT_TC;
        }
        if cmd & CHCTRL_CLRSUS != 0 {
            st &= !CHSTAT_SUS;
        }
        if cmd & CHCTRL_SETSUS != 0 && st & CHSTAT_EN != 0 {
            st |= CHSTAT_SUS;
        }
        if cmd & CHCTRL_CLRINTMSK != 0 {
            st &= !CHSTAT_INTMSK;
        }
        if cmd & CHCTRL_SETINTMSK != 0 {
            st |= CHSTAT_INTMSK;
        }
        if cmd & CHCTRL_SETEN != 0 {
            st = (st | CHSTAT_EN) & !CHSTAT_ER;
        }
        if cmd & CHCTRL_STG != 0 && st & CHSTAT_EN != 0 {
            self.set_triggered(c, true);
        }
        // CLRRQ clears a peripheral's pending request: there are none here.
        self.set(c, |ch| ch.chstat, st);
        if st & CHSTAT_EN != 0 && st & CHSTAT_SUS == 0 && self.is_triggered(c) {
            self.set_triggered(c, false);
            self.run(c, env, fx);
        }
    }

    fn is_triggered(&self, c: usize) -> bool {
        self.triggered.get(c).copied().unwrap_or(false)
    }

    fn set_triggered(&mut self, c: usize, v: bool) {
        if let Some(t) = self.triggered.get_mut(c) {
            *t = v;
        }
    }

    /// The triggered transfer of channel `c`.
    fn run(&mut self, c: usize, env: &Env, fx: &mut Effects) {
        if self.stuck {
            // The channel stays enabled and nothing moves: no END, no interrupt.
            self.counters.stuck += 1;
            fx.fire(Fault::DmacTransferStuck);
            return;
        }
        let result = if self.get(c, |ch| ch.chcfg) & CHCFG_DMS != 0 {
            self.run_link(c, env, fx)
        } else {
            self.run_register(c, env)
        };
        match result {
            Ok(true) => self.end(c, true, fx),
            Ok(false) => {}
            Err(Failed(why)) => self.error(c, why, fx),
        }
    }

    /// Register mode: N0TB bytes from N0SA to N0DA. Ok(true): the transfer ended.
    fn run_register(&mut self, c: usize, env: &Env) -> Result<bool, Failed> {
        let (sa, da, tb) = (
            self.get(c, |ch| ch.n0sa),
            self.get(c, |ch| ch.n0da),
            self.get(c, |ch| ch.n0tb),
        );
        self.set(c, |ch| ch.crsa, sa);
        self.set(c, |ch| ch.crda, da);
        self.set(c, |ch| ch.crtb, tb);
        self.copy(c, env, sa, da, tb)?;
        Ok(true)
    }

    /// Link mode: the descriptors from NXLA. Ok(true): a link end was reached.
    fn run_link(&mut self, c: usize, env: &Env, fx: &mut Effects) -> Result<bool, Failed> {
        for _ in 0..MAX_DESCRIPTORS {
            let addr = self.get(c, |ch| ch.nxla);
            let mut raw = [0u8; 32];
            env.memory()
                .read(u64::from(addr), &mut raw)
                .map_err(|e| Failed(format!("channel {c}: descriptor at 0x{addr:08x}: {e}")))?;
            let word = |i: usize| {
                raw.get(4 * i..4 * i + 4)
                    .and_then(|b| b.try_into().ok())
                    .map_or(0, u32::from_le_bytes)
            };
            let [header, sa, da, tb, chcfg, chitvl, chext, nxla] =
                [0, 1, 2, 3, 4, 5, 6, 7].map(word);
            if header & HEADER_LV == 0 {
                return Err(Failed(format!(
                    "channel {c}: descriptor at 0x{addr:08x} is not valid (header 0x{header:08x}, LV clear)"
                )));
            }
            self.set(c, |ch| ch.crla, addr);
            self.set(c, |ch| ch.n0sa, sa);
            self.set(c, |ch| ch.n0da, da);
            self.set(c, |ch| ch.n0tb, tb);
            self.set(c, |ch| ch.crsa, sa);
            self.set(c, |ch| ch.crda, da);
            self.set(c, |ch| ch.crtb, tb);
            self.set(c, |ch| ch.chcfg, chcfg);
            self.set(c, |ch| ch.chitvl, chitvl);
            self.set(c, |ch| ch.chext, chext);
            self.set(c, |ch| ch.nxla, nxla);
            self.copy(c, env, sa, da, tb)?;
            self.counters.descriptors += 1;
            if header & HEADER_WBD == 0 {
                let back = (header & !HEADER_LV).to_le_bytes();
                env.memory().write(u64::from(addr), &back).map_err(|e| {
                    Failed(format!(
                        "channel {c}: descriptor write-back at 0x{addr:08x}: {e}"
                    ))
                })?;
            }
            if header & HEADER_LE != 0 {
                return Ok(true);
            }
            if chcfg & CHCFG_DEM == 0 {
                self.end(c, false, fx);
            }
        }
        Ok(false)
    }

    /// `tb` bytes from `sa` to `da`, incrementing both; CRSA/CRDA/CRTB follow.
    fn copy(&mut self, c: usize, env: &Env, sa: u32, da: u32, tb: u32) -> Result<(), Failed> {
        let mut buf = [0u8; CHUNK];
        let mut done: u32 = 0;
        while done < tb {
            let n = (tb - done).min(CHUNK as u32);
            let chunk = buf.get_mut(..n as usize).unwrap_or_default();
            let (src, dst) = (
                u64::from(sa) + u64::from(done),
                u64::from(da) + u64::from(done),
            );
            env.memory()
                .read(src, chunk)
                .map_err(|e| Failed(format!("channel {c}: source 0x{src:x}: {e}")))?;
            env.memory()
                .write(dst, chunk)
                .map_err(|e| Failed(format!("channel {c}: destination 0x{dst:x}: {e}")))?;
            done += n;
            self.counters.bytes += u64::from(n);
            self.set(c, |ch| ch.crsa, sa.wrapping_add(done));
            self.set(c, |ch| ch.crda, da.wrapping_add(done));
            self.set(c, |ch| ch.crtb, tb - done);
        }
        Ok(())
    }

    /// A descriptor (or a register-mode transfer) ended: END and TC, the channel's line
    /// unless masked; `last` ends the transfer (the channel disables).
    fn end(&mut self, c: usize, last: bool, fx: &mut Effects) {
        let mut st = self.get(c, |ch| ch.chstat) | CHSTAT_END | CHSTAT_TC;
        if last {
            st &= !CHSTAT_EN;
            self.counters.transfers += 1;
        }
        self.set(c, |ch| ch.chstat, st);
        let masked = st & CHSTAT_INTMSK != 0 || self.get(c, |ch| ch.chcfg) & CHCFG_DEM != 0;
        if !masked {
            if let Some(line) = self.chan(c).map(|ch| ch.line) {
                fx.raise(line);
            }
        }
    }

    /// The transfer failed: ER, the channel disabled, its line and the error line raised.
    fn error(&mut self, c: usize, why: String, fx: &mut Effects) {
        let st = (self.get(c, |ch| ch.chstat) | CHSTAT_ER) & !CHSTAT_EN;
        self.set(c, |ch| ch.chstat, st);
        self.counters.errors += 1;
        self.counters.last_error = Some(why);
        if let Some(line) = self.chan(c).map(|ch| ch.line) {
            fx.raise(line);
        }
        fx.raise(self.line_error);
    }
}

impl Peripheral for Dmac {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
        self.triggered.iter_mut().for_each(|t| *t = false);
        self.stale_irq_due = false;
        self.counters = DmacCounters::default();
    }

    /// Only with `dmac-irq-pending-at-probe` armed: the bus then calls
    /// [`Peripheral::tick`] after every clock-controller write, where the fault watches the
    /// register clock.
    fn keeps_time(&self) -> bool {
        self.stale_irq
    }

    fn tick(&mut self, env: &Env, fx: &mut Effects) -> bool {
        if !self.stale_irq {
            return false;
        }
        if env.unmet(REGISTERS_CLOCKED).is_some() {
            self.stale_irq_due = true;
            return false;
        }
        if !std::mem::take(&mut self.stale_irq_due) {
            return false;
        }
        let st = self.get(0, |ch| ch.chstat) | CHSTAT_END;
        self.set(0, |ch| ch.chstat, st);
        if let Some(line) = self.chan(0).map(|ch| ch.line) {
            fx.raise(line);
        }
        self.counters.stale_interrupts += 1;
        fx.fire(Fault::DmacIrqPendingAtProbe);
        true
    }

    fn write(&mut self, reg: usize, value: u32, env: &Env, fx: &mut Effects) {
        if let Some(c) = self.chans.iter().position(|ch| ch.chctrl == reg) {
            self.command(c, value, env, fx);
            return;
        }
        self.regs.write(&self.registers, reg, value);
    }

    fn counters(&self) -> Option<Value> {
        serde_json::to_value(&self.counters).ok()
    }

    /// Registers, the channels triggered while suspended, whether the register clock was
    /// seen off (the fault `dmac-irq-pending-at-probe`), counters.
    fn save(&self) -> Value {
        save_with_parts(
            self.regs.save(),
            &[
                ("triggered", serde_json::to_value(&self.triggered)),
                ("stale_irq_due", serde_json::to_value(self.stale_irq_due)),
                ("counters", serde_json::to_value(&self.counters)),
            ],
        )
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        let mut regs = self.regs.clone();
        regs.load(state)?;
        let triggered: Vec<bool> = saved_part(state, "triggered")?;
        if triggered.len() != self.chans.len() {
            return Err(format!(
                "`triggered` has {} channels, the device {}",
                triggered.len(),
                self.chans.len()
            ));
        }
        let stale_irq_due: bool = saved_part(state, "stale_irq_due")?;
        let counters: DmacCounters = saved_part(state, "counters")?;
        self.regs = regs;
        self.triggered = triggered;
        self.stale_irq_due = stale_irq_due;
        self.counters = counters;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{GuestMemory, VecMemory};
    use crate::test_soc;

    const RAM: u64 = 0x4000_0000;
    const DESC: u32 = 0x4000_1000;
    const SRC: u32 = 0x4000_2000;
    const DST: u32 = 0x4000_8000;

    struct T {
        m: Dmac,
        mem: VecMemory,
    }

    fn dmac(faults: Vec<Fault>) -> T {
        let soc = test_soc();
        let dev = soc.device("dmac").expect("dmac in the SoC");
        let cfg = ModelConfig {
            faults,
            ..ModelConfig::default()
        };
        T {
            m: Dmac::new(dev, &cfg).expect("dmac builds"),
            mem: VecMemory::new(RAM, 0x10000),
        }
    }

    impl T {
        fn idx(&self, name: &str) -> usize {
            find(&self.m.registers, name).expect(name)
        }
        fn r(&self, name: &str) -> u32 {
            self.m.value(self.idx(name))
        }
        fn w(&mut self, name: &str, v: u32) -> Effects {
            let mut fx = Effects::default();
            let idx = self.idx(name);
            let env = Env::EMPTY.with_memory(&self.mem);
            self.m.write(idx, v, &env, &mut fx);
            fx
        }
        fn line(&self, name: &str) -> usize {
            let soc = test_soc();
            let dev = soc.device("dmac").expect("dmac");
            dev.interrupts
                .iter()
                .position(|l| l.name == name)
                .expect(name)
        }
        fn put(&self, at: u32, bytes: &[u8]) {
            self.mem.write(u64::from(at), bytes).expect("inside");
        }
        fn desc(&self, at: u32, words: [u32; 8]) {
            let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
            self.put(at, &bytes);
        }
        /// rz_dmac_enable_hw for a memcpy (rz-dmac.c:320-338, :427-450).
        fn start_memcpy(&mut self, ch: u32) -> Effects {
            self.w(&format!("NXLA{ch}"), DESC);
            self.w(&format!("CHCFG{ch}"), 0x8040_0008);
            self.w(&format!("CHCTRL{ch}"), CHCTRL_SWRST);
            self.w(&format!("CHCTRL{ch}"), CHCTRL_STG | CHCTRL_SETEN)
        }
    }

    fn pattern(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 7 + 3) as u8).collect()
    }

    fn memcpy_desc(t: &T, len: u32) {
        t.desc(
            DESC,
            [
                HEADER_LV | HEADER_LE,
                SRC,
                DST,
                len,
                0x8040_0008,
                0,
                0,
                DESC + 32,
            ],
        );
    }

    #[test]
    fn probe_defaults_leave_every_channel_idle() {
        let mut t = dmac(vec![]);
        // rz_dmac_disable_hw at probe (CHCTRL_DEFAULT), DCTRL_DEFAULT.
        let fx = t.w("CHCTRL0", 0x0002_027a);
        assert!(fx.is_empty());
        t.w("DCTRL0", 0x3);
        assert_eq!(t.r("DCTRL0"), 0x3);
        assert_eq!(t.r("CHSTAT0"), 0);
        assert_eq!(t.r("CHCTRL0"), 0, "CHCTRL reads 0");
    }

    #[test]
    fn memcpy_copies_ends_and_raises_the_channel_line() {
        let mut t = dmac(vec![]);
        let data = pattern(5000);
        t.put(SRC, &data);
        memcpy_desc(&t, 5000);
        let fx = t.start_memcpy(3);
        assert_eq!(t.mem.peek(u64::from(DST), 5000), data);
        let st = t.r("CHSTAT3");
        assert_eq!(st & CHSTAT_EN, 0, "a link end disables the channel");
        assert_ne!(st & CHSTAT_END, 0);
        assert_ne!(st & CHSTAT_TC, 0);
        assert_eq!(st & CHSTAT_ER, 0);
        assert_eq!(fx.raised().collect::<Vec<_>>(), vec![t.line("ch3")]);
        assert_eq!(t.r("CRTB3"), 0);
        assert_eq!(t.r("CRLA3"), DESC);
        assert_eq!(t.r("NXLA3"), DESC + 32, "NXLA loads the descriptor's next");
        assert_eq!(t.r("N0TB3"), 5000);
        assert_eq!(t.r("CRSA3"), SRC + 5000);
        // The header is written back with LV clear (no WBD).
        assert_eq!(t.mem.peek(u64::from(DESC), 4), (HEADER_LE).to_le_bytes());
        // The IRQ handler's CLREND clears END.
        t.w("CHCTRL3", CHCTRL_CLREND);
        assert_eq!(t.r("CHSTAT3") & CHSTAT_END, 0);
        assert_eq!(t.m.counters.bytes, 5000);
        assert_eq!(t.m.counters.transfers, 1);
    }

    #[test]
    fn a_chain_runs_to_its_link_end_with_one_interrupt() {
        let mut t = dmac(vec![]);
        t.put(SRC, &pattern(64));
        // Two descriptors: the first masks its end interrupt (DEM), as slave sg does.
        t.desc(
            DESC,
            [
                HEADER_LV,
                SRC,
                DST,
                32,
                0x8040_0008 | CHCFG_DEM,
                0,
                0,
                DESC + 32,
            ],
        );
        t.desc(
            DESC + 32,
            [
                HEADER_LV | HEADER_LE,
                SRC + 32,
                DST + 32,
                32,
                0x8040_0008,
                0,
                0,
                DESC,
            ],
        );
        let fx = t.start_memcpy(0);
        assert_eq!(t.mem.peek(u64::from(DST), 64), pattern(64));
        assert_eq!(fx.raised().count(), 1);
        assert_eq!(t.r("CRLA0"), DESC + 32);
        assert_eq!(t.m.counters.descriptors, 2);
    }

    #[test]
    fn wbd_keeps_the_header() {
        let mut t = dmac(vec![]);
        t.desc(
            DESC,
            [
                HEADER_LV | HEADER_LE | HEADER_WBD,
                SRC,
                DST,
                4,
                0x8040_0008,
                0,
                0,
                0,
            ],
        );
        t.start_memcpy(0);
        assert_eq!(
            t.mem.peek(u64::from(DESC), 4),
            (HEADER_LV | HEADER_LE | HEADER_WBD).to_le_bytes()
        );
    }

    #[test]
    fn masked_end_interrupt_sets_end_without_the_line() {
        let mut t = dmac(vec![]);
        memcpy_desc(&t, 16);
        t.w("CHCTRL1", CHCTRL_SETINTMSK);
        assert_ne!(t.r("CHSTAT1") & CHSTAT_INTMSK, 0);
        let fx = t.start_memcpy(1);
        assert_ne!(t.r("CHSTAT1") & CHSTAT_END, 0);
        assert_eq!(fx.raised().count(), 0);
        t.w("CHCTRL1", CHCTRL_CLRINTMSK);
        assert_eq!(t.r("CHSTAT1") & CHSTAT_INTMSK, 0);
    }

    #[test]
    fn no_software_trigger_waits_for_a_request() {
        let mut t = dmac(vec![]);
        memcpy_desc(&t, 16);
        t.w("NXLA2", DESC);
        t.w("CHCFG2", 0x8000_0000);
        let fx = t.w("CHCTRL2", CHCTRL_SETEN);
        assert!(fx.is_empty());
        assert_eq!(t.r("CHSTAT2") & CHSTAT_EN, CHSTAT_EN);
        // terminate_all: CHCTRL_DEFAULT disables it (CLREN, SWRST).
        t.w("CHCTRL2", 0x0002_027a);
        assert_eq!(t.r("CHSTAT2"), 0);
    }

    #[test]
    fn suspend_holds_a_trigger_until_resumed() {
        let mut t = dmac(vec![]);
        memcpy_desc(&t, 8);
        t.put(SRC, &pattern(8));
        t.w("NXLA4", DESC);
        t.w("CHCFG4", 0x8040_0008);
        t.w("CHCTRL4", CHCTRL_SETEN);
        t.w("CHCTRL4", CHCTRL_SETSUS);
        assert_ne!(t.r("CHSTAT4") & CHSTAT_SUS, 0);
        let fx = t.w("CHCTRL4", CHCTRL_STG);
        assert!(fx.is_empty(), "suspended: nothing moves");
        assert_eq!(t.mem.peek(u64::from(DST), 8), vec![0; 8]);
        // rz_dmac_device_resume_set writes CLRSUS | SETEN (rz-dmac.c:1136).
        let fx = t.w("CHCTRL4", CHCTRL_CLRSUS | CHCTRL_SETEN);
        assert_eq!(fx.raised().count(), 1);
        assert_eq!(t.mem.peek(u64::from(DST), 8), pattern(8));
    }

    #[test]
    fn a_descriptor_outside_memory_is_a_channel_error() {
        let mut t = dmac(vec![]);
        t.w("NXLA5", 0x1000);
        t.w("CHCFG5", 0x8040_0008);
        let fx = t.w("CHCTRL5", CHCTRL_STG | CHCTRL_SETEN);
        let st = t.r("CHSTAT5");
        assert_ne!(st & CHSTAT_ER, 0);
        assert_eq!(st & CHSTAT_EN, 0);
        let mut lines: Vec<usize> = fx.raised().collect();
        lines.sort_unstable();
        let mut want = vec![t.line("error"), t.line("ch5")];
        want.sort_unstable();
        assert_eq!(lines, want);
        let why = t.m.counters.last_error.clone().unwrap_or_default();
        assert!(why.contains("0x00001000"), "{why}");
        // The IRQ handler's rz_dmac_disable_hw clears it (SWRST).
        t.w("CHCTRL5", 0x0002_027a);
        assert_eq!(t.r("CHSTAT5"), 0);
    }

    #[test]
    fn a_copy_outside_memory_and_an_invalid_descriptor_are_errors() {
        let mut t = dmac(vec![]);
        t.desc(
            DESC,
            [HEADER_LV | HEADER_LE, 0x10, DST, 16, 0x8040_0008, 0, 0, 0],
        );
        t.start_memcpy(0);
        assert_ne!(t.r("CHSTAT0") & CHSTAT_ER, 0);
        t.desc(DESC, [0, SRC, DST, 16, 0x8040_0008, 0, 0, 0]);
        t.start_memcpy(0);
        assert_ne!(t.r("CHSTAT0") & CHSTAT_ER, 0);
        assert_eq!(t.m.counters.errors, 2);
    }

    #[test]
    fn register_mode_copies_n0tb_bytes() {
        let mut t = dmac(vec![]);
        t.put(SRC, &pattern(12));
        let regs = t.m.registers.clone();
        let i = |n: &str| find(&regs, n).expect(n);
        t.m.regs.set(i("N0SA6"), SRC);
        t.m.regs.set(i("N0DA6"), DST);
        t.m.regs.set(i("N0TB6"), 12);
        t.w("CHCFG6", 0);
        let fx = t.w("CHCTRL6", CHCTRL_STG | CHCTRL_SETEN);
        assert_eq!(t.mem.peek(u64::from(DST), 12), pattern(12));
        assert_eq!(fx.raised().count(), 1);
        assert_eq!(t.r("CHSTAT6") & CHSTAT_EN, 0);
    }

    #[test]
    fn channels_8_to_15_sit_at_0x400() {
        let t = dmac(vec![]);
        let soc = test_soc();
        let dev = soc.device("dmac").expect("dmac");
        let off = |n: &str| dev.register(n).map(|r| r.offset).expect(n);
        assert_eq!(off("CHSTAT8"), 0x424);
        assert_eq!(off("CHCTRL15"), 0x400 + 0x40 * 7 + 0x28);
        assert_eq!(off("DCTRL1"), 0x700);
        assert_eq!(off("DMARS7"), 0x1001c);
        assert_eq!(t.line("ch15"), 16);
    }

    #[test]
    fn stuck_fault_starts_but_never_ends() {
        let mut t = dmac(vec![Fault::DmacTransferStuck]);
        t.put(SRC, &pattern(16));
        memcpy_desc(&t, 16);
        let fx = t.start_memcpy(0);
        assert!(fx.fired(Fault::DmacTransferStuck));
        assert_eq!(fx.raised().count(), 0);
        assert_eq!(t.r("CHSTAT0") & (CHSTAT_EN | CHSTAT_END), CHSTAT_EN);
        assert_eq!(t.mem.peek(u64::from(DST), 16), vec![0; 16]);
        // terminate_all's CHCTRL_DEFAULT stops it: synchronize's EN poll ends.
        t.w("CHCTRL0", 0x0002_027a);
        assert_eq!(t.r("CHSTAT0") & CHSTAT_EN, 0);
    }

    /// The bus's call after a clock-controller write, with the register clock `on` or off.
    fn clock_tick(t: &mut T, on: bool) -> (bool, Effects) {
        let unmet = if on {
            vec![]
        } else {
            vec![(
                REGISTERS_CLOCKED.to_string(),
                "dmac_pclk is stopped".to_string(),
            )]
        };
        let mut fx = Effects::default();
        let changed = t.m.tick(&Env::new(unmet, vec![]), &mut fx);
        (changed, fx)
    }

    #[test]
    fn without_the_fault_the_clock_coming_on_raises_nothing() {
        let mut t = dmac(vec![]);
        assert!(!t.m.keeps_time(), "no tick is asked for");
        clock_tick(&mut t, false);
        let (changed, fx) = clock_tick(&mut t, true);
        assert!(!changed && fx.is_empty());
        assert_eq!(t.r("CHSTAT0"), 0);
    }

    #[test]
    fn stale_irq_is_pending_when_the_register_clock_comes_on() {
        let mut t = dmac(vec![Fault::DmacIrqPendingAtProbe]);
        assert!(t.m.keeps_time(), "the fault watches the clock through tick");
        let ch0 = t.line("ch0");
        // Clocked from the start (a restored guest with rz-dmac bound): nothing yet.
        let (changed, fx) = clock_tick(&mut t, true);
        assert!(!changed && fx.is_empty());
        // Off (unbind: runtime PM put), then on (the next probe's resume_and_get).
        let (changed, fx) = clock_tick(&mut t, false);
        assert!(!changed && fx.is_empty());
        let (changed, fx) = clock_tick(&mut t, true);
        assert!(changed);
        assert_eq!(fx.raised().collect::<Vec<_>>(), vec![ch0]);
        assert!(fx.fired(Fault::DmacIrqPendingAtProbe));
        assert_eq!(t.r("CHSTAT0") & CHSTAT_END, CHSTAT_END);
        assert_eq!(t.r("CHSTAT1"), 0, "channel 0 only");
        // Once per off -> on: further writes with the clock on raise nothing.
        let (changed, fx) = clock_tick(&mut t, true);
        assert!(!changed && fx.is_empty());
        assert_eq!(t.m.counters.stale_interrupts, 1);
        // rz_dmac_disable_hw's CHCTRL_DEFAULT (SWRST, CLREND) clears the left-over end.
        t.w("CHCTRL0", 0x0002_027a);
        assert_eq!(t.r("CHSTAT0") & CHSTAT_END, 0);
        clock_tick(&mut t, false);
        let (_, fx) = clock_tick(&mut t, true);
        assert!(
            fx.fired(Fault::DmacIrqPendingAtProbe),
            "again at the next probe"
        );
        assert_eq!(t.m.counters.stale_interrupts, 2);
    }

    #[test]
    fn stale_irq_needs_its_condition() {
        let soc = test_soc();
        let mut dev = soc.device("dmac").expect("dmac").clone();
        dev.conditions.retain(|(n, _)| n != REGISTERS_CLOCKED);
        let armed = ModelConfig {
            faults: vec![Fault::DmacIrqPendingAtProbe],
            ..ModelConfig::default()
        };
        let err = Dmac::new(&dev, &armed).expect_err("refused");
        assert_eq!(err.key, "conditions");
        assert!(err.message.contains(REGISTERS_CLOCKED), "{}", err.message);
        assert!(
            Dmac::new(&dev, &ModelConfig::default()).is_ok(),
            "needed only when armed"
        );
    }

    #[test]
    fn a_restored_model_remembers_the_clock_was_off() {
        let mut t = dmac(vec![Fault::DmacIrqPendingAtProbe]);
        clock_tick(&mut t, false);
        let saved = t.m.save();
        let mut u = dmac(vec![Fault::DmacIrqPendingAtProbe]);
        u.m.load(&saved).expect("loads");
        let (_, fx) = clock_tick(&mut u, true);
        assert!(fx.fired(Fault::DmacIrqPendingAtProbe));
    }

    #[test]
    fn save_and_load_keep_registers_triggers_and_counters() {
        let mut t = dmac(vec![]);
        memcpy_desc(&t, 8);
        t.start_memcpy(0);
        t.w("CHCTRL1", CHCTRL_SETEN);
        t.w("CHCTRL1", CHCTRL_SETSUS);
        t.w("CHCTRL1", CHCTRL_STG);
        let saved = t.m.save();
        let mut u = dmac(vec![]);
        u.m.load(&saved).expect("loads");
        assert_eq!(u.m, t.m);
        assert!(u.m.load(&serde_json::json!({"registers": []})).is_err());
        u.m.reset();
        assert_eq!(u.r("CHSTAT0"), 0);
        assert!(!u.m.is_triggered(1));
    }
}
