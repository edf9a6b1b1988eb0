//! The peripheral interface: what every device model implements and all the bus knows of one.
//!
//! A model is a plain struct that keeps its register values and its state; it never sees
//! QEMU, the bus, the window or another model. The bus calls it for a guest write of a
//! declared register ([`Peripheral::write`]) and, because QEMU reports an access only after
//! it has landed, after a guest read ([`Peripheral::after_read`]): a read can change only
//! what the *next* read sees (a FIFO pops, a clear-on-read flag clears). What the model asks
//! of the world goes into [`Effects`]: interrupt lines raised or lowered, small memory
//! writes applied after the call, faults that fired, a test-step marker. What the model
//! cannot see by itself (whether a condition declared in the SoC description holds, the
//! value another device drives on a declared link, the bus time) comes in an [`Env`], and
//! so does guest memory ([`GuestMemory`], [`Env::memory`]), which a bus master (the DMA
//! controller) reads and writes during the call: descriptors, then the copy.
//!
//! Models are built by `crate::registry` from their device description; nothing else
//! names a concrete model.

use serde_json::Value;

use crate::config::Fault;

/// A little-endian store of `size` bytes at guest-physical `phys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MemWrite {
    pub phys: u64,
    pub size: u8,
    pub value: u64,
}

/// Why a model cannot be built from its device description. The registry reports it as an
/// error of the SoC file at `devices.<name>.<key>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildError {
    /// The device key at fault (`registers`, `inputs`, `interrupts`, `channels`, ...).
    pub key: String,
    pub message: String,
}

impl BuildError {
    pub fn new(key: impl Into<String>, message: impl Into<String>) -> BuildError {
        BuildError {
            key: key.into(),
            message: message.into(),
        }
    }
}

/// One device model.
pub trait Peripheral: Send {
    /// The value each declared register reads now, indexed like the device's `registers`.
    fn values(&self) -> &[u32];

    /// The value register `reg` reads now (0 for an index the device does not have).
    #[inline]
    fn value(&self, reg: usize) -> u32 {
        self.values().get(reg).copied().unwrap_or(0)
    }

    /// Back to the state the device has at power-on (what the constructor returned).
    fn reset(&mut self);

    /// A guest write of `value` (already merged to 32 bits) to declared register `reg`.
    fn write(&mut self, reg: usize, value: u32, env: &Env, fx: &mut Effects);

    /// A guest store that covered only the bytes `lanes` of register `reg` (bit n = byte n;
    /// `value` holds what the window held in the other bytes). Devices that pack several
    /// byte-wide registers into one declared 32-bit register (the RIIC's ICCR1..ICMR2 at
    /// 0x00..0x03) need to know which of them the guest wrote; the others get
    /// [`Peripheral::write`].
    fn write_lanes(&mut self, reg: usize, value: u32, lanes: u8, env: &Env, fx: &mut Effects) {
        let _ = lanes;
        self.write(reg, value, env, fx);
    }

    /// Whether [`Peripheral::after_read`] does anything: the bus calls it only for models
    /// that say so, since most reads (the CPG's CLK_MON polls) change nothing.
    fn watches_reads(&self) -> bool {
        false
    }

    /// Called after a guest read of declared register `reg` (the guest has its value
    /// already), for models that [watch reads](Peripheral::watches_reads). Returns true
    /// when a register value changed, so the bus writes the window.
    fn after_read(&mut self, _reg: usize, _env: &Env, _fx: &mut Effects) -> bool {
        false
    }

    /// [`Peripheral::after_read`] of a load that covered only the bytes `lanes` of `reg`
    /// (bit n = byte n): reading ICDRR, byte 3 of the RIIC's word at 0x10, takes a received
    /// byte, reading ICBRL beside it does not.
    fn after_read_lanes(&mut self, reg: usize, lanes: u8, env: &Env, fx: &mut Effects) -> bool {
        let _ = lanes;
        self.after_read(reg, env, fx)
    }

    /// The value the device drives on its output (an analog level, a line), for the
    /// devices whose declared `inputs` name this one.
    fn output(&self) -> Option<u32> {
        None
    }

    /// The model's counters for the summary event (conversions, bytes moved, ...).
    fn counters(&self) -> Option<Value> {
        None
    }

    /// Whether the model keeps time (a counter that runs without guest accesses). Only
    /// then does the bus read its clock for the model's calls ([`Env::now_ns`]), call
    /// [`Peripheral::tick`] after every write to the clock controller (a reset asserted
    /// or a clock stopped stops a counter) and ask for [`Peripheral::deadline`].
    fn keeps_time(&self) -> bool {
        false
    }

    /// The bus time (ns, [`Env::now_ns`]) at which something falls due without a guest
    /// access (a watchdog's expiry); None when nothing is due.
    fn deadline(&self) -> Option<u64> {
        None
    }

    /// Time passed, or the conditions in `env` changed: the model does what is due at
    /// `env.now_ns()`. Returns true when a register value changed.
    fn tick(&mut self, _env: &Env, _fx: &mut Effects) -> bool {
        false
    }

    /// Everything the model keeps that changes while the guest runs (register values,
    /// counters, a transfer in flight), for a snapshot: a plugin restored from it must
    /// behave exactly as this one would. What comes from the plugin's arguments (host
    /// values, armed faults) is not state: the restored plugin's own arguments give it.
    fn save(&self) -> Value;

    /// Takes back what [`Peripheral::save`] of a model of the same description returned;
    /// the error says what does not fit (the model is then unchanged).
    fn load(&mut self, state: &Value) -> Result<(), String>;
}

/// A model's saved state as the register file's ([`crate::regs`] `save`) with the model's
/// own parts beside it, each under its key (read back with [`saved_part`]).
pub fn save_with_parts(regs: Value, parts: &[(&str, serde_json::Result<Value>)]) -> Value {
    let mut state = regs;
    if let Some(fields) = state.as_object_mut() {
        for (key, value) in parts {
            if let Ok(v) = value {
                fields.insert((*key).into(), v.clone());
            }
        }
    }
    state
}

/// One part of a state [`save_with_parts`] wrote; the error names the key.
pub fn saved_part<T: serde::de::DeserializeOwned>(state: &Value, key: &str) -> Result<T, String> {
    state
        .get(key)
        .cloned()
        .ok_or_else(|| format!("no `{key}`"))
        .and_then(|v| serde_json::from_value(v).map_err(|e| format!("`{key}`: {e}")))
}

/// Guest-physical memory as a bus master (a DMA controller) sees it: the QEMU glue reads and
/// writes the machine's address space, the unit tests a `Vec`. Calls come from inside a
/// model call, on the vCPU thread whose access (or deadline) led to it. An address the
/// machine does not back is an `Err` naming it; a model turns it into the device's own error
/// report (a DMA channel's error status and interrupt), never into a panic.
pub trait GuestMemory: Send {
    /// Fills `buf` with the bytes at guest-physical `phys`.
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), String>;
    /// Stores `data` at guest-physical `phys`.
    fn write(&self, phys: u64, data: &[u8]) -> Result<(), String>;
}

/// A machine without memory (a bus the glue gave none): every access fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoMemory;

impl GuestMemory for NoMemory {
    fn read(&self, phys: u64, _buf: &mut [u8]) -> Result<(), String> {
        Err(format!("no guest memory at 0x{phys:x} (the bus has none)"))
    }
    fn write(&self, phys: u64, _data: &[u8]) -> Result<(), String> {
        Err(format!("no guest memory at 0x{phys:x} (the bus has none)"))
    }
}

/// What the bus knows and a model cannot see: the declared conditions of the device that do
/// not hold now (with the reason, in words), the values of its declared inputs, for
/// models that [keep time](Peripheral::keeps_time) the bus time, and guest memory (what a
/// bus master reads and writes; [`NoMemory`] unless the bus has some).
#[derive(Clone)]
pub struct Env<'m> {
    unmet: Vec<(String, String)>,
    inputs: Vec<(String, u32)>,
    now_ns: u64,
    memory: &'m dyn GuestMemory,
}

impl std::fmt::Debug for Env<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Env")
            .field("unmet", &self.unmet)
            .field("inputs", &self.inputs)
            .field("now_ns", &self.now_ns)
            .finish_non_exhaustive()
    }
}

impl Default for Env<'_> {
    fn default() -> Self {
        Env::EMPTY
    }
}

impl Env<'static> {
    /// Nothing unmet, no inputs, no memory (devices that declare neither get this one).
    pub const EMPTY: Env<'static> = Env {
        unmet: Vec::new(),
        inputs: Vec::new(),
        now_ns: 0,
        memory: &NoMemory,
    };

    pub fn new(unmet: Vec<(String, String)>, inputs: Vec<(String, u32)>) -> Env<'static> {
        Env {
            unmet,
            inputs,
            now_ns: 0,
            memory: &NoMemory,
        }
    }
}

impl<'m> Env<'m> {
    /// The same, at bus time `now_ns`.
    pub fn at(mut self, now_ns: u64) -> Env<'m> {
        self.now_ns = now_ns;
        self
    }

    /// The same, with guest memory `memory`.
    pub fn with_memory<'n>(self, memory: &'n dyn GuestMemory) -> Env<'n> {
        Env {
            unmet: self.unmet,
            inputs: self.inputs,
            now_ns: self.now_ns,
            memory,
        }
    }

    /// Guest-physical memory, for bus masters.
    pub fn memory(&self) -> &'m dyn GuestMemory {
        self.memory
    }

    /// The bus time in ns: monotonic, continuous across a snapshot (the bus's clock);
    /// 0 for models that do not [keep time](Peripheral::keeps_time).
    pub fn now_ns(&self) -> u64 {
        self.now_ns
    }

    /// Why the declared condition `name` does not hold now; None when it holds (or is not
    /// declared).
    pub fn unmet(&self, name: &str) -> Option<&str> {
        self.unmet
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, why)| why.as_str())
    }

    /// The value on the declared input `name`; None when the input is not wired or its
    /// source drives nothing.
    pub fn input(&self, name: &str) -> Option<u32> {
        self.inputs.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }
}

/// Guest memory in a `Vec` at guest-physical `base` (tests): reads and writes outside it
/// fail like an unbacked address does.
#[derive(Debug, Default)]
pub struct VecMemory {
    pub base: u64,
    pub bytes: std::sync::Mutex<Vec<u8>>,
}

impl VecMemory {
    pub fn new(base: u64, size: usize) -> VecMemory {
        VecMemory {
            base,
            bytes: std::sync::Mutex::new(vec![0; size]),
        }
    }

    fn range(&self, phys: u64, len: usize, total: usize) -> Result<std::ops::Range<usize>, String> {
        let start = phys
            .checked_sub(self.base)
            .and_then(|o| usize::try_from(o).ok())
            .filter(|&o| o.checked_add(len).is_some_and(|end| end <= total))
            .ok_or_else(|| format!("0x{phys:x}+{len} is outside guest memory"))?;
        Ok(start..start + len)
    }

    /// A copy of `len` bytes at `phys` (panics outside: tests only).
    pub fn peek(&self, phys: u64, len: usize) -> Vec<u8> {
        let mut buf = vec![0; len];
        self.read(phys, &mut buf).expect("inside the test memory");
        buf
    }
}

impl GuestMemory for VecMemory {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), String> {
        let bytes = self
            .bytes
            .lock()
            .map_err(|_| "memory lock poisoned".to_string())?;
        let r = self.range(phys, buf.len(), bytes.len())?;
        buf.copy_from_slice(bytes.get(r).unwrap_or_default());
        Ok(())
    }
    fn write(&self, phys: u64, data: &[u8]) -> Result<(), String> {
        let mut bytes = self
            .bytes
            .lock()
            .map_err(|_| "memory lock poisoned".to_string())?;
        let total = bytes.len();
        let r = self.range(phys, data.len(), total)?;
        if let Some(dst) = bytes.get_mut(r) {
            dst.copy_from_slice(data);
        }
        Ok(())
    }
}

/// What one model call asks of the bus. Interrupt lines are indexes into the device's
/// declared `interrupts`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Effects {
    raised: u32,
    lowered: u32,
    /// Armed faults that changed the model's behaviour (one bit per [`Fault::ALL`] entry).
    faults: u32,
    /// The guest marked the start of test step N (the mailbox).
    pub marker: Option<u32>,
    /// Guest-physical memory writes, applied in order after the device's registers.
    pub memory: Vec<MemWrite>,
    /// The device resets the machine (a watchdog that bit), with the reason in words.
    pub system_reset: Option<SystemReset>,
}

/// A model's request to reset the whole machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemReset {
    /// Why, in words ("WDTTIM overflowed twice without a WDTINT ping").
    pub reason: String,
    /// Bus time (ns) at which the counter was last started or pinged.
    pub armed_ns: u64,
    /// The programmed time from that instant to the reset (ns).
    pub timeout_ns: u64,
    /// Bus time (ns) the reset fell due (armed_ns + timeout_ns, or the instant of a forced
    /// reset); the reset is seen at the first check after it.
    pub due_ns: u64,
}

impl Effects {
    /// Makes interrupt line `line` pending.
    pub fn raise(&mut self, line: usize) {
        if let Some(bit) = line_bit(line) {
            self.raised |= bit;
            self.lowered &= !bit;
        }
    }

    /// Withdraws interrupt line `line` (a level interrupt whose cause was cleared).
    pub fn lower(&mut self, line: usize) {
        if let Some(bit) = line_bit(line) {
            self.lowered |= bit;
            self.raised &= !bit;
        }
    }

    pub fn raised(&self) -> impl Iterator<Item = usize> + '_ {
        (0..32).filter(|l| self.raised & (1 << l) != 0)
    }

    pub fn lowered(&self) -> impl Iterator<Item = usize> + '_ {
        (0..32).filter(|l| self.lowered & (1 << l) != 0)
    }

    pub fn any_irq(&self) -> bool {
        self.raised != 0
    }

    pub fn fire(&mut self, fault: Fault) {
        self.faults |= 1 << fault.index();
    }

    pub fn fired(&self, fault: Fault) -> bool {
        self.faults & (1 << fault.index()) != 0
    }

    pub fn faults(&self) -> impl Iterator<Item = Fault> + '_ {
        Fault::ALL.into_iter().filter(|f| self.fired(*f))
    }

    /// True when nothing was asked.
    pub fn is_empty(&self) -> bool {
        self.raised == 0
            && self.lowered == 0
            && self.faults == 0
            && self.marker.is_none()
            && self.memory.is_empty()
            && self.system_reset.is_none()
    }

    pub fn clear(&mut self) {
        self.raised = 0;
        self.lowered = 0;
        self.faults = 0;
        self.marker = None;
        self.memory.clear();
        self.system_reset = None;
    }
}

/// Interrupt lines are bits of a u32: a device declares at most 32.
pub const MAX_LINES: usize = 32;

fn line_bit(line: usize) -> Option<u32> {
    (line < MAX_LINES).then(|| 1u32 << line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raise_and_lower_are_last_wins_per_line() {
        let mut fx = Effects::default();
        fx.raise(0);
        fx.raise(3);
        fx.lower(3);
        assert_eq!(fx.raised().collect::<Vec<_>>(), vec![0]);
        assert_eq!(fx.lowered().collect::<Vec<_>>(), vec![3]);
        fx.raise(40);
        assert_eq!(fx.raised().count(), 1, "lines past 31 do not exist");
    }

    #[test]
    fn faults_and_clear() {
        let mut fx = Effects::default();
        assert!(fx.is_empty());
        fx.fire(Fault::AdcSresbStuck);
        fx.marker = Some(2);
        assert!(fx.fired(Fault::AdcSresbStuck));
        assert!(!fx.fired(Fault::AdcConversionStuck));
        fx.clear();
        assert!(fx.is_empty());
    }

    #[test]
    fn env_answers_by_name() {
        let env = Env::new(
            vec![("conversion".into(), "ADC adclk off".into())],
            vec![("ch8".into(), 966)],
        );
        assert_eq!(env.unmet("conversion"), Some("ADC adclk off"));
        assert_eq!(env.unmet("other"), None);
        assert_eq!(env.input("ch8"), Some(966));
        assert_eq!(Env::EMPTY.input("ch8"), None);
    }
}
