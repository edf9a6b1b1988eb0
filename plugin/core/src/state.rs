//! The state file of a snapshot (docs/contracts.md "Snapshots"): the bus's state with what
//! it belongs to. QEMU migrates the guest but knows nothing of the plugin, so the plugin of
//! the run a snapshot is made in writes this at exit (`state_out=`) and the plugin of a
//! restored run loads it at install (`state_in=`). A state only fits the guest it was saved
//! with: the same SoC description, the same plugin build and the same kernel; anything
//! else is refused by name rather than restored into a guest that does not match it.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::bus::BusState;

/// Bumped whenever the layout of [`StateFile`] or of a model's saved state changes.
pub const FORMAT: u32 = 1;

/// What a state belongs to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The plugin build (a digest of its sources, fixed at compile time).
    pub build: String,
    /// Digest of the SoC description file.
    pub soc: String,
    /// Digest of the booted kernel's System.map (`symbols=`), when given.
    pub kernel: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateFile {
    pub format: u32,
    pub identity: Identity,
    pub bus: BusState,
    /// What the QEMU glue keeps beside the bus (its own keys).
    pub glue: Value,
}

impl StateFile {
    pub fn new(identity: Identity, bus: BusState, glue: Value) -> StateFile {
        StateFile {
            format: FORMAT,
            identity,
            bus,
            glue,
        }
    }

    /// Parses a state file's text and checks that it belongs to `here` (this plugin, SoC
    /// description and kernel). The error says what differs.
    pub fn parse_for(text: &str, here: &Identity) -> Result<StateFile, String> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| format!("not a JSON state file: {e}"))?;
        let format = value.get("format").and_then(Value::as_u64);
        if format != Some(u64::from(FORMAT)) {
            return Err(format!(
                "state format {} (this plugin reads format {FORMAT}): make the snapshot again",
                format.map_or("missing".to_string(), |f| f.to_string())
            ));
        }
        let file: StateFile =
            serde_json::from_value(value).map_err(|e| format!("malformed state: {e}"))?;
        let saved = &file.identity;
        if saved.build != here.build {
            return Err(format!(
                "written by another plugin build ({}; this one is {}): make the snapshot \
                 again with this plugin",
                saved.build, here.build
            ));
        }
        if saved.soc != here.soc {
            return Err(format!(
                "saved with another SoC description (digest {}; soc= has {})",
                saved.soc, here.soc
            ));
        }
        match (&saved.kernel, &here.kernel) {
            (Some(a), Some(b)) if a != b => Err(format!(
                "saved with another kernel (System.map digest {a}; symbols= has {b}): a \
                 snapshot restores the kernel it was made with"
            )),
            (Some(_), None) => Err(
                "saved with a kernel's symbols: give symbols= with the System.map of the \
                 snapshot's kernel so that it can be checked"
                    .to_string(),
            ),
            (None, Some(_)) => Err(
                "saved without symbols=, so its kernel is unknown: make the snapshot with \
                 symbols="
                    .to_string(),
            ),
            _ => Ok(file),
        }
    }
}

/// A stable 64-bit digest (FNV-1a) in hex: enough to tell two files apart, not a security
/// measure (the state is the user's own file).
pub fn digest(bytes: &[u8]) -> String {
    let hash = bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ModelConfig;
    use crate::{test_soc, Bus};

    fn identity() -> Identity {
        Identity {
            build: "b1".into(),
            soc: digest(b"soc"),
            kernel: Some(digest(b"System.map")),
        }
    }

    fn text(identity: Identity) -> String {
        let bus = Bus::new(test_soc(), &ModelConfig::default()).unwrap();
        let file = StateFile::new(identity, bus.save(), serde_json::json!({"lower_half": 1}));
        serde_json::to_string(&file).unwrap()
    }

    #[test]
    fn a_state_of_the_same_plugin_soc_and_kernel_loads() {
        let file = StateFile::parse_for(&text(identity()), &identity()).unwrap();
        assert_eq!(file.glue["lower_half"], 1);
        assert_eq!(file.format, FORMAT);
    }

    #[test]
    fn another_build_soc_or_kernel_is_refused_saying_which() {
        let here = identity();
        let cases = [
            (
                Identity {
                    build: "b0".into(),
                    ..identity()
                },
                "another plugin build",
            ),
            (
                Identity {
                    soc: digest(b"other soc"),
                    ..identity()
                },
                "another SoC description",
            ),
            (
                Identity {
                    kernel: Some(digest(b"other map")),
                    ..identity()
                },
                "another kernel",
            ),
            (
                Identity {
                    kernel: None,
                    ..identity()
                },
                "without symbols=",
            ),
        ];
        for (saved, expected) in cases {
            let error = StateFile::parse_for(&text(saved), &here).unwrap_err();
            assert!(error.contains(expected), "{error}");
        }
        let no_symbols_here = Identity {
            kernel: None,
            ..identity()
        };
        let error = StateFile::parse_for(&text(identity()), &no_symbols_here).unwrap_err();
        assert!(error.contains("give symbols="), "{error}");
    }

    #[test]
    fn other_formats_and_garbage_are_refused() {
        let old = text(identity()).replacen("\"format\":1", "\"format\":0", 1);
        let error = StateFile::parse_for(&old, &identity()).unwrap_err();
        assert!(error.contains("state format 0"), "{error}");
        let error = StateFile::parse_for("{\"format\":1}", &identity()).unwrap_err();
        assert!(error.contains("malformed state"), "{error}");
        let error = StateFile::parse_for("events", &identity()).unwrap_err();
        assert!(error.contains("not a JSON state file"), "{error}");
    }

    #[test]
    fn digest_tells_files_apart() {
        assert_eq!(digest(b""), "cbf29ce484222325");
        assert_ne!(digest(b"a"), digest(b"b"));
    }
}
