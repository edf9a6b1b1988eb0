//! DTS text for the SoC's nodes, appended to QEMU's own decompiled `virt` tree.

use std::fmt::Write as _;

use super::{DtClock, DtNode, DtReset, Soc};

/// The GIC binding's interrupt-specifier type for SPIs (dt-bindings/interrupt-controller/arm-gic.h).
const GIC_SPI: u32 = 0;

fn cells64(v: u64) -> String {
    format!("0x{:x} 0x{:x}", v >> 32, v & 0xffff_ffff)
}

fn string_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

fn cell(v: i64) -> String {
    if v < 0 {
        format!("({v})")
    } else {
        v.to_string()
    }
}

pub(super) fn fragment(soc: &Soc, gic_path: &str) -> String {
    let mut s = String::new();
    let w = soc.window();
    let cpg_dt = soc.clock_controller_device().and_then(|d| d.dt.as_ref());

    let _ = writeln!(
        s,
        "/* rzgate: {} nodes generated from {} */",
        soc.name(),
        soc.origin()
    );
    spi_map(&mut s, soc);
    let _ = writeln!(s, "/ {{");

    // no-map: without it Linux maps the carve-out as normal memory and the CPG's
    // devm_ioremap_resource() fails with -EBUSY.
    let _ = writeln!(s, "\treserved-memory {{");
    let _ = writeln!(s, "\t\t#address-cells = <2>;");
    let _ = writeln!(s, "\t\t#size-cells = <2>;");
    let _ = writeln!(s, "\t\tranges;");
    let _ = writeln!(s);
    let _ = writeln!(s, "\t\trzgate-window@{:x} {{", w.guest_base);
    let _ = writeln!(
        s,
        "\t\t\treg = <{} {}>;",
        cells64(w.guest_base),
        cells64(w.size)
    );
    let _ = writeln!(s, "\t\t\tno-map;");
    let _ = writeln!(s, "\t\t}};");
    let _ = writeln!(s, "\t}};");

    // EXTAL and the board's other crystals: `fixed-clock` nodes.
    for f in std::iter::once(soc.extal()).chain(soc.fixed_clocks()) {
        let _ = writeln!(s);
        let _ = writeln!(s, "\t{}: {} {{", f.label, f.node);
        let _ = writeln!(s, "\t\tcompatible = \"fixed-clock\";");
        let _ = writeln!(s, "\t\t#clock-cells = <0>;");
        let _ = writeln!(s, "\t\tclock-frequency = <{}>;", f.frequency);
        let _ = writeln!(s, "\t}};");
    }

    for dev in soc.devices() {
        let Some(dt) = &dev.dt else { continue };
        let guest = w.guest_addr(dev.base);
        let _ = writeln!(s);
        let _ = writeln!(s, "\t{}: {}@{:x} {{", dt.label, dt.node, guest);
        let _ = writeln!(s, "\t\tcompatible = {};", string_list(&dt.compatible));
        if dt.regions.is_empty() {
            let _ = writeln!(s, "\t\treg = <{} {}>;", cells64(guest), cells64(dev.size));
        } else {
            let ranges: Vec<String> = dt
                .regions
                .iter()
                .map(|&(o, n)| format!("<{} {}>", cells64(guest + o), cells64(n)))
                .collect();
            let _ = writeln!(s, "\t\treg = {};", ranges.join(", "));
        }
        if !dev.interrupts.is_empty() {
            for line in &dev.interrupts {
                let _ = writeln!(s, "\t\t/* {} */", spi_note(line));
            }
            let cells: Vec<String> = dev
                .interrupts
                .iter()
                .map(|l| format!("<{GIC_SPI} {} {}>", l.spi, l.flags))
                .collect();
            let _ = writeln!(s, "\t\tinterrupt-parent = <&{{{gic_path}}}>;");
            let _ = writeln!(s, "\t\tinterrupts = {};", cells.join(", "));
            if dt.interrupt_names {
                let names: Vec<String> = dev.interrupts.iter().map(|l| l.name.clone()).collect();
                let _ = writeln!(s, "\t\tinterrupt-names = {};", string_list(&names));
            }
        }
        write_clocks(&mut s, soc, dt, cpg_dt);
        if !dt.resets.is_empty() {
            let cpg_label = cpg_dt.map(|c| c.label.as_str()).unwrap_or("cpg");
            let refs: Vec<String> = dt
                .resets
                .iter()
                .filter_map(|r| match r {
                    DtReset::Cpg(i) => soc
                        .resets()
                        .get(*i)
                        .map(|r| format!("<&{cpg_label} {}>", r.id)),
                    DtReset::Provider { label, cell } => Some(format!("<&{label} {cell}>")),
                })
                .collect();
            let _ = writeln!(s, "\t\tresets = {};", refs.join(", "));
        }
        if !dt.reset_names.is_empty() {
            let _ = writeln!(s, "\t\treset-names = {};", string_list(&dt.reset_names));
        }
        if let Some(pd) = &dt.power_domains {
            let _ = writeln!(s, "\t\tpower-domains = <&{pd}>;");
        }
        if !dt.io_channels.is_empty() {
            let refs: Vec<String> = dt
                .io_channels
                .iter()
                .map(|(label, ch)| format!("<&{label} {ch}>"))
                .collect();
            let _ = writeln!(s, "\t\tio-channels = {};", refs.join(", "));
        }
        if !dt.io_channel_names.is_empty() {
            let _ = writeln!(
                s,
                "\t\tio-channel-names = {};",
                string_list(&dt.io_channel_names)
            );
        }
        for p in &dt.properties {
            let _ = writeln!(s, "\t\t{};", p.trim());
        }
        for c in &dt.children {
            let label = c
                .label
                .as_deref()
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            let _ = writeln!(s, "\n\t\t{label}{} {{", c.node);
            for p in &c.properties {
                let _ = writeln!(s, "\t\t\t{};", p.trim());
            }
            let _ = writeln!(s, "\t\t}};");
        }
        if let Some(child) = &dt.sram_export {
            // no-memory-wc: a plain (device) ioremap, so each store of the sysfs write
            // reaches the window as the kernel issued it.
            let _ = writeln!(s, "\t\tno-memory-wc;");
            let _ = writeln!(s, "\t\t#address-cells = <1>;");
            let _ = writeln!(s, "\t\t#size-cells = <1>;");
            let _ = writeln!(s, "\t\tranges = <0 {} 0x{:x}>;", cells64(guest), dev.size);
            let _ = writeln!(s);
            let _ = writeln!(s, "\t\t{child}@0 {{");
            let _ = writeln!(s, "\t\t\treg = <0 0x{:x}>;", dev.size);
            let _ = writeln!(s, "\t\t\texport;");
            let _ = writeln!(s, "\t\t}};");
        }
        for t in &dev.i2c_targets {
            let Some(tdt) = &t.dt else { continue };
            let _ = writeln!(s);
            match &tdt.label {
                Some(l) => {
                    let _ = writeln!(s, "\t\t{l}: {}@{:x} {{", t.name, t.address);
                }
                None => {
                    let _ = writeln!(s, "\t\t{}@{:x} {{", t.name, t.address);
                }
            }
            let _ = writeln!(s, "\t\t\tcompatible = {};", string_list(&tdt.compatible));
            let _ = writeln!(s, "\t\t\treg = <0x{:x}>;", t.address);
            // The at24 binding's write page (at24.c reads `pagesize`; 1 without it).
            let _ = writeln!(s, "\t\t\tpagesize = <{}>;", t.page_size);
            for p in &tdt.properties {
                let _ = writeln!(s, "\t\t\t{};", p.trim());
            }
            let _ = writeln!(s, "\t\t}};");
        }
        if dt.channel_nodes {
            for ch in 0..dev.channels {
                let _ = writeln!(s);
                let _ = writeln!(s, "\t\tchannel@{ch} {{");
                let _ = writeln!(s, "\t\t\treg = <{ch}>;");
                let _ = writeln!(s, "\t\t}};");
            }
        }
        let _ = writeln!(s, "\t}};");
    }

    if !soc.thermal_zones().is_empty() {
        let _ = writeln!(s);
        let _ = writeln!(s, "\tthermal-zones {{");
        for z in soc.thermal_zones() {
            let _ = writeln!(s, "\t\t{}: {} {{", z.label, z.name);
            let _ = writeln!(
                s,
                "\t\t\tpolling-delay-passive = <{}>;",
                z.polling_delay_passive
            );
            let _ = writeln!(s, "\t\t\tpolling-delay = <{}>;", z.polling_delay);
            let _ = writeln!(s, "\t\t\tthermal-sensors = <&{}>;", z.sensor_label);
            let _ = writeln!(s);
            let _ = writeln!(s, "\t\t\ttrips {{");
            for t in &z.trips {
                match &t.label {
                    Some(l) => {
                        let _ = writeln!(s, "\t\t\t\t{l}: {} {{", t.name);
                    }
                    None => {
                        let _ = writeln!(s, "\t\t\t\t{} {{", t.name);
                    }
                }
                let _ = writeln!(
                    s,
                    "\t\t\t\t\ttemperature = <{}>;",
                    cell(t.temperature.into())
                );
                let _ = writeln!(s, "\t\t\t\t\thysteresis = <{}>;", t.hysteresis);
                let _ = writeln!(s, "\t\t\t\t\ttype = \"{}\";", t.kind.as_str());
                let _ = writeln!(s, "\t\t\t\t}};");
            }
            let _ = writeln!(s, "\t\t\t}};");
            let _ = writeln!(s, "\t\t}};");
        }
        let _ = writeln!(s, "\t}};");
    }

    let _ = writeln!(s, "}};");
    s
}

/// "adi: RZ/G3S SPI 312 -> virt SPI 200 (declared)".
fn spi_note(line: &super::Interrupt) -> String {
    let soc = line
        .soc_spi
        .map_or_else(|| "no SoC SPI".to_string(), |n| format!("SoC SPI {n}"));
    let how = if line.allocated {
        "allocated"
    } else {
        "declared"
    };
    format!("{}: {soc} -> virt SPI {} ({how})", line.name, line.spi)
}

/// The whole interrupt allocation as one comment, so a reader of the DTS sees the budget.
fn spi_map(s: &mut String, soc: &Soc) {
    let lines: Vec<String> = soc
        .devices()
        .iter()
        .flat_map(|d| {
            d.interrupts
                .iter()
                .map(move |l| format!("{} {}", d.name, spi_note(l)))
        })
        .collect();
    if lines.is_empty() {
        return;
    }
    let _ = writeln!(s, "/* rzgate: interrupt lines, SoC SPI -> virt SPI:");
    for l in lines {
        let _ = writeln!(s, " *   {l}");
    }
    let _ = writeln!(s, " */");
}

fn write_clocks(s: &mut String, soc: &Soc, dt: &DtNode, cpg_dt: Option<&DtNode>) {
    if dt.clocks.is_empty() {
        return;
    }
    let cpg_label = cpg_dt.map(|c| c.label.as_str()).unwrap_or("cpg");
    let mod_cell = cpg_dt.and_then(|c| c.module_clock_cell).unwrap_or(1);
    let refs: Vec<String> = dt
        .clocks
        .iter()
        .filter_map(|c| match c {
            DtClock::Extal => Some(format!("<&{}>", soc.extal().label)),
            DtClock::Module(i) => soc
                .clocks()
                .get(*i)
                .map(|clk| format!("<&{cpg_label} {mod_cell} {}>", clk.id)),
            DtClock::Fixed(i) => soc
                .fixed_clocks()
                .get(*i)
                .map(|f| format!("<&{}>", f.label)),
            DtClock::Provider { label, cell } => Some(format!("<&{label} {cell}>")),
        })
        .collect();
    let _ = writeln!(s, "\t\tclocks = {};", refs.join(", "));
    if !dt.clock_names.is_empty() {
        let _ = writeln!(s, "\t\tclock-names = {};", string_list(&dt.clock_names));
    }
}
