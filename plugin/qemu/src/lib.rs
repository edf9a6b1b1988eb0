//! `librzgate.so`: the QEMU 11 plugin (API v7) that runs rzgate-core's RZ/G3S models in the
//! `virt` machine. This crate is glue only: the SoC, bus, gates and models are rzgate-core's,
//! what it knows of the guest architecture and the arm64 kernel (A64 decode, page-table
//! descriptors, frame records, the SError frame) is rzgate-arm64's ([`rzgate_arm64`]).
//!
//! ```text
//! qemu_plugin_install      parse key=value arguments, load the SoC, build the bus, create the
//!                          events file, start the reporter, register the callbacks
//! vCPU init                cache register handles (x0-x30, sp, cpsr, VBAR_EL1)
//! translation              a load callback and a store callback on every instruction that
//!                          may reach the window (not SP-based or literal ones, not user
//!                          space while it cannot reach the window: [`filter`]), userdata =
//!                          its PC (R_REGS; RW_REGS_PC under on_abort=serror)
//! load/store, fast path    kernel linear-map address, or user address while user space
//!                          cannot reach the window ([`filter`]): return at once; a store
//!                          of 8/16 bytes is first checked for a page-table entry that
//!                          gives user space the window (then: user_space_mapped event,
//!                          qemu_plugin_reset to translate everything again); a kernel
//!                          page [`pages`] knows is outside the window: return
//! TLBI, TTBR/TCR/SCTLR     (and the DSB/ISB after them) start a new generation of
//!   write, DSB/ISB         [`pages`]
//! load/store (after it)    first one: write the window's reset image
//!                          window? -> lock the bus, model the access, apply its writes with
//!                          qemu_plugin_write_memory_hwaddr, capture the call chains of aborts
//!                          and gate changes, queue the events; on_abort=halt stops QEMU,
//!                          on_abort=serror diverts the vCPU at the first abort
//! atexit                   summary event, flush and join the reporter
//! ```
//!
//! Modules: `ffi` is the only `unsafe` and the only FFI (compiled out of unit tests, see
//! there); [`plugin`] decides everything, against the [`plugin::Guest`] trait; [`pages`]
//! remembers kernel pages outside the window; [`reporter`] writes JSON Lines; [`serror`] reads
//! `symbols=`, finds QEMU's `-kernel` and writes the abort's `serror` field; [`guard`] keeps
//! panics out of QEMU; [`access`] and [`install`] are the pure conversions and checks;
//! [`verdict`] copies the events, the verdict and an end marker onto QEMU's own output
//! (`verdict=stdout|stderr`, for LAVA).
//!
//! From rzgate-arm64: [`filter`](rzgate_arm64::filter) decides which accesses cannot reach
//! the window and which stored descriptors give user space the window;
//! [`unwind`](rzgate_arm64::unwind) walks aarch64 frame records;
//! [`serror`](rzgate_arm64::serror) resolves the kernel's SError path in the System.map,
//! checks it against the running kernel and plans the divert.
//!
//! # The reset image
//!
//! The window is guest RAM and starts zeroed; the SoC's reset values must be in it before the
//! guest reads any register. `qemu_plugin_write_memory_hwaddr` asserts `current_cpu`, so it
//! cannot run at install. The vCPU-init callback does run on the vCPU's thread with
//! `current_cpu` set (QEMU queues it as work for that vCPU), but QEMU 11.1 creates the vCPUs
//! before `virt` maps its RAM: measured, every write from there fails. So the
//! first memory callback of any vCPU writes the image, once (the guest's first access is its
//! boot code or DTB, never the window). Until then each memory callback pays for one atomic
//! load and branch, which it pays anyway for the stopped check.
//!
//! # Abort policies
//!
//! - `continue`: the bus has undone a gated write or shown the bus-error value to a gated
//!   read; the abort is only recorded.
//! - `halt`: the abort, a `halt` event and the summary are written out, then QEMU ends at once
//!   with exit status 3 (`_exit`: a real board hangs on a gated access rather than shutting
//!   down cleanly, and `exit` would run QEMU's atexit handlers from a vCPU callback while
//!   the other vCPUs still run).
//! - `serror`: at the first abort the faulting vCPU enters the guest kernel's own SError path
//!   (`do_serror` with a `struct pt_regs` and the entry code's frame records built on its
//!   stack, as after a hardware SError; [`rzgate_arm64::serror`] has the layout and the
//!   checks), so the guest prints what the board prints and panics. The symbols come from
//!   `symbols=` (the booted kernel's System.map), checked at load against the `-kernel` Image
//!   and at the first window access against the running kernel. The decision is made under
//!   the lock; the lock, every buffer and guard are dropped and the events flushed before
//!   `qemu_plugin_set_pc` longjmps out of the bare memory callback (it never returns, and
//!   asserts that the callback was registered with `QEMU_PLUGIN_CB_RW_REGS_PC`, which only
//!   this policy does). Later aborts are recorded as under `continue`.
//!
//! # Tests
//!
//! `cargo test -p rzgate` runs the unit tests (no QEMU: the test build leaves `ffi` out, so
//! it needs no `qemu_plugin_*` symbol) and `tests/qemu.rs`, which boots tiny hand-assembled
//! guests in the toolchain's QEMU 11.1 with this plugin (skipped when that QEMU is absent).
//!
//! # Panics
//!
//! Every callback runs under `catch_unwind`: a panic is reported once on stderr and as an
//! `internal_error` event, the plugin stops modelling (the guest sees plain RAM from then on)
//! and QEMU keeps running; the summary says what happened.

pub mod access;
pub mod guard;
pub mod install;
pub mod pages;
pub mod plugin;
pub mod reporter;
pub mod serror;
pub mod snapshot;
pub mod verdict;

#[cfg(not(test))]
mod ffi;
