//! The RZ/G3S I2C bus interface (RIIC, `i2c-riic`) as a bus master, with the targets the
//! SoC description puts on its bus (`i2c_targets`: AT24-compatible EEPROMs); every other
//! address NACKs.
//!
//! The G3S RIIC (`renesas,riic-r9a08g045`, falling back to `renesas,riic-r9a09g057`) has
//! byte-wide registers packed four to a word (i2c-riic.c `riic_rz_v2h_regs`: ICCR1 at 0x00
//! ... ICDRR at 0x13). The SoC description declares the 32-bit words and names each byte
//! register as an 8-bit field of its word; the model finds them by those names and learns
//! from the bus which bytes a store or load covered ([`Peripheral::write_lanes`]).
//!
//! Transfers are instantaneous: a START condition, an address byte, a data byte or a STOP
//! completes within the guest's store that asks for it, and its status flags and interrupts
//! are in place before the next guest access. The driver (Linux 7.2 i2c-riic.c) chains its
//! interrupt handlers as a state machine; the model follows the flags it relies on:
//!
//! - ICCR2.ST / RS: START (restart): BBSY, MST, TRS, ICSR2.START, TDRE (the TXI edge);
//! - ICDRT after a START: the address byte. A target answers ACK: write direction -> TDRE
//!   (TXI again) and TEND; read direction -> master receive, RDRF (RXI) for the driver's
//!   dummy read of ICDRR. No target -> ICSR2.NACKF (NAKI), ICMR3.ACKBR = 1;
//! - ICDRT in transmit: the byte goes to the target, TDRE (TXI) and TEND (TEI when TEIE);
//! - an ICDRR read in receive: after the dummy read the target's first byte arrives (RDRF,
//!   RXI); after a data byte the master answers ICMR3.ACKBT: ACK (0) clocks in the next
//!   byte, NACK (1) ends the read, and a STOP the driver asked for meanwhile (it writes SP
//!   before ACKBT for the last byte, i2c-riic.c:293-300) goes out then;
//! - ICCR2.SP: STOP: ICSR2.STOP (SPI when SPIE), BBSY, MST, TRS, TDRE, TEND, RDRF clear.
//!
//! TXI and RXI are edge interrupts (r9a08g045.dtsi: IRQ_TYPE_EDGE_RISING) raised when TDRE
//! or RDRF is set with TIE or RIE; the others are levels: raised when flag and enable are
//! both set, withdrawn when either clears. Left out: slave mode (ICSER), arbitration loss
//! and timeouts (single master, no clock stretching), SMBus PEC, ICMR3.WAIT (the driver
//! never sets it) and bit counting (ICMR1.BC).
//!
//! Fault `riic-bus-busy`: ICCR2.BBSY reads 1 whatever happens (another master, or a target
//! holding SDA, owns the bus), so a START is never issued: riic_bus_barrier polls BBSY
//! until the adapter timeout, tries bus recovery, and the transfer then times out.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{Fault, ModelConfig};
use crate::device::{save_with_parts, saved_part, BuildError, Effects, Env, Peripheral};
use crate::regs::{RegFile, Register};
use crate::soc::{Device, I2cTarget, AT24_MODEL};

/// The registry name of this model.
pub const MODEL: &str = "riic";

/// I2C bus control register 1: enable, reset, the SCL/SDA pins.
pub const ICCR1: &str = "ICCR1";
/// I2C bus control register 2: START/RS/STOP requests, bus busy, master and transmit mode.
pub const ICCR2: &str = "ICCR2";
/// I2C bus mode register 1: internal clock select (CKS), bit counter (BC, BCWP).
pub const ICMR1: &str = "ICMR1";
/// I2C bus mode register 3: ACK bit to send (ACKBT, written with ACKWP), ACK received
/// (ACKBR), RDRF timing (RDRFS), WAIT.
pub const ICMR3: &str = "ICMR3";
/// I2C bus function enable register: FMPE for Fast-mode Plus.
pub const ICFER: &str = "ICFER";
/// I2C bus status enable register: slave address matching (the driver writes 0).
pub const ICSER: &str = "ICSER";
/// I2C bus interrupt enable register: TIE, TEIE, RIE, NAKIE, SPIE, STIE, ALIE, TMOIE.
pub const ICIER: &str = "ICIER";
/// I2C bus status register 2: TDRE, TEND, RDRF (hardware), NACKF, STOP, START, AL, TMOF
/// (cleared by writing 0).
pub const ICSR2: &str = "ICSR2";
/// I2C bus bit rate low-level register.
pub const ICBRL: &str = "ICBRL";
/// I2C bus bit rate high-level register.
pub const ICBRH: &str = "ICBRH";
/// I2C bus transmit data register: the next byte to send.
pub const ICDRT: &str = "ICDRT";
/// I2C bus receive data register: the last byte received; reading it acknowledges RXI.
pub const ICDRR: &str = "ICDRR";

/// ICCR1.ICE: the bus interface drives SCL/SDA.
pub const ICCR1_ICE: u8 = 1 << 7;
/// ICCR1.IICRST: reset (with ICE = 0 every register, with ICE = 1 the internal state).
pub const ICCR1_IICRST: u8 = 1 << 6;
/// ICCR1.SOWP: SCLO/SDAO write protect; a write with SOWP = 0 changes them; reads 1.
pub const ICCR1_SOWP: u8 = 1 << 4;
/// ICCR1.SCLO: the level the interface drives on SCL (bus recovery).
pub const ICCR1_SCLO: u8 = 1 << 3;
/// ICCR1.SDAO: the level the interface drives on SDA (bus recovery).
pub const ICCR1_SDAO: u8 = 1 << 2;
/// ICCR1.SCLI: the SCL pin level (read only).
pub const ICCR1_SCLI: u8 = 1 << 1;
/// ICCR1.SDAI: the SDA pin level (read only).
pub const ICCR1_SDAI: u8 = 1 << 0;

/// ICCR2.BBSY: the bus is busy (between a START and a STOP).
pub const ICCR2_BBSY: u8 = 1 << 7;
/// ICCR2.MST: master mode.
pub const ICCR2_MST: u8 = 1 << 6;
/// ICCR2.TRS: transmit mode.
pub const ICCR2_TRS: u8 = 1 << 5;
/// ICCR2.SP: request a STOP condition.
pub const ICCR2_SP: u8 = 1 << 3;
/// ICCR2.RS: request a repeated START condition.
pub const ICCR2_RS: u8 = 1 << 2;
/// ICCR2.ST: request a START condition.
pub const ICCR2_ST: u8 = 1 << 1;

/// ICMR1.BCWP: bit-counter write protect; reads 1.
pub const ICMR1_BCWP: u8 = 1 << 3;
/// ICMR1.BC: bit counter (not modelled: reads 0).
pub const ICMR1_BC: u8 = 0x7;

/// ICMR3.ACKWP: a write with ACKWP = 1 may change ACKBT.
pub const ICMR3_ACKWP: u8 = 1 << 4;
/// ICMR3.ACKBT: the acknowledge the master sends for a received byte (1 = NACK).
pub const ICMR3_ACKBT: u8 = 1 << 3;
/// ICMR3.ACKBR: the acknowledge the master received (1 = NACK; read only).
pub const ICMR3_ACKBR: u8 = 1 << 2;

/// ICIER.TIE: transmit data empty interrupt (TXI) enable.
pub const ICIER_TIE: u8 = 1 << 7;
/// ICIER.TEIE: transmit end interrupt (TEI) enable.
pub const ICIER_TEIE: u8 = 1 << 6;
/// ICIER.RIE: receive data full interrupt (RXI) enable.
pub const ICIER_RIE: u8 = 1 << 5;
/// ICIER.NAKIE: NACK reception interrupt (NAKI) enable.
pub const ICIER_NAKIE: u8 = 1 << 4;
/// ICIER.SPIE: STOP condition detection interrupt (SPI) enable.
pub const ICIER_SPIE: u8 = 1 << 3;
/// ICIER.STIE: START condition detection interrupt (STI) enable.
pub const ICIER_STIE: u8 = 1 << 2;
/// ICIER.ALIE: arbitration lost interrupt (ALI) enable.
pub const ICIER_ALIE: u8 = 1 << 1;
/// ICIER.TMOIE: timeout interrupt (TMOI) enable.
pub const ICIER_TMOIE: u8 = 1 << 0;

/// ICSR2.TDRE: ICDRT is empty (hardware only).
pub const ICSR2_TDRE: u8 = 1 << 7;
/// ICSR2.TEND: transmission ended with ICDRT empty (hardware only).
pub const ICSR2_TEND: u8 = 1 << 6;
/// ICSR2.RDRF: ICDRR holds a received byte (hardware only).
pub const ICSR2_RDRF: u8 = 1 << 5;
/// ICSR2.NACKF: a NACK was received.
pub const ICSR2_NACKF: u8 = 1 << 4;
/// ICSR2.STOP: a STOP condition was detected.
pub const ICSR2_STOP: u8 = 1 << 3;
/// ICSR2.START: a START condition was detected.
pub const ICSR2_START: u8 = 1 << 2;
/// ICSR2.AL: arbitration lost.
pub const ICSR2_AL: u8 = 1 << 1;
/// ICSR2.TMOF: timeout.
pub const ICSR2_TMOF: u8 = 1 << 0;
/// The ICSR2 flags software clears by writing 0 (the others ignore writes).
const ICSR2_SOFT: u8 = ICSR2_NACKF | ICSR2_STOP | ICSR2_START | ICSR2_AL | ICSR2_TMOF;

/// The byte registers the model gives behaviour, in [`Layout::regs`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Byte {
    Iccr1,
    Iccr2,
    Icmr1,
    Icmr3,
    Icfer,
    Icser,
    Icier,
    Icsr2,
    Icbrl,
    Icbrh,
    Icdrt,
    Icdrr,
}

const BYTES: [(Byte, &str); 12] = [
    (Byte::Iccr1, ICCR1),
    (Byte::Iccr2, ICCR2),
    (Byte::Icmr1, ICMR1),
    (Byte::Icmr3, ICMR3),
    (Byte::Icfer, ICFER),
    (Byte::Icser, ICSER),
    (Byte::Icier, ICIER),
    (Byte::Icsr2, ICSR2),
    (Byte::Icbrl, ICBRL),
    (Byte::Icbrh, ICBRH),
    (Byte::Icdrt, ICDRT),
    (Byte::Icdrr, ICDRR),
];

/// Where a byte register sits: declared register `word`, bits `shift..shift+8`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct At {
    word: usize,
    shift: u32,
}

/// The interrupt lines, by their DT names (r9a08g045.dtsi `interrupt-names`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Lines {
    tei: usize,
    ri: usize,
    ti: usize,
    spi: usize,
    naki: usize,
    sti: Option<usize>,
    ali: Option<usize>,
    tmoi: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Layout {
    /// Indexed like [`BYTES`].
    regs: [At; 12],
    /// Per declared register, per byte lane: the byte register there (None: stored only).
    lanes: Vec<[Option<Byte>; 4]>,
    lines: Lines,
}

impl Layout {
    fn resolve(dev: &Device) -> Result<Layout, BuildError> {
        let mut lanes = vec![[None; 4]; dev.registers.len()];
        let mut regs = [At { word: 0, shift: 0 }; 12];
        for (i, (byte, name)) in BYTES.iter().enumerate() {
            let found = dev.registers.iter().enumerate().find_map(|(w, r)| {
                r.fields
                    .iter()
                    .find(|f| f.name == *name)
                    .map(|f| (w, r.name.as_str(), f.lsb, f.width))
            });
            let Some((word, reg, lsb, width)) = found else {
                return Err(BuildError::new(
                    "registers",
                    format!("the {MODEL} model needs a byte register {name}: an 8-bit field named {name} of the register word that holds it"),
                ));
            };
            if width != 8 || lsb % 8 != 0 {
                return Err(BuildError::new(
                    "registers",
                    format!("the {MODEL} model needs {name} (in {reg}) as a whole byte: lsb 0, 8, 16 or 24 and width 8 (got lsb {lsb}, width {width})"),
                ));
            }
            if let Some(slot) = regs.get_mut(i) {
                *slot = At { word, shift: lsb };
            }
            if let Some(l) = lanes
                .get_mut(word)
                .and_then(|l| l.get_mut((lsb / 8) as usize))
            {
                *l = Some(*byte);
            }
        }
        let line = |name: &str| dev.interrupts.iter().position(|l| l.name == name);
        let need = |name: &str| {
            line(name).ok_or_else(|| {
                BuildError::new(
                    "interrupts",
                    format!("the {MODEL} model needs an interrupt line named `{name}` (tei, ri, ti, spi and naki: the lines i2c-riic requests)"),
                )
            })
        };
        let lines = Lines {
            tei: need("tei")?,
            ri: need("ri")?,
            ti: need("ti")?,
            spi: need("spi")?,
            naki: need("naki")?,
            sti: line("sti"),
            ali: line("ali"),
            tmoi: line("tmoi"),
        };
        Ok(Layout { regs, lanes, lines })
    }

    fn at(&self, b: Byte) -> At {
        self.regs
            .get(b as usize)
            .copied()
            .unwrap_or(At { word: 0, shift: 0 })
    }
}

/// An AT24-compatible EEPROM: a word address (1 or 2 bytes, MSB first) sets the pointer,
/// data bytes written are kept until the STOP (a repeated START drops them, as the chips
/// do) and wrap inside their page; reads run on from the pointer and wrap at the end.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct At24 {
    #[serde(skip)]
    address: u8,
    #[serde(skip)]
    page_size: u32,
    #[serde(skip)]
    address_bytes: u32,
    #[serde(with = "hex_bytes")]
    mem: Vec<u8>,
    /// The address counter.
    pointer: u32,
    /// Word-address bytes still expected in the current write.
    address_left: u32,
    /// Bytes written since the START, (address, value), committed at the STOP.
    pending: Vec<(u32, u8)>,
}

impl At24 {
    pub fn new(t: &I2cTarget) -> At24 {
        At24 {
            address: t.address,
            page_size: t.page_size.max(1),
            address_bytes: t.address_bytes(),
            mem: t.contents.clone(),
            pointer: 0,
            address_left: 0,
            pending: Vec::new(),
        }
    }

    pub fn contents(&self) -> &[u8] {
        &self.mem
    }

    fn size(&self) -> u32 {
        u32::try_from(self.mem.len()).unwrap_or(u32::MAX).max(1)
    }

    /// Selected by a (repeated) START with its address.
    fn select(&mut self, read: bool) {
        self.pending.clear();
        self.address_left = if read { 0 } else { self.address_bytes };
    }

    /// A byte from the master (always acknowledged).
    fn write(&mut self, b: u8) {
        if self.address_left > 0 {
            let shift = 8 * (self.address_left - 1);
            let mask = !(0xffu32 << shift);
            self.pointer = ((self.pointer & mask) | (u32::from(b) << shift)) % self.size();
            self.address_left -= 1;
            return;
        }
        self.pending.push((self.pointer, b));
        let page = self.pointer & !(self.page_size - 1);
        self.pointer = page | ((self.pointer + 1) & (self.page_size - 1));
    }

    /// The next byte for the master.
    fn read(&mut self) -> u8 {
        let b = self.mem.get(self.pointer as usize).copied().unwrap_or(0xff);
        self.pointer = (self.pointer + 1) % self.size();
        b
    }

    /// STOP: the write cycle stores what the page write collected; returns how many bytes.
    fn stop(&mut self) -> u64 {
        let n = self.pending.len() as u64;
        for (a, b) in self.pending.drain(..) {
            if let Some(m) = self.mem.get_mut(a as usize) {
                *m = b;
            }
        }
        self.address_left = 0;
        n
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        if text.len() % 2 != 0 {
            return Err(serde::de::Error::custom("odd number of hex digits"));
        }
        (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("not a hex byte"))
            })
            .collect()
    }
}

/// Where the master is in a transfer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// No transfer: the bus is free (or the interface is off).
    #[default]
    Idle,
    /// After a (repeated) START: the next ICDRT byte is the address.
    Address,
    /// Master transmit to the addressed target.
    Transmit,
    /// Master receive from the addressed target.
    Receive,
    /// The address was not acknowledged: the master holds the bus until its STOP.
    Nacked,
}

/// The transfer in flight (all of it goes into a snapshot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub phase: Phase,
    /// The addressed target (index into the targets).
    pub target: Option<usize>,
    /// RDRF stands for the address phase: reading ICDRR starts the first byte.
    pub dummy_pending: bool,
    /// A STOP was asked for while a received byte waited for its ACK/NACK.
    pub stop_pending: bool,
    /// The level lines as last signalled (bit = line index).
    pub levels: u32,
}

/// The RIIC's counters (the summary event's `counters.<device>`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiicCounters {
    pub starts: u64,
    pub restarts: u64,
    pub stops: u64,
    /// Addresses nobody answered.
    pub nacks: u64,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// Bytes the EEPROMs stored at a STOP.
    pub eeprom_bytes_written: u64,
    /// START/RS/SP requests the state did not allow (interface off, in reset, bus busy,
    /// not master).
    pub ignored_requests: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Riic {
    registers: Vec<Register>,
    regs: RegFile,
    layout: Layout,
    targets: Vec<At24>,
    /// The targets at power-on (reset brings them back).
    initial: Vec<At24>,
    xfer: Transfer,
    counters: RiicCounters,
    /// Fault `riic-bus-busy` armed: BBSY stays 1.
    bus_busy: bool,
}

impl Riic {
    pub fn new(dev: &Device, cfg: &ModelConfig) -> Result<Riic, BuildError> {
        let layout = Layout::resolve(dev)?;
        let mut targets = Vec::with_capacity(dev.i2c_targets.len());
        for (i, t) in dev.i2c_targets.iter().enumerate() {
            if t.model != AT24_MODEL {
                return Err(BuildError::new(
                    format!("i2c_targets[{i}].model"),
                    format!("the {MODEL} model carries out `{AT24_MODEL}` targets only"),
                ));
            }
            targets.push(At24::new(t));
        }
        let mut riic = Riic {
            registers: dev.registers.clone(),
            regs: RegFile::new(&dev.registers),
            layout,
            initial: targets.clone(),
            targets,
            xfer: Transfer::default(),
            counters: RiicCounters::default(),
            bus_busy: cfg.armed(Fault::RiicBusBusy),
        };
        riic.hold_bus();
        Ok(riic)
    }

    /// Fault `riic-bus-busy`: BBSY back to 1 after anything that cleared it.
    fn hold_bus(&mut self) {
        if self.bus_busy {
            self.update(Byte::Iccr2, 0, ICCR2_BBSY);
        }
    }

    pub fn registers(&self) -> &[Register] {
        &self.registers
    }

    pub fn counters(&self) -> &RiicCounters {
        &self.counters
    }

    pub fn transfer(&self) -> &Transfer {
        &self.xfer
    }

    /// The memory of target `i` (in YAML order).
    pub fn target_contents(&self, i: usize) -> Option<&[u8]> {
        self.targets.get(i).map(At24::contents)
    }

    fn get(&self, b: Byte) -> u8 {
        let at = self.layout.at(b);
        ((self.regs.get(at.word) >> at.shift) & 0xff) as u8
    }

    fn set(&mut self, b: Byte, v: u8) {
        let at = self.layout.at(b);
        let word = self.regs.get(at.word);
        let mask = 0xffu32 << at.shift;
        self.regs
            .set(at.word, (word & !mask) | (u32::from(v) << at.shift));
    }

    fn update(&mut self, b: Byte, clear: u8, set: u8) {
        let v = (self.get(b) & !clear) | set;
        self.set(b, v);
    }

    /// The reset value of byte register `b`.
    fn reset_value(&self, b: Byte) -> u8 {
        let at = self.layout.at(b);
        let word = self.registers.get(at.word).map_or(0, |r| r.reset);
        ((word >> at.shift) & 0xff) as u8
    }

    fn status(&self, bit: u8) -> bool {
        self.get(Byte::Icsr2) & bit != 0
    }

    fn enabled(&self, bit: u8) -> bool {
        self.get(Byte::Icier) & bit != 0
    }

    /// Sets TDRE: the TXI edge when TIE is set.
    fn set_tdre(&mut self, fx: &mut Effects) {
        self.update(Byte::Icsr2, 0, ICSR2_TDRE);
        if self.enabled(ICIER_TIE) {
            fx.raise(self.layout.lines.ti);
        }
    }

    /// Sets RDRF: the RXI edge when RIE is set.
    fn set_rdrf(&mut self, fx: &mut Effects) {
        self.update(Byte::Icsr2, 0, ICSR2_RDRF);
        if self.enabled(ICIER_RIE) {
            fx.raise(self.layout.lines.ri);
        }
    }

    /// The level lines now: flag and enable both set.
    fn levels(&self) -> u32 {
        let sr = self.get(Byte::Icsr2);
        let ier = self.get(Byte::Icier);
        let l = &self.layout.lines;
        let pairs = [
            (Some(l.tei), ICSR2_TEND, ICIER_TEIE),
            (Some(l.spi), ICSR2_STOP, ICIER_SPIE),
            (Some(l.naki), ICSR2_NACKF, ICIER_NAKIE),
            (l.sti, ICSR2_START, ICIER_STIE),
            (l.ali, ICSR2_AL, ICIER_ALIE),
            (l.tmoi, ICSR2_TMOF, ICIER_TMOIE),
        ];
        pairs
            .iter()
            .filter(|(_, flag, en)| sr & flag != 0 && ier & en != 0)
            .filter_map(|(line, _, _)| *line)
            .filter(|&line| line < 32)
            .fold(0, |m, line| m | (1 << line))
    }

    /// Raises the level lines that rose since they were last signalled, withdraws those
    /// that fell.
    fn signal_levels(&mut self, fx: &mut Effects) {
        let now = self.levels();
        let was = self.xfer.levels;
        for line in 0..32usize {
            let bit = 1u32 << line;
            if now & bit != 0 && was & bit == 0 {
                fx.raise(line);
            } else if now & bit == 0 && was & bit != 0 {
                fx.lower(line);
            }
        }
        self.xfer.levels = now;
    }

    /// Whether the interface can run a transfer: enabled and out of reset.
    fn running(&self) -> bool {
        let cr1 = self.get(Byte::Iccr1);
        cr1 & ICCR1_ICE != 0 && cr1 & ICCR1_IICRST == 0
    }

    /// Back to no transfer: the bus state and status flags cleared (IICRST, reset).
    fn abandon(&mut self) {
        if let Some(t) = self.xfer.target.and_then(|i| self.targets.get_mut(i)) {
            t.pending.clear();
        }
        self.update(Byte::Iccr2, ICCR2_BBSY | ICCR2_MST | ICCR2_TRS, 0);
        self.set(Byte::Icsr2, 0);
        self.xfer.phase = Phase::Idle;
        self.xfer.target = None;
        self.xfer.dummy_pending = false;
        self.xfer.stop_pending = false;
    }

    fn write_byte(&mut self, b: Byte, v: u8, fx: &mut Effects) {
        match b {
            Byte::Iccr1 => self.write_iccr1(v),
            Byte::Iccr2 => self.write_iccr2(v, fx),
            // CKS is kept; BCWP reads 1, the bit counter is not modelled.
            Byte::Icmr1 => self.set(b, (v & !ICMR1_BC) | ICMR1_BCWP),
            Byte::Icmr3 => {
                let old = self.get(b);
                let keep = ICMR3_ACKBR | if v & ICMR3_ACKWP != 0 { 0 } else { ICMR3_ACKBT };
                let written = !(ICMR3_ACKBR | ICMR3_ACKBT)
                    | if v & ICMR3_ACKWP != 0 { ICMR3_ACKBT } else { 0 };
                self.set(b, (old & keep) | (v & written));
            }
            Byte::Icsr2 => {
                // Written 0 clears a software flag; TDRE, TEND, RDRF are the hardware's.
                let old = self.get(b);
                self.set(b, old & (v | !ICSR2_SOFT));
            }
            Byte::Icdrt => {
                self.set(b, v);
                self.transmit(v, fx);
            }
            // Read only: what the last reception left.
            Byte::Icdrr => {}
            Byte::Icfer | Byte::Icser | Byte::Icier | Byte::Icbrl | Byte::Icbrh => self.set(b, v),
        }
    }

    fn write_iccr1(&mut self, v: u8) {
        let old = self.get(Byte::Iccr1);
        // SCLO/SDAO change only in a write with SOWP = 0 (i2c-riic.c riic_set_scl/sda).
        let pins = if v & ICCR1_SOWP == 0 {
            v & (ICCR1_SCLO | ICCR1_SDAO)
        } else {
            old & (ICCR1_SCLO | ICCR1_SDAO)
        };
        // Nobody else drives the bus: the pins read what the interface drives.
        let inputs = (if pins & ICCR1_SCLO != 0 {
            ICCR1_SCLI
        } else {
            0
        }) | (if pins & ICCR1_SDAO != 0 {
            ICCR1_SDAI
        } else {
            0
        });
        let new = (v & (ICCR1_ICE | ICCR1_IICRST)) | ICCR1_SOWP | pins | inputs;
        self.set(Byte::Iccr1, new);
        if new & ICCR1_IICRST != 0 {
            if new & ICCR1_ICE == 0 && old & ICCR1_IICRST == 0 {
                // RIIC reset: every other register back to its reset value.
                for (b, _) in BYTES {
                    if b != Byte::Iccr1 {
                        let r = self.reset_value(b);
                        self.set(b, r);
                    }
                }
            }
            // Internal reset: the transfer and the status flags.
            self.abandon();
        } else if new & ICCR1_ICE == 0 && self.xfer.phase != Phase::Idle {
            // The interface lets go of the bus.
            self.abandon();
        }
    }

    fn write_iccr2(&mut self, v: u8, fx: &mut Effects) {
        if v & ICCR2_ST != 0 {
            self.start(false, fx);
        } else if v & ICCR2_RS != 0 {
            self.start(true, fx);
        } else if v & ICCR2_SP != 0 {
            self.request_stop(fx);
        }
    }

    /// ICCR2.ST (`restart` false) or RS.
    fn start(&mut self, restart: bool, fx: &mut Effects) {
        let cr2 = self.get(Byte::Iccr2);
        let ok = self.running()
            && if restart {
                cr2 & ICCR2_BBSY != 0 && cr2 & ICCR2_MST != 0
            } else {
                cr2 & ICCR2_BBSY == 0
            };
        if !ok {
            if self.bus_busy && !restart {
                fx.fire(Fault::RiicBusBusy);
            }
            self.counters.ignored_requests += 1;
            return;
        }
        if let Some(t) = self.xfer.target.and_then(|i| self.targets.get_mut(i)) {
            t.pending.clear();
        }
        if restart {
            self.counters.restarts += 1;
        } else {
            self.counters.starts += 1;
        }
        self.xfer.phase = Phase::Address;
        self.xfer.target = None;
        self.xfer.dummy_pending = false;
        self.xfer.stop_pending = false;
        self.update(Byte::Iccr2, 0, ICCR2_BBSY | ICCR2_MST | ICCR2_TRS);
        self.update(
            Byte::Icsr2,
            ICSR2_TDRE | ICSR2_TEND | ICSR2_RDRF,
            ICSR2_START,
        );
        self.set_tdre(fx);
    }

    /// ICCR2.SP: now, or after the NACK of the byte that waits in ICDRR.
    fn request_stop(&mut self, fx: &mut Effects) {
        if !self.running() || self.get(Byte::Iccr2) & ICCR2_MST == 0 {
            self.counters.ignored_requests += 1;
            return;
        }
        if self.xfer.phase == Phase::Receive && self.status(ICSR2_RDRF) {
            self.xfer.stop_pending = true;
            return;
        }
        self.stop(fx);
    }

    fn stop(&mut self, _fx: &mut Effects) {
        if let Some(t) = self.xfer.target.and_then(|i| self.targets.get_mut(i)) {
            self.counters.eeprom_bytes_written += t.stop();
        }
        self.counters.stops += 1;
        self.xfer.phase = Phase::Idle;
        self.xfer.target = None;
        self.xfer.dummy_pending = false;
        self.xfer.stop_pending = false;
        self.update(Byte::Iccr2, ICCR2_BBSY | ICCR2_MST | ICCR2_TRS, 0);
        self.update(
            Byte::Icsr2,
            ICSR2_TDRE | ICSR2_TEND | ICSR2_RDRF | ICSR2_START,
            ICSR2_STOP,
        );
    }

    /// A byte written to ICDRT.
    fn transmit(&mut self, v: u8, fx: &mut Effects) {
        if !self.running() || self.status(ICSR2_NACKF) {
            return;
        }
        match self.xfer.phase {
            Phase::Address => {
                self.counters.bytes_sent += 1;
                let address = v >> 1;
                let read = v & 1 != 0;
                self.update(Byte::Icsr2, ICSR2_TDRE | ICSR2_TEND, 0);
                let found = self.targets.iter().position(|t| t.address == address);
                let Some(i) = found else {
                    self.counters.nacks += 1;
                    self.xfer.phase = Phase::Nacked;
                    self.update(Byte::Icmr3, 0, ICMR3_ACKBR);
                    self.update(Byte::Icsr2, 0, ICSR2_NACKF);
                    return;
                };
                self.update(Byte::Icmr3, ICMR3_ACKBR, 0);
                if let Some(t) = self.targets.get_mut(i) {
                    t.select(read);
                }
                self.xfer.target = Some(i);
                if read {
                    // Master receive: RDRF for the dummy read that starts the first byte.
                    self.xfer.phase = Phase::Receive;
                    self.xfer.dummy_pending = true;
                    self.update(Byte::Iccr2, ICCR2_TRS, 0);
                    self.set_rdrf(fx);
                } else {
                    self.xfer.phase = Phase::Transmit;
                    self.update(Byte::Icsr2, 0, ICSR2_TEND);
                    self.set_tdre(fx);
                }
            }
            Phase::Transmit => {
                self.counters.bytes_sent += 1;
                if let Some(t) = self.xfer.target.and_then(|i| self.targets.get_mut(i)) {
                    t.write(v);
                }
                self.update(Byte::Icmr3, ICMR3_ACKBR, 0);
                self.update(Byte::Icsr2, 0, ICSR2_TEND);
                self.set_tdre(fx);
            }
            Phase::Idle | Phase::Receive | Phase::Nacked => {}
        }
    }

    /// The guest read ICDRR.
    fn icdrr_read(&mut self, fx: &mut Effects) {
        if self.xfer.phase != Phase::Receive || !self.status(ICSR2_RDRF) {
            return;
        }
        self.update(Byte::Icsr2, ICSR2_RDRF, 0);
        let ack = if self.xfer.dummy_pending {
            self.xfer.dummy_pending = false;
            true
        } else {
            self.get(Byte::Icmr3) & ICMR3_ACKBT == 0
        };
        if ack {
            let b = self
                .xfer
                .target
                .and_then(|i| self.targets.get_mut(i))
                .map_or(0xff, At24::read);
            self.counters.bytes_received += 1;
            self.set(Byte::Icdrr, b);
            self.set_rdrf(fx);
        } else if self.xfer.stop_pending {
            self.stop(fx);
        }
    }
}

impl Peripheral for Riic {
    fn values(&self) -> &[u32] {
        self.regs.values()
    }

    fn reset(&mut self) {
        self.regs = RegFile::new(&self.registers);
        self.targets = self.initial.clone();
        self.xfer = Transfer::default();
        self.counters = RiicCounters::default();
        self.hold_bus();
    }

    fn write(&mut self, reg: usize, value: u32, env: &Env, fx: &mut Effects) {
        self.write_lanes(reg, value, 0xf, env, fx);
    }

    fn write_lanes(&mut self, reg: usize, value: u32, lanes: u8, _env: &Env, fx: &mut Effects) {
        let Some(map) = self.layout.lanes.get(reg).copied() else {
            return;
        };
        for (lane, byte) in map.iter().enumerate() {
            if lanes & (1 << lane) == 0 {
                continue;
            }
            let shift = 8 * lane as u32;
            let v = ((value >> shift) & 0xff) as u8;
            match byte {
                Some(b) => self.write_byte(*b, v, fx),
                None => {
                    // A byte register the driver does not use: kept as written.
                    let word = self.regs.get(reg);
                    let mask = 0xffu32 << shift;
                    self.regs.set(reg, (word & !mask) | (u32::from(v) << shift));
                }
            }
        }
        self.hold_bus();
        self.signal_levels(fx);
    }

    fn watches_reads(&self) -> bool {
        true
    }

    fn after_read(&mut self, reg: usize, env: &Env, fx: &mut Effects) -> bool {
        self.after_read_lanes(reg, 0xf, env, fx)
    }

    fn after_read_lanes(&mut self, reg: usize, lanes: u8, _env: &Env, fx: &mut Effects) -> bool {
        let cr2 = self.layout.at(Byte::Iccr2);
        if self.bus_busy && reg == cr2.word && lanes & (1 << (cr2.shift / 8)) != 0 {
            // The driver saw the BBSY the fault keeps (riic_bus_barrier's poll).
            fx.fire(Fault::RiicBusBusy);
        }
        let at = self.layout.at(Byte::Icdrr);
        if reg != at.word || lanes & (1 << (at.shift / 8)) == 0 {
            return false;
        }
        let before = self.regs.clone();
        self.icdrr_read(fx);
        self.hold_bus();
        self.signal_levels(fx);
        self.regs != before
    }

    fn counters(&self) -> Option<Value> {
        serde_json::to_value(&self.counters).ok()
    }

    /// Registers, the transfer in flight, every target's memory and state, counters.
    fn save(&self) -> Value {
        save_with_parts(
            self.regs.save(),
            &[
                ("transfer", serde_json::to_value(&self.xfer)),
                ("targets", serde_json::to_value(&self.targets)),
                ("counters", serde_json::to_value(&self.counters)),
            ],
        )
    }

    fn load(&mut self, state: &Value) -> Result<(), String> {
        let xfer: Transfer = saved_part(state, "transfer")?;
        let saved: Vec<At24> = saved_part(state, "targets")?;
        let counters: RiicCounters = saved_part(state, "counters")?;
        if saved.len() != self.targets.len() {
            return Err(format!(
                "{} I2C targets saved, the device has {}",
                saved.len(),
                self.targets.len()
            ));
        }
        if xfer.target.is_some_and(|i| i >= self.targets.len()) {
            return Err("the transfer names a target the device does not have".into());
        }
        let mut targets = self.targets.clone();
        for (i, (t, s)) in targets.iter_mut().zip(saved).enumerate() {
            if s.mem.len() != t.mem.len() {
                return Err(format!(
                    "target {i}: {} bytes saved, the EEPROM has {}",
                    s.mem.len(),
                    t.mem.len()
                ));
            }
            t.mem = s.mem;
            t.pointer = s.pointer % t.size();
            t.address_left = s.address_left.min(t.address_bytes);
            t.pending = s.pending;
        }
        self.regs.load(state)?;
        self.targets = targets;
        self.xfer = xfer;
        self.counters = counters;
        // The restored plugin's own arguments say whether the fault holds the bus.
        self.hold_bus();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_soc;

    const EEPROM: u8 = 0x50;

    struct T {
        riic: Riic,
    }

    impl T {
        fn new() -> T {
            let soc = test_soc();
            let dev = soc.device("i2c0").expect("i2c0");
            T {
                riic: Riic::new(dev, &ModelConfig::default()).expect("riic builds"),
            }
        }
        fn with_faults(faults: Vec<Fault>) -> T {
            let soc = test_soc();
            let dev = soc.device("i2c0").expect("i2c0");
            let cfg = ModelConfig {
                faults,
                ..ModelConfig::default()
            };
            T {
                riic: Riic::new(dev, &cfg).expect("riic builds"),
            }
        }
        fn at(&self, name: &str) -> (usize, u32) {
            let (b, _) = BYTES.iter().find(|(_, n)| *n == name).expect("byte name");
            let at = self.riic.layout.at(*b);
            (at.word, at.shift)
        }
        fn line(&self, name: &str) -> usize {
            let l = &self.riic.layout.lines;
            match name {
                "tei" => l.tei,
                "ri" => l.ri,
                "ti" => l.ti,
                "spi" => l.spi,
                "naki" => l.naki,
                _ => usize::MAX,
            }
        }
        /// writeb(v, base + offset of `name`): a one-byte store.
        fn w(&mut self, name: &str, v: u8) -> Effects {
            let (word, shift) = self.at(name);
            let old = self.riic.value(word);
            let value = (old & !(0xff << shift)) | (u32::from(v) << shift);
            let mut fx = Effects::default();
            self.riic
                .write_lanes(word, value, 1 << (shift / 8), &Env::EMPTY, &mut fx);
            fx
        }
        /// readb of `name`: the value, then the model's after-read.
        fn r(&mut self, name: &str) -> (u8, Effects) {
            let (word, shift) = self.at(name);
            let v = ((self.riic.value(word) >> shift) & 0xff) as u8;
            let mut fx = Effects::default();
            self.riic
                .after_read_lanes(word, 1 << (shift / 8), &Env::EMPTY, &mut fx);
            (v, fx)
        }
        fn peek(&self, name: &str) -> u8 {
            let (word, shift) = self.at(name);
            ((self.riic.value(word) >> shift) & 0xff) as u8
        }
        fn raised(&self, fx: &Effects, line: &str) -> bool {
            fx.raised().any(|l| l == self.line(line))
        }
        fn lowered(&self, fx: &Effects, line: &str) -> bool {
            fx.lowered().any(|l| l == self.line(line))
        }
        /// riic_init_hw's register sequence.
        fn init(&mut self) {
            self.w("ICCR1", ICCR1_IICRST | ICCR1_SOWP);
            let v = self.peek("ICCR1") | ICCR1_ICE;
            self.w("ICCR1", v);
            self.w("ICMR1", (1 << 4) | ICMR1_BCWP);
            self.w("ICBRH", 0xe0 | 9);
            self.w("ICBRL", 0xe0 | 14);
            self.w("ICSER", 0);
            self.w("ICMR3", ICMR3_ACKWP | 0x20);
            let v = self.peek("ICFER") | 0x80;
            self.w("ICFER", v);
            let v = self.peek("ICCR1") & !ICCR1_IICRST;
            self.w("ICCR1", v);
        }
        /// riic_clear_set_bit.
        fn rmw(&mut self, name: &str, clear: u8, set: u8) -> Effects {
            let v = (self.peek(name) & !clear) | set;
            self.w(name, v)
        }
    }

    /// The driver's interrupt handlers, run against the model whenever a line is raised:
    /// a small re-telling of i2c-riic.c's state machine, to drive whole transfers.
    struct Driver<'a> {
        t: &'a mut T,
        msgs: Vec<(u8, bool, Vec<u8>)>,
        cur: usize,
        bytes_left: i64,
        pos: usize,
        done: bool,
        err: Option<&'static str>,
        pending: Vec<usize>,
    }

    const INIT: i64 = -1;

    impl Driver<'_> {
        fn note(&mut self, fx: &Effects) {
            for l in fx.raised() {
                if !self.pending.contains(&l) {
                    self.pending.push(l);
                }
            }
            for l in fx.lowered() {
                self.pending.retain(|p| *p != l);
            }
        }
        fn is_last(&self) -> bool {
            self.cur + 1 == self.msgs.len()
        }
        fn run(&mut self) {
            let mut guard = 0;
            while let Some(l) = (!self.pending.is_empty()).then(|| self.pending.remove(0)) {
                guard += 1;
                assert!(guard < 10_000, "interrupt storm");
                let t = &*self.t;
                if l == t.line("ti") {
                    self.tdre();
                } else if l == t.line("tei") || l == t.line("naki") {
                    self.tend();
                } else if l == t.line("ri") {
                    self.rdrf();
                } else if l == t.line("spi") {
                    self.stop();
                }
            }
        }
        fn tdre(&mut self) {
            if self.bytes_left == 0 {
                return;
            }
            let (addr, read, len) = {
                let m = &self.msgs[self.cur];
                (m.0, m.1, m.2.len() as i64)
            };
            let val;
            if self.bytes_left == INIT {
                if read {
                    let fx = self.t.rmw("ICIER", ICIER_TIE, ICIER_RIE);
                    self.note(&fx);
                } else {
                    self.bytes_left = len;
                }
                val = (addr << 1) | u8::from(read);
            } else {
                val = self.msgs[self.cur].2[self.pos];
                self.pos += 1;
                self.bytes_left -= 1;
            }
            if self.bytes_left == 0 {
                let fx = self.t.rmw("ICIER", ICIER_TIE, ICIER_TEIE);
                self.note(&fx);
            }
            let fx = self.t.w("ICDRT", val);
            self.note(&fx);
        }
        fn tend(&mut self) {
            if self.t.peek("ICSR2") & ICSR2_NACKF != 0 {
                let (_, fx) = self.t.r("ICDRR");
                self.note(&fx);
                let fx = self.t.rmw("ICSR2", ICSR2_NACKF, 0);
                self.note(&fx);
                self.err = Some("ENXIO");
            } else if self.bytes_left != 0 {
                return;
            }
            if self.is_last() || self.err.is_some() {
                let fx = self.t.rmw("ICIER", ICIER_TEIE, ICIER_SPIE);
                self.note(&fx);
                let fx = self.t.w("ICCR2", ICCR2_SP);
                self.note(&fx);
            } else {
                let fx = self.t.rmw("ICIER", ICIER_TEIE, 0);
                self.note(&fx);
                self.done = true;
            }
        }
        fn rdrf(&mut self) {
            if self.bytes_left == 0 {
                return;
            }
            if self.bytes_left == INIT {
                self.bytes_left = self.msgs[self.cur].2.len() as i64;
                let (_, fx) = self.t.r("ICDRR");
                self.note(&fx);
                return;
            }
            if self.bytes_left == 1 {
                if self.is_last() {
                    let fx = self.t.rmw("ICIER", 0, ICIER_SPIE);
                    self.note(&fx);
                    let fx = self.t.w("ICCR2", ICCR2_SP);
                    self.note(&fx);
                }
                let fx = self.t.rmw("ICMR3", 0, ICMR3_ACKBT);
                self.note(&fx);
            } else {
                let fx = self.t.rmw("ICMR3", ICMR3_ACKBT, 0);
                self.note(&fx);
            }
            let (v, fx) = self.t.r("ICDRR");
            self.note(&fx);
            self.msgs[self.cur].2[self.pos] = v;
            self.pos += 1;
            self.bytes_left -= 1;
        }
        fn stop(&mut self) {
            let fx = self.t.w("ICSR2", 0);
            self.note(&fx);
            let fx = self.t.w("ICIER", 0);
            self.note(&fx);
            self.done = true;
        }
    }

    /// riic_xfer: the messages (address, read, buffer); the buffers after it, or the error.
    fn xfer(t: &mut T, msgs: Vec<(u8, bool, Vec<u8>)>) -> Result<Vec<Vec<u8>>, &'static str> {
        assert_eq!(
            t.peek("ICCR2") & ICCR2_BBSY,
            0,
            "bus free before a transfer"
        );
        assert_eq!(
            t.peek("ICCR1") & (ICCR1_SCLI | ICCR1_SDAI),
            ICCR1_SCLI | ICCR1_SDAI,
            "SCL and SDA high"
        );
        t.w("ICSR2", 0);
        let n = msgs.len();
        let mut d = Driver {
            t,
            msgs,
            cur: 0,
            bytes_left: INIT,
            pos: 0,
            done: false,
            err: None,
            pending: Vec::new(),
        };
        for i in 0..n {
            d.cur = i;
            d.bytes_left = INIT;
            d.pos = 0;
            d.done = false;
            let fx = d.t.w("ICIER", ICIER_NAKIE | ICIER_TIE);
            d.note(&fx);
            let fx = d.t.w("ICCR2", if i == 0 { ICCR2_ST } else { ICCR2_RS });
            d.note(&fx);
            d.run();
            if !d.done {
                return Err("ETIMEDOUT");
            }
            if let Some(e) = d.err {
                return Err(e);
            }
        }
        Ok(d.msgs.into_iter().map(|m| m.2).collect())
    }

    fn eeprom_read(t: &mut T, offset: u8, len: usize) -> Result<Vec<u8>, &'static str> {
        let out = xfer(
            t,
            vec![(EEPROM, false, vec![offset]), (EEPROM, true, vec![0; len])],
        )?;
        Ok(out[1].clone())
    }

    fn initial() -> Vec<u8> {
        let soc = test_soc();
        let dev = soc.device("i2c0").expect("i2c0");
        dev.i2c_targets[0].contents.clone()
    }

    #[test]
    fn reset_values_and_pins() {
        let t = T::new();
        assert_eq!(t.peek("ICCR1"), 0x1f, "SOWP, SCLO, SDAO and both pins high");
        assert_eq!(t.peek("ICCR2"), 0);
        assert_eq!(t.peek("ICMR1"), 0x08);
        assert_eq!(t.peek("ICSR2"), 0);
        assert_eq!(t.peek("ICBRL"), 0xff);
        assert_eq!(t.peek("ICBRH"), 0xff);
    }

    #[test]
    fn init_sequence_leaves_the_interface_enabled_and_idle() {
        let mut t = T::new();
        t.init();
        assert_eq!(t.peek("ICCR1") & (ICCR1_ICE | ICCR1_IICRST), ICCR1_ICE);
        assert_eq!(t.peek("ICMR1"), 0x18, "CKS 1, BCWP reads 1");
        assert_eq!(t.peek("ICBRH"), 0xe9);
        assert_eq!(t.peek("ICBRL"), 0xee);
        assert_eq!(t.peek("ICMR3"), ICMR3_ACKWP | 0x20);
        assert_eq!(t.peek("ICFER") & 0x80, 0x80, "FMPE");
        assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, 0);
    }

    #[test]
    fn riic_reset_with_ice_clear_restores_the_other_registers() {
        let mut t = T::new();
        t.init();
        t.w("ICIER", 0xff);
        t.w("ICCR1", ICCR1_IICRST | ICCR1_SOWP);
        assert_eq!(t.peek("ICIER"), 0);
        assert_eq!(t.peek("ICBRL"), 0xff);
        assert_eq!(t.peek("ICCR1") & ICCR1_IICRST, ICCR1_IICRST);
    }

    #[test]
    fn start_needs_ice_and_no_reset() {
        let mut t = T::new();
        let fx = t.w("ICCR2", ICCR2_ST);
        assert!(fx.is_empty());
        assert_eq!(t.peek("ICCR2"), 0);
        assert_eq!(t.riic.counters().ignored_requests, 1);
        t.w("ICCR1", ICCR1_IICRST | ICCR1_SOWP | ICCR1_ICE);
        t.w("ICCR2", ICCR2_ST);
        assert_eq!(t.peek("ICCR2"), 0, "in internal reset");
    }

    #[test]
    fn start_sets_bbsy_master_transmit_and_tdre_edge() {
        let mut t = T::new();
        t.init();
        t.w("ICIER", ICIER_NAKIE | ICIER_TIE);
        let fx = t.w("ICCR2", ICCR2_ST);
        assert_eq!(
            t.peek("ICCR2"),
            ICCR2_BBSY | ICCR2_MST | ICCR2_TRS,
            "ST reads back 0"
        );
        assert_eq!(t.peek("ICSR2"), ICSR2_TDRE | ICSR2_START);
        assert!(t.raised(&fx, "ti"));
        // A second START while the bus is busy is ignored.
        let fx = t.w("ICCR2", ICCR2_ST);
        assert!(fx.raised().next().is_none());
        assert_eq!(t.riic.counters().starts, 1);
    }

    #[test]
    fn tie_enable_with_tdre_set_is_no_edge() {
        let mut t = T::new();
        t.init();
        t.w("ICCR2", ICCR2_ST);
        let fx = t.w("ICIER", ICIER_TIE);
        assert!(!t.raised(&fx, "ti"), "TXI is edge-triggered");
    }

    #[test]
    fn absent_address_nacks() {
        let mut t = T::new();
        t.init();
        t.w("ICIER", ICIER_NAKIE | ICIER_TIE);
        t.w("ICCR2", ICCR2_ST);
        let fx = t.w("ICDRT", (0x51 << 1) | 1);
        assert!(t.raised(&fx, "naki"));
        assert!(!t.raised(&fx, "ti"));
        assert_eq!(t.peek("ICSR2") & (ICSR2_NACKF | ICSR2_TDRE), ICSR2_NACKF);
        assert_eq!(t.peek("ICMR3") & ICMR3_ACKBR, ICMR3_ACKBR);
        // Further bytes are not sent while NACKF is set.
        t.w("ICDRT", 0x12);
        assert_eq!(t.riic.counters().bytes_sent, 1);
        // Clearing NACKF withdraws the level line.
        let fx = t.rmw("ICSR2", ICSR2_NACKF, 0);
        assert!(t.lowered(&fx, "naki"));
        t.w("ICIER", ICIER_SPIE);
        let fx = t.w("ICCR2", ICCR2_SP);
        assert!(t.raised(&fx, "spi"));
        assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, 0);
        assert_eq!(t.riic.counters().nacks, 1);
    }

    #[test]
    fn absent_address_through_the_driver_is_enxio() {
        for addr in [0x08u8, 0x51, 0x77] {
            let mut t = T::new();
            t.init();
            assert_eq!(xfer(&mut t, vec![(addr, true, vec![0])]), Err("ENXIO"));
            assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, 0, "STOP after the NACK");
            // And a quick write (SMBus quick, i2cdetect).
            assert_eq!(xfer(&mut t, vec![(addr, false, vec![])]), Err("ENXIO"));
        }
    }

    #[test]
    fn quick_write_to_the_eeprom_is_acked() {
        let mut t = T::new();
        t.init();
        assert_eq!(
            xfer(&mut t, vec![(EEPROM, false, vec![])]),
            Ok(vec![vec![]])
        );
        assert_eq!(t.riic.counters().stops, 1);
        assert_eq!(t.peek("ICCR2"), 0);
    }

    #[test]
    fn address_ack_for_write_gives_tdre_and_tend() {
        let mut t = T::new();
        t.init();
        t.w("ICIER", ICIER_TIE);
        t.w("ICCR2", ICCR2_ST);
        let fx = t.w("ICDRT", EEPROM << 1);
        assert!(t.raised(&fx, "ti"));
        assert_eq!(
            t.peek("ICSR2") & (ICSR2_TDRE | ICSR2_TEND),
            ICSR2_TDRE | ICSR2_TEND
        );
        assert_eq!(t.peek("ICMR3") & ICMR3_ACKBR, 0);
        // TEIE with TEND set raises TEI (a level).
        let fx = t.rmw("ICIER", ICIER_TIE, ICIER_TEIE);
        assert!(t.raised(&fx, "tei"));
        let fx = t.rmw("ICIER", ICIER_TEIE, 0);
        assert!(t.lowered(&fx, "tei"));
    }

    #[test]
    fn address_ack_for_read_switches_to_receive_with_rdrf() {
        let mut t = T::new();
        t.init();
        t.w("ICIER", ICIER_RIE | ICIER_NAKIE);
        t.w("ICCR2", ICCR2_ST);
        let fx = t.w("ICDRT", (EEPROM << 1) | 1);
        assert!(t.raised(&fx, "ri"));
        assert_eq!(t.peek("ICCR2") & ICCR2_TRS, 0, "master receive");
        assert_eq!(t.peek("ICSR2") & ICSR2_RDRF, ICSR2_RDRF);
        // The dummy read brings the first byte.
        let (_, fx) = t.r("ICDRR");
        assert!(t.raised(&fx, "ri"));
        assert_eq!(t.peek("ICDRR"), initial()[0]);
    }

    #[test]
    fn reading_another_byte_of_the_word_is_not_an_icdrr_read() {
        let mut t = T::new();
        t.init();
        t.w("ICIER", ICIER_RIE);
        t.w("ICCR2", ICCR2_ST);
        t.w("ICDRT", (EEPROM << 1) | 1);
        let (_, fx) = t.r("ICBRL");
        assert!(fx.is_empty());
        assert!(t.riic.transfer().dummy_pending);
    }

    #[test]
    fn eeprom_reads_through_the_driver() {
        let mut t = T::new();
        t.init();
        let want = initial();
        assert_eq!(
            eeprom_read(&mut t, 0, 1),
            Ok(want[..1].to_vec()),
            "at24's probe read"
        );
        assert_eq!(eeprom_read(&mut t, 0, 128), Ok(want[..128].to_vec()));
        assert_eq!(eeprom_read(&mut t, 128, 128), Ok(want[128..].to_vec()));
        // A read runs past the end back to 0.
        let mut wrap = want[250..].to_vec();
        wrap.extend_from_slice(&want[..4]);
        assert_eq!(eeprom_read(&mut t, 250, 10), Ok(wrap));
        assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, 0);
        assert_eq!(t.riic.transfer().phase, Phase::Idle);
    }

    #[test]
    fn last_byte_nack_then_stop() {
        let mut t = T::new();
        t.init();
        t.w("ICIER", ICIER_RIE | ICIER_SPIE);
        t.w("ICCR2", ICCR2_ST);
        t.w("ICDRT", (EEPROM << 1) | 1);
        t.r("ICDRR");
        // The driver asks for the STOP before it sets ACKBT: the STOP waits.
        t.w("ICCR2", ICCR2_SP);
        assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, ICCR2_BBSY);
        t.rmw("ICMR3", 0, ICMR3_ACKBT);
        assert_eq!(t.peek("ICMR3") & ICMR3_ACKBT, ICMR3_ACKBT);
        let (_, fx) = t.r("ICDRR");
        assert!(t.raised(&fx, "spi"));
        assert!(!t.raised(&fx, "ri"), "NACK: no next byte");
        assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, 0);
        assert_eq!(t.peek("ICSR2") & ICSR2_STOP, ICSR2_STOP);
    }

    #[test]
    fn ackbt_changes_only_with_ackwp() {
        let mut t = T::new();
        t.w("ICMR3", ICMR3_ACKBT);
        assert_eq!(t.peek("ICMR3") & ICMR3_ACKBT, 0);
        t.w("ICMR3", ICMR3_ACKBT | ICMR3_ACKWP);
        assert_eq!(t.peek("ICMR3") & ICMR3_ACKBT, ICMR3_ACKBT);
        t.w("ICMR3", ICMR3_ACKBR);
        assert_eq!(t.peek("ICMR3") & ICMR3_ACKBR, 0, "ACKBR is read only");
    }

    #[test]
    fn icsr2_flags_clear_by_writing_zero_hardware_flags_do_not() {
        let mut t = T::new();
        t.init();
        t.w("ICCR2", ICCR2_ST);
        assert_eq!(t.peek("ICSR2"), ICSR2_TDRE | ICSR2_START);
        t.w("ICSR2", 0xff);
        assert_eq!(t.peek("ICSR2"), ICSR2_TDRE | ICSR2_START, "writing 1 keeps");
        t.w("ICSR2", 0);
        assert_eq!(t.peek("ICSR2"), ICSR2_TDRE, "TDRE is the hardware's");
    }

    #[test]
    fn sowp_protects_scl_and_sda_and_pins_follow() {
        let mut t = T::new();
        t.init();
        // riic_set_scl(0): SOWP and SCLO cleared in one write.
        let v = t.peek("ICCR1") & !(ICCR1_SOWP | ICCR1_SCLO);
        t.w("ICCR1", v);
        assert_eq!(t.peek("ICCR1") & (ICCR1_SCLO | ICCR1_SCLI), 0);
        assert_eq!(t.peek("ICCR1") & ICCR1_SOWP, ICCR1_SOWP, "SOWP reads 1");
        // A write with SOWP = 1 does not touch the pins.
        let v = t.peek("ICCR1") | ICCR1_SCLO;
        t.w("ICCR1", v);
        assert_eq!(t.peek("ICCR1") & ICCR1_SCLI, 0);
        let v = (t.peek("ICCR1") & !ICCR1_SOWP) | ICCR1_SCLO;
        t.w("ICCR1", v);
        assert_eq!(t.peek("ICCR1") & ICCR1_SCLI, ICCR1_SCLI);
    }

    #[test]
    fn eeprom_page_write_commits_at_stop_and_wraps_in_its_page() {
        let mut t = T::new();
        t.init();
        let data = vec![0x10, 1, 2, 3];
        assert!(xfer(&mut t, vec![(EEPROM, false, data)]).is_ok());
        assert_eq!(
            t.riic.target_contents(0).map(|c| c[0x10..0x13].to_vec()),
            Some(vec![1, 2, 3])
        );
        assert_eq!(eeprom_read(&mut t, 0x10, 3), Ok(vec![1, 2, 3]));
        // 8-byte pages: 10 bytes from 0x1c wrap to 0x18.
        let mut data = vec![0x1c];
        data.extend(0xa0..0xaa);
        assert!(xfer(&mut t, vec![(EEPROM, false, data)]).is_ok());
        let c = t.riic.target_contents(0).expect("eeprom").to_vec();
        // 0x1c..0x1f, 0x18..0x1b, then 0x1c, 0x1d again (the later bytes win).
        assert_eq!(&c[0x1c..0x20], &[0xa8, 0xa9, 0xa2, 0xa3]);
        assert_eq!(&c[0x18..0x1c], &[0xa4, 0xa5, 0xa6, 0xa7]);
        assert_eq!(t.riic.counters().eeprom_bytes_written, 13);
    }

    #[test]
    fn a_restart_drops_an_unfinished_page_write() {
        let mut t = T::new();
        t.init();
        let before = t.riic.target_contents(0).expect("eeprom")[0x40];
        t.w("ICIER", 0);
        t.w("ICCR2", ICCR2_ST);
        t.w("ICDRT", EEPROM << 1);
        t.w("ICDRT", 0x40);
        t.w("ICDRT", !before);
        t.w("ICCR2", ICCR2_RS);
        t.w("ICCR2", ICCR2_SP);
        assert_eq!(t.riic.target_contents(0).expect("eeprom")[0x40], before);
    }

    #[test]
    fn save_and_load_round_trip_mid_transfer() {
        let mut t = T::new();
        t.init();
        assert!(xfer(&mut t, vec![(EEPROM, false, vec![0x20, 0x55])]).is_ok());
        t.w("ICIER", ICIER_RIE);
        t.w("ICCR2", ICCR2_ST);
        t.w("ICDRT", (EEPROM << 1) | 1);
        let state = t.riic.save();
        let mut u = T::new();
        u.riic.load(&state).expect("loads");
        assert_eq!(u.riic, t.riic);
        // The restored model goes on as the original does.
        let (_, fx1) = t.r("ICDRR");
        let (_, fx2) = u.r("ICDRR");
        assert_eq!(fx1, fx2);
        assert_eq!(u.peek("ICDRR"), t.peek("ICDRR"));
        // Bad states are refused and leave the model alone.
        let mut bad = state.clone();
        bad["targets"] = serde_json::json!([]);
        assert!(u.riic.load(&bad).is_err());
        let mut bad = state;
        bad["targets"][0]["mem"] = serde_json::json!("abc");
        assert!(u.riic.load(&bad).is_err());
    }

    #[test]
    fn reset_brings_back_the_power_on_eeprom() {
        let mut t = T::new();
        t.init();
        assert!(xfer(&mut t, vec![(EEPROM, false, vec![0, 0x99])]).is_ok());
        t.riic.reset();
        assert_eq!(
            t.riic.target_contents(0).map(<[u8]>::to_vec),
            Some(initial())
        );
        assert_eq!(t.riic.counters(), &RiicCounters::default());
        assert_eq!(t.peek("ICCR1"), 0x1f);
    }

    #[test]
    fn missing_registers_and_lines_are_build_errors() {
        let soc = test_soc();
        let mut dev = soc.device("i2c0").expect("i2c0").clone();
        dev.interrupts.retain(|l| l.name != "naki");
        let e = Riic::new(&dev, &ModelConfig::default()).expect_err("no naki");
        assert_eq!(e.key, "interrupts");
        assert!(e.message.contains("naki"), "{}", e.message);
        let mut dev = soc.device("i2c0").expect("i2c0").clone();
        for r in &mut dev.registers {
            r.fields.retain(|f| f.name != "ICDRR");
        }
        let e = Riic::new(&dev, &ModelConfig::default()).expect_err("no ICDRR");
        assert_eq!(e.key, "registers");
        assert!(e.message.contains("ICDRR"), "{}", e.message);
    }

    #[test]
    fn a_32_bit_store_writes_every_byte_register_of_the_word() {
        let mut t = T::new();
        t.init();
        let (word, _) = t.at("ICMR3");
        let mut fx = Effects::default();
        // ICMR3 = ACKWP|ACKBT, ICFER = 0x72, ICSER = 0, ICIER = TIE.
        t.riic.write(word, 0x80_00_72_18, &Env::EMPTY, &mut fx);
        assert_eq!(t.peek("ICMR3"), 0x18);
        assert_eq!(t.peek("ICIER"), ICIER_TIE);
    }

    #[test]
    fn bus_busy_fault_keeps_bbsy_and_refuses_the_start() {
        let mut t = T::with_faults(vec![Fault::RiicBusBusy]);
        assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, ICCR2_BBSY, "from power-on");
        t.init();
        assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, ICCR2_BBSY, "after the reset");
        let (_, fx) = t.r("ICCR2");
        assert!(fx.fired(Fault::RiicBusBusy), "the barrier's poll sees it");
        t.w("ICIER", ICIER_TIE | ICIER_NAKIE);
        let fx = t.w("ICCR2", ICCR2_ST);
        assert!(fx.fired(Fault::RiicBusBusy));
        assert!(fx.raised().next().is_none(), "no START, no TXI");
        assert_eq!(t.riic.counters().starts, 0);
        t.riic.reset();
        assert_eq!(t.peek("ICCR2") & ICCR2_BBSY, ICCR2_BBSY);
        // Without the fault nothing fires.
        let mut t = T::new();
        t.init();
        let (_, fx) = t.r("ICCR2");
        assert!(!fx.fired(Fault::RiicBusBusy));
    }
}
