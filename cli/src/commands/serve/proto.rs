//! The NBD protocol's wire format: the fixed-newstyle handshake, option haggling and the
//! transmission phase's requests and replies, as constants and pure encoders and decoders.
//!
//! Written from the protocol's specification (`doc/proto.md` of the NetworkBlockDevice/nbd
//! project). All integers are big-endian ("network byte order").

/// `NBDMAGIC`: the first eight bytes the server sends.
pub const NBD_MAGIC: u64 = 0x4e42_444d_4147_4943;
/// `IHAVEOPT`: sent by the server after [`NBD_MAGIC`], and by the client before each option.
pub const IHAVEOPT: u64 = 0x4948_4156_454f_5054;
/// The magic of every option reply.
pub const OPTION_REPLY_MAGIC: u64 = 0x0003_e889_0455_65a9;
/// The magic of every transmission request.
pub const REQUEST_MAGIC: u32 = 0x2560_9513;
/// The magic of a simple reply.
pub const SIMPLE_REPLY_MAGIC: u32 = 0x6744_6698;
/// The magic of a structured reply chunk.
pub const STRUCTURED_REPLY_MAGIC: u32 = 0x668e_33ef;

/// Handshake flags (server): fixed newstyle, and no 124 zero bytes after `NBD_OPT_EXPORT_NAME`.
pub const FLAG_FIXED_NEWSTYLE: u16 = 1 << 0;
pub const FLAG_NO_ZEROES: u16 = 1 << 1;
/// Client flags: the same two, as the client acknowledges them.
pub const CLIENT_FIXED_NEWSTYLE: u32 = 1 << 0;
pub const CLIENT_NO_ZEROES: u32 = 1 << 1;

/// Options.
pub const OPT_EXPORT_NAME: u32 = 1;
pub const OPT_ABORT: u32 = 2;
pub const OPT_LIST: u32 = 3;
pub const OPT_STARTTLS: u32 = 5;
pub const OPT_INFO: u32 = 6;
pub const OPT_GO: u32 = 7;
pub const OPT_STRUCTURED_REPLY: u32 = 8;
pub const OPT_LIST_META_CONTEXT: u32 = 9;
pub const OPT_SET_META_CONTEXT: u32 = 10;

/// Option reply types.
pub const REP_ACK: u32 = 1;
pub const REP_SERVER: u32 = 2;
pub const REP_INFO: u32 = 3;
pub const REP_META_CONTEXT: u32 = 4;
const REP_ERROR: u32 = 1 << 31;
pub const REP_ERR_UNSUP: u32 = REP_ERROR + 1;
pub const REP_ERR_POLICY: u32 = REP_ERROR + 2;
pub const REP_ERR_INVALID: u32 = REP_ERROR + 3;
pub const REP_ERR_UNKNOWN: u32 = REP_ERROR + 6;
pub const REP_ERR_TOO_BIG: u32 = REP_ERROR + 9;

/// Information types (`NBD_OPT_INFO`, `NBD_OPT_GO`).
pub const INFO_EXPORT: u16 = 0;
pub const INFO_NAME: u16 = 1;
pub const INFO_DESCRIPTION: u16 = 2;
pub const INFO_BLOCK_SIZE: u16 = 3;

/// Transmission flags.
pub const TFLAG_HAS_FLAGS: u16 = 1 << 0;
pub const TFLAG_READ_ONLY: u16 = 1 << 1;
pub const TFLAG_SEND_FLUSH: u16 = 1 << 2;
pub const TFLAG_SEND_FUA: u16 = 1 << 3;
pub const TFLAG_SEND_TRIM: u16 = 1 << 5;
pub const TFLAG_SEND_WRITE_ZEROES: u16 = 1 << 6;
pub const TFLAG_CAN_MULTI_CONN: u16 = 1 << 8;

/// Commands.
pub const CMD_READ: u16 = 0;
pub const CMD_WRITE: u16 = 1;
pub const CMD_DISC: u16 = 2;
pub const CMD_FLUSH: u16 = 3;
pub const CMD_TRIM: u16 = 4;
pub const CMD_CACHE: u16 = 5;
pub const CMD_WRITE_ZEROES: u16 = 6;
pub const CMD_BLOCK_STATUS: u16 = 7;

/// Command flags.
pub const CMD_FLAG_FUA: u16 = 1 << 0;
pub const CMD_FLAG_REQ_ONE: u16 = 1 << 3;

/// Structured reply chunk flags and types.
pub const REPLY_FLAG_DONE: u16 = 1 << 0;
pub const REPLY_TYPE_OFFSET_DATA: u16 = 1;
pub const REPLY_TYPE_BLOCK_STATUS: u16 = 5;
pub const REPLY_TYPE_ERROR: u16 = (1 << 15) + 1;

/// `base:allocation` status flags.
pub const STATE_HOLE: u32 = 1 << 0;
pub const STATE_ZERO: u32 = 1 << 1;
/// The one metadata context served, and the id it is given.
pub const BASE_ALLOCATION: &str = "base:allocation";
pub const BASE_ALLOCATION_ID: u32 = 1;

/// Error values (the protocol's own numbering, which is Linux's errno).
pub const EPERM: u32 = 1;
pub const EIO: u32 = 5;
pub const EINVAL: u32 = 22;
pub const ENOSPC: u32 = 28;
pub const EOVERFLOW: u32 = 75;

/// The longest string (export name, query, message) the protocol allows.
pub const STRING_MAX: usize = 4096;
/// The largest option payload read: a `NBD_OPT_SET_META_CONTEXT` with a few queries fits
/// many times over. A longer one is read and dropped, and answered `NBD_REP_ERR_TOO_BIG`.
pub const OPTION_PAYLOAD_MAX: u32 = 64 * 1024;
/// Beyond this an option's payload is not even read: the connection is closed.
pub const OPTION_DISCARD_MAX: u32 = 16 << 20;
/// The largest read or write payload, advertised as the maximum block size. A write
/// announcing more is answered `NBD_EOVERFLOW` and the connection is closed, since its
/// payload cannot be skipped safely.
pub const PAYLOAD_MAX: u32 = 32 << 20;

/// The 28-byte header of a transmission request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    pub flags: u16,
    pub kind: u16,
    pub cookie: u64,
    pub offset: u64,
    pub length: u32,
}

/// Bytes of a request header.
pub const REQUEST_BYTES: usize = 28;

impl Request {
    /// Decodes a header; `None` if its magic is wrong (the stream cannot be trusted after that).
    pub fn decode(b: &[u8; REQUEST_BYTES]) -> Option<Request> {
        if be_u32(&b[0..4]) != REQUEST_MAGIC {
            return None;
        }
        Some(Request {
            flags: be_u16(&b[4..6]),
            kind: be_u16(&b[6..8]),
            cookie: be_u64(&b[8..16]),
            offset: be_u64(&b[16..24]),
            length: be_u32(&b[24..28]),
        })
    }

    /// Encodes a header (as a client does).
    #[cfg(test)]
    pub fn encode(&self) -> [u8; REQUEST_BYTES] {
        let mut b = [0u8; REQUEST_BYTES];
        b[0..4].copy_from_slice(&REQUEST_MAGIC.to_be_bytes());
        b[4..6].copy_from_slice(&self.flags.to_be_bytes());
        b[6..8].copy_from_slice(&self.kind.to_be_bytes());
        b[8..16].copy_from_slice(&self.cookie.to_be_bytes());
        b[16..24].copy_from_slice(&self.offset.to_be_bytes());
        b[24..28].copy_from_slice(&self.length.to_be_bytes());
        b
    }
}

pub fn be_u16(b: &[u8]) -> u16 {
    u16::from_be_bytes([b[0], b[1]])
}

pub fn be_u32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

pub fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

/// The server's first 18 bytes: `NBDMAGIC`, `IHAVEOPT` and the handshake flags.
pub fn greeting() -> [u8; 18] {
    let mut b = [0u8; 18];
    b[0..8].copy_from_slice(&NBD_MAGIC.to_be_bytes());
    b[8..16].copy_from_slice(&IHAVEOPT.to_be_bytes());
    b[16..18].copy_from_slice(&(FLAG_FIXED_NEWSTYLE | FLAG_NO_ZEROES).to_be_bytes());
    b
}

/// One option reply: magic, the option it answers, its type and `data`.
pub fn option_reply(option: u32, kind: u32, data: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(20 + data.len());
    b.extend_from_slice(&OPTION_REPLY_MAGIC.to_be_bytes());
    b.extend_from_slice(&option.to_be_bytes());
    b.extend_from_slice(&kind.to_be_bytes());
    b.extend_from_slice(&(data.len() as u32).to_be_bytes());
    b.extend_from_slice(data);
    b
}

/// An error option reply with a message for people (cut to the protocol's string limit).
pub fn option_error(option: u32, kind: u32, message: &str) -> Vec<u8> {
    option_reply(option, kind, truncate(message).as_bytes())
}

/// `NBD_REP_INFO` of type `NBD_INFO_EXPORT`: size and transmission flags.
pub fn info_export(size: u64, flags: u16) -> Vec<u8> {
    let mut b = Vec::with_capacity(12);
    b.extend_from_slice(&INFO_EXPORT.to_be_bytes());
    b.extend_from_slice(&size.to_be_bytes());
    b.extend_from_slice(&flags.to_be_bytes());
    b
}

/// `NBD_REP_INFO` of type `NBD_INFO_BLOCK_SIZE`.
pub fn info_block_size(minimum: u32, preferred: u32, maximum: u32) -> Vec<u8> {
    let mut b = Vec::with_capacity(14);
    b.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
    b.extend_from_slice(&minimum.to_be_bytes());
    b.extend_from_slice(&preferred.to_be_bytes());
    b.extend_from_slice(&maximum.to_be_bytes());
    b
}

/// `NBD_REP_INFO` carrying a string (`NBD_INFO_NAME`, `NBD_INFO_DESCRIPTION`).
pub fn info_string(kind: u16, text: &str) -> Vec<u8> {
    let mut b = kind.to_be_bytes().to_vec();
    b.extend_from_slice(truncate(text).as_bytes());
    b
}

/// A simple reply header (the data of a successful read follows it).
pub fn simple_reply(cookie: u64, error: u32) -> [u8; 16] {
    let mut b = [0u8; 16];
    b[0..4].copy_from_slice(&SIMPLE_REPLY_MAGIC.to_be_bytes());
    b[4..8].copy_from_slice(&error.to_be_bytes());
    b[8..16].copy_from_slice(&cookie.to_be_bytes());
    b
}

/// A structured reply chunk header for a payload of `length` bytes.
pub fn chunk_header(cookie: u64, flags: u16, kind: u16, length: u32) -> [u8; 20] {
    let mut b = [0u8; 20];
    b[0..4].copy_from_slice(&STRUCTURED_REPLY_MAGIC.to_be_bytes());
    b[4..6].copy_from_slice(&flags.to_be_bytes());
    b[6..8].copy_from_slice(&kind.to_be_bytes());
    b[8..16].copy_from_slice(&cookie.to_be_bytes());
    b[16..20].copy_from_slice(&length.to_be_bytes());
    b
}

/// The header of a final `NBD_REPLY_TYPE_OFFSET_DATA` chunk carrying `length` bytes read at
/// `offset` (the data follows it).
pub fn offset_data_header(cookie: u64, offset: u64, length: u32) -> [u8; 28] {
    let mut b = [0u8; 28];
    b[..20].copy_from_slice(&chunk_header(
        cookie,
        REPLY_FLAG_DONE,
        REPLY_TYPE_OFFSET_DATA,
        8 + length,
    ));
    b[20..].copy_from_slice(&offset.to_be_bytes());
    b
}

/// A final `NBD_REPLY_TYPE_ERROR` chunk.
pub fn error_chunk(cookie: u64, error: u32, message: &str) -> Vec<u8> {
    let message = truncate(message).as_bytes();
    let mut b = chunk_header(
        cookie,
        REPLY_FLAG_DONE,
        REPLY_TYPE_ERROR,
        6 + message.len() as u32,
    )
    .to_vec();
    b.extend_from_slice(&error.to_be_bytes());
    b.extend_from_slice(&(message.len() as u16).to_be_bytes());
    b.extend_from_slice(message);
    b
}

/// A final `NBD_REPLY_TYPE_BLOCK_STATUS` chunk for the `base:allocation` context.
pub fn block_status_chunk(cookie: u64, extents: &[(u32, u32)]) -> Vec<u8> {
    let mut b = chunk_header(
        cookie,
        REPLY_FLAG_DONE,
        REPLY_TYPE_BLOCK_STATUS,
        4 + 8 * extents.len() as u32,
    )
    .to_vec();
    b.extend_from_slice(&BASE_ALLOCATION_ID.to_be_bytes());
    for (length, status) in extents {
        b.extend_from_slice(&length.to_be_bytes());
        b.extend_from_slice(&status.to_be_bytes());
    }
    b
}

/// `text` cut at a character boundary to at most [`STRING_MAX`] bytes.
fn truncate(text: &str) -> &str {
    if text.len() <= STRING_MAX {
        return text;
    }
    let mut end = STRING_MAX;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Reads a string prefixed by its `u32` length from `data` at `*at`, advancing `*at`.
/// `None` if the data ends early, the string is too long or it is not UTF-8.
pub fn take_string(data: &[u8], at: &mut usize) -> Option<String> {
    let len = be_u32(data.get(*at..*at + 4)?) as usize;
    *at += 4;
    if len > STRING_MAX {
        return None;
    }
    let bytes = data.get(*at..*at + len)?;
    *at += len;
    String::from_utf8(bytes.to_vec()).ok()
}

/// The payload of `NBD_OPT_INFO` and `NBD_OPT_GO`: an export name and the information types
/// the client asks for. `None` if malformed.
pub fn parse_info_request(data: &[u8]) -> Option<(String, Vec<u16>)> {
    let mut at = 0;
    let name = take_string(data, &mut at)?;
    let count = be_u16(data.get(at..at + 2)?) as usize;
    at += 2;
    let mut kinds = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        kinds.push(be_u16(data.get(at..at + 2)?));
        at += 2;
    }
    (at == data.len()).then_some((name, kinds))
}

/// The payload of `NBD_OPT_LIST_META_CONTEXT` and `NBD_OPT_SET_META_CONTEXT`: an export name
/// and the queries. `None` if malformed.
pub fn parse_meta_request(data: &[u8]) -> Option<(String, Vec<String>)> {
    let mut at = 0;
    let name = take_string(data, &mut at)?;
    let count = be_u32(data.get(at..at + 4)?) as usize;
    at += 4;
    let mut queries = Vec::with_capacity(count.min(16));
    for _ in 0..count {
        queries.push(take_string(data, &mut at)?);
    }
    (at == data.len()).then_some((name, queries))
}

/// The payload of an `NBD_REP_META_CONTEXT` reply: the context's id and name.
pub fn meta_context(id: u32, name: &str) -> Vec<u8> {
    let mut b = id.to_be_bytes().to_vec();
    b.extend_from_slice(name.as_bytes());
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn string(s: &str) -> Vec<u8> {
        let mut b = (s.len() as u32).to_be_bytes().to_vec();
        b.extend_from_slice(s.as_bytes());
        b
    }

    #[test]
    fn a_request_round_trips_and_a_bad_magic_is_refused() {
        let r = Request {
            flags: CMD_FLAG_FUA,
            kind: CMD_WRITE,
            cookie: 0x0102_0304_0506_0708,
            offset: 4096,
            length: 512,
        };
        let mut bytes = r.encode();
        assert_eq!(Request::decode(&bytes), Some(r));
        assert_eq!(&bytes[0..4], &[0x25, 0x60, 0x95, 0x13]);
        bytes[0] ^= 1;
        assert_eq!(Request::decode(&bytes), None);
    }

    #[test]
    fn the_greeting_is_nbdmagic_ihaveopt_and_both_flags() {
        let g = greeting();
        assert_eq!(&g[0..8], b"NBDMAGIC");
        assert_eq!(&g[8..16], b"IHAVEOPT");
        assert_eq!(be_u16(&g[16..18]), 3);
    }

    #[test]
    fn info_requests_parse_and_malformed_ones_do_not() {
        let mut data = string("head");
        data.extend_from_slice(&2u16.to_be_bytes());
        data.extend_from_slice(&INFO_BLOCK_SIZE.to_be_bytes());
        data.extend_from_slice(&INFO_NAME.to_be_bytes());
        assert_eq!(
            parse_info_request(&data),
            Some(("head".to_string(), vec![INFO_BLOCK_SIZE, INFO_NAME]))
        );
        // Cut short, one byte too many, a name longer than its payload.
        assert_eq!(parse_info_request(&data[..data.len() - 1]), None);
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(parse_info_request(&longer), None);
        let mut lying = data.clone();
        lying[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_info_request(&lying), None);
    }

    #[test]
    fn meta_requests_parse_and_malformed_ones_do_not() {
        let mut data = string("");
        data.extend_from_slice(&2u32.to_be_bytes());
        data.extend_from_slice(&string("base:allocation"));
        data.extend_from_slice(&string("qemu:dirty-bitmap:x"));
        let (name, queries) = parse_meta_request(&data).expect("parses");
        assert_eq!(name, "");
        assert_eq!(queries, vec!["base:allocation", "qemu:dirty-bitmap:x"]);
        let mut huge_count = string("");
        huge_count.extend_from_slice(&u32::MAX.to_be_bytes());
        assert_eq!(parse_meta_request(&huge_count), None);
    }

    #[test]
    fn an_error_chunk_carries_the_error_and_a_bounded_message() {
        let long = "é".repeat(3000);
        let chunk = error_chunk(7, EINVAL, &long);
        assert_eq!(be_u32(&chunk[0..4]), STRUCTURED_REPLY_MAGIC);
        assert_eq!(be_u16(&chunk[6..8]), REPLY_TYPE_ERROR);
        let length = be_u32(&chunk[16..20]) as usize;
        assert_eq!(chunk.len(), 20 + length);
        assert_eq!(be_u32(&chunk[20..24]), EINVAL);
        let message_len = be_u16(&chunk[24..26]) as usize;
        assert!(message_len <= STRING_MAX);
        assert!(std::str::from_utf8(&chunk[26..]).is_ok());
    }
}
