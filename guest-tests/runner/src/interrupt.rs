//! Interrupting a run (Ctrl-C, or the SIGTERM a CI timeout sends) without losing the cells
//! that finished.
//!
//! An [`Interrupt`] is shared by the cells of one run. Every QEMU is started through it
//! ([`Interrupt::spawn`]) and leaves it before it is reaped ([`Interrupt::release`]), both
//! under one lock; [`Interrupt::trigger`] takes the same lock, records the signal and kills
//! every QEMU still registered. So after an interrupt no QEMU starts, every running one is
//! stopped, and a pid is killed only while it is still our unreaped child (never a recycled
//! one). A cell whose QEMU was registered when the interrupt came did not finish: its
//! [`Interrupt::release`] says so and the run reports it as not run (a QEMU that had just
//! ended on its own in that instant counts as not run too: the conservative side).
//!
//! The QEMUs get their own process group, so a Ctrl-C on the terminal reaches the runner
//! (and make) but not them: only the runner decides when a QEMU dies, under the lock, which
//! keeps "finished" and "interrupted" apart. If the runner itself dies (SIGKILL), its QEMUs
//! die with it (`PR_SET_PDEATHSIG`), as they did when they shared its process group.

use std::collections::BTreeSet;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex, MutexGuard};

use anyhow::{Context, Result};

/// The signals that interrupt a run: Ctrl-C, a CI job's timeout or cancel, a closed terminal.
pub const SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];

#[derive(Debug, Default)]
struct State {
    /// The first signal that interrupted the run.
    signal: Option<i32>,
    /// Pids of the QEMUs started and not yet reaped.
    running: BTreeSet<u32>,
}

#[derive(Debug, Clone, Default)]
pub struct Interrupt {
    state: Arc<Mutex<State>>,
}

impl Interrupt {
    pub fn new() -> Interrupt {
        Interrupt::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves a consistent state (every update is one
        // statement), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes SIGINT, SIGTERM and SIGHUP interrupt the run instead of killing the process.
    /// Later signals are ignored: make forwards a SIGTERM that the runner may also get
    /// directly, and a second signal must not cut the reports short.
    pub fn on_signals(&self) -> Result<()> {
        let mut signals = signal_hook::iterator::Signals::new(SIGNALS)
            .context("cannot install the SIGINT/SIGTERM handlers")?;
        let interrupt = self.clone();
        std::thread::Builder::new()
            .name("signals".into())
            .spawn(move || {
                for signal in signals.forever() {
                    interrupt.trigger(signal);
                }
            })
            .context("cannot start the signal thread")?;
        Ok(())
    }

    /// Interrupts the run: records `signal` (the first one wins) and kills every QEMU still
    /// running.
    pub fn trigger(&self, signal: i32) {
        let mut state = self.lock();
        state.signal.get_or_insert(signal);
        for &pid in &state.running {
            // SAFETY: kill has no memory effects; the pid is our unreaped child (see above).
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
            }
        }
    }

    /// The signal that interrupted the run, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.lock().signal
    }

    /// Starts `command` in its own process group, unless the run is interrupted (`None`).
    pub fn spawn(&self, command: &mut Command) -> std::io::Result<Option<Child>> {
        let mut state = self.lock();
        if state.signal.is_some() {
            return Ok(None);
        }
        command.process_group(0);
        // SAFETY: the closure runs in the child between fork and exec and only makes one
        // async-signal-safe system call.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        state.running.insert(child.id());
        Ok(Some(child))
    }

    /// Forgets a QEMU that has ended but is not reaped yet; true when the run was
    /// interrupted while it ran (so it was, or would have been, killed: it did not finish).
    pub fn release(&self, pid: u32) -> bool {
        let mut state = self.lock();
        state.running.remove(&pid);
        state.signal.is_some()
    }
}

/// `SIGINT`, `SIGTERM`, ... for the reports.
pub fn signal_name(signal: i32) -> String {
    match signal {
        libc::SIGINT => "SIGINT".into(),
        libc::SIGTERM => "SIGTERM".into(),
        libc::SIGHUP => "SIGHUP".into(),
        other => format!("signal {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interrupt_kills_the_running_and_refuses_new_children() {
        let interrupt = Interrupt::new();
        let mut child = interrupt
            .spawn(Command::new("sleep").arg("30"))
            .unwrap()
            .expect("not interrupted yet");
        assert_eq!(interrupt.signal(), None);
        interrupt.trigger(libc::SIGTERM);
        interrupt.trigger(libc::SIGINT);
        assert_eq!(
            interrupt.signal(),
            Some(libc::SIGTERM),
            "the first signal wins"
        );
        assert!(
            interrupt.release(child.id()),
            "it ran when the interrupt came"
        );
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
        assert!(interrupt
            .spawn(Command::new("sleep").arg("30"))
            .unwrap()
            .is_none());
    }

    #[test]
    fn a_child_that_ended_before_the_interrupt_finished() {
        let interrupt = Interrupt::new();
        let mut child = interrupt.spawn(&mut Command::new("true")).unwrap().unwrap();
        let pid = child.id();
        assert!(!interrupt.release(pid));
        assert!(child.wait().unwrap().success());
        // Released pids are never signalled, even when the interrupt comes later.
        interrupt.trigger(libc::SIGINT);
        assert!(interrupt.lock().running.is_empty());
    }

    #[test]
    fn children_get_their_own_process_group() {
        let interrupt = Interrupt::new();
        let child = interrupt
            .spawn(
                Command::new("sh")
                    .args(["-c", "cut -d' ' -f5 /proc/$$/stat"])
                    .stdout(std::process::Stdio::piped()),
            )
            .unwrap()
            .unwrap();
        let pid = child.id();
        let output = child.wait_with_output().unwrap();
        interrupt.release(pid);
        let pgid: u32 = String::from_utf8_lossy(&output.stdout)
            .trim()
            .parse()
            .unwrap();
        assert_eq!(pgid, pid);
    }

    #[test]
    fn signal_names() {
        assert_eq!(signal_name(libc::SIGINT), "SIGINT");
        assert_eq!(signal_name(libc::SIGTERM), "SIGTERM");
        assert_eq!(signal_name(9), "signal 9");
    }
}
