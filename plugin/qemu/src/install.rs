//! Checks made when QEMU loads the plugin, and their messages. QEMU prints nothing useful
//! when `qemu_plugin_install` fails, so every refusal names the argument or file at fault.

use crate::serror::SymbolsError;
use rzgate_core::config::ConfigError;
use rzgate_core::soc::SocError;
use std::ffi::CStr;
use std::fmt;
use std::path::PathBuf;

pub const USAGE: &str = "-plugin librzgate.so,soc=FILE,events=FILE[,on_abort=continue|halt|serror]\
[,temp=C][,adc=V0:...:V7][,faults=NAME:NAME][,symbols=SYSTEM_MAP][,state_in=FILE][,state_out=FILE][,verdict=stdout|stderr]";

/// Why the plugin refuses to load. Displayed after `rzgate: `.
#[derive(Debug)]
pub enum InstallError {
    WrongTarget(String),
    UserMode,
    NonUtf8Argument(String),
    Config(ConfigError),
    Soc {
        path: PathBuf,
        error: SocError,
    },
    EventsFile {
        path: PathBuf,
        error: std::io::Error,
    },
    Reporter(std::io::Error),
    /// `symbols=` cannot serve `on_abort=serror`.
    Symbols(SymbolsError),
    LoadedTwice,
    /// `state_in=` or `state_out=` cannot be used.
    State {
        key: &'static str,
        path: PathBuf,
        message: String,
    },
}

impl fmt::Display for InstallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InstallError::WrongTarget(target) => write!(
                f,
                "this plugin models an aarch64 SoC but QEMU emulates `{target}`: \
                 load it into qemu-system-aarch64"
            ),
            InstallError::UserMode => write!(
                f,
                "this plugin needs system emulation (qemu-system-aarch64 -M virt), \
                 not user-mode emulation"
            ),
            InstallError::NonUtf8Argument(lossy) => {
                write!(f, "plugin argument `{lossy}` is not valid UTF-8")
            }
            InstallError::Config(error) => write!(f, "{} (usage: {USAGE})", unprefixed(error)),
            InstallError::Soc { path, error } => write!(
                f,
                "cannot load the SoC description soc={}: {}",
                path.display(),
                unprefixed(error)
            ),
            InstallError::EventsFile { path, error } => write!(
                f,
                "cannot create the events file events={}: {error}",
                path.display()
            ),
            InstallError::Reporter(error) => {
                write!(f, "cannot start the event reporter thread: {error}")
            }
            InstallError::Symbols(error) => write!(f, "{error}"),
            InstallError::State { key, path, message } => {
                write!(
                    f,
                    "cannot use the state file {key}={}: {message}",
                    path.display()
                )
            }
            InstallError::LoadedTwice => {
                write!(
                    f,
                    "the plugin is loaded twice: give -plugin librzgate.so once"
                )
            }
        }
    }
}

impl std::error::Error for InstallError {}

/// rzgate-core's messages may carry the `rzgate: ` prefix themselves; QEMU's stderr should
/// show it once.
fn unprefixed(error: &impl fmt::Display) -> String {
    let text = error.to_string();
    match text.strip_prefix("rzgate: ") {
        Some(rest) => rest.to_string(),
        None => text,
    }
}

impl From<ConfigError> for InstallError {
    fn from(error: ConfigError) -> Self {
        InstallError::Config(error)
    }
}

/// The guest QEMU emulates must be a whole aarch64 machine.
pub fn check_target(target_name: Option<&str>, system_emulation: bool) -> Result<(), InstallError> {
    match target_name {
        Some("aarch64") => {}
        other => {
            return Err(InstallError::WrongTarget(
                other.unwrap_or("(unknown)").to_string(),
            ))
        }
    }
    if !system_emulation {
        return Err(InstallError::UserMode);
    }
    Ok(())
}

/// QEMU's `argv` ("key=value" strings, split at commas by QEMU) as Rust strings.
pub fn plugin_arguments(argv: &[&CStr]) -> Result<Vec<String>, InstallError> {
    argv.iter()
        .map(|arg| {
            arg.to_str()
                .map(str::to_owned)
                .map_err(|_| InstallError::NonUtf8Argument(arg.to_string_lossy().into_owned()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aarch64_system_emulation_is_accepted() {
        assert!(check_target(Some("aarch64"), true).is_ok());
    }

    #[test]
    fn other_targets_are_refused_by_name() {
        let error = check_target(Some("riscv64"), true).unwrap_err();
        assert!(error.to_string().contains("`riscv64`"), "{error}");
        let error = check_target(None, true).unwrap_err();
        assert!(error.to_string().contains("(unknown)"), "{error}");
    }

    #[test]
    fn user_mode_is_refused() {
        let error = check_target(Some("aarch64"), false).unwrap_err();
        assert!(error.to_string().contains("system emulation"), "{error}");
    }

    #[test]
    fn arguments_are_passed_through_in_order() {
        let soc = c"soc=socs/r9a08g045.yaml";
        let events = c"events=/tmp/ev.jsonl";
        assert_eq!(
            plugin_arguments(&[soc, events]).unwrap(),
            vec!["soc=socs/r9a08g045.yaml", "events=/tmp/ev.jsonl"]
        );
        assert!(plugin_arguments(&[]).unwrap().is_empty());
    }

    #[test]
    fn non_utf8_argument_is_named() {
        let bad = c"events=/tmp/\xff.jsonl";
        let error = plugin_arguments(&[c"soc=x", bad]).unwrap_err();
        assert!(error.to_string().contains("events=/tmp/"), "{error}");
    }

    #[test]
    fn core_messages_keep_a_single_prefix() {
        let prefixed = ConfigError::UnknownKey {
            key: "bogus".into(),
        };
        let message = InstallError::Config(prefixed).to_string();
        assert!(!message.starts_with("rzgate: "), "{message}");
        assert!(message.contains("`bogus`"), "{message}");
        assert!(message.contains("usage: -plugin librzgate.so"), "{message}");
    }

    #[test]
    fn file_errors_name_the_argument_and_the_file() {
        let error = InstallError::EventsFile {
            path: "/nonexistent/ev.jsonl".into(),
            error: std::io::Error::from(std::io::ErrorKind::NotFound),
        };
        let message = error.to_string();
        assert!(
            message.contains("events=/nonexistent/ev.jsonl"),
            "{message}"
        );
    }
}
