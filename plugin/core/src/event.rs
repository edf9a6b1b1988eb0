//! Events the plugin reports, serialized to the JSON Lines of docs/contracts.md.
//!
//! Every event carries `seq`, a counter over all events from 0 (see [`crate::bus::Bus::next_seq`]).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::config::{AbortPolicy, Fault, UserSpace};
use crate::gate::GateState;
use crate::soc::Window;

/// One line of the event file; `"type"` comes first.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Start {
        seq: u64,
        soc: String,
        window: Window,
        on_abort: AbortPolicy,
        temp_c: f64,
        adc: [u16; 8],
        faults: Vec<Fault>,
        /// When user space is instrumented (`user_space=`).
        user_space: UserSpace,
    },
    /// The guest wrote the mailbox STEP register.
    Marker {
        seq: u64,
        step: u32,
        vcpu: u32,
    },
    /// A device's gate state changed; pc/vcpu/register name the CPG access that did it.
    Gate {
        seq: u64,
        device: String,
        /// The bus answers the device with an error now (`state` is `bus-error`).
        gated: bool,
        /// `open`, `suspect` (a gate condition fails that the silicon tolerates) or
        /// `bus-error`.
        state: GateState,
        /// Why the device is gated now, in words; empty when it became legal.
        reasons: Vec<String>,
        pc: u64,
        vcpu: u32,
        step: u32,
        register: String,
        soc_addr: u64,
        /// Return addresses of the gating access, innermost first (filled by the glue, as for
        /// an abort: gate changes are rare, and their call chain says who gated the device).
        frames: Vec<u64>,
        /// How the walk of `frames` ended; see [`Abort::unwind`].
        unwind: String,
    },
    Abort(Abort),
    /// An access to a device whose gate fails in a way the silicon tolerates (clock stopped
    /// with MSTOP clear, reset held): it worked, and a driver should not make it. Never an
    /// abort.
    Suspect(Abort),
    FaultFired {
        seq: u64,
        fault: Fault,
        pc: u64,
        step: u32,
    },
    /// A device reset the machine (the watchdog bit): the plugin then ends QEMU the way a
    /// guest reset under `-no-reboot` does. Times are the bus clock's (ns, monotonic host
    /// time since the boot, continuous across a snapshot); `seen_ns - armed_ns` is how long
    /// the unpinged counter ran, `timeout_ns` what the guest programmed.
    WatchdogReset {
        seq: u64,
        device: String,
        reason: String,
        step: u32,
        armed_ns: u64,
        timeout_ns: u64,
        due_ns: u64,
        /// When the plugin saw it (its first check after `due_ns`).
        seen_ns: u64,
    },
    /// Policy `halt` stopped QEMU after abort `abort_seq`.
    Halt {
        seq: u64,
        abort_seq: u64,
    },
    /// The last line, written at exit.
    Summary {
        seq: u64,
        /// Accesses per device name.
        accesses: BTreeMap<String, u64>,
        aborts: u64,
        suspects: u64,
        faults_armed: Vec<Fault>,
        faults_fired: Vec<Fault>,
        /// Events dropped because the reporter's channel was full (the glue sets it, see
        /// [`Event::set_channel_full`]).
        channel_full: u64,
        /// Accesses to offsets no register declares, by `device@offset` (allowed, kept as
        /// written); `window@offset` for window bytes outside every device.
        unmodelled: BTreeMap<String, u64>,
        /// Gate transitions per device.
        gate_events: BTreeMap<String, u64>,
        /// Model counters by device name (the ADC's conversions, ...).
        counters: BTreeMap<String, Value>,
    },
}

impl Event {
    pub fn seq(&self) -> u64 {
        match self {
            Event::Start { seq, .. }
            | Event::Marker { seq, .. }
            | Event::Gate { seq, .. }
            | Event::FaultFired { seq, .. }
            | Event::Halt { seq, .. }
            | Event::WatchdogReset { seq, .. }
            | Event::Summary { seq, .. } => *seq,
            Event::Abort(a) | Event::Suspect(a) => a.seq,
        }
    }

    /// Fills a summary's `channel_full` (events the reporter had to drop); no-op otherwise.
    pub fn set_channel_full(&mut self, dropped: u64) {
        if let Event::Summary { channel_full, .. } = self {
            *channel_full = dropped;
        }
    }

    /// One JSON line without the newline.
    pub fn to_json(&self) -> String {
        // Serializing these plain structs cannot fail (string keys, no non-finite floats
        // except temp_c, which config keeps finite); fall back to a marker, never panic.
        serde_json::to_string(self).unwrap_or_else(|e| {
            format!(
                "{{\"type\":\"error\",\"seq\":{},\"message\":{:?}}}",
                self.seq(),
                e.to_string()
            )
        })
    }
}

/// Read or write, as the abort event spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessKind {
    Read,
    Write,
}

/// The gate event that made a device illegal to access.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct GatedSince {
    pub seq: u64,
    pub pc: u64,
    pub step: u32,
    pub register: String,
}

/// An access to a power-gated module.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Abort {
    pub seq: u64,
    pub device: String,
    /// Register name; `unmodelled@0x..` for an offset the device does not declare.
    pub register: String,
    pub offset: u64,
    pub soc_addr: u64,
    pub guest_addr: u64,
    pub access: AccessKind,
    pub size: u8,
    /// The value the guest stored, or the value its load returned (the bus-error value).
    pub value: u64,
    pub vcpu: u32,
    pub pc: u64,
    pub step: u32,
    pub gated_by: Vec<String>,
    /// `null` when the device has been gated since reset (no gate event made it so).
    pub gated_since: Option<GatedSince>,
    /// Return addresses, innermost first (filled by the glue).
    pub frames: Vec<u64>,
    /// "end" | "depth-limit" | "bad-frame" | "not-captured".
    pub unwind: String,
    /// `on_abort=serror` diverted the faulting vCPU into the guest kernel's SError path at
    /// this abort (only ever the first one: the guest is dead after it). Absent when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub diverted: bool,
    /// `on_abort=serror`: how the divert was made, or why it was not (absent under the other
    /// policies and on the aborts after the first).
    /// Boxed: rare, and it would double the size of every queued event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serror: Option<Box<SerrorDivert>>,
}

/// How `on_abort=serror` entered the guest kernel's exception path (the abort's `serror`
/// field): an SError for a gated write, a synchronous external abort for a gated read.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SerrorDivert {
    /// "serror" (asynchronous SError interrupt) or "synchronous-external-abort" (a
    /// synchronous data abort, DFSC 0x10): what the guest kernel was made to see.
    pub exception: String,
    /// "faithful": a `struct pt_regs` and the entry code's frame records were built on the
    /// stack and the vCPU entered `do_serror` (or `do_mem_abort`), as after the real
    /// exception from EL1; "fallback": the vCPU entered `arm64_serror_panic` (symbols of the
    /// faithful variant missing from the System.map); "refused": the vCPU was not diverted
    /// (see `reason`).
    pub mode: String,
    /// The kernel function the vCPU was sent to, and its address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_addr: Option<u64>,
    /// The ESR passed to the kernel (x1).
    pub esr: u64,
    /// The faulting address passed to the kernel (x0 of `do_mem_abort`: FAR, the
    /// guest-virtual address the read used); synchronous external aborts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub far: Option<u64>,
    /// Guest-virtual address of the `struct pt_regs` built on the stack.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub regs: Option<u64>,
    /// Symbols of the faithful variant the System.map lacks (fallback only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// Why the divert was refused (mode "refused").
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_comes_first_and_names_are_snake_case() {
        let e = Event::FaultFired {
            seq: 3,
            fault: Fault::AdcSresbStuck,
            pc: 0xffff_8000_1000_0000,
            step: 2,
        };
        let json = e.to_json();
        assert!(
            json.starts_with("{\"type\":\"fault_fired\",\"seq\":3,"),
            "{json}"
        );
        assert!(json.contains("\"fault\":\"adc-sresb-stuck\""), "{json}");
        assert!(
            json.contains(&format!("\"pc\":{}", 0xffff_8000_1000_0000u64)),
            "{json}"
        );
    }

    #[test]
    fn abort_serializes_every_contract_field() {
        let a = Event::Abort(Abort {
            seq: 9,
            device: "adc".into(),
            register: "ADM0".into(),
            offset: 0,
            soc_addr: 0x1005_8000,
            guest_addr: 0x7e05_8000,
            access: AccessKind::Read,
            size: 4,
            value: 0xffff_ffff,
            vcpu: 0,
            pc: 0x1234,
            step: 4,
            gated_by: vec!["ADC pclk off: CLK_MON 0x728 bit 1 = 0".into()],
            gated_since: Some(GatedSince {
                seq: 7,
                pc: 0x99,
                step: 4,
                register: "CLK_ON_ADC".into(),
            }),
            frames: vec![],
            unwind: "not-captured".into(),
            diverted: false,
            serror: None,
        });
        let v: serde_json::Value = serde_json::from_str(&a.to_json()).expect("json");
        for key in [
            "type",
            "seq",
            "device",
            "register",
            "offset",
            "soc_addr",
            "guest_addr",
            "access",
            "size",
            "value",
            "vcpu",
            "pc",
            "step",
            "gated_by",
            "gated_since",
            "frames",
            "unwind",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(v["type"], "abort");
        assert_eq!(v["access"], "read");
        assert_eq!(v["soc_addr"], 268795904u64);
        assert_eq!(v["gated_since"]["register"], "CLK_ON_ADC");
    }

    #[test]
    fn gate_carries_its_call_chain() {
        let g = Event::Gate {
            seq: 2,
            device: "adc".into(),
            gated: true,
            state: GateState::BusError,
            reasons: vec!["ADC bus in module stop: MSTOP 0xB68 bit 14 = 1".into()],
            pc: 0x10,
            vcpu: 0,
            step: 1,
            register: "MSTOP_B68".into(),
            soc_addr: 0x1101_0b68,
            frames: vec![0x14, 0x28],
            unwind: "end".into(),
        };
        let v: serde_json::Value = serde_json::from_str(&g.to_json()).expect("json");
        assert_eq!(v["type"], "gate");
        assert_eq!(v["state"], "bus-error");
        assert_eq!(v["frames"], serde_json::json!([0x14, 0x28]));
        assert_eq!(v["unwind"], "end");
    }

    #[test]
    fn a_diverted_abort_says_how_and_others_say_nothing() {
        let mut abort = Abort {
            seq: 9,
            device: "adc".into(),
            register: "ADM0".into(),
            offset: 0,
            soc_addr: 0x1005_8000,
            guest_addr: 0x7e05_8000,
            access: AccessKind::Read,
            size: 4,
            value: 0xffff_ffff,
            vcpu: 0,
            pc: 0x1234,
            step: 1,
            gated_by: vec![],
            gated_since: None,
            frames: vec![],
            unwind: "end".into(),
            diverted: false,
            serror: None,
        };
        let plain = Event::Abort(abort.clone()).to_json();
        assert!(
            !plain.contains("diverted") && !plain.contains("serror"),
            "{plain}"
        );
        abort.diverted = true;
        abort.serror = Some(Box::new(SerrorDivert {
            exception: "serror".into(),
            mode: "faithful".into(),
            target: Some("do_serror".into()),
            target_addr: Some(0xffff_8000_8002_2fa4),
            esr: 0xbe00_0011,
            far: None,
            regs: Some(0xffff_8000_8233_ba20),
            missing: vec![],
            reason: None,
        }));
        let v: serde_json::Value =
            serde_json::from_str(&Event::Abort(abort).to_json()).expect("json");
        assert_eq!(v["diverted"], true);
        assert_eq!(v["serror"]["mode"], "faithful");
        assert_eq!(v["serror"]["esr"], 0xbe00_0011u64);
        assert!(v["serror"].get("reason").is_none() && v["serror"].get("missing").is_none());
    }

    #[test]
    fn start_and_summary_shapes() {
        let s = Event::Start {
            seq: 0,
            soc: "r9a08g045".into(),
            window: Window {
                guest_base: 0x7e00_0000,
                soc_base: 0x1000_0000,
                size: 0x200_0000,
            },
            on_abort: AbortPolicy::Continue,
            temp_c: 25.0,
            adc: [0x400; 8],
            faults: vec![Fault::CpgClkmonStuckAdc],
            user_space: UserSpace::Watch,
        };
        let json = s.to_json();
        assert!(json.contains("\"user_space\":\"watch\""), "{json}");
        assert!(json.starts_with("{\"type\":\"start\",\"seq\":0,\"soc\":\"r9a08g045\",\"window\":{\"guest_base\":2113929216,"), "{json}");
        assert!(
            json.contains("\"on_abort\":\"continue\",\"temp_c\":25.0"),
            "{json}"
        );
        assert!(
            json.contains("\"faults\":[\"cpg-clkmon-stuck-adc\"]"),
            "{json}"
        );
        let mut sum = Event::Summary {
            seq: 5,
            accesses: BTreeMap::new(),
            aborts: 0,
            suspects: 2,
            faults_armed: vec![],
            faults_fired: vec![],
            channel_full: 0,
            unmodelled: BTreeMap::new(),
            gate_events: BTreeMap::new(),
            counters: BTreeMap::from([("adc".to_string(), serde_json::json!({"interrupts": 3}))]),
        };
        sum.set_channel_full(7);
        let json = sum.to_json();
        assert!(
            json.starts_with("{\"type\":\"summary\",\"seq\":5,\"accesses\":{}"),
            "{json}"
        );
        assert!(json.contains("\"channel_full\":7"), "{json}");
        assert!(json.contains("\"aborts\":0,\"suspects\":2"), "{json}");
        assert!(
            json.contains("\"counters\":{\"adc\":{\"interrupts\":3}}"),
            "{json}"
        );
    }

    #[test]
    fn a_suspect_has_the_fields_of_an_abort_under_its_own_type() {
        let a = Abort {
            seq: 4,
            device: "adc".into(),
            register: "ADM0".into(),
            offset: 0,
            soc_addr: 0x1005_8000,
            guest_addr: 0x7d05_8000,
            access: AccessKind::Write,
            size: 4,
            value: 4,
            vcpu: 0,
            pc: 0x1234,
            step: 1,
            gated_by: vec!["ADC reset held: RST_MON 0xA28 bit 0 = 1".into()],
            gated_since: None,
            frames: vec![],
            unwind: "end".into(),
            diverted: false,
            serror: None,
        };
        let v: serde_json::Value =
            serde_json::from_str(&Event::Suspect(a.clone()).to_json()).expect("json");
        let w: serde_json::Value = serde_json::from_str(&Event::Abort(a).to_json()).expect("json");
        assert_eq!(v["type"], "suspect");
        let keys = |x: &serde_json::Value| -> Vec<String> {
            x.as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default()
        };
        assert_eq!(keys(&v), keys(&w));
    }
}
