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

#[cfg(test)]
mod tests {
    use super::*;

    /// A future that is pending until `gate` opens, then logs `name` and completes.
    async fn step(name: &'static str, gate: Arc<Mutex<bool>>, log: Arc<Mutex<Vec<&'static str>>>) -> &'static str {
        std::future::poll_fn(|_| if *gate.lock().unwrap() { Poll::Ready(()) } else { Poll::Pending }).await;
        log.lock().unwrap().push(name);
        name
    }

    #[test]
    fn tasks_run_in_spawn_order_and_pending_ones_keep_their_place() {
        let spawner = SimSpawner::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let open = Arc::new(Mutex::new(true));
        let closed = Arc::new(Mutex::new(false));
        let _a = spawner.spawn(step("a", closed.clone(), log.clone()));
        let _b = spawner.spawn(step("b", open.clone(), log.clone()));
        let _c = spawner.spawn(step("c", closed.clone(), log.clone()));
        assert_eq!(spawner.poll_once(), 1, "only b can complete");
        assert_eq!(*log.lock().unwrap(), vec!["b"]);
        let _d = spawner.spawn(step("d", open.clone(), log.clone()));
        *closed.lock().unwrap() = true;
        assert_eq!(spawner.poll_once(), 3, "a and c (first, in their order), then d spawned after them");
        assert_eq!(*log.lock().unwrap(), vec!["b", "a", "c", "d"]);
        assert_eq!(spawner.poll_once(), 0, "the queue is empty");
    }

    #[test]
    fn a_dropped_handle_does_not_cancel_its_task() {
        let spawner = SimSpawner::default();
        let log = Arc::new(Mutex::new(Vec::new()));
        let gate = Arc::new(Mutex::new(false));
        drop(spawner.spawn(step("dropped", gate.clone(), log.clone())));
        assert_eq!(spawner.poll_once(), 0);
        *gate.lock().unwrap() = true;
        assert_eq!(spawner.poll_once(), 1, "still polled after its handle was dropped");
        assert_eq!(*log.lock().unwrap(), vec!["dropped"]);
    }

    #[test]
    fn the_handle_completes_with_the_output() {
        let spawner = SimSpawner::default();
        let gate = Arc::new(Mutex::new(true));
        let handle = spawner.spawn(step("x", gate, Arc::new(Mutex::new(Vec::new()))));
        let out = poll_ready(handle, &spawner);
        assert_eq!(out, Ok("x"));
    }
}
