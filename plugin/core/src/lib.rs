//! rzgate-core: everything of rzgate that does not need QEMU.
//!
//! The SoC description ([`soc`]), the plugin arguments ([`config`]), the event types
//! ([`event`]), the bus that decodes, gates and dispatches guest accesses ([`bus`],
//! [`gate`]) and the device models ([`cpg`], [`adc`], [`tsu`], [`mailbox`]). The QEMU
//! glue (crate `rzgate`) feeds [`bus::Bus::access`] from its memory callback and applies
//! the returned memory writes; nothing here names a QEMU symbol or type.

pub mod adc;
pub mod bus;
pub mod config;
pub mod cpg;
pub mod event;
pub mod gate;
pub mod mailbox;
pub mod regs;
pub mod sim;
pub mod soc;
pub mod tsu;

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
