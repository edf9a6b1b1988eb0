//! The outcome of a cell: `clean`, `abort` or `error`, as report.json spells it.
//!
//! A leaf module on purpose: the matrix (expectations), the classification, the reports and
//! `validate` all speak this vocabulary, and keeping it apart from the modules that compute
//! or render it keeps the module graph free of cycles (`main.rs` has a test for that). The
//! rules that decide a cell's outcome are in [`crate::classify`].

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Clean,
    Abort,
    Error,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Clean => "clean",
            Outcome::Abort => "abort",
            Outcome::Error => "error",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
