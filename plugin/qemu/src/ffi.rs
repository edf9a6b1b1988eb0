//! The QEMU plugin API v7 boundary: the only `unsafe` of the project.
//!
//! The declarations are written from QEMU 11.1's `include/plugins/qemu-plugin.h` and checked
//! against the `qemu-system-aarch64` 11.1.3 binary this project runs (its dispatch code
//! calls a translation callback as `cb(tb, userdata)`, an atexit callback as `cb(userdata)`,
//! a vCPU callback as `cb(vcpu_index, userdata)`; a register descriptor is 32 bytes).
//!
//! This module is compiled out of unit-test builds (`#[cfg(not(test))]` in lib.rs): it names
//! `qemu_plugin_*` and glib symbols that only QEMU's process provides, which a test executable
//! cannot link. Calling them directly (instead of through function pointers looked up with
//! dlsym) keeps the hot path a plain call. What could be tested is not here: the decisions are
//! in `plugin.rs` behind the `Guest` trait, which [`QemuVcpu`] implements.
//!
//! Every callback body runs under [`guarded`]: a panic never unwinds into QEMU.

#![allow(non_camel_case_types)]

use crate::guard;
use crate::install::{check_target, plugin_arguments, InstallError};
use crate::pages::KernelPages;
use crate::plugin::{Guest, Plugin, Verdict};
use rzgate_arm64::filter;
use rzgate_arm64::serror::{CpuState, Register};
use rzgate_arm64::unwind::FrameRecord;
use rzgate_core::device::GuestMemory;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::panic::catch_unwind;
use std::sync::{Mutex, OnceLock};

// ---- qemu-plugin.h, API 7 -----------------------------------------------------------------

type qemu_plugin_id_t = u64;
type qemu_plugin_meminfo_t = u32;

/// `qemu_info_t`: the union holds only the `system` struct, laid out inline.
#[repr(C)]
pub struct qemu_info_t {
    target_name: *const c_char,
    version_min: c_int,
    version_cur: c_int,
    system_emulation: bool,
    smp_vcpus: c_int,
    max_vcpus: c_int,
}

#[repr(C)]
pub struct qemu_plugin_tb {
    _opaque: [u8; 0],
}
#[repr(C)]
struct qemu_plugin_insn {
    _opaque: [u8; 0],
}
#[repr(C)]
struct qemu_plugin_hwaddr {
    _opaque: [u8; 0],
}
#[repr(C)]
struct qemu_plugin_register {
    _opaque: [u8; 0],
}

/// `enum qemu_plugin_cb_flags`
const QEMU_PLUGIN_CB_NO_REGS: c_int = 0;
const QEMU_PLUGIN_CB_R_REGS: c_int = 1;
const QEMU_PLUGIN_CB_RW_REGS_PC: c_int = 3;
/// `enum qemu_plugin_mem_rw`
const QEMU_PLUGIN_MEM_R: c_int = 1;
const QEMU_PLUGIN_MEM_W: c_int = 2;
/// `enum qemu_plugin_hwaddr_operation_result`
const QEMU_PLUGIN_HWADDR_OPERATION_OK: c_int = 0;
/// `enum qemu_plugin_mem_value_type`
const QEMU_PLUGIN_MEM_VALUE_U8: c_int = 0;
const QEMU_PLUGIN_MEM_VALUE_U16: c_int = 1;
const QEMU_PLUGIN_MEM_VALUE_U32: c_int = 2;
const QEMU_PLUGIN_MEM_VALUE_U64: c_int = 3;
const QEMU_PLUGIN_MEM_VALUE_U128: c_int = 4;

/// Memory callbacks read registers (x29, x30) when they report an abort or a gate change:
/// R_REGS. Under `on_abort=serror` they also write registers and set the PC, and
/// `qemu_plugin_set_pc` asserts (SIGABRT) unless the running callback was registered with
/// RW_REGS_PC; only that policy pays for it.
fn memory_callback_flags(plugin: &Plugin) -> c_int {
    if plugin.diverts() {
        QEMU_PLUGIN_CB_RW_REGS_PC
    } else {
        QEMU_PLUGIN_CB_R_REGS
    }
}

/// `qemu_plugin_mem_value`: 24 bytes, returned through a hidden pointer.
#[repr(C)]
struct qemu_plugin_mem_value {
    kind: c_int,
    data: MemValueData,
}

#[repr(C)]
#[derive(Clone, Copy)]
union MemValueData {
    u8_: u8,
    u16_: u16,
    u32_: u32,
    u64_: u64,
    u128_: U128,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct U128 {
    low: u64,
    high: u64,
}

/// `qemu_plugin_reg_descriptor` (API 7 added `is_readonly`: 32 bytes).
#[repr(C)]
struct qemu_plugin_reg_descriptor {
    handle: *mut qemu_plugin_register,
    name: *const c_char,
    feature: *const c_char,
    is_readonly: bool,
}

const _: () = assert!(std::mem::size_of::<qemu_plugin_reg_descriptor>() == 32);
const _: () = assert!(std::mem::size_of::<qemu_plugin_mem_value>() == 24);
const _: () = assert!(std::mem::size_of::<qemu_info_t>() == 32);

/// glib's `GByteArray` and `GArray` (public fields only; always allocated by glib).
#[repr(C)]
struct GByteArray {
    data: *mut u8,
    len: c_uint,
}
#[repr(C)]
struct GArray {
    data: *mut c_char,
    len: c_uint,
}

type VcpuInitCallback = extern "C" fn(vcpu_index: c_uint, userdata: *mut c_void);
type TranslationCallback = extern "C" fn(tb: *mut qemu_plugin_tb, userdata: *mut c_void);
type MemoryCallback = extern "C" fn(
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    userdata: *mut c_void,
);
type ExitCallback = extern "C" fn(userdata: *mut c_void);
type InsnCallback = extern "C" fn(vcpu_index: c_uint, userdata: *mut c_void);
type ResetCallback = extern "C" fn(id: qemu_plugin_id_t);
type VcpuSimpleCallback = extern "C" fn(id: qemu_plugin_id_t, vcpu_index: c_uint);

// Resolved at dlopen time from QEMU's executable and the glib it links.
extern "C" {
    fn qemu_plugin_register_vcpu_init_cb(
        id: qemu_plugin_id_t,
        cb: VcpuInitCallback,
        userdata: *mut c_void,
    );
    fn qemu_plugin_register_vcpu_tb_trans_cb(
        id: qemu_plugin_id_t,
        cb: TranslationCallback,
        userdata: *mut c_void,
    );
    fn qemu_plugin_register_vcpu_idle_cb(id: qemu_plugin_id_t, cb: VcpuSimpleCallback);
    fn qemu_plugin_register_vcpu_resume_cb(id: qemu_plugin_id_t, cb: VcpuSimpleCallback);
    fn qemu_plugin_register_atexit_cb(
        id: qemu_plugin_id_t,
        cb: ExitCallback,
        userdata: *mut c_void,
    );
    fn qemu_plugin_register_vcpu_mem_cb(
        insn: *mut qemu_plugin_insn,
        cb: MemoryCallback,
        flags: c_int,
        rw: c_int,
        userdata: *mut c_void,
    );
    /// Unregisters every callback of the plugin and flushes the translated code, in a safe
    /// context (all vCPUs out of guest code) at the next block boundary; then calls `cb`.
    fn qemu_plugin_reset(id: qemu_plugin_id_t, cb: ResetCallback);
    fn qemu_plugin_tb_vaddr(tb: *const qemu_plugin_tb) -> u64;
    fn qemu_plugin_register_vcpu_insn_exec_cb(
        insn: *mut qemu_plugin_insn,
        cb: InsnCallback,
        flags: c_int,
        userdata: *mut c_void,
    );
    fn qemu_plugin_tb_n_insns(tb: *const qemu_plugin_tb) -> usize;
    fn qemu_plugin_tb_get_insn(tb: *const qemu_plugin_tb, idx: usize) -> *mut qemu_plugin_insn;
    fn qemu_plugin_insn_vaddr(insn: *const qemu_plugin_insn) -> u64;
    fn qemu_plugin_insn_data(insn: *const qemu_plugin_insn, dest: *mut c_void, len: usize)
        -> usize;
    fn qemu_plugin_mem_size_shift(info: qemu_plugin_meminfo_t) -> c_uint;
    fn qemu_plugin_mem_is_store(info: qemu_plugin_meminfo_t) -> bool;
    fn qemu_plugin_mem_get_value(info: qemu_plugin_meminfo_t) -> qemu_plugin_mem_value;
    fn qemu_plugin_get_hwaddr(info: qemu_plugin_meminfo_t, vaddr: u64) -> *mut qemu_plugin_hwaddr;
    fn qemu_plugin_hwaddr_is_io(haddr: *const qemu_plugin_hwaddr) -> bool;
    fn qemu_plugin_hwaddr_phys_addr(haddr: *const qemu_plugin_hwaddr) -> u64;
    fn qemu_plugin_get_registers() -> *mut GArray;
    fn qemu_plugin_read_register(handle: *mut qemu_plugin_register, buf: *mut GByteArray) -> bool;
    fn qemu_plugin_write_register(handle: *mut qemu_plugin_register, buf: *mut GByteArray) -> bool;
    fn qemu_plugin_read_memory_vaddr(addr: u64, data: *mut GByteArray, len: usize) -> bool;
    fn qemu_plugin_write_memory_vaddr(addr: u64, data: *mut GByteArray) -> bool;
    /// Sets the current vCPU's PC and leaves the running block: it longjmps back into QEMU's
    /// CPU loop and never returns to the caller.
    fn qemu_plugin_set_pc(vaddr: u64) -> !;
    fn qemu_plugin_write_memory_hwaddr(addr: u64, data: *mut GByteArray) -> c_int;
    /// Resizes `data` to `len` and fills it from guest-physical `addr` (RAM or MMIO).
    fn qemu_plugin_read_memory_hwaddr(addr: u64, data: *mut GByteArray, len: usize) -> c_int;
    fn qemu_plugin_outs(string: *const c_char);

    fn g_byte_array_new() -> *mut GByteArray;
    fn g_byte_array_set_size(array: *mut GByteArray, length: c_uint) -> *mut GByteArray;
    fn g_byte_array_free(array: *mut GByteArray, free_segment: c_int) -> *mut u8;
    fn g_array_free(array: *mut GArray, free_segment: c_int) -> *mut c_char;
}

/// The plugin API version this plugin is written for; QEMU 11.1 accepts exactly 7.
#[no_mangle]
#[allow(non_upper_case_globals)]
pub static qemu_plugin_version: c_int = 7;

static PLUGIN: OnceLock<Plugin> = OnceLock::new();
/// For `qemu_plugin_reset`.
static PLUGIN_ID: OnceLock<qemu_plugin_id_t> = OnceLock::new();
/// Kernel pages known not to be the window ([`crate::pages`]), per vCPU.
static PAGES: OnceLock<KernelPages> = OnceLock::new();
/// More vCPUs than this share no cache (they always look up).
const MAX_CACHED_VCPUS: usize = 256;

/// Per vCPU (by index): the register handles an abort reads (and `serror` writes). Taken at
/// vCPU init, used only on aborts and gate changes, so a plain mutex is enough.
static REGISTERS: Mutex<Vec<Option<RegisterHandles>>> = Mutex::new(Vec::new());

/// Handles are opaque pointers, kept as integers so that they are `Send`.
#[derive(Clone, Copy)]
struct RegisterHandles {
    /// x0-x30.
    x: [usize; 31],
    sp: usize,
    /// 4 bytes on aarch64.
    cpsr: usize,
    /// VBAR_EL1, when QEMU lists the system registers.
    vbar: Option<usize>,
}

// ---- install -------------------------------------------------------------------------------

/// Called once by QEMU when it loads the plugin; non-zero makes QEMU refuse it and exit.
///
/// # Safety
/// QEMU passes a valid `info` for the duration of the call and `argc` valid C strings.
#[no_mangle]
pub unsafe extern "C" fn qemu_plugin_install(
    id: qemu_plugin_id_t,
    info: *const qemu_info_t,
    argc: c_int,
    argv: *const *const c_char,
) -> c_int {
    guard::install_panic_hook();
    // SAFETY: as promised by QEMU, see above.
    match catch_unwind(|| unsafe { install(id, info, argc, argv) }) {
        Ok(Ok(())) => 0,
        Ok(Err(error)) => {
            eprintln!("rzgate: {error}");
            1
        }
        Err(payload) => {
            eprintln!(
                "rzgate: internal error while loading the plugin: {}",
                guard::payload_message(payload.as_ref())
            );
            1
        }
    }
}

unsafe fn install(
    id: qemu_plugin_id_t,
    info: *const qemu_info_t,
    argc: c_int,
    argv: *const *const c_char,
) -> Result<(), InstallError> {
    // SAFETY: QEMU's info block is valid during this call; target_name is a C string.
    let info = unsafe { info.as_ref() };
    let target = info
        .filter(|info| !info.target_name.is_null())
        .and_then(|info| unsafe { CStr::from_ptr(info.target_name) }.to_str().ok());
    check_target(target, info.is_some_and(|info| info.system_emulation))?;

    let argc = usize::try_from(argc).unwrap_or(0);
    let argv: Vec<&CStr> = if argv.is_null() {
        Vec::new()
    } else {
        // SAFETY: QEMU passes argc valid, NUL-terminated strings that outlive the plugin.
        (0..argc)
            .map(|i| unsafe { *argv.add(i) })
            .filter(|arg| !arg.is_null())
            .map(|arg| unsafe { CStr::from_ptr(arg) })
            .collect()
    };
    let arguments = plugin_arguments(&argv)?;
    if PLUGIN.get().is_some() {
        return Err(InstallError::LoadedTwice);
    }
    let plugin = Plugin::from_arguments(&arguments)?;
    plugin.set_memory(Box::new(QemuMemory));
    if PLUGIN.set(plugin).is_err() {
        return Err(InstallError::LoadedTwice);
    }
    let _ = PLUGIN_ID.set(id);
    let vcpus = info.map_or(1, |info| usize::try_from(info.max_vcpus).unwrap_or(1));
    let _ = PAGES.set(KernelPages::new(vcpus.clamp(1, MAX_CACHED_VCPUS)));
    register_callbacks(id);
    log(&format!("rzgate: loaded with {}", arguments.join(",")));
    Ok(())
}

fn register_callbacks(id: qemu_plugin_id_t) {
    // SAFETY: registering callbacks of the declared v7 types, with no userdata.
    unsafe {
        qemu_plugin_register_vcpu_init_cb(id, on_vcpu_init, std::ptr::null_mut());
        qemu_plugin_register_vcpu_tb_trans_cb(id, on_translation, std::ptr::null_mut());
        qemu_plugin_register_atexit_cb(id, on_exit, std::ptr::null_mut());
        // A watchdog's deadline is checked here too: an idle vCPU wakes at every guest tick.
        qemu_plugin_register_vcpu_idle_cb(id, on_idle_or_resume);
        qemu_plugin_register_vcpu_resume_cb(id, on_idle_or_resume);
    }
}

/// A vCPU goes idle (WFI) or resumes: a model's deadline may have passed.
extern "C" fn on_idle_or_resume(_id: qemu_plugin_id_t, vcpu_index: c_uint) {
    let mut halt = None;
    guarded("idle", || {
        if let Some(plugin) = PLUGIN.get().filter(|plugin| plugin.is_active()) {
            if let Verdict::Halt(status) =
                plugin.check_deadline(&mut QemuVcpu::new(vcpu_index), false)
            {
                halt = Some(status);
            }
        }
    });
    if let Some(status) = halt {
        // The events are on disk (the reporter was shut down). `_exit` as for on_abort=halt.
        // SAFETY: terminates the process; nothing after it runs.
        unsafe { libc::_exit(status) };
    }
}

/// User space can reach the window from now on: have QEMU drop every translated block
/// (user space's were translated without callbacks) and translate them again. QEMU does it
/// with all vCPUs stopped, before any of them starts its next block: the store that made
/// the window reachable is in kernel code that still has to finish and return to user space
/// before a user access can use it.
fn retranslate_everything() {
    if let Some(&id) = PLUGIN_ID.get() {
        // SAFETY: called from a vCPU callback with the id QEMU gave at install.
        unsafe { qemu_plugin_reset(id, on_reset) };
    }
}

/// The reset unregistered every callback (atexit included) after flushing the code cache;
/// register them again, in the same safe context. The argument is not used: QEMU 11.1.3
/// passes something other than the plugin's id here (measured: a heap address, where
/// install got a hash), and registering with it makes QEMU dereference a failed lookup.
extern "C" fn on_reset(_unreliable_id: qemu_plugin_id_t) {
    guarded("reset", || {
        if let Some(&id) = PLUGIN_ID.get() {
            register_callbacks(id);
        }
        log(
            "rzgate: user space can reach the window: its code is translated again, with callbacks",
        );
    });
}

// ---- callbacks -----------------------------------------------------------------------------

/// A vCPU exists: cache its register handles (`qemu_plugin_get_registers` needs the vCPU's
/// context, which this callback has). Not the place for the reset image: QEMU creates the
/// vCPUs, and runs this, before `virt` maps its RAM.
extern "C" fn on_vcpu_init(vcpu_index: c_uint, _userdata: *mut c_void) {
    guarded("vcpu-init", || {
        let handles = find_registers();
        match &handles {
            None => log(&format!(
                "rzgate: vCPU {vcpu_index} lacks x0-x30/sp/cpsr: aborts carry no call chain \
                 and on_abort=serror cannot divert it"
            )),
            Some(handles) if handles.vbar.is_none() => log(&format!(
                "rzgate: vCPU {vcpu_index} has no VBAR_EL1 register: on_abort=serror checks \
                 the symbol map against the kernel's code only"
            )),
            Some(_) => {}
        }
        let mut all = REGISTERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let index = vcpu_index as usize;
        if all.len() <= index {
            all.resize(index + 1, None);
        }
        all[index] = handles;
    });
}

/// Every instruction whose loads and stores may reach the window gets memory callbacks, one
/// for its loads and one for its stores; their userdata is the instruction's address, so the
/// PC of an access costs nothing at run time. SP-based and PC-relative literal loads and
/// stores get none, nor does a lower-half (user) block while user space cannot reach the
/// window ([`filter`] says why both are sound). Until the plugin is active every instruction
/// keeps its callbacks: the first one to run writes the window's reset image, before the
/// guest's first window access. In every block, TLBIs, translation-register writes and the
/// DSB/ISB after them get a callback that keeps [`crate::pages`] true.
extern "C" fn on_translation(tb: *mut qemu_plugin_tb, _userdata: *mut c_void) {
    guarded("translation", || {
        let Some(plugin) = PLUGIN.get().filter(|plugin| !plugin.is_stopped()) else {
            return;
        };
        let flags = memory_callback_flags(plugin);
        let filtering = plugin.is_active();
        // SAFETY: `tb` and its instructions are valid during the translation callback;
        // `qemu_plugin_insn_data` copies at most 4 bytes into `word`.
        unsafe {
            let user_block = filtering && plugin.skips_block(qemu_plugin_tb_vaddr(tb));
            for index in 0..qemu_plugin_tb_n_insns(tb) {
                let insn = qemu_plugin_tb_get_insn(tb, index);
                if insn.is_null() {
                    continue;
                }
                let mut bytes = [0u8; 4];
                let len = qemu_plugin_insn_data(insn, bytes.as_mut_ptr().cast(), bytes.len());
                let word = filter::insn_word(&bytes[..len.min(bytes.len())]);
                let page_cache_event: Option<InsnCallback> = match word {
                    Some(word) if filter::changes_translation(word) => Some(on_translation_change),
                    Some(word) if filter::synchronizes_context(word) => Some(on_barrier),
                    _ => None,
                };
                if let Some(cb) = page_cache_event {
                    let no_data = std::ptr::null_mut();
                    qemu_plugin_register_vcpu_insn_exec_cb(
                        insn,
                        cb,
                        QEMU_PLUGIN_CB_NO_REGS,
                        no_data,
                    );
                }
                if user_block || (filtering && word.is_some_and(filter::insn_cannot_reach_window)) {
                    continue;
                }
                let pc = qemu_plugin_insn_vaddr(insn) as usize as *mut c_void;
                qemu_plugin_register_vcpu_mem_cb(insn, on_load, flags, QEMU_PLUGIN_MEM_R, pc);
                qemu_plugin_register_vcpu_mem_cb(insn, on_store, flags, QEMU_PLUGIN_MEM_W, pc);
            }
        }
    });
}

/// Before a TLBI or a translation-register write. Nothing here can panic.
extern "C" fn on_translation_change(vcpu_index: c_uint, _userdata: *mut c_void) {
    if let Some(pages) = PAGES.get() {
        pages.translation_changes(vcpu_index as usize);
    }
}

/// Before a DSB or ISB. Nothing here can panic.
extern "C" fn on_barrier(vcpu_index: c_uint, _userdata: *mut c_void) {
    if let Some(pages) = PAGES.get() {
        pages.synchronizes(vcpu_index as usize);
    }
}

/// Runs after every instrumented guest load.
extern "C" fn on_load(
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    userdata: *mut c_void,
) {
    on_memory_access::<false>(vcpu_index, info, vaddr, userdata);
}

/// Runs after every instrumented guest store.
extern "C" fn on_store(
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    userdata: *mut c_void,
) {
    on_memory_access::<true>(vcpu_index, info, vaddr, userdata);
}

/// One load or store, after QEMU made it. A kernel linear-map address (most kernel data)
/// returns after an atomic load and two compares, and so does a lower-half address while
/// user space cannot reach the window; a kernel store first has its value checked when it
/// is 8 or 16 bytes (a page-table entry). An upper-half page [`crate::pages`] holds returns
/// after a few more compares; any other address outside the window after three QEMU
/// queries, and its page is remembered: no lock, no allocation.
#[inline(always)]
fn on_memory_access<const STORE: bool>(
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    userdata: *mut c_void,
) {
    // Fast path, before the guard: nothing here can panic. The linear map never maps the
    // window, nor does the lower half before a descriptor gives user space access (see
    // `filter`); the active check keeps the reset-image path below reachable.
    if let Some(plugin) = PLUGIN.get().filter(|plugin| plugin.is_active()) {
        if filter::in_kernel_linear_map(vaddr) {
            if STORE && !plugin.user_space_instrumented() {
                watch_descriptor_store(plugin, vcpu_index, info, vaddr, userdata as usize as u64);
            }
            return;
        }
        if filter::in_lower_half(vaddr) && plugin.lower_half_skipped() {
            return;
        }
        if STORE && !plugin.user_space_instrumented() {
            watch_descriptor_store(plugin, vcpu_index, info, vaddr, userdata as usize as u64);
        }
        if !filter::in_lower_half(vaddr)
            && PAGES
                .get()
                .is_some_and(|pages| pages.holds(vcpu_index as usize, vaddr))
        {
            return;
        }
    }
    // Plain data only: nothing in this frame has a destructor, so that the divert below can
    // leave it by longjmp.
    let mut divert_to: Option<u64> = None;
    guarded("memory", || {
        let Some(plugin) = PLUGIN.get() else {
            return;
        };
        if !plugin.is_active() {
            if !plugin.reset_pending() {
                return;
            }
            // The guest's first access (to its boot code or DTB, never the window): the
            // machine is complete now, and the window must be ready before the next one.
            let written = plugin.write_reset_image(&mut QemuVcpu::new(vcpu_index));
            if written > 0 {
                log(&format!(
                    "rzgate: reset image written into the window ({written} registers)"
                ));
            }
            if !plugin.is_active() {
                return;
            }
        }
        let pages = PAGES.get();
        let generation = pages.map(KernelPages::generation);
        // SAFETY: `info` and `vaddr` are the current access's; the hwaddr handle is used only
        // during this callback.
        let phys = unsafe {
            let hwaddr = qemu_plugin_get_hwaddr(info, vaddr);
            if hwaddr.is_null() {
                return;
            }
            if qemu_plugin_hwaddr_is_io(hwaddr) {
                None
            } else {
                Some(qemu_plugin_hwaddr_phys_addr(hwaddr))
            }
        };
        match phys {
            Some(phys) if plugin.window_contains(phys) => {
                let pc = userdata as usize as u64;
                divert_to = on_window_access(plugin, vcpu_index, info, vaddr, phys, pc);
            }
            // Device MMIO or RAM outside the window.
            _ => {
                if let (Some(pages), Some(generation)) = (pages, generation) {
                    if !filter::in_lower_half(vaddr) {
                        pages.remember(vcpu_index as usize, vaddr, generation);
                    }
                }
            }
        }
    });
    if let Some(pc) = divert_to {
        // on_abort=serror at the first abort: the stack and registers are set, every lock,
        // buffer and guard of the plugin is released and dropped (the guarded body has
        // returned), and the events are on disk. QEMU registered this callback with
        // RW_REGS_PC, as set_pc asserts.
        // SAFETY: called from the vCPU's memory callback; it longjmps into QEMU's CPU loop
        // over this frame, which holds only plain data.
        unsafe { qemu_plugin_set_pc(pc) }
    }
}

/// A kernel store while user space cannot reach the window: does its value give EL0 access
/// to it? Page-table entries are stored whole, 8 bytes (16 for a pair); narrower stores are
/// not descriptors.
#[inline(always)]
fn watch_descriptor_store(
    plugin: &Plugin,
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    pc: u64,
) {
    // SAFETY: queries on the current access, inside its memory callback.
    let words = unsafe {
        if qemu_plugin_mem_size_shift(info) < 3 {
            return;
        }
        let value = qemu_plugin_mem_get_value(info);
        match value.kind {
            QEMU_PLUGIN_MEM_VALUE_U64 => [value.data.u64_, 0],
            QEMU_PLUGIN_MEM_VALUE_U128 => [value.data.u128_.low, value.data.u128_.high],
            _ => return,
        }
    };
    for word in words {
        if plugin.descriptor_reaches_window(word) {
            guarded("memory", || {
                let mut vcpu = QemuVcpu::new(vcpu_index);
                if plugin.watch_descriptor_store(&mut vcpu, vcpu_index, pc, vaddr, word) {
                    retranslate_everything();
                }
            });
        }
    }
}

/// Models one window access; `Some(pc)` when the caller must divert the vCPU to `pc`.
#[cold]
#[inline(never)]
fn on_window_access(
    plugin: &Plugin,
    vcpu_index: c_uint,
    info: qemu_plugin_meminfo_t,
    vaddr: u64,
    phys: u64,
    pc: u64,
) -> Option<u64> {
    // SAFETY: queries on the current access, inside its memory callback.
    let (size_shift, is_write, value) = unsafe {
        (
            qemu_plugin_mem_size_shift(info),
            qemu_plugin_mem_is_store(info),
            qemu_plugin_mem_get_value(info),
        )
    };
    let mut vcpu = QemuVcpu::new(vcpu_index);
    let verdict = plugin.on_window_access(
        &mut vcpu,
        vcpu_index,
        pc,
        vaddr,
        phys,
        size_shift,
        is_write,
        low_bytes(&value),
    );
    match verdict {
        Verdict::Continue => None,
        Verdict::Divert(target) => Some(target),
        Verdict::Halt(status) => {
            // The events are on disk. `_exit`, not `exit`: the board would hang on this
            // access and not shut down either; exit() would run QEMU's atexit handlers from
            // inside a vCPU callback while the other vCPUs still run (and our own, a second
            // summary).
            // SAFETY: terminates the process; nothing after it runs.
            unsafe { libc::_exit(status) };
        }
    }
}

/// The accessed value, up to its low 8 bytes (the bus takes no more).
fn low_bytes(value: &qemu_plugin_mem_value) -> u64 {
    // SAFETY: `kind` says which union member QEMU wrote.
    unsafe {
        match value.kind {
            QEMU_PLUGIN_MEM_VALUE_U8 => u64::from(value.data.u8_),
            QEMU_PLUGIN_MEM_VALUE_U16 => u64::from(value.data.u16_),
            QEMU_PLUGIN_MEM_VALUE_U32 => u64::from(value.data.u32_),
            QEMU_PLUGIN_MEM_VALUE_U64 => value.data.u64_,
            QEMU_PLUGIN_MEM_VALUE_U128 => value.data.u128_.low,
            _ => 0,
        }
    }
}

/// QEMU is exiting (atexit, in every normal exit: guest power-off, a signal, a monitor quit).
extern "C" fn on_exit(_userdata: *mut c_void) {
    guarded("exit", || {
        if let Some(plugin) = PLUGIN.get() {
            plugin.finish();
        }
    });
}

// ---- QEMU access for one vCPU --------------------------------------------------------------

/// The current vCPU, inside one of its callbacks.
struct QemuVcpu {
    index: c_uint,
    scratch: Option<ByteArray>,
}

impl QemuVcpu {
    fn new(index: c_uint) -> QemuVcpu {
        QemuVcpu {
            index,
            scratch: None,
        }
    }

    fn scratch(&mut self) -> &mut ByteArray {
        self.scratch.get_or_insert_with(ByteArray::new)
    }

    fn handles(&self) -> Option<RegisterHandles> {
        REGISTERS
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(self.index as usize)
            .copied()
            .flatten()
    }

    /// A register of up to 8 bytes, little-endian (cpsr is 4).
    fn read_register(&mut self, handle: usize) -> Option<u64> {
        let scratch = self.scratch();
        scratch.set_len(0);
        // SAFETY: a handle from qemu_plugin_get_registers for this vCPU, read inside one of
        // its callbacks registered with QEMU_PLUGIN_CB_R_REGS or stronger. QEMU appends the
        // value.
        let ok = unsafe { qemu_plugin_read_register(handle as *mut _, scratch.as_ptr()) };
        if !ok {
            return None;
        }
        let bytes = scratch.bytes();
        if bytes.is_empty() || bytes.len() > 8 {
            return None;
        }
        let mut value = [0u8; 8];
        value[..bytes.len()].copy_from_slice(bytes);
        Some(u64::from_le_bytes(value))
    }
}

impl Guest for QemuVcpu {
    fn write_phys(&mut self, phys: u64, bytes: &[u8]) -> bool {
        let scratch = self.scratch();
        scratch.set_bytes(bytes);
        // SAFETY: a glib-allocated GByteArray, from a vCPU callback (current_cpu is set).
        let result = unsafe { qemu_plugin_write_memory_hwaddr(phys, scratch.as_ptr()) };
        result == QEMU_PLUGIN_HWADDR_OPERATION_OK
    }

    fn frame_registers(&mut self) -> Option<(u64, u64)> {
        let handles = self.handles()?;
        let fp = self.read_register(handles.x[29])?;
        let lr = self.read_register(handles.x[30])?;
        Some((fp, lr))
    }

    fn read_frame_record(&mut self, vaddr: u64) -> Option<FrameRecord> {
        let bytes = self.read_virt(vaddr, 16)?;
        Some(FrameRecord {
            next_fp: u64::from_le_bytes(bytes[..8].try_into().ok()?),
            return_address: u64::from_le_bytes(bytes[8..].try_into().ok()?),
        })
    }

    fn read_virt(&mut self, vaddr: u64, len: usize) -> Option<Vec<u8>> {
        if len == 0 {
            return Some(Vec::new());
        }
        let scratch = self.scratch();
        // SAFETY: QEMU resizes the glib-allocated array to `len` bytes and fills it; from a
        // vCPU callback (current_cpu is set).
        let ok = unsafe { qemu_plugin_read_memory_vaddr(vaddr, scratch.as_ptr(), len) };
        let bytes = scratch.bytes();
        (ok && bytes.len() == len).then(|| bytes.to_vec())
    }

    fn write_virt(&mut self, vaddr: u64, bytes: &[u8]) -> bool {
        if bytes.is_empty() {
            return true;
        }
        let scratch = self.scratch();
        scratch.set_bytes(bytes);
        // SAFETY: a glib-allocated GByteArray of bytes.len() bytes, from a vCPU callback.
        unsafe { qemu_plugin_write_memory_vaddr(vaddr, scratch.as_ptr()) }
    }

    fn vector_base(&mut self) -> Option<u64> {
        let handle = self.handles()?.vbar?;
        self.read_register(handle)
    }

    fn cpu_state(&mut self) -> Option<CpuState> {
        let handles = self.handles()?;
        let mut x = [0u64; 31];
        for (value, handle) in x.iter_mut().zip(handles.x) {
            *value = self.read_register(handle)?;
        }
        let sp = self.read_register(handles.sp)?;
        let cpsr = u32::try_from(self.read_register(handles.cpsr)?).ok()?;
        Some(CpuState { x, sp, cpsr })
    }

    fn write_register(&mut self, register: Register, value: u64) -> bool {
        let Some(handles) = self.handles() else {
            return false;
        };
        let (handle, len) = match register {
            Register::X(n) if n < 31 => (handles.x[usize::from(n)], 8),
            Register::X(_) => return false,
            Register::Sp => (handles.sp, 8),
            // cpsr is 4 bytes: 8 would also overwrite what follows it (seen: EL0, a dead init).
            Register::Cpsr => (handles.cpsr, 4),
        };
        let scratch = self.scratch();
        scratch.set_bytes(&value.to_le_bytes()[..len]);
        // SAFETY: a writable handle of this vCPU (x0-x30, sp, cpsr are not read-only), from
        // a memory callback registered with RW_REGS_PC; the buffer holds the register's size.
        unsafe { qemu_plugin_write_register(handle as *mut _, scratch.as_ptr()) }
    }
}

/// A glib-allocated `GByteArray`: QEMU may resize what it is given, so it must be glib's.
struct ByteArray(*mut GByteArray);

/// Guest-physical memory for the models (a DMA controller's copies): the vCPU's address
/// space through `qemu_plugin_read/write_memory_hwaddr`. The models call it only inside a
/// bus call, which the glue makes from a vCPU callback (a memory callback, or the idle and
/// resume callbacks' deadline check): `current_cpu` is set, as both calls assert. RAM needs
/// no BQL; an MMIO address takes it as the GIC writes do (see `check_deadline`).
struct QemuMemory;

thread_local! {
    /// The calling vCPU thread's array for [`QemuMemory`].
    static DMA_SCRATCH: std::cell::RefCell<Option<ByteArray>> = const { std::cell::RefCell::new(None) };
}

impl QemuMemory {
    fn with_scratch<T>(f: impl FnOnce(&mut ByteArray) -> T) -> T {
        DMA_SCRATCH.with(|cell| {
            let mut slot = cell.borrow_mut();
            f(slot.get_or_insert_with(ByteArray::new))
        })
    }
}

impl GuestMemory for QemuMemory {
    fn read(&self, phys: u64, buf: &mut [u8]) -> Result<(), String> {
        if buf.is_empty() {
            return Ok(());
        }
        QemuMemory::with_scratch(|scratch| {
            // SAFETY: a glib-allocated GByteArray that QEMU resizes to buf.len() and fills;
            // from a vCPU callback (current_cpu is set).
            let result =
                unsafe { qemu_plugin_read_memory_hwaddr(phys, scratch.as_ptr(), buf.len()) };
            let bytes = scratch.bytes();
            if result != QEMU_PLUGIN_HWADDR_OPERATION_OK || bytes.len() != buf.len() {
                return Err(format!(
                    "QEMU refused a read of {} bytes at 0x{phys:x} (result {result})",
                    buf.len()
                ));
            }
            buf.copy_from_slice(bytes);
            Ok(())
        })
    }

    fn write(&self, phys: u64, data: &[u8]) -> Result<(), String> {
        if data.is_empty() {
            return Ok(());
        }
        QemuMemory::with_scratch(|scratch| {
            scratch.set_bytes(data);
            // SAFETY: a glib-allocated GByteArray of data.len() bytes, from a vCPU callback.
            let result = unsafe { qemu_plugin_write_memory_hwaddr(phys, scratch.as_ptr()) };
            if result != QEMU_PLUGIN_HWADDR_OPERATION_OK {
                return Err(format!(
                    "QEMU refused a write of {} bytes at 0x{phys:x} (result {result})",
                    data.len()
                ));
            }
            Ok(())
        })
    }
}

impl ByteArray {
    fn new() -> ByteArray {
        // SAFETY: plain glib allocation (aborts on out-of-memory, never returns NULL).
        ByteArray(unsafe { g_byte_array_new() })
    }

    fn as_ptr(&mut self) -> *mut GByteArray {
        self.0
    }

    fn set_len(&mut self, len: usize) {
        // SAFETY: resizing our own array; lengths here are at most 4096 (a DMA chunk).
        unsafe { g_byte_array_set_size(self.0, len as c_uint) };
    }

    fn set_bytes(&mut self, bytes: &[u8]) {
        self.set_len(bytes.len());
        // SAFETY: the array now holds exactly bytes.len() bytes at `data`.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), (*self.0).data, bytes.len()) };
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `data` holds `len` initialized bytes (or is NULL when empty).
        unsafe {
            let array = &*self.0;
            if array.data.is_null() || array.len == 0 {
                &[]
            } else {
                std::slice::from_raw_parts(array.data, array.len as usize)
            }
        }
    }
}

impl Drop for ByteArray {
    fn drop(&mut self) {
        // SAFETY: ours, freed once, with its contents.
        unsafe { g_byte_array_free(self.0, 1) };
    }
}

/// x0-x30, sp, cpsr (and VBAR_EL1 when listed) of the current vCPU, by their names in
/// QEMU's aarch64 gdb description. `None` when one of the core registers is missing.
fn find_registers() -> Option<RegisterHandles> {
    // SAFETY: called in the vCPU-init callback (current_cpu set). The array holds `len`
    // descriptors; their strings are interned by QEMU and not ours to free.
    unsafe {
        let registers = qemu_plugin_get_registers();
        if registers.is_null() {
            return None;
        }
        let descriptors = (*registers).data as *const qemu_plugin_reg_descriptor;
        let count = (*registers).len as usize;
        let mut x = [None; 31];
        let (mut sp, mut cpsr, mut vbar) = (None, None, None);
        for index in 0..count {
            let descriptor = &*descriptors.add(index);
            if descriptor.name.is_null() {
                continue;
            }
            let handle = Some(descriptor.handle as usize);
            match CStr::from_ptr(descriptor.name).to_bytes() {
                b"sp" => sp = handle,
                b"cpsr" => cpsr = handle,
                b"VBAR_EL1" | b"vbar_el1" => vbar = handle,
                name => {
                    let number = name
                        .strip_prefix(b"x")
                        .and_then(|digits| std::str::from_utf8(digits).ok())
                        .and_then(|digits| digits.parse::<usize>().ok());
                    if let Some(slot) = number.and_then(|n| x.get_mut(n)) {
                        *slot = handle;
                    }
                }
            }
        }
        g_array_free(registers, 1);
        let mut all = [0usize; 31];
        for (slot, handle) in all.iter_mut().zip(x) {
            *slot = handle?;
        }
        Some(RegisterHandles {
            x: all,
            sp: sp?,
            cpsr: cpsr?,
            vbar,
        })
    }
}

// ---- panics and logging --------------------------------------------------------------------

/// Runs a callback body; a panic stops the plugin's modelling instead of unwinding into QEMU.
fn guarded(callback: &'static str, body: impl FnOnce()) {
    guard::guarded(callback, body, |callback, message| match PLUGIN.get() {
        Some(plugin) => {
            plugin.internal_error(callback, message);
            if callback == "exit" {
                // The summary and the flush must still happen.
                plugin.finish();
            }
        }
        None => eprintln!("rzgate: internal error in the {callback} callback: {message}"),
    });
}

/// A line in QEMU's log (`-d plugin`).
fn log(message: &str) {
    if let Ok(line) = CString::new(format!("{message}\n")) {
        // SAFETY: a valid C string for the duration of the call.
        unsafe { qemu_plugin_outs(line.as_ptr()) };
    }
}
