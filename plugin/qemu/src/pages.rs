//! Kernel pages known not to be the window: a small per-vCPU cache that lets the memory
//! callback skip QEMU's hwaddr lookup for kernel addresses outside the linear map (the
//! kernel image's data, `vmemmap`, vmalloc'd stacks, module data), which would otherwise
//! cost three QEMU calls each.
//!
//! # Why it is sound
//!
//! An entry says "the upper-half (TTBR1, global) page at this virtual address translated to
//! a page that is not the window". That stays true until the kernel changes the page's
//! translation, and the kernel changes a valid translation only with break-before-make:
//! clear the entry, `TLBI`, `DSB`, then install the new one (arm64 `flush_tlb_kernel_range`,
//! `clear_fixmap`, the lazy vmalloc purge before a range is reused). An entry is only made
//! from an access that succeeded, so an invalid-to-valid change (which needs no TLBI) never
//! concerns one. Every `TLBI`, and every write of SCTLR_EL1, TTBRx_EL1 or TCR_EL1, starts a
//! new *generation*, and so does the first `DSB` or `ISB` after one on the same vCPU (a
//! TLBI takes effect at the DSB; a lookup that raced with it is tagged with the older
//! generation). Entries of an older generation are never used, on any vCPU. Upper-half
//! entries only: user (TTBR0) translations are per address space.
//!
//! The instructions are recognised at translation
//! ([`rzgate_arm64::filter::changes_translation`],
//! [`rzgate_arm64::filter::synchronizes_context`]) in every block, including user blocks that
//! get no memory callbacks, and the kernel's idmap code.
//!
//! Lock-free: each vCPU touches only its own entries (QEMU runs a vCPU's callbacks on its
//! thread); the generation is shared. Relaxed atomics compile to plain moves on x86-64.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Entries per vCPU (direct-mapped, by page number).
const ENTRIES: usize = 256;
const PAGE_SHIFT: u32 = 12;
/// An empty slot: no upper-half page number is 0.
const EMPTY: u64 = 0;

pub struct KernelPages {
    generation: AtomicU64,
    vcpus: Vec<VcpuPages>,
}

struct VcpuPages {
    /// The generation the entries belong to.
    generation: AtomicU64,
    /// A translation-changing instruction ran on this vCPU and no DSB/ISB since.
    pending: AtomicBool,
    pages: [AtomicU64; ENTRIES],
}

impl VcpuPages {
    fn new() -> VcpuPages {
        VcpuPages {
            generation: AtomicU64::new(0),
            pending: AtomicBool::new(false),
            pages: std::array::from_fn(|_| AtomicU64::new(EMPTY)),
        }
    }
}

fn slot(page: u64) -> usize {
    ((page ^ (page >> 8)) as usize) % ENTRIES
}

impl KernelPages {
    /// A cache for vCPUs `0..vcpus`; others always miss.
    pub fn new(vcpus: usize) -> KernelPages {
        KernelPages {
            generation: AtomicU64::new(0),
            vcpus: (0..vcpus).map(|_| VcpuPages::new()).collect(),
        }
    }

    /// Read before a lookup whose result may be remembered.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Hot path: is the upper-half page of `vaddr` known not to be the window?
    #[inline]
    pub fn holds(&self, vcpu: usize, vaddr: u64) -> bool {
        let Some(pages) = self.vcpus.get(vcpu) else {
            return false;
        };
        let page = vaddr >> PAGE_SHIFT;
        pages.generation.load(Ordering::Relaxed) == self.generation()
            && pages.pages[slot(page)].load(Ordering::Relaxed) == page
    }

    /// The upper-half page of `vaddr` translated outside the window in a lookup made when the
    /// generation was `generation`. Dropped if the generation has moved on since.
    pub fn remember(&self, vcpu: usize, vaddr: u64, generation: u64) {
        let Some(pages) = self.vcpus.get(vcpu) else {
            return;
        };
        if generation != self.generation() {
            return;
        }
        if pages.generation.load(Ordering::Relaxed) != generation {
            for entry in &pages.pages {
                entry.store(EMPTY, Ordering::Relaxed);
            }
            pages.generation.store(generation, Ordering::Relaxed);
        }
        let page = vaddr >> PAGE_SHIFT;
        pages.pages[slot(page)].store(page, Ordering::Relaxed);
    }

    /// `vcpu` is about to run a TLBI or write a translation register.
    pub fn translation_changes(&self, vcpu: usize) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        if let Some(pages) = self.vcpus.get(vcpu) {
            pages.pending.store(true, Ordering::Relaxed);
        }
    }

    /// `vcpu` is about to run a DSB or ISB: the change it made before takes effect there.
    #[inline]
    pub fn synchronizes(&self, vcpu: usize) {
        if let Some(pages) = self.vcpus.get(vcpu) {
            if pages.pending.swap(false, Ordering::Relaxed) {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIMAGE_DATA: u64 = 0xffff_8000_8050_1234;
    const VMEMMAP: u64 = 0xffff_c1ff_c000_0040;

    #[test]
    fn a_remembered_page_is_held_for_every_address_in_it() {
        let pages = KernelPages::new(2);
        assert!(!pages.holds(0, KIMAGE_DATA));
        pages.remember(0, KIMAGE_DATA, pages.generation());
        assert!(pages.holds(0, KIMAGE_DATA));
        assert!(pages.holds(0, KIMAGE_DATA & !0xfff));
        assert!(pages.holds(0, KIMAGE_DATA | 0xfff));
        assert!(!pages.holds(0, KIMAGE_DATA + 0x1000));
        // Per vCPU.
        assert!(!pages.holds(1, KIMAGE_DATA));
    }

    #[test]
    fn a_translation_change_forgets_every_vcpu_s_pages() {
        let pages = KernelPages::new(2);
        pages.remember(0, KIMAGE_DATA, pages.generation());
        pages.remember(1, VMEMMAP, pages.generation());
        pages.translation_changes(1);
        assert!(!pages.holds(0, KIMAGE_DATA));
        assert!(!pages.holds(1, VMEMMAP));
    }

    #[test]
    fn the_barrier_after_a_change_forgets_lookups_made_in_between() {
        let pages = KernelPages::new(1);
        pages.translation_changes(0);
        // A lookup between the TLBI and its DSB may still have used the old translation.
        let during = pages.generation();
        pages.remember(0, KIMAGE_DATA, during);
        assert!(pages.holds(0, KIMAGE_DATA));
        pages.synchronizes(0);
        assert!(!pages.holds(0, KIMAGE_DATA));
        // A barrier with no change pending keeps the pages.
        pages.remember(0, KIMAGE_DATA, pages.generation());
        pages.synchronizes(0);
        assert!(pages.holds(0, KIMAGE_DATA));
    }

    #[test]
    fn a_lookup_older_than_the_generation_is_not_remembered() {
        let pages = KernelPages::new(1);
        let before = pages.generation();
        pages.translation_changes(0);
        pages.remember(0, KIMAGE_DATA, before);
        assert!(!pages.holds(0, KIMAGE_DATA));
    }

    #[test]
    fn pages_sharing_a_slot_replace_each_other() {
        let pages = KernelPages::new(1);
        let page = KIMAGE_DATA >> PAGE_SHIFT;
        let other_page = (page + 1..)
            .find(|&p| slot(p) == slot(page))
            .expect("another page in the slot");
        let other = other_page << PAGE_SHIFT;
        pages.remember(0, KIMAGE_DATA, pages.generation());
        pages.remember(0, other, pages.generation());
        assert!(pages.holds(0, other) && !pages.holds(0, KIMAGE_DATA));
    }

    #[test]
    fn unknown_vcpus_always_miss() {
        let pages = KernelPages::new(1);
        pages.remember(5, KIMAGE_DATA, pages.generation());
        assert!(!pages.holds(5, KIMAGE_DATA));
        pages.translation_changes(5);
        pages.synchronizes(5);
    }
}
