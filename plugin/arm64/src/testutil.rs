//! Helpers of the unit tests that plan diverts: guest code as instruction words at addresses.

use std::collections::BTreeMap;

/// `bl target` at `at`.
pub fn bl(at: u64, target: u64) -> u32 {
    let words = (target.wrapping_sub(at) as i64 / 4) as u32 & 0x03ff_ffff;
    0x9400_0000 | words
}

/// Reads guest-virtual memory from `code` (every other word is zero).
pub fn reader(code: &BTreeMap<u64, u32>) -> impl FnMut(u64, usize) -> Option<Vec<u8>> + '_ {
    move |addr, len| {
        Some(
            (0..len as u64 / 4)
                .flat_map(|i| {
                    code.get(&(addr + 4 * i))
                        .copied()
                        .unwrap_or(0)
                        .to_le_bytes()
                })
                .collect(),
        )
    }
}

/// The little-endian u64 at `offset` of `bytes`.
pub fn u64_at(bytes: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(bytes[offset..offset + 8].try_into().unwrap())
}
