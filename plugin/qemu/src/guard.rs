//! Keeping panics out of QEMU: every callback body runs under [`guarded`].
//!
//! Unwinding out of an `extern "C"` function aborts the process, and QEMU with it. A guarded
//! body that panics is caught instead, and its message, with the location the panic hook
//! recorded, goes to a report function (the plugin's: stop modelling, say so once).
//!
//! The hook is silent only for panics inside a guarded body, which are reported by the guard;
//! any other panic (the reporter thread's, say) still gets the previous hook's message.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe, PanicHookInfo};
use std::sync::Once;

thread_local! {
    /// How many guarded bodies this thread is in.
    static GUARD_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// The last guarded panic on this thread, with its location.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the panic hook (once per process; later calls do nothing).
pub fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if GUARD_DEPTH.try_with(Cell::get).unwrap_or(0) > 0 {
                remember(info);
            } else {
                previous(info);
            }
        }));
    });
}

fn remember(info: &PanicHookInfo<'_>) {
    let location = info
        .location()
        .map(|location| format!(" at {}:{}", location.file(), location.line()))
        .unwrap_or_default();
    let message = format!("{}{location}", payload_message(info.payload()));
    let _ = LAST_PANIC.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            *last = Some(message);
        }
    });
}

/// The text of a panic payload.
pub fn payload_message(payload: &(dyn Any + Send)) -> String {
    if let Some(message) = payload.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = payload.downcast_ref::<String>() {
        message.clone()
    } else {
        "(non-string panic payload)".to_string()
    }
}

/// Runs `body`; if it panics, calls `report(callback, message)` (itself guarded: a second panic
/// is swallowed) and returns normally.
pub fn guarded(
    callback: &'static str,
    body: impl FnOnce(),
    report: impl FnOnce(&'static str, &str),
) {
    let _ = GUARD_DEPTH.try_with(|depth| depth.set(depth.get() + 1));
    let outcome = catch_unwind(AssertUnwindSafe(body));
    if let Err(payload) = outcome {
        let message = LAST_PANIC
            .try_with(|last| last.borrow_mut().take())
            .ok()
            .flatten()
            .unwrap_or_else(|| payload_message(payload.as_ref()));
        let _ = catch_unwind(AssertUnwindSafe(|| report(callback, &message)));
    }
    let _ = GUARD_DEPTH.try_with(|depth| depth.set(depth.get() - 1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_is_reported_with_its_location_and_does_not_escape() {
        install_panic_hook();
        let mut reported = None;
        guarded(
            "memory",
            || panic!("model exploded at {:#x}", 0x7e05_8000),
            |callback, message| reported = Some((callback, message.to_string())),
        );
        let (callback, message) = reported.expect("the panic was reported");
        assert_eq!(callback, "memory");
        assert!(
            message.contains("model exploded at 0x7e058000"),
            "{message}"
        );
        assert!(message.contains("guard.rs:"), "{message}");
    }

    #[test]
    fn a_body_that_returns_is_not_reported() {
        install_panic_hook();
        let mut ran = false;
        guarded("exit", || ran = true, |_, _| panic!("must not be called"));
        assert!(ran);
    }

    #[test]
    fn a_panicking_report_is_swallowed() {
        install_panic_hook();
        guarded("exit", || panic!("first"), |_, _| panic!("second"));
    }

    #[test]
    fn payload_messages() {
        assert_eq!(payload_message(&"text"), "text");
        assert_eq!(payload_message(&String::from("owned")), "owned");
        assert_eq!(payload_message(&42u32), "(non-string panic payload)");
    }
}
