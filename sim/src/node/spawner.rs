//! The deterministic `FutureSpawner` LDK's async persistence runs on.

use lightning::util::native_async::FutureSpawner;

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

pub(super) type Task = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A deterministic FIFO `FutureSpawner`: spawned futures wait in a queue that the
/// simulator polls ([`Node::poll_tasks`]), in spawn order, after every step. They keep
/// being polled after their handle is dropped, as LDK requires. Tokio's scheduler is not
/// used inside a simulation: its polling order is not reproducible.
#[derive(Clone, Default)]
pub struct SimSpawner {
    tasks: Arc<Mutex<std::collections::VecDeque<Task>>>,
}

/// The handle [`SimSpawner::spawn`] returns: completes with the spawned future's output.
pub struct SpawnedTask<O> {
    slot: Arc<Mutex<Option<O>>>,
}

impl<O> Future for SpawnedTask<O> {
    type Output = Result<O, ()>;
    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.slot.lock().unwrap().take() {
            Some(o) => Poll::Ready(Ok(o)),
            None => Poll::Pending,
        }
    }
}

impl FutureSpawner for SimSpawner {
    type E = ();
    type SpawnedFutureResult<O> = SpawnedTask<O>;
    fn spawn<O: Send + 'static, T: Future<Output = O> + Send + 'static>(&self, future: T) -> SpawnedTask<O> {
        let slot = Arc::new(Mutex::new(None));
        let out = slot.clone();
        self.tasks.lock().unwrap().push_back(Box::pin(async move {
            let o = future.await;
            *out.lock().unwrap() = Some(o);
        }));
        SpawnedTask { slot }
    }
}

impl SimSpawner {
    /// Polls every queued task once, in FIFO order; keeps the pending ones. Returns how many
    /// completed.
    pub(super) fn poll_once(&self) -> usize {
        let batch: Vec<Task> = self.tasks.lock().unwrap().drain(..).collect();
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut done = 0;
        let mut keep = Vec::new();
        for mut t in batch {
            match t.as_mut().poll(&mut cx) {
                Poll::Ready(()) => done += 1,
                Poll::Pending => keep.push(t),
            }
        }
        // Tasks spawned while polling were queued behind; ours go first, in their order.
        let mut q = self.tasks.lock().unwrap();
        for t in keep.into_iter().rev() {
            q.push_front(t);
        }
        done
    }
}

/// Polls a future that can complete without the simulator (reads from the fake store),
/// together with the tasks it spawns on `spawner`.
pub(super) fn poll_ready<F: Future>(f: F, spawner: &SimSpawner) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = Context::from_waker(std::task::Waker::noop());
    for _ in 0..1000 {
        if let Poll::Ready(o) = f.as_mut().poll(&mut cx) {
            return o;
        }
        spawner.poll_once();
    }
    panic!("a read from the fake store did not complete");
}
