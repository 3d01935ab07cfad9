//! One NBD connection: the fixed-newstyle handshake, option haggling, then requests answered in
//! order until the client disconnects.
//!
//! A hostile or broken client cannot hurt the store or the server: every length is checked
//! before anything is read or allocated, a request outside the export gets an error reply, and a
//! request that leaves the stream untrustworthy (a bad magic, a write longer than the largest
//! payload) ends that connection only.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::export::{Export, Refusal, Server};
use super::proto::*;

/// How a connection ended.
#[derive(Debug)]
pub enum End {
    /// The client said goodbye (`NBD_OPT_ABORT` or `NBD_CMD_DISC`) or hung up.
    Closed,
    /// The client broke the protocol; the reason is logged.
    Protocol(String),
}

/// Serves one client on `stream` until it leaves.
pub async fn run<S: AsyncRead + AsyncWrite + Unpin>(server: &Server, stream: S) -> End {
    let mut conn = Connection {
        server,
        stream,
        structured: false,
        allocation: false,
        writer: false,
    };
    let result = async {
        let Some(export) = conn.handshake().await? else {
            return Ok(End::Closed);
        };
        conn.transmission(&export).await
    }
    .await;
    if conn.writer {
        server.release_writer();
    }
    match result {
        Ok(end) => end,
        Err(e) if is_hang_up(&e) => End::Closed,
        Err(e) => End::Protocol(e.to_string()),
    }
}

fn is_hang_up(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe
    )
}

fn protocol(message: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.into())
}

struct Connection<'a, S> {
    server: &'a Server,
    stream: S,
    /// `NBD_OPT_STRUCTURED_REPLY` was negotiated.
    structured: bool,
    /// `base:allocation` was selected with `NBD_OPT_SET_META_CONTEXT`.
    allocation: bool,
    /// This connection holds the head's one writer slot.
    writer: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<'_, S> {
    /// The handshake and options; the export chosen, or `None` if the client left.
    async fn handshake(&mut self) -> io::Result<Option<Export>> {
        self.stream.write_all(&greeting()).await?;
        let client_flags = self.stream.read_u32().await?;
        if client_flags & !(CLIENT_FIXED_NEWSTYLE | CLIENT_NO_ZEROES) != 0 {
            return Err(protocol(format!("unknown client flags {client_flags:#x}")));
        }
        let no_zeroes = client_flags & CLIENT_NO_ZEROES != 0;
        loop {
            let magic = self.stream.read_u64().await?;
            if magic != IHAVEOPT {
                return Err(protocol(format!("bad option magic {magic:#x}")));
            }
            let option = self.stream.read_u32().await?;
            let length = self.stream.read_u32().await?;
            if length > OPTION_DISCARD_MAX {
                return Err(protocol(format!("an option of {length} bytes")));
            }
            if length > OPTION_PAYLOAD_MAX {
                self.discard(u64::from(length)).await?;
                self.reply(option, REP_ERR_TOO_BIG, b"option payload too large")
                    .await?;
                continue;
            }
            let mut data = vec![0u8; length as usize];
            self.stream.read_exact(&mut data).await?;
            match option {
                OPT_EXPORT_NAME => {
                    let name = String::from_utf8_lossy(&data).into_owned();
                    // No error reply exists for this option: an unknown export closes.
                    let Ok(export) = self.choose(&name).await else {
                        return Err(protocol(format!("no export {name:?}")));
                    };
                    let mut b = export.size.to_be_bytes().to_vec();
                    b.extend_from_slice(&transmission_flags(&export).to_be_bytes());
                    if !no_zeroes {
                        b.extend_from_slice(&[0u8; 124]);
                    }
                    self.stream.write_all(&b).await?;
                    return Ok(Some(export));
                }
                OPT_ABORT => {
                    self.reply(option, REP_ACK, &[]).await?;
                    return Ok(None);
                }
                OPT_LIST => {
                    if !data.is_empty() {
                        self.error(option, REP_ERR_INVALID, "NBD_OPT_LIST takes no data")
                            .await?;
                        continue;
                    }
                    for (name, description) in self.server.list().await {
                        let mut b = (name.len() as u32).to_be_bytes().to_vec();
                        b.extend_from_slice(name.as_bytes());
                        b.extend_from_slice(description.as_bytes());
                        self.reply(option, REP_SERVER, &b).await?;
                    }
                    self.reply(option, REP_ACK, &[]).await?;
                }
                OPT_INFO | OPT_GO => {
                    if let Some(export) = self.info(option, &data).await? {
                        return Ok(Some(export));
                    }
                }
                OPT_STRUCTURED_REPLY => {
                    if !data.is_empty() {
                        self.error(
                            option,
                            REP_ERR_INVALID,
                            "NBD_OPT_STRUCTURED_REPLY takes no data",
                        )
                        .await?;
                    } else {
                        self.structured = true;
                        self.reply(option, REP_ACK, &[]).await?;
                    }
                }
                OPT_LIST_META_CONTEXT | OPT_SET_META_CONTEXT => {
                    self.meta_context(option, &data).await?;
                }
                OPT_STARTTLS => {
                    self.error(
                        option,
                        REP_ERR_POLICY,
                        "TLS is not offered: serve on a Unix socket or 127.0.0.1",
                    )
                    .await?;
                }
                _ => {
                    self.error(
                        option,
                        REP_ERR_UNSUP,
                        &format!("option {option} is not supported"),
                    )
                    .await?;
                }
            }
        }
    }

    /// `NBD_OPT_INFO` / `NBD_OPT_GO`; returns the export when `NBD_OPT_GO` succeeded.
    async fn info(&mut self, option: u32, data: &[u8]) -> io::Result<Option<Export>> {
        let Some((name, kinds)) = parse_info_request(data) else {
            self.error(option, REP_ERR_INVALID, "malformed request")
                .await?;
            return Ok(None);
        };
        let export = if option == OPT_GO {
            self.choose(&name).await
        } else {
            self.server
                .export(&name)
                .await
                .map_err(|r| (REP_ERR_UNKNOWN, r.message))
        };
        let export = match export {
            Ok(export) => export,
            Err((kind, message)) => {
                self.error(option, kind, &message).await?;
                return Ok(None);
            }
        };
        let block_size = self.server.block_size();
        self.reply(
            option,
            REP_INFO,
            &info_export(export.size, transmission_flags(&export)),
        )
        .await?;
        self.reply(
            option,
            REP_INFO,
            &info_block_size(1, block_size, PAYLOAD_MAX),
        )
        .await?;
        if kinds.contains(&INFO_NAME) {
            self.reply(option, REP_INFO, &info_string(INFO_NAME, &name))
                .await?;
        }
        if kinds.contains(&INFO_DESCRIPTION) {
            self.reply(
                option,
                REP_INFO,
                &info_string(INFO_DESCRIPTION, &export.description),
            )
            .await?;
        }
        self.reply(option, REP_ACK, &[]).await?;
        Ok((option == OPT_GO).then_some(export))
    }

    /// The export `name` for transmission: the head's writer slot is taken here.
    async fn choose(&mut self, name: &str) -> Result<Export, (u32, String)> {
        let export = self
            .server
            .export(name)
            .await
            .map_err(|r| (REP_ERR_UNKNOWN, r.message))?;
        if export.writable && !self.writer {
            if !self.server.claim_writer() {
                return Err((
                REP_ERR_POLICY,
                "another client is writing the head (one writer at a time); snapshots and the baseline can be read by any number".into(),
                ));
            }
            self.writer = true;
        }
        Ok(export)
    }

    async fn meta_context(&mut self, option: u32, data: &[u8]) -> io::Result<()> {
        let Some((name, queries)) = parse_meta_request(data) else {
            return self
                .error(option, REP_ERR_INVALID, "malformed request")
                .await;
        };
        if option == OPT_SET_META_CONTEXT && !self.structured {
            return self
                .error(
                    option,
                    REP_ERR_INVALID,
                    "negotiate structured replies first",
                )
                .await;
        }
        if let Err(r) = self.server.export(&name).await {
            return self.error(option, REP_ERR_UNKNOWN, &r.message).await;
        }
        let wanted = if option == OPT_LIST_META_CONTEXT && queries.is_empty() {
            true
        } else {
            queries
                .iter()
                .any(|q| q == BASE_ALLOCATION || (option == OPT_LIST_META_CONTEXT && q == "base:"))
        };
        if option == OPT_SET_META_CONTEXT {
            self.allocation = wanted;
        }
        if wanted {
            self.reply(
                option,
                REP_META_CONTEXT,
                &meta_context(BASE_ALLOCATION_ID, BASE_ALLOCATION),
            )
            .await?;
        }
        self.reply(option, REP_ACK, &[]).await
    }

    async fn reply(&mut self, option: u32, kind: u32, data: &[u8]) -> io::Result<()> {
        self.stream
            .write_all(&option_reply(option, kind, data))
            .await
    }

    async fn error(&mut self, option: u32, kind: u32, message: &str) -> io::Result<()> {
        self.stream
            .write_all(&option_error(option, kind, message))
            .await
    }

    /// Reads and drops `n` bytes.
    async fn discard(&mut self, n: u64) -> io::Result<()> {
        let copied =
            tokio::io::copy(&mut (&mut self.stream).take(n), &mut tokio::io::sink()).await?;
        if copied < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }

    /// The transmission phase: requests answered in order until `NBD_CMD_DISC` or a hang-up.
    async fn transmission(&mut self, export: &Export) -> io::Result<End> {
        let mut header = [0u8; REQUEST_BYTES];
        loop {
            self.stream.flush().await?;
            self.stream.read_exact(&mut header).await?;
            let Some(request) = Request::decode(&header) else {
                return Ok(End::Protocol("bad request magic".into()));
            };
            if request.kind == CMD_DISC {
                return Ok(End::Closed);
            }
            let payload = if request.kind == CMD_WRITE {
                if request.length > PAYLOAD_MAX {
                    let message = format!(
                        "a write of {} bytes (at most {PAYLOAD_MAX})",
                        request.length
                    );
                    self.answer(&request, Err(Refusal::new(EOVERFLOW, message.clone())))
                        .await?;
                    return Ok(End::Protocol(message));
                }
                let mut data = vec![0u8; request.length as usize];
                self.stream.read_exact(&mut data).await?;
                data
            } else {
                Vec::new()
            };
            let result = self.execute(export, &request, &payload).await;
            self.answer(&request, result).await?;
        }
    }

    /// Carries out one request; `Ok` holds the read's data (empty for other commands).
    async fn execute(
        &mut self,
        export: &Export,
        request: &Request,
        payload: &[u8],
    ) -> Result<Reply, Refusal> {
        let server = self.server;
        let offset = request.offset;
        let length = u64::from(request.length);
        let fua = request.flags & CMD_FLAG_FUA != 0;
        let writes = matches!(request.kind, CMD_WRITE | CMD_TRIM | CMD_WRITE_ZEROES);
        if writes && !export.writable {
            return Err(Refusal::new(EPERM, "this export is read-only"));
        }
        match request.kind {
            CMD_READ => {
                if request.length > PAYLOAD_MAX {
                    return Err(Refusal::new(
                        EOVERFLOW,
                        format!("a read of {length} bytes (at most {PAYLOAD_MAX})"),
                    ));
                }
                server.check_range(offset, length, EINVAL)?;
                Ok(Reply::Data(
                    server.read(&export.target, offset, length).await?,
                ))
            }
            CMD_WRITE => {
                server.check_range(offset, length, ENOSPC)?;
                server.write(&export.target, offset, payload, fua).await?;
                Ok(Reply::Done)
            }
            CMD_TRIM | CMD_WRITE_ZEROES => {
                server.check_range(offset, length, ENOSPC)?;
                server.zero(&export.target, offset, length, fua).await?;
                Ok(Reply::Done)
            }
            CMD_FLUSH => {
                if export.writable {
                    server.flush().await?;
                }
                Ok(Reply::Done)
            }
            CMD_CACHE => {
                server.check_range(offset, length, EINVAL)?;
                Ok(Reply::Done)
            }
            CMD_BLOCK_STATUS => {
                if !self.allocation {
                    return Err(Refusal::new(
                        EINVAL,
                        "select the base:allocation context first",
                    ));
                }
                server.check_range(offset, length, EINVAL)?;
                if length == 0 {
                    return Err(Refusal::new(EINVAL, "a block status request of 0 bytes"));
                }
                let one = request.flags & CMD_FLAG_REQ_ONE != 0;
                Ok(Reply::Extents(
                    server
                        .block_status(&export.target, offset, length, one)
                        .await?,
                ))
            }
            kind => Err(Refusal::new(
                EINVAL,
                format!("command {kind} is not supported"),
            )),
        }
    }

    /// Sends the reply to `request`: structured where negotiated and needed, simple otherwise.
    async fn answer(
        &mut self,
        request: &Request,
        result: Result<Reply, Refusal>,
    ) -> io::Result<()> {
        let cookie = request.cookie;
        let bytes = match result {
            Err(refusal) if self.structured => error_chunk(cookie, refusal.errno, &refusal.message),
            Err(refusal) => simple_reply(cookie, refusal.errno).to_vec(),
            Ok(Reply::Data(data)) => {
                // The header, then the data as read: no copy of it into a reply buffer.
                if self.structured {
                    let header = offset_data_header(cookie, request.offset, data.len() as u32);
                    self.stream.write_all(&header).await?;
                } else {
                    self.stream.write_all(&simple_reply(cookie, 0)).await?;
                }
                return self.stream.write_all(&data).await;
            }
            Ok(Reply::Extents(extents)) => block_status_chunk(cookie, &extents),
            Ok(Reply::Done) => simple_reply(cookie, 0).to_vec(),
        };
        self.stream.write_all(&bytes).await
    }
}

/// What a request answered.
enum Reply {
    Done,
    Data(Vec<u8>),
    Extents(Vec<(u32, u32)>),
}

/// The transmission flags of `export`.
fn transmission_flags(export: &Export) -> u16 {
    let mut flags = TFLAG_HAS_FLAGS | TFLAG_SEND_FLUSH | TFLAG_SEND_FUA;
    if export.writable {
        flags |= TFLAG_SEND_TRIM | TFLAG_SEND_WRITE_ZEROES;
    } else {
        flags |= TFLAG_READ_ONLY | TFLAG_CAN_MULTI_CONN;
    }
    flags
}
