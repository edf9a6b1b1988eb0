//! `on_abort=serror`, the plugin's side: reading the `symbols=` file and saying why it
//! cannot be used, finding the kernel Image on QEMU's command line (`-kernel`), and the abort
//! event's `serror` field. The arm64 side (the kernel's symbols, the check against its code,
//! `struct pt_regs`, the frame records, ESR and PSTATE, the plan of one divert) is
//! [`rzgate_arm64::serror`], where the divert itself is documented.

use rzgate_arm64::sea::SEA_READ_ESR;
use rzgate_arm64::serror::{
    Divert, DivertMode, Exception, KernelSymbols, SerrorSymbols, FAITHFUL_SYMBOLS, FALLBACK_SYMBOL,
    SERROR_ESR,
};
use rzgate_core::event::SerrorDivert;
use std::fmt;
use std::path::{Path, PathBuf};

/// Reads `symbols=`: a kernel's `System.map`.
pub fn load_symbols(path: &Path) -> Result<KernelSymbols, SymbolsError> {
    let text = std::fs::read(path).map_err(|error| SymbolsError::Read {
        path: path.to_path_buf(),
        error,
    })?;
    let symbols = KernelSymbols::parse(&String::from_utf8_lossy(&text));
    if !symbols.is_kernel_map() {
        return Err(SymbolsError::NotAMap {
            path: path.to_path_buf(),
        });
    }
    Ok(symbols)
}

/// The SError entry points of the map read from `path`.
pub fn resolve_symbols(
    symbols: &KernelSymbols,
    path: &Path,
) -> Result<SerrorSymbols, SymbolsError> {
    SerrorSymbols::resolve(symbols).ok_or_else(|| SymbolsError::Missing {
        path: path.to_path_buf(),
    })
}

/// Why `symbols=` cannot serve `on_abort=serror`; displayed after `rzgate: `.
#[derive(Debug)]
pub enum SymbolsError {
    Read {
        path: PathBuf,
        error: std::io::Error,
    },
    NotAMap {
        path: PathBuf,
    },
    Missing {
        path: PathBuf,
    },
    /// The kernel Image QEMU boots (`-kernel`) does not match the map.
    Mismatch {
        path: PathBuf,
        image: PathBuf,
        why: String,
    },
}

impl fmt::Display for SymbolsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SymbolsError::Read { path, error } => write!(
                f,
                "on_abort=serror: cannot read the kernel's symbol map symbols={}: {error}",
                path.display()
            ),
            SymbolsError::NotAMap { path } => write!(
                f,
                "on_abort=serror: symbols={} is not a kernel System.map (no `ADDR T NAME` text \
                 symbols, no _text)",
                path.display()
            ),
            SymbolsError::Missing { path } => write!(
                f,
                "on_abort=serror: symbols={} has neither {} nor {FALLBACK_SYMBOL}: the \
                 kernel's SError path cannot be found (is it an arm64 kernel's System.map?)",
                path.display(),
                FAITHFUL_SYMBOLS.join(", ")
            ),
            SymbolsError::Mismatch { path, image, why } => write!(
                f,
                "on_abort=serror: symbols={} is not the System.map of the kernel QEMU boots \
                 (-kernel {}): {why}",
                path.display(),
                image.display()
            ),
        }
    }
}

impl std::error::Error for SymbolsError {}

/// The `-kernel` file of a QEMU command line (`/proc/self/cmdline`: NUL-separated).
pub fn kernel_from_cmdline(cmdline: &[u8]) -> Option<PathBuf> {
    let mut args = cmdline.split(|&byte| byte == 0);
    while let Some(arg) = args.next() {
        if arg == b"-kernel" || arg == b"--kernel" {
            let path = args.next()?;
            return (!path.is_empty())
                .then(|| PathBuf::from(String::from_utf8_lossy(path).into_owned()));
        }
    }
    None
}

/// The `serror` field of an abort the plugin diverted; `far` is the read's address
/// (synchronous external aborts only).
pub fn diverted(divert: &Divert, far: Option<u64>) -> SerrorDivert {
    let mode = match divert.mode {
        DivertMode::Faithful => "faithful",
        DivertMode::Fallback => "fallback",
    };
    SerrorDivert {
        exception: divert.exception.name().to_string(),
        mode: mode.to_string(),
        target: Some(divert.target.to_string()),
        target_addr: Some(divert.pc),
        esr: divert.esr,
        far: far.filter(|_| divert.exception == Exception::SyncExternalAbort),
        regs: Some(divert.regs),
        missing: divert.missing.clone(),
        reason: None,
    }
}

/// The `serror` field of an abort the plugin did not divert into `exception`'s path.
pub fn refused(exception: Exception, reason: impl Into<String>) -> SerrorDivert {
    SerrorDivert {
        exception: exception.name().to_string(),
        mode: "refused".to_string(),
        esr: match exception {
            Exception::Serror => SERROR_ESR,
            Exception::SyncExternalAbort => SEA_READ_ESR,
        },
        reason: Some(reason.into()),
        ..SerrorDivert::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rzgate_arm64::serror::{plan, CpuState, Verified};

    #[test]
    fn a_missing_or_foreign_file_is_refused_by_name() {
        let error = load_symbols(Path::new("/nonexistent/System.map")).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("symbols=/nonexistent/System.map"),
            "{message}"
        );
        let dir = std::env::temp_dir().join(format!("rzgate-serror-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("not-a-map");
        std::fs::write(&file, "hello\nworld\n").unwrap();
        let message = load_symbols(&file).unwrap_err().to_string();
        assert!(message.contains("is not a kernel System.map"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
        let empty = load_symbols(Path::new("/dev/null")).unwrap_err();
        assert!(matches!(empty, SymbolsError::NotAMap { .. }));
    }

    #[test]
    fn without_any_entry_point_the_map_is_refused() {
        let map = "ffff800080000000 T _text\nffff800080010000 T _stext\n";
        let message = resolve_symbols(&KernelSymbols::parse(map), Path::new("System.map"))
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("has neither el1h_64_error, el1h_64_error_handler, do_serror nor arm64_serror_panic"),
            "{message}"
        );
    }

    #[test]
    fn a_map_of_another_image_names_both_files() {
        let message = SymbolsError::Mismatch {
            path: "a/System.map".into(),
            image: "b/Image".into(),
            why: "the guest has no readable code at el1h_64_error (0xffff800080011394)".into(),
        }
        .to_string();
        assert!(
            message.starts_with(
                "on_abort=serror: symbols=a/System.map is not the System.map of the kernel \
                 QEMU boots (-kernel b/Image): "
            ),
            "{message}"
        );
    }

    #[test]
    fn the_kernel_comes_from_qemus_command_line() {
        let cmdline = b"qemu-system-aarch64\0-M\0virt\0-kernel\0/k/Image\0-append\0x\0";
        assert_eq!(
            kernel_from_cmdline(cmdline),
            Some(PathBuf::from("/k/Image"))
        );
        assert_eq!(
            kernel_from_cmdline(b"qemu\0--kernel\0Image\0"),
            Some(PathBuf::from("Image"))
        );
        assert_eq!(kernel_from_cmdline(b"qemu\0-M\0virt\0"), None);
        assert_eq!(kernel_from_cmdline(b"qemu\0-kernel"), None);
        assert_eq!(kernel_from_cmdline(b"qemu\0-kernel\0\0"), None);
    }

    const DO_SERROR: u64 = 0xffff_8000_8002_2fa4;
    const PANIC: u64 = 0xffff_8000_8002_2e80;

    fn state() -> CpuState {
        CpuState {
            x: [0; 31],
            sp: 0xffff_8000_8233_bb60,
            cpsr: 0x6000_0005, // EL1h
        }
    }

    #[test]
    fn a_divert_is_reported_with_its_target_esr_and_pt_regs() {
        let faithful = Verified::Faithful {
            do_serror: DO_SERROR,
            handler_return: 0xffff_8000_802f_8730,
            entry_return: 0xffff_8000_8001_1400,
            handler_frame: 32,
        };
        let divert = plan(&faithful, &state(), 0xffff_8000_8060_0014).unwrap();
        let regs = 0xffff_8000_8233_bb60 - 320;
        let info = diverted(&divert, Some(0x1234));
        assert_eq!(info.mode, "faithful");
        assert_eq!(info.exception, "serror");
        assert_eq!(info.far, None, "an SError has no FAR");
        assert_eq!(info.target.as_deref(), Some("do_serror"));
        assert_eq!(info.target_addr, Some(DO_SERROR));
        assert_eq!(info.regs, Some(regs));
        let json = serde_json::to_value(&info).unwrap();
        assert_eq!(json["esr"], 0xbe00_0011u64);
        assert!(json.get("missing").is_none() && json.get("reason").is_none());

        let fallback = Verified::Fallback {
            arm64_serror_panic: PANIC,
            missing: vec!["el1h_64_error".into()],
        };
        let divert = plan(&fallback, &state(), 0xffff_8000_8060_0014).unwrap();
        let info = diverted(&divert, Some(0x1234));
        assert_eq!(info.mode, "fallback");
        assert_eq!(info.target.as_deref(), Some("arm64_serror_panic"));
        assert_eq!(info.target_addr, Some(PANIC));
        assert_eq!(info.regs, Some(regs));
        assert_eq!(info.missing, vec!["el1h_64_error"]);
    }

    #[test]
    fn a_refused_divert_says_why() {
        let info = refused(Exception::Serror, "why");
        assert_eq!(
            (info.exception.as_str(), info.mode.as_str()),
            ("serror", "refused")
        );
        assert_eq!(info.reason.as_deref(), Some("why"));
        assert_eq!(info.esr, 0xbe00_0011);
        let read = refused(Exception::SyncExternalAbort, "why");
        assert_eq!(read.exception, "synchronous-external-abort");
        assert_eq!(read.esr, 0x9600_0010);
    }
}
