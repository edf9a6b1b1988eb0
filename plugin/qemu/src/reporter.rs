//! The reporter: a thread that writes every event as one JSON line, fed through a bounded
//! channel so that vCPU threads never wait for the disk.
//!
//! - Capacity [`CHANNEL_CAPACITY`]. A sender first tries without blocking; when the channel is
//!   full it counts that (`channel_full`, reported in the summary) and then blocks until the
//!   reporter has room: an event is never dropped, a burst only slows the guest down.
//! - The reporter flushes its buffer whenever the channel is empty, so the file is current
//!   while QEMU runs (a runner can follow it, and a QEMU that dies on a signal leaves every
//!   event it had written) without a write(2) per event under load.
//! - [`Reporter::flush`] waits until everything sent before it is written to the file (the
//!   SError divert: the guest dies right after it, and QEMU may end without warning).
//! - [`Reporter::shutdown`] sends an end marker behind every queued record, then joins the
//!   thread: everything sent before it is on disk when it returns. It is idempotent. Records
//!   sent after it are discarded (nothing is left to write them).
//! - A write error (disk full, ...) is reported once on stderr; the reporter keeps draining
//!   the channel so that no vCPU ever blocks on a dead writer.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use rzgate_core::event::Event;
use std::io::{self, BufWriter, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::thread::JoinHandle;
use std::time::Duration;

pub const CHANNEL_CAPACITY: usize = 65536;

/// What travels to the reporter.
pub enum Record {
    /// An event of rzgate-core, serialized as it defines it.
    Event(Event),
    /// An event the glue composes itself (`halt`, an amended `summary`, `internal_error`).
    Json(serde_json::Value),
    /// Write out everything before it, then answer: sent by [`Reporter::flush`] only.
    Flush(Sender<()>),
    /// Flush and stop: sent by [`Reporter::shutdown`] only.
    End,
}

/// How long [`Reporter::flush`] waits for the reporter before giving up (a disk that slow has
/// bigger problems; the guest must not hang on it).
const FLUSH_PATIENCE: Duration = Duration::from_secs(10);

pub struct Reporter {
    sender: Sender<Record>,
    thread: Mutex<Option<JoinHandle<()>>>,
    channel_full: AtomicU64,
}

impl Reporter {
    /// Starts the reporter thread writing to `out`.
    pub fn start(out: impl Write + Send + 'static, capacity: usize) -> io::Result<Reporter> {
        let (sender, receiver) = bounded(capacity);
        let thread = std::thread::Builder::new()
            .name("rzgate-reporter".into())
            .spawn(move || write_records(receiver, out))?;
        Ok(Reporter {
            sender,
            thread: Mutex::new(Some(thread)),
            channel_full: AtomicU64::new(0),
        })
    }

    /// Queues `record`; blocks only while the channel is full (counted).
    pub fn send(&self, record: Record) {
        match self.sender.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(record)) => {
                self.channel_full.fetch_add(1, Ordering::Relaxed);
                // Err only when the reporter is gone: after shutdown, nothing can write it.
                let _ = self.sender.send(record);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    pub fn send_event(&self, event: Event) {
        self.send(Record::Event(event));
    }

    /// How many sends found the channel full and had to wait.
    pub fn channel_full(&self) -> u64 {
        self.channel_full.load(Ordering::Relaxed)
    }

    /// Returns once everything sent before this call is written to the file (or the reporter
    /// is gone, or [`FLUSH_PATIENCE`] passed). The reporter keeps running.
    pub fn flush(&self) {
        let (done, written) = bounded(1);
        if self.sender.send(Record::Flush(done)).is_ok()
            && written.recv_timeout(FLUSH_PATIENCE).is_err()
        {
            eprintln!(
                "rzgate: the event reporter did not confirm a flush within {} s",
                FLUSH_PATIENCE.as_secs()
            );
        }
    }

    /// Writes out everything queued so far and stops the thread. Idempotent.
    pub fn shutdown(&self) {
        let thread = self
            .thread
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        if let Some(thread) = thread {
            let _ = self.sender.send(Record::End);
            if thread.join().is_err() {
                eprintln!(
                    "rzgate: the event reporter thread panicked; the events file may be incomplete"
                );
            }
        }
    }
}

fn write_records(receiver: Receiver<Record>, out: impl Write) {
    let mut out = BufWriter::new(out);
    let mut failed = false;
    for record in receiver.iter() {
        let line = match &record {
            Record::Event(event) => serde_json::to_vec(event),
            Record::Json(value) => serde_json::to_vec(value),
            Record::Flush(done) => {
                if !failed {
                    if let Err(err) = out.flush() {
                        eprintln!(
                            "rzgate: writing the events file failed: {err}; later events are lost"
                        );
                        failed = true;
                    }
                }
                let _ = done.send(());
                continue;
            }
            Record::End => break,
        };
        if failed {
            continue;
        }
        let written = match line {
            Ok(mut line) => {
                line.push(b'\n');
                out.write_all(&line)
            }
            Err(err) => Err(io::Error::other(err)),
        };
        let flushed = match written {
            Ok(()) if receiver.is_empty() => out.flush(),
            other => other,
        };
        if let Err(err) = flushed {
            eprintln!("rzgate: writing the events file failed: {err}; later events are lost");
            failed = true;
        }
    }
    if !failed {
        if let Err(err) = out.flush() {
            eprintln!("rzgate: writing the events file failed: {err}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    /// A writer into shared memory, optionally slow, so tests can read what was written.
    #[derive(Clone, Default)]
    struct SharedBuffer {
        bytes: Arc<Mutex<Vec<u8>>>,
        delay_per_write: Option<Duration>,
    }

    impl Write for SharedBuffer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Some(delay) = self.delay_per_write {
                std::thread::sleep(delay);
            }
            self.bytes.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl SharedBuffer {
        fn lines(&self) -> Vec<serde_json::Value> {
            let bytes = self.bytes.lock().unwrap();
            String::from_utf8(bytes.clone())
                .unwrap()
                .lines()
                .map(|line| serde_json::from_str(line).unwrap())
                .collect()
        }
    }

    #[test]
    fn every_record_is_one_json_line_in_order() {
        let buffer = SharedBuffer::default();
        let reporter = Reporter::start(buffer.clone(), 16).unwrap();
        for seq in 0..5 {
            reporter.send(Record::Json(
                serde_json::json!({"type": "marker", "seq": seq}),
            ));
        }
        reporter.shutdown();
        let lines = buffer.lines();
        assert_eq!(lines.len(), 5);
        for (seq, line) in lines.iter().enumerate() {
            assert_eq!(line["seq"], seq as u64);
            assert_eq!(line["type"], "marker");
        }
    }

    #[test]
    fn a_full_channel_is_counted_and_nothing_is_lost() {
        // A writer that flushes every line slowly and a channel of 2: senders must wait.
        let buffer = SharedBuffer {
            delay_per_write: Some(Duration::from_millis(2)),
            ..SharedBuffer::default()
        };
        let reporter = Arc::new(Reporter::start(buffer.clone(), 2).unwrap());
        let senders: Vec<_> = (0..4)
            .map(|thread| {
                let reporter = Arc::clone(&reporter);
                std::thread::spawn(move || {
                    for i in 0..25 {
                        reporter.send(Record::Json(
                            serde_json::json!({"type": "t", "seq": thread * 100 + i}),
                        ));
                    }
                })
            })
            .collect();
        for sender in senders {
            sender.join().unwrap();
        }
        reporter.shutdown();
        let mut seqs: Vec<u64> = buffer
            .lines()
            .iter()
            .map(|line| line["seq"].as_u64().unwrap())
            .collect();
        seqs.sort_unstable();
        let expected: Vec<u64> = (0..4)
            .flat_map(|thread| (0..25).map(move |i| thread * 100 + i))
            .collect();
        assert_eq!(seqs, expected);
        assert!(reporter.channel_full() > 0);
    }

    #[test]
    fn flush_returns_once_everything_before_it_is_written() {
        // A slow writer: without the wait, most lines would still be queued.
        let buffer = SharedBuffer {
            delay_per_write: Some(Duration::from_millis(2)),
            ..SharedBuffer::default()
        };
        let reporter = Reporter::start(buffer.clone(), 64).unwrap();
        for seq in 0..20 {
            reporter.send(Record::Json(serde_json::json!({ "seq": seq })));
        }
        reporter.flush();
        assert_eq!(buffer.lines().len(), 20);
        // The reporter keeps running after a flush.
        reporter.send(Record::Json(serde_json::json!({ "seq": 20 })));
        reporter.shutdown();
        assert_eq!(buffer.lines().len(), 21);
        // After shutdown a flush returns at once.
        reporter.flush();
    }

    #[test]
    fn shutdown_is_idempotent_and_later_records_are_ignored() {
        let buffer = SharedBuffer::default();
        let reporter = Reporter::start(buffer.clone(), 4).unwrap();
        reporter.send(Record::Json(serde_json::json!({"seq": 0})));
        reporter.shutdown();
        reporter.shutdown();
        // Must neither block nor panic: the reporter is gone.
        for seq in 1..10 {
            reporter.send(Record::Json(serde_json::json!({ "seq": seq })));
        }
        assert_eq!(buffer.lines().len(), 1);
    }

    #[test]
    fn file_is_flushed_while_running_when_the_channel_drains() {
        let path =
            std::env::temp_dir().join(format!("rzgate-reporter-{}.jsonl", std::process::id()));
        let file = std::fs::File::create(&path).unwrap();
        let reporter = Reporter::start(file, 8).unwrap();
        reporter.send(Record::Json(serde_json::json!({"type": "start", "seq": 0})));
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&path).unwrap();
            if text == "{\"type\":\"start\",\"seq\":0}\n" {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "not flushed: {text:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        reporter.shutdown();
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_failing_writer_does_not_block_senders() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Err(io::Error::other("disk full"))
            }
        }
        let reporter = Reporter::start(Broken, 2).unwrap();
        for seq in 0..100 {
            reporter.send(Record::Json(serde_json::json!({ "seq": seq })));
        }
        reporter.shutdown();
    }
}
