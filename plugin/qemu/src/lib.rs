//! `librzgate.so`: the QEMU 11 plugin (API v7) that runs rzgate-core's RZ/G3S models in the
//! `virt` machine. This crate is glue only; the SoC, bus, gates and models are rzgate-core's.
//!
//! ```text
//! qemu_plugin_install      parse key=value arguments, load the SoC, build the bus, create the
//!                          events file, start the reporter, register the callbacks
//! vCPU init                cache x29/x30 register handles
//! translation              a load/store callback on every instruction, userdata = its PC
//! load/store (after it)    first one: write the window's reset image
//!                          window? -> lock the bus, model the access, apply its writes with
//!                          qemu_plugin_write_memory_hwaddr, capture the call chain of aborts,
//!                          queue the events; on_abort=halt stops QEMU
//! atexit                   summary event, flush and join the reporter
//! ```
//!
//! Modules: `ffi` is the only `unsafe` and the only FFI (compiled out of unit tests, see
//! there); [`plugin`] decides everything, against the [`plugin::Guest`] trait; [`reporter`]
//! writes JSON Lines; [`unwind`] walks aarch64 frame records; [`guard`] keeps panics out of
//! QEMU; [`access`] and [`install`] are the pure conversions and checks.
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
//! - `serror`: diverting the faulting vCPU into the guest kernel's SError path is not
//!   implemented yet; until it is, `serror` behaves exactly as `halt` (the abort event carries
//!   the call chain all the same) and the plugin says so on stderr at load. The divert will
//!   live in `plugin::Plugin::on_window_access` next to the halt and needs the memory
//!   callbacks registered with `QEMU_PLUGIN_CB_RW_REGS_PC` (see `ffi`).
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
pub mod plugin;
pub mod reporter;
pub mod unwind;

#[cfg(not(test))]
mod ffi;
