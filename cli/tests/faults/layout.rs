//! The framing of the files, parsed as `engine/docs/format.md` describes it, only as far as the
//! suite needs: where records begin and end (the truncation points) and where each header field
//! lies (the bit-flip targets). Parsing stops at the first thing that does not look like the
//! format; what follows is left to the generic offsets, so a format change weakens the sampling
//! but never breaks the suite.

/// A named byte range of a file.
#[derive(Debug, Clone)]
pub struct Field {
    pub at: u64,
    pub len: u64,
    pub name: String,
}

/// One record (or index section, footer, header slot): where it lies and its fields.
#[derive(Debug, Clone)]
pub struct Record {
    pub start: u64,
    pub len: u64,
    /// What it is, for reports: `record 3 (partition sealed)`, `footer`, ...
    pub what: String,
    /// Its fields, at absolute offsets.
    pub fields: Vec<Field>,
}

impl Record {
    pub fn end(&self) -> u64 {
        self.start + self.len
    }
}

/// The records found, in file order.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub records: Vec<Record>,
}

impl Layout {
    /// Offsets where a record begins (0 included), and the end of the last whole record when
    /// the file goes on after it; never the file's own length.
    pub fn boundaries(&self, file_len: u64) -> Vec<u64> {
        let mut out: Vec<u64> = self
            .records
            .iter()
            .flat_map(|r| [r.start, r.end()])
            .filter(|&at| at < file_len)
            .collect();
        out.push(0);
        out.sort_unstable();
        out.dedup();
        out
    }

    /// The record holding byte `at`, if any.
    pub fn record_at(&self, at: u64) -> Option<&Record> {
        self.records.iter().find(|r| r.start <= at && at < r.end())
    }

    /// `record 2 (partition sealed): kind` for byte `at`.
    pub fn describe(&self, at: u64) -> String {
        match self.record_at(at) {
            Some(r) => match r.fields.iter().find(|f| f.at <= at && at < f.at + f.len) {
                Some(f) => format!("{}: {}", r.what, f.name),
                None => r.what.clone(),
            },
            None => "outside the parsed records".to_string(),
        }
    }
}

fn u16_at(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn u64_at(bytes: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?))
}

fn fields(base: u64, table: &[(u64, u64, &str)]) -> Vec<Field> {
    table
        .iter()
        .map(|&(at, len, name)| Field {
            at: base + at,
            len,
            name: name.to_string(),
        })
        .collect()
}

fn meta_kind_name(kind: u16) -> &'static str {
    match kind {
        1 => "store header",
        2 => "partition created",
        3 => "partition sealed",
        4 => "partition rewritten",
        5 => "partition dropped",
        6 => "volume released",
        7 => "merge started",
        8 => "merge finished",
        9 => "group",
        10 => "policy",
        11 => "assignments",
        12 => "executor state",
        13 => "audit entry",
        _ => "unknown kind",
    }
}

/// The metadata journal: 16-byte headers `"SMET"`, kind, reserved, payload length, CRC.
pub fn meta(bytes: &[u8]) -> Layout {
    let mut records = Vec::new();
    let mut at = 0usize;
    while bytes.get(at..at + 4) == Some(b"SMET".as_slice()) {
        let (Some(kind), Some(len)) = (u16_at(bytes, at + 4), u32_at(bytes, at + 8)) else {
            break;
        };
        let end = at + 16 + len as usize;
        if end > bytes.len() {
            break;
        }
        let base = at as u64;
        let mut f = fields(
            base,
            &[
                (0, 4, "magic"),
                (4, 2, "kind"),
                (6, 2, "reserved"),
                (8, 4, "payload length"),
                (12, 4, "CRC"),
            ],
        );
        if kind == 1 {
            f.extend(fields(
                base + 16,
                &[
                    (0, 4, "format version"),
                    (4, 4, "block size"),
                    (8, 8, "block count"),
                    (16, 8, "creation time"),
                    (24, 4, "baseline kind"),
                    (28, 4, "baseline.sum CRC"),
                    (32, 8, "store id"),
                    (40, 8, "generation"),
                ],
            ));
        } else if len > 0 {
            f.push(Field {
                at: base + 16,
                len: u64::from(len),
                name: "payload".into(),
            });
        }
        records.push(Record {
            start: base,
            len: (end - at) as u64,
            what: format!("record {} ({})", records.len(), meta_kind_name(kind)),
            fields: f,
        });
        at = end;
    }
    Layout { records }
}

/// A log segment: `"SREC"` records, then (sealed) the `"SIDX"` index section and the `"SFTR"`
/// footer in the last 64 bytes.
pub fn segment(bytes: &[u8]) -> Layout {
    let mut records = Vec::new();
    let mut at = 0usize;
    while bytes.get(at..at + 4) == Some(b"SREC".as_slice()) {
        let (Some(entries), Some(blocks), Some(block_size)) = (
            u32_at(bytes, at + 32),
            u32_at(bytes, at + 36),
            u32_at(bytes, at + 52),
        ) else {
            break;
        };
        let (entries, blocks, block_size) =
            (u64::from(entries), u64::from(blocks), u64::from(block_size));
        let len = 64 + 16 * entries + 4 * blocks + blocks * block_size;
        if at as u64 + len > bytes.len() as u64 {
            break;
        }
        let base = at as u64;
        let mut f = fields(
            base,
            &[
                (0, 4, "magic"),
                (4, 2, "kind"),
                (6, 2, "flags"),
                (8, 8, "volume"),
                (16, 8, "first sequence number"),
                (24, 8, "timestamp"),
                (32, 4, "entry count"),
                (36, 4, "block count"),
                (40, 8, "durable offset"),
                (48, 4, "tables length"),
                (52, 4, "block size"),
                (56, 4, "reserved"),
                (60, 4, "header CRC"),
            ],
        );
        f.push(Field {
            at: base + 64,
            len: 16 * entries,
            name: "entry table".into(),
        });
        f.push(Field {
            at: base + 64 + 16 * entries,
            len: 4 * blocks,
            name: "block CRC table".into(),
        });
        f.push(Field {
            at: base + 64 + 16 * entries + 4 * blocks,
            len: blocks * block_size,
            name: "block data".into(),
        });
        let flags = u16_at(bytes, at + 6).unwrap_or(0);
        records.push(Record {
            start: base,
            len,
            what: format!(
                "record {}{}",
                records.len(),
                if flags & 1 == 1 {
                    " (sequence table)"
                } else {
                    ""
                }
            ),
            fields: f,
        });
        at += len as usize;
    }
    let total = bytes.len();
    if bytes.get(at..at + 4) == Some(b"SIDX".as_slice()) && total >= at + 64 + 16 {
        let footer = total - 64;
        // A seal block (format version 4) lies between the index section and the footer; its
        // length is the footer's word at byte 52.
        let seal_len = if bytes.get(footer..footer + 4) == Some(b"SFTR".as_slice()) {
            u32_at(bytes, footer + 52).map_or(0, |w| w as usize)
        } else {
            0
        };
        let seal_len = if seal_len >= 28 && at + 16 + seal_len <= footer {
            seal_len
        } else {
            0
        };
        let seal = footer - seal_len;
        records.push(Record {
            start: at as u64,
            len: (seal - at) as u64,
            what: "index section".into(),
            fields: {
                let mut f = fields(
                    at as u64,
                    &[(0, 4, "magic"), (4, 4, "reserved"), (8, 8, "record count")],
                );
                f.push(Field {
                    at: at as u64 + 16,
                    len: (seal - at - 16) as u64,
                    name: "index entries".into(),
                });
                f
            },
        });
        if seal_len > 0 {
            let mut f = fields(
                seal as u64,
                &[
                    (0, 4, "magic"),
                    (4, 4, "flags"),
                    (8, 8, "seal time"),
                    (16, 8, "new head volume"),
                    (24, 4, "label length"),
                ],
            );
            if seal_len > 28 {
                f.push(Field {
                    at: seal as u64 + 28,
                    len: (seal_len - 28) as u64,
                    name: "label".into(),
                });
            }
            records.push(Record {
                start: seal as u64,
                len: seal_len as u64,
                what: "seal block".into(),
                fields: f,
            });
        }
        if bytes.get(footer..footer + 4) == Some(b"SFTR".as_slice()) {
            records.push(Record {
                start: footer as u64,
                len: 64,
                what: "footer".into(),
                fields: fields(
                    footer as u64,
                    &[
                        (0, 4, "magic"),
                        (4, 4, "version"),
                        (8, 8, "volume"),
                        (16, 8, "records end"),
                        (24, 8, "index length"),
                        (32, 8, "record count"),
                        (40, 8, "next sequence number"),
                        (48, 4, "index CRC"),
                        (52, 4, "seal block length"),
                        (56, 4, "seal block CRC"),
                        (60, 4, "CRC"),
                    ],
                ),
            });
        }
    }
    Layout { records }
}

/// `primary.hdr`: two 64-byte header slots.
pub fn primary_header(bytes: &[u8]) -> Layout {
    let mut records = Vec::new();
    for slot in 0..2u64 {
        let start = slot * 64;
        if bytes.len() as u64 >= start + 64 {
            let generation = u64_at(bytes, start as usize + 32).unwrap_or(0);
            records.push(Record {
                start,
                len: 64,
                what: format!("slot {slot} (generation {generation})"),
                fields: fields(
                    start,
                    &[
                        (0, 4, "magic"),
                        (4, 4, "layout version"),
                        (8, 8, "store id"),
                        (16, 4, "block size"),
                        (20, 4, "flags"),
                        (24, 8, "block count"),
                        (32, 8, "generation"),
                        (40, 8, "head volume"),
                        (48, 8, "next sequence number"),
                        (56, 2, "leg index"),
                        (58, 2, "leg count"),
                        (60, 4, "CRC"),
                    ],
                ),
            });
        }
    }
    Layout { records }
}

/// A file of fixed-size units (baseline blocks, checksum entries): one record per unit.
pub fn units(len: u64, unit: u64, what: &str) -> Layout {
    let unit = unit.max(1);
    let count = len / unit;
    // Bounded: a large image gets its first and last units named, the rest are "inside".
    let named: Vec<u64> = if count <= 4096 {
        (0..count).collect()
    } else {
        vec![0, count - 1]
    };
    Layout {
        records: named
            .into_iter()
            .map(|i| Record {
                start: i * unit,
                len: unit,
                what: format!("{what} {i}"),
                fields: Vec::new(),
            })
            .collect(),
    }
}
