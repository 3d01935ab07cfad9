//! Typed errors. Every failure the engine can report is a variant here; nothing panics on input.

use crate::storage::StorageError;
use crate::VolumeId;

/// Result alias used throughout the engine.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in the engine, written for the person who has to act on it.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The block size is not a power of two in `512..=65536`.
    #[error("block size {0} is not a power of two between 512 and 65536")]
    InvalidBlockSize(u32),
    /// The block count is zero or above [`crate::format::BLOCK_COUNT_MAX`].
    #[error(
        "block count {0} is invalid: a store has at least 1 and at most 268435456 (2^28) blocks"
    )]
    InvalidBlockCount(u64),
    /// A block range reaches past the end of the volume.
    #[error("blocks {addr}..{end} are out of range: the volume has {block_count} blocks", end = addr.saturating_add(*blocks))]
    BlockOutOfRange {
        /// First block asked for.
        addr: u64,
        /// Number of blocks asked for.
        blocks: u64,
        /// Number of blocks in the volume.
        block_count: u64,
    },
    /// Data handed to a write is not a whole, non-zero number of blocks.
    #[error("data of {len} bytes is not a whole, non-zero number of {block_size}-byte blocks")]
    NotWholeBlocks {
        /// Length of the data given.
        len: usize,
        /// The store's block size.
        block_size: u32,
    },
    /// One batch is larger than a single log record may hold.
    #[error("a batch of {blocks} blocks is larger than the {max} blocks one atomic record can hold; split it")]
    BatchTooLarge {
        /// Blocks in the batch.
        blocks: u64,
        /// The limit.
        max: u64,
    },
    /// No volume has this identifier.
    #[error("there is no volume {0}")]
    UnknownVolume(VolumeId),
    /// A label is too long or contains a control character.
    #[error("label is invalid: {0}")]
    InvalidLabel(String),
    /// An argument is out of its allowed domain.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The storage holds no store.
    #[error("no store found here (no metadata journal); create one first")]
    NotAStore,
    /// Creating a store where one already exists.
    #[error("a store already exists here; open it instead, or delete it first")]
    AlreadyExists,
    /// The store was written by a format version this build does not understand.
    #[error("the store uses format version {found}, this build reads up to version {supported}; upgrade strata")]
    UnsupportedVersion {
        /// Version found on disk.
        found: u32,
        /// Highest version this build supports.
        supported: u32,
    },
    /// A structure failed its checksum: the medium returned different bytes than were written.
    #[error("checksum mismatch in {object} at byte {offset}: stored {expected:#010x}, computed {actual:#010x}")]
    ChecksumMismatch {
        /// Object (file) name.
        object: String,
        /// Byte offset of the damaged structure.
        offset: u64,
        /// Checksum stored.
        expected: u32,
        /// Checksum computed over what was read.
        actual: u32,
    },
    /// A structure is damaged or inconsistent in a way a crash cannot explain.
    #[error("store is corrupt: {object} at byte {offset}: {what}")]
    Corrupt {
        /// Object (file) name.
        object: String,
        /// Byte offset where the problem was found.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// An imported image does not have the size the store needs (or is empty).
    #[error("{}", image_size_message(*expected, *actual))]
    ImageSize {
        /// Bytes expected.
        expected: u64,
        /// Bytes found.
        actual: u64,
    },
    /// A copy stream is damaged, truncated, not a stream, or does not fit this store.
    #[error("copy stream refused: {0}")]
    BadStream(String),
    /// An earlier write or flush failed; the in-memory state can no longer be trusted as durable.
    #[error("an earlier storage failure left this handle unusable for writing; close and reopen the store")]
    Poisoned,
    /// The operation was cancelled by the caller.
    #[error("cancelled")]
    Cancelled,
    /// A change to a store opened with [`crate::Store::open_read_only`].
    #[error("this store was opened read-only; changes are refused")]
    ReadOnly,
    /// The store holds storage management documents (a policy, holds or times to live, the
    /// executor's state or its audit trail), and this build has no policy executor
    /// (`strata-engine` without its `policies` feature), which must not ignore them.
    #[error("this store has storage management policies, and this build has no policy executor; open it with one (the feature `policies`)")]
    PoliciesUnavailable,
    /// An operation would exceed one of the store's stated limits (journal record size, journal
    /// size, number of partitions, ...); nothing was changed.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// An operation failed after a durable step that cannot be undone: `done` says what did
    /// change; `error` is why the rest failed (and gives the code).
    #[error("{done}; then: {error}")]
    Incomplete {
        /// What did change, e.g. "volume 3 is deleted (reclaiming its space failed)".
        done: String,
        /// What failed.
        error: Box<Error>,
    },
    /// The storage backend failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

fn image_size_message(expected: u64, actual: u64) -> String {
    if actual == 0 {
        "the image is empty (0 bytes); a baseline needs at least one block".into()
    } else {
        format!("image is {actual} bytes; expected {expected} bytes (a whole number of blocks)")
    }
}

impl Error {
    /// A stable, machine-readable code for this error (used by the JS bindings and the CLI).
    pub fn code(&self) -> &'static str {
        match self {
            Error::InvalidBlockSize(_) => "INVALID_BLOCK_SIZE",
            Error::InvalidBlockCount(_) => "INVALID_BLOCK_COUNT",
            Error::BlockOutOfRange { .. } => "OUT_OF_RANGE",
            Error::NotWholeBlocks { .. } => "NOT_WHOLE_BLOCKS",
            Error::BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            Error::UnknownVolume(_) => "UNKNOWN_VOLUME",
            Error::InvalidLabel(_) => "INVALID_LABEL",
            Error::InvalidArgument(_) => "INVALID_ARGUMENT",
            Error::NotAStore => "NOT_A_STORE",
            Error::AlreadyExists => "ALREADY_EXISTS",
            Error::UnsupportedVersion { .. } => "UNSUPPORTED_VERSION",
            Error::ChecksumMismatch { .. } => "CHECKSUM_MISMATCH",
            Error::Corrupt { .. } => "CORRUPT",
            Error::ImageSize { .. } => "IMAGE_SIZE",
            Error::BadStream(_) => "BAD_STREAM",
            Error::Poisoned => "POISONED",
            Error::Cancelled => "CANCELLED",
            Error::ReadOnly => "READ_ONLY",
            Error::PoliciesUnavailable => "POLICIES_UNAVAILABLE",
            Error::LimitExceeded(_) => "LIMIT_EXCEEDED",
            Error::Incomplete { error, .. } => error.code(),
            Error::Storage(e) => e.code(),
        }
    }

    /// True if this error means the stored bytes are damaged (as opposed to a bad argument).
    pub fn is_corruption(&self) -> bool {
        match self {
            Error::Incomplete { error, .. } => error.is_corruption(),
            e => matches!(e, Error::ChecksumMismatch { .. } | Error::Corrupt { .. }),
        }
    }

    pub(crate) fn corrupt(object: &str, offset: u64, what: impl Into<String>) -> Self {
        Error::Corrupt {
            object: object.to_string(),
            offset,
            what: what.into(),
        }
    }
}
