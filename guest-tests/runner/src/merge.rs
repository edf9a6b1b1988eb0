//! The `merge` command: the reports of `run --shard 1/N` .. `N/N` (one CI job each) become
//! the one report an unsharded run would have written: the same cells in the same order,
//! the same counts and verdicts; only the times differ (`wall_s` is the longest shard's).
//!
//! The shards must fit together, or nothing is written: every shard of the same N exactly
//! once, the same selection and settings, and each cell in the shard its position assigns
//! it to ([`Shard::has`]), present once, as a finished cell or as not run. A shard that was
//! interrupted (SIGTERM at a CI timeout) still fits: its unfinished cells stay not run and
//! the merged run is marked interrupted.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use crate::cli::MergeArgs;
use crate::report::{self, CellReport, NotRunCell, RunReport, Shard};
use crate::run::write_run_reports;

/// Exit status: 0 when every cell ran and matched, 1 otherwise (as `run`), 2 when the
/// reports cannot be merged.
pub fn command(args: &MergeArgs) -> Result<u8> {
    let mut shards = Vec::new();
    for path in &args.reports {
        shards.push((path.clone(), RunReport::load(path)?));
    }
    let merged = merge(shards)?;
    write_run_reports(&merged, &args.out)?;
    print!("{}", report::render_table(&merged));
    println!("reports: {}", args.out.join("report.md").display());
    Ok(if merged.all_ok() { 0 } else { 1 })
}

fn shard_of(path: &Path, report: &RunReport) -> Result<Shard> {
    report.summary.shard.ok_or_else(|| {
        anyhow::anyhow!(
            "{}: summary.shard is missing: not the report of a `run --shard I/N`",
            path.display()
        )
    })
}

/// The merged report; an error names the file and what does not fit.
pub fn merge(mut shards: Vec<(PathBuf, RunReport)>) -> Result<RunReport> {
    let Some((first_path, first)) = shards.first() else {
        bail!("no reports to merge");
    };
    let first_shard = shard_of(first_path, first)?;
    let (first_path, first) = (first_path.clone(), first.clone());
    let total = first_shard.total;
    let mut by_index: Vec<Option<usize>> = vec![None; total as usize];
    for (position, (path, report)) in shards.iter().enumerate() {
        let shard = shard_of(path, report)?;
        if shard.total != total {
            bail!(
                "{}: summary.shard is {shard}, but {} is shard {} of {total}",
                path.display(),
                first_path.display(),
                first_shard.index
            );
        }
        let slot = &mut by_index[shard.index as usize - 1];
        if let Some(other) = slot {
            bail!(
                "{} and {} are both shard {shard}",
                shards[*other].0.display(),
                path.display()
            );
        }
        *slot = Some(position);
        same_settings(&first_path, &first, path, report)?;
    }
    let missing: Vec<String> = (1..=total)
        .filter(|&index| by_index[index as usize - 1].is_none())
        .map(|index| format!("{index}/{total}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "shard {} missing: pass the report.json of every shard of {total}",
            missing.join(", ")
        );
    }
    // Shard order, so that merged_from reads 1/N .. N/N.
    shards.sort_by_key(|(path, report)| shard_of(path, report).map_or(0, |s| s.index));

    let (kernels, tests) = (&first.summary.kernels, &first.summary.tests);
    let position = |path: &Path, kernel: &str, test: &str| -> Result<usize> {
        let k = kernels.iter().position(|k| k == kernel);
        let t = tests.iter().position(|t| t == test);
        match (k, t) {
            (Some(k), Some(t)) => Ok(k * tests.len() + t),
            _ => bail!(
                "{}: the cell {kernel}/{test} is not in the selection (summary.kernels x summary.tests)",
                path.display()
            ),
        }
    };
    let mut finished: Vec<Option<CellReport>> = vec![None; kernels.len() * tests.len()];
    let mut not_run: Vec<Option<NotRunCell>> = vec![None; kernels.len() * tests.len()];
    let mut summary = first.summary.clone();
    let mut merged_from = Vec::new();
    for (path, report) in shards {
        let shard = shard_of(&path, &report)?;
        let check = |kernel: &str, test: &str, taken: bool| -> Result<usize> {
            let at = position(&path, kernel, test)?;
            if !shard.has(at) {
                bail!(
                    "{}: the cell {kernel}/{test} belongs to another shard than {shard}",
                    path.display()
                );
            }
            if taken {
                bail!(
                    "{}: the cell {kernel}/{test} is there twice",
                    path.display()
                );
            }
            Ok(at)
        };
        for cell in report.cells {
            let at = position(&path, &cell.kernel, &cell.test)?;
            let taken = finished[at].is_some() || not_run[at].is_some();
            check(&cell.kernel, &cell.test, taken)?;
            finished[at] = Some(cell);
        }
        for cell in report.not_run {
            let at = position(&path, &cell.kernel, &cell.test)?;
            let taken = finished[at].is_some() || not_run[at].is_some();
            check(&cell.kernel, &cell.test, taken)?;
            not_run[at] = Some(cell);
        }
        for at in (0..finished.len()).filter(|&at| shard.has(at)) {
            if finished[at].is_none() && not_run[at].is_none() {
                bail!(
                    "{}: shard {shard} lacks the cell {}/{} (neither in cells nor in not_run)",
                    path.display(),
                    kernels[at / tests.len()],
                    tests[at % tests.len()]
                );
            }
        }
        let s = &report.summary;
        summary.wall_s = summary.wall_s.max(s.wall_s);
        summary.jobs = summary.jobs.max(s.jobs);
        if s.interrupted && !summary.interrupted {
            summary.interrupted = true;
            summary.interrupted_by.clone_from(&s.interrupted_by);
        }
        merged_from.push(path.display().to_string());
    }
    summary.shard = None;
    summary.merged_from = merged_from;
    let mut merged = RunReport {
        cells: finished.into_iter().flatten().collect(),
        not_run: not_run.into_iter().flatten().collect(),
        summary,
    };
    merged.recount();
    Ok(merged)
}

/// Shards of one run share the selection and the settings that decide verdicts.
fn same_settings(a_path: &Path, a: &RunReport, b_path: &Path, b: &RunReport) -> Result<()> {
    let (a, b) = (&a.summary, &b.summary);
    let differs: Option<&str> = if a.kernels != b.kernels {
        Some("kernels")
    } else if a.tests != b.tests {
        Some("tests")
    } else if a.repeat != b.repeat {
        Some("repeat")
    } else if a.on_abort != b.on_abort {
        Some("on_abort")
    } else if a.temp_c != b.temp_c {
        Some("temp_c")
    } else if a.adc != b.adc {
        Some("adc")
    } else {
        None
    };
    match differs {
        Some(field) => bail!(
            "{} and {} are not shards of one run: their summary.{field} differ",
            a_path.display(),
            b_path.display()
        ),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::Outcome;
    use crate::report::tests::{cell, sample_report};

    /// The sample run (2 kernels x 2 tests) as shard `index` of `total` would report it.
    fn shard(index: u32, total: u32) -> (PathBuf, RunReport) {
        let mut report = sample_report();
        let shard = Shard { index, total };
        let (kernels, tests) = (report.summary.kernels.clone(), report.summary.tests.clone());
        report.cells.retain(|c| {
            let k = kernels.iter().position(|k| *k == c.kernel).unwrap();
            let t = tests.iter().position(|t| *t == c.test).unwrap();
            shard.has(k * tests.len() + t)
        });
        report.summary.shard = Some(shard);
        report.summary.wall_s = index as f64;
        report.recount();
        (PathBuf::from(format!("shard{index}/report.json")), report)
    }

    /// The sample run's cells in the order an unsharded run reports them (kernel-major).
    fn unsharded() -> RunReport {
        let mut report = sample_report();
        let (kernels, tests) = (report.summary.kernels.clone(), report.summary.tests.clone());
        report.cells.sort_by_key(|c| {
            let k = kernels.iter().position(|k| *k == c.kernel).unwrap();
            k * tests.len() + tests.iter().position(|t| *t == c.test).unwrap()
        });
        report
    }

    #[test]
    fn shards_merge_into_the_unsharded_report() {
        for total in 1..=5 {
            let shards: Vec<_> = (1..=total).rev().map(|i| shard(i, total)).collect();
            let merged = merge(shards).unwrap();
            let mut expected = unsharded();
            // Only the times and the provenance differ.
            expected.summary.wall_s = total as f64;
            expected.summary.merged_from = (1..=total)
                .map(|i| format!("shard{i}/report.json"))
                .collect();
            assert_eq!(merged, expected, "{total} shards");
        }
    }

    #[test]
    fn an_interrupted_shard_merges_with_its_cells_not_run() {
        let (path, mut two) = shard(2, 2);
        // Shard 2 has upstream/adc-unbind and prefix/adc-unbind; the second did not finish.
        let unfinished = two.cells.pop().unwrap();
        two.not_run.push(NotRunCell {
            kernel: unfinished.kernel.clone(),
            test: unfinished.test.clone(),
            expected: unfinished.expected,
        });
        two.summary.interrupted = true;
        two.summary.interrupted_by = Some("SIGTERM".into());
        two.recount();
        let merged = merge(vec![shard(1, 2), (path, two)]).unwrap();
        assert_eq!(merged.cells.len(), 3);
        assert_eq!(merged.not_run.len(), 1);
        assert_eq!(merged.not_run[0].name(), "prefix/adc-unbind");
        assert!(merged.summary.interrupted);
        assert_eq!(merged.summary.interrupted_by.as_deref(), Some("SIGTERM"));
        assert_eq!(merged.summary.not_run, 1);
        assert!(!merged.all_ok());
        assert!(!merged.cells.iter().any(|c| c.name() == "prefix/adc-unbind"));
    }

    fn merge_error(shards: Vec<(PathBuf, RunReport)>) -> String {
        format!("{:#}", merge(shards).unwrap_err())
    }

    #[test]
    fn shards_that_do_not_fit_are_refused_by_name() {
        assert!(merge_error(vec![shard(1, 3), shard(3, 3)]).contains("shard 2/3 missing"));
        assert!(merge_error(vec![shard(1, 2), shard(1, 2), shard(2, 2)])
            .contains("shard1/report.json and shard1/report.json are both shard 1/2"));
        assert!(merge_error(vec![shard(1, 2), shard(2, 3)])
            .contains("shard2/report.json: summary.shard is 2/3"));
        let mut plain = sample_report();
        plain.summary.shard = None;
        assert!(merge_error(vec![("plain.json".into(), plain)])
            .contains("plain.json: summary.shard is missing"));

        let (path, mut other) = shard(2, 2);
        other.summary.temp_c = 30.0;
        assert!(merge_error(vec![shard(1, 2), (path, other)])
            .contains("are not shards of one run: their summary.temp_c differ"));

        // A cell in the wrong shard, a cell twice, a cell missing, an unknown cell.
        let (path, mut two) = shard(2, 2);
        two.cells
            .push(cell("upstream", "boot", Outcome::Clean, Outcome::Clean));
        assert!(merge_error(vec![shard(1, 2), (path, two)])
            .contains("the cell upstream/boot belongs to another shard than 2/2"));
        let (path, mut two) = shard(2, 2);
        let again = two.cells[0].clone();
        two.cells.push(again);
        assert!(merge_error(vec![shard(1, 2), (path, two)]).contains("is there twice"));
        let (path, mut two) = shard(2, 2);
        two.cells.pop();
        assert!(merge_error(vec![shard(1, 2), (path, two)])
            .contains("lacks the cell prefix/adc-unbind"));
        let (path, mut two) = shard(2, 2);
        two.cells[0].test = "melt".into();
        assert!(merge_error(vec![shard(1, 2), (path, two)])
            .contains("the cell upstream/melt is not in the selection"));
        assert!(merge_error(vec![]).contains("no reports"));
    }
}
