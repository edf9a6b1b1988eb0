//! Progress while cells run, on stderr (stdout is kept for the verdict table).
//!
//! On a terminal an indicatif bar shows how far the run is and which cells are running;
//! elsewhere (CI logs) there is no bar, only one plain line per finished cell. Both print
//! that line, so a log reads the same either way.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::outcome::Outcome;
use crate::report::{counted, CellReport};

pub struct Progress {
    bar: Option<ProgressBar>,
    total: usize,
    finished: usize,
    running: Vec<String>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{elapsed_precise} [{bar:30}] {pos}/{len} cells  {wide_msg}",
                )
                .expect("the template is valid")
                .progress_chars("=> "),
            );
            // Ticks keep the elapsed time moving while every running cell is still busy.
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        });
        Progress {
            bar,
            total,
            finished: 0,
            running: Vec::new(),
        }
    }

    pub fn started(&mut self, cell: &str) {
        self.running.push(cell.to_string());
        self.show_running();
    }

    pub fn finished(&mut self, cell: &CellReport, label: &str) {
        self.finished += 1;
        if let Some(index) = self.running.iter().position(|r| r == label) {
            self.running.remove(index);
        }
        let line = finished_line(self.finished, self.total, label, cell);
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                bar.inc(1);
                self.show_running();
            }
            None => eprintln!("{line}"),
        }
    }

    /// A cell the interrupt stopped (or kept from starting).
    pub fn not_run(&mut self, label: &str) {
        if let Some(index) = self.running.iter().position(|r| r == label) {
            self.running.remove(index);
        }
        let line = format!("{label}: not run (the run was interrupted)");
        match &self.bar {
            Some(bar) => {
                bar.println(line);
                self.show_running();
            }
            None => eprintln!("{line}"),
        }
    }

    fn show_running(&self) {
        if let Some(bar) = &self.bar {
            bar.set_message(format!("running: {}", self.running.join(", ")));
        }
    }

    pub fn done(self) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
    }
}

/// `[ 3/32] prefix/adc-unbind: abort (expected abort) 2.41 s` (the label names the cell
/// and, with `--repeat`, the repetition), with the root abort, the number of suspects, the
/// reason of an error and a MISMATCH mark when the outcome is not the expected one.
pub fn finished_line(position: usize, total: usize, label: &str, cell: &CellReport) -> String {
    let width = total.to_string().len();
    let mut line = format!("[{position:>width$}/{total}] {label}: {}", cell.outcome);
    if let Some(expected) = cell.expected {
        line.push_str(&format!(" (expected {expected})"));
    }
    line.push_str(&format!(" {:.2} s", cell.duration_s));
    if !cell.ok {
        line.push_str("  MISMATCH");
    }
    if let Some(root) = cell.root() {
        line.push_str(&format!("  root: {}", root.one_line()));
    }
    // Suspects never change the outcome; the count says that report.md has them.
    if cell.suspect_events > 0 {
        line.push_str(&format!("  {}", counted(cell.suspect_events, "suspect")));
    }
    if cell.outcome == Outcome::Error {
        if let Some(error) = &cell.error {
            line.push_str(&format!("  ({error})"));
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::cell;

    #[test]
    fn plain_line_shape() {
        let c = cell("prefix", "boot", Outcome::Error, Outcome::Clean);
        assert_eq!(
            finished_line(3, 32, "prefix/boot", &c),
            "[ 3/32] prefix/boot: error (expected clean) 1.50 s  MISMATCH  (timeout after 60 s <killed>)"
        );
        let c = cell("prefix", "adc-unbind", Outcome::Abort, Outcome::Abort);
        assert!(finished_line(10, 32, "prefix/adc-unbind", &c).starts_with(
            "[10/32] prefix/adc-unbind: abort (expected abort) 1.50 s  root: adc ADM0 read"
        ));
        let mut c = cell("upstream", "adc-unbind", Outcome::Clean, Outcome::Clean);
        crate::report::tests::add_suspects(&mut c);
        assert_eq!(
            finished_line(4, 32, "upstream/adc-unbind", &c),
            "[ 4/32] upstream/adc-unbind: clean (expected clean) 1.50 s  3 suspects"
        );
    }
}
