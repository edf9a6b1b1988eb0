//! The RZ/G3S serial communication interface with FIFO (SCIF, `sh-sci`), its TX pin wired
//! back to its RX pin on the host side: every byte the guest transmits is received again.
//!
//! The G3S SCIF (`renesas,scif-r9a08g045`, falling back to `renesas,scif-r9a07g044`) is
//! the RZ/G2L one: sh-sci.c `of_sci_scif_rz_scifa`, port type PORT_SCIF with register
//! layout SCIx_RZ_SCIFA_REGTYPE (sh-sci.c:431-453): SCSMR 0x00/16, SCBRR 0x02/8, SCSCR
//! 0x04/16, SCFTDR 0x06/8, SCFSR 0x08/16, SCFRDR 0x0a/8, SCFCR 0x0c/16, SCFDR 0x0e/16,
//! SCSPTR 0x10/16, SCLSR 0x12/16 (overrun), SEMR 0x14/8; 16-byte FIFOs. The SoC description
//! declares the 32-bit words and names each register as a field of its word (8 or 16 bits
//! wide); the model finds them by those names and learns from the bus which bytes a store
//! or load covered ([`Peripheral::write_lanes`], [`Peripheral::after_read_lanes`]).
//!
//! The wire: the transmitter (SCSCR.TE, SCFCR.TFRST clear) sends what SCFTDR queued at once,
//! within the guest's store, into the receive FIFO (SCSCR.RE, SCFCR.RFRST clear; with RE
//! clear the byte is lost on the line). Time is not modelled, so the rate is bounded by the
//! receiver instead: a byte leaves the transmit FIFO only while the receive FIFO has room
//! (16 bytes), and the rest waits in the transmit FIFO (SCFDR's T count) until a read of
//! SCFRDR makes room. A real loopback at any baud rate overruns only when the CPU leaves
//! the receive FIFO full for a character time; here it never does by itself (fault
//! `scif-rx-overrun` makes it happen once).
//!
//! SCFSR (SCIF_* in sh-sci.c:143-150): TDFE is set while the transmit FIFO holds no more
//! than the SCFCR.TTRG level (8, 4, 2, 0), TEND while it is empty, RDF while the receive
//! FIFO holds at least the SCFCR.RTRG level (1, 4, 8, 14), DR while it holds fewer bytes
//! than that and the line is idle (the 1.5-frame receive timeout, with time compressed to
//! "nothing more is coming": the transmit FIFO is empty). Each flag stays set until the
//! guest writes 0 to it, and a flag whose condition still holds is set again at once (as
//! the hardware does). ER, BRK, FER and PER never set (the loopback has no line errors).
//! SCLSR.ORER and TO are cleared by writing 0. SCFDR counts both FIFOs (T in 12:8, R in
//! 4:0); SCFCR.TFRST/RFRST empty them (and keep them empty while set). SCSMR, SCBRR, SEMR
//! and SCSPTR are kept as written (sci_set_termios programs them; the bit rate does not
//! change what the wire does); SCFCR.LOOP changes nothing (the loop is always there).
//!
//! Interrupts, all level-high (r9a08g045.dtsi): eri = ER|FER|PER with RIE or REIE, rxi =
//! RDF & RIE, txi = TDFE & TIE, bri = BRK|ORER with RIE or REIE, dri = DR & RIE, tei = TEND &
//! TEIE. On the G3S dri and tei are one SoC SPI; lines that share a virt SPI are driven as
//! one (their OR). A level line is raised again at every model call while it is high (the
//! GIC clears the pending bit when the guest acknowledges it, so a level the handler left
//! high must pend again) and withdrawn when it falls. sh-sci requests one handler per
//! distinct irq (sci_request_irq): eri -> sci_er_interrupt, rxi and dri -> sci_rx_interrupt,
//! txi -> sci_tx_interrupt, bri -> sci_br_interrupt; tei shares dri's and is never requested.
//!
//! Left out: the module reset does not reset the registers (sci_set_termios resets the
//! FIFOs and flags at every open), break generation (SCSPTR.SPB2DT), modem control
//! (SCFCR.MCE, RTS/CTS), framing and parity (SCSMR.CHR/PE: 8N1 and 7-bit frames carry the
//! byte as written), clock-synchronous mode and DMA (the node has no `dmas`).

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Fault, ModelConfig};
use crate::device::{save_with_parts, saved_part, BuildError, Effects, Env, Peripheral};
use crate::regs::{field_mask, RegFile, Register, SubReg};
use crate::soc::Device;

/// The registry name of this model.
pub const MODEL: &str = "scif";

/// FIFO depth, each direction (sh-sci.c:445 `.fifosize = 16`).
pub const FIFO: usize = 16;

pub const SCSCR_TIE: u16 = 1 << 7;
pub const SCSCR_RIE: u16 = 1 << 6;
pub const SCSCR_TE: u16 = 1 << 5;
pub const SCSCR_RE: u16 = 1 << 4;
pub const SCSCR_REIE: u16 = 1 << 3;
pub const SCSCR_TEIE: u16 = 1 << 2;

pub const SCFSR_ER: u16 = 1 << 7;
pub const SCFSR_TEND: u16 = 1 << 6;
pub const SCFSR_TDFE: u16 = 1 << 5;
pub const SCFSR_BRK: u16 = 1 << 4;
pub const SCFSR_FER: u16 = 1 << 3;
pub const SCFSR_PER: u16 = 1 << 2;
pub const SCFSR_RDF: u16 = 1 << 1;
pub const SCFSR_DR: u16 = 1 << 0;
/// The flags software clears by writing 0 (writing 1 leaves them).
const SCFSR_FLAGS: u16 = 0xff;

pub const SCFCR_RTRG: u16 = 3 << 6;
pub const SCFCR_TTRG: u16 = 3 << 4;
pub const SCFCR_TFRST: u16 = 1 << 2;
pub const SCFCR_RFRST: u16 = 1 << 1;

pub const SCLSR_TO: u16 = 1 << 2;
pub const SCLSR_ORER: u16 = 1 << 0;

/// The registers of the RZ/G2L layout, in [`NAMES`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum R {
    Scsmr,
    Scbrr,
    Scscr,
    Scftdr,
    Scfsr,
    Scfrdr,
    Scfcr,
    Scfdr,
    Scsptr,
    Sclsr,
    Semr,
}

const NAMES: [(R, &str, u32); 11] = [
    (R::Scsmr, "SCSMR", 16),
    (R::Scbrr, "SCBRR", 8),
    (R::Scscr, "SCSCR", 16),
    (R::Scftdr, "SCFTDR", 8),
    (R::Scfsr, "SCFSR", 16),
    (R::Scfrdr, "SCFRDR", 8),
    (R::Scfcr, "SCFCR", 16),
    (R::Scfdr, "SCFDR", 16),
    (R::Scsptr, "SCSPTR", 16),
    (R::Sclsr, "SCLSR", 16),
    (R::Semr, "SEMR", 8),
];

/// The interrupt lines by their DT names; shared lines (one virt SPI) are driven together.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Lines {
    eri: Option<usize>,
    rxi: usize,
    txi: usize,
    bri: Option<usize>,
    dri: Option<usize>,
    tei: Option<usize>,
    /// Per line index: the first line with the same virt SPI (itself when not shared).
    group: Vec<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Layout {
    regs: [SubReg; 11],
    lines: Lines,
}

impl Layout {
    fn resolve(dev: &Device) -> Result<Layout, BuildError> {
        let mut regs = [SubReg { word: 0, mask: 0 }; 11];
        for (i, (_, name, width)) in NAMES.iter().enumerate() {
            let found = dev.registers.iter().enumerate().find_map(|(w, r)| {
                r.fields
                    .iter()
                    .find(|f| f.name == *name)
                    .map(|f| (w, r.name.as_str(), f.lsb, f.width))
            });
            let Some((word, reg, lsb, got)) = found else {
                return Err(BuildError::new(
                    "registers",
                    format!("the {MODEL} model needs a register {name}: a {width}-bit field named {name} of the register word that holds it"),
                ));
            };
            if got != *width || lsb % 8 != 0 || lsb + got > 32 {
                return Err(BuildError::new(
                    "registers",
                    format!("the {MODEL} model needs {name} (in {reg}) as {width} bits on a byte boundary (got lsb {lsb}, width {got})"),
                ));
            }
            if let Some(slot) = regs.get_mut(i) {
                *slot = SubReg {
                    word,
                    mask: field_mask(lsb, got),
                };
            }
        }
        let line = |name: &str| dev.interrupts.iter().position(|l| l.name == name);
        let need = |name: &str| {
            line(name).ok_or_else(|| {
                BuildError::new(
                    "interrupts",
                    format!("the {MODEL} model needs interrupt lines named `rxi` and `txi` (sh-sci's receive and transmit interrupts; eri, bri, dri, tei are optional); `{name}` is missing"),
                )
            })
        };
        let group = dev
            .interrupts
            .iter()
            .enumerate()
            .map(|(i, l)| {
                dev.interrupts
                    .iter()
                    .position(|o| o.spi == l.spi)
                    .unwrap_or(i)
            })
            .collect();
        let lines = Lines {
            eri: line("eri"),
            rxi: need("rxi")?,
            txi: need("txi")?,
            bri: line("bri"),
            dri: line("dri"),
            tei: line("tei"),
            group,
        };
        Ok(Layout { regs, lines })
    }

    fn at(&self, r: R) -> SubReg {
        self.regs
            .get(r as usize)
            .copied()
            .unwrap_or(SubReg { word: 0, mask: 0 })
    }
}

/// The FIFOs and the wire (all of it goes into a snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fifos {
    /// Queued by SCFTDR writes, not yet on the wire.
    pub tx: VecDeque<u8>,
    /// Received, not yet read from SCFRDR.
    pub rx: VecDeque<u8>,
    /// The level lines as last signalled (bit = line index of the group's first line).
    pub levels: u32,
    /// Fault `scif-rx-overrun` has dropped its byte.
    pub overrun_done: bool,
}

/// The SCIF's counters (the summary event's `counters.<device>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScifCounters {
    /// Bytes that went out on the wire.
    pub bytes_sent: u64,
    /// Bytes that arrived in the receive FIFO.
    pub bytes_received: u64,
    /// Bytes read from SCFRDR.
    pub bytes_read: u64,
    /// Bytes the receiver was off for (RE clear) or the fault dropped.
    pub bytes_lost: u64,
    /// SCFTDR writes with the transmit FIFO full (dropped).
    pub tx_fifo_full: u64,
    /// FIFO resets (SCFCR.TFRST / RFRST written 1).
    pub fifo_resets: u64,
    /// Overruns reported (SCLSR.ORER set).
    pub overruns: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scif {
    registers: Vec<Register>,
    regs: RegFile,
    layout: Layout,
    fifos: Fifos,
    counters: ScifCounters,
    /// Fault `scif-rx-overrun` armed: the 20th byte received finds the FIFO "full".
    overrun_fault: bool,
}

/// Which received byte the `scif-rx-overrun` fault drops (1-based): past one FIFO's worth,
/// so the receive path has run a few times before.
pub const OVERRUN_AT: u64 = 20;

impl Scif {
    pub fn new(dev: &Device, cfg: &ModelConfig) -> Result<Scif, BuildError> {
        let layout = Layout::resolve(dev)?;
        Ok(Scif {
            registers: dev.registers.clone(),
            regs: RegFile::new(&dev.registers),
            layout,
            fifos: Fifos::default(),
            counters: ScifCounters::default(),
            overrun_fault: cfg.armed(Fault::ScifRxOverrun),
        })
    }

    pub fn registers(&self) -> &[Register] {
        &self.registers
    }

    pub fn counters(&self) -> &ScifCounters {
        &self.counters
    }

    pub fn fifos(&self) -> &Fifos {
        &self.fifos
    }

    fn get(&self, r: R) -> u16 {
        let at = self.layout.at(r);
        at.of(self.regs.get(at.word)) as u16
    }

    fn set(&mut self, r: R, v: u16) {
        let at = self.layout.at(r);
        self.regs
            .set(at.word, at.with(self.regs.get(at.word), u32::from(v)));
    }

    fn scr(&self, bit: u16) -> bool {
        self.get(R::Scscr) & bit != 0
    }

    fn rtrg(&self) -> usize {
        [1, 4, 8, 14][usize::from((self.get(R::Scfcr) & SCFCR_RTRG) >> 6)]
    }

    fn ttrg(&self) -> usize {
        [8, 4, 2, 0][usize::from((self.get(R::Scfcr) & SCFCR_TTRG) >> 4)]
    }

    /// One register written with `v` (already cut to its width).
    fn write_reg(&mut self, r: R, v: u16) {
        match r {
            R::Scftdr => {
                self.set(R::Scftdr, v & 0xff);
                if self.get(R::Scfcr) & SCFCR_TFRST != 0 {
                    return;
                }
                if self.fifos.tx.len() < FIFO {
                    self.fifos.tx.push_back((v & 0xff) as u8);
                    // Data written: the transmission has not ended.
                    let sr = self.get(R::Scfsr) & !SCFSR_TEND;
                    self.set(R::Scfsr, sr);
                } else {
                    self.counters.tx_fifo_full += 1;
                }
            }
            R::Scfsr => {
                // Writing 0 clears a flag, 1 leaves it; the counts above bit 7 are read-only.
                let old = self.get(R::Scfsr);
                self.set(R::Scfsr, old & (v | !SCFSR_FLAGS));
            }
            R::Sclsr => {
                let old = self.get(R::Sclsr);
                self.set(R::Sclsr, old & v & (SCLSR_ORER | SCLSR_TO));
            }
            R::Scfcr => {
                if v & SCFCR_TFRST != 0 {
                    self.fifos.tx.clear();
                }
                if v & SCFCR_RFRST != 0 {
                    self.fifos.rx.clear();
                }
                if v & (SCFCR_TFRST | SCFCR_RFRST) != 0 {
                    self.counters.fifo_resets += 1;
                }
                self.set(R::Scfcr, v);
            }
            // Read-only counts.
            R::Scfdr => {}
            // The receive register: a write changes nothing.
            R::Scfrdr => {}
            R::Scsmr | R::Scbrr | R::Scscr | R::Scsptr | R::Semr => self.set(r, v),
        }
    }

    /// Moves bytes from the transmit FIFO over the wire into the receive FIFO while the
    /// receiver has room; a receiver that is off loses them.
    fn pump(&mut self, fx: &mut Effects) {
        let fcr = self.get(R::Scfcr);
        if !self.scr(SCSCR_TE) || fcr & SCFCR_TFRST != 0 {
            return;
        }
        let receiving = self.scr(SCSCR_RE) && fcr & SCFCR_RFRST == 0;
        while let Some(&b) = self.fifos.tx.front() {
            if receiving && self.fifos.rx.len() >= FIFO {
                break;
            }
            self.fifos.tx.pop_front();
            self.counters.bytes_sent += 1;
            if !receiving {
                self.counters.bytes_lost += 1;
                continue;
            }
            let nth = self.counters.bytes_received + self.counters.bytes_lost + 1;
            if self.overrun_fault && !self.fifos.overrun_done && nth >= OVERRUN_AT {
                // The byte arrives at a receive FIFO the fault calls full: lost, ORER.
                self.fifos.overrun_done = true;
                self.counters.bytes_lost += 1;
                self.counters.overruns += 1;
                let lsr = self.get(R::Sclsr) | SCLSR_ORER;
                self.set(R::Sclsr, lsr);
                fx.fire(Fault::ScifRxOverrun);
                continue;
            }
            self.fifos.rx.push_back(b);
            self.counters.bytes_received += 1;
        }
    }

    /// The wire moves, the flags whose conditions hold are set, SCFDR and SCFRDR show the
    /// FIFOs, and the interrupt lines follow. `idle`: the access was not an SCFTDR store,
    /// so a line with an empty transmit FIFO has gone quiet (DR may set); while the guest
    /// is still feeding SCFTDR, more data is on its way.
    fn settle(&mut self, idle: bool, fx: &mut Effects) {
        self.pump(fx);
        let (t, r) = (self.fifos.tx.len(), self.fifos.rx.len());
        let mut sr = self.get(R::Scfsr);
        if t <= self.ttrg() {
            sr |= SCFSR_TDFE;
        }
        if t == 0 {
            sr |= SCFSR_TEND;
        }
        let rtrg = self.rtrg();
        if r >= rtrg {
            sr |= SCFSR_RDF;
        }
        if idle && r > 0 && r < rtrg && (t == 0 || !self.scr(SCSCR_TE)) {
            sr |= SCFSR_DR;
        }
        self.set(R::Scfsr, sr);
        self.set(R::Scfdr, ((t as u16) << 8) | r as u16);
        if let Some(&b) = self.fifos.rx.front() {
            self.set(R::Scfrdr, u16::from(b));
        }
        self.signal(fx);
    }

    /// The lines high now (bit = line index), before grouping.
    fn levels(&self) -> u32 {
        let sr = self.get(R::Scfsr);
        let lsr = self.get(R::Sclsr);
        let rie = self.scr(SCSCR_RIE);
        let err_en = rie || self.scr(SCSCR_REIE);
        let l = &self.layout.lines;
        let conds = [
            (
                l.eri,
                sr & (SCFSR_ER | SCFSR_FER | SCFSR_PER) != 0 && err_en,
            ),
            (Some(l.rxi), sr & SCFSR_RDF != 0 && rie),
            (Some(l.txi), sr & SCFSR_TDFE != 0 && self.scr(SCSCR_TIE)),
            (
                l.bri,
                (sr & SCFSR_BRK != 0 || lsr & SCLSR_ORER != 0) && err_en,
            ),
            (l.dri, sr & SCFSR_DR != 0 && rie),
            (l.tei, sr & SCFSR_TEND != 0 && self.scr(SCSCR_TEIE)),
        ];
        conds
            .iter()
            .filter(|(_, high)| *high)
            .filter_map(|(line, _)| *line)
            .filter(|&line| line < 32)
            .map(|line| l.group.get(line).copied().unwrap_or(line))
            .fold(0, |acc, line| acc | (1 << line))
    }

    /// Raises every high line (again: the guest's acknowledge cleared its pending bit),
    /// withdraws those that fell.
    fn signal(&mut self, fx: &mut Effects) {
        let now = self.levels();
        let was = self.fifos.levels;
        for line in 0..32usize {
            let bit = 1u32 << line;
            if now & bit != 0 {
                fx.raise(line);
            } else if was & bit != 0 {
                fx.lower(line);
            }
        }
        self.fifos.levels = now;
    }
}

impl Peripheral for Scif {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
        self.fifos = Fifos::default();
        self.counters = ScifCounters::default();
    }

    fn write(&mut self, reg: usize, value: u32, env: &Env, fx: &mut Effects) {
        self.write_lanes(reg, value, 0xf, env, fx);
    }

    fn write_lanes(&mut self, reg: usize, value: u32, lanes: u8, _env: &Env, fx: &mut Effects) {
        let mut hit = false;
        for (r, _, _) in NAMES {
            let at = self.layout.at(r);
            if !at.hit_by(reg, lanes) {
                continue;
            }
            hit = true;
            let v = at.of(value) as u16;
            self.write_reg(r, v);
        }
        if !hit {
            // A word the model gives no behaviour: kept as written.
            self.regs.write(&self.registers, reg, value);
        }
        let tdr = self.layout.at(R::Scftdr);
        let feeding = tdr.hit_by(reg, lanes);
        self.settle(!feeding, fx);
    }

    fn watches_reads(&self) -> bool {
        true
    }

    fn after_read(&mut self, reg: usize, env: &Env, fx: &mut Effects) -> bool {
        self.after_read_lanes(reg, 0xf, env, fx)
    }

    fn after_read_lanes(&mut self, reg: usize, lanes: u8, _env: &Env, fx: &mut Effects) -> bool {
        let at = self.layout.at(R::Scfrdr);
        if !at.hit_by(reg, lanes) {
            return false;
        }
        let before = self.regs.clone();
        if self.fifos.rx.pop_front().is_some() {
            self.counters.bytes_read += 1;
        }
        self.settle(true, fx);
        self.regs != before
    }

    fn counters(&self) -> Option<Value> {
        serde_json::to_value(&self.counters).ok()
    }

    /// Registers, both FIFOs, the signalled levels, counters.
    fn save(&self) -> Value {
        save_with_parts(
            self.regs.save(),
            &[
                ("fifos", serde_json::to_value(&self.fifos)),
                ("counters", serde_json::to_value(&self.counters)),
            ],
        )
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        let fifos: Fifos = saved_part(state, "fifos")?;
        let counters: ScifCounters = saved_part(state, "counters")?;
        if fifos.tx.len() > FIFO || fifos.rx.len() > FIFO {
            return Err(format!(
                "FIFOs of {} and {} bytes saved (at most {FIFO})",
                fifos.tx.len(),
                fifos.rx.len()
            ));
        }
        let mut regs = self.regs.clone();
        regs.load(state)?;
        self.regs = regs;
        self.fifos = fifos;
        self.counters = counters;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_soc;

    struct T {
        scif: Scif,
        fx: Effects,
    }

    impl T {
        fn with(faults: Vec<Fault>) -> T {
            let soc = test_soc();
            let dev = soc.device("scif3").expect("scif3");
            let cfg = ModelConfig {
                faults,
                ..ModelConfig::default()
            };
            T {
                scif: Scif::new(dev, &cfg).expect("scif builds"),
                fx: Effects::default(),
            }
        }
        fn new() -> T {
            T::with(Vec::new())
        }
        fn at(&self, name: &str) -> SubReg {
            let (r, _, _) = NAMES.iter().find(|(_, n, _)| *n == name).expect("name");
            self.scif.layout.at(*r)
        }
        /// A store of exactly register `name` (an 8- or 16-bit access).
        fn w(&mut self, name: &str, v: u16) {
            let at = self.at(name);
            let value = at.with(self.scif.regs.get(at.word), u32::from(v));
            self.fx.clear();
            self.scif
                .write_lanes(at.word, value, at.lanes(), &Env::EMPTY, &mut self.fx);
        }
        /// A load of exactly register `name`: the value the guest sees.
        fn r(&mut self, name: &str) -> u16 {
            let at = self.at(name);
            let v = at.of(self.scif.regs.get(at.word)) as u16;
            self.fx.clear();
            self.scif
                .after_read_lanes(at.word, at.lanes(), &Env::EMPTY, &mut self.fx);
            v
        }
        fn line(&self, name: &str) -> usize {
            let l = &self.scif.layout.lines;
            let i = match name {
                "rxi" => l.rxi,
                "txi" => l.txi,
                "eri" => l.eri.expect("eri"),
                "bri" => l.bri.expect("bri"),
                "dri" => l.dri.expect("dri"),
                "tei" => l.tei.expect("tei"),
                _ => panic!("{name}"),
            };
            l.group.get(i).copied().unwrap_or(i)
        }
        fn raised(&self, name: &str) -> bool {
            let line = self.line(name);
            self.fx.raised().any(|l| l == line)
        }
        fn lowered(&self, name: &str) -> bool {
            let line = self.line(name);
            self.fx.lowered().any(|l| l == line)
        }
        /// sci_set_termios as the driver runs it (sci_reset, then TE|RE, then RIE).
        fn open(&mut self) {
            self.w("SCSCR", 0);
            self.w("SCFCR", SCFCR_RFRST | SCFCR_TFRST);
            self.w(
                "SCFSR",
                (SCFSR_DR | SCFSR_RDF | SCFSR_PER | SCFSR_FER | SCFSR_ER | SCFSR_BRK) ^ 0xffff,
            );
            let lsr = self.r("SCLSR");
            self.w("SCLSR", lsr & !(SCLSR_TO | SCLSR_ORER));
            self.w("SCFCR", 1 << 7); // set_rtrg(8): RTRG1
            self.w("SEMR", 0);
            self.w("SCSCR", 0);
            self.w("SCSMR", 0);
            self.w("SCBRR", 26);
            let sptr = self.r("SCSPTR");
            self.w("SCSPTR", (sptr | 0x80 | 0x40) & !(0x20 | 0x08));
            let fcr = self.r("SCFCR");
            self.w("SCFCR", fcr & !(SCFCR_RFRST | SCFCR_TFRST));
            self.w("SCSCR", SCSCR_TE | SCSCR_RE);
            let scr = self.r("SCSCR");
            self.w("SCSCR", scr | SCSCR_RIE);
        }
        fn fdr(&mut self) -> (u16, u16) {
            let v = self.r("SCFDR");
            (v >> 8, v & 0x1f)
        }
    }

    #[test]
    fn layout_is_the_rz_scifa_regtype_and_dri_shares_tei() {
        let t = T::new();
        let offset = |name: &str| {
            let at = t.at(name);
            t.scif.registers[at.word].offset + at.shift() / 8
        };
        for (name, off) in [
            ("SCSMR", 0x00),
            ("SCBRR", 0x02),
            ("SCSCR", 0x04),
            ("SCFTDR", 0x06),
            ("SCFSR", 0x08),
            ("SCFRDR", 0x0a),
            ("SCFCR", 0x0c),
            ("SCFDR", 0x0e),
            ("SCSPTR", 0x10),
            ("SCLSR", 0x12),
            ("SEMR", 0x14),
        ] {
            assert_eq!(offset(name), off, "{name}");
        }
        let soc = test_soc();
        let dev = soc.device("scif3").expect("scif3");
        let spi = |n: &str| dev.interrupts.iter().find(|l| l.name == n).map(|l| l.spi);
        assert_eq!(spi("dri"), spi("tei"), "one SoC SPI, one virt SPI");
        let mut spis: Vec<u32> = dev.interrupts.iter().map(|l| l.spi).collect();
        spis.dedup();
        assert_eq!(spis.len(), 5);
        assert_eq!(t.line("tei"), t.line("dri"));
        // Reset values: SCBRR 0xff, SCFSR TEND|TDFE.
        let mut t = T::new();
        assert_eq!(t.r("SCBRR"), 0xff);
        assert_eq!(t.r("SCFSR"), SCFSR_TEND | SCFSR_TDFE);
    }

    #[test]
    fn bytes_written_come_back_through_the_receive_fifo() {
        let mut t = T::new();
        t.open();
        for b in b"rzgate" {
            t.w("SCFTDR", u16::from(*b));
        }
        // Six bytes, trigger 8: no RDF, and no DR while the guest feeds SCFTDR.
        assert!(!t.raised("dri") && !t.raised("rxi"));
        assert_eq!(t.r("SCFSR") & (SCFSR_RDF | SCFSR_DR), 0);
        // The guest moves on (sci_transmit_chars clears TDFE): the line is idle, DR, dri.
        t.w("SCFSR", !SCFSR_TDFE);
        assert!(t.raised("dri") && !t.raised("rxi"));
        assert_eq!(t.fdr(), (0, 6));
        let sr = t.r("SCFSR");
        assert_eq!(sr & (SCFSR_RDF | SCFSR_DR), SCFSR_DR);
        assert!(sr & SCFSR_TEND != 0 && sr & SCFSR_TDFE != 0);
        let mut got = Vec::new();
        for _ in 0..6 {
            got.push(t.r("SCFRDR") as u8);
        }
        assert_eq!(got, b"rzgate");
        assert_eq!(t.fdr(), (0, 0));
        // The driver clears RDF|DR: DR stays clear with the FIFO empty, dri withdrawn.
        t.w("SCFSR", !(SCFSR_DR | SCFSR_RDF));
        assert!(t.lowered("dri"));
        assert_eq!(t.r("SCFSR") & SCFSR_DR, 0);
        assert_eq!(t.scif.counters().bytes_read, 6);
    }

    #[test]
    fn rdf_at_the_trigger_level_and_rxi_until_cleared_below_it() {
        let mut t = T::new();
        t.open();
        for b in 0..8u16 {
            t.w("SCFTDR", b);
        }
        assert!(t.raised("rxi"));
        assert!(t.r("SCFSR") & SCFSR_RDF != 0);
        // Clearing RDF with 8 bytes still there: set again at once (still at the trigger).
        t.w("SCFSR", !SCFSR_RDF);
        assert!(t.raised("rxi"));
        assert!(t.r("SCFSR") & SCFSR_RDF != 0);
        for _ in 0..8 {
            t.r("SCFRDR");
        }
        t.w("SCFSR", !(SCFSR_RDF | SCFSR_DR));
        assert!(t.lowered("rxi"));
        assert_eq!(t.r("SCFSR") & SCFSR_RDF, 0);
        // Trigger levels 1, 4, 8, 14 (RTRG 00..11).
        for (rtrg, level) in [(0u16, 1usize), (1, 4), (2, 8), (3, 14)] {
            t.w("SCFCR", rtrg << 6);
            assert_eq!(t.scif.rtrg(), level);
        }
    }

    #[test]
    fn the_transmit_fifo_waits_for_room_in_the_receive_fifo() {
        let mut t = T::new();
        t.open();
        for b in 0..20u16 {
            t.w("SCFTDR", b);
        }
        assert_eq!(t.fdr(), (4, 16), "16 received, 4 wait on the wire");
        let sr = t.r("SCFSR");
        assert!(sr & SCFSR_TDFE != 0, "4 <= TTRG 8");
        assert_eq!(sr & SCFSR_TEND, 0, "not ended: data waits");
        assert_eq!(sr & SCFSR_DR, 0, "more is coming");
        // TXI only with TIE (sci_start_tx).
        let scr = t.r("SCSCR");
        t.w("SCSCR", scr | SCSCR_TIE);
        assert!(t.raised("txi"));
        assert!(!t.raised("dri"), "RDF, not DR: 16 >= trigger");
        // A 17th byte in a full transmit FIFO is dropped.
        for b in 0..12u16 {
            t.w("SCFTDR", 100 + b);
        }
        assert_eq!(t.fdr(), (16, 16));
        t.w("SCFTDR", 0xee);
        assert_eq!(t.scif.counters().tx_fifo_full, 1);
        // Reads make room: everything arrives in order.
        let mut got = Vec::new();
        for _ in 0..32 {
            got.push(t.r("SCFRDR"));
        }
        let want: Vec<u16> = (0..20).chain(100..112).collect();
        assert_eq!(got, want);
        assert_eq!(t.fdr(), (0, 0));
        assert!(t.r("SCFSR") & SCFSR_TEND != 0);
        // TIE cleared (sci_stop_tx): txi withdrawn.
        let scr = t.r("SCSCR");
        t.w("SCSCR", scr & !SCSCR_TIE);
        assert!(t.lowered("txi"));
    }

    #[test]
    fn tdfe_follows_the_transmit_trigger_and_write_zero_clears_only_when_false() {
        let mut t = T::new();
        t.open();
        // TE off: the transmitter holds what is queued.
        t.w("SCSCR", SCSCR_RE);
        for b in 0..10u16 {
            t.w("SCFTDR", b);
        }
        assert_eq!(t.fdr(), (10, 0));
        t.w("SCFSR", !(SCFSR_TDFE | SCFSR_TEND));
        let sr = t.r("SCFSR");
        assert_eq!(sr & (SCFSR_TDFE | SCFSR_TEND), 0, "10 > TTRG 8: cleared");
        // TTRG = 0 bytes (11): still above.
        t.w("SCFCR", 3 << 4);
        assert_eq!(t.r("SCFSR") & SCFSR_TDFE, 0);
        // TE on: the FIFO drains, TDFE and TEND set again.
        t.w("SCSCR", SCSCR_RE | SCSCR_TE);
        assert_eq!(t.fdr(), (0, 10));
        assert_eq!(
            t.r("SCFSR") & (SCFSR_TDFE | SCFSR_TEND),
            SCFSR_TDFE | SCFSR_TEND
        );
        // Writing 1 leaves a flag.
        t.w("SCFSR", 0xffff);
        assert!(t.r("SCFSR") & SCFSR_TEND != 0);
    }

    #[test]
    fn fifo_resets_and_a_receiver_that_is_off() {
        let mut t = T::new();
        t.open();
        for b in 0..5u16 {
            t.w("SCFTDR", b);
        }
        t.w("SCFCR", SCFCR_RFRST);
        assert_eq!(t.fdr(), (0, 0));
        // While TFRST is set nothing is queued.
        t.w("SCFCR", SCFCR_TFRST);
        t.w("SCFTDR", 1);
        assert_eq!(t.fdr(), (0, 0));
        t.w("SCFCR", 0);
        // RE off: bytes go out and are lost.
        t.w("SCSCR", SCSCR_TE);
        t.w("SCFTDR", 7);
        assert_eq!(t.fdr(), (0, 0));
        assert_eq!(t.scif.counters().bytes_lost, 1);
        assert_eq!(t.scif.counters().fifo_resets, 3);
    }

    #[test]
    fn sixteen_bit_stores_touch_one_register_of_the_word() {
        let mut t = T::new();
        t.open();
        // SCSCR (lanes 0-1) leaves SCFTDR (lane 2); SCFTDR alone queues a byte.
        t.w("SCSCR", SCSCR_TE | SCSCR_RE | SCSCR_RIE);
        assert_eq!(t.fdr(), (0, 0));
        t.w("SCFTDR", 0x41);
        assert_eq!(t.fdr(), (0, 1));
        // A load of SCFSR (lanes 0-1) pops nothing, SCFRDR (lane 2) does.
        t.r("SCFSR");
        assert_eq!(t.fdr(), (0, 1));
        assert_eq!(t.r("SCFRDR"), 0x41);
        assert_eq!(t.fdr(), (0, 0));
        // SCSMR, SCBRR, SEMR, SCSPTR are kept as written; SCFDR ignores writes.
        t.w("SCSMR", 0x0003);
        t.w("SCBRR", 12);
        t.w("SEMR", 0x01);
        t.w("SCSPTR", 0x00c0);
        t.w("SCFDR", 0x1f1f);
        assert_eq!(
            (
                t.r("SCSMR"),
                t.r("SCBRR"),
                t.r("SEMR"),
                t.r("SCSPTR"),
                t.r("SCFDR")
            ),
            (3, 12, 1, 0xc0, 0)
        );
    }

    #[test]
    fn overrun_fault_sets_orer_drops_a_byte_and_raises_bri() {
        let mut t = T::with(vec![Fault::ScifRxOverrun]);
        t.open();
        let mut got = Vec::new();
        let mut fired = false;
        let mut bri = false;
        for b in 0..40u16 {
            t.w("SCFTDR", b);
            fired |= t.fx.fired(Fault::ScifRxOverrun);
            bri |= t.raised("bri");
            while t.fdr().1 > 0 {
                got.push(t.r("SCFRDR"));
            }
        }
        assert!(fired && bri);
        assert_eq!(got.len(), 39);
        assert!(
            !got.contains(&(OVERRUN_AT as u16 - 1)),
            "the 20th byte is lost"
        );
        assert!(t.r("SCLSR") & SCLSR_ORER != 0);
        // sci_handle_fifo_overrun: write ORER = 0.
        let lsr = t.r("SCLSR");
        t.w("SCLSR", lsr & !SCLSR_ORER);
        assert!(t.lowered("bri"));
        assert_eq!(t.r("SCLSR"), 0);
        assert_eq!(t.scif.counters().overruns, 1);
        // Once only.
        for b in 0..40u16 {
            t.w("SCFTDR", b);
            t.r("SCFRDR");
        }
        assert_eq!(t.scif.counters().overruns, 1);
    }

    #[test]
    fn save_and_load_keep_the_fifos_and_the_lines() {
        let mut t = T::new();
        t.open();
        for b in 0..20u16 {
            t.w("SCFTDR", b);
        }
        let state = t.scif.save();
        let mut u = T::new();
        u.scif.load(&state).expect("loads");
        assert_eq!(u.scif, t.scif);
        assert_eq!(u.fdr(), (4, 16));
        assert_eq!(u.r("SCFRDR"), 0);
        assert_eq!(u.fdr(), (3, 16), "the restored wire moves on");
        // A bad state leaves the model unchanged.
        let before = u.scif.clone();
        let mut bad = state.clone();
        bad["fifos"]["rx"] = serde_json::json!(vec![0u8; 17]);
        assert!(u.scif.load(&bad).is_err());
        assert!(u.scif.load(&serde_json::json!({})).is_err());
        assert_eq!(u.scif, before);
        // reset(): power-on values, empty FIFOs.
        u.scif.reset();
        assert_eq!(u.fdr(), (0, 0));
        assert_eq!(u.r("SCFSR"), SCFSR_TEND | SCFSR_TDFE);
    }

    #[test]
    fn missing_registers_and_lines_are_build_errors() {
        let soc = test_soc();
        let mut dev = soc.device("scif3").expect("scif3").clone();
        dev.interrupts.retain(|l| l.name != "txi");
        let e = Scif::new(&dev, &ModelConfig::default()).expect_err("no txi");
        assert_eq!(e.key, "interrupts");
        let mut dev = soc.device("scif3").expect("scif3").clone();
        for r in &mut dev.registers {
            r.fields.retain(|f| f.name != "SCFDR");
        }
        let e = Scif::new(&dev, &ModelConfig::default()).expect_err("no SCFDR");
        assert_eq!(e.key, "registers");
    }
}
