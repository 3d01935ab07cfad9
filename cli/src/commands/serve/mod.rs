//! `strata serve`: the store as a block device for real software, over the NBD protocol.
//!
//! One thread runs everything (the engine is single-threaded): a tokio current-thread runtime
//! accepts clients on a Unix socket or a 127.0.0.1 port and serves each in its own task; the
//! store sits behind one async mutex, so requests from different clients are carried out one at
//! a time and every reader sees every acknowledged write. `NBD_CMD_FLUSH` is the store's
//! `sync()`. While serving, the policy's rules get a clock tick every `--tick`; SIGUSR1 takes a
//! snapshot; on SIGINT or SIGTERM the server stops accepting, syncs and closes the store.
//!
//! Bounds: at most `--max-clients` connections (64 by default; more are closed at once), each
//! holding at most one request's payload ([`proto::PAYLOAD_MAX`], 32 MiB) and one option's
//! ([`proto::OPTION_PAYLOAD_MAX`], 64 KiB) at a time.

mod export;
pub mod proto;
mod session;

use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use pollster::block_on;
use strata_engine::policy::Trigger;
use strata_engine::Error;
use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{signal, SignalKind};

use self::export::Server;
use self::session::End;
use super::{note, open_store, CliResult};
use crate::args::ServeArgs;
use crate::error::CliError;

pub fn serve(args: ServeArgs, quiet: bool) -> CliResult {
    let store = open_store(&args.store.dir)?;
    let server = Rc::new(Server::new(store, args.read_only));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("starting the server", e))?;
    let local = tokio::task::LocalSet::new();
    let result = local.block_on(&runtime, run(&args, server.clone(), quiet));
    // Every task is gone once the runtime is: the store has one owner again.
    drop(local);
    drop(runtime);
    let server = Rc::try_unwrap(server).map_err(|_| CliError::Message {
        code: "IO",
        message: "the server's connections did not end".into(),
    })?;
    let store = server.into_store();
    block_on(store.close()).map_err(|e| CliError::at(&args.store.dir, e))?;
    note(quiet, format_args!("strata serve: store synced and closed"));
    result
}

/// Where the server listens.
enum Listener {
    Unix(UnixListener),
    Tcp(TcpListener),
}

async fn listen(args: &ServeArgs) -> CliResult<(Listener, String)> {
    if let Some(path) = &args.socket {
        remove_stale_socket(path)?;
        let listener =
            UnixListener::bind(path).map_err(|e| CliError::io(path.display().to_string(), e))?;
        let uri = format!("nbd+unix:///?socket={}", path.display());
        Ok((Listener::Unix(listener), uri))
    } else {
        let address = ("127.0.0.1", args.port);
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| CliError::io(format!("127.0.0.1:{}", args.port), e))?;
        let port = listener
            .local_addr()
            .map_err(|e| CliError::io("127.0.0.1", e))?
            .port();
        Ok((Listener::Tcp(listener), format!("nbd://127.0.0.1:{port}")))
    }
}

/// Removes a socket file left by a server that is gone; refuses any other file.
fn remove_stale_socket(path: &Path) -> CliResult {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(path).is_ok() {
                return Err(CliError::Message {
                    code: "ALREADY_EXISTS",
                    message: format!("{}: a server is already listening there", path.display()),
                });
            }
            std::fs::remove_file(path).map_err(|e| CliError::io(path.display().to_string(), e))
        }
        Ok(_) => Err(CliError::Message {
            code: "ALREADY_EXISTS",
            message: format!("{}: exists and is not a socket", path.display()),
        }),
        Err(_) => Ok(()),
    }
}

async fn run(args: &ServeArgs, server: Rc<Server>, quiet: bool) -> CliResult {
    let (listener, uri) = listen(args).await?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| CliError::io("SIGINT", e))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| CliError::io("SIGTERM", e))?;
    let mut snapshot =
        signal(SignalKind::user_defined1()).map_err(|e| CliError::io("SIGUSR1", e))?;
    let mut tick = tokio::time::interval(Duration::from_millis(args.tick.0.max(1)));
    // The first tick of an interval fires at once; the policy had its `open` event already.
    tick.tick().await;
    // The address on stdout, alone on its line, so scripts and tests can read it.
    println!("{uri}");
    note(
        quiet,
        format_args!(
            "strata serve: exporting {} ({} bytes): `head` and every branch by name{}, and every volume read-only by number or label; Ctrl-C stops",
            args.store.dir.display(),
            server.size(),
            if args.read_only { " read-only" } else { " writable" },
        ),
    );
    let mut tasks = tokio::task::JoinSet::new();
    let result = loop {
        let accepted = tokio::select! {
            _ = interrupt.recv() => break Ok(()),
            _ = terminate.recv() => break Ok(()),
            _ = snapshot.recv() => {
                // A refused snapshot (the partition limit, say) is reported; serving goes on.
                if let Err(e) = take_snapshot(&server, quiet).await {
                    eprintln!("error[{}]: strata serve: no snapshot: {e}", e.code());
                }
                continue;
            }
            _ = tick.tick() => {
                if let Err(e) = policy_tick(&server).await {
                    break Err(e);
                }
                continue;
            }
            Some(done) = tasks.join_next(), if !tasks.is_empty() => {
                if let Err(e) = done {
                    note(quiet, format_args!("strata serve: a connection task failed: {e}"));
                }
                continue;
            }
            accepted = accept(&listener) => accepted,
        };
        match accepted {
            Ok(_) if tasks.len() >= usize::from(args.max_clients) => {
                // Dropped at once: the client sees the connection closed before the greeting.
                note(
                    quiet,
                    format_args!(
                        "strata serve: refused a client: {} are connected (--max-clients)",
                        tasks.len()
                    ),
                );
            }
            Ok(stream) => {
                let server = server.clone();
                tasks.spawn_local(async move {
                    let end = match stream {
                        Stream::Unix(s) => session::run(&server, s).await,
                        Stream::Tcp(s) => session::run(&server, s).await,
                    };
                    if let End::Protocol(reason) = end {
                        note(quiet, format_args!("strata serve: a client broke the protocol and was disconnected: {reason}"));
                    }
                });
            }
            Err(e) => note(quiet, format_args!("strata serve: accept failed: {e}")),
        }
    };
    // Connections still open are cut; whatever they had acknowledged is synced below.
    tasks.shutdown().await;
    if let Some(path) = &args.socket {
        let _ = std::fs::remove_file(path);
    }
    server.flush().await.map_err(|r| CliError::Message {
        code: "IO",
        message: format!("the final sync failed: {}", r.message),
    })?;
    result
}

enum Stream {
    Unix(tokio::net::UnixStream),
    Tcp(tokio::net::TcpStream),
}

async fn accept(listener: &Listener) -> std::io::Result<Stream> {
    match listener {
        Listener::Unix(l) => l.accept().await.map(|(s, _)| Stream::Unix(s)),
        Listener::Tcp(l) => {
            let (s, _) = l.accept().await?;
            s.set_nodelay(true)?;
            Ok(Stream::Tcp(s))
        }
    }
}

/// SIGUSR1: seals the head as a snapshot between two requests (so it holds every write
/// acknowledged before it and none after), named by the policy's scheme if it has one. The head
/// export goes on writing the new head; the snapshot is exported read-only at once.
async fn take_snapshot(server: &Server, quiet: bool) -> CliResult {
    let mut store = server.store().lock().await;
    let volume = store.snapshot(None).await?;
    let label = store.volume(volume).map(|v| v.label).unwrap_or_default();
    note(
        quiet,
        format_args!(
            "strata serve: snapshot {volume}{}; head {}",
            if label.is_empty() {
                String::new()
            } else {
                format!(" {label:?}")
            },
            store.head()
        ),
    );
    Ok(())
}

/// A clock tick for the policy's temporal rules (nothing without a policy). Copies to a tertiary
/// target need its directory, which `strata serve` is not given: they are recorded as failed.
async fn policy_tick(server: &Server) -> CliResult {
    let mut store = server.store().lock().await;
    if store.policy().is_none() {
        return Ok(());
    }
    let mut no_copy = |target: &str, _: &[u8]| -> Result<(), Error> {
        Err(Error::InvalidArgument(format!(
            "copy target {target:?}: copies run from `strata policy run --target`, not while serving"
        )))
    };
    match store.run_policies(Trigger::Tick, None, &mut no_copy).await {
        Ok(_) => Ok(()),
        Err(e) => Err(e.into()),
    }
}
