//! The acknowledged state of a system, as the reading commands print it, and how a later reading
//! is compared with it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use super::cmd::{self, Ran};
use super::workload::System;

/// One reading command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// `mirror status --json` (opens the system: catches legs up, restores the store from them).
    MirrorStatus,
    Stat,
    Volumes,
    Log,
    Policy,
    Audit,
    /// `export --volume V`, to a file.
    Export(u64),
    /// `mirror scrub --json`.
    MirrorScrub,
}

impl Probe {
    pub fn args(self, dir: &Path, out: &Path) -> Vec<String> {
        let d = dir.display().to_string();
        let parts: Vec<String> = match self {
            Probe::MirrorStatus => cmd::args(&["mirror", "status", &d, "--json"]),
            Probe::Stat => cmd::args(&["stat", &d, "--json"]),
            Probe::Volumes => cmd::args(&["volumes", &d, "--json"]),
            Probe::Log => cmd::args(&["log", &d, "--json"]),
            Probe::Policy => cmd::args(&["policy", "show", &d, "--json"]),
            Probe::Audit => cmd::args(&["audit", &d, "--json"]),
            Probe::Export(v) => {
                let file = self.export_file(out).display().to_string();
                cmd::args(&["export", &d, "--volume", &v.to_string(), "-o", &file])
            }
            Probe::MirrorScrub => cmd::args(&["mirror", "scrub", &d, "--json"]),
        };
        parts
    }

    /// Where [`Probe::Export`] writes its image.
    pub fn export_file(self, out: &Path) -> std::path::PathBuf {
        match self {
            Probe::Export(v) => out.join(format!("volume-{v}.img")),
            _ => out.join("unused"),
        }
    }

    /// Runs the probe; an export's image is read back into `stdout`.
    pub fn run(self, dir: &Path, out: &Path, timeout: Duration) -> Ran {
        let mut ran = cmd::run(&self.args(dir, out), out, timeout);
        if let Probe::Export(_) = self {
            let file = self.export_file(out);
            if ran.ok() {
                ran.stdout = std::fs::read(&file).unwrap_or_default();
            }
            let _ = std::fs::remove_file(&file);
        }
        ran
    }
}

/// The probes of a system, in the order they run: for a mirror, `mirror status` first (the way
/// its legs give back what the store lost), the store's own readings, then a scrub and a second
/// status whose leg states the leg images are judged by.
pub fn probes(mirrored: bool, ids: &[u64]) -> Vec<Probe> {
    let mut out = Vec::new();
    if mirrored {
        out.push(Probe::MirrorStatus);
    }
    out.extend([
        Probe::Stat,
        Probe::Volumes,
        Probe::Log,
        Probe::Policy,
        Probe::Audit,
    ]);
    out.extend(ids.iter().map(|&v| Probe::Export(v)));
    if mirrored {
        out.push(Probe::MirrorScrub);
        out.push(Probe::MirrorStatus);
    }
    out
}

/// What every reading of an undamaged system returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Expected {
    /// `stat --json` without `path` and `recovery`.
    pub stat: Value,
    pub volumes: Value,
    pub log: Value,
    pub policy: Value,
    pub audit: Value,
    /// The volumes `volumes --json` lists.
    pub ids: Vec<u64>,
    pub head: u64,
    pub block_size: u64,
    /// Every volume's exported image.
    pub images: BTreeMap<u64, Vec<u8>>,
}

impl Expected {
    /// The recorded output of a JSON probe.
    pub fn json(&self, probe: Probe) -> Option<&Value> {
        match probe {
            Probe::Stat => Some(&self.stat),
            Probe::Volumes => Some(&self.volumes),
            Probe::Log => Some(&self.log),
            Probe::Policy => Some(&self.policy),
            Probe::Audit => Some(&self.audit),
            _ => None,
        }
    }
}

/// `stat --json` without what legitimately differs from one run to the next: the directory it
/// was given and what recovery did when opening.
pub fn comparable_stat(mut stat: Value) -> Value {
    if let Some(object) = stat.as_object_mut() {
        object.remove("path");
        object.remove("recovery");
    }
    stat
}

fn parse(ran: &Ran) -> Value {
    serde_json::from_slice(&ran.stdout).unwrap_or_else(|e| {
        panic!(
            "`strata {}` printed invalid JSON ({e}): {}",
            ran.short(),
            String::from_utf8_lossy(&ran.stdout)
        )
    })
}

/// Reads the undamaged system `sys` with every probe and keeps what they print. Panics if any
/// fails, or (for a mirror) if a leg is not healthy and identical to the head.
pub fn record(sys: &System, io: &Path) -> Expected {
    let timeout = Duration::from_secs(120);
    let must = |probe: Probe| {
        let ran = probe.run(&sys.dir, io, timeout);
        assert!(
            ran.ok(),
            "recording {}: `strata {}` failed: {}",
            sys.name,
            ran.short(),
            ran.stderr
        );
        ran
    };
    if sys.mirrored {
        let status = parse(&must(Probe::MirrorStatus));
        assert_eq!(status["degraded"], false, "{}: {status}", sys.name);
    }
    let stat = parse(&must(Probe::Stat));
    assert_eq!(
        stat["recovery"],
        serde_json::json!({
            "journalBytesTruncated": 0,
            "headBytesTruncated": 0,
            "headBytesLost": 0,
            "sealedTailsRebuilt": 0,
            "sealsRedone": 0
        }),
        "{}: the undamaged store needed recovery: {stat}",
        sys.name
    );
    let head = stat["head"].as_u64().expect("stat head");
    let block_size = stat["blockSize"].as_u64().expect("stat block_size");
    let volumes = parse(&must(Probe::Volumes));
    let ids: Vec<u64> = volumes
        .as_array()
        .expect("volumes array")
        .iter()
        .map(|v| v["id"].as_u64().expect("volume id"))
        .collect();
    let images = ids
        .iter()
        .map(|&v| (v, must(Probe::Export(v)).stdout))
        .collect();
    let expected = Expected {
        stat: comparable_stat(stat),
        volumes,
        log: parse(&must(Probe::Log)),
        policy: parse(&must(Probe::Policy)),
        audit: parse(&must(Probe::Audit)),
        ids,
        head,
        block_size,
        images,
    };
    if sys.mirrored {
        let scrub = parse(&must(Probe::MirrorScrub));
        assert_eq!(scrub["detected"], 0, "{}: {scrub}", sys.name);
        let head_image = &expected.images[&head];
        for leg in &sys.legs {
            let image = leg_image(leg, head_image.len());
            assert!(
                &image == head_image,
                "{}: leg {} does not hold the head",
                sys.name,
                leg.display()
            );
        }
    }
    expected
}

/// A leg's `primary.img`, zero-extended (or cut) to `len` bytes: the file may be shorter than
/// the volume, the rest reading as zeros.
pub fn leg_image(leg: &Path, len: usize) -> Vec<u8> {
    let mut image = std::fs::read(leg.join("primary.img")).unwrap_or_default();
    image.resize(len, 0);
    image
}

fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 100 {
        let cut: String = text.chars().take(100).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Where `actual` first differs from `expected`, as `path: expected X, got Y`.
pub fn json_diff(expected: &Value, actual: &Value) -> Option<String> {
    diff_at("", expected, actual)
}

fn diff_at(path: &str, expected: &Value, actual: &Value) -> Option<String> {
    match (expected, actual) {
        (Value::Array(e), Value::Array(a)) => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                if let Some(d) = diff_at(&format!("{path}[{i}]"), x, y) {
                    return Some(if e.len() == a.len() {
                        d
                    } else {
                        format!(
                            "{} items, expected {}; first difference {d}",
                            a.len(),
                            e.len()
                        )
                    });
                }
            }
            match e.len().cmp(&a.len()) {
                std::cmp::Ordering::Equal => None,
                std::cmp::Ordering::Greater => Some(format!(
                    "{path}: {} items, expected {}; missing {}",
                    a.len(),
                    e.len(),
                    show(&e[a.len()])
                )),
                std::cmp::Ordering::Less => Some(format!(
                    "{path}: {} items, expected {}; extra {}",
                    a.len(),
                    e.len(),
                    show(&a[e.len()])
                )),
            }
        }
        (Value::Object(e), Value::Object(a)) => {
            let mut keys: Vec<&String> = e.keys().chain(a.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (e.get(k), a.get(k)) {
                (Some(x), Some(y)) => diff_at(&format!("{path}.{k}"), x, y),
                (Some(x), None) => Some(format!("{path}.{k}: missing (expected {})", show(x))),
                (None, Some(y)) => Some(format!("{path}.{k}: unexpected {}", show(y))),
                (None, None) => None,
            })
        }
        _ if expected == actual => None,
        _ => Some(format!(
            "{}: expected {}, got {}",
            if path.is_empty() { "." } else { path },
            show(expected),
            show(actual)
        )),
    }
}

/// How an image differs from the expected one: its length, or the blocks that differ.
pub fn image_diff(expected: &[u8], actual: &[u8], block_size: u64) -> Option<String> {
    if expected == actual {
        return None;
    }
    if expected.len() != actual.len() {
        return Some(format!(
            "{} bytes, expected {}",
            actual.len(),
            expected.len()
        ));
    }
    let bs = block_size.max(1) as usize;
    let bad: Vec<usize> = expected
        .chunks(bs)
        .zip(actual.chunks(bs))
        .enumerate()
        .filter(|(_, (e, a))| e != a)
        .map(|(i, _)| i)
        .collect();
    let shown: Vec<String> = bad.iter().take(8).map(usize::to_string).collect();
    Some(format!(
        "{} block(s) differ: {}{}",
        bad.len(),
        shown.join(", "),
        if bad.len() > shown.len() { ", ..." } else { "" }
    ))
}
