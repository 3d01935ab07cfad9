//! A first-come, first-served async lock for one thread.
//!
//! JavaScript may call a store's methods without awaiting the previous call
//! (`store.write(..); store.read(..)`): each call becomes a future that wasm-bindgen runs to
//! completion on the worker's event loop, and every engine operation awaits storage in the middle.
//! The store must therefore be handed to one operation at a time, in the order the calls were
//! made, so that a read issued after a write sees it.
//!
//! Invariants:
//! * tickets are handed out in call order and served strictly in ticket order;
//! * at most one [`Guard`] exists at a time, so the inner `RefCell` is never borrowed twice;
//! * a waiting [`Exclusive::lock`] future that is dropped gives up its ticket, so one
//!   abandoned call cannot block every later one.

use std::cell::{Cell, RefCell, RefMut};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// A value that async operations take turns with.
#[derive(Debug, Default)]
pub(crate) struct Exclusive<T> {
    value: RefCell<T>,
    next_ticket: Cell<u64>,
    serving: Cell<u64>,
    /// Tickets whose futures were dropped before their turn came.
    abandoned: RefCell<Vec<u64>>,
    waiters: RefCell<Vec<Waker>>,
}

impl<T> Exclusive<T> {
    pub(crate) fn new(value: T) -> Self {
        Exclusive {
            value: RefCell::new(value),
            next_ticket: Cell::new(0),
            serving: Cell::new(0),
            abandoned: RefCell::new(Vec::new()),
            waiters: RefCell::new(Vec::new()),
        }
    }

    /// Waits for this call's turn, then gives exclusive access until the guard is dropped.
    pub(crate) async fn lock(&self) -> Guard<'_, T> {
        let ticket = self.next_ticket.get();
        self.next_ticket.set(ticket + 1);
        let mut turn = Turn {
            owner: self,
            ticket,
            done: false,
        };
        (&mut turn).await;
        turn.done = true;
        // The turn is ours: no other guard exists, so the cell is not borrowed (see invariants).
        Guard {
            value: self.value.borrow_mut(),
            _release: Release { owner: self },
        }
    }

    /// Moves to the next ticket that still wants its turn, and wakes the waiters.
    fn advance(&self) {
        let mut next = self.serving.get() + 1;
        {
            let mut abandoned = self.abandoned.borrow_mut();
            // Bounded by the number of abandoned tickets.
            while let Some(at) = abandoned.iter().position(|&t| t == next) {
                abandoned.swap_remove(at);
                next += 1;
            }
        }
        self.serving.set(next);
        let waiters = std::mem::take(&mut *self.waiters.borrow_mut());
        for waker in waiters {
            waker.wake();
        }
    }
}

struct Turn<'a, T> {
    owner: &'a Exclusive<T>,
    ticket: u64,
    done: bool,
}

impl<T> Future for &mut Turn<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.owner.serving.get() == self.ticket {
            Poll::Ready(())
        } else {
            self.owner.waiters.borrow_mut().push(cx.waker().clone());
            Poll::Pending
        }
    }
}

impl<T> Drop for Turn<'_, T> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if self.owner.serving.get() == self.ticket {
            self.owner.advance();
        } else {
            self.owner.abandoned.borrow_mut().push(self.ticket);
        }
    }
}

struct Release<'a, T> {
    owner: &'a Exclusive<T>,
}

impl<T> Drop for Release<'_, T> {
    fn drop(&mut self) {
        self.owner.advance();
    }
}

/// Exclusive access to the value; the next caller's turn starts when it is dropped.
pub(crate) struct Guard<'a, T> {
    // Declared first so that it is dropped (the borrow ends) before the turn passes on.
    value: RefMut<'a, T>,
    _release: Release<'a, T>,
}

impl<T> std::ops::Deref for Guard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> std::ops::DerefMut for Guard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    /// Polls a future once, without an executor.
    fn poll_once<F: Future>(future: Pin<&mut F>) -> Poll<F::Output> {
        future.poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn waiting_calls_get_their_turn_in_call_order() {
        let shared = Exclusive::new(Vec::new());
        let held = std::pin::pin!(shared.lock());
        let Poll::Ready(held) = poll_once(held) else {
            panic!("a free lock is taken at once");
        };
        let mut first = std::pin::pin!(async { shared.lock().await.push(1) });
        let mut second = std::pin::pin!(async { shared.lock().await.push(2) });
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        drop(held);
        // The second caller must wait for the first even though it is polled first.
        assert!(poll_once(second.as_mut()).is_pending());
        assert!(poll_once(first.as_mut()).is_ready());
        assert!(poll_once(second.as_mut()).is_ready());
        assert_eq!(*shared.value.borrow(), vec![1, 2]);
    }

    #[test]
    fn a_dropped_waiter_gives_its_turn_up() {
        let shared = Exclusive::new(0u32);
        {
            let held = std::pin::pin!(shared.lock());
            let Poll::Ready(held) = poll_once(held) else {
                panic!("a free lock is taken at once");
            };
            let mut abandoned = Box::pin(shared.lock());
            assert!(poll_once(abandoned.as_mut()).is_pending());
            drop(abandoned);
            drop(held);
        }
        let mut later = std::pin::pin!(async { *shared.lock().await += 1 });
        assert!(poll_once(later.as_mut()).is_ready());
        assert_eq!(*shared.value.borrow(), 1);
    }
}
