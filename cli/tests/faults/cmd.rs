//! Running the real `strata` binary with a timeout, its output captured in files (a pipe could
//! fill up and stall a child that nobody reads while we wait for it).

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_strata");

/// One finished (or killed) run of the binary.
#[derive(Debug, Clone)]
pub struct Ran {
    /// The arguments, for reports.
    pub args: Vec<String>,
    /// The exit code; `None` if a signal ended it (or the timeout did).
    pub code: Option<i32>,
    /// Killed because it ran past the timeout.
    pub timed_out: bool,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl Ran {
    pub fn ok(&self) -> bool {
        !self.timed_out && self.code == Some(0)
    }

    /// A panic (exit code 101, "panicked" on stderr) or death by a signal (an abort, a crash).
    pub fn panicked(&self) -> bool {
        !self.timed_out
            && (self.code == Some(101) || self.code.is_none() || self.stderr.contains("panicked"))
    }

    /// The first line of stderr.
    pub fn error_line(&self) -> &str {
        self.stderr.lines().next().unwrap_or("")
    }

    /// `volumes --json`, say: the subcommand and its flags without the paths.
    pub fn short(&self) -> String {
        self.args
            .iter()
            .map(|a| {
                if a.starts_with('/') {
                    Path::new(a)
                        .file_name()
                        .map_or_else(|| a.clone(), |n| n.to_string_lossy().into_owned())
                } else {
                    a.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

static RUNS: AtomicU64 = AtomicU64::new(0);

/// Runs `strata args` with stdin empty; stdout and stderr go through files in `io_dir`.
pub fn run(args: &[String], io_dir: &Path, timeout: Duration) -> Ran {
    let n = RUNS.fetch_add(1, Ordering::Relaxed);
    let out_path = io_dir.join(format!("run-{n}.out"));
    let err_path = io_dir.join(format!("run-{n}.err"));
    let out = File::create(&out_path).expect("create stdout file");
    let err = File::create(&err_path).expect("create stderr file");
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("spawn strata");
    let started = Instant::now();
    let mut pause = Duration::from_millis(1);
    let (status, timed_out): (Option<ExitStatus>, bool) = loop {
        match child.try_wait().expect("wait for strata") {
            Some(status) => break (Some(status), false),
            None if started.elapsed() >= timeout => {
                // Our own child, by its handle.
                let _ = child.kill();
                let _ = child.wait();
                break (None, true);
            }
            None => {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(20));
            }
        }
    };
    let stdout = std::fs::read(&out_path).unwrap_or_default();
    let stderr =
        String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned();
    let _ = std::fs::remove_file(&out_path);
    let _ = std::fs::remove_file(&err_path);
    Ran {
        args: args.to_vec(),
        code: status.and_then(|s| s.code()),
        timed_out,
        stdout,
        stderr,
    }
}

/// Runs `strata args` and panics (the suite's setup is broken) unless it succeeds.
pub fn must(args: &[String], io_dir: &Path) -> Vec<u8> {
    let ran = run(args, io_dir, Duration::from_secs(120));
    assert!(
        ran.ok(),
        "setup command `strata {}` failed ({:?}, timed out: {}): {}",
        args.join(" "),
        ran.code,
        ran.timed_out,
        ran.stderr
    );
    ran.stdout
}

/// Arguments as owned strings.
pub fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|p| (*p).to_string()).collect()
}
