//! The device models with behaviour of their own, one module per device, and the generic
//! model every register-only device gets. Each depends on the peripheral interface
//! ([`crate::device`]) and on its device description ([`crate::soc::Device`]) only;
//! [`crate::registry`] is the one place that names them.

pub mod adc;
pub mod cpg;
pub mod dmac;
pub mod generic;
pub mod mailbox;
pub mod riic;
pub mod rtca3;
pub mod scif;
pub mod tsu;
pub mod wdt;
