//! Symbolization of guest kernel addresses from the booted kernel's `System.map`.
//!
//! `System.map` lines are `ADDR TYPE NAME` (`ffff800080010000 T _stext`). Only text symbols
//! (types `T`, `t`, `W`, `w`) are used: the plugin reports program counters and return
//! addresses, which always point into kernel text. KASLR is off in our kernels, so the
//! addresses the plugin sees map straight onto the file.
//!
//! An address maps to `name+0xoff` of the nearest text symbol at or below it. Addresses
//! below the first text symbol or at/after `_etext` are not in the kernel image's text:
//! they are printed as plain hex with a note saying why, never attributed to the
//! nearest (and wrong) function.

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
            if name == "_etext" {
                text_end = Some(addr);
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
        SymbolMap { symbols, text_end }
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

    fn lookup(&self, lookup_addr: u64, shown_addr: u64) -> Symbolized {
        let outside = |why: String| Symbolized {
            text: format!("{shown_addr:#x}"),
            function: None,
            note: Some(why),
        };
        let Some(first) = self.symbols.first() else {
            return outside(format!("{shown_addr:#x}: no symbol map"));
        };
        if lookup_addr < first.addr {
            return outside(format!(
                "{shown_addr:#x} is below the first text symbol ({} at {:#x})",
                first.name, first.addr
            ));
        }
        if let Some(end) = self.text_end {
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
