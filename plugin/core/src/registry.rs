//! The one place that knows the concrete models: a model name in the SoC description maps
//! to its constructor here. Adding a model with Rust behaviour is one line in [`MODELS`];
//! a device whose driver needs only declared registers needs no line at all (it gets the
//! generic model).

use std::path::Path;

use crate::config::ModelConfig;
use crate::device::{BuildError, Peripheral};
use crate::models::{adc, cpg, dmac, generic, mailbox, riic, rtca3, scif, tsu, wdt};
use crate::soc::{Device, Soc, SocError};

/// Builds the model of one device.
type Constructor = fn(&Device, &Soc, &ModelConfig) -> Result<Box<dyn Peripheral>, BuildError>;

/// Every model by name.
pub const MODELS: &[(&str, Constructor)] = &[
    (generic::MODEL, |d, _, _| {
        Ok(Box::new(generic::Generic::new(d)?))
    }),
    (cpg::MODEL, |d, soc, cfg| {
        Ok(Box::new(cpg::Cpg::new(d, soc, cfg)?))
    }),
    (adc::MODEL, |d, _, cfg| Ok(Box::new(adc::Adc::new(d, cfg)?))),
    (tsu::MODEL, |d, _, cfg| Ok(Box::new(tsu::Tsu::new(d, cfg)?))),
    (wdt::MODEL, |d, soc, _| {
        Ok(Box::new(wdt::Wdt::new(d, soc.extal().frequency)?))
    }),
    (mailbox::MODEL, |d, _, _| {
        Ok(Box::new(mailbox::Mailbox::new(d)?))
    }),
    (riic::MODEL, |d, _, cfg| {
        Ok(Box::new(riic::Riic::new(d, cfg)?))
    }),
    (scif::MODEL, |d, _, cfg| {
        Ok(Box::new(scif::Scif::new(d, cfg)?))
    }),
    (rtca3::MODEL, |d, _, cfg| {
        Ok(Box::new(rtca3::Rtca3::new(d, cfg)?))
    }),
    (dmac::MODEL, |d, _, cfg| {
        Ok(Box::new(dmac::Dmac::new(d, cfg)?))
    }),
];

/// The model names, for messages.
pub fn names() -> Vec<&'static str> {
    MODELS.iter().map(|(n, _)| *n).collect()
}

/// One model per device of `soc`, in declaration order.
pub fn build(soc: &Soc, cfg: &ModelConfig) -> Result<Vec<Box<dyn Peripheral>>, SocError> {
    soc.devices()
        .iter()
        .map(|dev| {
            let (_, make) = MODELS
                .iter()
                .find(|(name, _)| *name == dev.model)
                .ok_or_else(|| invalid(
                    soc,
                    dev,
                    "model",
                    format!(
                        "unknown model `{}` (expected one of {}; a device without `model` is generic)",
                        dev.model,
                        names().join(", ")
                    ),
                ))?;
            make(dev, soc, cfg).map_err(|e| invalid(soc, dev, &e.key, e.message))
        })
        .collect()
}

fn invalid(soc: &Soc, dev: &Device, key: &str, message: String) -> SocError {
    SocError::Invalid {
        file: soc.origin().to_string(),
        path: format!("devices.{}.{key}", dev.name),
        message,
    }
}

/// Parses and validates `text` completely: the description itself, then every device
/// against its model (the registers and fields a model needs, its inputs, ...).
pub fn parse(text: &str, origin: &str) -> Result<Soc, SocError> {
    let soc = Soc::parse(text, origin)?;
    build(&soc, &ModelConfig::default())?;
    Ok(soc)
}

/// [`parse`] of a file.
pub fn load(path: &Path) -> Result<Soc, SocError> {
    let soc = Soc::load(path)?;
    build(&soc, &ModelConfig::default())?;
    Ok(soc)
}
