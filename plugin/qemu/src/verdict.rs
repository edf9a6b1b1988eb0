//! `verdict=stdout|stderr`: the plugin's record on QEMU's own output, for a lab (LAVA) that
//! reads nothing but the QEMU process's output (docs/contracts.md "The verdict stream").
//!
//! ```text
//! # rzgate-begin                                   at load, before the guest runs
//! rzgate-event: {"type":"start",...}               every event, as in the events file
//! ...
//! rzgate-event: {"type":"summary",...}
//! not ok 1 rzgate.no-gated-access # aborts=3       after the summary (QEMU's exit)
//! # rzgate-end
//! ```
//!
//! The verdict and the end marker come after the summary, which the plugin writes when QEMU
//! exits: a guest that panics (QEMU ends through `panic=-1 -no-reboot`) or is halted still
//! ends its stream, so a lab's monitor sees the end and the cell stays a test result. Only
//! a QEMU or plugin crash leaves the stream without its end.
//!
//! The events file is written as without this argument; the stream is a copy made by the
//! reporter thread ([`Tee`]), one whole line (or several) per write, so that a line never
//! mixes with another writer's inside it. The guest's console is another writer of the same
//! output: a guest line that is half printed when an event line comes is continued after
//! it; a reader finds the prefix anywhere in a line (docs/contracts.md says how).

use rzgate_core::config::ConfigError;
use std::io::{self, ErrorKind, Write};
use std::time::{Duration, Instant};

pub const KEY: &str = "verdict";
pub const BEGIN: &str = "# rzgate-begin";
pub const END: &str = "# rzgate-end";
pub const EVENT_PREFIX: &str = "rzgate-event: ";
/// The KTAP description of the plugin's verdict line.
pub const VERDICT_NAME: &str = "rzgate.no-gated-access";

/// Where the stream goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Takes `verdict=...` out of the plugin arguments. rzgate-core's parser does not know the
/// key: the stream is the glue's business (it writes to QEMU's file descriptors), the
/// models never see it.
pub fn take_argument(arguments: &[String]) -> Result<(Vec<String>, Option<Stream>), ConfigError> {
    let mut rest = Vec::with_capacity(arguments.len());
    let mut stream = None;
    for argument in arguments {
        let Some(value) = argument
            .split_once('=')
            .filter(|(key, _)| key.trim() == KEY)
            .map(|(_, value)| value)
        else {
            rest.push(argument.clone());
            continue;
        };
        if stream.is_some() {
            return Err(ConfigError::Duplicate { key: KEY.into() });
        }
        stream = Some(match value {
            "stdout" => Stream::Stdout,
            "stderr" => Stream::Stderr,
            _ => {
                return Err(ConfigError::BadValue {
                    key: KEY.into(),
                    value: value.into(),
                    expected: "expected stdout or stderr (where the begin marker, the events, \
                               the verdict and the end marker go)"
                        .into(),
                })
            }
        });
    }
    Ok((rest, stream))
}

/// The verdict line for a summary that counts `aborts`.
pub fn verdict_line(aborts: u64) -> String {
    let status = if aborts == 0 { "ok" } else { "not ok" };
    format!("{status} 1 {VERDICT_NAME} # aborts={aborts}")
}

/// QEMU's stdout or stderr, through a descriptor of our own: QEMU closes its stdio
/// character device's descriptors (fd 0 and 1 under `-serial stdio` or `-nographic`)
/// before the plugin's exit callback writes the summary, the verdict and the end marker
/// (measured with QEMU 11.1: that write got EBADF).
pub struct StdStream(std::fs::File);

/// How long a write waits for a full pty or pipe to drain. QEMU may have made the
/// descriptor non-blocking (a pty's stdin and stdout share one file description), so a full
/// buffer is `WouldBlock`, not a wait.
const DRAIN_PATIENCE: Duration = Duration::from_secs(10);
const DRAIN_BACKOFF: Duration = Duration::from_millis(1);

impl StdStream {
    /// Duplicates the descriptor (at load, while QEMU still has it open).
    pub fn open(stream: Stream) -> io::Result<StdStream> {
        use std::os::fd::AsFd;
        let fd = match stream {
            Stream::Stdout => io::stdout().as_fd().try_clone_to_owned()?,
            Stream::Stderr => io::stderr().as_fd().try_clone_to_owned()?,
        };
        Ok(StdStream(std::fs::File::from(fd)))
    }
}

impl Write for StdStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }

    fn write_all(&mut self, mut buf: &[u8]) -> io::Result<()> {
        let deadline = Instant::now() + DRAIN_PATIENCE;
        while !buf.is_empty() {
            match self.0.write(buf) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                // A back-off, not a synchronisation: nothing tells us when the reader
                // drains the buffer short of poll(2), which would be FFI.
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(DRAIN_BACKOFF)
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The events file, and a copy of each complete line on the stream (when there is one).
pub struct Tee<F: Write, S: Write> {
    file: F,
    stream: Option<S>,
    /// The part of the last line not yet complete.
    pending: Vec<u8>,
    stream_failed: bool,
}

impl<F: Write, S: Write> Tee<F, S> {
    /// Writes the begin marker to the stream at once (QEMU is loading the plugin).
    pub fn new(file: F, stream: Option<S>) -> Tee<F, S> {
        let mut tee = Tee {
            file,
            stream,
            pending: Vec::new(),
            stream_failed: false,
        };
        tee.send(format!("{BEGIN}\n").into_bytes());
        tee
    }

    fn send(&mut self, bytes: Vec<u8>) {
        if self.stream_failed || bytes.is_empty() {
            return;
        }
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        if let Err(error) = stream.write_all(&bytes).and_then(|()| stream.flush()) {
            // The events file still gets everything; the stream's reader is gone.
            self.stream_failed = true;
            eprintln!("rzgate: writing the verdict stream failed: {error}; the events file is still written");
        }
    }

    /// The stream's text for the complete lines in `pending`.
    fn complete_lines(&mut self) -> Vec<u8> {
        let Some(last) = self.pending.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let lines: Vec<u8> = self.pending.drain(..=last).collect();
        let mut out = Vec::with_capacity(lines.len() + 64);
        for line in lines.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            out.extend_from_slice(EVENT_PREFIX.as_bytes());
            out.extend_from_slice(line);
            out.push(b'\n');
            if let Some(aborts) = summary_aborts(line) {
                out.extend_from_slice(format!("{}\n{END}\n", verdict_line(aborts)).as_bytes());
            }
        }
        out
    }
}

/// The `aborts` of a summary event line; `None` for other events. A summary whose count
/// cannot be read says 0 aborts would be a lie: it counts as one.
fn summary_aborts(line: &[u8]) -> Option<u64> {
    if !line.starts_with(br#"{"type":"summary""#) {
        return None;
    }
    let aborts = serde_json::from_slice::<serde_json::Value>(line)
        .ok()
        .and_then(|summary| summary.get("aborts").and_then(serde_json::Value::as_u64));
    Some(aborts.unwrap_or(1))
}

impl<F: Write, S: Write> Write for Tee<F, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all(buf)?;
        if self.stream.is_some() && !self.stream_failed {
            self.pending.extend_from_slice(buf);
            let lines = self.complete_lines();
            self.send(lines);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_argument_is_taken_out_and_the_rest_kept_in_order() {
        let (rest, stream) =
            take_argument(&args(&["soc=a.yaml", "verdict=stdout", "events=e"])).unwrap();
        assert_eq!(rest, args(&["soc=a.yaml", "events=e"]));
        assert_eq!(stream, Some(Stream::Stdout));
        let (rest, stream) = take_argument(&args(&["soc=a", "events=e"])).unwrap();
        assert_eq!((rest.len(), stream), (2, None));
        assert_eq!(
            take_argument(&args(&["verdict=stderr"])).unwrap().1,
            Some(Stream::Stderr)
        );
    }

    #[test]
    fn bad_and_duplicate_values_are_named() {
        let error = take_argument(&args(&["verdict=serial"])).unwrap_err();
        let message = error.to_string();
        assert!(
            message.contains("`serial`") && message.contains("`verdict`"),
            "{message}"
        );
        assert!(message.contains("stdout or stderr"), "{message}");
        let error = take_argument(&args(&["verdict=stdout", "verdict=stderr"])).unwrap_err();
        assert!(error.to_string().contains("given twice"), "{error}");
        // Another key that merely contains the word is not this one.
        let (rest, stream) = take_argument(&args(&["verdicts=x"])).unwrap();
        assert_eq!((rest, stream), (args(&["verdicts=x"]), None));
    }

    fn text(bytes: &[u8]) -> String {
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[test]
    fn events_are_copied_whole_and_the_summary_ends_the_stream() {
        let mut tee = Tee::new(Vec::new(), Some(Vec::new()));
        assert_eq!(text(tee.stream.as_ref().unwrap()), "# rzgate-begin\n");
        // Chunks cut inside lines, as a BufWriter hands them over.
        let events = "{\"type\":\"start\",\"seq\":0}\n{\"type\":\"abort\",\"seq\":1}\n{\"type\":\"summary\",\"seq\":2,\"aborts\":1}\n";
        for chunk in events.as_bytes().chunks(7) {
            tee.write_all(chunk).unwrap();
        }
        assert_eq!(text(&tee.file), events, "the file is unchanged");
        assert_eq!(
            text(tee.stream.as_ref().unwrap()),
            "# rzgate-begin\n\
             rzgate-event: {\"type\":\"start\",\"seq\":0}\n\
             rzgate-event: {\"type\":\"abort\",\"seq\":1}\n\
             rzgate-event: {\"type\":\"summary\",\"seq\":2,\"aborts\":1}\n\
             not ok 1 rzgate.no-gated-access # aborts=1\n\
             # rzgate-end\n"
        );
    }

    #[test]
    fn a_clean_summary_is_ok_and_an_unreadable_one_is_not() {
        assert_eq!(verdict_line(0), "ok 1 rzgate.no-gated-access # aborts=0");
        assert_eq!(summary_aborts(br#"{"type":"summary","aborts":0}"#), Some(0));
        assert_eq!(
            summary_aborts(br#"{"type":"summary","serialize_error":"x"}"#),
            Some(1)
        );
        assert_eq!(summary_aborts(br#"{"type":"marker","seq":3}"#), None);
    }

    #[test]
    fn without_a_stream_only_the_file_is_written() {
        let mut tee: Tee<Vec<u8>, Vec<u8>> = Tee::new(Vec::new(), None);
        tee.write_all(b"{\"type\":\"summary\",\"aborts\":0}\n")
            .unwrap();
        assert_eq!(text(&tee.file), "{\"type\":\"summary\",\"aborts\":0}\n");
        assert!(tee.pending.is_empty());
    }

    #[test]
    fn a_failing_stream_does_not_fail_the_file() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let mut tee = Tee::new(Vec::new(), Some(Closed));
        tee.write_all(b"{\"type\":\"start\"}\n").unwrap();
        assert!(tee.stream_failed);
        assert_eq!(text(&tee.file), "{\"type\":\"start\"}\n");
    }
}
