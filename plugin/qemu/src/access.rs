//! Conversions between QEMU's view of memory and rzgate-core's, without QEMU: the value of one
//! guest access as the bus takes it, and the bytes of one model write as
//! `qemu_plugin_write_memory_hwaddr` takes them.

/// Size in bytes and value of a guest access of `1 << size_shift` bytes, as the bus takes it.
///
/// The value is masked to the size (the value QEMU reports for a sign-extending load is not
/// part of the bus contract). A 16-byte access (LDP/STP of two X registers, a Q register)
/// stays one access, so that one instruction makes at most one abort; its value is the low 8
/// bytes, as rzgate-core's `Access` asks (the bytes past 8 count as 0 in a write). Sizes QEMU
/// does not produce give `None`.
pub fn access_size_and_value(size_shift: u32, low: u64) -> Option<(u8, u64)> {
    match size_shift {
        0..=3 => {
            let size = 1u8 << size_shift;
            Some((size, low & size_mask(size)))
        }
        4 => Some((16, low)),
        _ => None,
    }
}

fn size_mask(size: u8) -> u64 {
    if size >= 8 {
        u64::MAX
    } else {
        (1u64 << (u32::from(size) * 8)) - 1
    }
}

/// The bytes of a little-endian store of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreBytes {
    bytes: [u8; 8],
    len: usize,
}

impl StoreBytes {
    /// `None` unless `size` is 1, 2, 4 or 8. Bits of `value` above `size` bytes are not
    /// stored.
    pub fn new(size: u8, value: u64) -> Option<StoreBytes> {
        match size {
            1 | 2 | 4 | 8 => Some(StoreBytes {
                bytes: value.to_le_bytes(),
                len: usize::from(size),
            }),
            _ => None,
        }
    }

    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_bytes_are_little_endian_and_sized() {
        assert_eq!(
            StoreBytes::new(4, 0x1122_3344).unwrap().as_slice(),
            &[0x44, 0x33, 0x22, 0x11]
        );
        assert_eq!(
            StoreBytes::new(2, 0xabcd).unwrap().as_slice(),
            &[0xcd, 0xab]
        );
        assert_eq!(StoreBytes::new(1, 0x7f).unwrap().as_slice(), &[0x7f]);
        assert_eq!(
            StoreBytes::new(8, 0x0102_0304_0506_0708)
                .unwrap()
                .as_slice(),
            &[8, 7, 6, 5, 4, 3, 2, 1]
        );
    }

    #[test]
    fn store_bytes_drop_bits_above_the_size() {
        assert_eq!(
            StoreBytes::new(2, 0xdead_beef).unwrap().as_slice(),
            &[0xef, 0xbe]
        );
    }

    #[test]
    fn store_bytes_refuse_odd_sizes() {
        for size in [0, 3, 5, 6, 7, 9, 16] {
            assert!(StoreBytes::new(size, 0).is_none(), "size {size}");
        }
    }

    #[test]
    fn access_value_is_masked_to_its_size() {
        assert_eq!(
            access_size_and_value(2, 0xffff_ffff_8001_0001),
            Some((4, 0x8001_0001))
        );
        assert_eq!(access_size_and_value(0, 0x1ff), Some((1, 0xff)));
        assert_eq!(access_size_and_value(1, 0x12_3456), Some((2, 0x3456)));
        assert_eq!(access_size_and_value(3, u64::MAX), Some((8, u64::MAX)));
    }

    #[test]
    fn sixteen_byte_access_is_one_access_with_the_low_half() {
        assert_eq!(access_size_and_value(4, 0x1111), Some((16, 0x1111)));
    }

    #[test]
    fn impossible_size_is_refused() {
        assert_eq!(access_size_and_value(5, 1), None);
    }
}
