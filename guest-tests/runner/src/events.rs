//! Parsing of the plugin's event file (JSON Lines, docs/contracts.md "Events").
//!
//! Each line is one object with `"type"` and `"seq"`. The runner is a reader of a contract
//! that may grow, so parsing is lenient: unknown types and unknown fields are ignored, and
//! fields the runner does not strictly need are optional. Two kinds of damage are tolerated
//! and counted rather than fatal:
//!
//! - a **truncated last line** (QEMU killed mid-write, e.g. on a timeout): the file simply
//!   ends inside an object;
//! - a **malformed line** elsewhere (not JSON, or JSON that does not fit its type): noted,
//!   so a plugin bug shows in the report instead of silently dropping an abort.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    Start(StartEvent),
    Marker(MarkerEvent),
    Gate(GateEvent),
    // Boxed: by far the largest events.
    Abort(Box<GatedAccessEvent>),
    /// A gated access the silicon tolerates: reported, never an abort.
    Suspect(Box<GatedAccessEvent>),
    FaultFired(FaultFiredEvent),
    Halt(HaltEvent),
    WatchdogReset(WatchdogResetEvent),
    UserSpaceMapped(UserSpaceMappedEvent),
    Summary(SummaryEvent),
    /// A type this runner does not know (the contract grew): ignored.
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct StartEvent {
    #[serde(default)]
    pub soc: Option<String>,
    #[serde(default)]
    pub on_abort: Option<String>,
    #[serde(default)]
    pub temp_c: Option<f64>,
    #[serde(default)]
    pub adc: Vec<u64>,
    #[serde(default)]
    pub faults: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct MarkerEvent {
    pub seq: u64,
    pub step: u32,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct GateEvent {
    pub seq: u64,
    pub device: String,
    pub gated: bool,
    #[serde(default)]
    pub reasons: Vec<String>,
    #[serde(default)]
    pub pc: Option<u64>,
    #[serde(default)]
    pub step: Option<u32>,
    #[serde(default)]
    pub register: Option<String>,
    /// Return addresses of the access that changed the gate, innermost first: an abort's
    /// `gated_since` shows the call chain that gated the device (e.g. through
    /// dev_pm_domain_detach).
    #[serde(default)]
    pub frames: Vec<u64>,
    #[serde(default)]
    pub unwind: Option<String>,
}

/// An abort's `serror` field: how `on_abort=serror` entered the guest's exception path.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct SerrorDivert {
    /// "serror" | "synchronous-external-abort" (absent from older plugins: "serror").
    #[serde(default = "default_exception")]
    pub exception: String,
    /// "faithful" | "fallback" | "refused".
    pub mode: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub esr: Option<u64>,
    /// The read's address handed to the kernel as FAR (synchronous external aborts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub far: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a plugin before the synchronous external abort always diverted into.
fn default_exception() -> String {
    "serror".to_string()
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct GatedSince {
    #[serde(default)]
    pub seq: Option<u64>,
    #[serde(default)]
    pub pc: Option<u64>,
    #[serde(default)]
    pub step: Option<u32>,
    #[serde(default)]
    pub register: Option<String>,
}

/// An `abort` or a `suspect` event: both carry the same fields (docs/contracts.md); only
/// the class differs. An abort is an access the silicon answers with a bus error (clock
/// stopped and bus in module stop); a suspect one it tolerates (a stopped clock with MSTOP
/// clear, a held reset). `diverted` and `serror` only ever appear on aborts.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct GatedAccessEvent {
    pub seq: u64,
    pub device: String,
    /// `None` when the access hit an offset the SoC description does not name.
    #[serde(default)]
    pub register: Option<String>,
    #[serde(default)]
    pub offset: Option<u64>,
    pub soc_addr: u64,
    #[serde(default)]
    pub guest_addr: Option<u64>,
    pub access: String,
    #[serde(default)]
    pub size: Option<u32>,
    #[serde(default)]
    pub value: Option<u64>,
    pub pc: u64,
    #[serde(default)]
    pub step: Option<u32>,
    #[serde(default)]
    pub gated_by: Vec<String>,
    #[serde(default)]
    pub gated_since: Option<GatedSince>,
    /// Return addresses, innermost first.
    #[serde(default)]
    pub frames: Vec<u64>,
    #[serde(default)]
    pub unwind: Option<String>,
    /// `on_abort=serror` diverted the guest at this abort.
    #[serde(default)]
    pub diverted: bool,
    #[serde(default)]
    pub serror: Option<SerrorDivert>,
}

impl GatedAccessEvent {
    /// The register's name, or its offset when the SoC description has no name for it.
    pub fn register_name(&self) -> String {
        match (&self.register, self.offset) {
            (Some(name), _) => name.clone(),
            (None, Some(offset)) => format!("offset {offset:#x}"),
            (None, None) => format!("{:#x}", self.soc_addr),
        }
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct FaultFiredEvent {
    pub seq: u64,
    pub fault: String,
    #[serde(default)]
    pub pc: Option<u64>,
    #[serde(default)]
    pub step: Option<u32>,
}

/// `user_space=watch`: the kernel stored the first page-table entry that gives user space
/// the window; `pc` and `frames` are that kernel store's.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct UserSpaceMappedEvent {
    pub seq: u64,
    pub pc: u64,
    #[serde(default)]
    pub frames: Vec<u64>,
}

/// A device reset the machine (the watchdog bit); QEMU then ended as under `-no-reboot`.
/// Times in ns of the plugin's bus clock (host monotonic).
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct WatchdogResetEvent {
    pub seq: u64,
    pub device: String,
    #[serde(default)]
    pub reason: String,
    /// The last start or ping.
    pub armed_ns: u64,
    /// What the guest programmed, from `armed_ns` to the reset.
    pub timeout_ns: u64,
    pub due_ns: u64,
    /// When the plugin saw it.
    pub seen_ns: u64,
}

impl WatchdogResetEvent {
    /// How long the unpinged watchdog ran before the machine reset (ms).
    pub fn ran_ms(&self) -> f64 {
        self.seen_ns.saturating_sub(self.armed_ns) as f64 / 1e6
    }
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct HaltEvent {
    pub seq: u64,
    #[serde(default)]
    pub abort_seq: Option<u64>,
}

#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
pub struct SummaryEvent {
    #[serde(default)]
    pub accesses: BTreeMap<String, u64>,
    #[serde(default)]
    pub aborts: u64,
    /// Absent from files written before the plugin knew suspects: 0 then.
    #[serde(default)]
    pub suspects: u64,
    #[serde(default)]
    pub faults_armed: Vec<String>,
    #[serde(default)]
    pub faults_fired: Vec<String>,
    #[serde(default)]
    pub channel_full: u64,
}

/// Everything one cell's event file says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventsReport {
    /// The file did not exist (the plugin never started, or was refused).
    pub missing: bool,
    pub start: Option<StartEvent>,
    pub markers: Vec<MarkerEvent>,
    pub gates: Vec<GateEvent>,
    pub aborts: Vec<GatedAccessEvent>,
    /// Accesses the silicon tolerates; they never decide an outcome.
    pub suspects: Vec<GatedAccessEvent>,
    pub faults_fired: Vec<FaultFiredEvent>,
    pub halt: Option<HaltEvent>,
    pub watchdog_reset: Option<WatchdogResetEvent>,
    pub user_space_mapped: Option<UserSpaceMappedEvent>,
    pub summary: Option<SummaryEvent>,
    /// Non-empty lines read.
    pub lines: usize,
    /// The last line was cut off mid-object.
    pub truncated_last_line: bool,
    /// Lines that are not valid events, as `line N: why`.
    pub malformed: Vec<String>,
}

impl EventsReport {
    /// Reads a cell's event file. A missing file is not an error here: it is evidence
    /// (the plugin did not run), recorded as `missing`.
    pub fn load(path: &Path) -> std::io::Result<EventsReport> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(EventsReport::parse(&String::from_utf8_lossy(&bytes))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(EventsReport {
                missing: true,
                ..EventsReport::default()
            }),
            Err(e) => Err(e),
        }
    }

    pub fn parse(text: &str) -> EventsReport {
        let mut report = EventsReport::default();
        let ends_with_newline = text.ends_with('\n');
        let lines: Vec<&str> = text.lines().collect();
        for (index, line) in lines.iter().enumerate() {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            report.lines += 1;
            let is_last = index + 1 == lines.len();
            let value: serde_json::Value = match serde_json::from_str(line) {
                Ok(value) => value,
                Err(e) => {
                    if is_last && !ends_with_newline && e.is_eof() {
                        report.truncated_last_line = true;
                    } else {
                        report
                            .malformed
                            .push(format!("line {}: not JSON ({e})", index + 1));
                    }
                    continue;
                }
            };
            match serde_json::from_value::<Event>(value) {
                Ok(event) => report.add(event),
                Err(e) => report
                    .malformed
                    .push(format!("line {}: not a valid event ({e})", index + 1)),
            }
        }
        report
    }

    fn add(&mut self, event: Event) {
        match event {
            Event::Start(e) => self.start = Some(e),
            Event::Marker(e) => self.markers.push(e),
            Event::Gate(e) => self.gates.push(e),
            Event::Abort(e) => self.aborts.push(*e),
            Event::Suspect(e) => self.suspects.push(*e),
            Event::FaultFired(e) => self.faults_fired.push(e),
            Event::Halt(e) => self.halt = Some(e),
            Event::WatchdogReset(e) => self.watchdog_reset = Some(e),
            Event::UserSpaceMapped(e) => self.user_space_mapped = Some(e),
            Event::Summary(e) => self.summary = Some(e),
            Event::Unknown => {}
        }
    }

    /// Faults the plugin armed: from the summary, else from the start event (the summary
    /// is missing when QEMU did not exit normally).
    pub fn faults_armed(&self) -> Vec<String> {
        match (&self.summary, &self.start) {
            (Some(summary), _) => summary.faults_armed.clone(),
            (None, Some(start)) => start.faults.clone(),
            (None, None) => Vec::new(),
        }
    }

    /// Faults that fired: the union of the summary's list and the `fault_fired` events, in
    /// first-seen order.
    pub fn faults_fired(&self) -> Vec<String> {
        let mut fired: Vec<String> = Vec::new();
        let from_summary = self.summary.iter().flat_map(|s| s.faults_fired.iter());
        let from_events = self.faults_fired.iter().map(|e| &e.fault);
        for name in from_summary.chain(from_events) {
            if !fired.contains(name) {
                fired.push(name.clone());
            }
        }
        fired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const PREFIX_ADC_UNBIND: &str = r#"{"type":"start","seq":0,"soc":"r9a08g045","window":{"guest_base":2113929216,"soc_base":268435456,"size":33554432},"on_abort":"continue","temp_c":42.0,"adc":[100,500,1000,1500,2000,2500,3000,4000],"faults":[]}
{"type":"marker","seq":1,"step":1,"vcpu":0}
{"type":"gate","seq":2,"device":"adc","gated":true,"reasons":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"pc":18446603336223408128,"vcpu":0,"step":1,"register":"CLK_ON_ADC","soc_addr":285278504}
{"type":"abort","seq":3,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"guest_addr":2114289664,"access":"read","size":4,"value":4294967295,"vcpu":0,"pc":18446603336223408660,"step":1,"gated_by":["ADC pclk off: CLK_MON 0x728 bit 1 = 0"],"gated_since":{"seq":2,"pc":18446603336223408128,"step":1,"register":"CLK_ON_ADC"},"frames":[18446603336223408776],"unwind":"end","future_field":1}
{"type":"user_space_mapped","seq":4,"vcpu":0,"pc":18446603338369697548,"descriptor":101330993763319759,"descriptor_at":18446462598751282432,"frames":[18446603338369697436],"unwind":"end"}
{"type":"something_new","seq":4}
{"type":"summary","seq":5,"accesses":{"cpg":100,"adc":20,"tsu":5,"mailbox":1},"aborts":1,"faults_armed":[],"faults_fired":[],"channel_full":0}
"#;

    #[test]
    fn parses_every_known_type_and_ignores_unknown_ones() {
        let r = EventsReport::parse(PREFIX_ADC_UNBIND);
        assert_eq!(r.lines, 7);
        let mapped = r.user_space_mapped.as_ref().unwrap();
        assert_eq!((mapped.seq, mapped.frames.len()), (4, 1));
        assert!(r.start.is_some());
        assert_eq!(r.markers.len(), 1);
        assert_eq!(r.gates.len(), 1);
        assert_eq!(r.aborts.len(), 1);
        let abort = &r.aborts[0];
        assert_eq!(abort.register_name(), "ADM0");
        assert_eq!(abort.soc_addr, 0x1005_8000);
        assert_eq!(abort.gated_since.as_ref().unwrap().seq, Some(2));
        assert_eq!(r.summary.as_ref().unwrap().accesses["adc"], 20);
        assert!(!r.truncated_last_line);
        assert!(r.malformed.is_empty(), "{:?}", r.malformed);
    }

    #[test]
    fn truncated_last_line_is_counted_not_fatal() {
        let text = "{\"type\":\"start\",\"seq\":0}\n{\"type\":\"abort\",\"seq\":1,\"dev";
        let r = EventsReport::parse(text);
        assert!(r.truncated_last_line);
        assert!(r.malformed.is_empty());
        assert_eq!(r.lines, 2);
        assert!(r.aborts.is_empty());
        assert!(r.start.is_some());
    }

    #[test]
    fn malformed_middle_lines_are_noted() {
        let text = "garbage\n{\"type\":\"abort\",\"seq\":1}\n{\"type\":\"halt\",\"seq\":2,\"abort_seq\":1}\n";
        let r = EventsReport::parse(text);
        assert_eq!(r.malformed.len(), 2, "{:?}", r.malformed);
        assert!(r.malformed[0].starts_with("line 1: not JSON"));
        assert!(r.malformed[1].starts_with("line 2: not a valid event"));
        assert_eq!(r.halt.as_ref().unwrap().abort_seq, Some(1));
        assert!(!r.truncated_last_line);
    }

    #[test]
    fn faults_come_from_summary_or_start_and_events() {
        let text = "{\"type\":\"start\",\"seq\":0,\"faults\":[\"adc-sresb-stuck\"]}\n\
                    {\"type\":\"fault_fired\",\"seq\":1,\"fault\":\"adc-sresb-stuck\",\"pc\":1,\"step\":0}\n";
        let r = EventsReport::parse(text);
        assert_eq!(r.faults_armed(), vec!["adc-sresb-stuck"]);
        assert_eq!(r.faults_fired(), vec!["adc-sresb-stuck"]);
        let with_summary = format!(
            "{text}{{\"type\":\"summary\",\"seq\":2,\"faults_armed\":[\"a\"],\"faults_fired\":[\"a\"]}}\n"
        );
        let r = EventsReport::parse(&with_summary);
        assert_eq!(r.faults_armed(), vec!["a"]);
        assert_eq!(r.faults_fired(), vec!["a", "adc-sresb-stuck"]);
    }

    #[test]
    fn serror_fields_of_aborts_and_gate_chains_are_read() {
        let r = EventsReport::parse(crate::testdata::SERROR_EVENTS);
        assert!(r.malformed.is_empty(), "{:?}", r.malformed);
        let abort = &r.aborts[0];
        assert!(abort.diverted);
        let serror = abort.serror.as_ref().unwrap();
        assert_eq!(serror.mode, "faithful");
        assert_eq!(serror.target.as_deref(), Some("do_serror"));
        assert_eq!(serror.esr, Some(0xbe00_0011));
        assert_eq!(r.gates[0].frames.len(), 1);
        assert_eq!(r.gates[0].unwind.as_deref(), Some("end"));
        // Older files: no such fields.
        let r = EventsReport::parse(PREFIX_ADC_UNBIND);
        assert!(!r.aborts[0].diverted && r.aborts[0].serror.is_none());
    }

    #[test]
    fn suspects_are_read_apart_from_aborts() {
        let r = EventsReport::parse(crate::testdata::ABORT_AND_SUSPECT_EVENTS);
        assert!(r.malformed.is_empty(), "{:?}", r.malformed);
        assert_eq!(r.aborts.len(), 1);
        assert_eq!(r.aborts[0].seq, 4);
        let seqs: Vec<u64> = r.suspects.iter().map(|s| s.seq).collect();
        assert_eq!(seqs, vec![3, 6]);
        let suspect = &r.suspects[0];
        assert_eq!(suspect.register_name(), "ADM0");
        assert_eq!(
            suspect.gated_by,
            vec!["ADC pclk off: CLK_MON 0x728 bit 1 = 0"]
        );
        assert_eq!(suspect.gated_since.as_ref().unwrap().seq, Some(2));
        assert_eq!(suspect.frames.len(), 1);
        let summary = r.summary.as_ref().unwrap();
        assert_eq!((summary.aborts, summary.suspects), (1, 2));
    }

    #[test]
    fn an_old_summary_without_suspects_parses_as_none() {
        // Written before the plugin knew suspects: no `suspects` in the summary.
        for old in [PREFIX_ADC_UNBIND, crate::testdata::CLEAN_EVENTS] {
            assert!(!old.contains("suspects"));
            let r = EventsReport::parse(old);
            assert!(r.malformed.is_empty(), "{:?}", r.malformed);
            assert_eq!(r.summary.as_ref().unwrap().suspects, 0);
            assert!(r.suspects.is_empty());
        }
    }

    #[test]
    fn missing_file_is_evidence() {
        let dir = tempfile::tempdir().unwrap();
        let r = EventsReport::load(&dir.path().join("events.jsonl")).unwrap();
        assert!(r.missing);
    }

    #[test]
    fn register_name_falls_back_to_offset() {
        let line = r#"{"type":"abort","seq":1,"device":"adc","offset":64,"soc_addr":268795968,"access":"write","pc":1}"#;
        let r = EventsReport::parse(line);
        assert_eq!(r.aborts[0].register_name(), "offset 0x40");
    }
}
