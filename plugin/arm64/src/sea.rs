//! `on_abort=serror` for a gated **read**: a synchronous external abort, as on the board.
//!
//! A load from a module whose clock is stopped or whose bus is in module stop comes back
//! with a bus error, and the CPU takes it on the load itself: a synchronous data abort with
//! DFSC 0b010000 ("synchronous external abort, not on translation table walk"). Renesas'
//! usbhs fix quotes what the kernel then prints: `Internal error: synchronous external
//! abort: 0000000096000010`. A write is posted, so its bus error arrives later as an
//! asynchronous SError ([`crate::serror`]).
//!
//! # The faithful divert (what a synchronous data abort taken at EL1 leaves behind)
//!
//! The CPU enters the vector `el1h_64_sync`; the entry code stores `struct pt_regs` below
//! the interrupted sp and calls `el1h_64_sync_handler(regs)`, which reads ESR_EL1, sees EC
//! 0x25 (data abort from the current EL) and calls `el1_abort(regs, esr)`, which reads
//! FAR_EL1, restores the interrupted DAIF (`local_daif_inherit`) and calls
//! `do_mem_abort(far, esr, regs)`; for DFSC 0x10 that is `do_sea`, which dies with the
//! message above. The plan rebuilds the state at the first instruction of `do_mem_abort`:
//!
//! ```text
//! higher addresses   interrupted sp ─────────────────────────────────────────────
//!                    struct pt_regs (320 bytes, 16-aligned)       x2 = regs
//!                      as for an SError, stackframe {0, 0, PT_REGS}  <─┐
//!                    el1h_64_sync_handler's frame (its prologue's size)   │
//!                      record {fp ───────────────────────────────────────┘,
//!                              lr = return address into el1h_64_sync}  <─┐
//!                    el1_abort's frame (its prologue's size)                │
//!                      record {fp ─────────────────────────────────────────┘,
//!                              lr = return into el1h_64_sync_handler}  <─ x29 = sp
//! lower addresses
//! x0 = FAR (the address the load used), x1 = ESR 0x96000010,
//! x30 = return address into el1_abort, PSTATE = the interrupted one, PC = do_mem_abort
//! ```
//!
//! ESR_EL1 and FAR_EL1 themselves are not written (the plugin API cannot): the two
//! functions that read them are the ones the divert steps over, and their values are
//! passed in x0 and x1 as they would be. The return addresses are the addresses after the
//! `bl` instructions found in the running kernel's code, as for the SError divert, and the
//! same code reads are the check that the map is the running kernel's.
//!
//! A map without one of the four functions (a build that inlined `el1_abort`, say) has no
//! synchronous divert: its gated reads take the SError path, and the abort event says so.

use crate::serror::{
    check_el1h, find_call, no_call, prologue_frame_size, pt_regs_address, pt_regs_bytes,
    read_function, CpuState, Divert, DivertMode, Exception, Function, KernelSymbols, Register,
    PT_REGS_STACKFRAME,
};

/// The ESR of a gated read: EC 0x25 (data abort taken without a change in exception level),
/// IL (32-bit instruction), ISS = DFSC 0b010000 (synchronous external abort, not on a
/// translation table walk), WnR 0 (a read). The value Renesas' usbhs fix quotes.
pub const SEA_READ_ESR: u64 = 0x9600_0010;

/// The functions of the synchronous path, in the order they are entered.
pub const SEA_SYMBOLS: [&str; 4] = [
    "el1h_64_sync",
    "el1h_64_sync_handler",
    "el1_abort",
    "do_mem_abort",
];

/// The synchronous entry points of one kernel, resolved from its map at install.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeaSymbols {
    /// [`SEA_SYMBOLS`]; `None` when one is missing.
    chain: Option<[Function; 4]>,
    /// Symbols of [`SEA_SYMBOLS`] the map lacks.
    pub missing: Vec<String>,
}

impl SeaSymbols {
    pub fn resolve(symbols: &KernelSymbols) -> SeaSymbols {
        let found: Vec<Option<Function>> = SEA_SYMBOLS
            .iter()
            .map(|name| symbols.function(name))
            .collect();
        let missing = SEA_SYMBOLS
            .iter()
            .zip(&found)
            .filter(|(_, function)| function.is_none())
            .map(|(name, _)| name.to_string())
            .collect();
        let chain = match found.as_slice() {
            [Some(entry), Some(handler), Some(abort), Some(target)] => Some([
                entry.clone(),
                handler.clone(),
                abort.clone(),
                target.clone(),
            ]),
            _ => None,
        };
        SeaSymbols { chain, missing }
    }

    pub fn is_complete(&self) -> bool {
        self.chain.is_some()
    }
}

/// The synchronous path, checked against the running kernel's code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeaVerified {
    pub do_mem_abort: u64,
    /// After `bl el1h_64_sync_handler` in el1h_64_sync.
    pub entry_return: u64,
    /// After `bl el1_abort` in el1h_64_sync_handler, and that function's frame size.
    pub handler_return: u64,
    pub handler_frame: u64,
    /// After `bl do_mem_abort` in el1_abort, and that function's frame size.
    pub abort_return: u64,
    pub abort_frame: u64,
}

/// Checks the chain against the guest's code (`read(addr, len)` reads guest-virtual memory):
/// each function must call the next at the map's address. `Err` says what does not match.
/// `Ok(None)` when the map lacks the path (see [`SeaSymbols::missing`]).
pub fn verify(
    symbols: &SeaSymbols,
    mut read: impl FnMut(u64, usize) -> Option<Vec<u8>>,
) -> Result<Option<SeaVerified>, String> {
    let Some([entry, handler, abort, target]) = &symbols.chain else {
        return Ok(None);
    };
    let entry_code = read_function(entry, &mut read)?;
    let entry_call = find_call(&entry_code, entry.start, handler.start)
        .ok_or_else(|| no_call(entry, handler))?;
    let handler_code = read_function(handler, &mut read)?;
    let handler_call = find_call(&handler_code, handler.start, abort.start)
        .ok_or_else(|| no_call(handler, abort))?;
    let abort_code = read_function(abort, &mut read)?;
    let abort_call =
        find_call(&abort_code, abort.start, target.start).ok_or_else(|| no_call(abort, target))?;
    Ok(Some(SeaVerified {
        do_mem_abort: target.start,
        entry_return: entry_call + 4,
        handler_return: handler_call + 4,
        handler_frame: prologue_frame_size(&handler_code).unwrap_or(16),
        abort_return: abort_call + 4,
        abort_frame: prologue_frame_size(&abort_code).unwrap_or(16),
    }))
}

/// Plans the divert of the vCPU in `state` whose load at `fault_pc` from `far` (the
/// guest-virtual address it used) was gated. `Err` says why it cannot be diverted.
pub fn plan(
    verified: &SeaVerified,
    state: &CpuState,
    fault_pc: u64,
    far: u64,
) -> Result<Divert, String> {
    check_el1h(state)?;
    let regs = pt_regs_address(state);
    let handler = regs - verified.handler_frame;
    let abort = handler - verified.abort_frame;
    let mut stack = vec![0u8; (regs - abort) as usize];
    let mut record = |at: u64, fp: u64, lr: u64| {
        let offset = (at - abort) as usize;
        stack[offset..offset + 8].copy_from_slice(&fp.to_le_bytes());
        stack[offset + 8..offset + 16].copy_from_slice(&lr.to_le_bytes());
    };
    record(handler, regs + PT_REGS_STACKFRAME, verified.entry_return);
    record(abort, handler, verified.handler_return);
    stack.extend_from_slice(&pt_regs_bytes(state, fault_pc));
    Ok(Divert {
        exception: Exception::SyncExternalAbort,
        esr: SEA_READ_ESR,
        stack_addr: abort,
        stack,
        registers: vec![
            (Register::X(0), far),
            (Register::X(1), SEA_READ_ESR),
            (Register::X(2), regs),
            (Register::X(29), abort),
            (Register::X(30), verified.abort_return),
            (Register::Sp, abort),
            // el1_abort's local_daif_inherit: do_mem_abort runs with the interrupted DAIF.
            (Register::Cpsr, u64::from(state.cpsr)),
        ],
        pc: verified.do_mem_abort,
        mode: DivertMode::Faithful,
        target: SEA_SYMBOLS[3],
        regs,
        missing: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{bl, reader, u64_at};
    use std::collections::BTreeMap;

    /// The upstream 7.2.13 build's addresses (out/kernels/upstream/System.map).
    const MAP: &str = "\
ffff800080000000 T _text
ffff800080011244 t el1h_64_sync
ffff8000800112b4 t el1h_64_irq
ffff800080029df0 T do_mem_abort
ffff800080029ea0 T do_sp_pc_abort
ffff8000802f8940 t el1_abort
ffff8000802f89a0 t el1_pc
ffff8000802f9060 T el1h_64_sync_handler
ffff8000802f9104 T el1h_64_irq_handler
";
    const ENTRY: u64 = 0xffff_8000_8001_1244;
    const HANDLER: u64 = 0xffff_8000_802f_9060;
    const ABORT: u64 = 0xffff_8000_802f_8940;
    const DO_MEM_ABORT: u64 = 0xffff_8000_8002_9df0;

    /// The calls and prologues of the upstream build, at their addresses (objdump of its
    /// vmlinux); every other word is zero.
    fn upstream_code() -> BTreeMap<u64, u32> {
        let mut code = BTreeMap::new();
        code.insert(ENTRY + 0x68, bl(ENTRY + 0x68, HANDLER));
        code.insert(HANDLER, 0xa9bf_7bfd); // stp x29, x30, [sp, #-16]!
        code.insert(HANDLER + 0x48, bl(HANDLER + 0x48, ABORT));
        code.insert(ABORT, 0xa9bd_7bfd); // stp x29, x30, [sp, #-48]!
        code.insert(ABORT + 0x3c, bl(ABORT + 0x3c, DO_MEM_ABORT));
        code
    }

    fn symbols(map: &str) -> SeaSymbols {
        SeaSymbols::resolve(&KernelSymbols::parse(map))
    }

    #[test]
    fn the_esr_is_a_synchronous_external_abort_on_a_read() {
        assert_eq!(SEA_READ_ESR >> 26, 0x25, "EC: data abort, current EL");
        assert_ne!(SEA_READ_ESR & (1 << 25), 0, "IL");
        assert_eq!(
            SEA_READ_ESR & 0x3f,
            0x10,
            "DFSC: synchronous external abort"
        );
        assert_eq!(SEA_READ_ESR & (1 << 6), 0, "WnR: a read");
    }

    #[test]
    fn the_running_upstream_kernel_matches_its_map() {
        let verified = verify(&symbols(MAP), reader(&upstream_code()))
            .unwrap()
            .unwrap();
        assert_eq!(
            verified,
            SeaVerified {
                do_mem_abort: DO_MEM_ABORT,
                entry_return: ENTRY + 0x6c,
                handler_return: HANDLER + 0x4c,
                handler_frame: 16,
                abort_return: ABORT + 0x40,
                abort_frame: 48,
            }
        );
    }

    #[test]
    fn a_map_without_the_path_has_no_synchronous_divert_and_says_what_is_missing() {
        let inlined = symbols(&MAP.replace("t el1_abort\n", "t el1_abort_renamed\n"));
        assert!(!inlined.is_complete());
        assert_eq!(inlined.missing, vec!["el1_abort"]);
        assert_eq!(verify(&inlined, reader(&upstream_code())), Ok(None));
    }

    #[test]
    fn another_builds_map_is_a_mismatch() {
        // el1_abort 0x40 further on: the handler's bl no longer lands on it.
        let moved = MAP.replace(
            "ffff8000802f8940 t el1_abort",
            "ffff8000802f8980 t el1_abort",
        );
        let error = verify(&symbols(&moved), reader(&upstream_code())).unwrap_err();
        assert!(
            error.contains("el1h_64_sync_handler") && error.contains("does not call el1_abort"),
            "{error}"
        );
    }

    fn state() -> CpuState {
        let mut x = [0u64; 31];
        for (i, value) in x.iter_mut().enumerate() {
            *value = 0x1000 + i as u64;
        }
        x[0] = 0xffff_ffff; // the gated read's bus-error value
        x[29] = 0xffff_8000_8233_bb80;
        CpuState {
            x,
            sp: 0xffff_8000_8233_bb60,
            cpsr: 0x6000_0005, // EL1h, DAIF clear
        }
    }

    #[test]
    fn the_divert_looks_like_el1_abort_called_do_mem_abort() {
        let verified = verify(&symbols(MAP), reader(&upstream_code()))
            .unwrap()
            .unwrap();
        let (fault_pc, far) = (0xffff_8000_8060_0014, 0xffff_8000_8321_8000);
        let divert = plan(&verified, &state(), fault_pc, far).unwrap();
        let regs = 0xffff_8000_8233_bb60 - 320;
        let (handler, abort) = (regs - 16, regs - 16 - 48);
        assert_eq!((divert.stack_addr, divert.stack.len()), (abort, 64 + 320));
        // el1_abort's record -> the handler's record -> pt_regs' meta record.
        assert_eq!(u64_at(&divert.stack, 0), handler);
        assert_eq!(u64_at(&divert.stack, 8), HANDLER + 0x4c);
        assert_eq!(u64_at(&divert.stack, 48), regs + 296);
        assert_eq!(u64_at(&divert.stack, 56), ENTRY + 0x6c);
        let pt = &divert.stack[64..];
        assert_eq!(u64_at(pt, 256), fault_pc, "pt_regs.pc: the load");
        assert_eq!(u64_at(pt, 264), 0x6000_0005, "pt_regs.pstate");
        assert_eq!(u64_at(pt, 312), 2, "FRAME_META_TYPE_PT_REGS");
        assert_eq!(
            divert.registers,
            vec![
                (Register::X(0), far),
                (Register::X(1), 0x9600_0010),
                (Register::X(2), regs),
                (Register::X(29), abort),
                (Register::X(30), ABORT + 0x40),
                (Register::Sp, abort),
                (Register::Cpsr, 0x6000_0005),
            ]
        );
        assert_eq!(divert.pc, DO_MEM_ABORT);
        assert_eq!(divert.exception, Exception::SyncExternalAbort);
        assert_eq!(
            (divert.esr, divert.target, divert.regs),
            (0x9600_0010, "do_mem_abort", regs)
        );
    }

    #[test]
    fn user_mode_reads_are_not_diverted() {
        let verified = verify(&symbols(MAP), reader(&upstream_code()))
            .unwrap()
            .unwrap();
        let mut el0 = state();
        el0.cpsr = 0x6000_0000;
        let reason = plan(&verified, &el0, 0x10, 0x20).unwrap_err();
        assert!(
            reason.contains("not made by the kernel at EL1h"),
            "{reason}"
        );
    }
}
