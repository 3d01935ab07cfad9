//! [`Shared`]: one volume written, read and synced from many threads, with group commit.
//!
//! The engine runs on one thread (see [`Volume`]). A `Shared` handle runs a volume on a thread
//! of its own and carries out requests from any number of threads, in the order they arrive.
//! Its point is the durability point: **syncs are grouped**. The volume's thread takes every
//! request that has arrived (at most [`GROUP_REQUESTS_MAX`]), carries out the writes and reads
//! among them in order, then makes all of it durable with **one** [`Volume::sync`] that answers
//! every sync of the group. Requests that arrive while that flush is under way queue up and form
//! the next group. With N threads each writing and syncing, one flush serves up to N syncs,
//! where N handles of their own would flush N times (and could not share one store).
//!
//! # Guarantee
//!
//! When [`Shared::sync`] returns `Ok`, every write whose call returned before that `sync` was
//! called, from any thread, survives a crash. A sync that fails fails every sync of its group
//! with the same error (the store is then poisoned: see [`Error::Poisoned`]).
//!
//! # Bounds
//!
//! Each call blocks its thread until it is answered, so the requests in flight are at most the
//! calling threads, plus the [`Shared::begin_sync`] tickets a caller holds. A group takes at
//! most [`GROUP_REQUESTS_MAX`] requests, so a flood of writes cannot hold back a sync for long.
//! A write's data is copied once, into its request.
//!
//! ```
//! use std::rc::Rc;
//! use strata_engine::{clock::SystemClock, storage::memory::MemoryStorage, CreateOptions, Shared, Store};
//!
//! let shared = Shared::spawn(|| {
//!     pollster::block_on(Store::create(
//!         MemoryStorage::new(),
//!         CreateOptions::new(1024),
//!         Rc::new(SystemClock),
//!     ))
//! })?;
//! std::thread::scope(|s| {
//!     let writers: Vec<_> = (0..4u8)
//!         .map(|t| {
//!             let shared = &shared;
//!             s.spawn(move || {
//!                 shared.write(u64::from(t), &[t; 4096])?;
//!                 shared.sync()
//!             })
//!         })
//!         .collect();
//!     writers.into_iter().try_for_each(|w| w.join().unwrap())
//! })?;
//! assert_eq!(shared.read(3, 1)?, vec![3; 4096]);
//! shared.close()?;
//! # Ok::<(), strata_engine::Error>(())
//! ```

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use pollster::block_on;

use crate::volume::Volume;
use crate::{Error, Result, VolumeId};

/// The most requests one group takes before its sync.
pub const GROUP_REQUESTS_MAX: usize = 1024;

/// Where a request's answer goes (a channel of one).
type Reply<T> = SyncSender<Result<T>>;

/// A closure run on the volume's thread ([`Shared::call`]).
type Call<V> = Box<dyn FnOnce(&mut V) + Send>;

enum Request<V> {
    Write {
        addr: u64,
        data: Vec<u8>,
        reply: Reply<u64>,
    },
    WriteZeroes {
        addr: u64,
        blocks: u64,
        reply: Reply<u64>,
    },
    Read {
        /// `None`: the head's latest data.
        volume: Option<VolumeId>,
        addr: u64,
        blocks: u64,
        reply: Reply<Vec<u8>>,
    },
    Sync(Reply<()>),
    Snapshot {
        label: Option<String>,
        reply: Reply<VolumeId>,
    },
    Call(Call<V>),
    Close(Reply<()>),
}

/// What the group commit has done so far ([`Shared::stats`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GroupStats {
    /// Syncs answered.
    pub syncs: u64,
    /// Groups: the [`Volume::sync`] calls that answered them (each at most one flush of the
    /// head's data; none when nothing was written since the last).
    pub groups: u64,
    /// The most syncs one group answered.
    pub largest_group: u64,
}

#[derive(Debug, Default)]
struct Counters {
    syncs: AtomicU64,
    groups: AtomicU64,
    largest_group: AtomicU64,
}

/// A volume on a thread of its own, shared by any number of threads (it is `Send + Sync`):
/// requests are carried out in arrival order and syncs are grouped (see the module
/// documentation). `V` is the volume's type: a [`crate::Store`], a [`crate::mirror::Mirror`] or
/// either under storage management ([`crate::Managed`]).
pub struct Shared<V> {
    requests: Option<Sender<Request<V>>>,
    thread: Option<JoinHandle<()>>,
    counters: Arc<Counters>,
    block_size: u32,
    block_count: u64,
    /// The volume lives on its thread; the handle only names its type.
    volume: PhantomData<fn(&mut V)>,
}

/// A sync asked for and not yet waited for ([`Shared::begin_sync`]).
#[must_use = "a sync ticket says nothing until it is waited for"]
pub struct SyncTicket(Receiver<Result<()>>);

impl SyncTicket {
    /// Waits for the group that answers this sync; `Ok` means what [`Shared::sync`]'s does.
    pub fn wait(self) -> Result<()> {
        self.0.recv().unwrap_or(Err(Error::Poisoned))
    }
}

impl<V: Volume + 'static> Shared<V> {
    /// Starts a thread, opens the volume on it with `open` (a store's backend need not be
    /// `Send`: it is made and used on that thread only), and returns the handle; `open`'s error
    /// if it fails.
    pub fn spawn<F>(open: F) -> Result<Self>
    where
        F: FnOnce() -> Result<V> + Send + 'static,
    {
        let (requests, inbox) = mpsc::channel();
        let (opened, opened_rx) = mpsc::sync_channel(1);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        let thread = std::thread::Builder::new()
            .name("strata-shared".into())
            .spawn(move || {
                let volume = match open() {
                    Ok(volume) => {
                        let _ = opened.send(Ok((volume.block_size(), volume.block_count())));
                        volume
                    }
                    Err(e) => {
                        let _ = opened.send(Err(e));
                        return;
                    }
                };
                serve(volume, &inbox, &thread_counters);
            })
            .map_err(|e| {
                Error::Storage(crate::storage::StorageError::Io {
                    object: "the shared volume's thread".into(),
                    message: e.to_string(),
                })
            })?;
        let (block_size, block_count) = match opened_rx.recv() {
            Ok(Ok(geometry)) => geometry,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e);
            }
            // The thread ended without a word: `open` panicked.
            Err(_) => {
                let _ = thread.join();
                return Err(Error::Poisoned);
            }
        };
        Ok(Shared {
            requests: Some(requests),
            thread: Some(thread),
            counters,
            block_size,
            block_count,
            volume: PhantomData,
        })
    }

    /// Block size in bytes.
    pub fn block_size(&self) -> u32 {
        self.block_size
    }

    /// Number of blocks in the volume.
    pub fn block_count(&self) -> u64 {
        self.block_count
    }

    /// Writes whole blocks from block `addr` ([`Volume::write`]); returns the entry's sequence
    /// number. Durable after the next [`Shared::sync`] from any thread.
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<u64> {
        self.ask(|reply| Request::Write {
            addr,
            data: data.to_vec(),
            reply,
        })
    }

    /// Makes `blocks` blocks from `addr` read as zeros ([`Volume::write_zeroes`]).
    pub fn write_zeroes(&self, addr: u64, blocks: u64) -> Result<u64> {
        self.ask(|reply| Request::WriteZeroes {
            addr,
            blocks,
            reply,
        })
    }

    /// The latest data of `blocks` blocks from `addr` ([`Volume::read`]): every write that
    /// returned before this call is seen.
    pub fn read(&self, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.ask(|reply| Request::Read {
            volume: None,
            addr,
            blocks,
            reply,
        })
    }

    /// The data of `blocks` blocks from `addr` as volume `volume` holds them
    /// ([`Volume::read_at`]).
    pub fn read_at(&self, volume: VolumeId, addr: u64, blocks: u64) -> Result<Vec<u8>> {
        self.ask(|reply| Request::Read {
            volume: Some(volume),
            addr,
            blocks,
            reply,
        })
    }

    /// The durability point, grouped: see the module documentation.
    pub fn sync(&self) -> Result<()> {
        self.begin_sync().wait()
    }

    /// Asks for a sync without waiting for it: the writes that returned before this call are
    /// durable once the ticket's [`SyncTicket::wait`] returns `Ok`. A thread can go on writing
    /// meanwhile (those writes may or may not be covered).
    pub fn begin_sync(&self) -> SyncTicket {
        let (reply, answer) = mpsc::sync_channel(1);
        if let Some(requests) = &self.requests {
            // A refused send drops `reply`, and the ticket then reads `Poisoned`.
            let _ = requests.send(Request::Sync(reply));
        }
        SyncTicket(answer)
    }

    /// Seals the head as a snapshot labelled `label` ([`Volume::snapshot`]); the syncs asked
    /// for before it are answered first.
    pub fn snapshot(&self, label: Option<&str>) -> Result<VolumeId> {
        let label = label.map(str::to_string);
        self.ask(|reply| Request::Snapshot { label, reply })
    }

    /// Runs `f` on the volume's thread, in its turn among the requests, and returns what it
    /// returns: every other operation of the volume (compaction, queries, the policy's) goes
    /// through here. The syncs asked for before it are answered first.
    pub fn call<R, F>(&self, f: F) -> Result<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut V) -> R + Send + 'static,
    {
        let (reply, answer) = mpsc::sync_channel(1);
        let call: Call<V> = Box::new(move |volume: &mut V| {
            let _ = reply.send(Ok(f(volume)));
        });
        self.send(Request::Call(call))?;
        answer.recv().unwrap_or(Err(Error::Poisoned))
    }

    /// What the group commit has done so far.
    pub fn stats(&self) -> GroupStats {
        GroupStats {
            syncs: self.counters.syncs.load(Ordering::Relaxed),
            groups: self.counters.groups.load(Ordering::Relaxed),
            largest_group: self.counters.largest_group.load(Ordering::Relaxed),
        }
    }

    /// Answers what was asked before, closes the volume after a final sync ([`Volume::close`])
    /// and ends its thread; the close's error, if any. Dropping the handle does the same and
    /// drops the error.
    pub fn close(mut self) -> Result<()> {
        let closed = self.ask(Request::Close);
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                return Err(Error::Poisoned);
            }
        }
        closed
    }

    fn ask<T>(&self, request: impl FnOnce(Reply<T>) -> Request<V>) -> Result<T> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.send(request(reply))?;
        answer.recv().unwrap_or(Err(Error::Poisoned))
    }

    /// Hands a request to the volume's thread; `Poisoned` once that thread is gone (it ends only
    /// after a close, or if the engine panicked).
    fn send(&self, request: Request<V>) -> Result<()> {
        self.requests
            .as_ref()
            .ok_or(Error::Poisoned)?
            .send(request)
            .map_err(|_| Error::Poisoned)
    }
}

impl<V> Drop for Shared<V> {
    fn drop(&mut self) {
        // Without a sender left, the thread answers what it holds, closes the volume and ends.
        self.requests = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The volume's thread: groups of requests, each ended by one sync for the syncs among them.
fn serve<V: Volume>(mut volume: V, inbox: &Receiver<Request<V>>, counters: &Counters) {
    let mut syncs: Vec<Reply<()>> = Vec::new();
    while let Ok(first) = inbox.recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(request) = next.take() {
            taken += 1;
            match request {
                Request::Write { addr, data, reply } => {
                    let _ = reply.send(block_on(volume.write(addr, &data)));
                }
                Request::WriteZeroes {
                    addr,
                    blocks,
                    reply,
                } => {
                    let _ = reply.send(block_on(volume.write_zeroes(addr, blocks)));
                }
                Request::Read {
                    volume: None,
                    addr,
                    blocks,
                    reply,
                } => {
                    let _ = reply.send(block_on(volume.read(addr, blocks)));
                }
                Request::Read {
                    volume: Some(at),
                    addr,
                    blocks,
                    reply,
                } => {
                    let _ = reply.send(block_on(volume.read_at(at, addr, blocks)));
                }
                Request::Sync(reply) => syncs.push(reply),
                Request::Snapshot { label, reply } => {
                    answer_syncs(&mut volume, &mut syncs, counters);
                    let _ = reply.send(block_on(volume.snapshot(label.as_deref())));
                }
                Request::Call(call) => {
                    answer_syncs(&mut volume, &mut syncs, counters);
                    call(&mut volume);
                }
                Request::Close(reply) => {
                    answer_syncs(&mut volume, &mut syncs, counters);
                    let _ = reply.send(block_on(volume.close()));
                    return;
                }
            }
            if taken < GROUP_REQUESTS_MAX {
                next = inbox.try_recv().ok();
            }
        }
        answer_syncs(&mut volume, &mut syncs, counters);
    }
    // Every handle is gone without a close.
    let _ = block_on(volume.close());
}

/// One sync for every sync in `syncs`, each answered with its result.
fn answer_syncs<V: Volume>(volume: &mut V, syncs: &mut Vec<Reply<()>>, counters: &Counters) {
    if syncs.is_empty() {
        return;
    }
    let synced = block_on(volume.sync());
    let served = syncs.len() as u64;
    counters.groups.fetch_add(1, Ordering::Relaxed);
    counters.syncs.fetch_add(served, Ordering::Relaxed);
    counters.largest_group.fetch_max(served, Ordering::Relaxed);
    for reply in syncs.drain(..) {
        let _ = reply.send(synced.clone());
    }
}
