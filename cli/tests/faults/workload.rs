//! The seeded workload: four systems built through real `strata` commands, every file's content
//! kept after every command (the "stale copy" damage restores one of them).
//!
//! * `zero`: `create --blocks`, writes, labelled snapshots, compaction, a merge into the (then
//!   created) baseline, a deletion, a rollback, a hold, a TTL, a policy, an event snapshot;
//! * `image`: `create --baseline` from an image file, a merge into it, compaction, a hold, and
//!   full and incremental copy streams sent to
//! * `copy`: a store made by `receive`, then written to and snapshotted itself;
//! * `mirror`: `mirror create` with two legs, writes, a snapshot, and `mirror status` catching
//!   the legs up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::cmd;
use super::rng::Rng;

/// Where a file lives in a system: the store directory or one of its mirror legs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Location {
    Store,
    Leg(usize),
}

impl Location {
    pub fn name(self) -> String {
        match self {
            Location::Store => "store".into(),
            Location::Leg(i) => format!("leg-{}", char::from(b'a' + i as u8)),
        }
    }
}

/// An earlier content of a file, and the command after which it was there.
#[derive(Debug, Clone)]
pub struct Version {
    pub step: String,
    pub bytes: Vec<u8>,
}

/// One store (and its legs, when mirrored) built by the workload.
#[derive(Debug)]
pub struct System {
    pub name: &'static str,
    pub mirrored: bool,
    pub dir: PathBuf,
    pub legs: Vec<PathBuf>,
    /// Every content each file had after some command, oldest first, without repeats.
    pub history: BTreeMap<(Location, String), Vec<Version>>,
    /// Commands run on it.
    pub steps: usize,
}

impl System {
    fn new(name: &'static str, dir: PathBuf, legs: Vec<PathBuf>) -> Self {
        System {
            name,
            mirrored: !legs.is_empty(),
            dir,
            legs,
            history: BTreeMap::new(),
            steps: 0,
        }
    }

    pub fn locations(&self) -> Vec<Location> {
        let mut out = vec![Location::Store];
        out.extend((0..self.legs.len()).map(Location::Leg));
        out
    }

    pub fn location_dir(&self, location: Location) -> &Path {
        match location {
            Location::Store => &self.dir,
            Location::Leg(i) => &self.legs[i],
        }
    }

    fn d(&self) -> String {
        self.dir.display().to_string()
    }

    /// Keeps every file content not seen before, as the state after `step`.
    fn remember(&mut self, step: &str) {
        for location in self.locations() {
            for (name, bytes) in files(self.location_dir(location)) {
                let versions = self.history.entry((location, name)).or_default();
                if !versions.iter().any(|v| v.bytes == bytes) {
                    versions.push(Version {
                        step: step.to_string(),
                        bytes,
                    });
                }
            }
        }
    }

    /// Forgets the versions equal to what the files hold now: a stale copy must differ.
    pub fn drop_current_versions(&mut self) {
        let current: BTreeMap<(Location, String), Vec<u8>> = self
            .locations()
            .into_iter()
            .flat_map(|l| {
                files(self.location_dir(l))
                    .into_iter()
                    .map(move |(n, b)| ((l, n), b))
            })
            .collect();
        for (key, versions) in &mut self.history {
            if let Some(now) = current.get(key) {
                versions.retain(|v| &v.bytes != now);
            }
        }
    }
}

/// The regular files of `dir`, by name.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        if entry.file_type().is_ok_and(|t| t.is_file()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Ok(bytes) = std::fs::read(entry.path()) {
                out.push((name, bytes));
            }
        }
    }
    out.sort();
    out
}

/// The four systems, built.
#[derive(Debug)]
pub struct World {
    pub systems: Vec<System>,
    /// Commands the workload ran.
    pub commands: usize,
}

struct Builder {
    rng: Rng,
    inputs: PathBuf,
    io: PathBuf,
    files_made: usize,
    commands: usize,
}

impl Builder {
    /// Runs a command of `sys`'s workload and keeps the files it left.
    fn run(&mut self, sys: &mut System, parts: &[&str]) -> Vec<u8> {
        let args = cmd::args(parts);
        let out = cmd::must(&args, &self.io);
        self.commands += 1;
        sys.steps += 1;
        let dir = sys.d();
        let shown: Vec<String> = args
            .iter()
            .map(|a| {
                if *a == dir {
                    sys.name.to_string()
                } else if a.starts_with('/') {
                    Path::new(a)
                        .file_name()
                        .map_or_else(|| a.clone(), |n| n.to_string_lossy().into_owned())
                } else {
                    a.clone()
                }
            })
            .collect();
        sys.remember(&format!("step {} `{}`", sys.steps, shown.join(" ")));
        out
    }

    /// A file of `len` random bytes.
    fn input(&mut self, len: usize, name: &str) -> String {
        self.files_made += 1;
        let path = self.inputs.join(format!("{}-{name}", self.files_made));
        std::fs::write(&path, self.rng.bytes(len)).expect("write input file");
        path.display().to_string()
    }

    /// `n` blocks at `addr`, `min..=max` of them, inside a volume of `count` blocks.
    fn extent(&mut self, count: u64, min: u64, max: u64) -> (u64, u64) {
        let n = self.rng.range(min, max + 1);
        (self.rng.below(count - n + 1), n)
    }

    fn write_random(&mut self, sys: &mut System, (addr, blocks): (u64, u64), block_size: u64) {
        let file = self.input((blocks * block_size) as usize, "blocks.bin");
        let d = sys.d();
        self.run(
            sys,
            &["write", &d, "--addr", &addr.to_string(), "--file", &file],
        );
    }

    fn write_pattern(&mut self, sys: &mut System, (addr, blocks): (u64, u64)) {
        let byte = format!("{:#04x}", self.rng.range(1, 256));
        let d = sys.d();
        self.run(
            sys,
            &[
                "write",
                &d,
                "--addr",
                &addr.to_string(),
                "--pattern",
                &byte,
                "--blocks",
                &blocks.to_string(),
            ],
        );
    }

    fn snapshot(&mut self, sys: &mut System, label: Option<&str>) {
        let d = sys.d();
        match label {
            Some(label) => self.run(sys, &["snapshot", &d, "--label", label]),
            None => self.run(sys, &["snapshot", &d]),
        };
    }
}

/// A small policy: a retention rule (which nothing runs here) and an event rule the workload
/// fires once.
const POLICY: &str = r#"{
  "rules": [
    { "name": "keep", "kind": "retain", "label_prefix": "keep-", "keep": { "last": 3 } },
    { "name": "deploy", "kind": "event", "event": "deploy", "action": "snapshot",
      "label": "{event}-{n}" }
  ]
}"#;

/// Builds the four systems under `root`, every random choice drawn from `seed`.
pub fn build(root: &Path, seed: u64) -> World {
    let inputs = root.join("inputs");
    let io = root.join("io");
    std::fs::create_dir_all(&inputs).expect("inputs dir");
    std::fs::create_dir_all(&io).expect("io dir");
    let mut b = Builder {
        rng: Rng::derive(seed, "workload"),
        inputs,
        io,
        files_made: 0,
        commands: 0,
    };
    let zero = build_zero(&mut b, root);
    let (image, full, incremental) = build_image(&mut b, root);
    let copy = build_copy(&mut b, root, &full, &incremental);
    let mirror = build_mirror(&mut b, root);
    World {
        systems: vec![zero, image, copy, mirror],
        commands: b.commands,
    }
}

fn build_zero(b: &mut Builder, root: &Path) -> System {
    const COUNT: u64 = 160;
    const BS: u64 = 4096;
    let mut sys = System::new("zero", root.join("zero"), Vec::new());
    let d = sys.d();
    b.run(
        &mut sys,
        &[
            "create",
            &d,
            "--blocks",
            &COUNT.to_string(),
            "--block-size",
            "4096",
        ],
    );
    // Volume 1: a write, a pattern, and the first write again (compaction has work).
    let first = b.extent(COUNT, 2, 9);
    b.write_random(&mut sys, first, BS);
    let e = b.extent(COUNT, 1, 5);
    b.write_pattern(&mut sys, e);
    b.write_random(&mut sys, first, BS);
    b.snapshot(&mut sys, Some("keep-1"));
    // Volume 2.
    for _ in 0..2 {
        let e = b.extent(COUNT, 1, 12);
        b.write_random(&mut sys, e, BS);
    }
    b.snapshot(&mut sys, Some("keep-2"));
    // Volume 3: an extent written twice, compacted in place once sealed.
    let twice = b.extent(COUNT, 2, 8);
    b.write_random(&mut sys, twice, BS);
    let e = b.extent(COUNT, 1, 4);
    b.write_pattern(&mut sys, e);
    b.write_random(&mut sys, twice, BS);
    b.snapshot(&mut sys, Some("keep-3"));
    b.run(&mut sys, &["compact", &d, "--volume", "3"]);
    // The zero baseline becomes an image: volume 1 merged into it.
    b.run(&mut sys, &["merge", &d, "--volume", "1"]);
    // Volume 4 (unlabelled), then volume 3 deleted: its partition stays for what 4 reads.
    let e = b.extent(COUNT, 1, 6);
    b.write_random(&mut sys, e, BS);
    b.snapshot(&mut sys, None);
    b.run(&mut sys, &["delete", &d, "--volume", "3"]);
    // Volume 5 gets a write and is kept by the rollback to 2; the new head 6 grows from 2.
    let e = b.extent(COUNT, 1, 6);
    b.write_random(&mut sys, e, BS);
    b.run(
        &mut sys,
        &["rollback", &d, "--to", "2", "--label", "rolled"],
    );
    let e = b.extent(COUNT, 1, 6);
    b.write_random(&mut sys, e, BS);
    // Holds, TTLs, a policy and its audit trail.
    b.run(&mut sys, &["hold", &d, "--volume", "2"]);
    b.run(&mut sys, &["ttl", &d, "--volume", "4", "7d"]);
    let policy = b.inputs.join("policy.json");
    std::fs::write(&policy, POLICY).expect("write policy");
    b.run(
        &mut sys,
        &["policy", "set", &d, &policy.display().to_string()],
    );
    b.run(&mut sys, &["event", &d, "deploy"]);
    // The head (volume 7): several records, one of many blocks.
    let e = b.extent(COUNT, 1, 3);
    b.write_random(&mut sys, e, BS);
    let e = b.extent(COUNT, 1, 2);
    b.write_pattern(&mut sys, e);
    let e = b.extent(COUNT, 8, 24);
    b.write_random(&mut sys, e, BS);
    sys
}

fn build_image(b: &mut Builder, root: &Path) -> (System, String, String) {
    const COUNT: u64 = 384;
    const BS: u64 = 512;
    let mut sys = System::new("image", root.join("image"), Vec::new());
    let d = sys.d();
    let image = b.input((COUNT * BS) as usize, "baseline.img");
    b.run(
        &mut sys,
        &["create", &d, "--baseline", &image, "--block-size", "512"],
    );
    for _ in 0..2 {
        let e = b.extent(COUNT, 1, 16);
        b.write_random(&mut sys, e, BS);
    }
    b.snapshot(&mut sys, Some("a"));
    let twice = b.extent(COUNT, 2, 16);
    b.write_random(&mut sys, twice, BS);
    b.write_random(&mut sys, twice, BS);
    b.snapshot(&mut sys, Some("b"));
    b.run(&mut sys, &["merge", &d, "--volume", "1"]);
    b.run(&mut sys, &["compact", &d, "--volume", "2"]);
    let e = b.extent(COUNT, 1, 40);
    b.write_random(&mut sys, e, BS);
    b.snapshot(&mut sys, Some("c"));
    let full = b.inputs.join("full.stream").display().to_string();
    b.run(&mut sys, &["send", &d, "-o", &full]);
    let e = b.extent(COUNT, 1, 8);
    b.write_pattern(&mut sys, e);
    b.snapshot(&mut sys, Some("d"));
    let incremental = b.inputs.join("incremental.stream").display().to_string();
    b.run(&mut sys, &["send", &d, "--base", "3", "-o", &incremental]);
    b.run(&mut sys, &["hold", &d, "--volume", "3"]);
    for _ in 0..2 {
        let e = b.extent(COUNT, 1, 20);
        b.write_random(&mut sys, e, BS);
    }
    (sys, full, incremental)
}

fn build_copy(b: &mut Builder, root: &Path, full: &str, incremental: &str) -> System {
    const COUNT: u64 = 384;
    const BS: u64 = 512;
    let mut sys = System::new("copy", root.join("copy"), Vec::new());
    let d = sys.d();
    b.run(&mut sys, &["receive", &d, "-i", full]);
    b.run(&mut sys, &["receive", &d, "-i", incremental]);
    let e = b.extent(COUNT, 1, 10);
    b.write_random(&mut sys, e, BS);
    b.snapshot(&mut sys, Some("local"));
    for _ in 0..2 {
        let e = b.extent(COUNT, 1, 10);
        b.write_random(&mut sys, e, BS);
    }
    sys
}

fn build_mirror(b: &mut Builder, root: &Path) -> System {
    const COUNT: u64 = 96;
    const BS: u64 = 512;
    let legs = vec![
        root.join("mirror-legs").join("a"),
        root.join("mirror-legs").join("b"),
    ];
    let mut sys = System::new("mirror", root.join("mirror"), legs);
    let d = sys.d();
    let (a, bb) = (
        sys.legs[0].display().to_string(),
        sys.legs[1].display().to_string(),
    );
    b.run(
        &mut sys,
        &[
            "mirror",
            "create",
            &d,
            "--blocks",
            "96",
            "--block-size",
            "512",
            "--leg",
            &a,
            "--leg",
            &bb,
        ],
    );
    for _ in 0..2 {
        let e = b.extent(COUNT, 1, 12);
        b.write_random(&mut sys, e, BS);
    }
    b.snapshot(&mut sys, Some("m1"));
    let e = b.extent(COUNT, 1, 12);
    b.write_random(&mut sys, e, BS);
    b.run(&mut sys, &["mirror", "status", &d]);
    let e = b.extent(COUNT, 1, 12);
    b.write_random(&mut sys, e, BS);
    let e = b.extent(COUNT, 1, 4);
    b.write_pattern(&mut sys, e);
    // The legs catch up with the last two writes: the acknowledged state has them on every leg.
    b.run(&mut sys, &["mirror", "status", &d]);
    sys
}
