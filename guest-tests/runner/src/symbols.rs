//! Symbolization of guest kernel addresses from the booted kernel's `System.map`.
//!
//! `System.map` lines are `ADDR TYPE NAME` (`ffff800080010000 T _stext`). Only text symbols
//! (types `T`, `t`, `W`, `w`) are used: the plugin reports program counters and return
//! addresses, which always point into kernel text. KASLR is off in our kernels, so the
//! addresses the plugin sees map straight onto the file.
//!
//! An address maps to `name+0xoff` of the nearest text symbol at or below it. Kernel text
//! is the image text (up to `_etext`) plus the init text (`_sinittext`..`_einittext`,
//! where built-in drivers' probe paths run at boot). Addresses outside both are printed
//! as plain hex with a note saying why, never attributed to the nearest (and wrong)
//! function.

use std::path::Path;

use anyhow::{Context, Result};

/// A symbolized address: the text to print and, when the address could not be attributed
/// to a function, a note saying why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbolized {
    pub text: String,
    /// The function name alone (no offset), when the address is inside kernel text.
    pub function: Option<String>,
    pub note: Option<String>,
}

#[derive(Debug, Clone)]
struct TextSymbol {
    addr: u64,
    name: String,
    /// Lower ranks win when several symbols share an address (global before local,
    /// strong before weak), so that `rzg2l_adc_pm_runtime_suspend` beats an alias.
    rank: u8,
}

/// Text symbols of one kernel build, sorted by address.
#[derive(Debug, Clone, Default)]
pub struct SymbolMap {
    symbols: Vec<TextSymbol>,
    /// `_etext`: the first address past kernel text. Without it the last symbol's range is
    /// open-ended.
    text_end: Option<u64>,
    /// `_sinittext`..`_einittext`: init text, after `_etext`, freed once boot is done.
    init_text: Option<(u64, u64)>,
}

impl SymbolMap {
    pub fn load(path: &Path) -> Result<SymbolMap> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the kernel symbol map {}", path.display()))?;
        let map = SymbolMap::parse(&text);
        if map.is_empty() {
            anyhow::bail!(
                "{} holds no text symbols (expected `ADDR T NAME` lines)",
                path.display()
            );
        }
        Ok(map)
    }

    /// Parses `System.map` text. Lines that do not look like `ADDR TYPE NAME` are skipped:
    /// the file is produced by `nm`, so there is nothing useful to report about them.
    pub fn parse(text: &str) -> SymbolMap {
        let mut symbols = Vec::new();
        let mut text_end = None;
        let (mut init_start, mut init_end) = (None, None);
        for line in text.lines() {
            let mut fields = line.split_whitespace();
            let (Some(addr), Some(kind), Some(name)) =
                (fields.next(), fields.next(), fields.next())
            else {
                continue;
            };
            let Ok(addr) = u64::from_str_radix(addr, 16) else {
                continue;
            };
            match name {
                "_etext" => text_end = Some(addr),
                "_sinittext" => init_start = Some(addr),
                "_einittext" => init_end = Some(addr),
                _ => {}
            }
            let rank = match kind {
                "T" => 0,
                "t" => 1,
                "W" => 2,
                "w" => 3,
                _ => continue,
            };
            symbols.push(TextSymbol {
                addr,
                name: name.to_string(),
                rank,
            });
        }
        symbols.sort_by(|a, b| a.addr.cmp(&b.addr).then(a.rank.cmp(&b.rank)));
        // Keep the best-ranked symbol per address; the others are aliases.
        symbols.dedup_by(|later, earlier| later.addr == earlier.addr);
        let init_text = init_start.zip(init_end).filter(|(start, end)| start < end);
        SymbolMap {
            symbols,
            text_end,
            init_text,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.symbols.is_empty()
    }

    /// Symbolizes an exact address (a faulting pc).
    pub fn symbolize(&self, addr: u64) -> Symbolized {
        self.lookup(addr, addr)
    }

    /// Symbolizes a return address (a call-chain frame). The symbol is that of `addr - 1`,
    /// the call instruction's last byte, because a call that ends a function (a call to a
    /// `noreturn` function) returns to the first byte of the *next* function; the offset
    /// stays relative to `addr` itself, as the kernel's own backtraces print it.
    pub fn symbolize_return_address(&self, addr: u64) -> Symbolized {
        self.lookup(addr.saturating_sub(1), addr)
    }

    /// Symbolizes a call chain as the plugin records it: `frames[0]` is the link register
    /// at the access, then the return addresses of the frame records. The link register
    /// names the caller only when the faulting function is a leaf without a frame record;
    /// in a function that has made calls of its own it is a stale return into that same
    /// function (or repeats the first record), and is dropped.
    pub fn call_chain(&self, pc: u64, frames: &[u64]) -> Vec<Symbolized> {
        let pc_function = self.symbolize(pc).function;
        frames
            .iter()
            .enumerate()
            .filter(|&(i, &frame)| {
                i != 0
                    || (frames.get(1) != Some(&frame)
                        && (pc_function.is_none()
                            || self.symbolize_return_address(frame).function != pc_function))
            })
            .map(|(_, &frame)| self.symbolize_return_address(frame))
            .collect()
    }

    fn lookup(&self, lookup_addr: u64, shown_addr: u64) -> Symbolized {
        let outside = |why: String| Symbolized {
            text: format!("{shown_addr:#x}"),
            function: None,
            note: Some(why),
        };
        let Some(first) = self.symbols.first() else {
            return outside(format!("{shown_addr:#x}: no symbol map"));
        };
        // Below a kernel in the upper half, bit 55 clear selects TTBR0: user space (a
        // test's own devmem, say).
        if lookup_addr < first.addr && lookup_addr & (1 << 55) == 0 && first.addr & (1 << 55) != 0 {
            return outside(format!("{shown_addr:#x} is a user-space (EL0) address"));
        }
        if lookup_addr < first.addr {
            return outside(format!(
                "{shown_addr:#x} is below the first text symbol ({} at {:#x})",
                first.name, first.addr
            ));
        }
        let in_init_text = self
            .init_text
            .is_some_and(|(start, end)| (start..end).contains(&lookup_addr));
        if let (Some(end), false) = (self.text_end, in_init_text) {
            if lookup_addr >= end {
                return outside(format!(
                    "{shown_addr:#x} is beyond _etext ({end:#x}): not kernel text"
                ));
            }
        }
        // The last symbol whose address is <= lookup_addr.
        let index = self.symbols.partition_point(|s| s.addr <= lookup_addr) - 1;
        let symbol = &self.symbols[index];
        Symbolized {
            text: format!("{}+{:#x}", symbol.name, shown_addr - symbol.addr),
            function: Some(symbol.name.clone()),
            note: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAP: &str = "\
ffff800080000000 t _head
ffff800080010000 T _stext
ffff800080010000 t __do_softirq_alias
ffff800080010100 T do_serror
ffff800080010200 t rzg2l_adc_pm_runtime_suspend
ffff800080010200 W weak_alias_same_address
ffff800080010280 T pm_generic_runtime_suspend
ffff800080010300 T _etext
ffff800080020000 D some_data
ffff800080020100 R __start_rodata
";

    #[test]
    fn user_space_addresses_are_named_as_such() {
        let map = SymbolMap::parse(MAP);
        let s = map.symbolize(0x0000_aaaa_c0de_0010);
        assert_eq!(s.function, None);
        assert_eq!(s.text, "0xaaaac0de0010");
        assert!(
            s.note.as_deref().unwrap().contains("user-space (EL0)"),
            "{s:?}"
        );
    }

    #[test]
    fn maps_to_nearest_symbol_at_or_below() {
        let map = SymbolMap::parse(MAP);
        let s = map.symbolize(0xffff800080010214);
        assert_eq!(s.text, "rzg2l_adc_pm_runtime_suspend+0x14");
        assert_eq!(s.function.as_deref(), Some("rzg2l_adc_pm_runtime_suspend"));
        assert_eq!(s.note, None);
        assert_eq!(map.symbolize(0xffff800080010100).text, "do_serror+0x0");
    }

    #[test]
    fn global_wins_over_aliases_at_the_same_address() {
        let map = SymbolMap::parse(MAP);
        assert_eq!(map.symbolize(0xffff800080010004).text, "_stext+0x4");
        assert_eq!(
            map.symbolize(0xffff800080010200).text,
            "rzg2l_adc_pm_runtime_suspend+0x0"
        );
    }

    #[test]
    fn below_first_symbol_is_hex_with_a_note() {
        let map = SymbolMap::parse(MAP);
        let s = map.symbolize(0xffff7fff00000000);
        assert_eq!(s.text, "0xffff7fff00000000");
        assert_eq!(s.function, None);
        assert!(s.note.unwrap().contains("below the first text symbol"));
    }

    #[test]
    fn stale_link_register_is_dropped_from_call_chains() {
        let map = SymbolMap::parse(
            "ffff800080010000 T caller\nffff800080010100 T faulting\nffff800080010200 T leaf\n\
             ffff800080010300 T _etext\n",
        );
        let names = |chain: Vec<Symbolized>| chain.into_iter().map(|s| s.text).collect::<Vec<_>>();
        // Non-leaf: lr points back into the faulting function itself.
        assert_eq!(
            names(map.call_chain(
                0xffff800080010148,
                &[0xffff800080010138, 0xffff800080010044]
            )),
            ["caller+0x44"]
        );
        // lr repeats the first frame record.
        assert_eq!(
            names(map.call_chain(
                0xffff800080010148,
                &[0xffff800080010044, 0xffff800080010044]
            )),
            ["caller+0x44"]
        );
        // Leaf without a frame record: lr is the only witness of its caller.
        assert_eq!(
            names(map.call_chain(
                0xffff800080010208,
                &[0xffff800080010144, 0xffff800080010044]
            )),
            ["faulting+0x44", "caller+0x44"]
        );
    }

    #[test]
    fn init_text_is_kernel_text() {
        let map = SymbolMap::parse(
            "ffff800080010000 T _stext\nffff800080010300 T _etext\n\
             ffff8000803e0000 T _sinittext\nffff8000803fdb08 t rzg2l_cpg_probe\n\
             ffff800080405948 T _einittext\n",
        );
        assert_eq!(
            map.symbolize(0xffff8000803fdb10).text,
            "rzg2l_cpg_probe+0x8"
        );
        assert!(map.symbolize(0xffff800080405950).note.is_some());
        assert!(map.symbolize(0xffff800080100000).note.is_some());
    }

    #[test]
    fn beyond_etext_is_hex_with_a_note() {
        let map = SymbolMap::parse(MAP);
        let s = map.symbolize(0xffff800080010300);
        assert_eq!(s.text, "0xffff800080010300");
        assert!(s.note.unwrap().contains("beyond _etext"));
        // Data symbols never attract text addresses.
        let s = map.symbolize(0xffff800080020104);
        assert!(s.note.unwrap().contains("beyond _etext"));
    }

    #[test]
    fn return_address_at_function_end_belongs_to_the_caller() {
        let map = SymbolMap::parse(MAP);
        // A return address equal to the next function's start: the call was the last
        // instruction of rzg2l_adc_pm_runtime_suspend.
        let s = map.symbolize_return_address(0xffff800080010280);
        assert_eq!(s.text, "rzg2l_adc_pm_runtime_suspend+0x80");
        let s = map.symbolize_return_address(0xffff800080010288);
        assert_eq!(s.text, "pm_generic_runtime_suspend+0x8");
    }

    #[test]
    fn skips_garbage_and_non_text_lines() {
        let map = SymbolMap::parse("not a line\nzzzz T bad_addr\n0000000000001000 A absolute\n");
        assert!(map.is_empty());
        assert!(map
            .symbolize(0x1000)
            .note
            .unwrap()
            .contains("no symbol map"));
    }

    #[test]
    fn without_etext_the_last_symbol_is_open_ended() {
        let map = SymbolMap::parse("0000000000001000 T only\n");
        assert_eq!(map.symbolize(0x1234).text, "only+0x234");
    }
}
