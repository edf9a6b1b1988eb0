//! `on_abort=serror`: everything about entering the guest kernel's SError path that does not
//! need QEMU: the booted kernel's `System.map`, the check that it is the running kernel's,
//! and the plan of one divert (the bytes to store on the guest stack, the registers to set,
//! the PC to jump to). The plugin crate's FFI module only carries the plan out; the plugin
//! crate's `serror` module has what faces the plugin's user: reading the `symbols=` file
//! and its errors, QEMU's `-kernel`, and the abort event's `serror` field.
//!
//! # The faithful divert (what a hardware SError taken at EL1 leaves behind)
//!
//! On the board, a gated access ends in an asynchronous SError. The CPU enters the vector
//! `el1h_64_error` with DAIF masked; the entry code stores a `struct pt_regs` below the
//! interrupted sp (every GPR, sp, pc, pstate, and a *metadata frame record* of type
//! PT_REGS), points x29 at that record and calls `el1h_64_error_handler(regs)`, whose frame
//! record sits just below pt_regs and which calls `do_serror(regs, esr)`. The plan
//! rebuilds exactly that state, as if the CPU were at the first instruction of `do_serror`:
//!
//! ```text
//! higher addresses   interrupted sp ─────────────────────────────────────────────
//!                    struct pt_regs (320 bytes, 16-aligned)       x0 = regs
//!                      regs[0..31], sp, pc = faulting insn, pstate, orig_x0,
//!                      syscallno = -1, pmr, sdei_ttbr1,
//!                      stackframe = {fp 0, lr 0, type PT_REGS}  <─┐
//!                    el1h_64_error_handler's frame (its prologue's size)  │
//!                      record {fp ────────────────────────────────────────┘,
//!                              lr = return address into el1h_64_error}  <─ x29 = sp
//! lower addresses
//! x1 = ESR 0xbe000011, x30 = return address into el1h_64_error_handler,
//! PSTATE = the interrupted one with D, A, I, F masked, PC = do_serror
//! ```
//!
//! The kernel's unwinder then walks do_serror -> el1h_64_error_handler -> el1h_64_error ->
//! the meta record -> pt_regs->pc `(P)` -> pt_regs->regs[29] -> ... into the driver, and
//! `__show_regs` prints `pc : <faulting function>+0x..`. sp sits below the handler's frame
//! record (where the real handler's sp is), not at pt_regs: `do_serror`'s own prologue
//! stores below sp and would otherwise overwrite that record.
//!
//! The return addresses are not guessed: they are the addresses after the `bl` instructions
//! found in the running kernel's code (read from guest memory at the first window access,
//! which is also the check that the map is the running kernel's, see [`verify`]).
//!
//! # The fallback
//!
//! When the map lacks one of `do_serror`, `el1h_64_error_handler`, `el1h_64_error` but has
//! `arm64_serror_panic`, the vCPU enters `arm64_serror_panic(regs, esr)` directly, with the
//! same pt_regs (so the register dump and its `pc :` line still appear), x30 = faulting
//! pc + 4 (so the faulting function is the first frame of the trace) and x29 untouched. A
//! leaf function without a frame record loses its caller in that trace.
//!
//! # Layout facts (Linux 7.2, arm64; checked against the build's asm-offsets.h)
//!
//! `struct pt_regs`: regs[31] at 0, sp 248, pc 256, pstate 264, orig_x0 272, syscallno
//! (s32) 280, pmr (u32) 284, sdei_ttbr1 288, stackframe (struct frame_record_meta: fp, lr,
//! type) 296, size 320. FRAME_META_TYPE_PT_REGS = 2. `do_serror(struct pt_regs *regs,
//! unsigned long esr)` and `arm64_serror_panic(struct pt_regs *regs, unsigned long esr)`
//! (regs may be NULL).

use std::collections::HashMap;

/// The ESR passed to the kernel: EC 0x2f (SError), IL, ISS = DFSC 0x11 (asynchronous SError
/// interrupt), AET 0 (uncontainable). `arm64_is_fatal_ras_serror` panics on it.
pub const SERROR_ESR: u64 = 0xbe00_0011;

pub const PT_REGS_SIZE: u64 = 320;
const PT_REGS_SP: usize = 248;
const PT_REGS_PC: usize = 256;
const PT_REGS_PSTATE: usize = 264;
const PT_REGS_ORIG_X0: usize = 272;
const PT_REGS_SYSCALLNO: usize = 280;
/// `pt_regs.stackframe`: the metadata frame record.
pub const PT_REGS_STACKFRAME: u64 = 296;
const PT_REGS_STACKFRAME_TYPE: usize = 312;
const FRAME_META_TYPE_PT_REGS: u64 = 2;

/// PSTATE.{D,A,I,F}.
const PSTATE_DAIF: u32 = 0xf << 6;
/// PSTATE.nRW (AArch32) and M[3:0] = EL1h.
const PSTATE_AARCH32: u32 = 1 << 4;
const PSTATE_MODE: u32 = 0xf;
const PSTATE_EL1H: u32 = 0b0101;

/// The symbols of the faithful variant, in the order they are entered.
pub const FAITHFUL_SYMBOLS: [&str; 3] = ["el1h_64_error", "el1h_64_error_handler", "do_serror"];
pub const FALLBACK_SYMBOL: &str = "arm64_serror_panic";

/// How far into a function its code is read for the `bl` that identifies it.
const MAX_SCAN: u64 = 4096;

// ---- System.map --------------------------------------------------------------------------

/// The symbols of one kernel build, from its `System.map` (`ADDR TYPE NAME` lines).
#[derive(Debug, Clone, Default)]
pub struct KernelSymbols {
    /// Every address a name has (local symbols may repeat a name).
    by_name: HashMap<String, Vec<u64>>,
    /// Addresses of text symbols, sorted, unique: where each function ends.
    text: Vec<u64>,
}

impl KernelSymbols {
    pub fn parse(text: &str) -> KernelSymbols {
        let mut symbols = KernelSymbols::default();
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            if kind.len() != 1 {
                continue;
            }
            if matches!(kind, "T" | "t" | "W" | "w") {
                symbols.text.push(addr);
            }
            let addresses = symbols.by_name.entry(name.to_string()).or_default();
            if !addresses.contains(&addr) {
                addresses.push(addr);
            }
        }
        symbols.text.sort_unstable();
        symbols.text.dedup();
        symbols
    }

    /// Does the text look like a kernel's `System.map` at all: some text symbols, and
    /// `_text`? (Checked when the file is loaded.)
    pub fn is_kernel_map(&self) -> bool {
        !self.text.is_empty() && self.address("_text").is_some()
    }

    /// The address of `name`, when the map gives it exactly one.
    pub fn address(&self, name: &str) -> Option<u64> {
        match self.by_name.get(name).map(Vec::as_slice) {
            Some([addr]) => Some(*addr),
            _ => None,
        }
    }

    /// `name`'s code: from its address to the next text symbol's (at most [`MAX_SCAN`]).
    pub(crate) fn function(&self, name: &str) -> Option<Function> {
        let start = self.address(name)?;
        let next = self.text.partition_point(|&addr| addr <= start);
        let end = self
            .text
            .get(next)
            .copied()
            .unwrap_or(start + MAX_SCAN)
            .min(start + MAX_SCAN);
        Some(Function {
            name: name.to_string(),
            start,
            end,
        })
    }
}

// ---- what the map offers -----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Function {
    pub(crate) name: String,
    pub(crate) start: u64,
    /// First address past its code (the next text symbol).
    pub(crate) end: u64,
}

/// The SError entry points of one kernel, resolved from its map at install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerrorSymbols {
    /// el1h_64_error, el1h_64_error_handler, do_serror; `None` when one is missing.
    faithful: Option<[Function; 3]>,
    fallback: Option<Function>,
    /// `vectors`, compared with VBAR_EL1.
    vectors: Option<u64>,
    /// `_text`: where the kernel Image's first byte is.
    text: Option<u64>,
    /// Symbols of the faithful variant the map lacks.
    pub missing: Vec<String>,
}

impl SerrorSymbols {
    /// The entry points `symbols` gives; `None` when it has neither every symbol of the
    /// faithful variant nor [`FALLBACK_SYMBOL`].
    pub fn resolve(symbols: &KernelSymbols) -> Option<SerrorSymbols> {
        let found: Vec<Option<Function>> = FAITHFUL_SYMBOLS
            .iter()
            .map(|name| symbols.function(name))
            .collect();
        let missing: Vec<String> = FAITHFUL_SYMBOLS
            .iter()
            .zip(&found)
            .filter(|(_, function)| function.is_none())
            .map(|(name, _)| name.to_string())
            .collect();
        let faithful = match found.as_slice() {
            [Some(entry), Some(handler), Some(target)] => {
                Some([entry.clone(), handler.clone(), target.clone()])
            }
            _ => None,
        };
        let fallback = symbols.function(FALLBACK_SYMBOL);
        if faithful.is_none() && fallback.is_none() {
            return None;
        }
        Some(SerrorSymbols {
            faithful,
            fallback,
            vectors: symbols.address("vectors"),
            text: symbols.address("_text"),
            missing,
        })
    }

    pub fn is_faithful(&self) -> bool {
        self.faithful.is_some()
    }
}

// ---- the check against the running kernel ------------------------------------------------

/// What the running kernel's code says, once checked: the divert's return addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    Faithful {
        do_serror: u64,
        /// After `bl do_serror` in el1h_64_error_handler.
        handler_return: u64,
        /// After `bl el1h_64_error_handler` in el1h_64_error.
        entry_return: u64,
        /// el1h_64_error_handler's frame size (from its prologue; 16 when not found).
        handler_frame: u64,
    },
    Fallback {
        arm64_serror_panic: u64,
        missing: Vec<String>,
    },
}

/// Checks that the map describes the kernel the guest runs, from the guest's own code and
/// vector base: `read(addr, len)` reads guest-virtual memory, `vbar` is VBAR_EL1 when QEMU
/// exposes it. Called at the first access to the window, when the kernel runs with its final
/// mappings and its vectors installed, before any abort can need a divert.
///
/// - `vectors` must be VBAR_EL1 (when both are known): every kernel sets VBAR_EL1 to it.
/// - faithful: the code at el1h_64_error must contain a `bl` to the map's
///   el1h_64_error_handler, and that one a `bl` to the map's do_serror. Maps of other
///   builds put these functions elsewhere (by 0x40 between `upstream` and `prefix`), and
///   the pc-relative `bl` at a wrong address does not land on the right target.
/// - fallback: arm64_serror_panic must start with a frame-record prologue; and when the map
///   has do_serror, do_serror must call it.
///
/// `Err` says what does not match, in words.
pub fn verify(
    symbols: &SerrorSymbols,
    vbar: Option<u64>,
    mut read: impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<Verified, String> {
    if let (Some(vectors), Some(vbar)) = (symbols.vectors, vbar) {
        if vectors != vbar {
            return Err(format!(
                "VBAR_EL1 is {vbar:#x} but the map puts `vectors` at {vectors:#x} \
                 (another build, or a kernel with KASLR)"
            ));
        }
    }
    if let Some([entry, handler, target]) = &symbols.faithful {
        let entry_code = read_function(entry, &mut read)?;
        let entry_call = find_call(&entry_code, entry.start, handler.start)
            .ok_or_else(|| no_call(entry, handler))?;
        let handler_code = read_function(handler, &mut read)?;
        let handler_call = find_call(&handler_code, handler.start, target.start)
            .ok_or_else(|| no_call(handler, target))?;
        let handler_frame = prologue_frame_size(&handler_code).unwrap_or(16);
        return Ok(Verified::Faithful {
            do_serror: target.start,
            handler_return: handler_call + 4,
            entry_return: entry_call + 4,
            handler_frame,
        });
    }
    let Some(panic) = &symbols.fallback else {
        return Err("the map has no SError entry point".to_string());
    };
    let code = read_function(panic, &mut read)?;
    if prologue_frame_size(&code).is_none() {
        return Err(format!(
            "the code at {} ({:#x}) does not start like a function (no frame-record prologue)",
            panic.name, panic.start
        ));
    }
    Ok(Verified::Fallback {
        arm64_serror_panic: panic.start,
        missing: symbols.missing.clone(),
    })
}

/// `ARM\x64` at offset 56 of an arm64 kernel `Image` (Documentation/arch/arm64/booting.rst).
const ARM64_IMAGE_MAGIC: &[u8; 4] = b"ARM\x64";
const ARM64_IMAGE_MAGIC_OFFSET: usize = 56;

/// The same check as [`verify`], made at install against the kernel Image file QEMU is about
/// to boot (the Image is the kernel's memory from `_text` on, KASLR off), so that a wrong map
/// stops QEMU before the guest starts. `None` when `image` is not an uncompressed arm64
/// Image or the map has no `_text`: then only the check at run time is made.
pub fn verify_image(symbols: &SerrorSymbols, image: &[u8]) -> Option<Result<Verified, String>> {
    let magic = image.get(ARM64_IMAGE_MAGIC_OFFSET..ARM64_IMAGE_MAGIC_OFFSET + 4)?;
    if magic != ARM64_IMAGE_MAGIC {
        return None;
    }
    let text = symbols.text?;
    Some(verify(symbols, None, |addr, len| {
        let start = usize::try_from(addr.checked_sub(text)?).ok()?;
        image
            .get(start..start.checked_add(len)?)
            .map(<[u8]>::to_vec)
    }))
}

pub(crate) fn read_function(
    function: &Function,
    read: &mut impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<Vec<u8>, String> {
    let len = (function.end - function.start) as usize;
    match read(function.start, len) {
        Some(code) if code.len() == len => Ok(code),
        _ => Err(format!(
            "the guest has no readable code at {} ({:#x})",
            function.name, function.start
        )),
    }
}

pub(crate) fn no_call(caller: &Function, callee: &Function) -> String {
    format!(
        "the code at {} ({:#x}) does not call {} ({:#x})",
        caller.name, caller.start, callee.name, callee.start
    )
}

fn instructions(code: &[u8]) -> impl Iterator<Item = u32> + '_ {
    code.chunks_exact(4)
        .map(|word| u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
}

/// The address of the first `bl target` in `code` (which starts at `start`).
pub(crate) fn find_call(code: &[u8], start: u64, target: u64) -> Option<u64> {
    instructions(code).enumerate().find_map(|(index, insn)| {
        let at = start + 4 * index as u64;
        (bl_target(insn, at) == Some(target)).then_some(at)
    })
}

/// `BL imm26`: the target of the instruction `insn` at `at`.
fn bl_target(insn: u32, at: u64) -> Option<u64> {
    if insn & 0xfc00_0000 != 0x9400_0000 {
        return None;
    }
    // Sign-extend the 26-bit word offset.
    let words = ((insn & 0x03ff_ffff) << 6) as i32 >> 6;
    Some(at.wrapping_add_signed(i64::from(words) * 4))
}

/// The frame size of a `stp x29, x30, [sp, #-N]!` among the first four instructions (after
/// `paciasp`, `bti c` and the like), or `None` when there is none.
pub(crate) fn prologue_frame_size(code: &[u8]) -> Option<u64> {
    instructions(code).take(4).find_map(|insn| {
        // STP (64-bit GPRs, pre-index): 1010 1001 10 imm7 Rt2 Rn Rt
        let is_pre_index_stp = insn & 0xffc0_0000 == 0xa980_0000;
        let (rt, rn, rt2) = (insn & 0x1f, (insn >> 5) & 0x1f, (insn >> 10) & 0x1f);
        if !is_pre_index_stp || rt != 29 || rt2 != 30 || rn != 31 {
            return None;
        }
        let imm7 = (((insn >> 15) & 0x7f) << 25) as i32 >> 25;
        (imm7 < 0).then(|| u64::from(imm7.unsigned_abs()) * 8)
    })
}

// ---- one divert --------------------------------------------------------------------------

/// The vCPU's registers at the faulting access, as the plan needs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuState {
    pub x: [u64; 31],
    pub sp: u64,
    /// PSTATE as QEMU's `cpsr` register shows it (4 bytes).
    pub cpsr: u32,
}

/// A register the plan sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Register {
    X(u8),
    Sp,
    /// 4 bytes.
    Cpsr,
}

/// Which of the kernel's SError entry points a divert enters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DivertMode {
    /// `do_serror`, below the entry code's frames (see the module documentation).
    Faithful,
    /// `arm64_serror_panic` directly.
    Fallback,
}

/// The exception a divert makes the guest kernel see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exception {
    /// An asynchronous SError interrupt (ESR [`SERROR_ESR`]): a gated write, as on the
    /// board, where the write is posted and the bus error comes back later.
    Serror,
    /// A synchronous external abort on a data access (ESR [`crate::sea::SEA_READ_ESR`]): a
    /// gated read, as on the board, where the load itself takes the abort.
    SyncExternalAbort,
}

impl Exception {
    /// The name in events and reports.
    pub fn name(self) -> &'static str {
        match self {
            Exception::Serror => "serror",
            Exception::SyncExternalAbort => "synchronous-external-abort",
        }
    }
}

/// What to do to the vCPU, in this order: store `stack` at `stack_addr` (guest-virtual),
/// set `registers`, then jump to `pc`. The rest says what the divert is (the plugin reports
/// it in the abort event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divert {
    pub exception: Exception,
    /// The ESR handed to the kernel (x1).
    pub esr: u64,
    pub stack_addr: u64,
    pub stack: Vec<u8>,
    pub registers: Vec<(Register, u64)>,
    pub pc: u64,
    pub mode: DivertMode,
    /// The symbol at `pc`: `do_serror` or `arm64_serror_panic`.
    pub target: &'static str,
    /// Guest-virtual address of the `struct pt_regs` built on the stack (x0).
    pub regs: u64,
    /// Symbols of the faithful variant the map lacks (fallback only).
    pub missing: Vec<String>,
}

/// Plans the divert of the vCPU in `state` whose instruction at `fault_pc` made a gated
/// access. `Err` says why it cannot be diverted (the caller stops the machine instead).
pub fn plan(verified: &Verified, state: &CpuState, fault_pc: u64) -> Result<Divert, String> {
    check_el1h(state)?;
    let regs = pt_regs_address(state);
    let pt_regs = pt_regs_bytes(state, fault_pc);
    let masked = u64::from(state.cpsr | PSTATE_DAIF);
    match verified {
        Verified::Faithful {
            do_serror,
            handler_return,
            entry_return,
            handler_frame,
        } => {
            let frame = regs - handler_frame;
            let mut stack = vec![0u8; *handler_frame as usize];
            stack[..8].copy_from_slice(&(regs + PT_REGS_STACKFRAME).to_le_bytes());
            stack[8..16].copy_from_slice(&entry_return.to_le_bytes());
            stack.extend_from_slice(&pt_regs);
            Ok(Divert {
                exception: Exception::Serror,
                esr: SERROR_ESR,
                stack_addr: frame,
                stack,
                registers: vec![
                    (Register::X(0), regs),
                    (Register::X(1), SERROR_ESR),
                    (Register::X(29), frame),
                    (Register::X(30), *handler_return),
                    (Register::Sp, frame),
                    (Register::Cpsr, masked),
                ],
                pc: *do_serror,
                mode: DivertMode::Faithful,
                target: FAITHFUL_SYMBOLS[2],
                regs,
                missing: Vec::new(),
            })
        }
        Verified::Fallback {
            arm64_serror_panic,
            missing,
        } => Ok(Divert {
            exception: Exception::Serror,
            esr: SERROR_ESR,
            stack_addr: regs,
            stack: pt_regs.to_vec(),
            registers: vec![
                (Register::X(0), regs),
                (Register::X(1), SERROR_ESR),
                (Register::X(30), fault_pc.wrapping_add(4)),
                (Register::Sp, regs),
                (Register::Cpsr, masked),
            ],
            pc: *arm64_serror_panic,
            mode: DivertMode::Fallback,
            target: FALLBACK_SYMBOL,
            regs,
            missing: missing.clone(),
        }),
    }
}

/// Only an access the kernel made at EL1h in AArch64 can enter the kernel's exception path.
pub(crate) fn check_el1h(state: &CpuState) -> Result<(), String> {
    if state.cpsr & PSTATE_AARCH32 != 0 {
        return Err(format!(
            "the access was made in AArch32 state (cpsr {:#x}): only an AArch64 kernel \
             can be diverted",
            state.cpsr
        ));
    }
    if state.cpsr & PSTATE_MODE != PSTATE_EL1H {
        return Err(format!(
            "the access was not made by the kernel at EL1h (cpsr {:#x}, mode {:#x}): \
             only kernel code is diverted into its exception path",
            state.cpsr,
            state.cpsr & PSTATE_MODE
        ));
    }
    Ok(())
}

/// Where the entry code stores `struct pt_regs`: below the interrupted sp, 16-aligned.
pub(crate) fn pt_regs_address(state: &CpuState) -> u64 {
    state.sp.wrapping_sub(PT_REGS_SIZE) & !15
}

/// The `struct pt_regs` of the interrupted context, as the entry code would have stored it.
pub(crate) fn pt_regs_bytes(state: &CpuState, fault_pc: u64) -> [u8; PT_REGS_SIZE as usize] {
    let mut bytes = [0u8; PT_REGS_SIZE as usize];
    let mut put = |offset: usize, value: u64| {
        bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    };
    for (index, value) in state.x.iter().enumerate() {
        put(8 * index, *value);
    }
    put(PT_REGS_SP, state.sp);
    put(PT_REGS_PC, fault_pc);
    put(PT_REGS_PSTATE, u64::from(state.cpsr));
    put(PT_REGS_ORIG_X0, state.x[0]);
    // syscallno = NO_SYSCALL (-1) and pmr = 0; sdei_ttbr1 = 0.
    put(PT_REGS_SYSCALLNO, 0x0000_0000_ffff_ffff);
    // stackframe: fp = 0, lr = 0 (already), type = PT_REGS.
    put(PT_REGS_STACKFRAME_TYPE, FRAME_META_TYPE_PT_REGS);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bl, reader, u64_at};
    use std::collections::BTreeMap;

    /// The upstream 7.2.13 build's addresses (out/kernels/upstream/System.map).
    const MAP: &str = "\
0000000000000000 A _kernel_flags_le_hi32
ffff800080000000 t __pi__text
ffff800080000000 T _text
ffff800080010000 T _stext
ffff800080010800 T vectors
ffff800080011324 t el1h_64_fiq
ffff800080011394 t el1h_64_error
ffff800080011404 t el0t_64_sync
ffff800080022e80 T arm64_serror_panic
ffff800080022f00 T arm64_is_fatal_ras_serror
ffff800080022fa4 T do_serror
ffff80008002300c T is_valid_bugaddr
ffff8000802f8700 T el1h_64_error_handler
ffff8000802f8748 T el0t_64_sync_handler
ffff800080310000 D _etext
";

    const ENTRY: u64 = 0xffff_8000_8001_1394;
    const HANDLER: u64 = 0xffff_8000_802f_8700;
    const DO_SERROR: u64 = 0xffff_8000_8002_2fa4;
    const PANIC: u64 = 0xffff_8000_8002_2e80;

    /// Guest memory: the upstream kernel's code at these functions (instructions as
    /// objdump shows them in its Image; only their encodings matter here).
    fn upstream_code() -> BTreeMap<u64, u32> {
        let mut code = BTreeMap::new();
        // el1h_64_error: kernel_entry stores..., then `mov x0, sp; bl handler; b ret`.
        for i in 0..0x68 / 4 {
            code.insert(ENTRY + 4 * i, 0xa900_07e0); // stp x0, x1, [sp]
        }
        code.insert(ENTRY + 0x64, 0x9100_03e0); // mov x0, sp
        code.insert(ENTRY + 0x68, bl(ENTRY + 0x68, HANDLER));
        code.insert(ENTRY + 0x6c, 0x1400_02b5); // b ret_to_kernel
                                                // el1h_64_error_handler.
        let handler = [
            0xa9be_7bfd, // stp x29, x30, [sp, #-32]!
            0x9100_03fd, // mov x29, sp
            0xa901_53f3, // stp x19, x20, [sp, #16]
            0xaa00_03f3, // mov x19, x0
            0xd538_5214, // mrs x20, esr_el1
            0xd280_3801, // mov x1, #0x1c0
            0xd51b_4221, // msr daif, x1
            0x9400_041c, // bl irqentry_nmi_enter
            0xaa14_03e1, // mov x1, x20
            0x2a00_03f4, // mov w20, w0
            0xaa13_03e0, // mov x0, x19
            bl(HANDLER + 0x2c, DO_SERROR),
            0x2a14_03e1, // mov w1, w20
            0xaa13_03e0, // mov x0, x19
            0x9400_043e, // bl irqentry_nmi_exit
            0xa941_53f3, // ldp x19, x20, [sp, #16]
            0xa8c2_7bfd, // ldp x29, x30, [sp], #32
            0xd65f_03c0, // ret
        ];
        for (i, insn) in handler.iter().enumerate() {
            code.insert(HANDLER + 4 * i as u64, *insn);
        }
        // arm64_serror_panic starts with `paciasp; stp x29, x30, [sp, #-16]!`.
        code.insert(PANIC, 0xd503_233f);
        code.insert(PANIC + 4, 0xa9bf_7bfd);
        code
    }

    fn resolved(map: &str) -> Option<SerrorSymbols> {
        SerrorSymbols::resolve(&KernelSymbols::parse(map))
    }

    #[test]
    fn the_map_gives_the_three_functions_and_their_ends() {
        let map = KernelSymbols::parse(MAP);
        assert_eq!(map.address("do_serror"), Some(DO_SERROR));
        assert_eq!(map.address("_kernel_flags_le_hi32"), Some(0));
        let entry = map.function("el1h_64_error").unwrap();
        assert_eq!((entry.start, entry.end), (ENTRY, 0xffff_8000_8001_1404));
        // Data symbols do not end a function; the scan is capped.
        let handler = map.function("el1h_64_error_handler").unwrap();
        assert_eq!(handler.end, 0xffff_8000_802f_8748);
        let last = KernelSymbols::parse("ffff800080000000 T _text\n")
            .function("_text")
            .unwrap();
        assert_eq!(last.end - last.start, MAX_SCAN);
        let symbols = resolved(MAP).unwrap();
        assert!(symbols.is_faithful());
        assert!(symbols.missing.is_empty());
    }

    #[test]
    fn a_name_with_two_addresses_is_not_trusted() {
        let map = KernelSymbols::parse(
            "ffff800080000000 t dup\nffff800080000100 t dup\nffff800080000200 t dup\n",
        );
        assert_eq!(map.address("dup"), None);
        // The same address twice is one symbol.
        let map = KernelSymbols::parse("ffff800080000000 t one\nffff800080000000 t one\n");
        assert_eq!(map.address("one"), Some(0xffff_8000_8000_0000));
    }

    #[test]
    fn a_map_needs_text_symbols_and_text() {
        assert!(KernelSymbols::parse(MAP).is_kernel_map());
        assert!(!KernelSymbols::parse("hello\nworld\n").is_kernel_map());
        assert!(!KernelSymbols::parse("").is_kernel_map());
        assert!(!KernelSymbols::parse("ffff800080010000 T _stext\n").is_kernel_map());
        assert!(!KernelSymbols::parse("ffff800080000000 D _text\n").is_kernel_map());
    }

    #[test]
    fn without_any_entry_point_nothing_resolves() {
        let map = "ffff800080000000 T _text\nffff800080010000 T _stext\n";
        assert!(resolved(map).is_none());
        // The fallback alone is enough.
        let map = "ffff800080000000 T _text\nffff800080022e80 T arm64_serror_panic\n";
        assert!(!resolved(map).unwrap().is_faithful());
    }

    #[test]
    fn a_missing_faithful_symbol_falls_back_and_says_which() {
        let map = MAP.replace("t el1h_64_error\n", "t renamed_entry\n");
        let symbols = resolved(&map).unwrap();
        assert!(!symbols.is_faithful());
        assert_eq!(symbols.missing, vec!["el1h_64_error"]);
        let code = upstream_code();
        let verified = verify(&symbols, None, reader(&code)).unwrap();
        assert_eq!(
            verified,
            Verified::Fallback {
                arm64_serror_panic: PANIC,
                missing: vec!["el1h_64_error".to_string()]
            }
        );
    }

    #[test]
    fn the_running_upstream_kernel_matches_its_map() {
        let symbols = resolved(MAP).unwrap();
        let code = upstream_code();
        let verified = verify(&symbols, Some(0xffff_8000_8001_0800), reader(&code)).unwrap();
        assert_eq!(
            verified,
            Verified::Faithful {
                do_serror: DO_SERROR,
                handler_return: HANDLER + 0x30,
                entry_return: ENTRY + 0x6c,
                handler_frame: 32,
            }
        );
    }

    #[test]
    fn another_builds_map_is_a_mismatch() {
        // The prefix build moved el1h_64_error_handler by 0x40: its map read against the
        // upstream kernel's code finds no call to it.
        let shifted = MAP
            .replace(
                "ffff8000802f8700 T el1h_64_error_handler",
                "ffff8000802f8740 T el1h_64_error_handler",
            )
            .replace(
                "ffff8000802f8748 T el0t_64_sync_handler",
                "ffff8000802f8788 T el0t_64_sync_handler",
            );
        let symbols = resolved(&shifted).unwrap();
        let code = upstream_code();
        let error = verify(&symbols, None, reader(&code)).unwrap_err();
        assert!(
            error.contains("the code at el1h_64_error (0xffff800080011394) does not call el1h_64_error_handler (0xffff8000802f8740)"),
            "{error}"
        );
        // do_serror moved: the handler does not call it.
        let moved = MAP.replace(
            "ffff800080022fa4 T do_serror",
            "ffff800080022fa8 T do_serror",
        );
        let error = verify(&resolved(&moved).unwrap(), None, reader(&code)).unwrap_err();
        assert!(error.contains("does not call do_serror"), "{error}");
        // The vector base disagrees.
        let error = verify(
            &resolved(MAP).unwrap(),
            Some(0xffff_8000_8001_1000),
            reader(&code),
        )
        .unwrap_err();
        assert!(error.contains("VBAR_EL1 is 0xffff800080011000"), "{error}");
        // Unreadable code.
        let error = verify(&resolved(MAP).unwrap(), None, |_, _| None).unwrap_err();
        assert!(
            error.contains("no readable code at el1h_64_error"),
            "{error}"
        );
    }

    /// An arm64 Image of the upstream code: header with the magic, code at `addr - _text`.
    fn upstream_image() -> Vec<u8> {
        let text = 0xffff_8000_8000_0000u64;
        let code = upstream_code();
        let end = (*code.keys().max().unwrap() - text + 4) as usize;
        let mut image = vec![0u8; end];
        image[56..60].copy_from_slice(b"ARM\x64");
        for (addr, insn) in code {
            let at = (addr - text) as usize;
            image[at..at + 4].copy_from_slice(&insn.to_le_bytes());
        }
        image
    }

    #[test]
    fn the_image_qemu_boots_is_checked_at_install() {
        let image = upstream_image();
        let verified = verify_image(&resolved(MAP).unwrap(), &image)
            .unwrap()
            .unwrap();
        assert!(matches!(
            verified,
            Verified::Faithful {
                handler_frame: 32,
                ..
            }
        ));
        let shifted = MAP.replace(
            "ffff8000802f8700 T el1h_64_error_handler",
            "ffff8000802f8740 T el1h_64_error_handler",
        );
        let error = verify_image(&resolved(&shifted).unwrap(), &image)
            .unwrap()
            .unwrap_err();
        assert!(
            error.contains("does not call el1h_64_error_handler"),
            "{error}"
        );
        // Not an arm64 Image (compressed, or something else): no opinion.
        let mut gzipped = image.clone();
        gzipped[56..60].copy_from_slice(&[0x1f, 0x8b, 0, 0]);
        assert!(verify_image(&resolved(MAP).unwrap(), &gzipped).is_none());
        assert!(verify_image(&resolved(MAP).unwrap(), &[]).is_none());
        // A truncated Image cannot hold the code: a mismatch.
        let error = verify_image(&resolved(MAP).unwrap(), &image[..0x1000])
            .unwrap()
            .unwrap_err();
        assert!(error.contains("no readable code"), "{error}");
    }

    #[test]
    fn a_fallback_target_that_is_not_a_function_is_a_mismatch() {
        let map = MAP.replace("t el1h_64_error\n", "t x\n");
        let symbols = resolved(&map).unwrap();
        let mut code = upstream_code();
        code.insert(PANIC + 4, 0xd503_201f); // nop instead of the stp
        let error = verify(&symbols, None, reader(&code)).unwrap_err();
        assert!(error.contains("does not start like a function"), "{error}");
    }

    #[test]
    fn instruction_decoding() {
        assert_eq!(bl_target(0x940b_9cc1, 0xffff_8000_8001_13fc), Some(HANDLER));
        assert_eq!(
            bl_target(0x97f4_aa1e, 0xffff_8000_802f_872c),
            Some(DO_SERROR)
        );
        assert_eq!(bl_target(0x1400_02b5, 0), None);
        assert_eq!(prologue_frame_size(&0xa9be_7bfdu32.to_le_bytes()), Some(32));
        assert_eq!(prologue_frame_size(&0xa9bf_7bfdu32.to_le_bytes()), Some(16));
        // stp x29, x30, [sp, #16] (signed offset, not pre-index) is no prologue.
        assert_eq!(prologue_frame_size(&0xa901_7bfdu32.to_le_bytes()), None);
        // The stp after four other instructions is not looked for.
        let late: Vec<u8> = [0xd503_201fu32; 4]
            .iter()
            .chain(&[0xa9bf_7bfd])
            .flat_map(|i| i.to_le_bytes())
            .collect();
        assert_eq!(prologue_frame_size(&late), None);
    }

    fn state() -> CpuState {
        let mut x = [0u64; 31];
        for (i, value) in x.iter_mut().enumerate() {
            *value = 0x1000 + i as u64;
        }
        x[0] = 0xffff_ffff; // the gated read's bus-error value
        x[29] = 0xffff_8000_8233_bb80;
        x[30] = 0xffff_8000_8055_0040;
        CpuState {
            x,
            sp: 0xffff_8000_8233_bb60,
            cpsr: 0x6000_0005, // EL1h, nZCv, DAIF clear
        }
    }

    #[test]
    fn the_faithful_divert_looks_like_the_entry_code_ran() {
        let verified = verify(&resolved(MAP).unwrap(), None, reader(&upstream_code())).unwrap();
        let fault_pc = 0xffff_8000_8060_0014;
        let divert = plan(&verified, &state(), fault_pc).unwrap();
        let regs = 0xffff_8000_8233_bb60 - 320;
        assert_eq!(regs % 16, 0);
        let frame = regs - 32;
        assert_eq!(divert.pc, DO_SERROR);
        assert_eq!(divert.stack_addr, frame);
        assert_eq!(divert.stack.len(), 32 + 320);
        // The handler's frame record leads to pt_regs' meta record, returning into the entry.
        assert_eq!(u64_at(&divert.stack, 0), regs + 296);
        assert_eq!(u64_at(&divert.stack, 8), ENTRY + 0x6c);
        let pt = &divert.stack[32..];
        assert_eq!(u64_at(pt, 0), 0xffff_ffff);
        assert_eq!(u64_at(pt, 8 * 29), 0xffff_8000_8233_bb80);
        assert_eq!(u64_at(pt, 8 * 30), 0xffff_8000_8055_0040);
        assert_eq!(u64_at(pt, 248), 0xffff_8000_8233_bb60, "sp");
        assert_eq!(u64_at(pt, 256), fault_pc, "pc");
        assert_eq!(u64_at(pt, 264), 0x6000_0005, "pstate: the interrupted one");
        assert_eq!(u64_at(pt, 272), 0xffff_ffff, "orig_x0");
        assert_eq!(&pt[280..284], &[0xff; 4], "syscallno = NO_SYSCALL");
        assert_eq!((u64_at(pt, 296), u64_at(pt, 304)), (0, 0), "meta record");
        assert_eq!(u64_at(pt, 312), 2, "FRAME_META_TYPE_PT_REGS");
        assert_eq!(
            divert.registers,
            vec![
                (Register::X(0), regs),
                (Register::X(1), 0xbe00_0011),
                (Register::X(29), frame),
                (Register::X(30), HANDLER + 0x30),
                (Register::Sp, frame),
                (Register::Cpsr, 0x6000_03c5),
            ]
        );
        assert_eq!(divert.mode, DivertMode::Faithful);
        assert_eq!(divert.target, "do_serror");
        assert_eq!(divert.regs, regs);
        assert!(divert.missing.is_empty());
    }

    #[test]
    fn an_unaligned_sp_still_gives_an_aligned_pt_regs() {
        let verified = verify(&resolved(MAP).unwrap(), None, reader(&upstream_code())).unwrap();
        let mut state = state();
        state.sp += 8;
        let divert = plan(&verified, &state, 0x10).unwrap();
        assert_eq!(divert.regs % 16, 0);
        assert!(divert.regs + 320 <= state.sp);
    }

    #[test]
    fn the_fallback_divert_enters_arm64_serror_panic_with_pt_regs() {
        let verified = Verified::Fallback {
            arm64_serror_panic: PANIC,
            missing: vec!["el1h_64_error".into()],
        };
        let divert = plan(&verified, &state(), 0xffff_8000_8060_0014).unwrap();
        let regs = 0xffff_8000_8233_bb60 - 320;
        assert_eq!(divert.pc, PANIC);
        assert_eq!(divert.stack_addr, regs);
        assert_eq!(divert.stack.len(), 320);
        assert_eq!(
            divert.registers,
            vec![
                (Register::X(0), regs),
                (Register::X(1), 0xbe00_0011),
                (Register::X(30), 0xffff_8000_8060_0018),
                (Register::Sp, regs),
                (Register::Cpsr, 0x6000_03c5),
            ]
        );
        assert_eq!(divert.mode, DivertMode::Fallback);
        assert_eq!(divert.target, "arm64_serror_panic");
        assert_eq!(divert.regs, regs);
        assert_eq!(divert.missing, vec!["el1h_64_error"]);
    }

    #[test]
    fn user_mode_and_aarch32_accesses_are_not_diverted() {
        let verified = verify(&resolved(MAP).unwrap(), None, reader(&upstream_code())).unwrap();
        let mut el0 = state();
        el0.cpsr = 0x6000_0000;
        let reason = plan(&verified, &el0, 0x10).unwrap_err();
        assert!(
            reason.contains("not made by the kernel at EL1h"),
            "{reason}"
        );
        let mut aarch32 = state();
        aarch32.cpsr = 0x6000_0010;
        assert!(plan(&verified, &aarch32, 0x10)
            .unwrap_err()
            .contains("AArch32"));
    }
}
