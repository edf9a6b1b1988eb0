//! Where the runner finds what it runs: the provisioned toolchain (`toolchain.env`), the
//! kernel builds, and the other build products. Every missing input is a setup error that
//! names the path and the make target that produces it.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The tools `make toolchain` provisioned, as recorded in `$RZGATE_CACHE/toolchain.env`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Toolchain {
    pub qemu: PathBuf,
    /// QEMU's firmware/data directory (`-L`), when QEMU does not find its own.
    pub qemu_datadir: Option<PathBuf>,
    /// Only `dtb` needs dtc; a run with a given `--dtb` does not.
    pub dtc: Option<PathBuf>,
}

/// `$RZGATE_CACHE`, else `$XDG_CACHE_HOME/rzgate`, else `~/.cache/rzgate` (as ci/lib.sh).
pub fn cache_dir() -> PathBuf {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(cache) = non_empty("RZGATE_CACHE") {
        return PathBuf::from(cache);
    }
    if let Some(xdg) = non_empty("XDG_CACHE_HOME") {
        return PathBuf::from(xdg).join("rzgate");
    }
    let home = non_empty("HOME").map_or_else(|| PathBuf::from("/"), PathBuf::from);
    home.join(".cache").join("rzgate")
}

impl Toolchain {
    /// Loads `path`, or `cache_dir()/toolchain.env` when no path is given.
    pub fn load(path: Option<&Path>) -> Result<Toolchain> {
        let path = path.map_or_else(|| cache_dir().join("toolchain.env"), Path::to_path_buf);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
                "toolchain not provisioned: run `make toolchain` ({} does not exist)",
                path.display()
            ),
            Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
        };
        let toolchain = Toolchain::parse(&text).with_context(|| format!("{}", path.display()))?;
        if !toolchain.qemu.exists() {
            bail!(
                "QEMU {} (from {}) does not exist: run `make toolchain`",
                toolchain.qemu.display(),
                path.display()
            );
        }
        Ok(toolchain)
    }

    /// `KEY=value` lines; `#` comments, blank lines, an `export ` prefix and quotes around
    /// the value are tolerated, unknown keys ignored (the file also serves the Makefile).
    pub fn parse(text: &str) -> Result<Toolchain> {
        let mut qemu = None;
        let mut qemu_datadir = None;
        let mut dtc = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let line = line.strip_prefix("export ").unwrap_or(line);
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let value = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            let path = (!value.is_empty()).then(|| PathBuf::from(value));
            match key.trim() {
                "QEMU" => qemu = path,
                "QEMU_DATADIR" => qemu_datadir = path,
                "DTC" => dtc = path,
                _ => {}
            }
        }
        let Some(qemu) = qemu else {
            bail!("no QEMU=... line: run `make toolchain` again");
        };
        Ok(Toolchain {
            qemu,
            qemu_datadir,
            dtc,
        })
    }

    pub fn dtc(&self) -> Result<&Path> {
        match &self.dtc {
            Some(dtc) if dtc.exists() => Ok(dtc),
            Some(dtc) => bail!("dtc {} does not exist: run `make toolchain`", dtc.display()),
            None => bail!("toolchain.env has no DTC=... line: run `make toolchain`"),
        }
    }

    /// `-L datadir` when the toolchain names one.
    pub fn datadir_args(&self) -> Vec<String> {
        match &self.qemu_datadir {
            Some(dir) => vec!["-L".to_string(), dir.display().to_string()],
            None => Vec::new(),
        }
    }
}

/// One kernel build: `<dir>/Image` and its `<dir>/System.map`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelBuild {
    pub name: String,
    pub image: PathBuf,
    pub system_map: PathBuf,
}

impl KernelBuild {
    pub fn find(name: &str, dir: &Path) -> Result<KernelBuild> {
        let image = dir.join("Image");
        let system_map = dir.join("System.map");
        for path in [&image, &system_map] {
            if !path.is_file() {
                bail!(
                    "kernel `{name}` is not built: {} is missing (run `make kernels`)",
                    path.display()
                );
            }
        }
        Ok(KernelBuild {
            name: name.to_string(),
            image,
            system_map,
        })
    }
}

/// A build product that must exist before a run (`what` names it, `make` the target).
pub fn require_file(path: &Path, what: &str, make: &str) -> Result<()> {
    if !path.is_file() {
        bail!("{what} {} is missing (run `{make}`)", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_toolchain_env() {
        let t = Toolchain::parse(
            "# provisioned\nQEMU=/c/bin/qemu-system-aarch64\nQEMU_DATADIR=\"/c/share/qemu\"\nexport DTC=/c/bin/dtc\nBUSYBOX=/x\n",
        )
        .unwrap();
        assert_eq!(t.qemu, PathBuf::from("/c/bin/qemu-system-aarch64"));
        assert_eq!(t.qemu_datadir, Some(PathBuf::from("/c/share/qemu")));
        assert_eq!(t.dtc, Some(PathBuf::from("/c/bin/dtc")));
        assert_eq!(t.datadir_args(), vec!["-L", "/c/share/qemu"]);
    }

    #[test]
    fn empty_datadir_means_no_dash_l() {
        let t = Toolchain::parse("QEMU=/q\nQEMU_DATADIR=\n").unwrap();
        assert_eq!(t.qemu_datadir, None);
        assert!(t.datadir_args().is_empty());
        assert!(t.dtc().is_err());
    }

    #[test]
    fn missing_qemu_or_file_is_an_error() {
        assert!(Toolchain::parse("DTC=/d\n").is_err());
        let dir = tempfile::tempdir().unwrap();
        let e = Toolchain::load(Some(&dir.path().join("toolchain.env"))).unwrap_err();
        assert!(format!("{e:#}").contains("toolchain not provisioned: run `make toolchain`"));
    }

    #[test]
    fn missing_kernel_names_path_and_target() {
        let dir = tempfile::tempdir().unwrap();
        let e = KernelBuild::find("prefix", &dir.path().join("prefix")).unwrap_err();
        let e = format!("{e:#}");
        assert!(
            e.contains("prefix/Image") && e.contains("make kernels"),
            "{e}"
        );
        std::fs::write(dir.path().join("Image"), b"x").unwrap();
        std::fs::write(dir.path().join("System.map"), b"x").unwrap();
        assert!(KernelBuild::find("k", dir.path()).is_ok());
    }
}
