//! The guest DTB: QEMU's own `virt` tree plus the RZ/G3S nodes from the SoC description.
//!
//! QEMU dumps the tree of exactly the machine the cells boot (`-M virt,dumpdtb=...` with
//! the cells' CPU, SMP and memory options), dtc decompiles it, the SoC description's
//! fragment (a second `/ { ... };` block, which dtc merges into the first) is appended,
//! and dtc compiles the result. The fragment needs the GIC's node path for its
//! `interrupt-parent`, which is found in the decompiled tree rather than assumed, since
//! QEMU names the node after its address (`/intc@8000000`).
//!
//! The `virt` devices the guest kernel has no driver for are deleted from the tree
//! ([`UNUSED_VIRT_NODES`]): each was a device to create at every boot and a node for every
//! run of the DT selftest to skip (about 50 ms of forks each under TCG), and none is on an
//! RZ/G3S. QEMU still emulates them; the guest is not told.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use crate::fsutil;
use crate::inputs::Toolchain;
use crate::qemu;
use crate::selftest;

/// Generates the DTB at `out` (and its source next to it, `out` with `.dts`, for
/// reading). Both are written to temporary files and renamed: never half-written.
///
/// With the DT selftest's `compatible_list` (see [`selftest`]), `/chosen` also gets the
/// lines of it this tree can match.
pub fn generate(
    toolchain: &Toolchain,
    soc_path: &Path,
    out: &Path,
    selftest_list: Option<&str>,
) -> Result<()> {
    let dtc = toolchain.dtc()?;
    let soc = rzgate_core::registry::load(soc_path).map_err(|e| {
        anyhow::anyhow!(
            "cannot load the SoC description {}: {e}",
            soc_path.display()
        )
    })?;

    let out_dir = fsutil::parent_dir(out);
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let scratch = tempfile::Builder::new()
        .prefix(".rzgate-dtb-")
        .tempdir_in(out_dir)
        .with_context(|| format!("cannot create a scratch directory in {}", out_dir.display()))?;

    let virt_dtb = scratch.path().join("virt.dtb");
    let mut dump = Command::new(&toolchain.qemu);
    dump.args(toolchain.datadir_args())
        .args(qemu::machine_args(Some(&virt_dtb)));
    run_tool(&mut dump, "QEMU (dumping the virt DTB)")?;
    if !virt_dtb.is_file() {
        bail!("QEMU exited without writing {}", virt_dtb.display());
    }

    let mut decompile = Command::new(dtc);
    decompile
        .args(["-q", "-I", "dtb", "-O", "dts"])
        .arg(&virt_dtb);
    let virt_dts = run_tool(&mut decompile, "dtc (decompiling the virt DTB)")?;
    let virt_dts = String::from_utf8(virt_dts).context("dtc printed a non-UTF-8 tree")?;

    let gic = find_gic_path(&virt_dts)?;
    let deletions: String = unused_virt_nodes(&virt_dts, &gic)
        .iter()
        .map(|(path, why)| format!("/delete-node/ &{{{path}}}; /* {why} */\n"))
        .collect();
    let mut dts = format!(
        "{virt_dts}\n/* virt devices the guest kernel does not drive */\n\
         {deletions}\n/* RZ/G3S nodes from {} (interrupt parent {gic}) */\n{}\n",
        soc_path.display(),
        soc.dt_fragment(&gic)
    );
    // The deleted nodes' compatibles are still in the text: the lines they keep change no
    // answer of the selftest, which only asks about the compatibles the guest sees.
    if let Some(lines) =
        selftest_list.and_then(|list| selftest::lines_for(list, &selftest::dt_compatibles(&dts)))
    {
        dts.push_str(&selftest::chosen_fragment(&lines));
    }
    let dts_path = scratch.path().join("rzgate.dts");
    std::fs::write(&dts_path, &dts)?;

    let compiled = scratch.path().join("rzgate.dtb");
    let mut compile = Command::new(dtc);
    compile
        .args(["-q", "-I", "dts", "-O", "dtb", "-o"])
        .arg(&compiled)
        .arg(&dts_path);
    run_tool(&mut compile, "dtc (compiling the RZ/G3S tree)").with_context(|| {
        format!(
            "the SoC fragment does not compile on top of QEMU's tree; the source is kept at {}",
            keep_failed_source(&dts, out).display()
        )
    })?;

    fsutil::write_atomic(&out.with_extension("dts"), dts.as_bytes())?;
    fsutil::rename_into_place(&compiled, out)?;
    Ok(())
}

/// Saves a tree that did not compile next to the output, for the error message.
fn keep_failed_source(dts: &str, out: &Path) -> std::path::PathBuf {
    let path = out.with_extension("failed.dts");
    let _ = fsutil::write_atomic(&path, dts.as_bytes());
    path
}

/// Runs a tool to completion; its stdout on success, its stderr in the error otherwise.
fn run_tool(command: &mut Command, what: &str) -> Result<Vec<u8>> {
    let output = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot start {what}: {:?}", command.get_program()))?;
    if !output.status.success() {
        bail!(
            "{what} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(output.stdout)
}

/// Nodes of QEMU's `virt` tree (children of the root, by name without unit address) that
/// the guest kernel has no driver for, and why they can go.
pub const UNUSED_VIRT_NODES: &[(&str, &str)] = &[
    (
        "virtio_mmio",
        "virtio-mmio transport: no virtio device attached, no virtio driver",
    ),
    ("flash", "pflash: the guest boots from -kernel and -initrd"),
    (
        "fw-cfg",
        "QEMU's firmware configuration interface: for firmware, not this kernel",
    ),
    ("pcie", "PCIe host bridge: no PCI in the guest kernel"),
    ("pl031", "RTC: no RTC class in the guest kernel"),
    (
        "pl061",
        "GPIO controller: no GPIO driver in the guest kernel",
    ),
    (
        "gpio-keys",
        "the power key on the PL061: the guest powers off through PSCI",
    ),
    (
        "platform-bus",
        "container for sysbus devices created at run time: none are",
    ),
    ("pmu", "PMU: no perf events in the guest kernel"),
];

/// The GIC's children that go too: the GICv2m MSI frame serves only PCIe.
const UNUSED_GIC_CHILD: (&str, &str) = ("v2m", "GICv2m MSI frame: only PCIe uses it");

/// The paths (with the reason) of the nodes of a decompiled tree that
/// [`UNUSED_VIRT_NODES`] and [`UNUSED_GIC_CHILD`] name: children of the root indented by
/// one tab, children of the GIC (`gic`, a root child) by two.
pub fn unused_virt_nodes(dts: &str, gic: &str) -> Vec<(String, &'static str)> {
    let base_name = |name: &str| name.split('@').next().unwrap_or(name).to_string();
    let mut unused = Vec::new();
    let mut root_child = String::new();
    for line in dts.lines() {
        let depth = line.len() - line.trim_start_matches('\t').len();
        let Some(name) = line.trim().strip_suffix(" {") else {
            continue;
        };
        let name = name.rsplit_once(": ").map_or(name, |(_, n)| n);
        match depth {
            1 => {
                root_child = format!("/{name}");
                if let Some((_, why)) = UNUSED_VIRT_NODES
                    .iter()
                    .find(|(unused_name, _)| *unused_name == base_name(name))
                {
                    unused.push((root_child.clone(), *why));
                }
            }
            2 if root_child == gic && base_name(name) == UNUSED_GIC_CHILD.0 => {
                unused.push((format!("{gic}/{name}"), UNUSED_GIC_CHILD.1));
            }
            _ => {}
        }
    }
    unused
}

/// The path of the interrupt controller in a decompiled tree: the node with an
/// `interrupt-controller` property whose `compatible` names a GICv2 (`arm,cortex-a15-gic`,
/// QEMU's default) or GICv3 (`arm,gic-v3`).
///
/// dtc's decompiled output has one statement a line (`name {`, `prop = ...;`, `};`),
/// which is all this reader relies on.
pub fn find_gic_path(dts: &str) -> Result<String> {
    struct Node {
        name: String,
        interrupt_controller: bool,
        gic_compatible: bool,
    }
    let mut stack: Vec<Node> = Vec::new();
    for line in dts.lines() {
        let line = line.trim();
        if let Some(open) = line.strip_suffix('{') {
            if line.contains('=') {
                continue;
            }
            let name = open.trim();
            // Labels (`intc: intc@8000000`) are not part of the path.
            let name = name.rsplit_once(": ").map_or(name, |(_, n)| n).trim();
            stack.push(Node {
                name: name.to_string(),
                interrupt_controller: false,
                gic_compatible: false,
            });
        } else if line.starts_with("};") {
            let Some(node) = stack.pop() else {
                bail!("unbalanced `}};` in the decompiled tree");
            };
            if node.interrupt_controller && node.gic_compatible {
                let mut path: Vec<&str> = stack
                    .iter()
                    .skip(1) // the root, `/`
                    .map(|n| n.name.as_str())
                    .collect();
                path.push(&node.name);
                return Ok(format!("/{}", path.join("/")));
            }
        } else if let Some(node) = stack.last_mut() {
            if line == "interrupt-controller;" {
                node.interrupt_controller = true;
            } else if line.starts_with("compatible =") || line.starts_with("compatible=") {
                node.gic_compatible =
                    line.contains("\"arm,cortex-a15-gic\"") || line.contains("\"arm,gic-v3\"");
            }
        }
    }
    bail!("no GIC node (interrupt-controller with compatible arm,cortex-a15-gic or arm,gic-v3) in QEMU's virt tree")
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIRT_V2: &str = r#"/dts-v1/;

/ {
	interrupt-parent = <0x8002>;
	#size-cells = <0x02>;
	compatible = "linux,dummy-virt";

	pl011@9000000 {
		interrupts = <0x00 0x01 0x04>;
		compatible = "arm,pl011\0arm,primecell";
	};

	intc@8000000 {
		phandle = <0x8002>;
		reg = <0x00 0x8000000 0x00 0x10000 0x00 0x8010000 0x00 0x10000>;
		compatible = "arm,cortex-a15-gic";
		ranges;
		#size-cells = <0x02>;
		#address-cells = <0x02>;
		interrupt-controller;
		#interrupt-cells = <0x03>;

		v2m@8020000 {
			phandle = <0x8003>;
			reg = <0x00 0x8020000 0x00 0x1000>;
			msi-controller;
			compatible = "arm,gic-v2m-frame";
		};
	};

	cpus {
		cpu@0 {
			compatible = "arm,cortex-a55";
		};
	};
};
"#;

    #[test]
    fn finds_the_unused_virt_nodes_by_name_at_their_depth_only() {
        let dts = "/dts-v1/;\n\n/ {\n\tvirtio_mmio@a000000 {\n\t\tcompatible = \"virtio,mmio\";\n\t};\n\n\tvirtio_mmio@a000200 {\n\t};\n\n\tpl011@9000000 {\n\t\tvirtio_mmio@1 {\n\t\t};\n\t\tv2m@1 {\n\t\t};\n\t};\n\tgpio-keys {\n\t\tpoweroff {\n\t\t};\n\t};\n\tpmu {\n\t};\n\tpmux {\n\t};\n\tintc@8000000 {\n\t\tv2m@8020000 {\n\t\t};\n\t};\n};\n";
        let paths: Vec<String> = unused_virt_nodes(dts, "/intc@8000000")
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(
            paths,
            [
                "/virtio_mmio@a000000",
                "/virtio_mmio@a000200",
                "/gpio-keys",
                "/pmu",
                "/intc@8000000/v2m@8020000"
            ]
        );
    }

    #[test]
    fn keeps_what_the_guest_needs_of_qemu_s_tree() {
        let kept: Vec<(String, &str)> = unused_virt_nodes(VIRT_V2, "/intc@8000000");
        assert_eq!(
            kept,
            [("/intc@8000000/v2m@8020000".to_string(), UNUSED_GIC_CHILD.1)]
        );
    }

    #[test]
    fn finds_qemu_gicv2() {
        assert_eq!(find_gic_path(VIRT_V2).unwrap(), "/intc@8000000");
    }

    #[test]
    fn finds_nested_gicv3_with_label() {
        let dts = "/ {\n\tsoc {\n\t\tgic: interrupt-controller@8000000 {\n\t\t\tcompatible = \"arm,gic-v3\";\n\t\t\tinterrupt-controller;\n\t\t};\n\t};\n};\n";
        assert_eq!(
            find_gic_path(dts).unwrap(),
            "/soc/interrupt-controller@8000000"
        );
    }

    #[test]
    fn an_interrupt_controller_that_is_no_gic_does_not_count() {
        let dts =
            "/ {\n\tgpio {\n\t\tcompatible = \"arm,pl061\";\n\t\tinterrupt-controller;\n\t};\n};\n";
        assert!(find_gic_path(dts).is_err());
    }
}
