//! A watch channel whose wake order is deterministic, for [`crate::sim_runtime::MadsimRuntime`].
//!
//! `tokio::sync::watch` parks each waiting receiver on one of 8 `Notify` shards chosen by
//! tokio's thread-local RNG, seeded from a process-wide counter. The order in which receivers
//! wake then depends on how many threads used tokio before, so one madsim seed can schedule
//! differently on a rerun in the same process (`MADSIM_TEST_CHECK_DETERMINISM` catches it).
//! Here waiting receivers wake in the order they were created.

use std::collections::BTreeMap;
use std::future::poll_fn;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::RwLock;
use std::sync::RwLockReadGuard;
use std::task::Poll;
use std::task::Waker;

use openraft_rt::OptionalSend;
use openraft_rt::OptionalSync;
use openraft_rt::watch;

/// The [`watch::Watch`] implementation of [`crate::sim_runtime::MadsimRuntime`].
pub struct SimWatch;

struct State {
    version: u64,
    senders: usize,
    receivers: usize,
    receiver_id_next: u64,
    /// At most one waker per live receiver, woken in receiver-id order.
    wakers: BTreeMap<u64, Waker>,
}

struct Shared<T> {
    value: RwLock<T>,
    state: Mutex<State>,
}

impl<T> Shared<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn read(&self) -> RwLockReadGuard<'_, T> {
        self.value
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn new_receiver(self: &Arc<Self>) -> SimWatchReceiver<T> {
        let mut state = self.state();
        let id = state.receiver_id_next;
        state.receiver_id_next += 1;
        state.receivers += 1;
        let seen = state.version;
        drop(state);
        SimWatchReceiver {
            shared: self.clone(),
            id,
            seen,
        }
    }

    fn publish(&self) {
        let mut state = self.state();
        state.version += 1;
        let wakers = std::mem::take(&mut state.wakers);
        drop(state);
        wakers.into_values().for_each(Waker::wake);
    }
}

pub struct SimWatchSender<T> {
    shared: Arc<Shared<T>>,
}

pub struct SimWatchReceiver<T> {
    shared: Arc<Shared<T>>,
    id: u64,
    seen: u64,
}

impl watch::Watch for SimWatch {
    type Sender<T: OptionalSend + OptionalSync> = SimWatchSender<T>;
    type Receiver<T: OptionalSend + OptionalSync> = SimWatchReceiver<T>;
    type Ref<'a, T: OptionalSend + 'a> = RwLockReadGuard<'a, T>;

    fn channel<T: OptionalSend + OptionalSync>(init: T) -> (Self::Sender<T>, Self::Receiver<T>) {
        let state = State {
            version: 0,
            senders: 1,
            receivers: 0,
            receiver_id_next: 0,
            wakers: BTreeMap::new(),
        };
        let shared = Arc::new(Shared {
            value: RwLock::new(init),
            state: Mutex::new(state),
        });
        let receiver = shared.new_receiver();
        (SimWatchSender { shared }, receiver)
    }
}

impl<T> Clone for SimWatchSender<T> {
    fn clone(&self) -> Self {
        self.shared.state().senders += 1;
        SimWatchSender {
            shared: self.shared.clone(),
        }
    }
}

impl<T> Drop for SimWatchSender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.senders -= 1;
        if state.senders == 0 {
            let wakers = std::mem::take(&mut state.wakers);
            drop(state);
            wakers.into_values().for_each(Waker::wake);
        }
    }
}

impl<T> Clone for SimWatchReceiver<T> {
    fn clone(&self) -> Self {
        let mut receiver = self.shared.new_receiver();
        receiver.seen = self.seen;
        receiver
    }
}

impl<T> Drop for SimWatchReceiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state();
        state.receivers -= 1;
        state.wakers.remove(&self.id);
    }
}

impl<T> watch::WatchSender<SimWatch, T> for SimWatchSender<T>
where
    T: OptionalSend + OptionalSync,
{
    fn send(&self, value: T) -> Result<(), watch::SendError<T>> {
        // Like tokio: with no receiver left the value is handed back, not stored.
        if self.shared.state().receivers == 0 {
            return Err(watch::SendError(value));
        }
        *self
            .shared
            .value
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = value;
        self.shared.publish();
        Ok(())
    }

    fn send_if_modified<F>(&self, modify: F) -> bool
    where
        F: FnOnce(&mut T) -> bool,
    {
        let mut value = self
            .shared
            .value
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let modified = modify(&mut value);
        drop(value);
        if modified {
            self.shared.publish();
        }
        modified
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn subscribe(&self) -> SimWatchReceiver<T> {
        self.shared.new_receiver()
    }
}

impl<T> watch::WatchReceiver<SimWatch, T> for SimWatchReceiver<T>
where
    T: OptionalSend + OptionalSync,
{
    async fn changed(&mut self) -> Result<(), watch::RecvError> {
        poll_fn(|cx| {
            let mut state = self.shared.state();
            if state.version != self.seen {
                self.seen = state.version;
                return Poll::Ready(Ok(()));
            }
            if state.senders == 0 {
                return Poll::Ready(Err(watch::RecvError(())));
            }
            state.wakers.insert(self.id, cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn borrow_watched(&self) -> RwLockReadGuard<'_, T> {
        self.shared.read()
    }

    fn borrow_and_update(&mut self) -> RwLockReadGuard<'_, T> {
        let guard = self.shared.read();
        self.seen = self.shared.state().version;
        guard
    }
}
