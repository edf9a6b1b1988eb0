//! Which guest accesses cannot reach the window: the decisions that keep the memory callback
//! off the hot path. Pure functions, unit-tested here; the plugin crate's `ffi` applies them.
//!
//! Every filter below is *conservative*: it answers "cannot reach the window" only when that
//! holds by construction, and anything it does not recognise keeps its callback. Missing a
//! filter costs time; a wrong filter would lose an abort, so each one says why it is sound.
//!
//! # At translation time: [`insn_cannot_reach_window`]
//!
//! An instruction whose loads and stores cannot reach the window gets no memory callback at
//! all (QEMU then emits no helper call for it, which is the whole cost). A block is
//! translated once and runs many times, so the decode is free at run time.
//!
//! - **SP-based loads and stores** (base register field Rn = 31 in the load/store classes
//!   listed below, where 31 names SP, never XZR): the stack pointer points at a stack. The
//!   guest kernel's stacks are task, IRQ and overflow stacks in its own RAM (linear map or
//!   vmalloc), never an `ioremap` of the `no-map` window; user space follows AAPCS64, whose SP
//!   is the stack of the thread, and the only way a process reaches the window is a
//!   `/dev/mem` mapping that it dereferences through a general register (busybox `devmem`
//!   does `*(volatile u32 *)p = v`). A guest that deliberately moves SP into a mapping of the
//!   window would escape the check: no kernel or ABI-conforming program does.
//! - **PC-relative literal loads** (`LDR`/`LDRSW`/`PRFM` literal, integer and SIMD/FP): they
//!   read the code's own neighbourhood (±1 MiB of the instruction). Code never runs from the
//!   window: the kernel maps it only through `ioremap` (never executable), and it holds
//!   device registers, not code.
//!
//! Only these encoding classes are decoded (ARMv8-A A64, "Loads and Stores"); in each of them
//! bits [9:5] are the base register `Xn|SP`:
//!
//! | class | match | examples |
//! |---|---|---|
//! | load register (literal) | `xx011x00 ...` | `LDR Xt, label`, `LDR Qt, label`, `LDRSW` |
//! | load/store exclusive, ordered, CAS | `xx001000 ...` | `LDXR`, `STLXR`, `LDAR`, `STLR`, `CASAL` |
//! | SIMD load/store multiple/single structures | `0x001100 0/1`, `0x001101 0/1` | `LD1`, `ST4`, `LD1R` (incl. post-index) |
//! | load/store pair (no-alloc, post, offset, pre) | `xx101x0x ...` | `STP`, `LDP`, `LDNP`, `LDPSW`, `STGP`, SIMD `STP Q` |
//! | load/store register: unscaled, post/pre-index, unprivileged, register offset, atomics, PAC | `xx111x00 ...` | `LDUR`, `STR Xt, [Xn], #8`, `LDTR`, `LDR Xt, [Xn, Xm]`, `LDADD`, `SWP`, `LDAPR`, `LDRAA` |
//! | load/store register (unsigned immediate) | `xx111x01 ...` | `LDR Xt, [Xn, #imm]`, `STRB`, `LDR Dt, [Xn, #imm]` |
//!
//! SVE and SME loads and stores are outside these classes (different op0) and keep their
//! callbacks, as do the vector-base gathers whose bits [9:5] name a Z register.
//!
//! The translation filter is off until the plugin is active (the window holds its reset
//! image): the first memory callback writes that image, and it must run before the guest's
//! first window access, so the blocks of the first instructions keep every callback.
//!
//! # At run time: [`in_kernel_linear_map`]
//!
//! An access whose virtual address is in the arm64 kernel's linear map returns before the
//! (about 6 ns) `qemu_plugin_get_hwaddr` lookup. Sound because the window is a `no-map`
//! reserved-memory carve-out: arm64's `map_mem()` skips `MEMBLOCK_NOMAP` regions, so the
//! linear map has no page of the window, and `ioremap`/`memremap` of a no-map range builds a
//! vmalloc-range mapping instead (`pfn_is_map_memory()` is false). The range taken is the
//! logical map of every arm64 layout whose PAGE_END is 0xffff_8000_0000_0000 (4 KiB and
//! 16 KiB pages with 48-bit or 52-bit VA, the project's kernels are `VA_BITS=52` on a 48-bit
//! cortex-a55): `0xfff0_0000_0000_0000..0xffff_8000_0000_0000` (the KASAN shadow inside it is
//! backed by RAM pages, not by the window). With smaller VA sizes (39, 42, 47 bits) the range
//! is not translatable by TTBR1 at all, so no access there completes and no callback runs.
//! User space (TTBR0) and the MMU-off boot are below 2^52 and never match.
//!
//! # User space: [`in_lower_half`] and [`gives_el0_access`]
//!
//! User space can reach the window only through a stage-1 descriptor that gives EL0 access
//! to a window page, and such a descriptor exists only once the guest kernel has stored it
//! into a page table (a `/dev/mem` mapping, a driver's `remap_pfn_range`, a fork that copies
//! one: every path ends in a 64-bit store of the descriptor by kernel code). Until the plugin
//! sees such a store, blocks of the lower (TTBR0) half get no callbacks at all, and kernel
//! accesses to lower-half addresses (`copy_to_user` and friends) return at once. The check
//! on the stored value is [`gives_el0_access`]: valid, AP[1] (EL0 access), nG and PXN set
//! and PBHA (bits 62:59) clear, as in every user protection Linux builds (`pgtable-prot.h`;
//! `pgprot_noncached` keeps them), and an output address whose page or block overlaps the
//! window. A value that merely looks
//! like one (a pointer, a counter) can only turn user instrumentation on early, which costs
//! time, never an access. The kernel's idmap and its MMU-off boot code also run in the lower
//! half; they touch the kernel image, the DTB and page tables, never a device.

/// Bits [9:5] of a load/store encoding: the base register (31 = SP in every class decoded).
fn base_register(insn: u32) -> u32 {
    (insn >> 5) & 0x1f
}

/// `LDR`/`LDRSW`/`PRFM` (literal), integer or SIMD&FP: `opc 011 V 00 imm19 Rt`.
pub fn is_literal_load(insn: u32) -> bool {
    insn & 0x3b00_0000 == 0x1800_0000
}

/// A load/store in one of the classes whose bits [9:5] are the base register `Xn|SP` (the
/// table in the module documentation). Anything else (SVE, SME, system instructions such as
/// `DC ZVA`, unallocated encodings) answers false.
pub fn has_base_register(insn: u32) -> bool {
    // Load/store exclusive and ordered, compare-and-swap: size 001000 ...
    insn & 0x3f00_0000 == 0x0800_0000
        // SIMD structures, multiple and single, with and without post-index: 0 Q 00110x x.
        || insn & 0xbf80_0000 == 0x0c00_0000
        || insn & 0xbf80_0000 == 0x0c80_0000
        || insn & 0xbf80_0000 == 0x0d00_0000
        || insn & 0xbf80_0000 == 0x0d80_0000
        // Load/store pair, all four addressing forms: opc 101 V 0xx L ...
        || insn & 0x3a00_0000 == 0x2800_0000
        // Load/store register, every form (unscaled, pre/post-index, unprivileged, register
        // offset, atomic memory operations, PAC, unsigned immediate): size 111 V 0x ...
        || insn & 0x3a00_0000 == 0x3800_0000
}

/// A load/store whose base register is SP.
pub fn is_sp_based(insn: u32) -> bool {
    has_base_register(insn) && base_register(insn) == 31
}

/// True when no load or store of this A64 instruction can reach the window: it needs no
/// memory callback. See the module documentation for why.
pub fn insn_cannot_reach_window(insn: u32) -> bool {
    is_literal_load(insn) || is_sp_based(insn)
}

/// The A64 instruction in the bytes QEMU gives for it (`qemu_plugin_insn_data`): `None`
/// for anything but exactly 4 bytes, which then keeps every callback.
pub fn insn_word(bytes: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(bytes).ok().map(u32::from_le_bytes)
}

/// Start of the arm64 kernel's logical (linear) map with 52-bit VA; with 48-bit VA it starts
/// at 0xffff_0000_0000_0000 and the part below is untranslatable.
pub const LINEAR_MAP_START: u64 = 0xfff0_0000_0000_0000;
/// PAGE_END of every arm64 layout with VA_BITS_MIN = 48: modules and vmalloc (where
/// `ioremap` puts the window) start here.
pub const LINEAR_MAP_END: u64 = 0xffff_8000_0000_0000;

/// Is `vaddr` in the kernel's linear map, which never maps the window? Hot path: one
/// subtraction and one compare.
#[inline]
pub fn in_kernel_linear_map(vaddr: u64) -> bool {
    vaddr.wrapping_sub(LINEAR_MAP_START) < LINEAR_MAP_END - LINEAR_MAP_START
}

/// Is `vaddr` in the lower (TTBR0) half: user space, or the kernel's idmap and MMU-off code?
/// Bit 55 selects the translation table base; with top-byte-ignore, user pointers may carry a
/// tag in bits 63:56, so the top bit alone would not do.
#[inline]
pub fn in_lower_half(vaddr: u64) -> bool {
    vaddr & (1 << 55) == 0
}

/// Stage-1 descriptor bits (ARMv8-A VMSAv8-64, 4 KiB granule).
const DESC_VALID: u64 = 1 << 0;
/// Bit 1 set: a page (level 3) or a table (levels 0-2); clear: a block.
const DESC_PAGE_OR_TABLE: u64 = 1 << 1;
/// AP[1]: accessible from EL0 (`PTE_USER`).
const DESC_AP1_EL0: u64 = 1 << 6;
/// nG: Linux sets it on every mapping user space can access (ASID-tagged).
const DESC_NG: u64 = 1 << 11;
/// PXN: Linux sets it on every mapping user space can access.
const DESC_PXN: u64 = 1 << 53;
/// Bits [62:59]: PBHA (hardware use), never set by Linux in a user mapping.
const DESC_PBHA: u64 = 0xf << 59;
/// Output address bits [49:12] (bits [51:50] of an LPA2 address live elsewhere; ignoring
/// them can only make a descriptor look closer to the window, never farther).
const DESC_OUTPUT_ADDRESS: u64 = 0x0003_ffff_ffff_f000;
/// Block sizes of a 4 KiB granule: level 1 and level 2.
const BLOCK_1G: u64 = 1 << 30;
const BLOCK_2M: u64 = 1 << 21;
const PAGE: u64 = 1 << 12;

/// Does storing `value` into a page table give EL0 access to any byte of the window
/// `[window_base, window_base + window_size)`? See the module documentation. Pages and
/// tables are taken as one 4 KiB page at the output address (a table descriptor's AP[1] is
/// not an access permission, but a false positive is harmless). The level of a block is not
/// in the value: a 1 GiB-aligned output address is taken as a level-1 block (1 GiB), any
/// other as the level-2 block (2 MiB) around it, which is what it maps if it is one.
pub fn gives_el0_access(value: u64, window_base: u64, window_size: u64) -> bool {
    let required = DESC_VALID | DESC_AP1_EL0 | DESC_NG | DESC_PXN;
    if value & required != required || value & DESC_PBHA != 0 {
        return false;
    }
    let output = value & DESC_OUTPUT_ADDRESS;
    let (start, len) = if value & DESC_PAGE_OR_TABLE != 0 {
        (output, PAGE)
    } else if output.is_multiple_of(BLOCK_1G) {
        (output, BLOCK_1G)
    } else {
        (output & !(BLOCK_2M - 1), BLOCK_2M)
    };
    start < window_base.saturating_add(window_size) && window_base < start.saturating_add(len)
}

/// `SYS` (op0 = 1) and `SYSP`: bits [15:12] are CRn.
fn sys_crn(insn: u32) -> Option<u32> {
    let is_sys = insn & 0xfff8_0000 == 0xd508_0000;
    let is_sysp = insn & 0xfff8_0000 == 0xd548_0000;
    (is_sys || is_sysp).then_some((insn >> 12) & 0xf)
}

/// `MSR <sysreg>, Xt` with op0 = 3 (EL1 and up), and `MSRR` (128-bit): CRn.
fn msr_crn(insn: u32) -> Option<u32> {
    let is_msr = insn & 0xfff8_0000 == 0xd518_0000;
    let is_msrr = insn & 0xfff8_0000 == 0xd578_0000;
    (is_msr || is_msrr).then_some((insn >> 12) & 0xf)
}

/// Does this instruction change how kernel addresses translate? Every `TLBI`/`TLBIP` (CRn
/// 8 or 9), and writes of the registers with CRn 1 (SCTLR_EL1: the MMU on or off) or CRn 2
/// (TTBR0_EL1, TTBR1_EL1, TCR_EL1), at any EL. A superset: a false positive only costs the
/// plugin's page cache (`rzgate::pages`) its entries.
pub fn changes_translation(insn: u32) -> bool {
    matches!(sys_crn(insn), Some(8 | 9)) || matches!(msr_crn(insn), Some(1 | 2))
}

/// `DSB` (with or without nXS) or `ISB`: where a preceding TLBI or translation-register
/// write takes effect.
pub fn synchronizes_context(insn: u32) -> bool {
    let dsb = insn & 0xffff_f0ff == 0xd503_309f;
    let dsb_nxs = insn & 0xffff_f3ff == 0xd503_323f;
    let isb = insn & 0xffff_f0ff == 0xd503_30df;
    dsb || dsb_nxs || isb
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Real encodings (as assembled by GNU as for aarch64) with the expected answer of
    /// `insn_cannot_reach_window`.
    const CASES: &[(u32, &str, bool)] = &[
        // Load/store register, unsigned immediate.
        (0xf94007e0, "ldr x0, [sp, #8]", true),
        (0xf9000be1, "str x1, [sp, #16]", true),
        (0xb9400001, "ldr w1, [x0]", false),
        (0xb90000a3, "str w3, [x5]", false),
        (0x394003e0, "ldrb w0, [sp]", true),
        (0x39400020, "ldrb w0, [x1]", false),
        (0x79400fe2, "ldrh w2, [sp, #6]", true),
        (0xfd4007e0, "ldr d0, [sp, #8]", true),
        (0xfd400420, "ldr d0, [x1, #8]", false),
        (0x3dc003e0, "ldr q0, [sp]", true),
        (0xf98003e0, "prfm pldl1keep, [sp]", true),
        // Pre/post-index and unscaled.
        (0xf81f0fe0, "str x0, [sp, #-16]!", true),
        (0xf84107e0, "ldr x0, [sp], #16", true),
        (0xf8008420, "str x0, [x1], #8", false),
        (0xf8408c20, "ldr x0, [x1, #8]!", false),
        (0xf85f83e0, "ldur x0, [sp, #-8]", true),
        (0xb85fc020, "ldur w0, [x1, #-4]", false),
        (0xf8408be0, "ldtr x0, [sp, #8]", true),
        (0xb8400820, "ldtr w0, [x1]", false),
        // Register offset.
        (0xf8626be0, "ldr x0, [sp, x2]", true),
        (0xf8627820, "ldr x0, [x1, x2, lsl #3]", false),
        (0x3862c820, "ldrb w0, [x1, w2, sxtw]", false),
        // Pairs, every addressing form, integer and SIMD.
        (0xa9bf7bfd, "stp x29, x30, [sp, #-16]!", true),
        (0xa8c17bfd, "ldp x29, x30, [sp], #16", true),
        (0xa9410fe2, "ldp x2, x3, [sp, #16]", true),
        (0xa9000c22, "stp x2, x3, [x1]", false),
        (0xa8810c22, "stp x2, x3, [x1], #16", false),
        (0xa9c10c22, "ldp x2, x3, [x1, #16]!", false),
        (0xa8400c22, "ldnp x2, x3, [x1]", false),
        (0xa84007e0, "ldnp x0, x1, [sp]", true),
        (0x694007e0, "ldpsw x0, x1, [sp]", true),
        (0xad0007e0, "stp q0, q1, [sp]", true),
        (0xad400420, "ldp q0, q1, [x1]", false),
        (0x6d0007e0, "stp d0, d1, [sp]", true),
        // Literal loads.
        (0x58000449, "ldr x9, 40080088", true),
        (0x18000324, "ldr w4, 40080080", true),
        (0x98000040, "ldrsw x0, .+8", true),
        (0x9c000040, "ldr q0, .+8", true),
        (0x5c000040, "ldr d0, .+8", true),
        (0xd8000040, "prfm pldl1keep, .+8", true),
        // Exclusive, ordered, compare-and-swap.
        (0xc85f7c20, "ldxr x0, [x1]", false),
        (0xc85f7fe0, "ldxr x0, [sp]", true),
        (0xc8027c20, "stxr w2, x0, [x1]", false),
        (0x885ffc20, "ldaxr w0, [x1]", false),
        (0xc8dffc20, "ldar x0, [x1]", false),
        (0xc89ffc20, "stlr x0, [x1]", false),
        (0xc89fffe0, "stlr x0, [sp]", true),
        (0xc8e0fc22, "casal x0, x2, [x1]", false),
        (0xc87f0420, "ldxp x0, x1, [x1]", false),
        // Atomic memory operations and RCpc.
        (0xf8200022, "ldadd x0, x2, [x1]", false),
        (0xf82003e2, "ldadd x0, x2, [sp]", true),
        (0xb8e08022, "swpal w0, w2, [x1]", false),
        (0xf8bfc020, "ldapr x0, [x1]", false),
        (0xf8bfc3e0, "ldapr x0, [sp]", true),
        // SIMD structures.
        (0x4c407020, "ld1 {v0.16b}, [x1]", false),
        (0x4c4073e0, "ld1 {v0.16b}, [sp]", true),
        (0x4cdf7020, "ld1 {v0.16b}, [x1], #16", false),
        (0x4c002020, "st1 {v0.16b-v3.16b}, [x1]", false),
        (0x0d40c020, "ld1r {v0.8b}, [x1]", false),
        (0x4d0003e0, "st1 {v0.b}[8], [sp]", true),
        (0x0ddfc3e0, "ld1r {v0.8b}, [sp], #1", true),
        // Not loads/stores, or not decoded: keep the callback.
        (0x910003fd, "mov x29, sp", false),
        (0xd65f03c0, "ret", false),
        (0xd4000002, "hvc #0", false),
        (0xd50b7420, "dc zva, x0", false),
        (0xd503201f, "nop", false),
        (0xa5e0a3e0, "ld1d {z0.d}, p0/z, [sp] (SVE)", false),
        (
            0xc5a0c3e0,
            "ld1d {z0.d}, p0/z, [z31.d] (SVE gather, Zn = 31)",
            false,
        ),
        (0xe5e0e3e0, "st1d {z0.d}, p0, [sp] (SVE)", false),
    ];

    #[test]
    fn real_encodings() {
        for &(insn, text, expected) in CASES {
            assert_eq!(
                insn_cannot_reach_window(insn),
                expected,
                "{insn:#010x} {text}"
            );
        }
    }

    #[test]
    fn literal_and_sp_are_told_apart() {
        assert!(is_literal_load(0x58000449));
        assert!(
            !is_sp_based(0x58000449),
            "a literal load has no base register"
        );
        assert!(is_sp_based(0xa9bf7bfd));
        assert!(!is_literal_load(0xa9bf7bfd));
        // Rn = 31 in a class where 31 is no base register is not an SP access.
        assert!(!has_base_register(0xc5a0c3e0));
    }

    #[test]
    fn every_base_register_but_sp_keeps_its_callback() {
        // ldr x0, [xN, #8] for N = 0..31 and stp x2, x3, [xN]
        for n in 0..32u32 {
            let ldr = 0xf9400400 | (n << 5);
            let stp = 0xa9000c02 | (n << 5);
            assert_eq!(insn_cannot_reach_window(ldr), n == 31, "ldr base {n}");
            assert_eq!(insn_cannot_reach_window(stp), n == 31, "stp base {n}");
        }
    }

    #[test]
    fn bytes_are_little_endian_words() {
        assert_eq!(insn_word(&[0xfd, 0x7b, 0xbf, 0xa9]), Some(0xa9bf7bfd));
        assert!(insn_word(&[0xfd, 0x7b, 0xbf, 0xa9]).is_some_and(insn_cannot_reach_window));
        assert_eq!(insn_word(&[0xfd, 0x7b, 0xbf]), None);
        assert_eq!(insn_word(&[]), None);
    }

    #[test]
    fn linear_map_bounds() {
        // 48-bit linear map, 52-bit linear map.
        assert!(in_kernel_linear_map(0xffff_0000_4000_0000));
        assert!(in_kernel_linear_map(0xffff_7fff_ffff_ffff));
        assert!(in_kernel_linear_map(0xfff0_0000_0000_0000));
        // ioremap/vmalloc, the kernel image, fixmap: still checked.
        assert!(!in_kernel_linear_map(0xffff_8000_0000_0000));
        assert!(!in_kernel_linear_map(0xffff_8000_8001_0000));
        assert!(!in_kernel_linear_map(0xffff_ffff_ffff_f000));
        // User space, MMU-off physical addresses (the window itself).
        assert!(!in_kernel_linear_map(0x7fff_f000));
        assert!(!in_kernel_linear_map(0x0000_ffff_f7ff_f000));
        assert!(!in_kernel_linear_map(0xffef_ffff_ffff_ffff));
    }

    const WINDOW: (u64, u64) = (0x7e00_0000, 0x0200_0000);

    fn el0(value: u64) -> bool {
        gives_el0_access(value, WINDOW.0, WINDOW.1)
    }

    /// `/dev/mem` mapping of the ADC page as Linux 7.2 builds it: `_PAGE_SHARED` with
    /// `pgprot_noncached` (AttrIndx 0 = Device-nGnRnE), AF, page descriptor.
    const DEVMEM_ADC_PTE: u64 = 0x0060_0000_7e05_8fc3 | (1 << 53) | (1 << 11);

    #[test]
    fn a_user_page_of_the_window_is_seen() {
        assert!(el0(DEVMEM_ADC_PTE));
        // Read-only (AP[2]) is still reachable; first and last window page.
        assert!(el0(0x0060_0000_7e00_0fc3 | (1 << 7)));
        assert!(el0(0x0060_0000_7fff_ffc3));
    }

    #[test]
    fn kernel_mappings_and_non_descriptors_are_not() {
        // The kernel's ioremap of the same page: no AP[1].
        assert!(!el0(DEVMEM_ADC_PTE & !(1 << 6)));
        // Invalid (swap entry, PROT_NONE): no valid bit.
        assert!(!el0(DEVMEM_ADC_PTE & !1));
        // `struct resource` ends of window devices (0x..3ff, 0x..fff): no PXN.
        assert!(!el0(0x7e05_83ff));
        assert!(!el0(0x7e05_8fff));
        // A user page just outside the window on either side.
        assert!(!el0(0x0060_0000_7dff_ffc3 | (1 << 53)));
        assert!(!el0(0x0060_0000_8000_0fc3 | (1 << 53)));
    }

    #[test]
    fn a_bitmap_that_looks_like_the_mailbox_page_is_not() {
        // A radix-tree tag bitmap the kernel stored while the TSU probed: valid, AP[1],
        // nG, PXN and the mailbox page as output address, but every PBHA bit set.
        assert!(!el0(0xfffc_0000_7fff_ffff));
        // Without nG: a global (kernel) mapping.
        assert!(!el0(DEVMEM_ADC_PTE & !(1 << 11)));
    }

    #[test]
    fn blocks_cover_two_megabytes_or_a_gigabyte() {
        // 2 MiB blocks (bits[1:0] = 01): inside the window, and just below it.
        assert!(el0(0x0060_0000_7e20_0f41));
        assert!(!el0(0x0060_0000_7de0_0f41));
        // Elsewhere in the same gigabyte of RAM (a user THP): not the window. The value
        // is also two A64 instructions (`b.ne`, `movz`) that a kernel copy once stored.
        assert!(!el0(0xd2a0_0000_5400_0241));
        // A 1 GiB-aligned output address may be a level-1 block over the whole gigabyte.
        assert!(el0(0x0060_0000_4000_0f41));
        assert!(!el0(0x0060_0000_8000_0f41));
    }

    #[test]
    fn lower_half_is_bit_55() {
        assert!(in_lower_half(0x0000_ffff_f7ff_0000));
        assert!(in_lower_half(0x4000_0000));
        assert!(in_lower_half(0x0f00_aaaa_0000_1000), "tagged user pointer");
        assert!(!in_lower_half(0xffff_8000_8000_0000));
        assert!(!in_lower_half(0xfff0_0000_0000_0000));
    }

    #[test]
    fn translation_changes_are_tlbis_and_translation_register_writes() {
        for (insn, text) in [
            (0xd508_831f, "tlbi vmalle1is"),
            (0xd508_8320, "tlbi vae1is, x0"),
            (0xd508_83a1, "tlbi vale1is, x1"),
            (0xd508_871f, "tlbi vmalle1"),
            (0xd508_8720, "tlbi vae1, x0"),
            (0xd508_8220, "tlbi rvae1is, x0"),
            (0xd518_2000, "msr ttbr0_el1, x0"),
            (0xd518_2021, "msr ttbr1_el1, x1"),
            (0xd518_2040, "msr tcr_el1, x0"),
            (0xd518_1000, "msr sctlr_el1, x0"),
        ] {
            assert!(changes_translation(insn), "{text}");
        }
        for (insn, text) in [
            (0xd51b_4220, "msr daif, x0"),
            (0xd518_4100, "msr sp_el0, x0"),
            (0xd518_d080, "msr tpidr_el1, x0"),
            (0xd538_2020, "mrs x0, ttbr1_el1"),
            (0xd50b_7e20, "dc civac, x0"),
            (0xd508_751f, "ic iallu"),
            (0xd508_7800, "at s1e1r, x0"),
            (0xd503_3b9f, "dsb ish"),
            (0xb940_0001, "ldr w1, [x0]"),
        ] {
            assert!(!changes_translation(insn), "{text}");
        }
    }

    #[test]
    fn context_synchronization_is_dsb_and_isb() {
        for (insn, text) in [
            (0xd503_3b9f, "dsb ish"),
            (0xd503_3f9f, "dsb sy"),
            (0xd503_3a9f, "dsb ishst"),
            (0xd503_3fdf, "isb"),
            (0xd503_323f, "dsb osh nxs"),
        ] {
            assert!(synchronizes_context(insn), "{text}");
        }
        for (insn, text) in [
            (0xd503_3bbf, "dmb ish"),
            (0xd503_201f, "nop"),
            (0xd503_205f, "wfe"),
            (0xd508_831f, "tlbi vmalle1is"),
        ] {
            assert!(!synchronizes_context(insn), "{text}");
        }
    }
}
