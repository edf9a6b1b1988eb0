//! Gated accesses (`abort` and `suspect` events) as the reports show them: symbolized
//! against the kernel's System.map, with the step texts from the console, and grouped by
//! pc + register + access.
//!
//! Kept out of `cell` so that the classification's tests can symbolize aborts without
//! depending on the module that uses the classification.

use crate::console::ConsoleReport;
use crate::events::{EventsReport, GateEvent, GatedAccessEvent};
use crate::report::{AbortReport, GatedSinceReport, StepRef};
use crate::symbols::SymbolMap;

/// The cell's aborts, symbolized and grouped ([`group`]).
pub fn group_aborts(
    events: &EventsReport,
    symbols: &SymbolMap,
    console: &ConsoleReport,
) -> Vec<AbortReport> {
    group(&events.aborts, &events.gates, symbols, console)
}

/// The cell's suspects, symbolized and grouped like its aborts but on their own: the root
/// suspect is the cell's first suspect, whatever aborts came before it.
pub fn group_suspects(
    events: &EventsReport,
    symbols: &SymbolMap,
    console: &ConsoleReport,
) -> Vec<AbortReport> {
    group(&events.suspects, &events.gates, symbols, console)
}

/// Symbolizes gated-access events of one class and groups them: the first is the root; a
/// later one with the same pc, register and access is the same access happening again and
/// only raises its group's count. Groups keep the order of their first event. `gates`
/// gives the call chain of the access that gated the module (`gated_since`).
fn group(
    accesses: &[GatedAccessEvent],
    gates: &[GateEvent],
    symbols: &SymbolMap,
    console: &ConsoleReport,
) -> Vec<AbortReport> {
    let mut ordered: Vec<&GatedAccessEvent> = accesses.iter().collect();
    ordered.sort_by_key(|e| e.seq);
    let mut groups: Vec<AbortReport> = Vec::new();
    for event in ordered {
        let register = event.register_name();
        if let Some(group) = groups
            .iter_mut()
            .find(|g| g.pc == event.pc && g.register == register && g.access == event.access)
        {
            group.count += 1;
            continue;
        }
        // The mailbox reads 0 until the script's first step: boot and initial probes.
        let step_ref = |n: u32| StepRef {
            n,
            text: console.step_text(n).map(str::to_string).or_else(|| {
                (n == 0).then(|| "before the test's first step (boot, initial probes)".into())
            }),
        };
        let mut notes = Vec::new();
        let pc = symbols.symbolize(event.pc);
        notes.extend(pc.note.clone().map(|n| format!("pc: {n}")));
        let call_chain = symbols
            .call_chain(event.pc, &event.frames)
            .into_iter()
            .map(|s| {
                notes.extend(s.note.map(|n| format!("frame: {n}")));
                s.text
            })
            .collect();
        let gated_since = event.gated_since.as_ref().map(|since| GatedSinceReport {
            seq: since.seq,
            pc: since.pc,
            symbol: since.pc.map(|pc| symbols.symbolize(pc).text),
            step: since.step.map(step_ref),
            register: since.register.clone(),
            call_chain: since
                .seq
                .and_then(|seq| gates.iter().find(|g| g.seq == seq))
                .map(|gate| {
                    let gate_pc = gate.pc.or(since.pc).unwrap_or(0);
                    symbols
                        .call_chain(gate_pc, &gate.frames)
                        .into_iter()
                        .map(|s| s.text)
                        .collect()
                })
                .unwrap_or_default(),
        });
        groups.push(AbortReport {
            device: event.device.clone(),
            register,
            soc_addr: event.soc_addr,
            guest_addr: event.guest_addr,
            access: event.access.clone(),
            size: event.size,
            value: event.value,
            pc: event.pc,
            symbol: pc.text,
            function: pc.function,
            call_chain,
            unwind: event.unwind.clone(),
            gated_by: event.gated_by.clone(),
            step: event.step.map(step_ref),
            gated_since,
            count: 1,
            root: groups.is_empty(),
            first_seq: event.seq,
            notes,
            diverted: event.diverted,
            serror: event.serror.clone(),
        });
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn an_abort_before_the_first_step_says_so() {
        let events = r#"{"type":"abort","seq":1,"device":"adc","register":"ADM0","offset":0,"soc_addr":268795904,"access":"read","pc":18446603338374971412,"step":0,"gated_by":[],"gated_since":null,"frames":[],"unwind":"end"}"#;
        let console = ConsoleReport::parse("");
        let aborts = group_aborts(
            &EventsReport::parse(events),
            &SymbolMap::parse(testdata::SYSTEM_MAP),
            &console,
        );
        let step = aborts[0].step.as_ref().unwrap();
        assert_eq!(step.n, 0);
        assert!(step
            .text
            .as_deref()
            .unwrap()
            .contains("before the test's first step"));
        assert_eq!(aborts[0].gated_since, None);
    }

    #[test]
    fn gate_frames_become_the_gating_call_chain() {
        // 18446603338373988496 = devres_release_all+0x90 in the fixture map.
        let events = testdata::PREFIX_ADC_UNBIND_EVENTS.replace(
            "\"register\":\"CLK_ON_ADC\",\"soc_addr\":285280552}",
            "\"register\":\"CLK_ON_ADC\",\"soc_addr\":285280552,\"frames\":[18446603338373988496]}",
        );
        let aborts = group_aborts(
            &EventsReport::parse(&events),
            &SymbolMap::parse(testdata::SYSTEM_MAP),
            &ConsoleReport::parse(""),
        );
        let since = aborts[0].gated_since.as_ref().unwrap();
        assert_eq!(since.call_chain, vec!["devres_release_all+0x90"]);
    }
}
