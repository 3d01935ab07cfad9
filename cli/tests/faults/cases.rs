//! The damage cases: for every file of every system, bit flips, truncations, zeroed ranges, its
//! deletion and stale copies of it; for every store, stray files. Offsets are drawn from a
//! generator of the file's own (seeded), and sampled unless the long mode asks for all of them.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use super::layout::{self, Layout};
use super::rng::Rng;
use super::state::Expected;
use super::workload::{files, Location, System, World};

/// One damage to one file.
#[derive(Debug, Clone)]
pub enum Damage {
    /// Flip one bit.
    Flip {
        offset: u64,
        bit: u8,
    },
    /// Cut the file to `len` bytes.
    Truncate {
        len: u64,
    },
    /// Overwrite `len` bytes at `offset` with zeros (not past the end of the file).
    Zero {
        offset: u64,
        len: u64,
    },
    Delete,
    /// Replace the file's content (by a stale copy of it).
    Replace(Arc<Vec<u8>>),
    /// Add a file that was not there.
    Add(Arc<Vec<u8>>),
}

#[derive(Debug, Clone)]
pub struct Case {
    /// The system's position in [`World::systems`].
    pub system: usize,
    pub system_name: &'static str,
    pub location: Location,
    /// The file damaged (or added).
    pub file: String,
    /// `meta`, `seg-head`, `primary.img`, ... (see [`file_kind`]).
    pub file_kind: String,
    /// `flip`, `truncate@boundary`, ... (a column of the report).
    pub damage_kind: &'static str,
    /// What exactly, in words: `bit 3 of byte 1234 (record 2: CRC)`.
    pub description: String,
    pub damage: Damage,
}

impl Case {
    /// `zero/store/seg-...: flip bit 3 of byte 1234 (...)`: unique, and what STRATA_FAULTS_ONLY
    /// matches.
    pub fn id(&self) -> String {
        format!(
            "{}/{}/{}: {} {}",
            self.system_name,
            self.location.name(),
            self.file,
            self.damage_kind,
            self.description
        )
    }

    /// Applies the damage to the copy of the file's directory `dir`.
    pub fn apply(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(&self.file);
        match &self.damage {
            Damage::Flip { offset, bit } => {
                let mut bytes = std::fs::read(&path)?;
                bytes[*offset as usize] ^= 1 << bit;
                std::fs::write(&path, bytes)
            }
            Damage::Truncate { len } => {
                let file = std::fs::OpenOptions::new().write(true).open(&path)?;
                file.set_len(*len)
            }
            Damage::Zero { offset, len } => {
                let mut bytes = std::fs::read(&path)?;
                let end = (*offset + *len).min(bytes.len() as u64) as usize;
                bytes[*offset as usize..end].fill(0);
                std::fs::write(&path, bytes)
            }
            Damage::Delete => std::fs::remove_file(&path),
            Damage::Replace(bytes) | Damage::Add(bytes) => std::fs::write(&path, bytes.as_slice()),
        }
    }
}

/// The kind of a file, by its name (and, for a segment, whether it is the head's, whether it is
/// empty (a spare), and whether its records carry sequence tables: compacted or received).
pub fn file_kind(location: Location, name: &str, bytes: &[u8], head: u64) -> String {
    if location != Location::Store {
        return match name {
            "primary.hdr" | "primary.img" | "primary.sum" => name.to_string(),
            _ => format!("leg:{name}"),
        };
    }
    if name.starts_with("meta-") {
        return "meta".into();
    }
    if let Some(rest) = name.strip_prefix("seg-") {
        let volume = rest
            .split('-')
            .next()
            .and_then(|v| u64::from_str_radix(v, 16).ok());
        if volume == Some(head) {
            return "seg-head".into();
        }
        if bytes.is_empty() {
            // Created ahead of a partition to come (a spare segment): no data to lose.
            return "seg-spare".into();
        }
        let rewritten = layout::segment(bytes)
            .records
            .iter()
            .any(|r| r.what.contains("sequence table"));
        return if rewritten {
            "seg-rewritten".into()
        } else {
            "seg-sealed".into()
        };
    }
    match name {
        "baseline" | "baseline.sum" | "commit" | "mirror.json" => name.to_string(),
        _ => format!("other:{name}"),
    }
}

/// In the long mode, how many units of a file of blocks or checksums get a flip, and how many
/// a cut inside them (every record of a journal or segment does).
const UNITS_SAMPLED_LONG: usize = 48;

/// How many of each damage a file gets.
struct Amounts {
    flips: usize,
    boundaries: usize,
    inside: usize,
    sectors: usize,
    pages: usize,
    stale: usize,
}

impl Amounts {
    fn new(long: bool) -> Self {
        if long {
            Amounts {
                flips: usize::MAX,
                boundaries: usize::MAX,
                inside: usize::MAX,
                sectors: 6,
                pages: 3,
                stale: usize::MAX,
            }
        } else {
            Amounts {
                flips: 8,
                boundaries: 6,
                inside: 4,
                sectors: 3,
                pages: 2,
                stale: 3,
            }
        }
    }
}

/// Every case, in a fixed order.
pub fn plan(world: &World, expected: &[Expected], seed: u64, long: bool) -> Vec<Case> {
    let amounts = Amounts::new(long);
    let mut out = Vec::new();
    for (index, (sys, exp)) in world.systems.iter().zip(expected).enumerate() {
        for location in sys.locations() {
            for (name, bytes) in files(sys.location_dir(location)) {
                let kind = file_kind(location, &name, &bytes, exp.head);
                let mut rng =
                    Rng::derive(seed, &format!("{}/{}/{name}", sys.name, location.name()));
                let base = Case {
                    system: index,
                    system_name: sys.name,
                    location,
                    file: name.clone(),
                    file_kind: kind.clone(),
                    damage_kind: "",
                    description: String::new(),
                    damage: Damage::Delete,
                };
                let structure = structure(&kind, &bytes, exp.block_size);
                let mut push = |damage_kind: &'static str, description: String, damage| {
                    out.push(Case {
                        damage_kind,
                        description,
                        damage,
                        ..base.clone()
                    });
                };
                for (description, damage) in flips(&structure, &bytes, &mut rng, &amounts) {
                    push("flip", description, damage);
                }
                for (kind, description, damage) in
                    truncations(&structure, &bytes, &mut rng, &amounts)
                {
                    push(kind, description, damage);
                }
                for (kind, description, damage) in zeros(&structure, &bytes, &mut rng, &amounts) {
                    push(kind, description, damage);
                }
                push("delete", String::new(), Damage::Delete);
                for (description, damage) in stale(sys, location, &name, &mut rng, &amounts) {
                    push("stale", description, damage);
                }
            }
        }
        out.extend(strays(index, sys, exp));
    }
    out
}

/// A file's parsed framing and the size of its natural unit (a block, a checksum entry).
struct Structure {
    layout: Layout,
    /// 1 for a file of variable-length records (journal, segment: their starts are the
    /// boundaries), else the size of its fixed units (a block, a checksum entry, a header slot:
    /// a cut at a multiple of it is a boundary).
    unit: u64,
}

fn structure(kind: &str, bytes: &[u8], block_size: u64) -> Structure {
    let len = bytes.len() as u64;
    match kind {
        "meta" => Structure {
            layout: layout::meta(bytes),
            unit: 1,
        },
        k if k.starts_with("seg-") => Structure {
            layout: layout::segment(bytes),
            unit: 1,
        },
        "primary.hdr" => Structure {
            layout: layout::primary_header(bytes),
            unit: 64,
        },
        "baseline" | "primary.img" => Structure {
            layout: layout::units(len, block_size, "block"),
            unit: block_size,
        },
        "baseline.sum" | "primary.sum" => Structure {
            layout: layout::units(len, 4, "checksum of block"),
            unit: 4,
        },
        _ => Structure {
            layout: Layout::default(),
            unit: 1,
        },
    }
}

fn flips(s: &Structure, bytes: &[u8], rng: &mut Rng, amounts: &Amounts) -> Vec<(String, Damage)> {
    let len = bytes.len() as u64;
    if len == 0 {
        return Vec::new();
    }
    // Candidate targets: every field of every record (headers, tables, data, index, footer),
    // then the first and last bytes and a few anywhere.
    let mut targets: Vec<(u64, u64)> = s
        .layout
        .records
        .iter()
        .flat_map(|r| {
            if r.fields.is_empty() {
                vec![(r.start, r.len)]
            } else {
                r.fields.iter().map(|f| (f.at, f.len)).collect()
            }
        })
        .filter(|&(at, l)| l > 0 && at < len)
        .collect();
    let mut chosen: Vec<u64> = Vec::new();
    // Always: the first byte, the last byte, and one anywhere.
    chosen.push(0);
    chosen.push(len - 1);
    chosen.push(rng.below(len));
    if amounts.flips == usize::MAX {
        // Long mode: one byte of every field (of a sample of the units of a file of blocks or
        // checksums, whose units are all alike), and a dozen anywhere.
        if s.unit > 1 {
            targets = rng.sample(&targets, UNITS_SAMPLED_LONG);
        }
        chosen.extend(targets.iter().map(|&(at, l)| at + rng.below(l)));
        chosen.extend((0..12).map(|_| rng.below(len)));
    } else {
        // Records first and last get a field each; the rest of the budget is spread.
        if let (Some(first), Some(last)) = (s.layout.records.first(), s.layout.records.last()) {
            for r in [first, last] {
                if let Some(f) = pick_field(r, rng) {
                    chosen.push(f);
                }
            }
        }
        targets = rng.sample(&targets, amounts.flips.saturating_sub(chosen.len()));
        chosen.extend(targets.iter().map(|&(at, l)| at + rng.below(l)));
    }
    let mut seen = BTreeSet::new();
    chosen
        .into_iter()
        .filter(|&at| at < len && seen.insert(at))
        .map(|at| {
            let bit = rng.below(8) as u8;
            (
                format!("bit {bit} of byte {at} ({})", where_is(s, at, len)),
                Damage::Flip { offset: at, bit },
            )
        })
        .collect()
}

fn pick_field(r: &layout::Record, rng: &mut Rng) -> Option<u64> {
    if r.fields.is_empty() {
        return (r.len > 0).then(|| r.start + rng.below(r.len));
    }
    let f = &r.fields[rng.below(r.fields.len() as u64) as usize];
    (f.len > 0).then(|| f.at + rng.below(f.len))
}

fn where_is(s: &Structure, at: u64, len: u64) -> String {
    if at + 1 == len {
        format!("last byte; {}", s.layout.describe(at))
    } else {
        s.layout.describe(at)
    }
}

fn truncations(
    s: &Structure,
    bytes: &[u8],
    rng: &mut Rng,
    amounts: &Amounts,
) -> Vec<(&'static str, String, Damage)> {
    let len = bytes.len() as u64;
    if len == 0 {
        return Vec::new();
    }
    let mut boundaries: Vec<u64> = if s.unit > 1 {
        // Fixed units: the start, a middle unit boundary, one unit short.
        let units = len / s.unit;
        let mut b = vec![0, (units / 2) * s.unit, units.saturating_sub(1) * s.unit];
        b.extend((0..4).map(|_| rng.below(units.max(1)) * s.unit));
        b
    } else {
        s.layout.boundaries(len)
    };
    boundaries.retain(|&b| b < len);
    boundaries.sort_unstable();
    boundaries.dedup();
    if amounts.boundaries != usize::MAX && boundaries.len() > amounts.boundaries {
        // Always the empty file and the last boundary (the last record or the tail cut off).
        let last = *boundaries.last().unwrap_or(&0);
        let middle: Vec<u64> = boundaries[1..boundaries.len() - 1].to_vec();
        let mut kept = vec![0, last];
        kept.extend(rng.sample(&middle, amounts.boundaries - 2));
        kept.sort_unstable();
        boundaries = kept;
    }
    // Inside: one byte short of the end, and points inside records (or units).
    let mut inside: Vec<u64> = vec![len - 1];
    let records: Vec<(u64, u64)> = s
        .layout
        .records
        .iter()
        .filter(|r| r.len > 1)
        .map(|r| (r.start, r.len))
        .collect();
    let per_record: Vec<u64> = records
        .iter()
        .map(|&(start, l)| start + 1 + rng.below(l - 1))
        .collect();
    if amounts.inside == usize::MAX && s.unit > 1 {
        inside.extend(rng.sample(&per_record, UNITS_SAMPLED_LONG));
    } else if amounts.inside == usize::MAX {
        inside.extend(per_record);
        inside.extend(
            records
                .iter()
                .map(|&(start, l)| start + 1 + rng.below(l - 1)),
        );
    } else {
        // The last record (a torn append) and a sample of the others.
        if let Some(&last) = per_record.last() {
            inside.push(last);
        }
        inside.extend(rng.sample(&per_record, amounts.inside.saturating_sub(2)));
        if records.is_empty() {
            inside.push(1 + rng.below(len - 1));
        }
    }
    let boundary_set: BTreeSet<u64> = boundaries.iter().copied().collect();
    inside.retain(|&at| at > 0 && at < len && !boundary_set.contains(&at));
    if s.unit > 1 {
        inside.retain(|&at| at % s.unit != 0);
    }
    inside.sort_unstable();
    inside.dedup();
    let mut out = Vec::new();
    for at in boundaries {
        let what = if at == 0 {
            "to 0 bytes".to_string()
        } else {
            format!(
                "to {at} bytes (cuts {} bytes from {})",
                len - at,
                s.layout.describe(at)
            )
        };
        out.push(("truncate@boundary", what, Damage::Truncate { len: at }));
    }
    for at in inside {
        out.push((
            "truncate@inside",
            format!("to {at} bytes (inside {})", where_is(s, at, len)),
            Damage::Truncate { len: at },
        ));
    }
    out
}

fn zeros(
    s: &Structure,
    bytes: &[u8],
    rng: &mut Rng,
    amounts: &Amounts,
) -> Vec<(&'static str, String, Damage)> {
    let len = bytes.len() as u64;
    let mut out = Vec::new();
    for (kind, size, count) in [
        ("zero-512", 512u64, amounts.sectors),
        ("zero-4k", 4096u64, amounts.pages),
    ] {
        let slots = len.div_ceil(size);
        // Candidate aligned ranges that hold a non-zero byte (zeroing zeros changes nothing).
        let mut candidates: Vec<u64> = (0..slots)
            .filter(|i| {
                let start = (i * size) as usize;
                let end = ((i + 1) * size).min(len) as usize;
                bytes[start..end].iter().any(|&b| b != 0)
            })
            .collect();
        if candidates.is_empty() {
            continue;
        }
        let chosen: Vec<u64> = if count <= 1 {
            rng.sample(&candidates, 1)
        } else {
            // The first range (headers) and the last (the newest records), then others.
            let (first, last) = (candidates[0], candidates[candidates.len() - 1]);
            candidates.retain(|&c| c != first && c != last);
            let mut chosen = vec![first, last];
            chosen.extend(rng.sample(&candidates, count - 2));
            chosen.sort_unstable();
            chosen.dedup();
            chosen
        };
        for i in chosen {
            let at = i * size;
            let end = ((i + 1) * size).min(len);
            out.push((
                kind,
                format!("bytes {at}..{end} ({})", s.layout.describe(at)),
                Damage::Zero {
                    offset: at,
                    len: size,
                },
            ));
        }
    }
    out
}

fn stale(
    sys: &System,
    location: Location,
    name: &str,
    rng: &mut Rng,
    amounts: &Amounts,
) -> Vec<(String, Damage)> {
    let Some(versions) = sys.history.get(&(location, name.to_string())) else {
        return Vec::new();
    };
    let picked: Vec<usize> = if versions.len() <= amounts.stale {
        (0..versions.len()).collect()
    } else {
        // The oldest, the newest earlier version (the subtlest: one command lost), and a
        // sample of those between.
        let middle: Vec<usize> = (1..versions.len() - 1).collect();
        let mut picked = vec![0, versions.len() - 1];
        picked.extend(rng.sample(&middle, amounts.stale.saturating_sub(2)));
        picked.sort_unstable();
        picked
    };
    picked
        .into_iter()
        .map(|i| {
            let v = &versions[i];
            (
                format!("copy from after {} ({} bytes)", v.step, v.bytes.len()),
                Damage::Replace(Arc::new(v.bytes.clone())),
            )
        })
        .collect()
}

/// Files that do not belong: a second generation of the head's segment (what a crashed
/// compaction leaves, but holding live data) and an exported image saved into the store by
/// mistake.
fn strays(index: usize, sys: &System, exp: &Expected) -> Vec<Case> {
    let present: Vec<(String, Vec<u8>)> = files(&sys.dir);
    let mut out = Vec::new();
    let head_prefix = format!("seg-{:016x}-", exp.head);
    if let Some((name, bytes)) = present.iter().find(|(n, _)| n.starts_with(&head_prefix)) {
        if let Ok(generation) = u32::from_str_radix(&name[head_prefix.len()..], 16) {
            let stray = format!("{head_prefix}{:08x}", generation.wrapping_add(1));
            out.push((stray, format!("a copy of {name}"), bytes.clone()));
        }
    }
    if let Some(image) = exp.images.get(&exp.head) {
        out.push((
            "head.img".to_string(),
            "an exported image of the head".to_string(),
            image.clone(),
        ));
    }
    out.into_iter()
        .filter(|(name, _, _)| !present.iter().any(|(n, _)| n == name))
        .map(|(name, description, bytes)| Case {
            system: index,
            system_name: sys.name,
            location: Location::Store,
            file: name,
            file_kind: "(stray file)".into(),
            damage_kind: "stray",
            description,
            damage: Damage::Add(Arc::new(bytes)),
        })
        .collect()
}
