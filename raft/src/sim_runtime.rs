//! An openraft [`AsyncRuntime`] that runs under the madsim simulator and under real tokio.
//!
//! The code is written against the crate name `tokio`: with `--cfg madsim` that name is
//! `madsim-tokio`, without it the real tokio. openraft's stock `TokioRuntime` cannot run under
//! madsim: it builds a tokio runtime and its `Timeout` expects tokio's timer driver.
//!
//! What differs from the stock runtime, and why:
//! - `Timeout` is our own future over `tokio::time::Sleep`: madsim has no `timeout_at` and its
//!   `timeout` future is not `Send`.
//! - `Instant` is `std::time::Instant`: madsim overrides `clock_gettime`, so inside a
//!   simulation it reads virtual time; under real tokio it is converted at the `sleep_until`
//!   edge.
//! - The RNG draws from `madsim::rand` under simulation, so election timeouts follow the seed.
//! - `spawn_blocking` runs the closure inline under simulation: madsim forbids OS threads.
//! - mpsc, oneshot and the mutex are the `tokio::sync` wrappers of `openraft-rt-tokio`:
//!   `tokio::sync` needs no reactor, and madsim-tokio re-exports the real one.
//! - Watch is our own [`SimWatch`]: tokio's watch wakes receivers in an order drawn from a
//!   process-wide RNG, which breaks replaying a seed.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::Context;
use std::task::Poll;
use std::time::Duration;

use openraft_rt::AsyncRuntime;
use openraft_rt::OptionalSend;
use openraft_rt_tokio::TokioMpsc;
use openraft_rt_tokio::TokioMutex;
use openraft_rt_tokio::TokioOneshot;
use pin_project_lite::pin_project;

use crate::sim_watch::SimWatch;

/// The openraft runtime for geowallet: simulated under `cfg(madsim)`, real tokio otherwise.
#[derive(Debug, Default)]
pub struct MadsimRuntime;

impl AsyncRuntime for MadsimRuntime {
    type JoinError = tokio::task::JoinError;
    type JoinHandle<T: OptionalSend + 'static> = tokio::task::JoinHandle<T>;
    type Sleep = tokio::time::Sleep;
    type Instant = std::time::Instant;
    type TimeoutError = Elapsed;
    type Timeout<R, T: Future<Output = R> + OptionalSend> = Timeout<T>;
    type ThreadLocalRng = SeededRng;

    fn spawn<T>(future: T) -> Self::JoinHandle<T::Output>
    where
        T: Future + OptionalSend + 'static,
        T::Output: OptionalSend + 'static,
    {
        tokio::spawn(future)
    }

    fn sleep(duration: Duration) -> Self::Sleep {
        tokio::time::sleep(duration)
    }

    #[allow(
        clippy::useless_conversion,
        reason = "a conversion on real tokio, the identity under madsim"
    )]
    fn sleep_until(deadline: Self::Instant) -> Self::Sleep {
        // Under madsim `tokio::time::Instant` is `std::time::Instant`; `from` covers both.
        tokio::time::sleep_until(deadline.into())
    }

    fn timeout<R, F: Future<Output = R> + OptionalSend>(
        duration: Duration,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            future,
            sleep: Self::sleep(duration),
        }
    }

    fn timeout_at<R, F: Future<Output = R> + OptionalSend>(
        deadline: Self::Instant,
        future: F,
    ) -> Self::Timeout<R, F> {
        Timeout {
            future,
            sleep: Self::sleep_until(deadline),
        }
    }

    /// Under madsim this is always `false`: madsim's `JoinError` does not record panics.
    fn is_panic(join_error: &Self::JoinError) -> bool {
        join_error.is_panic()
    }

    fn thread_rng() -> Self::ThreadLocalRng {
        SeededRng::default()
    }

    type Mpsc = TokioMpsc;
    type Watch = SimWatch;
    type Oneshot = TokioOneshot;
    type Mutex<T: OptionalSend + 'static> = TokioMutex<T>;

    fn new(_threads: usize) -> Self {
        MadsimRuntime
    }

    /// Runs `future` on a fresh runtime. Under madsim it is a simulation with seed 0; call it
    /// from a plain `#[test]`, never from inside `#[madsim::test]` (simulations do not nest).
    fn block_on<F, T>(&mut self, future: F) -> T
    where
        F: Future<Output = T>,
    {
        #[cfg(madsim)]
        {
            madsim::runtime::Runtime::new().block_on(future)
        }
        #[cfg(not(madsim))]
        {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            runtime.expect("build a tokio runtime").block_on(future)
        }
    }

    fn spawn_blocking<F, T>(f: F) -> impl Future<Output = Result<T, io::Error>> + Send
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        // madsim forbids OS threads: run inline, blocking the simulated node for its duration.
        #[cfg(madsim)]
        {
            std::future::ready(Ok(f()))
        }
        #[cfg(not(madsim))]
        {
            let handle = tokio::task::spawn_blocking(f);
            async move { handle.await.map_err(io::Error::other) }
        }
    }
}

pin_project! {
    /// A future that fails with [`Elapsed`] if `future` is not ready before `sleep` fires.
    pub struct Timeout<F> {
        #[pin]
        future: F,
        #[pin]
        sleep: tokio::time::Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        // The inner future goes first, so a ready result wins over a deadline that also passed.
        if let Poll::Ready(output) = this.future.poll(cx) {
            return Poll::Ready(Ok(output));
        }
        this.sleep.poll(cx).map(|()| Err(Elapsed))
    }
}

/// The deadline of a [`Timeout`] passed before its future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl fmt::Display for Elapsed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

/// Random numbers from the simulation's seeded generator under madsim, from the thread's OS
/// seeded generator otherwise. It holds no state of its own, so every draw advances the one
/// sequence that madsim replays for a seed.
#[derive(Debug, Default)]
pub struct SeededRng {
    #[cfg(not(madsim))]
    inner: rand::rngs::ThreadRng,
}

impl rand::TryRng for SeededRng {
    type Error = Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Infallible> {
        Ok(self.try_next_u64()? as u32)
    }

    fn try_next_u64(&mut self) -> Result<u64, Infallible> {
        #[cfg(madsim)]
        {
            Ok(madsim::rand::random::<u64>())
        }
        #[cfg(not(madsim))]
        {
            Ok(rand::Rng::next_u64(&mut self.inner))
        }
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Infallible> {
        for chunk in dst.chunks_mut(8) {
            let bytes = self.try_next_u64()?.to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}
