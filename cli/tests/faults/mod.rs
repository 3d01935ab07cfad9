//! The damage suite's parts: the workload, the recorded state, the damage cases, running and
//! judging one, and the report.

pub mod cases;
pub mod check;
pub mod cmd;
pub mod layout;
pub mod report;
pub mod rng;
pub mod state;
pub mod workload;

use std::path::PathBuf;
use std::time::Duration;

/// What the environment asks of a run.
#[derive(Debug, Clone)]
pub struct Config {
    /// `STRATA_SEED` (decimal or `0x` hex), else drawn from the clock.
    pub seed: u64,
    /// `STRATA_FAULTS_LONG=1`: every record boundary and field, more offsets, every stale copy.
    pub long: bool,
    /// `STRATA_FAULTS_REPORT_ONLY=1`: print everything, assert nothing.
    pub report_only: bool,
    /// `STRATA_FAULTS_ONLY=text`: run only the cases whose id contains `text`.
    pub only: Option<String>,
    /// `STRATA_FAULTS_KEEP=dir`: move the damaged copy of every case that is not exact there.
    pub keep: Option<PathBuf>,
    /// `STRATA_FAULTS_JOBS=n`: cases run at once (default 2).
    pub jobs: usize,
    /// `STRATA_FAULTS_TIMEOUT_SECS=n`: a command running longer is a hang (default 20).
    pub timeout: Duration,
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0" && v != "false")
}

fn parse_seed(text: &str) -> u64 {
    let t = text.trim();
    let parsed = match t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => t.parse::<u64>(),
    };
    parsed.unwrap_or_else(|_| panic!("STRATA_SEED={text:?} is not a number"))
}

impl Config {
    pub fn from_env() -> Self {
        let seed = match std::env::var("STRATA_SEED") {
            Ok(text) if !text.trim().is_empty() => parse_seed(&text),
            _ => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                rng::Rng::new(nanos ^ u64::from(std::process::id())).next_u64()
            }
        };
        let number = |name: &str, default: u64| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .filter(|&n| n > 0)
                .unwrap_or(default)
        };
        Config {
            seed,
            long: flag("STRATA_FAULTS_LONG"),
            report_only: flag("STRATA_FAULTS_REPORT_ONLY"),
            only: std::env::var("STRATA_FAULTS_ONLY")
                .ok()
                .filter(|v| !v.is_empty()),
            keep: std::env::var_os("STRATA_FAULTS_KEEP")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from),
            jobs: number("STRATA_FAULTS_JOBS", 2) as usize,
            timeout: Duration::from_secs(number("STRATA_FAULTS_TIMEOUT_SECS", 20)),
        }
    }
}
