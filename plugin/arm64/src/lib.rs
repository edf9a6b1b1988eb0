//! What rzgate knows about the guest architecture (ARMv8-A A64) and the arm64 Linux kernel
//! it runs, kept apart from QEMU: plain functions and data over instruction words, register
//! values and guest memory read through closures, unit-tested under `cargo test` without
//! QEMU. The plugin crate (`rzgate`, `plugin/qemu`) calls them from its callbacks and owns
//! everything QEMU-facing: the FFI, the callbacks, the events, the plugin's arguments.
//!
//! - [`filter`]: which instructions and addresses cannot reach the window (A64 load/store
//!   decode, SP-based and literal accesses, the kernel's linear map and the lower half), the
//!   descriptor watch (does a stored stage-1 descriptor give EL0 access to the window?) and
//!   the instructions that change or synchronize translation (TLBI, TTBR/TCR/SCTLR writes,
//!   DSB, ISB).
//! - [`unwind`]: the walk over AAPCS64 frame records that gives an access its call chain.
//! - [`serror`]: the arm64 kernel's SError path: its symbols in a `System.map`, the check
//!   against the running kernel's code, `struct pt_regs`, the entry code's frame records,
//!   ESR and PSTATE, and the plan of one divert (a gated write).
//! - [`sea`]: the kernel's synchronous data abort path, for a gated read (a synchronous
//!   external abort): its symbols, the check, the plan of one divert.

pub mod filter;
pub mod sea;
pub mod serror;
pub mod unwind;

#[cfg(test)]
mod testutil;
