//! rzgate-core: everything of rzgate that does not need QEMU.
//!
//! Layers, each using only the ones above it:
//!
//! ```text
//! regs, config            register access kinds; plugin arguments
//! soc                     the SoC description: loader, validation, DT fragment
//! device                  the peripheral interface every model implements
//! gate, event             gate evaluation; the events the plugin reports
//! models::*               one module per device with behaviour, and the generic model
//! registry                model name -> constructor (the only place naming a model)
//! bus                     decode, gate, dispatch to a Peripheral, effects -> writes/events
//! state                   a snapshot's state file: the bus's state and what it belongs to
//! sim                     a RAM stand-in that drives the bus as QEMU does (tests)
//! ```
//!
//! The QEMU glue (crate `rzgate`) feeds [`bus::Bus::access`] from its memory callback and
//! applies the returned memory writes; nothing here names a QEMU symbol or type.

pub mod bus;
pub mod config;
pub mod device;
pub mod event;
pub mod gate;
pub mod models;
pub mod registry;
pub mod regs;
pub mod sim;
pub mod soc;
pub mod state;

pub use bus::{Access, Bus, MemWrite, Outcome};
pub use config::{AbortPolicy, ConfigError, Fault, ModelConfig, PluginConfig};
pub use event::Event;
pub use soc::{Soc, SocError, Window};

/// The shipped RZ/G3S description, for unit tests.
#[cfg(test)]
pub(crate) fn test_soc() -> Soc {
    match Soc::parse(
        include_str!("../../../socs/r9a08g045.yaml"),
        "socs/r9a08g045.yaml",
    ) {
        Ok(soc) => soc,
        Err(e) => panic!("{e}"),
    }
}
