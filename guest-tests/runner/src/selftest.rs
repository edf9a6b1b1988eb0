//! What the kernel's DT selftest needs from its 15,000-line `compatible_list`, worked out
//! on the host once per run instead of in every guest.
//!
//! `test_unprobed_devices.sh` runs `grep -x -q "$word" compatible_list` for every word of
//! every compatible of every unbound node: about 0.15 s a grep under TCG. The guest runs it
//! on a copy of the list that keeps only the lines those greps can match (lib.sh,
//! `dt_selftest_copy`); every grep then gives the answer the full list gives. Working that
//! copy out in the guest took 0.8 s of forks and greps per selftest; here it is a string
//! comparison, and the guest reads the result from `/chosen` (the property
//! [`CHOSEN_PROPERTY`]; the selftest only looks at nodes with a `compatible`).
//!
//! The script's match is a POSIX basic regular expression over the whole line, on a word
//! of the shell's unquoted expansion. Only the two things compatibles contain are modelled
//! here: literal characters and `.` (any one character, as in `arm,psci-1.0`). A word with
//! anything else the shell or the regex would interpret ([`UNMODELLED`], or a leading `-`
//! that grep would take for an option) makes the answer "not worked out": the property is
//! left out and the guest falls back to reducing the list itself, with grep.

/// The `/chosen` property the guest's `dt_selftest_copy` reads: the kept lines, as a
/// string list (NUL-separated in the DTB).
pub const CHOSEN_PROPERTY: &str = "rzgate,dt-selftest-compatibles";

/// Where the selftest's list sits in the initramfs that ci/initramfs.sh packs.
const LIST_IN_INITRAMFS: &str = "selftests/dt/compatible_list";

/// Characters a glob or a basic regular expression gives a meaning: not modelled.
const UNMODELLED: &[char] = &['[', ']', '*', '?', '^', '$', '\\'];

/// The selftest's `compatible_list` from an uncompressed `newc` initramfs, or `None` when
/// the archive is another format or does not carry it (the guest then reduces the list
/// itself). Only the archive's headers are walked.
pub fn compatible_list_from_initramfs(archive: &[u8]) -> Option<String> {
    const MAGIC: &[u8] = b"070701";
    const HEADER_LEN: usize = 110;
    let field = |header: &[u8], index: usize| -> Option<usize> {
        let hex = header.get(6 + 8 * index..14 + 8 * index)?;
        usize::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let align4 = |n: usize| (n + 3) & !3;
    let mut at = 0;
    loop {
        let header = archive.get(at..at + HEADER_LEN)?;
        if !header.starts_with(MAGIC) {
            return None;
        }
        let (file_size, name_size) = (field(header, 6)?, field(header, 11)?);
        let name = archive.get(at + HEADER_LEN..at + HEADER_LEN + name_size.checked_sub(1)?)?;
        let data_at = align4(at + HEADER_LEN + name_size);
        let name = std::str::from_utf8(name).ok()?;
        if name == "TRAILER!!!" {
            return None;
        }
        if name.trim_start_matches("./") == LIST_IN_INITRAMFS {
            let data = archive.get(data_at..data_at + file_size)?;
            return String::from_utf8(data.to_vec()).ok();
        }
        at = align4(data_at + file_size);
    }
}

/// Every `compatible` string of a device tree source (one statement a line, as dtc
/// decompiles and as the SoC fragment is written).
pub fn dt_compatibles(dts: &str) -> Vec<String> {
    let mut all: Vec<String> = dts
        .lines()
        .filter_map(|line| line.trim().strip_prefix("compatible = "))
        .flat_map(|values| values.split('"').skip(1).step_by(2))
        .map(str::to_string)
        .collect();
    all.sort();
    all.dedup();
    all
}

/// The lines of `list` that the selftest's greps can match for these compatibles, in the
/// list's order; `None` when a word is outside what is modelled.
pub fn lines_for(list: &str, compatibles: &[String]) -> Option<Vec<String>> {
    let mut words = Vec::new();
    for compatible in compatibles {
        for word in compatible.split_ascii_whitespace() {
            if word.starts_with('-') || word.contains(UNMODELLED) {
                return None;
            }
            words.push(word.as_bytes());
        }
    }
    Some(
        list.lines()
            .filter(|line| {
                words
                    .iter()
                    .any(|word| whole_line_matches(word, line.as_bytes()))
            })
            .map(str::to_string)
            .collect(),
    )
}

/// `grep -x` of a pattern made of literal bytes and `.`.
fn whole_line_matches(pattern: &[u8], line: &[u8]) -> bool {
    pattern.len() == line.len() && pattern.iter().zip(line).all(|(p, l)| *p == b'.' || p == l)
}

/// The source block that puts the lines into `/chosen`, for appending to a tree.
pub fn chosen_fragment(lines: &[String]) -> String {
    let quoted: Vec<String> = lines
        .iter()
        .map(|line| format!("\"{}\"", line.replace('\\', "\\\\").replace('"', "\\\"")))
        .collect();
    let value = if quoted.is_empty() {
        String::new()
    } else {
        format!(" = {}", quoted.join(", "))
    };
    format!(
        "/* The lines of the DT selftest's compatible_list this tree can match */\n\
         / {{\n\tchosen {{\n\t\t{CHOSEN_PROPERTY}{value};\n\t}};\n}};\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "arm,pl011\narm,psci-1.0\narm,psci-0.2\narm,psci\nfixed-clock\n\
                        renesas,r9a08g045-adc\nrenesas,r9a08g045-cpg\nqcom,foo\n";

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn keeps_exactly_the_lines_a_whole_line_match_selects() {
        let kept = lines_for(
            LIST,
            &strings(&[
                "arm,pl011",
                "arm,primecell",
                "fixed-clock",
                "renesas,r9a08g045-adc",
            ]),
        )
        .unwrap();
        assert_eq!(
            kept,
            strings(&["arm,pl011", "fixed-clock", "renesas,r9a08g045-adc"])
        );
    }

    #[test]
    fn a_dot_matches_any_one_character_as_in_grep() {
        let list = "arm,psci-1.0\narm,psci-1x0\narm,psci-10\narm,psci-1.00\n";
        let kept = lines_for(list, &strings(&["arm,psci-1.0"])).unwrap();
        assert_eq!(kept, strings(&["arm,psci-1.0", "arm,psci-1x0"]));
    }

    #[test]
    fn a_compatible_with_a_space_is_matched_word_by_word_as_the_script_splits_it() {
        let kept = lines_for(LIST, &strings(&["arm,psci fixed-clock"])).unwrap();
        assert_eq!(kept, strings(&["arm,psci", "fixed-clock"]));
    }

    #[test]
    fn unmodelled_patterns_leave_the_reduction_to_the_guest() {
        for odd in [
            "arm,pl0*",
            "vendor,[ab]",
            "^arm",
            "a$",
            "x\\.y",
            "-v",
            "ar?",
        ] {
            assert_eq!(
                lines_for(LIST, &strings(&["arm,pl011", odd])),
                None,
                "{odd}"
            );
        }
    }

    #[test]
    fn no_matching_line_is_an_empty_list_not_a_failure() {
        assert_eq!(
            lines_for(LIST, &strings(&["linux,dummy-virt"])),
            Some(vec![])
        );
    }

    #[test]
    fn reads_every_compatible_string_of_a_decompiled_tree() {
        let dts = "/ {\n\tcompatible = \"linux,dummy-virt\";\n\tpl011@9000000 {\n\
                   \t\tcompatible = \"arm,pl011\", \"arm,primecell\";\n\t};\n\
                   \tpsci {\n\t\tcompatible = \"arm,psci-1.0\", \"arm,psci-0.2\", \"arm,psci\";\n\t};\n\
                   \tclock-names = \"compatible = \\\"x\\\"\";\n};\n";
        assert_eq!(
            dt_compatibles(dts),
            strings(&[
                "arm,pl011",
                "arm,primecell",
                "arm,psci",
                "arm,psci-0.2",
                "arm,psci-1.0",
                "linux,dummy-virt"
            ])
        );
    }

    #[test]
    fn the_chosen_block_quotes_and_escapes_and_allows_an_empty_list() {
        let block = chosen_fragment(&strings(&["a,b", "q\"x\\"]));
        assert!(block.contains("rzgate,dt-selftest-compatibles = \"a,b\", \"q\\\"x\\\\\";"));
        assert!(chosen_fragment(&[]).contains("\t\trzgate,dt-selftest-compatibles;\n"));
    }

    fn newc_entry(name: &str, data: &[u8]) -> Vec<u8> {
        let mut entry = format!(
            "070701{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}{:08x}",
            1,
            0o100644,
            0,
            0,
            1,
            0,
            data.len(),
            0,
            0,
            0,
            0,
            name.len() + 1,
            0
        )
        .into_bytes();
        entry.extend_from_slice(name.as_bytes());
        entry.push(0);
        while entry.len() % 4 != 0 {
            entry.push(0);
        }
        entry.extend_from_slice(data);
        while entry.len() % 4 != 0 {
            entry.push(0);
        }
        entry
    }

    #[test]
    fn finds_the_list_in_a_newc_archive() {
        let mut archive = newc_entry("./init", b"#!/bin/sh\n");
        archive.extend(newc_entry("./selftests/dt/compatible_list", b"a,b\nc\n"));
        archive.extend(newc_entry("TRAILER!!!", b""));
        assert_eq!(
            compatible_list_from_initramfs(&archive).as_deref(),
            Some("a,b\nc\n")
        );
    }

    #[test]
    fn another_format_or_a_missing_list_is_none() {
        let mut archive = newc_entry("./init", b"x");
        archive.extend(newc_entry("TRAILER!!!", b""));
        assert_eq!(compatible_list_from_initramfs(&archive), None);
        assert_eq!(compatible_list_from_initramfs(&[0x1f, 0x8b, 8, 0]), None);
        assert_eq!(compatible_list_from_initramfs(&archive[..50]), None);
    }
}
