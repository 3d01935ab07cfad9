//! The metadata journal: an append-only list of checksummed records describing the store
//! (geometry, baseline, the partition tree). Every append is a durable commit, so the journal's
//! state is exactly the acknowledged metadata operations; a torn last record is an operation
//! that was never acknowledged.
//!
//! Record layout: a 16-byte header (magic `"SMET"`, kind `u16`, reserved `u16`, payload length
//! `u32`, CRC-32C `u32` over header bytes 0..12 and the payload), then the payload.

use super::{crc, crc_append, set_u32_at, u32_at, DecodeError, Decoder, Encode};

/// `"SMET"`.
pub const META_MAGIC: u32 = u32::from_le_bytes(*b"SMET");
/// `"SMEN"`: the magic of a record inside a group (format version 4; older versions wrote
/// [`META_MAGIC`] there, which is still read). A torn group whose first sector was lost then
/// leaves no record that looks like one appended after it.
pub const META_NESTED_MAGIC: u32 = u32::from_le_bytes(*b"SMEN");
/// Header length.
pub const META_HEADER_LEN: usize = 16;
/// Offset of the kind in the header.
pub const META_KIND_OFFSET: usize = 4;
/// Offset of the reserved field.
pub const META_RESERVED_OFFSET: usize = 6;
/// Offset of the payload length.
pub const META_LEN_OFFSET: usize = 8;
/// Offset of the CRC.
pub const META_CRC_OFFSET: usize = 12;
/// Largest payload a reader accepts, and a version-2 store writes: 1 MiB.
pub const META_PAYLOAD_MAX: usize = 1 << 20;
/// Largest payload a version-1 store writes (and older readers accept): 64 KiB.
pub const META_PAYLOAD_MAX_V1: usize = 64 * 1024;
/// Longest label, in bytes of UTF-8.
pub const LABEL_BYTES_MAX: usize = 255;

/// Kind: the store header (always the first record).
pub const META_KIND_STORE: u16 = 1;
/// Kind: a partition was created.
pub const META_KIND_PARTITION_CREATED: u16 = 2;
/// Kind: a partition was sealed (became an immutable snapshot volume).
pub const META_KIND_PARTITION_SEALED: u16 = 3;

/// Kind: a sealed partition's segment was rewritten (in-place compaction).
pub const META_KIND_PARTITION_REWRITTEN: u16 = 4;
/// Kind: a partition was removed; its children now hang from its parent.
pub const META_KIND_PARTITION_DROPPED: u16 = 5;
/// Kind: a volume identifier was released (deleted); its partition stays while descendants need it.
pub const META_KIND_VOLUME_RELEASED: u16 = 6;
/// Kind: merging a partition into the baseline has begun (redone at open if not finished).
pub const META_KIND_MERGE_STARTED: u16 = 7;
/// Kind: merging a partition into the baseline has finished.
pub const META_KIND_MERGE_FINISHED: u16 = 8;

/// Kind: several records that take effect together (one checksum covers them all, so a torn
/// append loses all of them or none).
pub const META_KIND_GROUP: u16 = 9;

/// Kind: the storage management policy assigned to the log (JSON; empty: none).
pub const META_KIND_POLICY: u16 = 10;
/// Kind: the per-volume policy assignments (JSON).
pub const META_KIND_ASSIGNMENTS: u16 = 11;
/// Kind: the policy executor's state: last runs and copies (JSON).
pub const META_KIND_POLICY_STATE: u16 = 12;
/// Kind: one audit-trail entry of a policy decision carried out (JSON).
pub const META_KIND_AUDIT: u16 = 13;
/// Kind: the branch registry (JSON; format version 3): which branch the live head belongs to,
/// and the head volume of every other branch.
pub const META_KIND_BRANCHES: u16 = 14;

/// Flag of [`MetaRecord::PartitionRewritten`]: sequence numbers in the segment may have gaps.
pub const REWRITTEN_FLAG_COMPACTED: u32 = 1;

/// Payload length of a store header.
pub const STORE_PAYLOAD_LEN: usize = 48;

/// Flag of [`MetaRecord::PartitionCreated`]: the new partition is the live head.
pub const CREATED_FLAG_HEAD: u16 = 1;

const _: () = assert!(META_CRC_OFFSET + 4 == META_HEADER_LEN);

/// One decoded journal record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaRecord {
    /// The store's identity and geometry.
    Store {
        /// Format version that wrote the store.
        format_version: u32,
        /// Block size in bytes.
        block_size: u32,
        /// Number of blocks.
        block_count: u64,
        /// Creation time, ms since the Unix epoch.
        created_ms: u64,
        /// [`super::baseline::BASELINE_ZERO`] or [`super::baseline::BASELINE_IMAGE`].
        baseline_kind: u32,
        /// CRC-32C of the whole `baseline.sum` object (0 for a zero baseline).
        baseline_sum_crc: u32,
        /// A random-looking identifier of this store.
        store_id: u64,
        /// The journal generation (matches the object name).
        generation: u64,
    },
    /// A partition was created.
    PartitionCreated {
        /// Its volume identifier.
        volume: u64,
        /// Parent volume (0 = the baseline).
        parent: u64,
        /// Creation time.
        created_ms: u64,
        /// Sequence number of its first entry.
        first_seq: u64,
        /// Generation of its segment object.
        segment_generation: u32,
        /// [`CREATED_FLAG_HEAD`].
        flags: u16,
    },
    /// A partition was sealed.
    PartitionSealed {
        /// Its volume identifier.
        volume: u64,
        /// Sealing time.
        sealed_ms: u64,
        /// Segment length including index and footer.
        segment_len: u64,
        /// Sequence number after its last entry.
        next_seq: u64,
        /// The snapshot's label (may be empty).
        label: String,
    },
    /// A sealed partition's segment was replaced by a new generation.
    PartitionRewritten {
        /// Its volume identifier.
        volume: u64,
        /// The new segment generation.
        segment_generation: u32,
        /// [`REWRITTEN_FLAG_COMPACTED`].
        flags: u32,
        /// The new segment's length.
        segment_len: u64,
    },
    /// A partition was removed.
    PartitionDropped {
        /// Its volume identifier.
        volume: u64,
    },
    /// A volume identifier was released.
    VolumeReleased {
        /// The identifier.
        volume: u64,
    },
    /// A merge into the baseline began.
    MergeStarted {
        /// The partition being merged (a child of the baseline).
        volume: u64,
    },
    /// Records applied together (never nested).
    Group(Vec<MetaRecord>),
    /// A JSON document: `kind` is one of [`META_KIND_POLICY`], [`META_KIND_ASSIGNMENTS`],
    /// [`META_KIND_POLICY_STATE`], [`META_KIND_AUDIT`] (policy data) or [`META_KIND_BRANCHES`].
    Document {
        /// The document kind.
        kind: u16,
        /// UTF-8 JSON.
        json: String,
    },
    /// A merge into the baseline finished.
    MergeFinished {
        /// The partition merged; it is now empty.
        volume: u64,
        /// CRC-32C of the whole `baseline.sum` after the merge.
        baseline_sum_crc: u32,
    },
}

/// True if `bytes` starts with a record whose framing and checksum are intact, whatever its
/// payload says. Recovery uses it to tell a torn append (checksum fails) from a record it cannot
/// understand (checksum passes), which must be reported rather than cut.
pub fn checksum_ok(bytes: &[u8]) -> bool {
    let mut d = Decoder::new(bytes);
    let (Ok(magic), Ok(_kind), Ok(_reserved), Ok(len), Ok(stored)) = (
        d.u32("magic"),
        d.u16("kind"),
        d.u16("reserved"),
        d.u32("length"),
        d.u32("crc"),
    ) else {
        return false;
    };
    let Ok(payload) = d.bytes(len as usize, "payload") else {
        return false;
    };
    magic == META_MAGIC
        && len as usize <= META_PAYLOAD_MAX
        && crc_append(crc(&bytes[..META_CRC_OFFSET]), payload) == stored
}

impl MetaRecord {
    /// Appends the encoded record to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.encode_as(META_MAGIC, META_NESTED_MAGIC, out);
    }

    /// [`MetaRecord::encode`] as format versions before 4 write it: a group's records carry
    /// the top-level magic.
    pub fn encode_v3(&self, out: &mut Vec<u8>) {
        self.encode_as(META_MAGIC, META_MAGIC, out);
    }

    fn encode_as(&self, magic: u32, nested_magic: u32, out: &mut Vec<u8>) {
        let mut payload = Vec::new();
        let kind = match self {
            MetaRecord::Document { kind, json } => {
                payload.extend_from_slice(json.as_bytes());
                *kind
            }
            MetaRecord::Group(records) => {
                for r in records {
                    r.encode_as(nested_magic, nested_magic, &mut payload);
                }
                META_KIND_GROUP
            }
            fixed => fixed.encode_fields(&mut payload),
        };
        let start = out.len();
        out.put_u32(magic);
        out.put_u16(kind);
        out.put_u16(0);
        out.put_u32(payload.len() as u32);
        out.put_u32(0);
        out.extend_from_slice(&payload);
        let c = crc_append(crc(&out[start..start + META_CRC_OFFSET]), &payload);
        set_u32_at(&mut out[start..], META_CRC_OFFSET, c);
    }

    /// Decodes one record from the start of `bytes`; returns it and its encoded length.
    pub fn decode(bytes: &[u8]) -> Result<(MetaRecord, usize), DecodeError> {
        Self::decode_as(bytes, false)
    }

    /// Decodes a top-level record, or (`nested`) a record inside a group, which carries
    /// either magic.
    fn decode_as(bytes: &[u8], nested: bool) -> Result<(MetaRecord, usize), DecodeError> {
        let mut d = Decoder::new(bytes);
        let magic = d.u32("journal magic")?;
        if magic != META_MAGIC && !(nested && magic == META_NESTED_MAGIC) {
            return Err(DecodeError {
                at: 0,
                what: "not a journal record (bad magic)",
            });
        }
        let kind = d.u16("journal kind")?;
        if d.u16("journal reserved")? != 0 {
            return Err(DecodeError {
                at: META_RESERVED_OFFSET,
                what: "reserved field not zero",
            });
        }
        let len = d.u32("payload length")? as usize;
        if len > META_PAYLOAD_MAX {
            return Err(DecodeError {
                at: META_LEN_OFFSET,
                what: "payload too long",
            });
        }
        let stored_crc = d.u32("journal crc")?;
        let payload = d.bytes(len, "journal payload")?;
        let header = bytes.get(..META_CRC_OFFSET).unwrap_or_default();
        if crc_append(crc(header), payload) != stored_crc {
            return Err(DecodeError {
                at: META_CRC_OFFSET,
                what: "journal record checksum mismatch",
            });
        }
        debug_assert_eq!(u32_at(bytes, META_CRC_OFFSET), stored_crc);
        let mut p = Decoder::new(payload);
        let record = match kind {
            META_KIND_POLICY
            | META_KIND_ASSIGNMENTS
            | META_KIND_POLICY_STATE
            | META_KIND_AUDIT
            | META_KIND_BRANCHES => {
                let json = std::str::from_utf8(p.bytes(payload.len(), "document")?)
                    .map_err(|_| DecodeError {
                        at: META_HEADER_LEN,
                        what: "document is not UTF-8",
                    })?
                    .to_string();
                MetaRecord::Document { kind, json }
            }
            META_KIND_GROUP => {
                let mut records = Vec::new();
                let mut at = 0;
                // Every record of a group carries the same magic (one encoder wrote them all).
                let first_magic = payload.get(..4);
                while at < payload.len() {
                    if payload.get(at..at + 4) != first_magic {
                        return Err(DecodeError {
                            at: META_HEADER_LEN + at,
                            what: "journal group mixes record magics",
                        });
                    }
                    let (record, len) = MetaRecord::decode_as(&payload[at..], true)?;
                    if matches!(record, MetaRecord::Group(_)) {
                        return Err(DecodeError {
                            at: META_HEADER_LEN + at,
                            what: "nested journal group",
                        });
                    }
                    records.push(record);
                    at += len;
                }
                p.bytes(payload.len(), "group")?;
                MetaRecord::Group(records)
            }
            kind => MetaRecord::decode_fields(kind, &mut p)?.ok_or(DecodeError {
                at: META_KIND_OFFSET,
                what: "unknown journal record kind",
            })?,
        };
        if p.remaining() != 0 {
            return Err(DecodeError {
                at: META_HEADER_LEN,
                what: "trailing bytes in journal payload",
            });
        }
        Ok((record, META_HEADER_LEN + len))
    }
}

/// A fixed-layout payload field: little-endian integers, and labels (a `u32` length, then at
/// most [`LABEL_BYTES_MAX`] bytes of UTF-8).
trait Field: Sized {
    fn put(&self, out: &mut Vec<u8>);
    fn take(d: &mut Decoder<'_>, what: &'static str) -> Result<Self, DecodeError>;
}

impl Field for u16 {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_u16(*self);
    }
    fn take(d: &mut Decoder<'_>, what: &'static str) -> Result<Self, DecodeError> {
        d.u16(what)
    }
}

impl Field for u32 {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_u32(*self);
    }
    fn take(d: &mut Decoder<'_>, what: &'static str) -> Result<Self, DecodeError> {
        d.u32(what)
    }
}

impl Field for u64 {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_u64(*self);
    }
    fn take(d: &mut Decoder<'_>, what: &'static str) -> Result<Self, DecodeError> {
        d.u64(what)
    }
}

impl Field for String {
    fn put(&self, out: &mut Vec<u8>) {
        out.put_u32(self.len() as u32);
        out.extend_from_slice(self.as_bytes());
    }
    fn take(d: &mut Decoder<'_>, what: &'static str) -> Result<Self, DecodeError> {
        let len = d.u32("label length")? as usize;
        if len > LABEL_BYTES_MAX {
            return Err(DecodeError {
                at: META_HEADER_LEN,
                what: "label too long",
            });
        }
        let text = std::str::from_utf8(d.bytes(len, what)?).map_err(|_| DecodeError {
            at: META_HEADER_LEN,
            what: "label is not UTF-8",
        })?;
        Ok(text.to_string())
    }
}

/// The fixed-layout records, each described once: its kind, then its fields in payload order
/// (with the name a decoding error gives), then `reserved` where a zero `u16` pads the payload.
/// Both [`MetaRecord::encode_fields`] and [`MetaRecord::decode_fields`] are made from it, so
/// the two cannot disagree; `engine/docs/format.md` describes the same layouts byte by byte.
macro_rules! fixed_records {
    ($( $variant:ident = $kind:ident {
        $( $field:ident: $ty:ty = $what:literal ),* $(,)?
    } $( + $reserved:ident )? ;)*) => {
        impl MetaRecord {
            /// Encodes a fixed-layout record's payload; returns its kind.
            fn encode_fields(&self, payload: &mut Vec<u8>) -> u16 {
                match self {
                    $( MetaRecord::$variant { $( $field ),* } => {
                        $( Field::put($field, payload); )*
                        $( let $reserved = 0u16; payload.put_u16($reserved); )?
                        $kind
                    } )*
                    MetaRecord::Document { .. } | MetaRecord::Group(_) => {
                        unreachable!("documents and groups are encoded by MetaRecord::encode")
                    }
                }
            }

            /// Decodes the payload of a fixed-layout record of `kind`; `None` for another kind.
            fn decode_fields(
                kind: u16,
                p: &mut Decoder<'_>,
            ) -> Result<Option<MetaRecord>, DecodeError> {
                Ok(Some(match kind {
                    $( $kind => {
                        let record = MetaRecord::$variant {
                            $( $field: <$ty as Field>::take(p, $what)? ),*
                        };
                        $(
                            if p.u16(stringify!($reserved))? != 0 {
                                return Err(DecodeError {
                                    at: META_HEADER_LEN,
                                    what: "reserved field not zero",
                                });
                            }
                        )?
                        record
                    } )*
                    _ => return Ok(None),
                }))
            }
        }
    };
}

fixed_records! {
    Store = META_KIND_STORE {
        format_version: u32 = "format version",
        block_size: u32 = "block size",
        block_count: u64 = "block count",
        created_ms: u64 = "created",
        baseline_kind: u32 = "baseline kind",
        baseline_sum_crc: u32 = "baseline sum crc",
        store_id: u64 = "store id",
        generation: u64 = "generation",
    };
    PartitionCreated = META_KIND_PARTITION_CREATED {
        volume: u64 = "volume",
        parent: u64 = "parent",
        created_ms: u64 = "created",
        first_seq: u64 = "first sequence",
        segment_generation: u32 = "segment generation",
        flags: u16 = "flags",
    } + reserved;
    PartitionSealed = META_KIND_PARTITION_SEALED {
        volume: u64 = "volume",
        sealed_ms: u64 = "sealed",
        segment_len: u64 = "segment length",
        next_seq: u64 = "next sequence",
        label: String = "label",
    };
    PartitionRewritten = META_KIND_PARTITION_REWRITTEN {
        volume: u64 = "volume",
        segment_generation: u32 = "segment generation",
        flags: u32 = "flags",
        segment_len: u64 = "segment length",
    };
    PartitionDropped = META_KIND_PARTITION_DROPPED { volume: u64 = "volume" };
    VolumeReleased = META_KIND_VOLUME_RELEASED { volume: u64 = "volume" };
    MergeStarted = META_KIND_MERGE_STARTED { volume: u64 = "volume" };
    MergeFinished = META_KIND_MERGE_FINISHED {
        volume: u64 = "volume",
        baseline_sum_crc: u32 = "baseline sum crc",
    };
}
