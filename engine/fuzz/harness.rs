// Fuzz harness shared by the cargo-fuzz targets (engine/fuzz/fuzz_targets/*.rs, through
// engine/fuzz/src/lib.rs) and the corpus replay test (engine/tests/fuzz_corpus.rs): both
// `include!` this file, so the corpus is replayed through exactly the code that was fuzzed.
//
// Every `fuzz_*` function must return normally for every input. Errors from the engine are fine
// (damaged input is expected to be rejected); a panic, a hang or a huge allocation is a bug.
//
// Targets:
// * `decode_record`: record header, tables and data verification on arbitrary bytes; a record
//   that verifies must re-encode to the same bytes.
// * `decode_footer_index`: a footer and its index section, laid out footer-first and as the tail
//   of a sealed segment (index section, then the footer at the very end).
// * `decode_journal`: journal records decoded in a loop over the input; each decoded record must
//   re-encode to the same bytes.
// * `open_store`: the first byte picks a mode.
//   - even: the rest is a set of objects (see `objects_from_bytes`); bit 1 set means "repair the
//     checksums before opening" so that the semantic checks behind them are reached.
//   - odd: a valid store built here (variant `mode >> 1`, see `base_stores`) is damaged by the
//     mutation program in the rest of the input (see `mutate`).
//   Then the store is opened and, if that succeeds, the first blocks of every volume are read,
//   the log cursor is walked with data (sequence numbers must never go back), `space` and `diff`
//   run, and one write + snapshot + sync (+ compaction of a snapshot) + reopen is attempted.

use std::rc::Rc;
use std::sync::OnceLock;

use strata_engine::clock::ManualClock;
use strata_engine::format::footer::{self, decode_footer, decode_index, FOOTER_LEN, FOOTER_MAGIC};
use strata_engine::format::meta::{
    MetaRecord, META_HEADER_LEN, META_KIND_GROUP, META_MAGIC, META_PAYLOAD_MAX,
};
use strata_engine::format::record::{
    Payload, RECORD_FLAG_ZERO_ENTRIES,
    decode_header, decode_tables, encode_record, verify_data, RECORD_HEADER_LEN,
};
use strata_engine::format::{self, block_crc, crc, crc_append};
use strata_engine::storage::memory::MemoryStorage;
use strata_engine::{CreateOptions, CursorStart, Store, VolumeId, VolumeKind};

/// The raw objects of a store.
pub use strata_engine::storage::Objects;

/// A harness function: returns normally for every input.
pub type Harness = fn(&[u8]);

/// Every target: its name (= its corpus directory) and its harness function.
pub const TARGETS: &[(&str, Harness)] = &[
    ("decode_record", fuzz_decode_record),
    ("decode_footer_index", fuzz_decode_footer_index),
    ("decode_journal", fuzz_decode_journal),
    ("open_store", fuzz_open_store),
];

/// Realistic object names; selector bytes index this list (modulo its length).
pub const NAMES: &[&str] = &[
    "meta-0000000000000001",
    "baseline",
    "baseline.sum",
    "seg-0000000000000001-00000000",
    "seg-0000000000000002-00000000",
    "seg-0000000000000003-00000000",
    "meta-0000000000000002",
    "seg-0000000000000001-00000001",
];

/// Most objects built from raw bytes.
pub const RAW_OBJECTS_MAX: usize = 8;
/// Most mutation operations applied to a valid store.
pub const MUTATIONS_MAX: usize = 64;
/// Most blocks read from the start of each volume after a successful open.
pub const READ_BLOCKS_MAX: u64 = 64;
/// Most entries a cursor walk may return before the harness gives up on it.
pub const CURSOR_STEPS_MAX: u64 = 100_000;

const CLOCK_START_MS: u64 = 1_700_000_000_000;

// ----- little helpers (never panic) ----------------------------------------------------------

fn get_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn get_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

fn put(bytes: &mut [u8], at: usize, value: &[u8]) {
    if let Some(end) = at.checked_add(value.len()) {
        if let Some(dst) = bytes.get_mut(at..end) {
            dst.copy_from_slice(value);
        }
    }
}

/// Reads the fuzzer's bytes as a stream of little-endian integers.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.bytes.len() < n {
            return None;
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
}

// ----- decode_record -------------------------------------------------------------------------

pub fn fuzz_decode_record(data: &[u8]) {
    let header_bytes = &data[..data.len().min(RECORD_HEADER_LEN)];
    let rest = data.get(RECORD_HEADER_LEN..).unwrap_or_default();
    // The mismatched-length path of decode_tables, whatever the header says.
    let _ = decode_tables(header_bytes, rest);
    let Ok(header) = decode_header(data) else {
        return;
    };
    assert!(header.entry_count >= 1);
    assert!(
        header.entry_count <= header.block_count || header.flags & RECORD_FLAG_ZERO_ENTRIES != 0
    );
    let tables_len = header.tables_len();
    let tables = rest.get(..tables_len).unwrap_or(rest);
    let Ok(meta) = decode_tables(header_bytes, tables) else {
        return;
    };
    assert_eq!(meta.header, header);
    assert_eq!(meta.entries.len(), header.entry_count as usize);
    assert_eq!(meta.block_crcs.len(), header.block_count as usize);
    let body = rest.get(tables_len..).unwrap_or_default();
    let _ = verify_data(&meta, &[]);
    if verify_data(&meta, body).is_err() {
        return;
    }
    // A record that verifies re-encodes to exactly the same bytes.
    let block_size = header.block_size as usize;
    let mut writes = Vec::new();
    let mut at = 0usize;
    for e in &meta.entries {
        if e.zero {
            writes.push((e.addr, Payload::Zero(e.blocks)));
            continue;
        }
        let n = e.blocks as usize * block_size;
        writes.push((e.addr, Payload::Data(&body[at..at + n])));
        at += n;
    }
    let seq_offsets: Vec<u32> = meta.entries.iter().map(|e| e.seq_offset).collect();
    let mut out = Vec::new();
    let crcs = encode_record(&mut out, &header, &writes, &seq_offsets);
    assert_eq!(crcs, meta.block_crcs, "re-encoded block CRCs differ");
    assert_eq!(out.len() as u64, header.record_len());
    assert!(out[..] == data[..out.len()], "re-encoded record differs");
}

// ----- decode_footer_index -------------------------------------------------------------------

pub fn fuzz_decode_footer_index(data: &[u8]) {
    // Footer first, then the index section.
    if let Some(footer_bytes) = data.get(..FOOTER_LEN) {
        if let Ok(f) = decode_footer(footer_bytes) {
            check_index(&f, &data[FOOTER_LEN..]);
        }
    }
    // The tail of a sealed segment: records, index section, footer at the very end.
    let Some(footer_at) = data.len().checked_sub(FOOTER_LEN) else {
        return;
    };
    let Ok(f) = decode_footer(&data[footer_at..]) else {
        return;
    };
    let start = usize::try_from(f.records_end).ok();
    let end = start.and_then(|s| s.checked_add(usize::try_from(f.index_len).ok()?));
    if let (Some(start), Some(end)) = (start, end) {
        if let Some(index) = data[..footer_at].get(start..end) {
            check_index(&f, index);
        }
    }
    let before = footer_at.saturating_sub(usize::try_from(f.index_len).unwrap_or(usize::MAX));
    check_index(&f, &data[before..footer_at]);
}

fn check_index(f: &footer::Footer, index: &[u8]) {
    if let Ok(records) = decode_index(f, index) {
        assert_eq!(records.len() as u64, f.record_count);
        for (_, meta) in &records {
            assert_eq!(meta.entries.len(), meta.header.entry_count as usize);
            assert_eq!(meta.block_crcs.len(), meta.header.block_count as usize);
        }
    }
}

// ----- decode_journal ------------------------------------------------------------------------

pub fn fuzz_decode_journal(data: &[u8]) {
    let mut at = 0usize;
    while at < data.len() {
        match MetaRecord::decode(&data[at..]) {
            Ok((record, len)) => {
                assert!(len >= META_HEADER_LEN && len <= data.len() - at);
                // Groups are written either way: "SMEN" inside (format version 4) or, as older
                // versions did, "SMET".
                let (mut out, mut old) = (Vec::new(), Vec::new());
                record.encode(&mut out);
                record.encode_v3(&mut old);
                assert!(
                    out[..] == data[at..at + len] || old[..] == data[at..at + len],
                    "re-encoded journal record differs"
                );
                at += len;
            }
            Err(e) => {
                assert!(e.at <= data.len() - at);
                at += 1;
            }
        }
    }
}

// ----- open_store ----------------------------------------------------------------------------

pub fn fuzz_open_store(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let objects = if mode & 1 == 0 {
        let mut objects = objects_from_bytes(rest);
        if mode & 2 != 0 {
            repair_checksums(&mut objects);
        }
        objects
    } else {
        let bases = base_stores();
        let mut objects = bases[(mode >> 1) as usize % bases.len()].clone();
        mutate(&mut objects, rest);
        objects
    };
    pollster::block_on(exercise(objects));
}

/// Up to [`RAW_OBJECTS_MAX`] objects, each framed as: name selector `u8` (into [`NAMES`]),
/// length `u16` (cut to what is left), bytes. A name given twice gets the bytes appended.
pub fn objects_from_bytes(bytes: &[u8]) -> Objects {
    let mut r = Reader { bytes };
    let mut objects = Objects::new();
    for _ in 0..RAW_OBJECTS_MAX {
        let (Some(selector), Some(len)) = (r.u8(), r.u16()) else {
            break;
        };
        let len = (len as usize).min(r.bytes.len());
        let body = r.take(len).unwrap_or_default();
        let name = NAMES[selector as usize % NAMES.len()];
        objects
            .entry(name.to_string())
            .or_default()
            .extend_from_slice(body);
    }
    objects
}

/// The inverse of [`objects_from_bytes`] for objects named in [`NAMES`] and shorter than 64 KiB.
pub fn objects_to_bytes(objects: &Objects) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, bytes) in objects.iter().take(RAW_OBJECTS_MAX) {
        let Some(selector) = NAMES.iter().position(|n| n == name) else {
            continue;
        };
        let len = bytes.len().min(u16::MAX as usize);
        out.push(selector as u8);
        out.extend_from_slice(&(len as u16).to_le_bytes());
        out.extend_from_slice(&bytes[..len]);
    }
    out
}

/// Names of the objects present, in order (mutation selectors index this list).
fn names(objects: &Objects) -> Vec<String> {
    objects.keys().cloned().collect()
}

fn pick(objects: &Objects, selector: u8) -> Option<String> {
    let names = names(objects);
    if names.is_empty() {
        return None;
    }
    Some(names[selector as usize % names.len()].clone())
}

/// Applies a mutation program to `objects`. Each operation is an opcode byte and its operands;
/// the program stops at the end of the input or after [`MUTATIONS_MAX`] operations. Objects only
/// shrink or grow by a few bytes, so nothing here allocates much.
///
/// | op % 10 | operands | effect |
/// | 0 | obj u8, offset u32, value u8 | set a byte |
/// | 1 | obj u8, offset u32, mask u8 | xor a byte |
/// | 2 | obj u8, offset u32, value u32 | write a u32 |
/// | 3 | obj u8, offset u32, value u64 | write a u64 |
/// | 4 | obj u8, length u32 | truncate to length % (len + 1) |
/// | 5 | obj u8 | delete |
/// | 6 | obj u8, n u8, n bytes | append |
/// | 7 | | repair every checksum ([`repair_checksums`]) |
/// | 8 | obj u8, name u8 | copy the object to a name of [`NAMES`] |
/// | 9 | src u8, src offset u32, dst u8, dst offset u32, len u16 | copy bytes within bounds |
pub fn mutate(objects: &mut Objects, program: &[u8]) {
    let mut r = Reader { bytes: program };
    for _ in 0..MUTATIONS_MAX {
        let Some(op) = r.u8() else { break };
        let applied = match op % 10 {
            0 | 1 => (|| {
                let name = pick(objects, r.u8()?)?;
                let (offset, value) = (r.u32()?, r.u8()?);
                let bytes = objects.get_mut(&name)?;
                let len = bytes.len();
                let byte = bytes.get_mut((offset as usize).checked_rem(len)?)?;
                if op % 10 == 0 {
                    *byte = value;
                } else {
                    *byte ^= value;
                }
                Some(())
            })(),
            2 => (|| {
                let name = pick(objects, r.u8()?)?;
                let (offset, value) = (r.u32()?, r.u32()?);
                let bytes = objects.get_mut(&name)?;
                let at = (offset as usize).checked_rem(bytes.len())?;
                put(bytes, at, &value.to_le_bytes());
                Some(())
            })(),
            3 => (|| {
                let name = pick(objects, r.u8()?)?;
                let (offset, value) = (r.u32()?, r.u64()?);
                let bytes = objects.get_mut(&name)?;
                let at = (offset as usize).checked_rem(bytes.len())?;
                put(bytes, at, &value.to_le_bytes());
                Some(())
            })(),
            4 => (|| {
                let name = pick(objects, r.u8()?)?;
                let len = r.u32()? as usize;
                let bytes = objects.get_mut(&name)?;
                let new_len = len % (bytes.len() + 1);
                bytes.truncate(new_len);
                Some(())
            })(),
            5 => (|| {
                let name = pick(objects, r.u8()?)?;
                objects.remove(&name);
                Some(())
            })(),
            6 => (|| {
                let name = pick(objects, r.u8()?)?;
                let n = r.u8()? as usize;
                let extra = r.take(n.min(r.bytes.len()))?;
                objects.get_mut(&name)?.extend_from_slice(extra);
                Some(())
            })(),
            7 => {
                repair_checksums(objects);
                Some(())
            }
            8 => (|| {
                let name = pick(objects, r.u8()?)?;
                let to = NAMES[r.u8()? as usize % NAMES.len()];
                let bytes = objects.get(&name)?.clone();
                objects.insert(to.to_string(), bytes);
                Some(())
            })(),
            _ => (|| {
                let src = pick(objects, r.u8()?)?;
                let src_offset = r.u32()? as usize;
                let dst = pick(objects, r.u8()?)?;
                let dst_offset = r.u32()? as usize;
                let len = r.u16()? as usize;
                let from = objects.get(&src)?;
                let src_offset = src_offset.checked_rem(from.len())?;
                let len = len.min(from.len() - src_offset);
                let chunk = from[src_offset..src_offset + len].to_vec();
                let to = objects.get_mut(&dst)?;
                let dst_offset = dst_offset.checked_rem(to.len())?;
                let len = len.min(to.len() - dst_offset);
                to[dst_offset..dst_offset + len].copy_from_slice(&chunk[..len]);
                Some(())
            })(),
        };
        if applied.is_none() && r.bytes.is_empty() {
            break;
        }
    }
}

// ----- checksum repair -----------------------------------------------------------------------

/// The store header of a journal, read without checking anything but its shape:
/// (block size, block count, baseline kind).
fn journal_geometry(journal: &[u8]) -> Option<(u32, u64, u32)> {
    if get_u32(journal, 0)? != META_MAGIC || get_u32(journal, 8)? != 48 {
        return None;
    }
    let payload = journal.get(META_HEADER_LEN..META_HEADER_LEN + 48)?;
    Some((
        get_u32(payload, 4)?,
        get_u64(payload, 8)?,
        get_u32(payload, 24)?,
    ))
}

/// Makes every checksum in the store agree with the bytes it covers: the baseline's block CRCs
/// and their CRC in the store header, every journal record, every record of every segment (block
/// CRCs, then the header CRC), and a footer at the end of a segment with its index section.
/// Structure (lengths, counts, links) is left as it is.
pub fn repair_checksums(objects: &mut Objects) {
    let journals: Vec<String> = objects
        .keys()
        .filter(|n| format::parse_meta_object(n).is_some())
        .cloned()
        .collect();
    for name in &journals {
        let Some(journal) = objects.get(name) else {
            continue;
        };
        let geometry = journal_geometry(journal);
        if let Some((block_size, block_count, _)) = geometry {
            let block_size = block_size as usize;
            if let (true, Some(image)) = (
                (512..=65536).contains(&block_size),
                objects.get(format::baseline::BASELINE_OBJECT),
            ) {
                let sums: Vec<u8> = image
                    .chunks_exact(block_size)
                    .enumerate()
                    .flat_map(|(i, b)| block_crc(i as u64, b).to_le_bytes())
                    .collect();
                objects.insert(format::baseline::BASELINE_SUM_OBJECT.into(), sums);
            }
            // The header keeps the CRC of `block_count * 4` bytes of `baseline.sum`, zero-filled.
            let sums = objects
                .get(format::baseline::BASELINE_SUM_OBJECT)
                .cloned()
                .unwrap_or_default();
            let want = block_count.saturating_mul(4);
            let sum_crc = if want <= sums.len() as u64 {
                crc(&sums[..want as usize])
            } else if want <= sums.len() as u64 + (1 << 20) {
                let padding = vec![0u8; want as usize - sums.len()];
                crc_append(crc(&sums), &padding)
            } else {
                // Far longer than any object here: recovery rejects the geometry anyway.
                crc(&sums)
            };
            if let Some(journal) = objects.get_mut(name) {
                put(journal, META_HEADER_LEN + 28, &sum_crc.to_le_bytes());
            }
        }
        if let Some(journal) = objects.get_mut(name) {
            repair_journal(journal);
        }
    }
    let segments: Vec<String> = objects
        .keys()
        .filter(|n| format::parse_segment_object(n).is_some())
        .cloned()
        .collect();
    for name in segments {
        if let Some(segment) = objects.get_mut(&name) {
            repair_segment(segment);
        }
    }
}

/// Fixes the CRC of each record in turn, as far as the framing goes; inside a group, the
/// records it holds first.
fn repair_journal(journal: &mut [u8]) {
    let mut at = 0usize;
    while let (Some(magic), Some(len)) = (get_u32(journal, at), get_u32(journal, at + 8)) {
        let len = len as usize;
        let end = at + META_HEADER_LEN + len;
        if magic != META_MAGIC || len > META_PAYLOAD_MAX || end > journal.len() {
            break;
        }
        if get_u32(journal, at + 4).map(|k| k & 0xffff) == Some(u32::from(META_KIND_GROUP)) {
            repair_journal(&mut journal[at + META_HEADER_LEN..end]);
        }
        let c = crc_append(
            crc(&journal[at..at + 12]),
            &journal[at + META_HEADER_LEN..end],
        );
        put(journal, at + 12, &c.to_le_bytes());
        at = end;
    }
}

/// Fixes the block CRCs of a record (as far as its bytes go) and then its header CRC.
fn repair_record(record: &mut [u8], with_data: bool) {
    let Some(header_bytes) = record.get(..RECORD_HEADER_LEN) else {
        return;
    };
    let Ok(h) = decode_header(header_bytes) else {
        return;
    };
    let entries_at = RECORD_HEADER_LEN;
    let crcs_at = entries_at + h.entry_count as usize * 16;
    let data_at = RECORD_HEADER_LEN + h.tables_len();
    let block_size = h.block_size as usize;
    if with_data {
        let mut block = 0usize;
        'entries: for e in 0..h.entry_count as usize {
            let (Some(addr), Some(blocks)) = (
                get_u64(record, entries_at + e * 16),
                get_u32(record, entries_at + e * 16 + 8),
            ) else {
                break;
            };
            for i in 0..blocks as u64 {
                if block >= h.block_count as usize {
                    break 'entries;
                }
                let start = data_at + block * block_size;
                let Some(data) = record.get(start..start + block_size) else {
                    break 'entries;
                };
                let c = block_crc(addr.wrapping_add(i), data);
                put(record, crcs_at + block * 4, &c.to_le_bytes());
                block += 1;
            }
        }
    }
    let tables_end = data_at.min(record.len());
    let c = crc_append(crc(&record[..60]), &record[RECORD_HEADER_LEN..tables_end]);
    put(record, 60, &c.to_le_bytes());
}

fn repair_segment(segment: &mut [u8]) {
    let mut at = 0usize;
    while let Some(header_bytes) = segment.get(at..at + RECORD_HEADER_LEN) {
        let Ok(h) = decode_header(header_bytes) else {
            break;
        };
        let Some(end) = usize::try_from(h.record_len())
            .ok()
            .and_then(|len| at.checked_add(len))
            .filter(|&end| end <= segment.len())
        else {
            break;
        };
        repair_record(&mut segment[at..end], true);
        at = end;
    }
    let Some(footer_at) = segment.len().checked_sub(FOOTER_LEN) else {
        return;
    };
    if get_u32(segment, footer_at) != Some(FOOTER_MAGIC) {
        return;
    }
    let index_len = get_u64(segment, footer_at + 24).unwrap_or(u64::MAX);
    if let Some(index_at) = usize::try_from(index_len)
        .ok()
        .and_then(|len| footer_at.checked_sub(len))
    {
        let index = &mut segment[index_at..footer_at];
        // Index entries: record offset u64, then the record's header and tables.
        let mut at = 16usize;
        while let Some(header_bytes) = index.get(at + 8..at + 8 + RECORD_HEADER_LEN) {
            let Ok(h) = decode_header(header_bytes) else {
                break;
            };
            let end = at + 8 + RECORD_HEADER_LEN + h.tables_len();
            if end > index.len() {
                break;
            }
            repair_record(&mut index[at + 8..end], false);
            at = end;
        }
        let c = crc(index);
        put(segment, footer_at + 48, &c.to_le_bytes());
    }
    let c = crc(&segment[footer_at..footer_at + 60]);
    put(segment, footer_at + 60, &c.to_le_bytes());
}

// ----- valid stores --------------------------------------------------------------------------

fn pattern(addr: u64, version: u8, blocks: usize, block_size: usize) -> Vec<u8> {
    (0..blocks * block_size)
        .map(|i| (addr as usize * 31 + i / 7 + version as usize * 101) as u8)
        .collect()
}

/// A few valid stores, built once: their objects are what the mutation mode starts from.
/// 0: zero baseline, 512-byte blocks, two snapshots and a synced head with records.
/// 1: image baseline, 512-byte blocks, one snapshot, synced head.
/// 2: 4096-byte blocks, no snapshot, two syncs (records carry a non-zero durable offset).
/// 3: just created, nothing written.
/// 4: zero baseline, 512-byte blocks, after compaction, deletion, rollback and merge (journal
///    groups, rewritten segments with sequence tables, dropped and released partitions).
pub fn base_stores() -> &'static [Objects] {
    static BASES: OnceLock<Vec<Objects>> = OnceLock::new();
    BASES.get_or_init(|| (0..5).map(build_base_store).collect())
}

fn build_base_store(variant: usize) -> Objects {
    pollster::block_on(async {
        let clock = Rc::new(ManualClock::new(CLOCK_START_MS));
        let storage = MemoryStorage::new();
        let bs = 512usize;
        let mut store = match variant {
            1 => {
                let mut import = Store::import_baseline(
                    storage.clone(),
                    512,
                    Some(16 * 512),
                    Some(7),
                    clock.clone(),
                )
                .await
                .expect("import_baseline");
                import.push(&pattern(0, 9, 16, bs)).await.expect("push");
                import.finish().await.expect("finish")
            }
            2 => Store::create(storage.clone(), CreateOptions::new(8), clock.clone())
                .await
                .expect("create"),
            _ => Store::create(
                storage.clone(),
                CreateOptions::new(64).block_size(512),
                clock.clone(),
            )
            .await
            .expect("create"),
        };
        match variant {
            0 => {
                store.write(1, &pattern(1, 1, 1, bs)).await.expect("write");
                let (a, b) = (pattern(5, 1, 2, bs), pattern(9, 1, 1, bs));
                store
                    .write_batch(&[(5, &a), (9, &b)])
                    .await
                    .expect("write_batch");
                clock.advance(1000);
                store.snapshot(Some("first")).await.expect("snapshot");
                store.write(1, &pattern(1, 2, 1, bs)).await.expect("write");
                store
                    .write(63, &pattern(63, 2, 1, bs))
                    .await
                    .expect("write");
                clock.advance(1000);
                store.snapshot(None).await.expect("snapshot");
                store.write(2, &pattern(2, 3, 3, bs)).await.expect("write");
                store.sync().await.expect("sync");
                store.write(6, &pattern(6, 4, 1, bs)).await.expect("write");
                store.sync().await.expect("sync");
            }
            1 => {
                store.write(3, &pattern(3, 1, 2, bs)).await.expect("write");
                store.snapshot(Some("s")).await.expect("snapshot");
                store
                    .write(15, &pattern(15, 2, 1, bs))
                    .await
                    .expect("write");
                store.sync().await.expect("sync");
            }
            2 => {
                let bs = 4096;
                store.write(0, &pattern(0, 1, 1, bs)).await.expect("write");
                store.sync().await.expect("sync");
                store.write(7, &pattern(7, 1, 1, bs)).await.expect("write");
                store.write(3, &pattern(3, 1, 2, bs)).await.expect("write");
                store.sync().await.expect("sync");
            }
            4 => {
                for (addr, version) in [(1, 1), (1, 2), (2, 1), (3, 1)] {
                    store
                        .write(addr, &pattern(addr, version, 1, bs))
                        .await
                        .expect("write");
                }
                let a = store.snapshot(Some("a")).await.expect("snapshot");
                let two = [pattern(2, 2, 2, bs), pattern(10, 2, 1, bs)];
                store
                    .write_batch(&[(2, &two[0]), (10, &two[1])])
                    .await
                    .expect("write_batch");
                store.write(3, &pattern(3, 3, 1, bs)).await.expect("write");
                let b = store.snapshot(Some("b")).await.expect("snapshot");
                store.write(4, &pattern(4, 4, 4, bs)).await.expect("write");
                let c = store.snapshot(Some("c")).await.expect("snapshot");
                store.write(5, &pattern(5, 5, 1, bs)).await.expect("write");
                store.sync().await.expect("sync");
                store.compact(b, &mut |_| true).await.expect("compact");
                store.compact(c, &mut |_| true).await.expect("compact");
                let _ = store.merge(a, &mut |_| true).await;
                store.rollback(b, Some("rolled")).await.expect("rollback");
                store.write(6, &pattern(6, 6, 2, bs)).await.expect("write");
                let d = store.snapshot(Some("d")).await.expect("snapshot");
                store.write(7, &pattern(7, 7, 1, bs)).await.expect("write");
                let _ = store.delete_volume(d).await;
                store.sync().await.expect("sync");
            }
            _ => {}
        }
        drop(store);
        storage.with_objects(|objects| objects.clone())
    })
}

// ----- exercising an opened store ------------------------------------------------------------

async fn walk(store: &Store<MemoryStorage>, start: CursorStart, with_data: bool, steps: u64) {
    let Ok(mut cursor) = store.cursor(start) else {
        return;
    };
    let mut last = None;
    for _ in 0..steps {
        match store.next_entry(&mut cursor, with_data).await {
            Ok(Some(entry)) => {
                // Parts of one entry kept by compaction share its sequence number.
                if let Some(last) = last {
                    assert!(
                        entry.seq >= last,
                        "cursor went back from seq {last} to {}",
                        entry.seq
                    );
                }
                if let Some(data) = &entry.data {
                    assert_eq!(
                        data.len() as u64,
                        u64::from(entry.blocks) * u64::from(store.block_size())
                    );
                }
                last = Some(entry.seq);
            }
            Ok(None) | Err(_) => break,
        }
    }
}

async fn exercise(objects: Objects) {
    let storage = MemoryStorage::new();
    storage.with_objects(|map| *map = objects);
    let clock = Rc::new(ManualClock::new(CLOCK_START_MS + 1_000_000));
    let Ok(store) = Store::open(storage.clone(), clock.clone()).await else {
        return;
    };
    let _ = store.info();
    let volumes = store.volumes();
    let block_count = store.block_count();
    let span = block_count.min(READ_BLOCKS_MAX);
    for v in &volumes {
        let _ = store.read_at(v.id, 0, span).await;
        for addr in 0..span {
            let _ = store.read_at(v.id, addr, 1).await;
        }
        if block_count > span {
            let _ = store.read_at(v.id, block_count - 1, 1).await;
        }
    }
    let _ = store.read_at(VolumeId(u64::MAX), 0, 1).await;
    let _ = store.space();
    for v in &volumes {
        let _ = store.diff(store.head(), v.id).await;
    }
    let _ = store.read_at(store.head(), block_count, 1).await;
    let entries: u64 = volumes
        .iter()
        .map(|v| v.entry_count)
        .fold(0, u64::saturating_add);
    let steps = entries.saturating_add(8).min(CURSOR_STEPS_MAX);
    walk(&store, CursorStart::Beginning, true, steps).await;
    for v in &volumes {
        walk(&store, CursorStart::Volume(v.id), false, steps).await;
        walk(
            &store,
            CursorStart::Seq(v.next_seq.saturating_sub(1)),
            true,
            4,
        )
        .await;
    }
    // The store keeps working: one more write, a snapshot, a sync, and it opens again.
    let mut store = store;
    let block = vec![0x5a; store.block_size() as usize];
    let snapshot = store
        .volumes()
        .iter()
        .find(|v| v.kind == VolumeKind::Snapshot)
        .map(|v| v.id);
    let ok = store.write(block_count - 1, &block).await.is_ok()
        && store.snapshot(Some("fuzz")).await.is_ok()
        && store.sync().await.is_ok();
    if let (true, Some(snapshot)) = (ok, snapshot) {
        let _ = store.compact(snapshot, &mut |_| true).await;
    }
    drop(store);
    if ok {
        if let Ok(store) = Store::open(storage, clock).await {
            let _ = store.read(block_count - 1, 1).await;
        }
    }
}

// ----- seeds ---------------------------------------------------------------------------------

/// Seed inputs built from valid structures, so that fuzzing starts deep: (target, input).
pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    for (variant, objects) in base_stores().iter().enumerate() {
        for (name, bytes) in objects {
            if format::parse_meta_object(name).is_some() {
                out.push(("decode_journal", bytes.clone()));
            }
            if format::parse_segment_object(name).is_some() {
                // Every record on its own, and the whole segment.
                let mut at = 0usize;
                while let Some(h) = bytes.get(at..).and_then(|b| decode_header(b).ok()) {
                    let end = at + h.record_len() as usize;
                    let Some(record) = bytes.get(at..end) else {
                        break;
                    };
                    out.push(("decode_record", record.to_vec()));
                    at = end;
                }
                if let Some(footer_at) = bytes.len().checked_sub(FOOTER_LEN) {
                    if let Ok(f) = decode_footer(&bytes[footer_at..]) {
                        out.push(("decode_footer_index", bytes.clone()));
                        let mut footer_first = bytes[footer_at..].to_vec();
                        footer_first.extend_from_slice(&bytes[f.records_end as usize..footer_at]);
                        out.push(("decode_footer_index", footer_first));
                    }
                }
            }
        }
        // open_store: the objects raw, raw with checksum repair, and the valid store untouched,
        // with a damaged byte, with damage then repair.
        let raw = objects_to_bytes(objects);
        for mode in [0u8, 2] {
            let mut input = vec![mode];
            input.extend_from_slice(&raw);
            out.push(("open_store", input));
        }
        let mode = 1 | (variant as u8) << 1;
        out.push(("open_store", vec![mode]));
        out.push(("open_store", vec![mode, 1, 3, 100, 0, 0, 0, 0x10]));
        out.push(("open_store", vec![mode, 1, 3, 100, 0, 0, 0, 0x10, 7]));
        out.push(("open_store", vec![mode, 4, 3, 0, 0x10, 0, 0]));
    }
    out
}
