//! The guest call chain of an abort: a walk over aarch64 frame records.
//!
//! AAPCS64 code built with frame pointers (the arm64 kernel always is) keeps a linked list of
//! 16-byte *frame records* on the stack: x29 (fp) points at the current record, whose first
//! word is the caller's fp and whose second word is the return address into the caller. The
//! walk here is pure: it reads records through a closure, so it is tested on recorded stacks
//! and the plugin's FFI module only supplies the closure (qemu_plugin_read_memory_vaddr) and
//! the registers.
//!
//! What `frames` holds, innermost first:
//! - `frames[0]` is x30 (lr) at the faulting access. The faulting function may be a leaf
//!   that never stored a frame record, and then lr is the only trace of its caller. In a
//!   non-leaf function lr is either the same return address as the first record holds
//!   (dropped, so that the report does not show a fake recursion) or, after the function
//!   made a call of its own, an address inside the faulting function itself.
//! - then the return address of each record, following fp.
//!
//! Why the walk stops, as the event's `unwind` field says it:
//! - `end`: fp is 0, or the record is the all-zero terminal record that Linux places at the
//!   base of every task stack.
//! - `bad-frame`: fp is not 8-byte aligned (the kernel's own unwinder demands that much),
//!   the record cannot be read, or the next fp does not lie above the current one (stacks grow
//!   down, so callers' records sit higher; this also catches loops). A switch from the IRQ
//!   stack to the task stack can legitimately go down and also ends as `bad-frame`: the
//!   frames up to the switch are kept.
//! - `depth-limit`: [`MAX_FRAMES`] frames were collected and records remain.
//! - `not-captured`: the registers could not be read (no walk was made at all).

/// At most this many return addresses, lr included.
pub const MAX_FRAMES: usize = 32;

/// Why the walk ended; [`UnwindStop::as_str`] is the event's `unwind` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwindStop {
    End,
    BadFrame,
    DepthLimit,
    NotCaptured,
}

impl UnwindStop {
    pub fn as_str(self) -> &'static str {
        match self {
            UnwindStop::End => "end",
            UnwindStop::BadFrame => "bad-frame",
            UnwindStop::DepthLimit => "depth-limit",
            UnwindStop::NotCaptured => "not-captured",
        }
    }
}

/// Return addresses, innermost first, and why the walk stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallChain {
    pub frames: Vec<u64>,
    pub stop: UnwindStop,
}

impl CallChain {
    /// The chain of an abort whose registers could not be read.
    pub fn not_captured() -> CallChain {
        CallChain {
            frames: Vec::new(),
            stop: UnwindStop::NotCaptured,
        }
    }
}

/// One frame record: `[fp] = caller's fp`, `[fp + 8] = return address`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameRecord {
    pub next_fp: u64,
    pub return_address: u64,
}

/// Walks the frame records starting at `fp`, with `lr` as the first frame.
/// `read_record(addr)` returns the 16-byte record at guest-virtual `addr`, or `None` when the
/// address cannot be read.
pub fn walk_frame_records(
    lr: u64,
    fp: u64,
    mut read_record: impl FnMut(u64) -> Option<FrameRecord>,
) -> CallChain {
    let mut frames = Vec::with_capacity(MAX_FRAMES);
    frames.push(lr);
    let mut fp = fp;
    let mut first_record = true;
    let stop = loop {
        if fp == 0 {
            break UnwindStop::End;
        }
        if !fp.is_multiple_of(8) {
            break UnwindStop::BadFrame;
        }
        if frames.len() >= MAX_FRAMES {
            break UnwindStop::DepthLimit;
        }
        let Some(record) = read_record(fp) else {
            break UnwindStop::BadFrame;
        };
        if record.next_fp == 0 && record.return_address == 0 {
            break UnwindStop::End;
        }
        let repeats_lr = first_record && record.return_address == lr;
        if !repeats_lr {
            frames.push(record.return_address);
        }
        first_record = false;
        if record.next_fp != 0 && record.next_fp <= fp {
            break UnwindStop::BadFrame;
        }
        fp = record.next_fp;
    };
    CallChain { frames, stop }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A recorded stack: frame records by address.
    fn stack(records: &[(u64, u64, u64)]) -> HashMap<u64, FrameRecord> {
        records
            .iter()
            .map(|&(at, next_fp, return_address)| {
                (
                    at,
                    FrameRecord {
                        next_fp,
                        return_address,
                    },
                )
            })
            .collect()
    }

    fn walk(lr: u64, fp: u64, records: &HashMap<u64, FrameRecord>) -> CallChain {
        walk_frame_records(lr, fp, |addr| records.get(&addr).copied())
    }

    #[test]
    fn leaf_function_lr_then_every_record_until_the_terminal_record() {
        // The faulting function is a leaf: fp still is its caller's record.
        let records = stack(&[
            (
                0xffff_8000_8200_3d80,
                0xffff_8000_8200_3dc0,
                0xffff_8000_8055_1234,
            ),
            (
                0xffff_8000_8200_3dc0,
                0xffff_8000_8200_3e40,
                0xffff_8000_8055_2000,
            ),
            (
                0xffff_8000_8200_3e40,
                0xffff_8000_8200_3f00,
                0xffff_8000_8001_0040,
            ),
            (0xffff_8000_8200_3f00, 0, 0), // Linux's terminal record in pt_regs
        ]);
        let chain = walk(0xffff_8000_8077_0010, 0xffff_8000_8200_3d80, &records);
        assert_eq!(
            chain.frames,
            vec![
                0xffff_8000_8077_0010,
                0xffff_8000_8055_1234,
                0xffff_8000_8055_2000,
                0xffff_8000_8001_0040
            ]
        );
        assert_eq!(chain.stop, UnwindStop::End);
        assert_eq!(chain.stop.as_str(), "end");
    }

    #[test]
    fn next_fp_zero_ends_the_walk_after_keeping_that_return_address() {
        let records = stack(&[(0x1000, 0, 0x4000_0100)]);
        let chain = walk(0x4000_0200, 0x1000, &records);
        assert_eq!(chain.frames, vec![0x4000_0200, 0x4000_0100]);
        assert_eq!(chain.stop, UnwindStop::End);
    }

    #[test]
    fn fp_zero_gives_lr_alone() {
        let chain = walk(0x4000_0200, 0, &HashMap::new());
        assert_eq!(chain.frames, vec![0x4000_0200]);
        assert_eq!(chain.stop, UnwindStop::End);
    }

    #[test]
    fn lr_equal_to_the_first_return_address_is_not_repeated() {
        // Non-leaf function after its prologue: x30 is still what it saved in its record.
        let records = stack(&[(0x1000, 0x1040, 0x4000_0100), (0x1040, 0, 0x4000_0300)]);
        let chain = walk(0x4000_0100, 0x1000, &records);
        assert_eq!(chain.frames, vec![0x4000_0100, 0x4000_0300]);
        assert_eq!(chain.stop, UnwindStop::End);
    }

    #[test]
    fn corrupt_record_pointing_down_the_stack_is_a_bad_frame() {
        let records = stack(&[
            (0x2000, 0x2040, 0x4000_0100),
            (0x2040, 0x1ff0, 0x4000_0200), // corrupt: the caller's record cannot be below
        ]);
        let chain = walk(0x4000_0000, 0x2000, &records);
        assert_eq!(chain.frames, vec![0x4000_0000, 0x4000_0100, 0x4000_0200]);
        assert_eq!(chain.stop, UnwindStop::BadFrame);
        assert_eq!(chain.stop.as_str(), "bad-frame");
    }

    #[test]
    fn misaligned_fp_is_a_bad_frame() {
        let records = stack(&[(0x2000, 0x2043, 0x4000_0100)]);
        let chain = walk(0x4000_0000, 0x2000, &records);
        assert_eq!(chain.frames, vec![0x4000_0000, 0x4000_0100]);
        assert_eq!(chain.stop, UnwindStop::BadFrame);
        assert_eq!(walk(1, 0x2004, &records).stop, UnwindStop::BadFrame);
    }

    #[test]
    fn record_pointing_at_itself_is_a_loop_and_a_bad_frame() {
        let records = stack(&[(0x3000, 0x3010, 0x10), (0x3010, 0x3000, 0x20)]);
        let chain = walk(0x5, 0x3000, &records);
        assert_eq!(chain.frames, vec![0x5, 0x10, 0x20]);
        assert_eq!(chain.stop, UnwindStop::BadFrame);

        let self_loop = stack(&[(0x3000, 0x3000, 0x10)]);
        let chain = walk(0x5, 0x3000, &self_loop);
        assert_eq!(chain.frames, vec![0x5, 0x10]);
        assert_eq!(chain.stop, UnwindStop::BadFrame);
    }

    #[test]
    fn unreadable_record_is_a_bad_frame_and_keeps_what_was_read() {
        let records = stack(&[(0x2000, 0xdead_0000, 0x4000_0100)]);
        let chain = walk(0x4000_0000, 0x2000, &records);
        assert_eq!(chain.frames, vec![0x4000_0000, 0x4000_0100]);
        assert_eq!(chain.stop, UnwindStop::BadFrame);
    }

    #[test]
    fn long_chain_stops_at_the_depth_limit() {
        let records: HashMap<u64, FrameRecord> = (0..100u64)
            .map(|i| {
                (
                    0x10_0000 + i * 0x40,
                    FrameRecord {
                        next_fp: 0x10_0000 + (i + 1) * 0x40,
                        return_address: 0x4000_0000 + i * 4,
                    },
                )
            })
            .collect();
        let chain = walk(0x1, 0x10_0000, &records);
        assert_eq!(chain.frames.len(), MAX_FRAMES);
        assert_eq!(chain.frames[0], 0x1);
        assert_eq!(chain.frames[MAX_FRAMES - 1], 0x4000_0000 + 30 * 4);
        assert_eq!(chain.stop, UnwindStop::DepthLimit);
        assert_eq!(chain.stop.as_str(), "depth-limit");
    }

    #[test]
    fn chain_of_exactly_the_limit_that_ends_is_an_end() {
        let mut recorded: Vec<(u64, u64, u64)> = (0..31u64)
            .map(|i| (0x1000 + i * 0x20, 0x1000 + (i + 1) * 0x20, 0x100 + i))
            .collect();
        recorded.last_mut().unwrap().1 = 0;
        let chain = walk(0x1, 0x1000, &stack(&recorded));
        assert_eq!(chain.frames.len(), MAX_FRAMES);
        assert_eq!(chain.stop, UnwindStop::End);
    }

    #[test]
    fn not_captured_has_no_frames() {
        let chain = CallChain::not_captured();
        assert!(chain.frames.is_empty());
        assert_eq!(chain.stop.as_str(), "not-captured");
    }
}
