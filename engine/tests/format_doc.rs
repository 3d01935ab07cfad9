//! Ties `engine/docs/format.md` to the code: every table row that names a constant must give that
//! constant's offset, and real encoded structures must have their fields where the document says.

use strata_engine::format::commit::*;
use strata_engine::format::footer::*;
use strata_engine::format::meta::*;
use strata_engine::format::record::*;

fn constant(name: &str) -> Option<usize> {
    Some(match name {
        "META_KIND_OFFSET" => META_KIND_OFFSET,
        "META_RESERVED_OFFSET" => META_RESERVED_OFFSET,
        "META_LEN_OFFSET" => META_LEN_OFFSET,
        "META_CRC_OFFSET" => META_CRC_OFFSET,
        "RECORD_MAGIC_OFFSET" => RECORD_MAGIC_OFFSET,
        "RECORD_KIND_OFFSET" => RECORD_KIND_OFFSET,
        "RECORD_FLAGS_OFFSET" => RECORD_FLAGS_OFFSET,
        "RECORD_VOLUME_OFFSET" => RECORD_VOLUME_OFFSET,
        "RECORD_FIRST_SEQ_OFFSET" => RECORD_FIRST_SEQ_OFFSET,
        "RECORD_TIMESTAMP_OFFSET" => RECORD_TIMESTAMP_OFFSET,
        "RECORD_ENTRY_COUNT_OFFSET" => RECORD_ENTRY_COUNT_OFFSET,
        "RECORD_BLOCK_COUNT_OFFSET" => RECORD_BLOCK_COUNT_OFFSET,
        "RECORD_DURABLE_OFFSET" => RECORD_DURABLE_OFFSET,
        "RECORD_TABLES_LEN_OFFSET" => RECORD_TABLES_LEN_OFFSET,
        "RECORD_BLOCK_SIZE_OFFSET" => RECORD_BLOCK_SIZE_OFFSET,
        "RECORD_RESERVED_OFFSET" => RECORD_RESERVED_OFFSET,
        "RECORD_CRC_OFFSET" => RECORD_CRC_OFFSET,
        "FOOTER_MAGIC_OFFSET" => FOOTER_MAGIC_OFFSET,
        "FOOTER_VERSION_OFFSET" => FOOTER_VERSION_OFFSET,
        "FOOTER_VOLUME_OFFSET" => FOOTER_VOLUME_OFFSET,
        "FOOTER_RECORDS_END_OFFSET" => FOOTER_RECORDS_END_OFFSET,
        "FOOTER_INDEX_LEN_OFFSET" => FOOTER_INDEX_LEN_OFFSET,
        "FOOTER_RECORD_COUNT_OFFSET" => FOOTER_RECORD_COUNT_OFFSET,
        "FOOTER_NEXT_SEQ_OFFSET" => FOOTER_NEXT_SEQ_OFFSET,
        "FOOTER_INDEX_CRC_OFFSET" => FOOTER_INDEX_CRC_OFFSET,
        "FOOTER_SEAL_LEN_OFFSET" => FOOTER_SEAL_LEN_OFFSET,
        "FOOTER_SEAL_CRC_OFFSET" => FOOTER_SEAL_CRC_OFFSET,
        "SEAL_MAGIC_OFFSET" => SEAL_MAGIC_OFFSET,
        "SEAL_FLAGS_OFFSET" => SEAL_FLAGS_OFFSET,
        "SEAL_SEALED_MS_OFFSET" => SEAL_SEALED_MS_OFFSET,
        "SEAL_SUCCESSOR_OFFSET" => SEAL_SUCCESSOR_OFFSET,
        "SEAL_LABEL_LEN_OFFSET" => SEAL_LABEL_LEN_OFFSET,
        "SEAL_LABEL_OFFSET" => SEAL_LABEL_OFFSET,
        "FOOTER_CRC_OFFSET" => FOOTER_CRC_OFFSET,
        "COMMIT_MAGIC_OFFSET" => COMMIT_MAGIC_OFFSET,
        "COMMIT_VERSION_OFFSET" => COMMIT_VERSION_OFFSET,
        "COMMIT_NUMBER_OFFSET" => COMMIT_NUMBER_OFFSET,
        "COMMIT_STORE_ID_OFFSET" => COMMIT_STORE_ID_OFFSET,
        "COMMIT_JOURNAL_GENERATION_OFFSET" => COMMIT_JOURNAL_GENERATION_OFFSET,
        "COMMIT_JOURNAL_LEN_OFFSET" => COMMIT_JOURNAL_LEN_OFFSET,
        "COMMIT_HEAD_VOLUME_OFFSET" => COMMIT_HEAD_VOLUME_OFFSET,
        "COMMIT_HEAD_LEN_OFFSET" => COMMIT_HEAD_LEN_OFFSET,
        "COMMIT_RESERVED_OFFSET" => COMMIT_RESERVED_OFFSET,
        "COMMIT_CRC_OFFSET" => COMMIT_CRC_OFFSET,
        "PRIMARY_MAGIC_OFFSET" => strata_engine::mirror::layout::PRIMARY_MAGIC_OFFSET,
        "PRIMARY_VERSION_OFFSET" => strata_engine::mirror::layout::PRIMARY_VERSION_OFFSET,
        "PRIMARY_STORE_ID_OFFSET" => strata_engine::mirror::layout::PRIMARY_STORE_ID_OFFSET,
        "PRIMARY_BLOCK_SIZE_OFFSET" => strata_engine::mirror::layout::PRIMARY_BLOCK_SIZE_OFFSET,
        "PRIMARY_FLAGS_OFFSET" => strata_engine::mirror::layout::PRIMARY_FLAGS_OFFSET,
        "PRIMARY_BLOCK_COUNT_OFFSET" => strata_engine::mirror::layout::PRIMARY_BLOCK_COUNT_OFFSET,
        "PRIMARY_GENERATION_OFFSET" => strata_engine::mirror::layout::PRIMARY_GENERATION_OFFSET,
        "PRIMARY_HEAD_OFFSET" => strata_engine::mirror::layout::PRIMARY_HEAD_OFFSET,
        "PRIMARY_NEXT_SEQ_OFFSET" => strata_engine::mirror::layout::PRIMARY_NEXT_SEQ_OFFSET,
        "PRIMARY_LEG_INDEX_OFFSET" => strata_engine::mirror::layout::PRIMARY_LEG_INDEX_OFFSET,
        "PRIMARY_LEG_COUNT_OFFSET" => strata_engine::mirror::layout::PRIMARY_LEG_COUNT_OFFSET,
        "PRIMARY_CRC_OFFSET" => strata_engine::mirror::layout::PRIMARY_CRC_OFFSET,
        _ => return None,
    })
}

#[test]
fn every_documented_offset_matches_its_constant() {
    let doc = include_str!("../docs/format.md");
    let mut checked = 0;
    for line in doc.lines() {
        let cells: Vec<&str> = line
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        if cells.len() != 4 {
            continue;
        }
        let Ok(offset) = cells[0].parse::<usize>() else {
            continue;
        };
        if cells[3].is_empty() {
            continue;
        }
        let value = constant(cells[3])
            .unwrap_or_else(|| panic!("format.md names unknown constant {}", cells[3]));
        assert_eq!(
            value, offset,
            "format.md says {} is at {offset}, the code says {value}",
            cells[3]
        );
        checked += 1;
    }
    assert!(checked >= 37, "only {checked} documented offsets found");
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

#[test]
fn encoded_record_has_its_fields_where_the_document_says() {
    let header = RecordHeader {
        flags: 0,
        volume: 7,
        first_seq: 42,
        timestamp_ms: 1_700_000_000_123,
        entry_count: 2,
        block_count: 3,
        durable_offset: 999,
        block_size: 512,
    };
    let a = vec![1u8; 1024];
    let b = vec![2u8; 512];
    let mut out = Vec::new();
    let crcs = encode_record(
        &mut out,
        &header,
        &[(10, Payload::Data(&a)), (20, Payload::Data(&b))],
        &[],
    );
    assert_eq!(&out[0..4], b"SREC");
    assert_eq!(u64_at(&out, RECORD_VOLUME_OFFSET), 7);
    assert_eq!(u64_at(&out, RECORD_FIRST_SEQ_OFFSET), 42);
    assert_eq!(u64_at(&out, RECORD_TIMESTAMP_OFFSET), 1_700_000_000_123);
    assert_eq!(u32_at(&out, RECORD_ENTRY_COUNT_OFFSET), 2);
    assert_eq!(u32_at(&out, RECORD_BLOCK_COUNT_OFFSET), 3);
    assert_eq!(u64_at(&out, RECORD_DURABLE_OFFSET), 999);
    assert_eq!(u32_at(&out, RECORD_TABLES_LEN_OFFSET), 16 * 2 + 4 * 3);
    assert_eq!(u32_at(&out, RECORD_BLOCK_SIZE_OFFSET), 512);
    // Entry table, then block CRCs, then data.
    assert_eq!(u64_at(&out, 64), 10);
    assert_eq!(u32_at(&out, 72), 2);
    assert_eq!(u64_at(&out, 80), 20);
    assert_eq!(u32_at(&out, 88), 1);
    let expected_crc = {
        let mut c = crc32c::crc32c(&10u64.to_le_bytes());
        c = crc32c::crc32c_append(c, &a[..512]);
        c
    };
    assert_eq!(u32_at(&out, 96), expected_crc);
    assert_eq!(crcs[0], expected_crc);
    assert_eq!(out.len(), 64 + 32 + 12 + 3 * 512);
    let header_crc = crc32c::crc32c_append(crc32c::crc32c(&out[..60]), &out[64..108]);
    assert_eq!(u32_at(&out, RECORD_CRC_OFFSET), header_crc);
    let meta = decode_tables(&out[..64], &out[64..108]).unwrap();
    assert_eq!(meta.header, header);
    assert!(verify_data(&meta, &out[108..]).is_ok());
}

#[test]
fn a_zero_extent_is_an_entry_with_the_zero_bit_and_no_crc_or_data() {
    // One data block at 5, then 1000 zero blocks from 100: the zero extent adds 16 bytes.
    let header = RecordHeader {
        flags: RECORD_FLAG_ZERO_ENTRIES,
        volume: 3,
        first_seq: 8,
        timestamp_ms: 1,
        entry_count: 2,
        block_count: 1,
        durable_offset: 0,
        block_size: 512,
    };
    let a = vec![7u8; 512];
    let mut out = Vec::new();
    let crcs = encode_record(
        &mut out,
        &header,
        &[(5, Payload::Data(&a)), (100, Payload::Zero(1000))],
        &[],
    );
    assert_eq!(crcs.len(), 1);
    assert_eq!(u16::from_le_bytes([out[6], out[7]]), 2, "flags");
    assert_eq!(u32_at(&out, RECORD_BLOCK_COUNT_OFFSET), 1);
    assert_eq!(u32_at(&out, RECORD_TABLES_LEN_OFFSET), 16 * 2 + 4);
    assert_eq!(u64_at(&out, 80), 100);
    assert_eq!(u32_at(&out, 88), ENTRY_ZERO | 1000);
    assert_eq!(out.len(), 64 + 36 + 512);
    let meta = decode_tables(&out[..64], &out[64..100]).unwrap();
    assert!(meta.entries[1].zero && meta.entries[1].blocks == 1000);
    assert!(!meta.entries[0].zero);
    assert!(verify_data(&meta, &out[100..]).is_ok());
    // Without the record flag the bit is not a zero extent: the entry is refused as too long
    // for the record's blocks.
    let mut plain = out.clone();
    plain[6] = 0;
    let c = crc32c::crc32c_append(crc32c::crc32c(&plain[..60]), &plain[64..100]);
    plain[60..64].copy_from_slice(&c.to_le_bytes());
    assert!(decode_tables(&plain[..64], &plain[64..100]).is_err());
    // A zero extent longer than a record's blocks is refused.
    let mut long = Vec::new();
    encode_record(
        &mut long,
        &RecordHeader {
            block_count: 0,
            entry_count: 1,
            ..header
        },
        &[(0, Payload::Zero(ZERO_EXTENT_BLOCKS_MAX + 1))],
        &[],
    );
    assert!(decode_tables(&long[..64], &long[64..80]).is_err());
}

#[test]
fn journal_records_round_trip_with_documented_layout() {
    let record = MetaRecord::PartitionSealed {
        volume: 3,
        sealed_ms: 77,
        segment_len: 4096,
        next_seq: 12,
        label: "nightly".into(),
    };
    let mut out = Vec::new();
    record.encode(&mut out);
    assert_eq!(&out[0..4], b"SMET");
    assert_eq!(
        u16::from_le_bytes([out[4], out[5]]),
        META_KIND_PARTITION_SEALED
    );
    assert_eq!(u32_at(&out, META_LEN_OFFSET) as usize, 36 + 7);
    assert_eq!(u64_at(&out, 16), 3);
    assert_eq!(u32_at(&out, 16 + 32), 7);
    assert_eq!(&out[16 + 36..], b"nightly");
    assert_eq!(MetaRecord::decode(&out).unwrap(), (record, out.len()));
    let created = MetaRecord::PartitionCreated {
        volume: 2,
        parent: 1,
        created_ms: 5,
        first_seq: 9,
        segment_generation: 0,
        flags: CREATED_FLAG_HEAD,
    };
    let mut out = Vec::new();
    created.encode(&mut out);
    assert_eq!(u32_at(&out, META_LEN_OFFSET), 40);
    let mut store = Vec::new();
    MetaRecord::Store {
        format_version: 1,
        block_size: 4096,
        block_count: 10,
        created_ms: 1,
        baseline_kind: 0,
        baseline_sum_crc: 0,
        store_id: 5,
        generation: 1,
    }
    .encode(&mut store);
    assert_eq!(u32_at(&store, META_LEN_OFFSET) as usize, STORE_PAYLOAD_LEN);
}

#[test]
fn footer_has_its_fields_where_the_document_says() {
    let mut index = Vec::new();
    begin_index(&mut index);
    let tail = finish_index_and_footer(9, 1000, 55, 0, &index, None);
    let footer = &tail[tail.len() - FOOTER_LEN..];
    assert_eq!(tail.len(), 16 + FOOTER_LEN);
    assert_eq!(u32_at(footer, FOOTER_SEAL_LEN_OFFSET), 0);
    assert_eq!(u32_at(footer, FOOTER_SEAL_CRC_OFFSET), 0);
    assert_eq!(&footer[0..4], b"SFTR");
    assert_eq!(u64_at(footer, FOOTER_VOLUME_OFFSET), 9);
    assert_eq!(u64_at(footer, FOOTER_RECORDS_END_OFFSET), 1000);
    assert_eq!(u64_at(footer, FOOTER_INDEX_LEN_OFFSET), 16);
    assert_eq!(u64_at(footer, FOOTER_NEXT_SEQ_OFFSET), 55);
    assert_eq!(&tail[0..4], b"SIDX");
    let decoded = decode_footer(footer).unwrap();
    assert_eq!(decoded.records_end, 1000);
    assert!(decode_index(&decoded, &tail[..16]).unwrap().is_empty());
}

#[test]
fn seal_block_has_its_fields_where_the_document_says() {
    let mut index = Vec::new();
    begin_index(&mut index);
    let seal = Seal {
        sealed_ms: 1_700_000_000_123,
        successor: 42,
        label: "nightly".into(),
    };
    let tail = finish_index_and_footer(9, 1000, 55, 0, &index, Some(&seal));
    let block = &tail[16..tail.len() - FOOTER_LEN];
    assert_eq!(block.len(), SEAL_LABEL_OFFSET + 7);
    assert_eq!(&block[SEAL_MAGIC_OFFSET..4], b"SSEL");
    assert_eq!(u32_at(block, SEAL_FLAGS_OFFSET), 0);
    assert_eq!(u64_at(block, SEAL_SEALED_MS_OFFSET), 1_700_000_000_123);
    assert_eq!(u64_at(block, SEAL_SUCCESSOR_OFFSET), 42);
    assert_eq!(u32_at(block, SEAL_LABEL_LEN_OFFSET), 7);
    assert_eq!(&block[SEAL_LABEL_OFFSET..], b"nightly");
    let footer = &tail[tail.len() - FOOTER_LEN..];
    assert_eq!(u32_at(footer, FOOTER_SEAL_LEN_OFFSET) as usize, block.len());
    assert_eq!(
        u32_at(footer, FOOTER_SEAL_CRC_OFFSET),
        strata_engine::format::crc(block)
    );
    let decoded = decode_footer(footer).unwrap();
    assert_eq!(decoded.footer_at(), Some(1000 + tail.len() as u64 - 64));
    assert_eq!(decode_seal(&decoded, block).unwrap(), seal);
    // One flipped bit anywhere in the block fails its checksum.
    for at in 0..block.len() {
        let mut bad = block.to_vec();
        bad[at] ^= 0x10;
        assert!(decode_seal(&decoded, &bad).is_err(), "byte {at}");
    }
}

#[test]
fn commit_point_has_its_fields_where_the_document_says() {
    let point = CommitPoint {
        number: 5,
        store_id: 0x1122_3344_5566_7788,
        journal_generation: 3,
        journal_len: 4096,
        head_volume: 12,
        head_len: 80_000,
    };
    let slot = point.encode();
    assert_eq!(slot.len(), COMMIT_SLOT_LEN);
    assert_eq!(&slot[0..4], b"SCPT");
    assert_eq!(u32_at(&slot, COMMIT_VERSION_OFFSET), 1);
    assert_eq!(u64_at(&slot, COMMIT_NUMBER_OFFSET), 5);
    assert_eq!(u64_at(&slot, COMMIT_STORE_ID_OFFSET), 0x1122_3344_5566_7788);
    assert_eq!(u64_at(&slot, COMMIT_JOURNAL_GENERATION_OFFSET), 3);
    assert_eq!(u64_at(&slot, COMMIT_JOURNAL_LEN_OFFSET), 4096);
    assert_eq!(u64_at(&slot, COMMIT_HEAD_VOLUME_OFFSET), 12);
    assert_eq!(u64_at(&slot, COMMIT_HEAD_LEN_OFFSET), 80_000);
    assert_eq!(u32_at(&slot, COMMIT_RESERVED_OFFSET), 0);
    assert_eq!(
        u32_at(&slot, COMMIT_CRC_OFFSET),
        crc32c::crc32c(&slot[..COMMIT_CRC_OFFSET])
    );
    // Number 5 goes to slot 1, at byte 512.
    assert_eq!(point.slot_offset(), COMMIT_SLOT_STRIDE);
    assert_eq!(COMMIT_SLOT_STRIDE, 512);
}

#[test]
fn records_inside_a_group_carry_the_nested_magic_and_older_groups_are_read() {
    let members = vec![
        MetaRecord::VolumeReleased { volume: 4 },
        MetaRecord::MergeStarted { volume: 5 },
    ];
    let group = MetaRecord::Group(members.clone());
    let mut bytes = Vec::new();
    group.encode(&mut bytes);
    assert_eq!(&bytes[0..4], b"SMET");
    assert_eq!(&bytes[META_HEADER_LEN..META_HEADER_LEN + 4], b"SMEN");
    // A nested record alone is not a journal record.
    assert!(MetaRecord::decode(&bytes[META_HEADER_LEN..]).is_err());
    assert_eq!(MetaRecord::decode(&bytes).unwrap().0, group);
    // What format versions before 4 wrote: "SMET" inside the group too.
    let mut old = Vec::new();
    group.encode_v3(&mut old);
    assert_eq!(&old[META_HEADER_LEN..META_HEADER_LEN + 4], b"SMET");
    assert_eq!(MetaRecord::decode(&old).unwrap().0, group);
}
