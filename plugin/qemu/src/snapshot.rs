//! The plugin's side of snapshots (docs/contracts.md "Snapshots"). QEMU's plugin API has
//! no migration hook, so the state the models keep travels beside QEMU's migration
//! stream: `state_out=` writes it when the snapshot's QEMU exits (stopped in `postmigrate`,
//! so the state is the stream's), `state_in=` loads it at install of the restored QEMU.

use std::path::Path;

use rzgate_core::bus::Bus;
use rzgate_core::config::PluginConfig;
use rzgate_core::state::{digest, Identity, StateFile};
use serde_json::Value;

use crate::install::InstallError;

/// This plugin build, fixed by build.rs.
pub const BUILD_ID: &str = env!("RZGATE_BUILD_ID");

fn state_error(path: &Path, key: &'static str, message: String) -> InstallError {
    InstallError::State {
        key,
        path: path.to_path_buf(),
        message,
    }
}

/// What a state written or read with these arguments belongs to; None when neither
/// `state_in` nor `state_out` is given (then nothing is read or digested).
pub fn identity(config: &PluginConfig) -> Result<Option<Identity>, InstallError> {
    let (key, path) = match (&config.state_in, &config.state_out) {
        (Some(path), _) => ("state_in", path),
        (None, Some(path)) => ("state_out", path),
        (None, None) => return Ok(None),
    };
    let read = |file: &Path, what: &str| {
        std::fs::read(file).map_err(|e| {
            state_error(
                path,
                key,
                format!("cannot read {what} {}: {e}", file.display()),
            )
        })
    };
    let soc = read(&config.soc, "the SoC description")?;
    let kernel = match &config.symbols {
        Some(map) => Some(digest(&read(map, "the System.map")?)),
        None => None,
    };
    Ok(Some(Identity {
        build: BUILD_ID.to_string(),
        soc: digest(&soc),
        kernel,
    }))
}

/// Loads `state_in` into `bus` (built from the same description); returns the glue's part.
pub fn load(path: &Path, identity: &Identity, bus: &mut Bus) -> Result<Value, InstallError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| state_error(path, "state_in", format!("cannot read it: {e}")))?;
    let file = StateFile::parse_for(&text, identity)
        .map_err(|message| state_error(path, "state_in", message))?;
    bus.load(&file.bus)
        .map_err(|message| state_error(path, "state_in", message))?;
    Ok(file.glue)
}

/// Refuses a `state_out` that cannot be written at exit (its directory is missing), so
/// that the failure shows at install rather than after the whole boot.
pub fn check_writable(path: &Path) -> Result<(), InstallError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(state_error(
            path,
            "state_out",
            format!("its directory {} does not exist", dir.display()),
        ))
    }
}

/// Writes the state file whole or not at all (a temporary file renamed over it).
pub fn write(path: &Path, identity: &Identity, bus: &Bus, glue: Value) -> Result<(), String> {
    let file = StateFile::new(identity.clone(), bus.save(), glue);
    let text = serde_json::to_string(&file).map_err(|e| e.to_string())?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".partial");
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", Path::new(&tmp).display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}
